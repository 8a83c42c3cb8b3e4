"""What answers cost: ``store.cost(...)`` and ``store.costs(by=...)`` (a part of ``Store``).

Both read the usage every step recorded (aborted and failed ones included), grouped per model in
SQL, and price each model's tokens in Python with ``Prices`` (exact ``Decimal`` dollars). A step
whose usage was estimated (``metadata.usage_estimated``) marks every sum it enters. A step's user
is its thread's ``user_id`` (whose thread it is), else its prompt's (who asked); its day is the UTC day it was created.

``budget_stop(thread_id)`` reads what the store recorded of budgets: the answer a budget stopped
(its last step's ``metadata.budget_scope``) that still stands for a thread, for views that do not
run the agent and so do not know its limits.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, Literal

from .._errors import InvalidArgumentError
from .._prices import ENV_PRICES, Cost, Prices
from .._usage import Usage
from ._part import StorePart
from ._rows import Message

__all__ = ["BY", "Spending", "day_start", "parse_since"]

By = Literal["day", "agent", "model", "thread", "user"]
BY: tuple[str, ...] = ("day", "agent", "model", "thread", "user")
_USER = (
    "COALESCE((SELECT t.user_id FROM threads t WHERE t.id = messages.thread_id), "
    "(SELECT p.user_id FROM messages p WHERE p.id = messages.reply_to))"
)
_KEYS = {
    "day": "CAST(created_at AS BIGINT) / 86400",
    "agent": "agent",
    "model": "model",
    "thread": "thread_id",
    "user": _USER,
}
_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_prices: dict[str | None, Prices] = {}


def default_prices() -> Prices:
    """The defaults and ``$THREADWIDGET_PRICES``, read once per value of the variable."""
    name = os.environ.get(ENV_PRICES)
    if name not in _prices:
        _prices[name] = Prices()
    return _prices[name]


def day_start(now: float | None = None) -> float:
    """The start of the current UTC day, in unix seconds."""
    now = time.time() if now is None else now
    return float(int(now) // 86400 * 86400)


def parse_since(since: object) -> float | None:
    """``since=`` as unix seconds: ``"7d"``, ``"24h"``, ``"30m"``, ``"2w"`` (that long ago),
    ``"today"`` (the UTC day), an ISO date or time (UTC unless it says), a ``datetime``, or unix
    seconds; None: no bound."""
    if since is None:
        return None
    if isinstance(since, bool):
        pass
    elif isinstance(since, int | float):
        return float(since)
    elif isinstance(since, datetime):
        return (since if since.tzinfo else since.replace(tzinfo=UTC)).timestamp()
    elif isinstance(since, date):
        return datetime(since.year, since.month, since.day, tzinfo=UTC).timestamp()
    elif isinstance(since, str):
        if since.strip() == "today":
            return day_start()
        match = _SPAN.match(since)
        if match:
            return time.time() - float(match.group(1)) * _UNITS[match.group(2)]
        try:
            return parse_since(datetime.fromisoformat(since.strip()))
        except ValueError:
            pass
    raise InvalidArgumentError(
        f"since={since!r} is not valid; expected a span such as '7d', '24h', '30m', 'today', "
        "an ISO date such as '2026-01-31', a datetime, or unix seconds."
    )


def day_label(day: int) -> str:
    return datetime.fromtimestamp(day * 86400, tz=UTC).date().isoformat()


class Spending(StorePart):
    """Usage and what it cost, summed and grouped."""

    def _spend_rows(
        self, key: str | None, *, thread_id: str | None, agent: str | None, user_id: str | None,
        model: str | None, since: object, reply_to: str | None = None, through_turn: int | None = None,
    ) -> list[tuple[Any, str | None, int, int, int, int]]:  # fmt: skip
        head = f"{_KEYS[key]}, " if key else ""
        sql = (
            f"SELECT {head}model, COALESCE(SUM(json_extract(usage, '$.input_tokens')), 0), "
            "COALESCE(SUM(json_extract(usage, '$.output_tokens')), 0), "
            "COALESCE(SUM(json_extract(usage, '$.cached_input_tokens')), 0), "
            "MAX(CASE WHEN metadata LIKE ? THEN 1 ELSE 0 END) FROM messages WHERE usage IS NOT NULL"
        )
        args: list[Any] = ['%"usage_estimated": true%']
        for column, value in (("thread_id", thread_id), ("agent", agent), ("model", model), ("reply_to", reply_to)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        if user_id is not None:
            sql += f" AND {_USER} = ?"
            args.append(user_id)
        if through_turn is not None:
            sql += " AND turn <= ?"
            args.append(through_turn)
        bound = parse_since(since)
        if bound is not None:
            sql += " AND created_at >= ?"
            args.append(bound)
        sql += f" GROUP BY {head}model"
        rows = self._conn().execute(sql, args).fetchall()
        if not key:
            return [(None, *row) for row in rows]
        return [tuple(row) for row in rows]

    def cost(
        self, *, thread_id: str | None = None, agent: str | None = None, user_id: str | None = None,
        model: str | None = None, since: object = None, prices: Prices | None = None,
    ) -> Cost:  # fmt: skip
        """What the answers of a thread, an agent, a user, a model (or the whole store) cost since
        ``since`` (e.g. ``"7d"``): tokens as ``store.usage(...)`` sums them, dollars for models with
        a price (``prices``, else the defaults and ``$THREADWIDGET_PRICES``), the tokens of models
        without one apart, ``estimated`` if any usage was."""
        prices = prices if prices is not None else default_prices()
        rows = self._spend_rows(None, thread_id=thread_id, agent=agent, user_id=user_id, model=model, since=since)
        return sum((_cost(row, prices) for row in rows), Cost())

    def answer_cost(self, prompt_id: str, *, prices: Prices | None = None) -> tuple[Cost, Cost]:
        """What the answer to the prompt ``prompt_id`` cost (all its steps), and what its thread
        cost through that answer (every answer up to it, in thread order)."""
        prices = prices if prices is not None else default_prices()
        prompt = self.get_message(prompt_id)
        answer = self._spend_rows(None, thread_id=prompt.thread_id, agent=None, user_id=None, model=None,
                                  since=None, reply_to=prompt_id)  # fmt: skip
        thread = self._spend_rows(None, thread_id=prompt.thread_id, agent=None, user_id=None, model=None,
                                  since=None, through_turn=prompt.turn)  # fmt: skip
        return (sum((_cost(r, prices) for r in answer), Cost()), sum((_cost(r, prices) for r in thread), Cost()))

    def budget_stop(self, thread_id: str, *, user_id: str | None = None) -> Message | None:
        """The last step of the answer a budget stopped that still stands for ``thread_id``, or
        None. It stands while nothing went through after it in its scope: the thread's latest
        answer, stopped by a thread budget; the latest answer today (UTC) of the thread's user
        (``user_id`` when the thread has none), stopped by a per-user budget; the latest answer
        today of the thread's agent, stopped by a per-agent budget. A raised limit shows here only
        once an answer goes through; the process running the agent knows its limits at once."""
        thread = self.get_thread(thread_id)
        conn, today = self._conn(), day_start()
        scopes: list[tuple[str, str, list[Any]]] = [("thread", "thread_id = ?", [thread_id])]
        user = thread.user_id or user_id
        if user is not None:
            scopes.append(("user", f"updated_at >= ? AND {_USER} = ?", [today, user]))
        if thread.agent is not None:
            scopes.append(("agent", "updated_at >= ? AND agent = ?", [today, thread.agent]))
        for scope, where, args in scopes:
            row = conn.execute(_LAST_END.format(where), args).fetchone()
            if row is not None and _scope(row[1]) == scope:
                return self.get_message(row[0])
        return None

    def costs(
        self, by: By = "agent", *, thread_id: str | None = None, agent: str | None = None,
        user_id: str | None = None, model: str | None = None, since: object = None,
        prices: Prices | None = None,
    ) -> dict[str | None, Cost]:  # fmt: skip
        """``cost(...)`` per day (``"2026-01-31"``, UTC, oldest first), agent, model, thread or user
        (most dollars first, then most tokens). ``None`` gathers steps without one (a person's
        reply has no agent; a thread may have no user)."""
        if by not in BY:
            raise InvalidArgumentError(f"by={by!r} is not valid; expected one of {', '.join(map(repr, BY))}.")
        prices = prices if prices is not None else default_prices()
        rows = self._spend_rows(by, thread_id=thread_id, agent=agent, user_id=user_id, model=model, since=since)
        groups: dict[Any, Cost] = {}
        for row in rows:
            groups[row[0]] = groups.get(row[0], Cost()) + _cost(row, prices)
        if by == "day":
            return {day_label(int(k)): groups[k] for k in sorted(groups)}
        return dict(sorted(groups.items(), key=_rank))


_LAST_END = (
    "SELECT id, metadata FROM messages WHERE ends_answer = 1 AND role = 'assistant' AND {} "
    "ORDER BY updated_at DESC, id DESC LIMIT 1"
)


def _scope(metadata: str | None) -> str | None:
    try:
        value = json.loads(metadata) if metadata else None
    except ValueError:
        return None
    return value.get("budget_scope") if isinstance(value, dict) else None


def _rank(item: tuple[Any, Cost]) -> tuple[Any, ...]:
    key, cost = item
    return (-(cost.usd or 0), -cost.usage.total_tokens, key is None, str(key))


def _cost(row: tuple[Any, str | None, int, int, int, int], prices: Prices) -> Cost:
    _, model, i, o, cached, estimated = row
    return Cost.of(Usage(int(i), int(o), int(cached)), model, prices, estimated=bool(estimated))


def costs_dict(costs: Mapping[str | None, Cost], by: str) -> list[dict[str, Any]]:
    return [{by: key, **cost.to_dict()} for key, cost in costs.items()]
