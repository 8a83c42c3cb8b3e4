"""What every threadwidget widget shares: the bundle check, the lock, trait writes, custom messages.

Threading model: a widget's traits and the state of its controllers change only with the widget's
``_lock`` held. The store's watcher thread (subscription callbacks), the ticker thread (coalesced
flushes), the kernel's shell thread (messages from the browser) and the user's thread all take it.
Controllers (``_chat``, ``_tools``, ``_threadlist``) hold the logic; they write traits and send
custom messages only through their ``Host`` (the widget).
"""

from __future__ import annotations

import base64
import gzip
import logging
import reprlib
import threading
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import anywidget

from .._errors import InvalidArgumentError, MissingBundleError, ThreadwidgetError
from .._people import current_user
from ..store import Store, Subscription, default_path
from . import _wire as wire

if TYPE_CHECKING:
    from ..agent import Agent, AgentThread

__all__ = [
    "HIGHLIGHTER", "STATIC", "Host", "SubscriptionSlot", "ThreadFollower", "TwWidget",
    "check_count", "packed_highlighter", "resolve_store", "resolve_thread", "weak_callback",
]  # fmt: skip

log = logging.getLogger("threadwidget.widgets")
T = TypeVar("T")

STATIC = Path(__file__).resolve().parent.parent / "static"
#: the code highlighter (js/src/highlight.ts): in no view's bundle; sent when a view asks for it
HIGHLIGHTER = STATIC / "highlight.js"
_packed: tuple[tuple[int, int], str] | None = None  # ((mtime_ns, size), packed module) of HIGHLIGHTER


def packed_highlighter() -> str | None:
    """The highlighter module packed as the views unpack it (base64 of its gzip), or None if it
    was not built. Packed once per version of the file."""
    global _packed
    try:
        stat = HIGHLIGHTER.stat()
        version = (stat.st_mtime_ns, stat.st_size)
        if _packed is None or _packed[0] != version:
            data = gzip.compress(HIGHLIGHTER.read_bytes(), compresslevel=9, mtime=0)
            _packed = (version, base64.b64encode(data).decode("ascii"))
    except OSError:
        return None
    return _packed[1]


def resolve_user(user: str | None) -> str:
    """The person using a view: ``user``, else ``$JUPYTERHUB_USER``, else the login name."""
    if user is None:
        return current_user()
    if not isinstance(user, str) or not user.strip():
        raise InvalidArgumentError(f"user={user!r} is not valid; expected a person's name (a non-empty str) or None.")
    return user


def decide(store: Store, user: str, msg: wire.DecideMsg) -> str | None:
    """A person's Approve / Deny from a view, recorded as ``user``'s; what went wrong (shown in
    the view), or None."""
    note = msg["note"].strip() or None
    try:
        if msg["decision"] == "approved":
            store.approve_tool_call(msg["tool_call_id"], by=user, note=note)
        else:
            store.deny_tool_call(msg["tool_call_id"], by=user, reason=note)
    except ThreadwidgetError as exc:
        return f"Not {msg['decision']}: {exc}"
    return None


class Host(Protocol):
    """What a controller needs from its widget."""

    _lock: threading.RLock

    def set_traits(self, values: Mapping[str, Any]) -> None: ...

    def send_custom(self, content: wire.InboundMsg) -> None: ...

    def send_state(self, key: Any = None) -> None: ...


