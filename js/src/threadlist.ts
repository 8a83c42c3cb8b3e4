// ThreadList: the store's threads, newest activity first; picking one sets `selected`.

import { h, isolateKeys, reconcile, setAttr, setText, widget } from "./dom";
import { relativeTime } from "./format";
import type { AnyModel } from "@anywidget/types";
import { listen, type ThreadInfo, type ThreadListTraits } from "./protocol";

const REFRESH_MS = 30_000; // keeps "5 min ago" current

let views = 0;

/** Mount the thread list into `el`; returns the cleanup. */
export function mountThreadList(model: AnyModel<ThreadListTraits>, el: HTMLElement): () => void {
  el.classList.add("tw-threadlist");
  el.dataset.tw = "threadlist";
  const prefix = `tw-threads-${++views}`;
  const listbox = h("ul", { class: "tw-threads", role: "listbox", "aria-label": "Threads", tabindex: "0" });
  const empty = h("p", { class: "tw-empty" }, "No threads yet.");
  el.append(h("div", { class: "tw-pane-head" }, "Threads"), listbox, empty);
  isolateKeys(el);

  const nodes = new Map<string, HTMLElement>();
  let options = 0;
  let active: string | null = null; // the option the keyboard is on

  const threads = (): ThreadInfo[] => model.get("threads") ?? [];

  function create(t: ThreadInfo): HTMLElement {
    return h(
      "li",
      { class: "tw-thread", role: "option", id: `${prefix}-${++options}`, "data-testid": "tw-thread", "data-thread-id": t.id },
      h("div", { class: "tw-thread-top" }, h("span", { class: "tw-thread-title" }), h("time", { class: "tw-thread-time" })),
      h("div", { class: "tw-thread-agent" }),
      h("div", { class: "tw-thread-preview" }),
    );
  }

  function update(li: HTMLElement, t: ThreadInfo): void {
    setText(li.querySelector(".tw-thread-title") as HTMLElement, t.title || "Untitled");
    const time = li.querySelector(".tw-thread-time") as HTMLElement;
    setText(time, relativeTime(t.updated_at));
    setAttr(time, "datetime", new Date(t.updated_at * 1000).toISOString());
    const agent = li.querySelector(".tw-thread-agent") as HTMLElement;
    setText(agent, t.agent ?? "");
    agent.hidden = !t.agent;
    setText(li.querySelector(".tw-thread-preview") as HTMLElement, t.preview ?? "");
    setAttr(li, "aria-selected", String(t.id === model.get("selected")));
    li.classList.toggle("tw-active", t.id === active);
  }

  function render(): void {
    const items = threads();
    if (!items.some((t) => t.id === active)) active = model.get("selected") ?? items[0]?.id ?? null;
    reconcile(listbox, nodes, items, (t) => t.id, create, update);
    setAttr(listbox, "aria-activedescendant", (active && nodes.get(active)?.id) || null);
    empty.hidden = items.length > 0;
  }

  function choose(id: string): void {
    active = id;
    model.set("selected", id);
    model.save_changes();
    render();
  }

  listbox.addEventListener("click", (event) => {
    const li = (event.target as Element).closest<HTMLElement>("[data-thread-id]");
    if (li) choose(li.dataset.threadId!);
  });
  listbox.addEventListener("keydown", (event) => {
    const items = threads();
    const last = items.length - 1;
    const i = items.findIndex((t) => t.id === active);
    const moves: Record<string, number> = { ArrowDown: Math.min(i + 1, last), ArrowUp: Math.max(i - 1, 0), Home: 0, End: last };
    if (event.key in moves && last >= 0) {
      active = items[moves[event.key]!]!.id;
      render();
      nodes.get(active)?.scrollIntoView?.({ block: "nearest" });
    } else if ((event.key === "Enter" || event.key === " ") && active !== null) {
      choose(active);
    } else {
      return;
    }
    event.preventDefault();
  });

  render();
  const timer = setInterval(render, REFRESH_MS);
  const unlisten = listen(model, { threads: render, selected: render });
  return () => {
    unlisten();
    clearInterval(timer);
  };
}

export default widget(mountThreadList);
