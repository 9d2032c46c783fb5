"""The index as a model function of its modelling choices (:func:`evaluate`, :func:`index_scores`),
and which choices matter: the factors and Sobol indices of :mod:`stability.sensitivity`."""

from __future__ import annotations

import json
import math
import weakref
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..exceptions import SpecError
from .choices import _nominal_methods, _plan, options
from .engine import _Engine
from .sampling import _drawn_weights

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
    from ..spec import iter_options

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
    from ..spec import step_signatures

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
#: How readers are told to get more base samples when the estimates are noisy
#: (:func:`stability.sensitivity.noise_sentence`; the table's ``attrs["more"]``).
MORE_SAMPLES = "stability uncertainty --sobol {n}"
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
    from ..sensitivity import Factor

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
        :func:`stability.sensitivity.analyse`'s table (raw estimates; :func:`stability.sensitivity.for_readers`
        gives what readers see), ``attrs["more"]`` :data:`MORE_SAMPLES`; None when no choice varies.
    """
    from .. import sensitivity

    facs = factors(result, seed=seed, **overrides)
    if not facs:
        return None
    opts = options(result.spec, {"seed": seed, **overrides})
    table = sensitivity.sobol(facs, lambda configs: evaluate(result, configs), n_base,
                              outputs=output_names(result), seed=opts.seed)
    table.attrs["more"] = MORE_SAMPLES
    return table
