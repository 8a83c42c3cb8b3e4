"""threadwidget: reactive, persistent agent threads for Jupyter.

``import threadwidget`` is cheap: the store loads at once; the agent runtime (which needs ``openai``)
and the widgets (which need ``anywidget``) load on first use of their names.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from ._budget import Budget
from ._errors import (
    AnswerTimeoutError,
    CorruptStoreError,
    DecisionError,
    EmbeddingMismatchError,
    InvalidArgumentError,
    MissingAPIKeyError,
    MissingBundleError,
    ModelError,
    NotADatabaseError,
    NotFoundError,
    ReadOnlyStoreError,
    SchemaVersionError,
    SearchQueryError,
    StoreBusyError,
    StoreClosedError,
    StoreError,
    StoreFullError,
    StoreIOError,
    StoreUnavailableError,
    ThreadwidgetError,
    ToolArgumentsError,
    ToolError,
)
from ._prices import Cost, Price, Prices
from ._usage import Usage
from ._version import __version__
from .store import Answer, Delta, Event, Message, Store, StoreWarning, Subscription, Thread, ToolCall
from .store._search import SearchHit

# public name -> module that defines it, imported on first access
_LAZY = {
    "Agent": "threadwidget.agent",
    "AgentThread": "threadwidget.agent",
    "Context": "threadwidget.agent",
    "GenerateResult": "threadwidget.agent",
    "OpenAIChat": "threadwidget.agent",
    "OpenAIEmbedding": "threadwidget.agent",
    "ScriptedModel": "threadwidget.agent",
    "Tool": "threadwidget.agent",
    "ToolContext": "threadwidget.agent",
    "tool": "threadwidget.agent",
    "ChatView": "threadwidget.widgets",
    "ThreadApp": "threadwidget.widgets",
    "ThreadList": "threadwidget.widgets",
    "ToolCallsPanel": "threadwidget.widgets",
    "UsagePanel": "threadwidget.widgets",
    "replay": "threadwidget.agent",
    "ReplayResult": "threadwidget.agent",
    "evaluate": "threadwidget.agent",
    "EvalCase": "threadwidget.agent",
    "EvalReport": "threadwidget.agent",
    "Expect": "threadwidget.agent",
    "EvalReportView": "threadwidget.widgets",
}

__all__ = [
    "Answer",
    "AnswerTimeoutError",
    "Context",
    "CorruptStoreError",
    "DecisionError",
    "Delta",
    "EmbeddingMismatchError",
    "Event",
    "InvalidArgumentError",
    "Message",
    "MissingAPIKeyError",
    "MissingBundleError",
    "ModelError",
    "NotADatabaseError",
    "NotFoundError",
    "ReadOnlyStoreError",
    "SchemaVersionError",
    "SearchHit",
    "SearchQueryError",
    "Store",
    "StoreBusyError",
    "StoreClosedError",
    "StoreError",
    "StoreFullError",
    "StoreIOError",
    "StoreUnavailableError",
    "StoreWarning",
    "Subscription",
    "Thread",
    "ThreadwidgetError",
    "ToolArgumentsError",
    "ToolCall",
    "ToolError",
    "Usage",
    "__version__",
    "Budget",
    "Cost",
    "Price",
    "Prices",
    # loaded on first use
    "Agent",
    "AgentThread",
    "GenerateResult",
    "OpenAIChat",
    "OpenAIEmbedding",
    "ScriptedModel",
    "Tool",
    "ToolContext",
    "tool",
    "ChatView",
    "ThreadApp",
    "ThreadList",
    "ToolCallsPanel",
    "UsagePanel",
    "replay",
    "ReplayResult",
    "evaluate",
    "EvalCase",
    "EvalReport",
    "Expect",
    "EvalReportView",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'threadwidget' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def _show_thread(thread: Any) -> Any:
    """An ``AgentThread`` shown as a cell's result: its live ``ChatView``, one per thread object,
    shown again (not rebuilt) each time the thread is shown, until that view is closed."""
    from .widgets import ChatView

    view = thread._view
    if view is None or view.closed:
        view = thread._view = ChatView(thread)
    return view._repr_mimebundle_()


def _show_report(report: Any) -> Any:
    """An ``EvalReport`` shown as a cell's result: its ``EvalReportView``."""
    from .widgets import EvalReportView

    return EvalReportView(report)._repr_mimebundle_()


def _register_display(formatter: Any = None) -> None:
    """Teach IPython (when it runs) to show an ``AgentThread`` as its ChatView and an
    ``EvalReport`` as its EvalReportView, by name: nothing is imported until one is shown."""
    if formatter is None:
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
        if shell is None:
            return
        formatter = shell.display_formatter
    formatter.mimebundle_formatter.for_type_by_name("threadwidget.agent._agent", "AgentThread", _show_thread)
    formatter.mimebundle_formatter.for_type_by_name("threadwidget.agent._evals", "EvalReport", _show_report)


_register_display()
