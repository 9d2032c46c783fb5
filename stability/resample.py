"""The key-informant bootstrap, vectorised: resampled combined values, then the pipeline replayed on them.

:func:`stability.change.informant_bootstrap` resamples, in every location and round,
as many key informants as it had (with replacement, their answers together) and
recomputes the whole index from the resampled answers: about half a second per
replicate on the embedded survey.  The uncertainty analysis needs thousands of
replicates on surveys of tens of thousands of locations, so this module splits the
work in two:

* :class:`InformantResampler` gives the *combined* values of each replicate (the
  table :func:`stability.pipeline.prepare` would build from the resampled answers),
  drawing exactly the informants ``informant_bootstrap`` draws with the same seed;
* :func:`replay` (or a :class:`Replay`, built once per nominal run and called on
  batch after batch) takes those values through denomination, imputation, outlier
  treatment and normalisation with the parameters fitted on the nominal run, so that
  only the informant sample varies.

How a replicate costs about a millisecond
-----------------------------------------
A resample of the ``k`` informants of a location is a multiset: which informant was
drawn how often.  There are ``C(2k - 1, k)`` of them (3 for ``k = 2``, 10 for
``k = 3``, 35 for ``k = 4``, 126 for ``k = 5``).  The combined value of every
location for every multiset is computed once, with the combine rules of
:mod:`stability.combine` (median, mode with ties averaged, mean; missing answers
ignored; each indicator its own rule), into one table.  A replicate then only draws
the random numbers, turns each location's draws into the number of its multiset
(``sum((k + 1) ** pick)``: the counts of each informant in base ``k + 1``, looked up
in a small array) and gathers the rows of the table.

Locations whose table would be large (more multisets than :data:`MAX_PATTERNS`, or
past the memory budget :data:`TABLE_BYTES`) are combined directly from the drawn
answers in each replicate instead; so are, in the rare case of two spellings of
one round, locations whose informants ``informant_bootstrap`` resamples in two
groups.

Exactness: medians and modes are the same numbers as ``prepare`` gives on the
resampled answers (tests compare them bit for bit).  Means are sums of the same
answers, but ``prepare`` adds them in the order they were drawn (pandas adds a
group's values with ``np.add.reduceat`` when the table has no missing value, else one
by one with Kahan compensation), the table in the order of the informants, always with
Kahan compensation: a mean of answers that are not whole numbers can differ in its
last bit.
"""

from __future__ import annotations

import itertools
from functools import partial
from math import comb

import numpy as np
import pandas as pd

from .parallel import run_all

#: Memory budget (bytes) of the table of combined values per location and multiset.  With
#: 30 indicators, a location with 3, 4, 5 informants takes 2.4, 8.4, 30 kB of it: 10,000
#: locations with 3 to 5 informants take about 140 MB, 20,000 about 280 MB.  The locations with
#: the fewest informants are tabulated first; past the budget, the remaining locations (those with
#: the most informants) are combined directly in each replicate, which costs about 25 times as
#: much per location: raise ``table_bytes`` when memory allows.
TABLE_BYTES = 256 * 2**20
#: Most multisets tabulated per location (126 = 5 informants); locations with more informants
#: (462 multisets for 6) are combined directly in each replicate.
MAX_PATTERNS = 126
#: Cells that :func:`replay` takes through the steps at a time (rows of one replicate; 512 kB of
#: float64, so that a block stays in the processor's cache through every step).
REPLAY_CHUNK = 2**16
#: Memory (bytes) of the resampled answers expanded at a time while the table is built.
_BUILD_BYTES = 32 * 2**20


