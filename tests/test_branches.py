"""Reworking a thread: regenerate, edit, branches, forks, on both backends, across processes."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import threadwidget as tw
from tests.openai_server import OpenAIServer, Text

from .conftest import ROOT, python_env, wait_until
from .widget_comm import RecordingComm, comms

__all__ = ["comms"]  # the fixture, imported for pytest

pytest_plugins = ["tests.openai_fixtures"]

WORKERS = ROOT / "tests" / "branch_workers.py"


def scripted(store: tw.Store, *replies: str, name: str = "support") -> tw.Agent:
    model = tw.ScriptedModel(tokens_per_second=None)
    model.enqueue(*replies)
    return tw.Agent(name, model=model, store=store)


def texts(messages: list[tw.Message]) -> list[str]:
    return [m.text for m in messages]


def all_rows(store: tw.Store, thread_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of a thread, as stored (deltas without their store-local integer id)."""
    conn = store._conn()
    rows = {
        "threads": conn.execute("SELECT * FROM threads WHERE id = ?", (thread_id,)).fetchall(),
        "messages": conn.execute("SELECT * FROM messages WHERE thread_id = ? ORDER BY id", (thread_id,)).fetchall(),
        "tool_calls": conn.execute("SELECT * FROM tool_calls WHERE thread_id = ? ORDER BY id", (thread_id,)).fetchall(),
        "deltas": conn.execute(
            "SELECT message_id, thread_id, seq, text, created_at FROM deltas WHERE thread_id = ? "
            "ORDER BY message_id, seq",
            (thread_id,),
        ).fetchall(),
    }
    return {k: [tuple(r) for r in v] for k, v in rows.items()}


def two_turns(store: tw.Store) -> tuple[tw.AgentThread, tw.Answer, tw.Answer]:
    agent = scripted(store, "Order 42 shipped.", "It left Paris on Monday.")
    thread = agent.create_thread(title="Order help", user_id="alice")
    first = thread.ask("Where is order 42?").wait(30)
    second = thread.ask("When did it leave?").wait(30)
    return thread, first, second


# -- regenerate and edit ---------------------------------------------------------------------------


def test_regenerate_keeps_the_earlier_answer_as_an_alternative(store: tw.Store) -> None:
    thread, first, _ = two_turns(store)
    before = {r[0]: r for r in all_rows(store, thread.id)["messages"]}
    other = scripted(store, "Order 42 is in Lyon.", name="support")
    again = thread.regenerate(first.prompt_id, agent=other).wait(30)
    assert (again.status, again.alternative, again.text) == ("success", 1, "Order 42 is in Lyon.")
    # the path shows the new answer, and what followed the prompt
    assert texts(store.list_messages(thread.id)) == [
        "Where is order 42?", "Order 42 is in Lyon.", "When did it leave?", "It left Paris on Monday.",
    ]  # fmt: skip
    # every earlier row is kept, with its text and status
    after = {r[0]: r for r in all_rows(store, thread.id)["messages"]}
    assert set(before) < set(after)
    assert all(after[mid][5:8] == before[mid][5:8] for mid in before)
    alternatives = store.alternatives(first.prompt_id)
    assert [(a.alternative, a.text) for a in alternatives] == [(0, "Order 42 shipped."), (1, "Order 42 is in Lyon.")]
    assert store.get_message(first.prompt_id).chosen == 1 and store.answer(first.prompt_id).text == again.text
    # the first answer is shown again on request
    store.select_branch(alternatives[0].messages[-1].id)
    assert texts(store.list_messages(thread.id))[:2] == ["Where is order 42?", "Order 42 shipped."]
    assert store.check() == []


