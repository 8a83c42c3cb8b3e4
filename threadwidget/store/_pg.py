"""PostgreSQL: the database layer of a store shared by kernels on several machines.

The same contract as SQLite's layer (``_db.py``); with ``_pg_sql.py``, ``_pg_listen.py`` and
``_pg_schema.py``, the only code that knows the difference:

- **SQL.** The rows write SQLite's SQL; ``translate`` (``_pg_sql.py``) rewrites its few SQLite-only
  forms once per statement (``?`` placeholders, ``+column`` index hints, ``json_extract``, ``rowid``).
- **One writer at a time**, as SQLite's ``BEGIN IMMEDIATE``: each write transaction first takes a
  transaction-level advisory lock. So the ``changes`` sequence, assigned at insert, is also commit
  order — a reader that has seen seq N never later finds a smaller one — and every read-then-write
  of the rows (claiming a turn, numbering a message) sees no concurrent writer.
- **The server's clock**: the ``now`` given to a write (leases, expiry, timestamps) is
  ``clock_timestamp()`` of the server, read in the same round trip as the lock; kernels on several
  machines have skewed clocks.
- **Wake-ups**: a trigger on the change log sends ``NOTIFY`` (delivered at commit, once per
  transaction, whoever wrote it); each process's feed has one listening connection
  (``ListenWaiter``, ``_pg_listen.py``), which reconnects when the server goes away.
- **Connections**: a small pool (psycopg_pool) shared by the process's threads; a read borrows a
  connection for one statement, a write for its transaction. The feed and its listener have their
  own connections.

Tables live in their own schema (``threadwidget``, or ``?schema=name`` in the URL), created by
named migrations (``_pg_schema.py``).
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._errors import (
    CorruptStoreError,
    InvalidArgumentError,
    ReadOnlyStoreError,
    StoreBusyError,
    StoreClosedError,
    StoreError,
    StoreFullError,
    StoreIOError,
    StoreUnavailableError,
    StoreWarning,
)
from ._pg_listen import ListenWaiter
from ._pg_sql import PgConn, Pipelined, Rows, driver, no_nul, translate
from ._wake import Waiter

if TYPE_CHECKING:
    import psycopg_pool

__all__ = ["PgDatabase", "pg_error", "split_url"]

log = logging.getLogger("threadwidget.store")

T = TypeVar("T")

DEFAULT_SCHEMA = "threadwidget"
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_POOL_SIZE = 8  # connections a process keeps at most (reads borrow one per statement)
_WRITES = " AND ".join(
    [f"has_table_privilege('{t}', '{p}')" for t in ("threads", "messages", "deltas", "tool_calls", "runs")
     for p in ("INSERT", "UPDATE", "DELETE")]
    + ["has_table_privilege('changes', 'INSERT')"]
    + [f"has_sequence_privilege('{q}', 'USAGE')" for q in ("deltas_id_seq", "changes_seq_seq")]
)  # fmt: skip


class _PooledReads:
    """What ``Store._conn()`` returns on PostgreSQL: each statement borrows a pooled connection
    (reads outside a transaction, as SQLite's autocommit reads)."""

    __slots__ = ("_db",)

    def __init__(self, db: PgDatabase):
        self._db = db

    def execute(self, sql: str, parameters: Any = (), /) -> Rows:
        return self._db.read(sql, parameters)

    def close(self) -> None:
        pass


# -- the database ---------------------------------------------------------------------------------


def split_url(url: str) -> tuple[str, str, str]:
    """``(conninfo for libpq, schema, URL to show)``: ``?schema=`` taken out, the password hidden."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), DEFAULT_SCHEMA)
    if not _SCHEMA_NAME.fullmatch(schema):
        raise InvalidArgumentError(
            f"schema={schema!r} in the store URL is not valid; expected a lower-case SQL name "
            "(letters, digits, _), e.g. ?schema=team_threads."
        )
    conninfo = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k != "schema"])))
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    shown = urlunsplit(parts._replace(netloc=netloc))
    return conninfo, schema, shown


class PgDatabase:
    """A store's tables in one schema of a PostgreSQL database."""

    dialect = "postgresql"

    def __init__(self, url: str, *, busy_timeout: float):
        psycopg = driver()
        from psycopg_pool import ConnectionPool

        from ._pg_schema import migrate

        self._conninfo, self.schema, self.path = split_url(url)
        self.busy_timeout = busy_timeout
        self.closed = False
        self.read_only: str | None = None
        self.channel = f"threadwidget_{self.schema}"
        key = int.from_bytes(hashlib.blake2b(self.schema.encode(), digest_size=8).digest(), "big", signed=True)
        self._begin = (
            f"SELECT extract(epoch FROM clock_timestamp())::float8, txid_current() FROM pg_advisory_xact_lock({key})"
        )
        self._options = {
            "autocommit": True,
            # every query of the store is an index lookup or range: a plan made while a table was
            # small (a new store, before autovacuum analyzes it) would otherwise scan it all once
            # it is large, and keep doing so (a prepared statement keeps its plan)
            "options": f"-c search_path={self.schema} -c lock_timeout={int(busy_timeout * 1000)} -c enable_seqscan=off",
            "application_name": "threadwidget",
        }
        try:
            with psycopg.connect(self._conninfo, **self._options) as conn:
                migrate(conn, self.schema, self.path)
                self.read_only = self._write_problem(conn)
        except psycopg.Error as exc:
            raise pg_error(exc, self.path) from exc
        if self.read_only:
            warnings.warn(self.read_only, StoreWarning, stacklevel=3)
        self._pool: psycopg_pool.ConnectionPool[Any] = ConnectionPool(
            self._conninfo, kwargs=self._options, min_size=1, max_size=_POOL_SIZE, num_workers=1,
            name="threadwidget", open=True, timeout=max(busy_timeout, 5.0),
        )  # fmt: skip
        self._reads = _PooledReads(self)

    # -- connections and transactions ---------------------------------------------------------

    def conn(self) -> _PooledReads:
        if self.closed:
            raise self._closed_error()
        return self._reads

    def connect(self) -> PgConn:
        """A connection of its own (the feed's)."""
        psycopg = driver()
        try:
            return PgConn(psycopg.connect(self._conninfo, **self._options))
        except psycopg.Error as exc:
            raise pg_error(exc, self.path) from exc

    def read(self, sql: str, parameters: Any) -> Rows:
        psycopg = driver()
        if self.closed:
            raise self._closed_error()
        for attempt in range(3):  # a connection the server dropped: the pool checks and replaces it
            try:
                with self._pool.connection() as raw:
                    cur = raw.execute(translate(sql), no_nul(parameters))
                    return Rows(cur.fetchall() if cur.description else [], cur.rowcount)
            except psycopg.Error as exc:
                if attempt == 2 or self.closed or not _connection_lost(exc):
                    raise self._closed_error() if self.closed else pg_error(exc, self.path) from exc
                self._check_pool()
        raise AssertionError("unreachable")

    def _closed_error(self) -> StoreClosedError:
        return StoreClosedError(f"this Store ({self.path}) is closed; open a new tw.Store to use it again.")

    def _check_pool(self) -> None:
        """Drop the pool's connections the server closed (they are replaced in the background)."""
        try:
            self._pool.check()
        except Exception:
            pass  # the server is still away: the next attempt says so

    def _write_problem(self, conn: Any) -> str | None:
        """Why this role cannot write the store (``None`` when it can), with the fix."""
        if conn.execute(f"SELECT {_WRITES}").fetchone()[0]:
            return None
        (role,) = conn.execute("SELECT current_user").fetchone()
        return (
            f"{self.path} is read-only for role {role}: it may read the store but not write it. Views show "
            f"the threads but cannot send or stop answers. To let it write, as the schema's owner: GRANT "
            f"SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {self.schema} TO {role}; GRANT USAGE ON "
            f"ALL SEQUENCES IN SCHEMA {self.schema} TO {role};"
        )

    def write(self, fn: Callable[[Any, float], T]) -> T:
        """Run ``fn(conn, now)`` in one transaction holding the store's write lock, ``now`` from the
        server's clock. Retried (the whole transaction) while the lock is contended or the
        connection was lost before the commit was sent."""
        psycopg = driver()
        if self.closed:
            raise self._closed_error()
        if self.read_only:  # until someone grants the role what it lacks
            with self._pool.connection() as conn:
                self.read_only = self._write_problem(conn)
            if self.read_only:
                raise ReadOnlyStoreError(self.read_only)
        deadline = time.monotonic() + self.busy_timeout * 6
        delay = 0.005
        while True:
            try:
                return self._transaction(fn)
            except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected,
                    psycopg.errors.SerializationFailure) as exc:  # fmt: skip
                if time.monotonic() > deadline:
                    raise pg_error(exc, self.path) from exc
            except psycopg.Error as exc:
                if self.closed:  # closed meanwhile, by another thread: its pool with it
                    raise self._closed_error() from exc
                if not _connection_lost(exc) or time.monotonic() > deadline:
                    raise pg_error(exc, self.path) from exc
                self._check_pool()
            time.sleep(delay + random.random() * delay)  # back off before trying again
            delay = min(delay * 2, 0.5)

    def _transaction(self, fn: Callable[[Any, float], T]) -> T:
        psycopg = driver()
        committed = False
        try:
            with self._pool.connection() as raw:
                txid = None
                try:
                    with raw.pipeline() as pipeline:
                        raw.execute("BEGIN")
                        now, txid = raw.execute(self._begin).fetchone()
                        result = fn(Pipelined(raw, pipeline), float(now))
                        raw.execute("COMMIT")
                        pipeline.sync()  # one round trip for the writes nobody read and the COMMIT
                    committed = True
                except BaseException as exc:
                    if txid is not None and isinstance(exc, psycopg.Error) and _connection_lost(exc):
                        committed = self._committed(txid, exc)
                        if committed:
                            return result  # lost while committing, but it did commit
                        raise  # it did not commit: write() runs the transaction again if it can
                    if not raw.closed and raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        try:
                            raw.execute("ROLLBACK")
                        except psycopg.Error:
                            pass  # the connection is gone; the server rolled back
                    raise
                return result
        except psycopg.Error:
            # the pool's exit ends the connection's own transaction: on a connection lost after the
            # COMMIT went through, that fails too, and the write must not be run again
            if committed:
                return result
            raise

    def _committed(self, txid: int, lost: Exception) -> bool:
        """The connection was lost while committing: ask the server (once it answers again) whether
        the transaction committed, so a write happens exactly once (``txid_status``)."""
        psycopg = driver()
        deadline = time.monotonic() + self.busy_timeout * 6
        while True:
            try:
                with psycopg.connect(self._conninfo, **self._options) as conn:
                    (status,) = conn.execute("SELECT txid_status(%s)", (txid,)).fetchone()
            except psycopg.Error:
                status = "in progress"  # not back yet
            if status != "in progress":
                # rare (a server restart in the middle of a commit): say what happened, so a write
                # made twice or lost could be traced to it
                again = "" if status == "committed" else ": writing it again"
                log.warning(
                    "threadwidget: a write to %s lost its connection while committing (%s, sqlstate %s); "
                    "the server says transaction %s %s%s",
                    self.path, type(lost).__name__, getattr(lost, "sqlstate", None), txid, status, again,
                )  # fmt: skip
                return bool(status == "committed")
            if time.monotonic() > deadline:
                raise StoreUnavailableError(
                    f"the connection to {self.path} was lost while committing ({lost}), and the server did "
                    "not answer again in time to say whether the change was saved. Check the server, then "
                    "look before trying again."
                ) from lost
            time.sleep(0.05)

    def now(self) -> float:
        (now,) = self.read("SELECT extract(epoch FROM clock_timestamp())::float8", ()).fetchone()
        return float(now)

    @staticmethod
    def data_version(conn: Any) -> object:
        return None  # no cheap "did anyone commit?" here: the feed reads the change log on each wake

    def make_waiter(self, watch: str, poll_interval: float) -> Waiter:
        return ListenWaiter(self._conninfo, self._options, self.channel, poll_interval=max(poll_interval, 0.25))

    @staticmethod
    def integrity_problems(conn: Any) -> list[str]:
        return []  # the server keeps its own files consistent (checksums, WAL)

    def last_seq(self) -> int:
        return int(self.read("SELECT COALESCE(MAX(seq), 0) FROM changes", ()).fetchone()[0])

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._pool.close()


