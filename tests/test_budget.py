"""Budgets: checked before an answer starts and while it streams, against what the store says was spent."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import textwrap
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

import threadwidget as tw
from threadwidget.store import _spend
from threadwidget.widgets import _budgetnote as budgetnote

from .conftest import PYTHON, python_env, wait_until
from .widget_comm import comms

__all__ = ["comms"]  # the fixture, imported for pytest

WORKERS = str(Path(__file__).with_name("agent_workers.py"))

PRICES = tw.Prices({"scripted": ("1.00", "2.00")}, defaults=False)  # USD per million tokens
LONG = " ".join(f"word{i}" for i in range(20_000))  # ~30,000 tokens by the estimate (characters / 4)


def agent_with(store: tw.Store, *replies: str, budget: tw.Budget | None = None, name: str = "support") -> tw.Agent:
    model = tw.ScriptedModel(tokens_per_second=None)
    model.enqueue(*replies)
    return tw.Agent(name, model=model, instructions="Be brief.", store=store, budget=budget)


def stored_sum(store: tw.Store, thread_id: str) -> tw.Usage:
    return sum((m.usage for m in store.list_messages(thread_id, limit=1000) if m.usage is not None), tw.Usage())


def test_per_thread_tokens_stop_a_long_answer_near_the_limit(store: tw.Store) -> None:
    agent = agent_with(store, "A short first answer.", LONG, "never streamed",
                       budget=tw.Budget(per_thread_tokens=2_000, prices=PRICES))  # fmt: skip
    thread = agent.create_thread(user_id="alice")
    first = thread.generate_text("hello")
    assert first.status == "success"
    result = thread.generate_text("tell me everything")
    assert result.status == "aborted"
    assert result.error is not None and result.error.startswith("budget per_thread 2,000 tokens reached: ")
    used = store.usage(thread_id=thread.id)
    assert 2_000 <= used.total_tokens < 2_200  # stopped within 200 tokens of the limit
    answer = store.get_message(result.message_id)  # type: ignore[arg-type]
    assert answer.status == "aborted" and answer.text and LONG.startswith(answer.text)  # the partial text is kept
    assert answer.error == result.error
    assert used == stored_sum(store, thread.id) == first.usage + result.usage  # the thread's usage: its answers'
    cost = store.cost(thread_id=thread.id, prices=PRICES)
    by_answer = [tw.Cost.of(m.usage, m.model, PRICES) for m in store.list_messages(thread.id) if m.usage]
    assert cost.usd == sum((c.usd for c in by_answer), Decimal(0))  # exact: Decimal
    assert cost.usd == (used.input_tokens * Decimal(1) + used.output_tokens * Decimal(2)) / 1_000_000
    assert cost.estimated  # the aborted step's usage is an estimate, and says so in the sum

    refused = thread.generate_text("and more?")  # the thread is over its budget: refused before the model
    assert refused.status == "aborted" and refused.error is not None
    assert refused.error.startswith("budget per_thread 2,000 tokens reached: ")
    step = store.get_message(refused.message_id)  # type: ignore[arg-type]
    assert (step.text, step.usage) == ("", None)
    assert store.usage(thread_id=thread.id) == used  # it used nothing
    assert agent.model.queued == 1  # type: ignore[attr-defined]  # the model was not called


def test_per_thread_usd_says_the_limit_and_the_spend(store: tw.Store) -> None:
    budget = tw.Budget(per_thread_usd="0.01", prices=PRICES)  # 0.01 $ = 5,000 output tokens at 2 $ / M
    agent = agent_with(store, LONG, "never", budget=budget)
    thread = agent.create_thread()
    result = thread.generate_text("go")
    assert result.status == "aborted"
    assert result.error is not None and re.fullmatch(r"budget per_thread 0\.01 \$ reached: 0\.01\d* \$", result.error)
    spent = store.cost(thread_id=thread.id, prices=PRICES).usd
    assert spent is not None and Decimal("0.01") <= spent < Decimal("0.0105")
    again = thread.generate_text("go on")
    assert again.status == "aborted" and again.error is not None and "budget per_thread 0.01 $ reached" in again.error


def test_per_answer_tokens_count_each_answer_alone(store: tw.Store) -> None:
    agent = agent_with(store, LONG, LONG, budget=tw.Budget(per_answer_tokens=500))
    thread = agent.create_thread()
    for prompt in ("one", "two"):  # the second answer starts: the limit is per answer
        result = thread.generate_text(prompt)
        assert result.status == "aborted" and result.error is not None
        assert result.error.startswith("budget per_answer 500 tokens reached: ")
        assert 500 <= result.usage.total_tokens < 700


def test_a_store_budget_applies_to_every_agent(db_path: object, tmp_path: Path) -> None:
    with tw.Store(db_path, budget=tw.Budget(per_thread_tokens=300)) as store:  # type: ignore[arg-type]
        result = agent_with(store, LONG).create_thread().generate_text("go")
        assert result.status == "aborted" and result.error is not None and "per_thread 300 tokens" in result.error


def test_dollar_budgets_need_the_model_price(store: tw.Store) -> None:
    with pytest.raises(tw.InvalidArgumentError, match="the model 'scripted' has no price"):
        agent_with(store, budget=tw.Budget(per_user_usd_per_day=1))
    for bad in ({"per_thread_usd": -1}, {"per_thread_usd": "lots"}, {"per_answer_tokens": 0},
                {"per_thread_tokens": 1.5}):  # fmt: skip
        with pytest.raises(tw.InvalidArgumentError, match=next(iter(bad))):
            tw.Budget(**bad)  # type: ignore[arg-type]
    with pytest.raises(tw.InvalidArgumentError, match="budget="):
        tw.Agent("x", model=tw.ScriptedModel(), store=store, budget={"per_thread_usd": 1})  # type: ignore[arg-type]


SPENDER = textwrap.dedent(
    """
    import sys, threadwidget as tw
    store = tw.Store(sys.argv[1])
    model = tw.ScriptedModel(tokens_per_second=None)
    model.enqueue(" ".join(f"word{i}" for i in range(4000)))
    agent = tw.Agent("other", model=model, store=store)
    result = agent.create_thread(user_id="alice").generate_text("spend")
    print(result.status, result.usage.total_tokens)
    """
)


def test_per_user_per_day_counts_answers_of_other_processes(db_path: object) -> None:
    location = str(db_path)
    done = subprocess.run([PYTHON, "-c", SPENDER, location], env=python_env(), capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    assert done.stdout.split()[0] == "success"
    with tw.Store(location) as store:  # type: ignore[arg-type]
        spent = store.cost(user_id="alice", since="today", prices=PRICES).usd
        assert spent is not None and spent > 0
        limit = spent  # alice already spent all of it, in another process
        agent = agent_with(store, "hi", budget=tw.Budget(per_user_usd_per_day=limit, prices=PRICES))
        refused = agent.create_thread(user_id="alice").generate_text("hello")
        assert refused.status == "aborted" and refused.error is not None
        assert refused.error.startswith(f"budget per_user alice {tw._prices.money(limit)} a day reached: ")
        assert refused.error.endswith("today (UTC)")
        bob = agent.create_thread(user_id="bob").generate_text("hello")  # another user's scope
        assert bob.status == "success"


NOTE = re.compile(
    r"^Budget per_thread 2,000 tokens reached \([\d,]+ tokens\): new prompts are refused until it allows$"
)


def lines_of(process: subprocess.Popen[str]) -> queue.SimpleQueue[str]:
    """The process's stdout lines, read on a thread (a test waits on them with a deadline)."""
    out: queue.SimpleQueue[str] = queue.SimpleQueue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            out.put(line)

    threading.Thread(target=read, daemon=True).start()
    return out


