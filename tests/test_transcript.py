"""The static HTML transcript in each view's display bundle: what a notebook shows without a kernel.

The bundle carries the live widget, the text repr and ``text/html``; the transcript shows messages,
tool calls and statuses, clipped and counted; hostile model output (the corpus of the live view's
tests, js/tests/hostile-corpus.ts, and a 10 MB answer) renders to HTML in which nothing runs or
loads; and ``jupyter nbconvert --to html`` of a notebook run in a real kernel shows it.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

import threadwidget as tw
from threadwidget.widgets._transcript import (
    HTML_GROWTH,
    MAX_CHARS,
    MESSAGE_CHARS,
    chat_transcript,
    render_markdown,
)

from .conftest import ROOT, python_env
from .widget_comm import RecordingComm, comms

__all__ = ["comms"]  # the fixture, imported for pytest

WIDGET = "application/vnd.jupyter.widget-view+json"
XSS = (
    '<img src=x onerror=alert(1)><script>alert(1)</script> [x](javascript:alert(1)) <a href="javascript:alert(2)">y</a>'
    " ![pixel](https://tracker.example/p.png) [d](data:text/html;base64,PHNjcmlwdD4=) [v](vbscript:msgbox(1))"
    ' <iframe src="https://evil.example"></iframe> <style>body{background:url(https://evil.example/x)}</style>'
    " <svg onload=alert(3)> [ok](https://example.com/a)"
)


# -- what counts as inert --------------------------------------------------------------------------

FORBIDDEN_TAGS = {
    "script", "iframe", "frame", "frameset", "object", "embed", "img", "picture", "video", "audio", "source",
    "track", "link", "meta", "base", "form", "input", "button", "textarea", "select", "svg", "math", "template",
}  # fmt: skip
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "poster", "background", "srcset", "data"}


class Inspector(HTMLParser):
    """Every tag and attribute of a page, and the text outside ``<style>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.styles: list[str] = []
        self.text: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        (self.styles if self._in_style else self.text).append(data)

    @property
    def visible(self) -> str:
        return " ".join(" ".join(self.text).split())  # each piece of text apart


def inspect(page: str) -> Inspector:
    parser = Inspector()
    parser.feed(page)
    parser.close()
    return parser


def assert_inert(page: str) -> Inspector:
    """Nothing in ``page`` runs or loads anything: no such tags, no event handlers or inline styles,
    links only to http(s)/mailto/relative addresses with rel=noopener, and only our own style."""
    found = inspect(page)
    for tag, attrs in found.tags:
        assert tag not in FORBIDDEN_TAGS, (tag, attrs)
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name, value)
            assert name not in ("style", "src", "srcset"), (tag, name, value)
            if name in URL_ATTRIBUTES:
                url = "".join(ch for ch in value if ch > " ").lower()
                assert not url.startswith(("javascript:", "data:", "vbscript:", "file:")), (tag, value)
        if tag == "a" and "href" in attrs:
            assert {"noopener", "noreferrer", "nofollow"} <= set(attrs.get("rel", "").split()), attrs
    assert sum(1 for tag, _ in found.tags if tag == "style") <= 1
    for css in found.styles:
        assert "url(" not in css and "@import" not in css and "expression(" not in css
    return found


# -- helpers -----------------------------------------------------------------------------------------


@tw.tool
def lookup_order(order_id: str) -> dict:
    """Look up an order by id."""
    return {"order_id": order_id, "status": "shipped", "carrier": "DHL"}


@tw.tool
def refund(order_id: str) -> dict:
    """Refund an order."""
    raise ValueError(f"order {order_id} cannot be refunded yet")


ANSWER = "Order **42** shipped on Monday.\n\n- Carrier: DHL\n\n```python\ntrack(42)\n```\n\n[Tracking](https://example.com/t)"


def answered_thread(store: tw.Store) -> Any:
    model = tw.ScriptedModel()
    model.enqueue(
        tw.ScriptedModel.tool_calls([("lookup_order", {"order_id": "42"}), ("refund", {"order_id": "42"})]),
        ANSWER,
        tw.ScriptedModel.error("upstream returned 502", text="Checking the warehouse"),
    )
    agent = tw.Agent("support", model=model, tools=[lookup_order, refund], store=store)
    thread = agent.create_thread(title="Order help")
    thread.generate_text("Where is order 42?")
    with pytest.raises(tw.ModelError):
        thread.generate_text("And order 43?")
    return thread


def html_of(widget: Any) -> str:
    data, _ = widget._repr_mimebundle_()
    assert set(data) == {"text/plain", WIDGET, "text/html"}
    assert data["text/plain"] == repr(widget) and data[WIDGET]["model_id"] == widget.model_id
    page: str = data["text/html"]
    return page


