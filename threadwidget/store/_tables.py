"""Threads, messages, deltas and tool calls: their reads and writes (a part of ``Store``).

Each write is one transaction through the database (``Store._write``) that also logs the change
for the feed (``_log``); reads use the calling thread's connection. Nothing here knows about
connections, files or the feed beyond those calls.

Over 400 lines on purpose: the four tables' writes keep invariants across each other (a message's
deltas and final text, a step's tool calls, the thread's order and ``updated_at``) and read best
side by side.
"""

from __future__ import annotations

import json
from typing import Any

from .._errors import InvalidArgumentError, NotFoundError
from .._statuses import FINAL_STATUSES, LIVE_STATUSES, MESSAGE_STATUSES, ROLES, TOOL_CALL_STATUSES
from .._usage import Usage
from ._checks import check_choice, check_limit, check_text, dump_metadata
from ._dialect import Conn
from ._part import StorePart
from ._rows import Delta, Message, Thread, ToolCall
from ._vectors import forget_vectors

__all__ = ["Tables"]

_UNSET: Any = object()
_NO_LIMIT = 1 << 62


class Tables(StorePart):
    """Threads, messages, deltas and tool calls (a part of ``Store``)."""

    # -- threads ------------------------------------------------------------------------------

    def create_thread(
        self,
        *,
        title: str | None = None,
        user_id: str | None = None,
        agent: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Thread:
        for name, value in (("title", title), ("user_id", user_id), ("agent", agent)):
            check_text(name, value, optional=True)
        meta = dump_metadata(metadata)

        def write(conn: Conn, now: float) -> str:
            tid = self._new_id(conn, "th")
            conn.execute(
                "INSERT INTO threads VALUES (?, ?, ?, ?, ?, ?, ?, 0, NULL, NULL, NULL)",
                (tid, title, user_id, agent, meta, now, now),
            )
            self._log(conn, tid, "thread", "insert", tid, now)
            return tid

        return self.get_thread(self._write(write))

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
        check_limit(limit)
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
            fields["title"] = check_text("title", title, optional=True)
        if user_id is not _UNSET:
            fields["user_id"] = check_text("user_id", user_id, optional=True)
        if agent is not _UNSET:
            fields["agent"] = check_text("agent", agent, optional=True)
        if metadata is not _UNSET:
            fields["metadata"] = dump_metadata(metadata)

        def write(conn: Conn, now: float) -> None:
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
        """Delete a thread with its messages, deltas, tool calls, runs, queued regenerations and vectors."""

        def write(conn: Conn, now: float) -> None:
            forget_vectors(conn, " WHERE thread_id = ?", (thread_id,))
            for table in ("deltas", "tool_calls", "runs", "presence", "regenerations", "messages"):
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
        user_id: str | None = None,
    ) -> Message:
        """Append a message. A user message with ``status="pending"`` is a prompt in the thread's
        queue, answered by a process serving its agent (``store.ask`` does this and returns the
        ``Answer``)."""
        check_choice("role", role, ROLES)
        check_choice("status", status, MESSAGE_STATUSES)
        if status in LIVE_STATUSES and not (role == "user" and status == "pending"):
            raise InvalidArgumentError(
                f"status={status!r} is not valid for add_message(role={role!r}): nothing would ever end it. "
                "A message being written needs a writer's lease: use store.start_run(); a prompt that waits "
                "for an answer: store.ask() (or role='user', status='pending')."
            )
        check_text("text", text)
        for name, value in (("agent", agent), ("model", model), ("user_id", user_id)):
            check_text(name, value, optional=True)
        meta = dump_metadata(metadata)

        def write(conn: Conn, now: float) -> Message:
            mid = self._new_id(conn, "msg")
            return self._insert_message(
                conn, now, mid, thread_id, role, text, status, agent, model, step, meta, user_id=user_id
            )

        return self._write(write)

    def _insert_message(
        self, conn: Conn, now: float, mid: str, thread_id: str, role: str, text: str,
        status: str, agent: str | None, model: str | None, step: int, meta: str | None, *,
        reply_to: str | None = None, turn: int | None = None, user_id: str | None = None,
        parent: str | None = _UNSET, alternative: int | None = None,
    ) -> Message:  # fmt: skip
        """Insert a message at the thread's next position. A message of its own turn (``turn``
        None) follows the thread's current path and becomes its last turn, or, with ``parent``,
        starts a branch after that turn (off the path until ``_select_path``). An answer's step
        (``reply_to``) belongs to ``alternative`` (default: the prompt's newest answer) and is on
        the path when its prompt is and shows that alternative."""
        row = conn.execute(
            "UPDATE threads SET updated_at = ?, next_position = next_position + 1 WHERE id = ? "
            "RETURNING next_position - 1, head_id",
            (now, thread_id),
        ).fetchone()
        if row is None:
            raise NotFoundError(
                f"no thread with id {thread_id!r} in {self.path}; create it with store.create_thread()."
            )
        position, head = row
        parent_id, on_path = None, True
        if turn is None:
            turn = position
            alternative = 0
            if parent is _UNSET:
                parent_id = head
                conn.execute("UPDATE threads SET head_id = ? WHERE id = ?", (mid, thread_id))
            else:
                parent_id, on_path = parent, False
        elif reply_to is not None:
            shown, chosen, newest = conn.execute(
                "SELECT on_path, chosen, (SELECT COALESCE(MAX(alternative), 0) FROM messages "
                "WHERE thread_id = ? AND turn = ? AND reply_to = ?) FROM messages WHERE id = ?",
                (thread_id, turn, reply_to, reply_to),
            ).fetchone()
            alternative = newest if alternative is None else alternative
            on_path = bool(shown) and chosen == alternative
        alternative = alternative or 0
        conn.execute(
            "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, NULL, NULL, ?, ?, ?, ?, ?, 0, ?, ?, ?, 0, "
            "?)",
            (mid, thread_id, position, step, role, text, status, agent, model, meta, now, now, reply_to, turn, user_id,
             parent_id, alternative, int(on_path)),
        )  # fmt: skip
        self._log(conn, thread_id, "message", "insert", mid, now)
        metadata = json.loads(meta) if meta else {}  # a copy the caller cannot change under us
        return Message(
            mid, thread_id, position, step, role, text, status, None, agent, model, None, None, metadata, now, now,  # type: ignore[arg-type]
            reply_to, turn, False, user_id, parent_id, alternative, 0, on_path,
        )  # fmt: skip

    def get_message(self, message_id: str) -> Message:
        row = self._conn().execute("SELECT * FROM messages WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no message with id {message_id!r} in {self.path}.")
        return Message.from_sql(row)

    def list_messages(
        self,
        thread_id: str,
        *,
        limit: int = 50,
        before: str | None = None,
        after: str | None = None,
        through: str | None = None,
    ) -> list[Message]:
        """Messages of the thread's current path in thread order: each prompt followed by its
        answer's steps (the alternative shown), oldest first. The last ``limit`` of them, or the
        ones ``before``/``after`` a message id (page backwards with ``before=messages[0].id``).

        ``through=message_id`` reads the path *through that message* instead, whether or not it is
        the current one (how earlier versions of a prompt and other answers are read, see
        ``store.versions`` and ``store.alternatives``): the turns before it on its branch, then it;
        for a prompt, its answer shown; for an answer's step, the steps of that answer up to it.
        That is the history an answer sees (later prompts left out)."""
        check_limit(limit)
        conn = self._conn()
        if through is not None:
            return self._branch_messages(thread_id, through, limit, before)
        if after is not None:
            a = self._message_in(thread_id, after)
            rows = conn.execute(
                "SELECT * FROM messages WHERE thread_id = ? AND on_path = 1 AND (turn, position) > (?, ?) "
                "ORDER BY turn, position LIMIT ?",
                (thread_id, a.turn, a.position, limit),
            ).fetchall()
            return [Message.from_sql(r) for r in rows]
        bound = (2**62, 2**62)
        if before is not None:
            b = self._message_in(thread_id, before)
            bound = (b.turn, b.position)
        rows = conn.execute(
            "SELECT * FROM messages WHERE thread_id = ? AND on_path = 1 AND (turn, position) < (?, ?) "
            "ORDER BY turn DESC, position DESC LIMIT ?",
            (thread_id, *bound, limit),
        ).fetchall()
        if not rows and before is None:
            self.get_thread(thread_id)  # a clear error for an unknown thread
        return [Message.from_sql(r) for r in reversed(rows)]

    def _branch_messages(self, thread_id: str, through: str, limit: int, before: str | None) -> list[Message]:
        """``list_messages(through=...)``: the path through a message, walked up its parents (at
        most ``limit`` turns: each turn has a message)."""
        t = self._message_in(thread_id, through)
        if t.reply_to is not None:
            prompt_id, alternative, last = t.reply_to, t.alternative, t.position
        else:
            prompt_id, alternative, last = t.id, t.chosen, 2**62
        bound = (2**62, 2**62)
        if before is not None:
            b = self._message_in(thread_id, before)
            bound = (b.turn, b.position)
        sql = (
            "WITH RECURSIVE path(id, depth) AS (SELECT CAST(? AS TEXT), 0 "
            "UNION ALL SELECT m.parent_id, path.depth + 1 FROM messages m JOIN path ON m.id = path.id "
            "WHERE m.parent_id IS NOT NULL AND path.depth < ?) "
            "SELECT m.* FROM path JOIN messages h ON h.id = path.id "
            "JOIN messages m ON m.thread_id = h.thread_id AND m.turn = h.position "
            "WHERE (m.id = h.id OR (m.reply_to = h.id AND ((h.id = ? AND m.alternative = ? AND m.position <= ?) "
            "OR (h.id != ? AND m.alternative = h.chosen)))) "
            "AND (+m.turn < ? OR (+m.turn = ? AND +m.position < ?)) "  # `before`, kept out of the index
            "ORDER BY m.turn DESC, m.position DESC LIMIT ?"
        )
        args = (prompt_id, limit, prompt_id, alternative, last, prompt_id, bound[0], bound[0], bound[1], limit)
        rows = self._conn().execute(sql, args).fetchall()
        return [Message.from_sql(r) for r in reversed(rows)]

    def _message_in(self, thread_id: str, message_id: str) -> Message:
        message = self.get_message(message_id)
        if message.thread_id != thread_id:
            raise InvalidArgumentError(
                f"message {message_id!r} belongs to thread {message.thread_id!r}, not {thread_id!r}; "
                "pass the id of a message of this thread."
            )
        return message

    def count_messages(self, thread_id: str) -> int:
        """How many messages the thread's current path holds (what ``list_messages`` pages through)."""
        sql = "SELECT COUNT(*) FROM messages WHERE thread_id = ? AND on_path = 1"
        return int(self._conn().execute(sql, (thread_id,)).fetchone()[0])

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
        ends_answer: bool = _UNSET,
        end_run: bool = False,
    ) -> Message:
        """Change a message. ``end_run=True`` also releases its writer's lease (and so the thread's
        turn) in the same transaction; ``ends_answer=True`` marks the last step of an answer.
        A message in a final status (success/failed/aborted) does not change status again."""
        fields: dict[str, Any] = {}
        if ends_answer is not _UNSET:
            fields["ends_answer"] = int(bool(ends_answer))
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
            fields["metadata"] = dump_metadata(metadata)

        def write(conn: Conn, now: float) -> bool:
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

        def write(conn: Conn, now: float) -> Delta:
            row = conn.execute(
                "SELECT thread_id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM deltas WHERE message_id = ?) "
                "FROM messages WHERE id = ?",
                (message_id, message_id),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"no message with id {message_id!r} in {self.path}.")
            seq = row[1]
            (delta_id,) = conn.execute(
                "INSERT INTO deltas (message_id, thread_id, seq, text, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
                (message_id, row[0], seq, text, now),
            ).fetchone()
            self._log(conn, row[0], "delta", "insert", delta_id, now)
            return Delta(int(delta_id), message_id, row[0], seq, text, now)

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

        def write(conn: Conn, now: float) -> str:
            row = conn.execute("SELECT thread_id FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no message with id {message_id!r} in {self.path}.")
            tcid = self._new_id(conn, "tc")
            conn.execute(
                "INSERT INTO tool_calls VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, ?, NULL, NULL, ?, "
                "NULL, NULL, NULL, NULL)",
                (tcid, row[0], message_id, call_id, name, arguments, status, now, now),
            )
            self._log(conn, row[0], "tool_call", "insert", tcid, now)
            return tcid

        return self.get_tool_call(self._write(write))

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

        def write(conn: Conn, now: float) -> None:
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
        self, thread_id: str, *, message_id: str | None = None, limit: int | None = None, on_path: bool = False
    ) -> list[ToolCall]:
        """Tool calls of a thread (or of one assistant message), oldest first; with ``limit``, the
        newest ``limit`` of them. Every branch's, or with ``on_path=True`` only those of the
        messages on the thread's current path (what ``list_messages`` shows)."""
        if limit is not None:
            check_limit(limit)
        column, value = ("message_id", message_id) if message_id is not None else ("thread_id", thread_id)
        # newest first through the index, each call's message looked up by its key, until ``limit``
        path = " AND EXISTS (SELECT 1 FROM messages m WHERE m.id = message_id AND m.on_path = 1)" if on_path else ""
        args = (value,)
        rows = (
            self._conn()
            .execute(
                f"SELECT * FROM tool_calls WHERE {column} = ?{path} ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (*args, _NO_LIMIT if limit is None else limit),
            )
            .fetchall()
        )
        return [ToolCall.from_sql(r) for r in reversed(rows)]

    def text(self, message_id: str) -> str:
        """A message's text: final, or what has streamed so far while it is written."""
        message = self.get_message(message_id)
        return message.text if message.is_final or message.role != "assistant" else self.streamed_text(message_id)[0]
