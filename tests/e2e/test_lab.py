"""End to end in a real browser: notebooks run in JupyterLab and Notebook 7 served by a real Jupyter
server, driven in Debian's Chromium by Playwright.

The main story: two notebooks on two kernels share one store file. Notebook A owns the agent (a
scripted model and a slow tool) and serves it; notebook B only shows the thread. A prompt typed into
B's box is answered by A's kernel, and both views show it live: the tool's progress, the streamed
text, B's Stop button ending A's run, and an answer full of HTML/JS that must stay inert.

Run: ``.venv/bin/pytest tests/e2e -q``. Screenshots of the views (``e2e-*.png``), each page's
console log, and on failure a screenshot of every open page land in ``test-artifacts/``.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

if not os.environ.get("CI"):  # in CI a missing Playwright is an error, not a skip
    pytest.importorskip("playwright.sync_api", reason="Python Playwright is not installed")

from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from .conftest import ARTIFACTS, ROOT, Pages
from .jupyter import JupyterServer, error_outputs, notebook_panel, run_notebook, widget_view

# Cross-kernel conditions: a commit in one kernel, the feed of the other, a comm message, a frame.
# Milliseconds; generous because two cores are shared with other test processes.
LIVE_MS = 60_000

MESSAGE = "[data-testid=tw-message]"
TOOL_ROW = "[data-testid=tw-toolcall]"

# Long enough to be watched while it streams (the scripted model sends 40 words a second) and to
# be stopped half way; it is never sent in full.
LONG_ANSWER = " ".join(
    [
        "Good news: I found order 42 in the warehouse system, and here is the full picture.",
        "The parcel left our central warehouse yesterday afternoon and was handed to the carrier",
        "at six in the evening. It is travelling by road to the regional sorting centre, where it",
        "should arrive tonight. From there a local driver takes it on the last leg, usually the next",
        "morning, so delivery is expected tomorrow between nine and one.",
    ]
    * 6
    + ["LONG-ANSWER-END"]
)

# The answer to the second prompt: every way an answer could try to run script in the page.
INJECTION_ANSWER = "\n\n".join(
    [
        "Here is the tracking page: [click](javascript:window.__pwned=3) and the "
        "[carrier site](https://example.com/track/42).",
        '<img src=x onerror="window.__pwned=1">',
        "<script>window.__pwned=2</script>",
        '<a href="javascript:window.__pwned=4">raw link</a> '
        '<iframe srcdoc="<script>parent.__pwned=5</script>"></iframe> '
        '<svg><script>window.__pwned=6</script></svg> <b onmouseover="window.__pwned=7">bold</b>',
        "INJECTION-END",
    ]
)

FIRST_PROMPT = "Where is my order 42? Please check and advise, thanks."  # a, b, d, m, y: notebook shortcuts
SECOND_PROMPT = "Can you send me the tracking link?"


def notebook_a(db: str, id_file: str) -> list[str]:
    return [
        f"""\
import pathlib
import threadwidget as tw

store = tw.Store({db!r})


@tw.tool
def slow_lookup(order_id: str, ctx: tw.ToolContext) -> dict:
    \"\"\"Look up an order in the warehouse, step by step.\"\"\"
    for i in range(10):
        ctx.progress(i / 10, f"step {{i + 1}} of 10")
        if ctx.wait(0.5):  # True: the run was aborted
            return {{"order_id": order_id, "status": f"cancelled at step {{i + 1}}"}}
    return {{"order_id": order_id, "status": "shipped"}}


model = tw.ScriptedModel(tokens_per_second=40)
model.enqueue(
    tw.ScriptedModel.tool_calls([("slow_lookup", {{"order_id": "42"}})]),
    {LONG_ANSWER!r},
    {INJECTION_ANSWER!r},
)
agent = tw.Agent("support", model=model, instructions="Be helpful.", tools=[slow_lookup], store=store)
thread = agent.create_thread(title="Order 42 (notebook A)")
pathlib.Path({id_file!r}).write_text(thread.id)
worker = agent.serve()  # answers prompts left pending by any process, notebook B's included""",
        "chat = tw.ChatView(thread)\ntools = tw.ToolCallsPanel(thread)\ndisplay(chat, tools)",
    ]


