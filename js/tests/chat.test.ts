import { afterEach, describe, expect, it } from "vitest";
import chat from "../src/chat";
import type { ChatTraits } from "../src/protocol";
import { chatTraits, FakeModel, message, nextFrame, toolCall } from "./fake-model";

let cleanup: (() => void) | null = null;

function mount(fields: Partial<ChatTraits> = {}) {
  const model = new FakeModel(chatTraits(fields));
  const host = document.createElement("div");
  document.body.append(host);
  cleanup = chat.render(model.props(host));
  const $ = <E extends HTMLElement = HTMLElement>(testid: string) => host.querySelector<E>(`[data-testid="${testid}"]`)!;
  const messages = () => [...host.querySelectorAll<HTMLElement>('[data-testid="tw-message"]')];
  return { model, host, $, messages };
}

afterEach(() => {
  cleanup?.();
  cleanup = null;
  document.body.innerHTML = "";
});

const key = (type: string, init: KeyboardEventInit) => new KeyboardEvent(type, { bubbles: true, cancelable: true, ...init });

describe("ChatView", () => {
  it("renders the messages snapshot", () => {
    const { host, messages } = mount({
      messages: [
        message("m1", { role: "user", text: "Where is order 42?" }),
        message("m2", { text: "It has **shipped**.", tool_calls: [toolCall("c1", { status: "success" })] }),
      ],
    });
    const root = host.querySelector(".tw-root")!;
    expect(root.getAttribute("data-tw")).toBe("chat");
    const [user, assistant] = messages();
    expect(user!.dataset).toMatchObject({ role: "user", status: "success", messageId: "m1" });
    expect(user!.textContent).toContain("Where is order 42?");
    expect(assistant!.dataset.role).toBe("assistant");
    expect(assistant!.querySelector("strong")?.textContent).toBe("shipped");
    const chip = assistant!.querySelector<HTMLElement>('[data-testid="tw-toolcall"]')!;
    expect(chip.dataset.status).toBe("success");
    expect(chip.textContent).toContain("lookup_order");
    expect(host.querySelector(".tw-title")?.textContent).toBe("Order help");
  });

  it("shows what an answer and its thread cost beside the answer, with the details on hover", () => {
    const detail = "answer: 1,200 in / 300 out tokens; thread: 2,400 in / 600 out tokens; priced at 0.15 $ in / 0.6 $ out per million tokens";
    const { messages } = mount({
      messages: [
        message("m1", { role: "user", text: "Where is order 42?" }),
        message("m2", { text: "Shipped.", cost: { answer: "0.00036 $", thread: "0.00072 $", detail } }),
        message("m3", { role: "user", text: "Thanks" }),
        message("m4", { status: "aborted", text: "You're", error: "budget per_thread 0.50 $ reached: 0.51 $" }),
      ],
    });
    const [prompt, answer, , stopped] = messages();
    const cost = answer!.querySelector<HTMLElement>('[data-testid="tw-cost"]')!;
    expect(cost.hidden).toBe(false);
    expect(cost.textContent).toBe("0.00036 $ · thread 0.00072 $");
    expect(cost.title).toBe(detail);
    expect(prompt!.querySelector<HTMLElement>('[data-testid="tw-cost"]')!.hidden).toBe(true);
    expect(stopped!.textContent).toContain("budget per_thread 0.50 $ reached: 0.51 $"); // why it stopped, said in the view
  });

  it("shows prompts waiting their turn as queued, with their place, and not as streaming", async () => {
    const { model, messages, $ } = mount({
      messages: [
        message("p1", { role: "user", text: "first" }),
        message("a1", { status: "streaming", text: "" }),
        message("p2", { role: "user", text: "second", status: "pending", queue_position: 1 }),
      ],
      status: { state: "streaming", note: "Answering… · 1 prompt queued" },
    });
    const [, , queued] = messages();
    const badge = queued!.querySelector<HTMLElement>('[data-testid="tw-queued"]')!;
    expect(badge.hidden).toBe(false);
    expect(badge.textContent).toBe("queued · #1");
    expect(queued!.classList.contains("tw-live")).toBe(false);
    expect(queued!.textContent).toContain("second");
    expect($("tw-status").textContent).toBe("Answering… · 1 prompt queued");
    model.update({ messages: [message("p2", { role: "user", text: "second", status: "success" })] });
    await nextFrame();
    expect(messages()[2]!.querySelector<HTMLElement>('[data-testid="tw-queued"]')!.hidden).toBe(true);
  });

  it("puts an unsent prompt back into an empty box, and disables the box when the store is read-only", async () => {
    const { model, $ } = mount();
    const input = $<HTMLTextAreaElement>("tw-input");
    model.custom({ kind: "unsent", text: "please keep me" });
    await nextFrame();
    expect(input.value).toBe("please keep me");
    model.custom({ kind: "unsent", text: "an older one" }); // never over what is being typed
    expect(input.value).toBe("please keep me");
    model.update({ read_only: "threads.db is read-only here" });
    await nextFrame();
    expect(input.disabled).toBe(true);
    expect(input.placeholder).toContain("Read-only");
    expect($<HTMLButtonElement>("tw-send").disabled).toBe(true);
  });

  it("says above the box that a budget refuses new prompts, as text, and hides it when it allows", async () => {
    const { model, $ } = mount();
    expect($("tw-budget").hidden).toBe(true);
    const note = "Budget per_thread 0.50 $ reached (0.51 $): new prompts are refused until it allows";
    model.update({ budget: note });
    await nextFrame();
    expect($("tw-budget").hidden).toBe(false);
    expect($("tw-budget").textContent).toBe(note);
    expect($<HTMLTextAreaElement>("tw-input").placeholder).toContain("budget");
    model.update({ budget: "<img src=x onerror=alert(1)>" }); // text, never markup
    await nextFrame();
    expect($("tw-budget").querySelector("img")).toBeNull();
    model.update({ budget: "" });
    await nextFrame();
    expect($("tw-budget").hidden).toBe(true);
    expect($<HTMLTextAreaElement>("tw-input").placeholder).not.toContain("budget");
  });

  it("says it is reconnecting while the store's server is away, then shows the status again", async () => {
    const { model, $ } = mount();
    model.update({ connection: "Reconnecting to the store…" });
    await nextFrame();
    expect($("tw-status").textContent).toBe("Reconnecting to the store…");
    expect($("tw-status").dataset.state).toBe("reconnecting");
    model.update({ connection: "" });
    await nextFrame();
    expect($("tw-status").dataset.state).toBe("idle");
    expect($("tw-status").textContent).not.toContain("Reconnecting");
  });

  it("keeps messages that an update leaves out: Python sends only the changed tail of the window", async () => {
    const { model, messages } = mount({
      messages: ["m1", "m2", "m3"].map((id) => message(id, { role: "user", text: id })),
    });
    model.update({
      messages: [message("m3", { role: "user", text: "m3 edited" }), message("m4", { text: "answer" })],
    });
    await nextFrame();
    expect(messages().map((m) => m.dataset.messageId)).toEqual(["m1", "m2", "m3", "m4"]);
    expect(messages()[2]!.textContent).toContain("m3 edited");
  });

  it("appends delta text to the streaming answer and drops duplicates", async () => {
    const { model, messages } = mount({
      messages: [message("m1", { role: "user", text: "hi" }), message("m2", { status: "streaming", text: "Hel" })],
      stream: { message_id: "m2", seq: 1, text: "Hel" },
      status: { state: "streaming", note: "" },
    });
    const body = () => messages()[1]!.querySelector(".tw-body")!.textContent!.trim();
    expect(body()).toBe("Hel");
    expect(messages()[1]!.classList.contains("tw-live")).toBe(true);

    model.custom({ kind: "delta", message_id: "m2", first_seq: 2, seq: 3, text: "lo wor", end: false });
    model.custom({ kind: "delta", message_id: "m2", first_seq: 2, seq: 3, text: "lo wor", end: false });
    await nextFrame();
    expect(body()).toBe("Hello wor");

    model.custom({ kind: "delta", message_id: "m2", first_seq: 4, seq: 4, text: "ld", end: true });
    await nextFrame();
    expect(body()).toBe("Hello world");
    expect(messages()[1]!.classList.contains("tw-live")).toBe(false);
  });

  it("ignores a delta after a gap until the stream snapshot catches up", async () => {
    const { model, messages } = mount({
      messages: [message("m2", { status: "streaming", text: "a" })],
      stream: { message_id: "m2", seq: 1, text: "a" },
    });
    model.custom({ kind: "delta", message_id: "m2", first_seq: 3, seq: 3, text: "c", end: false });
    await nextFrame();
    expect(messages()[0]!.textContent).not.toContain("ac");
    model.update({ stream: { message_id: "m2", seq: 3, text: "abc" } });
    await nextFrame();
    expect(messages()[0]!.querySelector(".tw-body")!.textContent!.trim()).toBe("abc");
  });

  it("shows a new answer whose first delta arrives before its message", async () => {
    const { model, messages } = mount({ messages: [message("m1", { role: "user", text: "hi" })] });
    model.custom({ kind: "delta", message_id: "m2", first_seq: 1, seq: 1, text: "Hi there", end: false });
    await nextFrame();
    expect(messages().map((m) => m.dataset.messageId)).toEqual(["m1", "m2"]);
    model.update({ messages: [message("m1", { role: "user", text: "hi" }), message("m2", { text: "Hi there!" })] });
    await nextFrame();
    expect(messages()[1]!.querySelector(".tw-body")!.textContent!.trim()).toBe("Hi there!");
  });

  it("sends on Enter and clears the box; Shift+Enter does not send", () => {
    const { model, $ } = mount();
    const input = $<HTMLTextAreaElement>("tw-input");
    expect(input.getAttribute("aria-label")).toBe("Message");
    input.value = "line one";
    const shiftEnter = key("keydown", { key: "Enter", shiftKey: true });
    input.dispatchEvent(shiftEnter);
    expect(model.sent).toEqual([]);
    expect(shiftEnter.defaultPrevented).toBe(false);

    input.value = "line one\nline two";
    input.dispatchEvent(key("keydown", { key: "Enter" }));
    expect(model.sent).toEqual([{ kind: "send", text: "line one\nline two" }]);
    expect(input.value).toBe("");

    input.dispatchEvent(key("keydown", { key: "Enter" }));
    expect(model.sent).toHaveLength(1);
  });

  it("sends with the Send button", () => {
    const { model, $ } = mount();
    const input = $<HTMLTextAreaElement>("tw-input");
    expect($<HTMLButtonElement>("tw-send").disabled).toBe(true);
    input.value = "hello";
    input.dispatchEvent(new Event("input"));
    $("tw-send").click();
    expect(model.sent.filter((m) => m.kind !== "typing")).toEqual([{ kind: "send", text: "hello" }]);
  });

  it("keeps key events from reaching JupyterLab", () => {
    const { host, $ } = mount();
    const reached: string[] = [];
    for (const type of ["keydown", "keypress", "keyup"]) {
      host.addEventListener(type, () => reached.push(type));
      document.addEventListener(type, () => reached.push(type));
    }
    const input = $("tw-input");
    for (const type of ["keydown", "keypress", "keyup"]) input.dispatchEvent(key(type, { key: "d" }));
    input.dispatchEvent(key("keydown", { key: "Enter" }));
    expect(reached).toEqual([]);
    expect(host.querySelector(".tw-root")!.hasAttribute("data-lm-suppress-shortcuts")).toBe(true);
  });

  it("shows Stop only while streaming, and it sends abort", async () => {
    const { model, $ } = mount();
    const stop = $("tw-stop");
    expect(stop.getAttribute("aria-label")).toBe("Stop");
    expect(stop.hidden).toBe(true);
    model.update({ status: { state: "streaming", note: "" } });
    await nextFrame();
    expect(stop.hidden).toBe(false);
    stop.click();
    expect(model.sent).toEqual([{ kind: "abort" }]);
    model.update({ status: { state: "idle", note: "" } });
    await nextFrame();
    expect(stop.hidden).toBe(true);
  });

  it("shows the thread status", async () => {
    const { model, $ } = mount();
    const status = $("tw-status");
    expect(status.getAttribute("role")).toBe("status");
    expect(status.getAttribute("aria-live")).toBe("polite");
    model.update({ status: { state: "waiting", note: "a prompt is waiting for a process running agent.serve()" } });
    await nextFrame();
    expect(status.textContent).toBe("a prompt is waiting for a process running agent.serve()");
    model.update({ status: { state: "failed", note: "model timed out" } });
    await nextFrame();
    expect(status.dataset.state).toBe("failed");
    expect(status.textContent).toBe("Failed: model timed out");
  });

  it("says where answers come from when no agent is attached", async () => {
    const { model, $ } = mount({ agent_attached: false });
    expect($<HTMLTextAreaElement>("tw-input").placeholder).toContain("agent.serve()");
    model.update({ agent_attached: true });
    await nextFrame();
    expect($<HTMLTextAreaElement>("tw-input").placeholder).not.toContain("agent.serve()");
  });

  it("loads older messages and prepends the reply", async () => {
    const { model, host, messages } = mount({ messages: [message("m3", { text: "three" })], has_older: true });
    const button = host.querySelector<HTMLButtonElement>(".tw-older")!;
    expect(button.hidden).toBe(false);
    button.click();
    const request = model.sent[0] as { kind: string; request_id: string; before: string };
    expect(request).toMatchObject({ kind: "load_older", before: "m3" });

    model.custom({ kind: "older", request_id: "someone-else", messages: [message("x")], has_older: false });
    model.custom({
      kind: "older",
      request_id: request.request_id,
      messages: [message("m1", { text: "one" }), message("m2", { text: "two" })],
      has_older: false,
    });
    await nextFrame();
    expect(messages().map((m) => m.dataset.messageId)).toEqual(["m1", "m2", "m3"]);
    expect(button.hidden).toBe(true);
  });

  it("highlights a message it was asked to show, loading older pages until it has it", async () => {
    const { model, messages } = mount({ messages: [message("m3", { text: "three" })], has_older: true });
    model.update({ highlighted: "m1" }); // a search hit further back than the window
    await nextFrame();
    const first = model.sent[0] as { kind: string; request_id: string; before: string };
    expect(first).toMatchObject({ kind: "load_older", before: "m3" });
    model.custom({ kind: "older", request_id: first.request_id, messages: [message("m2")], has_older: true });
    await nextFrame();
    const second = model.sent[1] as { kind: string; request_id: string; before: string };
    expect(second).toMatchObject({ kind: "load_older", before: "m2" }); // not shown yet: one page more
    model.custom({ kind: "older", request_id: second.request_id, messages: [message("m1")], has_older: false });
    await nextFrame();
    const marked = messages().filter((m) => m.classList.contains("tw-highlighted"));
    expect(marked.map((m) => m.dataset.messageId)).toEqual(["m1"]);
    expect(model.sent).toHaveLength(2); // found: no more pages asked for
    model.update({ highlighted: "" });
    await nextFrame();
    expect(messages().some((m) => m.classList.contains("tw-highlighted"))).toBe(false);
  });

  it("shows the error until dismissed", async () => {
    const { model, host } = mount();
    const box = host.querySelector<HTMLElement>('[data-testid="tw-error"]')!;
    expect(box.hidden).toBe(true);
    model.update({ error: "send failed: database is locked" });
    await nextFrame();
    expect(box.hidden).toBe(false);
    expect(box.textContent).toContain("send failed: database is locked");
    box.querySelector<HTMLButtonElement>("button")!.click();
    await nextFrame();
    expect(box.hidden).toBe(true);
  });

  it("removes its listeners and elements on cleanup", () => {
    const { model, host } = mount();
    expect(model.listenerCount()).toBeGreaterThan(0);
    cleanup!();
    cleanup = null;
    expect(model.listenerCount()).toBe(0);
    expect(host.children).toHaveLength(0);
  });
});
