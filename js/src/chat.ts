// ChatView: a thread's messages with the answer streaming in, and the box to send a prompt.

import type { AnyModel } from "@anywidget/types";
import { applyChunk, applySnapshot, type StreamState } from "./chunks";
import { frameScheduler, h, idleScheduler, isolateKeys, reconcile, setAttr, setText, widget } from "./dom";
import { nowSeconds } from "./format";
import { listenForDecisions } from "./tools";
import {
  highlighterLoaded,
  loadHighlighter,
  mayAskForHighlighter,
  onHighlighter,
  releaseHighlighter,
  requestHighlighter,
  WAITING,
} from "./highlighter";
import {
  createMessageElement,
  createPlaceholder,
  estimatedHeight,
  renderAgain,
  updateMessageElement,
} from "./message";
import {
  LIVE_STATUSES,
  listen,
  sendMsg,
  type ChatTraits,
  type InboundMsg,
  type Message,
  type ThreadState,
} from "./protocol";

/** An answer's step still being written (a queued prompt is not streamed). */
const streamed = (m: Message): boolean => m.role === "assistant" && LIVE_STATUSES.has(m.status);
const NEAR_BOTTOM_PX = 32;

const STATUS_TEXT: Record<ThreadState, string> = {
  idle: "",
  waiting: "Waiting for an agent to pick up the message…",
  streaming: "Answering…",
  failed: "Failed",
  aborted: "Stopped",
};

/** How long after the last key a person counts as no longer typing. */
const TYPING_IDLE_MS = 4000;

