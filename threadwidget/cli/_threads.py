"""``threadwidget threads`` and ``show``: list the threads, print a transcript."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .._statuses import LIVE_STATUSES
from ._common import console, db_option, echo_json, get_thread, open_store
from ._render import print_transcript, threads_table, usage_dict

__all__ = ["show", "threads"]


@click.command()
@click.option("--user", "user_id", metavar="USER", help="Only threads of this user id.")
@click.option("--agent", metavar="AGENT", help="Only threads of this agent.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="How many threads.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per thread and line, for scripts.")
@db_option()
def threads(db: Path | None, user_id: str | None, agent: str | None, limit: int, as_json: bool) -> None:
    """List threads, most recently active first."""
    with open_store(db) as store:
        rows = store.list_threads(user_id=user_id, agent=agent, limit=limit)
        counts = {t.id: store.count_messages(t.id) for t in rows}
        path = store.path
    if as_json:
        for t in rows:
            echo_json({**t.to_dict(), "message_count": counts[t.id]})
    elif not rows:
        which = " ".join(f"{k} {v!r}" for k, v in (("of user", user_id), ("of agent", agent)) if v)
        click.echo(f"No threads{' ' + which if which else ''} in {path}.", err=True)
    else:
        console().print(threads_table(rows, counts))


@click.command()
@click.argument("thread_id", metavar="THREAD")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the last N messages.")
@click.option("--json", "as_json", is_flag=True, help="The thread, its messages and tool calls as one JSON object.")
@db_option()
def show(db: Path | None, thread_id: str, limit: int | None, as_json: bool) -> None:
    """Print a thread's transcript: messages, tool calls, statuses and token usage."""
    with open_store(db) as store:
        thread = get_thread(store, thread_id)
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
        echo_json({"thread": thread.to_dict(), "message_count": count, "messages": rows, "usage": usage_dict(total)})
        return
    print_transcript(console(), thread, messages, calls, texts, total, count)
