// UsagePanel: stacked bars of tokens or dollars per group (a day, an agent, a model, a thread, a
// user), one part per model (per agent when the bars are models), and a table under them. Clicking
// a bar (or a group in the table) shows only its rows; clicking it again shows all. Chart.js draws
// the bars (in this view's bundle only, registered with just the parts a bar chart needs); its
// colours come from JupyterLab's theme and follow a theme switch.

import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  type ChartData,
  Legend,
  LinearScale,
  Tooltip,
} from "chart.js";
import type { AnyModel } from "@anywidget/types";
import { h, reconcile, setAttr, setText, widget } from "./dom";
import { listen, type UsageMetric, type UsagePanelTraits, type UsageRow } from "./protocol";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

/** Ten colours that read on light and dark backgrounds (Tableau 10). */
const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];

const tokens = (r: UsageRow): number => r.input_tokens + r.output_tokens;

/** The height of a part: its tokens, or its dollars (0 when it has no price; plotting only). */
export function height(r: UsageRow, metric: UsageMetric): number {
  return metric === "usd" ? (r.usd === null ? 0 : Number(r.usd)) : tokens(r);
}

/** The chart's data: a label per group (in the order given), a dataset per part, stacked. */
export function chartData(groups: UsageRow[], rows: UsageRow[], metric: UsageMetric): ChartData<"bar", number[], string> {
  const labels = groups.map((g) => g.group);
  const index = new Map(labels.map((label, i) => [label, i]));
  const parts: string[] = [];
  const values = new Map<string, number[]>();
  for (const r of rows) {
    let data = values.get(r.part);
    if (data === undefined) {
      data = labels.map(() => 0);
      values.set(r.part, data);
      parts.push(r.part);
    }
    const i = index.get(r.group);
    if (i !== undefined) data[i] = (data[i] ?? 0) + height(r, metric);
  }
  return {
    labels,
    datasets: parts.map((part, i) => ({
      label: part,
      data: values.get(part)!,
      backgroundColor: PALETTE[i % PALETTE.length],
      maxBarThickness: 120,
      stack: "usage",
    })),
  };
}

/** The table's rows: all, or the selected group's. */
export function shownRows(rows: UsageRow[], selected: string | null): UsageRow[] {
  return selected === null ? rows : rows.filter((r) => r.group === selected);
}

function themeColours(el: HTMLElement): { text: string; grid: string } {
  const style = getComputedStyle(el);
  return {
    text: style.getPropertyValue("--tw-fg-muted").trim() || "#616161",
    grid: style.getPropertyValue("--tw-border").trim() || "#e0e0e0",
  };
}

const fmt = (n: number): string => n.toLocaleString("en-US");

