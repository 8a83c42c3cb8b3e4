import { afterEach, describe, expect, it } from "vitest";
import chat from "../src/chat";
import type { ChatTraits, ToolsTraits } from "../src/protocol";
import tools from "../src/tools";
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

const HOSTILE = '{"order_id":"<img src=x onerror=alert(1)>","amount":80}';
const waiting = toolCall("tc1", { name: "refund", status: "awaiting_approval", arguments: HOSTILE, started_at: null });

describe("a tool call that waits for a person", () => {
  it("shows its arguments as text and sends Approve with the note, as the view's user decides", async () => {
    const { model, host } = mountChat({ messages: [message("m1", { tool_calls: [waiting] })] });
    await nextFrame();
    const box = host.querySelector<HTMLElement>('[data-testid="tw-approval"]')!;
    expect(box.hidden).toBe(false);
    const args = box.querySelector('[data-testid="tw-approval-args"]')!;
    expect(args.textContent).toContain('"order_id": "<img src=x onerror=alert(1)>"');
    expect(host.querySelector("img")).toBeNull(); // untrusted model output stays text
    box.querySelector<HTMLInputElement>('[data-testid="tw-approval-note"]')!.value = "checked";
    box.querySelector<HTMLButtonElement>('[data-testid="tw-approve"]')!.click();
    expect(model.sent).toContainEqual({ kind: "decide", tool_call_id: "tc1", decision: "approved", note: "checked" });
    expect(box.querySelector<HTMLButtonElement>('[data-testid="tw-approve"]')!.disabled).toBe(true);
  });

  it("shows the decision, who made it and why, in place of the buttons", async () => {
    const denied = toolCall("tc1", {
      name: "refund",
      status: "denied",
      decision: "denied",
      decided_by: "carol",
      decided_at: 1_700_000_100,
      decision_note: "over the limit",
      error: "denied by carol: over the limit",
    });
    const { host } = mountChat({ messages: [message("m1", { tool_calls: [denied] })] });
    await nextFrame();
    expect(host.querySelector<HTMLElement>('[data-testid="tw-approval"]')!.hidden).toBe(true);
    const decision = host.querySelector<HTMLElement>('[data-testid="tw-decision"]')!;
    expect(decision.hidden).toBe(false);
    expect(decision.textContent).toBe("denied by carol: over the limit");
  });

  it("has Deny in the tool-call panel too, with the reason typed", () => {
    const model = new FakeModel<ToolsTraits>({ thread_id: "t1", tool_calls: [waiting] });
    const host = document.createElement("div");
    cleanups.push(tools.render(model.props(host)));
    const box = host.querySelector<HTMLElement>('[data-testid="tw-approval"]')!;
    expect(box.hidden).toBe(false);
    box.querySelector<HTMLInputElement>('[data-testid="tw-approval-note"]')!.value = "too much";
    box.querySelector<HTMLButtonElement>('[data-testid="tw-deny"]')!.click();
    expect(model.sent).toContainEqual({ kind: "decide", tool_call_id: "tc1", decision: "denied", note: "too much" });
  });
});

describe("who wrote what", () => {
  it("labels the view's own prompts You, others' by name, answers by agent, a person's answer by name", async () => {
    const { host } = mountChat({
      user: "bob",
      messages: [
        message("m1", { role: "user", text: "mine", user_id: "bob" }),
        message("m2", { role: "user", text: "hers", user_id: "alice" }),
        message("m3", { text: "an answer", agent: "support" }),
        message("m4", { text: "a person's answer", agent: null, user_id: "carol" }),
      ],
    });
    await nextFrame();
    const labels = [...host.querySelectorAll(".tw-who")].map((e) => e.textContent);
    expect(labels).toEqual(["You", "alice", "support", "carol"]);
  });
});

describe("presence", () => {
  it("shows who else has the thread open and who types, and says when this person types", async () => {
    const { model, host } = mountChat({ present: [{ user: "alice", typing: false }] });
    await nextFrame();
    const present = host.querySelector<HTMLElement>('[data-testid="tw-present"]')!;
    expect(present.hidden).toBe(false);
    expect(present.textContent).toBe("Also here: alice");
    model.update({ present: [{ user: "alice", typing: true }, { user: "<b>carol</b>", typing: false }] });
    expect(present.textContent).toBe("Also here: alice (typing…), <b>carol</b>");
    expect(present.querySelector("b")).toBeNull();
    const input = host.querySelector<HTMLTextAreaElement>('[data-testid="tw-input"]')!;
    input.value = "hel";
    input.dispatchEvent(new Event("input"));
    input.value = "hello";
    input.dispatchEvent(new Event("input"));
    expect(model.sent.filter((m) => m.kind === "typing")).toEqual([{ kind: "typing", typing: true }]);
    input.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true, cancelable: true }));
    expect(model.sent.filter((m) => m.kind === "typing")).toEqual([
      { kind: "typing", typing: true },
      { kind: "typing", typing: false },
    ]);
    model.update({ present: [] });
    expect(present.hidden).toBe(true);
  });
});
