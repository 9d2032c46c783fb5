"""The what-if of weights (stability.whatif): recomputation, summary, widget and notebook.

The logic is checked against ``compute`` with the changed spec and against numbers worked out
here from the scores tables; the widget is built and driven without a browser (sliders set
programmatically); the notebook ``notebooks/weights.ipynb`` is executed with papermill.
"""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stability import whatif
from stability.exceptions import SpecError

REGION = "ML05"
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "weights.ipynb"


@pytest.fixture(scope="module")
def w(mali_result):
    return whatif.WhatIf(mali_result, region=REGION)


def _scope(result, rnd, region=REGION):
    s = result.scores
    return s[(s["round"] == rnd) & (s["admin1_pcode"] == region)].set_index("location_id")


# --------------------------------------------------------------------------- apply
def test_starting_weights_are_the_spec_s(w, mali_spec):
    assert w.round == 3 and w.region == REGION
    assert w.pillars == ["safety", "livelihoods", "cohesion"]
    assert w.pillar_weights == {a.id: a.weight for a in mali_spec.aggregates_at(2)}
    assert w.indicator_weights == {i.id: i.weight for i in mali_spec.indicators}
    assert sum(map(len, w.indicators.values())) == len(mali_spec.indicators)


@pytest.mark.parametrize("pillars, indicators", [
    ({"safety": 2.0}, None),
    ({"safety": 0.5, "cohesion": 2.75}, {"robbery": 3.0, "electricity": 0.0}),
    (None, {"community_tension": 2.5}),
])
def test_apply_equals_compute_with_the_changed_spec(mali_result, mali_data, mali_spec, pillars, indicators):
    from stability.pipeline import compute

    w = whatif.WhatIf(mali_result, region=REGION)
    changes = w.changes(pillars, indicators)
    for k, v in (pillars or {}).items():
        assert changes[f"aggregates.{k}.weight"] == v
    for k, v in (indicators or {}).items():
        assert changes[f"indicators.{k}.weight"] == v
    got = w.apply(pillars, indicators)
    expected = compute(mali_data, mali_spec.with_changes(changes))
    assert got.spec_hash == expected.spec_hash != mali_result.spec_hash
    pd.testing.assert_frame_equal(got.scores, expected.scores)
    assert w.last is got


def test_apply_reuses_the_base_and_the_last_result(mali_result):
    w = whatif.WhatIf(mali_result, region=REGION)
    assert w.apply() is mali_result
    assert w.apply({"safety": 1.0}, {"robbery": 1.0}) is mali_result  # the starting weights: nothing changed
    first = w.apply({"safety": 2.0})
    assert w.apply({"safety": 2.0}) is first  # cached
    assert w.apply({"safety": 2.5}) is not first


def test_apply_is_fast(mali_result):
    """Only the aggregation and the ranks run again: well under a second on the embedded survey."""
    w = whatif.WhatIf(mali_result, region=REGION)
    times = []
    for k in range(5):
        t0 = time.perf_counter()
        w.apply({"safety": 1.25 + 0.25 * k}, {"robbery": 2.0})
        times.append(time.perf_counter() - t0)
    assert statistics.median(times) < 0.25, times
    assert w.last.stage("normalised") is mali_result.stage("normalised")  # earlier stages shared


def test_unknown_ids_and_refused_weights(mali_result):
    w = whatif.WhatIf(mali_result, region=REGION)
    with pytest.raises(KeyError, match="no pillar 'security'"):
        w.apply({"security": 2.0})
    with pytest.raises(KeyError, match="no indicator 'nope'"):
        w.apply(indicator_weights={"nope": 1.0})
    with pytest.raises(SpecError, match="every child has weight 0 .safety, livelihoods, cohesion."):
        w.apply({"safety": 0, "livelihoods": 0, "cohesion": 0})
    with pytest.raises(SpecError, match="every child has weight 0"):
        w.apply(indicator_weights={i: 0.0 for i in w.indicators["cohesion"]})
    with pytest.raises(SpecError):
        w.apply({"safety": -1.0})


