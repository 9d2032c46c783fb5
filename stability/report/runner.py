"""Build regional reports for one region or all, in parallel, resumably.

:func:`build_reports` is what ``stability report`` calls:

1. check every parameter before any kernel starts (spec, data, round, region,
   output folder): a bad one is a one-line error, exit status 2, nothing written;
2. compute the index once and save it for the notebooks (they recompute only if
   the data, spec or toolkit version differ), with the tables the reports share and,
   when there is one, each report's part of the uncertainty analysis
   (:func:`resolve_uncertainty`: computed once for the batch, read from a saved run, or
   the run of ``reports/uncertainty/`` when it is of this index);
3. run each report's notebook in a kernel of its own, several at once (a local
   process pool, or an existing Dask cluster with ``scheduler``), with a per-cell
   timeout and retries when a kernel fails to start; a failing report keeps its
   executed notebook and an HTML page of the failure, and does not stop the others;
4. write ``reports/<round>/index.html`` linking every report with a summary table.

Each report is built in a staging folder and its folder replaced as a whole
when it is done (:mod:`stability.report.staging`): a failed report never sits
beside an earlier run's outputs.  A region with no location assessed in the
round gets a short "not assessed" page (no kernel) and does not count as a
failure.

With ``resume`` a report is rebuilt only when it is missing, failed last time,
its inputs (data checksum, spec hash, toolkit version, notebook, parameters)
changed, or its rankings workbook says it was built from another spec or data
(e.g. another run rewrote it).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from .. import __version__
from ..exceptions import ParameterError, ReportError, SpecError
from ..io import dataset_files, file_checksum, files_version
from ..paths import default_dataset, default_spec, reports_dir
from .context import check_region, overview_name, region_names, region_rounds, resolve_round

log = logging.getLogger("stability.report")

OVERVIEW = "overview"
REGIONAL_NOTEBOOK = "regional_report.ipynb"
OVERVIEW_NOTEBOOK = "country_overview.ipynb"
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def notebooks_dir() -> Path:
    from ..paths import notebooks_dir as folder

    return folder()


@dataclass
class Batch:
    """The outcome of a batch of reports."""

    round: Any
    folder: Path
    outcomes: list
    index: Path | None = None
    #: Warnings of the run, each once (e.g. pre-warmed kernels turned off).
    notes: list = field(default_factory=list)
    #: Things the run said on stderr that are not warnings (e.g. a saved uncertainty run ignored).
    info: list = field(default_factory=list)

    @property
    def failed(self) -> list:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def not_assessed(self) -> list:
        """Regions with no location assessed in the round (a short page each; not failures)."""
        from .jobs import NOT_ASSESSED

        return [o for o in self.outcomes if o.status == NOT_ASSESSED]

    @property
    def ok(self) -> bool:
        return not self.failed


def safe_folder(root: Path, name: str, option: str | None = None) -> Path:
    """``root / name`` for a name that cannot leave ``root`` (no separators, no ``..``)."""
    name = str(name)
    if not _SAFE.match(name) or name in (".", ".."):
        raise ParameterError(f"'{name}' cannot be used as a folder name (letters, digits, '.', '_', '-' only)",
                             option=option)
    path = (root / name).resolve()
    if path.parent != root.resolve():
        raise ParameterError(f"'{name}' would leave the output folder {root}", option=option)
    return path


def check_options(*, workers: int | None = None, timeout: int = 600, retries: int = 2) -> None:
    """Refuse numbers of workers, seconds and retries that cannot work (before anything is written).

    Raises
    ------
    ParameterError
        Naming the option: ``--jobs`` (at least 1), ``--timeout`` (at least 1
        second), ``--retries`` (0 or more).
    """
    for value, option, low, what in ((workers, "--jobs", 1, "reports at once"),
                                     (timeout, "--timeout", 1, "seconds a cell may run"),
                                     (retries, "--retries", 0, "retries")):
        if value is None and option == "--jobs":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ParameterError(f"{what} must be a whole number of at least {low}, not {value!r}", option=option)


def check_out(root: Path) -> Path:
    """The output folder, resolved; refused when it is a file or cannot be written to."""
    root = Path(root).resolve()
    if root.exists() and not root.is_dir():
        raise ParameterError(f"'{root}' is a file, not an output folder", option="--out")
    existing = next((p for p in (root, *root.parents) if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ParameterError(f"cannot write to '{root}' (no permission to create or change {existing})",
                             option="--out")
    return root


def _sha(path: Path) -> str:
    return file_checksum(path)[:16]


def _inputs(job_params: dict, template: Path, data_version: str, spec, spec_file: Path,
            uncertainty: str = "") -> dict:
    out = {"data": data_version, "spec_hash": spec.hash, "spec_file": _sha(spec_file), "toolkit": __version__,
           "notebook": _sha(template), "parameters": {k: v for k, v in job_params.items() if k != "cache_path"}}
    if uncertainty:  # a report with intervals is rebuilt when the analysis changes (or appears)
        out["uncertainty"] = uncertainty
    return out


def _up_to_date(job) -> bool:
    """Is the published report of ``job`` current (same inputs, every file there, the workbook its own)?"""
    from .content import workbook_provenance
    from .jobs import HTML, MANIFEST, NOT_ASSESSED, NOTEBOOK, OK, WORKBOOK

    out = Path(job.out_dir)
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if manifest.get("inputs") != json.loads(json.dumps(job.inputs)) or not (out / HTML).exists():
        return False
    status = manifest.get("status")
    if status == NOT_ASSESSED:
        return not job.assessed
    if status != OK or not job.assessed or not (out / NOTEBOOK).exists():
        return False
    if WORKBOOK in manifest.get("files", []):
        stamp = workbook_provenance(out / WORKBOOK)
        if stamp["spec_hash"] != job.inputs["spec_hash"] or stamp["data_version"] != job.inputs["data"]:
            return False  # rewritten by another run, or from other inputs
    return True


def _rebuild_command(name: str, rnd: Any, data_path, spec_path, out_root) -> str:
    """The command that rebuilds one report (shown on its failure page)."""
    words = ["stability", "report"] + (["--all", "--resume"] if name == OVERVIEW else ["--region", name])
    words += ["--round", str(rnd if rnd is not None else "latest")]
    for option, value in (("--data", data_path), ("--spec", spec_path), ("--out", out_root)):
        if value:
            words += [option, str(value)]
    return " ".join(shlex.quote(w) for w in words)


#: ``--uncertainty`` value for no uncertainty analysis in the reports.
NO_UNCERTAINTY = 0


def default_uncertainty_dir() -> Path:
    """Where ``stability uncertainty`` writes its run by default, and where the reports look for one:
    ``reports/uncertainty/`` (:func:`stability.paths.reports_dir`)."""
    return reports_dir() / "uncertainty"


@dataclass
class UncertaintySource:
    """The uncertainty analysis of a batch of reports: the run and where it comes from, in words."""

    run: Any
    origin: str

    def fingerprint(self) -> str:
        """A short hash of the run's tables (a report built with another run is rebuilt by ``--resume``)."""
        import hashlib

        import pandas as pd

        h = hashlib.sha256()
        for frame in (self.run.locations, self.run.summary, self.run.sensitivity):
            if frame is not None:
                h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        return h.hexdigest()[:16]


