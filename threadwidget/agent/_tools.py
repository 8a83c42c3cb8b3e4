"""Tools: typed Python functions (sync or ``async def``) the model may call.

The JSON schema of a tool's parameters comes from the type hints through pydantic, its description from
the docstring. A parameter annotated :class:`ToolContext` is filled in at call time, never shown to the
model. The model's argument text is validated strictly (no coercion, no extra keys) before the function
runs; a mismatch raises :class:`ToolArgumentsError`, whose message is written for the model to read and
correct its call (and for a human reading a log).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import dataclasses
import functools
import inspect
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, overload

import pydantic
from pydantic_core import PydanticSerializationError, to_jsonable_python

from threadwidget._errors import InvalidArgumentError, ToolArgumentsError, ToolError
from threadwidget.agent._tool_schema import function_schema

__all__ = ["Tool", "ToolCancelled", "ToolContext", "tool"]

_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


class ToolCancelled(ToolError):
    """The run a tool was working for was aborted (raised by :meth:`ToolContext.raise_if_cancelled`)."""


class ToolContext:
    """What a running tool knows about its call, and how it reports progress or notices an abort.

    The runtime builds one per call. One built by hand (``ToolContext()``) also works, for direct
    calls in a notebook: progress is then a no-op and nothing cancels it.
    """

    def __init__(
        self,
        thread_id: str = "",
        message_id: str | None = None,
        call_id: str = "",
        tool_name: str = "",
        on_progress: Callable[[float | None, str | None], None] | None = None,
        cancel_event: threading.Event | None = None,
    ) -> None:
        self.thread_id = thread_id
        self.message_id = message_id
        self.call_id = call_id
        self.tool_name = tool_name
        self.on_progress = on_progress  # the runtime writes it to the store (and throttles it there)
        self.cancel_event = cancel_event if cancel_event is not None else threading.Event()

    def __repr__(self) -> str:
        return f"ToolContext(thread_id={self.thread_id!r}, call_id={self.call_id!r}, tool_name={self.tool_name!r})"

    def progress(self, fraction: float | None = None, note: str | None = None) -> None:
        """Report progress: ``fraction`` from 0 to 1 (None when unknown) and/or a short note."""
        if fraction is not None:
            if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
                raise InvalidArgumentError(
                    f"progress fraction must be a number from 0 to 1 (or None when unknown); got "
                    f"{fraction!r}. Pass e.g. ctx.progress(0.5, 'halfway')."
                )
            fraction = float(fraction)
        if note is not None and not isinstance(note, str):
            raise InvalidArgumentError(f"progress note must be a str or None; got {type(note).__name__}")
        if self.on_progress is not None:
            self.on_progress(fraction, note)

    @property
    def cancelled(self) -> bool:
        """True once the run this call belongs to was aborted."""
        return self.cancel_event.is_set()

    def raise_if_cancelled(self) -> None:
        """Raise :class:`ToolCancelled` if the run was aborted; call it between steps of slow work."""
        if self.cancelled:
            raise ToolCancelled(
                f"tool {self.tool_name or '(unnamed)'} (call {self.call_id or '-'}) was cancelled: its run was aborted"
            )

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking at once on abort; True if the run was aborted.

        It blocks the calling thread: an ``async def`` tool can ``await asyncio.to_thread(ctx.wait, s)``.
        """
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
            raise InvalidArgumentError(f"wait() takes a number of seconds >= 0; got {seconds!r}")
        return self.cancel_event.wait(float(seconds))


