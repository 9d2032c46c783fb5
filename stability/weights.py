"""Weighting schemes: where the weights of an index come from.

Every scheme derives the weights of the children of some aggregates (indicators within their
pillar, pillars within the index) from plain tables: a DataFrame ``X`` of the children's values
(rows = locations and rounds, columns = children) and ``groups``, the parent of each child.  It
returns a :class:`Derivation`: the weights, the tables that show how they were obtained, plain
sentences for a report's method note, and warnings.  Nothing is learned behind the scenes: the
options are arguments of the call and everything the scheme learned is in the result.

The schemes are registered in :data:`WEIGHTINGS` (one function each, with a one-line summary and
the options it reads), like the other method families (:mod:`stability.registry`):

====================  =====================================================================
``equal``             every child of a group the same weight
``expert``            weights given by the user, checked and normalised per group
``budget``            budget allocation: points given by one or several experts, averaged
``pca``               first principal component per group (COINr ``get_PCA``)
``factor``            factor analysis with varimax rotation (OECD/JRC Handbook 2008, TAI example)
``outcome``           regression of an outcome on the children (logit, fractional logit, OLS)
``optimised``         weights whose importances match targets (COINr ``get_opt_weights``)
====================  =====================================================================

Conventions
-----------
* Weights are non-negative and sum to 1 within each group, except ``pca`` with ``rule="coinr"``
  (COINr's raw loadings, see :func:`_pca`).  The aggregation re-normalises weights among the
  children present, so only the ratios within a group matter.
* Multivariate schemes (``pca``, ``factor``, ``outcome``) use the listwise-complete rows of a group
  (rows with a missing value in any of its children are left out; ``tables["rows_used"]`` says
  which) and refuse fewer than :data:`MIN_ROWS` such rows, constant children and singular
  correlation matrices, with an error naming the group, the children and the remedy.
* A weight is never NaN: every problem is an exception (:class:`WeightingError`) or a warning in
  :attr:`Derivation.warnings`, also issued as a :class:`WeightingWarning`.

Examples
--------
>>> import stability as st                                                    # doctest: +SKIP
>>> from stability.weights import derive, derive_for
>>> result = st.compute("data/raw/mali_illustrative", st.load_spec("data/specs/mali.yaml"))
>>> d = derive_for(result, "pca")                    # indicators within pillars, normalised stage
>>> d.weights, d.tables["summary"], d.notes
>>> result.recompute(d.spec_changes())               # the index with these weights
"""

from __future__ import annotations

import warnings as _warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import InputError, MethodError
from .registry import Registry

__all__ = [
    "WEIGHTINGS",
    "MIN_ROWS",
    "NEGLIGIBLE_LOADING",
    "Derivation",
    "WeightingError",
    "WeightingDataError",
    "WeightingWarning",
    "derive",
    "derive_for",
    "derive_levels",
    "level_children",
    "write_derivation",
    "OUTPUT_FILES",
]

#: Weighting schemes.  ``func(X, groups, **options)`` returns a :class:`Derivation`; ``X`` is a
#: DataFrame (rows = units, columns = children), ``groups`` a Series child -> parent in the column
#: order of ``X``; ``params`` are the options the scheme reads; ``data_driven`` says whether the
#: weights depend on the values of ``X``; ``plain`` says how the weights come about, in words for
#: reports (``{outcome}`` is the outcome column).
WEIGHTINGS = Registry("weighting", "weights.method", defaults={"data_driven": True})

#: Fewest listwise-complete rows a multivariate scheme (pca, factor, outcome, optimised) accepts.
MIN_ROWS = 5

#: Reciprocal condition number of a correlation matrix below which it counts as singular.
SINGULAR_RCOND = 1e-10

#: A child whose correlation with its component or factor lies in ``[-NEGLIGIBLE_LOADING, 0)`` barely
#: relates to it: kept (with a weight near 0) rather than refused as moving against it.
NEGLIGIBLE_LOADING = 0.1


# --------------------------------------------------------------------------- errors
class WeightingError(InputError):
    """Weights cannot be derived with these arguments (unknown scheme or option, bad weights).

    The message names the group and children concerned and the remedy.

    Attributes
    ----------
    method : str or None
        The weighting scheme.
    group : str or None
        The group (parent aggregate) concerned.
    children : tuple of str
        The children (indicators, pillars) concerned.
    """

    #: ``column`` is the spec field (e.g. ``weights.2``).
    column_word = "field"

    def __init__(self, message: str, *, method: str | None = None, group: str | None = None,
                 children=(), column: str | None = None):
        self.method = method
        self.group = group
        self.children = tuple(children)
        super().__init__(message, column=column)

    def at(self, column: str) -> "WeightingError":
        """The same error, said of the spec option ``column`` (e.g. ``weights.2``)."""
        return type(self)(self.message, method=self.method, group=self.group, children=self.children,
                          column=column)


class WeightingDataError(WeightingError, MethodError):
    """The data do not support the scheme: too few complete rows, a constant child, a singular
    correlation matrix, an outcome with one class, perfect separation, negative loadings."""


class WeightingWarning(UserWarning):
    """A weighting result to be read with care (also listed in :attr:`Derivation.warnings`)."""


# --------------------------------------------------------------------------- result
@dataclass
class Derivation:
    """Weights derived by a scheme, and how.

    Attributes
    ----------
    method : str
        The scheme (a name of :data:`WEIGHTINGS`).
    weights : pandas.Series
        Child id -> weight within its group (non-negative and summing to 1 per group unless the
        scheme documents otherwise), in the column order of ``X``.
    groups : pandas.Series
        Child id -> group (parent) id.
    tables : dict of str -> DataFrame
        The derivation's details (loadings, variance shares, rows used, coefficients with
        confidence intervals, convergence trace, ...), named per scheme.
    notes : list of str
        Plain-English sentences saying how the weights were obtained, for a method note.
    warnings : list of str
        What to read with care (each also issued as a :class:`WeightingWarning`).
    options : dict
        The options of the call, with defaults filled in (tables and series summarised).
    level : int or None
        With :func:`derive_for`: the level of the groups (2 = the weights of indicators within
        pillars, 3 = of pillars within the next level, ...), else None.
    """

    method: str
    weights: pd.Series
    groups: pd.Series
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    level: int | None = None

    def to_frame(self) -> pd.DataFrame:
        """The weights as a table: ``child``, ``group``, ``weight``."""
        return pd.DataFrame({"child": self.weights.index, "group": self.groups.reindex(self.weights.index).to_numpy(),
                             "weight": self.weights.to_numpy()})

    def spec_changes(self) -> dict[str, float]:
        """The weights as option changes of the spec (see :meth:`stability.spec.IndexSpec.with_changes`).

        ``indicators.<id>.weight`` for level 2, ``aggregates.<id>.weight`` above; pass them to
        :meth:`stability.pipeline.Result.recompute`.

        Raises
        ------
        WeightingError
            Without a level (the derivation did not come from :func:`derive_for`), or with negative
            weights (the spec accepts weights >= 0 only).
        """
        if self.level is None:
            raise WeightingError("these weights were not derived from a result (use derive_for), so their "
                                 "spec options are unknown", method=self.method)
        neg = self.weights[self.weights < 0]
        if len(neg):
            raise WeightingError(f"negative weights ({_list(neg.index)}) cannot be written to a spec, which "
                                 "accepts weights >= 0: derive them with negative='refuse' or another rule",
                                 method=self.method, children=neg.index)
        section = "indicators" if self.level == 2 else "aggregates"
        return {f"{section}.{k}.weight": float(v) for k, v in self.weights.items()}


# --------------------------------------------------------------------------- API
def derive(method: str, X: pd.DataFrame, groups, **options) -> Derivation:
    """Derive the weights of the columns of ``X`` within their groups.

    Parameters
    ----------
    method : str
        A scheme of :data:`WEIGHTINGS`: ``equal``, ``expert``, ``budget``, ``pca``, ``factor``,
        ``outcome``, ``optimised``.
    X : pandas.DataFrame
        Values of the children: rows = units (locations and rounds), columns = child ids.  Normally
        normalised indicators (``result.stage("normalised")``) or aggregate scores
        (``result.stage("aggregated")``).  Missing values are NaN.
    groups : mapping or pandas.Series
        Child id -> group (parent aggregate) id, for every column of ``X`` and nothing else.
    **options
        The scheme's options (``WEIGHTINGS[method].params``); see each scheme's documentation.

    Returns
    -------
    Derivation

    Raises
    ------
    WeightingError
        Unknown scheme or option, ``groups`` not matching the columns, bad user weights.
    WeightingDataError
        The data do not support the scheme (the message names the group, the children and the
        remedy).
    """
    if method not in WEIGHTINGS:
        raise WeightingError(WEIGHTINGS.unknown(method), method=str(method))
    scheme = WEIGHTINGS[method]
    unknown = sorted(set(options) - set(scheme.params))
    if unknown:
        raise WeightingError(f"{method} weighting has no option {_list(unknown)} (its options: "
                             f"{', '.join(scheme.params) or 'none'})", method=method)
    X, groups = _check_inputs(method, X, groups)
    d = scheme.func(X, groups, **options)
    _check_output(d, groups)
    for message in d.warnings:
        _warnings.warn(message, WeightingWarning, stacklevel=2)
    return d


def derive_for(result, method: str, level: int = 2, *, stage: str | None = None, rounds=None,
               **options) -> Derivation:
    """Derive weights for the hierarchy of a computed index.

    Uses the public API of :class:`stability.pipeline.Result` only (``spec``, ``stage()``,
    ``units``).

    Parameters
    ----------
    result : stability.pipeline.Result
    method : str
        A scheme of :data:`WEIGHTINGS`.
    level : int, default 2
        Level of the groups whose children are weighted, numbered as in the spec: 2 = indicators
        within pillars, 3 = pillars within the next level (the index in the Mali spec), ...
    stage : str, optional
        Stage to take the children's values from: default ``normalised`` for level 2 and
        ``aggregated`` above (e.g. ``raw`` for COINr's ``dset = "Raw"``).
    rounds : value or list, optional
        Only the rows of these rounds (e.g. the reference round, so that later rounds are scored
        with weights fixed in advance); default every round, pooled.
    **options
        The scheme's options.  ``outcome`` and ``cluster`` may name a column of ``result.units``
        (e.g. ``"admin2_pcode"``) or be Series aligned on the result's (location, round) index.
        For ``optimised`` with ``against="index"`` the hierarchy above the groups (with the spec's
        weights and aggregation methods) is filled in.

    Returns
    -------
    Derivation
        With :attr:`Derivation.level` set, so that :meth:`Derivation.spec_changes` works.

    See Also
    --------
    derive_levels : the same inside the pipeline, for the spec's ``weights`` section.
    """
    spec = result.spec
    level = _check_level(spec, level, method)
    _check_options(method, options)
    children, _ = level_children(spec, level)
    stage = stage or ("normalised" if level == 2 else "aggregated")
    table = result.stage(stage)
    absent = [c for c in children if c not in table.columns]
    if absent:
        raise WeightingError(f"stage '{stage}' has no column for {_list(absent)}: level {level} weights need "
                             f"the {'indicators' if level == 2 else 'level ' + str(level - 1) + ' scores'}",
                             method=method, children=absent)
    return _derive_level(spec, level, method, table[children], result.units, rounds, stage, options)


