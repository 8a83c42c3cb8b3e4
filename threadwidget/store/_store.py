"""``tw.Store``: the SQLite thread store shared by every process that opens the same file.

The rows and what may be done with them: threads, messages, deltas, tool calls, the leases of
answers being written, usage. Connections, transactions and the feed live in ``_db.py``.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from typing import Any

from .._errors import InvalidArgumentError, NotFoundError
from .._usage import Usage
from ._db import Database, check_choice
from ._rows import (
    FINAL_STATUSES,
    MESSAGE_STATUSES,
    ROLES,
    TOOL_CALL_STATUSES,
    Delta,
    Message,
    Thread,
    ToolCall,
)

__all__ = ["Store"]

log = logging.getLogger("threadwidget.store")

_UNSET: Any = object()
LEASE_SECONDS = 3.0
WRITER_STOPPED = "writer stopped: the process writing this answer died or hung (its lease expired)"


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def _check_limit(limit: int) -> None:
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise InvalidArgumentError(f"limit={limit!r} is not valid; expected a positive int, e.g. limit=50.")


def _dump_metadata(metadata: Any) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise InvalidArgumentError(f"metadata={metadata!r} is not valid; expected a dict of JSON-serialisable values.")
    try:
        return json.dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"metadata={metadata!r} cannot be stored: {exc}. Pass only JSON-serialisable values."
        ) from None


class Store(Database):
    """A thread store in one SQLite file, shared by every process that opens it.

    ``Store()`` opens ``$THREADWIDGET_DB`` or the per-user default; ``Store("threads.db")`` opens or
    creates that file. ``watch`` picks how the change feed wakes up: ``"auto"`` (inotify on Linux,
    polling on network file systems and elsewhere), ``"inotify"`` or ``"poll"``. Use it as a context
    manager, or ``close()`` it, to stop its feed and close its connections.
    """

    # -- threads ------------------------------------------------------------------------------

    def create_thread(
        self,
        *,
        title: str | None = None,
        user_id: str | None = None,
        agent: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Thread:
        meta = _dump_metadata(metadata)
        tid = _new_id("th")

        def write(conn: sqlite3.Connection, now: float) -> None:
            conn.execute(
                "INSERT INTO threads VALUES (?, ?, ?, ?, ?, ?, ?)",
                (tid, title, user_id, agent, meta, now, now),
            )
            self._log(conn, tid, "thread", "insert", tid, now)

        self._write(write)
        return self.get_thread(tid)

    def get_thread(self, thread_id: str) -> Thread:
        row = self._conn().execute("SELECT * FROM threads WHERE id = ?", (thread_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no thread with id {thread_id!r} in {self.path}.")
        return Thread.from_sql(row)

    def list_threads(
        self,
        *,
        user_id: str | None = None,
        agent: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Thread]:
        """Threads, most recently active first. Page with ``before=<id of the last thread seen>``."""
        _check_limit(limit)
        where: list[str] = []
        args: list[Any] = []
        if user_id is not None:
            where.append("user_id = ?")
            args.append(user_id)
        if agent is not None:
            where.append("agent = ?")
            args.append(agent)
        if before is not None:
            cursor = self.get_thread(before)
            where.append("(updated_at < ? OR (updated_at = ? AND id < ?))")
            args += [cursor.updated_at, cursor.updated_at, cursor.id]
        sql = "SELECT * FROM threads"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY updated_at DESC, id DESC LIMIT ?"
        return [Thread.from_sql(r) for r in self._conn().execute(sql, [*args, limit])]

    def update_thread(
        self,
        thread_id: str,
        *,
        title: str | None = _UNSET,
        user_id: str | None = _UNSET,
        agent: str | None = _UNSET,
        metadata: dict[str, Any] | None = _UNSET,
    ) -> Thread:
        fields: dict[str, Any] = {}
        if title is not _UNSET:
            fields["title"] = title
        if user_id is not _UNSET:
            fields["user_id"] = user_id
        if agent is not _UNSET:
            fields["agent"] = agent
        if metadata is not _UNSET:
            fields["metadata"] = _dump_metadata(metadata)

        def write(conn: sqlite3.Connection, now: float) -> None:
            sets = ", ".join(f"{k} = ?" for k in fields)
            cur = conn.execute(
                f"UPDATE threads SET {sets}{', ' if sets else ''}updated_at = ? WHERE id = ?",
                (*fields.values(), now, thread_id),
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"no thread with id {thread_id!r} in {self.path}.")
            self._log(conn, thread_id, "thread", "update", thread_id, now)

        self._write(write)
        return self.get_thread(thread_id)

    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread with its messages, deltas, tool calls and runs."""

        def write(conn: sqlite3.Connection, now: float) -> None:
            for table in ("deltas", "tool_calls", "runs", "messages"):
                conn.execute(f"DELETE FROM {table} WHERE thread_id = ?", (thread_id,))
            if conn.execute("DELETE FROM threads WHERE id = ?", (thread_id,)).rowcount == 0:
                raise NotFoundError(f"no thread with id {thread_id!r} in {self.path}.")
            self._log(conn, thread_id, "thread", "delete", thread_id, now)

        self._write(write)

    # -- messages -----------------------------------------------------------------------------

    def add_message(
        self,
        thread_id: str,
        *,
        role: str,
        text: str = "",
        status: str = "success",
        agent: str | None = None,
        model: str | None = None,
        step: int = 0,
        metadata: dict[str, Any] | None = None,
    ) -> Message:
        """Append a message. A user message with ``status="pending"`` waits for ``agent.serve()``."""
        check_choice("role", role, ROLES)
        check_choice("status", status, MESSAGE_STATUSES)
        if not isinstance(text, str):
            raise InvalidArgumentError(f"text={text!r} is not valid; expected a str.")
        meta = _dump_metadata(metadata)
        mid = _new_id("msg")

        def write(conn: sqlite3.Connection, now: float) -> Message:
            return self._insert_message(conn, now, mid, thread_id, role, text, status, agent, model, step, meta)

        return self._write(write)

    def _insert_message(
        self, conn: sqlite3.Connection, now: float, mid: str, thread_id: str, role: str, text: str,
        status: str, agent: str | None, model: str | None, step: int, meta: str | None,
    ) -> Message:  # fmt: skip
        if conn.execute("UPDATE threads SET updated_at = ? WHERE id = ?", (now, thread_id)).rowcount == 0:
            raise NotFoundError(
                f"no thread with id {thread_id!r} in {self.path}; create it with store.create_thread()."
            )
        (position,) = conn.execute(
            "SELECT COALESCE(MAX(position) + 1, 0) FROM messages WHERE thread_id = ?", (thread_id,)
        ).fetchone()
        conn.execute(
            "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, NULL, NULL, ?, ?, ?)",
            (mid, thread_id, position, step, role, text, status, agent, model, meta, now, now),
        )
        self._log(conn, thread_id, "message", "insert", mid, now)
        metadata = json.loads(meta) if meta else {}
        return Message(
            mid, thread_id, position, step, role, text, status, None, agent, model, None, None, metadata, now, now
        )

    def get_message(self, message_id: str) -> Message:
        row = self._conn().execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no message with id {message_id!r} in {self.path}.")
        return Message.from_sql(row)

    def list_messages(
        self, thread_id: str, *, limit: int = 50, before: str | None = None, after: str | None = None
    ) -> list[Message]:
        """Messages oldest → newest: the last ``limit`` of them, or the ones ``before``/``after``
        a message id (page backwards with ``before=messages[0].id``)."""
        _check_limit(limit)
        conn = self._conn()
        if after is not None:
            pos = self.get_message(after).position
            rows = conn.execute(
                "SELECT * FROM messages WHERE thread_id = ? AND position > ? ORDER BY position LIMIT ?",
                (thread_id, pos, limit),
            ).fetchall()
            return [Message.from_sql(r) for r in rows]
        bound = self.get_message(before).position if before is not None else None
        rows = conn.execute(
            "SELECT * FROM messages WHERE thread_id = ? AND position < ? ORDER BY position DESC LIMIT ?",
            (thread_id, bound if bound is not None else 2**62, limit),
        ).fetchall()
        if not rows and bound is None:
            self.get_thread(thread_id)  # a clear error for an unknown thread
        return [Message.from_sql(r) for r in reversed(rows)]

    def count_messages(self, thread_id: str) -> int:
        return int(
            self._conn().execute("SELECT COUNT(*) FROM messages WHERE thread_id = ?", (thread_id,)).fetchone()[0]
        )

    def update_message(
        self,
        message_id: str,
        *,
        text: str = _UNSET,
        status: str = _UNSET,
        error: str | None = _UNSET,
        usage: Usage | None = _UNSET,
        finish_reason: str | None = _UNSET,
        model: str | None = _UNSET,
        metadata: dict[str, Any] | None = _UNSET,
        end_run: bool = False,
    ) -> Message:
        """Change a message. ``end_run=True`` also releases its writer's lease in the same transaction.
        A message in a final status (success/failed/aborted) does not change status again."""
        fields: dict[str, Any] = {}
        if text is not _UNSET:
            fields["text"] = text
        if status is not _UNSET:
            check_choice("status", status, MESSAGE_STATUSES)
            fields["status"] = status
        if error is not _UNSET:
            fields["error"] = error
        if usage is not _UNSET:
            fields["usage"] = json.dumps(usage.to_dict()) if usage is not None else None
        if finish_reason is not _UNSET:
            fields["finish_reason"] = finish_reason
        if model is not _UNSET:
            fields["model"] = model
        if metadata is not _UNSET:
            fields["metadata"] = _dump_metadata(metadata)

        def write(conn: sqlite3.Connection, now: float) -> bool:
            row = conn.execute("SELECT thread_id, status FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no message with id {message_id!r} in {self.path}.")
            thread_id, current = row
            changed = False
            if not (current in FINAL_STATUSES and "status" in fields):
                sets = "".join(f"{k} = ?, " for k in fields)
                conn.execute(
                    f"UPDATE messages SET {sets}updated_at = ? WHERE id = ?",
                    (*fields.values(), now, message_id),
                )
                conn.execute("UPDATE threads SET updated_at = ? WHERE id = ?", (now, thread_id))
                self._log(conn, thread_id, "message", "update", message_id, now)
                changed = True
            if end_run and conn.execute("DELETE FROM runs WHERE message_id = ?", (message_id,)).rowcount:
                self._log(conn, thread_id, "run", "delete", message_id, now)
            return changed

        self._write(write)
        return self.get_message(message_id)

    # -- deltas -------------------------------------------------------------------------------

    def append_delta(self, message_id: str, text: str) -> Delta:
        """Append streamed text to a message (seq 1, 2, 3 ... per message)."""
        if not isinstance(text, str) or not text:
            raise InvalidArgumentError(f"text={text!r} is not valid; expected a non-empty str.")

        def write(conn: sqlite3.Connection, now: float) -> Delta:
            row = conn.execute("SELECT thread_id FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no message with id {message_id!r} in {self.path}.")
            (seq,) = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM deltas WHERE message_id = ?", (message_id,)
            ).fetchone()
            cur = conn.execute(
                "INSERT INTO deltas (message_id, thread_id, seq, text, created_at) VALUES (?, ?, ?, ?, ?)",
                (message_id, row[0], seq, text, now),
            )
            self._log(conn, row[0], "delta", "insert", cur.lastrowid, now)
            return Delta(int(cur.lastrowid or 0), message_id, row[0], seq, text, now)

        return self._write(write)

    def list_deltas(self, message_id: str, *, after_seq: int = 0) -> list[Delta]:
        rows = self._conn().execute(
            "SELECT * FROM deltas WHERE message_id = ? AND seq > ? ORDER BY seq", (message_id, after_seq)
        )
        return [Delta.from_sql(r) for r in rows]

    def streamed_text(self, message_id: str) -> tuple[str, int]:
        """The text streamed so far for a message and the seq of its last delta."""
        rows = (
            self._conn()
            .execute("SELECT seq, text FROM deltas WHERE message_id = ? ORDER BY seq", (message_id,))
            .fetchall()
        )
        return "".join(t for _, t in rows), (rows[-1][0] if rows else 0)

    # -- tool calls ---------------------------------------------------------------------------

    def add_tool_call(
        self, message_id: str, *, call_id: str, name: str, arguments: str = "", status: str = "streaming_args"
    ) -> ToolCall:
        check_choice("status", status, TOOL_CALL_STATUSES)
        tcid = _new_id("tc")

        def write(conn: sqlite3.Connection, now: float) -> None:
            row = conn.execute("SELECT thread_id FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no message with id {message_id!r} in {self.path}.")
            conn.execute(
                "INSERT INTO tool_calls VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, ?, NULL, NULL, ?)",
                (tcid, row[0], message_id, call_id, name, arguments, status, now, now),
            )
            self._log(conn, row[0], "tool_call", "insert", tcid, now)

        self._write(write)
        return self.get_tool_call(tcid)

    def update_tool_call(
        self,
        tool_call_id: str,
        *,
        arguments: str = _UNSET,
        status: str = _UNSET,
        progress: float | None = _UNSET,
        progress_note: str | None = _UNSET,
        result: str | None = _UNSET,
        error: str | None = _UNSET,
    ) -> ToolCall:
        fields: dict[str, Any] = {}
        for key, value in (("arguments", arguments), ("progress", progress), ("progress_note", progress_note),
                           ("result", result), ("error", error)):  # fmt: skip
            if value is not _UNSET:
                fields[key] = value
        if status is not _UNSET:
            check_choice("status", status, TOOL_CALL_STATUSES)
            fields["status"] = status

        def write(conn: sqlite3.Connection, now: float) -> None:
            row = conn.execute("SELECT thread_id, started_at FROM tool_calls WHERE id = ?", (tool_call_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no tool call with id {tool_call_id!r} in {self.path}.")
            extra = dict(fields)
            if fields.get("status") == "running" and row[1] is None:
                extra["started_at"] = now
            if fields.get("status") in ("success", "error"):
                extra["ended_at"] = now
            sets = "".join(f"{k} = ?, " for k in extra)
            conn.execute(
                f"UPDATE tool_calls SET {sets}updated_at = ? WHERE id = ?",
                (*extra.values(), now, tool_call_id),
            )
            self._log(conn, row[0], "tool_call", "update", tool_call_id, now)

        self._write(write)
        return self.get_tool_call(tool_call_id)

    def get_tool_call(self, tool_call_id: str) -> ToolCall:
        row = self._conn().execute("SELECT * FROM tool_calls WHERE id = ?", (tool_call_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no tool call with id {tool_call_id!r} in {self.path}.")
        return ToolCall.from_sql(row)

    def list_tool_calls(
        self, thread_id: str, *, message_id: str | None = None, limit: int | None = None
    ) -> list[ToolCall]:
        """Tool calls of a thread (or of one assistant message), oldest first; with ``limit``, the
        newest ``limit`` of them."""
        if limit is not None:
            _check_limit(limit)
        column, value = ("message_id", message_id) if message_id is not None else ("thread_id", thread_id)
        rows = (
            self._conn()
            .execute(
                f"SELECT * FROM tool_calls WHERE {column} = ? ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (value, -1 if limit is None else limit),
            )
            .fetchall()
        )
        return [ToolCall.from_sql(r) for r in reversed(rows)]

    # -- runs, leases and aborts ---------------------------------------------------------------

    def start_run(
        self, thread_id: str, *, agent: str | None = None, model: str | None = None, step: int = 0,
        lease_seconds: float = LEASE_SECONDS,
    ) -> Message:  # fmt: skip
        """Create an assistant message (``pending``) and this process's lease on writing it."""
        mid = _new_id("msg")

        def write(conn: sqlite3.Connection, now: float) -> Message:
            msg = self._insert_message(conn, now, mid, thread_id, "assistant", "", "pending", agent, model, step, None)
            self._insert_run(conn, now, mid, thread_id, agent, lease_seconds)
            return msg

        return self._write(write)

    def _insert_run(
        self, conn: sqlite3.Connection, now: float, mid: str, thread_id: str, agent: str | None, lease: float
    ) -> None:
        conn.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
            (mid, thread_id, agent, self.owner, now + lease, now, now),
        )
        self._log(conn, thread_id, "run", "insert", mid, now)

    def claim_pending(
        self, agent: str, *, model: str | None = None, lease_seconds: float = LEASE_SECONDS
    ) -> tuple[Message, Message] | None:
        """Atomically claim the oldest user message waiting for ``agent``: marks it answered and
        creates the assistant message with this process's lease. ``None`` when nothing waits.
        Exactly one of many processes calling this gets each message."""

        def write(conn: sqlite3.Connection, now: float) -> tuple[str, str] | None:
            row = conn.execute(
                "SELECT m.id, m.thread_id FROM messages m JOIN threads t ON t.id = m.thread_id "
                "WHERE m.status = 'pending' AND m.role = 'user' AND COALESCE(m.agent, t.agent) = ? "
                "ORDER BY m.created_at LIMIT 1",
                (agent,),
            ).fetchone()
            if row is None:
                return None
            user_id, thread_id = row
            conn.execute("UPDATE messages SET status = 'success', updated_at = ? WHERE id = ?", (now, user_id))
            self._log(conn, thread_id, "message", "update", user_id, now)
            mid = _new_id("msg")
            self._insert_message(conn, now, mid, thread_id, "assistant", "", "pending", agent, model, 0, None)
            self._insert_run(conn, now, mid, thread_id, agent, lease_seconds)
            return user_id, mid

        claimed = self._write(write)
        if claimed is None:
            return None
        return self.get_message(claimed[0]), self.get_message(claimed[1])

    def renew_lease(self, message_id: str, *, lease_seconds: float = LEASE_SECONDS) -> bool:
        """Extend this process's lease. False when the run is gone (reaped or ended): stop writing."""

        def write(conn: sqlite3.Connection, now: float) -> bool:
            cur = conn.execute(
                "UPDATE runs SET lease_expires_at = ?, updated_at = ? WHERE message_id = ? AND owner = ?",
                (now + lease_seconds, now, message_id, self.owner),
            )
            return cur.rowcount > 0

        return self._write(write)

    def end_run(self, message_id: str) -> bool:
        """Release a writer's lease without changing its message. False when there was none."""

        def write(conn: sqlite3.Connection, now: float) -> bool:
            row = conn.execute("SELECT thread_id FROM runs WHERE message_id = ?", (message_id,)).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM runs WHERE message_id = ?", (message_id,))
            self._log(conn, row[0], "run", "delete", message_id, now)
            return True

        return self._write(write)

    def request_abort(self, thread_id: str) -> list[str]:
        """Ask the writers of every run in the thread to stop. Returns the message ids asked."""

        def write(conn: sqlite3.Connection, now: float) -> list[str]:
            ids = [r[0] for r in conn.execute(
                "SELECT message_id FROM runs WHERE thread_id = ? AND abort_requested = 0", (thread_id,))]  # fmt: skip
            for mid in ids:
                conn.execute("UPDATE runs SET abort_requested = 1, updated_at = ? WHERE message_id = ?", (now, mid))
                self._log(conn, thread_id, "run", "update", mid, now)
            return ids

        return self._write(write)

    def abort_requested(self, message_id: str) -> bool:
        row = self._conn().execute("SELECT abort_requested FROM runs WHERE message_id = ?", (message_id,)).fetchone()
        return bool(row and row[0])

    def active_runs(self, thread_id: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT message_id, thread_id, agent, owner, lease_expires_at, abort_requested FROM runs"
        args: tuple[Any, ...] = ()
        if thread_id is not None:
            sql += " WHERE thread_id = ?"
            args = (thread_id,)
        keys = ("message_id", "thread_id", "agent", "owner", "lease_expires_at", "abort_requested")
        return [dict(zip(keys, r, strict=True)) for r in self._conn().execute(sql, args)]

    def reap_expired(self) -> list[str]:
        """Fail every message whose writer's lease expired, keeping its streamed text. Any process
        with an open store may do this; the watcher thread does it about once a second."""
        conn = self._conn()
        if conn.execute("SELECT 1 FROM runs WHERE lease_expires_at < ? LIMIT 1", (time.time(),)).fetchone() is None:
            return []

        def write(conn: sqlite3.Connection, now: float) -> list[str]:
            expired = conn.execute(
                "SELECT message_id, thread_id FROM runs WHERE lease_expires_at < ?", (now,)
            ).fetchall()
            for mid, thread_id in expired:
                text = "".join(t for (t,) in conn.execute(
                    "SELECT text FROM deltas WHERE message_id = ? ORDER BY seq", (mid,)))  # fmt: skip
                cur = conn.execute(
                    "UPDATE messages SET status = 'failed', error = ?, text = ?, updated_at = ? "
                    "WHERE id = ? AND status IN ('pending', 'streaming')",
                    (WRITER_STOPPED, text, now, mid),
                )
                if cur.rowcount:
                    self._log(conn, thread_id, "message", "update", mid, now)
                for (tcid,) in conn.execute(
                    "SELECT id FROM tool_calls WHERE message_id = ? AND status IN ('streaming_args', 'running')",
                    (mid,),
                ).fetchall():
                    conn.execute(
                        "UPDATE tool_calls SET status = 'error', error = ?, ended_at = ?, updated_at = ? WHERE id = ?",
                        (WRITER_STOPPED, now, now, tcid),
                    )
                    self._log(conn, thread_id, "tool_call", "update", tcid, now)
                conn.execute("DELETE FROM runs WHERE message_id = ?", (mid,))
                self._log(conn, thread_id, "run", "delete", mid, now)
            return [mid for mid, _ in expired]

        reaped = self._write(write)
        if reaped:
            log.warning("threadwidget: marked %d message(s) failed: %s", len(reaped), WRITER_STOPPED)
        return reaped

    def prune_changes(self, keep: int | None = None) -> int:
        """Delete all but the newest ``keep`` change-log rows. Rows themselves are untouched;
        subscribers that were further behind get a ``resync`` event."""
        keep = self._keep_changes if keep is None else keep

        def write(conn: sqlite3.Connection, now: float) -> int:
            (top,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()
            return conn.execute("DELETE FROM changes WHERE seq <= ?", (top - keep,)).rowcount

        return self._write(write)

    def _housekeeping(self) -> None:
        self.reap_expired()
        (count,) = self._conn().execute("SELECT MAX(seq) - MIN(seq) FROM changes").fetchone()
        if count and count > self._keep_changes * 1.2:
            self.prune_changes()

    # -- usage ----------------------------------------------------------------------------------

    def usage(self, *, thread_id: str | None = None, agent: str | None = None) -> Usage:
        """Tokens used, summed over a thread, an agent, or the whole store (aborted and failed
        answers included)."""
        sql = (
            "SELECT COALESCE(SUM(json_extract(usage, '$.input_tokens')), 0), "
            "COALESCE(SUM(json_extract(usage, '$.output_tokens')), 0) FROM messages WHERE usage IS NOT NULL"
        )
        args: list[Any] = []
        if thread_id is not None:
            sql += " AND thread_id = ?"
            args.append(thread_id)
        if agent is not None:
            sql += " AND agent = ?"
            args.append(agent)
        i, o = self._conn().execute(sql, args).fetchone()
        return Usage(int(i), int(o))

    def usage_by_agent(self) -> dict[str | None, Usage]:
        """Tokens used per agent over the whole store, most tokens first. Keys are the messages'
        ``agent`` (what ``usage(agent=...)`` filters on); ``None`` gathers messages without one."""
        rows = self._conn().execute(
            "SELECT agent, COALESCE(SUM(json_extract(usage, '$.input_tokens')), 0) AS i, "
            "COALESCE(SUM(json_extract(usage, '$.output_tokens')), 0) AS o FROM messages "
            "WHERE usage IS NOT NULL GROUP BY agent ORDER BY i + o DESC, agent"
        )
        return {agent: Usage(int(i), int(o)) for agent, i, o in rows}
