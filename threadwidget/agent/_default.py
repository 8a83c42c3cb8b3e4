"""The model used when none is given: a real one when the environment names one, else the offline one."""

from __future__ import annotations

import os

from ._model import Model

__all__ = ["default_model"]


def default_model() -> Model:
    """``OpenAIChat($OPENAI_MODEL or "gpt-4o-mini")`` when ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL``
    is set, else the offline ``ScriptedModel``, announced once per process so that nobody mistakes
    it for a real model."""
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        from ._openai import OpenAIChat

        return OpenAIChat(os.environ.get("OPENAI_MODEL") or "gpt-4o-mini")
    from ._scripted import ScriptedModel

    ScriptedModel.announce_default()
    return ScriptedModel()
