"""``Budget``: limits on what answers may use, checked before an answer starts and while it streams.

The runtime (``agent/_run.py``) enforces it; the store sums what was spent. Scopes:

- ``per_answer_tokens``: the tokens of one answer (all its steps);
- ``per_thread_tokens``, ``per_thread_usd``: everything answered in the thread;
- ``per_user_usd_per_day``: every answer in the user's threads (the thread's ``user_id``, else the
  prompt's: who asked) since 00:00 UTC, in any thread, by any agent, written by any process;
- ``per_agent_usd_per_day``: every answer of the agent since 00:00 UTC, by any process.

Aborted and failed answers count. A limit reached ends the answer ``aborted`` with a reason such as
"budget per_thread 0.50 $ reached: 0.51 $" (its text so far and usage kept) and refuses the next
answers in that scope, as long as the scope stays at or over it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from ._errors import InvalidArgumentError
from ._prices import Prices, to_usd

__all__ = ["Budget"]

_TOKENS = ("per_answer_tokens", "per_thread_tokens")
_USD = ("per_thread_usd", "per_user_usd_per_day", "per_agent_usd_per_day")


@dataclass(frozen=True, init=False)
class Budget:
    """Limits on tokens and dollars; each left out (None) is no limit. Dollars are exact decimals
    (``0.50``, ``"0.50"`` or ``Decimal("0.50")``), priced with ``prices`` (else the defaults and
    ``$THREADWIDGET_PRICES``)."""

    per_answer_tokens: int | None
    per_thread_tokens: int | None
    per_thread_usd: Decimal | None
    per_user_usd_per_day: Decimal | None
    per_agent_usd_per_day: Decimal | None
    prices: Prices | None

    def __init__(
        self,
        *,
        per_answer_tokens: int | None = None,
        per_thread_tokens: int | None = None,
        per_thread_usd: Any = None,
        per_user_usd_per_day: Any = None,
        per_agent_usd_per_day: Any = None,
        prices: Prices | None = None,
    ):
        given = dict(locals())
        for name in _TOKENS:
            value = given[name]
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise InvalidArgumentError(f"{name}={value!r} is not valid; expected an int >= 1 (tokens) or None.")
            object.__setattr__(self, name, value)
        for name in _USD:
            value = given[name]
            object.__setattr__(self, name, None if value is None else to_usd(value, name))
        if prices is not None and not isinstance(prices, Prices):
            raise InvalidArgumentError(f"prices={prices!r} is not valid; expected tw.Prices({{...}}) or None.")
        object.__setattr__(self, "prices", prices)

    @property
    def needs_prices(self) -> bool:
        return any(getattr(self, name) is not None for name in _USD)

    def __repr__(self) -> str:
        shown = [f"{f.name}={getattr(self, f.name)!s}" for f in fields(self) if f.name != "prices"]
        return f"tw.Budget({', '.join(s for s in shown if not s.endswith('=None'))})"