def test_edit_makes_a_new_version_and_the_old_one_keeps_what_followed(store: tw.Store) -> None:
    agent = scripted(store, "Order 42 shipped.", "It left Paris on Monday.", "Order 43 shipped too.")
    thread = agent.create_thread(title="Order help")
    first = thread.ask("Where is order 42?").wait(30)
    old_last = thread.ask("When did it leave?").wait(30).messages[-1]
    before = all_rows(store, thread.id)["messages"]
    edited = thread.edit(first.prompt_id, "Where is order 43?").wait(30)
    assert edited.status == "success" and edited.text == "Order 43 shipped too."
    assert texts(store.list_messages(thread.id)) == ["Where is order 43?", "Order 43 shipped too."]
    versions = store.versions(first.prompt_id)
    assert texts(versions) == ["Where is order 42?", "Where is order 43?"]
    assert store.versions(edited.prompt_id) == versions
    # the old version's branch is still there, whole: read it, then show it to everyone
    old = ["Where is order 42?", "Order 42 shipped.", "When did it leave?", "It left Paris on Monday."]
    assert texts(store.list_messages(thread.id, through=old_last.id)) == old
    assert texts(store.list_messages(thread.id, through=first.prompt_id)) == old[:2]
    assert texts(store.select_branch(first.prompt_id)) == old
    assert {r[0] for r in before} <= {r[0] for r in all_rows(store, thread.id)["messages"]}
    assert store.count_messages(thread.id) == 4
    with pytest.raises(tw.InvalidArgumentError, match="not a prompt of thread"):
        thread.edit(edited.messages[0].id, "an answer is not a prompt")
    assert store.check() == []


def test_regenerate_waits_its_turn_with_the_prompts(store: tw.Store) -> None:
    """Asked while the thread answers, a regeneration queues: after what waited before it, before
    what is asked after it; cancelled in the queue, it is never answered."""
    model = tw.ScriptedModel(tokens_per_second=20)
    model.enqueue("Order 42 shipped.", " ".join(f"w{i}" for i in range(60)), "Paris.", "Order 42 is in Lyon.", "Soon.")
    thread = tw.Agent("support", model=model, store=store).create_thread()
    first = thread.ask("Where is order 42?").wait(30)
    running = thread.ask("Tell me everything.")
    wait_until(lambda: running.status == "running")
    before = thread.ask("Where did it leave from?")
    again = thread.regenerate(first.prompt_id)
    cancelled = thread.regenerate(first.prompt_id)
    after = thread.ask("When will it arrive?")
    assert (again.status, again.alternative, cancelled.alternative) == ("queued", 1, 2)
    assert store.queued_regenerations(thread.id) == [(first.prompt_id, 1), (first.prompt_id, 2)]
    cancelled.abort()
    assert cancelled.status == "aborted" and cancelled.error == "regeneration cancelled before it was answered"
    for answer in (running, before, again, after):
        assert answer.wait(30).status == "success"
    assert (before.text, again.text, after.text) == ("Paris.", "Order 42 is in Lyon.", "Soon.")
    firsts = [a.messages[0].position for a in (running, before, again, after)]
    assert firsts == sorted(firsts)  # answered in the order asked
    assert [a.alternative for a in store.alternatives(first.prompt_id)] == [0, 1]
    assert cancelled.messages == [] and store.get_message(first.prompt_id).chosen == 1
    assert texts(store.list_messages(thread.id))[:2] == ["Where is order 42?", "Order 42 is in Lyon."]
    with pytest.raises(tw.InvalidArgumentError, match="not a prompt"):
        thread.regenerate(first.messages[0].id)
    assert store.queued_regenerations(thread.id) == [] and store.check() == []


def test_a_regeneration_left_in_the_queue_goes_with_its_thread(store: tw.Store) -> None:
    thread, first, _ = two_turns(store)
    queued = store.regenerate(first.prompt_id)  # nobody serves the thread's agent here
    assert queued.status == "queued" and store.queued_regenerations(thread.id) == [(first.prompt_id, 1)]
    assert "queued" in repr(queued)
    store.delete_thread(thread.id)
    assert store._conn().execute("SELECT COUNT(*) FROM regenerations").fetchone()[0] == 0