def level_children(spec, level: int) -> tuple[list[str], pd.Series]:
    """The children weighted at ``level`` (2 = indicators, 3 = level-2 aggregates...) and their parents."""
    nodes = spec.indicators if level == 2 else spec.aggregates_at(level - 1)
    children = [n.id for n in nodes]
    return children, pd.Series({n.id: n.parent for n in nodes}, dtype=object).reindex(children)


def derive_levels(spec, values: pd.DataFrame, units: pd.DataFrame, groups: np.ndarray | None = None):
    """Derive the weights the spec's ``weights`` section asks for, level by level (the pipeline's step).

    Parameters
    ----------
    spec : IndexSpec
    values : DataFrame
        Normalised indicators (rows = locations and rounds).
    units : DataFrame
        The units' descriptive columns on the same index (outcome and cluster columns).
    groups : ndarray, optional
        Round of each row, for aggregations that compare within rounds.

    Returns
    -------
    spec : IndexSpec
        ``spec`` with the derived weights written in (what the aggregation uses).
    derivations : dict of int -> Derivation
        Per derived level.

    Raises
    ------
    WeightingDataError
        The data do not support a level's scheme, or it gives negative weights (an index with
        negative weights would leave the scale of its normalisation).
    """
    from .aggregate import aggregate

    derived: dict[int, Derivation] = {}
    current = spec
    for key, scheme in spec.weights.items():
        level = int(key)
        children, _ = level_children(current, level)
        if level == 2:
            X = values[children]
        else:
            scores, ids = aggregate(values.to_numpy(dtype=float), list(values.columns), current, groups=groups)
            X = pd.DataFrame(dict(zip(ids, scores)), index=values.index)[children]
        stage = "normalised" if level == 2 else "aggregated"
        try:
            d = _derive_level(current, level, scheme.method, X, units, scheme.rounds, stage, scheme.options())
        except WeightingError as exc:
            raise exc.at(f"weights.{level}") from None
        negative = d.weights[d.weights < 0]
        if len(negative):
            raise WeightingDataError(
                f"the {scheme.method} weighting gives negative weights to {_list(negative.index)}, and an index "
                "with negative weights leaves the scale of its normalisation; use rule 'squared', optimiser "
                "'least_squares' or another method", method=scheme.method, children=negative.index,
                column=f"weights.{level}")
        current = current.with_changes(d.spec_changes())
        derived[level] = d
    return current, derived


def _check_level(spec, level, method: str) -> int:
    n_levels = len(spec.levels)
    if not 2 <= int(level) <= n_levels:
        raise WeightingError(f"level {level} has no children to weight: levels of this spec run from 2 "
                             f"(indicators within {spec.levels[1].name if n_levels > 1 else 'aggregates'}) to "
                             f"{n_levels}", method=method)
    return int(level)


def _check_options(method: str, options: dict) -> None:
    """Refuse a number the spec's ``weights`` section refuses (``min_rows`` below 2, ``alpha`` outside (0, 1),
    ...), naming the option; the schemes check the other options themselves, in their own words."""
    from typing import Annotated

    from pydantic import TypeAdapter, ValidationError

    from .spec import Weighting

    for name, value in options.items():
        field = Weighting.model_fields.get(name)
        if field is None or not field.metadata or isinstance(value, (pd.Series, pd.DataFrame, np.ndarray)):
            continue  # only the bounded numbers
        try:
            TypeAdapter(Annotated[field.annotation, field]).validate_python(value)
        except ValidationError as exc:
            raise WeightingError(f"option '{name}': {exc.errors()[0]['msg']}", method=method) from None


def _derive_level(spec, level: int, method: str, X: pd.DataFrame, units: pd.DataFrame, rounds, stage: str,
                  options: dict) -> Derivation:
    """Weights of ``level``'s children from their values ``X``: rows of ``rounds``, options completed."""
    options = dict(options)
    wanted = None
    if rounds is not None:
        col = spec.columns.round
        if not col or col not in X.index.names:
            raise WeightingError("option 'rounds': these data have no rounds", method=method)
        wanted = list(rounds) if isinstance(rounds, (list, tuple, set)) else [rounds]
        keep = X.index.get_level_values(col).isin(wanted)
        if not keep.any():
            present = ", ".join(map(str, dict.fromkeys(X.index.get_level_values(col))))
            raise WeightingError(f"option 'rounds': no row of round {', '.join(map(str, wanted))} (rounds: "
                                 f"{present})", method=method)
        X = X[keep]
    _, groups = level_children(spec, level)
    for key in ("outcome", "cluster"):
        if options.get(key) is not None:
            options[key] = _align(units, X, options[key], key)
    if method == "expert" and options.get("weights") is None:
        options["weights"] = {n.id: n.weight for n in (spec.indicators if level == 2 else spec.aggregates_at(level - 1))}
    if method == "optimised":
        options.setdefault("aggregation", spec.levels[level - 1].method)
        if options.get("against") == "index" and options.get("hierarchy") is None:
            options["hierarchy"] = [
                {"parents": {a.id: a.parent for a in spec.aggregates_at(lv - 1)},
                 "weights": {a.id: a.weight for a in spec.aggregates_at(lv - 1)},
                 "method": spec.levels[lv - 1].method, "p": spec.levels[lv - 1].p}
                for lv in range(level + 1, len(spec.levels) + 1)]
    d = derive(method, X, groups, **options)
    d.level = level
    n_levels = len(spec.levels)
    kids = "indicators" if level == 2 else spec.levels[level - 2].name.lower() + "s"
    within = f"{'the' if level == n_levels else 'each'} {spec.levels[level - 1].name.lower()}"
    scope = "" if wanted is None else f" of round {', '.join(map(str, wanted))}"
    d.notes.insert(0, f"Weights of the {kids} within {within} ({method}), from the '{stage}' stage of {len(X)} "
                      f"rows (locations and rounds){scope}.")
    d.options["rounds"] = rounds
    return d


def _align(units: pd.DataFrame, X: pd.DataFrame, value, key: str) -> pd.Series:
    """An outcome or cluster option as a Series on ``X``'s index: a column of ``units``, or given."""
    if isinstance(value, str):
        if value in units.columns:
            return units[value].reindex(X.index)
        raise WeightingError(f"option '{key}': no column '{value}' among the locations' columns (columns: "
                             f"{', '.join(map(str, units.columns))})", method="outcome")
    if isinstance(value, pd.DataFrame):
        if value.shape[1] != 1:
            raise WeightingError(f"option '{key}': give one column (a Series), not {value.shape[1]}",
                                 method="outcome")
        value = value.iloc[:, 0]
    if not isinstance(value, pd.Series):
        value = pd.Series(np.asarray(value), index=X.index)
    return value


# --------------------------------------------------------------------------- checks
def _list(items, limit: int = 8) -> str:
    items = [str(i) for i in items]
    text = ", ".join(f"'{i}'" for i in items[:limit])
    return text + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _check_inputs(method: str, X, groups) -> tuple[pd.DataFrame, pd.Series]:
    if not isinstance(X, pd.DataFrame):
        raise WeightingError(f"X must be a pandas DataFrame (rows = units, columns = children), not "
                             f"{type(X).__name__}", method=method)
    if X.shape[1] == 0:
        raise WeightingError("X has no columns: nothing to weight", method=method)
    if not X.columns.is_unique:
        dup = X.columns[X.columns.duplicated()].unique()
        raise WeightingError(f"X has duplicated columns {_list(dup)}", method=method, children=dup)
    if isinstance(groups, Mapping):
        groups = pd.Series(dict(groups), dtype=object)
    if not isinstance(groups, pd.Series):
        raise WeightingError("groups must map each column of X to its group (a dict or a Series)", method=method)
    missing = [c for c in X.columns if c not in groups.index]
    if missing:
        raise WeightingError(f"no group for {_list(missing)}: groups must map every column of X to its parent",
                             method=method, children=missing)
    extra = [c for c in groups.index if c not in X.columns]
    if extra:
        raise WeightingError(f"groups names {_list(extra)}, which X has no column for: pass the columns or "
                             "drop them from groups", method=method, children=extra)
    groups = groups.reindex(X.columns)
    if groups.isna().any():
        bad = groups.index[groups.isna()]
        raise WeightingError(f"{_list(bad)} have no group", method=method, children=bad)
    try:
        values = X.to_numpy(dtype=float)
    except (TypeError, ValueError):
        bad = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
        raise WeightingError(f"X must be numeric; {_list(bad)} are not", method=method, children=bad) from None
    inf = np.isinf(values).any(axis=0)
    if inf.any():
        bad = X.columns[inf]
        raise WeightingDataError(f"{_list(bad)} have infinite values: treat or drop them first", method=method,
                                 children=bad)
    X = pd.DataFrame(values, index=X.index, columns=X.columns)
    return X, groups.astype(object)


def _check_output(d: Derivation, groups: pd.Series) -> None:
    w = d.weights
    if list(w.index) != list(groups.index):
        raise AssertionError(f"{d.method} returned weights for {list(w.index)}, expected {list(groups.index)}")
    if not np.isfinite(w.to_numpy(dtype=float)).all():  # a scheme must raise rather than return this
        bad = w.index[~np.isfinite(w.to_numpy(dtype=float))]
        raise WeightingDataError(f"{d.method} weighting gave no finite weight for {_list(bad)}", method=d.method,
                                 children=bad)


