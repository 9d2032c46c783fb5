"""The vectorised key-informant bootstrap (stability.resample).

The central property: replicate ``r`` of :class:`InformantResampler` is the table that
``prepare`` combines from the answers ``change.informant_bootstrap`` resamples in its
replicate ``r`` with the same seed; and :func:`replay` of the nominal values is the
nominal run's normalised stage.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stability.change import informant_sample
from stability.combine import combine
from stability.io import Dataset
from stability.pipeline import compute, prepare
from stability.resample import InformantResampler, Replay, _apply_fitted, _fill_table, combine_stack, replay
from stability.spec import spec_from_dict

FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- helpers
def slow_sample(data, spec, seed: int, r: int):
    """The answers ``change.informant_bootstrap`` resamples in its replicate ``r``."""
    return informant_sample(data, spec)(seed, r)


def slow_values(data, spec, seed: int, r: int) -> pd.DataFrame:
    return prepare(slow_sample(data, spec, seed, r), spec, check=False).values


def ki_spec(n_ind: int = 3, method: str = "median", per_indicator: dict | None = None, rounds: bool = False,
            min_informants: int = 1):
    """A small key-informant spec: indicators ``x0, x1, ...`` of plain numbers straight into the index."""
    per_indicator = per_indicator or {}
    return spec_from_dict({
        "name": "resample",
        "columns": {"location": "loc", "round": "round" if rounds else None, "key_informant": "ki", "admin": []},
        "indicators": [{"id": f"x{j}", "parent": "I", **({"combine": per_indicator[f"x{j}"]}
                                                          if f"x{j}" in per_indicator else {})}
                       for j in range(n_ind)],
        "aggregates": [{"id": "I", "level": 2}],
        "levels": [{"name": "indicator"}, {"name": "index"}],
        "combine": {"method": method, "min_informants": min_informants},
        "treat": {"method": "none"},
        "impute": {"method": "none"},
        "normalise": {"method": "minmax"},
    })


def ki_data(sizes, values: np.ndarray, rounds: bool = False, shuffle_seed: int | None = None) -> Dataset:
    """Answers of locations with ``sizes`` informants each (rows of ``values``), optionally shuffled."""
    n_loc = len(sizes)
    loc = np.repeat([f"L{i // 2 if rounds else i:03d}" for i in range(n_loc)], sizes)
    frame = pd.DataFrame(values, columns=[f"x{j}" for j in range(values.shape[1])])
    frame.insert(0, "loc", loc)
    frame.insert(1, "ki", np.concatenate([np.arange(k) for k in sizes]))
    if rounds:
        frame.insert(1, "round", np.repeat([str(1 + i % 2) for i in range(n_loc)], sizes))
    if shuffle_seed is not None:  # informants of a location need not be adjacent rows
        frame = frame.sample(frac=1.0, random_state=shuffle_seed).reset_index(drop=True)
    return Dataset(answers=frame, name="in-memory answers")


def same(a, b) -> bool:
    return np.array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float), equal_nan=True)


# --------------------------------------------------------------------------- the embedded survey
@pytest.fixture(scope="module")
def resampler(mali_data, mali_spec):
    return InformantResampler(mali_data, mali_spec)


@pytest.mark.parametrize("changes", [{}, {"combine.min_informants": 4}, {"combine.method": "mode"},
                                     {"combine.method": "mean", "indicators.robbery.combine": "mode"}])
def test_replicates_are_the_slow_paths_combined_values(mali_data, mali_spec, changes):
    spec = mali_spec.with_changes(changes)
    prepared = prepare(mali_data, spec, check=False)
    rs = InformantResampler(mali_data, spec, prepared=prepared)
    assert rs.index_.equals(prepared.values.index) and rs.columns_ == spec.indicator_ids
    assert (rs.n_informants_ == prepared.units["n_informants"].to_numpy()).all()
    assert rs.tabulated_.all()  # 3 to 5 informants: every location from the table
    ids = [0, 3, 17]
    drawn = rs.draw(ids, seed=11)
    assert drawn.shape == (3, *prepared.values.shape) and drawn.dtype == np.float64
    for i, r in enumerate(ids):
        slow = slow_values(mali_data, spec, 11, r)
        assert slow.index.equals(rs.index_)
        assert same(drawn[i], slow.to_numpy())
    assert not same(drawn[0], prepared.values.to_numpy())  # a replicate is not the nominal table


def test_replicates_do_not_depend_on_how_they_are_drawn(resampler):
    whole = resampler.draw(6, seed=4)
    assert same(whole, resampler.draw(range(6), seed=4))
    assert same(whole, np.concatenate([resampler.draw([0, 1, 2], 4), resampler.draw([3, 4, 5], 4)]))
    assert same(whole[[5, 2]], resampler.draw([5, 2], seed=4))
    buffer = np.empty((2, *whole.shape[1:]))
    assert resampler.draw([1, 3], seed=4, out=buffer) is buffer and same(buffer, whole[[1, 3]])
    assert not same(whole[0], resampler.draw([0], seed=5)[0])
    with pytest.raises(ValueError, match="C-contiguous float64"):
        resampler.draw([1], seed=4, out=np.empty((2, 3)))


def test_locations_combined_directly_match_the_table(mali_data, mali_spec, resampler):
    prepared = prepare(mali_data, mali_spec, check=False)
    direct = InformantResampler(mali_data, mali_spec, prepared=prepared, table_bytes=0)
    assert not direct.tabulated_.any() and direct.table_nbytes_ < 1000
    some = InformantResampler(mali_data, mali_spec, prepared=prepared, max_patterns=35)  # up to 4 informants
    assert (some.tabulated_ == (some.n_informants_ <= 4)).all()
    expected = resampler.draw([2, 9], seed=1)
    assert same(direct.draw([2, 9], seed=1), expected)
    assert same(some.draw([2, 9], seed=1), expected)


def test_informants_who_all_agree_leave_no_noise(mali_data, mali_spec):
    c = mali_spec.columns
    a = mali_data.answers.copy()
    first = a.groupby([c.location, c.round], sort=False).cumcount() == 0
    lead = a[first].set_index([c.location, c.round])[mali_spec.indicator_ids]
    a[mali_spec.indicator_ids] = lead.reindex(pd.MultiIndex.from_frame(a[[c.location, c.round]])).to_numpy()
    agree = replace(mali_data, answers=a)
    result = compute(agree, mali_spec, check=False)
    nominal = result.prepared.values.to_numpy()
    drawn = InformantResampler(agree, mali_spec, prepared=result.prepared).draw(8, seed=3)
    for rep in drawn:
        assert same(rep, nominal)
    normalised = replay(result, drawn)
    for rep in normalised:
        assert same(rep, result.stage("normalised").to_numpy())


def test_a_location_with_one_informant_never_varies(mali_data, mali_spec):
    c = mali_spec.columns
    a = mali_data.answers
    locs = sorted(a[c.location].unique())[::3]
    keep = ~a[c.location].isin(locs) | (a.groupby([c.location, c.round], sort=False).cumcount() == 0)
    data = replace(mali_data, answers=a[keep].reset_index(drop=True))
    rs = InformantResampler(data, mali_spec)
    single = rs.index_.get_level_values(c.location).isin(locs)
    assert (rs.single_ == single).all() and (rs.n_informants_[single] == 1).all()
    nominal = prepare(data, mali_spec, check=False).values.to_numpy()
    drawn = rs.draw(12, seed=8)
    for rep in drawn:
        assert same(rep[single], nominal[single])
    # the others do vary
    assert any(not same(rep[~single], nominal[~single]) for rep in drawn)
    assert same(drawn[5], slow_values(data, mali_spec, 8, 5).to_numpy())


def test_without_key_informants_there_is_nothing_to_resample(mali_data, mali_spec):
    spec = mali_spec.with_changes({"columns.key_informant": None})
    with pytest.raises(ValueError, match="no key informants to resample"):
        InformantResampler(mali_data, spec)


def test_prepared_values_of_other_answers_are_refused(mali_data, mali_spec):
    c = mali_spec.columns
    a = mali_data.answers
    fewer = replace(mali_data, answers=a[a.groupby([c.location, c.round]).cumcount() < 3].reset_index(drop=True))
    with pytest.raises(ValueError, match="do not come from these answers"):
        InformantResampler(mali_data, mali_spec, prepared=prepare(fewer, mali_spec, check=False))
    other = replace(mali_data, answers=a[a[c.location] != a[c.location].iloc[0]].reset_index(drop=True))
    with pytest.raises(ValueError, match="has no key informant in these answers"):
        InformantResampler(other, mali_spec, prepared=prepare(mali_data, mali_spec, check=False))


# --------------------------------------------------------------------------- small random surveys
@st.composite
def surveys(draw, max_informants: int = 5):
    n_loc = draw(st.integers(1, 12))
    sizes = draw(st.lists(st.integers(1, max_informants), min_size=n_loc, max_size=n_loc))
    n_ind = draw(st.integers(1, 4))
    # few distinct values: ties and repeated answers; fractions: sums that round
    pool = [0.0, 1.0, 2.0, 0.1, 0.7, 2.5, -1.3, np.nan]
    cells = draw(st.lists(st.sampled_from(pool), min_size=sum(sizes) * n_ind, max_size=sum(sizes) * n_ind))
    values = np.array(cells, dtype=float).reshape(sum(sizes), n_ind)
    rounds = draw(st.booleans())
    shuffle = draw(st.one_of(st.none(), st.integers(0, 100)))
    return ki_data(sizes, values, rounds=rounds, shuffle_seed=shuffle), n_ind, rounds


def check_against_slow_path(data, spec, seed, mean_cols=()):
    rs = InformantResampler(data, spec)
    ids = [0, 1, 5]
    drawn = rs.draw(ids, seed=seed)
    for i, r in enumerate(ids):
        slow = slow_values(data, spec, seed, r)
        assert slow.index.equals(rs.index_)
        slow = slow.to_numpy()
        exact = [j for j in range(slow.shape[1]) if j not in mean_cols]
        assert same(drawn[i][:, exact], slow[:, exact])
        if mean_cols:  # sums of fractions added in another order: equal to rounding
            m = list(mean_cols)
            assert (np.isnan(drawn[i][:, m]) == np.isnan(slow[:, m])).all()
            np.testing.assert_allclose(drawn[i][:, m], slow[:, m], rtol=1e-13, atol=1e-15)
    return rs


@FEW
@given(surveys(), st.sampled_from(["median", "mode", "mean"]), st.integers(0, 2**31))
def test_random_surveys_match_the_slow_path(survey, method, seed):
    data, n_ind, rounds = survey
    spec = ki_spec(n_ind, method, rounds=rounds)
    check_against_slow_path(data, spec, seed, mean_cols=range(n_ind) if method == "mean" else ())


@FEW
@given(surveys(), st.integers(0, 2**31))
def test_random_surveys_with_a_combine_rule_per_indicator(survey, seed):
    data, n_ind, rounds = survey
    rules = ["mode", "mean", "median", "mode"]
    spec = ki_spec(n_ind, "median", per_indicator={f"x{j}": rules[j] for j in range(n_ind)}, rounds=rounds)
    check_against_slow_path(data, spec, seed, mean_cols=[j for j in range(n_ind) if rules[j] == "mean"])


@FEW
@given(surveys(max_informants=8), st.sampled_from(["median", "mode", "mean"]), st.integers(0, 2**31))
def test_locations_with_many_informants_are_combined_directly(survey, method, seed):
    data, n_ind, rounds = survey
    spec = ki_spec(n_ind, method, rounds=rounds)
    rs = InformantResampler(data, spec, max_patterns=10)  # up to 3 informants from the table
    assert (rs.tabulated_ == (rs.n_informants_ <= 3)).all()
    drawn = rs.draw([0, 4], seed=seed)
    for i, r in enumerate([0, 4]):
        slow = slow_values(data, spec, seed, r).to_numpy()
        if method == "mean":
            assert (np.isnan(drawn[i]) == np.isnan(slow)).all()
            np.testing.assert_allclose(drawn[i], slow, rtol=1e-13, atol=1e-15)
        else:
            assert same(drawn[i], slow)


def test_two_spellings_of_a_round_are_resampled_as_the_slow_path_does():
    """``informant_bootstrap`` resamples within each spelling (``1``, ``1.0``), ``prepare`` combines them as one
    round: such locations are combined directly from their drawn informants."""
    rng = np.random.default_rng(3)
    rows = [{"loc": f"L{loc}", "round": rnd, "ki": ki, "x0": rng.choice([0.0, 1.0, 2.0, np.nan]),
             "x1": rng.choice([0.5, 1.0, 3.0])}
            for loc in range(6) for rnd in ["1", "1.0", "2"] for ki in range(rng.integers(1, 4))]
    data = Dataset(answers=pd.DataFrame(rows), name="two spellings")
    for method in ("median", "mode"):
        spec = ki_spec(2, method, rounds=True)
        rs = check_against_slow_path(data, spec, seed=4)
        assert list(rs.index_.get_level_values("round").unique()) == [1, 2]
        assert not rs.tabulated_[rs.index_.get_level_values("round") == 1].any()


def test_min_informants_drops_the_same_locations():
    sizes = [1, 2, 3, 4, 5, 2, 3]
    values = np.random.default_rng(0).integers(0, 4, (sum(sizes), 3)).astype(float)
    data = ki_data(sizes, values)
    spec = ki_spec(3, "median", min_informants=3)
    rs = check_against_slow_path(data, spec, seed=9)
    assert list(rs.n_informants_) == [3, 4, 5, 3]


@FEW
@given(st.integers(1, 7), st.integers(1, 40), st.sampled_from(["median", "mode", "mean"]), st.data())
def test_the_array_rules_are_the_combine_step(k, groups, method, data):
    """``combine_stack`` on groups of ``k`` answers gives what ``combine.combine`` gives (the same order)."""
    pool = [0.0, 1.0, 1.0, 2.0, 0.1, 0.2, 0.3, 1e-17, -4.5, np.nan]
    cells = data.draw(st.lists(st.sampled_from(pool), min_size=groups * k * 2, max_size=groups * k * 2))
    values = np.array(cells).reshape(groups, k, 2)
    spec = ki_spec(2, method)
    coded = pd.DataFrame(values.reshape(-1, 2), columns=["x0", "x1"])
    coded.insert(0, "loc", np.repeat([f"L{g:03d}" for g in range(groups)], k))
    expected = combine(coded, spec).values.to_numpy()
    got = combine_stack(values, [(method, np.array([0, 1]))])
    if method == "mean":  # pandas adds with or without Kahan compensation, depending on the table
        assert (np.isnan(got) == np.isnan(expected)).all()
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)
    else:
        assert same(got, expected)


# --------------------------------------------------------------------------- replay
@pytest.mark.parametrize("changes", [
    {},
    {"normalise.method": "minmax", "normalise.scope": "round"},
    {"normalise.scope": "pooled"},
    {"impute.method": "median"},
    {"treat.winmax": 1},
    {"impute.method": "none"},
    {"normalise.method": "zscore", "normalise.scope": "round", "treat.log_fallback": True, "treat.winmax": 1,
     "categories.method": "quantile", "categories.cuts": [0.4, 0.6]},
    {"normalise.method": "percentile", "normalise.scope": "pooled", "impute.method": "group_mean"},
])
def test_replay_of_the_nominal_values_is_the_normalised_stage(mali_result, changes):
    result = mali_result.recompute(changes) if changes else mali_result
    nominal = result.prepared.values.to_numpy()
    out = replay(result, np.stack([nominal, nominal]))
    expected = result.stage("normalised").to_numpy(dtype=float)
    for rep in out:
        assert (np.isnan(rep) == np.isnan(expected)).all()
        np.testing.assert_allclose(rep, expected, rtol=0, atol=1e-12)


def test_replicates_are_replayed_row_by_row(mali_result, resampler):
    """Every statistic comes from the nominal run, so a row's values depend on that row alone."""
    drawn = resampler.draw([0, 1], seed=2)
    out = replay(mali_result, drawn)
    assert out.shape == drawn.shape and out.dtype == np.float64
    assert same(out[1], replay(mali_result, drawn[1:])[0])  # alone or stacked with others
    # a replicate equal to the nominal values in some rows gives the nominal normalised values there
    mixed = drawn[0].copy()
    rows = np.arange(0, len(mixed), 2)
    mixed[rows] = mali_result.prepared.values.to_numpy()[rows]
    again = replay(mali_result, mixed[None])[0]
    assert same(again[rows], mali_result.stage("normalised").to_numpy()[rows])


