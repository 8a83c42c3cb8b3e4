"""Prices of models and what usage cost: ``Prices``, ``Price``, ``Cost``.

Money is ``Decimal`` dollars, never a float: a cost is tokens times the price per million tokens,
exact, so sums of answers, threads and agents agree to the last digit. A model without a price
costs "no price", never 0: its tokens are counted apart (``Cost.unpriced_tokens``). Usage the
provider did not report (estimated from the text, ``metadata.usage_estimated`` in the store) keeps
``Cost.estimated`` set in every sum it enters.

Where prices come from, later ones winning: the dated default table ``DEFAULT_PRICES`` (public
list prices of common hosted models on ``DEFAULT_PRICES_DATE``), the TOML or JSON file named by
``$THREADWIDGET_PRICES``, then the table given in code, ``tw.Prices({"my-model": (0.5, 1.5)})``.

Input tokens the provider read from its prompt cache (``Usage.cached_input_tokens``) cost the
model's cached-input price, which is its input price unless the table gives one
(``(input, output, cached_input)``, or ``{"input", "output", "cached_input"}`` in a file).
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import tomllib

from ._errors import InvalidArgumentError
from ._usage import Usage

__all__ = ["DEFAULT_PRICES", "DEFAULT_PRICES_DATE", "ENV_PRICES", "Cost", "Price", "Prices", "money", "to_usd"]

#: the environment variable naming a TOML or JSON file of prices, over the defaults
ENV_PRICES = "THREADWIDGET_PRICES"
MILLION = Decimal(1_000_000)

#: the day the default table was read from the providers' price pages (USD per million tokens)
DEFAULT_PRICES_DATE = "2025-06-01"
#: input, output, cached input (a prompt-cache read): USD per million tokens. A ``*`` pattern also
#: covers dated snapshots (``gpt-4o-mini-2024-07-18``); the longest matching pattern wins.
#: Gemini's cached prices are those of prompts up to 200k tokens, without the cache's storage.
DEFAULT_PRICES: dict[str, tuple[str, str, str]] = {
    "gpt-4o*": ("2.50", "10.00", "1.25"),
    "gpt-4o-mini*": ("0.15", "0.60", "0.075"),
    "gpt-4.1*": ("2.00", "8.00", "0.50"),
    "gpt-4.1-mini*": ("0.40", "1.60", "0.10"),
    "gpt-4.1-nano*": ("0.10", "0.40", "0.025"),
    "o3*": ("2.00", "8.00", "0.50"),
    "o3-mini*": ("1.10", "4.40", "0.55"),
    "o4-mini*": ("1.10", "4.40", "0.275"),
    "claude-opus-4*": ("15.00", "75.00", "1.50"),
    "claude-sonnet-4*": ("3.00", "15.00", "0.30"),
    "claude-3-7-sonnet*": ("3.00", "15.00", "0.30"),
    "claude-3-5-sonnet*": ("3.00", "15.00", "0.30"),
    "claude-3-5-haiku*": ("0.80", "4.00", "0.08"),
    "gemini-2.5-pro*": ("1.25", "10.00", "0.31"),
    "gemini-2.5-flash*": ("0.30", "2.50", "0.075"),
    "gemini-2.0-flash*": ("0.10", "0.40", "0.025"),
}


def to_usd(value: Any, what: str) -> Decimal:
    """``value`` (an int, a str like ``"0.50"``, a Decimal, or a float read as its shortest
    repr) as Decimal dollars >= 0, or InvalidArgumentError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise InvalidArgumentError(f"{what}={value!r} is not valid; expected dollars as a number or str, e.g. 0.50.")
    try:
        usd = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        raise InvalidArgumentError(f"{what}={value!r} is not a number; expected dollars, e.g. '0.50'.") from None
    if not usd.is_finite() or usd < 0:
        raise InvalidArgumentError(f"{what}={value!r} is not valid; expected dollars >= 0, e.g. 0.50.")
    return usd


