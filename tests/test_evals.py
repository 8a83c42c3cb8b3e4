"""tw.evaluate, its expectations and report, and `threadwidget eval` with JUnit XML for CI."""

from __future__ import annotations

import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import threadwidget as tw

from .conftest import PYTHON, python_env
from .widget_comm import RecordingComm, comms

__all__ = ["comms"]  # the fixture, imported for pytest

RUNS: list[dict] = []


@tw.tool
def book_table(party_size: int, time: str) -> dict:
    """Book a table."""
    RUNS.append({"party_size": party_size, "time": time})
    return {"booking_id": "B-7", "party_size": party_size, "time": time}


def booking_agent(store: tw.Store, *, off_by_one: bool = False) -> tw.Agent:
    """Books what it is asked, or (the regression) one person fewer."""

    def book(m: re.Match[str]) -> object:
        size = int(m[1]) - (1 if off_by_one else 0)
        return tw.ScriptedModel.tool_calls([("book_table", {"party_size": size, "time": m[2]})])

    rules = [(r"table for (\d+) at (\S+)", book), (r"thanks", "You are welcome; booked.")]
    model = tw.ScriptedModel("scripted", tokens_per_second=None, rules=rules)  # type: ignore[list-item]
    return tw.Agent("booking", model=model, tools=[book_table], store=store)


def stored_thread(store: tw.Store) -> str:
    thread = booking_agent(store).create_thread(title="dinner for four")
    thread.ask("A table for 4 at 19:00").wait(10)
    thread.ask("thanks").wait(10)
    return thread.id


def test_a_stored_thread_passes_until_a_change_breaks_its_tool_calls(store: tw.Store) -> None:
    source = stored_thread(store)
    RUNS.clear()
    good = tw.evaluate(source, booking_agent(store))
    assert (good.passed, good.failed, good.pass_rate, good.failures) == (1, 0, 1.0, [])
    bad = tw.evaluate([source], booking_agent(store, off_by_one=True))
    assert RUNS == []  # recorded tools only
    assert bad.pass_rate == 0.0
    names = [name for _, name, _ in bad.failures]
    assert names == ["same_tool_calls", "recorded_tools"]
    diff = bad.failures[0][2]
    assert '-prompt 1: book_table {"party_size": 4, "time": "19:00"}' in diff
    assert '+prompt 1: book_table {"party_size": 3, "time": "19:00"}' in diff
    text = str(bad)
    assert "FAIL  dinner for four" in text and "✗ same_tool_calls" in text and "0 of 1 cases passed" in text


def test_expectations_on_prompt_cases(store: tw.Store) -> None:
    RUNS.clear()
    case = tw.EvalCase(
        "four at seven",
        prompts=["A table for 4 at 19:00", "thanks"],
        expect=[
            tw.Expect.tool_called("book_table", {"party_size": 4}),
            tw.Expect.tool_called("book_table", {"time": "19:00"}, turn=0),
            tw.Expect.tool_not_called("cancel_booking"),
            tw.Expect.text_matches(r"welcome"),
            tw.Expect.text_contains("booked"),
            tw.Expect.max_tokens(10_000),
            tw.Expect.max_cost(1.0, input_per_million=0.15, output_per_million=0.6),
            tw.Expect.max_latency(600),
            tw.Expect.check(lambda r: r.turns[0].new_calls[0].status == "success", name="booked"),
        ],
    )
    report = tw.evaluate(case, booking_agent(store))
    assert report.failures == [] and RUNS == [{"party_size": 4, "time": "19:00"}]  # prompt cases run tools live
    thread = store.get_thread(report.cases[0].result.thread_id)  # type: ignore[union-attr]
    assert thread.metadata == {"eval_case": "four at seven"}

    def no_three(result: tw.ReplayResult) -> None:
        assert result.turns[0].new_calls[0].arguments["party_size"] != 3, "booked for 3"

    failing = tw.EvalCase(
        "regression",
        prompts=["A table for 4 at 19:00", "thanks"],
        expect=[
            tw.Expect.tool_called("book_table", {"party_size": 4}),
            tw.Expect.tool_not_called("book_table", {"party_size": 3}),
            tw.Expect.text_matches(r"^Sorry", turn=1),
            tw.Expect.text_contains("confirmed", turn=0),
            tw.Expect.max_tokens(1),
            tw.Expect.check(no_three),
        ],
    )
    failed = tw.evaluate([failing], booking_agent(store, off_by_one=True))
    diffs = {name: diff for _, name, diff in failed.failures}
    assert list(diffs) == [
        'tool_called book_table {"party_size": 4}', 'tool_not_called book_table {"party_size": 3}',
        "text_matches /^Sorry/", 'text_contains "confirmed"', "max_tokens 1", "check no_three",
    ]  # fmt: skip
    assert diffs['tool_called book_table {"party_size": 4}'].splitlines() == [
        'expected a call of book_table with arguments containing {"party_size": 4}',
        "got:",
        '  prompt 1: book_table {"party_size": 3, "time": "19:00"}',
        "differences:",
        "  party_size: expected 4, got 3",
    ]
    assert diffs["text_matches /^Sorry/"].splitlines() == [
        "expected the answer to prompt 2 to match /^Sorry/", 'got: "You are welcome; booked."'
    ]  # fmt: skip
    assert diffs["check no_three"].startswith("no_three failed: booked for 3")


