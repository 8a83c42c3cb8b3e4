"""Processes the cross-process store tests start: ``python tests/store_workers.py COMMAND ARGS``.

Each prints ``ready`` once set up and waits for a line on stdin (``go``) when told to, so tests
synchronise on real signals, never on sleeps.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import threadwidget as tw


def writer(db: str, thread_id: str, count: str, tag: str, wait_go: str = "0", pause: str = "0") -> None:
    """Append ``count`` messages ``tag:i``, each in its own transaction (``pause`` seconds apart:
    a writer that streams for a while)."""
    store = tw.Store(db)
    print("ready", flush=True)
    if wait_go == "1":
        sys.stdin.readline()
    errors = 0
    for i in range(int(count)):
        try:
            store.add_message(thread_id, role="user", text=f"{tag}:{i}")
        except Exception as exc:  # report, never hide: the test asserts errors == 0
            errors += 1
            print(f"error {exc!r}", file=sys.stderr, flush=True)
        if float(pause):
            time.sleep(float(pause))  # the writer's pace, not synchronisation
    print(json.dumps({"errors": errors}), flush=True)
    store.close()


def watcher(db: str, expected: str, out: str) -> None:
    """Collect message events until ``expected`` message inserts arrived, then write them as JSON:
    one record per event with the commit-to-callback latency."""
    store = tw.Store(db)
    got: list[dict[str, object]] = []
    done = threading.Event()

    def on_event(event: tw.Event) -> None:
        if event.kind == "message" and event.op == "insert" and isinstance(event.row, tw.Message):
            got.append({"seq": event.seq, "text": event.row.text, "latency": time.time() - event.row.created_at})
            if len(got) >= int(expected):
                done.set()

    store.subscribe(on_event)
    print("ready", flush=True)
    done.wait(120)
    with open(out, "w") as f:
        json.dump(got, f)
    store.close()


def hold_transaction(db: str, thread_id: str) -> None:
    """Insert a message and its change-log row inside a write transaction, then hang there
    until killed: the test SIGKILLs this process mid-transaction."""
    store = tw.Store(db)

    def write(conn: object, now: float) -> None:
        store._insert_message(conn, now, "msg_partial", thread_id, "user", "half", "success", None, None, 0, None)  # type: ignore[arg-type]
        conn.execute(
            "INSERT INTO deltas (message_id, thread_id, seq, text, created_at) VALUES ('msg_partial', ?, 1, 'x', ?)",
            (thread_id, now),
        )  # type: ignore[attr-defined]
        print("in-transaction", flush=True)
        threading.Event().wait()  # hang until SIGKILL

    store._write(write)


def opener(db: str) -> None:
    """Open (and so create or migrate) the store once ``go`` arrives, then write one thread."""
    print("ready", flush=True)
    sys.stdin.readline()
    store = tw.Store(db)
    store.create_thread(title="opened")
    print(json.dumps({"ok": True}), flush=True)
    store.close()


def streamer(db: str, thread_id: str) -> None:
    """Start a run, stream a few deltas, renew the lease forever: the test kills it."""
    store = tw.Store(db)
    msg = store.start_run(thread_id, agent="killed")
    store.update_message(msg.id, status="streaming")
    store.append_delta(msg.id, "partial ")
    store.append_delta(msg.id, "answer")
    print(json.dumps({"message_id": msg.id}), flush=True)
    while True:
        time.sleep(1.0)  # the lease-renewal cadence of a real writer
        store.renew_lease(msg.id)


if __name__ == "__main__":
    globals()[sys.argv[1].replace("-", "_")](*sys.argv[2:])
