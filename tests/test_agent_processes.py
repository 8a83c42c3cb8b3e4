"""The runtime across real processes: abort from elsewhere, a killed writer, racing serve() workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

import threadwidget as tw

from .conftest import PYTHON, python_env, wait_until

WORKERS = str(Path(__file__).with_name("agent_workers.py"))


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([PYTHON, WORKERS, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=python_env())  # fmt: skip


def read_json(proc: subprocess.Popen[str]) -> dict:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("{"):
        proc.kill()
        pytest.fail(f"worker said {line!r}; stderr:\n{proc.stderr.read() if proc.stderr else ''}")
    return json.loads(line)


def test_abort_from_another_process_ends_the_answer_with_its_partial_text(db_path: Path, procs: list) -> None:
    with tw.Store(db_path) as s:
        thread_id = s.create_thread(agent="writer").id
    writer = spawn("stream", str(db_path), thread_id, "100")
    procs.append(writer)
    message_id = read_json(writer)["message_id"]
    with tw.Store(db_path) as view:
        agent = tw.Agent("viewer", model=tw.ScriptedModel(), store=view)
        assert agent.continue_thread(thread_id).abort() == [message_id]
        wait_until(lambda: view.get_message(message_id).status == "aborted", timeout=10)
        msg = view.get_message(message_id)
    assert msg.text.startswith("word0 ") and "word1999" not in msg.text and msg.error == "aborted by request"
    assert msg.usage is not None and msg.usage.output_tokens > 0
    assert read_json(writer)["status"] == "aborted"
    assert writer.wait(10) == 0


def test_killed_writer_is_failed_within_5_s_with_partial_text(db_path: Path, procs: list) -> None:
    with tw.Store(db_path) as s:
        thread_id = s.create_thread(agent="writer").id
    writer = spawn("stream", str(db_path), thread_id, "200")
    procs.append(writer)
    message_id = read_json(writer)["message_id"]
    with tw.Store(db_path) as view:
        view.start_watching()  # an open view is enough to notice
        wait_until(lambda: len(view.text(message_id)) > 20)
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(10)
        wait_until(lambda: view.get_message(message_id).status == "failed", timeout=10)
        msg = view.get_message(message_id)
        assert msg.text == view.streamed_text(message_id)[0] and msg.text.startswith("word0 ")
        assert "writer stopped" in (msg.error or "")
        assert view.active_runs() == []


def test_two_serve_workers_answer_each_prompt_exactly_once(db_path: Path, procs: list) -> None:
    with tw.Store(db_path) as s:
        threads = [s.create_thread(agent="support").id for _ in range(12)]
    workers = [spawn("serve", str(db_path), "support") for _ in range(2)]
    procs.extend(workers)
    for w in workers:
        assert w.stdout is not None and w.stdout.readline().strip() == "ready"
    with tw.Store(db_path) as s:
        for i, thread_id in enumerate(threads):
            s.add_message(thread_id, role="user", text=f"question {i}", status="pending")

        def all_answered() -> bool:
            return all([m.status for m in s.list_messages(t)] == ["success", "success"] for t in threads)

        wait_until(all_answered, timeout=30)
        for thread_id in threads:
            user, answer = s.list_messages(thread_id)
            assert (user.role, answer.role, answer.agent) == ("user", "assistant", "support")
            assert user.text in answer.text  # the scripted model echoes the prompt it answered
    counts = []
    for w in workers:
        w.stdin.write("stop\n")  # type: ignore[union-attr]
        w.stdin.flush()  # type: ignore[union-attr]
        counts.append(read_json(w)["answered"])
    assert sum(counts) == len(threads)
