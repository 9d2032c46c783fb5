"""Step 4 -- normalisation onto a common scale, direction first.

Every indicator is first multiplied by its direction (+1 / -1), so that higher
always means more stable; fixed parameters given in the indicator's units
(goalposts, target) are mapped the same way.  Statistics are taken over the
non-missing values of the rows the normaliser is fitted on.

=============  ================================================================
method         score
=============  ================================================================
minmax         ``(x - min) / (max - min) * (u - l) + l``
zscore         ``(x - mean) / sd * s + m`` (sample sd, n - 1)
rank           rank among the fitted values, ties ``min`` (1 = lowest)
percentile     ``(rank_min - 1) / (n - 1) * scale`` -- 0 for the lowest value, ``scale`` for the highest
goalposts      ``clip((x - lower) / (upper - lower), 0, 1) * scale``
dist2target    ``min(1, 1 - (target - x) / (max - min)) * scale``; with
               ``target_basis: target`` COINr's ``(x - min) / (target - min)``;
               ``cap: false`` drops the ``min(1, .)``
none           ``x`` unchanged (direction still applied)
=============  ================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .exceptions import MethodError

DATA_DRIVEN = {"minmax", "zscore", "rank", "percentile", "dist2target"}


@dataclass(frozen=True)
class Method:
    """The normalisation of one indicator: method, parameters and direction."""

    method: str
    direction: int = 1
    params: dict = field(default_factory=dict)


def resolve_methods(spec) -> dict[str, Method]:
    """Per-indicator normalisation from the spec's global options and overrides."""
    g = spec.normalise
    out = {}
    for ind in spec.indicators:
        o = ind.normalise
        method = (o.method if o and o.method else None) or g.method

        def pick(name, o=o):
            value = getattr(o, name, None) if o is not None else None
            return getattr(g, name) if value is None else value

        params: dict = {}
        if method == "minmax":
            params = {"l": pick("l"), "u": pick("u")}
            if not params["l"] < params["u"]:
                raise MethodError(f"indicator '{ind.id}': minmax needs l < u")
        elif method == "zscore":
            params = {"m": pick("m"), "s": pick("s")}
        elif method in ("percentile", "goalposts", "dist2target"):
            params = {"scale": pick("scale")}
        if method == "goalposts":
            lo, hi = spec.goalposts(ind)
            params.update(lower=lo, upper=hi)
        if method == "dist2target":
            if ind.target is None:
                raise MethodError(f"indicator '{ind.id}': dist2target needs a 'target'")
            params.update(target=ind.target, basis=g.target_basis, cap=g.cap)
        out[ind.id] = Method(method, ind.direction, params)
    return out


