// The languages code blocks are highlighted in, by the names a fence may give them. Shared by the
// views (which ask for the highlighter only for these) and highlight.ts (which has their grammars).

export const LANGUAGES = ["bash", "javascript", "json", "python", "sql"] as const;
export type Language = (typeof LANGUAGES)[number];

const ALIASES: Record<string, Language> = {
  py: "python",
  python3: "python",
  js: "javascript",
  mjs: "javascript",
  ts: "javascript", // close enough, and one grammar fewer to ship
  typescript: "javascript",
  sh: "bash",
  shell: "bash",
  zsh: "bash",
  console: "bash",
};

/** The language a fence's name stands for, or null when its code is not highlighted. */
export function languageOf(name: string): Language | null {
  const lower = name.toLowerCase();
  return ALIASES[lower] ?? ((LANGUAGES as readonly string[]).includes(lower) ? (lower as Language) : null);
}
