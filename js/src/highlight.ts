// Syntax highlighting for the languages of languages.ts; grammars are registered on first use.
// This is the entry of its own module, `highlight.js`, which no view's bundle contains: a view that
// shows code asks its kernel for it (see highlighter.ts).

import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import python from "highlight.js/lib/languages/python";
import sql from "highlight.js/lib/languages/sql";
import type { LanguageFn } from "highlight.js";
import type { Language } from "./languages";

const GRAMMARS: Record<Language, LanguageFn> = { bash, javascript, json, python, sql };

/** Highlighted HTML for `code` (hljs escapes it). */
export function highlight(code: string, language: Language): string {
  if (!hljs.getLanguage(language)) hljs.registerLanguage(language, GRAMMARS[language]);
  return hljs.highlight(code, { language, ignoreIllegals: true }).value;
}
