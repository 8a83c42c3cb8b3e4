"""Tools that wait for a person: the row, the decision, the answer parked and resumed, on both backends."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

import threadwidget as tw

from .conftest import wait_until
from .widget_comm import browser_sends, comms

__all__ = ["comms"]  # the fixture, imported for pytest


def refund_agent(store: tw.Store, ran: list[dict[str, Any]], *, needs_approval: Any = True) -> tw.Agent:
    @tw.tool(needs_approval=needs_approval)
    def refund(order_id: str, amount: float) -> dict:
        """Refund an order."""
        ran.append({"order_id": order_id, "amount": amount})
        return {"refunded": amount}

    def calls(m: Any) -> Any:
        return tw.ScriptedModel.tool_calls([("refund", {"order_id": m[1], "amount": float(m[2])})])

    model = tw.ScriptedModel(tokens_per_second=None, rules=[(r"refund (\d+) of (\d+)", calls)])
    return tw.Agent("support", model=model, tools=[refund], store=store)


def waiting_call(store: tw.Store, thread_id: str) -> tw.ToolCall:
    calls = wait_until(lambda: store.pending_approvals(thread_id))
    assert isinstance(calls, list) and len(calls) == 1
    return calls[0]


def test_a_call_that_needs_approval_waits_with_its_arguments_and_runs_once_approved(store: tw.Store) -> None:
    ran: list[dict[str, Any]] = []
    thread = refund_agent(store, ran).create_thread(user_id="alice")
    answer = thread.ask("refund 42 of 80", user_id="alice")
    call = waiting_call(store, thread.id)
    assert json.loads(call.arguments) == {"order_id": "42", "amount": 80.0}
    assert (call.status, call.decision, call.decided_by) == ("awaiting_approval", None, None)
    wait_until(lambda: answer.status == "waiting")
    assert ran == [] and answer.pending_approvals == [call]
    assert store.active_runs(thread.id)[0]["waiting_for"] == "approval"  # the turn is held, by nobody

    decided = store.approve_tool_call(call.id, by="bob", note="checked the receipt")
    assert (decided.status, decided.decision, decided.decided_by, decided.decision_note) == (
        "approved", "approved", "bob", "checked the receipt")  # fmt: skip
    assert decided.decided_at is not None
    answer.wait(20)
    assert answer.status == "success" and ran == [{"order_id": "42", "amount": 80.0}]
    final = store.get_tool_call(call.id)
    assert (final.status, final.decision, final.decided_by) == ("success", "approved", "bob")
    assert json.loads(final.result or "") == {"refunded": 80.0}
    assert "refunded" in answer.text and store.active_runs(thread.id) == [] and store.check() == []


def test_a_denied_call_never_runs_and_the_model_is_told_who_denied_it_and_why(store: tw.Store) -> None:
    ran: list[dict[str, Any]] = []
    thread = refund_agent(store, ran).create_thread()
    answer = thread.ask("refund 7 of 900")
    call = waiting_call(store, thread.id)
    denied = store.deny_tool_call(call.id, by="carol", reason="over the limit")
    assert (denied.status, denied.decision, denied.decided_by, denied.decision_note) == (
        "denied", "denied", "carol", "over the limit")  # fmt: skip
    answer.wait(20)
    assert answer.status == "success" and ran == []
    assert "denied by carol: over the limit" in answer.text


def test_needs_approval_as_a_function_of_the_arguments(store: tw.Store) -> None:
    ran: list[dict[str, Any]] = []
    thread = refund_agent(store, ran, needs_approval=lambda args: args["amount"] > 50).create_thread()
    assert thread.ask("refund 1 of 20").wait(20).status == "success"
    assert ran == [{"order_id": "1", "amount": 20.0}] and store.list_tool_calls(thread.id)[0].decision is None
    answer = thread.ask("refund 2 of 60")
    call = waiting_call(store, thread.id)
    store.approve_tool_call(call.id, by="bob")
    assert answer.wait(20).status == "success" and len(ran) == 2


def test_deciding_twice_or_on_a_call_that_does_not_wait_is_an_error_that_changes_nothing(store: tw.Store) -> None:
    ran: list[dict[str, Any]] = []
    thread = refund_agent(store, ran).create_thread()
    answer = thread.ask("refund 3 of 70")
    call = waiting_call(store, thread.id)
    with pytest.raises(tw.InvalidArgumentError, match="by=''"):
        store.approve_tool_call(call.id, by="")
    store.deny_tool_call(call.id, by="carol", reason="no")
    with pytest.raises(tw.DecisionError, match=r"already denied by 'carol'.*cannot approve.*Nothing was changed"):
        store.approve_tool_call(call.id, by="bob")
    with pytest.raises(tw.DecisionError, match="already denied"):
        store.deny_tool_call(call.id, by="bob", reason="also no")
    after = store.get_tool_call(call.id)
    assert (after.decided_by, after.decision_note) == ("carol", "no")
    answer.wait(20)
    plain = store.add_tool_call(answer.messages[-1].id, call_id="c", name="lookup", status="success")
    with pytest.raises(tw.DecisionError, match=r"is success, not awaiting_approval.*pending_approvals"):
        store.approve_tool_call(plain.id, by="bob")
    with pytest.raises(tw.NotFoundError):
        store.deny_tool_call("tc_nope", by="bob")
    assert ran == []


def test_two_people_deciding_at_once_exactly_one_wins(store: tw.Store, db_path: Any) -> None:
    ran: list[dict[str, Any]] = []
    thread = refund_agent(store, ran).create_thread()
    answer = thread.ask("refund 4 of 70")
    call = waiting_call(store, thread.id)
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def decide(i: int) -> None:
        with tw.Store(db_path) as other:  # each its own connections, as another kernel's
            start.wait()
            try:
                if i % 2:
                    other.approve_tool_call(call.id, by=f"user{i}")
                else:
                    other.deny_tool_call(call.id, by=f"user{i}", reason="no")
                outcomes.append(f"won user{i}")
            except tw.DecisionError:
                outcomes.append("refused")

    workers = [threading.Thread(target=decide, args=(i,)) for i in range(8)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert sorted(outcomes)[:7] == ["refused"] * 7
    winner = outcomes[[o.startswith("won") for o in outcomes].index(True)].split()[1]
    assert store.get_tool_call(call.id).decided_by == winner
    answer.wait(20)
    assert len(ran) == (1 if int(winner[4:]) % 2 else 0)


def test_a_new_prompt_while_an_approval_waits_denies_it_and_the_queue_moves_on(store: tw.Store) -> None:
    ran: list[dict[str, Any]] = []
    thread = refund_agent(store, ran).create_thread()
    first = thread.ask("refund 5 of 70")
    call = waiting_call(store, thread.id)
    second = thread.ask("never mind, what is the weather?", user_id="alice")
    superseded = store.get_tool_call(call.id)
    assert (superseded.status, superseded.decided_by, superseded.decision_note) == (
        "denied", "alice", "superseded by a new message")  # fmt: skip
    assert first.wait(20).status == "success" and "superseded by a new message" in first.text
    assert second.wait(20).status == "success" and "weather" in second.text
    assert ran == []
    with pytest.raises(tw.DecisionError, match="already denied by 'alice'"):
        store.approve_tool_call(call.id, by="bob")


def test_aborting_a_waiting_answer_ends_it_at_once_without_running_the_tool(store: tw.Store, db_path: Any) -> None:
    ran: list[dict[str, Any]] = []
    with tw.Store(db_path) as writer:
        thread = refund_agent(writer, ran).create_thread()
        answer = thread.ask("refund 6 of 70")
        call = waiting_call(store, thread.id)
        wait_until(lambda: answer.status == "waiting")
        store.request_abort(thread.id)  # from a store that writes nothing of the answer
        assert answer.status == "aborted" and answer.error == "aborted by request"
        assert store.get_tool_call(call.id).status == "error" and store.active_runs(thread.id) == []
        with pytest.raises(tw.DecisionError, match="is error, not awaiting_approval"):
            store.approve_tool_call(call.id, by="bob")
    assert ran == [] and store.check() == []


def test_a_waiting_answer_is_not_a_dead_writer(store: tw.Store) -> None:
    """The reaper ends answers whose lease expired; a parked turn's lease is long past and stays."""
    ran: list[dict[str, Any]] = []
    thread = refund_agent(store, ran).create_thread()
    answer = thread.ask("refund 8 of 70")
    call = waiting_call(store, thread.id)
    wait_until(lambda: answer.status == "waiting")
    (run,) = store.active_runs(thread.id)
    wait_until(lambda: store._db.now() > run["lease_expires_at"], timeout=15)  # the lease it had is over
    assert store.reap_expired() == []
    assert answer.status == "waiting" and store.get_tool_call(call.id).status == "awaiting_approval"
    assert store.check() == []
    store.approve_tool_call(call.id, by="bob")
    assert answer.wait(20).status == "success" and len(ran) == 1


