"""Benchmark of the thread store and its cross-process change feed.

Measures, in one run on this machine:
  * feed latency: commit in one of 3 writer processes -> callback in a watcher process (p50/p99),
    with lost / duplicated / reordered counts;
  * the floor: a bare sqlite3 commit seen by a process blocked on inotify of the WAL file;
  * single-process write throughput (messages/s, each its own transaction);
  * the CPU an idle watching process uses.
Prints figures and ratios against the floor; ``--json`` prints one JSON object instead.

    .venv/bin/python bench/feed.py [--json] [--messages 600]
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

import threadwidget as tw

HERE = Path(__file__).resolve()


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


# -- roles run in child processes ------------------------------------------------------------


def role_writer(db: str, thread_id: str, count: int, tag: str) -> None:
    store = tw.Store(db)
    print("ready", flush=True)
    sys.stdin.readline()
    rng = random.Random(tag)
    for i in range(count):
        store.add_message(thread_id, role="user", text=f"{tag}:{i}")
        time.sleep(rng.uniform(0.001, 0.004))  # pacing: a realistic stream, not a flood
    store.close()


def role_watcher(db: str, expected: int, out: str) -> None:
    store = tw.Store(db)
    got: list[tuple[int, str, float]] = []
    done = threading.Event()

    def on_event(event: tw.Event) -> None:
        if event.kind == "message" and isinstance(event.row, tw.Message):
            got.append((event.seq, event.row.text, time.time() - event.row.created_at))
            if len(got) >= expected:
                done.set()

    store.subscribe(on_event)
    print("ready", flush=True)
    done.wait(120)
    Path(out).write_text(json.dumps(got))
    store.close()


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
    wal = os.path.basename(db) + "-wal"
    last, lat = 0, []
    print("ready", flush=True)
    while len(lat) < expected:
        events = ino.read(timeout=1000)
        if not any(e.name == wal for e in events):
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


def feed_latency(tmp: Path, per_writer: int) -> dict[str, float]:
    db = tmp / "feed.db"
    with tw.Store(db) as s:
        thread_id = s.create_thread().id
    out = tmp / "watched.json"
    watcher = spawn("watcher", str(db), str(3 * per_writer), str(out))
    writers = [spawn("writer", str(db), thread_id, str(per_writer), f"w{k}") for k in range(3)]
    go(writers)
    for w in writers:
        w.wait(120)
    watcher.wait(120)
    got = json.loads(out.read_text())
    texts = [t for _, t, _ in got]
    seqs = [s for s, _, _ in got]
    reordered = sum(
        1 for k in range(3)
        if [int(t.split(":")[1]) for t in texts if t.startswith(f"w{k}:")] != list(range(per_writer))
    )  # fmt: skip
    lat_ms = [lat * 1000 for _, _, lat in got]
    return {
        "p50_ms": statistics.median(lat_ms),
        "p99_ms": pct(lat_ms, 0.99),
        "max_ms": max(lat_ms),
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
    watcher = spawn("floor-watcher", str(db), str(count), str(out))
    for _ in range(count):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO x (t) VALUES (?)", (time.time(),))
        conn.execute("COMMIT")
        time.sleep(random.uniform(0.001, 0.004))
    watcher.wait(60)
    lat_ms = [v * 1000 for v in json.loads(out.read_text())]
    return {"p50_ms": statistics.median(lat_ms), "p99_ms": pct(lat_ms, 0.99)}


def throughput(tmp: Path, count: int) -> dict[str, float]:
    with tw.Store(tmp / "throughput.db") as s:
        t = s.create_thread()
        t0 = time.perf_counter()
        for i in range(count):
            s.add_message(t.id, role="user", text=f"message {i}")
        elapsed = time.perf_counter() - t0
        m = s.start_run(t.id)
        t0 = time.perf_counter()
        for i in range(count):
            s.append_delta(m.id, f"tok{i} ")
        delta_elapsed = time.perf_counter() - t0
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--messages", type=int, default=600, help="messages per writer process")
    ap.add_argument("--throughput", type=int, default=10_000, help="messages in the throughput run")
    ap.add_argument("--idle-seconds", type=float, default=5.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        result = {
            "floor": floor_latency(tmp, args.messages),
            "feed": feed_latency(tmp, args.messages),
            "throughput": throughput(tmp, args.throughput),
            "idle_inotify": idle_cpu(tmp, args.idle_seconds, "inotify"),
            "idle_poll": idle_cpu(tmp, args.idle_seconds, "poll"),
        }
    f, fl, th = result["feed"], result["floor"], result["throughput"]
    result["ratios"] = {
        "feed_p50_vs_floor": f["p50_ms"] / fl["p50_ms"],
        "feed_p99_vs_floor": f["p99_ms"] / fl["p99_ms"],
        "messages_vs_bare_commits": th["messages_per_s"] / th["bare_commits_per_s"],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"feed, 3 writer processes -> watcher process ({f['events']} events)")
    print(f"  p50 {f['p50_ms']:.3f} ms   p99 {f['p99_ms']:.3f} ms   max {f['max_ms']:.3f} ms")
    print(f"  lost {f['lost']}   duplicated {f['duplicated']}   out of order {f['out_of_order']}")
    print("floor: bare sqlite3 commit -> process blocked on inotify of the WAL")
    print(f"  p50 {fl['p50_ms']:.3f} ms   p99 {fl['p99_ms']:.3f} ms")
    r = result["ratios"]
    print(f"  feed/floor: p50 x{r['feed_p50_vs_floor']:.2f}   p99 x{r['feed_p99_vs_floor']:.2f}")
    print("write throughput, one process, one transaction each")
    print(f"  add_message {th['messages_per_s']:,.0f}/s   append_delta {th['deltas_per_s']:,.0f}/s")
    print(f"  bare sqlite3 commit {th['bare_commits_per_s']:,.0f}/s   (x{r['messages_vs_bare_commits']:.2f})")
    for key in ("idle_inotify", "idle_poll"):
        i = result[key]
        print(f"idle watcher ({i['mode']}): {100 * float(i['cpu']):.2f} % of a core")


if __name__ == "__main__":
    role, *rest = sys.argv[1:] or [""]
    if role == "writer":
        role_writer(rest[0], rest[1], int(rest[2]), rest[3])
    elif role == "watcher":
        role_watcher(rest[0], int(rest[1]), rest[2])
    elif role == "floor-watcher":
        role_floor_watcher(rest[0], int(rest[1]), rest[2])
    elif role == "idle":
        role_idle(rest[0], float(rest[1]), rest[2])
    else:
        main()
