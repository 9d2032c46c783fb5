"""Each command's output folder is replaced as a set: a run that writes fewer files than the last one
leaves none of the last one's behind (and never touches a file the toolkit did not write), and every
file built from the illustrative data says so."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest

from stability.export import ILLUSTRATIVE_NOTE
from stability.io import write_set


def names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def text(value: str):
    return lambda p: p.write_text(value, encoding="utf-8")


# ============================================================================ the mechanism
def test_a_set_replaces_the_files_of_the_last_one_and_nothing_else(tmp_path):
    out = tmp_path / "out"
    write_set(out, {"a.csv": text("1"), "b.csv": text("1"), "c.xlsx": text("1")}, known=("a.csv", "b.csv", "c.xlsx"))
    (out / "mine.txt").write_text("a user's note")
    files = write_set(out, {"a.csv": text("2")}, known=("a.csv", "b.csv", "c.xlsx"))
    assert files == [out / "a.csv"]
    assert names(out) == ["a.csv", "mine.txt"]  # no staging folder left behind, the user's file kept
    assert (out / "a.csv").read_text() == "2"


def test_a_failed_set_leaves_the_folder_as_it_was(tmp_path):
    out = tmp_path / "out"
    write_set(out, {"a.csv": text("1"), "b.csv": text("1")}, manifest="manifest.json")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def fail(path):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_set(out, {"a.csv": text("2"), "c.csv": fail}, manifest="manifest.json")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    with pytest.raises(RuntimeError):
        write_set(tmp_path / "new", {"a.csv": fail})
    assert not (tmp_path / "new").exists()


def test_a_manifest_says_what_the_last_set_was(tmp_path):
    out = tmp_path / "out"
    (tmp_path / "outside.csv").write_text("keep")
    write_set(out, {"a.csv": text("1"), "old.csv": text("1")}, manifest="manifest.json", meta={"run": 1})
    assert json.loads((out / "manifest.json").read_text()) == {"run": 1, "files": ["a.csv", "old.csv"]}
    (out / "known.csv").write_text("not listed by the manifest: kept")
    # a manifest edited to list a file outside the folder removes nothing outside it
    meta = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**meta, "files": meta["files"] + ["../outside.csv"]}))
    files = write_set(out, {"a.csv": text("2")}, manifest="manifest.json", meta={"run": 2}, known=("known.csv",))
    assert files == [out / "a.csv", out / "manifest.json"]
    assert names(out) == ["a.csv", "known.csv", "manifest.json"]
    assert json.loads((out / "manifest.json").read_text()) == {"run": 2, "files": ["a.csv"]}
    assert (tmp_path / "outside.csv").read_text() == "keep"


# ============================================================================ stability score
def test_score_with_fewer_formats_removes_the_last_runs_other_files(mali_result, tmp_path):
    from stability.export import write_result

    out = tmp_path / "results"
    write_result(mali_result, out, ("csv", "parquet", "xlsx", "gpkg"))
    assert {"scores.parquet", "scores.xlsx", "locations.gpkg"} <= set(names(out))
    (out / "my_notes.xlsx").write_text("the team's own file")
    files = write_result(mali_result, out, ("csv",))
    assert names(out) == ["audit_log.csv", "my_notes.xlsx", "pockets.csv", "scores.csv", "weights.csv"]
    assert sorted(p.name for p in files) == ["audit_log.csv", "pockets.csv", "scores.csv", "weights.csv"]


def test_every_score_csv_says_the_data_are_illustrative(mali_result, tmp_path):
    from stability.export import write_result

    write_result(mali_result, tmp_path, ("csv",))
    for name in ("scores.csv", "audit_log.csv", "weights.csv", "pockets.csv"):
        table = pd.read_csv(tmp_path / name)
        assert table.columns[0] == "data_note" and (table["data_note"] == ILLUSTRATIVE_NOTE).all(), name


# ============================================================================ stability uncertainty
def test_an_uncertainty_run_replaces_the_last_one_in_the_default_folder(monkeypatch, tmp_path):
    """The newcomer's case: a run with Sobol indices, then one without, in the same (default) folder."""
    from stability import paths, uncertainty
    from stability.cli import main

    monkeypatch.setattr(paths, "reports_dir", lambda: tmp_path / "reports")
    folder = tmp_path / "reports" / "uncertainty"
    assert main(["uncertainty", "--runs", "10", "--set", "aggregate=[arithmetic, geometric]", "-q"]) == 0
    assert uncertainty.load_run(folder).sensitivity is not None
    assert main(["uncertainty", "--runs", "10", "--sobol", "0", "--format", "csv", "-q"]) == 0
    assert not [n for n in names(folder) if n.startswith(("sensitivity.", "uncertainty.xlsx", "."))]
    listed = json.loads((folder / "manifest.json").read_text())["files"]
    assert sorted(listed + ["manifest.json"]) == names(folder)
    run = uncertainty.load_run(folder)
    assert run.sensitivity is None  # the report then says nothing about which choice matters


