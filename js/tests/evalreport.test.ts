import { afterEach, describe, expect, it } from "vitest";
import view from "../src/evalreport";
import type { EvalReportTraits } from "../src/protocol";
import { FakeModel } from "./fake-model";

let cleanup: (() => void) | null = null;

afterEach(() => {
  cleanup?.();
  cleanup = null;
});

const hostile = '<img src=x onerror="window.pwned=1">';

describe("EvalReportView", () => {
  it("shows a row per case and each failure folded with its diff, as text", () => {
    const model = new FakeModel<EvalReportTraits>({
      agent: "booking",
      cases: [
        { name: "dinner", passed: true, thread_id: "th_1", failures: [] },
        {
          name: `lunch ${hostile}`,
          passed: false,
          thread_id: "th_2",
          failures: [{ expectation: 'tool_called book_table {"time": "12:30"}', diff: `got: ${hostile}` }],
        },
      ],
    });
    const host = document.createElement("div");
    cleanup = view.render(model.props(host));
    const root = host.querySelector(".tw-root")!;
    expect(root.getAttribute("data-tw")).toBe("evalreport");
    expect(root.querySelector(".tw-pane-head")!.textContent).toBe("Eval of agent booking: 1 of 2 cases passed (50%)");
    const rows = [...root.querySelectorAll('[data-testid="tw-eval-case"]')];
    expect(rows.map((r) => r.querySelector(".tw-eval-mark")!.textContent)).toEqual(["✓ pass", "✗ fail"]);
    const details = rows[1]!.querySelector("details")!;
    expect(details.open).toBe(false);
    expect(details.querySelector("summary")!.textContent).toBe('✗ tool_called book_table {"time": "12:30"}');
    expect(details.querySelector("pre")!.textContent).toBe(`got: ${hostile}`);
    expect(root.querySelector("img")).toBeNull(); // the model's text stays text
    expect(rows[1]!.querySelector(".tw-eval-name")!.textContent).toBe(`lunch ${hostile}`);

    model.set("cases", [{ name: "dinner", passed: true, thread_id: "th_1", failures: [] }]);
    expect(root.querySelectorAll('[data-testid="tw-eval-case"]')).toHaveLength(1);
    expect(root.querySelector(".tw-pane-head")!.textContent).toBe("Eval of agent booking: 1 of 1 cases passed (100%)");
  });
});
