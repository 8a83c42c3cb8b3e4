// Untrusted model markdown → sanitized HTML.
//
// Two layers: marked renders raw HTML in the source as text (so none of it executes or even
// parses), and DOMPurify then removes anything dangerous that markdown itself can produce:
// only http(s)/mailto/relative URLs, no images or media (a remote image is a way to leak the
// conversation), no forms, frames, styles, ids or event handlers; links open in a new tab with
// `rel="noopener noreferrer"`.
//
// Hostile output degrades, never kills. marked recurses once per nesting level (a few thousand
// `>` overflow the stack) and is quadratic on some inline patterns (40 kB of `_a` takes seconds),
// and a dense text makes tens of thousands of elements. So before parsing, one linear pass over
// the text prices each block (lines between blank lines) against the bounds below: a block past
// the emphasis budget is rendered without emphasis, one past the others, and text past the size
// limit, as plain text. Nothing is dropped, and whatever still goes wrong is caught: the text is
// then shown plain. tests/hostile-corpus.ts keeps the inputs these bounds were measured on, and
// bench/hostile_render.mjs the timings.

import DOMPurify from "dompurify";
import { Marked, type MarkedExtension, type Tokens } from "marked";
import { highlighterLoaded, highlightWith, WAITING } from "./highlighter";
import { languageOf } from "./languages";

/** Markdown is parsed for this many characters at most (cut at a line); the rest is plain text.
 * Bounds the parsing per render: ~10 ms per 10 kB of ordinary markdown in Chromium. */
export const MAX_MARKDOWN_CHARS = 100_000;
/** Containers (`>`, list levels) on one line; deeper blocks are plain. marked recurses per level
 * and overflows the stack at ~1,000–3,000; real answers nest 2–4 deep. */
export const MAX_NESTING = 16;
/** Work allowed per render for emphasis, in openers × delimiter runs (`*`, `_`, `~`) summed over
 * blocks: marked pairs each opener with the runs after it, quadratic in a block. ~20 ms at most. */
export const EMPHASIS_BUDGET = 200_000;
/** Work allowed per render for long words, in stops × word length: at each `! * _ ~` or backtick
 * in a word, marked's GFM text rule rescans the word to its end for an e-mail `@`. ~4 ms at most. */
export const WORD_BUDGET = 4_000_000;
/** Elements a render may create, estimated from lines and markup characters: parsing,
 * sanitizing and laying out one takes ~20 µs in Chromium, so ~0.1 s. A long answer makes ~1,000. */
export const ELEMENT_BUDGET = 5_000;
/** Characters of code highlighted per render; later code blocks are shown unhighlighted.
 * highlight.js takes ~2 ms per kB of Python and makes a span per token. */
export const HIGHLIGHT_BUDGET = 20_000;
/** The streaming tail is re-rendered on every frame: `splitSettled` keeps it under this length
 * where a line ends, and a longer tail (one long line, an open code fence) is not parsed. */
export const MAX_TAIL_CHARS = 8_000;
/** While streaming, a settled head up to this long is re-rendered whole when it grows (so lists
 * and links spanning blank lines render as one); past it, only the newly settled text is rendered
 * and appended, so the work per frame does not grow with the answer. */
export const WHOLE_HEAD_CHARS = 16_000;

interface Budget {
  emphasis: number;
  words: number;
  elements: number;
  highlight: number;
}

const FULL: Budget = { emphasis: EMPHASIS_BUDGET, words: WORD_BUDGET, elements: ELEMENT_BUDGET, highlight: HIGHLIGHT_BUDGET };
/** The tail's budget, spent on every frame while streaming: a quarter of the work, no highlighting. */
const TAIL: Budget = { emphasis: EMPHASIS_BUDGET / 4, words: WORD_BUDGET / 10, elements: ELEMENT_BUDGET / 4, highlight: 0 };

const ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);

/** `text` as one paragraph of plain text (the `tw-plain` class keeps its line breaks). */
const plainText = (text: string): string => (text ? `<p class="tw-plain">${escapeHtml(text)}</p>` : "");

let highlightLeft = 0; // characters of code the render in progress may still highlight

function codeBlock({ text, lang }: Tokens.Code, highlighted: boolean): string {
  const name = (lang ?? "").match(/^[\w+.-]+/)?.[0] ?? "";
  const language = highlighted && name && text.length <= highlightLeft ? languageOf(name) : null;
  const body = language !== null ? highlightWith(text, language) : null;
  if (language !== null) highlightLeft -= text.length;
  // Code the highlighter will do once it is here (see highlighter.ts) is marked to be redone.
  const cls = [name ? `language-${name}` : "", language !== null && body === null ? WAITING : ""].join(" ").trim();
  return `<pre><code${cls ? ` class="${cls}"` : ""}>${body || escapeHtml(text)}</code></pre>\n`;
}

