"""Benchmark of the widgets' comm traffic, streaming latency and construction time.

Measures, in one run on this machine:
  * comm bytes a ChatView sends for a 2,000-token answer in a thread of 1,000 earlier messages,
    against the same answer in an empty thread (the baseline), at two paces;
  * comm messages per second while answers stream fast (peak over 1 s windows), for one view and
    for ten views in one process, against the delta rows the store received per second;
  * last token written by another process -> last delta on the iopub of a real kernel showing the
    thread, against the same writer -> a plain store subscriber in this process;
  * ChatView construction on a 10,000-message thread, against an empty thread.
Prints figures and ratios; ``--json`` prints one JSON object instead.

    .venv/bin/python bench/widgets.py [--json] [--answers 5]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import comm
from comm.base_comm import BaseComm

import threadwidget as tw

HERE = Path(__file__).resolve()


class RecordingComm(BaseComm):
    """Stands in for the kernel's comm: keeps (time, bytes of the JSON data, method) per message."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sent: list[tuple[float, int, str]] = []
        super().__init__(*args, **kwargs)

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **k: Any) -> None:
        if msg_type == "comm_msg":
            self.sent.append((time.monotonic(), len(json.dumps(data, separators=(",", ":"))), data["method"]))


comm.create_comm = RecordingComm  # this process has no kernel


def words(n: int) -> str:
    return " ".join(f"word{i}" for i in range(n))


