// A stand-in for anywidget's model: traits in a plain object, events through a tiny emitter.

import type { AnyModel, RenderProps } from "@anywidget/types";
import type { ChatTraits, InboundMsg, Message, OutboundMsg, ToolCall } from "../src/protocol";

type Callback = (...args: any[]) => void;

const absent = (what: string) => () => Promise.reject(new Error(`${what}: not in these tests`));

export class FakeModel<T extends object> implements AnyModel<T> {
  sent: OutboundMsg[] = [];
  saves = 0;
  widget_manager = { get_model: absent("get_model") };
  private listeners = new Map<string, Set<Callback>>();

  constructor(private traits: T) {}

  /** What anywidget passes to `render` for a view of this model in `el`. */
  props(el: HTMLElement): RenderProps<T> {
    return {
      model: this,
      el,
      signal: new AbortController().signal,
      host: { getWidget: absent("getWidget"), getModel: absent("getModel") },
      experimental: { invoke: absent("invoke") },
    };
  }

  get<K extends keyof T>(name: K): T[K] {
    return this.traits[name];
  }

  set<K extends keyof T>(name: K, value: T[K]): void {
    this.traits[name] = value;
    this.emit(`change:${String(name)}`, this, value);
  }

  save_changes(): void {
    this.saves++;
  }

  on(event: string, callback: Callback): void {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event)!.add(callback);
  }

  off(event: string, callback: Callback): void {
    this.listeners.get(event)?.delete(callback);
  }

  send(msg: OutboundMsg): void {
    this.sent.push(msg);
  }

  /** What the Python side does: set traits, then fire their change events. */
  update(values: Partial<T>): void {
    Object.assign(this.traits, values);
    for (const [name, value] of Object.entries(values)) this.emit(`change:${name}`, this, value);
  }

  /** A custom message from the Python side. */
  custom(msg: InboundMsg): void {
    this.emit("msg:custom", msg, []);
  }

  listenerCount(): number {
    return [...this.listeners.values()].reduce((n, set) => n + set.size, 0);
  }

  private emit(event: string, ...args: unknown[]): void {
    for (const callback of this.listeners.get(event) ?? []) callback(...args);
  }
}

export function message(id: string, fields: Partial<Message> = {}): Message {
  return {
    id,
    role: "assistant",
    text: "",
    status: "success",
    error: null,
    agent: "support",
    model: "scripted",
    created_at: 1_700_000_000,
    usage: null,
    tool_calls: [],
    user_id: null,
    ...fields,
  };
}

export function toolCall(id: string, fields: Partial<ToolCall> = {}): ToolCall {
  return {
    id,
    message_id: "m1",
    call_id: `call_${id}`,
    name: "lookup_order",
    arguments: '{"order_id":"42"}',
    status: "running",
    progress: null,
    progress_note: null,
    result: null,
    error: null,
    started_at: 1_700_000_000,
    ended_at: null,
    decision: null,
    decided_by: null,
    decided_at: null,
    decision_note: null,
    ...fields,
  };
}

export function chatTraits(fields: Partial<ChatTraits> = {}): ChatTraits {
  return {
    thread_id: "t1",
    title: "Order help",
    messages: [],
    stream: null,
    status: { state: "idle", note: "" },
    has_older: false,
    agent_attached: true,
    error: "",
    user: "alice",
    present: [],
    read_only: "",
    ...fields,
  };
}

/** Wait until views have rendered what was scheduled for the next animation frame. */
export const nextFrame = (): Promise<void> => new Promise((resolve) => requestAnimationFrame(() => resolve()));
