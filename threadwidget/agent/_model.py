"""The interface between the agent runtime and a model.

A model turns a list of OpenAI-shaped chat messages and tool schemas into a *stream* of events:
``TextDelta`` and ``ToolCallDelta`` as they arrive, then exactly one ``Finish`` carrying the finish
reason and the token usage. A stream that ends without ``Finish`` is a failure, never a success.
``ModelStream.close()`` may be called from another thread to stop a stream early (abort): the
iterating thread then sees the iteration end or a ``ModelError``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .._usage import Usage

__all__ = [
    "Finish",
    "Model",
    "ModelEvent",
    "ModelStream",
    "TextDelta",
    "ToolCallDelta",
    "Usage",
]


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer's text."""

    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of a tool call. ``index`` identifies the call within the step (parallel calls
    interleave); ``id`` and ``name`` arrive with the first piece, ``arguments`` is a chunk of the
    JSON argument string."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class Finish:
    """The end of a stream: ``reason`` is the provider's finish_reason (``stop``, ``tool_calls``,
    ``length``, ...)."""

    reason: str
    usage: Usage | None = None


ModelEvent = TextDelta | ToolCallDelta | Finish


@runtime_checkable
class ModelStream(Protocol):
    def __iter__(self) -> Iterator[ModelEvent]: ...

    def close(self) -> None: ...


@runtime_checkable
class Model(Protocol):
    """Anything with a ``name`` and a ``stream`` method is a model."""

    name: str

    def stream(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelStream: ...
