import { describe, expect, it } from "vitest";
import { applyChunk, applySnapshot, type StreamState } from "../src/chunks";
import type { DeltaMsg } from "../src/protocol";

const chunk = (message_id: string, first_seq: number, seq: number, text: string, end = false): DeltaMsg => ({
  kind: "delta",
  message_id,
  first_seq,
  seq,
  text,
  end,
});

const state = (message_id: string, seq: number, text: string, ended = false): StreamState => ({
  message_id,
  seq,
  text,
  ended,
});

describe("applyChunk", () => {
  it("appends the next contiguous range", () => {
    expect(applyChunk(state("m1", 2, "Hel"), chunk("m1", 3, 5, "lo!"))).toEqual({
      state: state("m1", 5, "Hello!"),
      action: "append",
    });
  });

  it("drops a chunk already applied", () => {
    const s = state("m1", 5, "Hello!");
    expect(applyChunk(s, chunk("m1", 3, 5, "lo!"))).toEqual({ state: s, action: "duplicate" });
    expect(applyChunk(s, chunk("m1", 1, 1, "H"))).toEqual({ state: s, action: "duplicate" });
  });

  it("treats a chunk that starts after the next delta as a gap and keeps the state", () => {
    const s = state("m1", 2, "He");
    expect(applyChunk(s, chunk("m1", 4, 4, "l"))).toEqual({ state: s, action: "gap" });
  });

  it("treats a chunk overlapping the applied deltas as a gap", () => {
    const s = state("m1", 3, "Hel");
    expect(applyChunk(s, chunk("m1", 2, 4, "ell"))).toEqual({ state: s, action: "gap" });
  });

  it("starts a new answer from its first delta", () => {
    expect(applyChunk(state("m1", 9, "old", true), chunk("m2", 1, 2, "Hi"))).toEqual({
      state: state("m2", 2, "Hi"),
      action: "start",
    });
    expect(applyChunk(null, chunk("m2", 1, 1, "H"))).toEqual({ state: state("m2", 1, "H"), action: "start" });
  });

  it("waits for a snapshot when joining another message mid-stream", () => {
    expect(applyChunk(null, chunk("m2", 3, 3, "x"))).toEqual({ state: null, action: "gap" });
    const s = state("m1", 2, "ab");
    expect(applyChunk(s, chunk("m2", 2, 2, "x"))).toEqual({ state: s, action: "gap" });
  });

  it("drops chunks for messages already final in `messages`", () => {
    const s = state("m1", 2, "ab");
    const finished = (id: string) => id === "m1";
    expect(applyChunk(s, chunk("m1", 3, 3, "c"), finished)).toEqual({ state: s, action: "stale" });
    expect(applyChunk(null, chunk("m1", 1, 1, "a"), finished)).toEqual({ state: null, action: "stale" });
  });

  it("marks the stream ended on an end chunk and then ignores later text", () => {
    const { state: ended, action } = applyChunk(state("m1", 1, "a"), chunk("m1", 2, 3, "bc", true));
    expect(action).toBe("append");
    expect(ended).toEqual(state("m1", 3, "abc", true));
    expect(applyChunk(ended, chunk("m1", 4, 4, "d"))).toEqual({ state: ended, action: "stale" });
  });

  it("accepts an end flag for the delta already held", () => {
    const s = state("m1", 3, "abc");
    expect(applyChunk(s, chunk("m1", 4, 3, "", true))).toEqual({ state: state("m1", 3, "abc", true), action: "duplicate" });
    expect(applyChunk(s, chunk("m1", 2, 2, "", true)).state).toBe(s);
  });
});

describe("applySnapshot", () => {
  it("takes a newer snapshot or one for another message", () => {
    expect(applySnapshot(state("m1", 2, "ab"), { message_id: "m1", seq: 4, text: "abcd" })).toEqual(state("m1", 4, "abcd"));
    expect(applySnapshot(state("m1", 9, "x"), { message_id: "m2", seq: 1, text: "y" })).toEqual(state("m2", 1, "y"));
    expect(applySnapshot(null, { message_id: "m1", seq: 1, text: "a" })).toEqual(state("m1", 1, "a"));
  });

  it("keeps deltas that overtook an older snapshot", () => {
    const s = state("m1", 5, "abcde", true);
    expect(applySnapshot(s, { message_id: "m1", seq: 3, text: "abc" })).toBe(s);
    expect(applySnapshot(s, { message_id: "m1", seq: 5, text: "abcde" })).toBe(s);
  });

  it("clears when no answer is streaming", () => {
    expect(applySnapshot(state("m1", 2, "ab"), null)).toBeNull();
  });
});
