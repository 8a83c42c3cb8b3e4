"""``threadwidget serve``: find the agent named by ``MODULE:AGENT``, serve it, print each answer it ends
(and where a handoff gave one to another agent)."""

from __future__ import annotations

import importlib
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource
from rich.text import Text

from .._errors import NotFoundError, ThreadwidgetError
from .._text import one_line
from .._usage import Usage
from ..store import Event, Message, Store
from ._common import ENV, console, db_option
from ._render import MARKS, STYLES, duration, local_time, span, usage_text

if TYPE_CHECKING:
    from ..agent import Agent

__all__ = ["Answers", "answer_line", "handoff_line", "load_agent", "serve"]


def load_agent(target: str) -> Agent:
    """``MODULE:AGENT`` → the Agent (or what a zero-argument callable of that name returns)."""
    from ..agent import Agent

    module_name, _, attr = target.partition(":")
    example = "e.g. `threadwidget serve my_agents:support` for `support = tw.Agent(...)` in my_agents.py"
    if not (module_name and attr and all(p.isidentifier() for p in [*module_name.split("."), *attr.split(".")])):
        raise click.ClickException(f"{target!r} is not MODULE:AGENT; {example}.")
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name + ".").startswith(exc.name + "."):
            raise click.ClickException(
                f"no module named {module_name!r} in {os.getcwd()} or on sys.path. Run from the directory "
                f"that holds {module_name.replace('.', '/')}.py, or install the package; {example}."
            ) from None
        raise click.ClickException(f"importing {module_name!r} failed: {exc}.") from None
    except ThreadwidgetError:
        raise  # already says what is wrong and how to fix it (e.g. a --db in a missing directory)
    except Exception as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        own = [f for f in frames if f.filename.startswith(os.getcwd() + os.sep)] or frames  # the user's code
        where = f" at {own[-1].filename}:{own[-1].lineno}" if own else ""
        raise click.ClickException(f"importing {module_name!r} raised {type(exc).__name__}: {exc}{where}.") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            agents = sorted(k for k, v in vars(module).items() if isinstance(v, Agent))
            there = f"agents defined there: {', '.join(agents)}" if agents else f"define one: `{attr} = tw.Agent(...)`"
            raise click.ClickException(f"module {module_name!r} has no attribute {attr!r}; {there}.")
        obj = getattr(obj, part)
    if not isinstance(obj, Agent) and callable(obj):
        try:
            obj = obj()
        except Exception as exc:
            raise click.ClickException(f"calling {target}() raised {type(exc).__name__}: {exc}.") from None
    if not isinstance(obj, Agent):
        raise click.ClickException(
            f"{target} is of type {type(obj).__name__}, not a tw.Agent; point MODULE:AGENT at a tw.Agent or at a "
            "function that returns one."
        )
    return obj


class Answers:
    """The answers started by one agent that end while ``serve`` runs, whichever process wrote them:
    each counted once by its status, their tokens summed. An answer is the agent's that wrote its
    first step, also when a handoff gives it to another agent midway (the process that started it
    writes it to the end); ``handoff`` tells when that happens. An answer ends with its last step
    (``ends_answer``); its steps and their usage are read back from the store then."""

    def __init__(self, store: Store, agent: str):
        self.store = store
        self.agent = agent
        self.counts: Counter[str] = Counter()
        self.usage = Usage()
        self.open: set[str] = set()  # prompts whose answer was seen being written and has not ended
        self._ended: set[str] = set()
        self._started_by: dict[str, str | None] = {}  # answer → the agent of its first step
        self._writing: dict[str, str] = {}  # answer → the agent of its newest step seen

    @staticmethod
    def _key(m: Message) -> str:
        return m.reply_to or m.id  # a step that answers no prompt is an answer of its own

    def _mine(self, m: Message) -> bool:
        """``m`` is a step of an answer this agent started (read from the store once per answer)."""
        if m.role != "assistant" or m.agent is None:  # a person's reply has no agent
            return False
        key = self._key(m)
        if key not in self._started_by:
            steps = self.store.answer_steps(m.reply_to, m.alternative) if m.reply_to and m.step else []
            self._started_by[key] = steps[0].agent if steps else m.agent
        return self._started_by[key] == self.agent

    def handoff(self, m: Message) -> tuple[str, str] | None:
        """(from, to) when ``m`` is the first step of an answer of ours written by another agent
        than the step before it: the thread was handed over there; else None."""
        if not self._mine(m) or self._key(m) in self._ended:
            return None
        key, now = self._key(m), m.agent or self.agent
        before, self._writing[key] = self._writing.get(key, self.agent), now
        return (before, now) if now != before else None

    def add(self, m: Message) -> tuple[Message, float, Usage] | None:
        """The answer's last step, its start and its usage, once ``m`` ends it; else None."""
        if not self._mine(m) or self._key(m) in self._ended:
            return None
        if not (m.is_final and m.ends_answer):  # streaming, or a step whose tool calls run next
            self.open.add(self._key(m))
            return None
        self._ended.add(self._key(m))
        self.open.discard(self._key(m))
        steps = (self.store.answer_steps(m.reply_to, m.alternative) if m.reply_to else []) or [m]
        used = sum((step.usage for step in steps if step.usage is not None), Usage())
        self.counts[m.status] += 1
        self.usage += used
        return m, steps[0].created_at, used

    def last_steps(self) -> list[Message]:
        """The newest step of each answer still open here, read from the store (e.g. after a stop
        ended them aborted)."""
        found = []
        for key in sorted(self.open):
            try:
                found.append((self.store.answer_steps(key) or [self.store.get_message(key)])[-1])
            except NotFoundError:  # its thread was deleted meanwhile
                continue
        return found


