"""The runtime's part of the store (internal: used by ``threadwidget.agent``, not a public API).

The thread's turn is its row in ``runs`` (the lease of the answer being written): whoever inserts
it, in the same transaction as the answer's first step, writes the answer; each next step takes
the lease over in one transaction, and the answer's last step (``ends_answer``) deletes it. A
writer that stops renewing its lease is reaped: its answer ends ``failed`` and the turn passes on.
Live rows that no lease covers (left by a crash or another program) are ended too.

A turn **parked** for a person's decision (``waiting_for = 'approval'``, ``owner`` empty) is not a
dead writer: nobody writes it and nothing is live in it (its step is final, its calls wait in
``awaiting_approval`` / ``approved``, statuses no reaper looks at), so the reaper leaves it. Once no
call of the step waits, ``claim_parked`` gives it to one process serving the agent, with a lease
again; an abort request ends it at once (nobody else would).
"""

from __future__ import annotations

import logging
from typing import Any

from .._errors import NotFoundError
from ._dialect import Conn
from ._part import StorePart
from ._rows import Message

__all__ = ["LEASE_SECONDS", "ORPHANED", "PARKED", "WRITER_STOPPED", "Runs"]

log = logging.getLogger("threadwidget.store")

LEASE_SECONDS = 3.0
WRITER_STOPPED = (
    "writer stopped: the process writing this answer stopped renewing its lease (it died, hung, or could "
    "not write to the store, e.g. on a full disk)"
)
ORPHANED = "writer stopped: nobody was writing this (no lease; left by a crash or another program)"
PARKED = "approval"  # runs.waiting_for of a turn parked until people decide its tool calls


