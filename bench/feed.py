"""Benchmark of the thread store and its cross-process change feed.

Measures, in one run on this machine:
  * feed latency: commit in one of 3 writer processes -> callback in a watcher process (p50/p99),
    with lost / duplicated / reordered counts;
  * the floor: a bare sqlite3 commit, then a one-byte write to a bell file, seen by a process blocked on
    inotify of the bell (a WAL write event comes before the commit is visible, so it cannot be the bell);
  * single-process write throughput (messages/s, each its own transaction);
  * the CPU an idle watching process uses.
Prints figures and ratios against the floor; ``--json`` prints one JSON object instead.

With ``--db postgresql://…`` (or ``--postgres``: a throwaway server started as in the tests) the same
figures for a PostgreSQL store, against a bare LISTEN/NOTIFY floor measured in the same run, plus
8 writer processes x 1,000 messages: throughput, worst call, lost, errors.

    .venv/bin/python bench/feed.py [--json] [--messages 600] [--db URL | --postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import threadwidget as tw

HERE = Path(__file__).resolve()


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


# -- roles run in child processes ------------------------------------------------------------


def role_writer(db: str, thread_id: str, count: int, tag: str, paced: bool = True) -> None:
    store = tw.Store(db)
    print("ready", flush=True)
    sys.stdin.readline()
    rng = random.Random(tag)
    worst, errors, t0 = 0.0, 0, time.perf_counter()
    committed: dict[str, float] = {}  # text -> when add_message returned (its commit acknowledged)
    for i in range(count):
        c0 = time.perf_counter()
        try:
            store.add_message(thread_id, role="user", text=f"{tag}:{i}")
            committed[f"{tag}:{i}"] = time.time()
        except tw.StoreError as exc:
            errors += 1
            print(f"error {exc}", file=sys.stderr, flush=True)
        worst = max(worst, time.perf_counter() - c0)
        if paced:
            time.sleep(rng.uniform(0.001, 0.004))  # pacing: a realistic stream, not a flood
    report = {"worst_ms": worst * 1000, "errors": errors, "seconds": time.perf_counter() - t0, "committed": committed}
    print(json.dumps(report), flush=True)
    store.close()


def role_watcher(db: str, expected: int, out: str) -> None:
    store = tw.Store(db)
    got: list[tuple[int, str, float, float]] = []
    done = threading.Event()

    def on_event(event: tw.Event) -> None:
        if event.kind == "message" and isinstance(event.row, tw.Message):
            now = time.time()
            got.append((event.seq, event.row.text, now - event.row.created_at, now))
            if len(got) >= expected:
                done.set()

    store.subscribe(on_event)
    print("ready", flush=True)
    done.wait(120)
    Path(out).write_text(json.dumps(got))
    store.close()


def role_pg_floor_listener(url: str, expected: int, out: str) -> None:
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    conn.execute("LISTEN floor")
    lat: list[float] = []
    print("ready", flush=True)
    for note in conn.notifies():
        lat.append(time.time() - float(note.payload))
        if len(lat) >= expected:
            break
    Path(out).write_text(json.dumps(lat))


def role_idle(db: str, seconds: float, mode: str) -> None:
    store = tw.Store(db, watch=mode)
    store.subscribe(lambda e: None)
    time.sleep(0.5)  # let the watcher settle before measuring
    c0, t0 = time.process_time(), time.monotonic()
    time.sleep(seconds)  # idle on purpose: this is what is measured
    cpu = (time.process_time() - c0) / (time.monotonic() - t0)
    print(json.dumps({"cpu": cpu, "mode": store.feed_mode}), flush=True)
    store.close()


def role_floor_watcher(db: str, expected: int, out: str) -> None:
    import inotify_simple

    conn = sqlite3.connect(db, isolation_level=None)
    ino = inotify_simple.INotify()
    ino.add_watch(os.path.dirname(db), inotify_simple.flags.MODIFY)
    bell = os.path.basename(db) + "-bell"
    last, lat = 0, []
    print("ready", flush=True)
    while len(lat) < expected:
        events = ino.read(timeout=1000)
        if not any(e.name == bell for e in events):
            continue
        now = time.time()
        for rid, t in conn.execute("SELECT id, t FROM x WHERE id > ? ORDER BY id", (last,)):
            lat.append(now - t)
            last = rid
    Path(out).write_text(json.dumps(lat))


# -- the parent ------------------------------------------------------------------------------


def spawn(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(HERE.parent.parent))
    p = subprocess.Popen([sys.executable, str(HERE), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, env=env)  # fmt: skip
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "ready"
    return p


def go(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()


def feed_latency(db: str, tmp: Path, per_writer: int) -> dict[str, float]:
    """3 paced writer processes, a watcher process: latency from each message's transaction start
    (its ``created_at``) and from its commit (when ``add_message`` returned) to the callback."""
    with tw.Store(db) as s:
        thread_id = s.create_thread().id
    out = tmp / "watched.json"
    watcher = spawn("watcher", db, str(3 * per_writer), str(out))
    writers = [spawn("writer", db, thread_id, str(per_writer), f"w{k}") for k in range(3)]
    go(writers)
    committed: dict[str, float] = {}
    for w in writers:
        assert w.stdout is not None
        committed.update(json.loads(w.stdout.readline())["committed"])
        w.wait(120)
    watcher.wait(120)
    got = json.loads(out.read_text())
    texts = [t for _, t, _, _ in got]
    seqs = [s for s, _, _, _ in got]
    reordered = sum(
        1 for k in range(3)
        if [int(t.split(":")[1]) for t in texts if t.startswith(f"w{k}:")] != list(range(per_writer))
    )  # fmt: skip
    lat_ms = [lat * 1000 for _, _, lat, _ in got]
    from_commit_ms = [(at - committed[t]) * 1000 for _, t, _, at in got if t in committed]
    return {
        "p50_ms": statistics.median(lat_ms),
        "p99_ms": pct(lat_ms, 0.99),
        "max_ms": max(lat_ms),
        "from_commit_p50_ms": statistics.median(from_commit_ms),
        "from_commit_p99_ms": pct(from_commit_ms, 0.99),
        "events": len(got),
        "lost": 3 * per_writer - len(set(texts)),
        "duplicated": len(texts) - len(set(texts)),
        "out_of_order": int(seqs != sorted(seqs)) + reordered,
    }


def floor_latency(tmp: Path, count: int) -> dict[str, float]:
    db = tmp / "floor.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE x (id INTEGER PRIMARY KEY, t REAL)")
    out = tmp / "floor.json"
    bell = os.open(f"{db}-bell", os.O_CREAT | os.O_WRONLY, 0o644)
    watcher = spawn("floor-watcher", str(db), str(count), str(out))
    for _ in range(count):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO x (t) VALUES (?)", (time.time(),))
        conn.execute("COMMIT")
        os.pwrite(bell, b"\0", 0)  # after the commit, as the store rings: a WAL write event comes before
        time.sleep(random.uniform(0.001, 0.004))  # the commit is visible, and a watcher woken then may miss it
    watcher.wait(60)
    os.close(bell)
    lat_ms = [v * 1000 for v in json.loads(out.read_text())]
    return {"p50_ms": statistics.median(lat_ms), "p99_ms": pct(lat_ms, 0.99)}


def store_writes(location: Path | str, count: int) -> tuple[float, float]:
    """Seconds for ``count`` add_message calls, and for ``count`` append_delta calls."""
    with tw.Store(location) as s:
        t = s.create_thread()
        t0 = time.perf_counter()
        for i in range(count):
            s.add_message(t.id, role="user", text=f"message {i}")
        elapsed = time.perf_counter() - t0
        m = s.start_run(t.id)
        t0 = time.perf_counter()
        for i in range(count):
            s.append_delta(m.id, f"tok{i} ")
        return elapsed, time.perf_counter() - t0


def throughput(tmp: Path, count: int) -> dict[str, float]:
    elapsed, delta_elapsed = store_writes(tmp / "throughput.db", count)
    conn = sqlite3.connect(tmp / "bare.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE x (id INTEGER PRIMARY KEY, text TEXT)")
    t0 = time.perf_counter()
    for i in range(count):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO x (text) VALUES (?)", (f"message {i}",))
        conn.execute("COMMIT")
    bare = time.perf_counter() - t0
    return {
        "messages_per_s": count / elapsed,
        "deltas_per_s": count / delta_elapsed,
        "bare_commits_per_s": count / bare,
    }


def idle_cpu(tmp: Path, seconds: float, mode: str) -> dict[str, float | str]:
    db = tmp / f"idle-{mode}.db"
    tw.Store(db, watch=mode).close()
    env = dict(os.environ, PYTHONPATH=str(HERE.parent.parent))
    cmd = [sys.executable, str(HERE), "idle", str(db), str(seconds), mode]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- PostgreSQL ------------------------------------------------------------------------------------


def new_schema(url: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema=bench_{os.getpid()}_{random.randrange(1 << 30)}"


def pg_floor_latency(url: str, tmp: Path, count: int) -> dict[str, float]:
    import psycopg

    out = tmp / "pg-floor.json"
    listener = spawn("pg-floor-listener", url, str(count), str(out))
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(count):
            conn.execute("SELECT pg_notify('floor', %s)", (repr(time.time()),))
            time.sleep(random.uniform(0.001, 0.004))
    listener.wait(60)
    lat_ms = [v * 1000 for v in json.loads(out.read_text())]
    return {"p50_ms": statistics.median(lat_ms), "p99_ms": pct(lat_ms, 0.99)}


def pg_throughput(url: str, count: int) -> dict[str, float]:
    import psycopg

    elapsed, delta_elapsed = store_writes(new_schema(url), count)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE x (id bigserial PRIMARY KEY, text text)")
        t0 = time.perf_counter()
        for i in range(count):
            conn.execute("INSERT INTO x (text) VALUES (%s)", (f"message {i}",))
        bare = time.perf_counter() - t0
    return {
        "messages_per_s": count / elapsed,
        "deltas_per_s": count / delta_elapsed,
        "bare_commits_per_s": count / bare,
    }


def pg_eight_writers(url: str, per_writer: int) -> dict[str, float]:
    db = new_schema(url)
    with tw.Store(db) as s:
        thread_id = s.create_thread().id
    writers = [spawn("writer", db, thread_id, str(per_writer), f"w{k}", "flood") for k in range(8)]
    t0 = time.perf_counter()
    go(writers)
    reports = []
    for w in writers:
        assert w.stdout is not None
        reports.append(json.loads(w.stdout.readline()))
        w.wait(120)
    elapsed = time.perf_counter() - t0
    with tw.Store(db) as s:
        texts = [m.text for m in s.list_messages(thread_id, limit=10 * 8 * per_writer)]
    return {
        "messages_per_s": 8 * per_writer / elapsed,
        "worst_call_ms": max(r["worst_ms"] for r in reports),
        "errors": sum(r["errors"] for r in reports),
        "lost": 8 * per_writer - len(set(texts)),
        "duplicated": len(texts) - len(set(texts)),
    }


def pg_idle_cpu(url: str, seconds: float) -> dict[str, float | str]:
    db = new_schema(url)
    tw.Store(db).close()
    env = dict(os.environ, PYTHONPATH=str(HERE.parent.parent))
    cmd = [sys.executable, str(HERE), "idle", db, str(seconds), "auto"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(result: dict[str, Any], as_json: bool, *, backend: str, floor: str, bare: str) -> bool:
    """Add the ratios; print the result as JSON (then True) or print the common part as text."""
    f, fl, th = result["feed"], result["floor"], result["throughput"]
    r = result["ratios"] = {
        "feed_p50_vs_floor": f["p50_ms"] / fl["p50_ms"],
        "feed_p99_vs_floor": f["p99_ms"] / fl["p99_ms"],
        "messages_vs_bare_commits": th["messages_per_s"] / th["bare_commits_per_s"],
    }
    if as_json:
        print(json.dumps(result, indent=2))
        return True
    print(f"{backend}feed, 3 writer processes -> watcher process ({f['events']} events)")
    print(f"  p50 {f['p50_ms']:.3f} ms   p99 {f['p99_ms']:.3f} ms   max {f['max_ms']:.3f} ms   (from its start)")
    print(f"  p50 {f['from_commit_p50_ms']:.3f} ms   p99 {f['from_commit_p99_ms']:.3f} ms   (from the commit)")
    print(f"  lost {f['lost']}   duplicated {f['duplicated']}   out of order {f['out_of_order']}")
    print(f"floor: {floor}")
    print(f"  p50 {fl['p50_ms']:.3f} ms   p99 {fl['p99_ms']:.3f} ms")
    print(f"  feed/floor: p50 x{r['feed_p50_vs_floor']:.2f}   p99 x{r['feed_p99_vs_floor']:.2f}")
    print("write throughput, one process, one transaction each")
    print(f"  add_message {th['messages_per_s']:,.0f}/s   append_delta {th['deltas_per_s']:,.0f}/s")
    print(f"  {bare} {th['bare_commits_per_s']:,.0f}/s   (x{r['messages_vs_bare_commits']:.2f})")
    return False


def main_postgres(url: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        result: dict[str, Any] = {
            "floor": pg_floor_latency(url, tmp, args.messages),
            "feed": feed_latency(new_schema(url), tmp, args.messages),
            "throughput": pg_throughput(url, args.throughput // 5),
            "eight_writers": pg_eight_writers(url, 1000),
            "idle": pg_idle_cpu(url, args.idle_seconds),
        }
    if report(result, args.json, backend="PostgreSQL ", floor="bare pg_notify -> process blocked on LISTEN",
              bare="bare INSERT (autocommit)"):  # fmt: skip
        return
    e8 = result["eight_writers"]
    print(f"8 writer processes x 1,000 messages, unpaced: {e8['messages_per_s']:,.0f}/s, worst call "
          f"{e8['worst_call_ms']:.1f} ms, errors {e8['errors']}, lost {e8['lost']}, duplicated {e8['duplicated']}")
    print(f"idle watcher ({result['idle']['mode']}): {100 * float(result['idle']['cpu']):.2f} % of a core")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--messages", type=int, default=600, help="messages per writer process")
    ap.add_argument("--throughput", type=int, default=10_000, help="messages in the throughput run")
    ap.add_argument("--idle-seconds", type=float, default=5.0)
    ap.add_argument("--db", help="a postgresql:// URL: measure a PostgreSQL store instead")
    ap.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL server and measure it")
    args = ap.parse_args()
    if args.postgres:
        sys.path.insert(0, str(HERE.parent.parent / "tests"))
        from pg_server import PostgresServer

        server = PostgresServer()
        try:
            main_postgres(server.url, args)
        finally:
            server.close()
        return
    if args.db:
        main_postgres(args.db, args)
        return
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        result = {
            "floor": floor_latency(tmp, args.messages),
            "feed": feed_latency(str(tmp / "feed.db"), tmp, args.messages),
            "throughput": throughput(tmp, args.throughput),
            "idle_inotify": idle_cpu(tmp, args.idle_seconds, "inotify"),
            "idle_poll": idle_cpu(tmp, args.idle_seconds, "poll"),
        }
    if report(result, args.json, backend="", floor="bare sqlite3 commit + bell -> process on inotify of the bell",
              bare="bare sqlite3 commit"):  # fmt: skip
        return
    for key in ("idle_inotify", "idle_poll"):
        i = result[key]
        print(f"idle watcher ({i['mode']}): {100 * float(i['cpu']):.2f} % of a core")


if __name__ == "__main__":
    role, *rest = sys.argv[1:] or [""]
    if role == "writer":
        role_writer(rest[0], rest[1], int(rest[2]), rest[3], paced=rest[4:] != ["flood"])
    elif role == "pg-floor-listener":
        role_pg_floor_listener(rest[0], int(rest[1]), rest[2])
    elif role == "watcher":
        role_watcher(rest[0], int(rest[1]), rest[2])
    elif role == "floor-watcher":
        role_floor_watcher(rest[0], int(rest[1]), rest[2])
    elif role == "idle":
        role_idle(rest[0], float(rest[1]), rest[2])
    else:
        main()
