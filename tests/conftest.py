"""Shared fixtures: the embedded Mali spec, dataset and result, a tiny spec factory, and a
helper that copies the embedded dataset (and spec) into a temporary folder to be broken."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stability.paths import asem_dir, default_dataset, default_spec



# --------------------------------------------------------------------------------------------
# the embedded Mali survey
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mali_spec():
    from stability.spec import load_spec

    return load_spec(default_spec())


@pytest.fixture(scope="session")
def mali_data():
    from stability.io import load_dataset

    return load_dataset(default_dataset())


@pytest.fixture(scope="session")
def mali_result(mali_data, mali_spec):
    from stability.pipeline import compute

    return compute(mali_data, mali_spec)


@pytest.fixture(scope="session")
def mali_outputs(mali_result, tmp_path_factory):
    """Every output format of the default result, written once per session."""
    from stability.export import write_result

    out = tmp_path_factory.mktemp("mali_outputs")
    files = write_result(mali_result, out)
    return out, files


@pytest.fixture(scope="session")
def asem_paths():
    return asem_dir() / "ASEM_iData.csv", asem_dir() / "ASEM_iMeta.csv"


# --------------------------------------------------------------------------------------------
# copies of the embedded dataset, to be broken one thing at a time
# --------------------------------------------------------------------------------------------


class DatasetCopy:
    """A writable copy of the embedded dataset and spec in a temporary folder."""

    def __init__(self, root: Path):
        self.root = root
        self.data = root / "data"
        self.spec = root / "spec.yaml"
        shutil.copytree(default_dataset(), self.data)
        shutil.copy(default_spec(), self.spec)

    # ---- CSV editing on the text, so that line numbers are under the test's control
    def lines(self, name: str) -> list[str]:
        return (self.data / name).read_text(encoding="utf-8").split("\n")

    def write_lines(self, name: str, lines: list[str]) -> None:
        (self.data / name).write_text("\n".join(lines), encoding="utf-8")

    def set_cell(self, name: str, line: int, column: str, value: str) -> str:
        """Set one cell (``line`` is the 1-based file line, header = 1); returns the old value."""
        lines = self.lines(name)
        header = lines[0].split(",")
        j = header.index(column)
        cells = lines[line - 1].split(",")
        old, cells[j] = cells[j], value
        lines[line - 1] = ",".join(cells)
        self.write_lines(name, lines)
        return old

    def set_column(self, name: str, column: str, value: str) -> None:
        lines = self.lines(name)
        j = lines[0].split(",").index(column)
        for i in range(1, len(lines)):
            if lines[i]:
                cells = lines[i].split(",")
                cells[j] = value
                lines[i] = ",".join(cells)
        self.write_lines(name, lines)

    def drop_column(self, name: str, column: str) -> None:
        lines = self.lines(name)
        j = lines[0].split(",").index(column)
        for i in range(len(lines)):
            if lines[i]:
                cells = lines[i].split(",")
                del cells[j]
                lines[i] = ",".join(cells)
        self.write_lines(name, lines)

    def edit_spec(self, old: str, new: str) -> None:
        text = self.spec.read_text(encoding="utf-8")
        assert old in text, old
        self.spec.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture
def dataset_copy(tmp_path):
    """A fresh copy of the embedded dataset (``.data``) and spec (``.spec``) under tmp_path."""
    return DatasetCopy(tmp_path)


# --------------------------------------------------------------------------------------------
# a tiny hand-made spec
# --------------------------------------------------------------------------------------------


def build_spec(indicators=("a", "b", "c"), pillars=None, *, directions=None, weights=None,
               round=None, admin=None, levels=None, indicator_options=None, **options):
    """A small location-level spec (no key informants).

    Parameters
    ----------
    indicators : sequence of str
        Indicator ids (columns of the data).
    pillars : dict, optional
        Indicator id -> pillar id.  Without it, the indicators are aggregated straight
        into the index ``I`` (two levels); with it, pillars are aggregated into ``I``.
    directions, weights : dict, optional
        Per indicator id.
    indicator_options : dict, optional
        Per indicator id, further fields (``goalposts``, ``target``, ``denominator``, ...).
    levels : list of dict, optional
        Level options (names are filled in).
    **options
        Top-level spec entries (``normalise``, ``treat``, ``impute``, ``categories``, ...);
        by default no treatment, no imputation, min-max onto [0, 100].
    """
    from stability.spec import spec_from_dict

    directions = directions or {}
    weights = weights or {}
    indicator_options = indicator_options or {}
    inds = []
    for i in indicators:
        parent = pillars[i] if pillars else "I"
        inds.append({"id": i, "parent": parent, "direction": directions.get(i, 1), "weight": weights.get(i, 1.0),
                     **indicator_options.get(i, {})})
    if pillars:
        aggs = [{"id": p, "level": 2, "parent": "I"} for p in dict.fromkeys(pillars.values())]
        aggs.append({"id": "I", "level": 3})
        n_levels = 3
    else:
        aggs = [{"id": "I", "level": 2}]
        n_levels = 2
    lv = [{"name": f"L{k}"} for k in range(1, n_levels + 1)]
    for k, extra in enumerate(levels or []):
        lv[k + 1].update(extra)
    data = {
        "name": "tiny",
        "columns": {"location": "loc", "round": round, "admin": list(admin or [])},
        "indicators": inds,
        "aggregates": aggs,
        "levels": lv,
        "treat": {"method": "none"},
        "impute": {"method": "none"},
        "normalise": {"method": "minmax", "l": 0, "u": 100},
    }
    data.update(options)
    return spec_from_dict(data)


@pytest.fixture(scope="session")
def make_spec():
    """The :func:`build_spec` factory."""
    return build_spec


def frame(values, columns=("a", "b", "c"), **extra) -> pd.DataFrame:
    """A location-level DataFrame with ids ``L000, L001, ...`` (sorted as given) and indicator values."""
    arr = np.asarray(values, dtype=float)
    df = pd.DataFrame(arr, columns=list(columns))
    df.insert(0, "loc", [f"L{i:03d}" for i in range(len(df))])
    for k, v in extra.items():
        df[k] = v
    return df


@pytest.fixture(scope="session")
def make_frame():
    """The :func:`frame` helper."""
    return frame


# --------------------------------------------------------------------------------------------
# a literal port of COINr's skew(), kurt() and winsorise() (R/treat.R, COINr 1.1.14)
# --------------------------------------------------------------------------------------------


class COINrReference:
    """COINr's treatment functions, transcribed line by line, as an independent oracle."""

    @staticmethod
    @np.errstate(invalid="ignore", divide="ignore")
    def skew(x) -> float:
        x = np.asarray(x, dtype=float)
        x = x[~np.isnan(x)]
        n = x.size
        if n < 3:
            return float("nan")
        d = x - x.mean()
        y = np.sqrt(n) * np.sum(d ** 3) / (np.sum(d ** 2) ** 1.5)
        return float(y * np.sqrt(n * (n - 1)) / (n - 2))

    @staticmethod
    @np.errstate(invalid="ignore", divide="ignore")
    def kurt(x) -> float:
        x = np.asarray(x, dtype=float)
        x = x[~np.isnan(x)]
        n = x.size
        if n < 4:
            return float("nan")
        d = x - x.mean()
        r = n * np.sum(d ** 4) / (np.sum(d ** 2) ** 2)
        return float(((n + 1) * (r - 3) + 6) * (n - 1) / ((n - 2) * (n - 3)))

    @classmethod
    def passes(cls, x, skew_thresh=2.0, kurt_thresh=3.5) -> bool:
        # check_SkewKurt: (abs(sk) < skew_thresh) | (kt < kurt_thresh)
        return bool(abs(cls.skew(x)) < skew_thresh or cls.kurt(x) < kurt_thresh)

    @classmethod
    def winsorise(cls, x, winmax=5, skew_thresh=2.0, kurt_thresh=3.5):
        """Returns (treated x, nwin, passing, skews seen before each step)."""
        x = np.array(x, dtype=float)
        passing = cls.passes(x, skew_thresh, kurt_thresh)
        nwin = 0
        imax = np.array([], dtype=int)
        imin = np.array([], dtype=int)
        skews = []
        while not passing and nwin < winmax:
            sk = cls.skew(x)
            skews.append(sk)
            if sk >= 0:
                imax = np.flatnonzero(x == np.nanmax(x))
                x[imax] = np.nanmax(np.delete(x, imax))
            else:
                imin = np.flatnonzero(x == np.nanmin(x))
                x[imin] = np.nanmin(np.delete(x, imin))
            nwin = imax.size + imin.size
            passing = cls.passes(x, skew_thresh, kurt_thresh)
        return x, nwin, passing, skews

    @staticmethod
    def log_ct(x):
        x = np.asarray(x, dtype=float)
        lo, hi = np.nanmin(x), np.nanmax(x)
        return np.log(x - lo + 0.01 * (hi - lo))


@pytest.fixture(scope="session")
def coinr_ref():
    return COINrReference


def pytest_collection_modifyitems(config, items):
    """Start the slow tests (wheel install, README commands, report batches) first, so that the two
    workers finish together instead of one waiting on a long test picked up last."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("slow") else 1)
