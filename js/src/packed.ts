// Modules that travel packed: base64 of their gzip, about a third of their bytes as JSON text.
// The highlighter comes so in the reply to a view's request (highlighter.ts).

/** The text of a packed module. */
export async function unpack(packed: string): Promise<string> {
  const binary = atob(packed);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  const stream = new Response(bytes).body!.pipeThrough(new DecompressionStream("gzip"));
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
