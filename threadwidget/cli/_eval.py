"""``threadwidget eval``: run eval cases against an agent; exit 1 when one fails; JUnit XML for CI."""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

from ._common import db_option, open_store
from ._serve import load_agent

__all__ = ["eval_cases"]


@click.command("eval")
@click.argument("cases", nargs=-1, required=True)
@click.option("--agent", "target", required=True, metavar="MODULE:AGENT",
              help="The agent to evaluate: a tw.Agent (or a function returning one) in a module.")  # fmt: skip
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="Also write the results as JUnit XML.")
@click.option("--tools", type=click.Choice(["recorded", "live"]), default="recorded", show_default=True,
              help="Stored threads: give tool calls the recorded results, or run the tools.")  # fmt: skip
@click.option("--unmatched", type=click.Choice(["fail", "live"]), default="fail", show_default=True,
              help="With --tools recorded: a call nothing recorded fails the case, or runs the tool.")  # fmt: skip
@db_option("The store holding the threads to replay (without --db: the agent's store).")
def eval_cases(cases: tuple[str, ...], target: str, junit: Path | None, tools: str, unmatched: str,
               db: Path | str | None) -> None:  # fmt: skip
    """Run eval CASES against an agent: stored thread ids (replayed) and .json case files (prompts
    plus expectations; .yaml with PyYAML). Prints each case, PASS or FAIL with a diff naming the
    expectation; exit status 1 when a case fails."""
    from ..agent import evaluate

    agent = load_agent(target)
    for item in cases:
        if item.endswith((".json", ".yaml", ".yml")) and not Path(item).is_file():
            raise click.ClickException(f"no case file {item!r}; pass the path of an existing .json file.")
    given = click.get_current_context().get_parameter_source("db") is ParameterSource.COMMANDLINE
    store = open_store(db) if given else None  # else the agent's own store
    try:
        report = evaluate(list(cases), agent, store=store, tools=tools, unmatched=unmatched)  # type: ignore[arg-type]
    finally:
        if store is not None:
            store.close()
    click.echo(str(report))
    if junit is not None:
        report.write_junit(junit)
        click.echo(f"JUnit XML: {junit}")
    if report.failed:
        raise click.exceptions.Exit(1)
