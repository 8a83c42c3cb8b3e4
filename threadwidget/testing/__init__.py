"""For testing notebooks that use threadwidget: ``NBVAL_SANITIZE``, the path of the sanitize file
for nbval (``pytest --nbval --nbval-sanitize-with PATH``; ``threadwidget nbval-sanitize`` prints it).

It normalises what changes from run to run in threadwidget's outputs: random ids (``th_`` and 20
hex digits; ids numbered by ``tw.Store(..., deterministic_ids=True)`` are stable and kept), times
(``2026-05-04T09:30:00.125Z``), durations (``12 ms``, ``0.6 s``), temporary folders
(``/tmp/tmpab12cd/threads.db`` becomes ``<tmp>/threads.db``) and object addresses.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["NBVAL_SANITIZE"]

#: nbval's ``--nbval-sanitize-with`` file for threadwidget's outputs (shipped in the package)
NBVAL_SANITIZE: Path = Path(__file__).with_name("nbval_sanitize.cfg")
