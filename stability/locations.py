"""Where the locations are: coordinates checked against the embedded boundaries, p-codes matched to names.

Two tools used by :mod:`stability.validate` (and by the reports' data-quality notes):

:func:`place`
    Places each location's point (longitude, latitude, WGS 84) in the embedded
    boundaries (:mod:`stability.geo`: Mali's 50 cercle polygons and 10 regions,
    the admin-1 units of Burkina Faso and Niger, and the three countries, each
    country the union of its admin-1 polygons) and compares it with the area the
    location's admin p-codes declare (the finest one with a polygon: the cercle,
    else the region, else the country).  A point farther from its declared
    polygon than a tolerance in metres (boundaries are simplified) is in the
    wrong place: in another area of the country (``elsewhere``), outside the
    country (``outside``), or with latitude and longitude swapped (``swapped``:
    the point is outside but ``(lon, lat)`` read the other way round is inside
    the declared area, or inside the country when the point is outside it).
    Points are joined to the polygons with one vectorised spatial-index query
    (the join :func:`geopandas.sjoin` performs, on a tree built once per
    process); distances are geodesic (WGS 84 ellipsoid, :class:`pyproj.Geod`) to
    the nearest boundary point found in an equidistant conic projection fitted
    to the Sahel (never in Web Mercator, whose scale is 1.5 % to 10 % off at Mali's latitudes).

:class:`PcodeMatcher`
    Suggests the p-code meant by an unknown code (edit distance on the codes:
    ``ML507`` -> ``ML0507``) or by a name (accent-folded, fuzzy:
    ``Tombouctu`` -> ``Tombouctou``), restricted to an admin level and, when
    known, to the declared parent area (rapidfuzz).

Spec options (``columns``): ``coordinates`` (``warning``, ``error`` or ``off``:
how :mod:`stability.validate` reports points that are not where their p-codes
say) and ``coordinate_tolerance`` (metres, default :data:`TOLERANCE_M`).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .geo import COUNTRY_NAMES, PCODE_PREFIXES

#: Default distance (metres) a point may lie outside its declared polygon: the embedded boundaries are
#: simplified (geoBoundaries, Natural Earth ~1 km), so points of border villages can fall just outside.
TOLERANCE_M = 5000.0
#: How ``validate`` reports misplaced points (``columns.coordinates``).
COORDINATE_CHECKS = ("warning", "error", "off")

#: Statuses of :func:`place`.
OK, MISSING, INVALID, UNCHECKED, ELSEWHERE, SWAPPED, OUTSIDE = (
    "ok", "missing", "invalid", "unchecked", "elsewhere", "swapped", "outside")

#: What admin levels 1 and 2 are called in each country of the embedded boundaries.
ADMIN_LEVEL_NAMES = {"MLI": ("region", "cercle"), "BFA": ("region", "province"), "NER": ("region", "department")}
#: Countries of the embedded boundaries: ISO3 -> (name, p-code prefix, names of admin levels 1 and 2), from
#: :data:`stability.geo.COUNTRY_NAMES` and :data:`stability.geo.PCODE_PREFIXES`.
COUNTRIES = {iso: (COUNTRY_NAMES[iso], prefix, ADMIN_LEVEL_NAMES[iso]) for prefix, iso in PCODE_PREFIXES.items()}

#: Equidistant conic fitted to the embedded layers (latitudes 9.4 to 25 N, longitudes 12.3 W to 16 E): standard
#: parallels at 1/6 and 5/6 of the latitude span, so that distances are within about 1 % everywhere; the
#: nearest boundary point is found here and the distance to it then measured on the ellipsoid.
PROJECTION = "+proj=eqdc +lat_0=17 +lat_1=12 +lat_2=22 +lon_0=2 +datum=WGS84 +units=m +no_defs"


# --------------------------------------------------------------------------- boundaries
@dataclass(frozen=True)
class Boundaries:
    """The embedded polygons, one row per area (countries, admin-1, admin-2).

    Attributes
    ----------
    areas : DataFrame
        ``code`` (p-code, or ISO3 for a country), ``name``, ``level`` (0 = country, 1, 2), ``country`` (ISO3).
    geometry : ndarray of shapely geometries (EPSG:4326, prepared), aligned with ``areas``.
    projected : ndarray of the same geometries in :data:`PROJECTION` (metres).
    """

    areas: pd.DataFrame
    geometry: np.ndarray
    projected: np.ndarray

    @functools.cached_property
    def position(self) -> dict[str, int]:
        """Code -> row of :attr:`areas`."""
        return {c: i for i, c in enumerate(self.areas["code"])}

    def label(self, code) -> str:
        """``Name/CODE`` of an area (``Mali`` for a country)."""
        i = self.position.get(code)
        if i is None:
            return str(code)
        row = self.areas.iloc[i]
        return row["name"] if row["level"] == 0 else f"{row['name']}/{code}"

    def term(self, code) -> str:
        """What the area is called: ``cercle``, ``region``, ``country``, ..."""
        i = self.position.get(code)
        if i is None:
            return "area"
        level, country = self.areas["level"].iat[i], self.areas["country"].iat[i]
        return "country" if level == 0 else COUNTRIES[country][2][level - 1]

    def country_name(self, iso3) -> str:
        return COUNTRIES.get(iso3, (str(iso3),))[0]


def _features(name: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Properties and geometries of an embedded GeoJSON layer (read with the standard library and shapely,
    without importing geopandas: the layers are in EPSG:4326 / CRS84, lon/lat)."""
    import json

    import shapely

    from .paths import geo_dir

    features = json.loads((geo_dir() / name).read_text(encoding="utf-8"))["features"]
    props = pd.DataFrame([f["properties"] for f in features])
    geoms = shapely.from_geojson([json.dumps(f["geometry"]) for f in features])
    return props, geoms