def _group_items(groups: pd.Series) -> list[tuple[Any, list[str]]]:
    """(group, children) in order of first appearance."""
    return [(g, list(groups.index[groups == g])) for g in dict.fromkeys(groups)]


def _normalise(w: pd.Series, groups: pd.Series) -> pd.Series:
    return w / w.groupby(groups).transform("sum")


def _where(group) -> str:
    """How a message names the rows' scope: ``group 'safety': `` (or nothing for all children at once)."""
    return "" if group is None else f"group '{group}': "


def _complete(method: str, X: pd.DataFrame, group, cols: list[str], min_rows: int = MIN_ROWS,
              rows: np.ndarray | None = None, what: str = "") -> tuple[pd.DataFrame, np.ndarray]:
    """The listwise-complete rows of a group's children; refuses too few rows and constant children.

    ``rows`` restricts the rows further (e.g. to those with an outcome); ``what`` names that condition.
    """
    sub = X[cols]
    mask = sub.notna().all(axis=1).to_numpy()
    if rows is not None:
        mask = mask & rows
    data = sub[mask]
    n = int(mask.sum())
    if n < min_rows:
        raise WeightingDataError(
            f"{_where(group)}{method} weighting needs at least {min_rows} rows with a value for every one of "
            f"{_list(cols)}{what}, but only {n} of {len(sub)} are complete; impute the missing values first "
            f"(impute.method) or choose another weighting (e.g. equal)", method=method, group=group, children=cols)
    spread = data.max() - data.min()
    const = [c for c in cols if not spread[c] > 0]
    if const:
        one = len(const) == 1
        raise WeightingDataError(
            f"{_where(group)}{_list(const)} {'is' if one else 'are'} constant over the {n} complete rows, so {method} "
            f"weighting is undefined; drop {'it' if one else 'them'} or weight "
            f"{'the group' if group is not None else 'the children'} otherwise (e.g. equal)", method=method,
            group=group, children=const)
    return data, mask


def _check_singular(method: str, group, cols: list[str], Z: np.ndarray) -> None:
    """Refuse a (nearly) singular correlation matrix, naming the children in the dependency."""
    if len(cols) < 2:
        return
    corr = np.corrcoef(Z, rowvar=False)
    vals, vecs = np.linalg.eigh(corr)
    if vals[0] > SINGULAR_RCOND * vals[-1]:
        return
    v = np.abs(vecs[:, 0])
    involved = [c for c, x in zip(cols, v) if x > 0.1 * v.max()]
    raise WeightingDataError(
        f"{_where(group)}the correlation matrix of {'its' if group is not None else 'the'} children is singular "
        f"(smallest eigenvalue {max(vals[0], 0.0):.2g}): {_list(involved)} are (nearly) linear combinations of each "
        f"other; drop one of them or combine them before {method} weighting", method=method, group=group,
        children=involved)


def _rows_used(X: pd.DataFrame, masks: dict) -> pd.DataFrame:
    return pd.DataFrame({g: m for g, m in masks.items()}, index=X.index)


def _mapping(method: str, option: str, value, children: list[str]) -> pd.Series:
    """User weights/points: a mapping or Series over exactly ``children``, finite and >= 0."""
    if isinstance(value, pd.DataFrame):
        raise AssertionError  # handled by the caller
    if isinstance(value, Mapping):
        value = pd.Series(dict(value), dtype=object)
    if not isinstance(value, pd.Series):
        raise WeightingError(f"option '{option}' must map every child to a number (a dict or a Series)",
                             method=method)
    missing = [c for c in children if c not in value.index]
    if missing:
        raise WeightingError(f"option '{option}' gives no value for {_list(missing)}: name every child",
                             method=method, children=missing)
    extra = [c for c in value.index if c not in children]
    if extra:
        raise WeightingError(f"option '{option}' names {_list(extra)}, which are not children being weighted "
                             "(a typo?)", method=method, children=extra)
    try:
        out = pd.to_numeric(value.reindex(children), errors="raise").astype(float)
    except (TypeError, ValueError):
        raise WeightingError(f"option '{option}' must give numbers", method=method) from None
    bad = out.index[~np.isfinite(out.to_numpy())]
    if len(bad):
        raise WeightingError(f"option '{option}': {_list(bad)} have no finite value", method=method, children=bad)
    neg = out.index[out.to_numpy() < 0]
    if len(neg):
        raise WeightingError(f"option '{option}': {_list(neg)} {'is' if len(neg) == 1 else 'are'} negative; "
                             "weights must be >= 0", method=method, children=neg)
    return out


def _not_all_zero(method: str, option: str, w: pd.Series, groups: pd.Series) -> None:
    for g, cols in _group_items(groups):
        if not w[cols].sum() > 0:
            raise WeightingError(f"option '{option}': every child of group '{g}' ({_list(cols)}) has weight 0; "
                                 "give at least one a positive weight", method=method, group=g, children=cols)


# --------------------------------------------------------------------------- equal / expert / budget
@WEIGHTINGS.register("equal", plain="equal weights", summary="`1 / n` for each of the `n` children of a group", data_driven=False)
def _equal(X: pd.DataFrame, groups: pd.Series) -> Derivation:
    w = _normalise(pd.Series(1.0, index=groups.index), groups)
    sizes = groups.value_counts(sort=False)
    return Derivation("equal", w, groups, tables={"groups": sizes.rename("children").rename_axis("group").reset_index()},
                      notes=["Every child of a group has the same weight (1 / number of children): "
                             + "; ".join(f"{g}: {n} children" for g, n in sizes.items()) + "."],
                      options={})


@WEIGHTINGS.register("expert", plain="weights set by experts (written in the specification)", summary="weights given per child (`weights`), checked (>= 0, every child named, "
                     "not all 0 in a group) and divided by their group's sum", params=("weights",), data_driven=False)
def _expert(X: pd.DataFrame, groups: pd.Series, weights=None) -> Derivation:
    """Weights given by the user: ``weights`` maps every child to a number >= 0."""
    if weights is None:
        raise WeightingError("expert weighting needs 'weights': a number >= 0 for every child", method="expert")
    given = _mapping("expert", "weights", weights, list(groups.index))
    _not_all_zero("expert", "weights", given, groups)
    w = _normalise(given, groups)
    table = pd.DataFrame({"child": given.index, "group": groups.to_numpy(), "given": given.to_numpy(),
                          "weight": w.to_numpy()})
    notes = ["Weights given by experts, divided by the sum of their group so that each group's weights add up to 1."]
    zero = given.index[given.to_numpy() == 0]
    if len(zero):
        notes.append(f"{_list(zero)} were given weight 0 and do not count in the index.")
    return Derivation("expert", w, groups, tables={"weights": table}, notes=notes, options={"weights": given.to_dict()})


@WEIGHTINGS.register("budget", plain="a budget allocation (experts shared points among them)", summary="budget allocation: `points` per child from one expert (a mapping) or several "
                     "(a DataFrame, one row per expert), averaged, divided by the group's sum; `total` checks each "
                     "expert's points per group", params=("points", "total"), data_driven=False)
def _budget(X: pd.DataFrame, groups: pd.Series, points=None, total: float | None = None) -> Derivation:
    """Budget allocation (OECD/JRC Handbook 2008, 6.1.2): experts share a budget of points.

    Parameters
    ----------
    points : mapping, Series or DataFrame
        Points per child; a DataFrame has one row per expert and one column per child (each
        expert's allocation), averaged over the experts.
    total : float, optional
        The budget of each group (e.g. 100): every expert's points in a group must add up to it.
    """
    children = list(groups.index)
    if points is None:
        raise WeightingError("budget weighting needs 'points': the points given to every child (a dict, or a "
                             "DataFrame with one row per expert)", method="budget")
    if isinstance(points, pd.DataFrame):
        experts = pd.DataFrame({e: _mapping("budget", "points", points.loc[e], children) for e in points.index}).T
        experts.index.name = "expert"
    else:
        experts = _mapping("budget", "points", points, children).to_frame().T
        experts.index = pd.Index(["expert 1"], name="expert")
    if total is not None:
        sums = experts.T.groupby(groups).sum().T
        off = [(e, g, s) for e in sums.index for g, s in sums.loc[e].items() if not np.isclose(s, total)]
        if off:
            e, g, s = off[0]
            raise WeightingError(f"option 'points': {e} gives {s:g} points to group '{g}', not the budget of "
                                 f"{total:g} (total); {len(off)} allocation(s) off budget", method="budget", group=g)
    mean = experts.mean(axis=0)
    _not_all_zero("budget", "points", mean, groups)
    w = _normalise(mean, groups)
    table = pd.DataFrame({"child": children, "group": groups.to_numpy(), "mean_points": mean.to_numpy(),
                          "min_points": experts.min().to_numpy(), "max_points": experts.max().to_numpy(),
                          "sd_points": experts.std(ddof=1).to_numpy() if len(experts) > 1 else np.nan,
                          "weight": w.to_numpy()})
    n = len(experts)
    notes = [f"Budget allocation: {n} expert{'s' * (n > 1)} shared "
             + (f"a budget of {total:g} points per group" if total is not None else "points")
             + " among the children; the points" + (" were averaged over the experts and" if n > 1 else "")
             + " were divided by their group's sum."]
    return Derivation("budget", w, groups, tables={"points": table, "allocations": experts},
                      notes=notes, options={"points": experts.to_dict(orient="index"), "total": total})


# --------------------------------------------------------------------------- PCA
def _standardise(data: pd.DataFrame) -> np.ndarray:
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit_transform(data.to_numpy(dtype=float))


def _pc1(method: str, group, cols: list[str], Z: np.ndarray):
    """Eigen-decomposition of the correlation matrix via sklearn's PCA: (vectors, eigenvalues, shares)."""
    from sklearn.decomposition import PCA

    pca = PCA(svd_solver="full").fit(Z)
    shares = pca.explained_variance_ratio_
    eig = shares * len(cols)  # eigenvalues of the correlation matrix (they sum to the number of children)
    return pca.components_, eig, shares


@WEIGHTINGS.register("pca", plain="principal component analysis (each weighs by how strongly it moves with the others of its group)", summary="first principal component of each group's standardised complete rows (COINr "
                     "`get_PCA`): `rule: squared` (default) weights = squared PC1 loadings (sum 1); `rule: coinr` = "
                     "the raw loadings, as COINr; negative loadings refused unless `negative: allow`",
                     params=("rule", "negative", "min_rows"))
