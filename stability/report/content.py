"""Tables and text of the regional comparison reports.

Every function takes a :class:`~stability.report.context.ReportContext` and
returns plain data: a :class:`pandas.DataFrame` with reader-facing column names,
a list of sentences, or a dict.  Nothing here renders HTML (see
:mod:`stability.report.notebook`) or draws (see :mod:`stability.report.figures`),
so every number a report shows can be tested directly.

Column names of the data are never hard-coded: identifiers, names, admin codes
and coordinates come from ``ctx.columns`` (the spec), population counts from
:data:`POPULATION_COLUMNS` when the data have them.

Sections of a report and their functions:

==========================  ==================================================
shared with the figures     :func:`number`, :func:`admin_columns`, :func:`region_medians`,
                            :func:`categories_of`, :func:`category_labels`
caveats                     :func:`thin_round_note`
headline figures            :func:`headline_text`, :func:`population_by_category`,
                            :func:`change_text`, :func:`category_transitions`
ranked locations            :func:`ranked_table`
pillar profile              :func:`pillar_summary`
most / least stable         :func:`drivers`, :func:`drivers_table`, :func:`driver_summaries`
data quality                :func:`data_quality`, :func:`indicator_quality`
method                      :func:`method_note`
country overview            :func:`league_table`, :func:`population_by_region`
workbook                    :func:`write_rankings`, :func:`workbook_provenance`
==========================  ==================================================
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

#: Population counts shown when the data have them: column -> label.
POPULATION_COLUMNS = {"idps": "IDPs", "returnees": "Returnees"}
#: What the reports call the admin levels of ``ctx.columns.admin`` (coarsest first).
ADMIN_TERMS = ("region", "cercle")
#: Label of locations without an index (too few answers for the availability threshold).
NOT_SCORED = "not scored"
#: A location has improved / worsened when its index changed by more than this (points).
CHANGE_THRESHOLD = 5.0
#: Locations with fewer key informants than this are flagged in the data-quality notes.
FEW_INFORMANTS = 3
#: Number of most / least stable locations, and of indicators per direction, in the drivers.
N_DRIVER_LOCATIONS = 5
N_DRIVER_INDICATORS = 3
ILLUSTRATIVE_NOTE = "ILLUSTRATIVE data (generated, not a real survey): do not use for programming decisions"
WORKBOOK_NAME = "rankings.xlsx"
#: Folder (under ``reports/``) of the workbooks of notebooks run by hand, apart from the published reports.
INTERACTIVE = "interactive"
#: Items of the workbook's read-me sheet that say what it was built from (see :func:`workbook_provenance`).
SPEC_HASH_ITEM = "Spec hash"
DATA_VERSION_ITEM = "Data version"


# --------------------------------------------------------------------------- small helpers
def population_columns(ctx) -> list[str]:
    """Population columns of :data:`POPULATION_COLUMNS` present in the scores."""
    return [c for c in POPULATION_COLUMNS if c in ctx.scores.columns]


def population_label(column: str) -> str:
    """Reader-facing label of a population column (``idps`` -> ``IDPs``)."""
    return POPULATION_COLUMNS.get(column, column.replace("_", " ").capitalize())


def admin_term(level: int, ctx=None) -> str:
    """What the reports call admin level ``level`` (1 = region) — in the country of ``ctx``'s region
    (``cercle`` in Mali, ``province`` in Burkina Faso, ``department`` in Niger), else the Mali terms;
    ``admin-2 area`` for the overview of data from several countries."""
    from ..geo import country_of
    from ..locations import ADMIN_LEVEL_NAMES

    if ctx is not None and level >= 2:
        countries = [country_of(ctx.region)] if ctx.region is not None else countries_of(ctx)
        if len(countries) > 1:
            return f"admin-{level} area"
        if countries and level <= len(ADMIN_LEVEL_NAMES.get(countries[0], ())):
            return ADMIN_LEVEL_NAMES[countries[0]][level - 1]
    return ADMIN_TERMS[level - 1] if level <= len(ADMIN_TERMS) else f"admin-{level} area"


def countries_of(ctx) -> list[str]:
    """ISO3 codes of the countries of the data's regions (:func:`stability.geo.country_of`), Mali first."""
    from ..geo import COUNTRY_NAMES, country_of

    found = {country_of(p) for p in ctx.regions}
    return [iso for iso in COUNTRY_NAMES if iso in found]


#: How many countries, in words ("all three countries").
_HOW_MANY = {2: "both", 3: "all three", 4: "all four", 5: "all five"}


def several_countries(ctx) -> bool:
    """Whether the data's regions lie in more than one country (a Liptako-Gourma survey)."""
    return len(countries_of(ctx)) > 1


def whole_name(ctx) -> str:
    """What all locations of the round are, in words: ``the country`` for the data of one country, else
    ``all three countries`` (national figures of a multi-country survey are not a country's)."""
    n = len(countries_of(ctx))
    return "the country" if n < 2 else f"{_HOW_MANY.get(n, f'all {n}')} countries"


def whole_median_label(ctx) -> str:
    """``National median``, or ``Median, all three countries`` for a multi-country survey."""
    return "National median" if not several_countries(ctx) else f"Median, {whole_name(ctx)}"


def whole_rank_label(ctx) -> str:
    """``Rank national``, or ``Rank, all three countries`` for a multi-country survey."""
    return "Rank national" if not several_countries(ctx) else f"Rank, {whole_name(ctx)}"


def whole_ranking(ctx) -> str:
    """``the national ranking``, or ``the ranking across all three countries`` for a multi-country survey."""
    return "the national ranking" if not several_countries(ctx) else f"the ranking across {whole_name(ctx)}"


def country_median(ctx, column: str | None = None) -> tuple[str, float] | None:
    """The name of the report region's country and the median of ``column`` (default: the index) over its
    locations this round: for a regional report of a multi-country survey, else None."""
    from ..geo import COUNTRY_NAMES, country_of

    if ctx.region is None or not several_countries(ctx):
        return None
    iso = country_of(ctx.region)
    region = ctx.columns.admin[0]
    nat = ctx.national
    mine = nat[[country_of(str(p)) == iso for p in nat[region]]]
    return COUNTRY_NAMES.get(iso, iso), float(mine[column or ctx.index_id].median())


def category_labels(ctx) -> list[str]:
    """The index categories, least stable first (from the spec)."""
    return list(ctx.spec.categories.labels)


def category_cuts(ctx) -> list[float] | None:
    """The fixed cut-offs of the categories on the index, or None when each round is cut at quantiles."""
    rule, cuts = ctx.spec.category_rule()
    return cuts if rule == "fixed" else None


def category_ranges(ctx) -> dict[str, str]:
    """Category label -> its range of the index in words (``"40 to under 60"``)."""
    rule, cuts = ctx.spec.category_rule()
    labels = category_labels(ctx)
    out = {}
    if rule == "quantile":
        bounds = [0.0, *cuts, 1.0]
        for i, lab in enumerate(labels):
            out[lab] = (f"the {_pct(bounds[i])} to {_pct(bounds[i + 1])} of the round's locations, "
                        "from least to most stable")
        return out
    for i, lab in enumerate(labels):
        if i == 0:
            out[lab] = f"below {cuts[0]:g}"
        elif i == len(labels) - 1:
            out[lab] = f"{cuts[-1]:g} and above"
        else:
            out[lab] = f"{cuts[i - 1]:g} to under {cuts[i]:g}"
    return out


def category_definition(ctx) -> str:
    """One sentence defining the categories of the index."""
    parts = [f"{lab} ({rng})" for lab, rng in category_ranges(ctx).items()]
    return f"Stability categories of the index: {', '.join(parts)}."


def index_label(ctx) -> str:
    """Label of the index (e.g. ``Stability index``)."""
    return ctx.spec.label(ctx.index_id)


def index_range(ctx) -> tuple[float, float] | None:
    """Range of the index from the spec's methods (``(0, 100)`` for the Mali spec), or None."""
    return ctx.spec.index_range()


def scale(ctx) -> float:
    """Top of the index's scale (100 for the Mali spec; 100 when the index has no fixed range)."""
    rng = index_range(ctx)
    return float(rng[1]) if rng else 100.0


def scale_text(ctx) -> str:
    """The index's range for axis labels and sentences: ``"0-100"``, or ``"no fixed range"``."""
    rng = index_range(ctx)
    return f"{rng[0]:g}-{rng[1]:g}" if rng else "no fixed range"


def _pct(share: float) -> str:
    return f"{share * 100:g} %"


def join_words(items) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = [str(x) for x in items]
    return "" if not items else items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def what_it_measures(ctx) -> str:
    """One sentence on what the index measures, built from the spec."""
    pillars = [ctx.spec.label(p) for p in ctx.pillars]
    listed = join_words(pillars)
    source = "key-informant indicators" if ctx.columns.key_informant else "survey indicators"
    rng = index_range(ctx)
    span = (f"from {rng[0]:g} (least stable) to {rng[1]:g} (most stable)" if rng else
            "on a scale with no fixed range (higher = more stable)")
    return (f"The {index_label(ctx).lower()} scores how stable each assessed location is, {span}, by combining {len(ctx.spec.indicators)} {source} in "
            f"{len(pillars)} pillars: {listed}.")


