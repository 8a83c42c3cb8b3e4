"""``tw.Agent`` and ``AgentThread``: the public face of the runtime.

``thread.stream_text(prompt)`` saves the prompt, then runs the answer in the calling thread,
yielding text as it arrives while every delta is persisted. ``agent.serve()`` answers prompts that
other processes (e.g. a view-only notebook) left ``pending`` in the store, each exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from .._errors import InvalidArgumentError
from .._usage import Usage
from ..store import Event, Store, Thread
from ._model import Model
from ._run import GenerateResult, Run
from ._tools import Tool, tool

__all__ = ["Agent", "AgentThread", "Worker"]

log = logging.getLogger("threadwidget.agent")


class Agent:
    """An agent: a name, a model, instructions and tools, writing into a store.

    ``model=None`` picks ``OpenAIChat`` when ``OPENAI_API_KEY`` is set, else the offline
    ``ScriptedModel`` (announced once). ``max_steps`` bounds model calls per answer (each tool
    round is a step); ``context_messages`` is how many recent messages the model sees;
    ``max_tool_retries`` is how many invalid tool calls the model may correct before the answer
    fails.
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
        max_tool_retries: int = 2,
    ):
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgumentError(f"name={name!r} is not valid; expected a non-empty str such as 'support'.")
        for key, value in (("max_steps", max_steps), ("context_messages", context_messages)):
            if not isinstance(value, int) or value < 1:
                raise InvalidArgumentError(f"{key}={value!r} is not valid; expected an int >= 1.")
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
        self.max_steps = max_steps
        self.context_messages = context_messages
        self.max_tool_retries = max_tool_retries

    def __repr__(self) -> str:
        tools = list(self.tools)
        return f"<tw.Agent {self.name!r} model={self.model.name!r} tools={tools} store={str(self.store.path)!r}>"

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

    def serve(self, *, max_concurrent: int = 4) -> Worker:
        """Answer, in background threads, every prompt left ``pending`` for this agent by any process.
        Returns the running worker; ``worker.stop()`` ends it."""
        return Worker(self, max_concurrent=max_concurrent)


