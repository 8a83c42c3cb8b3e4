// Code highlighting arrives after the view. highlight.js (highlight.ts, ~40 kB) is in no view's
// bundle: a view showing a code block in a highlighted language asks its kernel for the module
// (`{kind: "highlighter"}`), the reply carries it packed, and it is imported from a Blob URL. It is
// kept on `globalThis` under its content hash, so every view on the page (chats, apps, any model)
// shares one load and later views never ask. Until it is there, such code is shown plain (escaped)
// with the WAITING class, and the views render those messages again when it comes.

import type { Language } from "./languages";
import { importSource, unpack } from "./packed";

/** Marks a code block shown plain until the highlighter arrives. */
export const WAITING = "tw-hl-wait";

export type Highlight = (code: string, language: Language) => string;

declare const __TW_HIGHLIGHTER__: string | undefined;
/** The page-wide slot's name: the highlighter module's content hash (set by the build). */
export const HIGHLIGHTER_KEY = `threadwidget.highlighter.${typeof __TW_HIGHLIGHTER__ === "string" ? __TW_HIGHLIGHTER__ : "dev"}`;

interface Slot {
  highlight: Highlight | null;
  /** Whose request is out (a model); null when none is. */
  asker: object | null;
  /** Loading failed: code stays plain, and nobody asks again. */
  failed: boolean;
  listeners: Set<() => void>;
}

function slot(): Slot {
  const page = globalThis as Record<string, unknown>;
  return (page[HIGHLIGHTER_KEY] ??= { highlight: null, asker: null, failed: false, listeners: new Set() }) as Slot;
}

function notify(s: Slot): void {
  for (const listener of [...s.listeners]) listener();
}

/** Highlighted HTML for `code`, or null while the highlighter is not loaded. */
export function highlightWith(code: string, language: Language): string | null {
  const highlight = slot().highlight;
  return highlight === null ? null : highlight(code, language);
}

export const highlighterLoaded = (): boolean => slot().highlight !== null;

/** Whether a view showing code that waits should ask: the highlighter is not here, nor asked for. */
export function mayAskForHighlighter(): boolean {
  const s = slot();
  return s.highlight === null && s.asker === null && !s.failed;
}

/** Ask for the highlighter through `owner` (a model) with `send`, unless it is here or asked for. */
export function requestHighlighter(owner: object, send: () => void): void {
  if (!mayAskForHighlighter()) return;
  slot().asker = owner;
  send();
}

/** `owner` goes away: if its request is still out, another view may ask. */
export function releaseHighlighter(owner: object): void {
  const s = slot();
  if (s.asker !== owner) return;
  s.asker = null;
  if (s.highlight === null) notify(s);
}

/** Call `listener` when the highlighter arrives, or when a view may ask for it again. */
export function onHighlighter(listener: () => void): () => void {
  const s = slot();
  s.listeners.add(listener);
  return () => s.listeners.delete(listener);
}

export function installHighlighter(highlight: Highlight): void {
  const s = slot();
  if (s.highlight !== null) return;
  s.highlight = highlight;
  s.asker = null;
  notify(s);
}

/** Install the highlighter from its packed module (the reply to a request). */
export async function loadHighlighter(packed: string): Promise<void> {
  if (highlighterLoaded()) return;
  try {
    const module = await importSource<{ highlight: Highlight }>(await unpack(packed));
    installHighlighter(module.highlight);
  } catch (error) {
    slot().failed = true;
    console.warn("threadwidget: code highlighting is off, its module did not load", error);
  }
}
