"""Explanations of the index (``stability.explain``): exact contributions, drivers, plain words.

- the contributions add up to the gap to the median location profile, exactly for
  arithmetic means (hypothesis, random weights and data) and for geometric,
  harmonic and generalised means (the log-mean split is exact, not approximate);
- the profile is the aggregate of the indicator medians (checked independently);
- the tie rule is the spec's order, and nothing depends on the order of the rows;
- the words follow the answer type and the answer actually given;
- the regional report's drivers no longer read backwards.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

import stability as st
from stability import explain
from stability.exceptions import MethodError

PILLARS = {"a": "P", "b": "P", "c": "P", "d": "Q", "e": "Q"}
IDS = list(PILLARS)


def _data(values, regions, rounds=None) -> pd.DataFrame:
    df = pd.DataFrame(np.asarray(values, dtype=float), columns=IDS[:np.shape(values)[1]])
    df.insert(0, "loc", [f"L{i:03d}" for i in range(len(df))])
    df["region"] = regions
    df["round"] = 1 if rounds is None else rounds
    return df


def _spec(make_spec, weights=None, methods=("arithmetic", "arithmetic"), p=None, **extra):
    levels = [{"method": methods[0]}, {"method": methods[1]}]
    for lv in levels:
        if lv["method"] == "generalised":
            lv["p"] = p
    return make_spec(IDS, PILLARS, round="round", admin=["region"], weights=weights or {}, levels=levels,
                     normalise={"method": "none"}, **extra)


def _by_hand(result, reference="region"):
    """Independent arithmetic decomposition: weights re-normalised by hand, medians with pandas."""
    spec = result.spec
    norm = result.stage("normalised")
    keys = [norm.index.get_level_values("round")]
    if reference == "region":
        keys.append(result.units["region"].reindex(norm.index).to_numpy())
    med = norm.groupby(keys).transform("median")
    w = {i.id: i.weight for i in spec.indicators}
    wp = {a.id: a.weight for a in spec.aggregates_at(2)}
    contrib = pd.DataFrame(0.0, index=norm.index, columns=spec.indicator_ids)
    profile_p = {}
    for pillar in wp:
        kids = [i for i in spec.indicator_ids if spec.indicator(i).parent == pillar]
        wk = np.array([w[k] for k in kids])
        profile_p[pillar] = (med[kids] * wk).sum(axis=1) / wk.sum()
        for k in kids:
            contrib[k] = wp[pillar] / sum(wp.values()) * w[k] / wk.sum() * (norm[k] - med[k])
    profile = sum(wp[q] * profile_p[q] for q in wp) / sum(wp.values())
    return contrib, profile


# --------------------------------------------------------------------------- exact decomposition
weights = hs.floats(0.1, 5.0)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=hs.integers(4, 16), w=hs.lists(weights, min_size=7, max_size=7), seed=hs.integers(0, 2**32 - 1),
       two_rounds=hs.booleans())
def test_arithmetic_contributions_add_up_to_the_gap_exactly(make_spec, n, w, seed, two_rounds):
    rng = np.random.default_rng(seed)
    values = rng.choice([0.0, 1.0, 2.5, 3.0, 7.0, 10.0], size=(n, 5)) + rng.uniform(0, 1, (n, 5)).round(1)
    regions = rng.choice(["R1", "R2"], size=n)
    rounds = rng.choice([1, 2], size=n) if two_rounds else None
    ind_w = dict(zip(IDS, w[:5]))
    spec = _spec(make_spec, weights=ind_w).with_changes({"aggregates.P.weight": w[5], "aggregates.Q.weight": w[6]})
    result = st.compute(_data(values, regions, rounds), spec)
    for reference in explain.REFERENCES:
        c = explain.contributions(result, reference)
        ids = spec.indicator_ids
        scale = 1 + c["gap"].abs().max()
        # the identity holds with nothing left over: complete data, same children everywhere
        assert np.allclose(c["unattributed"], 0, atol=1e-9 * scale)
        assert np.allclose(c[ids].sum(axis=1), c["gap"], atol=1e-9 * scale)
        assert np.allclose(c["gap"], c["I"] - c["reference_score"])
        np.testing.assert_allclose(c["I"], result.stage("aggregated")["I"])
        # ... and matches the decomposition written by hand: w_pillar * w_indicator * (x - median)
        contrib, profile = _by_hand(result, reference)
        np.testing.assert_allclose(c[ids].to_numpy(), contrib.to_numpy(), atol=1e-9 * scale)
        np.testing.assert_allclose(c["reference_score"].to_numpy(), profile.to_numpy(), atol=1e-9 * scale)
        # pillars: each pillar's contribution is the sum of its indicators'
        cp = explain.contributions(result, reference, level="pillar")
        for pillar in ("P", "Q"):
            kids = [i for i in ids if PILLARS[i] == pillar]
            np.testing.assert_allclose(cp[pillar], c[kids].sum(axis=1), atol=1e-9 * scale)
        # the true median of the index, and the profile's distance to it, are reported
        idx = result.stage("aggregated")["I"]
        keys = [idx.index.get_level_values("round")] + (
            [result.units["region"].to_numpy()] if reference == "region" else [])
        np.testing.assert_allclose(c["reference_median"], idx.groupby(keys).transform("median"))
        np.testing.assert_allclose(c["profile_minus_median"], c["reference_score"] - c["reference_median"])


@pytest.mark.parametrize("method, p", [("geometric", None), ("harmonic", None), ("generalised", 2.0),
                                       ("generalised", 0.5), ("generalised", -1.0)])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=hs.integers(4, 14), w=hs.lists(weights, min_size=5, max_size=5), seed=hs.integers(0, 2**32 - 1))
def test_other_means_split_exactly_with_the_log_mean(make_spec, method, p, n, w, seed):
    """Quasi-arithmetic means: ``a_i D(x_i, m_i) / D(V, R) (x_i - m_i)``, with ``D`` the divided difference of
    the mean's generator (for the geometric mean, the log-linear split scaled by the logarithmic mean): the
    error is rounding only, far below 1e-8 of the gap."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(1, 100, size=(n, 5)).round(1)
    spec = _spec(make_spec, weights=dict(zip(IDS, w)), methods=(method, method), p=p)
    result = st.compute(_data(values, rng.choice(["R1", "R2"], size=n)), spec)
    c = explain.contributions(result)
    err = (c[IDS].sum(axis=1) - c["gap"]).abs()
    assert (err <= 1e-8 * (1 + c["gap"].abs())).all()
    assert np.allclose(c["unattributed"], 0, atol=1e-8 * (1 + c["gap"].abs().max()))


