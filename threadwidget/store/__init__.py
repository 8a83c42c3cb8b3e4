"""The SQLite thread store and its cross-process change feed."""

from ._answer import Answer
from ._db import StoreWarning, default_path
from ._feed import Subscription
from ._rows import Delta, Event, Message, Thread, ToolCall
from ._store import Store

__all__ = [
    "Answer",
    "Delta",
    "Event",
    "Message",
    "Store",
    "StoreWarning",
    "Subscription",
    "Thread",
    "ToolCall",
    "default_path",
]
