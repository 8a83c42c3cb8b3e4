"""``tw.replay``: a stored thread's prompts asked again, in order, of an agent, in a new thread.

The new thread lives in the source's store, marked ``metadata["replay_of"]``. With
``tools="recorded"`` every tool of the agent (and of the agents its handoffs lead to) is replaced,
for the replay only, by a stand-in that returns what the source thread recorded for a call of the
same tool with the same arguments (compared after validation, as JSON), without running the
function; a call nothing recorded is *unmatched*: reported, and it fails (the model reads an error
that says so) or, with ``unmatched="live"``, runs the real tool. ``tools="live"`` runs the tools.
Handoff tools (``transfer_to_<name>``) always run: they only change who answers.

A ``ReplayResult`` holds, per prompt, the old and the new answer: text, tool calls (name,
arguments, result), usage, how long the answer took and who wrote it.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic_core import to_jsonable_python

from .._errors import AnswerTimeoutError, InvalidArgumentError, ToolArgumentsError, ToolError
from .._text import count, one_line
from .._usage import Usage
from ..store import Message, Store, ToolCall
from ._tools import Tool, ToolContext

if TYPE_CHECKING:
    from ._agent import Agent

__all__ = ["ReplayResult", "ReplayTurn", "ToolCallRecord", "replay"]

ToolsMode = Literal["recorded", "live"]
UnmatchedMode = Literal["fail", "live"]


@dataclass(frozen=True)
class ToolCallRecord:
    """One tool call of an answer: ``name``, ``arguments`` (parsed JSON; the raw text when it is
    not JSON), ``status``, ``result`` (JSON text) or ``error``; ``step``: the answer's step that
    made it (calls of one step run in parallel)."""

    name: str
    arguments: Any
    status: str = "success"
    result: str | None = None
    error: str | None = None
    step: int = 0

    @classmethod
    def from_row(cls, row: ToolCall, step: int = 0) -> ToolCallRecord:
        try:
            arguments = json.loads(row.arguments or "{}")
        except ValueError:
            arguments = row.arguments
        return cls(row.name, arguments, row.status, row.result, row.error, step)

    @property
    def signature(self) -> str:
        """``name {"arg": ...}``: what is compared between the old and the new answer."""
        return f"{self.name} {json.dumps(self.arguments, sort_keys=True, ensure_ascii=False)}"


@dataclass(frozen=True)
class UnmatchedCall:
    """A tool call of the replay that no recorded call matched (``ran_live``: it ran the real tool)."""

    turn: int
    name: str
    arguments: Any
    ran_live: bool

    def __str__(self) -> str:
        how = "ran the real tool" if self.ran_live else "failed"
        args = json.dumps(self.arguments, sort_keys=True, ensure_ascii=False)
        return f"prompt {self.turn + 1}: {self.name} {args} matched no recorded call ({how})"


@dataclass
class ReplayTurn:
    """One prompt and its two answers (``old_*``: the source thread's; ``None`` when the prompts
    came from a file, not a thread)."""

    index: int
    prompt: str
    new_text: str
    new_status: str
    new_error: str | None
    new_calls: list[ToolCallRecord]
    new_usage: Usage
    new_seconds: float
    new_agents: list[str]
    old_text: str | None = None
    old_calls: list[ToolCallRecord] | None = None
    old_usage: Usage | None = None
    old_seconds: float | None = None
    old_agents: list[str] | None = None

    @property
    def calls_match(self) -> bool:
        """The same tool calls (names and arguments) as the old answer, step by step; the parallel
        calls of a step in any order (True without an old answer)."""
        if self.old_calls is None:
            return True
        return _per_step(self.old_calls) == _per_step(self.new_calls)

    @property
    def calls_reordered(self) -> bool:
        """The same calls as the old answer, but parallel calls of a step came in another order."""
        if self.old_calls is None or not self.calls_match:
            return False
        return [c.signature for c in self.old_calls] != [c.signature for c in self.new_calls]


def _per_step(calls: Sequence[ToolCallRecord]) -> list[list[str]]:
    """The calls' signatures, a sorted list per step (a multiset: order within a step is free)."""
    steps: dict[int, list[str]] = {}
    for c in calls:
        steps.setdefault(c.step, []).append(c.signature)
    return [sorted(steps[k]) for k in sorted(steps)]