def test_unknown_region_or_round(mali_result):
    from stability.exceptions import ParameterError

    with pytest.raises(ParameterError, match="unknown region 'ML99'"):
        whatif.WhatIf(mali_result, region="ML99")
    with pytest.raises(ParameterError, match="round '7' is not in the data"):
        whatif.WhatIf(mali_result, survey_round=7)


def test_a_derived_level_becomes_written_when_its_weights_are_set(mali_result):
    d_spec = mali_result.spec.with_changes({"weights": {"3": {"method": "pca"}}})
    derived = mali_result.recompute(d_spec)
    w = whatif.WhatIf(derived, region=REGION)
    shares = derived.weights.query("level == 3").set_index("child")["weight"]
    assert w.pillar_weights == pytest.approx((shares * 3).to_dict())
    assert w.apply(indicator_weights={"robbery": 2.0}).spec.weights.keys() == {"3"}  # pillars still derived
    new = w.apply({"safety": 2.0})
    assert "3" not in new.spec.weights
    got = new.weights.query("level == 3").set_index("child")["weight"]
    expected = pd.Series({**w.pillar_weights, "safety": 2.0})
    assert got.to_dict() == pytest.approx((expected / expected.sum()).to_dict())


# --------------------------------------------------------------------------- summary
def test_summary_hand_check(mali_result):
    w = whatif.WhatIf(mali_result, region=REGION)
    new = w.apply({"safety": 2.0, "cohesion": 0.5})
    s = w.summary(new)
    base, now = _scope(mali_result, 3), _scope(new, 3)
    assert s["n_locations"] == len(base) == len(now) == 228
    assert s["weights"] == pytest.approx({"safety": 2 / 3.5, "livelihoods": 1 / 3.5, "cohesion": 0.5 / 3.5})

    cats = s["categories"]
    assert list(cats["category"]) == ["low", "medium", "high"]
    assert cats["locations"].sum() == cats["base_locations"].sum() == len(now)
    assert cats["change"].sum() == 0
    assert cats.set_index("category")["locations"].to_dict() == now["category"].value_counts().to_dict()
    assert cats.set_index("category")["base_locations"].to_dict() == base["category"].value_counts().to_dict()
    for col in ("idps", "returnees"):
        assert cats[col].sum() == pytest.approx(now[col].sum())
        high = now.loc[now["category"] == "high", col].sum()
        assert cats.set_index("category").loc["high", col] == pytest.approx(high)
        assert cats.set_index("category").loc["low", f"base_{col}"] == pytest.approx(
            base.loc[base["category"] == "low", col].sum())

    # the rank change of every location, worked out from the two scores tables
    by_hand = (base["rank_region"] - now["rank_region"]).astype(int)
    movers = s["movers"].set_index("location_id")
    assert (movers["rank_change"].astype(int) == by_hand.reindex(movers.index)).all()
    assert movers["rank_change"].abs().max() == by_hand.abs().max() == s["max_rank_shift"]
    assert list(movers["rank_change"].abs()) == sorted(movers["rank_change"].abs(), reverse=True)
    assert s["mean_abs_rank_shift"] == pytest.approx(by_hand.abs().mean())
    assert s["category_changes"] == int((base["category"] != now["category"].reindex(base.index)).sum())

    ranking = s["ranking"]
    assert len(ranking) == whatif.TOP
    assert list(ranking["rank"]) == sorted(now["rank_region"])[: whatif.TOP]
    one = ranking.iloc[0]
    loc = one["location_id"]
    assert one["rank"] == now.loc[loc, "rank_region"] and one["base_rank"] == base.loc[loc, "rank_region"]
    assert one["rank_change"] == base.loc[loc, "rank_region"] - now.loc[loc, "rank_region"]
    assert one["index"] == pytest.approx(now.loc[loc, "stability"])
    assert one["base_index"] == pytest.approx(base.loc[loc, "stability"])

    from scipy.stats import spearmanr

    rho = spearmanr(now["stability"], base["stability"].reindex(now.index)).statistic
    assert s["spearman"] == pytest.approx(rho) and 0.9 < s["spearman"] < 1


