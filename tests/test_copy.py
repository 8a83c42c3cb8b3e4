"""``threadwidget copy SRC DST``: a store's threads moved from SQLite to PostgreSQL and back, every
row equal, and a second copy adds nothing."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import threadwidget as tw
from threadwidget.cli import main

TABLES = {
    "threads": "SELECT * FROM threads ORDER BY id",
    "messages": "SELECT * FROM messages ORDER BY id",
    "tool_calls": "SELECT * FROM tool_calls ORDER BY id",
    "deltas": "SELECT message_id, thread_id, seq, text, created_at FROM deltas ORDER BY message_id, seq",
}


def fill(store: tw.Store, threads: int = 10, answers: int = 50) -> None:
    """``threads`` x ``answers`` prompts and streamed answers (1,000 messages by default), each
    answer with three deltas, usage, and a tool call every fifth answer; odd texts included."""
    for t in range(threads):
        thread = store.create_thread(title=f"thread {t} — ünïcode", user_id="alice", agent="support",
                                     metadata={"n": t, "nested": {"ok": True}})  # fmt: skip
        for a in range(answers):
            store.add_message(thread.id, role="user", text=f"question {a}\nwith 'quotes' and % and ?")
            step = store.start_run(thread.id, agent="support", model="scripted")
            for piece in ("Hello", " there", f" #{a}"):
                store.append_delta(step.id, piece)
            if a % 5 == 0:
                call = store.add_tool_call(step.id, call_id=f"c{a}", name="lookup", arguments='{"id": 1}')
                store.update_tool_call(call.id, status="success", result='{"ok": true}', progress=1.0)
            store.update_message(step.id, text=f"Hello there #{a}", status="success", usage=tw.Usage(12, 3 + a),
                                 finish_reason="stop", end_run=True)  # fmt: skip


def rows(store: tw.Store) -> dict[str, list[tuple[Any, ...]]]:
    return {name: [tuple(r) for r in store._conn().execute(sql)] for name, sql in TABLES.items()}


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_copy_to_postgres_and_back_keeps_every_row(tmp_path: Path, postgres_server: Any) -> None:
    source, back = tmp_path / "source.db", tmp_path / "back.db"
    url = f"{postgres_server.url}?schema=t_{uuid.uuid4().hex[:12]}"
    with tw.Store(source) as store:
        fill(store)
        original = rows(store)
    assert len(original["messages"]) == 1000 and len(original["deltas"]) == 1500 and len(original["tool_calls"]) == 100
    out = invoke("copy", str(source), url).stdout
    assert "copied 10 threads, 1000 messages, 1500 deltas and 100 tool calls" in out
    invoke("copy", url, str(back))
    with tw.Store(url) as on_server, tw.Store(back) as returned:
        assert rows(on_server) == original
        assert rows(returned) == original
        thread = returned.list_threads(limit=1)[0]
        assert returned.usage(thread_id=thread.id) == tw.Store(source).usage(thread_id=thread.id)
    again = invoke("copy", str(source), url).stdout  # idempotent: nothing missing, nothing added
    assert "copied 0 threads, 0 messages, 0 deltas and 0 tool calls" in again


def test_a_copy_adds_what_arrived_since(store: tw.Store, tmp_path: Path) -> None:
    fill(store, threads=2, answers=3)
    target = tmp_path / "copy.db"
    first = tw.store.copy_store(store, tw.Store(target))
    assert (first.threads, first.messages) == (2, 12)
    thread = store.list_threads(limit=1)[0]
    store.add_message(thread.id, role="user", text="later")
    second = tw.store.copy_store(store, tw.Store(target))
    assert (second.threads, second.messages, second.deltas) == (0, 1, 0)
    assert [m.text for m in tw.Store(target).list_messages(thread.id)][-1] == "later"


def test_a_store_being_written_is_not_copied(store: tw.Store, tmp_path: Path) -> None:
    thread = store.create_thread()
    store.start_run(thread.id, agent="support")
    with tw.Store(tmp_path / "copy.db") as target:
        with pytest.raises(tw.InvalidArgumentError, match=r"1 answer\(s\) are being written .*when they have ended"):
            tw.store.copy_store(store, target)
        assert target.list_threads() == []