@functools.lru_cache(maxsize=1)
def boundaries() -> Boundaries:
    """The embedded boundaries (read once per process; see :mod:`stability.geo` for the layers)."""
    import shapely

    from . import geo

    names = dict(zip(*geo.load_pcodes(None)[["pcode", "name"]].T.to_numpy()))
    cercles, cercle_geoms = _features(geo.CERCLES_FILE)
    regions, region_geoms = _features(geo.REGIONS_FILE)
    sahel, sahel_geoms = _features(geo.LIPTAKO_GOURMA_FILE)
    other = (sahel["adm0_a3"] != "MLI").to_numpy()  # Mali's own regions (with Menaka) come from geoBoundaries
    units = pd.concat([
        pd.DataFrame({"code": cercles["adm2_pcode"], "name": cercles["adm2_name"], "level": 2, "country": "MLI",
                      "geometry": cercle_geoms}),
        pd.DataFrame({"code": regions["adm1_pcode"], "name": regions["adm1_name"], "level": 1, "country": "MLI",
                      "geometry": region_geoms}),
        pd.DataFrame({"code": sahel["adm1_pcode"][other], "name": sahel["adm1_name"][other], "level": 1,
                      "country": sahel["adm0_a3"][other], "geometry": sahel_geoms[other]}),
    ], ignore_index=True)
    countries = [{"code": iso3, "name": COUNTRIES[iso3][0], "level": 0, "country": iso3,
                  "geometry": shapely.union_all(shapely.make_valid(grp.to_numpy()))}
                 for iso3, grp in units[units["level"] == 1].groupby("country")["geometry"]]
    table = pd.concat([pd.DataFrame(countries), units], ignore_index=True)
    table["name"] = [names.get(c, n) for c, n in zip(table["code"], table["name"])]  # official OCHA names
    geometry = shapely.make_valid(table.pop("geometry").to_numpy())
    projected = _project(geometry)
    shapely.prepare(geometry)
    return Boundaries(table, geometry, projected)


@functools.lru_cache(maxsize=2)
def _transformer(inverse: bool = False):
    from pyproj import Transformer

    src, dst = ("EPSG:4326", PROJECTION) if not inverse else (PROJECTION, "EPSG:4326")
    return Transformer.from_crs(src, dst, always_xy=True)


def _project(geoms: np.ndarray) -> np.ndarray:
    import shapely

    tr = _transformer()
    return shapely.transform(geoms, lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1])))


