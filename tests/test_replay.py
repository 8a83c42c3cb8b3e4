"""tw.replay: a stored thread's prompts asked again, with the recorded tool results."""

from __future__ import annotations

import json

import pytest

import threadwidget as tw
from tests.openai_server import OpenAIServer, Text, ToolCalls

pytest_plugins = ["tests.openai_fixtures"]

RUNS: list[dict] = []


@tw.tool
def book_table(party_size: int, time: str) -> dict:
    """Book a table."""
    RUNS.append({"party_size": party_size, "time": time})
    return {"booking_id": f"B-{len(RUNS)}", "party_size": party_size, "time": time}


def booking_model() -> tw.ScriptedModel:
    book = (
        r"table for (\d+) at (\S+)",
        lambda m: tw.ScriptedModel.tool_calls([("book_table", {"party_size": int(m[1]), "time": m[2]})]),
    )
    return tw.ScriptedModel("scripted-booking", tokens_per_second=None, rules=[book])


def record(store: tw.Store) -> str:
    """A stored conversation: two prompts, one booking."""
    agent = tw.Agent("booking", model=booking_model(), tools=[book_table], store=store)
    thread = agent.create_thread(title="Dinner")
    thread.ask("Hello").wait(10)
    thread.ask("A table for 4 at 19:00").wait(10)
    return thread.id


def test_replay_with_recorded_tools_runs_no_tool_and_is_deterministic(store: tw.Store) -> None:
    source = record(store)
    RUNS.clear()
    agent = tw.Agent("booking", model=booking_model(), tools=[book_table], store=store)
    first = tw.replay(source, agent)
    second = tw.replay(source, agent)
    assert RUNS == []  # no tool function ran
    assert first.ok and second.ok, str(first)
    assert [t.new_text for t in first.turns] == [t.new_text for t in second.turns] == [t.old_text for t in first.turns]
    (call,) = first.turns[1].new_calls
    assert (call.name, call.arguments) == ("book_table", {"party_size": 4, "time": "19:00"})
    assert call.result == first.turns[1].old_calls[0].result  # type: ignore[index]  # the recorded booking
    assert first.turns[1].old_calls == first.turns[1].new_calls
    assert store.get_thread(first.thread_id).metadata["replay_of"] == source
    assert first.thread_id != second.thread_id != source
    assert first.turns[1].new_usage.total_tokens > 0 and first.turns[1].old_usage is not None


def test_an_unmatched_call_fails_or_runs_live(store: tw.Store) -> None:
    source = record(store)
    RUNS.clear()
    two = tw.ScriptedModel.tool_calls([("book_table", {"party_size": 2, "time": "19:00"})])
    changed = tw.ScriptedModel(tokens_per_second=None, rules=[(r"table for", two)])  # books for 2, not 4
    agent = tw.Agent("booking", model=changed, tools=[book_table], store=store)
    result = tw.replay(source, agent)
    assert RUNS == [] and not result.ok
    (missed,) = result.unmatched
    assert (missed.turn, missed.name, missed.arguments, missed.ran_live) == (
        1, "book_table", {"party_size": 2, "time": "19:00"}, False
    )  # fmt: skip
    assert not result.turns[1].calls_match
    assert result.turns[1].new_calls[0].status == "error"
    assert "no recorded call of book_table" in (result.turns[1].new_calls[0].error or "")
    live = tw.replay(source, agent, unmatched="live")
    assert RUNS == [{"party_size": 2, "time": "19:00"}]
    assert live.unmatched[0].ran_live and live.turns[1].new_calls[0].status == "success"
    tw.replay(source, agent, tools="live")
    assert len(RUNS) == 2


def test_replay_input_is_checked(store: tw.Store) -> None:
    agent = tw.Agent("booking", model=booking_model(), tools=[book_table], store=store)
    empty = store.create_thread(agent="booking")
    with pytest.raises(tw.InvalidArgumentError, match="no prompts"):
        tw.replay(empty.id, agent)
    with pytest.raises(tw.InvalidArgumentError, match="tools='cached'"):
        tw.replay(empty.id, agent, tools="cached")  # type: ignore[arg-type]
    with pytest.raises(tw.NotFoundError, match="th_nope"):
        tw.replay("th_nope", agent)


