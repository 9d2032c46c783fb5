"""Step 6 -- ranks and categories.

Ranks: a higher score is better, rank 1 is the most stable location; ties share
the lowest rank (``min``); a missing score has no rank.  Ranks are computed
within each round, nationally and within each region (or any ``rank.within``
column).  Categories cut the index at fixed cut-offs: a score ``x`` is in
``labels[i]`` when ``cuts[i-1] <= x < cuts[i]``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def rank_desc(values, groups: list | None = None) -> np.ndarray:
    """Descending ``min`` ranks of ``values`` (1 = highest), within groups if given.

    Missing values stay missing.  Returns floats (NaN for missing).
    """
    x = np.asarray(values, dtype=float)
    if not groups:
        return stats.rankdata(-x, method="min", nan_policy="omit").astype(float)
    s = pd.Series(x)
    return s.groupby([pd.Series(np.asarray(g)) for g in groups], sort=False, dropna=False) \
        .rank(method="min", ascending=False).to_numpy(dtype=float)


def categorise(values, cuts: list[float], labels: list[str]) -> pd.Categorical:
    """Ordered categories of ``values`` at ``cuts`` (missing stays missing)."""
    x = np.asarray(values, dtype=float)
    codes = np.searchsorted(np.asarray(cuts, dtype=float), x, side="right")
    codes = np.where(np.isnan(x), -1, codes)
    return pd.Categorical.from_codes(codes, categories=list(labels), ordered=True)
