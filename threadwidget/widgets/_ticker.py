"""Deferred work of the widgets: one timer thread per process, throttles, and the comm-message cap.

Widgets coalesce what they send (streamed text, trait updates). Work that is not due yet is handed to
the process's one ``Ticker`` thread, which calls it at its deadline. The ticker holds only weak
references to bound methods, so a pending timer never keeps a closed widget alive. ``RATE`` caps the
comm messages of every widget in the process together, well under Jupyter Server's limit.
"""

from __future__ import annotations

import heapq
import inspect
import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from .._pace import RateLimit

__all__ = ["RATE", "TICKER", "Throttle", "Ticker"]

log = logging.getLogger("threadwidget.widgets")


class Ticker:
    """Calls functions at deadlines (``time.monotonic()`` seconds) from one daemon thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], Any]]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def call_at(self, when: float, fn: Callable[[], object]) -> None:
        """Call ``fn()`` at ``when``. A bound method is held weakly: dropped if its object is gone."""
        ref: Callable[[], Any] = weakref.WeakMethod(fn) if inspect.ismethod(fn) else (lambda: fn)
        with self._cond:
            heapq.heappush(self._heap, (when, next(self._order), ref))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="threadwidget-ticker", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        _, _, ref = heapq.heappop(self._heap)
                        break
                    self._cond.wait(self._heap[0][0] - now if self._heap else None)
            fn = ref()
            if fn is None:
                continue
            try:
                fn()
            except Exception:  # one widget's failure must not stop the others' timers
                log.exception("threadwidget: a widget's deferred update failed")
            del fn, ref  # held no longer than the call: a closed widget must not stay alive here


class Throttle:
    """Run ``fn`` at most once per ``interval`` seconds, and at the earliest ``gather`` seconds after the
    first ``mark()`` since the last run (so a burst of changes becomes one update). With ``pace`` (a
    ``RateLimit`` of this throttle's own) instead of an interval, runs go out at once while the
    bucket holds a token; under load a run that had to wait goes out with the next ``mark()`` after
    the bucket refilled (the change that just came waits for nothing), or at the latest ``slack``
    seconds later. ``limit`` is shared (the process's).

    ``fn`` runs with ``lock`` held: on the marking thread when it is due at once, else on the ticker.
    Callers of ``mark``/``run_now``/``cancel`` hold ``lock``.
    """

    def __init__(
        self,
        lock: threading.RLock,
        fn: Callable[[], object],
        *,
        interval: float,
        gather: float = 0.0,
        limit: RateLimit | None = None,
        pace: RateLimit | None = None,
        ticker: Ticker | None = None,
    ) -> None:
        self._lock = lock
        self._fn = fn
        self.interval = interval
        self.gather = gather
        self._limit = limit
        self._pace = pace
        self._ticker = ticker or TICKER
        self._due: float | None = None
        self._paced = False  # what waits, waits for the pace: the next mark() may take it along
        # how long past the refill a waiting change waits for the next one to go with: longer than the
        # gap between changes that come at up to twice the pace, so each message then carries one
        # change that waited and one that did not (a timer that fires first sends one alone and
        # makes the next one wait), and short enough for the last change before a pause
        self.slack = 0.75 / pace.per_second if pace is not None else 0.0
        self._last = -1e9

    @property
    def pending(self) -> bool:
        return self._due is not None

    def mark(self) -> None:
        if self._due is not None:
            if self._paced and self._due - self.slack <= time.monotonic():
                self._run(time.monotonic())  # the bucket refilled: go now, with this change
            return
        now = time.monotonic()
        due = max(now + self.gather, self._last + self.interval)
        if due <= now:
            self._run(now)
        else:
            self._schedule(due)

    def run_now(self) -> None:
        """Run at once (e.g. at the end of a stream), whatever is scheduled."""
        self._due = None
        self._paced = False
        self._last = time.monotonic()
        self._fn()

    def cancel(self) -> None:
        self._due = None
        self._paced = False

    def _schedule(self, due: float) -> None:
        self._due = due
        self._ticker.call_at(due, self._tick)

    def _run(self, now: float) -> None:
        wait = self._pace.reserve() if self._pace is not None else 0.0
        if wait == 0 and self._limit is not None:
            wait = self._limit.reserve()
            if wait > 0 and self._pace is not None:
                self._pace.refund()
        if wait > 0:
            self._paced = self._pace is not None
            self._schedule(now + wait + self.slack)
            return
        self._due = None
        self._paced = False
        self._last = now
        self._fn()

    def _tick(self) -> None:
        with self._lock:
            if self._due is None or self._due > time.monotonic():
                return  # cancelled, already run, or rescheduled later
            self._run(time.monotonic())


TICKER = Ticker()
RATE = RateLimit()
