"""Benchmark of search by meaning: vector and hybrid search latency on a large store, against text
search on the same store in the same run, and what a store's background embedding costs writes.

Measures, in one run on this machine:
  * on a store of ``--messages`` (100,000) messages (``search.py``'s texts), each with a vector of
    ``--dimensions`` (256) dimensions: p50 / p90 of ``store.search`` in ``text`` mode (the
    baseline), ``vector`` and ``hybrid`` mode, over all threads and one user's threads. The embedder
    is in the process (a random unit vector per query), so the figures hold no model's latency: with
    a hosted model, add its round trip (~100-300 ms) to each vector or hybrid search;
  * ``add_message`` throughput (each its own transaction) with the store embedding every message in
    its background thread (an in-process embedder of ``--dimensions``), against the same store
    without an embedder, interleaved rounds in the same run: the cost of the embedding to writers.
Prints figures; ``--json`` prints one JSON object instead.

    .venv/bin/python bench/vectors.py [--json] [--messages 100000] [--dimensions 256] [--postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import threadwidget as tw

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
from search import Texts, fill, pct  # noqa: E402


class RandomEmbedder:
    """Unit vectors from a seeded generator: an embedder with no model behind it."""

    model = "bench-random"

    def __init__(self, dimensions: int, seed: int = 3):
        self.dimensions = dimensions
        self.rng = np.random.default_rng(seed)
        self.calls = 0

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return self.rng.standard_normal((len(texts), self.dimensions), dtype=np.float32).tolist()


def add_vectors(location: Any, dimensions: int) -> float:
    """A vector for every message, written as the store writes them (``_save_vectors``, 1,000 a batch)."""
    embedder = RandomEmbedder(dimensions)
    t0 = time.perf_counter()
    with tw.Store(location) as s:
        after = ""
        while batch := s._unembedded(after=after, limit=1000):
            matrix = s._embed(embedder, [text for _, _, text in batch])
            s._save_vectors(embedder.model, [(mid, tid) for mid, tid, _ in batch], matrix)
            after = batch[-1][0]
    return time.perf_counter() - t0


def latency(store: tw.Store, texts: Texts, made: list[Any], dimensions: int, count: int = 60) -> dict[str, Any]:
    embedder = RandomEmbedder(dimensions, seed=11)
    rng = random.Random(5)
    queries = [" ".join(rng.choice(texts.words[50:2000]) for _ in range(3)) for _ in range(count)]
    out: dict[str, Any] = {}
    for scope, filters in (("all threads", {}), ("one user", {"user_id": "user3"})):
        for mode in ("text", "vector", "hybrid"):
            times = []
            for q in queries:
                t0 = time.perf_counter()
                store.search(q.replace(" ", " OR "), mode=mode, embedder=embedder if mode != "text" else None,
                             limit=20, **filters)  # fmt: skip
                times.append((time.perf_counter() - t0) * 1000)
            out[f"{mode}, {scope}"] = {"p50_ms": statistics.median(times), "p90_ms": pct(times, 0.9)}
    return out


def writes(location: Any, count: int, texts: list[str], embedder: Any, feed: bool = False) -> tuple[float, float]:
    """add_message calls per second, and seconds until the last one has its vector (0: no embedder).
    ``feed``: with a subscriber that does nothing (the feed an embedder's indexer also runs)."""
    with tw.Store(location, embedder=embedder) as s:
        if feed:
            s.subscribe(lambda event: None)
        thread = s.create_thread()
        t0 = time.perf_counter()
        for text in texts:
            s.add_message(thread.id, role="user", text=text)
        rate = count / (time.perf_counter() - t0)
        caught_up = 0.0
        if embedder is not None:
            deadline = time.monotonic() + 120
            while s._conn().execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] < count:
                if time.monotonic() > deadline:
                    raise SystemExit("the background embedding did not catch up within 120 s")
                time.sleep(0.01)  # polling for a figure, not synchronisation of a test
            caught_up = time.perf_counter() - t0
    return rate, caught_up


