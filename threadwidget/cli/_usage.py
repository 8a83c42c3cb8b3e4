"""``threadwidget usage``: tokens and dollars per day, agent, model, thread or user, with bars.

The numbers are ``store.costs(by=...)`` (exact decimal dollars, priced with ``--prices`` or the
defaults and ``$THREADWIDGET_PRICES``); ``--csv`` and ``--json`` write them in full precision for
spreadsheets and scripts, so their sums equal ``store.cost(...)`` to the last digit.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from .._prices import Cost, Prices
from ..store._spend import BY, parse_since
from ._common import console, db_option, echo_json, get_thread, open_store

__all__ = ["usage"]

BAR_WIDTH = 30
_EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(parts: tuple[float, float], most: float, width: int = BAR_WIDTH) -> Text:
    """A bar of ``sum(parts) / most`` of ``width`` cells, input tokens then output tokens (stacked)."""
    text = Text()
    if most <= 0:
        return text
    cells = [p / most * width for p in parts]
    done = 0.0
    for size, style in zip(cells, ("blue", "magenta"), strict=True):
        whole = int(done + size) - int(done)
        text.append("█" * whole, style=style)
        done += size
    rest = int((done - int(done)) * 8)
    if rest:
        text.append(_EIGHTHS[rest], style="magenta" if parts[1] else "blue")
    return text


def _usd(cost: Cost) -> str:
    return "" if cost.usd is None else f"{cost.usd.normalize():f}"


def _label(by: str, key: str | None) -> str:
    return key if key is not None else {"agent": "(no agent)", "model": "(no model)", "user": "(no user)"}.get(by, "-")


@click.command()
@click.option("--by", type=click.Choice(BY), default="agent", show_default=True, help="Group per this.")
@click.option("--since", metavar="WHEN", help="Only answers since then: 7d, 24h, 30m, today, or a date (UTC).")
@click.option("--thread", "thread_id", metavar="THREAD", help="Only this thread.")
@click.option("--agent", metavar="AGENT", help="Only this agent's answers.")
@click.option("--user", "user_id", metavar="USER", help="Only the threads of this user.")
@click.option("--model", metavar="MODEL", help="Only answers of this model.")
@click.option(
    "--prices", "prices_file", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
    help="A TOML or JSON file of prices (USD per million tokens) over the defaults.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="As JSON (dollars as exact decimal strings).")
@click.option("--csv", "as_csv", is_flag=True, help="As CSV, one row per group, for spreadsheets.")
@db_option()
def usage(
    db: Path | None, by: str, since: str | None, thread_id: str | None, agent: str | None, user_id: str | None,
    model: str | None, prices_file: Path | None, as_json: bool, as_csv: bool,
) -> None:  # fmt: skip
    """Tokens and what they cost, per day, agent, model, thread or user, with bars (input tokens,
    then output). Failed and aborted answers count; "no price" marks models without a price, "~"
    usage that was estimated."""
    if as_json and as_csv:
        raise click.UsageError("--json and --csv are two formats; pick one.")
    prices = Prices.from_file(prices_file) if prices_file is not None else None
    bound = parse_since(since)  # a bad --since fails before the store opens
    scope: dict[str, Any] = {"thread_id": thread_id, "agent": agent, "user_id": user_id, "model": model}
    with open_store(db) as store:
        if thread_id is not None:
            get_thread(store, thread_id)
        groups = store.costs(by, since=bound, prices=prices, **scope)  # type: ignore[arg-type]
        total = store.cost(since=bound, prices=prices, **scope)
        path = store.path
    if as_csv:
        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow([by, "input_tokens", "cached_input_tokens", "output_tokens", "total_tokens", "usd",
                      "unpriced_tokens", "unpriced_models", "estimated"])  # fmt: skip
        for key, cost in groups.items():
            u = cost.usage
            out.writerow([_label(by, key), u.input_tokens, u.cached_input_tokens, u.output_tokens, u.total_tokens,
                          _usd(cost),
                          cost.unpriced_tokens, " ".join(cost.unpriced_models), int(cost.estimated)])  # fmt: skip
        return
    if as_json:
        filters = {k: v for k, v in scope.items() if v is not None}
        echo_json({"by": by, "since": since, **filters, "groups": [{by: key, **cost.to_dict()}
                   for key, cost in groups.items()], "total": total.to_dict()})  # fmt: skip
        return
    if not groups:
        click.echo(f"No token usage recorded in {path}{' since ' + since if since else ''} yet.", err=True)
        return
    console().print(usage_table(by, groups, total))


def usage_table(by: str, groups: dict[str | None, Cost], total: Cost) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False, show_footer=True)
    table.add_column(by, footer="total")
    cached = bool(total.usage.cached_input_tokens)  # a column only when some input came from a prompt cache
    columns = [("input", total.usage.input_tokens), ("cached", total.usage.cached_input_tokens),
               ("output", total.usage.output_tokens), ("total", total.usage.total_tokens)]  # fmt: skip
    for name, value in columns if cached else [c for c in columns if c[0] != "cached"]:
        table.add_column(name, justify="right", footer=f"{value:,}")
    table.add_column("cost", justify="right", footer=total.text)
    table.add_column("tokens (input, output)", no_wrap=True)
    most = max(float(c.usage.total_tokens) for c in groups.values())
    for key, cost in groups.items():
        u = cost.usage
        shown = Text(cost.text, style="dim" if cost.usd is None else "")
        counts = [u.input_tokens, *([u.cached_input_tokens] if cached else []), u.output_tokens, u.total_tokens]
        table.add_row(_label(by, key), *(f"{n:,}" for n in counts), shown,
                      bar((u.input_tokens, u.output_tokens), most))  # fmt: skip
    return table
