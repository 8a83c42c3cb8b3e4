"""The ``openai_server`` fixture: ``pytest_plugins = ["tests.openai_fixtures"]`` in a test module or the
root conftest. One local OpenAI-compatible server per session; its queue, default scenario and recorded
requests are reset for each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.openai_server import OpenAIServer

__all__ = ["openai_server"]


@pytest.fixture(scope="session")
def _openai_server_session() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture
def openai_server(_openai_server_session: OpenAIServer) -> Iterator[OpenAIServer]:
    """The session's local OpenAI-compatible server, with an empty queue and no recorded requests."""
    _openai_server_session.reset()
    yield _openai_server_session
    _openai_server_session.reset()