def money(usd: Decimal) -> str:
    """Dollars as people read them: cents from 1 $ up; below, up to four significant digits, at
    least two decimals (``0.50 $``, ``0.0334 $``, ``0.00005 $``)."""
    if usd == 0:
        return "0.00 $"
    if abs(usd) >= 1:
        return f"{usd.quantize(Decimal('0.01')):,} $"
    shown = usd.quantize(Decimal(1).scaleb(min(-2, usd.adjusted() - 3))).normalize()
    if shown.as_tuple().exponent > -2:  # type: ignore[operator]
        shown = shown.quantize(Decimal("0.01"))
    return f"{shown:f} $"


@dataclass(frozen=True)
class Price:
    """A model's price: USD per million ``input`` and ``output`` tokens, and per million input
    tokens read from the provider's prompt cache (``cached_input``; not given: the input price)."""

    input: Decimal
    output: Decimal
    cached_input: Decimal = None  # type: ignore[assignment]  # None given: the input price

    def __post_init__(self) -> None:
        if self.cached_input is None:
            object.__setattr__(self, "cached_input", self.input)

    def cost(self, usage: Usage) -> Decimal:
        """Uncached input at the input price, cached input at the cached price, output at the output price."""
        cached = min(usage.cached_input_tokens, usage.input_tokens)
        if not cached:
            return (usage.input_tokens * self.input + usage.output_tokens * self.output) / MILLION
        uncached = usage.input_tokens - cached
        return (uncached * self.input + cached * self.cached_input + usage.output_tokens * self.output) / MILLION

    def __str__(self) -> str:
        cached = f" ({self.cached_input:f} $ cached)" if self.cached_input != self.input else ""
        return f"{self.input:f} $ in{cached} / {self.output:f} $ out per million tokens"


def _price(model: str, value: Any) -> Price:
    if isinstance(value, Price):
        return value
    keys = {"input", "output", "cached_input"}
    if isinstance(value, Mapping) and set(value) <= keys and {"input", "output"} <= set(value):
        parts = (value["input"], value["output"], value.get("cached_input"))
    elif isinstance(value, tuple | list) and len(value) in (2, 3):
        parts = (value[0], value[1], value[2] if len(value) == 3 else None)
    else:
        raise InvalidArgumentError(
            f"the price of {model!r} is {value!r}; expected USD per million tokens as (input, output), "
            '(input, output, cached_input) or {"input": 0.15, "output": 0.60, "cached_input": 0.075} '
            "(cached_input optional: the input price)."
        )
    given = to_usd(parts[0], f"{model}.input")
    cached = given if parts[2] is None else to_usd(parts[2], f"{model}.cached_input")
    return Price(given, to_usd(parts[1], f"{model}.output"), cached)


class Prices:
    """Model names (exact, or patterns with ``*`` and ``?``) → ``Price``. ``Prices(table)`` adds
    ``table`` over the defaults and ``$THREADWIDGET_PRICES``; ``defaults=False`` takes ``table``
    alone. ``prices.get(model)`` is the exact name's price, else the longest matching pattern's,
    else None (no price)."""

    def __init__(self, table: Mapping[str, Any] | None = None, *, defaults: bool = True):
        if table is not None and not isinstance(table, Mapping):
            raise InvalidArgumentError(
                f"table={table!r} is not valid; expected a dict such as {{'gpt-4o-mini': (0.15, 0.60)}}."
            )
        self._table: dict[str, Price] = {}
        if defaults:
            self._add(DEFAULT_PRICES)
            path = os.environ.get(ENV_PRICES)
            if path:
                self._add(_read(Path(path), f"${ENV_PRICES}"))
        self._add(table or {})

    def _add(self, table: Mapping[str, Any]) -> None:
        for model, value in table.items():
            if not isinstance(model, str) or not model:
                raise InvalidArgumentError(f"the model name {model!r} is not valid; expected a non-empty str.")
            self._table[model] = _price(model, value)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, defaults: bool = True) -> Prices:
        """Prices from a TOML or JSON file (``[ "gpt-4o-mini" ] input = 0.15  output = 0.60``, or
        ``{"gpt-4o-mini": {"input": 0.15, "output": 0.60}}``; ``cached_input`` optional) over the
        defaults."""
        return cls(_read(Path(path), "path"), defaults=defaults)

    def get(self, model: str | None) -> Price | None:
        if model is None:
            return None
        if model in self._table:
            return self._table[model]
        matches = [p for p in self._table if any(c in p for c in "*?[") and fnmatch.fnmatchcase(model, p)]
        return self._table[max(matches, key=len)] if matches else None

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.get(model) is not None

    def items(self) -> Iterable[tuple[str, Price]]:
        return self._table.items()

    def __repr__(self) -> str:
        return f"<tw.Prices {len(self._table)} models or patterns (defaults of {DEFAULT_PRICES_DATE})>"