def _pca(X: pd.DataFrame, groups: pd.Series, rule: str = "squared", negative: str = "refuse",
         min_rows: int = MIN_ROWS) -> Derivation:
    """Principal-component weights, COINr 1.1.14 ``get_PCA`` compatible.

    Per group: the listwise-complete rows (rows with a missing value in any child dropped) are
    standardised and the first principal component (PC1) of their correlation matrix is found
    (``stats::prcomp(center = TRUE, scale = TRUE)`` in COINr, sklearn's PCA here).  COINr's "PCA
    weights" are the entries of PC1's unit eigenvector, the *loadings* (``rotation[, 1]``).

    Sign convention: a component's sign is arbitrary, so each group's PC1 is flipped so that its
    loadings sum to a positive number.

    Parameters
    ----------
    rule : {"squared", "coinr"}
        ``squared`` (default): weight = squared loading.  The loadings are a unit vector, so the
        squared loadings of a group sum to 1: each child's share of PC1 (the OECD/JRC Handbook's
        "squared loadings scaled to unity").  ``coinr``: weight = the loading itself, as COINr
        writes it to ``.$Meta$Weights``; these do **not** sum to 1 per group (their squares do),
        which the aggregation's re-normalisation makes irrelevant for weighted means.
    negative : {"refuse", "allow"}
        A child with a negative loading (after the sign convention) moves against the group's
        main component.  ``refuse`` (default) raises :class:`WeightingDataError` naming it;
        ``allow`` keeps it (a negative weight under ``rule="coinr"``, as COINr does) with a warning.
        A child that barely relates to PC1 (correlation in ``[-0.1, 0)``,
        :data:`NEGLIGIBLE_LOADING`) is kept either way, with a note (a warning under ``coinr``).
    min_rows : int
        Fewest complete rows accepted (default :data:`MIN_ROWS`).

    Tables
    ------
    ``loadings``: group, child, loading (PC1 eigenvector entry), correlation (loading x
    sqrt(eigenvalue): the child's correlation with PC1), weight.  ``summary``: group, n_rows,
    n_dropped, eigenvalue_pc1, var_share_pc1, eigenvalue_pc2.  ``rows_used``: units x groups.
    """
    if rule not in ("squared", "coinr"):
        raise WeightingError(f"pca option 'rule' must be 'squared' or 'coinr', not {rule!r}", method="pca")
    if negative not in ("refuse", "allow"):
        raise WeightingError(f"pca option 'negative' must be 'refuse' or 'allow', not {negative!r}", method="pca")
    weights = pd.Series(np.nan, index=groups.index)
    rows, summary, masks, warns, flipped, slight_notes = [], [], {}, [], [], []
    for g, cols in _group_items(groups):
        data, mask = _complete("pca", X, g, cols, min_rows)
        masks[g] = mask
        Z = _standardise(data)
        vecs, eig, shares = _pc1("pca", g, cols, Z)
        if len(cols) > 1 and eig[1] >= eig[0] * (1 - 1e-6):
            raise WeightingDataError(
                f"group '{g}': the first two principal components explain the same variance ({eig[0]:.6g}), so PC1 "
                f"and its loadings are not unique; pca weighting is undefined for {_list(cols)} (use equal or "
                "expert weights)", method="pca", group=g, children=cols)
        load = vecs[0].copy()
        if load.sum() < 0:
            load = -load
            flipped.append(g)
        corr = load * np.sqrt(eig[0])  # each child's correlation with PC1
        neg = [c for c, r in zip(cols, corr) if r < -NEGLIGIBLE_LOADING]
        if neg:
            detail = ", ".join(f"'{c}' {v:.3f}" for c, v, r in zip(cols, load, corr) if r < -NEGLIGIBLE_LOADING)
            if negative == "refuse":
                raise WeightingDataError(
                    f"group '{g}': {detail} load negatively on the first principal component (the others "
                    "positively), so they would pull the group's score the wrong way; check their direction, drop "
                    "them from the group, or set negative to 'allow' to keep COINr's signed loadings",
                    method="pca", group=g, children=neg)
            warns.append(f"group '{g}': {detail} load negatively on PC1; kept because negative='allow'"
                         + (" (negative weights, as COINr)" if rule == "coinr" else " (their squared loading is "
                            "a positive weight although they move against the component)"))
        slight = [c for c, v, r in zip(cols, load, corr) if -NEGLIGIBLE_LOADING <= r and v < 0]
        if slight:
            text = (f"group '{g}': {_list(slight)} barely correlate with PC1 (|r| < {NEGLIGIBLE_LOADING:g}) and load "
                    "slightly negatively")
            if rule == "coinr":
                warns.append(text + ": small negative weights, as COINr")
            else:
                slight_notes.append(text + ": kept, with weights near 0.")
        w = load ** 2 if rule == "squared" else load
        weights[cols] = w
        for c, v, wc in zip(cols, load, w):
            rows.append({"group": g, "child": c, "loading": v, "correlation": v * np.sqrt(eig[0]), "weight": wc})
        summary.append({"group": g, "n_rows": int(mask.sum()), "n_dropped": int((~mask).sum()),
                        "eigenvalue_pc1": eig[0], "var_share_pc1": shares[0],
                        "eigenvalue_pc2": eig[1] if len(cols) > 1 else np.nan})
    summ = pd.DataFrame(summary)
    notes = [
        "Principal component analysis per group (as COINr's get_PCA): the rows with a value for every child of the "
        "group were standardised and the first principal component (PC1) of their correlation matrix found; each "
        "group's component was given the sign that makes its loadings sum to a positive number.",
        ("Each child's weight is its squared PC1 loading, its share of the component (the squared loadings of a "
         "group add up to 1)." if rule == "squared" else
         "Each child's weight is its PC1 loading, as COINr uses them (not re-scaled: the aggregation divides by the "
         "sum of the weights)."),
        "PC1 explains " + "; ".join(f"{r.group}: {r.var_share_pc1:.0%} of the variance ({r.n_rows} rows"
                                    + (f", {r.n_dropped} with missing values left out" if r.n_dropped else "") + ")"
                                    for r in summ.itertuples()) + ".",
    ]
    notes += slight_notes
    low = summ[summ["var_share_pc1"] < 0.5]
    if len(low):
        notes.append(f"PC1 explains less than half of the variance of {_list(low['group'])}: one component "
                     "summarises {} only partly.".format("it" if len(low) == 1 else "them"))
    return Derivation("pca", weights, groups, tables={"loadings": pd.DataFrame(rows), "summary": summ,
                                                      "rows_used": _rows_used(X, masks)},
                      notes=notes, warnings=warns, options={"rule": rule, "negative": negative, "min_rows": min_rows})


# --------------------------------------------------------------------------- factor analysis
def _varimax(L: np.ndarray, kaiser: bool) -> np.ndarray:
    """Varimax rotation of loadings ``L`` (statsmodels), with Kaiser row normalisation if asked."""
    from statsmodels.multivariate.factor_rotation import rotate_factors

    if L.shape[1] < 2:
        return L.copy()
    h = np.sqrt((L ** 2).sum(axis=1)) if kaiser else np.ones(L.shape[0])
    h = np.where(h > 0, h, 1.0)
    rotated, _ = rotate_factors(L / h[:, None], "varimax")
    return rotated * h[:, None]


@WEIGHTINGS.register("factor", plain="factor analysis, as in the OECD/JRC handbook (each weighs by its share of its group's common factors)", summary="factor analysis (OECD/JRC Handbook 2008): factors with eigenvalue > 1 "
                     "explaining > 10 % of the variance, varimax rotation; each child weighs its squared loading on "
                     "its factor (scaled to unity per factor) times that factor's share of the explained variance",
                     params=("min_eigenvalue", "min_variance", "extraction", "kaiser", "negative", "min_rows"))
