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
#: parameters taken from the indicator (goalposts, target); ``affine(direction, params, stats, name)``
#: (methods that are an affine map, optionally clipped) gives the coefficients
#: ``(shift, divisor, factor, offset, clip, scale)`` of ``func``'s operations, in :func:`_affine`'s
#: order then ``clip`` (a ``(lo, hi)`` pair or None) and ``* scale`` (see :meth:`Normaliser.transform_matrix`).
NORMALISERS = Registry("normalisation", "normalise.method",
                       defaults={"fit": None, "bounds": None, "resolve": None, "affine": None})


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


# --------------------------------------------------------------------------- affine coefficients
def _minmax_affine(d, p, s, name):
    if not p["l"] < p["u"]:
        raise MethodError(f"indicator '{name}': minmax needs l < u")
    return s["min"], s["max"] - s["min"], p["u"] - p["l"], p["l"], None, 1.0


def _zscore_affine(d, p, s, name):
    return s["mean"], s["sd"], p["s"], p["m"], None, 1.0


def _goalposts_affine(d, p, s, name):
    lo, hi = (p["lower"], p["upper"]) if d > 0 else (-p["upper"], -p["lower"])
    return lo, hi - lo, 1.0, 0.0, (0.0, 1.0), p["scale"]


def _none_affine(d, p, s, name):
    # x * d as an affine map: x - 0.0 is x, and -(x + -0.0) is -x, signed zeros included
    return (0.0 if d > 0 else -0.0), 1.0, 1.0, 0.0, None, 1.0


# --------------------------------------------------------------------------- methods
@NORMALISERS.register("minmax", plain="rescaled from its lowest value ({l:g}) to its highest ({u:g})",
                      summary="`(x - min) / (max - min) * (u - l) + l`", params=("l", "u"),
                      fit=_fit_range, bounds=lambda p: (p["l"], p["u"]), affine=_minmax_affine)
def _minmax(x, d, p, s, out, name):
    if not p["l"] < p["u"]:
        raise MethodError(f"indicator '{name}': minmax needs l < u")
    _affine(x, d, s["min"], s["max"] - s["min"], p["u"] - p["l"], p["l"], out)


@NORMALISERS.register("zscore", plain="standardised (mean {m:g}, standard deviation {s:g})",
                      summary="`(x - mean) / sd * s + m` (sample sd, n - 1); unbounded",
                      params=("m", "s"), fit=_fit_moments, affine=_zscore_affine)
def _zscore(x, d, p, s, out, name):
    _affine(x, d, s["mean"], s["sd"], p["s"], p["m"], out)


def _ranks(x, d, s, out):
    np.multiply(x, d, out=out)
    ref = s["sorted"]
    nan = np.isnan(out)
    r = np.searchsorted(ref, out, side="left").astype(float) + 1.0
    r[nan] = np.nan
    return r, ref.size


@NORMALISERS.register("rank", plain="replaced by its rank (1 = lowest value)",
                      summary="rank among the fitted values, ties `min` (1 = lowest); 1 to n",
                      fit=_fit_sorted)
def _rank(x, d, p, s, out, name):
    out[:], _ = _ranks(x, d, s, out)


@NORMALISERS.register("percentile", plain="replaced by its percentile rank (0 = lowest value, {scale:g} = highest)",
                      summary="`(rank - 1) / (n - 1) * scale`: 0 for the lowest value, `scale` "
                      "for the highest", params=("scale",), fit=_fit_sorted, bounds=lambda p: (0.0, p["scale"]))
def _percentile(x, d, p, s, out, name):
    r, n = _ranks(x, d, s, out)
    out[:] = (r - 1.0) / max(n - 1, 1) * p["scale"]


def _goalposts_of(spec, ind, params):
    lo, hi = spec.goalposts(ind)
    return {**params, "lower": lo, "upper": hi}


@NORMALISERS.register("goalposts", plain="placed between fixed goalposts (0 at the lower, {scale:g} at the upper)",
                      summary="`clip((x - lower) / (upper - lower), 0, 1) * scale` with the "
                      "indicator's `goalposts` (default: its valid range)", params=("scale",),
                      bounds=lambda p: (0.0, p["scale"]), resolve=_goalposts_of, affine=_goalposts_affine)
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


