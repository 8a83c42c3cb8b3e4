"""The store's schema, created and upgraded by named migrations (sqlite-utils).

Never edit a migration that has shipped: add a new one at the end. ``SCHEMA_VERSION`` is the number
of migrations this version knows; it is written to ``PRAGMA user_version`` after migrating, so a
file written by a newer threadwidget is refused before anything touches it.

Migrations run inside one ``BEGIN IMMEDIATE`` transaction, so many processes opening a brand-new file
at the same instant do not race: the first creates the schema, the others wait on the write lock and
then find nothing pending.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from .._errors import SchemaVersionError

if TYPE_CHECKING:
    from sqlite_utils import Database

__all__ = ["SCHEMA_VERSION", "migrate"]

MIGRATION_SET = "threadwidget"


def _m001_initial(db: Database) -> None:
    db.execute(
        """CREATE TABLE threads (
            id TEXT PRIMARY KEY,
            title TEXT,
            user_id TEXT,
            agent TEXT,
            metadata TEXT,               -- JSON object
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX threads_user_updated ON threads (user_id, updated_at DESC, id)")
    db.execute("CREATE INDEX threads_updated ON threads (updated_at DESC, id)")
    db.execute(
        """CREATE TABLE messages (
            id TEXT PRIMARY KEY,
            thread_id TEXT NOT NULL REFERENCES threads(id),
            position INTEGER NOT NULL,   -- order within the thread, from 0
            step INTEGER NOT NULL DEFAULT 0,
            role TEXT NOT NULL,          -- system | user | assistant | tool
            text TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL,        -- pending | streaming | success | failed | aborted
            error TEXT,
            agent TEXT,
            model TEXT,
            usage TEXT,                  -- JSON {"input_tokens": int, "output_tokens": int}
            finish_reason TEXT,
            metadata TEXT,               -- JSON object
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            UNIQUE (thread_id, position)
        )"""
    )
    db.execute("CREATE INDEX messages_pending ON messages (status, role, agent)")
    db.execute(
        """CREATE TABLE deltas (
            id INTEGER PRIMARY KEY,
            message_id TEXT NOT NULL,
            thread_id TEXT NOT NULL,
            seq INTEGER NOT NULL,        -- 1, 2, 3 ... per message, no gaps
            text TEXT NOT NULL,
            created_at REAL NOT NULL,
            UNIQUE (message_id, seq)
        )"""
    )
    db.execute(
        """CREATE TABLE tool_calls (
            id TEXT PRIMARY KEY,
            thread_id TEXT NOT NULL,
            message_id TEXT NOT NULL,    -- the assistant message that made the call
            call_id TEXT NOT NULL,       -- the model's id for the call (tool results refer to it)
            name TEXT NOT NULL,
            arguments TEXT NOT NULL DEFAULT '',  -- JSON text, partial while status = streaming_args
            status TEXT NOT NULL,        -- streaming_args | running | success | error
            progress REAL,
            progress_note TEXT,
            result TEXT,                 -- JSON text
            error TEXT,
            created_at REAL NOT NULL,
            started_at REAL,
            ended_at REAL,
            updated_at REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX tool_calls_thread ON tool_calls (thread_id, created_at)")
    db.execute("CREATE INDEX tool_calls_message ON tool_calls (message_id)")
    db.execute(
        """CREATE TABLE changes (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- commit order; never reused after pruning
            thread_id TEXT,
            kind TEXT NOT NULL,          -- thread | message | delta | tool_call | run
            op TEXT NOT NULL,            -- insert | update | delete
            row_id TEXT,
            created_at REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE runs (
            message_id TEXT PRIMARY KEY, -- the assistant message being written
            thread_id TEXT NOT NULL,
            agent TEXT,
            owner TEXT NOT NULL,         -- "host:pid:random" of the writing process
            lease_expires_at REAL NOT NULL,
            abort_requested INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX runs_lease ON runs (lease_expires_at)")
    db.execute("CREATE INDEX runs_thread ON runs (thread_id)")


def _m002_answers(db: Database) -> None:
    """Answers linked to their prompts: ``reply_to``, ``turn`` (sort order), ``ends_answer``; who asked."""
    for column in (
        "reply_to TEXT",                            # assistant step: the prompt (user message) it answers
        "turn INTEGER",                             # sort key: the prompt's position, else its own
        "ends_answer INTEGER NOT NULL DEFAULT 0",   # 1 on an answer's last step
        "user_id TEXT",                             # who wrote a prompt
    ):  # fmt: skip
        db.execute(f"ALTER TABLE messages ADD COLUMN {column}")
    # what earlier files hold: an assistant message answers the user message before it, and ends
    # the answer when it is final and the next message is not an assistant's
    db.execute(
        """UPDATE messages SET reply_to = (
            SELECT u.id FROM messages u WHERE u.thread_id = messages.thread_id AND u.role = 'user'
            AND u.position < messages.position ORDER BY u.position DESC LIMIT 1
        ) WHERE role = 'assistant'"""
    )
    db.execute(
        "UPDATE messages SET turn = "
        "COALESCE((SELECT u.position FROM messages u WHERE u.id = messages.reply_to), position)"
    )
    db.execute(
        """UPDATE messages SET ends_answer = 1 WHERE role = 'assistant' AND reply_to IS NOT NULL
        AND status IN ('success', 'failed', 'aborted') AND NOT EXISTS (
            SELECT 1 FROM messages n WHERE n.thread_id = messages.thread_id
            AND n.position = messages.position + 1 AND n.role = 'assistant'
        )"""
    )
    # thread order, and an answer's steps (same thread and turn); waiting prompts use messages_pending
    db.execute("CREATE INDEX messages_turn ON messages (thread_id, turn, position)")
    # the tool calls still open, for the watcher that ends those nobody writes (only live rows)
    db.execute("CREATE INDEX tool_calls_open ON tool_calls (message_id) WHERE status IN ('streaming_args', 'running')")


def _m003_next_position(db: Database) -> None:
    """Each thread counts its messages' positions: a message's insert bumps it with the thread's
    ``updated_at`` (one statement, no MAX over the thread's messages)."""
    db.execute("ALTER TABLE threads ADD COLUMN next_position INTEGER NOT NULL DEFAULT 0")
    db.execute(
        "UPDATE threads SET next_position = "
        "(SELECT COALESCE(MAX(position) + 1, 0) FROM messages WHERE thread_id = threads.id)"
    )


def _m004_id_counters(db: Database) -> None:
    """The store's counts of the ids it gave, per kind (``th``, ``msg``, ``tc``): a store opened
    with ``deterministic_ids`` numbers its rows from them (``th_000001``), whichever process writes."""
    db.execute("CREATE TABLE id_counters (kind TEXT PRIMARY KEY, n INTEGER NOT NULL)")


def _m005_approvals(db: Database) -> None:
    """Tool calls a person decides: who decided what, when and why; an answer's turn parked while it
    waits for them (``runs.waiting_for``: no writer, no lease that expires)."""
    for column in (
        "decision TEXT",        # approved | denied; NULL: nobody was asked
        "decided_by TEXT",      # who decided (a user id); NULL when nobody was asked
        "decided_at REAL",      # when (unix seconds)
        "decision_note TEXT",   # the approver's note, or why it was denied
    ):  # fmt: skip
        db.execute(f"ALTER TABLE tool_calls ADD COLUMN {column}")
    db.execute("ALTER TABLE runs ADD COLUMN waiting_for TEXT")  # 'approval': parked, nobody writes it
    db.execute("CREATE INDEX tool_calls_waiting ON tool_calls (message_id) WHERE status = 'awaiting_approval'")


#: messages the search index takes at once from its pending list (bench/search.py weighed it)
FTS_BATCH = 128


def _m006_search(db: Database) -> None:
    """Full-text search over messages' text: an FTS5 index that reads the text from ``messages``
    (external content: no second copy), built here for the messages stored.

    Triggers keep it in step in the transaction of each write, whoever writes (the store, the
    reaper, another program): a message whose text is new goes to ``messages_fts_pending`` (one
    small row), and every ``FTS_BATCH`` pending messages are indexed at once, as a GIN index's
    pending list does on PostgreSQL; ``store.search`` indexes the pending messages first, so a
    search finds every committed message. (An FTS5 insert in each write added 7 pages to each
    commit, the pending list adds 1: bench/search.py.)"""
    db.execute(
        "CREATE VIRTUAL TABLE messages_fts USING fts5(text, content = 'messages', content_rowid = 'rowid', "
        "tokenize = 'unicode61 remove_diacritics 0', detail = full)"
    )
    db.execute("CREATE TABLE messages_fts_pending (rowid INTEGER PRIMARY KEY)  -- messages.rowid, text not indexed")
    db.execute(
        """CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.text != '' BEGIN
            INSERT OR IGNORE INTO messages_fts_pending VALUES (new.rowid);
        END"""
    )
    indexed = "old.text != '' AND NOT EXISTS (SELECT 1 FROM messages_fts_pending WHERE rowid = old.rowid)"
    db.execute(
        f"""CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages WHEN old.text IS NOT new.text BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, text) SELECT 'delete', old.rowid, old.text WHERE {indexed};
            DELETE FROM messages_fts_pending WHERE rowid = old.rowid AND new.text = '';
            INSERT OR IGNORE INTO messages_fts_pending SELECT new.rowid WHERE new.text != '';
        END"""
    )
    db.execute(
        f"""CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN old.text != '' BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, text) SELECT 'delete', old.rowid, old.text WHERE {indexed};
            DELETE FROM messages_fts_pending WHERE rowid = old.rowid;
        END"""
    )
    db.execute(
        f"""CREATE TRIGGER messages_fts_batch AFTER INSERT ON messages_fts_pending
            WHEN (SELECT COUNT(*) FROM messages_fts_pending) >= {FTS_BATCH} BEGIN
            INSERT INTO messages_fts (rowid, text)
                SELECT m.rowid, m.text FROM messages_fts_pending p JOIN messages m ON m.rowid = p.rowid;
            DELETE FROM messages_fts_pending;
        END"""
    )
    db.execute("INSERT INTO messages_fts (rowid, text) SELECT rowid, text FROM messages WHERE text != ''")


def _m007_presence(db: Database) -> None:
    """Who has a thread open: one row per open view, renewed every few seconds (``_presence.py``)."""
    db.execute(
        """CREATE TABLE presence (
            view_id TEXT PRIMARY KEY,    -- random per open view
            thread_id TEXT NOT NULL,
            user_id TEXT NOT NULL,       -- the view's person
            typing INTEGER NOT NULL DEFAULT 0,
            seen_at REAL NOT NULL        -- last renewed (unix seconds); older than 8 s: gone
        )"""
    )
    db.execute("CREATE INDEX presence_thread ON presence (thread_id, seen_at)")


def _m008_embeddings(db: Database) -> None:
    """Vectors of messages' text for vector search (``_vectors.py``): one per message, with the model
    that made it and its dimension; unit length, float32 little-endian (the layout sqlite-vec and
    numpy read). Written in the background after a message is final; no change row (nobody waits)."""
    db.execute(
        """CREATE TABLE embeddings (
            seq INTEGER PRIMARY KEY,      -- the order vectors were written (a searcher reads only newer ones)
            message_id TEXT NOT NULL UNIQUE,
            thread_id TEXT NOT NULL,
            model TEXT NOT NULL,          -- the embedder's model name
            dimensions INTEGER NOT NULL,  -- the vector's length
            vector BLOB NOT NULL,         -- float32 little-endian, unit length
            created_at REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX embeddings_model ON embeddings (model, dimensions)")
    db.execute("CREATE INDEX embeddings_thread ON embeddings (thread_id)")


def _m009_branches(db: Database) -> None:
    """Branches: versions of a prompt and alternatives of an answer, kept side by side.

    A message that starts a turn (a prompt, a person's reply, ...) has ``parent_id``: the turn it
    follows; turns with the same parent are versions of each other. An answer's steps carry
    ``alternative`` (0, 1, ... per prompt); a prompt's ``chosen`` is the alternative shown.
    ``threads.head_id`` is the last turn of the thread's current path, and ``on_path`` (1/0) marks
    the rows of that path, so reading it stays one indexed query. A fork records where it came
    from (``forked_from``: the thread, ``forked_at``: the message). Earlier files hold one path:
    each turn follows the one before it."""
    for column in (
        "parent_id TEXT",                               # a turn: the turn it follows (NULL: the first)
        "alternative INTEGER NOT NULL DEFAULT 0",       # a step: which answer to its prompt
        "chosen INTEGER NOT NULL DEFAULT 0",            # a prompt: the alternative of its answer shown
        "on_path INTEGER NOT NULL DEFAULT 1",           # 1: on the thread's current path
    ):  # fmt: skip
        db.execute(f"ALTER TABLE messages ADD COLUMN {column}")
    for column in ("head_id TEXT", "forked_from TEXT", "forked_at TEXT"):
        db.execute(f"ALTER TABLE threads ADD COLUMN {column}")
    db.execute(
        """UPDATE messages SET parent_id = (
            SELECT p.id FROM messages p WHERE p.thread_id = messages.thread_id AND p.turn = p.position
            AND p.position < messages.position ORDER BY p.position DESC LIMIT 1
        ) WHERE turn = position"""
    )
    db.execute(
        "UPDATE threads SET head_id = (SELECT id FROM messages WHERE thread_id = threads.id AND turn = position "
        "ORDER BY position DESC LIMIT 1)"
    )
    db.execute("CREATE INDEX messages_parent ON messages (parent_id)")


def _m010_regenerations(db: Database) -> None:
    """Regenerations waiting for the thread's turn, like prompts: one row per request, in order
    (``seq``). ``alternative`` is the number its answer will have (kept when it is cancelled, so
    numbers never repeat); ``after_position``: the thread's last message when it was asked, so it
    is answered after the prompts queued before it and before those queued after. A process
    serving ``agent`` deletes the row in the transaction that starts the answer; a cancelled one
    stays, ``cancelled``, so its ``Answer`` can say so."""
    db.execute(
        """CREATE TABLE regenerations (
            seq INTEGER PRIMARY KEY,
            thread_id TEXT NOT NULL,
            prompt_id TEXT NOT NULL,
            alternative INTEGER NOT NULL,
            agent TEXT NOT NULL,
            user_id TEXT,
            after_position INTEGER NOT NULL,
            status TEXT NOT NULL,
            created_at REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX regenerations_thread ON regenerations (thread_id, status)")
    db.execute("CREATE UNIQUE INDEX regenerations_answer ON regenerations (prompt_id, alternative)")


MIGRATIONS = [
    _m001_initial,
    _m002_answers,
    _m003_next_position,
    _m004_id_counters,
    _m005_approvals,
    _m006_search,
    _m007_presence,
    _m008_embeddings,
    _m009_branches,
    _m010_regenerations,
]
SCHEMA_VERSION = len(MIGRATIONS)


def check_version(conn: sqlite3.Connection, path: str) -> int:
    """Refuse a file written by a newer threadwidget. Returns the file's schema version."""
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        from .._version import __version__

        raise SchemaVersionError(
            f"{path} has thread-store schema version {version}, but threadwidget {__version__} "
            f"supports up to version {SCHEMA_VERSION}. Upgrade threadwidget "
            f"(pip install -U threadwidget) or open a different file."
        )
    return version


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring the file up to ``SCHEMA_VERSION``; cheap when it already is."""
    if check_version(conn, path) == SCHEMA_VERSION:
        return
    from sqlite_utils import Database
    from sqlite_utils.migrations import Migrations

    migrations = Migrations(MIGRATION_SET)
    for fn in MIGRATIONS:
        migrations(name=fn.__name__.lstrip("_"))(fn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        # re-check under the write lock: another process may have migrated meanwhile
        if check_version(conn, path) < SCHEMA_VERSION:
            migrations.apply(Database(conn))  # nested in our transaction: savepoints
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
