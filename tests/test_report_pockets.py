"""Pockets of stability in the reports: the region's areas, words, map, workbook sheets, interactive map."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from stability import pockets as pk
from stability.report import pockets, priorities
from stability.report.context import context_for, map_layers

REGION = "ML02"


@pytest.fixture(scope="module")
def ctx(mali_result):
    return context_for(mali_result, REGION, "latest", map_layers(mali_result))


def test_the_region_shows_the_areas_that_reach_into_it(ctx, mali_result):
    found = pk.find(mali_result, ctx.round)
    mine = set(ctx.current[ctx.columns.location])
    areas = found.areas[(found.areas["round"] == ctx.round) & found.areas["area"].notna()]
    expected = sorted(a for a, m in zip(areas["area"], areas["members"]) if mine & set(m))
    assert expected and sorted(pockets.areas_table(ctx)["Area"]) == expected
    loc = pockets.pocket_locations(ctx)
    assert set(loc[ctx.columns.location]) == mine


def test_words_name_the_areas_and_the_clustering(ctx):
    text = " ".join(pockets.pocket_text(ctx))
    assert "Moran's I is" in text and "relative to its region's median" in text
    for area in pockets.areas_table(ctx)["Area"]:
        assert area in text


def test_priority_reasons_say_when_a_location_is_in_a_pocket(ctx):
    table = priorities.priorities_table(ctx, top=None, include_none=True)
    loc = pockets.pocket_locations(ctx).set_index(ctx.columns.location)
    named = loc[loc["area"].notna()]
    assert len(named)
    for _, row in table[table["Location id"].isin(named.index)].iterrows():
        area = named.at[row["Location id"], "area"]
        assert f"in {named.at[row['Location id'], 'class']} {area} " in row["Reason"]
    others = table[~table["Location id"].isin(named.index)]
    assert not others["Reason"].str.contains("in pocket of stability|in hotspot of instability").any()


def test_the_map_rings_the_pockets_and_says_so(ctx):
    from stability.report.figures import alt_text

    fig = pockets.pocket_map(ctx)
    loc = pockets.pocket_locations(ctx)
    n = int((loc["class"] == pk.POCKET).sum())
    assert f"{n} locations in pockets of stability" in alt_text(fig)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert f"pocket of stability ({n})" in labels


def test_workbook_sheets_and_interactive_map(ctx, tmp_path):
    sheets = pockets.workbook_sheets(ctx)
    assert list(sheets) == ["Pockets", "Pocket locations"]
    assert len(sheets["Pocket locations"]) == len(ctx.current)
    path = pockets.write_map(ctx, tmp_path)
    page = path.read_text(encoding="utf-8")
    assert path.name == "map.html" and "pocket of stability" in page and "https://" not in page


def test_a_notebook_starting_from_the_batch_tables_never_loads_the_spatial_libraries(mali_result, tmp_path):
    """``stability report`` finds the pockets once; a report kernel only reads them (no esda, no libpysal)."""
    from stability.report.context import save_cache, shared_tables

    geo = map_layers(mali_result)
    path = save_cache(tmp_path / "result.pkl", mali_result, geo, shared_tables(mali_result, "latest", [REGION], geo))
    code = (
        "import sys\n"
        "from stability.report.context import load_context\n"
        "from stability.report import content, pockets\n"
        f"ctx = load_context(cache_path={str(path)!r}, region={REGION!r})\n"
        "pockets.pocket_text(ctx); pockets.areas_table(ctx); pockets.pocket_map(ctx)\n"
        f"pockets.write_map(ctx, {str(tmp_path / 'out')!r}); content.workbook_sheets(ctx)\n"
        "print(sorted(m for m in ('esda', 'libpysal') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


# --------------------------------------------------------------------------- areas that span regions
def test_a_regional_report_counts_the_areas_locations_in_its_region(ctx, mali_result):
    from stability.report.context import context_for, map_layers

    c = ctx.columns
    here = ctx.current.set_index(c.location)
    region_of = ctx.national.set_index(c.location)[c.admin[0]]
    areas = pockets.pocket_areas(ctx)
    spans = areas[areas["n_area"] > areas["n_locations"]]
    assert len(spans)  # P1 reaches into Sikasso
    for _, a in areas.iterrows():
        mine = [m for m in a["members"] if m in here.index]
        assert a["members"] == mine and a["n_locations"] == len(mine)
        assert a["median_index"] == pytest.approx(here.loc[mine, ctx.index_id].median())
        assert a["idps"] == pytest.approx(here.loc[mine, "idps"].fillna(0).sum())
        assert sum(k for _, k in a["elsewhere"]) == a["n_area"] - a["n_locations"]
    text = " ".join(pockets.pocket_text(ctx))
    loc = pockets.pocket_locations(ctx)
    for _, a in spans.iterrows():
        whole = pk.find(mali_result, ctx.round).areas.set_index("area").loc[a["area"]]
        others = sorted({ctx.regions[region_of[m]] for m in whole["members"] if m not in here.index})
        assert a["n_area"] == whole["n_locations"] > a["n_locations"]
        assert (f"{a['area']} {a['name']} ({a['n_locations']} locations, median {a['median_index']:.1f}" in text
                and f"{a['n_locations']} of its {a['n_area']} locations are in this region, the others in "
                    f"{others[0]}" in text), text
    for kind in (pk.POCKET, pk.HOTSPOT):  # the count of the region adds up with its areas' locations in it
        assert int((loc["class"] == kind).sum()) >= int(areas.loc[areas["kind"] == kind, "n_locations"].sum())
    table = pockets.areas_table(ctx)
    assert list(table["Locations in region"]) == list(areas["n_locations"])
    assert table.loc[table["Area"].isin(spans["area"]), "Locations elsewhere"].str.contains(" in ").all()
    # the overview keeps whole areas
    overview = context_for(mali_result, None, "latest", map_layers(mali_result))
    whole = pockets.pocket_areas(overview)
    assert (whole["n_locations"] == whole["members"].map(len)).all() and not whole["elsewhere"].map(len).any()
    assert "Locations" in pockets.areas_table(overview) and "Locations elsewhere" not in pockets.areas_table(overview)


def test_a_region_without_pockets_says_so_and_shows_no_table(ctx):
    import dataclasses

    from stability.report import notebook as nb

    loc = pockets.pocket_locations(ctx).assign(**{"class": pk.NOT_SIGNIFICANT, "area": None})
    empty = dataclasses.replace(ctx, precomputed={"pocket_locations": loc,
                                                  "pocket_areas": pockets.pocket_areas(ctx).iloc[0:0]})
    text = pockets.pocket_text(empty)
    assert f"In {ctx.region_name}, no location lies in a pocket of stability or a hotspot of instability" in text[-1]
    assert "0 locations" not in " ".join(text)
    assert pockets.areas_table(empty) is None
    assert nb.show(pockets.areas_table(empty)) is None
    sheet = pockets.workbook_sheets(empty)["Pockets"]
    assert sheet.empty and "Area" in sheet.columns  # the workbook keeps its (empty) sheet


def test_counts_of_one_are_singular(ctx):
    import dataclasses

    loc = pockets.pocket_locations(ctx).assign(**{"class": pk.NOT_SIGNIFICANT, "area": None})
    loc.loc[loc.index[:3], "class"] = [pk.POCKET, pk.HIGH_LOW, pk.LOW_HIGH]
    one = dataclasses.replace(ctx, precomputed={"pocket_locations": loc,
                                                "pocket_areas": pockets.pocket_areas(ctx).iloc[0:0]})
    text = " ".join(pockets.pocket_text(one))
    assert "1 location lies in a pocket of stability and none in hotspots of instability" in text
    assert "2 locations are outliers: 1 high-low" in text and "1 low-high" in text
    assert pockets.class_count_words({pk.POCKET: 1, pk.HOTSPOT: 2, pk.HIGH_LOW: 1, pk.LOW_HIGH: 0}) == [
        "1 location in a pocket of stability", "2 locations in hotspots of instability", "1 high-low outlier"]


# --------------------------------------------------------------------------- one colour per class
def test_each_class_has_one_ring_colour_on_both_maps_and_in_the_words(ctx):
    from matplotlib.colors import to_hex

    from stability.report import interactive

    assert set(pockets.RINGS) == {pk.POCKET, pk.HOTSPOT, pk.HIGH_LOW, pk.LOW_HIGH}
    assert len(set(pockets.RINGS.values())) == len(pockets.RINGS)
    # whatever the classes present, each takes its own colour (an outlier alone is not drawn in black)
    for present in ({pk.HIGH_LOW}, {pk.LOW_HIGH, pk.HOTSPOT}, set(pockets.RINGS), {pk.HIGH_LOW, "pocket A"}):
        colours = interactive._pocket_colours(present)
        for cls in present & set(pockets.RINGS):
            assert colours[cls] == pockets.RINGS[cls]
        assert len(set(colours.values())) == len(colours)
    ids = list(ctx.current["location_id"].astype(str))
    page = interactive.interactive_map(ctx, pockets={ids[0]: pk.HIGH_LOW})
    assert f'stroke="{pockets.RINGS[pk.HIGH_LOW]}"' in page and 'stroke="#000000"' not in page
    # the static map rings the same classes in the same colours, and its key says them
    loc = pockets.pocket_locations(ctx)
    fig = pockets.pocket_map(ctx)
    legend = fig.axes[0].get_legend()
    for handle, text in zip(legend.legend_handles, legend.get_texts()):
        cls = text.get_text().rsplit(" (", 1)[0]
        assert to_hex(handle.get_markeredgecolor()) == pockets.RINGS[cls].lower()
    rings = [c for c in fig.axes[0].collections if c.get_zorder() == 7]
    drawn = {to_hex(c.get_edgecolor()[0]): len(c.get_offsets()) for c in rings}
    counts = loc["class"].value_counts()
    assert drawn == {pockets.RINGS[k].lower(): int(counts[k]) for k in pockets.RINGS if counts.get(k, 0)}
    reading = pockets.map_reading(ctx)
    for cls in pockets.RINGS:
        if counts.get(cls, 0):
            assert f"({pockets.RING_NAMES[cls]}" in reading, reading


def test_the_interactive_map_counts_each_class_apart(ctx):
    from stability.report import interactive

    ids = list(ctx.current["location_id"].astype(str))
    classes = {ids[0]: pk.POCKET, ids[1]: pk.POCKET, ids[2]: pk.HOTSPOT, ids[3]: pk.HIGH_LOW}
    page = interactive.interactive_map(ctx, pockets=classes)
    assert ("ringed by class: 2 locations in pockets of stability, 1 location in a hotspot of instability and "
            "1 high-low outlier") in page
    assert "locations in pockets, ringed" not in page and not re.search(r"(?<![\d,])1 locations", page)
    # the report's map of the region: the same counts as the report's words
    page = interactive.interactive_map(ctx, pockets=pockets.pocket_locations(ctx))
    counts = pockets.pocket_locations(ctx)["class"].value_counts()
    assert pockets.class_count_words(counts)[0] in page
    assert f"{int(counts.get(pk.POCKET, 0))} locations lie in pockets of stability" in " ".join(
        pockets.pocket_text(ctx))


# --------------------------------------------------------------------------- Liptako-Gourma: Niger, Burkina Faso
@pytest.fixture(scope="module")
def lg():
    from stability.paths import data_dir
    from stability.report.context import compute_result, context_for, map_layers

    result, _, _ = compute_result(data_dir() / "raw" / "liptako_gourma_illustrative",
                                  data_dir() / "specs" / "liptako_gourma.yaml")
    layers = map_layers(result)
    return {r: context_for(result, r, "latest", layers) for r in ("NE006", "BF56")}


def test_niger_region_map_reading_says_what_the_maps_show(lg):
    from stability.report import content, interactive

    ctx = lg["NE006"]
    text = pockets.map_reading(ctx)
    assert text.startswith("In Niger, where department boundaries are not available, the region is shaded by the "
                           "stability category of its median index")
    assert "each department seat is marked with a black square labelled with the department's median index" in text
    assert "seat are shaded" not in text and "seats are shaded" not in text
    # the interactive map marks the seats too, with their median in a tooltip and a label
    seats = {p for p, parent in ctx.geo["admin2_parent"].items()
             if parent == "NE006" and p in ctx.geo["admin2_seats"]}
    page = interactive.interactive_map(ctx, pockets=pockets.pocket_locations(ctx))
    assert seats and page.count('class="seat"') == len(seats)
    name = ctx.geo["admin2_names"][sorted(seats)[0]]
    assert f'aria-label="Department {name} (seat); median index' in page
    assert "department seat: median index of the department" in page
    counts = pockets.pocket_locations(ctx)["class"].value_counts()
    assert f"ringed by class: {content.join_words(pockets.class_count_words(counts))}." in page
    assert not re.search(r"(?<![\d,])1 locations", page)
    # no pocket and no hotspot in Tillaberi: a line says so, no empty table
    assert pockets.areas_table(ctx) is None
    assert "no location lies in a pocket of stability or a hotspot of instability" in pockets.pocket_text(ctx)[-1]


def test_an_area_reaching_into_a_burkina_faso_region_counts_only_its_locations_there(lg):
    ctx = lg["BF56"]
    areas = pockets.pocket_areas(ctx).set_index("area")
    mine = set(ctx.current["location_id"])
    for _, a in areas.iterrows():
        assert a["n_locations"] == len(set(a["members"]) & mine) == len(a["members"])
    spans = areas[areas["n_area"] > areas["n_locations"]]
    assert len(spans)
    text = " ".join(pockets.pocket_text(ctx))
    for _, a in spans.iterrows():
        assert f"{a['n_locations']} of its {a['n_area']} locations are in this region" in text
        assert f"the others in {a['elsewhere'][0][0]}" in text and "(Burkina Faso)" in a["elsewhere"][0][0]


def test_an_area_s_median_category_is_shown_and_an_odd_one_explained(mali_result):
    """Pockets and hotspots are relative to their region's median: the table gives the category of each area's
    median, and the text explains a hotspot whose median is not 'low' (Mali overview: H4, medium)."""
    overview = context_for(mali_result, None, "latest", map_layers(mali_result))
    table = pockets.areas_table(overview)
    expected = ["low" if m < 40 else "medium" if m < 60 else "high" for m in table["Median index"]]
    assert table["Category of the median"].tolist() == expected
    odd = [(k, c) for k, c in zip(table["Kind"], expected)
           if c != ("high" if k == "pocket of stability" else "low")]
    assert odd, table
    text = pockets.pocket_text(overview)[-1]
    assert text.startswith("Pockets and hotspots are found relative to each region's median") and \
        f"{len(odd)} area" in text, text
