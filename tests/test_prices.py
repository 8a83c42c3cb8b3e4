"""Prices and what usage cost: exact decimals, "no price" for unknown models, estimates kept marked."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

import threadwidget as tw

PRICES = tw.Prices({"scripted": ("1.00", "2.00"), "big-*": (10, 30)}, defaults=False)


def test_defaults_patterns_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prices = tw.Prices()
    assert prices.get("gpt-4o-mini") == tw.Price(Decimal("0.15"), Decimal("0.60"))
    assert prices.get("gpt-4o-mini-2024-07-18") == prices.get("gpt-4o-mini")  # the longest pattern wins
    assert prices.get("gpt-4o-2024-08-06") == tw.Price(Decimal("2.50"), Decimal("10.00"))
    assert prices.get("llama3") is None and "llama3" not in prices  # unknown: no price, never 0
    assert tw.Prices({"gpt-4o-mini": (1, 2)}).get("gpt-4o-mini") == tw.Price(Decimal(1), Decimal(2))  # code wins
    toml = tmp_path / "prices.toml"
    toml.write_text('[llama3]\ninput = 0.1\noutput = 0.2\n["gpt-4o*"]\ninput = 3\noutput = 12\n')
    monkeypatch.setenv("THREADWIDGET_PRICES", str(toml))
    from_env = tw.Prices()
    assert from_env.get("llama3") == tw.Price(Decimal("0.1"), Decimal("0.2"))  # exact: no float on the way
    assert from_env.get("gpt-4o") == tw.Price(Decimal(3), Decimal(12))
    assert from_env.get("gpt-4o-mini") == prices.get("gpt-4o-mini")
    js = tmp_path / "prices.json"
    js.write_text('{"mine": {"input": 0.3, "output": 0.9}}')
    assert tw.Prices.from_file(js, defaults=False).get("mine") == tw.Price(Decimal("0.3"), Decimal("0.9"))


def test_bad_prices_say_what_and_how(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(tw.InvalidArgumentError, match=r"the price of 'x' is 5; expected USD per million"):
        tw.Prices({"x": 5})
    with pytest.raises(tw.InvalidArgumentError, match=r"x.input=-1 is not valid"):
        tw.Prices({"x": (-1, 2)})
    bad = tmp_path / "p.toml"
    bad.write_text("[x\n")
    monkeypatch.setenv("THREADWIDGET_PRICES", str(bad))
    with pytest.raises(tw.InvalidArgumentError, match=r"\$THREADWIDGET_PRICES: the prices file .* is not valid TOML"):
        tw.Prices()
    monkeypatch.setenv("THREADWIDGET_PRICES", str(tmp_path / "missing.json"))
    with pytest.raises(tw.InvalidArgumentError, match=r"cannot read prices from .*missing.json"):
        tw.Prices()


def test_cost_text() -> None:
    assert tw.Cost.of(tw.Usage(1_000_000, 0), "scripted", PRICES).text == "1.00 $"
    assert tw.Cost.of(tw.Usage(10, 20), "scripted", PRICES).text == "0.00005 $"
    assert tw.Cost.of(tw.Usage(10, 20), "llama3", PRICES).text == "no price"
    mixed = tw.Cost.of(tw.Usage(5_000, 0), "scripted", PRICES, estimated=True) + tw.Cost.of(
        tw.Usage(1200, 0), "llama3", PRICES
    )
    assert mixed.text == "~0.005 $ + no price for 1,200 tokens (llama3)"
    assert mixed.to_dict()["usd"] == "0.005" and mixed.to_dict()["estimated"] is True


def add_answer(store: tw.Store, thread_id: str, usage: tw.Usage, *, model: str, agent: str, estimated: bool = False,
               ) -> None:  # fmt: skip
    prompt = store.add_message(thread_id, role="user", text="q")
    step = store.add_message(thread_id, role="assistant", text="a", agent=agent, model=model)
    store.update_message(step.id, usage=usage, metadata={"usage_estimated": True} if estimated else None)
    assert prompt.id


def test_costs_by_group_add_up_to_the_total(store: tw.Store) -> None:
    alice = store.create_thread(user_id="alice")
    bob = store.create_thread(user_id="bob")
    add_answer(store, alice.id, tw.Usage(1_000, 500), model="scripted", agent="support")
    add_answer(store, alice.id, tw.Usage(3_333, 777), model="big-1", agent="expert", estimated=True)
    add_answer(store, bob.id, tw.Usage(100, 10), model="llama3", agent="support")
    total = store.cost(prices=PRICES)
    assert total.usage == store.usage()
    assert total.usd == Decimal("0.002") + (3_333 * 10 + 777 * 30) / Decimal(1_000_000)
    assert (total.unpriced_tokens, total.unpriced_models, total.estimated) == (110, ("llama3",), True)
    for by in ("day", "agent", "model", "thread", "user"):
        groups = store.costs(by, prices=PRICES)  # type: ignore[arg-type]
        assert sum(groups.values(), tw.Cost()) == total, by
    assert list(store.costs("agent", prices=PRICES)) == ["expert", "support"]  # most dollars first
    assert store.costs("user", prices=PRICES)["bob"].text == "no price"
    assert store.costs("agent", prices=PRICES)["support"].estimated is False  # only the expert's was estimated
    today = datetime.now(UTC).date().isoformat()
    assert list(store.costs("day", prices=PRICES)) == [today]
    assert store.cost(user_id="alice", agent="support", prices=PRICES).usd == Decimal("0.002")
    assert store.cost(since="1h", prices=PRICES) == total
    assert store.cost(since=datetime.now(UTC).timestamp() + 3600, prices=PRICES) == tw.Cost()
    with pytest.raises(tw.InvalidArgumentError, match="since='yesterday-ish' is not valid"):
        store.cost(since="yesterday-ish")
    with pytest.raises(tw.InvalidArgumentError, match="by='week' is not valid"):
        store.costs("week")  # type: ignore[arg-type]
