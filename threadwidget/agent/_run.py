"""One answer, written into the store as it streams.

A run goes step by step: each step is one assistant message (``pending`` → ``streaming`` → a final
status) holding a lease in ``runs``. Text arrives as deltas appended to the store: each at once
while the answer streams slowly, coalesced under load (at most ``WRITES_PER_SECOND`` writes, or
one per 1 KiB, and always the tail); tool calls become rows the moment the model
starts them. A step that ends with tool calls runs them (validated first, in parallel, with
progress) and the next step shows the model their results. A call whose tool needs a person's
approval goes ``awaiting_approval`` instead; once the step's other calls have run, the run parks the
answer (``Store.park_run``: the thread's turn kept, no lease) and ends. Whoever claims it back once
people decided (``Store.claim_parked``) writes the rest with ``Run(..., resume=True)``: the approved
calls run, then the next step.

A keeper thread per run renews the lease every second and flushes text that waited too long; the
store's feed tells the run when another process asked to abort it. Whatever happens — the model
fails, the caller stops reading, Ctrl-C — the message ends in a final status with its partial text
and usage.

Over 400 lines on purpose: the steps, the tools and the ways an answer ends share one lease and
one lock, and each path that ends an answer is easier to check against the others side by side.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._errors import ModelError, StoreError, ToolArgumentsError, ToolError
from .._pace import RateLimit
from .._usage import Usage
from ..store import Event, Message, Store
from ..store._runs import ORPHANED, WRITER_STOPPED
from ._context import build_context, build_messages, estimate_tokens
from ._handoff import HandoffTool
from ._limits import Limits
from ._model import Finish, ModelStream, TextDelta, ToolCallDelta
from ._tools import Tool, ToolContext

if TYPE_CHECKING:
    from ._agent import Agent

__all__ = ["GenerateResult", "Run"]

log = logging.getLogger("threadwidget.agent")

WRITES_PER_SECOND = 50.0  # streamed-text writes of one answer under load (quiet: each token at once)
WRITE_BURST = 4.0
FLUSH_BYTES = 1024
RENEW_SECONDS = 1.0
ARGS_FLUSH_SECONDS = 0.05
PROGRESS_SECONDS = 0.05
CANCEL_GRACE = 0.5  # seconds an aborted answer waits for a running tool to notice and return
RECORD_LATER_SECONDS = 600.0  # how long a run whose end the store refused keeps trying to record it


def clean(text: str) -> str:
    """``text`` as it can be stored: lone surrogates (from ``os.listdir`` of a file name that is not
    UTF-8, or a model) written as ``\\udcXX`` escapes instead of failing the write."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass
class GenerateResult:
    """What a finished run produced: the final answer's ``text``, its ``status`` (``success`` or
    ``aborted``; a failed run raises instead), ``usage`` summed over its steps, and the ids of the
    assistant messages it wrote (one per step)."""

    text: str = ""
    status: str = "success"
    usage: Usage = field(default_factory=Usage)
    message_id: str | None = None
    message_ids: list[str] = field(default_factory=list)
    error: str | None = None


class _Aborted(Exception):
    pass


class _Refused(_Aborted):
    """A budget refused the step before its model was called: it used nothing."""


