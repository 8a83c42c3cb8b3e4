"""The one place that decides the dialect: a SQLite file or a PostgreSQL server.

The rows (``_tables.py``, ``_turns.py``, ``_runs.py``), the feed and the runtime are shared: they
speak to a database through the small interface below and write SQLite's SQL, which the
PostgreSQL layer translates (``_pg.py``). A location is a file path (SQLite, the embedded default)
or a ``postgresql://`` URL.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ._wake import Waiter

__all__ = ["Conn", "Cursor", "DatabaseLayer", "is_server_url", "open_database"]

T = TypeVar("T")

SERVER_SCHEMES = ("postgresql://", "postgres://")


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Conn(Protocol):
    """What the rows use of a connection: SQLite's ``execute`` (``?`` placeholders)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...
    def close(self) -> None: ...


class DatabaseLayer(Protocol):
    """What ``Store`` needs of a database: connections, transactions, its clock, its wake-ups."""

    path: Any  #: the file's Path, or the server URL without its password (for messages)
    dialect: str  #: ``sqlite`` or ``postgresql``: for the few queries whose SQL differs (search)
    closed: bool
    read_only: str | None

    def conn(self) -> Conn: ...
    def connect(self) -> Conn: ...
    def write(self, fn: Callable[[Any, float], T]) -> T: ...
    def now(self) -> float: ...
    def last_seq(self) -> int: ...
    def data_version(self, conn: Any) -> object: ...
    def make_waiter(self, watch: str, poll_interval: float) -> Waiter: ...
    def integrity_problems(self, conn: Any) -> list[str]: ...
    def close(self) -> None: ...


def is_server_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(SERVER_SCHEMES)


def open_database(location: str | os.PathLike[str], *, busy_timeout: float) -> DatabaseLayer:
    """The database layer for ``location``: ``PgDatabase`` for a server URL, else SQLite's."""
    if is_server_url(location):
        from ._pg import PgDatabase

        return PgDatabase(str(location), busy_timeout=busy_timeout)
    from ._db import Database

    return Database(Path(location), busy_timeout=busy_timeout)
