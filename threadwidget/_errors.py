"""Every error threadwidget raises on purpose.

The tree::

    ThreadwidgetError
    ├── StoreError                    the thread store (a SQLite file or a PostgreSQL schema)
    │   ├── NotADatabaseError         the path is not a SQLite file
    │   ├── SchemaVersionError        the file was written by a newer threadwidget
    │   ├── StoreClosedError          the Store was used after close()
    │   ├── NotFoundError             no thread / message / tool call with that id (also a KeyError)
    │   ├── StoreBusyError            another process held the write lock too long
    │   ├── ReadOnlyStoreError        this process cannot write the file or its folder (names the fix)
    │   ├── StoreFullError            the disk or quota is full
    │   ├── StoreIOError              the operating system failed to read or write the files
    │   ├── StoreUnavailableError     the PostgreSQL server cannot be reached (or went away mid-commit)
    │   ├── CorruptStoreError         the file is damaged or lacks threadwidget's tables
    │   └── EmbeddingMismatchError    an embedder unlike the stored vectors (names both; re-embed with reindex)
    ├── AnswerTimeoutError            Answer.wait(timeout=...) ran out; the answer goes on (also a TimeoutError)
    ├── InvalidArgumentError          a bad value passed by the caller (also a ValueError)
    │   ├── DecisionError             a tool call that is not waiting for a decision (decided already, or never asked)
    │   └── SearchQueryError          a search query that does not parse (names it, the syntax and the fix)
    ├── MissingBundleError            a widget's browser bundle was not built (also a FileNotFoundError)
    ├── ModelError                    the model provider failed (status code and the provider's message)
    │   └── MissingAPIKeyError        no API key: names the variable to set
    └── ToolError                     a tool definition or call is wrong
        └── ToolArgumentsError        the model's arguments do not match the tool's schema

Messages name the value, what was expected, and the fix.
"""

from __future__ import annotations

__all__ = [
    "AnswerTimeoutError",
    "StoreWarning",
    "CorruptStoreError",
    "DecisionError",
    "EmbeddingMismatchError",
    "ReadOnlyStoreError",
    "StoreBusyError",
    "StoreFullError",
    "StoreIOError",
    "StoreUnavailableError",
    "InvalidArgumentError",
    "MissingAPIKeyError",
    "MissingBundleError",
    "ModelError",
    "NotADatabaseError",
    "NotFoundError",
    "SchemaVersionError",
    "SearchQueryError",
    "StoreClosedError",
    "StoreError",
    "ThreadwidgetError",
    "ToolArgumentsError",
    "ToolError",
]


class ThreadwidgetError(Exception):
    """Base class of every error raised by threadwidget on purpose."""


class StoreError(ThreadwidgetError):
    """Something is wrong with the thread store file or its use."""


class NotADatabaseError(StoreError):
    """The path given to Store is not a SQLite database."""


class SchemaVersionError(StoreError):
    """The store file was written by a newer version of threadwidget."""


class StoreClosedError(StoreError):
    """The Store was used after close()."""


class NotFoundError(StoreError, KeyError):
    """No row with that id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class StoreBusyError(StoreError):
    """Another process held the store's write lock for too long."""


class ReadOnlyStoreError(StoreError):
    """This process may read the store but not write it (file or folder permissions)."""


class StoreFullError(StoreError):
    """The disk (or quota) holding the store is full."""


class StoreIOError(StoreError):
    """The operating system failed to read or write the store's files."""


class StoreUnavailableError(StoreError):
    """The PostgreSQL server holding the store cannot be reached."""


class CorruptStoreError(StoreError):
    """The store's file is damaged, or lacks threadwidget's tables."""


class AnswerTimeoutError(ThreadwidgetError, TimeoutError):
    """An answer did not end within the time waited for it (it goes on)."""


class InvalidArgumentError(ThreadwidgetError, ValueError):
    """A value passed by the caller is not acceptable."""


class DecisionError(InvalidArgumentError):
    """Approving or denying a tool call that does not wait for a decision: another person decided
    first, or the tool never asked for one. Nothing was changed."""


class SearchQueryError(InvalidArgumentError):
    """A search query that does not parse: the message names it, the syntax expected and the fix."""


class EmbeddingMismatchError(StoreError):
    """An embedder whose model or dimension differs from the vectors already in the store: searching
    with it would compare unlike vectors. The message names both and the fix (``threadwidget reindex``)."""


class MissingBundleError(ThreadwidgetError, FileNotFoundError):
    """A widget's JavaScript bundle is not in ``threadwidget/static/``: build it in ``js/`` or reinstall."""


class ModelError(ThreadwidgetError):
    """The model provider failed; carries its status code and message when it sent one."""

    def __init__(self, message: str, *, status_code: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.status_code = status_code
        self.retryable = retryable


class MissingAPIKeyError(ModelError):
    """No API key was given or found in the environment."""


class ToolError(ThreadwidgetError):
    """A tool is defined or called wrongly."""


class ToolArgumentsError(ToolError):
    """The arguments the model sent do not match the tool's schema."""


class StoreWarning(UserWarning):
    """Something works, but not as well as it should (e.g. a store on a network file system, a
    process that may only read the store, a bell file that cannot be used)."""
