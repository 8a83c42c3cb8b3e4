"""``tw.Answer``: the answer to one prompt, followed through the store whoever writes it.

An answer is the run of assistant steps (step 0, 1, … with tool calls between) whose ``reply_to`` is
the prompt's id; its last step has ``ends_answer``. Everything here reads the store and its feed, so
an ``Answer`` works the same in the process that writes it and in any other.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .._errors import AnswerTimeoutError
from .._statuses import AnswerStatus
from .._text import count
from .._usage import Usage
from ._rows import Event, Message, ToolCall

if TYPE_CHECKING:
    from ._store import Store

__all__ = ["Answer", "answer_status"]

REGENERATION_CANCELLED = "regeneration cancelled before it was answered"
_RECHECK = 1.0  # seconds: waits re-read the store now and then, whatever the feed says


def answer_status(prompt: Message, steps: list[Message], parked: bool = False) -> AnswerStatus:
    """``queued`` while the prompt waits for the thread's turn, ``running`` until a step ends the
    answer (``waiting`` meanwhile when ``parked``: its turn waits for people to decide its tool
    calls, or for a process to resume it), then that step's status (a prompt cancelled in the
    queue: ``aborted``)."""
    if prompt.status == "pending":
        return "queued"
    if steps and steps[-1].ends_answer:
        return "failed" if steps[-1].status == "failed" else "aborted" if steps[-1].status == "aborted" else "success"
    if not steps and prompt.status in ("aborted", "failed"):
        return "aborted" if prompt.status == "aborted" else "failed"
    return "waiting" if parked else "running"


class Answer:
    """The answer to one prompt. Iterate it for the text as it streams (every step's text, from the
    store's feed); ``wait()`` for the end; read ``status``, ``text``, ``messages``, ``tool_calls``,
    ``usage`` and ``error`` at any time (they read the store, so they are live); ``abort()`` it
    from any process. ``async for`` and ``await answer.wait_async()`` are the async twins.

    Get one from ``thread.ask(...)`` (answered in this process), ``store.ask(...)`` (answered by a
    process serving the thread's agent), ``store.answer(prompt_id)`` or
    ``store.answer_in_progress(thread_id)``.
    """

    def __init__(self, store: Store, prompt: Message, alternative: int | None = None):
        self.store = store
        self.prompt = prompt
        self.prompt_id = prompt.id
        #: which answer to the prompt this is (0: the first; regenerated ones 1, 2, ...)
        self.alternative = prompt.chosen if alternative is None else alternative
        self.thread_id = prompt.thread_id
        self._writer: Any = None  # the runtime's writer (abort(reason), failure) when this process writes it
        self._waiters: set[threading.Event] = set()  # wait() calls in progress: ended() wakes them

    @property
    def failure(self) -> BaseException | None:
        """The exception that failed the answer, when this process wrote it (else ``None``)."""
        return getattr(self._writer, "failure", None)

    # -- state, read from the store -------------------------------------------------------------

    def _read(self) -> tuple[Message, list[Message]]:
        prompt = self.store.get_message(self.prompt_id)
        steps = self.store.answer_steps(self.prompt_id, self.alternative)
        if not steps and prompt.status != "pending":  # a regeneration not started: queued, or cancelled there
            state = self.store.regeneration_state(self.prompt_id, self.alternative)
            if state == "queued":
                prompt = replace(prompt, status="pending")
            elif state == "cancelled":
                prompt = replace(prompt, status="aborted", error=REGENERATION_CANCELLED)
        return prompt, steps

    def _status(self, prompt: Message, steps: list[Message]) -> AnswerStatus:
        parked = bool(steps) and not steps[-1].ends_answer and self.store.is_parked(steps[-1].id)
        return answer_status(prompt, steps, parked)

    @property
    def status(self) -> AnswerStatus:
        """``queued``, ``running``, ``waiting`` (a tool call waits for a person's decision:
        ``pending_approvals``), ``success``, ``failed`` or ``aborted``."""
        return self._status(*self._read())

    @property
    def pending_approvals(self) -> list[ToolCall]:
        """This answer's tool calls that wait for a person's decision."""
        return [c for c in self.tool_calls if c.status == "awaiting_approval"]

    @property
    def done(self) -> bool:
        return self.status not in ("queued", "running", "waiting")

    @property
    def messages(self) -> list[Message]:
        """The answer's steps, in order (assistant messages)."""
        return self.store.answer_steps(self.prompt_id, self.alternative)

    @property
    def text(self) -> str:
        """The last step's text: final, or streamed so far."""
        steps = self.messages
        return self.store.text(steps[-1].id) if steps else ""

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [c for m in self.messages for c in self.store.list_tool_calls(self.thread_id, message_id=m.id)]

    @property
    def usage(self) -> Usage:
        """Tokens used by every step so far."""
        return sum((m.usage for m in self.messages if m.usage is not None), Usage())

    @property
    def error(self) -> str | None:
        """Why the answer failed or was stopped (``None`` while it runs or when it succeeded)."""
        prompt, steps = self._read()
        last = steps[-1] if steps else prompt
        return last.error if answer_status(prompt, steps) in ("failed", "aborted") else None

    def __repr__(self) -> str:
        prompt, steps = self._read()
        status = self._status(prompt, steps)
        text = " ".join((self.store.text(steps[-1].id) if steps else "").split())
        text = text if len(text) <= 60 else text[:59] + "…"
        return f"<tw.Answer to {prompt.text[:40]!r} {status}, {count(len(steps), 'step')}: {text!r}>"

    # -- waiting and streaming ----------------------------------------------------------------------

    def _events(self) -> tuple[queue.SimpleQueue[Event], Any]:
        events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        return events, self.store.subscribe(events.put, thread_id=self.thread_id, since=self.store.last_seq())

    def wait(self, timeout: float | None = None) -> Answer:
        """Block until the answer has ended (whoever writes it); returns it. Raises
        ``AnswerTimeoutError`` after ``timeout`` seconds (the answer goes on)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        changed = threading.Event()

        def on_event(event: Event) -> None:
            if event.kind != "delta":  # streamed text never ends an answer: sleep through it
                changed.set()

        sub = self.store.subscribe(on_event, thread_id=self.thread_id, since=self.store.last_seq())
        self._waiters.add(changed)
        try:
            while not self.done:
                left = _RECHECK if deadline is None else min(_RECHECK, deadline - time.monotonic())
                if left <= 0:
                    raise AnswerTimeoutError(
                        f"the answer to prompt {self.prompt_id!r} is still {self.status} after {timeout} s; "
                        "wait longer, or abort() it."
                    )
                changed.wait(left)
                changed.clear()
        finally:
            self._waiters.discard(changed)
            sub.close()
        return self

    def ended(self) -> None:
        """Called by this process's writer when it has written the answer's end: waiters look at
        once, without waiting for the feed to bring the news."""
        for waiter in list(self._waiters):
            waiter.set()

    async def wait_async(self, timeout: float | None = None) -> Answer:
        """The async twin of ``wait``."""
        return await asyncio.to_thread(self.wait, timeout)

    def __iter__(self) -> Iterator[str]:
        """Text as it streams, every step's, in order; ends when the answer ends."""
        events, sub = self._events()
        sent: dict[str, tuple[int, int]] = {}  # step id -> (last delta seq given, characters given)
        try:
            while True:
                prompt, steps = self._read()
                for step in steps:
                    seq, chars = sent.get(step.id, (0, 0))
                    for delta in self.store.list_deltas(step.id, after_seq=seq):
                        seq, chars = delta.seq, chars + len(delta.text)
                        yield delta.text
                    if step.is_final and len(step.text) > chars:  # text written without deltas
                        yield step.text[chars:]
                        chars = len(step.text)
                    sent[step.id] = (seq, chars)
                if answer_status(prompt, steps) not in ("queued", "running"):  # waiting is running here
                    return
                self._next_change(events)
        finally:
            sub.close()

    @staticmethod
    def _next_change(events: queue.SimpleQueue[Event]) -> None:
        """Wait for the next change of the thread (or ``_RECHECK``), then take every change that
        came with it: one read of the store covers them all."""
        try:
            events.get(timeout=_RECHECK)
            while True:
                events.get_nowait()
        except queue.Empty:
            return

    async def __aiter__(self) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()

        def produce() -> None:
            try:
                for text in self:
                    if stop.is_set():
                        return
                    loop.call_soon_threadsafe(chunks.put_nowait, ("text", text))
                loop.call_soon_threadsafe(chunks.put_nowait, ("end", None))
            except BaseException as exc:
                loop.call_soon_threadsafe(chunks.put_nowait, ("error", exc))

        threading.Thread(target=produce, name="threadwidget-answer-stream", daemon=True).start()
        try:
            while True:
                kind, value = await chunks.get()
                if kind == "text":
                    yield value
                elif kind == "error":
                    raise value
                else:
                    return
        finally:
            stop.set()

    # -- control -----------------------------------------------------------------------------------

    def abort(self, reason: str = "aborted") -> None:
        """Stop this answer, from any process: a queued prompt (or regeneration) is cancelled, a
        running answer ends ``aborted`` with its partial text. Other prompts of the thread, and
        other answers to this one, are not touched."""
        if self._writer is not None:
            self._writer.abort(reason)
        self.store.abort_answer(self.prompt_id, self.alternative)
