"""The vectorised engine: fitted configurations of the data-driven steps, and the index, ranks,
categories and changes of a chunk of replicates computed as array operations."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import MethodError
from .choices import _needs_positive, _Plan

#: The steps whose fitted parameters a configuration of the data-driven choices changes.
DATA_STEPS = ("denominated", "imputed", "treated", "normalised")
#: Range onto which scores are mapped for the means that need positive scores.
POSITIVE_RANGE = (1.0, 100.0)


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
        from ..spec import step_signatures

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
        from ..spec import step_signatures

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
        from ..aggregate import _weighted_mean

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
        from ..resample import Replay

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