def _name_col(ctx) -> str:
    c = ctx.columns
    return c.name if c.name and c.name in ctx.scores.columns else c.location


def admin_columns(ctx, level: int) -> tuple[str | None, str | None]:
    """(p-code column, name column) of admin level ``level`` (1 = region) in the scores.

    Either is None when the data have no such column; without a name column the
    p-code column stands in for it.
    """
    c, cols = ctx.columns, ctx.scores.columns
    code = c.admin[level - 1] if len(c.admin) >= level and c.admin[level - 1] in cols else None
    name = (c.admin_names[level - 1] if len(c.admin_names) >= level and c.admin_names[level - 1] in cols
            else None)
    return code, name or code


def _rank_col(ctx) -> str:
    return "rank_region" if ctx.region is not None and "rank_region" in ctx.scores.columns else "rank_national"


def _in_round(ctx, frame: pd.DataFrame, rnd) -> pd.DataFrame:
    col = ctx.columns.round
    return frame[frame[col] == rnd] if col else frame


def in_scope(ctx, frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``frame`` (scores, or any table with the region column) in the report's region (all rows for
    the overview)."""
    if ctx.region is None:
        return frame
    return frame[frame[ctx.columns.admin[0]] == ctx.region]


def previous(ctx) -> pd.DataFrame | None:
    """Scores of the previous round in the report's region (None when there is no previous round)."""
    if ctx.previous_round is None:
        return None
    return in_scope(ctx, _in_round(ctx, ctx.scores, ctx.previous_round))


def categories_of(ctx, frame: pd.DataFrame) -> pd.Series:
    """Category of each row as text; :data:`NOT_SCORED` where the index is missing."""
    cat = frame["category"].astype(object)
    return cat.where(cat.notna(), NOT_SCORED)


def _category_order(ctx, cats: pd.Series) -> list[str]:
    labels = category_labels(ctx)
    return labels + ([NOT_SCORED] if (cats == NOT_SCORED).any() else [])


def _share(part, whole) -> float:
    return float(part) / float(whole) * 100.0 if whole else float("nan")


def number(x: float, digits: int = 1, sign: bool = False) -> str:
    """A number for a sentence or a figure label: thousands separators, fixed decimals, no ``-0.0``.

    Parameters
    ----------
    x : float
        The number; ``"n/a"`` when missing.
    digits : int
        Decimals.
    sign : bool
        Show ``+`` before positive numbers.
    """
    if x is None or pd.isna(x):
        return "n/a"
    x = float(x) + 0.0
    text = f"{x:+,.{digits}f}" if sign else f"{x:,.{digits}f}"
    return text.replace("-0.0", "0.0").replace("+0.0", "0.0") if abs(x) < 0.05 else text


def _int(x) -> str:
    return f"{int(x):,}"


def _count(n, noun: str, plural: str | None = None) -> str:
    """``"1 location"``, ``"2 locations"`` (with thousands separators)."""
    return f"{_int(n)} {noun if int(n) == 1 else (plural or noun + 's')}"


def _in_sentence(label: str) -> str:
    """A label inside a sentence: lower-case unless it is an acronym (``IDPs``)."""
    return label if label[:2].isupper() else label[:1].lower() + label[1:]


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _where(ctx) -> str:
    return ctx.region_name if ctx.region is not None else "all regions"


def region_medians(ctx, column: str | None = None) -> pd.Series:
    """Median of ``column`` (default: the index) per region in this round, highest first.

    Returns
    -------
    Series
        Indexed by region p-code; ties keep p-code order.
    """
    col = column or ctx.index_id
    region = ctx.columns.admin[0]
    return ctx.national.groupby(region, sort=True)[col].median().sort_values(ascending=False, kind="mergesort")


def thin_round_note(result, survey_round) -> str | None:
    """A warning when ``survey_round`` assessed far fewer locations than the round before it (else None).

    Takes the :class:`~stability.pipeline.Result` (not a report context) so that
    the round's index page can say the same as its reports.  Thin rounds are
    those flagged by ``result.round_coverage()``.
    """
    cov = result.round_coverage()
    if cov is None or not len(cov):
        return None
    rounds = list(cov["round"])
    here = [i for i, r in enumerate(rounds) if str(r) == str(survey_round)]
    if not here or here[0] == 0:
        return None
    row = cov.iloc[here[0]]
    if not bool(row["thin"]):
        return None
    before = rounds[here[0] - 1]
    n, prev = int(row["locations"]), int(row["previous_locations"])
    return (f"Round {survey_round} assessed {_count(n, 'location')} against {_int(prev)} in round {before}: "
            f"ranks and comparisons across regions cover only these locations.")


# --------------------------------------------------------------------------- headline figures
def population_by_category(ctx) -> pd.DataFrame:
    """Locations, IDPs and returnees living in each stability category, with shares.

    Returns
    -------
    DataFrame
        One row per category (least stable first; ``not scored`` if any) and a
        ``Total`` row; columns ``Stability category``, ``Locations``,
        ``% of locations`` and, per population column, its sum and share.
    """
    cur = ctx.current
    cats = categories_of(ctx, cur)
    order = _category_order(ctx, cats)
    counts = cats.value_counts().reindex(order, fill_value=0)
    out = pd.DataFrame({"Stability category": order + ["Total"]})
    out["Locations"] = np.append(counts.to_numpy(), counts.sum()).astype(int)
    out["% of locations"] = out["Locations"] / max(len(cur), 1) * 100.0
    for col in population_columns(ctx):
        sums = cur[col].groupby(cats, sort=False).sum(min_count=0).reindex(order, fill_value=0)
        values = np.append(sums.to_numpy(dtype=float), sums.sum())
        total = values[-1]
        label = population_label(col)
        out[label] = pd.array(np.round(values), dtype="Int64")
        out[f"% of {label}"] = values / total * 100.0 if total else np.nan
    return out


def headline_text(ctx) -> list[str]:
    """Key sentences of the headline section (locations, median index, people)."""
    cur = ctx.current
    idx = cur[ctx.index_id]
    admin2, _ = admin_columns(ctx, 2)
    lines = []
    admin1, _ = admin_columns(ctx, 1)
    n_regions = cur[admin1].nunique() if admin1 else len(ctx.regions)
    where = f"in {ctx.region_name}" if ctx.region is not None else f"in {_count(n_regions, 'region')}"
    areas = f" ({_count(cur[admin2].nunique(), admin_term(2, ctx))})" if admin2 else ""
    lines.append(f"{_count(len(cur), 'location')} {'was' if len(cur) == 1 else 'were'} assessed {where}{areas} "
                 f"in round {ctx.round}.")
    med = idx.median()
    if ctx.region is not None:
        nat = ctx.national[ctx.index_id].median()
        medians = region_medians(ctx)
        rank = int((medians > med).sum()) + 1 if pd.notna(med) else None
        tail = (f"; {ctx.region_name} ranks {_ordinal(rank)} of {_count(len(medians), 'region')} by median (1st = most "
                f"stable)." if rank else ".")
        own = country_median(ctx)
        versus = (f"{own[0]} median {number(own[1])}; median of {whole_name(ctx)} {number(nat)}" if own
                  else f"national median {number(nat)}")
        lines.append(f"Median {index_label(ctx).lower()}: {number(med)} ({versus}){tail}")
    else:
        lines.append(f"Median {index_label(ctx).lower()}: {number(med)} (mean {number(idx.mean())}).")
    cats = categories_of(ctx, cur)
    low = category_labels(ctx)[0]
    n_low = int((cats == low).sum())
    lines.append(f"{_int(n_low)} of {_int(len(cur))} locations ({number(_share(n_low, len(cur)), 0)}%) are in the "
                 f"'{low}' stability category.")
    for col in population_columns(ctx):
        total = cur[col].sum()
        in_low = cur.loc[cats == low, col].sum()
        lines.append(f"{_int(total)} {_in_sentence(population_label(col))} live in the assessed locations; "
                     f"{_int(in_low)} ({number(_share(in_low, total), 0)}%) of them in '{low}' stability locations.")
    missing = int(idx.isna().sum())
    if missing:
        lines.append(f"{_count(missing, 'location')} without an index: too few answers to compute it.")
    lines.append(category_definition(ctx))
    return lines


