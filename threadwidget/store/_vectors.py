"""Vectors of messages' text, and search by meaning (a part of ``Store``).

An **embedder** turns texts into vectors: anything with a ``model`` name, ``dimensions`` (an int, or
None when the model decides) and ``embed(texts) -> list of vectors`` (``tw.OpenAIEmbedding``). A
store given one (``Store(embedder=...)``, ``store.use_embedder(...)``, ``tw.Agent(embedder=...)``)
embeds each user and assistant message once it is final, in a background thread fed by the change
feed (the stream never waits for it), and the messages it finds without a vector when it starts.

Vectors live in ``embeddings`` (one per message, with its model and dimension, unit length, float32
little-endian) and are compared in this process with numpy: the store stays an ordinary file or
schema that every kernel opens, whether or not its SQLite can load extensions or its PostgreSQL
server has pgvector. One store holds vectors of one model and dimension: an embedder that differs
raises ``EmbeddingMismatchError`` naming both, at ``use_embedder``, at search, and in a writer that
meets another's vectors; ``reindex`` re-embeds the store with another.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from .._errors import EmbeddingMismatchError, InvalidArgumentError, StoreClosedError, ThreadwidgetError
from ._dialect import Conn
from ._part import StorePart
from ._rows import Message

if TYPE_CHECKING:
    import numpy as np

    from ._feed import Subscription
    from ._rows import Event

__all__ = ["Embedder", "Vectors", "forget_vectors"]

log = logging.getLogger("threadwidget.store")

#: messages embedded in one request to the embedder
BATCH = 64
#: seconds the background embedding waits after a message is final for others to embed with it
LINGER = 0.5
#: characters of a message embedded (about 6,000 tokens: models take 8,191)
MAX_CHARS = 24_000
#: query vectors a process keeps
_QUERIES_KEPT = 64
#: messages that get a vector: what people and agents said, once final
_EMBEDDABLE = "m.role IN ('user', 'assistant') AND m.status IN ('success', 'failed', 'aborted') AND m.text != ''"


@runtime_checkable
class Embedder(Protocol):
    """What a store needs of an embedding model."""

    model: str
    dimensions: int | None

    def embed(self, texts: list[str]) -> list[list[float]]: ...


def _describe(model: str, dimensions: int | None) -> str:
    return f"{model!r} ({dimensions} dimensions)" if dimensions else f"{model!r}"


def check_embedder(embedder: object) -> Embedder:
    if not isinstance(embedder, Embedder) or not isinstance(embedder.model, str) or not embedder.model:
        raise InvalidArgumentError(
            f"embedder={embedder!r} is not an embedder; pass tw.OpenAIEmbedding('text-embedding-3-small') or "
            "an object with .model (str), .dimensions (int or None) and .embed(texts) -> list of vectors."
        )
    return embedder


class Vectors(StorePart):
    """Vectors of messages and search by meaning (a part of ``Store``)."""

    _embedder: Embedder | None = None
    _indexer: _Indexer | None = None
    #: why this process's indexer stopped (a mismatch): raised by the next vector search
    _vector_problem: EmbeddingMismatchError | None = None
    _cache: _Cache | None = None
    #: the vectors of the process's last queries (a view searches its query again at each change of the store)
    _query_vectors: ClassVar[dict[tuple[str, int | None, str], Any]] = {}
    _vector_lock = threading.Lock()  # one per process: searches are short

    @property
    def embedder(self) -> Embedder | None:
        """The embedder this store embeds new messages with (None: no vectors are made here)."""
        return self._embedder

    def use_embedder(self, embedder: Embedder) -> None:
        """Embed every final user and assistant message with ``embedder`` from now on, in a
        background thread (the messages already stored without a vector too), and search with it.

        Raises ``EmbeddingMismatchError`` when the store holds vectors of another model or
        dimension, or this store already embeds with another embedder."""
        embedder = check_embedder(embedder)
        if self._embedder is not None:
            if (self._embedder.model, self._embedder.dimensions) == (embedder.model, embedder.dimensions):
                return
            raise EmbeddingMismatchError(
                f"this store already embeds with {_describe(self._embedder.model, self._embedder.dimensions)}, "
                f"not {_describe(embedder.model, embedder.dimensions)}: a store holds vectors of one model and "
                "dimension. Use the same embedder, or re-embed the store with the other "
                f"(`threadwidget reindex --model {embedder.model}`, or store.reindex(embedder))."
            )
        self._check_vectors(embedder.model, embedder.dimensions)
        self._embedder = embedder
        if self._db.read_only is None:
            self._indexer = _Indexer(self, embedder)

    def embedding_model(self) -> tuple[str, int] | None:
        """The model and dimension of the vectors stored (None: no vectors yet)."""
        return self._stored_model(self._conn())

    @staticmethod
    def _stored_model(conn: Conn) -> tuple[str, int] | None:
        # every vector is of one model and dimension: each write checks it under the write lock
        row = conn.execute("SELECT model, dimensions FROM embeddings ORDER BY model, dimensions LIMIT 1").fetchone()
        return None if row is None else (str(row[0]), int(row[1]))

    def _check_vectors(self, model: str, dimensions: int | None, conn: Conn | None = None) -> None:
        stored = self._stored_model(conn or self._conn())
        if stored is not None:
            self._refuse_unlike(stored, model, dimensions)

    def _refuse_unlike(self, stored: tuple[str, int], model: str, dimensions: int | None) -> None:
        if stored[0] == model and dimensions in (None, stored[1]):
            return
        raise EmbeddingMismatchError(
            f"the store {self.path} holds vectors of {_describe(*stored)}, but the embedder is "
            f"{_describe(model, dimensions)}: comparing them would find nothing that makes sense. Re-embed the "
            f"store with this embedder (`threadwidget reindex --model {model}`, or store.reindex(embedder)), or "
            f"search with an embedder of {stored[0]!r} and dimensions={stored[1]}."
        )

    def _embed(self, embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
        """``texts`` as unit vectors (float32 rows), checked: one per text, all of one length (the
        embedder's ``dimensions`` when it says)."""
        import numpy as np

        vectors = embedder.embed([t[:MAX_CHARS] for t in texts])
        try:
            matrix = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError) as exc:  # ragged or not numbers
            raise EmbeddingMismatchError(
                f"the embedder {_describe(embedder.model, embedder.dimensions)} returned vectors of different "
                f"lengths or not numbers ({exc}); check the model and its dimensions."
            ) from None
        if matrix.ndim != 2 or matrix.shape[0] != len(texts):
            raise EmbeddingMismatchError(
                f"the embedder {_describe(embedder.model, embedder.dimensions)} returned {matrix.shape[0]} vectors "
                f"for {len(texts)} texts; expected one vector per text."
            )
        if embedder.dimensions and matrix.shape[1] != embedder.dimensions:
            raise EmbeddingMismatchError(
                f"the embedder {_describe(embedder.model, embedder.dimensions)} returned vectors of "
                f"{matrix.shape[1]} dimensions; set dimensions={matrix.shape[1]} or use a model that supports "
                f"{embedder.dimensions}."
            )
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return matrix / np.where(norms == 0, 1, norms)

    def _save_vectors(self, model: str, rows: Sequence[tuple[str, str]], matrix: np.ndarray) -> int:
        """Store one vector per ``(message_id, thread_id)``; a message that has one keeps it, one
        deleted meanwhile gets none. Refused (``EmbeddingMismatchError``) when the store holds
        vectors of another model or dimension, checked in the same transaction."""
        dimensions = int(matrix.shape[1])
        blobs = [row.astype("<f4").tobytes() for row in matrix]

        def write(conn: Conn, now: float) -> int:
            self._check_vectors(model, dimensions, conn)
            saved = 0
            for (message_id, thread_id), blob in zip(rows, blobs, strict=True):
                saved += conn.execute(
                    "INSERT INTO embeddings (message_id, thread_id, model, dimensions, vector, created_at) "
                    "SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM messages WHERE id = ?) "
                    "ON CONFLICT (message_id) DO NOTHING",
                    (message_id, thread_id, model, dimensions, blob, now, message_id),
                ).rowcount
            return saved

        saved: int = self._write(write)
        return saved

    def _unembedded(self, *, after: str = "", limit: int = BATCH) -> list[tuple[str, str, str]]:
        """Final messages without a vector, ``(id, thread_id, text)`` in id order after ``after``."""
        rows = self._conn().execute(
            f"SELECT m.id, m.thread_id, m.text FROM messages m WHERE {_EMBEDDABLE} AND m.id > ? "
            "AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.message_id = m.id) ORDER BY m.id LIMIT ?",
            (after, limit),
        )
        return [(str(a), str(b), str(c)) for a, b, c in rows]

    def _embed_missing(self, embedder: Embedder, progress: Callable[[int, int], object] | None = None) -> int:
        """Embed every final message without a vector; ``progress(done, total)`` after each batch."""
        (total,) = (
            self._conn()
            .execute(
                f"SELECT COUNT(*) FROM messages m WHERE {_EMBEDDABLE} "
                "AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.message_id = m.id)"
            )
            .fetchone()
        )
        done, after = 0, ""
        while batch := self._unembedded(after=after):
            matrix = self._embed(embedder, [text for _, _, text in batch])
            self._save_vectors(embedder.model, [(mid, tid) for mid, tid, _ in batch], matrix)
            done, after = done + len(batch), batch[-1][0]
            if progress is not None:
                progress(done, max(total, done))
        return done

    def reindex(self, embedder: Embedder | None = None, *, progress: Callable[[int, int], object] | None = None) -> int:
        """Give every final message a vector of ``embedder`` (default: the store's): the vectors of
        another model or dimension are replaced, the messages without one embedded. Resumable: run
        it again after an interruption and it goes on. ``progress(done, total)`` is called after
        each batch. Returns how many messages were embedded."""
        embedder = check_embedder(embedder if embedder is not None else self._embedder)
        stored = self.embedding_model()
        if stored is not None and (stored[0] != embedder.model or embedder.dimensions not in (None, stored[1])):
            # learn the new vectors' dimension before dropping the old ones: a failing embedder drops nothing
            self._embed(embedder, ["threadwidget"])
            self._write(lambda conn, now: forget_vectors(conn))
        done = self._embed_missing(embedder, progress)
        if self._embedder is not None and self._embedder is not embedder:
            self._stop_indexer()
            self._embedder, self._vector_problem = None, None
            self.use_embedder(embedder)
        return done

    def _stop_indexer(self) -> None:
        if self._indexer is not None:
            self._indexer.stop()
            self._indexer = None

    def _nearest(
        self, query: str, embedder: Embedder | None, where: list[str], args: list[Any], limit: int
    ) -> list[tuple[str, float]]:
        """The ``limit`` messages whose vectors are nearest the query's, ``(message_id,
        similarity)`` best first (cosine similarity, 1 is the same direction); ``where`` filters on
        ``m`` (messages) and ``t`` (threads)."""
        import numpy as np

        if self._vector_problem is not None:
            raise self._vector_problem
        embedder = embedder if embedder is not None else self._embedder
        if embedder is None:
            raise InvalidArgumentError(
                "vector search needs an embedder: pass embedder=tw.OpenAIEmbedding('text-embedding-3-small') to "
                "store.search, or give the store one (tw.Store(..., embedder=...) or store.use_embedder(...)); "
                "mode='text' needs none."
            )
        embedder = check_embedder(embedder)
        stored = self.embedding_model()
        if stored is None:
            return []
        self._refuse_unlike(stored, embedder.model, embedder.dimensions)
        key = (embedder.model, embedder.dimensions, query)
        with self._vector_lock:
            vector = self._query_vectors.get(key)
        if vector is None:
            (vector,) = self._embed(embedder, [query])
            self._refuse_unlike(stored, embedder.model, int(vector.shape[0]))
            with self._vector_lock:
                while len(self._query_vectors) >= _QUERIES_KEPT:
                    self._query_vectors.pop(next(iter(self._query_vectors)))
                self._query_vectors[key] = vector
        with self._vector_lock:
            if self._cache is None or self._cache.shape != stored:
                self._cache = _Cache(*stored)
            cache = self._cache
            cache.refresh(self._conn())
            if not cache.seqs.size:
                return []
            scores = cache.matrix @ vector
            if where:  # the vectors of the messages the filters keep (the messages' rows only for their agent)
                conditions = " AND ".join(w.replace("m.thread_id", "e.thread_id") for w in where)
                joins = " JOIN messages m ON m.id = e.message_id" if "m." in conditions else ""
                kept = self._conn().execute(
                    f"SELECT e.seq FROM embeddings e JOIN threads t ON t.id = e.thread_id{joins} WHERE {conditions}",
                    args,
                )
                keep = np.isin(cache.seqs, np.fromiter((r[0] for r in kept), dtype=np.int64))
                scores = np.where(keep, scores, -np.inf)
            n = min(limit, int(np.isfinite(scores).sum()))
            best = np.argpartition(-scores, n - 1)[:n] if n else np.zeros(0, dtype=np.int64)
            ranked = sorted(((cache.ids[i], float(scores[i])) for i in best), key=lambda x: (-x[1], x[0]))
        return [(mid, score) for mid, score in ranked if score > 0]


