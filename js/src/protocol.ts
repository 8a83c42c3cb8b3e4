// The contract between the Python widgets and these views: synced traits and custom messages.
// threadwidget/widgets/_wire.py mirrors every shape here as TypedDicts, by the same names; change
// both together (tests/test_wire.py compares JSON schemas generated from each side).

import type { AnyModel } from "@anywidget/types";

export type Role = "user" | "assistant" | "system" | "tool";
export type MessageStatus = "pending" | "streaming" | "success" | "failed" | "aborted";
export type Decision = "approved" | "denied";
export type ToolCallStatus =
  | "streaming_args"
  | "awaiting_approval"
  | "approved"
  | "running"
  | "success"
  | "error"
  | "denied";

// Mirrors threadwidget/_statuses.py.
/** A message being written: an assistant step, or a prompt waiting in the thread's queue. */
export const LIVE_STATUSES: ReadonlySet<MessageStatus> = new Set(["pending", "streaming"]);
/** A tool call that has not ended: the answer goes on after it. */
export const OPEN_TOOL_STATUSES: ReadonlySet<ToolCallStatus> = new Set(["streaming_args", "running"]);

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  /** Of input_tokens, read from a prompt cache; only when some were. */
  cached_input_tokens?: number;
}

export interface ToolCall {
  id: string;
  message_id: string;
  call_id: string;
  name: string;
  /** JSON text; partial while the model is still streaming the arguments. */
  arguments: string;
  status: ToolCallStatus;
  /** 0..1, or null when the tool reports no progress. */
  progress: number | null;
  progress_note: string | null;
  /** JSON text. */
  result: string | null;
  error: string | null;
  /** Unix seconds. */
  started_at: number | null;
  ended_at: number | null;
  /** A person's decision on a call that waited for one (`awaiting_approval`), who, when, why. */
  decision: Decision | null;
  decided_by: string | null;
  /** Unix seconds. */
  decided_at: number | null;
  decision_note: string | null;
}

/** What an answer cost, on its last step: as people read it ("0.0012 $", "no price", "~" for an
 * estimate), and the details shown on hover. */
export interface AnswerCost {
  answer: string;
  /** The thread, through this answer. */
  thread: string;
  /** Tokens of the answer and of the thread, the model and the price used. */
  detail: string;
}

export interface Message {
  id: string;
  role: Role;
  text: string;
  status: MessageStatus;
  error: string | null;
  agent: string | null;
  model: string | null;
  /** Unix seconds. */
  created_at: number;
  usage: Usage | null;
  tool_calls: ToolCall[];
  /** Who wrote it: a prompt's person, or the person of a human answer (an answer without one was
   * written by its agent). */
  user_id: string | null;
  /** A prompt waiting for the thread's turn: its place in the queue (1 is answered next); absent
   * on every other message. */
  queue_position?: number;
  /** Only on an answer's last step, once it ended. */
  cost?: AnswerCost;
  /** Only where there is a choice: which of a prompt's versions (or, on an answer's first step,
   * which of its alternatives) the thread's path shows. */
  branch?: BranchPlace;
}

/** Which of the versions of a prompt (or alternatives of an answer) the path shows. */
export interface BranchPlace {
  /** From 0. */
  index: number;
  /** 2 or more. */
  count: number;
}

export interface ThreadInfo {
  id: string;
  title: string | null;
  agent: string | null;
  user_id: string | null;
  /** Unix seconds. */
  updated_at: number;
  preview: string | null;
}

/** A piece of a search hit's snippet: plain text, to render as text; `mark`: a word the query matched. */
export interface SnippetPart {
  text: string;
  mark: boolean;
}

/** A message a search found. */
export interface SearchHitInfo {
  thread_id: string;
  thread_title: string | null;
  message_id: string;
  role: Role;
  /** Unix seconds. */
  created_at: number;
  /** The snippet around the match, in order. */
  parts: SnippetPart[];
}

