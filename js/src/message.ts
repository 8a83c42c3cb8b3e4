// One message in the chat: who and when, the body, tool-call chips, an error line, and a divider
// where the thread passed to another agent.

import { h, idleScheduler, reconcile, setAttr, setText } from "./dom";
import {
  MAX_TAIL_CHARS,
  renderAppended,
  renderCached,
  renderMarkdown,
  renderTail,
  splitSettled,
  WHOLE_HEAD_CHARS,
} from "./markdown";
import type { Message } from "./protocol";
import { createChip, updateChip } from "./tools";

interface Shown {
  source: Message | null;
  text: string;
  streaming: boolean;
  head: string | null;
  tail: string | null;
  appended: boolean; // the head was rendered in pieces while streaming
  chips: Map<string, HTMLElement>;
  regenerate: boolean; // the Regenerate action is offered
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
      h("span", { class: "tw-cost", "data-testid": "tw-cost" }),
      h(
        "span",
        { class: "tw-branch", "data-testid": "tw-branch", hidden: "" },
        h("button", { type: "button", class: "tw-branch-prev", "data-action": "branch", "aria-label": "Previous version" }, "‹"),
        h("span", { class: "tw-branch-place" }),
        h("button", { type: "button", class: "tw-branch-next", "data-action": "branch", "aria-label": "Next version" }, "›"),
      ),
      h(
        "span",
        { class: "tw-actions", "data-testid": "tw-actions" },
        h("button", { type: "button", class: "tw-action", "data-action": "regenerate", title: "Answer this prompt again" }, "Regenerate"),
        h("button", { type: "button", class: "tw-action", "data-action": "edit", title: "Edit this prompt: a new version, answered again" }, "Edit"),
        h("button", { type: "button", class: "tw-action", "data-action": "fork", title: "A new thread with the messages up to here" }, "Fork here"),
        h("button", { type: "button", class: "tw-action", "data-action": "copy", title: "Copy the text" }, "Copy"),
      ),
    ),
    h("div", { class: "tw-body" }, h("div", { class: "tw-settled" }), h("div", { class: "tw-tail" })),
    h("div", { class: "tw-chips" }),
    h("div", { class: "tw-msg-error" }),
    h("div", { class: "tw-handoff", role: "separator", "data-testid": "tw-handoff", hidden: "" }),
  );
  shown.set(el, { source: null, text: "", streaming: false, head: null, tail: null, appended: false, chips: new Map(), regenerate: false });
  return el;
}

// Times are hours and minutes in the page's locale. A page's first Intl date formatter costs
// ~15 ms in Chromium (ICU loads its locale data): so until the page is first idle, times are left
// empty, and filled in then, after the first paint.
let clock: Intl.DateTimeFormat | null = null;
const untimed = new Set<HTMLTimeElement>();
const clockLater = idleScheduler(() => {
  clock ??= new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit" });
  for (const when of untimed) setText(when, clock.format(new Date(when.dateTime)));
  untimed.clear();
  return false;
});

function showTime(when: HTMLTimeElement, at: number): void {
  const date = new Date(at * 1000);
  setAttr(when, "datetime", at ? date.toISOString() : null);
  untimed.delete(when);
  if (!at) setText(when, "");
  else if (clock) setText(when, clock.format(date));
  else {
    untimed.add(when);
    clockLater.schedule();
  }
}

/**
 * A rough height in pixels of `text` shown in a message `width` pixels wide: a header, and ~20 px
 * per line of text, wrapped at ~8 px a character (a blank line stands for the space between
 * paragraphs). Linear, and allocates nothing.
 */
export function estimatedHeight(text: string, width: number): number {
  const perLine = Math.max(20, Math.floor(width / 8));
  let lines = 0;
  for (let pos = 0; pos <= text.length; ) {
    let eol = text.indexOf("\n", pos);
    if (eol < 0) eol = text.length;
    lines += Math.max(1, Math.ceil((eol - pos) / perLine));
    pos = eol + 1;
  }
  return 32 + 20 * lines;
}

/** An empty element that stands for `m` until it is rendered, about as tall as `m` will be in a
 * log `width` pixels wide, so that the scroll bar does not jump when it is. */
export function createPlaceholder(m: Message, width: number): HTMLElement {
  const style = `min-height: ${estimatedHeight(m.text, width)}px`;
  return h("div", { class: "tw-msg", "data-testid": "tw-message", "data-message-id": m.id, style });
}

/** Who wrote `m`, as the person `me` reads it: "You" for their own prompts (and prompts of nobody
 * named), others' by name; an answer by its agent, a person's answer by that person. */
function who(m: Message, me: string): string {
  if (m.role === "user" || (m.role === "assistant" && m.user_id)) {
    return !m.user_id || m.user_id === me ? "You" : m.user_id;
  }
  if (m.role === "assistant") return m.agent ?? "Assistant";
  return m.role === "system" ? "System" : "Tool";
}

/** The agent this step handed the thread to: the name its `transfer_to_…` call returned once the
 * handoff was made (`{"transferred_to": name}`), else null (no handoff, or one refused). */
export function handedTo(m: Message): string | null {
  for (const c of m.tool_calls ?? []) {
    if (!c.name.startsWith("transfer_to_") || c.status !== "success" || !c.result) continue;
    try {
      const result: unknown = JSON.parse(c.result);
      const to = (result as { transferred_to?: unknown } | null)?.transferred_to;
      if (typeof to === "string" && to) return to;
    } catch {
      // not what a handoff returns: a tool of the same name pattern
    }
  }
  return null;
}

function details(m: Message): string {
  const parts = [m.model ?? ""];
  if (m.usage) {
    const cached = m.usage.cached_input_tokens ? ` (${m.usage.cached_input_tokens} cached)` : "";
    parts.push(`${m.usage.input_tokens} tokens in${cached}, ${m.usage.output_tokens} out`);
  }
  return parts.filter(Boolean).join(" · ");
}

