"""The change feed: one watcher thread per Store delivers committed changes to subscribers.

The watcher owns its own SQLite connection. It sleeps in a ``Waiter`` (inotify on the bell file, or
polling), and on every wake-up reads the ``changes`` log after the last seq it delivered, loads the
changed rows in one query per kind, and calls each subscriber in seq order. It never holds a read
transaction across a wait (that would block WAL checkpoints).

Besides delivering, the watcher does the store's housekeeping about once a second: it fails
``streaming`` messages whose writer's lease expired (see ``Store.reap_expired``) and prunes old
``changes`` rows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ._dialect import Conn
from ._rows import Delta, Event, Message, Presence, Thread, ToolCall
from ._wake import Waiter

__all__ = ["Subscription"]

log = logging.getLogger("threadwidget.store")

Callback = Callable[[Event], Any]

_BATCH = 2000
_HOUSEKEEPING_EVERY = 1.0  # seconds

_SELECT = {
    "thread": ("SELECT * FROM threads WHERE id IN ({})", Thread.from_sql),
    "path": ("SELECT * FROM threads WHERE id IN ({})", Thread.from_sql),
    "message": ("SELECT * FROM messages WHERE id IN ({})", Message.from_sql),
    "delta": ("SELECT * FROM deltas WHERE id IN ({})", Delta.from_sql),
    "tool_call": ("SELECT * FROM tool_calls WHERE id IN ({})", ToolCall.from_sql),
    "run": ("SELECT * FROM runs WHERE message_id IN ({})", None),
    "presence": ("SELECT * FROM presence WHERE view_id IN ({})", Presence.from_sql),
}
_RUN_COLUMNS = ("message_id", "thread_id", "agent", "owner", "lease_expires_at", "abort_requested",
                "created_at", "updated_at", "waiting_for")  # fmt: skip


class Subscription:
    """A live subscription; ``close()`` it (or use it as a context manager) to stop the callbacks."""

    def __init__(self, feed: Feed, callback: Callback, thread_id: str | None, cursor: int):
        self._feed = feed
        self.callback = callback
        self.thread_id = thread_id
        self.cursor = cursor  # the last seq this subscriber has seen
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._feed.remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        scope = f"thread {self.thread_id}" if self.thread_id else "all threads"
        return f"<Subscription {scope}, at seq {self.cursor}{', closed' if self.closed else ''}>"


class Feed:
    """The watcher thread of one Store. It calls only what it is given: ``connect`` (its own
    connection), ``last_seq`` (from the caller's connection, for a new subscriber's cursor),
    ``housekeeping`` (about once a second) and ``version`` (did anyone commit since the last look?
    ``None``: cannot tell, read the change log)."""

    def __init__(
        self,
        connect: Callable[[], Conn],
        waiter: Waiter,
        *,
        last_seq: Callable[[], int],
        housekeeping: Callable[[], None],
        version: Callable[[Any], object],
    ):
        self._last_seq = last_seq
        self._housekeeping = housekeeping
        self._version = version
        self._connect = connect
        self.failing = False
        self._announced = True
        self._conn = connect()
        self._waiter = waiter
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        self._stopping = False
        self._data_version: object = None
        self._cursor = self._max_seq()
        self._thread = threading.Thread(target=self._run, name="threadwidget-feed", daemon=True)
        self._thread.start()

    @property
    def mode(self) -> str:
        return self._waiter.mode

    def _max_seq(self) -> int:
        return int(self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0])

    def add(self, callback: Callback, thread_id: str | None, since: int | None) -> Subscription:
        with self._lock:
            # the caller's own connection: the watcher's belongs to the watcher thread
            cursor = self._last_seq() if since is None else since
            sub = Subscription(self, callback, thread_id, cursor)
            self._subs.append(sub)
        self._waiter.wake()
        return sub

    def remove(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def stop(self) -> None:
        self._stopping = True
        self._waiter.wake()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        self._waiter.close()
        self._conn.close()

    @property
    def connected(self) -> bool:
        """False while the feed cannot read the change log or wait for changes (a PostgreSQL
        server restarting): it reconnects, then delivers what it missed, in order."""
        return not self.failing and not self._waiter.reconnecting

    def _reopen(self) -> None:
        """A new connection after a failure: the old one may be gone with its server."""
        try:
            conn = self._connect()
        except Exception:
            return  # still unreachable: tried again after the next failure
        old, self._conn, self._data_version = self._conn, conn, None
        try:
            old.close()
        except Exception:
            pass

    # -- the watcher thread -------------------------------------------------------------------

    def _run(self) -> None:
        next_housekeeping = 0.0
        failing = 0  # failures in a row: back off, and log the first of a streak only
        while not self._stopping:
            try:
                self._deliver()
                now = time.monotonic()
                if now >= next_housekeeping:
                    next_housekeeping = now + _HOUSEKEEPING_EVERY
                    self._housekeeping()
            except Exception:  # the watcher must outlive any error: log it and go on
                if self._stopping:
                    return
                failing += 1
                self.failing = True
                if failing == 1:
                    log.exception("threadwidget feed: reading the change log failed; retrying")
                self._announce()
                self._waiter.wait(min(1.0, 0.01 * 2**failing))  # not a busy loop
                self._reopen()
                continue
            if failing:
                log.warning("threadwidget feed: reading the change log again")
                failing, self.failing = 0, False
            self._announce()
            self._waiter.wait(min(self._waiter.slow_check, max(0.0, next_housekeeping - time.monotonic())))

    def _announce(self) -> None:
        """Tell every subscriber (whatever thread it follows) when the feed goes off line or comes
        back: a ``feed`` event; ``connected`` says which."""
        connected = self.connected
        if connected == self._announced:
            return
        self._announced = connected
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            if not sub.closed:
                self._call(sub, Event(self._cursor, None, "feed", "update", None, None))

    def _deliver(self) -> None:
        with self._lock:
            subs = list(self._subs)
        behind = [s for s in subs if s.cursor < self._cursor]
        version = self._version(self._conn)
        if version is not None and version == self._data_version and not behind:
            return  # no other connection committed since the last look (~2 µs)
        self._data_version = version
        while True:
            for sub in behind:
                self._catch_up(sub)
            behind = []
            rows = self._conn.execute(
                "SELECT seq, thread_id, kind, op, row_id FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
                (self._cursor, _BATCH),
            ).fetchall()
            if not rows:
                return
            events = self._load(rows)
            for sub in subs:
                self._dispatch(sub, events)
            self._cursor = rows[-1][0]
            if len(rows) < _BATCH:
                return
            with self._lock:
                subs = list(self._subs)

    def _catch_up(self, sub: Subscription) -> None:
        """Replay what one subscriber missed (``since=``), or tell it to resync if pruned."""
        oldest = self._conn.execute("SELECT MIN(seq) FROM changes").fetchone()[0]
        if oldest is None or sub.cursor < oldest - 1:
            resync = Event(self._cursor, None, "resync", "update", None, None)
            sub.cursor = self._cursor
            self._call(sub, resync)
            return
        while sub.cursor < self._cursor and not sub.closed:
            rows = self._conn.execute(
                "SELECT seq, thread_id, kind, op, row_id FROM changes WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                (sub.cursor, self._cursor, _BATCH),
            ).fetchall()
            if not rows:
                sub.cursor = self._cursor
                return
            self._dispatch(sub, self._load(rows))

    def _dispatch(self, sub: Subscription, events: list[Event]) -> None:
        for event in events:
            if sub.closed:
                return
            if event.seq <= sub.cursor:
                continue
            sub.cursor = event.seq
            if sub.thread_id is None or event.thread_id == sub.thread_id:
                self._call(sub, event)

    def _call(self, sub: Subscription, event: Event) -> None:
        try:
            sub.callback(event)
        except Exception:
            log.exception("threadwidget: subscriber %r raised on event %s; the feed goes on", sub.callback, event.seq)

    def _load(self, rows: list[tuple[Any, ...]]) -> list[Event]:
        wanted: dict[str, set[str]] = {}
        for _, _, kind, _, row_id in rows:
            if row_id is not None and kind in _SELECT:
                wanted.setdefault(kind, set()).add(row_id)
        loaded: dict[tuple[str, str], Any] = {}
        for kind, ids in wanted.items():
            sql, build = _SELECT[kind]
            id_list = list(ids)
            for i in range(0, len(id_list), 500):
                chunk = id_list[i : i + 500]
                for r in self._conn.execute(sql.format(",".join("?" * len(chunk))), chunk):
                    try:
                        row = build(r) if build else dict(zip(_RUN_COLUMNS, r, strict=True))
                    except (ValueError, TypeError, IndexError):  # written by another program: not ours
                        log.warning("threadwidget feed: cannot read %s %s; its event carries no row", kind, r[0])
                        continue
                    loaded[(kind, str(r[0]))] = row
        return [
            Event(seq, thread_id, kind, op, row_id, loaded.get((kind, row_id)) if row_id else None)
            for seq, thread_id, kind, op, row_id in rows
        ]
