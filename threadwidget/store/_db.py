"""The store's file, connections, transactions and change feed (``Store`` adds the rows in ``_store.py``).

Every write is one ``BEGIN IMMEDIATE`` transaction that also appends to the ``changes`` log, so a
change and its feed event commit together or not at all. Each thread of a process gets its own
connection. After each commit the store rings the bell that wakes the feed watchers (``_wake.py``).
"""

from __future__ import annotations

import math
import os
import random
import socket
import sqlite3
import sys
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from .._errors import (
    InvalidArgumentError,
    NotADatabaseError,
    ReadOnlyStoreError,
    StoreClosedError,
    StoreError,
    StoreWarning,
)
from ._feed import Callback, Feed, Subscription
from ._files import create_mode, precreate, sqlite_error, write_problem
from ._schema import migrate
from ._wake import Bell, make_waiter, network_filesystem

__all__ = ["Database", "StoreWarning", "check_choice", "check_number", "check_text", "default_path"]

T = TypeVar("T")
D = TypeVar("D", bound="Database")

_SQLITE_HEADER = b"SQLite format 3\x00"


class _ThreadConnection:
    """One thread's connection. When the thread ends, ``threading.local`` drops this holder and the
    connection closes with it, so threads that come and go (answers, views) do not leak them."""

    __slots__ = ("__weakref__", "conn", "owner")

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.owner = threading.get_ident()

    def __del__(self) -> None:
        self.conn.close()


def default_path() -> Path:
    """``$THREADWIDGET_DB``, else ``threads.db`` in the per-user data directory."""
    env = os.environ.get("THREADWIDGET_DB")
    if env:
        return Path(env).expanduser()
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    elif sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "threadwidget" / "threads.db"


