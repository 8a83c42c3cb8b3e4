"""Benchmark of full-text search: query latency on a large store, and what the index costs writes.

Measures, in one run on this machine:
  * search latency on a store of ``--messages`` (100,000) messages in 1,000 threads of 10 users,
    texts of 8-60 words drawn from a Zipf-distributed vocabulary of 20,000 words: p50 / p90 per kind
    of query (a rare word, a word in ~1 % of messages, one in ~10 %, two words, a phrase, a prefix,
    one user's threads, one thread), and p50 over all of them;
  * add_message throughput (each its own transaction, texts as above) with the index and without it
    (the same store with the index's triggers dropped), interleaved rounds in the same run, and the
    cost (of the medians, and the median of each round against the round without the index); on
    SQLite also the CPU time per call, the pages each commit writes to the WAL, and the design not
    used (an FTS5 insert in each write; ``--variants``: with the FTS5 options weighed, ``detail``,
    ``columnsize``).
Prints figures; ``--json`` prints one JSON object instead.

    .venv/bin/python bench/search.py [--json] [--messages 100000] [--writes-only] [--db URL | --postgres]
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

import threadwidget as tw

HERE = Path(__file__).resolve()
VOCABULARY = 20_000


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def vocabulary(rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    seen: set[str] = set()
    while len(seen) < VOCABULARY:
        seen.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 10))))
    return sorted(seen)


class Texts:
    """Message texts: words drawn with Zipf weights (s = 1), so a few words are everywhere."""

    def __init__(self, seed: int = 7):
        self.rng = random.Random(seed)
        self.words = vocabulary(self.rng)
        self.weights = [1 / (rank + 1) for rank in range(VOCABULARY)]
        self.cum = list(_accumulate(self.weights))

    def text(self) -> str:
        n = self.rng.randint(8, 60)
        chosen = self.rng.choices(self.words, cum_weights=self.cum, k=n)
        return " ".join(chosen).capitalize() + "."


def _accumulate(values: list[float]) -> Any:
    total = 0.0
    for v in values:
        total += v
        yield total


def fill(location: str | Path, count: int, texts: Texts, *, threads: int = 1000, users: int = 10) -> list[Any]:
    """``count`` messages in ``threads`` threads through the store's write path (triggers and all),
    1,000 messages to a transaction."""
    with tw.Store(location) as s:
        made = [s.create_thread(title=f"thread {i}", user_id=f"user{i % users}") for i in range(threads)]
        done = 0
        while done < count:
            batch = min(1000, count - done)

            def write(conn: Any, now: float, batch: int = batch, done: int = done) -> None:
                for i in range(batch):
                    t = made[(done + i) % threads]
                    s._insert_message(conn, now, s._new_id(conn, "msg"), t.id, "user" if i % 2 else "assistant",
                                      texts.text(), "success", None, None, 0, None)  # fmt: skip

            s._write(write)
            done += batch
        return made


def document_frequency(store: tw.Store, word: str) -> int:
    return len(store.search(word, limit=1_000_000))


def queries(texts: Texts, made: list[Any], store: tw.Store, count: int) -> dict[str, list[str]]:
    """Queries of each kind, their words picked by how many messages hold them."""
    words = texts.words  # by Zipf rank: words[0] is the most frequent

    def near(share: float, n: int) -> list[str]:
        # a word's share of messages ~ 1 - (1 - p)^34 with p its Zipf probability; search for the rank
        total = texts.cum[-1]
        picked = []
        for rank in range(VOCABULARY):
            p = 1 - (1 - texts.weights[rank] / total) ** 34
            if p <= share:
                picked = words[rank : rank + n]
                break
        return picked

    rare, one_percent, ten_percent = near(0.0002, 20), near(0.01, 20), near(0.10, 20)
    rng = random.Random(3)
    phrases = []
    with tw.Store(store.path) as s:
        some = [m for t in made[:40] for m in s.list_messages(t.id, limit=20)]
        for m in rng.sample(some, 20):
            ws = m.text.rstrip(".").lower().split()
            i = rng.randrange(len(ws) - 1)
            phrases.append(f'"{ws[i]} {ws[i + 1]}"')
    return {
        "rare word": rare,
        "word in ~1 %": one_percent,
        "word in ~10 %": ten_percent,
        "two words (1 % and 10 %)": [f"{a} {b}" for a, b in zip(one_percent, ten_percent, strict=True)],
        "phrase": phrases,
        "prefix (4 letters)*": [w[:4] + "*" for w in one_percent],
        # what tw.Context searches for a prompt: any of its words
        "any of 8 words (a prompt)": [
            " OR ".join([*rare[i : i + 4], *one_percent[i : i + 2], *ten_percent[i : i + 2]]) for i in range(0, 20, 1)
        ],
        "one user, word in ~1 %": [f"user:{w}" for w in one_percent],
        "one thread, word in ~10 %": [f"thread:{w}" for w in ten_percent],
    }


def search_latency(store: tw.Store, kinds: dict[str, list[str]], made: list[Any], rounds: int = 3) -> dict[str, Any]:
    out: dict[str, Any] = {}
    every: list[float] = []
    for kind, qs in kinds.items():
        times: list[float] = []
        hits: list[int] = []
        for _ in range(rounds):
            for given in qs:
                q, kwargs = given, {}
                if given.startswith("user:"):
                    q, kwargs = given[5:], {"user_id": "user3"}
                elif given.startswith("thread:"):
                    q, kwargs = given[7:], {"thread_id": made[5].id}
                t0 = time.perf_counter()
                found = store.search(q, **kwargs)
                times.append((time.perf_counter() - t0) * 1000)
                hits.append(len(found))
        matching = [document_frequency(store, q) for q in qs[:3]] if ":" not in qs[0] else []
        out[kind] = {
            "p50_ms": statistics.median(times),
            "p90_ms": pct(times, 0.9),
            "example": qs[0],
            "matching_messages": int(statistics.median(matching)) if matching else None,
        }
        every += times
    out["all"] = {"p50_ms": statistics.median(every), "p90_ms": pct(every, 0.9), "queries": len(every)}
    return out


# -- the index on and off -------------------------------------------------------------------------


def sqlite_index(path: Path, variant: str) -> None:
    """Leave the store's index as the migration made it (``pending``), drop it (``none``: no index,
    no triggers), or index each message in the transaction that writes it (``direct``: FTS5 inserts
    in the triggers, no pending list), with FTS5 options after ``direct:``."""
    import sqlite3

    if variant == "pending":
        return
    conn = sqlite3.connect(path, isolation_level=None)
    for name in ("insert", "update", "delete", "batch"):
        conn.execute(f"DROP TRIGGER messages_fts_{name}")
    conn.execute("DROP TABLE messages_fts")
    conn.execute("DROP TABLE messages_fts_pending")
    if variant.startswith("direct:"):
        options = variant.removeprefix("direct:")
        conn.execute(
            "CREATE VIRTUAL TABLE messages_fts USING fts5(text, content = 'messages', content_rowid = 'rowid', "
            f"{options})"
        )
        conn.execute(
            "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN new.text != '' BEGIN "
            "INSERT INTO messages_fts (rowid, text) VALUES (new.rowid, new.text); END"
        )
    conn.close()


def pg_drop_index(url: str) -> None:
    with tw.Store(url) as s:
        s._write(lambda conn, now: conn.execute("DROP TRIGGER messages_search ON messages"))


def writes(location: str | Path, count: int, texts: list[str]) -> tuple[float, float, float | None]:
    """add_message calls per second (each its own transaction) into one thread, the CPU time of
    this process per call (user + system: what other load on the machine does not change); on
    SQLite also the pages each commit wrote to the WAL (not checkpointed meanwhile)."""
    with tw.Store(location) as s:
        t = s.create_thread()
        conn = s._conn()
        if isinstance(location, Path):
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(count):
            s.add_message(t.id, role="user", text=texts[i % len(texts)])
        rate = count / (time.perf_counter() - t0)
        cpu_us = (time.process_time() - c0) / count * 1e6
        if not isinstance(location, Path):
            return rate, cpu_us, None
        pages = (Path(f"{location}-wal").stat().st_size - 32) / (4096 + 24) / count
        conn.execute("PRAGMA wal_autocheckpoint = 1000")
        return rate, cpu_us, pages


def throughput(new_location: Any, variants: dict[str, Any], prepare: Any, count: int, rounds: int) -> dict[str, Any]:
    gen = Texts(seed=11)
    sample = [gen.text() for _ in range(2000)]
    rates: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    pages: dict[str, float | None] = {}
    for _ in range(rounds):
        for name, variant in variants.items():  # interleaved: drift of the machine hits all alike
            loc = new_location()
            tw.Store(loc).close()
            prepare(loc, variant)
            rate, cpu_us, pages[name] = writes(loc, count, sample)
            rates[name].append(rate)
            cpu[name].append(cpu_us)
    base = rates[next(iter(variants))]
    return {name: {"per_s": statistics.median(r), "rounds": r, "cpu_us_per_call": statistics.median(cpu[name]),
                   "wal_pages_per_commit": pages[name],
                   # each round against the no-index store written just before it: drift cancels out
                   "paired_cost": statistics.median(1 - x / b for x, b in zip(r, base, strict=True))}
            for name, r in rates.items()}  # fmt: skip


SQLITE_VARIANTS = {
    "no index": "none",
    "pending list, batch 128 (used)": "pending",
    "FTS5 insert in each write": "direct:detail = full",
    "... columnsize=0": "direct:detail = full, columnsize = 0",
    "... detail=column": "direct:detail = column",
    "... detail=none": "direct:detail = none",
}


def main_sqlite(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        counter = iter(range(10_000))
        variants = SQLITE_VARIANTS if args.variants else {k: SQLITE_VARIANTS[k] for k in list(SQLITE_VARIANTS)[:3]}
        rates = throughput(lambda: tmp / f"w{next(counter)}.db", variants, sqlite_index, args.writes, args.rounds)
        if args.writes_only:
            return {"backend": "sqlite", "add_message_per_s": rates}
        texts = Texts()
        t0 = time.perf_counter()
        made = fill(tmp / "big.db", args.messages, texts)
        filled = time.perf_counter() - t0
        with tw.Store(tmp / "big.db") as s:
            latency = search_latency(s, queries(texts, made, s, args.messages), made)
        size = (tmp / "big.db").stat().st_size
    return {"backend": "sqlite", "messages": args.messages, "fill_s": filled, "file_mb": size / 1e6,
            "search": latency, "add_message_per_s": rates}  # fmt: skip


def main_postgres(url: str, args: argparse.Namespace) -> dict[str, Any]:
    def new_schema() -> str:
        return f"{url}{'&' if '?' in url else '?'}schema=bench_{os.getpid()}_{random.randrange(1 << 30)}"

    prepare = lambda loc, on: None if on else pg_drop_index(loc)  # noqa: E731
    variants = {"no index": False, "tsvector + GIN (used)": True}
    rates = throughput(new_schema, variants, prepare, args.writes // 2, args.rounds)
    if args.writes_only:
        return {"backend": "postgresql", "add_message_per_s": rates}
    texts = Texts()
    big = new_schema()
    t0 = time.perf_counter()
    made = fill(big, args.messages, texts)
    filled = time.perf_counter() - t0
    with tw.Store(big) as s:
        s._write(lambda conn, now: conn.execute("ANALYZE"))
        latency = search_latency(s, queries(texts, made, s, args.messages), made)
    return {"backend": "postgresql", "messages": args.messages, "fill_s": filled, "search": latency,
            "add_message_per_s": rates}  # fmt: skip


def report(result: dict[str, Any]) -> None:
    print(result["backend"])
    if "search" in result:
        size = f", {result['file_mb']:.0f} MB" if "file_mb" in result else ""
        print(f"  {result['messages']:,} messages (filled in {result['fill_s']:.0f} s{size})")
        print("  search                          p50 ms   p90 ms   matching messages   e.g.")
        for kind, r in result["search"].items():
            if kind != "all":
                matching = "" if r["matching_messages"] is None else f"{r['matching_messages']:,}"
                print(f"  {kind:<30} {r['p50_ms']:7.2f}  {r['p90_ms']:7.2f}   {matching:>17}   {r['example']}")
        a = result["search"]["all"]
        print(f"  {'all ' + str(a['queries']) + ' queries':<30} {a['p50_ms']:7.2f}  {a['p90_ms']:7.2f}")
    rates = result["add_message_per_s"]
    base, base_cpu = rates["no index"]["per_s"], rates["no index"]["cpu_us_per_call"]
    print("  add_message, one transaction each (median of interleaved rounds)   cost: throughput, paired, CPU")
    for name, r in rates.items():
        cost = (
            ""
            if name == "no index"
            else (
                f"  {100 * (1 - r['per_s'] / base):5.1f} %  {100 * r['paired_cost']:5.1f} %"
                f"  {100 * (r['cpu_us_per_call'] / base_cpu - 1):5.1f} %"
            )
        )
        pages = "" if r["wal_pages_per_commit"] is None else f"  {r['wal_pages_per_commit']:5.2f} WAL pages"
        print(f"    {name:<32} {r['per_s']:7,.0f}/s  {r['cpu_us_per_call']:5.0f} µs CPU{pages}{cost}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--messages", type=int, default=100_000, help="messages in the searched store")
    ap.add_argument("--writes", type=int, default=3000, help="add_message calls per throughput round")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved throughput rounds")
    ap.add_argument("--variants", action="store_true", help="SQLite: also the FTS5 options not used")
    ap.add_argument("--writes-only", action="store_true", help="only the add_message throughput")
    ap.add_argument("--db", help="a postgresql:// URL: measure a PostgreSQL store instead")
    ap.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL server and measure it")
    args = ap.parse_args()
    if args.postgres:
        sys.path.insert(0, str(HERE.parent.parent / "tests"))
        from pg_server import PostgresServer

        server = PostgresServer()
        try:
            result = main_postgres(server.url, args)
        finally:
            server.close()
    elif args.db:
        result = main_postgres(args.db, args)
    else:
        result = main_sqlite(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result)


if __name__ == "__main__":
    main()