@pytest.mark.parametrize("changes", [{}, {"normalise.method": "minmax", "normalise.scope": "round"}])
def test_replay_does_not_depend_on_its_chunks(mali_result, resampler, changes):
    result = mali_result.recompute(changes) if changes else mali_result
    drawn = resampler.draw(5, seed=6)
    whole = replay(result, drawn)
    n, p = drawn.shape[1:]
    for cells in (1000, 3 * n * p, 10**9):  # parts of a replicate, a few replicates, all at once
        assert same(replay(result, drawn, chunk_cells=cells), whole)


def test_a_cell_missing_in_a_replicate_gets_the_nominal_group_statistic(mali_result):
    """``group_median`` by cercle and round: a cell missing in a replicate is filled with the nominal median of its
    cercle and round (else the round's median), not a statistic of the replicate."""
    spec = mali_result.spec
    values = mali_result.prepared.values
    den = mali_result.stage("denominated")
    units = mali_result.units
    ind = "safe_at_night"  # a coded answer: no denominator, not treated
    j = values.columns.get_loc(ind)
    rng = np.random.default_rng(0)
    cells = rng.choice(np.flatnonzero(values[ind].notna().to_numpy()), 25, replace=False)
    raw = values.to_numpy().copy()
    raw[cells, j] = np.nan
    frame = pd.DataFrame({"x": den[ind].to_numpy(), "g": units["admin2_pcode"].to_numpy(),
                          "r": values.index.get_level_values(spec.columns.round)})
    group_median = frame.groupby(["r", "g"])["x"].median()
    round_median = frame.groupby("r")["x"].median()
    fill = raw.copy()
    for i in cells:
        r, g = frame["r"].iloc[i], frame["g"].iloc[i]
        v = group_median.get((r, g), np.nan)
        fill[i, j] = v if not np.isnan(v) else round_median[r]
    assert same(replay(mali_result, raw[None]), replay(mali_result, fill[None]))
    # the nominal run had answers in those cells: its values there are the answers, not the medians
    assert not same(replay(mali_result, raw[None])[0][cells, j], mali_result.stage("normalised")[ind].to_numpy()[cells])


