"""What the model sees: the instructions and the thread's recent messages in OpenAI chat shapes.

An assistant message that called tools becomes ``{"role": "assistant", "tool_calls": [...]}``
followed by one ``{"role": "tool", "tool_call_id": ..., "content": ...}`` per call, built from the
``tool_calls`` rows (the result, or the error the model must correct).
"""

from __future__ import annotations

import json
from typing import Any

from ..store import Message, Store, ToolCall

__all__ = ["build_messages", "estimate_tokens"]


def _arguments(call: ToolCall) -> str:
    try:
        json.loads(call.arguments or "{}")
    except ValueError:
        return "{}"  # invalid JSON from the model; the tool result below says what was wrong
    return call.arguments or "{}"


def _tool_result(call: ToolCall) -> str:
    if call.status == "success":
        return call.result or ""
    if call.status == "denied":  # a person decided: say who and why
        return f"Not run: the call was {call.error or 'denied'}."
    return f"Error: {call.error or 'the tool did not finish'}"


def build_messages(
    store: Store,
    thread_id: str,
    *,
    instructions: str | None,
    window: int,
    through: str | None = None,
    exclude: set[str] = frozenset(),  # type: ignore[assignment]
) -> list[dict[str, Any]]:
    """The last ``window`` messages up to the answer to prompt ``through`` (later prompts are not
    shown to the model), without ``exclude``, in chat shapes after the instructions."""
    history = [m for m in store.list_messages(thread_id, limit=window, through=through) if m.id not in exclude]
    calls = {m.id: store.list_tool_calls(thread_id, message_id=m.id) for m in history if m.role == "assistant"}
    out: list[dict[str, Any]] = [{"role": "system", "content": instructions}] if instructions else []
    for m in history:
        out.extend(_shape(m, calls.get(m.id, [])))
    return out


def _shape(m: Message, calls: list[ToolCall]) -> list[dict[str, Any]]:
    if m.role == "assistant":
        if not calls:
            return [{"role": "assistant", "content": m.text}] if m.text else []
        shaped: list[dict[str, Any]] = [
            {
                "role": "assistant",
                "content": m.text or None,
                "tool_calls": [
                    {"id": c.call_id, "type": "function", "function": {"name": c.name, "arguments": _arguments(c)}}
                    for c in calls
                ],
            }
        ]
        shaped += [{"role": "tool", "tool_call_id": c.call_id, "content": _tool_result(c)} for c in calls]
        return shaped
    if m.role == "tool":
        return []  # tool results live on the tool_calls rows of the assistant message
    return [{"role": m.role, "content": m.text}]


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """A rough token count (~4 characters a token) for usage when the provider sent none."""
    return sum(len(json.dumps(m)) for m in messages) // 4
