"""Write a result as tables for analysts, programme teams and GIS users.

=================  ==============================================================
file               contents
=================  ==============================================================
scores.csv         one row per location and round (see ``Result.scores``), with its
                   ``pocket`` class and ``pocket_area`` when the spec names coordinates
scores.parquet     the same, typed
scores.xlsx        workbook: read-me (method, spec hash, data version), scores,
                   normalised indicators, data quality, audit log, pockets
locations.gpkg     GeoPackage point layer ``scores`` (EPSG:4326) with the scores, and
                   polygon layer ``pockets`` (the named pocket and hotspot areas)
pockets.csv        the pocket and hotspot areas of every round (:mod:`stability.pockets`)
audit_log.csv      every imputed, winsorised, transformed or dropped value (with the spec hash)
=================  ==============================================================

All files are written together or not at all, and as a set (see :func:`stability.io.write_set`):
the files of this table that an earlier run left in the folder and this run did not write (a
workbook when only CSV is asked for now, a GeoPackage of a spec with coordinates) are removed once
the new files are in place.  Other files of the folder are never touched.

Safe to open and to share:

* **no personal data**: informant names, phones, GPS, free text and device
  metadata of the survey never reach these tables (:mod:`stability.privacy`
  leaves them out of ``Result.units`` unless the spec lists them in
  ``columns.keep``);
* **no formulas**: a text cell of a CSV file starting with ``=``, ``+``, ``-``,
  ``@``, a tab or a carriage return (a location name, an informant profile...)
  is written with a leading ``'`` so that a spreadsheet shows it as text instead
  of running it (OWASP "CSV injection"); numbers, and text that is a plain
  number such as ``-3.5``, are written as they are (:func:`stability.io.to_csv`).
  The workbooks store every text as a string cell, never as a formula
  (xlsxwriter with ``strings_to_formulas`` off): their text is unchanged;
* **HXL** on request (``write_result(..., hxl=True)``): a row of Humanitarian
  Exchange Language hashtags under the header of ``scores.csv``
  (:func:`stability.io.hxl_row`: ``#loc+code``, ``#adm1+code``, ``#geo+lat``,
  ``#indicator+num+<id>``...), for HDX and HXL tools.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pandas as pd

from .io import to_csv, write_set, write_workbook

FORMATS = ("csv", "parquet", "xlsx", "gpkg")
#: Every file :func:`write_result` may write: a folder's earlier ones not written again are removed.
FILES = ("scores.csv", "scores.parquet", "scores.xlsx", "locations.gpkg", "pockets.csv", "audit_log.csv",
         "weights.csv")
ILLUSTRATIVE_NOTE = "ILLUSTRATIVE data (generated, not a real survey)"


def scores_table(result, found=None) -> pd.DataFrame:
    """The scores with a ``data_note`` column when the data are illustrative.

    With ``found`` (:func:`stability.pockets.find`), a ``pocket`` column (the class of each location
    and round: pocket of stability, hotspot of instability, outliers, not significant, not mapped)
    and a ``pocket_area`` column (the id of its named area, if any).
    """
    table = result.scores.copy()
    if found is not None:
        from .pockets import with_pockets

        table = with_pockets(table, found, column="pocket", area_column="pocket_area")
    if result.illustrative:
        table.insert(0, "data_note", ILLUSTRATIVE_NOTE)
    return table


def find_pockets(result):
    """Pockets and hotspots of every round (:func:`stability.pockets.find`), or None without coordinates."""
    c = result.spec.columns
    if not (c.longitude and c.latitude and c.longitude in result.scores and c.latitude in result.scores):
        return None
    from .pockets import find

    return find(result)


def pocket_areas_table(result, found) -> pd.DataFrame:
    """The named pocket and hotspot areas of every round, members as ``;``-separated ids (a table for files)."""
    areas = found.areas.copy()
    areas["members"] = ["; ".join(map(str, m)) if isinstance(m, (list, tuple)) else m for m in areas["members"]]
    if result.illustrative:
        areas.insert(0, "data_note", ILLUSTRATIVE_NOTE)
    return areas


def audit_table(result) -> pd.DataFrame:
    """The audit log with a ``spec_hash`` column (every output carries the spec hash), and a data note when
    illustrative."""
    table = result.log.assign(spec_hash=result.spec_hash)
    if result.illustrative:
        table.insert(0, "data_note", ILLUSTRATIVE_NOTE)
    return table


def weights_table(result) -> pd.DataFrame:
    """The weights in use (:attr:`Result.weights`) with the spec hash, and a data note when illustrative."""
    table = result.weights.assign(spec_hash=result.spec_hash)
    if result.illustrative:  # weights derived from generated data are generated too
        table.insert(0, "data_note", ILLUSTRATIVE_NOTE)
    return table


def about(result) -> pd.DataFrame:
    """Provenance and method, one row per item (the workbook's read-me sheet)."""
    from .pipeline import method_summary

    src = result.source
    rows = {"title": result.spec.name}
    if src.get("illustrative"):
        rows["WARNING"] = ILLUSTRATIVE_NOTE + ": do not use for programming decisions"
    rows.update({"dataset": src.get("name", ""), "data version": src.get("version", "")})
    for role, path in sorted(src.get("files", {}).items()):
        rows[f"{role} file"] = Path(path).name
    rows.update(method_summary(result.spec))
    rng = result.spec.index_range()
    rows["scale"] = ((f"{rng[0]:g}-{rng[1]:g}" if rng else "no fixed range") + ", higher = more stable; "
                     "rank 1 = most stable (ties share the lowest rank)")
    from .weights import describe

    rows["weights"] = " ".join(describe(result))
    for level, d in sorted(result.weight_derivations.items()):
        rows[f"weights of level {level}, how"] = " ".join(d.notes)
        if d.warnings:
            rows[f"weights of level {level}, warnings"] = " ".join(d.warnings)
    return pd.DataFrame({"item": list(rows), "value": list(rows.values())})


def _write_xlsx(result, path: Path, found=None) -> None:
    spec = result.spec
    scores = scores_table(result, found)
    norm = result.stage("normalised").reset_index()
    labels = {i.id: i.label or i.id for i in spec.indicators}
    quality = scores[[c for c in scores.columns if c in
                      ([spec.columns.location, spec.columns.round, spec.columns.name]
                       + ["n_informants", "n_missing", "n_imputed", "n_disagreements"]) and c]]
    used = result.weights.set_index("child")["weight"]  # share of the pillar, derived or written
    indicators = pd.DataFrame([{"indicator": i.id, "label": i.label, "pillar": spec.label(i.parent),
                                "direction": i.direction, "weight": used[i.id], "answers": i.answers or "number",
                                "goalposts": "" if i.goalposts is None else f"{i.goalposts[0]:g} - {i.goalposts[1]:g}",
                                "denominator": i.denominator or ""} for i in spec.indicators])
    sheets = {"Read me": about(result), "Scores": scores, "Indicators": indicators,
              "Indicator scores": norm.rename(columns=labels), "Weights": weights_table(result),
              "Data quality": quality, "Audit log": audit_table(result)}
    if found is not None:
        sheets["Pockets"] = pocket_areas_table(result, found)
        sheets["Spatial autocorrelation"] = found.global_moran
    for level, d in sorted(result.weight_derivations.items()):  # how derived weights came about
        for name, table in d.tables.items():
            if name != "rows_used":  # one flag per row and group: for the API, not for reading
                sheets[f"Weights {level} {name}"[:31]] = table
    write_workbook(path, sheets, spec.name)


def _write_gpkg(result, path: Path, found=None) -> None:
    import geopandas as gpd

    c = result.spec.columns
    table = scores_table(result, found)
    if not (c.longitude and c.latitude and c.longitude in table and c.latitude in table):
        raise ValueError("no coordinates")
    table["category"] = table["category"].astype(str).replace("nan", None)
    geo = gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(table[c.longitude], table[c.latitude]),
                           crs="EPSG:4326")
    with _fixed_gdal_date():
        geo.to_file(path, layer="scores", driver="GPKG")
        if found is not None:
            pocket_layer(result, found).to_file(path, layer="pockets", driver="GPKG")