def change_summary(ctx) -> dict | None:
    """Change of the index since the previous round, in numbers (None without a previous round).

    Returns
    -------
    dict or None
        ``previous_round``, ``n_compared`` (locations with an index in both rounds),
        ``median_change`` (median of the locations' changes), ``improved`` and
        ``worsened`` (with an uncertainty analysis, a change beyond noise: its interval over
        the runs excludes 0; without one, a change beyond :data:`CHANGE_THRESHOLD` points),
        ``unchanged``, ``beyond_noise`` (True when the counts come from an uncertainty
        analysis), ``new`` (assessed now, not in the previous round), ``not_reassessed``
        (assessed then, not now), ``median_before`` and ``median_now``.
    """
    from . import uncertainty

    prev = previous(ctx)
    if prev is None:
        return None
    cur = ctx.current
    loc = ctx.columns.location
    change = cur["change"] if "change" in cur.columns else pd.Series(np.nan, index=cur.index)
    both = change.notna()
    counts = uncertainty.change_counts(ctx, cur[loc], change)
    if counts is None:
        counts = {"improved": int((change > CHANGE_THRESHOLD).sum()),
                  "worsened": int((change < -CHANGE_THRESHOLD).sum()),
                  "unchanged": int((change.abs() <= CHANGE_THRESHOLD).sum())}
    return {
        "previous_round": ctx.previous_round,
        "n_compared": int(both.sum()),
        "median_change": float(change[both].median()) if both.any() else float("nan"),
        **counts,
        "beyond_noise": uncertainty.available(ctx),
        "new": int((~cur[loc].isin(prev[loc])).sum()),
        "not_reassessed": int((~prev[loc].isin(cur[loc])).sum()),
        "median_before": float(prev[ctx.index_id].median()),
        "median_now": float(cur[ctx.index_id].median()),
    }


def change_text(ctx) -> list[str]:
    """Sentences on the change since the previous round (says so when there is none)."""
    s = change_summary(ctx)
    if s is None:
        return [f"Round {ctx.round} is the first survey round in the data: there is no previous round, "
                "so no change can be shown."]
    p = s["previous_round"]
    if not s["n_compared"]:
        return [f"No location of {_where(ctx)} has an index in both round {p} and round {ctx.round}: "
                "no change can be shown."]
    t = f"{CHANGE_THRESHOLD:g}"
    lines = [
        f"Compared with round {p}: of the {_int(s['n_compared'])} locations assessed in both rounds, each "
        f"location's {index_label(ctx).lower()} changed by {number(s['median_change'], sign=True)} points at the "
        f"median. The median index of all locations assessed went from {number(s['median_before'])} in round {p} "
        f"to {number(s['median_now'])} now: another figure (a change of medians, over locations that differ "
        "between rounds, is not the median of the locations' changes).",
    ]
    if s.get("beyond_noise"):
        from .uncertainty import level_text

        lines.append(f"{_count(s['improved'], 'location')} improved and {_int(s['worsened'])} worsened beyond noise "
                     f"(the {level_text(ctx)} interval of the change over the runs of the uncertainty analysis is "
                     f"all above or all below 0); the change of the other {_int(s['unchanged'])} is within what "
                     "the modelling choices and the key informants met can produce.")
    else:
        lines.append(f"{_count(s['improved'], 'location')} improved by more than {t} points, {_int(s['worsened'])} "
                     f"worsened by more than {t} points and {_int(s['unchanged'])} changed by {t} points or less.")
    if s["new"] or s["not_reassessed"]:
        lines.append(f"{_count(s['new'], 'location')} assessed for the first time (not in round {p}); "
                     f"{_count(s['not_reassessed'], 'location')} of round {p} not assessed this round.")
    return lines


def category_transitions(ctx) -> pd.DataFrame | None:
    """Locations by category in the previous round (rows) and in this round (columns).

    Returns
    -------
    DataFrame or None
        First column ``Category in round <previous>``; one column per category of
        this round and ``Total``; a last row for locations not assessed in the
        previous round.  None when there is no previous round.
    """
    prev = previous(ctx)
    if prev is None:
        return None
    loc = ctx.columns.location
    cur = ctx.current
    before = pd.Series(categories_of(ctx, prev).to_numpy(), index=prev[loc].to_numpy())
    new_label = f"not assessed in round {ctx.previous_round}"
    rows = pd.Series(cur[loc].map(before).to_numpy(), index=cur.index).fillna(new_label)
    cols = categories_of(ctx, cur)
    row_order = _category_order(ctx, pd.concat([before, cols], ignore_index=True)) + [new_label]
    col_order = _category_order(ctx, cols)
    table = pd.crosstab(rows, cols).reindex(index=row_order, columns=col_order, fill_value=0)
    table = table.loc[(table.sum(axis=1) > 0) | table.index.isin(category_labels(ctx))]
    table.columns = [f"{c} in round {ctx.round}" for c in table.columns]
    table["Total"] = table.sum(axis=1)
    table.index.name = f"Category in round {ctx.previous_round}"
    return table.reset_index()


# --------------------------------------------------------------------------- ranked table
#: Descriptive columns of the ranked table when the data have them (column -> label), after the
#: population counts of :data:`POPULATION_COLUMNS`.
RANKED_EXTRA_COLUMNS = {"population": "Population"}
#: Column of the location type (village, IDP site) and how its values read.
LOCATION_TYPE_COLUMN = "location_type"
LOCATION_TYPE_LABELS = {"idp_site": "IDP site", "village": "village"}
#: Decimals of the coordinates (5 decimals = about 1 m).
COORDINATE_DIGITS = 5