def _read(path: Path, what: str) -> dict[str, Any]:
    try:
        raw = path.expanduser().read_bytes()
    except OSError as exc:
        raise InvalidArgumentError(f"{what}: cannot read prices from {str(path)!r}: {exc.strerror or exc}.") from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(raw, parse_float=Decimal)
        else:
            data = tomllib.loads(raw.decode("utf-8"), parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise InvalidArgumentError(
            f"{what}: the prices file {str(path)!r} is not valid {kind}: {exc}. Expected "
            '{"model": {"input": 0.15, "output": 0.60, "cached_input": 0.075}} (USD per million tokens; '
            "cached_input optional)."
        ) from None
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"{what}: the prices file {str(path)!r} holds {type(data).__name__}, not a table.")
    return data


@dataclass(frozen=True)
class Cost:
    """What some usage cost: its tokens, ``usd`` for the tokens of models with a price (None when
    none has one), the tokens of models without a price and their names, and whether any of the
    usage was estimated."""

    usage: Usage = field(default_factory=Usage)
    usd: Decimal | None = None
    unpriced_tokens: int = 0
    unpriced_models: tuple[str, ...] = ()
    estimated: bool = False

    @classmethod
    def of(cls, usage: Usage, model: str | None, prices: Prices, *, estimated: bool = False) -> Cost:
        price = prices.get(model)
        if price is None:
            name = model or "(no model)"
            return cls(usage, None, usage.total_tokens, (name,) if usage.total_tokens else (), estimated)
        return cls(usage, price.cost(usage), 0, (), estimated)

    def __add__(self, other: Cost) -> Cost:
        usd = self.usd if other.usd is None else other.usd if self.usd is None else self.usd + other.usd
        models = tuple(sorted(set(self.unpriced_models) | set(other.unpriced_models)))
        return Cost(self.usage + other.usage, usd, self.unpriced_tokens + other.unpriced_tokens, models,
                    self.estimated or other.estimated)  # fmt: skip

    def __radd__(self, other: object) -> Cost:
        if other == 0:
            return self
        return NotImplemented

    @property
    def text(self) -> str:
        """``0.12 $``, ``no price``, ``0.12 $ + no price for 1,200 tokens (llama3)``; ``~`` before
        an estimate."""
        mark = "~" if self.estimated else ""
        if self.usd is None:
            return "no price" if self.unpriced_tokens or not self.usage.total_tokens else "0.00 $"
        shown = mark + money(self.usd)
        if self.unpriced_tokens:
            shown += f" + no price for {self.unpriced_tokens:,} tokens ({', '.join(self.unpriced_models)})"
        return shown

    def __repr__(self) -> str:
        return f"<tw.Cost {self.text}: {self.usage.text}>"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``usd`` as an exact decimal string (or None: no price)."""
        return {
            "input_tokens": self.usage.input_tokens,
            "cached_input_tokens": self.usage.cached_input_tokens,
            "output_tokens": self.usage.output_tokens,
            "total_tokens": self.usage.total_tokens,
            "usd": None if self.usd is None else f"{self.usd.normalize():f}",
            "unpriced_tokens": self.unpriced_tokens,
            "unpriced_models": list(self.unpriced_models),
            "estimated": self.estimated,
        }
