// Print the JSON schema of the types of src/protocol.ts named on the command line, with every type
// they use, as {"definitions": {...}}. tests/test_wire.py compares it with the schema pydantic makes
// of the TypedDicts in threadwidget/widgets/_wire.py.
//
//   node scripts/wire-schema.mjs ChatTraits InboundMsg ...
import { fileURLToPath } from "node:url";
import { createGenerator } from "ts-json-schema-generator";

const js = (path) => fileURLToPath(new URL(`../${path}`, import.meta.url));
const generator = createGenerator({
  path: js("src/protocol.ts"),
  tsconfig: js("tsconfig.json"),
  expose: "export",
  topRef: true,
  jsDoc: "none",
  skipTypeCheck: true, // `npm run typecheck` does that
});
const definitions = {};
for (const name of process.argv.slice(2)) Object.assign(definitions, generator.createSchema(name).definitions);
console.log(JSON.stringify({ definitions }, null, 1));
