"""Whether a chat view's thread is over budget: the trait ``budget``, said before anyone asks.

Where the knowledge lives decides what a view can say truthfully:

* a view with an agent serves its thread (prompts sent from any view are answered by this process),
  so it asks the limits that answer would run under (the agent's and its store's budgets,
  ``agent/_limits.py``) what they say now: a raised limit or a new UTC day clears the note at once;
* a view without an agent (another kernel, a ``ThreadApp`` on the store alone) knows only what the
  store recorded: the answer a budget stopped that still stands for the thread
  (``store.budget_stop``), until an answer in that scope goes through or, for a daily budget, the
  UTC day ends.

The note is read when the view opens a thread, at once when an answer of the thread ends, and every
``READ_EVERY`` seconds while a view is shown in a browser (other threads' answers count towards a
user's or an agent's day), on the process's ``TICKER`` thread, outside the widget's lock.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import TYPE_CHECKING

from .._errors import ThreadwidgetError
from ..store import Store
from ._base import Host
from ._ticker import TICKER

if TYPE_CHECKING:
    from ..agent import Agent

__all__ = ["READ_EVERY", "BudgetNote", "budget_note", "note_text"]

log = logging.getLogger("threadwidget.widgets")

READ_EVERY = 5.0  # seconds between reads while shown


def note_text(reason: str) -> str:
    """``budget per_thread 0.50 $ reached: 0.51 $`` as the view says it: ``Budget per_thread 0.50 $
    reached (0.51 $): new prompts are refused until it allows``."""
    shown = reason[:1].upper() + reason[1:]
    head, sep, spent = shown.partition(" reached: ")
    if sep:
        shown = f"{head} reached ({spent})"
    return f"{shown}: new prompts are refused until it allows"


def budget_note(store: Store, thread_id: str, agent: Agent | None, user: str | None) -> str:
    """The note for a view of ``thread_id`` used by ``user`` ("" when new prompts would be answered)."""
    if agent is not None:
        if agent.budget is None and getattr(store, "budget", None) is None:
            return ""
        from ..agent._limits import refusal  # the agent is loaded: a view with one has it

        reason = refusal(agent, store, thread_id, store.get_thread(thread_id).user_id or user)
    else:
        stopped = store.budget_stop(thread_id, user_id=user)
        reason = stopped.error if stopped is not None else None
    return note_text(reason) if reason else ""


class BudgetNote:
    """One chat's budget note for the thread it shows (``ChatController`` owns one)."""

    def __init__(self, host: Host, store: Store, user: str, agent: Agent | None) -> None:
        # weakly: a read in flight on the ticker when the view is closed must not keep it alive
        self._host = weakref.ref(host)
        self._lock = host._lock
        self.store, self.user, self.agent = store, user, agent
        self._thread_id: str | None = None
        self._views = 0
        self._shown = ""
        self._closed = False
        self._ticking = False
        self._io = threading.Lock()  # one read at a time, outside the widget's lock

    def value(self) -> str:
        return self._shown

    # -- what the view does (hold the widget's lock) -------------------------------------------------

    def follow(self, thread_id: str | None) -> None:
        """The view opened a thread (or none); ``changed()`` reads its note once the widget holds
        the values the view opened with."""
        if thread_id != self._thread_id:
            self._thread_id, self._shown = thread_id, ""

    def views(self, count: int | None) -> None:
        self._views = count or 0
        self.changed()

    def changed(self) -> None:
        """An answer of the thread ended (or the view opened it): read the note now."""
        if not self._closed and self._thread_id is not None:
            TICKER.call_at(time.monotonic(), self._tick)

    def close(self) -> None:
        self._closed = True

    # -- the ticker ----------------------------------------------------------------------------------

    def _tick(self) -> None:
        with self._lock:
            if self._closed or self._thread_id is None:
                return
            thread_id = self._thread_id
        try:
            with self._io:
                shown = budget_note(self.store, thread_id, self.agent, self.user)
        except ThreadwidgetError as exc:  # a closed store, a server away, a deleted thread: next time
            log.debug("threadwidget: budget note not read: %s", exc)
            shown = None
        with self._lock:
            host = self._host()
            if host is None:
                return
            if shown is not None and thread_id == self._thread_id and shown != self._shown and not self._closed:
                self._shown = shown
                host.set_traits({"budget": shown})
            if self._views > 0 and not self._closed and not self._ticking:
                self._ticking = True
                TICKER.call_at(time.monotonic() + READ_EVERY, self._again)

    def _again(self) -> None:
        with self._lock:
            self._ticking = False
        self._tick()
