"""Variance-based (Sobol) sensitivity of an index's outputs to its modelling choices.

A composite index rests on choices (normalisation method, weights, outlier treatment,
imputation...).  This module measures how much of the variation of each output (the mean rank
shift against the nominal ranking, a region's median score...) each choice explains, when every
choice varies at once:

==============================  ====================================================================
:class:`Factor`                 one uncertain modelling choice: discrete (``options``) or continuous
                                (``bounds``); :meth:`Factor.value` maps ``u`` in [0, 1] to a value
:func:`sample`                  Saltelli's design on [0, 1]^k (SALib, scrambled Sobol' sequence) and
                                the configuration (factor name -> value) of every run
:func:`analyse`                 first-order and total-effect indices with bootstrap intervals, one row
                                per (output, factor)
:func:`sobol`                   :func:`sample`, the model on every configuration, :func:`analyse`
:func:`for_readers`             the indices as readers see them: within [0, 1], first order at most
                                the total effect, 1 for the only factor that varies; ``noisy`` flag
:func:`noise_sentence`          what to say when the estimates are noisy, and how to get better ones
:func:`readable`                the indices of some outputs as a table in words (notebooks)
:func:`chart`                   horizontal bars of both indices per factor, with their intervals
:func:`summary_sentence`        one plain-English sentence for reports
==============================  ====================================================================

Method
------
There is one factor per modelling choice, each a uniform ``u`` on [0, 1].  A discrete choice with
``L`` options takes option ``floor(u * L)`` (``u = 1`` takes the last one), so that every option is
equally likely; a continuous factor maps ``u`` linearly onto its ``bounds`` (``bounds=(0, 1)`` uses
``u`` itself).  Saltelli's sampling scheme with ``N`` base samples (``n_base``, a power of 2, as
the Sobol' sequence needs) gives ``N * (k + 2)`` runs for ``k`` factors: enough for first-order and
total-effect indices, not for second-order ones.  The indices are SALib's estimators (Saltelli et al.
2010): the **first-order index** ``S1`` is the share of the output's variance that the factor
explains alone, the **total effect** ``ST`` the share it explains with all its interactions (what
would be left if every other choice were fixed).  ``ST - S1`` measures interactions; a factor with
``ST`` near 0 can be fixed at any of its values without changing the output.  Estimates are
sampling estimates: they may fall below 0 or above 1, and a first-order estimate may exceed the
total effect it is part of; :func:`analyse` reports them as they are (as SALib and COINr do).

What readers see (:func:`chart`, :func:`summary_sentence`, :func:`readable`) goes through
:func:`for_readers`: each estimate and interval within [0, 1], the first-order index at most the
total effect, and a factor that is the only one varying at 1 (it explains all of the variance by
definition; its estimates are noise around 1).  When an output's raw estimates leave [0, 1] or have
``S1 > ST`` by more than :data:`NOISE_TOLERANCE`, the output is ``noisy``: the estimates rest on too
few base samples, and :func:`noise_sentence` says so and how to get better ones (more base samples).

Intervals come from SALib's bootstrap over the base samples (``num_resamples`` resamples): the
half-width is ``z * sd`` of the resampled estimates, with ``z`` the normal quantile of
``conf_level``, and the table gives ``estimate - half_width`` and ``estimate + half_width`` (not
clipped to [0, 1]).

An output that does not vary over the runs (its range is at most 1e-12 times its largest absolute
value, so rounding noise counts as no variation) has no variance to share out: its indices and
intervals are 0 and its ``note`` column says so, instead of the NaN that dividing by a zero
variance would give.

Examples
--------
Sensitivity of the Mali index's ranking and regional medians to the normalisation and the weight
of the safety pillar (each configuration recomputes only what depends on the changed options;
``n_base=32`` means 128 recomputations):

.. code-block:: python

    import numpy as np
    import stability as st
    from stability import sensitivity as sa

    result = st.compute("data/raw/mali_illustrative", st.load_spec("data/specs/mali.yaml"))
    factors = [
        sa.Factor("normalisation", options=(
            {"normalise.method": "goalposts"},
            {"normalise.method": "minmax", "normalise.l": 0, "normalise.u": 100})),
        sa.Factor("safety_weight", bounds=(0.5, 2.0)),
    ]
    base = result.scores
    regions = sorted(base["admin1_pcode"].unique())

    def model(configs):
        rows = []
        for c in configs:
            changes = {**c["normalisation"], "aggregates.safety.weight": c["safety_weight"]}
            s = result.recompute(changes).scores
            shift = (s["rank_national"] - base["rank_national"]).abs().mean()
            medians = s.groupby("admin1_pcode")["stability"].median().reindex(regions)
            rows.append([shift, *medians])
        return np.array(rows)

    table = sa.sobol(factors, model, 32, outputs=["rank_shift", *regions])
    labels = {"safety_weight": "weight of the safety pillar"}
    sa.summary_sentence(table, "rank_shift", labels=labels, output_label="the ranking")
    # 'Which choices matter most for the ranking: the weight of the safety pillar (total effect
    #  0.73, 95 % interval 0.39–1.00), then the normalisation (0.12).'
    sa.chart(table, "rank_shift", labels=labels, output_label="the ranking").savefig("sensitivity.png")
"""

