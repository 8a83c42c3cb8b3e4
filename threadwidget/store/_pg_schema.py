"""The store's schema on PostgreSQL: named migrations, recorded in the database.

The tables mirror SQLite's (``_schema.py``) column for column and in the same order, so the rows'
SQL and the typed rows work on both; indexes differ where PostgreSQL's MVCC wants it. Each
migration runs in one transaction holding an advisory lock, so kernels opening an empty database at
the same instant do not race: the first creates the schema, the others wait, then find nothing to
do. A database migrated by a newer threadwidget (a migration name this version does not know) is
refused before anything is written.
"""

from __future__ import annotations

from typing import Any

from .._errors import SchemaVersionError

__all__ = ["MIGRATIONS", "migrate"]

_LOCK = 0x7477_6D69_6772  # "twmigr": one key for every schema's migrations


def _m001_initial(schema: str) -> list[str]:
    return [
        f"CREATE SCHEMA IF NOT EXISTS {schema}",
        # every message bumps its thread's updated_at: no index on it, and room in each page, so the
        # update is HOT (no new index entries, old versions pruned in place) however busy a thread is;
        # listing threads sorts them instead
        """CREATE TABLE threads (
            id text PRIMARY KEY, title text, user_id text, agent text, metadata text,
            created_at double precision NOT NULL, updated_at double precision NOT NULL,
            next_position integer NOT NULL DEFAULT 0) WITH (fillfactor = 50)""",
        "CREATE INDEX threads_user ON threads (user_id)",
        """CREATE TABLE messages (
            id text PRIMARY KEY, thread_id text NOT NULL, position integer NOT NULL,
            step integer NOT NULL DEFAULT 0, role text NOT NULL, text text NOT NULL DEFAULT '',
            status text NOT NULL, error text, agent text, model text, usage text, finish_reason text,
            metadata text, created_at double precision NOT NULL, updated_at double precision NOT NULL,
            reply_to text, turn integer, ends_answer integer NOT NULL DEFAULT 0, user_id text,
            UNIQUE (thread_id, position))""",
        "CREATE INDEX messages_pending ON messages (status, role, agent)",
        "CREATE INDEX messages_turn ON messages (thread_id, turn, position)",
        """CREATE TABLE deltas (
            id bigserial PRIMARY KEY, message_id text NOT NULL, thread_id text NOT NULL,
            seq integer NOT NULL, text text NOT NULL, created_at double precision NOT NULL,
            UNIQUE (message_id, seq))""",
        """CREATE TABLE tool_calls (
            id text PRIMARY KEY, thread_id text NOT NULL, message_id text NOT NULL, call_id text NOT NULL,
            name text NOT NULL, arguments text NOT NULL DEFAULT '', status text NOT NULL,
            progress double precision, progress_note text, result text, error text,
            created_at double precision NOT NULL, started_at double precision, ended_at double precision,
            updated_at double precision NOT NULL)""",
        "CREATE INDEX tool_calls_thread ON tool_calls (thread_id, created_at)",
        "CREATE INDEX tool_calls_message ON tool_calls (message_id)",
        "CREATE INDEX tool_calls_open ON tool_calls (message_id) WHERE status IN ('streaming_args', 'running')",
        """CREATE TABLE changes (
            seq bigserial PRIMARY KEY, thread_id text, kind text NOT NULL, op text NOT NULL, row_id text,
            created_at double precision NOT NULL)""",
        """CREATE TABLE runs (
            message_id text PRIMARY KEY, thread_id text NOT NULL, agent text, owner text NOT NULL,
            lease_expires_at double precision NOT NULL, abort_requested integer NOT NULL DEFAULT 0,
            created_at double precision NOT NULL, updated_at double precision NOT NULL)""",
        "CREATE INDEX runs_lease ON runs (lease_expires_at)",
        "CREATE INDEX runs_thread ON runs (thread_id)",
        # every write logs its changes: the log wakes the feeds (NOTIFY is delivered at commit,
        # once per transaction however many rows it logged), whoever the writer is
        f"""CREATE FUNCTION notify_changes() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_notify('threadwidget_{schema}', ''); RETURN NULL; END $$""",
        "CREATE TRIGGER changes_notify AFTER INSERT ON changes FOR EACH STATEMENT EXECUTE FUNCTION notify_changes()",
    ]


