#!/usr/bin/env node
// Hostile model output through the markdown renderer: how long each input of the hostile corpus
// (js/tests/hostile-corpus.ts) takes with the bounded renderer, against an ordinary 10 kB answer
// rendered in the same run; what a frame costs while such text streams in; and, as the "before",
// marked alone on the same inputs (what the renderer ran unbounded), in a worker with a time limit.
//
//   node bench/hostile_render.mjs [--json] [--browser] [--limit=SECONDS]
//
// The sources are bundled with the esbuild in js/node_modules (run `npm install` in js/ once; no
// `npm run build` needed) and run in jsdom, like the tests. jsdom builds DOM far slower than a
// browser: --browser also runs the same measurements in headless Chromium (`chromium` on PATH),
// where layout is included. --limit caps each marked-alone run (default 5 s).

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import vm from "node:vm";
import { Worker } from "node:worker_threads";

const JS = fileURLToPath(new URL("../js/", import.meta.url));
const require = createRequire(join(JS, "package.json"));
const args = process.argv.slice(2);
const asJson = args.includes("--json");
const browser = args.includes("--browser");
const limitMs = 1000 * Number(args.find((a) => a.startsWith("--limit="))?.split("=")[1] ?? 5);

// ---- the measurements, bundled with the sources so that jsdom and Chromium run the same code ----

const ENTRY = `
import { highlight } from "./src/highlight";
import { installHighlighter } from "./src/highlighter";
import * as md from "./src/markdown";
import { createMessageElement, updateMessageElement } from "./src/message";
import { message } from "./tests/fake-model";
import { HOSTILE } from "./tests/hostile-corpus";

installHighlighter(highlight); // as on a page where it came (views fetch it when they show code)

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const layout = (el) => void el.getBoundingClientRect().height; // forces layout in a browser

/** An ordinary answer of about 10 kB: headings, paragraphs, a list, a table, a code block. */
export function normalAnswer(size = 10_000) {
  const parts = [];
  for (let i = 0; parts.join("\\n\\n").length < size; i++) {
    parts.push(
      "## Part " + i,
      "The order **#" + i + "** shipped on _Monday_; see [the tracking page](https://example.com/t/" + i + ") or run \`track " + i + "\`.",
      "- **Carrier**: DHL\\n- **Weight**: 1.2 kg\\n- **Status**: in transit",
      "| step | when |\\n|---|---|\\n| packed | 09:00 |\\n| shipped | 11:30 |",
      "\`\`\`python\\ndef eta(order_id: int) -> str:\\n    return lookup(order_id).eta  # hours\\n\`\`\`",
    );
  }
  return parts.join("\\n\\n");
}

function timeRender(text, runs) {
  const host = document.createElement("div");
  document.body.append(host);
  const render = [], dom = [];
  let html = "";
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    html = md.renderMarkdown(text);
    const t1 = performance.now();
    host.innerHTML = html;
    layout(host);
    dom.push(performance.now() - t1);
    render.push(t1 - t0);
    host.innerHTML = "";
  }
  host.innerHTML = html;
  const out = {
    chars: text.length, render_ms: median(render), dom_ms: median(dom),
    elements: host.querySelectorAll("*").length, plain_parts: host.querySelectorAll(".tw-plain").length,
  };
  host.remove();
  return out;
}

/** Stream \`text\` into a message, \`step\` characters a frame; per-frame and final render times. */
function timeStream(text, step) {
  const m = message("bench", { status: "streaming" });
  const el = createMessageElement(m);
  document.body.append(el);
  const frames = [];
  for (let n = step; n < text.length + step; n += step) {
    const t0 = performance.now();
    updateMessageElement(el, m, text.slice(0, n), true);
    layout(el);
    frames.push(performance.now() - t0);
  }
  const t0 = performance.now();
  updateMessageElement(el, { ...m, status: "success" }, text, false);
  layout(el);
  const final = performance.now() - t0;
  el.remove();
  const sorted = [...frames].sort((a, b) => a - b);
  return {
    chars: text.length, frames: frames.length, frame_median_ms: median(frames),
    frame_p99_ms: sorted[Math.floor(sorted.length * 0.99)], frame_max_ms: sorted.at(-1),
    frames_total_ms: frames.reduce((a, b) => a + b, 0), final_ms: final,
  };
}

export const STREAMS = [
  ["ordinary 60 kB answer, 200 characters a frame (baseline)", () => normalAnswer(60_000), 200],
  ["40 kB of _a, 200 characters a frame", () => "_a".repeat(20_000), 200],
  ["1 MB of _a, 4 kB a frame", () => "_a".repeat(500_000), 4_000],
  ["1 MB of **a, 4 kB a frame", () => "**a".repeat(350_000), 4_000],
  ["1 MB of 'a\\\\n\\\\n' blocks, 4 kB a frame", () => "a\\n\\n".repeat(350_000), 4_000],
  ["5 MB single line, 20 kB a frame", () => "word ".repeat(1_000_000), 20_000],
  ["90 kB unclosed code fence, 1 kB a frame", () => "\`\`\`python\\n" + "def f(x):\\n    return '<b>' * x\\n".repeat(2_800), 1_000],
];

export function run() {
  const answer = normalAnswer();
  timeRender(answer, 5); // warm up: compile the grammars, JIT the parser
  const baseline = timeRender(answer, 21);
  const inputs = HOSTILE.map(({ name, text }) => ({ name, ...timeRender(text, text.length > 1_000_000 ? 1 : 3) }));
  const streams = STREAMS.map(([name, make, step]) => ({ name, step, ...timeStream(make(), step) }));
  const limits = Object.fromEntries(Object.entries(md).filter(([k, v]) => typeof v === "number").map(([k, v]) => [k, v]));
  return { baseline: { name: "ordinary 10 kB answer (baseline)", ...baseline }, inputs, streams, limits };
}

export const corpus = () => [{ name: "ordinary 10 kB answer (baseline)", text: normalAnswer() }, ...HOSTILE];
export const streamTexts = () => STREAMS.map(([name, make, step]) => ({ name, text: make(), step }));
`;