def test_summary_of_the_base_moves_nothing(mali_result):
    w = whatif.WhatIf(mali_result, region=REGION)
    s = w.summary(mali_result)
    assert s["spearman"] == pytest.approx(1.0)
    assert s["mean_abs_rank_shift"] == 0 and s["max_rank_shift"] == 0 and s["category_changes"] == 0
    assert s["movers"].empty and (s["ranking"]["rank_change"] == 0).all()
    assert (s["categories"]["change"] == 0).all()


def test_summary_of_the_country(mali_result):
    w = whatif.WhatIf(mali_result, survey_round=2)
    s = w.summary(w.apply({"livelihoods": 3.0}))
    n = int((mali_result.scores["round"] == 2).sum())
    assert s["n_locations"] == n and s["categories"]["locations"].sum() == n
    assert s["scope"] == "the country, round 2" and w.rank_column == "rank_national"
    now = w.last.scores.query("round == 2")
    assert list(s["ranking"]["rank"]) == sorted(now["rank_national"])[: whatif.TOP]  # ties share a rank


def test_doubling_a_pillar_lifts_a_location_strong_in_it(mali_result):
    w = whatif.WhatIf(mali_result, region=REGION)
    base = _scope(mali_result, 3)
    others = base[["livelihoods", "cohesion"]].mean(axis=1)
    lead = (base["safety"] - others)[base["rank_region"] > 1]
    strong, weak = lead.idxmax(), lead.idxmin()
    assert lead[strong] > 20 and lead[weak] < -20
    new = w.apply({"safety": 2.0})
    now = _scope(new, 3)
    # the index moves towards the safety score: up where safety is above it, down where below
    above = base["safety"] > base["stability"]
    assert (now.loc[above, "stability"] > base.loc[above, "stability"]).all()
    assert (now.loc[~above, "stability"] <= base.loc[~above, "stability"] + 1e-9).all()
    assert now.loc[strong, "rank_region"] < base.loc[strong, "rank_region"]
    assert now.loc[weak, "rank_region"] > base.loc[weak, "rank_region"]
    s = w.summary(new, top=len(base)).get("movers").set_index("location_id")
    assert s.loc[strong, "rank_change"] > 0 > s.loc[weak, "rank_change"]


# --------------------------------------------------------------------------- context and comparison
def test_context_for_a_recomputed_result_draws_its_map(mali_result):
    from stability.report import figures
    from stability.report import notebook as nb

    new = whatif.WhatIf(mali_result, REGION).apply({"cohesion": 3.0})
    base_ctx = whatif.context_for(mali_result, REGION)
    ctx = whatif.context_for(new, REGION, geo=base_ctx.geo)
    assert ctx.result is new and ctx.round == 3 and ctx.previous_round == 2 and ctx.region_name == "Mopti"
    assert ctx.geo is base_ctx.geo and "admin1" in ctx.geo
    assert np.allclose(ctx.current["stability"], _scope(new, 3)["stability"])
    assert not np.allclose(ctx.current["stability"], base_ctx.current["stability"])
    fig = figures.region_map(ctx)
    assert nb.figure_png(fig).startswith(b"\x89PNG")


def test_compare_weightings(mali_result):
    schemes = {"equal": {}, "pca": {}, "bogus": {}}
    c = whatif.compare_weightings(mali_result, schemes, region=REGION)
    assert list(c.agreement["scheme"]) == ["equal", "pca", "bogus"]
    row = c.agreement.set_index("scheme")
    # the Mali spec writes equal weights: the equal scheme moves nothing
    assert row.loc["equal", "spearman"] == pytest.approx(1.0) and row.loc["equal", "mean_abs_rank_shift"] == 0
    assert 0.9 < row.loc["pca", "spearman"] < 1 and row.loc["pca", "mean_abs_rank_shift"] > 0
    assert "unknown weighting method 'bogus'" in row.loc["bogus", "error"] and row.loc["equal", "error"] == ""
    assert c.notes["pca"] and "Not derived" in c.notes["bogus"][0]
    t = c.weights
    assert len(t) == 25 and list(t.columns[:4]) == ["group", "child", "label", "written"]
    assert np.allclose(t["written"], t["equal"])
    assert np.allclose(t.groupby("group")["pca"].sum(), 1.0) and t["bogus"].isna().all()
    expected = whatif.WhatIf(mali_result, REGION).summary(c.results["pca"])
    assert row.loc["pca", "spearman"] == pytest.approx(expected["spearman"])
    assert row.loc["pca", "max_rank_shift"] == expected["max_rank_shift"]


