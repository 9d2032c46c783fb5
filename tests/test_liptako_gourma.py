"""The Liptako-Gourma view: the three-country illustrative survey (Mali, Burkina Faso, Niger), its
geodata, map layers, region names, maps and reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stability import geo
from stability.cli import main
from stability.generate import LIPTAKO_GOURMA_REGIONS, generate, write_liptako_gourma
from stability.paths import data_dir

SPEC = data_dir() / "specs" / "liptako_gourma.yaml"
EMBEDDED = data_dir() / "raw" / "liptako_gourma_illustrative"
COUNTRIES = ("MLI", "BFA", "NER")
SELECTED = [r for c in COUNTRIES for r in LIPTAKO_GOURMA_REGIONS[c]]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small three-country survey (200 locations, 2 rounds), written to a folder."""
    folder = tmp_path_factory.mktemp("lg_small")
    ds = generate(200, n_rounds=2, countries=COUNTRIES)
    ds.write(folder)
    return ds, folder


@pytest.fixture(scope="module")
def embedded_locations():
    return pd.read_csv(EMBEDDED / "locations.csv", dtype={"location_id": str, "admin1_pcode": str,
                                                           "admin2_pcode": str, "admin0_pcode": str})


@pytest.fixture(scope="module")
def lg_result():
    from stability.report.context import compute_result

    result, _, _ = compute_result(EMBEDDED, SPEC)
    return result


@pytest.fixture(scope="module")
def layers(lg_result):
    from stability.report.context import map_layers

    return map_layers(lg_result)


# --------------------------------------------------------------------------------------------
# geodata
# --------------------------------------------------------------------------------------------


def test_bfa_provinces_have_ocha_pcodes():
    prov = geo.load_bfa_provinces()
    pcodes = geo.load_pcodes("BFA")
    adm2 = pcodes[pcodes["admin_level"] == 2]
    assert len(prov) == 45 and prov["adm2_pcode"].is_unique
    assert set(prov["adm2_pcode"]) == set(adm2["pcode"])
    parent = dict(zip(adm2["pcode"], adm2["parent_pcode"]))
    assert all(parent[p] == r for p, r in zip(prov["adm2_pcode"], prov["adm1_pcode"]))
    assert prov.set_index("ne_name").loc["Mou Houn", "adm2_pcode"] == "BF4604"
    assert str(prov.crs) == "EPSG:4326"


def test_niger_department_seats_and_nearest_department():
    seats = geo.load_niger_department_seats()
    assert seats["adm2_pcode"].is_unique
    ours = seats[seats["adm1_pcode"].isin(["NE005", "NE006"])]
    # every department of Tahoua and Tillaberi has its seat, except the urban "Ville de Tahoua"
    assert len(ours) == 12 + 13 and "NE005013" not in set(seats["adm2_pcode"])
    # a seat belongs to its own department; a point near Tera goes to Tera
    got = geo.nearest_department(ours["longitude"], ours["latitude"], ours["adm1_pcode"], seats)
    assert list(got) == list(ours["adm2_pcode"])
    assert geo.nearest_department([0.8], [14.05], ["NE006"], seats)[0] == "NE006011"
    assert geo.nearest_department([0.8], [14.05], ["NE099"], seats)[0] == ""


def test_admin_layers_of_the_three_countries():
    a1 = geo.load_admin1()
    assert a1["adm0_iso3"].value_counts().to_dict() == {"BFA": 13, "MLI": 10, "NER": 8}
    assert a1["adm1_pcode"].is_unique and set(a1["adm1_pcode"]) <= set(geo.load_pcodes(None)["pcode"])
    a2 = geo.load_admin2()
    assert a2["adm0_iso3"].value_counts().to_dict() == {"MLI": 50, "BFA": 45}
    assert [geo.country_of(p) for p in ("ML05", "BF5601", "NE006011", "XX1", None)] == [
        "MLI", "BFA", "NER", None, None]


