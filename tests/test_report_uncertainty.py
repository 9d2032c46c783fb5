"""How sure each rank, category and change is, in the reports (``stability report --uncertainty``).

One small uncertainty analysis (20 runs of the embedded survey, with its Sobol indices) is computed once
for the module and handed to the reports as ``stability report`` does (its part of the shared tables);
the numbers the reports show are checked against the analysis's own tables.  Two reports are built
through the command line: one from the saved run (``--uncertainty FOLDER``), one where a saved run of
another index sits in the default folder (ignored, with a note).
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import subprocess
import sys

import numpy as np
import openpyxl
import pandas as pd
import pytest

from stability import uncertainty
from stability.cli import main
from stability.exceptions import ParameterError
from stability.paths import PROJECT_ROOT
from stability.report import content, figures, runner, trends
from stability.report import uncertainty as unc
from stability.report.context import compute_result, context_for, load_context, map_layers, save_cache, shared_tables

REGION = "ML05"  # Mopti
RUNS = 20
PIECES = ("Rank interval (90", "Category confidence", "How sure is this ranking?", "worsened beyond noise",
          "Change beyond noise")


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def run(mali_result, mali_data):
    # only the weights vary among the choices (whatever the spec lists): the tests below build on that
    return uncertainty.analyse(mali_result, mali_data, runs=RUNS, seed=3, sobol=16, progress=False,
                               normalise=False, winmax=False, impute=False, aggregate=False, leave_one_out=False)


@pytest.fixture(scope="module")
def saved(run, tmp_path_factory):
    folder = tmp_path_factory.mktemp("uncertainty_run")
    uncertainty.save_run(run, folder, formats=("parquet",))
    return folder


@pytest.fixture(scope="module")
def other_index(run, tmp_path_factory):
    """A saved run of another index (another spec hash)."""
    folder = tmp_path_factory.mktemp("other_run")
    uncertainty.save_run(dataclasses.replace(run, spec_hash="0123456789ab"), folder, formats=("parquet",))
    return folder


@pytest.fixture(scope="module")
def cache(mali_result, run, tmp_path_factory):
    """The result saved for the notebooks with the analysis's tables, as ``stability report`` saves it."""
    geo = map_layers(mali_result)
    tables = shared_tables(mali_result, "latest", [REGION, None], geo)
    runner.add_uncertainty(tables, runner.UncertaintySource(run, "computed for these tests"), mali_result)
    return save_cache(tmp_path_factory.mktemp("cache") / "result.pkl", mali_result, geo, tables)


@pytest.fixture(scope="module")
def ctx(cache):
    return load_context(region=REGION, cache_path=cache)


@pytest.fixture(scope="module")
def overview(cache):
    return load_context(cache_path=cache)


@pytest.fixture(scope="module")
def plain(mali_result, tmp_path_factory):
    geo = map_layers(mali_result)
    path = save_cache(tmp_path_factory.mktemp("plain") / "result.pkl", mali_result, geo,
                      shared_tables(mali_result, "latest", [REGION], geo))
    return load_context(region=REGION, cache_path=path)


def _rows(run, ctx) -> pd.DataFrame:
    """The analysis's rows of the report's round and region, straight from ``run.locations``."""
    loc = run.locations
    return loc[(loc["round"] == ctx.round) & (loc["admin1_pcode"] == REGION)].set_index("location_id")


# --------------------------------------------------------------------------- what the notebooks get
def test_each_report_gets_only_its_round_and_region(ctx, overview, run):
    mine = unc.locations(ctx)
    assert len(mine) == len(_rows(run, ctx)) == len(ctx.current)
    assert set(mine["admin1_pcode"]) == {REGION} and set(mine["round"]) == {ctx.round}
    assert len(unc.locations(overview)) == int((run.locations["round"] == ctx.round).sum())
    assert set(unc.sensitivity(ctx)["output"]) == {f"median_index:{REGION}", f"rank_shift:{ctx.round}"}
    assert unc.about(ctx)["runs"] == RUNS and unc.about(ctx)["level"] == pytest.approx(0.9)