# --------------------------------------------------------------------------- widget
def _html(ui) -> str:
    return "".join(o["data"].get("text/html", "") for o in ui.output.outputs)


def _tables(text: str) -> str:
    """HTML without the tables' running ids."""
    return re.sub(r"stability-table-\d+", "", text)


def test_widget_builds_and_redraws(mali_result):
    import ipywidgets

    box = whatif.widget(mali_result, REGION)
    assert isinstance(box, ipywidgets.VBox)
    ui = box.whatif_ui
    assert list(ui.pillar_sliders) == ["safety", "livelihoods", "cohesion"]
    for s in ui.pillar_sliders.values():
        assert (s.min, s.max, s.step, s.value, s.continuous_update) == (0.0, 3.0, 0.25, 1.0, False)
    assert len(ui.indicator_sliders) == 25
    assert any(isinstance(c, ipywidgets.Accordion) for c in box.children)
    assert ui.last is mali_result and ui.error is None and ui.redraws == 1
    kinds = [set(o["data"]) for o in ui.output.outputs]
    assert any("image/png" in k for k in kinds) and "Mopti (ML05), round 3" in _html(ui)
    before = _html(ui)

    ui.pillar_sliders["safety"].value = 2.0  # as the user releasing the slider
    assert ui.redraws == 2 and ui.last is not mali_result
    assert ui.last.weights.query("level == 3").set_index("child").loc["safety", "weight"] == pytest.approx(0.5)
    assert ui.summary["weights"]["safety"] == pytest.approx(0.5) and ui.summary["mean_abs_rank_shift"] > 0
    assert _html(ui) != before and "Change in rank" in _html(ui)
    assert ui.timings["apply"] < 0.5 and ui.timings["redraw"] < 5

    ui.indicator_sliders["robbery"].value = 3.0
    assert {i.id: i.weight for i in ui.last.spec.indicators}["robbery"] == 3.0

    for s in ui.pillar_sliders.values():
        s.value = 0.0
    assert ui.error and "every child has weight 0" in ui.error
    assert "These weights cannot be used." in _html(ui) and "every child has weight 0" in _html(ui)
    assert not any("image/png" in o["data"] for o in ui.output.outputs)

    n = ui.redraws
    ui.reset_button.click()
    assert ui.redraws == n + 1  # one redraw for all the sliders
    assert ui.error is None and ui.last is mali_result
    assert all(s.value == 1.0 for s in [*ui.pillar_sliders.values(), *ui.indicator_sliders.values()])
    assert _tables(_html(ui)) == _tables(before)  # the written weights' drawing again


def test_widget_without_map_or_indicators_for_the_country(mali_result):
    box = whatif.widget(mali_result, None, indicators=False, draw_map=False)
    ui = box.whatif_ui
    assert ui.indicator_sliders == {} and "the country, round 3" in _html(ui)
    ui.pillar_sliders["cohesion"].value = 0.0
    assert ui.error is None and ui.summary["weights"]["cohesion"] == 0
    assert [set(o["data"]) for o in ui.output.outputs] == [{"text/html", "text/plain"}]


def test_static_copy_draws_what_the_widget_draws_without_a_kernel(mali_result):
    """The static copy: the widget's ranking, categories, movers and map as plain HTML, and why it does not move."""
    ui = whatif.widget(mali_result, REGION).whatif_ui
    copy = whatif.static(mali_result, REGION)
    page = copy.html
    assert _tables(_html(ui)) in _tables(page)  # the same tables, drawn by the same code
    png = next(o["data"]["image/png"] for o in ui.output.outputs if "image/png" in o["data"])
    assert f'<img src="data:image/png;base64,{png}"' in page  # the same map, embedded
    assert "with the written weights" in page and "JupyterLab with a running kernel" in page
    assert "ILLUSTRATIVE DATA" in page and "<script" not in page and "http" not in page
    assert copy._repr_mimebundle_()["text/html"] == page and copy.summary["spearman"] == pytest.approx(1.0)
    assert "Safety &amp; security" in page and ">safety<" in page  # weights drawn: label, with the id beside it
    other = whatif.static(mali_result, REGION, pillar_weights={"safety": 2}, draw_map=False)
    assert other.summary["weights"]["safety"] == pytest.approx(0.5) and "with the weights below" in other.html
    assert "<img" not in other.html
    refused = whatif.static(mali_result, REGION, pillar_weights=dict.fromkeys(ui.pillar_sliders, 0.0))
    assert refused.error and "These weights cannot be used." in refused.html


