"""``threadwidget export`` and ``import``: take a thread away (Markdown, a notebook, JSON) and bring
it back into another store."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import click

from ..store import Store
from ._common import db_option, get_thread, open_store

__all__ = ["export", "import_"]

_SUFFIX = {"markdown": ".md", "ipynb": ".ipynb", "json": ".json"}


@click.command()
@click.argument("thread_id", metavar="THREAD")
@click.option(
    "--format", "fmt", type=click.Choice(["markdown", "ipynb", "json"]), default="markdown", show_default=True,
    help="markdown: to read; ipynb: a Jupyter notebook (messages as Markdown cells, tool calls as code cells "
    "with their arguments and results); json: every row, for `threadwidget import`.",
)  # fmt: skip
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Write to this file (default: standard output).",
)  # fmt: skip
@db_option()
def export(db: Path | None, thread_id: str, fmt: str, output: Path | None) -> None:
    """Export a thread: its current path as Markdown or a notebook, or every branch as JSON."""
    with open_store(db) as store:
        thread = get_thread(store, thread_id)
        text = store.export(thread.id, format=fmt)
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    if output.suffix == "" and fmt in _SUFFIX:
        output = output.with_suffix(_SUFFIX[fmt])
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote thread {thread.id} to {output}", err=True)


@click.command("import")
@click.argument("source", type=click.File("r", encoding="utf-8"), metavar="FILE")
@db_option("The store to import into: a file (created when missing), or a postgresql:// URL.")
def import_(db: Path | None, source: TextIO) -> None:
    """Restore a thread from FILE (`threadwidget export THREAD --format json`, or - for standard
    input) into the store, row for row: ids, texts, times, metadata and every branch. Refused,
    with nothing written, when the store already has the thread."""
    data = source.read()
    with Store(db) as store:
        thread = store.import_thread(data)
        count = store.count_messages(thread.id)
        click.echo(f"imported thread {thread.id} ({thread.title or 'untitled'}, {count} messages) into {store.path}")
