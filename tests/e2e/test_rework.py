"""Reworking a thread in a real JupyterLab: the exported notebook opens and shows the conversation;
a view's switcher shows another version of a prompt, and a second notebook's view follows."""

from __future__ import annotations

import os
import re

import pytest

if not os.environ.get("CI"):  # in CI a missing Playwright is an error, not a skip
    pytest.importorskip("playwright.sync_api", reason="Python Playwright is not installed")

from playwright.sync_api import expect

import threadwidget as tw

from .conftest import ARTIFACTS, Pages
from .jupyter import JupyterServer, notebook_panel, open_notebook, run_notebook, widget_view

LIVE_MS = 60_000
MESSAGE = "[data-testid=tw-message]"
PROMPT = f"{MESSAGE}[data-role=user]"


@tw.tool
def lookup_order(order_id: str) -> dict:
    """Look up an order by id."""
    return {"order_id": order_id, "status": "shipped"}


def test_the_exported_notebook_opens_in_jupyterlab(lab: JupyterServer, pages: Pages) -> None:
    with tw.Store(lab.root_dir / "export.db") as store:
        model = tw.ScriptedModel(tokens_per_second=None)
        model.enqueue(tw.ScriptedModel.tool_calls([("lookup_order", {"order_id": "42"})]),
                      "Order **42** shipped. <img src=x onerror=window.__pwned=1> EXPORT-END")  # fmt: skip
        thread = tw.Agent("support", model=model, tools=[lookup_order], store=store).create_thread(title="Exported")
        thread.ask("Where is order 42?").wait(30)
        (lab.root_dir / "exported.ipynb").write_text(store.export(thread.id, format="ipynb"))
    page = pages.new("exported")
    open_notebook(page, lab, "exported.ipynb")
    panel = notebook_panel(page)
    expect(panel.locator(".jp-MarkdownCell h1")).to_contain_text("Exported", timeout=LIVE_MS)
    expect(panel.locator(".jp-MarkdownCell", has_text="Where is order 42?")).to_be_visible()
    expect(panel.locator(".jp-MarkdownCell strong", has_text="42")).to_be_visible()
    expect(panel.locator(".jp-CodeCell .jp-InputArea-editor").first).to_contain_text("lookup_order(order_id='42')")
    # the result as JSON: JupyterLab's JSON viewer shows it
    expect(panel.locator(".jp-CodeCell .jp-OutputArea-output").first).to_contain_text(re.compile('status.*"shipped"'))
    page.screenshot(path=str(ARTIFACTS / "e2e-exported-notebook.png"))
    assert page.evaluate("() => window.__pwned") is None
    assert pages.page_errors("exported") == []


def test_switching_a_version_in_one_view_changes_the_other_notebooks_view(lab: JupyterServer, pages: Pages) -> None:
    db = str(lab.root_dir / "rework.db")
    with tw.Store(db) as store:
        model = tw.ScriptedModel(tokens_per_second=None)
        model.enqueue("Order 42 shipped.", "Order 43 shipped too.")
        thread = tw.Agent("support", model=model, store=store).create_thread(title="Versions")
        first = thread.ask("Where is order 42?").wait(30)
        thread.edit(first.prompt_id, "Where is order 43?").wait(30)
        thread_id = thread.id
    cell = f"import threadwidget as tw\ntw.ChatView({thread_id!r}, store=tw.Store({db!r}))"
    lab.write_notebook("rework_a.ipynb", [cell])
    lab.write_notebook("rework_b.ipynb", [cell])
    a, b = pages.new("rework-a"), pages.new("rework-b")
    run_notebook(a, lab, "rework_a.ipynb")
    run_notebook(b, lab, "rework_b.ipynb")
    chat_a, chat_b = widget_view(a, "chat"), widget_view(b, "chat")
    for chat in (chat_a, chat_b):
        expect(chat.locator(PROMPT)).to_have_text(re.compile("Where is order 43"), timeout=LIVE_MS)
    prompt = chat_a.locator(PROMPT)
    expect(prompt.locator("[data-testid=tw-branch] .tw-branch-place")).to_have_text("2 / 2")
    prompt.locator(".tw-branch-prev").click()
    for chat in (chat_a, chat_b):  # the other kernel's view follows, through the store
        expect(chat.locator(PROMPT)).to_have_text(re.compile("Where is order 42"), timeout=LIVE_MS)
        expect(chat.locator(f"{MESSAGE}[data-role=assistant]")).to_have_text(re.compile("Order 42 shipped"))
        expect(chat.locator(f"{MESSAGE}")).to_have_count(2)
    expect(chat_b.locator("[data-testid=tw-branch] .tw-branch-place").first).to_have_text("1 / 2")
    chat_b.locator(PROMPT).hover()
    expect(chat_b.locator(f"{PROMPT} [data-action=edit]")).to_be_visible()
    b.screenshot(path=str(ARTIFACTS / "e2e-rework-switched.png"))
    assert pages.page_errors("rework-a") == [] and pages.page_errors("rework-b") == []
