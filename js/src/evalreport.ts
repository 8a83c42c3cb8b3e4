// EvalReportView: an eval report as a table, one row per case (pass or fail, its thread), each
// failed expectation folded under its name with its diff. Everything is text (names, diffs and the
// model's words in them are never parsed as HTML).

import type { AnyModel } from "@anywidget/types";
import { h, widget } from "./dom";
import { listen, type EvalCaseRow, type EvalReportTraits } from "./protocol";

/** One case's row: mark, name, thread, and a `<details>` per failed expectation. */
export function caseRow(c: EvalCaseRow): HTMLTableRowElement {
  const failures = h("td", { class: "tw-eval-failures" });
  for (const f of c.failures) {
    failures.append(
      h("details", { class: "tw-eval-failure" }, h("summary", {}, `✗ ${f.expectation}`), h("pre", { class: "tw-eval-diff" }, f.diff)),
    );
  }
  return h(
    "tr",
    { class: c.passed ? "tw-eval-pass" : "tw-eval-fail", "data-testid": "tw-eval-case" },
    h("td", { class: "tw-eval-mark" }, c.passed ? "✓ pass" : "✗ fail"),
    h("td", { class: "tw-eval-name" }, c.name),
    h("td", {}, h("code", {}, c.thread_id ?? "")),
    failures,
  );
}

/** Mount the report into `el`; returns the cleanup. */
export function mountEvalReport(model: AnyModel<EvalReportTraits>, el: HTMLElement): () => void {
  el.classList.add("tw-evalreport");
  el.dataset.tw = "evalreport";
  const head = h("div", { class: "tw-pane-head" });
  const body = h("tbody");
  const header = h("tr", {}, h("th", {}, ""), h("th", {}, "case"), h("th", {}, "thread"), h("th", {}, "failures"));
  el.append(head, h("table", { class: "tw-eval-table" }, h("thead", {}, header), body));

  function render(): void {
    const cases = model.get("cases") ?? [];
    const passed = cases.filter((c) => c.passed).length;
    const rate = cases.length ? Math.round((100 * passed) / cases.length) : 100;
    head.textContent = `Eval of agent ${model.get("agent")}: ${passed} of ${cases.length} cases passed (${rate}%)`;
    body.replaceChildren(...cases.map(caseRow));
  }

  render();
  return listen(model, { agent: render, cases: render });
}

export default widget(mountEvalReport);