# --------------------------------------------------------------------------------------------
# the generator
# --------------------------------------------------------------------------------------------


def test_every_country_and_region_present(small, embedded_locations):
    ds, _ = small
    for loc in (ds.locations, embedded_locations):
        assert list(loc.columns[:7]) == ["location_id", "location_name", "name_source", "geonameid",
                                         "location_type", "admin0_pcode", "admin1_pcode"]
        assert set(loc["admin0_pcode"]) == set(COUNTRIES)
        assert set(loc["admin1_pcode"]) == set(SELECTED)
        assert all(geo.country_of(p) == c for p, c in zip(loc["admin1_pcode"], loc["admin0_pcode"]))
        assert loc["location_id"].is_unique
        assert (loc["population"] > 0).all()
    # every Burkina Faso province of the area, and most Niger departments, hold locations
    counts = embedded_locations.groupby("admin0_pcode")["admin2_pcode"].nunique()
    assert counts["BFA"] == 22 and counts["NER"] >= 20 and counts["MLI"] == 17


def test_pcodes_are_valid_and_nested(small):
    ds, _ = small
    pc = geo.load_pcodes(None)
    parent = dict(zip(pc["pcode"], pc["parent_pcode"]))
    name = dict(zip(pc["pcode"], pc["name"]))
    loc = ds.locations
    assert loc["admin2_pcode"].map(parent).tolist() == loc["admin1_pcode"].tolist()
    assert loc["admin1_pcode"].map(parent).tolist() == loc["admin0_pcode"].tolist()
    assert loc["admin1_name"].tolist() == loc["admin1_pcode"].map(name).tolist()
    assert loc["admin2_name"].tolist() == loc["admin2_pcode"].map(name).tolist()
    assert loc["location_id"].str.split("-").str[0].tolist() == loc["admin2_pcode"].tolist()


def test_locations_inside_their_admin1_polygon(embedded_locations):
    from stability.locations import TOLERANCE_M, place

    loc = embedded_locations
    placed = place(loc["longitude"].to_numpy(), loc["latitude"].to_numpy(),
                   [loc["admin1_pcode"].to_numpy(dtype=object), loc["admin2_pcode"].to_numpy(dtype=object)],
                   tolerance=TOLERANCE_M)
    assert (placed["status"] == "ok").all(), placed[placed["status"] != "ok"].head()
    # strictly inside the admin-1 polygon (no tolerance needed)
    import shapely

    a1 = geo.load_admin1()
    polys = dict(zip(a1["adm1_pcode"], a1.geometry))
    for region, grp in loc.groupby("admin1_pcode"):
        assert shapely.contains_xy(polys[region], grp["longitude"], grp["latitude"]).all(), region


def test_burkina_faso_points_in_their_province_and_niger_at_the_nearest_seat(embedded_locations):
    import shapely

    loc = embedded_locations
    prov = geo.load_bfa_provinces()
    polys = dict(zip(prov["adm2_pcode"], prov.geometry))
    bfa = loc[loc["admin0_pcode"] == "BFA"]
    for code, grp in bfa.groupby("admin2_pcode"):
        assert shapely.contains_xy(polys[code], grp["longitude"], grp["latitude"]).all(), code
    ner = loc[loc["admin0_pcode"] == "NER"]
    again = geo.nearest_department(ner["longitude"], ner["latitude"], ner["admin1_pcode"])
    assert list(again) == list(ner["admin2_pcode"])


def test_validate_passes_without_error(small, capsys):
    _, folder = small
    assert main(["validate", "--data", str(folder), "--spec", str(SPEC)]) == 0
    out = capsys.readouterr().out
    assert "0 error(s)" in out and "0 warning(s)" in out


