"""The public surface: what `import threadwidget` exports, and that importing it stays cheap."""

from __future__ import annotations

import json
import subprocess

import pytest

import threadwidget as tw

from .conftest import PYTHON, python_env

EXPECTED = {
    "Answer", "AnswerTimeoutError", "CorruptStoreError", "DecisionError", "ReadOnlyStoreError", "StoreBusyError",
    "StoreFullError", "StoreIOError", "StoreUnavailableError",
    "Delta",
    "EmbeddingMismatchError", "Event", "InvalidArgumentError", "Message", "MissingAPIKeyError", "MissingBundleError",
    "ModelError",
    "NotADatabaseError", "NotFoundError", "SchemaVersionError", "SearchHit", "SearchQueryError",
    "Store", "StoreClosedError", "StoreError",
    "StoreWarning", "Subscription", "Thread", "ThreadwidgetError", "ToolArgumentsError", "ToolCall", "ToolError",
    "Usage", "__version__",
    "Budget", "Cost", "Price", "Prices",
    # loaded on first use
    "Agent", "AgentThread", "Context", "GenerateResult", "OpenAIChat",
    "OpenAIEmbedding", "ScriptedModel", "Tool", "ToolContext", "tool",
    "ChatView", "ThreadApp", "ThreadList", "ToolCallsPanel", "UsagePanel",
    "replay", "ReplayResult", "evaluate", "EvalCase", "EvalReport", "Expect", "EvalReportView",
}  # fmt: skip


def test_all_is_pinned() -> None:
    assert set(tw.__all__) == EXPECTED
    assert set(tw._LAZY) <= EXPECTED
    for name in tw.__all__:
        assert getattr(tw, name) is not None


def test_import_does_not_load_heavy_dependencies() -> None:
    code = (
        "import sys, json, threadwidget as tw, tempfile, os\n"
        "s = tw.Store(os.path.join(tempfile.mkdtemp(), 'x.db')); t = s.create_thread()\n"
        "s.subscribe(print); s.close()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('openai', 'anywidget', 'ipywidgets', 'jupyterlab', 'pydantic', 'httpx'))))"
    )
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env=python_env(), check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_unknown_attribute_is_a_clear_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        tw.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
