"""Vectors and search by meaning, on both backends: messages embedded in the background as they
become final (whoever wrote them), hybrid search finding what words miss, a mismatched embedder
refused loudly, ``reindex``, and the agent's context searching by meaning. The embedder is the real
``openai`` client against the tests' local server (``tests/openai_server.py``: a deterministic
embedder that knows a few synonyms)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

import threadwidget as tw

from .conftest import PYTHON, ROOT, python_env, wait_until
from .openai_server import EMBED_MODEL, Error, OpenAIServer
from .widget_comm import RecordingComm, browser_sets, comms

__all__ = ["comms"]  # the fixture, imported for pytest

pytest_plugins = ["tests.openai_fixtures"]


def embedder(server: OpenAIServer, model: str = EMBED_MODEL, **options: Any) -> tw.OpenAIEmbedding:
    return tw.OpenAIEmbedding(model, base_url=server.url, api_key="sk-test-secret-1234", **options)


def vectors(store: tw.Store) -> int:
    return int(store._conn().execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])


@pytest.fixture
def kettle(store: tw.Store) -> dict[str, tw.Message]:
    alice = store.create_thread(title="Kettle", user_id="alice")
    say = store.add_message
    return {
        "money": say(alice.id, role="user", text="The kettle I bought arrived damaged. I want my money back."),
        "sorry": say(alice.id, role="assistant", text="Sorry to hear that! Which order was it?"),
        "order": say(alice.id, role="user", text="Order 42, bought on Monday."),
    }


def test_hybrid_search_finds_by_meaning_what_text_search_misses(
    store: tw.Store, kettle: dict[str, tw.Message], openai_server: OpenAIServer
) -> None:
    store.use_embedder(embedder(openai_server))
    wait_until(lambda: vectors(store) == 3)  # the messages stored before: embedded in the background
    assert store.embedding_model() == (EMBED_MODEL, 64)
    assert store.search("refund broken") == []  # not one of these words was said
    hits = store.search("refund broken", mode="hybrid")
    assert hits[0].message.id == kettle["money"].id
    assert hits[0].thread.title == "Kettle"
    nearest = store.search("a refund for a broken teapot", mode="vector", limit=1)
    assert [h.message.id for h in nearest] == [kettle["money"].id]
    assert 0 < nearest[0].rank <= 1  # cosine similarity
    # hybrid keeps what text search finds, and a hit found both ways comes first
    both = store.search("kettle", mode="hybrid")
    assert both[0].message.id == kettle["money"].id
    assert both[0].marks and both[0].snippet[slice(*both[0].marks[0])].lower() == "kettle"
    # filters apply to vectors too
    bob = store.create_thread(user_id="bob")
    store.add_message(bob.id, role="user", text="I need a reimbursement for the cracked teapot.")
    wait_until(lambda: vectors(store) == 4)
    mine = store.search("refund broken", mode="hybrid", user_id="alice")
    assert {h.thread.user_id for h in mine} == {"alice"}
    assert {h.thread.user_id for h in store.search("refund broken", mode="vector")} == {"alice", "bob"}


def test_an_embedder_unlike_the_stored_vectors_is_a_clear_error(
    db_path: Any, kettle: dict[str, tw.Message], store: tw.Store, openai_server: OpenAIServer
) -> None:
    store.use_embedder(embedder(openai_server))
    wait_until(lambda: vectors(store) == 3)
    shorter = embedder(openai_server, dimensions=32)
    with pytest.raises(tw.EmbeddingMismatchError) as raised:
        store.search("refund", mode="vector", embedder=shorter)
    message = str(raised.value)
    assert "'tw-embed' (64 dimensions)" in message and "'tw-embed' (32 dimensions)" in message
    assert "threadwidget reindex" in message
    other = embedder(openai_server, model="tw-embed-2")
    with pytest.raises(tw.EmbeddingMismatchError, match=r"'tw-embed-2'.*threadwidget reindex --model tw-embed-2"):
        store.search("refund", mode="hybrid", embedder=other)
    with pytest.raises(tw.EmbeddingMismatchError, match="'tw-embed' \\(64 dimensions\\)"):
        tw.Store(db_path, embedder=other)  # another process opening the store with another model
    # a model that says nothing of its dimension, returning another one: found when it answers
    with pytest.raises(tw.EmbeddingMismatchError, match="32 dimensions"):
        store.search("refund", mode="vector", embedder=_Unsaid(shorter))
    assert "sk-test-secret-1234" not in message
    assert vectors(store) == 3  # nothing was lost or replaced


class _Unsaid:
    """An embedder that does not say its dimension."""

    def __init__(self, inner: tw.OpenAIEmbedding):
        self.model, self.dimensions, self._inner = inner.model, None, inner

    def embed(self, texts: list[str]) -> list[list[float]]:
        return self._inner.embed(texts)


def test_reindex_replaces_the_vectors_with_another_embedders(
    store: tw.Store, kettle: dict[str, tw.Message], openai_server: OpenAIServer
) -> None:
    first = embedder(openai_server)
    assert store.reindex(first) == 3  # synchronous: every message embedded when it returns
    assert store.reindex(first) == 0  # nothing missing
    shorter = embedder(openai_server, dimensions=32)
    seen: list[tuple[int, int]] = []
    assert store.reindex(shorter, progress=lambda done, total: seen.append((done, total))) == 3
    assert seen[-1] == (3, 3)
    assert store.embedding_model() == (EMBED_MODEL, 32)
    found = store.search("a refund for a broken kettle", mode="vector", embedder=shorter, limit=1)
    assert found[0].message.id == kettle["money"].id
    with pytest.raises(tw.EmbeddingMismatchError):
        store.search("refund", mode="vector", embedder=first)


def test_a_failing_embedder_drops_nothing_and_is_retried(
    store: tw.Store, kettle: dict[str, tw.Message], openai_server: OpenAIServer
) -> None:
    openai_server.embedding_errors.append(Error(503, "overloaded, try later"))
    first = embedder(openai_server, max_retries=0)
    with pytest.raises(tw.ModelError, match=r"503.*overloaded") as raised:
        store.reindex(first)
    assert "sk-test-secret-1234" not in str(raised.value)
    assert vectors(store) == 0
    store.reindex(first)
    openai_server.embedding_errors.append(Error(500, "boom"))
    store.use_embedder(first)  # the background indexer meets the error, then retries
    thread = store.create_thread()
    store.add_message(thread.id, role="user", text="Where is my parcel?")
    wait_until(lambda: vectors(store) == 4)


def test_messages_written_by_another_process_are_embedded_once_final(
    db_path: Any, store: tw.Store, openai_server: OpenAIServer
) -> None:
    store.use_embedder(embedder(openai_server))
    thread = store.create_thread(user_id="alice")
    code = (
        "import sys, threadwidget as tw\n"
        "s = tw.Store(sys.argv[1]); model = tw.ScriptedModel(tokens_per_second=200)\n"
        "model.enqueue('Your courier lost it.')\n"
        "agent = tw.Agent('support', model, store=s)\n"
        "agent.continue_thread(sys.argv[2]).ask('My shipment never came.').wait(timeout=60)\n"
        "s.close()\n"
    )
    subprocess.run([PYTHON, "-c", code, str(db_path), thread.id], check=True, env=python_env(), cwd=ROOT, timeout=60)
    wait_until(lambda: vectors(store) == 2)
    hits = store.search("delivery", mode="vector", thread_id=thread.id)
    assert {h.message.text for h in hits} == {"My shipment never came.", "Your courier lost it."}


def test_deleting_a_thread_deletes_its_vectors(
    store: tw.Store, kettle: dict[str, tw.Message], openai_server: OpenAIServer
) -> None:
    store.reindex(embedder(openai_server))
    other = store.create_thread()
    kept = store.add_message(other.id, role="user", text="A refund, please.")
    store.reindex(embedder(openai_server))
    assert len(store.search("refund", mode="vector", embedder=embedder(openai_server))) == 4  # this process's copy
    store.delete_thread(kettle["money"].thread_id)
    assert vectors(store) == 1
    # the copy was read again: the best of the deleted messages no longer takes the only place
    found = store.search("damaged kettle money", mode="vector", embedder=embedder(openai_server), limit=1)
    assert [h.message.id for h in found] == [kept.id]


def test_vector_search_without_an_embedder_says_how_to_give_one(store: tw.Store) -> None:
    with pytest.raises(tw.InvalidArgumentError, match=r"needs an embedder.*OpenAIEmbedding.*mode='text' needs none"):
        store.search("refund", mode="vector")
    with pytest.raises(tw.InvalidArgumentError, match="mode='fuzzy' is not valid; expected one of text, vector"):
        store.search("refund", mode="fuzzy")
    with pytest.raises(tw.InvalidArgumentError, match="dimensions=0 is not valid"):
        tw.OpenAIEmbedding("m", dimensions=0, base_url="http://127.0.0.1:9/v1")
    with pytest.raises(tw.InvalidArgumentError, match="is not an embedder"):
        store.use_embedder("text-embedding-3-small")  # type: ignore[arg-type]
    assert "sk-x-hidden" not in repr(tw.OpenAIEmbedding("m", api_key="sk-x-hidden", base_url="http://127.0.0.1:9/v1"))


def test_the_context_of_an_answer_holds_what_meaning_finds(
    store: tw.Store, kettle: dict[str, tw.Message], openai_server: OpenAIServer
) -> None:
    agent = tw.Agent(
        "support", tw.ScriptedModel(), store=store, embedder=embedder(openai_server),
        context=tw.Context(recent=2, search=5),
    )  # fmt: skip
    wait_until(lambda: vectors(store) == 3)
    thread = agent.continue_thread(kettle["money"].thread_id)
    answer = thread.ask("Can I get a refund for something broken?")
    answer.wait(timeout=30)
    seen = answer.messages[0].metadata["context"]
    assert seen["mode"] == "hybrid"
    assert kettle["money"].id in seen["search"]  # no word in common: found by meaning
    assert kettle["money"].id not in seen["recent"]


def test_the_command_line_reindexes_and_searches_by_meaning(
    db_path: Any, kettle: dict[str, tw.Message], store: tw.Store, openai_server: OpenAIServer
) -> None:
    from click.testing import CliRunner

    from threadwidget.cli import main

    def run(*args: str) -> Any:
        env = {"OPENAI_BASE_URL": openai_server.url, "OPENAI_API_KEY": "sk-test-secret-1234"}
        return CliRunner().invoke(main, [*args, "--db", str(db_path)], env=env)

    out = run("search", "refund", "--mode", "hybrid")
    assert out.exit_code == 1 and "has no vectors yet" in out.output and "threadwidget reindex --model" in out.output
    out = run("reindex", "--model", EMBED_MODEL, "--dimensions", "48")
    assert out.exit_code == 0, out.output
    assert "Embedded 3 messages with tw-embed" in out.output
    out = run("search", "refund broken", "--mode", "hybrid", "--json")  # the stored model and its 48 dimensions
    assert out.exit_code == 0, out.output
    assert json.loads(out.output.splitlines()[0])["message_id"] == kettle["money"].id
    out = run("search", "refund", "--mode", "vector", "--model", "tw-embed-2")
    assert out.exit_code == 1 and "EmbeddingMismatchError" not in out.output
    assert "'tw-embed' (48 dimensions)" in out.output and "sk-test-secret-1234" not in out.output


def test_a_thread_lists_search_box_searches_by_meaning_when_the_store_has_an_embedder(
    store: tw.Store, kettle: dict[str, tw.Message], openai_server: OpenAIServer, comms: list[RecordingComm]
) -> None:
    store.use_embedder(embedder(openai_server))
    wait_until(lambda: vectors(store) == 3)
    listing = tw.ThreadList(store, user_id="alice")
    browser_sets(listing, query="refund")
    assert listing.hits[0]["message_id"] == kettle["money"].id  # no word in common
    asked = len(openai_server.embedding_requests)
    later = store.add_message(kettle["money"].thread_id, role="assistant", text="A refund is on its way.")
    wait_until(lambda: later.id in [h["message_id"] for h in listing.hits])
    # the query's vector is kept: searching it again at each change asks the model only for the new message
    queries = [r for r in openai_server.embedding_requests[asked:] if r.body["input"] == ["refund"]]
    assert queries == []