def _geodesic_distance(lon: np.ndarray, lat: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Metres from each point to the nearest point of its target polygon (projected geometries), measured on the
    WGS 84 ellipsoid; 0 inside (the shortest line has length 0)."""
    import shapely
    from pyproj import Geod

    if len(lon) == 0:
        return np.zeros(0)
    x, y = _transformer().transform(lon, lat)
    pts = shapely.points(x, y)
    lines = shapely.shortest_line(pts, targets)
    ends = shapely.get_coordinates(shapely.get_point(lines, 1))
    elon, elat = _transformer(inverse=True).transform(ends[:, 0], ends[:, 1])
    _, _, dist = Geod(ellps="WGS84").inv(lon, lat, elon, elat)
    return np.asarray(dist, dtype=float)


class _Hits:
    """Which polygons contain which points: one vectorised spatial-index query (the join
    :func:`geopandas.sjoin` performs), boundaries included.

    The points are indexed and the (prepared) polygons query them, so that each polygon is tested only
    against the points of its bounding box, with its own prepared index of edges.
    """

    def __init__(self, b: Boundaries, lon: np.ndarray, lat: np.ndarray):
        import shapely

        self.n_areas = len(b.areas)
        self.first = np.full((len(lon), 3), -1, dtype=np.int64)
        if len(lon) == 0:
            self.keys = np.zeros(0, dtype=np.int64)
            return
        areas, pts = shapely.STRtree(shapely.points(lon, lat)).query(b.geometry, predicate="intersects")
        self.keys = np.sort(pts.astype(np.int64) * self.n_areas + areas)
        levels = b.areas["level"].to_numpy()[areas]
        order = np.lexsort((areas, levels, pts))  # where polygons of a level overlap, the lowest row is named
        pts, levels, areas = pts[order], levels[order], areas[order]
        first = np.ones(len(pts), dtype=bool)
        first[1:] = (pts[1:] != pts[:-1]) | (levels[1:] != levels[:-1])
        self.first[pts[first], levels[first]] = areas[first]

    def inside(self, area: np.ndarray) -> np.ndarray:
        """Whether point ``i`` is in polygon ``area[i]`` (False for ``-1``)."""
        keys = np.arange(len(area), dtype=np.int64) * self.n_areas + area
        pos = np.searchsorted(self.keys, keys)
        hit = np.zeros(len(area), dtype=bool)
        ok = (area >= 0) & (pos < len(self.keys))
        hit[ok] = self.keys[pos[ok]] == keys[ok]
        return hit


# --------------------------------------------------------------------------- placing points
def place(longitude, latitude, admin=(), tolerance: float = TOLERANCE_M, bounds: Boundaries | None = None
          ) -> pd.DataFrame:
    """Place points in the embedded boundaries and compare them with their declared areas.

    Parameters
    ----------
    longitude, latitude : array-like
        Coordinates in degrees (WGS 84); text, empty or out-of-range values are allowed (status
        ``missing`` or ``invalid``).
    admin : sequence of array-like
        The rows' admin p-codes, one array per level, coarsest first (e.g. region, cercle).  The
        declared area of a row is its finest p-code with an embedded polygon; a cercle without one
        (the 2021 Ménaka cercles ``ML1002``..``ML1004``) falls back to its region.  Rows with no
        known p-code are checked against the country of the other rows (or, without any p-code,
        the country where most points fall); without one, their status is ``unchecked``.
    tolerance : float
        Metres a point may lie outside its declared polygon (and outside the country).
    bounds : Boundaries, optional
        Polygons to use (default: :func:`boundaries`).

    Returns
    -------
    DataFrame
        One row per point, in order (``RangeIndex``):

        - ``status``: ``ok``, ``missing`` (a coordinate is empty), ``invalid`` (not a number, or
          outside [-180, 180] x [-90, 90]), ``unchecked`` (no country known), ``elsewhere`` (inside
          the country, beyond the tolerance from the declared area), ``swapped`` (latitude and
          longitude look swapped, see the module docstring) or ``outside`` (beyond the tolerance
          from the country);
        - ``valid``: both coordinates are numbers in range;
        - ``mappable``: valid coordinates within the tolerance of the row's country (or of no
          known country);
        - ``declared``: code of the declared area (ISO3 for a country), ``country`` (ISO3);
        - ``found``: code of the area of the declared level that contains the point (None if none);
        - ``distance_m``: geodesic distance from the point to the declared polygon (0 inside;
          NaN when not placed);
        - ``swapped_in``: for ``swapped`` rows, the area (declared level) that holds the swapped point.
    """
    b = bounds or boundaries()
    lon_raw, lat_raw = pd.Series(np.asarray(longitude, dtype=object)), pd.Series(np.asarray(latitude, dtype=object))
    n = len(lon_raw)
    lon = pd.to_numeric(lon_raw, errors="coerce").to_numpy(dtype=float)
    lat = pd.to_numeric(lat_raw, errors="coerce").to_numpy(dtype=float)
    missing = lon_raw.isna().to_numpy() | lat_raw.isna().to_numpy()
    with np.errstate(invalid="ignore"):
        valid = ~missing & np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
    areas = b.areas
    level_of = areas["level"].to_numpy()
    country_of = areas["country"].to_numpy()
    # declared area: the finest known p-code of the row
    declared = np.full(n, -1, dtype=np.int64)
    for codes in admin:
        pos = pd.Series(np.asarray(codes, dtype=object)).map(b.position).to_numpy(dtype=float)
        pos = np.where(np.isnan(pos), -1, pos).astype(np.int64)
        finer = (pos >= 0) & ((declared < 0) | (level_of[pos] > level_of[np.maximum(declared, 0)]))
        declared[finer] = pos[finer]
    at = np.flatnonzero(valid)
    hits = _Hits(b, lon[at], lat[at])
    found = np.full((n, 3), -1, dtype=np.int64)
    found[at] = hits.first

    def inside(area):  # point i in polygon area[i]
        out = np.zeros(n, dtype=bool)
        out[at] = hits.inside(area[at])
        return out

    # rows without a known p-code: the country of the others, else where most points fall
    countries = pd.Series(country_of[declared[declared >= 0]])
    if countries.empty:
        hosts = pd.Series(country_of[found[valid, 0][found[valid, 0] >= 0]])
        countries = hosts if len(hosts) * 2 >= max(int(valid.sum()), 1) else hosts.iloc[0:0]
    if not countries.empty:
        home = b.position[countries.mode().iat[0]]
        declared[declared < 0] = home
    known = declared >= 0
    dlevel = np.where(known, level_of[np.maximum(declared, 0)], 0)
    country = np.where(known, country_of[np.maximum(declared, 0)], None)
    country_pos = np.array([b.position.get(c, -1) for c in country], dtype=np.int64)
    rows = np.arange(n)
    found_at = np.where(valid & known, found[rows, dlevel], -1)

    status = np.full(n, OK, dtype=object)
    status[~known] = UNCHECKED
    status[missing] = MISSING
    status[~missing & ~valid] = INVALID
    distance = np.full(n, np.nan)
    check = valid & known
    home_in = check & inside(declared)
    found_at[home_in] = declared[home_in]
    distance[home_in] = 0.0
    away = np.flatnonzero(check & ~home_in)
    distance[away] = _geodesic_distance(lon[away], lat[away], b.projected[declared[away]])
    wrong = away[distance[away] > tolerance]
    # within the tolerance of the country?
    in_country = valid & (~known | inside(country_pos))
    off = np.flatnonzero(valid & known & ~in_country)
    in_country[off] = _geodesic_distance(lon[off], lat[off], b.projected[country_pos[off]]) <= tolerance
    # swapped: the point read the other way round fits the declared area (or the country, for points outside it)
    swapped_in = np.full(n, -1, dtype=np.int64)
    numeric = known & ~missing & np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 90) & (np.abs(lat) <= 180)
    cand = np.union1d(wrong, np.flatnonzero(numeric & ~valid))
    cand = cand[numeric[cand]]
    if cand.size:
        s_hits = _Hits(b, lat[cand], lon[cand])
        s_at = s_hits.first[np.arange(cand.size), dlevel[cand]]
        fits = s_hits.inside(declared[cand])
        near = np.flatnonzero(~fits)
        if near.size:
            d = _geodesic_distance(lat[cand[near]], lon[cand[near]], b.projected[declared[cand[near]]])
            fits[near] = d <= tolerance
        s_country = s_hits.inside(country_pos[cand])
        swap = fits | (~in_country[cand] & s_country)
        hit = cand[swap]
        status[hit] = SWAPPED
        swapped_in[hit] = np.where(fits[swap], declared[hit], np.where(s_at[swap] >= 0, s_at[swap], declared[hit]))
    rest = wrong[status[wrong] == OK]
    status[rest] = np.where(in_country[rest], ELSEWHERE, OUTSIDE)
    codes = areas["code"].to_numpy(dtype=object)

    def code(pos):
        return np.where(pos >= 0, codes[np.maximum(pos, 0)], None)

    return pd.DataFrame({"status": status, "valid": valid, "mappable": valid & in_country, "declared": code(declared),
                         "country": country, "found": code(found_at), "distance_m": distance,
                         "swapped_in": code(swapped_in)})


def coordinate(value: float) -> str:
    """A coordinate as written in messages: up to 5 decimals (about 1 m)."""
    text = f"{float(value):.5f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def describe(row, longitude, latitude, bounds: Boundaries | None = None) -> str:
    """What is wrong with a placed point, in words (``row``: a row of :func:`place`; empty if nothing).

    Formats (coordinates as ``(latitude, longitude)``)::

        latitude and longitude look swapped: (14.49, -4.19) would be in Mopti/ML0506
        latitude and longitude look swapped: (14.49, -4.19) would be in Djenne/ML0503, not in its cercle Mopti/ML0506
        (13.1, -4.2) is in cercle San/ML0405, 12.3 km outside its cercle Tominian/ML0407
        (-4.19, 14.49) is outside Mali, 1,830.2 km from its cercle Mopti/ML0506
        no coordinates: it cannot be mapped
    """
    b = bounds or boundaries()
    status = row["status"]
    if status == MISSING:
        return "no coordinates: it cannot be mapped"
    if status == SWAPPED:
        where = (f"({coordinate(longitude)}, {coordinate(latitude)}) would be in {b.label(row['swapped_in'])}")
        if row["swapped_in"] != row["declared"]:
            where += f", not in its {b.term(row['declared'])} {b.label(row['declared'])}"
        return "latitude and longitude look swapped: " + where
    point = f"({coordinate(latitude)}, {coordinate(longitude)})"
    away = f"{row['distance_m'] / 1000:,.1f} km"
    own = f"its {b.term(row['declared'])} {b.label(row['declared'])}"
    if status == ELSEWHERE:
        there = (f"in {b.term(row['found'])} {b.label(row['found'])}" if row["found"] is not None
                 else f"in no {b.term(row['declared'])}")
        return f"{point} is {there}, {away} outside {own}"
    if status == OUTSIDE:
        name = b.country_name(row["country"])
        return f"{point} is outside {name}" + ("" if row["declared"] == row["country"] else f", {away} from {own}")
    return ""


# --------------------------------------------------------------------------- p-codes
def fold(text) -> str:
    """Accent-folded, case-folded text with punctuation as single spaces (``Ségou-Nord`` -> ``segou nord``)."""
    s = unicodedata.normalize("NFKD", str(text))
    s = "".join(ch for ch in s if not unicodedata.combining(ch)).casefold()
    return re.sub(r"[^0-9a-z]+", " ", s).strip()


def _code_key(text) -> str:
    return re.sub(r"[^0-9A-Z]", "", str(text).upper())


def looks_like_code(text) -> bool:
    """A p-code has digits (``ML0507``, ``ML507``); a name has none (``Tenenkou``)."""
    return any(ch.isdigit() for ch in str(text))


class PcodeMatcher:
    """Fuzzy suggestions of p-codes from a reference table.

    Parameters
    ----------
    table : DataFrame
        ``pcode``, ``name``, ``parent`` (p-code of the parent, or the country for admin-1) and
        ``level`` (1, 2, ...), e.g. :func:`stability.validate.reference_table`.

    Names are compared accent- and case-folded (:func:`fold`) with rapidfuzz's ``WRatio``
    (score >= :attr:`NAME_CUTOFF`); codes by Levenshtein distance on their letters and digits (at
    most :attr:`CODE_DISTANCE`, and less than a third of the code's length).
    """

    NAME_CUTOFF = 80.0
    CODE_DISTANCE = 2

    def __init__(self, table: pd.DataFrame):
        t = table.reset_index(drop=True)
        self.codes = t["pcode"].astype(str).to_numpy()
        self.names = t["name"].fillna("").astype(str).to_numpy() if "name" in t else np.full(len(t), "")
        self.parents = t["parent"].astype(str).to_numpy()
        self.levels = t["level"].to_numpy()
        self._folded = [fold(x) for x in self.names]
        self._keys = [_code_key(x) for x in self.codes]
        self.name_of = dict(zip(self.codes, self.names))

    def _pool(self, level, parent) -> np.ndarray:
        keep = np.ones(len(self.codes), dtype=bool)
        if level is not None:
            keep &= self.levels == level
        if parent is not None:
            keep &= self.parents == str(parent)
        return np.flatnonzero(keep)

    def by_name(self, name, level=None, parent=None) -> list[str]:
        """Codes whose name is closest to ``name`` (ties kept; empty if none is close enough)."""
        from rapidfuzz import fuzz, process

        query = fold(name)
        pool = self._pool(level, parent)
        if not query or pool.size == 0:
            return []
        hits = process.extract(query, [self._folded[i] for i in pool], scorer=fuzz.WRatio,
                               score_cutoff=self.NAME_CUTOFF, limit=None)
        if not hits:
            return []
        exact = [h for h in hits if h[0] == query]
        best = max(h[1] for h in hits)
        chosen = exact or [h for h in hits if h[1] == best]
        return [self.codes[pool[h[2]]] for h in chosen]

    def by_code(self, code, level=None, parent=None) -> list[str]:
        """Codes at the smallest edit distance from ``code`` (ties kept; empty if none is close enough)."""
        from rapidfuzz.distance import Levenshtein

        key = _code_key(code)
        pool = self._pool(level, parent)
        if not key or pool.size == 0:
            return []
        cutoff = min(self.CODE_DISTANCE, max(1, (len(key) - 1) // 3))
        dist = np.array([Levenshtein.distance(key, self._keys[i], score_cutoff=cutoff + 1) for i in pool])
        if dist.size == 0 or dist.min() > cutoff:
            return []
        return [self.codes[i] for i in pool[dist == dist.min()]]

    def suggest(self, value=None, name=None, level=None, parent=None, limit: int = 3) -> list[str]:
        """The p-codes most likely meant, at ``level`` and under ``parent`` when given.

        ``value`` is what the p-code column holds (an unknown code, or a name written there) and ``name``
        the name given on the same row.  Each is searched under ``parent`` first, then at the whole level.
        A name in the code column decides; for a mistyped code, the codes close to it that also match the
        name win, else the name's matches (a code one edit away from several codes is ambiguous), else
        the code's.
        """
        def given(text):
            return text is not None and not (isinstance(text, float) and np.isnan(text)) and bool(str(text).strip())

        def search(find, text):
            for under in ([parent, None] if parent is not None else [None]):
                hits = find(text, level, under)
                if hits:
                    return hits
            return []

        code_like = given(value) and looks_like_code(value)
        if given(value) and not code_like:
            found = search(self.by_name, value)
            if found:
                return found[:limit]
        by_name = search(self.by_name, name) if given(name) else []
        by_code = search(self.by_code, value) if code_like else []
        found = [c for c in by_code if c in by_name] or by_name or by_code
        return found[:limit]

    def hint(self, value=None, name=None, level=None, parent=None) -> str:
        """`` -> ML0507 Tenenkou?`` (or ``... or ...`` for ties), empty without a suggestion."""
        found = self.suggest(value, name, level, parent)
        if not found:
            return ""
        return " -> " + " or ".join(f"{c} {self.name_of.get(c, '')}".rstrip() for c in found) + "?"


# --------------------------------------------------------------------------- reports
def unmappable(frame: pd.DataFrame, columns) -> pd.Series | None:
    """Why each location of ``frame`` cannot be drawn on a map ("" when it can).

    Parameters
    ----------
    frame : DataFrame
        Locations with the spec's coordinate and admin columns (e.g. a round of ``Result.scores``).
    columns : Columns
        The spec's ``columns`` section (``longitude``, ``latitude``, ``admin``, ``coordinates``,
        ``coordinate_tolerance``).

    Returns
    -------
    Series or None
        Aligned with ``frame``: ``"no coordinates"``, ``"invalid coordinates"`` (not numbers, or out of
        range), ``"outside <country>"`` (beyond the tolerance from the country of its p-codes;
        ``"outside <country>, latitude and longitude swapped?"`` when they look swapped) or ``""``.  Points
        are placed only when ``columns.coordinates`` is not ``off``.  None when the spec names no
        coordinates or ``frame`` lacks them.
    """
    lon, lat = columns.longitude, columns.latitude
    if not (lon and lat and lon in frame.columns and lat in frame.columns):
        return None
    admin = [frame[a].to_numpy() for a in columns.admin if a in frame.columns]
    placed = place(frame[lon].to_numpy(), frame[lat].to_numpy(), admin, tolerance=columns.coordinate_tolerance)
    if columns.coordinates == "off":  # points not placed: only missing and invalid ones
        placed["mappable"] = placed["valid"]
        placed.loc[placed["status"] == SWAPPED, "status"] = INVALID
    b = boundaries()
    status = placed["status"].to_numpy()
    why = np.where(placed["valid"], [f"outside {b.country_name(c)}" for c in placed["country"]], "invalid coordinates")
    why = np.where(status == MISSING, "no coordinates", why).astype(object)
    why[status == SWAPPED] += ", latitude and longitude swapped?"
    why[placed["mappable"].to_numpy()] = ""
    return pd.Series(why, index=frame.index, dtype=object)
