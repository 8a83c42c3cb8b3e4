"""Benchmark: what a replay costs. A thread of ``--prompts`` prompts, each answered with one call
of a tool that takes ``--tool-ms`` (a warehouse query), is replayed in the same run with the
recorded results (``tools="recorded"``) and with the tools run again (``tools="live"``, the
baseline); and ``tw.evaluate`` of the thread (replay + expectations). The scripted model streams
without pacing, so the figures are the runtime's and the store's work plus the tools.

    .venv/bin/python bench/replay.py [--prompts 20] [--tool-ms 50] [--rounds 3] [--db URL | --postgres]
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


def agent(store: tw.Store, tool_seconds: float) -> tw.Agent:
    @tw.tool
    def lookup_order(order_id: str, ctx: tw.ToolContext) -> dict:
        """Look up an order."""
        ctx.wait(tool_seconds)
        return {"order_id": order_id, "status": "shipped"}

    call = (r"order (\d+)", lambda m: tw.ScriptedModel.tool_calls([("lookup_order", {"order_id": m[1]})]))
    model = tw.ScriptedModel(tokens_per_second=None, rules=[call])
    return tw.Agent("support", model=model, tools=[lookup_order], store=store)


def timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=20)
    parser.add_argument("--tool-ms", type=float, default=50.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", default=None)
    parser.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL server and measure it")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.postgres:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from pg_server import PostgresServer

        server = PostgresServer()
        try:
            run(args, server.url)
        finally:
            server.close()
    else:
        run(args, args.db or Path(tempfile.mkdtemp()) / "replay.db")


def run(args: argparse.Namespace, location: Any) -> None:
    store = tw.Store(location)
    a = agent(store, args.tool_ms / 1000)
    thread = a.create_thread(title="orders")

    def ask_all() -> None:
        for i in range(args.prompts):
            thread.ask(f"Where is order {i}?").wait(60)

    rows: dict[str, list[float]] = {"asked": [], "recorded": [], "live": [], "evaluate": []}
    rows["asked"].append(timed(ask_all))
    for _ in range(args.rounds):  # interleaved, so drift hits each alike
        rows["live"].append(timed(lambda: tw.replay(thread.id, a, tools="live")))
        rows["recorded"].append(timed(lambda: tw.replay(thread.id, a)))
        rows["evaluate"].append(timed(lambda: tw.evaluate(thread.id, a)))
    per_prompt = {k: statistics.median(v) / args.prompts * 1000 for k, v in rows.items()}
    store.close()
    out = {
        "backend": "postgresql" if isinstance(location, str) else "sqlite",
        "prompts": args.prompts,
        "tool_ms": args.tool_ms,
        "ms_per_prompt": {k: round(v, 2) for k, v in per_prompt.items()},
        "recorded_vs_live": round(per_prompt["recorded"] / per_prompt["live"], 3),
    }
    if args.json:
        print(json.dumps(out))
        return
    print(f"{out['backend']}: {args.prompts} prompts, one {args.tool_ms:g} ms tool call each (median of {args.rounds})")
    for key, value in out["ms_per_prompt"].items():  # type: ignore[attr-defined]
        print(f"  {key:>9}: {value:8.2f} ms a prompt")
    print(f"  recorded / live (baseline, same run): {out['recorded_vs_live']}")


if __name__ == "__main__":
    main()