# --------------------------------------------------------------------------- ranked table
def test_ranked_table_shows_the_rank_interval_and_the_category_confidence(ctx, run):
    table = content.ranked_table(ctx, compact=True)
    rows = _rows(run, ctx)
    cols = list(table.columns)
    assert cols[:2] == ["Rank in region", "Rank interval (90 %)"]
    assert cols[cols.index("Category") + 1] == "Category confidence"
    for _, row in table.iterrows():
        u = rows.loc[row["Location id"]]
        lo, hi = (int(np.floor(u[f"rank_region_{k}"] + 0.5)) for k in ("low", "high"))
        assert row["Rank interval (90 %)"] == f"{row['Rank in region']}\u00a0({lo}\u2060\u2013\u2060{hi})"
        share = f"{u[f'p_{u.category}'] * 100:.0f}"
        robust = isinstance(u["robust_category"], str) and u["robust_category"] == u["category"]
        assert row["Category confidence"].replace("\u00a0", " ") == \
            f"{u.category} \u00b7 {share} %" + (" \u2713" if robust else "")
    # a non-robust location is not marked (there are some in Mopti)
    assert (~table["Category confidence"].str.endswith("\u2713")).any()
    note = unc.table_note(ctx)
    assert "90 % of the runs put the location between ranks" in note and "robust" in note


def test_the_workbook_keeps_its_numbers_as_numbers(ctx):
    full = content.ranked_table(ctx)
    assert "Rank interval (90 %)" not in full and "Category confidence" not in full


# --------------------------------------------------------------------------- paragraph and chart
def test_the_paragraph_says_how_sure_the_ranks_and_categories_are(ctx, run):
    rows = _rows(run, ctx)
    text = " ".join(unc.paragraph(ctx))
    robust = int(rows["robust_category"].notna().sum())
    assert f"{robust} of the {len(rows)} scored locations of Mopti" in text
    width = (rows["rank_region_high"] - rows["rank_region_low"]).median()
    assert f"within a span of {int(np.floor(width + 0.5))} places" in text
    # the region's own mean rank shift, from the replicates of its locations (not the figure over all regions)
    mine = ((run.locations["round"] == ctx.round) & (run.locations["admin1_pcode"] == REGION)).to_numpy()
    R = run.replicates["rank_region"][:, mine].astype(float)
    own = np.nanmean(np.abs(np.where(R > 0, R, np.nan) - run.locations.loc[mine, "rank_region"].to_numpy()[None, :]))
    everywhere = run.summary.set_index("round").loc[ctx.round, "rank_shift_region"]
    assert content.number(own) != content.number(everywhere)
    assert f"moves on average {content.number(own)} places" in text
    assert f"over the {len(rows)} ranked locations of Mopti and all runs" in text
    assert f"recomputed {RUNS} times" in text
    # the choices sentence: the output of the region's median index (only the weights vary in the Mali spec)
    assert "only the weights were varied" in text and "median index of Mopti" in text


def test_each_region_s_report_gives_its_own_rank_shift(mali_result, run):
    """Kidal and Mopti: each report's rank shift is its own region's, not one figure for all regions."""
    loc = run.locations[run.locations["round"] == run.summary["round"].iloc[-1]]
    shown = {}
    for region in ("ML08", REGION):
        plain = context_for(mali_result, region, "latest", geo={})
        tables = unc.report_tables(run, mali_result, plain.round, region)
        text = " ".join(unc.paragraph(dataclasses.replace(plain, precomputed={**plain.precomputed, **tables})))
        shown[region] = re.search(r"moves on average ([\d.,]+) places", text).group(1)
        own = loc.loc[loc["admin1_pcode"] == region, "rank_region_shift"].mean()
        assert shown[region] == content.number(own)
    assert shown["ML08"] != shown[REGION]


def test_a_run_without_each_location_s_shift_says_its_figure_is_over_all_regions(ctx, run):
    """A run saved before the per-location shifts were kept: the figure over all regions, said to be so."""
    older = unc.locations(ctx).drop(columns=["rank_shift", "rank_region_shift"])
    other = dataclasses.replace(ctx, precomputed={**ctx.precomputed, unc.LOCATIONS: older})
    text = " ".join(unc.paragraph(other))
    everywhere = run.summary.set_index("round").loc[ctx.round, "rank_shift_region"]
    assert f"moves on average {content.number(everywhere)} places" in text
    assert "the figure for all regions together" in text


