"""How sure is each rank, category and change: Monte Carlo uncertainty analysis of an index.

A computed index (:class:`~stability.pipeline.Result`) rests on modelling choices (weights,
normalisation, aggregation, outlier treatment, imputation, which indicators count) and on
the key informants who happened to be met.  This module recomputes the index many times with
those sources of uncertainty drawn at random and says, per location and round, how far its
rank, category and change since the previous round can move:

==============================  ====================================================================
:func:`run`                     the entry point: ``run(result)`` with the options of the spec's
                                ``uncertainty`` section (:class:`stability.spec.Uncertainty`)
:class:`Uncertainty`            the same in scikit-learn's shape: options in the constructor,
                                :meth:`Uncertainty.fit` sets ``result_``
:class:`UncertaintyResult`      ``locations``, ``summary`` and ``runs`` tables; ``write`` (CSV,
                                Parquet or Excel); ``matches`` (same spec hash and data version)
:func:`evaluate`                the index's summary outputs for given configurations (option paths
                                to values): the model function of :mod:`stability.sensitivity`
:func:`output_names`            the names of those outputs
:func:`index_scores`            the index of every unit for given configurations (the vectorised engine)
==============================  ====================================================================

Method
------
Each replicate ``r`` draws its randomness from ``numpy.random.default_rng([seed, r])``:

* **modelling choices** (``sources: [choices]``), from a child of that generator
  (``default_rng([seed, r]).spawn(1)[0]``), in this order: one alternative of the
  normalisation, the aggregation, the outlier treatment, the imputation and the indicator
  left out (each uniformly among its alternatives, the nominal choice included unless
  ``include_nominal: false``), then the weights (``noise``: every weight times ``1 + noise *
  U(-1, 1)``; ``dirichlet``: the shares of every aggregate's children from a Dirichlet
  distribution centred on the nominal shares);
* **key informants** (``sources: [informants]``), from the generator itself: the informants
  of every location and round are drawn again with replacement
  (:class:`stability.resample.InformantResampler`, the same draws as
  :func:`stability.change.informant_bootstrap` with the same seed), combined, and taken
  through the later steps with the fitted parameters of the run's configuration
  (:func:`stability.resample.replay`), so that only the informant sample varies.  A location
  with one informant does not vary: ``single_informant`` flags it.

Both sources can be drawn in the same replicate ("separately and together").  Ranks are
national within the round and within the region (``rank.within``), ``min`` ties, on scores
rounded to 1e-9 exactly as :func:`stability.pipeline.rank_and_categorise`; intervals are the
``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the replicates (linear
interpolation, R's type 7 as COINr); category confidence is the share of the replicates in
each category; a change is ``beyond_noise`` when its interval excludes 0.

How it is fast
--------------
The pipeline is not run once per replicate.  Each distinct configuration of the
data-driven steps (normalisation, treatment, imputation) is fitted once on the nominal
data (:meth:`~stability.pipeline.Result.recompute`, re-running only the affected steps) and
its normalised table cached; leaving an indicator out sets its weight to 0 and takes it out
of its aggregate's availability count, without refitting.  The aggregation of a chunk of
replicates with a weight vector each is a handful of array operations over (replicates x
units) per aggregate (arithmetic, geometric, harmonic and generalised means vectorised;
Copeland per replicate through the registry), with the missing-children rule and the
availability threshold of :func:`stability.aggregate.aggregate`.  Chunks are sized to the
memory budget ``chunk_mb`` and only each replicate's index (float32), ranks (int32) and
changes (float32) are kept.  Every replicate's numbers depend on its own seed only, so the
tables are the same whatever the chunking, and on a Dask cluster (``scheduler``).

Means that need positive scores (geometric, harmonic, generalised with ``p <= 0``) in a
replicate whose normalisation range ``[lo, hi]`` starts at 0 or below: the normalised
scores are mapped linearly onto [1, 100], aggregated, and the aggregate scores mapped back
onto ``[lo, hi]``, so that the categories keep their meaning.  A normalisation with no
fixed range is refused with them.

Examples
--------
>>> import stability as st                                           # doctest: +SKIP
>>> from stability import uncertainty
>>> spec = st.load_spec("data/specs/mali.yaml")
>>> result = st.compute("data/raw/mali_illustrative", spec)
>>> u = uncertainty.run(result, runs=500, normalise=["minmax"], winmax=True)
>>> u.locations[["location_id", "round", "rank", "rank_low", "rank_high", "robust_category"]]
>>> u.write("reports/uncertainty.xlsx")
"""

from __future__ import annotations

import json
import math
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .exceptions import InputError, MethodError, ParameterError, SpecError

__all__ = ["run", "Uncertainty", "UncertaintyResult", "evaluate", "output_names", "index_scores", "SOURCES"]

#: The sources of uncertainty.
SOURCES = ("choices", "informants")
#: The steps whose fitted parameters a configuration of the data-driven choices changes.
DATA_STEPS = ("denominated", "imputed", "treated", "normalised")
#: Outlier-treatment alternatives of ``winmax: true``.
ALL_WINMAX = (1, 2, 3, 4, 5, "none")
#: Range onto which scores are mapped for the means that need positive scores.
POSITIVE_RANGE = (1.0, 100.0)


# --------------------------------------------------------------------------- options
def options(spec, overrides: Mapping[str, Any] | None = None):
    """The ``uncertainty`` options of a spec, with some overridden (validated as the spec's section).

    Raises
    ------
    SpecError
        One line naming the option (``uncertainty.runs``...) when an override breaks a rule.
    """
    from pydantic import ValidationError

    from .spec import Uncertainty as Section

    overrides = {k: v for k, v in dict(overrides or {}).items() if v is not None}
    if not overrides:
        return spec.uncertainty
    unknown = sorted(set(overrides) - set(Section.model_fields))
    if unknown:
        raise SpecError(f"unknown option '{unknown[0]}' (options: {', '.join(Section.model_fields)})",
                        column=f"uncertainty.{unknown[0]}")
    try:
        return Section.model_validate({**spec.uncertainty.model_dump(), **overrides})
    except ValidationError as exc:
        err = exc.errors()[0]
        cause = (err.get("ctx") or {}).get("error")
        where = ".".join(str(k) for k in err["loc"] if not isinstance(k, int))
        where = getattr(cause, "field", None) or (f"uncertainty.{where}" if where else "uncertainty")
        raise SpecError(err["msg"].removeprefix("Value error, "), column=where) from None


# --------------------------------------------------------------------------- alternatives
@dataclass(frozen=True)
class _Alt:
    """One alternative of a modelling choice: its label and the spec changes (or level methods) it makes."""

    label: str
    changes: dict = field(default_factory=dict)
    methods: tuple | None = None  # aggregation: ((method, p) per level 2..L)


def _label(entry: Mapping) -> str:
    rest = ", ".join(f"{k}={v}" for k, v in entry.items() if k != "method")
    return f"{entry['method']}({rest})" if rest else str(entry["method"])


def _entries(value) -> list[dict]:
    return [dict(v) if isinstance(v, Mapping) else {"method": v} for v in value]


def _with(spec, changes: Mapping, option: str, label: str):
    """``spec.with_changes(changes)``, any refusal re-raised naming the uncertainty option."""
    try:
        return spec.with_changes(changes)
    except SpecError as exc:
        raise SpecError(f"alternative '{label}': {exc.message}", column=f"uncertainty.{option}") from None


@dataclass
class _Plan:
    """The alternatives of every modelling choice, checked against the spec."""

    normalise: list[_Alt]
    aggregate: list[_Alt]
    winmax: list[_Alt]
    impute: list[_Alt]
    leave_out: list[str | None]
    weights: Any  # the UncertaintyWeights section
    sources: tuple[str, ...]

    @property
    def varies(self) -> bool:
        return "choices" in self.sources


def _nominal_methods(spec) -> tuple:
    return tuple((lv.method, lv.p) for lv in spec.levels[1:])


def _methods_label(methods: tuple) -> str:
    labels = [m if p is None else f"{m}(p={p:g})" for m, p in methods]
    return labels[0] if len(set(labels)) == 1 else "/".join(labels)


def _needs_positive(method: str, p) -> bool:
    return method in ("geometric", "harmonic") or (method == "generalised" and p is not None and p <= 0)


