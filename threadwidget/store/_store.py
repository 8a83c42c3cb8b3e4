"""``tw.Store``: the SQLite thread store shared by every process that opens the same file.

``Store`` puts three collaborators together and calls each one way: the database (``_db.py``: the
file, connections, transactions, the bell), the feed (``_feed.py``: the watcher thread and its
subscribers) and the rows — threads, messages, deltas and tool calls (``_tables.py``), prompts and
answers (``_turns.py``), decisions on tool calls (``_approvals.py``), and the runtime's turns and
leases (``_runs.py``, internal). Here: opening
(the shared default store), the feed, housekeeping, checks and usage.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from .._budget import Budget
from .._errors import InvalidArgumentError
from .._usage import Usage
from ._approvals import Approvals
from ._branches import Branches
from ._checks import check_choice, check_number
from ._db import default_path, log_change
from ._dialect import Conn, DatabaseLayer, is_server_url, open_database
from ._export import Exports
from ._feed import Callback, Feed, Subscription
from ._presence import Presences
from ._rows import new_id
from ._runs import Runs
from ._search import Search
from ._spend import Spending
from ._tables import Tables
from ._turns import Turns
from ._vectors import Embedder, Vectors

__all__ = ["Store"]

T = TypeVar("T")
S = TypeVar("S", bound="Store")

#: the table each id prefix numbers, for ``deterministic_ids``
_ID_TABLES = {"th": "threads", "msg": "messages", "tc": "tool_calls"}


def _location(path: str | os.PathLike[str] | None) -> Path | str:
    """A server URL as given; a file path expanded; ``None``: ``$THREADWIDGET_DB`` or the default."""
    if path is None:
        env = os.environ.get("THREADWIDGET_DB", "")
        return env if is_server_url(env) else default_path()
    if is_server_url(path):
        return str(path)
    return Path(path).expanduser()


def _deterministic_ids(value: object) -> bool:
    """``deterministic_ids=`` as given, else ``$THREADWIDGET_DETERMINISTIC_IDS`` (``1``: on; ``0`` or
    unset: off)."""
    if value is None:
        env = os.environ.get("THREADWIDGET_DETERMINISTIC_IDS", "").strip()
        if env not in ("", "0", "1"):
            raise InvalidArgumentError(
                f"THREADWIDGET_DETERMINISTIC_IDS={env!r} is not valid; set it to 1 (number the ids: "
                "th_000001, ...) or 0 (random ids, the default), or unset it."
            )
        return env == "1"
    if not isinstance(value, bool):
        raise InvalidArgumentError(
            f"deterministic_ids={value!r} is not valid; expected True (number the ids: th_000001, ...), "
            "False (random ids) or None ($THREADWIDGET_DETERMINISTIC_IDS decides)."
        )
    return value


class Store(Vectors, Spending, Exports, Branches, Presences, Search, Approvals, Turns, Runs, Tables):
    """A thread store in one SQLite file, shared by every process that opens it.

    ``Store()`` opens ``$THREADWIDGET_DB`` or the per-user default; ``Store("threads.db")`` opens or
    creates that file. ``watch`` picks how the change feed wakes up: ``"auto"`` (inotify on Linux,
    polling on network file systems and elsewhere), ``"inotify"`` or ``"poll"``. Use it as a context
    manager, or ``close()`` it, to stop its feed and close its connections.

    ``Store()`` with no arguments is the process's shared store of the default path: every call
    (and every agent or view made without ``store=``) gets the same open store, with one watcher
    thread, until it is closed. A path or an option opens a store of its own.

    Ids are random (``th_`` and 20 hex digits: unique across stores, so stores can be copied into
    each other). ``deterministic_ids=True`` (or ``$THREADWIDGET_DETERMINISTIC_IDS=1`` when it is not
    given), for tests and tutorials, numbers the rows this store writes instead, per kind, from a
    count kept in the database: ``th_000001``, ``msg_000001``, ``tc_000001``. Unique within the store
    whichever processes write it (a number already taken is skipped, deleted ones are not reused),
    and the same on every run that writes the same rows in the same order into a new store; not
    unique across stores, so do not copy such stores into each other.

    ``embedder=tw.OpenAIEmbedding(...)`` embeds each final message in the background for
    ``search(mode="vector" | "hybrid")`` (see ``use_embedder``);
    ``budget=tw.Budget(...)`` limits the answers of every agent writing through this store (each
    agent's own ``budget`` applies too); ``cost(...)`` and ``costs(by=...)`` say what answers cost.
    """

    _shared: ClassVar[dict[Path | str, Store]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()
    _shared_key: Path | str | None = None
    _opened = False

    def __new__(cls: type[S], path: str | os.PathLike[str] | None = None, **options: object) -> S:
        if path is not None or options:
            return super().__new__(cls)
        found_at = _location(None)
        key = found_at if isinstance(found_at, str) else found_at.absolute()
        with Store._shared_lock:
            found = Store._shared.get(key)
            if isinstance(found, cls) and found._opened and not found._closed:
                return found
            made = super().__new__(cls)
            made._shared_key = key  # __init__ opens it; close() forgets it
            Store._shared[key] = made
            return made

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        watch: str = "auto",
        poll_interval: float = 0.002,
        busy_timeout: float = 5.0,
        keep_changes: int = 50_000,
        deterministic_ids: bool | None = None,
        embedder: Embedder | None = None,
        budget: Budget | None = None,
    ):
        if self._opened:
            return  # the shared store, already open
        check_choice("watch", watch, ("auto", "inotify", "poll"))
        check_number("poll_interval", poll_interval, above=0.0005, example="0.002 (seconds)")
        check_number("busy_timeout", busy_timeout, above=0, example="5.0 (seconds)")
        if not isinstance(keep_changes, int) or isinstance(keep_changes, bool) or keep_changes < 100:
            raise InvalidArgumentError(
                f"keep_changes={keep_changes!r} is not valid; expected an int >= 100, e.g. keep_changes=50_000."
            )
        self._deterministic_ids = _deterministic_ids(deterministic_ids)
        if budget is not None and not isinstance(budget, Budget):
            raise InvalidArgumentError(f"budget={budget!r} is not valid; expected tw.Budget(...) or None.")
        #: limits every agent's answers in this store run under (besides the agent's own budget)
        self.budget = budget
        location = _location(path)
        if path is None and not os.environ.get("THREADWIDGET_DB"):
            default_path().parent.mkdir(parents=True, exist_ok=True)  # the per-user data directory
        self._db: DatabaseLayer = open_database(location, busy_timeout=busy_timeout)
        #: the file's ``Path``, or the server's URL without its password
        self.path: Path | str = self._db.path
        self._watch = watch
        self._poll_interval = poll_interval
        self._keep_changes = keep_changes
        self._feed: Feed | None = None
        self._feed_lock = threading.Lock()
        #: who holds a lease: ``host:pid:random``, one per open store
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._opened = True
        if embedder is not None:
            try:
                self.use_embedder(embedder)
            except BaseException:
                self.close()
                raise

    @property
    def deterministic_ids(self) -> bool:
        """True when this store numbers the ids it gives (``th_000001``) instead of drawing them."""
        return self._deterministic_ids

    @property
    def read_only(self) -> str | None:
        """Why this process cannot write the store (``None`` when it can); views show it."""
        return self._db.read_only

    @property
    def _closed(self) -> bool:
        return self._db.closed

    # -- what the rows use ----------------------------------------------------------------------

    def _conn(self) -> Conn:
        return self._db.conn()

    def _write(self, fn: Any) -> Any:
        return self._db.write(fn)

    _log = staticmethod(log_change)

    def _new_id(self, conn: Conn, prefix: str) -> str:
        """A new id for a row of kind ``prefix`` (``th``, ``msg``, ``tc``), taken in the write that
        inserts the row: random, or the store's next number for that kind (``deterministic_ids``;
        the count rolls back with a write that fails)."""
        if not self._deterministic_ids:
            return new_id(prefix)
        while True:
            (n,) = conn.execute(
                "INSERT INTO id_counters VALUES (?, 1) ON CONFLICT (kind) DO UPDATE SET n = id_counters.n + 1 "
                "RETURNING n",
                (prefix,),
            ).fetchone()
            candidate = f"{prefix}_{n:06d}"
            # a row copied from another store may hold the number already
            if conn.execute(f"SELECT 1 FROM {_ID_TABLES[prefix]} WHERE id = ?", (candidate,)).fetchone() is None:
                return candidate

    # -- opening and closing --------------------------------------------------------------------

    def close(self) -> None:
        """Stop the feed and close every connection. Safe to call twice."""
        if self._db.closed:
            return
        with Store._shared_lock:
            if self._shared_key is not None and Store._shared.get(self._shared_key) is self:
                del Store._shared[self._shared_key]
        self._stop_indexer()
        with self._feed_lock:
            if self._feed is not None:
                self._feed.stop()
                self._feed = None
        self._db.close()

    def __enter__(self: S) -> S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<tw.Store {str(self.path)!r}{' closed' if self._db.closed else ''}>"

    # -- the change feed ----------------------------------------------------------------------

    def subscribe(self, callback: Callback, *, thread_id: str | None = None, since: int | None = None) -> Subscription:
        """Call ``callback(event)`` for every change committed from now on (or after seq ``since``),
        in commit order, from this store's watcher thread. ``thread_id`` narrows to one thread."""
        if not callable(callback):
            raise InvalidArgumentError(f"callback={callback!r} is not callable; pass a function taking one event.")
        if thread_id is not None and not isinstance(thread_id, str):
            raise InvalidArgumentError(f"thread_id={thread_id!r} is not valid; expected a thread id (str) or None.")
        if since is not None and (not isinstance(since, int) or isinstance(since, bool) or since < 0):
            raise InvalidArgumentError(
                f"since={since!r} is not valid; expected a change seq (an int >= 0, e.g. event.seq or "
                "store.last_seq()) or None."
            )
        return self._ensure_feed().add(callback, thread_id, since)

    def last_seq(self) -> int:
        """The seq of the newest committed change (0 for a new store)."""
        return self._db.last_seq()

    @property
    def feed_connected(self) -> bool | None:
        """False while the feed reconnects to a PostgreSQL server that went away (it then delivers
        what it missed, in order); None before the feed runs."""
        return self._feed.connected if self._feed else None

    @property
    def feed_mode(self) -> str | None:
        """``inotify`` or ``poll`` once the feed runs, else None."""
        return self._feed.mode if self._feed else None

    def _ensure_feed(self) -> Feed:
        with self._feed_lock:
            if self._feed is None:
                self._db.conn()  # raises if closed
                self._feed = Feed(
                    self._db.connect,
                    self._db.make_waiter(self._watch, self._poll_interval),
                    last_seq=self._db.last_seq,
                    housekeeping=self._housekeeping,
                    version=self._db.data_version,
                )
            return self._feed

    def start_watching(self) -> None:
        """Run the watcher (and its housekeeping, e.g. failing answers whose writer died) even with
        no subscriber."""
        self._ensure_feed()

    def prune_changes(self, keep: int | None = None) -> int:
        """Delete all but the newest ``keep`` change-log rows. Rows themselves are untouched;
        subscribers that were further behind get a ``resync`` event."""
        keep = self._keep_changes if keep is None else keep

        def write(conn: Conn, now: float) -> int:
            (top,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()
            return conn.execute("DELETE FROM changes WHERE seq <= ?", (top - keep,)).rowcount

        return self._write(write)

    def _housekeeping(self) -> None:
        self.reap_expired()
        self._forget_presence()
        (count,) = self._conn().execute("SELECT MAX(seq) - MIN(seq) FROM changes").fetchone()
        if count and count > self._keep_changes * 1.2:
            self.prune_changes()

    # -- checks ---------------------------------------------------------------------------------

    def check(self) -> list[str]:
        """Problems found in the file and in the rows' invariants (an empty list: none): SQLite's
        integrity check, gaps in a message's deltas, live rows nobody writes (no lease), expired
        leases not yet reaped, answers without a last step, a current path that does not hold
        together. Reads only."""
        conn = self._conn()
        problems = [f"integrity: {p}" for p in self._db.integrity_problems(conn)]
        now = self._db.now()
        queries = [
            ("SELECT message_id, COUNT(*), MAX(seq) FROM deltas GROUP BY message_id HAVING COUNT(*) != MAX(seq)",
             "message {0}: {1} deltas numbered up to {2} (a gap)"),
            ("SELECT id, status FROM messages WHERE role = 'assistant' AND status IN ('pending', 'streaming') "
             "AND id NOT IN (SELECT message_id FROM runs)",
             "message {0} is {1} but nobody writes it (no lease)"),
            ("SELECT id, name, status FROM tool_calls WHERE status IN ('streaming_args', 'running') "
             "AND message_id NOT IN (SELECT message_id FROM runs)",
             "tool call {0} ({1}) is {2} but its answer has no writer"),
            ("SELECT t.id, t.next_position, MAX(m.position) FROM threads t JOIN messages m ON m.thread_id = t.id "
             "GROUP BY t.id, t.next_position HAVING t.next_position <= MAX(m.position)",
             "thread {0} would number its next message {1}, but it has one at position {2}"),
            (f"SELECT message_id, thread_id FROM runs WHERE lease_expires_at < {now!r} AND waiting_for IS NULL",
             "the lease on message {0} (thread {1}) expired; a watching process will end it"),
            ("SELECT DISTINCT p.id FROM messages p JOIN messages s ON s.reply_to = p.id AND s.thread_id = p.thread_id "
             "AND s.turn = p.turn WHERE NOT EXISTS (SELECT 1 FROM messages e WHERE e.reply_to = p.id "
             "AND e.thread_id = p.thread_id AND e.turn = p.turn AND e.alternative = s.alternative "
             "AND e.ends_answer = 1) "
             "AND NOT EXISTS (SELECT 1 FROM runs r JOIN messages m ON m.id = r.message_id WHERE m.reply_to = p.id)",
             "the answer to prompt {0} has no last step and nobody writes it"),
            ("SELECT t.id, t.head_id FROM threads t WHERE t.head_id IS NOT NULL AND NOT EXISTS "
             "(SELECT 1 FROM messages m WHERE m.id = t.head_id AND m.thread_id = t.id)",
             "thread {0}: its current path ends at {1}, which is not a message of it"),
            ("SELECT s.id, s.reply_to FROM messages s JOIN messages p ON p.id = s.reply_to "
             "WHERE s.on_path = 1 AND (p.on_path = 0 OR s.alternative != p.chosen)",
             "message {0} is on its thread's path, but not the answer its prompt {1} shows there"),
        ]  # fmt: skip
        for sql, says in queries:
            problems += [says.format(*row) for row in conn.execute(sql)]
        return problems

    # -- usage ----------------------------------------------------------------------------------

    def usage(self, *, thread_id: str | None = None, agent: str | None = None) -> Usage:
        """Tokens used, summed over a thread, an agent, or the whole store (aborted and failed
        answers included)."""
        sql = (
            "SELECT COALESCE(SUM(json_extract(usage, '$.input_tokens')), 0), "
            "COALESCE(SUM(json_extract(usage, '$.output_tokens')), 0), "
            "COALESCE(SUM(json_extract(usage, '$.cached_input_tokens')), 0) FROM messages WHERE usage IS NOT NULL"
        )
        args: list[Any] = []
        if thread_id is not None:
            sql += " AND thread_id = ?"
            args.append(thread_id)
        if agent is not None:
            sql += " AND agent = ?"
            args.append(agent)
        i, o, c = self._conn().execute(sql, args).fetchone()
        return Usage(int(i), int(o), int(c))

    def usage_by_agent(self) -> dict[str | None, Usage]:
        """Tokens used per agent over the whole store, most tokens first. Keys are the messages'
        ``agent`` (what ``usage(agent=...)`` filters on); ``None`` gathers messages without one."""
        rows = self._conn().execute(
            "SELECT agent, i, o, c FROM (SELECT agent, COALESCE(SUM(json_extract(usage, '$.input_tokens')), 0) AS i, "
            "COALESCE(SUM(json_extract(usage, '$.output_tokens')), 0) AS o, "
            "COALESCE(SUM(json_extract(usage, '$.cached_input_tokens')), 0) AS c FROM messages "
            "WHERE usage IS NOT NULL GROUP BY agent) AS per_agent ORDER BY i + o DESC, agent"
        )
        return {agent: Usage(int(i), int(o), int(c)) for agent, i, o, c in rows}
