"""The README's example runs as written (offline: the ScriptedModel answers)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from .conftest import PYTHON, ROOT, python_env


def test_readme_example_runs(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "the README has a python example"
    out = subprocess.run(
        [PYTHON, "-c", blocks[0]],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=python_env(),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "using the offline ScriptedModel" in out.stderr  # announced, so nobody mistakes it for a real model
    assert out.stdout.strip(), "the streamed answer is printed"
    assert (tmp_path / "threads.db").exists()
