"""The agent runtime with OpenAIChat: the real openai client over HTTP/SSE to the local test server."""

from __future__ import annotations

import json
import threading

import pytest

import threadwidget as tw
from tests.openai_server import CutOff, Error, NoFinish, OpenAIServer, Stall, Text, ToolCalls

from .conftest import wait_until

pytest_plugins = ["tests.openai_fixtures"]


@tw.tool
def lookup_order(order_id: str, ctx: tw.ToolContext) -> dict:
    """Look up an order by id."""
    ctx.progress(0.5, "querying warehouse")
    return {"order_id": order_id, "status": "shipped"}


@tw.tool
def weather(city: str) -> str:
    """Current weather in a city."""
    return f"sunny in {city}"


def make_agent(store: tw.Store, server: OpenAIServer, **kw: object) -> tw.Agent:
    model = tw.OpenAIChat("gpt-test", base_url=server.url, api_key="sk-test-secret", backoff=0.05, **kw)  # type: ignore[arg-type]
    return tw.Agent("support", model=model, instructions="Be brief.", tools=[lookup_order, weather], store=store)


def test_text_answer_with_provider_usage(store: tw.Store, openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Text("Order 42 shipped yesterday.", usage=(31, 6)))
    thread = make_agent(store, openai_server).create_thread()
    pieces = list(thread.stream_text("Where is order 42?"))
    assert "".join(pieces) == "Order 42 shipped yesterday."
    answer = store.list_messages(thread.id)[-1]
    assert (answer.status, answer.model, answer.usage, answer.finish_reason) == (
        "success", "gpt-test", tw.Usage(31, 6), "stop"
    )  # fmt: skip
    body = openai_server.requests[0].body
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Where is order 42?"},
    ]
    assert {t["function"]["name"] for t in body["tools"]} == {"lookup_order", "weather"}
    assert body["stream_options"] == {"include_usage": True}