/** Snapshot of the answer being streamed: its full text through delta number `seq`. */
export interface StreamSnapshot {
  message_id: string;
  seq: number;
  text: string;
}

/** Another person with the thread open in a view (in any process sharing the store). */
export interface PresentUser {
  user: string;
  typing: boolean;
}

export type ThreadState = "idle" | "waiting" | "streaming" | "failed" | "aborted";

export interface ThreadStatus {
  state: ThreadState;
  note: string;
}

export interface ChatTraits {
  thread_id: string;
  title: string;
  /** Recent messages, oldest first; the message being streamed is included. An update may carry
   * only the newest part of the window (from the oldest changed message on): a view keeps the
   * messages it already shows that the update leaves out, so an answer's bytes do not grow with
   * the thread. A new view or a page reload gets the whole window. */
  messages: Message[];
  stream: StreamSnapshot | null;
  status: ThreadStatus;
  has_older: boolean;
  agent_attached: boolean;
  error: string;
  /** The person using this view: their messages are "You", everyone else's show their name. */
  user: string;
  /** The other people who have the thread open now, by name (a killed kernel's drop out within 10 s). */
  present: PresentUser[];
  /** Why this kernel may only read the store ("" when it can write): the box is disabled. */
  read_only?: string;
  /** Why the view is not live ("" when it is): the store's server cannot be reached. The kernel
   * reconnects and the view catches up by itself. */
  connection?: string;
  /** Changes when the thread's current path does (someone showed another version or answer): the
   * view drops the messages it kept and shows `messages` afresh. */
  path?: string;
  /** A message of the thread to show highlighted and scroll to (a search hit; "" for none): the
   * view loads older pages until it shows it. */
  highlighted?: string;
  /** Why new prompts in the thread are refused now, a budget reached ("" when they are not): shown
   * above the box before anyone asks. */
  budget?: string;
}

export interface ToolsTraits {
  thread_id: string;
  /** Newest last. */
  tool_calls: ToolCall[];
}

export interface ThreadListTraits {
  /** Newest activity first. */
  threads: ThreadInfo[];
  /** Set by the view when the user picks a thread. */
  selected: string | null;
  /** Set by the view: the search box ("": no search). */
  query: string;
  /** The messages the query finds, best first (kept up to date while the query stays). */
  hits: SearchHitInfo[];
  /** Why the query cannot be searched ("" when it can), e.g. an unclosed quote. */
  search_error: string;
}

export type AppTraits = ChatTraits & ToolsTraits & ThreadListTraits;

export type UsageBy = "day" | "agent" | "model" | "thread" | "user";
export type UsageMetric = "tokens" | "usd";

/** One part of a bar of the usage chart, and one row of its table: a group and a part of it. */
export interface UsageRow {
  /** A UTC day, an agent, a model, a thread id or a user ("(no agent)": none). */
  group: string;
  /** The stacked part: the model (the agent when the chart is per model). */
  part: string;
  input_tokens: number;
  /** Of input_tokens, read from a prompt cache. */
  cached_input_tokens: number;
  output_tokens: number;
  /** Exact decimal dollars; null: no price. */
  usd: string | null;
  /** As people read it: "0.12 $", "no price", "~" before an estimate. */
  cost: string;
  estimated: boolean;
}

export interface UsagePanelTraits {
  by: UsageBy;
  part_by: "model" | "agent";
  /** As given, e.g. "7d"; null: all the store. */
  since: string | null;
  /** The chart's height: tokens or dollars (the view toggles it). */
  metric: UsageMetric;
  /** Groups in chart order, each group's parts most first. */
  rows: UsageRow[];
  /** Each group's sum (part ""), in chart order. */
  groups: UsageRow[];
  /** Group and part "". */
  total: UsageRow;
  /** The group whose bar was clicked: the table shows only its rows. */
  selected: string | null;
}

// Custom messages, Python → JS.

