// Print the hostile corpus of tests/hostile-corpus.ts (the inputs the markdown renderer is tested
// and measured on) as JSON, [{"name", "text", "samples"}, ...], for the Python side: tests/test_transcript.py
// renders each into the static HTML transcript and checks that nothing in it is executable.
//
//   node scripts/hostile-corpus.mjs
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

const out = await build({
  entryPoints: [fileURLToPath(new URL("../tests/hostile-corpus.ts", import.meta.url))],
  bundle: true,
  format: "esm",
  platform: "node",
  write: false,
});
const module = await import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0].text).toString("base64")}`);
process.stdout.write(JSON.stringify(module.HOSTILE));
