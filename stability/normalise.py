"""Step 4 -- normalisation onto a common scale, direction first.

Every indicator is first multiplied by its direction (+1 / -1), so that higher
always means more stable; fixed parameters given in the indicator's units
(goalposts, target) are mapped the same way.  Statistics are taken over the
non-missing values of the rows the normaliser is fitted on.

The methods are registered in :data:`NORMALISERS` (one function each, with
what it computes, the options it reads and the range of its scores); the
README's table of methods is generated from it (``python -m stability.registry``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .exceptions import MethodError
from .registry import Registry

#: Normalisation methods.  ``func(x, direction, params, stats, out, name)`` writes the
#: scores of the raw column ``x`` into ``out``; ``fit(x, name, method, direction)`` (data-driven methods
#: only) learns ``stats`` from the direction-adjusted, non-missing values of the rows
#: it is fitted on; ``bounds(params)`` is the range of the scores, or None when
#: it has none fixed in advance; ``resolve(spec, indicator, params)`` adds
#: parameters taken from the indicator (goalposts, target).
NORMALISERS = Registry("normalisation", "normalise.method",
                       defaults={"fit": None, "bounds": None, "resolve": None})


@dataclass(frozen=True)
class Method:
    """The normalisation of one indicator: method, parameters and direction."""

    method: str
    direction: int = 1
    params: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- fits
def _fit_range(x: np.ndarray, name: str, method: str, direction: int) -> dict:
    lo, hi = float(x.min()), float(x.max())
    if hi == lo:
        raise MethodError(f"indicator '{name}' has zero range (every value is {lo * direction:g}): "
                          f"{method} normalisation is undefined")
    return {"min": lo, "max": hi}


def _fit_moments(x: np.ndarray, name: str, method: str, direction: int) -> dict:
    sd = float(x.std(ddof=1)) if x.size > 1 else 0.0
    if not sd > 0:
        raise MethodError(f"indicator '{name}' has zero standard deviation: z-scores are undefined")
    return {"mean": float(x.mean()), "sd": sd}


def _fit_sorted(x: np.ndarray, name: str, method: str, direction: int) -> dict:
    return {"sorted": np.sort(x)}


# --------------------------------------------------------------------------- methods
@NORMALISERS.register("minmax", summary="`(x - min) / (max - min) * (u - l) + l`", params=("l", "u"),
                      fit=_fit_range, bounds=lambda p: (p["l"], p["u"]))
def _minmax(x, d, p, s, out, name):
    if not p["l"] < p["u"]:
        raise MethodError(f"indicator '{name}': minmax needs l < u")
    _affine(x, d, s["min"], s["max"] - s["min"], p["u"] - p["l"], p["l"], out)


@NORMALISERS.register("zscore", summary="`(x - mean) / sd * s + m` (sample sd, n - 1); unbounded",
                      params=("m", "s"), fit=_fit_moments)
def _zscore(x, d, p, s, out, name):
    _affine(x, d, s["mean"], s["sd"], p["s"], p["m"], out)


def _ranks(x, d, s, out):
    np.multiply(x, d, out=out)
    ref = s["sorted"]
    nan = np.isnan(out)
    r = np.searchsorted(ref, out, side="left").astype(float) + 1.0
    r[nan] = np.nan
    return r, ref.size


@NORMALISERS.register("rank", summary="rank among the fitted values, ties `min` (1 = lowest); 1 to n",
                      fit=_fit_sorted)
def _rank(x, d, p, s, out, name):
    out[:], _ = _ranks(x, d, s, out)


@NORMALISERS.register("percentile", summary="`(rank - 1) / (n - 1) * scale`: 0 for the lowest value, `scale` "
                      "for the highest", params=("scale",), fit=_fit_sorted, bounds=lambda p: (0.0, p["scale"]))
def _percentile(x, d, p, s, out, name):
    r, n = _ranks(x, d, s, out)
    out[:] = (r - 1.0) / max(n - 1, 1) * p["scale"]


def _goalposts_of(spec, ind, params):
    lo, hi = spec.goalposts(ind)
    return {**params, "lower": lo, "upper": hi}


@NORMALISERS.register("goalposts", summary="`clip((x - lower) / (upper - lower), 0, 1) * scale` with the "
                      "indicator's `goalposts` (default: its valid range)", params=("scale",),
                      bounds=lambda p: (0.0, p["scale"]), resolve=_goalposts_of)
def _goalposts(x, d, p, s, out, name):
    lo, hi = (p["lower"], p["upper"]) if d > 0 else (-p["upper"], -p["lower"])
    _affine(x, d, lo, hi - lo, 1.0, 0.0, out)
    np.clip(out, 0.0, 1.0, out=out)
    if p["scale"] != 1.0:
        np.multiply(out, p["scale"], out=out)


def _target_of(spec, ind, params):
    if ind.target is None:
        raise MethodError(f"indicator '{ind.id}': dist2target needs a 'target'")
    return {**params, "target": ind.target}


@NORMALISERS.register("dist2target", summary="`min(1, 1 - (target - x) / (max - min)) * scale` with the "
                      "indicator's `target`; `target_basis: target` gives COINr's `(x - min) / (target - min)`; "
                      "`cap: false` drops the `min(1, .)`; no lower bound",
                      params=("scale", "target_basis", "cap"), fit=_fit_range, resolve=_target_of)
def _dist2target(x, d, p, s, out, name):
    np.multiply(x, d, out=out)
    target = p["target"] * d
    if p["target_basis"] == "target":  # COINr n_dist2targ: (x - min)/(target - min)
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


@NORMALISERS.register("none", summary="`x` unchanged (direction still applied); on the indicator's own scale, "
                      "bounded by its valid range when that is finite", bounds=lambda p: p.get("range"))
def _none(x, d, p, s, out, name):
    np.multiply(x, d, out=out)


# --------------------------------------------------------------------------- per indicator
def _options(spec, indicator) -> tuple[str, dict]:
    """An indicator's normalisation method and the options it reads (its override, else the spec's)."""
    g, o = spec.normalise, indicator.normalise
    name = (o.method if o and o.method else None) or g.method
    params = {}
    for opt in NORMALISERS[name].params:
        value = getattr(o, opt, None) if o is not None else None
        params[opt] = getattr(g, opt) if value is None else value
    return name, params


def resolve_methods(spec) -> dict[str, Method]:
    """Per-indicator normalisation from the spec's global options and overrides."""
    out = {}
    for ind in spec.indicators:
        name, params = _options(spec, ind)
        resolve = NORMALISERS[name].resolve
        out[ind.id] = Method(name, ind.direction, params if resolve is None else resolve(spec, ind, params))
    return out


def score_bounds(spec, indicator) -> tuple[float, float] | None:
    """Range of an indicator's normalised scores, or None when it is not fixed in advance."""
    name, params = _options(spec, indicator)
    method = NORMALISERS[name]
    if method.bounds is None:
        return None
    lo, hi = spec.valid_range(indicator)
    if lo is not None and hi is not None and indicator.denominator is None:
        params["range"] = (lo, hi) if indicator.direction > 0 else (-hi, -lo)
    bounds = method.bounds(params)
    return None if bounds is None else tuple(float(v) for v in bounds)


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
        fit = NORMALISERS[m.method].fit
        if fit is None:
            return None
        x = x[~np.isnan(x)] * m.direction
        if x.size == 0:
            raise MethodError(f"indicator '{name}' has no values to normalise")
        return fit(x, name, m.method, m.direction)

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
        NORMALISERS[m.method].func(x, float(m.direction), m.params, self.stats_.get(name), out, name)


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
