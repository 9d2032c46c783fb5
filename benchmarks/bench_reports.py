"""Benchmark: building every regional report of a round.

Builds the 10 regional reports plus the country overview of the embedded survey
twice, in the same run:

* with ``stability report --all`` (the index computed once, notebooks executed
  in parallel kernels, HTML exported in the worker processes);
* the naive way: a sequential loop of the ``papermill`` command line, then
  ``jupyter nbconvert --to html --no-input``, per report.

Prints both wall times and the ratio.  Targets: at least 3x faster than the
naive loop, and under 20 s on a 2-core machine.

Usage::

    python benchmarks/bench_reports.py [--skip-naive]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stability.paths import PROJECT_ROOT

BIN = Path(sys.executable).parent


def run_toolkit(out: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([str(BIN / "stability"), "report", "--all", "--round", "latest", "--out", str(out), "-q"],
                   check=True)
    return time.perf_counter() - t0


def run_naive(out: Path, regions: list[str]) -> float:
    nb_dir = PROJECT_ROOT / "notebooks"
    t0 = time.perf_counter()
    jobs = [("overview", nb_dir / "country_overview.ipynb", [])] + [
        (r, nb_dir / "regional_report.ipynb", ["-p", "region", r]) for r in regions]
    for name, template, params in jobs:
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        executed = folder / "report.ipynb"
        subprocess.run([str(BIN / "papermill"), str(template), str(executed), *params,
                        "-p", "output_dir", str(folder), "--no-progress-bar"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run([str(BIN / "jupyter"), "nbconvert", "--to", "html", "--no-input", str(executed)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-naive", action="store_true", help="time the toolkit only")
    args = parser.parse_args()

    from stability.report.context import load_context

    regions = list(load_context().regions)
    print(f"{len(regions)} regional reports + the overview; {os.cpu_count()} cores")
    tmp = Path(tempfile.mkdtemp(prefix="bench-reports-"))
    try:
        fast = run_toolkit(tmp / "toolkit")
        print(f"stability report --all     : {fast:6.1f} s (target < 20 s)")
        if not args.skip_naive:
            slow = run_naive(tmp / "naive", regions)
            print(f"naive papermill + nbconvert: {slow:6.1f} s")
            print(f"speed-up: {slow / fast:.1f}x (target >= 3x)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
