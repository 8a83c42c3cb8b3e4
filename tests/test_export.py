"""Taking a thread away: Markdown, a notebook that passes nbformat validation, and JSON that another
store imports row for row (both backends; the command line too)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from click.testing import CliRunner

import threadwidget as tw
from threadwidget.cli import main
from threadwidget.store import copy_store

from .test_branches import all_rows


@tw.tool
def lookup_order(order_id: str) -> dict:
    """Look up an order by id."""
    return {"order_id": order_id, "status": "shipped"}


@tw.tool
def refund(order_id: str) -> str:
    """Refund an order."""
    raise RuntimeError(f"order {order_id} cannot be refunded")


def reworked_thread(store: tw.Store) -> tw.AgentThread:
    """A thread with tool calls, a person's reply, a regenerated answer, an edited prompt, metadata
    and text that could break Markdown or JSON."""
    model = tw.ScriptedModel(tokens_per_second=None)
    model.enqueue(
        tw.ScriptedModel.tool_calls([("lookup_order", {"order_id": "42"}), ("refund", {"order_id": "42"})]),
        "Order 42 shipped; it ```cannot``` be refunded. <script>alert(1)</script> ✓",
        "It left Paris on Monday.",
        "Order 42 is in Lyon.",
        "It arrived today.",
    )
    agent = tw.Agent("support", model=model, tools=[lookup_order, refund], store=store)
    thread = agent.create_thread(title="Order help", user_id="alice", metadata={"ticket": 7, "tags": ["vip"]})
    first = thread.ask("Where is order 42? Refund it.", user_id="alice").wait(30)
    store.reply(thread.id, "I checked too: it **shipped**.", user_id="bob")
    second = thread.ask("When did it leave?", user_id="alice").wait(30)
    thread.regenerate(first.prompt_id).wait(30)
    thread.edit(second.prompt_id, "When did it arrive?", user_id="alice").wait(30)
    return thread


def test_json_export_imports_losslessly_into_another_store(store: tw.Store, db_path: Any, tmp_path: Path) -> None:
    thread = reworked_thread(store)
    data = store.export(thread.id, format="json")
    source = all_rows(store, thread.id)
    assert len(source["messages"]) == 9 and len(source["tool_calls"]) == 2 and source["deltas"]
    other = db_path.with_name("other.db") if isinstance(db_path, Path) else db_path + "_copy"
    for location in (other, tmp_path / "plain.db"):  # the same backend, and a SQLite file
        with tw.Store(location) as destination:
            imported = destination.import_thread(data)
            assert imported == store.get_thread(thread.id)
            assert all_rows(destination, thread.id) == source  # every row, every column
            assert destination.export(thread.id, format="json") == data
            assert destination.list_messages(thread.id) == store.list_messages(thread.id)
            assert destination.check() == []
            with pytest.raises(tw.InvalidArgumentError, match=f"already has thread {thread.id!r}"):
                destination.import_thread(data)
            assert all_rows(destination, thread.id) == source


def test_bad_imports_say_what_is_wrong_and_write_nothing(store: tw.Store) -> None:
    thread = store.create_thread(title="t")
    good = json.loads(store.export(thread.id, format="json"))
    cases: list[tuple[Any, str]] = [
        ("{not json", "not JSON"),
        ({"hello": 1}, "not a threadwidget thread export"),
        ({**good, "version": 99}, "version 99"),
        ({**good, "messages": [{"id": "msg_1"}]}, "lacks columns"),
    ]
    for data, says in cases:
        with pytest.raises(tw.InvalidArgumentError, match=says):
            store.import_thread(data)
    with pytest.raises(tw.InvalidArgumentError, match="format='xml' is not valid"):
        store.export(thread.id, format="xml")
    assert [t.id for t in store.list_threads()] == [thread.id]


def first_answer_shown(store: tw.Store, thread: tw.AgentThread) -> None:
    """Show the first answer (the one with tool calls) instead of its regenerated alternative."""
    prompt = store.list_messages(thread.id)[0]
    store.select_branch(store.alternatives(prompt.id)[0].messages[-1].id)


def test_the_notebook_export_is_valid_and_holds_the_conversation(store: tw.Store) -> None:
    thread = reworked_thread(store)
    first_answer_shown(store, thread)
    nb = nbformat.reads(store.export(thread.id, format="ipynb"), as_version=4)
    nbformat.validate(nb)
    path = store.list_messages(thread.id)
    markdown = [c for c in nb.cells if c.cell_type == "markdown"][1:]
    assert [c.metadata["threadwidget"]["message_id"] for c in markdown] == [m.id for m in path]
    assert all(m.text in c.source for c, m in zip(markdown, path, strict=True))
    calls = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.source.splitlines()[-1] for c in calls] == ["lookup_order(order_id='42')", "refund(order_id='42')"]
    assert calls[0].outputs[0]["data"]["application/json"] == {"order_id": "42", "status": "shipped"}
    assert calls[1].outputs[0]["output_type"] == "error" and "cannot be refunded" in calls[1].outputs[0]["evalue"]
    assert "When did it arrive?" in markdown[-2].source and "When did it leave?" not in str(nb.cells)


def test_markdown_export_reads_as_the_current_path(store: tw.Store) -> None:
    thread = reworked_thread(store)
    first_answer_shown(store, thread)
    text = store.export(thread.id)
    assert text.startswith("# Order help\n")
    assert "**user (alice)**" in text and "**bob**" in text and "**support · scripted**" in text
    assert '"order_id": "42"' in text and "cannot be refunded" in text
    assert "Order 42 shipped; it ```cannot``` be refunded." in text and "Order 42 is in Lyon." not in text
    assert "When did it arrive?" in text and "When did it leave?" not in text


def test_cli_export_and_import(store: tw.Store, db_path: Any, tmp_path: Path) -> None:
    thread = reworked_thread(store)
    runner = CliRunner()
    db = str(db_path)
    out = runner.invoke(main, ["export", thread.id, "--format", "json", "-o", str(tmp_path / "t"), "--db", db])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "t.json").read_text() == store.export(thread.id, format="json")
    target = tmp_path / "restored.db"
    out = runner.invoke(main, ["import", str(tmp_path / "t.json"), "--db", str(target)])
    assert out.exit_code == 0 and f"imported thread {thread.id} (Order help, 5 messages)" in out.output
    with tw.Store(target) as restored:
        assert all_rows(restored, thread.id) == all_rows(store, thread.id)
    again = runner.invoke(main, ["import", str(tmp_path / "t.json"), "--db", str(target)])
    assert again.exit_code == 1 and "already has thread" in again.output
    notebook = runner.invoke(main, ["export", thread.id, "--format", "ipynb", "--db", db])
    nbformat.validate(nbformat.reads(notebook.stdout, as_version=4))
    missing = runner.invoke(main, ["export", "th_missing", "--db", db])
    assert missing.exit_code == 1 and "no thread with id 'th_missing'" in missing.output


def test_copy_store_keeps_the_branches(store: tw.Store, tmp_path: Path) -> None:
    """``threadwidget copy`` / ``copy_store`` carries every branch column: the copy shows the same path."""
    thread = reworked_thread(store)
    with tw.Store(tmp_path / "copy.db") as destination:
        report = copy_store(store, destination)
        assert report.messages == 9
        assert all_rows(destination, thread.id) == all_rows(store, thread.id)
        assert destination.list_messages(thread.id) == store.list_messages(thread.id)
        assert destination.check() == []
