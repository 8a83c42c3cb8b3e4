"""``ChatController``: the logic behind a chat view's traits and messages, for one thread at a time.

Traits hold the snapshot a new view needs; custom messages carry the streamed text:

* ``messages`` (the window of the last ``window`` messages) changes only at message boundaries — a
  message inserted, its status changed, its tool calls started or ended — gathered ~15 ms and at
  most every 100 ms; never per delta. On the wire, such an update carries only the *tail* of the
  window from the oldest message that changed (``wire_state``): views keep the messages that leave
  the trait (chat.ts moves them to its ``older`` list), so a boundary costs what changed, not the
  window. Whole-state requests (a new comm, a page reload) get the whole window, and so does the
  model when a new view of it appears (``_view_count`` rises) after a trimmed update.
* deltas from the store are applied per message (``LiveText``) and sent as ``DeltaMsg`` chunks: at
  once while they come slowly, under load at most ``MESSAGES_PER_SECOND`` with the view's updates
  (``Throttle`` with the view's pace, on the ticker, under the process-wide ``RATE``); the tail goes out
  with ``end: true`` as soon as the message is final.
* ``stream`` (the answer's text so far) is set when an answer starts and refreshed now and then
  (``LiveText.snapshot_due``), for views that open mid-answer or see a gap.

Every method that touches state runs with the host's lock held (see ``_base``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._pace import RateLimit
from .._statuses import LIVE_STATUSES
from ..store import Delta, Event, Message, Store, Thread, ToolCall
from . import _wire as wire
from ._base import Host, ThreadFollower
from ._budgetnote import BudgetNote
from ._chatinput import ChatRequests
from ._presence import Presence
from ._shapes import message_dict, number_queue, thread_status, tool_call_dict, transcript
from ._stream import LiveText
from ._ticker import RATE, Throttle
from ._transcript import chat_body
from ._usage import answer_cost

if TYPE_CHECKING:
    from ..agent import Agent, Worker

__all__ = ["ChatController"]

log = logging.getLogger("threadwidget.widgets")

# a view's comm messages under load, deltas and updates together (bursts of 3: <= 30 in any second);
# quiet, each delta goes at once
MESSAGES_PER_SECOND = 27
BURST = 3
TRAIT_INTERVAL = 0.1  # seconds between window rewrites
GATHER = 0.015  # a boundary waits this long for the ones that follow it (prompt, answer, streaming)
PROGRESS_INTERVAL = 0.25  # tool-call progress shown on the message chips


RECONNECTING = "Reconnecting to the store… what changes meanwhile appears when it is back."


class ChatController(ThreadFollower, ChatRequests):
    """Keeps a chat's traits in step with one thread of the store (``open(thread_id)``); answers
    the view's requests (``ChatRequests``)."""

    def __init__(
        self,
        host: Host,
        store: Store,
        *,
        window: int,
        agent: Agent | None = None,
        on_no_thread: Callable[[str], str | None] | None = None,
        on_open: Callable[[str], None] | None = None,
        user: str,
    ) -> None:
        self._host = host
        self.user = user  # the person using the view: prompts and decisions are recorded as theirs
        self._lock = host._lock
        self.store = store
        self.window = window
        self.agent = agent
        self._server: Worker | None = None  # with an agent: serves the open thread (agent.serve)
        self._on_no_thread = on_no_thread
        self._on_open = on_open  # how another thread is shown (ThreadApp: its selection); else here
        ThreadFollower.__init__(self)
        self._pace = RateLimit(MESSAGES_PER_SECOND, BURST)
        self._deltas = Throttle(self._lock, self._flush_deltas, interval=0.0, limit=RATE, pace=self._pace)
        self._traits = Throttle(self._lock, self._flush_traits, interval=TRAIT_INTERVAL, gather=GATHER)
        self._progress = Throttle(self._lock, self._flush_traits, interval=PROGRESS_INTERVAL, gather=GATHER)
        self._views_reported = False  # the front end counts its views (so new ones get the window)
        self.presence = Presence(host, store, user)  # who else has the thread open
        self.budget_note = BudgetNote(host, store, user, agent)  # whether new prompts are refused
        self._path = ""  # the ``path`` trait: changes with the thread's current path (any thread shown)
        self._clear(None)

    # -- state --------------------------------------------------------------------------------------

    def _clear(self, thread_id: str | None) -> None:
        self.thread_id = thread_id
        self._title = ""
        self._thread_agent: str | None = None
        self._order: list[str] = []  # ids of the window's messages, oldest first
        self._rows: dict[str, Message] = {}
        self._dicts: dict[str, wire.Message] = {}  # without their tool calls
        self._calls: dict[str, dict[str, wire.ToolCall]] = {}  # message id -> tool call id -> dict
        self._live: dict[str, LiveText] = {}
        self._places: dict[str, wire.BranchPlace | None] = {}  # message id -> versions shown (a path change reloads)
        self._dirty: set[str] = set()  # messages changed since the last update of `messages`
        self._wire_from: str | None = None  # while sending an update: the first message on the wire
        self._wire_full = True  # the browser's model holds the whole window
        self._stream: wire.StreamSnapshot | None = None
        self._has_older = False
        self._error = ""
        self._serve(thread_id)

    def _load(self, thread_id: str) -> None:
        """Read the thread's window from the store (only the window: construction stays fast)."""
        store = self.store
        thread = store.get_thread(thread_id)
        rows = store.list_messages(thread_id, limit=self.window + 1)
        self._clear(thread_id)
        self._set_thread(thread)
        self._has_older = len(rows) > self.window
        for row in rows[-self.window :]:
            self._put(row)
            if row.role == "assistant":
                calls = store.list_tool_calls(thread_id, message_id=row.id)
                self._calls[row.id] = {c.id: tool_call_dict(c) for c in calls}
        for row in self._rows.values():
            if row.role == "assistant" and row.status in LIVE_STATUSES:
                self._live[row.id] = self._read_live(row.id)

    def _serve(self, thread_id: str | None) -> None:
        """With an agent, serve the thread the view shows (and only while it shows it): prompts sent
        from any view of it are answered here, one at a time, in order. Answers already started go
        on when the view moves to another thread or closes."""
        if self._server is not None and self._server.thread_id != thread_id:
            self._server.stop(timeout=0, abort=False)
            self._server = None
        if self.agent is not None and thread_id is not None and self._server is None and not self._closed:
            self._server = self.agent.serve(thread_id=thread_id, max_concurrent=1)

    def _read_live(self, message_id: str) -> LiveText:
        text, seq = self.store.streamed_text(message_id)
        last = self.store.list_deltas(message_id, after_seq=seq - 1)[0].text if seq else ""
        return LiveText.from_store(message_id, text, seq, last)

    def _set_thread(self, thread: Thread) -> None:
        self._title = thread.title or ""
        self._thread_agent = thread.agent

    def _put(self, row: Message) -> None:
        """Insert or replace a message of the window; slide the window on insert."""
        if row.id not in self._rows:
            if self._order and _place(row) < _place(self._rows[self._order[0]]):
                return  # older than the window (e.g. a late status change): not shown
            self._rows[row.id] = row
            self._order.append(row.id)
            if len(self._order) > 1 and _place(row) < _place(self._rows[self._order[-2]]):
                self._order.sort(key=lambda mid: _place(self._rows[mid]))
            while len(self._order) > self.window:
                gone = self._order.pop(0)
                for table in (self._rows, self._dicts, self._calls, self._live):
                    table.pop(gone, None)
                self._has_older = True
        self._rows[row.id] = row
        self._dicts[row.id] = self._message_dict(row)
        cost = answer_cost(self.store, row)
        if cost is not None:
            self._dicts[row.id]["cost"] = cost
        self._dirty.add(row.id)

    def _message_dict(self, row: Message) -> wire.Message:
        """``message_dict`` with the row's place among its versions (read once per window load)."""
        d = message_dict(row)
        if row.id not in self._places:
            found = self.store.branch_place(row)
            self._places[row.id] = None if found is None else {"index": found[0], "count": found[1]}
        place = self._places[row.id]
        if place is not None:
            d["branch"] = place
        return d

    def messages(self) -> list[wire.Message]:
        """The ``messages`` trait value: the window with each message's tool calls."""
        out = []
        for mid in self._order:
            d = self._dicts[mid].copy()
            d["tool_calls"] = list(self._calls.get(mid, {}).values())
            out.append(d)
        number_queue(out)
        return out

    def values(self) -> wire.ChatTraits:
        """Every chat trait, as it should be now."""
        messages = self.messages()
        return {
            "thread_id": self.thread_id or "",
            "title": self._title,
            "messages": messages,
            "stream": self._stream_value(time.monotonic()),
            "status": thread_status(messages, self._thread_agent, served=self._server is not None),
            "has_older": self._has_older,
            "agent_attached": self.agent is not None,
            "error": self._error,
            "user": self.user,
            "present": self.presence.values(),
            "read_only": self.store.read_only or "",
            "connection": RECONNECTING if self.store.feed_connected is False else "",
            "path": self._path,
            "budget": self.budget_note.value(),
        }

    def _stream_value(self, now: float) -> wire.StreamSnapshot | None:
        main = next((self._live[mid] for mid in reversed(self._order) if mid in self._live), None)
        if main is None:
            self._stream = None
        elif self._stream is None or self._stream["message_id"] != main.message_id or main.snapshot_due(now):
            self._stream = main.snapshot(now)
        return self._stream

    # -- following a thread -----------------------------------------------------------------------

    def open(self, thread_id: str | None) -> wire.ChatTraits:
        """Follow ``thread_id`` (None: no thread) and return the trait values. Subscribe with
        ``start()`` once the host can take updates. Hold the lock."""
        self._restart()
        self._wire_full = True  # what open() returns is set as the whole window
        if thread_id is None:
            self._clear(None)
        else:
            self._load(thread_id)
        self._dirty.clear()
        self.presence.follow(thread_id)
        self.budget_note.follow(thread_id)
        return self.values()

    def _show(self, thread_id: str) -> None:
        """Follow ``thread_id`` (a fork just made). Hold the lock."""
        if self._on_open is not None:
            self._on_open(thread_id)
            return
        self._host.set_traits(self.open(thread_id))
        self.start()

    def _throttles(self) -> list[Any]:
        return [self._deltas, self._traits, self._progress]

    def start(self) -> None:
        super().start()
        self.budget_note.changed()  # after open()'s values are the widget's: the note read now is not overwritten

    def close(self) -> None:
        super().close()
        self._serve(None)
        self.presence.close()
        self.budget_note.close()

    def _on_event(self, event: Event) -> None:
        """Store watcher thread: one committed change of the thread (or a resync)."""
        with self._lock:
            if self._closed or (event.thread_id != self.thread_id and event.kind not in ("resync", "feed")):
                return
            row = event.row
            if event.kind == "delta" and isinstance(row, Delta):
                self._on_delta(row.message_id, row.seq, row.text)
            elif event.kind == "message" and isinstance(row, Message):
                self._on_message(row)
            elif event.kind == "tool_call" and isinstance(row, ToolCall):
                self._on_tool_call(row)
            elif event.kind == "presence":
                self.presence.changed()
            elif event.kind == "thread":
                if isinstance(row, Thread):
                    self._set_thread(row)
                elif event.op == "delete":
                    self._error = f"Thread {self.thread_id} was deleted."
                self._traits.mark()
            elif event.kind == "feed":
                self._traits.mark()  # the connection note
            elif event.kind in ("resync", "path") and self.thread_id is not None:  # path: another branch shown
                if event.kind == "path":
                    self._path = str(event.seq)  # the views drop the messages they kept
                self._host.set_traits(self.open(self.thread_id))
                self.start()

    def _on_delta(self, message_id: str, seq: int, text: str) -> None:
        live = self._live.get(message_id)
        if live is None:
            return  # an answer outside the window, or already final here
        outcome = live.apply(seq, text)
        if outcome == "append":
            self._deltas.mark()
        elif outcome == "gap":  # missed deltas (should not happen): start again from the store
            fresh = self._read_live(message_id)
            live.rebase(fresh.text, fresh.seq, fresh.last)
            self._traits.mark()

    def _on_message(self, row: Message) -> None:
        if row.ends_answer and row.is_final:
            self.budget_note.changed()  # an answer ended: new prompts may be refused now, or allowed again
        if not row.on_path and row.id not in self._rows:
            return  # on a branch the thread does not show (a switch to it reloads the window)
        self._put(row)
        if row.id not in self._rows:
            return
        if row.role == "assistant" and row.status in LIVE_STATUSES:
            self._live.setdefault(row.id, LiveText(row.id))
        else:
            ended = self._live.pop(row.id, None)
            chunk = ended.take_chunk(end=True) if ended is not None else None
            if chunk is not None:  # the tail, at once: the stream is over
                RATE.take()
                self._pace.take()
                self._host.send_custom(chunk)
        self._traits.mark()

    def _on_tool_call(self, row: ToolCall) -> None:
        if row.message_id not in self._rows:
            return
        calls = self._calls.setdefault(row.message_id, {})
        old, new = calls.get(row.id), tool_call_dict(row)
        calls[row.id] = new
        self._dirty.add(row.message_id)
        if old is None or old["status"] != new["status"] or old["error"] != new["error"]:
            self._traits.mark()
        elif old["progress"] != new["progress"] or old["progress_note"] != new["progress_note"]:
            self._progress.mark()
        # streamed arguments alone: not shown on the chips; sent with the next update

    def _flush_deltas(self) -> None:
        for live in self._live.values():
            chunk = live.take_chunk()
            if chunk is not None:
                self._host.send_custom(chunk)
        now = time.monotonic()
        main = self._live.get(self._stream["message_id"]) if self._stream is not None else None
        # for views that joined late, the text so far: a message of its own, so only when the pace
        # has one to spare (else it goes with a later flush)
        if main is not None and main.snapshot_due(now) and self._pace.reserve() == 0.0:
            self._stream = main.snapshot(now)
            self._host.set_traits({"stream": self._stream})

    def _flush_traits(self) -> None:
        self._traits.cancel()
        self._progress.cancel()
        RATE.take()
        self._pace.take()
        self._wire_from = next((mid for mid in self._order if mid in self._dirty), None)
        try:
            self._host.set_traits(self.values())
        finally:
            if self._wire_from is not None and self._wire_from != (self._order[0] if self._order else None):
                self._wire_full = False
            self._wire_from = None
            self._dirty.clear()

    def wire_state(self, state: dict[str, Any], *, full: bool) -> None:
        """Trim an update of ``messages`` to the messages from the oldest changed one on.
        Whole-state requests keep the window. ``has_older`` goes along; while the front end has not
        shown that it reports new views, it is true when the trim leaves messages out, so that a
        view that starts from a trimmed update can still load them."""
        messages = state.get("messages")
        if full or messages is None:
            return
        start = next((i for i, m in enumerate(messages) if m["id"] == self._wire_from), 0)
        if start:
            state["messages"] = messages[start:]
        state["has_older"] = self._has_older or (start > 0 and not self._views_reported)

    def on_view_count(self, old: int | None, new: int | None) -> None:
        """A view of the model appeared: give the model the whole window again if it lacks it."""
        with self._lock:
            self.presence.views(new)
            self.budget_note.views(new)
            self._views_reported = True
            if (new or 0) > (old or 0) and not self._wire_full and not self._closed:
                self._wire_full = True
                self._host.send_state(["messages", "has_older"])

    # -- text ---------------------------------------------------------------------------------------

    def transcript(self, limit: int) -> str:
        """The window's last ``limit`` messages as a static transcript's body (``chat_body``; "" with
        no thread). Reads the store once, to count the messages before the window."""
        with self._lock:
            if self.thread_id is None:
                return ""
            messages = self.messages()
            earlier = 0
            if self._has_older:
                earlier = max(0, self.store.count_messages(self.thread_id) - len(messages))
            status = thread_status(messages, self._thread_agent, served=self._server is not None)
            streamed = {mid: live.text for mid, live in self._live.items()}
            title = self._title
        return chat_body(messages, title=title, status=status, earlier=earlier, streamed=streamed, limit=limit,
                         me=self.user)  # fmt: skip

    def summary(self) -> tuple[str, list[str]]:
        """(``'title', N messages, state``, the last messages as lines) for reprs."""
        with self._lock:
            messages = self.messages()
            count = len(messages)
            if self.thread_id is not None:
                try:
                    count = self.store.count_messages(self.thread_id)
                except Exception:  # a closed store: the window is all we know
                    pass
            state = thread_status(messages, self._thread_agent, served=self._server is not None)["state"]
            head = f"{self._title!r}, {count} message{'s' if count != 1 else ''}, {state}"
            return head, transcript(messages, me=self.user)


def _place(row: Message) -> tuple[int, int]:
    """Where a message sorts in its thread: each prompt followed by its answer's steps."""
    return row.turn, row.position