#: Buffer (metres) around the member locations of a pocket area in the ``pockets`` layer.
POCKET_BUFFER_M = 5000.0


def pocket_layer(result, found):
    """The named pocket and hotspot areas as polygons (EPSG:4326): the convex hull of their member
    locations grown by :data:`POCKET_BUFFER_M` (computed in the area's azimuthal equidistant projection),
    with the area's attributes; an empty layer when there is none."""
    import geopandas as gpd
    import shapely
    from pyproj import CRS

    c = result.spec.columns
    areas = pocket_areas_table(result, found)
    areas = areas[areas["area"].notna()].reset_index(drop=True)
    xy = result.scores.drop_duplicates(c.location).set_index(c.location)[[c.longitude, c.latitude]]
    shapes = []
    for members, lon0, lat0 in zip(found.areas.loc[found.areas["area"].notna(), "members"], areas["longitude"],
                                   areas["latitude"]):
        pts = xy.reindex(list(members)).dropna()
        local = CRS.from_proj4(f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +datum=WGS84 +units=m")
        g = gpd.GeoSeries(gpd.points_from_xy(pts[c.longitude], pts[c.latitude]), crs="EPSG:4326").to_crs(local)
        hull = shapely.convex_hull(shapely.union_all(g.to_numpy())).buffer(POCKET_BUFFER_M)
        shapes.append(gpd.GeoSeries([hull], crs=local).to_crs("EPSG:4326").iloc[0])
    return gpd.GeoDataFrame(areas, geometry=shapes, crs="EPSG:4326")


#: The date GDAL writes in a GeoPackage's ``gpkg_contents.last_change`` (else the time of writing):
#: the same content gives the same bytes.
GPKG_DATE = "2000-01-01T00:00:00.000Z"


@contextlib.contextmanager
def _fixed_gdal_date():
    try:
        import pyogrio
    except ImportError:  # another engine: GDAL also reads its options from the environment
        before = os.environ.get("OGR_CURRENT_DATE")
        os.environ["OGR_CURRENT_DATE"] = GPKG_DATE
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("OGR_CURRENT_DATE", None)
            else:
                os.environ["OGR_CURRENT_DATE"] = before
        return
    before = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": GPKG_DATE})
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": before})


def hxl_tags(columns, spec) -> list[str]:
    """HXL hashtags for the columns of a table (``""`` for a column without one):
    :func:`stability.io.hxl_row` (``#loc+code``, ``#loc+name``, ``#adm1+code``, ``#geo+lat``,
    ``#indicator+num+<id>``, ``#indicator+category``...)."""
    from .io import hxl_row

    return ["" if t is None else str(t) for t in hxl_row(list(columns), spec)]


def write_result(result, out_dir: str | Path, formats: tuple[str, ...] = FORMATS, *,
                 hxl: bool = False, pockets: bool = True) -> list[Path]:
    """Write the scores (and audit log) of ``result`` to ``out_dir``, all files or none.

    The folder's files of an earlier call (:data:`FILES`) that this one does not write are
    removed once the new ones are in place (:func:`stability.io.write_set`).

    Parameters
    ----------
    result : Result
    out_dir : str or Path
    formats : tuple of {"csv", "parquet", "xlsx", "gpkg"}
        ``gpkg`` is skipped when the spec names no coordinate columns.
    hxl : bool
        Write a row of HXL hashtags (:func:`hxl_tags`) under the header of ``scores.csv``.
    pockets : bool
        When the spec names coordinates: find pockets of stability and hotspots
        (:mod:`stability.pockets`, the spec's ``pockets`` options), add the ``pocket`` and
        ``pocket_area`` columns to the scores, a ``Pockets`` sheet to ``scores.xlsx``, a ``pockets``
        layer to ``locations.gpkg`` and ``pockets.csv`` (the areas).

    Returns
    -------
    list of Path
        The files written.
    """
    out = Path(out_dir)
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown output format(s): {', '.join(sorted(unknown))}")
    found = find_pockets(result) if pockets else None
    scores = scores_table(result, found)
    writers = {}
    if "csv" in formats:
        tags = hxl_tags(scores.columns, result.spec) if hxl else None
        writers["scores.csv"] = lambda p: to_csv(scores, p, hxl=tags)
        writers["audit_log.csv"] = lambda p: to_csv(audit_table(result), p)
        writers["weights.csv"] = lambda p: to_csv(weights_table(result), p)
    if "parquet" in formats:
        writers["scores.parquet"] = lambda p: _parquet(scores, p, result)
    if "xlsx" in formats:
        writers["scores.xlsx"] = lambda p: _write_xlsx(result, p, found)
    c = result.spec.columns
    if "gpkg" in formats and c.longitude and c.latitude:
        writers["locations.gpkg"] = lambda p: _write_gpkg(result, p, found)
    if found is not None and "csv" in formats:
        writers["pockets.csv"] = lambda p: to_csv(pocket_areas_table(result, found), p)
    return write_set(out, writers, known=FILES)


def _parquet(table: pd.DataFrame, path: Path, result) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pa.Table.from_pandas(table.astype({"category": "string"}) if "category" in table else table,
                             preserve_index=False)
    meta = dict(t.schema.metadata or {})
    meta[b"stability.spec_hash"] = result.spec_hash.encode()
    meta[b"stability.illustrative"] = str(result.illustrative).encode()
    pq.write_table(t.replace_schema_metadata(meta), path)