def uncertainty_option(value) -> Any:
    """The value of ``--uncertainty``: None (not given), a number of runs (0 = off, else 2 or more), or a folder.

    Raises
    ------
    ParameterError
        1 or a negative number of runs, or a folder that holds no saved run (naming the option).
    """
    if value is None or isinstance(value, UncertaintySource):
        return value
    if hasattr(value, "locations") and hasattr(value, "matches"):  # an UncertaintyResult
        return value
    if isinstance(value, bool):
        raise ParameterError(f"{value!r} is neither a number of runs nor a folder", option="--uncertainty")
    text = str(value).strip()
    if isinstance(value, int) or re.fullmatch(r"[+-]?\d+", text):
        runs = int(text)
        if runs < 0 or runs == 1:
            raise ParameterError(f"{runs} runs: give 0 (off), 2 or more runs, or the folder of a saved run",
                                 option="--uncertainty")
        return runs
    folder = Path(text).expanduser()
    if not folder.is_dir():
        raise ParameterError(f"'{text}' is neither a number of runs nor a folder (a saved run is a folder written "
                             "by stability uncertainty)", option="--uncertainty")
    if not (folder / "manifest.json").is_file():
        raise ParameterError(f"no saved uncertainty run in '{text}' (no manifest.json: stability uncertainty --out "
                             f"{text} writes one)", option="--uncertainty")
    return folder.resolve()


