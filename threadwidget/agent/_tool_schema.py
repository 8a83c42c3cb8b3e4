"""Build a tool's argument model and JSON schema from a function's signature, hints and docstring.

Each parameter becomes a pydantic field (the parameter's default is the field's default; a description
comes from ``Annotated[..., Field(description=...)]`` or, failing that, from the docstring's ``Args:``
or ``:param:`` entry). Fields are named ``p0``, ``p1``... with the parameter name as alias, so a
parameter may be called ``json`` or ``_x`` without clashing with pydantic. The parameter annotated
with the context type is left out: the runtime fills it in.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Union

import pydantic
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema

from threadwidget._errors import ToolError

__all__ = ["FunctionSchema", "function_schema", "parse_docstring"]

_PARAM_SECTIONS = {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments"}
_SECTION = re.compile(
    r"^(args|arguments|parameters|params|keyword arg(?:ument)?s|returns?|yields?|raises|"
    r"examples?|notes?|see also|attributes)\s*:?\s*$",
    re.IGNORECASE,
)
_GOOGLE_ARG = re.compile(r"^(\s*)\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX_FIELD = re.compile(r"^:(\w+)(?:\s+(?:[^:]*\s)?(\w+))?\s*:\s*(.*)$")


@dataclass(frozen=True)
class FunctionSchema:
    description: str  # the docstring's prose
    model: type[pydantic.BaseModel]
    parameters: dict[str, Any]  # JSON schema: an object with additionalProperties false and required
    aliases: dict[str, str]  # model field name -> parameter name, in signature order
    context_param: str | None  # the parameter the context is passed to, if any


class _NoFieldTitles(GenerateJsonSchema):
    """Leave out generated "Order Id"-style titles: noise for a model, the names say it."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def function_schema(fn: Callable[..., Any], tool_name: str, context_type: type) -> FunctionSchema:
    """Raises ToolError naming the function, the parameter and the fix when a schema cannot be built."""
    where = f"tool {tool_name}: {getattr(fn, '__qualname__', fn)}()"
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:
        raise ToolError(
            f"{where}: cannot resolve its type hints ({exc}); define or import the types it names at module level"
        ) from exc
    description, param_docs = parse_docstring(inspect.getdoc(fn) or "")
    fields: dict[str, Any] = {}
    aliases: dict[str, str] = {}
    context_param = None
    for i, (pname, param) in enumerate(inspect.signature(fn).parameters.items()):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolError(
                f"{where} takes *{pname} or **{pname}; a tool needs named, typed parameters: "
                "replace it with explicit ones"
            )
        if pname not in hints:
            raise ToolError(
                f"{where}: parameter {pname!r} has no type hint; add a type hint (e.g. "
                f"`{pname}: str`) so the model gets a schema for it"
            )
        hint = hints[pname]
        if _is_context(hint, context_type):
            if context_param is not None:
                raise ToolError(
                    f"{where} has two {context_type.__name__} parameters ({context_param!r}, {pname!r}); keep one"
                )
            context_param = pname
            continue
        default = ... if param.default is param.empty else param.default
        desc = None if _has_description(hint) else param_docs.get(pname)
        info = (
            pydantic.Field(default, alias=pname)
            if desc is None
            else pydantic.Field(default, alias=pname, description=desc)
        )
        fields[f"p{i}"] = (hint, info)
        aliases[f"p{i}"] = pname
    try:
        model = pydantic.create_model(tool_name, __config__=pydantic.ConfigDict(extra="forbid"), **fields)
        raw = model.model_json_schema(schema_generator=_NoFieldTitles)
    except pydantic.PydanticUserError as exc:  # PydanticSchemaGenerationError is one
        raise ToolError(
            f"{where}: cannot build a JSON schema for its parameters ({exc}); use JSON-friendly "
            "types: str, int, float, bool, list, dict, Literal, Enum, pydantic models, "
            "dataclasses"
        ) from exc
    raw.pop("title", None)
    parameters = {"type": "object", "properties": {}, "required": [], **raw, "additionalProperties": False}
    return FunctionSchema(description, model, parameters, aliases, context_param)


def _is_context(hint: Any, context_type: type) -> bool:
    origin = typing.get_origin(hint)
    if origin is Annotated:
        return _is_context(typing.get_args(hint)[0], context_type)
    if origin is Union or origin is types.UnionType:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return len(args) == 1 and _is_context(args[0], context_type)
    return isinstance(hint, type) and issubclass(hint, context_type)


def _has_description(hint: Any) -> bool:
    return typing.get_origin(hint) is Annotated and any(
        isinstance(m, FieldInfo) and m.description for m in typing.get_args(hint)[1:]
    )


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a cleaned docstring (``inspect.getdoc``) into its prose and the parameter descriptions it
    gives: Google ``Args:`` entries or Sphinx ``:param name:`` fields. Other sections (Returns, Raises,
    NumPy-style underlined ones...) are left out of both."""
    prose: list[str] = []
    params: dict[str, str] = {}
    section, current, indent = "", None, -1
    for line in doc.splitlines():
        stripped = line.strip()
        if field := _SPHINX_FIELD.match(stripped):
            section, current = "sphinx", field[2] if field[1] == "param" else None
            if current:
                params[current] = field[3]
        elif header := _SECTION.match(stripped):
            section, current, indent = header[1].lower(), None, -1
        elif section and stripped and set(stripped) == {"-"}:  # a NumPy underline: skipped, not parsed
            section, current = "numpy", None
        elif not section:
            prose.append(line)
        elif (
            section in _PARAM_SECTIONS
            and (entry := _GOOGLE_ARG.match(line))
            and (indent < 0 or len(entry[1]) <= indent)
        ):
            indent, current = len(entry[1]), entry[2]
            params[current] = entry[3]
        elif current and stripped:  # a continuation line
            params[current] = f"{params[current]} {stripped}"
    return "\n".join(prose).strip(), {k: v.strip() for k, v in params.items() if v.strip()}
