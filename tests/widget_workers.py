"""Processes the widget tests and benchmarks start: ``python tests/widget_workers.py COMMAND ARGS``."""

from __future__ import annotations

import json
import sys
import time

import threadwidget as tw


def stream(db: str, thread_id: str, rate: str, count: str) -> None:
    """Answer a prompt in ``thread_id`` with ``count`` words at ``rate`` tokens/s. Prints one JSON line:
    the answer's id and text, and the wall-clock time the last token reached the store's writer."""
    store = tw.Store(db)
    model = tw.ScriptedModel(tokens_per_second=float(rate))
    model.enqueue(" ".join(f"word{i}" for i in range(int(count))))
    thread = tw.Agent("writer", model=model, store=store).continue_thread(thread_id)
    last = 0.0
    for _ in thread.stream_text("tell me a story"):
        last = time.time()
    answer = store.list_messages(thread_id, limit=1)[-1]
    print(json.dumps({"message_id": answer.id, "text": answer.text, "status": answer.status,
                      "last_token_at": last, "done_at": time.time()}), flush=True)  # fmt: skip
    store.close()


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