# --------------------------------------------------------------------------- combine rules on arrays
def _kahan_mean(values: np.ndarray, use: np.ndarray) -> np.ndarray:
    """Mean over axis -2 of ``values`` where ``use``: added in order with Kahan compensation, as pandas'
    grouped mean adds a group's values when the table has missing values, then divided by their count."""
    total = np.zeros(values.shape[:-2] + values.shape[-1:])
    comp = np.zeros_like(total)
    count = np.zeros(total.shape, dtype=np.int64)
    with np.errstate(invalid="ignore", over="ignore"):
        for i in range(values.shape[-2]):
            v, m = values[..., i, :], use[..., i, :]
            y = v - comp
            t = total + y
            c = t - total - y
            c = np.where(np.isnan(c), 0.0, c)
            total = np.where(m, t, total)
            comp = np.where(m, c, comp)
            count += m
        with np.errstate(divide="ignore"):
            out = total / count
    out[count == 0] = np.nan
    return out


def _median(values: np.ndarray) -> np.ndarray:
    """Median over axis -2, ignoring NaN (NaN when no value): ``(upper + lower) / 2`` for an even count."""
    k = values.shape[-2]
    s = np.sort(values, axis=-2)  # NaN last
    m = np.count_nonzero(~np.isnan(values), axis=-2)
    hi = np.take_along_axis(s, np.minimum(m // 2, k - 1)[..., None, :], axis=-2)[..., 0, :]
    lo = np.take_along_axis(s, np.maximum((m - 1) // 2, 0)[..., None, :], axis=-2)[..., 0, :]
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.where(m % 2 == 1, hi, (hi + lo) / 2)
    out[m == 0] = np.nan
    return out


def _mode(values: np.ndarray) -> np.ndarray:
    """Most frequent value over axis -2, ignoring NaN; ties: mean of the tied values.

    The tied values are added as pandas adds them in :func:`stability.combine._mode` (its grouped
    mean of sorted values without missing ones: ``np.add.reduceat`` over each group, ascending),
    so that the results are the same numbers.
    """
    k = values.shape[-2]
    s = np.sort(values, axis=-2)  # NaN last
    count = np.zeros(s.shape, dtype=np.int16)
    for j in range(k):
        count += s == s[..., j:j + 1, :]  # NaN equals nothing: count 0
    first = np.ones(s.shape, dtype=bool)
    first[..., 1:, :] = s[..., 1:, :] != s[..., :-1, :]
    top = count.max(axis=-2)
    tied = first & (count == top[..., None, :]) & (count > 0)
    # each cell's tied values, ascending, one cell after the other
    s, tied = np.moveaxis(s, -2, -1), np.moveaxis(tied, -2, -1)  # (..., p, k)
    n_tied = np.count_nonzero(tied, axis=-1)
    out = np.full(n_tied.shape, np.nan)
    some = n_tied > 0
    if some.any():
        flat = s[tied]
        sizes = n_tied[some]
        out[some] = np.add.reduceat(flat, np.cumsum(sizes) - sizes) / sizes.astype(float)
    return out


def _mean(values: np.ndarray) -> np.ndarray:
    """Mean over axis -2 of the non-missing values, in their order (NaN when none)."""
    return _kahan_mean(values, ~np.isnan(values))


_RULES = {"median": _median, "mode": _mode, "mean": _mean}


def combine_stack(values: np.ndarray, rules: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """Combine stacked informant answers, as :func:`stability.combine.combine` does per group.

    Parameters
    ----------
    values : ndarray, shape (..., k, p)
        The answers of ``k`` informants (NaN = missing), in the order pandas would
        meet them, to ``p`` indicators.
    rules : list of (str, ndarray)
        Combine method (``median``, ``mode``, ``mean``) and the indicator positions it applies to.

    Returns
    -------
    ndarray, shape (..., p)
    """
    out = np.empty(values.shape[:-2] + values.shape[-1:])
    for method, cols in rules:
        sub = values if len(cols) == values.shape[-1] else values[..., cols]
        out[..., cols] = _RULES[method](sub)
    return out


def _rules(spec) -> list[tuple[str, np.ndarray]]:
    by: dict[str, list[int]] = {}
    for j, ind in enumerate(spec.indicators):
        by.setdefault(spec.combine_method(ind), []).append(j)
    return [(m, np.asarray(cols, dtype=np.intp)) for m, cols in by.items()]


def _patterns(k: int) -> tuple[np.ndarray, np.ndarray]:
    """The multisets of ``k`` draws among ``k`` informants.

    Returns
    -------
    members : ndarray, shape (C(2k-1, k), k)
        Each multiset as its informants, ascending (informant ``i`` repeated as often as drawn).
    lookup : ndarray, shape ((k + 1) ** k,)
        Multiset number of each code ``sum((k + 1) ** pick)`` (-1 for codes that are no multiset).
    """
    members = np.array(list(itertools.combinations_with_replacement(range(k), k)), dtype=np.intp).reshape(-1, k)
    codes = ((k + 1) ** members).sum(axis=1)
    lookup = np.full((k + 1) ** k, -1, dtype=np.int64)
    lookup[codes] = np.arange(len(members))
    return members, lookup


# --------------------------------------------------------------------------- the resampler
class InformantResampler:
    """Combined values of key-informant bootstrap replicates, without recomputing the pipeline.

    Replicate ``r`` with seed ``seed`` resamples the informants exactly as
    :func:`stability.change.informant_bootstrap` does (``np.random.default_rng([seed, r])``,
    the same draws over the same groups of answers), and gives the values
    :func:`stability.pipeline.prepare` would combine from those answers.

    Parameters
    ----------
    data : Dataset
        The survey (:func:`stability.io.load_dataset`), one row per key informant.
    spec : IndexSpec
        With ``columns.key_informant`` set.
    prepared : Prepared, optional
        ``prepare(data, spec)``, when already computed (else it is computed, without validation).
    table_bytes : int
        Memory budget of the precomputed table (default :data:`TABLE_BYTES`).
    max_patterns : int
        Most multisets tabulated per location (default :data:`MAX_PATTERNS`).

    Attributes
    ----------
    index_ : Index
        The units (location[, round]), as ``prepared.values.index``.
    columns_ : list of str
        The indicator ids, as ``prepared.values.columns``.
    n_informants_ : ndarray of int
        Key informants per unit.
    single_ : ndarray of bool
        Units with a single informant: their values never vary between replicates.
    tabulated_ : ndarray of bool
        Units whose replicates are read from the table (the others are combined directly).
    table_nbytes_ : int
        Size of the table in bytes.

    Raises
    ------
    ValueError
        When the answers are one row per location, or ``prepared`` does not come from these answers.

    Examples
    --------
    >>> rs = InformantResampler(data, spec)                            # doctest: +SKIP
    >>> raw = rs.draw(range(1000), seed=0)   # (1000, units, indicators)
    >>> normalised = replay(result, raw)
    """

    def __init__(self, data, spec, prepared=None, *, table_bytes: int = TABLE_BYTES,
                 max_patterns: int = MAX_PATTERNS):
        from .combine import encode
        from .pipeline import _as_round, prepare

        c = spec.columns
        if not c.key_informant:
            raise ValueError("the answers are one row per location (no columns.key_informant): there are no key "
                             "informants to resample")
        if prepared is None:
            prepared = prepare(data, spec, check=False)
        values = prepared.values
        if list(values.columns) != spec.indicator_ids:
            raise ValueError("the prepared values do not have the spec's indicators")
        answers = data.answers
        keys = [c.location] + ([c.round] if c.round else [])
        self.spec = spec
        self.index_ = values.index
        self.columns_ = list(values.columns)
        n, p = values.shape
        self._rules = _rules(spec)

        # the groups informant_bootstrap resamples in, in its order
        groups = list(answers.groupby(keys, sort=True).indices.values())
        sizes = np.array([len(g) for g in groups], dtype=np.int64)
        self._members = np.concatenate(groups).astype(np.intp) if groups else np.empty(0, dtype=np.intp)
        self._gstarts = (np.cumsum(sizes) - sizes).astype(np.intp)
        self._sizes = np.repeat(sizes, sizes)  # per member: its group's size
        self._starts = np.repeat(self._gstarts, sizes)  # per member: its group's first position

        # the unit (row of prepared.values) of each answer row, from the keys as prepare groups them
        frame = pd.DataFrame({k: answers[k].array for k in keys})
        if c.round:
            frame[c.round] = _as_round(frame[c.round])
        by_unit = frame.groupby(keys, sort=True)
        unit_keys = by_unit.size().index
        where = np.asarray(values.index.get_indexer(unit_keys), dtype=np.intp)
        number = by_unit.ngroup().to_numpy(dtype=float, na_value=np.nan)  # NaN: a missing key
        number = np.where(np.isnan(number), -1, number).astype(np.intp)
        unit_of_row = np.where(number >= 0, where[np.maximum(number, 0)], -1)
        unit_of_group = unit_of_row[self._members[self._gstarts]] if len(groups) else np.empty(0, dtype=np.intp)
        counts = np.bincount(unit_of_group[unit_of_group >= 0], weights=sizes[unit_of_group >= 0],
                             minlength=n).astype(np.int64)
        groups_per_unit = np.bincount(unit_of_group[unit_of_group >= 0], minlength=n)
        if n and (counts == 0).any():
            missing = self.index_[np.flatnonzero(counts == 0)[0]]
            raise ValueError(f"unit {missing!r} of the prepared values has no key informant in these answers")
        if "n_informants" in prepared.units.columns:
            expected = pd.to_numeric(prepared.units["n_informants"], errors="coerce").to_numpy()
            if not np.array_equal(expected, counts):
                raise ValueError("the prepared values do not come from these answers (informants per unit differ)")
        self.n_informants_ = counts
        self.single_ = counts == 1

        self._codes = encode(answers, spec).to_numpy(dtype=float)

        # which units are tabulated: one resampling group, few multisets, within the memory budget
        one_group = groups_per_unit == 1
        group_of_unit = np.full(n, -1, dtype=np.intp)
        mapped = np.flatnonzero(unit_of_group >= 0)
        group_of_unit[unit_of_group[mapped]] = mapped
        tab_sizes, used = [], 0
        tabulated = np.zeros(n, dtype=bool)
        for k in sorted(set(counts[one_group].tolist())):
            n_pat = comb(2 * k - 1, k)
            if n_pat > max_patterns or (k + 1) ** k > 2**26:
                break
            units = np.flatnonzero(one_group & (counts == k))
            per_unit = n_pat * p * 8
            # the units of this size that fit in the budget (all, or the first ones: the rest are combined directly)
            fit = min(len(units), max(0, (table_bytes - used) // per_unit)) if per_unit else len(units)
            if fit:
                tabulated[units[:fit]] = True
                used += fit * per_unit
                tab_sizes.append(k)
            if fit < len(units):
                break
        self.tabulated_ = tabulated
        self._build_table(tab_sizes, tabulated, group_of_unit, counts, n, p)

        # per member, the row of its group's size in the power table: a draw of informant j of k adds
        # (k + 1) ** j to the group's code (tabulated sizes only; codes are whole numbers below 2 ** 26)
        smax = int(sizes.max()) if len(sizes) else 1
        power = np.zeros((smax + 1, smax))
        for k in tab_sizes:
            power[k, :k] = (k + 1.0) ** np.arange(k)
        self._power = power.ravel()
        self._power_row = (self._sizes * smax).astype(np.intp)
        self._size_f = self._sizes.astype(float)
        self._group_of_member = np.repeat(np.arange(len(sizes), dtype=np.intp), sizes)

        # units combined directly: their informants' positions in the member order, by count, and the
        # offset from a member's power-table index to the position of the informant it draws
        self._direct = []
        rest = np.flatnonzero(~tabulated)
        if rest.size:
            unit_of_member = np.repeat(unit_of_group, sizes)
            pos = np.flatnonzero(np.isin(unit_of_member, rest))
            pos = pos[np.argsort(unit_of_member[pos], kind="stable")]  # member order within a unit
            owner = unit_of_member[pos]
            for k in sorted(set(counts[rest].tolist())):
                units = rest[counts[rest] == k]
                at = pos[np.isin(owner, units)].reshape(len(units), k)
                self._direct.append((units, at, self._starts[at] - self._power_row[at]))

    def _build_table(self, tab_sizes, tabulated, group_of_unit, counts, n, p) -> None:
        """The combined values of every tabulated unit and multiset, and the lookups of a replicate."""
        classes = [(k, np.flatnonzero(tabulated & (counts == k))) for k in tab_sizes]
        n_rows = sum(len(units) * comb(2 * k - 1, k) for k, units in classes)
        self._table = np.empty((n_rows + 1, p))
        self._table[n_rows] = np.nan  # the row gathered for units combined directly
        self.table_nbytes_ = int(self._table.nbytes)
        base, lut_parts, lut_offset = np.zeros(n, dtype=np.int64), [], {}
        offset = lut_at = 0
        for k, units in classes:
            members, lookup = _patterns(k)
            n_pat = len(members)
            lut_offset[k] = lut_at
            lut_parts.append(lookup)
            lut_at += len(lookup)
            rows = self._members[self._gstarts[group_of_unit[units]][:, None] + np.arange(k)]  # (units, k)
            answers = self._codes[rows]  # (units, k, p)
            table = self._table[offset:offset + len(units) * n_pat].reshape(len(units), n_pat, p)
            for method, cols in self._rules:
                # the answers of a unit to one indicator: units that gave the same answers share their values
                sub = answers[:, :, cols].transpose(0, 2, 1).reshape(-1, k)  # (units * indicators, k)
                uniq, inverse = _unique_rows(sub)
                value = np.empty((len(uniq), n_pat))
                step = max(1, _BUILD_BYTES // (n_pat * k * 8 * 4))
                # blocks of rows, on threads (numpy sorts and copies without the GIL); each row's values
                # depend on that row alone
                run_all([partial(_combine_patterns, value, uniq, a, step, members, method)
                         for a in range(0, len(uniq), step)], len(uniq) * n_pat * k)
                inverse = inverse.reshape(len(units), len(cols))
                step = max(1, (_BUILD_BYTES // 8) // (len(cols) * n_pat))
                run_all([partial(_spread, table, value, inverse, a, step, cols, p)
                         for a in range(0, len(units), step)], len(units) * len(cols) * n_pat)
            base[units] = offset + np.arange(len(units), dtype=np.int64) * n_pat
            offset += len(units) * n_pat
        self._lut = np.concatenate(lut_parts) if lut_parts else np.zeros(1, dtype=np.int64)
        t_units = np.flatnonzero(tabulated)
        by_size = np.zeros(int(counts.max(initial=0)) + 1, dtype=np.int64)
        for k, at in lut_offset.items():
            by_size[k] = at
        t_groups = group_of_unit[t_units]
        # usually every unit is tabulated and is the group of the same rank: no scatter needed
        self._identity = bool(len(t_units) == n == len(self._gstarts) and np.array_equal(t_groups, t_units))
        self._t_units, self._t_groups = t_units, t_groups
        self._t_lut = by_size[counts[t_units]]
        self._t_base = base[t_units]
        self._flat = np.full(n, offset, dtype=np.int64)  # non-tabulated units: the NaN row

    def draw(self, replicates, seed: int = 0, out: np.ndarray | None = None) -> np.ndarray:
        """The combined values of some bootstrap replicates.

        Parameters
        ----------
        replicates : int or sequence of int
            Replicate ids (an int ``n`` means ``range(n)``).  Replicate ``r`` is the
            same whatever other ids are drawn with it, so replicates can be drawn in chunks.
        seed : int
            As the seed of :func:`stability.change.informant_bootstrap`.
        out : ndarray, optional
            Float64 array of the result's shape to write into: drawing chunk after chunk into
            one buffer saves the time of allocating (and first touching) fresh memory.

        Returns
        -------
        ndarray of float64, shape (len(replicates), units, indicators)
            Rows and columns as ``prepared.values``; ``draw([r], seed)[0]`` is
            ``prepare(sample, spec).values`` of the answers ``informant_bootstrap``
            resamples in its replicate ``r``.
        """
        ids = range(int(replicates)) if np.ndim(replicates) == 0 else [int(r) for r in replicates]
        n, p = len(self.index_), len(self.columns_)
        shape = (len(ids), n, p)
        if out is None:
            out = np.empty(shape)
        elif out.shape != shape or out.dtype != np.float64 or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous float64 array of shape {shape}")
        flat = self._flat.copy()
        n_groups = len(self._gstarts)
        u = np.empty(len(self._members))
        at = np.empty(len(self._members), dtype=np.intp)
        for i, r in enumerate(ids):
            rng = np.random.default_rng([seed, r])
            rng.random(out=u)
            # informant_bootstrap's floor(u * size): u * size >= 0, so truncation is the floor
            np.copyto(at, np.multiply(u, self._size_f, out=u), casting="unsafe")
            at += self._power_row  # index of (size, pick) in the power table
            if len(self._t_units):
                code = np.bincount(self._group_of_member, weights=self._power.take(at), minlength=n_groups)
                code = code.astype(np.intp)
                if self._identity:
                    np.add(self._t_base, self._lut.take(code + self._t_lut), out=flat)
                else:
                    flat[self._t_units] = self._t_base + self._lut.take(code[self._t_groups] + self._t_lut)
            np.take(self._table, flat, axis=0, out=out[i], mode="clip")  # indices are valid
            for units, pos, shift in self._direct:
                rows = self._members[at[pos] + shift]  # (units, k): the drawn informants, in the drawn order
                out[i, units] = combine_stack(self._codes[rows], self._rules)
        return out


def _combine_patterns(value, uniq, a: int, step: int, members, method: str) -> None:
    """Combined values of the answer tuples ``uniq[a:a + step]`` for every multiset (rows of ``value``)."""
    value[a:a + step] = _RULES[method](uniq[a:a + step][:, members, None])[..., 0]


def _spread(table, value, inverse, a: int, step: int, cols, p: int) -> None:
    """The table rows of units ``a:a + step``: each unit's combined values, indicator by indicator."""
    spread = value[inverse[a:a + step]].transpose(0, 2, 1)  # (units, multisets, indicators)
    if len(cols) == p:
        table[a:a + step] = spread
    else:
        table[a:a + step, :, cols] = spread


def _unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a float matrix (every NaN alike) and the position of each row among them."""
    rows = np.ascontiguousarray(np.where(np.isnan(rows), np.nan, rows))
    if rows.shape[0] == 0:
        return rows, np.empty(0, dtype=np.intp)
    key = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return rows[first], inverse.reshape(-1)


# --------------------------------------------------------------------------- replay
def _fill_table(result) -> np.ndarray:
    """Per unit and indicator, the value the nominal run's imputation puts in the cell when it is missing."""
    from .impute import IMPUTERS

    spec = result.spec
    s = spec.impute
    den = result.stage("denominated")
    n, p = den.shape
    fill = IMPUTERS[s.method]
    if fill.func is None:
        return np.full((n, p), np.nan)
    frame = pd.DataFrame({j: den.iloc[:, j].to_numpy(dtype=float, na_value=np.nan) for j in range(p)})
    rnd = spec.columns.round
    strata = ([pd.Series(result.prepared.values.index.get_level_values(rnd).to_numpy())]
              if rnd and spec.normalise.scope != "pooled" else [])
    groups = [pd.Series(result.units[s.group].to_numpy())] if fill.grouped else []
    empty = pd.DataFrame(np.nan, index=frame.index, columns=frame.columns)
    filled = empty.fillna(fill.func(frame, strata + groups))
    back = IMPUTERS[s.fallback]
    if back.func is not None and groups:
        filled = filled.fillna(back.func(frame, strata))
    return filled.to_numpy(dtype=float)


def _apply_fitted(steps: dict | None, cols: list[np.ndarray], columns: list[str], labels) -> list[np.ndarray]:
    """Apply each scope group's fitted step to its rows (``labels``: each row's round), as ``pipeline._fit_apply``
    applies them: one step for every row when there is one, else the step of each round to that round's rows."""
    if not steps:
        return cols
    if len(steps) == 1:  # pooled, reference round, or a single round: one step for every row
        return list(next(iter(steps.values())).transform(cols, columns))
    out = list(cols)
    for label, step in steps.items():
        rows = np.flatnonzero(labels == label)
        if not rows.size:
            continue
        sub = [col[rows] for col in cols]
        part = step.transform(sub, columns)
        for j in range(len(cols)):
            if part[j] is sub[j]:
                continue
            if out[j] is cols[j]:
                out[j] = cols[j].copy()
            out[j][rows] = part[j]
    return out


class Replay:
    """The later steps of a nominal run, fitted once, ready to replay replicate raw values.

    Holds what :func:`replay` needs from the result (the imputation's fill values, the
    denominators, the fitted outlier treatment and normalisation of each scope group and
    the round of each unit), so that replaying many batches of replicates through one
    configuration computes them once.  Each block of rows runs through every step as a
    (rows, indicators) matrix (:meth:`~stability.treat.OutlierTreatment.transform_matrix`,
    :meth:`~stability.normalise.Normaliser.transform_matrix`), while it stays in the
    processor's cache.

    Parameters
    ----------
    result : Result
        The nominal run (:func:`stability.pipeline.compute`).

    Examples
    --------
    >>> steps = Replay(result)                                        # doctest: +SKIP
    >>> normalised = steps(rs.draw(range(100), seed=0))
    """

    def __init__(self, result):
        spec = result.spec
        values = result.prepared.values
        self.shape = values.shape
        n, p = values.shape
        self.columns = list(values.columns)
        fill = np.ascontiguousarray(_fill_table(result), dtype=float)
        self.fill = None if np.isnan(fill).all() else fill  # nothing to fill with: missing cells stay missing
        divisor = None
        for j, name in enumerate(self.columns):  # as stability.denominate
            ind = spec.indicator(name)
            if ind.denominator:
                den = pd.to_numeric(result.units[ind.denominator], errors="coerce").to_numpy(dtype=float,
                                                                                           na_value=np.nan)
                if divisor is None:
                    divisor = np.ones((n, p))  # x / 1.0 is x
                divisor[:, j] = np.where(den > 0, den, np.nan) / ind.denominator_scale
        self.divisor = divisor
        rnd = spec.columns.round
        rounds = values.index.get_level_values(rnd).to_numpy() if rnd else None
        self.steps = []  # (fitted steps, each unit's scope group number or None)
        for stage in ("treated", "normalised"):
            fitted = result.fitted.get(stage)
            if not fitted:
                continue
            if len(fitted) == 1:  # one step for every row
                self.steps.append(([next(iter(fitted.values()))], None))
                continue
            code = np.full(n, -1, dtype=np.intp)
            for k, label in enumerate(fitted):
                code[rounds == label] = k
            self.steps.append((list(fitted.values()), code))

    def __call__(self, raw, *, out: np.ndarray | None = None, chunk_cells: int = REPLAY_CHUNK) -> np.ndarray:
        """Normalised values of replicate raw values (see :func:`replay`).

        Parameters
        ----------
        raw : array_like, shape (R, units, indicators)
        out : ndarray, optional
            C-contiguous float64 array of ``raw``'s shape to write into; may be ``raw`` itself.
        chunk_cells : int
            Cells taken through the steps at a time (rows of one replicate).
        """
        n, p = self.shape
        raw = np.asarray(raw, dtype=float)
        if raw.ndim != 3 or raw.shape[1:] != (n, p):
            raise ValueError(f"raw values must have shape (replicates, {n}, {p}), got {raw.shape}")
        if out is None:
            out = np.empty(raw.shape)
        elif out.shape != raw.shape or out.dtype != np.float64 or not out.flags.c_contiguous:
            raise ValueError(f"out must be a C-contiguous float64 array of shape {raw.shape}")
        in_place = out is raw
        step = max(1, min(n, int(chunk_cells) // max(p, 1)))
        gap = np.empty((step, p), dtype=bool)
        columns = self.columns
        with np.errstate(divide="ignore", invalid="ignore"):
            for r in range(raw.shape[0]):
                for u0 in range(0, n, step):
                    u1 = min(n, u0 + step)
                    x = out[r, u0:u1]
                    src = raw[r, u0:u1]
                    if self.divisor is not None:
                        np.divide(src, self.divisor[u0:u1], out=x)
                    elif not in_place:
                        np.copyto(x, src)
                    if self.fill is not None:
                        g = np.isnan(x, out=gap[:u1 - u0])
                        np.copyto(x, self.fill[u0:u1], where=g)
                    for steps, code in self.steps:
                        if code is None:
                            steps[0].transform_matrix(x, columns, out=x)
                            continue
                        block = code[u0:u1]
                        for k, fitted in enumerate(steps):
                            rows = np.flatnonzero(block == k)
                            if rows.size:
                                sub = x[rows]
                                x[rows] = fitted.transform_matrix(sub, columns, out=sub)
        return out


def replay(result, raw, *, chunk_cells: int = REPLAY_CHUNK, out: np.ndarray | None = None) -> np.ndarray:
    """Normalised values of replicate raw values, with the nominal run's fitted parameters.

    Denomination (by the unit's own denominator), imputation (a cell missing in a
    replicate gets what the nominal run's imputation statistic gives for its group:
    e.g. the nominal median of its cercle and round, else the fallback), outlier
    treatment and normalisation (the fitted :class:`~stability.treat.OutlierTreatment`
    and :class:`~stability.normalise.Normaliser` of each scope group) are applied as
    the pipeline applies them, so only the informant sample varies between replicates.
    Each step runs on a block of rows as a matrix, with one parameter per column.

    A convenience over :class:`Replay`: replaying many batches through one result, build
    ``Replay(result)`` once and call it on each batch.

    Parameters
    ----------
    result : Result
        The nominal run (:func:`stability.pipeline.compute`).
    raw : array_like, shape (R, units, indicators)
        Replicate raw values aligned with ``result.prepared.values`` (e.g.
        :meth:`InformantResampler.draw`).
    chunk_cells : int
        Cells taken through the steps at a time (default :data:`REPLAY_CHUNK`): with
        every statistic fixed, a cell's result depends on its own row alone, so any
        chunking gives the same values; blocks that stay in the CPU cache are faster.
    out : ndarray, optional
        C-contiguous float64 array of ``raw``'s shape to write into; may be ``raw`` itself.

    Returns
    -------
    ndarray of float64, shape (R, units, indicators)
        ``replay(result, result.prepared.values.to_numpy()[None])[0]`` is
        ``result.stage("normalised").to_numpy()``.

    Raises
    ------
    ValueError
        When ``raw`` does not have the shape (replicates, units, indicators) of the result.
    """
    n, p = result.prepared.values.shape
    raw = np.asarray(raw, dtype=float)
    if raw.ndim != 3 or raw.shape[1:] != (n, p):
        raise ValueError(f"raw values must have shape (replicates, {n}, {p}), got {raw.shape}")
    return Replay(result)(raw, out=out, chunk_cells=chunk_cells)