from __future__ import annotations

import math
import textwrap
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Factor", "sample", "analyse", "sobol", "for_readers", "noise_sentence", "readable", "chart",
           "summary_sentence", "COLUMNS", "NOISE_TOLERANCE"]

#: Columns of the table that :func:`analyse` returns, in order.
COLUMNS = ["output", "factor", "S1", "S1_low", "S1_high", "ST", "ST_low", "ST_high", "note"]

#: How far a raw estimate may leave [0, 1] (or a first-order index exceed its total effect) before the output's
#: estimates are called noisy (:func:`for_readers`).
NOISE_TOLERANCE = 0.05
#: The ``note`` of the only factor that varies, in :func:`for_readers`.
NOTE_ONLY_FACTOR = "the only choice that varies: it explains all of the variance by definition (indices set to 1)"

#: An output whose range is at most this share of its largest absolute value does not vary.
_CONSTANT_RTOL = 1e-12

_NOTE_CONSTANT = "output does not vary over the {runs} runs: no choice changes it, indices set to 0"
_NOTE_AB_ONLY = ("output does not vary over the base samples, only in a few cross-sampled runs: indices "
                 "cannot be estimated and are 0; use a larger n_base")
_NOTE_UNDEFINED = "estimate undefined (NaN) for this factor"


# --------------------------------------------------------------------------- factors
@dataclass(frozen=True)
class Factor:
    """One uncertain modelling choice.

    Give exactly one of ``options`` (a discrete choice) and ``bounds`` (a continuous one).

    Parameters
    ----------
    name : str
        Key of the factor's value in each configuration, and its name in the tables.
    options : tuple, optional
        The possible values of a discrete choice (any objects, e.g. dicts of spec changes), each
        equally likely.  A list is accepted and stored as a tuple.
    bounds : tuple of (float, float), optional
        ``(low, high)`` of a continuous factor, ``low < high``, both finite; the factor is uniform
        on that range.  ``(0, 1)`` gives ``u`` itself.

    Raises
    ------
    ValueError
        One line naming the factor: no name, neither or both of ``options`` and ``bounds``, empty
        options, bounds not two finite numbers with ``low < high``.

    Examples
    --------
    >>> Factor("outliers", options=("winsorise", "none")).value(0.7)
    'none'
    >>> Factor("noise", bounds=(-0.2, 0.2)).value(0.5)
    0.0
    """

    name: str
    options: tuple | None = None
    bounds: tuple[float, float] | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"factor {self.name!r}: the name must be a non-empty string")
        who = f"factor '{self.name}'"
        if self.options is None and self.bounds is None:
            raise ValueError(f"{who}: give options (a discrete choice) or bounds (a continuous range); it has neither")
        if self.options is not None and self.bounds is not None:
            raise ValueError(f"{who}: give options (a discrete choice) or bounds (a continuous range), not both")
        if self.options is not None:
            if isinstance(self.options, (str, bytes, Mapping)) or not isinstance(self.options, Sequence):
                raise ValueError(f"{who}: options must be a tuple or list of values, "
                                 f"not {type(self.options).__name__}")
            if len(self.options) == 0:
                raise ValueError(f"{who}: options is empty; a discrete choice needs at least one option")
            object.__setattr__(self, "options", tuple(self.options))
        else:
            try:
                low, high = (float(b) for b in self.bounds)
            except (TypeError, ValueError):
                raise ValueError(f"{who}: bounds must be two numbers (low, high), got {self.bounds!r}") from None
            if not (math.isfinite(low) and math.isfinite(high)):
                raise ValueError(f"{who}: bounds must be finite, got ({low:g}, {high:g})")
            if not low < high:
                raise ValueError(f"{who}: bounds must have low < high, got ({low:g}, {high:g})")
            object.__setattr__(self, "bounds", (low, high))

    @property
    def discrete(self) -> bool:
        """Whether the factor is a discrete choice (has ``options``)."""
        return self.options is not None

    def index(self, u: float) -> int:
        """Position of the option that ``u`` selects: ``floor(u * L)``, and ``L - 1`` for ``u = 1``.

        Parameters
        ----------
        u : float
            A number in [0, 1].

        Returns
        -------
        int
        """
        if not self.discrete:
            raise ValueError(f"factor '{self.name}': a continuous factor has no option index")
        u = self._check_u(u)
        n = len(self.options)
        return min(int(math.floor(u * n)), n - 1)

    def value(self, u: float) -> Any:
        """The factor's value for ``u`` in [0, 1].

        Parameters
        ----------
        u : float
            A number in [0, 1] (one coordinate of a sample point).

        Returns
        -------
        object
            Discrete: ``options[floor(u * L)]`` for ``L`` options (``u = 1`` gives the last
            option).  Continuous: ``low + u * (high - low)`` as a float.

        Raises
        ------
        ValueError
            ``u`` is not a number in [0, 1].
        """
        if self.discrete:
            return self.options[self.index(u)]
        u = self._check_u(u)
        low, high = self.bounds
        return float(low + u * (high - low))

    def _check_u(self, u) -> float:
        try:
            u = float(u)
        except (TypeError, ValueError):
            raise ValueError(f"factor '{self.name}': u must be a number in [0, 1], got {u!r}") from None
        if not 0.0 <= u <= 1.0:
            raise ValueError(f"factor '{self.name}': u must be in [0, 1], got {u!r}")
        return u


