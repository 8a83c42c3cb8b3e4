"""Typed rows returned by the store. Plain frozen dataclasses: cheap to build on the feed's hot path."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from typing import Any

from .._statuses import FINAL_STATUSES, Decision, EventKind, MessageStatus, Role, ToolCallStatus
from .._text import iso_time
from .._usage import Usage

__all__ = [
    "Delta",
    "Event",
    "Message",
    "Presence",
    "Thread",
    "ToolCall",
]


def new_id(prefix: str) -> str:
    """A new row id: ``th_…``, ``msg_…``, ``tc_…``."""
    return f"{prefix}_{os.urandom(10).hex()}"  # 80 random bits, as before (uuid4 costs 5x more)


#: characters of a text a row's repr shows
_SHOWN = 80


def _json(value: str | None) -> Any:
    return json.loads(value) if value else None


class _Row:
    def __repr__(self) -> str:
        """The fields that are set, times as ``iso_time`` (UTC, ``…Z``), long texts cut at 80
        characters: ``Thread(id='th_…', title='Order help', created_at=2026-05-04T09:30:00.125Z, …)``."""
        shown = []
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None or (f.name == "metadata" and not value):
                continue
            if f.name.endswith("_at") and isinstance(value, (int, float)):
                text = iso_time(value)
            elif isinstance(value, str) and len(value) > _SHOWN:
                text = repr(value[: _SHOWN - 1] + "…")
            else:
                text = repr(value)
            shown.append(f"{f.name}={text}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-ready data (what the widgets and the CLI use)."""
        data = asdict(self)  # type: ignore[call-overload]
        for key, value in data.items():
            if isinstance(value, Usage):
                data[key] = value.to_dict()
        return data


@dataclass(frozen=True, slots=True, repr=False)
class Thread(_Row):
    id: str
    title: str | None
    user_id: str | None
    agent: str | None
    metadata: dict[str, Any]
    created_at: float
    updated_at: float
    #: a fork (``store.fork_thread``): the thread it was copied from
    forked_from: str | None = None
    #: a fork: the message of ``forked_from`` it was copied up to
    forked_at: str | None = None

    @classmethod
    def from_sql(cls, r: tuple[Any, ...]) -> Thread:
        fork = (r[9], r[10]) if len(r) > 10 else (None, None)  # a search's hit reads the first columns only
        return cls(r[0], r[1], r[2], r[3], _json(r[4]) or {}, r[5], r[6], *fork)


@dataclass(frozen=True, slots=True, repr=False)
class Message(_Row):
    id: str
    thread_id: str
    position: int
    step: int
    role: Role
    text: str
    status: MessageStatus
    error: str | None
    agent: str | None
    model: str | None
    usage: Usage | None
    finish_reason: str | None
    metadata: dict[str, Any]
    created_at: float
    updated_at: float
    #: an assistant step: the id of the prompt (user message) it answers
    reply_to: str | None = None
    #: where the message sorts: the position of the prompt it answers, else its own position
    turn: int = 0
    #: the last step of an answer (final, nothing follows it for that prompt)
    ends_answer: bool = False
    #: who wrote a prompt (``store.ask(..., user_id=...)``)
    user_id: str | None = None
    #: a message that starts a turn (a prompt, a reply): the turn it follows; turns with the same
    #: parent are versions of each other (``store.versions``)
    parent_id: str | None = None
    #: an answer's step: which answer to its prompt (0, 1, ... : ``store.alternatives``)
    alternative: int = 0
    #: a prompt: the alternative of its answer on the thread's path
    chosen: int = 0
    #: on the thread's current path (what ``list_messages`` shows)
    on_path: bool = True

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @classmethod
    def from_sql(cls, r: tuple[Any, ...]) -> Message:
        return cls(
            r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
            Usage.from_dict(_json(r[10])), r[11], _json(r[12]) or {}, r[13], r[14],
            r[15], r[16], bool(r[17]), r[18], r[19], r[20], r[21], bool(r[22]),
        )  # fmt: skip


@dataclass(frozen=True, slots=True, repr=False)
class Delta(_Row):
    id: int
    message_id: str
    thread_id: str
    seq: int
    text: str
    created_at: float

    @classmethod
    def from_sql(cls, r: tuple[Any, ...]) -> Delta:
        return cls(r[0], r[1], r[2], r[3], r[4], r[5])


@dataclass(frozen=True, slots=True, repr=False)
class ToolCall(_Row):
    id: str
    thread_id: str
    message_id: str
    call_id: str
    name: str
    arguments: str
    status: ToolCallStatus
    progress: float | None
    progress_note: str | None
    result: str | None
    error: str | None
    created_at: float
    started_at: float | None
    ended_at: float | None
    updated_at: float
    #: what a person decided when the tool needed approval: ``approved``, ``denied``, or ``None``
    decision: Decision | None = None
    #: who decided (their user id)
    decided_by: str | None = None
    #: when (unix seconds)
    decided_at: float | None = None
    #: the approver's note, or the reason it was denied
    decision_note: str | None = None

    @classmethod
    def from_sql(cls, r: tuple[Any, ...]) -> ToolCall:
        return cls(*r)


@dataclass(frozen=True, slots=True, repr=False)
class Presence(_Row):
    """One open view of a thread: whose, whether they are typing, when it was last seen."""

    view_id: str
    thread_id: str
    user_id: str
    typing: bool
    seen_at: float

    @classmethod
    def from_sql(cls, r: tuple[Any, ...]) -> Presence:
        return cls(r[0], r[1], r[2], bool(r[3]), r[4])


@dataclass(frozen=True, slots=True)
class Event:
    """One committed change, delivered to subscribers in commit order.

    ``kind`` is ``thread``, ``message``, ``delta``, ``tool_call``, ``run`` (an abort request or a
    lease change), ``path`` (the thread's current path changed: another version or answer is shown;
    the row is the ``Thread``: reload what you show of it), ``resync`` (the subscriber fell further
    behind than the kept change log: reload
    what you show from the store) or ``feed`` (the feed went off line or came back, to every
    subscriber: ``store.feed_connected`` says which; it catches up by itself). ``op`` is
    ``insert``, ``update`` or ``delete``. ``row`` is the
    row as it is when the event is read (``None`` once deleted): rows are the truth, events say
    what to look at.
    """

    seq: int
    thread_id: str | None
    kind: EventKind
    op: str
    row_id: str | None
    row: Thread | Message | Delta | ToolCall | Presence | dict[str, Any] | None
