"""The tutorials in notebooks/ are stored as nbval compares them (``make test``) and as readers
without a kernel see them: run once from top to bottom, with their outputs, without the widgets'
state (which would make nbconvert show a dead widget instead of each view's transcript), and with
nbval's markers in the one form nbval reads. ``make notebooks`` stores them so."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbval.plugin import comment_markers

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
WIDGET = "application/vnd.jupyter.widget-view+json"


def code_cells(path: Path) -> list[nbformat.NotebookNode]:
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def test_there_are_tutorials() -> None:
    assert len(NOTEBOOKS) >= 5


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_tutorial_is_stored_run_once_from_the_top_with_its_outputs(path: Path) -> None:
    cells = code_cells(path)
    # nbval compares no output of a cell stored unrun: every cell must have run, in order, once
    assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1)), "run `make notebooks`"
    assert any(c.outputs for c in cells)
    errors = [o for c in cells for o in c.outputs if o.output_type == "error"]
    assert not errors, f"a stored cell failed: {errors[0].ename}: {errors[0].evalue}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_views_are_stored_with_their_transcript_and_without_widget_state(path: Path) -> None:
    assert "widgets" not in nbformat.read(path, as_version=4).metadata  # nbconvert would show the widget
    for cell in code_cells(path):
        for output in cell.outputs:
            data = output.get("data", {})
            if WIDGET in data:
                assert data.get("text/html", "").startswith('<div class="tw-transcript"'), cell.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_nbval_markers_are_written_the_way_nbval_reads_them(path: Path) -> None:
    """nbval reads a marker only from a comment line that holds nothing else: a reason goes on the
    next line (``# NBVAL_IGNORE_OUTPUT: why`` would be compared like any other cell)."""
    for cell in code_cells(path):
        for line in cell.source.splitlines():
            if "NBVAL_" in line:
                assert line.strip().lstrip("#").strip() in comment_markers, line