def forget_vectors(conn: Conn, where: str = "", args: tuple[Any, ...] = ()) -> None:
    """Delete vectors (``where``: which), and count the deletion, so that searching processes read
    their copies again (``_Cache``)."""
    if conn.execute(f"DELETE FROM embeddings{where}", args).rowcount:
        conn.execute(f"INSERT INTO id_counters VALUES ('{_DELETIONS}', 1) "
                     "ON CONFLICT (kind) DO UPDATE SET n = id_counters.n + 1")  # fmt: skip


#: the count of deletions of vectors, in ``id_counters``
_DELETIONS = "vectors deleted"
#: vectors read in one query (an index range on seq, whatever the planner thinks of the table)
_READ = 5000


class _Cache:
    """A searching process's copy of the stored vectors (one model and dimension), in ``seq``
    order, brought up to date before each search: the vectors written since are read (an index
    range on ``seq``), all of them again after a deletion (``forget_vectors`` counts them).
    Reading 100,000 vectors for each search took ~100x longer than comparing them
    (``bench/vectors.py``); the copy costs the process ``4 x dimensions`` bytes a message (100 MB
    for 100,000 messages of 256 dimensions)."""

    def __init__(self, model: str, dimensions: int):
        import numpy as np

        self.shape = (model, dimensions)
        self.matrix = np.zeros((0, dimensions), dtype=np.float32)
        self.seqs = np.zeros(0, dtype=np.int64)
        self.ids: list[str] = []
        self._deletions = -1

    def refresh(self, conn: Conn) -> None:
        import numpy as np

        row = conn.execute("SELECT n FROM id_counters WHERE kind = ?", (_DELETIONS,)).fetchone()
        deletions = int(row[0]) if row else 0
        after = int(self.seqs[-1]) if self.seqs.size and deletions == self._deletions else 0
        self._deletions = deletions
        rows: list[Any] = []
        while True:  # by seq alone; the model is checked here (another's: a reindex meanwhile)
            found = conn.execute(
                "SELECT seq, message_id, vector, model, dimensions FROM embeddings WHERE seq > ? ORDER BY seq LIMIT ?",
                (int(rows[-1][0]) if rows else after, _READ),
            ).fetchall()
            rows += found
            if len(found) < _READ:
                break
        rows = [r for r in rows if (r[3], r[4]) == self.shape]
        if after and not rows:
            return
        vectors = b"".join(bytes(r[2]) for r in rows)
        matrix = np.frombuffer(vectors, dtype="<f4").reshape(len(rows), self.shape[1])
        seqs = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        ids = [str(r[1]) for r in rows]
        if after:
            self.matrix, self.seqs = np.vstack([self.matrix, matrix]), np.concatenate([self.seqs, seqs])
            self.ids += ids
        else:
            self.matrix, self.seqs, self.ids = matrix, seqs, ids


