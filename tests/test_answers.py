"""Answers: one at a time per thread, in prompt order, linked to their prompts, from any process."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path

import pytest

import threadwidget as tw

from .conftest import wait_until
from .test_agent_processes import read_json, spawn

ORDERS = ("11", "22", "33")


@tw.tool
def lookup_order(order_id: str, ctx: tw.ToolContext) -> dict:
    """Look up an order by id; waits until the test lets it finish."""
    if order_id == "hold":
        ctx.wait(30)
    return {"order_id": order_id, "status": f"order {order_id} shipped"}


def order_agent(store: tw.Store, rate: float | None = None) -> tw.Agent:
    rule = (r"order (\w+)", lambda m: tw.ScriptedModel.tool_calls([("lookup_order", {"order_id": m[1]})]))
    model = tw.ScriptedModel(tokens_per_second=rate, rules=[rule])
    return tw.Agent("support", model=model, tools=[lookup_order], store=store)


def assert_in_prompt_order(store: tw.Store, thread_id: str, answers: list[tw.Answer]) -> None:
    """Each answer's steps follow its prompt in the thread, and answers never overlap in time."""
    listed = store.list_messages(thread_id, limit=100)
    expected: list[str] = []
    for answer in answers:
        expected += [answer.prompt_id, *(m.id for m in answer.messages)]
    assert [m.id for m in listed] == expected
    for earlier, later in itertools.pairwise(answers):
        assert earlier.messages[-1].updated_at <= later.messages[0].created_at  # 0 interleaving
    for answer in answers:
        steps = answer.messages
        assert [m.ends_answer for m in steps] == [False] * (len(steps) - 1) + [True]
        assert {m.reply_to for m in steps} == {answer.prompt_id}


def test_three_prompts_two_serving_processes_answer_in_order(db_path: Path, tmp_path: Path, procs: list) -> None:
    log = tmp_path / "model-calls.jsonl"
    servers = [spawn("serve_orders", str(db_path), str(log)) for _ in range(2)]
    procs.extend(servers)
    for server in servers:
        assert server.stdout is not None and server.stdout.readline() == "ready\n"
    with tw.Store(db_path) as store:  # a view-only process: it only writes prompts
        thread = store.create_thread(agent="support")
        first = store.ask(thread.id, "where is order 11?", user_id="alice")
        wait_until(lambda: [c.status for c in first.tool_calls] == ["running"], timeout=30)
        answers = [first, *(store.ask(thread.id, f"where is order {n}?", user_id="bob") for n in ORDERS[1:])]
        assert [a.status for a in answers[1:]] == ["queued", "queued"]  # behind the running answer
        for answer in answers:
            answer.wait(timeout=60)
        for order, answer in zip(ORDERS, answers, strict=True):
            assert answer.status == "success", answer.error
            assert [(c.name, json.loads(c.arguments)) for c in answer.tool_calls] == [
                ("lookup_order", {"order_id": order})
            ]
            assert f"order {order} shipped" in answer.text  # its own tool result, nobody else's
        assert_in_prompt_order(store, thread.id, answers)
        assert store.get_message(answers[1].prompt_id).user_id == "bob"
        assert store.answer_in_progress(thread.id) is None
    for server in servers:
        assert server.stdin is not None
        server.stdin.write("stop\n")
        server.stdin.flush()
    answered = sum(read_json(server)["answered"] for server in servers)
    assert answered == 3
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    # the model saw each prompt twice (the tool call, then the tool's result), strictly in order
    assert [(c["prompt"], c["after_tool"]) for c in calls] == [
        (f"where is order {n}?", after) for n in ORDERS for after in (False, True)
    ]


def test_ask_while_a_tool_runs_waits_its_turn(store: tw.Store) -> None:
    thread = order_agent(store).create_thread()
    first = thread.ask("where is order hold?")
    wait_until(lambda: [c.status for c in first.tool_calls] == ["running"])
    second = thread.ask("where is order 7?")
    assert second.status == "queued" and store.queued_prompts(thread.id)[0].id == second.prompt_id
    assert store.answer_in_progress(thread.id).prompt_id == first.prompt_id  # type: ignore[union-attr]
    store.request_abort(thread.id)  # stops the running answer; the queued one is still answered
    assert first.wait(timeout=10).status == "aborted"
    assert second.wait(timeout=10).status == "success" and "order 7 shipped" in second.text
    assert_in_prompt_order(store, thread.id, [first, second])


def test_abort_can_cancel_the_queue_too(store: tw.Store) -> None:
    thread = order_agent(store).create_thread()
    first = thread.ask("where is order hold?")
    wait_until(lambda: [c.status for c in first.tool_calls] == ["running"])
    queued = [thread.ask(f"where is order {n}?") for n in ORDERS]
    cancelled = thread.abort(cancel_queued=True)
    assert {a.prompt_id for a in queued} <= set(cancelled)
    for answer in [first, *queued]:
        assert answer.wait(timeout=10).status == "aborted"
    assert [a.error for a in queued] == ["cancelled before it was answered"] * 3
    assert all(a.messages == [] for a in queued)


def test_answer_abort_cancels_only_its_own_prompt(store: tw.Store) -> None:
    thread = order_agent(store).create_thread()
    first = thread.ask("where is order hold?")
    wait_until(lambda: [c.status for c in first.tool_calls] == ["running"])
    second, third = thread.ask("where is order 2?"), thread.ask("where is order 3?")
    second.abort()
    assert second.status == "aborted" and third.status == "queued" and first.status == "running"
    first.abort()
    assert third.wait(timeout=10).status == "success"