def _with_sensitivity(context, rows: dict, n_base=16):
    """``context`` with a Sobol table of its ranking output: factor -> (S1, S1_low, S1_high, ST, ST_low, ST_high)."""
    output = f"rank_shift:{context.round}"
    table = pd.DataFrame([[output, f, *v, ""] for f, v in rows.items()],
                         columns=["output", "factor", "S1", "S1_low", "S1_high", "ST", "ST_low", "ST_high", "note"])
    table.attrs.update(n_base=n_base, conf_level=0.95, more="stability uncertainty --sobol {n}")
    return dataclasses.replace(context, precomputed={**context.precomputed, unc.SENSITIVITY: table})


def test_the_overview_chart_and_its_words_keep_sobol_indices_within_zero_and_one(overview):
    """Noisy raw estimates (first order above the total effect, below 0, above 1) reach readers within [0, 1],
    consistent with each other, with a word on the noise and how to get better estimates."""
    noisy = _with_sensitivity(overview, {"leave_one_out": (0.51, 0.3, 0.7, 0.38, 0.2, 0.55),
                                         "weight_set": (-0.02, -0.1, 0.05, 1.02, 0.77, 1.27)})
    fig = unc.sensitivity_chart(noisy)
    alt = figures.alt_text(fig)
    assert "weights: total effect 1.00, first order 0.00" in alt and "1.02" not in alt and "-0.02" not in alt
    assert "indicator left out: total effect 0.38, first order 0.38" in alt and "0.51" not in alt
    bars = {t.get_text() for t in fig.axes[0].texts if re.fullmatch(r"-?[\d.]+", t.get_text())}
    assert bars == {"1.00", "0.00", "0.38"}
    for words in (alt, unc.chart_note(noisy)):
        assert "noisy" in words and "stability uncertainty --sobol 256" in words
    numbers = [float(x) for x in re.findall(r"\d+\.\d\d", alt)]
    assert numbers and all(0 <= x <= 1 for x in numbers)
    calm = _with_sensitivity(overview, {"leave_one_out": (0.3, 0.2, 0.4, 0.35, 0.2, 0.5),
                                        "weight_set": (0.5, 0.3, 0.7, 0.6, 0.4, 0.8)})
    assert "noisy" not in figures.alt_text(unc.sensitivity_chart(calm)) and "noisy" not in unc.chart_note(calm)


def test_a_single_varying_choice_explains_everything_by_definition(overview):
    """Liptako-Gourma: only the weights vary. ST is 1 by definition, whatever the estimate (1.02, 0.77-1.27)."""
    one = _with_sensitivity(overview, {"weight_set": (0.98, 0.6, 1.4, 1.02, 0.77, 1.27)})
    fig = unc.sensitivity_chart(one)
    alt = figures.alt_text(fig)
    assert "weights: total effect 1.00, first order 1.00" in alt and "by definition" in alt and "noisy" not in alt
    assert {t.get_text() for t in fig.axes[0].texts if re.fullmatch(r"[\d.]+", t.get_text())} == {"1.00"}
    assert "by definition" in unc.chart_note(one)


def test_the_choices_sentence_is_sobol_s_when_several_choices_vary(ctx):
    table = unc.sensitivity(ctx)
    two = pd.concat([table, table.assign(factor="normalise", ST=0.01, ST_low=0.0, ST_high=0.02)])
    two.attrs.update(table.attrs)
    other = dataclasses.replace(ctx, precomputed={**ctx.precomputed, unc.SENSITIVITY: two})
    text = unc.choices_sentence(other)
    assert text.startswith("Which choice matters most for the median index of Mopti: the weights")
    assert "the normalisation method changes little" in text and "total effect of a choice" in text


def test_single_informants_are_named(ctx):
    loc = unc.locations(ctx).copy()
    loc.loc[loc.index[:3], "single_informant"] = True
    other = dataclasses.replace(ctx, precomputed={**ctx.precomputed, unc.LOCATIONS: loc})
    assert "3 locations of Mopti have a single key informant" in " ".join(unc.paragraph(other))
    assert "single key informant" not in " ".join(unc.paragraph(ctx))  # none in the embedded survey


