"""Outputs a notebook stores compare equal from run to run through the shipped sanitize file
(``threadwidget/testing/nbval_sanitize.cfg``): the reprs, applied the way nbval applies it, and a real
``pytest --nbval`` run of a small notebook."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from nbval.plugin import get_sanitize_patterns

import threadwidget as tw
from threadwidget.cli import main
from threadwidget.testing import NBVAL_SANITIZE

from .conftest import python_env, raw_connection
from .widget_comm import comms

__all__ = ["comms"]  # the fixture, imported for pytest

#: what must not be left once sanitized: random ids, unix times, ISO times, addresses, temp folders
UNSTABLE = re.compile(
    r"(th|msg|tc)_[0-9a-f]{20}|\b1[6-9]\d{8}\.\d+|\d{4}-\d\d-\d\dT\d\d:\d\d|0x[0-9a-f]{6,}|/tmp/|\d+ ms\b"
)


def sanitize(text: str) -> str:
    """What nbval does to each output with ``--nbval-sanitize-with``: its own parser of the file,
    then ``re.sub`` of each pair in the file's order."""
    for regex, replace in get_sanitize_patterns(NBVAL_SANITIZE.read_text()):
        text = re.sub(regex, replace, text)
    return text


def test_the_file_is_shipped_and_every_pair_is_read() -> None:
    text = NBVAL_SANITIZE.read_text()
    pairs = get_sanitize_patterns(text)
    assert len(pairs) == text.count("\nregex: ") == text.count("\nreplace: ") > 10
    assert len(dict(pairs)) == len(pairs)  # nbval keeps one replacement per regex
    for regex, replace in pairs:
        assert regex == regex.strip() and replace == replace.strip()  # no trailing spaces in the patterns
        re.compile(regex)


@pytest.mark.parametrize(
    ("raw", "sanitized"),
    [
        ("<tw.AgentThread th_4ecea32c2b2bf6371ec9 'x'>", "<tw.AgentThread th_<id> 'x'>"),
        ("reply_to='msg_47f757f345059230f4bb', id='tc_55bceffff291c4aab804'", "reply_to='msg_<id>', id='tc_<id>'"),
        ("th_000001 msg_000042", "th_000001 msg_000042"),  # numbered ids are stable: kept
        ("call_id='call_Xk2BdQ8cRmN4vT7pLs9wE1aZ'", "call_id='call_<id>'"),
        ("created_at=2026-11-30T12:00:13.322Z)", "created_at=<time>)"),
        ('<time datetime="2026-05-04T09:30:00Z">2026-05-04 09:30 UTC</time>', '<time datetime="<time>"><time></time>'),
        ("user  22:46:55", "user  <time>"),
        ("success · <1 ms", "success · <duration>"),
        ("took 12 ms, then 0.6 s and 42 s", "took <duration>, then <duration> and <duration>"),
        ("5 min 3 s; 2 h 4 min", "<duration>; <duration>"),
        ("active just now", "active <duration> ago"),
        ("active 5 min ago", "active <duration> ago"),
        ("2 steps, 3 messages, 30 days", "2 steps, 3 messages, 30 days"),  # counts are not durations
        ("<tw.Store '/tmp/tmpqhbbg5mr/threads.db'>", "<tw.Store '<tmp>/threads.db'>"),
        ("'/tmp/pytest-of-me/pytest-7/test_x0/run1/threads.db'", "'<tmp>/threads.db'"),
        ("/private/var/folders/x1/abc/T/tmpab_cd12e/team.db", "<tmp>/team.db"),
        ("folder = /tmp/tmpab_cd12e", "folder = <tmp>"),
        ("'/home/me/tmp/threads.db' 'threads.db'", "'/home/me/tmp/threads.db' 'threads.db'"),  # not a temp folder
        ("<function f at 0x7f3a1b2c3d40>", "<function f at 0x<address>>"),
    ],
)
def test_each_unstable_shape_is_normalised_and_stable_text_is_kept(raw: str, sanitized: str) -> None:
    assert sanitize(raw) == sanitized


