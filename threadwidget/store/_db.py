"""The store's file: checks at open, connections, transactions and the bell (the dialect layer).

Every write is one ``BEGIN IMMEDIATE`` transaction that also appends to the ``changes`` log, so a
change and its feed event commit together or not at all. Each thread of a process gets its own
connection. After each commit the database rings the bell that wakes the feed watchers
(``_wake.py``). ``Database`` knows nothing of rows or of the feed: ``Store`` calls it, never the
other way round.
"""

from __future__ import annotations

import os
import random
import sqlite3
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .._errors import NotADatabaseError, ReadOnlyStoreError, StoreClosedError, StoreError, StoreWarning
from ._dialect import Conn
from ._files import create_mode, precreate, sqlite_error, write_problem
from ._schema import migrate
from ._wake import Bell, Waiter, make_waiter, network_filesystem

__all__ = ["Database", "StoreWarning", "default_path", "log_change"]

T = TypeVar("T")

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
    """``$THREADWIDGET_DB`` (a file), else ``threads.db`` in the per-user data directory."""
    env = os.environ.get("THREADWIDGET_DB")
    if env and not env.startswith(("postgresql://", "postgres://")):
        return Path(env).expanduser()
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    elif sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "threadwidget" / "threads.db"


def _is_busy(exc: sqlite3.Error) -> bool:
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in str(exc)


class Database:
    """One SQLite store file: checked and migrated at open, a connection per thread (closed with
    the thread), writes as ``BEGIN IMMEDIATE`` transactions retried while another process holds the
    lock, and the bell rung after each commit."""

    dialect = "sqlite"

    def __init__(self, path: Path, *, busy_timeout: float):
        self.path = path
        self._check_file()
        if not path.exists():
            precreate(path, create_mode(path.parent))  # group-writable in a shared folder
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._conns: weakref.WeakSet[_ThreadConnection] = weakref.WeakSet()
        self._conns_lock = threading.Lock()
        self.closed = False
        self.network_fs = network_filesystem(path.parent)
        if self.network_fs:
            warnings.warn(
                f"{path} is on a {self.network_fs} network file system. SQLite's WAL mode needs every "
                "process on the same machine, and file notifications do not cross machines, so the "
                "feed polls. For users on several machines use a store on a local disk of one "
                "machine, or a server database.",
                StoreWarning,
                stacklevel=3,
            )
        conn = self.conn()
        try:
            problems = [r[0] for r in conn.execute("PRAGMA quick_check(3)")]  # ~1 ms a MB, once per open
            if problems != ["ok"]:
                raise sqlite3.DatabaseError(f"database disk image is malformed: {'; '.join(problems)}")
            migrate(conn, str(path))
        except sqlite3.Error as exc:
            conn.close()
            self.closed = True
            raise sqlite_error(exc, path) from exc
        #: why this process cannot write the store (``None`` when it can); views show it
        self.read_only: str | None = write_problem(path)
        if self.read_only:
            warnings.warn(self.read_only, StoreWarning, stacklevel=3)
        self.bell = Bell(Path(f"{path}-bell"), mode=self._file_mode(), write=not self.read_only)
        if self.bell.problem:
            warnings.warn(self.bell.problem, StoreWarning, stacklevel=3)

    # -- the file -----------------------------------------------------------------------------
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

    # -- connections and transactions ---------------------------------------------------------

    def connect(self) -> sqlite3.Connection:
        """A new connection (the feed's watcher keeps one of its own)."""
        try:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            self.retry(lambda: conn.execute("PRAGMA journal_mode = WAL"))
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            conn.close()
            if "not a database" in str(exc) or "malformed" in str(exc):
                raise NotADatabaseError(f"{self.path} is not a usable SQLite database: {exc}") from exc
            raise
        return conn

    def conn(self) -> sqlite3.Connection:
        """This thread's connection."""
        holder: _ThreadConnection | None = getattr(self._local, "conn", None)
        if self.closed:
            if holder is not None:
                holder.conn.close()
                self._local.conn = None
            raise StoreClosedError(f"this Store ({self.path}) is closed; open a new tw.Store to use it again.")
        if holder is None:
            holder = _ThreadConnection(self.connect())
            self._local.conn = holder
            with self._conns_lock:
                self._conns.add(holder)
        return holder.conn

    def retry(self, fn: Callable[[], T]) -> T:
        deadline = time.monotonic() + self.busy_timeout * 6  # 30 s at the default busy_timeout
        delay = 0.001
        while True:
            try:
                return fn()
            except sqlite3.Error as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise sqlite_error(exc, self.path) from exc
                time.sleep(delay + random.random() * delay)  # back off before retrying the lock
                delay = min(delay * 2, 0.1)

    def write(self, fn: Callable[[sqlite3.Connection, float], T]) -> T:
        """Run ``fn(conn, now)`` in one ``BEGIN IMMEDIATE`` transaction, retrying if locked."""
        conn = self.conn()
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

        result = self.retry(attempt)
        self.bell.ring()
        return result

    def now(self) -> float:
        """The store's clock: this machine's (every process of a SQLite store runs on it)."""
        return time.time()

    @staticmethod
    def data_version(conn: sqlite3.Connection) -> object:
        """Changes whenever another connection commits (the feed skips reading when it has not)."""
        return conn.execute("PRAGMA data_version").fetchone()[0]

    def make_waiter(self, watch: str, poll_interval: float) -> Waiter:
        """How the feed waits for commits: the bell, by inotify or polling."""
        mode = "poll" if self.bell.problem else watch  # a refused bell rings for nobody
        return make_waiter(self.bell.path, mode=mode, poll_interval=poll_interval)

    @staticmethod
    def integrity_problems(conn: sqlite3.Connection) -> list[str]:
        return [r[0] for r in conn.execute("PRAGMA integrity_check(20)") if r[0] != "ok"]

    def last_seq(self) -> int:
        """The seq of the newest committed change (0 for a new store)."""
        return int(self.conn().execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0])

    def close(self) -> None:
        """Close every connection and the bell. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        self.bell.close()
        # Close this thread's connection and those of threads that have ended. A connection of a
        # thread still running may be in the middle of a statement (closing it then crashes the
        # interpreter): it closes when that thread next uses the store, or ends.
        running = {t.ident for t in threading.enumerate()} - {threading.get_ident()}
        with self._conns_lock:
            for holder in list(self._conns):
                if holder.owner not in running:
                    holder.conn.close()
            self._conns.clear()


def log_change(conn: Conn, thread_id: str | None, kind: str, op: str, row_id: object, now: float) -> None:
    """Append a change to the ``changes`` log, in the caller's transaction: what the feed reads."""
    conn.execute(
        "INSERT INTO changes (thread_id, kind, op, row_id, created_at) VALUES (?, ?, ?, ?, ?)",
        (thread_id, kind, op, None if row_id is None else str(row_id), now),
    )
