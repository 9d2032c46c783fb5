"""`stability uncertainty`: the command, the saved run (tables, Sobol indices, manifest) and reading it back."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from stability import uncertainty
from stability.cli import main
from stability.exceptions import DataError


def run(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small run of the embedded survey written by the command (choices and informants, Sobol indices)."""
    out = tmp_path_factory.mktemp("uncertainty")
    rc = main(["uncertainty", "--runs", "24", "--seed", "3", "--sobol", "8", "--set", "normalise=[goalposts, minmax]",
               "--set", "winmax=[1, 3, 5]", "--out", str(out), "-q"])
    assert rc == 0
    return out


def test_the_command_writes_every_table_the_sobol_indices_and_a_manifest(saved, mali_result):
    names = {p.name for p in saved.iterdir()}
    assert {"uncertainty.csv", "uncertainty.parquet", "uncertainty.xlsx", "uncertainty.summary.csv",
            "uncertainty.runs.csv", "uncertainty.notes.csv", "sensitivity.csv", "sensitivity.png",
            "manifest.json"} <= names
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")]
    meta = json.loads((saved / "manifest.json").read_text())
    assert meta["spec_hash"] == mali_result.spec_hash and meta["data_version"] == mali_result.data_version
    assert meta["runs"] == 24 and meta["seed"] == 3 and meta["sources"] == "choices+informants"
    assert set(meta["files"]) <= names
    locations = pd.read_csv(saved / "uncertainty.csv")
    assert len(locations) == len(mali_result.scores)
    assert (locations["rank_low"] <= locations["rank_high"]).all()
    assert locations["data_note"].str.contains("illustrative", case=False).all()
    sens = pd.read_csv(saved / "sensitivity.csv")
    assert set(sens["factor"]) == {"weight_set", "normalise", "winmax", "leave_one_out"}  # the spec adds the last
    assert {"rank_shift:1", "rank_shift:3", "median_index:ML05"} <= set(sens["output"])
    sheets = openpyxl.load_workbook(saved / "uncertainty.xlsx", read_only=True).sheetnames
    assert {"locations", "summary", "runs", "notes"} <= set(sheets)


def test_a_saved_run_reads_back_as_it_was_computed(saved, mali_result, mali_data):
    back = uncertainty.load_run(saved)
    assert back.matches(mali_result)
    again = uncertainty.analyse(mali_result, mali_data, runs=24, seed=3, sobol=8, progress=False,
                                normalise=["goalposts", "minmax"], winmax=[1, 3, 5])
    pd.testing.assert_frame_equal(back.locations, again.locations, check_dtype=False)
    pd.testing.assert_frame_equal(back.summary, again.summary, check_dtype=False)
    pd.testing.assert_frame_equal(back.sensitivity, again.sensitivity, check_dtype=False)


def test_a_run_of_another_spec_does_not_match(saved, mali_result):
    other = mali_result.recompute({"categories.cuts": [35, 65]})
    assert not uncertainty.load_run(saved).matches(other)


def test_a_folder_without_a_run_is_one_line(tmp_path):
    with pytest.raises(DataError, match="no uncertainty run in") as err:
        uncertainty.load_run(tmp_path)
    assert "\n" not in str(err.value)


def test_the_command_prints_what_it_found(capsys, tmp_path):
    rc, out, _ = run(capsys, "uncertainty", "--runs", "10", "--sobol", "4", "--set", "normalise=[goalposts, minmax]",
                     "--sources", "choices", "--out", tmp_path, "--format", "csv")
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].startswith("10 runs (choices), seed 1") and "[ILLUSTRATIVE data]" in lines[0]
    assert lines[1].startswith("round 1: ") and "mean rank shift" in lines[1] and "robustly in their category" in lines[1]
    assert any(line.startswith("Which choices matter most for the ranking") for line in lines)
    assert not (tmp_path / "uncertainty.xlsx").exists() and (tmp_path / "uncertainty.parquet").exists()