def location_type_label(value) -> str | None:
    """How a location type reads in the reports (``idp_site`` -> ``IDP site``); None when missing."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    text = str(value).strip()
    return LOCATION_TYPE_LABELS.get(text, text.replace("_", " "))


def _coordinates_text(lat: pd.Series, lon: pd.Series) -> pd.Series:
    """``"13.60824, -10.11964"`` (latitude, longitude); empty when either is missing."""
    d = COORDINATE_DIGITS
    return pd.Series([f"{a:.{d}f}, {b:.{d}f}" if pd.notna(a) and pd.notna(b) else None for a, b in zip(lat, lon)],
                     index=lat.index, dtype=object)


def ranked_table(ctx, compact: bool = False) -> pd.DataFrame:
    """Every location of the report in this round, ranked; scores rounded to 1 decimal.

    For a region: sorted by rank in the region, with the national rank.  For the
    overview: every location, sorted by national rank, with its region.

    Parameters
    ----------
    ctx : ReportContext
    compact : bool
        The version shown in the HTML report: coordinates in one text column
        ``Coordinates`` (``"lat, lon"``, 5 decimals: the report shows numbers
        with 1 decimal) and no admin p-codes.  The default (full) version is the
        workbook's, with every column as numbers.

    Returns
    -------
    DataFrame
        In order, each only when the data have it: ``Rank in region`` / ``Rank``,
        ``Location``, region (overview), cercle, ``Location type`` (village / IDP
        site), the index and pillar scores (labels from the spec), ``Category``,
        ``Rank national`` (regions), ``Change since round <p>`` (when there is a
        previous round), ``IDPs``, ``Returnees``, ``Population`` (whole numbers),
        ``Location id``; full version: ``Region p-code`` (overview),
        ``Cercle p-code``, ``Latitude``, ``Longitude``; compact: ``Coordinates``.
    """
    c = ctx.columns
    cur = ctx.current
    rank = _rank_col(ctx)
    order = cur.sort_values([rank, c.location], kind="mergesort", na_position="last")
    have = order.columns
    out = pd.DataFrame(index=order.index)
    out["Rank in region" if rank == "rank_region" else "Rank"] = order[rank].astype("Int64")
    out["Location"] = order[_name_col(ctx)].astype(object)
    admin1_code, region_name = admin_columns(ctx, 1)
    if ctx.region is None and region_name:
        out[admin_term(1).capitalize()] = order[region_name].astype(object)
        if several_countries(ctx):  # regions of several countries: which country each is in
            from ..geo import COUNTRY_NAMES, country_of

            out["Country"] = [COUNTRY_NAMES.get(country_of(str(p)), "") for p in order[admin1_code]]
    admin2_code, admin2_name = admin_columns(ctx, 2)
    if admin2_name:
        out[admin_term(2, ctx).capitalize()] = order[admin2_name].astype(object)
    if LOCATION_TYPE_COLUMN in have:
        out["Location type"] = order[LOCATION_TYPE_COLUMN].map(location_type_label).astype(object)
    for col in [ctx.index_id, *ctx.pillars]:
        out[ctx.spec.label(col)] = order[col].astype(float).round(1) + 0.0
    out["Category"] = categories_of(ctx, order)
    if rank == "rank_region":
        out[whole_rank_label(ctx)] = order["rank_national"].astype("Int64")
    if ctx.previous_round is not None and "change" in have:
        out[f"Change since round {ctx.previous_round}"] = order["change"].astype(float).round(1) + 0.0
    people = {col: population_label(col) for col in population_columns(ctx)}
    people.update({k: v for k, v in RANKED_EXTRA_COLUMNS.items() if k in have and k not in people})
    for col, label in people.items():
        out[label] = pd.to_numeric(order[col], errors="coerce").round().astype("Int64")
    out["Location id"] = order[c.location].astype(object)
    lat = c.latitude if c.latitude and c.latitude in have else None
    lon = c.longitude if c.longitude and c.longitude in have else None
    if compact:
        _with_intervals(ctx, out, order)
        if lat and lon:
            out["Coordinates"] = _coordinates_text(pd.to_numeric(order[lat], errors="coerce"),
                                                   pd.to_numeric(order[lon], errors="coerce"))
        return out.reset_index(drop=True)
    if ctx.region is None and admin1_code:
        out[f"{admin_term(1).capitalize()} p-code"] = order[admin1_code].astype(object)
    if admin2_code:
        out[f"{admin_term(2, ctx).capitalize()} p-code"] = order[admin2_code].astype(object)
    for col, label in ((lat, "Latitude"), (lon, "Longitude")):
        if col:
            out[label] = pd.to_numeric(order[col], errors="coerce").astype(float).round(COORDINATE_DIGITS) + 0.0
    return out.reset_index(drop=True)


def _with_intervals(ctx, out: pd.DataFrame, order: pd.DataFrame) -> None:
    """Add the rank interval (after the rank) and the category confidence (after the category) of an
    uncertainty analysis, when the report has one (:func:`stability.report.uncertainty.ranked_columns`)."""
    from . import uncertainty

    rank = out.columns[0]
    extra = uncertainty.ranked_columns(ctx, order[ctx.columns.location], out[rank], out["Category"])
    if extra is None:
        return
    (interval, intervals), (confidence, shares) = extra.items()
    out.insert(out.columns.get_loc(rank) + 1, interval, intervals)
    out.insert(out.columns.get_loc("Category") + 1, confidence, shares)


# --------------------------------------------------------------------------- pillar profile
def pillar_summary(ctx) -> pd.DataFrame:
    """Median of the index and of each pillar: this region against the country.

    Returns
    -------
    DataFrame
        One row per score (index first); ``Median in <region>``, ``National median``,
        ``Difference`` and ``Rank of <region> among N regions`` (by median, 1 = most
        stable).  For the overview only the national median, lowest and highest
        region median.  With the regions of several countries, the medians over all
        locations are headed ``Median, all three countries`` (:func:`whole_median_label`)
        and a regional report also gives the median of its country (``Median in Niger``).
    """
    cols = [ctx.index_id, *ctx.pillars]
    whole = whole_median_label(ctx)
    rows = []
    for col in cols:
        medians = region_medians(ctx, col)
        nat = ctx.national[col].median()
        row = {"Score": ctx.spec.label(col)}
        if ctx.region is not None:
            here = ctx.current[col].median()
            row[f"Median in {ctx.region_name}"] = here
            own = country_median(ctx, col)
            if own is not None:
                row[f"Median in {own[0]}"] = own[1]
            row[whole] = nat
            row["Difference" if own is None else f"Difference from {whole_name(ctx)}"] = here - nat
            row[f"Rank among {len(medians)} regions"] = (int((medians > here).sum()) + 1 if pd.notna(here)
                                                         else pd.NA)
        else:
            row[whole] = nat
            row["Lowest region median"] = medians.min()
            row["Highest region median"] = medians.max()
        rows.append(row)
    out = pd.DataFrame(rows)
    for k in out.columns[1:]:
        out[k] = out[k].astype("Int64") if k.startswith("Rank among") else out[k].astype(float).round(1) + 0.0
    return out


# --------------------------------------------------------------------------- drivers
#: Effects of :func:`drivers` (``helps``, ``holds back``), as :mod:`stability.explain` names them.
from ..explain import HELPS, HOLDS_BACK  # noqa: E402


def _reference(ctx) -> str:
    """Drivers compare a location with its region's median profile (the country's in the overview)."""
    return "region" if ctx.region is not None else "national"


def _reference_name(ctx) -> str:
    if ctx.region is not None:
        return f"the {ctx.region_name} median"
    return "the national median" if not several_countries(ctx) else f"the median of {whole_name(ctx)}"


def _explain_round(ctx):
    return ctx.round if ctx.columns.round else None


def extremes(ctx, n: int = N_DRIVER_LOCATIONS) -> dict[str, pd.DataFrame]:
    """The ``n`` most and ``n`` least stable locations of the report (by index).

    Returns
    -------
    dict
        ``"most"``: highest index first; ``"least"``: lowest index first (never
        repeating a location of ``"most"`` when there are fewer than ``2 n``).
    """
    cur = ctx.current.dropna(subset=[ctx.index_id])
    loc = ctx.columns.location
    ordered = cur.sort_values([ctx.index_id, loc], ascending=[False, True], kind="mergesort")
    most = ordered.head(n)
    rest = ordered[~ordered[loc].isin(most[loc])]
    least = rest.sort_values([ctx.index_id, loc], ascending=[True, True], kind="mergesort").head(n)
    return {"most": most, "least": least}


def _once(ctx, name, make):
    """``make()``, computed once per report context when the context keeps tables (:meth:`ReportContext.once`)."""
    once = getattr(ctx, "once", None)
    return once(name, make) if callable(once) else make()


def drivers(ctx, n_locations: int = N_DRIVER_LOCATIONS, n_indicators: int = N_DRIVER_INDICATORS) -> pd.DataFrame:
    """Indicators that help the most and least stable locations or hold them back (see :func:`compute_drivers`);
    computed once per report and reused by the workbook."""
    return _once(ctx, ("drivers", n_locations, n_indicators), lambda: compute_drivers(ctx, n_locations, n_indicators))


def _summaries(ctx, n_locations: int = N_DRIVER_LOCATIONS) -> pd.Series:
    """Plain-words line of each location of :func:`extremes` (location id -> text), computed once per report."""
    from .. import explain

    def make():
        ids = [x for frame in extremes(ctx, n_locations).values() for x in frame[ctx.columns.location]]
        lines = explain.summary_lines(ctx.result, _reference(ctx), survey_round=_explain_round(ctx), locations=ids)
        loc = lines.index.get_level_values(ctx.columns.location) if isinstance(lines.index, pd.MultiIndex) \
            else lines.index
        return pd.Series(lines.to_numpy(), index=np.asarray(loc), dtype=object)

    return _once(ctx, ("driver_summaries", n_locations), make)


def compute_drivers(ctx, n_locations: int = N_DRIVER_LOCATIONS,
                    n_indicators: int = N_DRIVER_INDICATORS) -> pd.DataFrame:
    """Indicators that help the most and least stable locations, or hold them back, in plain words.

    For each of the ``n_locations`` most and least stable locations, the
    ``n_indicators`` indicators with the largest positive contribution to the
    gap between the location's index and its region's median location profile
    ("helps") and the largest negative ones ("holds back"), from
    :func:`stability.explain.drivers` (tie rule: larger contribution first, then
    the order of the spec).  ``Answer`` states the location's own combined
    answer in words ("no robbery in the last 3 months"), never a score.

    Returns
    -------
    DataFrame
        Tidy: ``group`` (most / least stable), location id, ``Location``,
        ``rank``, ``index``, ``effect`` (helps / holds back), ``order`` (1 =
        largest), ``indicator`` (id), ``Indicator`` (label), ``Pillar``,
        ``Answer`` (plain words), ``Points`` (contribution to the gap, index
        points), ``Score`` (normalised indicator score), ``Median`` (the
        region's median of that score) and ``Summary`` (the location's
        one-line summary, see :func:`driver_summaries`).
    """
    from .. import explain

    c = ctx.columns
    rank = _rank_col(ctx)
    cols = ["group", c.location, "Location", "rank", "index", "effect", "order", "indicator", "Indicator",
            "Pillar", "Answer", "Points", "Score", "Median", "Summary"]
    groups = {g: f for g, f in extremes(ctx, n_locations).items() if not f.empty}
    if not groups:
        return pd.DataFrame(columns=cols)
    ids = [x for frame in groups.values() for x in frame[c.location]]
    d = explain.drivers(ctx.result, n=n_indicators, reference=_reference(ctx), survey_round=_explain_round(ctx),
                        locations=ids)
    summaries = _summaries(ctx, n_locations)
    parts = []
    for group, frame in groups.items():
        info = frame.set_index(c.location)
        order = {lo: i for i, lo in enumerate(frame[c.location])}
        part = d[d[c.location].isin(order)].copy()
        part["_lorder"] = part[c.location].map(order)
        part["_eorder"] = (part["effect"] != HELPS).astype(int)
        part = part.sort_values(["_lorder", "_eorder", "order"], kind="mergesort")
        part["group"] = f"{group} stable"
        part["Location"] = part[c.location].map(info[_name_col(ctx)])
        part["rank"] = part[c.location].map(info[rank]).astype("Int64")
        part["index"] = part[c.location].map(info[ctx.index_id])
        part["Summary"] = part[c.location].map(summaries)
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    out["Indicator"] = out["label"]
    out["Pillar"] = out["pillar"].map(lambda p: ctx.spec.label(p))
    out["Answer"] = out["phrase"]
    out["Points"] = out["contribution"].astype(float) + 0.0
    out["Score"] = out["score"].astype(float) + 0.0
    out["Median"] = out["reference"].astype(float) + 0.0
    return out[cols].reset_index(drop=True)


def driver_summaries(ctx, which: str = "most") -> list[str]:
    """One line per location of the ``"most"`` or ``"least"`` stable group, in plain words.

    ``"Tessalit (rank 40 in region, index 31.2): Less stable than the Kidal median
    (31.2 against 52.0), mainly because: armed groups present in or near the
    location and robbery in the last 3 months. Helped by: no tension between
    communities."`` (see :func:`stability.explain.summary_lines`).
    """
    if which not in ("most", "least"):
        raise ValueError("which must be 'most' or 'least'")
    frame = extremes(ctx)[which]
    summaries = _summaries(ctx)
    rank = _rank_col(ctx)
    where = " in region" if rank == "rank_region" else ""
    lines = []
    for _, row in frame.iterrows():
        r = f"rank {int(row[rank])}{where}, " if pd.notna(row[rank]) else ""
        lines.append(f"{row[_name_col(ctx)]} ({r}index {number(row[ctx.index_id])}): "
                     f"{summaries.get(row[ctx.columns.location], '')}")
    return lines


def drivers_table(ctx, which: str = "most", tidy: pd.DataFrame | None = None) -> pd.DataFrame:
    """Display version of :func:`drivers` for the ``"most"`` or ``"least"`` stable locations.

    One row per location and position (1 to 3): the location's name, rank and
    index on its first row; the answers that help it most ("Helps") and hold it
    back most ("Holds back"), in plain words, each with its contribution in index
    points to the gap to the region's median profile.  Cells are text, blank
    where there is nothing to show.
    """
    if which not in ("most", "least"):
        raise ValueError("which must be 'most' or 'least'")
    d = drivers(ctx) if tidy is None else tidy
    d = d[d["group"] == f"{which} stable"]
    rank_label = "Rank in region" if _rank_col(ctx) == "rank_region" else "Rank"
    cols = ["Location", rank_label, index_label(ctx), "Helps", "Points gained", "Holds back", "Points lost"]
    if d.empty:
        return pd.DataFrame(columns=cols)
    loc = ctx.columns.location
    d = d.assign(_cell=[number(p, sign=True) for p in d["Points"]])
    ref = _reference_name(ctx)
    rows = []
    for _, g in d.groupby(loc, sort=False):
        up, down = g[g["effect"] == HELPS], g[g["effect"] == HOLDS_BACK]
        first = g.iloc[0]
        for k in range(max(len(up), len(down), 1)):
            rows.append({
                "Location": first["Location"] if k == 0 else "",
                rank_label: f"{int(first['rank'])}" if k == 0 and pd.notna(first["rank"]) else "",
                index_label(ctx): number(first["index"]) if k == 0 else "",
                "Helps": up["Answer"].iloc[k] if k < len(up) else (f"nothing better than {ref}"
                                                                   if k == 0 else ""),
                "Points gained": up["_cell"].iloc[k] if k < len(up) else "",
                "Holds back": down["Answer"].iloc[k] if k < len(down) else (f"nothing worse than {ref}"
                                                                            if k == 0 else ""),
                "Points lost": down["_cell"].iloc[k] if k < len(down) else "",
            })
    return pd.DataFrame(rows, columns=cols)


# --------------------------------------------------------------------------- data quality
def _log_in_scope(ctx) -> pd.DataFrame:
    """Audit-log rows about this round's locations of the report (cell-level entries)."""
    log = ctx.result.log
    locs = set(ctx.current[ctx.columns.location])
    keep = log["location"].isin(locs)
    if ctx.columns.round:
        keep &= log["round"] == ctx.round
    return log[keep]