def _plan(spec, opts, sources: tuple[str, ...]) -> _Plan:
    """Resolve the alternatives of the options (``true`` lists, the nominal choice, duplicates) and check them."""
    from .aggregate import AGGREGATIONS
    from .impute import IMPUTERS
    from .normalise import NORMALISERS

    nominal_range = spec.index_range()
    choices = "choices" in sources

    def resolve(option: str, given, nominal: _Alt, build, section, check=None) -> list[_Alt]:
        if not choices or given is False:
            return [nominal]
        explicit = given is not True
        entries = _entries(given) if explicit else [{"method": m} for m in build]
        alts = [nominal] if opts.include_nominal else []
        seen = [section(spec)] if opts.include_nominal else []
        for entry in entries:
            label = _label(entry)
            changes = {f"{option}.{k}": v for k, v in entry.items()}
            try:
                changed = _with(spec, changes, option, label)
                if check is not None:
                    check(changed, label)
            except SpecError:
                if explicit:
                    raise
                continue  # 'true': every method that suits the index
            if section(changed) in seen:
                continue
            seen.append(section(changed))
            alts.append(_Alt(label, changes))
        if not alts:
            raise SpecError("no alternative left (include_nominal is false and none of the listed ones suits the "
                            "index)", column=f"uncertainty.{option}")
        return alts

    def same_scale(changed, label):
        rng = changed.index_range()
        if rng != nominal_range:
            shown = "no fixed range" if rng is None else f"range {rng[0]:g}-{rng[1]:g}"
            scale = "no fixed range" if nominal_range is None else f"{nominal_range[0]:g}-{nominal_range[1]:g}"
            raise SpecError(f"alternative '{label}' gives an index with {shown}, not on the scale of the nominal "
                            f"index and its categories ({scale})", column="uncertainty.normalise")

    normalise = resolve("normalise", opts.normalise, _Alt(_label({"method": spec.normalise.method})),
                        NORMALISERS.names(), lambda s: (s.normalise, [i.normalise for i in s.indicators]),
                        same_scale)
    group = spec.impute.group
    impute_all = [m.name for m in IMPUTERS if not m.grouped or group]
    impute = resolve("impute", opts.impute, _Alt(spec.impute.method), impute_all, lambda s: s.impute)

    # outlier treatment: points winsorised at most, or none
    treat_label = "none" if spec.treat.method == "none" else str(spec.treat.winmax)
    winmax = [_Alt(treat_label)]
    if choices and opts.winmax is not False:
        given = ALL_WINMAX if opts.winmax is True else opts.winmax
        winmax = [_Alt(treat_label)] if opts.include_nominal else []
        labels = [a.label for a in winmax]
        for k in given:
            label = str(k)
            if label in labels:
                continue
            labels.append(label)
            changes = ({"treat.method": "none"} if k == "none" else {"treat.method": "winsorise", "treat.winmax": k})
            _with(spec, changes, "winmax", label)
            winmax.append(_Alt(label, changes))

    # aggregation: one method for every level
    levels = range(2, len(spec.levels) + 1)
    nominal_methods = _nominal_methods(spec)
    aggregate = [_Alt(_methods_label(nominal_methods), methods=nominal_methods)]
    if choices and opts.aggregate is not False:
        explicit = opts.aggregate is not True
        entries = (_entries(opts.aggregate) if explicit else
                   [{"method": m.name} for m in AGGREGATIONS if not m.requires and m.on_scale])
        aggregate = aggregate if opts.include_nominal else []
        for entry in entries:
            methods = tuple((entry["method"], entry.get("p")) for _ in levels)
            if any(a.methods == methods for a in aggregate):
                continue
            label = _label(entry)
            changes = {}
            for lv in levels:
                changes[f"levels.{lv}.method"] = entry["method"]
                changes[f"levels.{lv}.p"] = entry.get("p")
            try:
                _with(spec, changes, "aggregate", label)
                if _needs_positive(entry["method"], entry.get("p")):
                    for alt in normalise:
                        rng = _with(spec, alt.changes, "normalise", alt.label).index_range()
                        if rng is None:
                            raise SpecError(f"alternative '{label}' needs positive scores, and the normalisation "
                                            f"'{alt.label}' has no fixed range to map onto [1, 100]: use a bounded "
                                            "normalisation", column="uncertainty.aggregate")
            except SpecError:
                if explicit:
                    raise
                continue
            aggregate.append(_Alt(label, changes, methods))
        if not aggregate:
            raise SpecError("no alternative left (include_nominal is false and none of the listed ones suits the "
                            "index)", column="uncertainty.aggregate")

    leave_out: list[str | None] = [None]
    if choices and opts.leave_one_out:
        leave_out = ([None] if opts.include_nominal else []) + list(spec.indicator_ids)
    return _Plan(normalise, aggregate, winmax, impute, leave_out, opts.weights, sources)


# --------------------------------------------------------------------------- the engine
@dataclass
class _Fitted:
    """One configuration of the data-driven steps, fitted once on the nominal data."""

    result: Any  # Result
    X: np.ndarray  # (indicators, units) normalised scores
    weights: np.ndarray  # (nodes,) the weights aggregation uses (written, or derived from the data)
    bounds: tuple[float, float] | None  # range of the index (from the normalisation)
    key: tuple = ()  # signatures of the data-driven steps
    label: str = "the nominal configuration"
    terms: dict = field(default_factory=dict)  # (method, p, shift) -> _terms_of of the table


def _terms(method: str, p):
    """``(term, inverse)`` of a quasi-arithmetic mean (as :mod:`stability.aggregate`); ``("loop", None)`` for a
    method without one (Copeland), computed through the registry."""
    if method == "arithmetic" or (method == "generalised" and p == 1):
        return None, lambda num, den: num / den
    if method == "geometric" or (method == "generalised" and p == 0):
        return np.log, lambda num, den: np.exp(num / den)
    if method == "harmonic":
        return (lambda x: 1.0 / x), lambda num, den: den / num
    if method == "generalised":
        return (lambda x: np.power(x, p)), lambda num, den: (num / den) ** (1.0 / p)
    return "loop", None


