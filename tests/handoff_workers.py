"""Processes the cross-process handoff tests start: ``python tests/handoff_workers.py COMMAND ARGS``."""

from __future__ import annotations

import json
import os
import sys

import threadwidget as tw


class LoggingModel(tw.ScriptedModel):
    """The scripted model, appending to a shared log who was asked what (the last prompt it sees)."""

    def __init__(self, agent: str, log: str, rules: list) -> None:  # type: ignore[type-arg]
        super().__init__(f"{agent}-model", tokens_per_second=400, rules=rules)
        self.agent, self.log = agent, log

    def stream(self, messages: list, tools: list):  # type: ignore[no-untyped-def]
        last = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        line = json.dumps({"pid": os.getpid(), "agent": self.agent, "prompt": last}) + "\n"
        with open(self.log, "a") as f:  # one short append: atomic between processes
            f.write(line)
        return super().stream(messages, tools)


def serve_desk(db: str, role: str, log: str) -> None:
    """Serve agent ``role`` (``booking``, which hands over to ``confirm``, or ``confirm``) until a
    line arrives on stdin; print how many answers this process wrote."""
    store = tw.Store(db)
    confirm = tw.Agent("confirm", model=LoggingModel("confirm", log, []), store=store)
    transfer = tw.ScriptedModel.tool_calls([("transfer_to_confirm", {})])
    booking = tw.Agent("booking", model=LoggingModel("booking", log, [(r"^book", transfer)]), handoffs=[confirm],
                       store=store)  # fmt: skip
    worker = {"booking": booking, "confirm": confirm}[role].serve()
    print("ready", flush=True)
    sys.stdin.readline()
    worker.stop()
    print(json.dumps({"answered": worker.answered, "pid": os.getpid()}), flush=True)
    store.close()


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
