"""The agent runtime in one process, with the offline ScriptedModel playing the LLM."""

from __future__ import annotations

import asyncio
import re
import threading

import pytest

import threadwidget as tw
from threadwidget.agent._context import build_messages
from threadwidget.store._runs import WRITER_STOPPED

from .conftest import wait_until


@tw.tool
def lookup_order(order_id: str, ctx: tw.ToolContext) -> dict:
    """Look up an order by id."""
    ctx.progress(0.5, "querying warehouse")
    return {"order_id": order_id, "status": "shipped"}


@tw.tool
def broken(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"warehouse offline: {reason}")


def last_status(store: tw.Store, thread_id: str) -> str | None:
    msgs = store.list_messages(thread_id, limit=1)
    return msgs[-1].status if msgs and msgs[-1].role == "assistant" else None


def generate_in_background(thread: tw.AgentThread) -> tuple[threading.Thread, list[tw.GenerateResult]]:
    """Answer "go" in another thread; the result lands in the list when it is done."""
    results: list[tw.GenerateResult] = []
    runner = threading.Thread(target=lambda: results.append(thread.generate_text("go")))
    runner.start()
    return runner, results


def make_agent(store: tw.Store, *replies: object, rate: float | None = None, **kw: object) -> tw.Agent:
    model = tw.ScriptedModel(tokens_per_second=rate)
    model.enqueue(*replies)  # type: ignore[arg-type]
    return tw.Agent("support", model=model, instructions="Be brief.", tools=[lookup_order, broken], store=store, **kw)  # type: ignore[arg-type]


def test_stream_text_persists_user_and_answer(store: tw.Store) -> None:
    agent = make_agent(store, "Order 42 shipped yesterday and arrives Monday.")
    thread = agent.create_thread(title="Order help", user_id="alice")
    assert store.get_thread(thread.id).agent == "support"
    pieces = list(thread.stream_text("Where is order 42?"))
    assert "".join(pieces) == "Order 42 shipped yesterday and arrives Monday."
    user, answer = store.list_messages(thread.id)
    assert (user.role, user.text, user.status) == ("user", "Where is order 42?", "success")
    assert (answer.role, answer.status, answer.text, answer.finish_reason) == (
        "assistant", "success", "".join(pieces), "stop"
    )  # fmt: skip
    assert answer.agent == "support" and answer.model == "scripted"
    assert answer.usage is not None and answer.usage.output_tokens == len(answer.text.split())  # a token a word
    assert store.streamed_text(answer.id)[0] == answer.text, "the deltas hold the whole text, tail included"
    assert store.active_runs(thread.id) == []


def test_deltas_are_coalesced_and_the_tail_always_flushed(store: tw.Store) -> None:
    words = " ".join(f"w{i}" for i in range(400))
    agent = make_agent(store, words, rate=2000)
    thread = agent.create_thread()
    result = thread.generate_text("go")
    deltas = store.list_deltas(result.message_id)  # type: ignore[arg-type]
    assert "".join(d.text for d in deltas) == words
    assert [d.seq for d in deltas] == list(range(1, len(deltas) + 1))
    assert 2 <= len(deltas) < 200, f"{len(deltas)} deltas for 400 tokens: not coalesced"


def test_status_moves_pending_streaming_success(store: tw.Store) -> None:
    ops: list[str] = []
    store.subscribe(lambda e: ops.append(e.op) if e.kind == "message" and e.row and e.row.role == "assistant" else None)  # type: ignore[union-attr]
    agent = make_agent(store, " ".join(["tok"] * 40), rate=200)
    thread = agent.create_thread()
    runner = threading.Thread(target=thread.generate_text, args=("hello",))
    runner.start()
    wait_until(lambda: last_status(store, thread.id) == "streaming")
    runner.join(10)
    assert store.list_messages(thread.id)[-1].status == "success"
    wait_until(lambda: len(ops) >= 3)
    assert ops == ["insert", "update", "update"]  # created pending, then streaming, then final