/** Mount the usage panel into `el`; returns the cleanup. */
export function mountUsage(model: AnyModel<UsagePanelTraits>, el: HTMLElement): () => void {
  el.classList.add("tw-usage");
  el.dataset.tw = "usage";
  const title = h("div", { class: "tw-pane-head" });
  const toggle = h("button", { type: "button", class: "tw-usage-metric", "data-testid": "tw-usage-metric" });
  const canvas = h("canvas", { "aria-label": "Usage chart", role: "img", "data-testid": "tw-usage-chart" });
  const chartBox = h("div", { class: "tw-usage-chart" }, canvas);
  const filter = h("div", { class: "tw-usage-filter", role: "status" });
  const showAll = h("button", { type: "button", "data-testid": "tw-usage-all" }, "Show all");
  const body = h("tbody");
  const foot = h("tfoot");
  const table = h(
    "table",
    { class: "tw-usage-table", "data-testid": "tw-usage-table" },
    h("thead", {}, h("tr", {}, ...["", "", "input", "output", "total", "cost"].map((c) => h("th", { scope: "col" }, c)))),
    body,
    foot,
  );
  const empty = h("p", { class: "tw-empty" }, "No usage recorded yet.");
  el.append(h("div", { class: "tw-usage-head" }, title, toggle), chartBox, filter, table, empty);
  filter.append(h("span"), showAll);

  const nodes = new Map<string, HTMLTableRowElement>();
  const context = canvas.getContext("2d"); // null where there is no canvas (a DOM without one): the table only
  let chart: Chart<"bar", number[], string> | null = null;

  const select = (group: string | null): void => {
    model.set("selected", group !== null && model.get("selected") === group ? null : group);
    model.save_changes();
  };

  function cells(tr: HTMLTableRowElement, r: UsageRow): void {
    const [group, part, input, output, total, cost] = [...tr.children] as HTMLElement[];
    setText(group!.firstElementChild as HTMLElement, r.group);
    setText(part!, r.part);
    setText(input!, fmt(r.input_tokens));
    setAttr(input!, "title", r.cached_input_tokens ? `${fmt(r.cached_input_tokens)} of them read from a prompt cache` : null);
    setText(output!, fmt(r.output_tokens));
    setText(total!, fmt(tokens(r)));
    setText(cost!, r.cost);
    setAttr(cost!, "title", r.estimated ? "estimated: the provider reported no usage" : null);
    setAttr(cost!, "class", r.usd === null ? "tw-usage-noprice" : null);
  }

  function createRow(r: UsageRow): HTMLTableRowElement {
    const button = h("button", { type: "button", class: "tw-usage-group" });
    button.addEventListener("click", () => select(r.group));
    const tr = h("tr", { "data-testid": "tw-usage-row" }, h("td", {}, button), h("td"), h("td"), h("td"), h("td"), h("td"));
    return tr as HTMLTableRowElement;
  }

  function paint(): void {
    const metric = model.get("metric");
    const rows = model.get("rows") ?? [];
    const groups = model.get("groups") ?? [];
    const selected = model.get("selected");
    const since = model.get("since");
    setText(title, `Usage per ${model.get("by")}${since ? ` since ${since}` : ""}, parts per ${model.get("part_by")}`);
    setText(toggle, metric === "usd" ? "Show tokens" : "Show dollars");
    const [groupHead, partHead] = [...table.tHead!.rows[0]!.cells];
    setText(groupHead!, model.get("by"));
    setText(partHead!, model.get("part_by"));
    empty.hidden = rows.length > 0;
    table.hidden = chartBox.hidden = rows.length === 0;
    filter.hidden = selected === null;
    setText(filter.firstElementChild as HTMLElement, selected === null ? "" : `Only ${selected}. `);
    reconcile(body, nodes, shownRows(rows, selected), (r) => `${r.group}\u0000${r.part}`, createRow, cells);
    const sum = selected === null ? model.get("total") : groups.find((g) => g.group === selected);
    foot.replaceChildren();
    if (sum !== undefined) {
      const tr = createRow({ ...sum, group: "total" });
      cells(tr, { ...sum, group: selected === null ? "total" : `total of ${selected}` });
      (tr.firstElementChild!.firstElementChild as HTMLButtonElement).disabled = true;
      foot.append(tr);
    }
    el.dataset.bars = String(groups.length);
    if (context === null) return;
    const data = chartData(groups, rows, metric);
    const { text, grid } = themeColours(el);
    for (const set of data.datasets) {
      const faded = selected === null ? undefined : (set.data as number[]).map((_, i) => (data.labels![i] === selected ? 1 : 0.35));
      set.backgroundColor = faded === undefined ? set.backgroundColor : faded.map((a) => fade(set.backgroundColor as string, a));
    }
    const scale = { ticks: { color: text }, grid: { color: grid }, stacked: true };
    const options = {
      animation: false as const,
      responsive: true,
      maintainAspectRatio: false,
      scales: {
        x: scale,
        y: { ...scale, beginAtZero: true, title: { display: true, text: metric === "usd" ? "dollars" : "tokens", color: text } },
      },
      plugins: { legend: { labels: { color: text } } },
      onClick: (_event: unknown, elements: { index: number }[]) => {
        const hit = elements[0];
        if (hit !== undefined) select(data.labels![hit.index] ?? null);
      },
    };
    if (chart === null) chart = new Chart<"bar", number[], string>(context, { type: "bar", data, options });
    else {
      chart.data = data;
      chart.options = options;
      chart.update();
    }
    el.dataset.painted = String(Number(el.dataset.painted ?? "0") + 1);
  }

  toggle.addEventListener("click", () => {
    model.set("metric", model.get("metric") === "usd" ? "tokens" : "usd");
    model.save_changes();
  });
  showAll.addEventListener("click", () => select(null));
  // A theme switch in JupyterLab changes the --jp-* variables: repaint with the new colours.
  const theme = new MutationObserver(() => paint());
  theme.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"] });

  paint();
  const off = listen(model, { rows: paint, groups: paint, total: paint, metric: paint, selected: paint, since: paint, by: paint });
  return () => {
    off();
    theme.disconnect();
    chart?.destroy();
  };
}

/** `#rrggbb` at opacity `alpha`. */
export function fade(hex: string, alpha: number): string {
  if (alpha >= 1 || !/^#[0-9a-f]{6}$/i.test(hex)) return hex;
  const a = Math.round(alpha * 255).toString(16).padStart(2, "0");
  return `${hex}${a}`;
}

export default widget(mountUsage);
