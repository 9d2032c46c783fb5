"""Why a location scores above or below its region, in index points and in plain words.

A location's index is compared with a *reference*: the median of its region
(the first admin column of the spec) in the same round, or the national median
of the round.  The gap is split, exactly, into one contribution per indicator
(or per pillar), and the largest contributions are put into words that state
the answers the location gave ("no robbery in the last 3 months", "3 security
incidents in the last 3 months"), never a normalised score.

Public functions
----------------
:func:`contributions`      each indicator's (or pillar's) contribution to the gap, in index points
:func:`reference_profile`  the median location profile of each region (or the country) and round
:func:`drivers`            the ``n`` strongest and weakest indicators of each location and round
:func:`summary_lines`      one line of plain words per location and round
:func:`answer_phrase`      the words for one answer of one indicator

The median location profile
---------------------------
The median of the index is not a weighted mean of the medians of its
indicators, so "the gap to the median" cannot be split exactly among the
indicators.  The reference is therefore a **median location profile**: a
location whose every normalised indicator score is the median of that
indicator among the locations of the region (or of the country) in the round,
and whose pillar and index scores are *aggregated* from those medians with the
spec's own methods, weights and availability thresholds, exactly as
:mod:`stability.aggregate` aggregates a real location.  Its index is
``reference_score``; the true median of the index is ``reference_median``, and
their difference ``profile_minus_median``.  The two can differ by several
points when many indicators are yes/no: the median of a yes/no indicator is
one of the two answers, so the profile gives the most common answer to every
question, while the median location usually departs from it on a few (with the
illustrative Mali survey, regional profiles lie from -15 to +13 points from the
regional median of the index, +7 typically).

:func:`summary_lines` says "more / less stable than the median" from the true
median, and gives "mainly because" the largest contributions of the same sign
only when the gap to the profile has that sign too; otherwise it lists what
helps and what holds the location back without "mainly".

The decomposition
-----------------
Every aggregation method of the spec that is a weighted quasi-arithmetic mean,
``V = f^-1(sum_i a_i f(v_i))`` with the weights ``a_i`` re-normalised among the
children present (``arithmetic``: ``f(x) = x``; ``geometric``: ``log x``;
``harmonic``: ``1/x``; ``generalised``: ``x^p``), is split exactly.  With
``R = f^-1(sum_i a_i f(r_i))`` the profile's value and ``D(x, y) = (f(x) -
f(y)) / (x - y)`` the divided difference of ``f`` (its derivative when
``x = y``)::

    V - R = sum_i  a_i * D(v_i, r_i) / D(V, R) * (v_i - r_i)

For the arithmetic mean the multiplier is the weight itself: ``V - R = sum_i
a_i (v_i - r_i)``.  For the geometric mean it is ``a_i L(V, R) / L(v_i, r_i)``
with ``L`` the logarithmic mean: the log-linear split ``a_i (log v_i - log
r_i)`` scaled by ``L(V, R)`` (the LMDI decomposition), which is exact, not an
approximation; so are the harmonic and generalised means.  Applied level by
level (index -> pillars -> indicators), an indicator's contribution to the index
gap is the product of the multipliers along its path times its own gap
``x_i - m_i``.  Contributions add up to the gap up to floating-point rounding
(about 1e-12 points).

Two things are not attributed to any indicator and are reported in the
``unattributed`` column, so that contributions plus ``unattributed`` always
equal the gap: (1) a child (indicator or pillar) present at the location but
not in the profile, or the other way round (the weights are re-normalised over
different children), and (2) numerical edge cases (a generalised mean with
``p < 1`` at a score of exactly 0).  With the Mali spec (imputation fills every
missing answer) ``unattributed`` is 0 up to rounding.  Outranking (``copeland``)
is not a mean of the children's scores and is **not supported**: the functions
raise :class:`~stability.exceptions.MethodError`.

Strongest and weakest indicators
--------------------------------
An indicator *helps* when its contribution is positive and *holds back* when it
is negative; one that moves the index by less than :data:`MIN_DRIVER` of its
range (0.05 points on 0-100, what the reports show as 0.0) is neither.  Contributions are rounded to
:data:`TIE_DECIMALS` decimals, then sorted by absolute value, largest first;
equal contributions keep the order of the indicators in the spec.  Nothing
depends on the order of the rows of the data: the medians do not, and each
location's contributions are computed from its own row.

Wording
-------
Phrases come from the combined answer of the location (the ``raw`` stage: the
key informants' answers combined per indicator by :mod:`stability.combine`) and
from the indicator's optional ``say`` wording in the spec
(:class:`stability.spec.Wording`); without it, ``"<label>: <answer>"``.  By
answer type:

- **two codes** (yes/no): ``say.yes`` and ``say.no`` for the answers labelled
  yes and no (for other labels: the higher and the lower code); fallback
  ``"robbery in the last 3 months: no"``.  The key
  informants' answers are combined by the spec's ``combine`` method: the median
  of the answers (dont_know left out) is the majority answer, or the midpoint
  0.5 when exactly half said "yes"; a tie of the mode is the mean of the tied
  codes (0.5 too); the mean is the share of "yes".  No rule depends on the
  order of the informants' rows.  A combined answer between the two codes is never
  rounded to either: it reads ``"informants split on <label> (50 % said yes)"``
  (its normalised score is half-way between those of the two answers);
- **more codes** (none/some/most/all): ``say.scale`` with ``{answer}`` replaced
  by the answer's label (``"most of the residents have enough drinking
  water"``); a combined answer between two codes (median of a split) reads
  ``"some to most"``;
- **numbers** (counts): ``say.zero`` for 0, ``say.one`` for 1, else
  ``say.count`` with ``{n}`` the number and ``{rate}`` the value per
  ``denominator_scale`` for an indicator with a ``denominator``; a combined
  count between two integers (median of a split) reads ``"2 to 3"``; fallback
  ``"<label>: <n>"`` (``"<label>: <rate>"`` for a rate);
- **no answer**: ``"no answer on <label>"``, with ``"(value imputed)"`` when the
  index used an imputed value.

Whether an answer is good or bad is never written into the phrase: it follows
from the sign of its contribution (the indicator's ``direction`` is applied by
the normalisation), so "no robbery in the last 3 months" is listed among what
helps a location and "robbery in the last 3 months" among what holds it back.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import pandas as pd

from .exceptions import MethodError

#: The references a location is compared with.
REFERENCES = ("region", "national")
#: Levels of the decomposition by name (levels are numbered as in the spec: 1 = indicators).
LEVELS = {"indicator": 1, "pillar": 2}
#: Aggregation methods split exactly (weighted quasi-arithmetic means).
SUPPORTED = ("arithmetic", "geometric", "harmonic", "generalised")
#: Columns of :func:`contributions` besides the contributions themselves.
META_COLUMNS = ("unattributed", "gap", "reference_score", "reference_median", "profile_minus_median")
#: Contributions are rounded to this many decimals before they are compared (ties: spec order).
TIE_DECIMALS = 9
#: Smallest contribution (share of the index's range, either sign) that makes an indicator a driver: 0.05
#: points on 0-100, which the reports show as 0.0, helps or holds back nothing a reader can see.  An index
#: without a fixed range takes every non-zero contribution.
MIN_DRIVER = 0.0005
#: Share of the index's range within which a location is "about as stable as" the median.
ABOUT_THE_SAME = 0.01
#: Effects in :func:`drivers`.
HELPS, HOLDS_BACK = "helps", "holds back"


# --------------------------------------------------------------------------- checks and rows
def _level_number(spec, level) -> int:
    n_levels = len(spec.levels)
    k = LEVELS.get(level, level) if isinstance(level, str) else level
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k < n_levels:
        names = ", ".join(f"'{n}'" for n in LEVELS)
        raise ValueError(f"level must be {names} or a level number from 1 to {n_levels - 1} "
                         f"(level {n_levels} is the index itself), got {level!r}")
    return k


def check_methods(spec) -> None:
    """Raise :class:`~stability.exceptions.MethodError` when a level's aggregation cannot be split.

    Every method of :data:`SUPPORTED` is split exactly (see the module's notes);
    outranking (``copeland``) and any other registered method are not.
    """
    from .aggregate import AGGREGATIONS

    for k in range(2, len(spec.levels) + 1):
        method = spec.levels[k - 1].method
        if method in SUPPORTED:
            continue
        kind = ("an outranking count, not a mean of the children's scores" if not AGGREGATIONS[method].on_scale
                else "not a weighted quasi-arithmetic mean")
        raise MethodError(f"levels.{k}.method '{method}' is {kind}: the gap to the median cannot be split "
                          f"into contributions (supported: {', '.join(SUPPORTED)})")


def _check_reference(spec, reference: str) -> None:
    if reference not in REFERENCES:
        raise ValueError(f"reference must be one of {', '.join(map(repr, REFERENCES))}, got {reference!r}")
    if reference == "region" and not spec.columns.admin:
        raise ValueError("reference 'region' needs an admin column in the spec (columns.admin); "
                         "use reference='national'")


def _row_mask(result, index: pd.Index, survey_round=None, locations: Iterable | None = None) -> np.ndarray | None:
    """Rows of the stage tables to keep (None: all)."""
    spec = result.spec
    keep = None
    if survey_round is not None:
        if not spec.columns.round:
            raise ValueError("survey_round given, but the spec has no round column")
        keep = np.asarray(index.get_level_values(spec.columns.round) == survey_round)
    if locations is not None:
        loc = index.get_level_values(spec.columns.location) if isinstance(index, pd.MultiIndex) else index
        inside = np.asarray(loc.isin(list(locations)))
        keep = inside if keep is None else keep & inside
    return keep


def _groups(result, index: pd.Index, reference: str) -> tuple[np.ndarray, pd.DataFrame]:
    """Group number of each row (-1 for none) and the group keys (one row per group)."""
    spec = result.spec
    cols: dict[str, np.ndarray] = {}
    if spec.columns.round:
        cols[spec.columns.round] = np.asarray(index.get_level_values(spec.columns.round))
    if reference == "region":
        region = spec.columns.admin[0]
        cols[region] = result.units[region].reindex(index).to_numpy()
    if not cols:
        return np.zeros(len(index), dtype=np.intp), pd.DataFrame(index=[0])
    keys = pd.DataFrame(cols)
    codes = keys.groupby(list(cols), sort=True, dropna=True).ngroup()
    codes = codes.fillna(-1).to_numpy(dtype=np.intp)  # rows without a region (or round) belong to no group
    first = pd.Series(np.arange(len(keys))).groupby(codes).first()
    first = first[first.index >= 0]
    return codes, keys.iloc[first.to_numpy()].reset_index(drop=True)


# --------------------------------------------------------------------------- the profile
def _aggregate_profile(spec, medians: pd.DataFrame) -> pd.DataFrame:
    """The aggregates of the median indicator profiles, level by level, with the spec's methods."""
    from .aggregate import weighted_mean

    values = {c: medians[c].to_numpy(dtype=float) for c in medians.columns}
    for k in range(2, len(spec.levels) + 1):
        opts = spec.levels[k - 1]
        for agg in spec.aggregates_at(k):
            kids = spec.children(agg.id)
            X = np.column_stack([values[c.id] for c in kids]) if len(medians) else np.empty((0, len(kids)))
            w = np.array([c.weight for c in kids], dtype=float)
            values[agg.id] = weighted_mean(X, w, opts.method, opts.p, opts.threshold, agg.id, [c.id for c in kids])
    return pd.DataFrame(values, index=medians.index)


def _agg_ids(spec) -> list[str]:
    return [a.id for k in range(2, len(spec.levels) + 1) for a in spec.aggregates_at(k)]


class _Frame:
    """The rows of one computation: location values, profile values (per row), groups."""

    def __init__(self, result, reference: str, survey_round=None):
        spec = result.spec
        _check_reference(spec, reference)
        check_methods(spec)
        norm = result.stage("normalised")
        agg = result.stage("aggregated")
        index = norm.index
        keep = _row_mask(result, index, survey_round)
        if keep is not None:
            norm, agg, index = norm[keep], agg[keep], index[keep]
        self.spec = spec
        self.index = index
        self.reference = reference
        self.ind_ids = list(spec.indicator_ids)
        self.agg_ids = _agg_ids(spec)
        codes, keys = _groups(result, index, reference)
        self.codes = codes
        ind = norm[self.ind_ids].to_numpy(dtype=float)
        medians = pd.DataFrame(ind).groupby(codes).median()
        medians = medians[medians.index >= 0].reindex(range(len(keys)))
        medians.columns = self.ind_ids
        profile = _aggregate_profile(spec, medians)
        root = spec.root.id
        index_median = pd.Series(agg[root].to_numpy(dtype=float)).groupby(codes).median()
        self.keys = keys
        self.profile = profile
        self.index_median = index_median.reindex(range(len(keys))).to_numpy()
        self.n_locations = np.bincount(codes[codes >= 0], minlength=len(keys))
        take = np.where(codes >= 0, codes, 0)
        missing = codes < 0
        self.loc: dict[str, np.ndarray] = {c: ind[:, j] for j, c in enumerate(self.ind_ids)}
        for c in self.agg_ids:
            self.loc[c] = agg[c].to_numpy(dtype=float)
        self.ref: dict[str, np.ndarray] = {}
        for c in self.ind_ids + self.agg_ids:
            col = profile[c].to_numpy(dtype=float)[take] if len(profile) else np.full(len(index), np.nan)
            col[missing] = np.nan
            self.ref[c] = col
        med = self.index_median[take] if len(keys) else np.full(len(index), np.nan)
        self.ref_median = np.where(missing, np.nan, med)


# --------------------------------------------------------------------------- the decomposition
def _divided_difference(method: str, p: float | None, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(f(x) - f(y)) / (x - y)`` for the mean's generator ``f``, its derivative where ``x`` is ``y``."""
    if method == "arithmetic":
        return np.ones(np.broadcast(x, y).shape)
    if method == "generalised" and p == 1:
        return np.ones(np.broadcast(x, y).shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if method == "harmonic":
            return -1.0 / (x * y)
        mid = (x + y) / 2.0
        close = np.abs(x - y) <= 1e-7 * np.maximum(np.abs(x), np.abs(y))
        if method == "geometric" or (method == "generalised" and p == 0):
            far = (np.log(x) - np.log(y)) / (x - y)
            near = 1.0 / mid
        else:  # generalised, p other than 0 and 1
            far = (np.power(x, p) - np.power(y, p)) / (x - y)
            near = p * np.power(mid, p - 1.0)
        return np.where(close, near, far)


def _paths(fr: _Frame) -> dict[str, np.ndarray]:
    """Per node, the multiplier that turns its own gap into a contribution to the index gap.

    NaN where the node (or a node above it) is missing at the location or in the profile.
    """
    spec = fr.spec
    root = spec.root.id
    n = len(fr.index)
    path = {root: np.ones(n)}
    for k in range(len(spec.levels), 1, -1):
        opts = spec.levels[k - 1]
        for agg in spec.aggregates_at(k):
            kids = spec.children(agg.id)
            w = np.array([c.weight for c in kids], dtype=float)
            present = np.column_stack([~np.isnan(fr.loc[c.id]) for c in kids])
            wp = present * w
            total = wp.sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                a = wp / total[:, None]
                parent = _divided_difference(opts.method, opts.p, fr.loc[agg.id], fr.ref[agg.id])
                for j, c in enumerate(kids):
                    child = _divided_difference(opts.method, opts.p, fr.loc[c.id], fr.ref[c.id])
                    mult = path[agg.id] * a[:, j] * child / parent
                    mult[np.isnan(fr.loc[c.id]) | np.isnan(fr.ref[c.id])] = np.nan
                    path[c.id] = mult
    return path


def _contribution_matrix(fr: _Frame, level: int) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(contributions n x k, ids, gap): missing or undefined contributions are 0 where the gap is known."""
    spec = fr.spec
    ids = fr.ind_ids if level == 1 else [a.id for a in spec.aggregates_at(level)]
    path = _paths(fr)
    root = spec.root.id
    gap = fr.loc[root] - fr.ref[root]
    C = np.empty((len(fr.index), len(ids)))
    with np.errstate(invalid="ignore", over="ignore"):
        for j, c in enumerate(ids):
            own = fr.loc[c] - fr.ref[c]
            col = path[c] * own
            col[own == 0] = 0.0
            C[:, j] = np.where(np.isfinite(col), col, 0.0)
    C[np.isnan(gap)] = np.nan
    return C, ids, gap


def _frame_out(fr: _Frame, C: np.ndarray, ids: list[str], gap: np.ndarray) -> pd.DataFrame:
    clash = [c for c in ids if c in META_COLUMNS]
    if clash:
        raise ValueError(f"an indicator or aggregate is called '{clash[0]}', a column name of the contributions")
    root = fr.spec.root.id
    out = pd.DataFrame(C, index=fr.index, columns=ids)
    with np.errstate(invalid="ignore"):
        out["unattributed"] = gap - np.nansum(C, axis=1)
    out["gap"] = gap
    out[root] = fr.loc[root]  # the index, under its own id (ids are unique in a spec)
    out["reference_score"] = fr.ref[root]
    out["reference_median"] = fr.ref_median
    out["profile_minus_median"] = fr.ref[root] - fr.ref_median
    return out


def contributions(result, reference: str = "region", level="indicator", *, survey_round=None) -> pd.DataFrame:
    """Each indicator's (or pillar's) contribution to the gap between a location and its reference.

    Parameters
    ----------
    result : Result
        A computed index (:func:`stability.compute`).
    reference : {"region", "national"}
        Compare each location with the median location profile of its region
        (first admin column of the spec) in the same round, or of the whole
        round (see the module's notes on the profile).
    level : {"indicator", "pillar"} or int
        Split the gap among the indicators (level 1) or the pillars (level 2),
        or any level below the index.
    survey_round : optional
        Only this round (the medians are per round, so nothing else changes).

    Returns
    -------
    DataFrame
        Indexed like the stage tables (location[, round]), in their order.  One
        column per indicator (or aggregate of the level), in the spec's order:
        its contribution in index points; then ``unattributed`` (children
        present at the location but not in the profile or the other way round;
        0 up to rounding when both have the same children), ``gap`` (index minus
        the profile's index, equal to the sum of the contributions and
        ``unattributed``), the index itself (under the index's id, e.g.
        ``stability``), ``reference_score`` (the profile's index),
        ``reference_median`` (the median of the index in the reference group)
        and ``profile_minus_median``.  All NaN for a location without an index.

    Raises
    ------
    MethodError
        A level aggregated by a method that cannot be split (``copeland``).
    ValueError
        An unknown reference or level, or ``"region"`` without admin columns.

    Examples
    --------
    >>> c = contributions(result, "region")                     # doctest: +SKIP
    >>> c[spec.indicator_ids].sum(axis=1) + c["unattributed"]   # doctest: +SKIP  (== c["gap"])
    """
    k = _level_number(result.spec, level)
    fr = _Frame(result, reference, survey_round)
    C, ids, gap = _contribution_matrix(fr, k)
    return _frame_out(fr, C, ids, gap)


def reference_profile(result, reference: str = "region", *, survey_round=None) -> pd.DataFrame:
    """The median location profile of every reference group (region and round, or round).

    Returns
    -------
    DataFrame
        One row per group: the group's keys (round, region p-code), ``n_locations``,
        the median of every normalised indicator, the profile's aggregates (pillars
        and index, aggregated from those medians with the spec's methods),
        ``index_median`` (the true median of the index in the group) and
        ``profile_minus_median``.
    """
    fr = _Frame(result, reference, survey_round)
    root = fr.spec.root.id
    out = pd.concat([fr.keys.reset_index(drop=True), fr.profile.reset_index(drop=True)], axis=1)
    out.insert(len(fr.keys.columns), "n_locations", fr.n_locations)
    out["index_median"] = fr.index_median
    out["profile_minus_median"] = out[root] - out["index_median"]
    return out


# --------------------------------------------------------------------------- wording
def _in_sentence(text: str) -> str:
    """A label inside a sentence: lower-case first letter unless it starts an acronym (``IDPs``)."""
    return text if text[:2].isupper() else text[:1].lower() + text[1:]


def _number(x: float) -> str:
    """``3``, ``2.5``, ``0.83``, ``1,200``."""
    if x is None or not math.isfinite(x):
        return "n/a"
    if float(x).is_integer():
        return f"{x:,.0f}"
    return f"{x:,.2f}".rstrip("0").rstrip(".")


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


class _Words:
    """How one indicator's answers are put into words (see the module's notes)."""

    def __init__(self, spec, indicator_id: str):
        ind = spec.indicator(indicator_id)
        self.ind = ind
        self.say = getattr(ind, "say", None)  # a spec pickled before the wording existed has none
        self.label = _in_sentence(ind.label or ind.id)
        atype = spec.answers.get(ind.answers) if ind.answers else None
        self.integer = bool(atype is not None and atype.integer)
        self.codes: list[tuple[float, str]] = []
        if atype is not None and atype.codes is not None:
            seen: dict[float, str] = {}
            for lab, code in atype.codes.items():
                if code is not None and float(code) not in seen:
                    seen[float(code)] = str(lab).replace("_", " ")
            self.codes = sorted(seen.items())
        self.kind = "binary" if len(self.codes) == 2 else "scale" if self.codes else "number"
        # say.yes / say.no: the answers labelled yes and no, else the higher and the lower code
        self.yes_is_high = not (self.kind == "binary" and [lab.lower() for _, lab in self.codes] == ["yes", "no"])

    def _say(self, name: str) -> str | None:
        return getattr(self.say, name) if self.say is not None else None

    def answer(self, value: float, rate: float = np.nan) -> str:
        """The answer alone, in words (``yes``, ``some to most``, ``3``, ``no answer``)."""
        if value is None or not math.isfinite(value):
            return "no answer"
        if self.kind == "number":
            return self._count_text(value)
        exact = [lab for code, lab in self.codes if _close(code, value)]
        if exact:
            return exact[0]
        if self.kind == "binary":
            (lo, _), (hi, hi_label) = self.codes
            if lo < value < hi:
                return f"split ({(value - lo) / (hi - lo) * 100:.0f} % {hi_label})"
            return _number(value)
        below = [lab for code, lab in self.codes if code < value]
        above = [lab for code, lab in self.codes if code > value]
        if below and above:
            return f"{below[-1]} to {above[0]}"
        return _number(value)

    def _count_text(self, value: float) -> str:
        if self.integer and not float(value).is_integer():
            return f"{_number(math.floor(value))} to {_number(math.ceil(value))}"
        return _number(value)

    def phrase(self, value: float, rate: float = np.nan, imputed: bool = False) -> str:
        """The answer as a phrase (see the module's notes)."""
        if value is None or not math.isfinite(value):
            return f"no answer on {self.label}" + (" (value imputed)" if imputed else "")
        if self.kind == "binary":
            (lo, lo_label), (hi, hi_label) = self.codes
            high, low = ("yes", "no") if self.yes_is_high else ("no", "yes")
            if _close(value, hi):
                return self._say(high) or f"{self.label}: {hi_label}"
            if _close(value, lo):
                return self._say(low) or f"{self.label}: {lo_label}"
            if lo < value < hi:
                share = (value - lo) / (hi - lo) * 100
                return f"informants split on {self.label} ({share:.0f} % said {hi_label})"
            return f"{self.label}: {_number(value)}"
        if self.kind == "scale":
            word = self.answer(value)
            template = self._say("scale")
            return template.replace("{answer}", word) if template else f"{self.label}: {word}"
        n = self._count_text(value)
        r = _number(rate)
        template = None
        if _close(value, 0.0):
            template = self._say("zero")
        elif _close(value, 1.0):
            template = self._say("one")
        template = template or self._say("count")
        if template:
            return template.replace("{n}", n).replace("{rate}", r)
        if self.ind.denominator:
            return f"{self.label}: {r}"
        return f"{self.label}: {n}"


def answer_phrase(spec, indicator: str, value: float, rate: float = np.nan, imputed: bool = False) -> str:
    """The plain words for one combined answer of one indicator.

    Parameters
    ----------
    spec : IndexSpec
    indicator : str
        Indicator id.
    value : float
        The location's combined answer (``raw`` stage: a code such as 1 for
        "yes", or a number).  NaN: no answer.
    rate : float
        For an indicator with a ``denominator``: the value per
        ``denominator_scale`` (``denominated`` stage), for ``{rate}``.
    imputed : bool
        The index used an imputed value (said when there is no answer).

    Returns
    -------
    str
        E.g. ``"no robbery in the last 3 months"``, ``"most of the residents have
        enough drinking water"``, ``"3 security incidents in the last 3 months"``,
        or without wording in the spec ``"robbery in the last 3 months: no"``.
    """
    return _Words(spec, indicator).phrase(value, rate, imputed)


def _phrases(words: _Words, values: np.ndarray, rates: np.ndarray, imputed: np.ndarray) -> tuple[list, list]:
    """Phrases and answers of many answers of one indicator (each distinct answer worded once)."""
    cache: dict = {}
    phrases, answers = [], []
    for v, r, imp in zip(values.tolist(), rates.tolist(), imputed.tolist()):
        key = (None if v != v else v, None if r != r else r, imp)
        hit = cache.get(key)
        if hit is None:
            hit = cache[key] = (words.phrase(v, r, imp), words.answer(v, r))
        phrases.append(hit[0])
        answers.append(hit[1])
    return phrases, answers


# --------------------------------------------------------------------------- drivers
def min_driver(spec) -> float:
    """Smallest contribution (index points) of a driver: :data:`MIN_DRIVER` of the index's range, else 0."""
    rng = spec.index_range()
    return MIN_DRIVER * (rng[1] - rng[0]) if rng else 0.0


def _ranked(C: np.ndarray, n: int, sign: int, floor: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and positions (1 = largest) of the ``n`` largest contributions of one sign per row (of at
    least ``floor`` points, above 0).

    A stable sort of ``-|C|`` along the columns, which are in the spec's order: ties keep that order.
    """
    R = np.round(C, TIE_DECIMALS)
    with np.errstate(invalid="ignore"):
        key = np.where((R * sign > 0) & (R * sign >= floor), -np.abs(R), np.inf)
    order = np.argsort(key, axis=1, kind="stable")[:, :n]
    valid = np.isfinite(np.take_along_axis(key, order, axis=1))  # a prefix of each row
    rows, pos = np.nonzero(valid)
    return rows, order[rows, pos], pos + 1


def drivers(result, n: int = 3, reference: str = "region", *, survey_round=None,
            locations: Iterable | None = None) -> pd.DataFrame:
    """The ``n`` indicators that help each location most and the ``n`` that hold it back most.

    Parameters
    ----------
    result : Result
    n : int
        Indicators per effect.
    reference : {"region", "national"}
        See :func:`contributions`.
    survey_round : optional
        Only this round.
    locations : iterable, optional
        Only these location ids (the medians still come from every location of
        the reference group).

    Returns
    -------
    DataFrame
        Tidy, one row per location, round, effect and position: the key columns
        (location[, round]), ``effect`` (:data:`HELPS`: positive contribution, or
        :data:`HOLDS_BACK`: negative), ``order`` (1 = largest), ``indicator`` (id),
        ``pillar`` (id of its parent), ``label``, ``contribution`` (index
        points), ``score`` (the normalised indicator score), ``reference`` (the
        profile's score, i.e. the median), ``answer`` (the combined answer in
        words) and ``phrase`` (plain words, see :func:`answer_phrase`).  Rows
        in the order of the stage tables, "helps" before "holds back".

    Notes
    -----
    Tie rule: contributions are rounded to :data:`TIE_DECIMALS` decimals and
    sorted by absolute value, largest first; equal contributions keep the
    indicators' order in the spec.  The result does not depend on the order of
    the rows of the data.
    """
    if int(n) < 1:
        raise ValueError(f"n must be at least 1, got {n!r}")
    return _drivers(result, _Frame(result, reference, survey_round), int(n), locations)


def _drivers(result, fr: _Frame, n: int, locations: Iterable | None) -> pd.DataFrame:
    C, ids, _ = _contribution_matrix(fr, 1)
    spec = result.spec
    keys = _key_names(spec)
    keep = _row_mask(result, fr.index, None, locations)
    sel = np.arange(len(fr.index)) if keep is None else np.flatnonzero(keep)
    C = np.nan_to_num(C[sel], nan=0.0)
    parts = []
    for effect, sign in ((HELPS, 1), (HOLDS_BACK, -1)):
        rows, cols, order = _ranked(C, n, sign, min_driver(spec))
        parts.append((effect, sign, rows, cols, order))
    rows = np.concatenate([p[2] for p in parts])
    cols = np.concatenate([p[3] for p in parts])
    effect = np.concatenate([np.full(len(p[2]), p[0], dtype=object) for p in parts])
    rank_effect = np.concatenate([np.full(len(p[2]), i) for i, p in enumerate(parts)])
    order = np.concatenate([p[4] for p in parts])
    final = np.lexsort((order, rank_effect, rows))
    rows, cols, effect, order = rows[final], cols[final], effect[final], order[final]
    at = sel[rows]
    index = fr.index[at]
    out = pd.DataFrame({k: np.asarray(index.get_level_values(k)) for k in keys})
    out["effect"] = effect
    out["order"] = order
    out["indicator"] = np.array(ids, dtype=object)[cols] if len(cols) else np.array([], dtype=object)
    out["pillar"] = out["indicator"].map({i.id: i.parent for i in spec.indicators})
    out["label"] = out["indicator"].map({i.id: i.label or i.id for i in spec.indicators})
    out["contribution"] = C[rows, cols] + 0.0 if len(rows) else np.array([], dtype=float)
    norm = np.column_stack([fr.loc[c] for c in ids])
    ref = np.column_stack([fr.ref[c] for c in ids])
    out["score"] = norm[at, cols] + 0.0 if len(rows) else np.array([], dtype=float)  # no -0.0
    out["reference"] = ref[at, cols] + 0.0 if len(rows) else np.array([], dtype=float)
    out["answer"], out["phrase"] = _word_cells(result, index, out["indicator"].to_numpy(), out["score"].to_numpy())
    return out


def _key_names(spec) -> list[str]:
    c = spec.columns
    return [c.location] + ([c.round] if c.round else [])


def _word_cells(result, index: pd.Index, indicators: np.ndarray, scores: np.ndarray) -> tuple[list, list]:
    """Answers and phrases for (row of ``index``, indicator) pairs."""
    spec = result.spec
    n = len(index)
    answers = np.empty(n, dtype=object)
    phrases = np.empty(n, dtype=object)
    if not n:
        return [], []
    raw = result.stage("raw")
    den = result.stage("denominated")
    pos_raw = raw.index.get_indexer(index)
    pos_den = den.index.get_indexer(index)
    for ind in dict.fromkeys(indicators.tolist()):
        words = _Words(spec, ind)
        rows = np.flatnonzero(indicators == ind)
        values = raw[ind].to_numpy(dtype=float)[pos_raw[rows]]
        rates = den[ind].to_numpy(dtype=float)[pos_den[rows]] if spec.indicator(ind).denominator \
            else np.full(len(rows), np.nan)
        imputed = np.isnan(values) & ~np.isnan(scores[rows])
        ph, an = _phrases(words, values, rates, imputed)
        phrases[rows] = ph
        answers[rows] = an
    return answers.tolist(), phrases.tolist()


# --------------------------------------------------------------------------- summary lines
def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _where_names(result, index: pd.Index, reference: str) -> np.ndarray:
    """``the Mopti median`` / ``the national median`` per row."""
    spec = result.spec
    if reference == "national":
        return np.full(len(index), "the national median", dtype=object)
    region = spec.columns.admin[0]
    names = spec.columns.admin_names[0] if spec.columns.admin_names else None
    units = result.units.reindex(index)
    code = units[region]
    name = units[names] if names and names in units.columns else code
    name = name.where(name.notna(), code).astype(object)
    return np.array([f"the {x} median" if isinstance(x, str) or x == x else "the regional median"
                     for x in name.tolist()], dtype=object)


def summary_lines(result, reference: str = "region", *, n: int = 2, survey_round=None,
                  locations: Iterable | None = None, tolerance: float | None = None) -> pd.Series:
    """One line of plain words per location and round: how it compares with its reference, and why.

    ``"Less stable than the Mopti median (41.2 against 50.3), mainly because: armed
    groups present in or near the location and robbery in the last 3 months.
    Helped by: no tension between communities."``

    Parameters
    ----------
    result : Result
    reference : {"region", "national"}
    n : int
        Indicators named as the main reasons (those whose contributions have the
        sign of the gap, largest first); one indicator of the other sign is
        named after them.
    survey_round, locations : optional
        Only this round, only these locations.
    tolerance : float, optional
        Index points within which a location is "about as stable as" the
        median; default :data:`ABOUT_THE_SAME` of the index's range (1 point on
        0-100), or 0 when the index has no fixed range.

    Returns
    -------
    Series
        Indexed like the stage tables (location[, round]); text.

    Notes
    -----
    "More / less stable than the median" compares the index with the true
    median of the index in the reference group.  The reasons are the largest
    contributions to the gap to the median location profile (see
    :func:`contributions`); when that gap and the gap to the true median have
    opposite signs, or the gap to the median is within ``tolerance``, the line
    says "about as stable as" and names the largest contribution of each sign.
    """
    spec = result.spec
    if tolerance is None:
        rng = spec.index_range()
        tolerance = ABOUT_THE_SAME * (rng[1] - rng[0]) if rng else 0.0
    fr = _Frame(result, reference, survey_round)
    keep = _row_mask(result, fr.index, None, locations)
    sel = np.arange(len(fr.index)) if keep is None else np.flatnonzero(keep)
    index = fr.index[sel]
    d = _drivers(result, fr, max(int(n), 1), locations)
    keys = _key_names(spec)
    found = pd.MultiIndex.from_frame(d[keys]) if len(keys) > 1 else pd.Index(d[keys[0]])
    pos = index.get_indexer(found) if len(d) else np.array([], dtype=int)
    helps = [[] for _ in range(len(index))]
    hurts = [[] for _ in range(len(index))]
    for p, eff, ph in zip(pos.tolist(), d["effect"].tolist(), d["phrase"].tolist()):
        (helps if eff == HELPS else hurts)[p].append(ph)
    root = spec.root.id
    score = fr.loc[root][sel]
    median = fr.ref_median[sel]
    gap = (fr.loc[root] - fr.ref[root])[sel]
    where = _where_names(result, index, reference)
    lines = []
    for i in range(len(index)):
        s, m, g = score[i], median[i], gap[i]
        if not math.isfinite(s):
            lines.append("Not scored: too few answers for the index.")
            continue
        if not math.isfinite(m):
            lines.append(f"No {where[i].removeprefix('the ')} to compare with.")
            continue
        diff = s - m
        up, down = helps[i], hurts[i]
        if abs(diff) <= tolerance:
            head = f"About as stable as {where[i]} ({s:.1f} against {m:.1f})"
        else:
            head = f"{'More' if diff > 0 else 'Less'} stable than {where[i]} ({s:.1f} against {m:.1f})"
        main = up if diff > 0 else down
        if abs(diff) > tolerance and math.isfinite(g) and diff * g > 0 and main:
            other = down if diff > 0 else up
            text = f"{head}, mainly because: {_join(main[:n])}."
            if other:
                text += f" {'Held back by' if diff > 0 else 'Helped by'}: {other[0]}."
        else:
            text = f"{head}."
            if up:
                text += f" Helped by: {_join(up[:n])}."
            if down:
                text += f" Held back by: {_join(down[:n])}."
        lines.append(text)
    return pd.Series(lines, index=index, name="summary", dtype=object)