def test_parallel_tool_calls_with_interleaved_arguments(store: tw.Store, openai_server: OpenAIServer) -> None:
    openai_server.enqueue(
        ToolCalls(
            [("lookup_order", {"order_id": "42"}, "call_a"), ("weather", {"city": "Paris"}, "call_b")], chunk_size=3
        ),
        Text("Order 42 shipped; sunny in Paris."),
    )
    thread = make_agent(store, openai_server).create_thread()
    result = thread.generate_text("order 42 and the weather in Paris?")
    assert (result.status, result.text) == ("success", "Order 42 shipped; sunny in Paris.")
    calls = {c.call_id: c for c in store.list_tool_calls(thread.id)}
    assert json.loads(calls["call_a"].arguments) == {"order_id": "42"}
    assert json.loads(calls["call_b"].arguments) == {"city": "Paris"}
    assert calls["call_b"].result == '"sunny in Paris"'
    assert all(c.status == "success" for c in calls.values())
    # the second request carried the assistant tool calls and both results in OpenAI's shapes
    second = openai_server.requests[1].body["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "tool", "tool"]
    assert {m["tool_call_id"] for m in second[3:]} == {"call_a", "call_b"}
    assert result.usage == tw.Usage(20 + 10, 15 + 5)


def test_invalid_arguments_are_corrected_over_http(store: tw.Store, openai_server: OpenAIServer) -> None:
    openai_server.enqueue(
        ToolCalls([("lookup_order", {"order_id": 42}, "call_bad")]),
        ToolCalls([("lookup_order", {"order_id": "42"}, "call_good")]),
        Text("Shipped."),
    )
    thread = make_agent(store, openai_server).create_thread()
    assert thread.generate_text("where is 42").status == "success"
    corrective = openai_server.requests[1].body["messages"][-1]
    assert corrective["tool_call_id"] == "call_bad"
    assert "order_id: got 42 (integer); Input should be a valid string" in corrective["content"]


def test_429_with_retry_after_then_success(store: tw.Store, openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Error(429, "Rate limit reached for requests", headers={"Retry-After": "0.3"}), Text("ok"))
    thread = make_agent(store, openai_server).create_thread()
    assert thread.generate_text("hi").text == "ok"
    first, second = openai_server.requests
    assert second.at - first.at >= 0.3


def test_500s_exhausted_fail_the_message_with_the_providers_words(store: tw.Store, openai_server: OpenAIServer) -> None:
    openai_server.enqueue(*[Error(500, "The engine is overloaded")] * 3)
    thread = make_agent(store, openai_server, max_retries=2).create_thread()
    with pytest.raises(tw.ModelError, match="500: The engine is overloaded"):
        thread.generate_text("hi")
    answer = store.list_messages(thread.id)[-1]
    assert answer.status == "failed" and "The engine is overloaded" in (answer.error or "")
    assert "[object Object]" not in (answer.error or "") and "sk-test-secret" not in (answer.error or "")
    assert store.active_runs(thread.id) == []


@pytest.mark.parametrize("scenario", [CutOff(["Order 42 ", "shipped"]), NoFinish(["Order 42 ", "shipped"])])
def test_a_stream_that_never_finishes_is_failed_not_success(
    store: tw.Store, openai_server: OpenAIServer, scenario: CutOff | NoFinish
) -> None:
    openai_server.enqueue(scenario)
    thread = make_agent(store, openai_server).create_thread()
    with pytest.raises(tw.ModelError):
        thread.generate_text("where is 42")
    answer = store.list_messages(thread.id)[-1]
    assert answer.status == "failed"
    assert answer.text == "Order 42 shipped" == store.streamed_text(answer.id)[0], "partial text kept, tail flushed"
    assert answer.usage is not None and answer.usage.output_tokens > 0, "usage recorded (estimated) on failure"


def test_abort_closes_the_http_stream_quickly(store: tw.Store, openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Stall(["Thinking about ", "it"], seconds=30))
    agent = make_agent(store, openai_server)
    thread = agent.create_thread()
    results: list[tw.GenerateResult] = []
    runner = threading.Thread(target=lambda: results.append(thread.generate_text("long one")))
    runner.start()
    wait_until(lambda: any(m.text == "" and m.status == "streaming" for m in store.list_messages(thread.id))
               and store.streamed_text(store.list_messages(thread.id)[-1].id)[0] == "Thinking about it")  # fmt: skip
    agent.continue_thread(thread.id).abort()
    runner.join(10)  # the server would stall for 30 s: only a closed stream ends it sooner
    assert not runner.is_alive() and results[0].status == "aborted"
    answer = store.list_messages(thread.id)[-1]
    assert (answer.status, answer.text) == ("aborted", "Thinking about it")
    assert answer.usage is not None


def test_a_gateway_that_echoes_the_key_never_gets_it_stored_logged_or_shown(
    store: tw.Store, openai_server: OpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-test-secret"
    openai_server.enqueue(Error(401, f"invalid credentials in header Authorization: Bearer {secret}"))
    thread = make_agent(store, openai_server).create_thread()
    with caplog.at_level("DEBUG"), pytest.raises(tw.ModelError) as err:
        thread.generate_text("hi")
    failed = store.list_messages(thread.id)[-1]
    assert failed.status == "failed" and "Bearer [hidden]" in (failed.error or "")
    for shown in (str(err.value), failed.error or "", caplog.text, repr(thread.agent.model)):
        assert secret not in shown


def test_credentials_in_the_base_url_stay_out_of_sight() -> None:
    model = tw.OpenAIChat("m", base_url="https://alice:s3cr3t-pass@llm.example.com/v1", api_key="none")
    assert model.base_url == "https://[hidden]@llm.example.com/v1"
    assert "s3cr3t" not in repr(model) and "s3cr3t" not in model.redact("url was alice:s3cr3t-pass")
    for bad in ({"timeout": "x"}, {"connect_timeout": 0}, {"backoff": -1}, {"temperature": "hot"}):
        with pytest.raises(tw.InvalidArgumentError, match=next(iter(bad))):
            tw.OpenAIChat("m", base_url="http://localhost:1/v1", **bad)  # type: ignore[arg-type]
