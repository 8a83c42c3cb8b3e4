"""The thread store (a SQLite file, or a PostgreSQL schema) and its cross-process change feed."""

from ._answer import Answer
from ._copy import CopyReport, copy_store
from ._db import StoreWarning, default_path
from ._dialect import is_server_url
from ._feed import Subscription
from ._rows import Delta, Event, Message, Presence, Thread, ToolCall
from ._search import SearchHit
from ._store import Store

__all__ = [
    "Answer",
    "CopyReport",
    "Delta",
    "Event",
    "Message",
    "Presence",
    "SearchHit",
    "Store",
    "StoreWarning",
    "Subscription",
    "Thread",
    "ToolCall",
    "copy_store",
    "default_path",
    "is_server_url",
]
