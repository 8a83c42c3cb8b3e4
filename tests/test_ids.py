"""Row ids: random by default; numbered per store with ``deterministic_ids`` (tests, tutorials)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest

import threadwidget as tw

RANDOM = re.compile(r"(th|msg|tc)_[0-9a-f]{20}")


def another_location(db_path: Any) -> Any:
    """A second new store on the same backend as ``db_path``."""
    if isinstance(db_path, Path):
        return db_path.with_name("other.db")
    return f"{db_path.rsplit('?', 1)[0]}?schema=t_{uuid.uuid4().hex[:12]}"


def write_a_conversation(store: tw.Store) -> list[str]:
    """Threads, prompts, an answer with a tool call, an imported message; the ids, in order."""

    @tw.tool
    def lookup_order(order_id: str) -> dict:
        """Look up an order."""
        return {"order_id": order_id, "status": "shipped"}

    model = tw.ScriptedModel(tokens_per_second=None)
    agent = tw.Agent("support", model=model, tools=[lookup_order], store=store)
    thread = agent.create_thread(title="Order help")
    model.enqueue(tw.ScriptedModel.tool_calls([("lookup_order", {"order_id": "42"})]), "It has shipped.")
    answer = thread.ask("Where is order 42?").wait(timeout=30)
    assert answer.status == "success"
    other = store.create_thread(title="Imported")
    store.add_message(other.id, role="user", text="hello")
    ids = [thread.id, other.id]
    for t in (thread.id, other.id):
        ids += [m.id for m in store.list_messages(t)] + [c.id for c in store.list_tool_calls(t)]
    return ids


def test_ids_are_random_by_default(store: tw.Store, db_path: Any) -> None:
    assert store.deterministic_ids is False
    with tw.Store(another_location(db_path)) as other:
        ids, other_ids = write_a_conversation(store), write_a_conversation(other)
    assert all(RANDOM.fullmatch(i) for i in ids + other_ids)
    assert not set(ids) & set(other_ids)


def test_deterministic_ids_are_equal_across_two_new_stores_and_unique_within_one(db_path: Any) -> None:
    with tw.Store(db_path, deterministic_ids=True) as first:
        ids = write_a_conversation(first)
    with tw.Store(another_location(db_path), deterministic_ids=True) as second:
        assert write_a_conversation(second) == ids
    assert len(set(ids)) == len(ids)
    assert ids == [
        "th_000001", "th_000002",
        "msg_000001", "msg_000002", "msg_000003", "tc_000001",  # the prompt, the answer's two steps
        "msg_000004",
    ]  # fmt: skip


def test_the_count_is_the_stores_whichever_opening_writes(db_path: Any) -> None:
    """Two openings of one store (two processes, as far as the database can tell) continue one
    count; an opening with random ids writes beside them."""
    with (
        tw.Store(db_path, deterministic_ids=True) as a,
        tw.Store(db_path, deterministic_ids=True) as b,
        tw.Store(db_path) as random_ids,
    ):
        made = [s.create_thread().id for s in (a, b, random_ids, b, a)]
    assert made[:2] == ["th_000001", "th_000002"] and made[3:] == ["th_000003", "th_000004"]
    assert RANDOM.fullmatch(made[2])


def test_numbers_are_not_reused_and_a_write_that_fails_takes_none(db_path: Any) -> None:
    with tw.Store(db_path, deterministic_ids=True) as store:
        first = store.create_thread()
        store.delete_thread(first.id)
        assert store.create_thread().id == "th_000002"  # th_000001 was deleted: not given again
        with pytest.raises(tw.NotFoundError):
            store.add_message("th_nope", role="user", text="lost")
        assert store.add_message("th_000002", role="user", text="kept").id == "msg_000001"


def test_a_number_a_copied_row_holds_is_skipped(db_path: Any) -> None:
    with tw.Store(another_location(db_path), deterministic_ids=True) as source:
        copied = source.create_thread(title="copied")
        with tw.Store(db_path, deterministic_ids=True) as store:
            tw.store.copy_store(source, store)
            assert store.get_thread("th_000001").title == "copied"
            assert copied.id == "th_000001"
            assert store.create_thread(title="new").id == "th_000002"


def test_the_environment_variable_turns_them_on_and_the_argument_wins(
    db_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THREADWIDGET_DETERMINISTIC_IDS", "1")
    with tw.Store(db_path) as store:
        assert store.deterministic_ids is True
        assert store.create_thread().id == "th_000001"
    with tw.Store(db_path, deterministic_ids=False) as store:
        assert RANDOM.fullmatch(store.create_thread().id)
    monkeypatch.setenv("THREADWIDGET_DETERMINISTIC_IDS", "0")
    with tw.Store(db_path) as store:
        assert store.deterministic_ids is False


@pytest.mark.parametrize("value", ["yes", "true", "2"])
def test_a_bad_environment_value_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("THREADWIDGET_DETERMINISTIC_IDS", value)
    with pytest.raises(
        tw.InvalidArgumentError, match=rf"THREADWIDGET_DETERMINISTIC_IDS='{value}' is not valid; set it to 1"
    ):
        tw.Store(tmp_path / "threads.db")
    assert not (tmp_path / "threads.db").exists()  # refused before anything was created


@pytest.mark.parametrize("value", ["yes", 1, 0])
def test_a_bad_argument_is_a_clear_error(tmp_path: Path, value: object) -> None:
    with pytest.raises(tw.InvalidArgumentError, match=r"deterministic_ids=.* is not valid; expected True"):
        tw.Store(tmp_path / "threads.db", deterministic_ids=value)  # type: ignore[arg-type]
