"""``threadwidget search QUERY``: find messages in every thread (by words, by meaning or both), the
matched words highlighted; ``threadwidget reindex --model M``: embed the store's messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from ..store import SearchHit, Store
from ._common import console, db_option, echo_json, open_store
from ._render import ROLE_STYLES, ago

__all__ = ["reindex", "search"]

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


def embedding_options(fn: Any) -> Any:
    for option in reversed([
        click.option("--model", metavar="MODEL", help="Embedding model (default for search: the stored vectors')."),
        click.option("--dimensions", type=click.IntRange(min=1), metavar="N", help="Ask the model for N dimensions."),
        click.option("--base-url", metavar="URL", envvar="OPENAI_BASE_URL",
                     help="OpenAI-compatible server [$OPENAI_BASE_URL, else the OpenAI API]; key: $OPENAI_API_KEY."),
    ]):  # fmt: skip
        fn = option(fn)
    return fn


def make_embedder(store: Store, model: str | None, dimensions: int | None, base_url: str | None) -> Any:
    """An ``OpenAIEmbedding`` of ``model``, else of the stored vectors' model and dimension."""
    from ..agent import OpenAIEmbedding

    if model is None:
        stored = store.embedding_model()
        if stored is None:
            raise click.ClickException(
                f"the store {store.path} has no vectors yet; embed its messages first: "
                "threadwidget reindex --model text-embedding-3-small"
            )
        model, dimensions = stored[0], dimensions or stored[1]
    return OpenAIEmbedding(model, dimensions=dimensions, base_url=base_url)


@click.command(epilog=SYNTAX + " --mode vector or hybrid also finds messages by meaning (their vectors).")
@click.argument("query", metavar="QUERY")
@click.option("--user", "user_id", metavar="USER", help="Only threads of this user id.")
@click.option("--thread", "thread_id", metavar="THREAD", help="Only this thread.")
@click.option("--agent", metavar="AGENT", help="Only messages of this agent.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="How many messages.")
@click.option("--mode", type=click.Choice(["text", "vector", "hybrid"]), default="text", show_default=True,
              help="By words, by meaning, or both.")  # fmt: skip
@embedding_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per message and line: ids, snippet, marks.")
@db_option()
def search(db: Path | None, query: str, user_id: str | None, thread_id: str | None, agent: str | None,
           limit: int, mode: str, model: str | None, dimensions: int | None, base_url: str | None,
           as_json: bool) -> None:  # fmt: skip
    """Find messages whose text matches QUERY in every thread, best match first."""
    with open_store(db) as store:
        embedder = make_embedder(store, model, dimensions, base_url) if mode != "text" else None
        hits = store.search(query, user_id=user_id, thread_id=thread_id, agent=agent, limit=limit, mode=mode,
                            embedder=embedder)  # fmt: skip
        path = store.path
    if as_json:
        for hit in hits:
            echo_json(hit.to_dict())
    elif not hits:
        click.echo(f"No message matches {query!r} in {path}.", err=True)
    else:
        console().print(hits_table(hits))


@click.command()
@embedding_options
@db_option()
def reindex(db: Path | None, model: str | None, dimensions: int | None, base_url: str | None) -> None:
    """Give every final message a vector of --model, for search by meaning: the vectors of another
    model or dimension are replaced. Run it again after an interruption: it goes on."""
    from rich.console import Console
    from rich.progress import Progress

    if model is None:
        raise click.UsageError("--model is required, e.g. --model text-embedding-3-small")
    with open_store(db) as store, Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"Embedding with {model}", total=None)
        done = store.reindex(make_embedder(store, model, dimensions, base_url),
                             progress=lambda n, total: bar.update(task, completed=n, total=total))  # fmt: skip
        path = store.path
    click.echo(f"Embedded {done} message{'s' if done != 1 else ''} with {model} in {path}.")
