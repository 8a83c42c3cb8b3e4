"""``threadwidget check``: SQLite's integrity check and the store's row invariants, read only."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import db_option, echo_json, open_store

__all__ = ["check"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@db_option()
def check(db: Path | None, as_json: bool) -> None:
    """Check a store: SQLite's integrity check, then the rows' invariants (gapless deltas, no live
    row without a writer, no expired lease, every answer ended). Reads only; exit 1 on problems."""
    with open_store(db) as store:
        problems = store.check()
    if as_json:
        echo_json({"path": str(store.path), "problems": problems})
    elif problems:
        for problem in problems:
            click.echo(f"problem: {problem}")
    else:
        click.echo(f"ok: {store.path}: no problems found")
    if problems:
        raise click.exceptions.Exit(1)