def test_tool_calls_rows_progress_results_and_next_step(store: tw.Store) -> None:
    agent = make_agent(
        store,
        tw.ScriptedModel.tool_calls([("lookup_order", {"order_id": "42"}), ("lookup_order", {"order_id": "43"})]),
        "Both orders shipped.",
    )
    thread = agent.create_thread()
    result = thread.generate_text("Where are 42 and 43?")
    assert (result.status, result.text) == ("success", "Both orders shipped.")
    calls = store.list_tool_calls(thread.id)
    assert [(c.name, c.status, c.arguments) for c in calls] == [
        ("lookup_order", "success", '{"order_id": "42"}'), ("lookup_order", "success", '{"order_id": "43"}')
    ]  # fmt: skip
    assert calls[0].result == '{"order_id": "42", "status": "shipped"}'
    assert all(c.progress == 1.0 and c.started_at and c.ended_at for c in calls)
    msgs = store.list_messages(thread.id)
    assert [(m.role, m.step, m.finish_reason) for m in msgs] == [
        ("user", 0, None), ("assistant", 0, "tool_calls"), ("assistant", 1, "stop")
    ]  # fmt: skip
    assert result.message_ids == [msgs[1].id, msgs[2].id]


def test_progress_is_written_while_the_tool_runs(store: tw.Store) -> None:
    gate = threading.Event()
    seen: list[tuple[str, float | None, str | None]] = []

    @tw.tool
    def slow(steps: int, ctx: tw.ToolContext) -> str:
        """A slow tool."""
        for i in range(steps):
            ctx.progress(i / steps, f"step {i}")
            ctx.wait(0.06)
        gate.wait(5)
        return "done"

    store.subscribe(
        lambda e: seen.append((e.row.status, e.row.progress, e.row.progress_note)) if e.kind == "tool_call" else None
    )  # type: ignore[union-attr]
    model = tw.ScriptedModel(tokens_per_second=None)
    model.enqueue(tw.ScriptedModel.tool_calls([("slow", {"steps": 3})]), "ok")
    agent = tw.Agent("a", model=model, tools=[slow], store=store)
    worker = threading.Thread(target=agent.create_thread().generate_text, args=("go",))
    worker.start()
    wait_until(lambda: any(note == "step 2" for _, _, note in seen))
    assert ("running", pytest.approx(2 / 3), "step 2") in seen
    gate.set()
    worker.join(10)
    wait_until(lambda: seen[-1][0] == "success")


def test_invalid_arguments_go_back_to_the_model_then_it_corrects(store: tw.Store) -> None:
    agent = make_agent(
        store,
        tw.ScriptedModel.tool_calls([("lookup_order", {"order_id": 42})]),  # int where a str is wanted
        tw.ScriptedModel.tool_calls([("lookup_order", {"order_id": "42"})]),
        "Order 42 shipped.",
    )
    thread = agent.create_thread()
    result = thread.generate_text("where is 42")
    assert result.status == "success"
    bad, good = store.list_tool_calls(thread.id)
    assert bad.status == "error" and "order_id: got 42 (integer)" in (bad.error or "")
    assert good.status == "success"
    # the second model call saw the corrective error as the tool result
    shaped = build_messages(store, thread.id, instructions=None, window=50)
    tool_msgs = [m for m in shaped if m["role"] == "tool"]
    assert tool_msgs[0]["content"].startswith("Error: Invalid arguments for tool lookup_order")


def test_invalid_arguments_beyond_the_bound_fail_the_answer(store: tw.Store) -> None:
    bad = tw.ScriptedModel.tool_calls([("lookup_order", {"order_id": 1})])
    agent = make_agent(store, bad, bad, bad, "never reached", max_tool_retries=1)
    thread = agent.create_thread()
    with pytest.raises(tw.ToolArgumentsError, match=r"invalid tool arguments 2 times \(max_tool_retries=1\)"):
        thread.generate_text("go")
    assert [c.status for c in store.list_tool_calls(thread.id)] == ["error", "error"]
    last = store.list_messages(thread.id)[-1]  # every view sees why the answer stopped
    assert (last.role, last.status) == ("assistant", "failed")
    assert "invalid tool arguments 2 times" in (last.error or "")
    assert store.active_runs(thread.id) == []


