// ThreadApp: the thread list, the chat and the tool-call feed of the selected thread, in one widget.

import { mountChat } from "./chat";
import { h, widget } from "./dom";
import type { AnyModel } from "@anywidget/types";
import type { AppTraits } from "./protocol";
import { mountThreadList } from "./threadlist";
import { mountTools } from "./tools";

/** Mount the three panes into `el`; returns the cleanup. */
export function mountApp(model: AnyModel<AppTraits>, el: HTMLElement): () => void {
  el.classList.add("tw-app");
  el.dataset.tw = "app";
  const list = h("div", { class: "tw-app-list" });
  const chat = h("div", { class: "tw-app-chat" });
  const tools = h("div");
  const toolsPane = h("details", { class: "tw-app-tools", open: "" }, h("summary", {}, "Tool calls"), tools);
  // The grid sits inside `el` so that `el` can be the size container its layout queries.
  el.append(h("div", { class: "tw-app-grid" }, list, chat, toolsPane));
  const cleanups = [mountThreadList(model, list), mountChat(model, chat), mountTools(model, tools)];
  return () => cleanups.forEach((cleanup) => cleanup());
}

export default widget(mountApp);
