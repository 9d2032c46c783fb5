"""The tables of an analysis (:class:`UncertaintyResult`) and the quantile summaries behind them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..exceptions import ParameterError


# --------------------------------------------------------------------------- summaries
def _quantiles(A: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Linear-interpolation quantiles (R's type 7, numpy's default) of each column of ``A`` (R, m), NaN ignored.

    Returns an array (len(qs), m), NaN for a column without values.  Columns are sorted in
    blocks, each as a contiguous row (values keep their dtype: float32 replicates sort fast).
    """
    A = np.asarray(A)
    R, m = A.shape
    out = np.full((len(qs), m), np.nan)
    block = max(1, (32 * 2**20) // max(A.itemsize * R, 1))
    for start in range(0, m, block):
        s = np.sort(np.ascontiguousarray(A[:, start:start + block].T), axis=1)  # NaN last
        count = np.full(len(s), R) if not np.isnan(s[:, -1]).any() else (~np.isnan(s)).sum(axis=1)
        for i, q in enumerate(qs):
            h = (count - 1) * q
            lo = np.clip(np.floor(h).astype(np.intp), 0, max(R - 1, 0))
            hi = np.minimum(lo + 1, np.maximum(count - 1, 0))
            a = np.take_along_axis(s, lo[:, None], axis=1)[:, 0].astype(float)
            b = np.take_along_axis(s, hi[:, None], axis=1)[:, 0].astype(float)
            out[i, start:start + block] = np.where(count > 0, a + (h - lo) * (b - a), np.nan)
    return out


def _f32(values: np.ndarray) -> np.ndarray:
    """Values kept as float32 per replicate, written with float32's shortest digits (57.3, not 57.29999924)."""
    return np.asarray(values, dtype=np.float32).astype(str).astype(float)


def _ranks_float(rank: np.ndarray) -> np.ndarray:
    out = rank.astype(np.float32)
    out[rank == 0] = np.nan
    return out


@dataclass
class UncertaintyResult:
    """How sure is each rank, category and change (see the module docstring).

    Attributes
    ----------
    locations : DataFrame
        One row per location and round: the location and round columns of the spec, the
        region (``rank.within``) column, ``index`` (nominal), ``rank`` (nominal, national within
        the round), ``rank_median``, ``rank_low``, ``rank_high`` (interval of the replicates),
        ``rank_shift`` (mean absolute shift of the national rank over the replicates),
        ``rank_region`` and ``rank_region_median`` / ``_low`` / ``_high`` / ``_shift`` (within the region:
        the mean of ``rank_region_shift`` over a region's locations is the region's own mean rank shift),
        ``index_median``, ``index_low``, ``index_high``, ``category`` (nominal), ``p_<label>``
        (share of the runs in each category), ``robust_category`` (the category of at least
        ``robust`` of the runs, else missing), ``single_informant`` (one key informant: the
        informant bootstrap cannot move it), ``change`` (nominal, since the previous round),
        ``change_low``, ``change_high`` (interval), ``p_change_real`` (share of the runs whose
        change has the nominal change's sign) and ``beyond_noise`` (the interval excludes 0).
    summary : DataFrame
        One row per round: ``round``, ``locations``, ``runs``, ``sources``, ``seed``, ``level``,
        ``rank_shift`` (mean absolute shift of the national rank against the nominal ranking,
        over locations and runs), ``rank_shift_region``, ``median_rank_width`` (median of
        ``rank_high - rank_low``), ``robust_share`` (share of locations with a robust category),
        ``beyond_noise_share`` (share of the changes beyond noise), ``single_informant``
        (locations), ``spec_hash``, ``data_version``.
    runs : DataFrame
        One row per replicate: ``run``, the sampled ``normalise``, ``aggregate``, ``winmax``,
        ``impute``, ``leave_out``, the weights used (each child's share of its parent, columns
        ``weight.<id>``), and its ``rank_shift``.
    configs : list of dict
        The spec changes of every replicate's modelling choices (option paths to values, plus
        ``leave_out``), as :func:`evaluate` takes them.
    replicates : dict of ndarray
        Per replicate (rows) and location-round (columns, in the order of ``locations``):
        ``index`` (float32), ``rank`` and ``rank_region`` (int32, 0 = no rank), ``change``
        (float32, for the locations with a previous round: ``change_units``).
    spec_hash, data_version : str
        Of the nominal result: :meth:`matches` checks that a result is the one analysed.
    options : Uncertainty
        The options used.
    notes : DataFrame
        What was sampled and how, item by item (the workbook's notes sheet).
    illustrative : bool
        True when the data are illustrative (generated): every table says so.
    sensitivity : DataFrame or None
        Sobol indices of the modelling choices (:func:`analyse`; columns of
        :func:`stability.sensitivity.analyse`), or None.
    """

    locations: pd.DataFrame
    summary: pd.DataFrame
    runs: pd.DataFrame
    configs: list
    replicates: dict
    spec_hash: str
    data_version: str
    options: Any
    notes: pd.DataFrame
    illustrative: bool = False
    sensitivity: pd.DataFrame | None = None

    def matches(self, result) -> bool:
        """Whether ``result`` is the index this analysis was computed from (same spec hash and data version)."""
        return result.spec_hash == self.spec_hash and result.data_version == self.data_version

    def to_frames(self) -> dict[str, pd.DataFrame]:
        """The tables by name (``locations``, ``summary``, ``runs``, ``notes``), marked when illustrative."""
        from ..export import ILLUSTRATIVE_NOTE

        frames = {"locations": self.locations, "summary": self.summary, "runs": self.runs}
        if self.illustrative:
            frames = {k: v.copy() for k, v in frames.items()}
            for v in frames.values():
                v.insert(0, "data_note", ILLUSTRATIVE_NOTE)
        frames["notes"] = self.notes
        return frames

    def write(self, path: str | Path) -> list[Path]:
        """Write the tables, by the suffix of ``path``.

        ``.xlsx``: one workbook, a sheet per table and a ``notes`` sheet (what was sampled, spec
        hash, data version).  ``.csv`` or ``.parquet``: ``locations`` at ``path``, the others
        beside it (``<stem>.summary.csv``, ``<stem>.runs.csv``, ``<stem>.notes.csv``).  Files are
        written to temporary files and renamed into place, all or none.

        Returns
        -------
        list of Path
        """
        from ..io import to_csv, write_outputs, write_workbook

        path = Path(path)
        frames = self.to_frames()
        suffix = path.suffix.lower()
        if suffix == ".xlsx":
            return write_outputs({path: lambda p: write_workbook(p, frames, "Uncertainty of the index")})
        if suffix not in (".csv", ".parquet"):
            raise ParameterError(f"cannot write '{path.name}': the suffix must be .csv, .parquet or .xlsx")

        def writer(df):
            if suffix == ".csv":
                return lambda p: to_csv(df, p)
            return lambda p: df.to_parquet(p, index=False)

        targets = {path: writer(frames["locations"])}
        for name in ("summary", "runs", "notes"):
            targets[path.with_name(f"{path.stem}.{name}{path.suffix}")] = writer(frames[name])
        return write_outputs(targets)


