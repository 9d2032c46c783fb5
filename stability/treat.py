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

import bisect
import math
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


#: Columns of at most this many values are summed whole, about their mean.
SHORT = 8192
#: Values per block when summing a longer column: the block's temporaries stay
#: in the CPU cache, and each numpy call is long enough for threads summing
#: other columns to run meanwhile (numpy releases the GIL in its loops; the
#: sums avoid BLAS, whose dot product keeps the GIL and starts threads of its own).
BLOCK = 65536
#: Values sampled from a long column to estimate its mean.
PILOT = 1024


def _block_sums(x: np.ndarray, centre: float) -> tuple[int, float, float, float, float]:
    """n and power sums S1..S4 of ``x - centre`` over the non-missing values, block by block."""
    size = min(x.size, BLOCK)
    d, d2 = np.empty(size), np.empty(size)
    gap = np.empty(size, dtype=bool)
    missing = 0
    s1 = s2 = s3 = s4 = 0.0
    for start in range(0, x.size, BLOCK):
        b = x[start:start + BLOCK]
        w = b.size
        if w < size:
            d, d2, gap = d[:w], d2[:w], gap[:w]
        np.isnan(b, out=gap)
        np.subtract(b, centre, out=d)
        k = int(np.count_nonzero(gap))
        if k:
            missing += k
            np.copyto(d, 0.0, where=gap)
        np.multiply(d, d, out=d2)
        s1 += float(d.sum())
        s2 += float(d2.sum())
        s3 += float(np.einsum("i,i", d2, d))
        s4 += float(np.einsum("i,i", d2, d2))
    return x.size - missing, s1, s2, s3, s4


