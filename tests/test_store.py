"""The thread store's API on real temp SQLite files: rows, pagination, errors, schema versions."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

import threadwidget as tw

from .conftest import raw_connection


def test_threads_round_trip(store: tw.Store) -> None:
    t = store.create_thread(title="Order help", user_id="alice", metadata={"tier": "gold"})
    assert isinstance(t, tw.Thread)
    got = store.get_thread(t.id)
    assert (got.title, got.user_id, got.metadata) == ("Order help", "alice", {"tier": "gold"})
    updated = store.update_thread(t.id, title="Renamed", metadata={"tier": "silver"})
    assert (updated.title, updated.metadata, updated.user_id) == ("Renamed", {"tier": "silver"}, "alice")
    assert updated.updated_at >= t.updated_at
    assert got.to_dict()["metadata"] == {"tier": "gold"}


def test_list_threads_newest_first_paginated_and_filtered(store: tw.Store) -> None:
    mine = [store.create_thread(title=f"a{i}", user_id="alice") for i in range(5)]
    store.create_thread(title="b", user_id="bob")
    store.add_message(mine[1].id, role="user", text="bump")  # activity moves it to the front
    first = store.list_threads(user_id="alice", limit=2)
    assert [t.title for t in first] == ["a1", "a4"]
    rest = store.list_threads(user_id="alice", limit=10, before=first[-1].id)
    assert [t.title for t in rest] == ["a3", "a2", "a0"]
    assert {t.user_id for t in store.list_threads()} == {"alice", "bob"}


def test_messages_ordered_and_paginated(store: tw.Store) -> None:
    t = store.create_thread()
    msgs = [store.add_message(t.id, role="user" if i % 2 == 0 else "assistant", text=str(i)) for i in range(7)]
    assert [m.position for m in msgs] == list(range(7))
    last3 = store.list_messages(t.id, limit=3)
    assert [m.text for m in last3] == ["4", "5", "6"]
    older = store.list_messages(t.id, limit=3, before=last3[0].id)
    assert [m.text for m in older] == ["1", "2", "3"]
    assert [m.text for m in store.list_messages(t.id, after=msgs[4].id)] == ["5", "6"]
    assert store.count_messages(t.id) == 7


def test_delete_thread_removes_everything(store: tw.Store) -> None:
    keep, gone = store.create_thread(), store.create_thread()
    for t in (keep, gone):
        m = store.start_run(t.id, agent="a")
        store.append_delta(m.id, "x")
        store.add_tool_call(m.id, call_id="c1", name="lookup")
    store.delete_thread(gone.id)
    with pytest.raises(tw.NotFoundError):
        store.get_thread(gone.id)
    conn = store._db.connect()  # a connection of its own, as another program's
    for table in ("messages", "deltas", "tool_calls", "runs"):
        assert conn.execute(f"SELECT COUNT(*) FROM {table} WHERE thread_id = ?", (gone.id,)).fetchone()[0] == 0
        assert conn.execute(f"SELECT COUNT(*) FROM {table} WHERE thread_id = ?", (keep.id,)).fetchone()[0] == 1
    with pytest.raises(tw.NotFoundError, match=gone.id):
        store.delete_thread(gone.id)


def test_streaming_rows_and_final_status(store: tw.Store) -> None:
    t = store.create_thread()
    m = store.start_run(t.id, agent="support", model="scripted")
    assert (m.role, m.status, m.agent) == ("assistant", "pending", "support")
    assert [d.seq for d in (store.append_delta(m.id, "Hel"), store.append_delta(m.id, "lo"))] == [1, 2]
    assert store.streamed_text(m.id) == ("Hello", 2)
    done = store.update_message(
        m.id, status="success", text="Hello", usage=tw.Usage(10, 2), finish_reason="stop", end_run=True
    )
    assert (done.status, done.usage, done.is_final) == ("success", tw.Usage(10, 2), True)
    assert store.active_runs(t.id) == []
    # a final status never changes again (a late abort or reaper cannot flip a finished answer)
    assert store.update_message(m.id, status="failed").status == "success"


def test_tool_call_lifecycle(store: tw.Store) -> None:
    t = store.create_thread()
    m = store.start_run(t.id)
    tc = store.add_tool_call(m.id, call_id="call_1", name="lookup_order")
    assert (tc.status, tc.arguments, tc.started_at) == ("streaming_args", "", None)
    store.update_tool_call(tc.id, arguments='{"order_id": "42"}')
    running = store.update_tool_call(tc.id, status="running", progress=0.5, progress_note="querying")
    assert running.started_at is not None and running.progress == 0.5
    done = store.update_tool_call(tc.id, status="success", result='{"status": "shipped"}')
    assert done.ended_at is not None and done.ended_at >= running.started_at
    assert [c.id for c in store.list_tool_calls(t.id)] == [tc.id]
    assert [c.id for c in store.list_tool_calls(t.id, message_id=m.id)] == [tc.id]


def test_usage_sums_per_thread_and_agent(store: tw.Store) -> None:
    a, b = store.create_thread(), store.create_thread()
    for thread, agent, usage, status in ((a, "x", tw.Usage(10, 5), "success"), (a, "x", tw.Usage(3, 1), "aborted"),
                                         (b, "y", tw.Usage(7, 7), "failed")):  # fmt: skip
        m = store.start_run(thread.id, agent=agent)
        store.update_message(m.id, status=status, usage=usage, end_run=True)
    assert store.usage(thread_id=a.id) == tw.Usage(13, 6)
    assert store.usage(agent="y") == tw.Usage(7, 7)
    assert store.usage() == tw.Usage(20, 13)


def test_usage_by_agent_groups_most_tokens_first(store: tw.Store) -> None:
    t = store.create_thread()
    for agent, usage in (("x", tw.Usage(10, 5)), ("y", tw.Usage(30, 1)), ("x", tw.Usage(3, 1)), (None, tw.Usage(1, 1))):
        m = store.start_run(t.id, agent=agent)
        store.update_message(m.id, status="success", usage=usage, end_run=True)
    store.add_message(t.id, role="user", text="no usage", agent="z")  # no usage: not listed
    by_agent = store.usage_by_agent()
    assert by_agent == {"y": tw.Usage(30, 1), "x": tw.Usage(13, 6), None: tw.Usage(1, 1)}
    assert list(by_agent) == ["y", "x", None]
    assert by_agent["x"] == store.usage(agent="x")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda s, t: s.add_message(t, role="robot", text="x"),
            r"role='robot'.*expected one of system, user",
        ),
        (lambda s, t: s.add_message(t, role="user", text=3), r"text=3 .*expected a str"),
        (lambda s, t: s.add_message(t, role="user", status="done"), r"status='done'.*pending"),
        (lambda s, t: s.create_thread(metadata=["x"]), r"metadata=\['x'\].*expected a dict"),
        (lambda s, t: s.create_thread(metadata={"f": object()}), r"cannot be stored.*Pass only JSON values"),
        (lambda s, t: s.create_thread(metadata={"score": float("nan")}), r"cannot be stored.*no NaN"),
        (lambda s, t: s.create_thread(title=b"bytes title"), r"title=b'bytes title' is not valid; expected a str"),
        (lambda s, t: s.add_message(t, role="user", text="caf\udce9"), r"text holds '\\udce9' at position 3"),
        (lambda s, t: s.ask(t, "x", user_id=7), r"user_id=7 is not valid"),
        (lambda s, t: s.add_message(t, role="assistant", status="streaming"), r"nothing would ever end it.*start_run"),
        (lambda s, t: s.list_messages(t, limit=0), r"limit=0 .*positive int"),
        (lambda s, t: s.append_delta("msg_nope", "x"), r"no message with id 'msg_nope'"),
        (lambda s, t: s.add_message("th_nope", role="user"), r"no thread with id 'th_nope'.*create_thread"),
        (lambda s, t: s.subscribe("not callable"), r"callback='not callable' is not callable"),
    ],
)
def test_bad_input_names_value_and_fix(store: tw.Store, call: object, match: str) -> None:
    t = store.create_thread()
    before = store.last_seq()
    with pytest.raises((tw.InvalidArgumentError, tw.NotFoundError), match=match):
        call(store, t.id)  # type: ignore[operator]
    assert store.last_seq() == before, "a rejected call must not write anything"


def test_not_found_is_also_a_key_error(store: tw.Store) -> None:
    with pytest.raises(KeyError):
        store.get_message("msg_missing")


def test_unknown_keyword_is_rejected(store: tw.Store) -> None:
    with pytest.raises(TypeError, match="titel"):
        store.create_thread(titel="typo")  # type: ignore[call-arg]


def test_closed_store_says_so(db_path: Path) -> None:
    s = tw.Store(db_path)
    s.close()
    s.close()  # twice is fine
    with pytest.raises(tw.StoreClosedError, match=r"closed; open a new tw\.Store"):
        s.create_thread()


def test_non_sqlite_file_is_refused_and_untouched(tmp_path: Path) -> None:
    p = tmp_path / "notes.db"
    p.write_text("these are my notes, not a database\n")
    with pytest.raises(tw.NotADatabaseError, match=r"notes.db is not a SQLite database"):
        tw.Store(p)
    assert p.read_text() == "these are my notes, not a database\n"


def test_directory_and_missing_parent_are_refused(tmp_path: Path) -> None:
    with pytest.raises(tw.NotADatabaseError, match="is a directory"):
        tw.Store(tmp_path)
    with pytest.raises(tw.StoreError, match=r"does not exist\. Create it first"):
        tw.Store(tmp_path / "nope" / "threads.db")


@pytest.mark.sqlite_only("PRAGMA user_version; test_postgres.py checks the server's migrations")
def test_newer_schema_is_refused_naming_both_versions(db_path: Path) -> None:
    from threadwidget.store._schema import SCHEMA_VERSION

    tw.Store(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(tw.SchemaVersionError, match=rf"version {SCHEMA_VERSION + 1}.*up to version {SCHEMA_VERSION}"):
        tw.Store(db_path)


@pytest.mark.sqlite_only("sqlite-utils' migrations table; test_postgres.py checks the server's")
def test_migrations_are_recorded_by_name(store: tw.Store) -> None:
    conn = sqlite3.connect(store.path)
    names = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = 'threadwidget'")]
    assert names == [
        "m001_initial", "m002_answers", "m003_next_position", "m004_id_counters", "m005_approvals", "m006_search",
        "m007_presence", "m008_embeddings", "m009_branches", "m010_regenerations",
    ]  # fmt: skip
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_frozen_v1_fixture_still_opens(tmp_path: Path) -> None:
    """A store file written by schema version 1 (tests/fixtures/store_v1.sql) opens and reads."""
    fixture = Path(__file__).parent / "fixtures" / "store_v1.sql"
    p = tmp_path / "v1.db"
    conn = sqlite3.connect(p)
    conn.executescript(fixture.read_text())
    conn.close()
    with tw.Store(p) as s:
        (thread,) = s.list_threads()
        assert thread.title == "Frozen v1 thread"
        prompt, answer = s.list_messages(thread.id)
        assert [prompt.text, answer.text] == ["hello", "Hi! How can I help?"]
        assert s.usage(thread_id=thread.id) == tw.Usage(12, 6)
        # migrated to answers: the reply names its prompt and ends its answer
        assert (answer.reply_to, answer.turn, answer.ends_answer) == (prompt.id, prompt.position, True)
        assert s.answer(prompt.id).status == "success"


def test_default_path_comes_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("THREADWIDGET_DB", str(tmp_path / "env.db"))
    with tw.Store() as s:
        assert s.path == tmp_path / "env.db"
    monkeypatch.delenv("THREADWIDGET_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    with tw.Store() as s:
        assert s.path == tmp_path / "xdg" / "threadwidget" / "threads.db"


def test_network_file_systems_are_detected(tmp_path: Path) -> None:
    from threadwidget.store._wake import network_filesystem

    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/vda / ext4 rw 0 0\n"
        "fs:/export/home /home nfs4 rw,vers=4.2 0 0\n"
        "/dev/vdb /home/alice/local ext4 rw 0 0\n"
        "//srv/share /mnt/my\\040share cifs rw 0 0\n"
    )
    assert network_filesystem(Path("/home/bob/threads.db"), mounts) == "nfs4"
    assert network_filesystem(Path("/home/alice/local/threads.db"), mounts) is None  # the longest mount wins
    assert network_filesystem(Path("/mnt/my share/t.db"), mounts) == "cifs"
    assert network_filesystem(Path("/srv/threads.db"), mounts) is None


@pytest.mark.sqlite_only("a connection per thread; PostgreSQL's are pooled")
def test_connections_of_finished_threads_are_closed(store: tw.Store) -> None:
    import threading

    t = store.create_thread()
    workers = [threading.Thread(target=store.add_message, args=(t.id,), kwargs={"role": "user"}) for _ in range(20)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert store.count_messages(t.id) == 20
    assert len(store._db._conns) <= 2, "each finished thread's connection must close with it"


def test_list_tool_calls_limit_keeps_the_newest(store: tw.Store) -> None:
    t = store.create_thread()
    m = store.start_run(t.id)
    for i in range(5):
        store.add_tool_call(m.id, call_id=f"c{i}", name="f")
    assert [c.call_id for c in store.list_tool_calls(t.id, limit=2)] == ["c3", "c4"]
    assert [c.call_id for c in store.list_tool_calls(t.id, message_id=m.id)] == [f"c{i}" for i in range(5)]


def _close_under_writers(db_path: Path) -> list[BaseException]:
    """Close a store while four threads are busy writing to it; what each writer ended with."""
    store = tw.Store(db_path)
    thread_id = store.create_thread().id
    outcomes: list[BaseException] = []
    writing = threading.Semaphore(0)

    def write() -> None:
        try:
            while True:
                store.add_message(thread_id, role="user", text="x" * 200_000)  # long statements
                writing.release()
        except tw.StoreClosedError as exc:
            outcomes.append(exc)

    writers = [threading.Thread(target=write) for _ in range(4)]
    for w in writers:
        w.start()
    for _ in range(8):
        assert writing.acquire(timeout=10)  # they are all busy writing
    store.close()
    for w in writers:
        w.join(10)
    return outcomes


def test_closing_while_other_threads_write_never_crashes(db_path: Path) -> None:
    """Closing a store does not close connections under threads in mid-statement (that crashed the
    interpreter): they finish what they do and get StoreClosedError at their next call."""
    for _ in range(10):
        outcomes = _close_under_writers(db_path)
        assert len(outcomes) == 4 and all("is closed" in str(e) for e in outcomes)


def test_paging_with_a_message_of_another_thread_is_refused(store: tw.Store) -> None:
    mine, other = store.create_thread(), store.create_thread()
    store.add_message(mine.id, role="user", text="mine")
    elsewhere = store.add_message(other.id, role="user", text="other")
    for page in ({"before": elsewhere.id}, {"after": elsewhere.id}):
        with pytest.raises(tw.InvalidArgumentError, match=r"belongs to thread .*a message of this thread"):
            store.list_messages(mine.id, **page)


def test_check_reports_a_message_numbered_past_the_threads_counter(store: tw.Store) -> None:
    thread = store.create_thread()
    store.add_message(thread.id, role="user", text="first")
    with raw_connection(store.path) as raw:  # another program that does not bump threads.next_position
        raw.execute(
            "INSERT INTO messages (id, thread_id, position, step, role, text, status, created_at, updated_at, turn) "
            "VALUES ('msg_foreign', ?, 1, 0, 'user', 'hi', 'success', 0, 0, 1)",
            (thread.id,),
        )
    assert store.check() == [f"thread {thread.id} would number its next message 1, but it has one at position 1"]
