// Modules that travel packed: base64 of their gzip, about a third of their bytes as JSON text.
// The views' bundles come so in `_esm` (loader.ts, build.mjs), the highlighter in the reply to a
// view's request (highlighter.ts).

/** Bytes from base64: natively where the browser can (Chrome 140, Firefox 133, Safari 18.2). */
function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const typed = Uint8Array as { fromBase64?: (text: string) => Uint8Array<ArrayBuffer> };
  if (typed.fromBase64) return typed.fromBase64(text);
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** The text of a packed module. */
export async function unpack(packed: string): Promise<string> {
  const stream = new Response(fromBase64(packed)).body!.pipeThrough(new DecompressionStream("gzip"));
  return new Response(stream).text();
}

/** Import an ES module from its source text, as anywidget imports `_esm`: from a Blob URL. */
export async function importSource<T>(source: string): Promise<T> {
  const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  try {
    return (await import(/* @vite-ignore */ url)) as T;
  } finally {
    URL.revokeObjectURL(url);
  }
}
