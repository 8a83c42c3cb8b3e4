"""The budgets one answer runs under (the agent's and the store's), checked against the store.

``Limits.check(step)`` is asked before each step calls the model and with each piece of streamed
text: what the scopes spent, read from the store (every process's answers, aborted and failed
ones too) at the step's start and again every ``REFRESH_SECONDS`` while it streams, plus what
this step used so far, estimated as the stored usage of an unfinished step is (the context's
characters / 4 in, the text's / 4 out). The first limit reached is the reason the answer ends;
``stopped`` keeps its scope, which the step records as ``metadata.budget_scope`` (``"answer"``,
``"thread"``, ``"user"``, ``"agent"``) so that views in any process can say a scope is over budget.

``refusal(...)`` asks the same before anyone asks: would a new prompt in the thread be refused now?
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING

from .._budget import Budget
from .._errors import InvalidArgumentError
from .._prices import Cost, Prices, money
from .._usage import Usage
from ..store import Store
from ..store._spend import day_start, default_prices

if TYPE_CHECKING:
    from ._agent import Agent

__all__ = ["Limits", "check_prices", "refusal"]

REFRESH_SECONDS = 1.0


def check_prices(budget: Budget, model: str) -> None:
    """A budget in dollars needs the model's price: say so when the agent is made, not mid-answer."""
    prices = budget.prices or default_prices()
    if budget.needs_prices and prices.get(model) is None:
        raise InvalidArgumentError(
            f"budget={budget!r} limits dollars, but the model {model!r} has no price; give it one: "
            f"tw.Budget(..., prices=tw.Prices({{{model!r}: (input, output)}})) in USD per million tokens, "
            "or a file in $THREADWIDGET_PRICES."
        )


class Limits:
    """The budgets of one answer (``thread_id``, answering ``user_id``'s prompt)."""

    def __init__(self, agent: Agent, store: Store, thread_id: str, user_id: str | None):
        self.budgets = [b for b in (agent.budget, getattr(store, "budget", None)) if b is not None]
        self.agent, self.store, self.thread_id, self.user_id = agent.name, store, thread_id, user_id
        self.model = agent.model.name
        self._spent: list[tuple[Budget, dict[str, Cost]]] = []
        self._read_at = 0.0
        #: each budget's price of the model, looked up once; None: no price, or the budget has no dollars
        self._price = [self._prices(b).get(self.model) if b.needs_prices else None for b in self.budgets]
        #: the scope ("answer", "thread", "user", "agent") and reason of the last limit ``check`` found
        self.stopped: tuple[str, str] | None = None

    def __bool__(self) -> bool:
        return bool(self.budgets)

    def _prices(self, budget: Budget) -> Prices:
        return budget.prices or default_prices()

    def refresh(self) -> None:
        """Read what each scope spent so far from the store."""
        spent = []
        today = day_start()
        for budget in self.budgets:
            prices, got = self._prices(budget), {}
            if budget.per_thread_tokens is not None or budget.per_thread_usd is not None:
                got["thread"] = self.store.cost(thread_id=self.thread_id, prices=prices)
            if budget.per_user_usd_per_day is not None and self.user_id is not None:
                got["user"] = self.store.cost(user_id=self.user_id, since=today, prices=prices)
            if budget.per_agent_usd_per_day is not None:
                got["agent"] = self.store.cost(agent=self.agent, since=today, prices=prices)
            spent.append((budget, got))
        self._spent, self._read_at = spent, time.monotonic()

    def check(self, answer: Usage, step: Usage) -> str | None:
        """Why the answer must stop (a limit reached), or None. ``answer``: the usage of the
        answer's finished steps (already in the store); ``step``: the running step's so far."""
        if time.monotonic() - self._read_at >= REFRESH_SECONDS:
            self.refresh()
        found = self._check(answer, step)
        if found is None:
            return None
        self.stopped = found
        return found[1]

    def _check(self, answer: Usage, step: Usage) -> tuple[str, str] | None:
        for (budget, spent), price in zip(self._spent, self._price, strict=True):
            now = price.cost(step) if price is not None else None
            tokens = (
                ("per_answer", budget.per_answer_tokens, answer.total_tokens),
                (
                    "per_thread",
                    budget.per_thread_tokens,
                    spent["thread"].usage.total_tokens if "thread" in spent else 0,
                ),
            )
            for scope, limit, before in tokens:
                if limit is not None and (used := before + step.total_tokens) >= limit:
                    return scope[4:], f"budget {scope} {limit:,} tokens reached: {used:,} tokens"
            dollars = (
                ("per_thread", budget.per_thread_usd, "thread", ""),
                (f"per_user {self.user_id}", budget.per_user_usd_per_day, "user", " a day"),
                (f"per_agent {self.agent}", budget.per_agent_usd_per_day, "agent", " a day"),
            )
            for scope, usd, key, span in dollars:
                if usd is None or key not in spent:
                    continue
                if now is None:
                    return key, (
                        f"budget {scope} {money(usd)}{span} cannot be checked: the model {self.model!r} has "
                        f"no price; add it with tw.Prices({{{self.model!r}: (input, output)}})"
                    )
                dollars_spent = (spent[key].usd or Decimal(0)) + now
                if dollars_spent >= usd:
                    today = " today (UTC)" if span else ""
                    return key, f"budget {scope} {money(usd)}{span} reached: {money(dollars_spent)}{today}"
        return None


def refusal(agent: Agent, store: Store, thread_id: str, user_id: str | None) -> str | None:
    """Why a new prompt in ``thread_id`` answered by ``agent`` would be refused now (a thread, user
    or agent budget reached: the reason an answer would end with), or None. ``user_id``: the
    thread's, else who would ask."""
    limits = Limits(agent, store, thread_id, user_id)
    if not limits:
        return None
    limits.refresh()
    return limits.check(Usage(), Usage())
