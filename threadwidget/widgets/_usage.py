"""``tw.UsagePanel``: tokens and dollars per day, agent, model, thread or user, as stacked bars and a
table, kept up to date as answers end in any process; and ``answer_cost``, the cost a chat shows
beside each answer."""

from __future__ import annotations

from typing import Any, get_args

import traitlets as t

from .._errors import InvalidArgumentError
from .._prices import Cost, Prices
from ..store import Event, Message, Store
from ..store._spend import default_prices, parse_since
from . import _wire as wire
from ._base import STATIC, SubscriptionSlot, TwWidget, resolve_store, weak_callback
from ._ticker import RATE, Throttle

__all__ = ["UsagePanel", "answer_cost"]

RELOAD_INTERVAL = 0.5  # seconds between reloads while answers end
RELOAD_GATHER = 0.05
_NONE = {"day": "-", "agent": "(no agent)", "model": "(no model)", "thread": "-", "user": "(no user)"}


def usage_row(group: str, part: str, cost: Cost) -> wire.UsageRow:
    return {
        "group": group,
        "part": part,
        "input_tokens": cost.usage.input_tokens,
        "cached_input_tokens": cost.usage.cached_input_tokens,
        "output_tokens": cost.usage.output_tokens,
        "usd": None if cost.usd is None else f"{cost.usd.normalize():f}",
        "cost": cost.text,
        "estimated": cost.estimated,
    }


def load_rows(store: Store, by: str, since: object, prices: Prices | None) -> dict[str, Any]:
    """The traits ``rows`` (per group, in ``store.costs`` order, its parts: models, or agents when
    ``by="model"``, most first), ``groups`` (each group's sum), ``total`` and ``part_by``."""
    part_by = "agent" if by == "model" else "model"
    bound = parse_since(since)
    groups = store.costs(by, since=bound, prices=prices)  # type: ignore[arg-type]
    rows: list[wire.UsageRow] = []
    parts = store.costs(part_by, since=bound, prices=prices)  # type: ignore[arg-type]
    per_part = {
        part: store.costs(by, since=bound, prices=prices, **{part_by: part})  # type: ignore[arg-type]
        for part in parts
        if part is not None
    }
    for group in groups:
        label = group if group is not None else _NONE[by]
        found = [(part, costs[group]) for part, costs in per_part.items() if group in costs]
        found.sort(key=lambda pc: (-(pc[1].usd or 0), -pc[1].usage.total_tokens))
        rows += [usage_row(label, str(part), cost) for part, cost in found]
    total = store.cost(since=bound, prices=prices)
    sums = [usage_row(g if g is not None else _NONE[by], "", cost) for g, cost in groups.items()]
    return {"rows": rows, "groups": sums, "total": usage_row("", "", total), "part_by": part_by}


def answer_cost(store: Store, step: Message) -> wire.AnswerCost | None:
    """The cost shown beside an answer's last step (``store.answer_cost``, priced with the defaults
    and ``$THREADWIDGET_PRICES``), or None: not an answer's end, or no tokens used."""
    if step.role != "assistant" or not step.ends_answer or step.reply_to is None or not step.is_final:
        return None
    answer, thread = store.answer_cost(step.reply_to)
    if not answer.usage.total_tokens:
        return None
    price = default_prices().get(step.model)
    used = f"priced at {price}" if price is not None else f"no price for the model {step.model or '(none)'}"
    detail = f"answer: {answer.usage.text}; thread: {thread.usage.text}; {used}" + (
        "; estimated: the provider reported no usage" if answer.estimated else ""
    )
    return {"answer": answer.text, "thread": thread.text, "detail": detail}