def _m002_id_counters(schema: str) -> list[str]:
    """The ids given per kind, for ``deterministic_ids`` (SQLite's ``m004_id_counters``)."""
    return ["CREATE TABLE id_counters (kind text PRIMARY KEY, n bigint NOT NULL)"]


def _m003_approvals(schema: str) -> list[str]:
    """Decisions on tool calls and parked turns (SQLite's ``m005_approvals``)."""
    return [
        "ALTER TABLE tool_calls ADD COLUMN decision text",
        "ALTER TABLE tool_calls ADD COLUMN decided_by text",
        "ALTER TABLE tool_calls ADD COLUMN decided_at double precision",
        "ALTER TABLE tool_calls ADD COLUMN decision_note text",
        "ALTER TABLE runs ADD COLUMN waiting_for text",
        "CREATE INDEX tool_calls_waiting ON tool_calls (message_id) WHERE status = 'awaiting_approval'",
    ]


#: ASCII punctuation, which the index reads as spaces: words are runs of letters and digits, as
#: on SQLite (``user@example.com`` is three words, not one e-mail token)
_PUNCTUATION = r"""!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~"""
#: the characters of a message the index reads (a tsvector holds at most 1 MB)
SEARCH_CHARS = 100_000


def search_words(column: str) -> str:
    """The SQL of a text's words as the index holds them."""
    punctuation = _PUNCTUATION.replace("'", "''")
    return (
        f"to_tsvector('simple', translate(left({column}, {SEARCH_CHARS}), '{punctuation}', "
        f"repeat(' ', {len(_PUNCTUATION)})))"
    )


def _m004_search(schema: str) -> list[str]:
    """Full-text search over messages' text (SQLite's ``m006_search``): each message's words as a
    ``tsvector`` in ``message_search`` with a GIN index, kept in step by a trigger in the
    transaction of each write (whoever writes), built here for the messages stored."""
    return [
        "CREATE TABLE message_search (message_id text PRIMARY KEY, words tsvector NOT NULL)",
        "CREATE INDEX message_search_words ON message_search USING gin (words)",
        f"""CREATE FUNCTION {schema}.index_message_text() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'UPDATE' THEN
                    IF NEW.text IS NOT DISTINCT FROM OLD.text THEN RETURN NULL; END IF;
                END IF;
                IF TG_OP <> 'INSERT' THEN
                    DELETE FROM {schema}.message_search WHERE message_id = OLD.id;
                END IF;
                IF TG_OP <> 'DELETE' THEN
                    IF NEW.text <> '' THEN
                        INSERT INTO {schema}.message_search VALUES (NEW.id, {search_words("NEW.text")});
                    END IF;
                END IF;
                RETURN NULL;
            END $$""",
        "CREATE TRIGGER messages_search AFTER INSERT OR DELETE OR UPDATE OF text ON messages "
        f"FOR EACH ROW EXECUTE FUNCTION {schema}.index_message_text()",
        f"INSERT INTO message_search SELECT id, {search_words('text')} FROM messages WHERE text <> ''",
    ]


def _m005_presence(schema: str) -> list[str]:
    """Who has a thread open (SQLite's ``m007_presence``)."""
    return [
        """CREATE TABLE presence (
            view_id text PRIMARY KEY, thread_id text NOT NULL, user_id text NOT NULL,
            typing integer NOT NULL DEFAULT 0, seen_at double precision NOT NULL) WITH (fillfactor = 50)""",
        "CREATE INDEX presence_thread ON presence (thread_id, seen_at)",
    ]


def _m006_embeddings(schema: str) -> list[str]:
    """Vectors of messages' text (SQLite's ``m008_embeddings``): float32 little-endian in ``bytea``."""
    return [
        """CREATE TABLE embeddings (
            seq bigserial PRIMARY KEY, message_id text NOT NULL UNIQUE, thread_id text NOT NULL, model text NOT NULL,
            dimensions integer NOT NULL, vector bytea NOT NULL, created_at double precision NOT NULL)""",
        "CREATE INDEX embeddings_model ON embeddings (model, dimensions)",
        "CREATE INDEX embeddings_thread ON embeddings (thread_id)",
    ]


