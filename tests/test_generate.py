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
    load_pockets,
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
    assert meta["pockets"] == "pockets.csv"  # ground truth, listed like the latent values
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "ILLUSTRATIVE" in readme and "NOT REAL SURVEY DATA" in readme
    assert (folder / "key_informants.csv").stat().st_size < 3_000_000


def test_same_seed_writes_identical_bytes(tmp_path):
    """Two runs with one seed write the same bytes, planted pockets included; another seed differs."""
    kwargs = dict(n_rounds=2, key_informants=None)
    first = generate(1500, seed=7, **kwargs).write(tmp_path / "a")
    second = generate(1500, seed=7, **kwargs).write(tmp_path / "b")
    other = generate(1500, seed=8, **kwargs).write(tmp_path / "c")
    names = sorted(p.name for p in first.iterdir())
    assert "pockets.csv" in names and names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert len(load_pockets(first)) >= 8 * 6
    assert (first / "pockets.csv").read_bytes() != (other / "pockets.csv").read_bytes()
    assert (first / "ground_truth.csv").read_bytes() != (other / "ground_truth.csv").read_bytes()


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


def test_regions_differ_but_overlap(ds):
    """Every region has stable and unstable locations: region medians differ, their spreads overlap."""
    m = ds.truth.merge(ds.locations[["location_id", "admin1_pcode"]], on="location_id")
    for rnd, grp in m.groupby("round"):
        pct = grp["latent_stability"].rank(pct=True)  # national percentile of each location
        q = pct.groupby(grp["admin1_pcode"]).quantile([0.1, 0.5, 0.9]).unstack()
        assert len(q) == 10, rnd
        assert (q[0.1] < 0.6).all(), (rnd, q[0.1].idxmax())  # the most stable region has unstable places
        assert (q[0.9] > 0.4).all(), (rnd, q[0.9].idxmin())  # the least stable region has stable places
        assert q[0.5].max() - q[0.5].min() > 0.3, rnd  # ... and the regions still differ


def haversine_km(lon0, lat0, lon, lat):
    """Great-circle distance in km on a sphere of radius 6,371 km."""
    p0, p = np.radians(lat0), np.radians(np.asarray(lat, dtype="float64"))
    dlon = np.radians(np.asarray(lon, dtype="float64") - lon0)
    h = np.sin((p - p0) / 2) ** 2 + np.cos(p0) * np.cos(p) * np.sin(dlon / 2) ** 2
    return 2 * 6371.0 * np.arcsin(np.sqrt(h))


def test_latent_is_spatially_correlated_at_tens_of_km(ds):
    """Within a region, a location's latent follows the mean of its neighbours within 30 km."""
    m = ds.truth[ds.truth["round"] == 1].merge(ds.locations, on="location_id")
    resid = (m["latent_stability"] - m.groupby("admin1_pcode")["latent_stability"].transform("mean")).to_numpy()
    lon, lat = m["longitude"].to_numpy(), m["latitude"].to_numpy()
    dist = np.stack([haversine_km(x, y, lon, lat) for x, y in zip(lon, lat)])

    def neighbour_corr(lo, hi):
        w = (dist > lo) & (dist <= hi)
        np.fill_diagonal(w, False)
        has = w.sum(axis=1) > 0
        mean = (w @ resid) / np.maximum(w.sum(axis=1), 1)
        return np.corrcoef(resid[has], mean[has])[0, 1]

    near, far = neighbour_corr(0, 30), neighbour_corr(300, 500)
    assert near > 0.4 and abs(far) < 0.2 and near > far + 0.3, (near, far)


# --------------------------------------------------------------------------------------------
# planted pockets of stability and hotspots of instability
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pockets():
    """The committed pockets.csv."""
    return load_pockets()