def message(text: str, i: int = 0, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"msg_{i}", "role": "assistant", "text": text, "status": "success", "error": None, "agent": "support",
        "model": "m", "created_at": 1.7e9, "usage": None, "tool_calls": [], **fields,
    }  # fmt: skip


IDLE = {"state": "idle", "note": ""}


# -- the bundle ----------------------------------------------------------------------------------------


def test_chat_bundle_has_the_widget_and_a_transcript_of_messages_tools_and_statuses(
    store: tw.Store, comms: list[RecordingComm]
) -> None:
    thread = answered_thread(store)
    view = tw.ChatView(thread)
    page = html_of(view)
    found = assert_inert(page)
    text = found.visible
    assert "Order help" in text and "Where is order 42?" in text
    # markdown rendered: bold, a list, a code block with its language, a link
    assert "<strong>42</strong>" in page and "<li>Carrier: DHL</li>" in page
    assert '<code class="language-python">track(42)' in page
    assert '<a href="https://example.com/t"' in page
    # tool calls with arguments, result and error, as escaped JSON
    assert "lookup_order" in text and "refund" in text
    assert '{"order_id": "42"}' in text and '"carrier": "DHL"' in text
    assert "order 42 cannot be refunded yet" in text
    # the failed answer, its error, and the thread's status
    assert "Checking the warehouse" in text and "failed" in text and "upstream returned 502" in text
    assert text.count("upstream returned 502") == 2  # on the message and as the thread's status
    # the AgentThread's formatter gives the same view's bundle
    from IPython.core.formatters import DisplayFormatter

    formatter = DisplayFormatter()
    tw._register_display(formatter)
    shown, _ = formatter.format(thread)
    assert "text/html" in shown and "upstream returned 502" in shown["text/html"]
    assert shown[WIDGET]["model_id"] == thread._view.model_id


def test_streaming_queued_and_stopped_answers_say_so(store: tw.Store, comms: list[RecordingComm]) -> None:
    thread = store.create_thread(title="Live", agent="support")
    store.add_message(thread.id, role="user", text="First question", agent="support")
    stopped = store.start_run(thread.id, agent="support")
    store.update_message(stopped.id, text="I was saying", status="aborted", error="Stopped by alice", end_run=True)
    prompt = store.add_message(thread.id, role="user", text="Second question", agent="support")
    live = store.start_run(thread.id, reply_to=prompt.id, agent="support", lease_seconds=120)  # held by the test
    store.update_message(live.id, status="streaming")
    store.append_delta(live.id, "Half of an ")
    store.append_delta(live.id, "answer")
    store.ask(thread.id, "Third question")  # waits behind the answer being written
    call = store.add_tool_call(live.id, call_id="c1", name="lookup_order", arguments='{"order_id": "4')
    view = tw.ChatView(thread.id, store=store)
    text = assert_inert(html_of(view)).visible
    assert "I was saying" in text and "stopped" in text and "Stopped by alice" in text
    assert "streaming…" in text and "Half of an answer" in text
    assert "queued · #1" in text and "Third question" in text
    assert "receiving arguments…" in text and '{"order_id": "4' in text
    assert "streaming : Running lookup_order… · 1 prompt queued" in text
    store.update_tool_call(call.id, arguments='{"order_id": "42"}', status="running", progress=0.5, progress_note="db")
    panel = tw.ToolCallsPanel(thread.id, store=store)  # while the answer's lease holds: nothing reaps the call
    panel_text = assert_inert(html_of(panel)).visible
    assert "Tool calls" in panel_text and "lookup_order running · 50% · db" in panel_text
    store.update_tool_call(call.id, status="success", result='{"status": "shipped"}')
    store.update_message(live.id, text="Half of an answer", status="success", end_run=True)


def test_thread_list_and_app_transcripts(store: tw.Store, comms: list[RecordingComm]) -> None:
    thread = answered_thread(store)
    other = store.create_thread(title="Returns <b>policy</b>", agent="support")
    store.add_message(other.id, role="user", text="Can I return shoes?", agent="support")
    listing = assert_inert(html_of(tw.ThreadList(store)))
    assert "Returns <b>policy</b>" in listing.visible and "Order help" in listing.visible
    assert "Can I return shoes?" in listing.visible
    app = tw.ThreadApp(store)
    app.selected = thread.id
    found = assert_inert(html_of(app))
    assert "Returns <b>policy</b>" in found.visible and "Where is order 42?" in found.visible
    assert '"carrier": "DHL"' in found.visible
    assert [tag for tag, attrs in found.tags if tag == "strong"]  # the selected thread stands out


