"""The pipeline: survey answers -> index, every stage kept, every step recorded.

``compute(data, spec)`` runs, in COINr's order::

    prepare      encode answers, combine key informants, attach the location register
    denominate   x / denominator
    impute       fill missing values (logged)
    treat        winsorise / log-transform outliers (logged)
    normalise    direction, then onto a common scale
    aggregate    level by level up to the index
    rank         national and within-region ranks, categories

and returns a :class:`Result` that keeps each stage's table, the audit log and
the fitted parameters.  ``result.recompute({"normalise.method": "zscore"})``
re-runs only the steps that the change affects: the index is a recipe.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from . import __version__
from .aggregate import aggregate
from .columns import as_columns, frame_columns, take_rows, to_frame
from .combine import Combined, combine, encode
from .denominate import denominate
from .exceptions import DataError, MethodError
from .impute import impute
from .normalise import Normaliser, resolve_methods
from .rank import categorise, categorise_quantiles, rank_desc
from .spec import IndexSpec
from .treat import STATUS_LOG, STATUS_WINSORISED, OutlierTreatment

STAGES = ("raw", "denominated", "imputed", "treated", "normalised", "aggregated")
LOG_COLUMNS = ["step", "location", "round", "column", "action", "before", "after", "detail"]

Progress = Callable[[str], None]


# --------------------------------------------------------------------------- prepare
@dataclass
class Prepared:
    """Location-level values ready for the numeric pipeline.

    Attributes
    ----------
    values : DataFrame
        Index (location[, round]), sorted; one float column per indicator
        (combined key-informant answers).
    units : DataFrame
        Same index: admin p-codes, names, coordinates, denominators, population
        counts, number of key informants.
    combined : Combined or None
        Disagreement between key informants (when answers are per informant).
    source : dict
        Dataset name, version (checksum), files and the ``illustrative`` flag.
    """

    values: pd.DataFrame
    units: pd.DataFrame
    combined: Combined | None = None
    source: dict = field(default_factory=dict)
    round_order: list = field(default_factory=list)


def _keys(spec: IndexSpec) -> list[str]:
    c = spec.columns
    return [c.location] + ([c.round] if c.round else [])


def _as_round(values: pd.Series) -> np.ndarray:
    """Round labels in canonical form (see :mod:`stability.rounds`)."""
    from .rounds import coerce

    return coerce(values)


def _numeric_or_text(col: pd.Series) -> pd.Series:
    """A descriptive column as numbers when every value is one, else as text (pandas' text type kept)."""
    if pd.api.types.is_numeric_dtype(col.dtype):
        return col
    text = col if pd.api.types.is_string_dtype(col.dtype) and col.dtype != object else None
    head = col.array[:256]
    head = head[~pd.isna(head)]
    if len(head) and pd.isna(pd.to_numeric(head, errors="coerce")).any():
        # a value that is not a number among the first ones: text (converting
        # every value of a long text column would only fail slowly)
        return text if text is not None else col.astype(object).where(col.notna(), None)
    num = pd.to_numeric(col, errors="coerce")
    if num.notna().sum() == col.notna().sum() and col.notna().any():
        return num
    return text if text is not None else col.astype(object).where(col.notna(), None)


def prepare(data, spec: IndexSpec, *, check: bool = True) -> Prepared:
    """Encode, validate and combine survey answers into location-level values.

    Parameters
    ----------
    data : Dataset, DataFrame, str or Path
        A :class:`~stability.io.Dataset`, a dataset folder or answers file, or a
        DataFrame of answers (per key informant or per location).
    spec : IndexSpec
    check : bool
        Validate the input first and raise :class:`~stability.exceptions.ValidationFailed`
        on the first error.
    """
    from .io import DATA_ROLES, Dataset, load_dataset

    if isinstance(data, pd.DataFrame):
        data = Dataset(answers=data, files={"answers": "answers"}, name="in-memory table")
    elif not isinstance(data, Dataset):
        data = load_dataset(data, spec=spec)
    version = ""
    known: dict = {}
    key_codes: dict = {}
    n_warnings = 0
    if check:
        from concurrent.futures import ThreadPoolExecutor
        from dataclasses import replace

        from .validate import validate

        # the data checksum is taken while the data are validated (hashing mostly releases the GIL), on
        # shallow copies of the tables so that neither thread sees the other reorganise a table's blocks
        tables = {r: getattr(data, r).copy(deep=False) for r in DATA_ROLES if getattr(data, r) is not None}
        with ThreadPoolExecutor(max_workers=1) as pool:
            checksum = pool.submit(lambda: replace(data, **tables).version)
            report = validate(data, spec)
            report.raise_for_errors()
            known, key_codes = report.codes, report.keys
            # rows with warnings (not the notices on whole files, which the readers print): said, not listed
            n_warnings = sum(1 + p.more for p in report.warnings if not p.notice)
            version = checksum.result()
    c = spec.columns
    keys = _keys(spec)
    answers = data.answers
    combined = None
    index, rows = (None, None) if c.key_informant else _sorted_keys(keys, key_codes, c.round)
    if index is not None:  # one row per unit, keys numbered by the validation: encode straight into place
        values = encode(answers, spec, known, rows=rows, index=index)
        n_ki = None
    else:
        coded = encode(answers, spec, known)
        for k in keys:
            coded[k] = answers[k].array  # as stored: text in pandas' string type is indexed faster than as objects
        if c.round:
            coded[c.round] = _as_round(coded[c.round])
        if c.key_informant:
            combined = combine(coded, spec)
            values = combined.values
            n_ki = combined.n_informants
        else:
            keyed = coded.set_index(keys)
            values = keyed[spec.indicator_ids].sort_index()
            # the answer row of each unit, in the order of ``values``
            rows = pd.Series(np.arange(len(keyed)), index=keyed.index).sort_index().to_numpy()
            n_ki = None
    values = values.astype(float)
    units = _units(data, spec, values.index, keys, n_ki, rows)
    if n_ki is not None and spec.combine.min_informants > 1:
        keep = (n_ki >= spec.combine.min_informants).reindex(values.index).to_numpy()
        values, units = values[keep], units[keep]
    source = {"name": data.name, "illustrative": data.illustrative, "files": dict(data.files),
              "version": version, "warnings": n_warnings}
    order = []
    if c.round:
        from .rounds import order as round_order

        order = round_order(values.index.get_level_values(c.round).unique(), spec)  # distinct rounds
    return Prepared(values=values, units=units, combined=combined, source=source, round_order=order)


def _sorted_keys(keys: list[str], key_codes: dict, round_col: str | None):
    """The sorted (location[, round]) index of one-row-per-unit answers and each unit's answer row.

    Uses the key numbers of the validation (``key_codes``) instead of indexing the
    key columns again; ``(None, None)`` when they are not available.
    """
    if not key_codes or any(k not in key_codes for k in keys):
        return None, None
    levels, codes = [], []
    for k in keys:
        k_codes, uniques = key_codes[k]
        if (k_codes < 0).any():
            return None, None
        if k == round_col:  # rounds in canonical form, as the rest of the pipeline sees them
            uniques = pd.Index(_as_round(pd.Series(np.asarray(uniques, dtype=object))))
            if uniques.has_duplicates:  # two spellings of one round: number them again
                return None, None
        uniques = pd.Index(uniques)
        try:
            order = uniques.argsort()  # distinct values: no ties; text stored by Arrow is sorted by Arrow
        except TypeError:  # keys of several types (numbers and text): let pandas order them
            return None, None
        rank = np.empty(len(order), dtype=np.intp)
        rank[order] = np.arange(len(order))
        levels.append(uniques.take(order))
        codes.append(rank[k_codes])
    rows = np.lexsort(codes[::-1])
    if len(keys) == 1:
        index = levels[0].take(codes[0][rows])
        index.name = keys[0]
    else:
        index = pd.MultiIndex(levels=levels, codes=[cd[rows] for cd in codes], names=keys,
                              verify_integrity=False)
    return index, rows


def _units(data, spec: IndexSpec, index: pd.Index, keys: list[str], n_ki,
           rows: np.ndarray | None = None) -> pd.DataFrame:
    """Per-unit descriptive columns, aligned on ``index``.

    ``rows`` (answers with one row per unit) gives the answer row of each entry
    of ``index``.  Columns that look like personal data (informant names, phones,
    GPS, free text: :mod:`stability.privacy`) are left out unless the spec names
    them (``columns.keep``).
    """
    from .privacy import left_out

    c = spec.columns
    loc = c.location
    wanted = [x for x in [c.name, *c.admin, *c.admin_names, c.longitude, c.latitude,
                          *[i.denominator for i in spec.indicators if i.denominator]] if x]
    units = pd.DataFrame(index=index)
    answers = data.answers
    personal = left_out(data, spec)
    skip = set(spec.indicator_ids) | set(keys) | ({c.key_informant} if c.key_informant else set())
    skip |= set(personal.get("answers", ()))
    rest = [col for col in answers.columns if col not in skip]
    if data.locations is not None:
        rest = [col for col in rest if col not in data.locations.columns]
    if rest and rows is not None and index.is_unique:
        # a unit's only row is its first one: take it rather than group
        own = answers[rest].take(rows)
        for col in rest:
            if own[col].dtype == object:
                own[col] = own[col].where(own[col].notna(), None)
        own.index = index
        units = units.join(own)
    elif rest:
        frame = answers[rest].copy()
        for k in keys:
            frame[k] = answers[k].to_numpy()
        if c.round:
            frame[c.round] = _as_round(frame[c.round])
        g = frame.groupby(keys, sort=True, dropna=False)
        if c.key_informant:
            constant = [col for col in rest if col in wanted or (g[col].nunique(dropna=False) <= 1).all()]
        else:
            constant = rest
        if constant:
            units = units.join(g[constant].first())
    if data.locations is not None:
        reg = data.locations.drop(columns=list(personal.get("locations", ()))).drop_duplicates(loc).set_index(loc)
        loc_values = index.get_level_values(loc) if isinstance(index, pd.MultiIndex) else index
        units = units.join(pd.DataFrame(reg.reindex(loc_values).to_numpy(), index=index, columns=reg.columns))
    for role in ("population", "outcomes"):  # per location and round
        table = getattr(data, role)
        if table is not None and c.round:
            table = table.drop(columns=list(personal.get(role, ())))
            table = table[table[c.round].notna()].copy()
            table[c.round] = _as_round(table[c.round])
            table = table.drop_duplicates(keys).set_index(keys)
            units = units.join(table[[x for x in table.columns if x not in units.columns]])
    if n_ki is not None:
        units["n_informants"] = n_ki.reindex(index).to_numpy()
    no_convert = {c.location, c.name, *c.admin, *c.admin_names}
    for col in units.columns:
        if col not in no_convert:
            units[col] = _numeric_or_text(units[col])
    return units


# --------------------------------------------------------------------------- steps
@dataclass
class _Context:
    spec: IndexSpec
    index: pd.Index
    units: pd.DataFrame
    rounds: np.ndarray | None
    round_order: list = field(default_factory=list)


def _split_by_scope(ctx: _Context) -> tuple[list[tuple[Any, np.ndarray | None]], Any]:
    """Row groups for data-driven statistics, and the reference round if any.

    Returns ``[(label, rows or None for all rows)], reference``.
    """
    scope = ctx.spec.normalise.scope
    if ctx.rounds is None or scope == "pooled":
        return [(None, None)], None
    labels = ctx.round_order
    if scope == "reference":
        from .rounds import reference

        ref, problem = reference(ctx.spec, labels)
        if problem:
            raise DataError(problem)
        return [(None, None)], ref
    if len(labels) == 1:
        return [(labels[0], None)], None
    return [(r, np.flatnonzero(ctx.rounds == r)) for r in labels], None


def _fit_apply(make, X: list[np.ndarray], columns: list[str], ctx: _Context, **fit_kw):
    """Fit a step on each scope group (or the reference round) and apply it to the columns ``X``."""
    groups, ref = _split_by_scope(ctx)
    if ref is not None:
        rows = np.flatnonzero(ctx.rounds == ref)
        step = make().fit(take_rows(X, rows), columns, **fit_kw)
        return step.transform(X, columns), {ref: step}
    if groups[0][1] is None:
        step = make().fit(X, columns, **fit_kw)
        return step.transform(X, columns), {groups[0][0]: step}
    fitted, parts = {}, []
    for label, rows in groups:
        sub = take_rows(X, rows)
        step = make().fit(sub, columns, **fit_kw)
        parts.append((rows, sub, step.transform(sub, columns)))
        fitted[label] = step
    if all(part is sub for _, sub, part in parts):
        return X, fitted
    out = []
    for j, col in enumerate(X):
        if all(part[j] is sub[j] for _, sub, part in parts):
            out.append(col)  # unchanged in every group: share it
            continue
        new = np.empty(len(col))
        for rows, _, part in parts:
            new[rows] = part[j]
        out.append(new)
    return out, fitted


def _cells_log(step: str, action: str, ctx: _Context, names: list[str], masks: list[np.ndarray],
               before: list[np.ndarray], after: list[np.ndarray], detail: str) -> pd.DataFrame:
    """One log row per flagged cell of the given columns."""
    loc = np.asarray(ctx.index.get_level_values(0) if isinstance(ctx.index, pd.MultiIndex) else ctx.index)
    parts = []
    for name, mask, b, a in zip(names, masks, before, after):
        rows = np.flatnonzero(mask)
        if rows.size:
            parts.append(pd.DataFrame({
                "step": step, "location": loc[rows],
                "round": ctx.rounds[rows] if ctx.rounds is not None else None,
                "column": name, "action": action, "before": b[rows], "after": a[rows], "detail": detail}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=LOG_COLUMNS)


def step_denominate(X, columns, ctx):
    return denominate(X, columns, ctx.spec, ctx.units), [], None


def step_impute(X, columns, ctx):
    s = ctx.spec.impute
    groups = [ctx.units[s.group].to_numpy()] if s.grouped else None
    strata = ctx.rounds if ctx.spec.normalise.scope != "pooled" else None
    out, masks = impute(X, s.method, groups=groups, fallback=s.fallback, strata=strata)
    if masks is None:
        return X, [], None
    how = s.method + (f" by {s.group}" if s.group else "") + (f", else {s.fallback}" if s.fallback != "none"
                                                               else "")
    return out, [_cells_log("impute", "imputed", ctx, columns, masks, X, out, how)], None


def step_treat(X, columns, ctx):
    s = ctx.spec.treat
    if s.method == "none":
        return X, [], {}
    coded = {k for k, v in ctx.spec.answers.items() if v.codes is not None}
    treat = [ind.treat and (s.coded or ind.answers not in coded) for ind in ctx.spec.indicators]
    out, fitted = _fit_apply(lambda: OutlierTreatment(s.winmax, s.skew_thresh, s.kurt_thresh, s.log_fallback),
                             X, columns, ctx, treat=treat)
    logs = []
    status = {c: {t.status for step in fitted.values() for cc, t in step.columns_.items() if cc == c}
              for c in columns}
    win = [j for j, c in enumerate(columns) if STATUS_WINSORISED in status[c] and STATUS_LOG not in status[c]
           and out[j] is not X[j]]

    def cells_log(action, names, masks, before, after, detail):
        # pass only the rows with a logged cell: the log looks up their locations, not every unit's
        from dataclasses import replace

        rows = np.flatnonzero(np.logical_or.reduce(masks))
        sub = replace(ctx, index=ctx.index[rows], rounds=None if ctx.rounds is None else ctx.rounds[rows])
        return _cells_log("treat", action, sub, names, [m[rows] for m in masks], [b[rows] for b in before],
                          [a[rows] for a in after], detail)

    if win:
        masks = [(out[j] != X[j]) & ~np.isnan(X[j]) for j in win]
        logs.append(cells_log("winsorised", [columns[j] for j in win], masks,
                              [X[j] for j in win], [out[j] for j in win], "COINr winsorisation"))
    for label, step in fitted.items():
        clamped = [(columns.index(c), t) for c, t in step.columns_.items() if t.status == STATUS_LOG]
        if clamped and ctx.spec.normalise.scope == "reference" and ctx.rounds is not None:
            # a reference round's log transform applied to other rounds: values below its minimum are clamped
            masks = [~np.isnan(X[j]) & (X[j] < t.log_min) for j, t in clamped]
            logs.append(cells_log("clamped", [columns[j] for j, _ in clamped], masks,
                                  [X[j] for j, _ in clamped],
                                  [np.full(len(X[j]), t.log_min) for j, t in clamped],
                                  f"below the minimum of reference round {label} before the log transform: "
                                  "raised to that minimum"))
        logged = [{
            "step": "treat", "location": None, "round": label, "column": c, "action": "log_transformed",
            "before": np.nan, "after": np.nan,
            "detail": f"winsorising {s.winmax} points was not enough: log(x - min + 0.01(max - min)); "
                      f"skew {t.skew:.3g} -> {t.skew_after:.3g}, kurtosis {t.kurt:.3g} -> {t.kurt_after:.3g}"
        } for c, t in step.columns_.items() if t.status == STATUS_LOG]
        if logged:
            logs.append(pd.DataFrame(logged))  # one table per round rather than one per indicator
    return out, logs, fitted


def step_normalise(X, columns, ctx, treated: dict | None = None):
    methods = resolve_methods(ctx.spec)
    logged = {c for step in (treated or {}).values() for c, t in step.columns_.items() if t.status == STATUS_LOG}
    clash = [c for c in columns if c in logged and methods[c].method == "goalposts"]
    if clash:
        raise MethodError(f"indicator '{clash[0]}' was log-transformed by the outlier treatment, so its goalposts "
                          "(in answer units) no longer apply: set 'treat.log_fallback: false' or use a "
                          "data-driven normalisation for it")
    out, fitted = _fit_apply(lambda: Normaliser(methods), X, columns, ctx)
    return out, [], fitted


def step_aggregate(X, columns, ctx):
    spec, derived = ctx.spec, None
    if spec.weights:  # weights derived from the data replace the written ones of their level
        from .weights import derive_levels

        values = to_frame(as_columns(X), columns, ctx.index)
        spec, derived = derive_levels(spec, values, ctx.units, groups=ctx.rounds)
    scores, ids = aggregate(X, columns, spec, groups=ctx.rounds)
    logs = []
    col_of = dict(zip(columns, X)) | dict(zip(ids, scores))
    for lv in range(2, len(ctx.spec.levels) + 1):
        thr = ctx.spec.levels[lv - 1].threshold
        if thr is None:
            continue
        for agg in ctx.spec.aggregates_at(lv):
            kids = [k.id for k in ctx.spec.children(agg.id)]
            present = sum((~np.isnan(col_of[k])).astype(float) for k in kids)
            dropped = np.isnan(col_of[agg.id]) & (present > 0)
            share = present / len(kids)
            logs.append(_cells_log("aggregate", "dropped", ctx, [agg.id], [dropped], [share],
                                   [np.full(len(share), np.nan)],
                                   f"share of children present below the threshold {thr:g}"))
    return (scores, ids), logs, derived


STEPS: list[tuple[str, Callable]] = [
    ("denominated", step_denominate),
    ("imputed", step_impute),
    ("treated", step_treat),
    ("normalised", step_normalise),
    ("aggregated", step_aggregate),
]


# --------------------------------------------------------------------------- result
class Result:
    """A computed index: every stage's table, the audit log and the recipe.

    Attributes
    ----------
    spec : IndexSpec
        The recipe; ``spec_hash`` is carried by every output.
    stages : dict[str, DataFrame]
        ``raw``, ``denominated``, ``imputed``, ``treated``, ``normalised``
        (indicators) and ``aggregated`` (pillars ... index), all indexed by
        (location, round).  A step that changes nothing shares its input table.
    units : DataFrame
        Descriptive columns per location and round.
    log : DataFrame
        Audit log: ``step, location, round, column, action, before, after, detail``
        (imputed cells, winsorised cells, log-transformed indicators, aggregates
        dropped by the availability threshold, units dropped for too few informants).
    fitted : dict
        Per step and scope group, the fitted step objects (``treated``:
        :class:`~stability.treat.OutlierTreatment`, ``normalised``:
        :class:`~stability.normalise.Normaliser`).
    """

    def __init__(self, spec: IndexSpec, prepared: Prepared, stages: dict, logs: dict, fitted: dict,
                 ranks: pd.DataFrame, data=None, timings: dict | None = None):
        self.spec = spec
        self.prepared = prepared
        self.stages = stages
        self._logs = logs
        self.fitted = fitted
        self.ranks = ranks
        self._data = data
        self.timings = timings or {}
        self._scores = None

    # ---- views
    @property
    def spec_hash(self) -> str:
        return self.spec.hash

    @property
    def units(self) -> pd.DataFrame:
        return self.prepared.units

    @property
    def index_id(self) -> str:
        return self.spec.root.id

    @property
    def pillar_ids(self) -> list[str]:
        return [a.id for a in self.spec.aggregates_at(2)]

    @property
    def rounds(self) -> list:
        """The rounds in the data, in the spec's declared order or else the natural one (last = latest)."""
        return list(self.prepared.round_order)

    def round_label(self, value) -> str:
        """How reports name a round: the label declared in the spec, else ``round <value>``."""
        from .rounds import label

        return label(self.spec, value)

    def round_coverage(self) -> pd.DataFrame:
        """Locations assessed per round, against the previous round.

        Returns
        -------
        DataFrame
            ``round``, ``locations``, ``previous_locations``, ``share_of_previous``
            and ``thin`` (True when a round has fewer than
            :data:`stability.rounds.THIN_ROUND_SHARE` of the previous round's locations: a partial
            round whose comparisons and national ranks should be read with care).
        """
        r = self.spec.columns.round
        if not r:
            return pd.DataFrame(columns=["round", "locations", "previous_locations", "share_of_previous", "thin"])
        from .rounds import coverage

        counts = self.units.index.get_level_values(r).value_counts()
        return pd.DataFrame(coverage(counts, self.rounds))

    def stage(self, name: str) -> pd.DataFrame:
        """The table of one stage (see :data:`STAGES`)."""
        if name not in self.stages:
            raise KeyError(f"unknown stage '{name}' (stages: {', '.join(self.stages)})")
        return self.stages[name]

    @property
    def log(self) -> pd.DataFrame:
        parts = [df for step in self._logs.values() for df in step if len(df)]
        if not parts:
            return pd.DataFrame(columns=LOG_COLUMNS)
        return pd.concat(parts, ignore_index=True)[LOG_COLUMNS]

    @property
    def source(self) -> dict:
        """Provenance of the input: ``name``, ``version`` (checksum), ``files``, ``illustrative``."""
        return dict(self.prepared.source)

    @property
    def illustrative(self) -> bool:
        """True when the input is generated (illustrative) data; every output must say so."""
        return bool(self.prepared.source.get("illustrative"))

    @property
    def data_version(self) -> str:
        """Short checksum of the input data."""
        return str(self.prepared.source.get("version", ""))

    @property
    def disagreement(self) -> pd.DataFrame | None:
        """Key-informant disagreement per location, round and indicator (None without informants)."""
        c = self.prepared.combined
        return None if c is None else c.disagreement

    @property
    def disagreement_flags(self) -> pd.DataFrame | None:
        """True where the key informants of a location disagree on an indicator (None without informants)."""
        c = self.prepared.combined
        return None if c is None else c.flagged

    def without_answers(self) -> "Result":
        """A copy that does not keep the raw answers (smaller to store; cannot recompute a changed combine)."""
        import copy

        slim = copy.copy(self)
        slim._data = None
        return slim

    @property
    def weight_derivations(self) -> dict:
        """Per level derived from the data (``weights`` in the spec): the :class:`~stability.weights.Derivation`
        with its tables (loadings, coefficients, convergence...) and plain-English notes."""
        return dict(self.fitted.get("aggregated") or {})

    @property
    def weights(self) -> pd.DataFrame:
        """The weights in use: one row per child of every aggregate.

        Columns: ``level`` (of the parent: 2 = indicators within pillars), ``parent``, ``child``,
        ``written`` (the spec's weight), ``weight`` (the weight used, as a share of the parent:
        derived when the level's weights come from the data), ``method`` (``written`` or the
        weighting method).
        """
        derived = self.weight_derivations
        rows = []
        for lv in range(2, len(self.spec.levels) + 1):
            d = derived.get(lv)
            for agg in self.spec.aggregates_at(lv):
                kids = self.spec.children(agg.id)
                written = np.array([k.weight for k in kids], dtype=float)
                used = written if d is None else np.array([d.weights[k.id] for k in kids], dtype=float)
                for k, w, u in zip(kids, written / written.sum(), used / used.sum()):
                    rows.append({"level": lv, "parent": agg.id, "child": k.id, "written": float(w),
                                 "weight": float(u), "method": "written" if d is None else d.method})
        return pd.DataFrame(rows, columns=["level", "parent", "child", "written", "weight", "method"])

    @property
    def treatment(self) -> pd.DataFrame:
        """Outlier test and treatment per indicator (and scope group)."""
        rows = []
        for label, step in (self.fitted.get("treated") or {}).items():
            for c, t in step.columns_.items():
                rows.append({"round": label, "indicator": c, "status": t.status, "n_winsorised": t.n_winsorised,
                             "lower": t.lower, "upper": t.upper, "skew": t.skew, "kurt": t.kurt,
                             "skew_after": t.skew_after, "kurt_after": t.kurt_after})
        return pd.DataFrame(rows)

    @property
    def scores(self) -> pd.DataFrame:
        """The main output: one row per location and round.

        Columns: the keys, the descriptive columns of the location register and
        population table, ``n_informants``, the index and every aggregate score,
        ``category``, ``rank_national``, ``rank_region``, ``change`` (index minus
        the previous round's), ``n_missing`` (indicators without an answer),
        ``n_imputed``, ``n_disagreements`` (indicators whose informants disagree),
        ``spec_hash``.
        """
        if self._scores is None:
            self._scores = self._build_scores()
        return self._scores

    def _build_scores(self) -> pd.DataFrame:
        spec = self.spec
        agg = self.stages["aggregated"]
        order = [spec.root.id] + [a.id for lv in range(len(spec.levels) - 1, 1, -1)
                                  for a in spec.aggregates_at(lv)]
        out = self.units.copy()
        for col in order:
            out[col] = agg[col].to_numpy()
        out = pd.concat([out, self.ranks], axis=1)
        raw = self.stages["raw"].to_numpy(dtype=float)
        den = self.stages["denominated"].to_numpy(dtype=float)  # missing denominators make cells missing here
        imp = self.stages["imputed"].to_numpy(dtype=float)
        out["n_missing"] = np.isnan(raw).sum(axis=1)
        out["n_imputed"] = (np.isnan(den) & ~np.isnan(imp)).sum(axis=1)
        if self.prepared.combined is not None:
            out["n_disagreements"] = self.prepared.combined.flagged.reindex(out.index).sum(axis=1).to_numpy()
        out["spec_hash"] = self.spec_hash
        return out.reset_index()

    # ---- recompute
    def recompute(self, changes: Mapping[str, Any] | IndexSpec | None = None, *,
                  progress: Progress | None = None) -> "Result":
        """Compute the index again with some options changed.

        Only the steps whose options changed (and those after them) run again;
        earlier stages are shared with this result.

        Parameters
        ----------
        changes : mapping or IndexSpec
            Dotted option paths to new values (see :meth:`IndexSpec.with_changes`),
            or a whole new spec.
        """
        from .spec import step_signatures

        spec = changes if isinstance(changes, IndexSpec) else self.spec.with_changes(changes or {})
        new, old = step_signatures(spec), step_signatures(self.spec)
        if new["prepare"] != old["prepare"]:
            if self._data is None:
                raise DataError("this change needs the original answers, which this result does not keep")
            return compute(self._data, spec, progress=progress)
        start = next((i for i, (name, _) in enumerate(STEPS) if new[name] != old[name]), len(STEPS))
        return run(self.prepared, spec, data=self._data, progress=progress, reuse=self, start=start)


# --------------------------------------------------------------------------- drivers
def run(prepared: Prepared, spec: IndexSpec, *, data=None, progress: Progress | None = None,
        reuse: Result | None = None, start: int = 0) -> Result:
    """Run the numeric pipeline on prepared, location-level values.

    Parameters
    ----------
    prepared : Prepared
    spec : IndexSpec
    reuse : Result, optional
        A result whose stages before step ``start`` are reused.
    start : int
        Index into :data:`STEPS` of the first step to run.
    """
    values = prepared.values
    columns = list(values.columns)
    if columns != spec.indicator_ids:
        raise DataError("prepared values do not match the spec's indicators")
    index = values.index
    rnd = spec.columns.round
    ctx = _Context(spec=spec, index=index, units=prepared.units,
                   rounds=index.get_level_values(rnd).to_numpy() if rnd else None,
                   round_order=list(prepared.round_order))
    stages: dict[str, pd.DataFrame] = {"raw": values}
    logs: dict[str, list] = {"prepare": _prepare_logs(prepared, spec)}
    fitted: dict[str, Any] = {}
    timings: dict[str, float] = {}
    if reuse is not None and start > 0:
        for name, _ in STEPS[:start]:
            stages[name] = reuse.stages[name]
            logs[name] = reuse._logs.get(name, [])
            fitted[name] = reuse.fitted.get(name)
    X = frame_columns(stages[STEPS[start - 1][0]] if start > 0 else values)
    for name, fn in STEPS[start:]:
        if progress:
            progress(name)
        t0 = time.perf_counter()
        if name == "aggregated":
            (scores, ids), logs[name], fitted[name] = fn(X, columns, ctx)
            stages[name] = to_frame(scores, ids, index)
        else:
            extra = {"treated": fitted.get("treated")} if name == "normalised" else {}
            out, logs[name], fitted[name] = fn(X, columns, ctx, **extra)
            prev = list(stages)[-1]
            stages[name] = stages[prev] if out is X else to_frame(out, columns, index)
            X = out
        timings[name] = time.perf_counter() - t0
    if progress:
        progress("ranked")
    t0 = time.perf_counter()
    ranks = rank_and_categorise(stages["aggregated"], spec, ctx)
    timings["ranked"] = time.perf_counter() - t0
    return Result(spec, prepared, stages, logs, fitted, ranks, data=data, timings=timings)


def _prepare_logs(prepared: Prepared, spec: IndexSpec) -> list[pd.DataFrame]:
    if prepared.combined is None or spec.combine.min_informants <= 1:
        return []
    n = prepared.combined.n_informants
    few = n[n < spec.combine.min_informants]
    if few.empty:
        return []
    idx = few.index
    loc = idx.get_level_values(0) if isinstance(idx, pd.MultiIndex) else idx
    rnd = idx.get_level_values(1) if isinstance(idx, pd.MultiIndex) else None
    return [pd.DataFrame({"step": "prepare", "location": np.asarray(loc), "round": rnd, "column": None,
                          "action": "dropped", "before": few.to_numpy(dtype=float), "after": np.nan,
                          "detail": f"fewer than {spec.combine.min_informants} key informants"})]


def rank_and_categorise(aggregated: pd.DataFrame, spec: IndexSpec, ctx: _Context) -> pd.DataFrame:
    """Index category, national and within-region ranks, change since the previous round."""
    root = spec.root.id
    # Scores that are equal in exact arithmetic can differ in the last bits depending on
    # the order of summation; ranks and categories use scores rounded to 1e-9 so that
    # such ties stay ties.
    x = np.round(aggregated[root].to_numpy(dtype=float), 9)
    round_groups = [ctx.rounds] if ctx.rounds is not None else []
    out = pd.DataFrame(index=aggregated.index)
    rule, cuts = spec.category_rule()
    labels = spec.categories.labels
    if rule == "quantile":
        out["category"] = categorise_quantiles(x, cuts, labels, ctx.rounds)
    else:
        out["category"] = categorise(x, cuts, labels)
    within = spec.within()
    if within is not None and within not in ctx.units.columns:
        raise DataError(f"rank 'within' column '{within}' is not in the data", column="rank.within")
    if within is None:
        out["rank_national"] = rank_desc(x, round_groups)
    else:
        out["rank_national"], out["rank_region"] = rank_desc(x, round_groups,
                                                             round_groups + [ctx.units[within]])
    if ctx.rounds is not None and len(pd.unique(ctx.rounds)) > 1:
        loc = aggregated.index.get_level_values(0)
        order = {r: i for i, r in enumerate(ctx.round_order)}
        pos = np.array([order[r] for r in ctx.rounds])
        prev = pd.Series(x, index=pd.MultiIndex.from_arrays([loc, pos]))
        look = pd.MultiIndex.from_arrays([loc, pos - 1])
        out["change"] = x - prev.reindex(look).to_numpy()
    return out


def compute(data, spec: IndexSpec, *, check: bool = True, progress: Progress | None = None) -> Result:
    """Compute the index of every location and round.

    Parameters
    ----------
    data : Dataset, DataFrame, str or Path
        Survey answers (see :func:`prepare`).
    spec : IndexSpec
        The recipe (see :func:`stability.spec.load_spec`).
    check : bool
        Validate the input first (recommended; turn off only for data already validated).
    progress : callable, optional
        Called with each step's name as it starts.

    Returns
    -------
    Result

    Examples
    --------
    >>> import stability as st                                          # doctest: +SKIP
    >>> res = st.compute("data/raw/mali_illustrative", st.load_spec("data/specs/mali.yaml"))
    >>> res.scores.head()
    """
    if progress:
        progress("prepare")
    prepared = prepare(data, spec, check=check)
    return run(prepared, spec, data=data, progress=progress)


def method_summary(spec: IndexSpec) -> dict[str, str]:
    """The method choices of a spec in words, for reports and workbooks."""
    n = spec.normalise
    levels = "; ".join(f"{lv.name}: {lv.method}" + (f" (p={lv.p:g})" if lv.p is not None else "")
                       + (f", availability >= {lv.threshold:.0%}" if lv.threshold is not None else "")
                       for lv in spec.levels[1:])
    treat = "none" if spec.treat.method == "none" else (
        f"winsorise up to {spec.treat.winmax} points when |skew| >= {spec.treat.skew_thresh:g} and kurtosis >= "
        f"{spec.treat.kurt_thresh:g}" + (", else log" if spec.treat.log_fallback else ""))
    impute = spec.impute.method + (f" by {spec.impute.group}" if spec.impute.group else "")
    return {
        "spec": spec.name, "spec hash": spec.hash, "toolkit version": __version__,
        "indicators": str(len(spec.indicators)),
        "key informants combined by": spec.combine.method,
        "imputation": impute, "outlier treatment": treat,
        "normalisation": f"{n.method} (scope: {n.scope})", "aggregation": levels,
        "categories": category_summary(spec),
    }


def category_summary(spec: IndexSpec) -> str:
    """The category rule in words (``low < 40, medium < 60, high``, or the quantiles of each round)."""
    rule, cuts = spec.category_rule()
    bound = "below the {:g} quantile" if rule == "quantile" else "< {:g}"
    text = ", ".join([f"{lab} {bound.format(c)}" for lab, c in zip(spec.categories.labels, cuts)]
                     + [spec.categories.labels[-1]])
    return text + (" of each round's index" if rule == "quantile" else "")
