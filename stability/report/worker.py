"""Build one report: execute its notebook in a kernel of its own, export HTML, publish.

Each report is built in a staging folder and published as a whole
(:mod:`stability.report.staging`); a failed report gets a page that says what
went wrong in words (:mod:`stability.report.pages`), and a region not assessed
in the round a short page, without starting a kernel.

This module runs in worker processes (a local process pool or Dask workers).
It imports papermill and nbconvert at import time so that a pool can preload
them once; the coordinating process never needs to import it.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path

if "jsonschema" not in sys.modules:
    # jsonschema (imported by nbformat) imports rfc3987_syntax when it is installed, which builds a grammar
    # for about two seconds; nbformat's schemas check no IRI format, so the workers do without it.
    sys.modules.setdefault("rfc3987_syntax", None)

import nbformat
import papermill as pm
from nbconvert import HTMLExporter
from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines
from papermill.exceptions import PapermillExecutionError

from ..io import write_text_atomic
from . import kernels, pages
from .jobs import FAILED, HTML, MANIFEST, MAP, NOT_ASSESSED, NOTEBOOK, OK, WORKBOOK, Job, Outcome
from .kernels import ForkingKernelManager
from .staging import discard, new_staging, publish_folder

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: The kernels keep no input history (an SQLite database every kernel would open and write to).
KERNEL_OPTIONS = ("--HistoryManager.enabled=False",)
#: Cells with this tag speak to someone running the notebook by hand; they are left out of the published page.
EXPLORING_ONLY = "exploring-only"
#: The papermill engine the reports run with (:class:`ReportEngine`).
ENGINE = "stability"


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


def _read(path: Path):
    try:
        return nbformat.read(path, as_version=4)
    except Exception:
        return None


def _timed_out(exc: BaseException) -> bool:
    return type(exc).__name__ == "CellTimeoutError" or "timed out" in str(exc).lower()


def export_html(nb, title: str) -> str:
    """A self-contained HTML page of an executed notebook: outputs only, no code."""
    nb = nbformat.from_dict(nb)
    body, _ = page_exporter().from_notebook_node(nb, resources={"metadata": {"name": title}})
    return body


def export_page(fragment: str, title: str) -> str:
    """A self-contained HTML page, in the look of the reports, showing an HTML ``fragment``.

    Used for the pages that stand in for a report (:mod:`stability.report.pages`).
    """
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": fragment})]
    nb.cells.append(cell)
    return export_html(nb, title)


_IMG_WITHOUT_ALT = re.compile(r"<img\b(?![^>]*\salt=)", re.IGNORECASE)
_FOCUSABLE = re.compile(r'<div\b(?=[^>]*\sclass="[^"]*\b(?:jp-Cell-inputWrapper|jp-OutputArea-output)\b)'
                        r'(?![^>]*\stabindex=)([^>]*)>')


class PageExporter(HTMLExporter):
    """nbconvert's HTML exporter without its final pass through BeautifulSoup.

    That pass (parse the whole page, add ``alt`` to images without one and
    ``tabindex="0"`` to input and output areas, write the page out again) costs
    more than the rest of the export; the same two attributes are added here
    to the page as the template wrote it.
    """

    def from_notebook_node(self, nb, resources=None, **kw):
        try:
            from nbconvert.exporters.templateexporter import TemplateExporter
            from nbconvert.filters.highlight import Highlight2HTML
            from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
        except ImportError:  # another nbconvert: its own export, BeautifulSoup included
            return super().from_notebook_node(nb, resources, **kw)
        langinfo = nb.metadata.get("language_info", {})
        lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
        self.register_filter("highlight_code",
                             self.filters.get("highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)))
        resources = self._init_resources(resources)
        self.register_filter("filter_data_type", WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata,
                                                                       parent=self, resources=resources))
        page, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
        page = _IMG_WITHOUT_ALT.sub('<img alt="No description has been provided for this image"', page)
        return _FOCUSABLE.sub(r'<div\1 tabindex="0">', page), resources


_EXPORTER: list[HTMLExporter] = []


def page_exporter() -> HTMLExporter:
    """One exporter per worker process (building one loads the templates)."""
    if not _EXPORTER:
        from nbconvert.preprocessors import TagRemovePreprocessor

        exporter = PageExporter(template_name="stability_report", extra_template_basedirs=[str(TEMPLATES)],
                                exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
        exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={EXPLORING_ONLY}), enabled=True)
        _EXPORTER.append(exporter)
    return _EXPORTER[0]


class _SaveAtEnd(NotebookExecutionManager):
    """papermill's execution manager, writing the executed notebook once it is complete (or failed).

    papermill writes the whole notebook after every cell, which for a report of thirty cells with
    figures costs more than some of its cells.
    """

    def save(self, **kwargs):
        if self.end_time is not None:
            super().save(**kwargs)


class ReportEngine(NBClientEngine):
    """papermill's nbclient engine with :class:`_SaveAtEnd` (registered as ``stability``)."""

    @classmethod
    def execute_notebook(cls, nb, kernel_name, output_path=None, progress_bar=True, log_output=False,
                         autosave_cell_every=30, **kwargs):
        nb_man = _SaveAtEnd(nb, output_path=output_path, progress_bar=progress_bar, log_output=log_output,
                            autosave_cell_every=autosave_cell_every)
        nb_man.notebook_start()
        try:
            cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()  # written here, also when a cell failed or timed out
        return nb_man.nb