def test_geometric_split_by_hand(make_spec):
    """One location, one pillar level: L(V, R) * a_i * (log x_i - log m_i), L the logarithmic mean."""
    spec = make_spec(("a", "b"), round="round", admin=["region"], weights={"a": 3, "b": 1},
                     levels=[{"method": "geometric"}], normalise={"method": "none"})
    df = pd.DataFrame({"loc": ["L0", "L1", "L2"], "a": [10.0, 40.0, 20.0], "b": [50.0, 5.0, 30.0],
                       "region": "R", "round": 1})
    result = st.compute(df, spec)
    c = explain.contributions(result).loc[("L1", 1)]
    V = math.exp(0.75 * math.log(40) + 0.25 * math.log(5))
    R = math.exp(0.75 * math.log(20) + 0.25 * math.log(30))  # medians of a and b
    L = (V - R) / (math.log(V) - math.log(R))
    assert c["a"] == pytest.approx(L * 0.75 * (math.log(40) - math.log(20)))
    assert c["b"] == pytest.approx(L * 0.25 * (math.log(5) - math.log(30)))
    assert c["a"] + c["b"] == pytest.approx(V - R, abs=1e-12)


def test_missing_children_are_left_unattributed(make_spec):
    """A location without an answer to 'a' aggregates over different children than the profile: the
    difference is reported as ``unattributed``, and everything still adds up to the gap."""
    values = [[1, 2, 3, 4, 5], [np.nan, 6, 1, 3, 2], [4, 4, 4, 4, 4], [2, 8, 3, 1, 9]]
    result = st.compute(_data(values, ["R"] * 4), _spec(make_spec))
    c = explain.contributions(result)
    assert c.loc[("L001", 1), "a"] == 0
    assert abs(c.loc[("L001", 1), "unattributed"]) > 1e-6
    np.testing.assert_allclose(c[IDS].sum(axis=1) + c["unattributed"], c["gap"], atol=1e-12)
    complete = c.drop(("L001", 1))
    np.testing.assert_allclose(complete["unattributed"], 0, atol=1e-12)


