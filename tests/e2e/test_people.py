"""End to end: people in one thread. Notebook A (alice) asks for a refund that needs a person's
approval; notebook B (bob), another kernel on the same store, shows the arguments and clicks
Approve; both views show the decision, who made it, and the finished answer. B names A's person and
shows her as present.

Run: ``.venv/bin/pytest tests/e2e/test_people.py -q``.
"""

from __future__ import annotations

import os

import pytest

if not os.environ.get("CI"):  # in CI a missing Playwright is an error, not a skip
    pytest.importorskip("playwright.sync_api", reason="Python Playwright is not installed")

from playwright.sync_api import expect

from .conftest import Pages
from .jupyter import JupyterServer, run_notebook, widget_view
from .test_lab import LIVE_MS, MESSAGE, TOOL_ROW, screenshot, views_output

PROMPT = "Please refund 80 euros on order 42"


def notebook_a(db: str, id_file: str) -> list[str]:
    return [
        f"""\
import pathlib
import threadwidget as tw

store = tw.Store({db!r})
refunded = []


@tw.tool(needs_approval=lambda args: args["amount"] > 50)
def refund(order_id: str, amount: float) -> dict:
    \"\"\"Refund an order (over 50 needs a person's approval).\"\"\"
    refunded.append(order_id)
    return {{"order_id": order_id, "refunded": amount}}


def calls(m):
    return tw.ScriptedModel.tool_calls([("refund", {{"order_id": m[2], "amount": float(m[1])}})])


model = tw.ScriptedModel(tokens_per_second=40, rules=[(r"refund (\\d+) euros on order (\\d+)", calls)])
agent = tw.Agent("support", model=model, tools=[refund], store=store)
thread = agent.create_thread(title="Refund for order 42", user_id="alice")
pathlib.Path({id_file!r}).write_text(thread.id)
answer = thread.ask({PROMPT!r}, user_id="alice")""",
        'chat = tw.ChatView(thread, user="alice")\n'
        'tools = tw.ToolCallsPanel(thread, user="alice")\n'
        "display(chat, tools)",
    ]


def notebook_b(db: str, id_file: str) -> list[str]:
    return [
        f"""\
import pathlib
import threadwidget as tw

store = tw.Store({db!r})
thread_id = pathlib.Path({id_file!r}).read_text()""",
        'chat = tw.ChatView(thread_id, store=store, user="bob")  # no agent here\n'
        'tools = tw.ToolCallsPanel(thread_id, store=store, user="bob")\n'
        "display(chat, tools)",
    ]


def test_a_refund_waits_in_one_notebook_and_is_approved_in_another(lab: JupyterServer, pages: Pages) -> None:
    db, id_file = str(lab.root_dir / "people.db"), str(lab.root_dir / "people-thread-id.txt")
    lab.write_notebook("people_a.ipynb", notebook_a(db, id_file))
    lab.write_notebook("people_b.ipynb", notebook_b(db, id_file))
    a, b = pages.new("people-a"), pages.new("people-b")
    run_notebook(a, lab, "people_a.ipynb")  # asks; the refund waits for a person
    run_notebook(b, lab, "people_b.ipynb")
    a_chat, b_chat, b_tools = widget_view(a, "chat"), widget_view(b, "chat"), widget_view(b, "tools")
    for view in (a_chat, b_chat, b_tools):
        expect(view).to_be_visible(timeout=LIVE_MS)

    # B names A's person, and shows her as here (A's view is open in its browser).
    prompt_b = b_chat.locator(f"{MESSAGE}[data-role=user]", has_text=PROMPT)
    expect(prompt_b.locator(".tw-who")).to_have_text("alice", timeout=LIVE_MS)
    expect(a_chat.locator(f"{MESSAGE}[data-role=user] .tw-who")).to_have_text("You")
    expect(b_chat.get_by_test_id("tw-present")).to_have_text("Also here: alice", timeout=LIVE_MS)
    expect(a_chat.get_by_test_id("tw-present")).to_have_text("Also here: bob", timeout=LIVE_MS)

    # The call waits in both views, with its arguments.
    for chat in (a_chat, b_chat):
        box = chat.get_by_test_id("tw-approval")
        expect(box).to_be_visible(timeout=LIVE_MS)
        expect(box.get_by_test_id("tw-approval-args")).to_contain_text('"order_id": "42"')
        expect(box.get_by_test_id("tw-approval-args")).to_contain_text('"amount": 80')
        expect(chat.get_by_test_id("tw-status")).to_have_text("Waiting for a person to approve refund")
    expect(b_tools.locator(f"{TOOL_ROW}[data-status=awaiting_approval]")).to_have_count(1)
    screenshot(views_output(b), "e2e-approval-waiting-b.png")

    b_box = b_chat.get_by_test_id("tw-approval")
    b_box.get_by_test_id("tw-approval-note").fill("receipt checked")
    b_box.get_by_test_id("tw-approve").click()

    # Both views show who decided, and the finished answer (A's kernel ran the tool).
    for chat in (a_chat, b_chat):
        expect(chat.get_by_test_id("tw-decision")).to_have_text("approved by bob: receipt checked", timeout=LIVE_MS)
        expect(chat.get_by_test_id("tw-approval")).to_be_hidden()
        answer = chat.locator(f"{MESSAGE}[data-role=assistant]", has_text="Here is what the tools returned")
        expect(answer).to_have_attribute("data-status", "success", timeout=LIVE_MS)
        expect(answer).to_contain_text('"refunded": 80.0')
        expect(chat.get_by_test_id("tw-status")).to_have_attribute("data-state", "idle", timeout=LIVE_MS)
    expect(b_tools.locator(f"{TOOL_ROW}[data-status=success]")).to_have_count(1, timeout=LIVE_MS)
    screenshot(views_output(b), "e2e-approval-decided-b.png")
    assert pages.page_errors("people-a") == [] and pages.page_errors("people-b") == []