// marked compiles each of its block rules, long regular expressions, the first time it runs one,
// on a page's first render, before anything is painted. Four of them can only match text whose
// first lines have a shape that a cheap check tells; they are not run on other text, and their
// ~10 ms (Chromium) wait for some text that could be a quote, raw HTML, a table or a setext
// heading. Each check rules out only what marked's rule could not match (false runs marked's rule;
// undefined is no match); tests/markdown.test.ts renders a corpus with and without them.

const UNDERLINE = /^ {0,3}(?:=+|-+)[ \t]*$/;
/** Lines a heading's text cannot run past: blank, or opening a fence, quote, heading or list. */
const NOT_IN_HEADING = /^(?:\s*$| {0,3}(?:`{3,}|~{3,}|>|#{1,6}(?:\s|$)|(?:[*+-]|\d{1,9}[.)]) ))/;
/** How far `maySetext` looks: past it, it says yes (bounded work per block, on any input). */
const SETEXT_LOOKAHEAD = 500;

/** Whether `src` may start with a setext heading: a line of `=` or `-` under its first lines. */
function maySetext(src: string): boolean {
  const head = src.slice(0, SETEXT_LOOKAHEAD);
  for (let start = head.indexOf("\n") + 1; start > 0; ) {
    const eol = head.indexOf("\n", start);
    const line = head.slice(start, eol < 0 ? head.length : eol);
    if (UNDERLINE.test(line)) return true;
    if (eol < 0) break; // the last line looked at, perhaps cut short
    if (NOT_IN_HEADING.test(line)) return false;
    start = eol + 1;
  }
  return src.length > head.length;
}

const onlyIf = (possible: (src: string) => boolean) => (src: string) => (possible(src) ? false : undefined);

export const QUICK_RULES: MarkedExtension = {
  tokenizer: {
    blockquote: onlyIf((src) => /^ {0,3}>/.test(src)),
    html: onlyIf((src) => /^ {0,3}</.test(src)),
    table: onlyIf((src) => /^ *[^\n ].*\n {0,3}(?:\| *)?:?-/.test(src)),
    lheading: onlyIf(maySetext),
  },
};

function makeMarked(highlighted: boolean): Marked {
  return new Marked(QUICK_RULES, {
    gfm: true,
    async: false,
    renderer: {
      html: ({ text }) => escapeHtml(text),
      image: ({ href, text }) => `<a href="${escapeHtml(href)}">${escapeHtml(text || "image")}</a>`,
      checkbox: ({ checked }) => (checked ? "☑ " : "☐ "),
      code: (token) => codeBlock(token, highlighted),
    },
  });
}

const plain = makeMarked(false);
const highlighted = makeMarked(true);
/** For blocks past the emphasis budget: delimiter runs stay text, so nothing is paired. */
const literalEmphasis = makeMarked(false);
function literal(src: string) {
  const run = /^(?:\*+|_+|~+)/.exec(src)?.[0];
  return run ? ({ type: "text", raw: run, text: run } as never) : undefined;
}
literalEmphasis.use({ tokenizer: { emStrong: literal, del: literal } });

const purify = DOMPurify(window);

const SAFE_URL = /^(?:(?:https?|mailto):|[^a-z]|[a-z+.-]+(?:[^a-z+.\-:]|$))/i;
// `tw-plain` marks our plain-text fallback, `tw-hl-wait` code waiting for the highlighter; model
// text cannot set them (raw HTML is escaped, and code blocks only get `language-…`).
const SAFE_CLASS = /^(?:hljs(?:-[\w-]+)?|language-[\w+.-]+|tw-plain|tw-hl-wait)$/;

const PURIFY_CONFIG = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: [
    "style", "img", "picture", "video", "audio", "source", "track", "iframe", "frame", "frameset",
    "object", "embed", "form", "input", "button", "textarea", "select", "option", "dialog",
    "link", "meta", "base", "template",
  ],
  FORBID_ATTR: ["style", "id", "name", "srcset", "action", "formaction", "target"],
  ALLOWED_URI_REGEXP: SAFE_URL,
  ALLOW_DATA_ATTR: false,
};

purify.addHook("uponSanitizeAttribute", (_node, data) => {
  if (data.attrName !== "class") return;
  // Keep only highlighting classes: model output must not borrow the page's own styling.
  data.attrValue = data.attrValue.split(/\s+/).filter((c) => SAFE_CLASS.test(c)).join(" ");
  if (!data.attrValue) data.keepAttr = false;
});

purify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

let configured = false;

/** `purify.sanitize` with PURIFY_CONFIG, parsed once (passed to each call, it is parsed again on
 * each). */
function sanitize(html: string): string {
  if (!configured) purify.setConfig(PURIFY_CONFIG);
  configured = true;
  return purify.sanitize(html);
}

// ---- the pre-scan ----------------------------------------------------------------------------

const FENCE = /^ {0,3}(`{3,}(?=[^`]*$)|~{3,})/;

/** The code fence open after `line` ("" for none), given the one open before it. */
function fenceAfter(line: string, fence: string): string {
  const marker = FENCE.exec(line)?.[1];
  if (!fence) return marker ?? "";
  const closes = marker && marker[0] === fence[0] && marker.length >= fence.length && line.trim() === marker;
  return closes ? "" : fence;
}

/** Whether the line starting at `pos` (ending at `eol`) can open or close a code fence. */
function maybeFence(text: string, pos: number, eol: number): boolean {
  let i = pos;
  while (i < eol && i - pos < 3 && text.charCodeAt(i) === 32) i++;
  const c = text.charCodeAt(i);
  return (c === 96 || c === 126) && eol - i >= 3; // ` or ~
}

/** Whether the line from `pos` to `eol` holds only spaces and tabs. */
function isBlank(text: string, pos: number, eol: number): boolean {
  for (let i = pos; i < eol; i++) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 9 && c !== 13) return false;
  }
  return true;
}

/** How many containers the line at `pos` opens: its `>` and list markers, plus two columns of
 * indentation per level when it has a marker (a nested item is indented under its parent). */
function nesting(text: string, pos: number, eol: number): number {
  let i = pos;
  let indent = 0;
  for (; i < eol; i++) {
    const c = text.charCodeAt(i);
    if (c === 32) indent++;
    else if (c === 9) indent += 4;
    else break;
  }
  let markers = 0;
  while (i < eol) {
    const c = text.charCodeAt(i);
    let end = -1;
    if (c === 62) end = i + 1; // >
    else if (c === 45 || c === 43 || c === 42) end = i + 1; // - + *
    else if (c >= 48 && c <= 57) {
      let j = i;
      while (j < eol && j - i < 9 && text.charCodeAt(j) >= 48 && text.charCodeAt(j) <= 57) j++;
      const d = text.charCodeAt(j);
      if (d === 46 || d === 41) end = j + 1; // . )
    }
    if (end < 0) break;
    const after = end < eol ? text.charCodeAt(end) : 32;
    if (c !== 62 && after !== 32 && after !== 9) break; // a list marker needs a space after it
    markers++;
    i = end;
    while (i < eol && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
  }
  return markers === 0 ? 0 : markers + (indent >> 1);
}

/** Characters of an e-mail local part: the run the GFM text rule rescans (see WORD_BUDGET). */
const EMAIL_CHAR = new Uint8Array(128);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.!#$%&'*+/=?_`{|}~-") {
  EMAIL_CHAR[c.charCodeAt(0)] = 1;
}
const isAlnum = (c: string): boolean => /[\p{L}\p{N}]/u.test(c);

type Cost = Omit<Budget, "highlight">;

/** What rendering the block `text[start, end)` costs: marked's emphasis and word work, and an
 * upper estimate of the elements it makes: one per line, table cell, link (`[`, `://`, `www.`,
 * `@`), and per two runs of backticks or emphasis delimiters (three for a run of three or more). */
function blockCost(text: string, start: number, end: number): Cost {
  let runs = 0; // delimiter runs of * _ ~
  let openers = 0; // those that may open emphasis
  let words = 0;
  let wordLength = 0;
  let stops = 0;
  let elements = 2;
  let halves = 0; // runs of backticks or delimiters, 2 per element; 3 for a long run
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 10 || c === 124 || c === 91 || c === 64) elements++; // \n | [ @
    else if (c === 58 && text.startsWith("//", i + 1)) elements++; // ://
    else if (c === 119 && text.startsWith("ww.", i + 1)) elements++; // www.
    else if (c === 96 && text.charCodeAt(i - 1) !== 96) halves++; // `
    if (c < 128 && EMAIL_CHAR[c]) {
      wordLength++;
      // each ! starts a new text token; a run of * _ ~ or backticks is consumed as one
      if (c === 33 || ((c === 42 || c === 95 || c === 126 || c === 96) && text.charCodeAt(i - 1) !== c)) stops++;
    } else {
      words += stops * wordLength;
      wordLength = stops = 0;
    }
    if ((c === 42 || c === 95 || c === 126) && text.charCodeAt(i - 1) !== c) {
      runs++;
      let j = i + 1;
      while (j < end && text.charCodeAt(j) === c) j++;
      halves += j - i >= 3 ? 3 : 1;
      const next = j < end ? text[j]! : " ";
      // A run followed by space cannot open; nor can `_` inside a word (snake_case).
      const inWord = c === 95 && i > start && isAlnum(text[i - 1]!) && isAlnum(next);
      if (next.trim() !== "" && !inWord) openers++;
    }
  }
  words += stops * wordLength;
  return { emphasis: openers * runs, words, elements: elements + (halves >> 1) };
}

