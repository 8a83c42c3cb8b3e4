"""A thread taken away and brought back (a part of ``Store``): ``store.export`` as Markdown to
read, as a Jupyter notebook, or as JSON that ``store.import_thread`` restores row for row.

The JSON is a contract (``"format": "threadwidget-thread", "version": 1``): the thread's row, every
message of every branch, every tool call and every delta, each as an object of its columns, with
ids, texts, times (unix seconds) and metadata as stored. Runs (leases) and the change log are not
in it: they belong to the processes of the source.

Markdown and the notebook show the thread's current path: each message under a heading (who,
when), each tool call with its arguments and result. The notebook has a Markdown cell per message
and a code cell per tool call (the call as Python, its result or error as the cell's output), and
passes ``nbformat`` validation.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, cast

from .._errors import InvalidArgumentError
from .._text import iso_time
from ._checks import check_choice
from ._dialect import Conn
from ._part import StorePart
from ._rows import Message, Thread, ToolCall

if TYPE_CHECKING:
    from ._store import Store

__all__ = ["EXPORT_FORMATS", "Exports"]

EXPORT_FORMATS = ("markdown", "ipynb", "json")
FORMAT = "threadwidget-thread"
VERSION = 1
_NO_LIMIT = 1 << 62

THREAD_COLUMNS = ("id", "title", "user_id", "agent", "metadata", "created_at", "updated_at", "next_position",
                  "head_id", "forked_from", "forked_at")  # fmt: skip
MESSAGE_COLUMNS = ("id", "thread_id", "position", "step", "role", "text", "status", "error", "agent", "model",
                   "usage", "finish_reason", "metadata", "created_at", "updated_at", "reply_to", "turn",
                   "ends_answer", "user_id", "parent_id", "alternative", "chosen", "on_path")  # fmt: skip
TOOL_CALL_COLUMNS = ("id", "thread_id", "message_id", "call_id", "name", "arguments", "status", "progress",
                     "progress_note", "result", "error", "created_at", "started_at", "ended_at", "updated_at",
                     "decision", "decided_by", "decided_at", "decision_note")  # fmt: skip
DELTA_COLUMNS = ("message_id", "thread_id", "seq", "text", "created_at")
_TABLES = {"messages": MESSAGE_COLUMNS, "tool_calls": TOOL_CALL_COLUMNS, "deltas": DELTA_COLUMNS}
_ORDER = {"messages": "position", "tool_calls": "created_at, id", "deltas": "message_id, seq"}


class Exports(StorePart):
    """``export`` and ``import_thread`` (a part of ``Store``)."""

    def export(self, thread_id: str, format: str = "markdown") -> str:
        """The thread as ``"markdown"`` (to read), ``"ipynb"`` (a Jupyter notebook: messages as
        Markdown cells, tool calls as code cells with their arguments and results) or ``"json"``
        (every row of every branch, for ``store.import_thread`` / ``threadwidget import``)."""
        check_choice("format", format, EXPORT_FORMATS)
        thread = self.get_thread(thread_id)
        if format == "json":
            return json.dumps(self._rows(thread_id), ensure_ascii=False, indent=1)
        store = cast("Store", self)
        messages = store.list_messages(thread_id, limit=_NO_LIMIT)
        calls: dict[str, list[ToolCall]] = {}
        for call in store.list_tool_calls(thread_id):
            calls.setdefault(call.message_id, []).append(call)
        texts = {m.id: store.text(m.id) for m in messages}
        if format == "markdown":
            return _markdown(thread, messages, calls, texts)
        return json.dumps(_notebook(thread, messages, calls, texts), ensure_ascii=False, indent=1) + "\n"

    def _rows(self, thread_id: str) -> dict[str, Any]:
        conn = self._conn()
        row = conn.execute(f"SELECT {', '.join(THREAD_COLUMNS)} FROM threads WHERE id = ?", (thread_id,)).fetchone()
        data: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "thread": dict(zip(THREAD_COLUMNS, row, strict=True)),
        }
        for table, columns in _TABLES.items():
            rows = conn.execute(
                f"SELECT {', '.join(columns)} FROM {table} WHERE thread_id = ? ORDER BY {_ORDER[table]}", (thread_id,)
            ).fetchall()
            data[table] = [dict(zip(columns, r, strict=True)) for r in rows]
        return data

    def import_thread(self, data: str | bytes | dict[str, Any]) -> Thread:
        """Restore a thread exported with ``export(thread_id, format="json")`` into this store, row
        for row (ids, texts, times, metadata, every branch). Refused, with nothing written, when the
        store already has the thread or one of its messages or tool calls (import into another
        store, or delete it first). Views of this store see it appear."""
        parsed = _parse(data)
        thread_id = parsed["thread"]["id"]

        def write(conn: Conn, now: float) -> None:
            for table, key, ids in (
                ("threads", "id", [thread_id]),
                ("messages", "id", [m["id"] for m in parsed["messages"]]),
                ("tool_calls", "id", [c["id"] for c in parsed["tool_calls"]]),
            ):  # fmt: skip
                for i in range(0, len(ids), 500):
                    chunk = ids[i : i + 500]
                    found = conn.execute(
                        f"SELECT {key} FROM {table} WHERE {key} IN ({', '.join('?' * len(chunk))}) LIMIT 1", chunk
                    ).fetchone()
                    if found is not None:
                        raise InvalidArgumentError(
                            f"this store already has {table[:-1].replace('_', ' ')} {found[0]!r} of thread "
                            f"{thread_id!r}; import into another store, or delete the thread here first "
                            "(store.delete_thread)."
                        )
            _insert(conn, "threads", THREAD_COLUMNS, [parsed["thread"]])
            for table, columns in _TABLES.items():
                _insert(conn, table, columns, parsed[table])
            self._log(conn, thread_id, "thread", "insert", thread_id, now)

        self._write(write)
        return self.get_thread(thread_id)


def _insert(conn: Conn, table: str, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    for row in rows:
        conn.execute(sql, tuple(row[c] for c in columns))


def _parse(data: str | bytes | dict[str, Any]) -> dict[str, Any]:
    """The export, checked: its format and version, and every table with every column."""
    fix = "pass the text of store.export(thread_id, format='json') (threadwidget export THREAD --format json)"
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise InvalidArgumentError(f"the export is not JSON ({exc}); {fix}.") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InvalidArgumentError(f'this is not a threadwidget thread export (no "format": {FORMAT!r}); {fix}.')
    if data.get("version") != VERSION:
        raise InvalidArgumentError(
            f"the export has version {data.get('version')!r}, but this threadwidget reads version {VERSION}; "
            "upgrade threadwidget (pip install -U threadwidget) to import it."
        )
    for table, columns in (("thread", THREAD_COLUMNS), *_TABLES.items()):
        rows = [data.get(table)] if table == "thread" else data.get(table)
        if not isinstance(rows, list) or not all(isinstance(r, dict) and set(columns) <= set(r) for r in rows):
            raise InvalidArgumentError(
                f"the export's {table!r} is missing or lacks columns (expected {', '.join(columns)}); {fix}."
            )
    thread_id = data["thread"]["id"]
    if any(r["thread_id"] != thread_id for table in _TABLES for r in data[table]):
        raise InvalidArgumentError(f"the export holds rows of another thread than {thread_id!r}; {fix}.")
    return data


# -- reading copies ---------------------------------------------------------------------------------


def _who(m: Message) -> str:
    if m.role == "user":
        return f"user ({m.user_id})" if m.user_id else "user"
    if m.role == "assistant":
        if m.agent is None and m.user_id:
            return m.user_id
        return " · ".join(x for x in (m.agent or "assistant", m.model) if x)
    return m.role


def _fence(text: str, lang: str = "") -> str:
    """``text`` in a code fence longer than any run of backticks in it."""
    longest = max((len(r) for r in re.findall(r"`+", text)), default=0)
    mark = "`" * max(3, longest + 1)
    return f"{mark}{lang}\n{text}\n{mark}"


def _pretty(raw: str | None) -> str:
    if raw is None or raw == "":
        return ""
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except ValueError:
        return raw


def _heading(m: Message) -> str:
    note = "" if m.status == "success" else f" — {m.status}" + (f": {m.error}" if m.error else "")
    return f"**{_who(m)}** · {iso_time(m.created_at)}{note}"


def _markdown(thread: Thread, messages: list[Message], calls: dict[str, list[ToolCall]], texts: dict[str, str]) -> str:
    out = [f"# {thread.title or 'Untitled thread'}", "", f"Thread `{thread.id}`" + (
        f", forked from `{thread.forked_from}` at `{thread.forked_at}`" if thread.forked_from else ""
    ) + "."]  # fmt: skip
    for m in messages:
        out += ["", "---", "", _heading(m)]
        if texts[m.id]:
            out += ["", texts[m.id]]
        for c in calls.get(m.id, []):
            out += ["", f"Tool call `{c.name}` ({c.status}):", "", _fence(_pretty(c.arguments), "json")]
            if c.result is not None:
                out += ["", "Result:", "", _fence(_pretty(c.result), "json")]
            if c.error:
                out += ["", "Error:", "", _fence(c.error)]
    return "\n".join(out) + "\n"


def _call_source(c: ToolCall) -> str:
    """The call as Python: ``name(key=value, ...)`` when its arguments are a JSON object of
    identifiers, else the raw arguments in a comment."""
    head = f"# tool call {c.call_id}: {c.status}"
    try:
        args = json.loads(c.arguments) if c.arguments else {}
    except ValueError:
        args = None
    if isinstance(args, dict) and all(isinstance(k, str) and k.isidentifier() for k in args):
        return f"{head}\n{c.name}({', '.join(f'{k}={v!r}' for k, v in args.items())})"
    return f"{head}\n# arguments: {c.arguments}"


def _call_outputs(c: ToolCall) -> list[dict[str, Any]]:
    if c.error:
        return [{"output_type": "error", "ename": "ToolError", "evalue": c.error, "traceback": [c.error]}]
    if c.result is None:
        return []
    data: dict[str, Any] = {"text/plain": _pretty(c.result)}
    try:
        data["application/json"] = json.loads(c.result)
    except ValueError:
        pass
    if not isinstance(data.get("application/json"), (dict, list)):
        data.pop("application/json", None)  # nbformat takes JSON objects and arrays there
    return [{"output_type": "execute_result", "execution_count": None, "data": data, "metadata": {}}]


def _notebook(
    thread: Thread, messages: list[Message], calls: dict[str, list[ToolCall]], texts: dict[str, str]
) -> dict[str, Any]:
    cells: list[dict[str, Any]] = [
        {"cell_type": "markdown", "id": f"title-{thread.id}", "metadata": {},
         "source": f"# {thread.title or 'Untitled thread'}\n\nThread `{thread.id}`, exported from threadwidget."},
    ]  # fmt: skip
    for m in messages:
        meta = {"threadwidget": {"message_id": m.id, "role": m.role, "status": m.status}}
        text = texts[m.id]
        cells.append({"cell_type": "markdown", "id": m.id, "metadata": meta,
                      "source": _heading(m) + (f"\n\n{text}" if text else "")})  # fmt: skip
        for c in calls.get(m.id, []):
            cells.append({
                "cell_type": "code", "id": c.id, "execution_count": None, "source": _call_source(c),
                "metadata": {"threadwidget": {"tool_call_id": c.id, "name": c.name, "status": c.status}},
                "outputs": _call_outputs(c),
            })  # fmt: skip
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
            "threadwidget": {"thread_id": thread.id, "title": thread.title},
        },
        "cells": cells,
    }
