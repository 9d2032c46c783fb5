"""Benchmark: ``stability.compute`` end to end on a large COINr-style table.

COINr's ASEM example (51 countries x 49 indicators, ``data/external/asem``) read
with :func:`stability.read_coinr`, its rows replicated ``--copies`` times (1000:
51,000 units) under new unit codes, with small seeded noise on the indicators
(x (1 + 1 % N(0, 1))) so that the copies are not ties.  The spec is the
adapter's COINr defaults: denominators, outlier treatment, min-max onto
[0, 100], arithmetic means at every level, ranks within the GDP group.

Times, best of ``--repeat``, in the same process:

* ``compute(data, spec)``: validation, preparation and every numeric step;
* ``prepare(data, spec)`` alone, and its parts: the validation
  (:func:`stability.validate.validate`), the data checksum recorded in the
  result (``Dataset.version``) and the rest (``check=False``: encoding, keys,
  joins with the unit columns);
* ``run(prepared, spec)`` alone: the numeric steps on prepared values, each
  step's time taken from ``Result.timings``.

Target: ``compute`` <= 0.15 s for 51,000 units.

Usage::

    python benchmarks/bench_compute.py [--copies 1000] [--repeat 7] [--profile]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from timing import best_of  # benchmarks/ is on sys.path when a benchmark runs as a script
from stability.coinr import read_coinr
from stability.io import Dataset
from stability.paths import asem_dir
from stability.pipeline import compute, prepare, run
from stability.validate import validate


def make_data(copies: int, seed: int = 0):
    """ASEM's spec and its data replicated ``copies`` times with new unit codes and seeded noise."""
    spec, data = read_coinr(asem_dir() / "ASEM_iData.csv", asem_dir() / "ASEM_iMeta.csv")
    n = len(data)
    big = data.iloc[np.tile(np.arange(n), copies)].reset_index(drop=True)
    copy_no = np.repeat(np.arange(copies), n)
    width = len(str(copies - 1))
    suffix = pd.Series(copy_no).map(lambda k: f"_{k:0{width}d}")
    big["uCode"] = big["uCode"].to_numpy(dtype=object) + suffix.to_numpy(dtype=object)
    big["uName"] = big["uName"].astype(object).to_numpy() + suffix.to_numpy(dtype=object)
    ids = spec.indicator_ids
    rng = np.random.default_rng(seed)
    X = big[ids].to_numpy(dtype=float)
    X = X * (1.0 + 0.01 * rng.standard_normal(X.shape))
    big[ids] = X
    return spec, big


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one compute() call")
    args = parser.parse_args()

    spec, data = make_data(args.copies)
    n_units, n_ind = len(data), len(spec.indicator_ids)
    print(f"data: {n_units:,} units x {n_ind} indicators ({data.shape[1]} columns), "
          f"{np.isnan(data[spec.indicator_ids].to_numpy(dtype=float)).mean():.1%} missing")
    compute(data, spec)  # warm-up: imports, caches

    prepared = prepare(data, spec)
    dataset = Dataset(answers=data, files={"answers": "answers"}, name="in-memory table")  # as prepare() makes it
    best = best_of({
        "compute": lambda: compute(data, spec),
        "prepare": lambda: prepare(data, spec),
        "unchecked": lambda: prepare(data, spec, check=False),
        "validate": lambda: validate(dataset, spec),
        "version": lambda: dataset.version,
        "run": lambda: run(prepared, spec),
    }, args.repeat)
    (t_compute, result), (t_prepare, _), (t_unchecked, _) = best["compute"], best["prepare"], best["unchecked"]
    t_validate, t_version = best["validate"][0], best["version"][0]
    t_run, timings = best["run"][0], best["run"][1].timings

    print(f"compute, end to end          : {t_compute * 1000:7.1f} ms (target <= 150 ms)")
    print(f"  prepare                    : {t_prepare * 1000:7.1f} ms")
    print(f"    validation               : {t_validate * 1000:7.1f} ms")
    print(f"    data checksum            : {t_version * 1000:7.1f} ms (taken in a thread during the validation)")
    print(f"    encode, keys, joins      : {t_unchecked * 1000:7.1f} ms (prepare with check=False)")
    print(f"  numeric steps (run)        : {t_run * 1000:7.1f} ms")
    for name, t in timings.items():
        print(f"    {name:<24} : {t * 1000:7.1f} ms")
    print(f"share of the numeric steps in compute: {t_run / t_compute:.0%}; "
          f"compute / numeric steps: {t_compute / t_run:.2f}")
    treated = result.treatment
    print(f"outlier treatment: {(treated['status'] != 'pass').sum()} of {len(treated)} indicators treated; "
          f"{len(result.log)} cells logged; index of the first unit {result.scores[spec.root.id].iloc[0]:.4f}")

    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        compute(data, spec)
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
