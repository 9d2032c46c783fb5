"""Read a COINr iData/iMeta pair into the toolkit's spec and data.

COINr (the R composite-indicator package) describes an index with two tables:
``iData`` (one row per unit: ``uCode``, ``uName``, optional ``Time``, group and
denominator columns, one column per indicator) and ``iMeta`` (one row per
indicator, aggregate, group or denominator: ``iCode``, ``iName``, ``Level``,
``Parent``, ``Direction``, ``Weight``, ``Type``, ``Denominator``, ``Target``).

:func:`read_coinr` turns them into an :class:`~stability.spec.IndexSpec` with
COINr's default method options (no imputation, COINr ``Treat()`` defaults,
min-max onto [0, 100], arithmetic means) and a DataFrame that
:func:`stability.compute` accepts.  Any other COINr combination is one
:meth:`~stability.spec.IndexSpec.with_changes` away, e.g. COINr's
``build_example_coin()``::

    spec, data = read_coinr("ASEM_iData.csv", "ASEM_iMeta.csv")
    spec = spec.with_changes({"impute.method": "group_mean", "impute.group": "EurAsia_group"})
    result = stability.compute(data, spec)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .exceptions import SpecError
from .spec import IndexSpec, spec_from_dict

DEFAULT_LEVEL_NAMES = {2: ["Indicator", "Index"], 3: ["Indicator", "Pillar", "Index"],
                       4: ["Indicator", "Pillar", "Sub-index", "Index"]}


def _read(table, name: str) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):
        return table.copy()
    path = Path(table)
    if not path.exists():
        raise SpecError("file not found", file=path)
    return pd.read_csv(path)


def read_coinr(idata, imeta, *, level_names: list[str] | None = None,
               name: str = "COINr index") -> tuple[IndexSpec, pd.DataFrame]:
    """Convert a COINr iData/iMeta pair.

    Parameters
    ----------
    idata, imeta : DataFrame or path
        COINr's two tables (CSV files with empty cells for NA, or DataFrames).
    level_names : list of str, optional
        Names of the levels, indicators first (default: Indicator, Pillar, ...,
        Index).
    name : str
        Name of the index.

    Returns
    -------
    spec : IndexSpec
        Hierarchy, directions, weights, denominators and targets from iMeta;
        ``uCode`` as location, ``uName`` as name, ``Time`` (if present) as round,
        group columns available for group imputation and within-group ranks.
    data : DataFrame
        One row per unit (and time), ready for :func:`stability.compute`.
    """
    meta = _read(imeta, "iMeta")
    data = _read(idata, "iData")
    need = {"iCode", "Level", "Parent", "Type"}
    if need - set(meta.columns):
        raise SpecError(f"iMeta lacks columns: {', '.join(sorted(need - set(meta.columns)))}")
    for col in ("uCode",):
        if col not in data.columns:
            raise SpecError("iData has no 'uCode' column")
    meta = meta.copy()
    meta["Type"] = meta["Type"].fillna("Indicator")
    inds = meta[meta["Type"] == "Indicator"]
    aggs = meta[meta["Type"] == "Aggregate"]
    n_levels = int(pd.to_numeric(meta["Level"], errors="coerce").max())
    names = level_names or DEFAULT_LEVEL_NAMES.get(n_levels) or [f"Level {k}" for k in range(1, n_levels + 1)]
    if len(names) != n_levels:
        raise SpecError(f"{n_levels} levels in iMeta but {len(names)} level names given")

    def num(value, default):
        return default if pd.isna(value) else float(value)

    indicators = []
    for row in inds.itertuples(index=False):
        r = row._asdict()
        ind = {"id": str(r["iCode"]), "label": str(r.get("iName") or r["iCode"]), "parent": str(r["Parent"]),
               "direction": int(num(r.get("Direction"), 1)), "weight": num(r.get("Weight"), 1.0)}
        if "Denominator" in r and not pd.isna(r["Denominator"]):
            ind["denominator"] = str(r["Denominator"])
        if "Target" in r and not pd.isna(r["Target"]):
            ind["target"] = float(r["Target"])
        indicators.append(ind)
    aggregates = []
    for row in aggs.itertuples(index=False):
        r = row._asdict()
        aggregates.append({"id": str(r["iCode"]), "label": str(r.get("iName") or r["iCode"]),
                           "level": int(r["Level"]), "weight": num(r.get("Weight"), 1.0),
                           "parent": None if pd.isna(r["Parent"]) else str(r["Parent"])})
    absent = [ind["id"] for ind in indicators if ind["id"] not in data.columns]
    if absent:
        raise SpecError(f"iData has no column for indicator{'s' * (len(absent) > 1)} of iMeta: "
                        f"{', '.join(absent)}")
    groups = [str(c) for c in meta.loc[meta["Type"] == "Group", "iCode"] if c in data.columns]
    columns = {"location": "uCode", "round": "Time" if "Time" in data.columns else None,
               "name": "uName" if "uName" in data.columns else None}
    spec = spec_from_dict({
        "name": name,
        "description": "Converted from a COINr iData/iMeta pair.",
        "columns": columns,
        "indicators": indicators,
        "aggregates": aggregates,
        "levels": [{"name": n} for n in names],
        "normalise": {"method": "minmax", "l": 0, "u": 100, "scope": "round"},
        "treat": {"method": "winsorise", "winmax": 5, "skew_thresh": 2, "kurt_thresh": 3.5},
        "impute": {"method": "none"},
        "rank": {"within": groups[0] if groups else None},
    })
    out = data.copy()
    out["uCode"] = out["uCode"].astype(str)
    for ind in spec.indicator_ids:
        out[ind] = pd.to_numeric(out[ind], errors="coerce").astype(float)
    return spec, out