def _check_factors(factors) -> list[Factor]:
    factors = list(factors)
    if not factors:
        raise ValueError("no factors: give at least one Factor")
    for f in factors:
        if not isinstance(f, Factor):
            raise ValueError(f"factors must be Factor objects, got {type(f).__name__}: {f!r}")
    names = [f.name for f in factors]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"factor names must be unique; repeated: {', '.join(repr(n) for n in duplicated)}")
    return factors


def _check_n_base(n_base) -> int:
    if isinstance(n_base, bool) or not isinstance(n_base, (int, np.integer)):
        raise ValueError(f"n_base must be an integer power of 2 (e.g. 64, 128, 1024), got {n_base!r}")
    n = int(n_base)
    if n < 2 or n & (n - 1):
        if n < 2:
            hint = "use at least 2"
        else:
            below = 1 << (n.bit_length() - 1)
            hint = f"use {below} or {below * 2}"
        raise ValueError(f"n_base must be a power of 2 (at least 2) for the Sobol' sequence, got {n}: {hint}")
    return n


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _problem(factors: list[Factor]) -> dict:
    k = len(factors)
    return {"num_vars": k, "names": [f.name for f in factors], "bounds": [[0.0, 1.0]] * k}


# --------------------------------------------------------------------------- sampling
def sample(factors: Sequence[Factor], n_base: int, seed: int = 0) -> tuple[np.ndarray, list[dict]]:
    """Saltelli's design on [0, 1]^k and the configuration of every run.

    Parameters
    ----------
    factors : sequence of Factor
        The uncertain choices (``k`` of them, unique names).
    n_base : int
        Number of base samples ``N``: a power of 2 (at least 2), as the Sobol' sequence needs; any
        other number is refused (ValueError naming the nearest powers of 2).
    seed : int, default 0
        Seed of the scrambling of the Sobol' sequence: the same seed gives the same design.

    Returns
    -------
    U : numpy.ndarray, shape (N * (k + 2), k)
        The sample points, in SALib's order (what :func:`analyse` expects).
    configs : list of dict
        One per row of ``U``: factor name -> :meth:`Factor.value` of its coordinate.

    Raises
    ------
    ValueError
        No factors, duplicated names, ``n_base`` not a power of 2, negative seed.
    """
    from SALib.sample import sobol as sobol_sample

    factors = _check_factors(factors)
    n = _check_n_base(n_base)
    seed = _check_seed(seed)
    U = sobol_sample.sample(_problem(factors), n, calc_second_order=False, scramble=True, seed=seed)
    U = np.clip(np.asarray(U, dtype=float), 0.0, 1.0)
    configs = [{f.name: f.value(u) for f, u in zip(factors, row)} for row in U]
    return U, configs


# --------------------------------------------------------------------------- analysis
def _as_outputs(Y, outputs, runs: int) -> tuple[np.ndarray, list[str]]:
    if isinstance(outputs, str):
        outputs = [outputs]
    outputs = [str(o) for o in outputs]
    if not outputs:
        raise ValueError("outputs is empty: name every column of Y")
    duplicated = sorted({o for o in outputs if outputs.count(o) > 1})
    if duplicated:
        raise ValueError(f"output names must be unique; repeated: {', '.join(repr(o) for o in duplicated)}")
    try:
        Y = np.asarray(Y, dtype=float)
    except (TypeError, ValueError) as e:
        raise ValueError(f"Y must be numbers, shape (runs, n_outputs): {e}") from None
    if Y.ndim == 1 and len(outputs) == 1:
        Y = Y.reshape(-1, 1)
    if Y.ndim != 2 or Y.shape != (runs, len(outputs)):
        raise ValueError(f"Y has shape {Y.shape}, expected ({runs}, {len(outputs)}): one row per run "
                         f"(n_base * (k + 2) = {runs}) and one column per output ({len(outputs)})")
    for j, name in enumerate(outputs):
        bad = ~np.isfinite(Y[:, j])
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise ValueError(f"output '{name}' is not a finite number in {int(bad.sum())} of {runs} runs "
                             f"(first: run {first}); sensitivity needs a value for every run")
    return Y, outputs


