"""A recording comm for widget tests without a browser: what the widgets would send to the views."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import comm
import pytest
from comm.base_comm import BaseComm


class RecordingComm(BaseComm):
    """Records every message as ``(monotonic time, msg_type, JSON text of data)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.log: list[tuple[float, str, str]] = []
        self._log_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def publish_msg(
        self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **keys: Any
    ) -> None:
        text = json.dumps(data, separators=(",", ":"))  # serialised now: later changes cannot leak in
        with self._log_lock:
            self.log.append((time.monotonic(), msg_type, text))

    def close(self, *args: Any, **kwargs: Any) -> None:
        super().close(*args, **kwargs)
        self._msg_callback = None  # a kernel forgets a closed comm: it no longer holds the widget

    def entries(self) -> list[tuple[float, str, dict[str, Any], int]]:
        with self._log_lock:
            log = list(self.log)
        return [(t, kind, json.loads(text), len(text)) for t, kind, text in log]

    def customs(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [
            data["content"]
            for _, msg_type, data, _ in self.entries()
            if msg_type == "comm_msg"
            and data.get("method") == "custom"
            and (kind is None or data["content"].get("kind") == kind)
        ]

    def updates(self) -> list[dict[str, Any]]:
        return [d["state"] for _, t, d, _ in self.entries() if t == "comm_msg" and d.get("method") == "update"]

    def nbytes(self, since: int = 0) -> int:
        with self._log_lock:
            return sum(len(text) for _, kind, text in self.log[since:] if kind == "comm_msg")

    def __len__(self) -> int:
        with self._log_lock:
            return len(self.log)


@pytest.fixture
def comms(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[RecordingComm]]:
    """Every widget created in the test gets a RecordingComm; all of them are closed at the end."""
    from ipywidgets.widgets.widget import _instances

    created: list[RecordingComm] = []

    def create_comm(*args: Any, **kwargs: Any) -> RecordingComm:
        c = RecordingComm(*args, **kwargs)
        created.append(c)
        return c

    monkeypatch.setattr(comm, "create_comm", create_comm)
    before = set(_instances)
    yield created
    for model_id in set(_instances) - before:
        widget = _instances.get(model_id)
        if widget is not None:
            widget.close()


def browser_sends(widget: Any, content: dict[str, Any]) -> None:
    """A custom message from a view, through ipywidgets' own handling."""
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


def browser_sets(widget: Any, **state: Any) -> None:
    """A trait update from a view (e.g. the thread list's ``selected``)."""
    widget._handle_msg({"content": {"data": {"method": "update", "state": state, "buffer_paths": []}}, "buffers": []})
