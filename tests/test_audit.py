"""The statistical audit (stability.audit), its report (stability.report.audit), CLI and notebook.

COINr 1.1.14 reference values on its ASEM example come from ``tests/fixtures/coinr/`` (made by
``make_reference.R`` there, from the real R package; its README gives the exact calls).
"""

from __future__ import annotations

import math
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stability import audit as A
from stability.coinr import read_coinr
from stability.exceptions import ParameterError
from stability.pipeline import compute

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "coinr"
TOL = 1e-9


def reference(name: str) -> pd.DataFrame:
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"COINr reference {path.relative_to(FIXTURES.parents[2])} is not there yet "
                    "(made by tests/fixtures/coinr/make_reference.R)")
    return pd.read_csv(path)


# --------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example_coin(asem_paths):
    """COINr's build_example_coin(), as in tests/test_coinr.py."""
    spec, data = read_coinr(*asem_paths)
    spec = spec.with_changes({"impute.method": "group_mean", "impute.group": "EurAsia_group"})
    return compute(data, spec)


@pytest.fixture(scope="module")
def mali_audit(mali_result):
    return A.audit(mali_result)


@pytest.fixture(scope="module")
def mali_latest(mali_result):
    return A.audit(mali_result, "latest")


def tiny(make_spec, make_frame, values, columns, pillars, **options):
    """A computed result of a small location-level table (validation off: broken on purpose)."""
    options.setdefault("normalise", {"method": "none"})
    spec = make_spec(tuple(columns), pillars, **options)
    return compute(make_frame(values, columns=tuple(columns)), spec, check=False)


@pytest.fixture(scope="module")
def broken(make_spec, make_frame):
    """Pillar P: a, b and c = a + b (singular); pillar Q: k (constant) and n (against the index); S: one item."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=40), rng.normal(size=40)
    values = np.column_stack([a, b, a + b, np.ones(40), -a + rng.normal(scale=0.1, size=40), rng.normal(size=40)])
    return tiny(make_spec, make_frame, values, "abckns", {"a": "P", "b": "P", "c": "P", "k": "Q", "n": "Q",
                                                        "s": "S"})


@pytest.fixture(scope="module")
def few_rows(make_spec, make_frame):
    rng = np.random.default_rng(2)
    return tiny(make_spec, make_frame, rng.normal(size=(4, 4)), "abcd", {"a": "P", "b": "P", "c": "Q", "d": "Q"})


# ============================================================================ COINr's ASEM example


def test_asem_inputs_are_coinrs(example_coin):
    """The stages the audit reads are COINr's data sets (else no comparison below means anything)."""
    raw = reference("raw.csv").set_index("uCode")
    ours = example_coin.stage("raw").droplevel(1)[raw.columns].loc[raw.index]
    assert (ours.isna() == raw.isna()).all().all() and int(raw.isna().sum().sum()) == 63
    np.testing.assert_allclose(ours.to_numpy(), raw.to_numpy(), rtol=0, atol=1e-12)
    norm = reference("normalised.csv").set_index("uCode")
    ours = example_coin.stage("normalised").droplevel(1)[norm.columns].loc[norm.index]
    np.testing.assert_allclose(ours.to_numpy(), norm.to_numpy(), rtol=0, atol=1e-9)


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_correlations_match_coinr(example_coin, method):
    ref = reference(f"corr_{method}.csv")
    ours = A.correlations(example_coin, stage="raw", method=method)
    assert len(ours) == len(ref) == 49 * 49
    both = ref.merge(ours, left_on=["Var1", "Var2"], right_on=["var1", "var2"], how="left", validate="1:1")
    assert both["correlation"].notna().all() and both["Correlation"].notna().all()
    np.testing.assert_allclose(both["correlation"], both["Correlation"], rtol=0, atol=TOL)
    assert (both["n"] <= 51).all() and (both["n"] < 51).any()  # pairwise complete: some pairs lose rows


def test_correlations_with_coinrs_default_significance_filter(example_coin):
    ref = reference("corr_pearson_pval05.csv")
    ours = A.correlations(example_coin, stage="raw", pval=0.05)
    both = ref.merge(ours, left_on=["Var1", "Var2"], right_on=["var1", "var2"], how="left", validate="1:1")
    assert ref["Correlation"].isna().sum() == 1226
    assert (both["Correlation"].isna() == both["correlation"].isna()).all()
    kept = both["Correlation"].notna()
    np.testing.assert_allclose(both.loc[kept, "correlation"], both.loc[kept, "Correlation"], rtol=0, atol=TOL)
    assert both.loc[~kept, "note"].str.startswith("not significant").all()