def _log_transformed(ctx) -> list[str]:
    """Indicators log-transformed by the outlier treatment for this round."""
    log = ctx.result.log
    rows = log[log["action"] == "log_transformed"]
    if ctx.columns.round and ctx.spec.normalise.scope == "round":
        rows = rows[rows["round"] == ctx.round]
    return list(dict.fromkeys(rows["column"]))


def _rows_of_current(ctx, table: pd.DataFrame) -> pd.DataFrame:
    """Rows of a table indexed by (location[, round]) for this round's locations of the report."""
    c = ctx.columns
    cur = ctx.current
    if c.round and isinstance(table.index, pd.MultiIndex):
        idx = pd.MultiIndex.from_arrays([cur[c.location].to_numpy(), cur[c.round].to_numpy()])
    else:
        idx = pd.Index(cur[c.location].to_numpy())
    return table.reindex(idx)


def _stage_rows(ctx, name: str) -> pd.DataFrame:
    """Rows of a stage table for this round's locations of the report."""
    return _rows_of_current(ctx, ctx.result.stage(name))


def _flags_in_scope(ctx) -> pd.DataFrame | None:
    flags = ctx.result.disagreement_flags
    if flags is None:
        return None
    return _rows_of_current(ctx, flags).fillna(False).astype(bool)


def data_quality(ctx) -> pd.DataFrame:
    """Data-quality notes of this round and region (see :func:`compute_data_quality`); computed once per report
    and reused by the workbook."""
    return _once(ctx, "data_quality", lambda: compute_data_quality(ctx))


def compute_data_quality(ctx) -> pd.DataFrame:
    """Data-quality notes of this round and region: one row per check.

    Missing answers, imputed and winsorised values (from the audit log),
    log-transformed indicators, scores dropped for too few answers, key-informant
    disagreement, locations with few informants, and locations that cannot be
    mapped (no coordinates, invalid ones, or outside the country of their
    p-codes: :func:`stability.locations.unmappable`; they keep their scores and
    ranks, only the maps leave them out).

    Returns
    -------
    DataFrame
        Columns ``Check``, ``Count``, ``Share (%)`` and ``Details``.
    """
    from ..locations import unmappable

    cur = ctx.current
    n_loc = len(cur)
    n_ind = len(ctx.spec.indicators)
    cells = n_loc * n_ind
    log = _log_in_scope(ctx)
    rows = []

    def add(check, count, share=np.nan, details=""):
        rows.append({"Check": check, "Count": count, "Share (%)": share, "Details": details})

    add("Locations assessed", n_loc, np.nan, f"{n_ind} indicators each, {_int(cells)} indicator values")
    if "n_informants" in cur.columns:
        ki = cur["n_informants"]
        add("Key informants interviewed", int(ki.sum()), np.nan,
            f"{number(ki.median(), 0)} per location (median), {_int(ki.min())} to {_int(ki.max())}")
        few = cur[ki < FEW_INFORMANTS]
        names = ", ".join(map(str, few[_name_col(ctx)].head(5)))
        add(f"Locations with fewer than {FEW_INFORMANTS} key informants", len(few), _share(len(few), n_loc),
            names + (" ..." if len(few) > 5 else ""))
    why = unmappable(cur, ctx.columns)  # no coordinates, invalid ones, or outside the country: not on the maps
    if why is not None:
        lost = (why != "").to_numpy()
        named = [f"{n} ({w})" for n, w in zip(cur[_name_col(ctx)].to_numpy()[lost][:5], why.to_numpy()[lost][:5])]
        add("Locations that cannot be mapped", int(lost.sum()), _share(int(lost.sum()), n_loc),
            ", ".join(named) + (" ..." if lost.sum() > 5 else ""))
    raw = _stage_rows(ctx, "raw")
    n_missing = int(raw.isna().to_numpy().sum())
    worst = raw.isna().sum().sort_values(ascending=False, kind="mergesort")
    worst = worst[worst > 0].head(3)
    add("Indicator values without any answer", n_missing, _share(n_missing, cells),
        "most often: " + ", ".join(f"{ctx.spec.label(i)} ({v})" for i, v in worst.items()) if len(worst) else "")
    imputed = log[log["action"] == "imputed"]
    add("Imputed values", len(imputed), _share(len(imputed), cells), f"method: {_impute_method(ctx)}")
    wins = log[log["action"] == "winsorised"]
    add("Winsorised values (outliers pulled in)", len(wins), _share(len(wins), cells),
        ", ".join(f"{ctx.spec.label(i)} ({v})" for i, v in wins["column"].value_counts().items()))
    logged = _log_transformed(ctx)
    add("Log-transformed indicators", len(logged), _share(len(logged), n_ind),
        ", ".join(ctx.spec.label(i) for i in logged))
    dropped = log[(log["action"] == "dropped") & (log["step"] == "aggregate")]
    add("Scores not computed (too few answers)", len(dropped), np.nan,
        ", ".join(f"{ctx.spec.label(i)} ({v})" for i, v in dropped["column"].value_counts().items()))
    flags = _flags_in_scope(ctx)
    if flags is not None:
        n_flags = int(flags.to_numpy().sum())
        n_locs = int(flags.any(axis=1).sum())
        thr = ctx.spec.combine.disagreement_threshold
        add("Key informants disagree (indicator values flagged)", n_flags, _share(n_flags, cells),
            f"at {n_locs} locations; flagged when disagreement >= {thr:g} of the answer range")
    out = pd.DataFrame(rows)
    out["Count"] = out["Count"].astype("Int64")
    return out


def _impute_method(ctx) -> str:
    s = ctx.spec.impute
    admin = list(ctx.columns.admin)
    group = admin_term(admin.index(s.group) + 1, ctx) if s.group in admin else s.group
    text = s.method.replace("group_", "").replace("_", " ") + (f" of the same {group}" if s.group else "")
    return text + (f", else {s.fallback} of the round" if s.fallback not in ("none", None) else "")


