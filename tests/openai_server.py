"""A local OpenAI-compatible Chat Completions server for tests (starlette + uvicorn, real HTTP + SSE).

It runs on a free loopback port in a background thread. Each ``POST /v1/chat/completions`` pops the
next queued scenario and plays it in OpenAI's streaming format; every request body is recorded::

    with OpenAIServer() as server:               # or the ``openai_server`` pytest fixture
        server.enqueue(Error(429, "Rate limit reached", headers={"Retry-After": "1"}), Text("Hello world"))
        model = tw.OpenAIChat("gpt-test", base_url=server.url, api_key="sk-test")
        ...
        assert server.requests[0].body["stream"] is True

Scenarios: ``Text`` (chunks, optional per-chunk delay), ``ToolCalls`` (parallel calls whose argument
chunks interleave across indexes), ``Error`` (a status with an OpenAI-style JSON error body, or a raw
body, and headers), ``CutOff`` (some chunks, then the connection drops: no finish_reason, no [DONE]),
``NoFinish`` (chunks then ``[DONE]`` without any finish_reason), ``Stall`` (go silent, before or after
the headers, for abort tests). With an empty queue the server plays ``server.default``, else answers
400. Requests without ``"stream": true`` get a 400 error.

``POST /v1/embeddings`` answers with ``embed_text``: a deterministic embedder that knows a few
synonyms (``refund`` and ``money``, ``broken`` and ``damaged``, ...), so a test can find a message by
meaning that shares no word with the query. Model ``tw-embed`` gives 64 dimensions (``dimensions``
in the request: that many); every request is recorded in ``embedding_requests``; an ``Error`` in
``embedding_errors`` is answered instead, once.

In pytest, ``pytest_plugins = ["tests.openai_fixtures"]`` provides the ``openai_server`` fixture.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import itertools
import json
import logging
import math
import random
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = [
    "EMBED_MODEL",
    "CutOff",
    "Error",
    "NoFinish",
    "OpenAIServer",
    "RecordedRequest",
    "Stall",
    "Text",
    "ToolCalls",
    "embed_text",
]

#: the test server's embedding model (64 dimensions unless the request asks for another number)
EMBED_MODEL = "tw-embed"
#: words of one meaning share one direction in ``embed_text``'s vectors
_SYNONYMS = [
    "refund refunds refunded reimburse reimbursed reimbursement money repay repaid",
    "broken damaged cracked faulty defective",
    "kettle teapot",
    "delivery shipping courier parcel package shipment",
    "cancel cancelled cancellation terminate",
    "invoice bill receipt",
]
_MEANING = {word: group.split()[0] for group in _SYNONYMS for word in group.split()}
#: words that carry no meaning here (left out of the vectors)
_STOP = frozenset("a an the i my me to it is was of for on in at and or that this what which can you your".split())  # noqa: SIM905


def _direction(word: str, dimensions: int) -> list[float]:
    """A fixed pseudo-random direction for a word (its meaning's): the same in every run."""
    seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
    rng = random.Random(seed)
    return [rng.gauss(0.0, 1.0) for _ in range(dimensions)]


def embed_text(text: str, dimensions: int = 64) -> list[float]:
    """The sum of the directions of ``text``'s words' meanings, unit length: texts that share a
    meaning point the same way, others are nearly orthogonal."""
    total = [0.0] * dimensions
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        if word in _STOP:
            continue
        for i, x in enumerate(_direction(_MEANING.get(word, word), dimensions)):
            total[i] += x
    norm = math.sqrt(sum(x * x for x in total)) or 1.0
    return [x / norm for x in total]


def _words(text: str) -> list[str]:
    return [w for w in text.replace(" ", " \0").split("\0") if w]


@dataclass
class Text:
    """A text answer streamed as ``chunks`` (a str is split into words), ``delay`` s apart."""

    chunks: list[str] | str
    delay: float = 0.0
    finish_reason: str = "stop"
    #: prompt_tokens, completion_tokens[, cached_tokens: sent as prompt_tokens_details.cached_tokens]
    usage: tuple[int, ...] = (10, 5)


@dataclass
class ToolCalls:
    """One step of parallel tool calls: ``(name, arguments)`` or ``(name, arguments, id)``; the
    arguments' JSON is sent ``chunk_size`` characters at a time, interleaved across the calls."""

    calls: list[tuple[Any, ...]]
    chunk_size: int = 5
    text: str = ""
    usage: tuple[int, ...] = (20, 15)


@dataclass
class Error:
    """An error status with ``{"error": {"message": ...}}`` (or ``raw_body`` verbatim) and headers."""

    status: int
    message: str = "Something went wrong"
    headers: dict[str, str] = field(default_factory=dict)
    type: str = "server_error"
    raw_body: str | None = None


@dataclass
class CutOff:
    """Send these text chunks, then drop the connection: no finish_reason, no [DONE]."""

    chunks: list[str] = field(default_factory=lambda: ["Hello", " there"])


@dataclass
class NoFinish:
    """Send these text chunks, then ``[DONE]`` without any finish_reason."""

    chunks: list[str] = field(default_factory=lambda: ["Hello", " there"])


@dataclass
class Stall:
    """Send ``chunks`` (after the headers), then go silent for ``seconds``; with ``before_headers``
    the silence comes before any response at all."""

    chunks: list[str] = field(default_factory=list)
    seconds: float = 30.0
    before_headers: bool = False


Scenario = Text | ToolCalls | Error | CutOff | NoFinish | Stall


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: Any
    at: float  # time.monotonic() when it arrived (the server runs in the test's process)


class _CutOff(Exception):
    """Raised inside a streaming body so that uvicorn drops the connection mid-response."""


class OpenAIServer:
    """See the module docstring. ``url`` is the base URL to give the client (ends in ``/v1``)."""

    def __init__(self) -> None:
        self.default: Scenario | None = None
        self._scenarios: collections.deque[Scenario] = collections.deque()
        self._stopping = threading.Event()  # ends stalls at once when the server stops
        self._requests: list[RecordedRequest] = []
        self._changed = threading.Condition()
        self._ids = itertools.count(1)
        self.embedding_requests: list[RecordedRequest] = []
        self.embedding_errors: collections.deque[Error] = collections.deque()
        self._app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._completions, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            ]
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> OpenAIServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))  # bound and listening before uvicorn runs: no startup race
        sock.listen(64)
        self.port = sock.getsockname()[1]
        logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)  # cut-offs are on purpose
        config = uvicorn.Config(
            self._app, http="h11", ws="none", lifespan="off", log_config=None, access_log=False,
            log_level="critical", timeout_graceful_shutdown=1,
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="openai-test-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._stopping.set()
            self._server.should_exit = True
            self._thread.join(timeout=10)

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def enqueue(self, *scenarios: Scenario) -> None:
        with self._changed:
            self._scenarios.extend(scenarios)

    def reset(self) -> None:
        with self._changed:
            self._scenarios.clear()
            self._requests.clear()
            self.default = None

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._changed:
            return list(self._requests)

    @property
    def pending(self) -> int:
        """Scenarios still queued."""
        with self._changed:
            return len(self._scenarios)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``count`` requests arrived (AssertionError after ``timeout``)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._requests) >= count, timeout):
                raise AssertionError(f"expected {count} requests within {timeout} s, got {len(self._requests)}")
            return list(self._requests)

    async def _completions(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        with self._changed:
            self._requests.append(RecordedRequest(request.url.path, dict(request.headers), body, time.monotonic()))
            scenario = self._scenarios.popleft() if self._scenarios else self.default
            self._changed.notify_all()
        if not isinstance(body, dict) or body.get("stream") is not True:
            return _error(
                400, "This test server only streams: send a JSON body with stream=true.", "invalid_request_error"
            )
        if scenario is None:
            return _error(400, "No scenario queued on the test server.", "invalid_request_error")
        if isinstance(scenario, Error):
            if scenario.raw_body is not None:
                return Response(scenario.raw_body, scenario.status, scenario.headers, media_type="text/plain")
            return _error(scenario.status, scenario.message, scenario.type, scenario.headers)
        if isinstance(scenario, Stall) and scenario.before_headers:
            deadline = time.monotonic() + scenario.seconds
            while time.monotonic() < deadline and not self._stopping.is_set() and not await request.is_disconnected():
                await asyncio.sleep(0.02)
            return _error(504, "stalled", "server_error")
        stream = _Chunks(body, f"chatcmpl-test{next(self._ids)}", self._stopping)
        return StreamingResponse(_play(scenario, stream), media_type="text/event-stream")


    async def _embeddings(self, request: Request) -> Response:
        body = await request.json()
        with self._changed:
            recorded = RecordedRequest(request.url.path, dict(request.headers), body, time.monotonic())
            self.embedding_requests.append(recorded)
            failure = self.embedding_errors.popleft() if self.embedding_errors else None
            self._changed.notify_all()
        if failure is not None:
            return _error(failure.status, failure.message, failure.type, failure.headers)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dimensions = int(body.get("dimensions") or 64)
        data = [{"object": "embedding", "index": i, "embedding": embed_text(t, dimensions)}
                for i, t in enumerate(texts)]  # fmt: skip
        tokens = sum(len(t.split()) for t in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return JSONResponse({"object": "list", "data": data, "model": body["model"], "usage": usage})


def _error(status: int, message: str, type_: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type_, "param": None, "code": None}}, status, headers)


