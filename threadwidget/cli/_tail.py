"""``threadwidget tail``: print a thread's changes as they commit, streaming answers as they stream.

The command subscribes first, then reads what is already there, so nothing committed in between is
lost; what arrives twice is dropped by the delta ``seq`` (each message's deltas count 1, 2, 3 …)
and by remembering which messages already printed their final status. All printing happens on the
caller's thread: the feed's callback only queues events.
"""

from __future__ import annotations

import queue
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import click
from rich.console import Console, RenderableType
from rich.text import Text

from .._statuses import LIVE_STATUSES
from ..store import Delta, Event, Message, Store, Thread, ToolCall
from ._common import console, db_option, get_thread, open_store
from ._render import message_header, status_line, tool_note

__all__ = ["Follower", "tail"]


@dataclass
class _Shown:
    """What has been printed of one message."""

    role: str
    seq: int = 0  # the last delta printed
    text: str = ""  # the text printed so far
    final: bool = False


class Follower:
    """Prints one thread's messages, streamed text, tool-call notes and answer statuses."""

    def __init__(self, store: Store, thread: Thread, console: Console, out: TextIO | None = None):
        self.store = store
        self.thread = thread
        self.console = console
        self.out = out or sys.stdout
        self.shown: dict[str, _Shown] = {}
        self.notes: dict[str, tuple[object, ...]] = {}  # tool call id -> what its last note said
        self.floor = 0  # messages of earlier turns are history, not followed
        self.open_line: str | None = None  # the message whose text ends the current line
        self.finished = False  # an answer reached a final status while following
        self.gone = False  # the thread was deleted
        self.recent: int | None = 5  # how many messages context() printed (None: all)

    # -- output -----------------------------------------------------------------------------------

    def _end_line(self) -> None:
        if self.open_line is not None:
            self.out.write("\n")
            self.out.flush()
            self.open_line = None

    def _print(self, renderable: RenderableType = "") -> None:
        self._end_line()
        self.console.print(renderable)

    def _text(self, message_id: str, text: str) -> None:
        """Raw streamed text, written as it comes (no newline added), each line indented."""
        if not text:
            return
        if self.open_line not in (None, message_id):  # two answers streaming at once
            self._end_line()
            self._print(Text("  ↳ continued", style="dim"))
        at_start, pieces = self.open_line is None, []
        for line in text.splitlines(keepends=True):
            pieces.append(f"  {line}" if at_start and line != "\n" else line)  # indented like `show`
            at_start = line.endswith("\n")
        self.out.write("".join(pieces))
        self.out.flush()
        self.open_line = None if at_start else message_id

    # -- messages ---------------------------------------------------------------------------------

    def context(self, limit: int | None) -> None:
        """Print the last ``limit`` messages of the thread's current path (``None``: all), and any
        answer still in progress."""
        self.recent = limit
        everything = max(self.store.count_messages(self.thread.id), 1)
        recent = self.store.list_messages(self.thread.id, limit=everything if limit is None else max(limit, 20))
        shown = recent if limit is None else recent[len(recent) - limit :] if limit else []
        ids = {m.id for m in shown}
        early = [m for m in recent if m.role == "assistant" and m.status in LIVE_STATUSES and m.id not in ids]
        messages = early + shown
        self.floor = messages[0].turn if messages else (recent[-1].turn + 1 if recent else 0)
        calls: dict[str, list[ToolCall]] = {}
        if messages:
            for tc in self.store.list_tool_calls(self.thread.id, on_path=True):
                calls.setdefault(tc.message_id, []).append(tc)
        for m in messages:
            self.message(m, calls=calls.get(m.id, []))

    def message(self, m: Message, *, calls: list[ToolCall] | None = None) -> None:
        """Show a message once: its header, its text, and (for answers) its final status line."""
        shown = self.shown.get(m.id)
        if shown is None:
            if m.turn < self.floor or not m.on_path:
                return  # an older message changed, or one of another branch: not part of what is followed
            shown = self.shown[m.id] = _Shown(m.role)
            self._print()
            self._print(message_header(m, usage=False, status=False, agent=self.thread.agent))
            if m.role != "assistant":
                self._text(m.id, m.text.rstrip("\n") + "\n")
                shown.final = True
        if m.role == "assistant" and not shown.final:
            self._catch_up(m.id, shown)
            if m.is_final and m.text.startswith(shown.text):
                self._text(m.id, m.text[len(shown.text) :])
        for tc in calls or ():
            self.tool_call(tc)
        if m.role != "assistant" or shown.final or not m.is_final:
            return
        shown.final = True
        if m.ends_answer or m.status != "success":  # a step that called tools goes on
            self._print(status_line(m))

    def _catch_up(self, message_id: str, shown: _Shown) -> None:
        for d in self.store.list_deltas(message_id, after_seq=shown.seq):
            self._delta(d, shown)

    def _delta(self, d: Delta, shown: _Shown) -> None:
        if d.seq != shown.seq + 1:
            return
        shown.seq = d.seq
        shown.text += d.text
        self._text(d.message_id, d.text)

    def tool_call(self, tc: ToolCall) -> None:
        if tc.status == "streaming_args":
            return  # the arguments are still arriving: the note comes when it runs
        key = (tc.status, tc.progress, tc.progress_note)
        if self.notes.get(tc.id) != key:
            self.notes[tc.id] = key
            self._print(tool_note(tc))

    # -- events -----------------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        row = event.row
        if event.kind == "resync":
            for m in self.store.list_messages(self.thread.id, limit=20):
                self.message(m)
        elif event.kind == "path":
            self.switched()
        elif event.kind == "thread" and event.op == "delete":
            self._print(Text(f"thread {self.thread.id} was deleted", style="yellow"))
            self.gone = True
        elif isinstance(row, Message):
            if row.role == "assistant" and row.ends_answer:
                self.finished = True  # every queued event happened after tail subscribed
            self.message(row)
        elif isinstance(row, Delta):
            shown = self._known(row.message_id)
            if shown is None or shown.final or row.seq <= shown.seq:
                return
            if row.seq == shown.seq + 1:
                self._delta(row, shown)
            else:  # a gap: read the missing pieces from the store
                self._catch_up(row.message_id, shown)
        elif isinstance(row, ToolCall) and self._known(row.message_id) is not None:
            self.tool_call(row)

    def switched(self) -> None:
        """The thread shows another branch now (an edit, a regeneration, a switch): print its last
        messages again, as ``context`` did."""
        self._print(Text("the thread switched to another branch; it now reads:", style="dim"))
        self.shown.clear()
        self.notes.clear()
        self.context(self.recent)

    def _known(self, message_id: str) -> _Shown | None:
        if message_id not in self.shown:
            try:
                self.message(self.store.get_message(message_id))
            except KeyError:  # deleted meanwhile
                return None
        return self.shown.get(message_id)

    def in_progress(self) -> bool:
        """True while an answer is being written in the thread, or a prompt (or regeneration) waits."""
        thread_id = self.thread.id
        return (
            self.store.answer_in_progress(thread_id) is not None
            or bool(self.store.queued_prompts(thread_id))
            or bool(self.store.queued_regenerations(thread_id))
        )

    def close(self) -> None:
        self._end_line()


@click.command()
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
@db_option()
def tail(db: Path | None, thread_id: str, until_done: bool, since_start: bool, context: int) -> None:
    """Follow a thread live: new messages, answers as they stream, tool-call progress, final statuses.
    Ctrl-C stops."""
    out = console()
    with open_store(db) as store:
        thread = get_thread(store, thread_id)
        events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        follower = Follower(store, thread, out)
        sub = store.subscribe(events.put, thread_id=thread.id)  # first, so nothing slips in between
        try:
            title = f"{thread.title!r} ({thread.id})" if thread.title else thread.id
            stop_when = "until an answer is done" if until_done else "Ctrl-C to stop"
            out.print(Text(f"following {title} in {store.path} · {stop_when}", style="dim"))
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
