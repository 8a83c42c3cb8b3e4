"""Benchmark of a ChatView on a long thread: construction in Python and first paint in Chromium.

Measures, in one run on this machine:
  * ``tw.ChatView(thread_id, store=store)`` construction on a thread of 10,000 messages (user and
    assistant alternating, markdown answers with lists, inline code and a fenced code block in every
    ~10th message), against an empty thread (the baseline);
  * the bytes of the state the browser receives for each (JSON of ``get_state()`` less the bundle's
    ``_esm``/``_css``, which are reported on their own);
  * first paint in headless Chromium: the real bundle ``threadwidget/static/chat.js`` imported as an
    ES module in a fresh page (as anywidget does: from a Blob URL, awaiting a default export that is
    a function), ``render({model, el})`` on a fake anywidget model holding that state, then the
    time to the first paint (``first-contentful-paint``: the page is blank before render) and to two
    animation frames, checking the DOM holds the state's ``[data-testid=tw-message]``s; the time
    until every message is rendered (a view renders what fills it first, the rest as placeholders
    it fills in idle time), checking they are in the state's order; and the time until every code
    block is highlighted, the model answering the view's request for the highlighter at once (no
    kernel: the round trip is not counted).
Prints figures and ratios (10,000 messages vs empty); ``--json`` prints one JSON object instead.
``--before DIR`` also measures the bundles of another build (a ``static/`` folder, e.g. of the
previous commit), interleaved with this one's in the same run.

    .venv/bin/python bench/paint.py [--json] [--messages 10000] [--runs 7] [--before DIR]
"""

from __future__ import annotations

import argparse
import base64
import gzip
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
# blob URL as anywidget imports `_esm`, then render() timed to the first paint. The model answers
# a request for the highlighter at once, with the module packed as the kernel packs it.
MEASURE = """async ({src, css, stateJson, highlighter, codeBlocks}) => {
  const style = document.createElement("style");
  style.textContent = css;
  document.head.append(style);
  const url = URL.createObjectURL(new Blob([src], {type: "text/javascript"}));
  const tImport = performance.now();
  const mod = await import(url);
  const widget = typeof mod.default === "function" ? await mod.default() : mod.default;
  const importMs = performance.now() - tImport;
  let t = performance.now();
  const traits = JSON.parse(stateJson);
  const parseMs = performance.now() - t;
  const listeners = new Map();
  const emit = (event, ...args) => { for (const cb of listeners.get(event) ?? []) cb(...args); };
  let asked = 0;
  const model = {
    get: (name) => traits[name],
    set: (name, value) => { traits[name] = value; },
    on: (event, cb) => { if (!listeners.has(event)) listeners.set(event, new Set()); listeners.get(event).add(cb); },
    off: (event, cb) => { listeners.get(event)?.delete(cb); },
    send: (msg) => {
      if (msg.kind !== "highlighter") return;
      asked++;
      setTimeout(() => emit("msg:custom", {kind: "highlighter", source: highlighter}, []), 0);
    },
    save_changes: () => {},
  };
  let fcp = null;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (e.name === "first-contentful-paint") fcp = e.startTime;
  }).observe({type: "paint", buffered: true});
  const el = document.getElementById("root");
  const t0 = performance.now();
  widget.render({model, el});
  const renderMs = performance.now() - t0;
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  const rafMs = performance.now() - t0;
  const shown = () => [...el.querySelectorAll("[data-testid=tw-message]")];
  const messages = shown().length;
  const renderedAtFrames = shown().filter((m) => m.dataset.role).length;
  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  // a message is rendered once it says whose it is (a placeholder is an empty element)
  for (let i = 0; !shown().every((m) => m.dataset.role) && i < 500; i++) await frame();
  const renderedMs = shown().every((m) => m.dataset.role) ? performance.now() - t0 : null;
  const code = () => [...el.querySelectorAll("pre code.language-python")];
  const done = () => code().length === codeBlocks && code().every((c) => c.querySelector("[class^=hljs-]"));
  for (let i = 0; !done() && i < 500; i++) await frame();
  const highlightedMs = codeBlocks && done() ? performance.now() - t0 : null;
  for (let i = 0; fcp === null && i < 100; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  // a second view of the same kind on the page: anywidget imports its `_esm` again
  const url2 = URL.createObjectURL(new Blob([src], {type: "text/javascript"}));
  t = performance.now();
  const mod2 = await import(url2);
  if (typeof mod2.default === "function") await mod2.default();
  const secondImportMs = performance.now() - t;
  return {importMs, secondImportMs, parseMs, renderMs, rafMs, fcpMs: fcp === null ? null : fcp - t0,
          importFcpMs: fcp === null ? null : fcp - tImport, renderedMs, highlightedMs, asked, messages,
          renderedAtFrames, order: shown().map((m) => m.dataset.messageId),
          codeBlocks: code().length, highlighted: code().filter((c) => c.querySelector("[class^=hljs-]")).length};
}"""


