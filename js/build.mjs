// Bundle each widget as an ES module (anywidget's `_esm`), the highlighter as a module of its own,
// and the shared stylesheet (`_css`), into ../threadwidget/static/.
//
// anywidget sends a widget's `_esm` in full with every comm open, so a view's bundle is shipped
// packed: `chat.js` is src/loader.ts with the real bundle inside as base64 of its gzip (a third of
// its bytes as JSON text), unpacked and imported in the browser. highlight.js (src/highlight.ts)
// is in no view's bundle: the kernel sends it when a view first shows code (see highlighter.ts).
//
// `--watch` rebuilds on change, for ANYWIDGET_HMR=1: unminified bundles with inline source maps,
// not packed.
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

const watch = process.argv.includes("--watch");
const OUT = "../threadwidget/static";
const VIEWS = {
  chat: "src/chat.ts",
  tools: "src/tools.ts",
  threadlist: "src/threadlist.ts",
  app: "src/app.ts",
  usage: "src/usage.ts", // the only bundle with Chart.js in it
  evalreport: "src/evalreport.ts",
};

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
  await esbuild.build({ ...common, entryPoints: { widget: "src/styles.css" }, outdir: OUT });

  const quiet = { ...common, logLevel: "warning", write: false }; // sizes are printed below
  const highlighter = await esbuild.build({ ...quiet, entryPoints: ["src/highlight.ts"] });
  const highlightJs = highlighter.outputFiles[0].text;
  await writeFile(`${OUT}/highlight.js`, highlightJs);

  const views = await esbuild.build({
    ...quiet,
    entryPoints: VIEWS,
    outdir: OUT,
    define: { __TW_HIGHLIGHTER__: JSON.stringify(hash(highlightJs)) },
  });
  const rows = [["highlight.js", highlightJs.length, "-"]];
  for (const file of views.outputFiles) {
    const name = file.path.split("/").pop();
    const packed = gzipSync(file.contents, { level: 9 }).toString("base64");
    const loader = await esbuild.build({
      ...quiet,
      entryPoints: ["src/loader.ts"],
      define: { __TW_PACKED__: JSON.stringify(packed), __TW_KEY__: JSON.stringify(`${name}:${hash(file.text)}`) },
    });
    const esm = loader.outputFiles[0].text;
    await writeFile(`${OUT}/${name}`, esm);
    rows.push([name, file.contents.length, esm.length]);
  }
  console.log("\n  module            bundle   as shipped");
  for (const [name, size, shipped] of rows) {
    console.log(`  ${name.padEnd(14)} ${String(size).padStart(9)} ${String(shipped).padStart(12)}`);
  }
}
