"""Benchmark of a ChatView on a long thread: construction in Python and first paint in Chromium.

Measures, in one run on this machine:
  * ``tw.ChatView(thread_id, store=store)`` construction on a thread of 10,000 messages (user and
    assistant alternating, markdown answers with lists, inline code and a fenced code block in every
    ~10th message), against an empty thread (the baseline);
  * the bytes of the state the browser receives for each (JSON of ``get_state()`` less the bundle's
    ``_esm``/``_css``, which are reported on their own);
  * first paint in headless Chromium: the real bundle ``threadwidget/static/chat.js`` imported as an
    ES module in a fresh page, ``render({model, el})`` on a fake anywidget model holding that state,
    then the time to the first paint (``first-contentful-paint``: the page is blank before render)
    and to two animation frames, checking the DOM holds the state's ``[data-testid=tw-message]``s.
Prints figures and ratios (10,000 messages vs empty); ``--json`` prints one JSON object instead.

    .venv/bin/python bench/paint.py [--json] [--messages 10000] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import threadwidget as tw

STATIC = Path(tw.__file__).resolve().parent / "static"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
# The page paints nothing before render(), so its first-contentful-paint is the view's first paint.
PAGE = "<!doctype html><meta charset='utf-8'><body><div id='root' style='width:760px'></div></body>"

CODE = '''```python
def shipping_status(order_id: str) -> str:
    """Look the order up and say where it is."""
    order = orders.get(order_id)
    if order is None:
        raise KeyError(f"no order {order_id}")
    for event in reversed(order.events):
        if event.kind in {"shipped", "delivered"}:
            return f"{event.kind} on {event.at:%Y-%m-%d}"
    return "not shipped yet"
```
'''


def answer(i: int) -> str:
    text = (
        f"Order **{i}** left the warehouse on Tuesday. The carrier scanned it at the `hub-{i % 7}` depot, "
        "so it should arrive within two working days.\n\n"
        "What happens next:\n\n"
        f"- the carrier sends a tracking link to the address on file (`order.email`)\n"
        f"- you can change the delivery slot until {i % 12 + 8}:00 the day before\n"
        "- returns are free for 30 days; see [the policy](https://example.com/returns)\n\n"
        "If the parcel has not arrived by Friday, reply here and I will open a claim with the carrier.\n"
    )
    return text + ("\nThis is the lookup I ran:\n\n" + CODE if i % 5 == 0 else "")


def build(store: tw.Store, count: int) -> tuple[str, str]:
    big = store.create_thread(title="Order help", agent="support")
    empty = store.create_thread(title="Empty", agent="support")
    for i in range(count // 2):
        store.add_message(big.id, role="user", text=f"Where is my order {i}? It said two days.", agent="support")
        store.add_message(big.id, role="assistant", text=answer(i), agent="support", model="scripted")
    return big.id, empty.id


def construction(store: tw.Store, thread_id: str, repeat: int) -> tuple[float, dict[str, Any]]:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        view = tw.ChatView(thread_id, store=store)
        samples.append(time.perf_counter() - t0)
        state = view.get_state()  # what a new comm (a page load) sends
        view.close()
    return statistics.median(samples) * 1000, {k: v for k, v in state.items() if k not in ("_esm", "_css")}


# In the page: a fake anywidget model (like js/tests/fake-model.ts), the bundle imported from a
# blob URL, then render() timed to the first paint.
MEASURE = """async ({src, css, stateJson}) => {
  const style = document.createElement("style");
  style.textContent = css;
  document.head.append(style);
  const url = URL.createObjectURL(new Blob([src], {type: "text/javascript"}));
  let t = performance.now();
  const mod = await import(url);
  const importMs = performance.now() - t;
  t = performance.now();
  const traits = JSON.parse(stateJson);
  const parseMs = performance.now() - t;
  const listeners = new Map();
  const model = {
    get: (name) => traits[name],
    set: (name, value) => { traits[name] = value; },
    on: (event, cb) => { if (!listeners.has(event)) listeners.set(event, new Set()); listeners.get(event).add(cb); },
    off: (event, cb) => { listeners.get(event)?.delete(cb); },
    send: () => {},
    save_changes: () => {},
  };
  let fcp = null;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (e.name === "first-contentful-paint") fcp = e.startTime;
  }).observe({type: "paint", buffered: true});
  const el = document.getElementById("root");
  const t0 = performance.now();
  mod.default.render({model, el});
  const renderMs = performance.now() - t0;
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  const rafMs = performance.now() - t0;
  const messages = el.querySelectorAll("[data-testid=tw-message]").length;
  for (let i = 0; fcp === null && i < 100; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  const code = [...el.querySelectorAll("pre code")];
  return {importMs, parseMs, renderMs, rafMs, fcpMs: fcp === null ? null : fcp - t0, messages,
          codeBlocks: code.length, highlighted: code.filter((c) => c.querySelector("[class^=hljs-]")).length};
}"""


def paint(browser: Any, src: str, css: str, state_json: str, expected: int) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    try:
        page = context.new_page()
        page.set_content(PAGE)
        out = page.evaluate(MEASURE, {"src": src, "css": css, "stateJson": state_json})
    finally:
        context.close()
    if out["messages"] != expected:
        raise AssertionError(f"the page shows {out['messages']} messages, expected {expected}")
    if out["fcpMs"] is None:
        raise AssertionError("Chromium reported no first-contentful-paint")
    return out


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("fcpMs", "rafMs", "renderMs", "importMs", "parseMs")
    out = {k: statistics.median(r[k] for r in runs) for k in keys}
    out["fcp_max_ms"] = max(r["fcpMs"] for r in runs)
    first = runs[0]
    out.update(messages_in_dom=first["messages"], code_blocks=first["codeBlocks"], highlighted=first["highlighted"])
    return out


def browser_paint(states: dict[str, str], expected: dict[str, int], runs: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    src = (STATIC / "chat.js").read_text()
    css = (STATIC / "widget.css").read_text()
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in states}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS, headless=True)
        try:
            paint(browser, src, css, states["empty"], expected["empty"])  # warm-up, not counted
            for _ in range(runs):  # interleaved, so that noise falls on both alike
                for key, state in states.items():
                    results[key].append(paint(browser, src, css, state, expected[key]))
        finally:
            browser.close()
    return {k: summary(v) for k, v in results.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--messages", type=int, default=10_000, help="messages in the long thread")
    ap.add_argument("--repeat", type=int, default=20, help="constructions timed per thread")
    ap.add_argument("--runs", type=int, default=7, help="fresh pages timed per thread")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d, tw.Store(Path(d) / "paint.db") as store:
        t0 = time.perf_counter()
        big, empty = build(store, args.messages)
        fill_s = time.perf_counter() - t0
        tw.ChatView(empty, store=store).close()  # imports and the bundle read, once
        construct, states = {}, {}
        for key, thread_id in (("empty", empty), ("long", big)):
            construct[key], states[key] = construction(store, thread_id, args.repeat)
    state_json = {k: json.dumps(v, separators=(",", ":")) for k, v in states.items()}
    expected = {k: len(v["messages"]) for k, v in states.items()}
    browser = browser_paint(state_json, expected, args.runs)
    result: dict[str, Any] = {
        "messages_in_thread": args.messages,
        "fill_s": fill_s,
        "construction_ms": construct,
        "state_bytes": {k: len(v.encode()) for k, v in state_json.items()},
        "bundle_bytes": {name: (STATIC / name).stat().st_size for name in ("chat.js", "widget.css")},
        "paint": browser,
    }
    c, s, b = result["construction_ms"], result["state_bytes"], result["paint"]
    result["ratios"] = {
        "construction": c["long"] / c["empty"],
        "state_bytes": s["long"] / s["empty"],
        "first_paint": b["long"]["fcpMs"] / b["empty"]["fcpMs"],
        "two_frames": b["long"]["rafMs"] / b["empty"]["rafMs"],
        "render_call": b["long"]["renderMs"] / b["empty"]["renderMs"],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    r = result["ratios"]
    n = f"{args.messages:,}"
    print(f"thread of {n} messages written in {fill_s:.1f} s; the view's window holds {expected['long']} of them")
    print(f"ChatView construction, median of {args.repeat}: thread of {n} {c['long']:.2f} ms, "
          f"empty thread {c['empty']:.2f} ms (x{r['construction']:.2f})")  # fmt: skip
    print(f"state sent to the browser (less _esm/_css): {s['long']:,} bytes, empty thread {s['empty']:,} bytes "
          f"(x{r['state_bytes']:.1f}); bundle chat.js {result['bundle_bytes']['chat.js']:,} bytes")  # fmt: skip
    print(f"Chromium, render() -> first paint, median of {args.runs} fresh pages")
    for label, key in (("first-contentful-paint", "fcpMs"), ("two animation frames", "rafMs"),
                       ("render() call itself", "renderMs")):  # fmt: skip
        ratio = b["long"][key] / b["empty"][key]
        print(f"  {label:>22}: thread of {n} {b['long'][key]:7.1f} ms   empty {b['empty'][key]:6.1f} ms   "
              f"(x{ratio:.1f})")  # fmt: skip
    print(f"  the page shows {b['long']['messages_in_dom']} messages, {b['long']['code_blocks']} code blocks "
          f"({b['long']['highlighted']} highlighted); empty: {b['empty']['messages_in_dom']} messages")  # fmt: skip
    print(f"  first paint, worst run: {b['long']['fcp_max_ms']:.1f} ms (empty {b['empty']['fcp_max_ms']:.1f} ms)")
    print(f"  not counted: module import {b['long']['importMs']:.1f} ms, JSON.parse of the state "
          f"{b['long']['parseMs']:.2f} ms (empty {b['empty']['parseMs']:.2f} ms)")  # fmt: skip


if __name__ == "__main__":
    main()
