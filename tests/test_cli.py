"""The ``threadwidget`` command line, run in process with click's ``CliRunner`` against stores the
tests fill. What needs a second process or a signal (``tail`` following another process's writer,
``serve`` until Ctrl-C, ``python -m threadwidget``) is in test_cli_processes.py."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import threadwidget as tw
from threadwidget.cli import main

from .conftest import make_schema_newer, raw_connection


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    """Run the command line in this process, as ``threadwidget ARGS`` would."""
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


# -- a store with a tool call, a failed answer and two agents -----------------------------------


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    db = tmp_path_factory.mktemp("cli") / "threads.db"

    @tw.tool
    def lookup_order(order_id: str, ctx: tw.ToolContext) -> dict:
        """Look up an order by id."""
        ctx.progress(0.5, "querying warehouse")
        return {"order_id": order_id, "status": "shipped"}

    with tw.Store(db) as store:
        model = tw.ScriptedModel(tokens_per_second=None)
        support = tw.Agent("support", model=model, tools=[lookup_order], store=store)
        order = support.create_thread(title="Order help", user_id="alice")
        model.enqueue(
            tw.ScriptedModel.tool_calls([("lookup_order", {"order_id": "42"})]),
            "Your order **42** has shipped.",
            tw.ScriptedModel.error("upstream 500", text="Checking"),
        )
        assert order.generate_text("Where is order 42?").status == "success"
        with pytest.raises(tw.ModelError):
            order.generate_text("And order 43?")
        billing = tw.Agent("billing", model=tw.ScriptedModel(tokens_per_second=None), store=store)
        bill = billing.create_thread(title="Billing question", user_id="bob")
        bill.generate_text("Why was I charged twice?")
        return {
            "db": str(db),
            "order": order.id,
            "bill": bill.id,
            "order_usage": store.usage(thread_id=order.id),
            "by_agent": store.usage_by_agent(),
            "total": store.usage(),
        }


def test_threads_table_and_json(filled: dict) -> None:
    out = invoke("threads", "--db", filled["db"])
    assert out.exit_code == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["id", "title", "agent", "user", "messages", "last", "activity"]
    bill_row, order_row = lines[1], lines[2]  # most recently active first
    assert filled["bill"] in bill_row and "Billing question" in bill_row and "billing" in bill_row
    assert order_row.split()[:6] == [filled["order"], "Order", "help", "support", "alice", "5"]
    out = invoke("threads", "--db", filled["db"], "--json", "--user", "alice")
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["id"], r["title"], r["agent"], r["message_count"]) for r in rows] == [
        (filled["order"], "Order help", "support", 5)
    ]


def test_show_prints_the_transcript_with_tool_calls_statuses_and_usage(filled: dict) -> None:
    out = invoke("show", filled["order"], "--db", filled["db"])
    assert out.exit_code == 0, out.stderr
    text = out.stdout
    order = [
        "Order help", "user", "Where is order 42?", "assistant  support · scripted",
        '⚙ lookup_order {"order_id": "42"}  success', '→ {"order_id": "42", "status": "shipped"}',
        "Your order **42** has shipped.", "And order 43?", "failed", "Checking", "failed: upstream 500",
        f"total  {filled['order_usage'].input_tokens} in / {filled['order_usage'].output_tokens} out tokens",
    ]  # fmt: skip
    at = 0
    for piece in order:
        found = text.find(piece, at)
        assert found >= 0, f"{piece!r} missing (or out of order) in:\n{text}"
        at = found + len(piece)
    assert "\x1b[" not in text  # a pipe gets plain text
    last = invoke("show", filled["order"], "--db", filled["db"], "--limit", "1").stdout
    assert "4 earlier message(s) not shown" in last and "Where is order 42?" not in last


def test_show_json(filled: dict) -> None:
    out = invoke("show", filled["order"], "--db", filled["db"], "--json")
    data = json.loads(out.stdout)
    assert data["thread"]["title"] == "Order help"
    msgs = data["messages"]
    assert [(m["role"], m["status"]) for m in msgs] == [
        ("user", "success"), ("assistant", "success"), ("assistant", "success"), ("user", "success"),
        ("assistant", "failed"),
    ]  # fmt: skip
    (call,) = msgs[1]["tool_calls"]
    assert (call["name"], call["status"]) == ("lookup_order", "success")
    assert json.loads(call["arguments"]) == {"order_id": "42"}
    assert msgs[2]["text"] == "Your order **42** has shipped." and msgs[4]["error"] == "upstream 500"
    assert data["usage"]["total_tokens"] == filled["order_usage"].total_tokens > 0


def test_usage_per_agent_thread_and_json(filled: dict) -> None:
    by_agent, total = filled["by_agent"], filled["total"]
    out = invoke("usage", "--db", filled["db"])
    assert out.exit_code == 0, out.stderr
    rows = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines()[1:]}
    for name in ("support", "billing"):
        u = by_agent[name]
        assert rows[name][:5] == [f"{u.input_tokens:,}", f"{u.output_tokens:,}", f"{u.total_tokens:,}", "no", "price"]
        assert set(rows[name][5]) <= set("█▏▎▍▌▋▊▉")  # its bar
    assert rows["total"][:3] == [f"{total.input_tokens:,}", f"{total.output_tokens:,}", f"{total.total_tokens:,}"]
    data = json.loads(invoke("usage", "--db", filled["db"], "--json").stdout)
    assert {a["agent"]: a["total_tokens"] for a in data["groups"]} == {k: u.total_tokens for k, u in by_agent.items()}
    assert data["total"]["total_tokens"] == total.total_tokens and data["total"]["usd"] is None  # no price, not 0
    one = json.loads(invoke("usage", "--db", filled["db"], "--thread", filled["order"], "--json").stdout)
    order = filled["order_usage"]
    assert (one["total"]["input_tokens"], one["total"]["output_tokens"]) == (order.input_tokens, order.output_tokens)
    agent = invoke("usage", "--db", filled["db"], "--agent", "billing").stdout
    assert "billing" in agent and "support" not in agent and f"{by_agent['billing'].total_tokens:,}" in agent


def test_usage_csv_totals_equal_the_store_to_the_cent(filled: dict, tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[scripted]\ninput = 1234.5678\noutput = 8765.4321\n')  # large: cents to compare
    for env in ({"THREADWIDGET_PRICES": str(prices)}, None):
        given = ["--prices", str(prices)] if not env else []
        args = ["usage", "--db", filled["db"], "--by", "agent", "--csv", *given]
        out = invoke(*args, env=env)
        assert out.exit_code == 0, out.stderr
        rows = list(csv.DictReader(io.StringIO(out.stdout)))
        assert [r["agent"] for r in rows] == ["support", "billing"]  # most dollars first
        with tw.Store(filled["db"]) as store:
            table = tw.Prices.from_file(prices)
            expected = store.cost(prices=table)
            assert sum(int(r["total_tokens"]) for r in rows) == store.usage().total_tokens
            usd = sum(Decimal(r["usd"]) for r in rows)
            assert usd == expected.usd  # exact
            assert usd.quantize(Decimal("0.01")) == expected.usd.quantize(Decimal("0.01"))  # type: ignore[union-attr]
            for r in rows:
                assert Decimal(r["usd"]) == store.cost(agent=r["agent"], prices=table).usd
    days = list(csv.DictReader(io.StringIO(invoke("usage", "--db", filled["db"], "--by", "day", "--since", "7d",
                                                  "--csv").stdout)))  # fmt: skip
    assert len(days) == 1 and int(days[0]["total_tokens"]) == filled["total"].total_tokens
    assert days[0]["usd"] == "" and days[0]["unpriced_models"] == "scripted"  # no price: empty, not 0
    bad = invoke("usage", "--db", filled["db"], "--since", "last week")
    assert bad.exit_code == 1 and "since='last week' is not valid" in bad.stderr
    both = invoke("usage", "--db", filled["db"], "--json", "--csv")
    assert both.exit_code == 2 and "pick one" in both.stderr


def test_version_and_help_name_the_store_used_without_db(monkeypatch: pytest.MonkeyPatch) -> None:
    assert invoke("--version").stdout.strip() == f"threadwidget {tw.__version__}"
    for command in ("threads", "show", "tail", "serve", "usage", "check"):
        help_text = " ".join(invoke(command, "--help").stdout.split())
        assert "--db PATH" in help_text and "[env var: THREADWIDGET_DB=" in help_text, help_text
    help_text = "".join(invoke("threads", "--help").stdout.split())  # click may wrap inside the path
    assert f"[envvar:THREADWIDGET_DB={tw.store.default_path()}]" in help_text  # the tests set it
    monkeypatch.delenv("THREADWIDGET_DB")
    help_text = "".join(invoke("threads", "--help").stdout.split())
    assert f"[envvar:THREADWIDGET_DB;default:{tw.store.default_path()}]" in help_text  # the per-user store


def test_threadwidget_db_names_the_store_and_db_overrides_it(filled: dict, tmp_path: Path) -> None:
    listed = invoke("threads", "--json", env={"THREADWIDGET_DB": filled["db"]})
    assert listed.exit_code == 0, listed.stderr
    assert {json.loads(line)["id"] for line in listed.stdout.splitlines()} == {filled["order"], filled["bill"]}
    missing = str(tmp_path / "missing.db")
    shown = invoke("show", filled["order"], "--db", filled["db"], env={"THREADWIDGET_DB": missing})
    assert shown.exit_code == 0 and "Where is order 42?" in shown.stdout, shown.stderr
    line = _one_error_line(invoke("usage", env={"THREADWIDGET_DB": missing}), missing)
    assert "($THREADWIDGET_DB) does not exist" in line
    assert not Path(missing).exists()


def test_without_db_or_threadwidget_db_the_per_user_store_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("THREADWIDGET_DB")
    per_user = tw.store.default_path()
    if not per_user.is_relative_to(os.environ["XDG_DATA_HOME"]):
        pytest.skip("the per-user store of this platform is outside the tests' data directory")
    assert "(default) does not exist" in _one_error_line(invoke("threads"), str(per_user))
    assert not per_user.exists()
    per_user.parent.mkdir(parents=True)
    with tw.Store(per_user) as s:
        s.create_thread(title="In the per-user store")
    out = invoke("threads")
    assert out.exit_code == 0 and "In the per-user store" in out.stdout, out.stderr


# -- errors: one line, exit 1, the value named ----------------------------------------------------


def _one_error_line(out: Result, *named: str) -> str:
    assert out.exit_code == 1, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), out.stderr
    for value in named:
        assert value in lines[0]
    return lines[0]


@pytest.mark.parametrize("command", [["threads"], ["show", "th_x"], ["tail", "th_x"], ["usage"]])
def test_a_missing_store_is_reported_not_created(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "missing.db"
    line = _one_error_line(invoke(*command, "--db", str(missing)), str(missing))
    assert "does not exist" in line
    assert not missing.exists() and list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_a_store(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n")
    assert "not a SQLite database" in _one_error_line(invoke("threads", "--db", str(notes)), str(notes))


def test_a_store_from_a_newer_version(db_path: Path) -> None:
    make_schema_newer(db_path)
    assert "Upgrade threadwidget" in _one_error_line(invoke("usage", "--db", str(db_path)), "99")


@pytest.mark.parametrize("command", [["show"], ["tail"], ["usage", "--thread"]])
def test_an_unknown_thread_id(db_path: Path, command: list[str]) -> None:
    tw.Store(db_path).close()
    line = _one_error_line(invoke(*command, "th_nope", "--db", str(db_path)), "'th_nope'")
    assert "threadwidget threads" in line


# -- serve: the user's module ----------------------------------------------------------------------

AGENTS_MODULE = """
import threadwidget as tw