def test_embedded_dataset_validates_and_is_labelled(capsys):
    import yaml

    assert main(["validate", "--data", str(EMBEDDED), "--spec", str(SPEC)]) == 0
    assert "0 error(s)" in capsys.readouterr().out
    meta = yaml.safe_load((EMBEDDED / "dataset.yaml").read_text(encoding="utf-8"))
    assert meta["illustrative"] is True and meta["name"] == "Liptako-Gourma stability survey (illustrative)"
    assert meta["generator"]["parameters"]["countries"] == list(COUNTRIES)
    readme = (EMBEDDED / "README.md").read_text(encoding="utf-8")
    assert "ILLUSTRATIVE" in readme and "NOT REAL SURVEY DATA" in readme
    assert "stability generate --countries MLI,BFA,NER" in readme


def test_embedded_dataset_is_reproduced_byte_for_byte(tmp_path):
    ds = write_liptako_gourma(tmp_path)
    names = [*ds.files.values(), "dataset.yaml"]
    for name in names:
        assert (tmp_path / name).read_bytes() == (EMBEDDED / name).read_bytes(), name


def test_index_recovers_the_latent(lg_result):
    truth = pd.read_csv(EMBEDDED / "ground_truth.csv", dtype={"location_id": str})
    m = lg_result.scores[["location_id", "round", "admin1_pcode", "stability"]].merge(truth, on=["location_id", "round"])

    def rho(g):
        return g["stability"].corr(g["latent_stability"], method="spearman")

    assert min(rho(g) for _, g in m.groupby("round")) >= 0.9
    assert min(rho(g) for _, g in m.groupby(["round", "admin1_pcode"])) >= 0.85


def test_deterministic_and_seeded(tmp_path):
    a = generate(150, n_rounds=1, seed=5, key_informants=None, countries="MLI,BFA,NER").write(tmp_path / "a")
    b = generate(150, n_rounds=1, seed=5, key_informants=None, countries=("ner", "bfa", "mli")).write(tmp_path / "b")
    c = generate(150, n_rounds=1, seed=6, key_informants=None, countries=COUNTRIES).write(tmp_path / "c")
    for name in sorted(p.name for p in a.iterdir()):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "locations.csv").read_bytes() != (c / "locations.csv").read_bytes()


def test_country_selection():
    ds = generate(120, n_rounds=1, key_informants=None, countries=("BFA",))
    assert set(ds.locations["admin0_pcode"]) == {"BFA"}
    assert set(ds.locations["admin1_pcode"]) == set(LIPTAKO_GOURMA_REGIONS["BFA"])
    mali = generate(60, n_rounds=1, key_informants=None, countries=("MLI",))
    assert "admin0_pcode" not in mali.locations.columns  # the whole-Mali survey, as by default
    pd.testing.assert_frame_equal(mali.locations, generate(60, n_rounds=1, key_informants=None).locations)
    with pytest.raises(ValueError, match="countries"):
        generate(60, countries=("MLI", "SEN"))


def test_cli_generate_countries(tmp_path, capsys):
    out = tmp_path / "lg"
    assert main(["generate", "--out", str(out), "--locations", "80", "--rounds", "1", "--countries",
                 "MLI,BFA,NER"]) == 0
    loc = pd.read_csv(out / "locations.csv")
    assert set(loc["admin0_pcode"]) == set(COUNTRIES) and len(loc) == 80
    assert "MLI, BFA, NER" in capsys.readouterr().out
    assert main(["generate", "--out", str(tmp_path / "x"), "--countries", "MLI,XYZ"]) == 2


# --------------------------------------------------------------------------------------------
# map layers, region names, maps
# --------------------------------------------------------------------------------------------