def test_a_fixture_of_schema_7_gets_one_path(tmp_path: Path) -> None:
    """A file written before branches (tests/fixtures/store_v7.sql) reads as one path, and can branch."""
    p = tmp_path / "v7.db"
    conn = sqlite3.connect(p)
    conn.executescript((Path(__file__).parent / "fixtures" / "store_v7.sql").read_text())
    conn.close()
    with tw.Store(p) as store:
        (thread,) = store.list_threads()
        path = store.list_messages(thread.id)
        assert texts(path) == [
            "Where is order 42?", "Order 42 shipped.", "I checked too: it shipped.", "When did it leave?",
            "It left Paris on Monday.",
        ]  # fmt: skip
        assert [m.parent_id for m in path] == [None, None, "msg_000001", "msg_000003", None]
        assert all(m.on_path and m.alternative == 0 for m in path)
        answer = scripted(store, "It left on Tuesday.").continue_thread(thread.id).edit("msg_000004", "When?").wait(30)
        assert texts(store.list_messages(thread.id))[3:] == ["When?", "It left on Tuesday."]
        assert answer.status == "success" and store.check() == []


# -- one path for everyone, across processes --------------------------------------------------------


def start(procs: list[subprocess.Popen[Any]], *args: str) -> subprocess.Popen[str]:
    p = subprocess.Popen([sys.executable, str(WORKERS), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, env=python_env())  # fmt: skip
    procs.append(p)
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return p


def finish(p: subprocess.Popen[str]) -> dict[str, Any]:
    assert p.stdout is not None
    line = p.stdout.readline()
    assert p.wait(60) == 0, line
    result: dict[str, Any] = json.loads(line)
    return result


def test_a_branch_switched_in_another_process_changes_every_open_view(
    store: tw.Store, db_path: Any, comms: list[RecordingComm], procs: list[subprocess.Popen[Any]]
) -> None:
    thread, _, second = two_turns(store)
    edited = thread.edit(second.prompt_id, "When did it arrive?")
    edited.wait(30)
    views = [tw.ChatView(thread.id, store=store, window=3), tw.ChatView(thread.id, store=store)]
    assert [m["text"] for m in views[1].messages][2:] == ["When did it arrive?", edited.text]
    switcher = start(procs, "select", str(db_path), second.prompt_id)
    assert switcher.stdin is not None
    switcher.stdin.write("go\n")
    switcher.stdin.flush()
    result = finish(switcher)
    old = ["Where is order 42?", "Order 42 shipped.", "When did it leave?", "It left Paris on Monday."]
    assert result["texts"] == old
    wait_until(lambda: [m["text"] for m in views[1].messages] == old)
    wait_until(lambda: [m["text"] for m in views[0].messages] == old[1:])
    assert views[0].has_older
    # what the other branch's answer streams later does not show here
    for view in views:
        view.close()


def test_two_processes_regenerate_at_once_both_get_an_answer(
    store: tw.Store, db_path: Any, procs: list[subprocess.Popen[Any]]
) -> None:
    """Two people regenerating the same answer at once each get their own: two alternatives, in
    the order their requests committed; the path shows the one that started last."""
    thread, first, _ = two_turns(store)
    racers = [start(procs, "regenerate", str(db_path), thread.id, first.prompt_id, "100") for _ in range(2)]
    for p in racers:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    results = [finish(p) for p in racers]
    assert sorted(r["alternative"] for r in results) == [1, 2] and {r["status"] for r in results} == {"success"}
    alternatives = store.alternatives(first.prompt_id)
    assert [a.alternative for a in alternatives] == [0, 1, 2]
    assert [len([m for m in a.messages if m.step == 0]) for a in alternatives] == [1, 1, 1]
    assert store.get_message(first.prompt_id).chosen == 2
    assert store.queued_regenerations(thread.id) == [] and store.check() == []


def test_a_regeneration_asked_without_an_agent_is_answered_once_by_the_serving_processes(
    store: tw.Store, db_path: Any, comms: list[RecordingComm], procs: list[subprocess.Popen[Any]]
) -> None:
    """A view without an agent asks for a regeneration behind a waiting prompt; two processes serve
    the thread's agent: it is answered exactly once, in its place in the queue."""
    from .widget_comm import browser_sends

    thread, first, _ = two_turns(store)
    view = tw.ChatView(thread.id, store=store)
    before = store.ask(thread.id, "Where did it leave from?")
    browser_sends(view, {"kind": "regenerate", "message_id": first.messages[0].id})
    assert view.error == ""
    assert store.queued_regenerations(thread.id) == [(first.prompt_id, 1)]
    again = tw.Answer(store, store.get_message(first.prompt_id), 1)
    after = store.ask(thread.id, "When will it arrive?")
    assert again.status == "queued"
    servers = [start(procs, "serve", str(db_path)) for _ in range(2)]
    for answer in (before, again, after):
        assert answer.wait(60).status == "success"
    for p in servers:
        assert p.stdin is not None
        p.stdin.write("stop\n")
        p.stdin.flush()
    assert sum(finish(p)["answered"] for p in servers) == 3
    firsts = [a.messages[0].position for a in (before, again, after)]
    assert firsts == sorted(firsts)
    assert [a.alternative for a in store.alternatives(first.prompt_id)] == [0, 1]
    assert [m.step for m in again.messages] == [0]
    wait_until(lambda: [m["id"] for m in view.messages][1] == again.messages[0].id)
    assert store.queued_regenerations(thread.id) == [] and store.check() == []
    view.close()


# -- forks ------------------------------------------------------------------------------------------


def test_a_fork_shares_no_rows_and_each_changes_alone(store: tw.Store) -> None:
    thread, first, second = two_turns(store)
    source_before = all_rows(store, thread.id)
    fork = store.fork_thread(thread.id, first.messages[-1].id)
    assert (fork.forked_from, fork.forked_at, fork.title) == (thread.id, first.messages[-1].id, "Order help (fork)")
    assert texts(store.list_messages(fork.id)) == ["Where is order 42?", "Order 42 shipped."]
    forked = all_rows(store, fork.id)
    assert not {r[0] for r in forked["messages"]} & {r[0] for r in source_before["messages"]}
    copied = sorted(forked["messages"], key=lambda r: r[2])  # by position: the same roles, texts, statuses
    assert [r[3:8] for r in copied] == [r[3:8] for r in sorted(source_before["messages"], key=lambda r: r[2])[:2]]
    # writing to the fork leaves the source as it was, and the other way round
    fthread = scripted(store, "A new answer in the fork.").continue_thread(fork.id)
    fthread.ask("Anything else?").wait(30)
    fthread.regenerate(store.list_messages(fork.id)[0].id)
    wait_until(lambda: store.answer_in_progress(fork.id) is None)
    assert all_rows(store, thread.id) == source_before
    fork_now = all_rows(store, fork.id)
    scripted(store, "Later, in the source.").continue_thread(thread.id).ask("And now?").wait(30)
    assert all_rows(store, fork.id) == fork_now
    # at a prompt: the prompt without its answer; a name for it
    at_prompt = store.fork_thread(thread.id, second.prompt_id, title="Just the question")
    assert texts(store.list_messages(at_prompt.id))[-1] == "When did it leave?"
    assert at_prompt.title == "Just the question" and store.check() == []


def test_fork_refuses_what_is_still_written(store: tw.Store) -> None:
    model = tw.ScriptedModel(tokens_per_second=20)
    model.enqueue(" ".join(f"w{i}" for i in range(400)))
    thread = tw.Agent("support", model=model, store=store).create_thread()
    answer = thread.ask("Tell me everything.")
    step = wait_until(lambda: answer.messages)
    with pytest.raises(tw.InvalidArgumentError, match="still"):
        store.fork_thread(thread.id, step[0].id)  # type: ignore[index]
    with pytest.raises(tw.InvalidArgumentError, match="belongs to thread"):
        store.fork_thread(store.create_thread().id, step[0].id)  # type: ignore[index]
    answer.abort()
    answer.wait(30)


# -- the model sees its branch only -----------------------------------------------------------------


def test_an_answer_on_a_branch_sees_only_that_branch(store: tw.Store, openai_server: OpenAIServer) -> None:
    model = tw.OpenAIChat("gpt-test", base_url=openai_server.url, api_key="sk-test-secret")
    thread = tw.Agent("support", model=model, instructions="Be brief.", store=store).create_thread()
    openai_server.enqueue(Text("A1"), Text("A2"), Text("A2 edited"), Text("A1 again"), Text("A3"))
    first = thread.ask("Q1").wait(30)
    second = thread.ask("Q2").wait(30)
    thread.edit(second.prompt_id, "Q2 edited").wait(30)
    thread.regenerate(first.prompt_id).wait(30)  # Q2 edited follows, but the answer sees Q1 only
    store.select_branch(second.prompt_id)  # back to the first version: a new prompt goes after it
    thread.ask("Q3").wait(30)

    def seen(i: int) -> list[tuple[str, str]]:
        return [(m["role"], m["content"]) for m in openai_server.requests[i].body["messages"]]

    system = ("system", "Be brief.")
    assert seen(2) == [system, ("user", "Q1"), ("assistant", "A1"), ("user", "Q2 edited")]
    assert seen(3) == [system, ("user", "Q1")]
    assert seen(4) == [system, ("user", "Q1"), ("assistant", "A1 again"), ("user", "Q2"), ("assistant", "A2"),
                       ("user", "Q3")]  # fmt: skip


# -- the view's actions -----------------------------------------------------------------------------


def test_a_views_actions_regenerate_switch_edit_and_fork(store: tw.Store, comms: list[RecordingComm]) -> None:
    from .widget_comm import browser_sends

    agent = scripted(store, "Order 42 shipped.", "Order 42 is in Lyon.", "Order 43 shipped.")
    thread = agent.create_thread(title="Order help")
    first = thread.ask("Where is order 42?").wait(30)
    view = tw.ChatView(thread, user="alice")
    browser_sends(view, {"kind": "regenerate", "message_id": first.messages[0].id})
    wait_until(lambda: [m["text"] for m in view.messages] == ["Where is order 42?", "Order 42 is in Lyon."])
    wait_until(lambda: view.messages[1].get("branch") == {"index": 1, "count": 2})
    browser_sends(view, {"kind": "branch", "message_id": view.messages[1]["id"], "index": 0})
    wait_until(lambda: [m["text"] for m in view.messages][1:] == ["Order 42 shipped."])
    browser_sends(view, {"kind": "edit", "message_id": first.prompt_id, "text": "Where is order 43?"})
    wait_until(lambda: [m["text"] for m in view.messages] == ["Where is order 43?", "Order 43 shipped."])
    assert view.messages[0]["branch"] == {"index": 1, "count": 2} and view.messages[0]["user_id"] == "alice"
    browser_sends(view, {"kind": "branch", "message_id": first.prompt_id, "index": 5})
    assert "index=5 is not valid" in view.error
    browser_sends(view, {"kind": "fork", "message_id": view.messages[1]["id"]})
    wait_until(lambda: view.thread_id != thread.id)
    assert store.get_thread(view.thread_id).forked_from == thread.id
    assert [m["text"] for m in view.messages] == ["Where is order 43?", "Order 43 shipped."]
    view.close()


def test_a_view_without_an_agent_edits_and_regenerates_through_the_queue(
    store: tw.Store, comms: list[RecordingComm]
) -> None:
    from .widget_comm import browser_sends

    first = scripted(store, "Order 42 shipped.").create_thread().ask("Where is order 42?").wait(30)
    view = tw.ChatView(first.thread_id, store=store)
    browser_sends(view, {"kind": "regenerate", "message_id": first.messages[0].id})
    assert view.error == "" and store.queued_regenerations(first.thread_id) == [(first.prompt_id, 1)]
    browser_sends(view, {"kind": "edit", "message_id": first.prompt_id, "text": "Where is order 43?"})
    wait_until(lambda: [m["text"] for m in view.messages] == ["Where is order 43?"])
    assert store.queued_prompts(first.thread_id)[0].text == "Where is order 43?"
    with scripted(store, "Order 42 is in Lyon.", "Order 43 shipped.").serve(thread_id=first.thread_id) as worker:
        wait_until(lambda: worker.answered == 2)
    assert [a.text for a in store.alternatives(first.prompt_id)] == ["Order 42 shipped.", "Order 42 is in Lyon."]
    wait_until(lambda: [m["text"] for m in view.messages] == ["Where is order 43?", "Order 43 shipped."])
    view.close()


def test_check_finds_a_path_that_does_not_hold_together(store: tw.Store, db_path: Any) -> None:
    from .conftest import raw_connection

    thread, first, _ = two_turns(store)
    thread.regenerate(first.prompt_id).wait(30)
    assert store.check() == []
    old_step = store.alternatives(first.prompt_id)[0].messages[0].id
    with raw_connection(db_path) as conn:  # what another program could leave
        conn.execute("UPDATE messages SET on_path = 1 WHERE id = ?", (old_step,))
        conn.execute("UPDATE threads SET head_id = 'msg_gone' WHERE id = ?", (thread.id,))
    assert store.check() == [
        f"thread {thread.id}: its current path ends at msg_gone, which is not a message of it",
        f"message {old_step} is on its thread's path, but not the answer its prompt {first.prompt_id} shows there",
    ]


# -- readers of the current path --------------------------------------------------------------------


@tw.tool
def lookup_order(order_id: str) -> dict[str, str]:
    """Look up an order."""
    return {"order_id": order_id, "status": "shipped"}


def test_tool_feeds_show_the_current_path_and_follow_a_switch(store: tw.Store, comms: list[RecordingComm]) -> None:
    model = tw.ScriptedModel(tokens_per_second=None)
    model.enqueue(
        tw.ScriptedModel.tool_calls([("lookup_order", {"order_id": "42"})]), "Order 42 shipped.",
        tw.ScriptedModel.tool_calls([("lookup_order", {"order_id": "43"})]), "Order 43 shipped.",
    )  # fmt: skip
    thread = tw.Agent("support", model=model, tools=[lookup_order], store=store).create_thread()
    first = thread.ask("Where is my order?").wait(30)
    panel, app = tw.ToolCallsPanel(thread.id, store=store), tw.ThreadApp(store)

    def shown(view: Any) -> list[str]:
        return [c["id"] for c in view.tool_calls]

    old = [c.id for c in first.tool_calls]
    assert shown(panel) == shown(app) == old and len(old) == 1
    again = thread.regenerate(first.prompt_id).wait(30)  # the path switches to it as it starts
    new = [c.id for c in again.tool_calls]
    assert json.loads(again.tool_calls[0].arguments) == {"order_id": "43"}
    wait_until(lambda: shown(panel) == shown(app) == new)
    assert [c.id for c in store.list_tool_calls(thread.id, on_path=True)] == new
    assert len(store.list_tool_calls(thread.id)) == 2  # every branch's
    store.select_branch(first.messages[0].id)
    wait_until(lambda: shown(panel) == shown(app) == old)
    assert [c["status"] for c in panel.tool_calls] == ["success"]
    panel.close()
    app.close()
