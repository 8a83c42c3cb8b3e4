import { afterEach, describe, expect, it } from "vitest";
import app from "../src/app";
import type { AppTraits } from "../src/protocol";
import { chatTraits, FakeModel, message, nextFrame, toolCall } from "./fake-model";

let cleanup: (() => void) | null = null;

afterEach(() => {
  cleanup?.();
  cleanup = null;
});

describe("ThreadApp", () => {
  it("composes the list, the chat and the tool feed on one model", async () => {
    const model = new FakeModel<AppTraits>({
      ...chatTraits({ messages: [message("m1", { status: "streaming", text: "" })], status: { state: "streaming", note: "" } }),
      threads: [{ id: "t1", title: "Order help", agent: "support", user_id: null, updated_at: 0, preview: null }],
      selected: "t1",
      query: "",
      hits: [],
      search_error: "",
      tool_calls: [toolCall("c1")],
    });
    const host = document.createElement("div");
    cleanup = app.render(model.props(host));
    const root = host.querySelector(".tw-root")!;
    expect(root.getAttribute("data-tw")).toBe("app");
    expect([...root.querySelectorAll("[data-tw]")].map((el) => el.getAttribute("data-tw"))).toEqual([
      "threadlist",
      "chat",
      "tools",
    ]);
    expect(root.querySelectorAll('[data-tw="tools"] [data-testid="tw-toolcall"]')).toHaveLength(1);

    model.custom({ kind: "delta", message_id: "m1", first_seq: 1, seq: 1, text: "Hi", end: false });
    await nextFrame();
    expect(root.querySelector('[data-testid="tw-message"] .tw-body')!.textContent!.trim()).toBe("Hi");

    cleanup();
    cleanup = null;
    expect(model.listenerCount()).toBe(0);
  });

  it("opens a search hit's thread with the hit highlighted in the chat", async () => {
    const model = new FakeModel<AppTraits>({
      ...chatTraits({ messages: [message("m1", { text: "first thread" })] }),
      threads: [],
      selected: "t1",
      query: "refund",
      hits: [{ thread_id: "t2", thread_title: "Kettle", message_id: "m9", role: "user", created_at: 0,
               parts: [{ text: "a refund", mark: false }] }],
      search_error: "",
      tool_calls: [],
      highlighted: "",
    });
    const host = document.createElement("div");
    cleanup = app.render(model.props(host));
    await nextFrame();
    host.querySelector<HTMLElement>('[data-testid="tw-hit"]')!.click();
    expect([model.get("selected"), model.get("highlighted")]).toEqual(["t2", "m9"]);
    expect(model.saves).toBeGreaterThan(0);
    model.update({ thread_id: "t2", messages: [message("m9", { text: "a refund" })] }); // what the kernel sends
    await nextFrame();
    expect(host.querySelector(".tw-highlighted")?.getAttribute("data-message-id")).toBe("m9");
  });

  it.each([
    ["thread_id first", ["thread_id", "title", "messages", "has_older"]],
    ["messages first", ["messages", "has_older", "title", "thread_id"]],
  ] as const)("starts over when the selected thread changes (%s)", async (_, order) => {
    const model = new FakeModel<AppTraits>({
      ...chatTraits({ messages: [message("m1", { text: "first thread" })], has_older: true }),
      threads: [],
      selected: "t1",
      query: "",
      hits: [],
      search_error: "",
      tool_calls: [],
    });
    const host = document.createElement("div");
    cleanup = app.render(model.props(host));
    const next: Partial<AppTraits> = {
      thread_id: "t2",
      title: "Other",
      messages: [message("m9", { text: "second thread" })],
      has_older: false,
    };
    model.update(Object.fromEntries(order.map((name) => [name, next[name]])));
    await nextFrame();
    const ids = [...host.querySelectorAll<HTMLElement>('[data-testid="tw-message"]')].map((m) => m.dataset.messageId);
    expect(ids).toEqual(["m9"]);
    expect(host.querySelector<HTMLElement>(".tw-older")!.hidden).toBe(true);
  });
});