def test_map_layers_have_the_three_countries(layers):
    assert set(layers["countries"]) == set(COUNTRIES)
    assert layers["country_names"] == {"BFA": "Burkina Faso", "MLI": "Mali", "NER": "Niger"}
    assert set(layers["admin1"]) == set(SELECTED)
    assert {layers["admin1_country"][p] for p in layers["admin1"]} == set(COUNTRIES)
    parents = set(layers["admin2_parent"].values())
    assert {"BF56", "ML05"} <= set(layers["admin2_parent"][p] for p in layers["admin2"])
    assert not any(p.startswith("NE") for p in layers["admin2"])  # no polygons of Niger's departments
    assert len(layers["admin2_seats"]) == 25 and {"NE005", "NE006"} <= parents
    # Mali's regions are the geoBoundaries ones (with Menaka), the others the Natural Earth ones
    assert layers["admin1"]["ML10"].equals(geo.load_regions().set_index("adm1_pcode").geometry["ML10"])
    for region, geom in layers["admin1"].items():
        assert layers["countries"][layers["admin1_country"][region]].buffer(1e-6).contains(geom)


def test_region_names_carry_the_country(lg_result, mali_result):
    from stability.report.context import region_names

    names = region_names(lg_result)
    assert names["BF56"] == "Sahel (Burkina Faso)" and names["NE006"] == "Tillaberi (Niger)"
    assert names["ML05"] == "Mopti (Mali)"
    assert region_names(mali_result)["ML05"] == "Mopti"  # one country: no suffix


@pytest.mark.parametrize("region", [None, "BF56", "NE006"])
def test_maps_of_several_countries(lg_result, layers, region, tmp_path):
    from stability.report import figures
    from stability.report.context import context_for

    ctx = context_for(lg_result, region, "latest", layers)
    fig = figures.country_map(ctx) if region is None else figures.region_map(ctx)
    alt = figures.alt_text(fig)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    if region is None:
        assert {"MALI", "BURKINA FASO", "NIGER"} <= set(texts)
        assert "Burkina Faso, Mali, Niger" in alt and "Country borders" in alt
        assert any(t.startswith("Tillaberi\n") for t in texts)  # labelled without the country
    elif region == "BF56":
        assert "Provinces are shaded" in alt and "Soum" in alt
        assert "BURKINA FASO" in texts
    else:
        assert "No department boundaries" in alt and "seats of its 13 departments" in alt
        assert any(t.startswith("Tera ") for t in texts)  # a seat, labelled with its median
    assert fig.axes[0].title.get_fontsize() >= 9
    fig.savefig(tmp_path / "map.png")
    assert (tmp_path / "map.png").stat().st_size > 10_000


def test_interactive_overview_shades_regions_without_admin2_boundaries(lg_result, layers):
    """Niger's departments have no polygons: its regions are shaded whole by their own median, and the page
    says so; every region of the data is shaded (none left white)."""
    import html as html_lib
    import re

    import numpy as np

    from stability.report import figures, interactive
    from stability.report.context import context_for

    ctx = context_for(lg_result, None, "latest", layers)
    page = interactive.interactive_map(ctx)
    shaded = {html_lib.unescape(m) for m in re.findall(r'<path class="area t\d" d="[^"]*" tabindex="0" aria-label="([^"]*)"',
                                                       page)}
    for code in ("NE005", "NE006"):
        name = ctx.regions[code]  # with the country: "Tahoua (Niger)"
        rows = ctx.current[ctx.current["admin1_pcode"] == code]["stability"]
        median = float(np.median(rows))
        label = figures.class_of(ctx, [median])[0]
        assert any(t.startswith(f"Region {name}; median index") and f"({label}); {len(rows):,} locations" in t
                   for t in shaded), (name, sorted(shaded)[:3])
    assert "Tahoua and Tillaberi (Niger): no department boundaries, each region shaded whole" in page
    # Mali's and Burkina Faso's admin-2 areas are still shaded one by one
    assert any(t.startswith("Admin-2 area ") for t in shaded)
    assert not any(t.startswith("Region Mopti") for t in shaded)