def test_outranking_cannot_be_split(make_spec):
    spec = _spec(make_spec, methods=("arithmetic", "copeland"))
    result = st.compute(_data(np.arange(20.0).reshape(4, 5), ["R"] * 4), spec)
    with pytest.raises(MethodError, match="copeland.*cannot be split"):
        explain.contributions(result)
    with pytest.raises(MethodError):
        explain.summary_lines(result)


def test_bad_arguments(make_spec):
    result = st.compute(_data(np.arange(20.0).reshape(4, 5), ["R"] * 4), _spec(make_spec))
    with pytest.raises(ValueError, match="reference"):
        explain.contributions(result, "cercle")
    with pytest.raises(ValueError, match="level"):
        explain.contributions(result, level="index")
    no_admin = make_spec(("a", "b"), normalise={"method": "none"})
    plain = st.compute(pd.DataFrame({"loc": ["x", "y"], "a": [1.0, 2.0], "b": [3.0, 1.0]}), no_admin)
    with pytest.raises(ValueError, match="admin"):
        explain.contributions(plain, "region")
    c = explain.contributions(plain, "national")  # no round, no region: one group
    np.testing.assert_allclose(c[["a", "b"]].sum(axis=1), c["gap"])


# --------------------------------------------------------------------------- tie rule, row order
def _tied_result(make_spec, order=("a", "b", "c"), shuffle_seed=None):
    """'a' and 'b' always have the same contribution (same weight, same answers)."""
    spec = make_spec(order, round="round", admin=["region"], normalise={"method": "none"})
    base = pd.DataFrame({"loc": [f"L{i}" for i in range(6)], "a": [0, 1, 5, 9, 9, 2.0], "c": [3, 3, 1, 8, 0, 5.0],
                         "region": ["R"] * 6, "round": [1, 1, 1, 2, 2, 2]})
    base["b"] = base["a"]
    if shuffle_seed is not None:
        base = base.sample(frac=1, random_state=shuffle_seed)[["round", "c", "region", "b", "loc", "a"]]
    return st.compute(base, spec)


def test_ties_follow_the_spec_order_not_the_data(make_spec):
    d = explain.drivers(_tied_result(make_spec), n=3)
    for _, rows in d.groupby(["loc", "round", "effect"]):
        picked = list(rows.sort_values("order")["indicator"])
        if "a" in picked and "b" in picked:
            assert picked.index("a") < picked.index("b")
    flipped = explain.drivers(_tied_result(make_spec, order=("b", "a", "c")), n=3)
    assert len(flipped) == len(d)
    for _, rows in flipped.groupby(["loc", "round", "effect"]):
        picked = list(rows.sort_values("order")["indicator"])
        if "a" in picked and "b" in picked:
            assert picked.index("b") < picked.index("a")
    one = explain.drivers(_tied_result(make_spec), n=1)
    assert set(one["indicator"]) <= {"a", "c"}  # 'b' never beats 'a', its twin


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shuffled_rows_give_the_same_explanations(make_spec, seed):
    base = _tied_result(make_spec)
    shuffled = _tied_result(make_spec, shuffle_seed=seed)
    pd.testing.assert_frame_equal(explain.drivers(base), explain.drivers(shuffled))
    pd.testing.assert_series_equal(explain.summary_lines(base), explain.summary_lines(shuffled))
    pd.testing.assert_frame_equal(explain.contributions(base), explain.contributions(shuffled))


def test_drivers_are_the_largest_contributions_of_each_sign(mali_result):
    """On the Mali survey: an independent sort (|contribution| descending, then spec order) gives the same drivers."""
    rnd = mali_result.rounds[-1]
    c = explain.contributions(mali_result, survey_round=rnd)
    d = explain.drivers(mali_result, n=3, survey_round=rnd)
    ids = mali_result.spec.indicator_ids
    floor = explain.min_driver(mali_result.spec)
    assert floor == pytest.approx(0.05)  # 0.05 points on the 0-100 index
    for (loc, r), rows in list(d.groupby(["location_id", "round"]))[:300]:
        row = c.loc[(loc, r), ids].astype(float).round(explain.TIE_DECIMALS)
        for effect, sign in ((explain.HELPS, 1), (explain.HOLDS_BACK, -1)):
            cand = [(-abs(v), ids.index(i), i) for i, v in row.items() if v * sign >= floor]
            expected = [i for *_, i in sorted(cand)[:3]]
            got = list(rows[rows["effect"] == effect].sort_values("order")["indicator"])
            assert got == expected, (loc, effect)