def test_bad_prompts_raise_at_the_call(store: tw.Store) -> None:
    thread = order_agent(store).create_thread()
    for bad in ("", "   ", None, 42):
        with pytest.raises(tw.InvalidArgumentError, match="prompt"):
            thread.ask(bad)  # type: ignore[arg-type]
        with pytest.raises(tw.InvalidArgumentError, match="prompt"):
            thread.stream_text(bad)  # type: ignore[arg-type]  # at the call, not on first next()
    with pytest.raises(tw.InvalidArgumentError, match="names no agent"):
        store.ask(store.create_thread().id, "hello")
    with pytest.raises(tw.NotFoundError, match="th_missing"):
        store.ask("th_missing", "hello", agent="support")
    assert store.count_messages(thread.id) == 0


def test_iterating_an_answer_streams_and_store_text_shows_it_midway(store: tw.Store) -> None:
    model = tw.ScriptedModel(tokens_per_second=100)
    model.enqueue(" ".join(f"w{i}" for i in range(60)))
    thread = tw.Agent("support", model=model, store=store).create_thread()
    answer = thread.ask("talk")
    pieces: list[str] = []
    midway: list[tuple[str, str]] = []
    for piece in answer:
        pieces.append(piece)
        if len(pieces) == 2:
            step = answer.messages[0]
            midway.append((step.status, store.text(step.id)))
    assert answer.status == "success" and "".join(pieces) == answer.text == model_text(60)
    status, text = midway[0]
    # streamed so far, before the end: at least what was read (the writer may be further on)
    assert status == "streaming" and text.startswith("".join(pieces[:2])) and len(text) < len(answer.text)
    assert len(pieces) > 2


def model_text(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


def test_answer_wait_follows_an_answer_written_by_another_process(db_path: Path, procs: list) -> None:
    with tw.Store(db_path) as store:
        thread = store.create_thread(agent="writer")
        answer = store.ask(thread.id, "hello")
        assert answer.status == "queued"
        server = spawn("serve", str(db_path), "writer")
        procs.append(server)
        pieces = list(answer)  # streamed by the other process, read through the feed
        assert answer.wait(timeout=30).status == "success"
        assert "".join(pieces) == answer.text and answer.text.startswith("You said: **hello**")
        assert answer.usage.output_tokens > 0 and store.wait_answer(answer.prompt_id).text == answer.text
        with pytest.raises(tw.InvalidArgumentError, match="never asked"):
            store.answer(store.add_message(thread.id, role="user", text="a note").id)


def test_wait_times_out_with_a_clear_error(store: tw.Store) -> None:
    thread = order_agent(store).create_thread()
    answer = thread.ask("where is order hold?")
    with pytest.raises(tw.AnswerTimeoutError, match="still running"):
        answer.wait(timeout=0.05)
    answer.abort()
    assert answer.wait(timeout=10).status == "aborted"


def test_generate_and_stream_are_wrappers_over_ask(store: tw.Store) -> None:
    thread = order_agent(store).create_thread()
    result = thread.generate_text("where is order 5?")
    (answer,) = [store.answer(m.id) for m in store.list_messages(thread.id) if m.role == "user"]
    assert result.status == answer.status == "success" and result.text == answer.text
    assert result.message_ids == [m.id for m in answer.messages] and result.usage == answer.usage


def test_async_twins(store: tw.Store) -> None:
    import asyncio

    thread = order_agent(store, rate=400).create_thread()

    async def main() -> tuple[list[str], tw.Answer]:
        answer = thread.ask("where is order 9?")
        pieces = [p async for p in answer]
        return pieces, await answer.wait_async(timeout=10)

    pieces, answer = asyncio.run(main())
    assert "".join(pieces).endswith(answer.text) and "order 9 shipped" in answer.text


def test_dead_writer_in_its_tool_phase_ends_the_answer_and_passes_the_turn(store: tw.Store) -> None:
    thread = store.create_thread(agent="support")
    prompt, first = store.add_prompt(thread.id, "q1", claim_model="m", lease_seconds=0.05)
    assert first is not None
    store.add_tool_call(first.id, call_id="c1", name="lookup_order", arguments="{}", status="running")
    store.update_message(first.id, status="success")  # the step ended; its tool runs; then the writer dies
    later = store.ask(thread.id, "q2")
    wait_until(lambda: store.reap_expired() or store.answer(prompt.id).done)
    gone = store.answer(prompt.id)
    assert gone.status == "failed" and "writer stopped" in (gone.error or "")
    assert [c.status for c in gone.tool_calls] == ["error"]
    assert later.status == "queued" and store.active_runs(thread.id) == []
    assert store.claim_pending("support", thread_id=thread.id) is not None  # the turn passed on


def test_one_answer_at_a_time_under_concurrent_asks(store: tw.Store) -> None:
    thread = order_agent(store).create_thread()
    answers: list[tw.Answer] = []
    lock = threading.Lock()

    def ask(n: int) -> None:
        answer = thread.ask(f"where is order {n}?")
        with lock:
            answers.append(answer)

    askers = [threading.Thread(target=ask, args=(n,)) for n in range(6)]
    for t in askers:
        t.start()
    for t in askers:
        t.join()
    for answer in answers:
        assert answer.wait(timeout=30).status == "success"
    answers.sort(key=lambda a: store.get_message(a.prompt_id).position)
    assert_in_prompt_order(store, thread.id, answers)
    for answer in answers:
        order = store.get_message(answer.prompt_id).text.split()[-1].rstrip("?")
        assert f"order {order} shipped" in answer.text

