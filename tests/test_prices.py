"""Prices and what usage cost: exact decimals, "no price" for unknown models, estimates kept marked."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

import threadwidget as tw
from tests.openai_server import OpenAIServer, Text, ToolCalls
from threadwidget.cli import main

from .conftest import raw_connection

pytest_plugins = ["tests.openai_fixtures"]

PRICES = tw.Prices({"scripted": ("1.00", "2.00"), "big-*": (10, 30)}, defaults=False)


def test_defaults_patterns_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prices = tw.Prices()
    assert prices.get("gpt-4o-mini") == tw.Price(Decimal("0.15"), Decimal("0.60"), Decimal("0.075"))
    assert prices.get("gpt-4o-mini-2024-07-18") == prices.get("gpt-4o-mini")  # the longest pattern wins
    assert prices.get("gpt-4o-2024-08-06") == tw.Price(Decimal("2.50"), Decimal("10.00"), Decimal("1.25"))
    assert prices.get("llama3") is None and "llama3" not in prices  # unknown: no price, never 0
    assert tw.Prices({"gpt-4o-mini": (1, 2)}).get("gpt-4o-mini") == tw.Price(Decimal(1), Decimal(2))  # code wins
    toml = tmp_path / "prices.toml"
    toml.write_text('[llama3]\ninput = 0.1\noutput = 0.2\n["gpt-4o*"]\ninput = 3\noutput = 12\n')
    monkeypatch.setenv("THREADWIDGET_PRICES", str(toml))
    from_env = tw.Prices()
    assert from_env.get("llama3") == tw.Price(Decimal("0.1"), Decimal("0.2"))  # exact: no float on the way
    assert from_env.get("llama3").cached_input == Decimal("0.1")  # type: ignore[union-attr]  # none given: input's
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


def test_cached_input_tokens_from_the_provider_are_stored_and_priced_exactly(
    store: tw.Store, db_path: object, openai_server: OpenAIServer, tmp_path: Path,
) -> None:  # fmt: skip
    openai_server.enqueue(
        ToolCalls([("weather", {"city": "Paris"}, "call_a")], usage=(2_000, 15, 1_536)),
        Text("Sunny in Paris.", usage=(2_100, 40, 2_048)),  # prompt_tokens_details.cached_tokens: 2,048
    )
    chat = tw.OpenAIChat("gpt-test", base_url=openai_server.url, api_key="sk-test-secret", backoff=0.05)
    agent = tw.Agent("support", model=chat, tools=[weather], store=store)
    thread = agent.create_thread()
    assert thread.ask("Weather in Paris?").wait(10).status == "success"
    steps = [m for m in store.list_messages(thread.id) if m.role == "assistant"]
    assert [m.usage for m in steps] == [tw.Usage(2_000, 15, 1_536), tw.Usage(2_100, 40, 2_048)]
    add_answer(store, thread.id, tw.Usage(1_000, 100), model="gpt-test", agent="support")
    old = store.list_messages(thread.id)[-1]
    with raw_connection(db_path) as conn:  # a row written before cached tokens were recorded
        legacy = '{"input_tokens": 1000, "output_tokens": 100}'
        conn.execute("UPDATE messages SET usage = ? WHERE id = ?", (legacy, old.id))
        stored = dict(conn.execute("SELECT id, usage FROM messages WHERE usage IS NOT NULL").fetchall())
    assert json.loads(stored[steps[1].id]) == {"input_tokens": 2_100, "output_tokens": 40, "cached_input_tokens": 2_048}
    assert store.get_message(old.id).usage == tw.Usage(1_000, 100, 0)  # missing: none cached
    assert store.usage(thread_id=thread.id) == tw.Usage(5_100, 155, 3_584)
    file = tmp_path / "prices.json"
    file.write_text('{"gpt-test": {"input": 1.25, "output": 10, "cached_input": 0.125}}')
    prices = tw.Prices.from_file(file, defaults=False)
    cost = store.cost(thread_id=thread.id, prices=prices)
    uncached, cached = 5_100 - 3_584, 3_584
    expected = (uncached * Decimal("1.25") + cached * Decimal("0.125") + 155 * Decimal(10)) / 1_000_000
    assert cost.usd == expected == Decimal("0.003893")  # exact, in Decimal
    assert cost.usage.cached_input_tokens == 3_584 and "(3,584 cached)" in repr(cost)
    no_discount = tw.Prices({"gpt-test": ("1.25", "10")}, defaults=False)  # no cached price: the input price
    assert store.cost(thread_id=thread.id, prices=no_discount).usd == (5_100 * Decimal("1.25") + 1_550) / 1_000_000
    out = CliRunner().invoke(main, ["usage", "--db", str(db_path), "--prices", str(file), "--csv"])
    assert out.exit_code == 0, out.output
    (row,) = csv.DictReader(io.StringIO(out.stdout))
    assert (row["input_tokens"], row["cached_input_tokens"], row["usd"]) == ("5100", "3584", "0.003893")
    data = json.loads(CliRunner().invoke(main, ["usage", "--db", str(db_path), "--prices", str(file), "--json"]).stdout)
    assert data["total"]["cached_input_tokens"] == data["groups"][0]["cached_input_tokens"] == 3_584
    table = CliRunner().invoke(main, ["usage", "--db", str(db_path), "--prices", str(file)]).stdout
    assert table.split()[:6] == ["agent", "input", "cached", "output", "total", "cost"]


def test_a_cached_price_from_a_file_and_in_code(tmp_path: Path) -> None:
    toml = tmp_path / "prices.toml"
    toml.write_text('["gpt-test*"]\ninput = 2\noutput = 8\ncached_input = 0.05\n')
    from_file = tw.Prices.from_file(toml).get("gpt-test-2026")
    assert from_file == tw.Price(Decimal(2), Decimal(8), Decimal("0.05"))  # exact: no float on the way
    assert tw.Prices({"x": (2, 8, "0.5")}, defaults=False).get("x") == tw.Price(Decimal(2), Decimal(8), Decimal("0.5"))
    price = tw.Prices({"x": {"input": 2, "output": 8, "cached_input": 0.5}}, defaults=False).get("x")
    assert price is not None and str(price) == "2 $ in (0.5 $ cached) / 8 $ out per million tokens"
    assert price.cost(tw.Usage(1_000_000, 0, 1_000_000)) == Decimal("0.5")
    assert price.cost(tw.Usage(1_000_000, 1_000_000)) == Decimal(10)
    with pytest.raises(tw.InvalidArgumentError, match=r"x.cached_input=-1 is not valid"):
        tw.Prices({"x": (2, 8, -1)})
    with pytest.raises(tw.InvalidArgumentError, match=r"cached_input optional"):
        tw.Prices({"x": {"input": 2, "cached_input": 1}})


@tw.tool
def weather(city: str) -> str:
    """Current weather in a city."""
    return f"sunny in {city}"
