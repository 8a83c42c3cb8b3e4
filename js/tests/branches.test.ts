import { afterEach, describe, expect, it } from "vitest";
import chat from "../src/chat";
import type { ChatTraits } from "../src/protocol";
import { chatTraits, FakeModel, message, nextFrame } from "./fake-model";

let cleanup: (() => void) | null = null;

function mount(fields: Partial<ChatTraits> = {}) {
  const model = new FakeModel(chatTraits(fields));
  const host = document.createElement("div");
  document.body.append(host);
  cleanup = chat.render(model.props(host));
  const messages = () => [...host.querySelectorAll<HTMLElement>('[data-testid="tw-message"]')];
  const action = (el: HTMLElement, name: string) => el.querySelector<HTMLButtonElement>(`.tw-actions [data-action="${name}"]`)!;
  return { model, host, messages, action };
}

afterEach(() => {
  cleanup?.();
  cleanup = null;
  document.body.innerHTML = "";
});

const thread = () => [
  message("p1", { role: "user", text: "Where is order 42?", user_id: "alice", branch: { index: 1, count: 2 } }),
  message("a1", { text: "It has shipped.", agent: "support", branch: { index: 0, count: 3 } }),
];

describe("reworking a thread in the chat", () => {
  it("shows a ‹ 2 / 3 › switcher where there is a choice, and asks for the other versions", () => {
    const { model, messages } = mount({ messages: thread(), user: "alice" });
    const [prompt, answer] = messages();
    const place = (el: HTMLElement) => el.querySelector<HTMLElement>('[data-testid="tw-branch"]')!;
    expect(place(prompt!).hidden).toBe(false);
    expect(place(prompt!).textContent).toBe("‹2 / 2›");
    expect(place(answer!).textContent).toBe("‹1 / 3›");
    const [prev, next] = place(answer!).querySelectorAll("button");
    expect(prev!.disabled).toBe(true);
    next!.click();
    prev!.click(); // disabled: nothing sent
    expect(model.sent).toEqual([{ kind: "branch", message_id: "a1", index: 1 }]);
    place(prompt!).querySelector<HTMLButtonElement>(".tw-branch-prev")!.click();
    expect(model.sent.at(-1)).toEqual({ kind: "branch", message_id: "p1", index: 0 });
  });

  it("offers Regenerate on answers, Edit on one's own prompts, Fork and Copy", () => {
    const { model, messages, action } = mount({
      messages: [...thread(), message("p2", { role: "user", text: "bob's", user_id: "bob" })],
      user: "alice",
      agent_attached: true,
    });
    const [prompt, answer, other] = messages();
    expect(action(answer!, "regenerate").hidden).toBe(false);
    expect(action(prompt!, "regenerate").hidden).toBe(true);
    expect(action(prompt!, "edit").hidden).toBe(false);
    expect(action(answer!, "edit").hidden).toBe(true);
    expect(action(other!, "edit").hidden).toBe(true); // someone else's prompt
    expect(messages().every((m) => !action(m, "fork").hidden && !action(m, "copy").hidden)).toBe(true);
    action(answer!, "regenerate").click();
    action(prompt!, "fork").click();
    expect(model.sent).toEqual([
      { kind: "regenerate", message_id: "a1" },
      { kind: "fork", message_id: "p1" },
    ]);
  });

  it("offers Regenerate without an agent (it waits for whoever serves), not on an answer still streaming", () => {
    const { messages, action } = mount({
      messages: [...thread(), message("a2", { status: "streaming", text: "" })],
      agent_attached: false,
    });
    const [, answer, streaming] = messages();
    expect(action(answer!, "regenerate").hidden).toBe(false);
    expect(action(streaming!, "regenerate").hidden).toBe(true);
    expect(action(streaming!, "fork").hidden).toBe(true);
  });

  it("edits a prompt in the box: Send makes a new version of it", async () => {
    const { model, host, messages, action } = mount({ messages: thread(), user: "alice" });
    action(messages()[0]!, "edit").click();
    const input = host.querySelector<HTMLTextAreaElement>('[data-testid="tw-input"]')!;
    expect(input.value).toBe("Where is order 42?");
    await nextFrame();
    expect(host.querySelector<HTMLElement>('[data-testid="tw-editing"]')!.hidden).toBe(false);
    input.value = "Where is order 43?";
    host.querySelector<HTMLButtonElement>('[data-testid="tw-send"]')!.click();
    expect(model.sent).toEqual([{ kind: "edit", message_id: "p1", text: "Where is order 43?" }]);
    input.value = "a new prompt";
    host.querySelector<HTMLButtonElement>('[data-testid="tw-send"]')!.click();
    expect(model.sent.at(-1)).toEqual({ kind: "send", text: "a new prompt" });
  });

  it("shows the new path afresh when it changes: messages it kept go", async () => {
    const { model, messages } = mount({ messages: thread() });
    await nextFrame();
    model.set("messages", [message("p9", { role: "user", text: "newer" })]); // the old ones are kept as older
    await nextFrame();
    expect(messages().map((m) => m.dataset.messageId)).toEqual(["p1", "a1", "p9"]);
    model.set("messages", [message("p1b", { role: "user", text: "the other version" })]);
    model.set("path", "42");
    await nextFrame();
    expect(messages().map((m) => m.dataset.messageId)).toEqual(["p1b"]);
  });

  it("renders model text in the switcher's message as text, never as markup", () => {
    const { messages } = mount({
      messages: [message("p1", { role: "user", text: "<img src=x onerror=alert(1)>", branch: { index: 0, count: 2 } })],
    });
    expect(messages()[0]!.querySelector("img")).toBeNull();
  });
});