/** The blocks of `text`: runs of lines between blank lines, each code fence (with its fence
 * lines) apart; and whether a line of the block nests deeper than MAX_NESTING. */
function blocks(text: string): Array<[number, number, boolean]> {
  const found: Array<[number, number, boolean]> = [];
  let fence = "";
  let start = 0;
  let deep = false;
  const close = (end: number) => {
    if (end > start) found.push([start, end, deep]);
    start = end;
    deep = false;
  };
  for (let pos = 0; pos < text.length; ) {
    let eol = text.indexOf("\n", pos);
    if (eol < 0) eol = text.length;
    const next = Math.min(eol + 1, text.length);
    const wasFence = fence;
    if (maybeFence(text, pos, eol)) fence = fenceAfter(text.slice(pos, eol), fence);
    if (fence && !wasFence) close(pos);
    else if (wasFence && !fence) close(next);
    else if (!fence && isBlank(text, pos, eol)) {
      close(pos);
      start = next;
    } else if (!fence && nesting(text, pos, eol) > MAX_NESTING) deep = true;
    pos = next;
  }
  close(text.length);
  return found;
}

/**
 * The ranges of `text` not rendered as full markdown: as text, blocks nesting deeper than
 * MAX_NESTING, past the word or element budget, and everything once the elements run out; as
 * markdown without emphasis, blocks past the emphasis budget only. Linear in the text. Code
 * fences are priced like the rest: should marked disagree with this scan about where a fence
 * ends, no text that marked parses has gone unpriced.
 */
