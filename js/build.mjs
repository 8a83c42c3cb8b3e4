// Bundle each widget as a self-contained ES module (anywidget's `_esm`) and the shared stylesheet
// (`_css`) into ../threadwidget/static/. `--watch` rebuilds on change, for ANYWIDGET_HMR=1.
import * as esbuild from "esbuild";

const watch = process.argv.includes("--watch");

const options = {
  entryPoints: {
    chat: "src/chat.ts",
    tools: "src/tools.ts",
    threadlist: "src/threadlist.ts",
    app: "src/app.ts",
    widget: "src/styles.css",
  },
  outdir: "../threadwidget/static",
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: !watch,
  sourcemap: watch ? "inline" : false,
  logLevel: "info",
};

if (watch) {
  await (await esbuild.context(options)).watch();
} else {
  await esbuild.build(options);
}
