// The page-wide highlighter slot (src/highlighter.ts) lives on globalThis: tests set it up.

import { highlight } from "../src/highlight";
import { type Highlight, HIGHLIGHTER_KEY, installHighlighter } from "../src/highlighter";

/** A page that has no highlighter yet, and has not asked for one. */
export function noHighlighter(): void {
  delete (globalThis as Record<string, unknown>)[HIGHLIGHTER_KEY];
}

/** A page whose highlighter has come (highlight.js by default). */
export function withHighlighter(fn: Highlight = highlight): void {
  noHighlighter();
  installHighlighter(fn);
}
