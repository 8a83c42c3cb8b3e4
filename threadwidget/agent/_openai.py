"""``OpenAIChat``: the OpenAI API or any OpenAI-compatible server (vLLM, Ollama, llama.cpp), streamed
through the official ``openai`` SDK (imported on first use, never at module import).

Retries (408/409/429/5xx, timeouts, connection errors) are this module's, not the SDK's: exponential
backoff with jitter capped at ``max_backoff``, honouring ``Retry-After`` and ``retry-after-ms``, and only
before the first chunk, since a retry after it would send text twice. A stream without a
``finish_reason`` is a ``ModelError``. ``close()`` from any thread aborts: it shuts the socket down
(which wakes a reader blocked in ``recv``; closing alone does not on Linux), closes the response and
interrupts a retry wait or a request still waiting for its headers. The iterating thread then stops
within milliseconds; an aborted stream yields no ``Finish`` and raises nothing.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import math
import os
import queue
import random
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import timezone
from typing import Any

from .._errors import InvalidArgumentError, MissingAPIKeyError, ModelError
from ._model import Finish, ModelEvent, TextDelta, ToolCallDelta, Usage

__all__ = ["OpenAIChat"]

OPENAI_API_BASE = "https://api.openai.com/v1"
_log = logging.getLogger(__name__)

_MISSING_KEY = (
    "No OpenAI API key: set the OPENAI_API_KEY environment variable (or pass api_key=...). "
    "For a local OpenAI-compatible server (vLLM, Ollama, llama.cpp) set OPENAI_BASE_URL "
    '(or pass base_url=...); a server without keys needs none, or pass api_key="none".'
)


class _Secret:
    """Holds the API key so that no repr, ``vars()`` dump or log line shows it."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<hidden>"


