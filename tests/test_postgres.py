"""What only a PostgreSQL store has to show: its migrations, its URL, the server's clock, a server
that restarts mid-stream, a missing driver. (Everything else runs on both backends through the
``db_path``/``store`` fixtures.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import threadwidget as tw
from threadwidget.store._pg_schema import MIGRATIONS

from .conftest import PYTHON, ROOT, make_schema_newer, python_env, wait_until
from .test_feed import Collector, expect_line, spawn
from .widget_comm import comms

__all__ = ["comms"]  # the fixture, imported for pytest


@pytest.fixture
def pg_url(postgres_server: Any) -> str:
    return f"{postgres_server.url}?schema=t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def own_server() -> Iterator[Any]:
    """A server of the test's own, to stop and restart."""
    from .pg_server import PostgresServer, postgres_bin

    if postgres_bin() is None:
        pytest.skip("PostgreSQL is not installed")
    server = PostgresServer()
    yield server
    server.close()


def test_migrations_are_recorded_by_name_and_a_newer_schema_is_refused(pg_url: str) -> None:
    with tw.Store(pg_url) as store:
        names = [r[0] for r in store._conn().execute("SELECT name FROM threadwidget_migrations")]
        assert names == [fn.__name__.lstrip("_") for fn in MIGRATIONS]
    make_schema_newer(pg_url)
    with pytest.raises(tw.SchemaVersionError, match=r"migrations m099_future.*Upgrade threadwidget"):
        tw.Store(pg_url)


def test_the_url_names_the_schema_and_hides_the_password(postgres_server: Any) -> None:
    url = postgres_server.url.replace("tw@", "tw:s3cret@") + "?schema=team_a"
    with tw.Store(url) as store:  # trust authentication: the password is not checked
        assert "s3cret" not in repr(store) and "s3cret" not in str(store.path)
        assert "tw:***@" in str(store.path) and "schema=team_a" in str(store.path)
        thread = store.create_thread(title="in team_a")
    with tw.Store(postgres_server.url + "?schema=team_b") as other:
        assert other.list_threads() == []  # another schema: another store
    with pytest.raises(tw.InvalidArgumentError, match=r"schema='Team-A'.*lower-case SQL name"):
        tw.Store(postgres_server.url + "?schema=Team-A")
    with tw.Store(url) as store:
        assert store.get_thread(thread.id).title == "in team_a"


def test_text_with_a_nul_is_stored_with_a_replacement_character(pg_url: str) -> None:
    with tw.Store(pg_url) as store:
        thread = store.create_thread()
        message = store.add_message(thread.id, role="user", text="before\x00after")
        assert store.get_message(message.id).text == "before\ufffdafter"  # PostgreSQL text cannot hold NUL


def test_an_unreachable_server_is_a_clear_error(own_server: Any) -> None:
    url = own_server.url + "?schema=gone"
    own_server.stop()
    with pytest.raises(tw.StoreUnavailableError, match=r"cannot reach the PostgreSQL server .*Is it running"):
        tw.Store(url)


def test_a_missing_driver_names_the_extra(pg_url: str) -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None\n"  # as if psycopg were not installed
        "import threadwidget as tw\n"
        f"try:\n    tw.Store({pg_url!r})\nexcept tw.StoreError as exc:\n    print(exc)\n"
    )
    done = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env=python_env(), check=True)
    assert "pip install 'threadwidget[postgres]'" in done.stdout