def fill(store: tw.Store, thread_id: str, count: int) -> None:
    for i in range(count // 2):
        store.add_message(thread_id, role="user", text=f"Where is order {i}?", agent="support")
        store.add_message(thread_id, role="assistant", text=f"Order {i} shipped.", agent="support", model="scripted")


def wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not met within {timeout} s")
        time.sleep(0.005)  # polling interval of a deadline-bounded wait


# -- comm bytes ----------------------------------------------------------------------------------


def answer_bytes(store: tw.Store, earlier: int, rate: float | None) -> dict[str, int]:
    model = tw.ScriptedModel(tokens_per_second=rate)
    model.enqueue(words(2000))
    thread = tw.Agent("support", model=model, store=store).create_thread(title="Order help")
    fill(store, thread.id, earlier)
    view = tw.ChatView(thread)
    c: RecordingComm = view.comm
    start = len(c.sent)
    "".join(thread.stream_text("Tell me a story"))
    text = words(2000)
    wait_for(lambda: view.messages and view.messages[-1]["text"] == text and view.status["state"] == "idle")
    sent = c.sent[start:]
    view.close()
    return {
        "total": sum(n for _, n, _ in sent),
        "deltas": sum(n for _, n, method in sent if method == "custom"),
        "trait_updates": sum(n for _, n, method in sent if method == "update"),
        "messages": len(sent),
    }


def comm_bytes(tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tw.Store(tmp / "bytes.db") as store:
        for label, rate in (("unpaced", None), ("200_tok_s", 200.0)):
            empty, full = answer_bytes(store, 0, rate), answer_bytes(store, 1000, rate)
            out[label] = {"empty_thread": empty, "thread_of_1000": full, "ratio": full["total"] / empty["total"]}
    out["answer_text_bytes"] = len(words(2000))
    return out


# -- message rate --------------------------------------------------------------------------------


def peak_per_second(times: list[float]) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= 1.0:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def message_rate(tmp: Path, views: int) -> dict[str, Any]:
    with tw.Store(tmp / f"rate-{views}.db") as store:
        agents, widgets = [], []
        for _ in range(views):
            model = tw.ScriptedModel(tokens_per_second=2000)
            model.enqueue(words(8000))
            thread = tw.Agent("support", model=model, store=store).create_thread()
            agents.append(thread)
            widgets.append(tw.ChatView(thread))
        delta_times: list[float] = []
        lock = threading.Lock()

        def on_event(event: tw.Event) -> None:
            if event.kind == "delta":
                with lock:
                    delta_times.append(time.monotonic())

        sub = store.subscribe(on_event)
        starts = [len(w.comm.sent) for w in widgets]
        writers = [threading.Thread(target=lambda t=t: list(t.stream_text("go"))) for t in agents]
        for w in writers:
            w.start()
        for w in writers:
            w.join(300)
        text = words(8000)
        wait_for(lambda: all(w.messages[-1]["text"] == text and w.status["state"] == "idle" for w in widgets))
        sub.close()
        sent = [t for w, s in zip(widgets, starts, strict=True) for t, _, _ in w.comm.sent[s:]]
        for w in widgets:
            w.close()
    return {
        "views": views,
        "comm_msgs_peak_per_s": peak_per_second(sent),
        "comm_msgs": len(sent),
        "store_delta_rows_peak_per_s": peak_per_second(delta_times),
        "store_delta_rows": len(delta_times),
    }


# -- latency through a real kernel -----------------------------------------------------------------


def role_writer(db: str, thread_id: str, count: str) -> None:
    """Another process: answer with ``count`` words at 200 tokens/s; print when the last token came."""
    store = tw.Store(db)
    model = tw.ScriptedModel(tokens_per_second=200)
    model.enqueue(words(int(count)))
    thread = tw.Agent("writer", model=model, store=store).continue_thread(thread_id)
    last = 0.0
    for _ in thread.stream_text("go"):
        last = time.time()
    answer = store.list_messages(thread_id, limit=1)[-1]
    print(json.dumps({"message_id": answer.id, "last_token_at": last}), flush=True)
    store.close()


def kernel_latency(tmp: Path, answers: int) -> dict[str, Any]:
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    spec = tmp / "kernels" / "tw-bench"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "bench", "language": "python"}))
    env = dict(os.environ, PYTHONPATH=str(HERE.parent.parent))
    km = KernelManager(kernel_name="tw-bench", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.parent)]))
    km.start_kernel(env=env)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    db = tmp / "latency.db"
    store = tw.Store(db)
    thread_id = store.create_thread(agent="writer").id
    arrivals: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
    stop = threading.Event()

    def read_iopub() -> None:
        while not stop.is_set():
            try:
                msg = kc.get_iopub_msg(timeout=0.1)
            except queue.Empty:
                continue
            if msg["msg_type"] == "comm_msg":
                data = msg["content"]["data"]
                if data.get("method") == "custom" and data["content"].get("kind") == "delta":
                    arrivals.put((time.time(), data["content"]))

    reader = threading.Thread(target=read_iopub, daemon=True)
    reader.start()
    msg_id = kc.execute(  # iopub belongs to the reader thread: wait for the shell reply only
        f"import threadwidget as tw\nstore = tw.Store({str(db)!r})\n"
        f"view = tw.ChatView({thread_id!r}, store=store)\ndisplay(view)"
    )
    while kc.get_shell_msg(timeout=60)["parent_header"].get("msg_id") != msg_id:
        pass
    feed_end: dict[str, float] = {}

    def on_event(event: tw.Event) -> None:  # the baseline: the store's feed alone, in this process
        row = event.row
        if event.kind == "message" and isinstance(row, tw.Message) and row.role == "assistant" and row.is_final:
            feed_end[row.id] = time.time()

    sub = store.subscribe(on_event, thread_id=thread_id)
    iopub_ms, feed_ms = [], []
    try:
        for _ in range(answers):
            out = subprocess.run(
                [sys.executable, str(HERE), "writer", str(db), thread_id, "200"],
                capture_output=True, text=True, env=env, check=True, timeout=120,
            )  # fmt: skip
            result = json.loads(out.stdout.strip().splitlines()[-1])
            deadline = time.monotonic() + 30
            while True:
                at, chunk = arrivals.get(timeout=max(0.01, deadline - time.monotonic()))
                if chunk["message_id"] == result["message_id"] and chunk["end"]:
                    break
            wait_for(lambda r=result: r["message_id"] in feed_end)
            iopub_ms.append((at - result["last_token_at"]) * 1000)
            feed_ms.append((feed_end[result["message_id"]] - result["last_token_at"]) * 1000)
    finally:
        sub.close()
        stop.set()
        reader.join(5)
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        store.close()
    return {
        "answers": answers,
        "iopub_p50_ms": statistics.median(iopub_ms),
        "iopub_max_ms": max(iopub_ms),
        "feed_p50_ms": statistics.median(feed_ms),
        "feed_max_ms": max(feed_ms),
    }


