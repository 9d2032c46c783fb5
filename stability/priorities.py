"""The durable-solutions lens: IASC criteria met or unmet, and priority classes per location.

Two readings of a computed index (:class:`~stability.pipeline.Result`) for the teams who plan
return, local integration and relocation.  Neither changes a number of the index; both read the
spec's ``priorities`` section (:class:`~stability.spec.Priorities`) and the indicators' ``iasc``
tags.

**IASC criteria.**  Each indicator may be tagged with the criterion of the IASC Framework on
Durable Solutions it informs (:data:`~stability.spec.IASC_CRITERIA`).  Per location and round,
a criterion's score is the mean of its indicators' normalised scores, each as a share of its scale
(0 = least, 1 = most stable; for normalisations without a fixed scale, the share of the round's
locations scoring lower or the same).  The criterion is

* **met** when that share is at least ``priorities.met`` (default: the highest category cut-off as
  a share of the index's range: 0.6 for cuts 40 and 60 on 0-100);
* **unmet** below ``priorities.unmet`` (default: the lowest cut-off: 0.4);
* **partly** met in between;
* **not measured** when no indicator is tagged with it (or all its indicators are missing there).

**Priority classes.**  Every location and round falls in the first class whose rule holds:

1. *urgent conditions for return*: at least ``returnees`` returnees (or ``returnee_share`` of the
   population) in a low-stability location (the lowest category);
2. *local integration opportunity*: at least ``idps`` IDPs (or ``idp_share`` of the population) in
   a high-stability location (the highest category);
3. *candidate area of return*: a high-stability location in a ``nearby`` area (default the admin-2
   area: the cercle in Mali, the province in Burkina Faso, the department in Niger) whose low-stability
   locations host at least ``nearby_idps`` IDPs.  Origins of the displaced are not surveyed, so IDPs
   hosted in unstable places of the same area stand in for "displaced from nearby"; the location need
   not host displaced people itself;
4. *monitor*: any other location with IDPs or returnees;
5. *no displaced people*: not a priority.

Missing people counts count as 0; locations without an index (``category`` missing) are neither
low nor high stability.  Later, (2) should use pockets of stability (clusters of stable locations)
rather than single locations.

Examples
--------
>>> from stability.priorities import classify, summary      # doctest: +SKIP
>>> table = classify(result, round=3)                        # doctest: +SKIP
>>> summary(result, 3, by="region")                          # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .spec import DEFAULT_CATEGORY_SHARES, IASC_CRITERIA

#: Priority classes, in the order their rules are tried: id -> label.
CLASSES = {
    "urgent_return": "Urgent conditions for return",
    "local_integration": "Local integration opportunity",
    "candidate_return": "Candidate area of return",
    "displaced_low": "Displaced in low stability",
    "monitor": "Monitor",
    "no_displaced": "No displaced people",
}
#: Status of a criterion, most favourable first.
MET, PARTLY, UNMET, NOT_MEASURED = "met", "partly", "unmet", "not measured"
STATUSES = (MET, PARTLY, UNMET, NOT_MEASURED)
#: Tag of an indicator that deliberately informs no criterion.
UNTAGGED = "untagged"


# --------------------------------------------------------------------------- options
def thresholds(spec) -> tuple[float, float]:
    """``(met, unmet)``: shares of the scale from ``priorities`` or, by default, the category cut-offs."""
    p = spec.priorities
    lo_share, hi_share = DEFAULT_CATEGORY_SHARES[0], DEFAULT_CATEGORY_SHARES[-1]
    try:
        rule, cuts = spec.category_rule()
        rng = spec.index_range()
    except ValueError:
        rule, cuts, rng = "quantile", [], None
    if rule == "fixed" and rng is not None and cuts:
        lo, hi = rng
        lo_share, hi_share = (cuts[0] - lo) / (hi - lo), (cuts[-1] - lo) / (hi - lo)
    met = p.met if p.met is not None else hi_share
    unmet = p.unmet if p.unmet is not None else lo_share
    return float(met), float(min(unmet, met))


def tags(spec) -> pd.DataFrame:
    """Every indicator with its IASC criterion: ``indicator``, ``label``, ``criterion``, ``criterion_name``, ``note``.

    ``criterion`` is None for an indicator without a tag and ``untagged`` for one that deliberately
    informs no criterion.
    """
    rows = [{"indicator": i.id, "label": i.label or i.id, "criterion": i.iasc,
             "criterion_name": IASC_CRITERIA.get(i.iasc or "", ""), "note": i.iasc_note or ""}
            for i in spec.indicators]
    return pd.DataFrame(rows, columns=["indicator", "label", "criterion", "criterion_name", "note"])


def measured(spec) -> dict[str, list[str]]:
    """Criterion id -> ids of the indicators tagged with it (empty list: not measured)."""
    out: dict[str, list[str]] = {c: [] for c in IASC_CRITERIA}
    for ind in spec.indicators:
        if ind.iasc in out:
            out[ind.iasc].append(ind.id)
    return out


def nearby_column(spec) -> str | None:
    """The column of the ``nearby`` areas of the candidate-return rule: ``priorities.nearby``, else the
    admin-2 column (cercle, province, department), else the region column (None without admin columns)."""
    p, admin = spec.priorities, spec.columns.admin
    return p.nearby or (admin[1] if len(admin) > 1 else (admin[0] if admin else None))


#: What the reports call an admin-2 area of data whose country is not known from its p-codes.
DEFAULT_ADMIN2 = "cercle"


def admin2_term(region) -> str:
    """What an admin-2 area of the region with p-code ``region`` is called: ``cercle`` (Mali), ``province``
    (Burkina Faso), ``department`` (Niger); :data:`DEFAULT_ADMIN2` for a p-code of another country."""
    from .geo import country_of
    from .locations import ADMIN_LEVEL_NAMES

    names = ADMIN_LEVEL_NAMES.get(country_of(region))
    return names[1] if names and len(names) > 1 else DEFAULT_ADMIN2


def nearby_terms(spec, rows: pd.DataFrame) -> pd.Series:
    """What the ``nearby`` area of each row is called: the admin-2 word of the row's country (by its region
    p-code: :func:`admin2_term`), ``region``, or the name of the ``priorities.nearby`` column."""
    area, admin = nearby_column(spec), spec.columns.admin
    if area is not None and len(admin) > 1 and area == admin[1]:
        if admin[0] in rows.columns:
            codes = rows[admin[0]].astype(object)
            return codes.map({r: admin2_term(r) for r in codes.dropna().unique()}).fillna(DEFAULT_ADMIN2)
        return pd.Series(DEFAULT_ADMIN2, index=rows.index, dtype=object)
    word = "region" if area is not None and admin and area == admin[0] else (area or "round")
    return pd.Series(word, index=rows.index, dtype=object)


def plural(n, one: str, many: str | None = None) -> str:
    """``"1 IDP"``, ``"1,240 IDPs"``: a count with its noun in the singular or the plural."""
    n = int(round(float(n)))
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def _keys(spec) -> list[str]:
    c = spec.columns
    return [c.location] + ([c.round] if c.round else [])


def _select(result, round) -> pd.DataFrame:
    s = result.scores
    r = result.spec.columns.round
    if round is None or not r:
        return s
    return s[s[r] == round]


# --------------------------------------------------------------------------- criteria
def criterion_shares(result, round=None) -> pd.DataFrame:
    """Per location and round (rows of ``scores``), each criterion's mean score as a share of the scale.

    Columns: the keys, then one column per criterion of :data:`IASC_CRITERIA` (NaN when not measured).
    """
    from .normalise import score_bounds

    spec = result.spec
    keys = _keys(spec)
    rows = _select(result, round)
    norm = result.stage("normalised")
    norm = norm.reindex(pd.MultiIndex.from_frame(rows[keys]) if len(keys) > 1 else pd.Index(rows[keys[0]]))
    out = rows[keys].reset_index(drop=True)
    rcol = spec.columns.round
    full = result.stage("normalised")  # the ranks of unbounded scores are taken within the whole round
    for crit, ids in measured(spec).items():
        if not ids:
            out[crit] = np.nan
            continue
        parts = []
        for i in ids:
            b = score_bounds(spec, spec.indicator(i))
            if b is not None and b[1] > b[0]:
                share = (norm[i].to_numpy(dtype=float) - b[0]) / (b[1] - b[0])
            else:
                col = full[i]
                pct = (col.groupby(level=rcol).rank(pct=True, method="max") if rcol else col.rank(pct=True, method="max"))
                share = pct.reindex(norm.index).to_numpy(dtype=float)
            parts.append(np.clip(share, 0.0, 1.0))
        out[crit] = pd.DataFrame(np.column_stack(parts)).mean(axis=1, skipna=True).to_numpy()
    return out


def status_of(shares, met: float, unmet: float) -> np.ndarray:
    """Status (:data:`STATUSES`) of criterion shares: met, partly, unmet, or not measured where missing."""
    x = np.asarray(shares, dtype=float)
    return np.select([np.isnan(x), x >= met, x < unmet], [NOT_MEASURED, MET, UNMET], PARTLY).astype(object)


def criteria(result, round=None) -> pd.DataFrame:
    """Per location and round, the status of every IASC criterion (columns = criterion ids)."""
    met, unmet = thresholds(result.spec)
    shares = criterion_shares(result, round)
    keys = _keys(result.spec)
    out = shares[keys].copy()
    for crit in IASC_CRITERIA:
        out[crit] = status_of(shares[crit], met, unmet)
    return out


def _joined(status: pd.DataFrame, which: str) -> tuple[pd.Series, list[list[str]]]:
    """``"; "``-joined full names of the criteria with status ``which``, and the lists of their ids."""
    text = pd.Series("", index=status.index, dtype=object)
    for crit, name in IASC_CRITERIA.items():
        hit = (status[crit] == which).to_numpy()
        text = text.where(~hit, text + np.where(text == "", "", "; ") + name)
    mask = np.column_stack([(status[c] == which).to_numpy() for c in IASC_CRITERIA]) if len(status) else \
        np.zeros((0, len(IASC_CRITERIA)), dtype=bool)
    ids = np.array(list(IASC_CRITERIA))
    return text, [list(ids[m]) for m in mask]


def criteria_by(result, round, by: str | None = "region") -> pd.DataFrame:
    """Per area (``by``: ``region``, ``cercle``, a column, or None for all locations together), how each IASC criterion looks in ``round``.

    Returns
    -------
    DataFrame
        ``<area column>``, ``criterion``, ``criterion_name``, ``indicators`` (tagged), ``share`` (mean
        over the area's locations), ``status`` (of that mean: met, partly, unmet, not measured) and the
        number of locations where it is ``met``, ``partly``, ``unmet``, ``not measured``.  Every
        criterion appears for every area, measured or not.
    """
    spec = result.spec
    col = _area_column(spec, by)
    met, unmet = thresholds(spec)
    rows = _select(result, round).reset_index(drop=True)
    if by is None:
        rows = rows.assign(**{ALL: ALL})
    shares = criterion_shares(result, round)
    tagged = measured(spec)
    frames = []
    for crit, name in IASC_CRITERIA.items():
        st = pd.Series(status_of(shares[crit], met, unmet))
        d = pd.DataFrame({col: rows[col].to_numpy(), "share": shares[crit].to_numpy()})
        for s in STATUSES:
            d[s] = (st == s).to_numpy().astype(int)
        g = d.groupby(col, sort=True).agg(share=("share", "mean"), **{s: (s, "sum") for s in STATUSES})
        g.insert(0, "indicators", ", ".join(tagged[crit]) or "none")
        g.insert(0, "criterion_name", name)
        g.insert(0, "criterion", crit)
        frames.append(g.reset_index())
    out = pd.concat(frames, ignore_index=True)
    out.insert(5, "status", status_of(out["share"], met, unmet))
    order = {c: k for k, c in enumerate(IASC_CRITERIA)}
    return out.sort_values([col, "criterion"], key=lambda s: s.map(order) if s.name == "criterion" else s,
                           kind="mergesort").reset_index(drop=True)


#: Name of the area column when ``by`` is None (all locations together).
ALL = "all locations"


def _area_column(spec, by: str | None) -> str:
    admin = spec.columns.admin
    if by is None:
        return ALL
    if by == "region" and admin:
        return admin[0]
    if by == "cercle" and len(admin) > 1:
        return admin[1]
    return by


# --------------------------------------------------------------------------- classes
def _people(frame: pd.DataFrame, column: str) -> pd.Series:
    if column in frame.columns:
        return pd.to_numeric(frame[column], errors="coerce")
    return pd.Series(np.nan, index=frame.index, dtype=float)


def _counted(values: pd.Series, one: str, many: str) -> pd.Series:
    """``"1 IDP"``, ``"1,240 IDPs"`` for each count (missing counts as 0)."""
    n = pd.Series(values, dtype=float).fillna(0).round().astype("int64")
    return n.map("{:,}".format) + pd.Series(np.where(n.to_numpy() == 1, " " + one, " " + many), index=n.index)


def classify(result, round=None) -> pd.DataFrame:
    """The priority class of every location and round, with its reason in words.

    Parameters
    ----------
    result : Result
    round : optional
        One round (default: every round).

    Returns
    -------
    DataFrame
        One row per location and round, in the order of ``result.scores``: the keys, name and admin
        columns, ``idps``, ``returnees``, ``population`` (the spec's columns; missing when the data
        have none), ``nearby_low_idps`` (IDPs in low-stability locations of the same ``nearby`` area
        and round), the index, ``category``, ``class_id``, ``class`` (label of :data:`CLASSES`),
        ``reason``, and ``criteria_met``, ``criteria_partly``, ``criteria_unmet``,
        ``criteria_not_measured`` (lists of criterion ids).
    """
    spec = result.spec
    p = spec.priorities
    c = spec.columns
    keys = _keys(spec)
    rows = _select(result, round).reset_index(drop=True)
    labels = list(spec.categories.labels)
    cat = rows["category"].astype(object)
    low = (cat == labels[0]).to_numpy()
    high = (cat == labels[-1]).to_numpy()

    idps, ret, pop = (_people(rows, p.idp_column), _people(rows, p.returnee_column),
                      _people(rows, p.population_column))
    n_idps, n_ret = idps.fillna(0).to_numpy(), ret.fillna(0).to_numpy()
    with np.errstate(all="ignore"):
        popv = pop.to_numpy(dtype=float)
        ret_share = np.where(popv > 0, n_ret / popv, np.nan)
        idp_share = np.where(popv > 0, n_idps / popv, np.nan)
    many_ret = (n_ret > 0) & ((n_ret >= p.returnees)
                              | ((ret_share >= p.returnee_share) if p.returnee_share is not None else False))
    many_idps = (n_idps > 0) & ((n_idps >= p.idps)
                                | ((idp_share >= p.idp_share) if p.idp_share is not None else False))

    # IDPs hosted in low-stability locations of the same nearby area and round
    area = nearby_column(spec)
    if area is not None and area not in rows.columns:
        from .exceptions import SpecError

        raise SpecError(f"'priorities.nearby' names '{area}', which is not a column of the scores",
                        column="priorities.nearby")
    group = ([c.round] if c.round else []) + ([area] if area else [])
    low_idps = pd.Series(np.where(low, n_idps, 0.0), index=rows.index)
    nearby = (low_idps.groupby([rows[g] for g in group]).transform("sum") if group else
              pd.Series(low_idps.sum(), index=rows.index)).to_numpy(dtype=float)

    conditions = [low & many_ret, high & many_idps, high & (nearby >= p.nearby_idps) & (nearby > 0),
                  low & many_idps, (n_idps > 0) | (n_ret > 0)]
    ids = list(CLASSES)
    class_id = np.select(conditions, ids[:5], ids[5]).astype(object)

    status = criteria(result, round).reset_index(drop=True)
    unmet_text, unmet_ids = _joined(status, UNMET)
    _, met_ids = _joined(status, MET)
    _, partly_ids = _joined(status, PARTLY)
    _, nm_ids = _joined(status, NOT_MEASURED)

    where = pd.Series(np.where(cat.isna(), "a location without an index score",
                               "a " + cat.fillna("").astype(str) + "-stability location"), index=rows.index)
    txt_idps, txt_ret = _counted(idps, "IDP", "IDPs"), _counted(ret, "returnee", "returnees")
    txt_nearby = _counted(pd.Series(nearby, index=rows.index), "IDP", "IDPs")
    area_name = "the same " + nearby_terms(spec, rows)  # cercle, province or department: the row's country
    detail = pd.Series(np.select(
        [class_id == "urgent_return", class_id == "local_integration", class_id == "candidate_return",
         class_id == "displaced_low", class_id == "monitor"],
        [txt_ret + " in " + where,
         txt_idps + " in " + where,
         where + " with " + txt_nearby + " hosted in low-stability locations of " + area_name
         + " (it hosts " + txt_idps + " and " + txt_ret + ")",
         txt_idps + " in " + where + " (neither return nor local integration there: assistance and protection)",
         txt_idps + " and " + txt_ret + " in " + where],
        "no IDPs or returnees reported in " + where).astype(object), index=rows.index)
    crit_text = np.where(unmet_text == "", "no IASC criterion unmet", "unmet: " + unmet_text)
    labels_of = pd.Series(class_id).map(CLASSES)
    reason = labels_of + ": " + detail + "; " + crit_text

    out = rows[[k for k in keys]].copy()
    for col in ([c.name] if c.name else []) + list(c.admin) + list(c.admin_names):
        if col in rows.columns and col not in out.columns:
            out[col] = rows[col]
    for col, values in ((p.idp_column, idps), (p.returnee_column, ret), (p.population_column, pop)):
        if col in rows.columns:
            out[col] = values
    out["nearby_low_idps"] = nearby
    out[spec.root.id] = rows[spec.root.id]
    out["category"] = rows["category"]
    out["class_id"] = class_id
    out["class"] = labels_of.to_numpy()
    out["reason"] = reason.to_numpy()
    out["criteria_met"] = met_ids
    out["criteria_partly"] = partly_ids
    out["criteria_unmet"] = unmet_ids
    out["criteria_not_measured"] = nm_ids
    return out


def summary(result, round, by: str = "region") -> pd.DataFrame:
    """Locations and people per priority class and area (``by``: ``region``, ``cercle`` or a column).

    Returns
    -------
    DataFrame
        ``<area column>``, ``class_id``, ``class``, ``locations``, ``idps``, ``returnees`` (people
        living in those locations); every class appears for every area (zeros included), in the
        order of :data:`CLASSES`.
    """
    spec = result.spec
    col = _area_column(spec, by)
    p = spec.priorities
    table = classify(result, round)
    if col not in table.columns:
        table[col] = _select(result, round).reset_index(drop=True)[col]
    idps = table[p.idp_column] if p.idp_column in table.columns else pd.Series(0.0, index=table.index)
    ret = table[p.returnee_column] if p.returnee_column in table.columns else pd.Series(0.0, index=table.index)
    d = pd.DataFrame({col: table[col], "class_id": table["class_id"], "locations": 1,
                      "idps": idps.fillna(0), "returnees": ret.fillna(0)})
    g = d.groupby([col, "class_id"]).sum()
    areas = sorted(table[col].dropna().unique())
    full = pd.MultiIndex.from_product([areas, list(CLASSES)], names=[col, "class_id"])
    g = g.reindex(full, fill_value=0).reset_index()
    g.insert(2, "class", g["class_id"].map(CLASSES))
    for k in ("locations", "idps", "returnees"):
        g[k] = g[k].round().astype("int64")
    return g


def rule_text(spec, area_word: str | None = None) -> str:
    """The classification rule in words, with the spec's thresholds.

    ``area_word`` names the ``nearby`` area of the candidate-return rule (``province`` for a Burkina Faso
    region, ``admin-2 area (cercle, province or department)`` for several countries); by default the
    admin-2 word of Mali (:data:`DEFAULT_ADMIN2`), ``region``, or the ``priorities.nearby`` column.
    """
    p = spec.priorities
    labels = list(spec.categories.labels)
    met, unmet = thresholds(spec)
    area = nearby_column(spec)
    admin = spec.columns.admin
    if area_word is None:
        area_word = (DEFAULT_ADMIN2 if len(admin) > 1 and area == admin[1]
                     else "region" if admin and area == admin[0] else (area or "round"))

    def count(n, share, one):
        text = f"at least {plural(n, one)}"
        return text + (f" (or {share:.0%} of the population)" if share is not None else "")

    return (f"Each location falls in the first class whose rule holds: {CLASSES['urgent_return'].lower()} — "
            f"{count(p.returnees, p.returnee_share, 'returnee')} in a {labels[0]}-stability location; "
            f"{CLASSES['local_integration'].lower()} — {count(p.idps, p.idp_share, 'IDP')} in a "
            f"{labels[-1]}-stability location; {CLASSES['candidate_return'].lower()} — a {labels[-1]}-stability "
            f"location whose {area_word} hosts at least {plural(p.nearby_idps, 'IDP')} in {labels[0]}-stability "
            f"locations (a proxy for people displaced from nearby: origins are not surveyed); "
            f"{CLASSES['displaced_low'].lower()} — {count(p.idps, p.idp_share, 'IDP')} in a "
            f"{labels[0]}-stability location (a place for assistance and protection, not for durable solutions "
            f"yet); {CLASSES['monitor'].lower()} — any other location with IDPs or returnees; otherwise "
            f"{CLASSES['no_displaced'].lower()}.  An IASC criterion is met where its indicators' mean score is "
            f"at least {met:.0%} of the scale, unmet below {unmet:.0%}, partly met in between, and not measured "
            f"where no indicator informs it.")
