"""``OpenAIEmbedding``: vectors of texts from the OpenAI API or any OpenAI-compatible server's
``/embeddings`` endpoint, through the official ``openai`` SDK (imported on first use).

The store embeds messages with it in the background (``store/_vectors.py``); a failure is a
``ModelError`` whose text never shows the API key or credentials in ``base_url``.
"""

from __future__ import annotations

import threading
from typing import Any

from .._errors import InvalidArgumentError, ModelError
from ._openai import _provider_message, endpoint

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
        self._base_url, self.base_url, self._key, self._secrets, self._where = endpoint(base_url, api_key)
        self.timeout, self.max_retries = float(timeout), max_retries
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