class TwWidget(anywidget.AnyWidget):
    """Base of the threadwidget widgets. Subclasses set ``_esm``/``_css`` to ``Path``s in ``static/``
    (anywidget watches them when ``ANYWIDGET_HMR=1``) and implement ``_controllers``/``_handle``."""

    _tw_missing: ClassVar[tuple[Path, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # anywidget reads the bundle when the class is created; a missing one must not break
        # `import threadwidget.widgets`, only the construction of the widget (with the fix).
        missing = []
        for key in ("_esm", "_css"):
            value = cls.__dict__.get(key)
            if isinstance(value, Path) and not value.is_file():
                missing.append(value)
                delattr(cls, key)
        cls._tw_missing = tuple(missing)
        super().__init_subclass__(**kwargs)

    def __init__(self, **traits: Any) -> None:
        self._tw_prepare()
        super().__init__(**traits)
        self.on_msg(self._on_custom_msg)

    def _tw_prepare(self) -> None:
        """Check the bundle and make the lock; subclasses call this first, before their controllers."""
        if getattr(self, "_tw_ready", False):
            return
        if self._tw_missing:
            names = ", ".join(str(p) for p in self._tw_missing)
            raise MissingBundleError(
                f"the browser bundle of {type(self).__name__} is missing ({names}). Build it with "
                "`npm install && npm run build` in the repository's js/ folder, or reinstall threadwidget."
            )
        self._lock = threading.RLock()
        self._tw_closed = False
        self._tw_ready = True

    # -- Host -----------------------------------------------------------------------------------

    def set_traits(self, values: Mapping[str, Any]) -> None:
        """Set traits in one update message (only those that changed are sent). Hold ``_lock``."""
        if self._tw_closed or not values:
            return
        with self.hold_sync():
            for name, value in values.items():
                setattr(self, name, value)

    def send_custom(self, content: wire.InboundMsg) -> None:
        """Send a custom message to the views. Hold ``_lock``."""
        if not self._tw_closed:
            self.send(content)

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The live widget, its text repr, and a static HTML transcript (``_transcript.py``) for
        where no kernel runs the widget: JupyterLab with a kernel ranks the widget first; nbconvert,
        GitHub, nbviewer and an unrun, untrusted notebook show the transcript."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        try:
            page = self._transcript_html()
        except Exception:  # a closed store, say: the live widget and the text repr still go out
            log.debug("threadwidget: no transcript for %s", type(self).__name__, exc_info=True)
            page = None
        if page is not None:
            data["text/html"] = page
        return data, metadata

    def _transcript_html(self) -> str | None:
        """The static HTML transcript of what the widget shows (None: none)."""
        return None

    def get_state(self, key: Any = None, drop_defaults: bool = False) -> dict[str, Any]:
        """The state to send: ``key=None`` is a whole-state request (a new comm, a page reload);
        otherwise an update of the named traits, which ``_wire_state`` may trim."""
        state: dict[str, Any] = super().get_state(key=key, drop_defaults=drop_defaults)
        self._wire_state(state, full=key is None)
        return state

    def _wire_state(self, state: dict[str, Any], *, full: bool) -> None:
        """Adjust what goes over the wire (see ``ChatController.wire_state``)."""

    # -- browser → Python -------------------------------------------------------------------------

    def _on_custom_msg(self, _widget: object, content: object, _buffers: object) -> None:
        msg = wire.parse_outbound(content)
        if msg is None:
            log.warning("threadwidget: ignoring a browser message protocol.ts does not know: %s", reprlib.repr(content))
            return
        try:
            if msg["kind"] == "highlighter":
                self._send_highlighter()
            else:
                self._handle(msg)
        except Exception:  # never raise into the kernel's message loop
            log.exception("threadwidget: handling %r from the browser failed", msg["kind"])

    def _send_highlighter(self) -> None:
        """A view shows code and its page has no highlighter yet (the page asks once)."""
        source = packed_highlighter()
        if source is None:
            log.warning("threadwidget: a view asked for the code highlighter, but %s is missing", HIGHLIGHTER)
            return
        with self._lock:
            self.send_custom({"kind": "highlighter", "source": source})

    def _handle(self, content: wire.OutboundMsg) -> None:
        log.warning("threadwidget: %s ignores the message %r", type(self).__name__, content["kind"])

    # -- lifetime ---------------------------------------------------------------------------------

    def _controllers(self) -> list[Any]:
        return []

    def close(self) -> None:
        """Stop following the store and close the widget (its views disappear)."""
        lock = getattr(self, "_lock", None)
        if lock is not None:
            with lock:
                if not self._tw_closed:
                    self._tw_closed = True
                    for controller in self._controllers():
                        controller.close()
        super().close()
        self._release_file_watchers()

    def _release_file_watchers(self) -> None:
        """anywidget connects, per widget, a function holding the widget to the class's bundle file
        watchers (hot reload). Disconnect this widget's, so that a closed widget can be collected."""
        for key in ("_esm", "_css"):
            # the class anywidget made the file watcher for (add_traits puts subclasses below it)
            owner = next((k.__dict__[key] for k in type(self).__mro__ if hasattr(k.__dict__.get(key), "changed")), None)
            signal = getattr(owner, "changed", None)
            try:
                for slot in list(getattr(signal, "_slots", ())):
                    fn = slot.dereference()
                    cells = getattr(fn, "__closure__", None) or ()
                    if any(getattr(cell, "cell_contents", None) is self for cell in cells):
                        signal.disconnect(fn)  # type: ignore[union-attr]
            except Exception:  # a different psygnal: keep the widget rather than fail close()
                log.debug("threadwidget: could not release the bundle watcher of %s", key, exc_info=True)

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return bool(getattr(self, "_tw_closed", True))


class SubscriptionSlot:
    """Holds a controller's current store subscription; closes it when replaced, closed, or when the
    controller is garbage collected (the slot never refers back to the controller)."""

    def __init__(self, owner: object) -> None:
        self._sub: Subscription | None = None
        weakref.finalize(owner, self.close)

    def set(self, sub: Subscription | None) -> None:
        old, self._sub = self._sub, sub
        if old is not None:
            old.close()

    def close(self) -> None:
        self.set(None)

    @property
    def current(self) -> Subscription | None:
        return self._sub


class ThreadFollower:
    """What the controllers that follow one thread share: the subscription from the seq their
    snapshot was read at (so nothing between reading and subscribing is missed), their throttles,
    and closing. Subclasses set ``store`` and ``thread_id`` and implement ``_on_event``."""

    store: Store
    thread_id: str | None

    def __init__(self) -> None:
        self._slot = SubscriptionSlot(self)
        self._since = 0
        self._closed = False

    def _throttles(self) -> list[Any]:
        return []

    def _restart(self) -> None:
        """Before reading a new snapshot: drop the subscription and pending flushes. Hold the lock."""
        self._slot.close()
        for throttle in self._throttles():
            throttle.cancel()
        self._since = self.store.last_seq()  # changes after this are replayed to the subscription

    def start(self) -> None:
        """Subscribe to the thread, from the snapshot's seq on."""
        if self.thread_id is not None and not self._closed:
            sub = self.store.subscribe(weak_callback(self._on_event), thread_id=self.thread_id, since=self._since)
            self._slot.set(sub)

    def close(self) -> None:
        self._closed = True
        self._slot.close()
        for throttle in self._throttles():
            throttle.cancel()

    def _on_event(self, event: Any) -> None:
        raise NotImplementedError


def weak_callback(method: Callable[[T], object]) -> Callable[[T], None]:
    """A callback (e.g. for ``store.subscribe``) that does not keep ``method``'s object alive."""
    ref = weakref.WeakMethod(method)

    def call(arg: T) -> None:
        fn = ref()
        if fn is not None:
            fn(arg)

    return call


def check_count(name: str, value: object) -> int:
    """A positive int argument (``window``, ``limit``), or a clear error."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidArgumentError(f"{name}={value!r} is not valid; expected a positive int, e.g. {name}=50.")
    return value


def resolve_store(store: Store | None, agent: Agent | None) -> Store:
    """``store``, else the agent's store, else the default ``tw.Store()``."""
    if store is not None:
        if not isinstance(store, Store):
            raise InvalidArgumentError(f"store={store!r} is not a tw.Store; pass tw.Store('threads.db').")
        return store
    if agent is not None:
        return agent.store
    path = default_path()
    if not path.exists():  # a view of a thread id cannot show anything in a store that is not there
        raise InvalidArgumentError(
            f"no store given, and the default store {path} does not exist; pass store=tw.Store(path) "
            "(the store that holds the thread), or an AgentThread."
        )
    return Store()


def _is_agent_thread(value: object) -> bool:
    if isinstance(value, str):
        return False
    from ..agent import AgentThread

    return isinstance(value, AgentThread)


def resolve_thread(
    thread_or_id: AgentThread | str, store: Store | None, agent: Agent | None
) -> tuple[str, Store, Agent | None]:
    """(thread id, store, agent) from an ``AgentThread``, or from a thread id with a store/agent."""
    if _is_agent_thread(thread_or_id):
        thread: AgentThread = thread_or_id  # type: ignore[assignment]
        if store is not None and store is not thread.store:
            raise InvalidArgumentError(
                f"store={store!r} differs from the store of {thread!r}; leave store out when passing an AgentThread."
            )
        if agent is not None and agent is not thread.agent:
            raise InvalidArgumentError(
                f"agent={agent!r} differs from the agent of {thread!r}; leave agent out when passing an AgentThread."
            )
        return thread.id, thread.store, thread.agent
    if not isinstance(thread_or_id, str) or not thread_or_id:
        raise InvalidArgumentError(
            f"{thread_or_id!r} is not a thread; pass an AgentThread, or a thread id with store=tw.Store(...)."
        )
    if agent is not None:
        from ..agent import Agent

        if not isinstance(agent, Agent):
            raise InvalidArgumentError(f"agent={agent!r} is not a tw.Agent.")
        if store is not None and agent.store is not store and agent.store.path != store.path:
            raise InvalidArgumentError(
                f"agent {agent.name!r} writes to {agent.store.path}, not to {store.path}; give them the same store."
            )
    resolved = resolve_store(store, agent)
    resolved.get_thread(thread_or_id)  # NotFoundError names the id and the file
    return thread_or_id, resolved, agent