def test_a_model_that_never_stops_calling_tools_is_stopped(store: tw.Store) -> None:
    call = tw.ScriptedModel.tool_calls([("lookup_order", {"order_id": "1"})])
    agent = make_agent(store, call, call, call, max_steps=2)
    thread = agent.create_thread()
    with pytest.raises(tw.ToolError, match="still calling tools after max_steps=2"):
        thread.generate_text("go")
    last = store.list_messages(thread.id)[-1]
    assert (last.status, last.step) == ("failed", 2)


def test_unknown_tool_is_a_corrective_error(store: tw.Store) -> None:
    agent = make_agent(store, tw.ScriptedModel.tool_calls([("launch_rockets", {})]), "Sorry.")
    thread = agent.create_thread()
    assert thread.generate_text("go").status == "success"
    (call,) = store.list_tool_calls(thread.id)
    assert "no tool named 'launch_rockets'" in (call.error or "") and "lookup_order" in (call.error or "")


def test_a_tool_that_raises_becomes_an_error_row_and_the_run_goes_on(store: tw.Store) -> None:
    agent = make_agent(store, tw.ScriptedModel.tool_calls([("broken", {"reason": "maintenance"})]), "It failed, sorry.")
    thread = agent.create_thread()
    result = thread.generate_text("go")
    assert (result.status, result.text) == ("success", "It failed, sorry.")
    (call,) = store.list_tool_calls(thread.id)
    assert call.status == "error" and call.error == "RuntimeError: warehouse offline: maintenance"


def test_model_error_fails_the_message_keeping_partial_text_and_usage(store: tw.Store) -> None:
    agent = make_agent(store, tw.ScriptedModel.error("upstream exploded (500)", text="Partial answer"))
    thread = agent.create_thread()
    got: list[str] = []
    with pytest.raises(tw.ModelError, match="upstream exploded"):
        got.extend(thread.stream_text("go"))
    answer = store.list_messages(thread.id)[-1]
    assert answer.status == "failed" and "upstream exploded" in (answer.error or "")
    assert answer.text == "".join(got) == store.streamed_text(answer.id)[0]
    assert answer.usage is not None and answer.usage.input_tokens > 0
    assert store.active_runs(thread.id) == []


def test_stopping_iteration_early_aborts_the_message(store: tw.Store) -> None:
    agent = make_agent(store, " ".join(["word"] * 100), rate=1000)
    thread = agent.create_thread()
    stream = thread.stream_text("go")
    first = [next(stream) for _ in range(3)]
    stream.close()
    answer = store.list_messages(thread.id)[-1]
    assert answer.status == "aborted" and answer.error == "the caller stopped reading the stream"
    assert answer.text.startswith("".join(first))
    assert answer.usage is not None


def test_abort_from_another_thread_ends_aborted_quickly(store: tw.Store) -> None:
    agent = make_agent(store, " ".join(["slow"] * 1000), rate=50)
    thread = agent.create_thread()
    runner, results = generate_in_background(thread)
    wait_until(lambda: last_status(store, thread.id) == "streaming")
    assert len(agent.continue_thread(thread.id).abort()) == 1  # a different handle, as another process would
    runner.join(10)
    assert not runner.is_alive() and results[0].status == "aborted"
    answer = store.get_message(results[0].message_id)  # type: ignore[arg-type]
    assert answer.status == "aborted" and answer.usage is not None


