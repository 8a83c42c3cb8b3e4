"""What every command shares: the ``--db`` option, opening an existing store, finding a thread, output."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource
from rich.console import Console

from .._errors import NotFoundError
from ..store import Store, Thread, default_path, is_server_url

if TYPE_CHECKING:
    from click.types import OptionHelpExtra

__all__ = ["ENV", "console", "db_option", "echo_json", "get_thread", "open_store"]

F = TypeVar("F", bound=Callable[..., Any])

#: the environment variable that names the store, for ``tw.Store()`` and for ``--db``
ENV = "THREADWIDGET_DB"


def _home_short(path: Path) -> str:
    text, home = str(path), str(Path.home())
    return "~" + text[len(home) :] if text.startswith(home + os.sep) else text


class _DbOption(click.Option):
    """``--db``, whose help names the store used without it, as the environment is when help is shown."""

    def get_help_extra(self, ctx: click.Context) -> OptionHelpExtra:
        extra = super().get_help_extra(ctx)
        if os.environ.get(ENV):
            shown = os.environ[ENV] if is_server_url(os.environ[ENV]) else _home_short(default_path())
            extra["envvars"] = (f"{ENV}={shown}",)
        else:
            extra["default"] = _home_short(default_path())
        return extra


class StoreLocation(click.ParamType):
    """A store file's path (``~`` expanded), or a ``postgresql://`` URL as given."""

    name = "store"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path | str:
        if isinstance(value, Path) or not is_server_url(value):
            return Path(value).expanduser()
        return str(value)


def db_option(help_text: str = "The store: a file, or a postgresql:// URL.") -> Callable[[F], F]:
    return click.option(
        "--db",
        cls=_DbOption,
        type=StoreLocation(),
        envvar=ENV,
        show_envvar=True,
        metavar="PATH|URL",
        help=help_text,
    )


def db_source(ctx: click.Context) -> str:
    """Where ``--db``'s value came from, as the user would name it."""
    source = ctx.get_parameter_source("db")
    if source is ParameterSource.COMMANDLINE:
        return "--db"
    return f"${ENV}" if source is ParameterSource.ENVIRONMENT else "default"


def open_store(db: Path | str | None) -> Store:
    """Open an existing store for reading; never create a file (a server's schema is created empty)."""
    if isinstance(db, str):
        return Store(db)
    path = db if db is not None else default_path()
    if not path.exists():
        raise click.ClickException(
            f"the store {path} ({db_source(click.get_current_context())}) does not exist. Pass --db PATH of an "
            f"existing store (or set {ENV}); a new store is created by tw.Store(path) or "
            "`threadwidget serve MODULE:AGENT --db PATH`."
        )
    return Store(path)


def get_thread(store: Store, thread_id: str) -> Thread:
    try:
        return store.get_thread(thread_id)
    except NotFoundError:
        raise click.ClickException(
            f"no thread with id {thread_id!r} in {store.path}. List the threads with "
            f"`threadwidget threads --db {store.path}`."
        ) from None


def console() -> Console:
    out = Console(highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = 200  # a pipe gets whole lines and table cells, not ones cut at 80 columns
        out.soft_wrap = True
    return out


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False))