def indicator_quality(ctx, top: int = 10) -> pd.DataFrame:
    """Indicators with the most data issues in this round and region.

    Returns
    -------
    DataFrame
        Up to ``top`` indicators with at least one issue, most issues first:
        ``Indicator``, ``Pillar``, ``No answer``, ``Imputed``, ``Winsorised``,
        ``Informants disagree``.
    """
    ids = ctx.spec.indicator_ids
    log = _log_in_scope(ctx)
    raw = _stage_rows(ctx, "raw")
    counts = pd.DataFrame(index=ids)
    counts["No answer"] = raw.isna().sum().reindex(ids).fillna(0)
    counts["Imputed"] = log.loc[log["action"] == "imputed", "column"].value_counts().reindex(ids).fillna(0)
    counts["Winsorised"] = log.loc[log["action"] == "winsorised", "column"].value_counts().reindex(ids).fillna(0)
    flags = _flags_in_scope(ctx)
    if flags is not None:
        counts["Informants disagree"] = flags.sum().reindex(ids).fillna(0)
    counts = counts.astype(int)
    total = counts.sum(axis=1)
    counts = counts[total > 0]
    order = total[total > 0].sort_values(ascending=False, kind="mergesort").index
    counts = counts.loc[order].head(top)
    out = counts.reset_index(names="id")
    out.insert(0, "Indicator", out["id"].map(ctx.spec.label))
    out.insert(1, "Pillar", out["id"].map(lambda i: ctx.spec.label(ctx.spec.indicator(i).parent)))
    return out.drop(columns="id")


# --------------------------------------------------------------------------- method
def method_note(ctx) -> pd.DataFrame:
    """Provenance and method of the report: one row per item (``Item``, ``Value``)."""
    from .. import __version__
    from ..pipeline import method_summary

    src = ctx.result.source
    rows = {}
    if ctx.illustrative:
        rows["WARNING"] = ILLUSTRATIVE_NOTE
    rows["Report"] = ctx.title
    rows["Survey round"] = str(ctx.round)
    rows["Previous round"] = "none (first round)" if ctx.previous_round is None else str(ctx.previous_round)
    rows["Dataset"] = str(src.get("name", ""))
    rows[DATA_VERSION_ITEM] = ctx.result.data_version
    summary = method_summary(ctx.spec)
    rows["Specification"] = summary.pop("spec")
    rows[SPEC_HASH_ITEM] = summary.pop("spec hash")
    rows["Toolkit version"] = summary.pop("toolkit version", __version__)
    rows.update({k[:1].upper() + k[1:]: v for k, v in summary.items()})
    rows.update(method_words(ctx))
    rows["Scale"] = (f"0-{scale(ctx):g}, {scale(ctx):g} = most stable; rank 1 = most stable "
                     "(ties share the lowest rank)")
    from . import uncertainty

    if uncertainty.available(ctx):
        info = uncertainty.about(ctx)
        rows["Change"] = ("index minus the same location's index in the previous round; 'improved' / 'worsened' = "
                          f"beyond noise: the {uncertainty.level_text(ctx)} interval of the change over the runs "
                          "excludes 0")
        rows["Uncertainty"] = (f"{info['runs']:,} runs ({info['sources'].replace('+', ' and ')}), seed "
                               f"{info['seed']}; intervals: {uncertainty.level_text(ctx)} of the runs; robust "
                               f"category: the same in at least {info['robust'] * 100:g} % of the runs"
                               + (f"; {info['origin']}" if info.get("origin") else ""))
    else:
        rows["Change"] = (f"index minus the same location's index in the previous round; 'improved' / "
                          f"'worsened' = more than {CHANGE_THRESHOLD:g} points")
    rows["Weights"] = " ".join(weights_words(ctx))
    from ..explain import min_driver

    floor = min_driver(ctx.spec)
    rows["Drivers"] = ("each indicator's contribution, in index points, to the gap between the location's index "
                       "and the median profile of its region in this round (every indicator at the region's "
                       "median score, aggregated like the index); "
                       + (f"contributions under {number(floor, 2)} points are not named; " if floor else "")
                       + "answers in words are the key informants' combined answers")
    return pd.DataFrame({"Item": list(rows), "Value": list(rows.values())})


def method_words(ctx) -> dict[str, str]:
    """The method note's imputation, outlier treatment, normalisation and aggregation in words for readers
    (the registries' ``plain`` words; the specification file has the options themselves)."""
    from ..aggregate import AGGREGATIONS
    from ..normalise import NORMALISERS

    spec = ctx.spec
    n = spec.normalise
    scope = {"round": "each round's own values", "pooled": "all rounds together",
             "reference": f"round {n.reference_round} (the reference round), applied to every round"}[n.scope]
    words = {"Imputation": ("missing answers stay missing" if spec.impute.method == "none"
                            else f"a missing answer takes the {_impute_method(ctx)}")}
    t = spec.treat
    if t.method != "none":
        words["Outlier treatment"] = (
            f"an indicator with skewness beyond ±{t.skew_thresh:g} and kurtosis above {t.kurt_thresh:g} has its "
            f"most extreme values pulled in (winsorised, up to {t.winmax} values)"
            + ("; when that is not enough it is log-transformed" if t.log_fallback else ""))
    plain = NORMALISERS[n.method].meta.get("plain", n.method).format(**n.model_dump())
    overridden = any(ind.normalise is not None and ind.normalise.method for ind in spec.indicators)
    words["Normalisation"] = (f"each indicator {plain}" + (", unless the specification says otherwise for it"
                                                          if overridden else "")
                              + f"; statistics taken from the data (imputation, outliers, ranges) come from {scope}")
    levels = spec.levels
    parts = []
    for below, lv in zip(levels, levels[1:]):
        how = AGGREGATIONS[lv.method].meta.get("plain", lv.method).format(p=lv.p if lv.p is not None else 1)
        need = (f", computed when at least {lv.threshold:.0%} of them have a value" if lv.threshold is not None
                else "")
        parts.append(f"{lv.name.lower()}: {how} of its {below.name.lower()}s{need}")
    words["Aggregation"] = "; ".join(parts)
    return words


def weights_words(ctx) -> list[str]:
    """The weights in use, one plain sentence per level (see :func:`stability.weights.describe`)."""
    from ..weights import describe

    return describe(ctx.result)


def weights_table(ctx) -> pd.DataFrame:
    """The weights in use: ``Part of``, ``Counts`` (labels), ``Weight %`` (share of its part) and ``How``
    (equal, as written, or the weighting method that derived them)."""
    from ..weights import WEIGHTINGS

    w = ctx.result.weights
    how = {"written": "as written in the specification"}
    how.update({m.name: m.meta.get("plain", m.name).split(" (")[0].split(",")[0] for m in WEIGHTINGS})
    return pd.DataFrame({
        "Part of": [ctx.spec.label(x) for x in w["parent"]],
        "Counts": [ctx.spec.label(x) for x in w["child"]],
        "Weight %": (w["weight"] * 100.0).to_numpy(),
        "How": [how.get(m, m).format(outcome="the outcome") for m in w["method"]],
    })


# --------------------------------------------------------------------------- country overview
#: Bootstrap of the median index of each region: confidence level, resamples, seed (fixed: same numbers every run).
CI_LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20240601
#: Differences between regions are called significant below this (Holm-adjusted) p-value.
ALPHA = 0.05
CI_LOW, CI_HIGH = "Median 95 % CI low", "Median 95 % CI high"


