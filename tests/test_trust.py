"""Paths that used to publish wrong numbers without a word: each is now an error or a documented rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pathlib import Path
import pytest

import stability as st
from stability.cli import main
from stability.exceptions import SpecError
from stability.registry import families, markdown_table, update_docs


def run(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


# ----------------------------------------------------------------------------- weights that sum to zero
def test_an_aggregate_whose_children_all_weigh_zero_is_a_spec_error(mali_spec):
    with pytest.raises(SpecError) as err:
        mali_spec.with_changes({f"aggregates.{p}.weight": 0 for p in ("safety", "livelihoods", "cohesion")})
    assert err.value.column == "aggregates.stability" and "every child has weight 0" in err.value.message
    safety = [i.id for i in mali_spec.indicators if i.parent == "safety"]
    with pytest.raises(SpecError) as err:
        mali_spec.with_changes({f"indicators.{i}.weight": 0 for i in safety})
    assert err.value.column == "aggregates.safety"
    # one zero weight among positive ones is a legitimate choice
    assert mali_spec.with_changes({"indicators.robbery.weight": 0}).indicator("robbery").weight == 0


def test_validate_and_score_report_a_zero_weight_pillar(capsys, dataset_copy):
    d = dataset_copy
    text = d.spec.read_text(encoding="utf-8")
    assert text.count("parent: cohesion,") == 7
    text = text.replace("parent: cohesion,", "parent: cohesion, weight: 0,")  # every cohesion indicator
    d.spec.write_text(text, encoding="utf-8")
    for command in ("validate", "score"):
        rc, out, err = run(capsys, command, "--data", d.data, "--spec", d.spec, "--out", d.root / "out") \
            if command == "score" else run(capsys, command, "--data", d.data, "--spec", d.spec)
        assert rc == 2
        assert len(err.splitlines()) == 1 and "field 'aggregates.cohesion'" in err and "weight 0" in err
    assert not (d.root / "out").exists()


# ----------------------------------------------------------------------------- scale and categories
@pytest.mark.parametrize("method", ["zscore", "rank"])
def test_fixed_cut_offs_on_an_index_without_a_scale_are_refused(mali_spec, method):
    with pytest.raises(SpecError) as err:
        mali_spec.with_changes({"normalise.method": method})
    msg = str(err.value)
    assert len(msg.splitlines()) == 1
    assert f"normalise.method '{method}'" in msg and "categories.method: quantile" in msg


def test_copeland_index_needs_quantile_categories(mali_spec):
    with pytest.raises(SpecError, match="levels.3.method 'copeland'"):
        mali_spec.with_changes({"levels.3.method": "copeland"})
    spec = mali_spec.with_changes({"levels.3.method": "copeland", "categories.method": "quantile",
                                   "categories.cuts": [0.25, 0.75]})
    assert spec.category_rule() == ("quantile", [0.25, 0.75])


def test_cut_offs_outside_the_index_range_are_refused(mali_spec):
    with pytest.raises(SpecError, match=r"outside the index's range \[0, 10\]") as err:
        mali_spec.with_changes({"normalise.scale": 10})
    assert err.value.column == "categories.cuts"


def test_default_categories_follow_the_scale(make_spec, make_frame):
    X = make_frame(np.arange(30, dtype=float).reshape(10, 3) % 7)
    on_ten = make_spec(normalise={"method": "minmax", "l": 0, "u": 10})
    assert on_ten.index_range() == (0.0, 10.0) and on_ten.category_rule() == ("fixed", [4.0, 6.0])
    res = st.compute(X, on_ten)
    idx = res.scores["I"].to_numpy()
    expected = np.where(idx < 4, "low", np.where(idx < 6, "medium", "high"))
    assert res.scores["category"].astype(str).tolist() == expected.tolist()
    # an index with no fixed range: the 0.4 and 0.6 quantiles of each round
    z = make_spec(normalise={"method": "zscore"})
    assert z.index_range() is None and z.category_rule() == ("quantile", [0.4, 0.6])
    res = st.compute(X, z)
    cuts = np.quantile(res.scores["I"], [0.4, 0.6])
    idx = res.scores["I"].to_numpy()
    expected = np.where(idx < cuts[0], "low", np.where(idx < cuts[1], "medium", "high"))
    assert res.scores["category"].astype(str).tolist() == expected.tolist()


@pytest.mark.parametrize("changes", [
    {}, {"normalise.method": "minmax"}, {"normalise.method": "percentile"},
    {"levels.2.method": "harmonic", "normalise.method": "minmax", "normalise.l": 1},
    {"levels.3.method": "generalised", "levels.3.p": 3},
])
def test_every_accepted_bounded_spec_gives_an_index_from_0_to_100(mali_result, changes):
    res = mali_result.recompute(changes)
    lo, hi = res.spec.index_range()
    idx = res.scores[res.index_id].dropna()
    assert 0 <= lo and hi <= 100
    assert idx.between(lo, hi).all()


# ----------------------------------------------------------------------------- Copeland and the threshold
def test_copeland_honours_the_availability_threshold(make_spec, make_frame):
    X = make_frame([[1.0, 2.0, 3.0], [2.0, np.nan, np.nan], [3.0, 1.0, 2.0], [0.0, 0.0, 1.0]])
    spec = make_spec(normalise={"method": "none"}, levels=[{"method": "copeland", "threshold": 0.5}],
                     categories={"method": "quantile"})
    scores = st.compute(X, spec).scores["I"].to_numpy()
    assert np.isnan(scores[1])  # one child of three present: below the threshold, as with the means
    assert not np.isnan(scores[[0, 2, 3]]).any()
    spec = spec.with_changes({"levels.2.threshold": None})
    assert not np.isnan(st.compute(X, spec).scores["I"].to_numpy()).any()


# ----------------------------------------------------------------------------- one place per method
def test_a_new_normaliser_is_one_registered_function(mali_result, monkeypatch):
    from stability.normalise import NORMALISERS

    monkeypatch.setattr(NORMALISERS, "_methods", dict(NORMALISERS._methods))

    @NORMALISERS.register("halved", summary="`x / 2`", bounds=lambda p: (0.0, 100.0))
    def _halved(x, d, p, s, out, name):
        np.multiply(x, d * 50.0 / 3.0, out=out)  # answers 0..3 onto 0..50

    from stability.paths import default_spec

    spec = st.load_spec(default_spec())
    share = [i.id for i in spec.indicators if i.answers == "share"]
    spec = spec.with_changes({f"indicators.{i}.normalise": {"method": "halved"} for i in share})
    res = mali_result.recompute(spec)
    assert res.stage("normalised")[share].max().max() <= 50
    with pytest.raises(SpecError, match="choose from: .*halved"):
        spec.with_changes({"normalise.method": "doubled"})
    assert "`halved`" in markdown_table(NORMALISERS)


def test_the_spec_accepts_exactly_the_registered_methods(mali_spec):
    def path(option):  # levels and weights are keyed by level number
        return option.replace("levels.", "levels.2.").replace("weights.", "weights.2.")

    for option, registry in families().items():
        for name in registry.names():
            change = {path(option): name}
            if option == "impute.method":
                change["impute.group"] = "admin2_pcode"
            if name == "generalised":
                change["levels.2.p"] = 2
            try:
                mali_spec.with_changes(change)
            except SpecError as exc:  # refused for a reason other than the name
                assert "unknown" not in str(exc), (option, name, exc)
        with pytest.raises(SpecError, match="choose from"):
            mali_spec.with_changes({path(option): "no-such-method"})


def test_the_readme_method_tables_are_the_registries(readme_text):
    assert update_docs(readme_text) == readme_text, "run: python -m stability.registry README.md"
    for registry in families().values():
        assert markdown_table(registry) in readme_text


@pytest.fixture
def readme_text():
    from pathlib import Path

    return (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- rounds
def _set_round(d, line: int, value: str) -> None:
    d.set_cell("key_informants.csv", line, "round", value)


@pytest.mark.parametrize("value, words", [
    ("three", "round 'three' is not a number or an ISO date"),
    ("2022-12", "round '2022-12' is a date but the other rounds are numbers"),
])
def test_a_stray_round_is_an_error_naming_file_column_and_row(capsys, dataset_copy, value, words):
    _set_round(dataset_copy, 40, value)
    rc, out, err = run(capsys, "validate", "--data", dataset_copy.data, "--spec", dataset_copy.spec)
    assert rc == 2
    errors = [line for line in out.splitlines() if line.startswith("error")]
    assert len(errors) == 1, out
    assert "key_informants.csv, column 'round', row 40" in errors[0] and words in errors[0]
    assert "no valid answer" not in out


def test_rounds_declared_in_the_spec_set_the_order_and_refuse_others(mali_data, mali_spec):
    spec = mali_spec.with_changes({"rounds": [{"id": 2, "label": "Round 2 (Feb 2022)"}, {"id": 1}, {"id": 3}]})
    res = st.compute(mali_data, spec)
    assert res.rounds == [2, 1, 3] and res.round_label(2) == "Round 2 (Feb 2022)"
    s = res.scores
    r1 = s[s["round"] == 1].set_index("location_id")["stability"]
    r2 = s[s["round"] == 2].set_index("location_id")["stability"]
    change = s[s["round"] == 1].set_index("location_id")["change"]
    both = r1.index.intersection(r2.index)
    np.testing.assert_allclose(change[both], (r1 - r2)[both], atol=1e-9)  # round 1 follows round 2 here
    from stability.validate import validate

    report = validate(mali_data, mali_spec.with_changes({"rounds": [{"id": 1}, {"id": 2}]}))
    assert any("round 3 is not one of the rounds declared in the spec (1, 2)" in str(p) for p in report.errors)
    with pytest.raises(SpecError, match="mix numbers and dates"):
        mali_spec.with_changes({"rounds": [{"id": 1}, {"id": "2022-12"}]})


def test_iso_date_rounds_are_ordered_by_date(make_spec, make_frame):
    X = make_frame(np.arange(18, dtype=float).reshape(6, 3) % 5, r=["2022-12", "2022-12", "2023-02-01",
                                                                   "2023-02-01", "2021-06", "2021-06"])
    X["loc"] = ["A", "B", "A", "B", "A", "B"]
    res = st.compute(X, make_spec(round="r"))
    assert res.rounds == ["2021-06", "2022-12", "2023-02-01"]


def test_a_thin_round_is_a_warning(capsys, dataset_copy):
    d = dataset_copy
    lines = d.lines("key_informants.csv")
    header = lines[0].split(",")
    r = header.index("round")
    keep = [lines[0]] + [ln for ln in lines[1:] if ln and (ln.split(",")[r] != "3" or ln.split(",")[1].endswith("1"))]
    d.write_lines("key_informants.csv", keep)
    rc, out, err = run(capsys, "validate", "--data", d.data, "--spec", d.spec)
    warnings = [ln for ln in out.splitlines() if ln.startswith("warning") and "partial round" in ln]
    assert rc == 0 and len(warnings) == 1 and "round 3 has" in warnings[0]


# ----------------------------------------------------------------------------- p-code list
def test_a_missing_pcode_list_is_one_line_and_exit_2(capsys, dataset_copy):
    dataset_copy.edit_spec("pcodes: ocha", "pcodes: no/such/pcodes.csv")
    rc, out, err = run(capsys, "validate", "--data", dataset_copy.data, "--spec", dataset_copy.spec)
    assert rc == 2 and len(err.splitlines()) == 1
    assert "no/such/pcodes.csv" in err and "columns.pcodes" in err and "not found" in err


def test_every_pcode_error_is_listed(capsys, dataset_copy):
    d = dataset_copy
    d.set_cell("locations.csv", 10, "admin2_pcode", "ML9999")
    d.set_cell("locations.csv", 20, "admin2_pcode", "ML0201")  # a real cercle of another region
    rc, out, err = run(capsys, "validate", "--data", d.data, "--spec", d.spec)
    errors = [ln for ln in out.splitlines() if ln.startswith("error")]
    assert rc == 2 and len(errors) == 2, out
    assert "ML9999" in errors[0] and "row 10" in errors[0]
    assert "does not belong" in errors[1] and "row 20" in errors[1]
    assert "2 error(s)" in out.splitlines()[-1]



# ----------------------------------------------------------------------------- log transform with a reference round
def test_values_below_the_reference_domain_of_a_log_transform_are_clamped_and_logged(make_spec):
    rng = np.random.default_rng(3)
    n = 60
    skewed = np.concatenate([rng.exponential(1.0, n - 6) + 10, [60, 70, 80, 90, 100, 200]])  # fails the test
    later = skewed.copy()
    later[:3] = [0.0, 1.0, 2.0]  # far below round 1's minimum (about 10)
    X = pd.DataFrame({"loc": [f"L{i:03d}" for i in range(n)] * 2, "r": [1] * n + [2] * n,
                      "a": np.concatenate([skewed, later]), "b": rng.normal(size=2 * n),
                      "c": rng.normal(size=2 * n)})
    spec = make_spec(round="r", treat={"method": "winsorise", "winmax": 1, "log_fallback": True},
                     normalise={"method": "minmax", "scope": "reference", "reference_round": 1})
    res = st.compute(X, spec)
    treated = res.stage("treated")["a"]
    assert treated.notna().all()  # nothing vanishes
    assert (res.scores["n_missing"] == 0).all()
    clamps = res.log[res.log["action"] == "clamped"]
    assert len(clamps) == 3 and set(clamps["before"]) == {0.0, 1.0, 2.0}
    assert (clamps["round"] == 2).all() and (clamps["column"] == "a").all()
    low = treated.xs(2, level="r").iloc[:3]
    assert np.allclose(low, treated.xs(1, level="r").min())  # the lowest logged value of the reference


def test_reports_state_the_index_scale_and_quantile_categories(mali_result):
    from stability.report import content
    from stability.report.context import ReportContext, region_names
    from stability.report.index import render_index

    res = mali_result.recompute({"normalise.method": "zscore", "categories.cuts": None})
    ctx = ReportContext(result=res, round=3, previous_round=2, region="ML05", region_name="Mopti",
                        regions=region_names(res))
    assert content.category_cuts(ctx) is None and content.scale_text(ctx) == "no fixed range"
    assert "no fixed range" in content.what_it_measures(ctx)
    assert content.category_ranges(ctx)["low"].startswith("the 0 % to 40 % of the round's locations")
    page = render_index(Path("/nonexistent"), res, 3, region_names(res))
    assert "0–100" not in page and "no fixed range" in page and "quantile" in page
    ctx = ReportContext(result=mali_result, round=3, previous_round=2, region="ML05", region_name="Mopti",
                        regions=region_names(mali_result))
    assert content.category_ranges(ctx) == {"low": "below 40", "medium": "40 to under 60", "high": "60 and above"}
    assert "from 0 (least stable) to 100 (most stable)" in content.what_it_measures(ctx)


# ---------------------------------------------------------------- keys numbered once, checksums of tables

def _rounds_frame(make_frame, order):
    rng = np.random.default_rng(3)
    df = make_frame(rng.random((12, 3)))
    df["loc"] = [f"L{i % 6:03d}" for i in range(12)]
    df["round"] = [1] * 6 + [2] * 6
    return df.iloc[order].reset_index(drop=True)


@pytest.mark.parametrize("order", [list(range(12)), list(range(11, -1, -1)), [5, 0, 7, 11, 2, 9, 1, 6, 3, 10, 4, 8]])
def test_checked_and_unchecked_preparation_index_the_same_units(make_spec, make_frame, order):
    from stability.pipeline import prepare

    spec = make_spec(round="round")
    df = _rounds_frame(make_frame, order)
    checked, unchecked = prepare(df, spec), prepare(df, spec, check=False)
    pd.testing.assert_frame_equal(checked.values, unchecked.values)
    pd.testing.assert_frame_equal(checked.units, unchecked.units)
    assert checked.values.index.is_monotonic_increasing


def test_a_duplicate_location_and_round_names_both_rows(make_spec, make_frame):
    from stability.io import Dataset
    from stability.validate import validate

    spec = make_spec(round="round")
    df = _rounds_frame(make_frame, list(range(12)))
    df.loc[9, "loc"] = df.loc[4, "loc"]
    report = validate(Dataset(answers=df, files={"answers": "answers.csv"}), spec)
    (err,) = report.errors
    assert "duplicate location and round: same loc, round as row" in err.message
    assert err.row is not None and err.column == "loc"


def test_the_checksum_of_a_table_follows_its_content():
    from stability.io import Dataset

    df = pd.DataFrame({"loc": pd.array(["a", "b", None], dtype="string"), "x": [1.0, np.nan, 3.0],
                       "g": pd.array(["u", "v", "w"], dtype=object), "n": [1, 2, 3]})

    def version(frame):
        return Dataset(answers=frame, files={"answers": "answers"}).version

    same = version(df)
    assert version(df.copy()) == same == version(pd.concat([df.iloc[:2], df.iloc[2:]]))
    assert version(df.assign(x=[1.0, np.nan, 3.5])) != same
    assert version(df.rename(columns={"x": "y"})) != same
    assert version(df.assign(loc=pd.array(["a", None, "b"], dtype="string"))) != same
    assert version(df.assign(g=["uv", "", "w"])) != same      # same characters, other values
    assert version(df.assign(g=[1, "v", "w"])) != same
    # a slice of a table hashes like the same values built afresh (Arrow buffers start at an offset)
    tail = pd.DataFrame({"loc": pd.array(["b", None], dtype="string[pyarrow]"), "x": [np.nan, 3.0]})
    sliced = pd.DataFrame({"loc": pd.array(["a", "b", None], dtype="string[pyarrow]"), "x": [1.0, np.nan, 3.0]})
    assert version(sliced.iloc[1:].reset_index(drop=True)) == version(tail)
    assert version(tail.astype({"loc": "string[python]"})) != version(tail)   # the type is part of the content
