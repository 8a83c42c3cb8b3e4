"""End to end: the search box of a ThreadApp in JupyterLab. Typing finds messages across threads
(the matched words marked, the snippet built as text: a hostile message stays text), a message
another kernel writes while the query stays appears in the hits, and clicking a hit opens its thread
with the hit highlighted in the chat.

Run: ``.venv/bin/pytest tests/e2e/test_search.py -q``.
"""

from __future__ import annotations

import os
import subprocess

import pytest

if not os.environ.get("CI"):  # in CI a missing Playwright is an error, not a skip
    pytest.importorskip("playwright.sync_api", reason="Python Playwright is not installed")

from playwright.sync_api import expect

from ..conftest import PYTHON, ROOT, python_env
from .conftest import Pages
from .jupyter import JupyterServer, run_notebook, widget_view
from .test_lab import LIVE_MS, MESSAGE, screenshot

HOSTILE = '<img src=x onerror="window.__searchPwned=1"> refund for order 9'


def notebook(db: str) -> list[str]:
    return [
        f"""\
import threadwidget as tw

store = tw.Store({db!r})
kettle = store.create_thread(title="Broken kettle", user_id="alice")
store.add_message(kettle.id, role="user", text="My kettle arrived broken, I would like a refund.")
store.add_message(kettle.id, role="assistant", text="Sorry! A refund for order 7 is on its way.")
billing = store.create_thread(title="Invoice", user_id="alice")
store.add_message(billing.id, role="user", text="Please send the invoice for order 7.")
store.add_message(billing.id, role="user", text={HOSTILE!r})""",
        'app = tw.ThreadApp(store=store, user_id="alice")\napp',
    ]


def test_the_search_box_finds_marks_follows_and_opens(lab: JupyterServer, pages: Pages) -> None:
    db = str(lab.root_dir / "search.db")
    lab.write_notebook("search.ipynb", notebook(db))
    page = pages.new("search")
    run_notebook(page, lab, "search.ipynb")
    app = widget_view(page, "app")
    expect(app).to_be_visible(timeout=LIVE_MS)
    app.get_by_test_id("tw-search").fill("refund")
    hits = app.get_by_test_id("tw-hit")
    expect(hits).to_have_count(3, timeout=LIVE_MS)  # two in the kettle thread, the hostile one in billing
    expect(app.locator(".tw-hit mark.tw-mark").first).to_have_text("refund", ignore_case=True)
    hostile = hits.filter(has_text="onerror")
    expect(hostile).to_have_count(1)  # shown as text
    assert app.locator(".tw-hit img").count() == 0
    assert page.evaluate("window.__searchPwned") is None

    # another process writes a message that matches: the hits follow the store while the query stays
    code = (
        "import sys, threadwidget as tw\n"
        "s = tw.Store(sys.argv[1]); (t,) = [t for t in s.list_threads() if t.title == 'Invoice']\n"
        "s.add_message(t.id, role='assistant', text='The refund was approved by Bob.')\n"
    )
    subprocess.run([PYTHON, "-c", code, db], check=True, env=python_env(), cwd=ROOT, timeout=60)
    expect(hits).to_have_count(4, timeout=LIVE_MS)
    screenshot(app, "search-light.png")

    # clicking a hit opens its thread in the chat, the hit highlighted
    hits.filter(has_text="is on its way").click()
    expect(app.locator(MESSAGE).filter(has_text="arrived broken")).to_have_count(1, timeout=LIVE_MS)
    expect(app.locator(f"{MESSAGE}.tw-highlighted")).to_contain_text("is on its way", timeout=LIVE_MS)
    screenshot(app, "search-hit-light.png")
    app.get_by_test_id("tw-search").fill("")
    expect(hits).to_have_count(0, timeout=LIVE_MS)
    assert pages.page_errors("search") == []
