"""The store's files: a bell that cannot be turned against its user, and SQLite errors that tell
what happened to the file."""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import pytest

import threadwidget as tw

from .conftest import wait_until


def open_warned(path: Path) -> tuple[tw.Store, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = tw.Store(path)
    return store, [str(w.message) for w in caught if issubclass(w.category, tw.StoreWarning)]


@pytest.mark.parametrize("kind", ["symlink", "hardlink", "fifo"])
def test_a_bell_that_is_not_a_plain_file_is_never_written(tmp_path: Path, kind: str) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    before = victim.stat()
    bell = tmp_path / "threads.db-bell"
    if kind == "symlink":
        bell.symlink_to(victim)
    elif kind == "hardlink":
        os.link(victim, bell)
    else:
        os.mkfifo(bell)
    store, said = open_warned(tmp_path / "threads.db")
    with store:
        assert len(said) == 1 and str(bell) in said[0] and "polling" in said[0] and f"rm {bell}" in said[0]
        got: list[tw.Event] = []
        store.subscribe(got.append)
        assert store.feed_mode == "poll"  # visibly: nobody rings a refused bell
        thread = store.create_thread()
        for i in range(3):
            store.add_message(thread.id, role="user", text=f"m{i}")
        wait_until(lambda: len([e for e in got if e.kind == "message"]) == 3)
    after = victim.stat()
    assert victim.read_text() == "precious" and (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, 8)


def test_a_deleted_bell_is_made_again_and_watched(tmp_path: Path) -> None:
    with tw.Store(tmp_path / "threads.db") as store:
        got: list[tw.Event] = []
        store.subscribe(got.append)
        thread = store.create_thread()
        bell = Path(f"{store.path}-bell")
        bell.unlink()

        def written_again() -> bool:
            store.add_message(thread.id, role="user", text="ring")  # each write rings; after a second, reopens
            return bell.exists()

        wait_until(written_again, timeout=10, interval=0.05)
        assert stat.S_ISREG(bell.lstat().st_mode)
        wait_until(lambda: store._feed is not None and store._feed._waiter._armed)  # type: ignore[attr-defined]
        count = len(got)
        store.add_message(thread.id, role="user", text="after")
        wait_until(lambda: len(got) > count and got[-1].row.text == "after")  # type: ignore[union-attr]


def test_a_full_disk_is_named_and_loses_nothing(tmp_path: Path) -> None:
    with tw.Store(tmp_path / "threads.db") as store:
        thread = store.create_thread()
        kept = store.add_message(thread.id, role="user", text="kept")
        (pages,) = store._conn().execute("PRAGMA page_count").fetchone()
        store._conn().execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own SQLITE_FULL
        with pytest.raises(tw.StoreFullError, match="is full") as err:
            store.add_message(thread.id, role="user", text="x" * 100_000)
        assert "Free some space" in str(err.value) and str(store.path) in str(err.value)
        assert [m.id for m in store.list_messages(thread.id)] == [kept.id]  # the failed write left nothing


def test_a_store_without_its_tables_says_so(tmp_path: Path) -> None:
    with tw.Store(tmp_path / "threads.db") as store:
        thread = store.create_thread()
        store._conn().execute("DROP TABLE changes")  # as another program might
        with pytest.raises(tw.CorruptStoreError, match="lacks threadwidget's tables"):
            store.add_message(thread.id, role="user", text="hi")


def test_busy_is_not_confused_with_other_errors(tmp_path: Path) -> None:
    """Only a lock held too long reads as 'locked by another process'."""
    import sqlite3

    with tw.Store(tmp_path / "threads.db", busy_timeout=0.05) as store:
        thread = store.create_thread()
        holder = sqlite3.connect(store.path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # a sqlite3 shell holding the write lock
        try:
            with pytest.raises(tw.StoreBusyError, match="stayed locked by another process"):
                store.add_message(thread.id, role="user", text="waits, then gives up")
        finally:
            holder.execute("ROLLBACK")
            holder.close()


def test_another_applications_database_is_refused_untouched(tmp_path: Path) -> None:
    import sqlite3

    foreign = tmp_path / "inventory.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE items (sku TEXT, qty INT)")
    conn.execute("INSERT INTO items VALUES ('a-1', 3)")
    conn.execute("PRAGMA user_version = 7")
    conn.commit()
    conn.close()
    before = foreign.read_bytes()
    with pytest.raises(tw.NotADatabaseError, match=r"another application \(tables: items\).*left untouched"):
        tw.Store(foreign)
    assert foreign.read_bytes() == before  # byte for byte: no WAL switch, no tables, no user_version
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inventory.db"]  # and no side files


def test_a_damaged_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "threads.db"
    with tw.Store(path) as store:
        thread = store.create_thread()
        for i in range(200):
            store.add_message(thread.id, role="user", text=f"message {i} " * 20)
    data = bytearray(path.read_bytes())
    data[4096 : 4096 + 2048] = os.urandom(2048)  # flipped bytes in the second page
    path.write_bytes(bytes(data))
    with pytest.raises(tw.CorruptStoreError, match=r"is damaged \(database disk image is malformed"):
        tw.Store(path)  # found at open, before anything reads or writes it


@pytest.mark.parametrize(
    ("name", "text", "kind", "says"),
    [
        ("SQLITE_IOERR_WRITE", "disk I/O error", tw.StoreIOError, "failed in the operating system"),
        ("SQLITE_READONLY_DBMOVED", "attempt to write a readonly database", tw.ReadOnlyStoreError, "read-only here"),
        ("SQLITE_FULL", "database or disk is full", tw.StoreFullError, "Free some space"),
        ("SQLITE_CORRUPT", "database disk image is malformed", tw.CorruptStoreError, "integrity_check"),
        ("SQLITE_BUSY", "database is locked", tw.StoreBusyError, "stayed locked"),
        ("SQLITE_ERROR", "no such table: changes", tw.CorruptStoreError, "lacks threadwidget's tables"),
    ],
)
def test_sqlite_errors_are_named_by_what_happened(
    tmp_path: Path, name: str, text: str, kind: type, says: str
) -> None:
    """The mapping by SQLite's error code (the cases a test cannot provoke for real: an I/O error)."""
    import sqlite3

    from threadwidget.store._files import sqlite_error

    exc = sqlite3.OperationalError(text)
    exc.sqlite_errorname = name  # type: ignore[attr-defined]  # what sqlite3 sets on a real error
    error = sqlite_error(exc, tmp_path / "threads.db")
    assert type(error) is kind and says in str(error) and str(tmp_path / "threads.db") in str(error)