# -- construction ----------------------------------------------------------------------------------


def construction(tmp: Path, repeat: int = 20) -> dict[str, Any]:
    with tw.Store(tmp / "construct.db") as store:
        big = store.create_thread(title="big", agent="support")
        empty = store.create_thread(title="empty", agent="support")
        for i in range(5000):
            store.add_message(big.id, role="user", text=f"question {i}", agent="support")
            m = store.add_message(big.id, role="assistant", text=f"answer {i} " * 5, agent="support")
            if i % 25 == 0:
                store.add_tool_call(m.id, call_id=f"c{i}", name="lookup", arguments='{"order_id": "42"}')
        tw.ChatView(empty.id, store=store).close()  # imports and the bundle read, once

        def time_it(thread_id: str) -> float:
            samples = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                view = tw.ChatView(thread_id, store=store)
                samples.append(time.perf_counter() - t0)
                view.close()
            return statistics.median(samples) * 1000

        empty_ms, big_ms = time_it(empty.id), time_it(big.id)
    return {"empty_thread_ms": empty_ms, "thread_of_10000_ms": big_ms, "ratio": big_ms / empty_ms}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--answers", type=int, default=5, help="answers timed through the real kernel")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        result = {
            "bytes": comm_bytes(tmp),
            "rate_1_view": message_rate(tmp, 1),
            "rate_10_views": message_rate(tmp, 10),
            "latency": kernel_latency(tmp, args.answers),
            "construction": construction(tmp),
        }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    b = result["bytes"]
    print(f"comm bytes for a 2,000-token answer ({b['answer_text_bytes']:,} bytes of text)")
    for label in ("unpaced", "200_tok_s"):
        x = b[label]
        for key in ("empty_thread", "thread_of_1000"):
            y = x[key]
            print(f"  {label:>9}, {key:>14}: {y['total']:>7,} in {y['messages']:>3} messages "
                  f"(deltas {y['deltas']:,}, trait updates {y['trait_updates']:,})")  # fmt: skip
        print(f"  {label:>9}: thread of 1,000 / empty thread  x{x['ratio']:.3f}")
    for key in ("rate_1_view", "rate_10_views"):
        r = result[key]
        print(f"streaming fast into {r['views']} view(s): comm messages peak {r['comm_msgs_peak_per_s']}/s "
              f"({r['comm_msgs']} in all); store delta rows peak {r['store_delta_rows_peak_per_s']}/s "
              f"({r['store_delta_rows']})")  # fmt: skip
    lat = result["latency"]
    print(f"last token in a writer process -> last delta on a kernel's iopub ({lat['answers']} answers)")
    print(f"  p50 {lat['iopub_p50_ms']:.1f} ms   max {lat['iopub_max_ms']:.1f} ms")
    print(f"  baseline, the same -> final message at a store subscriber here: p50 {lat['feed_p50_ms']:.1f} ms"
          f"   max {lat['feed_max_ms']:.1f} ms")  # fmt: skip
    c = result["construction"]
    print(f"ChatView construction: thread of 10,000 messages {c['thread_of_10000_ms']:.2f} ms, "
          f"empty thread {c['empty_thread_ms']:.2f} ms (x{c['ratio']:.2f})")  # fmt: skip


if __name__ == "__main__":
    role, *rest = sys.argv[1:] or [""]
    if role == "writer":
        role_writer(*rest)
    else:
        main()