class AgentThread:
    """A thread seen through an agent. ``id`` is the store's thread id."""

    def __init__(self, agent: Agent, thread_id: str):
        self.agent = agent
        self.id = thread_id
        self._runs: list[Run] = []

    @property
    def store(self) -> Store:
        return self.agent.store

    @property
    def thread(self) -> Thread:
        return self.store.get_thread(self.id)

    def __repr__(self) -> str:
        return f"<AgentThread {self.id} agent={self.agent.name!r} messages={self.store.count_messages(self.id)}>"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """In a notebook, a thread shows as its live ``ChatView``."""
        from ..widgets import ChatView

        return ChatView(self)._repr_mimebundle_(**kwargs)

    def _check_prompt(self, prompt: str) -> None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidArgumentError(f"prompt={prompt!r} is not valid; expected a non-empty str.")

    def stream_text(self, prompt: str) -> Iterator[str]:
        """Save ``prompt`` and stream the answer: yields text as the model produces it, while every
        piece is persisted for other views. Ends early and quietly when aborted. Raises
        ``ModelError`` if the model fails (the message is then ``failed`` with its partial text) and
        ``ToolError`` if the model keeps sending invalid tool calls or never stops calling tools
        (a ``failed`` message then says why)."""
        self._check_prompt(prompt)
        self.store.add_message(self.id, role="user", text=prompt, agent=self.agent.name)
        run = Run(self.agent, self.id)
        yield from self._drive(run)

    def _drive(self, run: Run) -> Iterator[str]:
        self._runs.append(run)
        try:
            yield from run.steps()
        finally:
            self._runs.remove(run)
        if run.failure is not None:
            raise run.failure

    def generate_text(self, prompt: str) -> GenerateResult:
        """Like ``stream_text`` but waits: returns ``.text``, ``.status``, ``.usage``, ``.message_id``."""
        self._check_prompt(prompt)
        self.store.add_message(self.id, role="user", text=prompt, agent=self.agent.name)
        run = Run(self.agent, self.id)
        for _ in self._drive(run):
            pass
        return run.result

    async def astream_text(self, prompt: str) -> AsyncIterator[str]:
        """The async twin of ``stream_text``: the run happens in a worker thread."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def produce() -> None:
            try:
                for text in self.stream_text(prompt):
                    loop.call_soon_threadsafe(queue.put_nowait, ("text", text))
                loop.call_soon_threadsafe(queue.put_nowait, ("end", None))
            except BaseException as exc:
                loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))

        worker = threading.Thread(target=produce, name="threadwidget-astream", daemon=True)
        worker.start()
        try:
            while True:
                kind, value = await queue.get()
                if kind == "text":
                    yield value
                elif kind == "error":
                    raise value
                else:
                    return
        finally:
            if worker.is_alive():
                self.abort_local("the caller stopped reading the stream")

    async def agenerate_text(self, prompt: str) -> GenerateResult:
        """The async twin of ``generate_text``."""
        return await asyncio.to_thread(self.generate_text, prompt)

    def send(self, prompt: str) -> str:
        """Leave ``prompt`` for a process running ``agent.serve()`` (no answer here). Returns its id."""
        self._check_prompt(prompt)
        return self.store.add_message(self.id, role="user", text=prompt, status="pending", agent=self.agent.name).id

    def abort(self) -> list[str]:
        """Stop every answer being written in this thread, by any process. The writer ends the
        message ``aborted`` with its partial text. Returns the ids of the messages asked to stop."""
        self.abort_local("aborted")
        return self.store.request_abort(self.id)

    def abort_local(self, reason: str) -> None:
        for run in list(self._runs):
            run.abort(reason)

    def messages(self, limit: int = 50) -> list[Any]:
        return self.store.list_messages(self.id, limit=limit)


class Worker:
    """Background answering of pending prompts for one agent (``agent.serve()``)."""

    def __init__(self, agent: Agent, *, max_concurrent: int = 4):
        if max_concurrent < 1:
            raise InvalidArgumentError(f"max_concurrent={max_concurrent!r} is not valid; expected an int >= 1.")
        self.agent = agent
        self.answered = 0
        self._slots = threading.Semaphore(max_concurrent)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._runs: set[Run] = set()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._sub = agent.store.subscribe(self._on_event)
        self._thread = threading.Thread(target=self._loop, name=f"threadwidget-serve-{agent.name}", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        state = "stopped" if self._stop.is_set() else "serving"
        return f"<tw.Agent.serve {self.agent.name!r} {state}, {self.answered} answered>"

    def _on_event(self, event: Event) -> None:
        row = event.row
        if event.kind == "message" and getattr(row, "status", None) == "pending" and getattr(row, "role", "") == "user":
            self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                while not self._stop.is_set() and self._slots.acquire(timeout=0.5):
                    claimed = self.agent.store.claim_pending(self.agent.name, model=self.agent.model.name)
                    if claimed is None:
                        self._slots.release()
                        break
                    answer = threading.Thread(target=self._answer, args=(claimed[1],), daemon=True)
                    with self._lock:
                        self._threads = [t for t in self._threads if t.is_alive()] + [answer]
                    answer.start()
            except Exception:
                log.exception("threadwidget: serve(%s) could not claim work; retrying", self.agent.name)
            self._wake.wait(1.0)  # also re-check now and then: a missed wake-up costs at most a second

    def _answer(self, message: Any) -> None:
        run = Run(self.agent, message.thread_id, first_message=message)
        with self._lock:
            self._runs.add(run)
        try:
            for _ in run.steps():
                pass
            self.answered += 1
        except Exception:
            log.exception("threadwidget: serve(%s) failed answering in thread %s", self.agent.name, message.thread_id)
        finally:
            with self._lock:
                self._runs.discard(run)
            self._slots.release()
            self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming, abort answers in progress (they end ``aborted``), and wait for them."""
        self._stop.set()
        self._wake.set()
        self._sub.close()
        with self._lock:
            runs = list(self._runs)
        for run in runs:
            run.abort("the serving process stopped")
        self._thread.join(timeout)
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(timeout)

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
