"""Who has a thread open and who is typing, across processes sharing the store, on both backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

import threadwidget as tw
from threadwidget.store._presence import PRESENCE_SECONDS

from .conftest import PYTHON, python_env, wait_until
from .widget_comm import browser_sends, comms

__all__ = ["comms"]  # the fixture, imported for pytest

WORKERS = str(Path(__file__).with_name("agent_workers.py"))


def test_a_views_row_is_renewed_without_waking_anyone_and_changes_wake_everyone(store: tw.Store) -> None:
    thread = store.create_thread(agent="support")
    seq = store.last_seq()
    assert store.set_presence("view_a", thread.id, user_id="alice") is True  # appeared: a change
    assert store.set_presence("view_a", thread.id, user_id="alice") is False  # renewed: none
    assert store.set_presence("view_a", thread.id, user_id="alice", typing=True) is True
    assert [(p.user_id, p.typing) for p in store.present(thread.id)] == [("alice", True)]
    store.clear_presence("view_a")
    assert store.present(thread.id) == []
    kinds = [r[0] for r in store._conn().execute("SELECT kind FROM changes WHERE seq > ? ORDER BY seq", (seq,))]
    assert kinds == ["presence", "presence", "presence"]


def test_views_show_the_other_people_and_who_types(
    store: tw.Store, db_path: Any, comms: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread = store.create_thread(agent="support")
    with tw.Store(db_path) as other:  # another kernel's store
        alice = tw.ChatView(thread.id, store=store, user="alice")
        bob = tw.ChatView(thread.id, store=other, user="bob")
        assert alice.present == [] and bob.present == []
        alice._view_count = 1  # shown in a browser
        bob._view_count = 1
        wait_until(lambda: bob.present == [{"user": "alice", "typing": False}])
        wait_until(lambda: alice.present == [{"user": "bob", "typing": False}])
        browser_sends(alice, {"kind": "typing", "typing": True})
        wait_until(lambda: bob.present == [{"user": "alice", "typing": True}])
        alice.close()
        wait_until(lambda: bob.present == [])
        bob.close()


def test_the_presence_of_a_killed_kernel_disappears_within_10_s(db_path: Any, procs: list) -> None:
    with tw.Store(db_path) as store:
        thread = store.create_thread(agent="support")
        command = [PYTHON, WORKERS, "present", str(db_path), thread.id, "carol"]
        kernel = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=python_env())
        procs.append(kernel)
        assert kernel.stdout is not None and json.loads(kernel.stdout.readline())["view_id"]
        wait_until(lambda: [p.user_id for p in store.present(thread.id)] == ["carol"])
        os.kill(kernel.pid, signal.SIGKILL)
        kernel.wait(10)
        wait_until(lambda: store.present(thread.id) == [], timeout=10)  # the bound
        # gone because nobody renewed it, not because anyone said goodbye: its row is still there
        (count,) = store._conn().execute("SELECT COUNT(*) FROM presence WHERE thread_id = ?", (thread.id,)).fetchone()
        assert count == 1 and PRESENCE_SECONDS < 10
