"""``stability report``: the command line of the report runner."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub) -> None:
    """Add the ``report`` subcommand to the main parser."""
    p = sub.add_parser(
        "report", help="build regional reports (HTML, notebooks, Excel) for one region or all",
        description="Run the parameterised report notebooks with papermill, one kernel per report, several at "
                    "once, and export self-contained HTML. Output: <out>/<round>/<region>/report.html, "
                    "report.ipynb, rankings.xlsx and <out>/<round>/index.html. Exit status 0 when every report "
                    "was built, 1 when some failed, 2 for bad parameters (nothing is built).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  stability report --region ML05 --round 3\n  stability report --all --round latest "
               "--resume\n  stability report --all --scheduler tcp://scheduler:8786")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--region", metavar="P-CODE", help="admin-1 p-code of one region (e.g. ML05)")
    which.add_argument("--all", action="store_true", help="every region, plus the country overview")
    p.add_argument("--round", default="latest", help="survey round, or 'latest' (default)")
    p.add_argument("--data", type=Path, default=None, help="dataset folder or answers file (default: embedded)")
    p.add_argument("--spec", type=Path, default=None, help="index specification (default: embedded Mali spec)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: reports/)")
    p.add_argument("--jobs", type=int, default=None, help="reports built at once (default: number of cores)")
    p.add_argument("--resume", action="store_true",
                   help="rebuild only reports that are missing, failed, or whose inputs changed")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run on an existing Dask cluster (e.g. tcp://host:8786)")
    p.add_argument("--timeout", type=int, default=600, help="seconds a notebook cell may run (default 600)")
    p.add_argument("--retries", type=int, default=2, help="retries when a kernel fails to start (default 2)")
    p.add_argument("--templates", type=Path, default=None,
                   help="folder with regional_report.ipynb and country_overview.ipynb (default: notebooks/)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from .runner import build_reports, raise_for_failures

    batch = build_reports(region=args.region, all_regions=args.all, survey_round=args.round,
                          data_path=args.data or "", spec_path=args.spec or "", out_root=args.out,
                          workers=args.jobs, resume=args.resume, scheduler=args.scheduler, timeout=args.timeout,
                          retries=args.retries, templates=args.templates, progress=not args.quiet)
    if not args.quiet:
        for o in batch.outcomes:
            extra = f" – {o.error}" if o.error else ""
            print(f"{o.status:>7}  {o.name:<9} {o.seconds:5.1f}s  {o.title}{extra}", file=sys.stderr)
        print(f"index: {batch.index}")
    raise_for_failures(batch)
    return 0
