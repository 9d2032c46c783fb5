"""Content of the regional comparison reports: tables, text, figures, notebooks.

The numbers are checked against ``result.scores`` / ``result.stage("normalised")``
computed independently here; the HTML against injection; the notebooks' structure
with nbformat / papermill, and both notebooks are executed once with a cache.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stability.report import content, figures, notebook as nb
from stability.report.context import load_context, map_layers, save_cache

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
REGION = "ML08"  # Kidal: small (43 locations in round 3)
XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
PARAMETERS = {
    "regional_report": ["region", "survey_round", "spec_path", "data_path", "output_dir", "cache_path"],
    "country_overview": ["survey_round", "spec_path", "data_path", "output_dir", "cache_path"],
}


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def cache(mali_result, tmp_path_factory) -> Path:
    """The default result and map layers saved as a report cache."""
    path = tmp_path_factory.mktemp("report_cache") / "result.pkl"
    save_cache(path, mali_result, map_layers(mali_result))
    return path


@pytest.fixture(scope="module")
def ctx(cache):
    return load_context(region=REGION, cache_path=cache)


@pytest.fixture(scope="module")
def overview(cache):
    return load_context(cache_path=cache)


@pytest.fixture(scope="module")
def first_round(cache):
    return load_context(region=REGION, survey_round=1, cache_path=cache)


def _this_region(ctx) -> pd.DataFrame:
    """This round's scores of the region, straight from ``result.scores``."""
    s = ctx.result.scores
    c = ctx.columns
    return s[(s[c.round] == ctx.round) & (s[c.admin[0]] == ctx.region)]


class _Renamed:
    """A result whose scores are replaced (everything else is the wrapped result's, through its public API)."""

    def __init__(self, result, scores: pd.DataFrame):
        self._result = result
        self.scores = scores

    def __getattr__(self, name):
        return getattr(self._result, name)


def _with_name(ctx, location: str, name: str):
    """A copy of ``ctx`` whose result calls ``location`` ``name`` (and whose region is called ``name``)."""
    c = ctx.columns
    scores = ctx.result.scores.copy()
    scores.loc[scores[c.location] == location, c.name] = name
    scores.loc[scores[c.admin[0]] == ctx.region, c.admin_names[0]] = name
    regions = dict(ctx.regions, **{ctx.region: name})
    return dataclasses.replace(ctx, result=_Renamed(ctx.result, scores), region_name=name, regions=regions)


# --------------------------------------------------------------------------- ranked table
def test_ranked_table_is_the_region_s_scores_in_rank_order(ctx):
    c = ctx.columns
    table = content.ranked_table(ctx)
    expected = _this_region(ctx).sort_values(["rank_region", c.location], kind="mergesort")
    assert len(table) == len(expected) == len(ctx.current) > 0
    assert list(table["Location id"]) == list(expected[c.location])
    assert "P-code" not in table.columns
    assert list(table["Location"]) == list(expected[c.name])
    assert list(table["Cercle"]) == list(expected[c.admin_names[1]])
    assert table["Rank in region"].tolist() == expected["rank_region"].astype(int).tolist()
    assert table["Rank in region"].is_monotonic_increasing
    assert table["Rank national"].tolist() == expected["rank_national"].astype(int).tolist()
    for col in [ctx.index_id, *ctx.pillars]:
        np.testing.assert_allclose(table[ctx.spec.label(col)], expected[col].round(1), atol=1e-9)
    np.testing.assert_allclose(table[f"Change since round {ctx.previous_round}"], expected["change"].round(1),
                               atol=1e-9)
    assert table["Category"].tolist() == expected["category"].astype(str).tolist()


def test_overview_ranks_every_location_nationally(overview):
    table = content.ranked_table(overview)
    assert len(table) == len(overview.national)
    assert table["Rank"].is_monotonic_increasing
    assert "Region" in table.columns and "Rank national" not in table.columns


