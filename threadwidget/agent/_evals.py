"""``tw.evaluate``: eval cases run against an agent, each checked against its expectations.

A case is a stored thread (replayed with ``tw.replay``; by default it expects the same tool calls
as recorded, and every call to match a recorded one) or prompts with expectations, from Python
(``tw.EvalCase``) or a JSON file (YAML with PyYAML installed)::

    {"cases": [{"name": "table for four",
                "prompts": ["A table for 4 at 19:00, please"],
                "expect": [{"tool_called": "book_table", "arguments": {"party_size": 4}},
                           {"text_contains": "booked"}, {"max_tokens": 2000}]}]}

Expectations (``tw.Expect``): a tool called / not called with arguments containing a JSON subset,
the answer's text matching a regex or containing a string, at most so many tokens, dollars or
seconds, the same tool calls as the stored thread, and any Python callable. Each failed one gives
a readable diff. ``EvalReport`` shows as text, as an HTML table in a notebook, and as JUnit XML.
"""

from __future__ import annotations

import difflib
import html
import json
import re
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import InvalidArgumentError, ThreadwidgetError
from .._text import one_line
from ..store import Store
from ._replay import ReplayResult, ToolCallRecord, UnmatchedMode, clone_agents, replay, run_prompts

if TYPE_CHECKING:
    from ._agent import Agent

__all__ = ["CaseResult", "EvalCase", "EvalReport", "Expect", "Expectation", "evaluate"]

Check = Callable[[ReplayResult], "str | None"]