@pytest.mark.parametrize("region, expected, absent", [
    (None, "Each admin-2 area (a cercle in Mali and a province in Burkina Faso; in Niger, where department "
           "boundaries are not available, each region as a whole) is shaded", ()),
    ("BF56", "Each province is shaded", ("cercle", "Niger")),
    ("NE006", "In Niger, where department boundaries are not available, the region is shaded by the stability "
              "category of its median index", ("cercle", "province")),
    ("ML05", "Each cercle is shaded", ("province", "Niger")),
])
def test_map_reading_speaks_of_the_data_s_admin_areas(lg_result, layers, region, expected, absent):
    from stability.report import pockets
    from stability.report.context import context_for

    text = pockets.map_reading(context_for(lg_result, region, "latest", layers))
    assert text.startswith(expected) and not any(word in text for word in absent), text
    assert ("regions are outlined" in text) == (region is None)


def test_map_reading_of_a_mali_only_survey_names_no_other_country(mali_result):
    from stability.report import pockets
    from stability.report.context import context_for, map_layers

    for region in (None, "ML05"):
        text = pockets.map_reading(context_for(mali_result, region, "latest", map_layers(mali_result)))
        assert text.startswith("Each cercle is shaded") and "Burkina" not in text and "Niger" not in text, text


def test_map_reading_without_boundaries_or_admin2_column(mali_data, mali_spec, mali_result):
    """No embedded boundaries: only points, and the text says no area is shaded; no admin-2 column: the regions
    are shaded, and the text says so (as the figures draw them)."""
    import dataclasses

    from stability.pipeline import compute
    from stability.report import figures, pockets
    from stability.report.context import context_for, map_layers

    ctx = context_for(mali_result, "ML05", "latest", map_layers(mali_result))
    text = pockets.map_reading(dataclasses.replace(ctx, geo={}))
    assert text.startswith("Each dot is a location") and "no area is shaded" in text and "cercle" not in text
    spec = mali_spec.with_changes({"columns.admin": ["admin1_pcode"], "columns.admin_names": ["admin1_name"]})
    regional = compute(mali_data, spec)
    for region, start in (("ML05", "The region is shaded"), (None, "Each region is shaded")):
        ctx = context_for(regional, region, "latest", map_layers(regional))
        text = pockets.map_reading(ctx)
        assert text.startswith(start) and "cercle" not in text, text
        alt = figures.alt_text(pockets.pocket_map(ctx))
        assert "boundaries are available" not in alt and ("The data give no cercle" in alt or region is None), alt


def test_report_notebooks_explain_the_map_from_the_data():
    """The map's reading is generated (above), not a fixed paragraph naming every country's admin areas."""
    import nbformat

    from stability.paths import notebooks_dir

    for name in ("regional_report.ipynb", "country_overview.ipynb"):
        nb = nbformat.read(notebooks_dir() / name, as_version=4)
        assert any("pockets.map_reading(ctx)" in c.source for c in nb.cells if c.cell_type == "code"), name
        assert not any("Burkina Faso" in c.source and "cercle" in c.source for c in nb.cells
                       if c.cell_type == "markdown"), name


def test_overview_tables_with_eleven_regions(lg_result, layers):
    from stability.report import content, figures
    from stability.report.context import context_for

    ctx = context_for(lg_result, None, "latest", layers)
    medians = content.region_medians(ctx)
    assert len(medians) == 11 and set(medians.index) == set(SELECTED)
    alt = figures.alt_text(figures.region_comparison(ctx))
    assert "Sahel (Burkina Faso)" in alt and "Tahoua (Niger)" in alt


# --------------------------------------------------------------------------------------------
# end to end
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_reports_of_a_three_country_survey(small, tmp_path):
    from stability.report.runner import build_reports

    _, folder = small
    batch = build_reports(all_regions=True, data_path=folder, spec_path=SPEC, out_root=tmp_path, workers=2,
                          progress=False)
    status = {o.name: o.status for o in batch.outcomes}
    assert set(status) == {"overview", *SELECTED}, status
    assert all(s in ("ok", "not assessed") for s in status.values()), [(o.name, o.error) for o in batch.failed]
    assert status["overview"] == "ok"
    out = Path(batch.folder)
    for name, s in status.items():
        assert json.loads((out / name / "manifest.json").read_text())["status"] == s
    assert (out / "BF56" / "report.html").is_file() and (out / "NE006" / "report.html").is_file()
    html = (out / "overview" / "report.html").read_text(encoding="utf-8")
    assert "Sahel (Burkina Faso)" in html and "Tillaberi (Niger)" in html


