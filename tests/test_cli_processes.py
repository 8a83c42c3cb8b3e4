"""The ``threadwidget`` command line as real processes: ``tail`` following an answer another process
writes, ``serve`` stopped by SIGINT or SIGTERM, ``python -m threadwidget``."""

from __future__ import annotations

import codecs
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import IO

import pytest

import threadwidget as tw

from .cli_workers import WORDS
from .conftest import PYTHON, python_env, wait_until
from .test_cli import AGENTS_MODULE

CLI = [PYTHON, "-m", "threadwidget"]
WORKERS = str(Path(__file__).with_name("cli_workers.py"))


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


def test_python_m_threadwidget_runs_the_command_line() -> None:
    out = run("--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Usage: python -m threadwidget [OPTIONS] COMMAND")
    listed = [line.split()[0] for line in out.stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == [
        "approve", "check", "copy", "deny", "eval", "export", "import", "nbval-sanitize", "pending", "reindex",
        "search", "serve", "show", "tail", "threads", "usage",
    ]  # fmt: skip
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


def test_tail_shows_the_current_path_and_follows_a_switch(db_path: Path, procs: list) -> None:
    with tw.Store(db_path) as s:
        model = tw.ScriptedModel(tokens_per_second=None)
        model.enqueue("Order 42 shipped.", "Order 42 is in Lyon.", "It left Paris on Monday.")
        thread = tw.Agent("support", model=model, store=s).create_thread(title="Branches")
        first = thread.ask("Where is order 42?").wait(30)
        thread.regenerate(first.prompt_id).wait(30)
        tail = spawn(*CLI, "tail", thread.id, "--db", str(db_path), "--until-done")
        procs.append(tail)
        out = Output(tail.stdout)
        shown = out.wait_for("Order 42 is in Lyon.")
        assert "Order 42 shipped." not in shown  # the other answer is on another branch
        s.select_branch(first.messages[0].id)
        out.wait_for("Order 42 shipped.")
        thread.ask("When did it leave?").wait(30)  # followed on the new path; its end ends tail
        assert tail.wait(30) == 0
    after = out.wait_closed().split("the thread switched to another branch")[1]
    assert "Where is order 42?" in after and "Order 42 is in Lyon." not in after
    assert "It left Paris on Monday." in after


DESK_MODULE = """
import threadwidget as tw

store = tw.Store()
confirm = tw.Agent("confirm", model=tw.ScriptedModel(tokens_per_second=None, rules=[(".", "Confirmed for 19:00.")]),
                   store=store)
transfer = tw.ScriptedModel.tool_calls([("transfer_to_confirm", {})])
booking = tw.Agent("booking", model=tw.ScriptedModel(tokens_per_second=None, rules=[("^book", transfer)]),
                   handoffs=[confirm], store=store)
"""


def test_serve_says_where_an_answer_was_handed_over_and_ends_it_in_the_process_that_wrote_it(
    tmp_path: Path, db_path: Path, procs: list
) -> None:
    (tmp_path / "desk.py").write_text(DESK_MODULE)
    outs = {}
    for name in ("booking", "confirm"):
        proc = spawn(*CLI, "serve", f"desk:{name}", "--db", str(db_path), cwd=tmp_path)
        procs.append(proc)
        outs[name] = (proc, Output(proc.stdout))
        outs[name][1].wait_for(f"serving agent {name!r}")
    with tw.Store(db_path) as s:
        thread = s.create_thread(title="Table for two", agent="booking")
        first = s.ask(thread.id, "book a table for two at 19:00").wait(30)
        steps = first.messages
        assert [m.agent for m in steps] == ["booking", "confirm"] and first.status == "success"
        booking_out = outs["booking"][1]
        moved = booking_out.wait_for_line("handed over")
        ended = booking_out.wait_for_line("✓ success")
        used = first.usage  # both steps' tokens: the answer is one, whoever wrote its steps
        assert thread.id in ended and ended.endswith(f"{used.input_tokens:,} in / {used.output_tokens:,} out tokens")
        assert thread.id in moved and "Table for two" in moved and moved.endswith("booking → confirm"), moved
        assert booking_out.text.index(moved) < booking_out.text.index(ended)
        # the next prompt goes to the thread's new agent: the confirm process answers it, and says so
        second = s.ask(thread.id, "thanks").wait(30)
        assert [m.agent for m in second.messages] == ["confirm"]
        confirm_out = outs["confirm"][1]
        assert "✓ success" in confirm_out.wait_for_line(thread.id)
    texts = {}
    for name, (proc, out) in outs.items():
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        texts[name] = out.wait_closed()
        assert proc.stderr is not None and b"Traceback" not in proc.stderr.read()
    # each answer is printed once, by the serve whose process wrote it (events arrive in order:
    # the confirm process saw the first answer end before the second one)
    assert texts["booking"].count(thread.id) == 2 and texts["confirm"].count(thread.id) == 1, texts
    assert "handed over" not in texts["confirm"], texts["confirm"]
    for name in outs:
        summary = texts[name].strip().splitlines()[-1]
        assert "served 1 answer in" in summary and summary.count("1 success") == 1, texts[name]