class Runs(StorePart):
    """Turns, leases, claims and reaping (a part of ``Store``; internal)."""

    # Queries for waiting prompts write `+thread_id`: SQLite then looks them up through
    # messages_pending (few rows: the prompts waiting in the whole store), not through the thread's
    # history.

    @staticmethod
    def _turn_free(conn: Conn, thread_id: str) -> bool:
        """No answer is being written in the thread and no prompt or regeneration waits (one query:
        it is on the path of every prompt that takes a free turn)."""
        row = conn.execute(
            "SELECT (SELECT 1 FROM runs WHERE thread_id = ? LIMIT 1) IS NULL "
            "AND (SELECT 1 FROM messages WHERE +thread_id = ? AND status = 'pending' AND role = 'user' LIMIT 1) "
            "IS NULL "
            "AND (SELECT 1 FROM regenerations WHERE thread_id = ? AND status = 'queued' LIMIT 1) IS NULL",
            (thread_id, thread_id, thread_id),
        ).fetchone()
        return bool(row[0])

    def _start_answer(
        self, conn: Conn, now: float, prompt: Message, agent: str | None, model: str | None,
        lease: float,
    ) -> Message:  # fmt: skip
        step = self._insert_message(
            conn, now, self._new_id(conn, "msg"), prompt.thread_id, "assistant", "", "pending", agent, model, 0, None,
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

        def write(conn: Conn, now: float) -> Message:
            turn = None
            if reply_to is not None:
                prompt = conn.execute("SELECT turn FROM messages WHERE id = ?", (reply_to,)).fetchone()
                if prompt is None:
                    raise NotFoundError(f"no prompt with id {reply_to!r} in {self.path}.")
                turn = prompt[0]
            msg = self._insert_message(
                conn, now, self._new_id(conn, "msg"), thread_id, "assistant", "", "pending", agent, model, step, None,
                reply_to=reply_to, turn=turn,
            )  # fmt: skip
            aborted = 0
            if previous is not None:
                row = conn.execute("SELECT abort_requested FROM runs WHERE message_id = ?", (previous,)).fetchone()
                if row is not None:
                    aborted = row[0]
                    conn.execute("DELETE FROM runs WHERE message_id = ?", (previous,))
                    self._log(conn, thread_id, "run", "delete", previous, now)
            self._insert_run(conn, now, msg.id, thread_id, agent, lease_seconds, aborted)
            return msg

        return self._write(write)

    def _insert_run(
        self, conn: Conn, now: float, mid: str, thread_id: str, agent: str | None, lease: float,
        aborted: int = 0,
    ) -> None:  # fmt: skip
        conn.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
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
        """Atomically take the turn of a thread whose next prompt (or regeneration,
        ``store.regenerate``) waits for ``agent`` (in ``thread_id`` only, if given): marks it taken
        and creates the answer's first step with this process's lease. ``None`` when nothing is
        ready. A thread's prompts and regenerations are taken oldest first, one at a time, and
        exactly one of many processes gets each."""
        scope, args = ("AND m.thread_id = ? ", [thread_id]) if thread_id is not None else ("", [])

        def write(conn: Conn, now: float) -> tuple[Message, Message] | None:
            again, again_args = self._next_regeneration_sql(agent, thread_id)
            row = conn.execute(
                "SELECT id, kind FROM (SELECT m.id AS id, m.created_at AS created_at, 0 AS kind "
                "FROM messages m JOIN threads t ON t.id = m.thread_id "
                "WHERE m.status = 'pending' AND m.role = 'user' AND COALESCE(m.agent, t.agent) = ? " + scope +
                "AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.thread_id = m.thread_id) "
                "AND NOT EXISTS (SELECT 1 FROM messages e WHERE +e.thread_id = m.thread_id AND e.status = 'pending' "
                "AND e.role = 'user' AND e.position < m.position) "
                "AND NOT EXISTS (SELECT 1 FROM regenerations g WHERE g.thread_id = m.thread_id AND g.status = 'queued' "
                "AND g.after_position < m.position) "
                "UNION ALL " + again + ") AS ready ORDER BY created_at LIMIT 1",
                [agent, *args, *again_args],
            ).fetchone()  # fmt: skip
            if row is None:
                return None
            if row[1] == 1:  # a regeneration (store.regenerate) is next
                return self._take_regeneration(conn, now, int(row[0]), agent, model, lease_seconds)
            row = conn.execute("SELECT * FROM messages WHERE id = ?", (row[0],)).fetchone()
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

        def write(conn: Conn, now: float) -> bool:
            cur = conn.execute(
                "UPDATE runs SET lease_expires_at = ?, updated_at = ? WHERE message_id = ? AND owner = ? "
                "AND waiting_for IS NULL",
                (now + lease_seconds, now, message_id, self.owner),
            )
            return cur.rowcount > 0

        return self._write(write)

    def end_run(self, message_id: str) -> bool:
        """Release a writer's lease without changing its message. False when there was none."""

        def write(conn: Conn, now: float) -> bool:
            row = conn.execute("SELECT thread_id FROM runs WHERE message_id = ?", (message_id,)).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM runs WHERE message_id = ?", (message_id,))
            self._log(conn, row[0], "run", "delete", message_id, now)
            return True

        return self._write(write)

    # -- turns parked for a person's decision --------------------------------------------------

    def park_run(self, message_id: str) -> bool:
        """Give up this process's lease on a step whose tool calls wait for people, keeping the
        thread's turn: the answer waits, with no writer. False (nothing changed) when the lease is
        not ours any more or an abort was requested: then end the answer instead."""

        def write(conn: Conn, now: float) -> bool:
            row = conn.execute("SELECT thread_id FROM runs WHERE message_id = ?", (message_id,)).fetchone()
            cur = conn.execute(
                "UPDATE runs SET waiting_for = ?, owner = '', updated_at = ? "
                "WHERE message_id = ? AND owner = ? AND abort_requested = 0 AND waiting_for IS NULL",
                (PARKED, now, message_id, self.owner),
            )
            if not cur.rowcount:
                return False
            self._log(conn, row[0], "run", "update", message_id, now)
            return True

        return self._write(write)

    def claim_parked(
        self, agent: str, *, thread_id: str | None = None, lease_seconds: float = LEASE_SECONDS
    ) -> Message | None:
        """Atomically take a parked turn of ``agent`` (in ``thread_id`` only, if given) whose tool
        calls no longer wait for anyone: this process's lease on the parked step, which it returns
        (``None`` when nothing is ready). Exactly one of many processes gets each."""
        scope, args = ("AND r.thread_id = ? ", [thread_id]) if thread_id is not None else ("", [])

        def write(conn: Conn, now: float) -> str | None:
            row = conn.execute(
                "SELECT r.message_id, r.thread_id FROM runs r "
                "WHERE r.waiting_for IS NOT NULL AND r.agent = ? " + scope +
                "AND NOT EXISTS (SELECT 1 FROM tool_calls c WHERE c.message_id = r.message_id "
                "AND c.status = 'awaiting_approval') ORDER BY r.created_at LIMIT 1",
                [agent, *args],
            ).fetchone()  # fmt: skip
            if row is None:
                return None
            conn.execute(
                "UPDATE runs SET waiting_for = NULL, owner = ?, lease_expires_at = ?, updated_at = ? "
                "WHERE message_id = ?",
                (self.owner, now + lease_seconds, now, row[0]),
            )
            self._log(conn, row[1], "run", "update", row[0], now)
            return str(row[0])

        claimed = self._write(write)
        return None if claimed is None else self.get_message(claimed)

    def _end_parked(self, conn: Conn, now: float, message_id: str, status: str, error: str) -> None:
        """End a parked answer in the caller's transaction: what waits is not run, a last step says why."""
        thread_id, agent, model, step, reply_to, turn = conn.execute(
            "SELECT thread_id, agent, model, step, reply_to, turn FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        for (tcid,) in conn.execute(
            "SELECT id FROM tool_calls WHERE message_id = ? AND status IN ('awaiting_approval', 'approved')",
            (message_id,),
        ).fetchall():
            conn.execute(
                "UPDATE tool_calls SET status = 'error', error = ?, ended_at = ?, updated_at = ? WHERE id = ?",
                (f"not run: the answer was {error}", now, now, tcid),
            )
            self._log(conn, thread_id, "tool_call", "update", tcid, now)
        last = self._insert_message(
            conn, now, self._new_id(conn, "msg"), thread_id, "assistant", "", status, agent, model, step + 1, None,
            reply_to=reply_to, turn=turn,
        )  # fmt: skip
        conn.execute("UPDATE messages SET error = ?, ends_answer = 1 WHERE id = ?", (error, last.id))
        conn.execute("DELETE FROM runs WHERE message_id = ?", (message_id,))
        self._log(conn, thread_id, "run", "delete", message_id, now)

    def is_parked(self, message_id: str) -> bool:
        """True while the step's turn is parked for people's decisions (no process writes it)."""
        row = self._conn().execute("SELECT waiting_for FROM runs WHERE message_id = ?", (message_id,)).fetchone()
        return bool(row and row[0])

    def abort_requested(self, message_id: str) -> bool:
        row = self._conn().execute("SELECT abort_requested FROM runs WHERE message_id = ?", (message_id,)).fetchone()
        return bool(row and row[0])

    def active_runs(self, thread_id: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT message_id, thread_id, agent, owner, lease_expires_at, abort_requested, waiting_for FROM runs"
        args: tuple[Any, ...] = ()
        if thread_id is not None:
            sql += " WHERE thread_id = ?"
            args = (thread_id,)
        keys = ("message_id", "thread_id", "agent", "owner", "lease_expires_at", "abort_requested", "waiting_for")
        return [dict(zip(keys, r, strict=True)) for r in self._conn().execute(sql, args)]

    _ORPHAN_MESSAGES = (
        "SELECT id, thread_id FROM messages WHERE status IN ('pending', 'streaming') AND role = 'assistant' "
        "AND id NOT IN (SELECT message_id FROM runs)"
    )
    _ORPHAN_CALLS = (
        "SELECT id, thread_id FROM tool_calls WHERE status IN ('streaming_args', 'running') "
        "AND message_id NOT IN (SELECT message_id FROM runs)"
    )

    def _end_orphans(self, conn: Conn) -> None:
        """End live assistant messages and open tool calls that no lease covers (cheap: both
        queries use an index of live rows)."""
        if not (conn.execute(self._ORPHAN_MESSAGES).fetchone() or conn.execute(self._ORPHAN_CALLS).fetchone()):
            return

        def write(conn: Conn, now: float) -> None:
            for mid, thread_id in conn.execute(self._ORPHAN_MESSAGES).fetchall():
                text = "".join(t for (t,) in conn.execute("SELECT text FROM deltas WHERE message_id = ? ORDER BY seq",
                                                          (mid,)))  # fmt: skip
                conn.execute(
                    "UPDATE messages SET status = 'failed', error = ?, text = ?, ends_answer = 1, updated_at = ? "
                    "WHERE id = ?",
                    (ORPHANED, text, now, mid),
                )
                self._log(conn, thread_id, "message", "update", mid, now)
            for tcid, thread_id in conn.execute(self._ORPHAN_CALLS).fetchall():
                conn.execute(
                    "UPDATE tool_calls SET status = 'error', error = ?, ended_at = ?, updated_at = ? WHERE id = ?",
                    (ORPHANED, now, now, tcid),
                )
                self._log(conn, thread_id, "tool_call", "update", tcid, now)

        self._write(write)
        log.warning("threadwidget: ended live rows that had no writer: %s", ORPHANED)

    def reap_expired(self) -> list[str]:
        """End every answer whose writer's lease expired: its step ``failed`` with the text streamed
        so far (or, in its tool phase, a ``failed`` last step), its open tool calls ``error``, and
        the thread's turn handed to the next prompt. Live rows that have no writer at all (left by
        a crash of an older version, or another program) are ended too. Any process with an open
        store may do this; the watcher thread does it about once a second."""
        conn = self._conn()
        self._end_orphans(conn)
        expired = "SELECT 1 FROM runs WHERE lease_expires_at < ? AND waiting_for IS NULL LIMIT 1"
        if conn.execute(expired, (self._db.now(),)).fetchone() is None:
            return []

        def write(conn: Conn, now: float) -> list[str]:
            expired = conn.execute(
                "SELECT r.message_id, r.thread_id, r.agent, m.status, m.reply_to, m.turn, m.step, m.model "
                "FROM runs r LEFT JOIN messages m ON m.id = r.message_id WHERE r.lease_expires_at < ? "
                "AND r.waiting_for IS NULL",
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
                        conn, now, self._new_id(conn, "msg"), thread_id, "assistant", "", "failed", agent, model,
                        step + 1, None, reply_to=reply_to, turn=turn,
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
