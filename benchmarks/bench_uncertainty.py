"""Benchmark: the uncertainty analysis (:mod:`stability.uncertainty`) against a naive loop.

A synthetic key-informant survey, seeded: ``--locations`` locations (10,000) in 8 regions and
40 cercles, ``--rounds`` rounds (1), 3 to 5 key informants per location and round, 30
indicators in 3 pillars (yes/no, shares of residents, counts with a few typos 10-30 times too
large), 3 % of answers missing.  Its spec: informants combined by the median, imputation by the
cercle's median (else the round's), COINr winsorisation (up to 5 points), goalposts onto 0-100,
arithmetic means with availability thresholds, categories at 40 and 60.

The analysis draws, in every replication, the weights (noise of 25 %), the normalisation
(goalposts or min-max), the aggregation (arithmetic or geometric), the outlier treatment
(winsorising 1 to 5 points, or none) and the key informants (bootstrap within each location
and round), and summarises ranks, categories and changes.

The naive loop computes each replication as an ordinary index: the key informants resampled
as :func:`stability.change.informant_bootstrap` does and ``compute(sample,
spec.with_changes(config), check=False)`` with the replication's choices (the same draws as
the analysis; a replication with a geometric mean is computed with min-max onto [1, 100], which
``compute`` needs and costs the same).  It is timed on ``--naive`` replications (5) and scaled
to ``--runs``.

Prints the wall time of the analysis (with the time of its parts), the peak resident memory
of the process (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, read right after the analysis:
it includes the survey, the nominal index and the analysis, not the naive loop, which runs
after) and the ratio to the naive loop.

Targets: < 10 s and < 2 GB on 2 cores, >= 50 times faster than the naive loop.

Usage::

    python benchmarks/bench_uncertainty.py [--runs 1000] [--locations 10000] [--rounds 1] [--naive 5] [--quick]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import numpy as np
import pandas as pd

from stability.io import Dataset
from stability.spec import spec_from_dict

PILLARS = ("safety", "livelihoods", "cohesion")


def make_survey(n_locations: int = 10_000, n_rounds: int = 1, n_indicators: int = 30,
                informants: tuple[int, int] = (3, 5), missing: float = 0.03, seed: int = 0):
    """A seeded synthetic key-informant survey and its spec (see the module docstring).

    Returns
    -------
    data : Dataset
        One row per key informant (``round``, ``location_id``, ``ki_id``, the indicators) and a
        location register (``admin1_pcode``, ``admin2_pcode``); marked illustrative.
    spec : IndexSpec
    """
    rng = np.random.default_rng(seed)
    per = n_indicators // len(PILLARS)
    kinds = ["yes_no", "share", "share", "count"]
    inds = []
    for pillar in PILLARS:
        for k in range(per):
            kind = kinds[k % len(kinds)]
            ind = {"id": f"{pillar[:3]}_{k:02d}", "parent": pillar, "answers": kind,
                   "direction": -1 if k % 3 == 2 else 1}
            if kind == "count":
                ind["goalposts"] = [0, 10]
            inds.append(ind)
    regions = np.array([f"R{r:02d}" for r in range(8)])
    region = rng.integers(0, len(regions), n_locations)
    cercle = rng.integers(0, 5, n_locations)
    ids = np.array([f"L{i:06d}" for i in range(n_locations)], dtype=object)
    locations = pd.DataFrame({"location_id": ids, "admin1_pcode": regions[region],
                              "admin2_pcode": [f"{regions[a]}C{b}" for a, b in zip(region, cercle)]})
    latent = rng.normal(0.0, 1.0, n_locations) + (region - 3.5) * 0.15
    parts = []
    for t in range(n_rounds):
        now = latent + rng.normal(0.0, 0.3, n_locations)
        k = rng.integers(informants[0], informants[1] + 1, n_locations)
        unit = np.repeat(np.arange(n_locations), k)
        m = len(unit)
        cols = {"round": np.full(m, t + 1), "location_id": ids[unit],
                "ki_id": np.concatenate([np.arange(1, x + 1) for x in k])}
        for ind in inds:
            s = ind["direction"] * (now[unit] * rng.uniform(0.5, 1.5) + rng.normal(0.0, 0.8, m))
            p = 1.0 / (1.0 + np.exp(-s))
            if ind["answers"] == "yes_no":
                v = (rng.random(m) < p).astype(float)
            elif ind["answers"] == "share":
                v = np.clip(np.floor(p * 4 + rng.normal(0.0, 0.4, m)), 0, 3)
            else:
                v = rng.poisson(p * 6).astype(float)
                typo = rng.random(m) < 0.003
                v[typo] *= rng.integers(10, 30, typo.sum())
            v[rng.random(m) < missing] = np.nan
            cols[ind["id"]] = v
        parts.append(pd.DataFrame(cols))
    answers = pd.concat(parts, ignore_index=True)
    data = Dataset(answers=answers, locations=locations, files={"answers": "answers", "locations": "locations"},
                   name="synthetic key-informant survey", illustrative=True)
    spec = spec_from_dict({
        "name": "synthetic stability index",
        "columns": {"location": "location_id", "round": "round", "key_informant": "ki_id",
                    "admin": ["admin1_pcode", "admin2_pcode"]},
        "answers": {"yes_no": {"codes": {"no": 0, "yes": 1}},
                    "share": {"codes": {"none": 0, "some": 1, "most": 2, "all": 3}},
                    "count": {"range": [0, None], "integer": True}},
        "indicators": inds,
        "aggregates": [{"id": p, "level": 2, "parent": "stability"} for p in PILLARS]
                      + [{"id": "stability", "level": 3}],
        "levels": [{"name": "Indicator"}, {"name": "Pillar", "threshold": 0.5},
                   {"name": "Index", "threshold": 0.66}],
        "impute": {"method": "group_median", "group": "admin2_pcode", "fallback": "median"},
        "treat": {"method": "winsorise", "winmax": 5, "log_fallback": False},
        "normalise": {"method": "goalposts", "scale": 100},
        "categories": {"cuts": [40, 60]},
        "uncertainty": {"sources": ["choices", "informants"], "weights": {"method": "noise", "noise": 0.25},
                        "normalise": ["minmax"], "aggregate": ["geometric"], "winmax": True},
    })
    return data, spec


def naive_replication(data, spec, config: dict, seed: int, r: int) -> np.ndarray:
    """One replication the ordinary way: informants resampled, ``compute`` with the replication's choices."""
    from stability.change import informant_sample
    from stability.pipeline import compute

    sample = informant_sample(data, spec)(seed, r)  # the draws of stability.change.informant_bootstrap
    config = {k: v for k, v in config.items() if k != "leave_out"}
    if any(k.startswith("levels.") and v == "geometric" for k, v in config.items()):
        # compute refuses zero scores for a geometric mean, which the analysis maps onto [1, 100]: the same
        # work, onto [1, 100] from the start
        config.update({"normalise.method": "minmax", "normalise.l": 1, "normalise.u": 100})
    return compute(sample, spec.with_changes(config), check=False).stage("aggregated")[spec.root.id].to_numpy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--locations", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--naive", type=int, default=5, help="replications of the naive loop timed (then scaled)")
    parser.add_argument("--quick", action="store_true", help="small sizes: 40 runs, 300 locations, 2 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.locations, args.rounds, args.naive = 40, 300, 2, 2

    from stability import uncertainty
    from stability.pipeline import compute

    t0 = time.perf_counter()
    data, spec = make_survey(args.locations, args.rounds)
    result = compute(data, spec)
    print(f"survey: {args.locations:,} locations x {args.rounds} round(s), {len(data.answers):,} key informants, "
          f"{len(spec.indicators)} indicators in {len(PILLARS)} pillars ({time.perf_counter() - t0:.1f} s to "
          "generate and compute)")

    t0 = time.perf_counter()
    u = uncertainty.Uncertainty(runs=args.runs, seed=1, progress=False).fit(result, data)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    res = u.result_
    print(f"uncertainty analysis: {args.runs:,} replications ({'+'.join(u.sources_)}; weights, normalisation "
          f"{', '.join(sorted(set(res.runs['normalise'])))}, aggregation {', '.join(sorted(set(res.runs['aggregate'])))}"
          f", treatment {', '.join(sorted(set(res.runs['winmax'])))}; {u.chunk_size_} replications per chunk)")
    print(f"  wall time                  : {wall:7.2f} s (target < 10 s)")
    t = u.timings_
    print(f"    set-up of the bootstrap  : {t['resampler']:7.2f} s")
    print(f"    choices and their fits   : {t['choices']:7.2f} s (each distinct configuration fitted once)")
    print(f"    replications             : {t['replicates']:7.2f} s wall; summed over the threads: draws "
          f"{t['draw']:.2f} s, replay {t['replay']:.2f} s, aggregation {t['aggregate']:.2f} s, ranks and "
          f"categories {t['summarise']:.2f} s")
    print(f"    summaries                : {t['summaries']:7.2f} s")
    print(f"  peak memory (maxrss)       : {peak:7.0f} MB (target < 2 GB; whole process after the analysis)")
    summary = res.summary.iloc[-1]
    print(f"  latest round: mean rank shift {summary['rank_shift']:.1f}, median rank interval width "
          f"{summary['median_rank_width']:.0f}, robust categories {summary['robust_share']:.0%}")

    n = max(1, min(args.naive, args.runs))
    t0 = time.perf_counter()
    for r in range(n):
        naive_replication(data, spec, res.configs[r], 1, r)
    per_rep = (time.perf_counter() - t0) / n
    naive = per_rep * args.runs
    print(f"naive loop (informants resampled + compute per replication): {per_rep:.2f} s per replication, timed "
          f"on {n} and scaled to {args.runs:,}: {naive:,.0f} s")
    print(f"ratio naive / analysis: {naive / wall:,.0f}x (target >= 50x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
