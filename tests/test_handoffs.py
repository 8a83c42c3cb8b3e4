"""Handoffs between agents in one thread, and an agent used as another's tool."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import threadwidget as tw
from tests.openai_server import OpenAIServer, Text, ToolCalls

from .conftest import PYTHON, python_env, wait_until
from .widget_comm import browser_sends, comms

__all__ = ["comms"]  # the fixture, imported for pytest

pytest_plugins = ["tests.openai_fixtures"]

WORKERS = str(Path(__file__).with_name("handoff_workers.py"))


def spawn_worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([PYTHON, WORKERS, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=python_env())  # fmt: skip


@tw.tool
def book_table(party_size: int, time: str) -> dict:
    """Book a table."""
    return {"booking_id": "B-1", "party_size": party_size, "time": time}


@tw.tool
def send_confirmation(booking_id: str) -> str:
    """Send the confirmation e-mail."""
    return f"sent for {booking_id}"


def scripted_pair(store: tw.Store) -> tuple[tw.Agent, tw.Agent]:
    confirm = tw.Agent("confirm", model=tw.ScriptedModel("confirm-model", tokens_per_second=None),
                       instructions="Confirm bookings.", tools=[send_confirmation], store=store)  # fmt: skip
    booking = tw.Agent("booking", model=tw.ScriptedModel("booking-model", tokens_per_second=None),
                       instructions="Take bookings.", tools=[book_table], handoffs=[confirm], store=store)  # fmt: skip
    return booking, confirm


def test_a_handoff_goes_on_with_the_other_agent_and_the_thread_stays_with_it(store: tw.Store) -> None:
    booking, confirm = scripted_pair(store)
    booking.model.enqueue(tw.ScriptedModel.tool_calls([("transfer_to_confirm", {})]))  # type: ignore[attr-defined]
    confirm.model.enqueue("Your table is confirmed.", "Yes, 7 pm.")  # type: ignore[attr-defined]
    thread = booking.create_thread()
    answer = thread.ask("Book a table for 4").wait(10)
    assert (answer.status, answer.text) == ("success", "Your table is confirmed.")
    steps = answer.messages
    assert [(m.agent, m.model) for m in steps] == [("booking", "booking-model"), ("confirm", "confirm-model")]
    (call,) = answer.tool_calls
    assert (call.name, call.status, json.loads(call.result or "")) == (
        "transfer_to_confirm", "success", {"transferred_to": "confirm"}
    )  # fmt: skip
    assert store.get_thread(thread.id).agent == "confirm"
    # the next prompt, asked through the booking agent's thread, is the confirm agent's
    again = thread.ask("What time was it?").wait(10)
    assert [m.agent for m in again.messages] == ["confirm"]
    assert again.text == "Yes, 7 pm."
    prompts = [m for m in store.list_messages(thread.id) if m.role == "user"]
    assert [p.agent for p in prompts] == ["booking", "confirm"]


def test_prompts_waiting_for_the_old_agent_go_to_the_new_one(store: tw.Store) -> None:
    booking, confirm = scripted_pair(store)
    thread = booking.create_thread()
    queued = store.ask(thread.id, "first")  # nobody serves yet: both wait
    later = store.ask(thread.id, "second")
    assert store.hand_off(thread.id, "confirm") == [queued.prompt_id, later.prompt_id]
    with confirm.serve():
        assert later.wait(10).status == "success"
    assert [m.agent for m in queued.messages + later.messages] == ["confirm", "confirm"]


def test_handoffs_are_checked(store: tw.Store, tmp_path: object) -> None:
    other = tw.Agent("confirm", model=tw.ScriptedModel(), store=tw.Store(f"{tmp_path}/other.db"))
    with pytest.raises(tw.InvalidArgumentError, match="same store"):
        tw.Agent("booking", model=tw.ScriptedModel(), store=store, handoffs=[other])
    with pytest.raises(tw.InvalidArgumentError, match=r"not a tw\.Agent"):
        tw.Agent("booking", model=tw.ScriptedModel(), store=store, handoffs=["confirm"])  # type: ignore[list-item]
    other.store.close()


def test_the_other_agent_sees_the_whole_history_in_its_request(store: tw.Store, openai_server: OpenAIServer) -> None:
    def model(name: str) -> tw.OpenAIChat:
        return tw.OpenAIChat(name, base_url=openai_server.url, api_key="sk-test", backoff=0.05)

    confirm = tw.Agent("confirm", model=model("gpt-confirm"), instructions="You confirm bookings.",
                       tools=[send_confirmation], store=store)  # fmt: skip
    booking = tw.Agent("booking", model=model("gpt-booking"), instructions="You take bookings.",
                       tools=[book_table], handoffs=[confirm], store=store)  # fmt: skip
    openai_server.enqueue(
        Text("Which time?"),
        ToolCalls([("book_table", {"party_size": 4, "time": "19:00"}, "call_book")]),
        ToolCalls([("transfer_to_confirm", {}, "call_handoff")]),
        Text("Booked for 4 at 19:00; confirmation on its way."),
    )
    thread = booking.create_thread()
    assert thread.ask("A table for 4, please").wait(10).text == "Which time?"
    answer = thread.ask("At 19:00").wait(10)
    assert answer.status == "success", answer.error
    requests = openai_server.requests
    assert [r.body["model"] for r in requests] == ["gpt-booking", "gpt-booking", "gpt-booking", "gpt-confirm"]
    last = requests[-1].body
    assert {t["function"]["name"] for t in last["tools"]} == {"send_confirmation"}
    messages = last["messages"]
    assert messages[0] == {"role": "system", "content": "You confirm bookings."}
    said = [(m["role"], m.get("content")) for m in messages]
    assert ("user", "A table for 4, please") in said and ("assistant", "Which time?") in said
    assert ("user", "At 19:00") in said
    calls = [c["function"]["name"] for m in messages for c in m.get("tool_calls") or ()]
    assert calls == ["book_table", "transfer_to_confirm"]
    results = [m["content"] for m in messages if m["role"] == "tool"]
    assert json.loads(results[0])["booking_id"] == "B-1"
    assert json.loads(results[1]) == {"transferred_to": "confirm"}
    assert [m.agent for m in answer.messages] == ["booking", "booking", "confirm"]


def test_an_agent_as_a_tool_runs_as_a_nested_thread(store: tw.Store) -> None:
    billing = tw.Agent("billing", model=tw.ScriptedModel(tokens_per_second=None), store=store,
                       instructions="You compute invoices.")  # fmt: skip
    billing.model.enqueue("The invoice is 120 EUR.")  # type: ignore[attr-defined]
    front = tw.Agent("front", model=tw.ScriptedModel(tokens_per_second=None), tools=[billing.as_tool()], store=store)
    front.model.enqueue(tw.ScriptedModel.tool_calls([("billing", {"input": "invoice for B-1"})]), "120 EUR.")  # type: ignore[attr-defined]
    thread = front.create_thread()
    answer = thread.ask("How much do I owe?").wait(10)
    assert answer.text == "120 EUR."
    (call,) = answer.tool_calls
    assert (call.name, call.status, json.loads(call.result or "")) == ("billing", "success", "The invoice is 120 EUR.")
    nested = [t for t in store.list_threads() if t.agent == "billing"]
    assert len(nested) == 1
    assert nested[0].metadata["parent_thread_id"] == thread.id
    assert call.progress_note == f"billing answers in thread {nested[0].id}"
    assert [m.text for m in store.list_messages(nested[0].id)] == ["invoice for B-1", "The invoice is 120 EUR."]


def test_two_serve_processes_of_different_agents_answer_each_prompt_once_as_the_right_agent(
    db_path: object, tmp_path: Path, procs: list
) -> None:
    log = tmp_path / "asked.jsonl"
    workers = {role: spawn_worker("serve_desk", str(db_path), role, str(log)) for role in ("booking", "confirm")}
    procs.extend(workers.values())
    for w in workers.values():
        assert w.stdout is not None and w.stdout.readline().strip() == "ready"
    n = 8
    with tw.Store(db_path) as s:  # type: ignore[arg-type]
        threads = [s.create_thread(agent="booking").id for _ in range(n)]
        answers = []
        for i, thread_id in enumerate(threads):  # both prompts at once: the second waits behind the handoff
            answers.append((s.ask(thread_id, f"book {i}"), s.ask(thread_id, f"then {i}")))
        for first, second in answers:
            assert first.wait(30).status == "success" and second.wait(30).status == "success"
        for i, (first, second) in enumerate(answers):
            assert [m.agent for m in first.messages] == ["booking", "confirm"]
            assert [m.agent for m in second.messages] == ["confirm"]
            assert f"then {i}" in second.text  # the scripted model echoes the prompt it answered
            assert s.get_message(second.prompt_id).agent == "confirm"
    pids = {}
    for role, w in workers.items():
        w.stdin.write("stop\n")  # type: ignore[union-attr]
        w.stdin.flush()  # type: ignore[union-attr]
        line = w.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("{"), (line, w.stderr.read())  # type: ignore[union-attr]
        done = json.loads(line)
        pids[role] = done["pid"]
        assert done["answered"] == n
    asked = [json.loads(line) for line in log.read_text().splitlines()]
    for i in range(n):
        # "book i": the booking agent, then (after the handoff, in the same process) confirm
        assert [(a["pid"], a["agent"]) for a in asked if a["prompt"] == f"book {i}"] == [
            (pids["booking"], "booking"), (pids["booking"], "confirm")
        ]  # fmt: skip
        # "then i": exactly once, by the process serving confirm
        assert [(a["pid"], a["agent"]) for a in asked if a["prompt"] == f"then {i}"] == [(pids["confirm"], "confirm")]


def test_views_name_the_agent_of_each_answer(store: tw.Store) -> None:
    from threadwidget.widgets._shapes import message_dict, tool_call_dict, transcript
    from threadwidget.widgets._transcript import chat_transcript

    booking, confirm = scripted_pair(store)
    booking.model.enqueue(tw.ScriptedModel.tool_calls([("transfer_to_confirm", {})]))  # type: ignore[attr-defined]
    confirm.model.enqueue("Your table is confirmed.")  # type: ignore[attr-defined]
    thread = booking.create_thread()
    thread.ask("Book a table for 4", user_id="alice").wait(10)
    shapes = [
        message_dict(m, [tool_call_dict(c) for c in store.list_tool_calls(thread.id, message_id=m.id)])
        for m in store.list_messages(thread.id)
    ]
    assert transcript(shapes, count=3, me="alice") == [
        "You: Book a table for 4", "booking: ⚙ transfer_to_confirm success ── handed over to confirm ──",
        "confirm: Your table is confirmed.",
    ]  # fmt: skip
    # the static copy of the view (a notebook without the kernel) marks the step that handed over
    page = chat_transcript(shapes, title="Table", status={"state": "idle", "note": None})
    assert page.count("handed over to confirm") == 1
    assert page.index("transfer_to_confirm") < page.index("── handed over to confirm ──") < page.index("Your table")


def test_the_scripted_model_taking_over_answers_the_user_not_the_handoff(store: tw.Store) -> None:
    confirm = tw.Agent("confirm", model=tw.ScriptedModel(tokens_per_second=None, rules=[(r"confirm", "Confirmed.")]),
                       store=store)  # fmt: skip
    transfer = tw.ScriptedModel.tool_calls([("transfer_to_confirm", {})])
    booking = tw.Agent("booking", model=tw.ScriptedModel(tokens_per_second=None, rules=[(r"confirm", transfer)]),
                       handoffs=[confirm], store=store)  # fmt: skip
    answer = booking.create_thread().ask("please confirm").wait(10)
    assert (answer.text, [m.agent for m in answer.messages]) == ("Confirmed.", ["booking", "confirm"])


def test_a_view_with_the_first_agent_sends_to_the_agent_the_thread_was_handed_to(
    store: tw.Store, comms: list
) -> None:
    booking, confirm = scripted_pair(store)
    booking.model.enqueue(tw.ScriptedModel.tool_calls([("transfer_to_confirm", {})]))  # type: ignore[attr-defined]
    confirm.model.enqueue("Confirmed.", "It is at 7 pm.")  # type: ignore[attr-defined]
    thread = booking.create_thread()
    thread.ask("Book and confirm").wait(10)
    view = tw.ChatView(thread.id, store=store, agent=booking)
    browser_sends(view, {"kind": "send", "text": "When is it?"})
    last = wait_until(lambda: (m := store.list_messages(thread.id)[-1]).status == "success" and m.role == "assistant"
                      and m.text == "It is at 7 pm." and m)  # fmt: skip
    assert last.agent == "confirm"  # type: ignore[attr-defined]
    view.close()


def test_a_handoff_waits_for_no_decision_the_step_asked_for(store: tw.Store) -> None:
    refunds: list[float] = []

    @tw.tool(needs_approval=True)
    def refund(amount: float) -> str:
        """Refund an amount."""
        refunds.append(amount)
        return "refunded"

    confirm = tw.Agent("confirm", model=tw.ScriptedModel(tokens_per_second=None), store=store)
    booking = tw.Agent("booking", model=tw.ScriptedModel(tokens_per_second=None), tools=[refund],
                       handoffs=[confirm], store=store)  # fmt: skip
    both = tw.ScriptedModel.tool_calls([("refund", {"amount": 80.0}), ("transfer_to_confirm", {})])
    booking.model.enqueue(both, "Refunded.")  # type: ignore[attr-defined]
    thread = booking.create_thread()
    answer = thread.ask("refund and confirm")
    wait_until(lambda: answer.status == "waiting")
    calls = {c.name: c for c in store.list_tool_calls(thread.id)}
    assert calls["transfer_to_confirm"].status == "error"
    assert "waits for a person's decision" in (calls["transfer_to_confirm"].error or "")
    assert store.get_thread(thread.id).agent == "booking"
    store.approve_tool_call(calls["refund"].id, by="bob")
    assert answer.wait(10).status == "success"
    assert refunds == [80.0] and [m.agent for m in answer.messages] == ["booking", "booking"]
