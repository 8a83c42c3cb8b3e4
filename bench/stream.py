"""Benchmark of the agent runtime's streaming path.

Measures, in one run on this machine:
  * overhead: a 2,000-chunk answer from a local OpenAI-compatible server consumed by the bare
    ``openai`` client (the baseline), by ``OpenAIChat`` alone, and by a full ``Agent`` run that
    persists every delta into the store;
  * persisted throughput: tokens/s and delta rows/s of a run with an unpaced ScriptedModel;
  * chunk -> other process: the time from the model producing a chunk in a writer process to a
    subscriber in another process seeing that text (p50/p99), at 50 tokens/s.
Prints figures and ratios; ``--json`` prints one JSON object instead.

    .venv/bin/python bench/stream.py [--json] [--chunks 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import threadwidget as tw

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def best_of(n: int, fn: object) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return min(times)


def overhead(tmp: Path, chunks: int, repeats: int) -> dict[str, float]:
    import openai

    from tests.openai_server import OpenAIServer, Text

    words = [f"w{i} " for i in range(chunks)]
    with OpenAIServer() as server:
        server.default = Text(words)
        client = openai.OpenAI(base_url=server.url, api_key="sk-bench", max_retries=0)

        def bare() -> None:
            stream = client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "go"}], stream=True,
                stream_options={"include_usage": True},
            )  # fmt: skip
            for _ in stream:
                pass

        chat = tw.OpenAIChat("m", base_url=server.url, api_key="sk-bench")

        def model_only() -> None:
            for _ in chat.stream([{"role": "user", "content": "go"}], []):
                pass

        store = tw.Store(tmp / "overhead.db")
        agent = tw.Agent("bench", model=chat, store=store)
        thread = agent.create_thread()

        def full_run() -> None:
            assert thread.generate_text("go").status == "success"

        bare()  # warm up the connection pool and imports
        result = {
            "bare_openai_s": best_of(repeats, bare),
            "openai_chat_s": best_of(repeats, model_only),
            "agent_run_s": best_of(repeats, full_run),
        }
        store.close()
    result["openai_chat_vs_bare"] = result["openai_chat_s"] / result["bare_openai_s"]
    result["agent_run_vs_bare"] = result["agent_run_s"] / result["bare_openai_s"]
    return result


def persisted(tmp: Path, tokens: int) -> dict[str, float]:
    with tw.Store(tmp / "persist.db") as store:
        model = tw.ScriptedModel(tokens_per_second=None)
        model.enqueue(" ".join(f"t{i}" for i in range(tokens)))
        thread = tw.Agent("bench", model=model, store=store).create_thread()
        t0 = time.perf_counter()
        result = thread.generate_text("go")
        elapsed = time.perf_counter() - t0
        rows = len(store.list_deltas(result.message_id or ""))
    return {"tokens_per_s": tokens / elapsed, "delta_rows": rows, "delta_rows_per_s": rows / elapsed}


# -- chunk -> another process -----------------------------------------------------------------


class _Timed:
    """Wraps a model to record when each text chunk was produced (cumulative length, time)."""

    def __init__(self, inner: tw.ScriptedModel, marks: list[tuple[int, float]]):
        self.inner, self.marks, self.name = inner, marks, inner.name

    def stream(self, messages: list, tools: list) -> object:
        inner_stream = self.inner.stream(messages, tools)
        marks = self.marks

        class S:
            def __iter__(self) -> object:
                total = 0
                for event in inner_stream:
                    if isinstance(event, tw.agent.TextDelta):
                        total += len(event.text)
                        marks.append((total, time.time()))
                    yield event

            def close(self) -> None:
                inner_stream.close()

        return S()


def role_writer(db: str, thread_id: str, tokens: int, out: str) -> None:
    store = tw.Store(db)
    model = tw.ScriptedModel(tokens_per_second=50)
    model.enqueue(" ".join(f"t{i}" for i in range(tokens)))
    marks: list[tuple[int, float]] = []
    agent = tw.Agent("bench", model=_Timed(model, marks), store=store)  # type: ignore[arg-type]
    print("ready", flush=True)
    sys.stdin.readline()
    agent.continue_thread(thread_id).generate_text("go")
    Path(out).write_text(json.dumps(marks))
    store.close()


def cross_process(tmp: Path, tokens: int) -> dict[str, float]:
    db = tmp / "cross.db"
    store = tw.Store(db)
    thread_id = store.create_thread().id
    seen: list[tuple[int, float]] = []
    total = [0]
    done = threading.Event()

    def on_event(event: tw.Event) -> None:
        if event.kind == "delta" and isinstance(event.row, tw.Delta):
            total[0] += len(event.row.text)
            seen.append((total[0], time.time()))
        elif event.kind == "message" and isinstance(event.row, tw.Message) and event.row.status == "success":
            done.set()

    store.subscribe(on_event, thread_id=thread_id)
    out = tmp / "marks.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    writer = subprocess.Popen([sys.executable, str(HERE), "writer", str(db), thread_id, str(tokens), str(out)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
    assert writer.stdout is not None and writer.stdin is not None
    assert writer.stdout.readline().strip() == "ready"
    writer.stdin.write("go\n")
    writer.stdin.flush()
    writer.wait(120)
    done.wait(10)
    store.close()
    marks = json.loads(out.read_text())
    lat, j = [], 0
    for end, produced in marks:
        while j < len(seen) and seen[j][0] < end:
            j += 1
        if j < len(seen):
            lat.append((seen[j][1] - produced) * 1000)
    return {"p50_ms": statistics.median(lat), "p99_ms": pct(lat, 0.99), "chunks": len(marks)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--chunks", type=int, default=2000, help="chunks in the overhead run")
    ap.add_argument("--repeats", type=int, default=5, help="best of this many runs")
    ap.add_argument("--tokens", type=int, default=20_000, help="tokens in the persisted-throughput run")
    ap.add_argument("--paced-tokens", type=int, default=150, help="tokens at 50/s in the cross-process run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        result = {
            "overhead": overhead(tmp, args.chunks, args.repeats),
            "persisted": persisted(tmp, args.tokens),
            "chunk_to_other_process": cross_process(tmp, args.paced_tokens),
        }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    o, p, c = result["overhead"], result["persisted"], result["chunk_to_other_process"]
    print(f"{args.chunks}-chunk answer from a local OpenAI-compatible server (best of {args.repeats})")
    print(f"  bare openai client   {o['bare_openai_s'] * 1000:8.1f} ms   (baseline)")
    print(f"  OpenAIChat.stream    {o['openai_chat_s'] * 1000:8.1f} ms   x{o['openai_chat_vs_bare']:.2f}")
    print(f"  Agent run, persisted {o['agent_run_s'] * 1000:8.1f} ms   x{o['agent_run_vs_bare']:.2f}")
    print(f"persisted run, unpaced ScriptedModel: {p['tokens_per_s']:,.0f} tokens/s, "
          f"{p['delta_rows']} delta rows ({p['delta_rows_per_s']:,.0f}/s)")  # fmt: skip
    print(f"model chunk -> subscriber in another process ({c['chunks']} chunks at 50 tokens/s)")
    print(f"  p50 {c['p50_ms']:.2f} ms   p99 {c['p99_ms']:.2f} ms")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "writer":
        role_writer(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        main()
