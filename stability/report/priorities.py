"""Report tables and text of the durable-solutions lens (:mod:`stability.priorities`).

Every function takes a :class:`~stability.report.context.ReportContext` (``ctx.result``,
``ctx.round``, ``ctx.region``) and returns plain data with reader-facing column names, using only
the public API of :class:`~stability.pipeline.Result` (``scores``, ``spec``, ``stage()``).

Admin-2 areas are named in the words of the report's country (:func:`area_term`: cercle in Mali,
province in Burkina Faso, department in Niger; ``admin-2 area`` for an overview of several countries).

==========================  ==================================================
the rule in words           :func:`rule_sentence`, :func:`area_term`
priority classes            :func:`class_summary`, :func:`class_by_region` (overview),
                            :func:`priorities_table`, :func:`table_note`
IASC criteria               :func:`criteria_table`, :func:`criteria_sentences`
workbook                    :func:`workbook_sheets`
==========================  ==================================================
"""

from __future__ import annotations

import pandas as pd

from .. import priorities as pr
from ..spec import IASC_CRITERIA
from . import content
from .content import in_scope

#: Locations shown per class in the report's priorities table.
TOP_PER_CLASS = 10
#: Sheet of the rankings workbook with every location, its class and its reason.
SHEET = "Priorities"
#: Sheet of the overview's workbook with the locations per class and region (:func:`class_by_region`).
REGION_SHEET = "Priority classes by region"
#: How the locations of each class are ordered in :func:`priorities_table`, in words (see :data:`ORDER_BY`).
ORDER_WORDS = {"urgent_return": "most returnees", "local_integration": "most IDPs",
               "candidate_return": "most IDPs in low-stability locations nearby", "displaced_low": "most IDPs",
               "monitor": "most IDPs and returnees", "no_displaced": "location id"}
#: The people count that orders the locations of each class (largest first) in :func:`priorities_table`.
ORDER_BY = {"urgent_return": "returnees", "local_integration": "idps", "candidate_return": "nearby_low_idps",
            "displaced_low": "idps", "monitor": "displaced", "no_displaced": "displaced"}
_ILLUSTRATIVE = "ILLUSTRATIVE data (generated, not a real survey)"


def _round_table(ctx, name, make):
    """``make()``, once per round for every region's report when the context keeps such tables."""
    once = getattr(ctx, "once_round", None)
    return once(name, make) if once is not None else make()


def classified(ctx) -> pd.DataFrame:
    """:func:`stability.priorities.classify` for the report's round, restricted to its region (if any)."""
    def make():
        table = _round_table(ctx, "priorities", lambda: pr.classify(ctx.result, ctx.round_value))
        return in_scope(ctx, table).reset_index(drop=True)

    once = getattr(ctx, "once", None)
    return once("priorities", make) if once is not None else make()


def area_term(ctx, neutral_only: bool = False) -> str:
    """What the report calls an admin-2 area (:func:`stability.report.content.admin_term`): ``cercle`` in
    Mali, ``province`` in Burkina Faso, ``department`` in Niger; for an overview of several countries
    ``admin-2 area (cercle, province or department)`` (``admin-2 area`` with ``neutral_only``)."""
    from ..locations import ADMIN_LEVEL_NAMES

    term = content.admin_term(2, ctx)
    if ctx.region is None and not neutral_only and term.startswith("admin-"):
        kinds = list(dict.fromkeys(ADMIN_LEVEL_NAMES[iso][1] for iso in content.countries_of(ctx)
                                   if iso in ADMIN_LEVEL_NAMES))
        if len(kinds) > 1:
            term += f" ({_or_words(kinds)})"
    return term