def _m007_branches(schema: str) -> list[str]:
    """Versions of a prompt, alternatives of an answer, the current path, forks (SQLite's
    ``m009_branches``)."""
    return [
        "ALTER TABLE messages ADD COLUMN parent_id text",
        "ALTER TABLE messages ADD COLUMN alternative integer NOT NULL DEFAULT 0",
        "ALTER TABLE messages ADD COLUMN chosen integer NOT NULL DEFAULT 0",
        "ALTER TABLE messages ADD COLUMN on_path integer NOT NULL DEFAULT 1",
        "ALTER TABLE threads ADD COLUMN head_id text",
        "ALTER TABLE threads ADD COLUMN forked_from text",
        "ALTER TABLE threads ADD COLUMN forked_at text",
        """UPDATE messages SET parent_id = (
            SELECT p.id FROM messages p WHERE p.thread_id = messages.thread_id AND p.turn = p.position
            AND p.position < messages.position ORDER BY p.position DESC LIMIT 1
        ) WHERE turn = position""",
        "UPDATE threads SET head_id = (SELECT id FROM messages WHERE thread_id = threads.id AND turn = position "
        "ORDER BY position DESC LIMIT 1)",
        "CREATE INDEX messages_parent ON messages (parent_id)",
    ]


def _m008_regenerations(schema: str) -> list[str]:
    """Regenerations waiting for the thread's turn (SQLite's ``m010_regenerations``)."""
    return [
        """CREATE TABLE regenerations (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            thread_id text NOT NULL,
            prompt_id text NOT NULL,
            alternative integer NOT NULL,
            agent text NOT NULL,
            user_id text,
            after_position integer NOT NULL,
            status text NOT NULL,
            created_at double precision NOT NULL
        )""",
        "CREATE INDEX regenerations_thread ON regenerations (thread_id, status)",
        "CREATE UNIQUE INDEX regenerations_answer ON regenerations (prompt_id, alternative)",
    ]


MIGRATIONS = [
    _m001_initial,
    _m002_id_counters,
    _m003_approvals,
    _m004_search,
    _m005_presence,
    _m006_embeddings,
    _m007_branches,
    _m008_regenerations,
]


def _applied(conn: Any, schema: str) -> list[str]:
    exists = conn.execute("SELECT to_regclass(%s)", (f"{schema}.threadwidget_migrations",)).fetchone()[0]
    if exists is None:
        return []
    return [r[0] for r in conn.execute(f"SELECT name FROM {schema}.threadwidget_migrations ORDER BY applied_at")]


def _check(applied: list[str], where: str) -> None:
    known = {fn.__name__.lstrip("_") for fn in MIGRATIONS}
    newer = [name for name in applied if name not in known]
    if newer:
        from .._version import __version__

        raise SchemaVersionError(
            f"{where} was migrated by a newer threadwidget (migrations {', '.join(newer)}), which "
            f"threadwidget {__version__} does not know. Upgrade threadwidget (pip install -U threadwidget) "
            "or use another schema (?schema=name in the URL)."
        )


def migrate(conn: Any, schema: str, where: str) -> None:
    """Bring ``schema`` up to date; one query when it already is. ``conn`` is in autocommit mode."""
    applied = _applied(conn, schema)
    _check(applied, where)
    if len(applied) == len(MIGRATIONS):
        return
    with conn.transaction():
        conn.execute(f"SELECT pg_advisory_xact_lock({_LOCK})")
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {schema}.threadwidget_migrations "
            "(name text PRIMARY KEY, applied_at double precision NOT NULL)"
        )
        applied = _applied(conn, schema)  # again, under the lock: another kernel may have migrated
        _check(applied, where)
        for fn in MIGRATIONS:
            name = fn.__name__.lstrip("_")
            if name in applied:
                continue
            for statement in fn(schema):
                conn.execute(statement)
            conn.execute(
                f"INSERT INTO {schema}.threadwidget_migrations VALUES (%s, extract(epoch FROM clock_timestamp()))",
                (name,),
            )