def test_load_run_reads_only_what_the_manifest_lists(tmp_path):
    import numpy as np

    from stability import uncertainty

    frame = pd.DataFrame({"x": np.arange(3)})
    for name in ("uncertainty", "uncertainty.summary", "uncertainty.runs", "uncertainty.notes"):
        frame.to_parquet(tmp_path / f"{name}.parquet")
    frame.to_parquet(tmp_path / "sensitivity.parquet")  # left by another run
    files = ["uncertainty.parquet", "uncertainty.summary.parquet", "uncertainty.runs.parquet",
             "uncertainty.notes.parquet"]
    (tmp_path / "manifest.json").write_text(json.dumps({"spec_hash": "h", "data_version": "v", "files": files}))
    assert uncertainty.load_run(tmp_path).sensitivity is None
    (tmp_path / "manifest.json").write_text(json.dumps({"spec_hash": "h", "data_version": "v",
                                                        "files": files + ["sensitivity.parquet"]}))
    assert uncertainty.load_run(tmp_path).sensitivity is not None


# ============================================================================ stability audit
def test_the_audit_csvs_say_illustrative_and_go_when_not_written(mali_result, tmp_path):
    from stability.audit import TABLES, audit
    from stability.report.audit import write_audit

    checked = audit(mali_result, "latest")
    write_audit(checked, tmp_path)
    for name, table in checked.tables().items():
        back = pd.read_csv(tmp_path / f"{name}.csv", keep_default_na=False)
        assert list(back.columns) == ["data_note", *table.columns], name
        assert (back["data_note"] == ILLUSTRATIVE_NOTE).all(), name
    write_audit(checked, tmp_path, csv=False)
    assert names(tmp_path) == ["audit.html", "audit.xlsx"]
    assert len(TABLES) == len(checked.tables())


# ============================================================================ stability weights
@pytest.fixture(scope="module")
def derived(mali_result):
    from stability.weights import derive_for

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {m: derive_for(mali_result, m, 3) for m in ("factor", "pca")}


def test_weights_of_another_method_replace_the_last_ones(derived, mali_result, tmp_path):
    from stability.weights import write_derivation

    write_derivation(derived["factor"], mali_result, tmp_path, snippet="weights:\n  3: {method: factor}\n")
    assert {"eigenvalues.csv", "factors.csv"} <= set(names(tmp_path))
    files = write_derivation(derived["pca"], mali_result, tmp_path, snippet="weights:\n  3: {method: pca}\n")
    expected = sorted(["weights.csv", "notes.txt"] + [f"{n}.csv" for n in derived["pca"].tables])
    assert names(tmp_path) == expected == sorted(p.name for p in files)
    weights = pd.read_csv(tmp_path / "weights.csv")
    assert (weights["method"] == "pca").all() and (weights["level"] == 3).all()
    assert (weights["spec_hash"] == mali_result.spec_hash).all()


def test_every_weights_file_says_the_data_are_illustrative(derived, mali_result, tmp_path):
    from stability.weights import write_derivation

    write_derivation(derived["factor"], mali_result, tmp_path, snippet="weights: {}\n")
    for path in tmp_path.glob("*.csv"):
        table = pd.read_csv(path)
        assert table.columns[0] == "data_note" and (table["data_note"] == ILLUSTRATIVE_NOTE).all(), path.name
    notes = (tmp_path / "notes.txt").read_text(encoding="utf-8")
    assert notes.startswith(ILLUSTRATIVE_NOTE) and mali_result.spec_hash in notes and notes.endswith("weights: {}\n")


def test_every_scheme_writes_only_files_it_would_remove_later(mali_result, tmp_path):
    """OUTPUT_FILES (what a later call removes) names every file of every scheme."""
    from stability.weights import OUTPUT_FILES, WEIGHTINGS, derive_for, write_derivation

    options = {"expert": {"weights": {"safety": 2, "livelihoods": 1, "cohesion": 1}},
               "budget": {"points": {"safety": 50, "livelihoods": 25, "cohesion": 25}},
               "outcome": {"outcome": "stays_6_months"}, "optimised": {"maxiter": 50}}
    for method in WEIGHTINGS.names():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            d = derive_for(mali_result, method, 3, **options.get(method, {}))
        files = write_derivation(d, mali_result, tmp_path / method)
        assert {p.name for p in files} <= set(OUTPUT_FILES), method