class Tool:
    """A function the model can call: name, description, JSON schema, strict validation, invocation.

    Calling the Tool itself calls the function directly (a ToolContext is supplied if omitted).
    ``strict=False`` validates in pydantic's lax mode (``"5"`` accepted for an int), for weak models.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        strict: bool = True,
        needs_approval: bool | Callable[[dict[str, Any]], bool] = False,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"tool() takes the function to wrap; got {fn!r}. To name a tool: @tool(name=...)")
        functools.update_wrapper(self, fn, updated=())
        self.fn = fn
        self.name: str = name if name is not None else getattr(fn, "__name__", "")
        if not isinstance(self.name, str) or not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", self.name):
            fixed = re.sub(r"[^a-zA-Z0-9_-]", "_", str(self.name))[:64] or "my_tool"
            raise ToolError(
                f"tool name {self.name!r} is not allowed: it must match ^[a-zA-Z0-9_-]{{1,64}}$ (letters, "
                f"digits, '_' and '-', 1 to 64 characters). Pass e.g. @tool(name={fixed!r})."
            )
        spec = function_schema(fn, self.name, ToolContext)
        self.description: str = spec.description if description is None else inspect.cleandoc(description)
        self.strict = strict
        if not (isinstance(needs_approval, bool) or callable(needs_approval)):
            raise InvalidArgumentError(
                f"needs_approval={needs_approval!r} is not valid; expected True, False, or a function of the "
                "validated arguments returning a bool, e.g. needs_approval=lambda args: args['amount'] > 50."
            )
        #: ``True``, ``False``, or a function of the validated arguments (a dict) that decides per call
        self.needs_approval = needs_approval
        self.is_async = inspect.iscoroutinefunction(fn)
        self.arguments_model: type[pydantic.BaseModel] = spec.model
        self.parameters: dict[str, Any] = spec.parameters  # JSON schema of the arguments
        self.context_param: str | None = spec.context_param  # where the ToolContext goes, if anywhere
        self._aliases = spec.aliases  # model field -> parameter name
        self._signature = inspect.signature(fn)

    def requires_approval(self, arguments: Mapping[str, Any]) -> bool:
        """Whether a call with these validated arguments waits for a person's decision before it
        runs. A ``needs_approval`` function that raises counts as "yes": a person looks at it."""
        rule = self.needs_approval
        if isinstance(rule, bool):
            return rule
        try:
            return bool(rule(dict(arguments)))
        except Exception:
            return True

    @property
    def schema(self) -> dict[str, Any]:
        """The OpenAI tool definition: ``{"type": "function", "function": {name, description, parameters}}``
        (a fresh copy: the caller may change it)."""
        function = {"name": self.name, "description": self.description, "parameters": self.parameters}
        return {"type": "function", "function": copy.deepcopy(function)}

    def __repr__(self) -> str:
        return f"<Tool {self.name}({', '.join(self._aliases.values())})>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function directly, as if undecorated; a blank ToolContext fills an omitted one."""
        if self.context_param is not None:
            bound = self._signature.bind_partial(*args, **kwargs)
            bound.arguments.setdefault(self.context_param, ToolContext(tool_name=self.name))
            return self.fn(*bound.args, **bound.kwargs)
        return self.fn(*args, **kwargs)

    def validate(self, arguments_json: str) -> dict[str, Any]:
        """Parse and strictly validate the model's argument text into the values to call with; raises
        ToolArgumentsError with a message meant to go back to the model."""
        if not isinstance(arguments_json, str):
            raise InvalidArgumentError(
                f"validate() takes the JSON text of the arguments; got "
                f"{type(arguments_json).__name__}. Pass json.dumps(arguments)."
            )
        text = arguments_json if arguments_json.strip() else "{}"  # some models send "" for no arguments
        try:
            json.loads(text)
        except ValueError as exc:
            shown = text if len(text) <= 120 else text[:119] + "…"
            raise ToolArgumentsError(
                self._message([f"the arguments are not valid JSON ({exc}); the text was: {shown}"])
            ) from exc
        except RecursionError:
            raise ToolArgumentsError(
                self._message(["the arguments are nested too deeply to read; send a flat JSON object"])
            ) from None
        try:
            obj = self.arguments_model.model_validate_json(text, strict=self.strict)
        except pydantic.ValidationError as exc:
            problems = [self._describe(err) for err in exc.errors(include_url=False)]
            raise ToolArgumentsError(self._message(problems)) from exc
        return {self._aliases[f]: getattr(obj, f) for f in self._aliases}

    def _describe(self, err: Any) -> str:
        """One line per pydantic error: where (``items[0].qty``), the value given, what was expected."""
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        loc = loc or "(arguments)"
        if err["type"] == "missing":
            prop = self.parameters["properties"].get(loc, {})
            kind = f" (type: {prop['type']})" if isinstance(prop.get("type"), str) else ""
            return f"{loc}: missing; it is required{kind}"
        if err["type"] == "extra_forbidden" and len(err["loc"]) == 1:
            allowed = ", ".join(self._aliases.values()) or "no arguments"
            return f"{loc}: unexpected argument, got {_show(err['input'])}; {self.name} takes only: {allowed}"
        return f"{loc}: got {_show(err['input'])}; {err['msg']}"

    def _message(self, problems: list[str]) -> str:
        lines = "\n".join(f"- {p}" for p in problems)
        return (
            f"Invalid arguments for tool {self.name}:\n{lines}\n"
            f"Call {self.name} again with arguments matching its schema."
        )

    def _call(self, arguments: Mapping[str, Any], ctx: ToolContext | None) -> Any:
        unknown = sorted(set(arguments) - set(self._aliases.values()))
        if unknown:
            raise InvalidArgumentError(
                f"tool {self.name} has no parameter(s) {', '.join(unknown)}; its "
                f"parameters are: {', '.join(self._aliases.values()) or 'none'}"
            )
        values: OrderedDict[str, Any] = OrderedDict(arguments)
        if self.context_param is not None:
            values[self.context_param] = ctx if ctx is not None else ToolContext(tool_name=self.name)
        bound = inspect.BoundArguments(self._signature, values)
        return self.fn(*bound.args, **bound.kwargs)

    def invoke(self, arguments: Mapping[str, Any], ctx: ToolContext | None = None) -> Any:
        """Call the tool with validated ``arguments``; an async tool is run to completion."""
        result = self._call(arguments, ctx)
        return _run_sync(result) if inspect.isawaitable(result) else result

    async def ainvoke(self, arguments: Mapping[str, Any], ctx: ToolContext | None = None) -> Any:
        """Async twin of :meth:`invoke`; a sync tool runs in a worker thread, not blocking the loop."""
        if self.is_async:
            return await self._call(arguments, ctx)
        result = await asyncio.to_thread(self._call, arguments, ctx)
        return (await result) if inspect.isawaitable(result) else result

    def result_to_text(self, result: Any) -> str:
        """The text sent back to the model: a str as is, else JSON; str() for what JSON cannot hold."""
        if isinstance(result, str):
            return result
        try:
            data = to_jsonable_python(result)
        except PydanticSerializationError:
            if not (isinstance(result, (dict, list, tuple, pydantic.BaseModel)) or dataclasses.is_dataclass(result)):
                return str(result)
            data = to_jsonable_python(result, fallback=str)  # a container: keep its shape
        return json.dumps(data, ensure_ascii=False)


