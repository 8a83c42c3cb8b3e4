"""``OpenAIEmbedding``: vectors of texts from the OpenAI API or any OpenAI-compatible server's
``/embeddings`` endpoint, through the official ``openai`` SDK (imported on first use).

The store embeds messages with it in the background (``store/_vectors.py``); a failure is a
``ModelError`` whose text never shows the API key or credentials in ``base_url``.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from .._errors import InvalidArgumentError, MissingAPIKeyError, ModelError
from ._openai import _MISSING_KEY, OPENAI_API_BASE, _is_openai, _provider_message, _Secret, _split_credentials

__all__ = ["OpenAIEmbedding"]


class OpenAIEmbedding:
    """An embedding model behind an OpenAI-compatible ``/embeddings`` endpoint.

    ``dimensions`` asks the model for vectors of that length (``text-embedding-3-*`` can shorten
    theirs; None: the model's own). ``base_url`` defaults to ``$OPENAI_BASE_URL``, else the OpenAI
    API; ``api_key`` to ``$OPENAI_API_KEY`` (a server at another ``base_url`` needs none). The SDK
    retries 408/429/5xx and connection errors ``max_retries`` times with backoff.
    """

    def __init__(self, model: str = "text-embedding-3-small", *, dimensions: int | None = None,
                 base_url: str | None = None, api_key: str | None = None, timeout: float = 60.0,
                 max_retries: int = 3) -> None:  # fmt: skip
        if not isinstance(model, str) or not model:
            raise InvalidArgumentError(
                f"model={model!r} is not valid; expected an embedding model id such as 'text-embedding-3-small'."
            )
        if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool)
                                       or dimensions < 1):  # fmt: skip
            raise InvalidArgumentError(
                f"dimensions={dimensions!r} is not valid; expected an int >= 1 (e.g. 256) or None (the model's own)."
            )
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
            raise InvalidArgumentError(f"timeout={timeout!r} is not valid; expected a number of seconds > 0.")
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
            raise InvalidArgumentError(f"max_retries={max_retries!r} is not valid; expected an int >= 0.")
        self.model = model
        self.dimensions = dimensions
        self._base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_API_BASE).rstrip("/")
        self.base_url, url_secret = _split_credentials(self._base_url)
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            if _is_openai(self._base_url):
                raise MissingAPIKeyError(_MISSING_KEY)
            key = "not-needed"
        self._key = _Secret(key)
        self._secrets = [_Secret(x) for x in (key, url_secret) if x and len(x) >= 4 and x != "not-needed"]
        self.timeout, self.max_retries = float(timeout), max_retries
        self._where = "OpenAI API" if _is_openai(self._base_url) else f"OpenAI-compatible server at {self.base_url}"
        self._client: Any = None
        self._client_lock = threading.Lock()

    def __repr__(self) -> str:
        dims = f", dimensions={self.dimensions}" if self.dimensions else ""
        return f"OpenAIEmbedding({self.model!r}{dims}, base_url={self.base_url!r})"

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret.value, "[hidden]")
        return text

    def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order."""
        if not texts:
            return []
        import openai

        with self._client_lock:
            if self._client is None:
                self._client = openai.OpenAI(api_key=self._key.value, base_url=self._base_url,
                                             timeout=self.timeout, max_retries=self.max_retries)  # fmt: skip
            client = self._client
        options: dict[str, Any] = {"dimensions": self.dimensions} if self.dimensions else {}
        try:
            response = client.embeddings.create(model=self.model, input=texts, encoding_format="float", **options)
        except openai.APIStatusError as exc:
            message = f"{self._where} returned {exc.status_code} for embeddings of {self.model!r}: "
            raise ModelError(self._redact(message + _provider_message(exc)), status_code=exc.status_code) from None
        except openai.APIError as exc:
            raise ModelError(self._redact(f"{self._where} failed to embed with {self.model!r}: {exc}")) from None
        data = sorted(response.data, key=lambda item: item.index)
        return [list(item.embedding) for item in data]
