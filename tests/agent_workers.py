"""Processes the cross-process agent tests start: ``python tests/agent_workers.py COMMAND ARGS``."""

from __future__ import annotations

import json
import os
import sys

import threadwidget as tw


def stream(db: str, thread_id: str, rate: str) -> None:
    """Answer a prompt slowly; print the assistant message id once text is streaming, then the result."""
    store = tw.Store(db)
    model = tw.ScriptedModel(tokens_per_second=float(rate))
    model.enqueue(" ".join(f"word{i}" for i in range(2000)))
    agent = tw.Agent("writer", model=model, store=store)
    announced = False
    pieces = agent.continue_thread(thread_id).stream_text("tell me a long story")
    for _ in pieces:
        if not announced:
            announced = True
            msg = store.list_messages(thread_id, limit=1)[-1]
            print(json.dumps({"message_id": msg.id}), flush=True)
    final = store.list_messages(thread_id, limit=1)[-1]
    print(json.dumps({"status": final.status, "error": final.error}), flush=True)
    store.close()


def skewed_stream(db: str, thread_id: str, skew: str) -> None:
    """``stream`` from a machine whose clock is ``skew`` seconds off (every ``time.time()`` here)."""
    import time

    real = time.time
    time.time = lambda: real() + float(skew)
    stream(db, thread_id, "40")


def serve(db: str, name: str) -> None:
    """Serve an agent until a line arrives on stdin; print how many answers this process wrote."""
    _serve_until_told(tw.Agent(name, model=tw.ScriptedModel(tokens_per_second=400), store=tw.Store(db)))


def _serve_until_told(agent: tw.Agent) -> None:
    """Serve ``agent``, print ``ready``, stop at a line on stdin, print how many answers it wrote."""
    worker = agent.serve()
    print("ready", flush=True)
    sys.stdin.readline()
    worker.stop()
    print(json.dumps({"answered": worker.answered, "pid": os.getpid()}), flush=True)
    agent.store.close()


@tw.tool
def lookup_order(order_id: str, ctx: tw.ToolContext) -> dict:
    """Look up an order by id (takes half a second, as a warehouse query would)."""
    ctx.wait(0.5)
    return {"order_id": order_id, "status": f"order {order_id} shipped"}


class RecordingModel(tw.ScriptedModel):
    """The scripted model, writing what it was asked (the last prompt it sees) to a shared log."""

    def __init__(self, log: str) -> None:
        order = (r"order (\d+)", lambda m: tw.ScriptedModel.tool_calls([("lookup_order", {"order_id": m[1]})]))
        super().__init__(tokens_per_second=400, rules=[order])
        self.log = log

    def stream(self, messages: list, tools: list):  # type: ignore[no-untyped-def]
        last = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        after_tool = messages[-1]["role"] == "tool"
        line = json.dumps({"pid": os.getpid(), "prompt": last, "after_tool": after_tool}) + "\n"
        with open(self.log, "a") as f:  # one short append: atomic between processes
            f.write(line)
        return super().stream(messages, tools)


def serve_orders(db: str, log: str) -> None:
    """Serve agent "support" with a slow lookup_order tool until a line arrives on stdin."""
    _serve_until_told(tw.Agent("support", model=RecordingModel(log), tools=[lookup_order], store=tw.Store(db)))


def _refund_agent(db: str, log: str) -> tw.Agent:
    """Agent "support" whose refund tool needs a person's approval; each run of it appends a line
    (this process's id) to ``log``."""

    @tw.tool(needs_approval=lambda args: args["amount"] > 50)
    def refund(order_id: str, amount: float) -> dict:
        """Refund an order (over 50 needs a person's approval)."""
        with open(log, "a") as f:  # one short append: atomic between processes
            f.write(f"{os.getpid()} {order_id} {amount}\n")
        return {"refunded": amount, "order_id": order_id}

    rule = (
        r"refund (\d+) of (\d+)",
        lambda m: tw.ScriptedModel.tool_calls([("refund", {"order_id": m[1], "amount": float(m[2])})]),
    )
    model = tw.ScriptedModel(tokens_per_second=400, rules=[rule])
    return tw.Agent("support", model=model, tools=[refund], store=tw.Store(db))


def ask_refund(db: str, thread_id: str, log: str, prompt: str) -> None:
    """Ask for a refund in this process; print the prompt id and, once a person decided and the
    answer ended, its status and text."""
    agent = _refund_agent(db, log)
    answer = agent.continue_thread(thread_id).ask(prompt, user_id="alice")
    print(json.dumps({"prompt_id": answer.prompt_id}), flush=True)
    answer.wait(60)
    print(json.dumps({"status": answer.status, "text": answer.text}), flush=True)
    agent.store.close()


def serve_refunds(db: str, log: str) -> None:
    """Serve agent "support" with the refund tool until a line arrives on stdin."""
    _serve_until_told(_refund_agent(db, log))


def present(db: str, thread_id: str, user: str) -> None:
    """A kernel with a view of the thread open (shown in a browser) until it is killed."""
    import threading

    import ipywidgets  # noqa: F401  (the widget needs a comm; a kernel-less one is enough here)

    store = tw.Store(db)
    view = tw.ChatView(thread_id, store=store, user=user)
    view._view_count = 1
    print(json.dumps({"view_id": view._chat.presence.view_id}), flush=True)
    threading.Event().wait()


def budget_view(db: str, thread_id: str, user: str) -> None:
    """A kernel with a view of the thread open, without the agent: print its ``budget`` note as it
    changes (the first line at once), until it is killed."""
    import queue

    import ipywidgets  # noqa: F401  (the widget needs a comm; a kernel-less one is enough here)

    store = tw.Store(db)
    view = tw.ChatView(thread_id, store=store, user=user)
    notes: queue.SimpleQueue[str] = queue.SimpleQueue()
    view.observe(lambda change: notes.put(change["new"]), names="budget")
    view._view_count = 1
    print(json.dumps({"budget": view.budget}), flush=True)
    while True:
        print(json.dumps({"budget": notes.get()}), flush=True)


if __name__ == "__main__":
    globals()[sys.argv[1]](*sys.argv[2:])
