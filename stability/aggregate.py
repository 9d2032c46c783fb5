"""Step 5 -- aggregation, level by level.

Each aggregate is a weighted mean of its children's scores (indicators for a
pillar, pillars for the index); the next level averages the child *scores*,
never the indicators, and nothing is re-normalised between levels.

Missing children are dropped and the weights re-normalised among the present
ones (COINr's rule); when every child is missing the score is missing.  With a
data-availability ``threshold`` the score is also missing when the share of
children present is below it.

The methods are registered in :data:`AGGREGATIONS` (one function each); the
README's table of methods is generated from it.  A method whose scores stay
within the range of the children's scores (every weighted mean) is
``on_scale``; an outranking method (Copeland) gives counts on a scale of its
own, so an index built with it needs quantile categories.
"""

from __future__ import annotations

import numpy as np

from .exceptions import MethodError
from .registry import Registry


#: Aggregation methods.  ``func(cols, w, p, name, children, n, groups)`` returns the
#: scores of ``n`` units from the child columns ``cols`` and weights ``w``, and the
#: number of children present per unit; ``requires`` lists the level options it
#: cannot do without; ``on_scale`` says whether the scores stay within the range
#: of the children's scores.
AGGREGATIONS = Registry("aggregation", "levels.method", defaults={"requires": (), "on_scale": True})


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
    method : str
        A method of :data:`AGGREGATIONS` (``arithmetic``, ``geometric``,
        ``harmonic``, ``generalised``, ``copeland``).
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
    return _weighted_mean([X[:, j] for j in range(X.shape[1])], w, method, p, threshold, name, children,
                          X.shape[0])


def _weighted_mean(cols: list[np.ndarray], w, method: str, p: float | None, threshold: float | None,
                   name: str, children: list[str] | None, n: int, groups: np.ndarray | None = None) -> np.ndarray:
    """Aggregate child columns with a registered method, then apply the availability threshold.

    ``groups`` (e.g. rounds) only matters for outranking: units are compared within their group.
    """
    if method not in AGGREGATIONS:
        raise MethodError(f"'{name}': {AGGREGATIONS.unknown(method)}")
    w = np.asarray(w, dtype=float)
    out, present = AGGREGATIONS[method].func(cols, w, p=p, name=name, children=children, n=n, groups=groups)
    k = len(cols)
    if threshold is not None and k:
        out[present / k < threshold] = np.nan
    return out


def _quasi_mean(cols: list[np.ndarray], w: np.ndarray, n: int, name: str, children: list[str] | None,
                label: str, term=None, inverse=None, positive: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``inverse(sum(w term(x)), sum(w))`` over the present children, streaming over the columns.

    ``term(x, out)`` writes the transformed column into ``out`` (None: ``x`` itself);
    ``inverse(num, den)`` maps the weighted sums back onto the scale of the scores.
    Missing children are dropped and the weights re-normalised among the present ones.
    """
    k = len(cols)
    num = np.zeros(n)
    present = np.zeros(n)
    equal = bool(k) and w[0] > 0 and bool(np.all(w == w[0]))
    den = None if equal else np.zeros(n)
    buf = np.empty(n)
    ok = np.empty(n, dtype=bool)
    for j, x in enumerate(cols):
        np.isnan(x, out=ok)
        np.logical_not(ok, out=ok)
        if positive:
            with np.errstate(invalid="ignore"):
                bad = ok & (x <= 0)
            if bad.any():
                child = children[j] if children else f"column {j}"
                raise MethodError(f"'{name}': {label} mean needs positive scores, but '{child}' has "
                                  f"{int(bad.sum())} value(s) <= 0 (e.g. {x[bad][0] + 0.0:g}); normalise onto "
                                  "a positive range (e.g. minmax l=1, u=100) first")
        wj = 1.0 if equal else w[j]
        with np.errstate(invalid="ignore", divide="ignore"):
            if term is None:
                src = x if wj == 1.0 else np.multiply(x, wj, out=buf)
            else:
                src = term(x, buf)
                if wj != 1.0:
                    src *= wj
        np.add(num, src, out=num, where=ok)
        present += ok
        if den is not None:
            np.add(den, wj, out=den, where=ok)
    if den is None:
        den = present  # equal weights: the common weight cancels out
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den if inverse is None else inverse(num, den)
    out[den <= 0] = np.nan
    return out, present


@AGGREGATIONS.register("arithmetic", plain="weighted arithmetic mean",
                       summary="`sum(w x) / sum(w)`")
def _arithmetic(cols, w, *, n, name, children, **_):
    return _quasi_mean(cols, w, n, name, children, "arithmetic")


@AGGREGATIONS.register("geometric", plain="weighted geometric mean",
                       summary="`exp(sum(w log x) / sum(w))`; needs every `x > 0`")
def _geometric(cols, w, *, n, name, children, **_):
    return _quasi_mean(cols, w, n, name, children, "geometric", term=lambda x, out: np.log(x, out=out),
                       inverse=lambda num, den: np.exp(num / den), positive=True)


@AGGREGATIONS.register("harmonic", plain="weighted harmonic mean",
                       summary="`sum(w) / sum(w / x)`; needs every `x > 0`")
def _harmonic(cols, w, *, n, name, children, **_):
    return _quasi_mean(cols, w, n, name, children, "harmonic", term=lambda x, out: np.divide(1.0, x, out=out),
                       inverse=lambda num, den: den / num, positive=True)


@AGGREGATIONS.register("generalised", plain="weighted generalised mean (power {p:g})",
                       summary="`(sum(w x^p) / sum(w))^(1/p)`; `p = 0` is the geometric mean, "
                       "`p <= 0` needs every `x > 0`", params=("p",), requires=("p",))
def _generalised(cols, w, *, p, n, name, children, **_):
    if p == 0:
        return _geometric(cols, w, n=n, name=name, children=children)
    return _quasi_mean(cols, w, n, name, children, "generalised", term=lambda x, out: np.power(x, p, out=out),
                       inverse=lambda num, den: (num / den) ** (1.0 / p), positive=p <= 0)


@AGGREGATIONS.register("copeland", plain="Copeland outranking (how many others it beats, weighted)",
                       summary="outranking: sum over the other units of the round of the sign of "
                       "`sum(w [x_i > x_j]) - sum(w [x_i < x_j])` (non-compensatory); a count, not on the "
                       "children's scale", on_scale=False)
def _copeland(cols, w, *, n, groups, **_):
    X = np.column_stack(cols) if cols else np.empty((n, 0))
    present = (~np.isnan(X)).sum(axis=1).astype(float)
    if groups is None:
        return copeland(X, w), present
    out = np.empty(n)
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        out[rows] = copeland(X[rows], w)
    return out, present


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