/** Text of deltas `first_seq..seq` (inclusive; per message, from 1, contiguous). */
export interface DeltaMsg {
  kind: "delta";
  message_id: string;
  first_seq: number;
  seq: number;
  text: string;
  /** The stream of this message is finished; a trait update with the final message follows. */
  end: boolean;
}

/** Reply to `load_older`. */
export interface OlderMsg {
  kind: "older";
  request_id: string;
  messages: Message[];
  has_older: boolean;
}

/** A prompt Python could not send: its text goes back into the box (nothing typed is lost). */
export interface UnsentMsg {
  kind: "unsent";
  text: string;
}

/** Reply to `highlighter`: the module of js/src/highlight.ts, packed (base64 of its gzip). */
export interface HighlighterMsg {
  kind: "highlighter";
  source: string;
}

export type InboundMsg = DeltaMsg | OlderMsg | UnsentMsg | HighlighterMsg;

// Custom messages, JS → Python.

/** A prompt typed in the box. */
export interface SendMsg {
  kind: "send";
  text: string;
}

/** The Stop button. */
export interface AbortMsg {
  kind: "abort";
}

/** "Load older messages": the window before the message `before`. */
export interface LoadOlderMsg {
  kind: "load_older";
  request_id: string;
  before: string;
}

/** A view shows code to highlight and the page has no highlighter yet (see highlighter.ts). */
export interface HighlighterRequestMsg {
  kind: "highlighter";
}

/** A person's decision on a tool call that waits (the Approve / Deny buttons); `note`: the note or
 * reason typed with it ("" for none). */
export interface DecideMsg {
  kind: "decide";
  tool_call_id: string;
  decision: Decision;
  note: string;
}

/** The person started (`true`) or stopped typing in the box. */
export interface TypingMsg {
  kind: "typing";
  typing: boolean;
}

/** Answer the prompt of this answer's step again (the view's agent writes it). */
export interface RegenerateMsg {
  kind: "regenerate";
  message_id: string;
}

/** A new version of the prompt `message_id` with `text`, answered like a sent prompt. */
export interface EditMsg {
  kind: "edit";
  message_id: string;
  text: string;
}

/** Copy the path up to this message into a new thread, and show that one. */
export interface ForkMsg {
  kind: "fork";
  message_id: string;
}

/** Show version (or alternative) `index` of this message, for everyone. */
export interface BranchMsg {
  kind: "branch";
  message_id: string;
  index: number;
}

export type OutboundMsg =
  | SendMsg
  | AbortMsg
  | LoadOlderMsg
  | DecideMsg
  | TypingMsg
  | HighlighterRequestMsg
  | RegenerateMsg
  | EditMsg
  | ForkMsg
  | BranchMsg;

/** Send `msg` to the Python widget (anywidget types `send` loosely; this keeps it to the contract). */
export function sendMsg(model: AnyModel<any>, msg: OutboundMsg): void {
  model.send(msg);
}

/** Subscribe to trait changes and custom messages; returns a function that unsubscribes all. */
export function listen<T extends object>(
  model: AnyModel<T>,
  handlers: { [K in keyof T & string]?: () => void } & { custom?: (msg: InboundMsg) => void },
): () => void {
  const subs = Object.entries(handlers).map(([name, fn]) => {
    const event = name === "custom" ? "msg:custom" : `change:${name}`;
    const callback = fn as (...args: any[]) => void;
    model.on(event, callback);
    return () => model.off(event, callback);
  });
  return () => subs.forEach((off) => off());
}

// The eval report (EvalReportView): a static table of an EvalReport, one row per case.

/** One expectation a case failed: its name and a readable diff (plain text, never HTML). */
export interface EvalFailure {
  expectation: string;
  diff: string;
}

export interface EvalCaseRow {
  name: string;
  passed: boolean;
  /** The thread the case ran in (null when it could not run). */
  thread_id: string | null;
  failures: EvalFailure[];
}

export interface EvalReportTraits {
  agent: string;
  cases: EvalCaseRow[];
}