def test_the_overview_compares_the_countries():
    from stability.report import content
    from stability.report.context import compute_result, context_for, map_layers

    result, _, _ = compute_result(data_dir() / "raw" / "liptako_gourma_illustrative",
                                  data_dir() / "specs" / "liptako_gourma.yaml")
    ctx = context_for(result, None, "latest", map_layers(result))
    table = content.country_table(ctx)
    assert list(table["Country"]) == ["Mali", "Burkina Faso", "Niger"]
    assert table["Locations"].sum() == len(ctx.national) and table["Regions"].sum() == len(ctx.regions)
    for _, row in table.iterrows():
        assert row["Median 95 % CI low"] <= row["Median index"] <= row["Median 95 % CI high"]
    assert "Countries" in content.workbook_sheets(ctx)
    assert ctx.title.endswith("Overview of Mali, Burkina Faso and Niger, round 3")
    sahel = context_for(result, "BF56", "latest", map_layers(result))
    assert content.admin_term(2, sahel) == "province" and "(Burkina Faso)" in sahel.region_name


def test_figures_over_all_locations_of_three_countries_are_not_called_national(lg_result, layers):
    """In a three-country survey the median and rank over all locations are those of the three countries; a
    regional report also compares the region with its own country's median."""
    from stability.report import content, trends
    from stability.report.context import context_for

    tillaberi = context_for(lg_result, "NE006", "latest", layers)
    nat = tillaberi.national
    niger = nat[nat["admin1_pcode"].str.startswith("NE")][tillaberi.index_id].median()
    line = content.headline_text(tillaberi)[1]
    assert "national" not in line
    assert f"Niger median {content.number(niger)}; median of all three countries " in line
    summary = content.pillar_summary(tillaberi)
    assert list(summary.columns[1:4]) == ["Median in Tillaberi (Niger)", "Median in Niger",
                                          "Median, all three countries"]
    assert summary.loc[0, "Median in Niger"] == pytest.approx(niger, abs=0.05)
    ranked = content.ranked_table(tillaberi)
    assert "Rank, all three countries" in ranked.columns and "Rank national" not in ranked.columns

    overview = context_for(lg_result, None, "latest", layers)
    assert "Median, all three countries" in content.pillar_summary(overview).columns
    full = content.ranked_table(overview)
    assert set(full["Country"]) == {"Mali", "Burkina Faso", "Niger"}
    assert full.columns.get_loc("Country") == full.columns.get_loc("Region") + 1
    assert all("of the country" not in line for line in trends.dropped_text(overview))
    from stability.report import pockets

    assert any(line.startswith("Across all three countries, Moran's I") for line in pockets.pocket_text(overview))
    assert any(". Across all three countries, " in line and " lie in pockets of stability" in line
               for line in pockets.pocket_text(overview))


def test_the_overview_of_three_countries_is_named_so(small, lg_result, tmp_path):
    from stability.report.context import region_names
    from stability.report.index import render_index
    from stability.report.runner import plan_jobs

    _, folder = small
    jobs, _ = plan_jobs(region=None, all_regions=True, data_path=folder, spec_path=SPEC, out_root=tmp_path,
                        progress=False)
    overview = next(j for j in jobs if j.name == "overview")
    assert "overview of Mali, Burkina Faso and Niger" in overview.title and "country" not in overview.title
    (tmp_path / "overview").mkdir(exist_ok=True)
    (tmp_path / "overview" / "manifest.json").write_text(json.dumps({"status": "ok"}))
    page = render_index(tmp_path, lg_result, 3, region_names(lg_result))
    assert '<a href="overview/report.html">Overview of Mali, Burkina Faso and Niger</a>' in page