HAND_CHECKED = {  # an IDP site of Kidal in round 3, read off the embedded data by hand
    "Location id": "ML0801-0001", "Location": "Site Ouskarane", "Location type": "IDP site", "IDPs": 474,
    "Returnees": 4, "Population": 520, "Cercle p-code": "ML0801", "Latitude": 19.74723, "Longitude": 2.64244,
}


def test_ranked_table_shows_people_type_and_coordinates(ctx):
    table = content.ranked_table(ctx)
    row = table.set_index("Location id").loc[HAND_CHECKED["Location id"]]
    for col, value in HAND_CHECKED.items():
        if col != "Location id":
            assert row[col] == (pytest.approx(value) if isinstance(value, float) else value), col
    assert row["Rank in region"] == 16
    units = ctx.result.units.reset_index()
    here = units[(units[ctx.columns.round] == ctx.round) & (units[ctx.columns.admin[0]] == ctx.region)]
    here = here.set_index(ctx.columns.location).loc[table["Location id"]]
    for col, label in [("idps", "IDPs"), ("returnees", "Returnees"), ("population", "Population")]:
        assert table[label].dtype == "Int64" and table[label].tolist() == here[col].round().astype(int).tolist()
    np.testing.assert_allclose(table["Latitude"], here["latitude"], atol=1e-5)
    np.testing.assert_allclose(table["Longitude"], here["longitude"], atol=1e-5)
    assert set(table["Location type"]) <= {"village", "IDP site"}
    assert "Region p-code" not in table.columns  # a regional report: the region is the report's


def test_compact_ranked_table_keeps_the_report_readable(ctx):
    full, compact = content.ranked_table(ctx), content.ranked_table(ctx, compact=True)
    assert len(compact) == len(full)
    assert not {"Latitude", "Longitude", "Cercle p-code"} & set(compact.columns)
    assert {"IDPs", "Returnees", "Population", "Location type", "Location id", "Coordinates"} <= set(compact.columns)
    row = compact.set_index("Location id").loc[HAND_CHECKED["Location id"]]
    assert row["Coordinates"] == "19.74723, 2.64244"
    html = nb.table_html(compact)
    assert "19.74723, 2.64244" in html and "Location id" in html and "P-code" not in html


def test_ranked_table_leaves_out_columns_the_data_do_not_have(ctx):
    c = ctx.columns
    scores = ctx.result.scores.drop(columns=["idps", "population", "location_type", c.latitude, c.longitude])
    bare = dataclasses.replace(ctx, result=_Renamed(ctx.result, scores))
    table = content.ranked_table(bare)
    assert "Returnees" in table.columns and "Location id" in table.columns
    assert not {"IDPs", "Population", "Location type", "Latitude", "Longitude"} & set(table.columns)
    assert "Coordinates" not in content.ranked_table(bare, compact=True).columns


def test_overview_ranked_table_names_both_p_codes(overview):
    table = content.ranked_table(overview)
    nat = overview.national.sort_values(["rank_national", overview.columns.location], kind="mergesort")
    assert table["Region p-code"].tolist() == nat[overview.columns.admin[0]].tolist()
    assert table["Cercle p-code"].tolist() == nat[overview.columns.admin[1]].tolist()


# --------------------------------------------------------------------------- headline figures
def test_people_per_category_are_direct_sums_of_the_scores(ctx):
    table = content.population_by_category(ctx).set_index("Stability category")
    here = _this_region(ctx)
    assert content.population_columns(ctx) == ["idps", "returnees"]
    for col, label in [("idps", "IDPs"), ("returnees", "Returnees")]:
        direct = here.groupby(here["category"].astype(str))[col].sum()
        for cat in ctx.spec.categories.labels:
            assert table.loc[cat, label] == direct.get(cat, 0)
        assert table.loc["Total", label] == here[col].sum()
        assert table.loc[list(ctx.spec.categories.labels), f"% of {label}"].sum() == pytest.approx(100)
    assert table.loc["Total", "Locations"] == len(here)


