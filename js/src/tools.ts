// ToolCallsPanel: a live feed of a thread's tool calls. Also the chips shown under a message.

import { h, isolateKeys, reconcile, setAttr, setText, widget } from "./dom";
import { formatDuration, nowSeconds, prettyJson } from "./format";
import type { AnyModel } from "@anywidget/types";
import { listen, sendMsg, type ToolCall, type ToolCallStatus, type ToolsTraits } from "./protocol";

const STATUS_LABELS: Record<ToolCallStatus, string> = {
  streaming_args: "preparing",
  awaiting_approval: "awaiting approval",
  approved: "approved",
  running: "running",
  success: "done",
  error: "error",
  denied: "denied",
};

/** A progress bar (`role=progressbar`); indeterminate while `progress` is null. */
function progressBar(): HTMLElement {
  return h(
    "div",
    { class: "tw-progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "data-testid": "tw-progress" },
    h("div", { class: "tw-progress-track" }, h("div", { class: "tw-progress-fill" })),
    h("span", { class: "tw-progress-note" }),
  );
}

function updateProgressBar(bar: HTMLElement, call: ToolCall): void {
  const shown = call.status === "running";
  bar.hidden = !shown;
  if (!shown) return;
  const pct = call.progress === null ? null : Math.round(Math.min(1, Math.max(0, call.progress)) * 100);
  const note = call.progress_note ?? "";
  setAttr(bar, "aria-valuenow", pct === null ? null : String(pct));
  setAttr(bar, "aria-valuetext", [pct === null ? "" : `${pct}%`, note].filter(Boolean).join(" ") || null);
  setAttr(bar, "data-indeterminate", pct === null ? "" : null);
  (bar.querySelector(".tw-progress-fill") as HTMLElement).style.width = pct === null ? "" : `${pct}%`;
  setText(bar.querySelector(".tw-progress-note") as HTMLElement, note);
}

function badge(): HTMLElement {
  return h("span", { class: "tw-badge" });
}

function updateBadge(el: HTMLElement, status: ToolCallStatus): void {
  setAttr(el, "data-status", status);
  setText(el, STATUS_LABELS[status]);
}

function setCallStatus(el: HTMLElement, call: ToolCall): void {
  setAttr(el, "data-status", call.status);
  updateBadge(el.querySelector(".tw-badge") as HTMLElement, call.status);
  updateProgressBar(el.querySelector(".tw-progress") as HTMLElement, call);
  updateApproval(el, call);
}

/** What a call that waits for a person shows: Approve, Deny and a note (or reason) to go with the
 * decision; then, in every view, the decision: who made it, and why. */
function approvalParts(withArgs: boolean): HTMLElement[] {
  return [
    h(
      "div",
      { class: "tw-approval", "data-testid": "tw-approval", hidden: "" },
      withArgs ? h("pre", { class: "tw-approval-args", "data-testid": "tw-approval-args" }) : "",
      h("input", {
        class: "tw-approval-note",
        type: "text",
        "data-testid": "tw-approval-note",
        placeholder: "Note, or why not (optional)",
        "aria-label": "Note, or why not",
      }),
      h("button", { class: "tw-approve", type: "button", "data-testid": "tw-approve" }, "Approve"),
      h("button", { class: "tw-deny", type: "button", "data-testid": "tw-deny" }, "Deny"),
    ),
    h("div", { class: "tw-decision", "data-testid": "tw-decision", hidden: "" }),
  ];
}

/** "approved by bob: checked the receipt" (text only: the names and notes are untrusted). */
export function decisionText(call: ToolCall): string {
  if (!call.decision) return "";
  return `${call.decision} by ${call.decided_by ?? "nobody named"}${call.decision_note ? `: ${call.decision_note}` : ""}`;
}

function updateApproval(el: HTMLElement, call: ToolCall): void {
  const box = el.querySelector(".tw-approval") as HTMLElement | null;
  if (box === null) return;
  const waiting = call.status === "awaiting_approval";
  box.hidden = !waiting;
  setAttr(box, "data-tool-call-id", call.id);
  if (!waiting) box.querySelectorAll("button").forEach((b) => ((b as HTMLButtonElement).disabled = false));
  const args = box.querySelector(".tw-approval-args") as HTMLElement | null;
  if (args !== null) setText(args, waiting ? prettyJson(call.arguments) : "");
  const decision = el.querySelector(".tw-decision") as HTMLElement;
  setText(decision, decisionText(call));
  setAttr(decision, "data-decision", call.decision);
  decision.hidden = !call.decision;
}

/** Send the decision of a clicked Approve / Deny inside `root` (one listener for all the calls);
 * the buttons stay disabled until the call's row changes. */
export function listenForDecisions(root: HTMLElement, model: AnyModel<any>): void {
  root.addEventListener("click", (event) => {
    const button = (event.target as HTMLElement).closest(".tw-approve, .tw-deny") as HTMLButtonElement | null;
    const box = button?.closest(".tw-approval") as HTMLElement | null;
    const id = box?.getAttribute("data-tool-call-id");
    if (!button || !box || !id) return;
    const note = (box.querySelector(".tw-approval-note") as HTMLInputElement).value;
    const decision = button.classList.contains("tw-approve") ? "approved" : "denied";
    box.querySelectorAll("button").forEach((b) => ((b as HTMLButtonElement).disabled = true));
    sendMsg(model, { kind: "decide", tool_call_id: id, decision, note });
  });
}

/** A compact chip for a tool call: name, status, progress. */
export function createChip(call: ToolCall): HTMLElement {
  return h(
    "span",
    { class: "tw-chip", "data-testid": "tw-toolcall", "data-call-id": call.call_id },
    h("span", { class: "tw-chip-name" }, call.name),
    badge(),
    progressBar(),
    ...approvalParts(true),
  );
}

export function updateChip(el: HTMLElement, call: ToolCall): void {
  setText(el.querySelector(".tw-chip-name") as HTMLElement, call.name);
  setCallStatus(el, call);
}

function duration(call: ToolCall, now: number): string {
  if (call.started_at === null) return "";
  return formatDuration((call.ended_at ?? now) - call.started_at);
}

function createRow(call: ToolCall): HTMLElement {
  return h(
    "li",
    { class: "tw-tool", "data-testid": "tw-toolcall", "data-call-id": call.call_id },
    h("div", { class: "tw-tool-top" }, h("span", { class: "tw-tool-name" }), badge(), h("span", { class: "tw-duration" })),
    h("pre", { class: "tw-args" }),
    progressBar(),
    ...approvalParts(false),
    h("details", { class: "tw-outcome" }, h("summary"), h("pre")),
  );
}

function updateRow(el: HTMLElement, call: ToolCall, now: number): void {
  setText(el.querySelector(".tw-tool-name") as HTMLElement, call.name);
  setCallStatus(el, call);
  setText(el.querySelector(".tw-duration") as HTMLElement, duration(call, now));
  const args = el.querySelector(".tw-args") as HTMLElement;
  setText(args, call.status === "streaming_args" ? call.arguments : prettyJson(call.arguments));
  args.hidden = call.arguments === "";
  const outcome = el.querySelector(".tw-outcome") as HTMLDetailsElement;
  const failed = call.error !== null;
  outcome.hidden = !failed && call.result === null;
  setAttr(outcome, "data-kind", failed ? "error" : "result");
  setText(outcome.querySelector("summary") as HTMLElement, failed ? "Error" : "Result");
  setText(outcome.querySelector("pre") as HTMLElement, failed ? call.error! : prettyJson(call.result ?? ""));
}

/** Mount the tool-call feed into `el`; returns the cleanup. */
export function mountTools(model: AnyModel<ToolsTraits>, el: HTMLElement): () => void {
  el.classList.add("tw-tools");
  el.dataset.tw = "tools";
  const feed = h("ol", { class: "tw-tool-feed", "aria-label": "Tool calls" });
  const empty = h("p", { class: "tw-empty" }, "No tool calls yet.");
  el.append(h("div", { class: "tw-pane-head" }, "Tool calls"), feed, empty);
  isolateKeys(el);
  listenForDecisions(el, model);

  const rows = new Map<string, HTMLElement>();
  let ticker: ReturnType<typeof setInterval> | null = null;

  function render(): void {
    const calls = model.get("tool_calls") ?? [];
    const now = nowSeconds();
    reconcile(feed, rows, calls, (c) => c.id, createRow, (row, call) => updateRow(row, call, now));
    empty.hidden = calls.length > 0;
    // Tick the elapsed time of running calls once a second, only while there are any.
    const live = calls.some((c) => c.ended_at === null && c.started_at !== null);
    if (live && ticker === null) ticker = setInterval(render, 1000);
    if (!live && ticker !== null) {
      clearInterval(ticker);
      ticker = null;
    }
  }

  render();
  const unlisten = listen(model, { tool_calls: render, thread_id: render });
  return () => {
    unlisten();
    if (ticker !== null) clearInterval(ticker);
  };
}

export default widget(mountTools);
