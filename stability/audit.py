"""Statistical audit of an index (JRC/OECD handbook; COINr's get_stats, get_corr, get_cronbach).

Every function takes a computed :class:`~stability.pipeline.Result` (through its
public API only) and returns a tidy DataFrame; :func:`audit` runs them all and
collects the findings in one ``flags`` table with a plain-English message each.

===========================  =====================================================================
:func:`indicator_stats`      availability, mean, sd, min, max, skew, kurtosis, outliers, distinct
                             values, zeros, imputed and treated cells, key-informant disagreement
:func:`correlations`         pairwise-complete Pearson / Spearman correlations, long form
:func:`correlation_matrix`   the same, as a square matrix (one round)
:func:`indicator_vs_parent`  each indicator (and aggregate) against its parent and the index
:func:`cronbach`             Cronbach's alpha per aggregate, with alpha if an item is deleted
:func:`kmo_bartlett`         Kaiser-Meyer-Olkin sampling adequacy and Bartlett's sphericity test
:func:`vif`                  variance inflation factor of each indicator within its pillar
:func:`pca_variance`         variance explained by each principal component, per aggregate
:func:`importance`           nominal weight against effective importance (squared correlation)
:func:`audit`                all of the above plus ``flags`` and a short ``summary``
===========================  =====================================================================

Rounds: every function takes ``round``: ``None`` (default) or ``"all"`` audits every round
separately (a ``round`` column says which), ``"latest"`` the last round, or a
round's value.  Without rounds in the data the tables have no ``round`` column.

Missing statistics are never silent: wherever a value cannot be computed (a
constant indicator, fewer than :data:`MIN_ROWS` rows, a singular correlation
matrix, a pillar with one indicator) it is NaN and the row's ``note`` says why;
:func:`audit` turns every such note into a row of ``flags``.

Stages (:data:`STAGES`): the indicator statistics and outlier checks describe the values the
pipeline treats, after denomination (``"denominated"``: water points per 1,000 residents, not
the raw count) and before imputation and outlier treatment, as COINr's audit of a denominated
coin; availability is that of the raw answers.  Correlations, Cronbach's alpha, KMO, VIF, PCA
and importance are on the normalised indicators (after denomination, imputation and treatment:
what the aggregation combines) and the aggregate scores.

Definitions (checked against COINr 1.1.14 on its ASEM example):

* skewness and kurtosis are COINr's (type-2, Excel ``SKEW``/``KURT``); an
  indicator is flagged as having outliers when ``|skew| > skew_thresh`` **and**
  ``kurt > kurt_thresh`` (the spec's ``treat`` thresholds; strict, as COINr's
  ``get_stats``, whereas ``Treat`` treats at ``>=``);
* correlations use every pair of non-missing values of the two columns
  (R's ``use = "pairwise.complete.obs"``); Spearman ranks each pair's complete
  values (average ranks for ties), as R does;
* Cronbach's alpha is COINr's ``get_cronbach``: ``k / (k - 1) * (1 - sum of the
  item variances / sum of the covariance matrix)`` with the covariance matrix
  from pairwise-complete values;
* KMO, Bartlett, VIF and PCA need one correlation matrix that is a proper
  correlation matrix, so they use the rows complete on the group's indicators
  (listwise deletion); PCA is on standardised values (the correlation matrix).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import ParameterError

#: Fewer rows than this (complete pairs for a correlation, complete rows for
#: KMO, Bartlett, VIF and PCA, values for Cronbach's alpha) give NaN and a note.
MIN_ROWS = 5

#: The rules behind the flags (value compared, threshold); see :func:`audit`.
THRESHOLDS: dict[str, float] = {
    "availability": 0.65,            # share of non-missing raw values below this: low availability (COINr t_avail)
    "share_zeros": 0.5,              # share of zeros above this (COINr t_zero: non-zero share below 0.5)
    "distinct_share": 0.5,           # distinct values / values below this, for numeric (not coded) answers (t_unq)
    "disagreement_rate": 0.2,        # share of locations whose key informants disagree above this
    "high_correlation": 0.9,         # |r| above this between two indicators of the same pillar
    "parent_correlation": 0.0,       # correlation with its own parent below this (negative)
    "cronbach_alpha": 0.6,           # alpha below this
    "kmo": 0.5,                      # KMO below this (Kaiser: "unacceptable")
    "bartlett_p": 0.05,              # Bartlett p-value above this: correlations not distinguishable from none
    "vif": 5.0,                      # VIF above this (R^2 on the other indicators of the pillar above 0.8)
    "kaiser_eigenvalue": 1.0,        # more than one component with eigenvalue above this: not one dimension
    "importance_ratio_low": 0.5,     # effective importance / nominal weight below this ...
    "importance_ratio_high": 2.0,    # ... or above this
}

#: Stage of the values each table of :func:`audit` describes (``result.stage(name)``).
STAGES: dict[str, str] = {
    "indicator_stats": "denominated",
    "correlations": "normalised",
    "indicator_vs_parent": "normalised",  # and the aggregate scores
    "cronbach": "normalised",
    "kmo_bartlett": "normalised",
    "vif": "normalised",
    "pca_variance": "normalised",
    "importance": "normalised",           # and the aggregate scores
}

#: A stage in words (for captions, the read-me and messages).
STAGE_WORDS: dict[str, str] = {
    "raw": "raw answers (before denomination)",
    "denominated": "values after denomination (e.g. per 1,000 residents), before imputation and outlier treatment",
    "imputed": "values after denomination and imputation, before outlier treatment",
    "treated": "values after denomination, imputation and outlier treatment",
    "normalised": "normalised indicators (after denomination, imputation and outlier treatment)",
    "aggregated": "aggregate scores",
}


def stage_words(stage: str, spec=None, indicator: str | None = None) -> str:
    """A stage of the pipeline in words (the stage's name when unknown).

    With ``spec`` and ``indicator``, the denominated stage of that indicator says what it is
    divided by (``"per 1,000 population, before imputation and outlier treatment"``) or that it
    has no denominator.
    """
    if stage == "denominated" and spec is not None and indicator is not None:
        ind = {i.id: i for i in spec.indicators}.get(indicator)
        if ind is not None:
            per = (f"per {ind.denominator_scale:,g} {ind.denominator}" if ind.denominator
                   else "as answered (no denominator)")
            return f"{per}, before imputation and outlier treatment"
    return STAGE_WORDS.get(stage, stage)


#: What each table of an :class:`Audit` holds (also the read-me of the workbook).
TABLES: dict[str, str] = {
    "indicator_stats": "per indicator (and round), on the values after denomination (before imputation and "
                       "outlier treatment): availability (of the raw answers), mean, sd, min, max, skew, kurtosis, "
                       "outlier flag, distinct values, share of zeros, imputed and treated cells, key-informant "
                       "disagreement rate",
    "correlations": "pairwise-complete Pearson correlations between normalised indicators, one row per pair of "
                    "indicators, with the number of complete pairs and the p-value",
    "indicator_vs_parent": "correlation of each indicator (and aggregate) with its parent and with the index",
    "cronbach": "Cronbach's alpha of each aggregate's indicators, and alpha if each item is deleted",
    "kmo_bartlett": "Kaiser-Meyer-Olkin sampling adequacy (per group and per item) and Bartlett's test of sphericity",
    "vif": "variance inflation factor of each indicator among the other indicators of its pillar",
    "pca_variance": "variance explained by each principal component of each aggregate's indicators",
    "importance": "nominal weight within the parent against effective importance (squared correlation with the "
                  "parent, normalised to sum to 1 within the parent)",
    "flags": "one row per finding: what, where, value, threshold and a plain-English message",
}


# --------------------------------------------------------------------------- selection helpers
def _round_col(result) -> str | None:
    return result.spec.columns.round


def audited_rounds(result, round=None) -> list:
    """The rounds an audit covers: every round (``None`` or ``"all"``), the last (``"latest"``) or one.

    Returns ``[None]`` when the data have no rounds.

    Raises
    ------
    ParameterError
        A round that is not in the data.
    """
    rounds = list(result.rounds)
    if not _round_col(result) or not rounds:
        return [None]
    text = "all" if round is None else str(round).strip()
    if text.lower() == "all":
        return rounds
    if text.lower() == "latest" or text == "":
        return [rounds[-1]]
    for r in rounds:
        if str(r) == text:
            return [r]
    raise ParameterError(f"round {text!r} is not in the data; rounds: {', '.join(map(str, rounds))} (or 'latest', 'all')",
                         option="--round")


def _in_round(result, table: pd.DataFrame, rnd) -> pd.DataFrame:
    col = _round_col(result)
    if rnd is None or not col:
        return table
    values = table.index.get_level_values(col)
    return table[np.asarray(values == rnd)]


def _has_rounds(result) -> bool:
    return bool(_round_col(result)) and bool(result.rounds)


def _finish(result, rows: list[dict], columns: list[str]) -> pd.DataFrame:
    """A table from row dicts, with the ``round`` column only when the data have rounds."""
    df = pd.DataFrame(rows, columns=columns)
    if not _has_rounds(result) and "round" in df.columns:
        df = df.drop(columns="round")
    if "note" in df.columns:
        df["note"] = df["note"].fillna("").astype(str)
    return df.reset_index(drop=True)


def _levels(spec) -> dict[str, int]:
    """Level of every node: 1 for indicators, ``aggregates[].level`` above."""
    out = {i.id: 1 for i in spec.indicators}
    out.update({a.id: a.level for a in spec.aggregates})
    return out


def _parents(spec) -> dict[str, str | None]:
    return {n.id: n.parent for n in (*spec.indicators, *spec.aggregates)}


def _descendants(spec, node: str, columns) -> list[str]:
    """The descendants of ``node`` that are columns of a stage, at the lowest level present among them."""
    cols = set(columns)
    level = _levels(spec)
    found, todo = [], [node]
    while todo:
        kids = [k.id for k in spec.children(todo.pop(0))]
        found += [k for k in kids if k in cols]
        todo += kids
    if not found:
        return []
    low = min(level[k] for k in found)
    order = {n.id: i for i, n in enumerate((*spec.indicators, *spec.aggregates))}
    return sorted([k for k in found if level[k] == low], key=order.get)


def _groups(spec, columns) -> list[tuple[str, int, list[str]]]:
    """``(aggregate, level, items)`` for every aggregate with items among ``columns`` (pillars first, index last)."""
    out = []
    for lv in range(2, len(spec.levels) + 1):
        for agg in spec.aggregates_at(lv):
            items = _descendants(spec, agg.id, columns)
            if items:
                out.append((agg.id, lv, items))
    return out


def _constant(x: np.ndarray) -> bool:
    v = x[~np.isnan(x)]
    return v.size > 0 and bool(np.all(v == v[0]))


# --------------------------------------------------------------------------- indicator statistics
def _skew_kurt(x: np.ndarray) -> tuple[float, float]:
    """COINr's skew() and kurt() (type 2) of the non-missing values; NaN when undefined."""
    from .treat import skew_kurt

    v = x[~np.isnan(x)]
    if v.size < 3 or np.all(v == v[0]):
        return float("nan"), float("nan")
    s, k = skew_kurt(v)
    return float(s), float(k)


def _treatment_status(treatment: pd.DataFrame, rnd, indicator: str) -> str:
    if treatment is None or treatment.empty:
        return "none"
    rows = treatment[treatment["indicator"] == indicator]
    if rows.empty:
        return "none"
    labels = list(rows["round"])
    for lab, status in zip(labels, rows["status"]):
        if rnd is not None and lab is not None and str(lab) == str(rnd):
            return str(status)
    return str(rows["status"].iloc[0]) if len(rows) == 1 else "none"


def _log_counts(log: pd.DataFrame, rnd, has_rounds: bool) -> tuple[pd.Series, pd.Series]:
    """Imputed and treated (winsorised or clamped) cells per indicator in a round."""
    if log is None or log.empty:
        return pd.Series(dtype=float), pd.Series(dtype=float)
    part = log
    if has_rounds and rnd is not None:
        part = log[log["round"].astype(str) == str(rnd)]
    imputed = part[part["action"] == "imputed"].groupby("column").size()
    treated = part[(part["step"] == "treat") & part["action"].isin(["winsorised", "clamped"])].groupby("column").size()
    return imputed, treated


def indicator_stats(result, round=None, *, stage: str = "denominated") -> pd.DataFrame:
    """Descriptive statistics of every indicator (COINr's ``get_stats``), per round.

    Parameters
    ----------
    result : Result
    round : None, "latest" or a round
        ``None``: every round, separately.
    stage : str
        Stage whose values are described: default ``"denominated"``, the indicators as the
        pipeline imputes and treats them (a count per 1,000 residents, not the count), before
        imputation and outlier treatment (COINr's ``get_stats`` on its ``"Denominated"`` data
        set); ``"raw"`` for the answers as given.  Availability is always that of the raw stage.

    Returns
    -------
    DataFrame
        One row per indicator (and round): ``indicator``, ``pillar``, ``stage`` (of the
        values described), ``n`` (units), ``n_available``, ``availability`` (share
        non-missing in the raw stage), ``n_values`` (non-missing values described),
        ``mean``, ``median``, ``sd`` (n - 1), ``min``, ``max``, ``skew``, ``kurt``,
        ``outlier`` (``|skew| > skew_thresh`` and ``kurt > kurt_thresh``, the spec's
        treat thresholds), ``distinct``, ``share_zeros`` (of the non-missing values),
        ``n_imputed`` and ``n_treated`` (cells, from ``result.log``; every value of
        the round when the indicator was log-transformed), ``treatment`` (status of
        the outlier treatment: pass, winsorised, log, skipped, none),
        ``disagreement_rate`` (share of the locations with two or more answers whose
        key informants disagree; NaN without key informants) and ``note`` (why a
        value is NaN).
    """
    spec = result.spec
    raw_all = result.stage("raw")
    values_all = result.stage(stage)  # KeyError naming the stages for an unknown one
    imputed_all = result.stage("imputed")
    log = result.log
    treatment = result.treatment
    flags_all = result.disagreement_flags
    dis_all = result.disagreement
    t_skew, t_kurt = spec.treat.skew_thresh, spec.treat.kurt_thresh
    rows = []
    for rnd in audited_rounds(result, round):
        raw = _in_round(result, raw_all, rnd)
        vals = _in_round(result, values_all, rnd)
        imp = _in_round(result, imputed_all, rnd)
        n_imp, n_treat = _log_counts(log, rnd, _has_rounds(result))
        if flags_all is not None:
            flg = flags_all.reindex(raw.index)
            dis = dis_all.reindex(raw.index) if dis_all is not None else None
        for ind in spec.indicators:
            x = vals[ind.id].to_numpy(dtype=float) if ind.id in vals else np.full(len(vals), np.nan)
            v = x[~np.isnan(x)]
            n = len(raw)
            avail = int(raw[ind.id].notna().sum())
            notes = []
            skew, kurt = _skew_kurt(x)
            if v.size == 0:
                notes.append("no values")
            elif np.all(v == v[0]):
                notes.append("constant (one distinct value): sd is 0, skew and kurtosis are undefined")
            elif v.size < 3:
                notes.append("fewer than 3 values: skew and kurtosis are undefined")
            elif v.size < 4:
                notes.append("fewer than 4 values: kurtosis is undefined")
            status = _treatment_status(treatment, rnd, ind.id)
            treated = int(n_treat.get(ind.id, 0))
            if status == "log":
                treated = int(np.count_nonzero(~np.isnan(imp[ind.id].to_numpy(dtype=float))))
            rate = float("nan")
            if flags_all is not None and ind.id in flg:
                answered = dis[ind.id].notna() if dis is not None else pd.Series(True, index=flg.index)
                k = int(answered.sum())
                if k:
                    rate = float(flg[ind.id].fillna(False).astype(bool)[answered].sum()) / k
                else:
                    notes.append("no location has two or more key-informant answers: disagreement undefined")
            rows.append({
                "round": rnd, "indicator": ind.id, "pillar": ind.parent, "stage": stage, "n": n,
                "n_available": avail, "availability": avail / n if n else float("nan"), "n_values": int(v.size),
                "mean": float(v.mean()) if v.size else float("nan"),
                "median": float(np.median(v)) if v.size else float("nan"),
                "sd": float(v.std(ddof=1)) if v.size > 1 else float("nan"),
                "min": float(v.min()) if v.size else float("nan"),
                "max": float(v.max()) if v.size else float("nan"),
                "skew": skew, "kurt": kurt,
                "outlier": bool(abs(skew) > t_skew and kurt > t_kurt) if not (math.isnan(skew) or math.isnan(kurt))
                else False,
                "distinct": int(np.unique(v).size),
                "share_zeros": float(np.count_nonzero(v == 0)) / v.size if v.size else float("nan"),
                "n_imputed": int(n_imp.get(ind.id, 0)), "n_treated": treated, "treatment": status,
                "disagreement_rate": rate, "note": "; ".join(notes)})
    cols = ["round", "indicator", "pillar", "stage", "n", "n_available", "availability", "n_values", "mean", "median", "sd", "min", "max",
            "skew", "kurt", "outlier", "distinct", "share_zeros", "n_imputed", "n_treated", "treatment",
            "disagreement_rate", "note"]
    return _finish(result, rows, cols)


# --------------------------------------------------------------------------- correlations
def _rank(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, method="average")


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    da, db = a - a.mean(), b - b.mean()
    den = math.sqrt(float(da @ da) * float(db @ db))
    if den == 0:
        return float("nan")
    return max(-1.0, min(1.0, float(da @ db) / den))


def _pair(a: np.ndarray, b: np.ndarray, method: str) -> tuple[float, int, str]:
    """Correlation of the pairwise-complete values of two columns: (r, n, note)."""
    ok = ~(np.isnan(a) | np.isnan(b))
    n = int(ok.sum())
    if n < MIN_ROWS:
        return float("nan"), n, f"fewer than {MIN_ROWS} complete pairs ({n})"
    a, b = a[ok], b[ok]
    if np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan"), n, "constant on the complete pairs: correlation undefined"
    if method == "spearman":
        a, b = _rank(a), _rank(b)
    return _pearson(a, b), n, ""


def _p_value(r: float, n: int) -> float:
    """Two-sided p-value of a correlation (t-test with n - 2 degrees of freedom, as R's cor.test for Pearson)."""
    from scipy.stats import t as student

    if math.isnan(r) or n < 3:
        return float("nan")
    if abs(r) >= 1:
        return 0.0
    stat = r * math.sqrt((n - 2) / (1 - r * r))
    return float(2 * student.sf(abs(stat), n - 2))


def _check_method(method: str) -> str:
    if method not in ("pearson", "spearman"):
        raise ParameterError(f"unknown correlation method {method!r} (choose pearson or spearman)")
    return method


def _corr_block(X: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """Pairwise-complete correlation, counts and notes of the columns of ``X``."""
    p = X.shape[1]
    R = np.full((p, p), np.nan)
    N = np.zeros((p, p), dtype=int)
    notes = [["" for _ in range(p)] for _ in range(p)]
    complete = not np.isnan(X).any()
    if complete and X.shape[0] >= MIN_ROWS:
        Y = np.column_stack([_rank(X[:, j]) for j in range(p)]) if method == "spearman" else X
        const = np.array([np.all(Y[:, j] == Y[0, j]) for j in range(p)])
        with np.errstate(invalid="ignore", divide="ignore"):
            C = Y - Y.mean(axis=0)
            ss = np.sqrt((C * C).sum(axis=0))
            R = np.clip((C.T @ C) / np.outer(ss, ss), -1, 1)
        N[:] = X.shape[0]
        for i in range(p):
            for j in range(p):
                if const[i] or const[j]:
                    R[i, j] = np.nan
                    notes[i][j] = "constant on the complete pairs: correlation undefined"
        np.fill_diagonal(R, np.where(const, np.nan, 1.0))
        return R, N, notes
    for i in range(p):
        for j in range(i, p):
            r, n, note = _pair(X[:, i], X[:, j], method)
            R[i, j] = R[j, i] = r
            N[i, j] = N[j, i] = n
            notes[i][j] = notes[j][i] = note
    return R, N, notes


def correlation_matrix(result, stage: str = "normalised", method: str = "pearson", round="latest",
                       columns: list[str] | None = None) -> pd.DataFrame:
    """The pairwise-complete correlation matrix of a stage's columns in one round.

    Parameters
    ----------
    result : Result
    stage : str
        ``"normalised"`` (indicators, default), ``"raw"``, ... or ``"aggregated"``.
    method : {"pearson", "spearman"}
    round : "latest" or a round
        One round (``None`` takes every row of the table, all rounds pooled).
    columns : list of str, optional
        A subset of the stage's columns.

    Returns
    -------
    DataFrame
        Square, indexed and labelled by column id; NaN where undefined (see
        :func:`correlations` for the reasons).
    """
    _check_method(method)
    table = result.stage(stage)
    rnd = audited_rounds(result, round)[0] if round is not None else None
    table = _in_round(result, table, rnd)
    cols = list(columns) if columns is not None else list(table.columns)
    R, _, _ = _corr_block(table[cols].to_numpy(dtype=float), method)
    return pd.DataFrame(R, index=pd.Index(cols, name="var1"), columns=pd.Index(cols, name="var2"))


def correlations(result, stage: str = "normalised", method: str = "pearson", round=None, *,
                 pval: float | None = None) -> pd.DataFrame:
    """Pairwise-complete correlations between the columns of a stage, long form (COINr's ``get_corr``).

    Parameters
    ----------
    result : Result
    stage : str
        ``"normalised"`` (default: the indicators as aggregated), ``"raw"``,
        ``"treated"``, ... or ``"aggregated"`` (pillars ... index).
    method : {"pearson", "spearman"}
    round : None, "latest" or a round
    pval : float, optional
        As COINr's ``pval``: correlations with a p-value above it are NaN (with a
        note).  Default ``None``: keep every correlation (COINr's ``pval = 0``).
        The p-value is the t-test of R's ``cor.test`` (for Spearman its large-sample
        approximation).

    Returns
    -------
    DataFrame
        One row per ordered pair, the diagonal included (so that the table pivots
        back to the matrix): ``var1``, ``var2``, ``correlation``, ``n`` (complete
        pairs), ``p_value``, ``group1``, ``group2`` (parents), ``same_group`` (two
        different columns with the same parent), ``note`` (why ``correlation``
        is NaN: fewer than :data:`MIN_ROWS` complete pairs, a constant column).
    """
    _check_method(method)
    spec = result.spec
    parent = _parents(spec)
    table_all = result.stage(stage)
    cols = list(table_all.columns)
    rows = []
    for rnd in audited_rounds(result, round):
        table = _in_round(result, table_all, rnd)
        R, N, notes = _corr_block(table[cols].to_numpy(dtype=float), method)
        for i, a in enumerate(cols):
            for j, b in enumerate(cols):
                r, n, note = float(R[i, j]), int(N[i, j]), notes[i][j]
                p = 0.0 if i == j and not math.isnan(r) else _p_value(r, n)
                if pval is not None and pval > 0 and not math.isnan(p) and p > pval:
                    r, note = float("nan"), f"not significant (p = {p:.3g} > {pval:g})"
                rows.append({"round": rnd, "var1": a, "var2": b, "correlation": r, "n": n, "p_value": p,
                             "group1": parent.get(a), "group2": parent.get(b),
                             "same_group": bool(a != b and parent.get(a) == parent.get(b)), "note": note})
    return _finish(result, rows, ["round", "var1", "var2", "correlation", "n", "p_value", "group1", "group2",
                                  "same_group", "note"])


def _node_values(result, rnd) -> pd.DataFrame:
    """Normalised indicators and aggregate scores of a round side by side."""
    norm = _in_round(result, result.stage("normalised"), rnd)
    agg = _in_round(result, result.stage("aggregated"), rnd)
    return pd.concat([norm, agg[[c for c in agg.columns if c not in norm.columns]]], axis=1)


def indicator_vs_parent(result, method: str = "pearson", round=None) -> pd.DataFrame:
    """Correlation of each indicator (normalised) and aggregate with its parent and with the index.

    As COINr's ``get_corr(coin, dset = "Aggregated", Levels = c(1, 2), withparent = TRUE)``
    (and the same for the higher levels).

    Returns
    -------
    DataFrame
        ``id``, ``level`` (1 = indicator), ``parent``, ``correlation_parent``,
        ``n_parent``, ``correlation_index``, ``n_index``, ``note``; one row per
        node below the index (and round).
    """
    _check_method(method)
    spec = result.spec
    root = spec.root.id
    level = _levels(spec)
    nodes = [*spec.indicators, *sorted([a for a in spec.aggregates if a.parent is not None], key=lambda a: a.level)]
    rows = []
    for rnd in audited_rounds(result, round):
        vals = _node_values(result, rnd)
        for node in nodes:
            x = vals[node.id].to_numpy(dtype=float)
            rp, n_p, note_p = _pair(x, vals[node.parent].to_numpy(dtype=float), method)
            ri, n_i, note_i = _pair(x, vals[root].to_numpy(dtype=float), method)
            notes = [f"with {node.parent}: {note_p}" if note_p else "",
                     f"with {root}: {note_i}" if note_i and node.parent != root else ""]
            rows.append({"round": rnd, "id": node.id, "level": level[node.id], "parent": node.parent,
                         "correlation_parent": rp, "n_parent": n_p, "correlation_index": ri, "n_index": n_i,
                         "note": "; ".join(t for t in notes if t)})
    return _finish(result, rows, ["round", "id", "level", "parent", "correlation_parent", "n_parent",
                                  "correlation_index", "n_index", "note"])


# --------------------------------------------------------------------------- Cronbach's alpha
def _pairwise_cov(X: np.ndarray) -> np.ndarray:
    """Covariance matrix from pairwise-complete values (R's ``cov(use = "pairwise.complete.obs")``)."""
    p = X.shape[1]
    S = np.full((p, p), np.nan)
    for i in range(p):
        for j in range(i, p):
            ok = ~(np.isnan(X[:, i]) | np.isnan(X[:, j]))
            n = int(ok.sum())
            if n < 2:
                continue
            a, b = X[ok, i], X[ok, j]
            S[i, j] = S[j, i] = float((a - a.mean()) @ (b - b.mean())) / (n - 1)
    return S


def _alpha(S: np.ndarray) -> float:
    """COINr's get_cronbach from a covariance matrix: k^2 * mean off-diagonal covariance / sum of all elements."""
    k = S.shape[0]
    total = float(np.nansum(S))
    if k < 2 or total == 0 or not np.isfinite(total):
        return float("nan")
    mean_cov = (total - float(np.nansum(np.diag(S)))) / (k * (k - 1))
    return k * k * mean_cov / total


def cronbach(result, stage: str = "normalised", round=None) -> pd.DataFrame:
    """Cronbach's alpha of every aggregate's items, and alpha if each item is deleted.

    The items of an aggregate are its descendants among the stage's columns, at
    the lowest level present: the indicators of a pillar, of a sub-index or of
    the whole index (``"overall"``) for an indicator stage; the pillars for
    ``stage="aggregated"``.  Alpha is COINr's ``get_cronbach(coin, dset, iCodes =
    group, Level = 1)``: the covariance matrix from pairwise-complete values.

    Returns
    -------
    DataFrame
        ``group``, ``level`` (of the group), ``item`` (empty for the group's own
        alpha, else the item deleted), ``n_items``, ``n`` (rows with at least one
        value), ``alpha`` and ``note``.
    """
    spec = result.spec
    table_all = result.stage(stage)
    rows = []
    for rnd in audited_rounds(result, round):
        table = _in_round(result, table_all, rnd)
        for group, lv, items in _groups(spec, table.columns):
            X = table[items].to_numpy(dtype=float)
            n = int((~np.isnan(X)).any(axis=1).sum())
            S = _pairwise_cov(X)
            const = [it for j, it in enumerate(items) if _constant(X[:, j])]
            base_note = ""
            if len(items) < 2:
                base_note = "only one item: alpha needs two or more"
            elif n < MIN_ROWS:
                base_note = f"fewer than {MIN_ROWS} rows ({n})"
            elif np.isnan(S).any():
                base_note = "some pairs of items have fewer than 2 complete values"
            alpha = _alpha(S) if not base_note else float("nan")
            if not base_note and math.isnan(alpha):
                base_note = "every item is constant: the total variance is 0"
            if const and not base_note:
                base_note = f"constant item(s) {', '.join(const)} add nothing to the total variance"
            rows.append({"round": rnd, "group": group, "level": lv, "item": "", "n_items": len(items), "n": n,
                         "alpha": alpha, "note": base_note})
            for j, it in enumerate(items):
                keep = [m for m in range(len(items)) if m != j]
                a = float("nan")
                note = ""
                if len(keep) < 2:
                    note = "alpha if deleted needs three or more items"
                elif n < MIN_ROWS:
                    note = f"fewer than {MIN_ROWS} rows ({n})"
                else:
                    a = _alpha(S[np.ix_(keep, keep)])
                    if math.isnan(a):
                        note = "the other items are constant or have too few complete pairs"
                rows.append({"round": rnd, "group": group, "level": lv, "item": it, "n_items": len(keep), "n": n,
                             "alpha": a, "note": note})
    return _finish(result, rows, ["round", "group", "level", "item", "n_items", "n", "alpha", "note"])


# --------------------------------------------------------------------------- KMO, Bartlett, VIF, PCA
def _complete(table: pd.DataFrame, items: list[str]) -> np.ndarray:
    X = table[items].to_numpy(dtype=float)
    return X[~np.isnan(X).any(axis=1)]


def _matrix_problem(X: np.ndarray, items: list[str], need: int = 2) -> str:
    """Why a correlation matrix of the complete rows ``X`` cannot be used ("" when it can)."""
    n, p = X.shape
    if p < need:
        return f"only {p} indicator{'s' if p != 1 else ''}: needs {need} or more"
    if n < MIN_ROWS:
        return f"fewer than {MIN_ROWS} complete rows ({n})"
    const = [it for j, it in enumerate(items) if np.all(X[:, j] == X[0, j])]
    if const:
        return f"constant indicator(s) {', '.join(const)} on the complete rows: correlation undefined"
    if n <= p:
        return f"singular correlation matrix: {n} complete rows for {p} indicators"
    R = np.corrcoef(X, rowvar=False)
    eig = np.linalg.eigvalsh(R)
    if eig.min() <= 1e-10 * max(eig.max(), 1.0):
        return "singular correlation matrix: some indicators are exact linear combinations of the others"
    return ""


def kmo_bartlett(result, stage: str = "normalised", round=None) -> pd.DataFrame:
    """Kaiser-Meyer-Olkin sampling adequacy and Bartlett's test of sphericity, per aggregate.

    From the textbook formulas (no extra dependency): with ``R`` the correlation
    matrix of the rows complete on the group's items and ``P`` the partial
    correlations (``-S_ij / sqrt(S_ii S_jj)``, ``S = R^-1``), KMO =
    ``sum r_ij^2 / (sum r_ij^2 + sum p_ij^2)`` over ``i != j`` (per item: sums over
    ``j`` only, the MSA); Bartlett's statistic is ``-(n - 1 - (2p + 5) / 6) ln det R``
    with ``p (p - 1) / 2`` degrees of freedom.

    Returns
    -------
    DataFrame
        ``group``, ``level``, ``item`` (empty for the group, else the item whose
        MSA is given), ``n`` (complete rows), ``n_items``, ``kmo``, ``bartlett_chi2``,
        ``bartlett_df``, ``bartlett_p``, ``note``.
    """
    from scipy.stats import chi2

    spec = result.spec
    table_all = result.stage(stage)
    rows = []
    for rnd in audited_rounds(result, round):
        table = _in_round(result, table_all, rnd)
        for group, lv, items in _groups(spec, table.columns):
            X = _complete(table, items)
            n, p = X.shape
            problem = _matrix_problem(X, items)
            kmo, stat, df, pv = float("nan"), float("nan"), p * (p - 1) // 2, float("nan")
            msa = np.full(p, np.nan)
            if not problem:
                R = np.corrcoef(X, rowvar=False)
                S = np.linalg.inv(R)
                d = np.sqrt(np.diag(S))
                P = -S / np.outer(d, d)
                off = ~np.eye(p, dtype=bool)
                r2 = np.where(off, R * R, 0.0)
                p2 = np.where(off, P * P, 0.0)
                kmo = float(r2.sum() / (r2.sum() + p2.sum()))
                msa = r2.sum(axis=1) / (r2.sum(axis=1) + p2.sum(axis=1))
                sign, logdet = np.linalg.slogdet(R)
                stat = float(-(n - 1 - (2 * p + 5) / 6) * logdet)
                pv = float(chi2.sf(stat, df))
            rows.append({"round": rnd, "group": group, "level": lv, "item": "", "n": n, "n_items": p, "kmo": kmo,
                         "bartlett_chi2": stat, "bartlett_df": df, "bartlett_p": pv, "note": problem})
            for j, it in enumerate(items):
                rows.append({"round": rnd, "group": group, "level": lv, "item": it, "n": n, "n_items": p,
                             "kmo": float(msa[j]), "bartlett_chi2": float("nan"), "bartlett_df": np.nan,
                             "bartlett_p": float("nan"), "note": problem})
    out = _finish(result, rows, ["round", "group", "level", "item", "n", "n_items", "kmo", "bartlett_chi2",
                                 "bartlett_df", "bartlett_p", "note"])
    out["bartlett_df"] = out["bartlett_df"].astype("Int64")
    return out


def vif(result, stage: str = "normalised", round=None) -> pd.DataFrame:
    """Variance inflation factor of each indicator among the other indicators of its pillar.

    ``1 / (1 - R^2)`` of the regression of the indicator on the others (with a
    constant), by ``statsmodels.stats.outliers_influence.variance_inflation_factor``
    on the rows complete on the pillar's indicators.

    Returns
    -------
    DataFrame
        ``indicator``, ``pillar``, ``n`` (complete rows), ``vif``, ``note``.
    """
    from statsmodels.stats.outliers_influence import variance_inflation_factor

    spec = result.spec
    table_all = result.stage(stage)
    rows = []
    for rnd in audited_rounds(result, round):
        table = _in_round(result, table_all, rnd)
        for pillar in spec.aggregates_at(2):
            items = _descendants(spec, pillar.id, table.columns)
            if not items:
                continue
            X = _complete(table, items)
            problem = _matrix_problem(X, items)
            if len(items) == 1:
                problem = "only indicator of its pillar: no other indicator to regress on"
            values = [float("nan")] * len(items)
            if not problem:
                exog = np.column_stack([np.ones(len(X)), X])
                with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
                    warnings.simplefilter("ignore")
                    values = [float(variance_inflation_factor(exog, j + 1)) for j in range(len(items))]
                if not all(np.isfinite(values)):
                    problem = "singular correlation matrix: some indicators are exact linear combinations"
                    values = [float("nan")] * len(items)
            for it, v in zip(items, values):
                rows.append({"round": rnd, "indicator": it, "pillar": pillar.id, "n": len(X), "vif": v,
                             "note": problem})
    return _finish(result, rows, ["round", "indicator", "pillar", "n", "vif", "note"])


def pca_variance(result, stage: str = "normalised", round=None) -> pd.DataFrame:
    """Variance explained by each principal component of each aggregate's items (correlation PCA).

    scikit-learn's PCA on the standardised values (sd with n - 1) of the rows
    complete on the group's items, so the eigenvalues sum to the number of items.

    Returns
    -------
    DataFrame
        ``group``, ``level``, ``n``, ``n_items``, ``component`` (1 = first),
        ``eigenvalue``, ``variance_share``, ``cumulative_share``, ``note``.
    """
    from sklearn.decomposition import PCA

    spec = result.spec
    table_all = result.stage(stage)
    rows = []
    for rnd in audited_rounds(result, round):
        table = _in_round(result, table_all, rnd)
        for group, lv, items in _groups(spec, table.columns):
            X = _complete(table, items)
            n, p = X.shape
            problem = _matrix_problem(X, items)
            if problem.startswith("singular"):
                problem = ""  # PCA is defined for a singular matrix: the last eigenvalues are 0
            if not problem:
                Z = (X - X.mean(axis=0)) / X.std(axis=0, ddof=1)
                pca = PCA(n_components=min(n, p), svd_solver="full").fit(Z)
                eig = np.clip(pca.explained_variance_, 0, None)
                share = eig / p
                for k, (e, s) in enumerate(zip(eig, share), start=1):
                    rows.append({"round": rnd, "group": group, "level": lv, "n": n, "n_items": p, "component": k,
                                 "eigenvalue": float(e), "variance_share": float(s),
                                 "cumulative_share": float(share[:k].sum()), "note": ""})
            else:
                rows.append({"round": rnd, "group": group, "level": lv, "n": n, "n_items": p, "component": 1,
                             "eigenvalue": float("nan"), "variance_share": float("nan"),
                             "cumulative_share": float("nan"), "note": problem})
    return _finish(result, rows, ["round", "group", "level", "n", "n_items", "component", "eigenvalue",
                                  "variance_share", "cumulative_share", "note"])


# --------------------------------------------------------------------------- importance
def nominal_weights(spec, used=None) -> pd.DataFrame:
    """Each node's weight within its parent (normalised to sum to 1) and overall (COINr's ``get_eff_wts``).

    ``used`` (child id -> share of its parent, e.g. ``result.weights.set_index("child")["weight"]``)
    gives the shares in use when some were derived from the data (``weights`` in the spec).

    Returns
    -------
    DataFrame
        ``id``, ``level``, ``parent``, ``weight`` (as written), ``nominal_weight``
        (share of its parent), ``overall_weight`` (product of the shares up to the
        index).
    """
    level = _levels(spec)
    nodes = [*spec.indicators, *[a for a in spec.aggregates if a.parent is not None]]
    share = {}
    for agg in spec.aggregates:
        kids = spec.children(agg.id)
        total = sum(k.weight for k in kids)
        for k in kids:
            share[k.id] = (float(used[k.id]) if used is not None and k.id in used
                           else k.weight / total if total > 0 else float("nan"))
    parent = _parents(spec)

    def overall(node):
        w = 1.0
        while parent.get(node) is not None:
            w *= share[node]
            node = parent[node]
        return w

    return pd.DataFrame([{"id": n.id, "level": level[n.id], "parent": n.parent, "weight": float(n.weight),
                          "nominal_weight": share[n.id], "overall_weight": overall(n.id)} for n in nodes])


def importance(result, round=None) -> pd.DataFrame:
    """Nominal weight against effective importance, for every child of every aggregate.

    The effective importance of a child is the squared Pearson correlation of its
    score (normalised indicator, or aggregate score) with its parent's score (the
    share of the parent's variance it explains on its own: the first-order
    sensitivity index of a linear model, Paruolo, Saisana & Saltelli 2013),
    normalised to sum to 1 among the parent's children.  It is flagged when the
    ratio ``importance / nominal weight`` is outside
    [``THRESHOLDS["importance_ratio_low"]``, ``THRESHOLDS["importance_ratio_high"]``]
    = [0.5, 2]: the child drives its parent at least twice as much, or at most
    half as much, as its weight says.

    COINr's ``get_opt_weights`` (``optype = "balance"``) compares weights with
    another measure, given here too: the plain correlation of each node with the
    *index*, divided by the sum of those correlations over every node of the same
    level (``importance_coinr``; its "Obtained" column at the original weights).

    Returns
    -------
    DataFrame
        ``id``, ``level``, ``parent``, ``nominal_weight`` (share of the parent),
        ``overall_weight`` (COINr's effective weight), ``correlation`` (Pearson,
        with the parent), ``r2``, ``importance``, ``ratio`` (importance / nominal
        weight), ``correlation_index``, ``importance_coinr``, ``n``, ``note``.
    """
    spec = result.spec
    root = spec.root.id
    weights = nominal_weights(spec, result.weights.set_index("child")["weight"])  # derived ones included
    rows = []
    for rnd in audited_rounds(result, round):
        vals = _node_values(result, rnd)
        part = []
        for parent_id, kids in weights.groupby("parent", sort=False):
            y = vals[parent_id].to_numpy(dtype=float)
            stats = []
            for k in kids.itertuples(index=False):
                x = vals[k.id].to_numpy(dtype=float)
                r, n, note = _pair(x, y, "pearson")
                ri = r if parent_id == root else _pair(x, vals[root].to_numpy(dtype=float), "pearson")[0]
                stats.append((k, r, n, note, ri))
            r2 = np.array([s[1] ** 2 for s in stats])
            total = np.nansum(r2)
            missing = [s[0].id for s in stats if math.isnan(s[1])]
            for (k, r, n, note, ri), q in zip(stats, r2):
                imp = q / total if total > 0 and not math.isnan(q) else float("nan")
                if note:
                    note = f"correlation with {parent_id} undefined: {note}"
                elif total <= 0:
                    note = f"no child of {parent_id} correlates with it: importance undefined"
                elif missing:
                    note = f"normalised without {', '.join(missing)} (correlation undefined)"
                if not note and not k.nominal_weight:
                    note = "nominal weight 0: importance / weight undefined"
                ratio = imp / k.nominal_weight if k.nominal_weight and not math.isnan(imp) else float("nan")
                part.append({"round": rnd, "id": k.id, "level": k.level, "parent": parent_id,
                             "nominal_weight": k.nominal_weight, "overall_weight": k.overall_weight,
                             "correlation": r, "r2": q, "importance": imp, "ratio": ratio, "correlation_index": ri,
                             "n": n, "note": note})
        by_level: dict[int, float] = {}
        for row in part:
            by_level[row["level"]] = by_level.get(row["level"], 0.0) + (
                0.0 if math.isnan(row["correlation_index"]) else row["correlation_index"])
        for row in part:
            total = by_level[row["level"]]
            row["importance_coinr"] = row["correlation_index"] / total if total else float("nan")
        rows += part
    return _finish(result, rows, ["round", "id", "level", "parent", "nominal_weight", "overall_weight",
                                  "correlation", "r2", "importance", "ratio", "correlation_index",
                                  "importance_coinr", "n", "note"])


# --------------------------------------------------------------------------- the audit
@dataclass
class Audit:
    """The statistical audit of an index: every table, the findings and a summary.

    Attributes
    ----------
    indicator_stats, correlations, indicator_vs_parent, cronbach, kmo_bartlett, vif, pca_variance, importance : DataFrame
        The tables of the functions of the same names (see :data:`TABLES`).
    flags : DataFrame
        One row per finding: ``what`` (the check), ``where`` (indicator, pair or
        group), ``round``, ``value``, ``threshold``, ``severity`` (``warning`` for a
        rule broken, ``not computed`` for a statistic that could not be computed)
        and ``message`` (plain English).
    summary : list of str
        A few sentences on the audit as a whole.
    meta : dict
        Provenance: spec name and hash, data version, dataset, illustrative flag,
        rounds audited, toolkit version; ``stages``: the stage each table describes
        (:data:`STAGES`).
    result : Result
        The audited result (for the figures of :mod:`stability.report.audit`).
    """

    indicator_stats: pd.DataFrame
    correlations: pd.DataFrame
    indicator_vs_parent: pd.DataFrame
    cronbach: pd.DataFrame
    kmo_bartlett: pd.DataFrame
    vif: pd.DataFrame
    pca_variance: pd.DataFrame
    importance: pd.DataFrame
    flags: pd.DataFrame
    summary: list[str]
    meta: dict
    result: Any = field(default=None, repr=False, compare=False)

    @property
    def illustrative(self) -> bool:
        """True when the audited data are generated (illustrative)."""
        return bool(self.meta.get("illustrative"))

    @property
    def rounds(self) -> list:
        """The rounds audited (``[None]`` without rounds)."""
        return list(self.meta.get("rounds", [None]))

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every table by name, in the order of :data:`TABLES` (flags last)."""
        return {name: getattr(self, name) for name in TABLES}


_FLAG_COLUMNS = ["what", "where", "round", "value", "threshold", "severity", "message"]


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _label(spec, node: str) -> str:
    text = spec.label(node)
    return node if text == node else f"{text} ({node})"


def _in_round_words(rnd) -> str:
    return "" if rnd is None else f" in round {rnd}"


def _flags(result, a: dict[str, pd.DataFrame]) -> pd.DataFrame:
    spec = result.spec
    T = THRESHOLDS
    rows: list[dict] = []

    def add(what, where, rnd, value, threshold, message, severity="warning"):
        rows.append({"what": what, "where": where, "round": rnd, "value": value, "threshold": threshold,
                     "severity": severity, "message": message})

    def not_computed(what, where, rnd, note):
        add(what, where, rnd, float("nan"), float("nan"),
            f"{what} of {where}{_in_round_words(rnd)} could not be computed: {note}.", "not computed")

    def rget(row):
        return getattr(row, "round", None)

    for row in a["indicator_stats"].itertuples(index=False):
        rnd, ind = rget(row), row.indicator
        name = _label(spec, ind)
        if row.availability < T["availability"]:
            add("low availability", ind, rnd, row.availability, T["availability"],
                f"{name} has a value for only {_pct(row.availability)} of the locations{_in_round_words(rnd)} "
                f"(threshold {_pct(T['availability'])}).")
        if row.outlier:
            denominated = row.stage == "denominated" and spec.indicator(ind).denominator
            add("outliers", ind, rnd, row.skew, spec.treat.skew_thresh,
                f"{name} is skewed{' after denomination' if denominated else ''} (skew {row.skew:.2f}, kurtosis {row.kurt:.2f}){_in_round_words(rnd)}: "
                f"|skew| > {spec.treat.skew_thresh:g} and kurtosis > {spec.treat.kurt_thresh:g} suggest outliers"
                + (f" (treatment: {row.treatment})." if row.treatment not in ("none", "") else "."))
        answers = spec.answers.get(spec.indicator(ind).answers) if spec.indicator(ind).answers else None
        numeric = answers is None or answers.codes is None  # coded answers (yes/no, shares) are categories
        if numeric and row.share_zeros > T["share_zeros"]:
            add("many zeros", ind, rnd, row.share_zeros, T["share_zeros"],
                f"{_pct(row.share_zeros)} of the values of {name} are 0{_in_round_words(rnd)} "
                f"(threshold {_pct(T['share_zeros'])}).")
        if row.distinct <= 1 and row.n_available > 0:
            add("constant indicator", ind, rnd, float(row.distinct), 1.0,
                f"{name} has the same value everywhere{_in_round_words(rnd)}: it cannot tell locations apart.")
        elif (row.n_values and numeric and not (answers is not None and answers.integer)
              and row.distinct / row.n_values < T["distinct_share"]):
            add("few distinct values", ind, rnd, row.distinct / row.n_values, T["distinct_share"],
                f"{name} has only {row.distinct} distinct values among {row.n_values}{_in_round_words(rnd)}.")
        if not math.isnan(row.disagreement_rate) and row.disagreement_rate > T["disagreement_rate"]:
            add("key informants disagree", ind, rnd, row.disagreement_rate, T["disagreement_rate"],
                f"Key informants disagree on {name} in {_pct(row.disagreement_rate)} of the locations"
                f"{_in_round_words(rnd)} (threshold {_pct(T['disagreement_rate'])}).")
        if row.note:
            not_computed("statistics", ind, rnd, row.note)

    corr = a["correlations"]
    seen_nan = set()
    for row in corr.itertuples(index=False):
        if row.var1 >= row.var2 and row.var1 != row.var2:
            continue
        rnd = rget(row)
        if row.var1 == row.var2:
            continue
        if row.same_group and abs(row.correlation) > T["high_correlation"]:
            add("high correlation", f"{row.var1} ~ {row.var2}", rnd, row.correlation, T["high_correlation"],
                f"{_label(spec, row.var1)} and {_label(spec, row.var2)} (both in {_label(spec, row.group1)}) "
                f"correlate at {row.correlation:.2f}{_in_round_words(rnd)}: they may measure the same thing "
                "(double counting).")
        if row.note and (rnd, row.note) not in seen_nan:
            pairs = corr[(corr["note"] == row.note) & (corr["var1"] < corr["var2"])]
            if "round" in corr.columns:
                pairs = pairs[pairs["round"].astype(str) == str(rnd)]
            seen_nan.add((rnd, row.note))
            where = ", ".join(f"{x} ~ {y}" for x, y in zip(pairs["var1"].head(5), pairs["var2"].head(5)))
            more = f" and {len(pairs) - 5} more pairs" if len(pairs) > 5 else ""
            not_computed("correlation", where + more, rnd, row.note)

    for row in a["indicator_vs_parent"].itertuples(index=False):
        rnd = rget(row)
        if row.correlation_parent < T["parent_correlation"]:
            add("negative correlation with parent", row.id, rnd, row.correlation_parent, T["parent_correlation"],
                f"{_label(spec, row.id)} correlates negatively ({row.correlation_parent:.2f}) with "
                f"{_label(spec, row.parent)}{_in_round_words(rnd)}: check its direction.")
        if row.note:
            not_computed("correlation with parent", row.id, rnd, row.note)

    for row in a["cronbach"].itertuples(index=False):
        rnd = rget(row)
        if row.item:
            continue
        if row.alpha < T["cronbach_alpha"]:
            add("low Cronbach's alpha", row.group, rnd, row.alpha, T["cronbach_alpha"],
                f"The indicators of {_label(spec, row.group)} are not consistent (Cronbach's alpha "
                f"{row.alpha:.2f} < {T['cronbach_alpha']:g}){_in_round_words(rnd)}.")
        if math.isnan(row.alpha) and row.note:
            not_computed("Cronbach's alpha", row.group, rnd, row.note)

    for row in a["kmo_bartlett"].itertuples(index=False):
        rnd = rget(row)
        if row.item:
            continue
        if row.kmo < T["kmo"]:
            add("low KMO", row.group, rnd, row.kmo, T["kmo"],
                f"The indicators of {_label(spec, row.group)} share little common variance (KMO {row.kmo:.2f} < "
                f"{T['kmo']:g}){_in_round_words(rnd)}.")
        if row.bartlett_p > T["bartlett_p"]:
            add("Bartlett's test not significant", row.group, rnd, row.bartlett_p, T["bartlett_p"],
                f"The correlations among the indicators of {_label(spec, row.group)} cannot be told from none "
                f"(Bartlett p = {row.bartlett_p:.3g}){_in_round_words(rnd)}.")
        if row.note:
            not_computed("KMO and Bartlett's test", row.group, rnd, row.note)

    for row in a["vif"].itertuples(index=False):
        rnd = rget(row)
        if row.vif > T["vif"]:
            add("high VIF", row.indicator, rnd, row.vif, T["vif"],
                f"{_label(spec, row.indicator)} is largely explained by the other indicators of "
                f"{_label(spec, row.pillar)} (VIF {row.vif:.1f} > {T['vif']:g}){_in_round_words(rnd)}.")
        if row.note:
            not_computed("VIF", row.indicator, rnd, row.note)

    pca = a["pca_variance"]
    keys = ["round", "group"] if "round" in pca.columns else ["group"]
    for key, g in pca.groupby(keys, sort=False, dropna=False):
        rnd = key[0] if "round" in pca.columns else None
        group = key[-1]
        if g["note"].iloc[0]:
            not_computed("PCA", group, rnd, g["note"].iloc[0])
            continue
        if int(g["level"].iloc[0]) != 2:
            continue  # pillars should be one dimension each; the index combines several on purpose
        big = int((g["eigenvalue"] > T["kaiser_eigenvalue"]).sum())
        if big > 1:
            first = float(g["variance_share"].iloc[0])
            add("more than one dimension", group, rnd, float(big), T["kaiser_eigenvalue"],
                f"{big} principal components of {_label(spec, group)} have an eigenvalue above "
                f"{T['kaiser_eigenvalue']:g} (the first explains {_pct(first)}){_in_round_words(rnd)}: "
                "its indicators may measure more than one thing.")

    for row in a["importance"].itertuples(index=False):
        rnd = rget(row)
        if not math.isnan(row.ratio) and not (T["importance_ratio_low"] <= row.ratio <= T["importance_ratio_high"]):
            more = row.ratio > T["importance_ratio_high"]
            add("importance differs from weight", row.id, rnd, row.ratio,
                T["importance_ratio_high"] if more else T["importance_ratio_low"],
                f"{_label(spec, row.id)} drives {_label(spec, row.parent)} {'more' if more else 'less'} than its "
                f"weight says: importance {row.importance:.2f} against nominal weight {row.nominal_weight:.2f} "
                f"(ratio {row.ratio:.2f}){_in_round_words(rnd)}.")
        if row.note and (math.isnan(row.importance) or math.isnan(row.ratio)):
            not_computed("importance", row.id, rnd, row.note)

    out = pd.DataFrame(rows, columns=_FLAG_COLUMNS)
    if not _has_rounds(result):
        out = out.drop(columns="round")
    return out


def _summary(result, a: dict[str, pd.DataFrame], flags: pd.DataFrame, rounds: list) -> list[str]:
    spec = result.spec
    lines = []
    n_units = sum(len(_in_round(result, result.stage("raw"), r)) for r in rounds)
    where = (f"round {rounds[0]}" if len(rounds) == 1 and rounds[0] is not None else
             f"rounds {', '.join(map(str, rounds))}" if rounds[0] is not None else "the data")
    lines.append(f"{len(spec.indicators)} indicators in {len(spec.aggregates_at(2))} pillars, "
                 f"{n_units:,} locations audited ({where})"
                 + (": ILLUSTRATIVE data, not a real survey." if result.illustrative else "."))
    warn = flags[flags["severity"] == "warning"] if len(flags) else flags
    if len(warn):
        counts = warn["what"].value_counts()
        lines.append(f"{len(warn)} finding{'s' if len(warn) != 1 else ''}: "
                     + ", ".join(f"{n} {what}" for what, n in counts.items()) + ".")
    else:
        lines.append("No rule of the audit is broken.")
    last = rounds[-1]
    cr = a["cronbach"]
    cr = cr[(cr["item"] == "") & (cr["level"] == 2)]
    if "round" in cr.columns:
        cr = cr[cr["round"].astype(str) == str(last)]
    if len(cr):
        lines.append("Cronbach's alpha of the pillars" + _in_round_words(last) + ": "
                     + ", ".join(f"{spec.label(g)} {al:.2f}" if not math.isnan(al) else f"{spec.label(g)} n/a"
                                 for g, al in zip(cr["group"], cr["alpha"])) + ".")
    imp = a["importance"]
    if "round" in imp.columns:
        imp = imp[imp["round"].astype(str) == str(last)]
    off = imp[~imp["ratio"].between(THRESHOLDS["importance_ratio_low"], THRESHOLDS["importance_ratio_high"])
              & imp["ratio"].notna()]
    if len(off):
        verb = "drives its parent much more or less than its" if len(off) == 1 else \
            "drive their parent much more or less than their"
        lines.append(f"{len(off)} of {len(imp)} components {verb} weight says{_in_round_words(last)}: "
                     + ", ".join(off["id"].head(6))
                     + (" ..." if len(off) > 6 else "") + ".")
    nc = flags[flags["severity"] == "not computed"] if len(flags) else flags
    if len(nc):
        lines.append(f"{len(nc)} statistic{'s' if len(nc) != 1 else ''} could not be computed "
                     "(see the findings for why).")
    return lines


def audit(result, round=None) -> Audit:
    """Run every check of the statistical audit.

    Parameters
    ----------
    result : Result
    round : None, "latest" or a round
        ``None``: every round, separately.

    Returns
    -------
    Audit

    Examples
    --------
    >>> import stability as st                                                  # doctest: +SKIP
    >>> from stability.audit import audit
    >>> a = audit(st.compute("data/raw/mali_illustrative", st.load_spec("data/specs/mali.yaml")), "latest")
    >>> a.flags[["what", "where", "message"]]
    """
    from . import __version__

    rounds = audited_rounds(result, round)
    sel = None if rounds == [None] else (rounds[0] if len(rounds) == 1 else None)
    S = STAGES
    tables = {
        "indicator_stats": indicator_stats(result, sel, stage=S["indicator_stats"]),
        "correlations": correlations(result, S["correlations"], "pearson", sel),
        "indicator_vs_parent": indicator_vs_parent(result, "pearson", sel),
        "cronbach": cronbach(result, S["cronbach"], sel),
        "kmo_bartlett": kmo_bartlett(result, S["kmo_bartlett"], sel),
        "vif": vif(result, S["vif"], sel),
        "pca_variance": pca_variance(result, S["pca_variance"], sel),
        "importance": importance(result, sel),
    }
    flags = _flags(result, tables)
    src = result.source
    meta = {"spec": result.spec.name, "spec_hash": result.spec_hash, "data_version": result.data_version,
            "dataset": str(src.get("name", "")), "illustrative": bool(result.illustrative), "rounds": rounds,
            "round_labels": [result.round_label(r) if r is not None else "" for r in rounds],
            "toolkit_version": __version__, "thresholds": dict(THRESHOLDS), "min_rows": MIN_ROWS,
            "stages": dict(STAGES)}
    return Audit(**tables, flags=flags, summary=_summary(result, tables, flags, rounds), meta=meta, result=result)