function degraded(text: string, budget: Budget): Array<[number, number, "text" | "noEmphasis"]> {
  const found: Array<[number, number, "text" | "noEmphasis"]> = [];
  const left: Cost = { ...budget };
  for (const [start, end, deep] of blocks(text)) {
    if (left.elements <= 0) {
      found.push([start, text.length, "text"]);
      break;
    }
    const cost = blockCost(text, start, end);
    if (deep || cost.words > left.words || cost.elements > left.elements) {
      found.push([start, end, "text"]);
      left.elements--; // its <p> or <pre>
      continue;
    }
    if (cost.emphasis > left.emphasis) found.push([start, end, "noEmphasis"]);
    else left.emphasis -= cost.emphasis;
    left.words -= cost.words;
    left.elements -= cost.elements;
  }
  return found;
}

/** Markdown → sanitized HTML within `budget`; blocks past it, and text past the size limit, plain. */
function bounded(text: string, highlight: boolean, budget: Budget): string {
  text = text.replace(/\r\n?/g, "\n"); // as marked does: the scan counts lines by \n
  let rest = "";
  if (text.length > MAX_MARKDOWN_CHARS) {
    const [head] = splitSettled(text.slice(0, MAX_MARKDOWN_CHARS), 0);
    rest = text.slice(head.length);
    text = head;
  }
  const parser = highlight ? highlighted : plain;
  const parse = (md: string, by = parser) => (md.trim() ? by.parse(md, { async: false }) : "");
  highlightLeft = budget.highlight;
  let html = "";
  let done = 0;
  for (const [start, end, kind] of degraded(text, budget)) {
    const block = text.slice(start, end);
    html += parse(text.slice(done, start)) + (kind === "text" ? asText(block) : parse(block, literalEmphasis));
    done = end;
  }
  html += parse(text.slice(done));
  return (html && sanitize(html)) + plainText(rest);
}

