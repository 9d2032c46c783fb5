"""Step 2 -- imputation of missing indicator values.

Methods: ``none``; ``mean`` / ``median`` of the indicator; ``group_mean`` /
``group_median`` of the indicator within a group (an admin column, e.g. the
cercle).  Cells whose group has no observed value stay missing, unless
``fallback`` names an overall ``mean`` or ``median``.  Statistics come from the
same round (or from all rounds when normalisation ``scope`` is ``pooled``).
Every imputed cell is returned in a mask and logged by the pipeline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def impute(X, method: str, groups: list[np.ndarray] | None = None,
           fallback: str = "none", strata: np.ndarray | None = None):
    """Fill missing values of ``X`` (units x indicators).

    Parameters
    ----------
    X : ndarray (units x indicators) or list of columns
    method : {"none", "mean", "median", "group_mean", "group_median"}
    groups : list of ndarray, optional
        Group labels per unit for the group methods.
    fallback : {"none", "mean", "median"}
        What fills cells that the group method leaves missing.
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

    if method == "none":
        return X, None
    cols = as_columns(X)
    todo = [j for j, c in enumerate(cols) if np.isnan(c).any()]
    if not todo:
        return X, None
    frame = pd.DataFrame({j: cols[j] for j in todo}, copy=False)
    stratum = [pd.Series(strata)] if strata is not None else []
    stat = "mean" if method.endswith("mean") else "median"
    groups = [pd.Series(np.asarray(g)) for g in (groups or [])] if method.startswith("group_") else []
    filled = frame.fillna(_statistic(frame, stratum + groups, stat))
    if fallback != "none" and groups:
        # the fallback uses observed values only, never values the group step imputed
        filled = filled.fillna(_statistic(frame, stratum, fallback))
    out = list(cols)
    masks = [np.zeros(len(c), dtype=bool) for c in cols]
    for j in todo:
        new = filled[j].to_numpy(dtype=float)
        masks[j] = np.isnan(cols[j]) & ~np.isnan(new)
        out[j] = new
    return like(X, out), like(X, masks)


def _statistic(frame: pd.DataFrame, keys: list[pd.Series], stat: str):
    """Per-row statistic of each column within ``keys`` groups (per column when no keys)."""
    if not keys:
        return getattr(frame, stat)()
    return frame.groupby(keys, sort=False, dropna=False).transform(stat)
