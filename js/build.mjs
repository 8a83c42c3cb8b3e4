// Bundle each widget as a self-contained ES module (anywidget's `_esm`), the highlighter as a module
// of its own, and the shared stylesheet (`_css`) into ../threadwidget/static/. highlight.js
// (src/highlight.ts) is in no view's bundle: the kernel sends it when a view first shows code (see
// src/highlighter.ts). `--watch` rebuilds on change, for ANYWIDGET_HMR=1.
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import * as esbuild from "esbuild";

const watch = process.argv.includes("--watch");
const OUT = "../threadwidget/static";
const VIEWS = { chat: "src/chat.ts", tools: "src/tools.ts", threadlist: "src/threadlist.ts", app: "src/app.ts" };

const common = {
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: !watch,
  sourcemap: watch ? "inline" : false,
  logLevel: "info",
};

const hash = (text) => createHash("sha256").update(text).digest("hex").slice(0, 16);

if (watch) {
  const entryPoints = { ...VIEWS, highlight: "src/highlight.ts", widget: "src/styles.css" };
  await (await esbuild.context({ ...common, entryPoints, outdir: OUT })).watch();
} else {
  await mkdir(OUT, { recursive: true });
  const highlighter = await esbuild.build({ ...common, entryPoints: ["src/highlight.ts"], write: false });
  const highlightJs = highlighter.outputFiles[0].text;
  await writeFile(`${OUT}/highlight.js`, highlightJs);
  console.log(`  ${OUT}/highlight.js  ${highlightJs.length} bytes`);
  await esbuild.build({
    ...common,
    entryPoints: { ...VIEWS, widget: "src/styles.css" },
    outdir: OUT,
    define: { __TW_HIGHLIGHTER__: JSON.stringify(hash(highlightJs)) },
  });
}