def test_case_files_and_their_errors(store: tw.Store, tmp_path: Path) -> None:
    path = tmp_path / "cases.json"
    path.write_text(json.dumps({"cases": [
        {"name": "four", "prompts": ["A table for 4 at 19:00"],
         "expect": [{"tool_called": "book_table", "arguments": {"party_size": 4}}, {"max_latency": 600}]},
        {"prompts": ["thanks"], "expect": [{"text_contains": "welcome", "turn": 0}]},
    ]}))  # fmt: skip
    (four, second) = tw.EvalCase.load(path)
    assert (four.name, second.name) == ("four", "cases 2")
    assert tw.evaluate(path, booking_agent(store)).pass_rate == 1.0
    path.write_text(json.dumps([{"name": "x", "prompts": ["hi"], "expect": [{"text_contains": "a", "arguments": {}}]}]))
    with pytest.raises(tw.InvalidArgumentError, match=r"cases\.json case 1 \(x\) expect 1: text_contains does not "
                                                      r"take arguments; it takes turn"):  # fmt: skip
        tw.EvalCase.load(path)
    path.write_text(json.dumps({"name": "x", "prompt": ["hi"]}))
    with pytest.raises(tw.InvalidArgumentError, match="unexpected prompt; a case has expect, name, prompts, thread"):
        tw.EvalCase.load(path)
    path.write_text("{not json")
    with pytest.raises(tw.InvalidArgumentError, match="is not valid JSON"):
        tw.EvalCase.load(path)
    with pytest.raises(tw.InvalidArgumentError, match="exactly one"):
        tw.EvalCase("both", thread_id="th_1", prompts=["hi"])
    with pytest.raises(tw.NotFoundError, match="th_missing"):
        tw.evaluate("th_missing", booking_agent(store))


def test_the_report_as_html_escapes_model_text(store: tw.Store) -> None:
    agent = booking_agent(store)
    agent.model.enqueue("<img src=x onerror=alert(1)>")  # type: ignore[attr-defined]
    report = tw.evaluate(tw.EvalCase("<b>case</b>", prompts=["hi"], expect=[tw.Expect.text_contains("booked")]), agent)
    page = report._repr_html_()
    assert "<img" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<b>case" not in page and "<details><summary>✗ text_contains" in page


# -- JUnit XML --------------------------------------------------------------------------------------------
#
# The structure of the JUnit XSD CI servers read (Jenkins' junit-10.xsd, Ant's JUnit report):
# element -> (required attributes, optional attributes, allowed children).
JUNIT = {
    "testsuites": ({"name"}, {"tests", "failures", "errors", "time", "disabled"}, {"testsuite"}),
    "testsuite": (
        {"name", "tests"},
        {"failures", "errors", "skipped", "time", "timestamp", "hostname", "id", "package", "disabled"},
        {"properties", "testcase", "system-out", "system-err"},
    ),
    "testcase": (
        {"name"},
        {"classname", "time", "assertions", "status"},
        {"skipped", "error", "failure", "system-out", "system-err"},
    ),
    "failure": (set(), {"message", "type"}, set()),
    "system-out": (set(), set(), set()),
}
COUNTS = {"tests", "failures", "errors", "skipped", "disabled", "assertions"}


