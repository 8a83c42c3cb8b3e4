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


def handoff(db: str, thread_id: str) -> None:
    """Ask ``thread_id`` (agent ``booking``) to book a table: booking hands the thread over to
    ``confirm``, which answers. Prints one JSON line: the agents of the answer's steps."""
    store = tw.Store(db)
    confirm = tw.Agent("confirm", model=tw.ScriptedModel(tokens_per_second=None, rules=[(".", "Confirmed for 19:00.")]),
                       store=store)  # fmt: skip
    transfer = tw.ScriptedModel.tool_calls([("transfer_to_confirm", {})])
    booking = tw.Agent("booking", model=tw.ScriptedModel(tokens_per_second=None, rules=[("book", transfer)]),
                       handoffs=[confirm], store=store)  # fmt: skip
    answer = booking.continue_thread(thread_id).ask("book a table for two at 19:00").wait(30)
    print(json.dumps({"status": answer.status, "agents": [m.agent for m in answer.messages]}), flush=True)
    store.close()


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