def next_note(lines: queue.SimpleQueue[str], want: Callable[[str], bool], timeout: float = 20.0) -> str:
    """The first ``budget`` note the other kernel's view shows that ``want`` accepts."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail("the other kernel's view did not show the expected budget note")
        try:
            note = json.loads(lines.get(timeout=left))["budget"]
        except queue.Empty:
            continue
        if want(note):
            return str(note)


def test_every_view_says_the_thread_is_over_budget_before_anyone_asks(
    db_path: object, comms: list, procs: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(budgetnote, "READ_EVERY", 0.1)  # this kernel's views re-read often: the test waits less
    with tw.Store(db_path) as store:  # type: ignore[arg-type]
        agent = agent_with(store, LONG, "Back within budget.", budget=tw.Budget(per_thread_tokens=2_000))
        thread = agent.create_thread(user_id="alice")
        quiet = agent.create_thread(user_id="alice")  # another thread of the agent: its own budget
        command = [PYTHON, WORKERS, "budget_view", str(db_path), thread.id, "bob"]  # another kernel, no agent
        kernel = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=python_env())
        procs.append(kernel)
        lines = lines_of(kernel)
        assert next_note(lines, lambda note: True) == ""  # nothing refused yet
        stopped = thread.generate_text("tell me everything")
        assert stopped.status == "aborted" and stopped.error is not None
        assert store.get_message(stopped.message_id).metadata["budget_scope"] == "thread"  # type: ignore[arg-type,index]
        assert NOTE.match(next_note(lines, bool))  # the kernel without the agent says so, from the store
        view = tw.ChatView(thread)  # with the agent: its limits say so
        view._view_count = 1
        wait_until(lambda: NOTE.match(view.budget))
        assert budgetnote.budget_note(store, quiet.id, agent, "alice") == ""  # another thread: its own budget
        assert budgetnote.budget_note(store, quiet.id, None, "alice") == ""
        assert store.budget_stop(quiet.id) is None and store.budget_stop(thread.id).id == stopped.message_id  # type: ignore[union-attr]
        agent.budget = tw.Budget(per_thread_tokens=100_000)  # a raised limit: the view with the agent knows at once
        wait_until(lambda: view.budget == "")
        assert thread.generate_text("and now?").status == "success"  # an answer went through
        assert next_note(lines, lambda note: note == "") == ""  # ... which the other kernel sees in the store
        view.close()


def test_a_user_budget_reached_in_one_thread_shows_in_the_users_other_threads_until_the_day_ends(
    store: tw.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = agent_with(store, LONG, "fine", budget=tw.Budget(per_user_usd_per_day="0.001", prices=PRICES))
    first = agent.create_thread(user_id="alice")
    stopped = first.generate_text("tell me everything")
    assert stopped.status == "aborted" and (stopped.error or "").startswith("budget per_user alice")
    second = agent.create_thread(user_id="alice")
    bobs = agent.create_thread(user_id="bob")
    for thread_id in (first.id, second.id):  # a view without the agent reads it from the store
        for knows in (None, agent):
            note = budgetnote.budget_note(store, thread_id, knows, "alice")
            assert note.startswith("Budget per_user alice 0.001 $ a day reached ("), (knows, note)
    assert budgetnote.budget_note(store, bobs.id, None, "bob") == ""  # another user's scope
    assert budgetnote.budget_note(store, bobs.id, agent, "bob") == ""
    tomorrow = _spend.day_start() + 86_400
    monkeypatch.setattr(_spend, "day_start", lambda now=None: tomorrow)  # a new UTC day: the daily budget allows
    assert budgetnote.budget_note(store, second.id, None, "alice") == ""