class _Indexer:
    """The background thread that embeds final messages of one store: the feed tells it which (it
    never runs on the feed's thread), and it first embeds the messages stored without a vector.
    A failing embedder (the network) is retried with backoff, and what it missed is found again by
    the next pass over the messages without a vector; a mismatch stops it (the next search says so)."""

    def __init__(self, store: Vectors, embedder: Embedder):
        self._store = store
        self._embedder = embedder
        self._ids: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._subscription: Subscription | None = store.subscribe(self._on_event)  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._run, name="threadwidget-embed", daemon=True)
        self._thread.start()

    def _on_event(self, event: Event) -> None:
        row = event.row
        if isinstance(row, Message) and row.role in ("user", "assistant") and row.is_final:
            with self._lock:
                self._ids.add(row.id)
            self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._subscription is not None:
            self._subscription.close()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        backoff, sweep = 1.0, True  # first: the messages stored without a vector
        while not self._stopping.is_set():
            try:
                if sweep:
                    self._store._embed_missing(self._embedder)
                    sweep = False
                self._embed_new()
                backoff = 1.0
            except EmbeddingMismatchError as exc:
                log.error("threadwidget stopped embedding messages: %s", exc)
                self._store._vector_problem = exc
                return
            except StoreClosedError:
                return
            except Exception as exc:  # the embedder (the network, or its own bug) or the store: try again later
                log.warning("threadwidget could not embed messages (retrying in %.0f s): %s", backoff, exc,
                            exc_info=not isinstance(exc, ThreadwidgetError))  # fmt: skip
                self._stopping.wait(backoff)
                backoff, sweep = min(backoff * 2, 60.0), True
                continue
            self._wake.wait()
            with self._lock:
                full = len(self._ids) >= BATCH
            if not full:  # let a few more messages come, to embed and write them together
                self._stopping.wait(LINGER)
            self._wake.clear()

    def _embed_new(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                ids, self._ids = list(self._ids)[:BATCH], set(list(self._ids)[BATCH:])
            if not ids:
                return
            marks = ",".join("?" * len(ids))
            rows = (
                self._store._conn()
                .execute(
                    f"SELECT m.id, m.thread_id, m.text FROM messages m WHERE m.id IN ({marks}) AND {_EMBEDDABLE} "
                    "AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.message_id = m.id)",
                    ids,
                )
                .fetchall()
            )
            if rows:
                matrix = self._store._embed(self._embedder, [str(r[2]) for r in rows])
                self._store._save_vectors(self._embedder.model, [(str(r[0]), str(r[1])) for r in rows], matrix)