def test_transcript_keeps_the_last_messages_counts_the_rest_and_clips_long_text(
    store: tw.Store, comms: list[RecordingComm]
) -> None:
    thread = store.create_thread(title="Long", agent="support")
    for i in range(60):
        store.add_message(thread.id, role="user", text=f"question {i}", agent="support")
        store.add_message(thread.id, role="assistant", text=f"answer {i}", agent="support")
    store.add_message(thread.id, role="assistant", text="x" * (MESSAGE_CHARS + 5_000), agent="support")
    view = tw.ChatView(thread.id, store=store, window=30)
    text = inspect(html_of(view)).visible
    assert "91 earlier messages not shown." in text  # 121 messages, the window's 30 shown
    assert "answer 45" in text and "question 45" not in text
    assert f"clipped: {5_000:,} more characters in the store." in text
    view.transcript_messages = 5
    text = inspect(html_of(view)).visible
    assert "116 earlier messages not shown." in text and "question 58" in text and "answer 57" not in text


def test_a_hostile_answer_in_a_view_is_inert_and_bounded(store: tw.Store, comms: list[RecordingComm]) -> None:
    """XSS in every field a model, a tool or a user writes, and a 10 MB answer."""
    thread = store.create_thread(title=XSS, agent="support")
    store.add_message(thread.id, role="user", text=XSS, agent="support")
    reply = store.add_message(thread.id, role="assistant", text=XSS, agent="support", model=XSS)
    call = store.add_tool_call(reply.id, call_id="c1", name=XSS, arguments=json.dumps({"q": XSS}))
    store.update_tool_call(call.id, status="error", error=XSS)
    failed = store.start_run(thread.id, agent="support")
    store.update_message(failed.id, text=XSS, status="failed", error=XSS, end_run=True)
    huge = store.add_message(thread.id, role="assistant", text=(XSS + "\n\n") * 30_000, agent="support")
    assert len(huge.text) > 10_000_000
    page = html_of(tw.ChatView(thread.id, store=store))
    found = assert_inert(page)
    assert "<script>alert(1)</script>" in found.visible  # shown as text, not dropped
    links = {attrs["href"]: attrs for tag, attrs in found.tags if tag == "a"}
    assert set(links) == {"https://example.com/a", "https://tracker.example/p.png"}  # no javascript:, data:, vbscript:
    assert links["https://example.com/a"]["rel"] == "noopener noreferrer nofollow"
    assert "pixel" in found.visible  # an image is a link to it (inert: no src), not a load
    # 10 MB in the store: one message clipped at MESSAGE_CHARS; everything else is small
    assert len(page) < HTML_GROWTH * MESSAGE_CHARS + 30_000
    assert "more characters in the store" in found.visible


