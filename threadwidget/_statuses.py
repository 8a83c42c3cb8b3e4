"""Statuses and kinds, defined once: the store's rows, the runtime, the views and the CLI use these.

``js/src/protocol.ts`` mirrors them for the browser (``LIVE_STATUSES``, ``OPEN_TOOL_STATUSES``).
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "ANSWER_STATUSES",
    "EVENT_KINDS",
    "FINAL_STATUSES",
    "LIVE_STATUSES",
    "MESSAGE_STATUSES",
    "OPEN_TOOL_STATUSES",
    "ROLES",
    "TOOL_CALL_STATUSES",
    "AnswerStatus",
    "EventKind",
    "MessageStatus",
    "Role",
    "ToolCallStatus",
]

Role = Literal["system", "user", "assistant", "tool"]
MessageStatus = Literal["pending", "streaming", "success", "failed", "aborted"]
ToolCallStatus = Literal["streaming_args", "running", "success", "error"]
EventKind = Literal["thread", "message", "delta", "tool_call", "run", "resync", "feed"]
#: an answer to one prompt: ``queued`` (the prompt waits for the thread's turn), ``running`` (steps
#: are being written or its tools run), then how its last step ended
AnswerStatus = Literal["queued", "running", "success", "failed", "aborted"]

ROLES: tuple[Role, ...] = ("system", "user", "assistant", "tool")
MESSAGE_STATUSES: tuple[MessageStatus, ...] = ("pending", "streaming", "success", "failed", "aborted")
TOOL_CALL_STATUSES: tuple[ToolCallStatus, ...] = ("streaming_args", "running", "success", "error")
EVENT_KINDS: tuple[EventKind, ...] = ("thread", "message", "delta", "tool_call", "run", "resync", "feed")
ANSWER_STATUSES: tuple[AnswerStatus, ...] = ("queued", "running", "success", "failed", "aborted")

#: a message being written: an assistant step, or a prompt waiting in the thread's queue
LIVE_STATUSES: frozenset[str] = frozenset({"pending", "streaming"})
#: statuses after which a message never changes again
FINAL_STATUSES: frozenset[str] = frozenset({"success", "failed", "aborted"})
#: a tool call that has not ended: the answer goes on after it
OPEN_TOOL_STATUSES: frozenset[str] = frozenset({"streaming_args", "running"})
