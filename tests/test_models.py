"""The models: OpenAIChat through the real ``openai`` client against a local OpenAI-compatible server over
real HTTP, and the offline ScriptedModel."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from tests.openai_server import CutOff, Error, NoFinish, OpenAIServer, Stall, Text, ToolCalls
from threadwidget._errors import InvalidArgumentError, MissingAPIKeyError, ModelError
from threadwidget.agent._default import default_model
from threadwidget.agent._model import Finish, Model, ModelStream, TextDelta, ToolCallDelta, Usage
from threadwidget.agent._openai import OpenAIChat, _retry_after
from threadwidget.agent._scripted import ANNOUNCEMENT, ScriptedModel

pytest_plugins = ["tests.openai_fixtures"]

KEY = "sk-test-0123456789-secret"
USER = [{"role": "user", "content": "Where is order 42?"}]
TOOL = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Look up an order by id.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
    },
}


def chat(server: OpenAIServer, **options: Any) -> OpenAIChat:
    options.setdefault("backoff", 0.01)
    return OpenAIChat("gpt-test", base_url=server.url, api_key=KEY, **options)


def collect(stream: ModelStream) -> tuple[list[Any], ModelError | None]:
    events: list[Any] = []
    try:
        for event in stream:
            events.append(event)
    except ModelError as exc:
        return events, exc
    return events, None


def text_of(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def calls_of(events: list[Any]) -> dict[int, dict[str, Any]]:
    calls: dict[int, dict[str, Any]] = {}
    for e in events:
        if isinstance(e, ToolCallDelta):
            call = calls.setdefault(e.index, {"id": None, "name": None, "arguments": ""})
            call["id"] = call["id"] or e.id
            call["name"] = call["name"] or e.name
            call["arguments"] += e.arguments
    return calls


def close_after_first_event(stream: ModelStream) -> list[Any]:
    """Iterate ``stream``; on the first event another thread closes it. Returns the events."""
    events: list[Any] = []
    closed = threading.Event()

    def closer() -> None:
        closed.set()
        stream.close()

    for event in stream:
        events.append(event)
        if len(events) == 1:
            threading.Thread(target=closer).start()
    assert closed.is_set(), "the stream ended before it was closed"
    return events


# -- OpenAIChat against the local server ---------------------------------------------------------------------


def test_streams_text_and_usage(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Text(["Hel", "lo", " wor", "ld"], usage=(7, 4)))
    events, error = collect(chat(openai_server).stream(USER, []))
    assert error is None
    assert text_of(events) == "Hello world"
    assert events[-1] == Finish("stop", Usage(7, 4))
    assert sum(isinstance(e, Finish) for e in events) == 1
    (request,) = openai_server.requests
    assert request.body["model"] == "gpt-test"
    assert request.body["stream"] is True
    assert request.body["stream_options"] == {"include_usage": True}
    assert request.body["messages"] == USER
    assert "tools" not in request.body  # no tools: the field is left out, not sent empty
    assert request.headers["authorization"] == f"Bearer {KEY}"


def test_sends_tools_temperature_and_extra_body(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Text("ok"))
    model = chat(openai_server, temperature=0.2, extra_body={"max_tokens": 50, "seed": 7})
    events, error = collect(model.stream(USER, [TOOL]))
    assert error is None and isinstance(events[-1], Finish)
    body = openai_server.requests[0].body
    assert body["tools"] == [TOOL]
    assert (body["temperature"], body["max_tokens"], body["seed"]) == (0.2, 50, 7)


def test_parallel_tool_calls_reassemble_by_index(openai_server: OpenAIServer) -> None:
    order = {"order_id": "42", "include": ["items", "shipping"], "note": "gift"}
    weather = {"city": "Paris"}
    openai_server.enqueue(
        ToolCalls([("lookup_order", order, "call_a"), ("weather", weather, "call_b")], chunk_size=4, text="Checking.")
    )
    events, error = collect(chat(openai_server).stream(USER, [TOOL]))
    assert error is None
    assert text_of(events) == "Checking."
    indexes = [e.index for e in events if isinstance(e, ToolCallDelta)]
    first_of_1, last_of_0 = indexes.index(1), len(indexes) - 1 - indexes[::-1].index(0)
    assert first_of_1 < last_of_0, "the server should have interleaved the two calls"
    calls = calls_of(events)
    assert calls[0]["id"] == "call_a" and calls[0]["name"] == "lookup_order"
    assert calls[1]["id"] == "call_b" and calls[1]["name"] == "weather"
    assert json.loads(calls[0]["arguments"]) == order
    assert json.loads(calls[1]["arguments"]) == weather
    assert events[-1] == Finish("tool_calls", Usage(20, 15))


def test_429_with_retry_after_waits_then_succeeds(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Error(429, "Rate limit reached for requests", headers={"Retry-After": "1"}), Text("ok"))
    events, error = collect(chat(openai_server).stream(USER, []))
    assert error is None and text_of(events) == "ok"
    first, second = openai_server.requests
    assert 0.95 <= second.at - first.at < 2.0  # Retry-After, not the 0.01 s backoff


def test_retry_after_ms_is_honoured_and_capped(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Error(503, "busy", headers={"retry-after-ms": "300"}), Text("ok"))
    events, error = collect(chat(openai_server, backoff=10.0).stream(USER, []))
    assert error is None and text_of(events) == "ok"
    first, second = openai_server.requests
    assert 0.28 <= second.at - first.at < 1.5  # the header, not the 10 s backoff

    openai_server.reset()
    openai_server.enqueue(Error(429, "slow down", headers={"Retry-After": "3600"}), Text("ok"))
    events, error = collect(chat(openai_server, max_backoff=0.2).stream(USER, []))
    assert error is None
    first, second = openai_server.requests
    assert second.at - first.at < 1.5  # capped at max_backoff


def test_retry_after_header_forms() -> None:
    assert _retry_after({"retry-after": "2"}) == 2.0
    assert _retry_after({"retry-after": "1.5", "retry-after-ms": "250"}) == 0.25
    soon = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    hinted = _retry_after({"retry-after": soon})
    assert hinted is not None and 28 <= hinted <= 30
    assert _retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert _retry_after({"retry-after": "soon"}) is None
    assert _retry_after({}) is None
    assert _retry_after(None) is None


def test_500_twice_then_success(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Error(500, "The server had an error"), Error(500, "The server had an error"), Text("fine"))
    events, error = collect(chat(openai_server).stream(USER, []))
    assert error is None and text_of(events) == "fine"
    assert len(openai_server.requests) == 3


def test_retries_exhausted_carry_the_provider_message(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(*[Error(429, "Rate limit reached for requests", type="requests")] * 4)
    events, error = collect(chat(openai_server, max_retries=3).stream(USER, []))
    assert events == [] and error is not None
    assert str(error) == (
        f"OpenAI-compatible server at {openai_server.url} returned 429: Rate limit reached for requests "
        "(after 4 attempts)"
    )
    assert error.status_code == 429 and error.retryable
    assert len(openai_server.requests) == 4


def test_401_fails_at_once_without_retry(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Error(401, "Incorrect API key provided", type="invalid_request_error"), Text("never"))
    _, error = collect(chat(openai_server, backoff=5.0).stream(USER, []))
    assert error is not None and error.status_code == 401 and not error.retryable
    assert "returned 401: Incorrect API key provided" in str(error)
    assert KEY not in str(error)
    assert len(openai_server.requests) == 1 and openai_server.pending == 1  # no retry


def test_error_without_json_body_is_readable(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Error(502, raw_body="<html>Bad gateway</html>"))
    _, error = collect(chat(openai_server, max_retries=0).stream(USER, []))
    assert error is not None and error.status_code == 502
    assert str(error).endswith("returned 502: <html>Bad gateway</html>")


def test_unreachable_server_is_a_retryable_model_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = OpenAIChat("m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, backoff=0.01)
    _, error = collect(model.stream(USER, []))
    assert error is not None and error.retryable and error.status_code is None
    assert str(error).startswith(f"could not reach OpenAI-compatible server at http://127.0.0.1:{port}/v1: ")
    assert str(error).endswith("(after 2 attempts)")


def test_cut_off_stream_is_an_error_and_not_retried(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(CutOff(["Hel", "lo"]), Text("a retry would send this"))
    events, error = collect(chat(openai_server).stream(USER, []))
    assert text_of(events) == "Hello"
    assert not any(isinstance(e, Finish) for e in events)
    assert error is not None and "lost the connection" in str(error)
    assert len(openai_server.requests) == 1


def test_done_without_finish_reason_is_an_error(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(NoFinish(["Hel", "lo"]))
    events, error = collect(chat(openai_server).stream(USER, []))
    assert text_of(events) == "Hello"
    assert not any(isinstance(e, Finish) for e in events)
    assert error is not None and "stream ended before the model finished (no finish_reason)" in str(error)


def test_close_from_another_thread_during_a_slow_stream(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Text(["tok "] * 200, delay=0.05))
    events = close_after_first_event(chat(openai_server).stream(USER, []))
    assert len(events) < 200 and not any(isinstance(e, Finish) for e in events)


def test_close_wakes_a_reader_blocked_on_a_silent_server(openai_server: OpenAIServer) -> None:
    openai_server.enqueue(Stall(["Hi"], seconds=30))
    events = close_after_first_event(chat(openai_server).stream(USER, []))
    assert text_of(events) == "Hi" and not any(isinstance(e, Finish) for e in events)


@pytest.mark.parametrize(
    "scenario", [Stall(seconds=30, before_headers=True), Error(503, "busy", headers={"Retry-After": "10"})]
)
def test_close_before_the_first_chunk(openai_server: OpenAIServer, scenario: Stall | Error) -> None:
    openai_server.enqueue(scenario, Text("never"))
    stream = chat(openai_server, max_backoff=30.0).stream(USER, [])
    closed_at: list[float] = []

    def closer() -> None:
        openai_server.wait_for_requests(1)
        closed_at.append(time.monotonic())
        stream.close()

    thread = threading.Thread(target=closer)
    thread.start()
    events, error = collect(stream)
    ended = time.monotonic()
    thread.join()
    assert events == [] and error is None  # an abort is quiet
    assert ended - closed_at[0] < 0.3
    assert len(openai_server.requests) == 1


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(MissingAPIKeyError, match="set the OPENAI_API_KEY environment variable") as caught:
        OpenAIChat()
    assert "OPENAI_BASE_URL" in str(caught.value)
    assert isinstance(caught.value, ModelError)


def test_base_url_from_env_needs_no_key(openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.url)
    openai_server.enqueue(Text("local"))
    model = OpenAIChat("llama3")
    assert model.base_url == openai_server.url and model.name == "llama3"
    events, error = collect(model.stream(USER, []))
    assert error is None and text_of(events) == "local"
    assert openai_server.requests[0].headers["authorization"] == "Bearer not-needed"


def test_key_from_env_is_used_and_never_shown(openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    openai_server.enqueue(Text("ok"))
    model = OpenAIChat("gpt-test", base_url=openai_server.url)
    collect(model.stream(USER, []))
    assert openai_server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    for shown in (repr(model), str(model), repr(vars(model))):
        assert KEY not in shown
    assert repr(model) == f"OpenAIChat('gpt-test', base_url='{openai_server.url}')"


def test_rejects_unknown_and_bad_arguments() -> None:
    with pytest.raises(TypeError, match="max_tokens"):
        OpenAIChat("m", base_url="http://127.0.0.1:1/v1", max_tokens=5)  # type: ignore[call-arg]
    with pytest.raises(InvalidArgumentError, match="max_retries"):
        OpenAIChat("m", base_url="http://127.0.0.1:1/v1", max_retries=-1)
    with pytest.raises(InvalidArgumentError, match="timeout"):
        OpenAIChat("m", base_url="http://127.0.0.1:1/v1", timeout=0)


def test_models_satisfy_the_protocol() -> None:
    assert isinstance(OpenAIChat("m", base_url="http://127.0.0.1:1/v1"), Model)
    assert isinstance(ScriptedModel(), Model)
    assert isinstance(ScriptedModel().stream(USER, []), ModelStream)


def test_importing_the_model_modules_does_not_import_openai() -> None:
    code = (
        "import sys, threadwidget.agent._openai, threadwidget.agent._scripted, threadwidget.agent._default; "
        "assert 'openai' not in sys.modules, 'openai was imported eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=Path(__file__).resolve().parent.parent)


# -- ScriptedModel -------------------------------------------------------------------------------------------


def test_scripted_default_reply_is_deterministic() -> None:
    first = list(ScriptedModel(tokens_per_second=None).stream(USER, []))
    second = list(ScriptedModel(tokens_per_second=None).stream(USER, []))
    assert first == second
    text = text_of(first)
    assert text.startswith("You said: **Where is order 42?**")
    assert "offline scripted model" in text and "OPENAI_API_KEY" in text and "tw.OpenAIChat(" in text
    assert len([e for e in first if isinstance(e, TextDelta)]) > 5  # streamed as word-sized tokens
    assert first[-1] == Finish("stop", Usage(4, len(first) - 1))


def test_scripted_queue_text_tool_calls_and_error() -> None:
    model = ScriptedModel(tokens_per_second=None)
    order, weather = {"order_id": "42", "include": ["items", "shipping"]}, {"city": "Paris"}
    model.enqueue(
        "Sure, one moment.",
        ScriptedModel.tool_calls([("lookup_order", order), ("weather", weather)]),
        ScriptedModel.error("the provider fell over", text="Partial answer", status_code=503),
    )
    assert model.queued == 3

    events, error = collect(model.stream(USER, []))
    assert error is None and text_of(events) == "Sure, one moment."
    assert events[-1] == Finish("stop", Usage(4, 3))

    events, error = collect(model.stream(USER, [TOOL]))
    assert error is None and events[-1].reason == "tool_calls"
    calls = calls_of(events)
    assert (calls[0]["name"], json.loads(calls[0]["arguments"])) == ("lookup_order", order)
    assert (calls[1]["name"], json.loads(calls[1]["arguments"])) == ("weather", weather)
    assert calls[0]["id"] != calls[1]["id"] and calls[0]["id"].startswith("call_")
    indexes = [e.index for e in events if isinstance(e, ToolCallDelta) and e.arguments]
    assert indexes[:2] == [0, 1], "argument chunks of parallel calls interleave"
    assert events[-1].usage.output_tokens == len(events) - 1

    events, error = collect(model.stream(USER, []))
    assert text_of(events) == "Partial answer"
    assert not any(isinstance(e, Finish) for e in events)
    assert error is not None and str(error) == "the provider fell over" and error.status_code == 503

    assert model.queued == 0
    assert text_of(list(model.stream(USER, []))).startswith("You said:")  # back to the default


def test_scripted_rules_and_tool_result_summary() -> None:
    model = ScriptedModel(
        tokens_per_second=None,
        rules=[
            (r"order (\d+)", lambda m: ScriptedModel.tool_calls([("lookup_order", {"order_id": m.group(1)})])),
            ("(?i)hello", "Hi there!"),
        ],
    )
    events = list(model.stream(USER, [TOOL]))
    call = calls_of(events)[0]
    assert call["name"] == "lookup_order" and json.loads(call["arguments"]) == {"order_id": "42"}
    assert text_of(list(model.stream([{"role": "user", "content": "HELLO"}], []))) == "Hi there!"

    function = {"name": "lookup_order", "arguments": call["arguments"]}
    requested = {"id": call["id"], "type": "function", "function": function}
    history: list[dict[str, Any]] = [
        *USER,
        {"role": "assistant", "content": None, "tool_calls": [requested]},
        {"role": "tool", "tool_call_id": call["id"], "content": '{"status": "shipped"}'},
    ]
    events = list(model.stream(history, [TOOL]))
    summary = text_of(events)
    assert "lookup_order" in summary and '{"status": "shipped"}' in summary
    assert events[-1] == Finish("stop", Usage(4 + 2 + 2, len(events) - 1))  # user, arguments, result


def test_scripted_close_interrupts_pacing() -> None:
    model = ScriptedModel(tokens_per_second=1.0)  # one token a second
    model.enqueue("one two three four five")
    events = close_after_first_event(model.stream(USER, []))
    assert events == [TextDelta("one ")]  # paced: the other words were not due yet


def test_scripted_pacing() -> None:
    model = ScriptedModel(tokens_per_second=100.0)
    model.enqueue(" ".join(["word"] * 20))
    events = list(model.stream(USER, []))
    assert len(events) == 21  # 20 words and the finish; pacing: test_scripted_close_interrupts_pacing


def test_scripted_usage_counts_words_and_tokens() -> None:
    model = ScriptedModel(tokens_per_second=None)
    model.enqueue("a b c")
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "one two three"}]},
    ]
    assert list(model.stream(messages, []))[-1] == Finish("stop", Usage(5, 3))


def test_scripted_rejects_bad_replies() -> None:
    model = ScriptedModel()
    with pytest.raises(InvalidArgumentError):
        model.enqueue(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        ScriptedModel.tool_calls([("name",)])
    with pytest.raises(InvalidArgumentError):
        ScriptedModel(tokens_per_second=0)


def test_default_model_announces_the_scripted_model_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setattr(ScriptedModel, "_announced", False)
    with caplog.at_level(logging.WARNING, logger="threadwidget"):
        assert isinstance(default_model(), ScriptedModel)
        assert isinstance(default_model(), ScriptedModel)
        ScriptedModel.announce_default()
    assert capsys.readouterr().err.count(ANNOUNCEMENT) == 1
    assert [r.getMessage() for r in caplog.records] == [ANNOUNCEMENT]
    assert "no OPENAI_API_KEY set" in ANNOUNCEMENT and "not a real LLM" in ANNOUNCEMENT

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    model = default_model()
    assert isinstance(model, OpenAIChat) and model.name == "gpt-4o-mini"
