"""Sobol sensitivity of outputs to modelling choices (stability.sensitivity): known indices of
textbook functions, the mapping of factors, determinism, errors, the chart and the sentence."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from stability import sensitivity as sa


def _column(configs, name):
    return np.array([c[name] for c in configs], dtype=float)


def _row(table, output, factor):
    rows = table[(table["output"] == output) & (table["factor"] == factor)]
    assert len(rows) == 1
    return rows.iloc[0]


# --------------------------------------------------------------------------- known indices
@pytest.mark.parametrize("kind", ["discrete", "continuous"])
def test_inert_factor_is_zero_and_dominant_factor_is_one(kind):
    if kind == "discrete":
        factors = [sa.Factor("x1", options=(0.0, 1.0, 3.0, 4.0)), sa.Factor("x2", options=("a", "b", "c"))]

        def model(configs):
            return np.array([c["x1"] ** 2 + 0 * ord(c["x2"]) for c in configs])
    else:
        factors = [sa.Factor("x1", bounds=(0, 1)), sa.Factor("x2", bounds=(-5, 5))]

        def model(configs):
            return np.exp(2 * _column(configs, "x1")) + 0 * _column(configs, "x2")

    table = sa.sobol(factors, model, 256, outputs=["y"], num_resamples=200)
    x1, x2 = _row(table, "y", "x1"), _row(table, "y", "x2")
    assert x1["S1"] > 0.9 and x1["ST"] > 0.9
    assert abs(x2["S1"]) < 0.05 and abs(x2["ST"]) < 0.05
    assert (table["note"] == "").all()


def test_ishigami():
    a, b = 7.0, 0.1
    factors = [sa.Factor(f"x{i}", bounds=(-math.pi, math.pi)) for i in (1, 2, 3)]

    def model(configs):
        x1, x2, x3 = (_column(configs, f"x{i}") for i in (1, 2, 3))
        return np.sin(x1) + a * np.sin(x2) ** 2 + b * x3 ** 4 * np.sin(x1)

    table = sa.sobol(factors, model, 1024, outputs=["ishigami"], num_resamples=300)
    # analytic values (Ishigami & Homma 1990; e.g. Saltelli et al. 2008, p. 179)
    var = a ** 2 / 8 + b * math.pi ** 4 / 5 + b ** 2 * math.pi ** 8 / 18 + 0.5
    v1 = 0.5 * (1 + b * math.pi ** 4 / 5) ** 2
    v2 = a ** 2 / 8
    v13 = b ** 2 * math.pi ** 8 * (1 / 18 - 1 / 50)
    s1 = np.array([v1, v2, 0.0]) / var
    st = np.array([v1 + v13, v2, v13]) / var
    np.testing.assert_allclose(s1, [0.314, 0.442, 0.0], atol=1e-3)
    np.testing.assert_allclose(st, [0.558, 0.442, 0.244], atol=1e-3)
    np.testing.assert_allclose(table["S1"], s1, atol=0.05)
    np.testing.assert_allclose(table["ST"], st, atol=0.05)
    assert (table["S1_low"] <= table["S1"]).all() and (table["S1"] <= table["S1_high"]).all()
    assert (table["ST_low"] <= st).all() and (st <= table["ST_high"]).all()


def test_additive_model():
    factors = [sa.Factor("a", bounds=(0, 1)), sa.Factor("b", bounds=(0, 1))]
    table = sa.sobol(factors, lambda cs: _column(cs, "a") + 2 * _column(cs, "b"), 512, outputs=["y"])
    np.testing.assert_allclose(table["S1"], [0.2, 0.8], atol=0.03)
    np.testing.assert_allclose(table["ST"], [0.2, 0.8], atol=0.03)
    # additive: no interactions, so the total effect is the first-order index
    np.testing.assert_allclose(table["ST"], table["S1"], atol=0.01)
    half = (table["ST_high"] - table["ST_low"]) / 2
    np.testing.assert_allclose(table["ST_high"] - table["ST"], half)
    assert ((table["ST_low"] < [0.2, 0.8]) & ([0.2, 0.8] < table["ST_high"])).all()


# --------------------------------------------------------------------------- table
def _toy(seed=0, **kw):
    factors = [sa.Factor("method", options=("minmax", "zscore", "rank")), sa.Factor("noise", bounds=(0, 1))]

    def model(configs):
        m = np.array([{"minmax": 0.0, "zscore": 1.0, "rank": 2.5}[c["method"]] for c in configs])
        x = _column(configs, "noise")
        return np.column_stack([m + x, m * x, np.full(len(configs), 7.0)])

    return sa.sobol(factors, model, 64, outputs=["rank_shift", "median_ML05", "constant"], seed=seed, **kw)


def test_table_layout():
    table = _toy()
    assert list(table.columns) == ["output", "factor", "S1", "S1_low", "S1_high", "ST", "ST_low", "ST_high", "note"]
    assert list(zip(table["output"], table["factor"])) == [
        (o, f) for o in ("rank_shift", "median_ML05", "constant") for f in ("method", "noise")]
    assert table.attrs == {"n_base": 64, "runs": 64 * 4, "conf_level": 0.95, "num_resamples": 1000, "seed": 0}


def test_same_seed_same_table_other_seed_other_table():
    first, again, other = _toy(seed=0).to_csv(), _toy(seed=0).to_csv(), _toy(seed=1).to_csv()
    assert first == again
    assert first != other


def test_bootstrap_seed_changes_only_the_intervals():
    factors = [sa.Factor("a", bounds=(0, 1)), sa.Factor("b", bounds=(0, 1))]
    U, _ = sa.sample(factors, 64, seed=0)
    Y = U[:, 0] * U[:, 1] + U[:, 0]
    t0 = sa.analyse(factors, Y, 64, outputs=["y"], seed=0)
    t0b = sa.analyse(factors, Y, 64, outputs=["y"], seed=0)
    t5 = sa.analyse(factors, Y, 64, outputs=["y"], seed=5)
    pd.testing.assert_frame_equal(t0, t0b)
    pd.testing.assert_series_equal(t0["S1"], t5["S1"])
    assert not np.allclose(t0["S1_high"], t5["S1_high"])


def test_constant_output_gives_zeros_and_a_note():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = _toy()
    const = table[table["output"] == "constant"]
    assert (const[["S1", "S1_low", "S1_high", "ST", "ST_low", "ST_high"]] == 0).all().all()
    assert const["note"].str.contains("does not vary").all()
    assert not table[["S1", "ST", "S1_low", "ST_high"]].isna().any().any()
    assert (table.loc[table["output"] != "constant", "note"] == "").all()
    # rounding noise is no variation either
    factors = [sa.Factor("a", bounds=(0, 1))]
    U, _ = sa.sample(factors, 8, 0)
    noisy = 0.1 + 0.2 + U[:, 0] * 1e-16
    assert sa.analyse(factors, noisy, 8, outputs=["y"])["note"].str.contains("does not vary").all()


def test_conf_level_widens_the_intervals():
    narrow, wide = _toy(conf_level=0.5), _toy(conf_level=0.99)
    assert ((wide["ST_high"] - wide["ST_low"]) >= (narrow["ST_high"] - narrow["ST_low"])).all()
    assert ((wide["ST_high"] - wide["ST_low"]) > (narrow["ST_high"] - narrow["ST_low"])).any()


def test_bad_outputs_are_refused():
    factors = [sa.Factor("a", bounds=(0, 1)), sa.Factor("b", options=(1, 2))]
    U, _ = sa.sample(factors, 8, 0)
    good = np.column_stack([U[:, 0], U[:, 1]])
    with pytest.raises(ValueError, match=r"expected \(32, 2\)"):
        sa.analyse(factors, good[:-1], 8, outputs=["y", "z"])
    with pytest.raises(ValueError, match=r"expected \(32, 3\)"):
        sa.analyse(factors, good, 8, outputs=["y", "z", "w"])
    bad = good.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="output 'z' is not a finite number in 1 of 32 runs"):
        sa.analyse(factors, bad, 8, outputs=["y", "z"])
    with pytest.raises(ValueError, match="conf_level"):
        sa.analyse(factors, good, 8, outputs=["y", "z"], conf_level=95)
    with pytest.raises(ValueError, match="unique"):
        sa.analyse(factors, good, 8, outputs=["y", "y"])
    with pytest.raises(ValueError, match="returned None"):
        sa.sobol(factors, lambda cs: None, 8, outputs=["y"])


# --------------------------------------------------------------------------- factors and sampling
def test_discrete_option_mapping():
    f = sa.Factor("outliers", options=["winsorise", "log", "none", "clip"])
    assert f.options == ("winsorise", "log", "none", "clip")
    assert [f.value(u) for u in (0.0, 0.2499999, 0.25, 0.5, 0.7499999, 0.75, 0.9999999, 1.0)] == [
        "winsorise", "winsorise", "log", "none", "none", "clip", "clip", "clip"]
    assert sa.Factor("one", options=("only",)).value(1.0) == "only"
    for u in (-0.01, 1.01, float("nan")):
        with pytest.raises(ValueError, match="factor 'outliers': u must be in"):
            f.value(u)

    U, configs = sa.sample([f, sa.Factor("w", bounds=(0, 1))], 256, seed=3)
    chosen = pd.Series([c["outliers"] for c in configs])
    counts = chosen.value_counts()
    assert set(counts.index) == set(f.options)
    assert counts.min() > 0.2 * len(configs)          # each about a quarter
    assert list(chosen) == [f.options[min(int(u * 4), 3)] for u in U[:, 0]]


def test_continuous_mapping_and_sample_shape():
    noise = sa.Factor("noise", bounds=(-0.2, 0.6))
    assert noise.value(0) == -0.2 and noise.value(1) == pytest.approx(0.6) and noise.value(0.5) == pytest.approx(0.2)
    assert sa.Factor("u", bounds=(0, 1)).value(0.37) == 0.37
    factors = [noise, sa.Factor("method", options=("a", "b")), sa.Factor("u", bounds=(0, 1))]
    U, configs = sa.sample(factors, 32, seed=0)
    assert U.shape == (32 * 5, 3) and len(configs) == 32 * 5
    assert ((U >= 0) & (U <= 1)).all()
    np.testing.assert_allclose(_column(configs, "noise"), -0.2 + 0.8 * U[:, 0])
    np.testing.assert_array_equal(_column(configs, "u"), U[:, 2])
    U2, _ = sa.sample(factors, 32, seed=0)
    np.testing.assert_array_equal(U, U2)
    assert not np.array_equal(U, sa.sample(factors, 32, seed=1)[0])


@pytest.mark.parametrize("n, hint", [(100, "use 64 or 128"), (3, "use 2 or 4"), (1, "at least 2"), (0, "at least 2"),
                                     (-8, "at least 2")])
def test_n_base_must_be_a_power_of_two(n, hint):
    factors = [sa.Factor("a", bounds=(0, 1))]
    with pytest.raises(ValueError, match="power of 2") as err:
        sa.sample(factors, n, 0)
    assert hint in str(err.value)
    with pytest.raises(ValueError, match="power of 2"):
        sa.sobol(factors, lambda cs: _column(cs, "a"), n, outputs=["y"])
    with pytest.raises(ValueError, match="power of 2"):
        sa.analyse(factors, np.zeros(3 * abs(n)), n, outputs=["y"])
    with pytest.raises(ValueError, match="power of 2"):
        sa.sample(factors, 64.0, 0)


@pytest.mark.parametrize("kwargs, message", [
    ({}, "it has neither"),
    ({"options": ()}, "options is empty"),
    ({"options": []}, "options is empty"),
    ({"options": "abc"}, "options must be a tuple or list"),
    ({"bounds": (2.0, 1.0)}, "low < high"),
    ({"bounds": (1.0, 1.0)}, "low < high"),
    ({"bounds": (0.0, float("inf"))}, "finite"),
    ({"bounds": (0.0,)}, "two numbers"),
    ({"bounds": ("a", "b")}, "two numbers"),
    ({"options": (1, 2), "bounds": (0, 1)}, "not both"),
])
def test_invalid_factor(kwargs, message):
    with pytest.raises(ValueError, match=message) as err:
        sa.Factor("normalisation", **kwargs)
    text = str(err.value)
    assert "'normalisation'" in text and "\n" not in text


def test_invalid_factor_names():
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        sa.Factor("", options=(1,))
    with pytest.raises(ValueError, match="repeated: 'w'"):
        sa.sample([sa.Factor("w", bounds=(0, 1)), sa.Factor("w", options=(1, 2))], 8, 0)
    with pytest.raises(ValueError, match="no factors"):
        sa.sample([], 8, 0)


# --------------------------------------------------------------------------- chart and sentence
def _chart_table():
    factors = [sa.Factor("weights", bounds=(0, 1)), sa.Factor("normalisation_method", options=("a", "b", "c")),
               sa.Factor("outlier_treatment", options=("w", "n"))]

    def model(configs):
        m = np.array([{"a": 0.0, "b": 1.0, "c": 2.0}[c["normalisation_method"]] for c in configs])
        w = _column(configs, "weights")
        o = np.array([c["outlier_treatment"] == "w" for c in configs], dtype=float)
        return np.column_stack([m + 2 * w + 0.01 * o, np.ones(len(configs))])

    return sa.sobol(factors, model, 128, outputs=["mean rank shift", "constant"])


def test_chart(tmp_path):
    table = _chart_table()
    fig = sa.chart(table, "mean rank shift", labels={"normalisation_method": "normalisation method"})
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    bars = [c for c in ax.containers if type(c).__name__ == "BarContainer"]
    assert len(bars) == 2 and all(len(c.patches) == 3 for c in bars)       # total effect and first order
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["normalisation method", "weights", "outlier treatment"]    # by total effect
    widths = [p.get_width() for p in bars[0].patches]
    assert widths == sorted(widths, reverse=True)
    titles = [t.get_text() for t in fig.texts] + [ax.get_title(loc="left")]
    assert any("mean rank shift" in t for t in titles)
    fig.savefig(tmp_path / "chart.png")
    assert (tmp_path / "chart.png").stat().st_size > 5000

    # into given axes; a constant output says so
    host = Figure()
    ax = host.add_subplot()
    assert sa.chart(table, "constant", ax=ax) is host
    assert "constant" in ax.get_title(loc="left")
    assert any("same in every run" in t.get_text() for t in ax.texts)
    with pytest.raises(ValueError, match="no output 'nope'"):
        sa.chart(table, "nope")


def test_chart_shows_estimates_within_zero_and_one():
    """A first-order estimate of -0.01 (sampling noise) is a bar of 0 written 0.00, its whisker from 0."""
    table = _chart_table()
    row = (table["output"] == "mean rank shift") & (table["factor"] == "outlier_treatment")
    table.loc[row, ["S1", "S1_low", "S1_high"]] = [-0.01, -0.04, 0.02]
    table.loc[(table["output"] == "mean rank shift") & (table["factor"] == "normalisation_method"), "ST"] = 1.02
    ax = sa.chart(table, "mean rank shift").axes[0]
    total, first = [c for c in ax.containers if type(c).__name__ == "BarContainer"]
    assert [p.get_width() for p in first.patches][2] == 0.0 and total.patches[0].get_width() == 1.0
    written = [t.get_text() for t in ax.texts]
    assert "-0.01" not in written and "1.02" not in written and "0.00" in written and "1.00" in written
    assert -0.05 < ax.get_xlim()[0] < 0                              # whiskers within [0, 1] too
    assert "noisy" not in ax.get_xlabel()                            # a little outside [0, 1]: not noisy


def _noisy_table():
    """Raw estimates as SALib gives them with too few base samples: S1 above ST, S1 below 0, ST above 1."""
    table = _chart_table()
    mine = table["output"] == "mean rank shift"
    table.loc[mine & (table["factor"] == "normalisation_method"), ["S1", "S1_low", "S1_high", "ST", "ST_low",
                                                                   "ST_high"]] = [0.51, 0.2, 0.8, 0.38, 0.2, 0.56]
    table.loc[mine & (table["factor"] == "weights"), ["S1", "S1_low", "S1_high", "ST", "ST_low", "ST_high"]] = [
        -0.12, -0.3, 0.06, 1.2, 0.8, 1.6]
    return table


def test_for_readers_keeps_shares_consistent_and_flags_noise():
    raw = _noisy_table()
    shown = sa.for_readers(raw)
    assert list(shown.columns) == [*sa.COLUMNS, "noisy"] and shown.attrs["n_base"] == raw.attrs["n_base"]
    values = shown[["S1", "S1_low", "S1_high", "ST", "ST_low", "ST_high"]].to_numpy()
    assert ((values >= 0) & (values <= 1)).all()
    assert (shown["S1"] <= shown["ST"]).all() and (shown["S1_high"] <= shown["ST_high"]).all()
    assert (shown["S1_low"] <= shown["S1"]).all() and (shown["ST_low"] <= shown["ST"]).all()
    assert (shown["S1"] <= shown["S1_high"]).all() and (shown["ST"] <= shown["ST_high"]).all()
    row = shown[(shown["output"] == "mean rank shift") & (shown["factor"] == "normalisation_method")].iloc[0]
    assert row["S1"] == row["ST"] == pytest.approx(0.38)
    assert shown.groupby("output")["noisy"].all().to_dict() == {"constant": False, "mean rank shift": True}
    assert not sa.for_readers(_chart_table())["noisy"].any()
    # the raw table is untouched (sensitivity.csv keeps SALib's estimates)
    assert raw.loc[(raw["output"] == "mean rank shift") & (raw["factor"] == "weights"), "ST"].iloc[0] == 1.2


def test_noisy_estimates_are_said_to_be_noisy_with_how_to_get_better_ones():
    raw = _noisy_table()
    text = sa.summary_sentence(raw, "mean rank shift", output_label="the ranking")
    assert "(total effect 1.00, 95 % interval 0.80\u20131.00)" in text        # the weights, within [0, 1]
    assert "These Sobol estimates are noisy: with 128 base samples" in text and "n_base=512" in text
    assert sa.noise_sentence(raw, "constant") is None and sa.noise_sentence(_chart_table()) is None
    more = sa.noise_sentence(raw, more="stability uncertainty --sobol {n}")
    assert more.endswith("(stability uncertainty --sobol 512).")
    raw.attrs["n_base"] = 16
    assert "--sobol 256" in sa.noise_sentence(raw, more="stability uncertainty --sobol {n}")
    ax = sa.chart(raw, "mean rank shift").axes[0]
    written = {t.get_text() for t in ax.texts}
    assert written <= {f"{x:.2f}" for x in np.linspace(0, 1, 101)}           # every number within [0, 1]
    assert "noisy estimates (16 base samples)" in ax.get_xlabel().replace("\n", " ")
    table = sa.readable(raw, "mean rank shift", labels={"normalisation_method": "normalisation method"})
    assert table.columns.tolist() == ["Output", "Choice", "Total effect", "Total effect, interval", "First order",
                                      "First order, interval", "Note"]
    assert table["Choice"].tolist() == ["weights", "normalisation method", "outlier treatment"]
    assert (table["First order"] <= table["Total effect"]).all() and table["First order"].min() >= 0
    assert (table["Note"] == "noisy estimates: more base samples needed").all()


def test_the_only_factor_that_varies_explains_everything_by_definition():
    """One factor: ST is 1 by definition, whatever the (noisy) estimate; no noise to show."""
    factors = [sa.Factor("weight_set", options=("a", "b", "c", "d"))]

    def model(configs):
        return np.array([{"a": 0.0, "b": 1.0, "c": 3.0, "d": 7.0}[c["weight_set"]] for c in configs])

    raw = sa.sobol(factors, model, 4, outputs=["rank_shift"], num_resamples=50)
    raw.loc[0, ["S1", "S1_low", "S1_high", "ST", "ST_low", "ST_high"]] = [0.9, 0.4, 1.4, 1.02, 0.77, 1.27]
    shown = sa.for_readers(raw)
    assert shown.loc[0, ["S1", "S1_low", "S1_high", "ST", "ST_low", "ST_high"]].tolist() == [1.0] * 6
    assert not shown["noisy"].any() and shown.loc[0, "note"] == sa.NOTE_ONLY_FACTOR
    text = sa.summary_sentence(raw, "rank_shift", labels={"weight_set": "weights"}, output_label="the ranking")
    assert text == ("Only one modelling choice varies, the weights: it accounts for all of the variation of the "
                    "ranking that the choices cause (total effect 1 by definition).")
    ax = sa.chart(raw, "rank_shift").axes[0]
    assert {t.get_text() for t in ax.texts} == {"1.00"} and "1 by definition" in ax.get_xlabel().replace("\n", " ")


def test_summary_sentence():
    table = _chart_table()
    text = sa.summary_sentence(table, "mean rank shift", labels={"normalisation_method": "normalisation method"},
                               output_label="the ranking")
    top = _row(table, "mean rank shift", "normalisation_method")
    second = _row(table, "mean rank shift", "weights")
    assert text.startswith(
        f"Which choices matter most for the ranking: the normalisation method (total effect {top['ST']:.2f}, "
        f"95 % interval {max(top['ST_low'], 0):.2f}\u2013{min(top['ST_high'], 1):.2f}), "
        f"then the weights ({second['ST']:.2f}); ")
    assert text.endswith("the outlier treatment changes little (< 0.05).")
    assert "\n" not in text
    assert sa.summary_sentence(table, "constant") == "No choice changes 'constant': it is the same in every run."


# --------------------------------------------------------------------------- on the index itself
def test_on_the_mali_index(mali_result):
    base = mali_result.scores
    latest = base["round"] == base["round"].max()
    factors = [
        sa.Factor("normalisation", options=({"normalise.method": "goalposts"},
                                            {"normalise.method": "minmax", "normalise.l": 0, "normalise.u": 100})),
        sa.Factor("safety_weight", bounds=(0.5, 2.0)),
        sa.Factor("unused", options=("x", "y")),
    ]

    def model(configs):
        out = []
        for c in configs:
            s = mali_result.recompute({**c["normalisation"], "aggregates.safety.weight": c["safety_weight"]}).scores
            shift = (s["rank_national"] - base["rank_national"]).abs().mean()
            out.append([shift, s.loc[latest, "stability"].median()])
        return np.array(out)

    table = sa.sobol(factors, model, 8, outputs=["rank_shift", "median"], num_resamples=100)
    assert not table[["S1", "ST", "S1_low", "ST_high"]].isna().any().any()
    unused = table[table["factor"] == "unused"]
    assert (unused[["S1", "ST"]] == 0).all().all()
    used = table[(table["output"] == "rank_shift") & (table["factor"] != "unused")]
    assert (used["ST"] > 0.05).all()


def test_chart_in_given_axes_wraps_its_axis_label_to_their_width():
    """Drawn into a report's axes, the label under the bars ran past both edges of the figure."""
    table = _chart_table()
    host = Figure(figsize=(9.0, 3.0))
    ax = host.add_axes([2.3 / 9.0, 0.4, 6.2 / 9.0, 0.5])
    sa.chart(table, "mean rank shift", ax=ax, output_label="the ranking across all three countries, round 3")
    lines = ax.get_xlabel().split("\n")
    assert len(lines) > 1 and max(map(len, lines)) <= int(6.2 / (10 * 0.62 / 72)), lines