@pytest.mark.parametrize("args, option, words", [
    (["--runs", "1"], "option --runs", "2 or more"),
    (["--runs", "many"], "option --runs", "not a whole number"),
    (["--sobol", "100"], "option --sobol", "power of 2"),
    (["--format", "pdf"], "option --format", "unknown format 'pdf'"),
    (["--set", "normalise"], "option --set", "not OPTION=VALUE"),
    (["--set", "levl=3"], "option --set levl: unknown option 'levl'", "level"),
    (["--set", "normalise=[nope]"], "option --set normalise: unknown normalisation method 'nope'", "goalposts"),
    (["--sources", "choices,people"], "option --sources", "unknown source 'people'"),
])
def test_bad_options_are_one_line_and_exit_2(capsys, tmp_path, args, option, words):
    rc, out, err = run(capsys, "uncertainty", "--runs", "5", *args, "--out", tmp_path / "out", "-q")
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and option in err and words in err
    assert not (tmp_path / "out" / "manifest.json").exists()


@pytest.mark.parametrize("args, start", [
    (["--set", "runs=1"], "option --set runs: 1 runs: give 2 or more"),
    (["--set", "runs=many"], "option --set runs: 'many' is not a whole number"),
    (["--set", "runs=6", "--runs", "6"], "option --set: runs is given twice"),
    (["--runs", "6", "--set", "normalise=[goalposts, zscore]"], "option --set normalise: alternative 'zscore': fixed "
                                                                 "category cut-offs"),
])
def test_set_options_are_named_as_typed(capsys, tmp_path, args, start):
    rc, out, err = run(capsys, "uncertainty", *args, "--sobol", "0", "--out", tmp_path / "out", "-q")
    assert rc == 2 and out == "" and err.startswith(f"stability: error: {start}"), err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_runs_and_seed_can_be_set_like_the_other_options(capsys, tmp_path):
    rc, out, _ = run(capsys, "uncertainty", "--set", "runs=6", "--set", "seed=2", "--set", "sources=[choices]",
                     "--sobol", "0", "--out", tmp_path, "--format", "csv")
    assert rc == 0 and out.startswith("6 runs (choices), seed 2"), out


def test_an_alternative_refused_at_run_time_names_the_spec_file(capsys, tmp_path):
    """``normalise: [goalposts, zscore]`` is refused once the index is known (z-scores against fixed cut-offs): the
    error names the spec file, as errors found when the spec is read do, and nothing is written."""
    from stability.paths import default_spec

    spec = tmp_path / "spec.yaml"
    text = default_spec().read_text(encoding="utf-8")
    assert "  normalise: [goalposts, minmax]" in text
    spec.write_text(text.replace("  normalise: [goalposts, minmax]", "  normalise: [goalposts, zscore]"),
                    encoding="utf-8")
    rc, out, err = run(capsys, "uncertainty", "--spec", spec, "--runs", "4", "--sobol", "0",
                       "--out", tmp_path / "out", "-q")
    assert rc == 2 and err.startswith(f"stability: error: {spec}, field 'uncertainty.normalise': alternative 'zscore'")
    assert not (tmp_path / "out").exists()
    rc, out, err = run(capsys, "report", "--region", "ML05", "--spec", spec, "--uncertainty", "4",
                       "--out", tmp_path / "reports", "-q")
    assert rc == 2 and err.startswith(f"stability: error: {spec}, field 'uncertainty.normalise'"), err
    assert not (tmp_path / "reports" / "3" / "ML05").exists()


def test_sobol_factors_follow_the_section(mali_result):
    nothing = {"weights": "none", "normalise": False, "winmax": False, "leave_one_out": False}
    names = [f.name for f in uncertainty.factors(mali_result, winmax=False)]
    assert names == ["weight_set", "normalise", "leave_one_out"]  # the embedded spec's choices, but one
    assert uncertainty.factors(mali_result, **nothing) == []
    assert uncertainty.sobol_indices(mali_result, 8, **nothing) is None
    table = uncertainty.sobol_indices(mali_result, 8, **{**nothing, "aggregate": ["arithmetic", "geometric"]})
    agg = table[(table["factor"] == "aggregate") & (table["output"] == "rank_shift:3")]
    assert np.isclose(agg["ST"].iloc[0], 1.0, atol=0.05)  # the only choice that varies explains everything


NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "sensitivity.ipynb"


