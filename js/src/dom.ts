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

/** Work per slice where the browser does not say how long it will be idle. */
const IDLE_SLICE_MS = 8;

/**
 * Run `fn` when the page is idle, after the next paint, and again while it returns true (work
 * left). `fn` gets how many milliseconds the idle period has left, and should do at least one
 * piece of work whatever it says (`timeout` ms without an idle period gives it a slice anyway).
 * Without `requestIdleCallback` (Safari), a slice runs in a task after each frame.
 */
export function idleScheduler(fn: (timeLeft: () => number) => boolean, timeout = 200): { schedule(): void; cancel(): void } {
  const ric = globalThis.requestIdleCallback?.bind(globalThis);
  const cic = globalThis.cancelIdleCallback?.bind(globalThis);
  let idle: number | null = null;
  let task: ReturnType<typeof setTimeout> | null = null;
  const afterFrame = frameScheduler(() => {
    task = setTimeout(() => run(null), 0);
  });
  function run(deadline: IdleDeadline | null): void {
    idle = task = null;
    const end = performance.now() + IDLE_SLICE_MS;
    const timeLeft = deadline && !deadline.didTimeout ? () => deadline.timeRemaining() : () => end - performance.now();
    if (fn(timeLeft)) schedule();
  }
  function schedule(): void {
    if (idle !== null || task !== null) return;
    if (ric) idle = ric(run, { timeout });
    else afterFrame.schedule();
  }
  return {
    schedule,
    cancel() {
      if (idle !== null) cic?.(idle);
      if (task !== null) clearTimeout(task);
      afterFrame.cancel();
      idle = task = null;
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