def _bootstrap_seed(seed: int) -> int:
    # SALib's analyze() reads a seed of 0 as "no seed" (global NumPy state), which would make the
    # intervals change from one call to the next: it gets seed + 1.
    return seed + 1


def analyse(factors: Sequence[Factor], Y, n_base: int, *, outputs: Sequence[str], num_resamples: int = 1000,
            conf_level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """First-order and total-effect Sobol indices of every output, with bootstrap intervals.

    Parameters
    ----------
    factors : sequence of Factor
        The factors given to :func:`sample`, in the same order.
    Y : array-like, shape (N * (k + 2), n_outputs)
        The model's outputs, one row per configuration of :func:`sample` (same order), one column
        per output.  A 1-D array is accepted for a single output.  Every value must be finite.
    n_base : int
        The ``n_base`` given to :func:`sample`.
    outputs : sequence of str
        Names of the columns of ``Y``.
    num_resamples : int, default 1000
        Bootstrap resamples for the intervals.
    conf_level : float, default 0.95
        Confidence level of the intervals, in (0, 1).
    seed : int, default 0
        Seed of the bootstrap: the same seed gives the same table.  (SALib takes a seed of 0 for
        "no seed", so SALib receives ``seed + 1``.)

    Returns
    -------
    pandas.DataFrame
        One row per (output, factor), outputs then factors in the order given, with columns
        ``output``, ``factor``, ``S1``, ``S1_low``, ``S1_high``, ``ST``, ``ST_low``, ``ST_high``
        and ``note``.  The intervals are the estimate minus and plus SALib's half-width
        (``z * sd`` of the bootstrap estimates), not clipped to [0, 1].  ``note`` is empty unless
        the estimate needs a warning: an output that does not vary gets indices and intervals of 0
        and a note saying so.  ``attrs`` holds ``n_base``, ``runs``, ``conf_level``,
        ``num_resamples`` and ``seed``.

    Raises
    ------
    ValueError
        Bad factors or ``n_base``, ``Y`` of the wrong shape or with missing / infinite values,
        ``conf_level`` outside (0, 1), fewer than 2 resamples.
    """
    from SALib.analyze import sobol as sobol_analyze

    factors = _check_factors(factors)
    n = _check_n_base(n_base)
    seed = _check_seed(seed)
    k = len(factors)
    runs = n * (k + 2)
    Y, outputs = _as_outputs(Y, outputs, runs)
    if isinstance(num_resamples, bool) or not isinstance(num_resamples, (int, np.integer)) or num_resamples < 2:
        raise ValueError(f"num_resamples must be an integer >= 2, got {num_resamples!r}")
    if not isinstance(conf_level, (int, float, np.floating)) or not 0.0 < float(conf_level) < 1.0:
        raise ValueError(f"conf_level must be a number between 0 and 1 (e.g. 0.95), got {conf_level!r}")
    conf_level = float(conf_level)
    problem = _problem(factors)

    rows = []
    for j, name in enumerate(outputs):
        y = np.ascontiguousarray(Y[:, j])
        scale = float(np.max(np.abs(y)))
        if float(np.ptp(y)) <= _CONSTANT_RTOL * scale:
            note = _NOTE_CONSTANT.format(runs=runs)
            rows += [[name, f.name, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, note] for f in factors]
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with np.errstate(divide="ignore", invalid="ignore"):
                Si = sobol_analyze.analyze(problem, y, calc_second_order=False, num_resamples=int(num_resamples),
                                           conf_level=conf_level, seed=_bootstrap_seed(seed))
        constant_base = any("constant" in str(w.message).lower() for w in caught)
        for w in caught:
            if "constant" not in str(w.message).lower():
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        for i, f in enumerate(factors):
            s1, s1c, st, stc = (float(Si[key][i]) for key in ("S1", "S1_conf", "ST", "ST_conf"))
            note = _NOTE_AB_ONLY if constant_base else ""
            if not all(math.isfinite(v) for v in (s1, s1c, st, stc)):
                note = _NOTE_UNDEFINED
            rows.append([name, f.name, s1, s1 - s1c, s1 + s1c, st, st - stc, st + stc, note])

    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs.update(n_base=n, runs=runs, conf_level=conf_level, num_resamples=int(num_resamples), seed=seed)
    return table


def sobol(factors: Sequence[Factor], model: Callable[[list[dict]], Any], n_base: int = 64, *,
          outputs: Sequence[str], seed: int = 0, num_resamples: int = 1000,
          conf_level: float = 0.95) -> pd.DataFrame:
    """Sample the factors, run the model on every configuration, and analyse.

    Parameters
    ----------
    factors : sequence of Factor
        The uncertain choices.
    model : callable
        Called once, with the list of all ``N * (k + 2)`` configurations (dicts factor name ->
        value, in :func:`sample`'s order); returns an array-like of shape (runs, n_outputs), one
        row per configuration in the same order (1-D for a single output).
    n_base : int, default 64
        Base samples, a power of 2 (see :func:`sample`).
    outputs : sequence of str
        Names of the model's outputs (columns).
    seed : int, default 0
        Seed of both the design and the bootstrap.
    num_resamples, conf_level
        As for :func:`analyse`.

    Returns
    -------
    pandas.DataFrame
        The table of :func:`analyse`.
    """
    factors = _check_factors(factors)
    _, configs = sample(factors, n_base, seed)
    Y = model(configs)
    if Y is None:
        raise ValueError("the model returned None: it must return an array of shape (runs, n_outputs)")
    return analyse(factors, Y, n_base, outputs=outputs, num_resamples=num_resamples, conf_level=conf_level,
                   seed=seed)


# --------------------------------------------------------------------------- presentation
_S1_COLOUR = "#9ecae1"
_ST_COLOUR = "#1f5f99"
_STYLE = {
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 10,
    "legend.fontsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "text.parse_math": False,
}


def for_readers(table: pd.DataFrame, tolerance: float = NOISE_TOLERANCE) -> pd.DataFrame:
    """The indices as readers see them: shares of variance, consistent with each other.

    :func:`analyse` keeps SALib's raw estimates (they can fall outside [0, 1], and a first-order
    index can exceed the total effect it is part of).  Here, per output:

    - the only factor of an output (one factor varies): ``S1 = ST = 1`` and intervals of 1 (all of
      the variance is its own by definition), ``note`` :data:`NOTE_ONLY_FACTOR`;
    - otherwise every estimate and interval is clipped to [0, 1], the first-order index is at most
      the total effect (``S1 = min(S1, ST)``, its interval at most the total effect's upper end), and
      each interval contains its estimate;
    - ``noisy`` (a new column, the same for every factor of the output) is True when a raw estimate
      of the output lies outside [0, 1], or a first-order index exceeds its total effect, by more
      than ``tolerance``: too few base samples (see :func:`noise_sentence`).  Never for the only
      factor of an output, nor for an output that does not vary.

    Parameters
    ----------
    table : pandas.DataFrame
        A table from :func:`analyse` or :func:`sobol` (a table already for readers is returned as it is).
    tolerance : float, default :data:`NOISE_TOLERANCE`

    Returns
    -------
    pandas.DataFrame
        A copy with the same columns plus ``noisy``, and the same ``attrs``.
    """
    missing = [c for c in ("output", "factor", "S1", "ST") if c not in table.columns]
    if missing:
        raise ValueError(f"not a sensitivity table (no column {', '.join(missing)}): use analyse() or sobol()")
    if table.attrs.get("for_readers"):
        return table
    out = table.copy()
    for key in ("S1", "ST"):
        for col in (key, f"{key}_low", f"{key}_high"):
            if col not in out.columns:
                out[col] = out[key]
            out[col] = out[col].astype(float)
    if "note" not in out.columns:
        out["note"] = ""
    out["noisy"] = False
    raw = out.copy()
    for idx in out.groupby("output", sort=False).groups.values():
        rows = raw.loc[idx]
        constant = _constant_note(rows)
        if len(rows) == 1 and not constant:
            out.loc[idx, ["S1", "S1_low", "S1_high", "ST", "ST_low", "ST_high"]] = 1.0
            out.loc[idx, "note"] = NOTE_ONLY_FACTOR
            continue
        values = rows[["S1", "ST", "S1_low", "S1_high", "ST_low", "ST_high"]].to_numpy(dtype=float)
        est = rows[["S1", "ST"]].to_numpy(dtype=float)
        outside = bool(((est < -tolerance) | (est > 1 + tolerance)).any())
        above = bool((rows["S1"].to_numpy(dtype=float) > rows["ST"].to_numpy(dtype=float) + tolerance).any())
        out.loc[idx, "noisy"] = (outside or above) and not constant and bool(np.isfinite(values).all())
        clipped = {col: np.clip(rows[col].to_numpy(dtype=float), 0.0, 1.0)
                   for col in ("S1", "S1_low", "S1_high", "ST", "ST_low", "ST_high")}
        st = clipped["ST"]
        s1 = np.minimum(clipped["S1"], st)
        s1_high = np.maximum(np.minimum(clipped["S1_high"], clipped["ST_high"]), s1)
        out.loc[idx, "ST"], out.loc[idx, "ST_low"], out.loc[idx, "ST_high"] = (
            st, np.minimum(clipped["ST_low"], st), np.maximum(clipped["ST_high"], st))
        out.loc[idx, "S1"], out.loc[idx, "S1_low"], out.loc[idx, "S1_high"] = (
            s1, np.minimum(clipped["S1_low"], s1), s1_high)
    out["noisy"] = out["noisy"].astype(bool)
    out.attrs.update(table.attrs)
    out.attrs["for_readers"] = True
    return out


def _suggested_n_base(n_base) -> int:
    """More base samples: four times as many, and at least 256."""
    try:
        n = int(n_base)
    except (TypeError, ValueError):
        n = 0
    return max(256, 4 * n)


def noise_sentence(table: pd.DataFrame, outputs: Sequence[str] | str | None = None, *,
                   more: str | None = None) -> str | None:
    """What to tell readers when the estimates of some outputs are noisy (None when none is).

    Parameters
    ----------
    table : pandas.DataFrame
        A table from :func:`analyse` or :func:`sobol` (or :func:`for_readers`).
    outputs : str or sequence of str, optional
        The outputs the reader sees; by default every output of the table.
    more : str, optional
        How to ask for more base samples, with ``{n}`` for the number suggested (four times the
        table's ``n_base``, at least 256): e.g. ``"stability uncertainty --sobol {n}"``; by default
        the table's ``attrs["more"]``, else ``"n_base={n}"``.

    Returns
    -------
    str or None
        E.g. "These estimates are noisy: with 16 base samples a first-order index came out above the
        total effect it is part of, or an index outside 0–1, which a share of the variance cannot be;
        they are shown within 0–1. More base samples give better estimates (stability uncertainty
        --sobol 256)."
    """
    shown = for_readers(table)
    if outputs is not None:
        outputs = [outputs] if isinstance(outputs, str) else list(outputs)
        shown = shown[shown["output"].isin(outputs)]
    if not len(shown) or not shown["noisy"].any():
        return None
    n = table.attrs.get("n_base")
    how = (more or table.attrs.get("more") or "n_base={n}").format(n=_suggested_n_base(n))
    samples = f"with {int(n)} base samples, " if n else ""
    return (f"These Sobol estimates are noisy: {samples}a first-order index came out above the total effect it is "
            "part of, or an index outside 0\u20131 (a share of the variance cannot be), and they are shown within "
            f"0\u20131 with the first order at most the total effect. More base samples give better estimates "
            f"({how}).")


def readable(table: pd.DataFrame, outputs: Sequence[str] | str | None = None, *,
             labels: Mapping[str, str] | None = None, output_labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The indices of some outputs as a table for readers (:func:`for_readers`), in words.

    Columns ``Output``, ``Choice``, ``Total effect``, ``Total effect, interval``, ``First order``,
    ``First order, interval`` (2 decimals, within [0, 1]) and ``Note`` (the only choice that varies,
    an output that does not vary, noisy estimates); by output then total effect.
    """
    shown = for_readers(table)
    if outputs is not None:
        outputs = [outputs] if isinstance(outputs, str) else list(outputs)
        shown = shown[shown["output"].isin(outputs)]
    order = {o: i for i, o in enumerate(dict.fromkeys(shown["output"]))}
    shown = shown.assign(_o=shown["output"].map(order)).sort_values(["_o", "ST"], ascending=[True, False],
                                                                     kind="stable")

    def span(low, high):
        return [f"{a:.2f}\u2013{b:.2f}" for a, b in zip(low, high)]

    notes = []
    for note, noisy in zip(shown["note"].astype(str), shown["noisy"]):
        if note == NOTE_ONLY_FACTOR:
            notes.append("the only choice that varies: 1 by definition")
        elif note.startswith("output does not vary"):
            notes.append("does not vary: no choice changes it")
        elif noisy:
            notes.append("noisy estimates: more base samples needed")
        else:
            notes.append(note)
    return pd.DataFrame({
        "Output": [(output_labels or {}).get(o, o) for o in shown["output"].astype(str)],
        "Choice": [_label(f, labels) for f in shown["factor"].astype(str)],
        "Total effect": shown["ST"].round(2).to_numpy(),
        "Total effect, interval": span(shown["ST_low"], shown["ST_high"]),
        "First order": shown["S1"].round(2).to_numpy(),
        "First order, interval": span(shown["S1_low"], shown["S1_high"]),
        "Note": notes,
    })


def _rows(table: pd.DataFrame, output: str) -> pd.DataFrame:
    table = for_readers(table)
    rows = table[table["output"] == output]
    if rows.empty:
        known = ", ".join(repr(o) for o in dict.fromkeys(table["output"]))
        raise ValueError(f"no output {output!r} in the table; it has {known}")
    order = np.argsort(-rows["ST"].to_numpy(dtype=float), kind="stable")
    return rows.iloc[order]


def _interval(rows: pd.DataFrame, key: str) -> tuple[np.ndarray, np.ndarray]:
    est = rows[key].to_numpy(dtype=float)
    low = rows[f"{key}_low"].to_numpy(dtype=float) if f"{key}_low" in rows else est
    high = rows[f"{key}_high"].to_numpy(dtype=float) if f"{key}_high" in rows else est
    return low, high


def _label(name: str, labels: Mapping[str, str] | None) -> str:
    if labels and name in labels:
        return str(labels[name])
    return str(name).replace("_", " ")


def _constant_note(rows: pd.DataFrame) -> bool:
    return "note" in rows and rows["note"].astype(str).str.startswith("output does not vary").all()


def chart(table: pd.DataFrame, output: str, ax=None, *, labels: Mapping[str, str] | None = None,
          output_label: str | None = None):
    """Horizontal bars of the first-order and total-effect indices of one output, per factor.

    Factors are sorted by total effect (largest on top); each factor has a total-effect bar (dark)
    and a first-order bar (light), with whiskers for their intervals and the estimates written at
    their end.  Bars, whiskers and numbers are those of :func:`for_readers` (within [0, 1], first order
    at most the total effect, 1 for the only factor that varies), as in :func:`summary_sentence`; the
    axis label says when the estimates are noisy, and when one factor alone varies.  The figure is
    built without pyplot (no backend is chosen or changed, nothing is shown): save it with
    ``savefig`` or display it in a notebook.

    Parameters
    ----------
    table : pandas.DataFrame
        A table from :func:`analyse` or :func:`sobol`.
    output : str
        The output to draw.
    ax : matplotlib.axes.Axes, optional
        Axes to draw in (title and legend then go on the axes); by default a new figure sized to the
        number of factors and the length of their labels.
    labels : mapping, optional
        Readable names of the factors (factor name -> label); by default the name with
        underscores as spaces.
    output_label : str, optional
        Readable name of the output for the title; by default the output's name.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        ``output`` is not in the table.
    """
    import matplotlib

    rows = _rows(table, output)
    names = rows["factor"].astype(str).tolist()
    k = len(names)
    shown = [textwrap.fill(_label(n, labels), 30) for n in names]
    what = output_label if output_label is not None else str(output)
    level = table.attrs.get("conf_level")
    interval = f"{level * 100:g} % interval" if level else "interval"
    title = f"What drives {what}: sensitivity to the modelling choices"
    xlabel = f"share of the variance of {what} (Sobol index); whiskers: {interval}"
    if k == 1 and (rows["note"].astype(str) == NOTE_ONLY_FACTOR).all():
        xlabel += "; the only choice that varies explains all of it (1 by definition)"
    elif rows["noisy"].any():
        n_base = table.attrs.get("n_base")
        xlabel += (f"; noisy estimates ({int(n_base)} base samples)" if n_base else "; noisy estimates") + \
            ", shown within 0\u20131: more base samples give better ones"

    with matplotlib.rc_context(_STYLE):
        own = ax is None
        if own:
            from matplotlib.figure import Figure

            char = 0.62 / 72  # width (inches) of a character per point of font size, generous
            width = 7.5
            title = textwrap.fill(title, int((width - 0.3) / (12 * char)))
            label_width = max(len(line) for s in shown for line in s.split("\n")) * 10 * char
            left, right = min(label_width + 0.3, width / 2), 0.3
            xlabel = textwrap.fill(xlabel, int((width - left - right) / (10 * char)))
            top = 0.25 + 0.24 * (title.count("\n") + 1) + 0.4   # title, then the legend row
            bottom = 0.45 + 0.18 * (xlabel.count("\n") + 1)
            rows_height = sum(max(0.55, 0.2 * (s.count("\n") + 1) + 0.2) for s in shown)
            height = top + bottom + rows_height
            fig = Figure(figsize=(width, height), dpi=100)
            ax = fig.add_axes([left / width, bottom / height, 1 - (left + right) / width, rows_height / height])
        else:
            fig = ax.figure
        y = np.arange(k, dtype=float)
        h = 0.38
        st = rows["ST"].to_numpy(dtype=float)
        s1 = rows["S1"].to_numpy(dtype=float)
        st_low, st_high = _interval(rows, "ST")
        s1_low, s1_high = _interval(rows, "S1")
        ax.barh(y - h / 2, st, height=h, color=_ST_COLOUR, label="total effect (alone and with interactions)")
        ax.barh(y + h / 2, s1, height=h, color=_S1_COLOUR, label="first order (alone)")
        for pos, est, low, high in ((y - h / 2, st, st_low, st_high), (y + h / 2, s1, s1_low, s1_high)):
            err = np.vstack([np.maximum(est - low, 0), np.maximum(high - est, 0)])
            ax.errorbar(est, pos, xerr=err, fmt="none", ecolor="#333333", elinewidth=1, capsize=3)
            for p, e, hi in zip(pos, est, high):
                ax.text(max(e, hi, 0) + 0.015, p, _num(e), va="center", ha="left", fontsize=8,
                        color="#333333")
        ax.set_yticks(y, shown)
        ax.set_ylim(k - 0.5, -0.5)
        ax.tick_params(axis="y", length=0)
        left_x = min(0.0, float(np.nanmin(np.r_[st_low, s1_low, 0.0]))) - 0.02
        right_x = max(1.0, float(np.nanmax(np.r_[st_high, s1_high, 0.0]))) + 0.1
        ax.set_xlim(left_x, right_x)
        ax.axvline(0, color="#555555", linewidth=0.8)
        ax.grid(axis="x", color="#e6e6e6", linewidth=0.8)
        ax.set_axisbelow(True)
        ax.set_xlabel(xlabel)
        if _constant_note(rows):
            ax.text(0.5, 0.5, f"{what} is the same in every run:\nno choice changes it", transform=ax.transAxes,
                    ha="center", va="center", fontsize=10, color="#555555",
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.9})
        if own:
            w, hgt = fig.get_size_inches()
            fig.text(0.15 / w, 1 - 0.2 / hgt, title, ha="left", va="top", fontsize=12, fontweight="bold")
            handles, texts = ax.get_legend_handles_labels()
            fig.legend(handles, texts, loc="upper left", ncols=2, frameon=False,
                       bbox_to_anchor=(0.1 / w, 1 - (0.2 + 0.24 * (title.count("\n") + 1)) / hgt))
        else:
            ax.spines[["top", "right"]].set_visible(False)
            ax_width = ax.get_position().width * fig.get_size_inches()[0]
            ax.set_title(textwrap.fill(f"What drives {what}", max(int(ax_width / (12 * 0.62 / 72)), 20)), loc="left")
            ax.set_xlabel(textwrap.fill(xlabel, max(int(ax_width / (10 * 0.62 / 72)), 20)))  # within the axes
            ax.legend(loc="lower right", frameon=False)
    return fig


def _num(x: float) -> str:
    """An index for a sentence or a bar label, 2 decimals (of :func:`for_readers`: already within [0, 1])."""
    return f"{float(x):.2f}"


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def summary_sentence(table: pd.DataFrame, output: str, *, labels: Mapping[str, str] | None = None,
                     output_label: str | None = None, threshold: float = 0.05, more: str | None = None) -> str:
    """One plain-English sentence saying which choices matter for an output.

    The choice with the largest total effect comes first, with its interval; the others whose
    total effect reaches ``threshold`` follow with their estimate; those below it "change little".
    Indices are those of :func:`for_readers`, written with 2 decimals: within [0, 1].  When only one
    choice varies, the sentence says that it accounts for all of the variation (1 by definition);
    when the estimates are noisy, :func:`noise_sentence` follows (``more``: how to ask for more base
    samples, as there).

    Parameters
    ----------
    table : pandas.DataFrame
        A table from :func:`analyse` or :func:`sobol`.
    output : str
        The output to describe.
    labels : mapping, optional
        Readable names of the factors, without article (factor name -> e.g. ``"normalisation
        method"``); by default the name with underscores as spaces.  The sentence adds "the".
    output_label : str, optional
        How to name the output (e.g. ``"the ranking"``); by default its name in quotes.
    threshold : float, default 0.05
        Total effect below which a choice "changes little".
    more : str, optional
        How to ask for more base samples, for :func:`noise_sentence` (``"stability uncertainty --sobol {n}"``).

    Returns
    -------
    str

    Examples
    --------
    Which choices matter most for the ranking: the normalisation method (total effect 0.62, 95 %
    interval 0.55–0.70), then the weights (0.21); the outlier treatment changes little (< 0.05).
    """
    rows = _rows(table, output)
    what = output_label if output_label is not None else f"'{output}'"
    if _constant_note(rows):
        return f"No choice changes {what}: it is the same in every run."
    if len(rows) == 1 and (rows["note"].astype(str) == NOTE_ONLY_FACTOR).all():
        name = _label(str(rows["factor"].iloc[0]), labels)
        return (f"Only one modelling choice varies, the {name}: it accounts for all of the variation of {what} "
                "that the choices cause (total effect 1 by definition).")
    names = [f"the {_label(n, labels)}" for n in rows["factor"].astype(str)]
    st = rows["ST"].to_numpy(dtype=float)
    low, high = _interval(rows, "ST")
    limit = f"{threshold:.2f}"
    big = [i for i in range(len(names)) if st[i] >= threshold]
    small = [names[i] for i in range(len(names)) if st[i] < threshold]
    if not big:
        noise = noise_sentence(table, output, more=more)
        return f"No single choice matters much for {what}: every total effect is below {limit}." + (
            f" {noise}" if noise else "")
    level = table.attrs.get("conf_level")
    interval = f"{level * 100:g} % interval" if level else "interval"
    first = big[0]
    lead = "Which choices matter most" if len(big) > 1 else "Which choice matters most"
    text = (f"{lead} for {what}: {names[first]} (total effect {_num(st[first])}, "
            f"{interval} {_num(low[first])}\u2013{_num(high[first])})")
    if len(big) > 1:
        text += ", then " + _join([f"{names[i]} ({_num(st[i])})" for i in big[1:]])
    if small:
        verb = "changes" if len(small) == 1 else "change"
        text += f"; {_join(small)} {verb} little (< {limit})"
    noise = noise_sentence(table, output, more=more)
    return text + "." + (f" {noise}" if noise else "")
