// One message in the chat: who and when, the body, tool-call chips, and an error line.

import { h, reconcile, setAttr, setText } from "./dom";
import { renderCached, renderMarkdown, splitSettled } from "./markdown";
import type { Message } from "./protocol";
import { createChip, updateChip } from "./tools";

interface Shown {
  source: Message | null;
  text: string;
  streaming: boolean;
  head: string | null;
  tail: string | null;
  chips: Map<string, HTMLElement>;
}

const shown = new WeakMap<HTMLElement, Shown>();

const part = (el: HTMLElement, cls: string) => el.querySelector(`.${cls}`) as HTMLElement;

export function createMessageElement(m: Message): HTMLElement {
  const el = h(
    "div",
    { class: "tw-msg", "data-testid": "tw-message", "data-message-id": m.id },
    h(
      "div",
      { class: "tw-meta" },
      h("span", { class: "tw-who" }),
      h("span", { class: "tw-queued", "data-testid": "tw-queued" }),
      h("time", { class: "tw-when" }),
    ),
    h("div", { class: "tw-body" }, h("div", { class: "tw-settled" }), h("div", { class: "tw-tail" })),
    h("div", { class: "tw-chips" }),
    h("div", { class: "tw-msg-error" }),
  );
  shown.set(el, { source: null, text: "", streaming: false, head: null, tail: null, chips: new Map() });
  return el;
}

function who(m: Message): string {
  if (m.role === "user") return "You";
  if (m.role === "assistant") return m.agent ?? "Assistant";
  return m.role === "system" ? "System" : "Tool";
}

function details(m: Message): string {
  const parts = [m.model ?? ""];
  if (m.usage) parts.push(`${m.usage.input_tokens} tokens in, ${m.usage.output_tokens} out`);
  return parts.filter(Boolean).join(" · ");
}

function errorText(m: Message): string {
  if (m.status === "failed") return m.error || "The answer failed.";
  if (m.status === "aborted") return m.error || "Stopped.";
  return "";
}

/**
 * Show `m` with `text` (for the answer being streamed, the newest text known). While `streaming`,
 * only the unsettled tail of the markdown is re-rendered and a cursor is shown.
 */
export function updateMessageElement(el: HTMLElement, m: Message, text: string, streaming: boolean): void {
  const state = shown.get(el)!;
  if (state.source === m && state.text === text && state.streaming === streaming) return;
  state.source = m;
  state.text = text;
  state.streaming = streaming;

  setAttr(el, "data-role", m.role);
  setAttr(el, "data-status", m.status);
  el.classList.toggle("tw-live", streaming);

  setText(part(el, "tw-who"), who(m));
  const queued = part(el, "tw-queued");
  setText(queued, m.queue_position ? `queued · #${m.queue_position}` : "");
  queued.hidden = !m.queue_position;
  const when = part(el, "tw-when");
  const date = new Date(m.created_at * 1000);
  setText(when, m.created_at ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "");
  setAttr(when, "datetime", m.created_at ? date.toISOString() : null);
  setAttr(part(el, "tw-meta"), "title", details(m) || null);

  const settled = part(el, "tw-settled");
  const tail = part(el, "tw-tail");
  if (m.role === "assistant") {
    const [head, rest] = streaming ? splitSettled(text) : [text, ""];
    if (head !== state.head) settled.innerHTML = renderCached(m.id, head);
    if (rest !== state.tail) tail.innerHTML = rest ? renderMarkdown(rest, { highlight: false }) : "";
    state.head = head;
    state.tail = rest;
  } else {
    setText(settled, text);
  }

  const chips = part(el, "tw-chips");
  const calls = m.tool_calls ?? [];
  reconcile(chips, state.chips, calls, (c) => c.id, createChip, updateChip);
  chips.hidden = calls.length === 0;

  const error = part(el, "tw-msg-error");
  setText(error, errorText(m));
  error.hidden = error.textContent === "";
}
