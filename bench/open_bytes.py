"""Benchmark of what opening a view costs on the wire, in a real kernel.

Starts an IPython kernel of this venv (``jupyter_client``), displays each view in it and records
the iopub messages the display sends before its ``display_data``: the comm opens (the view's model
and its ``Layout``) with their state, ``_esm`` (the bundle) and ``_css`` included. Then, as a view
that meets a code block does, it asks the ChatView for the highlighter and records the reply.

Figures per view: bytes of the comm opens' ``data`` as JSON (what the widget hands its comm, the
convention of ``widgets.py``), the same for the whole iopub messages as ``jupyter_client`` receives
them (the kernel's envelope included), and the part of it that is ``_esm`` and ``_css``.

    .venv/bin/python bench/open_bytes.py [--json] [--messages 50]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import threadwidget as tw

HERE = Path(__file__).resolve()
TIMEOUT_S = 60


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), default=str, ensure_ascii=False).encode())


class Kernel:
    def __init__(self, tmp: Path) -> None:
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        spec = tmp / "kernels" / "tw-bench"
        spec.mkdir(parents=True)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "bench", "language": "python"}))
        env = dict(os.environ, PYTHONPATH=str(HERE.parent.parent))
        specs = KernelSpecManager(kernel_dirs=[str(spec.parent)], ensure_native_kernel=False)
        self.km = KernelManager(kernel_name="tw-bench", kernel_spec_manager=specs)
        self.km.start_kernel(env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=TIMEOUT_S)

    def run(self, code: str) -> list[dict[str, Any]]:
        """Run ``code``; the iopub messages it caused, up to its ``idle`` status."""
        msg_id = self.kc.execute(code)
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            msg = self.kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "error":
                raise RuntimeError("\n".join(msg["content"]["traceback"]))
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return out
            out.append(msg)

    def custom(self, comm_id: str, content: dict[str, Any]) -> list[dict[str, Any]]:
        """Send a view's custom message to the widget; the iopub messages it caused."""
        msg = self.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": {"method": "custom", "content": content}})
        self.kc.shell_channel.send(msg)
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            try:
                reply = self.kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError("no reply to the custom message") from None
            if reply["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
                continue
            if reply["msg_type"] == "status" and reply["content"]["execution_state"] == "idle":
                return out
            out.append(reply)

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def opens(msgs: list[dict[str, Any]]) -> dict[str, Any]:
    """The comm opens of one display: their bytes, and the view's model id."""
    comm_opens = [m for m in msgs if m["msg_type"] == "comm_open"]
    view = next(m for m in msgs if m["msg_type"] == "display_data")
    model_id = view["content"]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
    state = next(m for m in comm_opens if m["content"]["comm_id"] == model_id)["content"]["data"]["state"]
    return {
        "model_id": model_id,
        "comm_opens": len(comm_opens),
        "data_bytes": sum(_size(m["content"]["data"]) for m in comm_opens),
        "message_bytes": sum(_size(m) for m in comm_opens),
        "esm_bytes": _size(state.get("_esm", "")) - 2,
        "css_bytes": _size(state.get("_css", "")) - 2,
    }


def fill(store: tw.Store, thread_id: str, count: int) -> None:
    code = "```python\ndef total(xs):\n    return sum(x.price for x in xs)\n```\n"
    for i in range(count // 2):
        store.add_message(thread_id, role="user", text=f"Where is order {i}?", agent="support")
        answer = f"Order **{i}** shipped on Tuesday; see [tracking](https://example.com/{i}).\n\n"
        store.add_message(thread_id, role="assistant", text=answer + (code if i % 5 == 0 else ""), agent="support")


def measure(messages: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        db = tmp / "open.db"
        with tw.Store(db) as store:
            empty = store.create_thread(title="Empty", agent="support").id
            full = store.create_thread(title="Order help", agent="support").id
            fill(store, full, messages)
        k = Kernel(tmp)
        try:
            k.run(f"import threadwidget as tw\nstore = tw.Store({str(db)!r})")
            views = {
                "ChatView, empty thread": f"tw.ChatView({empty!r}, store=store)",
                f"ChatView, {messages} messages": f"tw.ChatView({full!r}, store=store)",
                "ToolCallsPanel": f"tw.ToolCallsPanel({full!r}, store=store)",
                "ThreadList": "tw.ThreadList(store)",
                "ThreadApp": "tw.ThreadApp(store)",
            }
            result: dict[str, Any] = {}
            for name, expr in views.items():
                result[name] = opens(k.run(f"display({expr})"))  # the comm opens at construction
            chat = result["ChatView, empty thread"]["model_id"]
            reply = k.custom(chat, {"kind": "highlighter"})
            customs = [m for m in reply if m["msg_type"] == "comm_msg"]
            result["highlighter reply"] = {
                "messages": len(customs),
                "data_bytes": sum(_size(m["content"]["data"]) for m in customs),
                "message_bytes": sum(_size(m) for m in customs),
            }
        finally:
            k.close()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--messages", type=int, default=50, help="messages in the thread (one view's window)")
    args = ap.parse_args()
    result = measure(args.messages)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{'view':<26} {'comm opens':>10} {'data bytes':>11} {'with envelope':>14} {'_esm':>9} {'_css':>8}")
    for name, r in result.items():
        if name == "highlighter reply":
            continue
        print(f"{name:<26} {r['comm_opens']:>10} {r['data_bytes']:>11,} {r['message_bytes']:>14,} "
              f"{r['esm_bytes']:>9,} {r['css_bytes']:>8,}")  # fmt: skip
    h = result["highlighter reply"]
    print(f"highlighter, on request: {h['messages']} message(s), {h['data_bytes']:,} data bytes "
          f"({h['message_bytes']:,} with envelope)")  # fmt: skip


if __name__ == "__main__":
    main()
