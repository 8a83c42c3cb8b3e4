import { Marked } from "marked";
import { beforeEach, describe, expect, it } from "vitest";
import { QUICK_RULES, renderCached, renderMarkdown, splitSettled } from "../src/markdown";
import { withHighlighter } from "./highlighter-slot";

beforeEach(() => withHighlighter());

function dom(markdown: string): HTMLDivElement {
  const div = document.createElement("div");
  div.innerHTML = renderMarkdown(markdown);
  return div;
}

/** Every attribute anywhere in the tree, as "name=value". */
const attributes = (root: Element): string[] =>
  [...root.querySelectorAll("*")].flatMap((el) => [...el.attributes].map((a) => `${a.name}=${a.value}`));

describe("renderMarkdown", () => {
  it("renders raw HTML as text: <script> never becomes an element", () => {
    const div = dom("hi <script>alert(1)</script>\n\n<script>alert(2)</script>");
    expect(div.querySelector("script")).toBeNull();
    expect(div.textContent).toContain("<script>alert(1)</script>");
  });

  it("leaves no <img onerror> and no event-handler attributes", () => {
    const div = dom('<img src=x onerror="alert(1)">\n\n<div onclick="alert(1)" onmouseover="x()">a</div>\n\nok');
    expect(div.querySelector("img")).toBeNull();
    expect(attributes(div).filter((a) => a.startsWith("on"))).toEqual([]);
  });

  it("removes javascript: and data: URLs from links", () => {
    for (const href of ["javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,<script>alert(1)</script>"]) {
      const div = dom(`[click](${href})`);
      const a = div.querySelector("a");
      expect(a?.getAttribute("href") ?? null).toBeNull();
      expect(div.innerHTML.toLowerCase()).not.toMatch(/(javascript|data):/);
    }
    const raw = dom('<a href="javascript:alert(1)">x</a>');
    expect(raw.querySelector("a")).toBeNull();
  });

  it("leaves no <iframe>, <style>, style attributes or forms", () => {
    const div = dom(
      '<iframe src="https://evil.example"></iframe>\n\n<style>body{display:none}</style>\n\n' +
        '<div style="position:fixed;inset:0">x</div>\n\n<form action="/x"><input></form>',
    );
    for (const tag of ["iframe", "style", "form", "input", "div"]) expect(div.querySelector(tag)).toBeNull();
    expect(attributes(div).filter((a) => a.startsWith("style"))).toEqual([]);
  });

  it("opens links in a new tab with rel noopener noreferrer", () => {
    const a = dom("see [docs](https://example.com/a?b=1) and https://example.org").querySelectorAll("a");
    expect(a).toHaveLength(2);
    for (const link of a) {
      expect(link.getAttribute("target")).toBe("_blank");
      expect(link.getAttribute("rel")).toBe("noopener noreferrer");
    }
    expect(a[0]!.getAttribute("href")).toBe("https://example.com/a?b=1");
  });

  it("shows images as links, never loading them", () => {
    const div = dom("![chart](https://example.com/x.png?leak=secret) ![x](data:image/png;base64,AAAA)");
    expect(div.querySelector("img")).toBeNull();
    const links = div.querySelectorAll("a");
    expect(links[0]!.getAttribute("href")).toBe("https://example.com/x.png?leak=secret");
    expect(links[0]!.textContent).toBe("chart");
    expect(links[1]?.getAttribute("href") ?? null).toBeNull();
  });

  it("renders fenced code as <pre><code>, escaped and highlighted", () => {
    const div = dom("```python\ndef f():\n    return '<b>'\n```");
    const code = div.querySelector("pre > code");
    expect(code?.className).toBe("language-python");
    expect(code?.textContent).toBe("def f():\n    return '<b>'");
    expect(code?.querySelector("b")).toBeNull();
    expect(code?.querySelector(".hljs-keyword")?.textContent).toBe("def");
  });

  it("renders code in unknown languages plainly, and skips highlighting when asked", () => {
    const plain = document.createElement("div");
    plain.innerHTML = renderMarkdown("```python\nx = 1\n```", { highlight: false });
    expect(plain.querySelector("pre > code span")).toBeNull();
    expect(dom("```cobol\nDISPLAY 'HI'.\n```").querySelector("pre > code")?.textContent).toBe("DISPLAY 'HI'.");
  });

  it("keeps only highlighting classes from the source", () => {
    const div = dom("```python\nx = 1\n```\n\n<span class=\"jp-Dialog tw-root\">x</span>");
    expect(attributes(div).filter((a) => a.startsWith("class=") && /jp-|tw-/.test(a))).toEqual([]);
  });

  it("renders task lists without form controls", () => {
    const div = dom("- [x] done\n- [ ] todo");
    expect(div.querySelector("input")).toBeNull();
    expect(div.textContent).toContain("☑ done");
  });
});

