"""``LiveText``: the text of one answer being streamed, as a widget knows and has sent it.

The store numbers an answer's deltas 1, 2, 3 … The widget applies them in order, sends what it has
not sent yet as one ``DeltaMsg`` chunk (``first_seq..seq``) per flush, and now and then a snapshot
(``StreamSnapshot``: all text through ``seq``) for views that joined late or saw a gap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from . import _wire as wire

__all__ = ["SNAPSHOT_AFTER", "SNAPSHOT_EVERY", "LiveText"]

#: a snapshot is refreshed after this many seconds if the text at least doubled since the last one ...
SNAPSHOT_AFTER = 3.0
#: ... and after this many seconds whatever it grew by. Doubling keeps the snapshots of a fast answer
#: within twice its size; the second rule bounds how long a late view of a slow one waits.
SNAPSHOT_EVERY = 10.0
_SNAPSHOT_MIN_GROWTH = 1024


@dataclass
class LiveText:
    message_id: str
    parts: list[str] = field(default_factory=list)
    chars: int = 0
    seq: int = 0  # the last delta applied
    last: str = ""  # the text of delta ``seq``
    pending: list[str] = field(default_factory=list)
    first_pending: int = 0  # seq of the first delta not sent yet; 0 when none
    snap_chars: int = -1  # text length at the last snapshot; -1 forces one
    snap_at: float = 0.0

    @classmethod
    def from_store(cls, message_id: str, text: str, seq: int, last: str) -> LiveText:
        live = cls(message_id)
        live.rebase(text, seq, last)
        return live

    @property
    def text(self) -> str:
        if len(self.parts) > 1:
            self.parts = ["".join(self.parts)]
        return self.parts[0] if self.parts else ""

    def apply(self, seq: int, text: str) -> Literal["append", "duplicate", "gap"]:
        if seq <= self.seq:
            return "duplicate"
        if seq != self.seq + 1:
            return "gap"
        self.parts.append(text)
        self.chars += len(text)
        self.seq = seq
        self.last = text
        if not self.pending:
            self.first_pending = seq
        self.pending.append(text)
        return "append"

    def rebase(self, text: str, seq: int, last: str) -> None:
        """Start again from the store's text through ``seq`` (``last``: the text of delta ``seq``),
        e.g. after a gap; forces a snapshot."""
        self.parts = [text] if text else []
        self.chars = len(text)
        self.seq = seq
        self.last = last
        self.pending = []
        self.first_pending = 0
        self.snap_chars = -1

    def take_chunk(self, *, end: bool = False) -> wire.DeltaMsg | None:
        """The ``DeltaMsg`` of what was not sent yet. With ``end`` and nothing pending, the last delta
        again with the end flag (a duplicate for views that have it). None when there is nothing."""
        if self.pending:
            chunk: wire.DeltaMsg = {
                "kind": "delta",
                "message_id": self.message_id,
                "first_seq": self.first_pending,
                "seq": self.seq,
                "text": "".join(self.pending),
                "end": end,
            }
            self.pending = []
            self.first_pending = 0
            return chunk
        if end and self.seq > 0:
            return {"kind": "delta", "message_id": self.message_id, "first_seq": self.seq, "seq": self.seq,
                    "text": self.last, "end": True}  # fmt: skip
        return None

    def snapshot_due(self, now: float) -> bool:
        if self.snap_chars < 0:
            return True
        grown = self.chars - self.snap_chars
        if grown <= 0:
            return False
        age = now - self.snap_at
        return (age >= SNAPSHOT_AFTER and grown >= max(_SNAPSHOT_MIN_GROWTH, self.snap_chars)) or (
            age >= SNAPSHOT_EVERY
        )

    def snapshot(self, now: float) -> wire.StreamSnapshot:
        """The ``StreamSnapshot``: all text through ``seq`` (pending text included)."""
        self.snap_chars = self.chars
        self.snap_at = now
        return {"message_id": self.message_id, "seq": self.seq, "text": self.text}
