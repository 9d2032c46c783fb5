"""Command line: a thin layer over the Python API.

::

    stability validate [--data PATH] [--spec FILE]
    stability score    [--data PATH] [--spec FILE] [--out DIR] [--format csv,parquet,xlsx,gpkg]
    stability generate --out DIR [--locations N] [--rounds N] [--seed N] [--countries MLI,BFA,NER] [--kobo]
    stability spec from-xlsform FORM.xlsx --mapping MAPPING.yaml [--language fr] [--out spec.yaml]
    stability weights  --method pca|factor|outcome|... [--level 2] [--set OPTION=VALUE] [--out DIR]
    stability audit    [--data PATH] [--spec FILE] [--round latest|all|R] [--out DIR]
    stability uncertainty [--runs N] [--seed N] [--sources choices,informants] [--set OPTION=VALUE]
                          [--sobol N] [--scheduler ADDRESS] [--out DIR] [--format csv,parquet,xlsx]

Without ``--data``/``--spec`` the embedded illustrative Mali survey and spec are
used.  Exit status: 0 success, 2 bad input (one line on stderr naming file,
column and row), 1 unexpected failure.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from . import __version__
from .exceptions import ParameterError, StabilityError

STEP_NAMES = {
    "prepare": "reading, validating and combining key-informant answers",
    "denominated": "denominating",
    "imputed": "imputing missing values",
    "treated": "treating outliers",
    "normalised": "normalising",
    "aggregated": "aggregating",
    "ranked": "ranking and categorising",
}


class _Progress:
    """Prints each step as it starts, with the time the previous one took."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.t0 = self.last = time.perf_counter()

    def __call__(self, step: str) -> None:
        self.say(STEP_NAMES.get(step, step) + " ...")

    def say(self, text: str) -> None:
        if self.quiet:
            return
        now = time.perf_counter()
        print(f"[{now - self.t0:6.1f}s] {text}", file=sys.stderr, flush=True)
        self.last = now


class HelpFormatter(argparse.HelpFormatter):
    """Help texts that say each option's default (`` (default: 64)``) unless the text already does."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("default" in text.lower() or default is None or default is False or default is argparse.SUPPRESS
                or action.option_strings == [] or isinstance(default, (list, tuple)) and not default):
            return text
        return f"{text} (default: {default})"


class Parser(argparse.ArgumentParser):
    """An argument parser whose help texts show the defaults (:class:`HelpFormatter`)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def _data_args(p: argparse.ArgumentParser) -> None:
    from .paths import default_dataset, default_spec

    p.add_argument("--data", type=Path, default=None,
                   help="dataset folder (with dataset.yaml) or answers table (CSV, Excel, Parquet); "
                        f"default: the embedded illustrative survey ({default_dataset()})")
    p.add_argument("--locations", type=Path, default=None,
                   help="location register (names, admin p-codes, coordinates, population); default: the one "
                        "the dataset folder's dataset.yaml names, if any")
    p.add_argument("--population", type=Path, default=None,
                   help="people per location and round (e.g. idps, returnees); default: as --locations")
    p.add_argument("--outcomes", type=Path, default=None,
                   help="observed outcomes per location and round (for outcome-based weights); default: as "
                        "--locations")
    p.add_argument("--spec", type=Path, default=None,
                   help=f"index specification (YAML); default: {default_spec()}")


def _load(args, progress=None):
    from .io import load_dataset
    from .paths import default_dataset, default_spec
    from .spec import load_spec

    spec = load_spec(args.spec or default_spec())
    if progress:
        progress.say(f"spec {spec.name} ({spec.hash})")
    data = load_dataset(args.data or default_dataset(), spec=spec, locations=args.locations, population=args.population,
                        outcomes=args.outcomes)
    if args.func is not cmd_validate:  # validate says it with its other problems
        from .privacy import problems

        _warn_problems(problems(data, spec))  # the columns left out as personal data, one line per file
    return data, spec