def test_correlation_matrix_pivots_the_long_form(example_coin):
    ref = reference("corr_pearson.csv").pivot(index="Var1", columns="Var2", values="Correlation")
    wide = A.correlation_matrix(example_coin, stage="raw")
    ref = ref.loc[wide.index, wide.columns]
    np.testing.assert_allclose(wide.to_numpy(), ref.to_numpy(), rtol=0, atol=TOL)


def test_indicator_vs_parent_matches_coinr(example_coin):
    ref = reference("corr_withparent.csv")  # Var1 = pillar, Var2 = indicator
    ours = A.indicator_vs_parent(example_coin)
    both = ref.merge(ours, left_on=["Var2", "Var1"], right_on=["id", "parent"], how="left", validate="1:1")
    assert len(both) == 49
    np.testing.assert_allclose(both["correlation_parent"], both["Correlation"], rtol=0, atol=TOL)
    fam = reference("corr_family.csv")
    for level, column in [("Pillar", "correlation_parent"), ("Index", "correlation_index")]:
        part = fam[fam["Var1"] == level].merge(ours[ours["level"] == 1], left_on="Var2", right_on="id")
        assert len(part) == 49
        np.testing.assert_allclose(part[column], part["Correlation"], rtol=0, atol=TOL)


@pytest.mark.parametrize("dset, stage", [("Raw", "raw"), ("Normalised", "normalised"), ("Aggregated", "aggregated")])
def test_cronbach_matches_coinr(example_coin, dset, stage):
    ref = reference("cronbach.csv")
    ref = ref[ref["dset"] == dset]
    ours = A.cronbach(example_coin, stage=stage)
    ours = ours[ours["item"] == ""].assign(group=lambda d: d["group"].replace({"Index": "ALL"}))
    both = ref.merge(ours, on="group", how="left", validate="1:1")
    assert len(both) == {"Aggregated": 3}.get(dset, 9)
    assert (both["k"] == both["n_items"]).all()
    np.testing.assert_allclose(both["alpha_y"], both["alpha_x"], rtol=0, atol=TOL)


def test_cronbach_alpha_if_deleted_is_alpha_without_the_item(example_coin):
    table = A.cronbach(example_coin, stage="normalised")
    social = table[table["group"] == "Social"]
    items = list(social.loc[social["item"] != "", "item"])
    norm = example_coin.stage("normalised")
    for item in items[:3]:
        rest = norm[[i for i in items if i != item]]
        cov = rest.cov().to_numpy()
        k = cov.shape[0]
        expected = k / (k - 1) * (1 - np.trace(cov) / cov.sum())
        got = social.loc[social["item"] == item, "alpha"].item()
        assert got == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("dset, stage", [("Raw", "raw"), ("Normalised", "normalised")])
def test_pca_variance_matches_coinr(example_coin, dset, stage):
    ref = reference("pca_summary.csv")
    ref = ref[ref["dset"] == dset].assign(group=lambda d: d["group"].replace({"All": "Index"}))
    ours = A.pca_variance(example_coin, stage=stage)
    first = ours[ours["component"] == 1]
    both = ref.merge(first, on="group", how="inner", validate="1:1")
    assert len(both) == 9  # 8 pillars and all indicators together
    assert (both["n_rows"] == both["n"]).all() and (both["n_ind"] == both["n_items"]).all()
    np.testing.assert_allclose(both["variance_share"], both["var_share_pc1"], rtol=0, atol=TOL)
    counts = ours.groupby("group")["component"].count()
    assert (counts.loc[both["group"]].to_numpy() == both["n_pcs"].to_numpy()).all()
    sums = ours.groupby("group")["eigenvalue"].sum()
    np.testing.assert_allclose(sums.loc[both["group"]], both["sum_eigen"], rtol=0, atol=1e-9)


def test_importance_gives_coinrs_balance_measure(example_coin):
    ref = reference("opt_weights.csv")
    if "run" in ref.columns:
        ref = ref[ref["run"] == "default"]
    ours = A.importance(example_coin)
    both = ref.merge(ours, left_on="iCode", right_on="id", how="left", validate="1:1")
    assert len(both) == 8
    np.testing.assert_allclose(both["correlation_index"], both["corr_init"], rtol=0, atol=TOL)
    np.testing.assert_allclose(both["importance_coinr"], both["corr_init"] / both["corr_init"].sum(), rtol=0,
                               atol=TOL)


