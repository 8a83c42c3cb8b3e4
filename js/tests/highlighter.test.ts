// Code highlighting comes after the view: plain code first, one request per page, highlighted when
// the kernel's reply is in. jsdom cannot import a module from a Blob URL, so `importSource` stands
// in for it here (and hands back highlight.ts); unpacking is the real one. The Blob import itself
// runs in Chromium: the e2e tests and bench/paint.py.

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import app from "../src/app";
import chat from "../src/chat";
import { WAITING } from "../src/highlighter";
import { unpack } from "../src/packed";
import type { AppTraits, ChatTraits, OutboundMsg } from "../src/protocol";
import { chatTraits, FakeModel, message, nextFrame } from "./fake-model";
import { noHighlighter } from "./highlighter-slot";

// vi.waitFor gives up after 1 s by default: too short on a loaded machine (this waits for a condition,
// it does not time anything)
const WAIT = { timeout: 30_000 };

/** What the kernel sends as the highlighter module (imported below as highlight.ts). */
const MODULE = "export function highlight() {} // highlight.js, as the build writes it";

vi.mock("../src/packed", async (importOriginal) => {
  const real = await importOriginal<typeof import("../src/packed")>();
  const highlighter = await import("../src/highlight");
  return {
    ...real,
    importSource: vi.fn(async (source: string) => {
      if (source !== MODULE) throw new Error(`not a module: ${source.slice(0, 40)}`);
      return highlighter;
    }),
  };
});

/** `text` packed as the kernel packs the highlighter: base64 of its gzip. */
async function pack(text: string): Promise<string> {
  const gz = new Response(new Response(new TextEncoder().encode(text)).body!.pipeThrough(new CompressionStream("gzip")));
  let binary = "";
  for (const byte of new Uint8Array(await gz.arrayBuffer())) binary += String.fromCharCode(byte);
  return btoa(binary);
}

const CODE = "def f():\n    return '<b>'";
const ANSWER = `Run this:\n\n\`\`\`python\n${CODE}\n\`\`\`\n`;
const ASK: OutboundMsg = { kind: "highlighter" };

const cleanups: Array<() => void> = [];

function mount(fields: Partial<ChatTraits> = {}, view = chat) {
  const model = new FakeModel(chatTraits(fields));
  const host = document.createElement("div");
  document.body.append(host);
  const cleanup = view.render(model.props(host) as never);
  cleanups.push(cleanup);
  const codes = () => [...host.querySelectorAll<HTMLElement>("pre > code")];
  return { model, host, codes, cleanup };
}

// Renderings are cached by message id and text (renderCached) for the page's life, which holds the
// highlighter once it came; each test takes fresh ids.
let ids = 0;
const answer = () => message(`answer-${++ids}`, { text: ANSWER });

const highlighted = (code: HTMLElement) => code.querySelector(".hljs-keyword")?.textContent ?? null;

beforeEach(() => noHighlighter());

afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
  document.body.innerHTML = "";
});

describe("code highlighting on demand", () => {
  it("shows a code block plain until the highlighter arrives, then highlighted", async () => {
    const { model, codes } = mount({ messages: [answer()] });
    const [code] = codes();
    expect(code!.textContent).toBe(CODE); // escaped: no <b> element
    expect(code!.querySelector("*")).toBeNull();
    expect(code!.classList.contains(WAITING)).toBe(true);
    expect(model.sent).toEqual([ASK]);

    model.custom({ kind: "highlighter", source: await pack(MODULE) });
    await vi.waitFor(() => expect(highlighted(codes()[0]!)).toBe("def"), WAIT);
    expect(codes()[0]!.textContent).toBe(CODE);
    expect(codes()[0]!.classList.contains(WAITING)).toBe(false);
    expect(model.sent).toEqual([ASK]); // asked once
  });

  it("asks once per page: other views wait for that reply, later views never ask", async () => {
    const a = mount({ messages: [answer()] });
    const b = mount({ messages: [answer()] });
    expect(a.model.sent).toEqual([ASK]);
    expect(b.model.sent).toEqual([]);

    a.model.custom({ kind: "highlighter", source: await pack(MODULE) });
    await vi.waitFor(() => expect(highlighted(b.codes()[0]!)).toBe("def"), WAIT); // b heard of it too
    expect(highlighted(a.codes()[0]!)).toBe("def");

    const c = mount({ messages: [answer()] });
    expect(highlighted(c.codes()[0]!)).toBe("def"); // at once
    expect(c.model.sent).toEqual([]);
  });

  it("asks again through another view when the one that asked closes before the reply", async () => {
    const a = mount({ messages: [answer()] });
    const b = mount({ messages: [answer()] });
    expect([a.model.sent, b.model.sent]).toEqual([[ASK], []]);
    a.cleanup();
    await nextFrame();
    expect(b.model.sent).toEqual([ASK]);
    b.model.custom({ kind: "highlighter", source: await pack(MODULE) });
    await vi.waitFor(() => expect(highlighted(b.codes()[0]!)).toBe("def"), WAIT);
  });

  it("does not ask for code it would not highlight: no language, another language, a streaming tail", async () => {
    const streaming = message("m3", { status: "streaming", text: "" });
    const { model, codes } = mount({
      messages: [
        message("m1", { text: "```\nplain\n```" }),
        message("m2", { text: "```cobol\nDISPLAY 'HI'.\n```" }),
        streaming,
      ],
      stream: { message_id: "m3", seq: 1, text: "```python\ndef f(" }, // an open fence: the tail
      status: { state: "streaming", note: "" },
    });
    await nextFrame();
    expect(codes().map((c) => c.textContent)).toEqual(["plain", "DISPLAY 'HI'.", "def f("]);
    expect(model.sent).toEqual([]);
  });

  it("the app's chat asks too, through the app's model", async () => {
    const traits: AppTraits = { ...chatTraits({ messages: [answer()] }), tool_calls: [], threads: [], selected: null, query: "", hits: [], search_error: "" };
    const model = new FakeModel(traits);
    const host = document.createElement("div");
    document.body.append(host);
    cleanups.push(app.render(model.props(host)));
    expect(model.sent).toEqual([ASK]);
    model.custom({ kind: "highlighter", source: await pack(MODULE) });
    await vi.waitFor(() => expect(host.querySelector("pre > code .hljs-keyword")?.textContent).toBe("def"), WAIT);
  });

  it("keeps code plain, and stops asking, when the module does not load", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const a = mount({ messages: [answer()] });
    a.model.custom({ kind: "highlighter", source: await pack("not the module") });
    await vi.waitFor(() => expect(warn).toHaveBeenCalled(), WAIT);
    const b = mount({ messages: [answer()] });
    await nextFrame();
    expect(b.model.sent).toEqual([]);
    expect(b.codes()[0]!.textContent).toBe(CODE);
    expect(b.codes()[0]!.querySelector("*")).toBeNull();
    warn.mockRestore();
  });
});

describe("unpack", () => {
  it("restores a packed module's text exactly", async () => {
    const text = `export const s = "ünïcødé ✓ \\u2028";\n${"x".repeat(100_000)}`;
    expect(await unpack(await pack(text))).toBe(text);
  });
});