def _power_sums(x: np.ndarray) -> tuple[int, float, float, float, float, float]:
    """n, centre and power sums S1..S4 of ``x - centre`` over the non-missing values of ``x``.

    A column of at most :data:`SHORT` values is summed about its mean
    (:func:`_central_sums`).  A longer one is summed in one pass, block by
    block, about the mean of a sample of its values; if that centre turns out
    to be more than half a standard deviation from the mean, a second pass
    sums about the mean.  Either way the sums are about a centre close to the
    mean, so the moments derived from them keep full precision.
    """
    if x.size <= SHORT:
        return _central_sums(x[~np.isnan(x)])
    sample = x[::max(1, x.size // PILOT)]
    sample = sample[~np.isnan(sample)]
    centre = float(sample.mean()) if sample.size else 0.0
    for _ in range(2):
        if not np.isfinite(centre):
            break
        n, s1, s2, s3, s4 = _block_sums(x, centre)
        if n == 0:
            return 0, 0.0, 0.0, 0.0, 0.0, 0.0
        if not np.isfinite([s1, s2, s3, s4]).all():
            break
        shift = s1 / n
        if n * shift * shift <= 0.25 * max(s2 - s1 * shift, 0.0):
            return n, centre, s1, s2, s3, s4
        centre += shift
    return _central_sums(x[~np.isnan(x)])  # infinite values or overflow: as for a short column


def _skew_kurt(n: int, s1: float, s2: float, s3: float, s4: float) -> tuple[float, float]:
    """Type-2 sample skewness and excess kurtosis from power sums about any centre."""
    if n < 3:
        return float("nan"), float("nan")
    m2 = s2 - s1 * s1 / n
    m3 = s3 - 3 * s1 * s2 / n + 2 * s1 ** 3 / n ** 2
    m4 = s4 - 4 * s1 * s3 / n + 6 * s1 * s1 * s2 / n ** 2 - 3 * s1 ** 4 / n ** 3
    if m2 <= 1e-14 * max(abs(s2), 1e-300):
        return 0.0, 0.0 if n > 3 else float("nan")
    g = math.sqrt(n) * m3 / m2 ** 1.5
    skew = g * math.sqrt(n * (n - 1)) / (n - 2)
    if n < 4:
        return float(skew), float("nan")
    r = n * m4 / (m2 * m2)
    kurt = ((n + 1) * (r - 3) + 6) * (n - 1) / ((n - 2) * (n - 3))
    return float(skew), float(kurt)


def skew_kurt(x) -> tuple[float, float]:
    """Type-2 skewness and excess kurtosis of the non-missing values of ``x``.

    Equal to pandas ``Series.skew()`` and ``Series.kurt()`` (and Excel's SKEW/KURT).
    """
    n, _, s1, s2, s3, s4 = _power_sums(np.asarray(x, dtype=float))
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
    costs no pass over the column: the next value to clip at comes from the
    few most extreme values of each side, set aside once.
    """
    x = np.asarray(x, dtype=float)
    n, c, s1, s2, s3, s4 = _power_sums(x)
    skew, kurt = _skew_kurt(n, s1, s2, s3, s4)
    lower, upper = -np.inf, np.inf
    if not fails(skew, kurt, skew_thresh, kurt_thresh):
        return ColumnTreatment(STATUS_PASS, lower, upper, 0, skew, kurt, skew, kurt)
    v = x[~np.isnan(x)]
    cur_skew, cur_kurt = skew, kurt
    vmax, vmin = float(v.max()), float(v.min())
    hi, lo = vmax, vmin
    high, low = _Side(v, winmax, True), _Side(v, winmax, False)
    # COINr counts the points of the last high-side step plus those of the last
    # low-side step; with ties this can jump past winmax.
    last_high = last_low = 0
    failing = True
    while failing and last_high + last_low < winmax:
        if cur_skew >= 0:
            old = hi
            m, nxt = high.step(old)
            if nxt is None:
                break
            hi = upper = nxt
            new, last_high = hi, m
        else:
            old = lo
            m, nxt = low.step(old)
            if nxt is None:
                break
            lo = lower = nxt
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
    ls, lk = skew_kurt(_log_ct(v, vmin, vmax))
    return ColumnTreatment(STATUS_LOG, -np.inf, np.inf, 0, skew, kurt, ls, lk, vmin, vmax)


class _Side:
    """One side (high or low) of a column's values, for the winsorisation steps.

    :meth:`step` answers, for the value ``old`` being replaced, how many values
    are at or beyond it and which value comes next.  The answers come from the
    most extreme values of that side, set aside on first use, as long as they
    reach past ``old``; otherwise (many ties) from the whole column.
    """

    def __init__(self, v: np.ndarray, winmax: int, high: bool):
        self.v, self.high = v, high
        self.k = min(v.size, 2 * winmax + 16)
        self.tail: list[float] | None = None

    def step(self, old: float) -> tuple[int, float | None]:
        v = self.v
        if self.tail is None:  # ascending
            if self.high:
                self.tail = np.sort(np.partition(v, v.size - self.k)[v.size - self.k:]).tolist()
            else:
                self.tail = np.sort(np.partition(v, self.k - 1)[:self.k]).tolist()
        t = self.tail
        # every value beyond the tail's innermost one is in the tail
        if self.high and old > t[0]:
            i = bisect.bisect_left(t, old)
            return len(t) - i, t[i - 1]
        if not self.high and old < t[-1]:
            i = bisect.bisect_right(t, old)
            return i, t[i]
        if self.high:
            m, rest = int(np.count_nonzero(v >= old)), v[v < old]
            return m, (float(rest.max()) if rest.size else None)
        m, rest = int(np.count_nonzero(v <= old)), v[v > old]
        return m, (float(rest.min()) if rest.size else None)


def _log_ct(x: np.ndarray, vmin: float, vmax: float, clamp: bool = False) -> np.ndarray:
    """``log(x - vmin + 0.01 * (vmax - vmin))`` in a single new array (``x`` raised to ``vmin`` first
    when ``clamp``)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if clamp:
            out = np.maximum(x, vmin)
            out -= vmin
        else:
            out = np.subtract(x, vmin)
        out += 0.01 * (vmax - vmin)
        return np.log(out, out=out)


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
        from .columns import as_columns, like, n_rows
        from .parallel import map_ordered

        changing = [(j, self.columns_[c]) for j, c in enumerate(columns)
                    if c in self.columns_ and self.columns_[c].status in (STATUS_WINSORISED, STATUS_LOG)]
        if not changing:
            return X
        out = as_columns(X)

        def apply(item):
            j, ct = item
            col = np.asarray(out[j], dtype=float)
            if ct.status == STATUS_LOG:
                # rows the treatment was not fitted on (other rounds than the reference) can lie below the
                # fitted minimum, where the log is undefined: they are clamped to it (the pipeline logs each)
                return _log_ct(col, ct.log_min, ct.log_max, clamp=True)
            return np.clip(col, ct.lower, ct.upper)

        for (j, _), col in zip(changing, map_ordered(apply, changing, n_rows(X) * len(changing))):
            out[j] = col
        return like(X, out)

    def transform_matrix(self, X: np.ndarray, columns: list[str], out: np.ndarray | None = None) -> np.ndarray:
        """The learned treatment of a (rows, indicators) matrix, the same numbers as :meth:`transform`.

        Winsorised columns are clipped together (one ``np.clip`` with a lower and an upper
        bound per column, infinite for the columns left alone); log-transformed columns
        run one by one.

        Parameters
        ----------
        X : ndarray, shape (rows, len(columns))
            Float64 values.
        columns : list of str
            The indicator of each column.
        out : ndarray, optional
            C-contiguous float64 array of ``X``'s shape to write into; may be ``X`` itself.

        Returns
        -------
        ndarray
            ``out`` (a new array when not given; ``X`` itself when nothing changes and ``out`` is not given).
        """
        from .columns import as_matrix

        X = as_matrix(X, len(columns), out)
        lower, upper, logs, clip = self._matrix_plan(columns)
        if lower is None and not logs:
            if out is None:
                return X
            if out is not X:
                np.copyto(out, X)
            return out
        if out is None:
            out = np.empty(X.shape)
        if lower is not None and len(clip) * 4 > len(columns):
            np.clip(X, lower, upper, out=out)  # a log-transformed column's bounds are infinite: copied
        else:
            if out is not X:
                np.copyto(out, X)
            for j in clip:  # a few columns: clipped one by one
                np.clip(out[:, j], lower[j], upper[j], out=out[:, j])
        for j, ct in logs:
            out[:, j] = _log_ct(out[:, j], ct.log_min, ct.log_max, clamp=True)
        return out

    def _matrix_plan(self, columns: list[str]):
        """Per column, the clipping bounds (None when no column is winsorised) and the log-transformed columns."""
        key = tuple(columns)
        cache = self.__dict__.setdefault("_plans", {})
        if key not in cache:
            p = len(columns)
            lower, upper = np.full(p, -np.inf), np.full(p, np.inf)
            clipped, logs = False, []
            for j, c in enumerate(columns):
                ct = self.columns_.get(c)
                if ct is None:
                    continue
                if ct.status == STATUS_LOG:
                    logs.append((j, ct))
                elif ct.status == STATUS_WINSORISED:
                    lower[j], upper[j], clipped = ct.lower, ct.upper, True
            clip = np.flatnonzero(np.isfinite(lower) | np.isfinite(upper)).tolist()
            cache[key] = (lower, upper, logs, clip) if clipped else (None, None, logs, [])
        return cache[key]
