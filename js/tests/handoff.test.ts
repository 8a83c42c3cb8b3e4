import { afterEach, describe, expect, it } from "vitest";
import chat from "../src/chat";
import type { ChatTraits, Message } from "../src/protocol";
import { chatTraits, FakeModel, message, nextFrame, toolCall } from "./fake-model";

let cleanups: (() => void)[] = [];

afterEach(() => {
  cleanups.forEach((c) => c());
  cleanups = [];
  document.body.innerHTML = "";
});

function mountChat(fields: Partial<ChatTraits> = {}) {
  const model = new FakeModel(chatTraits(fields));
  const host = document.createElement("div");
  document.body.append(host);
  cleanups.push(chat.render(model.props(host)));
  return { model, host };
}

const transfer = (status: "running" | "success" | "error", result: string | null, error: string | null = null) =>
  toolCall("tc1", { message_id: "m2", name: "transfer_to_confirm", arguments: "{}", status, result, error });

function thread(handoff: ReturnType<typeof transfer>): Message[] {
  return [
    message("m1", { role: "user", text: "book a table for two at 19:00" }),
    message("m2", { text: "", agent: "booking", tool_calls: [handoff] }),
    message("m3", { text: "Confirmed for 19:00.", agent: "confirm" }),
  ];
}

const dividers = (host: HTMLElement) =>
  [...host.querySelectorAll<HTMLElement>('[data-testid="tw-handoff"]')].filter((d) => !d.hidden);

describe("a handoff between agents", () => {
  it("shows a divider under the step that handed the thread over, naming the agent taking it", async () => {
    const { host } = mountChat({ messages: thread(transfer("success", '{"transferred_to": "confirm"}')) });
    await nextFrame();
    const shown = dividers(host);
    expect(shown).toHaveLength(1);
    const divider = shown[0]!;
    expect(divider.textContent).toBe("handed over to confirm");
    expect(divider.getAttribute("role")).toBe("separator");
    expect(divider.closest<HTMLElement>('[data-testid="tw-message"]')!.dataset.messageId).toBe("m2");
    const labels = [...host.querySelectorAll(".tw-who")].map((w) => w.textContent);
    expect(labels).toEqual(["You", "booking", "confirm"]);
  });

  it("appears once the handoff is made, not while the call runs, and never for a refused one", async () => {
    const { model, host } = mountChat({ messages: thread(transfer("running", null)) });
    await nextFrame();
    expect(dividers(host)).toEqual([]);
    model.update({ messages: thread(transfer("success", '{"transferred_to": "confirm"}')) });
    await nextFrame();
    expect(dividers(host).map((d) => d.textContent)).toEqual(["handed over to confirm"]);
    model.update({ messages: thread(transfer("error", null, "not handed over: the answer was aborted")) });
    await nextFrame();
    expect(dividers(host)).toEqual([]);
  });

  it("keeps an agent name as text, and ignores a tool of the same name that returned something else", async () => {
    const hostile = transfer("success", JSON.stringify({ transferred_to: '<img src=x onerror="alert(1)">' }));
    const { model, host } = mountChat({ messages: thread(hostile) });
    await nextFrame();
    expect(dividers(host)[0]?.textContent).toBe('handed over to <img src=x onerror="alert(1)">');
    expect(host.querySelector("img")).toBeNull();
    model.update({ messages: thread(transfer("success", '{"ok": true}')) });
    await nextFrame();
    expect(dividers(host)).toEqual([]);
    model.update({ messages: thread(transfer("success", "not json")) });
    await nextFrame();
    expect(dividers(host)).toEqual([]);
  });
});
