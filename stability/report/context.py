"""What a report needs: the computed index, the round and region, the map layers.

:func:`load_context` is the first call of every report notebook.  It computes
the index (or loads the result that ``stability report`` computed once for the
whole batch, after checking that it was made from the same data, spec and
toolkit version) and selects the round and region to report on.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import __version__
from ..exceptions import ParameterError

LATEST = "latest"


@dataclass
class ReportContext:
    """Everything a report shows is derived from this.

    Attributes
    ----------
    result : Result
        The computed index (all rounds, all regions).
    round : int or str
        The round reported on.
    previous_round : int, str or None
        The round before it, for changes.
    region : str or None
        Admin-1 p-code of the region, or None for the country overview.
    region_name : str
    regions : dict[str, str]
        Every region in the data: p-code -> name.
    geo : dict
        Map layers keyed by admin level (``"admin1"``, ``"admin2"``), each a dict
        p-code -> shapely geometry (empty when the data's p-codes have no
        embedded boundaries).
    """

    result: Any
    round: Any
    previous_round: Any
    region: str | None
    region_name: str
    regions: dict[str, str]
    geo: dict = field(default_factory=dict)

    @property
    def spec(self):
        return self.result.spec

    @property
    def columns(self):
        return self.result.spec.columns

    @property
    def index_id(self) -> str:
        return self.result.spec.root.id

    @property
    def pillars(self) -> list[str]:
        return [a.id for a in self.result.spec.aggregates_at(2)]

    @property
    def illustrative(self) -> bool:
        return bool(self.result.prepared.source.get("illustrative"))

    @property
    def scores(self) -> pd.DataFrame:
        """Scores of every location and round."""
        return self.result.scores

    @property
    def national(self) -> pd.DataFrame:
        """Scores of every location in the reported round."""
        s = self.result.scores
        rnd = self.columns.round
        return s[s[rnd] == self.round] if rnd else s

    @property
    def current(self) -> pd.DataFrame:
        """Scores of the reported round, restricted to the region (if any)."""
        s = self.national
        if self.region is None:
            return s
        return s[s[self.columns.admin[0]] == self.region]

    @property
    def title(self) -> str:
        where = f"{self.region_name} ({self.region})" if self.region else "Country overview"
        return f"{self.spec.name}: {where}, round {self.round}"


def cache_key(data_path: str | Path, spec) -> dict:
    """What a cached result must match: data checksum, spec hash, toolkit version."""
    from ..io import dataset_files, files_version

    return {"data": files_version(dataset_files(data_path)), "spec": spec.hash, "version": __version__}


def save_cache(path: str | Path, result, geo: dict) -> Path:
    """Store a computed result and the map layers for the report notebooks (atomically)."""
    from ..io import write_atomic

    import copy

    _ = result.scores  # build the scores table once, here, rather than in every notebook
    slim = copy.copy(result)
    slim._data = None  # the raw answers are only needed to recompute from scratch
    payload = {"key": {"data": result.prepared.source.get("version"), "spec": result.spec_hash,
                       "version": __version__}, "result": slim, "geo": geo}

    def write(p: Path) -> None:
        with open(p, "wb") as fh:
            pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)

    return write_atomic(path, write)


def _load_cache(path: Path, key: dict):
    try:
        with open(path, "rb") as fh:
            payload = pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        return None
    return payload if payload.get("key") == key else None


def map_layers(result) -> dict:
    """Region and cercle boundaries for the p-codes in ``result`` (embedded geodata)."""
    from .. import geo

    c = result.spec.columns
    layers: dict = {}
    if not c.admin:
        return layers
    try:
        regions = geo.load_regions()
        cercles = geo.load_cercles()
    except Exception:  # no embedded boundaries: maps show points only
        return layers
    codes = result.units
    have1 = set(codes[c.admin[0]].dropna().astype(str))
    layers["admin1"] = {p: g for p, g in zip(regions["adm1_pcode"], regions.geometry) if p in have1}
    if len(c.admin) > 1:
        layers["admin2"] = {p: g for p, g in zip(cercles["adm2_pcode"], cercles.geometry)}
        layers["admin2_names"] = dict(zip(cercles["adm2_pcode"], cercles["adm2_name"]))
        layers["admin2_parent"] = dict(zip(cercles["adm2_pcode"], cercles["adm1_pcode"]))
    if not layers["admin1"]:
        return {}
    return layers


def region_names(result) -> dict[str, str]:
    """Admin-1 p-code -> name for every region in the data (name = p-code if unknown)."""
    c = result.spec.columns
    if not c.admin:
        return {}
    u = result.units.reset_index()
    col = c.admin[0]
    names = c.admin_names[0] if c.admin_names and c.admin_names[0] in u.columns else None
    pairs = u[[col] + ([names] if names else [])].dropna(subset=[col]).drop_duplicates(col)
    pairs = pairs.sort_values(col)
    return {str(p): (str(n) if names and pd.notna(n) else str(p))
            for p, n in zip(pairs[col], pairs[names] if names else pairs[col])}


def resolve_round(rounds: list, value) -> Any:
    """The round label for ``value`` (``"latest"``, a number or a label)."""
    if not rounds:
        return None
    if value is None or str(value).strip().lower() == LATEST or str(value).strip() == "":
        return rounds[-1]
    for r in rounds:
        if str(r) == str(value).strip():
            return r
    raise ParameterError(f"round {value!r} is not in the data; rounds: {', '.join(map(str, rounds))} "
                         f"(or '{LATEST}')", column="round")


def check_region(regions: dict[str, str], region: str | None) -> str | None:
    """Validate a region p-code against the data; the error lists the valid ones."""
    if region is None or str(region).strip() == "":
        return None
    region = str(region).strip()
    if region not in regions:
        valid = ", ".join(f"{p} ({n})" for p, n in regions.items())
        raise ParameterError(f"unknown region '{region}'; valid p-codes: {valid}", column="region")
    return region


def compute_result(data_path: str | Path = "", spec_path: str | Path = ""):
    """Load the dataset and spec (embedded defaults for empty paths) and compute the index."""
    from ..io import load_dataset
    from ..paths import default_dataset, default_spec
    from ..pipeline import compute
    from ..spec import load_spec

    spec = load_spec(spec_path or default_spec())
    data = load_dataset(data_path or default_dataset())
    return compute(data, spec), data, spec


def load_context(data_path: str | Path = "", spec_path: str | Path = "", survey_round: Any = LATEST,
                 region: str | None = None, cache_path: str | Path = "") -> ReportContext:
    """Compute (or load) the index and select the round and region of a report.

    Parameters
    ----------
    data_path : str or Path
        Dataset folder or answers file ("" = the embedded illustrative survey).
    spec_path : str or Path
        Index specification ("" = the embedded Mali spec).
    survey_round : int or str
        Round to report on, or ``"latest"``.
    region : str, optional
        Admin-1 p-code; None or "" for the country overview.
    cache_path : str or Path
        A result saved by :func:`save_cache`; used only if it was computed from
        the same data, spec and toolkit version, else the index is recomputed.
    """
    from ..paths import default_dataset, default_spec
    from ..spec import load_spec

    payload = None
    if cache_path and Path(cache_path).is_file():
        spec = load_spec(spec_path or default_spec())
        payload = _load_cache(Path(cache_path), cache_key(data_path or default_dataset(), spec))
    if payload is None:
        result, _, _ = compute_result(data_path, spec_path)
        geo = map_layers(result)
    else:
        result, geo = payload["result"], payload["geo"]
    rounds = result.rounds
    rnd = resolve_round(rounds, survey_round)
    pos = rounds.index(rnd) if rounds else 0
    previous = rounds[pos - 1] if pos > 0 else None
    regions = region_names(result)
    region = check_region(regions, region)
    return ReportContext(result=result, round=rnd, previous_round=previous, region=region,
                         region_name=regions.get(region, "") if region else "", regions=regions, geo=geo)