@dataclass
class _Chunks:
    """Builds ``chat.completion.chunk`` SSE events for one response."""

    body: dict[str, Any]
    id: str
    stopping: threading.Event

    @property
    def include_usage(self) -> bool:
        return bool((self.body.get("stream_options") or {}).get("include_usage"))

    def event(self, delta: dict[str, Any] | None = None, finish_reason: str | None = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.body.get("model", "test-model"),
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return _sse(chunk)

    def usage(self, prompt: int, completion: int, cached: int | None = None) -> bytes:
        if not self.include_usage:
            return b""
        usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                                 "total_tokens": prompt + completion}  # fmt: skip
        if cached is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": cached, "audio_tokens": 0}
        chunk = {"id": self.id, "object": "chat.completion.chunk", "created": int(time.time()),
                 "model": self.body.get("model", "test-model"), "system_fingerprint": None,
                 "choices": [], "usage": usage}  # fmt: skip
        return _sse(chunk)


def _sse(data: Any) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()


DONE = b"data: [DONE]\n\n"


async def _play(scenario: Scenario, out: _Chunks) -> AsyncIterator[bytes]:
    yield out.event({"role": "assistant", "content": "", "refusal": None})
    if isinstance(scenario, Text):
        chunks = _words(scenario.chunks) if isinstance(scenario.chunks, str) else scenario.chunks
        for piece in chunks:
            if scenario.delay:
                await asyncio.sleep(scenario.delay)
            yield out.event({"content": piece})
        yield out.event({}, scenario.finish_reason)
        yield out.usage(*scenario.usage)
        yield DONE
    elif isinstance(scenario, ToolCalls):
        for piece in _words(scenario.text):
            yield out.event({"content": piece})
        for delta in _tool_call_deltas(scenario):
            yield out.event({"tool_calls": [delta]})
        yield out.event({}, "tool_calls")
        yield out.usage(*scenario.usage)
        yield DONE
    elif isinstance(scenario, (CutOff, NoFinish)):
        for piece in scenario.chunks:
            yield out.event({"content": piece})
        if isinstance(scenario, CutOff):
            raise _CutOff
        yield DONE
    elif isinstance(scenario, Stall):
        for piece in scenario.chunks:
            yield out.event({"content": piece})
        deadline = time.monotonic() + scenario.seconds  # cancelled when the client disconnects
        while time.monotonic() < deadline and not out.stopping.is_set():
            await asyncio.sleep(0.02)
        yield out.event({}, "stop")
        yield DONE


def _tool_call_deltas(scenario: ToolCalls) -> Iterator[dict[str, Any]]:
    pending = []
    for index, call in enumerate(scenario.calls):
        name, arguments = call[0], call[1]
        call_id = call[2] if len(call) > 2 else f"call_{index}_{name}"
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        size = scenario.chunk_size
        pending.append((index, [text[i : i + size] for i in range(0, len(text), size)]))
        yield {"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
    for round_ in range(max(len(pieces) for _, pieces in pending)):
        for index, pieces in pending:
            if round_ < len(pieces):
                yield {"index": index, "function": {"arguments": pieces[round_]}}
