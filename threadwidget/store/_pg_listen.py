"""The feed's wake-ups on PostgreSQL: one connection per process that ``LISTEN``s."""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from typing import Any

from ._pg_sql import driver
from ._wake import Waiter

__all__ = ["ListenWaiter"]

log = logging.getLogger("threadwidget.store")


class ListenWaiter(Waiter):
    """The feed waits on a connection that ``LISTEN``s to the store's channel. A lost connection is
    reopened (with backoff); meanwhile ``reconnecting`` is true and the feed keeps checking the
    change log every ``poll_interval`` (which catches up whatever it missed)."""

    mode = "listen"
    slow_check = 1.0  # every writer notifies (a trigger on the change log): looking is only a safety net

    def __init__(self, conninfo: str, options: dict[str, Any], channel: str, *, poll_interval: float):
        self._conninfo = conninfo
        self._options = options
        self._channel = channel
        self._poll_interval = poll_interval
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._conn: Any = None
        self._next_try = 0.0
        self._failures = 0
        self.reconnecting = False
        self._lock = threading.Lock()
        self._open()

    def _open(self) -> None:
        psycopg = driver()
        try:
            conn = psycopg.connect(self._conninfo, **self._options)
            conn.execute(f"LISTEN {self._channel}")
        except psycopg.Error as exc:
            self._failures += 1
            self._next_try = time.monotonic() + min(5.0, 0.05 * 2**self._failures)
            if not self.reconnecting:
                log.warning("threadwidget feed: cannot listen on %s (%s); reconnecting", self._channel, exc)
            self.reconnecting = True
            return
        if self.reconnecting:
            log.warning("threadwidget feed: listening again on %s", self._channel)
        self._conn, self._failures, self.reconnecting = conn, 0, False

    def _close_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass  # already gone with the server
        self._conn = None

    def _drop(self) -> None:
        self._close_connection()
        self.reconnecting = True
        self._next_try = time.monotonic()

    def wait(self, timeout: float) -> None:
        if self._conn is None and time.monotonic() >= self._next_try:
            self._open()
        fds = [self._wake_r]
        if self._conn is not None:
            fds.append(self._conn.pgconn.socket)
        else:
            timeout = min(timeout, self._poll_interval)
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        ready = {fd for fd, _ in poller.poll(max(0.0, timeout) * 1000)}
        if self._wake_r in ready:
            try:
                while os.read(self._wake_r, 4096):
                    pass
            except BlockingIOError:
                pass
        if self._conn is not None and len(fds) > 1 and fds[1] in ready:
            pgconn = self._conn.pgconn
            try:
                pgconn.consume_input()
                while pgconn.notifies() is not None:
                    pass  # one wake-up for all of them: the feed reads the change log
            except Exception:
                log.warning("threadwidget feed: the listening connection was lost; reconnecting")
                self._drop()
            else:
                if pgconn.status != 0:  # CONNECTION_OK
                    self._drop()

    def wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        self._close_connection()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
