"""Copy one store's threads into another: SQLite to PostgreSQL and back, lossless and idempotent.

Every thread, message, delta and tool call is copied with its ids, texts, times and metadata as
they are; rows the destination already has (same id; a delta: same message and seq) are left
alone, so a copy can be run again (after new messages arrived, or after an interruption) and
copies only what is missing. Each thread is copied in one transaction of the destination, which
logs it so open views there see it. Runs (leases) and the change log are not copied: they belong
to the processes of the source.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._errors import InvalidArgumentError

if TYPE_CHECKING:
    from ._store import Store

__all__ = ["CopyReport", "copy_store"]

_TABLES = ("messages", "tool_calls")
_DELTA_COLUMNS = "message_id, thread_id, seq, text, created_at"


@dataclass
class CopyReport:
    """How many rows a copy added to the destination (rows it already had are not counted)."""

    threads: int = 0
    messages: int = 0
    deltas: int = 0
    tool_calls: int = 0
    skipped_threads: list[str] = field(default_factory=list)


def copy_store(source: Store, destination: Store, *, progress: Callable[[int, int], None] | None = None) -> CopyReport:
    """Copy every thread of ``source`` that ``destination`` lacks, in whole or in part."""
    if source.path == destination.path:
        raise InvalidArgumentError(f"source and destination are the same store ({source.path}); pass two stores.")
    live = source.active_runs()
    if live:
        raise InvalidArgumentError(
            f"{len(live)} answer(s) are being written in {source.path} (e.g. in thread {live[0]['thread_id']}); "
            "copy when they have ended (or stop them). A copy can be run again: it adds only what is missing."
        )
    read = source._conn()
    thread_ids = [r[0] for r in read.execute("SELECT id FROM threads ORDER BY created_at, id")]
    report = CopyReport()
    for done, thread_id in enumerate(thread_ids, 1):
        thread = read.execute("SELECT * FROM threads WHERE id = ?", (thread_id,)).fetchone()
        rows = {t: read.execute(f"SELECT * FROM {t} WHERE thread_id = ?", (thread_id,)).fetchall() for t in _TABLES}
        deltas = read.execute(f"SELECT {_DELTA_COLUMNS} FROM deltas WHERE thread_id = ?", (thread_id,)).fetchall()
        copy = functools.partial(_copy_thread, destination, thread=thread, rows=rows, deltas=deltas)
        added = destination._write(copy)
        report.threads += added[0]
        report.messages += added[1]
        report.tool_calls += added[2]
        report.deltas += added[3]
        if progress is not None:
            progress(done, len(thread_ids))
    return report


def _insert(conn: Any, table: str, row: tuple[Any, ...], conflict: str = "") -> int:
    marks = ", ".join("?" * len(row))
    return int(conn.execute(f"INSERT INTO {table} VALUES ({marks}) ON CONFLICT {conflict}DO NOTHING", row).rowcount)


def _copy_thread(
    destination: Store, conn: Any, now: float, *, thread: tuple[Any, ...], rows: dict[str, list[Any]],
    deltas: list[Any],
) -> tuple[int, int, int, int]:  # fmt: skip
    thread_id = thread[0]
    threads = _insert(conn, "threads", tuple(thread))
    messages = sum(_insert(conn, "messages", tuple(r)) for r in rows["messages"])
    calls = sum(_insert(conn, "tool_calls", tuple(r)) for r in rows["tool_calls"])
    added_deltas = sum(
        int(conn.execute(
            f"INSERT INTO deltas ({_DELTA_COLUMNS}) VALUES (?, ?, ?, ?, ?) ON CONFLICT (message_id, seq) DO NOTHING",
            tuple(d),
        ).rowcount)
        for d in deltas
    )  # fmt: skip
    if threads or messages or calls or added_deltas:
        conn.execute(
            "UPDATE threads SET next_position = (SELECT COALESCE(MAX(position) + 1, 0) FROM messages "
            "WHERE thread_id = ?) WHERE id = ?",
            (thread_id, thread_id),
        )  # the next message goes after the copied ones
        destination._log(conn, thread_id, "thread", "insert" if threads else "update", thread_id, now)
    return threads, messages, calls, added_deltas