def test_contributions_too_small_to_see_are_not_drivers(mali_result):
    """A contribution that the reports would show as 0.0 points neither helps nor holds back (the Mali survey
    has such contributions, e.g. a water-point count just above its region's median)."""
    rnd = mali_result.rounds[-1]
    floor = explain.min_driver(mali_result.spec)
    c = explain.contributions(mali_result, survey_round=rnd)[mali_result.spec.indicator_ids].astype(float)
    tiny = (c.abs() > 0) & (c.abs() < floor)
    assert tiny.to_numpy().any()
    d = explain.drivers(mali_result, n=25, survey_round=rnd)
    assert (d["contribution"].abs() >= floor).all()
    assert len(d) == int((c.abs() >= floor).to_numpy().sum())


# --------------------------------------------------------------------------- wording
def _worded_spec(with_words: bool, direction_yes=-1, direction_share=1):
    from stability.spec import spec_from_dict

    say = {
        "armed": {"yes": "armed groups present", "no": "no armed groups"},
        "water": {"scale": "{answer} of the residents have enough drinking water"},
        "incidents": {"count": "{n} security incidents in the last 3 months", "one": "1 security incident",
                      "zero": "no security incident"},
        "points": {"count": "{n} water points ({rate} per 1,000 residents)"},
    }
    inds = [
        {"id": "armed", "label": "Armed groups present", "answers": "yes_no", "direction": direction_yes},
        {"id": "water", "label": "Residents with enough drinking water", "answers": "share",
         "direction": direction_share},
        {"id": "incidents", "label": "Security incidents", "answers": "count", "direction": -1,
         "goalposts": [0, 10]},
        {"id": "points", "label": "Water points per 1,000 residents", "answers": "count", "denominator": "pop",
         "denominator_scale": 1000, "goalposts": [0, 3]},
        {"id": "score", "label": "IDPs' own rating", "goalposts": [0, 10]},
    ]
    for ind in inds:
        ind["parent"] = "I"
        if with_words and ind["id"] in say:
            ind["say"] = say[ind["id"]]
    return spec_from_dict({
        "name": "words",
        "columns": {"location": "loc", "round": "round", "key_informant": "ki", "admin": ["region"]},
        "answers": {"yes_no": {"codes": {"no": 0, "yes": 1, "dont_know": None}},
                    "share": {"codes": {"none": 0, "some": 1, "most": 2, "all": 3, "dont_know": None}},
                    "count": {"range": [0, None], "integer": True}},
        "indicators": inds,
        "aggregates": [{"id": "I", "level": 2}],
        "levels": [{"name": "indicator"}, {"name": "index"}],
        "treat": {"method": "none"}, "impute": {"method": "median"},
        "normalise": {"method": "goalposts", "scale": 100},
    })


