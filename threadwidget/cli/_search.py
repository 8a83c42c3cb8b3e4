"""``threadwidget search QUERY``: find messages in every thread, the matched words highlighted."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from ..store import SearchHit
from ._common import console, db_option, echo_json, open_store
from ._render import ROLE_STYLES, ago

__all__ = ["search"]

SYNTAX = 'Words must all appear; "a phrase", prefix*, a OR b, -excluded.'


def hits_table(hits: list[SearchHit]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("thread", style="cyan", no_wrap=True)
    table.add_column("title", overflow="fold", max_width=30)
    table.add_column("who", no_wrap=True)
    table.add_column("when", no_wrap=True)
    table.add_column("message", overflow="fold")
    for hit in hits:
        snippet = Text()
        for text, marked in hit.parts():
            snippet.append(text, style="bold reverse" if marked else "")  # plain text, styled by rich
        table.add_row(
            hit.thread.id,
            hit.thread.title or Text("(untitled)", style="dim"),
            Text(hit.message.role, style=ROLE_STYLES.get(hit.message.role, "")),
            ago(hit.message.created_at),
            snippet,
        )
    return table


@click.command(epilog=SYNTAX)
@click.argument("query", metavar="QUERY")
@click.option("--user", "user_id", metavar="USER", help="Only threads of this user id.")
@click.option("--thread", "thread_id", metavar="THREAD", help="Only this thread.")
@click.option("--agent", metavar="AGENT", help="Only messages of this agent.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many messages.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message and line: ids, snippet, marks.")
@db_option()
def search(db: Path | None, query: str, user_id: str | None, thread_id: str | None, agent: str | None,
           limit: int, as_json: bool) -> None:  # fmt: skip
    """Find messages whose text matches QUERY in every thread, best match first."""
    with open_store(db) as store:
        hits = store.search(query, user_id=user_id, thread_id=thread_id, agent=agent, limit=limit)
        path = store.path
    if as_json:
        for hit in hits:
            echo_json(hit.to_dict())
    elif not hits:
        click.echo(f"No message matches {query!r} in {path}.", err=True)
    else:
        console().print(hits_table(hits))