def _or_words(items) -> str:
    items = [str(x) for x in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def rule_sentence(ctx) -> str:
    """The classification rule and the criteria thresholds in words (from the spec), with the admin-2 areas
    named as in the report's country (:func:`area_term`)."""
    return pr.rule_text(ctx.result.spec, area_word=_nearby_word(ctx))


def _nearby_word(ctx, neutral_only: bool = False) -> str | None:
    """The ``nearby`` area of the candidate-return rule in words when it is the admin-2 area (:func:`area_term`),
    else None (the words of :func:`stability.priorities.rule_text`)."""
    spec = ctx.result.spec
    admin = spec.columns.admin
    nearby = pr.nearby_column(spec)
    return area_term(ctx, neutral_only) if nearby is not None and len(admin) > 1 and nearby == admin[1] else None


def _names(ids) -> str:
    return "; ".join(IASC_CRITERIA[i] for i in ids)


def _people(table: pd.DataFrame, column: str) -> pd.Series:
    return table[column].fillna(0) if column in table.columns else pd.Series(0.0, index=table.index)


def class_summary(ctx) -> pd.DataFrame:
    """Locations, IDPs and returnees per priority class in the report's scope (region or country).

    Columns: ``Class``, ``Locations``, ``IDPs``, ``Returnees``; every class appears (zeros included).
    """
    p = ctx.result.spec.priorities
    t = classified(ctx)
    d = pd.DataFrame({"class_id": t["class_id"], "Locations": 1, "IDPs": _people(t, p.idp_column),
                      "Returnees": _people(t, p.returnee_column)})
    g = d.groupby("class_id").sum().reindex(list(pr.CLASSES), fill_value=0)
    g = g.round().astype("int64")
    g.insert(0, "Class", [pr.CLASSES[k] for k in g.index])
    return g.reset_index(drop=True)


def priorities_table(ctx, top: int = TOP_PER_CLASS, include_none: bool = False) -> pd.DataFrame:
    """The top ``top`` locations of each priority class with their reasons (all when ``top`` is None).

    Classes in the order of :data:`stability.priorities.CLASSES`; within a class, largest
    :data:`ORDER_BY` count first, then location id.  Locations without displaced people are left
    out unless ``include_none``.

    Columns (each only when the data have it): ``Class``, ``Location``, ``Region`` (overview), the admin-2
    area (``Cercle``, ``Province``, ``Department`` or ``Admin-2 area``: :func:`area_term`), ``IDPs``,
    ``Returnees``, ``Category``, with an uncertainty analysis ``Category confidence`` (``high · 42 %``: a class
    that rests on a category the runs do not confirm shows it), the index (its label), ``Unmet IASC
    criteria``, ``Reason``, ``Location id``.
    """
    spec = ctx.result.spec
    c, p = spec.columns, spec.priorities
    t = classified(ctx).copy()
    t["displaced"] = _people(t, p.idp_column) + _people(t, p.returnee_column)
    order = pd.Series(0.0, index=t.index)
    for k, col in ORDER_BY.items():  # each class ordered by its own count (missing counts last, as 0)
        if col in t.columns:
            rows = (t["class_id"] == k).to_numpy()
            order[rows] = pd.to_numeric(t.loc[rows, col], errors="coerce").astype(float).fillna(0.0).to_numpy()
    t["_order"] = order
    t["_class"] = t["class_id"].map({k: n for n, k in enumerate(pr.CLASSES)})
    if not include_none:
        t = t[t["class_id"] != "no_displaced"]
    t = t.sort_values(["_class", "_order", c.location], ascending=[True, False, True], kind="mergesort")
    if top is not None:
        t = t.groupby("_class", sort=False).head(top)
    out = pd.DataFrame(index=t.index)
    out["Class"] = t["class"]
    out["Location"] = t[c.name] if c.name and c.name in t.columns else t[c.location]
    if ctx.region is None and len(c.admin_names) > 0 and c.admin_names[0] in t.columns:
        out["Region"] = t[c.admin_names[0]]
    if len(c.admin_names) > 1 and c.admin_names[1] in t.columns:
        out[area_term(ctx, neutral_only=True).capitalize()] = t[c.admin_names[1]]
    for col, label in ((p.idp_column, "IDPs"), (p.returnee_column, "Returnees")):
        if col in t.columns:
            out[label] = t[col].round().astype("Int64")
    out["Category"] = t["category"].astype(object)
    from . import uncertainty

    sure = uncertainty.ranked_columns(ctx, t[c.location], pd.Series([None] * len(t), index=t.index), out["Category"])
    if sure is not None:  # a class resting on a category the runs do not confirm shows it
        out[uncertainty.CONFIDENCE_COLUMN] = sure[uncertainty.CONFIDENCE_COLUMN]
    out[spec.label(spec.root.id)] = t[spec.root.id].round(1)
    out["Unmet IASC criteria"] = t["criteria_unmet"].map(_names)
    out["Reason"] = t["reason"] + _pocket_words(ctx, t[c.location])
    out["Location id"] = t[c.location]
    return out.reset_index(drop=True)


def _shown_counts(ctx, top: int | None = TOP_PER_CLASS) -> list[tuple[str, int, int]]:
    """``(class id, shown, of)`` for each class with displaced people in :func:`priorities_table`."""
    counts = classified(ctx)["class_id"].value_counts()
    return [(k, int(counts.get(k, 0)) if top is None else min(top, int(counts.get(k, 0))), int(counts.get(k, 0)))
            for k in pr.CLASSES if k != "no_displaced" and counts.get(k, 0)]


def table_note(ctx, top: int | None = TOP_PER_CLASS) -> str | None:
    """How many locations of each class :func:`priorities_table` shows, of how many, and where the full list
    is (the workbook's Priorities sheet); None when the table shows every location with displaced people."""
    counts = _shown_counts(ctx, top)
    if not any(shown < of for _, shown, of in counts):
        return None
    words = dict(ORDER_WORDS)
    area = _nearby_word(ctx, neutral_only=True)
    if area:
        words["candidate_return"] = f"most IDPs in low-stability locations of the same {area}"
    parts = [f"{pr.CLASSES[k].lower()}, {shown:,} of {of:,}" + (f" ({words[k]} first)" if shown < of else "")
             for k, shown, of in counts]
    total = len(classified(ctx))
    return (f"Shown: at most {pr.plural(top, 'location')} per class, those with the most people concerned "
            f"\u2014 {'; '.join(parts)}. All {pr.plural(total, 'location')} of "
            f"{ctx.region_name if ctx.region is not None else 'all regions'}, with the class and the reason of "
            f"each, are in the \u201c{SHEET}\u201d sheet of the rankings workbook ({content.WORKBOOK_NAME}).")


def class_by_region(ctx) -> pd.DataFrame | None:
    """Locations per priority class and region, for the overview (None for a region's report, or without a
    region column).

    One row per region (in p-code order, named as in the report), then a ``Total`` row; columns: the region
    (``Region``), one column per class of :data:`stability.priorities.CLASSES` (zeros included), ``All
    locations`` and ``P-code``.
    """
    admin = ctx.result.spec.columns.admin
    if ctx.region is not None or not admin:
        return None
    t = classified(ctx)
    col = admin[0]
    if col not in t.columns:
        return None
    counts = pd.crosstab(t[col], t["class_id"]).reindex(columns=list(pr.CLASSES), fill_value=0)
    order = [p for p in ctx.regions if p in counts.index] + sorted(p for p in counts.index if p not in ctx.regions)
    counts = counts.reindex(order).astype("int64")
    counts.columns = [pr.CLASSES[k] for k in counts.columns]
    counts["All locations"] = counts.sum(axis=1)
    counts.loc["Total"] = counts.sum(axis=0)
    out = counts.reset_index(drop=True)
    out.insert(0, content.admin_term(1).capitalize(), [ctx.regions.get(p, p) for p in order] + ["Total"])
    out["P-code"] = [*order, ""]
    return out


def criteria_by_region(ctx) -> pd.DataFrame | None:
    """How each measured IASC criterion looks in each region, for the overview (None for a region's report, or
    without a region column): one row per region (named as in the report), one column per measured criterion
    with its status (met, partly, unmet), and ``P-code``."""
    admin = ctx.result.spec.columns.admin
    if ctx.region is not None or not admin:
        return None
    t = _round_table(ctx, ("criteria_by", "region"), lambda: pr.criteria_by(ctx.result, ctx.round_value, by="region"))
    col = admin[0]
    t = t[t["status"] != pr.NOT_MEASURED]
    if col not in t.columns or not len(t):
        return None
    wide = t.pivot(index=col, columns="criterion", values="status")
    wide = wide[[c for c in pr.IASC_CRITERIA if c in wide.columns]]
    order = [p for p in ctx.regions if p in wide.index] + sorted(p for p in wide.index if p not in ctx.regions)
    wide = wide.reindex(order)
    out = pd.DataFrame({content.admin_term(1).capitalize(): [ctx.regions.get(p, p) for p in order]})
    for crit in wide.columns:
        out[pr.IASC_CRITERIA[crit].capitalize()] = wide[crit].to_numpy()
    out["P-code"] = order
    return out


def _pocket_words(ctx, ids: pd.Series) -> pd.Series:
    """``"; in pocket of stability P3 near Douentza (Douentza)"`` for the locations of a named pocket or hotspot."""
    from .pockets import pocket_areas, pocket_locations

    c = ctx.result.spec.columns
    if not (c.longitude and c.latitude):
        return pd.Series("", index=ids.index)
    loc = pocket_locations(ctx)
    names = pocket_areas(ctx).set_index("area")["name"].to_dict()
    named = {i: f"; in {cls} {area} {names.get(area, '')}".rstrip()
             for i, cls, area in zip(loc[c.location], loc["class"], loc["area"]) if isinstance(area, str)}
    return pd.Series([named.get(i, "") for i in ids], index=ids.index, dtype=object)


def criteria_table(ctx) -> pd.DataFrame:
    """How each IASC criterion looks in the report's scope this round (all eight, measured or not).

    Columns: ``Criterion``, ``Indicators`` (labels of the tagged indicators, ``none`` when not
    measured), ``Mean score (% of scale)``, ``Status`` (met, partly, unmet, not measured: of the
    mean), ``Locations met``, ``Locations partly``, ``Locations unmet``.  Computed once per report.
    """
    once = getattr(ctx, "once", None)
    return once("criteria_table", lambda: _criteria_table(ctx)) if once is not None else _criteria_table(ctx)


def _criteria_table(ctx) -> pd.DataFrame:
    spec = ctx.result.spec
    admin = spec.columns.admin
    by = "region" if (ctx.region is not None and admin) else None
    t = _round_table(ctx, ("criteria_by", by), lambda: pr.criteria_by(ctx.result, ctx.round_value, by=by))
    col = admin[0] if by else pr.ALL
    if by:
        t = t[t[col] == ctx.region]
    tagged = pr.measured(spec)
    out = pd.DataFrame({
        "Criterion": t["criterion_name"].str.capitalize(),
        "Indicators": [", ".join(spec.label(i) for i in tagged[k]) or "none" for k in t["criterion"]],
        "Mean score (% of scale)": (t["share"] * 100).round(1),
        "Status": t["status"],
        "Locations met": t[pr.MET], "Locations partly": t[pr.PARTLY], "Locations unmet": t[pr.UNMET]})
    return out.reset_index(drop=True)


def criteria_sentences(ctx) -> list[str]:
    """Which criteria look met, partly met, unmet and not measured in the report's scope."""
    t = criteria_table(ctx)
    # the overview judges all locations pooled: a region can differ (its own report says how)
    where = f"In {ctx.region_name}" if ctx.region is not None else "Across all regions pooled"
    lines = []
    for status, words in ((pr.MET, "look met"), (pr.PARTLY, "look partly met"), (pr.UNMET, "look unmet"),
                          (pr.NOT_MEASURED, "are not measured (no indicator of the survey informs them)")):
        names = t.loc[t["Status"] == status, "Criterion"].str.lower().tolist()
        if names:
            lines.append(f"{where}, these IASC criteria {words}: {'; '.join(names)}.")
    if ctx.region is None and lines and criteria_by_region(ctx) is not None:
        lines.append("A region's own locations can look otherwise: the table below gives each region's status "
                     "(as its report does).")
    return lines


def _with_note(ctx, table: pd.DataFrame) -> pd.DataFrame:
    if not ctx.result.illustrative:
        return table
    return table.assign(**{"Data note": _ILLUSTRATIVE})[["Data note", *table.columns]]


def workbook_sheets(ctx) -> dict[str, pd.DataFrame]:
    """Sheets for the rankings workbook: ``Priorities`` (every location with its class and reason),
    ``Priority classes`` (counts and people per class), for the overview ``Priority classes by region``
    (:func:`class_by_region`), ``IASC criteria``, for the overview ``IASC criteria by region``
    (:func:`criteria_by_region`) and ``Priority rule``."""
    sheets = {
        SHEET: _with_note(ctx, priorities_table(ctx, top=None, include_none=True)),
        "Priority classes": _with_note(ctx, class_summary(ctx)),
    }
    by_region = class_by_region(ctx)
    if by_region is not None:
        sheets[REGION_SHEET] = _with_note(ctx, by_region)
    sheets["IASC criteria"] = _with_note(ctx, criteria_table(ctx))
    per_region = criteria_by_region(ctx)
    if per_region is not None:
        sheets["IASC criteria by region"] = _with_note(ctx, per_region)
    sheets["Priority rule"] = pd.DataFrame({"Rule": [rule_sentence(ctx), *criteria_sentences(ctx)]})
    return sheets