def check_junit(text: str) -> ET.Element:
    """Parse ``text`` and check it against the JUnit schema's structure and types; the counts must
    agree with the test cases."""
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(text.encode())
    for el in root.iter():
        assert el.tag in JUNIT, f"unknown element {el.tag}"
        required, optional, children = JUNIT[el.tag]
        assert required <= set(el.attrib), f"{el.tag} lacks {required - set(el.attrib)}"
        assert set(el.attrib) <= required | optional, f"{el.tag} has unknown {set(el.attrib) - required - optional}"
        for child in el:
            assert child.tag in children, f"{child.tag} inside {el.tag}"
        for key, value in el.attrib.items():
            if key in COUNTS:
                assert re.fullmatch(r"\d+", value), f"{el.tag}@{key}={value!r}"
            if key == "time":
                assert re.fullmatch(r"\d+(\.\d+)?", value), f"{el.tag}@time={value!r}"
            if key == "timestamp":
                assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", value), value
    assert root.tag == "testsuites"
    for suite in root.iter("testsuite"):
        cases = suite.findall("testcase")
        assert int(suite.attrib["tests"]) == len(cases)
        assert int(suite.attrib["failures"]) == sum(c.find("failure") is not None for c in cases)
    return root


def test_junit_xml_is_valid_and_names_the_failed_expectation(store: tw.Store) -> None:
    source = stored_thread(store)
    cases = [source, tw.EvalCase("ok", prompts=["thanks"], expect=[tw.Expect.text_contains("welcome")])]
    root = check_junit(tw.evaluate(cases, booking_agent(store, off_by_one=True)).to_junit())
    assert (root.attrib["tests"], root.attrib["failures"]) == ("2", "1")
    failed, passed = root.iter("testcase")
    assert (failed.attrib["name"], passed.attrib["name"]) == ("dinner for four", "ok")
    failure = failed.find("failure")
    assert failure is not None and failure.attrib["message"] == "same_tool_calls"
    assert '+prompt 1: book_table {"party_size": 3' in (failure.text or "")
    assert passed.find("failure") is None


def test_junit_checker_rejects_broken_reports() -> None:
    with pytest.raises(AssertionError, match="testcase lacks"):
        check_junit('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="x"><testsuite name="s" tests="1">'
                    "<testcase classname='c'/></testsuite></testsuites>")  # fmt: skip
    with pytest.raises(AssertionError):
        check_junit('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="x"><testsuite name="s" tests="2">'
                    "<testcase name='a'/></testsuite></testsuites>")  # fmt: skip


# -- the command line -------------------------------------------------------------------------------------

AGENTS = '''
import os, re
import threadwidget as tw

@tw.tool
def book_table(party_size: int, time: str) -> dict:
    """Book a table."""
    with open(os.environ["RUNS_LOG"], "a") as f:
        f.write("ran\\n")
    return {"booking_id": "B-7", "party_size": party_size, "time": time}

def make(shift):
    def book(m):
        return tw.ScriptedModel.tool_calls([("book_table", {"party_size": int(m[1]) - shift, "time": m[2]})])
    model = tw.ScriptedModel(tokens_per_second=None, rules=[(r"table for (\\d+) at (\\S+)", book)])
    return tw.Agent("booking", model=model, tools=[book_table], store=tw.Store(os.environ["THREADWIDGET_DB"]))

def booking():
    return make(0)

def changed():
    return make(1)
'''