def test_headline_text_states_counts_and_population(ctx):
    text = " ".join(content.headline_text(ctx))
    here = _this_region(ctx)
    assert f"{len(here)} locations were assessed in {ctx.region_name}" in text
    assert f"{int(here['idps'].sum()):,} IDPs" in text
    assert "low (below 40)" in text


def test_change_since_the_previous_round(ctx):
    s = content.change_summary(ctx)
    here = _this_region(ctx)
    change = here["change"]
    assert s["previous_round"] == ctx.previous_round
    assert s["median_change"] == pytest.approx(change.median())
    assert s["improved"] == int((change > 5).sum())
    assert s["worsened"] == int((change < -5).sum())
    assert s["n_compared"] == int(change.notna().sum())
    first = content.change_text(ctx)[0]  # the median of the changes and the change of the medians, told apart
    assert f"changed by {content.number(s['median_change'], sign=True)} points at the median" in first
    assert (f"went from {content.number(s['median_before'])} in round {ctx.previous_round} to "
            f"{content.number(s['median_now'])} now: another figure" in first)
    transitions = content.category_transitions(ctx)
    assert transitions["Total"].sum() == len(here)
    sc = ctx.result.scores
    c = ctx.columns
    before = sc[(sc[c.round] == ctx.previous_round) & (sc[c.admin[0]] == ctx.region)]
    low_to_low = len(set(before.loc[before["category"] == "low", c.location])
                     & set(here.loc[here["category"] == "low", c.location]))
    row = transitions.set_index(f"Category in round {ctx.previous_round}").loc["low"]
    assert row[f"low in round {ctx.round}"] == low_to_low


def test_first_round_says_there_is_no_previous_round(first_round):
    assert first_round.previous_round is None
    assert content.change_summary(first_round) is None
    assert content.category_transitions(first_round) is None
    assert "no previous round" in " ".join(content.change_text(first_round))
    assert not any(c.startswith("Change") for c in content.ranked_table(first_round).columns)


# --------------------------------------------------------------------------- pillar profile / league table
def test_pillar_summary_compares_region_and_country(ctx):
    table = content.pillar_summary(ctx).set_index("Score")
    here = _this_region(ctx)
    label = ctx.spec.label(ctx.index_id)
    assert table.loc[label, f"Median in {ctx.region_name}"] == pytest.approx(here[ctx.index_id].median(), abs=0.05)
    assert table.loc[label, "National median"] == pytest.approx(ctx.national[ctx.index_id].median(), abs=0.05)


def test_league_table_ranks_regions_by_median(overview):
    table = content.league_table(overview)
    nat = overview.national
    medians = nat.groupby("admin1_pcode")[overview.index_id].median()
    assert list(table["P-code"]) == list(medians.sort_values(ascending=False).index)
    assert table["Rank"].tolist() == list(range(1, len(medians) + 1))
    np.testing.assert_allclose(table["Median index"], medians.sort_values(ascending=False).round(1), atol=1e-9)
    assert table["Locations"].sum() == len(nat)
    assert table["IDPs"].sum() == nat["idps"].sum()
    shares = table[[f"% {lab}" for lab in overview.spec.categories.labels]].sum(axis=1)
    np.testing.assert_allclose(shares, 100, atol=0.2)


def test_league_table_has_the_median_s_confidence_interval_and_shares_of_people(overview):
    table = content.league_table(overview)
    low, high = table[content.CI_LOW], table[content.CI_HIGH]
    assert ((low <= table["Median index"] + 0.05) & (table["Median index"] <= high + 0.05)).all()
    assert (low < high).all()
    nat = overview.national
    for people, col in [("IDPs", "idps"), ("Returnees", "returnees")]:
        shares = table[[f"% of {people} in {lab}" for lab in overview.spec.categories.labels]]
        np.testing.assert_allclose(shares.sum(axis=1), 100, atol=0.2)
        first = nat[nat["admin1_pcode"] == table["P-code"][0]]
        low_share = first.loc[first["category"].astype(str) == "low", col].sum() / first[col].sum() * 100
        assert table[f"% of {people} in low"][0] == pytest.approx(low_share, abs=0.05)