class UsagePanel(TwWidget):
    """Tokens and dollars of the store's answers (aborted and failed ones too) per ``by`` (``"day"``,
    ``"agent"``, ``"model"``, ``"thread"``, ``"user"``) since ``since`` (``"7d"``, ``"today"``, a
    date; None: all): a chart of stacked bars (one part per model, per agent when ``by="model"``),
    in tokens or dollars (``metric``, toggled in the view), and a table under it; clicking a bar
    shows only its rows (``selected``). It reloads as answers end, written by any process. Prices
    are ``prices``, else the defaults and ``$THREADWIDGET_PRICES``; "no price" marks models without one."""

    _esm = STATIC / "usage.js"
    _css = STATIC / "widget.css"

    by = t.Enum(get_args(wire.UsageBy), "day").tag(sync=True)
    part_by = t.Enum(("model", "agent"), "model").tag(sync=True)
    since = t.Unicode(None, allow_none=True).tag(sync=True)
    metric = t.Enum(get_args(wire.UsageMetric), "tokens").tag(sync=True)
    rows: t.List[wire.UsageRow] = t.List().tag(sync=True)
    groups: t.List[wire.UsageRow] = t.List().tag(sync=True)
    total = t.Dict().tag(sync=True)
    selected = t.Unicode(None, allow_none=True).tag(sync=True)

    def __init__(
        self,
        store: Store | None = None,
        by: str = "day",
        since: str | None = None,
        *,
        metric: str = "tokens",
        prices: Prices | None = None,
    ) -> None:
        self._tw_prepare()
        if by not in get_args(wire.UsageBy):
            raise InvalidArgumentError(
                f"by={by!r} is not valid; expected one of 'day', 'agent', 'model', 'thread', 'user'."
            )
        if metric not in get_args(wire.UsageMetric):
            raise InvalidArgumentError(f"metric={metric!r} is not valid; expected 'tokens' or 'usd'.")
        if since is not None and not isinstance(since, str):
            raise InvalidArgumentError(
                f"since={since!r} is not valid; expected a str such as '7d', 'today' or '2026-01-31'."
            )
        parse_since(since)  # a bad one fails here
        if prices is not None and not isinstance(prices, Prices):
            raise InvalidArgumentError(f"prices={prices!r} is not valid; expected tw.Prices({{...}}) or None.")
        self._store = resolve_store(store, None)
        self._prices = prices
        self._slot = SubscriptionSlot(self)
        self._reload = Throttle(self._lock, self._load, interval=RELOAD_INTERVAL, gather=RELOAD_GATHER)
        with self._lock:
            loaded = load_rows(self._store, by, since, prices)
        super().__init__(by=by, since=since, metric=metric, **loaded)
        self.observe(self._on_choice, ["by", "since"])
        with self._lock:
            self._slot.set(self._store.subscribe(weak_callback(self._on_event)))

    @property
    def store(self) -> Store:
        return self._store

    def _on_event(self, event: Event) -> None:
        row = event.row
        ended = event.kind == "message" and getattr(row, "usage", None) is not None
        if ended or event.kind in ("resync",) or (event.kind == "thread" and event.op == "delete"):
            with self._lock:
                if not self._tw_closed:
                    self._reload.mark()

    def _on_choice(self, _change: Any) -> None:
        with self._lock:
            self.selected = None
            self._load()

    def _load(self) -> None:
        RATE.take()
        self.set_traits(load_rows(self._store, self.by, self.since, self._prices))

    def close(self) -> None:
        lock = getattr(self, "_lock", None)
        if lock is not None and hasattr(self, "_reload"):  # made in full (not refused by a bad argument)
            with lock:
                self._slot.close()
                self._reload.cancel()
        super().close()

    def __repr__(self) -> str:
        closed = ", closed" if self.closed else ""
        since = f" since {self.since}" if self.since else ""
        total = self.total.get("cost", "")
        head = f"UsagePanel({str(self._store.path)!r}, by {self.by}{since}: {total}{closed})"
        lines = [f"  {g['group']}  {g['input_tokens'] + g['output_tokens']:,} tokens  {g['cost']}" for g in self.groups]
        return "\n".join([head, *lines[:8]])