def test_replay_refuses_values_of_another_shape(mali_result):
    n, p = mali_result.prepared.values.shape
    with pytest.raises(ValueError, match=r"must have shape \(replicates, "):
        replay(mali_result, np.zeros((n, p)))
    with pytest.raises(ValueError, match="must have shape"):
        replay(mali_result, np.zeros((1, n + 1, p)))


def column_replay(result, raw) -> np.ndarray:
    """The replay column by column, with the fitted steps' ``transform`` (the reference of the matrix forms)."""
    spec = result.spec
    values = result.prepared.values
    n, p = values.shape
    columns = list(values.columns)
    rnd = spec.columns.round
    rounds = values.index.get_level_values(rnd).to_numpy() if rnd else None
    fill = _fill_table(result)
    out = np.empty(raw.shape)
    for i, x in enumerate(np.array(raw, dtype=float)):
        for j, name in enumerate(columns):
            ind = spec.indicator(name)
            if ind.denominator:
                den = pd.to_numeric(result.units[ind.denominator], errors="coerce").to_numpy(dtype=float,
                                                                                           na_value=np.nan)
                with np.errstate(divide="ignore", invalid="ignore"):
                    x[:, j] /= np.where(den > 0, den, np.nan) / ind.denominator_scale
        gap = np.isnan(x)
        x[gap] = fill[gap]
        cols = [x[:, j].copy() for j in range(p)]
        cols = _apply_fitted(result.fitted.get("treated"), cols, columns, rounds)
        cols = _apply_fitted(result.fitted.get("normalised"), cols, columns, rounds)
        out[i] = np.column_stack(cols)
    return out