def test_context_uses_openai_shapes(store: tw.Store) -> None:
    agent = make_agent(store, tw.ScriptedModel.tool_calls([("lookup_order", {"order_id": "42"})]), "Shipped.")
    thread = agent.create_thread()
    thread.generate_text("where is 42")
    shaped = build_messages(store, thread.id, instructions="Be brief.", window=50)
    assert [m["role"] for m in shaped] == ["system", "user", "assistant", "tool", "assistant"]
    call = shaped[2]["tool_calls"][0]
    assert call["type"] == "function" and call["function"] == {
        "name": "lookup_order",
        "arguments": '{"order_id": "42"}',
    }
    assert shaped[3] == {
        "role": "tool",
        "tool_call_id": call["id"],
        "content": '{"order_id": "42", "status": "shipped"}',
    }
    assert [m["role"] for m in build_messages(store, thread.id, instructions=None, window=1)] == ["assistant"]


def test_async_twins(store: tw.Store) -> None:
    agent = make_agent(store, "one two three", "four five")
    thread = agent.create_thread()

    async def main() -> tuple[list[str], tw.GenerateResult]:
        pieces = [p async for p in thread.astream_text("a")]
        return pieces, await thread.agenerate_text("b")

    pieces, result = asyncio.run(main())
    assert "".join(pieces) == "one two three"
    assert result.text == "four five"


def test_usage_summed_per_thread_and_agent(store: tw.Store) -> None:
    agent = make_agent(store, "a b c", "d e")
    t1, t2 = agent.create_thread(), agent.create_thread()
    r1, r2 = t1.generate_text("x"), t2.generate_text("y")
    assert store.usage(thread_id=t1.id) == r1.usage
    assert agent.usage() == r1.usage + r2.usage


def test_bad_agent_arguments_are_clear(store: tw.Store) -> None:
    with pytest.raises(tw.InvalidArgumentError, match=r"name='' is not valid"):
        tw.Agent("", model=tw.ScriptedModel(), store=store)
    with pytest.raises(tw.InvalidArgumentError, match=r"model='gpt-4o' is not a model; pass tw.OpenAIChat"):
        tw.Agent("a", model="gpt-4o", store=store)  # type: ignore[arg-type]
    with pytest.raises(tw.InvalidArgumentError, match="two tools are named 'lookup_order'"):
        tw.Agent("a", model=tw.ScriptedModel(), tools=[lookup_order, lookup_order], store=store)
    agent = make_agent(store)
    with pytest.raises(tw.InvalidArgumentError, match="prompt='' is not valid"):
        list(agent.create_thread().stream_text(""))
    with pytest.raises(tw.NotFoundError, match="th_missing"):
        agent.continue_thread("th_missing")


def test_default_model_is_the_announced_scripted_model(store: tw.Store, capsys: pytest.CaptureFixture[str]) -> None:
    agent = tw.Agent("a", store=store)
    assert isinstance(agent.model, tw.ScriptedModel)
    assert "using the offline ScriptedModel" in capsys.readouterr().err or tw.ScriptedModel._announced


