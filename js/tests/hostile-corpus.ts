// Hostile model output: inputs that crashed, froze or slowed the markdown renderer, or that probe
// the bounds added against them (see the constants in src/markdown.ts). Used by hostile.test.ts
// and by bench/hostile_render.mjs. Model output is untrusted: any of these can arrive as an answer.

export interface HostileInput {
  name: string;
  text: string;
  /** Strings the rendered text must still contain: nothing is dropped. */
  samples: string[];
}

const r = (s: string, n: number) => s.repeat(n);
/** The first and last characters of `text`, which must survive rendering as plain text. */
const ends = (text: string): string[] => [text.slice(0, 40).trim(), text.slice(-40).trim()];
const entry = (name: string, text: string, samples = ends(text)): HostileInput => ({ name, text, samples });

const XSS = '<img src=x onerror=alert(1)><script>alert(1)</script> [x](javascript:alert(1)) <a href="javascript:alert(2)">y</a>';

export const HOSTILE: HostileInput[] = [
  // Reported: stack overflows in marked.
  entry("10 kB of >", r(">", 10_000)),
  entry("'- ' ×10,000", r("- ", 10_000)),
  // Reported: quadratic emphasis matching.
  entry("40 kB of _a", r("_a", 20_000)),
  entry("1 MB of _a", r("_a", 500_000)),
  entry("1 MB of **a", r("**a", 350_000)),
  // Nesting.
  entry(
    "list nested 1,000 levels by indentation",
    Array.from({ length: 1_000 }, (_, i) => `${r(" ", 2 * i)}- item ${i}`).join("\n"),
    ["item 0", "item 999"],
  ),
  entry("'- ' ×10,000 then text", `${r("- ", 10_000)}deep`),
  entry("'1. ' ×10,000", `${r("1. ", 10_000)}deep`),
  entry("'> - ' ×2,500", `${r("> - ", 2_500)}deep`),
  entry("quote one level deeper per line, 300 lines", Array.from({ length: 300 }, (_, i) => `${r(">", i + 1)} line ${i}`).join("\n"), ["line 0", "line 299"]),
  entry("emphasis nested 3,000 deep", `${r("*a ", 3_000)}b${r(" c*", 3_000)}`),
  entry("strong/em alternating 1,000 deep", `${r("**a *", 1_000)}b${r("* a**", 1_000)}`),
  entry("strikethrough nested 3,000 deep", `${r("~~a ", 3_000)}b${r(" c~~", 3_000)}`),
  // Quadratic inline patterns of our own finding.
  entry("'(*a ' ×25,000 (openers with spaces)", r("(*a ", 25_000)),
  entry("'_a *' ×25,000", r("_a *", 25_000)),
  entry("500 openers, then 20,000 intraword _", `${r("(_a ", 500)}${r("a_b ", 20_000)}`),
  entry("! ×50,000 (one word: e-mail lookahead)", r("!", 50_000)),
  entry("100 kB word with _ every 10 characters", r("aaaaaaaaa_", 10_000)),
  entry("100 kB word with ~ every 10 characters", r("aaaaaaaaa~", 10_000)),
  entry("80 blocks of 300 openers", r(`${r("(*a ", 300)}\n\n`, 80)),
  // Code, tables, links, entities, size.
  entry("10,000 backticks in a line", `x ${r("`", 10_000)} y`),
  entry("10,000 backticks (an empty code fence)", r("`", 10_000), []),
  entry("backtick runs of every length", Array.from({ length: 440 }, (_, i) => `${r("`", i + 1)}a`).join("")),
  entry("unclosed fence, 90 kB of code", `\`\`\`python\n${r("def f(x):\n    return '<script>' * x\n", 2_500)}`, ["def f(x):", "return '<script>' * x"]),
  entry("1,000 fences opening and closing", r("```\ncode\n", 1_000), ["code"]),
  entry(
    "table 2,000 columns × 20 rows",
    `|${r("a|", 2_000)}\n|${r("-|", 2_000)}\n${r(`|${r("x|", 2_000)}\n`, 20)}`,
    ["|a|a|a|", "|x|x|x|"],
  ),
  entry("table 300 rows with emphasis in every cell", `| a | b |\n|---|---|\n${r("| **bold** | _it_ |\n", 300)}`, ["bold", "it"]),
  entry("[ ×50,000", r("[", 50_000)),
  entry("[a]( ×25,000", r("[a](", 25_000)),
  entry(
    "5,000 link reference definitions and uses",
    `${Array.from({ length: 5_000 }, (_, i) => `[r${i}]: https://example.com/${i}`).join("\n")}\n\n${Array.from({ length: 5_000 }, (_, i) => `[r${i}]`).join(" ")}`,
    ["r0", "r4999"],
  ),
  entry("HTML entity flood", r("&#x41;&amp;&lt;script&gt;&#0;&#xFFFFFF;&nbsp;", 2_000), ["A&<script>"]),
  entry("HTML entity flood past the size limit", r("&#x41;&amp;&lt;script&gt;&#0;&#xFFFFFF;&nbsp;", 5_000)),
  entry("5 MB single line", r("word ", 1_000_000)),
  entry("1 MB of paragraphs", r("a\n\n", 350_000), ["a"]),
  entry("paragraphs with CR line ends", r("a\r\r", 30_000), ["a"]),
  entry(
    "list nested 1,000 levels, CR line ends",
    Array.from({ length: 1_000 }, (_, i) => `${r(" ", 2 * i)}- item ${i}`).join("\r"),
    ["item 0", "item 999"],
  ),
  // Attempts to get text past the pre-scan: fences it would see and marked would not.
  entry("fence inside a link title, then openers", `[a]: /u "\n\`\`\`\n"\n${r("(*a ", 20_000)}`, ["(*a (*a"]),
  entry("fence inside <pre>, then openers", `<pre>\n\`\`\`\n</pre>\n\n${r("(*a ", 20_000)}`, ["(*a (*a"]),
  entry("backtick info string (not a fence), then openers", `\`\`\`a\`b\n${r("(*a ", 20_000)}`, ["(*a (*a"]),
  // Scripts and javascript: links inside and next to hostile blocks stay inert.
  entry("XSS next to a hostile block", `${XSS}\n\n${r("(*a ", 5_000)}\n\n${XSS}`, ["alert(1)", "(*a (*a"]),
  entry("XSS inside a hostile block", `${XSS} ${r("(*a ", 5_000)} ${XSS}`, ["<script>alert(1)</script>", "(*a (*a"]),
  entry("XSS inside deep nesting", `${r(">", 100)} ${XSS}`, ["<script>alert(1)</script>"]),
];
