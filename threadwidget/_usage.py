"""Token usage, shared by the store (it sums usage per thread and agent) and the models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Usage"]


@dataclass(frozen=True)
class Usage:
    """Token counts of one model call (or a sum of many)."""

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens)

    def __radd__(self, other: object) -> Usage:
        if other == 0:  # sum(usages) starts from 0
            return self
        return NotImplemented

    def to_dict(self) -> dict[str, int]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Usage | None:
        if not data:
            return None
        return cls(int(data.get("input_tokens", 0)), int(data.get("output_tokens", 0)))
