"""Benchmark of a token's way from the model to a view in another kernel, on both backends.

A local OpenAI-compatible server (in this process) streams an answer one word per chunk at a fixed
pace (20, 50 and 200 tokens/s) and notes the wall-clock time each chunk was sent. An agent in another
process (``tw.Agent`` with ``tw.OpenAIChat``) answers in a thread of a store; a ``tw.ChatView`` of
that thread lives in a real IPython kernel (``jupyter_client``), whose iopub this process reads,
stamping each ``comm_msg`` with its arrival. Measured, per answer:

  * token -> other kernel's view: for each word, the arrival of the first ``delta`` custom message
    of the view whose text reaches it (the deltas' text is concatenated in ``seq`` order; word i
    arrives once the text covers its last character) minus the time the server sent it: p50/p99/max;
  * where that time goes: the same words as the kernel's store feed hands the deltas to a
    subscriber there (model -> kernel's feed: the runtime's coalescing, its write and the wake-up;
    kernel's feed -> iopub here: the view's throttle and the comm message);
  * the view's comm messages per second (peak over 1 s windows, and the mean while streaming) and
    bytes per token (compact JSON of each comm message's ``data``, every message of the view from
    the prompt to the answer's final update, over the words of the answer); an unpaced 2,000-word
    answer too, for its bytes (its latencies are the socket's queue: the server outruns the SDK);
  * the floor, in the same run: deltas written by another process at ~50/s, each carrying its write
    time; a subscriber in the kernel sends each one at once as a bare comm message (no widget, no
    throttle). Write -> kernel callback is a bare feed wake-up, callback -> iopub here a bare comm
    send, write -> iopub both.

SQLite (a temporary file) and PostgreSQL (``--db URL``, else a throwaway server started as the tests
do). ``--baseline PATH`` runs the same measurement, interleaved in the same run, with the package
imported from another checkout (e.g. ``git worktree add /tmp/lat-base HEAD``; the worktree needs the
browser bundle: ``cp -r threadwidget/static /tmp/lat-base/threadwidget/``). ``--json`` prints one
JSON object. ``--quick`` uses fewer words.

    .venv/bin/python bench/latency.py [--json] [--quick] [--backend sqlite|postgres|both]
                                      [--db URL] [--baseline PATH] [--checkout PATH]
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import http.server
import json
import os
import platform
import queue
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
RATES = ("20", "50", "200", "unpaced")  # tokens/s; unpaced: as fast as the server writes (for the bytes)
WORDS = {"20": 300, "50": 500, "200": 1000, "unpaced": 2000}
QUICK_WORDS = {"20": 100, "50": 150, "200": 300, "unpaced": 2000}
FLOOR_SAMPLES, QUICK_FLOOR_SAMPLES = 300, 100
SETTLE = 0.6  # seconds after the answer's last delta: its final trait update (gathered, throttled)
GOAL_RATE = "50"
BYTES_RATE = "unpaced"  # the 17.5 B/token of the goal: a 2,000-token answer, unpaced (bench/widgets.py)
GOALS = {"p50_ms": 15.0, "p99_ms": 40.0, "comm_msgs_peak_per_s": 30.0, "bytes_per_token": 17.5}
TIMEOUT = 60.0


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def summary(values: list[float]) -> dict[str, float]:
    return {"p50_ms": statistics.median(values), "p99_ms": pct(values, 0.99), "max_ms": max(values),
            "mean_ms": statistics.fmean(values)}  # fmt: skip


def peak_per_second(times: list[float]) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= 1.0:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def data_bytes(data: Any) -> int:
    return len(json.dumps(data, separators=(",", ":")))


def env_for(checkout: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(checkout), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path, PYTHONUNBUFFERED="1")


# -- roles run in child processes (with the package of the checkout under test) ----------------------


def role_agent(db: str, url: str) -> None:
    """Answer in one thread, one answer per ``go`` line on stdin; print each answer's id."""
    import threadwidget as tw

    store = tw.Store(db)
    agent = tw.Agent("bench", model=tw.OpenAIChat("bench", base_url=url, api_key="x"), store=store)
    thread = agent.create_thread(title="latency")
    print(json.dumps({"thread_id": thread.id, "package": str(Path(tw.__file__).parent)}), flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        result = thread.generate_text("Tell me a story, one word at a time.")
        print(json.dumps({"message_id": result.message_id, "status": result.status}), flush=True)
    store.close()


def role_floor_writer(db: str, samples: int) -> None:
    """Append ``samples`` deltas to an answer, ~50 a second, each holding the time its write began."""
    import threadwidget as tw

    store = tw.Store(db)
    thread = store.create_thread(title="floor")
    message = store.start_run(thread.id)
    print(json.dumps({"thread_id": thread.id, "message_id": message.id}), flush=True)
    sys.stdin.readline()
    rng = random.Random(7)
    for _ in range(samples):
        store.append_delta(message.id, repr(time.time()))
        time.sleep(rng.uniform(0.005, 0.035))  # ~50 writes/s, not in step with any timer
    print("done", flush=True)
    store.close()


# -- the model server ---------------------------------------------------------------------------------


class Answer:
    """One streamed answer: ``words`` words, one per chunk, ``1/rate`` s apart; ``sent`` holds the
    wall-clock time each chunk went out (after the socket write returned)."""

    def __init__(self, words: int, rate: float | None) -> None:
        self.chunks = [f"word{i} " for i in range(words - 1)] + [f"word{words - 1}"]
        self.interval = 1.0 / rate if rate else 0.0
        self.sent: list[float] = []
        self.late: list[float] = []  # seconds each chunk went out after its due time


class ModelServer(http.server.ThreadingHTTPServer):
    """``POST /v1/chat/completions`` plays the next queued ``Answer`` in OpenAI's streaming format
    (Server-Sent Events over chunked HTTP/1.1, keep-alive, no Nagle delay)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers: queue.Queue[Answer] = queue.Queue()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: ModelServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))  # one write: one sendall

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        try:
            answer = self.server.answers.get_nowait()
        except queue.Empty:
            error = json.dumps({"error": {"message": "no answer queued", "type": "invalid_request_error"}}).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(error)))
            self.end_headers()
            self.wfile.write(error)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        model = body.get("model", "bench")
        usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
            chunk: dict[str, Any] = {
                "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": model, "system_fingerprint": None,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }  # fmt: skip
            if usage:
                chunk["usage"] = None
            return f"data: {json.dumps(chunk)}\n\n".encode()

        self._chunk(event({"role": "assistant", "content": ""}))
        start = time.perf_counter()
        for i, piece in enumerate(answer.chunks):
            due = start + (i + 1) * answer.interval
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)  # the pace of the model: a word every 1/rate s, on a fixed grid
            self._chunk(event({"content": piece}))
            answer.sent.append(time.time())
            answer.late.append(time.perf_counter() - due if answer.interval else 0.0)
        self._chunk(event({}, "stop"))
        if usage:
            n = len(answer.chunks)
            tail = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": int(time.time()),
                    "model": model, "system_fingerprint": None, "choices": [],
                    "usage": {"prompt_tokens": 10, "completion_tokens": n, "total_tokens": 10 + n}}  # fmt: skip
            self._chunk(f"data: {json.dumps(tail)}\n\n".encode())
        self._chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")


# -- a kernel, its iopub read here ------------------------------------------------------------------


class Kernel:
    """An IPython kernel of this venv's Python importing the package from ``checkout``; every
    ``comm_msg`` on its iopub is kept with its arrival time here (``msgs``)."""

    def __init__(self, tmp: Path, name: str, checkout: Path) -> None:
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        spec = tmp / "kernels" / name
        spec.mkdir(parents=True)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": name, "language": "python"}))
        specs = KernelSpecManager(kernel_dirs=[str(spec.parent)], ensure_native_kernel=False)
        self.manager = KernelManager(kernel_name=name, kernel_spec_manager=specs)
        self.manager.start_kernel(env=env_for(checkout))
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=TIMEOUT)
        self.msgs: list[tuple[float, str, dict[str, Any]]] = []  # (arrival, comm_id, data)
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.client.get_iopub_msg(timeout=0.1)
            except queue.Empty:
                continue
            at = time.time()
            if msg["msg_type"] == "comm_msg":
                self.msgs.append((at, msg["content"]["comm_id"], msg["content"]["data"]))

    def run(self, code: str, **expressions: str) -> dict[str, Any]:
        """Run ``code``; return the values of ``expressions`` (Python literals), raise if it failed."""
        msg_id = self.client.execute(code, user_expressions=expressions)
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self.client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        content = reply["content"]
        if content["status"] != "ok":
            raise RuntimeError(f"kernel cell failed: {content.get('ename')}: {content.get('evalue')}")
        out = {}
        for key, value in content["user_expressions"].items():
            if value["status"] != "ok":
                raise RuntimeError(f"kernel expression {key} failed: {value.get('ename')}: {value.get('evalue')}")
            out[key] = ast.literal_eval(value["data"]["text/plain"])
        return out

    def comm_msgs(self, start: int, comm_id: str) -> list[tuple[float, dict[str, Any]]]:
        return [(at, data) for at, cid, data in self.msgs[start:] if cid == comm_id]

    def close(self) -> None:
        self._stop.set()
        self._reader.join(5)
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


# -- one checkout under test --------------------------------------------------------------------------


def spawn(checkout: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(HERE), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env_for(checkout))  # fmt: skip


def read_json(proc: subprocess.Popen[str]) -> Any:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"a child process ended early (exit code {proc.wait(10)})")
    return json.loads(line)


def tell(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


KERNEL_SETUP = """\
import json, time
import threadwidget as tw
from comm import create_comm
store = tw.Store({db!r})
_rec = []  # the answer's deltas as this kernel's feed hands them over: (time, message id, seq, length)
def _record(event):
    if event.kind == "delta":
        _rec.append((time.time(), event.row.message_id, event.row.seq, len(event.row.text)))
_rec_sub = store.subscribe(_record, thread_id={thread_id!r})
view = tw.ChatView({thread_id!r}, store=store)
"""

FLOOR_SETUP = """\
_floor_comm = create_comm(target_name="tw-bench-floor", data={{}})
def _floor(event):
    if event.kind == "delta":
        _floor_comm.send({{"t": event.row.text, "fed": time.time()}})
_floor_sub = store.subscribe(_floor, thread_id={thread_id!r})
"""


class Variant:
    """A checkout under test: an agent process and a kernel with a ChatView, on their own store."""

    def __init__(self, name: str, checkout: Path, db: str, tmp: Path, server: ModelServer) -> None:
        self.name, self.checkout, self.db, self.tmp = name, checkout, db, tmp
        self.agent = spawn(checkout, "agent", db, server.url)
        started = read_json(self.agent)
        self.thread_id = started["thread_id"]
        self.kernel = Kernel(tmp, f"tw-bench-{name}", checkout)
        values = self.kernel.run(KERNEL_SETUP.format(db=db, thread_id=self.thread_id),
                                 view="view.model_id", package="str(tw.__file__)")  # fmt: skip
        self.view_id = values["view"]
        self.packages = {"agent": started["package"], "kernel": str(Path(values["package"]).parent)}
        for where, package in self.packages.items():
            if not Path(package).resolve().is_relative_to(checkout.resolve()):
                raise RuntimeError(f"the {where} of {name} imported threadwidget from {package}, not {checkout}")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            tell(self.agent, "quit")
            self.agent.wait(10)
        if self.agent.poll() is None:
            self.agent.kill()
        self.kernel.close()

    # -- the floor --

    def floor(self, samples: int) -> dict[str, Any]:
        writer = spawn(self.checkout, "floor-writer", self.db, str(samples))
        try:
            thread_id = read_json(writer)["thread_id"]
            comm_id = self.kernel.run(FLOOR_SETUP.format(thread_id=thread_id), comm="_floor_comm.comm_id")["comm"]
            start = len(self.kernel.msgs)
            tell(writer, "go")
            assert writer.stdout is not None
            assert writer.stdout.readline().strip() == "done"
            deadline = time.monotonic() + 10
            while len(got := self.kernel.comm_msgs(start, comm_id)) < samples and time.monotonic() < deadline:
                time.sleep(0.01)
            self.kernel.run("_floor_sub.close()\n_floor_comm.close()")
        finally:
            writer.wait(10)
        feed, send, both = [], [], []
        for at, data in got:
            written, fed = float(data["t"]), float(data["fed"])
            feed.append((fed - written) * 1000)
            send.append((at - fed) * 1000)
            both.append((at - written) * 1000)
        return {"samples": len(got), "lost": samples - len(got), "feed": summary(feed), "comm": summary(send),
                "total": summary(both)}  # fmt: skip

    # -- one answer --

    def answer(self, server: ModelServer, rate: float | None, words: int) -> dict[str, Any]:
        answer = Answer(words, rate)
        server.answers.put(answer)
        self.kernel.run("_rec.clear()")
        start = len(self.kernel.msgs)
        tell(self.agent, "go")
        done = read_json(self.agent)
        message_id = done["message_id"]
        deadline = time.monotonic() + TIMEOUT

        def ended() -> bool:
            return any(
                d.get("method") == "custom" and d["content"].get("kind") == "delta" and d["content"]["end"]
                and d["content"]["message_id"] == message_id for _, d in self.kernel.comm_msgs(start, self.view_id)
            )  # fmt: skip

        while not ended():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: the answer's last delta never reached iopub")
            time.sleep(0.02)
        time.sleep(SETTLE)
        msgs = self.kernel.comm_msgs(start, self.view_id)
        rec_path = self.tmp / f"rec-{self.name}.json"
        self.kernel.run(f"open({str(rec_path)!r}, 'w').write(json.dumps(_rec))")
        recorded = [r for r in json.loads(rec_path.read_text()) if r[1] == message_id]
        return analyse(answer, message_id, msgs, recorded, done["status"])


def covered(chunks: list[str], deltas: list[tuple[float, int, int, int]]) -> tuple[list[float | None], int]:
    """When each chunk's text was first covered by ``deltas`` — ``(time, first_seq, seq, length)`` of
    contiguous pieces of the answer's text, in arrival order — and how many gaps the deltas had."""
    ends, total = [], 0
    for c in chunks:
        total += len(c)
        ends.append(total)
    at: list[float | None] = [None] * len(chunks)
    seq, length, k, gaps = 0, 0, 0, 0
    for t, first, last, n in deltas:
        if last <= seq:
            continue  # a duplicate (the end flag on the last delta again)
        if first != seq + 1:
            gaps += 1
        seq, length = last, length + n
        while k < len(ends) and ends[k] <= length:
            at[k] = t
            k += 1
    return at, gaps


def analyse(answer: Answer, message_id: str, msgs: list[tuple[float, dict[str, Any]]],
            recorded: list[list[Any]], status: str) -> dict[str, Any]:  # fmt: skip
    deltas = [(at, d["content"]) for at, d in msgs
              if d.get("method") == "custom" and d["content"].get("kind") == "delta"
              and d["content"]["message_id"] == message_id]  # fmt: skip
    view_at, gaps = covered(answer.chunks, [(at, c["first_seq"], c["seq"], len(c["text"])) for at, c in deltas])
    feed_at, _ = covered(answer.chunks, [(t, seq, seq, n) for t, _, seq, n in recorded])
    text, seq = [], 0
    for _, c in deltas:
        if c["seq"] > seq:
            text.append(c["text"])
            seq = c["seq"]
    lat = [(v - s) * 1000 for v, s in zip(view_at, answer.sent, strict=True) if v is not None]
    to_feed = [(f - s) * 1000 for f, s in zip(feed_at, answer.sent, strict=True) if f is not None]
    feed_to_view = [(v - f) * 1000 for v, f in zip(view_at, feed_at, strict=True) if v is not None and f is not None]
    streaming = [at for at, _ in msgs if deltas[0][0] <= at <= deltas[-1][0]] if deltas else []
    span = deltas[-1][0] - deltas[0][0] if len(deltas) > 1 else 0.0
    all_bytes = sum(data_bytes(d) for _, d in msgs)
    delta_bytes = sum(data_bytes(d) for _, d in msgs if d.get("method") == "custom")
    words = len(answer.chunks)
    return {
        "words": words,
        "status": status,
        "text_ok": "".join(text) == "".join(answer.chunks),
        "missing": sum(v is None for v in view_at),
        "gaps": gaps,
        "latency": summary(lat),
        "model_to_kernel_feed": summary(to_feed) if to_feed else None,
        "kernel_feed_to_view": summary(feed_to_view) if feed_to_view else None,
        "comm_msgs": len(msgs),
        "delta_msgs": len(deltas),
        "store_deltas": len(recorded),
        "comm_msgs_peak_per_s": peak_per_second([at for at, _ in msgs]),
        "comm_msgs_mean_per_s": (len(streaming) - 1) / span if span else 0.0,
        "bytes": all_bytes,
        "bytes_per_token": all_bytes / words,
        "delta_bytes_per_token": delta_bytes / words,
        "update_bytes_per_token": (all_bytes - delta_bytes) / words,
        "server_late_p99_ms": pct(answer.late, 0.99) * 1000,
    }


# -- a backend ----------------------------------------------------------------------------------------


def new_schema(url: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema=bench_{os.getpid()}_{random.randrange(1 << 30)}"


def measure_backend(backend: str, url: str | None, checkouts: dict[str, Path], server: ModelServer,
                    words: dict[int, int], floor_samples: int, log: Any) -> dict[str, Any]:  # fmt: skip
    with tempfile.TemporaryDirectory() as d, contextlib.ExitStack() as stack:
        tmp = Path(d)
        variants: dict[str, Variant] = {}
        for name, checkout in checkouts.items():
            if url is None:
                (tmp / name).mkdir()  # a folder each: a store's wake-ups watch its folder
                db = str(tmp / name / "latency.db")
            else:
                db = new_schema(url)
            log(f"{backend}: starting the agent process and the kernel of {name} ({checkout})")
            variants[name] = stack.enter_context(contextlib.closing(Variant(name, checkout, db, tmp, server)))
        out: dict[str, Any] = {name: {"packages": v.packages, "floor": {}, "rates": {}} for name, v in variants.items()}
        for v in variants.values():
            v.answer(server, 200, 20)  # warm up: imports, the first connection to the model server
        for v in variants.values():
            log(f"{backend}: floor of {v.name} ({floor_samples} deltas)")
            out[v.name]["floor"] = v.floor(floor_samples)
        order = list(variants.values())
        for i, (label, n) in enumerate(words.items()):
            for v in order if i % 2 == 0 else order[::-1]:  # alternate who goes first
                log(f"{backend}: {v.name}, {n} words at {label} tokens/s")
                rate = None if label == "unpaced" else float(label)
                out[v.name]["rates"][label] = v.answer(server, rate, n)
        for name in out:
            floor = out[name]["floor"]["total"]
            for r in out[name]["rates"].values():
                r["vs_floor"] = {"p50": r["latency"]["p50_ms"] / floor["p50_ms"],
                                 "p99": r["latency"]["p99_ms"] / floor["p99_ms"]}  # fmt: skip
        for name, value in out.items():
            value["goals"] = goals(out, name)
        return out


# -- the report ---------------------------------------------------------------------------------------


def goals(res: dict[str, Any], name: str) -> dict[str, Any]:
    """The issue's goals at 50 tokens/s for checkout ``name``; bytes also against the baseline's."""
    rates = res[name]["rates"]
    out: dict[str, Any] = {}
    if (r := rates.get(GOAL_RATE)) is not None:
        out["p50_ms"] = r["latency"]["p50_ms"] <= GOALS["p50_ms"]
        out["p99_ms"] = r["latency"]["p99_ms"] <= GOALS["p99_ms"]
        out["comm_msgs_peak_per_s"] = r["comm_msgs_peak_per_s"] <= GOALS["comm_msgs_peak_per_s"]
    if (r := rates.get(BYTES_RATE)) is not None:
        out["bytes_per_token"] = r["bytes_per_token"] <= GOALS["bytes_per_token"]
        base = res.get("baseline", {}).get("rates", {}).get(BYTES_RATE)
        if name != "baseline" and base is not None:
            out["bytes_per_token_vs_baseline"] = r["bytes_per_token"] / base["bytes_per_token"]
    return out


def print_backend(backend: str, res: dict[str, Any]) -> None:
    print(f"\n{backend}: model token -> ChatView's delta on another kernel's iopub, ms; where the time goes (p50);")
    print("the view's comm messages per second; bytes (JSON of the messages' data) per token: deltas + updates")
    print(f"  {'rate':>6} {'checkout':<8} {'words':>5} {'p50':>6} {'p99':>6} {'max':>6} {'/floor p50,p99':>14}"
          f" {'->feed':>7} {'->view':>7} {'msgs/s peak':>11} {'mean':>5} {'B/token':>17} {'late':>5}")  # fmt: skip
    rates = next(iter(res.values()))["rates"]
    for rate in rates:
        for name, v in res.items():
            r = v["rates"][rate]
            lat, vs = r["latency"], r["vs_floor"]
            a = (r["model_to_kernel_feed"] or {"p50_ms": float("nan")})["p50_ms"]
            b = (r["kernel_feed_to_view"] or {"p50_ms": float("nan")})["p50_ms"]
            ratio = f"x{vs['p50']:.1f}, x{vs['p99']:.1f}"
            per = f"{r['bytes_per_token']:.1f} ({r['delta_bytes_per_token']:.0f}+{r['update_bytes_per_token']:.0f})"
            ok = r["text_ok"] and not r["missing"] and not r["gaps"] and r["status"] == "success"
            odd = "" if ok else f"   !! {r['status']}, text ok {r['text_ok']}, missing {r['missing']}, gaps {r['gaps']}"
            label = "max" if rate == "unpaced" else f"{rate}/s"
            print(f"  {label:>6} {name:<8} {r['words']:>5} {lat['p50_ms']:>6.1f} {lat['p99_ms']:>6.1f}"
                  f" {lat['max_ms']:>6.1f} {ratio:>14} {a:>7.1f} {b:>7.1f} {r['comm_msgs_peak_per_s']:>11}"
                  f" {r['comm_msgs_mean_per_s']:>5.1f} {per:>17} {r['server_late_p99_ms']:>5.1f}{odd}")  # fmt: skip
    print("  ->feed: model send -> the kernel's store feed (the runtime's coalescing, its write, the wake-up);")
    print("  ->view: the kernel's feed -> iopub here (the view's coalescing, the comm message); late: p99 of how")
    print("  late the model server sent a word (a busy machine)")
    print("  floor: deltas written by another process ~50/s, each sent at once by a subscriber in the kernel")
    for name, v in res.items():
        f = v["floor"]
        parts = [f"{label} p50 {f[key]['p50_ms']:.2f} p99 {f[key]['p99_ms']:.2f}"
                 for key, label in (("feed", "write->kernel callback"), ("comm", "comm send->iopub"),
                                    ("total", "write->iopub"))]  # fmt: skip
        print(f"  {name:<8} " + "   ".join(parts) + (f"   lost {f['lost']}" if f["lost"] else ""))
    for name, v in res.items():
        g = v.get("goals") or {}
        met = {key: "met" if ok is True else "NOT met" for key, ok in g.items()}
        parts = []
        if "p50_ms" in g:
            parts += [f"at {GOAL_RATE}/s p50 <= {GOALS['p50_ms']:.0f} ms {met['p50_ms']}",
                      f"p99 <= {GOALS['p99_ms']:.0f} ms {met['p99_ms']}",
                      f"msgs <= {GOALS['comm_msgs_peak_per_s']:.0f}/s {met['comm_msgs_peak_per_s']}"]  # fmt: skip
        if "bytes_per_token" in g:
            vs_base = g.get("bytes_per_token_vs_baseline")
            parts.append(f"unpaced bytes/token <= {GOALS['bytes_per_token']} {met['bytes_per_token']}"
                         + (f" (x{vs_base:.2f} the baseline's)" if vs_base is not None else ""))  # fmt: skip
        if parts:
            print(f"  goals, {name}: " + ", ".join(parts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--quick", action="store_true", help="fewer words and floor samples")
    ap.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    ap.add_argument("--db", help="a postgresql:// URL for the PostgreSQL runs (else a throwaway server)")
    ap.add_argument("--checkout", type=Path, default=ROOT, help="the checkout measured (default: this one)")
    ap.add_argument("--baseline", type=Path, help="another checkout, measured in the same run for comparison")
    ap.add_argument("--rates", default=",".join(RATES), help="tokens/s, comma-separated; 'unpaced' as fast as it goes")
    args = ap.parse_args()
    checkouts = {"current": args.checkout}
    if args.baseline is not None:
        checkouts["baseline"] = args.baseline
    for checkout in checkouts.values():
        if not (checkout / "threadwidget" / "__init__.py").is_file():
            sys.exit(f"{checkout} is not a checkout of threadwidget")
        if not (checkout / "threadwidget" / "static" / "chat.js").is_file():
            sys.exit(f"{checkout} has no browser bundle (threadwidget/static/); build it in js/ or copy it: "
                     f"cp -r {ROOT / 'threadwidget' / 'static'} {checkout / 'threadwidget'}/")  # fmt: skip
    table = QUICK_WORDS if args.quick else WORDS
    words = {r: table.get(r) or (20 if args.quick else 5) * int(r) for r in args.rates.split(",")}
    floor_samples = QUICK_FLOOR_SAMPLES if args.quick else FLOOR_SAMPLES
    t0 = time.monotonic()

    def log(text: str) -> None:
        print(f"[{time.monotonic() - t0:6.1f} s] {text}", file=sys.stderr, flush=True)

    result: dict[str, Any] = {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "load_before": os.getloadavg()},
        "checkouts": {name: str(c) for name, c in checkouts.items()},
        "goals_at_50_tok_s": GOALS,
        "backends": {},
    }
    server = ModelServer()
    try:
        if args.backend in ("sqlite", "both"):
            result["backends"]["sqlite"] = measure_backend("SQLite", None, checkouts, server, words, floor_samples,
                                                           log)  # fmt: skip
        if args.backend in ("postgres", "both"):
            if args.db:
                result["backends"]["postgresql"] = measure_backend("PostgreSQL", args.db, checkouts, server, words,
                                                                   floor_samples, log)  # fmt: skip
            else:
                sys.path.insert(0, str(ROOT / "tests"))
                from pg_server import PostgresServer

                pg = PostgresServer()
                try:
                    result["backends"]["postgresql"] = measure_backend("PostgreSQL", pg.url, checkouts, server,
                                                                       words, floor_samples, log)  # fmt: skip
                finally:
                    pg.close()
    finally:
        server.close()
    result["seconds"] = time.monotonic() - t0
    result["machine"]["load_after"] = os.getloadavg()
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['machine']['cores']} cores, Python {result['machine']['python']}; words of 6-9 bytes, one per "
          f"chunk; checkouts: " + ", ".join(f"{n} {c}" for n, c in checkouts.items()))  # fmt: skip
    for backend, res in result["backends"].items():
        print_backend({"sqlite": "SQLite", "postgresql": "PostgreSQL"}[backend], res)
    load = [", ".join(f"{x:.1f}" for x in result["machine"][key]) for key in ("load_before", "load_after")]
    print(f"\n{result['seconds']:.0f} s in all; load average (1, 5, 15 min) before: {load[0]}, after: {load[1]}")


if __name__ == "__main__":
    role, *rest = sys.argv[1:] or [""]
    if role == "agent":
        role_agent(rest[0], rest[1])
    elif role == "floor-writer":
        role_floor_writer(rest[0], int(rest[1]))
    else:
        main()
