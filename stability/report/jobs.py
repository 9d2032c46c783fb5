"""What a report job is, in a module light enough for the coordinating process.

The coordinating process builds :class:`Job` objects and sends them to worker
processes; only the workers import papermill and nbconvert (:mod:`.worker`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

NOTEBOOK = "report.ipynb"
HTML = "report.html"
MANIFEST = "manifest.json"
WORKBOOK = "rankings.xlsx"
#: The offline interactive map a report writes beside its workbook.
MAP = "map.html"

OK = "ok"
FAILED = "failed"
SKIPPED = "skipped"
#: A region with no location assessed in the round: a short page, no notebook, not a failure.
NOT_ASSESSED = "not assessed"


@dataclass(frozen=True)
class Job:
    """One report to build.

    Attributes
    ----------
    name : str
        Region p-code, or ``overview``.
    title : str
        Page title.
    template : str
        The notebook to execute.
    out_dir : str
        ``reports/<round>/<name>``.
    parameters : dict
        Notebook parameters (papermill).
    inputs : dict
        What the report depends on (checksums, spec hash, toolkit version,
        parameters); ``--resume`` rebuilds a report when this changes.
    timeout : int
        Seconds a cell may run.
    retries : int
        Further attempts when the kernel fails to start.
    prefork : bool
        Fork the kernel from a pre-warmed server (:mod:`stability.report.kernels`);
        worth it when a process builds several reports.
    assessed : bool
        False for a region with no location in the round: the job writes a
        short "not assessed" page instead of running the notebook.
    facts : dict
        What the report's stand-in pages say (:mod:`stability.report.pages`):
        region, round, provenance, rounds in which the region was assessed, and
        the command that rebuilds the report.
    """

    name: str
    title: str
    template: str
    out_dir: str
    parameters: dict
    inputs: dict
    timeout: int = 600
    retries: int = 2
    prefork: bool = True
    assessed: bool = True
    facts: dict = field(default_factory=dict)


@dataclass
class Outcome:
    """What happened to one report."""

    name: str
    title: str
    status: str  # ok | failed | skipped | not assessed
    seconds: float = 0.0
    attempts: int = 0
    error: str = ""
    files: list[str] = field(default_factory=list)
    #: Things the run should say once (e.g. pre-warmed kernels were turned off), not failures.
    notes: list[str] = field(default_factory=list)


def warm_up() -> int:
    """Run first in each new pool worker: fork its kernel server while the worker is still fresh, then load the
    HTML exporter."""
    from . import kernels
    from .worker import page_exporter

    try:
        kernels.fork_server(fork_here=True)
        page_exporter()  # load the page templates now, while the index is computed, not after the first notebook
    except Exception:  # only an optimisation: a report starts its kernel server or exporter when it needs one
        pass
    return os.getpid()


def run(job: Job) -> Outcome:
    """Build one report (in a worker process)."""
    from .worker import run_job

    return run_job(job)