class _Engine:
    """The vectorised index of many replicates of one nominal result.

    Holds the hierarchy, the rank groups, the nominal ranks and a cache of fitted
    configurations; :meth:`index` aggregates a batch of replicates and :meth:`chunk`
    computes what the summaries need from a chunk.
    """

    def __init__(self, result):
        spec = result.spec
        self.result = result
        self.spec = spec
        self.ids = list(spec.indicator_ids)
        self.p = len(self.ids)
        n_levels = len(spec.levels)
        self.nodes = self.ids + [a.id for lv in range(2, n_levels + 1) for a in spec.aggregates_at(lv)]
        self.pos = {node: k for k, node in enumerate(self.nodes)}
        self.levels = []  # (level, [(parent position, child positions)], threshold)
        for lv in range(2, n_levels + 1):
            groups = [(self.pos[a.id], np.array([self.pos[c.id] for c in spec.children(a.id)], dtype=np.intp))
                      for a in spec.aggregates_at(lv)]
            self.levels.append((lv, groups, spec.levels[lv - 1].threshold))
        self.root = self.pos[spec.root.id]
        self.groups = [(parent, kids) for _, groups, _ in self.levels for parent, kids in groups]
        self.written = np.array([(spec.indicator(x).weight if k < self.p else
                                  next(a for a in spec.aggregates if a.id == x).weight)
                                 for k, x in enumerate(self.nodes)], dtype=float)

        index = result.stage("aggregated").index
        self.n = len(index)
        c = spec.columns
        self.rounds = index.get_level_values(c.round).to_numpy() if c.round else None
        self.round_order = list(result.rounds) if c.round else [None]
        order = {r: k for k, r in enumerate(self.round_order)}
        self.round_code = (np.array([order[r] for r in self.rounds], dtype=np.intp) if c.round
                           else np.zeros(self.n, dtype=np.intp))
        self.round_blocks = [np.flatnonzero(self.round_code == k) for k in range(len(self.round_order))]
        self.within = spec.within()
        self.region = (result.units[self.within].to_numpy() if self.within and self.within in result.units.columns
                       else None)
        self.region_blocks = []
        if self.region is not None:
            codes, uniques = pd.factorize(pd.Series(self.region), use_na_sentinel=True, sort=True)
            self.region_codes, self.region_names = codes, list(uniques)
            self.region_code16 = np.where(codes < 0, len(uniques), codes).astype(np.int16)
            key = self.round_code * (len(uniques) + 1) + codes
            for k in np.unique(key[codes >= 0]):
                self.region_blocks.append(np.flatnonzero(key == k))
        # change since the previous round: (unit, its previous-round unit)
        self.cur, self.prev = np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
        if c.round and len(self.round_order) > 1:
            loc = index.get_level_values(0)
            look = pd.Series(np.arange(self.n), index=pd.MultiIndex.from_arrays([loc, self.round_code]))
            prev = look.reindex(pd.MultiIndex.from_arrays([loc, self.round_code - 1])).to_numpy()
            ok = ~np.isnan(prev)
            self.cur, self.prev = np.flatnonzero(ok), prev[ok].astype(np.intp)

        nominal = result.stage("aggregated")[spec.root.id].to_numpy(dtype=float)
        self.nominal_index = nominal
        self.nominal_rank = result.ranks["rank_national"].to_numpy(dtype=float)
        self.nominal_rank_region = (result.ranks["rank_region"].to_numpy(dtype=float)
                                    if "rank_region" in result.ranks.columns else None)
        self.rule, self.cuts = spec.category_rule()
        self.labels = list(spec.categories.labels)
        self.nominal_range = spec.index_range()
        self.configs: list[_Fitted] = []  # fitted configurations, by number
        self._fits: dict[tuple, Any] = {}  # data-step signatures -> Result
        from .spec import step_signatures

        sig = step_signatures(spec)
        self.nominal_key = tuple(sig[s] for s in DATA_STEPS)
        self.cache: dict = {}  # evaluate: configuration changes -> (fitted configuration, level methods)
        self.paths: set | None = None  # option paths of the spec
        self.plan: _Plan | None = None
        self.resampler = None
        self.seed = 0

    # ---- configurations
    def fit(self, data_spec) -> int:
        """Number of the fitted configuration of ``data_spec`` (fitted now if new)."""
        from .spec import step_signatures

        sig = step_signatures(data_spec)
        key = tuple(sig[s] for s in DATA_STEPS)
        for k, fitted in enumerate(self.configs):
            if fitted.key == key:
                return k
        if key == self.nominal_key:
            res = self.result
        elif key in self._fits:
            res = self._fits[key]
        else:
            # recompute from the fit that shares the longest run of first steps: only the later steps run
            base, best = self.result, -1
            for other, fit in [(self.nominal_key, self.result), *self._fits.items()]:
                same = next((i for i, (a, b) in enumerate(zip(other, key)) if a != b), len(key))
                if same > best:
                    base, best = fit, same
            res = base.recompute(data_spec)
            self._fits[key] = res
        X = np.ascontiguousarray(res.stage("normalised").to_numpy(dtype=float).T)
        weights = self.written.copy()
        for d in res.weight_derivations.values():
            for child, w in d.weights.items():
                weights[self.pos[child]] = w
        self.configs.append(_Fitted(res, X, weights, res.spec.index_range(), key))
        return len(self.configs) - 1

    # ---- aggregation
    def index(self, config: int, W: np.ndarray, keep: np.ndarray | None, methods: tuple,
              Z: np.ndarray | None = None, own: bool = False) -> np.ndarray:
        """The index of a batch of replicates sharing a configuration and aggregation methods.

        Parameters
        ----------
        config : int
            Fitted configuration (:meth:`fit`).
        W : ndarray (R, nodes)
            Weights of every node (0 for an indicator left out).
        keep : ndarray (R, indicators) of bool, optional
            False for an indicator left out (not counted for the availability threshold).
        methods : tuple
            ``(method, p)`` per level 2..L.
        Z : ndarray (R, units, indicators), optional
            Normalised scores per replicate (informant bootstrap); default the configuration's table.
        own : bool
            ``Z`` may be overwritten.

        Returns
        -------
        ndarray (R, units)

        Notes
        -----
        Means that need positive scores, on a normalisation range ``[lo, hi]`` with ``lo <= 0``:
        every power mean is homogeneous (``M(s y) = s M(y)``), so mapping the scores onto
        ``[a, b] = [1, 100]`` (``y = a + (x - lo) s``, ``s = (b - a) / (hi - lo)``), aggregating
        and mapping back is ``M(x + c) - c`` with ``c = a / s - lo``: the scores are shifted by
        ``c`` instead, one addition.
        """
        fitted = self.configs[config]
        shift = None
        if any(_needs_positive(m, p) for m, p in methods):
            if fitted.bounds is None:
                raise MethodError("uncertainty: the aggregation alternative needs positive scores, and the "
                                  "normalisation has no fixed range to map onto [1, 100]")
            lo, hi = fitted.bounds
            if lo <= 0:
                a, b = POSITIVE_RANGE
                shift = a * (hi - lo) / (b - a) - lo
        values = Z  # (R, units, children) per replicate, or None: the configuration's (children, units)
        prev = list(range(self.p))  # the node of each column of ``values``
        node_keep = keep  # (R, columns of values): False for a node left out
        for (_, groups, threshold), (method, p) in zip(self.levels, methods):
            kids = np.concatenate([k for _, k in groups])
            A = np.zeros((len(kids), len(groups)))
            start = 0
            for g, (_, k) in enumerate(groups):
                A[start:start + len(k), g] = 1.0
                start += len(k)
            cols = np.array([prev.index(k) for k in kids], dtype=np.intp)
            identity = np.array_equal(cols, np.arange(len(prev)))
            names = [self.nodes[k] for k in kids]
            parents = [self.nodes[parent] for parent, _ in groups]
            w = W[:, kids]
            k_keep = None if node_keep is None else (node_keep if identity else node_keep[:, cols])
            loop = _terms(method, p)[0] == "loop"
            shared = values is None
            if shared:
                source = fitted.X if shift is None else _to_positive(fitted.X, shift)
                if loop:
                    source = source if identity else source[cols]
                else:  # the terms of the configuration's table, computed once
                    if (method, p, shift) not in fitted.terms:
                        fitted.terms[(method, p, shift)] = _terms_of(source, method, p, self.ids, 0)
                    T, OK, complete = fitted.terms[(method, p, shift)]
                    T, OK = (T, OK) if identity else (T[cols], None if complete else OK[cols])
            else:
                source = values if identity else values[:, :, cols]
                if values is Z and shift is not None:  # the indicators of the replicates, onto [1, 100]
                    source = _to_positive(source, shift, copy=source is Z and not own)
                if not loop:
                    T, OK, complete = _terms_of(source, method, p, names, -1, inplace=own or source is not Z)
            if loop:
                out = self._loop(source, shared, w, k_keep, A, method, p, threshold, names, parents)
            else:
                out = _quasi_means(T, OK, complete, shared, w, k_keep, A, _terms(method, p)[1], threshold)
            if k_keep is not None:  # an aggregate all of whose children are left out is left out too
                node_keep = (k_keep.astype(float) @ A) > 0
            values, prev = out, [parent for parent, _ in groups]
        out = values[:, :, 0]
        if shift is not None:
            out = out - shift
        return out

    def _loop(self, source, shared, w, keep, A, method, p, threshold, names, parents):
        """A method without a vectorised form (Copeland): each replicate and aggregate through the registry."""
        from .aggregate import _weighted_mean

        R = w.shape[0]
        out = np.empty((R, self.n, A.shape[1]))
        for r in range(R):
            for g in range(A.shape[1]):
                use = np.flatnonzero(A[:, g] > 0)
                if keep is not None:
                    use = use[keep[r, use]]
                if not len(use):  # every child left out
                    out[r, :, g] = np.nan
                    continue
                cols = [np.asarray(source[j] if shared else source[r, :, j], dtype=float) for j in use]
                out[r, :, g] = _weighted_mean(cols, w[r, use], method, p, threshold, parents[g],
                                              [names[j] for j in use], self.n, self.rounds)
        return out

    # ---- one chunk of replicates
    def replayer(self, config: int):
        """The fitted later steps of a configuration (:class:`stability.resample.Replay`), built once."""
        from .resample import Replay

        replays = self.__dict__.setdefault("_replays", {})
        if config not in replays:
            replays[config] = Replay(self.configs[config].result)
        return replays[config]

    def chunk(self, job: dict) -> dict:
        """Index, ranks, changes and category counts of the replicates ``job["reps"]``."""
        reps = job["reps"]
        R = len(reps)
        index = np.empty((R, self.n))
        raw = None
        times = dict.fromkeys(("draw", "replay", "aggregate", "summarise"), 0.0)
        t0 = time.perf_counter()
        buffer = None
        if "informants" in self.plan.sources:
            # a buffer of an earlier chunk: fresh memory costs a page fault per 4 kB on first touch
            shape = (R, self.n, len(self.resampler.columns_))
            pool = self.__dict__.setdefault("_buffers", [])
            try:
                buffer = pool.pop()
            except IndexError:
                buffer = None
            if buffer is None or buffer.shape[0] < R or buffer.shape[1:] != shape[1:]:
                buffer = np.empty(shape)
            raw = self.resampler.draw(reps, self.seed, out=buffer[:R])
        times["draw"] = time.perf_counter() - t0

        configs = job["config"]
        for config in np.unique(configs):
            members = np.flatnonzero(configs == config)
            whole = len(members) == R
            Z = None
            if raw is not None:  # the informant sample through this configuration's fitted steps, once
                t0 = time.perf_counter()
                steps = self.replayer(int(config))
                # the samples of a chunk of one configuration are replayed where they are
                Z = steps(raw, out=raw) if whole else steps(raw[members], out=None)
                times["replay"] += time.perf_counter() - t0
            aggs = job["aggregate"][members]
            for agg in np.unique(aggs):
                sel = np.flatnonzero(aggs == agg)
                rows = members[sel]
                keep = None if job["keep"] is None else job["keep"][rows]
                t0 = time.perf_counter()
                try:
                    index[rows] = self.index(int(config), job["W"][rows], keep, self.plan.aggregate[agg].methods,
                                             None if Z is None else (Z if len(sel) == len(Z) else Z[sel]),
                                             own=True)
                except MethodError as exc:
                    raise MethodError(f"{exc} (aggregation '{self.plan.aggregate[agg].label}' with "
                                      f"{self.configs[config].label})") from None
                times["aggregate"] += time.perf_counter() - t0
        if buffer is not None:
            del raw, Z
            self._buffers.append(buffer)
        t0 = time.perf_counter()
        out = self.summarise_chunk(index)
        times["summarise"] = time.perf_counter() - t0
        out["times"] = times
        return out

    def __getstate__(self) -> dict:
        """The engine without its scratch buffers and replay caches (sent to Dask workers)."""
        state = dict(self.__dict__)
        state.pop("_buffers", None)
        state.pop("_replays", None)
        return state

    def summarise_chunk(self, index: np.ndarray) -> dict:
        """What the summaries need from the index of some replicates (rows): the index as float32, national
        and regional ranks (int32, 0 = none), category counts per unit, changes since the previous round
        (float32) and each replicate's mean absolute rank shift per round and overall."""
        x = np.round(index, 9)
        rank, rank_region = self.ranks(x)
        codes = self.categories(x)
        counts = np.stack([(codes == k).sum(axis=0) for k in range(len(self.labels))], axis=1)
        shift = np.full((len(x), len(self.round_order)), np.nan)
        both = (rank > 0) & ~np.isnan(self.nominal_rank)
        diff = np.where(both, np.abs(rank - np.nan_to_num(self.nominal_rank)), 0.0)
        for k, cols in enumerate(self.round_blocks):
            m = both[:, cols].sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                shift[:, k] = np.where(m > 0, diff[:, cols].sum(axis=1) / m, np.nan)
        m = both.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            shift_all = np.where(m > 0, diff.sum(axis=1) / m, np.nan)
        change = (x[:, self.cur] - x[:, self.prev]).astype(np.float32)
        return {"index": index.astype(np.float32), "rank": rank, "rank_region": rank_region, "counts": counts,
                "change": change, "shift": shift, "shift_all": shift_all}

    def ranks(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """National and regional descending ``min`` ranks of every row of ``x``, within each round (0 = no rank).

        As :func:`stability.rank.rank_desc`: the scores of a round are sorted once, and the
        regional ranks reuse that order (a stable sort of the small region codes).
        """
        R = x.shape[0]
        rank = np.zeros(x.shape, dtype=np.int32)
        region = None if self.region is None else np.zeros(x.shape, dtype=np.int32)
        for b, cols in enumerate(self.round_blocks):
            m = len(cols)
            if m == 0:
                continue
            v = -x[:, cols]  # NaN sorts last
            rows = (np.arange(R, dtype=np.intp) * m)[:, None]
            o = np.argsort(v, axis=1)
            o += rows  # flat positions: gathering through them is faster than take_along_axis
            sv = v.ravel().take(o)
            pos = np.arange(m, dtype=np.int32)
            new = np.empty(sv.shape, dtype=bool)
            new[:, :1] = True
            np.not_equal(sv[:, 1:], sv[:, :-1], out=new[:, 1:])
            run = _run_starts(new, pos)
            run += 1
            r = np.empty((R, m), dtype=np.int32)
            r.ravel()[o.ravel()] = run.ravel()
            missing = np.isnan(v)
            r[missing] = 0
            rank[:, cols] = r
            if region is None:
                continue
            code = self.region_code16[cols].take(o - rows)  # regions of the sorted scores
            o2 = np.argsort(code, axis=1, kind="stable")  # by region, scores still sorted within each
            o2 += rows
            sv2 = sv.ravel().take(o2)
            # every row holds the same units, so the regions lie in the same runs of positions in every row
            group, start = self._region_runs(b, cols)
            np.not_equal(sv2[:, 1:], sv2[:, :-1], out=new[:, 1:])
            new |= group
            run = _run_starts(new, pos)
            run -= start
            run += 1
            r2 = np.empty((R, m), dtype=np.int32)
            r2.ravel()[o.ravel().take(o2.ravel())] = run.ravel()
            r2[missing | (self.region_codes[cols] < 0)[None, :]] = 0
            region[:, cols] = r2
        return rank, region

    def _region_runs(self, block: int, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For the units of a round sorted by region: where each region's run begins (bool per position) and
        the first position of the run of each position."""
        runs = self.__dict__.setdefault("_runs", {})
        if block not in runs:
            code = np.sort(self.region_code16[cols], kind="stable")
            group = np.empty(len(code), dtype=bool)
            group[:1] = True
            np.not_equal(code[1:], code[:-1], out=group[1:])
            pos = np.arange(len(code), dtype=np.int32)
            runs[block] = (group, np.maximum.accumulate(np.where(group, pos, 0)))
        return runs[block]

    def categories(self, x: np.ndarray) -> np.ndarray:
        """Category code of every score (-1 = none), as :func:`stability.rank.categorise` (or per round quantiles)."""
        if self.rule == "quantile":
            codes = np.full(x.shape, -1, dtype=np.int8)
            for cols in self.round_blocks:
                v = x[:, cols]
                empty = np.isnan(v).all(axis=1)
                with np.errstate(invalid="ignore"):
                    if empty.all():
                        continue
                    cuts = np.nanquantile(np.where(empty[:, None], 0.0, v), self.cuts, axis=1)  # (cuts, R)
                    c = sum((v >= cut[:, None]) for cut in cuts).astype(np.int8)
                codes[:, cols] = np.where(np.isnan(v) | empty[:, None], -1, c)
            return codes
        codes = np.zeros(x.shape, dtype=np.int8)  # the number of cut-offs <= x (searchsorted, side right)
        for cut in self.cuts:
            codes += x >= cut
        codes[np.isnan(x)] = -1
        return codes


def _run_starts(new: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Per row of sorted values (``new``: True where a value differs from the one before it), the position
    where the run of equal values of each position begins (a new int32 array); rows without ties are ``pos``."""
    out = np.empty(new.shape, dtype=np.int32)
    out[...] = pos
    flat = new.ravel()
    tied = np.flatnonzero(~flat)  # positions equal to the one before (never the first of a row)
    if not tied.size:
        return out
    # ties are few and short: walk each tied position back to the start of its run
    start = tied - 1
    for _ in range(16):
        back = ~flat[start]
        if not back.any():
            out.ravel()[tied] = out.ravel()[start]
            return out
        start[back] -= 1
    rows = np.unique(tied // new.shape[1])  # long runs of ties: those rows in full
    out[rows] = np.maximum.accumulate(np.where(new[rows], pos, 0), axis=1)
    return out


def _positive_error(method: str, x: np.ndarray, bad: np.ndarray, names: list[str], axis: int):
    """Raise for values <= 0 of a mean that needs positive ones, naming the first child (along ``axis``) with one."""
    axis = axis % bad.ndim
    other = tuple(a for a in range(bad.ndim) if a != axis)
    j = int(np.flatnonzero(bad.any(axis=other))[0])
    raise MethodError(f"uncertainty: the {method} mean needs positive scores, but '{names[j]}' has scores <= 0 "
                      f"(e.g. {x[bad].min():g}) even with its normalisation's range moved onto [1, 100]: a "
                      "normalisation fitted on one round can leave its range in another round")


def _to_positive(x: np.ndarray, shift: float, copy: bool = True) -> np.ndarray:
    """Scores shifted by ``shift`` (see :meth:`_Engine.index`), in place unless ``copy``."""
    return np.add(x, shift) if copy else np.add(x, shift, out=x)


def _terms_of(x: np.ndarray, method: str, p, names: list[str], axis: int, inplace: bool = False):
    """The terms of a quasi-arithmetic mean, 0 where a value is missing.

    Returns ``(terms, present as float or None, complete)``: ``complete`` when no value is
    missing (then ``present`` is not computed).  Raises for a value <= 0 with a mean that
    needs positive scores, naming the child (``names`` along ``axis``).  ``inplace``: ``x`` may be
    overwritten with the terms.
    """
    term, _ = _terms(method, p)
    if term == "loop":
        return None, None, True
    lowest = x.min() if x.size else 0.0
    complete = not np.isnan(lowest)
    ok = None if complete else ~np.isnan(x)
    if _needs_positive(method, p):
        if not complete:
            lowest = np.nanmin(x) if ok.any() else 1.0
        if lowest <= 0:
            with np.errstate(invalid="ignore"):
                bad = (x <= 0) if ok is None else ok & (x <= 0)
            _positive_error(method, x, bad, names, axis)
    t = x
    if term is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.log(x, out=x) if inplace and term is np.log else term(x)
    if complete:
        return t, None, True
    if t is x and not inplace:
        return np.where(ok, t, 0.0), ok.astype(float), False
    np.copyto(t, 0.0, where=~ok)  # the terms are a new array, or x may be overwritten
    return t, ok.astype(float), False


def _quasi_means(T, OK, complete: bool, shared: bool, w, keep, A, inverse, threshold):
    """Weighted quasi-arithmetic means of every aggregate of a level, for every replicate.

    ``T`` are the children's terms, shared ``(children, units)`` or per replicate ``(R, units,
    children)``; ``w`` the weights ``(R, children)``; ``A`` the children of each aggregate
    ``(children, aggregates)``.  Missing children are dropped and the weights re-normalised among
    the present ones; with ``threshold``, an aggregate with too small a share of its children
    present (children left out, ``keep`` False, not counted) is missing.  Each replicate is a
    matrix product of its own, so its numbers do not depend on the other replicates of the batch.
    """
    Wg = w[:, :, None] * A[None, :, :]  # (R, children, aggregates)
    if shared:
        num = np.matmul(Wg.transpose(0, 2, 1), T).transpose(0, 2, 1)  # (R, units, aggregates)
        den = Wg.sum(axis=1)[:, None, :] if complete else np.matmul(Wg.transpose(0, 2, 1), OK).transpose(0, 2, 1)
    else:
        num = np.matmul(T, Wg)
        den = Wg.sum(axis=1)[:, None, :] if complete else np.matmul(OK, Wg)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = inverse(num, den)
    out[np.broadcast_to(den <= 0, out.shape)] = np.nan
    if threshold is not None:
        Ak = A[None, :, :] if keep is None else keep.astype(float)[:, :, None] * A[None, :, :]
        n_kept = Ak.sum(axis=1)[:, None, :]  # (R or 1, 1, aggregates)
        if complete:
            present = n_kept
        elif shared:
            present = np.matmul(np.broadcast_to(Ak, Wg.shape).transpose(0, 2, 1), OK).transpose(0, 2, 1)
        else:
            present = np.matmul(OK, np.broadcast_to(Ak, Wg.shape))
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(n_kept > 0, present / n_kept, 0.0)
        out[np.broadcast_to(share < threshold, out.shape)] = np.nan
    return out


def _run_chunk(engine: _Engine, job: dict) -> dict:
    """One chunk of replicates (a task that a Dask worker can run)."""
    out = engine.chunk(job)
    out["reps"] = job["reps"]
    return out


# --------------------------------------------------------------------------- sampling
def _drawn_weights(base: np.ndarray, groups, section, rng) -> np.ndarray:
    """One draw of every weight (``section``: the ``uncertainty.weights`` options, method ``noise`` or ``dirichlet``).

    ``noise``: each weight times ``1 + noise * u``, ``u`` uniform on [-1, 1]; ``dirichlet``: the children of
    each aggregate share its weight by a Dirichlet draw centred on their nominal shares.  A child of nominal
    weight 0 keeps it.
    """
    if section.method == "noise":
        return base * (1.0 + section.noise * rng.uniform(-1.0, 1.0, len(base)))
    w = base.copy()
    for _, kids in groups:
        pos = kids[base[kids] > 0]
        if len(pos) > 1:
            share = base[pos] / base[pos].sum()
            w[pos] = rng.dirichlet(section.concentration * len(pos) * share)
    return w


def _draw(engine: _Engine, plan: _Plan, runs: int, seed: int, spec) -> dict:
    """The modelling choices of every replicate (each from its own generator) and their configurations."""
    n_nodes = len(engine.nodes)
    config = np.zeros(runs, dtype=np.intp)
    agg = np.zeros(runs, dtype=np.intp)
    leave = np.full(runs, -1, dtype=np.intp)
    W = np.empty((runs, n_nodes))
    data_configs: dict[tuple[int, int, int], int] = {}
    picks = np.zeros((runs, 4), dtype=np.intp)
    method = plan.weights.method if plan.varies else "none"
    for r in range(runs):
        if plan.varies:
            rng = np.random.default_rng([seed, r]).spawn(1)[0]
            i_norm, i_agg, i_treat, i_imp, i_leave = (int(rng.integers(len(a))) for a in
                                                      (plan.normalise, plan.aggregate, plan.winmax, plan.impute,
                                                       plan.leave_out))
        else:
            rng, i_norm, i_agg, i_treat, i_imp, i_leave = None, 0, 0, 0, 0, 0
        key = (i_norm, i_treat, i_imp)
        if key not in data_configs:
            changes = {**plan.impute[i_imp].changes, **plan.winmax[i_treat].changes, **plan.normalise[i_norm].changes}
            labels = (f"normalise '{plan.normalise[i_norm].label}', winmax {plan.winmax[i_treat].label}, impute "
                      f"'{plan.impute[i_imp].label}'")
            try:
                data_spec = spec.with_changes(changes) if changes else spec
            except SpecError as exc:
                raise SpecError(f"the alternatives {labels} together: {exc.message}", column="uncertainty") from None
            try:
                data_configs[key] = engine.fit(data_spec)
            except (MethodError, InputError, KeyError) as exc:
                raise _fit_error(engine, spec, plan, (i_norm, i_treat, i_imp), labels, exc) from None
            engine.configs[data_configs[key]].label = labels
        config[r] = data_configs[key]
        agg[r] = i_agg
        picks[r] = (i_norm, i_treat, i_imp, i_leave)
        base = engine.configs[config[r]].weights
        w = _drawn_weights(base, engine.groups, plan.weights, rng) if method != "none" else base.copy()
        left = plan.leave_out[i_leave]
        if left is not None:
            leave[r] = engine.pos[left]
            w[leave[r]] = 0.0
        W[r] = w
    keep = None
    if (leave >= 0).any():
        keep = np.ones((runs, engine.p), dtype=bool)
        rows = np.flatnonzero(leave >= 0)
        keep[rows, leave[rows]] = False
    return {"config": config, "aggregate": agg, "W": W, "keep": keep, "picks": picks, "leave": leave}


def _fit_error(engine: _Engine, spec, plan: _Plan, picks: tuple[int, int, int], labels: str, exc: Exception):
    """The error of a configuration that cannot be fitted, naming the option whose alternative fails alone."""
    message = (exc.message if isinstance(exc, InputError) else f"no column {exc} in the data"
               if isinstance(exc, KeyError) else str(exc))
    option, what = "uncertainty", f"the alternatives {labels}"
    for name, alt in (("impute", plan.impute[picks[2]]), ("winmax", plan.winmax[picks[1]]),
                      ("normalise", plan.normalise[picks[0]])):
        if not alt.changes:
            continue
        try:
            engine.result.recompute(spec.with_changes(alt.changes))
        except (MethodError, InputError, KeyError):
            option, what = f"uncertainty.{name}", f"alternative '{alt.label}'"
            break
    if isinstance(exc, MethodError):
        return MethodError(f"{option}: {what}: {message}")
    return SpecError(f"{what}: {message}", column=option)


# --------------------------------------------------------------------------- summaries
def _quantiles(A: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Linear-interpolation quantiles (R's type 7, numpy's default) of each column of ``A`` (R, m), NaN ignored.

    Returns an array (len(qs), m), NaN for a column without values.  Columns are sorted in
    blocks, each as a contiguous row (values keep their dtype: float32 replicates sort fast).
    """
    A = np.asarray(A)
    R, m = A.shape
    out = np.full((len(qs), m), np.nan)
    block = max(1, (32 * 2**20) // max(A.itemsize * R, 1))
    for start in range(0, m, block):
        s = np.sort(np.ascontiguousarray(A[:, start:start + block].T), axis=1)  # NaN last
        count = np.full(len(s), R) if not np.isnan(s[:, -1]).any() else (~np.isnan(s)).sum(axis=1)
        for i, q in enumerate(qs):
            h = (count - 1) * q
            lo = np.clip(np.floor(h).astype(np.intp), 0, max(R - 1, 0))
            hi = np.minimum(lo + 1, np.maximum(count - 1, 0))
            a = np.take_along_axis(s, lo[:, None], axis=1)[:, 0].astype(float)
            b = np.take_along_axis(s, hi[:, None], axis=1)[:, 0].astype(float)
            out[i, start:start + block] = np.where(count > 0, a + (h - lo) * (b - a), np.nan)
    return out


def _f32(values: np.ndarray) -> np.ndarray:
    """Values kept as float32 per replicate, written with float32's shortest digits (57.3, not 57.29999924)."""
    return np.asarray(values, dtype=np.float32).astype(str).astype(float)


def _ranks_float(rank: np.ndarray) -> np.ndarray:
    out = rank.astype(np.float32)
    out[rank == 0] = np.nan
    return out


@dataclass
class UncertaintyResult:
    """How sure is each rank, category and change (see the module docstring).

    Attributes
    ----------
    locations : DataFrame
        One row per location and round: the location and round columns of the spec, the
        region (``rank.within``) column, ``index`` (nominal), ``rank`` (nominal, national within
        the round), ``rank_median``, ``rank_low``, ``rank_high`` (interval of the replicates),
        ``rank_region`` and ``rank_region_median`` / ``_low`` / ``_high`` (within the region),
        ``index_median``, ``index_low``, ``index_high``, ``category`` (nominal), ``p_<label>``
        (share of the runs in each category), ``robust_category`` (the category of at least
        ``robust`` of the runs, else missing), ``single_informant`` (one key informant: the
        informant bootstrap cannot move it), ``change`` (nominal, since the previous round),
        ``change_low``, ``change_high`` (interval), ``p_change_real`` (share of the runs whose
        change has the nominal change's sign) and ``beyond_noise`` (the interval excludes 0).
    summary : DataFrame
        One row per round: ``round``, ``locations``, ``runs``, ``sources``, ``seed``, ``level``,
        ``rank_shift`` (mean absolute shift of the national rank against the nominal ranking,
        over locations and runs), ``rank_shift_region``, ``median_rank_width`` (median of
        ``rank_high - rank_low``), ``robust_share`` (share of locations with a robust category),
        ``beyond_noise_share`` (share of the changes beyond noise), ``single_informant``
        (locations), ``spec_hash``, ``data_version``.
    runs : DataFrame
        One row per replicate: ``run``, the sampled ``normalise``, ``aggregate``, ``winmax``,
        ``impute``, ``leave_out``, the weights used (each child's share of its parent, columns
        ``weight.<id>``), and its ``rank_shift``.
    configs : list of dict
        The spec changes of every replicate's modelling choices (option paths to values, plus
        ``leave_out``), as :func:`evaluate` takes them.
    replicates : dict of ndarray
        Per replicate (rows) and location-round (columns, in the order of ``locations``):
        ``index`` (float32), ``rank`` and ``rank_region`` (int32, 0 = no rank), ``change``
        (float32, for the locations with a previous round: ``change_units``).
    spec_hash, data_version : str
        Of the nominal result: :meth:`matches` checks that a result is the one analysed.
    options : Uncertainty
        The options used.
    notes : DataFrame
        What was sampled and how, item by item (the workbook's notes sheet).
    illustrative : bool
        True when the data are illustrative (generated): every table says so.
    sensitivity : DataFrame or None
        Sobol indices of the modelling choices (:func:`analyse`; columns of
        :func:`stability.sensitivity.analyse`), or None.
    """

    locations: pd.DataFrame
    summary: pd.DataFrame
    runs: pd.DataFrame
    configs: list
    replicates: dict
    spec_hash: str
    data_version: str
    options: Any
    notes: pd.DataFrame
    illustrative: bool = False
    sensitivity: pd.DataFrame | None = None

    def matches(self, result) -> bool:
        """Whether ``result`` is the index this analysis was computed from (same spec hash and data version)."""
        return result.spec_hash == self.spec_hash and result.data_version == self.data_version

    def to_frames(self) -> dict[str, pd.DataFrame]:
        """The tables by name (``locations``, ``summary``, ``runs``, ``notes``), marked when illustrative."""
        from .export import ILLUSTRATIVE_NOTE

        frames = {"locations": self.locations, "summary": self.summary, "runs": self.runs}
        if self.illustrative:
            frames = {k: v.copy() for k, v in frames.items()}
            for v in frames.values():
                v.insert(0, "data_note", ILLUSTRATIVE_NOTE)
        frames["notes"] = self.notes
        return frames

    def write(self, path: str | Path) -> list[Path]:
        """Write the tables, by the suffix of ``path``.

        ``.xlsx``: one workbook, a sheet per table and a ``notes`` sheet (what was sampled, spec
        hash, data version).  ``.csv`` or ``.parquet``: ``locations`` at ``path``, the others
        beside it (``<stem>.summary.csv``, ``<stem>.runs.csv``, ``<stem>.notes.csv``).  Files are
        written to temporary files and renamed into place, all or none.

        Returns
        -------
        list of Path
        """
        from .io import to_csv, write_outputs, write_workbook

        path = Path(path)
        frames = self.to_frames()
        suffix = path.suffix.lower()
        if suffix == ".xlsx":
            return write_outputs({path: lambda p: write_workbook(p, frames, "Uncertainty of the index")})
        if suffix not in (".csv", ".parquet"):
            raise ParameterError(f"cannot write '{path.name}': the suffix must be .csv, .parquet or .xlsx")

        def writer(df):
            if suffix == ".csv":
                return lambda p: to_csv(df, p)
            return lambda p: df.to_parquet(p, index=False)

        targets = {path: writer(frames["locations"])}
        for name in ("summary", "runs", "notes"):
            targets[path.with_name(f"{path.stem}.{name}{path.suffix}")] = writer(frames[name])
        return write_outputs(targets)


# --------------------------------------------------------------------------- the analysis
class Uncertainty:
    """Monte Carlo uncertainty analysis of a computed index (scikit-learn shape of :func:`run`).

    Parameters
    ----------
    runs, seed, sources : optional
        As the spec's ``uncertainty`` section (:class:`stability.spec.Uncertainty`); None takes the spec's.
    scheduler : str or distributed.Client, optional
        Address of a running Dask distributed cluster (or a client of one): chunks of replicates
        are computed there.  The tables are identical to a local run with the same seed.
    progress : bool
        Show a progress bar (tqdm).
    **options
        Any other option of the section (``weights``, ``normalise``, ``aggregate``, ``winmax``,
        ``impute``, ``include_nominal``, ``leave_one_out``, ``level``, ``robust``, ``chunk_mb``).

    Attributes
    ----------
    options_ : stability.spec.Uncertainty
        The options used.
    sources_ : tuple of str
        The sources drawn.
    chunk_size_ : int
        Replicates per chunk.
    timings_ : dict
        Seconds spent: ``resampler`` (setting up the informant bootstrap), ``choices`` (drawing the
        modelling choices and fitting each distinct configuration), ``replicates`` (the chunks,
        wall time), ``summaries``; and within the chunks, summed over the threads: ``draw``
        (informant samples), ``replay`` (their later steps), ``aggregate``, ``summarise`` (ranks,
        categories, changes).
    result_ : UncertaintyResult
    """

    def __init__(self, runs: int | None = None, seed: int | None = None, sources=None, scheduler=None,
                 progress: bool = True, **options):
        self.runs = runs
        self.seed = seed
        self.sources = sources
        self.scheduler = scheduler
        self.progress = progress
        self.options = options

    def fit(self, result, data=None) -> "Uncertainty":
        """Run the analysis on ``result`` (a :class:`~stability.pipeline.Result`).

        Parameters
        ----------
        result : Result
        data : Dataset, str or Path, optional
            The survey the result was computed from, for the informant bootstrap (default: the
            answers the result keeps).

        Returns
        -------
        self
        """
        spec = result.spec
        opts = options(spec, {"runs": self.runs, "seed": self.seed, "sources": self.sources, **self.options})
        sources = _sources(spec, opts)
        self.options_, self.sources_ = opts, sources
        engine = _Engine(result)
        plan = _plan(spec, opts, sources)
        engine.plan, engine.seed = plan, opts.seed
        timings = {}

        def timed(name, make):
            t0 = time.perf_counter()
            try:
                return make()
            finally:
                timings[name] = time.perf_counter() - t0

        # the informant bootstrap's table (numpy, mostly) is built while the choices are drawn and their
        # configurations fitted (pandas, mostly): two cores at work
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = (pool.submit(timed, "resampler", lambda: _resampler(result, data)) if "informants" in sources
                       else None)
            draws = timed("choices", lambda: _draw(engine, plan, opts.runs, opts.seed, spec))
            engine.resampler = None if pending is None else pending.result()
        from .parallel import workers

        threads = 1 if self.scheduler is not None else max(1, min(workers(), 4))
        # bytes per replicate at the peak of a chunk (measured: the informant samples and their replay take
        # about three float64 tables of units x indicators; ranks and summaries a dozen rows of units)
        per_rep = engine.n * 8 * (14 + (3 * engine.p if "informants" in sources else 0))
        # chunks in flight at once share the memory budget
        size = int(max(1, min(opts.runs, (opts.chunk_mb * 2**20) // max(per_rep * threads, 1))))
        self.chunk_size_ = size
        # chunks of replicates that share a configuration (each replicate's numbers depend on its own
        # draws only, so grouping them changes nothing but the number of calls)
        order = np.lexsort((np.arange(opts.runs), draws["aggregate"], draws["config"]))
        jobs = []
        for start in range(0, opts.runs, size):
            reps = order[start:start + size]
            jobs.append({"reps": reps, "config": draws["config"][reps], "aggregate": draws["aggregate"][reps],
                         "W": draws["W"][reps], "keep": None if draws["keep"] is None else draws["keep"][reps]})
        t0 = time.perf_counter()
        outs = _execute(engine, jobs, opts.runs, self.scheduler, self.progress, threads)
        timings["replicates"] = time.perf_counter() - t0
        for o in outs:
            for k, v in o.pop("times").items():
                timings[k] = timings.get(k, 0.0) + v
        t0 = time.perf_counter()
        self.result_ = _assemble(engine, plan, opts, draws, outs, result)
        timings["summaries"] = time.perf_counter() - t0
        self.timings_ = timings
        return self


def run(result, data=None, *, runs: int | None = None, seed: int | None = None, sources=None, scheduler=None,
        progress: bool = True, **options) -> UncertaintyResult:
    """How sure is each rank, category and change of a computed index.

    Parameters
    ----------
    result : Result
        The nominal index (:func:`stability.compute`).
    data : Dataset, str or Path, optional
        The survey, for the informant bootstrap (default: the answers ``result`` keeps).
    runs, seed, sources : optional
        Replicates, seed and sources (``choices``, ``informants``); default the spec's
        ``uncertainty`` section.
    scheduler : str or distributed.Client, optional
        Address of a running Dask distributed cluster: chunks of replicates run there, with the
        same tables as locally.
    progress : bool
        Show a progress bar (tqdm).
    **options
        Other options of the section: ``weights``, ``normalise``, ``aggregate``, ``winmax``,
        ``impute``, ``include_nominal``, ``leave_one_out``, ``level``, ``robust``, ``chunk_mb``
        (see :class:`stability.spec.Uncertainty`).

    Returns
    -------
    UncertaintyResult

    Raises
    ------
    SpecError
        An invalid option, or an alternative that does not suit the index: one line naming the
        option (``uncertainty.normalise``...).
    """
    return Uncertainty(runs=runs, seed=seed, sources=sources, scheduler=scheduler, progress=progress,
                       **options).fit(result, data).result_


def _sources(spec, opts) -> tuple[str, ...]:
    per_informant = bool(spec.columns.key_informant)
    if opts.sources is None:
        return SOURCES if per_informant else ("choices",)
    if "informants" in opts.sources and not per_informant:
        raise SpecError("the informant bootstrap needs answers with one row per key informant "
                        "(columns.key_informant); use sources: [choices]", column="uncertainty.sources")
    return tuple(s for s in SOURCES if s in opts.sources)


def _resampler(result, data):
    from .io import Dataset, load_dataset
    from .resample import InformantResampler

    data = result._data if data is None else data
    if data is None:
        raise SpecError("the informant bootstrap needs the survey's answers, which this result does not keep: pass "
                        "data=", column="uncertainty.sources")
    if not isinstance(data, Dataset):
        if isinstance(data, pd.DataFrame):
            data = Dataset(answers=data, files={"answers": "answers"}, name="in-memory table")
        else:
            data = load_dataset(data, spec=result.spec)
    try:
        return InformantResampler(data, result.spec, result.prepared)
    except ValueError as exc:
        raise SpecError(str(exc), column="uncertainty.sources") from None


def _execute(engine: _Engine, jobs: list[dict], runs: int, scheduler, progress: bool, threads: int = 1) -> list[dict]:
    """Run the chunks here or on a Dask cluster, with a progress bar; results in replicate order."""
    from tqdm.auto import tqdm

    bar = tqdm(total=runs, desc="uncertainty", unit="run", disable=None if progress else True, leave=False)  # None: no bar in a log
    try:
        outs = []
        if scheduler is None:
            if threads <= 1 or len(jobs) <= 1:
                for job in jobs:
                    outs.append(_run_chunk(engine, job))
                    bar.update(len(job["reps"]))
                return outs
            # numpy releases the GIL in its loops: chunks on threads use the cores (each replicate's numbers
            # depend on its own draws only, so the order in which chunks finish changes nothing)
            from concurrent.futures import ThreadPoolExecutor, as_completed

            with ThreadPoolExecutor(max_workers=threads) as pool:
                futures = [pool.submit(_run_chunk, engine, job) for job in jobs]
                for fut in as_completed(futures):
                    out = fut.result()
                    outs.append(out)
                    bar.update(len(out["reps"]))
            return outs
        from distributed import Client, as_completed

        client, own = (scheduler, False) if isinstance(scheduler, Client) else (Client(scheduler), True)
        try:
            shared = client.scatter(engine, broadcast=True, hash=False)
            futures = [client.submit(_run_chunk, shared, job, pure=False) for job in jobs]
            for fut in as_completed(futures):
                out = fut.result()
                outs.append(out)
                bar.update(len(out["reps"]))
        finally:
            if own:
                client.close()
        return outs
    finally:
        bar.close()


def _assemble(engine: _Engine, plan: _Plan, opts, draws: dict, outs: list[dict], result) -> UncertaintyResult:
    spec = result.spec
    c = spec.columns
    runs = opts.runs

    def gather(name):  # per replicate, in replicate order
        if outs[0][name] is None:
            return None
        first = outs[0][name]
        out = np.empty((runs,) + first.shape[1:], dtype=first.dtype)
        for o in outs:
            out[o["reps"]] = o[name]
        return out

    index, rank, rank_region, change = gather("index"), gather("rank"), gather("rank_region"), gather("change")
    shift, shift_all = gather("shift"), gather("shift_all")
    counts = sum(o["counts"] for o in outs)
    lo_q = (1.0 - opts.level) / 2.0
    qs = (0.5, lo_q, 1.0 - lo_q)

    keys = result.stage("aggregated").index
    table = pd.DataFrame({c.location: np.asarray(keys.get_level_values(0))})
    if c.round:
        table[c.round] = np.asarray(keys.get_level_values(c.round))
    if engine.region is not None:
        table[engine.within] = engine.region
    table["index"] = engine.nominal_index
    table["rank"] = engine.nominal_rank
    # the quantiles sort every unit's replicates: the three tables on threads (numpy sorts without the GIL)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=3) as pool:
        q_rank = pool.submit(lambda: _quantiles(_ranks_float(rank), qs))
        q_region = None if rank_region is None else pool.submit(lambda: _quantiles(_ranks_float(rank_region), qs))
        q_index = pool.submit(_quantiles, index, qs)
        q_change = pool.submit(_quantiles, change, qs) if len(engine.cur) else None
        med, low, high = q_rank.result()
        table["rank_median"], table["rank_low"], table["rank_high"] = med, low, high
        if q_region is not None:
            table["rank_region"] = engine.nominal_rank_region
            med, low, high = q_region.result()
            table["rank_region_median"], table["rank_region_low"], table["rank_region_high"] = med, low, high
        med, low, high = q_index.result()
        change_q = None if q_change is None else q_change.result()
    table["index_median"], table["index_low"], table["index_high"] = _f32(med), _f32(low), _f32(high)
    table["category"] = result.ranks["category"].to_numpy()
    shares = counts / float(runs)
    for k, label in enumerate(engine.labels):
        table[f"p_{label}"] = shares[:, k]
    modal = shares.argmax(axis=1)
    robust = shares[np.arange(len(shares)), modal] >= opts.robust
    table["robust_category"] = pd.Categorical.from_codes(np.where(robust, modal, -1), categories=engine.labels,
                                                         ordered=True)
    single = np.zeros(engine.n, dtype=bool)
    if engine.resampler is not None:
        single = np.asarray(engine.resampler.single_, dtype=bool)
    elif "n_informants" in result.units.columns:
        single = (pd.to_numeric(result.units["n_informants"], errors="coerce") == 1).to_numpy()
    table["single_informant"] = single

    nominal_change = (result.ranks["change"].to_numpy(dtype=float) if "change" in result.ranks.columns
                      else np.full(engine.n, np.nan))
    table["change"] = nominal_change
    for col in ("change_low", "change_high", "p_change_real"):
        table[col] = np.nan
    if change_q is not None:
        _, low, high = change_q
        table.loc[engine.cur, "change_low"] = _f32(low)
        table.loc[engine.cur, "change_high"] = _f32(high)
        sign = np.sign(nominal_change[engine.cur])
        valid = ~np.isnan(change)
        same = (np.sign(change) == sign[None, :]) & valid
        with np.errstate(invalid="ignore", divide="ignore"):
            p_same = same.sum(axis=0) / valid.sum(axis=0)
        table.loc[engine.cur, "p_change_real"] = np.where(np.isnan(nominal_change[engine.cur]), np.nan, p_same)
    table["beyond_noise"] = ((table["change_low"] > 0) | (table["change_high"] < 0)) & table["change"].notna()

    # per round
    rounds = engine.round_order
    source_text = "+".join(plan.sources)
    summary_rows = []
    width = table["rank_high"] - table["rank_low"]
    for k, rnd in enumerate(rounds):
        rows = engine.round_blocks[k]
        sub = table.iloc[rows]
        changed = sub["change"].notna()
        shift_region = np.nan
        if rank_region is not None:
            both = (rank_region[:, rows] > 0) & ~np.isnan(engine.nominal_rank_region[rows])[None, :]
            d = np.abs(rank_region[:, rows] - np.nan_to_num(engine.nominal_rank_region[rows]))
            shift_region = float(d[both].mean()) if both.any() else np.nan
        summary_rows.append({
            "round": rnd, "locations": len(rows), "runs": runs, "sources": source_text, "seed": opts.seed,
            "level": opts.level,
            "rank_shift": float(np.nanmean(shift[:, k])) if np.isfinite(shift[:, k]).any() else np.nan,
            "rank_shift_region": shift_region,
            "median_rank_width": float(width.iloc[rows].median()),
            "robust_share": float(sub["robust_category"].notna().mean()) if len(sub) else np.nan,
            "beyond_noise_share": float(sub.loc[changed, "beyond_noise"].mean()) if changed.any() else np.nan,
            "single_informant": int(sub["single_informant"].sum()),
            "spec_hash": result.spec_hash, "data_version": result.data_version,
        })
    summary = pd.DataFrame(summary_rows)

    # per replicate
    picks = draws["picks"]
    runs_table = pd.DataFrame({
        "run": np.arange(runs),
        "normalise": [plan.normalise[i].label for i in picks[:, 0]],
        "aggregate": [plan.aggregate[i].label for i in draws["aggregate"]],
        "winmax": [plan.winmax[i].label for i in picks[:, 1]],
        "impute": [plan.impute[i].label for i in picks[:, 2]],
        "leave_out": [plan.leave_out[i] or "" for i in picks[:, 3]],
    })
    W = draws["W"]
    varies_weights = plan.varies and plan.weights.method != "none"
    if varies_weights or (draws["leave"] >= 0).any():
        shares_w = np.zeros_like(W)
        for _, kids in engine.groups:
            tot = W[:, kids].sum(axis=1, keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                shares_w[:, kids] = np.where(tot > 0, W[:, kids] / tot, np.nan)
        for k, node in enumerate(engine.nodes):
            if k != engine.root:
                runs_table[f"weight.{node}"] = shares_w[:, k]
    runs_table["rank_shift"] = shift_all

    configs = _configs(engine, plan, draws, varies_weights)
    replicates = {"index": index, "rank": rank, "rank_region": rank_region, "change": change,
                  "change_units": engine.cur}
    return UncertaintyResult(table, summary, runs_table, configs, replicates, result.spec_hash,
                             result.data_version, opts, _notes(result, plan, opts), bool(result.illustrative))


def _configs(engine: _Engine, plan: _Plan, draws: dict, weights: bool) -> list[dict]:
    """Every replicate's modelling choices as spec changes (option paths), for :func:`evaluate` or a naive loop."""
    out = []
    paths = [f"indicators.{x}.weight" if k < engine.p else f"aggregates.{x}.weight"
             for k, x in enumerate(engine.nodes)]
    for r in range(len(draws["config"])):
        i_norm, i_treat, i_imp, i_leave = draws["picks"][r]
        cfg = {**plan.impute[i_imp].changes, **plan.winmax[i_treat].changes, **plan.normalise[i_norm].changes,
               **plan.aggregate[draws["aggregate"][r]].changes}
        if weights:
            for k, path in enumerate(paths):
                if k != engine.root:
                    cfg[path] = float(draws["W"][r, k])
        left = plan.leave_out[i_leave]
        if left is not None:
            cfg["leave_out"] = left
        out.append(cfg)
    return out


def _notes(result, plan: _Plan, opts) -> pd.DataFrame:
    from .export import ILLUSTRATIVE_NOTE

    rows = {"title": f"Uncertainty of the index: {result.spec.name}"}
    if result.illustrative:
        rows["WARNING"] = ILLUSTRATIVE_NOTE + ": do not use for programming decisions"
    rows.update({"spec hash": result.spec_hash, "data version": result.data_version, "runs": str(opts.runs),
                 "seed": str(opts.seed), "sources": ", ".join(plan.sources)})
    if plan.varies:
        w = plan.weights
        rows["weights"] = {"noise": f"every weight times 1 + {w.noise:g} U(-1, 1), independently",
                           "dirichlet": f"shares within each aggregate from a Dirichlet distribution centred on the "
                                        f"nominal shares (concentration {w.concentration:g})",
                           "none": "nominal"}[w.method]
        for name in ("normalise", "aggregate", "winmax", "impute"):
            alts = getattr(plan, name)
            rows[f"{name} alternatives"] = ", ".join(a.label for a in alts) + (
                " (one drawn per run, uniformly)" if len(alts) > 1 else " (nominal only)")
        rows["indicator left out"] = ("one drawn per run among: " + ", ".join(x or "none" for x in plan.leave_out)
                                      if len(plan.leave_out) > 1 else "none")
        rows["positive means"] = ("geometric, harmonic and generalised means with p <= 0 on a normalisation whose "
                                  "range starts at 0 or below: scores mapped onto [1, 100], aggregated, mapped back")
    if "informants" in plan.sources:
        rows["key informants"] = ("resampled with replacement within each location and round (as many as it had), "
                                  "combined again, later steps with the run's fitted parameters; locations with one "
                                  "informant do not vary (single_informant)")
    lo = (1.0 - opts.level) / 2.0
    rows["intervals"] = f"{lo * 100:g}th to {(1 - lo) * 100:g}th percentile of the runs (linear interpolation)"
    rows["robust category"] = f"the same category in at least {opts.robust:.0%} of the runs"
    rows["ranks"] = "1 = most stable, national within the round and within the region, ties share the lowest rank"
    return pd.DataFrame({"item": list(rows), "value": list(rows.values())})


# --------------------------------------------------------------------------- the model for Sobol
_ENGINES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _engine_for(result) -> _Engine:
    engine = _ENGINES.get(result)
    if engine is None:
        engine = _Engine(result)
        _ENGINES[result] = engine
    return engine


def output_names(result) -> list[str]:
    """Names of the outputs of :func:`evaluate`: ``rank_shift:<round>`` per round, ``median_index:<region>``."""
    engine = _engine_for(result)
    names = [f"rank_shift:{r}" for r in engine.round_order]
    if engine.region is not None:
        names += [f"median_index:{g}" for g in engine.region_names]
    return names


def _flatten(config: Mapping, paths: set[str]) -> dict:
    """A configuration's changes: option paths as they are, mappings under other keys (factor names) merged in."""
    out: dict = {}
    for key, value in config.items():
        if key not in paths and key != "leave_out" and isinstance(value, Mapping):
            out.update(_flatten(value, paths))
        else:
            out[key] = value
    return out


def _parse(engine: _Engine, configs: Sequence[Mapping[str, Any]]) -> list[tuple]:
    """Per configuration: fitted configuration, level methods, weights (nodes,) and the indicators kept (or None)."""
    from .spec import iter_options

    if engine.paths is None:
        engine.paths = {path for path, _, _ in iter_options(engine.spec)}
    weight_path = {(f"indicators.{x}.weight" if k < engine.p else f"aggregates.{x}.weight"): k
                   for k, x in enumerate(engine.nodes)}
    rows = []
    for cfg in configs:
        changes = _flatten(cfg, engine.paths)
        left = changes.pop("leave_out", None)
        weights = {k: v for k, v in changes.items() if k in weight_path}
        rest = {k: v for k, v in changes.items() if k not in weight_path}
        config, methods = _resolve_rest(engine, rest)
        W = engine.configs[config].weights.copy()
        for k, v in weights.items():
            try:
                v = float(v)
            except (TypeError, ValueError):
                v = float("nan")
            if not (math.isfinite(v) and v >= 0):
                raise SpecError(f"a weight must be a number of 0 or more, got {weights[k]!r}", column=k)
            W[weight_path[k]] = v
        keep = None
        if left is not None:
            if left not in engine.pos or engine.pos[left] >= engine.p:
                raise SpecError(f"'{left}' is not an indicator of the spec", column="leave_out")
            W[engine.pos[left]] = 0.0
            keep = np.ones((1, engine.p), dtype=bool)
            keep[0, engine.pos[left]] = False
        for parent, kids in engine.groups:
            kept = kids if keep is None else kids[(kids >= engine.p) | keep[0, np.minimum(kids, engine.p - 1)]]
            if len(kept) and not (W[kept] > 0).any():
                raise SpecError(f"every child of '{engine.nodes[parent]}' has weight 0 (its score would be missing "
                                "everywhere)", column="weights")
        rows.append((config, methods, W, keep))
    return rows


def _index_rows(engine: _Engine, rows: list[tuple]) -> np.ndarray:
    """The index of parsed configurations, those sharing a fitted configuration and methods in one batch."""
    out = np.empty((len(rows), engine.n))
    groups: dict = {}
    for i, (config, methods, _, keep) in enumerate(rows):
        groups.setdefault((config, methods, keep is None), []).append(i)
    for (config, methods, _), members in groups.items():
        W = np.stack([rows[i][2] for i in members])
        keep = None if rows[members[0]][3] is None else np.concatenate([rows[i][3] for i in members])
        out[members] = engine.index(config, W, keep, methods)
    return out


def index_scores(result, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """The index of every unit for each configuration of the modelling choices, by the vectorised engine.

    Parameters
    ----------
    result : Result
        The nominal index.
    configs : sequence of mapping
        As :func:`evaluate` takes them.

    Returns
    -------
    ndarray, shape (len(configs), units)
        Units in the order of ``result.stage("aggregated")``; row ``i`` equals the index of
        ``compute(data, spec.with_changes(configs[i]))`` (for ``leave_out``: of the spec without
        that indicator).
    """
    engine = _engine_for(result)
    return _index_rows(engine, _parse(engine, configs))


def evaluate(result, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """The index's summary outputs for each configuration of the modelling choices (the Sobol model).

    Parameters
    ----------
    result : Result
        The nominal index.
    configs : sequence of mapping
        Each maps option paths of the spec (as :meth:`~stability.spec.IndexSpec.with_changes`)
        to values: data-driven steps (``normalise.*``, ``treat.*``, ``impute.*``...), weights
        (``indicators.<id>.weight``, ``aggregates.<id>.weight``) and aggregation methods
        (``levels.<k>.method``, ``levels.<k>.p``); plus ``leave_out`` (an indicator id, or None).
        A mapping under a key that is no option path (a factor name of
        :mod:`stability.sensitivity` whose options are sets of changes) is merged in.

    Returns
    -------
    ndarray, shape (len(configs), n_outputs)
        Per configuration, the mean absolute shift of the national rank against the nominal
        ranking in each round, then the median index of each region in the latest round
        (names: :func:`output_names`).  The index of each configuration comes from the
        vectorised engine of :func:`run` (:func:`index_scores`).

    Raises
    ------
    SpecError
        A configuration that is not a valid spec, or changes an option the engine does not vary.

    Examples
    --------
    >>> from stability import sensitivity as sa, uncertainty          # doctest: +SKIP
    >>> factors = [sa.Factor("normalisation", options=({"normalise.method": "goalposts"},
    ...                                                {"normalise.method": "minmax"})),
    ...            sa.Factor("aggregates.safety.weight", bounds=(0.5, 2.0))]
    >>> sa.sobol(factors, lambda c: uncertainty.evaluate(result, c), 64,
    ...          outputs=uncertainty.output_names(result))
    """
    import warnings

    engine = _engine_for(result)
    index = _index_rows(engine, _parse(engine, configs))
    cols = [engine.summarise_chunk(index)["shift"]]
    if engine.region is not None:
        latest = engine.round_blocks[-1]
        x, codes = index[:, latest], engine.region_codes[latest]
        med = np.full((len(index), len(engine.region_names)), np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a region without any index in a configuration
            for g in range(len(engine.region_names)):
                if (codes == g).any():
                    med[:, g] = np.nanmedian(x[:, codes == g], axis=1)
        cols.append(med)
    return np.concatenate(cols, axis=1)


def _resolve_rest(engine: _Engine, rest: dict) -> tuple[int, tuple]:
    """The fitted configuration and level methods of a configuration's non-weight changes (cached)."""
    key = json.dumps(rest, sort_keys=True, default=str)
    if key in engine.cache:
        return engine.cache[key]
    spec = engine.spec
    try:
        changed = spec.with_changes(rest) if rest else spec
    except SpecError as exc:
        raise SpecError(f"configuration {rest}: {exc.message}", column=exc.column) from None
    methods = _nominal_methods(changed)
    from .spec import step_signatures

    levels = {f"levels.{k}.{o}": getattr(spec.levels[k - 1], o) for k in range(2, len(spec.levels) + 1)
              for o in ("method", "p")}
    data_spec = changed.with_changes(levels) if methods != _nominal_methods(spec) else changed
    new, old = step_signatures(data_spec), step_signatures(spec)
    for step in ("prepare", "aggregated"):
        if new[step] != old[step]:
            raise SpecError(f"configuration {rest} changes options of the '{step}' step, which the engine does not "
                            "vary (it varies the data-driven steps, the weights, the aggregation methods and the "
                            "indicator left out)", column="configs")
    if changed.categories != spec.categories or changed.rank != spec.rank:
        raise SpecError(f"configuration {rest} changes the categories or the ranks, which the engine does not vary",
                        column="configs")
    config = engine.fit(data_spec)
    engine.cache[key] = (config, methods)
    return config, methods


# --------------------------------------------------------------------------- which choices matter (Sobol)
#: The modelling choices as factors of the sensitivity analysis, in words (tables, sentences, charts).
FACTOR_LABELS = {
    "weight_set": "weights",
    "normalise": "normalisation method",
    "aggregate": "aggregation method",
    "winmax": "outlier treatment",
    "impute": "imputation method",
    "leave_one_out": "indicator left out",
}
#: Weight sets drawn for the ``weights`` factor (a discrete factor of that many options).
WEIGHT_SETS = 64


def _weight_sets(engine: _Engine, section, seed: int, n: int) -> tuple[dict, ...]:
    """``n`` weight sets drawn as the analysis draws its weights, as spec changes (weight paths to values)."""
    base = engine.configs[engine.fit(engine.spec)].weights
    paths = [f"indicators.{x}.weight" if k < engine.p else f"aggregates.{x}.weight" for k, x in enumerate(engine.nodes)]
    sets = []
    for i in range(n):
        rng = np.random.default_rng([seed, 1, i])
        w = _drawn_weights(base, engine.groups, section, rng)
        sets.append({path: float(v) for path, v, b in zip(paths, w, base) if b > 0})
    return tuple(sets)


def factors(result, *, seed: int | None = None, weight_sets: int = WEIGHT_SETS, **overrides) -> list:
    """The modelling choices that the spec's ``uncertainty`` section varies, as Sobol factors.

    One discrete factor per choice with more than one alternative: ``normalise``,
    ``aggregate``, ``winmax``, ``impute``, ``leave_one_out`` (each option a set of spec
    changes, as :func:`evaluate` takes them) and ``weight_set`` (``weight_sets`` weight sets
    drawn with the section's noise or Dirichlet rule).

    Returns
    -------
    list of :class:`stability.sensitivity.Factor`
    """
    from .sensitivity import Factor

    spec = result.spec
    opts = options(spec, {"seed": seed, **overrides})
    plan = _plan(spec, opts, ("choices",))
    engine = _engine_for(result)
    out = []
    if plan.weights.method != "none":
        out.append(Factor("weight_set", options=_weight_sets(engine, plan.weights, opts.seed, weight_sets)))
    for name, alts in (("normalise", plan.normalise), ("aggregate", plan.aggregate), ("winmax", plan.winmax),
                       ("impute", plan.impute)):
        if len(alts) > 1:
            out.append(Factor(name, options=tuple(dict(a.changes) for a in alts)))
    if len(plan.leave_out) > 1:
        out.append(Factor("leave_one_out", options=tuple({"leave_out": x} for x in plan.leave_out)))
    return out


def sobol_indices(result, n_base: int = 64, *, seed: int | None = None, **overrides) -> pd.DataFrame | None:
    """Sobol indices of the index's outputs with respect to each modelling choice of the analysis.

    The model is :func:`evaluate` (the vectorised engine, no informant resampling): the mean
    absolute rank shift per round (``rank_shift:<round>``) and each region's median index in the
    latest round (``median_index:<region>``).  ``n_base`` base samples (a power of 2) give
    ``n_base * (k + 2)`` configurations for ``k`` choices.

    Returns
    -------
    DataFrame or None
        :func:`stability.sensitivity.analyse`'s table; None when fewer than one choice varies.
    """
    from . import sensitivity

    facs = factors(result, seed=seed, **overrides)
    if not facs:
        return None
    opts = options(result.spec, {"seed": seed, **overrides})
    table = sensitivity.sobol(facs, lambda configs: evaluate(result, configs), n_base,
                              outputs=output_names(result), seed=opts.seed)
    return table


def analyse(result, data=None, *, runs: int | None = None, seed: int | None = None, sobol: int = 64,
            scheduler=None, progress: bool = True, **overrides) -> UncertaintyResult:
    """:func:`run` and, when modelling choices vary, their Sobol indices (``.sensitivity``).

    Parameters
    ----------
    result, data, runs, seed, scheduler, progress, **overrides
        As :func:`run`.
    sobol : int
        Base samples of the Sobol analysis (:func:`sobol_indices`; a power of 2; 0: none).
    """
    out = run(result, data, runs=runs, seed=seed, scheduler=scheduler, progress=progress, **overrides)
    if sobol and "choices" in out.summary["sources"].iloc[0]:
        opts = {k: v for k, v in overrides.items() if k != "sources"}
        out.sensitivity = sobol_indices(result, sobol, seed=seed, **opts)
    return out


# --------------------------------------------------------------------------- saved runs
MANIFEST = "manifest.json"
#: Formats :func:`save_run` writes (Parquet always: :func:`load_run` reads it).
RUN_FORMATS = ("csv", "parquet", "xlsx")


def save_run(run: UncertaintyResult, folder: str | Path, formats: Sequence[str] = RUN_FORMATS) -> list[Path]:
    """Write an analysis to ``folder``: its tables, the Sobol table and chart, and a manifest.

    ``uncertainty.<format>`` (+ ``.summary``, ``.runs``, ``.notes`` beside it for CSV and
    Parquet; one workbook for ``xlsx``), ``sensitivity.csv`` and ``sensitivity.png`` when there
    are Sobol indices, and ``manifest.json`` (spec hash, data version, runs, seed, sources, the
    files), written last: a folder with a manifest holds a complete run.  Parquet is always
    written (it is what :func:`load_run` reads).

    Returns
    -------
    list of Path
    """
    from .io import to_csv, write_outputs, write_text_atomic

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ParameterError(f"'{folder}' is a file, not an output folder")
    folder.mkdir(parents=True, exist_ok=True)
    formats = list(dict.fromkeys([*formats, "parquet"]))
    bad = [f for f in formats if f not in RUN_FORMATS]
    if bad:
        raise ParameterError(f"unknown format '{bad[0]}' (choose from {', '.join(RUN_FORMATS)})")
    files: list[Path] = []
    for fmt in formats:
        files += run.write(folder / f"uncertainty.{fmt}")
    if run.sensitivity is not None:
        files += write_outputs({folder / "sensitivity.csv": lambda p: to_csv(run.sensitivity, p),
                                folder / "sensitivity.parquet": lambda p: run.sensitivity.to_parquet(p, index=False),
                                folder / "sensitivity.png": lambda p: _save_chart(run, p)})
    summary = run.summary
    manifest = {"spec_hash": run.spec_hash, "data_version": run.data_version,
                "runs": int(summary["runs"].iloc[0]) if len(summary) else 0,
                "seed": int(summary["seed"].iloc[0]) if len(summary) else None,
                "sources": str(summary["sources"].iloc[0]) if len(summary) else "",
                "rounds": [str(r) for r in summary["round"]] if "round" in summary else [],
                "illustrative": bool(run.illustrative),
                "files": sorted(p.name for p in files)}
    write_text_atomic(folder / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return files + [folder / MANIFEST]


def _save_chart(run: UncertaintyResult, path: Path) -> None:
    from .sensitivity import chart

    outputs = list(dict.fromkeys(run.sensitivity["output"]))
    shift = [o for o in outputs if o.startswith("rank_shift:")]
    output = shift[-1] if shift else outputs[0]
    fig = chart(run.sensitivity, output, labels=FACTOR_LABELS,
                output_label=f"the ranking (round {output.split(':', 1)[1]})" if shift else None)
    fig.savefig(path, dpi=110)


def load_run(folder: str | Path) -> UncertaintyResult:
    """An analysis written by :func:`save_run` (tables and Sobol indices; not the replicates).

    Raises
    ------
    DataError
        One line when the folder holds no complete run.
    """
    from .exceptions import DataError

    folder = Path(folder)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise DataError(f"no uncertainty run in '{folder}' (no {MANIFEST}: write one with stability uncertainty)")
    try:
        meta = json.loads(manifest.read_text(encoding="utf-8"))
        frames = {name: pd.read_parquet(folder / ("uncertainty.parquet" if name == "locations"
                                                  else f"uncertainty.{name}.parquet"))
                  for name in ("locations", "summary", "runs", "notes")}
        sens = folder / "sensitivity.parquet"
        sensitivity = pd.read_parquet(sens) if sens.is_file() else None
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"the uncertainty run in '{folder}' cannot be read: {exc}") from None
    frames = {k: v.drop(columns="data_note") if "data_note" in v.columns else v for k, v in frames.items()}
    return UncertaintyResult(frames["locations"], frames["summary"], frames["runs"], [], {}, meta["spec_hash"],
                             meta["data_version"], None, frames["notes"], bool(meta.get("illustrative")),
                             sensitivity)