@pytest.mark.parametrize("changes", [
    {},
    {"normalise.method": "minmax", "normalise.scope": "round"},
    {"normalise.method": "zscore", "normalise.scope": "round", "treat.log_fallback": True, "treat.winmax": 1,
     "categories.method": "quantile", "categories.cuts": [0.4, 0.6]},
    {"normalise.method": "percentile", "normalise.scope": "pooled", "impute.method": "group_mean"},
    {"normalise.method": "rank", "treat.winmax": 3, "impute.method": "none", "categories.method": "quantile", "categories.cuts": [0.4, 0.6]},
    {"normalise.method": "none", "categories.method": "quantile", "categories.cuts": [0.4, 0.6]},
])
def test_matrix_replay_is_bit_identical_to_the_column_path(mali_result, resampler, changes):
    """Every step of the replay as (rows, indicators) matrices gives the numbers of the steps' column path."""
    result = mali_result.recompute(changes) if changes else mali_result
    drawn = resampler.draw([0, 3, 7], seed=5)
    expected = column_replay(result, drawn)
    steps = Replay(result)
    got = steps(drawn)
    assert same(got, expected)
    assert (np.signbit(got) == np.signbit(expected)).all()
    assert same(steps(drawn, chunk_cells=1000), expected)  # blocks of a few rows
    inplace = drawn.copy()
    assert steps(inplace, out=inplace) is inplace and same(inplace, expected)


