"""Checks of arguments at the call: a bad value is a clear error naming it, what was expected and a fix."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from .._errors import InvalidArgumentError

__all__ = ["check_choice", "check_limit", "check_number", "check_text", "dump_metadata"]


def check_choice(name: str, value: str, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise InvalidArgumentError(f"{name}={value!r} is not valid; expected one of {', '.join(choices)}.")


def check_text(name: str, value: Any, *, optional: bool = False) -> Any:
    """A str that can be stored (UTF-8: no lone surrogates), or a clear error naming ``name``."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        expected = "a str or None" if optional else "a str"
        raise InvalidArgumentError(f"{name}={value!r} is not valid; expected {expected}.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start : exc.end]
        raise InvalidArgumentError(
            f"{name} holds {bad!r} at position {exc.start}, which is not text (a lone surrogate, e.g. from a "
            "file name that is not UTF-8); decode it properly or replace it, e.g. "
            "s.encode('utf-8', 'replace').decode()."
        ) from None
    return value


def check_number(name: str, value: object, *, above: float, example: str) -> None:
    """A real number greater than ``above``, or a clear error."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value) and value > above
    if not ok:
        raise InvalidArgumentError(f"{name}={value!r} is not valid; expected a number > {above:g}, e.g. {example}.")


def check_limit(limit: int) -> None:
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise InvalidArgumentError(f"limit={limit!r} is not valid; expected a positive int, e.g. limit=50.")


def dump_metadata(metadata: Any) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise InvalidArgumentError(f"metadata={metadata!r} is not valid; expected a dict of JSON-serialisable values.")
    try:
        text = json.dumps(metadata, allow_nan=False)  # NaN and Infinity are not JSON: readers would choke
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"metadata={metadata!r} cannot be stored: {exc}. Pass only JSON values (no NaN or Infinity)."
        ) from None
    return check_text("metadata", text)