@dataclass(frozen=True)
class Expectation:
    """One thing a case expects: ``name`` (how reports name it) and ``check`` (``None`` when it
    holds, else a readable diff)."""

    name: str
    check: Check = field(repr=False, compare=False)

    def __call__(self, result: ReplayResult) -> str | None:
        return self.check(result)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _subset_diff(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where ``actual`` is not a JSON superset of ``expected`` (objects: the expected keys; lists:
    item by item; values: equal, ``1`` is not ``true``), one line each."""
    where = path or "(arguments)"
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {_json(actual)}"]
        out: list[str] = []
        for key, value in expected.items():
            sub = f"{path}.{key}" if path else str(key)
            if key not in actual:
                out.append(f"{sub}: expected {_json(value)}, missing")
            else:
                out += _subset_diff(value, actual[key], sub)
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: expected {_json(expected)}, got {_json(actual)}"]
        pairs = enumerate(zip(expected, actual, strict=True))
        return [line for i, (e, a) in pairs for line in _subset_diff(e, a, f"{path}[{i}]")]
    if expected != actual or isinstance(expected, bool) != isinstance(actual, bool):
        return [f"{where}: expected {_json(expected)}, got {_json(actual)}"]
    return []


def _all_calls(result: ReplayResult, turn: int | None) -> list[tuple[int, ToolCallRecord]]:
    if turn is None:
        turns = result.turns
    else:
        turns = [result.turns[turn]] if -len(result.turns) <= turn < len(result.turns) else []
    return [(t.index, c) for t in turns for c in t.new_calls]


def _calls_text(calls: Sequence[tuple[int, ToolCallRecord]]) -> str:
    if not calls:
        return "  (no tool calls)"
    return "\n".join(f"  prompt {i + 1}: {one_line(c.signature, 200)}" for i, c in calls)


def _turn_name(turn: int) -> str:
    return "the last answer" if turn == -1 else f"the answer to prompt {turn + 1 if turn >= 0 else turn}"


def _answer(result: ReplayResult, turn: int) -> str | None:
    return result.turns[turn].new_text if -len(result.turns) <= turn < len(result.turns) else None


def _check_int(name: str, value: Any, *, least: float = 0, number: bool = False) -> None:
    kinds = (int, float) if number else (int,)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < least:
        kind = "number" if number else "int"
        raise InvalidArgumentError(f"{name}={value!r} is not valid; expected a {kind} >= {least}.")


class Expect:
    """The expectations a case can hold (each returns an ``Expectation``)."""

    @staticmethod
    def tool_called(name: str, arguments: dict[str, Any] | None = None, *, turn: int | None = None) -> Expectation:
        """Some answer (or the answer to prompt ``turn``, 0-based) called tool ``name`` with arguments
        containing ``arguments`` (a JSON subset: the keys given, with those values)."""
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"tool_called({name!r}) is not valid; expected a tool name.")
        want = arguments or {}
        label = f"tool_called {name}" + (f" {_json(want)}" if want else "")

        def check(result: ReplayResult) -> str | None:
            calls = _all_calls(result, turn)
            named = [c for _, c in calls if c.name == name]
            if any(not _subset_diff(want, c.arguments) for c in named):
                return None
            head = f"expected a call of {name}" + (f" with arguments containing {_json(want)}" if want else "")
            lines = [head, "got:", _calls_text(calls)]
            if named:  # how the nearest call differs
                nearest = min(named, key=lambda c: len(_subset_diff(want, c.arguments)))
                lines += ["differences:", *(f"  {d}" for d in _subset_diff(want, nearest.arguments))]
            return "\n".join(lines)

        return Expectation(label, check)

    @staticmethod
    def tool_not_called(name: str, arguments: dict[str, Any] | None = None, *, turn: int | None = None) -> Expectation:
        """No answer called tool ``name`` (with arguments containing ``arguments``, when given)."""
        want = arguments or {}
        label = f"tool_not_called {name}" + (f" {_json(want)}" if want else "")

        def check(result: ReplayResult) -> str | None:
            hits = [
                (i, c) for i, c in _all_calls(result, turn) if c.name == name and not _subset_diff(want, c.arguments)
            ]
            if not hits:
                return None
            return f"expected no call of {name}" + (f" with arguments containing {_json(want)}" if want else "") + (
                "\ngot:\n" + _calls_text(hits))  # fmt: skip

        return Expectation(label, check)

    @staticmethod
    def text_matches(pattern: str, *, turn: int = -1) -> Expectation:
        """The answer to prompt ``turn`` (default: the last) matches the regex ``pattern`` (``re.search``)."""
        try:
            regex = re.compile(pattern)
        except (re.error, TypeError) as exc:
            raise InvalidArgumentError(f"text_matches({pattern!r}) is not a valid regex: {exc}.") from None

        def check(result: ReplayResult) -> str | None:
            text = _answer(result, turn)
            if text is not None and regex.search(text):
                return None
            return f"expected {_turn_name(turn)} to match /{pattern}/\ngot: {_json(text)}"

        return Expectation(f"text_matches /{pattern}/", check)

    @staticmethod
    def text_contains(needle: str, *, turn: int = -1) -> Expectation:
        """The answer to prompt ``turn`` (default: the last) contains ``needle``."""
        if not isinstance(needle, str) or not needle:
            raise InvalidArgumentError(f"text_contains({needle!r}) is not valid; expected a non-empty str.")

        def check(result: ReplayResult) -> str | None:
            text = _answer(result, turn)
            if text is not None and needle in text:
                return None
            return f"expected {_turn_name(turn)} to contain {_json(needle)}\ngot: {_json(text)}"

        return Expectation(f"text_contains {_json(needle)}", check)

    @staticmethod
    def max_tokens(limit: int) -> Expectation:
        """All the case's answers together used at most ``limit`` tokens (input and output)."""
        _check_int("max_tokens", limit)

        def check(result: ReplayResult) -> str | None:
            used = result.usage
            if used.total_tokens <= limit:
                return None
            got = f"{used.total_tokens} ({used.input_tokens} in, {used.output_tokens} out)"
            return f"expected at most {limit} tokens\ngot: {got}"

        return Expectation(f"max_tokens {limit}", check)

    @staticmethod
    def max_cost(dollars: float, *, input_per_million: float, output_per_million: float) -> Expectation:
        """The case's answers cost at most ``dollars`` at these prices (dollars per million tokens)."""
        for name, value in (("max_cost", dollars), ("input_per_million", input_per_million),
                            ("output_per_million", output_per_million)):  # fmt: skip
            _check_int(name, value, number=True)

        def check(result: ReplayResult) -> str | None:
            used = result.usage
            cost = (used.input_tokens * input_per_million + used.output_tokens * output_per_million) / 1e6
            if cost <= dollars:
                return None
            got = f"${cost:.6f} ({used.input_tokens} in, {used.output_tokens} out)"
            return f"expected a cost of at most ${dollars:g}\ngot: {got}"

        return Expectation(f"max_cost ${dollars:g}", check)

    @staticmethod
    def max_latency(seconds: float) -> Expectation:
        """Each answer took at most ``seconds`` (from its first step to its end)."""
        _check_int("max_latency", seconds, number=True)

        def check(result: ReplayResult) -> str | None:
            slow = [(t.index, t.new_seconds) for t in result.turns if t.new_seconds > seconds]
            if not slow:
                return None
            got = ", ".join(f"prompt {i + 1}: {s:.2f} s" for i, s in slow)
            return f"expected each answer within {seconds:g} s\ngot: {got}"

        return Expectation(f"max_latency {seconds:g} s", check)

    @staticmethod
    def same_tool_calls() -> Expectation:
        """Each answer makes the tool calls (names, arguments) the stored thread made, step by step;
        the parallel calls of one step may come in any order (``CaseResult.notes`` says when)."""

        def check(result: ReplayResult) -> str | None:
            if all(t.calls_match for t in result.turns):
                return None
            old = [f"prompt {t.index + 1}: {c.signature}" for t in result.turns for c in t.old_calls or ()]
            new = [f"prompt {t.index + 1}: {c.signature}" for t in result.turns  # a reordered answer is no diff
                   for c in (t.old_calls or () if t.calls_match else t.new_calls)]  # fmt: skip
            diff = difflib.unified_diff(old, new, "recorded", "replayed", lineterm="", n=1)
            same = [f"(prompt {t.index + 1}: the same calls, parallel ones in another order)"
                    for t in result.turns if t.calls_reordered]  # fmt: skip
            return "expected the recorded tool calls\n" + "\n".join([*diff, *same])

        return Expectation("same_tool_calls", check)

    @staticmethod
    def recorded_tools() -> Expectation:
        """Every tool call of the replay matched a recorded one."""

        def check(result: ReplayResult) -> str | None:
            if not result.unmatched:
                return None
            return "expected every tool call to match a recorded one\ngot:\n" + "\n".join(
                f"  {u}" for u in result.unmatched
            )

        return Expectation("recorded_tools", check)

    @staticmethod
    def check(fn: Callable[[ReplayResult], Any], name: str | None = None) -> Expectation:
        """``fn(result)`` (a ``tw.ReplayResult``) holds: it returns anything but ``False`` and does not
        raise (an ``AssertionError``'s message becomes the diff)."""
        if not callable(fn):
            raise InvalidArgumentError(f"check({fn!r}) is not valid; expected a function of the ReplayResult.")
        label = name or getattr(fn, "__name__", "check")

        def run(result: ReplayResult) -> str | None:
            try:
                ok = fn(result)
            except AssertionError as exc:
                return f"{label} failed: {exc}" if str(exc) else f"{label} failed"
            except Exception as exc:
                return f"{label} raised {type(exc).__name__}: {exc}"
            return f"{label} returned False" if ok is False else None

        return Expectation(f"check {label}", run)


#: the expectation keys of a case file, and the keys each may come with
_FILE_KEYS: dict[str, tuple[str, ...]] = {
    "tool_called": ("arguments", "turn"),
    "tool_not_called": ("arguments", "turn"),
    "text_matches": ("turn",),
    "text_contains": ("turn",),
    "max_tokens": (),
    "max_cost": ("input_per_million", "output_per_million"),
    "max_latency": (),
    "same_tool_calls": (),
}


def _expectation_from(data: Any, where: str) -> Expectation:
    if not isinstance(data, dict):
        raise InvalidArgumentError(f"{where}: {data!r} is not an expectation; expected an object such as "
                                   '{"tool_called": "book_table", "arguments": {"party_size": 4}}.')  # fmt: skip
    kinds = [k for k in data if k in _FILE_KEYS]
    if len(kinds) != 1:
        raise InvalidArgumentError(
            f"{where}: {_json(data)} names {len(kinds)} expectations; give exactly one of {', '.join(_FILE_KEYS)}."
        )
    kind = kinds[0]
    extra = set(data) - {kind, *_FILE_KEYS[kind]}
    if extra:
        allowed = ", ".join(_FILE_KEYS[kind]) or "nothing else"
        raise InvalidArgumentError(f"{where}: {kind} does not take {', '.join(sorted(extra))}; it takes {allowed}.")
    value, options = data[kind], {k: data[k] for k in _FILE_KEYS[kind] if k in data}
    try:
        if kind == "same_tool_calls":
            if value is not True:
                raise InvalidArgumentError('write "same_tool_calls": true')
            return Expect.same_tool_calls()
        factory = getattr(Expect, kind)
        return factory(value, **options)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{where}: {exc}") from None
    except TypeError as exc:
        raise InvalidArgumentError(f"{where}: {kind} {_json(value)}: {exc}.") from None


@dataclass
class EvalCase:
    """A case: a stored thread to replay (``thread_id``) or ``prompts`` to ask, and what to ``expect``.
    A thread case without expectations expects the recorded tool calls."""

    name: str
    thread_id: str | None = None
    prompts: list[str] | None = None
    expect: list[Expectation] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidArgumentError(f"EvalCase(name={self.name!r}) is not valid; expected a non-empty str.")
        if (self.thread_id is None) == (self.prompts is None):
            raise InvalidArgumentError(
                f"EvalCase {self.name!r}: pass thread_id= (a stored thread to replay) or prompts= (a list of "
                "prompts), exactly one."
            )
        if self.prompts is not None and (
            not isinstance(self.prompts, list) or not self.prompts
            or not all(isinstance(p, str) and p.strip() for p in self.prompts)
        ):  # fmt: skip
            raise InvalidArgumentError(
                f"EvalCase {self.name!r}: prompts={self.prompts!r} is not valid; expected a list of non-empty str."
            )
        self.expect = list(self.expect)
        for e in self.expect:
            if not isinstance(e, Expectation):
                raise InvalidArgumentError(
                    f"EvalCase {self.name!r}: {e!r} is not an expectation; use tw.Expect.tool_called(...) etc."
                )

    @classmethod
    def load(cls, path: str | Path) -> list[EvalCase]:
        """The cases of a JSON file (``.yaml``/``.yml``: YAML, with PyYAML installed): an object with
        ``cases``, a list of cases, or one case; each ``{"name", "prompts" or "thread", "expect"}``."""
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        try:
            if path.suffix in (".yaml", ".yml"):
                try:
                    import yaml
                except ImportError:
                    raise InvalidArgumentError(
                        f"{path} is YAML, and PyYAML is not installed; pip install 'threadwidget[yaml]', or write "
                        "the cases as JSON."
                    ) from None
                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except ValueError as exc:  # json.JSONDecodeError and yaml.YAMLError's subclasses of it
            raise InvalidArgumentError(f"{path} is not valid JSON: {exc}.") from None
        except Exception as exc:  # yaml.YAMLError
            raise InvalidArgumentError(f"{path} could not be read: {exc}.") from None
        items = data.get("cases") if isinstance(data, dict) and "cases" in data else data
        items = [items] if isinstance(items, dict) else items
        if not isinstance(items, list) or not items:
            raise InvalidArgumentError(f"{path} holds no cases; write {{\"cases\": [{{\"name\": ..., \"prompts\": "
                                       "[...], \"expect\": [...]}]}}.")  # fmt: skip
        return [cls._from_dict(item, f"{path} case {i + 1}", path.stem) for i, item in enumerate(items)]

    @classmethod
    def _from_dict(cls, item: Any, where: str, stem: str) -> EvalCase:
        allowed = {"name", "prompts", "thread", "expect"}
        if not isinstance(item, dict) or set(item) - allowed:
            extra = sorted(set(item) - allowed) if isinstance(item, dict) else [repr(item)]
            raise InvalidArgumentError(
                f"{where}: unexpected {', '.join(extra)}; a case has {', '.join(sorted(allowed))}."
            )
        name = item.get("name") or f"{stem} {where.rsplit(' ', 1)[-1]}"
        where = f"{where} ({name})"
        expect = item.get("expect", [])
        if not isinstance(expect, list):
            raise InvalidArgumentError(f"{where}: expect is {expect!r}; expected a list of expectations.")
        expectations = [_expectation_from(e, f"{where} expect {j + 1}") for j, e in enumerate(expect)]
        return cls(name, thread_id=item.get("thread"), prompts=item.get("prompts"), expect=expectations)


@dataclass
class CaseResult:
    """How one case went: ``passed``, its ``failures`` (expectation name, diff), the replay."""

    case: EvalCase
    result: ReplayResult | None
    failures: list[tuple[str, str]]
    seconds: float
    error: str | None = None  # the case could not run (e.g. its thread is gone)

    @property
    def passed(self) -> bool:
        return not self.failures and self.error is None

    @property
    def notes(self) -> list[str]:
        """What differs without failing: answers whose parallel tool calls came in another order."""
        turns = self.result.turns if self.result is not None else []
        return [
            f"prompt {t.index + 1}: the same tool calls, parallel ones in another order: "
            + ", ".join(c.signature for c in t.new_calls)
            for t in turns
            if t.calls_reordered
        ]


_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_text(text: str) -> str:
    """Text XML 1.0 can hold (control characters from a model dropped)."""
    return _XML_BAD.sub("", text)


@dataclass
class EvalReport:
    """The results of ``tw.evaluate``: ``cases`` (``CaseResult``), ``pass_rate``, ``failures``; as
    text (``str(report)``), an HTML table in a notebook, and JUnit XML (``to_junit``)."""

    agent: str
    cases: list[CaseResult]
    started_at: float = field(default_factory=time.time)

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.cases)

    @property
    def failed(self) -> int:
        return len(self.cases) - self.passed

    @property
    def pass_rate(self) -> float:
        return self.passed / len(self.cases) if self.cases else 1.0

    @property
    def failures(self) -> list[tuple[str, str, str]]:
        """``(case, expectation, diff)`` of every failed expectation (and of cases that could not run)."""
        out = [(c.case.name, e, d) for c in self.cases for e, d in c.failures]
        return out + [(c.case.name, "run", c.error) for c in self.cases if c.error is not None]

    def __repr__(self) -> str:
        return f"<tw.EvalReport agent={self.agent!r}: {self.passed} of {len(self.cases)} passed>"

    def __str__(self) -> str:
        lines = [f"eval of agent {self.agent!r}: {self.passed} of {len(self.cases)} cases passed "
                 f"({self.pass_rate:.0%})"]  # fmt: skip
        for c in self.cases:
            lines.append(f"{'PASS' if c.passed else 'FAIL'}  {c.case.name}")
            if c.error is not None:
                lines.append(f"      could not run: {c.error}")
            for name, diff in c.failures:
                lines.append(f"      ✗ {name}")
                lines += [f"        {line}" for line in diff.splitlines()]
            lines += [f"      · {one_line(note, 200)}" for note in c.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = html.escape
        rows = []
        for c in self.cases:
            detail = "".join(
                f"<details><summary>✗ {e(name)}</summary><pre>{e(diff)}</pre></details>" for name, diff in c.failures
            )
            if c.error is not None:
                detail += f"<pre>could not run: {e(c.error)}</pre>"
            detail += "".join(f"<div>· {e(note)}</div>" for note in c.notes)
            thread = e(c.result.thread_id) if c.result else ""
            mark = "✓ pass" if c.passed else "✗ fail"
            rows.append(f"<tr><td>{mark}</td><td>{e(c.case.name)}</td><td><code>{thread}</code></td>"
                        f"<td>{detail}</td></tr>")  # fmt: skip
        head = (f"<p><b>eval of agent {e(self.agent)}</b>: {self.passed} of {len(self.cases)} cases passed "
                f"({self.pass_rate:.0%})</p>")  # fmt: skip
        table = "<table><thead><tr><th></th><th>case</th><th>thread</th><th>failures</th></tr></thead>"
        return f'<div class="tw-eval">{head}{table}<tbody>{"".join(rows)}</tbody></table></div>'

    def to_junit(self) -> str:
        """The report as JUnit XML (``<testsuites>`` of one ``<testsuite>``), for CI."""
        total = sum(c.seconds for c in self.cases)
        suites = ET.Element("testsuites", name="threadwidget eval", tests=str(len(self.cases)),
                            failures=str(self.failed), errors="0", time=f"{total:.3f}")  # fmt: skip
        stamp = datetime.fromtimestamp(self.started_at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        suite = ET.SubElement(
            suites, "testsuite", name=f"threadwidget eval {self.agent}", tests=str(len(self.cases)),
            failures=str(self.failed), errors="0", skipped="0", time=f"{total:.3f}", timestamp=stamp,
            hostname=socket.gethostname(),
        )  # fmt: skip
        for c in self.cases:
            case = ET.SubElement(suite, "testcase", name=_xml_text(c.case.name), classname=f"eval.{self.agent}",
                                 time=f"{c.seconds:.3f}")  # fmt: skip
            if not c.passed:
                first = c.failures[0][0] if c.failures else "the case could not run"
                body = "\n\n".join(f"✗ {n}\n{d}" for n, d in c.failures) or (c.error or "")
                failure = ET.SubElement(case, "failure", message=_xml_text(first), type="expectation")
                failure.text = _xml_text(body)
            if c.result is not None:
                ET.SubElement(case, "system-out").text = _xml_text(str(c.result))
        ET.indent(suites)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"

    def write_junit(self, path: str | Path) -> Path:
        """Write ``to_junit()`` to ``path`` (UTF-8); returns the path."""
        out = Path(path)
        out.write_text(self.to_junit(), encoding="utf-8")
        return out


def _cases(cases: Any, store: Store) -> list[EvalCase]:
    items = [cases] if isinstance(cases, (str, Path, EvalCase)) else list(cases)
    out: list[EvalCase] = []
    for item in items:
        if isinstance(item, EvalCase):
            out.append(item)
        elif isinstance(item, Path) or (isinstance(item, str) and Path(item).suffix in (".json", ".yaml", ".yml")):
            out += EvalCase.load(item)
        elif isinstance(item, str):
            thread = store.get_thread(item)  # NotFoundError names the id
            out.append(EvalCase(thread.title or item, thread_id=item))
        else:
            raise InvalidArgumentError(
                f"{item!r} is not an eval case; pass tw.EvalCase(...), a thread id, or the path of a .json file."
            )
    return out


def evaluate(
    cases: EvalCase | str | Path | Iterable[EvalCase | str | Path],
    agent: Agent,
    *,
    store: Store | None = None,
    tools: str = "recorded",
    unmatched: UnmatchedMode = "fail",
    timeout: float = 300.0,
) -> EvalReport:
    """Run each case against ``agent`` and check its expectations. A thread case (a thread id, or
    ``EvalCase(thread_id=...)``) is replayed with ``tw.replay(..., tools=tools, unmatched=...)``
    from ``store`` (default: the agent's) and, without expectations of its own, expects the
    recorded tool calls; in ``tools="recorded"`` every call must also match a recorded one. A
    prompts case asks its prompts in a new thread (``metadata["eval_case"]``), its tools live."""
    from ._agent import Agent

    if not isinstance(agent, Agent):
        raise InvalidArgumentError(f"agent={agent!r} is not a tw.Agent; pass the agent to evaluate.")
    target = store if store is not None else agent.store
    results: list[CaseResult] = []
    for case in _cases(cases, target):
        started = time.monotonic()
        expectations = list(case.expect)
        result: ReplayResult | None = None
        try:
            if case.thread_id is not None:
                if not expectations:
                    expectations.append(Expect.same_tool_calls())
                if tools == "recorded" and unmatched == "fail":
                    expectations.append(Expect.recorded_tools())
                result = replay(case.thread_id, agent, tools=tools, unmatched=unmatched,  # type: ignore[arg-type]
                                store=target, timeout=timeout)  # fmt: skip
            else:
                runner = clone_agents(agent, target)
                thread_id, turns = run_prompts(
                    runner, case.prompts or [], title=f"Eval: {case.name}", metadata={"eval_case": case.name},
                    user_id=None, book=None, timeout=timeout,
                )  # fmt: skip
                result = ReplayResult(thread_id, None, agent.name, "live", turns)
        except ThreadwidgetError as exc:
            results.append(CaseResult(case, result, [], time.monotonic() - started, error=str(exc)))
            continue
        failures = [(f"answer to prompt {t.index + 1}", f"expected it to succeed\ngot: {t.new_status}: {t.new_error}")
                    for t in result.turns if t.new_status != "success"]  # fmt: skip
        failures += [(e.name, diff) for e in expectations if (diff := e(result)) is not None]
        results.append(CaseResult(case, result, failures, time.monotonic() - started))
    return EvalReport(agent.name, results)
