"""How the command line draws rows with rich: times, statuses, usage, tool calls, transcripts, tables.

Everything here returns or prints rich renderables and never touches the store's SQL: the callers pass
rows from the public ``Store`` API. On a terminal assistant text is rendered as markdown; in a pipe
every renderable degrades to plain text (rich drops colours when stdout is not a terminal).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markdown import Markdown
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from .._statuses import OPEN_TOOL_STATUSES
from .._text import one_line
from .._usage import Usage
from ..store import Message, Thread, ToolCall

__all__ = [
    "MARKS",
    "ROLE_STYLES",
    "STYLES",
    "ago",
    "compact_json",
    "duration",
    "local_time",
    "message_header",
    "print_transcript",
    "span",
    "status_line",
    "status_text",
    "threads_table",
    "tool_note",
    "usage_dict",
    "usage_text",
]

STYLES = {
    "pending": "dim",
    "streaming": "cyan",
    "streaming_args": "cyan",
    "running": "cyan",
    "success": "green",
    "failed": "red",
    "error": "red",
    "aborted": "yellow",
}
ROLE_STYLES = {"user": "bold green", "assistant": "bold magenta", "system": "bold blue", "tool": "bold yellow"}
MARKS = {"success": "✓", "failed": "✗", "aborted": "■"}


def ago(ts: float, now: float | None = None) -> str:
    """``just now``, ``42 s ago``, ``5 min ago``, ``3 h ago``, else the local date and time."""
    seconds = (time.time() if now is None else now) - ts
    if seconds < 5:
        return "just now"
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds / 3600:.0f} h ago"
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def local_time(ts: float) -> str:
    """The local time, with the date unless it is today."""
    when = datetime.fromtimestamp(ts)
    return when.strftime("%H:%M:%S" if when.date() == datetime.now().date() else "%Y-%m-%d %H:%M:%S")


def compact_json(text: str | None) -> str:
    """JSON text on one line (``{"a": 1}``); anything else as it is."""
    if not text:
        return ""
    try:
        return json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        return text


def duration(start: float | None, end: float | None) -> str:
    if start is None or end is None:
        return ""
    seconds = max(0.0, end - start)
    if seconds < 0.001:
        return "<1 ms"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def span(seconds: float) -> str:
    """``0.6 s``, ``42 s``, ``5 min 3 s``, ``2 h 4 min``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min {int(seconds % 60)} s"
    return f"{minutes // 60} h {minutes % 60} min"


def status_text(status: str) -> Text:
    return Text(status, style=STYLES.get(status, ""))


def usage_text(usage: Usage | None) -> str:
    if usage is None:
        return ""
    return usage.text


def _join(*parts: str | Text) -> Text:
    out = Text()
    for part in parts:
        if not part:
            continue
        if out:
            out.append(" · ", style="dim")
        out.append(part if isinstance(part, Text) else Text(part, style="dim"))
    return out


def message_header(m: Message, *, usage: bool = True, status: bool = True, agent: str | None = None) -> Text:
    """``assistant  support · scripted · 12:03:04 · success · 40 in / 12 out tokens``"""
    head = Text(m.role, style=ROLE_STYLES.get(m.role, "bold"))
    head.append("  ")
    answer = m.role == "assistant"
    waiting = m.role == "user" and m.status == "pending"
    details: list[str | Text] = [
        (m.agent or "") if answer else "",
        (m.model or "") if answer else "",
        local_time(m.created_at),
        status_text(m.status) if status and (answer or m.status != "success") else "",
        f"waiting for {m.agent or agent or 'an agent'}" if waiting else "",
        usage_text(m.usage) if usage else "",
    ]
    return head.append_text(_join(*details))


def tool_note(tc: ToolCall, *, result: bool = True) -> Text:
    """``⚙ lookup_order running 50% querying warehouse``, or its outcome with the duration."""
    note = Text("  ⚙ ", style="dim")
    note.append(tc.name or "(tool)", style="bold")
    note.append(" ")
    note.append_text(status_text(tc.status))
    if tc.status in OPEN_TOOL_STATUSES:
        if tc.progress is not None:
            note.append(f" {tc.progress:.0%}")
        if tc.progress_note:
            note.append(f" {tc.progress_note}", style="dim")
        return note
    took = duration(tc.started_at, tc.ended_at)
    if took:
        note.append(f" {took}", style="dim")
    if result and tc.status == "success" and tc.result:
        note.append(" → ", style="dim")
        note.append(one_line(compact_json(tc.result), 200))
    if tc.status == "error" and tc.error:
        note.append(f": {one_line(tc.error, 300)}", style="red")
    return note


