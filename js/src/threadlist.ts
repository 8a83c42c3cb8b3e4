// ThreadList: the store's threads, newest activity first; picking one sets `selected`. The search
// box sets `query`; while it holds one, the list shows the messages it finds (`hits`), and picking
// one selects its thread.

import { h, isolateKeys, reconcile, setAttr, setText, widget } from "./dom";
import { relativeTime } from "./format";
import type { AnyModel } from "@anywidget/types";
import { listen, type SearchHitInfo, type SnippetPart, type ThreadInfo, type ThreadListTraits } from "./protocol";

const REFRESH_MS = 30_000; // keeps "5 min ago" current
const TYPING_MS = 200; // the query goes to the kernel once typing pauses this long

/** A snippet's parts as nodes: text, and `<mark>` around the matched words (never parsed as HTML). */
export function snippetNodes(parts: SnippetPart[]): Node[] {
  return parts.map((p) => (p.mark ? h("mark", { class: "tw-mark" }, p.text) : document.createTextNode(p.text)));
}

let views = 0;

/** Mount the thread list into `el`; returns the cleanup. */
export function mountThreadList(model: AnyModel<ThreadListTraits>, el: HTMLElement): () => void {
  el.classList.add("tw-threadlist");
  el.dataset.tw = "threadlist";
  const prefix = `tw-threads-${++views}`;
  const listbox = h("ul", { class: "tw-threads", role: "listbox", "aria-label": "Threads", tabindex: "0" });
  const empty = h("p", { class: "tw-empty" }, "No threads yet.");
  const box = h("input", {
    type: "search", class: "tw-search", placeholder: "Search messages", "aria-label": "Search messages",
    "data-testid": "tw-search",
  });
  const found = h("ul", { class: "tw-threads tw-hits", role: "list", "aria-label": "Messages found" });
  const note = h("p", { class: "tw-empty tw-search-note", role: "status" });
  el.append(h("div", { class: "tw-pane-head" }, "Threads"), box, listbox, found, note, empty);
  isolateKeys(el);
  const hitNodes = new Map<string, HTMLElement>();
  let typing: ReturnType<typeof setTimeout> | undefined;

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

  function createHit(hit: SearchHitInfo): HTMLElement {
    return h(
      "li",
      {
        class: "tw-thread tw-hit", tabindex: "0", "data-testid": "tw-hit", "data-thread-id": hit.thread_id,
        "data-message-id": hit.message_id,
      },
      h("div", { class: "tw-thread-top" }, h("span", { class: "tw-thread-title" }), h("time", { class: "tw-thread-time" })),
      h("div", { class: "tw-thread-preview tw-snippet" }),
    );
  }

  function updateHit(li: HTMLElement, hit: SearchHitInfo): void {
    setText(li.querySelector(".tw-thread-title") as HTMLElement, `${hit.thread_title || "Untitled"} · ${hit.role}`);
    setText(li.querySelector(".tw-thread-time") as HTMLElement, relativeTime(hit.created_at));
    const snippet = li.querySelector(".tw-snippet") as HTMLElement;
    const text = hit.parts.map((p) => (p.mark ? `[${p.text}]` : p.text)).join("");
    if (snippet.dataset.text !== text) {
      snippet.dataset.text = text;
      snippet.replaceChildren(...snippetNodes(hit.parts));
    }
  }

  function renderSearch(): boolean {
    const query = model.get("query") ?? "";
    if (document.activeElement !== box && box.value !== query) box.value = query; // set elsewhere
    const searching = query.trim() !== "";
    const hits = searching ? (model.get("hits") ?? []) : [];
    reconcile(found, hitNodes, hits, (x) => x.message_id, createHit, updateHit);
    const error = model.get("search_error") ?? "";
    setText(note, error || (searching && hits.length === 0 ? "No messages match." : ""));
    note.classList.toggle("tw-error-text", error !== "");
    note.hidden = !searching;
    found.hidden = !searching;
    return searching;
  }

  function render(): void {
    const searching = renderSearch();
    listbox.hidden = searching;
    const items = threads();
    if (!items.some((t) => t.id === active)) active = model.get("selected") ?? items[0]?.id ?? null;
    reconcile(listbox, nodes, items, (t) => t.id, create, update);
    setAttr(listbox, "aria-activedescendant", (active && nodes.get(active)?.id) || null);
    empty.hidden = searching || items.length > 0;
  }

  function setQuery(query: string): void {
    clearTimeout(typing);
    if (query === (model.get("query") ?? "")) return;
    model.set("query", query);
    model.save_changes();
  }

  box.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => setQuery(box.value), TYPING_MS);
  });
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter") setQuery(box.value);
    else if (event.key === "Escape") {
      box.value = "";
      setQuery("");
    }
  });
  found.addEventListener("click", (event) => {
    const li = (event.target as Element).closest<HTMLElement>("[data-thread-id]");
    if (li) choose(li.dataset.threadId!, li.dataset.messageId);
  });
  found.addEventListener("keydown", (event) => {
    const li = (event.target as Element).closest<HTMLElement>("[data-thread-id]");
    if (li && event.key === "Enter") {
      event.preventDefault();
      choose(li.dataset.threadId!, li.dataset.messageId);
    }
  });

  /** Open a thread; a hit's message too, where a chat shows the thread (ThreadApp: `highlighted`). */
  function choose(id: string, messageId?: string): void {
    active = id;
    model.set("selected", id);
    const app = model as unknown as AnyModel<{ highlighted?: string }>;
    if (messageId !== undefined && app.get("highlighted") !== undefined) app.set("highlighted", messageId);
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
  const unlisten = listen(model, { threads: render, selected: render, query: render, hits: render, search_error: render });
  return () => {
    unlisten();
    clearInterval(timer);
    clearTimeout(typing);
  };
}

export default widget(mountThreadList);
