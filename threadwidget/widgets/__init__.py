"""The anywidget views of threadwidget: ``ChatView``, ``ToolCallsPanel``, ``ThreadList``, ``ThreadApp``,
``UsagePanel``, ``EvalReportView``.

They read the store through its public API and change feed, and write only intents to it (a prompt,
an abort request). The browser side is in ``js/`` (bundled into ``threadwidget/static/``);
``js/src/protocol.ts`` is the contract for the traits and messages.
"""

from ._app import ThreadApp
from ._chat import ChatView
from ._evalreport import EvalReportView
from ._threadlist import ThreadList
from ._tools import ToolCallsPanel
from ._usage import UsagePanel

__all__ = ["ChatView", "EvalReportView", "ThreadApp", "ThreadList", "ToolCallsPanel", "UsagePanel"]