def test_the_ranking_chart_draws_an_interval_per_location(ctx):
    from matplotlib.collections import LineCollection

    fig = unc.ranking_chart(ctx)
    ax = fig.axes[0]
    whiskers = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(whiskers) == 1 and len(whiskers[0].get_segments()) == int(ctx.current["stability"].notna().sum())
    assert "interval" in ax.get_title() and "robustly" in figures.alt_text(fig)


# --------------------------------------------------------------------------- change
def test_change_counts_use_beyond_noise(ctx, plain, run):
    rows = _rows(run, ctx)
    beyond = rows["beyond_noise"] & rows["change"].notna()
    s = content.change_summary(ctx)
    assert s["improved"] == int((beyond & (rows["change"] > 0)).sum())
    assert s["worsened"] == int((beyond & (rows["change"] < 0)).sum())
    assert s["unchanged"] == int((rows["change"].notna() & ~beyond).sum())
    fixed = content.change_summary(plain)  # the fixed 5-point rule without a run
    change = ctx.current["change"]
    assert fixed["improved"] == int((change > content.CHANGE_THRESHOLD).sum())
    assert (s["improved"], s["worsened"]) != (fixed["improved"], fixed["worsened"])
    assert "worsened beyond noise" in " ".join(content.change_text(ctx))
    assert "beyond noise" not in " ".join(content.change_text(plain))


def test_dropped_locations_say_which_drops_are_beyond_noise(ctx, run):
    rows = _rows(run, ctx)
    table = trends.dropped_table(ctx, top=None)
    assert list(table["Change beyond noise"]) == ["yes" if rows.loc[i, "beyond_noise"] else "no"
                                                  for i in table["Location id"]]
    first = rows.loc[table["Location id"].iloc[0]]
    assert table["Interval of the change (90 % of the runs)"].iloc[0] == \
        f"{content.number(first.change_low, sign=True)} to {content.number(first.change_high, sign=True)}"
    text = " ".join(trends.dropped_text(ctx))
    both = rows[rows["change"].notna()]
    assert f"{int(both['beyond_noise'].sum())} changed beyond noise" in text and f"{RUNS} runs" in text


# --------------------------------------------------------------------------- workbook
def test_the_workbook_has_the_region_s_rows_of_the_analysis(ctx, run, tmp_path):
    path = content.write_rankings(ctx, tmp_path)
    book = openpyxl.load_workbook(path, read_only=True)
    assert "Uncertainty" in book.sheetnames
    rows = list(book["Uncertainty"].values)
    header, body = rows[0], rows[1:]
    book.close()
    # headers for readers, each with its column name in uncertainty.csv
    assert header[0] == "Data note" and "Rank national, low end of the 90 % interval (rank_low)" in header
    assert "Robust category (same in at least 90 % of the runs) (robust_category)" in header
    assert all(h == "Data note" or h.endswith(")") and not h.startswith(("rank", "index", "p_")) for h in header)
    assert len(body) == len(_rows(run, ctx))
    assert {r[header.index("Region p-code (admin1_pcode)")] for r in body} == {REGION}
    assert {r[header.index("Round (round)")] for r in body} == {ctx.round}
    note = content.method_note(ctx).set_index("Item")["Value"]
    assert "beyond noise" in note["Change"] and f"{RUNS} runs" in note["Uncertainty"]


def _sheet(ctx, tmp_path) -> pd.DataFrame:
    path = content.write_rankings(ctx, tmp_path)
    book = openpyxl.load_workbook(path, read_only=True)
    rows = list(book["Uncertainty"].values)
    book.close()
    return pd.DataFrame(rows[1:], columns=rows[0]).set_index("Location id (location_id)")


