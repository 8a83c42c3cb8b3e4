// Syntax highlighting for a few common languages. Grammars are registered on first use, and only
// code blocks that name their language are highlighted (no auto-detection).

import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import python from "highlight.js/lib/languages/python";
import sql from "highlight.js/lib/languages/sql";

const GRAMMARS = { bash, javascript, json, python, sql };
type Name = keyof typeof GRAMMARS;

const ALIASES: Record<string, Name> = {
  py: "python",
  python3: "python",
  js: "javascript",
  mjs: "javascript",
  ts: "javascript", // close enough, and one grammar fewer to ship
  typescript: "javascript",
  sh: "bash",
  shell: "bash",
  zsh: "bash",
  console: "bash",
};

/** Highlighted HTML for `code` (hljs escapes it), or null when the language is not bundled. */
export function highlight(code: string, lang: string): string | null {
  const lower = lang.toLowerCase();
  const name = ALIASES[lower] ?? (lower in GRAMMARS ? (lower as Name) : null);
  if (name === null) return null;
  if (!hljs.getLanguage(name)) hljs.registerLanguage(name, GRAMMARS[name]);
  return hljs.highlight(code, { language: name, ignoreIllegals: true }).value;
}
