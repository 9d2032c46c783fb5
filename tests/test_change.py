"""Change across rounds: per-location changes, the transition matrix, trends."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stability import change


def test_transition_matrix_sums_to_the_locations_assessed_in_both_rounds(mali_result):
    r = mali_result
    c = r.spec.columns
    for rnd in r.rounds[1:]:
        prev = r.rounds[r.rounds.index(rnd) - 1]
        s = r.scores
        now = s[(s[c.round] == rnd) & s["category"].notna()][c.location]
        then = s[(s[c.round] == prev) & s["category"].notna()][c.location]
        table = change.transitions(r, rnd)
        assert list(table.index) == list(r.spec.categories.labels) == list(table.columns)
        assert int(table.to_numpy().sum()) == len(set(now) & set(then))
    assert change.transitions(r, r.rounds[0]).to_numpy().sum() == 0


def test_regional_matrices_add_up_to_the_national_one(mali_result):
    national = change.transitions(mali_result)
    regions = mali_result.scores[mali_result.spec.columns.admin[0]].dropna().unique()
    total = sum(change.transitions(mali_result, region=g) for g in regions)
    assert total.equals(national)


def test_changes_are_differences_of_the_scores(mali_result):
    r = mali_result
    c = r.spec.columns
    ch = change.location_changes(r)
    s = r.scores.set_index([c.location, c.round])
    last, prev, first = r.rounds[-1], r.rounds[-2], r.rounds[0]
    row = ch[ch["previous_stability"].notna() & ch["baseline_stability"].notna()].iloc[0]
    loc = row[c.location]
    assert row["change_stability"] == pytest.approx(s.loc[(loc, last), "stability"] - s.loc[(loc, prev), "stability"])
    assert row["change_since_baseline_safety"] == pytest.approx(
        s.loc[(loc, last), "safety"] - s.loc[(loc, first), "safety"])
    assert len(ch) == int((r.scores[c.round] == last).sum())


def test_locations_that_dropped_a_category_come_first_with_the_pillars_that_moved(mali_result):
    ch = change.location_changes(mali_result)
    moves = ch["category_move"].tolist()
    n = moves.count("dropped")
    assert n > 0 and set(moves[:n]) == {"dropped"}
    order = {lab: k for k, lab in enumerate(mali_result.spec.categories.labels)}
    top = ch.iloc[:n]
    assert (top["category"].astype(object).map(order) < top["previous_category"].map(order)).all()
    assert top["change_stability"].is_monotonic_increasing
    for _, row in top.head(20).iterrows():
        parts = [p for p in row["pillars_moved"].split(", ") if p]
        sizes = [abs(float(p.rsplit(" ", 1)[1])) for p in parts]
        assert sizes == sorted(sizes, reverse=True) and all(v > change.MOVE_THRESHOLD for v in sizes)
        for p in parts:
            name, value = p.rsplit(" ", 1)
            assert float(value) == pytest.approx(row[f"change_{name}"], abs=0.051)


def test_first_round_has_no_change(mali_result):
    ch = change.location_changes(mali_result, mali_result.rounds[0])
    assert ch["change_stability"].isna().all() and set(ch["category_move"]) <= {"new", "not scored"}


def test_trends_country_rows_are_the_round_medians_and_counts(mali_result):
    r = mali_result
    c = r.spec.columns
    t = change.trends(r)
    country = t[t["area"] == change.ALL].set_index("round")
    for rnd in r.rounds:
        part = r.scores[r.scores[c.round] == rnd]
        assert country.loc[rnd, "median_index"] == pytest.approx(part["stability"].median())
        cats = part["category"].astype(object)
        for lab in r.spec.categories.labels:
            assert country.loc[rnd, f"locations_{lab}"] == int((cats == lab).sum())
            assert country.loc[rnd, f"idps_{lab}"] == pytest.approx(part.loc[cats == lab, "idps"].fillna(0).sum())
    regional = t[t["area"] != change.ALL]
    per_round = regional.groupby("round")["locations"].sum()
    assert per_round.to_dict() == country["locations"].to_dict()


def test_unknown_round_is_a_clear_error(mali_result):
    with pytest.raises(ValueError, match="round 99 is not in the data"):
        change.location_changes(mali_result, 99)


def test_pillars_moved_on_a_hand_made_case():
    frame = pd.DataFrame({"change_a": [10.0, 1.0, np.nan], "change_b": [-20.0, 4.9, 6.0]})
    got = change._moved(frame, ["a", "b"], 5.0).tolist()
    assert got == ["b -20.0, a +10.0", "", "b +6.0"]


# --------------------------------------------------------------------------- change beyond noise
def _two_rounds(mali_data, mali_spec, n_locations: int = 120, seed: int = 3):
    """Round 1 of the first ``n_locations`` locations, and a round 2 that meets the same informants again:
    each location's round-2 informants are drawn (with replacement) from its round-1 informants."""
    from dataclasses import replace

    c = mali_spec.columns
    a = mali_data.answers
    first = a[a[c.round].astype(str) == "1"]
    keep = sorted(first[c.location].unique())[:n_locations]
    r1 = first[first[c.location].isin(keep)].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    parts = [grp.iloc[rng.integers(0, len(grp), len(grp))] for _, grp in r1.groupby(c.location, sort=True)]
    r2 = pd.concat(parts, ignore_index=True)
    r2[c.round] = r2[c.round].astype(str).str.replace("1", "2") if r2[c.round].dtype == object else 2
    r2[c.key_informant] = [f"KI{k}" for k in range(len(r2))]
    answers = pd.concat([r1, r2], ignore_index=True).astype({c.round: r1[c.round].dtype})
    pop = mali_data.population
    pop1 = pop[(pop[c.round].astype(str) == "1") & pop[c.location].isin(keep)]
    population = pd.concat([pop1, pop1.assign(**{c.round: 2}).astype({c.round: pop1[c.round].dtype})],
                           ignore_index=True)
    return replace(mali_data, answers=answers, population=population, outcomes=None)


def test_the_same_seed_gives_the_same_replicates(mali_data, mali_spec):
    data = _two_rounds(mali_data, mali_spec, 20)
    a = change.informant_bootstrap(data, mali_spec, n=4, seed=7)
    b = change.informant_bootstrap(data, mali_spec, n=4, seed=7)
    assert a.equals(b) and not a.equals(change.informant_bootstrap(data, mali_spec, n=4, seed=8))


def test_without_key_informants_there_is_nothing_to_resample(mali_spec, mali_data):
    spec = mali_spec.with_changes({"columns.key_informant": None})
    with pytest.raises(ValueError, match="no key informants to resample"):
        change.informant_bootstrap(mali_data, spec, n=3)
