import { afterEach, describe, expect, it } from "vitest";
import type { ThreadInfo, ThreadListTraits } from "../src/protocol";
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
  const model = new FakeModel<ThreadListTraits>({ threads: [], selected: null, ...fields });
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
});
