"""Locations where their p-codes say: coordinates against the embedded boundaries, fuzzy p-code suggestions,
and the reports' note on locations that cannot be mapped (``stability.locations``)."""

from __future__ import annotations

import re
import time

import numpy as np
import pandas as pd
import pytest

from stability import locations as locs
from stability.cli import main
from stability.locations import PcodeMatcher, boundaries, place
from stability.validate import reference_table, validate

LOC = "locations.csv"
#: Lines of locations.csv (header = 1) whose coordinates are swapped: ten locations across the regions.
SWAPPED_LINES = (2, 3, 160, 340, 555, 700, 901, 1111, 1290, 1501)


def run(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def validate_copy(capsys, d):
    return run(capsys, "validate", "--data", d.data, "--spec", d.spec)


def register(d) -> pd.DataFrame:
    return pd.read_csv(d.data / LOC, dtype={"admin1_pcode": str, "admin2_pcode": str})


def ocha_name(code: str) -> str:
    table = reference_table("ocha")
    return table.set_index("pcode").at[code, "name"]


def swap(d, lines) -> None:
    for line in lines:
        lon = d.set_cell(LOC, line, "longitude", "x")
        lat = d.set_cell(LOC, line, "latitude", lon)
        d.set_cell(LOC, line, "longitude", lat)


# --------------------------------------------------------------------------- the embedded survey
def test_embedded_survey_points_are_in_their_cercles(mali_data, mali_spec):
    report = validate(mali_data, mali_spec)
    assert report.problems == []
    reg = mali_data.locations
    placed = place(reg["longitude"], reg["latitude"], [reg["admin1_pcode"], reg["admin2_pcode"]], tolerance=0)
    assert (placed["status"] == locs.OK).all()  # every point inside its own polygon: no tolerance needed
    assert placed["mappable"].all() and (placed["distance_m"] == 0).all()


def test_placing_1500_locations_is_fast(mali_data):
    reg = mali_data.locations
    boundaries()  # read once per process
    t0 = time.perf_counter()
    place(reg["longitude"], reg["latitude"], [reg["admin1_pcode"], reg["admin2_pcode"]])
    assert time.perf_counter() - t0 < 0.5


# --------------------------------------------------------------------------- swapped coordinates
def test_swapped_coordinates_are_reported_with_the_corrected_point(capsys, dataset_copy):
    d = dataset_copy
    before = register(d)
    swap(d, SWAPPED_LINES)
    rc, out, _ = validate_copy(capsys, d)
    assert rc == 0, out  # warnings by default
    lines = [x for x in out.splitlines() if "look swapped" in x]
    assert len(lines) == len(SWAPPED_LINES), out
    for text, line in zip(lines, SWAPPED_LINES):
        row = before.iloc[line - 2]
        code = row["admin2_pcode"]
        point = f"({locs.coordinate(row['latitude'])}, {locs.coordinate(row['longitude'])})"
        assert text == (f"warning: {d.data / LOC}, columns 'latitude', 'longitude', row {line}: "
                        f"location '{row['location_id']}': latitude and longitude look swapped: {point} would be in {ocha_name(code)}/{code}")
    assert out.strip().endswith(f"0 error(s), {len(SWAPPED_LINES)} warning(s) [illustrative data]")


@pytest.mark.parametrize("option, rc, severity", [("error", 2, "error"), ("warning", 0, "warning"), ("off", 0, None)])
def test_the_coordinates_option_sets_the_severity(capsys, dataset_copy, option, rc, severity):
    d = dataset_copy
    d.edit_spec("  pcodes: ocha", f"  pcodes: ocha\n  coordinates: {option}")
    swap(d, SWAPPED_LINES[:3])
    d.set_cell(LOC, 20, "longitude", "2.35")  # Paris
    d.set_cell(LOC, 20, "latitude", "48.85")
    got, out, _ = validate_copy(capsys, d)
    assert got == rc, out
    flagged = [x for x in out.splitlines() if "look swapped" in x or "is outside Mali" in x]
    if severity is None:
        assert flagged == [] and out.startswith("OK: ")
    else:
        assert len(flagged) == 4 and all(x.startswith(f"{severity}: ") for x in flagged)


# --------------------------------------------------------------------------- wrong cercle, outside, missing
def test_a_point_in_another_cercle_names_the_cercle_it_falls_in(capsys, dataset_copy):
    d = dataset_copy
    reg = register(d)
    pos = int(np.flatnonzero(reg["admin2_pcode"] == "ML0104")[0])  # Kenieba, far from Nioro
    d.set_cell(LOC, pos + 2, "admin2_pcode", "ML0106")
    rc, out, _ = validate_copy(capsys, d)
    assert rc == 0
    lines = [x for x in out.splitlines() if "outside its cercle" in x]
    assert len(lines) == 1
    assert lines[0].startswith(f"warning: {d.data / LOC}, columns 'latitude', 'longitude', row {pos + 2}: "
                               f"location '{reg['location_id'][pos]}': ")
    assert re.search(r"is in cercle Kenieba/ML0104, [\d,.]+ km outside its cercle Nioro/ML0106$", lines[0])


def test_a_point_outside_the_country(capsys, dataset_copy):
    d = dataset_copy
    reg = register(d)
    d.set_cell(LOC, 30, "longitude", "2.35")
    d.set_cell(LOC, 30, "latitude", "48.85")
    rc, out, _ = validate_copy(capsys, d)
    code = reg["admin2_pcode"][28]
    assert rc == 0
    assert re.search(rf"row 30: location '{reg['location_id'][28]}': \(48\.85, 2\.35\) is outside Mali, "
                     rf"[\d,.]+ km from its cercle {ocha_name(code)}/{code}$", out, re.M), out


def test_a_location_without_coordinates_is_a_warning(capsys, dataset_copy):
    d = dataset_copy
    d.set_cell(LOC, 40, "latitude", "")
    rc, out, _ = validate_copy(capsys, d)
    assert rc == 0
    assert "column 'latitude', row 40: location" in out and "no coordinates: it cannot be mapped" in out


def test_the_tolerance_is_in_metres_on_the_ellipsoid():
    """A point 3 km outside its cercle (measured on the WGS 84 ellipsoid) passes a 5 km tolerance, not a 2 km one."""
    import shapely
    from pyproj import Geod

    b = boundaries()
    i = b.position["ML0104"]
    ring = shapely.get_exterior_ring(shapely.buffer(b.projected[i], 3000, quad_segs=32))
    x, y = shapely.get_coordinates(ring)[::40].T
    lon, lat = locs._transformer(inverse=True).transform(x, y)
    loose = place(lon, lat, [["ML0104"] * len(lon)], tolerance=5000)
    assert (loose["status"] == locs.OK).all()
    np.testing.assert_allclose(loose["distance_m"], 3000, rtol=0.015)
    strict = place(lon, lat, [["ML0104"] * len(lon)], tolerance=2000)
    assert (strict["status"] != locs.OK).all()
    # the distance is geodesic: from a vertex of the cercle due north, 4 km on the ellipsoid
    vertices = shapely.get_coordinates(b.geometry[i])
    vx, vy = vertices[np.argmax(vertices[:, 1])]  # the cercle's northernmost vertex
    nlon, nlat, _ = Geod(ellps="WGS84").fwd(vx, vy, 0, 4000)
    got = place([nlon], [nlat], [["ML0104"]], tolerance=0)["distance_m"].iat[0]
    assert got == pytest.approx(4000, abs=5)


def test_menaka_cercles_without_a_polygon_fall_back_to_their_region(mali_data):
    reg = mali_data.locations
    menaka = reg[reg["admin2_pcode"] == "ML1001"].head(3)
    placed = place(menaka["longitude"], menaka["latitude"], [menaka["admin1_pcode"], ["ML1002"] * len(menaka)])
    assert (placed["status"] == locs.OK).all() and (placed["declared"] == "ML10").all()


def test_points_without_known_pcodes_are_checked_against_the_country_of_the_others():
    placed = place([-4.19, 2.35, 20.0], [14.49, 48.85, 20.0], [["ML05", None, "XX01"]])
    assert list(placed["status"]) == [locs.OK, locs.OUTSIDE, locs.OUTSIDE]
    assert list(placed["mappable"]) == [True, False, False]
    alone = place([2.35], [48.85], [])
    assert list(alone["status"]) == [locs.UNCHECKED] and alone["mappable"].all()


# --------------------------------------------------------------------------- p-codes
@pytest.fixture(scope="module")
def matcher():
    return PcodeMatcher(reference_table("ocha"))


@pytest.mark.parametrize("value, name, level, parent, expected", [
    ("Tenenkou", None, 2, None, ["ML0507"]),          # a name in the code column
    ("ML507", None, 2, "ML05", ["ML0507"]),            # a code missing a zero
    ("ML507", None, 2, None, ["ML0507"]),
    (None, "Tombouctu", 2, "ML06", ["ML0605"]),        # the cercle ...
    (None, "Tombouctu", 1, "MLI", ["ML06"]),           # ... and the region of the same name
    (None, "Ténénkou", 2, None, ["ML0507"]),           # accents folded
    (None, "GOURMA RHAROUS", 2, None, ["ML0603"]),
    ("ML0599", "Tenenkou", 2, "ML05", ["ML0507"]),     # the row's name decides
    ("Tenenkou", "Kayes", 2, "ML01", ["ML0507"]),      # a name in the code column beats the parent
    (None, "Xyzzy", 2, None, []),
])
def test_pcode_suggestions(matcher, value, name, level, parent, expected):
    assert matcher.suggest(value, name, level, parent) == expected


def test_pcode_hint_format(matcher):
    assert matcher.hint("Tenenkou", level=2) == " -> ML0507 Tenenkou?"
    assert matcher.hint("Xyzzy", level=2) == ""
    assert locs.fold("Ségou-Nord ") == "segou nord"


def test_validate_suggests_pcodes(capsys, dataset_copy):
    d = dataset_copy
    reg = register(d)
    line = int(np.flatnonzero(reg["admin2_pcode"] == "ML0507")[0]) + 2
    d.set_cell(LOC, line, "admin2_pcode", "ML507")
    d.set_cell(LOC, line + 1, "admin2_pcode", "Tenenkou")
    gao = int(np.flatnonzero(reg["admin2_pcode"] == "ML0605")[0]) + 2
    d.set_cell(LOC, gao, "admin2_pcode", "")
    d.set_cell(LOC, gao, "admin2_name", "Tombouctu")
    d.set_cell(LOC, 5, "admin2_pcode", "ML01")
    rc, out, _ = validate_copy(capsys, d)
    assert rc == 2
    where = f"{d.data / LOC}, column 'admin2_pcode', row"
    assert f"error: {where} {line}: unknown p-code 'ML507' -> ML0507 Tenenkou?" in out
    assert f"error: {where} {line + 1}: unknown p-code 'Tenenkou' -> ML0507 Tenenkou?" in out
    assert f"warning: {where} {gao}: missing p-code for 'Tombouctu' -> ML0605 Tombouctou?" in out
    assert f"error: {where} 5: p-code 'ML01' is an admin-1 code (Kayes), not an admin-2 code like the others" in out
    assert "does not belong to admin1_pcode given on the same row (it belongs to MLI)" not in out


def test_a_custom_pcode_list_without_levels_gets_them_from_its_parents(tmp_path):
    path = tmp_path / "codes.csv"
    path.write_text("P-Code,Parent P-Code,Name\nXA,XX,Alpha\nXA01,XA,Alpha One\nXA0101,XA01,Alpha One One\n")
    table = reference_table(str(path))
    assert table.set_index("pcode")["level"].to_dict() == {"XA": 1, "XA01": 2, "XA0101": 3}


# --------------------------------------------------------------------------- reports
def test_unmappable_locations_are_scored_and_listed_in_the_data_quality_notes(dataset_copy):
    import stability as st
    from stability.report import content
    from stability.report.context import context_for

    d = dataset_copy
    reg = register(d)
    kidal = np.flatnonzero(reg["admin1_pcode"] == "ML08")[:3] + 2
    swap(d, kidal[:2])
    d.set_cell(LOC, int(kidal[2]), "longitude", "")
    result = st.compute(st.load_dataset(d.data), st.load_spec(d.spec))
    ids = reg["location_id"].iloc[kidal - 2].tolist()
    scores = result.scores
    assert set(ids) <= set(scores["location_id"])  # never dropped from the scores
    assert scores.loc[scores["location_id"].isin(ids), "stability"].notna().all()
    ctx = context_for(result, region="ML08")
    table = content.data_quality(ctx).set_index("Check")
    row = table.loc["Locations that cannot be mapped"]
    assert row["Count"] == 3
    names = reg["location_name"].iloc[kidal - 2].tolist()
    assert row["Details"] == (f"{names[0]} (outside Mali, latitude and longitude swapped?), "
                              f"{names[1]} (outside Mali, latitude and longitude swapped?), "
                              f"{names[2]} (no coordinates)")
    assert row["Share (%)"] == pytest.approx(300 / len(ctx.current))
    overview = content.data_quality(context_for(result)).set_index("Check")
    assert overview.loc["Locations that cannot be mapped", "Count"] == 3


def test_unmappable_reasons():
    from types import SimpleNamespace

    frame = pd.DataFrame({"lon": [-4.19, None, "abc", 14.49, 2.35], "lat": [14.49, 14.0, 14.0, -4.19, 48.85],
                          "adm": ["ML05"] * 5}, index=[10, 11, 12, 13, 14])
    columns = SimpleNamespace(longitude="lon", latitude="lat", admin=["adm"], coordinates="warning",
                              coordinate_tolerance=5000.0)
    why = locs.unmappable(frame, columns)
    assert why.to_dict() == {10: "", 11: "no coordinates", 12: "invalid coordinates",
                             13: "outside Mali, latitude and longitude swapped?", 14: "outside Mali"}
    off = locs.unmappable(frame, SimpleNamespace(**{**vars(columns), "coordinates": "off"}))
    assert off.to_dict() == {10: "", 11: "no coordinates", 12: "invalid coordinates", 13: "", 14: ""}
    assert locs.unmappable(frame, SimpleNamespace(**{**vars(columns), "longitude": None})) is None
