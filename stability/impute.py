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


def impute(X: np.ndarray, method: str, groups: list[np.ndarray] | None = None,
           fallback: str = "none", strata: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fill missing values of ``X`` (units x indicators).

    Parameters
    ----------
    X : ndarray
    method : {"none", "mean", "median", "group_mean", "group_median"}
    groups : list of ndarray, optional
        Group labels per unit for the group methods.
    fallback : {"none", "mean", "median"}
        What fills cells that the group method leaves missing.
    strata : ndarray, optional
        Labels (e.g. rounds) inside which all statistics are computed.

    Returns
    -------
    X_imputed : ndarray
        ``X`` itself when nothing is missing or ``method`` is ``none``.
    imputed : ndarray of bool
        Cells that were filled.
    """
    missing = np.isnan(X)
    if method == "none" or not missing.any():
        return X, np.zeros_like(missing)
    frame = pd.DataFrame(X, columns=range(X.shape[1]), copy=False)
    stratum = [pd.Series(strata)] if strata is not None else []
    stat = "mean" if method.endswith("mean") else "median"
    groups = [pd.Series(np.asarray(g)) for g in (groups or [])] if method.startswith("group_") else []
    filled = frame.fillna(_statistic(frame, stratum + groups, stat))
    if fallback != "none" and groups:
        # the fallback uses observed values only, never values the group step imputed
        filled = filled.fillna(_statistic(frame, stratum, fallback))
    out = np.asfortranarray(filled.to_numpy(dtype=float))
    return out, missing & ~np.isnan(out)


def _statistic(frame: pd.DataFrame, keys: list[pd.Series], stat: str):
    """Per-row statistic of each column within ``keys`` groups (per column when no keys)."""
    if not keys:
        return getattr(frame, stat)()
    return frame.groupby(keys, sort=False, dropna=False).transform(stat)