class Normaliser:
    """Fit per-indicator normalisation statistics and apply them.

    Parameters
    ----------
    methods : dict[str, Method]
        Per indicator id, from :func:`resolve_methods`.

    Attributes
    ----------
    stats_ : dict[str, dict]
        Learned statistics per indicator (``min``/``max``, ``mean``/``sd`` or the
        sorted reference values for ranks), on the direction-adjusted scale.
    """

    def __init__(self, methods: dict[str, Method]):
        self.methods = methods

    def fit(self, X, columns: list[str]) -> "Normaliser":
        """Learn the statistics of each column of ``X`` (2-D array or list of columns)."""
        from .columns import as_columns, n_cells
        from .parallel import map_ordered

        cols = as_columns(X)
        stats = map_ordered(lambda j: self._fit_column(cols[j], columns[j]), range(len(columns)), n_cells(X))
        self.stats_ = {c: s for c, s in zip(columns, stats) if s is not None}
        return self

    def _fit_column(self, x: np.ndarray, name: str) -> dict | None:
        m = self.methods[name]
        if m.method not in DATA_DRIVEN:
            return None
        x = x[~np.isnan(x)] * m.direction
        if x.size == 0:
            raise MethodError(f"indicator '{name}' has no values to normalise")
        if m.method in ("minmax", "dist2target"):
            lo, hi = float(x.min()), float(x.max())
            if hi == lo:
                raise MethodError(f"indicator '{name}' has zero range (every value is {lo * m.direction:g}): "
                                  f"{m.method} normalisation is undefined")
            return {"min": lo, "max": hi}
        if m.method == "zscore":
            sd = float(x.std(ddof=1)) if x.size > 1 else 0.0
            if not sd > 0:
                raise MethodError(f"indicator '{name}' has zero standard deviation: z-scores are undefined")
            return {"mean": float(x.mean()), "sd": sd}
        return {"sorted": np.sort(x)}  # rank, percentile

    def transform(self, X, columns: list[str]):
        """Normalised columns, in the form of ``X`` (2-D array or list of columns)."""
        from .columns import as_columns, like, n_cells
        from .parallel import map_ordered

        cols = as_columns(X)

        def one(j):
            out = np.empty(len(cols[j]))
            self._column(cols[j], columns[j], out)
            return out

        return like(X, map_ordered(one, range(len(columns)), n_cells(X)))

    def fit_transform(self, X, columns: list[str]):
        return self.fit(X, columns).transform(X, columns)

    def _column(self, x: np.ndarray, name: str, out: np.ndarray) -> None:
        m = self.methods[name]
        p, s = m.params, self.stats_.get(name)
        d = float(m.direction)
        if m.method == "minmax":
            _affine(x, d, s["min"], s["max"] - s["min"], p["u"] - p["l"], p["l"], out)
        elif m.method == "zscore":
            _affine(x, d, s["mean"], s["sd"], p["s"], p["m"], out)
        elif m.method == "goalposts":
            lo, hi = (p["lower"], p["upper"]) if d > 0 else (-p["upper"], -p["lower"])
            _affine(x, d, lo, hi - lo, 1.0, 0.0, out)
            np.clip(out, 0.0, 1.0, out=out)
            if p["scale"] != 1.0:
                np.multiply(out, p["scale"], out=out)
        elif m.method == "none":
            np.multiply(x, d, out=out)
        elif m.method == "dist2target":
            np.multiply(x, d, out=out)
            target = p["target"] * d
            if p["basis"] == "target":  # COINr n_dist2targ: (x - min)/(target - min)
                if target == s["min"]:
                    raise MethodError(f"indicator '{name}': the target equals the minimum, "
                                      "distance to target is undefined")
                out -= s["min"]
                out *= 1.0 / (target - s["min"])
            else:  # 1 - (target - x)/(max - min)
                np.subtract(target, out, out=out)
                out *= -1.0 / (s["max"] - s["min"])
                out += 1.0
            if p["cap"]:
                np.minimum(out, 1.0, out=out)
            out *= p["scale"]
        elif m.method in ("rank", "percentile"):
            np.multiply(x, d, out=out)
            ref = s["sorted"]
            nan = np.isnan(out)
            r = np.searchsorted(ref, out, side="left").astype(float) + 1.0
            if m.method == "percentile":
                r = (r - 1.0) / max(ref.size - 1, 1) * p["scale"]
            r[nan] = np.nan
            out[:] = r


def _affine(x: np.ndarray, direction: float, shift: float, divisor: float, factor: float, offset: float,
            out: np.ndarray) -> None:
    """``out = (direction * x - shift) / divisor * factor + offset``, in COINr's order.

    Subtracting before scaling keeps full precision near the minimum, and
    dividing before multiplying maps the maximum exactly onto the upper bound.
    """
    if direction > 0:
        np.subtract(x, shift, out=out)
    else:  # -x - shift == -(x + shift), exactly
        np.add(x, shift, out=out)
        divisor = -divisor
    np.divide(out, divisor, out=out)
    if factor != 1.0:
        np.multiply(out, factor, out=out)
    if offset:
        np.add(out, offset, out=out)
