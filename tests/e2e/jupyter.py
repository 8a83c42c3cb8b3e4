"""A Jupyter server for the browser tests, and the steps a person takes in its pages.

``JupyterServer`` runs ``python -m jupyterlab`` (which also serves Notebook 7's ``/notebooks/...``)
on a free loopback port with authentication off and every outside call switched off (news,
update checks, the extension manager's PyPI look-ups), and with its own config, runtime, IPython
and data directories. Lab extensions still come from the virtual environment's
``share/jupyter``, where ipywidgets' and anywidget's front ends are installed.

The page helpers (``open_notebook``, ``run_all_cells``, ``wait_cells_executed``, ...) drive the UI
the way a person does: the URL, the menu bar, the cell prompts. They wait on conditions with
deadlines, never for a fixed time.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbformat import NotebookNode
    from playwright.sync_api import Locator, Page

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

# Deadlines are generous: the machine has two cores and other test processes run beside these.
SERVER_START_S = 120.0
PAGE_LOAD_MS = 120_000
KERNEL_IDLE_MS = 120_000
RUN_ALL_MS = 180_000

# No network: no news feed, no "would you like to receive news?" toast, no update check.
PAGE_CONFIG = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}
USER_SETTINGS: dict[str, dict[str, Any]] = {
    # every cell stays in the DOM, so the helpers can see all prompts and outputs
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    # the tests' notebooks are never saved behind their back
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class JupyterServer:
    """A ``jupyter lab`` server in ``base``: notebooks live in ``base/root``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root_dir = base / "root"
        self.log_path = base / "jupyter.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_path = self.root_dir / "threads.db"  # $THREADWIDGET_DB of the kernels
        self._proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "JUPYTER", "IPYTHON"))}
        config = self.base / "config"
        env.update(
            JUPYTER_CONFIG_DIR=str(config),
            JUPYTER_DATA_DIR=str(self.base / "data"),  # the user's; the venv's share/jupyter still counts
            JUPYTER_RUNTIME_DIR=str(self.base / "runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(config / "lab" / "user-settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(config / "lab" / "workspaces"),
            JUPYTER_PLATFORM_DIRS="1",
            IPYTHONDIR=str(self.base / "ipython"),
            XDG_DATA_HOME=str(self.base / "xdg-data"),
            XDG_CACHE_HOME=str(self.base / "xdg-cache"),
            THREADWIDGET_DB=str(self.db_path),
            PYTHONUNBUFFERED="1",
        )
        return env

    def command(self) -> list[str]:
        cmd = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={self.root_dir}",
            "--ServerApp.open_browser=False",
            "--IdentityProvider.token=",
            "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True",  # the fixture's REST calls (kernel shutdown)
            "--ServerApp.terminals_enabled=False",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
        ]  # fmt: skip
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")  # containers run as root
        return cmd

    def _write_config(self) -> None:
        for name in ("root", "config/labconfig", "data", "runtime", "ipython"):
            (self.base / name).mkdir(parents=True, exist_ok=True)
        (self.base / "config" / "labconfig" / "page_config.json").write_text(json.dumps(PAGE_CONFIG))
        settings = self.base / "config" / "lab" / "user-settings"
        for plugin, values in USER_SETTINGS.items():
            path = settings / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))

    def start(self, attempts: int = 3) -> None:
        """Start the server and wait for ``/api/status``; on a port taken meanwhile, try another."""
        self._write_config()
        for attempt in range(attempts):
            try:
                self._start()
                return
            except RuntimeError:
                if attempt == attempts - 1 or "already in use" not in self.log_tail():
                    raise
                self.port = free_port()
                self.url = f"http://127.0.0.1:{self.port}"

    def _start(self) -> None:
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                self.command(), cwd=self.root_dir, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self._proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status", timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"jupyter lab did not answer /api/status within {SERVER_START_S} s:\n{self.log_tail()}"
                )
            time.sleep(0.2)  # polling interval of the deadline-bounded start-up wait

    def shutdown_kernels(self) -> None:
        """Shut every kernel down through the REST API (each waits for its kernel to exit)."""
        for kernel in self.api("GET", "/api/kernels"):
            try:
                self.api("DELETE", f"/api/kernels/{kernel['id']}")
            except urllib.error.HTTPError as exc:
                if exc.code != 404:  # 404: it was already gone
                    raise

    def wait_kernel_connected(self, path: str, timeout: float = KERNEL_IDLE_MS / 1000) -> str:
        """Wait until the notebook ``path`` has a session whose kernel a page is connected to; its id."""
        deadline = time.monotonic() + timeout
        while True:
            for session in self.api("GET", "/api/sessions"):
                kernel = session.get("kernel") or {}
                if session.get("path") == path and kernel.get("connections", 0) >= 1:
                    return str(kernel["id"])
            if time.monotonic() > deadline:
                raise AssertionError(f"no kernel connected to {path} within {timeout} s:\n{self.log_tail(40)}")
            time.sleep(0.1)  # polling interval of the deadline-bounded wait

    def stop(self) -> None:
        """Shut the kernels down, then the server; kill what does not stop."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        try:
            self.shutdown_kernels()
        except (urllib.error.URLError, OSError, ValueError):
            pass  # the server is going away anyway; its own shutdown stops the kernels too
        proc.send_signal(signal.SIGTERM)  # Jupyter Server stops its kernels on the way out
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    # -- files and REST ------------------------------------------------------------------------

    def api(self, method: str, path: str, body: object | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def write_notebook(self, name: str, cells: list[str | NotebookNode]) -> Path:
        """Write ``root_dir/name``: strings become code cells; a Python 3 kernel, so no kernel dialog."""
        import nbformat

        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        nb.cells = [nbformat.v4.new_code_cell(c) if isinstance(c, str) else c for c in cells]
        path = self.root_dir / name
        nbformat.write(nb, path)
        return path

    def log_tail(self, lines: int = 200) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])


# -- pages ---------------------------------------------------------------------------------------

NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"

# True when every code cell of the shown notebook has run (its prompt is "[n]:"), or when a cell
# produced an error (Run All stops there, the cells after it never get a number).
_CELLS_DONE_JS = """
(selector) => {
  const panel = document.querySelector(selector);
  if (!panel) return false;
  const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
    .map((p) => p.textContent.trim());
  const failed = [...panel.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .some((o) => /Traceback|Error/.test(o.textContent));
  return failed || (prompts.length > 0 && prompts.every((t) => /^\\[\\d+\\]:$/.test(t)));
}
"""


def notebook_panel(page: Page) -> Locator:
    return page.locator(NOTEBOOK)


def open_notebook(page: Page, server: JupyterServer, name: str, *, ui: str = "lab") -> None:
    """Open ``name`` in JupyterLab (``ui="lab"``, its own fresh workspace) or Notebook 7
    (``ui="notebook"``), and wait until its kernel is idle."""
    if ui == "lab":
        workspace = Path(name).stem.replace(" ", "-")
        page.goto(f"{server.url}/lab/workspaces/{workspace}/tree/{name}?reset", timeout=PAGE_LOAD_MS)
    elif ui == "notebook":
        page.goto(f"{server.url}/notebooks/{name}", timeout=PAGE_LOAD_MS)
    else:
        raise ValueError(f"ui={ui!r}: expected 'lab' or 'notebook'")
    notebook_panel(page).locator(".jp-Cell").first.wait_for(timeout=PAGE_LOAD_MS)
    # Before its session exists the toolbar's indicator already reads "idle": first wait until the
    # server has a kernel for this notebook with the page connected to it.
    server.wait_kernel_connected(name)
    wait_kernel_idle(page)
    if ui == "lab":
        hide_left_sidebar(page)


def wait_kernel_idle(page: Page, timeout: float = KERNEL_IDLE_MS) -> None:
    """The toolbar's kernel status indicator says idle (the kernel has started and is not busy)."""
    indicator = notebook_panel(page).locator(".jp-Notebook-ExecutionIndicator[data-status=idle]")
    indicator.wait_for(state="attached", timeout=timeout)


def hide_left_sidebar(page: Page) -> None:
    """Collapse JupyterLab's file browser, so that screenshots show the notebook."""
    tab = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
    if tab.count():
        tab.first.click()
        page.locator("#jp-left-stack").wait_for(state="hidden")


def run_all_cells(page: Page) -> None:
    """Run → Run All Cells, from the menu bar (the same menu in JupyterLab and Notebook 7)."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-item:visible", has_text="Run All Cells").first.click()


def wait_cells_executed(page: Page, timeout: float = RUN_ALL_MS) -> None:
    """Wait until every code cell has run (or one failed), then until the kernel is idle."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    try:
        page.wait_for_function(_CELLS_DONE_JS, arg=NOTEBOOK, timeout=timeout, polling=100)
    except PlaywrightTimeoutError:
        raise AssertionError(
            f"the cells did not all run within {timeout / 1000:.0f} s; prompt and outputs of each code cell:\n"
            + "\n".join(describe_cells(page))
        ) from None
    wait_kernel_idle(page, timeout)


def describe_cells(page: Page) -> list[str]:
    """One line per code cell: its prompt, and the MIME type and start of each output."""
    return page.evaluate(
        """(selector) => [...document.querySelectorAll(`${selector} .jp-CodeCell`)].map((cell) =>
             cell.querySelector('.jp-InputArea-prompt').textContent.trim() + ' ' +
             JSON.stringify(cell.querySelector('.jp-InputArea-editor').textContent.slice(0, 60)) + ' -> ' +
             [...cell.querySelectorAll('.jp-OutputArea-output')]
               .map((o) => `${o.dataset.mimeType ?? 'widget'}: ${JSON.stringify(o.textContent.slice(0, 160))}`)
               .join(' | '))""",
        NOTEBOOK,
    )


def run_notebook(page: Page, server: JupyterServer, name: str, *, ui: str = "lab") -> None:
    """Open ``name``, Run All Cells, wait for them, and fail with the outputs if a cell failed."""
    open_notebook(page, server, name, ui=ui)
    run_all_cells(page)
    wait_cells_executed(page)
    errors = error_outputs(page)
    assert not errors, f"{name}: cells failed:\n\n" + "\n\n".join(errors)


def error_outputs(page: Page) -> list[str]:
    """Texts of the outputs that report an error: a traceback or error on stderr (a plain warning is
    not one), or a widget the front end could not display."""
    outputs = page.evaluate(
        """(selector) => [...document.querySelectorAll(`${selector} .jp-OutputArea-output`)]
             .map((o) => [o.dataset.mimeType ?? '', o.innerText])""",
        NOTEBOOK,
    )
    return [
        text
        for mime, text in outputs
        if (mime == "application/vnd.jupyter.stderr" and ("Traceback" in text or "Error" in text))
        or text.startswith("Error displaying widget")
    ]


def widget_view(page: Page, kind: str) -> Locator:
    """The root of a threadwidget view (``data-tw``: chat, tools, threadlist, app) in a cell output."""
    return notebook_panel(page).locator(f".jp-OutputArea-output .tw-root[data-tw={kind}]")