# -- views and people ------------------------------------------------------------------------------


def test_a_views_approve_is_recorded_as_its_user_and_every_view_shows_the_decision(
    store: tw.Store, comms: list, monkeypatch: pytest.MonkeyPatch
) -> None:

    monkeypatch.setenv("JUPYTERHUB_USER", "bob")
    ran: list[dict[str, Any]] = []
    thread = refund_agent(store, ran).create_thread()
    answer = thread.ask("refund 12 of 70", user_id="alice")
    call = waiting_call(store, thread.id)
    view = tw.ChatView(thread.id, store=store)  # bob's, from the environment
    panel = tw.ToolCallsPanel(thread.id, store=store, user="carol")
    assert view.user == "bob"
    wait_until(lambda: [c["status"] for m in view.messages for c in m["tool_calls"]] == ["awaiting_approval"])
    shown = next(c for m in view.messages for c in m["tool_calls"])
    assert json.loads(shown["arguments"]) == {"order_id": "12", "amount": 70.0}
    browser_sends(view, {"kind": "decide", "tool_call_id": call.id, "decision": "approved", "note": " ok "})
    assert answer.wait(20).status == "success" and len(ran) == 1
    decided = store.get_tool_call(call.id)
    assert (decided.decided_by, decided.decision_note) == ("bob", "ok")

    def panel_shows() -> bool:
        return [(c["decision"], c["decided_by"]) for c in panel.tool_calls] == [("approved", "bob")]

    wait_until(panel_shows)
    browser_sends(panel, {"kind": "decide", "tool_call_id": call.id, "decision": "denied", "note": ""})
    assert store.get_tool_call(call.id).decided_by == "bob"  # decided once: carol's late Deny changed nothing
    browser_sends(view, {"kind": "decide", "tool_call_id": call.id, "decision": "denied", "note": ""})
    assert view.error.startswith(f"Not denied: tool call {call.id!r} (refund) was already approved by 'bob'")
    assert "alice: refund 12 of 70" in repr(view)  # another person's prompt, by name, not "You"