# --------------------------------------------------------------------------- drivers
def test_drivers_are_the_largest_contributions_to_the_gap_to_the_region(ctx):
    """Drivers are each indicator's contribution to the gap to the region's median profile
    (stability.explain), largest first, in words: never a label with a score that reads backwards."""
    from stability import explain

    d = content.drivers(ctx)
    c = explain.contributions(ctx.result, "region", survey_round=ctx.round)
    ids = ctx.spec.indicator_ids
    here = _this_region(ctx).sort_values(ctx.index_id, ascending=False)
    most = d[d["group"] == "most stable"]
    least = d[d["group"] == "least stable"]
    assert list(dict.fromkeys(most[ctx.columns.location])) == list(here[ctx.columns.location].head(5))
    assert list(dict.fromkeys(least[ctx.columns.location])) == list(here[ctx.columns.location].tail(5))[::-1]
    for loc, rows in d.groupby(ctx.columns.location):
        contrib = c.loc[(loc, ctx.round), ids].astype(float).round(9)
        for effect, sign in [("helps", 1), ("holds back", -1)]:
            picked = rows[rows["effect"] == effect]
            candidates = contrib[contrib * sign > 0]
            assert len(picked) == min(3, len(candidates))
            if len(picked):
                # none of the indicators left out contributes more than one picked
                left_out = candidates.drop(picked["indicator"])
                assert np.max((left_out * sign).to_numpy(), initial=-np.inf) <= (picked["Points"] * sign).min() + 1e-9
        for _, r in rows.iterrows():
            assert r["Points"] == pytest.approx(c.at[(loc, ctx.round), r["indicator"]])
            assert r["Indicator"] == ctx.spec.label(r["indicator"])
            assert r["Answer"] != r["Indicator"]  # the answer in words, not the label


def test_drivers_on_a_location_checked_by_hand(ctx):
    """The most stable location of the region: its first 'helps' indicator is argmax(contribution), ties in
    the spec's order, shown in words."""
    from stability import explain

    top = _this_region(ctx).sort_values(ctx.index_id, ascending=False).iloc[0][ctx.columns.location]
    c = explain.contributions(ctx.result, "region", survey_round=ctx.round)
    contrib = c.loc[(top, ctx.round), ctx.spec.indicator_ids].astype(float).round(9)
    order = {ind: i for i, ind in enumerate(ctx.spec.indicator_ids)}
    best_up = min(contrib.index[contrib == contrib.max()], key=order.get)
    d = content.drivers(ctx)
    rows = d[d[ctx.columns.location] == top]
    first = rows[(rows["effect"] == "helps") & (rows["order"] == 1)]
    assert first["indicator"].item() == best_up
    table = content.drivers_table(ctx, "most", d)
    assert table.iloc[0]["Helps"] == first["Answer"].item()
    assert table.iloc[0]["Points gained"] == content.number(first["Points"].item(), sign=True)


# --------------------------------------------------------------------------- data quality, method
def test_data_quality_counts_come_from_the_audit_log(ctx):
    table = content.data_quality(ctx).set_index("Check")
    here = _this_region(ctx)
    log = ctx.result.log
    mine = log[log["location"].isin(here[ctx.columns.location]) & (log["round"] == ctx.round)]
    assert table.loc["Imputed values", "Count"] == (mine["action"] == "imputed").sum() == here["n_imputed"].sum()
    assert table.loc["Winsorised values (outliers pulled in)", "Count"] == (mine["action"] == "winsorised").sum()
    assert table.loc["Indicator values without any answer", "Count"] == here["n_missing"].sum()
    flagged = [k for k in table.index if k.startswith("Key informants disagree")]
    assert table.loc[flagged[0], "Count"] == here["n_disagreements"].sum()
    quality = content.indicator_quality(ctx, top=100)
    assert quality["Imputed"].sum() == here["n_imputed"].sum()


