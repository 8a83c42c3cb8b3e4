"""``tw.EvalReportView``: a ``tw.EvalReport`` as a table, one row per case, each failed
expectation folded with its diff. A report is final: the view is static (no store subscription).
An ``EvalReport`` shown as a cell's result becomes this view (``threadwidget/__init__.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import traitlets as t

from .._errors import InvalidArgumentError
from . import _wire as wire
from ._base import STATIC, TwWidget
from ._transcript import wrap

if TYPE_CHECKING:
    from ..agent import EvalReport

__all__ = ["EvalReportTraits", "EvalReportView", "case_rows"]


class EvalReportTraits(t.HasTraits):
    """The synced traits of the report (``EvalReportTraits`` in js/src/protocol.ts)."""

    agent = t.Unicode("").tag(sync=True)
    cases: t.List[wire.EvalCaseRow] = t.List().tag(sync=True)


def case_rows(report: EvalReport) -> list[wire.EvalCaseRow]:
    rows: list[wire.EvalCaseRow] = []
    for c in report.cases:
        failures: list[wire.EvalFailure] = [{"expectation": name, "diff": diff} for name, diff in c.failures]
        if c.error is not None:
            failures.append({"expectation": "the case could not run", "diff": c.error})
        thread_id = c.result.thread_id if c.result is not None else None
        rows.append({"name": c.case.name, "passed": c.passed, "thread_id": thread_id, "failures": failures})
    return rows


class EvalReportView(EvalReportTraits, TwWidget):
    """An eval report (``tw.evaluate(...)``): pass or fail per case, the thread it ran in, and each
    failed expectation's diff, folded. ``str(view)`` is the report as text."""

    _esm = STATIC / "evalreport.js"
    _css = STATIC / "widget.css"

    def __init__(self, report: EvalReport) -> None:
        from ..agent import EvalReport

        if not isinstance(report, EvalReport):
            raise InvalidArgumentError(f"report={report!r} is not a tw.EvalReport; pass what tw.evaluate() returns.")
        self._tw_prepare()
        self.report = report
        super().__init__(agent=report.agent, cases=case_rows(report))

    def _transcript_html(self) -> str:
        return wrap("evalreport", self.report._repr_html_())

    def __repr__(self) -> str:
        return str(self.report)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self.report))