def hostile_corpus() -> list[dict[str, Any]]:
    script = ROOT / "js" / "scripts" / "hostile-corpus.mjs"
    if shutil.which("node") is None or not (ROOT / "js" / "node_modules" / "esbuild").is_dir():
        reason = "node or js/node_modules is missing (`cd js && npm ci`): no hostile corpus"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, and CI must render the corpus")
        pytest.skip(reason)
    out = subprocess.run(["node", str(script)], cwd=ROOT / "js", capture_output=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr.decode()
    corpus: list[dict[str, Any]] = json.loads(out.stdout)
    return corpus


#: entries of the corpus nesting containers (quotes, lists) deeper than markdown-it parses: past its
#: limit it drops the rest of the text
TIMES = "\u00d7"  # the corpus's multiplication sign
DEEP = {
    "10 kB of >", f"'- ' {TIMES}10,000", "list nested 1,000 levels by indentation", f"'- ' {TIMES}10,000 then text",
    f"'1. ' {TIMES}10,000", f"'> - ' {TIMES}2,500", "quote one level deeper per line, 300 lines",
    "list nested 1,000 levels, CR line ends", "XSS inside deep nesting",
}  # fmt: skip


def test_the_live_views_hostile_corpus_renders_inert_and_bounded() -> None:
    corpus = hostile_corpus()
    assert {entry["name"] for entry in corpus} >= DEEP and any("XSS" in entry["name"] for entry in corpus)
    for entry in corpus:
        render_markdown.cache_clear()
        page = chat_transcript([message(entry["text"])], title=entry["name"], status=IDLE)
        found = assert_inert(page)
        assert len(page) < HTML_GROWTH * MESSAGE_CHARS + 10_000, entry["name"]
        if "XSS" in entry["name"]:
            assert "alert(1)" in found.visible
        if entry["name"] in DEEP:  # deeper than markdown-it goes: shown as text, nothing dropped
            for sample in entry["samples"]:
                if sample in entry["text"][:MESSAGE_CHARS]:
                    assert " ".join(sample.split()) in found.visible, (entry["name"], sample)
    # the whole corpus in one thread: the newest messages first, within the stated bound
    page = chat_transcript([message(e["text"], i) for i, e in enumerate(corpus)], title="all", status=IDLE)
    assert_inert(page)
    assert len(page) < MAX_CHARS and "earlier messages not shown" in inspect(page).visible


def test_plain_and_markdown_escape_what_they_show() -> None:
    assert render_markdown("a <b>c</b> & d") == "<p>a &lt;b&gt;c&lt;/b&gt; &amp; d</p>\n"
    page = chat_transcript(
        [message("<i>hi</i>", role="user"), message("", 1, status="failed", error="<b>boom</b>")],
        title="<script>t</script>",
        status={"state": "failed", "note": "<b>boom</b>"},
    )
    found = assert_inert(page)
    assert "<i>hi</i>" in found.visible and "<b>boom</b>" in found.visible and "<script>t</script>" in found.visible
    assert not [tag for tag, _ in found.tags if tag in ("i", "b")]


# -- a notebook converted to HTML --------------------------------------------------------------------

NOTEBOOK_CODE = f"""
import threadwidget as tw
store = tw.Store("threads.db")
model = tw.ScriptedModel()
model.enqueue(tw.ScriptedModel.tool_calls([("lookup_order", {{"order_id": "42"}})]), {ANSWER!r})
@tw.tool
def lookup_order(order_id: str) -> dict:
    '''Look up an order by id.'''
    return {{"order_id": order_id, "status": "shipped", "carrier": "DHL"}}
agent = tw.Agent("support", model=model, tools=[lookup_order], store=store)
thread = agent.create_thread(title="Order help")
thread.generate_text("Where is order 42?")
thread
"""


class Transcripts(HTMLParser):
    """The tags inside each ``div.tw-transcript`` of a page, and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[list[tuple[str, dict[str, str]]], list[str]]] = []
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if self._depth == 0 and tag == "div" and "tw-transcript" in values.get("class", "").split():
            self.found.append(([], []))
            self._depth = 1
        elif self._depth:
            self.found[-1][0].append((tag, values))
            self._depth += tag not in ("br", "hr", "img", "input", "link", "meta", "source", "wbr")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._depth:
            self.found[-1][0].append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if self._depth:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._depth:
            self.found[-1][1].append(data)


def nbconvert(*args: str, cwd: Path, env: dict[str, str]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=240, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]


def test_nbconvert_html_of_an_executed_notebook_shows_the_transcript(tmp_path: Path) -> None:
    import nbformat

    spec = tmp_path / "jupyter" / "kernels" / "tw-test"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "tw test", "language": "python"}))
    env = {**python_env(), "JUPYTER_PATH": str(tmp_path / "jupyter")}
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(NOTEBOOK_CODE)])
    nb.metadata["kernelspec"] = {"name": "tw-test", "display_name": "tw test", "language": "python"}
    nbformat.write(nb, tmp_path / "chat.ipynb")
    nbconvert("--execute", "--to", "notebook", "--output", "executed.ipynb", "chat.ipynb", cwd=tmp_path, env=env)

    executed = nbformat.read(tmp_path / "executed.ipynb", as_version=4)
    (output,) = executed.cells[0].outputs
    assert {WIDGET, "text/html", "text/plain"} <= set(output["data"])

    # As saved without widget state (JupyterLab's default): nbconvert shows the transcript.
    state = executed.metadata.pop("widgets")  # nbclient saves it by default (store_widget_state)
    nbformat.write(executed, tmp_path / "no_state.ipynb")
    nbconvert("--to", "html", "no_state.ipynb", cwd=tmp_path, env=env)
    page = (tmp_path / "no_state.html").read_text()
    parser = Transcripts()
    parser.feed(page)
    ((tags, text),) = parser.found
    shown = " ".join(" ".join(text).split())
    assert "Order help" in shown and "Where is order 42?" in shown and "Carrier: DHL" in shown
    assert 'lookup_order arguments {"order_id": "42"} result {"order_id": "42"' in shown
    assert ("code", {"class": "language-python"}) in tags
    assert not [t for t, _ in tags if t in FORBIDDEN_TAGS]
    assert not [name for _, attrs in tags for name in attrs if name.startswith("on")]
    assert WIDGET not in page  # no widget to render: nothing waits for a script from elsewhere

    # With the widget state saved, nbconvert renders the widget instead (by the widgets' script
    # from a CDN, as the README says), and the transcript is not in the page.
    model_id = output["data"][WIDGET]["model_id"]
    assert model_id in state["application/vnd.jupyter.widget-state+json"]["state"]
    nbconvert("--to", "html", "executed.ipynb", cwd=tmp_path, env=env)
    with_state = (tmp_path / "executed.html").read_text()
    assert f'"model_id": "{model_id}"' in html.unescape(with_state) and "tw-transcript" not in with_state
