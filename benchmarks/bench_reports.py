"""Benchmark: building every regional report of a round.

Builds the 10 regional reports plus the country overview of the embedded survey
three ways, in the same run:

* with ``stability report --all`` (the index computed once, notebooks executed
  in parallel kernels forked from a pre-warmed server, HTML exported in the
  worker processes);
* the fair baseline, what a competent user would write without the runner: the
  index computed once and saved where the notebooks' ``cache_path`` parameter
  points (:func:`stability.report.context.save_cache`, as the runner does),
  papermill's Python API in a pool of 2 processes (one fresh kernel per
  notebook), HTML exported in the pool workers with nbconvert's
  ``HTMLExporter``;
* the naive way: a sequential loop of the ``papermill`` command line, then
  ``jupyter nbconvert --to html --no-input``, per report, every notebook
  computing the index itself.

Prints the three wall times (best of ``--repeat`` for the first two) and the
runner's speed-up over each baseline.  Targets: all 11 reports in under 10 s on
2 cores, at least 2x faster than the fair baseline (and 3x the naive loop).

``--breakdown`` also shows where the runner's time goes: computing the index
and saving it for the notebooks, starting a kernel (fresh, and forked from the
runner's server), running each notebook's cells (from papermill's per-cell
timings in the executed notebooks) and exporting HTML.  ``--cpu`` (Linux) runs
the batch twice more while sampling ``/proc``: the CPU seconds of the command,
its fork server, the pool workers, the kernel servers and the kernels, for the
reports and for the same notebooks cut to their parameters and set-up cells
(the fixed cost of a notebook); total CPU seconds over the cores is a floor for
the wall time.

Usage::

    python benchmarks/bench_reports.py [--repeat 2] [--skip-naive] [--skip-fair] [--breakdown] [--cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from stability.paths import PROJECT_ROOT

BIN = Path(sys.executable).parent
NOTEBOOKS = PROJECT_ROOT / "notebooks"
WORKERS = 2


def report_jobs(regions: list[str]) -> list[tuple[str, Path, dict]]:
    """(name, template, parameters) of the overview and of every regional report."""
    return [("overview", NOTEBOOKS / "country_overview.ipynb", {})] + [
        (r, NOTEBOOKS / "regional_report.ipynb", {"region": r}) for r in regions]


# --------------------------------------------------------------------------- the runner
LAUNCHED: dict[Path, float] = {}  # output folder -> wall-clock time the runner was started


def run_toolkit(out: Path) -> float:
    LAUNCHED[out] = time.time()
    t0 = time.perf_counter()
    subprocess.run([str(BIN / "stability"), "report", "--all", "--round", "latest", "--uncertainty", "0", "--out", str(out), "-q"],
                   check=True)
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- the fair baseline
_EXPORTER = []


def fair_report(template: str, folder: str, parameters: dict) -> None:
    """One report in a pool worker: papermill's Python API, then HTML with nbconvert's HTMLExporter."""
    import nbformat
    import papermill as pm
    from nbconvert import HTMLExporter

    executed = Path(folder) / "report.ipynb"
    pm.execute_notebook(template, str(executed), parameters=parameters, kernel_name="python3",
                        progress_bar=False, log_output=False)
    if not _EXPORTER:  # one exporter per worker: building it loads the templates
        _EXPORTER.append(HTMLExporter(exclude_input=True))
    body, _ = _EXPORTER[0].from_notebook_node(nbformat.read(executed, as_version=4))
    (Path(folder) / "report.html").write_text(body, encoding="utf-8")


def run_fair(out: Path, regions: list[str]) -> float:
    """Index once, cached for the notebooks; papermill API in a 2-process pool; HTML in the workers."""
    t0 = time.perf_counter()
    from stability.report.context import compute_result, map_layers, save_cache

    result, _, _ = compute_result()
    cache = out / ".cache" / "result.pkl"
    save_cache(cache, result, map_layers(result))
    with ProcessPoolExecutor(max_workers=WORKERS) as pool:
        futures = []
        for name, template, params in report_jobs(regions):
            folder = out / name
            folder.mkdir(parents=True, exist_ok=True)
            parameters = {**params, "output_dir": str(folder), "cache_path": str(cache)}
            futures.append(pool.submit(fair_report, str(template), str(folder), parameters))
        for f in futures:
            f.result()
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- the naive loop
def run_naive(out: Path, regions: list[str]) -> float:
    t0 = time.perf_counter()
    for name, template, params in report_jobs(regions):
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        executed = folder / "report.ipynb"
        args = [a for k, v in params.items() for a in ("-p", k, v)]
        subprocess.run([str(BIN / "papermill"), str(template), str(executed), *args,
                        "-p", "output_dir", str(folder), "--no-progress-bar"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run([str(BIN / "jupyter"), "nbconvert", "--to", "html", "--no-input", str(executed)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- where the time goes
def _kernel_start() -> tuple[float, float]:
    """Seconds to start a fresh kernel, and to import the report libraries in it."""
    from jupyter_client.manager import start_new_kernel

    t0 = time.perf_counter()
    km, kc = start_new_kernel(kernel_name="python3")
    started = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        kc.execute_interactive("import pandas, matplotlib.pyplot\n"
                               "from stability.report import content, figures, notebook", timeout=120)
        imports = time.perf_counter() - t0
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return started, imports


def _cell_times(folder: Path) -> list[dict]:
    """Per executed notebook: papermill's total, start and end, the set-up cell, figure cells, other cells."""
    from datetime import datetime

    rows = []
    for path in sorted(folder.glob("*/report.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        meta = nb["metadata"].get("papermill", {})
        total = float(meta.get("duration") or 0.0)
        start = datetime.fromisoformat(meta["start_time"]).timestamp() if meta.get("start_time") else None
        setup = figures = other = 0.0
        for cell in nb["cells"]:
            if cell["cell_type"] != "code":
                continue
            seconds = float(cell["metadata"].get("papermill", {}).get("duration") or 0.0)
            source = "".join(cell["source"])
            if "nb.setup(" in source:
                setup += seconds
            elif "figures." in source:
                figures += seconds
            else:
                other += seconds
        rows.append({"name": path.parent.name, "total": total, "start": start, "setup": setup, "figures": figures,
                     "other": other, "path": path})
    return rows


def breakdown(out: Path, wall: float, launched: float | None) -> None:
    """Where ``stability report --all`` spends its time (run on the reports in ``out``, started at ``launched``)."""
    import nbformat

    from stability.report.context import compute_result, map_layers, region_names, save_cache, shared_tables

    print(f"\nwhere the runner's {wall:.1f} s go ({WORKERS} workers):")
    t0 = time.perf_counter()
    result, _, _ = compute_result()
    t_index = time.perf_counter() - t0
    t0 = time.perf_counter()
    geo = map_layers(result)
    tables = shared_tables(result, "latest", [None, *region_names(result)], geo)
    t_tables = time.perf_counter() - t0
    t0 = time.perf_counter()
    save_cache(out / "bench-cache" / "result.pkl", result, geo, tables)
    t_cache = time.perf_counter() - t0
    print(f"  index, computed once (load, validate, compute)  : {t_index:5.2f} s")
    print(f"  map layers + tables of the round (pockets, ...) : {t_tables:5.2f} s (before any notebook starts)")
    print(f"  result and tables saved for the notebooks       : {t_cache:5.2f} s")
    started, imports = _kernel_start()
    print(f"  a fresh kernel: start {started:.2f} s + report imports {imports:.2f} s "
          "(paid once per worker by the fork server, per notebook by the baselines)")
    rows = _cell_times(out)
    n = len(rows)
    starts = [r["start"] for r in rows if r["start"] is not None]
    if launched is not None and starts:
        print(f"  from the command to the first notebook          : {min(starts) - launched:5.2f} s "
              "(interpreter, imports, the index, the worker pool)")
    total = sum(r["total"] for r in rows)
    cells = sum(r["setup"] + r["figures"] + r["other"] for r in rows)
    print(f"  {n} notebooks, papermill time summed            : {total:5.1f} s ({total / n:.2f} s each)")
    print(f"    set-up cell (context loaded from the cache)   : {sum(r['setup'] for r in rows):5.1f} s")
    print(f"    figure cells (matplotlib, PNG)                : {sum(r['figures'] for r in rows):5.1f} s")
    print(f"    other cells (tables, text, workbook)          : {sum(r['other'] for r in rows):5.1f} s")
    print(f"    kernel start/stop and papermill overhead      : {total - cells:5.1f} s")
    from stability.report.worker import export_html

    t0 = time.perf_counter()
    for r in rows:
        export_html(nbformat.read(r["path"], as_version=4), r["name"])
    t_html = time.perf_counter() - t0
    print(f"  HTML export (the runner's exporter, in-process) : {t_html:5.1f} s ({t_html / n:.2f} s each)")
    busy = total + t_html
    print(f"  notebooks + HTML over {WORKERS} workers               : {busy / WORKERS:5.1f} s of work per worker; "
          "the rest of the wall time is start-up, the index, the pool and the index page")


# --------------------------------------------------------------------------- where the CPU time goes
KINDS = {0: "the command (index, round tables, index page)", 1: "fork server (preloads the kernel libraries)",
         2: "pool workers (papermill, nbclient, HTML)", 3: "kernel servers (fork the kernels)",
         4: "kernels (the notebooks' cells)"}


def _cpu_of(pid: str, hz: int) -> tuple[float, int] | None:
    """(CPU seconds, parent pid) of a process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / hz, int(fields[1])


def run_sampled(out: Path, templates: Path | None = None) -> tuple[float, dict[int, float], list[float]]:
    """Run the toolkit while sampling /proc every 50 ms: wall time, CPU seconds per kind of process (depth
    below the command: 0 the command, 1 its fork server, 2 pool workers, 3 kernel servers, 4 kernels), and
    the CPU seconds of each kernel.  A process's last 50 ms can be missed: the figures are lower bounds."""
    hz = os.sysconf("SC_CLK_TCK")
    cmd = [str(BIN / "stability"), "report", "--all", "--round", "latest", "--uncertainty", "0", "--out", str(out),
           "-q"] + (["--templates", str(templates)] if templates else [])
    seen: dict[int, tuple[float, int]] = {}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    while proc.poll() is None:
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                got = _cpu_of(pid, hz)
                if got is not None:  # the parent at first sight: a process whose parent exits is re-parented
                    seen[int(pid)] = (got[0], seen.get(int(pid), got)[1])
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"stability report failed (exit {proc.returncode})")

    def depth(pid: int) -> int | None:
        d = 0
        while pid != proc.pid:
            if pid not in seen:
                return None
            pid, d = seen[pid][1], d + 1
        return d

    by_kind: dict[int, float] = {}
    kernels = []
    for pid, (cpu, _) in seen.items():
        d = depth(pid)
        if d is None or d not in KINDS:
            continue
        by_kind[d] = by_kind.get(d, 0.0) + cpu
        if d == 4:
            kernels.append(cpu)
    return wall, by_kind, kernels


def trimmed_templates(folder: Path) -> Path:
    """Copies of the report notebooks with only their parameters and set-up cells (the fixed cost)."""
    import nbformat

    folder.mkdir(parents=True, exist_ok=True)
    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        nb.cells = [c for c in nb.cells if c.cell_type == "code" and (
            "parameters" in c.metadata.get("tags", []) or "nb.setup(" in c.source)]
        nbformat.write(nb, folder / path.name)
    return folder


def cpu_accounting(tmp: Path) -> None:
    """Print where the batch's CPU time goes, and the fixed cost of a notebook (trimmed notebooks)."""
    if not Path("/proc/self/stat").exists():
        print("\n--cpu needs Linux (/proc)")
        return
    cores = os.cpu_count() or 1
    print(f"\nwhere the batch's CPU time goes (sampled from /proc; {cores} cores):")
    for label, templates in (("the reports", None), ("notebooks cut to their set-up cell",
                                                      trimmed_templates(tmp / "trimmed"))):
        wall, by_kind, kernels = run_sampled(tmp / f"cpu-{len(label)}", templates)
        total = sum(by_kind.values())
        print(f"  {label}: wall {wall:.1f} s, {total:.1f} CPU-s (at least {total / cores:.1f} s on {cores} cores)")
        for d, name in KINDS.items():
            print(f"    {name:50s}: {by_kind.get(d, 0.0):5.1f} s")
        if kernels:
            print(f"    per kernel: {min(kernels):.2f}-{max(kernels):.2f} s ({len(kernels)} kernels)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs of the runner and the fair baseline (best)")
    parser.add_argument("--skip-naive", action="store_true", help="do not run the naive loop")
    parser.add_argument("--skip-fair", action="store_true", help="do not run the fair baseline")
    parser.add_argument("--breakdown", action="store_true", help="show where the runner's time goes")
    parser.add_argument("--cpu", action="store_true",
                        help="CPU seconds per kind of process, and of notebooks cut to their set-up (Linux)")
    args = parser.parse_args()

    os.environ.setdefault("JUPYTER_PREFER_ENV_PATH", "1")  # the venv's kernel, for every contender
    from stability.report.context import load_context

    regions = list(load_context().regions)
    print(f"{len(regions)} regional reports + the overview; {os.cpu_count()} cores")
    tmp = Path(tempfile.mkdtemp(prefix="bench-reports-"))
    try:
        fast, fair = [], []
        for i in range(args.repeat):  # alternate, so that both see the same load
            fast.append(run_toolkit(tmp / f"toolkit{i}"))
            if not args.skip_fair:
                fair.append(run_fair(tmp / f"fair{i}", regions))
        t_fast = min(fast)
        print(f"stability report --all                            : {t_fast:6.1f} s (target < 10 s)")
        if fair:
            t_fair = min(fair)
            print(f"fair: index once, papermill API x{WORKERS}, HTMLExporter : {t_fair:6.1f} s")
        if not args.skip_naive:
            t_naive = run_naive(tmp / "naive", regions)
            print(f"naive: papermill CLI + nbconvert CLI, one by one  : {t_naive:6.1f} s")
        if fair:
            print(f"speed-up over the fair baseline : {t_fair / t_fast:.1f}x (target >= 2x)")
        if not args.skip_naive:
            print(f"speed-up over the naive loop    : {t_naive / t_fast:.1f}x (target >= 3x)")
        if args.breakdown:
            best = tmp / f"toolkit{fast.index(t_fast)}"
            breakdown(next(p for p in best.iterdir() if (p / "overview").is_dir()), t_fast, LAUNCHED.get(best))
        if args.cpu:
            cpu_accounting(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
