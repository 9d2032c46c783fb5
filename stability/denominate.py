"""Step 1 -- denomination: indicators divided by a size variable.

``x / (denominator / denominator_scale)`` per indicator that names a
``denominator`` column (e.g. water points per 1,000 residents with
``denominator: population`` and ``denominator_scale: 1000``).  A missing or
non-positive denominator gives a missing value.
"""

from __future__ import annotations

import numpy as np


def denominate(X: np.ndarray, columns: list[str], spec, units) -> np.ndarray:
    """Return ``X`` with denominated columns replaced (``X`` itself when none are)."""
    todo = [(j, spec.indicator(c)) for j, c in enumerate(columns) if spec.indicator(c).denominator]
    if not todo:
        return X
    out = X.copy(order="F")
    for j, ind in todo:
        den = units[ind.denominator].to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            col = out[:, j] / (np.where(den > 0, den, np.nan) / ind.denominator_scale)
        out[:, j] = col
    return out
