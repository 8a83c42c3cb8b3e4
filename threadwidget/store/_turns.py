"""Prompts and answers: the part of ``Store`` that makes a thread answer one prompt at a time, in
order, whichever process writes the answers.

A prompt waiting for its turn is a user message with status ``pending``. ``ask`` leaves a prompt in
the thread's queue (taking the thread's turn at once when it is free and the caller answers it);
an ``Answer`` follows it through the store. How a writer takes, keeps and hands on the turn is in
``_runs.py``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from .._errors import InvalidArgumentError, NotFoundError
from .._people import current_user
from ._answer import Answer
from ._checks import check_text
from ._dialect import Conn
from ._part import StorePart
from ._rows import Message
from ._runs import LEASE_SECONDS

if TYPE_CHECKING:
    from ._store import Store

__all__ = ["CANCELLED", "Turns"]

CANCELLED = "cancelled before it was answered"
_NO_CLAIM: Any = object()


class Turns(StorePart):
    """Prompts, answers and aborts (a part of ``Store``)."""

    def _handle(self, prompt: Message, alternative: int | None = None) -> Answer:
        return Answer(cast("Store", self), prompt, alternative)

    # -- answers -----------------------------------------------------------------------------------

    def answer_steps(self, prompt_id: str, alternative: int | None = None) -> list[Message]:
        """The assistant steps answering a prompt, in order: of its answer shown, or of
        ``alternative`` (0: the first answer, 1: the first regenerated one, ...)."""
        rows = self._conn().execute(
            "SELECT m.* FROM messages p JOIN messages m ON m.thread_id = p.thread_id AND m.turn = p.turn "
            "AND m.reply_to = p.id WHERE p.id = ? AND m.alternative = COALESCE(?, p.chosen) ORDER BY m.position",
            (prompt_id, alternative),
        )
        return [Message.from_sql(r) for r in rows]

    def answer(self, prompt_id: str) -> Answer:
        """The ``Answer`` to a prompt asked with ``ask`` (queued, running or ended)."""
        prompt = self.get_message(prompt_id)
        if prompt.role != "user" or (prompt.status == "success" and not self.answer_steps(prompt_id)):
            raise InvalidArgumentError(
                f"message {prompt_id!r} is a {prompt.status} {prompt.role} message that was never asked, so it "
                "has no answer; pass the id of a prompt from store.ask() or thread.ask()."
            )
        return self._handle(prompt)

    def answer_in_progress(self, thread_id: str) -> Answer | None:
        """The answer being written in the thread now (``None`` when its turn is free)."""
        sql = "SELECT m.reply_to FROM runs r JOIN messages m ON m.id = r.message_id WHERE r.thread_id = ?"
        row = self._conn().execute(sql, (thread_id,)).fetchone()
        if row is None or row[0] is None:
            self.get_thread(thread_id)  # a clear error for an unknown thread
            return None
        return self._handle(self.get_message(row[0]))

    def queued_prompts(self, thread_id: str) -> list[Message]:
        """Prompts waiting for the thread's turn, in the order they will be answered."""
        rows = self._conn().execute(
            "SELECT * FROM messages WHERE +thread_id = ? AND status = 'pending' AND role = 'user' ORDER BY position",
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
        return self._handle(prompt)

    def edit(self, prompt_id: str, text: str, *, user_id: str | None = None) -> Answer:
        """Leave a new version of the prompt ``prompt_id`` with ``text`` in the thread's queue, for
        whichever process serves its agent (``thread.edit`` answers it in this process). The
        thread's path switches to it for everyone; the old version and what followed it stay on
        their branch."""
        prompt = self.get_message(prompt_id)
        new, _ = self.add_prompt(prompt.thread_id, text, user_id=user_id, agent=prompt.agent, version_of=prompt_id)
        return self._handle(new)

    def add_prompt(
        self,
        thread_id: str,
        text: str,
        *,
        user_id: str | None = None,
        agent: str | None = None,
        claim_model: str | None = _NO_CLAIM,
        lease_seconds: float = LEASE_SECONDS,
        version_of: str | None = None,
    ) -> tuple[Message, Message | None]:
        """Write a prompt into the thread's queue, as ``user_id``'s (default: ``$JUPYTERHUB_USER``,
        else the login name). With ``claim_model=`` (the answering model's
        name), also take the thread's turn in the same transaction when it is free and nothing
        waits before it: returns ``(prompt, first step)``, the step ``pending`` with this process's
        lease. Else ``(prompt, None)``: the prompt waits as ``pending``. Tool calls of the thread
        waiting for a person's decision are denied in the same transaction ("superseded by a new
        message", decided by ``user_id``): the waiting answer goes on, then this prompt's.
        ``version_of=prompt_id``: the prompt is a new version of that one (an edit): it follows the
        same turn, the thread's path switches to it, and what followed the old version stays on
        its branch."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidArgumentError(f"prompt {text!r} is not valid; expected a non-empty str.")
        check_text("prompt", text)
        for name, value in (("user_id", user_id), ("agent", agent)):
            check_text(name, value, optional=True)
        user_id = current_user() if user_id is None else user_id

        def write(conn: Conn, now: float) -> tuple[Message, Message | None]:
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
            self._supersede(conn, now, thread_id, user_id)  # an answer waiting for a decision goes on
            free = claim_model is not _NO_CLAIM and self._turn_free(conn, thread_id)
            branch: dict[str, Any] = {}
            if version_of is not None:
                branch["parent"] = self._edited(conn, thread_id, version_of)
            prompt = self._insert_message(
                conn, now, self._new_id(conn, "msg"), thread_id, "user", text, "success" if free else "pending",
                addressed, None, 0, None, user_id=user_id, **branch,
            )  # fmt: skip
            if version_of is not None:
                self._select_path(conn, now, thread_id, prompt.id)
                prompt = replace(prompt, on_path=True)
            if not free:
                return prompt, None
            return prompt, self._start_answer(conn, now, prompt, addressed, claim_model, lease_seconds)

        return self._write(write)

    def hand_off(self, thread_id: str, to_agent: str, *, message_id: str | None = None) -> list[str]:
        """Make ``to_agent`` the thread's agent, in one transaction: the thread's ``agent``, the
        prompts waiting in its queue for the agent it had (they go to whoever serves ``to_agent``),
        and the turn of the answer being written (``message_id``, the step holding it), so a parked
        answer is taken up by ``to_agent``'s processes. Returns the ids of the prompts readdressed."""
        check_text("to_agent", to_agent)

        def write(conn: Conn, now: float) -> list[str]:
            row = conn.execute("SELECT agent FROM threads WHERE id = ?", (thread_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no thread with id {thread_id!r} in {self.path}.")
            previous = row[0]
            conn.execute("UPDATE threads SET agent = ?, updated_at = ? WHERE id = ?", (to_agent, now, thread_id))
            self._log(conn, thread_id, "thread", "update", thread_id, now)
            queued = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM messages WHERE +thread_id = ? AND status = 'pending' AND role = 'user' "
                    "AND (agent IS NULL OR agent = ?)",
                    (thread_id, previous),
                )
            ]
            for mid in queued:
                conn.execute("UPDATE messages SET agent = ?, updated_at = ? WHERE id = ?", (to_agent, now, mid))
                self._log(conn, thread_id, "message", "update", mid, now)
            conn.execute(
                "UPDATE regenerations SET agent = ? WHERE thread_id = ? AND status = 'queued' AND agent = ?",
                (to_agent, thread_id, previous),
            )
            if message_id is not None:
                cur = conn.execute("UPDATE runs SET agent = ?, updated_at = ? WHERE message_id = ?",
                                   (to_agent, now, message_id))  # fmt: skip
                if cur.rowcount:
                    self._log(conn, thread_id, "run", "update", message_id, now)
            return queued

        return self._write(write)

    def _edited(self, conn: Conn, thread_id: str, prompt_id: str) -> str | None:
        """The parent of the prompt an edit makes a new version of (checked)."""
        row = conn.execute(
            "SELECT thread_id, role, reply_to, parent_id FROM messages WHERE id = ?", (prompt_id,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no message with id {prompt_id!r} in {self.path}.")
        if row[0] != thread_id or row[1] != "user" or row[2] is not None:
            raise InvalidArgumentError(
                f"message {prompt_id!r} is not a prompt of thread {thread_id!r} (it is a {row[1]} message of "
                f"thread {row[0]!r}); pass the id of a user prompt of this thread to edit it."
            )
        return None if row[3] is None else str(row[3])

    def reply(self, thread_id: str, text: str, *, user_id: str | None = None) -> Message:
        """A person's answer in the thread, as ``user_id`` (default: ``$JUPYTERHUB_USER``, else the
        login name): an ``assistant`` message with the person's ``user_id`` and no agent, which
        views show as that person and the model later reads as an answer given."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidArgumentError(f"text={text!r} is not valid; expected a non-empty str.")
        check_text("text", text)
        check_text("user_id", user_id, optional=True)
        person = current_user() if user_id is None else user_id

        def write(conn: Conn, now: float) -> Message:
            return self._insert_message(
                conn, now, self._new_id(conn, "msg"), thread_id, "assistant", text, "success", None, None, 0, None,
                user_id=person,
            )  # fmt: skip

        return self._write(write)

    def request_abort(self, thread_id: str, *, cancel_queued: bool = False) -> list[str]:
        """Ask the writer of the thread's running answer (in any process) to stop; it ends the
        answer ``aborted`` with its partial text. Prompts waiting in the queue are still answered,
        unless ``cancel_queued=True``: then they end ``aborted`` unanswered. Returns the ids of the
        messages asked to stop or cancelled."""
        return self._write(lambda conn, now: self._abort(conn, now, thread_id, None, cancel_queued))

    def abort_answer(self, prompt_id: str, alternative: int | None = None) -> list[str]:
        """Stop the answer to one prompt (only answer ``alternative`` of it, if given): cancel the
        prompt or the regeneration if it still waits in the queue, else ask its writer to stop.
        Nothing happens to an answer that has ended."""
        prompt = self.get_message(prompt_id)
        return self._write(lambda conn, now: self._abort(conn, now, prompt.thread_id, prompt_id, False, alternative))

    def _abort(
        self, conn: Conn, now: float, thread_id: str, prompt_id: str | None, cancel_queued: bool,
        alternative: int | None = None,
    ) -> list[str]:  # fmt: skip
        sql = "SELECT r.message_id, r.waiting_for FROM runs r JOIN messages m ON m.id = r.message_id "
        sql += "WHERE r.thread_id = ? AND r.abort_requested = 0" + (" AND m.reply_to = ?" if prompt_id else "")
        args: list[Any] = [thread_id, prompt_id] if prompt_id else [thread_id]
        if prompt_id and alternative is not None:
            sql += " AND m.alternative = ?"
            args.append(alternative)
        rows = conn.execute(sql, args).fetchall()
        ids = [r[0] for r in rows]
        for mid, waiting_for in rows:
            if waiting_for is not None:  # parked for a decision: nobody writes it to notice, so end it here
                self._end_parked(conn, now, mid, "aborted", "aborted by request")
                continue
            conn.execute("UPDATE runs SET abort_requested = 1, updated_at = ? WHERE message_id = ?", (now, mid))
            self._log(conn, thread_id, "run", "update", mid, now)
        if cancel_queued or prompt_id:
            sql = "SELECT id FROM messages WHERE +thread_id = ? AND status = 'pending' AND role = 'user'"
            queued = [r[0] for r in conn.execute(sql + (" AND id = ?" if prompt_id else ""),
                                                 (thread_id, prompt_id) if prompt_id else (thread_id,))]  # fmt: skip
            for mid in queued:
                conn.execute(
                    "UPDATE messages SET status = 'aborted', error = ?, updated_at = ? WHERE id = ?",
                    (CANCELLED, now, mid),
                )
                self._log(conn, thread_id, "message", "update", mid, now)
            ids += queued
            sql = "SELECT seq, prompt_id FROM regenerations WHERE thread_id = ? AND status = 'queued'"
            args = [thread_id]
            if prompt_id:
                sql += " AND prompt_id = ?" + (" AND alternative = ?" if alternative is not None else "")
                args += [prompt_id] if alternative is None else [prompt_id, alternative]
            for seq, pid in conn.execute(sql, args).fetchall():
                conn.execute("UPDATE regenerations SET status = 'cancelled' WHERE seq = ?", (seq,))
                self._log(conn, thread_id, "message", "update", pid, now)
                ids.append(pid)
        return ids