def _thread_title(store: Store, thread_id: str) -> str | None:
    try:
        return store.get_thread(thread_id).title
    except NotFoundError:
        return None


def handoff_line(store: Store, m: Message, before: str, after: str) -> Text:
    """``12:00:01  ⇢ handed over thr_…  Title  booking → confirm``: an answer goes on as ``after``."""
    line = Text(f"{local_time(m.created_at)}  ", style="dim")
    line.append("⇢ handed over", style="magenta")
    line.append(f" {m.thread_id}", style="cyan")
    title = _thread_title(store, m.thread_id)
    if title:
        line.append(f"  {one_line(title, 40)}")
    line.append(f"  {before} → {after}", style="dim")
    return line


def answer_line(store: Store, m: Message, start: float, used: Usage) -> Text:
    line = Text(f"{local_time(m.updated_at)}  ", style="dim")
    line.append(f"{MARKS.get(m.status, '·')} {m.status:<8}", style=STYLES.get(m.status, ""))
    line.append(f" {m.thread_id}", style="cyan")
    title = _thread_title(store, m.thread_id)
    if title:
        line.append(f"  {one_line(title, 40)}")
    line.append(f"  {duration(start, m.updated_at)} · {usage_text(used)}", style="dim")
    if m.error:
        line.append(f"  {one_line(m.error, 200)}", style=STYLES.get(m.status, ""))
    return line


def _where(location: Path | str) -> Path | str:
    """A store's location to compare: a file's real path, or a server URL as given."""
    return location if isinstance(location, str) else Path(location).resolve()


@click.command()
@click.argument("target", metavar="MODULE:AGENT")
@click.option("--max-concurrent", type=click.IntRange(min=1), default=4, show_default=True,
              help="How many answers to write at once.")  # fmt: skip
@db_option(f"The store to serve: sets {ENV} before MODULE is imported, so tw.Store() there opens it.")
@click.pass_context
def serve(ctx: click.Context, target: str, db: Path | str | None, max_concurrent: int) -> None:
    """Answer prompts left pending for an agent, until Ctrl-C or SIGTERM.

    MODULE:AGENT names a tw.Agent (or a function returning one) in an importable module, e.g.
    `my_agents:support`; the current directory is searched first. Prints one line per answer it started
    (one more where a handoff gave it to another agent, which it still writes) and a summary on exit.
    """
    if isinstance(db, Path):
        db = db.absolute()
    if db is not None:
        os.environ[ENV] = str(db)
    agent = load_agent(target)
    store, out = agent.store, console()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # before anything is printed: whoever reads our output may signal us at once
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    given = ctx.get_parameter_source("db") is ParameterSource.COMMANDLINE
    if db is not None and given and _where(store.path) != _where(db):
        click.echo(
            f"Warning: agent {agent.name!r} writes to {store.path}, not --db {db}; serving that store. "
            f"Create its store with tw.Store() (no path) in {target.partition(':')[0]} to follow --db.",
            err=True,
        )
    events: queue.SimpleQueue[Event] = queue.SimpleQueue()
    answers = Answers(store, agent.name)
    sub = store.subscribe(events.put)
    worker = agent.serve(max_concurrent=max_concurrent)
    began = time.monotonic()
    tools = ", ".join(agent.tools) or "none"
    out.print(
        Text(f"serving agent {agent.name!r} (model {agent.model.name}, tools: {tools}) from {store.path}", style="bold")
    )
    out.print(Text("one line per answer · Ctrl-C or SIGTERM to stop", style="dim"))

    def report(m: Message) -> None:
        moved = answers.handoff(m)
        if moved is not None:
            out.print(handoff_line(store, m, *moved))
        done = answers.add(m)
        if done is not None:
            out.print(answer_line(store, *done))

    try:
        while not stop.is_set():
            try:
                event = events.get(timeout=0.2)
            except queue.Empty:
                continue
            if isinstance(event.row, Message):
                report(event.row)
    finally:
        out.print(Text("stopping: answers in progress end aborted …", style="dim"))
        worker.stop()
        sub.close()
        while not events.empty():
            row = events.get_nowait().row
            if isinstance(row, Message):
                report(row)
        for step in answers.last_steps():  # answers the stop cut short, read back from the store
            report(step)
        for s, handler in previous.items():
            signal.signal(s, handler)
    took = time.monotonic() - began
    n = sum(answers.counts.values())
    statuses = ", ".join(f"{count} {status}" for status, count in sorted(answers.counts.items()))
    out.print(
        f"served {n} answer{'s' if n != 1 else ''} in {span(took)}{': ' + statuses if statuses else ''}"
        f" · {usage_text(answers.usage)}"
    )