def test_nominal_weights_are_coinrs_effective_weights(example_coin):
    w = A.nominal_weights(example_coin.spec).set_index("id")
    assert w.loc["Physical", "nominal_weight"] == pytest.approx(1 / 5)   # Conn has five pillars
    assert w.loc["Environ", "nominal_weight"] == pytest.approx(1 / 3)
    assert w.loc["Goods", "overall_weight"] == pytest.approx(1 / 5 * 1 / 5 * 1 / 2)  # ConEcFin: 5 indicators
    assert w[w["level"] == 1]["overall_weight"].sum() == pytest.approx(1.0)


# ============================================================================ definitions


def test_indicator_stats_on_the_mali_survey(mali_result, mali_audit, coinr_ref):
    stats = mali_audit.indicator_stats
    assert len(stats) == 3 * 25 and list(stats["round"].unique()) == [1, 2, 3]
    raw = mali_result.stage("raw")
    r3 = raw[raw.index.get_level_values("round") == 3]
    row = stats[(stats["round"] == 3) & (stats["indicator"] == "security_incidents_3m")].iloc[0]
    x = r3["security_incidents_3m"]
    assert row["availability"] == pytest.approx(x.notna().mean())
    assert row["mean"] == pytest.approx(x.mean()) and row["sd"] == pytest.approx(x.std())
    assert row["skew"] == pytest.approx(coinr_ref.skew(x), rel=1e-12)
    assert row["kurt"] == pytest.approx(coinr_ref.kurt(x), rel=1e-12)
    assert row["outlier"] and row["treatment"] == "winsorised"
    assert row["distinct"] == x.nunique() and row["share_zeros"] == pytest.approx((x.dropna() == 0).mean())
    log = mali_result.log
    assert stats["n_imputed"].sum() == (log["action"] == "imputed").sum()
    assert stats["n_treated"].sum() == (log["action"] == "winsorised").sum()
    flags = mali_result.disagreement_flags
    dis = mali_result.disagreement
    f3 = flags[flags.index.get_level_values("round") == 3]["robbery"]
    d3 = dis[dis.index.get_level_values("round") == 3]["robbery"]
    rob = stats[(stats["round"] == 3) & (stats["indicator"] == "robbery")].iloc[0]
    assert rob["disagreement_rate"] == pytest.approx(f3[d3.notna()].mean())
    assert 0 < rob["disagreement_rate"] < 1


def test_indicator_stats_describe_the_denominated_values(mali_result, mali_audit, coinr_ref):
    """Water points per 1,000 residents: statistics of what the index treats, not of the raw count."""
    def round3(stage):
        t = mali_result.stage(stage)
        return t[t.index.get_level_values("round") == 3]["water_points"]

    den, raw = round3("denominated"), round3("raw")
    assert raw.max() > 1000 and den.max() < 40  # the raw count against the rate (32.6)
    stats = mali_audit.indicator_stats
    row = stats[(stats["round"] == 3) & (stats["indicator"] == "water_points")].iloc[0]
    assert row["stage"] == "denominated" and mali_audit.meta["stages"]["indicator_stats"] == "denominated"
    assert row["max"] == pytest.approx(den.max()) and row["mean"] == pytest.approx(den.mean())
    assert row["sd"] == pytest.approx(den.std()) and row["n_values"] == den.notna().sum()
    assert row["skew"] == pytest.approx(coinr_ref.skew(den.dropna()), rel=1e-12)
    assert row["kurt"] == pytest.approx(coinr_ref.kurt(den.dropna()), rel=1e-12)
    assert row["availability"] == pytest.approx(raw.notna().mean())  # availability: of the raw answers
    flag = mali_audit.flags[(mali_audit.flags["where"] == "water_points") & (mali_audit.flags["round"] == 3)]
    assert f"skew {row['skew']:.2f}" in flag["message"].iloc[0] and "after denomination" in flag["message"].iloc[0]
    # the raw answers on request
    raw_row = A.indicator_stats(mali_result, 3, stage="raw").set_index("indicator").loc["water_points"]
    assert raw_row["max"] == raw.max() and raw_row["stage"] == "raw"
    # the other tables: the normalised indicators (after denomination), as the stages say
    assert set(A.STAGES.values()) == {"denominated", "normalised"}
    norm = mali_result.stage("normalised")
    n3 = norm[norm.index.get_level_values("round") == 3]
    corr = mali_audit.correlations
    r = corr[(corr["round"] == 3) & (corr["var1"] == "water_points") & (corr["var2"] == "drinking_water")]
    assert r["correlation"].iloc[0] == pytest.approx(n3["water_points"].corr(n3["drinking_water"]))


