// Text formatting for the views. Times are unix seconds, as in the protocol.

export const nowSeconds = (): number => Date.now() / 1000;

/** "just now", "5 min ago", "3 h ago", "2 d ago", then a date. */
export function relativeTime(at: number, now: number = nowSeconds()): string {
  const s = Math.max(0, now - at);
  if (s < 45) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  if (s < 7 * 86400) return `${Math.round(s / 86400)} d ago`;
  return new Date(at * 1000).toLocaleDateString();
}

/** "0.4 s", "12 s", "3 min 05 s". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, seconds);
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.floor(s)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${String(Math.floor(s % 60)).padStart(2, "0")} s`;
}

/** Pretty-printed JSON when `text` parses, else the text as is (e.g. arguments still streaming). */
export function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
