"""The ``threadwidget`` command line: list, show, follow and serve the threads of a store.

It uses only the public API (``Store`` methods, ``store.subscribe``, ``Agent.serve``). Errors are one
``Error: ...`` line on stderr and exit status 1. click and rich load here, never on
``import threadwidget``.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.text import Text

from .._errors import NotFoundError, ThreadwidgetError
from .._statuses import LIVE_STATUSES
from .._version import __version__
from ..store import Event, Message, Store, Thread, default_path
from ._render import print_transcript, span, threads_table, usage_dict, usage_table, usage_text
from ._serve import Answers, answer_line, load_agent
from ._tail import Follower

__all__ = ["cli", "main"]

F = TypeVar("F", bound=Callable[..., Any])


class _Group(click.Group):
    """Turns threadwidget's own errors into one ``Error: ...`` line and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ThreadwidgetError as exc:
            raise click.ClickException(" ".join(str(exc).split())) from None
        except sqlite3.DatabaseError as exc:
            raise click.ClickException(f"the store could not be read: {exc}.") from None
        except BrokenPipeError:
            raise  # `threadwidget show ... | head`: click ends quietly
        except OSError as exc:
            raise click.ClickException(f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}.") from None


def _shown_default() -> str:
    path, home = str(default_path()), str(Path.home())
    return "~" + path[len(home) :] if path.startswith(home + os.sep) else path


def _db_option(help_text: str) -> Callable[[F], F]:
    return click.option(
        "--db",
        type=click.Path(path_type=Path),
        default=None,
        metavar="PATH",
        help=f"{help_text} Default: $THREADWIDGET_DB, else the user's store (here: {_shown_default()}).",
    )


db_option = _db_option("The store file.")


def _open(db: Path | None) -> Store:
    """Open an existing store for reading; never create one."""
    path = db.expanduser() if db is not None else default_path()
    if not path.exists():
        source = "--db" if db is not None else "$THREADWIDGET_DB" if os.environ.get("THREADWIDGET_DB") else "default"
        raise click.ClickException(
            f"the store {path} ({source}) does not exist. Pass --db PATH of an existing store (or set "
            "THREADWIDGET_DB); a new store is created by tw.Store(path) or `threadwidget serve MODULE:AGENT --db PATH`."
        )
    return Store(path)


def _thread(store: Store, thread_id: str) -> Thread:
    try:
        return store.get_thread(thread_id)
    except NotFoundError:
        raise click.ClickException(
            f"no thread with id {thread_id!r} in {store.path}. List the threads with "
            f"`threadwidget threads --db {store.path}`."
        ) from None


def _console() -> Console:
    out = Console(highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = 200  # a pipe gets whole lines and table cells, not ones cut at 80 columns
        out.soft_wrap = True
    return out


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="threadwidget", message="%(prog)s %(version)s")
def cli() -> None:
    """Look into a threadwidget store from a terminal: list threads, show a transcript, follow
    answers as they stream, serve an agent, sum token usage.

    Every command takes --db PATH; without it the store is $THREADWIDGET_DB, else the per-user file.
    """