def test_outlier_flag_is_strict_as_coinr_get_stats(make_spec, make_frame, coinr_ref):
    """Flag.SkewKurt: abs(skew) > t_skew & kurt > t_kurt, with the spec's thresholds."""
    x = np.r_[np.zeros(20), 1, 1, 2, 30]
    sk, kt = coinr_ref.skew(x), coinr_ref.kurt(x)
    for thresholds, expected in [((2, 3.5), True), ((sk, 3.5), False), ((2, kt), False), ((sk - 1e-9, kt - 1e-9),
                                                                                           True)]:
        res = tiny(make_spec, make_frame, np.column_stack([x, np.arange(24.0)]), "ab", {"a": "P", "b": "P"},
                   treat={"method": "none", "skew_thresh": thresholds[0], "kurt_thresh": thresholds[1]})
        assert bool(A.indicator_stats(res).set_index("indicator").loc["a", "outlier"]) is expected


def test_kmo_and_bartlett_from_their_definitions(mali_result):
    table = A.kmo_bartlett(mali_result, round="latest")
    norm = mali_result.stage("normalised")
    norm = norm[norm.index.get_level_values("round") == 3]
    items = [i.id for i in mali_result.spec.indicators if i.parent == "cohesion"]
    X = norm[items].dropna().to_numpy()
    R = np.corrcoef(X, rowvar=False)
    # partial correlations from regression residuals, not from the inverse
    p = len(items)
    partial = np.zeros((p, p))
    for i in range(p):
        for j in range(p):
            if i != j:
                others = np.column_stack([np.ones(len(X))] + [X[:, m] for m in range(p) if m not in (i, j)])
                ri = X[:, i] - others @ np.linalg.lstsq(others, X[:, i], rcond=None)[0]
                rj = X[:, j] - others @ np.linalg.lstsq(others, X[:, j], rcond=None)[0]
                partial[i, j] = np.corrcoef(ri, rj)[0, 1]
    off = ~np.eye(p, dtype=bool)
    kmo = (R[off] ** 2).sum() / ((R[off] ** 2).sum() + (partial[off] ** 2).sum())
    row = table[(table["group"] == "cohesion") & (table["item"] == "")].iloc[0]
    assert row["kmo"] == pytest.approx(kmo, abs=1e-10)
    n = len(X)
    chi2 = -(n - 1 - (2 * p + 5) / 6) * math.log(np.linalg.det(R))
    assert row["bartlett_chi2"] == pytest.approx(chi2, rel=1e-10) and row["bartlett_df"] == p * (p - 1) // 2
    assert row["bartlett_p"] < 1e-10
    msa = table[(table["group"] == "cohesion") & (table["item"] != "")]
    assert len(msa) == p and msa["kmo"].between(0, 1).all()


def test_vif_is_one_over_one_minus_r2(mali_result):
    table = A.vif(mali_result, round=3)
    norm = mali_result.stage("normalised")
    norm = norm[norm.index.get_level_values("round") == 3]
    items = [i.id for i in mali_result.spec.indicators if i.parent == "safety"]
    X = norm[items].dropna().to_numpy()
    y, others = X[:, 0], np.column_stack([np.ones(len(X)), X[:, 1:]])
    resid = y - others @ np.linalg.lstsq(others, y, rcond=None)[0]
    r2 = 1 - resid @ resid / ((y - y.mean()) @ (y - y.mean()))
    got = table.set_index("indicator").loc[items[0], "vif"]
    assert got == pytest.approx(1 / (1 - r2), rel=1e-9)


def test_importance_sums_to_one_within_each_parent(mali_latest):
    imp = mali_latest.importance
    sums = imp.groupby("parent")["importance"].sum()
    np.testing.assert_allclose(sums, 1.0)
    assert set(sums.index) == {"safety", "livelihoods", "cohesion", "stability"}
    np.testing.assert_allclose(imp.groupby("parent")["nominal_weight"].sum(), 1.0)
    row = imp.iloc[0]
    assert row["r2"] == pytest.approx(row["correlation"] ** 2)
    assert row["ratio"] == pytest.approx(row["importance"] / row["nominal_weight"])


