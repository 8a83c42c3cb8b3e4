"""UsagePanel's kernel side: the rows it sends, and following answers that end in other processes."""

from __future__ import annotations

import subprocess
import textwrap
from decimal import Decimal

import pytest

import threadwidget as tw

from .conftest import PYTHON, python_env, wait_until
from .widget_comm import RecordingComm, browser_sets, comms

__all__ = ["comms"]  # the fixture, imported for pytest

PRICES = tw.Prices({"scripted": ("1.00", "2.00")}, defaults=False)

ANSWER = textwrap.dedent(
    """
    import sys, threadwidget as tw
    store = tw.Store(sys.argv[1])
    model = tw.ScriptedModel(tokens_per_second=None)
    model.enqueue("an answer from another process")
    agent = tw.Agent(sys.argv[2], model=model, store=store)
    print(agent.create_thread(user_id="carol").generate_text("hello").status)
    """
)


def answer(store: tw.Store, agent: str, text: str) -> None:
    model = tw.ScriptedModel(tokens_per_second=None)
    model.enqueue(text)
    tw.Agent(agent, model=model, store=store).create_thread(user_id="alice").generate_text("q")


def test_rows_groups_and_total_add_up(store: tw.Store, comms: list[RecordingComm]) -> None:
    answer(store, "support", "one two three four")
    answer(store, "billing", "five six")
    panel = tw.UsagePanel(store, by="agent", prices=PRICES)
    assert (panel.by, panel.part_by, panel.metric, panel.selected) == ("agent", "model", "tokens", None)
    assert [g["group"] for g in panel.groups] == ["support", "billing"]  # most dollars first
    assert {(r["group"], r["part"]) for r in panel.rows} == {("support", "scripted"), ("billing", "scripted")}
    assert sum(Decimal(g["usd"]) for g in panel.groups) == Decimal(panel.total["usd"])
    assert Decimal(panel.total["usd"]) == store.cost(prices=PRICES).usd
    assert panel.total["input_tokens"] + panel.total["output_tokens"] == store.usage().total_tokens
    browser_sets(panel, selected="billing")  # a bar clicked: the view filters its table
    assert panel.selected == "billing"
    panel.by = "model"  # another grouping: parts per agent, no bar selected
    assert panel.part_by == "agent" and panel.selected is None
    assert [g["group"] for g in panel.groups] == ["scripted"]
    assert "UsagePanel(" in repr(panel) and "scripted" in repr(panel)
    unpriced = tw.UsagePanel(store, by="user")
    assert unpriced.groups[0]["cost"] == "no price" and unpriced.groups[0]["usd"] is None
    panel.close()
    unpriced.close()


def test_bad_arguments_say_what_is_expected(store: tw.Store, comms: list[RecordingComm]) -> None:
    with pytest.raises(tw.InvalidArgumentError, match="by='week' is not valid"):
        tw.UsagePanel(store, by="week")
    with pytest.raises(tw.InvalidArgumentError, match="since='soon' is not valid"):
        tw.UsagePanel(store, since="soon")
    with pytest.raises(tw.InvalidArgumentError, match="metric='euros' is not valid"):
        tw.UsagePanel(store, metric="euros")


def test_follows_answers_that_end_in_another_process(db_path: object, comms: list[RecordingComm]) -> None:
    with tw.Store(db_path) as store:  # type: ignore[arg-type]
        answer(store, "support", "one two three")
        panel = tw.UsagePanel(store, by="agent", since="today", prices=PRICES)
        assert [g["group"] for g in panel.groups] == ["support"]
        done = subprocess.run([PYTHON, "-c", ANSWER, str(db_path), "nightly"], env=python_env(), capture_output=True,
                              text=True, timeout=60, check=True)  # fmt: skip
        assert done.stdout.strip() == "success"
        wait_until(lambda: {g["group"] for g in panel.groups} == {"support", "nightly"})
        assert panel.total["input_tokens"] + panel.total["output_tokens"] == store.usage().total_tokens
        panel.close()
