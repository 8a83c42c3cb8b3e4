"""The two sides of the wire stay in step: js/src/protocol.ts and threadwidget/widgets/_wire.py.

A JSON schema is generated from each: from the TypeScript by ``ts-json-schema-generator`` (a dev
dependency of js/, ``scripts/wire-schema.mjs``), from the TypedDicts by pydantic. Both are reduced to
the same plain form (per named shape: each field, whether it is required, and the set of types it
may hold; TypeScript's ``number`` and Python's ``int``/``float`` are one, ``number``) and compared.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from typing import Any

import pytest
from pydantic import TypeAdapter

import threadwidget as tw
from threadwidget.widgets._wire import WIRE, parse_outbound

from .conftest import ROOT
from .widget_comm import RecordingComm, browser_sends, comms

__all__ = ["comms"]  # the fixture, imported for pytest

JS = ROOT / "js"
GENERATOR = JS / "node_modules" / "ts-json-schema-generator"

Shape = frozenset[Any]


def _atoms(node: dict[str, Any], defs: dict[str, Any]) -> Shape:
    """The types a schema node allows: ``string``, ``number``, ``boolean``, ``null``, literals,
    arrays of a shape, and named object shapes (``ref``); references to other types are resolved."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return frozenset({("ref", name)}) if "properties" in defs[name] else _atoms(defs[name], defs)
    for key in ("anyOf", "oneOf"):
        if key in node:
            return frozenset().union(*(_atoms(n, defs) for n in node[key]))
    if "const" in node:
        return frozenset({("literal", node["const"])})
    if "enum" in node:
        return frozenset(("literal", v) for v in node["enum"])
    types = node.get("type")
    out: set[Any] = set()
    for t in types if isinstance(types, list) else [types]:
        if t == "array":
            out.add(("array", _atoms(node["items"], defs)))
        elif t == "object":
            out.add(("object", _fields(node, defs)))
        else:
            out.add("number" if t == "integer" else t)
    return frozenset(out)


def _fields(node: dict[str, Any], defs: dict[str, Any]) -> Shape:
    required = set(node.get("required", ()))
    return frozenset((name, name in required, _atoms(sub, defs)) for name, sub in node.get("properties", {}).items())


def plain(defs: dict[str, Any]) -> dict[str, Shape]:
    """Named shapes: objects by their fields, the unions of ``WIRE`` by their members. (Other named
    types, such as ``Role``, are inlined where they are used: pydantic does not name Literals.)"""
    named = {name for name, d in defs.items() if "properties" in d} | WIRE.keys()
    return {
        name: _fields(d, defs) if "properties" in d else _atoms(d, defs) for name, d in defs.items() if name in named
    }


def typescript_side() -> dict[str, Any]:
    if shutil.which("node") is None or not GENERATOR.is_dir():
        reason = "node or js/node_modules is missing (`cd js && npm ci`): no TypeScript schema"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, and CI must compare the wire")
        pytest.skip(reason)
    out = subprocess.run(
        ["node", "scripts/wire-schema.mjs", *WIRE], cwd=JS, capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    defs: dict[str, Any] = json.loads(out.stdout)["definitions"]
    return defs


def python_side() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    for name, tp in WIRE.items():
        schema = TypeAdapter(tp).json_schema(ref_template="#/definitions/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[name] = schema
    return defs


def _say(field: tuple[str, bool, Shape] | None) -> str:
    if field is None:
        return "(no such field)"
    return f"{'required' if field[1] else 'optional'} {' | '.join(sorted(map(str, field[2])))}"


def differences(ts: dict[str, Shape], py: dict[str, Shape]) -> list[str]:
    found = [f"{name}: only in protocol.ts" for name in ts.keys() - py.keys()]
    found += [f"{name}: only in _wire.py" for name in py.keys() - ts.keys()]
    for name in sorted(ts.keys() & py.keys()):
        a, b = ts[name], py[name]
        if a == b:
            continue
        fields_a = {f[0]: f for f in a if isinstance(f, tuple) and len(f) == 3}
        fields_b = {f[0]: f for f in b if isinstance(f, tuple) and len(f) == 3}
        if not fields_a and not fields_b:
            found.append(f"{name}: protocol.ts {sorted(map(str, a))} != _wire.py {sorted(map(str, b))}")
            continue
        for field in sorted(fields_a.keys() | fields_b.keys()):
            fa, fb = fields_a.get(field), fields_b.get(field)
            if fa != fb:
                found.append(f"{name}.{field}: protocol.ts {_say(fa)} != _wire.py {_say(fb)}")
    return found


def test_protocol_ts_and_wire_py_describe_the_same_messages() -> None:
    ts, py = plain(typescript_side()), plain(python_side())
    assert differences(ts, py) == []
    # and the comparison sees what it should: the shapes of every message and trait
    assert {"Message", "ToolCall", "ThreadInfo", "DeltaMsg", "SendMsg", "ChatTraits", "AppTraits"} <= ts.keys()
    assert ("queue_position", False, frozenset({"number"})) in ts["Message"]
    assert ("usage", True, frozenset({("ref", "Usage"), "null"})) in py["Message"]


@pytest.mark.parametrize(
    ("content", "parsed"),
    [
        ({"kind": "send", "text": "hi"}, {"kind": "send", "text": "hi"}),
        ({"kind": "abort"}, {"kind": "abort"}),
        (
            {"kind": "load_older", "request_id": "r1", "before": "msg_1"},
            {"kind": "load_older", "request_id": "r1", "before": "msg_1"},
        ),
        ({"kind": "highlighter"}, {"kind": "highlighter"}),
        ({"kind": "abort", "why": "ignored"}, {"kind": "abort"}),
        ({"kind": "send", "text": 42}, None),
        ({"kind": "load_older", "request_id": "r1"}, None),
        ({"kind": "no-such-kind"}, None),
        (["not", "an", "object"], None),
    ],
)
def test_messages_from_a_view_are_checked_at_the_door(content: object, parsed: object) -> None:
    assert parse_outbound(content) == parsed


def test_a_malformed_message_from_a_view_is_logged_and_changes_nothing(
    store: tw.Store, comms: list[RecordingComm], caplog: pytest.LogCaptureFixture
) -> None:
    thread = store.create_thread(agent="support")
    view = tw.ChatView(thread.id, store=store)
    with caplog.at_level(logging.WARNING, logger="threadwidget.widgets"):
        browser_sends(view, {"kind": "send", "text": ["not", "text"]})
        browser_sends(view, {"kind": "load_older", "before": 42})
    assert store.list_messages(thread.id) == [] and view.error == ""
    assert isinstance(view.comm, RecordingComm) and view.comm.customs() == []
    assert caplog.text.count("protocol.ts does not know") == 2
    browser_sends(view, {"kind": "send", "text": "a real one"})
    assert [m.text for m in store.list_messages(thread.id)] == ["a real one"]