def test_importance_flags_an_indicator_that_drives_its_pillar_more_than_its_weight(make_spec, make_frame):
    rng = np.random.default_rng(3)
    big = rng.normal(scale=10, size=60)
    values = np.column_stack([big, rng.normal(size=60), rng.normal(size=60), rng.normal(size=60)])
    res = tiny(make_spec, make_frame, values, "abcd", {"a": "P", "b": "P", "c": "P", "d": "Q"})
    flags = A.audit(res).flags
    hit = flags[(flags["what"] == "importance differs from weight") & (flags["where"] == "a")]
    assert len(hit) == 1 and "more than its weight" in hit["message"].item()
    assert hit["threshold"].item() == A.THRESHOLDS["importance_ratio_high"]


def test_high_and_negative_correlations_are_flagged(make_spec, make_frame):
    rng = np.random.default_rng(4)
    a = rng.normal(size=50)
    values = np.column_stack([a, a + rng.normal(scale=0.05, size=50), -a * 3 + rng.normal(scale=4, size=50),
                              rng.normal(size=50), rng.normal(size=50)])
    res = tiny(make_spec, make_frame, values, "abcde", {"a": "P", "b": "P", "c": "P", "d": "Q", "e": "Q"},
               weights={"c": 0.2})
    flags = A.audit(res).flags
    high = flags[flags["what"] == "high correlation"]
    assert list(high["where"]) == ["a ~ b"] and high["value"].item() > 0.9
    neg = flags[flags["what"] == "negative correlation with parent"]
    assert "c" in set(neg["where"]) and "check its direction" in neg.loc[neg["where"] == "c", "message"].item()


def test_rounds(mali_result):
    assert A.audited_rounds(mali_result) == [1, 2, 3]
    assert A.audited_rounds(mali_result, "all") == [1, 2, 3]
    assert A.audited_rounds(mali_result, "latest") == [3]
    assert A.audited_rounds(mali_result, "2") == [2]
    with pytest.raises(ParameterError, match="round '7' is not in the data; rounds: 1, 2, 3"):
        A.audited_rounds(mali_result, 7)
    assert set(A.cronbach(mali_result, round=2)["round"]) == {2}


def test_tables_have_no_round_column_without_rounds(make_spec, make_frame):
    rng = np.random.default_rng(5)
    res = tiny(make_spec, make_frame, rng.normal(size=(30, 3)), "abc", {"a": "P", "b": "P", "c": "Q"})
    checked = A.audit(res)
    assert checked.rounds == [None]
    for name, table in checked.tables().items():
        assert "round" not in table.columns, name


# ============================================================================ bad input: NaN with a reason, never a crash

#: The statistic of each table that must never be NaN without a note saying why.
KEY = {"indicator_stats": ["skew", "kurt", "sd"], "correlations": ["correlation"],
       "indicator_vs_parent": ["correlation_parent", "correlation_index"], "cronbach": ["alpha"],
       "kmo_bartlett": ["kmo"], "vif": ["vif"], "pca_variance": ["eigenvalue"], "importance": ["importance"]}


def assert_no_silent_nan(checked):
    for name, columns in KEY.items():
        table = getattr(checked, name)
        for col in columns:
            silent = table[table[col].isna() & (table["note"] == "")]
            assert silent.empty, f"{name}.{col} NaN without a note:\n{silent}"


def test_no_silent_nan_on_real_shapes(mali_latest, example_coin):
    assert_no_silent_nan(mali_latest)
    assert_no_silent_nan(A.audit(example_coin))


def test_constant_indicator(broken):
    checked = A.audit(broken)
    assert_no_silent_nan(checked)
    stats = checked.indicator_stats.set_index("indicator")
    assert math.isnan(stats.loc["k", "skew"]) and "constant" in stats.loc["k", "note"]
    corr = checked.correlations
    ak = corr[(corr["var1"] == "a") & (corr["var2"] == "k")].iloc[0]
    assert math.isnan(ak["correlation"]) and "constant" in ak["note"]
    flags = checked.flags
    assert ((flags["what"] == "constant indicator") & (flags["where"] == "k")).any()
    not_computed = flags[flags["severity"] == "not computed"]
    assert {"statistics", "correlation", "KMO and Bartlett's test", "VIF", "PCA", "importance"} <= set(
        not_computed["what"])
    assert not_computed["message"].str.contains("could not be computed: ").all()


