"""``threadwidget nbval-sanitize``: the path of the sanitize file for nbval shipped in the package."""

from __future__ import annotations

import click

from ..testing import NBVAL_SANITIZE

__all__ = ["nbval_sanitize"]


@click.command("nbval-sanitize")
def nbval_sanitize() -> None:
    """Print the path of threadwidget's sanitize file for nbval, which makes the outputs of
    notebooks that use threadwidget compare equal from run to run (random ids, times, durations,
    temporary folders):

    \b
        pytest --nbval --nbval-sanitize-with "$(threadwidget nbval-sanitize)" notebooks/
    """
    click.echo(str(NBVAL_SANITIZE))
