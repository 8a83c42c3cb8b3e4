"""Budgets: checked before an answer starts and while it streams, against what the store says was spent."""

from __future__ import annotations

import re
import subprocess
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

import threadwidget as tw

from .conftest import PYTHON, python_env

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
