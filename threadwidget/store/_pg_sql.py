"""PostgreSQL's side of the rows' SQL: translation, and the connections the rows write through."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .._errors import StoreError

if TYPE_CHECKING:
    import psycopg

__all__ = ["Pending", "PgConn", "Pipelined", "Rows", "driver", "no_nul", "translate"]


def driver() -> Any:
    try:
        import psycopg
        import psycopg_pool  # noqa: F401
    except ImportError:
        raise StoreError(
            "a PostgreSQL store needs the psycopg driver, which is not installed. Install the extra: "
            "pip install 'threadwidget[postgres]'"
        ) from None
    return psycopg


_JSON_INT = re.compile(r"json_extract\((\w+), '\$\.(\w+)'\)")
_INDEX_HINT = re.compile(r"(?<=[\s(])\+(?=[A-Za-z_])")  # SQLite's unary + before a column: not an index
_ROWID = re.compile(r"\browid\b")


@lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """SQLite's SQL as PostgreSQL (psycopg) takes it."""
    sql = _JSON_INT.sub(r"((\1::jsonb ->> '\2')::bigint)", sql)
    sql = _INDEX_HINT.sub("", sql)
    sql = _ROWID.sub("id", sql)  # only tool_calls orders by rowid; its created_at ties are broken by id
    return sql.replace("%", "%%").replace("?", "%s")


def no_nul(params: Any) -> Any:
    """PostgreSQL text cannot hold NUL: it is stored as U+FFFD (the replacement character)."""
    if any(isinstance(p, str) and "\x00" in p for p in params):
        return [p.replace("\x00", "\ufffd") if isinstance(p, str) else p for p in params]
    return params


class Rows:
    """A statement's result, read in full (the connection went back to the pool)."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int):
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return self._rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


class PgConn:
    """One psycopg connection speaking the rows' SQL."""

    __slots__ = ("raw",)

    def __init__(self, raw: psycopg.Connection[Any]):
        self.raw = raw

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self.raw.execute(translate(sql), no_nul(parameters))

    def close(self) -> None:
        self.raw.close()


class Pipelined:
    """A write transaction's connection in pipeline mode: statements whose results nobody reads
    (inserts, updates, the change log) go out together; reading a result waits for it."""

    __slots__ = ("pipeline", "raw")

    def __init__(self, raw: psycopg.Connection[Any], pipeline: psycopg.Pipeline):
        self.raw = raw
        self.pipeline = pipeline

    def execute(self, sql: str, parameters: Any = (), /) -> Pending:
        return Pending(self.raw.execute(translate(sql), no_nul(parameters)), self.pipeline)

    def close(self) -> None:
        pass


class Pending:
    """A pipelined statement's result: there when it is read."""

    __slots__ = ("_cur", "_pipeline")

    def __init__(self, cur: psycopg.Cursor[Any], pipeline: psycopg.Pipeline):
        self._cur = cur
        self._pipeline = pipeline

    @property
    def rowcount(self) -> int:
        if self._cur.rowcount < 0:  # not back yet (a later statement's result brings it along)
            self._pipeline.sync()
        return self._cur.rowcount

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall()

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cur.fetchall())
