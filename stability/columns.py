"""Tables as lists of column vectors.

The numeric steps work column by column.  Passing a table as a list of 1-D
arrays lets a step replace only the columns it changes: unchanged columns are
shared between stages instead of copied, which keeps a million-row index with
every stage kept within a small multiple of the input's memory.  The steps also
accept and return plain 2-D arrays (units x indicators).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def as_columns(X) -> list[np.ndarray]:
    """The columns of a 2-D array, or the list itself."""
    if isinstance(X, np.ndarray):
        if X.ndim != 2:
            raise ValueError("expected a 2-D array (units x indicators)")
        return [X[:, j] for j in range(X.shape[1])]
    return list(X)


def like(X, cols: list[np.ndarray]):
    """Return ``cols`` in the form of ``X`` (a 2-D array if ``X`` was one)."""
    if isinstance(X, np.ndarray):
        return np.column_stack(cols) if cols else np.empty((X.shape[0], 0))
    return cols


def n_rows(X) -> int:
    return X.shape[0] if isinstance(X, np.ndarray) else (len(X[0]) if len(X) else 0)


def n_cells(X) -> int:
    return X.size if isinstance(X, np.ndarray) else sum(len(c) for c in X)


def frame_columns(df: pd.DataFrame) -> list[np.ndarray]:
    """Columns of a numeric DataFrame as float arrays (views where possible)."""
    return [df[c].to_numpy(dtype=float, na_value=np.nan) for c in df.columns]


def to_frame(cols: list[np.ndarray], names: list[str], index: pd.Index) -> pd.DataFrame:
    """A DataFrame over ``cols`` without copying them."""
    return pd.DataFrame(dict(zip(names, cols)), index=index, copy=False)


def take_rows(cols: list[np.ndarray], rows: np.ndarray) -> list[np.ndarray]:
    return [c[rows] for c in cols]


def as_matrix(X, n_columns: int, out: np.ndarray | None = None) -> np.ndarray:
    """``X`` as a float64 (rows, ``n_columns``) matrix, after checking that ``out`` (when given) can hold it.

    Raises
    ------
    ValueError
        When ``X`` is not such a matrix, or ``out`` is not a C-contiguous float64 array of its shape.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != n_columns:
        raise ValueError(f"expected a matrix of {n_columns} columns, got shape {X.shape}")
    if out is not None and (out.shape != X.shape or out.dtype != np.float64 or not out.flags.c_contiguous):
        raise ValueError(f"out must be a C-contiguous float64 array of shape {X.shape}")
    return X
