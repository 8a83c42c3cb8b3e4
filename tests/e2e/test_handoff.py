"""A handoff in a real JupyterLab: a ChatView follows an answer another process (this test's)
writes, where the booking agent hands the thread over to confirm; the view shows a divider under
the step that handed over, then confirm's answer, in the light and the dark theme. Screenshots:
``test-artifacts/e2e-handoff-light.png`` and ``-dark.png``."""

from __future__ import annotations

import os

import pytest

if not os.environ.get("CI"):  # in CI a missing Playwright is an error, not a skip
    pytest.importorskip("playwright.sync_api", reason="Python Playwright is not installed")

from playwright.sync_api import expect

import threadwidget as tw

from .conftest import ARTIFACTS, Pages
from .jupyter import JupyterServer, run_notebook, widget_view

LIVE_MS = 60_000


def notebook(db: str, thread_id: str) -> list[str]:
    return [f"import threadwidget as tw\n\nstore = tw.Store({db!r})\ntw.ChatView({thread_id!r}, store=store)"]


def hand_over_elsewhere(db: str, thread_id: str) -> None:
    """booking hands the thread to confirm, which answers: written by this process, not the kernel."""
    with tw.Store(db) as store:
        confirm = tw.Agent("confirm", model=tw.ScriptedModel(tokens_per_second=None, rules=[
            (".", "Confirmed: a table for two at **19:00**.")]), store=store)  # fmt: skip
        transfer = tw.ScriptedModel.tool_calls([("transfer_to_confirm", {})], text="Passing you to confirmations.")
        booking = tw.Agent("booking", model=tw.ScriptedModel(tokens_per_second=None, rules=[("book", transfer)]),
                           handoffs=[confirm], store=store)  # fmt: skip
        answer = booking.continue_thread(thread_id).ask("Please book a table for two at 19:00").wait(30)
        assert answer.status == "success" and [m.agent for m in answer.messages] == ["booking", "confirm"]


def test_a_chat_view_marks_where_the_thread_was_handed_over(lab: JupyterServer, pages: Pages) -> None:
    db = str(lab.root_dir / "handoff.db")
    with tw.Store(db) as store:
        thread_id = store.create_thread(title="Dinner", agent="booking").id
    lab.write_notebook("handoff.ipynb", notebook(db, thread_id))
    page = pages.new("handoff", width=1000, height=800)
    run_notebook(page, lab, "handoff.ipynb")
    chat = widget_view(page, "chat")
    expect(chat).to_be_visible(timeout=LIVE_MS)
    hand_over_elsewhere(db, thread_id)
    divider = chat.locator("[data-testid=tw-handoff]:visible")
    expect(divider).to_have_count(1, timeout=LIVE_MS)
    expect(divider).to_have_text("handed over to confirm")
    messages = chat.get_by_test_id("tw-message")
    expect(messages).to_have_count(3, timeout=LIVE_MS)
    expect(messages.nth(1).locator(".tw-who")).to_have_text("booking")
    expect(messages.nth(1).get_by_test_id("tw-handoff")).to_be_visible()
    expect(messages.nth(2).locator(".tw-who")).to_have_text("confirm")
    expect(messages.nth(2)).to_contain_text("Confirmed: a table for two at 19:00.")
    ARTIFACTS.mkdir(exist_ok=True)
    chat.screenshot(path=str(ARTIFACTS / "e2e-handoff-light.png"), timeout=LIVE_MS)

    light = divider.evaluate("(el) => getComputedStyle(el).color")
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").first.click()
    page.locator(".lm-Menu-item:visible", has_text="Theme").first.hover()
    page.locator(".lm-Menu-item:visible", has_text="JupyterLab Dark").first.click()
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=LIVE_MS)
    page.wait_for_function("([el, was]) => getComputedStyle(el).color !== was",
                           arg=[divider.element_handle(), light], timeout=LIVE_MS)  # fmt: skip
    expect(page.locator("#jupyterlab-splash")).to_have_count(0, timeout=LIVE_MS)  # the theme is applied
    chat.screenshot(path=str(ARTIFACTS / "e2e-handoff-dark.png"), timeout=LIVE_MS)
    assert pages.page_errors("handoff") == []