def test_the_workbook_sheet_reads_for_readers(ctx, run, tmp_path):
    """Whole ranks (as the HTML rounds them), yes / no, blank where there is nothing to judge, and a
    non-robust category said in words."""
    rows = _rows(run, ctx)
    sheet = _sheet(ctx, tmp_path).loc[rows.index]
    # ranks: whole places, half up as in the ranked table (uncertainty.csv keeps the type-7 quantiles)
    fractional = False
    for col in ("rank_low", "rank_high", "rank_median", "rank_region_low", "rank_region_high", "rank_region_median"):
        got = sheet[[h for h in sheet.columns if h.endswith(f"({col})")][0]]
        assert got.map(lambda v: isinstance(v, int)).all(), col
        assert list(got) == [int(np.floor(v + 0.5)) for v in rows[col]], col
        fractional |= bool((rows[col] % 1 != 0).any())
    assert fractional  # the run has fractional bounds: the test checks the rounding
    # change beyond noise: blank without a previous round (no change to judge), else yes / no
    beyond = sheet["Change beyond noise (beyond_noise)"]
    new = rows["change"].isna()
    assert new.any() and (~new).any()
    assert beyond[new.to_numpy()].isna().all()
    assert list(beyond[~new.to_numpy()]) == ["yes" if v else "no" for v in rows.loc[~new, "beyond_noise"]]
    assert set(sheet["Single key informant (single_informant)"]) == {"no"}
    # mean rank shifts are no ranks: one decimal, not rounded to whole places
    shift = sheet["Rank in region, mean shift over the runs (places) (rank_region_shift)"]
    assert list(shift) == [float(content.number(v)) for v in rows["rank_region_shift"]] and (shift % 1 != 0).any()
    # robust category: the category, or "not robust" (the words of the ranking chart) for a scored location
    robust = sheet["Robust category (same in at least 90 % of the runs) (robust_category)"]
    scored = rows["index"].notna().to_numpy()
    expected = [r if isinstance(r, str) else "not robust" for r in rows.loc[scored, "robust_category"]]
    assert list(robust[scored]) == expected and "not robust" in expected
    legend = " ".join(t.get_text() for t in unc.ranking_chart(ctx).legends[0].get_texts())
    assert f"category {unc.NOT_ROBUST}" in legend  # the same words as the report's chart


def test_a_location_without_a_previous_round_has_no_change_to_judge(ctx, overview, run):
    """``beyond_noise`` is False in the run for a location first assessed now; the reports leave it blank."""
    rows = _rows(run, ctx)
    new = rows.index[rows["change"].isna()]
    assert len(new) and not rows.loc[new, "beyond_noise"].any()
    ids = pd.Series(list(rows.index))
    flags = unc.change_flags(ctx, ids)
    assert [f is None for f in flags] == list(rows["change"].isna())
    assert list(flags[rows["change"].notna().to_numpy()]) == list(rows.loc[rows["change"].notna(), "beyond_noise"])
    counts = unc.change_counts(ctx, ids, rows["change"].reset_index(drop=True))
    assert sum(counts.values()) == int(rows["change"].notna().sum())
    table = unc.region_table(overview).set_index("P-code")
    changed = rows[rows["change"].notna()]
    assert table.at[REGION, "Share of the changes beyond noise (%)"] == pytest.approx(
        round(changed["beyond_noise"].mean() * 100, 1))


# --------------------------------------------------------------------------- country overview
def test_the_overview_has_the_paragraph_the_sobol_chart_and_a_table_per_region(overview, run):
    text = " ".join(unc.paragraph(overview))
    summary = run.summary.set_index("round").loc[overview.round]
    assert f"{content.number(summary['rank_shift'])} places" in text and "the national ranking" in text
    assert unc.sensitivity_chart(overview) is not None
    table = unc.region_table(overview)
    assert len(table) == 10 and list(table["P-code"]) == list(content.league_table(overview)["P-code"])
    loc = run.locations[run.locations["round"] == overview.round]
    mopti = loc[loc["admin1_pcode"] == REGION]
    row = table.set_index("P-code").loc[REGION]
    assert row["Robust category (% of locations)"] == pytest.approx(
        round(mopti["robust_category"].notna().mean() * 100, 1))
    assert row["Median rank interval in the region (places)"] == round(
        float((mopti["rank_region_high"] - mopti["rank_region_low"]).median()))


# --------------------------------------------------------------------------- without a run
def test_without_a_run_the_report_is_as_before_plus_a_hint(plain, ctx):
    assert not unc.available(plain)
    assert unc.paragraph(plain) == [] and unc.ranking_chart(plain) is None and unc.table_note(plain) is None
    assert unc.heading_text(plain) is None and unc.region_table(plain) is None
    assert list(content.ranked_table(plain, compact=True).columns) == [
        c for c in content.ranked_table(ctx, compact=True).columns
        if c not in ("Rank interval (90 %)", "Category confidence")]
    assert "Uncertainty" not in content.workbook_sheets(plain) and "Uncertainty" not in \
        content.method_note(plain)["Item"].tolist()
    assert "stability report --uncertainty 200" in unc.hint(plain) and unc.hint(ctx) is None


