"""Stress run of the tutorial notebooks under CPU load, to find flaky notebooks.

Runs every ``notebooks/*.ipynb`` N times in a row, each as the test suite runs it
(``pytest -q notebooks/<name>.ipynb --nbval-lax -p no:cacheprovider``, one subprocess per notebook
and run, from the repository root, with a timeout that counts as a failure), while CPU hogs (pure
busy loops in child processes) load the machine. Prints a line per run and notebook to stderr as it
goes, then per notebook the runs, failures and median/max seconds, and the last 40 lines of
pytest's output for every failure; ``--json`` prints one JSON object instead. Exit code 1 if any
run failed. Not part of the test command (``make test``): it takes long, on purpose.

    .venv/bin/python bench/stress_notebooks.py --runs 30 [--hogs 2] [--notebook 01] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
TAIL = 40
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # nbval colours its reports even into a file


def run_notebook(path: Path, timeout: float) -> tuple[bool, float, str]:
    """One pytest run of one notebook: (passed, seconds, last lines of its output)."""
    cmd = [sys.executable, "-m", "pytest", "-q", str(path.relative_to(ROOT)), "--nbval-lax", "-p", "no:cacheprovider"]
    # output goes to a file, not a pipe: a kernel left behind by a killed run cannot hold it open
    with tempfile.TemporaryFile("w+") as out:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            code: int | None = p.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:  # timeout or Ctrl-C: take down pytest and whatever it started in its group
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        seconds = time.perf_counter() - t0
        out.seek(0)
        lines = ANSI.sub("", out.read()).splitlines()
    if code is None:
        lines.append(f"[stress_notebooks] timed out after {timeout:.0f} s, killed")
    return code == 0, seconds, "\n".join(lines[-TAIL:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--runs", type=int, default=30, help="runs of every notebook")
    ap.add_argument("--hogs", type=int, default=2, help="busy-loop processes loading the CPU")
    ap.add_argument("--notebook", action="append", default=[], help="substring of the file name (repeatable)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per notebook run")
    ap.add_argument("--keep-going", action="store_true", default=True, help="never stop at a failure (the default)")
    args = ap.parse_args()
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    notebooks = [p for p in notebooks if not args.notebook or any(s in p.name for s in args.notebook)]
    if not notebooks:
        ap.error("no notebook matches")
    seconds: dict[str, list[float]] = {p.stem: [] for p in notebooks}
    failures: list[dict[str, object]] = []
    interrupted = False
    hogs: list[subprocess.Popen[bytes]] = []
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` cleans up like Ctrl-C
    try:
        hogs = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(args.hogs)]
        for k in range(1, args.runs + 1):
            for path in notebooks:
                ok, s, tail = run_notebook(path, args.timeout)
                seconds[path.stem].append(s)
                print(f"run {k}/{args.runs}  {path.stem:<36} {'pass' if ok else 'FAIL'}  {s:6.1f} s",
                      file=sys.stderr, flush=True)  # fmt: skip
                if not ok:
                    failures.append({"run": k, "notebook": path.stem, "seconds": s, "output": tail})
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    result = {
        "runs": args.runs,
        "hogs": args.hogs,
        "interrupted": interrupted,
        "notebooks": {
            name: {
                "runs": len(ts),
                "failures": sum(f["notebook"] == name for f in failures),
                "median_s": statistics.median(ts) if ts else None,
                "max_s": max(ts, default=None),
            }
            for name, ts in seconds.items()
        },
        "total_failures": len(failures),
        "failures": failures,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{len(notebooks)} notebooks x {args.runs} runs, {args.hogs} CPU hogs on {os.cpu_count()} cores"
              + ("  (interrupted)" if interrupted else ""))  # fmt: skip
        print(f"  {'notebook':<36} {'runs':>5} {'fail':>5} {'median s':>9} {'max s':>7}")
        for name, n in result["notebooks"].items():
            med, mx = (f"{n['median_s']:.1f}", f"{n['max_s']:.1f}") if n["runs"] else ("-", "-")
            print(f"  {name:<36} {n['runs']:>5} {n['failures']:>5} {med:>9} {mx:>7}")
        print(f"total failures: {len(failures)}")
        for f in failures:
            print(f"\n--- {f['notebook']}, run {f['run']} ({f['seconds']:.1f} s), last {TAIL} lines of pytest ---")
            print(f["output"])
    return 130 if interrupted else int(bool(failures))


if __name__ == "__main__":
    sys.exit(main())
