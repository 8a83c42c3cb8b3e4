"""The ``threadwidget`` command line: list, show, follow and serve the threads of a store.

One module per command group (``_threads``: threads, show; ``_usage``; ``_search``: search, reindex; ``_tail``;
``_serve``; ``_check``; ``_copy``; ``_nbval``; ``_approve``: approve, deny, pending; ``_eval``; ``_export``:
export, import),
``_render`` draws with rich, ``_common`` holds ``--db`` and the store helpers. It uses only the public
API (``Store`` methods, ``store.subscribe``, ``Agent.serve``). Errors are one ``Error: ...`` line on
stderr and exit status 1. click and rich load here, never on ``import threadwidget``.
"""

from __future__ import annotations

import sqlite3
import warnings
from typing import Any

import click

from .._errors import ThreadwidgetError
from .._version import __version__
from ._approve import approve, deny, pending
from ._check import check
from ._copy import copy
from ._eval import eval_cases
from ._export import export, import_
from ._nbval import nbval_sanitize
from ._search import reindex, search
from ._serve import serve
from ._tail import tail
from ._threads import show, threads
from ._usage import usage

__all__ = ["main"]


def _show_warning(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> None:
    click.echo(f"Warning: {message}", err=True)


class _Group(click.Group):
    """Turns threadwidget's own errors into one ``Error: ...`` line and exit status 1, and warnings
    into one ``Warning: ...`` line."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():  # the caller's warning display comes back afterwards
            warnings.showwarning = _show_warning
            return super().main(*args, **kwargs)

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


@click.group("threadwidget", cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="threadwidget", message="%(prog)s %(version)s")
def main() -> None:
    """Look into a threadwidget store from a terminal: list threads, show a transcript, search
    messages, follow answers as they stream, serve an agent, sum token usage.

    Every command takes --db PATH|URL (a file, or a postgresql:// URL); without it the store is
    $THREADWIDGET_DB, else the per-user file.
    """


for _command in (
    threads,
    show,
    search,
    reindex,
    tail,
    serve,
    usage,
    check,
    copy,
    nbval_sanitize,
    approve,
    deny,
    pending,
    eval_cases,
    export,
    import_,
):
    main.add_command(_command)