def test_a_replay_object_serves_many_batches(mali_result, resampler):
    steps = Replay(mali_result)
    drawn = resampler.draw(4, seed=8)
    assert same(np.concatenate([steps(drawn[:1]), steps(drawn[1:])]), replay(mali_result, drawn))
    with pytest.raises(ValueError, match="out must be"):
        steps(drawn, out=np.empty(drawn.shape, dtype=np.float32))
    with pytest.raises(ValueError, match="must have shape"):
        steps(drawn[0])


@pytest.mark.parametrize("method", ["median", "mode"])
def test_a_small_table_budget_tabulates_what_fits_and_combines_the_rest(method):
    rng = np.random.default_rng(11)
    sizes = rng.integers(1, 6, 40)
    values = rng.choice([0.0, 1.0, 2.0, 3.5, np.nan], (int(sizes.sum()), 3))
    data = ki_data(list(sizes), values)
    spec = ki_spec(3, method)
    whole = InformantResampler(data, spec)
    assert whole.tabulated_.all()
    k5 = int(np.count_nonzero(whole.n_informants_ == 5))
    # everything but a few of the locations with 5 informants (126 multisets of 3 indicators each)
    budget = whole.table_nbytes_ - 8 * 3 - 2 * 126 * 3 * 8
    part = InformantResampler(data, spec, table_bytes=budget)
    assert k5 > 2 and (~part.tabulated_).sum() == 2 and (part.n_informants_[~part.tabulated_] == 5).all()
    assert same(part.draw([0, 1, 9], seed=3), whole.draw([0, 1, 9], seed=3))
    assert same(part.draw([0, 1], seed=3)[1], slow_values(data, spec, 3, 1).to_numpy())
