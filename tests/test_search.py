"""Full-text search: ``store.search`` on both backends, its query syntax and errors, its snippets,
and the index kept in step with every write, whoever writes (another process, another program)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

import threadwidget as tw

from .conftest import PYTHON, ROOT, python_env, raw_connection, wait_until
from .widget_comm import RecordingComm, browser_sets, comms

__all__ = ["comms"]  # the fixture, imported for pytest


def ids(hits: list[tw.SearchHit]) -> set[str]:
    return {h.message.id for h in hits}


@pytest.fixture
def orders(store: tw.Store) -> dict[str, Any]:
    alice = store.create_thread(title="Order help", user_id="alice", agent="support")
    bob = store.create_thread(title="Billing", user_id="bob", agent="billing")
    say = store.add_message
    return {
        "alice": alice,
        "bob": bob,
        "where": say(alice.id, role="user", text="Where is my order #42? I asked for a REFUND."),
        "shipped": say(alice.id, role="assistant", text="Order 42 shipped on Monday; see the refund-policy."),
        "invoice": say(bob.id, role="user", text="Please send the invoice for order 7 by e-mail."),
        "refunds": say(bob.id, role="assistant", text="Refunds take 30 days.", agent="refunds"),
    }


def test_words_phrases_prefixes_or_and_exclusions(store: tw.Store, orders: dict[str, Any]) -> None:
    o = {k: v.id for k, v in orders.items()}
    assert ids(store.search("order 42")) == {o["where"], o["shipped"]}  # every word, any case, punctuation aside
    assert ids(store.search("REFUND")) == {o["where"], o["shipped"]}  # a word, not a part of one (refunds)
    assert ids(store.search("refund*")) == {o["where"], o["shipped"], o["refunds"]}
    assert ids(store.search('"refund policy"')) == {o["shipped"]}  # refund-policy: two words in a row
    assert ids(store.search('"policy refund"')) == set()
    assert ids(store.search("invoice OR monday")) == {o["invoice"], o["shipped"]}
    assert ids(store.search("order -refund")) == {o["invoice"]}
    assert ids(store.search('order -"refund policy"')) == {o["where"], o["invoice"]}
    assert ids(store.search("e-mail")) == {o["invoice"]}  # a word with punctuation: its words in a row
    assert store.search("nothing like this") == []


def test_filters_by_user_thread_and_agent(store: tw.Store, orders: dict[str, Any]) -> None:
    o = {k: v.id for k, v in orders.items()}
    assert ids(store.search("order", user_id="alice")) == {o["where"], o["shipped"]}
    assert ids(store.search("order", user_id="carol")) == set()
    assert ids(store.search("order", thread_id=orders["bob"].id)) == {o["invoice"]}
    # the message's agent, else its thread's
    assert ids(store.search("refund* OR order", agent="billing")) == {o["invoice"]}
    assert ids(store.search("refund*", agent="refunds")) == {o["refunds"]}
    assert len(store.search("order", limit=1)) == 1


def test_a_hit_names_its_thread_and_marks_the_words_in_plain_text(store: tw.Store) -> None:
    t = store.create_thread(title="Markup")
    text = "<b>Hello</b> & <script>alert('order')</script> " + "filler " * 100 + "the ORDER is late"
    m = store.add_message(t.id, role="user", text=text)
    (hit,) = store.search("order late")
    assert (hit.thread.id, hit.thread.title, hit.message.id, hit.message.text) == (t.id, "Markup", m.id, text)
    assert hit.rank > 0
    # the snippet is the message's text as it is (never escaped or turned into HTML), around the match
    assert "<script>alert('order')</script>" in hit.snippet
    assert [hit.snippet[a:b] for a, b in hit.marks] == ["order"]
    assert "".join(part for part, _ in hit.parts()) == hit.snippet
    assert [part for part, marked in hit.parts() if marked] == ["order"]
    assert hit.to_dict()["marks"] == [list(m) for m in hit.marks]
    # a match far into a long text: the snippet is cut around it, and says so
    (hit,) = store.search("late")
    assert hit.snippet.startswith("…") and hit.snippet.endswith("late") and len(hit.snippet) <= 210
    assert [hit.snippet[a:b] for a, b in hit.marks] == ["late"]


def test_better_matches_rank_first(store: tw.Store) -> None:
    t = store.create_thread()
    once = store.add_message(t.id, role="user", text="refund " + "other words here " * 30)
    often = store.add_message(t.id, role="user", text="refund refund refund, a refund please")
    hits = store.search("refund")
    assert [h.message.id for h in hits] == [often.id, once.id]
    assert hits[0].rank > hits[1].rank


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ('say "hello', "quote"),
        ("OR refund", "OR"),
        ("refund OR", "OR"),
        ("refund OR -policy", "OR"),
        ("-refund", "only excluded"),
        ("?! ... ##", "no words"),
        ("", "no words"),
        ("x " * 600, "characters long"),
    ],
)
def test_a_query_that_does_not_parse_is_a_clear_error(store: tw.Store, query: str, says: str) -> None:
    with pytest.raises(tw.SearchQueryError, match=says) as caught:
        store.search(query)
    message = str(caught.value)
    assert repr(query[:40]) in message or query[:40] in message  # names the query
    assert 'expected words (all must appear), "a phrase", prefix*, a OR b, -excluded' in message
    assert isinstance(caught.value, tw.InvalidArgumentError)


@pytest.mark.parametrize(
    "query",
    ['NEAR(a b)', 'text:order', 'order AND', '^order', 'a + b', '"', "'", "order)", "(order", "{x}", "*",
     "order**", "NOT order", "a OR OR b", "\x00order", "ordér", "l'ordre", "a & b | !c <-> d:*", "--order"],
)  # fmt: skip
def test_the_databases_own_syntax_never_reaches_them(store: tw.Store, orders: dict[str, Any], query: str) -> None:
    """What FTS5 or tsquery would read as syntax is searched for as words, or is our clear error:
    never an SQL error."""
    try:
        store.search(query)
    except tw.SearchQueryError:
        pass


def test_the_index_follows_every_write(store: tw.Store) -> None:
    t = store.create_thread(user_id="alice")
    # an answer: empty while it streams, found by its final text once written
    m = store.start_run(t.id, agent="a")
    store.append_delta(m.id, "streaming words ")
    assert store.search("streaming") == []  # deltas are not the message's text
    store.update_message(m.id, status="success", text="the final answer", end_run=True)
    assert ids(store.search("final")) == {m.id}
    store.update_message(m.id, text="a corrected reply")
    assert store.search("final") == [] and ids(store.search("corrected")) == {m.id}
    # more messages than the index takes at once: all found, the last ones too
    many = [store.add_message(t.id, role="user", text=f"bulk note {i}").id for i in range(300)]
    assert ids(store.search("bulk", limit=1000)) == set(many)
    assert ids(store.search("bulk 299")) == {many[299]}
    store.update_message(many[0], text="")
    assert many[0] not in ids(store.search("bulk", limit=1000))
    store.delete_thread(t.id)
    assert store.search("bulk OR corrected") == []


def test_a_message_from_another_process_is_found_once_committed(
    store: tw.Store, db_path: Any, procs: list[Any]
) -> None:
    """A real subprocess writes; this process's search finds its messages (the index is the
    database's, kept in step in the writer's own transactions)."""
    t = store.create_thread()
    script = (
        "import sys, threadwidget as tw\n"
        "s = tw.Store(sys.argv[1])\n"
        "for i in range(int(sys.argv[3])):\n"
        "    s.add_message(sys.argv[2], role='user', text=f'written elsewhere number{i}')\n"
        "print('done', flush=True)\n"
    )
    p = subprocess.Popen([PYTHON, "-c", script, str(db_path), t.id, "150"], stdout=subprocess.PIPE, text=True,
                         env=python_env(), cwd=ROOT)  # fmt: skip
    procs.append(p)
    assert p.stdout is not None and p.stdout.readline().strip() == "done"
    assert p.wait(30) == 0
    assert len(store.search("elsewhere", limit=500)) == 150
    assert len(store.search("number149")) == 1


def test_a_foreign_writer_keeps_the_index_in_step(db_path: Any) -> None:
    """Another program writing the tables with plain SQL (the sqlite3 shell, psql) keeps the index
    right: triggers, not the store's code, maintain it."""
    with tw.Store(db_path) as s:
        t = s.create_thread()
    with raw_connection(db_path) as conn:
        conn.execute(
            "INSERT INTO messages (id, thread_id, position, role, text, status, created_at, updated_at, turn) "
            "VALUES ('msg_foreign', ?, 0, 'user', 'typed in another program', 'success', 0, 0, 0)",
            (t.id,),
        )
    with tw.Store(db_path) as s:
        assert ids(s.search("another program")) == {"msg_foreign"}
    with raw_connection(db_path) as conn:
        conn.execute("UPDATE messages SET text = 'changed elsewhere' WHERE id = 'msg_foreign'")
    with tw.Store(db_path) as s:
        assert s.search("program") == [] and ids(s.search("changed")) == {"msg_foreign"}