def test_tables_for_readers_show_labels_with_ids_beside_them(mali_result):
    spec = mali_result.spec
    t = whatif.weights_table(mali_result)
    assert list(t.columns[:4]) == ["Component", "id", "Within", "parent id"]
    assert list(t["id"]) == list(mali_result.weights["child"])
    assert t["Component"].iloc[0] == "Armed groups present in or near the location"
    assert set(t["Within"]) == {spec.label(p) for p in mali_result.weights["parent"]} and "safety" not in set(t["Within"])
    assert np.allclose(t["Used"], mali_result.weights["weight"]) and t["Weighs"].iloc[-1] == "pillar within the index"
    c = whatif.compare_weightings(mali_result, {"equal": {}}, region=REGION)
    r = c.weights_for_readers()
    assert list(r.columns[:4]) == ["Pillar", "Indicator", "id", "written"]
    assert set(r["Pillar"]) == {spec.label(p) for p in ("safety", "livelihoods", "cohesion")}


# --------------------------------------------------------------------------- notebook
def test_notebook_structure():
    import nbformat
    import papermill

    book = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(book)
    tagged = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is book.cells[0]
    params = papermill.inspect_notebook(str(NOTEBOOK))
    assert list(params) == ["spec_path", "data_path", "region", "survey_round"]
    assert params["region"]["default"] == '"ML05"' and params["survey_round"]["default"] == '"latest"'
    assert all(p["help"] for p in params.values())
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
            if cell is not tagged[0]:
                assert len([ln for ln in cell.source.splitlines() if ln.strip()]) <= 3
    code = "\n".join(c.source for c in book.cells if c.cell_type == "code")
    assert "whatif.widget(result, region" in code and "compare_weightings" in code
    text = "\n".join(c.source for c in book.cells if c.cell_type == "markdown")
    assert "JupyterLab with a running kernel" in text and "built and drawn once" not in text
    assert "whatif.static(result, region" in code and "whatif.weights_table(result)" in code
    assert "nb.show(result.weights" not in code  # readers see labels


def test_notebook_runs(tmp_path):
    import nbformat
    import papermill

    out = tmp_path / "executed.ipynb"
    t0 = time.perf_counter()
    papermill.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False,
                               cwd=str(tmp_path))
    assert time.perf_counter() - t0 < 60
    book = nbformat.read(out, as_version=4)
    outputs = [o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error" or o.get("name") == "stderr"]
    html_text = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "ILLUSTRATIVE DATA" in html_text
    for scheme in ("equal", "pca", "factor", "outcome", "optimised"):
        assert f"<h4>{scheme}</h4>" in html_text
    assert "mean_abs_rank_shift" in html_text and "Not derived" not in html_text  # every scheme derived
    assert [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert "Armed groups present in or near the location" in html_text and "Safety &amp; security" in html_text
    assert list(tmp_path.iterdir()) == [out]  # exploring writes nothing
    # exported to HTML (no kernel, no network): the what-if is there, outside the widget's state
    from nbconvert import HTMLExporter

    page, _ = HTMLExporter().from_notebook_node(book)
    body = re.sub(r'<script type="application/vnd\.jupyter\.widget-state\+json">.*?</script>', "", page, flags=re.S)
    assert "Mopti (ML05), round 3, with the written weights" in body and "Top 10" in body
    assert "Largest rank changes" in body and "JupyterLab with a running kernel" in body
    assert body.count("data:image/png;base64,") >= 1
