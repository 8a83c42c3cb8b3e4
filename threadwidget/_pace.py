"""Rates: a token bucket, for what may go out at once and what must wait (the runtime's writes of
streamed text, the views' messages). Quiet, everything goes at once; under load, at the rate."""

from __future__ import annotations

import threading
import time

__all__ = ["RateLimit"]


class RateLimit:
    """A token bucket: ``per_second`` events, bursts of ``burst``."""

    def __init__(self, per_second: float = 100.0, burst: float = 20.0) -> None:
        self.per_second = per_second
        self.burst = burst
        self._tokens = burst
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.per_second)
        self._at = now

    def reserve(self) -> float:
        """Take a token and return 0.0, or return the seconds to wait for one (taking nothing)."""
        with self._lock:
            self._refill(time.monotonic())
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.per_second

    def refund(self) -> None:
        """Give back a token ``reserve`` took (another limit said wait)."""
        with self._lock:
            self._tokens = min(self.burst, self._tokens + 1.0)

    def take(self) -> None:
        """Count a message that must go now (a trait update at a message boundary)."""
        with self._lock:
            self._refill(time.monotonic())
            self._tokens = max(-self.burst, self._tokens - 1.0)
