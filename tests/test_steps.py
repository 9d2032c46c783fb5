"""Unit tests of each pipeline step on small cases computed by hand (or taken from COINr)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from stability.aggregate import copeland, weighted_mean
from stability.combine import combine, encode, encode_column
from stability.exceptions import MethodError, SpecError
from stability.normalise import NORMALISERS, Method, Normaliser, resolve_methods
from stability.pipeline import compute
from stability.rank import categorise, rank_desc
from stability.spec import spec_from_dict
from stability.treat import (STATUS_LOG, STATUS_PASS, STATUS_WINSORISED, OutlierTreatment, fails, skew_kurt,
                             treat_column)

NAN = np.nan
VIGNETTE = np.r_[np.arange(1, 11), 30, 100].astype(float)  # COINr vignette("treat"): c(1:10, 30, 100)


def normalise(x, spec, column="a"):
    """Normalise one column through the pipeline (``compute`` on a one-indicator table)."""
    df = pd.DataFrame({"loc": [f"L{i:03d}" for i in range(len(x))], column: np.asarray(x, dtype=float)})
    return compute(df, spec, check=False).stage("normalised")[column].to_numpy()


def stage(values, spec, name, columns=("a", "b", "c"), **extra):
    """One stage of ``compute`` on a small location-level table, rows in the given order."""
    df = pd.DataFrame(np.asarray(values, dtype=float), columns=list(columns))
    df.insert(0, "loc", [f"L{i:03d}" for i in range(len(df))])
    for k, v in extra.items():
        df[k] = v
    res = compute(df, spec, check=False)
    return res.stage(name), res


# ============================================================================ skew / kurtosis


def test_skew_kurt_of_the_coinr_vignette_vector():
    skew, kurt = skew_kurt(VIGNETTE)
    assert skew == pytest.approx(3.063241, abs=5e-7)
    assert kurt == pytest.approx(9.741391, abs=5e-7)
    winsorised = np.where(VIGNETTE == 100, 30.0, VIGNETTE)
    skew, kurt = skew_kurt(winsorised)
    assert skew == pytest.approx(1.712038, abs=5e-7)
    assert kurt == pytest.approx(1.815781, abs=5e-7)


@pytest.mark.parametrize("x", [
    VIGNETTE,
    [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0],
    [-1e6, 2.5, 3.5, 1e-3, 7.0, 7.0, 7.0],
    [1e9 + 1, 1e9 + 2, 1e9 + 4, 1e9 + 8, 1e9 + 100],   # large offset: needs a stable algorithm
    [0.0, 0.0, 0.0, 1.0, 50.0],
])
def test_skew_kurt_equal_pandas(x, coinr_ref):
    s = pd.Series(x, dtype=float)
    skew, kurt = skew_kurt(s.to_numpy())
    assert skew == pytest.approx(s.skew(), rel=1e-9, abs=1e-12)
    assert kurt == pytest.approx(s.kurt(), rel=1e-9, abs=1e-12)
    assert skew == pytest.approx(coinr_ref.skew(s), rel=1e-9, abs=1e-12)
    assert kurt == pytest.approx(coinr_ref.kurt(s), rel=1e-9, abs=1e-12)


def test_skew_kurt_ignore_missing_values():
    with_nan = np.r_[np.nan, VIGNETTE, np.nan]
    assert skew_kurt(with_nan) == pytest.approx(skew_kurt(VIGNETTE), rel=1e-12)


def test_outlier_flag_needs_both_skew_and_kurtosis():
    # COINr: pass <=> |skew| < 2 OR kurt < 3.5 (strict), so it fails only when both are reached
    assert fails(2.0, 3.5, 2, 3.5)
    assert fails(-2.5, 10, 2, 3.5)
    assert not fails(1.99, 100, 2, 3.5)
    assert not fails(-10, 3.49, 2, 3.5)


# ============================================================================ winsorisation


def test_vignette_vector_winsorises_one_point():
    t = treat_column(VIGNETTE, winmax=2)
    assert t.status == STATUS_WINSORISED
    assert t.n_winsorised == 1
    assert t.upper == 30 and t.lower == -np.inf
    assert (t.skew, t.kurt) == pytest.approx((3.063241, 9.741391), abs=5e-7)
    assert (t.skew_after, t.kurt_after) == pytest.approx((1.712038, 1.815781), abs=5e-7)
    out = OutlierTreatment(winmax=2).fit(VIGNETTE[:, None], ["x"]).transform(VIGNETTE[:, None], ["x"])
    np.testing.assert_array_equal(out[:, 0], np.where(VIGNETTE == 100, 30, VIGNETTE))


def test_passing_indicator_is_left_alone():
    x = np.arange(1.0, 13.0)[:, None]
    step = OutlierTreatment().fit(x, ["x"])
    assert step.columns_["x"].status == STATUS_PASS
    assert step.columns_["x"].n_winsorised == 0
    assert step.transform(x, ["x"]) is x


def test_tied_maxima_are_replaced_together_and_can_pass_winmax():
    # three tied outliers: COINr's which(x == max(x)) replaces all three in one step,
    # so nwin = 3 although winmax = 1 (the check is only made before each step)
    x = np.r_[np.arange(1, 31), 200, 200, 200].astype(float)
    t = treat_column(x, winmax=1)
    assert t.status == STATUS_WINSORISED
    assert t.n_winsorised == 3
    assert t.upper == 30
    out = OutlierTreatment(winmax=1).fit(x[:, None], ["x"]).transform(x[:, None], ["x"])[:, 0]
    assert (out == 30).sum() == 4 and out.max() == 30


def test_growing_tie_block_counts_every_changed_point(coinr_ref):
    # three steps: 64 -> 44, then the tied block {44, 44} -> 32, then {32, 32, 32} -> 6;
    # nwin is the size of the last block, i.e. every point changed
    x = np.array([0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 4, 5, 5, 6, 6, 32, 44, 64], dtype=float)
    ref, nwin, passing, skews = coinr_ref.winsorise(x, winmax=5)
    assert len(skews) == 3 and nwin == 3 and passing
    t = treat_column(x, winmax=5)
    assert t.status == STATUS_WINSORISED
    assert t.n_winsorised == 3
    assert t.upper == 6.0
    out = OutlierTreatment(winmax=5).fit(x[:, None], ["x"]).transform(x[:, None], ["x"])
    np.testing.assert_array_equal(out[:, 0], ref)
    assert int((out[:, 0] != x).sum()) == 3
    # with winmax = 2 the loop stops after two steps ({44, 44} -> 32), still failing
    t2 = treat_column(x, winmax=2, log_fallback=False)
    assert (t2.n_winsorised, t2.upper) == (2, 32.0)
    assert fails(t2.skew_after, t2.kurt_after, 2, 3.5)


def test_side_switch_counts_last_blocks_of_both_sides(coinr_ref):
    # a low outlier first (skew < 0), then the high side: nwin = |last imin| + |last imax|
    x = np.r_[-200, np.arange(1, 31), 80, 90].astype(float)
    ref, nwin, passing, skews = coinr_ref.winsorise(x, winmax=3)
    assert skews[0] < 0 and skews[-1] > 0 and passing
    t = treat_column(x, winmax=3)
    assert t.status == STATUS_WINSORISED
    assert t.n_winsorised == nwin == 3
    assert (t.lower, t.upper) == (1.0, 30.0)
    out = OutlierTreatment(winmax=3).fit(x[:, None], ["x"]).transform(x[:, None], ["x"])
    np.testing.assert_array_equal(out[:, 0], ref)


@pytest.mark.parametrize("winmax", [0, 1, 2])
def test_log_fallback_applies_to_the_original_values(winmax, coinr_ref):
    # the side-switch example needs 3 points; with fewer allowed, COINr discards the
    # winsorised values and applies log(x - min + 0.01 (max - min)) to the ORIGINAL column
    x = np.r_[-200, np.arange(1, 31), 80, 90, np.nan].astype(float)
    t = treat_column(x, winmax=winmax)
    assert t.status == STATUS_LOG
    expected = coinr_ref.log_ct(x)
    out = OutlierTreatment(winmax=winmax).fit(x[:, None], ["x"]).transform(x[:, None], ["x"])[:, 0]
    np.testing.assert_allclose(out, expected, rtol=1e-12, equal_nan=True)
    assert np.isnan(out[-1])
    assert (t.skew_after, t.kurt_after) == pytest.approx(skew_kurt(expected), rel=1e-9)


def test_without_log_fallback_the_winsorised_values_are_kept():
    x = np.r_[-200, np.arange(1, 31), 80, 90].astype(float)
    t = treat_column(x, winmax=1, log_fallback=False)
    assert t.status == STATUS_WINSORISED
    assert t.n_winsorised == 1 and t.lower == 1.0 and t.upper == np.inf
    assert fails(t.skew_after, t.kurt_after, 2, 3.5)   # still failing, kept anyway


@pytest.mark.parametrize("x, kw", [
    (VIGNETTE, {}),
    (VIGNETTE, {"winmax": 1, "skew_thresh": 0.5, "kurt_thresh": -2}),
    (np.r_[np.arange(1, 31), 200, 200, 200], {"winmax": 2}),
    (np.r_[-200, np.arange(1, 31), 80, 90], {"winmax": 5}),
    (np.r_[5, 5, 5, 5, 6, 7, 8, 9, 60, 60, -50, -50], {"winmax": 4, "skew_thresh": 0.1, "kurt_thresh": -3}),
    (np.r_[np.nan, 1, 2, 2, 3, 3, 3, 4, 4, 5, 70, np.nan, 71], {}),
])
def test_winsorisation_matches_the_coinr_loop(x, kw, coinr_ref):
    x = np.asarray(x, dtype=float)
    ref, nwin, passing, _ = coinr_ref.winsorise(x, **kw)
    t = treat_column(x, log_fallback=False, **kw)
    assert t.n_winsorised == nwin
    out = OutlierTreatment(log_fallback=False, **kw).fit(x[:, None], ["x"]).transform(x[:, None], ["x"])[:, 0]
    np.testing.assert_array_equal(out, ref)
    assert fails(t.skew_after, t.kurt_after, kw.get("skew_thresh", 2), kw.get("kurt_thresh", 3.5)) == (not passing)


def test_treatment_fitted_on_some_rows_applies_to_others():
    fit_rows = VIGNETTE[:, None]
    other = np.array([[0.0], [29.0], [31.0], [1000.0], [np.nan]])
    step = OutlierTreatment(winmax=2).fit(fit_rows, ["x"])
    np.testing.assert_array_equal(step.transform(other, ["x"])[:, 0], [0, 29, 30, 30, np.nan])


def test_treatment_skips_columns_not_to_treat():
    X = np.column_stack([VIGNETTE, VIGNETTE])
    step = OutlierTreatment(winmax=2).fit(X, ["a", "b"], treat=[False, True])
    assert list(step.columns_) == ["b"]
    out = step.transform(X, ["a", "b"])
    np.testing.assert_array_equal(out[:, 0], VIGNETTE)
    assert out[:, 1].max() == 30


def test_treatment_in_the_pipeline_is_logged_and_respects_exemptions(make_spec):
    X = np.column_stack([VIGNETTE, VIGNETTE, np.arange(12.0)])
    spec = make_spec(treat={"method": "winsorise", "winmax": 2}, indicator_options={"b": {"treat": False}})
    treated, res = stage(X, spec, "treated")
    np.testing.assert_array_equal(treated["a"], np.where(VIGNETTE == 100, 30, VIGNETTE))
    np.testing.assert_array_equal(treated["b"], VIGNETTE)            # exempt
    t = res.treatment.set_index("indicator")
    assert sorted(t.index) == ["a", "c"]
    assert (t.loc["a", "status"], t.loc["a", "n_winsorised"], t.loc["a", "upper"]) == ("winsorised", 1, 30)
    log = res.log[res.log["step"] == "treat"]
    assert log[["location", "column", "action", "before", "after"]].values.tolist() == [
        ["L011", "a", "winsorised", 100.0, 30.0]]


def test_log_transformed_indicator_cannot_use_goalposts(make_spec):
    x = np.r_[-200, np.arange(1, 31), 80, 90].astype(float)
    spec = make_spec(("a",), treat={"method": "winsorise", "winmax": 1, "log_fallback": True},
                     normalise={"method": "goalposts"}, indicator_options={"a": {"goalposts": [-200, 100]}})
    with pytest.raises(MethodError, match="'a' was log-transformed"):
        stage(x[:, None], spec, "normalised", columns=("a",))
    # with a data-driven normalisation the log is fine, and recorded
    _, res = stage(x[:, None], spec.with_changes({"normalise.method": "minmax"}), "normalised", columns=("a",))
    assert res.treatment.set_index("indicator").loc["a", "status"] == "log"
    assert (res.log["action"] == "log_transformed").sum() == 1


# ============================================================================ normalisation


def test_minmax_onto_l_u(make_spec):
    x = [2.0, 4.0, NAN, 6.0, 10.0]
    np.testing.assert_allclose(normalise(x, make_spec(("a",))), [0, 25, NAN, 50, 100], rtol=1e-12)
    spec = make_spec(("a",), normalise={"method": "minmax", "l": 1, "u": 10})
    np.testing.assert_allclose(normalise(x, spec), [1, 3.25, NAN, 5.5, 10], rtol=1e-12)
    spec = make_spec(("a",), directions={"a": -1})
    np.testing.assert_allclose(normalise(x, spec), [100, 75, NAN, 50, 0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("top", [0.3, 15 / 7, 30 / 7, 0.7, 123.456])
def test_minmax_maps_the_maximum_exactly_onto_u(make_spec, top):
    # COINr evaluates ((x - min)/(max - min))*(u - l) + l: the maximum lands exactly on 100
    spec = make_spec(("a",))
    out = normalise([0.0, top / 2, top], spec)
    assert out[0] == 0.0
    assert out[-1] == 100.0, f"max of [0, {top}] normalised to {out[-1]!r}, not 100"
    assert out.max() <= 100.0


def test_zscore_uses_the_sample_sd(make_spec):
    x = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    sd = np.sqrt(((x - 4.0) ** 2).sum() / 4)  # n - 1
    spec = make_spec(("a",), normalise={"method": "zscore", "m": 50, "s": 10})
    np.testing.assert_allclose(normalise(x, spec), 50 + 10 * (x - 4.0) / sd, rtol=1e-12)
    # COINr vignette spec m_sd = c(10, 2)
    spec = make_spec(("a",), normalise={"method": "zscore", "m": 10, "s": 2})
    np.testing.assert_allclose(normalise(x, spec), 10 + 2 * (x - x.mean()) / x.std(ddof=1), rtol=1e-12)


def test_rank_and_percentile_rank(make_spec):
    x = [3.0, 1.0, 3.0, 2.0, NAN]
    spec = make_spec(("a",), normalise={"method": "rank"})
    np.testing.assert_array_equal(normalise(x, spec), [3, 1, 3, 2, NAN])
    # COINr n_prank: (rank_min - 1)/(n_nonNA - 1)
    spec = make_spec(("a",), normalise={"method": "percentile", "scale": 100})
    np.testing.assert_allclose(normalise(x, spec), [200 / 3, 0, 200 / 3, 100 / 3, NAN], rtol=1e-12)
    spec = make_spec(("a",), normalise={"method": "percentile", "scale": 1}, directions={"a": -1})
    # flipped: -3, -1, -3, -2 -> min ranks 1, 4, 1, 3
    np.testing.assert_allclose(normalise(x, spec), [0, 1, 0, 2 / 3, NAN], rtol=1e-12)


def test_rank_agrees_with_scipy_min_ranks(make_spec):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 6, size=40).astype(float)
    spec = make_spec(("a",), normalise={"method": "rank"})
    np.testing.assert_array_equal(normalise(x, spec), stats.rankdata(x, method="min"))


def test_goalposts_with_both_directions(make_spec):
    x = [-1.0, 0.0, 2.5, 10.0, 12.0, NAN]
    opts = {"a": {"goalposts": [0, 10]}}
    spec = make_spec(("a",), normalise={"method": "goalposts", "scale": 100}, indicator_options=opts)
    np.testing.assert_allclose(normalise(x, spec), [0, 0, 25, 100, 100, NAN], rtol=1e-12)
    spec = make_spec(("a",), normalise={"method": "goalposts", "scale": 100}, indicator_options=opts,
                     directions={"a": -1})
    np.testing.assert_allclose(normalise(x, spec), [100, 100, 75, 0, 0, NAN], rtol=1e-12)
    # COINr test: n_goalposts(x, c(0.2, 0.8, 10)) = clip((x - 0.2)/0.6, 0, 1) * 10
    y = np.linspace(0, 1, 11)
    spec = make_spec(("a",), normalise={"method": "goalposts", "scale": 10},
                     indicator_options={"a": {"goalposts": [0.2, 0.8]}})
    np.testing.assert_allclose(normalise(y, spec), np.clip((y - 0.2) / 0.6, 0, 1) * 10, rtol=1e-12, atol=1e-12)


def test_goalposts_default_to_the_valid_range_of_the_answers():
    spec = spec_from_dict({
        "name": "t", "columns": {"location": "loc", "round": None},
        "answers": {"share": {"codes": {"none": 0, "some": 1, "most": 2, "all": 3, "dont_know": None}}},
        "indicators": [{"id": "a", "parent": "I", "answers": "share"}],
        "aggregates": [{"id": "I", "level": 2}], "levels": [{"name": "i"}, {"name": "x"}],
        "normalise": {"method": "goalposts", "scale": 100}})
    np.testing.assert_allclose(normalise([0, 1, 2, 3], spec), [0, 100 / 3, 200 / 3, 100], rtol=1e-12)


def test_dist2target_range_basis(make_spec):
    x = [0.0, 5.0, 11.0]
    opts = {"a": {"target": 10}}
    spec = make_spec(("a",), normalise={"method": "dist2target", "scale": 1, "cap": False}, indicator_options=opts)
    np.testing.assert_allclose(normalise(x, spec), [1 - 10 / 11, 1 - 5 / 11, 1 + 1 / 11], rtol=1e-12)
    spec = make_spec(("a",), normalise={"method": "dist2target", "scale": 100}, indicator_options=opts)
    np.testing.assert_allclose(normalise(x, spec), [100 / 11, 600 / 11, 100], rtol=1e-12)


def test_dist2target_target_basis_is_coinr_n_dist2targ(make_spec):
    # COINr tests: n_dist2targ(c(0,5,11), targ=10) = c(0, 0.5, 1.1), capped c(0, 0.5, 1)
    base = {"method": "dist2target", "target_basis": "target", "scale": 1}
    spec = make_spec(("a",), normalise={**base, "cap": False}, indicator_options={"a": {"target": 10}})
    np.testing.assert_allclose(normalise([0.0, 5.0, 11.0], spec), [0, 0.5, 1.1], rtol=1e-12)
    spec = make_spec(("a",), normalise={**base, "cap": True}, indicator_options={"a": {"target": 10}})
    np.testing.assert_allclose(normalise([0.0, 5.0, 11.0], spec), [0, 0.5, 1], rtol=1e-12)
    # n_dist2targ(c(-1,1,10), targ=0, direction=-1) = c(1.1, 0.9, 0), capped c(1, 0.9, 0)
    spec = make_spec(("a",), normalise={**base, "cap": False}, indicator_options={"a": {"target": 0}},
                     directions={"a": -1})
    np.testing.assert_allclose(normalise([-1.0, 1.0, 10.0], spec), [1.1, 0.9, 0], rtol=1e-12, atol=1e-15)
    spec = make_spec(("a",), normalise={**base, "cap": True}, indicator_options={"a": {"target": 0}},
                     directions={"a": -1})
    np.testing.assert_allclose(normalise([-1.0, 1.0, 10.0], spec), [1, 0.9, 0], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("method", ["minmax", "dist2target"])
def test_zero_range_raises_naming_the_indicator(make_spec, method):
    spec = make_spec(("a", "flat"), normalise={"method": method, "scale": 100},
                     indicator_options={"a": {"target": 5}, "flat": {"target": 5}})
    X = [[1.0, 4.0], [2.0, 4.0], [3.0, NAN]]
    with pytest.raises(MethodError, match="'flat'.*zero range"):
        stage(X, spec, "normalised", columns=("a", "flat"))


def test_zero_sd_raises_naming_the_indicator(make_spec):
    spec = make_spec(("a", "flat"), normalise={"method": "zscore"})
    with pytest.raises(MethodError, match="'flat'"):
        stage([[1.0, 4.0], [2.0, 4.0]], spec, "normalised", columns=("a", "flat"))


def test_zero_range_through_compute_names_the_indicator(make_spec, make_frame):
    df = make_frame([[1, 5, 3], [2, 5, 1], [3, 5, 2]])
    with pytest.raises(MethodError, match="'b'"):
        compute(df, make_spec(), check=False)


def test_per_indicator_normalisation_override(make_spec):
    spec = make_spec(("a", "b"), normalise={"method": "minmax"},
                     indicator_options={"b": {"normalise": {"method": "zscore", "m": 10, "s": 2}}})
    methods = resolve_methods(spec)
    assert methods["a"].method == "minmax" and methods["b"].method == "zscore"
    assert methods["b"].params == {"m": 10, "s": 2}


# ============================================================================ aggregation


def test_weighted_arithmetic_mean_renormalises_weights_over_present_children():
    X = np.array([[10.0, 20.0, NAN], [NAN, NAN, NAN], [30.0, 60.0, 90.0], [NAN, NAN, 7.0]])
    out = weighted_mean(X, np.array([1.0, 1.0, 2.0]))
    np.testing.assert_allclose(out, [15.0, NAN, 67.5, 7.0], rtol=1e-12)


def test_weighted_geometric_mean():
    # COINr test: a_gmean(c(1,2,3), c(1,1,2)) = (1*2*3^2)^(1/4)
    out = weighted_mean(np.array([[1.0, 2.0, 3.0], [4.0, NAN, 16.0]]), np.array([1.0, 1.0, 2.0]), "geometric")
    np.testing.assert_allclose(out, [18 ** 0.25, (4 * 16 ** 2) ** (1 / 3)], rtol=1e-12)


def test_weighted_harmonic_mean():
    # COINr test: a_hmean(c(1,2,3), c(2,1,1)) = 4/(2/1 + 1/2 + 1/3)
    out = weighted_mean(np.array([[1.0, 2.0, 3.0], [NAN, 2.0, 4.0]]), np.array([2.0, 1.0, 1.0]), "harmonic")
    np.testing.assert_allclose(out, [4 / (2 + 0.5 + 1 / 3), 2 / (0.5 + 0.25)], rtol=1e-12)


def test_generalised_mean():
    X = np.array([[1.0, 2.0, 3.0], [NAN, 2.0, 4.0]])
    w = np.array([1.0, 1.0, 2.0])
    out = weighted_mean(X, w, "generalised", p=2)
    np.testing.assert_allclose(out, [np.sqrt((1 + 4 + 18) / 4), np.sqrt((4 + 32) / 3)], rtol=1e-12)
    np.testing.assert_allclose(weighted_mean(X, w, "generalised", p=1), weighted_mean(X, w), rtol=1e-12)
    np.testing.assert_allclose(weighted_mean(X, w, "generalised", p=0), weighted_mean(X, w, "geometric"),
                               rtol=1e-12)
    np.testing.assert_allclose(weighted_mean(X, w, "generalised", p=-1), weighted_mean(X, w, "harmonic"),
                               rtol=1e-12)


def test_availability_threshold_is_strict():
    X = np.array([[1.0, 2.0, NAN, NAN], [1.0, NAN, NAN, NAN], [1.0, 2.0, 3.0, NAN]])
    w = np.ones(4)
    # COINr: NA if share present < threshold; a share equal to it is aggregated
    np.testing.assert_allclose(weighted_mean(X, w, threshold=0.5), [1.5, NAN, 2.0])
    np.testing.assert_allclose(weighted_mean(X, w, threshold=0.75), [NAN, NAN, 2.0])
    np.testing.assert_allclose(weighted_mean(X, w, threshold=0.0), [1.5, 1.0, 2.0])


@pytest.mark.parametrize("method", ["geometric", "harmonic"])
@pytest.mark.parametrize("bad", [0.0, -3.0])
def test_geometric_and_harmonic_reject_non_positive_values(method, bad):
    X = np.array([[1.0, 2.0], [bad, 5.0]])
    with pytest.raises(MethodError, match="'safety'.*'robbery'"):
        weighted_mean(X, np.ones(2), method, name="safety", children=["robbery", "theft"])


def test_geometric_aggregation_error_through_compute_names_aggregate_and_child(make_spec, make_frame):
    spec = make_spec(levels=[{"method": "geometric"}])
    df = make_frame([[1, 5, 3], [2, 6, 1], [3, 7, 2]])   # minmax gives 0 at each minimum
    with pytest.raises(MethodError, match="'I'.*geometric.*'a'"):
        compute(df, spec, check=False)
    # onto [1, 100] the geometric mean is defined
    ok = compute(df, spec.with_changes({"normalise.l": 1}), check=False)
    assert ok.scores["I"].notna().all()


def test_copeland_on_the_coinr_outranking_example():
    # COINr test data: x1 = 1:4, x2 = c(3:1, 5), x3 = c(2, 3, 1, 4)
    X = np.array([[1, 3, 2], [2, 2, 3], [3, 1, 1], [4, 5, 4]], dtype=float)
    np.testing.assert_array_equal(copeland(X, np.ones(3)), [-1, 1, -3, 3])
    np.testing.assert_array_equal(weighted_mean(X, np.ones(3), "copeland"), [-1, 1, -3, 3])


def test_copeland_ties_and_weights():
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_array_equal(copeland(X, np.array([1.0, 1.0])), [0, 0])
    np.testing.assert_array_equal(copeland(X, np.array([2.0, 1.0])), [1, -1])
    # non-compensatory: a huge lead on one child does not beat two small losses
    Y = np.array([[100.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    np.testing.assert_array_equal(copeland(Y, np.ones(3)), [-1, 1])


def test_aggregation_goes_level_by_level_over_child_scores(make_spec):
    # pillar P = mean(a, 3 b), Q = c; index = mean(P, Q), not the mean of the three indicators
    spec = make_spec(pillars={"a": "P", "b": "P", "c": "Q"}, weights={"b": 3}, normalise={"method": "none"})
    agg, res = stage([[40.0, 80.0, 10.0], [NAN, 20.0, NAN], [0.0, 0.0, 0.0]], spec, "aggregated")
    assert list(agg.columns) == ["P", "Q", "I"]
    np.testing.assert_allclose(agg.to_numpy(), [[70.0, 10.0, 40.0], [20.0, NAN, 20.0], [0, 0, 0]])
    # the scores table carries the index and every aggregate
    np.testing.assert_allclose(res.scores[["I", "P", "Q"]].to_numpy(), agg[["I", "P", "Q"]].to_numpy())


def test_availability_threshold_through_the_levels(make_spec):
    spec = make_spec(("a", "b", "c", "d"), pillars={"a": "P", "b": "P", "c": "Q", "d": "Q"},
                     normalise={"method": "none"}, levels=[{"threshold": 0.5}, {"threshold": 1.0}])
    agg, res = stage([[1, NAN, 3, 5], [NAN, NAN, 3, 5], [2, 4, 6, 8]], spec, "aggregated", columns="abcd")
    np.testing.assert_allclose(agg["P"], [1, NAN, 3])
    np.testing.assert_allclose(agg["I"], [2.5, NAN, 5])     # the index needs both pillars
    dropped = res.log[(res.log["step"] == "aggregate") & (res.log["action"] == "dropped")]
    assert sorted(zip(dropped["location"], dropped["column"])) == [("L001", "I")]   # P has no child at all: missing, not dropped


# ============================================================================ imputation


def test_mean_and_median_imputation(make_spec):
    X = np.array([[1.0, NAN], [3.0, 4.0], [NAN, 8.0], [10.0, 9.0]])
    spec = make_spec(("a", "b"), impute={"method": "mean"})
    imp, res = stage(X, spec, "imputed", columns="ab")
    np.testing.assert_allclose(imp.to_numpy(), [[1, 7], [3, 4], [14 / 3, 8], [10, 9]])
    # observed cells are untouched, bit for bit
    np.testing.assert_array_equal(imp.to_numpy()[~np.isnan(X)], X[~np.isnan(X)])
    imp, _ = stage(X, spec.with_changes({"impute.method": "median"}), "imputed", columns="ab")
    np.testing.assert_allclose(imp.to_numpy(), [[1, 8], [3, 4], [3, 8], [10, 9]])


def test_no_imputation_keeps_missing_values(make_spec):
    X = [[1.0, NAN], [2.0, 3.0], [4.0, 5.0]]
    imp, res = stage(X, make_spec(("a", "b")), "imputed", columns="ab")
    assert np.isnan(imp.iloc[0, 1])
    assert not (res.log["step"] == "impute").any()
    assert res.scores["n_imputed"].tolist() == [0, 0, 0]
    assert res.scores["n_missing"].tolist() == [1, 0, 0]


def test_group_imputation_and_fallback(make_spec):
    X = np.array([1.0, NAN, 4.0, NAN, 8.0, NAN, NAN, 2.0])[:, None]
    g = ["a", "a", "b", "b", "b", "c", "c", "d"]
    spec = make_spec(("x",), admin=["g"], impute={"method": "group_mean", "group": "g"})
    imp, res = stage(X, spec, "imputed", columns="x", g=g)
    np.testing.assert_allclose(imp["x"], [1, 1, 4, 6, 8, NAN, NAN, 2])
    # group c has no observed value: fallback = overall statistic of the OBSERVED values (1, 4, 8, 2)
    imp, res = stage(X, spec.with_changes({"impute.method": "group_median", "impute.fallback": "mean"}),
                     "imputed", columns="x", g=g)
    np.testing.assert_allclose(imp["x"], [1, 1, 4, 6, 8, 3.75, 3.75, 2])
    assert (res.log["step"] == "impute").sum() == 4
    imp, _ = stage(X, spec.with_changes({"impute.fallback": "median"}), "imputed", columns="x", g=g)
    np.testing.assert_allclose(imp["x"], [1, 1, 4, 6, 8, 3, 3, 2])


def test_imputation_statistics_come_from_the_same_round(make_spec):
    df = pd.DataFrame({"loc": ["A", "B", "C"] * 2, "r": [1, 1, 1, 2, 2, 2],
                       "x": [1.0, 3.0, NAN, 10.0, 20.0, NAN], "y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    spec = make_spec(("x", "y"), round="r", impute={"method": "mean"})
    imp = compute(df, spec, check=False).stage("imputed")
    assert imp.loc[("C", 1), "x"] == 2.0 and imp.loc[("C", 2), "x"] == 15.0
    pooled = compute(df, spec.with_changes({"normalise.scope": "pooled"}), check=False).stage("imputed")
    assert pooled.loc[("C", 1), "x"] == pooled.loc[("C", 2), "x"] == 8.5


def test_coinr_imputation_example(asem_paths, make_spec):
    # COINr: df1 <- ASEM_iData[37:46, 36:39] (Pat, CultServ, CultGood, Tourist)
    raw = pd.read_csv(asem_paths[0])
    df1 = raw.iloc[36:46, 35:39]
    cols = ["Pat", "CultServ", "CultGood", "Tourist"]
    assert list(df1.columns) == cols
    X = df1.to_numpy(dtype=float)
    spec = make_spec(cols, impute={"method": "mean"})
    imp, _ = stage(X, spec, "imputed", columns=cols)
    filled = {c: set(np.round(imp[c].to_numpy()[np.isnan(X[:, j])], 7)) for j, c in enumerate(cols)
              if np.isnan(X[:, j]).any()}
    assert filled == {"Pat": {122.35}, "CultServ": {0.6470778}, "CultGood": {4.5395}}
    spec = make_spec(cols, admin=["grp"], impute={"method": "group_median", "group": "grp"})
    imp, _ = stage(X, spec, "imputed", columns=cols, grp=list("aaaaabbbbb"))
    got = {(c, "ab"[int(i >= 5)]): round(float(imp[c].iloc[i]), 6)
           for j, c in enumerate(cols) for i in np.flatnonzero(np.isnan(X[:, j]))}
    assert got == {("Pat", "a"): 136.75, ("Pat", "b"): 26.85, ("CultServ", "a"): 0.966025,
                   ("CultGood", "a"): 8.5835, ("CultGood", "b"): 1.2345}


def test_every_imputed_cell_is_in_the_log(make_spec, make_frame):
    df = make_frame([[1, NAN, 3], [2, 5, NAN], [NAN, 6, 1], [4, 7, 2]], region=["r1", "r1", "r2", "r2"])
    spec = make_spec(admin=["region"], impute={"method": "group_mean", "group": "region", "fallback": "mean"})
    res = compute(df, spec, check=False)
    log = res.log[res.log["step"] == "impute"]
    assert sorted(zip(log["location"], log["column"])) == [("L000", "b"), ("L001", "c"), ("L002", "a")]
    got = dict(zip(zip(log["location"], log["column"]), log["after"]))
    # L0.b: group r1 has only 5 -> 5; L1.c: r1 has only 3 -> 3; L2.a: r2 has only 4 -> 4
    assert got == {("L000", "b"): 5.0, ("L001", "c"): 3.0, ("L002", "a"): 4.0}
    assert log["before"].isna().all()
    assert res.scores.set_index("loc")["n_imputed"].to_dict() == {"L000": 1, "L001": 1, "L002": 1, "L003": 0}


# ============================================================================ denomination


def test_denominate_divides_by_denominator_over_scale(make_spec):
    spec = make_spec(("a", "b"), indicator_options={"a": {"denominator": "pop", "denominator_scale": 1000}})
    X = [[4.0, 1.0], [3.0, 2.0], [5.0, 3.0], [6.0, 4.0], [7.0, 5.0]]
    den, res = stage(X, spec, "denominated", columns="ab", pop=[2000.0, 500.0, 0.0, NAN, 1e4])
    # x / (d / scale); a missing or non-positive denominator gives a missing value
    np.testing.assert_allclose(den["a"], [4 / 2.0, 3 / 0.5, NAN, NAN, 7 / 10])
    np.testing.assert_array_equal(den["b"], [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(res.stage("raw")["a"], [4, 3, 5, 6, 7])   # raw stage kept


def test_without_denominators_the_stage_is_shared(make_spec):
    _, res = stage([[1, 2, 3], [2, 3, 1]], make_spec(), "raw")
    pd.testing.assert_frame_equal(res.stage("denominated"), res.stage("raw"))


# ============================================================================ ranks, categories


def test_ranks_one_is_best_min_ties_nan_kept():
    np.testing.assert_array_equal(rank_desc([50.0, 70.0, 70.0, NAN, 10.0]), [3, 1, 1, NAN, 4])


def test_ranks_within_groups():
    x = [50.0, 70.0, 70.0, NAN, 10.0, 90.0]
    g = np.array(["a", "a", "b", "b", "b", "a"])
    np.testing.assert_array_equal(rank_desc(x, [g]), [3, 2, 1, NAN, 2, 1])


def test_categories_at_cut_offs_go_up():
    cats = categorise([0.0, 39.999, 40.0, 59.99, 60.0, 100.0, NAN], [40, 60], ["low", "medium", "high"])
    assert list(cats.astype(object)) == ["low", "low", "medium", "medium", "high", "high", NAN]
    assert cats.ordered and list(cats.categories) == ["low", "medium", "high"]


def test_scores_equal_up_to_rounding_share_rank_and_category(make_spec):
    # (0.1 + 0.2 + 0.3)/3 and (0.3 + 0.2 + 0.1)/3 differ in the last bit; 40 - 1e-13 is 40 in any report
    spec = make_spec(normalise={"method": "none"}, indicator_options={i: {"range": [0, 100]} for i in "abc"})
    agg, res = stage([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [0.0, 0.1, 0.2], [40 - 1e-13, 40, 40]], spec, "aggregated")
    assert agg["I"].iloc[0] != agg["I"].iloc[1]
    assert res.scores["rank_national"].tolist() == [2, 2, 4, 1]
    assert res.scores["category"].astype(str).tolist() == ["low", "low", "low", "medium"]


# ============================================================================ key-informant combine


def ki_spec(**combine_opts):
    return spec_from_dict({
        "name": "ki", "columns": {"location": "loc", "round": "r", "key_informant": "ki"},
        "answers": {"yes_no": {"codes": {"no": 0, "yes": 1, "dont_know": None}},
                    "share": {"codes": {"none": 0, "some": 1, "most": 2, "all": 3, "dont_know": None}},
                    "count": {"range": [0, None], "integer": True}},
        "indicators": [{"id": "yn", "parent": "I", "answers": "yes_no"},
                       {"id": "sh", "parent": "I", "answers": "share"},
                       {"id": "n", "parent": "I", "answers": "count"}],
        "aggregates": [{"id": "I", "level": 2}], "levels": [{"name": "i"}, {"name": "x"}],
        "combine": combine_opts})


KI = pd.DataFrame({
    "loc": ["A"] * 4 + ["B"] * 5 + ["C"] * 2,
    "r": [1] * 11,
    "ki": ["k1", "k2", "k3", "k4", "k1", "k2", "k3", "k4", "k5", "k1", "k2"],
    "yn": ["yes", "YES", "no", " no ", "yes", "yes", "no", "dont_know", None, "1", "dont_know"],
    "sh": ["all", "none", "all", "all", "some", "all", "some", "all", "none", "most", "2"],
    "n": ["2", "4", None, "9", "0", "1", "1", "3", "1", "10", "12"],
})


def test_encode_labels_codes_and_missing():
    spec = ki_spec()
    codes, invalid = encode_column(pd.Series(["yes", "No", "dont_know", None, "1", "0.0", "maybe"]),
                                   spec.answers["yes_no"])
    np.testing.assert_array_equal(codes, [1, 0, NAN, NAN, 1, 0, NAN])
    np.testing.assert_array_equal(invalid, [False, False, False, False, False, False, True])
    codes, invalid = encode_column(pd.Series(["3", " 4 ", "x", None, "inf", "-inf"]), spec.answers["count"])
    np.testing.assert_array_equal(codes, [3, 4, NAN, NAN, NAN, NAN])
    np.testing.assert_array_equal(invalid, [False, False, True, False, True, True])
    # numbers given as numbers (an in-memory table)
    codes, invalid = encode_column(pd.Series([3.0, np.inf, np.nan]), spec.answers["count"])
    np.testing.assert_array_equal(codes, [3, NAN, NAN])
    np.testing.assert_array_equal(invalid, [False, True, False])


def test_combine_median():
    spec = ki_spec(method="median")
    coded = encode(KI, spec).assign(loc=KI["loc"], r=KI["r"])
    c = combine(coded, spec)
    v = c.values.xs(1, level="r")
    assert v.loc["A"].tolist() == [0.5, 3.0, 4.0]
    assert v.loc["B"].tolist() == [1.0, 1.0, 1.0]
    assert v.loc["C", "yn"] == 1.0 and v.loc["C", "sh"] == 2.0 and v.loc["C", "n"] == 11.0
    assert c.n_informants.xs(1, level="r").to_dict() == {"A": 4, "B": 5, "C": 2}


def test_combine_mode_ties_take_the_mean_of_tied_values():
    spec = ki_spec(method="mode")
    coded = encode(KI, spec).assign(loc=KI["loc"], r=KI["r"])
    v = combine(coded, spec).values.xs(1, level="r")
    assert v.loc["A", "yn"] == 0.5          # yes, yes, no, no: tie -> mean(0, 1)
    assert v.loc["A", "sh"] == 3.0          # all x3
    assert v.loc["B", "sh"] == 2.0          # some x2, all x2, none x1: tie -> mean(1, 3)
    assert v.loc["B", "yn"] == 1.0          # yes x2, no x1 (dont_know and empty ignored)
    assert v.loc["A", "n"] == 5.0           # 2, 4, 9 each once: mean of the three


def test_per_indicator_combine_override():
    spec = ki_spec(method="median").with_changes({"indicators.sh.combine": "mean"})
    coded = encode(KI, spec).assign(loc=KI["loc"], r=KI["r"])
    v = combine(coded, spec).values.xs(1, level="r")
    assert v.loc["B", "sh"] == pytest.approx((1 + 3 + 1 + 3 + 0) / 5)
    assert v.loc["B", "yn"] == 1.0


def test_disagreement_is_mean_absolute_deviation_over_span_and_flagged():
    spec = ki_spec(method="median", disagreement_threshold=0.3)
    coded = encode(KI, spec).assign(loc=KI["loc"], r=KI["r"])
    c = combine(coded, spec)
    d = c.disagreement.xs(1, level="r")
    f = c.flagged.xs(1, level="r")
    assert d.loc["A", "yn"] == pytest.approx(0.5)            # |1-.5| x4 / span 1
    assert d.loc["A", "sh"] == pytest.approx((3 + 0 + 0 + 0) / 4 / 3)
    assert d.loc["B", "sh"] == pytest.approx((0 + 2 + 0 + 2 + 1) / 5 / 3)
    assert d.loc["B", "yn"] == pytest.approx(1 / 3)                # dont_know and empty do not count
    # count: no upper bound in the answer type, so the span is the observed range 0..12
    assert d.loc["A", "n"] == pytest.approx((2 + 0 + 5) / 3 / 12)
    assert d.loc["C", "yn"] != d.loc["C", "yn"]              # one answer: no disagreement measured
    assert bool(f.loc["A", "yn"]) and not bool(f.loc["A", "sh"]) and bool(f.loc["B", "sh"])
    assert not bool(f.loc["C", "yn"])
    # the flag is raised when the disagreement reaches the threshold (>=)
    c2 = combine(coded, ki_spec(method="median", disagreement_threshold=0.5))
    assert bool(c2.flagged.xs(1, level="r").loc["A", "yn"])


def test_disagreements_counted_in_scores():
    spec = ki_spec(method="median", disagreement_threshold=0.3)
    res = compute(KI, spec.with_changes({"normalise.method": "goalposts",
                                         "indicators.n.goalposts": [0, 20]}), check=False)
    s = res.scores.set_index("loc")
    assert s.loc["A", "n_disagreements"] == 1     # yn 0.5 (sh 0.25, n 0.19 below 0.3)
    assert s.loc["B", "n_disagreements"] == 2     # yn 1/3 and sh 1/3
    assert s.loc["C", "n_disagreements"] == 0
    assert s["n_informants"].to_dict() == {"A": 4, "B": 5, "C": 2}


def test_min_informants_drops_and_logs_units():
    spec = ki_spec(method="median", min_informants=3).with_changes(
        {"normalise.method": "goalposts", "indicators.n.goalposts": [0, 20]})
    res = compute(KI, spec, check=False)
    assert list(res.scores["loc"]) == ["A", "B"]
    dropped = res.log[(res.log["step"] == "prepare") & (res.log["action"] == "dropped")]
    assert list(dropped["location"]) == ["C"]


def test_spec_errors_are_spec_errors():
    with pytest.raises(SpecError):
        ki_spec(method="trimmed")


# ============================================================================ whole-matrix forms of the fitted steps
MATRIX = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: Parameters of each registered normalisation (the ones it reads, with the values the spec would give).
PARAMS = {"minmax": {"l": 0.0, "u": 100.0}, "zscore": {"m": 10.0, "s": 3.0}, "rank": {},
          "percentile": {"scale": 100.0}, "goalposts": {"scale": 100.0, "lower": -1.0, "upper": 4.0},
          "dist2target": {"scale": 1.0, "target_basis": "range", "cap": True, "target": 3.0}, "none": {}}


def bits_equal(a, b) -> bool:
    """The same numbers, signed zeros told apart, NaN alike."""
    return bool(np.array_equal(a, b, equal_nan=True) and (np.signbit(a) == np.signbit(b))[~np.isnan(a)].all())


def test_every_normaliser_has_matrix_test_parameters():
    assert set(PARAMS) == set(NORMALISERS.names())


@st.composite
def matrices(draw, max_columns: int = 7):
    p = draw(st.integers(1, max_columns))
    n = draw(st.integers(2, 40))
    pool = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 3.0, 7.25, -4.5, 1e-300, 1e6, NAN]
    cells = draw(st.lists(st.one_of(st.sampled_from(pool), st.floats(-1e3, 1e3)), min_size=n * p,
                          max_size=n * p))
    X = np.array(cells, dtype=float).reshape(n, p)
    X[:2] = np.array([[-2.0], [5.0]])  # two distinct values per column: every fit is defined
    methods = draw(st.lists(st.sampled_from(NORMALISERS.names()), min_size=p, max_size=p))
    directions = draw(st.lists(st.sampled_from([1, -1]), min_size=p, max_size=p))
    return X, methods, directions


@MATRIX
@given(matrices(), st.sampled_from([None, "new", "self"]))
def test_normaliser_matrix_form_is_bit_identical_to_the_columns(case, out):
    X, names, directions = case
    columns = [f"x{j}" for j in range(X.shape[1])]
    norm = Normaliser({c: Method(m, d, dict(PARAMS[m])) for c, m, d in zip(columns, names, directions)})
    norm.fit(X, columns)
    expected = norm.transform(X, columns)
    given_x = X.copy()
    buffer = given_x if out == "self" else (np.empty(X.shape) if out == "new" else None)
    got = norm.transform_matrix(given_x, columns, out=buffer)
    assert bits_equal(got, expected)
    if out == "self":
        assert got is given_x


@pytest.mark.parametrize("method", ["minmax", "zscore", "goalposts", "none"])
@pytest.mark.parametrize("direction", [1, -1])
def test_affine_normalisers_keep_signed_zeros_and_large_matrices(method, direction):
    rng = np.random.default_rng(4)
    X = rng.normal(0.0, 2.0, (5000, 3))  # several blocks of rows
    X[rng.random(X.shape) < 0.05] = NAN
    X[:4, 0] = [0.0, -0.0, 1.0, -1.0]
    columns = ["a", "b", "c"]
    norm = Normaliser({c: Method(method, direction, dict(PARAMS[method])) for c in columns}).fit(X, columns)
    assert bits_equal(norm.transform_matrix(X, columns), norm.transform(X, columns))


def test_normaliser_matrix_form_raises_as_the_column_path():
    norm = Normaliser({"a": Method("minmax", 1, {"l": 1.0, "u": 1.0})})
    norm.stats_ = {"a": {"min": 0.0, "max": 1.0}}
    X = np.array([[0.5], [1.0]])
    with pytest.raises(MethodError, match="minmax needs l < u"):
        norm.transform(X, ["a"])
    with pytest.raises(MethodError, match="minmax needs l < u"):
        norm.transform_matrix(X, ["a"])
    with pytest.raises(ValueError, match="columns"):
        norm.transform_matrix(np.zeros((2, 2)), ["a"])


@MATRIX
@given(st.integers(0, 2**31), st.integers(1, 8), st.booleans())
def test_treatment_matrix_form_is_bit_identical_to_the_columns(seed, p, log_fallback):
    rng = np.random.default_rng(seed)
    n = 60
    X = rng.normal(0.0, 1.0, (n, p))
    heavy = rng.random(p) < 0.6  # columns with outliers: winsorised, or log-transformed when that fails
    X[:, heavy] = rng.lognormal(0.0, 1.5, (n, int(heavy.sum())))
    X[rng.random(X.shape) < 0.05] = NAN
    columns = [f"x{j}" for j in range(p)]
    treat = rng.random(p) < 0.9
    step = OutlierTreatment(winmax=int(rng.integers(1, 6)), log_fallback=log_fallback).fit(X, columns, list(treat))
    other = X * rng.uniform(0.5, 2.0) - rng.uniform(0, 1)  # rows the treatment was not fitted on
    for Y in (X, other):
        expected = step.transform(Y, columns)
        assert bits_equal(step.transform_matrix(Y, columns), expected)
        inplace = Y.copy()
        assert bits_equal(step.transform_matrix(inplace, columns, out=inplace), expected)


def test_treatment_matrix_form_clips_many_columns_at_once():
    rng = np.random.default_rng(1)
    X = rng.lognormal(0.0, 1.0, (400, 12))
    X[:3] = 500.0  # a few large points in every column: winsorised
    columns = [f"x{j}" for j in range(12)]
    step = OutlierTreatment(winmax=5, log_fallback=False).fit(X, columns)
    assert sum(c.status == STATUS_WINSORISED for c in step.columns_.values()) > 3
    assert bits_equal(step.transform_matrix(X, columns), step.transform(X, columns))