def check_choice(name: str, value: str, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise InvalidArgumentError(f"{name}={value!r} is not valid; expected one of {', '.join(choices)}.")


def check_text(name: str, value: Any, *, optional: bool = False) -> Any:
    """A str that can be stored (UTF-8: no lone surrogates), or a clear error naming ``name``."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        expected = "a str or None" if optional else "a str"
        raise InvalidArgumentError(f"{name}={value!r} is not valid; expected {expected}.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start : exc.end]
        raise InvalidArgumentError(
            f"{name} holds {bad!r} at position {exc.start}, which is not text (a lone surrogate, e.g. from a "
            "file name that is not UTF-8); decode it properly or replace it, e.g. "
            "s.encode('utf-8', 'replace').decode()."
        ) from None
    return value


def check_number(name: str, value: object, *, above: float, example: str) -> None:
    """A real number greater than ``above``, or a clear error."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value) and value > above
    if not ok:
        raise InvalidArgumentError(f"{name}={value!r} is not valid; expected a number > {above:g}, e.g. {example}.")


def _is_busy(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in str(exc)


class Database:
    """The file, its connections and transactions, and the change feed; ``Store`` adds the rows.

    ``Store()`` with no arguments is the process's shared store of the default path: every call
    (and every agent or view made without ``store=``) gets the same open store, with one watcher
    thread, until it is closed. A path or an option opens a store of its own.
    """

    _shared: ClassVar[dict[Path, Database]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()
    _shared_key: Path | None = None
    _opened = False

    def __new__(cls: type[D], path: str | os.PathLike[str] | None = None, **options: object) -> D:
        if path is not None or options:
            return super().__new__(cls)
        key = default_path().expanduser().absolute()
        with Database._shared_lock:
            found = Database._shared.get(key)
            if isinstance(found, cls) and found._opened and not found._closed:
                return found
            made = super().__new__(cls)
            made._shared_key = key  # __init__ opens it; close() forgets it
            Database._shared[key] = made
            return made

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        watch: str = "auto",
        poll_interval: float = 0.002,
        busy_timeout: float = 5.0,
        keep_changes: int = 50_000,
    ):
        if self._opened:
            return  # the shared store, already open
        check_choice("watch", watch, ("auto", "inotify", "poll"))
        check_number("poll_interval", poll_interval, above=0.0005, example="0.002 (seconds)")
        check_number("busy_timeout", busy_timeout, above=0, example="5.0 (seconds)")
        if not isinstance(keep_changes, int) or isinstance(keep_changes, bool) or keep_changes < 100:
            raise InvalidArgumentError(
                f"keep_changes={keep_changes!r} is not valid; expected an int >= 100, e.g. keep_changes=50_000."
            )
        self.path = Path(path).expanduser() if path is not None else default_path()
        if path is None and not os.environ.get("THREADWIDGET_DB"):
            self.path.parent.mkdir(parents=True, exist_ok=True)  # the per-user data directory
        self._check_file()
        if not self.path.exists():
            precreate(self.path, create_mode(self.path.parent))  # group-writable in a shared folder
        self._busy_timeout = busy_timeout
        self._watch = watch
        self._poll_interval = poll_interval
        self._keep_changes = keep_changes
        self._local = threading.local()
        self._conns: weakref.WeakSet[_ThreadConnection] = weakref.WeakSet()
        self._conns_lock = threading.Lock()
        self._closed = False
        self._feed: Feed | None = None
        self._feed_lock = threading.Lock()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._fs = network_filesystem(self.path.parent)
        if self._fs:
            warnings.warn(
                f"{self.path} is on a {self._fs} network file system. SQLite's WAL mode needs every "
                "process on the same machine, and file notifications do not cross machines, so the "
                "feed polls. For users on several machines use a store on a local disk of one "
                "machine, or a server database.",
                StoreWarning,
                stacklevel=2,
            )
        conn = self._conn()
        try:
            problems = [r[0] for r in conn.execute("PRAGMA quick_check(3)")]  # ~1 ms a MB, once per open
            if problems != ["ok"]:
                raise sqlite3.DatabaseError(f"database disk image is malformed: {'; '.join(problems)}")
            migrate(conn, str(self.path))
        except sqlite3.Error as exc:
            conn.close()
            self._closed = True
            raise sqlite_error(exc, self.path) from exc
        #: why this process cannot write the store (``None`` when it can); views show it
        self.read_only: str | None = write_problem(self.path)
        if self.read_only:
            warnings.warn(self.read_only, StoreWarning, stacklevel=2)
        self._bell = Bell(Path(f"{self.path}-bell"), mode=self._file_mode(), write=not self.read_only)
        if self._bell.problem:
            warnings.warn(self._bell.problem, StoreWarning, stacklevel=2)
        self._opened = True

    # -- connections --------------------------------------------------------------------------

    def _check_file(self) -> None:
        p = self.path
        if p.is_dir():
            raise NotADatabaseError(f"{p} is a directory; expected a SQLite file path such as {p / 'threads.db'}.")
        if not p.parent.is_dir():
            raise StoreError(f"cannot create a store at {p}: the directory {p.parent} does not exist. Create it first.")
        if p.exists() and p.stat().st_size > 0:
            with p.open("rb") as f:
                head = f.read(16)
            if head != _SQLITE_HEADER:
                raise NotADatabaseError(
                    f"{p} is not a SQLite database (its first bytes are {head[:16]!r}). Pass the path of a "
                    "threadwidget store, or a new path to create one."
                )
            self._check_foreign(p)

    @staticmethod
    def _check_foreign(p: Path) -> None:
        """Refuse another application's SQLite file before anything writes to it (a WAL switch or
        our tables would change it): looked at read-only, so it stays byte for byte as it was."""
        try:
            conn = sqlite3.connect(f"{p.absolute().as_uri()}?mode=ro", uri=True)
            try:
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise sqlite_error(exc, p) from exc
        ours = {"threads", "messages", "_sqlite_migrations"}
        if tables and not ours <= tables:
            shown = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
            raise NotADatabaseError(
                f"{p} is a SQLite database of another application (tables: {shown}), not a threadwidget "
                "store; it was left untouched. Pass the path of a threadwidget store, or a new path to "
                "create one."
            )

    def _file_mode(self) -> int:
        """A new side file's mode: the database's (so every user of it can write it too)."""
        try:
            return self.path.stat().st_mode & 0o666
        except OSError:
            return create_mode(self.path.parent)

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            self._retry(lambda: conn.execute("PRAGMA journal_mode = WAL"))
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            conn.close()
            if "not a database" in str(exc) or "malformed" in str(exc):
                raise NotADatabaseError(f"{self.path} is not a usable SQLite database: {exc}") from exc
            raise
        return conn

    def _conn(self) -> sqlite3.Connection:
        holder: _ThreadConnection | None = getattr(self._local, "conn", None)
        if self._closed:
            if holder is not None:
                holder.conn.close()
                self._local.conn = None
            raise StoreClosedError(f"this Store ({self.path}) is closed; open a new tw.Store to use it again.")
        if holder is None:
            holder = _ThreadConnection(self._connect())
            self._local.conn = holder
            with self._conns_lock:
                self._conns.add(holder)
        return holder.conn

    def _retry(self, fn: Callable[[], T]) -> T:
        deadline = time.monotonic() + self._busy_timeout * 6  # 30 s at the default busy_timeout
        delay = 0.001
        while True:
            try:
                return fn()
            except sqlite3.Error as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise sqlite_error(exc, self.path) from exc
                time.sleep(delay + random.random() * delay)  # back off before retrying the lock
                delay = min(delay * 2, 0.1)

    def _write(self, fn: Callable[[sqlite3.Connection, float], T]) -> T:
        """Run ``fn(conn, now)`` in one ``BEGIN IMMEDIATE`` transaction, retrying if locked."""
        conn = self._conn()
        if self.read_only:  # until someone fixes the permissions
            self.read_only = write_problem(self.path)
            if self.read_only:
                raise ReadOnlyStoreError(self.read_only)

        def attempt() -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn, time.time())
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        result = self._retry(attempt)
        self._bell.ring()
        return result

    @staticmethod
    def _log(conn: sqlite3.Connection, thread_id: str | None, kind: str, op: str, row_id: object, now: float) -> None:
        conn.execute(
            "INSERT INTO changes (thread_id, kind, op, row_id, created_at) VALUES (?, ?, ?, ?, ?)",
            (thread_id, kind, op, None if row_id is None else str(row_id), now),
        )

    def close(self) -> None:
        """Stop the feed and close every connection. Safe to call twice."""
        if self._closed:
            return
        with Database._shared_lock:
            if self._shared_key is not None and Database._shared.get(self._shared_key) is self:
                del Database._shared[self._shared_key]
        with self._feed_lock:
            if self._feed is not None:
                self._feed.stop()
                self._feed = None
        self._closed = True
        self._bell.close()
        # Close this thread's connection and those of threads that have ended. A connection of a
        # thread still running may be in the middle of a statement (closing it then crashes the
        # interpreter): it closes when that thread next uses the store, or ends.
        running = {t.ident for t in threading.enumerate()} - {threading.get_ident()}
        with self._conns_lock:
            for holder in list(self._conns):
                if holder.owner not in running:
                    holder.conn.close()
            self._conns.clear()

    def __enter__(self: D) -> D:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<tw.Store {str(self.path)!r}{' closed' if self._closed else ''}>"

    # -- the change feed ----------------------------------------------------------------------

    def subscribe(self, callback: Callback, *, thread_id: str | None = None, since: int | None = None) -> Subscription:
        """Call ``callback(event)`` for every change committed from now on (or after seq ``since``),
        in commit order, from this store's watcher thread. ``thread_id`` narrows to one thread."""
        if not callable(callback):
            raise InvalidArgumentError(f"callback={callback!r} is not callable; pass a function taking one event.")
        if thread_id is not None and not isinstance(thread_id, str):
            raise InvalidArgumentError(f"thread_id={thread_id!r} is not valid; expected a thread id (str) or None.")
        if since is not None and (not isinstance(since, int) or isinstance(since, bool) or since < 0):
            raise InvalidArgumentError(
                f"since={since!r} is not valid; expected a change seq (an int >= 0, e.g. event.seq or "
                "store.last_seq()) or None."
            )
        return self._ensure_feed().add(callback, thread_id, since)

    def last_seq(self) -> int:
        """The seq of the newest committed change (0 for a new store)."""
        return int(self._conn().execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0])

    @property
    def feed_mode(self) -> str | None:
        """``inotify`` or ``poll`` once the feed runs, else None."""
        return self._feed.mode if self._feed else None

    def _ensure_feed(self) -> Feed:
        with self._feed_lock:
            if self._feed is None:
                self._conn()  # raises if closed
                mode = "poll" if self._bell.problem else self._watch  # a refused bell rings for nobody
                waiter = make_waiter(self._bell.path, mode=mode, poll_interval=self._poll_interval)
                self._feed = Feed(self, self._connect, waiter)
            return self._feed

    def start_watching(self) -> None:
        """Run the watcher (and its housekeeping, e.g. failing answers whose writer died) even with
        no subscriber."""
        self._ensure_feed()

    def _housekeeping(self) -> None:
        """What the feed's watcher does about once a second (``Store`` reaps leases, prunes)."""
