"""How sure each rank, category and change of a report is: the uncertainty analysis in the reports.

``stability report`` hands each notebook its part of an uncertainty analysis
(:mod:`stability.uncertainty`), computed once for the batch (``--uncertainty N``) or read from a saved run
(``--uncertainty FOLDER``, or the run that ``stability uncertainty`` wrote to ``reports/uncertainty/``): the
rows of the analysis's ``locations`` table of the report's round and region, the round's ``summary`` row,
the Sobol indices of the outputs the report speaks of, and a few facts about the run
(:func:`report_tables`).  The notebooks only read those tables: nothing here runs the analysis, and no
kernel imports SALib or distributed.

Without a run every function returns None (or an empty list) and the report is as before, plus the one
sentence of :func:`hint` saying how to get intervals.

==========================  ==================================================
tables of one report        :func:`report_tables` (coordinating process), :func:`locations`,
                            :func:`summary`, :func:`about`, :func:`sensitivity`, :func:`available`
ranked table                :func:`ranked_columns` (rank interval, category confidence), :func:`table_note`
ranking chart               :func:`ranking_chart` (index of every location with its interval)
paragraph                   :func:`paragraph` (region or country), :func:`hint` and :func:`how_to` (without a run)
change                      :func:`change_counts`, :func:`change_flags` (beyond noise)
country overview            :func:`region_table`, :func:`sensitivity_chart`
workbook                    :func:`workbook_sheets` (``Uncertainty``), :func:`for_readers`
==========================  ==================================================
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd

from . import content

#: Names of the tables in :attr:`~stability.report.context.ReportContext.precomputed`.
LOCATIONS = "uncertainty"
SUMMARY = "uncertainty_summary"
SENSITIVITY = "uncertainty_sensitivity"
ABOUT = "uncertainty_about"
#: Sheet of the rankings workbook with the report's rows of the analysis.
SHEET = "Uncertainty"
#: What the ``Uncertainty`` sheet says for a scored location whose category is not robust (as the ranking chart).
NOT_ROBUST = "not robust"
#: What the ``Uncertainty`` sheet says for a yes/no column (``beyond_noise``, ``single_informant``).
YES, NO = "yes", "no"
#: The modelling choices in words, as :data:`stability.uncertainty.FACTOR_LABELS` (used when a run does not say).
CHOICE_ITEMS = {"normalise alternatives": "the normalisation method", "aggregate alternatives": "the aggregation method",
                "winmax alternatives": "the outlier treatment", "impute alternatives": "the imputation method"}


# --------------------------------------------------------------------------- the tables (coordinating process)
def report_tables(run, result, survey_round, region: str | None, origin: str = "") -> dict:
    """The tables of one report from an analysis (:class:`stability.uncertainty.UncertaintyResult`).

    Plain DataFrames and a dict (nothing that needs :mod:`stability.uncertainty` to unpickle):

    - ``uncertainty``: the rows of ``run.locations`` of the round, and of the region (all regions for the
      overview, ``region`` None);
    - ``uncertainty_summary``: the round's row of ``run.summary``;
    - ``uncertainty_sensitivity``: the rows of ``run.sensitivity`` of the outputs the report speaks of
      (``rank_shift:<round>``, and ``median_index:<region>`` -- every region for the overview), or None;
    - ``uncertainty_about``: ``runs``, ``level``, ``robust``, ``sources``, ``seed``, ``origin`` (where the run
      comes from, in words), ``labels`` (factor name -> words) and ``choices`` (what was varied, in words).
    """
    from ..uncertainty import FACTOR_LABELS

    c = result.spec.columns
    loc = run.locations
    if c.round and c.round in loc.columns:
        loc = loc[loc[c.round].astype(str) == str(survey_round)]
    region_col = c.admin[0] if c.admin else None
    if region is not None and region_col and region_col in loc.columns:
        loc = loc[loc[region_col] == region]
    summ = run.summary
    if "round" in summ.columns:
        summ = summ[summ["round"].astype(str) == str(survey_round)]
    sens = run.sensitivity
    if sens is not None and len(sens):
        wanted = {f"rank_shift:{survey_round}"}
        outputs = sens["output"].astype(str)
        wanted |= {o for o in outputs if o.startswith("median_index:")} if region is None \
            else {f"median_index:{region}"}
        sens = sens[outputs.isin(wanted)]
        attrs = dict(run.sensitivity.attrs)
        sens = sens.reset_index(drop=True)
        sens.attrs.update(attrs)
        if not len(sens):
            sens = None
    else:
        sens = None
    first = summ.iloc[0] if len(summ) else None
    opts = run.options
    notes = dict(zip(run.notes["item"].astype(str), run.notes["value"].astype(str))) \
        if run.notes is not None and len(run.notes) else {}
    about = {
        "runs": int(first["runs"]) if first is not None else 0,
        "level": float(first["level"]) if first is not None else float(getattr(opts, "level", 0.9)),
        "robust": float(getattr(opts, "robust", None) or _robust_from_notes(notes)),
        "sources": str(first["sources"]) if first is not None else "",
        "seed": None if first is None else int(first["seed"]),
        "origin": origin,
        "labels": dict(FACTOR_LABELS),
        "choices": _choices(notes),
        "latest": str(survey_round) == str(result.rounds[-1]) if result.rounds else True,
    }
    return {LOCATIONS: loc.reset_index(drop=True), SUMMARY: summ.reset_index(drop=True), SENSITIVITY: sens,
            ABOUT: about}


def _robust_from_notes(notes: dict) -> float:
    text = notes.get("robust category", "")
    digits = "".join(ch for ch in text if ch.isdigit())
    return float(digits) / 100.0 if digits else 0.9


def _choices(notes: dict) -> list[str]:
    """The modelling choices that varied, in words (from the run's notes)."""
    out = []
    weights = notes.get("weights")
    if weights and weights != "nominal":
        out.append("the weights")
    for item, words in CHOICE_ITEMS.items():
        value = notes.get(item, "")
        if value and "(nominal only)" not in value:
            out.append(words)
    if notes.get("indicator left out", "none") not in ("", "none"):
        out.append("one indicator left out")
    return out


# --------------------------------------------------------------------------- reading them (kernels)
def locations(ctx) -> pd.DataFrame | None:
    """The report's rows of the analysis's ``locations`` table (round, region), or None without a run."""
    return ctx.once(LOCATIONS, lambda: None)


def summary(ctx) -> pd.Series | None:
    """The round's row of the analysis's ``summary`` table, or None."""
    table = ctx.once(SUMMARY, lambda: None)
    return None if table is None or not len(table) else table.iloc[0]


def about(ctx) -> dict | None:
    """Facts about the run (see :func:`report_tables`), or None."""
    return ctx.once(ABOUT, lambda: None)


def sensitivity(ctx) -> pd.DataFrame | None:
    """The Sobol indices of the outputs the report speaks of, or None."""
    return ctx.once(SENSITIVITY, lambda: None)


def available(ctx) -> bool:
    """Whether the report has an uncertainty analysis of its round."""
    loc = locations(ctx)
    return loc is not None and len(loc) > 0


def level_text(ctx) -> str:
    """The level of the intervals, ``"90 %"``."""
    info = about(ctx) or {}
    return f"{float(info.get('level', 0.9)) * 100:g} %"


def _robust_text(ctx) -> str:
    info = about(ctx) or {}
    return f"{float(info.get('robust', 0.9)) * 100:g} %"


def _rank_prefix(ctx) -> str:
    """``rank_region`` for a region's report (ranks within the region), ``rank`` for the overview."""
    loc = locations(ctx)
    return "rank_region" if ctx.region is not None and loc is not None and "rank_region_low" in loc.columns \
        else "rank"


def _by_location(ctx) -> pd.DataFrame:
    loc = locations(ctx)
    return loc.drop_duplicates(ctx.columns.location).set_index(ctx.columns.location)


def _whole(x) -> str:
    return "–" if x is None or pd.isna(x) else f"{int(np.floor(float(x) + 0.5)):,}"


def hint(ctx) -> str | None:
    """Without a run: one sentence saying how to get intervals (None with a run)."""
    if available(ctx):
        return None
    return ("How sure each rank and category is (rank intervals, category confidence, changes beyond noise) is not "
            f"estimated in this report: {how_to(ctx)} adds it.")


def how_to(ctx, data_path=None, spec_path=None) -> str:
    """The command lines that give the report an uncertainty analysis, in full: ``stability uncertainty, or
    stability report --uncertainty 200 --region ML05`` for the embedded survey and spec, else with the report's
    ``--data`` and ``--spec`` and a folder of its own (``stability uncertainty --data D --spec S --out FOLDER
    (then stability report --uncertainty FOLDER ...), or stability report --uncertainty 200 --region BF56 --data D
    --spec S``: a plain ``stability uncertainty`` would analyse the embedded survey, a run the report then
    ignores as computed from another index, and without ``--out`` the run would replace the embedded survey's
    in ``reports/uncertainty/``).  ``--all`` for the overview, ``--round`` for a round before the latest.

    ``data_path`` and ``spec_path`` are the report's (as given to ``stability report``); by default those the
    report was given (:attr:`ReportContext.inputs`), else the data are found from the files the index was read
    from and the spec among the embedded specs and the files beside the data, by its hash.  Paths are shown relative to the project (else the current folder) when within it.
    """
    import shlex

    options = data_options(ctx, data_path, spec_path)
    which = ["--region", str(ctx.region)] if ctx.region is not None else ["--all"]
    rounds = list(getattr(ctx.result, "rounds", None) or [])
    if rounds and ctx.round is not None and str(ctx.round) != str(rounds[-1]):
        which += ["--round", str(ctx.round)]
    report = " ".join(["stability report --uncertainty 200", *map(shlex.quote, which)] + ([options] if options else []))
    if not options:
        return f"stability uncertainty, or {report}"
    # a folder of its own: the default one holds the embedded survey's run, which this would replace
    return f"stability uncertainty {options} --out FOLDER (then stability report --uncertainty FOLDER ...), or {report}"


def data_options(ctx, data_path=None, spec_path=None) -> str:
    """``--data D --spec S`` of the report (each left out when it is the embedded default), for the commands a
    report tells its reader to run."""
    import shlex

    from ..paths import default_dataset, default_spec

    given = getattr(ctx, "inputs", None) or {}
    data_path = data_path or given.get("data_path")
    spec_path = spec_path or given.get("spec_path")
    data = Path(data_path) if data_path else _data_of(ctx.result)
    spec = Path(spec_path) if spec_path else _spec_of(ctx.result.spec.hash, data)
    words = []
    if data is not None and not _same_path(data, default_dataset()):
        words += ["--data", _shown(data)]
    if spec is None:
        if ctx.result.spec.hash != _hash_of(default_spec()):
            words += ["--spec", "SPEC.yaml"]  # not found: the reader fills in the spec file of this report
    elif not _same_path(spec, default_spec()):
        words += ["--spec", _shown(spec)]
    return " ".join(w if w == "SPEC.yaml" else shlex.quote(w) for w in words)


def _data_of(result) -> Path | None:
    """The dataset the index was read from: the folder of its ``dataset.yaml``, else its answers file."""
    files = {role: Path(f) for role, f in ((result.source or {}).get("files") or {}).items() if f}
    if not files:
        return None
    for folder in dict.fromkeys(f.parent for f in files.values()):
        if (folder / "dataset.yaml").is_file():
            return folder
    return files.get("answers", next(iter(files.values())))


def _spec_of(spec_hash: str, data: Path | None) -> Path | None:
    """The spec file with hash ``spec_hash``: among the embedded specs, and the YAML files beside the data."""
    from ..paths import data_dir

    places = [data_dir() / "specs"]
    if data is not None:
        places += [data if data.is_dir() else data.parent]
    for place in places:
        for path in sorted(place.glob("*.y*ml")) if place.is_dir() else []:
            if _hash_of(path) == spec_hash:
                return path
    return None


def _hash_of(path) -> str | None:
    path = Path(path)
    try:
        return _spec_hash(str(path.resolve()), path.stat().st_mtime_ns)
    except OSError:
        return None


@functools.lru_cache(maxsize=64)
def _spec_hash(path: str, mtime: int) -> str | None:
    from ..exceptions import SpecError
    from ..spec import load_spec

    try:
        return load_spec(path).hash
    except (SpecError, OSError, ValueError):
        return None


def _same_path(a, b) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def _shown(path: Path) -> str:
    """``path`` relative to the project (else the current folder) when within it, else as it is."""
    from ..paths import PROJECT_ROOT

    for base in (PROJECT_ROOT, Path.cwd()):
        try:
            return Path(path).resolve().relative_to(Path(base).resolve()).as_posix()
        except (ValueError, OSError):
            continue
    return str(path)


def heading_text(ctx) -> str | None:
    """The heading of the report's uncertainty section (None without a run)."""
    if not available(ctx):
        return None
    return "How sure is this ranking?" if ctx.region is not None else "How sure are the ranks and categories?"


# --------------------------------------------------------------------------- ranked table
def rank_interval_column(ctx) -> str:
    return f"Rank interval ({level_text(ctx)})"


CONFIDENCE_COLUMN = "Category confidence"


def ranked_columns(ctx, ids: pd.Series, ranks: pd.Series, categories: pd.Series) -> dict[str, list] | None:
    """The columns the ranked table gains with a run: the rank with its interval, the category confidence.

    Parameters
    ----------
    ids : Series
        Location ids of the table's rows.
    ranks : Series
        The rank shown in the table (within the region, or national for the overview).
    categories : Series
        The category shown.

    Returns
    -------
    dict or None
        :func:`rank_interval_column` -> ``"12 (8–19)"`` (the rank and the interval of the runs, whole places),
        ``Category confidence`` -> ``"high · 94 % ✓"`` (the share of the runs in the category; ✓ when it is
        robust); None without a run.
    """
    if not available(ctx):
        return None
    by = _by_location(ctx)
    prefix = _rank_prefix(ctx)
    low = ids.map(by[f"{prefix}_low"]).to_numpy(dtype=float)
    high = ids.map(by[f"{prefix}_high"]).to_numpy(dtype=float)
    robust = ids.map(by["robust_category"].astype(object))
    intervals, confidence = [], []
    for r, lo, hi, cat, rob, lid in zip(ranks, low, high, categories, robust, ids):
        if r is None or pd.isna(r) or np.isnan(lo):
            intervals.append("–")
        else:
            # no-break space and word joiners: the cell never wraps
            intervals.append(f"{_whole(r)}\u00a0({_whole(lo)}\u2060\u2013\u2060{_whole(hi)})")
        key = f"p_{cat}"
        if cat is None or pd.isna(cat) or key not in by.columns or lid not in by.index:
            confidence.append("–")
            continue
        share = float(by.at[lid, key])
        mark = "\u00a0\u2713" if isinstance(rob, str) and rob == str(cat) else ""
        confidence.append(f"{cat}\u00a0\u00b7\u00a0{share * 100:.0f}\u00a0%{mark}")
    return {rank_interval_column(ctx): intervals, CONFIDENCE_COLUMN: confidence}


def table_note(ctx) -> str | None:
    """What the two columns of the ranked table mean, in words (None without a run)."""
    if not available(ctx):
        return None
    info = about(ctx)
    where = "the region's ranking" if ctx.region is not None else content.whole_ranking(ctx)
    example = _example(ctx)
    return (f"{rank_interval_column(ctx)}: the rank, then the range of ranks that {level_text(ctx)} of the "
            f"{info['runs']:,} runs of the uncertainty analysis give the location in {where}{example}. "
            f"{CONFIDENCE_COLUMN}: the location's category and the share of the runs that put it there; "
            f"\u2713 marks a robust category (the same in at least {_robust_text(ctx)} of the runs).")


def _example(ctx) -> str:
    """``' ("12 (8–19)": 90 % of the runs put the location between ranks 8 and 19)'`` for a typical location."""
    loc = locations(ctx)
    prefix = _rank_prefix(ctx)
    rows = loc.dropna(subset=[prefix, f"{prefix}_low"]) if prefix in loc.columns else loc.iloc[0:0]
    if not len(rows):
        return ""
    width = rows[f"{prefix}_high"] - rows[f"{prefix}_low"]
    row = rows.iloc[int(np.argsort(width.to_numpy(), kind="mergesort")[len(rows) // 2])]
    lo, hi = _whole(row[f"{prefix}_low"]), _whole(row[f"{prefix}_high"])
    return (f" (\u201c{_whole(row[prefix])} ({lo}\u2013{hi})\u201d: {level_text(ctx)} of the runs put the location "
            f"between ranks {lo} and {hi})")


# --------------------------------------------------------------------------- paragraph
def _share(part: int, whole: int) -> str:
    return f"{part / whole * 100:.0f} %" if whole else "n/a"


def _what_varied(ctx) -> str:
    info = about(ctx)
    parts = []
    sources = info.get("sources", "")
    if "choices" in sources:
        choices = info.get("choices") or ["the modelling choices"]
        parts.append("drawing " + content.join_words(choices) + " at random")
    if "informants" in sources:
        parts.append("drawing each location's key informants again (as many as it had, with replacement)")
    return " and ".join(parts) if parts else "varying its inputs"


def _output(ctx) -> tuple[str, str] | None:
    """The Sobol output the report speaks of, and its name in words."""
    sens = sensitivity(ctx)
    if sens is None:
        return None
    outputs = set(sens["output"].astype(str))
    median = f"median_index:{ctx.region}"
    if ctx.region is not None and (about(ctx) or {}).get("latest", True) and median in outputs:
        return median, f"the median index of {ctx.region_name}"
    shift = f"rank_shift:{ctx.round}"
    if shift in outputs:
        return shift, content.whole_ranking(ctx) if ctx.region is None else "the ranking"
    return None


def choices_sentence(ctx) -> str | None:
    """Which modelling choices matter most (:func:`stability.sensitivity.summary_sentence`), or None."""
    from .. import sensitivity as sa

    picked = _output(ctx)
    if picked is None:
        return None
    output, words = picked
    table = sensitivity(ctx)
    rows = table[table["output"].astype(str) == output]
    labels = (about(ctx) or {}).get("labels") or {}
    if len(rows) == 1:
        name = labels.get(str(rows["factor"].iloc[0]), str(rows["factor"].iloc[0]))
        return (f"Of the modelling choices, only the {name} were varied, so they account for all of the spread of "
                f"{words} that the choices cause; the spec's uncertainty section can add others (normalisation, "
                "aggregation, outlier treatment, imputation).")
    sentence = sa.summary_sentence(table, output, labels=labels, output_label=words, more=_more_samples(ctx))
    return (sentence + " (The total effect of a choice is the share of the spread of the results that it explains, "
            "alone or together with the others: 1 = all of it, 0 = none.)")


def paragraph(ctx) -> list[str]:
    """The report's uncertainty in a few plain sentences (empty without a run).

    How many locations are robustly in their category, the median width of the rank interval, the mean
    absolute rank shift, which modelling choices matter most, and how many locations have a single key
    informant.
    """
    if not available(ctx):
        return []
    loc, info = locations(ctx), about(ctx)
    n = len(loc)
    where = ctx.region_name if ctx.region is not None else content.whole_name(ctx)
    lines = [f"The index was recomputed {info['runs']:,} times, {_what_varied(ctx)}, to see how far each "
             f"location's rank, category and change can move. Intervals cover {level_text(ctx)} of the runs."]
    scored = loc[loc["index"].notna()] if "index" in loc.columns else loc
    robust = int(scored["robust_category"].notna().sum())
    lines.append(f"{robust:,} of the {len(scored):,} scored locations of {where} ({_share(robust, len(scored))}) "
                 f"are robustly in their category: the same category in at least {_robust_text(ctx)} of the runs. "
                 "The others may belong to a neighbouring category.")
    prefix = _rank_prefix(ctx)
    width = (loc[f"{prefix}_high"] - loc[f"{prefix}_low"]).dropna()
    if len(width):
        ranking = f"the {n:,} locations of {where}" if ctx.region is not None else f"all {n:,} locations"
        lines.append(f"Rank interval: for a typical location, {level_text(ctx)} of the runs put it within a span of "
                     f"{_whole(width.median())} places of the ranking of {ranking} (median width of the rank "
                     "intervals).")
    shift, tail = rank_shift(ctx)
    if shift is not None:
        scope = ("rank within its region" if ctx.region is not None else "national rank"
                 if not content.several_countries(ctx) else f"rank across {content.whole_name(ctx)}")
        lines.append(f"Rank shift: in a run, a location's {scope} moves on average {content.number(shift)} "
                     f"places away from the rank shown (mean absolute rank shift {tail}).")
    sentence = choices_sentence(ctx)
    if sentence:
        lines.append(sentence)
    single = int(loc["single_informant"].fillna(False).astype(bool).sum()) if "single_informant" in loc else 0
    if single and "informants" in info.get("sources", ""):
        lines.append(f"{single:,} location{'s' if single != 1 else ''} of {where} "
                     f"{'have' if single != 1 else 'has'} a single key informant: drawing the informants again "
                     "cannot move them, so their intervals show only the modelling choices and understate how "
                     "unsure they are.")
    if info.get("origin"):
        lines.append(f"Source of the analysis: {info['origin']}.")
    return lines


def rank_shift(ctx) -> tuple[float | None, str]:
    """The mean absolute rank shift the report speaks of, and over what, in words.

    A region's report: its own locations' shift within the region (the mean of the run's per-location
    ``rank_region_shift``); a run saved before that column existed has only the figure over all regions
    (the round's ``rank_shift_region``), which is then given as such.  The overview: the round's national
    ``rank_shift``.  ``(None, "")`` when the run has neither.
    """
    loc, summ = locations(ctx), summary(ctx)
    if ctx.region is not None:
        if loc is not None and "rank_region_shift" in loc.columns:
            own = pd.to_numeric(loc["rank_region_shift"], errors="coerce").dropna()
            if len(own):
                return float(own.mean()), f"over the {len(own):,} ranked locations of {ctx.region_name} and all runs"
        value = None if summ is None else summ.get("rank_shift_region")
        if value is not None and pd.notna(value):
            return float(value), ("over the locations of every region and all runs: the figure for all regions "
                                  "together, as this run does not keep each location's shift")
        return None, ""
    value = None if summ is None else summ.get("rank_shift")
    if value is not None and pd.notna(value):
        return float(value), "over all locations and runs"
    return None, ""


# --------------------------------------------------------------------------- change
def change_counts(ctx, ids: pd.Series, change: pd.Series) -> dict | None:
    """Improved / worsened / unchanged by the run's ``beyond_noise`` (None without a run).

    A location improved (worsened) when its change since the previous round is beyond noise (the interval
    of the change over the runs excludes 0) and positive (negative); every other location with a change
    is unchanged.
    """
    if not available(ctx):
        return None
    flags = change_flags(ctx, ids)
    both = change.notna().to_numpy()
    beyond = flags.fillna(False).astype(bool).to_numpy() & both
    values = change.to_numpy(dtype=float)
    return {"improved": int((beyond & (values > 0)).sum()), "worsened": int((beyond & (values < 0)).sum()),
            "unchanged": int((both & ~beyond).sum())}


def change_flags(ctx, ids: pd.Series) -> pd.Series:
    """``beyond_noise`` of each location id: True or False, missing (None) for a location without a change
    (not assessed in the previous round: no change to judge) and when the run does not have it."""
    by = _by_location(ctx)
    flags = ids.map(by["beyond_noise"]).astype(object)
    if "change" in by.columns:
        flags = flags.where(ids.map(by["change"]).notna().to_numpy(), None)
    flags = flags.where(flags.notna(), None)
    return pd.Series(flags.to_numpy(), index=ids.index, dtype=object)


def change_intervals(ctx, ids: pd.Series) -> list[str]:
    """``"-17.4 to -11.0"``: the interval of each location's change over the runs."""
    by = _by_location(ctx)
    low, high = ids.map(by["change_low"]), ids.map(by["change_high"])
    return ["–" if pd.isna(a) or pd.isna(b) else f"{content.number(a, sign=True)} to {content.number(b, sign=True)}"
            for a, b in zip(low, high)]


# --------------------------------------------------------------------------- ranking chart
def ranking_chart(ctx):
    """The index of every location of the report with its interval over the runs (None without a run).

    Locations run along the horizontal axis from the most stable (rank 1) to the least; each has a dot at
    its index (coloured by category; filled when the category is robust, open when not) and a whisker from
    the low to the high end of its interval.  The category ranges are shaded behind.

    Returns
    -------
    matplotlib.figure.Figure or None
    """
    from matplotlib.lines import Line2D

    from . import figures

    if not available(ctx):
        return None
    loc = locations(ctx)
    prefix = _rank_prefix(ctx)
    rows = loc.dropna(subset=["index"]).sort_values([prefix, ctx.columns.location], kind="mergesort")
    n = len(rows)
    colours = figures.category_colours(ctx)
    cats = rows["category"].astype(object).to_numpy()
    robust = rows["robust_category"].astype(object).to_numpy()
    x = np.arange(1, n + 1)
    where = ctx.region_name if ctx.region is not None else "All regions"
    rng = content.index_range(ctx)
    with figures.style():
        height = 4.6 + (figures.FOOTNOTE_HEIGHT if ctx.illustrative else 0.0)
        fig = figures.new_figure(10.5, height)
        ax = fig.add_axes([0.075, 0.95 / height, 0.9, (height - 0.95 - 0.5
                                                        - (figures.FOOTNOTE_HEIGHT if ctx.illustrative else 0))
                           / height])
        cuts = content.category_cuts(ctx)
        if cuts is not None and rng is not None:
            bounds = [rng[0], *cuts, rng[1]]
            for (lo, hi), colour in zip(zip(bounds, bounds[1:]), list(colours.values())):
                ax.axhspan(lo, hi, color=colour, alpha=0.08, zorder=0, linewidth=0)
        from matplotlib.collections import LineCollection

        segs = [((xi, lo), (xi, hi)) for xi, lo, hi in zip(x, rows["index_low"], rows["index_high"])
                if pd.notna(lo) and pd.notna(hi)]
        ax.add_collection(LineCollection(segs, colors="#777777", linewidths=0.9 if n <= 120 else 0.6, zorder=2))
        size = 18 if n <= 120 else 9
        face = [colours.get(c, figures.NOT_SCORED_COLOUR) if isinstance(r, str) and r == c else "white"
                for c, r in zip(cats, robust)]
        edge = [colours.get(c, figures.NOT_SCORED_COLOUR) for c in cats]
        ax.scatter(x, rows["index"], s=size, c=face, edgecolors=edge, linewidths=0.9, zorder=3)
        ax.set_xlim(0, n + 1)
        if rng is not None:
            ax.set_ylim(*rng)
        ax.set_xlabel(f"Locations from the most stable (rank 1) to the least stable (rank {n:,})"
                      + (" in the region" if ctx.region is not None else ""))
        ax.set_ylabel(f"{content.index_label(ctx)} ({content.scale_text(ctx)})")
        ax.grid(axis="y", color="#eeeeee", linewidth=0.8)
        ax.set_axisbelow(True)
        ax.set_title(f"{where}: each location's index and its {level_text(ctx)} interval over the runs, "
                     f"round {ctx.round}", fontsize=11)
        labels = figures.category_legend_labels(ctx)
        handles = [Line2D([], [], linestyle="", marker="o", markersize=6, markerfacecolor=colours[lab],
                          markeredgecolor=colours[lab], label=labels.get(lab, lab))
                   for lab in content.category_labels(ctx)]
        handles.append(Line2D([], [], linestyle="", marker="o", markersize=6, markerfacecolor="white",
                              markeredgecolor="#555555", label="open dot: category not robust"))
        handles.append(Line2D([], [], color="#777777", linewidth=1.2,
                              label=f"line: {level_text(ctx)} of the runs"))
        fig.legend(handles=handles, loc="lower center", ncols=len(handles), frameon=False, fontsize=8.5,
                   bbox_to_anchor=(0.5, 0.02 / height))
        figures.footnote(ctx, fig)
    robust_n = int(sum(isinstance(r, str) and r == c for c, r in zip(cats, robust)))
    return figures.set_alt(fig, f"{where}, round {ctx.round}: the index of each of the {n:,} scored locations, from "
                                f"the most to the least stable, with a line from the low to the high end of the "
                                f"{level_text(ctx)} interval over the runs of the uncertainty analysis; "
                                f"{robust_n:,} locations are robustly in their category (filled dots).")


# --------------------------------------------------------------------------- country overview
def region_table(ctx) -> pd.DataFrame | None:
    """Per region: locations, share robustly in their category, median rank-interval widths, changes beyond
    noise and single informants (None without a run, or for a region's report)."""
    if not available(ctx) or ctx.region is not None:
        return None
    loc = locations(ctx)
    col = ctx.columns.admin[0] if ctx.columns.admin else None
    if col is None or col not in loc.columns:
        return None
    order = list(content.league_table(ctx)["P-code"])
    order += [p for p in sorted(loc[col].dropna().unique()) if p not in order]
    rows = []
    term = content.admin_term(1).capitalize()
    whole = "national" if not content.several_countries(ctx) else content.whole_name(ctx)
    for p in order:
        part = loc[loc[col] == p]
        if not len(part):
            continue
        scored = part[part["index"].notna()]
        changed = part[part["change"].notna()]
        row = {term: ctx.regions.get(p, p), "Locations": len(part),
               "Robust category (% of locations)": float(scored["robust_category"].notna().mean() * 100)
               if len(scored) else np.nan,
               f"Median rank interval, {whole} (places)": float((part["rank_high"] - part["rank_low"]).median())}
        if "rank_region_low" in part.columns:
            row["Median rank interval in the region (places)"] = float(
                (part["rank_region_high"] - part["rank_region_low"]).median())
        row["Share of the changes beyond noise (%)"] = (float(changed["beyond_noise"].astype(bool).mean() * 100)
                                                        if len(changed) else np.nan)
        row["Single informant (locations)"] = int(part["single_informant"].fillna(False).astype(bool).sum())
        row["P-code"] = p
        rows.append(row)
    out = pd.DataFrame(rows)
    shares = [k for k in out.columns if "(%" in k or "%)" in k]
    out[shares] = out[shares].astype(float).round(1) + 0.0
    places = [k for k in out.columns if "(places)" in k]
    out[places] = out[places].astype(float).round(0).astype("Int64")
    return out


def region_table_note(ctx) -> str | None:
    """What the columns of :func:`region_table` mean, in words (None without the table)."""
    if region_table(ctx) is None:
        return None
    return (f"Per region: the share of its scored locations whose category is robust (the same in at least "
            f"{_robust_text(ctx)} of the runs); the median width of the locations' rank intervals, in places of "
            f"{content.whole_ranking(ctx)} and of the region's own ranking ({level_text(ctx)} of the runs fall "
            "within); the "
            "share of the changes since the previous round that are beyond noise; and the locations with a single "
            "key informant, whose intervals show only the modelling choices.")


def chart_note(ctx) -> str | None:
    """How to read :func:`sensitivity_chart`, in words (None without the chart)."""
    if ctx.region is not None or _output(ctx) is None:
        return None
    return (f"Which modelling choices move {content.whole_ranking(ctx)} most: each bar is the share of the spread "
            "of the ranking over the runs (the mean rank shift) that a choice explains. Dark bar: the choice alone and "
            "together with the others (total effect); light bar: the choice alone (first order); whiskers: the "
            "95 % interval of the estimate. A choice near 0 can be set either way without changing the ranking."
            + (f" {extra}" if (extra := _sobol_caveat(ctx, _output(ctx)[0])) else ""))


def sensitivity_chart(ctx):
    """The Sobol bar chart of the ranking of all locations (:func:`stability.sensitivity.chart`), or None."""
    from .. import sensitivity as sa
    from . import figures

    picked = _output(ctx) if ctx.region is None else None
    if picked is None:
        return None
    output, _ = picked
    labels = (about(ctx) or {}).get("labels") or {}
    table = sensitivity(ctx)
    k = int((table["output"].astype(str) == output).sum())
    foot = figures.FOOTNOTE_HEIGHT if ctx.illustrative else 0.0
    with figures.style():
        rows_height = max(0.7 * k, 0.9)
        height = 1.2 + rows_height + 0.55 + foot
        fig = figures.new_figure(9.0, height)
        ax = fig.add_axes([2.3 / 9.0, 1.2 / height, 6.2 / 9.0, rows_height / height])
        sa.chart(table, output, ax, labels=labels, output_label=f"{content.whole_ranking(ctx)}, round {ctx.round}")
        legend = ax.get_legend()
        if legend is not None:  # below the axes, where it cannot hide a bar
            legend.remove()
            handles, texts = ax.get_legend_handles_labels()
            fig.legend(handles, texts, loc="lower center", ncols=2, frameon=False, fontsize=9,
                       bbox_to_anchor=(0.5, 0.02 / height))
        figures.footnote(ctx, fig)
    shown = sa.for_readers(table)  # what the bars show: within [0, 1], first order at most the total effect
    rows = shown[shown["output"].astype(str) == output].sort_values("ST", ascending=False, kind="stable")
    listed = "; ".join(f"{labels.get(f, f)}: total effect {content.number(st, 2)}, first order {content.number(s1, 2)}"
                       for f, st, s1 in zip(rows["factor"].astype(str), rows["ST"], rows["S1"]))
    alt = (f"Bar chart of the Sobol indices of the modelling choices for {content.whole_ranking(ctx)} of "
           f"round {ctx.round} (share of the spread of the mean rank shift that each choice explains): {listed}.")
    extra = _sobol_caveat(ctx, output)
    figures.set_alt(fig, alt + (f" {extra}" if extra else ""))
    return fig


def _sobol_caveat(ctx, output: str) -> str | None:
    """What a reader must know about the Sobol indices of ``output``: the only choice that varies (1 by
    definition), or noisy estimates and how to get better ones (:func:`stability.sensitivity.noise_sentence`)."""
    from .. import sensitivity as sa

    table = sensitivity(ctx)
    if table is None:
        return None
    rows = sa.for_readers(table)
    rows = rows[rows["output"].astype(str) == output]
    if len(rows) == 1 and (rows["note"].astype(str) == sa.NOTE_ONLY_FACTOR).all():
        labels = (about(ctx) or {}).get("labels") or {}
        name = labels.get(str(rows["factor"].iloc[0]), str(rows["factor"].iloc[0]))
        return (f"Only the {name} were varied among the modelling choices: they account for all of the spread by "
                "definition (total effect 1).")
    return sa.noise_sentence(table, output, more=_more_samples(ctx))


def _more_samples(ctx) -> str:
    """The command that gives more Sobol base samples for this report's index (``{n}``: how many)."""
    options = data_options(ctx)
    return "stability uncertainty --sobol {n}" + (f" {options}" if options else "")


# --------------------------------------------------------------------------- workbook
def workbook_sheets(ctx) -> dict[str, pd.DataFrame]:
    """``Uncertainty``: the report's rows of the analysis's ``locations`` table, with the location names, as
    readers read them (:func:`for_readers`: whole ranks, yes / no, ``not robust``; empty without a run)."""
    if not available(ctx):
        return {}
    loc = locations(ctx).copy()
    c = ctx.columns
    names = ctx.current.drop_duplicates(c.location).set_index(c.location)
    if c.name and c.name in names.columns and c.name not in loc.columns:
        loc.insert(1, c.name, loc[c.location].map(names[c.name]).astype(object))
    loc = for_readers(loc)
    return {SHEET: loc.rename(columns=sheet_headers(ctx, loc.columns))}


def for_readers(loc: pd.DataFrame) -> pd.DataFrame:
    """The analysis's ``locations`` rows as the ``Uncertainty`` sheet shows them to readers.

    - ranks (``rank``, ``rank_median``, ``rank_low``... and ``rank_region_*``) in whole places, rounded as the
      HTML report rounds them (half up: :func:`_whole`; ``uncertainty.csv`` keeps the type-7 quantiles); the
      mean rank shifts (``rank_shift``, ``rank_region_shift``) with one decimal;
    - ``beyond_noise`` ``yes`` / ``no``, blank for a location without a change (not assessed in the previous
      round: no change to judge); every other yes/no column (``single_informant``) ``yes`` / ``no``;
    - ``robust_category`` the category, or ``not robust`` for a scored location whose category is not robust
      (the words of the ranking chart), blank for a location without an index.
    """
    out = loc.copy()
    for col in out.columns:
        name = str(col)
        if name.endswith("_shift") and name.startswith("rank"):
            values = pd.to_numeric(out[col], errors="coerce")  # one decimal, as the sentences write it
            out[col] = values.map(lambda v: v if pd.isna(v) else float(f"{v:.1f}")).astype(float)
        elif name == "rank" or name.startswith("rank_"):
            values = pd.to_numeric(out[col], errors="coerce").to_numpy(dtype=float)
            out[col] = pd.array(np.where(np.isnan(values), np.nan, np.floor(values + 0.5)), dtype="Int64")
    if "category" in out.columns:
        out["category"] = out["category"].astype(object).where(out["category"].notna(), None)
    if "robust_category" in out.columns:
        robust = out["robust_category"].astype(object)
        scored = out["index"].notna() if "index" in out.columns else out.get("category", robust).notna()
        out["robust_category"] = robust.where(robust.notna(), np.where(scored, NOT_ROBUST, None)).astype(object)
    has_change = out["change"].notna() if "change" in out.columns else pd.Series(True, index=out.index)
    for col in out.columns:
        values = out[col]
        if values.dtype == bool or str(values.dtype) == "boolean" or (
                values.dtype == object and len(values.dropna()) and values.dropna().map(type).eq(bool).all()):
            words = values.map(lambda v: None if v is None or pd.isna(v) else YES if bool(v) else NO).astype(object)
            out[col] = words.where(has_change, None) if str(col) == "beyond_noise" else words
    return out


def location_table(run, result, survey_round="latest", region: str | None = None, *, level: float | None = None,
                   top: int | None = None) -> pd.DataFrame:
    """A run's locations of one round (and region) as a researcher reads them (``notebooks/sensitivity.ipynb``).

    One row per location, by its nominal rank: ``Location`` (its name), the region (for the whole ranking),
    the rank (within the region for a region, national otherwise) and its interval over the runs
    (``"8–19"``), the index, the category, the share of the runs in each category (%), the robust category
    (``not robust`` when none), the change since the previous round with its interval, and whether it is
    beyond noise (``yes`` / ``no``, blank without a change).  Ranks in whole places, rounded half up as the
    reports round them (:func:`for_readers`).

    Parameters
    ----------
    run : UncertaintyResult
    result : Result
        The index the run was computed from (for the names, regions and rounds).
    survey_round : round label, number or ``"latest"``
    region : str, optional
        Admin-1 p-code; None or empty: every location of the round, with national ranks.
    level : float, optional
        Level of the intervals, for the headers (default the run's).
    top : int, optional
        Only the first ``top`` locations.
    """
    from .context import region_names, resolve_round

    c = result.spec.columns
    rnd = resolve_round(result.rounds, survey_round) if result.rounds else survey_round
    loc = run.locations
    if c.round and c.round in loc.columns:
        loc = loc[loc[c.round].astype(str) == str(rnd)]
    region_col = c.admin[0] if c.admin else None
    within = bool(region) and region_col is not None and region_col in loc.columns
    if within:
        loc = loc[loc[region_col] == region]
    prefix = "rank_region" if within and "rank_region_low" in loc.columns else "rank"
    if level is None:
        summ = run.summary
        level = float(summ["level"].iloc[0]) if len(summ) and "level" in summ else 0.9
    pct = f"{level * 100:g} %"
    shown = for_readers(loc.sort_values([prefix, c.location], kind="mergesort", na_position="last"))
    scores = result.scores
    if c.round and c.round in scores.columns:
        scores = scores[scores[c.round].astype(str) == str(rnd)]
    names = scores.drop_duplicates(c.location).set_index(c.location)
    ids = shown[c.location]
    out = pd.DataFrame(index=shown.index)
    out["Location"] = ids.map(names[c.name]).fillna(ids) if c.name and c.name in names.columns else ids
    if not within and region_col is not None and region_col in shown.columns:
        regions = region_names(result)
        out[content.admin_term(1).capitalize()] = shown[region_col].map(lambda p: regions.get(p, p))
    out["Rank in region" if prefix == "rank_region" else "Rank"] = shown[prefix]
    out[f"Rank interval ({pct})"] = [
        "–" if pd.isna(a) or pd.isna(b) else f"{int(a)}\u2013{int(b)}"
        for a, b in zip(shown[f"{prefix}_low"], shown[f"{prefix}_high"])]
    out["Index"] = pd.to_numeric(shown["index"], errors="coerce").round(1)
    out["Category"] = shown["category"]
    for col in [k for k in shown.columns if str(k).startswith("p_") and k != "p_change_real"]:
        out[f"Runs {col[2:]} (%)"] = (pd.to_numeric(shown[col], errors="coerce") * 100).round(0).astype("Int64")
    out["Robust category"] = shown["robust_category"]
    out["Change"] = pd.to_numeric(shown["change"], errors="coerce").round(1)
    out[f"Change interval ({pct})"] = [
        "" if pd.isna(a) or pd.isna(b) else f"{content.number(a, sign=True)} to {content.number(b, sign=True)}"
        for a, b in zip(shown["change_low"], shown["change_high"])]
    out["Change beyond noise"] = shown["beyond_noise"].fillna("")
    out = out.reset_index(drop=True)
    return out.head(top) if top else out


def sheet_headers(ctx, columns) -> dict[str, str]:
    """Headers for readers of the ``Uncertainty`` sheet, each ending with the column's name in
    ``uncertainty.csv`` (e.g. ``Rank in region, low end of the 90 % interval (rank_region_low)``)."""
    c = ctx.columns
    level = level_text(ctx)
    words = {c.location: "Location id", c.name: "Location", c.round: "Round", "index": content.index_label(ctx),
             "category": "Category", "robust_category": f"Robust category (same in at least {_robust_text(ctx)} "
             "of the runs)", "single_informant": "Single key informant", "change": "Change since the previous round",
             "p_change_real": "Share of the runs with the change's sign", "beyond_noise": "Change beyond noise"}
    if c.admin:
        words[c.admin[0]] = "Region p-code"
    ends = {"median": "median of the runs", "low": f"low end of the {level} interval",
            "high": f"high end of the {level} interval"}
    words["rank_shift"] = f"{content.whole_rank_label(ctx)}, mean shift over the runs (places)"
    words["rank_region_shift"] = "Rank in region, mean shift over the runs (places)"
    for base, label in (("rank_region", "Rank in region"), ("rank", content.whole_rank_label(ctx)),
                        ("index", content.index_label(ctx)), ("change", "Change since the previous round")):
        words.setdefault(base, label)
        for end, text in ends.items():
            words[f"{base}_{end}"] = f"{label}, {text}"
    out = {}
    for col in columns:
        col = str(col)
        label = words.get(col) or (f"Share of the runs in '{col[2:]}'" if col.startswith("p_") else None)
        if label:
            out[col] = f"{label} ({col})"
    return out
