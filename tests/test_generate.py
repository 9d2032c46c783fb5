"""Tests of the illustrative-data generator (stability.generate) and the geodata loaders."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import shapely

from stability import geo
from stability.generate import (
    ANSWER_CODES,
    DEFAULT_SEED,
    DONT_KNOW,
    INDICATORS,
    PILLARS,
    generate,
    indicator_catalogue,
)
from stability.paths import default_dataset

KI_COLUMNS = ["round", "survey_date", "location_id", "ki_id", "ki_profile"]


@pytest.fixture(scope="module")
def ds():
    """The default dataset (the one embedded in data/raw/mali_illustrative)."""
    return generate()


@pytest.fixture(scope="module")
def cercles():
    return geo.load_cercles()


def proxy_index(dataset) -> pd.DataFrame:
    """Simple proxy index per location-round.

    Median of the KI answers per indicator (dont_know = missing), direction-adjusted and scaled to
    0-1 by its range (yes/no 0-1, share 0-3, security incidents clipped to 0-10, water points per
    1,000 residents clipped to 0-3), averaged within pillar, pillar averages averaged.
    """
    a = dataset.answers
    codes = {}
    for ind in dataset.indicators:
        col = a[ind.id]
        if ind.answer_type == "count":
            codes[ind.id] = col.astype("float64")
        else:
            codes[ind.id] = col.map(ANSWER_CODES[ind.answer_type]).astype("float64")
    med = pd.DataFrame(codes).groupby([a["round"], a["location_id"]]).median()
    pop = dataset.locations.set_index("location_id")["population"]
    per_1000 = pop.reindex(med.index.get_level_values("location_id")).to_numpy() / 1000.0
    pillars: dict[str, list[pd.Series]] = {}
    for ind in dataset.indicators:
        x = med[ind.id]
        if ind.answer_type == "yes_no":
            s = x
        elif ind.answer_type == "share":
            s = x / 3.0
        elif ind.id.startswith("security_incidents_3m"):
            s = x.clip(0, 10) / 10.0
        else:
            s = (x / per_1000).clip(0, 3) / 3.0
        if ind.direction < 0:
            s = 1.0 - s
        pillars.setdefault(ind.pillar, []).append(s)
    pillar_scores = pd.DataFrame({p: pd.concat(v, axis=1).mean(axis=1) for p, v in pillars.items()})
    out = pillar_scores.mean(axis=1).rename("proxy").reset_index()
    return out.merge(dataset.truth, on=["round", "location_id"], validate="one_to_one")


# --------------------------------------------------------------------------------------------
# determinism
# --------------------------------------------------------------------------------------------


def test_default_reproduces_committed_files(ds, tmp_path):
    ds.write(tmp_path)
    committed = default_dataset()
    names = [*ds.files.values(), "dataset.yaml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)  # no temp files left
    for name in names:
        assert (tmp_path / name).read_bytes() == (committed / name).read_bytes(), name


def test_committed_dataset_is_labelled_illustrative():
    import yaml

    folder = default_dataset()
    meta = yaml.safe_load((folder / "dataset.yaml").read_text(encoding="utf-8"))
    assert meta["name"] == "Mali stability survey (illustrative)"
    assert meta["illustrative"] is True
    assert meta["generator"]["seed"] == DEFAULT_SEED
    assert meta["generator"]["module"] == "stability.generate"
    assert (meta["answers"], meta["locations"], meta["population"], meta["truth"]) == (
        "key_informants.csv", "locations.csv", "displacement.csv", "ground_truth.csv")
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "ILLUSTRATIVE" in readme and "NOT REAL SURVEY DATA" in readme
    assert (folder / "key_informants.csv").stat().st_size < 3_000_000


def test_seed_changes_the_data():
    a = generate(300, n_rounds=1, seed=1, key_informants=None)
    b = generate(300, n_rounds=1, seed=2, key_informants=None)
    c = generate(300, n_rounds=1, seed=1, key_informants=None)
    assert not a.truth["latent_stability"].equals(b.truth["latent_stability"])
    pd.testing.assert_frame_equal(a.answers, c.answers)
    pd.testing.assert_frame_equal(a.locations, c.locations)


# --------------------------------------------------------------------------------------------
# locations
# --------------------------------------------------------------------------------------------


def test_locations_cover_all_regions_and_cercles(ds, cercles):
    loc = ds.locations
    assert len(loc) == 1500
    assert set(loc["admin1_pcode"]) == {f"ML{i:02d}" for i in range(1, 11)}
    assert set(loc["admin2_pcode"]) == set(cercles["adm2_pcode"])
    per_cercle = loc.groupby("admin2_pcode").size()
    assert per_cercle.min() >= 5
    per_region = loc.groupby("admin1_pcode").size()
    assert per_region[["ML06", "ML07", "ML08", "ML10"]].min() >= 24  # dozens in the north
    assert loc.loc[loc["admin2_pcode"] == "ML1001", "admin1_pcode"].eq("ML10").all()


def test_locations_inside_their_cercle(ds, cercles):
    loc = ds.locations
    polys = cercles.set_index("adm2_pcode").geometry
    for pcode, grp in loc.groupby("admin2_pcode"):
        inside = shapely.contains_xy(polys[pcode], grp["longitude"].to_numpy(),
                                     grp["latitude"].to_numpy())
        assert inside.all(), pcode
    assert (loc["longitude"].round(5) == loc["longitude"]).all()


def test_location_columns_and_codes(ds):
    loc = ds.locations
    assert list(loc.columns) == [
        "location_id", "location_name", "name_source", "geonameid", "location_type",
        "admin1_pcode", "admin1_name", "admin2_pcode", "admin2_name", "longitude", "latitude",
        "population"]
    assert loc["location_id"].is_unique
    assert loc["location_id"].str.fullmatch(r"ML\d{4}-\d{4}").all()
    assert (loc["location_id"].str[:6] == loc["admin2_pcode"]).all()
    pc = geo.load_pcodes("MLI")
    names = dict(zip(pc["pcode"], pc["name"]))
    parents = dict(zip(pc["pcode"], pc["parent_pcode"]))
    assert (loc["admin2_pcode"].map(parents) == loc["admin1_pcode"]).all()
    assert (loc["admin1_pcode"].map(names) == loc["admin1_name"]).all()
    assert (loc["admin2_pcode"].map(names) == loc["admin2_name"]).all()
    assert (loc["population"] > 0).all()
    assert set(loc["location_type"]) == {"village", "idp_site"}
    assert 0.12 <= (loc["location_type"] == "idp_site").mean() <= 0.18


def test_geonames_localities_included(ds):
    loc = ds.locations
    places = geo.load_localities("ML", inside_only=True)
    gn = loc[loc["name_source"] == "geonames"]
    assert set(gn["geonameid"].astype("int64")) == set(places["geonameid"])
    assert gn["geonameid"].notna().all()
    gen = loc[loc["name_source"] == "generated"]
    assert gen["geonameid"].isna().all()
    assert set(loc["name_source"]) == {"geonames", "generated"}
    # GeoNames points keep their coordinates and the p-codes of the spatial join
    merged = gn.merge(places, left_on=gn["geonameid"].astype("int64"), right_on="geonameid")
    assert (merged["admin2_pcode"] == merged["adm2_pcode"]).all()
    assert np.allclose(merged["longitude_x"], merged["longitude_y"])


def test_generated_names_unique_and_safe(ds):
    loc = ds.locations
    keys = loc["location_name"].str.casefold()
    assert not keys.groupby(loc["admin2_pcode"]).apply(lambda s: s.duplicated().any()).any()
    assert loc["location_name"].str.fullmatch(r"[\w][\w' .\-]*").all()
    gen = loc.loc[loc["name_source"] == "generated", "location_name"]
    assert gen.str.fullmatch(r"[A-Za-z' .\-]+").all()


# --------------------------------------------------------------------------------------------
# answers
# --------------------------------------------------------------------------------------------


def test_answer_columns_and_codes(ds):
    a = ds.answers
    assert list(a.columns) == KI_COLUMNS + [i.id for i in INDICATORS]
    assert set(a["round"]) == {1, 2, 3}
    for ind in INDICATORS:
        col = a[ind.id].dropna()
        if ind.answer_type == "count":
            assert (col >= 0).all(), ind.id
            assert pd.api.types.is_integer_dtype(a[ind.id]), ind.id
        else:
            allowed = set(ANSWER_CODES[ind.answer_type]) | {DONT_KNOW}
            assert set(col) <= allowed, ind.id
            assert set(ANSWER_CODES[ind.answer_type]) <= set(col), ind.id
    dates = pd.to_datetime(a["survey_date"], format="%Y-%m-%d")
    months = dates.dt.strftime("%Y-%m").groupby(a["round"]).unique()
    assert [list(m) for m in months] == [["2021-12"], ["2022-06"], ["2022-12"]]
    assert (dates.dt.day <= 22).all()


def test_missing_dont_know_and_kis(ds):
    a = ds.answers
    ind = [i.id for i in INDICATORS]
    missing = a[ind].isna().to_numpy().mean()
    assert 0.03 <= missing <= 0.07
    cat = [i.id for i in INDICATORS if i.answer_type != "count"]
    dont_know = (a[cat] == DONT_KNOW).to_numpy().sum() / a[cat].notna().to_numpy().sum()
    assert 0.005 <= dont_know <= 0.02
    # some indicators are missing for every KI of a location-round
    all_missing = a[ind].isna().groupby([a["round"], a["location_id"]]).all()
    assert all_missing.to_numpy().sum() > 0
    sizes = a.groupby(["round", "location_id"]).size()
    assert sizes.between(3, 5).all()
    assert set(sizes) == {3, 4, 5}
    assert not a.duplicated(["round", "location_id", "ki_id"]).any()
    assert not a.duplicated(["round", "location_id", "ki_profile"]).any()


def test_count_outliers_exist(ds):
    a = ds.answers
    for col in ("security_incidents_3m", "water_points"):
        x = a[col].astype("float64")
        med = x.groupby([a["round"], a["location_id"]]).transform("median")
        outliers = (x >= 10) & (x >= 8 * np.maximum(med, 1))
        assert 5 <= outliers.sum() <= 0.02 * x.notna().sum(), col


def test_rounds_and_tables_consistent(ds):
    a, truth, disp, loc = ds.answers, ds.truth, ds.population, ds.locations
    keys = a[["round", "location_id"]].drop_duplicates().reset_index(drop=True)
    pd.testing.assert_frame_equal(keys, truth[["round", "location_id"]], check_dtype=False)
    pd.testing.assert_frame_equal(keys, disp[["round", "location_id"]], check_dtype=False)
    assert set(keys["location_id"]) == set(loc["location_id"])
    assert list(truth.columns) == ["location_id", "round", "latent_stability", "latent_safety",
                                   "latent_livelihoods", "latent_cohesion"]
    assert list(disp.columns) == ["location_id", "round", "idps", "returnees"]
    assert (disp[["idps", "returnees"]] >= 0).all().all()
    rounds_per_loc = keys.groupby("location_id").size()
    assert (rounds_per_loc == 3).mean() >= 0.9
    per_round = keys.groupby("round").size()
    assert per_round.min() >= 0.95 * len(loc)
    # the latent changes between rounds
    wide = truth.pivot(index="location_id", columns="round", values="latent_stability").dropna()
    assert (wide[3] - wide[1]).abs().mean() > 0.1
    # IDP sites host many IDPs
    sites = disp.merge(loc[["location_id", "location_type", "population"]], on="location_id")
    by_type = sites.groupby("location_type")["idps"].median()
    assert by_type["idp_site"] > 5 * by_type["village"]


def test_proxy_index_recovers_the_latent(ds):
    scores = proxy_index(ds)
    for rnd, grp in scores.groupby("round"):
        rho = grp["proxy"].corr(grp["latent_stability"], method="spearman")
        assert rho >= 0.93, (rnd, rho)


def test_regional_pattern(ds):
    m = ds.truth.merge(ds.locations[["location_id", "admin1_pcode"]], on="location_id")
    means = m.groupby("admin1_pcode")["latent_stability"].mean()
    assert means[["ML09", "ML03", "ML01"]].min() > means[["ML08", "ML10", "ML07", "ML06"]].max()


# --------------------------------------------------------------------------------------------
# location-level path, catalogue, small n
# --------------------------------------------------------------------------------------------


def test_location_level_path_with_30_indicators(tmp_path):
    ds30 = generate(2000, n_rounds=1, key_informants=None, n_indicators=30)
    a = ds30.answers
    ind = [i.id for i in ds30.indicators]
    assert len(ind) == 30 and ind[25:] == [f"{i.id}_b" for i in INDICATORS[:5]]
    assert list(a.columns) == ["round", "location_id", *ind]
    assert len(a) == 2000 and a["location_id"].is_unique
    assert all(pd.api.types.is_float_dtype(a[c]) for c in ind)
    for i in ds30.indicators:
        col = a[i.id].dropna()
        if i.answer_type == "yes_no":
            assert set(col) <= {0.0, 1.0}
        elif i.answer_type == "share":
            assert set(col) <= {0.0, 1.0, 2.0, 3.0}
        else:
            assert (col >= 0).all() and (col == col.round()).all()
    assert 0.03 <= a[ind].isna().to_numpy().mean() <= 0.07
    assert len(ds30.locations) == 2000 and len(ds30.truth) == 2000
    folder = ds30.write(tmp_path / "bench")
    assert (folder / "location_answers.csv").exists() and (folder / "dataset.yaml").exists()
    back = pd.read_csv(folder / "location_answers.csv")
    assert back.shape == a.shape


def test_location_level_matches_ki_path_locations(ds):
    loc_level = generate(key_informants=None)
    pd.testing.assert_frame_equal(loc_level.truth, ds.truth)
    # names are deduplicated only on the key-informant path; everything else is shared
    cols = [c for c in ds.locations.columns if c != "location_name"]
    pd.testing.assert_frame_equal(loc_level.locations[cols], ds.locations[cols])


@pytest.mark.parametrize("n", [1, 30, 120])
def test_small_n(n):
    small = generate(n, n_rounds=2, key_informants=(3, 4))
    assert len(small.locations) == n
    assert small.answers.groupby(["round", "location_id"]).size().between(3, 4).all()


def test_catalogue():
    assert len(INDICATORS) == 25
    assert PILLARS == {"safety": "Safety & security",
                       "livelihoods": "Livelihoods & basic services",
                       "cohesion": "Social cohesion"}
    assert [sum(i.pillar == p for i in INDICATORS) for p in PILLARS] == [8, 10, 7]
    assert all(i.direction in (-1, 1) for i in INDICATORS)
    assert {i.answer_type for i in INDICATORS} == {"yes_no", "share", "count"}
    assert indicator_catalogue(25) == INDICATORS
    ext = indicator_catalogue(55)
    assert ext[50].id == "armed_groups_present_c"
    assert (ext[30].pillar, ext[30].answer_type, ext[30].direction) == (
        INDICATORS[5].pillar, INDICATORS[5].answer_type, INDICATORS[5].direction)
    with pytest.raises(ValueError):
        indicator_catalogue(0)
    with pytest.raises(ValueError):
        generate(10, key_informants=(0, 3))


# --------------------------------------------------------------------------------------------
# geodata loaders
# --------------------------------------------------------------------------------------------


def test_geo_import_is_light():
    code = ("import sys, stability.geo, stability.generate; "
            "print('geopandas' in sys.modules, 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_geo_loaders(cercles):
    regions = geo.load_regions()
    assert list(regions["adm1_pcode"]) == [f"ML{i:02d}" for i in range(1, 11)]
    assert len(cercles) == 50 and cercles["adm2_pcode"].is_unique
    assert str(cercles.crs) == "EPSG:4326"
    pc = geo.load_pcodes()
    assert (pc["admin_level"] == 1).sum() == 10 and (pc["admin_level"] == 2).sum() == 53
    assert set(cercles["adm2_pcode"]) <= set(pc["pcode"])
    assert len(geo.load_pcodes(None)) == 196
    places = geo.load_localities()
    assert len(places) == 94 and places["adm2_pcode"].isna().sum() == 2
    pop = geo.load_population()
    assert set(pop["adm2_pcode"]) == set(cercles["adm2_pcode"])
    assert "ML0704" not in set(pop["adm2_pcode"])
    row = pop.set_index("adm2_pcode").loc["ML1001"]
    assert (row["adm1_pcode"], row["source_pcode"], row["population"]) == ("ML10", "ML0704", 67119)
    regions_pop = geo.load_population(level=1).set_index("adm1_pcode")["population"]
    assert len(regions_pop) == 10 and regions_pop.sum() == pop["population"].sum()
    assert regions_pop["ML07"] == 668410 - 67119
    assert re.fullmatch(r"ML\d{2}", regions_pop.index[0])
