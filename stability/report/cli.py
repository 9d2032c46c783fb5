"""``stability report``: the command line of the report runner."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path


def register(sub) -> None:
    """Add the ``report`` subcommand to the main parser."""
    from ..cli import HelpFormatter

    class Formatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
        """The description and examples as written; each option's default said."""

    p = sub.add_parser(
        "report", help="build regional reports (HTML, notebooks, Excel) for one region or all",
        description=textwrap.fill("Run the parameterised report notebooks with papermill, one kernel per report, several at "
                    "once, and export self-contained HTML. Output: <out>/<round>/<region>/report.html, "
                    "report.ipynb, rankings.xlsx, map.html (an interactive map that works offline) and "
                    "manifest.json (what the report was built from), and <out>/<round>/index.html. Exit status 0 "
                    "when every report was built, 1 when some failed, 2 for bad parameters (nothing is built).", 100),
        formatter_class=Formatter,
        epilog="examples:\n  stability report --region ML05 --round 3\n  stability report --all --round latest "
               "--resume\n  stability report --all --uncertainty 200\n  stability report --all --round all\n  stability report --all --scheduler tcp://scheduler:8786")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--region", metavar="P-CODE", help="admin-1 p-code of one region (e.g. ML05)")
    which.add_argument("--all", action="store_true", help="every region, plus the country overview")
    p.add_argument("--round", default="latest",
                   help="survey round, 'latest' (default), or 'all' (every round, e.g. after a change of method)")
    p.add_argument("--data", type=Path, default=None, help="dataset folder or answers file (default: embedded)")
    p.add_argument("--spec", type=Path, default=None, help="index specification (default: embedded Mali spec)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: reports/)")
    p.add_argument("--jobs", default=None, metavar="N",
                   help="reports built at once, 1 or more (default: number of cores + 1)")
    p.add_argument("--resume", action="store_true",
                   help="rebuild only reports that are missing, failed, or whose inputs changed")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run on an existing Dask cluster (e.g. tcp://host:8786; default: "
                                                              "kernels on this machine)")
    p.add_argument("--timeout", default="600", metavar="SECONDS",
                   help="seconds a notebook cell may run, 1 or more (default 600)")
    p.add_argument("--retries", default="2", metavar="N",
                   help="retries when a kernel fails to start, 0 or more (default 2)")
    p.add_argument("--templates", type=Path, default=None,
                   help="folder with regional_report.ipynb and country_overview.ipynb (default: notebooks/)")
    p.add_argument("--uncertainty", default=None, metavar="N|FOLDER",
                   help="how sure each rank, category and change is: N (2 or more) runs of the uncertainty "
                        "analysis, computed once for the batch (sources and choices from the spec's uncertainty "
                        "section), or the FOLDER of a run saved by 'stability uncertainty'; 0 = off. Default: the "
                        "run in reports/uncertainty/ when it is of this index")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar and no summary; failures are still printed, one line each, on stderr")
    p.set_defaults(func=cmd_report)


def whole_number(value, option: str) -> int | None:
    """An option's value as an integer (None stays None); anything else is a one-line error naming the option."""
    from ..exceptions import ParameterError

    if value is None:
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise ParameterError(f"{value!r} is not a whole number", option=option) from None


def cmd_report(args) -> int:
    from .runner import (ALL_ROUNDS, build_every_round, build_reports, check_options, raise_for_failures,
                         uncertainty_option)

    workers = whole_number(args.jobs, "--jobs")
    timeout = whole_number(args.timeout, "--timeout")
    retries = whole_number(args.retries, "--retries")
    check_options(workers=workers, timeout=timeout, retries=retries)
    uncertainty = uncertainty_option(args.uncertainty)
    options = dict(region=args.region, all_regions=args.all, data_path=args.data or "", spec_path=args.spec or "",
                   out_root=args.out, workers=workers, resume=args.resume, scheduler=args.scheduler,
                   timeout=timeout, retries=retries, templates=args.templates, progress=not args.quiet,
                   uncertainty=uncertainty)
    if str(args.round).strip().lower() == ALL_ROUNDS:
        batches = build_every_round(**options)
    else:
        batches = [build_reports(survey_round=args.round, **options)]
    for batch in batches:
        _summary(batch, args.quiet)
    if len(batches) == 1:
        raise_for_failures(batches[0])
    failed = [(b, o) for b in batches for o in b.failed]
    if failed:
        from ..exceptions import ReportError

        names = ", ".join(f"{o.name} (round {b.round})" for b, o in failed)
        raise ReportError(f"{len(failed)} report(s) failed: {names} (see the index page of each round)")
    return 0


def _summary(batch, quiet: bool) -> None:
    if not quiet:
        for o in batch.outcomes:
            extra = f" – {o.error}" if o.error else ""
            print(f"{o.status:>12}  {o.name:<9} {o.seconds:5.1f}s  {o.title}{extra}", file=sys.stderr)
        print(f"index: {batch.index}")
    else:
        for o in batch.failed:
            print(f"FAILED {o.name}: {o.error} (see {batch.folder / o.name / 'report.html'})", file=sys.stderr)