def _factor(X: pd.DataFrame, groups: pd.Series, min_eigenvalue: float = 1.0, min_variance: float = 0.10,
            extraction: str = "pca", kaiser: bool = True, negative: str = "refuse",
            min_rows: int = MIN_ROWS) -> Derivation:
    """Factor-analysis weights, as in the OECD/JRC Handbook (2008, section 6.1, TAI example).

    Per group, on the standardised listwise-complete rows:

    1. factors are kept when the eigenvalue of the correlation matrix is above ``min_eigenvalue``
       (1) **and** it explains more than ``min_variance`` (10 %) of the variance (at least one);
    2. their loadings (principal-component extraction, the Handbook's: eigenvector x
       sqrt(eigenvalue); or maximum-likelihood with ``extraction="ml"``, sklearn's
       ``FactorAnalysis``) are rotated with varimax (statsmodels ``rotate_factors``, with Kaiser's
       row normalisation unless ``kaiser=False``; no rotation for a single factor); each factor's
       sign makes its loadings sum to a positive number;
    3. each child is assigned to the factor on which its squared rotated loading is largest;
    4. a child's weight is its squared loading on that factor divided by the factor's explained
       variance (the sum of its squared loadings over all children: "scaled to unity"), times the
       factor's share of the explained variance of the kept factors;
    5. the weights are divided by their group's sum.

    A child whose loading on its factor is below ``-0.1`` (:data:`NEGLIGIBLE_LOADING`) moves
    against it: refused unless ``negative="allow"`` (then kept, with a warning); a loading in
    ``[-0.1, 0)`` is negligible and kept, with a note.  A singular correlation matrix is refused.

    Tables
    ------
    ``eigenvalues``: group, component, eigenvalue, var_share, cumulative, kept.  ``loadings``:
    group, child, the rotated loadings ``factor_1`` ..., factor (assigned), squared_scaled, weight.
    ``factors``: group, factor, explained (variance after rotation), share, children.
    ``rows_used``: units x groups.
    """
    if extraction not in ("pca", "ml"):
        raise WeightingError(f"factor option 'extraction' must be 'pca' or 'ml', not {extraction!r}", method="factor")
    if negative not in ("refuse", "allow"):
        raise WeightingError(f"factor option 'negative' must be 'refuse' or 'allow', not {negative!r}",
                             method="factor")
    weights = pd.Series(np.nan, index=groups.index)
    eig_rows, load_rows, fac_rows, masks, warns, notes_g, slight_notes = [], [], [], {}, [], [], []
    for g, cols in _group_items(groups):
        data, mask = _complete("factor", X, g, cols, min_rows)
        masks[g] = mask
        if len(cols) == 1:
            weights[cols] = 1.0
            notes_g.append(f"{g}: one child, weight 1")
            continue
        Z = _standardise(data)
        _check_singular("factor", g, cols, Z)
        vecs, eig, shares = _pc1("factor", g, cols, Z)
        keep = (eig > min_eigenvalue) & (shares > min_variance)
        for k, (e, s) in enumerate(zip(eig, shares)):
            eig_rows.append({"group": g, "component": k + 1, "eigenvalue": e, "var_share": s,
                             "cumulative": shares[:k + 1].sum(), "kept": bool(keep[k])})
        if not keep.any():
            raise WeightingDataError(
                f"group '{g}': no factor has an eigenvalue above {min_eigenvalue:g} and explains more than "
                f"{min_variance:.0%} of the variance (the largest: {eig[0]:.3g}, {shares[0]:.0%}); the children "
                f"{_list(cols)} share too little to be weighted by factor analysis: lower min_variance / "
                "min_eigenvalue or use equal weights", method="factor", group=g, children=cols)
        m = int(keep.sum())
        idx = np.flatnonzero(keep)
        if extraction == "pca":
            L = vecs[idx].T * np.sqrt(eig[idx])[None, :]
        else:
            from sklearn.decomposition import FactorAnalysis

            L = FactorAnalysis(n_components=m, random_state=0).fit(Z).components_.T
        L = _varimax(L, kaiser)
        L = L * np.where(L.sum(axis=0) < 0, -1.0, 1.0)[None, :]
        sq = L ** 2
        explained = sq.sum(axis=0)
        share = explained / explained.sum()
        assigned = sq.argmax(axis=1)
        scaled = sq[np.arange(len(cols)), assigned] / explained[assigned]
        raw = share[assigned] * scaled
        own = L[np.arange(len(cols)), assigned]  # each child's loading (correlation) on its factor
        neg = [(c, v) for c, v in zip(cols, own) if v < -NEGLIGIBLE_LOADING]
        if neg:
            detail = ", ".join(f"'{c}' {v:.3f}" for c, v in neg)
            if negative == "refuse":
                raise WeightingDataError(
                    f"group '{g}': {detail} load negatively on the factor they are assigned to, so they move against "
                    "the other children of that factor; check their direction, drop them, or set negative to 'allow'",
                    method="factor", group=g, children=[c for c, _ in neg])
            warns.append(f"group '{g}': {detail} load negatively on their factor; kept because negative='allow'")
        slight = [c for c, v in zip(cols, own) if -NEGLIGIBLE_LOADING <= v < 0]
        if slight:
            slight_notes.append(f"group '{g}': {_list(slight)} barely load on their factor (|loading| < "
                                f"{NEGLIGIBLE_LOADING:g}, slightly negative): kept, with weights near 0.")
        w = raw / raw.sum()
        weights[cols] = w
        for i, c in enumerate(cols):
            row = {"group": g, "child": c}
            row.update({f"factor_{k + 1}": L[i, k] for k in range(m)})
            row.update({"factor": int(assigned[i]) + 1, "squared_scaled": scaled[i], "weight": w[i]})
            load_rows.append(row)
        for k in range(m):
            members = [c for i, c in enumerate(cols) if assigned[i] == k]
            fac_rows.append({"group": g, "factor": k + 1, "explained": explained[k], "share": share[k],
                             "children": ", ".join(members)})
            if not members:
                warns.append(f"group '{g}': no child is assigned to factor {k + 1}, so its share of the variance "
                             f"({share[k]:.0%}) is spread over the other factors by the final normalisation")
        notes_g.append(f"{g}: {m} factor{'s' * (m > 1)} ({shares[idx].sum():.0%} of the variance, {int(mask.sum())} "
                       "rows)")
    notes = [
        "Factor analysis per group (OECD/JRC Handbook 2008, TAI example): on the standardised rows with a value for "
        "every child, the factors with an eigenvalue above "
        f"{min_eigenvalue:g} that explain more than {min_variance:.0%} of the variance were kept "
        f"({'principal-component' if extraction == 'pca' else 'maximum-likelihood'} extraction) and rotated with "
        f"varimax{' (Kaiser normalisation)' if kaiser else ''}.",
        "Each child was assigned to the factor on which its squared loading is largest; its weight is that squared "
        "loading divided by the factor's explained variance, times the factor's share of the explained variance, "
        "re-scaled so that each group's weights add up to 1.",
        "Factors kept: " + "; ".join(notes_g) + ".",
    ]
    notes += slight_notes
    return Derivation("factor", weights, groups,
                      tables={"eigenvalues": pd.DataFrame(eig_rows), "loadings": pd.DataFrame(load_rows),
                              "factors": pd.DataFrame(fac_rows), "rows_used": _rows_used(X, masks)},
                      notes=notes, warnings=warns,
                      options={"min_eigenvalue": min_eigenvalue, "min_variance": min_variance,
                               "extraction": extraction, "kaiser": kaiser, "negative": negative,
                               "min_rows": min_rows})


# --------------------------------------------------------------------------- outcome regression
def _separating(Xd: pd.DataFrame, y: np.ndarray) -> list[str]:
    """Children that on their own separate the two classes of ``y`` (completely or quasi-completely)."""
    out = []
    for c in Xd.columns:
        x = Xd[c].to_numpy()
        a, b = x[y == 0], x[y == 1]
        if a.max() <= b.min() or b.max() <= a.min():
            out.append(c)
    return out


@WEIGHTINGS.register("outcome", plain="their measured effect on {outcome}, by a regression across locations", summary="regression of an `outcome` per unit on the children (logit for 0/1, "
                     "fractional logit for shares, else OLS; `cluster`-robust errors): weight = coefficient if "
                     "positive and significant (p < `alpha`), else 0, divided by the group's sum",
                     params=("outcome", "cluster", "model", "alpha", "scale", "fallback", "min_rows"))
