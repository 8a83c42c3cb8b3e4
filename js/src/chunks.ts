// Applying streamed text chunks to the answer being shown. Pure: no DOM, no model.
//
// Custom messages can overtake trait updates and are lost for views opened later, so each chunk
// carries the message id and the range of delta numbers it holds. A view keeps text only while the
// ranges are contiguous; on a gap it waits for the next `stream` snapshot trait.

import type { DeltaMsg, StreamSnapshot } from "./protocol";

export interface StreamState extends StreamSnapshot {
  /** An `end` chunk arrived: the text is complete (stop showing the cursor). */
  ended: boolean;
}

export type ChunkAction = "append" | "duplicate" | "stale" | "gap" | "start";

export interface ChunkResult {
  state: StreamState | null;
  action: ChunkAction;
}

const never = () => false;

/**
 * Apply one delta chunk. `isFinished(id)` says whether the message is already final in the
 * `messages` trait; chunks for it are stale.
 */
export function applyChunk(
  state: StreamState | null,
  chunk: DeltaMsg,
  isFinished: (messageId: string) => boolean = never,
): ChunkResult {
  if (isFinished(chunk.message_id)) return { state, action: "stale" };
  if (state === null || state.message_id !== chunk.message_id) {
    if (chunk.first_seq !== 1) return { state, action: "gap" };
    const { message_id, seq, text, end } = chunk;
    return { state: { message_id, seq, text, ended: end }, action: "start" };
  }
  if (chunk.seq <= state.seq) {
    // Already applied; an end flag for the very delta we hold still ends the stream.
    const ended = chunk.end && chunk.seq === state.seq;
    return { state: ended && !state.ended ? { ...state, ended } : state, action: "duplicate" };
  }
  if (state.ended) return { state, action: "stale" };
  // A chunk that starts later than the next delta, or overlaps the applied ones: its delta
  // boundaries are unknown, so wait for a snapshot rather than guess.
  if (chunk.first_seq !== state.seq + 1) return { state, action: "gap" };
  return {
    state: { message_id: state.message_id, seq: chunk.seq, text: state.text + chunk.text, ended: chunk.end },
    action: "append",
  };
}

/** The state after the `stream` trait changed: the snapshot, unless what was applied is newer. */
export function applySnapshot(state: StreamState | null, snapshot: StreamSnapshot | null): StreamState | null {
  if (snapshot === null) return null;
  if (state !== null && state.message_id === snapshot.message_id && state.seq >= snapshot.seq) return state;
  return { message_id: snapshot.message_id, seq: snapshot.seq, text: snapshot.text, ended: false };
}
