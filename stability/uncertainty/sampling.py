"""What each replicate draws: its modelling choices and weights, from its own seed."""

from __future__ import annotations

import numpy as np

from ..exceptions import InputError, MethodError, SpecError
from .choices import _Plan
from .engine import _Engine


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


