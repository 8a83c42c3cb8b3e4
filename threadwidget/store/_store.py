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
from .._statuses import FINAL_STATUSES, MESSAGE_STATUSES, ROLES, TOOL_CALL_STATUSES
from .._usage import Usage
from ._answer import Answer
from ._db import Database, check_choice
from ._rows import Delta, Message, Thread, ToolCall

__all__ = ["Store"]

log = logging.getLogger("threadwidget.store")

_UNSET: Any = object()
LEASE_SECONDS = 3.0
WRITER_STOPPED = "writer stopped: the process writing this answer died or hung (its lease expired)"
CANCELLED = "cancelled before it was answered"


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
        user_id: str | None = None,
    ) -> Message:
        """Append a message. A user message with ``status="pending"`` is a prompt in the thread's
        queue, answered by a process serving its agent (``store.ask`` does this and returns the
        ``Answer``)."""
        check_choice("role", role, ROLES)
        check_choice("status", status, MESSAGE_STATUSES)
        if not isinstance(text, str):
            raise InvalidArgumentError(f"text={text!r} is not valid; expected a str.")
        meta = _dump_metadata(metadata)
        mid = _new_id("msg")

        def write(conn: sqlite3.Connection, now: float) -> Message:
            return self._insert_message(
                conn, now, mid, thread_id, role, text, status, agent, model, step, meta, user_id=user_id
            )

        return self._write(write)

    def _insert_message(
        self, conn: sqlite3.Connection, now: float, mid: str, thread_id: str, role: str, text: str,
        status: str, agent: str | None, model: str | None, step: int, meta: str | None, *,
        reply_to: str | None = None, turn: int | None = None, user_id: str | None = None,
    ) -> Message:  # fmt: skip
        if conn.execute("UPDATE threads SET updated_at = ? WHERE id = ?", (now, thread_id)).rowcount == 0:
            raise NotFoundError(
                f"no thread with id {thread_id!r} in {self.path}; create it with store.create_thread()."
            )
        (position,) = conn.execute(
            "SELECT COALESCE(MAX(position) + 1, 0) FROM messages WHERE thread_id = ?", (thread_id,)
        ).fetchone()
        turn = position if turn is None else turn
        conn.execute(
            "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, NULL, NULL, ?, ?, ?, ?, ?, 0, ?)",
            (mid, thread_id, position, step, role, text, status, agent, model, meta, now, now, reply_to, turn, user_id),
        )
        self._log(conn, thread_id, "message", "insert", mid, now)
        metadata = json.loads(meta) if meta else {}
        return Message(
            mid, thread_id, position, step, role, text, status, None, agent, model, None, None, metadata, now, now,  # type: ignore[arg-type]
            reply_to, turn, False, user_id,
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
        """Messages in thread order: each prompt followed by its answer's steps, oldest first. The
        last ``limit`` of them, or the ones ``before``/``after`` a message id (page backwards with
        ``before=messages[0].id``). ``through=prompt_id`` stops after that prompt's answer: the
        history an answer to it sees (later prompts left out)."""
        _check_limit(limit)
        conn = self._conn()
        if after is not None:
            a = self._message_in(thread_id, after)
            rows = conn.execute(
                "SELECT * FROM messages WHERE thread_id = ? AND (turn, position) > (?, ?) "
                "ORDER BY turn, position LIMIT ?",
                (thread_id, a.turn, a.position, limit),
            ).fetchall()
            return [Message.from_sql(r) for r in rows]
        bound = (2**62, 2**62)
        if before is not None:
            b = self._message_in(thread_id, before)
            bound = (b.turn, b.position)
        if through is not None:
            t = self._message_in(thread_id, through)
            bound = min(bound, (t.turn, 2**62))
        rows = conn.execute(
            "SELECT * FROM messages WHERE thread_id = ? AND (turn, position) < (?, ?) "
            "ORDER BY turn DESC, position DESC LIMIT ?",
            (thread_id, *bound, limit),
        ).fetchall()
        if not rows and before is None:
            self.get_thread(thread_id)  # a clear error for an unknown thread
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

    def text(self, message_id: str) -> str:
        """A message's text: final, or what has streamed so far while it is written."""
        message = self.get_message(message_id)
        return message.text if message.is_final or message.role != "assistant" else self.streamed_text(message_id)[0]

    # -- answers -----------------------------------------------------------------------------------

    def answer_steps(self, prompt_id: str) -> list[Message]:
        """The assistant steps answering a prompt, in order."""
        rows = self._conn().execute("SELECT * FROM messages WHERE reply_to = ? ORDER BY position", (prompt_id,))
        return [Message.from_sql(r) for r in rows]

    def answer(self, prompt_id: str) -> Answer:
        """The ``Answer`` to a prompt asked with ``ask`` (queued, running or ended)."""
        prompt = self.get_message(prompt_id)
        if prompt.role != "user" or (prompt.status == "success" and not self.answer_steps(prompt_id)):
            raise InvalidArgumentError(
                f"message {prompt_id!r} is a {prompt.status} {prompt.role} message that was never asked, so it "
                "has no answer; pass the id of a prompt from store.ask() or thread.ask()."
            )
        return Answer(self, prompt)

    def answer_in_progress(self, thread_id: str) -> Answer | None:
        """The answer being written in the thread now (``None`` when its turn is free)."""
        sql = "SELECT m.reply_to FROM runs r JOIN messages m ON m.id = r.message_id WHERE r.thread_id = ?"
        row = self._conn().execute(sql, (thread_id,)).fetchone()
        if row is None or row[0] is None:
            self.get_thread(thread_id)  # a clear error for an unknown thread
            return None
        return Answer(self, self.get_message(row[0]))

    def queued_prompts(self, thread_id: str) -> list[Message]:
        """Prompts waiting for the thread's turn, in the order they will be answered."""
        rows = self._conn().execute(
            "SELECT * FROM messages WHERE thread_id = ? AND status = 'pending' AND role = 'user' ORDER BY position",
            (thread_id,),
        )
        return [Message.from_sql(r) for r in rows]

    def wait_answer(self, prompt_id: str, *, timeout: float | None = None) -> Answer:
        """Wait until the answer to ``prompt_id`` has ended, whichever process writes it."""
        return self.answer(prompt_id).wait(timeout)

    # -- prompts, turns and leases ---------------------------------------------------------------
    #
    # A thread answers one prompt at a time. The thread's turn is its row in ``runs``: whoever
    # inserts it (in the same transaction as the answer's first step) writes the answer; each next
    # step takes the lease over in one transaction, and the last step deletes it. Prompts waiting
    # for the turn are user messages with status ``pending``, answered oldest first.

    def ask(self, thread_id: str, text: str, *, user_id: str | None = None, agent: str | None = None) -> Answer:
        """Leave a prompt in the thread's queue for whichever process serves ``agent`` (default: the
        thread's agent), and return its ``Answer`` to follow, wait for or abort."""
        prompt, _ = self.add_prompt(thread_id, text, user_id=user_id, agent=agent)
        return Answer(self, prompt)

    def add_prompt(
        self,
        thread_id: str,
        text: str,
        *,
        user_id: str | None = None,
        agent: str | None = None,
        claim_model: str | None = _UNSET,
        lease_seconds: float = LEASE_SECONDS,
    ) -> tuple[Message, Message | None]:
        """Write a prompt into the thread's queue. With ``claim_model=`` (the answering model's
        name), also take the thread's turn in the same transaction when it is free and nothing
        waits before it: returns ``(prompt, first step)``, the step ``pending`` with this process's
        lease. Else ``(prompt, None)``: the prompt waits as ``pending``."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidArgumentError(f"prompt {text!r} is not valid; expected a non-empty str.")
        for name, value in (("user_id", user_id), ("agent", agent)):
            if value is not None and not isinstance(value, str):
                raise InvalidArgumentError(f"{name}={value!r} is not valid; expected a str or None.")
        mid = _new_id("msg")

        def write(conn: sqlite3.Connection, now: float) -> tuple[Message, Message | None]:
            row = conn.execute("SELECT agent FROM threads WHERE id = ?", (thread_id,)).fetchone()
            if row is None:
                raise NotFoundError(
                    f"no thread with id {thread_id!r} in {self.path}; create it with store.create_thread()."
                )
            addressed = agent or row[0]
            if addressed is None:
                raise InvalidArgumentError(
                    f"thread {thread_id!r} names no agent, so nobody would answer this prompt; pass "
                    "agent='name' (the agent a process serves), or create the thread with agent=..."
                )
            free = claim_model is not _UNSET and self._turn_free(conn, thread_id)
            prompt = self._insert_message(
                conn, now, mid, thread_id, "user", text, "success" if free else "pending", addressed, None, 0,
                None, user_id=user_id,
            )  # fmt: skip
            if not free:
                return prompt, None
            return prompt, self._start_answer(conn, now, prompt, addressed, claim_model, lease_seconds)

        return self._write(write)

    @staticmethod
    def _turn_free(conn: sqlite3.Connection, thread_id: str) -> bool:
        """No answer is being written in the thread and no prompt waits."""
        return (
            conn.execute("SELECT 1 FROM runs WHERE thread_id = ? LIMIT 1", (thread_id,)).fetchone() is None
            and conn.execute(
                "SELECT 1 FROM messages WHERE thread_id = ? AND status = 'pending' AND role = 'user' LIMIT 1",
                (thread_id,),
            ).fetchone()
            is None
        )

    def _start_answer(
        self, conn: sqlite3.Connection, now: float, prompt: Message, agent: str | None, model: str | None,
        lease: float,
    ) -> Message:  # fmt: skip
        step = self._insert_message(
            conn, now, _new_id("msg"), prompt.thread_id, "assistant", "", "pending", agent, model, 0, None,
            reply_to=prompt.id, turn=prompt.turn,
        )  # fmt: skip
        self._insert_run(conn, now, step.id, prompt.thread_id, agent, lease)
        return step

    def start_run(
        self, thread_id: str, *, reply_to: str | None = None, previous: str | None = None,
        agent: str | None = None, model: str | None = None, step: int = 0, lease_seconds: float = LEASE_SECONDS,
    ) -> Message:  # fmt: skip
        """Create an assistant message (``pending``) with this process's lease on writing it: the
        next step of the answer to ``reply_to``, or (without it) a message of its own, e.g. one
        imported from elsewhere. ``previous``: the step whose lease this one takes over, in the same
        transaction (its abort request goes along), so the thread's turn never lapses between steps."""
        mid = _new_id("msg")

        def write(conn: sqlite3.Connection, now: float) -> Message:
            turn = None
            if reply_to is not None:
                prompt = conn.execute("SELECT turn FROM messages WHERE id = ?", (reply_to,)).fetchone()
                if prompt is None:
                    raise NotFoundError(f"no prompt with id {reply_to!r} in {self.path}.")
                turn = prompt[0]
            msg = self._insert_message(
                conn, now, mid, thread_id, "assistant", "", "pending", agent, model, step, None,
                reply_to=reply_to, turn=turn,
            )  # fmt: skip
            aborted = 0
            if previous is not None:
                row = conn.execute("SELECT abort_requested FROM runs WHERE message_id = ?", (previous,)).fetchone()
                if row is not None:
                    aborted = row[0]
                    conn.execute("DELETE FROM runs WHERE message_id = ?", (previous,))
                    self._log(conn, thread_id, "run", "delete", previous, now)
            self._insert_run(conn, now, mid, thread_id, agent, lease_seconds, aborted)
            return msg

        return self._write(write)

    def _insert_run(
        self, conn: sqlite3.Connection, now: float, mid: str, thread_id: str, agent: str | None, lease: float,
        aborted: int = 0,
    ) -> None:  # fmt: skip
        conn.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (mid, thread_id, agent, self.owner, now + lease, aborted, now, now),
        )
        self._log(conn, thread_id, "run", "insert", mid, now)

    def claim_pending(
        self,
        agent: str,
        *,
        thread_id: str | None = None,
        model: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
    ) -> tuple[Message, Message] | None:
        """Atomically take the turn of a thread whose next prompt waits for ``agent`` (in
        ``thread_id`` only, if given): marks the prompt taken and creates the answer's first step
        with this process's lease. ``None`` when nothing is ready. A thread's prompts are taken
        oldest first, one at a time, and exactly one of many processes gets each."""
        scope, args = ("AND m.thread_id = ? ", [thread_id]) if thread_id is not None else ("", [])

        def write(conn: sqlite3.Connection, now: float) -> tuple[Message, Message] | None:
            row = conn.execute(
                "SELECT m.* FROM messages m JOIN threads t ON t.id = m.thread_id "
                "WHERE m.status = 'pending' AND m.role = 'user' AND COALESCE(m.agent, t.agent) = ? " + scope +
                "AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.thread_id = m.thread_id) "
                "AND NOT EXISTS (SELECT 1 FROM messages e WHERE e.thread_id = m.thread_id AND e.status = 'pending' "
                "AND e.role = 'user' AND e.position < m.position) "
                "ORDER BY m.created_at LIMIT 1",
                [agent, *args],
            ).fetchone()  # fmt: skip
            if row is None:
                return None
            prompt = Message.from_sql(row)
            conn.execute("UPDATE messages SET status = 'success', updated_at = ? WHERE id = ?", (now, prompt.id))
            self._log(conn, prompt.thread_id, "message", "update", prompt.id, now)
            return prompt, self._start_answer(conn, now, prompt, agent, model, lease_seconds)

        claimed = self._write(write)
        if claimed is None:
            return None
        return self.get_message(claimed[0].id), claimed[1]

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

    def request_abort(self, thread_id: str, *, cancel_queued: bool = False) -> list[str]:
        """Ask the writer of the thread's running answer (in any process) to stop; it ends the
        answer ``aborted`` with its partial text. Prompts waiting in the queue are still answered,
        unless ``cancel_queued=True``: then they end ``aborted`` unanswered. Returns the ids of the
        messages asked to stop or cancelled."""
        return self._write(lambda conn, now: self._abort(conn, now, thread_id, None, cancel_queued))

    def abort_answer(self, prompt_id: str) -> list[str]:
        """Stop the answer to one prompt: cancel the prompt if it still waits in the queue, else ask
        its writer to stop. Nothing happens to an answer that has ended."""
        prompt = self.get_message(prompt_id)
        return self._write(lambda conn, now: self._abort(conn, now, prompt.thread_id, prompt_id, False))

    def _abort(
        self, conn: sqlite3.Connection, now: float, thread_id: str, prompt_id: str | None, cancel_queued: bool
    ) -> list[str]:
        sql = "SELECT r.message_id FROM runs r JOIN messages m ON m.id = r.message_id WHERE r.thread_id = ? "
        sql += "AND r.abort_requested = 0" + (" AND m.reply_to = ?" if prompt_id else "")
        ids = [r[0] for r in conn.execute(sql, (thread_id, prompt_id) if prompt_id else (thread_id,))]
        for mid in ids:
            conn.execute("UPDATE runs SET abort_requested = 1, updated_at = ? WHERE message_id = ?", (now, mid))
            self._log(conn, thread_id, "run", "update", mid, now)
        if cancel_queued or prompt_id:
            sql = "SELECT id FROM messages WHERE thread_id = ? AND status = 'pending' AND role = 'user'"
            queued = [r[0] for r in conn.execute(sql + (" AND id = ?" if prompt_id else ""),
                                                 (thread_id, prompt_id) if prompt_id else (thread_id,))]  # fmt: skip
            for mid in queued:
                conn.execute(
                    "UPDATE messages SET status = 'aborted', error = ?, updated_at = ? WHERE id = ?",
                    (CANCELLED, now, mid),
                )
                self._log(conn, thread_id, "message", "update", mid, now)
            ids += queued
        return ids

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
        """End every answer whose writer's lease expired: its step ``failed`` with the text streamed
        so far (or, in its tool phase, a ``failed`` last step), its open tool calls ``error``, and
        the thread's turn handed to the next prompt. Any process with an open store may do this;
        the watcher thread does it about once a second."""
        conn = self._conn()
        if conn.execute("SELECT 1 FROM runs WHERE lease_expires_at < ? LIMIT 1", (time.time(),)).fetchone() is None:
            return []

        def write(conn: sqlite3.Connection, now: float) -> list[str]:
            expired = conn.execute(
                "SELECT r.message_id, r.thread_id, r.agent, m.status, m.reply_to, m.turn, m.step, m.model "
                "FROM runs r LEFT JOIN messages m ON m.id = r.message_id WHERE r.lease_expires_at < ?",
                (now,),
            ).fetchall()
            for mid, thread_id, agent, status, reply_to, turn, step, model in expired:
                text = "".join(t for (t,) in conn.execute(
                    "SELECT text FROM deltas WHERE message_id = ? ORDER BY seq", (mid,)))  # fmt: skip
                cur = conn.execute(
                    "UPDATE messages SET status = 'failed', error = ?, text = ?, ends_answer = 1, updated_at = ? "
                    "WHERE id = ? AND status IN ('pending', 'streaming')",
                    (WRITER_STOPPED, text, now, mid),
                )
                if cur.rowcount:
                    self._log(conn, thread_id, "message", "update", mid, now)
                elif status is not None and reply_to is not None:  # between steps: its tools were running
                    last = self._insert_message(
                        conn, now, _new_id("msg"), thread_id, "assistant", "", "failed", agent, model, step + 1,
                        None, reply_to=reply_to, turn=turn,
                    )  # fmt: skip
                    conn.execute(
                        "UPDATE messages SET error = ?, ends_answer = 1 WHERE id = ?", (WRITER_STOPPED, last.id)
                    )
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
            return [mid for mid, *_ in expired]

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
