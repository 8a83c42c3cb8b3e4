"""Branches of a thread: versions of a prompt, alternatives of an answer, the current path, forks
(a part of ``Store``).

A message that starts a turn (a prompt, a person's reply) records the turn it follows
(``parent_id``); an edited prompt is a new turn with the same parent, so the versions of a prompt
are the turns that share its parent, and what followed each version stays after it. An answer's
steps carry ``alternative``: a regenerated answer is a new alternative of the same prompt, and the
prompt's ``chosen`` says which one its path shows. The thread's **current path** is what
``list_messages`` returns: from its last turn (``threads.head_id``) up the parents, each prompt
with its chosen answer; ``on_path`` marks its rows, so reading it stays one indexed query.

Switching the path (``select_branch``, an edit, a regeneration) is one transaction that rewrites
``on_path`` for the thread and logs one ``path`` change: every view reloads what it shows. Nothing
is ever deleted by it. Two switches at once: the later commit wins, both are logged.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

from .._errors import InvalidArgumentError
from .._people import current_user
from ._answer import Answer
from ._checks import check_text
from ._dialect import Conn
from ._part import StorePart
from ._rows import Message, Thread
from ._runs import LEASE_SECONDS

if TYPE_CHECKING:
    from ._store import Store

__all__ = ["Branches"]

_NO_LIMIT = 1 << 62
_NO_CLAIM: Any = object()


class Branches(StorePart):
    """Versions, alternatives, the current path and forks (a part of ``Store``)."""

    # -- reading branches ---------------------------------------------------------------------------

    def versions(self, message_id: str) -> list[Message]:
        """The versions of a prompt (or of any message that starts a turn), oldest first: the
        message itself and every edit of it (``thread.edit``), each the start of its own branch.
        Read what followed one with ``list_messages(thread_id, through=version.id)``; show it to
        everyone with ``select_branch(version.id)``."""
        m = self.get_message(message_id)
        if m.reply_to is not None:
            raise InvalidArgumentError(
                f"message {message_id!r} is a step of the answer to {m.reply_to!r}; an answer has alternatives, "
                f"not versions: use store.alternatives({m.reply_to!r})."
            )
        if m.parent_id is None:
            sql, args = "parent_id IS NULL AND turn = position", [m.thread_id]
        else:
            sql, args = "parent_id = ?", [m.thread_id, m.parent_id]
        rows = self._conn().execute(f"SELECT * FROM messages WHERE thread_id = ? AND {sql} ORDER BY position", args)
        return [Message.from_sql(r) for r in rows]

    def alternatives(self, prompt_id: str) -> list[Answer]:
        """Every answer to a prompt, oldest first: the first one, then each ``thread.regenerate``
        made. ``answer.alternative`` numbers them; the one the path shows is ``prompt.chosen``."""
        prompt = self.get_message(prompt_id)
        rows = self._conn().execute(
            "SELECT DISTINCT alternative FROM messages WHERE thread_id = ? AND turn = ? AND reply_to = ? "
            "ORDER BY alternative",
            (prompt.thread_id, prompt.turn, prompt_id),
        )
        return [Answer(cast("Store", self), prompt, r[0]) for r in rows]

    def branch_place(self, message: Message) -> tuple[int, int] | None:
        """Where a message stands among its versions (a message that starts a turn) or, on the
        first step of an answer, where its answer stands among the prompt's alternatives:
        ``(index, count)``, or ``None`` when there is no other."""
        conn = self._conn()
        if message.reply_to is None and message.turn == message.position:
            ids = [v.id for v in self.versions(message.id)]
            return (ids.index(message.id), len(ids)) if len(ids) > 1 else None
        if message.reply_to is not None and message.step == 0:
            alts = [r[0] for r in conn.execute(
                "SELECT DISTINCT alternative FROM messages WHERE thread_id = ? AND turn = ? AND reply_to = ? "
                "ORDER BY alternative", (message.thread_id, message.turn, message.reply_to))]  # fmt: skip
            return (alts.index(message.alternative), len(alts)) if len(alts) > 1 else None
        return None

    def select_version(self, message_id: str, index: int) -> list[Message]:
        """``select_branch`` by number: show version ``index`` (from 0) of the message's versions,
        or, for an answer's first step, alternative ``index`` of its prompt's answers."""
        m = self.get_message(message_id)
        if m.reply_to is None:
            choices = [v.id for v in self.versions(message_id)]
        else:
            choices = [a.messages[0].id for a in self.alternatives(m.reply_to) if a.messages]
        if not isinstance(index, int) or not 0 <= index < len(choices):
            raise InvalidArgumentError(
                f"index={index!r} is not valid for message {message_id!r}: it has {len(choices)} version(s); "
                f"pass 0 to {len(choices) - 1}."
            )
        return self.select_branch(choices[index])

    # -- switching the path -------------------------------------------------------------------------

    def select_branch(self, message_id: str) -> list[Message]:
        """Make the thread's current path go through ``message_id``, for everyone: a version of a
        prompt (``versions``) with what followed it, or a step of one answer among its alternatives
        (``alternatives``). Below the message the path keeps the turns it showed, else takes the
        newest one at each branch. Every open view reloads. Returns the new path's last
        ``50`` messages (``list_messages``)."""
        m = self.get_message(message_id)

        def write(conn: Conn, now: float) -> None:
            through = m.id
            if m.reply_to is not None:
                conn.execute("UPDATE messages SET chosen = ? WHERE id = ?", (m.alternative, m.reply_to))
                through = m.reply_to
            self._select_path(conn, now, m.thread_id, through)

        self._write(write)
        return cast("Store", self).list_messages(m.thread_id)

    def _select_path(self, conn: Conn, now: float, thread_id: str, through: str) -> None:
        """In the caller's transaction: the current path goes through the turn ``through`` and on
        down (the child on the old path first, else the newest); ``on_path`` is rewritten for the
        thread and one ``path`` change is logged."""
        leaf = through
        while True:
            row = conn.execute(
                "SELECT id FROM messages WHERE parent_id = ? AND thread_id = ? ORDER BY on_path DESC, position DESC "
                "LIMIT 1",
                (leaf, thread_id),
            ).fetchone()
            if row is None:
                break
            leaf = row[0]
        path = {
            r[0]
            for r in conn.execute(
                "WITH RECURSIVE path(id) AS (SELECT CAST(? AS TEXT) UNION ALL SELECT m.parent_id FROM messages m "
                "JOIN path ON m.id = path.id WHERE m.parent_id IS NOT NULL) SELECT id FROM path",
                (leaf,),
            )
        }
        rows = conn.execute(
            "SELECT id, reply_to, alternative, chosen, on_path FROM messages WHERE thread_id = ?", (thread_id,)
        ).fetchall()
        chosen = {r[0]: r[3] for r in rows}
        for mid, reply_to, alternative, _, on_path in rows:  # only the rows that change are written
            shown = mid in path if reply_to is None else reply_to in path and alternative == chosen.get(reply_to)
            if int(shown) != on_path:
                conn.execute("UPDATE messages SET on_path = ? WHERE id = ?", (int(shown), mid))
        conn.execute("UPDATE threads SET head_id = ?, updated_at = ? WHERE id = ?", (leaf, now, thread_id))
        self._log(conn, thread_id, "path", "update", thread_id, now)

    # -- regenerations: queued like prompts ---------------------------------------------------------

    def regenerate(self, prompt_id: str, *, agent: str | None = None, user_id: str | None = None) -> Answer:
        """Ask for a new answer to ``prompt_id`` by whichever process serves ``agent`` (default: the
        thread's agent): it waits in the thread's queue with the prompts, in the order asked, and
        is answered exactly once. The earlier answers stay, as alternatives; the new one is shown
        on the thread's path once it starts. Returns its ``Answer`` (``queued`` until then)."""
        alternative, _ = self.request_regeneration(prompt_id, agent=agent, user_id=user_id)
        return Answer(cast("Store", self), self.get_message(prompt_id), alternative)

    def request_regeneration(
        self, prompt_id: str, *, agent: str | None = None, user_id: str | None = None,
        claim_model: str | None = _NO_CLAIM, lease_seconds: float = LEASE_SECONDS,
    ) -> tuple[int, Message | None]:  # fmt: skip
        """Write a regeneration of ``prompt_id`` into the thread's queue, in one transaction: its
        answer's number (``alternative``) and, with ``claim_model=`` (the answering model's name)
        when the thread's turn is free, the new answer's first step, ``pending`` with this
        process's lease and shown on the path. Else ``(alternative, None)``: it waits."""
        check_text("agent", agent, optional=True)
        check_text("user_id", user_id, optional=True)
        person = current_user() if user_id is None else user_id

        def write(conn: Conn, now: float) -> tuple[int, Message | None]:
            row = conn.execute("SELECT * FROM messages WHERE id = ?", (prompt_id,)).fetchone()
            prompt = Message.from_sql(row) if row is not None else self.get_message(prompt_id)  # NotFoundError
            if prompt.role != "user" or prompt.reply_to is not None:
                raise InvalidArgumentError(
                    f"message {prompt_id!r} is a {prompt.role} message, not a prompt; pass the id of a prompt "
                    "(answer.prompt_id) to regenerate its answer."
                )
            if prompt.status == "pending":
                raise InvalidArgumentError(
                    f"prompt {prompt_id!r} still waits for its first answer; wait for it, then regenerate."
                )
            (thread_agent,) = conn.execute("SELECT agent FROM threads WHERE id = ?", (prompt.thread_id,)).fetchone()
            addressed = agent or thread_agent or prompt.agent
            if addressed is None:
                raise InvalidArgumentError(
                    f"thread {prompt.thread_id!r} names no agent, so nobody would regenerate this answer; pass "
                    "agent='name' (the agent a process serves)."
                )
            (newest,) = conn.execute(
                "SELECT MAX(a) FROM (SELECT COALESCE(MAX(alternative), -1) AS a FROM messages WHERE thread_id = ? "
                "AND turn = ? AND reply_to = ? UNION ALL SELECT COALESCE(MAX(alternative), -1) FROM regenerations "
                "WHERE prompt_id = ?) AS numbers",
                (prompt.thread_id, prompt.turn, prompt_id, prompt_id),
            ).fetchone()
            alternative = int(newest) + 1
            if claim_model is not _NO_CLAIM and self._turn_free(conn, prompt.thread_id):
                return alternative, self._start_alternative(
                    conn, now, prompt, alternative, addressed, claim_model, lease_seconds
                )
            (last,) = conn.execute(
                "SELECT COALESCE(MAX(position), -1) FROM messages WHERE thread_id = ?", (prompt.thread_id,)
            ).fetchone()
            conn.execute(
                "INSERT INTO regenerations (thread_id, prompt_id, alternative, agent, user_id, after_position, "
                "status, created_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?)",
                (prompt.thread_id, prompt_id, alternative, addressed, person, last, now),
            )
            self._log(conn, prompt.thread_id, "message", "update", prompt_id, now)  # followers of the prompt look
            return alternative, None

        return cast("tuple[int, Message | None]", self._write(write))

    def queued_regenerations(self, thread_id: str) -> list[tuple[str, int]]:
        """Regenerations waiting for the thread's turn, in order: ``(prompt_id, alternative)``."""
        rows = self._conn().execute(
            "SELECT prompt_id, alternative FROM regenerations WHERE thread_id = ? AND status = 'queued' ORDER BY seq",
            (thread_id,),
        )
        return [(str(r[0]), int(r[1])) for r in rows]

    def regeneration_state(self, prompt_id: str, alternative: int) -> str | None:
        """``queued`` or ``cancelled`` for a regeneration not started; ``None`` otherwise."""
        sql = "SELECT status FROM regenerations WHERE prompt_id = ? AND alternative = ?"
        row = self._conn().execute(sql, (prompt_id, alternative)).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def _next_regeneration_sql(agent: str, thread_id: str | None) -> tuple[str, list[Any]]:
        """For the claim's one query: queued regenerations for ``agent`` whose thread's turn is free
        and that nothing waits before, as ``(id, created_at, kind 1)`` rows (``id``: the ``seq``)."""
        scope, args = ("AND g.thread_id = ? ", [thread_id]) if thread_id is not None else ("", [])
        sql = (
            "SELECT CAST(g.seq AS TEXT) AS id, g.created_at AS created_at, 1 AS kind FROM regenerations g "
            "WHERE g.status = 'queued' AND g.agent = ? " + scope +
            "AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.thread_id = g.thread_id) "
            "AND NOT EXISTS (SELECT 1 FROM regenerations e WHERE e.thread_id = g.thread_id AND e.status = 'queued' "
            "AND e.seq < g.seq) "
            "AND NOT EXISTS (SELECT 1 FROM messages m WHERE +m.thread_id = g.thread_id AND m.status = 'pending' "
            "AND m.role = 'user' AND m.position <= g.after_position)"
        )  # fmt: skip
        return sql, [agent, *args]

    def _take_regeneration(
        self, conn: Conn, now: float, seq: int, agent: str, model: str | None, lease: float
    ) -> tuple[Message, Message]:
        """Start the queued regeneration ``seq`` (found by the claim), in the same transaction."""
        prompt_id, alternative = conn.execute(
            "SELECT prompt_id, alternative FROM regenerations WHERE seq = ?", (seq,)
        ).fetchone()
        conn.execute("DELETE FROM regenerations WHERE seq = ?", (seq,))
        prompt = Message.from_sql(conn.execute("SELECT * FROM messages WHERE id = ?", (prompt_id,)).fetchone())
        return prompt, self._start_alternative(
            conn, now, prompt, int(alternative), agent, model, lease, switch=prompt.on_path
        )

    def _start_alternative(
        self, conn: Conn, now: float, prompt: Message, alternative: int, agent: str, model: str | None,
        lease: float, *, switch: bool = True,
    ) -> Message:  # fmt: skip
        """In the caller's transaction: answer ``alternative`` to an answered prompt, its first step
        ``pending`` with this process's lease, and the answer its prompt shows. With ``switch`` the
        thread's path goes through the prompt; without, the path stays (the prompt is not on it:
        the new answer shows when someone switches there). The thread's turn must be free."""
        conn.execute("UPDATE messages SET chosen = ? WHERE id = ?", (alternative, prompt.id))
        if switch:
            self._select_path(conn, now, prompt.thread_id, prompt.id)
        step = self._insert_message(
            conn, now, self._new_id(conn, "msg"), prompt.thread_id, "assistant", "", "pending", agent, model, 0, None,
            reply_to=prompt.id, turn=prompt.turn, alternative=alternative,
        )  # fmt: skip
        self._insert_run(conn, now, step.id, prompt.thread_id, agent, lease)
        return step

    # -- forks --------------------------------------------------------------------------------------

    def fork_thread(self, thread_id: str, at_message_id: str, title: str | None = None) -> Thread:
        """A new thread holding a copy of the path through ``at_message_id`` up to it (for a prompt,
        the prompt without its answer; for an answer's step, that answer up to the step), with new
        ids for every row (messages, their deltas and tool calls), its times and metadata kept.
        ``forked_from``/``forked_at`` record where it came from; the source is not touched, and
        nothing written to one ever shows in the other. ``title`` defaults to the source's with
        " (fork)". The copied messages must have ended."""
        check_text("title", title, optional=True)
        source = self.get_thread(thread_id)
        at = self._message_in(thread_id, at_message_id)
        path = cast("Store", self).list_messages(thread_id, through=at.id, limit=_NO_LIMIT)
        if at.reply_to is None:
            path = [m for m in path if m.turn != at.turn or m.id == at.id]
        live = [m for m in path if not m.is_final]
        if live:
            raise InvalidArgumentError(
                f"message {live[0].id!r} on the path to {at.id!r} is still {live[0].status}; fork once it has "
                "ended (answer.wait()), or fork at an earlier message."
            )
        if title is None and source.title:
            title = f"{source.title} (fork)"
        conn = self._conn()
        calls = {m.id: conn.execute("SELECT * FROM tool_calls WHERE message_id = ? ORDER BY created_at, id",
                                    (m.id,)).fetchall() for m in path}  # fmt: skip
        deltas = {m.id: conn.execute("SELECT seq, text, created_at FROM deltas WHERE message_id = ? ORDER BY seq",
                                     (m.id,)).fetchall() for m in path}  # fmt: skip
        meta = conn.execute("SELECT metadata FROM threads WHERE id = ?", (thread_id,)).fetchone()[0]

        def write(conn: Conn, now: float) -> str:
            tid = self._new_id(conn, "th")
            conn.execute(
                "INSERT INTO threads VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                (tid, title, source.user_id, source.agent, meta, now, now, len(path), thread_id, at.id),
            )
            ids: dict[str, str] = {}
            turns: dict[int, int] = {}
            head: str | None = None
            for position, m in enumerate(path):
                mid = ids[m.id] = self._new_id(conn, "msg")
                own_turn = m.turn == m.position
                turn = position if own_turn else turns[m.turn]
                turns.setdefault(m.turn, position)
                parent = head if own_turn else None
                conn.execute(
                    "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 1)",
                    (mid, tid, position, m.step, m.role, m.text, m.status, m.error, m.agent, m.model,
                     _usage(m), m.finish_reason, _meta(m.metadata), m.created_at, m.updated_at,
                     ids.get(m.reply_to) if m.reply_to else None, turn, int(m.ends_answer), m.user_id, parent),
                )  # fmt: skip
                if own_turn:
                    head = mid
                for c in calls[m.id]:
                    conn.execute(
                        f"INSERT INTO tool_calls VALUES ({', '.join('?' * len(c))})",
                        (self._new_id(conn, "tc"), tid, mid, *c[3:]),
                    )
                for seq, text, created in deltas[m.id]:
                    conn.execute(
                        "INSERT INTO deltas (message_id, thread_id, seq, text, created_at) VALUES (?, ?, ?, ?, ?)",
                        (mid, tid, seq, text, created),
                    )
            conn.execute("UPDATE threads SET head_id = ? WHERE id = ?", (head, tid))
            self._log(conn, tid, "thread", "insert", tid, now)
            return tid

        return self.get_thread(self._write(write))


def _usage(m: Message) -> str | None:
    return json.dumps(m.usage.to_dict()) if m.usage is not None else None


def _meta(metadata: dict[str, Any]) -> str | None:
    return json.dumps(metadata) if metadata else None
