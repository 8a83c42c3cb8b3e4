"""What the model sees: the instructions and the thread's recent messages in OpenAI chat shapes;
with a ``Context``, also messages that search finds for the prompt, within a token budget.

An assistant message that called tools becomes ``{"role": "assistant", "tool_calls": [...]}``
followed by one ``{"role": "tool", "tool_call_id": ..., "content": ...}`` per call, built from the
``tool_calls`` rows (the result, or the error the model must correct).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .._errors import InvalidArgumentError
from ..store import Message, Store, ToolCall
from ..store._query import words

__all__ = ["Context", "build_context", "build_messages", "estimate_tokens"]

#: words too common to find anything by (a prompt's words are searched for as ``a OR b OR ...``)
_COMMON_WORDS = """the and for are but not you your with this that what when where which who why how was were has
have had can could would should will did does about from into there their them they then than its our out all any
some just please tell give show"""
_COMMON = frozenset(_COMMON_WORDS.split())
#: at most this many of a prompt's words are searched for
_QUERY_WORDS = 16


@dataclass(frozen=True)
class Context:
    """What an agent's model sees of the store for each answer.

    ``recent``: the thread's last messages (through the prompt). ``search``: up to that many more
    messages that text search finds for the prompt's words (0: none), from earlier in the thread,
    or with ``other_threads=True`` also from the other threads of the thread's user (never another
    user's; a thread without a ``user_id`` searches only itself). Everything fits in ``max_tokens``
    (estimated, ~4 characters a token): the prompt and its answer so far first, then the hits
    (best first), then the recent messages (newest first). The thread's messages go to the model in
    thread order, the other threads' hits in one system message before them. What went in is
    recorded on each step of the answer: ``message.metadata["context"]`` holds the ids
    (``recent``, ``search``), the ``query``, the search's ``mode`` and the estimated ``tokens``.
    When the store has an embedder (``tw.Agent(..., embedder=...)``), the search is hybrid: the
    prompt's words and its meaning (``store.search(mode="hybrid")``).
    """

    recent: int = 50
    search: int = 10
    other_threads: bool = False
    max_tokens: int = 16_000

    def __post_init__(self) -> None:
        for name, least in (("recent", 1), ("search", 0), ("max_tokens", 100)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise InvalidArgumentError(
                    f"Context({name}={value!r}) is not valid; expected an int >= {least}, e.g. "
                    "tw.Context(recent=50, search=10, max_tokens=16_000)."
                )
        if not isinstance(self.other_threads, bool):
            raise InvalidArgumentError(
                f"Context(other_threads={self.other_threads!r}) is not valid; expected True (also the user's "
                "other threads) or False (this thread only)."
            )


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
    """The last ``window`` messages of the path through ``through`` (a prompt, or the answer's step
    being written: its branch only, later prompts not shown to the model), without ``exclude``,
    in chat shapes after the instructions."""
    history = [m for m in store.list_messages(thread_id, limit=window, through=through) if m.id not in exclude]
    calls = {m.id: store.list_tool_calls(thread_id, message_id=m.id) for m in history if m.role == "assistant"}
    out: list[dict[str, Any]] = [{"role": "system", "content": instructions}] if instructions else []
    for m in history:
        out.extend(_shape(m, calls.get(m.id, [])))
    return out


def context_query(prompt: str) -> str | None:
    """The search for a prompt: its distinctive words, any of them (``a OR b``), or None."""
    chosen: list[str] = []
    for w in words(prompt):
        if len(w) > 2 and w not in _COMMON and w not in chosen:
            chosen.append(w)
    return " OR ".join(chosen[:_QUERY_WORDS]) or None


def build_context(
    store: Store,
    thread_id: str,
    *,
    instructions: str | None,
    context: Context,
    through: str,
    exclude: set[str] = frozenset(),  # type: ignore[assignment]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The chat messages for the answer through ``through`` (a prompt, or the answer's step being
    written; see ``Context``), and the record of what went in (for the answer's metadata). Search
    finds messages of the thread on the answer's branch only."""
    prompt = store.get_message(through)
    if prompt.reply_to is not None:
        prompt = store.get_message(prompt.reply_to)
    recent = [m for m in store.list_messages(thread_id, limit=context.recent, through=through) if m.id not in exclude]
    seen = {m.id for m in recent} | set(exclude)
    query = context_query(prompt.text) if context.search else None
    mode = "hybrid" if store.embedder is not None else "text"
    hits: list[Message] = []
    if query is not None:
        # the ids on the answer's branch, when it is not the current path (rare: read them all)
        branch = None
        if not prompt.on_path:
            branch = {x.id for x in store.list_messages(thread_id, through=prompt.id, limit=1 << 62)}
        thread = store.get_thread(thread_id)
        wide = context.other_threads and thread.user_id is not None
        found = store.search(query, user_id=thread.user_id if wide else None, thread_id=None if wide else thread_id,
                             limit=context.search + len(recent) + 1, mode=mode)  # fmt: skip
        for hit in found:
            m = hit.message
            if m.id in seen or not m.is_final or m.role not in ("user", "assistant"):
                continue
            if m.thread_id == thread_id and (m.turn >= prompt.turn or not _on_branch(m, branch)):
                continue  # the prompt's own answer is in `recent`; later turns and other branches are not shown
            hits.append(m)
            if len(hits) == context.search:
                break
    calls = {
        m.id: store.list_tool_calls(m.thread_id, message_id=m.id) for m in [*recent, *hits] if m.role == "assistant"
    }
    shaped = {m.id: _shape(m, calls.get(m.id, [])) for m in [*recent, *hits]}
    budget = context.max_tokens - (len(instructions or "") // 4)
    first = [m for m in recent if m.turn == prompt.turn]  # the prompt and its answer's steps so far
    rest = [m for m in reversed(recent) if m.turn != prompt.turn]
    chosen: set[str] = set()
    for i, m in enumerate([*first, *hits, *rest]):
        cost = estimate_tokens(shaped[m.id])
        if cost > budget and i >= len(first):
            continue  # a message that does not fit; a shorter one may
        chosen.add(m.id)
        budget -= cost
    out: list[dict[str, Any]] = [{"role": "system", "content": instructions}] if instructions else []
    elsewhere = [m for m in hits if m.id in chosen and m.thread_id != thread_id]
    if elsewhere:
        lines = ["Messages from the user's other threads that may be relevant (found by search):"]
        lines += [f"- [thread {m.thread_id}, {m.role}] {m.text}" for m in elsewhere]
        out.append({"role": "system", "content": "\n".join(lines)})
    here = sorted((m for m in [*recent, *hits] if m.id in chosen and m.thread_id == thread_id),
                  key=lambda m: (m.turn, m.position))  # fmt: skip
    for m in here:
        out.extend(shaped[m.id])
    record = {
        "recent": [m.id for m in recent if m.id in chosen],
        "search": [m.id for m in hits if m.id in chosen],
        "query": query,
        **({"mode": mode} if query is not None else {}),
        "tokens": estimate_tokens(out),
    }
    return out, record


def _on_branch(m: Message, branch: set[str] | None) -> bool:
    """Whether ``m`` (of the prompt's thread, before its turn) is on the prompt's branch
    (``branch``: its ids; ``None``: the branch is the current path)."""
    return m.on_path if branch is None else m.id in branch


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
