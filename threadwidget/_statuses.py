"""Statuses and kinds, defined once: the store's rows, the runtime, the views and the CLI use these.

``js/src/protocol.ts`` mirrors them for the browser (``LIVE_STATUSES``, ``OPEN_TOOL_STATUSES``).
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "ANSWER_STATUSES",
    "DECISIONS",
    "EVENT_KINDS",
    "FINAL_STATUSES",
    "LIVE_STATUSES",
    "MESSAGE_STATUSES",
    "OPEN_TOOL_STATUSES",
    "ROLES",
    "TOOL_CALL_STATUSES",
    "WAITING_TOOL_STATUSES",
    "AnswerStatus",
    "Decision",
    "EventKind",
    "MessageStatus",
    "Role",
    "ToolCallStatus",
]

Role = Literal["system", "user", "assistant", "tool"]
MessageStatus = Literal["pending", "streaming", "success", "failed", "aborted"]
#: ``awaiting_approval``: the tool needs a person's decision (``store.approve_tool_call`` /
#: ``deny_tool_call``); ``approved``: decided yes, it runs when a writer resumes the answer;
#: ``denied``: decided no, it never runs (final)
ToolCallStatus = Literal["streaming_args", "awaiting_approval", "approved", "running", "success", "error", "denied"]
#: what a person decided on a tool call that needed approval (``tool_calls.decision``)
Decision = Literal["approved", "denied"]
EventKind = Literal["thread", "message", "delta", "tool_call", "run", "presence", "resync", "feed", "path"]
#: an answer to one prompt: ``queued`` (the prompt waits for the thread's turn), ``running`` (steps
#: are being written or its tools run), ``waiting`` (a tool call waits for a person's decision; no
#: process holds it), then how its last step ended
AnswerStatus = Literal["queued", "running", "waiting", "success", "failed", "aborted"]

ROLES: tuple[Role, ...] = ("system", "user", "assistant", "tool")
MESSAGE_STATUSES: tuple[MessageStatus, ...] = ("pending", "streaming", "success", "failed", "aborted")
TOOL_CALL_STATUSES: tuple[ToolCallStatus, ...] = (
    "streaming_args", "awaiting_approval", "approved", "running", "success", "error", "denied",
)  # fmt: skip
DECISIONS: tuple[Decision, ...] = ("approved", "denied")
EVENT_KINDS: tuple[EventKind, ...] = (
    "thread", "message", "delta", "tool_call", "run", "presence", "resync", "feed", "path",
)  # fmt: skip
ANSWER_STATUSES: tuple[AnswerStatus, ...] = ("queued", "running", "waiting", "success", "failed", "aborted")

#: a message being written: an assistant step, or a prompt waiting in the thread's queue
LIVE_STATUSES: frozenset[str] = frozenset({"pending", "streaming"})
#: statuses after which a message never changes again
FINAL_STATUSES: frozenset[str] = frozenset({"success", "failed", "aborted"})
#: a tool call being written or run: the answer's writer holds a lease on it
OPEN_TOOL_STATUSES: frozenset[str] = frozenset({"streaming_args", "running"})
#: a tool call that waits for a person (``awaiting_approval``) or for a writer to run it (``approved``):
#: no lease covers it, so no reaper ends it
WAITING_TOOL_STATUSES: frozenset[str] = frozenset({"awaiting_approval", "approved"})
