"""``tw.ThreadList``: the store's threads, newest activity first; the view writes ``selected``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import traitlets as t

from .._errors import EmbeddingMismatchError, InvalidArgumentError, ModelError, SearchQueryError
from ..store import Event, SearchHit, Store
from . import _wire as wire
from ._base import STATIC, Host, SubscriptionSlot, TwWidget, check_count, resolve_store, weak_callback
from ._shapes import one_line, thread_info
from ._ticker import RATE, Throttle
from ._transcript import thread_list_body, wrap

if TYPE_CHECKING:
    from ..agent import Agent

__all__ = ["ListController", "ThreadList", "ThreadListTraits"]

LIST_INTERVAL = 0.25  # seconds between reloads of the list
LIST_GATHER = 0.02  # reloads run on the ticker thread, never on the store's watcher
SEARCH_HITS = 20  # messages a search box shows


class ThreadListTraits(t.HasTraits):
    """The synced traits of a thread list (``ThreadListTraits`` in js/src/protocol.ts)."""

    threads: t.List[wire.ThreadInfo] = t.List().tag(sync=True)
    selected = t.Unicode(None, allow_none=True).tag(sync=True)
    query = t.Unicode("").tag(sync=True)
    hits: t.List[wire.SearchHitInfo] = t.List().tag(sync=True)
    search_error = t.Unicode("").tag(sync=True)


def hit_info(hit: SearchHit) -> wire.SearchHitInfo:
    """A ``SearchHitInfo`` of protocol.ts: the snippet as plain-text parts."""
    return {
        "thread_id": hit.thread.id,
        "thread_title": hit.thread.title,
        "message_id": hit.message.id,
        "role": hit.message.role,
        "created_at": hit.message.created_at,
        "parts": [{"text": text, "mark": marked} for text, marked in hit.parts()],
    }


class ListController:
    """Keeps ``threads`` in step with the store: reloaded (throttled) when a thread or message
    changes; and, while the view's search box holds a query, the messages it finds (``hits``)."""

    def __init__(self, host: Host, store: Store, *, user_id: str | None, agent: str | None, limit: int) -> None:
        self._host = host
        self._lock = host._lock
        self.store = store
        self.user_id = user_id
        self.agent = agent
        self.limit = limit
        self._threads: list[wire.ThreadInfo] = []
        self.query = ""
        self._slot = SubscriptionSlot(self)
        self._reload = Throttle(self._lock, self._send, interval=LIST_INTERVAL, gather=LIST_GATHER)
        self._closed = False

    def load(self) -> list[wire.ThreadInfo]:
        threads = self.store.list_threads(user_id=self.user_id, agent=self.agent, limit=self.limit)
        self._threads = [thread_info(th, self.store.list_messages(th.id, limit=2)) for th in threads]
        return self._threads

    def search(self) -> dict[str, Any]:
        """``hits`` and ``search_error`` for the query, within the list's user and agent: by words
        and meaning when the store has an embedder, else by words."""
        if not self.query.strip():
            return {"hits": [], "search_error": ""}
        mode = "hybrid" if self.store.embedder is not None else "text"
        try:
            found = self.store.search(self.query, user_id=self.user_id, agent=self.agent, limit=SEARCH_HITS, mode=mode)
        except (SearchQueryError, EmbeddingMismatchError, ModelError) as exc:
            return {"hits": [], "search_error": str(exc)}
        return {"hits": [hit_info(h) for h in found], "search_error": ""}

    def set_query(self, query: str) -> None:
        """The view's search box changed (any thread): search at once."""
        with self._lock:
            if self._closed or query == self.query:
                return
            self.query = query
            self._host.set_traits(self.search())

    def start(self) -> None:
        if not self._closed:
            self._slot.set(self.store.subscribe(weak_callback(self._on_event)))

    def close(self) -> None:
        self._closed = True
        self._slot.close()
        self._reload.cancel()

    def _on_event(self, event: Event) -> None:
        if event.kind not in ("thread", "message", "resync"):
            return  # deltas, tool calls, runs: the list does not show them
        with self._lock:
            if not self._closed:
                self._reload.mark()

    def _send(self) -> None:
        RATE.take()
        self._host.set_traits({"threads": self.load(), **(self.search() if self.query else {})})

    def transcript(self, selected: str | None) -> str:
        """The threads held as a static transcript's body (``thread_list_body``)."""
        with self._lock:
            threads = list(self._threads)
        return thread_list_body(threads, selected)

    def summary(self) -> list[str]:
        with self._lock:
            threads = list(self._threads)
        return [one_line(f"{th['id']}  {th['title'] or 'Untitled'}: {th['preview'] or ''}", 100) for th in threads[:5]]


def agent_name(agent: Agent | str | None) -> str | None:
    if agent is None or isinstance(agent, str):
        return agent
    name = getattr(agent, "name", None)
    if not isinstance(name, str):
        raise InvalidArgumentError(f"agent={agent!r} is not valid; pass a tw.Agent or an agent's name.")
    return name


class ThreadList(ThreadListTraits, TwWidget):
    """The threads of a store, newest activity first, with the last message as a preview; only
    ``user_id``'s threads, or the ``agent``'s, when given. Picking one in the view sets ``selected``
    (observe it with ``thread_list.observe(callback, "selected")``). The view's search box sets
    ``query`` (also settable here) and shows the messages it finds across those threads (``hits``,
    kept up to date); picking one selects its thread."""

    _esm = STATIC / "threadlist.js"
    _css = STATIC / "widget.css"

    def __init__(
        self,
        store: Store | None = None,
        user_id: str | None = None,
        agent: Agent | str | None = None,
        *,
        limit: int = 50,
    ) -> None:
        self._tw_prepare()
        name = agent_name(agent)
        store = resolve_store(store, None if isinstance(agent, str) else agent)
        self._list = ListController(self, store, user_id=user_id, agent=name, limit=check_count("limit", limit))
        with self._lock:
            threads = self._list.load()
        super().__init__(threads=threads)
        self.observe(lambda change: self._list.set_query(change["new"]), "query")
        with self._lock:
            self._list.start()

    def _controllers(self) -> list[Any]:
        return [c for c in (getattr(self, "_list", None),) if c is not None]

    @property
    def store(self) -> Store:
        return self._list.store

    def _transcript_html(self) -> str:
        return wrap("threads", self._list.transcript(self.selected))

    def __repr__(self) -> str:
        closed = ", closed" if self.closed else ""
        path = str(self._list.store.path)
        n = len(self.threads)
        head = f"ThreadList({path!r}, {n} thread{'' if n == 1 else 's'}, selected {self.selected}{closed})"
        return "\n".join([head, *("  " + x for x in self._list.summary())])
