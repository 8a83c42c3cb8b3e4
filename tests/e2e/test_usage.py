"""UsagePanel in a real JupyterLab: Chart.js draws the bars in Chromium, an answer that ends in
another process (this test's) adds a bar, clicking a bar filters the table, and a switch to the
dark theme repaints it. Screenshots: ``test-artifacts/e2e-usage-light.png`` and ``-dark.png``
(copied to docs/ for the README)."""

from __future__ import annotations

import os

import pytest

if not os.environ.get("CI"):  # in CI a missing Playwright is an error, not a skip
    pytest.importorskip("playwright.sync_api", reason="Python Playwright is not installed")

from playwright.sync_api import Locator, expect

import threadwidget as tw

from .conftest import ARTIFACTS, Pages
from .jupyter import JupyterServer, run_notebook, widget_view

LIVE_MS = 60_000

# The chart's bars, found in the canvas's pixels: [{x, y}] of the middle of each bar's foot.
_BARS_JS = """
(canvas) => {
  const ctx = canvas.getContext('2d');
  const { width, height } = canvas;
  const data = ctx.getImageData(0, 0, width, height).data;
  const scale = width / canvas.clientWidth;
  const parts = [[0x4e, 0x79, 0xa7], [0xf2, 0x8e, 0x2b], [0xe1, 0x57, 0x59]];  // the first parts' colours
  const isBar = (x, y) => {
    const i = (y * width + x) * 4;
    return parts.some(([r, g, b]) => Math.abs(data[i] - r) < 8 && Math.abs(data[i + 1] - g) < 8
                                    && Math.abs(data[i + 2] - b) < 8);
  };
  let best = [];
  for (let y = height - 1; y >= height / 2; y -= 2) {  // the lower half: the bars' feet, not the legend
    const runs = [];
    let start = -1;
    for (let x = 0; x <= width; x++) {
      const on = x < width && isBar(x, y);
      if (on && start < 0) start = x;
      if (!on && start >= 0) { if (x - start > 4) runs.push({ x: (start + x) / 2 / scale, y: y / scale }); start = -1; }
    }
    if (runs.length > best.length) best = runs;
  }
  return best;
}
"""


def notebook(db: str) -> list[str]:
    return [
        f"""\
import threadwidget as tw

store = tw.Store({db!r})
for agent, model, words in [("support", "gpt-4o-mini", 6000), ("support", "gpt-4o", 900),
                            ("billing", "gpt-4o-mini", 3000), ("billing", "my-llama", 2500)]:
    scripted = tw.ScriptedModel(model, tokens_per_second=None)  # named as the model it stands for
    scripted.enqueue(" ".join(f"word{{i}}" for i in range(words)))
    answer = tw.Agent(agent, model=scripted, store=store).create_thread(user_id="alice").generate_text("Hi")
    assert answer.status == "success", answer""",
        "tw.UsagePanel(store, by='agent')  # the default prices: gpt-4o and gpt-4o-mini, not my-llama",
    ]


def answer_elsewhere(db: str, agent: str, words: int) -> None:
    """An answer written by this test's process, not the notebook's kernel."""
    with tw.Store(db) as store:
        model = tw.ScriptedModel("gpt-4o-mini", tokens_per_second=None)
        model.enqueue(" ".join(f"w{i}" for i in range(words)))
        result = tw.Agent(agent, model=model, store=store).create_thread(user_id="bob").generate_text("Report")
        assert result.status == "success"


def bars(canvas: Locator) -> list[dict[str, float]]:
    return canvas.evaluate(_BARS_JS)


def wait_bars(panel: Locator, n: int) -> list[dict[str, float]]:
    expect(panel).to_have_attribute("data-bars", str(n), timeout=LIVE_MS)
    canvas = panel.get_by_test_id("tw-usage-chart")
    panel.page.wait_for_function(f"(c) => ({_BARS_JS})(c).length === {n}", arg=canvas.element_handle(), timeout=LIVE_MS)
    return bars(canvas)


def test_usage_panel_draws_follows_filters_and_themes(lab: JupyterServer, pages: Pages) -> None:
    db = str(lab.root_dir / "usage.db")
    lab.write_notebook("usage.ipynb", notebook(db))
    page = pages.new("usage", width=1100, height=900)
    run_notebook(page, lab, "usage.ipynb")
    panel = widget_view(page, "usage")
    expect(panel).to_be_visible(timeout=LIVE_MS)
    expect(panel.locator(".tw-pane-head")).to_have_text("Usage per agent, parts per model")
    wait_bars(panel, 2)  # Chart.js drew the agents' bars
    rows = panel.locator("tbody [data-testid=tw-usage-row]")
    expect(rows).to_have_count(4)
    expect(panel.locator("tbody tr", has_text="my-llama")).to_contain_text("no price")  # never 0
    answer_elsewhere(db, "nightly", 30_000)  # another process: the panel's kernel only sees the store
    found = wait_bars(panel, 3)
    expect(rows).to_have_count(5)
    expect(rows.first).to_contain_text("nightly")  # most dollars first
    expect(panel.locator("tfoot")).to_contain_text("$")

    canvas = panel.get_by_test_id("tw-usage-chart")
    left = min(found, key=lambda b: b["x"])  # the first bar: nightly
    canvas.click(position={"x": left["x"], "y": left["y"]})
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("nightly")
    expect(panel.locator(".tw-usage-filter")).to_contain_text("Only nightly")
    panel.get_by_test_id("tw-usage-all").click()
    expect(rows).to_have_count(5)
    ARTIFACTS.mkdir(exist_ok=True)
    panel.screenshot(path=str(ARTIFACTS / "e2e-usage-light.png"), timeout=LIVE_MS)

    light = panel.evaluate("(el) => getComputedStyle(el).getPropertyValue('--tw-fg-muted').trim()")
    painted = int(panel.get_attribute("data-painted") or "0")
    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").first.click()
    page.locator(".lm-Menu-item:visible", has_text="Theme").first.hover()
    page.locator(".lm-Menu-item:visible", has_text="JupyterLab Dark").first.click()
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=LIVE_MS)
    page.wait_for_function(
        "([el, n]) => Number(el.dataset.painted) > n", arg=[panel.element_handle(), painted], timeout=LIVE_MS
    )
    dark = panel.evaluate("(el) => getComputedStyle(el).getPropertyValue('--tw-fg-muted').trim()")
    assert dark != light, (light, dark)
    assert len(wait_bars(panel, 3)) == 3  # still drawn, in the same colours
    panel.screenshot(path=str(ARTIFACTS / "e2e-usage-dark.png"), timeout=LIVE_MS)
    assert pages.page_errors("usage") == []
