"""The analysis itself: :func:`run` (and :class:`Uncertainty`) draws the replicates, runs them in
chunks (locally or on a Dask cluster) and summarises them; :func:`analyse` adds the Sobol indices."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..exceptions import SpecError
from .choices import SOURCES, _Plan, _plan, options
from .engine import _Engine, _run_chunk
from .results import UncertaintyResult, _f32, _quantiles, _ranks_float
from .sampling import _draw
from .sobol import sobol_indices


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
        from ..parallel import workers

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
    from ..io import Dataset, load_dataset
    from ..resample import InformantResampler

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
        table["rank_shift"] = _mean_shift(rank, engine.nominal_rank)
        if q_region is not None:
            table["rank_region"] = engine.nominal_rank_region
            med, low, high = q_region.result()
            table["rank_region_median"], table["rank_region_low"], table["rank_region_high"] = med, low, high
            table["rank_region_shift"] = _mean_shift(rank_region, engine.nominal_rank_region)
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


def _mean_shift(rank: np.ndarray, nominal) -> np.ndarray:
    """Per location: the mean absolute shift of its rank over the runs that rank it (NaN without a nominal rank).

    ``rank`` (runs, units), 0 = no rank in that run.  Over a round's locations, the mean of these
    is the round's ``rank_shift`` / ``rank_shift_region`` when every run ranks every location.
    """
    nominal = np.asarray(nominal, dtype=float)
    ranked = rank > 0
    d = np.where(ranked, np.abs(rank - np.nan_to_num(nominal)[None, :]), 0.0)
    count = ranked.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = d.sum(axis=0) / count
    return np.where((count > 0) & ~np.isnan(nominal), out, np.nan)


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
    from ..export import ILLUSTRATIVE_NOTE

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

