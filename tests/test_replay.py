"""tw.replay: a stored thread's prompts asked again, with the recorded tool results."""

from __future__ import annotations

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