// The lookaheads keep the marker whole: no backtracking into it on a long line of backticks.
const OPEN_FENCE = /^ {0,3}(`{3,}(?!`)(?=[^`\n]*\n)|~{3,}(?!~))([^\n]*)\n/;

/** `block` shown without parsing: a fenced code block as code (unhighlighted), the rest as text. */
function asText(block: string): string {
  const open = OPEN_FENCE.exec(block);
  if (!open) return plainText(block);
  let code = block.slice(open[0].length);
  if (code.endsWith("\n")) code = code.slice(0, -1);
  const last = code.slice(code.lastIndexOf("\n") + 1);
  if (fenceAfter(last, open[1]!) === "") code = code.slice(0, code.length - last.length);
  return codeBlock({ text: code.endsWith("\n") ? code.slice(0, -1) : code, lang: open[2]!.trim() } as Tokens.Code, false);
}

/** `render()`, or `text` as plain text if it throws: one bad message must not stop the view. */
function safely(text: string, render: () => string): string {
  try {
    return render();
  } catch {
    return plainText(text);
  }
}

/** Sanitized HTML for markdown `text`; code blocks are highlighted unless `highlight` is false.
 * Never throws; hostile input comes back (partly) as plain text. */
export function renderMarkdown(text: string, options: { highlight?: boolean } = {}): string {
  return safely(text, () => bounded(text, options.highlight !== false, FULL));
}

/**
 * The streaming tail (from `splitSettled`), rendered on every frame: a small budget, no
 * highlighting, and no parsing past MAX_TAIL_CHARS, where the tail is an open code fence (shown
 * as code) or one long line (shown as plain text) until it settles.
 */
export function renderTail(text: string): string {
  return safely(text, () => (text.length <= MAX_TAIL_CHARS ? bounded(text, false, TAIL) : asText(text)));
}

/**
 * While streaming: `head.slice(from)`, newly settled, to be appended after the rendering of
 * `head.slice(0, from)` (`from` is an earlier cut of `splitSettled`), which made `shown` elements.
 * Markdown within what is left of the element budget; plain text past it or past
 * MAX_MARKDOWN_CHARS, as in the finished answer.
 */
export function renderAppended(head: string, from: number, shown: number): string {
  const piece = head.slice(from);
  const elements = from < MAX_MARKDOWN_CHARS ? ELEMENT_BUDGET - shown : 0;
  return safely(piece, () => (elements > 0 ? bounded(piece, true, { ...FULL, elements }) : plainText(piece)));
}

const CACHE_LIMIT = 500;
const cache = new Map<string, string>();

function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** `renderMarkdown`, remembered by message id and text, so a finished block is rendered once (and
 * again when the highlighter has come for its code). */
export function renderCached(id: string, text: string): string {
  const key = `${id}\u0000${text.length}\u0000${hash(text)}`;
  let html = cache.get(key);
  if (html === undefined || (html.includes(WAITING) && highlighterLoaded())) {
    html = renderMarkdown(text);
    if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
  } else {
    cache.delete(key); // keep recently used entries at the end
  }
  cache.set(key, html);
  return html;
}

/**
 * Split text still being streamed into a settled head (through the last blank line outside a
 * code fence, so its blocks are complete) and the tail that may still change. When that tail
 * would be longer than `maxTail`, the head runs to the last line start outside a fence instead,
 * so the tail, re-rendered on every frame, stays short; past MAX_MARKDOWN_CHARS, where the text
 * is plain anyway, it is cut every `maxTail` characters. Linear, and no allocation per line;
 * `from`, the length of a head this returned for an earlier version of `text`, skips what was
 * scanned then, so that a frame costs what arrived since.
 */
export function splitSettled(text: string, maxTail = MAX_TAIL_CHARS, from = 0): [string, string] {
  let fence = "";
  // After the last blank line outside a fence; -1 when that was before `from` and `from` was cut
  // at a line because the tail was already long.
  let cut = from === 0 || isBlank(text, text.lastIndexOf("\n", from - 2) + 1, from - 1) ? from : -1;
  let lineCut = from; // the last line start outside a fence
  let pos = from;
  for (let eol = text.indexOf("\n", pos); eol >= 0; eol = text.indexOf("\n", pos)) {
    if (!fence) lineCut = pos;
    if (maybeFence(text, pos, eol)) fence = fenceAfter(text.slice(pos, eol), fence);
    else if (!fence && isBlank(text, pos, eol)) cut = eol + 1;
    pos = eol + 1;
  }
  // The last line is unterminated: it can still grow.
  if (!fence) lineCut = pos;
  if (text.length - cut > maxTail) cut = Math.max(cut, lineCut);
  if (text.length - cut > maxTail && text.length > MAX_MARKDOWN_CHARS) {
    cut = Math.max(cut, text.length - ((text.length - MAX_MARKDOWN_CHARS) % maxTail));
    if (/[\uD800-\uDBFF]/.test(text[cut - 1]!)) cut--; // not between the halves of a surrogate pair
  }
  return [text.slice(0, cut), text.slice(cut)];
}
