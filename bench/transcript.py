"""Benchmark of the static HTML transcript in a ChatView's display bundle.

Measures, in one run on this machine (SQLite), the median of ``--repeat`` runs of:
  * ChatView construction, ``_repr_mimebundle_()`` (with its transcript), and both, on a thread of
    10,000 short messages (a tool call every 50), against an empty thread;
  * the same on a thread of 50 long markdown answers (~2,000 characters each: lists, code, a
    table), where rendering the markdown is the cost;
  * the bundle without the transcript (anywidget's own), as the floor, and the bundle of a view
    shown again (its finished messages' markdown is remembered);
and the transcript's size in each case. ``--json`` prints one JSON object instead.

    .venv/bin/python bench/transcript.py [--json] [--repeat 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import comm
from comm.base_comm import BaseComm

import threadwidget as tw
from threadwidget.widgets._base import TwWidget
from threadwidget.widgets._transcript import render_markdown


class NullComm(BaseComm):
    """Stands in for the kernel's comm: sends nothing."""

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None, **k: Any) -> None:
        pass


comm.create_comm = NullComm  # type: ignore[assignment]

LONG_ANSWER = "\n\n".join(
    [
        "## Where your order is",
        "The order **#42** left the warehouse on _Monday_; see [the tracking page](https://example.com/t/42).",
        "- **Carrier**: DHL\n- **Weight**: 1.2 kg\n- **Status**: in transit\n- **Insured**: yes",
        "| step | when |\n|---|---|\n| packed | 09:00 |\n| shipped | 11:30 |\n| sorted | 18:10 |",
        "```python\ndef eta(order_id: int) -> str:\n    return lookup(order_id).eta  # hours\n```",
    ]
    * 5
)


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


def measure(store: tw.Store, thread_id: str, repeat: int) -> dict[str, Any]:
    def build() -> None:
        tw.ChatView(thread_id, store=store).close()

    def build_and_show() -> None:
        render_markdown.cache_clear()
        view = tw.ChatView(thread_id, store=store)
        view._repr_mimebundle_()
        view.close()

    def cold_bundle() -> None:
        render_markdown.cache_clear()
        view._repr_mimebundle_()

    view = tw.ChatView(thread_id, store=store)
    data, _ = view._repr_mimebundle_()
    out = {
        "construct_ms": median_ms(build, repeat),
        "bundle_ms": median_ms(cold_bundle, repeat),
        "bundle_again_ms": median_ms(view._repr_mimebundle_, repeat),
        "bundle_without_transcript_ms": median_ms(lambda: super(TwWidget, view)._repr_mimebundle_(), repeat),
        "construct_and_bundle_ms": median_ms(build_and_show, repeat),
        "transcript_chars": len(data["text/html"]),
    }
    view.close()
    return out


def run(tmp: Path, repeat: int) -> dict[str, Any]:
    with tw.Store(tmp / "transcript.db") as store:
        empty = store.create_thread(title="empty", agent="support")
        big = store.create_thread(title="big", agent="support")
        for i in range(5000):
            store.add_message(big.id, role="user", text=f"Where is order {i}?", agent="support")
            m = store.add_message(big.id, role="assistant", text=f"Order {i} shipped on Monday. " * 3, agent="support")
            if i % 25 == 0:
                args, result = f'{{"order_id": "{i}"}}', f'{{"order_id": "{i}", "status": "shipped"}}'
                call = store.add_tool_call(m.id, call_id=f"c{i}", name="lookup_order", arguments=args)
                store.update_tool_call(call.id, status="success", result=result)
        long = store.create_thread(title="long answers", agent="support")
        for i in range(25):
            store.add_message(long.id, role="user", text=f"Tell me about order {i}", agent="support")
            store.add_message(long.id, role="assistant", text=f"# Order {i}\n\n{LONG_ANSWER}", agent="support")
        tw.ChatView(empty.id, store=store)._repr_mimebundle_()  # imports, the bundle read, markdown-it set up
        return {
            "empty": measure(store, empty.id, repeat),
            "thread_of_10000": measure(store, big.id, repeat),
            "fifty_long_answers": measure(store, long.id, repeat),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--repeat", type=int, default=20, help="runs per figure (the median is shown)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        result = run(Path(d), args.repeat)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name, r in result.items():
        print(
            f"{name:>20}: construct {r['construct_ms']:6.2f} ms, bundle {r['bundle_ms']:6.2f} ms "
            f"(shown again {r['bundle_again_ms']:.2f} ms, "
            f"without transcript {r['bundle_without_transcript_ms']:.3f} ms), "
            f"both {r['construct_and_bundle_ms']:6.2f} ms; "
            f"transcript {r['transcript_chars']:,} characters"
        )


if __name__ == "__main__":
    main()
