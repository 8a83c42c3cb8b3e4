"""The JSON shapes the browser reads (``_wire.py``, the twin of ``js/src/protocol.ts``), built from
store rows.

Pure functions: no store access, no widget state.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from .._statuses import LIVE_STATUSES, OPEN_TOOL_STATUSES
from .._text import one_line
from .._usage import Usage
from ..store import Message, Thread, ToolCall
from . import _wire as wire

__all__ = [
    "handed_to",
    "message_dict",
    "one_line",
    "thread_info",
    "thread_status",
    "tool_call_dict",
    "wire_usage",
    "transcript",
    "waiting_note",
    "who",
]

PREVIEW_CHARS = 80


def message_dict(message: Message, tool_calls: Iterable[wire.ToolCall] = ()) -> wire.Message:
    """A ``Message`` of protocol.ts."""
    usage = message.usage
    return {
        "id": message.id,
        "role": message.role,
        "text": message.text,
        "status": message.status,
        "error": message.error,
        "agent": message.agent,
        "model": message.model,
        "created_at": message.created_at,
        "usage": None if usage is None else wire_usage(usage),
        "tool_calls": list(tool_calls),
        "user_id": message.user_id,
    }


def wire_usage(usage: Usage) -> wire.Usage:
    out: wire.Usage = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
    if usage.cached_input_tokens:
        out["cached_input_tokens"] = usage.cached_input_tokens
    return out


def tool_call_dict(call: ToolCall) -> wire.ToolCall:
    """A ``ToolCall`` of protocol.ts."""
    return {
        "id": call.id,
        "message_id": call.message_id,
        "call_id": call.call_id,
        "name": call.name,
        "arguments": call.arguments,
        "status": call.status,
        "progress": call.progress,
        "progress_note": call.progress_note,
        "result": call.result,
        "error": call.error,
        "started_at": call.started_at,
        "ended_at": call.ended_at,
        "decision": call.decision,
        "decided_by": call.decided_by,
        "decided_at": call.decided_at,
        "decision_note": call.decision_note,
    }


def thread_info(thread: Thread, recent: Sequence[Message]) -> wire.ThreadInfo:
    """A ``ThreadInfo`` of protocol.ts; ``recent`` are the thread's last messages, oldest first."""
    preview = next((m.text for m in reversed(recent) if m.text.strip()), None)
    return {
        "id": thread.id,
        "title": thread.title,
        "agent": thread.agent,
        "user_id": thread.user_id,
        "updated_at": thread.updated_at,
        "preview": one_line(preview, PREVIEW_CHARS) if preview is not None else None,
    }


def waiting_note(agent: str | None) -> str:
    if agent is None:
        return (
            "The message waits for an agent, but this thread names none: create the view with "
            "agent=tw.Agent(...), or set the thread's agent."
        )
    return f"Waiting for a process running agent.serve() for agent {agent!r} to answer."


def number_queue(messages: Sequence[wire.Message]) -> None:
    """Set ``queue_position`` (1, 2, …) on the prompts waiting their turn, in answering order (only
    on them: the other messages do not carry the key)."""
    place = 0
    for m in messages:
        if m["role"] == "user" and m["status"] == "pending":
            place += 1
            m["queue_position"] = place


def thread_status(messages: Sequence[wire.Message], agent: str | None, *, served: bool = False) -> wire.ThreadStatus:
    """A ``ThreadStatus`` of protocol.ts for a window of message dicts (thread order).

    streaming: an answer is being written (a step pending or streaming, or one of its tool calls
    still runs), the note says what runs and how many prompts wait behind it; waiting: prompts wait
    and no answer runs (``served``: this process serves the thread, so one starts at once), or a
    tool call waits for a person's decision;
    failed/aborted: the newest answer (with no prompt after it) ended so, with its error as the
    note; else idle.
    """
    queued = sum(1 for m in messages if m["role"] == "user" and m["status"] == "pending")
    behind = f"{queued} prompt{'s' if queued != 1 else ''} queued" if queued else ""
    for m in messages:
        if m["role"] != "assistant":
            continue
        running = [c["name"] for c in m.get("tool_calls") or () if c["status"] in OPEN_TOOL_STATUSES]
        if m["status"] in LIVE_STATUSES or running:
            doing = f"Running {', '.join(running)}…" if running else "Answering…"
            return {"state": "streaming", "note": f"{doing} · {behind}" if behind else doing}
    asked = [c["name"] for m in messages for c in m.get("tool_calls") or () if c["status"] == "awaiting_approval"]
    if asked:
        note = f"Waiting for a person to approve {', '.join(asked)}"
        return {"state": "waiting", "note": f"{note} · {behind}" if behind else note}
    if queued:
        first = next(m for m in messages if m["role"] == "user" and m["status"] == "pending")
        note = "Starting the answer…" if served else waiting_note(first["agent"] or agent)
        return {"state": "waiting", "note": f"{behind}. {note}" if queued > 1 else note}
    for m in reversed(messages):
        if m["role"] == "user":
            break
        if m["role"] == "assistant":
            if m["status"] in ("failed", "aborted"):
                default = "The answer failed." if m["status"] == "failed" else "Stopped."
                return {"state": m["status"], "note": m["error"] or default}
            break
    return {"state": "idle", "note": ""}


def who(m: wire.Message, me: str | None) -> str:
    """Who wrote ``m``, as the person ``me`` reads it: "You" for their own prompts (and prompts of
    nobody named), others' by name; an answer by its agent, a human answer by its person."""
    person = m.get("user_id")
    if m["role"] == "user" or (m["role"] == "assistant" and person is not None):
        return "You" if person is None or person == me else person
    return (m["agent"] or "Assistant") if m["role"] == "assistant" else "System" if m["role"] == "system" else "Tool"


def handed_to(m: wire.Message) -> str | None:
    """The agent step ``m`` handed its thread to: what its ``transfer_to_…`` call returned once the
    handoff was made (``{"transferred_to": name}``), else None (the twin of ``handedTo`` in message.ts)."""
    for c in m["tool_calls"]:
        if not c["name"].startswith("transfer_to_") or c["status"] != "success" or not c["result"]:
            continue
        try:
            to = json.loads(c["result"])
        except ValueError:
            continue
        if isinstance(to, dict) and isinstance(to.get("transferred_to"), str) and to["transferred_to"]:
            return str(to["transferred_to"])
    return None


def transcript(messages: Sequence[wire.Message], count: int = 3, width: int = 100, me: str | None = None) -> list[str]:
    """The last ``count`` messages as one line each, for text reprs (as ``me`` reads them)."""
    lines = []
    for m in messages[-count:]:
        person = m["role"] == "user" or (m["role"] == "assistant" and m.get("user_id") is not None)
        who_ = who(m, me) if person else (m["agent"] or m["role"]) if m["role"] == "assistant" else m["role"]
        text = m["text"] or ("…" if m["status"] in LIVE_STATUSES else "")
        if m["tool_calls"]:  # a step that called tools: which, and how they ended
            text = " ".join([text, *(f"⚙ {c['name']} {c['status']}" for c in m["tool_calls"])]).strip()
        if m["status"] in ("failed", "aborted"):
            text = f"{text} [{m['status']}: {m['error'] or ''}]".strip()
        if (to := handed_to(m)) is not None:
            text = f"{text} ── handed over to {to} ──".strip()
        lines.append(one_line(f"{who_}: {text}", width))
    return lines
