// A view's `_esm` as built: its bundle, packed (base64 of gzip), and these few lines that unpack
// and import it. anywidget awaits a default export that is a function, so the view renders as
// soon as the import is done. The module is kept on `globalThis` under its content hash: the
// second view of a kind on a page skips the unpacking and importing.

import type { AnyWidget } from "@anywidget/types";
import { importSource, unpack } from "./packed";

declare const __TW_PACKED__: string;
declare const __TW_KEY__: string;

type WidgetDef = Exclude<AnyWidget, () => unknown>;
type Loading = Promise<{ default: WidgetDef }>;

const modules = ((globalThis as Record<string, unknown>).__threadwidget_modules ??= {}) as Record<string, Loading>;

const load: AnyWidget = async () => {
  const loading = (modules[__TW_KEY__] ??= unpack(__TW_PACKED__).then((source) => importSource(source)));
  try {
    return (await loading).default;
  } catch (error) {
    delete modules[__TW_KEY__]; // the next view tries again
    throw error;
  }
};

export default load;
