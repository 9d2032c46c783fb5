"""The COINr adapter on COINr's own ASEM example, against COINr's published numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stability.aggregate import weighted_mean
from stability.coinr import read_coinr
from stability.exceptions import SpecError, StabilityError
from stability.pipeline import compute
from stability.treat import STATUS_LOG, STATUS_PASS, STATUS_WINSORISED, treat_column

AGGS = ["Index", "Conn", "Sust", "Physical", "ConEcFin", "Political", "Instit", "P2P", "Environ", "Social",
        "SusEcFin"]

# get_results(build_example_coin(), dset = "Aggregated", tab_type = "Aggs"), rounded to 2 dp
PUBLISHED_TOP = pd.DataFrame([
    ["CHE", 1, 68.38, 62.79, 73.98, 63.41, 32.87, 74.78, 85.94, 56.93, 77.21, 87.85, 56.88],
    ["NLD", 2, 64.82, 61.94, 67.70, 64.87, 46.62, 84.55, 71.74, 41.92, 58.73, 86.58, 57.78],
    ["DNK", 3, 64.80, 57.10, 72.51, 50.52, 30.43, 78.13, 75.35, 51.04, 69.83, 86.40, 61.29],
    ["NOR", 4, 64.47, 57.44, 71.50, 58.18, 25.70, 80.03, 89.46, 33.80, 70.90, 87.00, 56.59],
    ["BEL", 5, 63.54, 63.99, 63.09, 71.97, 48.22, 80.84, 75.60, 43.32, 53.01, 86.17, 50.09],
    ["SWE", 6, 63.00, 53.87, 72.12, 51.51, 23.87, 80.98, 74.51, 38.50, 66.37, 87.74, 62.27],
], columns=["uCode", "Rank"] + AGGS).set_index("uCode")

# vignette("aggregate"): first five rows of the Aggregated data set, signif(., 3)
PUBLISHED_FIRST5 = pd.DataFrame({
    "ConEcFin": [12.6, 26.2, 48.2, 13.3, 24.6], "Environ": [31.9, 69.5, 53.0, 81.7, 55.7],
    "Instit": [52.4, 77.5, 75.6, 26.5, 75.9], "P2P": [39.50, 54.10, 43.30, 5.85, 27.10],
    "Physical": [34.8, 41.1, 72.0, 22.9, 28.4], "Political": [52.5, 78.2, 80.8, 32.4, 67.5],
    "Social": [71.9, 72.8, 86.2, 27.5, 53.3], "SusEcFin": [55.7, 62.9, 50.1, 64.6, 61.7],
    "Conn": [38.4, 55.4, 64.0, 20.2, 44.7], "Sust": [53.2, 68.4, 63.1, 57.9, 56.9],
    "Index": [45.8, 61.9, 63.5, 39.0, 50.8]}, index=["AUS", "AUT", "BEL", "BGD", "BGR"])

# get_unit_summary(coin, usel = "IND"): value (rank)
PUBLISHED_IND = {"Index": (39.79, 45), "Conn": (28.60, 44), "Sust": (50.99, 43), "Physical": (18.78, 48),
                 "ConEcFin": (6.38, 49), "Political": (51.90, 33), "Instit": (59.84, 37), "P2P": (6.07, 47),
                 "Environ": (75.34, 6), "Social": (22.74, 51), "SusEcFin": (54.88, 36)}


def signif(x, digits=3):
    x = np.asarray(x, dtype=float)
    mag = np.floor(np.log10(np.abs(x)))
    return np.round(x / 10 ** (mag - digits + 1)) * 10 ** (mag - digits + 1)


@pytest.fixture(scope="module")
def asem(asem_paths):
    return read_coinr(*asem_paths)


@pytest.fixture(scope="module")
def example_coin(asem):
    """COINr's build_example_coin(): denominate, group-mean impute by EurAsia_group, treat,
    min-max 0-100, arithmetic means."""
    spec, data = asem
    spec = spec.with_changes({"impute.method": "group_mean", "impute.group": "EurAsia_group"})
    return compute(data, spec)


# ============================================================================ the adapter


def test_asem_hierarchy(asem):
    spec, data = asem
    assert len(spec.indicators) == 49
    assert len(spec.aggregates_at(2)) == 8
    assert sorted(a.id for a in spec.aggregates_at(3)) == ["Conn", "Sust"]
    assert [a.id for a in spec.aggregates_at(4)] == ["Index"] and spec.root.id == "Index"
    assert [lv.name for lv in spec.levels] == ["Indicator", "Pillar", "Sub-index", "Index"]
    assert sorted(a.id for a in spec.aggregates_at(2)) == sorted(AGGS[3:])
    assert {a.parent for a in spec.aggregates_at(2)} == {"Conn", "Sust"}
    assert len(data) == 51 and data["uCode"].is_unique


def test_asem_metadata_is_carried_over(asem, asem_paths):
    spec, _ = asem
    meta = pd.read_csv(asem_paths[1])
    ind = meta[meta["Type"] == "Indicator"].set_index("iCode")
    for i in spec.indicators:
        assert i.parent == ind.loc[i.id, "Parent"]
        assert i.direction == ind.loc[i.id, "Direction"]
        assert i.weight == ind.loc[i.id, "Weight"]
        assert i.target == pytest.approx(ind.loc[i.id, "Target"])
    assert {i.id: i.denominator for i in spec.indicators if i.denominator} == \
        ind["Denominator"].dropna().to_dict()
    assert spec.indicator("Flights").denominator == "Population"
    assert sum(i.direction == -1 for i in spec.indicators) == (ind["Direction"] == -1).sum() > 0
    # COINr defaults
    assert spec.impute.method == "none"
    assert (spec.treat.method, spec.treat.winmax, spec.treat.skew_thresh, spec.treat.kurt_thresh) == (
        "winsorise", 5, 2, 3.5)
    assert (spec.normalise.method, spec.normalise.l, spec.normalise.u) == ("minmax", 0, 100)
    assert all(lv.method == "arithmetic" for lv in spec.levels[1:])


def test_read_coinr_accepts_dataframes(asem, asem_paths):
    spec, data = read_coinr(pd.read_csv(asem_paths[0]), pd.read_csv(asem_paths[1]))
    assert spec.hash == asem[0].hash
    pd.testing.assert_frame_equal(data, asem[1])


def test_read_coinr_errors(asem_paths, tmp_path):
    idata, imeta = (pd.read_csv(p) for p in asem_paths)
    with pytest.raises(SpecError, match="iMeta lacks columns: Parent"):
        read_coinr(idata, imeta.drop(columns="Parent"))
    with pytest.raises(SpecError, match="uCode"):
        read_coinr(idata.drop(columns="uCode"), imeta)
    with pytest.raises(SpecError, match="file not found"):
        read_coinr(tmp_path / "nope.csv", imeta)
    with pytest.raises(SpecError, match="levels"):
        read_coinr(idata, imeta, level_names=["a", "b"])


def test_read_coinr_missing_indicator_column_is_a_clear_error(asem_paths):
    idata, imeta = (pd.read_csv(p) for p in asem_paths)
    with pytest.raises(StabilityError, match="Flights"):
        read_coinr(idata.drop(columns="Flights"), imeta)


# ============================================================================ build_example_coin


def test_example_coin_reproduces_the_published_top_six(example_coin):
    s = example_coin.scores.set_index("uCode")
    top = s.sort_values("Index", ascending=False).head(6)
    assert list(top.index) == list(PUBLISHED_TOP.index)
    np.testing.assert_array_equal(top["rank_national"], PUBLISHED_TOP["Rank"])
    np.testing.assert_array_equal(top[AGGS].round(2).to_numpy(), PUBLISHED_TOP[AGGS].to_numpy())


def test_example_coin_reproduces_india(example_coin):
    s = example_coin.scores.set_index("uCode")
    ranks = {c: s[c].rank(method="min", ascending=False) for c in AGGS}
    for col, (value, rank) in PUBLISHED_IND.items():
        assert round(s.loc["IND", col], 2) == value, col
        assert ranks[col]["IND"] == rank, col
    assert s.loc["IND", "rank_national"] == 45


def test_example_coin_first_five_rows(example_coin):
    s = example_coin.scores.set_index("uCode")
    assert list(s.index[:5]) == list(PUBLISHED_FIRST5.index)   # units sorted by uCode, as COINr
    got = s.loc[PUBLISHED_FIRST5.index, PUBLISHED_FIRST5.columns]
    np.testing.assert_allclose(signif(got.to_numpy()), PUBLISHED_FIRST5.to_numpy(), rtol=1e-12)


def test_example_coin_group_ranks(example_coin):
    res = example_coin.recompute({"rank.within": "GDPpc_group"})
    s = res.scores.set_index("uCode")
    xl = s[s["GDPpc_group"] == "XL"].sort_values("rank_region")
    assert list(xl.index[:6]) == ["CHE", "NLD", "DNK", "NOR", "SWE", "AUT"]
    np.testing.assert_array_equal(xl["rank_region"][:6], [1, 2, 3, 4, 5, 6])
    lg = s[s["GDPpc_group"] == "L"].sort_values("rank_region")
    assert list(lg.index[:6]) == ["BEL", "MLT", "SVN", "GBR", "CZE", "ESP"]
    # the recompute kept every stage up to the aggregates
    assert res.stages["aggregated"] is example_coin.stages["aggregated"]


def test_example_coin_imputes_every_gap_within_its_group(example_coin):
    raw, imp = example_coin.stage("raw"), example_coin.stage("imputed")
    assert raw.isna().to_numpy().sum() > 0 and not imp.isna().to_numpy().any()
    groups = example_coin.units["EurAsia_group"]
    den = example_coin.stage("denominated")
    for col in den.columns[den.isna().any()]:
        for g in groups.unique():
            rows = (groups == g).to_numpy()
            miss = rows & den[col].isna().to_numpy()
            if miss.any():
                assert imp[col].to_numpy()[miss] == pytest.approx(np.nanmean(den[col].to_numpy()[rows]))
    # cells missing after denomination (LAO has no Energy: Elec and Gas) are imputed and logged too
    assert (example_coin.log["step"] == "impute").sum() == den.isna().to_numpy().sum() == 65


def test_n_imputed_agrees_with_the_audit_log(example_coin):
    # scores.n_imputed must count every imputed cell, including cells that became missing
    # because their denominator is missing (LAO: Energy -> Elec, Gas)
    log = example_coin.log[example_coin.log["step"] == "impute"]
    per_unit = log.groupby("location").size()
    s = example_coin.scores.set_index("uCode")["n_imputed"]
    assert s["LAO"] == per_unit["LAO"], f"LAO: n_imputed {s['LAO']} but {per_unit['LAO']} imputed cells logged"
    assert s.sum() == len(log)


# ============================================================================ Treat() on raw ASEM


@pytest.fixture(scope="module")
def raw_asem(asem):
    _, data = asem
    return data


@pytest.mark.parametrize("icode, status, nwin, after", [
    ("LPI", STATUS_PASS, 0, (-0.3042681, -0.6567514)),
    ("Flights", STATUS_WINSORISED, 1, (1.900658, 3.336065)),
    ("Ship", STATUS_PASS, 0, (-0.5756680, -0.6814795)),
    ("Bord", STATUS_WINSORISED, 1, (1.899211, 4.346298)),
    ("Elec", STATUS_WINSORISED, 1, (1.717744, 2.586062)),
    ("Gas", STATUS_WINSORISED, 1, (1.602518, 1.525576)),
    ("ConSpeed", STATUS_PASS, 0, (0.4622037, 0.1873214)),
    ("Cov4G", STATUS_PASS, 0, (-1.3725191, 0.5419314)),
    ("Goods", STATUS_WINSORISED, 2, (1.140608, 0.1572047)),
    ("Services", STATUS_PASS, 0, (1.7010849, 2.3756557)),
])
def test_treat_dets_table_on_raw_asem(raw_asem, icode, status, nwin, after):
    t = treat_column(raw_asem[icode].to_numpy())
    assert t.status == status
    assert t.n_winsorised == nwin
    assert (t.skew_after, t.kurt_after) == pytest.approx(after, abs=5e-7)


def test_treat_before_values_on_raw_asem(raw_asem):
    before = {"Flights": (2.1032872, 4.5088794), "Bord": (2.1482360, 5.7914905), "Elec": (2.2252736, 5.7910268),
              "Gas": (2.8294486, 10.3346494), "Goods": (2.6499733, 8.2666095)}
    for icode, sk in before.items():
        t = treat_column(raw_asem[icode].to_numpy())
        assert (t.skew, t.kurt) == pytest.approx(sk, abs=5e-7), icode


def test_treat_winsorised_points_on_raw_asem(raw_asem, asem_paths):
    # "Winsorised points: Flights row 30, Goods rows 11 and 35 (1-based, original ASEM_iData order)"
    original = pd.read_csv(asem_paths[0])
    for icode, rows in {"Flights": [30], "Goods": [11, 35]}.items():
        x = original[icode].to_numpy(dtype=float)
        t = treat_column(x)
        changed = np.flatnonzero(np.clip(x, t.lower, t.upper) != x) + 1
        assert changed.tolist() == rows, icode


def test_treat_goods_with_winmax_1_falls_back_to_log(raw_asem):
    x = raw_asem["Goods"].to_numpy()
    kept = treat_column(x, winmax=1, log_fallback=False)
    assert kept.n_winsorised == 1
    assert (kept.skew_after, kept.kurt_after) == pytest.approx((2.469910, 7.087309), abs=5e-7)
    logged = treat_column(x, winmax=1)
    assert logged.status == STATUS_LOG
    assert (logged.skew_after, logged.kurt_after) == pytest.approx((0.03104001, -0.8888965), abs=5e-8)


def test_treat_flights_with_winmax_0_logs_the_original(raw_asem):
    t = treat_column(raw_asem["Flights"].to_numpy(), winmax=0)
    assert t.status == STATUS_LOG
    assert (t.skew, t.kurt) == pytest.approx((2.103287, 4.508879), abs=5e-7)
    assert (t.skew_after, t.kurt_after) == pytest.approx((-0.09502644, -0.8305217), abs=5e-8)


def test_qtreat_with_tighter_thresholds(raw_asem):
    # qTreat(df1, winmax = 1, skew_thresh = 1.5, kurt_thresh = 3)
    f = treat_column(raw_asem["Flights"].to_numpy(), winmax=1, skew_thresh=1.5, kurt_thresh=3, log_fallback=False)
    assert (f.n_winsorised, f.skew_after, f.kurt_after) == pytest.approx((1, 1.900658, 3.336065), abs=5e-7)
    f = treat_column(raw_asem["Flights"].to_numpy(), winmax=1, skew_thresh=1.5, kurt_thresh=3)
    assert f.status == STATUS_LOG and (f.skew_after, f.kurt_after) == pytest.approx((-0.09502644, -0.8305217),
                                                                                      abs=5e-8)
    g = treat_column(raw_asem["Goods"].to_numpy(), winmax=1, skew_thresh=1.5, kurt_thresh=3)
    assert g.status == STATUS_LOG and (g.skew_after, g.kurt_after) == pytest.approx((0.03104001, -0.8888965),
                                                                                      abs=5e-8)


def test_treatment_through_the_pipeline_on_raw_asem(asem):
    # Treat(coin, dset = "Raw"): no denomination, no imputation
    spec, data = asem
    spec = spec.with_changes({f"indicators.{i.id}.denominator": None for i in spec.indicators if i.denominator})
    res = compute(data, spec)
    t = res.treatment.set_index("indicator")
    assert t.loc["Flights", "status"] == "winsorised" and t.loc["Flights", "n_winsorised"] == 1
    assert t.loc["Goods", "n_winsorised"] == 2
    assert t.loc["Goods", "skew_after"] == pytest.approx(1.140608, abs=5e-7)
    assert t.loc["LPI", "status"] == "pass"
    logged = res.log[(res.log["step"] == "treat") & (res.log["column"] == "Goods")]
    assert len(logged) == 2 and (logged["action"] == "winsorised").all()


# ============================================================================ other COINr examples


def test_normalise_with_individual_specs_on_raw_asem(asem):
    # LPI: n_borda (= rank - 1); Flights: n_zscore with m_sd = c(10, 2); the rest min-max 0-100; Raw data
    spec, data = asem
    changes = {f"indicators.{i.id}.denominator": None for i in spec.indicators if i.denominator}
    changes.update({"treat.method": "none", "indicators.LPI.normalise": {"method": "rank"},
                    "indicators.Flights.normalise": {"method": "zscore", "m": 10, "s": 2}})
    norm = compute(data, spec.with_changes(changes)).stage("normalised").droplevel("Time")
    borda = {"AUS": 36, "AUT": 44, "BEL": 45, "BGD": 4, "BGR": 7, "BRN": 9, "CHE": 42, "CHN": 30, "CYP": 14,
             "CZE": 31}
    flights = {"AUS": 9.889993, "AUT": 9.588735, "BEL": 9.711512, "BGD": 8.529810, "BGR": 8.741971,
               "BRN": 8.433044, "CHN": 13.235114, "CYP": 8.721372, "CZE": 9.001961}
    ship = {"AUS": 66.14497, "AUT": 0, "BEL": 97.14314, "BGD": 45.80661, "BGR": 37.40495, "BRN": 35.38920,
            "CHE": 0, "CHN": 100, "CYP": 55.21211, "CZE": 0}
    assert {u: norm.loc[u, "LPI"] - 1 for u in borda} == borda
    assert {u: round(norm.loc[u, "Flights"], 6) for u in flights} == flights
    assert {u: round(norm.loc[u, "Ship"], 5) for u in ship} == ship


def test_harmonic_mean_data_frame_example(asem_paths, make_spec):
    # X <- Normalise(ASEM_iData[12:15], global_specs = list(f_n = "n_minmax", f_n_para = list(l_u = c(1,100))))
    # Aggregate(X, f_ag = "a_hmean", f_ag_para = list(w = c(1,1,2,1)))
    raw = pd.read_csv(asem_paths[0])
    cols = ["LPI", "Flights", "Ship", "Bord"]
    assert list(raw.columns[11:15]) == cols
    spec = make_spec(cols, weights={"Ship": 2}, normalise={"method": "minmax", "l": 1, "u": 100},
                     levels=[{"method": "harmonic"}])
    df = raw[cols].copy()
    df.insert(0, "loc", [f"U{i:03d}" for i in range(len(df))])  # keep ASEM_iData row order
    res = compute(df, spec, check=False)
    published = np.array([[94.1, 14.20, 1.0, 29.4, 2.36], [94.6, 15.60, 97.2, 40.0, 41.50],
                          [35.0, 4.89, 38.0, 15.6, 14.30], [51.2, 4.90, 59.2, 34.3, 17.40],
                          [43.7, 4.66, 55.7, 1.0, 3.93]])
    got = np.column_stack([res.stage("normalised").to_numpy()[:5], res.scores["I"].to_numpy()[:5]])
    np.testing.assert_allclose(signif(got), published, rtol=1e-12)
    # the same through the aggregation function itself
    y = weighted_mean(res.stage("normalised").to_numpy(), np.array([1.0, 1.0, 2.0, 1.0]), "harmonic")
    np.testing.assert_allclose(y, res.scores["I"], rtol=1e-12)


def test_a_hand_made_coin(tmp_path):
    """A 5-unit, 3-indicator iData/iMeta pair whose index is computed by hand."""
    idata = pd.DataFrame({
        "uCode": ["A", "B", "C", "D", "E"], "uName": ["Ay", "Bee", "Cee", "Dee", "Ee"],
        "Grp": ["g1", "g1", "g2", "g2", "g2"], "Pop": [10.0, 20.0, 10.0, 40.0, 20.0],
        "x1": [1.0, 2.0, 3.0, 4.0, 5.0],        # min-max: 0, 25, 50, 75, 100
        "x2": [50.0, 40.0, 30.0, 20.0, 10.0],   # direction -1: 0, 25, 50, 75, 100
        "x3": [10.0, 30.0, 20.0, 40.0, 20.0],   # / Pop = 1, 1.5, 2, 1, 1 -> 0, 50, 100, 0, 0
    })
    imeta = pd.DataFrame({
        "Level": [1, 1, 1, 2, 2, 3, np.nan, np.nan],
        "iCode": ["x1", "x2", "x3", "P1", "P2", "Idx", "Grp", "Pop"],
        "iName": ["one", "two", "three", "Pillar 1", "Pillar 2", "Index", "Group", "Population"],
        "Direction": [1, -1, 1, np.nan, np.nan, np.nan, np.nan, np.nan],
        "Weight": [1, 3, 1, 1, 2, 1, np.nan, np.nan],
        "Denominator": [np.nan, np.nan, "Pop", np.nan, np.nan, np.nan, np.nan, np.nan],
        "Parent": ["P1", "P1", "P2", "Idx", "Idx", np.nan, np.nan, np.nan],
        "Type": ["Indicator", "Indicator", "Indicator", "Aggregate", "Aggregate", "Aggregate", "Group",
                 "Denominator"],
    })
    idata.to_csv(tmp_path / "iData.csv", index=False)
    imeta.to_csv(tmp_path / "iMeta.csv", index=False, na_rep="")
    spec, data = read_coinr(tmp_path / "iData.csv", tmp_path / "iMeta.csv", name="hand")
    assert [lv.name for lv in spec.levels] == ["Indicator", "Pillar", "Index"]
    assert spec.within() == "Grp"
    res = compute(data, spec)
    s = res.scores.set_index("uCode")
    p1 = (np.array([0, 25, 50, 75, 100]) * 1 + np.array([0, 25, 50, 75, 100]) * 3) / 4
    p2 = np.array([0, 50, 100, 0, 0])
    idx = (p1 * 1 + p2 * 2) / 3
    np.testing.assert_allclose(s["P1"], p1)
    np.testing.assert_allclose(s["P2"], p2)
    np.testing.assert_allclose(s["Idx"], idx)
    assert s["rank_national"].tolist() == [5, 2, 1, 4, 3]
    assert s["rank_region"].tolist() == [2, 1, 1, 3, 2]
    assert s["uName"].tolist() == ["Ay", "Bee", "Cee", "Dee", "Ee"]