def test_league_table_change_of_median_adds_up_with_the_medians_shown(lg_result, layers):
    """The change of a region's median is the difference of the medians as the reports show them (1 decimal):
    Tillaberi's 49.7 in round 2 and 41.5 in round 3 make -8.2, not the -8.3 of the unrounded medians."""
    from stability.report import content
    from stability.report.context import context_for

    ctx = context_for(lg_result, None, "latest", layers)
    table = content.league_table(ctx).set_index("P-code")
    prev = ctx.previous_round
    s = ctx.scores
    before = s[s["round"] == prev].groupby("admin1_pcode")[ctx.index_id].median().round(1)
    shown = table[f"Change of median since round {prev}"]
    np.testing.assert_allclose(shown, (table["Median index"] - before.reindex(shown.index)).round(1), atol=1e-9)
    assert shown["NE006"] == pytest.approx(-8.2)


def test_uncertainty_texts_of_three_countries_speak_of_their_ranking(lg_result, layers, tmp_path):
    """With an uncertainty analysis, the overview of a three-country survey speaks of the ranking across the
    three countries, not of a national one (paragraph, region table, Sobol chart, Uncertainty sheet)."""
    from stability import uncertainty
    from stability.report import content, runner
    from stability.report import uncertainty as unc
    from stability.report.context import load_context, save_cache, shared_tables

    run = uncertainty.analyse(lg_result, runs=8, seed=1, sobol=8, progress=False, normalise=False, winmax=False,
                              impute=False, aggregate=False)
    tables = shared_tables(lg_result, "latest", [None], layers)
    runner.add_uncertainty(tables, runner.UncertaintySource(run, "computed for this test"), lg_result)
    cache = save_cache(tmp_path / "result.pkl", lg_result, layers, tables)
    ctx = load_context(data_path=EMBEDDED, spec_path=SPEC, cache_path=cache)
    assert unc.available(ctx)
    words = " ".join([*unc.paragraph(ctx), unc.chart_note(ctx) or "", unc.region_table_note(ctx) or "",
                      unc.choices_sentence(ctx) or "", " ".join(unc.region_table(ctx).columns),
                      " ".join(unc.workbook_sheets(ctx)["Uncertainty"])])
    assert "national" not in words.lower(), words
    assert "the ranking across all three countries" in words and "Median rank interval, all three countries" in words
    assert content.whole_ranking(ctx) == "the ranking across all three countries"


def test_commands_in_the_reports_name_their_data_and_spec():
    from stability.report import trends
    from stability.report.context import load_context

    ctx = load_context(data_path=EMBEDDED, spec_path=SPEC, region="BF56")
    assert ("the command stability report --all --round all --data data/raw/liptako_gourma_illustrative --spec "
            "data/specs/liptako_gourma.yaml rebuilds" in trends.spec_sentence(ctx))


def test_the_overview_map_counts_its_areas_once(lg_result, layers):
    """The overview map's text counts cercles and provinces apart from the Niger regions shaded whole."""
    import re

    from stability.report import figures
    from stability.report.context import context_for

    alt = figures.alt_text(figures.country_map(context_for(lg_result, None, "latest", layers)))
    found = re.search(r"(\d+) cercles and provinces, and (\d+) regions without admin-2 area boundaries \((\d+) "
                      r"areas\) are shaded by the class of their median index \((\d+) low, (\d+) medium, (\d+) high\)",
                      alt)
    assert found, alt
    admin2, whole, areas, *classes = map(int, found.groups())
    parents = layers["admin2_parent"]
    assert whole == 2 and admin2 == sum(1 for p in layers["admin2"] if parents.get(p) in layers["admin1"])
    assert areas == admin2 + whole == sum(classes)