@pytest.mark.sqlite_only("SQLite's migration of an old file, and VACUUM")
def test_old_files_are_indexed_by_the_migration_and_the_index_survives_vacuum(tmp_path: Path) -> None:
    fixture = Path(__file__).parent / "fixtures" / "store_v1.sql"
    p = tmp_path / "v1.db"
    conn = sqlite3.connect(p)
    conn.executescript(fixture.read_text())
    conn.close()
    with tw.Store(p) as s:
        (hit,) = s.search("help")
        assert hit.message.text == "Hi! How can I help?"
        gone, kept = s.create_thread(), s.create_thread()
        for i in range(200):
            s.add_message(gone.id, role="user", text=f"doomed {i}")
            s.add_message(kept.id, role="user", text=f"kept {i}")
        s.delete_thread(gone.id)
        assert len(s.search("kept", limit=500)) == 200
    # VACUUM may renumber the rowids the index refers to; SQLite keeps them, and the index agrees
    conn = sqlite3.connect(p)
    conn.execute("VACUUM")
    conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")  # raises when out of step
    conn.close()
    with tw.Store(p) as s:
        assert s.search("doomed") == []
        assert sorted(h.message.text for h in s.search("kept", limit=500)) == sorted(f"kept {i}" for i in range(200))
        assert [h.message.text for h in s.search("help")] == ["Hi! How can I help?"]


