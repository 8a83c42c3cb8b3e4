"""The floors (cli > widgets > agent > store > errors, usage, statuses) are enforced: the
import-linter contract in pyproject.toml passes on the package and fails on an upward import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """import-linter over the copy of the package in ``tree`` (found first on PYTHONPATH)."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "threadwidget", tmp_path / "threadwidget", ignore=shutil.ignore_patterns("static"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_package_keeps_its_floors(tree: Path) -> None:
    done = lint_imports(tree)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "upward"),
    [("store/_rows.py", "from ..agent import Agent"), ("agent/_run.py", "from ..widgets import ChatView"),
     ("_usage.py", "from .store import Store")],
)  # fmt: skip
def test_an_upward_import_breaks_the_build(tree: Path, module: str, upward: str) -> None:
    path = tree / "threadwidget" / module
    path.write_text(path.read_text() + f"\n{upward}  # upward\n")
    done = lint_imports(tree)
    assert done.returncode != 0 and "BROKEN" in done.stdout, done.stdout + done.stderr
    importer = "threadwidget." + module.removesuffix(".py").replace("/", ".")
    assert importer in done.stdout  # the report names the offending module
