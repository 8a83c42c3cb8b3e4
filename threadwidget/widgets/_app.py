"""``tw.ThreadApp``: the thread list, the chat and the tool-call feed of the selected thread, in one widget."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._errors import NotFoundError
from ..store import Store
from ._base import STATIC, TwWidget, resolve_store, resolve_user
from ._chat import ChatTraits, ChatWiring
from ._chatlogic import ChatController
from ._shapes import one_line
from ._threadlist import ListController, ThreadListTraits, agent_name
from ._tools import ToolsController, ToolsTraits
from ._transcript import MESSAGES, wrap

if TYPE_CHECKING:
    from ..agent import Agent

__all__ = ["ThreadApp"]


class ThreadApp(ChatWiring, ChatTraits, ToolsTraits, ThreadListTraits, TwWidget):
    """A small chat app on a store: pick a thread on the left, chat in the middle, watch its tool
    calls on the right. With ``agent``, the list shows that agent's threads and prompts are answered
    here; a prompt sent with no thread selected starts a new one. ``user_id`` narrows the list, owns
    new threads and is the person using the app (default: ``$JUPYTERHUB_USER``, else the login
    name). Selecting a thread (in the view, or ``app.selected = thread_id``) switches
    the chat and the tool feed in one update."""

    _esm = STATIC / "app.js"
    _css = STATIC / "widget.css"
    #: messages of the selected thread in the static HTML transcript of the display bundle
    transcript_messages: int = MESSAGES

    def __init__(self, store: Store | None = None, agent: Agent | None = None, user_id: str | None = None) -> None:
        self._tw_prepare()
        store = resolve_store(store, agent)
        self._agent = agent
        self._user_id = user_id
        self._list = ListController(self, store, user_id=user_id, agent=agent_name(agent), limit=50)
        self._chat = ChatController(
            self,
            store,
            window=50,
            agent=agent,
            on_no_thread=self._new_thread,
            on_open=self._select,
            user=resolve_user(user_id),
        )
        self._tools = ToolsController(self, store, limit=50)
        with self._lock:
            threads = self._list.load()
            selected = threads[0]["id"] if threads else None
            values = {**self._chat.open(selected), **self._tools.open(selected)}
        super().__init__(threads=threads, selected=selected, _view_count=0, **values)
        self.observe(self._on_selected, "selected")
        self.observe(lambda change: self._list.set_query(change["new"]), "query")
        self.observe(self._on_view_count, "_view_count")
        with self._lock:
            for controller in self._controllers():
                controller.start()

    def _controllers(self) -> list[Any]:
        return [c for c in (getattr(self, n, None) for n in ("_list", "_chat", "_tools")) if c is not None]

    @property
    def store(self) -> Store:
        return self._chat.store

    def _on_selected(self, change: dict[str, Any]) -> None:
        """Any thread (the browser's update arrives on the kernel's shell thread)."""
        self._switch(change["new"])

    def _switch(self, thread_id: str | None) -> None:
        with self._lock:
            if self.closed or thread_id == self._chat.thread_id:
                return
            try:
                values = {**self._chat.open(thread_id), **self._tools.open(thread_id)}
                if self.highlighted and not self._in_thread(self.highlighted, thread_id):
                    values["highlighted"] = ""  # a hit of the thread shown before
            except Exception as exc:  # e.g. a thread deleted meanwhile: show it, keep the app usable
                values = {**self._chat.open(None), **self._tools.open(None)}
                values["error"] = f"Cannot open thread {thread_id}: {exc}"
            with self.hold_sync():
                self.set_traits(values)
            self._chat.start()
            self._tools.start()

    def _in_thread(self, message_id: str, thread_id: str | None) -> bool:
        try:
            return self.store.get_message(message_id).thread_id == thread_id
        except NotFoundError:
            return False

    def show_message(self, message_id: str) -> None:
        """Open the thread of the message ``message_id`` (a search hit's: ``hit.message.id``) and
        show the message highlighted, scrolled to."""
        self.selected = self.store.get_message(message_id).thread_id  # NotFoundError names the id
        self.highlighted = message_id

    def _select(self, thread_id: str) -> None:
        """Show another thread (a fork made from the chat): select it, as the list does."""
        self.selected = thread_id  # switches through _on_selected

    def _new_thread(self, prompt: str) -> str | None:
        """A prompt sent with no thread selected: start a thread for it and select it (with an agent
        to answer it; without one, None: pick a thread first)."""
        if self._agent is None:
            return None
        thread = self.store.create_thread(title=one_line(prompt, 60), user_id=self._user_id, agent=self._agent.name)
        with self._lock:
            self.selected = thread.id  # switches through _on_selected
        return thread.id

    def _transcript_html(self) -> str:
        """The thread list, then the selected thread's chat (its tool calls are under its messages)."""
        threads = self._list.transcript(self.selected)
        chat = self._chat.transcript(self.transcript_messages)
        return wrap("app", threads + (f'<div class="twt-msg">{chat}</div>' if chat else ""))

    def __repr__(self) -> str:
        closed = ", closed" if self.closed else ""
        n, path = len(self.threads), str(self.store.path)
        head = f"ThreadApp({path!r}, {n} thread{'' if n == 1 else 's'}, selected {self.selected}{closed})"
        if self._chat.thread_id is None:
            return head
        chat, lines = self._chat.summary()
        return "\n".join([head, f"  {chat}", *("    " + x for x in lines)])
