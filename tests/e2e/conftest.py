"""Fixtures of the browser tests: a Jupyter server per test module, Debian's Chromium, pages.

Without Chromium (``shutil.which("chromium")``) or Python Playwright the tests are skipped, with the
reason; where ``CI`` is set they fail instead, since CI must run them. Artifacts go to
``test-artifacts/`` at the repository root (git-ignored): every page's console log, and a
screenshot of every open page when a test fails. The server's log is attached to a failure report.
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.error
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .jupyter import CHROMIUM_ARGS, JupyterServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Error, Page

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
IN_CI = bool(os.environ.get("CI"))


def _missing() -> str | None:
    if shutil.which("chromium") is None:
        return "Debian's Chromium is not installed (`apt-get install chromium`): no browser for the e2e tests"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Python Playwright is not installed (`pip install -e '.[dev]'`): no driver for the e2e tests"
    return None


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    reason = _missing()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"{reason}; CI is set, and CI must run them")
        pytest.skip(reason)
    path = shutil.which("chromium")
    assert path is not None
    return path


@pytest.fixture(autouse=True)
def _needs_browser(chromium_executable: str) -> None:
    """Every test here skips (or, in CI, fails) without a browser, before starting a server."""


@pytest.fixture(scope="module")
def lab(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, chromium_executable: str
) -> Iterator[JupyterServer]:
    """A JupyterLab server (with Notebook 7 on the same port) for a module's tests; notebooks go in
    ``lab.root_dir``. Each test's kernels are shut down after it."""
    server = JupyterServer(tmp_path_factory.mktemp("jupyter"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
        ARTIFACTS.mkdir(exist_ok=True)
        module = request.module.__name__.rsplit(".", 1)[-1]
        shutil.copyfile(server.log_path, ARTIFACTS / f"e2e-jupyter-server-{module}.log")


@pytest.fixture(autouse=True)
def _shutdown_kernels(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test's kernels end with it (after its pages are closed): the server lives on."""
    yield
    if "lab" in request.fixturenames:
        try:
            request.getfixturevalue("lab").shutdown_kernels()
        except (urllib.error.URLError, OSError) as exc:  # a dead server fails its test on its own
            print(f"could not shut the kernels down: {exc}")


@pytest.fixture(scope="module")
def browser(chromium_executable: str) -> Iterator[Browser]:
    """Headless Debian Chromium; each launch gets a fresh temporary profile. Module scope: while
    Playwright's sync API is running, ``asyncio.run`` in the tests after these would refuse to start."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Pages:
    """Open browser pages, each with its own context and a console log (``pages.log(label)``)."""

    def __init__(self, browser: Browser) -> None:
        self._browser = browser
        self.opened: dict[str, tuple[BrowserContext, Page, list[str]]] = {}
        self._errors: dict[str, list[tuple[str, str]]] = {}

    def new(self, label: str, width: int = 1280, height: int = 960) -> Page:
        context = self._browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        log: list[str] = []
        errors: list[tuple[str, str]] = []

        def on_error(error: Error) -> None:
            errors.append((error.message, error.stack or ""))
            log.append(f"[pageerror] {error.message}\n    {error.stack or '(no stack)'}")

        def on_crash(_: Page) -> None:
            errors.append(("the page crashed", ""))
            log.append("[crash] the page crashed")

        page.on("console", lambda m: log.append(f"[{m.type}] {m.text}"))
        page.on("pageerror", on_error)
        page.on("crash", on_crash)
        self.opened[label] = (context, page, log)
        self._errors[label] = errors
        return page

    def log(self, label: str) -> list[str]:
        return self.opened[label][2]

    def page_errors(self, label: str, *, thrown_outside: tuple[str, ...] = ()) -> list[str]:
        """Uncaught errors (and crashes) of the page, except those thrown (top stack frame) in a
        script whose URL contains one of ``thrown_outside``."""
        kept = []
        for message, stack in self._errors[label]:
            frames = [line.strip() for line in stack.splitlines() if line.strip().startswith("at ")]
            if frames and any(part in frames[0] for part in thrown_outside):
                continue
            kept.append(message)
        return kept


def _artifact_stem(node: pytest.Item) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", node.name).strip("-")


@pytest.fixture
def pages(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Pages]:
    """``pages.new(label)`` opens a page; on teardown its console log is saved, and on failure a
    screenshot of it, as ``test-artifacts/<test>-<label>-...``."""
    opened = Pages(browser)
    yield opened
    reports = [getattr(request.node, f"rep_{when}", None) for when in ("setup", "call")]
    failed = any(r is not None and r.failed for r in reports)
    ARTIFACTS.mkdir(exist_ok=True)
    stem = _artifact_stem(request.node)
    for label, (context, page, log) in opened.opened.items():
        (ARTIFACTS / f"{stem}-{label}-console.log").write_text("\n".join(log) + "\n")
        if failed and not page.is_closed():
            try:
                page.screenshot(path=str(ARTIFACTS / f"{stem}-{label}-failure.png"), timeout=30_000)
            except Exception as exc:  # a crashed page cannot be photographed; say so in the log
                (ARTIFACTS / f"{stem}-{label}-failure.txt").write_text(f"no screenshot: {exc}\n")
        context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    server = getattr(item, "funcargs", {}).get("lab")
    if report.failed and isinstance(server, JupyterServer):
        report.sections.append(("jupyter server log (tail)", server.log_tail()))
    return report
