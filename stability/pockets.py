"""Pockets of stability and hotspots of instability: local spatial autocorrelation of the index.

A reading of a computed index (:class:`~stability.pipeline.Result`) that changes no number of it:
per round, where do stable locations sit among stable neighbours (a *pocket of stability*), and
unstable ones among unstable neighbours (a *hotspot of instability*)?  Options come from the spec's
``pockets`` section (:class:`~stability.spec.Pockets`).

**Method.**  Each round is computed on its own, on the locations with coordinates and an index
value (the others are ``not mapped``), sorted by location id:

1. *Coordinates* (WGS 84) are projected to metres with an azimuthal equidistant projection centred
   on the round's mean longitude and latitude: distances from the centre are exact, and distances
   between neighbouring locations are off by less than 1 % up to about 1,400 km from it (all of
   Mali from its middle).
2. *Neighbours* (:mod:`libpysal.weights`): the ``k`` nearest locations (``KNN``, default), or every
   location within ``distance_km`` (``DistanceBand``); the graph is row-standardised.  A location
   with no neighbour within the band cannot be tested: it is ``not significant``, with a note, and
   left out of the round's statistics.
3. *Local Moran's I* (:class:`esda.Moran_Local`) of the index relative to the median of the
   location's region in the round (``relative_to: region``, default: a pocket is a cluster more
   stable than its own region, found in unstable regions too, and a uniformly stable region is not
   one large pocket), or of the index itself (``relative_to: country``), with conditional permutation
   inference (``permutations`` draws, seeded with ``seed``).  The pseudo p-value is two-sided:
   twice esda's directed (folded) pseudo p-value, at most 1, so that with no spatial structure
   about ``alpha`` of the locations come out significant without correction.
4. *Correction* (``correction: fdr``, default): Benjamini-Hochberg adjusted p-values over the
   tested locations of the round; ``none`` keeps the pseudo p-values.
5. *Classes*: a location whose adjusted p-value is at most ``alpha`` is a **pocket of stability**
   (high index among high neighbours), a **hotspot of instability** (low among low), a **high-low
   outlier** or a **low-high outlier** (high and low relative to the round's mean of the tested
   values); any other is
   **not significant**.
6. *Areas*: pocket (or hotspot) locations linked in the neighbour graph (in either direction) form
   one area; areas of at least ``min_size`` locations are named after their most common cercle
   (admin-2 area) and an embedded GeoNames locality (:func:`stability.geo.load_localities`) of the
   country of most of their locations: in that cercle if it has any, else in their most common
   region, else anywhere in the country, the one nearest the centre of those locations (see
   :func:`_place`); smaller ones stay pocket or hotspot locations without an area.
7. *Change*: each area is matched with the area of the same kind in the previous round with which
   it shares most locations: ``appeared`` (none shares any), ``grew``, ``shrank`` or ``stable`` (by
   number of locations); an area of the previous round matched by none is ``gone`` (a row of its own).
8. *Global Moran's I* (:class:`esda.Moran`) per round on the same graph: I, its expectation, the
   z-score and two-sided p-value under normality, and a permutation p-value (seeded).

Numba is not needed: without it, esda's permutation inference takes about 0.1 s for 1,500
locations and 999 permutations.

Examples
--------
>>> from stability import pockets                                    # doctest: +SKIP
>>> found = pockets.find(result)                                     # doctest: +SKIP
>>> found.areas[["round", "area", "kind", "name", "n_locations", "change"]]   # doctest: +SKIP
>>> scores = pockets.with_pockets(result.scores, found)              # doctest: +SKIP
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

#: Classes of a location, most notable first.
POCKET, HOTSPOT = "pocket of stability", "hotspot of instability"
HIGH_LOW, LOW_HIGH = "high-low outlier", "low-high outlier"
NOT_SIGNIFICANT, NOT_MAPPED = "not significant", "not mapped"
CLASSES = (POCKET, HOTSPOT, HIGH_LOW, LOW_HIGH, NOT_SIGNIFICANT, NOT_MAPPED)
#: Kinds of area (the class of their locations) and the prefix of their ids.
KINDS = {POCKET: "P", HOTSPOT: "H"}
#: Quadrants of the Moran scatter plot (esda's ``q``: 1 = HH, 2 = LH, 3 = LL, 4 = HL).
QUADRANTS = {1: "high-high", 2: "low-high", 3: "low-low", 4: "high-low"}
_CLASS_OF_QUADRANT = {1: POCKET, 2: LOW_HIGH, 3: HOTSPOT, 4: HIGH_LOW}
#: Change of an area since the previous round.
APPEARED, GREW, SHRANK, STABLE, GONE = "appeared", "grew", "shrank", "stable", "gone"
CHANGES = (APPEARED, GREW, SHRANK, STABLE, GONE)

LOCATION_COLUMNS = ["index_value", "longitude", "latitude", "neighbours", "lisa_i", "p", "p_adjusted", "quadrant",
                    "class", "area", "note"]
AREA_COLUMNS = ["area", "kind", "name", "cercle", "locality", "n_locations", "members", "median_index", "idps",
                "returnees", "longitude", "latitude", "change", "previous_area", "n_previous", "shared"]
GLOBAL_COLUMNS = ["n", "neighbours", "i", "expected_i", "z", "p", "p_sim", "note"]


# --------------------------------------------------------------------------- options
def options(spec, overrides: Mapping[str, Any] | Any | None = None):
    """The ``pockets`` options of ``spec``, with ``overrides`` (a mapping, or a whole section) applied.

    Raises
    ------
    SpecError
        One line naming the option (``pockets.k``...) when an override breaks a rule of the section.
    """
    from pydantic import ValidationError

    from .exceptions import SpecError
    from .spec import Pockets

    if overrides is None:
        return spec.pockets
    if isinstance(overrides, Pockets):
        return overrides
    try:
        return Pockets.model_validate({**spec.pockets.model_dump(), **dict(overrides)})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(k) for k in err["loc"])
        raise SpecError(err["msg"].removeprefix("Value error, "), column=f"pockets.{where}" if where else "pockets") \
            from None


_options = options  # ``find`` takes an argument of that name


# --------------------------------------------------------------------------- result
@dataclass
class PocketResult:
    """Pockets of stability and hotspots of instability of some rounds (see the module docstring).

    Attributes
    ----------
    locations : DataFrame
        One row per location and round: the location and round columns of the spec, then ``index_value``,
        ``longitude``, ``latitude``, ``neighbours`` (their number), ``lisa_i`` (local Moran's I),
        ``p`` (two-sided pseudo p-value), ``p_adjusted``, ``quadrant`` (``high-high``...), ``class``
        (:data:`CLASSES`), ``area`` (id of its named area, if any) and ``note`` (why a location was
        not tested).
    areas : DataFrame
        One row per named area and round (and per area ``gone`` since the previous round): the round
        column, then ``area`` (``P1``, ``P2``... for pockets, ``H1``... for hotspots, numbered by
        decreasing size within the round), ``kind``, ``name``, ``cercle``, ``locality``,
        ``n_locations``, ``members`` (sorted location ids), ``median_index``, ``idps`` and
        ``returnees`` (sums, missing counted as 0), centroid ``longitude`` and ``latitude``,
        ``change`` (:data:`CHANGES`; missing in the first round), ``previous_area``, ``n_previous``
        and ``shared`` (locations in common with it).
    global_moran : DataFrame
        One row per round: ``n`` (tested locations), ``neighbours`` (mean number), ``i``,
        ``expected_i``, ``z``, ``p`` (two-sided, normal approximation), ``p_sim`` (permutations) and
        ``note``.
    options : stability.spec.Pockets
        The options used.
    """

    locations: pd.DataFrame
    areas: pd.DataFrame
    global_moran: pd.DataFrame
    options: Any = field(repr=False)
    location_column: str = "location_id"
    round_column: str | None = "round"

    def counts(self) -> pd.DataFrame:
        """Number of locations per round (rows) and class (columns, all of :data:`CLASSES`)."""
        rows = self.locations
        by = rows[self.round_column] if self.round_column else pd.Series(0, index=rows.index)
        table = pd.crosstab(by, rows["class"]).reindex(columns=list(CLASSES), fill_value=0)
        table.columns.name = None
        return table


# --------------------------------------------------------------------------- API
def find(result, survey_round=None, options=None) -> PocketResult:
    """Pockets of stability, hotspots of instability and global Moran's I of a computed index.

    Parameters
    ----------
    result : stability.pipeline.Result
        The computed index; its ``scores`` give the index, coordinates, cercles and people counts.
    survey_round : optional
        The round to compute (default: every round).  Its change is measured against the round
        before it in the result, which is computed too but not returned.
    options : mapping or stability.spec.Pockets, optional
        Options overriding the spec's ``pockets`` section (e.g. ``{"neighbours": "distance"}``).

    Returns
    -------
    PocketResult
        Tables ``locations``, ``areas`` and ``global_moran`` (deterministic: the same inputs give
        identical tables; each round is computed on its own).

    Raises
    ------
    SpecError
        An invalid option (one line naming it).
    InputError
        A round that is not in the result.
    """
    from .exceptions import InputError

    spec = result.spec
    opts = _options(spec, options)
    cols = spec.columns
    scores = result.scores
    rcol = cols.round if cols.round and cols.round in scores.columns else None
    rounds = sorted(pd.unique(scores[rcol]), key=_round_key) if rcol else [None]
    if survey_round is None:
        wanted = rounds
    elif rcol and survey_round in rounds:
        wanted = [survey_round]
    else:
        raise InputError(f"no round {survey_round!r} in the result (rounds: "
                         f"{', '.join(map(str, rounds)) if rcol else 'none'})", column=rcol or "round")
    frame = _frame(scores, spec)
    if opts.relative_to == "region" and cols.admin and cols.admin[0] in scores.columns:
        region = scores[cols.admin[0]].astype(object).to_numpy()
        frame["_value"] = frame["_index"] - frame.groupby([region, frame["_round"].to_numpy()], dropna=False)[
            "_index"].transform("median")
    else:
        frame["_value"] = frame["_index"]
    done: dict[int, tuple] = {}

    def get(pos):
        if pos not in done:
            rows = frame[frame["_round"] == rounds[pos]] if rcol else frame
            done[pos] = _one_round(rows, opts)
        return done[pos]

    loc_parts, area_parts, global_parts = [], [], []
    for pos, rnd in enumerate(rounds):
        if rnd not in wanted:
            continue
        locs, areas, glob = get(pos)
        areas = _changes(areas, get(pos - 1)[1] if pos > 0 else None)
        locs, glob = locs.copy(), glob.copy()
        if rcol:
            locs.insert(1, rcol, rnd)
            areas.insert(0, rcol, rnd)
            glob.insert(0, rcol, rnd)
        loc_parts.append(locs)
        area_parts.append(areas)
        global_parts.append(glob)
    locations = pd.concat(loc_parts, ignore_index=True).rename(columns={"_location": cols.location})
    joined = pd.concat(area_parts, ignore_index=True)
    areas = _typed_areas(joined)
    if rcol:
        areas.insert(0, rcol, joined[rcol].to_numpy())
    return PocketResult(locations, areas, pd.concat(global_parts, ignore_index=True), opts, cols.location, rcol)


def with_pockets(scores: pd.DataFrame, found: PocketResult, column: str = "pocket",
                 area_column: str | None = None) -> pd.DataFrame:
    """``scores`` with a ``column`` holding each row's class (:data:`CLASSES`), and optionally its area id.

    Rows of rounds (or locations) that ``found`` does not cover get a missing value; the rows and
    their order (and index) are those of ``scores``.
    """
    keys = [found.location_column] + ([found.round_column] if found.round_column else [])
    take = found.locations[keys + ["class"] + (["area"] if area_column else [])]
    take = take.rename(columns={"class": column, **({"area": area_column} if area_column else {})})
    out = scores.drop(columns=[c for c in (column, area_column) if c and c in scores.columns])
    merged = out.merge(take, on=keys, how="left", validate="many_to_one")
    merged.index = scores.index
    return merged


# --------------------------------------------------------------------------- one round
def _round_key(value):
    return (0, value, "") if isinstance(value, (int, float, np.integer, np.floating)) else (1, 0, str(value))


def _frame(scores: pd.DataFrame, spec) -> pd.DataFrame:
    """The columns the analysis reads, under fixed names."""
    cols, p = spec.columns, spec.priorities

    def col(name, numeric=True):
        if name and name in scores.columns:
            return pd.to_numeric(scores[name], errors="coerce") if numeric else scores[name].astype(object)
        return pd.Series(np.nan, index=scores.index, dtype=float if numeric else object)

    admin, names = list(cols.admin), list(cols.admin_names or [])
    level = 1 if len(admin) > 1 else 0  # the admin-2 (the region, when the data have no admin-2)
    out = pd.DataFrame({
        "_location": scores[cols.location],
        "_round": scores[cols.round] if cols.round and cols.round in scores.columns else 0,
        "_index": col(spec.root.id),
        "_lon": col(cols.longitude), "_lat": col(cols.latitude),
        "_idps": col(p.idp_column), "_returnees": col(p.returnee_column),
        "_region_code": col(admin[0] if admin else None, numeric=False),
        "_cercle_code": col(admin[level] if admin else None, numeric=False),
        "_cercle_name": col(names[level] if len(names) > level else None, numeric=False),
    })
    return out.reset_index(drop=True)


def _projection(lon: np.ndarray, lat: np.ndarray):
    """Transformer from WGS 84 to an azimuthal equidistant projection (metres) centred on the points' mean."""
    from pyproj import Transformer

    lon0, lat0 = float(np.mean(lon)), float(np.mean(lat))
    return Transformer.from_crs(
        "EPSG:4326", f"+proj=aeqd +lat_0={lat0:.6f} +lon_0={lon0:.6f} +datum=WGS84 +units=m +no_defs", always_xy=True)


class _Seeded:
    """Seed numpy's global random state for esda's permutations, and restore it afterwards."""

    def __init__(self, seed: int):
        self.seed = seed

    def __enter__(self):
        self.state = np.random.get_state()
        np.random.seed(self.seed % 2**32)
        self.warnings = warnings.catch_warnings()
        self.warnings.__enter__()
        warnings.simplefilter("ignore")  # esda's notices (numba missing, alternatives changing...)
        return self

    def __exit__(self, *exc):
        self.warnings.__exit__(*exc)
        np.random.set_state(self.state)
        return False


def _weights(xy: np.ndarray, opts):
    """Neighbour graph (libpysal ``W``, binary) of projected points."""
    from libpysal.weights import KNN, DistanceBand

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if opts.neighbours == "knn":
            return KNN.from_array(xy, k=min(opts.k, len(xy) - 1))
        return DistanceBand(xy, threshold=opts.distance_km * 1000.0, binary=True, silence_warnings=True)


_AREA_TEXT = ("area", "kind", "name", "cercle", "locality", "change", "previous_area")
_AREA_FLOAT = ("median_index", "idps", "returnees", "longitude", "latitude")
_AREA_COUNT = ("n_previous", "shared")


def _typed_areas(areas: pd.DataFrame) -> pd.DataFrame:
    """The area table with fixed column types (text as objects with None when missing), whatever pandas infers."""
    areas = areas.reindex(columns=AREA_COLUMNS).reset_index(drop=True)
    out = {}
    for c in AREA_COLUMNS:
        col = areas[c]
        if c in _AREA_TEXT:
            out[c] = pd.Series([v if isinstance(v, str) else None for v in col], dtype=object)
        elif c in _AREA_FLOAT:
            out[c] = pd.Series(pd.to_numeric(col, errors="coerce").to_numpy(dtype=float))
        elif c in _AREA_COUNT:
            out[c] = pd.Series(pd.array([None if pd.isna(v) else int(v) for v in col], dtype="Int64"))
        elif c == "n_locations":
            out[c] = pd.Series(col.to_numpy(dtype="int64"))
        else:  # members
            out[c] = pd.Series([list(v) for v in col], dtype=object)
    return pd.DataFrame(out, columns=AREA_COLUMNS)


def _empty_areas() -> pd.DataFrame:
    return _typed_areas(pd.DataFrame(columns=AREA_COLUMNS))


def _one_round(rows: pd.DataFrame, opts) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Location, area (without change) and global tables of one round's rows."""
    rows = rows.sort_values("_location", kind="mergesort").reset_index(drop=True)
    n_all = len(rows)
    lon, lat, y = (rows[c].to_numpy(dtype=float) for c in ("_lon", "_lat", "_value"))
    shown = rows["_index"].to_numpy(dtype=float)  # the index itself (``y`` may be relative to the region)
    located = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
    mapped = located & np.isfinite(y)
    note = np.where(~located, "no coordinates", np.where(~mapped, "no index value", "")).astype(object)
    cls = np.where(mapped, NOT_SIGNIFICANT, NOT_MAPPED).astype(object)
    out = {"_location": rows["_location"].to_numpy(), "index_value": shown, "longitude": lon, "latitude": lat,
           "neighbours": np.full(n_all, np.nan), "lisa_i": np.full(n_all, np.nan), "p": np.full(n_all, np.nan),
           "p_adjusted": np.full(n_all, np.nan), "quadrant": np.full(n_all, None, dtype=object)}
    area = np.full(n_all, None, dtype=object)
    glob = {"n": 0, "neighbours": np.nan, "i": np.nan, "expected_i": np.nan, "z": np.nan, "p": np.nan,
            "p_sim": np.nan, "note": ""}
    areas = _empty_areas()

    tested = np.flatnonzero(mapped)
    transformer = _projection(lon[tested], lat[tested]) if len(tested) else None
    w = None
    if len(tested) >= 3:
        xy = np.column_stack(transformer.transform(lon[tested], lat[tested]))
        w = _weights(xy, opts)
        if w.islands:
            alone = tested[np.asarray(sorted(w.islands), dtype=int)]
            note[alone] = f"no neighbour within {opts.distance_km:g} km: not tested"
            out["neighbours"][alone] = 0
            glob["note"] = f"{len(alone)} location{'s' * (len(alone) > 1)} without neighbours left out"
            keep = np.setdiff1d(np.arange(len(tested)), np.asarray(sorted(w.islands), dtype=int))
            tested, xy = tested[keep], xy[keep]
            w = _weights(xy, opts) if len(tested) >= 3 else None
    why = ""
    if w is None:
        why = "fewer than 3 locations with coordinates, an index value and neighbours"
    elif np.ptp(y[tested]) == 0:
        why = "the index is the same at every location"
    if why:
        note[tested] = why
        glob.update(n=len(tested), note="; ".join(x for x in (glob["note"], why) if x))
    else:
        _test(y, tested, w, opts, out, cls, glob)
        area, areas = _areas(rows, tested, w, cls, opts, transformer)
    locations = pd.DataFrame({**out, "class": cls, "area": area, "note": note}, columns=["_location"] + LOCATION_COLUMNS)
    for c in ("quadrant", "class", "area", "note"):
        locations[c] = pd.Series([v if isinstance(v, str) else None for v in locations[c]], dtype=object)
    return locations, areas, pd.DataFrame([glob], columns=GLOBAL_COLUMNS)


def _test(y, tested, w, opts, out, cls, glob) -> None:
    """Local and global Moran's I of ``y[tested]`` on ``w``: fills ``out``, ``cls`` and ``glob`` in place."""
    import esda

    values = y[tested]
    perms = opts.permutations
    with _Seeded(opts.seed):
        lisa = esda.Moran_Local(values, w, transformation="r", permutations=perms, keep_simulations=True,
                                seed=opts.seed % 2**32, n_jobs=1)
    sims = np.asarray(lisa.rlisas, dtype=float)  # (locations, permutations)
    larger = (sims >= lisa.Is[:, None]).sum(axis=1)
    larger = np.minimum(larger, perms - larger)
    p = np.minimum(1.0, 2.0 * (larger + 1.0) / (perms + 1.0))
    if opts.correction == "fdr":
        from statsmodels.stats.multitest import multipletests

        p_adj = multipletests(p, alpha=opts.alpha, method="fdr_bh")[1]
    else:
        p_adj = p
    q = np.asarray(lisa.q, dtype=int)
    out["neighbours"][tested] = np.asarray(w.sparse.getnnz(axis=1))
    out["lisa_i"][tested] = lisa.Is
    out["p"][tested] = p
    out["p_adjusted"][tested] = p_adj
    out["quadrant"][tested] = [QUADRANTS.get(v) for v in q]
    significant = p_adj <= opts.alpha
    cls[tested] = np.where(significant, [_CLASS_OF_QUADRANT.get(v, NOT_SIGNIFICANT) for v in q], NOT_SIGNIFICANT)

    with _Seeded(opts.seed):
        g = esda.Moran(values, w, transformation="r", permutations=perms)
    glob.update(n=len(tested), neighbours=float(np.mean(out["neighbours"][tested])), i=float(g.I),
                expected_i=float(g.EI), z=float(g.z_norm), p=float(g.p_norm), p_sim=float(g.p_sim))


# --------------------------------------------------------------------------- areas
#: Without a known country (region p-codes not of the embedded countries), an area is named after
#: the nearest embedded locality only when it lies within this distance of the area's centre.
UNPLACED_KM = 50.0


@functools.lru_cache(maxsize=1)
def _localities() -> pd.DataFrame:
    """The embedded GeoNames localities with their country, region and admin-2 p-codes.

    Columns ``name``, ``longitude``, ``latitude``, ``country`` (ISO3), ``admin1`` and ``admin2``
    (p-codes, None when unknown).  Mali's localities carry their cercle and region; the others are
    placed in the admin-1 (and Burkina Faso's province) polygon of their own country that contains
    them, and Niger's in the department of their region whose seat is nearest
    (:func:`stability.geo.nearest_department`, as the data's Niger locations).
    """
    from . import geo

    table = geo.load_localities(country=None)
    lon = table["longitude"].to_numpy(dtype=float)
    lat = table["latitude"].to_numpy(dtype=float)
    country = table["countrycode"].map(geo.PCODE_PREFIXES).to_numpy(dtype=object)

    def codes(column):
        return np.array([v if isinstance(v, str) and v else None for v in table[column]], dtype=object)

    admin1, admin2 = codes("adm1_pcode"), codes("adm2_pcode")
    try:
        import shapely

        for layer, target, column in ((geo.load_admin1(), admin1, "adm1_pcode"),
                                      (geo.load_admin2(), admin2, "adm2_pcode")):
            for iso, code, geom in zip(layer["adm0_iso3"], layer[column], layer.geometry):
                todo = np.flatnonzero((country == iso) & np.array([v is None for v in target]))
                if len(todo):
                    target[todo[shapely.contains_xy(geom, lon[todo], lat[todo])]] = code
        niger = np.flatnonzero((country == "NER") & np.array([v is not None for v in admin1]))
        if len(niger):
            found = geo.nearest_department(lon[niger], lat[niger], admin1[niger])
            admin2[niger] = [v or None for v in found]
    except Exception:  # boundaries unavailable: localities are placed by country only
        pass
    return pd.DataFrame({"name": table["name"].astype(str).to_numpy(dtype=object), "longitude": lon,
                         "latitude": lat, "country": country, "admin1": admin1, "admin2": admin2})


@functools.lru_cache(maxsize=1)
def _admin_names() -> dict:
    from . import geo

    table = geo.load_pcodes(None)
    return dict(zip(table["pcode"], table["name"]))


def _most_common(values: pd.Series):
    """The most common non-missing value (ties: the first in sorted order of text), or None."""
    values = values.dropna()
    values = values[values.astype(str) != ""]
    if values.empty:
        return None
    counts = values.astype(str).value_counts()
    return sorted(counts.index[counts == counts.max()])[0]


def _cercle(members: pd.DataFrame) -> str:
    """The name of the most common admin-2 area of an area's locations (ties: first in alphabetical order).

    Counted on p-codes when the data have them (so that two areas spelled alike stay apart), else on names.
    """
    codes = members["_cercle_code"]
    if codes.notna().any():
        code = _most_common(codes)
        named = members.loc[codes.astype(str) == code, "_cercle_name"].dropna()
        if len(named):
            return str(_most_common(named))
        return str(_admin_names().get(code, code))
    name = _most_common(members["_cercle_name"])
    return "" if name is None else str(name)


def _place(members: pd.DataFrame, transformer) -> str:
    """The embedded locality an area is named after ("" when none fits).

    Candidates are the localities of the country of most of the area's locations (from their region
    p-codes); among them those of the admin-2 area of most of its locations, if any, else those of
    its region, if any, else the whole country; the one nearest the centre of the area's locations
    in that admin area is taken.  A country of no embedded locality gives "", and without a known
    country only a locality within :data:`UNPLACED_KM` of the area's centre is taken.
    """
    from .geo import country_of

    table = _localities()
    if table.empty:
        return ""
    region = members["_region_code"].astype(object)
    country = _most_common(region.map(lambda p: country_of(p) if isinstance(p, str) else None))
    near = members
    if country is not None:
        table = table[table["country"] == country]
        for level, column in (("admin2", "_cercle_code"), ("admin1", "_region_code")):
            code = _most_common(members[column])
            mine = table[table[level] == code] if code is not None else table.iloc[0:0]
            if len(mine):
                table, near = mine, members[members[column].astype(str) == code]
                break
    if table.empty:
        return ""
    x, y = transformer.transform(table["longitude"].to_numpy(), table["latitude"].to_numpy())
    cx, cy = transformer.transform(float(near["_lon"].mean()), float(near["_lat"].mean()))
    d2 = (np.asarray(x) - cx) ** 2 + (np.asarray(y) - cy) ** 2
    best = int(np.argmin(d2))
    if country is None and d2[best] > (UNPLACED_KM * 1000.0) ** 2:
        return ""
    return str(table["name"].iat[best])


def _area_name(ident: str, cercle: str, locality: str) -> str:
    if locality:
        return f"near {locality} ({cercle})" if cercle else f"near {locality}"
    return f"in {cercle}" if cercle else ident


def _areas(rows, tested, w, cls, opts, transformer) -> tuple[np.ndarray, pd.DataFrame]:
    """Area id of every row, and the table of named areas (connected pocket or hotspot locations)."""
    from scipy.sparse.csgraph import connected_components

    area = np.full(len(rows), None, dtype=object)
    graph = w.sparse.tocsr()
    graph = ((graph + graph.T) != 0).astype(np.int8)
    records = []
    for kind, prefix in KINDS.items():
        sub = np.flatnonzero(cls[tested] == kind)  # positions within ``tested``
        if not len(sub):
            continue
        _, labels = connected_components(graph[sub][:, sub], directed=False)
        groups = [tested[sub[labels == lab]] for lab in np.unique(labels)]
        groups = [g for g in groups if len(g) >= opts.min_size]
        groups.sort(key=lambda g: (-len(g), str(rows["_location"].iat[g[0]])))
        for number, members in enumerate(groups, start=1):
            ident = f"{prefix}{number}"
            area[members] = ident
            part = rows.iloc[members]
            lon, lat = float(part["_lon"].mean()), float(part["_lat"].mean())
            cercle, locality = _cercle(part), _place(part, transformer)
            records.append({
                "area": ident, "kind": kind, "name": _area_name(ident, cercle, locality), "cercle": cercle,
                "locality": locality, "n_locations": len(members),
                "members": sorted(part["_location"].tolist(), key=str),
                "median_index": float(part["_index"].median()),
                "idps": float(part["_idps"].fillna(0).sum()), "returnees": float(part["_returnees"].fillna(0).sum()),
                "longitude": lon, "latitude": lat})
    if not records:
        return area, _empty_areas()
    return area, pd.DataFrame(records).reindex(columns=AREA_COLUMNS)


def _changes(areas: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """``areas`` with their change since ``previous`` (the areas of the round before; None: first round)."""
    areas = areas.copy()
    if previous is None:
        areas["change"] = None
        areas["previous_area"] = None
        areas["n_previous"] = pd.array([pd.NA] * len(areas), dtype="Int64")
        areas["shared"] = pd.array([pd.NA] * len(areas), dtype="Int64")
        return _typed_areas(areas)
    matched: set = set()
    change, prev_id, n_prev, shared = [], [], [], []
    for _, row in areas.iterrows():
        mine = set(row["members"])
        best = None
        for _, old in previous[previous["kind"] == row["kind"]].iterrows():
            common = len(mine & set(old["members"]))
            if not common:
                continue
            score = (common, common / len(mine | set(old["members"])))
            if best is None or score > best[0]:
                best = (score, old)
        if best is None:
            change.append(APPEARED)
            prev_id.append(None)
            n_prev.append(pd.NA)
            shared.append(0)
            continue
        old = best[1]
        matched.add(old["area"])
        n_old = int(old["n_locations"])
        change.append(GREW if row["n_locations"] > n_old else SHRANK if row["n_locations"] < n_old else STABLE)
        prev_id.append(old["area"])
        n_prev.append(n_old)
        shared.append(best[0][0])
    areas["change"] = change
    areas["previous_area"] = prev_id
    areas["n_previous"] = pd.array(n_prev, dtype="Int64")
    areas["shared"] = pd.array(shared, dtype="Int64")
    gone = previous[~previous["area"].isin(matched)]
    if len(gone):
        gone = gone.assign(change=GONE, previous_area=gone["area"], area=None,
                           n_previous=gone["n_locations"].astype("Int64"), n_locations=0,
                           members=[[] for _ in range(len(gone))], shared=pd.array([0] * len(gone), dtype="Int64"),
                           median_index=np.nan, idps=np.nan, returnees=np.nan)
        areas = pd.concat([areas, gone.reindex(columns=AREA_COLUMNS)], ignore_index=True) if len(areas) else \
            gone.reindex(columns=AREA_COLUMNS).reset_index(drop=True)
    return _typed_areas(areas)