def _shown(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _other_index(run, result) -> str:
    return (f"computed from another index (spec hash {run.spec_hash}, data version {run.data_version}; "
            f"these reports: {result.spec_hash}, {result.data_version})")


def resolve_uncertainty(value, result, data=None, *, progress: bool = False, data_path="", spec_path=""
                        ) -> tuple[UncertaintySource | None, str | None]:
    """The uncertainty analysis of a batch of reports, and a note to show (or None).

    Parameters
    ----------
    value : None, int, str, Path, UncertaintySource or UncertaintyResult
        None: the run saved in :func:`default_uncertainty_dir` when it is of this index (else none, with a
        note); 0: none; ``N`` (2 or more): :func:`stability.uncertainty.analyse` with ``N`` runs (the other
        options, sources included, from the spec's ``uncertainty`` section); a folder: the run saved there.
    result : Result
        The index of the reports.
    data : Dataset, optional
        Its survey (for the key-informant bootstrap).
    progress : bool
        Show the analysis's progress bar.
    data_path, spec_path : str or Path
        The reports' data and spec as given ("" = the embedded ones), for the command the note gives.

    Raises
    ------
    ParameterError
        A saved run (given as a folder) of another index, or one that cannot be read: one line naming
        ``--uncertainty``.
    """
    value = uncertainty_option(value)
    if value is None:  # the run saved by default: one of another index (or unreadable) is ignored, with a note
        folder = default_uncertainty_dir()
        if not (folder / "manifest.json").is_file():
            return None, None
        try:
            run = _load_saved(folder)
        except ParameterError as exc:
            return None, f"the uncertainty run in {_shown(folder)} is ignored: {exc.message}"
        if not run.matches(result):
            return None, (f"the uncertainty run in {_shown(folder)} is ignored: {_other_index(run, result)}; "
                          + _rerun_words(data_path, spec_path))
        return _checked(run, result, folder), None
    if value == NO_UNCERTAINTY:
        return None, None
    if isinstance(value, UncertaintySource):
        _checked(value.run, result)
        return value, None
    if isinstance(value, Path):
        return _checked(_load_saved(value), result, value), None
    if isinstance(value, int):
        from ..uncertainty import analyse

        run = analyse(result, data, runs=value, progress=progress)
        return UncertaintySource(run, f"computed for these reports ({value:,} runs)"), None
    return _checked(value, result), None  # an UncertaintyResult given through the Python API


def _rerun_words(data_path="", spec_path="") -> str:
    """How to give reports of another index than the saved run's an analysis of their own, in words."""
    if not data_path and not spec_path:
        return "stability uncertainty recomputes it, or give --uncertainty N"
    words = ["stability", "uncertainty"]
    for option, value in (("--data", data_path), ("--spec", spec_path)):
        if value:
            words += [option, _shown(Path(value))]
    return (f"give --uncertainty N, or the folder of a run of this index ({' '.join(shlex.quote(w) for w in words)} "
            "--out FOLDER writes one)")


def _load_saved(folder: Path):
    """The run saved in ``folder``; one that cannot be read is a :class:`ParameterError` naming the option."""
    from ..exceptions import StabilityError
    from ..uncertainty import load_run

    try:
        return load_run(folder)
    except StabilityError as exc:
        raise ParameterError(str(exc), option="--uncertainty") from None


def _checked(run, result, folder: Path | None = None) -> UncertaintySource:
    """``run`` as the source of a batch when it is of the batch's index (same spec hash and data version)."""
    if not run.matches(result):
        where = f"the run in '{_shown(folder)}'" if folder is not None else "the uncertainty run"
        raise ParameterError(f"{where} was {_other_index(run, result)}; recompute it with stability uncertainty, "
                             "or give --uncertainty N", option="--uncertainty")
    origin = (f"the run saved in {_shown(folder)} by stability uncertainty" if folder is not None
              else "computed for these reports")
    return UncertaintySource(run, origin)


def add_uncertainty(tables: dict, source: UncertaintySource | None, result) -> None:
    """Add each report's part of the uncertainty analysis to the shared tables (its round, its region)."""
    from .uncertainty import report_tables

    if source is None or not tables.get("reports"):
        return
    for region, kept in tables["reports"].items():
        kept.update(report_tables(source.run, result, tables["round"], region or None, source.origin))


def plan_jobs(*, region: str | None, all_regions: bool, survey_round: Any = "latest", data_path: str | Path = "",
              spec_path: str | Path = "", out_root: str | Path | None = None, timeout: int = 600, retries: int = 2,
              templates: str | Path | None = None, resume: bool = False, uncertainty: Any = None,
              progress: bool = False):
    """Check the parameters, compute the index once, and list the reports to build.

    The index and the tables the reports share (:func:`~stability.report.context.shared_tables`, for the
    reports to build: with ``resume``, not those already up to date) are saved for the notebooks.

    ``uncertainty`` is the ``--uncertainty`` option (see :func:`resolve_uncertainty`): each report's part of
    the analysis goes to its notebook with the shared tables.

    Returns
    -------
    jobs : list of Job
    context : dict
        ``result``, ``round``, ``folder`` (``<out_root>/<round>``), ``regions``, ``uncertainty`` (the
        :class:`UncertaintySource` or None) and ``info`` (notes to show, e.g. a saved run ignored).

    Raises
    ------
    ParameterError, InputError
        On any bad parameter or input, before any kernel starts.
    """
    from ..spec import load_spec
    from .context import compute_result, map_layers, save_cache, shared_tables
    from .jobs import Job

    if bool(region) == bool(all_regions):
        raise ParameterError("give either --region P-CODE or --all")
    check_options(timeout=timeout, retries=retries)
    spec_file = Path(spec_path or default_spec()).resolve()
    data_in = Path(data_path or default_dataset()).resolve()
    if not spec_file.is_file():
        raise ParameterError(f"spec file not found: {spec_file}", option="--spec")
    if not data_in.exists():
        raise ParameterError(f"dataset not found: {data_in}", option="--data")
    load_spec(spec_file)  # a malformed spec fails here, before the data are read
    files = dataset_files(data_in)
    for role, path in files.items():
        if not Path(path).exists():
            raise ParameterError(f"{role} file not found: {path}", option="--data")
    templates = Path(templates).resolve() if templates else notebooks_dir()
    for nb in (REGIONAL_NOTEBOOK, OVERVIEW_NOTEBOOK):
        if not (templates / nb).exists():
            raise ParameterError(f"notebook not found: {templates / nb}", option="--templates")
    root = check_out(out_root or reports_dir())
    uncertainty = uncertainty_option(uncertainty)  # a bad number or folder is refused before the index is computed
    result, data, spec = compute_result(data_in, spec_file)
    from ..io import warn_input
    from ..privacy import problems

    for p in problems(data, spec):  # the columns left out as personal data: one line per file, as score says
        warn_input(p.message, file=p.file, column=p.column)
    regions = region_names(result)
    rnd = resolve_round(result.rounds, survey_round, option="--round")
    if region:
        region = check_region(regions, region, option="--region")
    folder = safe_folder(root, str(rnd if rnd is not None else "all"), option="--round")
    try:
        source, note = resolve_uncertainty(uncertainty, result, data, progress=progress, data_path=data_path,
                                           spec_path=spec_path)
    except SpecError as exc:  # an alternative of the spec's uncertainty section refused once the index is known
        raise exc.in_file(spec_file) from None
    run_key = source.fingerprint() if source is not None else ""
    version = files_version(files)
    names = list(regions) if all_regions else [region]
    outs = {name: safe_folder(folder, name, option="--region") for name in names}
    cache = folder / ".cache" / "result.pkl"
    base = {"survey_round": rnd if rnd is not None else "latest", "spec_path": str(spec_file),
            "data_path": str(data_in), "cache_path": str(cache)}
    provenance = {"round": rnd, "dataset": result.source.get("name", ""), "illustrative": result.illustrative,
                  "spec_name": spec.name, "spec_hash": spec.hash, "data_version": result.data_version}

    def facts(name: str, **extra) -> dict:
        return {**provenance, "name": name, "rebuild": _rebuild_command(name, rnd, data_path, spec_path, out_root),
                **extra}

    jobs = []
    for name in names:
        out = outs[name]
        params = {"region": name, **base, "output_dir": str(out)}
        template = templates / REGIONAL_NOTEBOOK
        title = f"{spec.name}: {regions[name]} ({name}), round {rnd}"
        assessed = region_rounds(result, name)
        jobs.append(Job(name, title, str(template), str(out), params,
                        _inputs(params, template, version, spec, spec_file, run_key), timeout, retries,
                        assessed=bool(assessed.get(rnd)),
                        facts=facts(name, region=name, region_name=regions[name],
                                    assessed={str(k): v for k, v in assessed.items()})))
    if all_regions:
        out = safe_folder(folder, OVERVIEW)
        params = {**base, "output_dir": str(out)}
        template = templates / OVERVIEW_NOTEBOOK
        what = overview_name(regions)
        jobs.insert(0, Job(OVERVIEW, f"{spec.name}: {what[0].lower()}{what[1:]}, round {rnd}", str(template), str(out),
                           params, _inputs(params, template, version, spec, spec_file, run_key), timeout, retries,
                           facts=facts(OVERVIEW)))
    if sum(j.assessed for j in jobs) <= 1:  # a pre-warmed kernel server only pays off over several reports
        jobs = [replace(j, prefork=False) for j in jobs]
    # the tables every notebook would compute again (the national classification, ...) are computed here, once
    todo = [None if j.name == OVERVIEW else j.name for j in jobs if j.assessed and not (resume and _up_to_date(j))]
    geo = map_layers(result)
    tables = shared_tables(result, rnd, todo, geo)
    add_uncertainty(tables, source, result)
    save_cache(cache, result, geo, tables)
    info = [note] if note else []
    info += _other_index_notes(folder, result, regions, {j.name for j in jobs})
    return jobs, {"result": result, "round": rnd, "folder": folder, "regions": regions, "uncertainty": source,
                  "info": info}


def _other_index_notes(folder: Path, result, regions: dict, building: set) -> list[str]:
    """Notes on the report folders of the round built from another index that this batch leaves as they are:
    those of its regions (the index page marks them) and the others (the index page leaves them out)."""
    from .index import foreign_reports

    others = [n for n in foreign_reports(folder, result) if n not in building]
    listed = [n for n in others if n in regions or n == OVERVIEW]
    unlisted = [n for n in others if n not in listed]

    def some(names):  # "ML06, ML07 and overview", at most six names
        shown = names[:6] + ([f"{len(names) - 6} more"] if len(names) > 6 else [])
        return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]

    notes = []
    if listed:
        notes.append(f"the reports of {some(listed)} in {_shown(folder)} were built from another index (another spec "
                     "or other data): the index page marks them; stability report --all rebuilds them")
    if unlisted:
        notes.append(f"{_shown(folder)} also holds reports of another index ({some(unlisted)}): the index page "
                     "leaves them out; give each index its own --out folder")
    return notes


