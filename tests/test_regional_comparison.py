"""Regional comparison of the country overview: bootstrap CI of the median, Kruskal–Wallis, Dunn/Holm, sentences.

The statistics are checked against scipy on the same groups and against Dunn's formula worked by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kruskal, norm

from stability.report import content
from stability.report.context import load_context, map_layers, save_cache


@pytest.fixture(scope="module")
def overview(mali_result, tmp_path_factory):
    path = tmp_path_factory.mktemp("comparison_cache") / "result.pkl"
    save_cache(path, mali_result, map_layers(mali_result))
    return load_context(cache_path=path)


# --------------------------------------------------------------------------- bootstrap
def test_median_ci_contains_the_median_and_is_reproducible():
    x = np.random.default_rng(1).normal(50, 10, 200)
    low, high = content.median_ci(x)
    assert low < np.median(x) < high
    assert content.median_ci(x) == (low, high)  # fixed seed: same numbers
    assert content.median_ci(x, seed=7) != (low, high)
    wide = content.median_ci(x, level=0.99)
    assert wide[0] <= low and wide[1] >= high


def test_median_ci_of_too_few_or_equal_values():
    assert all(np.isnan(content.median_ci([5.0])))
    assert all(np.isnan(content.median_ci([np.nan, 3.0])))
    assert content.median_ci([4.0, 4.0, 4.0]) == (4.0, 4.0)


def test_league_table_ci_is_the_bootstrap_of_each_region(overview):
    table = content.league_table(overview)
    nat = overview.national
    for _, row in table.iterrows():
        values = nat.loc[nat["admin1_pcode"] == row["P-code"], overview.index_id]
        low, high = content.median_ci(values)
        assert row[content.CI_LOW] == pytest.approx(round(low, 1)) and row[content.CI_HIGH] == pytest.approx(round(high, 1))
    assert content.league_table(overview).equals(table)


# --------------------------------------------------------------------------- Kruskal–Wallis and Dunn
def test_kruskal_wallis_equals_scipy(overview):
    tests = content.region_tests(overview)
    nat = overview.national
    groups = [g.dropna().to_numpy() for _, g in nat.groupby("admin1_pcode", sort=True)[overview.index_id]]
    h, p = kruskal(*groups)
    assert tests["kruskal"]["H"] == pytest.approx(h) and tests["kruskal"]["p"] == pytest.approx(p, rel=1e-9, abs=0)
    assert tests["kruskal"]["regions"] == len(groups)
    assert len(tests["dunn"]) == len(groups) * (len(groups) - 1) // 2


def test_dunn_on_a_small_example_worked_by_hand():
    groups = {"A": [1.0, 2.0, 3.0], "B": [3.0, 4.0, 5.0, 6.0], "C": [7.0, 8.0]}
    # ranks of 1 2 3 3 4 5 6 7 8: 1 2 3.5 3.5 5 6 7 8 9 (one tie of size 2)
    mean = {"A": (1 + 2 + 3.5) / 3, "B": (3.5 + 5 + 6 + 7) / 4, "C": (8 + 9) / 2}
    n = 9
    var = n * (n + 1) / 12 - (2 ** 3 - 2) / (12 * (n - 1))  # 7.5 - 0.0625
    z_ab = (mean["A"] - mean["B"]) / np.sqrt(var * (1 / 3 + 1 / 4))
    z_ac = (mean["A"] - mean["C"]) / np.sqrt(var * (1 / 3 + 1 / 2))
    z_bc = (mean["B"] - mean["C"]) / np.sqrt(var * (1 / 4 + 1 / 2))
    p = {k: 2 * norm.sf(abs(z)) for k, z in {"AB": z_ab, "AC": z_ac, "BC": z_bc}.items()}
    # Holm by hand: smallest p times 3, next times 2, last times 1, kept monotone and at most 1
    order = sorted(p, key=p.get)
    holm, running = {}, 0.0
    for i, k in enumerate(order):
        running = max(running, min(1.0, p[k] * (3 - i)))
        holm[k] = running
    d = content.dunn_test(groups)
    assert list(zip(d["a"], d["b"])) == [("A", "B"), ("A", "C"), ("B", "C")]
    np.testing.assert_allclose(d["z"], [z_ab, z_ac, z_bc], rtol=1e-12)
    np.testing.assert_allclose(d["p"], [p["AB"], p["AC"], p["BC"]], rtol=1e-12)
    np.testing.assert_allclose(d["p_adjusted"], [holm["AB"], holm["AC"], holm["BC"]], rtol=1e-12)
    # the known value, by hand: (6.5/3 - 8.5) / sqrt((7.5 - 6/96) * (1/3 + 1/2)) = -6.3333 / 2.4896 = -2.5440
    assert z_ac == pytest.approx(-2.5440, abs=1e-4)
    np.testing.assert_allclose(d["mean_rank_a"], [mean["A"], mean["A"], mean["B"]])


# --------------------------------------------------------------------------- sentences
def test_identical_groups_give_no_significant_difference():
    same = [10.0, 20.0, 30.0, 40.0, 50.0]
    lines = content.comparison_sentences({"ML01": same, "ML02": same, "ML03": same},
                                         {"ML01": "Kayes", "ML02": "Koulikoro", "ML03": "Sikasso"})
    assert len(lines) == 1 and "no significant difference" in lines[0]
    assert "Kruskal–Wallis H = 0.0, p = 1.000" in lines[0]
    flat = content.comparison_sentences({"a": [1.0, 1.0], "b": [1.0, 1.0]})
    assert flat == ["Across the 2 regions there is no significant difference in the index (every value is the same)."]


def test_sentences_name_only_differences_with_adjusted_p_below_005():
    rng = np.random.default_rng(3)
    groups = {"A": rng.normal(80, 5, 60), "B": rng.normal(79, 5, 60), "C": rng.normal(40, 5, 60)}
    lines = content.comparison_sentences(groups, {"A": "Alpha", "B": "Beta", "C": "Gamma"})
    d = content.dunn_test(groups).set_index(["a", "b"])
    assert d.loc[("A", "B"), "p_adjusted"] >= 0.05 and d.loc[("B", "C"), "p_adjusted"] < 0.05
    assert lines[0].startswith("Across the 3 regions the index differs (Kruskal–Wallis H = ")
    significant = [s for s in lines if "the difference is significant" in s]
    assert len(significant) == 1 and significant[0].startswith("Gamma (median ")
    assert "is less stable than Beta (" in significant[0] and "Holm-adjusted p < 0.001" in significant[0]
    assert "Alpha and Beta" in lines[-1] and "No significant difference" in lines[-1]
    assert not any("Alpha" in s and "significant (Dunn" in s for s in lines)
    assert content.comparison_sentences(groups, {"A": "Alpha", "B": "Beta", "C": "Gamma"}) == lines


def test_region_sentences_agree_with_the_dunn_table(overview):
    tests = content.region_tests(overview)
    lines = content.region_test_text(overview)
    assert lines == tests["sentences"] and lines[0].startswith("Across the 10 regions the index differs")
    dunn = tests["dunn"]
    adjusted = {frozenset(ab): q for ab, q in zip(zip(dunn["Region A"], dunn["Region B"]), dunn["Holm-adjusted p"])}
    league = content.league_table(overview)["Region"].tolist()
    for high, low in zip(league, league[1:]):
        said = any(s.startswith(f"{low} (median") and f"than {high} (" in s for s in lines)
        assert said == (adjusted[frozenset((high, low))] < 0.05)
    assert (dunn["Significant"] == (dunn["Holm-adjusted p"] < 0.05)).all()
    assert content.region_test_text(overview) == lines