@cli.command()
@click.option("--user", "user_id", metavar="USER", help="Only threads of this user id.")
@click.option("--agent", metavar="AGENT", help="Only threads of this agent.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="How many threads.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per thread and line, for scripts.")
@db_option
def threads(db: Path | None, user_id: str | None, agent: str | None, limit: int, as_json: bool) -> None:
    """List threads, most recently active first."""
    with _open(db) as store:
        rows = store.list_threads(user_id=user_id, agent=agent, limit=limit)
        counts = {t.id: store.count_messages(t.id) for t in rows}
        path = store.path
    if as_json:
        for t in rows:
            _echo_json({**t.to_dict(), "message_count": counts[t.id]})
    elif not rows:
        which = " ".join(f"{k} {v!r}" for k, v in (("of user", user_id), ("of agent", agent)) if v)
        click.echo(f"No threads{' ' + which if which else ''} in {path}.", err=True)
    else:
        _console().print(threads_table(rows, counts))


@cli.command()
@click.argument("thread_id", metavar="THREAD")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the last N messages.")
@click.option("--json", "as_json", is_flag=True, help="The thread, its messages and tool calls as one JSON object.")
@db_option
def show(db: Path | None, thread_id: str, limit: int | None, as_json: bool) -> None:
    """Print a thread's transcript: messages, tool calls, statuses and token usage."""
    with _open(db) as store:
        thread = _thread(store, thread_id)
        count = store.count_messages(thread.id)
        messages = store.list_messages(thread.id, limit=limit or max(count, 1))
        calls = store.list_tool_calls(thread.id)
        texts = {m.id: store.text(m.id) for m in messages if m.role == "assistant" and m.status in LIVE_STATUSES}
        total = store.usage(thread_id=thread.id)
    if as_json:
        by_message: dict[str, list[dict[str, Any]]] = {}
        for tc in calls:
            by_message.setdefault(tc.message_id, []).append(tc.to_dict())
        rows = [{**m.to_dict(), "text": texts.get(m.id, m.text), "tool_calls": by_message.get(m.id, [])}
                for m in messages]  # fmt: skip
        _echo_json({"thread": thread.to_dict(), "message_count": count, "messages": rows, "usage": usage_dict(total)})
        return
    print_transcript(_console(), thread, messages, calls, texts, total, count)


@cli.command()
@click.argument("thread_id", metavar="THREAD")
@click.option(
    "--until-done",
    is_flag=True,
    help="Exit (status 0) once an answer finished since tail started and none is in progress.",
)
@click.option("--since-start", is_flag=True, help="First print the whole thread, not only the last few messages.")
@click.option(
    "-n", "--context", "context", type=click.IntRange(min=0), default=5, show_default=True,
    help="How many recent messages to print before following.",
)  # fmt: skip
@db_option
def tail(db: Path | None, thread_id: str, until_done: bool, since_start: bool, context: int) -> None:
    """Follow a thread live: new messages, answers as they stream, tool-call progress, final statuses.
    Ctrl-C stops."""
    console = _console()
    with _open(db) as store:
        thread = _thread(store, thread_id)
        events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        follower = Follower(store, thread, console)
        sub = store.subscribe(events.put, thread_id=thread.id)  # first, so nothing slips in between
        try:
            title = f"{thread.title!r} ({thread.id})" if thread.title else thread.id
            stop_when = "until an answer is done" if until_done else "Ctrl-C to stop"
            console.print(Text(f"following {title} in {store.path} · {stop_when}", style="dim"))
            follower.context(None if since_start else context)
            while not follower.gone:
                try:
                    follower.handle(events.get(timeout=0.25))
                    while not events.empty():
                        follower.handle(events.get_nowait())
                except queue.Empty:
                    pass
                if until_done and follower.finished and not follower.in_progress():
                    break
        except KeyboardInterrupt:
            follower.close()
            raise click.exceptions.Exit(130) from None
        finally:
            sub.close()
            follower.close()


@cli.command()
@click.argument("target", metavar="MODULE:AGENT")
@click.option("--max-concurrent", type=click.IntRange(min=1), default=4, show_default=True,
              help="How many answers to write at once.")  # fmt: skip
@_db_option("The store to serve: sets THREADWIDGET_DB before MODULE is imported, so tw.Store() there opens it.")
def serve(target: str, db: Path | None, max_concurrent: int) -> None:
    """Answer prompts left pending for an agent, until Ctrl-C or SIGTERM.

    MODULE:AGENT names a tw.Agent (or a function returning one) in an importable module, e.g.
    `my_agents:support`; the current directory is searched first. Prints one line per answer and a
    summary on exit.
    """
    if db is not None:
        db = db.expanduser().absolute()
        os.environ["THREADWIDGET_DB"] = str(db)
    agent = load_agent(target)
    store, console = agent.store, _console()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # before anything is printed: whoever reads our output may signal us at once
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    if db is not None and store.path.resolve() != db.resolve():
        click.echo(
            f"Warning: agent {agent.name!r} writes to {store.path}, not --db {db}; serving that store. "
            f"Create its store with tw.Store() (no path) in {target.partition(':')[0]} to follow --db.",
            err=True,
        )
    events: queue.SimpleQueue[Event] = queue.SimpleQueue()
    answers = Answers(agent.name)
    sub = store.subscribe(events.put)
    worker = agent.serve(max_concurrent=max_concurrent)
    began = time.monotonic()
    tools = ", ".join(agent.tools) or "none"
    console.print(
        Text(f"serving agent {agent.name!r} (model {agent.model.name}, tools: {tools}) from {store.path}", style="bold")
    )
    console.print(Text("one line per answer · Ctrl-C or SIGTERM to stop", style="dim"))

    def report(m: Message) -> None:
        done = answers.add(m)
        if done is not None:
            console.print(answer_line(store, *done))

    try:
        while not stop.is_set():
            try:
                event = events.get(timeout=0.2)
            except queue.Empty:
                continue
            if isinstance(event.row, Message):
                report(event.row)
    finally:
        console.print(Text("stopping: answers in progress end aborted …", style="dim"))
        worker.stop()
        sub.close()
        while not events.empty():
            row = events.get_nowait().row
            if isinstance(row, Message):
                report(row)
        for mid in sorted(answers.open):  # answers the stop cut short, read back from the store
            report(store.get_message(mid))
        for s, handler in previous.items():
            signal.signal(s, handler)
    took = time.monotonic() - began
    n = sum(answers.counts.values())
    statuses = ", ".join(f"{count} {status}" for status, count in sorted(answers.counts.items()))
    console.print(
        f"served {n} answer{'s' if n != 1 else ''} in {span(took)}{': ' + statuses if statuses else ''}"
        f" · {usage_text(answers.usage)}"
    )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@db_option
def check(db: Path | None, as_json: bool) -> None:
    """Check a store: SQLite's integrity check, then the rows' invariants (gapless deltas, no live
    row without a writer, no expired lease, every answer ended). Reads only; exit 1 on problems."""
    with _open(db) as store:
        problems = store.check()
    if as_json:
        _echo_json({"path": str(store.path), "problems": problems})
    elif problems:
        for problem in problems:
            click.echo(f"problem: {problem}")
    else:
        click.echo(f"ok: {store.path}: no problems found")
    if problems:
        raise click.exceptions.Exit(1)


@cli.command()
@click.option("--thread", "thread_id", metavar="THREAD", help="Only this thread.")
@click.option("--agent", metavar="AGENT", help="Only this agent's answers.")
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@db_option
def usage(db: Path | None, thread_id: str | None, agent: str | None, as_json: bool) -> None:
    """Sum token usage of the store (per agent), of a thread, or of an agent. Failed and aborted
    answers count too."""
    with _open(db) as store:
        if thread_id is not None:
            _thread(store, thread_id)
        if thread_id is not None or agent is not None:
            used = store.usage(thread_id=thread_id, agent=agent)
            if as_json:
                _echo_json(usage_dict(used, thread_id=thread_id, agent=agent))
                return
            label = " · ".join(x for x in (f"thread {thread_id}" if thread_id else "",
                                           f"agent {agent}" if agent else "") if x)  # fmt: skip
            _console().print(usage_table([(label, used)], first="scope"))
            return
        by_agent = store.usage_by_agent()
        total = store.usage()
    if as_json:
        _echo_json({"agents": [usage_dict(u, agent=a) for a, u in by_agent.items()], "total": usage_dict(total)})
    elif not by_agent:
        click.echo(f"No token usage recorded in {store.path} yet.", err=True)
    else:
        rows = [(a if a is not None else "(no agent)", u) for a, u in by_agent.items()]
        _console().print(usage_table(rows, first="agent", total=total))


def _show_warning(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> None:
    click.echo(f"Warning: {message}", err=True)


def main(argv: list[str] | None = None) -> None:
    """The ``threadwidget`` console script."""
    warnings.showwarning = _show_warning
    cli.main(args=argv, prog_name="threadwidget")
