"""Tools: schema from type hints, strict validation with messages for the model, invocation, context."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import json
import threading
from typing import Annotated, Literal, Optional

import pydantic
import pytest
from pydantic import BaseModel, Field

from threadwidget._errors import InvalidArgumentError, ToolArgumentsError, ToolError
from threadwidget.agent._tool_schema import parse_docstring
from threadwidget.agent._tools import Tool, ToolCancelled, ToolContext, tool


class Item(BaseModel):
    sku: str
    qty: int


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass
class Point:
    x: int
    y: int


@tool
def lookup_order(
    order_id: str,
    ctx: ToolContext,
    limit: Annotated[int, Field(description="How many rows at most.", ge=1)] = 10,
    items: list[Item] | None = None,
    mode: Literal["fast", "full"] = "fast",
) -> dict:
    """Look up an order by id.

    Returns its status.

    Args:
        order_id: The order's id,
            as printed on the receipt.
        limit: Ignored: the Annotated description wins.

    Returns:
        A dict with the status.
    """
    ctx.progress(0.5, "querying warehouse")
    return {"order_id": order_id, "limit": limit, "items": items, "mode": mode, "ctx": ctx}


def problems(exc: pytest.ExceptionInfo[ToolArgumentsError]) -> list[str]:
    return [line[2:] for line in str(exc.value).splitlines() if line.startswith("- ")]


# --- schema ---------------------------------------------------------------------------------------


def test_schema_comes_from_type_hints_defaults_and_descriptions() -> None:
    schema = lookup_order.schema
    assert schema["type"] == "function"
    function = schema["function"]
    assert function["name"] == "lookup_order"
    assert function["description"] == "Look up an order by id.\n\nReturns its status."
    params = function["parameters"]
    assert params["type"] == "object"
    assert params["additionalProperties"] is False
    assert params["required"] == ["order_id"]
    assert list(params["properties"]) == ["order_id", "limit", "items", "mode"]  # ctx never shown
    assert params["properties"]["order_id"] == {
        "type": "string",
        "description": "The order's id, as printed on the receipt.",
    }
    assert params["properties"]["limit"] == {
        "type": "integer",
        "default": 10,
        "minimum": 1,
        "description": "How many rows at most.",
    }
    assert params["properties"]["mode"] == {"type": "string", "enum": ["fast", "full"], "default": "fast"}
    assert params["properties"]["items"]["anyOf"][0] == {"type": "array", "items": {"$ref": "#/$defs/Item"}}
    assert params["$defs"]["Item"]["required"] == ["sku", "qty"]
    assert "title" not in params
    assert "ctx" not in json.dumps(params)


def test_schema_is_a_fresh_copy() -> None:
    lookup_order.schema["function"]["parameters"]["properties"].clear()
    assert "order_id" in lookup_order.schema["function"]["parameters"]["properties"]


def test_decorator_options_and_a_function_without_parameters() -> None:
    @tool(name="ping-1", description="  Says pong.\n  Nothing else.")
    def ping() -> str:
        """Not used: description= wins."""
        return "pong"

    assert isinstance(ping, Tool)
    assert ping.name == "ping-1"
    assert ping.schema["function"]["description"] == "Says pong.\nNothing else."
    assert ping.parameters == {"type": "object", "properties": {}, "required": [], "additionalProperties": False}
    assert ping.validate("") == {}  # some models send no text for no arguments
    assert ping.validate("{}") == {}
    assert ping() == "pong"
    assert vars(ping)["__name__"] == "ping"  # functools.update_wrapper


def test_parameter_names_that_clash_with_pydantic_keep_their_names() -> None:
    @tool
    def f(json: bool, model_config: str, _hidden: int = 1) -> None:
        """Names pydantic would refuse or warn about."""

    assert list(f.parameters["properties"]) == ["json", "model_config", "_hidden"]
    assert f.validate('{"json": true, "model_config": "x", "_hidden": 3}') == {
        "json": True,
        "model_config": "x",
        "_hidden": 3,
    }


def test_sphinx_docstring_and_optional_context() -> None:
    @tool
    def g(query: str, context: Optional[ToolContext] = None) -> str:  # noqa: UP045
        """Search the docs.

        :param query: What to search for,
            in plain words.
        :returns: the best hit.
        """
        return query

    assert g.context_param == "context"
    assert g.description == "Search the docs."
    assert g.parameters["properties"] == {
        "query": {"type": "string", "description": "What to search for, in plain words."}
    }


def test_parse_docstring_skips_other_sections() -> None:
    prose, params = parse_docstring(
        "Do it.\n\nArgs:\n    a (int): first\n    b: second\n        more\n\nRaises:\n    ValueError: bad\n"
    )
    assert prose == "Do it."
    assert params == {"a": "first", "b": "second more"}
    assert parse_docstring("Sum.\n\nParameters\n----------\nx : int\n    a number\n") == ("Sum.", {})


# --- definition errors ----------------------------------------------------------------------------


def test_missing_type_hint_names_function_parameter_and_fix() -> None:
    def untyped(order_id, ctx: ToolContext) -> str:  # type: ignore[no-untyped-def]
        return str(order_id)

    with pytest.raises(ToolError) as exc:
        tool(untyped)
    message = str(exc.value)
    assert "untyped" in message
    assert "'order_id'" in message
    assert "add a type hint" in message


@pytest.mark.parametrize("name", ["has space", "", "x" * 65, "näme", "a.b", "ok\n"])
def test_bad_tool_name_names_the_name_and_the_rule(name: str) -> None:
    with pytest.raises(ToolError) as exc:
        tool(name=name)(lambda: None)
    assert repr(name) in str(exc.value)
    assert "^[a-zA-Z0-9_-]{1,64}$" in str(exc.value)


def test_lambda_needs_a_name() -> None:
    with pytest.raises(ToolError, match="'<lambda>'"):
        tool(lambda: None)
    assert tool(lambda: 1, name="one")() == 1


def test_unknown_keyword_argument_to_tool_is_rejected() -> None:
    with pytest.raises(TypeError, match="nmae"):
        tool(nmae="x")  # type: ignore[call-overload]


def test_star_args_unresolvable_and_unsupported_hints_are_tool_errors() -> None:
    def star(*args: int) -> None: ...

    def forward(x: NotDefinedAnywhere) -> None: ...  # type: ignore[name-defined] # noqa: F821

    def weird(x: threading.Lock) -> None: ...

    with pytest.raises(ToolError, match=r"\*args"):
        tool(star)
    with pytest.raises(ToolError, match="NotDefinedAnywhere"):
        tool(forward)
    with pytest.raises(ToolError, match="JSON-friendly types"):
        tool(weird)


def test_two_context_parameters_are_refused() -> None:
    def two(a: ToolContext, b: ToolContext) -> None: ...

    with pytest.raises(ToolError, match="two ToolContext"):
        tool(two)


# --- strict validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"order_id": 42}', "order_id: got 42 (integer); Input should be a valid string"),
        ('{"order_id": "a", "limit": "5"}', 'limit: got "5" (string); Input should be a valid integer'),
        ('{"order_id": "a", "limit": 0}', "limit: got 0 (integer); Input should be greater than or equal to 1"),
        ('{"order_id": "a", "mode": "slow"}', "mode: got \"slow\" (string); Input should be 'fast' or 'full'"),
        (
            '{"order_id": "a", "colour": "red"}',
            'colour: unexpected argument, got "red" (string); lookup_order takes only: order_id, limit, items, mode',
        ),
        ('{"limit": 3}', "order_id: missing; it is required (type: string)"),
        (
            '{"order_id": "a", "items": [{"sku": "x", "qty": "2"}]}',
            'items[0].qty: got "2" (string); Input should be a valid integer',
        ),
        ('{"order_id": "a", "items": [{"sku": "x"}]}', "items[0].qty: missing; it is required"),
        ("[1, 2]", "(arguments): got [1, 2] (array); Input should be an object"),
    ],
)
def test_invalid_arguments_name_field_value_and_expectation(arguments: str, expected: str) -> None:
    with pytest.raises(ToolArgumentsError) as exc:
        lookup_order.validate(arguments)
    message = str(exc.value)
    assert message.startswith("Invalid arguments for tool lookup_order:\n")
    assert message.endswith("\nCall lookup_order again with arguments matching its schema.")
    assert expected in problems(exc)


def test_every_problem_is_listed() -> None:
    with pytest.raises(ToolArgumentsError) as exc:
        lookup_order.validate('{"limit": "5", "extra": null}')
    assert len(problems(exc)) == 3
    assert "extra: unexpected argument, got null;" in str(exc.value)


@pytest.mark.parametrize("text", ["not json", '{"order_id": "a",}', '{"order_id": "a"'])
def test_invalid_json_is_an_arguments_error(text: str) -> None:
    with pytest.raises(ToolArgumentsError) as exc:
        lookup_order.validate(text)
    assert "not valid JSON" in str(exc.value)
    assert text in str(exc.value)
    assert str(exc.value).endswith("Call lookup_order again with arguments matching its schema.")


def test_validate_wants_text() -> None:
    with pytest.raises(InvalidArgumentError, match=r"json\.dumps"):
        lookup_order.validate({"order_id": "a"})  # type: ignore[arg-type]


def test_strict_still_accepts_json_native_forms() -> None:
    @tool
    def book(when: dt.datetime, colour: Colour, at: Point, ratio: float, pair: tuple[int, int]) -> None:
        """Book a slot."""

    values = book.validate(
        '{"when": "2024-05-01T10:00:00Z", "colour": "red", "at": {"x": 1, "y": 2}, "ratio": 2, "pair": [1, 2]}'
    )
    assert values == {
        "when": dt.datetime(2024, 5, 1, 10, tzinfo=dt.timezone.utc),
        "colour": Colour.RED,
        "at": Point(1, 2),
        "ratio": 2.0,
        "pair": (1, 2),
    }


def test_lax_mode_when_strict_is_false() -> None:
    @tool(strict=False)
    def add(a: int, b: int) -> int:
        return a + b

    assert add.invoke(add.validate('{"a": "5", "b": 2}')) == 7
    with pytest.raises(ToolArgumentsError, match="unexpected argument"):
        add.validate('{"a": 1, "b": 2, "c": 3}')  # extra keys stay errors


# --- invocation -----------------------------------------------------------------------------------


def test_valid_arguments_call_the_function_with_ctx_injected() -> None:
    seen: list[tuple[float | None, str | None]] = []
    ctx = ToolContext("t1", "m1", "call_1", "lookup_order", on_progress=lambda f, n: seen.append((f, n)))
    values = lookup_order.validate('{"order_id": "42", "items": [{"sku": "a", "qty": 2}]}')
    assert values == {"order_id": "42", "limit": 10, "items": [Item(sku="a", qty=2)], "mode": "fast"}
    result = lookup_order.invoke(values, ctx)
    assert result["ctx"] is ctx
    assert isinstance(result["items"][0], Item)
    assert seen == [(0.5, "querying warehouse")]


def test_direct_calls_work_like_the_plain_function() -> None:
    result = lookup_order("7", limit=2)  # no ctx: a blank one is supplied
    assert (result["order_id"], result["limit"]) == ("7", 2)
    assert isinstance(result["ctx"], ToolContext)
    ctx = ToolContext()
    assert lookup_order("7", ctx)["ctx"] is ctx
    assert lookup_order(order_id="7", ctx=ctx)["ctx"] is ctx
    with pytest.raises(TypeError):
        lookup_order("7", nope=1)


def test_invoke_refuses_unknown_arguments() -> None:
    with pytest.raises(InvalidArgumentError, match="bogus"):
        lookup_order.invoke({"order_id": "1", "bogus": 2}, ToolContext())


def test_errors_raised_by_the_tool_propagate() -> None:
    @tool
    def boom(x: int) -> None:
        raise RuntimeError(f"boom {x}")

    with pytest.raises(RuntimeError, match="boom 3"):
        boom.invoke({"x": 3})


@tool
async def slow_double(x: int, ctx: ToolContext) -> int:
    """Double x, asynchronously."""
    await asyncio.sleep(0)
    ctx.progress(1.0)
    return x * 2


def test_async_tool_invoke_without_a_running_loop() -> None:
    assert slow_double.is_async
    assert slow_double.schema["function"]["parameters"]["properties"] == {"x": {"type": "integer"}}
    assert slow_double.invoke(slow_double.validate('{"x": 21}'), ToolContext()) == 42


def test_async_tool_invoke_and_ainvoke_inside_a_running_loop() -> None:
    async def main() -> tuple[int, int, int]:
        from_sync = slow_double.invoke({"x": 1}, ToolContext())  # runs in a worker thread
        return from_sync, await slow_double.ainvoke({"x": 2}, ToolContext()), await slow_double(3)

    assert asyncio.run(main()) == (2, 4, 6)


def test_sync_tool_ainvoke_runs_off_the_event_loop_thread() -> None:
    @tool
    def where() -> str:
        return threading.current_thread().name

    async def main() -> str:
        return await where.ainvoke({})

    assert asyncio.run(main()) != threading.current_thread().name


# --- context: progress and cancellation -------------------------------------------------------------


def test_progress_reaches_the_callback() -> None:
    seen: list[tuple[float | None, str | None]] = []
    ctx = ToolContext("t", None, "c", "x", on_progress=lambda f, n: seen.append((f, n)))
    ctx.progress(0)
    ctx.progress(1, "done")
    ctx.progress(note="no fraction")
    assert seen == [(0.0, None), (1.0, "done"), (None, "no fraction")]
    assert all(isinstance(f, float) for f, _ in seen if f is not None)


@pytest.mark.parametrize("fraction", [1.5, -0.1, float("nan"), True, "0.5"])
def test_progress_out_of_range_names_the_value_and_range(fraction: object) -> None:
    seen: list[object] = []
    ctx = ToolContext("t", None, "c", "x", on_progress=lambda f, n: seen.append(f))
    with pytest.raises(InvalidArgumentError) as exc:
        ctx.progress(fraction)  # type: ignore[arg-type]
    assert repr(fraction) in str(exc.value)
    assert "from 0 to 1" in str(exc.value)
    assert seen == []


def test_context_without_callbacks_is_a_no_op() -> None:
    ctx = ToolContext()
    ctx.progress(0.3, "fine")
    assert not ctx.cancelled
    ctx.raise_if_cancelled()
    assert ctx.wait(0.001) is False


def test_wait_wakes_promptly_when_cancelled_from_another_thread() -> None:
    cancel = threading.Event()
    ctx = ToolContext("t", "m", "call_9", "slow", cancel_event=cancel)
    timer = threading.Timer(0.05, cancel.set)
    timer.start()
    try:
        assert ctx.wait(30) is True  # woken by the cancel: a full wait returns False
    finally:
        timer.cancel()
    assert ctx.cancelled
    with pytest.raises(ToolCancelled, match="slow") as exc:
        ctx.raise_if_cancelled()
    assert isinstance(exc.value, ToolError)


def test_a_slow_tool_stops_quickly_on_abort() -> None:
    @tool
    def crawl(pages: int, ctx: ToolContext) -> int:
        done = 0
        for _ in range(pages):
            if ctx.wait(1.0):
                break
            done += 1
        ctx.raise_if_cancelled()
        return done

    cancel = threading.Event()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            crawl.invoke({"pages": 100}, ToolContext(tool_name="crawl", cancel_event=cancel))
        except ToolCancelled as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    cancel.set()
    worker.join(timeout=10)  # 100 pages at 1 s each would take 100 s
    assert not worker.is_alive()
    assert len(outcome) == 1


@pytest.mark.parametrize("seconds", [-1, "1"])
def test_wait_rejects_bad_durations(seconds: object) -> None:
    with pytest.raises(InvalidArgumentError, match=repr(seconds)):
        ToolContext().wait(seconds)  # type: ignore[arg-type]


# --- results --------------------------------------------------------------------------------------


class Opaque:
    def __str__(self) -> str:
        return "<opaque thing>"


@pytest.mark.parametrize(
    ("result", "text"),
    [
        ({"a": 1, "b": [1, 2], "ü": None}, '{"a": 1, "b": [1, 2], "ü": null}'),
        (Item(sku="x", qty=2), '{"sku": "x", "qty": 2}'),
        (Point(1, 2), '{"x": 1, "y": 2}'),
        ("plain text, as is", "plain text, as is"),
        ([Item(sku="y", qty=1), dt.date(2024, 1, 2)], '[{"sku": "y", "qty": 1}, "2024-01-02"]'),
        (None, "null"),
        (3.5, "3.5"),
        (Opaque(), "<opaque thing>"),
        ({"thing": Opaque()}, '{"thing": "<opaque thing>"}'),
    ],
)
def test_result_to_text(result: object, text: str) -> None:
    assert lookup_order.result_to_text(result) == text


def test_tool_and_arguments_model_are_pydantic_backed() -> None:
    assert issubclass(lookup_order.arguments_model, pydantic.BaseModel)
    assert repr(lookup_order) == "<Tool lookup_order(order_id, limit, items, mode)>"

