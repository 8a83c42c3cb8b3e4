"""Tool calls a person decides (a part of ``Store``): approve or deny, from any process.

A tool made with ``@tw.tool(needs_approval=...)`` does not run when the model calls it: its row goes
to ``awaiting_approval`` with its full arguments, and the answer's turn is parked (``runs.waiting_for
= 'approval'``: no writer, no lease that expires). A decision is one transaction that changes the
row only while it is ``awaiting_approval``: of two people deciding at once exactly one wins, the
other gets a ``DecisionError`` and nothing changes. Who decided, what, when and why are plain columns
of ``tool_calls`` (``decision``, ``decided_by``, ``decided_at``, ``decision_note``). Once no call of
the parked step waits, any process serving the agent resumes the answer (``Runs.claim_parked``).
"""

from __future__ import annotations

from typing import Any

from .._errors import DecisionError, InvalidArgumentError, NotFoundError
from .._text import iso_time
from ._checks import check_text
from ._dialect import Conn
from ._part import StorePart
from ._rows import ToolCall

__all__ = ["SUPERSEDED", "Approvals", "denial_text"]

SUPERSEDED = "superseded by a new message"


def denial_text(by: str | None, reason: str | None) -> str:
    """What a denied call's ``error`` says (and the model reads): ``denied by alice: too large``."""
    return "denied" + (f" by {by}" if by else "") + (f": {reason}" if reason else "")


class Approvals(StorePart):
    """Decisions on tool calls (a part of ``Store``)."""

    def approve_tool_call(self, tool_call_id: str, *, by: str, note: str | None = None) -> ToolCall:
        """Approve a call that waits for a person (``awaiting_approval``): it runs once, when a process
        serving the agent (or the one that asked) resumes the answer. ``by``: who decides (a user
        id), recorded with the time and ``note``. Raises ``DecisionError`` when the call does not
        wait (decided already, by you or someone else; or it never needed approval)."""
        return self._decide(tool_call_id, "approved", by, note, "note")

    def deny_tool_call(self, tool_call_id: str, *, by: str, reason: str | None = None) -> ToolCall:
        """Deny a call that waits for a person: it never runs; the model is told it was denied, by
        whom and why (``reason``), and the answer goes on. Raises ``DecisionError`` like
        ``approve_tool_call``."""
        return self._decide(tool_call_id, "denied", by, reason, "reason")

    def pending_approvals(self, thread_id: str | None = None) -> list[ToolCall]:
        """Tool calls waiting for a person's decision (in one thread, or in the whole store), oldest first."""
        sql, args = "SELECT * FROM tool_calls WHERE status = 'awaiting_approval'", []
        if thread_id is not None:
            sql, args = sql + " AND thread_id = ?", [thread_id]
        return [ToolCall.from_sql(r) for r in self._conn().execute(sql + " ORDER BY created_at, id", args)]

    def _decide(self, tool_call_id: str, decision: str, by: str, note: str | None, note_name: str) -> ToolCall:
        if not isinstance(by, str) or not by.strip():
            raise InvalidArgumentError(
                f"by={by!r} is not valid; expected who decides, a non-empty str such as by='alice' (it is recorded)."
            )
        check_text("by", by)
        check_text(note_name, note, optional=True)
        check_text("tool_call_id", tool_call_id)

        def write(conn: Conn, now: float) -> None:
            row = conn.execute("SELECT thread_id FROM tool_calls WHERE id = ?", (tool_call_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no tool call with id {tool_call_id!r} in {self.path}.")
            if not self._decide_in(conn, now, tool_call_id, row[0], decision, by, note or None):
                raise self._not_waiting(conn, tool_call_id, decision)

        self._write(write)
        return self.get_tool_call(tool_call_id)

    def _decide_in(
        self, conn: Conn, now: float, tool_call_id: str, thread_id: str, decision: str, by: str | None,
        note: str | None,
    ) -> bool:  # fmt: skip
        """Record a decision in the caller's transaction; False (nothing changed) unless the call waits."""
        if decision == "approved":
            cur = conn.execute(
                "UPDATE tool_calls SET status = 'approved', decision = 'approved', decided_by = ?, decided_at = ?, "
                "decision_note = ?, updated_at = ? WHERE id = ? AND status = 'awaiting_approval'",
                (by, now, note, now, tool_call_id),
            )
        else:
            cur = conn.execute(
                "UPDATE tool_calls SET status = 'denied', decision = 'denied', decided_by = ?, decided_at = ?, "
                "decision_note = ?, error = ?, ended_at = ?, updated_at = ? "
                "WHERE id = ? AND status = 'awaiting_approval'",
                (by, now, note, denial_text(by, note), now, now, tool_call_id),
            )
        if not cur.rowcount:
            return False
        self._log(conn, thread_id, "tool_call", "update", tool_call_id, now)
        return True

    @staticmethod
    def _not_waiting(conn: Conn, tool_call_id: str, wanted: str) -> DecisionError:
        name, status, decision, by, at = conn.execute(
            "SELECT name, status, decision, decided_by, decided_at FROM tool_calls WHERE id = ?", (tool_call_id,)
        ).fetchone()
        verb = "approve" if wanted == "approved" else "deny"
        if decision is not None:
            return DecisionError(
                f"tool call {tool_call_id!r} ({name}) was already {decision} by {by!r} at {iso_time(at)}, so you "
                f"cannot {verb} it: a call is decided once, and the first decision stands (it is now {status}). "
                "Nothing was changed."
            )
        return DecisionError(
            f"tool call {tool_call_id!r} ({name}) is {status}, not awaiting_approval, so there is nothing to "
            f"{verb}: only a call of a tool made with needs_approval waits for a decision. Nothing was changed; "
            "store.pending_approvals() lists the calls that wait."
        )

    def _supersede(self, conn: Conn, now: float, thread_id: str, by: str | None) -> list[Any]:
        """A new prompt in a thread whose answer waits for a decision: deny what waits ("superseded
        by a new message"), so the answer goes on and the queue moves to the new prompt."""
        waiting = conn.execute(
            "SELECT c.id FROM tool_calls c JOIN runs r ON r.message_id = c.message_id "
            "WHERE r.thread_id = ? AND c.status = 'awaiting_approval'",
            (thread_id,),
        ).fetchall()
        return [tcid for (tcid,) in waiting if self._decide_in(conn, now, tcid, thread_id, "denied", by, SUPERSEDED)]