def paint(browser: Any, build: dict[str, str], state_json: str, expected: dict[str, Any]) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    try:
        page = context.new_page()
        page.set_content(PAGE)
        out = page.evaluate(MEASURE, {**build, "stateJson": state_json, "codeBlocks": expected["code_blocks"]})
    finally:
        context.close()
    if out["messages"] != len(expected["ids"]):
        raise AssertionError(f"the page shows {out['messages']} messages, expected {len(expected['ids'])}")
    if out["renderedMs"] is None:
        raise AssertionError("some messages were never rendered")
    if out.pop("order") != expected["ids"]:
        raise AssertionError("the page shows the messages out of order")
    if out["fcpMs"] is None:
        raise AssertionError("Chromium reported no first-contentful-paint")
    if out["codeBlocks"] != expected["code_blocks"] or (out["codeBlocks"] and out["highlightedMs"] is None):
        raise AssertionError("the code blocks were never all shown highlighted")
    return out


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("fcpMs", "importFcpMs", "rafMs", "renderMs", "renderedMs", "importMs", "secondImportMs", "parseMs")
    out = {k: statistics.median(r[k] for r in runs) for k in keys}
    out["fcp_max_ms"] = max(r["fcpMs"] for r in runs)
    timed = [r["highlightedMs"] for r in runs if r["highlightedMs"] is not None]
    out["highlightedMs"] = statistics.median(timed) if timed else None
    first = runs[0]
    out["rendered_at_two_frames"] = statistics.median(r["renderedAtFrames"] for r in runs)
    out.update(messages_in_dom=first["messages"], code_blocks=first["codeBlocks"], highlighted=first["highlighted"],
               asked=first["asked"])  # fmt: skip
    return out


def read_build(static: Path) -> dict[str, str]:
    highlighter = ""
    if (static / "highlight.js").is_file():
        data = gzip.compress((static / "highlight.js").read_bytes(), compresslevel=9, mtime=0)
        highlighter = base64.b64encode(data).decode("ascii")
    return {"src": (static / "chat.js").read_text(), "css": (static / "widget.css").read_text(),
            "highlighter": highlighter}  # fmt: skip