def test_method_note_warns_about_illustrative_data(ctx):
    note = content.method_note(ctx).set_index("Item")["Value"]
    assert ctx.illustrative and "ILLUSTRATIVE" in note["WARNING"]
    assert note["Specification"] == ctx.spec.name and note["Spec hash"] == ctx.spec.hash
    assert note["Data version"] == ctx.result.data_version


# --------------------------------------------------------------------------- HTML safety
def test_names_from_the_data_are_escaped_everywhere(ctx, monkeypatch):
    top = _this_region(ctx).sort_values(ctx.index_id, ascending=False).iloc[0][ctx.columns.location]
    bad = _with_name(ctx, top, XSS)
    pieces = [
        nb.table_html(content.ranked_table(bad)),
        nb.table_html(content.drivers_table(bad, "most")),
        nb.table_html(content.pillar_summary(bad)),  # region name in a column header
        nb.table_html(content.method_note(bad)),     # region name in the title
        nb.bullets_html(content.headline_text(bad)),
        nb.heading_html(bad.title, 1),
        nb.intro_html(bad),
    ]
    for html_text in pieces:
        assert XSS_ESCAPED in html_text
        assert "<script" not in html_text
    shown = []
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda obj, *a, **k: shown.append(obj))
    nb.show(content.ranked_table(bad))
    nb.heading(bad.title)
    nb.show(XSS)
    assert len(shown) == 3
    for obj in shown:
        assert XSS_ESCAPED in obj.data and "<script" not in obj.data


def test_tables_format_numbers_and_hide_the_index():
    df = pd.DataFrame({"Name": ["a", None], "n": pd.array([1234, None], dtype="Int64"),
                       "x": [-0.04, 12345.678], "Change since round 1": [1.25, -0.01]}, index=[7, 8])
    text = nb.table_html(df)
    assert "1,234" in text and "12,345.7" in text and "+1.2" in text
    assert "-0.0" not in text and "+0.0" not in text
    assert ">7<" not in text  # no index
    assert nb.format_value(float("nan")) == nb.BLANK


# --------------------------------------------------------------------------- figures
def _has_legend(fig) -> bool:
    return bool(fig.legends) or any(ax.get_legend() is not None for ax in fig.axes)


@pytest.mark.parametrize("name", ["region_map", "pillar_profile", "region_comparison"])
def test_region_figures(ctx, name):
    from matplotlib.figure import Figure

    fig = getattr(figures, name)(ctx)
    assert isinstance(fig, Figure) and _has_legend(fig)
    assert nb.figure_png(fig).startswith(b"\x89PNG")


@pytest.mark.parametrize("name", ["country_map", "region_comparison", "population_bars", "pillar_profile"])
def test_overview_figures(overview, name):
    from matplotlib.figure import Figure

    fig = getattr(figures, name)(overview)
    assert isinstance(fig, Figure) and _has_legend(fig)


def test_maps_fall_back_to_points_without_boundaries(ctx, overview):
    for fig in (figures.region_map(dataclasses.replace(ctx, geo={})),
                figures.country_map(dataclasses.replace(overview, geo={}))):
        ax = fig.axes[0]
        assert _has_legend(fig) and len(ax.collections) >= 1  # the points
        assert len(fig.axes) == 1  # no colour bar without areas


def test_map_shades_the_cercles_of_the_region(ctx):
    fig = figures.region_map(ctx)
    cercles = [p for p, parent in ctx.geo["admin2_parent"].items() if parent == REGION]
    labels = {t.get_text().split("\n")[0] for t in fig.axes[0].texts}
    assert {ctx.geo["admin2_names"][p] for p in cercles} <= labels
    assert len(fig.axes) == 2  # map and colour bar


def test_category_colours_are_fixed(ctx):
    colours = figures.category_colours(ctx)
    assert list(colours)[:3] == ["low", "medium", "high"]
    assert [colours[k] for k in ("low", "medium", "high")] == list(figures.CATEGORY_COLOURS)


