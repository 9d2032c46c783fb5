"""Pockets of stability in the reports: the region's areas, words, map, workbook sheets, interactive map."""

from __future__ import annotations

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
