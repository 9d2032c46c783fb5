"""Step 5 -- aggregation, level by level.

Each aggregate is a weighted mean of its children's scores (indicators for a
pillar, pillars for the index); the next level averages the child *scores*,
never the indicators, and nothing is re-normalised between levels.

Missing children are dropped and the weights re-normalised among the present
ones (COINr's rule); when every child is missing the score is missing.  With a
data-availability ``threshold`` the score is also missing when the share of
children present is below it.

=============  ==========================================================
method         score of a unit with child scores ``x`` and weights ``w``
=============  ==========================================================
arithmetic     ``sum(w x) / sum(w)``
geometric      ``exp(sum(w log x) / sum(w))`` -- needs every ``x > 0``
harmonic       ``sum(w) / sum(w / x)`` -- needs every ``x > 0``
generalised    ``(sum(w x^p) / sum(w))^(1/p)`` (``p = 0``: geometric)
copeland       outranking: sum over other units of the sign of
               ``sum(w [x_i > x_j]) - sum(w [x_i < x_j])`` (non-compensatory)
=============  ==========================================================
"""

from __future__ import annotations

import numpy as np

from .exceptions import MethodError


def weighted_mean(X: np.ndarray, w: np.ndarray, method: str = "arithmetic", p: float | None = None,
                  threshold: float | None = None, name: str = "aggregate",
                  children: list[str] | None = None) -> np.ndarray:
    """Aggregate the columns of ``X`` (units x children) into one score per unit.

    Parameters
    ----------
    X : ndarray (n, k)
        Child scores; NaN is missing.
    w : ndarray (k,)
        Non-negative weights.
    method : {"arithmetic", "geometric", "harmonic", "generalised", "copeland"}
    p : float, optional
        Power of the generalised mean.
    threshold : float, optional
        Data-availability threshold in [0, 1].
    name : str
        Name of the aggregate, for error messages.

    Returns
    -------
    ndarray (n,)
    """
    X = np.asarray(X, dtype=float)
    if method == "copeland":
        return copeland(X, np.asarray(w, dtype=float))
    return _weighted_mean([X[:, j] for j in range(X.shape[1])], w, method, p, threshold, name, children,
                          X.shape[0])


def _weighted_mean(cols: list[np.ndarray], w, method: str, p: float | None, threshold: float | None,
                   name: str, children: list[str] | None, n: int, groups: np.ndarray | None = None) -> np.ndarray:
    """:func:`weighted_mean` streaming over child columns (no stacked copy of the children).

    ``groups`` (e.g. rounds) only matters for Copeland: units are compared within their group.
    """
    w = np.asarray(w, dtype=float)
    k = len(cols)
    if method == "copeland":
        X = np.column_stack(cols) if cols else np.empty((n, 0))
        if groups is None:
            return copeland(X, w)
        out = np.empty(n)
        for g in np.unique(groups):
            rows = np.flatnonzero(groups == g)
            out[rows] = copeland(X[rows], w)
        return out
    if method == "generalised" and p == 0:
        method = "geometric"
    if method not in ("arithmetic", "geometric", "harmonic", "generalised"):
        raise MethodError(f"'{name}': unknown aggregation method '{method}'")
    positive = method in ("geometric", "harmonic") or (method == "generalised" and p is not None and p <= 0)
    num = np.zeros(n)
    present = np.zeros(n)
    equal = bool(k) and w[0] > 0 and bool(np.all(w == w[0]))
    den = None if equal else np.zeros(n)
    term = np.empty(n)
    ok = np.empty(n, dtype=bool)
    for j, x in enumerate(cols):
        np.isnan(x, out=ok)
        np.logical_not(ok, out=ok)
        if positive:
            with np.errstate(invalid="ignore"):
                bad = ok & (x <= 0)
            if bad.any():
                child = children[j] if children else f"column {j}"
                raise MethodError(f"'{name}': {method} mean needs positive scores, but '{child}' has "
                                  f"{int(bad.sum())} value(s) <= 0 (e.g. {x[bad][0]:g}); normalise onto "
                                  "a positive range (e.g. minmax l=1, u=100) first")
        wj = 1.0 if equal else w[j]
        with np.errstate(invalid="ignore", divide="ignore"):
            if method == "arithmetic":
                src = x if wj == 1.0 else np.multiply(x, wj, out=term)
            elif method == "geometric":
                src = np.log(x, out=term)
            elif method == "harmonic":
                src = np.divide(1.0, x, out=term)
            else:
                src = np.power(x, p, out=term)
            if method != "arithmetic" and wj != 1.0:
                src *= wj
        np.add(num, src, out=num, where=ok)
        present += ok
        if den is not None:
            np.add(den, wj, out=den, where=ok)
    if den is None:
        den = present  # equal weights: the common weight cancels out
    with np.errstate(invalid="ignore", divide="ignore"):
        if method == "arithmetic":
            out = num / den
        elif method == "geometric":
            out = np.exp(num / den)
        elif method == "harmonic":
            out = den / num
        else:
            out = (num / den) ** (1.0 / p)
    out[den <= 0] = np.nan
    if threshold is not None and k:
        out[present / k < threshold] = np.nan
    return out


def copeland(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Copeland outranking score of each unit (non-compensatory aggregation).

    For each pair of units, the weight of the children on which ``i`` beats ``j``
    is compared with the weight on which ``j`` beats ``i`` (missing values do not
    vote); ``i`` scores +1 for a win, -1 for a loss, 0 for a tie.  Cost is
    quadratic in the number of units, computed in blocks of rows.
    """
    n, k = X.shape
    out = np.zeros(n)
    block = max(1, int(2_000_000 // max(n * k, 1)))
    for start in range(0, n, block):
        xi = X[start:start + block, None, :]
        xj = X[None, :, :]
        with np.errstate(invalid="ignore"):
            win = ((xi > xj) * w).sum(axis=2)
            lose = ((xi < xj) * w).sum(axis=2)
        out[start:start + block] = np.sign(win - lose).sum(axis=1)
    out[np.isnan(X).all(axis=1)] = np.nan
    return out


def aggregate(normalised, indicator_ids: list[str], spec,
              groups: np.ndarray | None = None) -> tuple[list[np.ndarray], list[str]]:
    """Aggregate normalised indicators through every level of the spec's hierarchy.

    Parameters
    ----------
    normalised : ndarray (units x indicators) or list of columns
    indicator_ids : list of str
    spec : IndexSpec
    groups : ndarray, optional
        Group (round) of each unit: outranking (Copeland) compares units of the same group only.

    Returns
    -------
    scores : list of ndarray
        One column per aggregate, in the order of ``ids``: level 2 first, the index last.
    ids : list of str
    """
    from .columns import as_columns, n_cells, n_rows

    n = n_rows(normalised)
    cells = n_cells(normalised)
    columns: dict[str, np.ndarray] = dict(zip(indicator_ids, as_columns(normalised)))
    ids: list[str] = []
    from .parallel import map_ordered

    for level in range(2, len(spec.levels) + 1):
        opts = spec.levels[level - 1]

        def one(agg, opts=opts):
            kids = spec.children(agg.id)
            kid_ids = [c.id for c in kids]
            w = np.array([c.weight for c in kids], dtype=float)
            return _weighted_mean([columns[c] for c in kid_ids], w, opts.method, opts.p, opts.threshold,
                                  agg.id, kid_ids, n, groups)

        aggs = spec.aggregates_at(level)
        for agg, score in zip(aggs, map_ordered(one, aggs, cells)):
            columns[agg.id] = score
            ids.append(agg.id)
    return [columns[c] for c in ids], ids
