"""What opening a view costs on the wire, and the code highlighter that comes only when asked for.

A view's ``_esm`` travels in full with every comm open, so it is packed (base64 of the bundle's
gzip, unpacked in the browser). The code highlighter (highlight.js and its grammars) is in no view's
bundle: a view that shows code asks its widget for it once per page, and the widget replies with
the module, packed the same way.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import threadwidget as tw
from threadwidget.widgets import _base
from threadwidget.widgets._base import HIGHLIGHTER

from .test_kernel_widgets import TIMEOUT_S, Kernel, next_iopub
from .widget_comm import RecordingComm, browser_sends, comms

__all__ = ["comms"]  # the fixture, imported for pytest

#: The comm opens of a ChatView of an empty thread when its bundle held highlight.js, unpacked:
#: 164,119 bytes at commit ff3f1c6 measured as below; 158 KB is the figure the goal was set against.
OLD_CHATVIEW_OPEN = 158_000


def unpacked(source: str) -> bytes:
    return gzip.decompress(base64.b64decode(source))


def wire_size(data: Any) -> int:
    """Bytes of ``data`` as JSON, as the kernel's session writes it (UTF-8, no ASCII escapes)."""
    return len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())


# -- in a real kernel ----------------------------------------------------------------------------


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Kernel]:
    k = Kernel(tmp_path / "kernels")
    try:
        yield k
    finally:
        k.close()


def iopub_of(k: Kernel, parent_id: str) -> list[dict[str, Any]]:
    """The iopub messages caused by the request ``parent_id``, through its ``idle`` status."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        _, msg = next_iopub(k, deadline)
        if msg["parent_header"].get("msg_id") != parent_id:
            continue
        if msg["msg_type"] == "error":
            pytest.fail("\n".join(msg["content"]["traceback"]))
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return out
        out.append(msg)


def run(k: Kernel, code: str) -> list[dict[str, Any]]:
    return iopub_of(k, k.client.execute(code))


def from_view(k: Kernel, comm_id: str, content: dict[str, Any]) -> list[dict[str, Any]]:
    """A custom message from a view of the widget ``comm_id``; the iopub messages it caused."""
    msg = k.client.session.msg("comm_msg", {"comm_id": comm_id, "data": {"method": "custom", "content": content}})
    k.client.shell_channel.send(msg)
    return iopub_of(k, msg["header"]["msg_id"])


def customs(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        m["content"]["data"]["content"]
        for m in msgs
        if m["msg_type"] == "comm_msg" and m["content"]["data"].get("method") == "custom"
    ]


def test_a_chatview_opens_in_half_the_bytes_and_gets_the_highlighter_only_on_request(
    kernel: Kernel, tmp_path: Path
) -> None:
    db = tmp_path / "open.db"
    with tw.Store(db) as store:
        empty = store.create_thread(title="Empty", agent="support").id
        coded = store.create_thread(title="Code", agent="support").id
        store.add_message(coded, role="user", text="How do I sum them?", agent="support")
        store.add_message(coded, role="assistant", text="```python\nsum(xs)\n```", agent="support")
    run(kernel, f"import threadwidget as tw\nstore = tw.Store({str(db)!r})")

    shown = run(kernel, f"view = tw.ChatView({empty!r}, store=store)\ndisplay(view)")
    opens = [m for m in shown if m["msg_type"] == "comm_open"]
    (display,) = [m for m in shown if m["msg_type"] == "display_data"]
    model_id = display["content"]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
    assert model_id in {m["content"]["comm_id"] for m in opens}  # the view's model, and its layout
    opened = sum(wire_size(m["content"]["data"]) for m in opens)
    assert opened <= OLD_CHATVIEW_OPEN / 2, f"a ChatView opens with {opened:,} bytes"
    assert customs(shown) == []

    # A view of a thread with code opens no differently: the page asks when it shows the code.
    shown = run(kernel, f"coded = tw.ChatView({coded!r}, store=store)\ndisplay(coded)")
    assert customs(shown) == []
    assert sum(wire_size(m["content"]["data"]) for m in shown if m["msg_type"] == "comm_open") < opened + 1000

    replies = customs(from_view(kernel, model_id, {"kind": "highlighter"}))
    assert [r["kind"] for r in replies] == ["highlighter"]
    assert unpacked(replies[0]["source"]) == HIGHLIGHTER.read_bytes()
    size = wire_size(replies[0])
    print(f"\nChatView comm opens: {opened:,} bytes; the highlighter, once a page asks: {size:,} bytes")

    # A view opened later does not bring it either: the page that asked keeps it.
    shown = run(kernel, f"again = tw.ChatView({empty!r}, store=store)\ndisplay(again)")
    assert customs(shown) == []
    run(kernel, "view.close(); coded.close(); again.close(); store.close()")


# -- the widget's side, without a kernel -----------------------------------------------------------


def test_every_view_answers_a_request_for_the_highlighter_with_the_module(
    store: tw.Store, comms: list[RecordingComm]
) -> None:
    thread = store.create_thread(title="Code", agent="support")
    views = [
        tw.ChatView(thread.id, store=store),
        tw.ThreadApp(store),
        tw.ToolCallsPanel(thread.id, store=store),
        tw.ThreadList(store),
    ]
    for view in views:
        comm = view.comm
        assert isinstance(comm, RecordingComm)
        assert comm.customs() == []  # never sent unasked
        browser_sends(view, {"kind": "highlighter"})
        (reply,) = comm.customs()
        assert reply["kind"] == "highlighter"
        assert unpacked(reply["source"]) == HIGHLIGHTER.read_bytes()


def test_without_the_highlighter_built_a_request_is_logged_and_code_stays_plain(
    store: tw.Store, comms: list[RecordingComm], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_base, "HIGHLIGHTER", Path("/nonexistent/threadwidget/static/highlight.js"))
    view = tw.ChatView(store.create_thread().id, store=store)
    with caplog.at_level(logging.WARNING, logger="threadwidget.widgets"):
        browser_sends(view, {"kind": "highlighter"})
    comm = view.comm
    assert isinstance(comm, RecordingComm) and comm.customs() == []
    assert "highlight.js is missing" in caplog.text
    assert view.error == ""  # nothing for the user to act on: code is shown unhighlighted
