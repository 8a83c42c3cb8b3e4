"""Who else has a view's thread open, and who is typing: the view's side of ``store/_presence.py``.

While a view of the widget is shown in a browser (``_view_count`` > 0) and it follows a thread, its
``Presence`` renews the view's row every ``PRESENCE_RENEW`` seconds (one small write, which wakes
nobody) and reads the thread's rows once a second, on the process's ``TICKER`` thread; a ``presence``
change in the feed (a view appeared, left or started typing, in any process) reads them at once.
The trait ``present`` lists the other people there, by name, with whether they type.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from .._errors import ThreadwidgetError
from ..store import Store
from ..store._presence import PRESENCE_RENEW
from . import _wire as wire
from ._base import Host
from ._ticker import TICKER

__all__ = ["READ_EVERY", "Presence"]

log = logging.getLogger("threadwidget.widgets")

READ_EVERY = 1.0  # seconds between reads of who is there (a kernel gone drops out within 8 + 1 s)


class Presence:
    """One widget's presence in the thread it shows (``ChatController`` owns one)."""

    def __init__(self, host: Host, store: Store, user: str) -> None:
        self._host = host
        self._lock = host._lock
        self.store = store
        self.user = user
        self.view_id = f"view_{os.urandom(8).hex()}"
        self._thread_id: str | None = None
        self._views = 0
        self._typing = False
        self._renewed = 0.0  # time.monotonic() of the last write
        self._shown: list[wire.PresentUser] = []
        self._closed = False
        self._ticking = False
        self._written = False  # the view has a row in the store (to clear when it stops being shown)
        self._io = threading.Lock()  # one write or read at a time, outside the widget's lock

    @property
    def active(self) -> bool:
        return not self._closed and self._thread_id is not None and self._views > 0

    def values(self) -> list[wire.PresentUser]:
        return list(self._shown)

    # -- what the view does (hold the widget's lock) -------------------------------------------------

    def follow(self, thread_id: str | None) -> None:
        """The view switched thread (or opened one)."""
        if thread_id != self._thread_id:
            self._thread_id, self._typing, self._renewed, self._shown = thread_id, False, 0.0, []
            self._kick()

    def views(self, count: int | None) -> None:
        """How many browser views show the widget (the front end counts them)."""
        self._views = count or 0
        self._kick()

    def typing(self, flag: bool) -> None:
        if flag != self._typing:
            self._typing, self._renewed = flag, 0.0
            self._kick()

    def changed(self) -> None:
        """A ``presence`` change in the view's thread: read who is there now."""
        self._kick()

    def close(self) -> None:
        self._closed = True
        self._kick()

    # -- the ticker ----------------------------------------------------------------------------------

    def _kick(self) -> None:
        if self.active or self._written:  # a view never shown costs no write and no tick
            TICKER.call_at(time.monotonic(), self._tick)

    def _tick(self) -> None:
        """Renew or clear the row when due, read who is there, and come back in a second."""
        with self._lock:
            active, thread_id, typing = self.active, self._thread_id, self._typing
            renew = active and time.monotonic() - self._renewed >= PRESENCE_RENEW
            clear = not active and self._written
            if renew:
                self._renewed = time.monotonic()
            self._written = active
            if not (active or clear):
                return
        try:
            with self._io:
                if renew and thread_id is not None:
                    self.store.set_presence(self.view_id, thread_id, user_id=self.user, typing=typing)
                elif clear:
                    self.store.clear_presence(self.view_id)
                rows = self.store.present(thread_id) if active and thread_id is not None else []
        except ThreadwidgetError as exc:  # a closed store, a server away: try again next time
            log.debug("threadwidget: presence not written or read: %s", exc)
            rows = None
        with self._lock:
            if rows is not None and thread_id == self._thread_id:
                people: dict[str, bool] = {}
                for row in rows:
                    if row.user_id != self.user:
                        people[row.user_id] = people.get(row.user_id, False) or row.typing
                shown: list[wire.PresentUser] = [{"user": u, "typing": t} for u, t in sorted(people.items())]
                if shown != self._shown:
                    self._shown = shown
                    self._host.set_traits({"present": shown})
            if self.active and not self._ticking:
                self._ticking = True
                TICKER.call_at(time.monotonic() + READ_EVERY, self._again)

    def _again(self) -> None:
        with self._lock:
            self._ticking = False
        self._tick()
