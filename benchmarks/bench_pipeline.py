"""Benchmark: the numeric pipeline on a million locations.

Runs the full pipeline -- outlier test and treatment, normalisation, aggregation
over three levels (indicator -> pillar -> index), national and within-region
ranks and categories -- on ``N`` locations x 30 indicators of the illustrative
generator's location-level data (about 5 % missing values, a few outliers), and,
in the same process on the same matrix, a bare numpy kernel (min-max of every
column, then NaN-aware weighted means per pillar and an unweighted mean across
pillars).  Prints wall times (best of ``--repeat``, the kernel and the pipeline
taking turns), the time of each step, the ratio, and peak memory over the input
matrix.

Targets: ratio <= 2 (<= 1.5 with ``--treat-all``, the outlier test on every
indicator) and peak memory <= 3x the input matrix.

Usage::

    python benchmarks/bench_pipeline.py [--locations 1000000] [--repeat 5] [--treat-all]
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

import numpy as np

from timing import best_of  # benchmarks/ is on sys.path when a benchmark runs as a script
from stability.generate import generate, indicator_catalogue
from stability.io import Dataset
from stability.pipeline import prepare, run
from stability.spec import spec_from_dict


def make_spec(catalogue, treat_all: bool = False) -> object:
    """The Mali spec's structure for the catalogue: coded answers, three pillars, min-max."""
    pillars = sorted({ind.pillar for ind in catalogue})
    return spec_from_dict({
        "name": "benchmark",
        "columns": {"location": "location_id", "round": "round", "admin": ["admin1_pcode"]},
        "answers": {"yes_no": {"codes": {"no": 0, "yes": 1}}, "share": {"codes": {"none": 0, "some": 1,
                                                                                "most": 2, "all": 3}},
                    "count": {"range": [0, None]}},
        "indicators": [{"id": i.id, "parent": i.pillar, "direction": i.direction, "answers": i.answer_type}
                       for i in catalogue],
        "aggregates": [{"id": p, "level": 2, "parent": "index"} for p in pillars]
                      + [{"id": "index", "level": 3}],
        "levels": [{"name": "Indicator"}, {"name": "Pillar"}, {"name": "Index"}],
        "treat": {"method": "winsorise", "coded": treat_all},
        "normalise": {"method": "minmax", "l": 0, "u": 100},
    })


def kernel(X: np.ndarray, groups: list[np.ndarray], w: list[np.ndarray]) -> np.ndarray:
    """Bare numpy: min-max per column, NaN-aware weighted mean per pillar, mean of pillars."""
    mn = np.nanmin(X, axis=0)
    mx = np.nanmax(X, axis=0)
    N = (X - mn) / (mx - mn) * 100.0
    pillars = []
    for idx, wp in zip(groups, w):
        sub = N[:, idx]
        ok = ~np.isnan(sub)
        pillars.append(np.where(ok, sub, 0.0) @ wp / (ok @ wp))
    return np.mean(np.column_stack(pillars), axis=1)


def peak_memory(fn) -> int:
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    out = fn()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    del out
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locations", type=int, default=1_000_000)
    parser.add_argument("--indicators", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each (best); kernel and pipeline alternate")
    parser.add_argument("--treat-all", action="store_true",
                        help="run the outlier test on every indicator, coded answers included "
                             "(by default, as in the Mali spec, only counts are tested)")
    args = parser.parse_args()

    t0 = time.perf_counter()
    ds = generate(args.locations, n_rounds=1, key_informants=None, n_indicators=args.indicators)
    catalogue = indicator_catalogue(args.indicators)
    spec = make_spec(catalogue, args.treat_all)
    ids = spec.indicator_ids
    data = Dataset(answers=ds.answers[["location_id", "round", *ids]],
                   locations=ds.locations[["location_id", "admin1_pcode"]], name="benchmark")
    prepared = prepare(data, spec, check=False)
    del data, ds
    X = np.asfortranarray(prepared.values.to_numpy(dtype=float))
    print(f"data: {args.locations:,} locations x {len(ids)} indicators, "
          f"{np.isnan(X).mean():.1%} missing, generated in {time.perf_counter() - t0:.1f} s")
    in_bytes = X.nbytes

    pillars = [a.id for a in spec.aggregates_at(2)]
    groups = [np.array([j for j, i in enumerate(spec.indicators) if i.parent == p]) for p in pillars]
    w = [np.ones(len(g)) for g in groups]
    signs = np.array([i.direction for i in spec.indicators], dtype=float)
    Xd = X * signs  # the kernel gets direction-adjusted data for free

    best = best_of({"kernel": lambda: kernel(Xd, groups, w), "pipeline": lambda: run(prepared, spec)}, args.repeat)
    (t_kernel, k_index), (t_pipe, result) = best["kernel"], best["pipeline"]
    steps = ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items())
    mem_kernel = peak_memory(lambda: kernel(Xd, groups, w))
    mem_pipe = peak_memory(lambda: run(prepared, spec))

    tested = sum(len(step.columns_) for step in (result.fitted.get("treated") or {}).values())
    print(f"input matrix: {in_bytes / 1e6:.0f} MB; outlier test on {tested} of {len(ids)} indicators; "
          f"{len(result.log)} cells logged")
    print(f"bare numpy kernel   : {t_kernel:6.2f} s   peak +{mem_kernel / 1e6:6.0f} MB "
          f"({mem_kernel / in_bytes:.2f}x input)")
    print(f"stability pipeline  : {t_pipe:6.2f} s   peak +{mem_pipe / 1e6:6.0f} MB "
          f"({mem_pipe / in_bytes:.2f}x input)")
    print(f"  steps: {steps}")
    ratio = t_pipe / t_kernel
    print(f"ratio pipeline / kernel: {ratio:.2f} (target <= {1.5 if args.treat_all else 2:g})   "
          f"peak memory / input: {mem_pipe / in_bytes:.2f} (target <= 3)")
    agree = np.corrcoef(np.nan_to_num(k_index), np.nan_to_num(result.stage("aggregated")["index"].to_numpy()))[0, 1]
    print(f"correlation of the kernel's index with the pipeline's: {agree:.4f} "
          "(below 1 where outlier treatment changed values)")


if __name__ == "__main__":
    main()
