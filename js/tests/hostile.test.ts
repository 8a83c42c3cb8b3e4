// Hostile model output degrades, never kills: every input of the corpus renders (no exception,
// no freeze: these tests would time out), loses no text and stays inert. No test asserts a
// duration; bench/hostile_render.mjs measures them.

import { beforeEach, describe, expect, it } from "vitest";
import {
  ELEMENT_BUDGET,
  HIGHLIGHT_BUDGET,
  MAX_MARKDOWN_CHARS,
  MAX_NESTING,
  MAX_TAIL_CHARS,
  renderMarkdown,
  renderTail,
  splitSettled,
  WHOLE_HEAD_CHARS,
} from "../src/markdown";
import { createMessageElement, updateMessageElement } from "../src/message";
import { message } from "./fake-model";
import { HOSTILE } from "./hostile-corpus";
import { withHighlighter } from "./highlighter-slot";

beforeEach(() => withHighlighter());

function dom(html: string): HTMLDivElement {
  const div = document.createElement("div");
  div.innerHTML = html;
  return div;
}

/** What must never come out of model text: scripts, event handlers, javascript: URLs. */
function expectInert(root: Element): void {
  expect(root.querySelector("script, iframe, img, style, form")).toBeNull();
  for (const el of root.querySelectorAll("*")) {
    for (const a of el.attributes) {
      expect(a.name.startsWith("on"), `${el.tagName} ${a.name}`).toBe(false);
      expect(a.value.replace(/\s/g, "").toLowerCase()).not.toMatch(/^(javascript|data|vbscript):/);
    }
  }
}

function depth(root: Element): number {
  let deepest = 0;
  const walk = (el: Element, d: number) => {
    deepest = Math.max(deepest, d);
    for (const child of el.children) walk(child, d + 1);
  };
  walk(root, 0);
  return deepest;
}

const plainParts = (root: Element) => root.querySelectorAll(".tw-plain").length;