def test_the_hint_gives_the_command_in_full(plain, mali_result):
    assert unc.how_to(plain) == "stability uncertainty, or stability report --uncertainty 200 --region ML05"
    older = context_for(mali_result, REGION, mali_result.rounds[-2], geo={})
    assert unc.how_to(older).endswith("--uncertainty 200 --region ML05 --round 2")
    assert unc.how_to(context_for(mali_result, None, "latest", geo={})).endswith("--uncertainty 200 --all")


LG_DATA, LG_SPEC = "data/raw/liptako_gourma_illustrative", "data/specs/liptako_gourma.yaml"


@pytest.mark.parametrize("absolute", [False, True])
def test_the_hint_names_the_report_s_data_and_spec(absolute):
    """A plain ``stability uncertainty`` analyses the embedded Mali survey (a run a Liptako-Gourma report then
    ignores as computed from another index): the hint gives the report's --data and --spec."""
    paths = [str(PROJECT_ROOT / p) if absolute else p for p in (LG_DATA, LG_SPEC)]  # the runner's are absolute
    result, _, _ = compute_result(*paths)
    options = f"--data {LG_DATA} --spec {LG_SPEC}"
    hint = unc.hint(context_for(result, "BF56", "latest", geo={}))
    assert (f"stability uncertainty {options} --out FOLDER (then stability report --uncertainty FOLDER ...), or "
            f"stability report --uncertainty 200 --region BF56 {options} adds it") in hint
    assert unc.how_to(context_for(result, None, "latest", geo={})).endswith(f"--uncertainty 200 --all {options}")


