"""Token usage, shared by the store (it sums usage per thread and agent) and the models.

In the store a step's ``usage`` is the JSON ``{"input_tokens", "output_tokens"}``, plus
``"cached_input_tokens"`` when the provider read some of the input from its prompt cache (a row
without it: none were).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Usage"]


@dataclass(frozen=True)
class Usage:
    """Token counts of one model call (or a sum of many). ``cached_input_tokens``: how many of
    ``input_tokens`` the provider read from its prompt cache (billed at the cached-input price)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def text(self) -> str:
        """``1,200 in / 80 out tokens``; ``1,200 in (1,024 cached) / 80 out tokens``."""
        cached = f" ({self.cached_input_tokens:,} cached)" if self.cached_input_tokens else ""
        return f"{self.input_tokens:,} in{cached} / {self.output_tokens:,} out tokens"

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
        )

    def __radd__(self, other: object) -> Usage:
        if other == 0:  # sum(usages) starts from 0
            return self
        return NotImplemented

    def __repr__(self) -> str:
        cached = f", cached_input_tokens={self.cached_input_tokens}" if self.cached_input_tokens else ""
        return f"Usage(input_tokens={self.input_tokens}, output_tokens={self.output_tokens}{cached})"

    def to_dict(self) -> dict[str, int]:
        """The stored JSON: ``cached_input_tokens`` only when some were."""
        out = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}
        if self.cached_input_tokens:
            out["cached_input_tokens"] = self.cached_input_tokens
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Usage | None:
        if not data:
            return None
        return cls(
            int(data.get("input_tokens", 0)),
            int(data.get("output_tokens", 0)),
            int(data.get("cached_input_tokens", 0) or 0),
        )
