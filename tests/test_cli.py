"""The ``threadwidget`` command line, run in process with click's ``CliRunner`` against stores the
tests fill; ``tail`` following another process's writer, ``serve`` stopped by a signal and
``python -m threadwidget`` run as real processes."""

from __future__ import annotations

import codecs
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from click.testing import CliRunner, Result

import threadwidget as tw
from threadwidget.cli import main

from .cli_workers import WORDS
from .conftest import PYTHON, python_env, wait_until

CLI = [PYTHON, "-m", "threadwidget"]
WORKERS = str(Path(__file__).with_name("cli_workers.py"))


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    """Run the command line in this process, as ``threadwidget ARGS`` would."""
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def env() -> dict[str, str]:
    return {**python_env(), "PYTHONIOENCODING": "utf-8"}


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, encoding="utf-8", env=env(), cwd=cwd, timeout=60,
                          check=False)  # fmt: skip


def spawn(*cmd: str, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(list(cmd), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env(), cwd=cwd)  # fmt: skip


class Output:
    """Collects a process's output as it arrives, so a test can wait for a piece of it."""

    def __init__(self, stream: IO[bytes] | None):
        assert stream is not None
        self.text = ""
        self.ended = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")()
        while chunk := os.read(stream.fileno(), 4096):  # whatever is there, not a whole line
            with self._cond:
                self.text += decoder.decode(chunk)
                self._cond.notify_all()
        with self._cond:
            self.ended = True
            self._cond.notify_all()

    def wait_for(self, needle: str, timeout: float = 30) -> str:
        with self._cond:
            self._cond.wait_for(lambda: needle in self.text or self.ended, timeout)
            if needle not in self.text:
                pytest.fail(f"{needle!r} did not appear within {timeout} s; output so far:\n{self.text}")
            return self.text

    def wait_for_line(self, needle: str, timeout: float = 30) -> str:
        """The first whole line (its newline arrived) that holds ``needle``."""

        def line() -> str | None:
            return next((x for x in self.text.splitlines(keepends=True) if needle in x and x.endswith("\n")), None)

        with self._cond:
            self._cond.wait_for(lambda: line() is not None or self.ended, timeout)
            found = line()
            if found is None:
                pytest.fail(f"no line with {needle!r} within {timeout} s; output so far:\n{self.text}")
            return found.rstrip("\n")

    def wait_closed(self, timeout: float = 30) -> str:
        with self._cond:
            self._cond.wait_for(lambda: self.ended, timeout)
            return self.text


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
        assert rows[name] == [f"{u.input_tokens:,}", f"{u.output_tokens:,}", f"{u.total_tokens:,}"]
    assert rows["total"][-1] == f"{total.total_tokens:,}"
    data = json.loads(invoke("usage", "--db", filled["db"], "--json").stdout)
    assert {a["agent"]: a["total_tokens"] for a in data["agents"]} == {k: u.total_tokens for k, u in by_agent.items()}
    assert data["total"]["total_tokens"] == total.total_tokens
    one = json.loads(invoke("usage", "--db", filled["db"], "--thread", filled["order"], "--json").stdout)
    assert (one["input_tokens"], one["output_tokens"]) == (filled["order_usage"].input_tokens,
                                                           filled["order_usage"].output_tokens)  # fmt: skip
    agent = invoke("usage", "--db", filled["db"], "--agent", "billing").stdout
    assert "agent billing" in agent and f"{by_agent['billing'].total_tokens:,}" in agent


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


def test_python_m_threadwidget_runs_the_command_line() -> None:
    out = run("--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Usage: python -m threadwidget [OPTIONS] COMMAND")
    listed = [line.split()[0] for line in out.stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == ["check", "serve", "show", "tail", "threads", "usage"]
    assert run("--version").stdout.strip() == f"threadwidget {tw.__version__}"


# -- tail: streaming from another process --------------------------------------------------------


def _prepare_thread(db: Path) -> str:
    with tw.Store(db) as s:
        thread = s.create_thread(title="Live", agent="writer")
        s.add_message(thread.id, role="user", text="an earlier question")
        s.add_message(thread.id, role="assistant", text="an earlier answer", agent="writer")
        return thread.id


def _release(writer: subprocess.Popen[bytes]) -> str:
    assert writer.stdin is not None and writer.stdout is not None
    writer.stdin.write(b"go\n")
    writer.stdin.flush()
    return writer.stdout.readline().decode()


def test_tail_streams_an_answer_written_by_another_process(db_path: Path, procs: list) -> None:
    thread_id = _prepare_thread(db_path)
    tail = spawn(*CLI, "tail", thread_id, "--db", str(db_path), "--until-done")
    procs.append(tail)
    out = Output(tail.stdout)
    out.wait_for("following")  # tail has subscribed
    writer = spawn(PYTHON, WORKERS, "write", str(db_path), thread_id, "20")
    procs.append(writer)
    assert writer.stdout is not None
    assert writer.stdout.readline() == b"paused\n", writer.stderr.read() if writer.stderr else ""
    # the writer is blocked mid-answer: what tail shows now, it showed while the answer streamed
    partial = out.wait_for("w20")
    assert writer.poll() is None and "w59" not in partial
    assert "stream sixty words please" in partial and "an earlier answer" in partial
    assert _release(writer) == "done success\n"
    assert writer.wait(30) == 0
    assert tail.wait(30) == 0, out.wait_closed()
    text = out.wait_closed()
    assert text.count(WORDS) == 1, text  # every delta once, in order, nothing missing
    assert text.count("w00") == 1 and text.count("w59") == 1
    assert "✓ success" in text.split(WORDS, 1)[1]


@pytest.mark.parametrize(("context", "earlier"), [(["-n", "1"], False), (["--since-start"], True)])
def test_tail_joining_an_answer_midway_prints_it_without_gaps_or_duplicates(
    db_path: Path, procs: list, context: list[str], earlier: bool
) -> None:
    thread_id = _prepare_thread(db_path)
    writer = spawn(PYTHON, WORKERS, "write", str(db_path), thread_id, "30")
    procs.append(writer)
    assert writer.stdout is not None and writer.stdout.readline() == b"paused\n"
    tail = spawn(*CLI, "tail", thread_id, "--db", str(db_path), "--until-done", *context)
    procs.append(tail)
    out = Output(tail.stdout)
    before = out.wait_for("w30")  # the text so far, as context
    assert ("an earlier question" in before) is earlier  # -n 1: only the answer in progress
    assert _release(writer) == "done success\n"
    assert tail.wait(30) == 0
    text = out.wait_closed()
    assert text.count(WORDS) == 1, text


# -- serve ----------------------------------------------------------------------------------------

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


@pytest.mark.parametrize(("target", "sig"), [("support", signal.SIGINT), ("make_support", signal.SIGTERM)])
def test_serve_answers_pending_prompts_and_stops_on_a_signal(
    tmp_path: Path, db_path: Path, procs: list, target: str, sig: signal.Signals
) -> None:
    (tmp_path / "my_agents.py").write_text(AGENTS_MODULE)
    serve = spawn(*CLI, "serve", f"my_agents:{target}", "--db", str(db_path), cwd=tmp_path)
    procs.append(serve)
    out = Output(serve.stdout)
    out.wait_for("serving agent 'support'")
    with tw.Store(db_path) as s:
        thread = s.create_thread(title="Served", agent="support")
        s.add_message(thread.id, role="user", text="hello from the test", status="pending")
        line = out.wait_for(f"{thread.id}")
        answer = s.list_messages(thread.id)[-1]
        assert (answer.role, answer.status, answer.agent) == ("assistant", "success", "support")
        assert "hello from the test" in answer.text
        assert "✓ success" in line and "Served" in line
        orders = s.create_thread(title="Orders", agent="support")
        two_steps = s.ask(orders.id, "Where is my order?").wait(30)
        steps, used = two_steps.messages, two_steps.usage
        order_line = out.wait_for_line(orders.id)
        total = s.usage(agent="support")
    assert [(m.role, m.status) for m in steps] == [("assistant", "success")] * 2
    # one line per answer, with the tokens of all its steps
    assert "✓ success" in order_line and "Orders" in order_line, order_line
    assert order_line.endswith(f"{used.input_tokens:,} in / {used.output_tokens:,} out tokens"), order_line
    assert steps[-1].usage is not None and used.output_tokens > steps[-1].usage.output_tokens
    serve.send_signal(sig)
    assert serve.wait(30) == 0
    text = out.wait_closed()
    summary = text.strip().splitlines()[-1]
    assert "served 2 answers" in summary and "2 success" in summary, text
    assert summary.endswith(f"{total.input_tokens:,} in / {total.output_tokens:,} out tokens")
    assert serve.stderr is not None and b"Traceback" not in serve.stderr.read()


def test_serve_stopped_mid_answer_reports_it_aborted(tmp_path: Path, db_path: Path, procs: list) -> None:
    (tmp_path / "my_agents.py").write_text(AGENTS_MODULE)
    serve = spawn(*CLI, "serve", "my_agents:slow", "--db", str(db_path), cwd=tmp_path)
    procs.append(serve)
    out = Output(serve.stdout)
    out.wait_for("serving agent 'slow'")
    with tw.Store(db_path) as s:
        thread = s.create_thread(title="Long one", agent="slow")
        answer = s.ask(thread.id, "tell me a story")
        wait_until(lambda: answer.messages and s.text(answer.messages[-1].id))  # text is streaming
        serve.send_signal(signal.SIGINT)
        assert serve.wait(30) == 0
        assert answer.status == "aborted"
    text = out.wait_closed()
    assert "■ aborted" in out.wait_for_line(thread.id) and "Long one" in out.wait_for_line(thread.id)
    assert "served 1 answer" in text and "1 aborted" in text.strip().splitlines()[-1], text


def test_serve_warns_when_the_agent_ignores_db(tmp_path: Path, db_path: Path, procs: list) -> None:
    other = tmp_path / "other.db"
    (tmp_path / "fixed.py").write_text(
        f"import threadwidget as tw\nagent = tw.Agent('a', model=tw.ScriptedModel(), store=tw.Store({str(other)!r}))\n"
    )
    serve = spawn(*CLI, "serve", "fixed:agent", "--db", str(db_path), cwd=tmp_path)
    procs.append(serve)
    err = Output(serve.stderr)
    err.wait_for("Warning: agent 'a' writes to")
    assert str(other) in err.text and str(db_path) in err.text
    serve.send_signal(signal.SIGTERM)
    assert serve.wait(30) == 0


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
    tw.Store(db_path).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA user_version = 99")
    assert "Upgrade threadwidget" in _one_error_line(invoke("usage", "--db", str(db_path)), "99")


@pytest.mark.parametrize("command", [["show"], ["tail"], ["usage", "--thread"]])
def test_an_unknown_thread_id(db_path: Path, command: list[str]) -> None:
    tw.Store(db_path).close()
    line = _one_error_line(invoke(*command, "th_nope", "--db", str(db_path)), "'th_nope'")
    assert "threadwidget threads" in line


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
    raw = sqlite3.connect(db_path)  # what a crash or another program could leave
    raw.execute(
        "INSERT INTO messages (id, thread_id, position, step, role, text, status, created_at, updated_at, turn) "
        "VALUES ('msg_orphan', ?, 5, 0, 'assistant', '', 'streaming', 0, 0, 5)",
        (thread.id,),
    )
    raw.execute("INSERT INTO deltas (message_id, thread_id, seq, text, created_at) VALUES ('msg_orphan', ?, 2, 'x', 0)",
                (thread.id,))  # fmt: skip
    raw.commit()
    raw.close()
    bad = invoke("check", "--db", str(db_path))
    assert bad.exit_code == 1
    assert "message msg_orphan: 1 deltas numbered up to 2 (a gap)" in bad.stdout
    assert "message msg_orphan is streaming but nobody writes it (no lease)" in bad.stdout
    report = json.loads(invoke("check", "--db", str(db_path), "--json").stdout)
    assert len(report["problems"]) == 2
