"""Text helpers every floor uses (the views, the reprs and the command line)."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["count", "iso_time", "one_line"]


def one_line(text: str, limit: int) -> str:
    """``text`` on one line (runs of whitespace made one space), cut to ``limit`` characters with an
    ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def iso_time(ts: float) -> str:
    """A unix time as the reprs show times, in one shape (UTC, milliseconds):
    ``2026-05-04T09:30:00.125Z`` (``threadwidget/testing/nbval_sanitize.cfg`` matches it)."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def count(n: int, noun: str) -> str:
    """``1 thread``, ``2 threads``, ``0 tool calls``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
