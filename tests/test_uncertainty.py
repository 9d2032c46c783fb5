"""The uncertainty analysis (``stability.uncertainty``) and its spec section (``uncertainty:``).

What is checked: the spec section (YAML round trip, changes, one-line errors naming the option);
the vectorised engine against the pipeline (the aggregation against ``stability.aggregate``, each
configuration against ``compute`` with the changed spec, a whole run against a naive loop);
reproducibility (same seed and any chunking or a Dask cluster give the same bytes); intervals
and category shares on toy cases whose distribution is known; the key-informant bootstrap
(informants who all agree leave no noise, planted changes are found, resampling noise is
rarely called a change, single informants are flagged); the tables and files; the model
function of the Sobol analysis; and the benchmark script.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st_

import stability as st
from stability import uncertainty as unc
from stability.exceptions import ParameterError, SpecError
from stability.spec import spec_from_dict

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- data
def _subset(data, spec, n_locations: int = 60, rounds=(1, 2)):
    """The first ``n_locations`` locations of the embedded survey, in some rounds."""
    c = spec.columns
    a = data.answers
    keep = sorted(a[c.location].unique())[:n_locations]
    in_rounds = a[c.round].astype(str).isin([str(r) for r in rounds])
    answers = a[a[c.location].isin(keep) & in_rounds].reset_index(drop=True)
    pop = data.population
    population = pop[pop[c.location].isin(keep) & pop[c.round].astype(str).isin([str(r) for r in rounds])]
    return replace(data, answers=answers, population=population.reset_index(drop=True), outcomes=None)


def _two_rounds(data, spec, n_locations: int = 120, seed: int = 3, same: bool = False):
    """Round 1 of some locations, and a round 2 that meets their informants again.

    ``same``: the very same answers; else each location's round-2 informants are drawn with
    replacement from its round-1 informants (no real change, a new sample).
    """
    c = spec.columns
    a = data.answers
    first = a[a[c.round].astype(str) == "1"]
    keep = sorted(first[c.location].unique())[:n_locations]
    r1 = first[first[c.location].isin(keep)].reset_index(drop=True).copy()
    rng = np.random.default_rng(seed)
    if same:
        r2 = r1.copy()
    else:
        r2 = pd.concat([g.iloc[rng.integers(0, len(g), len(g))] for _, g in r1.groupby(c.location, sort=True)],
                       ignore_index=True)
    r1[c.round], r2[c.round] = 1, 2
    r2[c.key_informant] = [f"KI{k}" for k in range(len(r2))]
    pop = data.population
    pop1 = pop[(pop[c.round].astype(str) == "1") & pop[c.location].isin(keep)]
    population = pd.concat([pop1.assign(**{c.round: 1}), pop1.assign(**{c.round: 2})], ignore_index=True)
    return replace(data, answers=pd.concat([r1, r2], ignore_index=True), population=population, outcomes=None)


@pytest.fixture(scope="module")
def small(mali_data, mali_spec):
    """60 locations of the embedded survey in rounds 1 and 2, and their index."""
    data = _subset(mali_data, mali_spec)
    return data, mali_spec, st.compute(data, mali_spec)


def _index(result) -> np.ndarray:
    return result.stage("aggregated")[result.spec.root.id].to_numpy(dtype=float)


def _without(spec, indicator: str):
    """The spec without one indicator (what leaving it out means)."""
    d = spec.model_dump(mode="python")
    d["indicators"] = [i for i in d["indicators"] if i["id"] != indicator]
    return spec_from_dict(d)


# --------------------------------------------------------------------------- the spec section
def test_the_section_round_trips_through_yaml_and_changes_no_number(mali_spec, small):
    import yaml

    spec = mali_spec.with_changes({
        "uncertainty.runs": 200, "uncertainty.seed": 9, "uncertainty.sources": ["choices"],
        "uncertainty.weights": {"method": "dirichlet", "concentration": 4},
        "uncertainty.normalise": ["minmax", {"method": "minmax", "l": 1, "u": 100}],
        "uncertainty.aggregate": "geometric", "uncertainty.winmax": [1, 3, "none"], "uncertainty.impute": True,
        "uncertainty.leave_one_out": True, "uncertainty.level": 0.8, "uncertainty.robust": 0.75,
    })
    text = spec.to_yaml()
    again = spec_from_dict(yaml.safe_load(text))
    assert again.hash == spec.hash and again.uncertainty == spec.uncertainty
    assert again.uncertainty.aggregate == ["geometric"] and again.uncertainty.winmax == [1, 3, "none"]
    assert mali_spec.with_changes({"uncertainty.runs": 10}).uncertainty.runs == 10
    assert mali_spec.with_changes({"uncertainty.weights": "none"}).uncertainty.weights.method == "none"
    # an option of the analysis changes no number of the index: nothing is recomputed
    _, _, result = small
    changed = result.recompute({"uncertainty.runs": 10, "uncertainty.normalise": ["minmax"]})
    assert changed.stage("aggregated") is result.stage("aggregated")
    assert changed.spec.hash != result.spec.hash


@pytest.mark.parametrize("option, value, words", [
    ("runs", 1, "at least 2"),
    ("runs", "many", "integer"),
    ("seed", -1, "0 or more"),
    ("level", 1.2, "between 0 and 1"),
    ("robust", 0, "above 0"),
    ("chunk_mb", 0, "positive"),
    ("sources", ["choices", "opinions"], "unknown source 'opinions'"),
    ("sources", [], "at least one"),
    ("weights", {"method": "noise", "noise": 1.5}, "below 1"),
    ("weights", {"method": "random"}, "noise"),
    ("weights", {"method": "dirichlet", "concentration": 0}, "above 0"),
    ("normalise", ["logistic"], "unknown normalisation method 'logistic'"),
    ("normalise", [{"method": "minmax", "lower": 1}], "unknown option 'lower'"),
    ("normalise", [3], "method names"),
    ("aggregate", ["generalised"], "needs 'p'"),
    ("aggregate", ["median"], "unknown aggregation method 'median'"),
    ("winmax", [-2], "0 or more"),
    ("winmax", ["all"], "whole numbers"),
    ("impute", ["knn"], "unknown imputation method 'knn'"),
    ("impute", [], "at least one alternative"),
])
def test_an_invalid_option_is_one_line_naming_it(mali_result, mali_spec, option, value, words):
    with pytest.raises(SpecError) as run_error:
        unc.run(mali_result, progress=False, **{option: value})
    with pytest.raises(SpecError) as yaml_error:
        spec_from_dict({**mali_spec.model_dump(mode="json"), "uncertainty": {option: value}})
    for err in (run_error, yaml_error):
        text = str(err.value)
        assert "\n" not in text and words in text, text
        assert err.value.column.startswith(f"uncertainty.{option}"), err.value.column


@pytest.mark.parametrize("options, words", [
    ({"normalise": ["zscore"]}, "alternative 'zscore'"),                  # no fixed range: not the categories' scale
    ({"normalise": [{"method": "minmax", "u": 10}]}, "outside the index's range"),  # cut-off 40 outside 0-10
    ({"aggregate": ["copeland"]}, "alternative 'copeland'"),              # counts, not scores on the scale
    ({"impute": [{"method": "group_mean", "group": None}]}, "needs 'group'"),
    ({"impute": [{"method": "group_median", "group": "nowhere"}]}, "no column 'nowhere'"),
    ({"bogus": 1}, "unknown option 'bogus'"),
])
def test_an_alternative_that_does_not_suit_the_index_is_refused_naming_the_option(mali_result, options, words):
    with pytest.raises(SpecError) as err:
        unc.run(mali_result, progress=False, sources=["choices"], **options)
    text = str(err.value)
    assert "\n" not in text and words in text and "uncertainty." in text, text


def test_informants_need_answers_per_informant(make_spec, make_frame):
    X = make_frame([[1.0, 2.0, 3.0], [2.0, 1.0, 0.0], [3.0, 3.0, 1.0], [0.0, 1.0, 2.0]])
    result = st.compute(X, make_spec())
    with pytest.raises(SpecError, match="one row per key informant") as err:
        unc.run(result, runs=5, sources=["informants"], progress=False)
    assert err.value.column == "uncertainty.sources"
    # by default, data without informants vary the modelling choices only
    u = unc.run(result, runs=5, progress=False)
    assert u.summary["sources"].tolist() == ["choices"] and not u.locations["single_informant"].any()


# --------------------------------------------------------------------------- the engine against the pipeline
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st_.data())
def test_the_vectorised_aggregation_is_the_aggregation(make_spec, make_frame, data):
    """Batched means of replicates with their own weights = ``stability.aggregate.aggregate`` of each."""
    from stability.aggregate import aggregate

    n = data.draw(st_.integers(4, 12), label="units")
    cells = data.draw(st_.lists(st_.one_of(st_.none(), st_.floats(0, 10, allow_nan=False)), min_size=4 * n,
                                max_size=4 * n), label="values")
    X = np.array([np.nan if v is None else v for v in cells]).reshape(n, 4)
    X[0], X[1] = [0, 0, 0, 0], [10, 10, 10, 10]  # every indicator has a range
    method, p = data.draw(st_.sampled_from([("arithmetic", None), ("geometric", None), ("harmonic", None),
                                            ("generalised", 2.0), ("generalised", -1.0)]), label="method")
    threshold = data.draw(st_.sampled_from([None, 0.5, 0.75]), label="threshold")
    spec = make_spec(("a", "b", "c", "d"), {"a": "P", "b": "P", "c": "Q", "d": "Q"},
                     normalise={"method": "minmax", "l": 1, "u": 100},
                     levels=[{"method": method, "p": p, "threshold": threshold}, {"method": method, "p": p}])
    result = st.compute(make_frame(X, columns=("a", "b", "c", "d")), spec)
    configs = []
    for _ in range(3):
        w = data.draw(st_.lists(st_.floats(0.05, 3), min_size=6, max_size=6), label="weights")
        cfg = {f"indicators.{x}.weight": v for x, v in zip("abcd", w)}
        cfg |= {"aggregates.P.weight": w[4], "aggregates.Q.weight": w[5]}
        configs.append(cfg)
    left = data.draw(st_.sampled_from([None, "a", "d"]), label="left out")
    if left:
        configs.append({**configs[0], "leave_out": left})
    got = unc.index_scores(result, configs)
    normalised = result.stage("normalised")
    for cfg, row in zip(configs, got):
        changes = {k: v for k, v in cfg.items() if k != "leave_out"}
        changed = spec.with_changes(changes)
        values = normalised
        if "leave_out" in cfg:
            changed = _without(changed, cfg["leave_out"])
            values = normalised.drop(columns=cfg["leave_out"])
        scores, ids = aggregate(values.to_numpy(), list(values.columns), changed)
        np.testing.assert_allclose(row, scores[ids.index("I")], rtol=1e-12, atol=1e-9, equal_nan=True)


def test_each_configuration_equals_compute_with_the_changed_spec(small):
    """COINr's get_sensitivity check: the engine's index of a configuration is the ordinary one."""
    data, spec, result = small
    weights = {"indicators.robbery.weight": 2.5, "indicators.electricity.weight": 0.2, "aggregates.safety.weight": 0.5}
    on_1_100 = {"normalise.method": "minmax", "normalise.l": 1, "normalise.u": 100}
    configs = [
        {},
        {"treat.winmax": 1},
        {"treat.method": "none"},
        {"normalise.method": "minmax"},
        {"normalise.method": "percentile"},
        {"impute.method": "median"},
        {"impute.method": "none"},
        weights,
        {**on_1_100, "levels.2.method": "geometric", "levels.3.method": "geometric"},
        {**on_1_100, "levels.2.method": "harmonic", "levels.3.method": "harmonic", "treat.winmax": 2},
        {**weights, "levels.2.method": "generalised", "levels.2.p": 2, "levels.3.method": "generalised",
         "levels.3.p": 2, "normalise.method": "minmax", "treat.method": "none"},
    ]
    got = unc.index_scores(result, configs)
    for cfg, row in zip(configs, got):
        expected = st.compute(data, spec.with_changes(cfg), check=False)
        np.testing.assert_allclose(row, _index(expected), rtol=0, atol=1e-9, equal_nan=True, err_msg=str(cfg))
    # leaving an indicator out is computing without it
    got = unc.index_scores(result, [{"leave_out": "robbery"}, {**weights, "leave_out": "electricity"}])
    for left, cfg, row in [("robbery", {}, got[0]), ("electricity", weights, got[1])]:
        expected = st.compute(data, _without(spec.with_changes(cfg), left), check=False)
        np.testing.assert_allclose(row, _index(expected), rtol=0, atol=1e-9, equal_nan=True)


def test_positive_means_map_a_range_from_zero_onto_1_100_and_back(small):
    data, spec, _ = small
    spec = spec.with_changes({"normalise.method": "minmax", "normalise.scope": "round"})  # 0-100 in every round
    result = st.compute(data, spec, check=False)
    geometric = {"levels.2.method": "geometric", "levels.3.method": "geometric"}
    got = unc.index_scores(result, [geometric])[0]
    on_1_100 = st.compute(data, spec.with_changes({**geometric, "normalise.l": 1}), check=False)
    np.testing.assert_allclose(got, (_index(on_1_100) - 1) / 99 * 100, atol=1e-9, equal_nan=True)
    assert np.nanmin(got) >= 0 and np.nanmax(got) <= 100


def test_copeland_runs_through_the_registry(make_spec, make_frame):
    X = make_frame([[1.0, 2.0, 3.0], [2.0, np.nan, 1.0], [3.0, 1.0, 2.0], [0.0, 0.0, 1.0], [2.0, 2.0, 2.0]])
    spec = make_spec(normalise={"method": "none"}, levels=[{"method": "copeland"}], categories={"method": "quantile"})
    result = st.compute(X, spec)
    cfg = {"indicators.a.weight": 3.0, "indicators.c.weight": 0.5}
    got = unc.index_scores(result, [{}, cfg])
    np.testing.assert_array_equal(got[0], _index(result))
    np.testing.assert_array_equal(got[1], _index(st.compute(X, spec.with_changes(cfg))))


def test_a_run_equals_the_naive_loop(small):
    """Every replicate of a run is ``compute`` with its choices: same index, ranks, shares and intervals."""
    data, spec, result = small
    u = unc.run(result, runs=16, seed=3, sources=["choices"], normalise=["minmax"], winmax=[2, "none"],
                aggregate=[{"method": "generalised", "p": 2}], impute=["median"], leave_one_out=True,
                progress=False)
    assert len(u.configs) == 16 and len(set(map(str, u.configs))) == 16
    index, ranks, ranks_region, cats = [], [], [], []
    for cfg in u.configs:
        cfg = dict(cfg)
        left = cfg.pop("leave_out", None)
        changed = spec.with_changes(cfg)
        expected = st.compute(data, changed if left is None else _without(changed, left), check=False)
        index.append(_index(expected))
        ranks.append(expected.ranks["rank_national"].to_numpy())
        ranks_region.append(expected.ranks["rank_region"].to_numpy())
        cats.append(expected.ranks["category"].astype(object).to_numpy())
    index, ranks, ranks_region = np.array(index), np.array(ranks), np.array(ranks_region)
    assert (u.runs["leave_out"] != "").sum() > 8  # (25 indicators and none: most runs leave one out)
    np.testing.assert_allclose(u.replicates["index"], index, atol=1e-4, equal_nan=True)  # kept as float32
    np.testing.assert_array_equal(u.replicates["rank"], np.nan_to_num(ranks).astype(int))
    np.testing.assert_array_equal(u.replicates["rank_region"], np.nan_to_num(ranks_region).astype(int))
    loc = u.locations
    for label in spec.categories.labels:
        np.testing.assert_allclose(loc[f"p_{label}"], (np.array(cats) == label).mean(axis=0))
    low, med, high = np.quantile(ranks, [0.05, 0.5, 0.95], axis=0)
    np.testing.assert_allclose(loc["rank_low"], low)
    np.testing.assert_allclose(loc["rank_median"], med)
    np.testing.assert_allclose(loc["rank_high"], high)
    shift = np.abs(ranks - result.ranks["rank_national"].to_numpy()[None, :]).mean(axis=1)
    np.testing.assert_allclose(u.runs["rank_shift"], shift)


# --------------------------------------------------------------------------- reproducibility
def test_the_same_seed_gives_the_same_bytes_whatever_the_chunks(small, tmp_path):
    _, _, result = small
    opts = dict(runs=24, seed=5, normalise=["minmax"], winmax=[1, "none"], aggregate=[{"method": "generalised", "p": 2}],
                progress=False)
    first = unc.run(result, **opts).write(tmp_path / "a.csv")
    again = unc.run(result, **opts).write(tmp_path / "b.csv")
    chunked = unc.run(result, chunk_mb=0.05, **opts).write(tmp_path / "c.csv")  # a replicate or two per chunk
    other = unc.run(result, **{**opts, "seed": 6}).write(tmp_path / "d.csv")
    for a, b, c in zip(first, again, chunked):
        assert a.read_bytes() == b.read_bytes() == c.read_bytes(), a.name
    assert first[0].read_bytes() != other[0].read_bytes()


def test_a_dask_cluster_gives_identical_tables(small):
    distributed = pytest.importorskip("distributed")
    _, _, result = small
    opts = dict(runs=12, seed=2, normalise=["percentile"], winmax=[3], chunk_mb=0.05, progress=False)
    local = unc.run(result, **opts)
    with distributed.LocalCluster(n_workers=2, processes=False, threads_per_worker=1, dashboard_address=None) as c:
        remote = unc.run(result, scheduler=c.scheduler_address, **opts)
    for name in ("locations", "summary", "runs"):
        pd.testing.assert_frame_equal(getattr(local, name), getattr(remote, name), check_exact=True)
    assert local.configs == remote.configs


# --------------------------------------------------------------------------- known answers
def test_weight_noise_gives_the_known_distribution(make_spec, make_frame):
    """Two locations, each best on one of two indicators: with weights ``1 + 0.5 U(-1, 1)`` the index of the
    first is ``100 w_a / (w_a + w_b)``, high (>= 60) with probability 3/16, and its 5 % quantile is
    ``100 c / (1 + c)`` with ``1.125 c^2 - 0.8 c + 0.125 = 0`` (c = 0.47928): 32.40."""
    result = st.compute(make_frame([[1.0, 0.0], [0.0, 1.0]], columns=("a", "b")), make_spec(("a", "b")))
    u = unc.run(result, runs=4000, seed=11, sources=["choices"], weights={"noise": 0.5}, progress=False)
    first = u.locations.iloc[0]
    assert first["p_high"] == pytest.approx(3 / 16, abs=0.025)
    assert first["p_low"] == pytest.approx(3 / 16, abs=0.025)
    assert first["p_medium"] == pytest.approx(10 / 16, abs=0.03)
    c = (0.8 + np.sqrt(0.64 - 0.5625)) / 2.25
    assert first["index_low"] == pytest.approx(100 * c / (1 + c), abs=0.6)
    assert first["index_high"] == pytest.approx(100 - 100 * c / (1 + c), abs=0.6)
    assert first["index_median"] == pytest.approx(50, abs=0.6)
    # each location ranks first in half of the runs: its rank interval is [1, 2], never robust
    assert (u.locations["rank_low"] == 1).all() and (u.locations["rank_high"] == 2).all()
    assert u.locations["robust_category"].isna().all()
    # Dirichlet shares with concentration 1 and two equal weights: the share of a is uniform on [0, 1]
    u = unc.run(result, runs=4000, seed=11, sources=["choices"], weights="dirichlet", progress=False)
    first = u.locations.iloc[0]
    assert first["p_high"] == pytest.approx(0.4, abs=0.03) and first["p_medium"] == pytest.approx(0.2, abs=0.03)
    assert first["index_low"] == pytest.approx(5, abs=1.2) and first["index_high"] == pytest.approx(95, abs=1.2)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st_.lists(st_.tuples(st_.floats(0, 10), st_.floats(0, 10), st_.floats(0, 10)), min_size=3,
                        max_size=15),
       noise=st_.floats(0, 0.9), level=st_.floats(0.5, 0.98), seed=st_.integers(0, 2**31))
def test_invariants_of_the_tables(make_spec, make_frame, values, noise, level, seed):
    X = np.array(values)
    X[0], X[1] = 0, 10
    result = st.compute(make_frame(X), make_spec())
    u = unc.run(result, runs=30, seed=seed, weights={"noise": noise}, level=level, progress=False)
    loc = u.locations
    assert (loc["rank_low"] <= loc["rank_median"]).all() and (loc["rank_median"] <= loc["rank_high"]).all()
    assert (loc["index_low"] <= loc["index_high"] + 1e-5).all()
    assert ((loc["rank_low"] >= 1) & (loc["rank_high"] <= len(loc))).all()
    shares = loc[["p_low", "p_medium", "p_high"]]
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    robust = loc["robust_category"].notna()
    assert (shares.max(axis=1)[robust] >= 0.9).all() and (shares.max(axis=1)[~robust] < 0.9).all()
    if noise == 0:  # nothing varies: every interval is the nominal value
        assert (loc["rank_low"] == loc["rank"]).all() and (loc["rank_high"] == loc["rank"]).all()
        assert robust.all() and (loc["robust_category"].astype(str) == loc["category"].astype(str)).all()
    assert len(u.runs) == 30 and u.summary["runs"].tolist() == [30]


# --------------------------------------------------------------------------- the key-informant bootstrap
def test_informants_who_all_agree_leave_no_noise(mali_data, mali_spec):
    data = _two_rounds(mali_data, mali_spec, 40)
    c = mali_spec.columns
    a = data.answers.copy()
    lead = a.groupby([c.location, c.round], sort=False).cumcount() == 0
    first = a[lead].set_index([c.location, c.round])[mali_spec.indicator_ids]
    a[mali_spec.indicator_ids] = first.reindex(pd.MultiIndex.from_frame(a[[c.location, c.round]])).to_numpy()
    result = st.compute(replace(data, answers=a), mali_spec, check=False)
    u = unc.run(result, runs=20, sources="informants", progress=False)
    loc = u.locations
    assert (loc["rank_low"] == loc["rank"]).all() and (loc["rank_high"] == loc["rank"]).all()
    assert (loc["rank_region_low"] == loc["rank_region"]).all()
    np.testing.assert_allclose(loc["index_low"], loc["index"], atol=1e-4)
    np.testing.assert_allclose(loc["index_high"], loc["index"], atol=1e-4)
    moved = loc[loc["change"].notna()]
    assert len(moved) == 40
    np.testing.assert_allclose(moved["change_low"], moved["change"], atol=1e-4)
    assert (moved["beyond_noise"] == (moved["change"] != 0)).all()
    assert (u.summary["robust_share"] == 1).all()


def test_planted_changes_are_found_and_resampling_noise_is_rarely_a_change(mali_data, mali_spec):
    c = mali_spec.columns
    # the very same answers twice: no change at all
    same = st.compute(_two_rounds(mali_data, mali_spec, 120, same=True), mali_spec, check=False)
    loc = unc.run(same, runs=100, sources="informants", progress=False).locations
    loc = loc[loc[c.round] == 2]
    assert (loc["change"] == 0).all() and not loc["beyond_noise"].any()
    # the same informants met again (a new sample of them): changes are resampling noise, and at a level of
    # 0.90 at most about 10 % are called beyond noise (the percentile bootstrap is conservative here: 2-3 %)
    data = _two_rounds(mali_data, mali_spec, 120)
    result = st.compute(data, mali_spec, check=False)
    loc = unc.run(result, runs=100, sources="informants", progress=False).locations
    loc = loc[loc[c.round] == 2]
    assert len(loc) == 120 and (loc["change"] != 0).mean() > 0.5 and loc["beyond_noise"].mean() <= 0.15
    # plant a real fall: in round 2, every informant of 30 locations reports the worst on every yes/no item
    a = data.answers.copy()
    planted = sorted(a[c.location].unique())[::4]
    rows = a[c.location].isin(planted) & (a[c.round] == 2)
    for ind in mali_spec.indicators:
        if ind.answers == "yes_no":
            a.loc[rows, ind.id] = 1 if ind.direction < 0 else 0
    shifted = st.compute(replace(data, answers=a), mali_spec, check=False)
    loc = unc.run(shifted, runs=100, sources="informants", progress=False).locations
    loc = loc[loc[c.round] == 2]
    hit = loc[loc[c.location].isin(planted)]
    fell = hit[hit["change"] < -5]  # (a location already at the worst answers cannot fall)
    assert len(fell) >= 0.8 * len(hit) and fell["beyond_noise"].mean() >= 0.9
    assert (fell["p_change_real"] >= 0.9).mean() >= 0.9
    assert loc[~loc[c.location].isin(planted)]["beyond_noise"].mean() <= 0.15


def test_a_location_with_one_informant_is_flagged_and_does_not_vary(mali_data, mali_spec):
    data = _two_rounds(mali_data, mali_spec, 40)
    c = mali_spec.columns
    a = data.answers
    lone = sorted(a[c.location].unique())[:5]
    drop = a[c.location].isin(lone) & (a[c.round] == 1) & (a.groupby([c.location, c.round]).cumcount() > 0)
    result = st.compute(replace(data, answers=a[~drop].reset_index(drop=True)), mali_spec, check=False)
    u = unc.run(result, runs=30, sources="informants", progress=False)
    loc = u.locations
    flagged = loc[loc["single_informant"]]
    assert sorted(zip(flagged[c.location], flagged[c.round])) == [(x, 1) for x in lone]
    np.testing.assert_allclose(flagged["index_low"], flagged["index"], atol=1e-4)
    np.testing.assert_allclose(flagged["index_high"], flagged["index"], atol=1e-4)
    assert u.summary.set_index("round").loc[1, "single_informant"] == 5


def test_both_sources_together_vary_more_than_either(small):
    _, _, result = small
    shift = {}
    for sources in (["choices"], ["informants"], ["choices", "informants"]):
        u = unc.run(result, runs=60, seed=4, sources=sources, normalise=["minmax"], winmax=True, progress=False)
        shift[tuple(sources)] = u.summary["rank_shift"].mean()
        assert u.summary["sources"].iloc[0] == "+".join(sources)
    assert shift[("choices", "informants")] > max(shift[("choices",)], shift[("informants",)])


# --------------------------------------------------------------------------- tables and files
def test_the_tables_and_files(small, tmp_path):
    _, spec, result = small
    u = unc.run(result, runs=10, normalise=["minmax"], progress=False)
    c = spec.columns
    loc = u.locations
    assert list(loc.columns[:4]) == [c.location, c.round, spec.within(), "index"]
    for col in ("rank", "rank_median", "rank_low", "rank_high", "rank_region", "rank_region_low",
                "rank_region_high", "index_low", "index_high", "p_low", "p_medium", "p_high", "category",
                "robust_category", "single_informant", "change", "change_low", "change_high", "p_change_real",
                "beyond_noise"):
        assert col in loc.columns, col
    assert len(loc) == len(result.scores) and loc[c.location].tolist() == result.scores[c.location].tolist()
    assert u.summary[["round", "runs", "sources", "seed", "spec_hash", "data_version"]].iloc[0].tolist() == [
        1, 10, "choices+informants", 1, result.spec_hash, result.data_version]
    assert set(u.runs["normalise"]) <= {"goalposts", "minmax"} and "rank_shift" in u.runs
    assert u.matches(result) and not u.matches(result.recompute({"indicators.robbery.weight": 2}))
    # Excel: a sheet per table and the notes; CSV and Parquet: the tables side by side
    book = u.write(tmp_path / "u.xlsx")
    sheets = pd.read_excel(book[0], sheet_name=None)
    assert list(sheets) == ["locations", "summary", "runs", "notes"]
    notes = dict(zip(sheets["notes"]["item"], sheets["notes"]["value"]))
    assert notes["spec hash"] == result.spec_hash and "minmax" in notes["normalise alternatives"]
    assert "ILLUSTRATIVE" in notes["WARNING"] and (sheets["locations"]["data_note"].str.contains("ILLUSTRATIVE")).all()
    files = u.write(tmp_path / "u.parquet")
    assert [f.name for f in files] == ["u.parquet", "u.summary.parquet", "u.runs.parquet", "u.notes.parquet"]
    back = pd.read_parquet(files[0])
    assert len(back) == len(loc) and back["rank_high"].tolist() == loc["rank_high"].tolist()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left behind
    with pytest.raises(ParameterError, match="suffix"):
        u.write(tmp_path / "u.txt")


# --------------------------------------------------------------------------- the model of the Sobol analysis
def test_evaluate_is_the_model_of_the_sobol_analysis(small):
    from stability import sensitivity as sa

    _, spec, result = small
    names = unc.output_names(result)
    regions = sorted(result.scores[spec.within()].unique())
    assert names == ["rank_shift:1", "rank_shift:2"] + [f"median_index:{r}" for r in regions]
    nominal = unc.evaluate(result, [{}])[0]
    assert (nominal[:2] == 0).all()
    latest = result.scores[result.scores[spec.columns.round] == 2]
    np.testing.assert_allclose(nominal[2:], latest.groupby(spec.within())["stability"].median().reindex(regions))
    # a factor whose options are sets of changes is merged in; a continuous factor is an option path
    factors = [sa.Factor("normalisation", options=({"normalise.method": "goalposts"},
                                                   {"normalise.method": "minmax"})),
               sa.Factor("aggregates.safety.weight", bounds=(0.5, 2.0))]
    table = sa.sobol(factors, lambda configs: unc.evaluate(result, configs), 8, outputs=names, num_resamples=50)
    assert set(table["factor"]) == {"normalisation", "aggregates.safety.weight"} and table["ST"].notna().all()
    with pytest.raises(SpecError, match="prepare"):
        unc.evaluate(result, [{"combine.method": "mean"}])
    with pytest.raises(SpecError, match="not an indicator"):
        unc.evaluate(result, [{"leave_out": "safety"}])
    with pytest.raises(SpecError):
        unc.evaluate(result, [{"normalise.method": "logistic"}])


# --------------------------------------------------------------------------- the benchmark
def test_the_benchmark_script_runs():
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_uncertainty.py"), "--quick"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "wall time" in p.stdout and "peak memory" in p.stdout and "ratio naive / analysis" in p.stdout


def test_each_location_keeps_its_mean_rank_shift(small):
    """``rank_shift`` / ``rank_region_shift`` per location: the mean absolute shift of its rank over the runs, so
    that a region's own mean rank shift can be told from the saved tables (the summary has only all regions')."""
    _, spec, result = small
    u = unc.run(result, runs=30, seed=5, normalise=["minmax"], winmax=True, progress=False)
    loc = u.locations
    for col, reps, nominal in (("rank_shift", "rank", "rank"), ("rank_region_shift", "rank_region", "rank_region")):
        R = u.replicates[reps].astype(float)
        expected = np.abs(np.where(R > 0, R, np.nan) - loc[nominal].to_numpy(dtype=float)[None, :])
        np.testing.assert_allclose(loc[col].to_numpy(), np.nanmean(expected, axis=0))
    for _, row in u.summary.iterrows():  # every run ranks every location: the means are the summary's
        mine = loc[loc[spec.columns.round] == row["round"]]
        assert mine["rank_region_shift"].mean() == pytest.approx(row["rank_shift_region"])
        assert mine["rank_shift"].mean() == pytest.approx(row["rank_shift"])