def test_replay_against_the_openai_server_reproduces_the_stored_tool_calls(
    store: tw.Store, openai_server: OpenAIServer
) -> None:
    def agent() -> tw.Agent:
        model = tw.OpenAIChat("gpt-test", base_url=openai_server.url, api_key="sk-test", backoff=0.05)
        return tw.Agent("booking", model=model, instructions="Take bookings.", tools=[book_table], store=store)

    conversation = [
        ToolCalls([("book_table", {"party_size": 4, "time": "19:00"}, "call_1")]),
        Text("Booked: B-1 for 4 at 19:00."),
    ]
    openai_server.enqueue(*conversation)
    source = agent().create_thread()
    assert source.ask("A table for 4 at 19:00").wait(10).status == "success"
    RUNS.clear()
    openai_server.reset()
    openai_server.enqueue(*conversation)  # the model answers the same way again
    result = tw.replay(source.id, agent())
    assert RUNS == [] and result.ok, str(result)
    (turn,) = result.turns
    assert [c.signature for c in turn.new_calls] == [c.signature for c in turn.old_calls or ()]
    assert turn.new_text == turn.old_text == "Booked: B-1 for 4 at 19:00."
    # the model's second request carried the recorded result
    tool_message = openai_server.requests[1].body["messages"][-1]
    recorded = (turn.old_calls or [])[0].result
    assert tool_message["role"] == "tool" and tool_message["content"] == recorded
    assert turn.new_usage == turn.old_usage


@tw.tool
def lookup(order_id: str) -> dict:
    """Look up an order."""
    RUNS.append({"order_id": order_id})
    return {"order_id": order_id, "status": f"status of {order_id} (run {len(RUNS)})"}


def parallel_model(*order_ids: str) -> tw.ScriptedModel:
    """Asked about orders: one step looking up ``order_ids`` in parallel, in that order."""
    calls = tw.ScriptedModel.tool_calls([("lookup", {"order_id": i}) for i in order_ids])
    return tw.ScriptedModel(tokens_per_second=None, rules=[(r"orders", calls)])


def test_parallel_calls_in_another_order_get_their_recorded_results_and_still_match(store: tw.Store) -> None:
    thread = tw.Agent("desk", model=parallel_model("A1", "B2"), tools=[lookup], store=store).create_thread()
    thread.ask("Where are my orders?").wait(10)
    recorded = {json.loads(c.arguments)["order_id"]: c.result for c in store.list_tool_calls(thread.id)}
    RUNS.clear()
    swapped = tw.Agent("desk", model=parallel_model("B2", "A1"), tools=[lookup], store=store)
    result = tw.replay(thread.id, swapped)
    assert RUNS == [] and result.ok and not result.unmatched, str(result)
    (turn,) = result.turns
    assert [c.arguments["order_id"] for c in turn.new_calls] == ["B2", "A1"]
    # each call got the result recorded for its arguments, not the one recorded in its place
    assert {c.arguments["order_id"]: c.result for c in turn.new_calls} == recorded
    assert all(c.arguments["order_id"] in (c.result or "") for c in turn.new_calls)
    assert turn.calls_match and turn.calls_reordered
    assert "same tool calls, parallel ones in another order" in str(result)
    # evaluate: not a failure, but the report says the order differs
    report = tw.evaluate([tw.EvalCase(thread_id=thread.id, name="orders")], swapped)
    (case,) = report.cases
    assert case.passed and case.notes == [
        'prompt 1: the same tool calls, parallel ones in another order: lookup {"order_id": "B2"}, '
        'lookup {"order_id": "A1"}'
    ]
    assert "· prompt 1: the same tool calls, parallel ones in another order" in str(report)
    assert "parallel ones in another order" in report._repr_html_()
    # a call in another step is another order that counts: two steps instead of one parallel step
    one = tw.ScriptedModel.tool_calls([("lookup", {"order_id": "A1"})])
    two = tw.ScriptedModel.tool_calls([("lookup", {"order_id": "B2"})])
    sequential = tw.ScriptedModel(tokens_per_second=None, rules=[(r"orders", one), (r"A1", two)])
    apart = tw.replay(thread.id, tw.Agent("desk", model=sequential, tools=[lookup], store=store))
    assert not apart.turns[0].calls_match, str(apart)
    failed = tw.evaluate([tw.EvalCase(thread_id=thread.id, name="orders")],
                         tw.Agent("desk", model=sequential, tools=[lookup], store=store))  # fmt: skip
    assert not failed.cases[0].passed and [n for n, _ in failed.cases[0].failures] == ["same_tool_calls"]


def test_parallel_calls_with_the_same_arguments_take_the_recorded_results_in_the_models_order(
    store: tw.Store,
) -> None:
    twice = tw.ScriptedModel.tool_calls([("lookup", {"order_id": "A1"}), ("lookup", {"order_id": "A1"})])
    model = tw.ScriptedModel(tokens_per_second=None, rules=[(r"orders", twice)])
    thread = tw.Agent("desk", model=model, tools=[lookup], store=store).create_thread()
    RUNS.clear()
    thread.ask("Check my orders twice").wait(10)
    recorded = [c.result for c in store.list_tool_calls(thread.id)]
    assert len(set(recorded)) == 2  # two runs, two results
    for _ in range(5):  # the two stand-ins run on two threads at once: whichever starts first
        result = tw.replay(thread.id, tw.Agent("desk", model=model, tools=[lookup], store=store))
        assert result.ok and [c.result for c in store.list_tool_calls(result.thread_id)] == recorded
    assert len(RUNS) == 2