def cmd_validate(args) -> int:
    from .validate import validate

    data, spec = _load(args)
    report = validate(data, spec)
    _warn_problems([p for p in report.problems if p.notice])  # on stderr, like the readers' fallbacks
    listed = [p for p in report.problems if not p.notice]
    for problem in listed:
        print(problem)
    n_err = report.n_errors
    n_warn = sum(1 + p.more for p in listed if p.severity == "warning") + (_warnings.count if _warnings else 0)
    rows = len(data.answers)
    summary = f"{rows} answer rows, {len(spec.indicators)} indicators: {n_err} error(s), {n_warn} warning(s)"
    if data.illustrative:
        summary += " [illustrative data]"
    print(("OK: " if report.ok else "FAILED: ") + summary)
    return 0 if report.ok else 2


def cmd_score(args) -> int:
    from .export import FORMATS, write_result

    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ParameterError(f"unknown format '{bad[0]}' (choose from {', '.join(FORMATS)})", option="--format")
    out, progress, result = _computed(args, "scores")
    progress.say(f"writing {', '.join(formats)} to {out} ...")
    files = write_result(result, out, formats, hxl=args.hxl, pockets=not args.no_pockets)
    scores = result.scores
    progress.say("done")
    if not args.quiet:
        root = result.spec.root.id
        print(f"{len(scores)} location-rounds scored; index median {scores[root].median():.1f}; "
              f"spec {result.spec_hash}; data {result.data_version}"
              + (" [ILLUSTRATIVE data]" if result.illustrative else ""))
        for f in files:
            print(f"  {f}")
    return 0


def cmd_generate(args) -> int:
    from .generate import generate

    try:
        ds = generate(n_locations=args.locations, n_rounds=args.rounds, seed=args.seed, countries=args.countries)
    except ValueError as exc:
        if "countries" not in str(exc):
            raise
        raise ParameterError(str(exc), option="--countries") from None
    ds.write(args.out)
    where = ", ".join(ds.parameters.get("countries", ["MLI"]))
    print(f"wrote an illustrative survey of {args.locations} locations x {args.rounds} rounds ({where}) to {args.out}")
    if getattr(args, "kobo", False):
        from .kobo_export import write_kobo_export

        kobo = args.out / "kobo"
        write_kobo_export(ds, kobo, labels=args.kobo_values, language=args.kobo_language)
        print(f"wrote it as a KoBoToolbox project hands it over (XLSForm, export, mapping) to {kobo}")
    return 0


def cmd_spec_from_xlsform(args) -> int:
    from .io import write_text_atomic
    from .xlsform import convert_xlsform

    if args.out is not None and args.out.is_dir():
        raise ParameterError(f"'{args.out}' is a folder, not a spec file", option="--out")
    conversion = convert_xlsform(args.form, args.mapping, language=args.language)
    text = conversion.to_yaml()
    if args.out is None:
        sys.stdout.write(text)
        print(f"spec {conversion.spec.hash}: {conversion.summary()}", file=sys.stderr)
    else:
        write_text_atomic(args.out, text)
        print(f"wrote {args.out} (spec {conversion.spec.hash}): {conversion.summary()}")
    return 0


def _computed(args, folder: str):
    """The output folder (``--out``, default ``reports/<folder>``), the progress printer and the index."""
    from .paths import reports_dir
    from .pipeline import compute

    out = args.out or reports_dir() / folder
    if out.exists() and not out.is_dir():
        raise ParameterError(f"'{out}' is a file, not an output folder", option="--out")
    progress = _Progress(args.quiet)
    data, spec = _load(args, progress)
    result = compute(data, spec, progress=progress)
    _say_validation_warnings(args, result)
    return out, progress, result


