"""Timing helper shared by the benchmarks: best wall time of functions that take turns."""

from __future__ import annotations

import gc
import time

import numpy as np


def best_of(fns: dict, repeat: int) -> dict:
    """Best wall time and its result per function; the functions take turns, so all see the same load."""
    best = {name: (np.inf, None) for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            gc.collect()
            t0 = time.perf_counter()
            out = fn()
            t = time.perf_counter() - t0
            if t < best[name][0]:
                best[name] = (t, out)
            del out
    return best
