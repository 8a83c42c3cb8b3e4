// Small DOM helpers shared by the views.

import type { AnyModel, AnyWidget, RenderProps } from "@anywidget/types";

type Child = Node | string;

/** Create an element with attributes (`class` included) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, value);
  el.append(...children);
  return el;
}

/** The outer element of a widget: scoped styles, and no notebook shortcuts inside. */
function rootElement(): HTMLDivElement {
  // Lumino stops looking for keybindings at an element with this attribute, so keys typed in the
  // widget never reach JupyterLab's notebook commands (`d d`, `a`, `b`, arrows, ...).
  return h("div", { class: "tw-root", "data-lm-suppress-shortcuts": "true" });
}

/** Keep key events inside `el` from reaching JupyterLab's handlers further up. */
export function isolateKeys(el: HTMLElement): void {
  for (const type of ["keydown", "keypress", "keyup"]) {
    el.addEventListener(type, (event) => event.stopPropagation());
  }
}

/** Set text only when it differs (avoids needless layout and screen-reader chatter). */
export function setText(el: HTMLElement, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

/** Set or remove an attribute; `null` removes it. */
export function setAttr(el: Element, name: string, value: string | null): void {
  if (value === null) el.removeAttribute(name);
  else if (el.getAttribute(name) !== value) el.setAttribute(name, value);
}

/** Run `fn` at most once per animation frame, however often `schedule` is called. */
export function frameScheduler(fn: () => void): { schedule(): void; cancel(): void } {
  const raf = globalThis.requestAnimationFrame?.bind(globalThis) ?? ((cb: () => void) => setTimeout(cb, 16));
  const caf = globalThis.cancelAnimationFrame?.bind(globalThis) ?? clearTimeout;
  let handle: ReturnType<typeof raf> | null = null;
  return {
    schedule() {
      handle ??= raf(() => {
        handle = null;
        fn();
      });
    },
    cancel() {
      if (handle !== null) caf(handle as never);
      handle = null;
    },
  };
}

/**
 * Make `container`'s children match `items`, in order, reusing the element made for each key.
 * `create` builds a new element; `update` refreshes one (new or reused) from its item.
 */
export function reconcile<T, E extends Element>(
  container: Element,
  nodes: Map<string, E>,
  items: readonly T[],
  key: (item: T) => string,
  create: (item: T) => E,
  update: (el: E, item: T) => void,
): void {
  const seen = new Set<string>();
  let cursor = container.firstElementChild;
  for (const item of items) {
    const k = key(item);
    if (seen.has(k)) continue;
    seen.add(k);
    let el = nodes.get(k);
    if (el === undefined) {
      el = create(item);
      nodes.set(k, el);
    }
    update(el, item);
    if (el === cursor) cursor = cursor.nextElementSibling;
    else container.insertBefore(el, cursor);
  }
  for (const [k, el] of nodes) {
    if (!seen.has(k)) {
      el.remove();
      nodes.delete(k);
    }
  }
}

/** The anywidget module's default export for a view mounted by `mount(model, el)`. */
export function widget<T extends object>(mount: (model: AnyModel<T>, el: HTMLElement) => () => void) {
  return {
    render({ model, el }: RenderProps<T>): () => void {
      const root = rootElement();
      el.append(root);
      const cleanup = mount(model, root);
      return () => {
        cleanup();
        root.remove();
      };
    },
  } satisfies AnyWidget<T>;
}