def test_default_model_follows_the_environment(store: tw.Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_MODEL", "llama3.1:8b")
    model = tw.Agent("a", store=store).model
    assert isinstance(model, tw.OpenAIChat)
    assert (model.name, model.base_url) == ("llama3.1:8b", "http://127.0.0.1:9/v1")


def test_usage_sums_with_builtin_sum() -> None:
    assert sum([tw.Usage(1, 2), tw.Usage(3, 4)]) == tw.Usage(4, 6)


def test_a_tool_slower_than_the_lease_renewal_does_not_end_the_answer(store: tw.Store) -> None:
    release = threading.Event()

    @tw.tool
    def slow_tool(ctx: tw.ToolContext) -> str:
        """Takes longer than a lease renewal period."""
        release.wait(10)
        return "finished"

    model = tw.ScriptedModel(tokens_per_second=None)
    model.enqueue(tw.ScriptedModel.tool_calls([("slow_tool", {})]), "All done.")
    agent = tw.Agent("a", model=model, tools=[slow_tool], store=store)
    thread = agent.create_thread()
    runner, results = generate_in_background(thread)
    wait_until(lambda: [c.status for c in store.list_tool_calls(thread.id)] == ["running"])
    (run,) = store.active_runs(thread.id)  # the tool step keeps its lease while its tools run
    renewed = run["lease_expires_at"]
    wait_until(lambda: store.active_runs(thread.id)[0]["lease_expires_at"] > renewed, timeout=5)
    release.set()
    runner.join(10)
    assert (results[0].status, results[0].text) == ("success", "All done.")
    assert store.active_runs(thread.id) == []


def test_abort_while_a_tool_runs_cancels_it(store: tw.Store) -> None:
    @tw.tool
    def patient(ctx: tw.ToolContext) -> str:
        """Waits until cancelled."""
        cancelled = ctx.wait(30)
        return "cancelled" if cancelled else "timed out"

    model = tw.ScriptedModel(tokens_per_second=None)
    model.enqueue(tw.ScriptedModel.tool_calls([("patient", {})]), "never reached")
    agent = tw.Agent("a", model=model, tools=[patient], store=store)
    thread = agent.create_thread()
    runner, results = generate_in_background(thread)
    wait_until(lambda: [c.status for c in store.list_tool_calls(thread.id)] == ["running"])
    assert store.request_abort(thread.id)  # as another process would
    runner.join(10)
    assert not runner.is_alive()
    assert (results[0].status, results[0].error) == ("aborted", "aborted by request")
    assert store.list_tool_calls(thread.id)[0].result == '"cancelled"'  # the tool saw the cancel
    user, tool_step, last = store.list_messages(thread.id)  # no further model call: a last step says why
    assert (last.status, last.error, last.ends_answer) == ("aborted", "aborted by request", True)
    assert last.reply_to == user.id
    assert not tool_step.ends_answer and store.active_runs(thread.id) == []
    assert store.active_runs(thread.id) == []


# -- nothing stays live without an owner ------------------------------------------------------------


def _no_live_rows(store: tw.Store, thread_id: str) -> None:
    assert store.active_runs(thread_id) == []
    assert all(m.is_final for m in store.list_messages(thread_id))
    assert all(c.status in ("success", "error") for c in store.list_tool_calls(thread_id))


def test_a_tool_result_with_a_lone_surrogate_is_stored_escaped(store: tw.Store) -> None:
    @tw.tool
    def list_files() -> list[str]:
        """Files of a folder whose names are not UTF-8 (what os.listdir gives)."""
        return ["report.txt", b"caf\xe9.txt".decode("utf-8", "surrogateescape")]

    model = tw.ScriptedModel(tokens_per_second=None)
    model.enqueue(tw.ScriptedModel.tool_calls([("list_files", {})]), "Two files.")
    thread = tw.Agent("a", model=model, tools=[list_files], store=store).create_thread()
    assert thread.generate_text("files?").status == "success"
    (call,) = store.list_tool_calls(thread.id)
    assert call.status == "success" and "caf\\udce9.txt" in (call.result or "")  # an escape, stored
    _no_live_rows(store, thread.id)


def test_model_text_with_a_lone_surrogate_streams_and_is_kept(store: tw.Store) -> None:
    model = tw.ScriptedModel(tokens_per_second=None)
    model.enqueue("bad \udcff byte")
    thread = tw.Agent("a", model=model, store=store).create_thread()
    result = thread.generate_text("hi")
    assert result.status == "success" and result.text == "bad \\udcff byte"
    _no_live_rows(store, thread.id)


def test_arguments_nested_50000_deep_are_a_clear_tool_error(store: tw.Store) -> None:
    @tw.tool
    def echo(value: str) -> str:
        """Echo."""
        return value

    model = tw.ScriptedModel(tokens_per_second=None)
    deep = "[" * 50_000 + "]" * 50_000
    model.enqueue(tw.ScriptedModel.tool_calls([("echo", {"value": "x"})]), "Done.")
    thread = tw.Agent("a", model=model, tools=[echo], store=store).create_thread()
    with pytest.raises(tw.ToolArgumentsError, match="nested too deeply"):
        echo.validate('{"value": ' + deep + "}")
    assert thread.generate_text("go").status == "success"
    _no_live_rows(store, thread.id)


def test_abort_does_not_wait_for_a_tool_that_ignores_it(store: tw.Store) -> None:
    release = threading.Event()

    @tw.tool
    def stubborn() -> str:
        """Never looks at its context: it cannot be cancelled."""
        release.wait(60)
        return "late"

    model = tw.ScriptedModel(tokens_per_second=None)
    model.enqueue(tw.ScriptedModel.tool_calls([("stubborn", {})]), "never reached")
    thread = tw.Agent("a", model=model, tools=[stubborn], store=store).create_thread()
    answer = thread.ask("go")
    wait_until(lambda: [c.status for c in answer.tool_calls] == ["running"])
    answer.abort()
    assert answer.wait(timeout=30).status == "aborted"
    assert not release.is_set()  # ended while the tool still runs
    (call,) = answer.tool_calls
    assert call.status == "error" and "did not stop" in (call.error or "")
    _no_live_rows(store, thread.id)
    release.set()
    wait_until(lambda: "result was discarded" in (store.get_tool_call(call.id).error or ""))
    assert store.get_tool_call(call.id).result is None  # the late result is not taken


@pytest.mark.parametrize(
    ("options", "named"),
    [({"store": "threads.db"}, "store='threads.db' is not a tw.Store"),
     ({"max_tool_retries": "x"}, "max_tool_retries='x'"), ({"max_steps": 0}, "max_steps=0"),
     ({"context_messages": True}, "context_messages=True")],
)  # fmt: skip
def test_agent_options_are_checked_at_the_call(store: tw.Store, options: dict, named: str) -> None:
    with pytest.raises(tw.InvalidArgumentError, match=re.escape(named)):
        tw.Agent("a", model=tw.ScriptedModel(), **{"store": store, **options})


@pytest.mark.parametrize("reaped_first", [False, True], ids=["writer-records", "reaper-first"])
def test_an_answer_stopped_by_a_full_disk_records_that_reason(
    store: tw.Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, reaped_first: bool
) -> None:
    """The disk fills while a tool runs and no writer can write (the run, its lease, the watcher's
    reaping): once the store takes writes again the answer ends failed with the true reason, also when
    another process had meanwhile ended it as 'writer stopped'."""
    full, test_thread, write = threading.Event(), threading.current_thread(), store._write

    def write_unless_full(fn: object) -> object:  # the disk: this process's other threads cannot write
        if full.is_set() and threading.current_thread() is not test_thread:
            raise tw.StoreFullError(f"{store.path} is full (database or disk is full). Free some space.")
        return write(fn)

    monkeypatch.setattr(store, "_write", write_unless_full)

    @tw.tool
    def export() -> str:
        """Writes a large file: the disk is full afterwards."""
        full.set()
        return "exported"

    model = tw.ScriptedModel(tokens_per_second=None)
    model.enqueue(tw.ScriptedModel.tool_calls([("export", {})]), "never reached")
    answer = tw.Agent("a", model=model, tools=[export], store=store).create_thread().ask("go")
    wait_until(lambda: "could not record the end of an answer yet" in caplog.text)
    assert answer.status != "failed"  # nothing could be written yet
    if reaped_first:  # the lease expires; another process (here: this test) ends the answer
        wait_until(store.reap_expired, timeout=15)
        assert answer.error == WRITER_STOPPED
    full.clear()
    wait_until(lambda: "StoreFullError" in (answer.error or ""), timeout=15)
    assert answer.status == "failed" and "is full" in (answer.error or "")
    _no_live_rows(store, answer.thread_id)
