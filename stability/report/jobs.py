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


@dataclass
class Outcome:
    """What happened to one report."""

    name: str
    title: str
    status: str  # ok | failed | skipped
    seconds: float = 0.0
    attempts: int = 0
    error: str = ""
    files: list[str] = field(default_factory=list)



def warm_up() -> int:
    """Run first in each new pool worker: fork its kernel server while the worker is still fresh."""
    from . import kernels

    kernels.fork_server(fork_here=True)
    return os.getpid()


def run(job: Job) -> Outcome:
    """Build one report (in a worker process)."""
    from .worker import run_job

    return run_job(job)
