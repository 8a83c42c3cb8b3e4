// A view's first paint on a long thread: the newest messages are rendered at once, those above
// them are placeholders rendered when the page is idle; markdown is parsed once per message text.
// jsdom lays nothing out, so the log's size and scrolling are played by `layOut` below.

import { afterEach, describe, expect, it, vi } from "vitest";
import chat from "../src/chat";
import type { ChatTraits, Message } from "../src/protocol";
import { chatTraits, FakeModel, message, nextFrame } from "./fake-model";

// vi.waitFor gives up after 1 s by default: too short on a loaded machine (this waits for a condition,
// it does not time anything)
const WAIT = { timeout: 30_000 };

// Every text marked parses, to see what is parsed again.
const { parsed } = vi.hoisted(() => ({ parsed: [] as string[] }));
vi.mock("marked", async (importOriginal) => {
  const real = await importOriginal<typeof import("marked")>();
  class Marked extends real.Marked {
    constructor(...args: never[]) {
      super(...args);
      const parse = this.parse;
      this.parse = ((src: string, options?: never) => {
        parsed.push(src);
        return parse(src, options);
      }) as typeof this.parse;
    }
  }
  return { ...real, Marked };
});

let cleanup: (() => void) | null = null;

afterEach(() => {
  cleanup?.();
  cleanup = null;
  document.body.innerHTML = "";
  parsed.length = 0;
});

function mount(fields: Partial<ChatTraits>) {
  const model = new FakeModel(chatTraits(fields));
  const host = document.createElement("div");
  document.body.append(host);
  cleanup = chat.render(model.props(host));
  const messages = () => [...host.querySelectorAll<HTMLElement>('[data-testid="tw-message"]')];
  const rendered = () => messages().filter((m) => m.dataset.role !== undefined);
  const log = host.querySelector<HTMLElement>(".tw-log")!;
  return { model, host, log, messages, rendered };
}

let thread = 0;

/** A thread of `count` answers of ten lines each: a few of them fill a log. */
function longThread(count: number): Message[] {
  const id = ++thread;
  return Array.from({ length: count }, (_, i) =>
    message(`t${id}-m${i}`, { text: Array.from({ length: 10 }, (_, line) => `Answer **${i}**, line ${line}.`).join("\n\n") }),
  );
}

const allRendered = async (rendered: () => HTMLElement[], count: number) =>
  vi.waitFor(() => expect(rendered()).toHaveLength(count), WAIT);

/** Lay the log out as a browser would: 400 px high, each rendered message 100 px, each placeholder
 * its min-height; scrollTop stays within what can be scrolled. */
function layOut(log: HTMLElement): void {
  const height = () =>
    [...log.querySelectorAll<HTMLElement>('[data-testid="tw-message"]')]
      .map((m) => (m.dataset.role ? 100 : parseFloat(m.style.minHeight)))
      .reduce((a, b) => a + b, 0);
  let top = 0;
  Object.defineProperties(log, {
    clientHeight: { get: () => 400 },
    clientWidth: { get: () => 600 },
    scrollHeight: { get: () => Math.max(400, height()) },
    scrollTop: {
      get: () => top,
      set: (value: number) => {
        top = Math.max(0, Math.min(value, height() - 400));
      },
    },
  });
}

