// Untrusted model markdown → sanitized HTML.
//
// Two layers: marked renders raw HTML in the source as text (so none of it executes or even
// parses), and DOMPurify then removes anything dangerous that markdown itself can produce:
// only http(s)/mailto/relative URLs, no images or media (a remote image is a way to leak the
// conversation), no forms, frames, styles, ids or event handlers; links open in a new tab with
// `rel="noopener noreferrer"`.

import DOMPurify from "dompurify";
import { Marked, type Tokens } from "marked";
import { highlight } from "./highlight";

const ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);

function codeBlock({ text, lang }: Tokens.Code, highlighted: boolean): string {
  const name = (lang ?? "").match(/^[\w+.-]+/)?.[0] ?? "";
  const body = (highlighted && name && highlight(text, name)) || escapeHtml(text);
  const cls = name ? ` class="language-${name}"` : "";
  return `<pre><code${cls}>${body}</code></pre>\n`;
}

function makeMarked(highlighted: boolean): Marked {
  return new Marked({
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

const purify = DOMPurify(window);

const SAFE_URL = /^(?:(?:https?|mailto):|[^a-z]|[a-z+.-]+(?:[^a-z+.\-:]|$))/i;
const SAFE_CLASS = /^(?:hljs(?:-[\w-]+)?|language-[\w+.-]+)$/;

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

/** Sanitized HTML for markdown `text`; code blocks are highlighted unless `highlight` is false. */
export function renderMarkdown(text: string, options: { highlight?: boolean } = {}): string {
  const parser = options.highlight === false ? plain : highlighted;
  return purify.sanitize(parser.parse(text, { async: false }), PURIFY_CONFIG);
}

const CACHE_LIMIT = 500;
const cache = new Map<string, string>();

function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** `renderMarkdown`, remembered by message id and text, so a finished block is rendered once. */
export function renderCached(id: string, text: string): string {
  const key = `${id}\u0000${text.length}\u0000${hash(text)}`;
  let html = cache.get(key);
  if (html === undefined) {
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
 * code fence, so its blocks are complete) and the tail that may still change.
 */
export function splitSettled(text: string): [string, string] {
  let fence = "";
  let cut = 0;
  let pos = 0;
  const lines = text.split("\n");
  lines.pop(); // the last line is unterminated: it can still grow
  for (const line of lines) {
    pos += line.length + 1;
    const marker = /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (marker && !fence) fence = marker;
    else if (marker && marker[0] === fence[0] && marker.length >= fence.length && line.trim() === marker) fence = "";
    else if (!fence && line.trim() === "") cut = pos;
  }
  return [text.slice(0, cut), text.slice(cut)];
}
