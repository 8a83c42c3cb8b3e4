"""``tw.ToolCallsPanel``: a live feed of a thread's tool calls, arguments streaming in, with progress."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import traitlets as t

from ..store import Event, Store, ToolCall
from . import _wire as wire
from ._base import STATIC, Host, ThreadFollower, TwWidget, check_count, decide, resolve_thread, resolve_user
from ._chat import ThreadTraits
from ._shapes import one_line, tool_call_dict
from ._ticker import RATE, Throttle
from ._transcript import MESSAGES, tool_calls_body, wrap

if TYPE_CHECKING:
    from ..agent import AgentThread

__all__ = ["ToolCallsPanel", "ToolsController", "ToolsTraits"]

log = logging.getLogger("threadwidget.widgets")

TOOLS_INTERVAL = 0.05  # ~20 Hz: fast enough to watch arguments stream in


class ToolsTraits(ThreadTraits):
    """The synced traits of a tool-call feed (``ToolsTraits`` in js/src/protocol.ts)."""

    tool_calls: t.List[wire.ToolCall] = t.List().tag(sync=True)


class ToolsController(ThreadFollower):
    """Keeps ``tool_calls`` (the last ``limit`` calls of the thread's current path, newest last) in
    step with the store; a ``path`` change (another branch shown) reloads them."""

    def __init__(self, host: Host, store: Store, *, limit: int) -> None:
        self._host = host
        self._lock = host._lock
        self.store = store
        self.limit = limit
        self.thread_id: str | None = None
        self._calls: dict[str, wire.ToolCall] = {}
        self._shown: dict[str, bool] = {}  # message id -> on the current path
        self._flush = Throttle(self._lock, self._send, interval=TOOLS_INTERVAL)
        super().__init__()

    def open(self, thread_id: str | None) -> wire.ToolsTraits:
        """Follow ``thread_id`` and return the trait values; ``start()`` subscribes. Hold the lock."""
        self._restart()
        self.thread_id = thread_id
        calls = self.store.list_tool_calls(thread_id, limit=self.limit, on_path=True) if thread_id is not None else []
        self._calls = {c.id: tool_call_dict(c) for c in calls}
        self._shown = {}
        return self.values()

    def _on_path(self, message_id: str) -> bool:
        """Whether a call's message is on the thread's current path (known until the path changes)."""
        shown = self._shown.get(message_id)
        if shown is None:
            try:
                shown = self._shown[message_id] = self.store.get_message(message_id).on_path
            except KeyError:  # deleted meanwhile
                return False
        return shown

    def _throttles(self) -> list[Any]:
        return [self._flush]

    def values(self) -> wire.ToolsTraits:
        return {"thread_id": self.thread_id or "", "tool_calls": list(self._calls.values())}

    def _on_event(self, event: Event) -> None:
        if event.kind not in ("tool_call", "resync", "path"):
            return  # most events are deltas: leave them at once
        with self._lock:
            if self._closed or (event.thread_id != self.thread_id and event.kind != "resync"):
                return
            if event.kind in ("resync", "path"):  # path: another branch is shown, its calls, not the old one's
                self._host.set_traits(self.open(self.thread_id))
                self.start()
                return
            row = event.row
            if isinstance(row, ToolCall) and self._on_path(row.message_id):
                self._calls[row.id] = tool_call_dict(row)
                while len(self._calls) > self.limit:
                    del self._calls[next(iter(self._calls))]
                self._flush.mark()

    def _send(self) -> None:
        RATE.take()
        self._host.set_traits({"tool_calls": list(self._calls.values())})

    def transcript(self, limit: int) -> str:
        """The calls held as a static transcript's body (``tool_calls_body``)."""
        with self._lock:
            calls = list(self._calls.values())
        return tool_calls_body(calls, limit=limit, more=len(calls) >= self.limit)

    def summary(self) -> list[str]:
        with self._lock:
            calls = list(self._calls.values())
        return [one_line(f"{c['name']}({c['arguments']}) {c['status']}", 100) for c in calls[-3:]]


class ToolCallsPanel(ToolsTraits, TwWidget):
    """A live feed of the last ``limit`` tool calls on a thread's current path (the branch its chat
    shows, following a switch): arguments as the model streams them,
    status, progress and result. ``ToolCallsPanel(agent_thread)`` or ``ToolCallsPanel(thread_id, store)``.
    A call that waits for a person shows Approve / Deny, recorded as ``user``'s (default:
    ``$JUPYTERHUB_USER``, else the login name)."""

    _esm = STATIC / "tools.js"
    _css = STATIC / "widget.css"
    #: tool calls in the static HTML transcript of the display bundle
    transcript_calls: int = MESSAGES

    def __init__(
        self, thread_or_id: AgentThread | str, store: Store | None = None, *, limit: int = 50, user: str | None = None
    ) -> None:
        self._tw_prepare()
        thread_id, store, _ = resolve_thread(thread_or_id, store, None)
        self._user = resolve_user(user)
        self._tools = ToolsController(self, store, limit=check_count("limit", limit))
        with self._lock:
            values = self._tools.open(thread_id)
        super().__init__(**values)
        with self._lock:
            self._tools.start()

    def _controllers(self) -> list[Any]:
        return [c for c in (getattr(self, "_tools", None),) if c is not None]

    def _handle(self, content: wire.OutboundMsg) -> None:
        if content["kind"] == "decide":  # the Approve / Deny buttons of a call that waits
            problem = decide(self._tools.store, self._user, content)
            if problem:
                log.warning("threadwidget: %s", problem)
            return
        super()._handle(content)

    def _transcript_html(self) -> str:
        return wrap("tools", self._tools.transcript(self.transcript_calls))

    def __repr__(self) -> str:
        lines = self._tools.summary()
        closed = ", closed" if self.closed else ""
        n = len(self.tool_calls)
        head = f"ToolCallsPanel(thread {self.thread_id}, {n} tool call{'' if n == 1 else 's'}{closed})"
        return "\n".join([head, *("  " + x for x in lines)])