function errorText(m: Message): string {
  if (m.status === "failed") return m.error || "The answer failed.";
  if (m.status === "aborted") return m.error || "Stopped.";
  return "";
}

/** The `‹ 2 / 3 ›` switcher of a message with other versions (or an answer with alternatives):
 * its buttons carry the index they show (`data-index`), and are disabled at the ends. */
function showBranch(el: HTMLElement, m: Message): void {
  const box = part(el, "tw-branch");
  const place = m.branch;
  box.hidden = !place;
  if (!place) return;
  setText(part(el, "tw-branch-place"), `${place.index + 1} / ${place.count}`);
  const prev = part(el, "tw-branch-prev") as HTMLButtonElement;
  const next = part(el, "tw-branch-next") as HTMLButtonElement;
  setAttr(prev, "data-index", String(place.index - 1));
  setAttr(next, "data-index", String(place.index + 1));
  prev.disabled = place.index <= 0;
  next.disabled = place.index >= place.count - 1;
}

/** Which actions a message offers: Regenerate (an agent's answer, when the caller allows it),
 * Edit (the person's own prompt), Fork here (a message that has ended), Copy (any text). */
function showActions(el: HTMLElement, m: Message, streaming: boolean, me: string, canRegenerate: boolean): void {
  const ended = !streaming && m.status !== "pending" && m.status !== "streaming";
  const offered: Record<string, boolean> = {
    regenerate: canRegenerate && ended && m.role === "assistant" && !m.user_id,
    edit: m.role === "user" && (!m.user_id || m.user_id === me),
    fork: ended,
    copy: true,
  };
  for (const button of el.querySelectorAll<HTMLButtonElement>(".tw-actions [data-action]")) {
    button.hidden = !offered[button.dataset.action ?? ""];
  }
}

/** Forget what `el` shows, so that its next update renders it again (its code, say, once the
 * highlighter has come). */
export function renderAgain(el: HTMLElement): void {
  const state = shown.get(el)!;
  state.source = null;
  state.head = state.tail = null;
}

/**
 * Show `m` with `text` (for the answer being streamed, the newest text known). While `streaming`,
 * only the unsettled tail of the markdown is re-rendered (in a long answer, what settled since the
 * last call is rendered and appended) and a cursor is shown. Never throws for the text.
 */
export function updateMessageElement(
  el: HTMLElement,
  m: Message,
  text: string,
  streaming: boolean,
  me = "",
  canRegenerate = false,
): void {
  const state = shown.get(el)!;
  if (state.source === m && state.text === text && state.streaming === streaming && state.regenerate === canRegenerate) {
    return;
  }
  state.regenerate = canRegenerate;
  showBranch(el, m);
  showActions(el, m, streaming, me, canRegenerate);
  const wasStreaming = state.streaming;
  state.source = m;
  state.text = text;
  state.streaming = streaming;

  setAttr(el, "data-role", m.role);
  setAttr(el, "data-status", m.status);
  el.classList.toggle("tw-live", streaming);

  setText(part(el, "tw-who"), who(m, me));
  setAttr(el, "data-user", m.user_id);
  const queued = part(el, "tw-queued");
  setText(queued, m.queue_position ? `queued · #${m.queue_position}` : "");
  queued.hidden = !m.queue_position;
  showTime(part(el, "tw-when") as HTMLTimeElement, m.created_at);
  setAttr(part(el, "tw-meta"), "title", details(m) || null);
  const cost = part(el, "tw-cost");
  setText(cost, m.cost ? `${m.cost.answer} · thread ${m.cost.thread}` : "");
  setAttr(cost, "title", m.cost?.detail ?? null);
  cost.hidden = !m.cost;

  const settled = part(el, "tw-settled");
  const tail = part(el, "tw-tail");
  try {
    if (m.role === "assistant") {
      // Where `text` continues the head shown while streaming (-1: it does not).
      const from = wasStreaming && state.head !== null && text.startsWith(state.head) ? state.head.length : -1;
      const [head, rest] = streaming ? splitSettled(text, MAX_TAIL_CHARS, Math.max(from, 0)) : [text, ""];
      if (head !== state.head || (state.appended && !streaming)) {
        state.appended = streaming && from >= WHOLE_HEAD_CHARS;
        if (state.appended) {
          // A long answer: render only what settled since the last frame, and append it.
          const made = settled.getElementsByTagName("*").length;
          settled.insertAdjacentHTML("beforeend", renderAppended(head, from, made));
        } else {
          // Not cached while streaming: every version of the growing head would be kept.
          settled.innerHTML = streaming ? renderMarkdown(head) : renderCached(m.id, head);
        }
      }
      if (rest !== state.tail) tail.innerHTML = renderTail(rest);
      state.head = head;
      state.tail = rest;
    } else {
      setText(settled, text);
    }
  } catch {
    // The renderers do not throw; should one still fail, this message shows its text and the
    // view carries on with the others (an exception here would stop every later update).
    setText(settled, text);
    setText(tail, "");
    state.head = state.tail = null;
  }

  const chips = part(el, "tw-chips");
  const calls = m.tool_calls ?? [];
  reconcile(chips, state.chips, calls, (c) => c.id, createChip, updateChip);
  chips.hidden = calls.length === 0;

  const error = part(el, "tw-msg-error");
  setText(error, errorText(m));
  error.hidden = error.textContent === "";

  const to = handedTo(m);
  const handoff = part(el, "tw-handoff");
  setText(handoff, to ? `handed over to ${to}` : "");
  setAttr(el, "data-handed-to", to);
  handoff.hidden = !to;
}
