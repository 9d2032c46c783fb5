"""Step 2 -- imputation of missing indicator values.

The methods are registered in :data:`IMPUTERS`: ``none``; ``mean`` / ``median``
of the indicator; ``group_mean`` / ``group_median`` of the indicator within a
group (an admin column, e.g. the cercle).  Cells whose group has no observed
value stay missing, unless ``fallback`` names an overall method (one that is
not ``grouped``).  Statistics come from the
same round (or from all rounds when normalisation ``scope`` is ``pooled``).
Every imputed cell is returned in a mask and logged by the pipeline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .registry import Registry

#: Imputation methods.  ``func(frame, keys)`` returns, for every cell of ``frame``
#: (the indicator columns with missing values), the value that fills it when it is
#: missing, computed within the groups of ``keys`` (a list of label Series: the
#: stratum, e.g. the round, then for ``grouped`` methods the imputation group).
#: ``none`` has no function.
IMPUTERS = Registry("imputation", "impute.method", defaults={"grouped": False})


def _statistic(frame: pd.DataFrame, keys: list[pd.Series], stat: str):
    """Per-row statistic of each column within ``keys`` groups (per column when no keys)."""
    if not keys:
        return getattr(frame, stat)()
    return frame.groupby(keys, sort=False, dropna=False).transform(stat)


def _mean(frame: pd.DataFrame, keys: list[pd.Series]):
    return _statistic(frame, keys, "mean")


def _median(frame: pd.DataFrame, keys: list[pd.Series]):
    return _statistic(frame, keys, "median")


# a grouped method is the same statistic, taken within the imputation group too
IMPUTERS.register("none", summary="missing values stay missing")(None)
IMPUTERS.register("mean", summary="mean of the indicator in the round")(_mean)
IMPUTERS.register("median", summary="median of the indicator in the round")(_median)
IMPUTERS.register("group_mean", summary="mean of the indicator in the same `group` (e.g. cercle) and round",
                  params=("group", "fallback"), grouped=True)(_mean)
IMPUTERS.register("group_median", summary="median of the indicator in the same `group` and round",
                  params=("group", "fallback"), grouped=True)(_median)


def impute(X, method: str, groups: list[np.ndarray] | None = None,
           fallback: str = "none", strata: np.ndarray | None = None):
    """Fill missing values of ``X`` (units x indicators).

    Parameters
    ----------
    X : ndarray (units x indicators) or list of columns
    method : str
        A method of :data:`IMPUTERS`.
    groups : list of ndarray, optional
        Group labels per unit for the ``grouped`` methods.
    fallback : str
        A method of :data:`IMPUTERS` that is not grouped: what fills the cells
        that a grouped method leaves missing (``none``: they stay missing).
    strata : ndarray, optional
        Labels (e.g. rounds) inside which all statistics are computed.

    Returns
    -------
    X_imputed : same form as ``X``
        ``X`` itself when nothing is missing or ``method`` is ``none``; otherwise
        only the columns with imputed cells are new.
    imputed : same form as ``X`` (bool), or None
        The cells that were filled (None when nothing was).
    """
    from .columns import as_columns, like

    fill = IMPUTERS[method]
    if fill.func is None:
        return X, None
    cols = as_columns(X)
    todo = [j for j, c in enumerate(cols) if np.isnan(c).any()]
    if not todo:
        return X, None
    frame = pd.DataFrame({j: cols[j] for j in todo}, copy=False)
    stratum = [pd.Series(strata)] if strata is not None else []
    groups = [pd.Series(np.asarray(g)) for g in (groups or [])] if fill.grouped else []
    filled = frame.fillna(fill.func(frame, stratum + groups))
    back = IMPUTERS[fallback]
    if back.func is not None and groups:
        # the fallback uses observed values only, never values the group step imputed
        filled = filled.fillna(back.func(frame, stratum))
    out = list(cols)
    masks = [np.zeros(len(c), dtype=bool) for c in cols]
    for j in todo:
        new = filled[j].to_numpy(dtype=float)
        masks[j] = np.isnan(cols[j]) & ~np.isnan(new)
        out[j] = new
    return like(X, out), like(X, masks)