class OpenAIChat:
    """A model behind an OpenAI-compatible Chat Completions endpoint.

    ``base_url`` defaults to ``$OPENAI_BASE_URL``, else the OpenAI API; ``api_key`` to
    ``$OPENAI_API_KEY``. A server at another ``base_url`` needs no key (a placeholder is sent).
    ``timeout`` bounds each read (seconds between chunks), ``connect_timeout`` the connection.
    ``extra_body`` is merged into every request (``{"max_tokens": 200}``, provider options).
    """

    def __init__(self, model: str = "gpt-4o-mini", *, base_url: str | None = None, api_key: str | None = None,
                 timeout: float = 60.0, connect_timeout: float = 10.0, max_retries: int = 3, backoff: float = 0.5,
                 max_backoff: float = 20.0, temperature: float | None = None,
                 extra_body: Mapping[str, Any] | None = None) -> None:  # fmt: skip
        if not isinstance(model, str) or not model:
            raise InvalidArgumentError(f"model must be a non-empty model id such as 'gpt-4o-mini', not {model!r}")
        for name, value, least in (("timeout", timeout, 0), ("connect_timeout", connect_timeout, 0),
                                   ("backoff", backoff, None), ("max_backoff", max_backoff, None)):  # fmt: skip
            if not _number(value) or (value <= least if least is not None else value < 0):
                bound = "> 0" if least is not None else ">= 0"
                raise InvalidArgumentError(f"{name}={value!r} is not valid; expected a number of seconds {bound}.")
        if temperature is not None and not _number(temperature):
            raise InvalidArgumentError(f"temperature={temperature!r} is not valid; expected a number such as 0.2.")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise InvalidArgumentError(f"max_retries must be an int >= 0, not {max_retries!r}")
        self.name = model
        self._base_url, shown_url, self._key, self._secrets, self._where = endpoint(base_url, api_key)
        self.base_url = self._shown_url = shown_url  # credentials in the URL stay out of sight
        self.timeout, self.connect_timeout = float(timeout), float(connect_timeout)
        self.max_retries, self.backoff, self.max_backoff = max_retries, float(backoff), float(max_backoff)
        self.temperature = temperature
        self.extra_body = dict(extra_body) if extra_body else None
        self._client: Any = None
        self._client_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenAIChat({self.name!r}, base_url={self._shown_url!r})"

    def redact(self, text: str) -> str:
        """``text`` with the API key and any credentials of ``base_url`` replaced by ``[hidden]``."""
        for secret in self._secrets:
            text = text.replace(secret.value, "[hidden]")
        return text

    def stream(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> _ChatStream:
        """Start one streamed completion; iterate the result once, ``close()`` it to abort."""
        request: dict[str, Any] = {"model": self.name, "messages": messages, "stream": True}
        request["stream_options"] = {"include_usage": True}
        optional = {"tools": tools or None, "temperature": self.temperature, "extra_body": self.extra_body}
        request.update((key, value) for key, value in optional.items() if value is not None)
        return _ChatStream(self, request)

    def _sdk_client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                import openai

                limits = openai.Timeout(self.timeout, connect=self.connect_timeout)
                self._client = openai.OpenAI(api_key=self._key.value, base_url=self._base_url, timeout=limits,
                                             max_retries=0)  # fmt: skip
            return self._client

    def _model_error(self, exc: Exception, *, attempts: int = 1, mid_stream: bool = False) -> ModelError:
        error = self._describe_error(exc, attempts=attempts, mid_stream=mid_stream)
        return ModelError(self.redact(str(error)), status_code=error.status_code, retryable=error.retryable)

    def _describe_error(self, exc: Exception, *, attempts: int, mid_stream: bool) -> ModelError:
        import openai

        after = f" (after {attempts} attempts)" if attempts > 1 else ""
        where = self._where
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            message = f"{where} returned {status}: {_provider_message(exc)}{after}"
            return ModelError(message, status_code=status, retryable=status in (408, 409, 429) or status >= 500)
        if isinstance(exc, openai.APITimeoutError):
            limits = f"connect timeout {self.connect_timeout:g} s, read timeout {self.timeout:g} s"
            return ModelError(f"{where} timed out ({limits}){after}", retryable=True)
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            what = "lost the connection to" if mid_stream else "could not reach"
            return ModelError(f"{what} {where}: {type(cause).__name__}: {cause}{after}", retryable=True)
        if isinstance(exc, openai.APIError):  # an {"error": ...} event inside the stream
            return ModelError(f"{where} sent an error in the stream: {exc.message}")
        return ModelError(f"{where} sent a stream that could not be read: {type(exc).__name__}: {exc}")


class _ChatStream:
    """One streamed chat completion: iterate once; ``close()`` may come from any thread."""

    def __init__(self, chat: OpenAIChat, request: dict[str, Any]) -> None:
        self._chat = chat
        self._request = request
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._response: Any = None  # the SDK's Stream, once the response headers arrived
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()

    def close(self) -> None:
        with self._lock:
            self._closed.set()
            response, self._response = self._response, None
        self._inbox.put(("closed", None))
        if response is not None:
            _abort(response)

    def __iter__(self) -> Iterator[ModelEvent]:
        opened = None if self._closed.is_set() else self._open()
        if opened is None:
            return
        chunks, chunk = opened
        reason: str | None = None
        usage: Usage | None = None
        try:
            while chunk is not None and not self._closed.is_set():
                for choice in getattr(chunk, "choices", None) or ():
                    if (getattr(choice, "index", 0) or 0) == 0:
                        yield from _deltas(getattr(choice, "delta", None))
                        reason = getattr(choice, "finish_reason", None) or reason
                if getattr(chunk, "usage", None) is not None:
                    usage = _usage(chunk.usage)
                chunk = next(chunks, None)
        except Exception as exc:
            if self._closed.is_set():
                return
            if reason is None:
                raise self._chat._model_error(exc, mid_stream=True) from exc
            # the answer is complete; only the trailing usage chunk or [DONE] was lost
            _log.warning("%s: stream broke after finish_reason=%r: %s", self._chat._where, reason, exc)
        finally:
            with self._lock:
                response, self._response = self._response, None
            if response is not None:
                response.close()
        if self._closed.is_set():
            return
        if reason is None:
            where = self._chat._where
            raise ModelError(f"{where}: stream ended before the model finished (no finish_reason); answer incomplete")
        yield Finish(reason, usage)

    def _open(self) -> tuple[Iterator[Any], Any] | None:
        """Send the request and read the first chunk, retrying transient failures; None if closed."""
        chat = self._chat
        for attempt in range(1, chat.max_retries + 2):
            try:
                response = self._send()
                if response is None:
                    return None
                chunks = iter(response)
                return chunks, next(chunks, None)
            except Exception as exc:
                if self._closed.is_set():
                    return None
                error = chat._model_error(exc, attempts=attempt)
                if not error.retryable or attempt > chat.max_retries:
                    raise error from exc
                headers = getattr(getattr(exc, "response", None), "headers", None)
                delay = _retry_delay(headers, attempt, chat.backoff, chat.max_backoff)
                _log.info("%s; retry %d of %d in %.2f s", error, attempt, chat.max_retries, delay)
                if self._closed.wait(delay):
                    return None
        raise AssertionError("unreachable")

    def _send(self) -> Any:
        """Start the request on a helper thread, so that close() need not wait for the headers."""

        def run() -> None:
            try:
                response = self._chat._sdk_client().chat.completions.create(**self._request)
            except BaseException as exc:
                self._inbox.put(("error", exc))
                return
            with self._lock:
                if not self._closed.is_set():
                    self._response = response
                    self._inbox.put(("response", response))
                    return
            response.close()  # aborted while the request was on its way

        threading.Thread(target=run, name="threadwidget-openai-request", daemon=True).start()
        kind, value = self._inbox.get()
        if kind == "error":
            raise value
        return value if kind == "response" else None


def _deltas(delta: Any) -> Iterator[ModelEvent]:
    """The events in one chunk's ``choices[0].delta`` (lenient: servers differ in what they omit)."""
    if getattr(delta, "content", None):
        yield TextDelta(delta.content)
    for position, call in enumerate(getattr(delta, "tool_calls", None) or ()):
        function, index = getattr(call, "function", None), getattr(call, "index", None)
        yield ToolCallDelta(
            position if index is None else index,
            getattr(call, "id", None) or None,
            getattr(function, "name", None) or None,
            getattr(function, "arguments", None) or "",
        )


def _usage(usage: Any) -> Usage:
    """The chunk's usage; ``prompt_tokens_details.cached_tokens``, when sent, is the part of the input
    read from the provider's prompt cache."""
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) if details is not None else None
    prompt = usage.prompt_tokens or 0
    cached = min(max(int(cached), 0), prompt) if cached is not None and _number(cached) else 0
    return Usage(prompt, usage.completion_tokens or 0, cached)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _split_credentials(url: str) -> tuple[str, str | None]:
    """``url`` without a ``user:password@`` part, and that part (``None`` when there is none)."""
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    if not sep or "@" not in host:
        return url, None
    userinfo, _, hostname = host.rpartition("@")
    return f"{scheme}://[hidden]@{hostname}{slash}{path}", userinfo


