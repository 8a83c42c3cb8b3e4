"""What a budget costs an answer while it streams, and what costs cost to sum.

Measures, in one run on this machine:
  * an unpaced ScriptedModel answer of ``--tokens`` tokens written into the store, without a budget
    (the baseline) and with every limit set (high enough never to stop it): the check runs with
    each streamed piece and reads the store's sums every second;
  * ``store.cost()`` and ``store.costs("day")`` over a store of ``--answers`` answers, against
    ``store.usage()`` (the token sum without prices) in the same run.
Prints figures and ratios; ``--json`` prints one JSON object instead.

    .venv/bin/python bench/budget.py [--json] [--tokens 20000] [--answers 20000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import threadwidget as tw

PRICES = tw.Prices({"scripted": ("1.00", "2.00")})


def stream_once(store: tw.Store, tokens: int, budget: tw.Budget | None) -> float:
    model = tw.ScriptedModel(tokens_per_second=None)
    model.enqueue(" ".join(f"w{i}" for i in range(tokens)))
    thread = tw.Agent("bench", model=model, store=store, budget=budget).create_thread(user_id="alice")
    t0 = time.perf_counter()
    result = thread.generate_text("go")
    elapsed = time.perf_counter() - t0
    assert result.status == "success", result.error
    return elapsed


def streaming(tmp: Path, tokens: int, repeats: int) -> dict[str, float]:
    budget = tw.Budget(
        per_answer_tokens=10**9, per_thread_tokens=10**9, per_thread_usd=10**6,
        per_user_usd_per_day=10**6, per_agent_usd_per_day=10**6, prices=PRICES,
    )  # fmt: skip
    plain, limited = [], []
    with tw.Store(tmp / "stream.db") as store:
        stream_once(store, 200, None)  # warm up
        for _ in range(repeats):  # interleaved, so both see the same machine
            plain.append(stream_once(store, tokens, None))
            limited.append(stream_once(store, tokens, budget))
    return {
        "tokens": tokens,
        "no_budget_s": statistics.median(plain),
        "budget_s": statistics.median(limited),
        "ratio": statistics.median(limited) / statistics.median(plain),
    }


def sums(tmp: Path, answers: int, repeats: int) -> dict[str, float]:
    with tw.Store(tmp / "sums.db") as store:
        threads = [store.create_thread(user_id=f"user{i % 20}") for i in range(50)]
        for i in range(answers):
            thread = threads[i % len(threads)]
            step = store.add_message(thread.id, role="assistant", text="a", agent=f"agent{i % 5}",
                                     model=("gpt-4o-mini", "gpt-4o", "my-llama")[i % 3])  # fmt: skip
            store.update_message(step.id, usage=tw.Usage(100 + i % 7, 20 + i % 11))

        def best(fn: object) -> float:
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()  # type: ignore[operator]
                times.append(time.perf_counter() - t0)
            return min(times)

        usage = best(store.usage)
        cost = best(lambda: store.cost(prices=PRICES))
        per_day = best(lambda: store.costs("day", prices=PRICES))
        per_user = best(lambda: store.costs("user", prices=PRICES))
    return {
        "answers": answers,
        "usage_ms": usage * 1000,
        "cost_ms": cost * 1000,
        "costs_day_ms": per_day * 1000,
        "costs_user_ms": per_user * 1000,
        "cost_ratio": cost / usage,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--answers", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = {"streaming": streaming(Path(tmp), args.tokens, args.repeats),
               "sums": sums(Path(tmp), args.answers, args.repeats)}  # fmt: skip
    if args.json:
        print(json.dumps(out))
        return
    s, c = out["streaming"], out["sums"]
    print(f"answer of {s['tokens']:,} tokens, median of {args.repeats}: no budget {s['no_budget_s']:.3f} s, "
          f"every limit set {s['budget_s']:.3f} s (x{s['ratio']:.2f})")  # fmt: skip
    print(f"{c['answers']:,} answers: store.usage() {c['usage_ms']:.1f} ms, store.cost() {c['cost_ms']:.1f} ms "
          f"(x{c['cost_ratio']:.2f}), costs('day') {c['costs_day_ms']:.1f} ms, "
          f"costs('user') {c['costs_user_ms']:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