@dataclass
class ReplayResult:
    """What ``tw.replay`` did: ``thread_id`` (the new thread), ``source_thread_id``, ``agent``,
    ``tools``, one ``ReplayTurn`` per prompt, and the ``unmatched`` tool calls."""

    thread_id: str
    source_thread_id: str | None
    agent: str
    tools: str
    turns: list[ReplayTurn] = field(default_factory=list)
    unmatched: list[UnmatchedCall] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every answer succeeded, with the same tool calls as before, and no call went unmatched."""
        return not self.unmatched and all(t.new_status == "success" and t.calls_match for t in self.turns)

    @property
    def usage(self) -> Usage:
        return sum((t.new_usage for t in self.turns), Usage())

    @property
    def seconds(self) -> float:
        return sum(t.new_seconds for t in self.turns)

    def __repr__(self) -> str:
        state = "same tool calls" if self.ok else "differs"
        return (
            f"<tw.ReplayResult {self.source_thread_id or 'prompts'} -> {self.thread_id} agent={self.agent!r} "
            f"tools={self.tools!r}: {count(len(self.turns), 'prompt')}, {state}>"
        )

    def __str__(self) -> str:
        lines = [repr(self)]
        for t in self.turns:
            lines.append(f"{t.index + 1}. {one_line(t.prompt, 80)}")
            if t.old_text is not None:
                lines.append(f"   old: {one_line(t.old_text, 100)}")
            lines.append(f"   new: {one_line(t.new_text, 100)}" + ("" if t.new_status == "success" else
                                                                  f" [{t.new_status}: {t.new_error}]"))  # fmt: skip
            old = ", ".join(c.signature for c in t.old_calls or ()) or "none"
            new = ", ".join(c.signature for c in t.new_calls) or "none"
            if not t.calls_match:
                lines.append(f"   tool calls were: {one_line(old, 100)}; now: {one_line(new, 100)}")
            elif t.calls_reordered:
                lines.append(f"   same tool calls, parallel ones in another order: {one_line(new, 100)}")
        lines += [f"   {u}" for u in self.unmatched]
        return "\n".join(lines)


def _canonical(tool: Tool, arguments: Mapping[str, Any]) -> str:
    return json.dumps(to_jsonable_python(dict(arguments), fallback=str), sort_keys=True, ensure_ascii=False)


class _Book:
    """The source thread's tool calls by (tool, arguments): a call gets one recorded with the same
    key whatever its place in its step (a multiset match), each used in order (the last reused).
    Parallel calls of one step with the same key take theirs in the order the model made them,
    not the order their threads happen to run in, so a replay is deterministic."""

    def __init__(self, store: Store, calls: Sequence[ToolCall]):
        self._store = store
        self._calls = list(calls)
        self._keys: dict[tuple[str, str], deque[ToolCall]] = {}
        self._last: dict[tuple[str, str], ToolCall] = {}
        self._taken: dict[tuple[str, str, str], dict[str, ToolCall | None]] = {}  # (step, key) → call id → its
        self._lock = threading.Lock()
        self.unmatched: list[UnmatchedCall] = []
        self.turn = 0

    def index(self, tool: Tool) -> None:
        for call in self._calls:
            if call.name != tool.name or call.status not in ("success", "error", "denied"):
                continue
            try:
                key = (tool.name, _canonical(tool, tool.validate(call.arguments or "{}")))
            except ToolArgumentsError:
                continue  # the model's invalid call was never run; nothing to replay
            self._keys.setdefault(key, deque()).append(call)

    def _next(self, key: tuple[str, str]) -> ToolCall | None:
        queue = self._keys.get(key)
        if queue:
            self._last[key] = queue.popleft()
        return self._last.get(key)

    def take(self, tool: Tool, arguments: Mapping[str, Any], ctx: ToolContext | None = None) -> ToolCall | None:
        key = (tool.name, _canonical(tool, arguments))
        with self._lock:
            if ctx is None or not ctx.message_id or not ctx.call_id:
                return self._next(key)
            step = (ctx.message_id, *key)
            if step not in self._taken:  # the first of the step's calls with this key to run
                same = []
                for c in self._store.list_tool_calls(ctx.thread_id, message_id=ctx.message_id):
                    try:
                        if c.name == tool.name and _canonical(tool, tool.validate(c.arguments or "{}")) == key[1]:
                            same.append(c.call_id)
                    except ToolArgumentsError:
                        continue
                self._taken[step] = {cid: self._next(key) for cid in same}  # in the model's order
            taken = self._taken[step]
            return taken[ctx.call_id] if ctx.call_id in taken else self._next(key)


class _RecordedTool(Tool):
    """A tool whose calls get the recorded result (its function runs only for an unmatched call
    with ``unmatched="live"``)."""

    def __init__(self, original: Tool, book: _Book, source: str, live: bool):
        self.__dict__.update(original.__dict__)
        self.needs_approval = False  # a recorded call was decided when it was recorded
        self._original, self._book, self._source, self._live = original, book, source, live
        book.index(original)

    def invoke(self, arguments: Mapping[str, Any], ctx: ToolContext | None = None) -> Any:
        recorded = self._book.take(self, arguments, ctx)
        if recorded is None:
            self._book.unmatched.append(
                UnmatchedCall(self._book.turn, self.name, json.loads(_canonical(self, arguments)), self._live)
            )
            if self._live:
                return self._original.invoke(arguments, ctx)
            raise ToolError(
                f"replay: no recorded call of {self.name} with these arguments in thread {self._source}, and "
                "unmatched calls are not run (replay with unmatched='live' to run them)"
            )
        if recorded.status == "success":
            return recorded.result if recorded.result is not None else "null"  # JSON text, stored as it was
        raise ToolError(recorded.error or f"the recorded call ended {recorded.status}")


def all_messages(store: Store, thread_id: str) -> list[Message]:
    """Every message of a thread, in thread order."""
    out: list[Message] = []
    before: str | None = None
    while True:
        page = store.list_messages(thread_id, limit=500, before=before)
        out[:0] = page
        if len(page) < 500:
            return out
        before = page[0].id


def _seconds(steps: Sequence[Message]) -> float:
    return max(0.0, steps[-1].updated_at - steps[0].created_at) if steps else 0.0


def _calls(store: Store, thread_id: str, steps: Sequence[Message]) -> list[ToolCallRecord]:
    return [
        ToolCallRecord.from_row(c, m.step) for m in steps for c in store.list_tool_calls(thread_id, message_id=m.id)
    ]


def clone_agents(agent: Agent, store: Store, wrap: Any = None) -> Agent:
    """``agent`` and the agents its handoffs lead to, again, writing into ``store``, with each
    tool passed through ``wrap`` (when given)."""
    from ._agent import Agent
    from ._handoff import reachable

    originals = reachable(agent)
    clones: dict[str, Agent] = {}
    for name, a in originals.items():
        tools = [wrap(t) if wrap is not None else t for t in a.tools.values()]
        kwargs: dict[str, Any] = {"context": a.context} if a.context is not None else {
            "context_messages": a.context_messages}  # fmt: skip
        clones[name] = Agent(name, model=a.model, instructions=a.instructions, tools=tools, store=store,
                             max_steps=a.max_steps, max_tool_retries=a.max_tool_retries, **kwargs)  # fmt: skip
    for name, a in originals.items():
        clones[name].handoffs = [clones[h.name] for h in a.handoffs]
    return clones[agent.name]


def run_prompts(
    agent: Agent,
    prompts: Sequence[Message | str],
    *,
    title: str,
    metadata: dict[str, Any],
    user_id: str | None,
    book: _Book | None,
    timeout: float,
) -> tuple[str, list[ReplayTurn]]:
    """Ask ``prompts`` of ``agent`` in a new thread, one after another; the new side of each turn."""
    thread = agent.create_thread(title=title, user_id=user_id, metadata=metadata)
    store = agent.store
    turns: list[ReplayTurn] = []
    for i, prompt in enumerate(prompts):
        text = prompt if isinstance(prompt, str) else prompt.text
        if book is not None:
            book.turn = i
        answer = thread.ask(text, user_id=None if isinstance(prompt, str) else prompt.user_id)
        try:
            answer.wait(timeout)
        except AnswerTimeoutError:
            answer.abort("the replay's timeout passed")
            answer.wait(timeout)
        steps = answer.messages
        turns.append(
            ReplayTurn(
                index=i,
                prompt=text,
                new_text=steps[-1].text if steps else "",
                new_status=answer.status,
                new_error=answer.error,
                new_calls=_calls(store, thread.id, steps),
                new_usage=answer.usage,
                new_seconds=_seconds(steps),
                new_agents=[m.agent or "" for m in steps],
            )
        )
    return thread.id, turns


def replay(
    thread_id: str,
    agent: Agent,
    *,
    tools: ToolsMode = "recorded",
    unmatched: UnmatchedMode = "fail",
    store: Store | None = None,
    timeout: float = 300.0,
) -> ReplayResult:
    """Ask the prompts of thread ``thread_id`` again, in order, of ``agent`` in a new thread of the
    same store (``store``, default the agent's), marked ``metadata["replay_of"]``; wait for each
    answer (at most ``timeout`` seconds). ``tools="recorded"``: calls get the results the thread
    recorded, no tool runs; a call nothing recorded fails (``unmatched="live"``: runs the tool)
    and is listed in ``result.unmatched``. ``tools="live"``: the tools run."""
    from ._agent import Agent

    if not isinstance(agent, Agent):
        raise InvalidArgumentError(f"agent={agent!r} is not a tw.Agent; pass the agent to replay the thread with.")
    if tools not in ("recorded", "live"):
        raise InvalidArgumentError(f"tools={tools!r} is not valid; expected 'recorded' or 'live'.")
    if unmatched not in ("fail", "live"):
        raise InvalidArgumentError(f"unmatched={unmatched!r} is not valid; expected 'fail' or 'live'.")
    source_store = store if store is not None else agent.store
    if not isinstance(source_store, Store):
        raise InvalidArgumentError(f"store={store!r} is not a tw.Store; pass tw.Store('threads.db') or leave it out.")
    source = source_store.get_thread(thread_id)  # NotFoundError names the id
    messages = all_messages(source_store, thread_id)
    prompts = [m for m in messages if m.role == "user" and m.status == "success"]
    if not prompts:
        raise InvalidArgumentError(
            f"thread {thread_id!r} has no prompts to replay; pass a thread with questions asked."
        )
    book: _Book | None = None
    if tools == "recorded":
        recorded = _Book(source_store, source_store.list_tool_calls(thread_id))
        book = recorded

        def wrap(t: Tool) -> Tool:
            return _RecordedTool(t, recorded, thread_id, unmatched == "live")

        runner = clone_agents(agent, source_store, wrap)
    else:
        runner = clone_agents(agent, source_store)
    new_id, turns = run_prompts(
        runner, prompts, title=f"Replay of {source.title or thread_id}", user_id=source.user_id,
        metadata={"replay_of": thread_id, "replay_tools": tools}, book=book, timeout=timeout,
    )  # fmt: skip
    for turn, prompt in zip(turns, prompts, strict=True):
        steps = source_store.answer_steps(prompt.id)
        turn.old_text = steps[-1].text if steps else ""
        turn.old_calls = _calls(source_store, thread_id, steps)
        turn.old_usage = sum((m.usage or Usage() for m in steps), Usage())
        turn.old_seconds = _seconds(steps)
        turn.old_agents = [m.agent or "" for m in steps]
    result = ReplayResult(new_id, thread_id, agent.name, tools, turns)
    if book is not None:
        result.unmatched = list(book.unmatched)
    return result