# -- threadwidget search ---------------------------------------------------------------------------


def test_the_command_line_prints_hits_highlighted_and_as_json(db_path: Any, orders: dict[str, Any]) -> None:
    from click.testing import CliRunner

    from threadwidget.cli import main

    run = CliRunner()
    shown = run.invoke(main, ["search", "order 42", "--db", str(db_path)], env={"FORCE_COLOR": "1", "COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "Order help" in shown.output and "Billing" not in shown.output
    assert "\x1b[1;7morder\x1b[0m" in shown.output and "\x1b[1;7m42\x1b[0m" in shown.output  # bold, reversed
    lines = run.invoke(main, ["search", "refund*", "--user", "bob", "--json", "--db", str(db_path)]).output
    (row,) = [json.loads(line) for line in lines.splitlines()]
    assert (row["thread_id"], row["message_id"]) == (orders["bob"].id, orders["refunds"].id)
    assert row["thread_title"] == "Billing"
    assert [row["snippet"][a:b] for a, b in row["marks"]] == ["Refunds"]
    nothing = run.invoke(main, ["search", "zebra", "--db", str(db_path)])
    assert nothing.exit_code == 0 and "No message matches 'zebra'" in nothing.output
    bad = run.invoke(main, ["search", '"zebra', "--db", str(db_path)])
    assert bad.exit_code == 1
    assert bad.output.startswith("Error: search query '\"zebra' has a quote") and "Traceback" not in bad.output


# -- the ThreadList's search box ---------------------------------------------------------------------


def test_the_thread_lists_search_box_finds_messages_across_threads_and_follows_the_store(
    store: tw.Store, orders: dict[str, Any], comms: list[RecordingComm]
) -> None:
    listing = tw.ThreadList(store, user_id="alice")
    assert (listing.query, listing.hits, listing.search_error) == ("", [], "")
    browser_sets(listing, query="order")
    assert {h["message_id"] for h in listing.hits} == {orders["where"].id, orders["shipped"].id}
    hit = listing.hits[0]
    assert set(hit) == {"thread_id", "thread_title", "message_id", "role", "created_at", "parts"}
    assert hit["thread_title"] == "Order help"  # only alice's threads: bob's invoice is not there
    assert [p["text"].lower() for p in hit["parts"] if p["mark"]] == ["order"]
    # live: a message written meanwhile is found without typing again
    later = store.add_message(orders["alice"].id, role="user", text="One more order question")
    wait_until(lambda: later.id in [h["message_id"] for h in listing.hits])
    # picking a hit is picking its thread
    browser_sets(listing, selected=hit["thread_id"])
    assert listing.selected == orders["alice"].id
    browser_sets(listing, query='"order')
    assert listing.hits == [] and "not closed" in listing.search_error
    browser_sets(listing, query="")
    assert (listing.hits, listing.search_error) == ([], "")


def test_the_apps_search_box_opens_the_thread_of_a_hit(
    store: tw.Store, orders: dict[str, Any], comms: list[RecordingComm]
) -> None:
    app = tw.ThreadApp(store)
    browser_sets(app, query="invoice")
    (hit,) = app.hits
    assert hit["thread_id"] == orders["bob"].id
    browser_sets(app, selected=hit["thread_id"], highlighted=hit["message_id"])  # what clicking a hit sends
    assert app.thread_id == orders["bob"].id
    assert orders["invoice"].id in [m["id"] for m in app.messages]
    assert app.highlighted == orders["invoice"].id
    browser_sets(app, selected=orders["alice"].id)  # another thread: the hit is not highlighted there
    assert app.highlighted == ""
    app.show_message(orders["refunds"].id)  # from Python: the thread of the message, and the message
    assert (app.thread_id, app.highlighted) == (orders["bob"].id, orders["refunds"].id)


def test_a_chat_view_shows_a_message_of_its_thread_highlighted(
    store: tw.Store, orders: dict[str, Any], comms: list[RecordingComm]
) -> None:
    chat = tw.ChatView(orders["alice"].id, store=store)
    (hit,) = store.search("monday")
    chat.show_message(hit.message.id)
    assert chat.highlighted == orders["shipped"].id
    with pytest.raises(tw.InvalidArgumentError, match=r"is in thread .*open that thread first"):
        chat.show_message(orders["invoice"].id)
    with pytest.raises(tw.NotFoundError, match="msg_nope"):
        chat.show_message("msg_nope")
    assert chat.highlighted == orders["shipped"].id


@pytest.mark.sqlite_only("the pending list is SQLite's")
def test_a_process_that_cannot_write_finds_the_messages_not_indexed_yet(
    store: tw.Store, orders: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Messages wait in the index's pending list until a writer indexes them; a process that may
    only read the file matches them itself."""
    monkeypatch.setattr(store._db, "read_only", "cannot write (test)")
    later = store.add_message(orders["bob"].id, role="user", text="A refund for order 9, quickly.")
    assert ids(store.search("order refund*")) == {orders["where"].id, orders["shipped"].id, later.id}
    assert ids(store.search("order refund*", user_id="bob")) == {later.id}
    assert ids(store.search('"order 9"')) == {later.id}
    assert later.id not in ids(store.search("order -quickly"))
    (hit,) = store.search("quickly")
    assert [hit.snippet[a:b] for a, b in hit.marks] == ["quickly"] and hit.thread.title == "Billing"


@pytest.mark.sqlite_only("the pending list is SQLite's")
def test_a_search_while_another_program_holds_the_write_lock_still_finds_everything(tmp_path: Path) -> None:
    with tw.Store(tmp_path / "threads.db", busy_timeout=0.2) as store:
        t = store.create_thread()
        written = store.add_message(t.id, role="user", text="locked out but found")
        other = sqlite3.connect(tmp_path / "threads.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # e.g. a sqlite3 shell left in a transaction
        try:
            assert ids(store.search("locked found")) == {written.id}  # matched without the index
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert ids(store.search("locked found")) == {written.id}  # indexed now
