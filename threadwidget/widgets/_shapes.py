"""The JSON shapes the browser reads (``js/src/protocol.ts`` is the contract), built from store rows.

Pure functions: no store access, no widget state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..store import Message, Thread, ToolCall

__all__ = [
    "LIVE",
    "MESSAGE_FIELDS",
    "TOOL_CALL_FIELDS",
    "message_dict",
    "one_line",
    "thread_info",
    "thread_status",
    "tool_call_dict",
    "transcript",
    "waiting_note",
]

#: message statuses of an answer still being written
LIVE = frozenset({"pending", "streaming"})

MESSAGE_FIELDS = ("id", "role", "text", "status", "error", "agent", "model", "created_at", "usage")
TOOL_CALL_FIELDS = (
    "id", "message_id", "call_id", "name", "arguments", "status", "progress", "progress_note", "result", "error",
    "started_at", "ended_at",
)  # fmt: skip
PREVIEW_CHARS = 80


def message_dict(message: Message, tool_calls: Iterable[dict[str, Any]] = ()) -> dict[str, Any]:
    """A ``Message`` of protocol.ts."""
    data = message.to_dict()
    out = {key: data[key] for key in MESSAGE_FIELDS}
    out["tool_calls"] = list(tool_calls)
    return out


def tool_call_dict(call: ToolCall) -> dict[str, Any]:
    """A ``ToolCall`` of protocol.ts."""
    data = call.to_dict()
    return {key: data[key] for key in TOOL_CALL_FIELDS}


def one_line(text: str, limit: int = PREVIEW_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def thread_info(thread: Thread, recent: Sequence[Message]) -> dict[str, Any]:
    """A ``ThreadInfo`` of protocol.ts; ``recent`` are the thread's last messages, oldest first."""
    preview = next((m.text for m in reversed(recent) if m.text.strip()), None)
    return {
        "id": thread.id,
        "title": thread.title,
        "agent": thread.agent,
        "user_id": thread.user_id,
        "updated_at": thread.updated_at,
        "preview": one_line(preview) if preview is not None else None,
    }


def waiting_note(agent: str | None) -> str:
    if agent is None:
        return (
            "The message waits for an agent, but this thread names none: create the view with "
            "agent=tw.Agent(...), or set the thread's agent."
        )
    return f"Waiting for a process running agent.serve() for agent {agent!r} to answer."


def thread_status(messages: Sequence[dict[str, Any]], agent: str | None) -> dict[str, str]:
    """A ``ThreadStatus`` of protocol.ts for a window of message dicts (oldest first).

    streaming: an assistant message is pending or streaming, or one of its tool calls still runs (the
    answer goes on after it); waiting: the newest message is a user message left pending for
    ``agent.serve()``; failed/aborted: the newest answer (with no prompt after it) ended so, with its
    error as the note; else idle.
    """
    for m in messages:
        if m["role"] != "assistant":
            continue
        if m["status"] in LIVE:
            return {"state": "streaming", "note": ""}
        running = [c["name"] for c in m.get("tool_calls") or () if c["status"] in ("streaming_args", "running")]
        if running:
            return {"state": "streaming", "note": f"Running {', '.join(running)}…"}
    if messages and messages[-1]["role"] == "user" and messages[-1]["status"] == "pending":
        return {"state": "waiting", "note": waiting_note(messages[-1]["agent"] or agent)}
    for m in reversed(messages):
        if m["role"] == "user":
            break
        if m["role"] == "assistant":
            if m["status"] in ("failed", "aborted"):
                default = "The answer failed." if m["status"] == "failed" else "Stopped."
                return {"state": m["status"], "note": m["error"] or default}
            break
    return {"state": "idle", "note": ""}


def transcript(messages: Sequence[dict[str, Any]], count: int = 3, width: int = 100) -> list[str]:
    """The last ``count`` messages as one line each, for text reprs."""
    lines = []
    for m in messages[-count:]:
        who = "You" if m["role"] == "user" else (m["agent"] or m["role"]) if m["role"] == "assistant" else m["role"]
        text = m["text"] or ("…" if m["status"] in LIVE else "")
        if m["status"] in ("failed", "aborted"):
            text = f"{text} [{m['status']}: {m['error'] or ''}]".strip()
        lines.append(one_line(f"{who}: {text}", width))
    return lines