def throughput(new_location: Any, dimensions: int, count: int, rounds: int) -> dict[str, Any]:
    texts = Texts(seed=9)
    sample = [texts.text() for _ in range(count)]
    rates: dict[str, list[float]] = {"no embedder": [], "no embedder, the feed running": [],
                                     "embedding in the background": []}  # fmt: skip
    caught: list[float] = []
    for _ in range(rounds):
        rates["no embedder"].append(writes(new_location(), count, sample, None)[0])
        rates["no embedder, the feed running"].append(writes(new_location(), count, sample, None, feed=True)[0])
        rate, took = writes(new_location(), count, sample, RandomEmbedder(dimensions))
        rates["embedding in the background"].append(rate)
        caught.append(took)
    base = statistics.median(rates["no embedder, the feed running"])
    with_embedder = statistics.median(rates["embedding in the background"])
    return {"per_s": {k: statistics.median(v) for k, v in rates.items()}, "cost": 1 - with_embedder / base,
            "all_embedded_after_s": statistics.median(caught), "writes": count}  # fmt: skip


def run(new_location: Any, args: argparse.Namespace, backend: str) -> dict[str, Any]:
    rates = throughput(new_location, args.dimensions, args.writes, args.rounds)
    texts = Texts()
    big = new_location()
    made = fill(big, args.messages, texts)
    embedded = add_vectors(big, args.dimensions)
    with tw.Store(big) as s:
        result = latency(s, texts, made, args.dimensions)
    return {"backend": backend, "messages": args.messages, "dimensions": args.dimensions, "vectors_written_s": embedded,
            "search": result, "add_message": rates}  # fmt: skip


def report(r: dict[str, Any]) -> None:
    print(f"{r['backend']}: {r['messages']:,} messages, {r['dimensions']} dimensions "
          f"(vectors written in {r['vectors_written_s']:.0f} s)")  # fmt: skip
    print("  search (in-process embedder)        p50 ms   p90 ms   p50 / text's")
    for scope in ("all threads", "one user"):
        base = r["search"][f"text, {scope}"]["p50_ms"]
        for mode in ("text", "vector", "hybrid"):
            x = r["search"][f"{mode}, {scope}"]
            print(f"  {mode + ', ' + scope:<34} {x['p50_ms']:7.2f}  {x['p90_ms']:7.2f}   x{x['p50_ms'] / base:5.1f}")
    a = r["add_message"]
    print(f"  add_message, {a['writes']} writes a round (median of interleaved rounds)")
    for name, rate in a["per_s"].items():
        print(f"    {name:<30} {rate:7,.0f}/s")
    print(f"    cost of embedding in the background (against the feed running): {100 * a['cost']:.1f} % "
          f"(every vector written {a['all_embedded_after_s']:.1f} s after the first write)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--messages", type=int, default=100_000, help="messages (and vectors) in the searched store")
    ap.add_argument("--dimensions", type=int, default=256, help="the vectors' length")
    ap.add_argument("--writes", type=int, default=2000, help="add_message calls per throughput round")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved throughput rounds")
    ap.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL server and measure it")
    args = ap.parse_args()
    if args.postgres:
        sys.path.insert(0, str(HERE.parent.parent / "tests"))
        from pg_server import PostgresServer

        server = PostgresServer()
        try:
            url = server.url
            result = run(lambda: f"{url}?schema=bench_{os.getpid()}_{random.randrange(1 << 30)}", args, "postgresql")
        finally:
            server.close()
    else:
        with tempfile.TemporaryDirectory() as d:
            counter = iter(range(10_000))
            result = run(lambda: Path(d) / f"s{next(counter)}.db", args, "sqlite")
    if args.json:
        print(json.dumps(result))
    else:
        report(result)


if __name__ == "__main__":
    main()