Approval = bool | Callable[[dict[str, Any]], bool]


@overload
def tool(
    fn: Callable[..., Any], /, *, name: str | None = ..., description: str | None = ..., strict: bool = ...,
    needs_approval: Approval = ...,
) -> Tool: ...  # fmt: skip
@overload
def tool(
    *, name: str | None = ..., description: str | None = ..., strict: bool = ..., needs_approval: Approval = ...
) -> Callable[[Callable[..., Any]], Tool]: ...
def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    strict: bool = True,
    needs_approval: Approval = False,
    **unknown: Any,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a function a tool: ``@tool`` or ``@tool(name=..., description=..., strict=True)``.

    ``name`` defaults to the function's name, ``description`` to its docstring's prose; ``strict=False``
    validates the model's arguments in pydantic's lax mode (``"5"`` accepted for an int).
    ``needs_approval=True`` (or a function of the validated arguments, e.g. ``lambda a: a["amount"] > 50``)
    makes a call wait for a person's decision (``store.approve_tool_call`` / ``deny_tool_call``, the
    views' buttons, ``threadwidget approve``) before it runs.
    """
    if unknown:
        raise TypeError(
            f"tool() got unknown keyword argument(s): {', '.join(sorted(unknown))}; it accepts "
            "name, description, strict and needs_approval"
        )
    if fn is None:
        return lambda f: Tool(f, name=name, description=description, strict=strict, needs_approval=needs_approval)
    return Tool(fn, name=name, description=description, strict=strict, needs_approval=needs_approval)


def _show(value: Any, limit: int = 120) -> str:
    """A value as the model sent it (JSON), with its JSON type, shortened."""
    text = "null" if value is None else json.dumps(value, ensure_ascii=False, default=repr)
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    kind = _JSON_TYPES.get(type(value))
    return f"{text} ({kind})" if kind else text


def _run_sync(awaitable: Awaitable[Any]) -> Any:
    """Run an awaitable to completion from sync code, in a worker thread if this thread runs a loop."""

    async def main() -> Any:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="threadwidget-tool") as pool:
        return pool.submit(asyncio.run, main()).result()
