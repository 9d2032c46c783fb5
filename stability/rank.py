"""Step 6 -- ranks and categories.

Ranks: a higher score is better, rank 1 is the most stable location; ties share
the lowest rank (``min``, as ``scipy.stats.rankdata`` and COINr); a missing
score has no rank.  Ranks are computed
within each round, nationally and within each region (or any ``rank.within``
column).  Categories cut the index at fixed cut-offs: a score ``x`` is in
``labels[i]`` when ``cuts[i-1] <= x < cuts[i]``; with quantile categories the
cut-offs of each round are the quantiles of that round's index at the given
shares (``numpy.quantile``, linear interpolation: R's type 7).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _codes(groups: list) -> tuple[np.ndarray, np.ndarray]:
    """One integer code per combination of group labels, and where every label is present."""
    n = len(groups[0])
    code = np.zeros(n, dtype=np.int64)
    valid = np.ones(n, dtype=bool)
    for g in groups:
        c, uniques = pd.factorize(g if isinstance(g, pd.Series) else np.asarray(g), use_na_sentinel=True)
        valid &= c >= 0
        code = code * (len(uniques) + 1) + np.where(c >= 0, c, len(uniques))  # missing: a group of its own
    return code, valid


def rank_desc(values, *groupings: list) -> np.ndarray | list[np.ndarray]:
    """Descending ``min`` ranks (1 = highest score), within groups.

    Parameters
    ----------
    values : array-like
        Scores; NaN has no rank.
    *groupings : list of arrays
        Each grouping is a list of label arrays (e.g. ``[rounds]`` or
        ``[rounds, regions]``); units are ranked among those sharing every
        label.  A unit whose label is missing has no rank.  With no grouping,
        one ranking of all units.

    Returns
    -------
    ndarray, or a list of ndarray (one per grouping)
        Float ranks, NaN where missing.  Equal to
        ``scipy.stats.rankdata(-x, method="min")`` within each group.

    Notes
    -----
    The scores are sorted once and every grouping reuses that order (a stable
    sort of the small integer group codes), so national and regional ranks of
    a million units cost about one sort.
    """
    from .parallel import map_ordered, run_all

    x = np.asarray(values, dtype=float)
    n = x.size
    groupings = groupings or ([],)
    # sort the scores while the group labels are coded
    tasks = [lambda: np.argsort(-x, kind="stable")] + [lambda g=g: _codes(g) if g else None for g in groupings]
    order, *codes = run_all(tasks, n * 4)
    results = map_ordered(lambda gc: _ranks_in_groups(x, order, gc), codes, n * 4)
    return results if len(results) > 1 else results[0]


def _ranks_in_groups(x: np.ndarray, order: np.ndarray, coded) -> np.ndarray:
    """Min-ranks of the descending ``order`` of ``x`` within coded groups (None: one group)."""
    n = x.size
    if coded is not None:
        code, valid = coded
        small = code.astype(np.int16) if code.max(initial=0) < 2 ** 15 else code
        o = order[np.argsort(small[order], kind="stable")]  # radix sort keeps the score order within groups
        cs = code[o]
    else:
        o, valid, cs = order, None, None
    xs = x[o]
    pos = np.arange(n)
    new_value = np.empty(n, dtype=bool)
    new_value[:1] = True
    np.not_equal(xs[1:], xs[:-1], out=new_value[1:])
    group_start = 0
    if cs is not None:
        new_group = np.empty(n, dtype=bool)
        new_group[:1] = True
        np.not_equal(cs[1:], cs[:-1], out=new_group[1:])
        new_value |= new_group
        group_start = np.maximum.accumulate(np.where(new_group, pos, 0))
    run_start = np.maximum.accumulate(np.where(new_value, pos, 0))
    r = np.empty(n)
    r[o] = run_start - group_start + 1.0
    r[np.isnan(x)] = np.nan
    if valid is not None:
        r[~valid] = np.nan
    return r


def categorise(values, cuts: list[float], labels: list[str]) -> pd.Categorical:
    """Ordered categories of ``values`` at ``cuts`` (missing stays missing)."""
    x = np.asarray(values, dtype=float)
    codes = np.searchsorted(np.asarray(cuts, dtype=float), x, side="right")
    codes = np.where(np.isnan(x), -1, codes)
    return pd.Categorical.from_codes(codes, categories=list(labels), ordered=True)


def categorise_quantiles(values, shares: list[float], labels: list[str],
                         groups: np.ndarray | None = None) -> pd.Categorical:
    """Ordered categories at quantiles of ``values`` within each group (e.g. round).

    The cut-offs of a group are ``numpy.quantile`` of its non-missing values at
    ``shares``; then as :func:`categorise`.
    """
    x = np.asarray(values, dtype=float)
    codes = np.full(x.size, -1)
    keys = np.zeros(x.size, dtype=int) if groups is None else pd.factorize(np.asarray(groups))[0]
    for g in np.unique(keys):
        rows = np.flatnonzero(keys == g)
        v = x[rows]
        if np.isnan(v).all():
            continue
        codes[rows] = categorise(v, list(np.quantile(v[~np.isnan(v)], shares)), labels).codes
    return pd.Categorical.from_codes(codes, categories=list(labels), ordered=True)