class Pool:
    """A process pool whose workers preload papermill, nbconvert and the kernel libraries.

    The workers start in a background thread, so that their start-up overlaps
    the computation of the index; each then forks its kernel server
    (:mod:`stability.report.kernels`) before its first report.
    """

    def __init__(self, workers: int):
        import multiprocessing as mp
        import threading
        from concurrent.futures import ProcessPoolExecutor

        from .jobs import warm_up
        from .kernels import PRELOAD

        if "forkserver" in mp.get_all_start_methods():
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(["stability.report.worker", *PRELOAD, "stability.report.preheat"])
        else:  # Windows: workers import what they need themselves
            ctx = mp.get_context("spawn")
        # every worker warms itself up when it starts (a warm-up task could be picked up twice by one worker)
        self.executor = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=warm_up)
        self._starting = threading.Thread(
            target=lambda: [self.executor.submit(warm_up) for _ in range(workers)], daemon=True)
        self._starting.start()

    def run(self, jobs, on_done: Callable) -> list:
        """Run the jobs (each starts its own kernel); ``on_done`` sees each outcome as it arrives."""
        from concurrent.futures import as_completed

        from .jobs import run

        self._starting.join()
        futures = [self.executor.submit(run, job) for job in jobs]
        return [on_done(f.result()) for f in as_completed(futures)]

    def close(self) -> None:
        self._starting.join()
        self.executor.shutdown(wait=True, cancel_futures=True)


