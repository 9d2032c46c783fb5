"""The whole pipeline on the embedded Mali survey: validity, audit trail, recompute, outputs."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from stability.exceptions import DataError, ValidationFailed
from stability.export import ILLUSTRATIVE_NOTE, write_result
from stability.io import Dataset
from stability.pipeline import STAGES, compute

KEYS = ["location_id", "round"]


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ============================================================================ the index is valid


def test_index_recovers_the_latent_stability_in_every_round(mali_result, mali_data):
    truth = mali_data.truth.astype({"round": int, "latent_stability": float})
    both = mali_result.scores.merge(truth, on=KEYS, validate="one_to_one")
    assert len(both) == len(mali_result.scores) == len(truth)
    for rnd, grp in both.groupby("round"):
        rho = grp["stability"].corr(grp["latent_stability"], method="spearman")
        assert rho >= 0.9, f"round {rnd}: Spearman {rho:.3f}"
    # the pillars follow their own latents too
    for pillar in ("safety", "livelihoods", "cohesion"):
        rho = both[pillar].corr(both[f"latent_{pillar}"].astype(float), method="spearman")
        assert rho >= 0.85, pillar


def test_scores_table(mali_result, mali_spec):
    s = mali_result.scores
    assert not s.duplicated(KEYS).any()
    assert len(s) == 4357 and set(s["round"]) == {1, 2, 3}
    for col in ["stability", "safety", "livelihoods", "cohesion", "category", "rank_national", "rank_region",
                "change", "n_missing", "n_imputed", "n_disagreements", "n_informants", "spec_hash",
                "location_name", "admin1_pcode", "admin2_pcode", "longitude", "latitude", "population", "idps"]:
        assert col in s.columns, col
    assert (s["spec_hash"] == mali_spec.hash).all()
    idx = s["stability"]
    assert idx.notna().all() and idx.between(0, 100).all()
    for p in ("safety", "livelihoods", "cohesion"):
        assert s[p].dropna().between(0, 100).all()


def test_ranks_and_categories_are_consistent(mali_result):
    s = mali_result.scores.assign(score=lambda d: d["stability"].round(9))
    # ranks and categories use the index rounded to 1e-9, so that scores equal in exact
    # arithmetic (e.g. 88.05555555555554 and 88.05555555555556) are ties
    for _, g in s.groupby("round"):
        expected = g["score"].rank(method="min", ascending=False)
        np.testing.assert_array_equal(g["rank_national"], expected)
        assert g.loc[g["stability"].idxmax(), "rank_national"] == 1
        for _, r in g.groupby("admin1_pcode"):
            np.testing.assert_array_equal(r["rank_region"], r["score"].rank(method="min", ascending=False))
    cat = s["category"].astype(str)
    assert (cat[s["score"] < 40] == "low").all()
    assert (cat[(s["score"] >= 40) & (s["score"] < 60)] == "medium").all()
    assert (cat[s["score"] >= 60] == "high").all()
    assert set(cat) == {"low", "medium", "high"}


def test_change_is_the_difference_with_the_previous_round(mali_result):
    s = mali_result.scores.set_index(KEYS)
    both = s.index.get_level_values(0)[s.index.get_level_values(1) == 2]
    both = [loc for loc in both if (loc, 1) in s.index][:50]
    for loc in both:
        assert s.loc[(loc, 2), "change"] == pytest.approx(s.loc[(loc, 2), "stability"] - s.loc[(loc, 1), "stability"])
    assert s.xs(1, level="round")["change"].isna().all()


def test_stages_are_kept(mali_result, mali_spec):
    assert list(mali_result.stages) == list(STAGES)
    for name in STAGES[:-1]:
        assert list(mali_result.stage(name).columns) == mali_spec.indicator_ids
    assert list(mali_result.stage("aggregated").columns) == ["safety", "livelihoods", "cohesion", "stability"]
    norm = mali_result.stage("normalised")
    assert norm.min().min() >= 0 and norm.max().max() <= 100
    with pytest.raises(KeyError, match="unknown stage 'ranked'"):
        mali_result.stage("ranked")


def test_raw_stage_is_the_median_of_the_key_informants(mali_result, mali_spec):
    # independent recomputation straight from the CSV
    from stability.paths import default_dataset

    ki = pd.read_csv(default_dataset() / "key_informants.csv", dtype=str, keep_default_na=False, na_values=[""])
    codes = {}
    for ind in mali_spec.indicators:
        atype = mali_spec.answers[ind.answers]
        if atype.codes:
            codes[ind.id] = ki[ind.id].map({k: (np.nan if v is None else v) for k, v in atype.codes.items()})
        else:
            codes[ind.id] = pd.to_numeric(ki[ind.id])
    med = pd.DataFrame(codes).astype(float).groupby([ki["location_id"], ki["round"].astype(int)]).median()
    raw = mali_result.stage("raw")
    med.index.names = raw.index.names
    pd.testing.assert_frame_equal(raw, med.loc[raw.index, raw.columns], check_exact=False, rtol=1e-12)


def test_every_imputed_cell_is_in_the_log(mali_result):
    raw, imp = mali_result.stage("raw"), mali_result.stage("imputed")
    mask = raw.isna() & imp.notna()
    assert mask.to_numpy().sum() > 100
    cells = mask.stack()
    cells = cells[cells]
    expected = {(loc, rnd, col): imp.loc[(loc, rnd), col] for loc, rnd, col in cells.index}
    log = mali_result.log
    log = log[log["step"] == "impute"]
    assert (log["action"] == "imputed").all()
    got = {(r.location, r.round, r.column): r.after for r in log.itertuples()}
    assert got == pytest.approx(expected)
    assert log["before"].isna().all()
    per_row = mask.sum(axis=1).to_numpy()
    np.testing.assert_array_equal(mali_result.scores["n_imputed"].to_numpy(), per_row)


def test_every_winsorised_cell_is_in_the_log(mali_result):
    imp, tr = mali_result.stage("imputed"), mali_result.stage("treated")
    changed = (imp != tr) & imp.notna()
    cells = changed.stack()
    cells = cells[cells]
    assert len(cells) > 0
    log = mali_result.log
    log = log[(log["step"] == "treat") & (log["action"] == "winsorised")]
    got = {(r.location, r.round, r.column): (r.before, r.after) for r in log.itertuples()}
    expected = {(loc, rnd, col): (imp.loc[(loc, rnd), col], tr.loc[(loc, rnd), col]) for loc, rnd, col in cells.index}
    assert got == expected


def test_coded_answers_are_not_treated_and_bounds_come_from_the_reference_round(mali_result):
    t = mali_result.treatment
    assert set(t["indicator"]) == {"security_incidents_3m", "water_points"}
    assert set(t["round"]) == {1}
    inc = t.set_index("indicator").loc["security_incidents_3m"]
    assert inc["status"] == "winsorised" and inc["n_winsorised"] >= 5
    treated = mali_result.stage("treated")["security_incidents_3m"]
    assert treated.max() == inc["upper"]          # round-1 bound applied to every round


def test_computing_does_not_modify_the_input(mali_spec):
    from stability.io import load_dataset
    from stability.paths import default_dataset

    data = load_dataset(default_dataset())
    before = {k: getattr(data, k).copy() for k in ("answers", "locations", "population")}
    compute(data, mali_spec)
    for k, df in before.items():
        pd.testing.assert_frame_equal(getattr(data, k), df)


def test_row_order_of_the_answers_does_not_matter(mali_data, mali_spec, mali_result):
    shuffled = Dataset(answers=mali_data.answers.sample(frac=1, random_state=7).reset_index(drop=True),
                       locations=mali_data.locations.sample(frac=1, random_state=8).reset_index(drop=True),
                       population=mali_data.population.iloc[::-1].reset_index(drop=True),
                       files=mali_data.files, name=mali_data.name, illustrative=True)
    again = compute(shuffled, mali_spec)
    cols = ["stability", "safety", "livelihoods", "cohesion", "rank_national", "rank_region", "n_imputed"]
    pd.testing.assert_frame_equal(again.scores.set_index(KEYS)[cols], mali_result.scores.set_index(KEYS)[cols],
                                  check_exact=True)


def test_invalid_data_is_refused_before_computing(mali_data, mali_spec):
    answers = mali_data.answers.copy()
    answers.loc[10, "robbery"] = "maybe"
    bad = Dataset(answers=answers, locations=mali_data.locations, population=mali_data.population,
                  files=dict(mali_data.files))
    with pytest.raises(ValidationFailed) as err:
        compute(bad, mali_spec)
    assert isinstance(err.value, DataError)
    assert err.value.column == "robbery" and err.value.row == 12
    assert "'maybe'" in err.value.message


# ============================================================================ recompute


def assert_same_result(a, b):
    pd.testing.assert_frame_equal(a.scores, b.scores, check_exact=False, rtol=1e-12)
    for name in STAGES:
        pd.testing.assert_frame_equal(a.stage(name), b.stage(name), check_exact=False, rtol=1e-12)


@pytest.mark.parametrize("changes, reused, recomputed", [
    ({"indicators.robbery.weight": 2}, "normalised", "aggregated"),
    ({"levels.1.threshold": 0.9}, "normalised", "aggregated"),
    ({"normalise.method": "minmax"}, "treated", "normalised"),
    ({"indicators.security_incidents_3m.goalposts": [0, 20]}, "treated", "normalised"),
    ({"treat.winmax": 2}, "imputed", "treated"),
    ({"impute.method": "mean"}, "denominated", "imputed"),
    ({"indicators.water_points.denominator_scale": 100}, "raw", "denominated"),
    ({"categories.cuts": [30, 70]}, "aggregated", None),
])
def test_recompute_equals_computing_from_scratch_and_reuses_earlier_stages(mali_result, mali_data, mali_spec,
                                                                           changes, reused, recomputed):
    again = mali_result.recompute(changes)
    scratch = compute(mali_data, mali_spec.with_changes(changes))
    assert again.spec.hash == scratch.spec.hash != mali_result.spec.hash
    assert_same_result(again, scratch)
    assert (again.scores["spec_hash"] == scratch.spec.hash).all()
    assert again.stages[reused] is mali_result.stages[reused]
    if recomputed is not None:
        assert again.stages[recomputed] is not mali_result.stages[recomputed]
    # the original result is untouched
    assert (mali_result.scores["spec_hash"] == mali_spec.hash).all()


def test_recompute_of_the_weights_changes_the_index(mali_result):
    again = mali_result.recompute({"indicators.robbery.weight": 5})
    assert not np.allclose(again.scores["stability"], mali_result.scores["stability"])
    pd.testing.assert_series_equal(again.scores["livelihoods"], mali_result.scores["livelihoods"])


def test_recompute_of_key_informant_options_reads_the_answers_again(mali_result, mali_data, mali_spec):
    changes = {"combine.method": "mode"}
    again = mali_result.recompute(changes)
    assert_same_result(again, compute(mali_data, mali_spec.with_changes(changes)))
    assert not again.stage("raw").equals(mali_result.stage("raw"))


def test_recompute_with_a_whole_spec(mali_result, mali_spec, mali_data):
    spec = mali_spec.with_changes({"levels.2.method": "harmonic", "normalise.method": "minmax", "normalise.l": 1})
    assert_same_result(mali_result.recompute(spec), compute(mali_data, spec))


# ============================================================================ outputs


def test_outputs_carry_the_spec_hash(mali_outputs, mali_result):
    import pyarrow.parquet as pq
    from openpyxl import load_workbook

    out, _ = mali_outputs
    h = mali_result.spec_hash
    csv = pd.read_csv(out / "scores.csv")
    assert (csv["spec_hash"] == h).all()
    table = pq.read_table(out / "scores.parquet")
    assert table.schema.metadata[b"stability.spec_hash"] == h.encode()
    assert set(table.column("spec_hash").to_pylist()) == {h}
    readme = dict(load_workbook(out / "scores.xlsx", read_only=True)["Read me"].iter_rows(values_only=True))
    assert readme["spec hash"] == h
    log = pd.read_csv(out / "audit_log.csv")
    assert len(log) == len(mali_result.log)
    assert "spec_hash" in log.columns and (log["spec_hash"] == h).all(), "audit_log.csv does not carry the spec hash"


def test_geopackage_output(mali_outputs, mali_result):
    import geopandas as gpd

    out, _ = mali_outputs
    gdf = gpd.read_file(out / "locations.gpkg", layer="scores")
    assert gdf.crs.to_epsg() == 4326
    assert len(gdf) == len(mali_result.scores)
    assert (gdf["spec_hash"] == mali_result.spec_hash).all()
    assert (gdf["data_note"] == ILLUSTRATIVE_NOTE).all()
    np.testing.assert_allclose(gdf.geometry.x, mali_result.scores["longitude"])


def test_outputs_are_labelled_illustrative(mali_outputs):
    import pyarrow.parquet as pq
    from openpyxl import load_workbook

    out, files = mali_outputs
    assert sorted(p.name for p in files) == sorted(
        ["scores.csv", "audit_log.csv", "weights.csv", "scores.parquet", "scores.xlsx", "locations.gpkg",
         "pockets.csv"])
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in files)   # no temporary files left
    csv = pd.read_csv(out / "scores.csv")
    assert csv.columns[0] == "data_note" and (csv["data_note"] == ILLUSTRATIVE_NOTE).all()
    table = pq.read_table(out / "scores.parquet")
    assert table.schema.metadata[b"stability.illustrative"] == b"True"
    assert set(table.column("data_note").to_pylist()) == {ILLUSTRATIVE_NOTE}
    book = load_workbook(out / "scores.xlsx", read_only=True)
    assert book.sheetnames[0] == "Read me"
    readme = dict(book["Read me"].iter_rows(values_only=True))
    assert "ILLUSTRATIVE" in readme["WARNING"]
    assert readme["data version"] and readme["spec"] == "Mali stability index"
    assert readme["weights"] == ("Within each pillar, the indicators count equally. "
                                 "In the Stability index, the pillars count equally.")
    weights = pd.read_csv(out / "weights.csv")
    assert (weights["data_note"] == ILLUSTRATIVE_NOTE).all() and (weights["method"] == "written").all()


def test_real_data_is_not_labelled_illustrative(tmp_path, make_spec, make_frame):
    res = compute(make_frame([[1, 2, 3], [2, 3, 1], [3, 1, 2]]), make_spec(), check=False)
    write_result(res, tmp_path, ("csv", "parquet"))
    csv = pd.read_csv(tmp_path / "scores.csv")
    assert "data_note" not in csv.columns
    assert (csv["spec_hash"] == res.spec_hash).all()


def test_scores_csv_round_trips(mali_outputs, mali_result):
    out, _ = mali_outputs
    csv = pd.read_csv(out / "scores.csv")
    s = mali_result.scores
    assert len(csv) == len(s)
    np.testing.assert_allclose(csv["stability"], s["stability"], rtol=1e-9)
    parquet = pd.read_parquet(out / "scores.parquet")
    np.testing.assert_array_equal(parquet["stability"], s["stability"])
    assert list(parquet["category"]) == list(s["category"].astype(str))


def test_writing_twice_gives_identical_bytes(mali_result, mali_outputs, tmp_path):
    first, _ = mali_outputs
    write_result(mali_result, tmp_path, ("csv", "parquet", "xlsx"))
    for name in ("scores.csv", "scores.parquet", "audit_log.csv", "scores.xlsx"):
        assert digest(tmp_path / name) == digest(first / name), name


def test_a_failed_write_leaves_existing_outputs_untouched(mali_result, tmp_path, monkeypatch):
    import stability.export as export

    for name in ("scores.csv", "audit_log.csv", "scores.parquet", "locations.gpkg"):
        (tmp_path / name).write_bytes(b"previous " + name.encode())
    before = {p.name: digest(p) for p in tmp_path.iterdir()}

    def broken(result, path, found=None):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "_write_gpkg", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_result(mali_result, tmp_path, ("csv", "parquet", "gpkg"))
    assert {p.name: digest(p) for p in tmp_path.iterdir()} == before