# -- the reprs of two runs ------------------------------------------------------------------------


def location(db_path: Any, tmp_path: Path, run: int) -> Any:
    """Where run ``run`` keeps its store: a file in a folder of its own, or (PostgreSQL) the same
    URL each time, emptied in between, as a tutorial's fixed URL would be."""
    if isinstance(db_path, Path):
        folder = tmp_path / f"run{run}"
        folder.mkdir()
        return folder / "threads.db"
    if run > 1:
        with raw_connection(db_path) as conn:
            conn.execute(f"DROP SCHEMA {db_path.rsplit('schema=', 1)[1]} CASCADE")
    return db_path


def shown(where: Any, *, deterministic_ids: bool | None = None) -> list[str]:
    """The reprs a notebook shows of everything threadwidget hands it, after one answer with a tool
    call, and the transcript ``threadwidget show`` prints."""
    contexts: list[str] = []

    @tw.tool
    def lookup_order(order_id: str, ctx: tw.ToolContext) -> dict:
        """Look up an order by id."""
        contexts.append(repr(ctx))
        ctx.progress(0.5, "querying warehouse")
        return {"order_id": order_id, "status": "shipped"}

    out: list[str] = []
    with tw.Store(where, deterministic_ids=deterministic_ids) as store:
        model = tw.ScriptedModel(tokens_per_second=None)
        agent = tw.Agent("support", model=model, tools=[lookup_order], store=store)
        out += [repr(store), repr(model), repr(lookup_order), repr(agent)]
        thread = agent.create_thread(title="Order help", user_id="alice")
        model.enqueue(tw.ScriptedModel.tool_calls([("lookup_order", {"order_id": "42"})]), "Order 42 has shipped.")
        answer = thread.ask("Where is order 42?").wait(timeout=30)
        out += [repr(thread), repr(thread.thread), repr(answer), repr(answer.usage), repr(store.usage()), *contexts]
        messages = store.list_messages(thread.id)
        out += [repr(messages), repr(store.list_tool_calls(thread.id)), repr(store.list_deltas(messages[-1].id))]
        with store.subscribe(lambda event: None, thread_id=thread.id) as subscription:
            out.append(repr(subscription))
        for view in (
            tw.ChatView(thread),
            tw.ToolCallsPanel(thread),
            tw.ThreadList(store),
            tw.ThreadApp(store=store, agent=agent),
        ):
            out.append(repr(view))
            view.close()
        worker = agent.serve()
        out.append(repr(worker))
        worker.stop()
        out += [repr(worker), repr(tw.OpenAIChat("gpt-4o-mini", api_key="sk-test-key"))]
    shown_by_cli = CliRunner().invoke(main, ["show", thread.id, "--db", str(where)], catch_exceptions=False)
    assert shown_by_cli.exit_code == 0, shown_by_cli.output
    return [*out, shown_by_cli.output]


