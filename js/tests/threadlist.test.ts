import { afterEach, describe, expect, it, vi } from "vitest";
import type { SearchHitInfo, ThreadInfo, ThreadListTraits } from "../src/protocol";
import threadlist from "../src/threadlist";
import { FakeModel } from "./fake-model";

const now = Date.now() / 1000;
const thread = (id: string, fields: Partial<ThreadInfo> = {}): ThreadInfo => ({
  id,
  title: `Thread ${id}`,
  agent: "support",
  user_id: "alice",
  updated_at: now - 300,
  preview: "Where is order 42?",
  ...fields,
});

let cleanup: (() => void) | null = null;

function mount(fields: Partial<ThreadListTraits>) {
  const model = new FakeModel<ThreadListTraits>({
    threads: [],
    selected: null,
    query: "",
    hits: [],
    search_error: "",
    ...fields,
  });
  const host = document.createElement("div");
  document.body.append(host);
  cleanup = threadlist.render(model.props(host));
  const options = () => [...host.querySelectorAll<HTMLElement>('[role="option"]')];
  return { model, host, options, listbox: host.querySelector<HTMLElement>('[role="listbox"]')! };
}

afterEach(() => {
  cleanup?.();
  cleanup = null;
  document.body.innerHTML = "";
});

describe("ThreadList", () => {
  it("lists threads with title, agent, last activity and preview", () => {
    const { host, options } = mount({ threads: [thread("a"), thread("b", { title: null, agent: null })], selected: "a" });
    expect(host.querySelector(".tw-root")!.getAttribute("data-tw")).toBe("threadlist");
    const [a, b] = options();
    expect(a!.textContent).toContain("Thread a");
    expect(a!.textContent).toContain("support");
    expect(a!.textContent).toContain("5 min ago");
    expect(a!.textContent).toContain("Where is order 42?");
    expect(a!.getAttribute("aria-selected")).toBe("true");
    expect(b!.querySelector(".tw-thread-title")!.textContent).toBe("Untitled");
    expect(b!.getAttribute("aria-selected")).toBe("false");
  });

  it("selects a thread on click and saves", () => {
    const { model, options } = mount({ threads: [thread("a"), thread("b")] });
    options()[1]!.click();
    expect(model.get("selected")).toBe("b");
    expect(model.saves).toBe(1);
    expect(options()[1]!.getAttribute("aria-selected")).toBe("true");
  });

  it("moves with arrow keys and selects with Enter, keeping keys from the notebook", () => {
    const { model, host, listbox, options } = mount({ threads: [thread("a"), thread("b"), thread("c")], selected: "a" });
    let leaked = 0;
    host.addEventListener("keydown", () => leaked++);
    const press = (key: string) => listbox.dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true, cancelable: true }));
    press("ArrowDown");
    press("ArrowDown");
    press("ArrowUp");
    expect(listbox.getAttribute("aria-activedescendant")).toBe(options()[1]!.id);
    press("Enter");
    expect(model.get("selected")).toBe("b");
    press("End");
    press(" ");
    expect(model.get("selected")).toBe("c");
    expect(leaked).toBe(0);
  });

  it("sends the search box's query once typing pauses, and Escape clears it", () => {
    vi.useFakeTimers();
    try {
      const { model, host } = mount({ threads: [thread("a")] });
      const box = host.querySelector<HTMLInputElement>('[data-testid="tw-search"]')!;
      box.value = "ref";
      box.dispatchEvent(new Event("input"));
      box.value = "refund";
      box.dispatchEvent(new Event("input"));
      expect(model.get("query")).toBe("");
      vi.advanceTimersByTime(250);
      expect(model.get("query")).toBe("refund");
      expect(model.saves).toBe(1);
      box.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape" }));
      expect(model.get("query")).toBe("");
      expect(box.value).toBe("");
    } finally {
      vi.useRealTimers();
    }
  });

  it("shows the hits of a query, the matched words marked as text, and opens a hit's thread", () => {
    const hit = (id: string, thread_id: string, parts: SearchHitInfo["parts"]): SearchHitInfo => ({
      thread_id, thread_title: `Thread ${thread_id}`, message_id: id, role: "assistant", created_at: now - 60, parts,
    });  // prettier-ignore
    const { model, host, listbox } = mount({ threads: [thread("a"), thread("b")], selected: "a" });
    const hits = () => [...host.querySelectorAll<HTMLElement>('[data-testid="tw-hit"]')];
    expect(hits()).toHaveLength(0);
    model.set("query", "refund");
    model.set("hits", [
      hit("m1", "b", [{ text: "Your ", mark: false }, { text: "refund", mark: true }, { text: " <img src=x onerror=alert(1)>", mark: false }]),
      hit("m2", "a", [{ text: "refund", mark: true }]),
    ]);
    expect(listbox.hidden).toBe(true);
    const [first, second] = hits();
    expect(first!.textContent).toContain("Thread b · assistant");
    expect([...first!.querySelectorAll("mark")].map((m) => m.textContent)).toEqual(["refund"]);
    expect(first!.querySelector(".tw-snippet")!.textContent).toBe("Your refund <img src=x onerror=alert(1)>");
    expect(first!.querySelector("img")).toBeNull(); // text, never HTML
    expect(second!.querySelector("mark")!.textContent).toBe("refund");
    first!.click();
    expect(model.get("selected")).toBe("b");
    model.set("hits", []);
    expect(host.querySelector(".tw-search-note")!.textContent).toBe("No messages match.");
    model.set("search_error", "search query '\"x' has a quote (\") that is not closed");
    expect(host.querySelector(".tw-search-note")!.textContent).toContain("not closed");
    model.set("query", "");
    expect(listbox.hidden).toBe(false);
    expect((host.querySelector(".tw-search-note") as HTMLElement).hidden).toBe(true);
  });
});
