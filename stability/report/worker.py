"""Build one report: execute its notebook in a kernel of its own, export HTML.

This module runs in worker processes (a local process pool or Dask workers).
It imports papermill and nbconvert at import time so that a pool can preload
them once; the coordinating process never needs to import it.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from dataclasses import asdict
from pathlib import Path

import nbformat
import papermill as pm
from nbconvert import HTMLExporter
from papermill.exceptions import PapermillExecutionError

from ..io import publish, write_atomic, write_text_atomic
from .jobs import HTML, MANIFEST, NOTEBOOK, WORKBOOK, Job, Outcome
from . import kernels
from .kernels import ForkingKernelManager

TEMPLATES = Path(__file__).resolve().parent / "templates"
def _one_line(exc: BaseException) -> str:
    if isinstance(exc, PapermillExecutionError):
        text = f"{exc.ename}: {exc.evalue} (cell {exc.exec_count})"
    else:
        text = f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text if len(text) < 400 else text[:397] + "..."


def _started(path: Path) -> bool:
    """Did any cell of the (partially) executed notebook run?"""
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:
        return False
    return any(c.get("execution_count") for c in nb.cells if c.cell_type == "code")


def export_html(nb, title: str, *, failed: bool = False, error: str = "") -> str:
    """A self-contained HTML page of an executed notebook.

    A successful report shows outputs only (no code).  A failed one starts with
    a banner naming the error and keeps the code cells, for triage.
    """
    import html

    nb = nbformat.from_dict(nb)
    if failed:
        banner = nbformat.v4.new_markdown_cell(
            f'<div class="stability-failure"><h1>Report failed: {html.escape(title)}</h1>'
            f"<p>{html.escape(error)}</p><p>The executed notebook is kept beside this page "
            f"({NOTEBOOK}); the code and the traceback follow.</p></div>")
        nb.cells.insert(0, banner)
    body, _ = _exporter(failed).from_notebook_node(nb, resources={"metadata": {"name": title}})
    return body


_EXPORTERS: dict[bool, HTMLExporter] = {}


def _exporter(with_code: bool) -> HTMLExporter:
    """One exporter per worker process (building one loads the templates)."""
    if with_code not in _EXPORTERS:
        _EXPORTERS[with_code] = HTMLExporter(
            template_name="stability_report", extra_template_basedirs=[str(TEMPLATES)], exclude_input=not with_code,
            exclude_input_prompt=True, exclude_output_prompt=True)
    return _EXPORTERS[with_code]


def _stub_notebook(job: Job, error: str):
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(f"The kernel did not run: {error}"))
    return nb


def run_job(job: Job) -> Outcome:
    """Execute ``job``'s notebook and export it; never raises for a failing notebook.

    The executed notebook, its HTML page and a manifest are written to
    ``job.out_dir`` (atomically); a failing notebook's page shows the error.
    """
    out = Path(job.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".report.{os.getpid()}.tmp.ipynb"
    t0 = time.perf_counter()
    attempts, status, error = 0, "ok", ""
    os.environ.setdefault("JUPYTER_PREFER_ENV_PATH", "1")  # the toolkit's own kernel, not a user-level one
    manager = {"kernel_manager_class": ForkingKernelManager} if job.prefork and kernels.enabled() else {}
    while True:
        attempts += 1
        try:
            pm.execute_notebook(job.template, str(tmp), parameters=job.parameters, kernel_name="python3",
                                progress_bar=False, log_output=False, request_save_on_cell_execute=False,
                                execution_timeout=job.timeout, start_timeout=60,
                                extra_arguments=["--IPKernelApp.log_level=CRITICAL"], **manager)
            break
        except PapermillExecutionError as exc:
            status, error = "failed", _one_line(exc)
            break
        except Exception as exc:  # kernel start failure, dead kernel, cell timeout
            if not _started(tmp) and attempts <= job.retries:
                continue
            status, error = "failed", _one_line(exc)
            break
    try:
        nb = nbformat.read(tmp, as_version=4) if tmp.exists() else _stub_notebook(job, error)
        page = export_html(nb, job.title, failed=status != "ok", error=error)
        write_text_atomic(out / HTML, page)
        if tmp.exists():
            publish(tmp, out / NOTEBOOK)
        else:
            write_atomic(out / NOTEBOOK, lambda p: nbformat.write(nb, str(p)))
    except Exception as exc:  # the export itself failed: keep the reason
        status, error = "failed", f"export failed: {_one_line(exc)}"
        traceback.print_exc()
    finally:
        if tmp.exists():
            tmp.unlink()
    outcome = Outcome(job.name, job.title, status, round(time.perf_counter() - t0, 2), attempts, error,
                      [p.name for p in (out / NOTEBOOK, out / HTML, out / WORKBOOK) if p.exists()])
    manifest = {"inputs": job.inputs, **{k: v for k, v in asdict(outcome).items() if k != "seconds"}}
    write_text_atomic(out / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    return outcome