def test_singular_correlation_matrix(broken):
    kmo = A.kmo_bartlett(broken)
    p = kmo[(kmo["group"] == "P") & (kmo["item"] == "")].iloc[0]
    assert math.isnan(p["kmo"]) and math.isnan(p["bartlett_chi2"]) and p["note"].startswith("singular")
    vif = A.vif(broken).set_index("indicator")
    assert vif.loc[["a", "b", "c"], "vif"].isna().all()
    assert vif.loc[["a", "b", "c"], "note"].str.startswith("singular").all()
    pca = A.pca_variance(broken)
    pp = pca[pca["group"] == "P"]
    assert len(pp) == 3 and pp["eigenvalue"].iloc[-1] == pytest.approx(0, abs=1e-9)  # defined, last one 0
    flags = A.audit(broken).flags
    msg = flags[(flags["what"] == "VIF") & (flags["where"] == "a")]["message"].item()
    assert "singular correlation matrix" in msg


def test_a_pillar_with_one_indicator(broken):
    vif = A.vif(broken).set_index("indicator")
    assert math.isnan(vif.loc["s", "vif"]) and "only indicator of its pillar" in vif.loc["s", "note"]
    cr = A.cronbach(broken)
    s = cr[(cr["group"] == "S") & (cr["item"] == "")].iloc[0]
    assert math.isnan(s["alpha"]) and "only one item" in s["note"]
    imp = A.importance(broken).set_index("id")
    assert imp.loc["s", "importance"] == pytest.approx(1.0) and imp.loc["s", "ratio"] == pytest.approx(1.0)


def test_too_few_rows(few_rows):
    checked = A.audit(few_rows)
    assert_no_silent_nan(checked)
    assert checked.correlations.query("var1 != var2")["correlation"].isna().all()
    assert checked.correlations.query("var1 != var2")["note"].str.contains("fewer than 5 complete pairs").all()
    for name, col in [("cronbach", "alpha"), ("kmo_bartlett", "kmo"), ("vif", "vif"), ("pca_variance", "eigenvalue")]:
        table = getattr(checked, name)
        assert table[col].isna().all() and table["note"].ne("").all(), name
        whole = table[table["item"] == ""] if "item" in table.columns else table
        assert whole["note"].str.contains("fewer than 5").all(), name
    flags = checked.flags
    assert len(flags[flags["severity"] == "not computed"]) >= 10
    assert any("could not be computed" in line for line in checked.summary)


def test_audit_of_the_mali_survey(mali_audit):
    assert mali_audit.illustrative and mali_audit.rounds == [1, 2, 3]
    assert list(mali_audit.tables()) == list(A.TABLES)
    flags = mali_audit.flags
    assert list(flags.columns) == ["what", "where", "round", "value", "threshold", "severity", "message"]
    assert set(flags["severity"]) <= {"warning", "not computed"}
    outliers = flags[flags["what"] == "outliers"]
    assert {"security_incidents_3m", "water_points"} <= set(outliers["where"])
    # water points per 1,000 residents (what is treated), not the count: skewed in rounds 1 and 3 only
    assert set(outliers.loc[outliers["where"] == "water_points", "round"]) == {1, 3}
    assert not flags["message"].str.contains("nan").any()
    assert mali_audit.summary[0].startswith("25 indicators in 3 pillars") and "ILLUSTRATIVE" in mali_audit.summary[0]
    # coded (yes/no, share) answers are categories: zeros and few distinct values are not findings
    assert not flags["what"].isin(["many zeros", "few distinct values"]).any()
    # the importance line agrees in number with the components it counts
    line = next(x for x in mali_audit.summary if " components drive" in x or " components drives" in x)
    one = line.split(" of ", 1)[0] == "1"
    assert ("drives its parent" in line and "than its weight" in line) if one else \
        ("drive their parent" in line and "than their weight" in line), line


# ============================================================================ the report


@pytest.fixture(scope="module")
def written(mali_latest, tmp_path_factory):
    from stability.report.audit import write_audit

    out = tmp_path_factory.mktemp("audit")
    return out, write_audit(mali_latest, out)


def test_write_audit_files(written, mali_latest):
    out, files = written
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["audit.html", "audit.xlsx"] + [f"{n}.csv" for n in A.TABLES])
    assert sorted(p.name for p in files) == names
    for name, table in mali_latest.tables().items():
        back = pd.read_csv(out / f"{name}.csv", keep_default_na=False)
        noted = (["data_note"] if mali_latest.illustrative else []) + list(table.columns)  # illustrative: says so
        assert len(back) == len(table) and list(back.columns) == noted, name


