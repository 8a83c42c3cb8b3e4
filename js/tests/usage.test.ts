import { afterEach, describe, expect, it } from "vitest";
import type { UsagePanelTraits, UsageRow } from "../src/protocol";
import usage, { chartData, fade, shownRows } from "../src/usage";
import { FakeModel } from "./fake-model";

const row = (group: string, part: string, input: number, output: number, usd: string | null): UsageRow => ({
  group,
  part,
  input_tokens: input,
  cached_input_tokens: 0,
  output_tokens: output,
  usd,
  cost: usd === null ? "no price" : `${usd} $`,
  estimated: false,
});

const rows = [
  row("2026-01-30", "gpt-4o-mini", 1000, 200, "0.00027"),
  row("2026-01-31", "gpt-4o-mini", 3000, 600, "0.00081"),
  row("2026-01-31", "llama3", 500, 500, null),
];
const groups = [row("2026-01-30", "", 1000, 200, "0.00027"), row("2026-01-31", "", 3500, 1100, "0.00081")];

// jsdom has no canvas: the view shows the table only (Chart.js draws in the browser test)
HTMLCanvasElement.prototype.getContext = (() => null) as never;

let cleanup: (() => void) | null = null;

function mount(fields: Partial<UsagePanelTraits> = {}) {
  const model = new FakeModel<UsagePanelTraits>({
    by: "day",
    part_by: "model",
    since: "7d",
    metric: "tokens",
    rows,
    groups,
    total: row("", "", 4500, 1300, "0.00108"),
    selected: null,
    ...fields,
  });
  const host = document.createElement("div");
  document.body.append(host);
  cleanup = usage.render(model.props(host));
  const tableRows = () => [...host.querySelectorAll<HTMLElement>('[data-testid="tw-usage-row"]')].filter((r) => r.closest("tbody"));
  return { model, host, tableRows };
}

afterEach(() => {
  cleanup?.();
  cleanup = null;
  document.body.innerHTML = "";
});

describe("UsagePanel", () => {
  it("stacks one dataset per part over the groups, in tokens or dollars", () => {
    const tokens = chartData(groups, rows, "tokens");
    expect(tokens.labels).toEqual(["2026-01-30", "2026-01-31"]);
    expect(tokens.datasets.map((d) => [d.label, d.data, d.stack])).toEqual([
      ["gpt-4o-mini", [1200, 3600], "usage"],
      ["llama3", [0, 1000], "usage"],
    ]);
    const dollars = chartData(groups, rows, "usd");
    expect(dollars.datasets[0]!.data).toEqual([0.00027, 0.00081]);
    expect(dollars.datasets[1]!.data).toEqual([0, 0]); // no price: no height, never a made-up one
  });

  it("shows the table under the chart, and a clicked group only", () => {
    const { model, host, tableRows } = mount();
    expect(host.querySelector(".tw-root")!.getAttribute("data-tw")).toBe("usage");
    expect(host.textContent).toContain("Usage per day since 7d, parts per model");
    expect([...host.querySelectorAll("th")].map((th) => th.textContent)).toEqual(["day", "model", "input", "output", "total", "cost"]);
    expect(tableRows().map((r) => r.textContent)).toEqual([
      "2026-01-30gpt-4o-mini1,0002001,2000.00027 $",
      "2026-01-31gpt-4o-mini3,0006003,6000.00081 $",
      "2026-01-31llama3500500" + "1,000no price",
    ]);
    expect(host.querySelector("tfoot")!.textContent).toBe("total4,5001,3005,8000.00108 $");
    tableRows()[1]!.querySelector("button")!.click(); // the group's name in the table, like its bar
    expect(model.get("selected")).toBe("2026-01-31");
    expect(model.saves).toBe(1);
    expect(tableRows()).toHaveLength(2);
    expect(host.querySelector("tfoot")!.textContent).toContain("total of 2026-01-31");
    (host.querySelector('[data-testid="tw-usage-all"]') as HTMLButtonElement).click();
    expect(model.get("selected")).toBe(null);
    expect(tableRows()).toHaveLength(3);
  });

  it("follows new rows and the metric toggle", () => {
    const { model, host, tableRows } = mount({ rows: [], groups: [] });
    expect(host.querySelector(".tw-empty")!.hasAttribute("hidden")).toBe(false);
    model.update({ rows, groups });
    expect(tableRows()).toHaveLength(3);
    (host.querySelector('[data-testid="tw-usage-metric"]') as HTMLButtonElement).click();
    expect(model.get("metric")).toBe("usd");
    expect(host.querySelector('[data-testid="tw-usage-metric"]')!.textContent).toBe("Show tokens");
  });

  it("filters and fades without touching the data", () => {
    expect(shownRows(rows, "2026-01-30")).toEqual([rows[0]]);
    expect(fade("#4e79a7", 0.35)).toBe("#4e79a759");
    expect(fade("#4e79a7", 1)).toBe("#4e79a7");
  });
});
