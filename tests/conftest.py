"""Shared fixtures. Tests never touch the user's real data directory."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("data")
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    monkeypatch.setenv("THREADWIDGET_DB", str(home / "default.db"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_MODEL", raising=False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only(why): the test is about SQLite's files; not run on PostgreSQL")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test about SQLite's files (the bell, modes, sizes) runs on SQLite only."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("backend") == "postgres"
        (drop if on_postgres and item.get_closest_marker("sqlite_only") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """One throwaway PostgreSQL server for the session, started on first use (``pg_server.py``)."""
    from .pg_server import PostgresServer, postgres_bin

    if postgres_bin() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is not installed (apt-get install postgresql); CI runs both backends")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql): the PostgreSQL runs are skipped")
    server = PostgresServer()
    yield server
    server.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """The store's backend: every test that uses ``db_path`` or ``store`` runs on both."""
    return str(request.param)


@pytest.fixture
def db_path(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Any:
    """Where the test's store lives: a new SQLite file, or a new schema on the session's server."""
    if backend == "sqlite":
        return tmp_path / "threads.db"
    server = request.getfixturevalue("postgres_server")
    return f"{server.url}?schema=t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(db_path: Path) -> Iterator[object]:
    import threadwidget as tw

    s = tw.Store(db_path)
    yield s
    s.close()


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[Any]]]:
    """Subprocesses a test starts (append them): killed and reaped when the test ends."""
    started: list[subprocess.Popen[Any]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(10)


@contextlib.contextmanager
def raw_connection(location: Any) -> Iterator[Any]:
    """Another program's connection to a store (autocommit; SQLite's SQL on both backends): for
    leaving what a crash or a foreign writer could leave."""
    import threadwidget as tw

    store = tw.Store(location)
    conn = store._db.connect()
    try:
        yield conn
    finally:
        conn.close()
        store.close()


def make_schema_newer(location: Any) -> None:
    """Record a migration this version does not know, as a newer threadwidget would."""
    with raw_connection(location) as conn:
        if isinstance(location, str):
            conn.execute("INSERT INTO threadwidget_migrations VALUES ('m099_future', 0)")
        else:
            conn.execute("PRAGMA user_version = 99")


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.005) -> object:
    """Poll ``predicate`` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s: {predicate}")
        time.sleep(interval)  # polling interval of a deadline-bounded wait, not synchronisation


def python_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


PYTHON = sys.executable