def test_reprs_of_two_runs_are_equal_once_sanitized(
    db_path: Any, tmp_path: Path, comms: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")  # the command line's width, whatever the terminal running the tests
    first = shown(location(db_path, tmp_path, 1))
    second = shown(location(db_path, tmp_path, 2))
    assert first != second  # random ids and times, at least
    clean = [sanitize(x) for x in first]
    assert clean == [sanitize(x) for x in second]
    for text in clean:
        assert not UNSTABLE.search(text), text
    text = "\n".join(clean)
    assert "<tw.AgentThread th_<id> 'Order help' agent='support', 3 messages>" in text
    assert "created_at=<time>" in text and "support: ⚙ lookup_order success" in text


def test_with_deterministic_ids_the_ids_need_no_sanitizing(db_path: Any, tmp_path: Path, comms: list) -> None:
    first = shown(location(db_path, tmp_path, 1), deterministic_ids=True)
    second = shown(location(db_path, tmp_path, 2), deterministic_ids=True)
    assert [sanitize(x) for x in first] == [sanitize(x) for x in second]
    assert "<tw.AgentThread th_000001 'Order help' agent='support', 3 messages>" in first
    assert not re.search(r"\b(th|msg|tc)_<id>", "\n".join(sanitize(x) for x in first))


# -- a real nbval run -------------------------------------------------------------------------------

NOTEBOOK_CELLS = [
    """import pathlib, tempfile, time
import threadwidget as tw

store = tw.Store(pathlib.Path(tempfile.mkdtemp()) / "threads.db")
store""",
    '''@tw.tool
def lookup_order(order_id: str) -> dict:
    """Look up an order by id."""
    return {"order_id": order_id, "status": "shipped"}


model = tw.ScriptedModel(tokens_per_second=None)
agent = tw.Agent("support", model=model, tools=[lookup_order], store=store)
thread = agent.create_thread(title="Order help")
model.enqueue(tw.ScriptedModel.tool_calls([("lookup_order", {"order_id": "42"})]), "Order 42 has shipped.")
started = time.monotonic()
answer = thread.ask("Where is order 42?").wait(timeout=30)
print(f"answered in {(time.monotonic() - started) * 1000:.0f} ms")
answer''',
    "thread",  # a ChatView, through threadwidget's formatter
    "store.list_messages(thread.id)",
    "(call,) = store.list_tool_calls(thread.id)\ncall",
    "tw.ToolCallsPanel(thread)",
]


def make_notebook(folder: Path) -> Path:
    """A notebook with its outputs stored: executed once, as its author would save it."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    path = folder / "tutorial.ipynb"
    nbformat.write(nb, path)
    return path


def nbval(notebook: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval", "--nbval-current-env",
         *options, notebook.name],
        cwd=notebook.parent, capture_output=True, text=True, env=python_env(), timeout=240, check=False,
    )  # fmt: skip


def test_nbval_passes_a_notebook_twice_with_the_sanitize_file_and_fails_without(tmp_path: Path) -> None:
    # the file as a shell finds it: pytest --nbval --nbval-sanitize-with "$(threadwidget nbval-sanitize)"
    printed = subprocess.run(
        [sys.executable, "-m", "threadwidget", "nbval-sanitize"], capture_output=True, text=True, check=True,
        env=python_env(),
    ).stdout.strip()  # fmt: skip
    assert Path(printed) == NBVAL_SANITIZE
    notebook = make_notebook(tmp_path)
    stored = json.loads(notebook.read_text())
    plain = [o["data"]["text/plain"] for c in stored["cells"] for o in c["outputs"] if "data" in o]
    assert any(re.search(r"th_[0-9a-f]{20}", "".join(p)) for p in plain)  # what would differ is there
    for _ in range(2):
        run = nbval(notebook, "--nbval-sanitize-with", printed)
        assert run.returncode == 0, run.stdout + run.stderr
        assert f"{len(NOTEBOOK_CELLS)} passed" in run.stdout
    bare = nbval(notebook)
    assert bare.returncode == 1 and "failed" in bare.stdout  # the ids, times and folders differ


def test_nbval_with_numbered_ids_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """THREADWIDGET_DETERMINISTIC_IDS=1 reaches the notebooks' kernels: the stored ids are numbered,
    and the fresh run's equal them (the sanitize file leaves numbered ids as they are)."""
    monkeypatch.setenv("THREADWIDGET_DETERMINISTIC_IDS", "1")
    notebook = make_notebook(tmp_path)  # its kernel inherits the environment, as nbval's does
    stored = notebook.read_text()
    assert "th_000001" in stored and "msg_000003" in stored
    assert not re.search(r"(th|msg|tc)_[0-9a-f]{20}", stored)
    run = nbval(notebook, "--nbval-sanitize-with", str(NBVAL_SANITIZE))
    assert run.returncode == 0, run.stdout + run.stderr