def notebook_b(db: str, id_file: str) -> list[str]:
    return [
        f"""\
import pathlib
import threadwidget as tw

store = tw.Store({db!r})
thread_id = pathlib.Path({id_file!r}).read_text()""",
        "chat = tw.ChatView(thread_id, store=store)  # no agent here\n"
        "tools = tw.ToolCallsPanel(thread_id, store=store)\n"
        "display(chat, tools)",
    ]


def views_output(page: Page) -> Locator:
    """The cell output area that holds the ChatView and the ToolCallsPanel."""
    return notebook_panel(page).locator(".jp-OutputArea", has=page.locator(".tw-root[data-tw=chat]")).last


def screenshot(target: Page | Locator, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    target.screenshot(path=str(ARTIFACTS / name), timeout=LIVE_MS)


def wait_in_page(target: Locator, condition: str, value: object, what: str, shown: str) -> None:
    """Wait until ``condition(element, value)`` holds in the page; on timeout, say ``what`` was
    awaited and what the element (``shown(element)``) showed instead."""
    handle = target.element_handle()
    try:
        target.page.wait_for_function(
            f"([el, value]) => ({condition})(el, value)", arg=[handle, value], timeout=LIVE_MS
        )
    except PlaywrightTimeoutError:
        now = target.page.evaluate(f"(el) => ({shown})(el)", handle)
        raise AssertionError(f"waited {LIVE_MS / 1000:.0f} s for {what}; it shows: {now}") from None


def wait_progress_above(bar: Locator, value: int) -> int:
    """Wait until the running call's progress bar shows more than ``value``; return what it shows."""
    wait_in_page(
        bar,
        """(bar, value) => bar.closest('[data-testid=tw-toolcall]').dataset.status === 'running'
              && Number(bar.getAttribute('aria-valuenow')) > value""",
        value,
        f"the running tool call's progress to pass {value}",
        "(bar) => { const row = bar.closest('[data-testid=tw-toolcall]'); return `status=${row.dataset.status}`"
        " + ` aria-valuenow=${bar.getAttribute('aria-valuenow')} ${row.textContent}`; }",
    )
    return int(bar.get_attribute("aria-valuenow") or "0")


def wait_text_grows(body: Locator, than: int) -> int:
    """Wait until a message that is still streaming shows more than ``than`` characters."""
    wait_in_page(
        body,
        "(body, n) => body.closest('.tw-msg').classList.contains('tw-live') && body.textContent.length > n",
        than,
        f"the streaming answer to grow past {than} characters",
        "(body) => { const m = body.closest('.tw-msg');"
        " return `status=${m.dataset.status} class=${m.className} text=${body.textContent}`; }",
    )
    return len(body.text_content() or "")


# The evidence that an answer stayed inert, gathered from every view in the page.
_INERT_JS = """
() => {
  const roots = [...document.querySelectorAll('.tw-root')];
  const all = roots.flatMap((r) => [...r.querySelectorAll('*')]);
  return {
    pwned: window.__pwned === undefined ? null : String(window.__pwned),
    scripts: all.filter((e) => e.localName === 'script').length,
    frames: all.filter((e) => ['iframe', 'object', 'embed'].includes(e.localName)).length,
    handlers: all.flatMap((e) => [...e.attributes].filter((a) => a.name.startsWith('on'))
                                               .map((a) => `${e.localName}[${a.name}]`)),
    jsUrls: all.flatMap((e) => [...e.attributes].filter((a) => /^\\s*javascript:/i.test(a.value))
                                              .map((a) => `${e.localName}[${a.name}=${a.value}]`)),
  };
}
"""


def test_quickstart_notebook_runs_in_jupyterlab(lab: JupyterServer, pages: Pages) -> None:
    shutil.copyfile(ROOT / "notebooks" / "01_quickstart.ipynb", lab.root_dir / "01_quickstart.ipynb")
    page = pages.new("quickstart")
    run_notebook(page, lab, "01_quickstart.ipynb")
    assert error_outputs(page) == []
    assert notebook_panel(page).locator(".jp-OutputArea-output").count() >= 4
    assert pages.page_errors("quickstart") == []


def test_two_notebooks_share_a_thread_live(lab: JupyterServer, pages: Pages) -> None:
    db, id_file = str(lab.root_dir / "story.db"), str(lab.root_dir / "story-thread-id.txt")
    lab.write_notebook("story_a.ipynb", notebook_a(db, id_file))
    lab.write_notebook("story_b.ipynb", notebook_b(db, id_file))
    a, b = pages.new("notebook-a"), pages.new("notebook-b")
    run_notebook(a, lab, "story_a.ipynb")  # creates the thread, writes its id, serves the agent
    run_notebook(b, lab, "story_b.ipynb")  # a second kernel: opens the same file, no agent

    a_chat, a_tools = widget_view(a, "chat"), widget_view(a, "tools")
    b_chat, b_tools = widget_view(b, "chat"), widget_view(b, "tools")
    for view in (a_chat, a_tools, b_chat, b_tools):
        expect(view).to_be_visible(timeout=LIVE_MS)
    expect(b_chat.locator(".tw-title")).to_have_text("Order 42 (notebook A)")

    # Type into B's box, key by key: the keys must stay in the box (no notebook shortcuts).
    cells_before = notebook_panel(b).locator(".jp-Cell").count()
    box = b_chat.get_by_test_id("tw-input")
    box.click()
    box.press_sequentially(FIRST_PROMPT)
    expect(box).to_have_value(FIRST_PROMPT)
    assert notebook_panel(b).locator(".jp-Cell").count() == cells_before
    box.press("Enter")
    expect(box).to_have_value("")

    for chat in (b_chat, a_chat):
        expect(chat.locator(f"{MESSAGE}[data-role=user]", has_text=FIRST_PROMPT)).to_be_visible(timeout=LIVE_MS)

    # A's kernel answers: the tool runs with progress, shown in both tool panels.
    bars = []
    for tools in (b_tools, a_tools):
        row = tools.locator(f"{TOOL_ROW}[data-status=running]", has_text="slow_lookup")
        expect(row).to_have_count(1, timeout=LIVE_MS)
        bar = row.get_by_test_id("tw-progress")
        expect(bar).to_be_visible()
        expect(bar).to_have_attribute("role", "progressbar")
        bars.append((bar, wait_progress_above(bar, -1)))
    for bar, first in bars:
        assert wait_progress_above(bar, first) > first
    for chat in (b_chat, a_chat):  # a running tool is part of the answer: it can be stopped
        expect(chat.get_by_test_id("tw-status")).to_have_attribute("data-state", "streaming")
        expect(chat.get_by_test_id("tw-stop")).to_be_visible()
    screenshot(views_output(b), "e2e-tool-progress-b.png")
    for tools in (b_tools, a_tools):  # it ran to the end: nobody stopped it
        row = tools.locator(TOOL_ROW, has_text="slow_lookup")
        expect(row).to_have_attribute("data-status", "success", timeout=LIVE_MS)
        expect(row.locator(".tw-outcome pre")).to_contain_text('"status": "shipped"')

    # Then the answer streams into both views.
    answer_b = b_chat.locator(f"{MESSAGE}[data-role=assistant]", has_text="Good news")
    expect(answer_b).to_have_class(re.compile(r"\btw-live\b"), timeout=LIVE_MS)
    answer_id = answer_b.get_attribute("data-message-id")
    answer_a = a_chat.locator(f'{MESSAGE}[data-message-id="{answer_id}"]')
    expect(answer_a).to_have_class(re.compile(r"\btw-live\b"), timeout=LIVE_MS)
    for answer in (answer_b, answer_a):
        body = answer.locator(".tw-body")
        wait_text_grows(body, wait_text_grows(body, 0))
    screenshot(views_output(b), "e2e-midstream-b.png")

    # B's Stop button stops the run in A's kernel.
    stop = b_chat.get_by_test_id("tw-stop")
    expect(stop).to_be_visible()
    stop.click()
    for answer in (answer_a, answer_b):
        expect(answer).to_have_attribute("data-status", "aborted", timeout=LIVE_MS)
        expect(answer).not_to_have_class(re.compile(r"\btw-live\b"))
    stopped_text = answer_a.locator(".tw-body").inner_text()
    assert stopped_text.startswith("Good news")
    assert "LONG-ANSWER-END" not in stopped_text
    expect(answer_b.locator(".tw-body")).to_have_text(stopped_text)
    expect(b_chat.get_by_test_id("tw-status")).to_have_attribute("data-state", "aborted")
    expect(stop).to_be_hidden()
    for chat in (a_chat, b_chat):  # three messages in all: nothing older to load
        expect(chat.get_by_test_id("tw-older")).to_be_hidden()

    # The next prompt gets an answer full of HTML and JS; it must render inert in both views.
    box.click()
    box.press_sequentially(SECOND_PROMPT)
    box.press("Enter")
    injected = {}
    for label, chat in (("b", b_chat), ("a", a_chat)):
        done = chat.locator(f"{MESSAGE}[data-role=assistant][data-status=success]", has_text="INJECTION-END")
        expect(done).to_have_count(1, timeout=LIVE_MS)
        injected[label] = done
    # The stopped answer stayed as it was when stopped.
    expect(answer_a.locator(".tw-body")).to_have_text(stopped_text)
    expect(answer_b.locator(".tw-body")).to_have_text(stopped_text)

    for label, page in (("b", b), ("a", a)):
        message = injected[label]
        # an <img> that survived sanitising would have fired onerror by the time it completes
        page.wait_for_function(
            "(m) => [...m.querySelectorAll('img')].every((i) => i.complete)", arg=message.element_handle()
        )
        evidence = page.evaluate(_INERT_JS)
        assert evidence == {"pwned": None, "scripts": 0, "frames": 0, "handlers": [], "jsUrls": []}, label
        click = message.locator("a", has_text="click")
        if click.count():
            assert not re.match(r"\s*javascript:", click.get_attribute("href") or "", re.I)
        carrier = message.locator("a", has_text="carrier site")
        expect(carrier).to_have_attribute("href", "https://example.com/track/42")
        rel = (carrier.get_attribute("rel") or "").split()
        assert {"noopener", "noreferrer"} <= set(rel), rel

    screenshot(views_output(a), "e2e-notebook-a.png")
    screenshot(views_output(b), "e2e-notebook-b.png")
    assert pages.page_errors("notebook-a") == []
    assert pages.page_errors("notebook-b") == []


def test_chatview_renders_in_notebook_7(lab: JupyterServer, pages: Pages) -> None:
    db = str(lab.root_dir / "nb7.db")
    lab.write_notebook(
        "nb7.ipynb",
        [
            f"""\
import threadwidget as tw

store = tw.Store({db!r})
model = tw.ScriptedModel(tokens_per_second=None)
model.enqueue(
    "**Order 42** shipped yesterday and arrives on Friday. NB7-END\\n\\n"
    "```python\\ndef eta(order):\\n    return 'Friday'\\n```"
)
agent = tw.Agent("support", model=model, store=store)
thread = agent.create_thread(title="Asked in Notebook 7")
result = thread.generate_text("Where is order 42?")
assert result.status == "success", result""",
            "tw.ChatView(thread)",
        ],
    )
    page = pages.new("notebook7")
    run_notebook(page, lab, "nb7.ipynb", ui="notebook")
    assert "/notebooks/nb7.ipynb" in page.url

    chat = widget_view(page, "chat")
    expect(chat).to_be_visible(timeout=LIVE_MS)
    expect(chat.locator(".tw-title")).to_have_text("Asked in Notebook 7")
    expect(chat.locator(f"{MESSAGE}[data-role=user]")).to_have_text(re.compile("Where is order 42"))
    answer = chat.locator(f"{MESSAGE}[data-role=assistant]")
    expect(answer).to_have_attribute("data-status", "success")
    expect(answer).to_contain_text("shipped yesterday and arrives on Friday. NB7-END")
    expect(answer.locator("strong")).to_have_text("Order 42")  # markdown rendered
    # the code is highlighted: the view asked its kernel for the highlighter and imported it
    expect(answer.locator("pre > code .hljs-keyword")).to_have_text(["def", "return"], timeout=LIVE_MS)
    expect(answer.locator("pre > code")).to_have_text("def eta(order):\n    return 'Friday'")
    expect(answer).not_to_have_class(re.compile(r"\btw-live\b"))
    screenshot(views_output(page), "e2e-notebook7.png")
    # Notebook 7's own bundle throws at start-up ("reading 'schema'"), with no widget on the page.
    assert pages.page_errors("notebook7", thrown_outside=("/static/notebook/",)) == []


ORDER_PROMPTS = {"a": ["Where is order 22?"], "b": ["Where is order 11?", "Where is order 33?"]}


def queue_notebook(db: str, id_file: str, *, serves: bool, release: str = "") -> list[str]:
    """A notebook on the thread of ``id_file``: with ``serves``, it creates the thread and its view
    has the agent (a scripted model that looks orders up with a tool that waits until the file
    ``release`` exists); else a plain view."""
    if not serves:
        return [
            f"import pathlib\nimport threadwidget as tw\n\nstore = tw.Store({db!r})\n"
            f"thread_id = pathlib.Path({id_file!r}).read_text()",
            "tw.ChatView(thread_id, store=store)  # no agent here",
        ]
    return [
        f"""\
import pathlib
import threadwidget as tw

store = tw.Store({db!r})


@tw.tool
def lookup_order(order_id: str, ctx: tw.ToolContext) -> dict:
    \"\"\"Look up an order.\"\"\"
    while not pathlib.Path({release!r}).exists():  # until the test has seen the prompts queue up
        if ctx.wait(0.05):
            break
    return {{"order_id": order_id, "status": f"order {{order_id}} shipped"}}


lookup = (r"order (\\d+)", lambda m: tw.ScriptedModel.tool_calls([("lookup_order", {{"order_id": m[1]}})]))
agent = tw.Agent("support", model=tw.ScriptedModel(rules=[lookup]), tools=[lookup_order], store=store)
thread = agent.create_thread(title="Orders, one at a time")
pathlib.Path({id_file!r}).write_text(thread.id)""",
        "tw.ChatView(thread)  # with the agent: this kernel answers the thread's prompts",
    ]


def type_prompt(chat: Locator, text: str) -> None:
    box = chat.get_by_test_id("tw-input")
    box.click()
    box.press_sequentially(text)
    box.press("Enter")
    expect(box).to_have_value("")


def test_prompts_typed_in_two_kernels_are_answered_one_at_a_time_in_order(lab: JupyterServer, pages: Pages) -> None:
    db, id_file = str(lab.root_dir / "queue.db"), str(lab.root_dir / "queue-thread-id.txt")
    release = lab.root_dir / "queue-release"
    lab.write_notebook("queue_a.ipynb", queue_notebook(db, id_file, serves=True, release=str(release)))
    lab.write_notebook("queue_b.ipynb", queue_notebook(db, id_file, serves=False))
    a, b = pages.new("queue-a"), pages.new("queue-b")
    run_notebook(a, lab, "queue_a.ipynb")
    run_notebook(b, lab, "queue_b.ipynb")
    chats = {"a": widget_view(a, "chat"), "b": widget_view(b, "chat")}
    for chat in chats.values():
        expect(chat.locator(".tw-title")).to_have_text("Orders, one at a time", timeout=LIVE_MS)

    type_prompt(chats["b"], ORDER_PROMPTS["b"][0])
    running = chats["a"].locator(f"{MESSAGE}[data-role=assistant]", has=a.locator("[data-status=running]"))
    expect(running).to_have_count(1, timeout=LIVE_MS)  # the first answer's tool runs
    type_prompt(chats["a"], ORDER_PROMPTS["a"][0])  # asked meanwhile, from the other kernel
    type_prompt(chats["b"], ORDER_PROMPTS["b"][1])
    for chat in chats.values():  # both wait their turn, shown with their place in the queue
        badges = chat.get_by_test_id("tw-queued")
        expect(badges.filter(has_text="queued · #2")).to_have_count(1, timeout=LIVE_MS)
        expect(chat.get_by_test_id("tw-status")).to_contain_text("queued")
    screenshot(views_output(b), "e2e-queue-b.png")
    release.touch()  # the first answer's tool returns; the others follow, one at a time

    order = ["11", "22", "33"]
    for chat in chats.values():
        finals = chat.locator(f"{MESSAGE}[data-role=assistant][data-status=success]", has_text="shipped")
        expect(finals).to_have_count(3, timeout=LIVE_MS)
        expect(chat.get_by_test_id("tw-status")).to_have_attribute("data-state", "idle", timeout=LIVE_MS)
        shown = chat.locator(MESSAGE).evaluate_all(
            "(ms) => ms.map((m) => [m.dataset.role, m.querySelector('.tw-body').innerText.trim()])"
        )
        prompts = [text for role, text in shown if role == "user"]
        assert prompts == [f"Where is order {n}?" for n in order], prompts
        # each answer follows its own prompt and names its own order: nothing interleaved
        current = None
        for role, text in shown:
            if role == "user":
                current = re.search(r"order (\d+)", text)[1]  # type: ignore[index]
            elif "shipped" in text:
                assert f"order {current} shipped" in text and all(
                    f"order {n} shipped" not in text for n in order if n != current
                ), (current, text)
        expect(chat.get_by_test_id("tw-queued").filter(has_text="queued")).to_have_count(0)
    screenshot(views_output(a), "e2e-queue-a-done.png")
    assert pages.page_errors("queue-a") == [] and pages.page_errors("queue-b") == []
