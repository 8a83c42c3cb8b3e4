"""``threadwidget copy SRC DST``: move a store's threads to another store (SQLite ⇄ PostgreSQL)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..store import Store, copy_store
from ._common import StoreLocation, open_store

__all__ = ["copy"]


@click.command()
@click.argument("source", type=StoreLocation(), metavar="SRC")
@click.argument("destination", type=StoreLocation(), metavar="DST")
def copy(source: Path | str, destination: Path | str) -> None:
    """Copy every thread of store SRC into store DST (a file or a postgresql:// URL; DST is created
    when missing): messages, deltas and tool calls with their ids, texts and times. Rows DST already
    has are left alone, so running it again copies only what is missing."""
    with (
        open_store(source) as src,
        Store(destination) as dst,
        click.progressbar(length=1, label="copying threads", file=sys.stderr) as bar,
    ):

        def progress(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        report = copy_store(src, dst, progress=progress)
    click.echo(
        f"copied {report.threads} threads, {report.messages} messages, {report.deltas} deltas and "
        f"{report.tool_calls} tool calls from {src.path} to {dst.path}"
    )