def test_the_sensitivity_notebook_is_parameterised_and_runs(tmp_path, saved):
    import nbformat
    import papermill

    params = papermill.inspect_notebook(str(NOTEBOOK))
    assert list(params)[:5] == ["spec_path", "data_path", "region", "survey_round", "saved_run"]
    assert all(p["help"] for p in params.values())
    book = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in book.cells if c.cell_type == "code")
    for run_here in (True, False):
        out = tmp_path / f"executed_{run_here}.ipynb"
        papermill.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False,
                                   parameters={"runs": 12, "sobol": 4} if run_here else {"saved_run": str(saved)})
        text = out.read_text(encoding="utf-8")
        assert "This run was computed from this index." in text
        assert "Which choices matter most for the ranking" in text and "image/png" in text
        # the location table: as its text says (ranks within the region, whole places, names, words)
        executed = nbformat.read(out, as_version=4)

        def html(code, executed=executed):  # the last HTML output of the cell that runs ``code``
            cell = next(c for c in executed.cells if c.cell_type == "code" and code in c.source)
            return pd.read_html(io.StringIO([o for o in cell.outputs if "text/html" in o.get("data", {})][-1]
                                            ["data"]["text/html"]))[0]

        table = html("unc.location_table(")
        assert table.columns[:3].tolist() == ["Location", "Rank in region", "Rank interval (90 %)"]
        assert table["Rank in region"].dtype.kind == "i" and table["Rank in region"].max() <= 60
        assert not table["Location"].str.match(r"ML\d{4}-").any()
        assert set(table["Change beyond noise"].fillna("")) <= {"yes", "no", ""}
        # the Sobol table: shares within [0, 1], first order at most the total effect
        sobol = html("sa.readable(")
        assert sobol["Total effect"].between(0, 1).all() and (sobol["First order"] <= sobol["Total effect"]).all()
        assert ("12" if run_here else "24") in nbformat.read(out, as_version=4).cells[5].outputs[0]["data"]["text/html"]


def test_the_command_on_a_dask_cluster_writes_the_same_tables(tmp_path):
    from distributed import LocalCluster

    args = ["uncertainty", "--runs", "16", "--sobol", "0", "--format", "csv", "-q",
            "--set", "normalise=[goalposts, minmax]"]
    assert main([*args, "--out", str(tmp_path / "here")]) == 0
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        assert main([*args, "--out", str(tmp_path / "there"), "--scheduler", cluster.scheduler_address]) == 0
    for name in ("uncertainty.csv", "uncertainty.summary.csv", "uncertainty.runs.csv"):
        assert (tmp_path / "here" / name).read_bytes() == (tmp_path / "there" / name).read_bytes()


def test_help_names_every_option(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["uncertainty", "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and out.startswith("usage: stability uncertainty")
    for flag in ("--runs", "--seed", "--sources", "--set", "--sobol", "--scheduler", "--out", "--format", "--quiet"):
        assert flag in out, flag


def test_a_log_gets_progress_lines_but_no_progress_bar(tmp_path):
    """stderr redirected to a file (cron, CI): the timed progress lines, without a bar's carriage returns."""
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "stability"
    p = subprocess.run([str(exe), "uncertainty", "--runs", "200", "--sobol", "0", "--format", "csv", "--out", str(tmp_path)],
                       capture_output=True, timeout=300)  # bytes: text mode would turn "\r" into "\n"
    assert p.returncode == 0, p.stderr
    assert b"running the uncertainty analysis" in p.stderr and b"\r" not in p.stderr, p.stderr


def test_noisy_sobol_estimates_give_the_command_as_typed_with_more_samples(capsys, tmp_path):
    """With too few base samples the summary says the estimates are noisy and gives the command to rerun: the
    user's --data and --out kept, --sobol raised."""
    from stability.paths import default_dataset

    rc, out, _ = run(capsys, "uncertainty", "--runs", "10", "--sobol", "4", "--data", default_dataset(),
                     "--out", tmp_path, "--format", "csv")
    assert rc == 0
    line = next(x for x in out.splitlines() if x.startswith("Which choices matter most"))
    assert "noisy" in line, line
    assert f"(stability uncertainty --sobol 256 --data {default_dataset()} --out {tmp_path})." in line, line
