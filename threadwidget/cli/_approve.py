"""``threadwidget approve`` and ``deny``: decide a tool call that waits for a person, from a terminal."""

from __future__ import annotations

from pathlib import Path

import click

from .._people import current_user
from ._common import db_option, echo_json, open_store

__all__ = ["approve", "deny", "pending"]

_BY = "Who decides (recorded with the decision); default: $JUPYTERHUB_USER, else your login name."


@click.command()
@click.argument("tool_call_id", metavar="ID")
@click.option("--by", metavar="USER", default=None, help=_BY)
@click.option("--note", default=None, help="A note recorded with the approval.")
@db_option()
def approve(db: Path | None, tool_call_id: str, by: str | None, note: str | None) -> None:
    """Approve tool call ID (it waits as awaiting_approval): the tool runs, and the answer goes on
    in whichever process serves the agent."""
    with open_store(db) as store:
        call = store.approve_tool_call(tool_call_id, by=by or current_user(), note=note)
    click.echo(f"{call.id} ({call.name}) approved by {call.decided_by}.")


@click.command()
@click.argument("tool_call_id", metavar="ID")
@click.option("--by", metavar="USER", default=None, help=_BY)
@click.option("--reason", default=None, help="Why: recorded, and told to the model.")
@db_option()
def deny(db: Path | None, tool_call_id: str, by: str | None, reason: str | None) -> None:
    """Deny tool call ID: it never runs; the model is told who denied it and why, and the answer goes on."""
    with open_store(db) as store:
        call = store.deny_tool_call(tool_call_id, by=by or current_user(), reason=reason)
    click.echo(f"{call.id} ({call.name}) {call.error}.")


@click.command()
@click.option("--thread", "thread_id", metavar="THREAD", default=None, help="Only in this thread.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per tool call and line.")
@db_option()
def pending(db: Path | None, thread_id: str | None, as_json: bool) -> None:
    """List the tool calls waiting for a person's decision, oldest first, with their arguments."""
    with open_store(db) as store:
        calls = store.pending_approvals(thread_id)
    for call in calls:
        if as_json:
            echo_json(call.to_dict())
        else:
            click.echo(f"{call.id}  {call.name}  {call.arguments}  (thread {call.thread_id})")
    if not calls and not as_json:
        click.echo("No tool call waits for a decision.", err=True)