@NORMALISERS.register("dist2target", plain="measured as its distance to a target ({scale:g} = target reached)",
                      summary="`min(1, 1 - (target - x) / (max - min)) * scale` with the "
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


@NORMALISERS.register("none", plain="left on its own scale",
                      summary="`x` unchanged (direction still applied); on the indicator's own scale, "
                      "bounded by its valid range when that is finite", bounds=lambda p: p.get("range"),
                      affine=_none_affine)
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

    def transform_matrix(self, X: np.ndarray, columns: list[str], out: np.ndarray | None = None) -> np.ndarray:
        """Normalised values of a (rows, indicators) matrix, the same numbers as :meth:`transform`.

        The methods that are affine maps (registered with ``affine``: minmax, zscore,
        goalposts, none) run as a few whole-matrix operations with one coefficient per
        column, in the order of the column path (so the results are bit-identical to it);
        the other methods (rank, percentile, dist2target) run column by column.

        Parameters
        ----------
        X : ndarray, shape (rows, len(columns))
            Raw values (float64).
        columns : list of str
            The indicator of each column.
        out : ndarray, optional
            C-contiguous float64 array of ``X``'s shape to write into; may be ``X`` itself.

        Returns
        -------
        ndarray
            ``out`` (a new array when not given).
        """
        from .columns import as_matrix

        X = as_matrix(X, len(columns), out)
        if out is None:
            out = np.empty(X.shape)
        plan = self._matrix_plan(columns)
        # the other methods first, from X (which out may be)
        rest = []
        for j in plan["rest"]:
            col = np.empty(X.shape[0])
            self._column(np.ascontiguousarray(X[:, j]), columns[j], col)
            rest.append((j, col))
        if plan["ops"]:
            step = max(1, min(X.shape[0], _MATRIX_BLOCK // max(X.shape[1], 1)))
            ops = _tiled(plan, step)
            for start in range(0, X.shape[0], step):
                _affine_rows(X[start:start + step], out[start:start + step], ops)
        elif out is not X:
            np.copyto(out, X)
        for j, col in rest:
            out[:, j] = col
        return out

    def _matrix_plan(self, columns: list[str]) -> dict:
        """The per-column coefficients of :meth:`transform_matrix` (computed once per column list)."""
        key = tuple(columns)
        cache = self.__dict__.setdefault("_plans", {})
        if key in cache:
            return cache[key]
        p = len(columns)
        # identities: x + -0.0 is x, x / 1.0 is x, x * 1.0 is x, clip(x, -inf, inf) is x
        add, div = np.full(p, -0.0), np.ones(p)
        factor, offset, scale = np.ones(p), np.full(p, -0.0), np.ones(p)
        lo, hi = np.full(p, -np.inf), np.full(p, np.inf)
        clipped, rest = False, []
        for j, name in enumerate(columns):
            m = self.methods[name]
            coef = NORMALISERS[m.method].affine
            if coef is None:
                rest.append(j)
                continue
            d = float(m.direction)
            shift, divisor, f, o, clip, sc = coef(d, m.params, self.stats_.get(name), name)
            # x - shift is x + (-shift), exactly (IEEE 754 subtraction); for d < 0, _affine adds the shift
            # and divides by the negated divisor
            add[j], div[j] = (-shift, divisor) if d > 0 else (shift, -divisor)
            if f != 1.0:
                factor[j] = f
            if o:
                offset[j] = o
            if clip is not None:
                lo[j], hi[j], clipped = clip[0], clip[1], True
            if sc != 1.0:
                scale[j] = sc
        ops = []
        if len(rest) < p:
            ops = [(np.add, add), (np.divide, div)]
            if (factor != 1.0).any():
                ops.append((np.multiply, factor))
            if (offset != 0.0).any():
                ops.append((np.add, offset))
            if clipped:
                ops.append(("clip", (lo, hi)))
            if (scale != 1.0).any():
                ops.append((np.multiply, scale))
            ops = [_scalar_op(op, c) for op, c in ops]
        cache[key] = plan = {"ops": ops, "rest": rest, "tiles": {}}
        return plan

    def _column(self, x: np.ndarray, name: str, out: np.ndarray) -> None:
        m = self.methods[name]
        NORMALISERS[m.method].func(x, float(m.direction), m.params, self.stats_.get(name), out, name)


#: Cells per block of :meth:`Normaliser.transform_matrix`: a block stays in the processor's cache
#: through its operations.
_MATRIX_BLOCK = 32768


def _uniform(v: np.ndarray) -> bool:
    """Every entry of ``v`` the same number, signed zeros told apart."""
    return bool((v == v[0]).all() and (np.signbit(v) == np.signbit(v[0])).all())


def _scalar_op(op, coef):
    """An operation of :func:`_affine_rows`, with a scalar instead of a vector when every column has the same
    coefficient (a broadcast scalar is faster)."""
    if op == "clip":
        lo, hi = coef
        return op, ((lo[0], hi[0]) if _uniform(lo) and _uniform(hi) else (lo, hi))
    return op, (coef[0] if _uniform(coef) else coef)


#: ``np.clip`` as the ufunc it calls (the same function of each element), without the checks of its wrapper.
_CLIP = getattr(getattr(np, "_core", None), "umath", None)
_CLIP = getattr(_CLIP, "clip", None) if isinstance(getattr(_CLIP, "clip", None), np.ufunc) else None


def _clip(x, lo, hi, out):
    if _CLIP is None:
        return np.clip(x, lo, hi, out=out)
    return _CLIP(x, lo, hi, out=out)


def _tile(v, rows: int):
    return v if np.ndim(v) == 0 else np.tile(v, (rows, 1))


def _tiled(plan: dict, rows: int) -> list:
    """The operations of a plan as ``(ufunc, operands)``, each coefficient vector repeated over ``rows`` rows
    (contiguous: an operation on two arrays of one shape runs in one long loop, where broadcasting a row runs
    one short loop per row); an operand is ``(value, sliced)``, sliced to a block's rows when ``sliced``."""
    tiles = plan["tiles"]
    if rows not in tiles:
        if len(tiles) > 8:
            tiles.clear()
        ops = []
        for op, coef in plan["ops"]:
            coefs = coef if op == "clip" else (coef,)
            ops.append((_clip if op == "clip" else op,
                        tuple((_tile(c, rows), np.ndim(c) > 0) for c in coefs)))
        tiles[rows] = ops
    return tiles[rows]


def _affine_rows(x: np.ndarray, out: np.ndarray, ops: list) -> None:
    """Apply the operations of :meth:`Normaliser._matrix_plan` (tiled by :func:`_tiled`) to a block of rows."""
    m = x.shape[0]
    first = x
    for op, coefs in ops:
        op(first, *[c[:m] if sliced else c for c, sliced in coefs], out=out)
        first = out


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