def status_line(m: Message) -> Text:
    """The end of an answer: ``✓ success · 1.2 s · 40 in / 12 out tokens`` (with the error if any)."""
    line = Text(f"{MARKS.get(m.status, '·')} {m.status}", style=STYLES.get(m.status, ""))
    if m.error:
        line.append(f": {one_line(m.error, 300)}", style=STYLES.get(m.status, ""))
    details = _join(duration(m.created_at, m.updated_at), usage_text(m.usage))
    return line.append(" · ", style="dim").append_text(details) if details else line


def _tool_lines(tc: ToolCall) -> list[Text]:
    head = Text("⚙ ", style="dim").append(tc.name or "(tool)", style="bold")
    head.append(" ").append(one_line(compact_json(tc.arguments), 300), style="dim")
    parts: list[str | Text] = [status_text(tc.status)]
    if tc.status in OPEN_TOOL_STATUSES and tc.progress is not None:
        parts.append(f"{tc.progress:.0%}")
    if tc.progress_note and tc.status in OPEN_TOOL_STATUSES:
        parts.append(tc.progress_note)
    parts.append(duration(tc.started_at, tc.ended_at))
    head.append("  ").append_text(_join(*parts))
    lines = [head]
    if tc.status == "success" and tc.result:
        lines.append(Text("  → ", style="dim").append(one_line(compact_json(tc.result), 500)))
    if tc.error:
        lines.append(Text("  ✗ ", style="red").append(one_line(tc.error, 500), style="red"))
    return lines


def _indent(text: Text, by: int = 2) -> Text:
    out = Text()
    for i, line in enumerate(text.split("\n", allow_blank=True)):
        if i:
            out.append("\n")
        if line:
            out.append(" " * by)
        out.append_text(line)
    return out


def print_transcript(
    console: Console,
    thread: Thread,
    messages: Sequence[Message],
    calls: Iterable[ToolCall],
    texts: dict[str, str],
    total: Usage,
    count: int,
) -> None:
    """A thread's header, its messages with their tool calls, and the thread's token total.
    ``texts`` holds the text streamed so far of answers still in progress."""
    by_message: dict[str, list[ToolCall]] = {}
    for tc in calls:
        by_message.setdefault(tc.message_id, []).append(tc)
    console.print(Text(thread.title or "(untitled thread)", style="bold"))
    console.print(
        _join(
            thread.id,
            f"agent {thread.agent}" if thread.agent else "",
            f"user {thread.user_id}" if thread.user_id else "",
            f"{count} message{'s' if count != 1 else ''}",
            f"active {ago(thread.updated_at)}",
        )
    )
    if len(messages) < count:
        console.print(Text(f"… {count - len(messages)} earlier message(s) not shown", style="dim"))
    for m in messages:
        console.print()
        console.print(message_header(m, agent=thread.agent))
        text = texts.get(m.id, m.text)
        if text.strip():
            if m.role == "assistant" and console.is_terminal:
                console.print(Padding(Markdown(text), (0, 0, 0, 2)))
            else:
                console.print(_indent(Text(text.rstrip("\n"))))
        for tc in by_message.get(m.id, []):
            for line in _tool_lines(tc):
                console.print(_indent(line))
        if m.error:
            console.print(_indent(Text(f"{m.status}: {m.error}", style=STYLES.get(m.status, ""))))
    console.print()
    console.print(Text("total  ", style="bold").append(f"{usage_text(total)} ({total.total_tokens:,} in all)"))


def threads_table(threads: Sequence[Thread], counts: dict[str, int]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("id", style="cyan", no_wrap=True)
    table.add_column("title", overflow="fold")
    table.add_column("agent")
    table.add_column("user")
    table.add_column("messages", justify="right")
    table.add_column("last activity", no_wrap=True)
    for t in threads:
        table.add_row(
            t.id,
            t.title or Text("(untitled)", style="dim"),
            t.agent or "",
            t.user_id or "",
            str(counts.get(t.id, 0)),
            ago(t.updated_at),
        )
    return table


def usage_dict(usage: Usage, **extra: Any) -> dict[str, Any]:
    return {**extra, **usage.to_dict(), "total_tokens": usage.total_tokens}
