"""Step 1 -- denomination: indicators divided by a size variable.

``x / (denominator / denominator_scale)`` per indicator that names a
``denominator`` column (e.g. water points per 1,000 residents with
``denominator: population`` and ``denominator_scale: 1000``).  A missing or
non-positive denominator gives a missing value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def denominate(X, columns: list[str], spec, units):
    """Return ``X`` with denominated columns replaced (``X`` itself when none are).

    ``X`` is a 2-D array or a list of columns; the result has the same form.
    """
    from .columns import as_columns, like

    todo = [(j, spec.indicator(c)) for j, c in enumerate(columns) if spec.indicator(c).denominator]
    if not todo:
        return X
    out = as_columns(X)
    for j, ind in todo:
        den = pd.to_numeric(units[ind.denominator], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[j] = out[j] / (np.where(den > 0, den, np.nan) / ind.denominator_scale)
    return like(X, out)
