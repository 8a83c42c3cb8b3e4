"""``tw.Agent`` and ``AgentThread``: the public face of the runtime.

``thread.ask(prompt)`` saves the prompt and returns its ``Answer`` at once; this process writes
the answer in a background thread as soon as the thread's turn is free (queued behind an answer
being written, by any process). ``agent.serve()`` answers prompts that other processes (e.g. a
view-only notebook) left in the store, each exactly once; ``agent.serve(thread_id=...)`` serves one
thread (what a view with an agent does while it is open). An answer parked for a person's decision
is taken up again, once they decided, by the process that asked (if it still runs) or by any
``serve()`` of the agent, exactly one of them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from .._budget import Budget
from .._errors import AnswerTimeoutError, InvalidArgumentError, ModelError, StoreClosedError, ThreadwidgetError
from .._text import count
from .._usage import Usage
from ..store import Answer, Event, Message, Store, Thread, ToolCall
from ..store._vectors import Embedder
from ._context import Context
from ._handoff import HandoffTool, agent_tool, check_handoffs, reachable, transfer_name
from ._limits import check_prices
from ._model import Model
from ._run import GenerateResult, Run
from ._tools import Tool, tool

__all__ = ["Agent", "AgentThread", "Worker"]

log = logging.getLogger("threadwidget.agent")

STOP_WAIT = 10.0  # seconds a stream that stopped being read waits for its answer to end


class Agent:
    """An agent: a name, a model, instructions and tools, writing into a store.

    ``model=None`` picks ``OpenAIChat`` when ``OPENAI_API_KEY`` is set, else the offline
    ``ScriptedModel`` (announced once). ``max_steps`` bounds model calls per answer (each tool
    round is a step); ``context_messages`` is how many recent messages the model sees;
    ``context=tw.Context(recent=50, search=10, other_threads=False)`` adds messages that search
    finds for each prompt, within a token budget, and records on each answer what its model saw
    (see ``Context``); ``max_tool_retries`` is how many invalid tool calls the model may correct
    before the answer fails. ``embedder=tw.OpenAIEmbedding(...)`` gives the store vectors of every
    final message (made in the background) and makes the context's search hybrid: by words and by
    meaning. ``budget=tw.Budget(per_thread_usd=0.50, ...)`` limits what its answers may use (checked
    before each answer starts and while it streams; a store's ``budget`` applies too).
    ``handoffs=[billing, confirm]`` (agents of the same store) lets the model hand the thread over
    with a ``transfer_to_<name>`` tool: the answer, and the thread, go on with that agent (see
    ``Agent.as_tool`` for asking another agent instead).
    """

    def __init__(
        self,
        name: str,
        model: Model | None = None,
        instructions: str | None = None,
        tools: Iterable[Tool | Any] = (),
        store: Store | None = None,
        *,
        max_steps: int = 8,
        context_messages: int = 50,
        context: Context | None = None,
        max_tool_retries: int = 2,
        embedder: Embedder | None = None,
        budget: Budget | None = None,
        handoffs: Iterable[Agent] = (),
    ):
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgumentError(f"name={name!r} is not valid; expected a non-empty str such as 'support'.")
        for key, value, least in (
            ("max_steps", max_steps, 1), ("context_messages", context_messages, 1),
            ("max_tool_retries", max_tool_retries, 0),
        ):  # fmt: skip
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise InvalidArgumentError(f"{key}={value!r} is not valid; expected an int >= {least}.")
        if context is not None and not isinstance(context, Context):
            raise InvalidArgumentError(
                f"context={context!r} is not valid; expected tw.Context(recent=50, search=10) or None."
            )
        if context is not None and context_messages != 50:
            raise InvalidArgumentError(
                f"context_messages={context_messages!r} and context= were both given; pass one: "
                f"tw.Context(recent={context_messages}, ...) says both."
            )
        if store is not None and not isinstance(store, Store):
            raise InvalidArgumentError(
                f"store={store!r} is not a tw.Store; pass tw.Store('threads.db') or leave it out."
            )
        if model is None:
            from ._default import default_model

            model = default_model()
        if not (hasattr(model, "stream") and hasattr(model, "name")):
            raise InvalidArgumentError(
                f"model={model!r} is not a model; pass tw.OpenAIChat('gpt-4o-mini'), tw.ScriptedModel() or None."
            )
        self.name = name
        self.model = model
        self.instructions = instructions
        self.tools: dict[str, Tool] = {}
        for item in tools:
            t = item if isinstance(item, Tool) else tool(item)
            if t.name in self.tools:
                raise InvalidArgumentError(
                    f"two tools are named {t.name!r}; give one another name with @tw.tool(name=...)."
                )
            self.tools[t.name] = t
        self.store = store if store is not None else Store()
        if embedder is not None:
            self.store.use_embedder(embedder)  # EmbeddingMismatchError: unlike the stored vectors
        self.max_steps = max_steps
        self.context_messages = context_messages if context is None else context.recent
        #: what the model sees of the store beyond the recent messages (None: the recent ones only)
        self.context = context
        self.max_tool_retries = max_tool_retries
        if budget is not None and not isinstance(budget, Budget):
            raise InvalidArgumentError(
                f"budget={budget!r} is not valid; expected tw.Budget(per_thread_usd=0.50, ...) or None."
            )
        if budget is not None:
            check_prices(budget, model.name)
        #: limits on what its answers may use, checked before and while they stream (with the store's)
        self.budget = budget
        #: the agents this one may hand a thread over to (``transfer_to_<name>`` tools); may be appended to
        self.handoffs: list[Agent] = check_handoffs(self, handoffs)

    def __repr__(self) -> str:
        tools = list(self.tools)
        return f"<tw.Agent {self.name!r} model={self.model.name!r} tools={tools} store={str(self.store.path)!r}>"

    def tool_table(self) -> dict[str, Tool]:
        """The tools the model sees: ``tools`` and a ``transfer_to_<name>`` per handoff."""
        table = dict(self.tools)
        for target in self.handoffs:
            table.setdefault(transfer_name(target.name), HandoffTool(target))
        return table

    def as_tool(self, name: str | None = None, *, description: str | None = None) -> Tool:
        """This agent as a tool of another: the call asks it ``input`` in a thread of its own (its
        metadata names the calling thread and call, the call's progress note names the thread) and
        returns its answer's text."""
        return agent_tool(self, name, description)

    def create_thread(
        self, *, title: str | None = None, user_id: str | None = None, metadata: dict[str, Any] | None = None
    ) -> AgentThread:
        thread = self.store.create_thread(title=title, user_id=user_id, agent=self.name, metadata=metadata)
        return AgentThread(self, thread.id)

    def continue_thread(self, thread_id: str) -> AgentThread:
        self.store.get_thread(thread_id)  # NotFoundError names the id
        return AgentThread(self, thread_id)

    def usage(self) -> Usage:
        """Tokens this agent used across all its threads (aborted and failed answers included)."""
        return self.store.usage(agent=self.name)

    def serve(self, *, thread_id: str | None = None, max_concurrent: int = 4) -> Worker:
        """Answer, in background threads, every prompt left for this agent by any process (in one
        thread only, with ``thread_id``): each thread's prompts one at a time, oldest first.
        Returns the running worker; ``worker.stop()`` ends it."""
        if thread_id is not None:
            self.store.get_thread(thread_id)  # NotFoundError names the id
        return Worker(self, thread_id=thread_id, max_concurrent=max_concurrent)


class AgentThread:
    """A thread seen through an agent. ``id`` is the store's thread id."""

    def __init__(self, agent: Agent, thread_id: str):
        self.agent = agent
        self.id = thread_id
        self._runs: set[Run] = set()
        self._lock = threading.Lock()
        self._view: Any = None  # the ChatView shown when this thread is a cell's result (threadwidget/__init__.py)

    @property
    def store(self) -> Store:
        return self.agent.store

    @property
    def thread(self) -> Thread:
        return self.store.get_thread(self.id)

    def __repr__(self) -> str:
        try:
            title, n = self.thread.title, self.store.count_messages(self.id)
        except ThreadwidgetError as exc:  # deleted, or a closed store: say so instead of failing
            return f"<tw.AgentThread {self.id} agent={self.agent.name!r}: {type(exc).__name__}>"
        return f"<tw.AgentThread {self.id} {title!r} agent={self.agent.name!r}, {count(n, 'message')}>"

    def ask(self, prompt: str, *, user_id: str | None = None) -> Answer:
        """Save ``prompt`` and return its ``Answer`` at once; this process writes the answer in a
        background thread, now if the thread's turn is free, else after the answers queued before
        it (a process serving this agent elsewhere may then take it: the ``Answer`` follows it
        whoever writes it). Bad input raises here, not later."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidArgumentError(f"prompt={prompt!r} is not valid; expected a non-empty str.")
        store, team = self.store, reachable(self.agent)
        agent = team.get(self.thread.agent or "")
        first: Message | None
        # the thread's agent, when ours lead to it, is read again in the prompt's transaction: a
        # handoff committed meanwhile (by an answer running elsewhere) addresses the prompt right
        message, first = store.add_prompt(
            self.id, prompt, user_id=user_id, agent=None if agent is not None else self.agent.name,
            claim_model=(agent or self.agent).model.name,
        )  # fmt: skip
        agent = team.get(message.agent or "", self.agent)
        answer = Answer(store, message)
        if first is not None:
            self._start(first, answer, agent=agent)
        else:
            Worker(agent, thread_id=self.id, until=answer, owner=self)
        return answer

    def current_agent(self) -> Agent:
        """The agent that answers here next: the thread's agent in the store when this agent's
        handoffs lead to it (the thread was handed over), else this one."""
        return reachable(self.agent).get(self.thread.agent or "", self.agent)

    def regenerate(self, prompt_id: str, agent: Agent | None = None, *, user_id: str | None = None) -> Answer:
        """Answer the prompt ``prompt_id`` again, by ``agent`` (another agent or model on the same
        store; default: this thread's), in this process: now if the thread's turn is free, else in
        the thread's queue after what waits before it, like ``ask`` (a process serving that agent
        elsewhere may then take it: the ``Answer`` follows it whoever writes it). The earlier
        answers stay, as alternatives (``store.alternatives(prompt_id)``); the new one is shown on
        the thread's path for everyone once it starts, with what followed the prompt. Its model
        sees the prompt's branch up to the prompt."""
        by = self.agent if agent is None else agent
        if not isinstance(by, Agent) or by.store is not self.store:
            raise InvalidArgumentError(
                f"agent={agent!r} is not valid; expected a tw.Agent on the same store as this thread "
                "(tw.Agent(..., store=thread.store)), or None for this thread's agent."
            )
        alternative, first = self.store.request_regeneration(
            prompt_id, agent=by.name, user_id=user_id, claim_model=by.model.name
        )
        answer = Answer(self.store, self.store.get_message(prompt_id), alternative)
        on = self if by is self.agent else AgentThread(by, self.id)
        if first is not None:
            on._start(first, answer)
        else:
            Worker(by, thread_id=self.id, until=answer, owner=on)
        return answer

    def edit(self, prompt_id: str, text: str, *, user_id: str | None = None) -> Answer:
        """A new version of the prompt ``prompt_id`` with ``text``, answered like ``ask`` (now if
        the thread's turn is free, else in order). The thread's path switches to it for everyone;
        the old version and what followed it stay on their branch (``store.versions(prompt_id)``)."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidArgumentError(f"text={text!r} is not valid; expected a non-empty str.")
        store, agent = self.store, self.agent
        message, first = store.add_prompt(
            self.id, text, user_id=user_id, agent=agent.name, claim_model=agent.model.name, version_of=prompt_id
        )
        answer = Answer(store, message)
        if first is not None:
            self._start(first, answer)
        else:
            Worker(agent, thread_id=self.id, until=answer, owner=self)
        return answer

    def _start(
        self, first: Message, answer: Answer | None, done: Any = None, *, resume: bool = False,
        agent: Agent | None = None,
    ) -> threading.Thread:  # fmt: skip
        """Write the answer whose first step is ``first`` in a background thread (``resume``: a
        parked step this process claimed, whose decided tool calls it runs first), as ``agent``
        (default: this thread's)."""
        run = Run(agent or self.agent, first, resume=resume)
        if answer is not None:
            answer._writer = run
        with self._lock:
            self._runs.add(run)

        def write() -> None:
            try:
                for _ in run.steps():
                    pass
            except ThreadwidgetError as exc:  # recorded on the answer's last step, for every view
                log.info("threadwidget: the answer in thread %s failed: %s", self.id, exc)
            except Exception:
                log.exception("threadwidget: answering in thread %s failed", self.id)
            finally:
                with self._lock:
                    self._runs.discard(run)
                if answer is not None:
                    answer.ended()
                if done is not None:
                    done(run)
                if run.parked:  # waits for people: this process resumes it too, if it is first to see the decision
                    self._await_decisions(run.prompt_id)

        worker = threading.Thread(target=write, name="threadwidget-answer", daemon=True)
        worker.start()
        return worker

    def _await_decisions(self, prompt_id: str) -> None:
        """Serve this thread until the parked answer to ``prompt_id`` is taken up again (by this
        process or another)."""
        try:
            answer = Answer(self.store, self.store.get_message(prompt_id))
            Worker(self.current_agent(), thread_id=self.id, until=answer, owner=self)
        except StoreClosedError:
            pass  # the store closed: whoever serves the agent resumes it

    def stream_text(self, prompt: str) -> Iterator[str]:
        """``ask(prompt)`` and yield the answer's text as it streams (every piece is persisted for
        other views). Stopping early (``break``) aborts the answer. Raises ``ModelError`` if the
        model fails and ``ToolError`` if the model keeps sending invalid tool calls or never stops
        calling tools (a ``failed`` message then says why)."""
        answer = self.ask(prompt)
        return self._stream(answer)

    def _stream(self, answer: Answer) -> Iterator[str]:
        try:
            yield from answer
        finally:
            _stop_unread(answer)
        _raise_failure(answer)

    def generate_text(self, prompt: str) -> GenerateResult:
        """``ask(prompt)`` and wait: returns ``.text``, ``.status``, ``.usage``, ``.message_id``."""
        answer = self.ask(prompt).wait()
        _raise_failure(answer)
        return _result(answer)

    async def astream_text(self, prompt: str) -> AsyncIterator[str]:
        """The async twin of ``stream_text``."""
        answer = self.ask(prompt)
        try:
            async for text in answer:
                yield text
        finally:
            await asyncio.to_thread(_stop_unread, answer)
        _raise_failure(answer)

    async def agenerate_text(self, prompt: str) -> GenerateResult:
        """The async twin of ``generate_text``."""
        answer = self.ask(prompt)
        await answer.wait_async()
        _raise_failure(answer)
        return _result(answer)

    def send(self, prompt: str) -> str:
        """Leave ``prompt`` for a process running ``agent.serve()`` (no answer here). Returns its id."""
        return self.store.ask(self.id, prompt, agent=self.agent.name).prompt_id

    def abort(self, *, cancel_queued: bool = False) -> list[str]:
        """Stop the answer being written in this thread, by any process: it ends ``aborted`` with
        its partial text. Queued prompts are answered next, unless ``cancel_queued=True``.
        Returns the ids of the messages asked to stop or cancelled."""
        asked = self.store.request_abort(self.id, cancel_queued=cancel_queued)  # the queue first, atomically
        self.abort_local("aborted by request")  # then this process's writers at once, without waiting for the feed
        return asked

    def abort_local(self, reason: str) -> None:
        with self._lock:
            runs = list(self._runs)
        for run in runs:
            run.abort(reason)

    def messages(self, limit: int = 50) -> list[Message]:
        return self.store.list_messages(self.id, limit=limit)


def _stop_unread(answer: Answer) -> None:
    """The caller stopped reading an answer that goes on: abort it, and return once it has ended."""
    if answer.done:
        return
    answer.abort("the caller stopped reading the stream")
    try:
        answer.wait(timeout=STOP_WAIT)
    except AnswerTimeoutError:
        log.warning("threadwidget: the answer to %s did not stop within %s s", answer.prompt_id, STOP_WAIT)


def _raise_failure(answer: Answer) -> None:
    """What ``stream_text``/``generate_text`` raise for a failed answer: the runtime's exception
    when this process wrote it, else a ``ModelError`` with the recorded reason."""
    if answer.failure is not None:
        raise answer.failure
    if answer.status == "failed":
        raise ModelError(answer.error or "the answer failed")


def _result(answer: Answer) -> GenerateResult:
    steps = answer.messages
    last = steps[-1] if steps else None
    return GenerateResult(
        text=last.text if last is not None else "",
        status=answer.status,
        usage=answer.usage,
        message_id=last.id if last is not None else None,
        message_ids=[m.id for m in steps],
        error=answer.error,
    )


class Worker:
    """Background answering of prompts for one agent (``agent.serve()``): in every thread, or in
    one (``thread_id``). With ``until`` (an ``Answer`` this process asked for), the worker stops by
    itself once that prompt is taken (by it or by another process) and its answers are written."""

    def __init__(
        self,
        agent: Agent,
        *,
        thread_id: str | None = None,
        max_concurrent: int = 4,
        until: Answer | None = None,
        owner: AgentThread | None = None,
    ):
        if not isinstance(max_concurrent, int) or max_concurrent < 1:
            raise InvalidArgumentError(f"max_concurrent={max_concurrent!r} is not valid; expected an int >= 1.")
        self.agent = agent
        self.thread_id = thread_id
        self.answered = 0
        self._until = until
        self._owner = owner
        self._threads_by_id: dict[str, AgentThread] = {}  # threads with answers being written here
        if owner is not None:
            self._threads_by_id[owner.id] = owner
        self._slots = threading.Semaphore(max_concurrent)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._writers: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._sub = agent.store.subscribe(self._on_event, thread_id=thread_id)
        scope = f"-{thread_id}" if thread_id else ""
        self._thread = threading.Thread(target=self._loop, name=f"threadwidget-serve-{agent.name}{scope}", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        state = "stopped" if self._stop.is_set() else "serving"
        scope = f" thread {self.thread_id}" if self.thread_id else ""
        return f"<tw.Agent.serve {self.agent.name!r}{scope} {state}, {self.answered} answered>"

    def _on_event(self, event: Event) -> None:
        row = event.row
        if (
            event.kind == "run"  # a thread's turn came free, or was parked
            or (event.kind == "message" and isinstance(row, Message) and row.role == "user")  # a prompt or regeneration
            or (event.kind == "tool_call" and isinstance(row, ToolCall) and row.status in ("approved", "denied"))
        ):
            self._wake.set()  # a prompt waits, a thread's turn came free, or people decided a parked call

    def _loop(self) -> None:
        agent = self.agent
        # serving one thread follows it through handoffs; serving an agent everywhere does not
        agents = list(reachable(agent).values()) if self.thread_id is not None else [agent]
        while not self._stop.is_set():
            self._wake.clear()
            try:
                while not self._stop.is_set() and self._slots.acquire(timeout=0.5):
                    first, writer_agent, resume = self._claim(agents)
                    if first is None:
                        self._slots.release()
                        break
                    prompt_id = first.reply_to
                    mine = self._until is not None and (prompt_id, first.alternative) == (
                        self._until.prompt_id, self._until.alternative)  # fmt: skip
                    until = self._until if mine else None
                    with self._lock:  # registered with its thread before _answered may look
                        if first.thread_id not in self._threads_by_id:
                            self._threads_by_id[first.thread_id] = AgentThread(agent, first.thread_id)
                        on_thread = self._threads_by_id[first.thread_id]
                        writer = on_thread._start(first, until, self._answered, resume=resume, agent=writer_agent)
                        self._writers = [t for t in self._writers if t.is_alive()] + [writer]
                if self._until is not None and self._until.status not in ("queued", "waiting"):
                    self._finish()
                    return
            except StoreClosedError:
                self._finish()  # nothing more to serve from a closed store
                return
            except Exception:
                log.exception("threadwidget: serve(%s) could not claim work; retrying", agent.name)
            self._wake.wait(1.0)  # also re-check now and then: a missed wake-up costs at most a second

    def _claim(self, agents: list[Agent]) -> tuple[Message | None, Agent, bool]:
        """The first step of an answer to write, and as whom: a parked answer people decided goes
        first (it holds its thread's turn), then the oldest waiting prompt."""
        store = self.agent.store
        for a in agents:
            first = store.claim_parked(a.name, thread_id=self.thread_id)
            if first is not None:
                return first, a, True
        for a in agents:
            claimed = store.claim_pending(a.name, thread_id=self.thread_id, model=a.model.name)
            if claimed is not None:
                return claimed[1], a, False
        return None, self.agent, False

    def _answered(self, run: Run) -> None:
        with self._lock:
            if run.result.status != "failed" and not run.parked:
                self.answered += 1
            done = self._threads_by_id.get(run.thread_id)
            if done is not None and done is not self._owner and not done._runs:
                del self._threads_by_id[run.thread_id]  # a long serve() does not pile them up
        self._slots.release()
        self._wake.set()

    def _finish(self) -> None:
        """``until`` mode: the prompt is taken; stop listening, let the answers finish."""
        self._stop.set()
        self._sub.close()

    def stop(self, timeout: float = 10.0, *, abort: bool = True) -> None:
        """Stop taking prompts; abort the answers in progress (they end ``aborted``), or with
        ``abort=False`` let them finish; wait up to ``timeout`` seconds for them."""
        self._stop.set()
        self._wake.set()
        self._sub.close()
        with self._lock:
            threads = list(self._threads_by_id.values())
        for agent_thread in threads if abort else ():
            agent_thread.abort_local("the serving process stopped")
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        with self._lock:
            writers = list(self._writers)
        for t in writers:
            t.join(timeout)

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