def test_prompts_record_who_wrote_them_and_a_person_can_answer_as_themselves(
    store: tw.Store, comms: list, monkeypatch: pytest.MonkeyPatch
) -> None:

    monkeypatch.setenv("JUPYTERHUB_USER", "dana")
    thread = store.create_thread(agent="support")
    assert store.ask(thread.id, "from the environment").prompt.user_id == "dana"
    assert store.ask(thread.id, "named", user_id="erin").prompt.user_id == "erin"
    view = tw.ChatView(thread.id, store=store, user="erin")
    browser_sends(view, {"kind": "send", "text": "typed in erin's view"})
    reply = store.reply(thread.id, "I refunded it by hand.", user_id="frank")
    assert (reply.role, reply.agent, reply.user_id, reply.status) == ("assistant", None, "frank", "success")
    wait_until(lambda: len(view.messages) == 4)
    assert [m["user_id"] for m in view.messages] == ["dana", "erin", "erin", "frank"]
    lines = repr(view).splitlines()[1:]
    assert [line.split(":")[0].strip() for line in lines] == ["You", "You", "frank"]
    html = view._repr_mimebundle_()[0]["text/html"]  # type: ignore[index]
    assert [w for w in ("dana", "frank") if f'class="twt-who">{w}<' in html] == ["dana", "frank"]
