"""Loaders for the embedded Mali geodata.

The files live in :func:`stability.paths.geo_dir` (``data/external/geo``; see the ``SOURCES.md``
there for provenance, licences and caveats).  All layers are in EPSG:4326 and use the OCHA 2021
p-code scheme: ten regions ``ML01``..``ML10`` (Ménaka ``ML10`` split from Gao) and cercles
``MLxxyy``.  The cercle layer has 50 polygons: the pre-2016 Ménaka cercle is a single polygon coded
``ML1001`` (it covers the 2021 cercles ``ML1001``..``ML1004``).

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