class Run:
    """Writes one answer: ``first_step`` is its step 0, created with this process's lease when the
    thread's turn was taken (``Store.add_prompt`` / ``claim_pending``). Iterate ``steps()`` for the
    text as the model produces it."""

    def __init__(self, agent: Agent, first_step: Message, *, resume: bool = False):
        if first_step.reply_to is None:
            raise ValueError(f"message {first_step.id!r} answers no prompt")
        self.agent = agent
        self.store: Store = agent.store
        self.thread_id = first_step.thread_id
        self.prompt_id: str = first_step.reply_to
        self.alternative = first_step.alternative  # which answer to the prompt this is
        self.result = GenerateResult()
        self.cancel = threading.Event()
        self.cancel_reason = "aborted"
        self._first = first_step
        #: ``first_step`` is a parked step this process claimed (``claim_parked``): run its approved
        #: calls, then go on with the next step
        self._resume = resume
        #: the run stopped with its turn parked until people decide its tool calls; it ends no answer
        self.parked = False
        self._lock = threading.Lock()
        self._message_id: str | None = None  # the step being written (abort requests name it)
        self._held: str | None = first_step.id  # the message whose lease this run holds and renews
        self._lease_lock = threading.Lock()  # a lease moves (or ends) and _held follows it, as one
        self._ended = False  # a step with ends_answer was written
        self._tool_waits: set[threading.Event] = set()  # set by abort(): stop waiting for tools
        self._fatal: BaseException | None = None  # an error that escaped the steps
        self._stream: ModelStream | None = None
        self._buffer: list[str] = []
        self._buffered = 0  # characters in _buffer
        self._pace = RateLimit(WRITES_PER_SECOND, WRITE_BURST)
        self._due = 0.0  # when the buffered text may be written (time.monotonic())
        self._kick = threading.Event()  # wakes the keeper: text waits, or the run ends
        self._stopping = False
        self._invalid_calls = 0
        self._handoff: tuple[Agent, str] | None = None  # a transfer_to_<name> call of this step: to whom, its row
        self.failure: Exception | None = None  # why the run failed, raised to the caller
        self._limits: Limits | None = None  # the budgets (the agent's, the store's), when any

    # -- control from other threads -------------------------------------------------------------

    def abort(self, reason: str = "aborted") -> None:
        if not self.cancel.is_set():
            self.cancel_reason = reason
            self.cancel.set()
        with self._lock:
            waits = list(self._tool_waits)
        for wake in waits:  # running tools stop being waited for (after a grace)
            wake.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()

    def _on_event(self, event: Event) -> None:
        row = event.row
        if (
            event.kind == "run"
            and isinstance(row, dict)
            and row.get("abort_requested")
            and row.get("message_id") == self._message_id
        ):
            self.abort("aborted by request")

    def _keep(self) -> None:
        """Renew the lease every second; write buffered text when its turn comes."""
        next_renew = time.monotonic() + RENEW_SECONDS
        while not self._stopping:
            now = time.monotonic()
            wake_at = next_renew
            if self._buffer:
                wake_at = min(wake_at, self._due)
            self._kick.wait(max(0.0, wake_at - now))
            self._kick.clear()
            try:
                if self._buffer and time.monotonic() >= self._due:
                    wait = self._pace.reserve()
                    if wait == 0:
                        self._flush()
                    else:
                        self._due = time.monotonic() + wait
                if time.monotonic() >= next_renew:
                    next_renew = time.monotonic() + RENEW_SECONDS
                    with self._lease_lock:  # not while the lease moves to the next step
                        lost = self._held is not None and not self.store.renew_lease(self._held)
                    if lost:
                        self.abort("lease lost: another process marked this answer failed")
            except Exception:
                log.exception("threadwidget: renewing the lease or flushing text failed")

    # -- text coalescing ------------------------------------------------------------------------

    def _flush(self) -> None:
        with self._lock:
            text, self._buffer, self._buffered = "".join(self._buffer), [], 0
            mid = self._message_id
            if text and mid:
                self.store.append_delta(mid, text)

    def _add_text(self, text: str) -> None:
        with self._lock:
            first = not self._buffer
            self._buffer.append(text)
            self._buffered += len(text)
            if self._buffered >= FLUSH_BYTES:
                self._pace.take()
                due = True
            elif first:  # nothing waits: at once if the pace allows, else when it does
                wait = self._pace.reserve()
                due, self._due = wait == 0, time.monotonic() + wait
            else:
                due = False  # joins the text already waiting for its turn
        if due:
            self._flush()
        elif first:
            self._kick.set()  # the keeper sleeps until this text is due, then flushes it

    # -- the run --------------------------------------------------------------------------------

    def steps(self) -> Iterator[str]:
        sub = self.store.subscribe(self._on_event, thread_id=self.thread_id)
        keeper = threading.Thread(target=self._keep, name="threadwidget-run-keeper", daemon=True)
        keeper.start()
        try:
            start = 0
            if self._resume:  # a parked step whose calls people decided: run the approved ones
                start = self._first.step + 1
                self._message_id = self.result.message_id = self._first.id
                self.result.message_ids.append(self._first.id)
                calls = self._decided_calls()
                self._run_tools(calls)
                self._take_handoff(calls)
                if self._after_tools(start, calls):
                    return
            for step in range(start, self.agent.max_steps):
                calls = yield from self._step(step)
                if not calls:
                    return
                self._run_tools(calls)
                self._take_handoff(calls)
                if self._after_tools(step + 1, calls):
                    return
            self.failure = ToolError(
                f"the model was still calling tools after max_steps={self.agent.max_steps} steps; "
                "raise max_steps or check the tools' results"
            )
            self._last_step(self.agent.max_steps, "failed", str(self.failure))
        except BaseException as exc:
            self._fatal = exc  # what ends the answer, in _release, if nothing else did
            raise
        finally:
            self._stopping = True
            self._kick.set()
            keeper.join()
            self._release()
            sub.close()

    def _after_tools(self, next_step: int, calls: list[dict[str, Any]]) -> bool:
        """After a step's tools: end the answer (failed, aborted) or park it until people decide
        the calls that wait for them. False: go on with the next step."""
        waiting = [c for c in calls if c.get("awaiting")]
        if self.failure is None and not self.cancel.is_set():
            if not waiting:
                return False
            if self._park():
                return True
            self.abort("aborted by request")  # parking is refused only to an abort request (or a lost lease)
        status, error = ("failed", str(self.failure)) if self.failure is not None else ("aborted", self.cancel_reason)
        for call in waiting:  # not run: nobody decides them any more
            if self.store.get_tool_call(call["row"]).status in ("awaiting_approval", "approved"):
                self.store.update_tool_call(call["row"], status="error", error=f"not run: the answer was {status}")
        self._last_step(next_step, status, error)
        return True

    def _take_handoff(self, calls: list[dict[str, Any]]) -> None:
        """A step called ``transfer_to_<name>``: the answer goes on as that agent, and the thread is
        its (``Store.hand_off``: the thread's agent, its waiting prompts, this turn). Not while a
        call of the step waits for a person: the agent that made it runs it once decided."""
        handoff, self._handoff = self._handoff, None
        if handoff is None:
            return
        target, row = handoff
        if self.cancel.is_set():
            self.store.update_tool_call(
                row, status="error", error=f"not handed over: the answer was {self.cancel_reason}"
            )
            return
        if any(c.get("awaiting") for c in calls):
            self.store.update_tool_call(row, status="error", error="not handed over: a call of this step waits for a "
                                        "person's decision; hand over once it is decided")  # fmt: skip
            return
        with self._lease_lock:
            self.store.hand_off(self.thread_id, target.name, message_id=self._held)
        self.store.update_tool_call(row, status="success", result=json.dumps({"transferred_to": target.name}),
                                    progress=1.0)  # fmt: skip
        log.info("threadwidget: thread %s handed over from %s to %s", self.thread_id, self.agent.name, target.name)
        self.agent = target

    def _park(self) -> bool:
        """Hand the turn to the store, waiting for people: no lease, no writer (``Store.park_run``)."""
        with self._lease_lock:
            if self._held is None or not self.store.park_run(self._held):
                return False
            self._held, self.parked = None, True
        return True

    def _decided_calls(self) -> list[dict[str, Any]]:
        """The parked step's approved calls, to run now (denied ones are final; others ran before)."""
        return [
            {"id": c.call_id, "name": c.name, "args": [c.arguments], "row": c.id, "approved": True}
            for c in self.store.list_tool_calls(self.thread_id, message_id=self._first.id)
            if c.status == "approved"
        ]

    def _release(self) -> None:
        """However the run ends, the answer ends and the thread's turn passes on."""
        if not self._ended and self._held is not None:
            fatal = self._fatal
            reason = f"{type(fatal).__name__}: {fatal}" if fatal is not None else "the writing process stopped it"
            error = f"the answer could not go on: {reason}"
            try:
                self._last_step(None, "failed", error)
            except StoreError as exc:  # a full disk, an I/O error: try again once the store takes writes
                log.warning("threadwidget: could not record the end of an answer yet (%s); retrying", exc)
                later = threading.Thread(target=self._record_later, args=(error,), name="threadwidget-record")
                later.daemon = True
                later.start()
                return
            except Exception:
                log.exception("threadwidget: could not record the end of an answer")
        with self._lease_lock:
            if self._held is not None:
                self.store.end_run(self._held)
                self._held = None

    def _record_later(self, error: str) -> None:
        """Record why the answer failed once the store takes writes again. Meanwhile the lease may
        expire and another process end the answer as "writer stopped"; then its reason is replaced by
        this true one. Gives up after ``RECORD_LATER_SECONDS`` (or when the process exits)."""
        deadline = time.monotonic() + RECORD_LATER_SECONDS
        while time.monotonic() < deadline:
            time.sleep(RENEW_SECONDS)
            try:
                stopped = (WRITER_STOPPED, ORPHANED)
                for mid in self.result.message_ids:  # the tool calls first: they end before the answer
                    for call in self.store.list_tool_calls(self.thread_id, message_id=mid):
                        if call.status in ("streaming_args", "running") or call.error in stopped:
                            self.store.update_tool_call(call.id, status="error", error=clean(error))
                if self._held is not None and self.store.renew_lease(self._held):
                    self._last_step(None, "failed", error)  # still ours: end it as usual
                    return
                steps = self.store.answer_steps(self.prompt_id, self.alternative)
                if not steps or not steps[-1].is_final:
                    continue  # the reaper ends it first; its reason is corrected next time
                if steps[-1].error in stopped:
                    self.store.update_message(steps[-1].id, error=clean(error))
                return
            except StoreError:
                continue

    def _last_step(self, step: int | None, status: str, error: str) -> None:
        """End the answer with a step that says why (between steps: after tools, or past max_steps).
        ``step=None``: end the step being written, or add one after it if it is already final."""
        with self._lease_lock:
            held = self._held
            current = self.store.get_message(held) if held is not None else None
            if step is None and current is not None and not current.is_final:
                msg = current
            else:
                number = step if step is not None else (current.step + 1 if current is not None else 0)
                msg = self.store.start_run(
                    self.thread_id, reply_to=self.prompt_id, previous=held, agent=self.agent.name,
                    model=self.agent.model.name, step=number,
                )  # fmt: skip
                self._held = msg.id
                self.result.message_ids.append(msg.id)
                self.result.text, self.result.message_id = "", msg.id
            self.store.update_message(msg.id, status=status, error=clean(error), ends_answer=True, end_run=True)
            self._held, self._ended = None, True
        self.result.status, self.result.error = status, error

    def _step(self, step: int) -> Generator[str, None, list[dict[str, Any]]]:
        agent, store = self.agent, self.store
        if step == 0:
            message = self._first
            if message.model != agent.model.name:
                store.update_message(message.id, model=agent.model.name)
        else:
            with self._lease_lock:
                message = store.start_run(
                    self.thread_id, reply_to=self.prompt_id, previous=self._held, agent=agent.name,
                    model=agent.model.name, step=step,
                )  # fmt: skip
                self._held = message.id
        self._message_id = message.id
        self.result.message_id = message.id
        self.result.message_ids.append(message.id)
        seen: dict[str, Any] | None = None  # what went into the context, recorded on the step
        if agent.context is None:
            context = build_messages(
                store, self.thread_id, instructions=agent.instructions, window=agent.context_messages,
                through=message.id, exclude={message.id},
            )  # fmt: skip
        else:
            context, seen = build_context(
                store, self.thread_id, instructions=agent.instructions, context=agent.context,
                through=message.id, exclude={message.id},
            )  # fmt: skip
        tools = [t.schema for t in agent.tool_table().values()]
        text: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        finish: Finish | None = None
        status, error, refused = "success", None, False
        limits, spent_in, chars = self._budget(), 0, 0
        try:
            if store.abort_requested(message.id):
                raise _Aborted
            if limits:
                spent_in = estimate_tokens(context)
                limits.refresh()
                reason = limits.check(self.result.usage, Usage())
                if reason is not None:
                    self.abort(reason)
                    raise _Refused
            stream = agent.model.stream(context, tools)
            with self._lock:
                self._stream = stream
            if self.cancel.is_set():
                stream.close()
            store.update_message(message.id, status="streaming")
            for event in stream:
                if isinstance(event, TextDelta):
                    if event.text:
                        piece = clean(event.text)
                        text.append(piece)
                        self._add_text(piece)
                        if limits:  # the budget sees the step's tokens so far, estimated as _end_step would
                            chars += len(piece)
                            reason = limits.check(self.result.usage, Usage(spent_in, chars // 4))
                            if reason is not None:
                                self.abort(reason)
                        yield piece
                elif isinstance(event, ToolCallDelta):
                    self._tool_call_delta(message.id, calls, event)
                elif isinstance(event, Finish):
                    finish = event
            if self.cancel.is_set():
                raise _Aborted
            if finish is None:
                raise ModelError(f"the model {agent.model.name!r} stream ended without finishing (no finish_reason)")
        except _Refused:
            status, error, refused = "aborted", self.cancel_reason, True
        except _Aborted:
            status, error = "aborted", self.cancel_reason
        except ModelError as exc:
            status, error = ("aborted", self.cancel_reason) if self.cancel.is_set() else ("failed", str(exc))
            if status == "failed":
                self.failure = exc
        except GeneratorExit:
            status, error = "aborted", "the caller stopped reading the stream"
            raise
        except KeyboardInterrupt:
            status, error = "aborted", "interrupted"
            raise
        except BaseException as exc:
            status, error = "failed", f"{type(exc).__name__}: {exc}"
            if isinstance(exc, Exception):
                self.failure = exc
            raise
        finally:
            with self._lock:
                self._stream = None
            self._end_step(message, "".join(text), calls, finish, status, error, context, seen, refused=refused)
        return [] if status != "success" else list(calls.values())

    def _end_step(
        self, message: Message, text: str, calls: dict[int, dict[str, Any]], finish: Finish | None,
        status: str, error: str | None, context: list[dict[str, Any]], seen: dict[str, Any] | None = None,
        *, refused: bool = False,
    ) -> None:  # fmt: skip
        """Flush the tail and end the step in one transaction: text, status, usage, what went into
        its context (``seen``, with a ``Context``) and, unless its tool calls are still to run (abort
        requests must find the run meanwhile), the lease."""
        self._flush()
        keep_lease = status == "success" and bool(calls)
        for call in calls.values():
            self._flush_args(call, force=True)
            if status != "success":
                self.store.update_tool_call(call["row"], status="error", error=f"not run: the answer {status}")
        usage = finish.usage if finish and finish.usage else Usage(estimate_tokens(context), len(text) // 4)
        estimated = not (finish and finish.usage) and not refused  # refused by a budget: nothing used
        stopped = self._limits.stopped if self._limits is not None else None
        budget = stopped[0] if stopped and status == "aborted" and error == stopped[1] else None  # a budget ended it
        with self._lease_lock:
            self.store.update_message(
                message.id,
                text=text,
                status=status,
                error=None if error is None else clean(error),
                usage=None if refused else usage,
                finish_reason=finish.reason if finish else None,
                metadata={
                    **({"context": seen} if seen else {}),
                    **({"usage_estimated": True} if estimated else {}),
                    **({"budget_scope": budget} if budget else {}),
                }
                or None,
                ends_answer=not keep_lease,
                end_run=not keep_lease,
            )
            if not keep_lease:
                self._held, self._ended = None, True
        if not refused:
            self.result.usage += usage
        self.result.text = text
        if status != "success":
            self.result.status, self.result.error = status, error

    def _budget(self) -> Limits | None:
        """The answer's budgets, read once (None without any)."""
        if self._limits is None and (self.agent.budget is not None or self.store.budget is not None):
            user_id = self.store.get_thread(self.thread_id).user_id or self.store.get_message(self.prompt_id).user_id
            self._limits = Limits(self.agent, self.store, self.thread_id, user_id)
        return self._limits

    # -- tool calls -------------------------------------------------------------------------------

    def _tool_call_delta(self, message_id: str, calls: dict[int, dict[str, Any]], event: ToolCallDelta) -> None:
        event = ToolCallDelta(event.index, id=event.id and clean(event.id), name=event.name and clean(event.name),
                              arguments=clean(event.arguments))  # fmt: skip
        call = calls.get(event.index)
        if call is None:
            call = {"id": event.id or f"call_{event.index}", "name": event.name or "", "args": [], "sent": 0, "at": 0.0}
            calls[event.index] = call
            row = self.store.add_tool_call(message_id, call_id=call["id"], name=call["name"], arguments=event.arguments)
            call["row"], call["sent"], call["at"] = row.id, len(event.arguments), time.monotonic()
            call["args"].append(event.arguments)
            return
        if event.name and not call["name"]:
            call["name"] = event.name
        call["args"].append(event.arguments)
        self._flush_args(call)

    def _flush_args(self, call: dict[str, Any], *, force: bool = False) -> None:
        args = "".join(call["args"])
        if len(args) != call["sent"] and (force or time.monotonic() - call["at"] >= ARGS_FLUSH_SECONDS):
            self.store.update_tool_call(call["row"], arguments=args)
            call["sent"], call["at"] = len(args), time.monotonic()

    def _run_tools(self, calls: list[dict[str, Any]]) -> None:
        if not calls:
            return
        if len(calls) == 1:
            self._run_tool(calls[0])
            return
        with ThreadPoolExecutor(max_workers=min(8, len(calls)), thread_name_prefix="threadwidget-tool") as pool:
            list(pool.map(self._run_tool, calls))

    def _fail_invalid(self) -> None:
        self.failure = ToolArgumentsError(
            f"the model sent invalid tool arguments {self._invalid_calls} times "
            f"(max_tool_retries={self.agent.max_tool_retries}); see the tool-call errors"
        )

    def _run_tool(self, call: dict[str, Any]) -> None:
        """Validate and run one call. However it goes, its row ends: ``success``, or ``error`` with
        the true reason (bad arguments, the tool raised, the answer was aborted, a store write
        failed)."""
        try:
            self._validate_and_run(call)
        except BaseException as exc:
            reason = f"the tool call could not be completed: {type(exc).__name__}: {exc}"
            try:
                self.store.update_tool_call(call["row"], status="error", error=clean(reason))
            except Exception:
                log.exception("threadwidget: could not record the end of tool call %s", call["row"])
            if isinstance(exc, Exception) and self.failure is None:
                self.failure = exc
            raise

    def _validate_and_run(self, call: dict[str, Any]) -> None:
        store, row = self.store, call["row"]
        table = self.agent.tool_table()
        tool = table.get(call["name"])
        try:
            if tool is None:
                known = ", ".join(sorted(table)) or "none"
                raise ToolArgumentsError(
                    f"There is no tool named {call['name']!r}. Available tools: {known}. Call one of those."
                )
            arguments = tool.validate("".join(call["args"]))
        except ToolArgumentsError as exc:
            with self._lock:
                self._invalid_calls += 1
            store.update_tool_call(row, status="error", error=clean(str(exc)))
            if self._invalid_calls > self.agent.max_tool_retries:
                self._fail_invalid()
            return
        if self.cancel.is_set():
            store.update_tool_call(row, status="error", error=f"not run: the answer was {self.cancel_reason}")
            return
        if isinstance(tool, HandoffTool):  # recorded once the step's other calls ran (_take_handoff)
            with self._lock:
                taken = self._handoff
                if taken is None:
                    self._handoff = (tool.target, row)
            if taken is not None:
                store.update_tool_call(row, status="error", error=f"not run: this step already hands over to "
                                       f"{taken[0].name!r}; one handoff per step")  # fmt: skip
            return
        if not call.get("approved") and tool.requires_approval(arguments):
            store.update_tool_call(row, status="awaiting_approval")  # its full arguments are written
            call["awaiting"] = True
            return
        store.update_tool_call(row, status="running")
        last = [0.0]

        def on_progress(fraction: float | None, note: str | None) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_SECONDS or fraction in (0.0, 1.0):
                last[0] = now
                store.update_tool_call(row, progress=fraction, progress_note=None if note is None else clean(note))

        ctx = ToolContext(
            thread_id=self.thread_id, message_id=self._message_id, call_id=call["id"], tool_name=tool.name,
            on_progress=on_progress, cancel_event=self.cancel,
        )  # fmt: skip
        finished, outcome = self._invoke(tool, arguments, ctx, row)
        if not finished:  # aborted, and the tool did not stop: its result, if any, comes too late
            store.update_tool_call(row, status="error", error=f"cancelled: the answer was {self.cancel_reason} "
                                   f"while the tool ran, and it did not stop within {CANCEL_GRACE:g} s")  # fmt: skip
            return
        if isinstance(outcome, BaseException):
            if self.cancel.is_set():
                message = f"cancelled: the answer was {self.cancel_reason} while the tool ran"
            elif isinstance(outcome, ToolError):
                message = str(outcome)
            else:
                message = f"{type(outcome).__name__}: {outcome}"
            store.update_tool_call(row, status="error", error=clean(message))
            log.info("tool %s raised: %s", tool.name, message)
            return
        text = clean(tool.result_to_text(outcome))
        try:
            json.loads(text)
        except ValueError:
            text = json.dumps(text)  # the result column holds JSON text
        if self.cancel.is_set():  # it returned, but the answer was stopped meanwhile
            cancelled = f"cancelled: the answer was {self.cancel_reason} while the tool ran"
            store.update_tool_call(row, status="error", result=text, error=cancelled)
            return
        store.update_tool_call(row, status="success", result=text, progress=1.0)

    def _invoke(self, tool: Tool, arguments: dict[str, Any], ctx: ToolContext, row: str) -> tuple[bool, Any]:
        """Run the tool in its own thread: ``(True, result or exception)``, or ``(False, None)`` when
        the answer was aborted and the tool did not return within ``CANCEL_GRACE`` of it (it is left
        to finish in the background; what it returns then is recorded as discarded)."""
        finished = threading.Event()  # the tool returned or raised
        wake = threading.Event()  # that, or the answer was aborted
        lock = threading.Lock()
        box: list[Any] = []
        abandoned = [False]

        def call() -> None:
            try:
                outcome: Any = tool.invoke(arguments, ctx)
            except BaseException as exc:  # handed to the caller, who records it
                outcome = exc
            with lock:
                box.append(outcome)
                late = abandoned[0]
            finished.set()
            wake.set()
            if late:
                with contextlib.suppress(Exception):
                    self.store.update_tool_call(row, error=clean(
                        f"cancelled: the answer was {self.cancel_reason} while the tool ran; it finished "
                        "later and its result was discarded"))  # fmt: skip

        threading.Thread(target=call, name=f"threadwidget-tool-{tool.name}", daemon=True).start()
        with self._lock:
            self._tool_waits.add(wake)
        if self.cancel.is_set():
            wake.set()
        try:
            wake.wait()
        finally:
            with self._lock:
                self._tool_waits.discard(wake)
        finished.wait(CANCEL_GRACE)  # at once when it finished; else the grace of an abort
        with lock:
            if box:
                return True, box[0]
            abandoned[0] = True
        return False, None