def _outcome(X: pd.DataFrame, groups: pd.Series, outcome=None, cluster=None, model: str = "auto",
             alpha: float = 0.05, scale: str = "raw", fallback: str = "error",
             min_rows: int = MIN_ROWS) -> Derivation:
    """Weights from the children's effects on an outcome (statsmodels).

    One regression of ``outcome`` on all the children (and a constant), over the rows where the
    outcome, every child (and the cluster) has a value:

    * ``model="auto"``: a logit (``Logit``) when the outcome only takes the values 0 and 1, a
      fractional logit (``GLM`` binomial family, logit link; Papke & Wooldridge) when it lies in
      [0, 1], else ordinary least squares;
    * standard errors: cluster-robust by ``cluster`` when given (e.g. the cercle), else
      heteroskedasticity-robust (HC1; the default MLE errors for a logit).

    Rule: a child's weight is its coefficient when it is positive and significant (p < ``alpha``,
    default 0.05), else 0 (listed in the notes); each group's weights are divided by their sum.
    On normalised children (a common 0-100 scale) the coefficients are the effects of one point of
    each child, comparable across children: the composite ``sum(w x)`` is then the best linear
    predictor of the outcome's index.  ``scale="sd"`` multiplies each coefficient by the child's
    standard deviation (standardised coefficients), for children on different scales.

    A group with no positive significant effect is an error naming it (``fallback="error"``,
    default) or gets equal weights with a warning (``fallback="equal"``).

    Parameters
    ----------
    outcome : pandas.Series
        The outcome per unit, on the index of ``X`` (e.g. ``(location_id, round)``).
    cluster : pandas.Series, optional
        Cluster (e.g. admin unit) per unit, on the index of ``X``.
    model : {"auto", "logit", "fractional", "ols"}
    alpha : float
        Significance level (two-sided).
    scale : {"raw", "sd"}
    fallback : {"error", "equal"}
    min_rows : int

    Tables
    ------
    ``coefficients``: term, group, coef, se, z, p, ci_low, ci_high (95 %), significant, weight;
    ``model``: the model, family, covariance, rows, clusters, pseudo/R-squared, converged;
    ``rows_used``: units x 1 (``outcome``).
    """
    import statsmodels.api as sm
    from statsmodels.tools import sm_exceptions

    method = "outcome"
    if outcome is None:
        raise WeightingError("outcome weighting needs 'outcome': a Series with the outcome of every unit (row of X)",
                             method=method)
    if model not in ("auto", "logit", "fractional", "ols"):
        raise WeightingError(f"outcome option 'model' must be auto, logit, fractional or ols, not {model!r}",
                             method=method)
    if scale not in ("raw", "sd"):
        raise WeightingError(f"outcome option 'scale' must be 'raw' or 'sd', not {scale!r}", method=method)
    if fallback not in ("error", "equal"):
        raise WeightingError(f"outcome option 'fallback' must be 'error' or 'equal', not {fallback!r}", method=method)
    if not 0 < alpha < 1:
        raise WeightingError(f"outcome option 'alpha' must be between 0 and 1, not {alpha!r}", method=method)
    y = _on_index(outcome, X, "outcome")
    try:
        y = pd.to_numeric(y, errors="raise").astype(float)
    except (TypeError, ValueError):
        raise WeightingError("option 'outcome' must be numeric (0/1, a share, or a number)", method=method) from None
    cl = None if cluster is None else _on_index(cluster, X, "cluster")
    ok = (y.notna() & np.isfinite(y)).to_numpy()
    if cl is not None:
        ok = ok & cl.notna().to_numpy()
    cols = list(X.columns)
    _, mask = _complete(method, X, None, cols, min_rows, rows=ok,
                        what=" and the outcome" + (" and cluster" if cl is not None else ""))
    if int(mask.sum()) <= len(cols) + 1:
        raise WeightingDataError(f"outcome weighting of {len(cols)} children needs more than {len(cols) + 1} complete "
                                 f"rows, but has {int(mask.sum())}; use fewer children or more rows", method=method)
    yv = y[mask].to_numpy()
    Xd = X[mask]
    _check_singular(method, None, cols, Xd.to_numpy())
    values = set(np.unique(yv))
    binary = values <= {0.0, 1.0}
    share = bool((yv >= 0).all() and (yv <= 1).all())
    kind = model if model != "auto" else ("logit" if binary else "fractional" if share else "ols")
    if kind == "logit" and not binary:
        raise WeightingError("model='logit' needs an outcome of 0s and 1s; use 'fractional' for shares or 'ols'",
                             method=method)
    if kind == "fractional" and not share:
        raise WeightingError("model='fractional' needs an outcome between 0 and 1; use 'ols'", method=method)
    if len(values) < 2:
        what = "class" if binary else "value"
        raise WeightingDataError(f"the outcome has one {what} only ({yv[0]:g}) over the {len(yv)} rows used, so it "
                                 "says nothing about the children's effects; use an outcome that varies",
                                 method=method)
    design = sm.add_constant(Xd, has_constant="add")
    if cl is not None:
        codes = pd.factorize(cl[mask])[0]
        n_clusters = int(codes.max()) + 1
        if n_clusters < 2:
            raise WeightingDataError("cluster-robust errors need at least 2 clusters; there is one: drop 'cluster'",
                                     method=method)
        fit_kw = {"cov_type": "cluster", "cov_kwds": {"groups": codes}}
    else:
        n_clusters = None
        fit_kw = {"cov_type": "nonrobust" if kind == "logit" else "HC1"}
    warns: list[str] = []
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        try:
            if kind == "logit":
                res = sm.Logit(yv, design).fit(disp=0, maxiter=200, **fit_kw)
            elif kind == "fractional":
                res = sm.GLM(yv, design, family=sm.families.Binomial()).fit(maxiter=200, **fit_kw)
            else:
                res = sm.OLS(yv, design).fit(**fit_kw)
        except (sm_exceptions.PerfectSeparationError, np.linalg.LinAlgError) as exc:
            if isinstance(exc, np.linalg.LinAlgError):
                raise WeightingDataError(f"the regression's matrix cannot be inverted ({exc}); drop collinear children",
                                         method=method) from None
            res = None
            caught.append(_warnings.WarningMessage(sm_exceptions.PerfectSeparationWarning(str(exc)),
                                                   sm_exceptions.PerfectSeparationWarning, "", 0))
    separation = any(issubclass(w.category, getattr(sm_exceptions, "PerfectSeparationWarning", ())) for w in caught)
    if kind == "logit" and res is not None and not separation:
        with np.errstate(over="ignore"), _warnings.catch_warnings():
            _warnings.simplefilter("ignore", RuntimeWarning)
            p_hat = np.asarray(res.predict(design))
        sure = ((p_hat > 1 - 1e-8) & (yv == 1)) | ((p_hat < 1e-8) & (yv == 0))
        # fitted probabilities of exactly 0 or 1 with a diverging fit (or on every row): (quasi-)separation
        separation = bool(sure.all() or (sure.any() and not res.mle_retvals.get("converged", True)))
    if separation:
        alone = _separating(Xd, yv)
        raise WeightingDataError(
            "perfect separation: "
            + (f"{_list(alone)} on {'its' if len(alone) == 1 else 'their'} own predict{'s' * (len(alone) == 1)} "
               "the outcome's class exactly" if alone else "a combination of the children predicts the outcome's "
               "class exactly for some rows")
            + ", so the logit's coefficients are infinite; drop the separating children, use more rows or model "
            "='ols'", method=method, children=alone)
    for w in caught:
        if issubclass(w.category, (sm_exceptions.ConvergenceWarning, RuntimeWarning, sm_exceptions.HessianInversionWarning)):
            warns.append(f"statsmodels: {str(w.message).splitlines()[0]}")
    converged = bool(getattr(res, "converged", True)) if kind == "fractional" else bool(
        res.mle_retvals.get("converged", True)) if kind == "logit" else True
    if not converged:
        warns.append(f"the {kind} regression did not converge: its coefficients and p-values are unreliable")
    if n_clusters is not None and n_clusters < 20:
        warns.append(f"only {n_clusters} clusters: cluster-robust standard errors are unreliable with fewer than "
                     "about 20-30 clusters")
    params = pd.Series(np.asarray(res.params), index=design.columns)
    bse = pd.Series(np.asarray(res.bse), index=design.columns)
    pvals = pd.Series(np.asarray(res.pvalues), index=design.columns)
    ci = pd.DataFrame(np.asarray(res.conf_int(0.05)), index=design.columns, columns=["ci_low", "ci_high"])
    stat = params / bse
    if not np.isfinite(params.to_numpy()).all() or not np.isfinite(pvals.to_numpy()).all():
        bad = params.index[~(np.isfinite(params.to_numpy()) & np.isfinite(pvals.to_numpy()))]
        raise WeightingDataError(f"the regression gave no finite coefficient or p-value for {_list(bad)}; "
                                 "drop collinear or near-constant children", method=method, children=bad)
    coef = params[cols]
    effect = coef * (Xd.std(ddof=1) if scale == "sd" else 1.0)
    sig = (pvals[cols] < alpha)
    keep = sig & (coef > 0)
    raw = effect.where(keep, 0.0)
    weights = pd.Series(0.0, index=groups.index)
    model_words = {"logit": "A logit", "fractional": "A fractional logit (binomial GLM, logit link)",
                   "ols": "A linear"}[kind]
    notes = [
        f"{model_words} regression of the outcome on all {len(cols)} children over {len(yv)} rows with every value"
        + (f", with standard errors robust to clustering in {n_clusters} clusters" if n_clusters else
           ", with robust (HC1) standard errors" if kind != "logit" else "") + ".",
        f"A child's weight is its {'standardised ' if scale == 'sd' else ''}coefficient when it is positive and "
        f"significant (p < {alpha:g}), else 0; each group's weights were divided by their sum.",
    ]
    for g, gcols in _group_items(groups):
        r = raw[gcols]
        zero = [c for c in gcols if not keep[c]]
        if zero:
            why = [f"'{c}' ({'negative' if coef[c] <= 0 else 'not significant'}, p = {pvals[c]:.2g})" for c in zero]
            notes.append(f"{g}: weight 0 for " + ", ".join(why) + ".")
        if r.sum() > 0:
            weights[gcols] = r / r.sum()
        elif fallback == "equal":
            weights[gcols] = 1.0 / len(gcols)
            warns.append(f"group '{g}': no child has a positive significant effect on the outcome (p < {alpha:g}); "
                         "equal weights instead (fallback='equal')")
        else:
            raise WeightingDataError(
                f"group '{g}': no child of {_list(gcols)} has a positive significant effect on the outcome "
                f"(p < {alpha:g}), so outcome weights are undefined for it; set fallback to 'equal' (equal weights, with a "
                "warning), raise alpha, or weight this group otherwise", method=method, group=g, children=gcols)
    table = pd.DataFrame({"term": design.columns, "group": [groups.get(c, np.nan) for c in design.columns],
                          "coef": params.to_numpy(), "se": bse.to_numpy(), "z": stat.to_numpy(),
                          "p": pvals.to_numpy(), "ci_low": ci["ci_low"].to_numpy(), "ci_high": ci["ci_high"].to_numpy()})
    table["significant"] = table["p"] < alpha
    table["weight"] = [weights.get(t, np.nan) for t in design.columns]
    fit_info = {"model": kind, "covariance": fit_kw["cov_type"], "rows": len(yv), "clusters": n_clusters,
                "converged": converged}
    if kind == "ols":
        fit_info["r_squared"] = float(res.rsquared)
    elif kind == "logit":
        fit_info["pseudo_r_squared"] = float(res.prsquared)
    else:
        fit_info["pseudo_r_squared"] = float(1 - res.deviance / res.null_deviance)
    rows_used = pd.DataFrame({"outcome": mask}, index=X.index)
    return Derivation(method, weights, groups,
                      tables={"coefficients": table, "model": pd.DataFrame([fit_info]), "rows_used": rows_used},
                      notes=notes, warnings=warns,
                      options={"outcome": getattr(outcome, "name", None), "cluster": getattr(cluster, "name", None),
                               "model": kind, "alpha": alpha, "scale": scale, "fallback": fallback,
                               "min_rows": min_rows})


def _on_index(value, X: pd.DataFrame, option: str) -> pd.Series:
    """An option's Series aligned on the rows of ``X`` (refusing one that matches no row)."""
    if isinstance(value, pd.DataFrame) and value.shape[1] == 1:
        value = value.iloc[:, 0]
    if not isinstance(value, pd.Series):
        arr = np.asarray(value)
        if arr.ndim != 1 or len(arr) != len(X):
            raise WeightingError(f"option '{option}' must be a Series on the rows of X (or {len(X)} values)",
                                 method="outcome")
        return pd.Series(arr, index=X.index)
    if value.index.equals(X.index):
        return value
    if not value.index.is_unique:
        raise WeightingError(f"option '{option}' has duplicated index labels", method="outcome")
    out = value.reindex(X.index)
    if out.notna().sum() == 0:
        raise WeightingError(f"option '{option}' shares no row label with X: give it on X's index "
                             f"({', '.join(map(str, X.index.names))})", method="outcome")
    return out