def _run_here(jobs, on_done: Callable) -> list:
    from .jobs import run

    return [on_done(run(job)) for job in jobs]


def _run_dask(jobs, address: str, on_done: Callable) -> list:
    """Fan the jobs out to an existing Dask cluster."""
    from distributed import Client, as_completed

    from .jobs import run

    with Client(address, timeout="30s") as client:
        futures = client.map(run, jobs, pure=False, key=[f"stability-report-{j.name}" for j in jobs])
        return [on_done(f.result()) for f in as_completed(futures)]


def build_reports(*, region: str | None = None, all_regions: bool = False, survey_round: Any = "latest",
                  data_path: str | Path = "", spec_path: str | Path = "", out_root: str | Path | None = None,
                  workers: int | None = None, resume: bool = False, scheduler: str | None = None,
                  timeout: int = 600, retries: int = 2, templates: str | Path | None = None,
                  progress: bool = True, uncertainty: Any = None) -> Batch:
    """Build the reports of one region (``region``) or of all regions plus the overview.

    Parameters
    ----------
    region : str, optional
        Admin-1 p-code.
    all_regions : bool
        Every region of the data, and the country overview.
    survey_round : int or str
        Round, or ``"latest"``.
    data_path, spec_path : str or Path
        Survey and spec ("" = the embedded defaults).
    out_root : str or Path, optional
        Output folder (default ``reports/``); reports go to ``<out_root>/<round>/<region>/``.
    workers : int, optional
        Reports built at once (default: the number of cores + 1).
    resume : bool
        Skip reports that are up to date.
    scheduler : str, optional
        Address of a Dask scheduler to run the reports on.
    timeout : int
        Seconds a notebook cell may run.
    retries : int
        Further attempts when a kernel fails to start.
    templates : str or Path, optional
        Folder with ``regional_report.ipynb`` and ``country_overview.ipynb``
        (default: the project's ``notebooks/``).
    progress : bool
        Show a progress bar of reports done.
    uncertainty : None, int, str or Path
        How sure each rank, category and change is (``--uncertainty``): ``N`` (2 or more) runs
        :func:`stability.uncertainty.analyse` once for the batch, a folder reads a run saved by
        ``stability uncertainty`` (refused when it is of another index), 0 turns it off; None (default)
        uses the run in ``reports/uncertainty/`` when it is of this index (one that is not is ignored,
        with a note on stderr unless ``progress`` is off).  See :func:`resolve_uncertainty`.

    Returns
    -------
    Batch
    """
    from tqdm.auto import tqdm

    from .index import write_index
    from .jobs import Outcome

    check_options(workers=workers, timeout=timeout, retries=retries)
    # one worker more than cores: a worker waiting for its kernel to start or exporting leaves a core idle otherwise
    n = workers or (os.cpu_count() or 1) + 1
    pool = Pool(n) if (all_regions and not scheduler and n > 1) else None
    try:
        jobs, info = plan_jobs(region=region, all_regions=all_regions, survey_round=survey_round,
                               data_path=data_path, spec_path=spec_path, out_root=out_root, timeout=timeout,
                               retries=retries, templates=templates, resume=resume, uncertainty=uncertainty,
                               progress=progress)
        for line in info["info"]:
            if progress:
                print(f"stability: note: {line}", file=sys.stderr, flush=True)
        todo = [j for j in jobs if not (resume and _up_to_date(j))]
        skipped = [Outcome(j.name, j.title, "skipped") for j in jobs if j not in todo]
        bar = tqdm(total=len(jobs), initial=len(skipped), unit="report", desc=f"round {info['round']}",
                   disable=None if progress else True, leave=True)  # None: no bar when stderr is a log, not a terminal

        def done(outcome):
            bar.update(1)
            if outcome.status == "failed" and progress:
                bar.write(f"FAILED {outcome.name}: {outcome.error}", file=sys.stderr)
            return outcome

        try:
            if not todo:
                outcomes = []
            elif scheduler:
                outcomes = _run_dask(todo, scheduler, done)
            elif pool is not None:
                outcomes = pool.run(todo, done)
            else:
                outcomes = _run_here(todo, done)
        finally:
            bar.close()
    finally:
        if pool is not None:
            pool.close()
    order = {j.name: i for i, j in enumerate(jobs)}
    outcomes = sorted(outcomes + skipped, key=lambda o: order[o.name])
    notes = list(dict.fromkeys(note for o in outcomes for note in o.notes))
    for note in notes:
        log.warning("stability: warning: %s", note)
    batch = Batch(info["round"], info["folder"], outcomes, notes=notes, info=list(info["info"]))
    batch.index = write_index(info["folder"], info["result"], info["round"], info["regions"])
    return batch