def test_the_hint_finds_a_spec_beside_the_data(mali_spec, tmp_path):
    import shutil

    import yaml

    data = tmp_path / "my survey"
    shutil.copytree(PROJECT_ROOT / "data" / "raw" / "mali_illustrative", data)
    spec = yaml.safe_load((PROJECT_ROOT / "data" / "specs" / "mali.yaml").read_text(encoding="utf-8"))
    spec["name"] = "Our stability index"
    (data / "our_spec.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    result, _, _ = compute_result(data, data / "our_spec.yaml")
    assert result.spec.hash != mali_spec.hash
    ctx = context_for(result, REGION, "latest", geo={})
    options = f"--data {shlex.quote(str(data))} --spec {shlex.quote(str(data / 'our_spec.yaml'))}"
    assert "'" in options  # a path with a space is quoted for the shell
    assert unc.how_to(ctx) == (f"stability uncertainty {options} --out FOLDER (then stability report --uncertainty "
                               f"FOLDER ...), or stability report --uncertainty 200 --region ML05 {options}")
    (data / "our_spec.yaml").unlink()  # nowhere to be found: the reader fills it in
    assert unc.how_to(ctx).startswith(f"stability uncertainty --data {shlex.quote(str(data))} --spec SPEC.yaml --out")
    # explicit paths, as the user gave them
    assert unc.how_to(ctx, data_path="survey", spec_path="spec.yaml").startswith(
        "stability uncertainty --data survey --spec spec.yaml --out FOLDER (")


def test_kernels_never_import_salib_or_distributed(cache, tmp_path):
    code = (
        "import sys\n"
        "from stability.report import content, trends, uncertainty as unc\n"
        "from stability.report.context import load_context\n"
        f"for region in ({REGION!r}, None):\n"
        f"    ctx = load_context(cache_path={str(cache)!r}, region=region)\n"
        "    unc.paragraph(ctx); unc.ranking_chart(ctx); unc.sensitivity_chart(ctx); unc.region_table(ctx)\n"
        "    content.ranked_table(ctx, compact=True); trends.dropped_table(ctx); content.change_text(ctx)\n"
        f"    content.write_rankings(ctx, {str(tmp_path)!r} + '/' + str(region))\n"
        "print(sorted(m for m in ('SALib', 'distributed') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


# --------------------------------------------------------------------------- options
@pytest.mark.parametrize("value", [1, -2, "nowhere"])
def test_bad_values_are_refused_before_anything_is_computed(value, tmp_path):
    with pytest.raises(ParameterError, match="^option --uncertainty: "):
        runner.build_reports(region=REGION, out_root=tmp_path / "out", progress=False,
                             uncertainty=value if value != "nowhere" else tmp_path / "nowhere")
    assert not (tmp_path / "out").exists()


def test_a_folder_without_a_saved_run_is_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["report", "--region", REGION, "--uncertainty", str(tmp_path / "empty"), "--out",
                 str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("stability: error: option --uncertainty: no saved uncertainty run")


def test_a_saved_run_of_another_index_is_refused(other_index, tmp_path, capsys):
    code = main(["report", "--region", REGION, "--uncertainty", str(other_index), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 2
    assert len(captured.err.strip().splitlines()) == 1, captured.err
    assert captured.err.startswith("stability: error: option --uncertainty: ")
    assert "another index" in captured.err and "0123456789ab" in captured.err
    assert not (tmp_path / "out").exists()


def test_the_resume_key_follows_the_run(saved, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "default_uncertainty_dir", lambda: tmp_path / "none")
    with_run, info = runner.plan_jobs(region=REGION, all_regions=False, out_root=tmp_path / "a", uncertainty=saved)
    without, _ = runner.plan_jobs(region=REGION, all_regions=False, out_root=tmp_path / "b", uncertainty=0)
    assert info["uncertainty"] is not None and len(with_run[0].inputs["uncertainty"]) == 16
    assert "uncertainty" not in without[0].inputs  # reports built before keep their inputs


# --------------------------------------------------------------------------- whole reports
def _text(path) -> str:
    page = path.read_text(encoding="utf-8")
    page = re.sub(r"<style.*?</style>|<script.*?</script>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)).replace("&#x27;", "'").replace("&quot;", '"')


def test_a_report_from_a_saved_run(saved, run, tmp_path, capsys):
    code = main(["report", "--region", REGION, "--uncertainty", str(saved), "--out", str(tmp_path), "-q"])
    assert code == 0, capsys.readouterr().err
    folder = tmp_path / "3" / REGION
    text = _text(folder / "report.html")
    for piece in PIECES:
        assert piece in text, piece
    assert "are robustly in their category" in text and "Which choice" not in text
    assert "How sure each rank and category is" not in text  # no hint with a run
    book = openpyxl.load_workbook(folder / "rankings.xlsx", read_only=True)
    sheet = list(book["Uncertainty"].values)
    book.close()
    assert len(sheet) - 1 == len(run.locations[(run.locations["round"] == 3)
                                               & (run.locations["admin1_pcode"] == REGION)])


def test_a_saved_run_of_another_index_in_the_default_folder_is_ignored_with_a_note(other_index, tmp_path,
                                                                                   monkeypatch, capsys):
    monkeypatch.setattr(runner, "default_uncertainty_dir", lambda: other_index)
    code = main(["report", "--region", REGION, "--out", str(tmp_path), "--jobs", "1"])
    err = capsys.readouterr().err
    assert code == 0
    notes = [line for line in err.splitlines() if line.startswith("stability: note:")]
    assert len(notes) == 1 and "is ignored" in notes[0] and "another index" in notes[0]
    text = _text(tmp_path / "3" / REGION / "report.html")
    assert "How sure each rank and category is" in text and "stability report --uncertainty 200" in text
    for piece in PIECES:
        assert piece not in text, piece
    code = main(["report", "--region", REGION, "--out", str(tmp_path), "--resume", "-q"])
    assert code == 0 and "note" not in capsys.readouterr().err  # -q: no note


def test_a_matching_run_in_the_default_folder_is_used(saved, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "default_uncertainty_dir", lambda: saved)
    _, info = runner.plan_jobs(region=REGION, all_regions=False, out_root=tmp_path)
    assert info["uncertainty"] is not None and info["info"] == []
    _, off = runner.plan_jobs(region=REGION, all_regions=False, out_root=tmp_path, uncertainty=0)
    assert off["uncertainty"] is None


def test_the_hint_uses_the_data_and_spec_the_report_was_given(tmp_path):
    """A report's context keeps the data and spec it was given, and its hint names them, wherever the spec is."""
    import shutil

    from stability.report.context import load_context

    spec = tmp_path / "elsewhere" / "lg.yaml"
    spec.parent.mkdir()
    shutil.copy(PROJECT_ROOT / "data" / "specs" / "liptako_gourma.yaml", spec)
    data = PROJECT_ROOT / "data" / "raw" / "liptako_gourma_illustrative"
    ctx = load_context(data_path=data, spec_path=spec, region="BF56")
    assert ctx.inputs == {"data_path": str(data), "spec_path": str(spec)}
    assert unc.how_to(ctx).startswith(
        f"stability uncertainty --data data/raw/liptako_gourma_illustrative --spec {shlex.quote(str(spec))} --out")


def test_the_note_on_a_run_of_another_index_gives_the_command_for_the_reports_data(other_index, mali_result,
                                                                                     monkeypatch):
    """Reports of another survey than the saved run's are told how to get a run of their own index: with their
    --data and --spec, into a folder of its own (a plain stability uncertainty would analyse the embedded survey)."""
    monkeypatch.setattr(runner, "default_uncertainty_dir", lambda: other_index)  # a run of another spec hash
    source, note = runner.resolve_uncertainty(None, mali_result, data_path="data/raw/liptako_gourma_illustrative",
                                              spec_path="data/specs/liptako_gourma.yaml")
    assert source is None and "is ignored" in note
    assert note.endswith("give --uncertainty N, or the folder of a run of this index (stability uncertainty --data "
                         "data/raw/liptako_gourma_illustrative --spec data/specs/liptako_gourma.yaml --out FOLDER "
                         "writes one)"), note
    _, plain = runner.resolve_uncertainty(None, mali_result)
    assert plain.endswith("stability uncertainty recomputes it, or give --uncertainty N")


# --------------------------------------------------------------------------- the sensitivity notebook's table
def test_the_location_table_of_the_notebook_reads_as_its_text_says(run, mali_result):
    """For a region: names, ranks within the region in whole places, yes / no / blank for beyond noise."""
    rows = _rows(run, context_for(mali_result, REGION, "latest", geo={}))
    table = unc.location_table(run, mali_result, "latest", REGION)
    names = mali_result.scores.drop_duplicates("location_id").set_index("location_id")["location_name"]
    order = rows.sort_values(["rank_region"], kind="mergesort")
    assert len(table) == len(rows) and table["Location"].tolist() == order.index.map(names).tolist()
    assert "Rank" not in table and table["Rank in region"].max() <= len(rows)
    assert table["Rank in region"].tolist() == [int(np.floor(v + 0.5)) for v in order["rank_region"]]
    assert table["Rank interval (90 %)"].tolist() == [
        f"{int(np.floor(a + 0.5))}\u2013{int(np.floor(b + 0.5))}"
        for a, b in zip(order["rank_region_low"], order["rank_region_high"])]
    beyond = table["Change beyond noise"]
    assert set(beyond) <= {"yes", "no", ""} and (beyond == "").sum() == int(order["change"].isna().sum()) > 0
    assert set(table["Robust category"]) <= {"low", "medium", "high", "not robust"}
    # the country: national ranks, with the region's name
    whole = unc.location_table(run, mali_result, "latest", None, top=5)
    assert len(whole) == 5 and whole["Rank"].is_monotonic_increasing and whole["Rank"].iloc[0] == 1
    assert "Rank in region" not in whole and "Region" in whole
    assert set(whole["Region"]) <= set(mali_result.scores["admin1_name"])


def test_priority_tables_show_how_sure_each_category_is(ctx, plain):
    """A priority class rests on a category: with a run, the priority table gives its confidence, as the
    ranked table does for the same location (without a run, no such column)."""
    from stability.report import priorities as prio

    table = prio.priorities_table(ctx, top=None)
    assert unc.CONFIDENCE_COLUMN in table.columns
    ranked = content.ranked_table(ctx, compact=True).set_index("Location id")[unc.CONFIDENCE_COLUMN]
    assert (table[unc.CONFIDENCE_COLUMN].to_numpy() == ranked.reindex(table["Location id"]).to_numpy()).all()
    assert table[unc.CONFIDENCE_COLUMN].str.startswith(tuple(table["Category"].astype(str))).all()
    assert unc.CONFIDENCE_COLUMN not in prio.priorities_table(plain).columns
