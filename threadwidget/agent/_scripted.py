"""``ScriptedModel``: a deterministic offline model that plays the LLM in tests, demos and notebooks.

Replies are consumed one per ``stream()`` call from a queue filled with ``enqueue(...)``: a string is
streamed as word-sized tokens, ``ScriptedModel.tool_calls([...])`` streams one step of (parallel)
tool calls with interleaved argument chunks, ``ScriptedModel.error("...")`` streams some text then
raises ``ModelError``. With an empty queue it answers a tool result with a summary of it (not the
result of a handoff: the agent taking over answers the user), else the first of ``rules`` whose
pattern matches the last user message, else a short echo that says it is not a real model. Tokens
are paced at ``tokens_per_second``; ``close()`` from any thread ends the stream at once, without
``Finish`` and without raising, as ``OpenAIChat`` does.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .._errors import InvalidArgumentError, ModelError
from ._model import Finish, ModelEvent, TextDelta, ToolCallDelta, Usage

__all__ = ["ScriptedModel"]

_log = logging.getLogger(__name__)
_log.addHandler(logging.NullHandler())  # the announcement prints its own line; no second one via lastResort

ANNOUNCEMENT = "threadwidget: no OPENAI_API_KEY set — using the offline ScriptedModel (not a real LLM)."
_TOKEN = re.compile(r"\S+\s*|\s+")
_ARGUMENT_CHUNK = 8  # characters of argument JSON per streamed tool-call piece


@dataclass(frozen=True)
class ToolCallsReply:
    """One step of (parallel) tool calls: ``(name, arguments)`` or ``(name, arguments, call_id)``."""

    calls: tuple[tuple[str, dict[str, Any], str | None], ...]
    text: str = ""


@dataclass(frozen=True)
class ErrorReply:
    """Stream ``text``, then raise ``ModelError(message)``."""

    message: str
    text: str = "Let me look into that"
    status_code: int | None = None
    retryable: bool = False


Reply = str | ToolCallsReply | ErrorReply
Rule = tuple[str | re.Pattern[str], Reply | Callable[[re.Match[str]], Reply]]


class ScriptedModel:
    """A deterministic offline model. ``rules`` is a list of ``(regex, reply)`` pairs tried in order
    against the last user message; a reply may also be a function of the ``re.Match``."""

    _announced: ClassVar[bool] = False
    _announce_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        name: str = "scripted",
        *,
        tokens_per_second: float | None = 200.0,
        rules: Sequence[Rule] | None = None,
    ) -> None:
        if tokens_per_second is not None and not tokens_per_second > 0:
            raise InvalidArgumentError(f"tokens_per_second must be > 0 or None, not {tokens_per_second!r}")
        self.name = name
        self.tokens_per_second = tokens_per_second
        self.rules = [
            (re.compile(pattern) if isinstance(pattern, str) else pattern, reply) for pattern, reply in rules or ()
        ]
        self._queue: collections.deque[Reply] = collections.deque()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ScriptedModel({self.name!r}, queued={len(self._queue)})"

    @staticmethod
    def tool_calls(calls: Iterable[Sequence[Any]], *, text: str = "") -> ToolCallsReply:
        """A reply that calls tools: ``ScriptedModel.tool_calls([("lookup_order", {"order_id": "42"})])``."""
        parsed = []
        for call in calls:
            if not 2 <= len(call) <= 3 or not isinstance(call[0], str) or not isinstance(call[1], dict):
                raise InvalidArgumentError(f"a tool call is (name, arguments_dict[, call_id]), not {call!r}")
            parsed.append((call[0], call[1], call[2] if len(call) == 3 else None))
        if not parsed:
            raise InvalidArgumentError("tool_calls() needs at least one (name, arguments) pair")
        return ToolCallsReply(tuple(parsed), text)

    @staticmethod
    def error(message: str, *, text: str = "Let me look into that", status_code: int | None = None) -> ErrorReply:
        """A reply that streams ``text`` then fails with ``ModelError(message)``."""
        return ErrorReply(message, text, status_code)

    def enqueue(self, *replies: Reply) -> None:
        """Queue replies, consumed one per ``stream()`` call."""
        for reply in replies:
            if not isinstance(reply, (str, ToolCallsReply, ErrorReply)):
                raise InvalidArgumentError(
                    f"a scripted reply is a str, ScriptedModel.tool_calls(...) or ScriptedModel.error(...), "
                    f"not {type(reply).__name__}"
                )
        with self._lock:
            self._queue.extend(replies)

    @property
    def queued(self) -> int:
        """How many enqueued replies are left."""
        return len(self._queue)

    def stream(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ScriptedStream:
        with self._lock:
            reply = self._queue.popleft() if self._queue else None
        return ScriptedStream(self._answer(messages) if reply is None else reply, messages, self.tokens_per_second)

    def _answer(self, messages: list[dict[str, Any]]) -> Reply:
        if messages and messages[-1].get("role") == "tool" and not _handed_over(messages):
            return _summarise_tool_results(messages)
        said = next((_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
        for pattern, reply in self.rules:
            match = pattern.search(said)
            if match:
                return reply(match) if callable(reply) else reply
        echo = " ".join(said.split())
        echo = echo if len(echo) <= 200 else echo[:199] + "…"
        return (
            f"You said: **{echo}**\n\nThis is the offline scripted model, not a real LLM. To use a real "
            "one, set `OPENAI_API_KEY` or pass `model=tw.OpenAIChat(...)`."
        )

    @classmethod
    def announce_default(cls) -> None:
        """Say, once per process, that the offline model stands in for a real one."""
        with cls._announce_lock:
            if cls._announced:
                return
            cls._announced = True
        _log.warning(ANNOUNCEMENT)
        print(ANNOUNCEMENT, file=sys.stderr, flush=True)


@dataclass
class ScriptedStream:
    """The stream of one scripted reply; ``close()`` from any thread ends it at once."""

    reply: Reply
    messages: list[dict[str, Any]]
    tokens_per_second: float | None
    _closed: threading.Event = field(default_factory=threading.Event, repr=False)

    def close(self) -> None:
        self._closed.set()

    def __iter__(self) -> Iterator[ModelEvent]:
        reply, pieces = self.reply, 0
        interval = 1.0 / self.tokens_per_second if self.tokens_per_second else 0.0
        due = time.monotonic()
        for event in _events(reply, self.messages):
            if interval and pieces:  # paced against a schedule, without bursts after a slow consumer
                due = max(due + interval, time.monotonic())
                if self._closed.wait(due - time.monotonic()):
                    return
            if self._closed.is_set():
                return
            pieces += 1
            yield event
        if self._closed.is_set():
            return
        if isinstance(reply, ErrorReply):
            raise ModelError(reply.message, status_code=reply.status_code, retryable=reply.retryable)
        usage = Usage(sum(_words(m) for m in self.messages), pieces)
        yield Finish("tool_calls" if isinstance(reply, ToolCallsReply) else "stop", usage)


def _events(reply: Reply, messages: list[dict[str, Any]]) -> Iterator[ModelEvent]:
    text = reply if isinstance(reply, str) else reply.text
    for token in _TOKEN.findall(text):
        yield TextDelta(token)
    if not isinstance(reply, ToolCallsReply):
        return
    pending = []
    for index, (name, arguments, given_id) in enumerate(reply.calls):
        payload = json.dumps(arguments)
        seed = json.dumps([len(messages), index, name, payload]).encode()  # deterministic, distinct per step
        yield ToolCallDelta(index, id=given_id or "call_" + hashlib.sha1(seed).hexdigest()[:16], name=name)
        pending.append((index, [payload[i : i + _ARGUMENT_CHUNK] for i in range(0, len(payload), _ARGUMENT_CHUNK)]))
    for round_ in range(max(len(chunks) for _, chunks in pending)):  # interleave the calls' arguments
        for index, chunks in pending:
            if round_ < len(chunks):
                yield ToolCallDelta(index, arguments=chunks[round_])


def _handed_over(messages: list[dict[str, Any]]) -> bool:
    """The last step only handed the thread over (``transfer_to_<name>``): the agent taking it
    answers the user's message instead of summing up the handoff."""
    last = next((m for m in reversed(messages) if m.get("role") == "assistant"), None)
    calls = [c.get("function", {}).get("name", "") for c in (last or {}).get("tool_calls") or ()]
    return bool(calls) and all(name.startswith("transfer_to_") for name in calls)


def _summarise_tool_results(messages: list[dict[str, Any]]) -> str:
    names = {
        call.get("id"): call.get("function", {}).get("name", "tool")
        for m in messages
        if m.get("role") == "assistant"
        for call in m.get("tool_calls") or ()
    }
    results = []
    for m in reversed(messages):
        if m.get("role") != "tool":
            break
        result = " ".join(_text(m.get("content")).split())
        result = result if len(result) <= 200 else result[:199] + "…"
        results.append(f"- `{names.get(m.get('tool_call_id'), m.get('name') or 'tool')}`: {result}")
    return "Here is what the tools returned:\n\n" + "\n".join(reversed(results))


def _text(content: Any) -> str:
    """The text of a message's content: a string, or a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return "" if content is None else str(content)


def _words(message: dict[str, Any]) -> int:
    calls = " ".join(c.get("function", {}).get("arguments", "") for c in message.get("tool_calls") or ())
    return len(_text(message.get("content")).split()) + len(calls.split())
