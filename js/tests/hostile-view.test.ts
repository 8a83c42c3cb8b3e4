// One message that fails to render must not stop the view. The renderers do not throw (see
// hostile.test.ts); here they are made to, to check the last lines of defence.

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import chat from "../src/chat";
import { renderMarkdown } from "../src/markdown";
import { createMessageElement, updateMessageElement } from "../src/message";
import { chatTraits, FakeModel, message, nextFrame } from "./fake-model";
import { withHighlighter } from "./highlighter-slot";

const BOOM = "text that makes the renderer throw";


vi.mock("../src/markdown", async (importOriginal) => {
  const real = await importOriginal<typeof import("../src/markdown")>();
  const failing = <A extends unknown[]>(render: (text: string, ...rest: A) => string) =>
    (text: string, ...rest: A) => {
      if (text.includes(BOOM)) throw new Error("renderer failed");
      return render(text, ...rest);
    };
  return {
    ...real,
    renderCached: (id: string, text: string) => failing((t: string) => real.renderCached(id, t))(text),
    renderMarkdown: failing(real.renderMarkdown),
    renderTail: failing(real.renderTail),
  };
});

let cleanup: (() => void) | null = null;

beforeEach(() =>
  withHighlighter(() => {
    throw new Error("highlighter failed");
  }),
);

afterEach(() => {
  cleanup?.();
  cleanup = null;
  document.body.innerHTML = "";
});

describe("render failures", () => {
  it("renderMarkdown shows the text as plain text when rendering throws inside", () => {
    // the mocked highlighter throws on the code block
    const div = document.createElement("div");
    div.innerHTML = renderMarkdown("**a**\n\n```python\nx = 1\n```");
    expect(div.querySelector("strong")).toBeNull();
    expect(div.querySelector(".tw-plain")?.textContent).toBe("**a**\n\n```python\nx = 1\n```");
  });

  it("a message whose rendering throws shows its text, and renders again when it changes", () => {
    const m = message("m1", { text: `${BOOM} **a**` });
    const el = createMessageElement(m);
    updateMessageElement(el, m, m.text, false);
    expect(el.querySelector(".tw-settled")!.textContent).toBe(`${BOOM} **a**`);
    updateMessageElement(el, m, `${BOOM} streaming`, true);
    expect(el.querySelector(".tw-body")!.textContent).toBe(`${BOOM} streaming`);
    const fixed = { ...m, text: "now **fine**" };
    updateMessageElement(el, fixed, fixed.text, false);
    expect(el.querySelector(".tw-settled strong")?.textContent).toBe("fine");
  });

  it("ChatView keeps updating with hostile and failing messages in the window", async () => {
    const hostile = [
      message("h1", { text: ">".repeat(10_000) }),
      message("h2", { text: "- ".repeat(10_000) }),
      message("h3", { text: "_a".repeat(20_000) }),
      message("h4", { text: `${BOOM} at mount` }),
      message("h5", { status: "streaming", text: `${BOOM} while streaming` }),
    ];
    const model = new FakeModel(
      chatTraits({
        messages: hostile,
        stream: { message_id: "h5", seq: 1, text: `${BOOM} while streaming` },
        status: { state: "streaming", note: "" },
      }),
    );
    const host = document.createElement("div");
    document.body.append(host);
    cleanup = chat.render(model.props(host));
    const messages = () => [...host.querySelectorAll<HTMLElement>('[data-testid="tw-message"]')];
    expect(messages().map((m) => m.dataset.messageId)).toEqual(["h1", "h2", "h3", "h4", "h5"]);
    expect(messages()[3]!.textContent).toContain(`${BOOM} at mount`);

    model.update({ messages: [...hostile, message("ok", { text: "the view **still** updates" })] });
    await nextFrame();
    expect(messages().map((m) => m.dataset.messageId)).toEqual(["h1", "h2", "h3", "h4", "h5", "ok"]);
    expect(messages()[5]!.querySelector("strong")?.textContent).toBe("still");

    model.custom({ kind: "delta", message_id: "h5", first_seq: 2, seq: 2, text: " and more", end: false });
    await nextFrame();
    expect(messages()[4]!.textContent).toContain(`${BOOM} while streaming and more`);
  });
});
