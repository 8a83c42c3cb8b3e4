"""The agent runtime: models, tools, and answers written into the store as they stream."""

from ._agent import Agent, AgentThread, Worker
from ._context import Context
from ._embedding import OpenAIEmbedding
from ._evals import CaseResult, EvalCase, EvalReport, Expect, Expectation, evaluate
from ._model import Finish, Model, ModelStream, TextDelta, ToolCallDelta
from ._openai import OpenAIChat
from ._replay import ReplayResult, ReplayTurn, ToolCallRecord, replay
from ._run import GenerateResult
from ._scripted import ScriptedModel
from ._tools import Tool, ToolCancelled, ToolContext, tool

__all__ = [
    "Agent",
    "AgentThread",
    "CaseResult",
    "Context",
    "EvalCase",
    "EvalReport",
    "Expect",
    "Expectation",
    "Finish",
    "GenerateResult",
    "Model",
    "ModelStream",
    "OpenAIChat",
    "OpenAIEmbedding",
    "ReplayResult",
    "ReplayTurn",
    "ScriptedModel",
    "TextDelta",
    "Tool",
    "ToolCallDelta",
    "ToolCancelled",
    "ToolCallRecord",
    "ToolContext",
    "Worker",
    "evaluate",
    "replay",
    "tool",
]