papermill_engines.register(ENGINE, ReportEngine)


def _stub_notebook(job: Job, sentence: str):
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(f"# {job.title}\n\nThe notebook did not run: {sentence}"))
    return nb


def _execute(job: Job, stage: Path) -> tuple[str, str, str, int]:
    """Run the job's notebook into ``stage``; (status, error, sentence, attempts)."""
    path = stage / NOTEBOOK
    parameters = {**job.parameters, "output_dir": str(stage)}  # the workbook is staged with the rest
    attempts = 0
    while True:
        forking = job.prefork and kernels.check()
        manager = {"kernel_manager_class": ForkingKernelManager} if forking else {}
        attempts += 1
        try:
            # the kernel keeps no history, so it is stopped at once when the last cell is done
            pm.execute_notebook(job.template, str(path), parameters=parameters, kernel_name="python3", engine_name=ENGINE,
                                progress_bar=False, log_output=False, request_save_on_cell_execute=False,
                                execution_timeout=job.timeout, start_timeout=60, shutdown_kernel="immediate",
                                extra_arguments=["--IPKernelApp.log_level=CRITICAL", *KERNEL_OPTIONS], **manager)
            return OK, "", "", attempts
        except PapermillExecutionError as exc:
            sentence = pages.failure_sentence("error", nb=_read(path), ename=exc.ename, evalue=exc.evalue)
            return FAILED, _one_line(exc), sentence, attempts
        except Exception as exc:  # kernel start failure, dead kernel, cell timeout
            started = _started(path)
            if forking and not kernels.enabled() and not started:
                attempts -= 1  # the pre-warmed kernel's hook failed: start an ordinary kernel instead
                continue
            if not started and attempts <= job.retries:
                continue
            if _timed_out(exc):
                sentence = pages.failure_sentence("timeout", nb=_read(path), timeout=job.timeout)
            else:
                sentence = pages.failure_sentence("kernel", attempts=attempts, detail=_one_line(exc))
            return FAILED, _one_line(exc), sentence, attempts


def _failure_page(job: Job, stage: Path, sentence: str) -> None:
    """Leave in ``stage`` only the executed notebook and a page saying what went wrong."""
    for p in stage.iterdir():
        if p.name != NOTEBOOK:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink()
    if not (stage / NOTEBOOK).exists():
        nbformat.write(_stub_notebook(job, sentence), str(stage / NOTEBOOK))
    facts = {**job.facts, "title": job.title, "sentence": sentence,
             "notebook": str(Path(job.out_dir) / NOTEBOOK)}
    fragment = pages.failure_html(facts)
    try:
        page = export_page(fragment, job.title)
    except Exception:  # the page template itself failed: the same words, without the template
        traceback.print_exc()
        page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(job.title)}'
                f"</title></head><body>{fragment}</body></html>\n")
    (stage / HTML).write_text(page, encoding="utf-8")


def _build(job: Job, stage: Path) -> tuple[str, str, int]:
    """Build the job's files in ``stage``; (status, error, attempts)."""
    if not job.assessed:
        (stage / HTML).write_text(export_page(pages.not_assessed_html({**job.facts, "title": job.title}),
                                              job.title), encoding="utf-8")
        return NOT_ASSESSED, "", 0
    status, error, sentence, attempts = _execute(job, stage)
    if status == OK:
        try:
            page = export_html(nbformat.read(stage / NOTEBOOK, as_version=4), job.title)
            (stage / HTML).write_text(page, encoding="utf-8")
        except Exception as exc:  # the export itself failed: keep the reason
            traceback.print_exc()
            status, error = FAILED, f"export failed: {_one_line(exc)}"
            sentence = pages.failure_sentence("export", detail=_one_line(exc))
    if status != OK:
        _failure_page(job, stage, sentence)
    return status, error, attempts


def run_job(job: Job) -> Outcome:
    """Build one report in a staging folder and publish its folder as a whole; never raises for a failing notebook.

    The notebook runs in a staging folder (:mod:`stability.report.staging`); its
    workbook, executed notebook, HTML page and manifest are written there, and
    the folder then replaces ``job.out_dir`` whole.  A failed report's folder
    holds only a page saying what went wrong, the executed notebook (for
    triage) and the manifest, never an earlier run's outputs.  A region that was
    not assessed in the round gets a short page and no kernel.
    """
    os.environ.setdefault("JUPYTER_PREFER_ENV_PATH", "1")  # the toolkit's own kernel, not a user-level one
    out = Path(job.out_dir)
    t0 = time.perf_counter()
    stage = new_staging(out)
    try:
        status, error, attempts = _build(job, stage)
        files = [p.name for p in (stage / NOTEBOOK, stage / HTML, stage / WORKBOOK, stage / MAP) if p.exists()]
        outcome = Outcome(job.name, job.title, status, round(time.perf_counter() - t0, 2), attempts, error, files,
                          kernels.take_warnings())
        manifest = {"inputs": job.inputs,
                    **{k: v for k, v in asdict(outcome).items() if k not in ("seconds", "notes")}}
        write_text_atomic(stage / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
        publish_folder(stage, out)
    except BaseException:
        discard(stage)
        raise
    return outcome