def median_ci(values, level: float = CI_LEVEL, n_resamples: int = BOOTSTRAP_RESAMPLES,
              seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Bootstrap confidence interval of the median of ``values`` (missing values dropped).

    Percentile bootstrap (``scipy.stats.bootstrap``, ``method="percentile"``;
    BCa is unstable for the median of data with many ties), ``n_resamples``
    resamples from a generator seeded with ``seed``: the same values give the
    same interval.  ``(nan, nan)`` with fewer than 2 values.
    """
    from scipy.stats import bootstrap

    x = np.asarray(pd.to_numeric(pd.Series(values), errors="coerce").dropna(), dtype=float)
    if len(x) < 2:
        return float("nan"), float("nan")
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    res = bootstrap((x,), np.median, confidence_level=level, n_resamples=n_resamples, method="percentile",
                    vectorized=True, random_state=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def league_table(ctx) -> pd.DataFrame:
    """Regions ranked by their median index in this round (computed once per report, see :func:`compute_league_table`)."""
    return _once(ctx, "league_table", lambda: compute_league_table(ctx))


def compute_league_table(ctx) -> pd.DataFrame:
    """Regions ranked by their median index in this round.

    Returns
    -------
    DataFrame
        ``Rank`` (1 = highest median), ``Region``, ``P-code`` (the region's),
        ``Locations``, ``Median index``, ``Median 95 % CI low`` / ``high`` (bootstrap
        of the median, :func:`median_ci`), ``Mean index``, ``% <category>`` (share of
        the region's locations) per category, population sums and ``% of <people> in
        <category>`` (share of the region's IDPs / returnees living in locations of
        that category), ``Change of median since round <p>`` (when there is a
        previous round).
    """
    region = ctx.columns.admin[0]
    nat = ctx.national
    g = nat.groupby(region, sort=True)
    idx = g[ctx.index_id]
    out = pd.DataFrame({"Locations": g.size(), "Median index": idx.median()})
    cis = {p: median_ci(v) for p, v in idx}
    out[CI_LOW] = [cis[p][0] for p in out.index]
    out[CI_HIGH] = [cis[p][1] for p in out.index]
    out["Mean index"] = idx.mean()
    cats = categories_of(ctx, nat)
    shares = pd.crosstab(nat[region], cats, normalize="index") * 100.0
    labels = category_labels(ctx)
    for lab in labels:
        out[f"% {lab}"] = shares[lab] if lab in shares.columns else 0.0
    for col in population_columns(ctx):
        out[population_label(col)] = g[col].sum().round().astype("Int64")
    for col in population_columns(ctx):
        sums = nat.groupby([nat[region], cats])[col].sum().unstack(fill_value=0)
        total = sums.sum(axis=1)
        for lab in labels:
            part = sums[lab] if lab in sums.columns else pd.Series(0.0, index=sums.index)
            out[f"% of {population_label(col)} in {lab}"] = (part / total.where(total > 0) * 100.0).reindex(out.index)
    if ctx.previous_round is not None:
        before = _in_round(ctx, ctx.scores, ctx.previous_round).groupby(region)[ctx.index_id].median()
        # from the medians as shown (1 decimal), so that the table's numbers add up
        out[f"Change of median since round {ctx.previous_round}"] = (out["Median index"].round(1)
                                                                     - before.reindex(out.index).round(1))
    out.insert(0, "Rank", out["Median index"].rank(ascending=False, method="min").astype("Int64"))
    out.insert(1, admin_term(1).capitalize(), [ctx.regions.get(p, p) for p in out.index])
    out.insert(2, "P-code", out.index.astype(str))
    out = out.sort_values(["Rank", "P-code"], kind="mergesort", na_position="last").reset_index(drop=True)
    num = [k for k in out.columns if k.startswith(("Median", "Mean", "%", "Change"))]
    out[num] = out[num].astype(float).round(1) + 0.0
    return out


def country_table(ctx) -> pd.DataFrame | None:
    """The countries of the data compared in this round (computed once per report, see :func:`compute_country_table`)."""
    return _once(ctx, "country_table", lambda: compute_country_table(ctx))


def compute_country_table(ctx) -> pd.DataFrame | None:
    """The countries of the data compared in this round (None when the data hold one country).

    Columns: ``Country``, ``Regions``, ``Locations``, ``Median index`` with its 95 % bootstrap
    interval (:func:`median_ci`), ``% <category>`` per category and the people counts.  Countries are
    told apart by their regions' p-code prefix (``ML``, ``BF``, ``NE``).
    """
    from ..geo import COUNTRY_NAMES, country_of

    countries = countries_of(ctx)
    if len(countries) < 2:
        return None
    region = ctx.columns.admin[0]
    nat = ctx.national
    country = nat[region].map(country_of)
    cats = categories_of(ctx, nat)
    rows = []
    for iso in countries:
        name = COUNTRY_NAMES[iso]
        part = nat[country == iso]
        values = part[ctx.index_id]
        low, high = median_ci(values)
        row = {"Country": name, "Regions": part[region].nunique(), "Locations": len(part),
               "Median index": values.median(), CI_LOW: low, CI_HIGH: high}
        for lab in category_labels(ctx):
            row[f"% {lab}"] = _share((cats[country == iso] == lab).sum(), len(part))
        for col in population_columns(ctx):
            row[population_label(col)] = int(part[col].fillna(0).sum())
        rows.append(row)
    out = pd.DataFrame(rows)
    num = [k for k in out.columns if k.startswith(("Median", "%"))]
    out[num] = out[num].astype(float).round(1) + 0.0
    return out


def kruskal_test(groups) -> tuple[float, float]:
    """Kruskal–Wallis H and p-value across ``groups`` (mapping name -> values; missing values dropped).

    ``(nan, nan)`` with fewer than 2 groups of values, or when every value is the same.
    """
    from scipy.stats import kruskal

    data = [np.asarray(pd.Series(v, dtype=float).dropna()) for v in groups.values()]
    data = [d for d in data if len(d)]
    if len(data) < 2 or np.ptp(np.concatenate(data)) == 0:
        return float("nan"), float("nan")
    h, p = kruskal(*data)
    return float(h), float(p)


def dunn_test(groups) -> pd.DataFrame:
    """Dunn's pairwise z-tests after Kruskal–Wallis, Holm-adjusted over all pairs.

    All values are ranked together (average ranks for ties); for groups *i*, *j*
    with mean ranks R̄ and sizes n, of N values with tie groups of sizes t:

        z = (R̄i − R̄j) / sqrt((N(N+1)/12 − Σ(t³ − t) / (12(N − 1))) · (1/ni + 1/nj))

    and p = 2 (1 − Φ(|z|)) (two-sided).  The Holm correction
    (``statsmodels.stats.multitest.multipletests``) runs over every pair.

    Parameters
    ----------
    groups : mapping
        Name -> values (missing values dropped; empty groups left out), in the order the pairs are listed.

    Returns
    -------
    DataFrame
        One row per pair: ``a``, ``b``, ``mean_rank_a``, ``mean_rank_b``, ``z``, ``p``, ``p_adjusted``.
    """
    from scipy.stats import norm, rankdata
    from statsmodels.stats.multitest import multipletests

    cols = ["a", "b", "mean_rank_a", "mean_rank_b", "z", "p", "p_adjusted"]
    data = {k: np.asarray(pd.Series(v, dtype=float).dropna()) for k, v in groups.items()}
    data = {k: v for k, v in data.items() if len(v)}
    names = list(data)
    if len(names) < 2:
        return pd.DataFrame(columns=cols)
    allv = np.concatenate([data[k] for k in names])
    ranks = rankdata(allv)
    n_all = len(allv)
    _, ties = np.unique(allv, return_counts=True)
    variance = n_all * (n_all + 1) / 12.0 - float(np.sum(ties ** 3 - ties)) / (12.0 * (n_all - 1))
    mean_rank, start = {}, 0
    for k in names:
        mean_rank[k] = float(ranks[start:start + len(data[k])].mean())
        start += len(data[k])
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            se = np.sqrt(variance * (1.0 / len(data[a]) + 1.0 / len(data[b]))) if variance > 0 else 0.0
            z = (mean_rank[a] - mean_rank[b]) / se if se > 0 else 0.0
            rows.append({"a": a, "b": b, "mean_rank_a": mean_rank[a], "mean_rank_b": mean_rank[b], "z": z,
                         "p": float(2.0 * norm.sf(abs(z)))})
    out = pd.DataFrame(rows, columns=cols[:-1])
    out["p_adjusted"] = multipletests(out["p"].to_numpy(), method="holm")[1]
    return out


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def comparison_sentences(groups, names=None, what: str = "region", alpha: float = ALPHA) -> list[str]:
    """Plain sentences comparing ``groups`` (mapping key -> values): Kruskal–Wallis, then Dunn/Holm.

    Which pairs are named: each group against its neighbour in the league table
    (groups ordered by median, highest first, ties by key), because neighbours
    are the choices a reader of the league table weighs; a pair is called
    different only when its Holm-adjusted p (over all pairs) is below
    ``alpha``.  The neighbours that do not differ are listed in one sentence, so
    a reader does not take their order in the table as meaningful.  When the
    Kruskal–Wallis test is not significant, only that sentence is returned.

    Parameters
    ----------
    groups : mapping
        Key -> values of the index.
    names : mapping or None
        Key -> name used in the sentences (default: the key).
    what : str
        What a group is (``"region"``).
    alpha : float
        Significance level.
    """
    names = dict(names or {})
    data = {k: pd.Series(v, dtype=float).dropna() for k, v in groups.items()}
    data = {k: v for k, v in data.items() if len(v)}
    plural = f"{what}s"
    if len(data) < 2:
        return [f"Fewer than 2 {plural} have an index: no comparison between {plural}."]
    name = {k: str(names.get(k, k)) for k in data}
    med = {k: float(v.median()) for k, v in data.items()}
    h, p = kruskal_test(data)
    if not (p < alpha):  # also when nan (every value the same)
        stats = f"Kruskal–Wallis H = {number(h)}, {_p_text(p)}" if pd.notna(p) else "every value is the same"
        return [f"Across the {len(data)} {plural} there is no significant difference in the index ({stats})."]
    lines = [f"Across the {len(data)} {plural} the index differs (Kruskal–Wallis H = {number(h)}, {_p_text(p)})."]
    dunn = dunn_test(data)
    adj = {frozenset((a, b)): q for a, b, q in zip(dunn["a"], dunn["b"], dunn["p_adjusted"])}
    order = sorted(data, key=lambda k: (-med[k], str(k)))
    same = []
    for high, low in zip(order, order[1:]):
        q = adj[frozenset((high, low))]
        if q < alpha:
            verb = "is less stable than" if med[low] < med[high] else "differs from"
            lines.append(f"{name[low]} (median {number(med[low])}) {verb} {name[high]} ({number(med[high])}); the "
                         f"difference is significant (Dunn, Holm-adjusted {_p_text(q)}).")
        else:
            same.append(f"{name[high]} and {name[low]}")
    if same:
        lines.append(f"No significant difference between {plural} next to each other in the league table: "
                     f"{'; '.join(same)} (Dunn, Holm-adjusted p ≥ {alpha:g}); their order may be chance.")
    return lines


def _index_by_region(ctx) -> dict:
    region = ctx.columns.admin[0]
    return {p: v.to_numpy(dtype=float) for p, v in ctx.national.groupby(region, sort=True)[ctx.index_id]}


def region_tests(ctx) -> dict:
    """Tests of the differences between regions in this round (computed once per report, see :func:`compute_region_tests`)."""
    return _once(ctx, "region_tests", lambda: compute_region_tests(ctx))


def compute_region_tests(ctx) -> dict:
    """Tests of the differences between regions in this round (deterministic).

    Returns
    -------
    dict
        ``kruskal``: dict ``H``, ``p``, ``regions`` (number of regions with an index);
        ``dunn``: DataFrame of every pair of regions (``Region A``, ``Region B``,
        their ``P-code A`` / ``P-code B``, medians, ``z``, ``p``, ``Holm-adjusted p``,
        ``Significant``), see :func:`dunn_test`; ``sentences``: :func:`region_test_text`.
    """
    groups = _index_by_region(ctx)
    h, p = kruskal_test(groups)
    d = dunn_test(groups)
    term = admin_term(1).capitalize()
    med = {k: float(np.nanmedian(v)) if np.isfinite(v).any() else float("nan") for k, v in groups.items()}
    dunn = pd.DataFrame({
        f"{term} A": [ctx.regions.get(a, a) for a in d["a"]], f"{term} B": [ctx.regions.get(b, b) for b in d["b"]],
        "P-code A": d["a"].astype(object), "P-code B": d["b"].astype(object),
        "Median A": [med[a] for a in d["a"]], "Median B": [med[b] for b in d["b"]],
        "z": d["z"].astype(float), "p": d["p"].astype(float), "Holm-adjusted p": d["p_adjusted"].astype(float),
    })
    dunn["Significant"] = dunn["Holm-adjusted p"] < ALPHA
    n = sum(1 for v in groups.values() if np.isfinite(v).any())
    return {"kruskal": {"H": h, "p": p, "regions": n}, "dunn": dunn,
            "sentences": comparison_sentences(groups, ctx.regions, admin_term(1))}


def region_test_text(ctx) -> list[str]:
    """The differences between regions in plain sentences (see :func:`comparison_sentences`)."""
    return list(region_tests(ctx)["sentences"])


def population_by_region(ctx, column: str) -> pd.DataFrame:
    """People (``column``, e.g. ``idps``) living in each category per region, this round.

    Returns
    -------
    DataFrame
        Index: region names in the order of :func:`league_table`; one column per
        category (``not scored`` if any).
    """
    region = ctx.columns.admin[0]
    nat = ctx.national
    cats = categories_of(ctx, nat)
    table = nat.groupby([nat[region], cats])[column].sum().unstack(fill_value=0)
    order = _category_order(ctx, cats)
    regions = league_table(ctx)["P-code"]
    table = table.reindex(index=regions, columns=order, fill_value=0)
    table.index = [ctx.regions.get(p, p) for p in table.index]
    return table


# --------------------------------------------------------------------------- workbook
def default_output_dir(ctx) -> Path:
    """Where a notebook run by hand writes its workbook: ``reports/interactive/<round>/<region>``.

    ``<region>`` is the p-code, or ``overview`` for the country overview.  The
    published reports (``reports/<round>/<region>``) are written only by
    ``stability report``, which passes its own folder, so exploring a notebook
    in JupyterLab never replaces a workbook that programme teams use.
    """
    from ..paths import reports_dir

    return reports_dir() / INTERACTIVE / str(ctx.round) / (ctx.region or "overview")


def _with_note(ctx, table: pd.DataFrame) -> pd.DataFrame:
    if not ctx.illustrative:
        return table
    return table.assign(**{"Data note": "ILLUSTRATIVE data (generated, not a real survey)"})[
        ["Data note", *table.columns]]


def workbook_sheets(ctx) -> dict[str, pd.DataFrame]:
    """The sheets of the rankings workbook, in order (name -> table)."""
    sheets = {"Read me": method_note(ctx)}
    if ctx.region is not None:
        sheets["Ranked locations"] = _with_note(ctx, ranked_table(ctx))
        c = ctx.columns
        readable = {"group": "Group", c.location: "Location id", "rank": "Rank in region"
                    if _rank_col(ctx) == "rank_region" else "Rank", "index": index_label(ctx), "effect": "Effect",
                    "order": "Order", "indicator": "Indicator id", "Points": "Points (index)",
                    "Score": f"Score ({scale_text(ctx)})" if index_range(ctx) else "Score",
                    "Median": "Median score"}
        sheets["Drivers"] = _with_note(ctx, drivers(ctx).rename(columns=readable))
    else:
        sheets["League table"] = _with_note(ctx, league_table(ctx))
        countries = country_table(ctx)
        if countries is not None:
            sheets["Countries"] = _with_note(ctx, countries)
        sheets["All locations"] = _with_note(ctx, ranked_table(ctx))
    from . import pockets, trends
    from . import priorities as prio

    sheets.update(prio.workbook_sheets(ctx))
    sheets.update({name: _with_note(ctx, table) for name, table in pockets.workbook_sheets(ctx).items()})
    sheets.update({name: _with_note(ctx, table) for name, table in trends.workbook_sheets(ctx).items()})
    from . import uncertainty

    sheets.update({name: _with_note(ctx, table) for name, table in uncertainty.workbook_sheets(ctx).items()})
    sheets["Data quality"] = data_quality(ctx)
    sheets["Indicator data quality"] = indicator_quality(ctx, top=len(ctx.spec.indicators))
    sheets["Weights"] = weights_table(ctx)
    return sheets


def prepare(ctx) -> None:
    """Compute, through ``ctx``, the tables of a report that take longest (kept by :meth:`ReportContext.once`).

    Given as ``compute`` to :func:`stability.report.context.shared_tables`, it computes every
    report's own tables beforehand as well (``stability report`` leaves those to the kernels,
    which share that work; see :func:`prepare_round`).
    """
    from . import pockets, trends
    from . import priorities as prio

    prio.classified(ctx)
    prio.criteria_table(ctx)
    trends.workbook_sheets(ctx)
    pockets.workbook_sheets(ctx)
    pockets.pocket_text(ctx)
    data_quality(ctx)
    if ctx.region is None:
        league_table(ctx)
        country_table(ctx)
        region_tests(ctx)
    else:
        drivers(ctx)
        for which in ("most", "least"):
            driver_summaries(ctx, which)


def prepare_round(ctx) -> None:
    """Compute, through ``ctx``, the tables of the whole round that every report starts from (kept by
    :meth:`ReportContext.once_round`).

    ``stability report`` calls this in the process that computed the index and hands the tables to
    the notebooks with the cached result (:func:`stability.report.context.shared_tables`), so that no
    kernel classifies the whole country, or looks for its pockets of stability, again; each kernel
    derives its region's tables from them.
    """
    from . import pockets, trends
    from . import priorities as prio

    prio.classified(ctx)
    prio.criteria_table(ctx)
    trends.trend_table(ctx)
    if ctx.previous_round is not None:
        trends.changes_sheet(ctx)
    pockets.pocket_locations(ctx)


def write_rankings(ctx, output_dir: str | Path = "") -> Path:
    """Write the report's rankings workbook (``rankings.xlsx``) atomically.

    Parameters
    ----------
    ctx : ReportContext
    output_dir : str or Path
        Folder to write to; "" = :func:`default_output_dir`.

    Returns
    -------
    Path
        The workbook written.
    """
    from ..io import write_atomic, write_workbook

    folder = Path(output_dir) if str(output_dir).strip() else default_output_dir(ctx)
    sheets = workbook_sheets(ctx)
    return write_atomic(folder / WORKBOOK_NAME, lambda p: write_workbook(p, sheets, ctx.title))


def workbook_provenance(path: str | Path) -> dict[str, str]:
    """What a rankings workbook says it was built from, read cheaply from its read-me sheet.

    Parameters
    ----------
    path : str or Path
        A workbook written by :func:`write_rankings`.

    Returns
    -------
    dict
        ``spec_hash`` and ``data_version`` (empty when the workbook cannot be
        read or does not say).
    """
    import zipfile

    import openpyxl

    wanted = {SPEC_HASH_ITEM: "spec_hash", DATA_VERSION_ITEM: "data_version"}
    found = {v: "" for v in wanted.values()}
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return found
    try:
        sheet = book[book.sheetnames[0]]
        for row in sheet.iter_rows(min_row=2, max_col=2, values_only=True):
            if row and row[0] in wanted:
                found[wanted[row[0]]] = "" if row[1] is None else str(row[1])
            if all(found.values()):
                break
    finally:
        book.close()
    return found