#: ``--round`` value that builds the reports of every round of the data.
ALL_ROUNDS = "all"


def data_rounds(data_path: str | Path = "", spec_path: str | Path = "") -> list:
    """The rounds of a dataset, in order (one unlabelled round: ``[None]``)."""
    from .context import compute_result

    result, _, _ = compute_result(data_path, spec_path)
    return list(result.rounds) or [None]


def build_every_round(**options) -> list[Batch]:
    """:func:`build_reports` for every round of the data, oldest first (e.g. after a change of method).

    Takes the options of :func:`build_reports` except ``survey_round``.  The uncertainty analysis (or the
    saved run) is resolved once, for every round.
    """
    from .context import compute_result

    value = uncertainty_option(options.get("uncertainty"))
    result, data, _ = compute_result(options.get("data_path", ""), options.get("spec_path", ""))
    rounds = list(result.rounds) or [None]
    source, note = resolve_uncertainty(value, result, data, progress=options.get("progress", True),
                                       data_path=options.get("data_path", ""), spec_path=options.get("spec_path", ""))
    if note and options.get("progress", True):
        print(f"stability: note: {note}", file=sys.stderr, flush=True)
    options = {**options, "uncertainty": source if source is not None else NO_UNCERTAINTY}
    return [build_reports(survey_round="latest" if r is None else r, **options) for r in rounds]


def raise_for_failures(batch: Batch) -> None:
    if batch.failed:
        names = ", ".join(o.name for o in batch.failed)
        raise ReportError(f"{len(batch.failed)} report(s) failed: {names} (see {batch.index})")