def test_audit_page_is_self_contained_and_says_illustrative(written):
    out, _ = written
    page = (out / "audit.html").read_text(encoding="utf-8")
    assert "ILLUSTRATIVE DATA" in page
    assert len(re.findall(r'<img src="data:image/png;base64,', page)) == 3
    assert not re.search(r'<(script|link|img)[^>]+(src|href)="https?://', page)
    assert "from stability" not in page and "import " not in page  # no code cells
    for heading in ("Summary", "Findings", "Indicators", "Correlations", "Weights and importance"):
        assert f">{heading}</h2>" in page or f">{heading}<" in page


def test_audit_workbook(written, mali_latest):
    import openpyxl

    out, _ = written
    book = openpyxl.load_workbook(out / "audit.xlsx", read_only=True)
    try:
        assert book.sheetnames == ["Read me", "flags"] + [n for n in A.TABLES if n != "flags"]
        readme = {r[0]: r[1] for r in book["Read me"].iter_rows(min_row=2, values_only=True)}
        assert readme["Spec hash"] == mali_latest.meta["spec_hash"]
        assert readme["Data version"] == mali_latest.meta["data_version"]
        assert readme["WARNING"].startswith("ILLUSTRATIVE")
        assert "Rule: high correlation" in readme
        stats = list(book["indicator_stats"].iter_rows(values_only=True))
        assert len(stats) == 1 + 25 and stats[0][-1] == "data_note"
    finally:
        book.close()
    with zipfile.ZipFile(out / "audit.xlsx") as z:
        assert "xl/workbook.xml" in z.namelist()


def test_readers_see_labels_with_the_ids_beside_them(written, mali_latest):
    """Heatmap axes, the findings' Where, the workbook's sheets: the spec's labels; ids in their own columns."""
    import openpyxl

    from stability.report import audit as report

    spec = mali_latest.result.spec
    ids = {n.id for n in (*spec.indicators, *spec.aggregates)}
    fig = report.correlation_heatmap(mali_latest)
    ticks = [t.get_text() for ax in fig.axes[:1] for t in (*ax.get_xticklabels(), *ax.get_yticklabels())]
    assert ticks and not ids & set(ticks)
    assert "Security incidents in the last 3 months" in ticks
    flags = report.display_tables(mali_latest)["flags"][1]
    assert not ids & set(flags["Where"]) and "Security incidents in the last 3 months" in set(flags["Where"])
    caption = report.display_tables(mali_latest)["indicator_stats"][0]
    assert "after denomination" in caption and "Raw values" not in caption
    page = (written[0] / "audit.html").read_text(encoding="utf-8")
    assert "<td>security_incidents_3m</td>" not in page and "<td>livelihoods</td>" not in page
    book = openpyxl.load_workbook(written[0] / "audit.xlsx", read_only=True)
    try:
        for name in book.sheetnames[1:]:
            header = next(book[name].iter_rows(max_row=1, values_only=True))
            assert not {"var1", "var2", "group1", "group2", "indicator", "where"} & set(header), name
        corr = list(book["correlations"].iter_rows(max_row=3, values_only=True))
        head = corr[0]
        i, j = head.index("Indicator 1"), head.index("Indicator 1 id")
        assert j == i + 1 and corr[1][i] == spec.label(corr[1][j]) and corr[1][j] in ids
        fl = list(book["flags"].iter_rows(values_only=True))
        w = fl[0].index("Where")
        assert fl[0][w + 1] == "Where id" and all(r[w] == report.where_label(spec, r[w + 1]) for r in fl[1:])
        st = list(book["indicator_stats"].iter_rows(values_only=True))
        water = next(r for r in st if r[st[0].index("Indicator id")] == "water_points")
        assert water[st[0].index("Indicator")] == "Functioning water points per 1,000 residents"
        assert water[st[0].index("Values described")].startswith("per 1,000 population")
        assert water[st[0].index("Max")] < 40
    finally:
        book.close()
    assert report.where_label(spec, "robbery ~ cattle_theft and 2 more pairs") == (
        f"{spec.label('robbery')} ~ {spec.label('cattle_theft')} and 2 more pairs")


def test_write_audit_is_all_or_nothing(written, mali_latest, monkeypatch, tmp_path):
    from stability.report import audit as report

    before = {p.name: p.read_bytes() for p in written[0].iterdir()}

    def fail(path, audit):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "write_workbook", fail)
    monkeypatch.setattr(report, "audit_html", lambda audit: "<html>new</html>")
    with pytest.raises(RuntimeError, match="disk full"):
        report.write_audit(mali_latest, written[0])
    assert {p.name: p.read_bytes() for p in written[0].iterdir()} == before
    with pytest.raises(RuntimeError):
        report.write_audit(mali_latest, tmp_path / "new")
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir())


