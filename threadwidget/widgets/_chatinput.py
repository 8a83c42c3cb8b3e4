"""What a chat view asks of Python: send a prompt, stop the answers, load older messages.

The handlers may run on any thread (the kernel's shell thread, or another, depending on the
ipykernel version). They only write intents to the store (a prompt in the thread's queue, an abort
request), and take the widget's lock only to read state or to reply.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._errors import ThreadwidgetError
from ..store import Message, Store
from . import _wire as wire
from ._base import Host, decide
from ._presence import Presence
from ._shapes import message_dict, tool_call_dict, waiting_note
from ._stream import LiveText
from ._usage import answer_cost

if TYPE_CHECKING:
    from ..agent import Agent

__all__ = ["ChatRequests"]

log = logging.getLogger("threadwidget.widgets")


class ChatRequests:
    """The browser-request half of ``ChatController`` (which defines these attributes)."""

    _host: Host
    _lock: threading.RLock
    store: Store
    window: int
    thread_id: str | None
    _error: str
    _thread_agent: str | None
    agent: Agent | None
    _on_no_thread: Callable[[str], str | None] | None
    _rows: dict[str, Message]
    user: str
    presence: Presence
    _live: dict[str, LiveText]
    _show: Callable[[str], None]  # follow another thread (a fork): the view, or the app's selection

    def handle(self, content: wire.OutboundMsg) -> None:
        kind = content["kind"]
        try:
            if content["kind"] == "send":
                self.send(content["text"])
            elif content["kind"] == "abort":
                self.abort()
            elif content["kind"] == "load_older":
                self.load_older(content["request_id"], content["before"])
            elif content["kind"] == "decide":
                self.set_error(decide(self.store, self.user, content) or "")
            elif content["kind"] == "typing":
                with self._lock:
                    self.presence.typing(content["typing"])
            elif content["kind"] in ("regenerate", "edit", "fork", "branch"):
                self.set_error(self.rework(content) or "")
            else:
                log.warning("threadwidget: the chat view sent a message it has no use for: %r", kind)
        except Exception as exc:  # shown in the view, never raised into the kernel
            log.exception("threadwidget: handling %r from the chat view failed", kind)
            self.set_error(f"{kind} failed: {type(exc).__name__}: {exc}")

    def rework(self, content: wire.OutboundMsg) -> str | None:
        """A message's actions: regenerate an answer (queued like a prompt), edit a prompt (a new
        version, answered like a sent prompt), fork the thread there (the view then shows the fork),
        show another version. Returns what went wrong, or None."""
        if self.store.read_only:
            return f"Not done: {self.store.read_only}"
        with self._lock:
            thread_id = self.thread_id
        if thread_id is None:
            return "No thread is selected: pick one in the list first."
        if content["kind"] == "branch":
            self.store.select_version(content["message_id"], content["index"])
        elif content["kind"] == "fork":
            fork = self.store.fork_thread(thread_id, content["message_id"])
            with self._lock:
                if self.thread_id == thread_id:
                    self._show(fork.id)
        elif content["kind"] == "edit":
            if not content["text"].strip():
                return None
            if self.agent is not None:
                self.agent.continue_thread(thread_id).edit(content["message_id"], content["text"], user_id=self.user)
            else:
                self.store.edit(content["message_id"], content["text"], user_id=self.user)
        elif content["kind"] == "regenerate":  # answered now or in turn: by the view's agent, else whoever serves
            step = self.store.get_message(content["message_id"])
            if self.agent is not None:
                self.agent.continue_thread(thread_id).regenerate(step.reply_to or step.id, user_id=self.user)
            else:
                self.store.regenerate(step.reply_to or step.id, user_id=self.user)
        return None

    def set_error(self, text: str) -> None:
        with self._lock:
            self._error = text
            self._host.set_traits({"error": text})

    def send(self, text: str) -> None:
        """Put ``text`` in the thread's queue (``store.ask``): the view's agent answers it in this
        process, else a process running ``agent.serve()`` for the thread's agent. A prompt that
        cannot be sent goes back to the box (``UnsentMsg``) and the error says why."""
        if not text.strip():
            return
        try:
            problem = self._send(text)
        except ThreadwidgetError as exc:
            problem = f"Not sent: {exc}"
        self.set_error(problem or "")
        if problem:
            with self._lock:
                self._host.send_custom({"kind": "unsent", "text": text})

    def _send(self, text: str) -> str | None:
        """Send; what went wrong, or None."""
        if self.store.read_only:
            return f"Not sent: {self.store.read_only}"
        if self.thread_id is None and (self._on_no_thread is None or self._on_no_thread(text) is None):
            return "No thread is selected: pick one in the list first."
        with self._lock:
            thread_id = self.thread_id
            agent = self.agent.name if self.agent is not None else self._thread_agent
            view_agent = self.agent
        if thread_id is None:
            return "No thread is selected: pick one in the list first."
        if view_agent is not None:  # a thread handed over to an agent the view's agent leads to: that one answers
            agent = view_agent.continue_thread(thread_id).current_agent().name
        if agent is None:
            return f"Cannot send: {waiting_note(None)}"
        self.store.ask(thread_id, text, agent=agent, user_id=self.user)
        return None

    def abort(self) -> None:
        """Ask the writer of the thread's answer (in any process) to stop; queued prompts stay."""
        with self._lock:
            thread_id = self.thread_id
        if thread_id is not None:
            self.store.request_abort(thread_id)

    def load_older(self, request_id: str, before: str) -> None:
        """Reply ``OlderMsg``: up to ``window`` messages before the message ``before``."""
        with self._lock:
            thread_id = self.thread_id
        messages: list[wire.Message] = []
        has_older = False
        if thread_id is not None and before:
            rows = self.store.list_messages(thread_id, limit=self.window + 1, before=before)
            has_older = len(rows) > self.window
            for row in rows[-self.window :]:
                calls = self.store.list_tool_calls(thread_id, message_id=row.id) if row.role == "assistant" else []
                shape = message_dict(row, (tool_call_dict(c) for c in calls))
                cost = answer_cost(self.store, row)
                if cost is not None:
                    shape["cost"] = cost
                place = self.store.branch_place(row)
                if place is not None:
                    shape["branch"] = {"index": place[0], "count": place[1]}
                messages.append(shape)
        reply: wire.OlderMsg = {"kind": "older", "request_id": request_id, "messages": messages, "has_older": has_older}
        with self._lock:
            if self.thread_id == thread_id:
                self._host.send_custom(reply)
