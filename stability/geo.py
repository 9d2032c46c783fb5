"""Loaders for the embedded geodata of Mali and the Liptako-Gourma area (Mali, Burkina Faso, Niger).

The files live in :func:`stability.paths.geo_dir` (``data/external/geo``; see the ``SOURCES.md``
there for provenance, licences and caveats).  All layers are in EPSG:4326.  Mali uses the OCHA 2021
p-code scheme: ten regions ``ML01``..``ML10`` (Ménaka ``ML10`` split from Gao) and cercles
``MLxxyy``.  The cercle layer has 50 polygons: the pre-2016 Ménaka cercle is a single polygon coded
``ML1001`` (it covers the 2021 cercles ``ML1001``..``ML1004``).

Burkina Faso and Niger use the OCHA p-codes of :func:`load_pcodes` (regions ``BFxx`` / ``NE00x``,
provinces ``BFxxyy``, departments ``NE00xyyy``).  Their admin-1 polygons come from the Natural Earth
layer of :func:`load_liptako_gourma`; Burkina Faso's provinces from the Natural Earth province
layer, joined by name to the OCHA p-codes (:func:`load_bfa_provinces`).  No polygons of Niger's
departments are embedded: :func:`load_niger_department_seats` gives the department seats
(chefs-lieux) found among the GeoNames localities, and :func:`nearest_department` assigns a point to
the department of its region whose seat is nearest (an approximation, see there).
:func:`load_admin1` and :func:`load_admin2` gather the polygons of the three countries.

Geopandas is imported inside the functions so that ``import stability.geo`` stays light.

Column names follow the geometry files: ``adm1_pcode``, ``adm1_name``, ``adm2_pcode``,
``adm2_name``.  Join layers on p-codes, not on names (spellings differ between sources).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stability.paths import geo_dir

if TYPE_CHECKING:  # pragma: no cover - typing only
    import geopandas as gpd
    import pandas as pd

REGIONS_FILE = "mli_adm1_regions_gb_ocha_pcodes.geojson"
CERCLES_FILE = "mli_adm2_cercles_gb_ocha_pcodes.geojson"
PCODES_FILE = "pcodes_mli_bfa_ner_adm1_adm2.csv"
LOCALITIES_FILE = "places_geonames_cities500_mli_bfa_ner.geojson"
POPULATION_ADM1_FILE = "mli_population_adm1_cod_ps.csv"
POPULATION_ADM2_FILE = "mli_population_adm2_cod_ps.csv"
LIPTAKO_GOURMA_FILE = "liptako_gourma_adm1_naturalearth10m.geojson"
BFA_PROVINCES_FILE = "bfa_provinces_naturalearth10m.geojson"

#: Countries of the embedded geodata: ISO3 -> name.
COUNTRY_NAMES = {"MLI": "Mali", "BFA": "Burkina Faso", "NER": "Niger"}
#: OCHA p-code prefix -> ISO3.
PCODE_PREFIXES = {"ML": "MLI", "BF": "BFA", "NE": "NER"}

#: Natural Earth province names of Burkina Faso that are not spelled like the OCHA admin-2 names once
#: accents, case and punctuation are folded (Natural Earth name -> OCHA name).
BFA_PROVINCE_ALIASES = {"Komoé": "Comoe", "Mou Houn": "Mouhoun", "Kouritenga": "Kourittenga",
                        "Komondjari": "Komandjari"}
#: Niger departments whose seat is spelled differently in GeoNames (OCHA name -> GeoNames name).
NER_SEAT_ALIASES = {"Ayerou": "Ayorou", "Balleyara": "Baléyara"}

#: Old (pre-2021) population-table p-codes mapped to the 2021 scheme: the old Ménaka cercle
#: ``ML0704`` (region Gao ``ML07``) is the polygon ``ML1001`` of region Ménaka ``ML10``.
OLD_TO_2021_ADM2 = {"ML0704": "ML1001"}

_CRS = "EPSG:4326"


def _read_vector(name: str) -> gpd.GeoDataFrame:
    import geopandas as gpd

    gdf = gpd.read_file(geo_dir() / name)
    # The GeoJSON files declare OGC:CRS84 (lon/lat, same axis order as used here).
    return gdf.set_crs(_CRS, allow_override=True)


def load_regions() -> gpd.GeoDataFrame:
    """Load the ten Mali regions (admin-1) with their 2021 OCHA p-codes.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per region, sorted by ``adm1_pcode``, with columns ``adm1_pcode`` (``ML01`` ..
        ``ML10``), ``adm1_name``, ``iso_3166_2``, ``adm0_iso3`` and ``geometry`` (polygons,
        EPSG:4326).
    """
    gdf = _read_vector(REGIONS_FILE)
    return gdf.sort_values("adm1_pcode", kind="stable").reset_index(drop=True)


def load_cercles() -> gpd.GeoDataFrame:
    """Load the 50 Mali cercle polygons (admin-2) with their 2021 OCHA p-codes.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per polygon, sorted by ``adm2_pcode``, with columns ``adm2_pcode``, ``adm2_name``,
        ``adm1_pcode``, ``adm1_name``, ``gb_shapeID`` (geoBoundaries id), ``note``,
        ``adm0_pcode``, ``adm0_iso3`` and ``geometry`` (polygons, EPSG:4326).

    Notes
    -----
    The 2021 Ménaka cercles ``ML1001``..``ML1004`` are represented by one polygon (the pre-2016
    Ménaka cercle) coded ``ML1001`` in region ``ML10``; its ``note`` says so.  Names are the
    geoBoundaries spellings (e.g. "Baroueli"); use :func:`load_pcodes` for the official names.
    """
    gdf = _read_vector(CERCLES_FILE)
    gdf["note"] = gdf["note"].fillna("")
    return gdf.sort_values("adm2_pcode", kind="stable").reset_index(drop=True)


def load_pcodes(country: str | None = "MLI") -> pd.DataFrame:
    """Load the official OCHA admin-1 / admin-2 p-codes with names and parents.

    Parameters
    ----------
    country : str or None, default "MLI"
        ISO3 code of the country to keep (``"MLI"``, ``"BFA"`` or ``"NER"``); ``None`` keeps all
        three countries.

    Returns
    -------
    pandas.DataFrame
        One row per p-code with columns ``country`` (ISO3), ``admin_level`` (1 or 2), ``pcode``,
        ``name``, ``parent_pcode`` (the country ISO3 for admin-1, the region p-code for admin-2),
        ``parent_name`` (empty for admin-1) and ``valid_from`` (``YYYY-MM-DD`` string).  Sorted
        by country, level and p-code.  Mali has 10 regions and 53 cercles (all four Ménaka
        cercles are listed, although the boundary layer has a single Ménaka polygon).
    """
    import pandas as pd

    raw = pd.read_csv(geo_dir() / PCODES_FILE, dtype=str, keep_default_na=False)
    df = pd.DataFrame(
        {
            "country": raw["Location"],
            "admin_level": raw["Admin Level"].astype("int64"),
            "pcode": raw["P-Code"],
            "name": raw["Name"],
            "parent_pcode": raw["Parent P-Code"],
            "valid_from": raw["Valid from date"],
        }
    )
    if country is not None:
        df = df[df["country"] == country.upper()]
    names = dict(zip(df["pcode"], df["name"], strict=True))
    df = df.assign(parent_name=[names.get(p, "") if lvl == 2 else "" for p, lvl in
                                zip(df["parent_pcode"], df["admin_level"], strict=True)])
    df = df[["country", "admin_level", "pcode", "name", "parent_pcode", "parent_name", "valid_from"]]
    return df.sort_values(["country", "admin_level", "pcode"], kind="stable").reset_index(drop=True)


def load_localities(country: str | None = "ML", inside_only: bool = False) -> gpd.GeoDataFrame:
    """Load the GeoNames localities (population >= 500) with Mali admin p-codes.

    Parameters
    ----------
    country : str or None, default "ML"
        GeoNames two-letter country code to keep (``"ML"``, ``"BF"`` or ``"NE"``); ``None``
        keeps all three countries.
    inside_only : bool, default False
        Drop the localities that fall outside every Mali cercle polygon (their ``adm2_pcode`` is
        missing; two Mali points, and every non-Mali point).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``geonameid`` (int), ``name``, ``latitude``, ``longitude``, ``countrycode``,
        ``admin1code`` (GeoNames code, not an OCHA p-code), ``population`` (GeoNames figure; 0
        means unknown), ``timezone``, ``adm2_pcode``, ``adm1_pcode`` (from the spatial join with
        the cercle polygons, missing outside Mali's cercles) and point ``geometry``.  Ordered as in
        the file (by country, then decreasing population).
    """
    gdf = _read_vector(LOCALITIES_FILE)
    if country is not None:
        gdf = gdf[gdf["countrycode"] == country.upper()]
    if inside_only:
        gdf = gdf[gdf["adm2_pcode"].notna()]
    gdf = gdf.astype({"geonameid": "int64", "population": "int64"})
    return gdf.reset_index(drop=True)


def load_population(level: int = 2) -> pd.DataFrame:
    """Load Mali's population by cercle (or region), converted to the 2021 p-code scheme.

    The OCHA COD-PS tables use the old scheme (nine regions; the Ménaka cercle is ``ML0704``
    under Gao ``ML07``).  Here the old Ménaka cercle becomes ``ML1001`` in region ``ML10`` (the
    code of the single Ménaka polygon in :func:`load_cercles`), and regions are re-aggregated from
    the converted cercles, so Gao excludes Ménaka.

    Parameters
    ----------
    level : {2, 1}, default 2
        2 for cercles (50 rows, one per polygon of :func:`load_cercles`; the old ``ML0704``
        becomes ``ML1001``), 1 for regions (10 rows).

    Returns
    -------
    pandas.DataFrame
        For ``level=2``: ``adm2_pcode``, ``adm2_name``, ``adm1_pcode``, ``adm1_name``,
        ``source_pcode`` (p-code in the source table), ``male``, ``female``, ``population``
        (total), sorted by ``adm2_pcode``.  For ``level=1``: ``adm1_pcode``, ``adm1_name``,
        ``male``, ``female``, ``population``, sorted by ``adm1_pcode``.  Names are the official
        OCHA names from :func:`load_pcodes`.
    """
    import pandas as pd

    if level not in (1, 2):
        raise ValueError(f"level must be 1 or 2, not {level!r}")
    raw = pd.read_csv(geo_dir() / POPULATION_ADM2_FILE, dtype={"admin2Pcode": str})
    pcodes = load_pcodes("MLI")
    names = dict(zip(pcodes["pcode"], pcodes["name"], strict=True))
    parents = dict(zip(pcodes["pcode"], pcodes["parent_pcode"], strict=True))
    adm2 = raw["admin2Pcode"].map(lambda p: OLD_TO_2021_ADM2.get(p, p))
    df = pd.DataFrame(
        {
            "adm2_pcode": adm2,
            "adm2_name": adm2.map(names),
            "adm1_pcode": adm2.map(parents),
            "source_pcode": raw["admin2Pcode"],
            "male": raw["M_TL"].astype("int64"),
            "female": raw["F_TL"].astype("int64"),
            "population": raw["T_TL"].astype("int64"),
        }
    )
    df.insert(3, "adm1_name", df["adm1_pcode"].map(names))
    if df[["adm2_name", "adm1_pcode", "adm1_name"]].isna().any().any():  # pragma: no cover
        raise ValueError("population table has p-codes missing from the p-code list")
    df = df.sort_values("adm2_pcode", kind="stable").reset_index(drop=True)
    if level == 2:
        return df
    out = df.groupby(["adm1_pcode", "adm1_name"], as_index=False, sort=True)[
        ["male", "female", "population"]
    ].sum()
    return out.reset_index(drop=True)


def load_liptako_gourma() -> gpd.GeoDataFrame:
    """Load the admin-1 units of Mali, Niger and Burkina Faso (Natural Earth, consistent borders).

    Returns
    -------
    geopandas.GeoDataFrame
        30 rows with ``adm0_a3``, ``adm1_pcode`` (OCHA), ``adm1_name``, ``iso_3166_2`` and
        ``geometry``.  Mali has 9 units here (no Ménaka region); use :func:`load_regions` for
        Mali's 2021 regions.
    """
    return _read_vector(LIPTAKO_GOURMA_FILE)


def country_of(pcode) -> str | None:
    """ISO3 code of the country of an OCHA p-code (``"BF56"`` -> ``"BFA"``), or None if unknown.

    Parameters
    ----------
    pcode : str
        A p-code of Mali (``ML``), Burkina Faso (``BF``) or Niger (``NE``), any level.

    Returns
    -------
    str or None
    """
    return PCODE_PREFIXES.get(str(pcode)[:2].upper()) if pcode is not None else None


def _fold(text) -> str:
    """Accent- and case-folded letters and digits only (``Birni N'Konni`` -> ``birninkonni``)."""
    import re
    import unicodedata

    s = unicodedata.normalize("NFKD", str(text))
    s = "".join(ch for ch in s if not unicodedata.combining(ch)).casefold()
    return re.sub(r"[^0-9a-z]+", "", s)


def load_bfa_provinces() -> gpd.GeoDataFrame:
    """Load the 45 Burkina Faso provinces (admin-2, Natural Earth) with their OCHA p-codes.

    The Natural Earth layer has names and the region of each province but no p-codes.  Each province
    is matched to the OCHA admin-2 unit of :func:`load_pcodes` with the same name (accents, case and
    punctuation folded; the four spellings of :data:`BFA_PROVINCE_ALIASES` mapped first) within the
    OCHA region of the same name; every province must match exactly one p-code.

    Returns
    -------
    geopandas.GeoDataFrame
        45 rows sorted by ``adm2_pcode``, with ``adm2_pcode``, ``adm2_name`` (OCHA name),
        ``adm1_pcode``, ``adm1_name`` (OCHA), ``ne_name`` (the Natural Earth name),
        ``iso_3166_2``, ``adm0_iso3`` (``"BFA"``) and ``geometry`` (polygons, EPSG:4326).  The
        polygons come from Natural Earth 10m, like the admin-1 polygons of
        :func:`load_liptako_gourma`, but are not simplified: their outer edges can differ from
        those of the admin-1 polygons by up to about a kilometre.

    Raises
    ------
    ValueError
        When a province matches no OCHA p-code, or two provinces the same one.
    """
    gdf = _read_vector(BFA_PROVINCES_FILE)
    pcodes = load_pcodes("BFA")
    adm1 = pcodes[pcodes["admin_level"] == 1]
    adm2 = pcodes[pcodes["admin_level"] == 2]
    region_code = {_fold(n): p for p, n in zip(adm1["pcode"], adm1["name"], strict=True)}
    by_name = {(parent, _fold(n)): (p, n) for p, n, parent in
               zip(adm2["pcode"], adm2["name"], adm2["parent_pcode"], strict=True)}
    rows = []
    for name, region in zip(gdf["name"], gdf["region"], strict=True):
        parent = region_code.get(_fold(region))
        hit = by_name.get((parent, _fold(BFA_PROVINCE_ALIASES.get(name, name))))
        if hit is None:
            raise ValueError(f"Burkina Faso province {name!r} ({region}) matches no OCHA p-code")
        rows.append((hit[0], hit[1], parent))
    codes = [r[0] for r in rows]
    if len(set(codes)) != len(codes):  # pragma: no cover - defensive
        raise ValueError("two Burkina Faso provinces match the same OCHA p-code")
    names = dict(zip(adm1["pcode"], adm1["name"], strict=True))
    out = gdf.assign(
        adm2_pcode=codes,
        adm2_name=[r[1] for r in rows],
        adm1_pcode=[r[2] for r in rows],
        adm1_name=[names[r[2]] for r in rows],
        ne_name=gdf["name"],
        adm0_iso3="BFA",
    )
    cols = ["adm2_pcode", "adm2_name", "adm1_pcode", "adm1_name", "ne_name", "iso_3166_2", "adm0_iso3", "geometry"]
    return out[cols].sort_values("adm2_pcode", kind="stable").reset_index(drop=True)


def load_niger_department_seats() -> pd.DataFrame:
    """The seats (chefs-lieux) of Niger's departments found among the GeoNames localities.

    Niger's departments have no embedded polygons.  The seat of a department is taken to be the
    GeoNames Niger locality with the department's name (accents, case and punctuation folded; the
    spellings of :data:`NER_SEAT_ALIASES` mapped first) that lies inside the department's region
    (admin-1 polygon of :func:`load_liptako_gourma`).  The urban departments ``Ville de ...``
    (Niamey, Maradi, Tahoua, Zinder) share their seat with a department of the same name, or are a
    whole region (Niamey), and are left out, as are departments whose seat is not found.

    Returns
    -------
    pandas.DataFrame
        One row per department with a seat, sorted by ``adm2_pcode``: ``adm2_pcode``,
        ``adm2_name`` (OCHA), ``adm1_pcode``, ``adm1_name``, ``seat_name`` (GeoNames name),
        ``geonameid``, ``longitude``, ``latitude``.
    """
    import pandas as pd
    import shapely

    pcodes = load_pcodes("NER")
    deps = pcodes[(pcodes["admin_level"] == 2) & ~pcodes["name"].str.startswith("Ville de")]
    regions = load_liptako_gourma()
    regions = regions[regions["adm0_a3"] == "NER"]
    polygon = dict(zip(regions["adm1_pcode"], regions.geometry, strict=True))
    places = load_localities("NE")
    keys = [_fold(n) for n in places["name"]]
    rows = []
    for code, name, parent, parent_name in zip(deps["pcode"], deps["name"], deps["parent_pcode"],
                                               deps["parent_name"], strict=True):
        key = _fold(NER_SEAT_ALIASES.get(name, name))
        region = polygon.get(parent)
        for i, k in enumerate(keys):
            x, y = float(places["longitude"].iat[i]), float(places["latitude"].iat[i])
            if k == key and region is not None and shapely.contains_xy(region, x, y):
                rows.append({"adm2_pcode": code, "adm2_name": name, "adm1_pcode": parent, "adm1_name": parent_name,
                             "seat_name": places["name"].iat[i], "geonameid": int(places["geonameid"].iat[i]),
                             "longitude": x, "latitude": y})
                break
    cols = ["adm2_pcode", "adm2_name", "adm1_pcode", "adm1_name", "seat_name", "geonameid", "longitude", "latitude"]
    return pd.DataFrame(rows, columns=cols).sort_values("adm2_pcode", kind="stable").reset_index(drop=True)


def nearest_department(longitude, latitude, adm1_pcode, seats: pd.DataFrame | None = None):
    """Assign points of Niger to the department of their region whose seat is nearest (an approximation).

    Without department polygons, a point is given the department, among those of its region
    (``adm1_pcode``) with a seat in :func:`load_niger_department_seats`, whose seat is nearest by
    great-circle distance (sphere of radius 6,371 km): the departments are approximated by the
    Voronoi cells of their seats within the region.  Near a department boundary, and for departments
    with an off-centre seat or without a seat found, the assignment can be wrong; it is meant for
    illustrative data, not to place real locations.

    Parameters
    ----------
    longitude, latitude : array-like of float
        Points (degrees, WGS 84).
    adm1_pcode : array-like of str
        Region p-code of each point.
    seats : pandas.DataFrame, optional
        :func:`load_niger_department_seats` (read when not given).

    Returns
    -------
    numpy.ndarray of str (object)
        The department p-code of each point; ``""`` for a point whose region has no seat.
    """
    import numpy as np

    if seats is None:
        seats = load_niger_department_seats()
    lon = np.radians(np.asarray(longitude, dtype="float64"))
    lat = np.radians(np.asarray(latitude, dtype="float64"))
    region = np.asarray(adm1_pcode, dtype=object)
    out = np.full(len(lon), "", dtype=object)
    for parent, grp in seats.groupby("adm1_pcode", sort=True):
        sel = np.flatnonzero(region == parent)
        if not len(sel):
            continue
        slon = np.radians(grp["longitude"].to_numpy(dtype="float64"))[None, :]
        slat = np.radians(grp["latitude"].to_numpy(dtype="float64"))[None, :]
        h = (np.sin((slat - lat[sel, None]) / 2.0) ** 2
             + np.cos(lat[sel, None]) * np.cos(slat) * np.sin((slon - lon[sel, None]) / 2.0) ** 2)
        out[sel] = grp["adm2_pcode"].to_numpy(dtype=object)[np.argmin(h, axis=1)]
    return out


def load_admin1(countries=None) -> gpd.GeoDataFrame:
    """Admin-1 polygons of Mali, Burkina Faso and Niger in one layer.

    Mali's ten 2021 regions come from :func:`load_regions` (geoBoundaries, with Ménaka); Burkina
    Faso's 13 and Niger's 8 regions from :func:`load_liptako_gourma` (Natural Earth).  The two
    sources' borders between Mali and its neighbours differ by up to a few kilometres.

    Parameters
    ----------
    countries : iterable of str, optional
        ISO3 codes to keep (default all three).

    Returns
    -------
    geopandas.GeoDataFrame
        ``adm0_iso3``, ``adm1_pcode``, ``adm1_name`` (OCHA names) and ``geometry``, sorted by
        p-code.
    """
    import geopandas as gpd
    import pandas as pd

    keep = set(COUNTRY_NAMES) if countries is None else {str(c).upper() for c in countries}
    names = load_pcodes(None).set_index("pcode")["name"]
    mli = load_regions()
    other = load_liptako_gourma()
    other = other[other["adm0_a3"] != "MLI"]
    frame = pd.concat([
        pd.DataFrame({"adm0_iso3": "MLI", "adm1_pcode": mli["adm1_pcode"], "geometry": mli.geometry.values}),
        pd.DataFrame({"adm0_iso3": other["adm0_a3"].to_numpy(), "adm1_pcode": other["adm1_pcode"].to_numpy(),
                      "geometry": other.geometry.values}),
    ], ignore_index=True)
    frame = frame[frame["adm0_iso3"].isin(keep)]
    frame.insert(2, "adm1_name", frame["adm1_pcode"].map(names).fillna(frame["adm1_pcode"]))
    gdf = gpd.GeoDataFrame(frame, geometry="geometry", crs=_CRS)
    return gdf.sort_values("adm1_pcode", kind="stable").reset_index(drop=True)


def load_admin2(countries=None) -> gpd.GeoDataFrame:
    """Admin-2 polygons available for Mali, Burkina Faso and Niger in one layer.

    Mali's 50 cercle polygons (:func:`load_cercles`) and Burkina Faso's 45 provinces
    (:func:`load_bfa_provinces`); Niger's departments have no polygons (see
    :func:`nearest_department`).

    Parameters
    ----------
    countries : iterable of str, optional
        ISO3 codes to keep (default all three).

    Returns
    -------
    geopandas.GeoDataFrame
        ``adm0_iso3``, ``adm2_pcode``, ``adm2_name``, ``adm1_pcode`` and ``geometry``, sorted by
        p-code.  Names are the geoBoundaries spellings for Mali (as :func:`load_cercles`) and the
        OCHA names for Burkina Faso.
    """
    import geopandas as gpd
    import pandas as pd

    keep = set(COUNTRY_NAMES) if countries is None else {str(c).upper() for c in countries}
    parts = []
    if "MLI" in keep:
        c = load_cercles()
        parts.append(pd.DataFrame({"adm0_iso3": "MLI", "adm2_pcode": c["adm2_pcode"], "adm2_name": c["adm2_name"],
                                   "adm1_pcode": c["adm1_pcode"], "geometry": c.geometry.values}))
    if "BFA" in keep:
        b = load_bfa_provinces()
        parts.append(pd.DataFrame({"adm0_iso3": "BFA", "adm2_pcode": b["adm2_pcode"], "adm2_name": b["adm2_name"],
                                   "adm1_pcode": b["adm1_pcode"], "geometry": b.geometry.values}))
    cols = ["adm0_iso3", "adm2_pcode", "adm2_name", "adm1_pcode", "geometry"]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    gdf = gpd.GeoDataFrame(frame[cols], geometry="geometry", crs=_CRS)
    return gdf.sort_values("adm2_pcode", kind="stable").reset_index(drop=True)