@pytest.mark.parametrize("with_words", [True, False])
def test_words_follow_the_answer_type_and_the_answer(with_words):
    spec = _worded_spec(with_words)
    say = lambda ind, v, rate=np.nan, imputed=False: explain.answer_phrase(spec, ind, v, rate, imputed)  # noqa: E731
    if with_words:
        expected = {
            ("armed", 1): "armed groups present", ("armed", 0): "no armed groups",
            ("water", 2): "most of the residents have enough drinking water",
            ("water", 0): "none of the residents have enough drinking water",
            ("water", 1.5): "some to most of the residents have enough drinking water",
            ("incidents", 3): "3 security incidents in the last 3 months",
            ("incidents", 0): "no security incident", ("incidents", 1): "1 security incident",
            ("incidents", 2.5): "2 to 3 security incidents in the last 3 months",
        }
    else:
        expected = {
            ("armed", 1): "armed groups present: yes", ("armed", 0): "armed groups present: no",
            ("water", 2): "residents with enough drinking water: most",
            ("water", 0): "residents with enough drinking water: none",
            ("water", 1.5): "residents with enough drinking water: some to most",
            ("incidents", 3): "security incidents: 3", ("incidents", 0): "security incidents: 0",
            ("incidents", 2.5): "security incidents: 2 to 3",
        }
    for (ind, value), text in expected.items():
        assert say(ind, value) == text, (ind, value)
    # a yes/no split among informants is never rounded to either answer
    assert say("armed", 0.5) == "informants split on armed groups present (50 % said yes)"
    # rates: the count and the value per 1,000 residents
    assert say("points", 4, 2.5) == ("4 water points (2.5 per 1,000 residents)" if with_words
                                     else "water points per 1,000 residents: 2.5")
    # plain numbers, an acronym kept upper-case, no answer
    assert say("score", 7.25) == "IDPs' own rating: 7.25"
    assert say("armed", np.nan) == "no answer on armed groups present"
    assert say("armed", np.nan, imputed=True) == "no answer on armed groups present (value imputed)"


def test_yaml_yes_no_keys_are_read_as_words():
    import yaml

    from stability.spec import Wording

    assert Wording.model_validate(yaml.safe_load('{yes: "a", no: "b"}')).no == "b"


def _answers(rows):
    """Per key informant: (loc, ki, armed, water, incidents, points, score)."""
    df = pd.DataFrame(rows, columns=["loc", "ki", "armed", "water", "incidents", "points", "score"])
    df["round"] = 1
    df["region"] = "R"
    df["pop"] = 2000
    return df


LOCATIONS = [
    ("good", "k1", "no", "all", "0", "6", "8"), ("good", "k2", "no", "most", "0", "6", "7"),
    ("bad", "k1", "yes", "none", "7", "0", "2"), ("bad", "k2", "yes", "some", "9", "0", "3"),
    ("split", "k1", "yes", "most", "1", "2", "5"), ("split", "k2", "no", "most", "1", "2", "5"),
    ("mid", "k1", "no", "most", "2", "3", "6"), ("mid", "k2", "no", "some", "3", "3", "4"),
    ("mid2", "k1", "no", "most", "1", "3", "5"), ("mid2", "k2", "no", "most", "1", "3", "6.5"),
]


@pytest.mark.parametrize("direction", [1, -1])
def test_drivers_state_the_answer_given_whatever_the_direction(direction):
    """'no armed groups' helps when armed groups are bad (direction -1) and holds back when they are good (+1);
    the words are the answer either way, never the score."""
    spec = _worded_spec(True, direction_yes=direction)
    # armed groups at 'bad', 'mid' and 'mid2' (the median answer is 'yes'), none at 'good'
    rows = [(r[0], r[1], "yes" if r[0] in ("mid", "mid2") else r[2], *r[3:]) for r in LOCATIONS]
    result = st.compute(_answers(rows), spec)
    assert result.stage("raw")["armed"].median() == 1
    d = explain.drivers(result, n=5)
    good = d[(d["loc"] == "good") & (d["indicator"] == "armed")]
    assert good["phrase"].tolist() == ["no armed groups"] and good["answer"].tolist() == ["no"]
    assert good["effect"].item() == (explain.HELPS if direction == -1 else explain.HOLDS_BACK)
    assert d[(d["loc"] == "bad") & (d["indicator"] == "armed")].empty  # 'yes', as the median location: neither
    c = explain.contributions(result)
    assert np.sign(c.loc[("good", 1), "armed"]) == -direction
    assert "no armed groups" in explain.summary_lines(result)[("good", 1)]


def test_informant_ties_follow_the_combine_rule_not_the_row_order():
    """Two informants, one 'yes' and one 'no': the median is 0.5, worded as a split, whichever answers first."""
    spec = _worded_spec(True)
    first = st.compute(_answers(LOCATIONS), spec)
    swapped = [LOCATIONS[5], LOCATIONS[4]] + [r for i, r in enumerate(LOCATIONS) if i not in (4, 5)]
    second = st.compute(_answers(swapped[::-1]), spec)
    for result in (first, second):
        assert result.stage("raw").loc[("split", 1), "armed"] == 0.5
        d = explain.drivers(result, n=5)
        rows = d[(d["loc"] == "split") & (d["indicator"] == "armed")]
        assert rows["phrase"].tolist() == ["informants split on armed groups present (50 % said yes)"]
        assert rows["effect"].tolist() == [explain.HOLDS_BACK]  # the median location has no armed groups
    pd.testing.assert_frame_equal(explain.drivers(first), explain.drivers(second))
    pd.testing.assert_series_equal(explain.summary_lines(first), explain.summary_lines(second))
    assert "2 to 3 security incidents" in " ".join(explain.drivers(first, n=5)["phrase"])  # median of 2 and 3