@tw.tool
def lookup_order(order_id: str) -> dict:
    \"\"\"Look up an order by id.\"\"\"
    return {"order_id": order_id, "status": "shipped"}


def model():  # a prompt about an order: a tool call, then a summary of its result (two steps)
    rules = [("order", tw.ScriptedModel.tool_calls([("lookup_order", {"order_id": "42"})]))]
    return tw.ScriptedModel(tokens_per_second=None, rules=rules)


support = tw.Agent("support", model=model(), tools=[lookup_order], store=tw.Store())
slow = tw.Agent(  # a story takes 16 s
    "slow", model=tw.ScriptedModel(tokens_per_second=50, rules=[("story", "once upon a time " * 200)]), store=tw.Store()
)
not_an_agent = 42


def make_support():
    return tw.Agent("support", model=model(), tools=[lookup_order], store=tw.Store())
"""


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``tmp_path`` as the current directory, where ``serve`` looks for the user's module; the
    modules it imports from there are forgotten afterwards, and their agents' stores closed."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # serve puts the current directory first
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        module = sys.modules[name]
        if Path(getattr(module, "__file__", None) or "/").is_relative_to(tmp_path):
            for value in vars(module).values():
                if isinstance(value, tw.Agent):
                    value.store.close()
            del sys.modules[name]


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("my_agents", "is not MODULE:AGENT"),
        ("my agents:support", "is not MODULE:AGENT"),
        ("no_such_module:agent", "no module named 'no_such_module'"),
        ("my_agents:nothere", "has no attribute 'nothere'; agents defined there: slow, support"),
        ("my_agents:not_an_agent", "not a tw.Agent"),
    ],
)
def test_serve_rejects_a_bad_target(user_dir: Path, db_path: Path, target: str, says: str) -> None:
    (user_dir / "my_agents.py").write_text(AGENTS_MODULE)
    line = _one_error_line(invoke("serve", target, "--db", str(db_path)))
    assert says in line and target.partition(":")[0] in line


def test_check_finds_what_breaks_the_invariants(db_path: Path) -> None:
    with tw.Store(db_path) as s:
        thread = s.create_thread(agent="support")
        s.add_message(thread.id, role="user", text="fine")
    ok = invoke("check", "--db", str(db_path))
    assert ok.exit_code == 0 and ok.stdout.startswith("ok: ") and "no problems found" in ok.stdout
    with raw_connection(db_path) as raw:  # what a crash or another program could leave
        raw.execute(
            "INSERT INTO messages (id, thread_id, position, step, role, text, status, created_at, updated_at, turn) "
            "VALUES ('msg_orphan', ?, 5, 0, 'assistant', '', 'streaming', 0, 0, 5)",
            (thread.id,),
        )
        raw.execute("UPDATE threads SET next_position = 6 WHERE id = ?", (thread.id,))  # as writers do
        raw.execute(
            "INSERT INTO deltas (message_id, thread_id, seq, text, created_at) VALUES ('msg_orphan', ?, 2, 'x', 0)",
            (thread.id,),
        )
    bad = invoke("check", "--db", str(db_path))
    assert bad.exit_code == 1
    assert "message msg_orphan: 1 deltas numbered up to 2 (a gap)" in bad.stdout
    assert "message msg_orphan is streaming but nobody writes it (no lease)" in bad.stdout
    report = json.loads(invoke("check", "--db", str(db_path), "--json").stdout)
    assert len(report["problems"]) == 2


def test_nbval_sanitize_prints_the_path_of_the_sanitize_file_in_the_package() -> None:
    from threadwidget.testing import NBVAL_SANITIZE

    result = invoke("nbval-sanitize")
    assert result.exit_code == 0 and result.stderr == ""
    path = Path(result.stdout.strip())
    assert path == NBVAL_SANITIZE and path.is_absolute() and path.is_file()
    assert path.parent == Path(tw.__file__).parent / "testing" and "\nregex: " in path.read_text()
    assert "--nbval-sanitize-with" in invoke("nbval-sanitize", "--help").stdout