/** Mount the chat into `el`; returns the cleanup. */
export function mountChat(model: AnyModel<ChatTraits>, el: HTMLElement): () => void {
  el.classList.add("tw-chat");
  el.dataset.tw = "chat";

  const title = h("div", { class: "tw-pane-head tw-title" });
  const present = h("div", { class: "tw-present", "data-testid": "tw-present", "aria-live": "polite" });
  const errorText = h("span", { class: "tw-error-text" });
  const dismiss = h("button", { type: "button", class: "tw-dismiss", "aria-label": "Dismiss" }, "×");
  const errorBox = h("div", { class: "tw-error", role: "alert", "data-testid": "tw-error" }, errorText, dismiss);
  const olderButton = h("button", { type: "button", class: "tw-older", "data-testid": "tw-older" }, "Load older messages");
  const list = h("div", { class: "tw-messages" });
  const log = h("div", { class: "tw-log", role: "log", "aria-label": "Messages", tabindex: "0" }, olderButton, list);
  const statusLine = h("div", { class: "tw-statusline", role: "status", "aria-live": "polite", "data-testid": "tw-status" });
  const input = h("textarea", { class: "tw-input", rows: "1", "aria-label": "Message", "data-testid": "tw-input" });
  const stop = h("button", { type: "button", class: "tw-stop", "aria-label": "Stop", "data-testid": "tw-stop" }, "Stop");
  const send = h("button", { type: "button", class: "tw-send", "aria-label": "Send", "data-testid": "tw-send" }, "Send");
  const editingText = h("span", { class: "tw-editing-text" });
  const cancelEdit = h("button", { type: "button", class: "tw-cancel-edit", "data-testid": "tw-cancel-edit" }, "Cancel");
  const editing = h("div", { class: "tw-editing", "data-testid": "tw-editing", hidden: "" }, editingText, cancelEdit);
  // why new prompts are refused now (a budget reached), said before anyone asks; text only
  const budgetNote = h("div", { class: "tw-budget", role: "status", "aria-live": "polite", "data-testid": "tw-budget", hidden: "" });
  el.append(title, present, errorBox, log, statusLine, editing, budgetNote, h("div", { class: "tw-composer" }, input, stop, send));
  isolateKeys(el);
  listenForDecisions(list, model);

  let recent: Message[] = [];
  let older: Message[] = []; // loaded with "Load older", or slid out of the `messages` window
  let olderHasMore: boolean | null = null; // from the last `older` reply; null: use `has_older`
  let pendingOlder: string | null = null;
  let stream: StreamState | null = null;
  let dismissed = "";
  let stick = true; // follow new text unless the user scrolled up
  let scrolledTo = ""; // the highlighted message the log was scrolled to
  let prepended = false;
  let highlighterNews = false; // it came, or whoever asked for it left
  let editingId: string | null = null; // the prompt the box edits (Send makes a new version of it)
  const nodes = new Map<string, HTMLElement>();
  // Messages shown as placeholders until idle time renders them, the newest first: those that
  // come many at once (a view's first render, a page of older ones) past what fills the log.
  const later = new Map<string, Message>();
  let laterWidth = 0; // the log's width when they were put off, for their placeholders' height
  const frame = frameScheduler(render);
  const idle = idleScheduler(renderLater);

  function reset(): void {
    editingId = null;
    recent = model.get("messages") ?? [];
    older = [];
    olderHasMore = null;
    pendingOlder = null;
    stream = applySnapshot(null, model.get("stream"));
    dismissed = "";
    stick = true;
    forgetLater();
    frame.schedule();
  }

  function onMessages(): void {
    const next = model.get("messages") ?? [];
    const ids = new Set(next.map((m) => m.id));
    older = [...older, ...recent].filter((m) => !ids.has(m.id));
    recent = next;
    frame.schedule();
  }

  const isFinished = (id: string): boolean => {
    const m = recent.find((x) => x.id === id);
    return m !== undefined && !streamed(m);
  };

  function onCustom(msg: InboundMsg): void {
    if (msg.kind === "delta") {
      stream = applyChunk(stream, msg, isFinished).state;
    } else if (msg.kind === "older" && msg.request_id === pendingOlder) {
      pendingOlder = null;
      const known = new Set([...older, ...recent].map((m) => m.id));
      older = [...msg.messages.filter((m) => !known.has(m.id)), ...older];
      olderHasMore = msg.has_older;
      prepended = true;
    } else if (msg.kind === "unsent" && input.value.trim() === "") {
      input.value = msg.text; // the send failed (the error box says why): keep what was typed
    } else if (msg.kind === "highlighter") {
      void loadHighlighter(msg.source); // every view on the page hears of it (onHighlighter)
    }
    frame.schedule();
  }

  function shownMessages(): Message[] {
    const all = older.length ? [...older, ...recent] : recent;
    if (stream === null || stream.ended || recent.some((m) => m.id === stream!.message_id)) return all;
    // The first delta of a new answer overtook the trait update that adds its message.
    const placeholder: Message = {
      id: stream.message_id, role: "assistant", text: "", status: "streaming", error: null, agent: null,
      model: null, created_at: nowSeconds(), usage: null, tool_calls: [], user_id: null,
    };
    return [...all, placeholder];
  }

  function createMessage(m: Message): HTMLElement {
    return later.has(m.id) ? createPlaceholder(m, laterWidth) : createMessageElement(m);
  }

  function showMessage(node: HTMLElement, m: Message): void {
    if (later.has(m.id)) {
      later.set(m.id, m); // rendered later, as it is then
      return;
    }
    const me = model.get("user") ?? "";
    // Regenerate is offered with or without an agent: it waits in the queue for whoever serves the thread
    if (!streamed(m)) return updateMessageElement(node, m, m.text, false, me, true);
    const s = stream?.message_id === m.id ? stream : null;
    const text = s && s.text.length >= m.text.length ? s.text : m.text;
    updateMessageElement(node, m, text, !s?.ended, me, true);
  }

  /**
   * Put off the new messages above those that fill the log from the bottom (by their estimated
   * heights): they are shown as placeholders and rendered in idle time. `width` and `height` are
   * the log's, read before this render changed anything (so reading them cost no layout).
   */
  function putOffHidden(messages: Message[], width: number, height: number): void {
    if (messages.every((m) => nodes.has(m.id))) return;
    laterWidth = width || 600; // the log is 0 × 0 while the view is not laid out (hidden, not attached)
    const fill = height || window.innerHeight;
    let filled = 0;
    for (let i = messages.length - 1; i >= 0; i--) {
      const m = messages[i]!;
      if (filled < fill) filled += estimatedHeight(m.text, laterWidth);
      else if (!nodes.has(m.id)) later.set(m.id, m);
    }
    if (later.size > 0) idle.schedule();
  }

  /** Render put-off messages, the newest first, while the page is idle; true while some are left. */
  function renderLater(timeLeft: () => number): boolean {
    const fromBottom = log.scrollHeight - log.scrollTop;
    const messages = shownMessages();
    for (let i = messages.length - 1; i >= 0 && later.size > 0; i--) {
      const m = later.get(messages[i]!.id);
      const placeholder = nodes.get(messages[i]!.id);
      if (m === undefined || placeholder === undefined) continue;
      later.delete(m.id);
      const node = createMessageElement(m);
      placeholder.replaceWith(node);
      nodes.set(m.id, node);
      showMessage(node, m);
      if (timeLeft() <= 0) break;
    }
    if (!messages.some((m) => later.has(m.id))) forgetLater(); // the rest is no longer shown
    askForHighlighter();
    // What was rendered is above what is in view: keep the view where it was, or at the bottom.
    log.scrollTop = stick ? log.scrollHeight : log.scrollHeight - fromBottom;
    return later.size > 0;
  }

  function forgetLater(): void {
    for (const id of later.keys()) {
      nodes.get(id)?.remove();
      nodes.delete(id);
    }
    later.clear();
  }

  /** The `highlighted` message: marked, scrolled to once; older pages loaded until it is shown. */
  function showHighlighted(): void {
    const id = model.get("highlighted") ?? "";
    for (const node of list.querySelectorAll<HTMLElement>(".tw-highlighted")) {
      if (node.dataset.messageId !== id) node.classList.remove("tw-highlighted");
    }
    const node = id ? nodes.get(id) : undefined;
    if (node !== undefined) {
      node.classList.add("tw-highlighted");
      if (scrolledTo !== id) {
        scrolledTo = id;
        stick = false;
        node.scrollIntoView?.({ block: "center" });
      }
    } else if (id && (olderHasMore ?? model.get("has_older"))) {
      loadOlder(); // further back: page back until it is shown
    }
  }

  function loadOlder(): void {
    const first = older[0] ?? recent[0];
    if (pendingOlder !== null || first === undefined) return;
    pendingOlder = `older-${Math.random().toString(36).slice(2)}`;
    sendMsg(model, { kind: "load_older", request_id: pendingOlder, before: first.id });
    frame.schedule();
  }

  function askForHighlighter(): void {
    if (mayAskForHighlighter() && list.querySelector(`.${WAITING}`)) {
      requestHighlighter(model, () => sendMsg(model, { kind: "highlighter" }));
    }
  }

  function render(): void {
    const fromBottom = log.scrollHeight - log.scrollTop;
    const [width, height] = [log.clientWidth, log.clientHeight];
    const status = model.get("status") ?? { state: "idle", note: "" };

    setText(title, model.get("title") || "Untitled thread");
    showPresent();
    const error = model.get("error") ?? "";
    setText(errorText, error);
    errorBox.hidden = !error || error === dismissed;

    const messages = shownMessages();
    if (highlighterNews && highlighterLoaded()) {
      for (const node of nodes.values()) if (node.querySelector(`.${WAITING}`)) renderAgain(node);
    }
    highlighterNews = false;
    putOffHidden(messages, width, height);
    reconcile(list, nodes, messages, (m) => m.id, createMessage, showMessage);
    showHighlighted();
    askForHighlighter();
    olderButton.hidden = messages.length === 0 || !(olderHasMore ?? model.get("has_older"));
    olderButton.disabled = pendingOlder !== null;
    setText(olderButton, pendingOlder === null ? "Load older messages" : "Loading…");

    const state = status.state;
    const connection = model.get("connection") ?? "";
    statusLine.dataset.state = connection ? "reconnecting" : state;
    setText(
      statusLine,
      connection || (state === "failed" && status.note ? `Failed: ${status.note}` : status.note || STATUS_TEXT[state]),
    );
    stop.hidden = state !== "streaming";
    editing.hidden = editingId === null;
    setText(editingText, editingId === null ? "" : "Editing a prompt: Send makes a new version and answers it.");
    const budget = model.get("budget") ?? "";
    setText(budgetNote, budget);
    budgetNote.hidden = budget === "";
    const readOnly = model.get("read_only") ?? "";
    input.disabled = readOnly !== "";
    send.disabled = readOnly !== "" || input.value.trim() === "";
    input.placeholder = readOnly
      ? "Read-only here: this kernel cannot write the store (see the note above)"
      : budget
        ? "Message… a budget is reached: it will be refused (see the note above)"
        : state === "idle" && !model.get("agent_attached")
        ? "Message… answers come from a process running agent.serve()"
        : "Message… (Shift+Enter for a new line)";

    if (stick) log.scrollTop = log.scrollHeight;
    else if (prepended) log.scrollTop = log.scrollHeight - fromBottom;
    prepended = false;
  }

  /** Who else has the thread open, by name (text only: names are untrusted), and who is typing. */
  function showPresent(): void {
    const people = model.get("present") ?? [];
    const shown = people.map((p) => `${p.user}${p.typing ? " (typing…)" : ""}`).join(", ");
    setText(present, shown ? `Also here: ${shown}` : "");
    present.hidden = people.length === 0;
    setAttr(present, "data-users", people.map((p) => p.user).join(" ") || null);
  }

  // Typing: said once when it starts, and again when it stops (after TYPING_IDLE_MS without a key).
  let typing = false;
  let typingTimer: ReturnType<typeof setTimeout> | null = null;
  function setTyping(flag: boolean): void {
    if (typingTimer !== null) clearTimeout(typingTimer);
    typingTimer = flag ? setTimeout(() => setTyping(false), TYPING_IDLE_MS) : null;
    if (flag !== typing) {
      typing = flag;
      sendMsg(model, { kind: "typing", typing: flag });
    }
  }

  function submit(): void {
    const text = input.value.trim();
    if (!text) return;
    setTyping(false);
    if (editingId !== null) sendMsg(model, { kind: "edit", message_id: editingId, text });
    else sendMsg(model, { kind: "send", text });
    editingId = null;
    input.value = "";
    input.style.height = "";
    stick = true;
    frame.schedule();
  }

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  input.addEventListener("input", () => {
    input.style.height = "";
    input.style.height = `${input.scrollHeight}px`;
    send.disabled = input.value.trim() === "";
    setTyping(input.value.trim() !== "");
  });
  send.addEventListener("click", submit);
  stop.addEventListener("click", () => sendMsg(model, { kind: "abort" }));
  dismiss.addEventListener("click", () => {
    dismissed = model.get("error");
    frame.schedule();
  });
  olderButton.addEventListener("click", loadOlder);
  // A message's actions and its version switcher (one listener for every message).
  list.addEventListener("click", (event) => {
    const button = (event.target as Element | null)?.closest?.("[data-action]") as HTMLElement | null;
    const node = button?.closest("[data-message-id]") as HTMLElement | null;
    const id = node?.dataset.messageId;
    if (!button || !id || !list.contains(button)) return;
    const m = shownMessages().find((x) => x.id === id);
    const action = button.dataset.action;
    if (action === "branch") {
      sendMsg(model, { kind: "branch", message_id: id, index: Number(button.dataset.index) });
    } else if (action === "regenerate" || action === "fork") {
      sendMsg(model, { kind: action, message_id: id });
    } else if (action === "edit" && m) {
      editingId = id;
      input.value = m.text;
      input.focus();
      frame.schedule();
    } else if (action === "copy" && m) {
      void navigator.clipboard?.writeText(m.text);
    }
  });
  cancelEdit.addEventListener("click", () => {
    editingId = null;
    input.value = "";
    frame.schedule();
  });
  log.addEventListener("scroll", () => {
    stick = log.scrollHeight - log.scrollTop - log.clientHeight < NEAR_BOTTOM_PX;
  });

  const offHighlighter = onHighlighter(() => {
    highlighterNews = true;
    frame.schedule();
  });
  reset();
  render();
  const unlisten = listen(model, {
    thread_id: reset,
    path: reset, // another version or answer is shown: what the view kept is not on the path
    messages: onMessages,
    stream: () => {
      stream = applySnapshot(stream, model.get("stream"));
      frame.schedule();
    },
    title: frame.schedule,
    status: frame.schedule,
    has_older: frame.schedule,
    agent_attached: frame.schedule,
    error: frame.schedule,
    read_only: frame.schedule,
    connection: frame.schedule,
    budget: frame.schedule,
    present: showPresent,
    highlighted: frame.schedule,
    custom: onCustom,
  });
  return () => {
    unlisten();
    if (typingTimer !== null) clearTimeout(typingTimer);
    offHighlighter();
    releaseHighlighter(model);
    frame.cancel();
    idle.cancel();
  };
}

export default widget(mountChat);
