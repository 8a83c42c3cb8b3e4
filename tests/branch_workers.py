"""Processes the branch tests start: ``python tests/branch_workers.py COMMAND ARGS``.

Each prints ``ready`` once its store is open and waits for a line on stdin (``go``), so tests
synchronise on real signals, never on sleeps; the result is one JSON line.
"""

from __future__ import annotations

import json
import sys

import threadwidget as tw


def select(db: str, message_id: str) -> None:
    """Switch the thread's path to go through ``message_id``."""
    with tw.Store(db) as store:
        print("ready", flush=True)
        sys.stdin.readline()
        shown = store.select_branch(message_id)
        print(json.dumps({"texts": [m.text for m in shown]}), flush=True)


def regenerate(db: str, thread_id: str, prompt_id: str, words: str) -> None:
    """Answer ``prompt_id`` again with ``words`` words at 50 tokens/s (the turn stays taken a while),
    now or in its turn; prints the new alternative and how its answer ended."""
    with tw.Store(db) as store:
        model = tw.ScriptedModel(tokens_per_second=50)
        model.enqueue(" ".join(f"w{i}" for i in range(int(words))))
        thread = tw.Agent("support", model=model, store=store).continue_thread(thread_id)
        print("ready", flush=True)
        sys.stdin.readline()
        try:
            answer = thread.regenerate(prompt_id)
        except tw.InvalidArgumentError as exc:
            print(json.dumps({"error": str(exc)}), flush=True)
            return
        answer.wait(60)
        print(json.dumps({"alternative": answer.alternative, "status": answer.status}), flush=True)


def serve(db: str) -> None:
    """Serve the agent ``support`` (an echoing model) until a line arrives on stdin; print how many
    answers this process wrote."""
    with tw.Store(db) as store:
        worker = tw.Agent("support", model=tw.ScriptedModel(tokens_per_second=400), store=store).serve()
        print("ready", flush=True)
        sys.stdin.readline()
        worker.stop(abort=False)
        print(json.dumps({"answered": worker.answered}), flush=True)


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
