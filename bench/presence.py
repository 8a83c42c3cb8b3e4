"""Benchmark: what presence costs. One process holds ``--views`` ChatViews of one thread for
``--seconds``; in the same run, first with the views not shown in a browser (no presence: the
baseline), then shown (``_view_count`` 1: each renews its presence row and reads who is there).

Reports, per view: store writes per second (transactions), change-log rows (what wakes other
processes), and the process's CPU time; and a second process's feed wake-ups with and without.

    .venv/bin/python bench/presence.py [--views 20] [--seconds 30] [--db postgresql://...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import comm
from comm.base_comm import BaseComm

import threadwidget as tw


class NullComm(BaseComm):
    """Stands in for the kernel's comm: sends nothing."""

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **k: Any) -> None:
        pass


def measure(location: Any, thread_id: str, views: int, seconds: float, shown: bool) -> dict[str, float]:
    store = tw.Store(location)
    writes = [0]
    inner = store._db.write

    def counted(fn: Any) -> Any:
        writes[0] += 1
        return inner(fn)

    store._db.write = counted  # type: ignore[method-assign]
    other = tw.Store(location)  # another kernel watching the thread: how often it wakes
    wakes = [0]
    sub = other.subscribe(lambda e: wakes.__setitem__(0, wakes[0] + 1), thread_id=thread_id)
    seq = store.last_seq()
    opened = [tw.ChatView(thread_id, store=store, user=f"user{i}") for i in range(views)]
    for view in opened:
        view._view_count = 1 if shown else 0
    time.sleep(1.0)  # settle: the first rows are written (not counted below)
    writes[0], wakes[0] = 0, 0
    seq = store.last_seq()
    cpu, wall = time.process_time(), time.monotonic()
    time.sleep(seconds)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    changes = store.last_seq() - seq
    present = len(store.present(thread_id))
    for view in opened:
        view.close()
    sub.close()
    other.close()
    store.close()
    return {
        "writes_per_view_per_s": writes[0] / views / wall,
        "changes_per_view_per_s": changes / views / wall,
        "cpu_ms_per_view_per_s": 1000 * cpu / views / wall,
        "other_process_events_per_s": wakes[0] / wall,
        "rows_present": present,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--views", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--db", default=None, help="a postgresql:// URL (default: a new SQLite file)")
    args = parser.parse_args()
    comm.create_comm = NullComm
    location: Any = args.db or Path(tempfile.mkdtemp()) / "threads.db"
    with tw.Store(location) as store:
        thread_id = store.create_thread(agent="support").id
    results = {
        "baseline (views not shown)": measure(location, thread_id, args.views, args.seconds, shown=False),
        "presence (views shown)": measure(location, thread_id, args.views, args.seconds, shown=True),
    }
    print(json.dumps({"views": args.views, "seconds": args.seconds, "threads": threading.active_count(),
                      "backend": "postgres" if args.db else "sqlite", "results": results}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