describe("hostile corpus", () => {
  for (const { name, text, samples } of HOSTILE) {
    it(`renders ${name}: returns, keeps the text, stays inert`, () => {
      const div = dom(renderMarkdown(text));
      const shown = div.textContent!;
      for (const sample of samples) expect(shown).toContain(sample);
      expectInert(div);
      // Chromium's parser stops nesting at 512; bounded nesting stays well below.
      expect(depth(div)).toBeLessThan(400);
      expect(div.querySelectorAll("*").length).toBeLessThanOrEqual(ELEMENT_BUDGET);
    });

    it(`streams ${name}: the tail stays short or unparsed, and inert`, () => {
      const [head, tail] = splitSettled(text);
      expect(head + tail).toBe(text);
      if (tail.length > MAX_TAIL_CHARS) {
        // only an open code fence or one long line, and only before the plain-text limit
        expect(text.length).toBeLessThanOrEqual(MAX_MARKDOWN_CHARS + MAX_TAIL_CHARS);
        expect(/^ {0,3}(```|~~~)/.test(tail) || !tail.includes("\n")).toBe(true);
      }
      const div = dom(renderTail(tail));
      expectInert(div);
      if (tail.trim()) expect(div.textContent!.trim()).not.toBe("");
    });
  }
});

describe("bounds", () => {
  it(`renders ${MAX_NESTING} nested quotes and lists, and one more level as plain text`, () => {
    const quotes = (n: number) => `${">".repeat(n)} deep`;
    expect(dom(renderMarkdown(quotes(MAX_NESTING))).querySelectorAll("blockquote")).toHaveLength(MAX_NESTING);
    const past = dom(renderMarkdown(quotes(MAX_NESTING + 1)));
    expect(past.querySelector("blockquote")).toBeNull();
    expect(past.querySelector(".tw-plain")?.textContent).toBe(quotes(MAX_NESTING + 1));

    const list = (n: number) => Array.from({ length: n }, (_, i) => `${"  ".repeat(i)}- level ${i}`).join("\n");
    expect(dom(renderMarkdown(list(MAX_NESTING / 2))).querySelectorAll("ul")).toHaveLength(MAX_NESTING / 2);
    const deep = dom(renderMarkdown(`before\n\n${list(MAX_NESTING + 1)}\n\nafter **bold**`));
    expect(deep.querySelector("ul")).toBeNull();
    expect(deep.querySelector(".tw-plain")?.textContent).toContain(`- level ${MAX_NESTING}`);
    expect(deep.querySelector("strong")?.textContent).toBe("bold"); // only the deep block is plain
  });

  it("renders a long ordinary answer without degrading any of it", () => {
    const parts: string[] = [];
    for (let i = 0; i < 50; i++) {
      parts.push(
        `## Step ${i}`,
        `Some **bold** and _italic_ text with \`code_span\`, a [link](https://example.com/${i}) and snake_case_names.`,
        Array.from({ length: 8 }, (_, j) => `- **Item ${j}**: see https://example.org/x_${j} and ~~old~~ new`).join("\n"),
        "```python\ndef f(x):\n    return x ** 2  # *not* emphasis\n```",
      );
    }
    parts.push(`| key | value |\n|---|---|\n${Array.from({ length: 80 }, (_, i) => `| \`KEY_${i}\` | **${i}** |`).join("\n")}`);
    const text = parts.join("\n\n");
    expect(text.length).toBeGreaterThan(30_000);
    const div = dom(renderMarkdown(text));
    expect(plainParts(div)).toBe(0);
    expect(div.querySelectorAll("h2")).toHaveLength(50);
    expect(div.querySelectorAll("li strong")).toHaveLength(400);
    expect(div.querySelectorAll("pre code .hljs-keyword").length).toBeGreaterThan(0);
    expect(div.querySelectorAll("tbody tr")).toHaveLength(80);
  });

  it("renders a table past the emphasis budget as a table, its emphasis as written", () => {
    const table = `| a | b |\n|---|---|\n${"| **bold** | _it_ |\n".repeat(300)}`;
    const div = dom(renderMarkdown(`Intro with **bold**.\n\n${table}`));
    expect(div.querySelectorAll("tbody tr")).toHaveLength(300);
    expect(div.querySelector("td strong, td em")).toBeNull();
    expect(div.querySelector("td")?.textContent).toBe("**bold**");
    expect(div.querySelector("p strong")?.textContent).toBe("bold");
  });

  it(`shows text past ${MAX_MARKDOWN_CHARS} characters as plain text, cut at a line`, () => {
    const para = (i: number) => `Paragraph ${i} ${"word ".repeat(200)}**end**`;
    const text = Array.from({ length: 150 }, (_, i) => para(i)).join("\n\n");
    const div = dom(renderMarkdown(text));
    const strong = div.querySelectorAll("p > strong").length;
    expect(strong).toBeGreaterThan(80);
    expect(strong).toBeLessThan(150);
    expect(plainParts(div)).toBe(1);
    expect(div.querySelector(".tw-plain")!.textContent!.startsWith(`Paragraph ${strong}`)).toBe(true);
    expect(div.textContent).toContain(para(149));
  });

  it(`stops making elements after about ${ELEMENT_BUDGET}, the rest as plain text`, () => {
    const div = dom(renderMarkdown("a\n\n".repeat(20_000)));
    expect(div.querySelectorAll("*").length).toBeLessThanOrEqual(ELEMENT_BUDGET);
    expect(div.lastElementChild!.className).toBe("tw-plain");
    expect(div.textContent!.replace(/\s/g, "")).toBe("a".repeat(20_000));
  });

  it("highlights code up to the highlight budget, and shows the rest unhighlighted", () => {
    const block = "```python\n" + "def f(x):\n    return x\n".repeat(Math.ceil(HIGHLIGHT_BUDGET / 2 / 23)) + "```";
    const div = dom(renderMarkdown(`${block}\n\n${block}\n\n${block}`));
    const codes = div.querySelectorAll("pre > code");
    expect(codes).toHaveLength(3);
    expect(codes[0]!.querySelector(".hljs-keyword")).not.toBeNull();
    expect(codes[2]!.querySelector(".hljs-keyword")).toBeNull();
    expect(codes[2]!.textContent).toContain("def f(x):");
  });

  it("keeps rendering markdown after a hostile input", () => {
    renderMarkdown(">".repeat(10_000));
    renderMarkdown("_a".repeat(20_000));
    expect(dom(renderMarkdown("**ok** _fine_")).innerHTML.trim()).toBe("<p><strong>ok</strong> <em>fine</em></p>");
  });
});

describe("splitSettled on long text", () => {
  it("settles a long block at its last line when there is no blank line", () => {
    const rows = Array.from({ length: 1_000 }, (_, i) => `| row ${i} | value |`).join("\n");
    const [head, tail] = splitSettled(`| a | b |\n|---|---|\n${rows}`);
    expect(tail).toBe("| row 999 | value |");
    expect(dom(renderMarkdown(head)).querySelectorAll("tbody tr")).toHaveLength(999);
  });

  it("keeps an open code fence whole, and shows a long one as code", () => {
    const fence = "```js\n" + "let x = '*a* <b>';\n".repeat(1_000);
    const [head, tail] = splitSettled(`intro\n${fence}`);
    expect([head, tail]).toEqual(["intro\n", fence]);
    const code = dom(renderTail(tail)).querySelector("pre > code")!;
    expect(code.className).toBe("language-js");
    expect(code.textContent).toBe("let x = '*a* <b>';\n".repeat(1_000).slice(0, -1));
  });

  it(`cuts every ${MAX_TAIL_CHARS} characters past ${MAX_MARKDOWN_CHARS}, never inside a surrogate pair`, () => {
    const line = "😀".repeat(100_000);
    for (const len of [MAX_MARKDOWN_CHARS + 1, MAX_MARKDOWN_CHARS + MAX_TAIL_CHARS + 5, 199_999]) {
      const [head, tail] = splitSettled(line.slice(0, len));
      expect(tail.length).toBeLessThanOrEqual(MAX_TAIL_CHARS);
      expect(head.length).toBeGreaterThanOrEqual(MAX_MARKDOWN_CHARS - 1);
      expect(head.charCodeAt(head.length - 1)).not.toBe(0xd83d); // a high surrogate
    }
  });

  it("resumes from an earlier head with the same result as a full scan", () => {
    const text = [
      "intro **bold**\n\n",
      "```py\nx = 1\n\ny = 2\n```\n\n",
      `${"- item\n".repeat(2_000)}\n`,
      "para\n".repeat(3_000),
      "~~~\nopen fence\n".repeat(2),
      "word ".repeat(5_000),
    ].join("");
    expect(text.length).toBeLessThan(MAX_MARKDOWN_CHARS);
    let head = "";
    for (let len = 1; len <= text.length; len += 997) {
      const part = text.slice(0, len);
      const resumed = splitSettled(part, MAX_TAIL_CHARS, head.length);
      expect(resumed).toEqual(splitSettled(part));
      head = resumed[0];
    }
  });

  it("returns on megabytes of lines, blank lines and fence lines", () => {
    for (const text of ["a\n\n".repeat(350_000), "```\n".repeat(250_000), "x".repeat(5_000_000)]) {
      const [head, tail] = splitSettled(text);
      expect(head.length + tail.length).toBe(text.length);
      expect(tail.length).toBeLessThanOrEqual(MAX_TAIL_CHARS);
    }
  });
});

describe("a message streamed through updateMessageElement", () => {
  const stream = (texts: string[], check: (el: HTMLElement, text: string) => void) => {
    const m = message("s1", { status: "streaming" });
    const el = createMessageElement(m);
    for (const text of texts) {
      updateMessageElement(el, m, text, true);
      check(el, text);
    }
    return { el, m };
  };
  const tail = (el: HTMLElement) => el.querySelector(".tw-tail")!;
  const settled = (el: HTMLElement) => el.querySelector(".tw-settled")!;

  it("shows a growing line of _a as plain text past the tail bound, never parsed", () => {
    const texts = Array.from({ length: 200 }, (_, i) => "_a".repeat(100 * (i + 1)));
    const { el, m } = stream(texts, (el, text) => {
      expect(el.querySelector("em, strong")).toBeNull();
      if (text.length > MAX_TAIL_CHARS) {
        expect(tail(el).querySelector(".tw-plain")?.textContent).toBe(text);
        expect(settled(el).innerHTML).toBe("");
      }
    });
    updateMessageElement(el, { ...m, status: "success" }, texts.at(-1)!, false);
    expect(el.querySelector(".tw-body")!.textContent).toBe(texts.at(-1));
    expect(el.querySelector("em, strong")).toBeNull();
  });

  it("appends what settles once the head is long, and renders the whole answer at the end", () => {
    const paragraphs = Array.from({ length: 120 }, (_, i) => `Paragraph **${i}** ${"text ".repeat(40)}`);
    const texts = paragraphs.map((_, i) => `${paragraphs.slice(0, i + 1).join("\n\n")}\n\n`);
    let first: Element | null = null;
    const { el, m } = stream(texts, (el, text) => {
      const head = settled(el);
      if (text.length > WHOLE_HEAD_CHARS + 1_000) {
        first ??= head.firstElementChild;
        expect(head.firstElementChild).toBe(first); // appended to, not rendered again
      }
      expect(head.querySelectorAll("strong").length).toBe(text.split("\n\n").length - 1);
    });
    expect(first).not.toBeNull();
    updateMessageElement(el, { ...m, status: "success" }, texts.at(-1)!, false);
    expect(settled(el).firstElementChild).not.toBe(first);
    expect(settled(el).querySelectorAll("p > strong")).toHaveLength(120);
  });

  it("streams many small blocks in bounded pieces, plain text past the markdown limit", () => {
    const text = "a\n\n".repeat(50_000);
    const texts = Array.from({ length: 15 }, (_, i) => text.slice(0, 10_000 * (i + 1)));
    const { el } = stream(texts, (el) => {
      expect(tail(el).textContent!.length).toBeLessThanOrEqual(MAX_TAIL_CHARS);
    });
    // the pieces share one element budget; past it, and past the markdown limit, plain text
    expect(settled(el).getElementsByTagName("*").length).toBeLessThanOrEqual(ELEMENT_BUDGET + texts.length);
    expect(settled(el).lastElementChild?.classList.contains("tw-plain")).toBe(true);
    expect(settled(el).textContent!.replace(/\s/g, "").length).toBeGreaterThan(49_000);
  });
});
