"""Approvals across real processes: the answer waits in one process, a person decides in another,
and the answer finishes in the first or, when it died, in a process serving the agent elsewhere."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import threadwidget as tw

from .conftest import PYTHON, python_env, wait_until
from .test_agent_processes import read_json, spawn

CLI = [PYTHON, "-m", "threadwidget"]


def ran(log: Path) -> list[str]:
    """The runs of the refund tool, in every process: ``pid order amount`` per line."""
    return log.read_text().splitlines() if log.exists() else []


def waiting_call(store: tw.Store, thread_id: str) -> tw.ToolCall:
    (call,) = wait_until(lambda: store.pending_approvals(thread_id), timeout=30)  # type: ignore[misc]
    return call


def test_approved_in_another_process_the_tool_runs_once_and_the_answer_finishes(
    db_path: Any, procs: list, tmp_path: Path
) -> None:
    log = tmp_path / "refunds.log"
    with tw.Store(db_path) as s:
        thread_id = s.create_thread(agent="support").id
    writer = spawn("ask_refund", str(db_path), thread_id, str(log), "refund 42 of 80")
    procs.append(writer)
    prompt_id = read_json(writer)["prompt_id"]
    with tw.Store(db_path) as other:
        call = waiting_call(other, thread_id)
        assert json.loads(call.arguments) == {"order_id": "42", "amount": 80.0}
        wait_until(lambda: other.answer(prompt_id).status == "waiting")
        assert ran(log) == []
        other.approve_tool_call(call.id, by="bob")
        assert read_json(writer) == {"status": "success", "text": other.answer(prompt_id).text}
        done = other.get_tool_call(call.id)
        assert (done.status, done.decision, done.decided_by) == ("success", "approved", "bob")
    assert ran(log) == [f"{writer.pid} 42 80.0"]
    assert writer.wait(10) == 0


def test_denied_with_the_command_line_the_tool_never_runs_and_the_answer_says_so(
    db_path: Any, procs: list, tmp_path: Path
) -> None:
    log = tmp_path / "refunds.log"
    with tw.Store(db_path) as s:
        thread_id = s.create_thread(agent="support").id
    writer = spawn("ask_refund", str(db_path), thread_id, str(log), "refund 7 of 900")
    procs.append(writer)
    read_json(writer)
    with tw.Store(db_path) as other:
        call = waiting_call(other, thread_id)
    out = subprocess.run([*CLI, "deny", call.id, "--by", "carol", "--reason", "over the limit", "--db", str(db_path)],
                         capture_output=True, text=True, env=python_env(), timeout=60, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{call.id} (refund) denied by carol: over the limit."
    end = read_json(writer)
    assert end["status"] == "success" and "denied by carol: over the limit" in end["text"]
    assert ran(log) == []


def test_writer_killed_while_waiting_a_serve_process_finishes_the_answer_after_the_decision(
    db_path: Any, procs: list, tmp_path: Path
) -> None:
    log = tmp_path / "refunds.log"
    with tw.Store(db_path) as s:
        thread_id = s.create_thread(agent="support").id
    writer = spawn("ask_refund", str(db_path), thread_id, str(log), "refund 9 of 120")
    procs.append(writer)
    prompt_id = read_json(writer)["prompt_id"]
    with tw.Store(db_path) as view:
        view.start_watching()  # a watcher that reaps dead writers runs all along
        call = waiting_call(view, thread_id)
        wait_until(lambda: view.answer(prompt_id).status == "waiting")
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(10)
        (run,) = view.active_runs(thread_id)
        wait_until(lambda: view._db.now() > run["lease_expires_at"], timeout=15)  # any lease would be over
        assert view.reap_expired() == []
        assert view.answer(prompt_id).status == "waiting" and view.check() == []

        view.approve_tool_call(call.id, by="bob")  # nobody serves the agent yet
        server = spawn("serve_refunds", str(db_path), str(log))
        procs.append(server)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        answer = view.answer(prompt_id).wait(30)
        assert answer.status == "success" and "refunded" in answer.text
    assert ran(log) == [f"{server.pid} 9 120.0"]
    server.stdin.write("stop\n")  # type: ignore[union-attr]
    server.stdin.flush()  # type: ignore[union-attr]
    assert read_json(server)["answered"] == 1


def test_two_people_deciding_at_once_from_two_processes_one_wins_and_the_tool_runs_at_most_once(
    db_path: Any, procs: list, tmp_path: Path
) -> None:
    log = tmp_path / "refunds.log"
    with tw.Store(db_path) as s:
        thread_id = s.create_thread(agent="support").id
    writer = spawn("ask_refund", str(db_path), thread_id, str(log), "refund 11 of 75")
    procs.append(writer)
    read_json(writer)
    with tw.Store(db_path) as other:
        call = waiting_call(other, thread_id)
    commands = [
        [*CLI, "approve", call.id, "--by", "bob", "--db", str(db_path)],
        [*CLI, "deny", call.id, "--by", "carol", "--reason", "no", "--db", str(db_path)],
    ]
    deciders = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=python_env())
                for c in commands]  # fmt: skip
    results = [(p.wait(60), *p.communicate()) for p in deciders]
    assert sorted(code for code, _, _ in results) == [0, 1]
    (loser,) = [err for code, _, err in results if code == 1]
    assert loser.startswith("Error: tool call") and "already" in loser and "Nothing was changed" in loser
    with tw.Store(db_path) as other:
        decided = other.get_tool_call(call.id)
    winner = "bob" if results[0][0] == 0 else "carol"
    assert decided.decided_by == winner
    end = read_json(writer)
    assert end["status"] == "success"
    assert ran(log) == ([f"{writer.pid} 11 75.0"] if winner == "bob" else [])