describe("ChatView on a long thread", () => {
  it("renders the newest messages at once, then the others, in order, when the page is idle", async () => {
    const thread = longThread(60);
    const { messages, rendered } = mount({ messages: thread });
    const ids = thread.map((m) => m.id);
    expect(messages().map((m) => m.dataset.messageId)).toEqual(ids); // all there, in order
    const first = rendered();
    expect(first.length).toBeGreaterThan(0);
    expect(first.length).toBeLessThan(10);
    expect(first.at(-1)!.dataset.messageId).toBe(ids.at(-1)); // the newest
    expect(first.at(-1)!.querySelector("strong")?.textContent).toBe("59");
    expect(messages()[0]!.textContent).toBe(""); // a placeholder, as tall as the message may be
    expect(parseFloat(messages()[0]!.style.minHeight)).toBeGreaterThan(100);

    await allRendered(rendered, 60);
    expect(messages().map((m) => m.dataset.messageId)).toEqual(ids);
    messages().forEach((m, i) => expect(m.querySelector("strong")?.textContent).toBe(String(i)));
    expect(messages().every((m) => m.style.minHeight === "")).toBe(true);
  });

  it("renders a put-off message as it is when its turn comes", async () => {
    const thread = longThread(40);
    const { model, messages, rendered } = mount({ messages: thread });
    model.update({ messages: [{ ...thread[0]!, text: "edited **before** it was shown" }, ...thread.slice(1)] });
    await allRendered(rendered, 40);
    expect(messages()[0]!.textContent).toContain("edited before it was shown");
  });

  it("shows another thread at once, even over put-off messages of the same ids", async () => {
    const thread = longThread(40);
    const { model, messages, rendered } = mount({ messages: thread });
    const next = [thread[0]!, message("other", { role: "user", text: "hello" })];
    model.update({ thread_id: "t2", messages: next });
    await nextFrame();
    expect(rendered().map((m) => m.dataset.messageId)).toEqual([thread[0]!.id, "other"]);
    expect(messages()).toHaveLength(2);
    await new Promise((resolve) => setTimeout(resolve, 50)); // the idle work that was left
    expect(rendered()).toHaveLength(2);
  });

  it("stays at the bottom while the messages above render", async () => {
    const { log, messages, rendered } = mount({ messages: longThread(50) });
    layOut(log);
    log.scrollTop = log.scrollHeight;
    const placeholders = messages().length - rendered().length;
    expect(placeholders).toBeGreaterThan(0);
    await allRendered(rendered, 50);
    expect(log.scrollHeight).toBe(5000);
    expect(log.scrollTop).toBe(log.scrollHeight - log.clientHeight);
  });

  it("keeps what is in view in place when the user scrolled up before the messages above render", async () => {
    const { log, rendered } = mount({ messages: longThread(50) });
    layOut(log);
    log.scrollTop = log.scrollHeight - log.clientHeight - 150; // the newest message is half out of view
    log.dispatchEvent(new Event("scroll"));
    await allRendered(rendered, 50);
    expect(log.scrollHeight - log.scrollTop).toBe(log.clientHeight + 150);
  });

  it("parses a message's markdown once: not again when an update leaves its text as it was", async () => {
    const thread = ["one", "two", "three"].map((n) => message(`parsed-${n}`, { text: `answer **${n}**` }));
    const { model, messages } = mount({ messages: thread });
    const times = (text: string) => parsed.filter((src) => src === text).length;
    expect(thread.map((m) => times(m.text))).toEqual([1, 1, 1]);
    const body = messages()[1]!.querySelector(".tw-settled")!.firstElementChild;

    const edited = { ...thread[2]!, text: "a **new** text" };
    model.update({ messages: [...thread.map((m) => ({ ...m })).slice(0, 2), edited] }); // new objects, same texts
    await nextFrame();
    expect(thread.map((m) => times(m.text))).toEqual([1, 1, 1]);
    expect(times(edited.text)).toBe(1);
    expect(messages()[1]!.querySelector(".tw-settled")!.firstElementChild).toBe(body); // left as it was

    cleanup!(); // another view of the thread: the rendering is remembered
    const again = mount({ messages: [...thread.slice(0, 2), edited] });
    expect(again.messages()[2]!.querySelector("strong")?.textContent).toBe("new");
    expect([...thread.slice(0, 2), edited].map((m) => times(m.text))).toEqual([1, 1, 1]);
  });

  it("shows each message's time once the page has been idle", async () => {
    const at = 1_700_000_000;
    const { messages } = mount({ messages: [message("timed", { created_at: at })] });
    const when = messages()[0]!.querySelector("time")!;
    expect(when.dateTime).toBe(new Date(at * 1000).toISOString());
    const clock = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit" }).format(new Date(at * 1000));
    await vi.waitFor(() => expect(when.textContent).toBe(clock), WAIT);
  });
});
