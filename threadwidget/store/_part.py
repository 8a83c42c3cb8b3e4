"""What the row modules (``_tables.py``, ``_turns.py``, ``_runs.py``, ``_approvals.py``) use of ``Store`` and of each
other, declared once for the type checker; at run time the class is empty."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._dialect import Conn, DatabaseLayer
    from ._rows import Message, Thread, ToolCall

__all__ = ["StorePart"]


class StorePart:
    """A part of ``Store``."""

    if TYPE_CHECKING:
        _db: DatabaseLayer
        path: Path | str
        owner: str

        def _conn(self) -> Conn: ...
        def _write(self, fn: Any) -> Any: ...
        def _new_id(self, conn: Conn, prefix: str) -> str: ...
        @staticmethod
        def _log(conn: Conn, thread_id: str | None, kind: str, op: str, row_id: object,
                 now: float) -> None: ...  # fmt: skip
        def _insert_message(self, conn: Conn, now: float, mid: str, thread_id: str, role: str,
                            text: str, status: str, agent: str | None, model: str | None, step: int,
                            meta: str | None, *, reply_to: str | None = None, turn: int | None = None,
                            user_id: str | None = None, parent: str | None = ...,
                            alternative: int | None = None) -> Message: ...  # fmt: skip
        def _select_path(self, conn: Conn, now: float, thread_id: str, through: str) -> None: ...
        @staticmethod
        def _next_regeneration_sql(agent: str, thread_id: str | None) -> tuple[str, list[Any]]: ...
        def _take_regeneration(self, conn: Conn, now: float, seq: int, agent: str, model: str | None,
                               lease: float) -> tuple[Message, Message]: ...  # fmt: skip
        def _message_in(self, thread_id: str, message_id: str) -> Message: ...
        def get_message(self, message_id: str) -> Message: ...
        def get_thread(self, thread_id: str) -> Thread: ...
        def get_tool_call(self, tool_call_id: str) -> ToolCall: ...
        @staticmethod
        def _turn_free(conn: Conn, thread_id: str) -> bool: ...
        def _start_answer(self, conn: Conn, now: float, prompt: Message, agent: str | None,
                          model: str | None, lease: float) -> Message: ...  # fmt: skip
        def _insert_run(self, conn: Conn, now: float, mid: str, thread_id: str, agent: str | None, lease: float,
                        aborted: int = 0) -> None: ...  # fmt: skip
        def _supersede(self, conn: Conn, now: float, thread_id: str, by: str | None) -> list[Any]: ...
        def _end_parked(self, conn: Conn, now: float, message_id: str, status: str, error: str) -> None: ...