def _say_validation_warnings(args, result) -> None:
    """One line on stderr when the data have validation warnings (points outside their cercle, ...): the
    index is computed all the same; ``stability validate`` lists them."""
    n = int((result.source or {}).get("warnings") or 0)
    if not n:
        return
    options = "".join(f" --{name} {shlex.quote(str(getattr(args, name)))}" for name in ("data", "spec")
                      if getattr(args, name, None))
    print(f"stability: warning: {n:,} row{'s' * (n != 1)} of the data {'have' if n != 1 else 'has'} a warning "
          f"(computed all the same); stability validate{options} lists them", file=sys.stderr)


def _set_options(items: list[str] | None) -> dict:
    """``--set OPTION=VALUE`` items as a mapping (values read as YAML: numbers, lists, true/false)."""
    import yaml

    options = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"'{item}' is not OPTION=VALUE", option="--set")
        try:
            options[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ParameterError(f"'{item}': the value is not readable (write lists as [a, b])", option="--set") from None
    return options


def cmd_uncertainty(args) -> int:
    from .exceptions import SpecError
    from .paths import default_spec
    from .report.cli import whole_number
    from .uncertainty import RUN_FORMATS, analyse, save_run

    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    bad = [f for f in formats if f not in RUN_FORMATS]
    if bad:
        raise ParameterError(f"unknown format '{bad[0]}' (choose from {', '.join(RUN_FORMATS)})", option="--format")
    options = _set_options(args.set)
    flag = {"runs": "--runs", "seed": "--seed", "sources": "--sources"}
    given = {name for name in flag if getattr(args, name) is not None}  # on the command line, not in the spec
    for name in flag:  # --set runs=200 is --runs 200
        if name in options:
            if getattr(args, name) is not None:
                raise ParameterError(f"{name} is given twice: by --{name} and by --set {name}=...", option="--set")
            value = options.pop(name)
            setattr(args, name, ",".join(map(str, value)) if isinstance(value, list) else str(value))
            flag[name] = f"--set {name}"
            given.add(name)
    runs = whole_number(args.runs, flag["runs"])
    if runs is not None and runs < 2:
        raise ParameterError(f"{runs} runs: give 2 or more", option=flag["runs"])
    base = whole_number(args.sobol, "--sobol")
    if base < 0 or (base and base & (base - 1)):
        raise ParameterError(f"{base} is not a power of 2 (e.g. 64; 0 = no Sobol indices)", option="--sobol")
    seed = whole_number(args.seed, flag["seed"])
    if args.sources:
        options["sources"] = [s.strip() for s in args.sources.split(",") if s.strip()]
    out, progress, result = _computed(args, "uncertainty")
    progress.say("running the uncertainty analysis ...")
    try:
        run = analyse(result, runs=runs, seed=seed, sobol=base, scheduler=args.scheduler,
                      progress=not args.quiet, **options)
    except SpecError as exc:  # an alternative refused once the index is known: say where it was chosen
        option = str(exc.column or "").removeprefix("uncertainty.").split(".")[0]
        if exc.file is None and (option in options or option in given):
            raise ParameterError(exc.message.removeprefix(f"{option}: "), option=flag.get(option, f"--set {option}")) \
                from None
        raise exc.in_file(args.spec or default_spec()) from None
    progress.say(f"writing {', '.join(formats)} to {out} ...")
    files = save_run(run, out, formats)
    progress.say("done")
    if not args.quiet:
        words = ["stability", "uncertainty", "--sobol", "{n}"]
        for option in ("data", "spec", "out"):  # the command as typed, with more base samples
            if getattr(args, option, None):
                words += [f"--{option}", str(getattr(args, option))]
        print(summary_lines(run, result, more=" ".join(shlex.quote(w) if w != "{n}" else w for w in words)))
        for f in files:
            print(f"  {f}")
    return 0


def summary_lines(run, result, more: str | None = None) -> str:
    """What an uncertainty run found, in a few lines (per round, then which choices matter); ``more``: the
    command that asks for more base samples (``{n}`` for their number) when the Sobol estimates are noisy."""
    from .sensitivity import summary_sentence
    from .uncertainty import FACTOR_LABELS

    s = run.summary
    level = float(s["level"].iloc[0]) if len(s) else 0.9
    lines = [f"{int(s['runs'].iloc[0])} runs ({s['sources'].iloc[0].replace('+', ' and ')}), seed "
             f"{int(s['seed'].iloc[0])}; spec {run.spec_hash}; data {run.data_version}"
             + (" [ILLUSTRATIVE data]" if run.illustrative else "")]
    for row in s.itertuples(index=False):
        line = (f"{result.round_label(row.round)}: {row.locations} locations; mean rank shift "
                f"{row.rank_shift:.1f}; median {level:.0%} rank interval {row.median_rank_width:.0f} ranks wide; "
                f"{row.robust_share:.0%} robustly in their category")
        if row.beyond_noise_share == row.beyond_noise_share:  # not NaN
            line += f"; {row.beyond_noise_share:.0%} of changes beyond noise"
        lines.append(line)
    if run.sensitivity is not None:
        latest = f"rank_shift:{s['round'].iloc[-1]}"
        lines.append(summary_sentence(run.sensitivity, latest, labels=FACTOR_LABELS, output_label="the ranking",
                                      more=more))
    return "\n".join(lines)


def cmd_weights(args) -> int:
    import yaml

    from .weights import WeightingError, derive_for, write_derivation

    out, progress, result = _computed(args, "weights") if args.out else (None, _Progress(args.quiet), None)
    if result is None:
        from .pipeline import compute

        data, spec = _load(args, progress)
        result = compute(data, spec, progress=progress)
    spec = result.spec
    names = {lv.name: n for n, lv in enumerate(spec.levels, start=1)}
    level = names.get(args.level, args.level)
    if not str(level).isdigit() or not 2 <= int(level) <= len(spec.levels):
        raise ParameterError(f"no level '{args.level}' to weigh: levels 2 to {len(spec.levels)} have children "
                             f"(or name them: {', '.join(lv.name for lv in spec.levels[1:])})", option="--level")
    options = _set_options(args.set)
    rounds = [yaml.safe_load(r) for r in args.round.split(",")] if args.round else None
    progress.say(f"deriving level {level} weights ({args.method}) ...")
    try:
        d = derive_for(result, args.method, int(level), rounds=rounds, **options)
    except WeightingError as exc:  # an option given on the command line: name it as typed
        raise _weighting_option(exc, options) from None
    section = {"method": args.method, **options, **({"rounds": rounds} if rounds else {})}
    snippet = yaml.safe_dump({"weights": {int(level): section}}, sort_keys=False, default_flow_style=None)
    table = d.to_frame().assign(label=lambda t: [spec.label(c) for c in t["child"]])
    if out is not None:
        files = write_derivation(d, result, out, snippet=snippet)
    if not args.quiet:
        signed = bool((d.weights < 0).any())  # signed loadings are not shares of a group: shown as numbers
        if signed:
            print("Weights with negative values (signed loadings, not shares of their group):")
        for group, rows in table.groupby("group", sort=False):
            print(f"{spec.label(group)}:")
            for r in rows.itertuples(index=False):
                print(f"  {r.weight:+7.3f}  {r.label}" if signed else f"  {r.weight:7.1%}  {r.label}")
        for line in d.notes + [f"warning: {w}" for w in d.warnings]:
            print(line)
        negative = d.weights[d.weights < 0]
        if len(negative):
            print(f"Negative weights ({', '.join(map(str, negative.index))}): the index cannot be scored with them "
                  "(it would leave the scale of its normalisation); the spec refuses them.")
        else:
            print("To score with these weights, add to the spec:\n" + snippet.rstrip())
        for f in files if out is not None else []:
            print(f"  {f}")
    return 0


def _weighting_option(exc, options: dict):
    """A :class:`~stability.weights.WeightingError` about an option of ``stability weights`` as a
    :class:`ParameterError` naming the option as typed (``option --set rule: ...``, ``option --round: ...``);
    other errors unchanged."""
    import re

    if exc.file is not None or exc.column is not None:
        return exc
    message = exc.message
    found = re.search(r"option '(\w+)'", message)
    name = found.group(1) if found else None
    if name == "rounds":
        return ParameterError(message.removeprefix("option 'rounds': "), option="--round")
    if name in options or (name and "has no option" in message):
        return ParameterError(message.removeprefix(f"option '{name}': "), option=f"--set {name}")
    return exc


def cmd_audit(args) -> int:
    from .audit import audit
    from .report.audit import write_audit

    out, progress, result = _computed(args, "audit")
    progress.say("auditing ...")
    checked = audit(result, args.round)
    progress.say(f"writing the audit to {out} ...")
    files = write_audit(checked, out)
    progress.say("done")
    if not args.quiet:
        for line in checked.summary:
            print(line)
        for f in files:
            print(f"  {f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="stability",
        description="Stability index of displacement-hosting locations from key-informant surveys.")
    parser.add_argument("--version", action="version", version=f"stability {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("validate", help="check a survey against a spec (exit 0 = usable, 2 = errors)",
                       description="List every problem of a survey against a spec, one line each "
                                   "(file, column, row). Exit status 0 when there is no error, 2 otherwise.")
    _data_args(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("score", help="compute the index and write scores (CSV, Parquet, Excel, GeoPackage)",
                       description="Validate the survey, compute the index of every location and round, and "
                                   "write scores.csv, scores.parquet, scores.xlsx, locations.gpkg (with a pockets layer), "
                                   "pockets.csv and audit_log.csv. Nothing is written if anything fails.")
    _data_args(p)
    p.add_argument("--out", type=Path, default=None, help="output folder (default: reports/scores)")
    p.add_argument("--format", default="csv,parquet,xlsx,gpkg",
                   help="comma-separated output formats (default: csv,parquet,xlsx,gpkg)")
    p.add_argument("--hxl", action="store_true",
                   help="write an HXL hashtag row under the header of scores.csv (#loc+code, #adm1+code, ...)")
    p.add_argument("--no-pockets", action="store_true",
                   help="skip pockets of stability and hotspots (the pocket columns, pockets.csv, the gpkg layer)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("generate", help="write an illustrative (synthetic) key-informant survey",
                       description="Generate the seeded illustrative survey: real Mali geography, "
                                   "generated answers. Clearly labelled as illustrative.")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--locations", type=int, default=1500, help="number of locations (default 1500)")
    p.add_argument("--rounds", type=int, default=3, help="number of rounds (default 3)")
    p.add_argument("--seed", type=int, default=20211201, help="random seed (default 20211201)")
    p.add_argument("--countries", default="MLI", metavar="ISO3,...",
                   help="MLI (default): the whole of Mali; a list with BFA and/or NER, e.g. MLI,BFA,NER: the "
                        "Liptako-Gourma regions of those countries (Mali: Mopti, Tombouctou, Gao, Menaka; "
                        "Burkina Faso: Boucle du Mouhoun, Centre-Nord, Est, Nord, Sahel; Niger: Tahoua, "
                        "Tillaberi), with a country column admin0_pcode")
    p.add_argument("--kobo", action="store_true",
                   help="also write the survey as a KoBoToolbox project hands it over to DIR/kobo: the XLSForm, "
                        "the export (CSV and Excel, with fake personal data) and the mapping to the Mali spec")
    p.add_argument("--kobo-values", choices=("xml", "label"), default="xml",
                   help="answers of the KoBo export as XML values (oui, la_plupart; default) or labels")
    p.add_argument("--kobo-language", choices=("fr", "en"), default="fr",
                   help="language of the labels in the KoBo export (default fr)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("spec", help="make an index spec (from an XLSForm and a mapping file)",
                       description="Make index specifications.")
    spec_sub = p.add_subparsers(dest="spec_command", metavar="SUBCOMMAND", parser_class=Parser)
    p.set_defaults(func=lambda args, p=p: (p.print_help(), 2)[1])
    q = spec_sub.add_parser("from-xlsform", help="an index spec from a KoBoToolbox/ODK XLSForm and a mapping file",
                            description="Make an index spec from an XLSForm (the questions, their types, labels "
                                        "and choice lists) and a mapping file (YAML: every spec section but the "
                                        "indicators, the numeric scale of each choice list under 'choices', and "
                                        "each indicator question's pillar, direction, weight, ... under "
                                        "'questions'). The spec is validated; a mistake is one line naming the "
                                        "file and field (exit status 2).")
    q.add_argument("form", type=Path, metavar="FORM.xlsx", help="the XLSForm")
    q.add_argument("--mapping", type=Path, required=True, help="the mapping file (YAML)")
    q.add_argument("--language", default=None,
                   help="language of the labels: a code (fr, en), a name (French) or 'French (fr)'; default the "
                        "mapping's 'language', else the form's default_language")
    q.add_argument("--out", type=Path, default=None, help="write the spec (YAML) to this file; default: print it")
    q.set_defaults(func=cmd_spec_from_xlsform)

    from .weights import WEIGHTINGS

    p = sub.add_parser("weights", help="derive weights from the data (PCA, factor analysis, outcome, ...) and show them",
                       description="Compute the index, derive the weights of one level's children with a weighting "
                                   "method and print them with how they were derived and the lines to add to the "
                                   "spec to score with them. Methods: " + "; ".join(
                                       f"{m.name} (options: {', '.join(m.params) or 'none'})" for m in WEIGHTINGS))
    _data_args(p)
    p.add_argument("--method", required=True, choices=WEIGHTINGS.names(), help="weighting method")
    p.add_argument("--level", default="2", help="level whose children are weighted: 2 = indicators within pillars "
                                                 "(default), 3 = pillars within the index, or the level's name")
    p.add_argument("--set", action="append", metavar="OPTION=VALUE",
                   help="an option of the method, e.g. --set outcome=stays_6_months --set cluster=admin2_pcode")
    p.add_argument("--round", default=None, help="derive from these rounds only (comma-separated; default: all)")
    p.add_argument("--out", type=Path, default=None, help="also write weights.csv, the derivation's tables and "
                                                          "notes.txt to this folder")
    p.add_argument("-q", "--quiet", action="store_true", help="no output but errors")
    p.set_defaults(func=cmd_weights)

    p = sub.add_parser("audit", help="statistical audit of the index (HTML, Excel, CSV)",
                       description="Compute the index and audit it (JRC/OECD handbook, COINr's get_stats, get_corr, "
                                   "get_cronbach): indicator statistics, correlations, Cronbach's alpha, KMO, "
                                   "Bartlett, VIF, PCA, weights against importance. Writes audit.html, audit.xlsx "
                                   "and one CSV per table; nothing is written if anything fails.")
    _data_args(p)
    p.add_argument("--round", default="latest", help="round to audit, 'latest' (default) or 'all'")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: reports/audit)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("uncertainty", help="how sure is each rank, category and change: rank intervals, category "
                       "confidence, change beyond noise, which choices matter (CSV, Parquet, Excel)",
                       description="Monte Carlo over the modelling choices and/or the key informants (bootstrap), "
                       "as the spec's uncertainty: section says, and Sobol indices of the choices. Writes "
                       "uncertainty.csv/.parquet/.xlsx, sensitivity.csv/.png and manifest.json; the regional reports "
                       "use the run in reports/uncertainty when it matches the index.")
    _data_args(p)
    p.add_argument("--runs", default=None, help="replicates (default: the spec's uncertainty.runs, 1000)")
    p.add_argument("--seed", default=None, help="random seed (default: the spec's uncertainty.seed)")
    p.add_argument("--sources", default=None, metavar="choices,informants",
                   help="what varies: modelling choices, key informants or both (default: the spec's)")
    p.add_argument("--set", action="append", metavar="OPTION=VALUE",
                   help="another option of the uncertainty section, e.g. --set 'normalise=[goalposts, minmax]' "
                        "--set winmax=true --set leave_one_out=true (repeatable)")
    p.add_argument("--sobol", default="64", metavar="N",
                   help="base samples of the Sobol indices: a power of 2, default 64 (N x (choices + 2) more "
                        "runs, whatever --runs says); 0 = no Sobol indices")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a running Dask distributed cluster to run the replicates on (same results; "
                        "default: here, on this machine's cores)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: reports/uncertainty)")
    p.add_argument("--format", default="csv,parquet,xlsx", help="comma-separated: csv, parquet, xlsx (default: all "
                   "three; Parquet is always written: the reports read it)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_uncertainty)

    from .report.cli import register as register_report

    register_report(sub)
    return parser


def _unrecognized(parser: argparse.ArgumentParser, args, extras: list[str]) -> None:
    """Refuse arguments no option takes with the usage of the (sub)command given and the closest options
    (``did you mean --format?``); exits with status 2."""
    import difflib

    target = parser
    for name in ("command", "spec_command"):
        action = next((a for a in target._actions if isinstance(a, argparse._SubParsersAction)), None)
        chosen = getattr(args, name, None)
        if action is None or chosen not in action.choices:
            break
        target = action.choices[chosen]
    options = [o[2:] for a in target._actions for o in a.option_strings if o.startswith("--")]
    hints = []
    for extra in extras:
        if extra.startswith("-"):  # compared without the dashes, which every option shares
            close = difflib.get_close_matches(extra.split("=")[0].lstrip("-"), options, n=1, cutoff=0.7)
            if close:
                hints.append(f"did you mean --{close[0]}?")
    target.error(f"unrecognized arguments: {' '.join(extras)}" + "".join(f"; {h}" for h in dict.fromkeys(hints)))


class _Warnings:
    """Shows :class:`~stability.io.InputWarning` as one line each, ``stability: warning: <file>: ...`` on
    stderr, once per file and message (a file named by a relative and by an absolute path is one file)."""

    def __init__(self, shown):
        self.fallback = shown
        self.seen: set = set()
        self.count = 0

    def key(self, message) -> tuple:
        file = getattr(message, "file", None)
        if file:
            try:
                file = str(Path(file).resolve())
            except OSError:
                pass
        return (file, getattr(message, "column", None), getattr(message, "row", None),
                getattr(message, "message", str(message)))

    def say(self, text: str, key=None) -> None:
        """Print one warning line (``text`` without the ``stability: warning:`` prefix) unless already shown."""
        key = key or (text,)
        if key in self.seen:
            return
        self.seen.add(key)
        self.count += 1
        print(f"stability: warning: {text}", file=sys.stderr, flush=True)

    def __call__(self, message, category, filename, lineno, file=None, line=None):
        from .io import InputWarning

        if issubclass(category, InputWarning):  # a reading fallback: one line naming the file
            self.say(str(message), self.key(message))
        else:
            self.fallback(message, category, filename, lineno, file, line)


#: The warning printer of the command running (:func:`main`).
_warnings: _Warnings | None = None


def _warn_problems(problems) -> None:
    """Print warnings found outside a ``warnings`` call (validation problems) like the readers' fallbacks."""
    printer = _warnings or _Warnings(None)
    for p in problems:
        text = str(p).removeprefix(f"{p.severity}: ")
        file = str(Path(p.file).resolve()) if p.file else None
        printer.say(text, (file, p.column, p.row, p.message))


def main(argv: list[str] | None = None) -> int:
    global _warnings

    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        _unrecognized(parser, args, extras)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    import warnings

    _warnings = _Warnings(warnings.showwarning)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warnings
            return args.func(args)
    except StabilityError as exc:
        print(f"stability: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("stability: interrupted", file=sys.stderr)
        return 130
    finally:
        _warnings = None