def test_notebook_path_imports_neither_geopandas_nor_scipy_nor_pyplot(cache):
    code = (
        "import sys\n"
        "from stability.report import content, figures, notebook as nb\n"
        f"ctx = nb.setup(region='{REGION}', cache_path=r'{cache}', intro=False)\n"
        "figures.region_map(ctx); figures.pillar_profile(ctx); figures.region_comparison(ctx)\n"
        "content.ranked_table(ctx); content.drivers(ctx); content.data_quality(ctx)\n"
        "bad = [m for m in ('geopandas', 'scipy', 'matplotlib.pyplot', 'sklearn', 'SALib', 'distributed')\n"
        "       if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


# --------------------------------------------------------------------------- workbook
def test_rankings_workbook(ctx, tmp_path):
    import openpyxl

    path = content.write_rankings(ctx, tmp_path / "out")
    assert path == tmp_path / "out" / "rankings.xlsx"
    first = path.read_bytes()
    book = openpyxl.load_workbook(path, read_only=True)
    assert book.sheetnames == ["Read me", "Ranked locations", "Drivers", "Priorities", "Priority classes",
                               "IASC criteria", "Priority rule", "Pockets", "Pocket locations", "Change", "Trend",
                               "Data quality", "Indicator data quality", "Weights"]
    rows = list(book["Ranked locations"].values)
    header, body = rows[0], rows[1:]
    assert len(body) == len(ctx.current)
    assert header[0] == "Data note" and body[0][header.index("Location id")] == content.ranked_table(ctx)["Location id"][0]
    for name in ("Pockets", "Pocket locations", "Change", "Trend"):  # every table of people and places says it
        assert next(book[name].values)[0] == "Data note", name
    drivers_header = next(book["Drivers"].values)  # headers for readers, not the tidy table's column names
    assert {"Location id", "Rank in region", "Effect", "Indicator id", "Points (index)"} <= set(drivers_header)
    assert not {"group", "location_id", "rank", "effect", "order", "indicator"} & set(drivers_header)
    book.close()
    content.write_rankings(ctx, tmp_path / "out")
    assert path.read_bytes() == first  # fixed creation date: same content, same bytes
    assert not [p for p in (tmp_path / "out").iterdir() if p.name != "rankings.xlsx"]  # no temporary left


def test_default_output_folder_is_apart_from_the_published_reports(ctx, overview):
    from stability.paths import reports_dir

    assert content.default_output_dir(ctx) == reports_dir() / "interactive" / str(ctx.round) / REGION
    assert content.default_output_dir(overview).parts[-3:] == ("interactive", str(overview.round), "overview")


def test_workbook_says_what_it_was_built_from(ctx, tmp_path):
    path = content.write_rankings(ctx, tmp_path)
    assert content.workbook_provenance(path) == {"spec_hash": ctx.spec.hash, "data_version": ctx.result.data_version}
    (tmp_path / "broken.xlsx").write_text("not a workbook")
    assert content.workbook_provenance(tmp_path / "broken.xlsx") == {"spec_hash": "", "data_version": ""}


# --------------------------------------------------------------------------- notebooks
@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_notebook_structure(name):
    import nbformat
    import papermill

    path = NOTEBOOKS / f"{name}.ipynb"
    book = nbformat.read(path, as_version=4)
    nbformat.validate(book)
    assert book.nbformat == 4 and book.metadata["kernelspec"]["name"] == "python3"
    tagged = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code"
    params = papermill.inspect_notebook(str(path))
    assert list(params) == PARAMETERS[name]
    for p in params.values():
        assert p["help"] and p["inferred_type_name"] != "None"
    for cell in book.cells:
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [] and cell.execution_count is None
        if cell is tagged[0]:
            continue
        lines = [ln for ln in cell.source.splitlines() if ln.strip()]
        assert 1 <= len(lines) <= 3, cell.source
        calls = cell.source.replace("from stability.report import content, figures, notebook as nb", "")
        assert "import" not in calls  # only stability.report functions
    assert "write_rankings(ctx, output_dir)" in json.dumps([c.source for c in book.cells])


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_notebook_runs_with_a_cache(name, cache, tmp_path):
    import nbformat
    import papermill

    params = {"cache_path": str(cache), "output_dir": str(tmp_path / "out")}
    if name == "regional_report":
        params["region"] = REGION
    out = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(out), parameters=params,
                               kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
    assert (tmp_path / "out" / "rankings.xlsx").is_file()
    book = nbformat.read(out, as_version=4)
    outputs = [o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error" or o.get("name") == "stderr"]
    html_text = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert "ILLUSTRATIVE DATA" in html_text
    # the trend across rounds, the map (pockets ringed), and two figures of the index by region and pillar
    assert len(images) == 4
    alts = [o.get("metadata", {}).get("image/png", {}).get("alt", "") for o in images]
    assert all(len(a) > 40 for a in alts) and len(set(alts)) == len(alts)  # every image says what it shows
    assert (tmp_path / "out" / "map.html").is_file()
    assert "<script" not in html_text


def test_method_note_names_the_drivers_floor_only_on_a_fixed_scale(ctx, mali_data, mali_spec):
    from stability.pipeline import compute
    from stability.report.context import context_for

    note = content.method_note(ctx).set_index("Item")["Value"]
    assert "contributions under 0.05 points are not named" in note["Drivers"]
    spec = mali_spec.with_changes({"normalise.method": "zscore", "categories.method": "quantile",
                                   "categories.cuts": [0.4, 0.6]})
    unbounded = context_for(compute(mali_data, spec), ctx.region, "latest", ctx.geo)
    note = content.method_note(unbounded).set_index("Item")["Value"]
    assert "not named" not in note["Drivers"] and "contribution" in note["Drivers"]


def test_a_cut_list_of_dropped_locations_says_it_is_cut(ctx, overview):
    from stability.report import trends

    for c in (ctx, overview):
        dropped = int((trends._changes(c)["category_move"] == "dropped").sum())
        text = trends.dropped_text(c)[0]
        shown = len(trends.dropped_table(c))
        assert shown == min(dropped, trends.DROPPED_SHOWN)
        if dropped > trends.DROPPED_SHOWN:
            assert (f"the {trends.DROPPED_SHOWN} largest falls are listed below" in text
                    and f"all {dropped:,} are in the workbook's Change sheet" in text), text
        else:
            assert "those that dropped are listed below" in text
    assert int((trends._changes(overview)["category_move"] == "dropped").sum()) > trends.DROPPED_SHOWN


def test_method_note_says_the_method_in_words(ctx):
    """Readers get words, not option codes: no snake_case names, no module names."""
    import re

    note = content.method_note(ctx).set_index("Item")["Value"]
    for item in ("Imputation", "Outlier treatment", "Normalisation", "Aggregation", "Drivers"):
        assert not re.search(r"\b[a-z0-9]+_[a-z0-9_]+\b|stability\.|scope:", note[item]), (item, note[item])
    assert note["Imputation"] == "a missing answer takes the median of the same cercle, else median of the round"
    assert note["Normalisation"].startswith("each indicator placed between fixed goalposts (0 at the lower, 100 at")
    assert "round 1 (the reference round)" in note["Normalisation"]
    assert note["Aggregation"].startswith("pillar: weighted arithmetic mean of its indicators, computed when at "
                                          "least 50% of them have a value; index: weighted arithmetic mean")


@pytest.mark.parametrize("family", ["normalise", "aggregate"])
def test_every_method_has_words_for_readers(family):
    """A new normaliser or aggregation is registered with its words (``plain``), which the method note shows."""
    from stability.aggregate import AGGREGATIONS
    from stability.normalise import NORMALISERS

    registry = NORMALISERS if family == "normalise" else AGGREGATIONS
    params = {"l": 0, "u": 100, "m": 0, "s": 1, "scale": 100, "p": 2}
    for method in registry:
        words = method.meta.get("plain")
        assert words and "_" not in words.format(**params), method.name