def test_summary_lines_say_which_way_and_why(make_spec):
    spec = make_spec(("a", "b"), round="round", admin=["region"],
                     indicator_options={"a": {"label": "Armed groups present"}, "b": {"label": "Robbery"}},
                     normalise={"method": "goalposts", "scale": 100})
    spec = spec.with_changes({"indicators.a.goalposts": [0, 1], "indicators.b.goalposts": [0, 1],
                              "indicators.a.direction": -1, "indicators.b.direction": -1})
    df = pd.DataFrame({"loc": ["x", "y", "z", "w", "v"], "a": [1, 0, 0, 0, 1.0], "b": [1, 0, 0, 1, 0.0],
                       "region": "Mopti", "round": 1})
    lines = explain.summary_lines(st.compute(df, spec))
    assert lines[("x", 1)].startswith("Less stable than the Mopti median (0.0 against 50.0), mainly because: "
                                      "armed groups present: 1")
    assert lines[("y", 1)].startswith("More stable than the Mopti median (100.0 against 50.0)")
    assert lines[("w", 1)].startswith("About as stable as the Mopti median (50.0 against 50.0).")


# --------------------------------------------------------------------------- the regional report
@pytest.fixture(scope="module")
def report_ctx(mali_result, tmp_path_factory):
    from stability.report.context import load_context, map_layers, save_cache

    path = tmp_path_factory.mktemp("explain_cache") / "result.pkl"
    save_cache(path, mali_result, map_layers(mali_result))
    return load_context(region="ML05", cache_path=path)


def test_report_drivers_no_longer_read_backwards(report_ctx):
    """A location that reported no armed groups (no cattle theft...) shows 'no armed groups ...' among what
    helps it, never the bare label: every yes/no indicator where "yes" is bad reads the right way round."""
    from stability.report import content

    ctx = report_ctx
    d = content.drivers(ctx)
    raw = ctx.result.stage("raw").xs(ctx.round, level=ctx.columns.round)
    bad_yes = {i.id: i for i in ctx.spec.indicators if i.answers == "yes_no" and i.direction == -1 and i.say.no}
    shown_here = d[d["indicator"].isin(bad_yes)]
    assert len(shown_here)
    for _, row in shown_here.iterrows():
        say = bad_yes[row["indicator"]].say
        answered = raw.at[row[ctx.columns.location], row["indicator"]]
        if answered == 0:
            assert row["effect"] == "helps" and row["Answer"] == say.no
        elif answered == 1:
            assert row["effect"] == "holds back" and row["Answer"] == say.yes
    labels = {ind.label for ind in ctx.spec.indicators}
    for which in ("most", "least"):
        table = content.drivers_table(ctx, which, d)
        shown = set(table["Helps"]) | set(table["Holds back"])
        assert not shown & labels  # answers in words, not indicator labels
        lines = content.driver_summaries(ctx, which)
        assert len(lines) == 5 and all("the Mopti median" in line for line in lines)
    helps = set(content.drivers_table(ctx, "most", d)["Helps"])
    assert any(ind.say.no in helps for ind in bad_yes.values())
    assert all(line.split(": ", 1)[1].startswith("More stable") for line in content.driver_summaries(ctx, "most"))
    assert all(line.split(": ", 1)[1].startswith("Less stable") for line in content.driver_summaries(ctx, "least"))


def test_report_points_are_the_contributions(report_ctx):
    from stability.report import content

    ctx = report_ctx
    d = content.drivers(ctx)
    c = explain.contributions(ctx.result, "region", survey_round=ctx.round)
    for _, row in d.head(20).iterrows():
        assert row["Points"] == pytest.approx(c.at[(row[ctx.columns.location], ctx.round), row["indicator"]])