# --------------------------------------------------------------------------- optimised
def _importance(kind: str, children: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Pearson correlation (COINr) or its square of each child column with the parent (pairwise complete)."""
    out = np.empty(children.shape[1])
    for j in range(children.shape[1]):
        x = children[:, j]
        ok = ~np.isnan(x) & ~np.isnan(parent)
        a, b = x[ok], parent[ok]
        if a.size < 2 or a.std() == 0 or b.std() == 0:
            out[j] = np.nan
            continue
        out[j] = np.corrcoef(a, b)[0, 1]
    return out ** 2 if kind == "r2" else out


@WEIGHTINGS.register("optimised", plain="optimisation (so that each one's actual influence on its group's score matches the target)", summary="weights whose importance (Pearson correlation of each child with its "
                     "parent, or with the index when `against: index`, as COINr `get_opt_weights(optype = "
                     "\"balance\")`; `importance: r2` squares it) matches the `target` shares: bounded least squares, "
                     "or COINr's Nelder-Mead with `optimiser: coinr`",
                     params=("target", "importance", "against", "hierarchy", "aggregation", "optimiser", "maxiter",
                             "tol", "min_rows"))
def _optimised(X: pd.DataFrame, groups: pd.Series, target="equal", importance: str = "correlation",
               against: str = "parent", hierarchy=None, aggregation: str = "arithmetic",
               optimiser: str = "least_squares", maxiter: int = 500, tol: float | None = None,
               min_rows: int = MIN_ROWS) -> Derivation:
    """Weights whose effective importances match target importances (COINr ``get_opt_weights``).

    COINr 1.1.14 (``optype = "balance"``): the importance of a child is its Pearson correlation
    (pairwise complete) with the index recomputed from the weights; the importances of the level
    are divided by their sum and the weights minimise ``log(mean((target - share)^2))``, the target
    shares being ``itarg / sum(itarg)``, starting from the target shares.  Here:

    * ``against="parent"`` (default): each group separately, importance = correlation of each
      child with the group's score recomputed from the weights (weighted ``aggregation`` mean of
      the children, arithmetic by default; missing children dropped and the weights re-normalised,
      as in :mod:`stability.aggregate` and COINr's ``a_amean``); targets and importances are shares
      within the group.  When the group's parent is the index, this is COINr's definition.
    * ``against="index"``: COINr's definition for any level: importance = correlation with the
      top of ``hierarchy`` (the levels above the groups, each a dict ``{"parents": {node: parent},
      "weights": {node: w}, "method": "arithmetic", "p": None}``; :func:`derive_for` fills it from
      the spec); the weights of all groups are optimised together and the targets and importances
      are shares of the whole level, as in COINr.
    * ``importance="r2"`` uses the squared correlation (the first-order sensitivity index of a
      linear model, Paruolo et al. 2013) instead of COINr's plain correlation.

    Optimisers (both scipy):

    * ``"least_squares"`` (default): ``scipy.optimize.least_squares`` (trust-region reflective) on
      the gaps between importance shares and target shares, weights >= 0, one extra residual per
      group fixing the scale of its weights; ``tol`` (default 1e-10) is its ftol/xtol/gtol and
      ``maxiter`` its limit of evaluations.
    * ``"coinr"``: COINr's call, ``optim(par = targets, fn, control = list(reltol = tol, maxit =
      maxiter))``, as scipy's Nelder-Mead: the objective is COINr's log mean squared gap of the
      shares with the weights divided by their sum, R's initial simplex (each vertex adds
      ``max(0.1 |par0|)`` to one weight), stop when the objective's spread over the simplex is at
      most ``tol * (|f(par0)| + tol)`` (``tol`` default 0.1, COINr's) or after ``maxiter``
      evaluations (default 500), weights unbounded (they may become negative, with a warning).
      It reproduces COINr while the run stops at the initial simplex, which COINr's default
      tolerance does on the ASEM example (the "optimised" weights then barely move from the
      targets); longer runs follow scipy's Nelder-Mead steps, not R's.

    Not converging (``maxiter`` reached) is a warning, with the state in ``tables["convergence"]``;
    targets that the weights cannot reach are a warning too (``max_gap`` above 0.01).

    Parameters
    ----------
    target : "equal", mapping or Series
        Relative target importance per child (default equal).
    importance : {"correlation", "r2"}
    against : {"parent", "index"}
    hierarchy : list of dict, optional
        The levels above the groups, needed by ``against="index"``.
    aggregation : str
        How a group's score is made from its children: a weighted mean of
        :data:`stability.aggregate.AGGREGATIONS` (not ``copeland``).
    optimiser : {"least_squares", "coinr"}
    maxiter : int
        Most evaluations of the objective (COINr's ``maxiter``, default 500).
    tol : float, optional
        Tolerance (see the optimisers).
    min_rows : int

    Tables
    ------
    ``importance``: group, child, target, obtained (importance shares at the optimum), gap,
    correlation (with the parent or index at the optimum), par (the optimiser's raw value),
    weight; ``convergence``: block (group, or ``level`` with ``against="index"``), iterations
    (evaluations), objective (sum of squared gaps), log_mse (COINr's objective), max_gap,
    converged, status, message; ``trace``: block, evaluation, objective (the optimiser's: sum of
    squared gaps, or COINr's log mean squared gap), then ``w_<child>`` (the weights evaluated,
    divided by the block's sum as COINr does).
    """
    from scipy.optimize import least_squares, minimize

    from .aggregate import AGGREGATIONS, weighted_mean

    method = "optimised"
    if importance not in ("correlation", "r2"):
        raise WeightingError(f"optimised option 'importance' must be 'correlation' or 'r2', not {importance!r}",
                             method=method)
    if against not in ("parent", "index"):
        raise WeightingError(f"optimised option 'against' must be 'parent' or 'index', not {against!r}", method=method)
    if optimiser not in ("least_squares", "coinr"):
        raise WeightingError(f"optimised option 'optimiser' must be 'least_squares' or 'coinr', not {optimiser!r}",
                             method=method)
    if aggregation not in AGGREGATIONS or not AGGREGATIONS[aggregation].on_scale or AGGREGATIONS[aggregation].requires:
        ok = [m.name for m in AGGREGATIONS if m.on_scale and not m.requires]
        raise WeightingError(f"optimised option 'aggregation' must be one of {', '.join(ok)}, not {aggregation!r}",
                             method=method)
    if against == "index" and hierarchy is None:
        raise WeightingError("against='index' needs 'hierarchy' (the levels above the groups, see the documentation); "
                             "derive_for fills it from the spec", method=method)
    if not int(maxiter) >= 1:
        raise WeightingError(f"optimised option 'maxiter' must be at least 1, not {maxiter!r}", method=method)
    tol = (1e-10 if optimiser == "least_squares" else 0.1) if tol is None else float(tol)
    children = list(groups.index)
    if isinstance(target, str):
        if target != "equal":
            raise WeightingError(f"optimised option 'target' must be 'equal' or a number per child, not {target!r}",
                                 method=method)
        tgt = pd.Series(1.0, index=children)
    else:
        tgt = _mapping(method, "target", target, children)
    _not_all_zero(method, "target", tgt, groups)
    items = _group_items(groups)
    for g, cols in items:
        ok = X[cols].notna().all(axis=1)
        if int(ok.sum()) < min_rows:
            raise WeightingDataError(f"group '{g}': optimised weighting needs at least {min_rows} rows with a value "
                                     f"for every child of {_list(cols)}, but has {int(ok.sum())}; impute first",
                                     method=method, group=g, children=cols)
        spread = X[cols].max() - X[cols].min()
        const = [c for c in cols if not spread[c] > 0]
        if const:
            raise WeightingDataError(f"group '{g}': {_list(const)} constant, so its correlation with the parent is "
                                     "undefined; drop it or weight the group otherwise", method=method, group=g,
                                     children=const)
    values = X.to_numpy(dtype=float)
    pos = {c: j for j, c in enumerate(children)}
    upper = _hierarchy(hierarchy, [g for g, _ in items]) if against == "index" else None

    def top_scores(scores: dict) -> dict:
        """Score of each group's top ancestor, recomputed through the levels above."""
        current = dict(scores)
        ancestor = {g: g for g in scores}
        for lv in upper:
            parents = lv["parents"]
            nxt = {}
            for p in dict.fromkeys(parents[n] for n in current):
                kids = [n for n in current if parents[n] == p]
                ww = np.array([float(lv["weights"].get(n, 1.0)) for n in kids])
                nxt[p] = weighted_mean(np.column_stack([current[n] for n in kids]), ww,
                                       method=lv.get("method") or "arithmetic", p=lv.get("p"), name=str(p),
                                       children=kids)
            ancestor = {g: parents[a] for g, a in ancestor.items()}
            current = nxt
        return {g: current[a] for g, a in ancestor.items()}

    blocks = [("level", items)] if against == "index" else [(g, [(g, cols)]) for g, cols in items]
    weights = pd.Series(np.nan, index=children)
    imp_rows, conv_rows, trace_rows, warns = [], [], [], []
    for name, block in blocks:
        cols_all = [c for _, cols in block for c in cols]
        sel = [np.array([cols_all.index(c) for c in cols]) for _, cols in block]  # positions of each group
        t = tgt[cols_all].to_numpy()
        t_share = t / t.sum()
        if len(cols_all) == 1:
            weights[cols_all] = 1.0
            imp_rows.append({"group": block[0][0], "child": cols_all[0], "target": 1.0, "obtained": 1.0, "gap": 0.0,
                             "correlation": np.nan, "par": 1.0, "weight": 1.0})
            conv_rows.append({"block": name, "iterations": 0, "objective": 0.0, "log_mse": -np.inf, "max_gap": 0.0,
                              "converged": True, "status": 0, "message": "one child: weight 1"})
            continue
        trace: list[tuple[float, np.ndarray]] = []

        def correlations(w, block=block, sel=sel):
            scores = {g: weighted_mean(values[:, [pos[c] for c in cols]], w[s], method=aggregation, name=str(g),
                                       children=cols) for (g, cols), s in zip(block, sel)}
            parent_of = top_scores(scores) if upper is not None else scores
            return np.concatenate([_importance("correlation", values[:, [pos[c] for c in cols]], parent_of[g])
                                   for g, cols in block])

        def gaps(w, t_share=t_share):
            r = correlations(w)
            imp = r ** 2 if importance == "r2" else r
            with np.errstate(invalid="ignore", divide="ignore"):
                share = imp / np.nansum(imp)
            return np.nan_to_num(share - t_share, nan=1.0), share, r

        def residuals(x, sel=sel, trace=trace):
            gap = gaps(x)[0]
            trace.append((float((gap ** 2).sum()), x / x.sum()))
            return np.concatenate([gap, [x[s].sum() - 1.0 for s in sel]])

        def log_mse(x):
            w = x / x.sum()
            with np.errstate(divide="ignore"):
                return float(np.log(np.mean(gaps(w)[0] ** 2)))

        def coinr_objective(x, trace=trace):
            f = log_mse(x)
            trace.append((f, x / x.sum()))
            return f

        if optimiser == "least_squares":
            x0 = np.empty(len(cols_all))
            for s in sel:
                x0[s] = t[s] / t[s].sum()
            with np.errstate(invalid="ignore", divide="ignore"):
                sol = least_squares(residuals, x0, bounds=(0.0, np.inf), method="trf", max_nfev=int(maxiter),
                                    ftol=tol, xtol=tol, gtol=tol)
            par = np.where(sol.x > 1e-12 * sol.x.max(), sol.x, 0.0)  # the bounds are approached, not reached
            converged, status, message, n_eval = bool(sol.status > 0), int(sol.status), str(sol.message), int(sol.nfev)
        else:
            x0 = t_share.copy()
            step = 0.1 * np.abs(x0).max() or 0.1
            simplex = np.vstack([x0, x0 + step * np.eye(len(x0))])
            fatol = tol * (abs(log_mse(x0)) + tol)
            sol = minimize(coinr_objective, x0, method="Nelder-Mead",
                           options={"initial_simplex": simplex, "fatol": fatol, "xatol": np.inf,
                                    "maxfev": int(maxiter), "maxiter": 10 ** 9})
            par = sol.x / sol.x.sum()
            converged, status, message, n_eval = bool(sol.success), int(sol.status), str(sol.message), int(sol.nfev)
        x = par.astype(float).copy()
        for (g, cols), s in zip(block, sel):
            total = x[s].sum()
            if not abs(total) > 0:
                raise WeightingDataError(f"group '{g}': the optimiser set every weight to 0; check the children's "
                                         "correlations with the parent or use another weighting", method=method,
                                         group=g, children=cols)
            x[s] = x[s] / total
        weights[cols_all] = x
        gap, obtained, corr = gaps(x)
        mse = float(np.mean(gap ** 2))
        conv_rows.append({"block": name, "iterations": n_eval, "objective": float((gap ** 2).sum()),
                          "log_mse": float(np.log(mse)) if mse > 0 else -np.inf, "max_gap": float(np.abs(gap).max()),
                          "converged": converged, "status": status, "message": message})
        trace_rows.extend({"block": name, "evaluation": i + 1, "objective": f,
                           **{f"w_{c}": v for c, v in zip(cols_all, w)}} for i, (f, w) in enumerate(trace))
        group_of = {c: g for g, cols in block for c in cols}
        for c, tt, ob, gp, cr, pr in zip(cols_all, t_share, obtained, gap, corr, par):
            imp_rows.append({"group": group_of[c], "child": c, "target": tt, "obtained": ob, "gap": gp,
                             "correlation": cr, "par": pr, "weight": weights[c]})
        where = "the level" if name == "level" else f"group '{name}'"
        if not converged:
            warns.append(f"{where}: the optimiser did not converge in {n_eval} evaluations (maxiter = {maxiter}); "
                         "the weights are its last state (see tables['convergence']): raise maxiter or tol")
        elif np.abs(gap).max() > 0.01:
            warns.append(f"{where}: the target importances are not reached (largest gap {np.abs(gap).max():.3f}"
                         + ("; non-negative weights cannot reach them" if optimiser == "least_squares" else
                            "; COINr's tolerance stops the search early, a smaller tol goes further") + ")")
        neg = [c for c in cols_all if weights[c] < 0]
        if neg:
            warns.append(f"{where}: negative weights for {_list(neg)} (COINr's optimiser is unbounded)")
        negc = [c for c, v in zip(cols_all, corr) if v < 0]
        if negc:
            warns.append(f"{where}: {_list(negc)} correlate negatively with the "
                         f"{'index' if against == 'index' else 'parent'} at the optimum")
    what = "the index" if against == "index" else "its parent (the group's score)"
    how = ("bounded least squares (weights >= 0)" if optimiser == "least_squares" else
           "COINr's Nelder-Mead search (scipy), unbounded")
    notes = [
        f"Optimised weights (as COINr's get_opt_weights, 'balance'): the weights were chosen so that each child's "
        f"importance, its {'squared ' if importance == 'r2' else ''}Pearson correlation with {what} recomputed from "
        f"those weights ({aggregation} mean), matches the target shares "
        + ("(equal)" if isinstance(target, str) else "(given)") + f", by {how}.",
        "Convergence: " + "; ".join(f"{r['block']}: {'converged' if r['converged'] else 'NOT converged'} after "
                                    f"{r['iterations']} evaluations, largest gap {r['max_gap']:.2g}" for r in conv_rows)
        + ".",
    ]
    return Derivation(method, weights, groups,
                      tables={"importance": pd.DataFrame(imp_rows), "convergence": pd.DataFrame(conv_rows),
                              "trace": pd.DataFrame(trace_rows)},
                      notes=notes, warnings=warns,
                      options={"target": tgt.to_dict(), "importance": importance, "against": against,
                               "hierarchy": hierarchy, "aggregation": aggregation, "optimiser": optimiser,
                               "maxiter": maxiter, "tol": tol, "min_rows": min_rows})


def _hierarchy(hierarchy, nodes: list) -> list[dict]:
    """Check the levels above the groups: each maps every node of the level below to a parent."""
    if not isinstance(hierarchy, (list, tuple)):
        raise WeightingError("option 'hierarchy' must be a list of levels, each {'parents': {...}, 'weights': {...}}",
                             method="optimised")
    out = []
    current = list(nodes)
    for k, lv in enumerate(hierarchy):
        if not isinstance(lv, Mapping) or "parents" not in lv:
            raise WeightingError(f"option 'hierarchy', level {k + 1}: needs 'parents' (node -> parent)",
                                 method="optimised")
        parents = dict(lv["parents"])
        missing = [n for n in current if n not in parents]
        if missing:
            raise WeightingError(f"option 'hierarchy', level {k + 1}: no parent for {_list(missing)}",
                                 method="optimised", children=missing)
        out.append({"parents": parents, "weights": dict(lv.get("weights") or {}), "method": lv.get("method"),
                    "p": lv.get("p")})
        current = list(dict.fromkeys(parents[n] for n in current))
    return out


# --------------------------------------------------------------------------- files
#: Every file :func:`write_derivation` may write (``weights.csv``, ``notes.txt`` and the tables of
#: every scheme): a folder's earlier ones that a call does not write again are removed.
OUTPUT_FILES = ("weights.csv", "notes.txt", "groups.csv", "expert_weights.csv", "points.csv", "allocations.csv",
                "loadings.csv", "summary.csv", "rows_used.csv", "eigenvalues.csv", "factors.csv",
                "coefficients.csv", "model.csv", "importance.csv", "convergence.csv", "trace.csv")


def write_derivation(d: Derivation, result, out_dir, *, snippet: str = "") -> list:
    """Write a derivation (``stability weights --out``) to ``out_dir``, all files or none, as a set.

    ``weights.csv`` (``child``, ``group``, ``weight``, ``label``, and the ``method``, ``level`` and
    ``spec_hash`` they came from), one ``<table>.csv`` per table of the derivation (a table named
    like a file above is prefixed with the method: ``expert_weights.csv``) and ``notes.txt`` (what
    was derived from which spec and data, the notes and warnings, then ``snippet``: the spec lines
    that score with these weights).  Derived from illustrative data, every table has a first
    ``data_note`` column and ``notes.txt`` a first line saying so.  The folder's files of an
    earlier call (:data:`OUTPUT_FILES`) not written again are removed once the new ones are in
    place (:func:`stability.io.write_set`).

    Returns
    -------
    list of Path
    """
    from .export import ILLUSTRATIVE_NOTE
    from .io import to_csv, write_set

    spec = result.spec
    illustrative = bool(getattr(result, "illustrative", False))

    def noted(table: pd.DataFrame) -> pd.DataFrame:
        table = table.reset_index() if table.index.name else table.copy()
        if illustrative and "data_note" not in table.columns:
            table.insert(0, "data_note", ILLUSTRATIVE_NOTE)
        return table

    weights = d.to_frame().assign(label=lambda t: [spec.label(c) for c in t["child"]], method=d.method,
                                  level=d.level, spec_hash=result.spec_hash)
    writers = {"weights.csv": lambda p: to_csv(noted(weights), p)}
    for name, table in d.tables.items():
        file = f"{name}.csv"
        if file in ("weights.csv", "notes.txt"):
            file = f"{d.method}_{file}"
        writers[file] = lambda p, t=table: to_csv(noted(t), p)
    head = ([f"{ILLUSTRATIVE_NOTE}: do not use for programming decisions.", ""] if illustrative else [])
    head.append(f"Level {d.level} weights derived by {d.method}; spec {spec.name} ({result.spec_hash}); "
                f"data {getattr(result, 'data_version', '') or 'n/a'}.")
    text = "\n".join(head + [""] + d.notes + d.warnings + ["", snippet])
    writers["notes.txt"] = lambda p: p.write_text(text, encoding="utf-8")
    return write_set(out_dir, writers, known=OUTPUT_FILES)


# --------------------------------------------------------------------------- words
def describe(result) -> list[str]:
    """The weights in use, in plain words: one sentence per level (for method notes and read-me sheets).

    Uses the public API of :class:`stability.pipeline.Result` only (``spec``, ``weights``,
    ``weight_derivations``).

    Examples
    --------
    ``["Within each pillar, the indicators count equally.", "In the index, Safety & security counts
    50 %, Livelihoods & basic services 25 % and Social cohesion 25 %."]``
    """
    spec = result.spec
    table = result.weights
    derived = result.weight_derivations
    lines = []
    for level in range(2, len(spec.levels) + 1):
        rows = table[table["level"] == level]
        parents = list(dict.fromkeys(rows["parent"]))
        kids = "indicators" if level == 2 else f"{spec.levels[level - 2].name.lower()}s"
        where = (f"In the {spec.label(parents[0])}" if len(parents) == 1
                 else f"Within each {spec.levels[level - 1].name.lower()}")
        d = derived.get(level)
        if d is not None:
            how = WEIGHTINGS[d.method].meta.get("plain", d.method).format(outcome=d.options.get("outcome") or
                                                                          "the outcome")
            lines.append(f"{where}, the {kids} are weighted by {how}{_shares_in_words(spec, rows, parents)}.")
            continue
        if all(np.allclose(g["weight"], g["weight"].iloc[0]) for _, g in rows.groupby("parent")):
            lines.append(f"{where}, the {kids} count equally.")
        else:
            lines.append(f"{where}, the {kids} count as written in the specification"
                         f"{_shares_in_words(spec, rows, parents)}.")
    return lines


def _shares_in_words(spec, rows: pd.DataFrame, parents: list) -> str:
    """``": A 50 %, B 25 % and C 25 %"`` for one parent; a pointer to the weights table for several."""
    if len(parents) > 1:
        return " (the weights table gives each one's share)"
    parts = [f"{spec.label(r.child)} {r.weight:.0%}" for r in rows.itertuples(index=False)]
    return ": " + (", ".join(parts[:-1]) + f" and {parts[-1]}" if len(parts) > 1 else parts[0])