def test_real_data_get_no_illustrative_banner(example_coin):
    from stability.report.audit import intro_html, method_rows

    checked = A.audit(example_coin)
    assert not checked.illustrative
    assert "ILLUSTRATIVE" not in intro_html(checked)
    assert "WARNING" not in set(method_rows(checked)["Item"])


def test_figures(mali_latest):
    from stability.report import audit as report

    for make in (report.correlation_heatmap, report.importance_bars, report.distribution_strips):
        fig = make(mali_latest)
        texts = [t.get_text() for t in fig.texts]
        assert any("ILLUSTRATIVE" in t for t in texts), make.__name__
        assert report.nb.figure_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_layer_uses_only_public_members():
    from test_report_api import private_uses

    from stability.paths import PACKAGE_DIR, PROJECT_ROOT

    sources = {"stability/audit.py": (PACKAGE_DIR / "audit.py").read_text(encoding="utf-8"),
               "stability/report/audit.py": (PACKAGE_DIR / "report" / "audit.py").read_text(encoding="utf-8")}
    import nbformat

    book = nbformat.read(PROJECT_ROOT / "notebooks" / "index_audit.ipynb", as_version=4)
    sources["index_audit.ipynb"] = "\n".join(c.source for c in book.cells if c.cell_type == "code")
    assert [use for where, source in sources.items() for use in private_uses(source, where)] == []


# ============================================================================ command line


def run_cli(capsys, *args):
    from stability.cli import main

    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_audit(capsys, tmp_path):
    rc, out, err = run_cli(capsys, "audit", "--out", tmp_path / "audit", "--round", "latest")
    assert rc == 0, err
    assert (tmp_path / "audit" / "audit.html").is_file() and (tmp_path / "audit" / "audit.xlsx").is_file()
    assert (tmp_path / "audit" / "flags.csv").is_file()
    assert out.startswith("25 indicators in 3 pillars") and "ILLUSTRATIVE" in out
    assert "auditing" in err and "stability: error" not in err
    stats = pd.read_csv(tmp_path / "audit" / "indicator_stats.csv")
    assert set(stats["round"]) == {3}


def test_cli_audit_help(capsys):
    from stability.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["audit", "--help"])
    assert exc.value.code == 0
    help_text = capsys.readouterr().out
    for flag in ("--data", "--spec", "--round", "--out", "--quiet"):
        assert flag in help_text


def test_cli_audit_errors(capsys, tmp_path):
    rc, out, err = run_cli(capsys, "audit", "-q", "--round", "7", "--out", tmp_path / "a")
    assert rc == 2 and err.strip().splitlines()[-1] == (
        "stability: error: option --round: round '7' is not in the data; rounds: 1, 2, 3 (or 'latest', 'all')")
    assert not (tmp_path / "a").exists()
    (tmp_path / "file").write_text("x")
    rc, _, err = run_cli(capsys, "audit", "-q", "--out", tmp_path / "file")
    assert rc == 2 and "option --out" in err and "is a file" in err
    rc, _, err = run_cli(capsys, "audit", "-q", "--spec", tmp_path / "missing.yaml", "--out", tmp_path / "b")
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "missing.yaml" in err
    assert not (tmp_path / "b").exists()


# ============================================================================ notebook


NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "index_audit.ipynb"


def test_audit_notebook_structure():
    import nbformat
    import papermill

    book = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(book)
    tagged = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is book.cells[0]
    params = papermill.inspect_notebook(str(NOTEBOOK))
    assert list(params) == ["survey_round", "spec_path", "data_path"]
    assert all(p["help"] for p in params.values())
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
            assert len([ln for ln in cell.source.splitlines() if ln.strip()]) <= 3


def test_audit_notebook_runs(tmp_path):
    import nbformat
    import papermill

    out = tmp_path / "executed.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), parameters={"survey_round": "latest"},
                               kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
    book = nbformat.read(out, as_version=4)
    outputs = [o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error" or o.get("name") == "stderr"]
    html_text = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "ILLUSTRATIVE DATA" in html_text and "Cronbach" in html_text
    assert len([o for o in outputs if "image/png" in o.get("data", {})]) == 3
    assert list(tmp_path.iterdir()) == [out]  # exploring writes nothing
