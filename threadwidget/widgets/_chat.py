"""``tw.ChatView``: one thread's messages with the answer streaming in, and a box to send a prompt."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import traitlets as t

from .._errors import InvalidArgumentError
from ..store import Store
from . import _wire as wire
from ._base import STATIC, TwWidget, check_count, resolve_thread, resolve_user
from ._chatlogic import ChatController
from ._transcript import MESSAGES, wrap

if TYPE_CHECKING:
    from ..agent import Agent, AgentThread

__all__ = ["ChatTraits", "ChatView", "ChatWiring", "ThreadTraits"]


class ThreadTraits(t.HasTraits):
    thread_id = t.Unicode("").tag(sync=True)


class ChatTraits(ThreadTraits):
    """The synced traits of a chat (``ChatTraits`` of _wire.py and js/src/protocol.ts)."""

    title = t.Unicode("").tag(sync=True)
    messages: t.List[wire.Message] = t.List().tag(sync=True)
    stream = t.Dict(None, allow_none=True).tag(sync=True)
    status = t.Dict({"state": "idle", "note": ""}).tag(sync=True)
    has_older = t.Bool(False).tag(sync=True)
    agent_attached = t.Bool(False).tag(sync=True)
    error = t.Unicode("").tag(sync=True)
    user = t.Unicode("").tag(sync=True)  # the person using the view
    present: t.List[wire.PresentUser] = t.List().tag(sync=True)  # the others who have the thread open
    read_only = t.Unicode("").tag(sync=True)  # why this kernel cannot write the store ("" if it can)
    connection = t.Unicode("").tag(sync=True)  # why the view is not live ("" when it is): the server is away
    path = t.Unicode("").tag(sync=True)  # changes with the thread's current path: views show `messages` afresh
    #: a message of the thread shown highlighted and scrolled to (a search hit; "": none); the view
    #: loads older pages until it shows it. ``show_message(id)`` checks the id first.
    highlighted = t.Unicode("").tag(sync=True)
    #: why new prompts in the thread are refused now, a budget reached ("" when they are not)
    budget = t.Unicode("").tag(sync=True)


class ChatWiring:
    """The chat's wiring shared by ``ChatView`` and ``ThreadApp``: browser messages, the trimmed
    ``messages`` updates and view counting go to ``self._chat`` (a ``ChatController``)."""

    _chat: ChatController

    def _handle(self, content: wire.OutboundMsg) -> None:
        self._chat.handle(content)

    def _wire_state(self, state: dict[str, Any], *, full: bool) -> None:
        self._chat.wire_state(state, full=full)

    def _on_view_count(self, change: dict[str, Any]) -> None:
        self._chat.on_view_count(change["old"], change["new"])

    def show_message(self, message_id: str) -> None:
        """Show the message ``message_id`` highlighted and scroll to it, e.g. a search hit's
        (``hit.message.id``); the view loads older messages until it shows it."""
        message = self._chat.store.get_message(message_id)  # NotFoundError names the id
        if message.thread_id != self._chat.thread_id:
            raise InvalidArgumentError(
                f"message {message_id!r} is in thread {message.thread_id!r}, not in the thread this view shows "
                f"({self._chat.thread_id!r}); open that thread first (ThreadApp.show_message does both)."
            )
        self.highlighted = message_id


class ChatView(ChatWiring, ChatTraits, TwWidget):
    """A live view of one thread: its last ``window`` messages, the answer streaming in, and an input
    box. ``ChatView(agent_thread)``, or ``ChatView(thread_id, store=store, agent=agent)``.

    Prompts typed in the view go to the thread's queue (``store.ask``) and are answered one at a
    time, in order. With an agent, the view serves its thread while it is open, so this process
    answers them; without one they wait for a process running ``agent.serve()``. The view follows
    the store, so answers written by any process appear as they stream.

    ``user`` is the person using the view (default: ``$JUPYTERHUB_USER``, else the login name): their
    prompts and decisions (the Approve / Deny buttons of a tool call that waits) are recorded as
    theirs, their messages are labelled "You", and everyone else's by name.
    """

    _esm = STATIC / "chat.js"
    _css = STATIC / "widget.css"
    #: messages of the window in the static HTML transcript of the display bundle
    transcript_messages: int = MESSAGES

    def __init__(
        self,
        thread_or_id: AgentThread | str,
        store: Store | None = None,
        agent: Agent | None = None,
        *,
        window: int = 50,
        user: str | None = None,
    ) -> None:
        self._tw_prepare()
        thread_id, store, agent = resolve_thread(thread_or_id, store, agent)
        self._chat = ChatController(
            self, store, window=check_count("window", window), agent=agent, user=resolve_user(user)
        )
        with self._lock:
            values = self._chat.open(thread_id)
        super().__init__(_view_count=0, **values)  # 0: views report themselves (see on_view_count)
        self.observe(self._on_view_count, "_view_count")
        with self._lock:
            self._chat.start()

    def _controllers(self) -> list[Any]:
        return [c for c in (getattr(self, "_chat", None),) if c is not None]

    @property
    def store(self) -> Store:
        return self._chat.store

    def send_prompt(self, text: str) -> None:
        """Send a prompt as if typed into the view: it joins the thread's queue, answered by the
        view's agent in this process or by a process running ``agent.serve()``. Problems show in
        the view."""
        self._chat.send(text)

    def abort(self) -> None:
        """Stop the thread's answer, in whichever process is writing it (the view's Stop button)."""
        self._chat.abort()

    def _transcript_html(self) -> str:
        return wrap("chat", self._chat.transcript(self.transcript_messages))

    def __repr__(self) -> str:
        head, lines = self._chat.summary()
        closed = ", closed" if self.closed else ""
        return "\n".join([f"ChatView(thread {self.thread_id}, {head}{closed})", *("  " + x for x in lines)])
