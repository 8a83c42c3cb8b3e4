"""The change feed, within one process and across real processes sharing one SQLite file."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import threadwidget as tw
from threadwidget.store._pg_schema import MIGRATIONS as PG_MIGRATIONS
from threadwidget.store._schema import SCHEMA_VERSION

from .conftest import PYTHON, python_env, wait_until

WORKERS = str(Path(__file__).with_name("store_workers.py"))


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PYTHON, WORKERS, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=python_env(),
    )


def expect_line(proc: subprocess.Popen[str], want: str) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith(want):
        err = proc.stderr.read() if proc.stderr and proc.poll() is not None else ""
        pytest.fail(f"expected {want!r} from worker, got {line!r}\n{err}")
    return line


class Collector:
    def __init__(self) -> None:
        self.events: list[tw.Event] = []
        self.lock = threading.Lock()

    def __call__(self, event: tw.Event) -> None:
        with self.lock:
            self.events.append(event)

    def kinds(self) -> list[tuple[str, str]]:
        with self.lock:
            return [(e.kind, e.op) for e in self.events]

    def wait_for(self, condition: Callable[[list[tw.Event]], object]) -> None:
        def met() -> object:
            with self.lock:
                return condition(list(self.events))

        wait_until(met)


def test_events_arrive_in_commit_order_with_rows(store: tw.Store) -> None:
    got = Collector()
    with store.subscribe(got):
        t = store.create_thread(title="x")
        m = store.start_run(t.id)
        store.append_delta(m.id, "a")
        store.update_message(m.id, status="success", text="a", end_run=True)
        wait_until(lambda: len(got.events) == 6)
    assert got.kinds() == [("thread", "insert"), ("message", "insert"), ("run", "insert"),
                           ("delta", "insert"), ("message", "update"), ("run", "delete")]  # fmt: skip
    seqs = [e.seq for e in got.events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    delta = got.events[3].row
    assert isinstance(delta, tw.Delta) and (delta.text, delta.seq, delta.message_id) == ("a", 1, m.id)
    assert all(e.thread_id == t.id for e in got.events)


def test_thread_filter_and_close(store: tw.Store) -> None:
    a, b = store.create_thread(), store.create_thread()
    only_a, everything = Collector(), Collector()
    sub_a = store.subscribe(only_a, thread_id=a.id)
    store.subscribe(everything)
    store.add_message(a.id, role="user", text="to a")
    store.add_message(b.id, role="user", text="to b")
    wait_until(lambda: len(everything.events) == 2)
    assert [e.row.text for e in only_a.events] == ["to a"]  # type: ignore[union-attr]
    sub_a.close()
    store.add_message(a.id, role="user", text="after close")
    wait_until(lambda: len(everything.events) == 3)
    assert len(only_a.events) == 1


def test_since_replays_what_a_subscriber_missed(store: tw.Store) -> None:
    t = store.create_thread()
    mark = store.last_seq()
    for i in range(5):
        store.add_message(t.id, role="user", text=str(i))
    late = Collector()
    store.subscribe(late, since=mark)
    store.add_message(t.id, role="user", text="live")
    wait_until(lambda: len(late.events) == 6)
    assert [e.row.text for e in late.events] == ["0", "1", "2", "3", "4", "live"]  # type: ignore[union-attr]


def test_pruned_subscriber_gets_resync_then_live_events(store: tw.Store) -> None:
    t = store.create_thread()
    for i in range(50):
        store.add_message(t.id, role="user", text=str(i))
    assert store.prune_changes(keep=10) > 0
    late = Collector()
    store.subscribe(late, since=1)
    wait_until(lambda: late.events)
    assert [e.kind for e in late.events] == ["resync"]  # reload from the store: the log no longer goes back to 1
    store.add_message(t.id, role="user", text="live")
    wait_until(lambda: len(late.events) == 2)
    assert late.events[-1].row.text == "live"  # type: ignore[union-attr]


def test_a_raising_callback_is_logged_and_the_feed_goes_on(store: tw.Store, caplog: pytest.LogCaptureFixture) -> None:
    good = Collector()

    def bad(event: tw.Event) -> None:
        raise RuntimeError("boom in subscriber")

    store.subscribe(bad)
    store.subscribe(good)
    t = store.create_thread()
    with caplog.at_level(logging.ERROR, logger="threadwidget.store"):
        store.add_message(t.id, role="user", text="one")
        store.add_message(t.id, role="user", text="two")
        wait_until(lambda: len(good.events) == 3)
    assert "boom in subscriber" in caplog.text
    assert "the feed goes on" in caplog.text


@pytest.mark.parametrize("mode", ["inotify", "poll"])
@pytest.mark.sqlite_only("the bell's wake modes; PostgreSQL listens")
def test_both_wake_modes_deliver(db_path: Path, mode: str) -> None:
    with tw.Store(db_path, watch=mode) as s:
        got = Collector()
        s.subscribe(got)
        assert s.feed_mode == mode
        t = s.create_thread()
        s.add_message(t.id, role="user", text="x")
        wait_until(lambda: len(got.events) == 2)


def test_writers_that_do_not_ring_the_bell_are_seen(store: tw.Store) -> None:
    """The sqlite3 shell, psql or Datasette write without ringing (or NOTIFY): the slow check
    catches them."""
    t = store.create_thread()
    got = Collector()
    store.subscribe(got)
    conn = store._db.connect()  # another program's connection, in autocommit
    conn.execute("UPDATE threads SET title = 'from the shell' WHERE id = ?", (t.id,))
    conn.execute("INSERT INTO changes (thread_id, kind, op, row_id, created_at) VALUES (?, 'thread', 'update', ?, 0)",
                 (t.id, t.id))  # fmt: skip
    conn.close()
    wait_until(lambda: got.events, timeout=5)
    assert got.events[0].row.title == "from the shell"  # type: ignore[union-attr]


@pytest.mark.sqlite_only("the bell file")
def test_bell_file_recreated_is_rearmed(store: tw.Store) -> None:
    got = Collector()
    store.subscribe(got)
    t = store.create_thread()
    wait_until(lambda: len(got.events) == 1)
    bell = Path(f"{store.path}-bell")
    bell.unlink()
    other = tw.Store(store.path)  # a new process-like opener re-creates the bell
    try:
        wait_until(bell.exists)
        other.add_message(t.id, role="user", text="after re-creation")
        wait_until(lambda: len(got.events) == 2, timeout=5)
    finally:
        other.close()


def test_three_writer_processes_and_a_watcher_lose_nothing(db_path: Path, tmp_path: Path, procs: list) -> None:
    n, writers = 1000, 3
    with tw.Store(db_path) as s:
        t = s.create_thread(title="load")
    out = tmp_path / "watched.json"
    watcher = spawn("watcher", str(db_path), str(n * writers), str(out))
    procs.append(watcher)
    expect_line(watcher, "ready")
    ws = [spawn("writer", str(db_path), t.id, str(n), f"w{k}", "1") for k in range(writers)]
    procs.extend(ws)
    for w in ws:
        expect_line(w, "ready")
    for w in ws:
        assert w.stdin is not None
        w.stdin.write("go\n")
        w.stdin.flush()
    for w in ws:
        assert json.loads(expect_line(w, "{"))["errors"] == 0
    assert watcher.wait(60) == 0
    events = json.loads(out.read_text())
    texts = [e["text"] for e in events]
    assert len(texts) == n * writers, "lost events"
    assert len(set(texts)) == len(texts), "duplicated events"
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs), "events out of commit order"
    for k in range(writers):
        mine = [int(x.split(":")[1]) for x in texts if x.startswith(f"w{k}:")]
        assert mine == list(range(n)), f"writer w{k}'s order not kept"
    with tw.Store(db_path) as s:
        positions = [m.position for m in s.list_messages(t.id, limit=n * writers)]
        assert positions == list(range(n * writers))


def test_eight_writer_processes_never_see_busy(db_path: Path, procs: list) -> None:
    with tw.Store(db_path) as s:
        t = s.create_thread()
    ws = [spawn("writer", str(db_path), t.id, "300", f"w{k}", "1") for k in range(8)]
    procs.extend(ws)
    for w in ws:
        expect_line(w, "ready")
    for w in ws:
        w.stdin.write("go\n")  # type: ignore[union-attr]
        w.stdin.flush()  # type: ignore[union-attr]
    results = [json.loads(expect_line(w, "{")) for w in ws]
    stderr = "".join(w.communicate(timeout=60)[1] for w in ws)
    assert all(r["errors"] == 0 for r in results), stderr
    assert "locked" not in stderr and "busy" not in stderr.lower()
    with tw.Store(db_path) as s:
        assert s.count_messages(t.id) == 8 * 300


def test_sigkill_mid_transaction_leaves_nothing_partial(db_path: Path, procs: list) -> None:
    with tw.Store(db_path) as s:
        t = s.create_thread()
        seq_before = s.last_seq()
    holder = spawn("hold-transaction", str(db_path), t.id)
    procs.append(holder)
    expect_line(holder, "in-transaction")
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(10)
    with tw.Store(db_path) as s:
        assert s.list_messages(t.id) == []
        assert s.list_deltas("msg_partial") == []
        assert s.last_seq() == seq_before
        assert s.add_message(t.id, role="user", text="after").position == 0  # the lock is gone
        assert s._db.integrity_problems(s._db.connect()) == []


def test_eight_processes_opening_a_new_file_at_once(db_path: Path, procs: list, backend: str) -> None:
    openers = [spawn("opener", str(db_path)) for _ in range(8)]
    procs.extend(openers)
    for p in openers:
        expect_line(p, "ready")
    for p in openers:
        p.stdin.write("go\n")  # type: ignore[union-attr]
        p.stdin.flush()  # type: ignore[union-attr]
    for p in openers:
        line = expect_line(p, "{")
        assert json.loads(line) == {"ok": True}
    with tw.Store(db_path) as s:
        table, known = ("_sqlite_migrations", SCHEMA_VERSION) if backend == "sqlite" else (
            "threadwidget_migrations", len(PG_MIGRATIONS))
        assert s._conn().execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == known  # each once
        assert len(s.list_threads()) == 8


def test_dead_writer_is_failed_with_its_partial_text(db_path: Path, procs: list) -> None:
    with tw.Store(db_path) as s:
        t = s.create_thread()
    writer = spawn("streamer", str(db_path), t.id)
    procs.append(writer)
    message_id = json.loads(expect_line(writer, "{"))["message_id"]
    with tw.Store(db_path) as view:
        got = Collector()
        view.subscribe(got, thread_id=t.id)  # a watching view is enough to reap
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(10)
        wait_until(lambda: view.get_message(message_id).status == "failed", timeout=10)
        msg = view.get_message(message_id)
        assert msg.text == "partial answer"
        assert msg.error is not None and "writer stopped" in msg.error
        assert view.active_runs(t.id) == []


def test_bad_arguments_are_refused_at_the_call_and_the_feed_goes_on(store: tw.Store) -> None:
    got = Collector()
    store.subscribe(got)
    for bad in ("5", -1, 1.5, True):
        with pytest.raises(tw.InvalidArgumentError, match="since="):
            store.subscribe(print, since=bad)  # type: ignore[arg-type]
    with pytest.raises(tw.InvalidArgumentError, match="thread_id="):
        store.subscribe(print, thread_id=42)  # type: ignore[arg-type]
    for option in ({"poll_interval": "x"}, {"poll_interval": 0}, {"poll_interval": float("nan")},
                   {"busy_timeout": -1}, {"keep_changes": "many"}):  # fmt: skip
        with pytest.raises(tw.InvalidArgumentError, match=next(iter(option))):
            tw.Store(store.path, **option)  # type: ignore[arg-type]
    store.create_thread(title="still delivered")
    got.wait_for(lambda events: any(e.kind == "thread" for e in events))


def test_a_row_another_program_broke_does_not_stop_the_feed(store: tw.Store) -> None:
    got = Collector()
    store.subscribe(got)
    broken = store.create_thread(title="broken")
    raw = store._db.connect()  # another program's connection, in autocommit
    raw.execute("UPDATE threads SET metadata = '{not json' WHERE id = ?", (broken.id,))
    raw.execute("INSERT INTO changes (thread_id, kind, op, row_id, created_at) VALUES (?, 'thread', 'update', ?, 0)",
                (broken.id, broken.id))  # fmt: skip
    raw.close()
    later = store.create_thread(title="after the broken row")
    got.wait_for(lambda events: any(e.row_id == later.id for e in events))


def test_the_watcher_works_in_a_process_with_more_than_1024_open_files(tmp_path: Path) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the hard limit of open files is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]  # the store's files get numbers > 1024
    try:
        with tw.Store(tmp_path / "threads.db") as store:
            got = Collector()
            store.subscribe(got)
            assert store.feed_mode == "inotify"
            thread = store.create_thread()
            got.wait_for(lambda events: any(e.row_id == thread.id for e in events))
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_live_rows_nobody_writes_are_ended_by_a_watching_process(store: tw.Store) -> None:
    thread = store.create_thread()
    step = store.add_message(thread.id, role="assistant", text="called a tool")
    call = store.add_tool_call(step.id, call_id="c1", name="list_files", status="running")
    raw = store._db.connect()  # a crash of an older version, or another program, left these
    raw.execute(
        "INSERT INTO messages (id, thread_id, position, step, role, text, status, created_at, updated_at, turn) "
        "VALUES ('msg_orphan', ?, 9, 0, 'assistant', '', 'streaming', 0, 0, 9)",
        (thread.id,),
    )
    raw.execute("UPDATE threads SET next_position = 10 WHERE id = ?", (thread.id,))  # as writers do
    raw.execute(
        "INSERT INTO deltas (message_id, thread_id, seq, text, created_at) VALUES ('msg_orphan', ?, 1, 'part', 0)",
        (thread.id,),
    )
    raw.close()
    assert len(store.check()) == 2
    store.start_watching()  # any open view is enough
    wait_until(lambda: store.get_message("msg_orphan").status == "failed")
    orphan = store.get_message("msg_orphan")
    assert orphan.text == "part" and orphan.ends_answer and "no lease" in (orphan.error or "")
    wait_until(lambda: store.get_tool_call(call.id).status == "error")
    assert store.check() == []


EXHAUST_INOTIFY = """
import json, os, tempfile, threading, warnings
import inotify_simple
import threadwidget as tw
held = []
for attempt in range(50):
    try:
        while True:
            held.append(inotify_simple.INotify())  # every inotify instance this user may have
    except OSError:
        pass
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = tw.Store(os.path.join(tempfile.mkdtemp(), "threads.db"))
        arrived = threading.Event()
        store.subscribe(lambda event: arrived.set())
    if store.feed_mode == "poll":
        break
    # another process of this user closed an instance in between, and the store rightly took it
    store.close()
store.create_thread()
delivered = arrived.wait(10)  # by polling
print(json.dumps({"mode": store.feed_mode, "delivered": delivered, "warnings": [str(w.message) for w in caught]}))
"""


def test_past_the_inotify_limit_the_feed_says_so_and_polls() -> None:
    out = subprocess.run([PYTHON, "-c", EXHAUST_INOTIFY], capture_output=True, text=True, env=python_env(),
                         timeout=60, check=True)  # fmt: skip
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["mode"] == "poll" and report["delivered"]
    (said,) = report["warnings"]
    assert "cannot watch" in said and "polls every 2 ms" in said and "max_user_instances" in said
