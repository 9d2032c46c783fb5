"""Step 3 -- outlier treatment, as COINr's ``Treat()`` with its defaults.

Per indicator, on the raw (not direction-adjusted) values with missing values
removed:

* skew and kurtosis are the type-2 (Excel ``SKEW``/``KURT``, pandas) estimators;
* the indicator *fails* when ``|skew| >= skew_thresh`` **and** ``kurt >= kurt_thresh``;
* while it fails and fewer than ``winmax`` points have been winsorised, the points
  equal to the current maximum (if skew >= 0, else the minimum) are set to the
  maximum (minimum) of the remaining points, and the test is repeated (as in
  COINr, the count is the size of the tied block replaced last on each side, so
  ties can take it past ``winmax``);
* if it still fails, the winsorised values are discarded and the original column
  is log-transformed, ``log(x - min(x) + 0.01 * (max(x) - min(x)))``; the result
  is kept even if it still fails.

Winsorising the top points ``k`` times is the same as clipping at the value that
became the maximum, so the fitted state is a pair of clipping bounds per
indicator (or the log parameters), which can be applied to other rows (another
round) with :meth:`OutlierTreatment.transform`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STATUS_PASS = "pass"
STATUS_WINSORISED = "winsorised"
STATUS_LOG = "log"
STATUS_SKIPPED = "skipped"


def _central_sums(x: np.ndarray) -> tuple[int, float, float, float, float, float]:
    """n, centre and power sums S1..S4 of ``x - centre`` (centre = mean)."""
    n = x.size
    if n == 0:
        return 0, 0.0, 0.0, 0.0, 0.0, 0.0
    c = float(x.mean())
    d = x - c
    d2 = d * d
    # dot products: one fused pass each
    return n, c, float(d.sum()), float(d2.sum()), float(d2 @ d), float(d2 @ d2)


def _skew_kurt(n: int, s1: float, s2: float, s3: float, s4: float) -> tuple[float, float]:
    """Type-2 sample skewness and excess kurtosis from power sums about any centre."""
    if n < 3:
        return float("nan"), float("nan")
    m2 = s2 - s1 * s1 / n
    m3 = s3 - 3 * s1 * s2 / n + 2 * s1 ** 3 / n ** 2
    m4 = s4 - 4 * s1 * s3 / n + 6 * s1 * s1 * s2 / n ** 2 - 3 * s1 ** 4 / n ** 3
    if m2 <= 1e-14 * max(abs(s2), 1e-300):
        return 0.0, 0.0 if n > 3 else float("nan")
    g = np.sqrt(n) * m3 / m2 ** 1.5
    skew = g * np.sqrt(n * (n - 1)) / (n - 2)
    if n < 4:
        return float(skew), float("nan")
    r = n * m4 / (m2 * m2)
    kurt = ((n + 1) * (r - 3) + 6) * (n - 1) / ((n - 2) * (n - 3))
    return float(skew), float(kurt)


def skew_kurt(x) -> tuple[float, float]:
    """Type-2 skewness and excess kurtosis of the non-missing values of ``x``.

    Equal to pandas ``Series.skew()`` and ``Series.kurt()`` (and Excel's SKEW/KURT).
    """
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    n, _, s1, s2, s3, s4 = _central_sums(x)
    return _skew_kurt(n, s1, s2, s3, s4)


@dataclass(frozen=True)
class ColumnTreatment:
    """What the treatment learned about one indicator."""

    status: str
    lower: float
    upper: float
    n_winsorised: int
    skew: float
    kurt: float
    skew_after: float
    kurt_after: float
    log_min: float = float("nan")
    log_max: float = float("nan")


def fails(skew: float, kurt: float, skew_thresh: float, kurt_thresh: float) -> bool:
    """COINr's outlier flag: both ``|skew| >= skew_thresh`` and ``kurt >= kurt_thresh``."""
    return bool(abs(skew) >= skew_thresh and kurt >= kurt_thresh)


def treat_column(x: np.ndarray, winmax: int = 5, skew_thresh: float = 2.0, kurt_thresh: float = 3.5,
                 log_fallback: bool = True) -> ColumnTreatment:
    """Learn the COINr treatment of one column (see the module docstring).

    Power sums are updated as points are replaced, so each winsorisation step
    costs two passes over the column rather than a full recomputation.
    """
    v = np.asarray(x, dtype=float)
    v = v[~np.isnan(v)]
    n, c, s1, s2, s3, s4 = _central_sums(v)
    skew, kurt = _skew_kurt(n, s1, s2, s3, s4)
    lower, upper = -np.inf, np.inf
    if not fails(skew, kurt, skew_thresh, kurt_thresh):
        return ColumnTreatment(STATUS_PASS, lower, upper, 0, skew, kurt, skew, kurt)
    cur_skew, cur_kurt = skew, kurt
    hi, lo = float(v.max()), float(v.min())
    # COINr counts the points of the last high-side step plus those of the last
    # low-side step; with ties this can jump past winmax.
    last_high = last_low = 0
    failing = True
    while failing and last_high + last_low < winmax:
        if cur_skew >= 0:
            old = hi
            m = int(np.count_nonzero(v >= old))
            rest = v[v < old]
            if rest.size == 0:
                break
            hi = upper = float(rest.max())
            new, last_high = hi, m
        else:
            old = lo
            m = int(np.count_nonzero(v <= old))
            rest = v[v > old]
            if rest.size == 0:
                break
            lo = lower = float(rest.min())
            new, last_low = lo, m
        a, b = old - c, new - c
        s1 += m * (b - a)
        s2 += m * (b ** 2 - a ** 2)
        s3 += m * (b ** 3 - a ** 3)
        s4 += m * (b ** 4 - a ** 4)
        cur_skew, cur_kurt = _skew_kurt(n, s1, s2, s3, s4)
        failing = fails(cur_skew, cur_kurt, skew_thresh, kurt_thresh)
    n_win = last_high + last_low
    if not failing:
        return ColumnTreatment(STATUS_WINSORISED, lower, upper, n_win, skew, kurt, cur_skew, cur_kurt)
    if not log_fallback:
        return ColumnTreatment(STATUS_WINSORISED, lower, upper, n_win, skew, kurt, cur_skew, cur_kurt)
    vmin, vmax = float(v.min()), float(v.max())
    logged = _log_ct(v, vmin, vmax)
    ls, lk = skew_kurt(logged)
    return ColumnTreatment(STATUS_LOG, -np.inf, np.inf, 0, skew, kurt, ls, lk, vmin, vmax)


def _log_ct(x: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.log(x - vmin + 0.01 * (vmax - vmin))


class OutlierTreatment:
    """Winsorise or log-transform indicators that fail the skew/kurtosis test.

    Parameters
    ----------
    winmax : int
        Most points winsorised per indicator before falling back to a log.
    skew_thresh, kurt_thresh : float
        Thresholds of the outlier test (COINr defaults 2 and 3.5).
    log_fallback : bool
        Log-transform indicators that winsorising cannot fix (COINr's ``log_CT``).

    Attributes
    ----------
    columns_ : dict[str, ColumnTreatment]
        Per treated indicator: status, clipping bounds, points winsorised,
        skew and kurtosis before and after.
    """

    def __init__(self, winmax: int = 5, skew_thresh: float = 2.0, kurt_thresh: float = 3.5,
                 log_fallback: bool = True):
        self.winmax = winmax
        self.skew_thresh = skew_thresh
        self.kurt_thresh = kurt_thresh
        self.log_fallback = log_fallback

    def fit(self, X, columns: list[str], treat: list[bool] | None = None) -> "OutlierTreatment":
        """Learn the treatment of each column of ``X`` (2-D array or list of columns)."""
        from .columns import as_columns, n_cells
        from .parallel import map_ordered

        cols = as_columns(X)
        treat = treat if treat is not None else [True] * len(columns)
        todo = [j for j in range(len(columns)) if treat[j]]
        fitted = map_ordered(lambda j: treat_column(cols[j], self.winmax, self.skew_thresh, self.kurt_thresh,
                                                    self.log_fallback), todo, n_cells(X))
        self.columns_ = {columns[j]: ct for j, ct in zip(todo, fitted)}
        return self

    def transform(self, X, columns: list[str]):
        """Apply the learned treatment.

        Returns ``X`` itself when nothing changes; otherwise the same form as
        ``X`` with only the treated columns replaced (others shared).
        """
        from .columns import as_columns, like

        changing = [(j, self.columns_[c]) for j, c in enumerate(columns)
                    if c in self.columns_ and self.columns_[c].status in (STATUS_WINSORISED, STATUS_LOG)]
        if not changing:
            return X
        out = as_columns(X)
        for j, ct in changing:
            col = np.array(out[j], dtype=float, copy=True)
            if ct.status == STATUS_LOG:
                col = _log_ct(col, ct.log_min, ct.log_max)
            else:
                np.clip(col, ct.lower, ct.upper, out=col)
            out[j] = col
        return like(X, out)