function bundle() {
  const esbuild = require("esbuild");
  const out = esbuild.buildSync({
    stdin: { contents: ENTRY, resolveDir: JS, sourcefile: "bench-entry.js", loader: "js" },
    bundle: true,
    format: "iife",
    globalName: "bench",
    target: "es2022",
    write: false,
    logLevel: "error",
  });
  return out.outputFiles[0].text;
}

function runInJsdom(code) {
  const { JSDOM } = require("jsdom");
  const { window } = new JSDOM("<!doctype html><html><body></body></html>", { pretendToBeVisual: true });
  Object.assign(globalThis, { window, document: window.document });
  vm.runInThisContext(code);
  return globalThis.bench;
}

function runInChromium(code) {
  const dir = mkdtempSync(join(tmpdir(), "tw-hostile-"));
  try {
    writeFileSync(join(dir, "bench.js"), code);
    writeFileSync(
      join(dir, "index.html"),
      '<!doctype html><html><body style="width:800px"><script src="bench.js"></script><script>' +
        'const out = document.createElement("pre"); out.id = "out";' +
        "try { out.textContent = JSON.stringify(bench.run()); } catch (e) { out.textContent = JSON.stringify({ error: String(e) }); }" +
        "document.body.replaceChildren(out);</script></body></html>",
    );
    const chromium = spawnSync(
      "chromium",
      ["--headless", "--disable-gpu", "--no-sandbox", "--allow-file-access-from-files", "--dump-dom", pathToFileURL(join(dir, "index.html")).href],
      { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, timeout: 600_000 },
    );
    if (chromium.error) throw chromium.error;
    const json = /<pre id="out">([\s\S]*)<\/pre>/.exec(chromium.stdout)?.[1];
    if (!json) throw new Error(`no result from chromium: ${chromium.stderr.slice(-500)}`);
    const text = json.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&amp;/g, "&");
    const result = JSON.parse(text);
    if (result.error) throw new Error(result.error);
    return { ...result, browser: /HeadlessChrome\/[\d.]+/.exec(chromium.stdout)?.[0] ?? "chromium" };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- the "before": marked alone, unbounded, in a worker that is stopped at the limit ----

const RAW_WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
import(workerData.marked).then(({ Marked }) => {
  const md = new Marked({ gfm: true, async: false });
  parentPort.on("message", (texts) => {
    let total = 0, max = 0, error = null;
    for (const text of texts) {
      const t0 = performance.now();
      try { md.parse(text); } catch (e) { error = String(e.message).split("\\n")[0]; }
      const ms = performance.now() - t0;
      total += ms; max = Math.max(max, ms);
      if (error) break;
    }
    parentPort.postMessage({ total, max, error });
  });
});`;

const markedUrl = pathToFileURL(join(JS, "node_modules/marked/lib/marked.esm.js")).href;

/** marked alone on each of `texts` in turn (a stream's frames, or one text); null past the limit. */
function rawMarked(texts) {
  // ~1 MB of stack, like a browser's main thread (a worker's default is 4 MB)
  const worker = new Worker(RAW_WORKER, { eval: true, workerData: { marked: markedUrl }, resourceLimits: { stackSizeMb: 1 } });
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      worker.terminate();
      resolve(null);
    }, limitMs);
    worker.once("message", (result) => {
      clearTimeout(timer);
      worker.terminate();
      resolve(result);
    });
    worker.postMessage(texts);
  });
}

const rawFigure = (r) => (r === null ? `> ${limitMs / 1000} s` : r.error ? `throws (${r.error})` : `${r.total.toFixed(1)} ms`);

// ---- run and print ----

const code = bundle();
const bench = runInJsdom(code);
const jsdomResult = bench.run();

const raw = {};
for (const { name, text } of bench.corpus()) raw[name] = await rawMarked([text]);
// Before, the whole unsettled tail was rendered on every frame: for a text without blank lines,
// the whole text so far. Only the reported 40 kB case; the others run far past any limit.
for (const { name, text, step } of bench.streamTexts()) {
  if (!name.startsWith("40 kB")) continue;
  const frames = [];
  for (let n = step; n < text.length + step; n += step) frames.push(text.slice(0, n));
  raw[`stream: ${name}`] = await rawMarked(frames);
}

const chromium = browser ? runInChromium(code) : null;

if (asJson) {
  const rawJson = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, v === null ? { over_limit_ms: limitMs } : v]));
  console.log(JSON.stringify({ jsdom: jsdomResult, chromium, marked_alone: rawJson }, null, 1));
} else {
  const ms = (x) => (x === undefined ? "" : x < 10 ? x.toFixed(2) : x.toFixed(1));
  const ratio = (x, base) => `×${(x / base).toFixed(1)}`;
  const b = jsdomResult.baseline;
  const bTotal = b.render_ms + b.dom_ms;
  console.log(`Bounded renderer, jsdom (node ${process.version}); figures are medians, in ms.`);
  console.log(`Limits: ${Object.entries(jsdomResult.limits).map(([k, v]) => `${k}=${v}`).join(", ")}\n`);
  const rows = [jsdomResult.baseline, ...jsdomResult.inputs];
  const cr = chromium ? Object.fromEntries([chromium.baseline, ...chromium.inputs].map((r) => [r.name, r])) : {};
  console.log(
    ["input".padEnd(54), "chars".padStart(9), "render".padStart(8), "DOM".padStart(8), "vs base".padStart(8),
      "elements".padStart(8), "plain".padStart(5), chromium ? "chromium render+DOM+layout".padStart(27) : "", "marked alone (before)"].join("  "),
  );
  for (const r of rows) {
    const c = cr[r.name];
    console.log(
      [r.name.padEnd(54), String(r.chars).padStart(9), ms(r.render_ms).padStart(8), ms(r.dom_ms).padStart(8),
        ratio(r.render_ms + r.dom_ms, bTotal).padStart(8), String(r.elements).padStart(8), String(r.plain_parts).padStart(5),
        chromium ? (c ? `${ms(c.render_ms)} + ${ms(c.dom_ms)}` : "").padStart(27) : "", rawFigure(raw[r.name])].join("  "),
    );
  }
  const cs = chromium ? Object.fromEntries(chromium.streams.map((s) => [s.name, s])) : {};
  console.log("\nStreaming through updateMessageElement, per frame (jsdom; chromium in brackets):");
  console.log(["stream".padEnd(58), "frames".padStart(6), "median".padStart(16), "p99".padStart(16), "max".padStart(16), "all frames".padStart(18), "final render".padStart(18)].join("  "));
  const pair = (a, c) => (c === undefined ? ms(a) : `${ms(a)} [${ms(c)}]`);
  for (const s of jsdomResult.streams) {
    const c = cs[s.name] ?? {};
    console.log(
      [s.name.padEnd(58), String(s.frames).padStart(6), pair(s.frame_median_ms, c.frame_median_ms).padStart(16),
        pair(s.frame_p99_ms, c.frame_p99_ms).padStart(16), pair(s.frame_max_ms, c.frame_max_ms).padStart(16),
        pair(s.frames_total_ms, c.frames_total_ms).padStart(18), pair(s.final_ms, c.final_ms).padStart(18)].join("  "),
    );
    const before = raw[`stream: ${s.name}`];
    if (before !== undefined) console.log(`${"".padEnd(60)}before, marked alone on every frame: ${rawFigure(before)}${before?.max ? `, worst frame ${ms(before.max)} ms` : ""}`);
  }
  if (chromium) console.log(`\nBrowser: ${chromium.browser}, headless, software rendering.`);
}
