import { afterEach, describe, expect, it } from "vitest";
import type { ToolsTraits } from "../src/protocol";
import tools from "../src/tools";
import { FakeModel, toolCall } from "./fake-model";

let cleanup: (() => void) | null = null;

function mount(fields: Partial<ToolsTraits>) {
  const model = new FakeModel<ToolsTraits>({ thread_id: "t1", tool_calls: [], ...fields });
  const host = document.createElement("div");
  cleanup = tools.render(model.props(host));
  const rows = () => [...host.querySelectorAll<HTMLElement>('[data-testid="tw-toolcall"]')];
  return { model, host, rows };
}

afterEach(() => {
  cleanup?.();
  cleanup = null;
});

describe("ToolCallsPanel", () => {
  it("shows a running call with its progress", () => {
    const { host, rows } = mount({
      tool_calls: [toolCall("c1", { progress: 0.5, progress_note: "querying warehouse" })],
    });
    expect(host.querySelector(".tw-root")!.getAttribute("data-tw")).toBe("tools");
    const [row] = rows();
    expect(row!.dataset.status).toBe("running");
    expect(row!.querySelector(".tw-tool-name")!.textContent).toBe("lookup_order");
    expect(row!.querySelector(".tw-args")!.textContent).toBe('{\n  "order_id": "42"\n}');
    const bar = row!.querySelector<HTMLElement>('[data-testid="tw-progress"]')!;
    expect(bar.getAttribute("role")).toBe("progressbar");
    expect(bar.getAttribute("aria-valuenow")).toBe("50");
    expect(bar.hidden).toBe(false);
    expect(bar.textContent).toContain("querying warehouse");
    expect(row!.querySelector<HTMLElement>(".tw-outcome")!.hidden).toBe(true);
  });

  it("shows partial arguments as they stream", () => {
    const { rows } = mount({ tool_calls: [toolCall("c1", { status: "streaming_args", arguments: '{"order_' })] });
    expect(rows()[0]!.querySelector(".tw-args")!.textContent).toBe('{"order_');
  });

  it("updates rows in place as calls finish", () => {
    const { model, rows } = mount({ tool_calls: [toolCall("c1")] });
    const row = rows()[0]!;
    const details = row.querySelector("details")!;
    details.open = true;
    model.update({
      tool_calls: [
        toolCall("c1", { status: "success", progress: 1, result: '{"status":"shipped"}', ended_at: 1_700_000_002.5 }),
        toolCall("c2", { status: "error", error: "order not found", ended_at: 1_700_000_000.3 }),
      ],
    });
    const [first, second] = rows();
    expect(first).toBe(row);
    expect(details.open).toBe(true);
    expect(first!.dataset.status).toBe("success");
    expect(first!.querySelector<HTMLElement>('[data-testid="tw-progress"]')!.hidden).toBe(true);
    expect(first!.querySelector(".tw-duration")!.textContent).toBe("2.5 s");
    expect(first!.querySelector("details pre")!.textContent).toBe('{\n  "status": "shipped"\n}');
    expect(second!.querySelector("details summary")!.textContent).toBe("Error");
    expect(second!.querySelector("details pre")!.textContent).toBe("order not found");
  });

  it("says when there are no calls", () => {
    const { host } = mount({});
    expect(host.querySelector<HTMLElement>(".tw-empty")!.hidden).toBe(false);
  });
});
