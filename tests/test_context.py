"""``tw.Context``: an answer's model sees the recent messages plus what search finds for the prompt,
within a token budget, and the answer records what it saw."""

from __future__ import annotations

from typing import Any

import pytest

import threadwidget as tw


class Seeing(tw.ScriptedModel):
    """A scripted model that keeps the messages each call was given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[list[dict[str, Any]]] = []

    def stream(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Any:
        self.seen.append(messages)
        return super().stream(messages, tools)


def fill(store: tw.Store, thread_id: str, texts: list[str]) -> list[tw.Message]:
    return [
        store.add_message(thread_id, role="user" if i % 2 == 0 else "assistant", text=t) for i, t in enumerate(texts)
    ]


def contents(messages: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in messages if m.get("content")]


def test_an_old_message_found_by_search_joins_the_recent_ones_in_thread_order(store: tw.Store) -> None:
    model = Seeing()
    agent = tw.Agent("a", model=model, store=store, instructions="Be brief.",
                     context=tw.Context(recent=4, search=3))  # fmt: skip
    thread = agent.create_thread(user_id="alice")
    old = fill(store, thread.id, ["The door code is 4711, keep it safe.", "Noted."])
    filler = fill(store, thread.id, [f"small talk number {i}" for i in range(20)])
    answer = thread.ask("What was the door code again?")
    answer.wait()
    (seen,) = model.seen
    texts = contents(seen)
    assert texts[0] == "Be brief."
    assert "The door code is 4711, keep it safe." in texts  # found by search, 20 messages back
    assert texts[-1] == "What was the door code again?"
    # thread order: the old hit before the recent messages, which end with the prompt
    # (the 4 recent messages: two of the filler, the prompt, and the step being written)
    assert texts[1:] == ["The door code is 4711, keep it safe.", *[m.text for m in filler[-2:]], texts[-1]]
    (step,) = answer.messages
    record = step.metadata["context"]
    assert record["search"] == [old[0].id]
    assert record["recent"] == [m.id for m in filler[-2:]] + [answer.prompt_id]
    assert "door" in record["query"] and "code" in record["query"]
    assert record["tokens"] > 0


def test_other_threads_of_the_same_user_only_when_asked_and_never_another_users(store: tw.Store) -> None:
    alice_old = store.create_thread(user_id="alice")
    bob = store.create_thread(user_id="bob")
    mine = store.add_message(alice_old.id, role="user", text="My locker combination is 1234.")
    theirs = store.add_message(bob.id, role="user", text="My locker combination is 9999.")
    for other_threads in (False, True):
        model = Seeing()
        agent = tw.Agent("a", model=model, store=store, context=tw.Context(search=5, other_threads=other_threads))
        thread = agent.create_thread(user_id="alice")
        answer = thread.ask("What is my locker combination?")
        answer.wait()
        shown = "\n".join(contents(model.seen[0]))
        found = answer.messages[0].metadata["context"]["search"]
        assert "9999" not in shown and theirs.id not in found  # never another user's thread
        owners = {store.get_thread(store.get_message(mid).thread_id).user_id for mid in found}
        if other_threads:  # (the first round's thread is alice's too)
            assert mine.id in found and "1234" in shown and owners == {"alice"}
        else:
            assert found == [] and "1234" not in shown


def test_a_thread_without_a_user_searches_only_itself(store: tw.Store) -> None:
    other = store.create_thread()
    store.add_message(other.id, role="user", text="The secret word is pineapple.")
    agent = tw.Agent("a", model=Seeing(), store=store, context=tw.Context(other_threads=True))
    answer = agent.create_thread().ask("What is the secret word?")
    answer.wait()
    assert answer.messages[0].metadata["context"]["search"] == []


def test_the_budget_keeps_the_prompt_and_drops_what_does_not_fit(store: tw.Store) -> None:
    model = Seeing()
    agent = tw.Agent("a", model=model, store=store, context=tw.Context(recent=50, search=5, max_tokens=200))
    thread = agent.create_thread()
    fill(store, thread.id, ["word " * 300, "short one", "another short one", "x"])  # the first: ~400 tokens
    answer = thread.ask("and now?")
    answer.wait()
    record = answer.messages[0].metadata["context"]
    texts = contents(model.seen[0])
    assert texts[-1] == "and now?"
    assert "word " * 300 not in texts and "short one" in texts
    assert record["tokens"] <= 200


def test_without_a_context_nothing_is_searched_or_recorded(store: tw.Store) -> None:
    agent = tw.Agent("a", model=tw.ScriptedModel(), store=store, context_messages=10)
    answer = agent.create_thread().ask("hello")
    answer.wait()
    assert "context" not in answer.messages[0].metadata
    assert agent.context is None and agent.context_messages == 10


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: tw.Context(recent=0), "recent=0"),
        (lambda: tw.Context(search=-1), "search=-1"),
        (lambda: tw.Context(max_tokens=10), "max_tokens=10"),
        (lambda: tw.Context(other_threads="yes"), "other_threads='yes'"),  # type: ignore[arg-type]
        (lambda: tw.Agent("a", model=tw.ScriptedModel(), context={"recent": 5}), "tw.Context"),  # type: ignore[arg-type]
        (lambda: tw.Agent("a", model=tw.ScriptedModel(), context=tw.Context(), context_messages=5), "pass one"),
    ],
)
def test_bad_settings_are_clear_errors(make: Any, says: str) -> None:
    with pytest.raises(tw.InvalidArgumentError, match=says):
        make()