def test_a_server_restart_mid_stream_loses_and_repeats_nothing(
    own_server: Any, tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    """A writer streams messages; the server stops and starts again in the middle. Every message
    is written once, and the feed of two processes (a watcher and this test) delivers each once, in
    the same order; meanwhile the feed says it is reconnecting."""
    url, n = own_server.url + "?schema=restart", 300
    with tw.Store(url) as setup:
        thread = setup.create_thread()
    out = tmp_path / "watched.json"
    watcher = spawn("watcher", url, str(n), str(out))
    procs.append(watcher)
    expect_line(watcher, "ready")
    writer = spawn("writer", url, thread.id, str(n), "w", "1", "0.005")
    procs.append(writer)
    expect_line(writer, "ready")
    here = Collector()
    with tw.Store(url) as store:
        store.subscribe(here, thread_id=thread.id)

        def inserted() -> list[Any]:
            return [e for e in here.events if e.kind == "message" and e.op == "insert"]

        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
        wait_until(lambda: len(inserted()) >= n // 4, timeout=30)
        own_server.stop()
        wait_until(lambda: store.feed_connected is False, timeout=15)
        own_server.start()
        wait_until(lambda: store.feed_connected, timeout=30)
        report = json.loads(expect_line(writer, "{"))
        said = writer.communicate(timeout=30)[1]  # what the writer logged (a commit cut off: the server's answer)
        assert report["errors"] == 0, said  # writes waited for the server
        wait_until(lambda: len(inserted()) >= n, timeout=30)
        assert [e.row.text for e in inserted()] == [f"w:{i}" for i in range(n)], said  # type: ignore[union-attr]
        assert [m.text for m in store.list_messages(thread.id, limit=2 * n)] == [f"w:{i}" for i in range(n)], said
    assert watcher.wait(60) == 0
    watched = json.loads(out.read_text())
    assert [e["text"] for e in watched] == [f"w:{i}" for i in range(n)]  # once each, in order
    assert [e["seq"] for e in watched] == [e.seq for e in inserted()]  # the same order in both processes


@pytest.mark.parametrize("skew", [-600, 600], ids=["clock-10-min-behind", "clock-10-min-ahead"])
def test_a_writer_with_a_skewed_clock_is_neither_reaped_early_nor_kept(
    pg_url: str, skew: int, procs: list[subprocess.Popen[str]]
) -> None:
    """Leases are the server's time: a writer ten minutes off keeps its answer while it renews, and
    loses it within seconds of dying."""
    with tw.Store(pg_url) as store:
        thread = store.create_thread()
        store.start_watching()  # this process reaps, on the server's clock
        writer = subprocess.Popen(
            [PYTHON, str(ROOT / "tests" / "agent_workers.py"), "skewed_stream", pg_url, thread.id, str(skew)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=python_env(),
        )  # fmt: skip
        procs.append(writer)
        assert writer.stdout is not None
        message_id = json.loads(writer.stdout.readline())["message_id"]
        leases: set[float] = set()

        def renewed_three_times() -> bool:
            runs = store.active_runs(thread.id)
            assert runs, f"the answer lost its lease: {store.get_message(message_id)}"
            leases.add(runs[0]["lease_expires_at"])
            return len(leases) >= 4

        wait_until(renewed_three_times, timeout=20)
        assert store.get_message(message_id).status == "streaming"  # not reaped while it renews
        assert all(abs(lease - store._db.now()) < 10 for lease in leases)  # the server's clock, not the writer's
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(10)
        wait_until(lambda: store.get_message(message_id).status == "failed", timeout=20)  # not kept 10 minutes
        assert "writer stopped" in (store.get_message(message_id).error or "")



def test_a_role_that_may_only_read_is_told_at_open_and_refused_writes(pg_url: str, postgres_server: Any) -> None:
    schema = pg_url.rsplit("=", 1)[1]
    with tw.Store(pg_url) as owner:
        thread = owner.create_thread(title="shared")
        role = f"reader_{schema}"
        for grant in (f"CREATE ROLE {role} LOGIN", f"GRANT USAGE ON SCHEMA {schema} TO {role}",
                      f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}"):  # fmt: skip
            owner._conn().execute(grant)
    reader_url = pg_url.replace("tw@", f"{role}@")
    with pytest.warns(tw.StoreWarning, match=rf"read-only for role {role}.*GRANT SELECT, INSERT, UPDATE, DELETE"):
        reader = tw.Store(reader_url)
    with reader:
        assert reader.read_only is not None
        assert reader.get_thread(thread.id).title == "shared"  # it reads
        with pytest.raises(tw.ReadOnlyStoreError, match=f"read-only for role {role}"):
            reader.add_message(thread.id, role="user", text="not written")
        with tw.Store(pg_url) as owner:
            for table in ("ALL TABLES", "ALL SEQUENCES"):
                owner._conn().execute(f"GRANT ALL ON {table} IN SCHEMA {schema} TO {role}")
        assert reader.add_message(thread.id, role="user", text="written").text == "written"  # granted: it writes
        assert reader.read_only is None


def test_a_view_says_it_is_reconnecting_while_the_server_is_away(own_server: Any, comms: list[Any]) -> None:
    """The view's status line says so (the connection trait), and what was written meanwhile shows
    once the server is back."""
    url = own_server.url + "?schema=views"
    with tw.Store(url) as store:
        thread = store.create_thread(agent="support")
        view = tw.ChatView(thread.id, store=store)
        assert view.connection == ""
        own_server.stop()
        wait_until(lambda: view.connection.startswith("Reconnecting to the store"), timeout=15)
        own_server.start()
        wait_until(lambda: view.connection == "", timeout=30)
        with tw.Store(url) as other:  # another kernel writes after the restart
            other.add_message(thread.id, role="user", text="after the restart")
        wait_until(lambda: [m["text"] for m in view.messages] == ["after the restart"], timeout=15)
        view.close()


def test_a_schema_from_before_branches_gets_one_path(pg_url: str) -> None:
    """Rows written before ``m007_branches`` (two prompts, their answers, a person's reply) read as
    one path after it: each turn follows the one before it."""
    from .conftest import raw_connection

    with raw_connection(pg_url) as conn:  # back to the schema before branches, as an older version left it
        for table, column in (("messages", "parent_id"), ("messages", "alternative"), ("messages", "chosen"),
                              ("messages", "on_path"), ("threads", "head_id"), ("threads", "forked_from"),
                              ("threads", "forked_at")):  # fmt: skip
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.execute("DELETE FROM threadwidget_migrations WHERE name = 'm007_branches'")
        conn.execute("INSERT INTO threads VALUES ('th_1', 'Old', NULL, 'support', NULL, 1, 1, 5)")
        for position, (mid, role, reply_to, turn, text) in enumerate([
            ("msg_1", "user", None, 0, "Where is order 42?"), ("msg_2", "assistant", "msg_1", 0, "Shipped."),
            ("msg_3", "assistant", None, 2, "I checked too."), ("msg_4", "user", None, 3, "When did it leave?"),
            ("msg_5", "assistant", "msg_4", 3, "On Monday."),
        ]):  # fmt: skip
            conn.execute(
                "INSERT INTO messages VALUES (?, 'th_1', ?, 0, ?, ?, 'success', NULL, NULL, NULL, NULL, NULL, NULL, "
                "1, 1, ?, ?, ?, NULL)",
                (mid, position, role, text, reply_to, turn, int(role == "assistant" and reply_to is not None)),
            )
    with tw.Store(pg_url) as store:
        path = store.list_messages("th_1")
        assert [m.text for m in path] == ["Where is order 42?", "Shipped.", "I checked too.", "When did it leave?",
                                          "On Monday."]  # fmt: skip
        assert [m.parent_id for m in path] == [None, None, "msg_1", "msg_3", None]
        assert all(m.on_path for m in path) and store.check() == []
        store.add_message("th_1", role="user", text="Thanks!")
        assert store.get_message(store.list_messages("th_1")[-1].id).parent_id == "msg_4"