def endpoint(base_url: str | None, api_key: str | None) -> tuple[str, str, _Secret, list[_Secret], str]:
    """Where a client of an OpenAI-compatible API connects: the URL (``$OPENAI_BASE_URL``, else the
    OpenAI API), the URL as shown (credentials hidden), the key (``$OPENAI_API_KEY``; a server at
    another URL needs none), what no error text, stored error, log line or repr may show whatever a
    server echoes (the key, the URL's credentials), and how errors name the server."""
    url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_API_BASE).rstrip("/")
    shown, url_secret = _split_credentials(url)
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if not key:
        if _is_openai(url):
            raise MissingAPIKeyError(_MISSING_KEY)
        key = "not-needed"
    secrets = [_Secret(x) for x in (key, url_secret) if x and len(x) >= 4 and x != "not-needed"]
    where = "OpenAI API" if _is_openai(url) else f"OpenAI-compatible server at {shown}"
    return url, shown, _Secret(key), secrets, where


def _is_openai(base_url: str) -> bool:
    return base_url.split("://", 1)[-1].split("/", 1)[0].lower() == "api.openai.com"


def _retry_delay(headers: Mapping[str, str] | None, retry: int, backoff: float, max_backoff: float) -> float:
    hinted = _retry_after(headers)
    if hinted is not None:
        return min(hinted, max_backoff)
    return min(max_backoff, backoff * 2 ** (retry - 1) * random.uniform(0.75, 1.25))


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds asked for by ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    headers = headers or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        with contextlib.suppress(ValueError):
            if math.isfinite(value := float(headers.get(name) or "nan") * scale):
                return max(0.0, value)
    try:
        when = email.utils.parsedate_to_datetime(headers.get("retry-after") or "")
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - time.time())


def _provider_message(exc: Any) -> str:
    """The provider's own words from an error response (``error.message``), never a raw repr."""
    body = exc.body  # the SDK has already unwrapped {"error": {...}} to the inner value
    if isinstance(body, Mapping):
        message = body.get("message") or body.get("detail")
        if isinstance(message, str) and message:
            return message
        return json.dumps(message if message else body, default=str)[:500]
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return exc.response.reason_phrase or "no error message"


def _abort(response: Any) -> None:
    """Wake a thread blocked reading ``response`` (an SDK Stream), then close it."""
    try:
        sock = response.response.extensions["network_stream"].get_extra_info("socket")
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's method, also under TLS
    except (AttributeError, KeyError, TypeError, OSError):
        pass
    try:
        response.close()
    except Exception as exc:  # closing from another thread may race with the reader
        _log.debug("closing an aborted response: %s", exc)