def test_pockets_file_is_consistent(pockets, ds):
    pd.testing.assert_frame_equal(pockets, ds.pockets, check_dtype=False)
    assert list(pockets.columns) == ["pocket_id", "kind", "centre_longitude", "centre_latitude", "radius_km",
                                     "location_id"]
    loc = ds.locations.set_index("location_id")
    assert pockets["location_id"].isin(loc.index).all()
    assert not pockets["location_id"].duplicated().any()  # no location in two planted areas
    areas = pockets.groupby("pocket_id")
    assert sorted(areas.groups) == ["H1", "H2", "H3", "H4", "P1", "P2", "P3", "P4"]
    regions = set()
    for pid, grp in areas:
        assert grp["kind"].nunique() == 1 and grp["kind"].iloc[0] == {"P": "pocket", "H": "hotspot"}[pid[0]]
        assert grp[["centre_longitude", "centre_latitude", "radius_km"]].nunique().eq(1).all(), pid
        lon0, lat0, radius = grp[["centre_longitude", "centre_latitude", "radius_km"]].iloc[0]
        assert 35 <= radius <= 60, pid
        assert len(grp) >= 6, pid
        # the centre is a location, a member
        centre = loc.index[(loc["longitude"] == lon0) & (loc["latitude"] == lat0)]
        assert len(centre) == 1 and centre[0] in set(grp["location_id"]), pid
        regions.add(loc.loc[centre[0], "admin1_pcode"])
        # the members are exactly the locations within the radius
        dist = pd.Series(haversine_km(lon0, lat0, loc["longitude"], loc["latitude"]), index=loc.index)
        assert (dist[grp["location_id"]] <= radius + 1e-6).all(), pid
        assert set(dist.index[dist <= radius - 1e-6]) <= set(grp["location_id"]), pid
    assert len(regions) >= 4  # spread over several regions


def test_pockets_stand_out_from_their_surroundings(pockets, ds):
    """In every round, a pocket's members are more stable (a hotspot's less) than the other locations
    within 150 km of its centre."""
    loc = ds.locations.set_index("location_id")
    for pid, grp in pockets.groupby("pocket_id"):
        lon0, lat0, kind = grp["centre_longitude"].iloc[0], grp["centre_latitude"].iloc[0], grp["kind"].iloc[0]
        dist = pd.Series(haversine_km(lon0, lat0, loc["longitude"], loc["latitude"]), index=loc.index)
        members = set(grp["location_id"])
        around = set(dist.index[dist <= 150]) - members
        assert len(around) >= 20, pid
        for rnd, truth in ds.truth.groupby("round"):
            latent = truth.set_index("location_id")["latent_stability"]
            inside = latent[latent.index.isin(members)].mean()
            outside = latent[latent.index.isin(around)].mean()
            gap = inside - outside if kind == "pocket" else outside - inside
            assert gap > 0.3, (pid, rnd, inside, outside)


def test_pockets_of_a_small_survey():
    small = generate(120, n_rounds=2, key_informants=None)
    assert list(small.pockets.columns) == ["pocket_id", "kind", "centre_longitude", "centre_latitude",
                                           "radius_km", "location_id"]
    assert small.pockets["location_id"].isin(small.locations["location_id"]).all()


# --------------------------------------------------------------------------------------------
# the index recovers the latent (the Mali spec on the embedded survey)
# --------------------------------------------------------------------------------------------


def recovery(scores: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Spearman's correlation of the index with ``latent_stability``, per round: nationally
    (``admin1_pcode`` = ``"all"``) and within each region."""
    m = scores[["location_id", "round", "admin1_pcode", "stability"]].merge(
        truth[["location_id", "round", "latent_stability"]], on=["location_id", "round"], validate="one_to_one")
    assert len(m) == len(truth)
    rows = []
    for rnd, grp in m.groupby("round"):
        rows.append(("all", rnd, grp["stability"].corr(grp["latent_stability"], method="spearman")))
        for region, sub in grp.groupby("admin1_pcode"):
            rows.append((region, rnd, sub["stability"].corr(sub["latent_stability"], method="spearman")))
    return pd.DataFrame(rows, columns=["admin1_pcode", "round", "rho"])


def test_index_recovers_the_latent_nationally_and_in_every_region(mali_result):
    truth = pd.read_csv(default_dataset() / "ground_truth.csv", dtype={"location_id": str})
    rho = recovery(mali_result.scores, truth)
    assert len(rho) == 3 * 11  # three rounds, the nation and ten regions
    national = rho[rho["admin1_pcode"] == "all"]
    regional = rho[rho["admin1_pcode"] != "all"]
    assert (national["rho"] >= 0.9).all(), national
    assert (regional["rho"] >= 0.85).all(), regional.nsmallest(3, "rho")
    # the check can fail: latent values shuffled within each round are not recovered
    shuffled = truth.assign(latent_stability=truth.groupby("round")["latent_stability"].transform(
        lambda s: s.sample(frac=1.0, random_state=1).to_numpy()))
    assert recovery(mali_result.scores, shuffled)["rho"].abs().max() < 0.5


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
