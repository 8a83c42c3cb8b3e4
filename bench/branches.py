"""What branches cost: reading a thread's current path and an answer's branch, switching the path.

A thread of ``--turns`` prompts, each answered, where every 5th prompt was edited once (its old
version and one answer stay on their branch, off the path). Figures, medians of ``--repeat`` calls,
each against its baseline in the same run:

- ``list_messages(limit=50)`` of that thread against the same call on a thread of as many turns and
  no branches;
- ``list_messages(through=<the last prompt>, limit=50)`` (what each answer's model reads: a walk up
  the ``parent_id`` links) against ``list_messages(limit=50)``;
- ``select_branch`` (one transaction that rewrites ``on_path`` for the thread) against one
  ``add_message``.

    .venv/bin/python bench/branches.py [--json] [--turns 5000] [--db URL | --postgres]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import threadwidget as tw

HERE = Path(__file__).resolve()


def timed(fn: Any, repeat: int) -> float:
    """Median milliseconds of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def fill(store: tw.Store, turns: int, *, edits: bool) -> tuple[str, list[str]]:
    """A thread of ``turns`` answered prompts (every 5th edited once, with ``edits``); its prompt ids."""
    thread = store.create_thread(title="bench", agent="bench")
    prompts = []
    for i in range(turns):
        prompt, first = store.add_prompt(thread.id, f"question {i}", agent="bench", claim_model="m")
        assert first is not None
        store.add_tool_call(first.id, call_id=f"call {i}", name="lookup", arguments="{}", status="success")
        store.update_message(first.id, text=f"answer {i}", status="success", ends_answer=True, end_run=True)
        if edits and i % 5 == 0:
            prompt, first = store.add_prompt(thread.id, f"question {i}, edited", agent="bench", claim_model="m",
                                             version_of=prompt.id)  # fmt: skip
            assert first is not None
            store.update_message(first.id, text=f"answer {i}, again", status="success", ends_answer=True, end_run=True)
        prompts.append(prompt.id)
    return thread.id, prompts


def measure(location: str | Path, args: argparse.Namespace) -> dict[str, Any]:
    with tw.Store(location) as store:
        plain, _ = fill(store, args.turns, edits=False)
        branched, prompts = fill(store, args.turns, edits=True)
        assert len(store.list_messages(branched, limit=1 << 40)) == 2 * args.turns
        versions = store.versions(prompts[-5])  # an edited prompt: its first version is off the path
        out = {
            "turns": args.turns,
            "rows_in_branched_thread": 2 * args.turns + 2 * len(range(0, args.turns, 5)),
            "list_plain_ms": timed(lambda: store.list_messages(plain), args.repeat),
            "list_branched_ms": timed(lambda: store.list_messages(branched), args.repeat),
            "through_ms": timed(lambda: store.list_messages(branched, through=prompts[-1]), args.repeat),
            "add_message_ms": timed(lambda: store.add_message(plain, role="user", text="x"), args.repeat),
        }
        switches = [versions[0].id, versions[1].id] * (args.repeat // 2)
        out["select_branch_ms"] = timed(lambda: store.select_branch(switches.pop()), len(switches))
        out["tool_calls_all_ms"] = timed(lambda: store.list_tool_calls(branched, limit=50), args.repeat)
        if hasattr(store, "request_regeneration"):  # this version's readers of the path, queued regenerations
            out["tool_calls_path_ms"] = timed(
                lambda: store.list_tool_calls(branched, limit=50, on_path=True), args.repeat
            )

        def turn() -> None:  # the answer path: take the free turn with the prompt, end the answer
            _, first = store.add_prompt(plain, "again", agent="bench", claim_model="m")
            assert first is not None
            store.update_message(first.id, text="done", status="success", ends_answer=True, end_run=True)

        out["turn_ms"] = timed(turn, args.repeat)
        out["claim_idle_ms"] = timed(lambda: store.claim_pending("bench", model="m"), args.repeat)
        out["ask_queued_ms"] = timed(lambda: store.ask(plain, "queued", agent="bench"), args.repeat)
        if hasattr(store, "request_regeneration"):
            out["regenerate_queued_ms"] = timed(lambda: store.regenerate(prompts[-1], agent="bench"), args.repeat)
    return out


def report(r: dict[str, Any]) -> None:
    print(f"{r['backend']}: a thread of {r['turns']} turns ({r['rows_in_branched_thread']} rows, 1 prompt in 5 edited)")
    rows = [
        ("list_messages(limit=50), branched thread", r["list_branched_ms"], "same, a thread with no branches",
         r["list_plain_ms"]),
        ("list_messages(through=last prompt, limit=50)", r["through_ms"], "list_messages(limit=50)",
         r["list_branched_ms"]),
        ("select_branch (rewrites on_path of the thread)", r["select_branch_ms"], "add_message", r["add_message_ms"]),
        ("a turn: add_prompt(claim_model=) + its answer's end", r["turn_ms"], "add_message", r["add_message_ms"]),
        ("claim_pending, nothing waits", r["claim_idle_ms"], "add_message", r["add_message_ms"]),
    ]  # fmt: skip
    if "tool_calls_path_ms" in r:
        rows += [
            ("list_tool_calls(limit=50, on_path=True)", r["tool_calls_path_ms"], "every branch's",
             r["tool_calls_all_ms"]),
            ("store.regenerate, queued", r["regenerate_queued_ms"], "store.ask, queued", r["ask_queued_ms"]),
        ]  # fmt: skip
    for name, value, base_name, base in rows:
        print(f"  {name}: {value:.3f} ms   baseline {base_name}: {base:.3f} ms   x{value / base:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--turns", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=40)
    ap.add_argument("--db", help="a postgresql:// URL: measure a PostgreSQL store instead")
    ap.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL server and measure it")
    args = ap.parse_args()
    if args.postgres:
        sys.path.insert(0, str(HERE.parent.parent / "tests"))
        from pg_server import PostgresServer

        server = PostgresServer()
        try:
            result = {"backend": "postgresql", **measure(server.url, args)}
        finally:
            server.close()
    elif args.db:
        result = {"backend": "postgresql", **measure(args.db, args)}
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = {"backend": "sqlite", **measure(Path(tmp) / "bench.db", args)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result)


if __name__ == "__main__":
    main()