def run_eval(tmp_path: Path, db: object, *args: str) -> subprocess.CompletedProcess[str]:
    env = python_env() | {"THREADWIDGET_DB": str(db), "RUNS_LOG": str(tmp_path / "runs.log")}
    command = [PYTHON, "-m", "threadwidget", "eval", *args]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_the_eval_command_exits_1_on_a_failing_case_and_writes_junit(db_path: object, tmp_path: Path) -> None:
    (tmp_path / "desk.py").write_text(AGENTS)
    with tw.Store(db_path) as s:  # type: ignore[arg-type]
        agent = booking_agent(s)
        thread = agent.create_thread(title="dinner for four")
        thread.ask("A table for 4 at 19:00").wait(10)
    cases = tmp_path / "cases.json"
    expect = [{"tool_called": "book_table", "arguments": {"party_size": 5}}]
    cases.write_text(json.dumps({"name": "five", "prompts": ["A table for 5 at 20:00"], "expect": expect}))
    ok = run_eval(tmp_path, db_path, thread.id, "--agent", "desk:booking", "--junit", "ok.xml")
    assert ok.returncode == 0, ok.stderr
    assert "PASS  dinner for four" in ok.stdout and "1 of 1 cases passed" in ok.stdout
    assert not (tmp_path / "runs.log").exists()  # the stored thread was replayed with its recorded result
    check_junit((tmp_path / "ok.xml").read_text())

    bad = run_eval(tmp_path, db_path, thread.id, "cases.json", "--agent", "desk:changed", "--junit", "bad.xml")
    assert bad.returncode == 1, bad.stderr
    assert "0 of 2 cases passed" in bad.stdout
    assert "✗ same_tool_calls" in bad.stdout and '✗ tool_called book_table {"party_size": 5}' in bad.stdout
    assert "party_size: expected 5, got 4" in bad.stdout
    root = check_junit((tmp_path / "bad.xml").read_text())
    assert [f.attrib["message"] for f in root.iter("failure")] == [
        "same_tool_calls", 'tool_called book_table {"party_size": 5}'
    ]  # fmt: skip

    missing = run_eval(tmp_path, db_path, "nope.json", "--agent", "desk:booking")
    assert missing.returncode == 1 and "no case file 'nope.json'" in missing.stderr


def test_case_files_in_yaml(store: tw.Store, tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    path = tmp_path / "cases.yaml"
    path.write_text(
        "cases:\n"
        "  - name: four\n"
        "    prompts: [A table for 4 at 19:00]\n"
        "    expect:\n"
        "      - tool_called: book_table\n"
        "        arguments: {party_size: 4}\n"
    )
    (case,) = tw.EvalCase.load(path)
    assert (case.name, case.prompts, [e.name for e in case.expect]) == (
        "four", ["A table for 4 at 19:00"], ['tool_called book_table {"party_size": 4}']
    )  # fmt: skip
    assert tw.evaluate(path, booking_agent(store)).pass_rate == 1.0


def test_the_report_shows_as_a_widget_with_its_transcript(store: tw.Store, comms: list[RecordingComm]) -> None:
    from IPython.core.formatters import DisplayFormatter

    source = stored_thread(store)
    agent = booking_agent(store, off_by_one=True)
    cases = [source, tw.EvalCase("ok", prompts=["thanks"], expect=[tw.Expect.text_contains("welcome")])]
    report = tw.evaluate(cases, agent)
    view = tw.EvalReportView(report)
    assert view.agent == "booking"
    failed, passed = view.cases
    assert (failed["name"], failed["passed"]) == ("dinner for four", False)
    assert (passed["name"], passed["passed"], passed["failures"]) == ("ok", True, [])
    assert [f["expectation"] for f in failed["failures"]] == ["same_tool_calls", "recorded_tools"]
    assert failed["thread_id"] == report.cases[0].result.thread_id  # type: ignore[union-attr]
    assert repr(view) == str(report)
    comm = view.comm
    assert isinstance(comm, RecordingComm) and comm in comms
    (_, kind, opened, _) = comm.entries()[0]
    assert kind == "comm_open" and opened["state"]["cases"] == view.cases
    formatter = DisplayFormatter()
    tw._register_display(formatter)  # what `import threadwidget` does in a running IPython
    shown, _ = formatter.format(report)
    assert shown["text/plain"] == str(report) and shown["application/vnd.jupyter.widget-view+json"]["model_id"]
    assert shown["text/html"].startswith('<div class="tw-transcript" data-kind="evalreport"')
    assert "<details><summary>✗ same_tool_calls</summary>" in shown["text/html"]
    with pytest.raises(tw.InvalidArgumentError, match=r"not a tw\.EvalReport"):
        tw.EvalReportView("report")  # type: ignore[arg-type]
    view.close()