def _connection_lost(exc: Exception) -> bool:
    """The server went away or could not be reached, or the connection was found closed (not an
    error of the statement): worth trying again on another connection."""
    psycopg = driver()
    if isinstance(exc, psycopg.InterfaceError):  # "the connection is closed"
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    sqlstate = getattr(exc, "sqlstate", None)
    return sqlstate is None or str(sqlstate).startswith(("08", "57P"))


def pg_error(exc: Exception, where: str) -> StoreError:
    """The ``StoreError`` that says what a PostgreSQL error means for the store at ``where``."""
    psycopg = driver()
    errors = psycopg.errors
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, errors.InsufficientPrivilege):
        return ReadOnlyStoreError(
            f"{where} cannot be written by this role ({text}). Grant it USAGE and CREATE on the schema and "
            "SELECT, INSERT, UPDATE, DELETE on its tables and sequences (see the README's several-machines "
            "section)."
        )
    if isinstance(exc, (errors.LockNotAvailable, errors.DeadlockDetected, errors.SerializationFailure)):
        return StoreBusyError(
            f"{where} stayed locked by another writer for too long ({text}). Is a session holding a long "
            "transaction (pg_stat_activity shows it)?"
        )
    if isinstance(exc, errors.DiskFull):
        return StoreFullError(f"the server's disk holding {where} is full ({text}); nothing was written.")
    if isinstance(exc, (errors.DataCorrupted, errors.IndexCorrupted)):
        return CorruptStoreError(f"{where} is damaged on the server ({text}). Ask its administrator.")
    if isinstance(exc, errors.UndefinedTable):
        return CorruptStoreError(
            f"{where} lacks threadwidget's tables ({text}): they were dropped or changed by another program."
        )
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):  # PoolTimeout included
        return StoreUnavailableError(
            f"cannot reach the PostgreSQL server of {where} ({text}). Is it running, and are the host, port, "
            "user and password in the URL right?"
        )
    if isinstance(exc, psycopg.DataError):
        return StoreIOError(f"{where} refused a value ({text}).")
    return StoreError(f"{where}: {text}")