def browser_paint(
    builds: dict[str, Path], states: dict[str, str], expected: dict[str, dict[str, Any]], runs: int
) -> dict[str, dict[str, Any]]:
    """Per build, per thread: the summary of ``runs`` fresh pages, all interleaved."""
    from playwright.sync_api import sync_playwright

    loaded = {name: read_build(static) for name, static in builds.items()}
    results: dict[tuple[str, str], list[dict[str, Any]]] = {(b, k): [] for b in builds for k in states}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=ARGS, headless=True)
        try:
            for build in loaded.values():  # warm-up, not counted
                paint(browser, build, states["empty"], expected["empty"])
            for _ in range(runs):  # interleaved, so that noise falls on all alike
                for (name, key), out in results.items():
                    out.append(paint(browser, loaded[name], states[key], expected[key]))
        finally:
            browser.close()
    return {name: {key: summary(results[name, key]) for key in states} for name in builds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--messages", type=int, default=10_000, help="messages in the long thread")
    ap.add_argument("--repeat", type=int, default=20, help="constructions timed per thread")
    ap.add_argument("--runs", type=int, default=7, help="fresh pages timed per thread")
    ap.add_argument("--before", type=Path, help="a static/ folder of another build, measured in the same run")
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
    expected: dict[str, dict[str, Any]] = {}
    for key, state in states.items():
        shown = state["messages"]
        expected[key] = {"ids": [m["id"] for m in shown], "code_blocks": sum("```python" in m["text"] for m in shown)}
    builds = {"this build": STATIC, **({"before": args.before} if args.before else {})}
    paints = browser_paint(builds, state_json, expected, args.runs)
    result: dict[str, Any] = {
        "messages_in_thread": args.messages,
        "fill_s": fill_s,
        "construction_ms": construct,
        "state_bytes": {k: len(v.encode()) for k, v in state_json.items()},
        "builds": {
            name: {
                "bundle_bytes": {f: (static / f).stat().st_size for f in ("chat.js", "widget.css")},
                "paint": paints[name],
            }
            for name, static in builds.items()
        },
    }
    c, s = result["construction_ms"], result["state_bytes"]
    for measured in result["builds"].values():
        b = measured["paint"]
        measured["ratios"] = {
            "first_paint": b["long"]["fcpMs"] / b["empty"]["fcpMs"],
            "import_first_paint": b["long"]["importFcpMs"] / b["empty"]["importFcpMs"],
            "two_frames": b["long"]["rafMs"] / b["empty"]["rafMs"],
            "render_call": b["long"]["renderMs"] / b["empty"]["renderMs"],
        }
    result["ratios"] = {"construction": c["long"] / c["empty"], "state_bytes": s["long"] / s["empty"]}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    r = result["ratios"]
    n = f"{args.messages:,}"
    window = len(expected["long"]["ids"])
    print(f"thread of {n} messages written in {fill_s:.1f} s; the view's window holds {window} of them")
    print(f"ChatView construction, median of {args.repeat}: thread of {n} {c['long']:.2f} ms, "
          f"empty thread {c['empty']:.2f} ms (x{r['construction']:.2f})")  # fmt: skip
    print(f"state sent to the browser (less _esm/_css): {s['long']:,} bytes, empty thread {s['empty']:,} bytes "
          f"(x{r['state_bytes']:.1f})")  # fmt: skip
    figures = (
        ("render() -> first paint", "fcpMs"), ("import -> first paint", "importFcpMs"),
        ("render() -> two frames", "rafMs"), ("render() call itself", "renderMs"),
        ("render() -> all messages rendered", "renderedMs"), ("module import", "importMs"),
        ("a second view's import", "secondImportMs"), ("render() -> code highlighted", "highlightedMs"),
    )  # fmt: skip
    for name, measured in result["builds"].items():
        b = measured["paint"]
        size = measured["bundle_bytes"]["chat.js"]
        print(f"\n{name}: chat.js {size:,} bytes; Chromium, median of {args.runs} fresh pages")
        for label, key in figures:
            long, empty = b["long"][key], b["empty"][key]
            ratio = f"(x{long / empty:.1f})" if long is not None and empty else ""
            print(f"  {label:>33}: thread of {n} {_ms(long)}   empty {_ms(empty)}   {ratio}")
        print(f"  the page shows {b['long']['messages_in_dom']} messages ({b['long']['rendered_at_two_frames']:.0f} "
              f"rendered after two frames), {b['long']['code_blocks']} code blocks "
              f"({b['long']['highlighted']} highlighted in the end, highlighter asked for "
              f"{b['long']['asked']} time(s)); empty: {b['empty']['messages_in_dom']} messages")  # fmt: skip
        print(f"  first paint, worst run: {b['long']['fcp_max_ms']:.1f} ms (empty {b['empty']['fcp_max_ms']:.1f} ms)")
        print(f"  JSON.parse of the state {b['long']['parseMs']:.2f} ms (empty {b['empty']['parseMs']:.2f} ms)")


def _ms(value: float | None) -> str:
    return "      -  " if value is None else f"{value:7.1f} ms"


if __name__ == "__main__":
    main()