describe("marked's rules skipped where they cannot match", () => {
  // Lines that start, end, continue or interrupt quotes, raw HTML, tables and setext headings.
  const LINES = [
    "", " ", "\t", "\u00a0", "text", "  text", "text <b>x</b>", "text\r", "\u2028", "-x", "1.5 kg", "#tag",
    "a | b", "| a | b |", "|---|---|", "--- | ---", ":-: | -:", "| - |", "-|-", "  |-|", "   | :-- | --: |",
    "---", "===", "=", "-", " --- ", "   ===  ", "    ---", "\t---", "--- x", "== =", "* * *",
    "- item", "1. item", "- ", "- > quote", "- a | b", "> quote", ">", "   > quote", "    > code", "> ---",
    "> a | b", "> |-|-|", "<div>", "   <div>", "    <div>", "  <p>x</p>", "</div>", "<span>", "<!-- c -->",
    "<?php ?>", "<![CDATA[x]]>", "```", "    ```", "~~~", "# h", "    # h", "[x]: https://example.com",
  ];
  let seed = 7;
  const random = (n: number) => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return Math.floor((seed / 2 ** 31) * n);
  };
  const docs = Array.from({ length: 4_000 }, () =>
    Array.from({ length: 1 + random(8) }, () => LINES[random(LINES.length)]).join("\n"),
  );
  const long = "a long heading text ".repeat(40); // past what the setext check looks at
  docs.push(`${long}\n===`, `${long}\n\n---`, `intro\n${long}\n${long}\n---\n\nafter`);
  docs.push(`${"b".repeat(495)}\n${" ".repeat(10)}x\n===`); // the look-ahead ends inside a line of spaces

  it("renders what marked renders without the checks", () => {
    const quick = new Marked(QUICK_RULES);
    const full = new Marked();
    const seen = new Set<string>();
    for (const doc of docs) {
      const html = quick.parse(doc, { async: false });
      expect(html, JSON.stringify(doc)).toBe(full.parse(doc, { async: false }));
      for (const tag of html.match(/<(h1|h2|table|blockquote|div|span)/g) ?? []) seen.add(tag);
    }
    // each skipped rule matched somewhere in the corpus
    expect([...seen].sort()).toEqual(["<blockquote", "<div", "<h1", "<h2", "<span", "<table"]);
  });
});

describe("renderCached", () => {
  it("returns the rendering of the current text", () => {
    expect(renderCached("m1", "**a**")).toBe(renderMarkdown("**a**"));
    expect(renderCached("m1", "**b**")).toBe(renderMarkdown("**b**"));
    expect(renderCached("m1", "**a**")).toBe(renderMarkdown("**a**"));
  });
});

describe("splitSettled", () => {
  it("settles text through the last blank line", () => {
    expect(splitSettled("one\n\ntwo\n\nthr")).toEqual(["one\n\ntwo\n\n", "thr"]);
    expect(splitSettled("one line")).toEqual(["", "one line"]);
    expect(splitSettled("para\n")).toEqual(["", "para\n"]);
  });

  it("takes a backtick line with a backtick after the marker for text, not a fence", () => {
    expect(splitSettled("```a`b\n\nafter")).toEqual(["```a`b\n\n", "after"]);
    expect(splitSettled("```a b\n\nafter")).toEqual(["", "```a b\n\nafter"]);
  });

  it("never splits inside an open code fence", () => {
    expect(splitSettled("intro\n\n```py\na = 1\n\nb = 2")).toEqual(["intro\n\n", "```py\na = 1\n\nb = 2"]);
    expect(splitSettled("```py\na\n\nb\n```\n\nafter")).toEqual(["```py\na\n\nb\n```\n\n", "after"]);
  });
});
