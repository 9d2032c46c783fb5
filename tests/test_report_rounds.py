"""Partial rounds: regions not assessed in a round, and a round far smaller than the one before.

The survey here is the embedded one with round 3 cut down to 12 locations of
Kayes (ML01): the nine other regions, assessed in rounds 1 and 2, are not
assessed in round 3, and round 3 is thin.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from stability.cli import main
from stability.exceptions import ParameterError
from stability.paths import default_dataset
from stability.report import worker
from stability.report.runner import build_reports

REGIONS = [f"ML{i:02d}" for i in range(1, 11)]
ASSESSED = "ML01"
KEEP = 12


def partial_survey(folder: Path) -> Path:
    """The embedded survey with round 3 reduced to the first ``KEEP`` locations of ``ASSESSED``."""
    shutil.copytree(default_dataset(), folder)
    answers = pd.read_csv(folder / "key_informants.csv", dtype=str, keep_default_na=False)
    third = answers["round"] == "3"
    keep = sorted(answers.loc[third & answers["location_id"].str.startswith(ASSESSED), "location_id"].unique())[:KEEP]
    for name in ("key_informants.csv", "displacement.csv"):  # the population table stays consistent
        table = pd.read_csv(folder / name, dtype=str, keep_default_na=False)
        drop = (table["round"] == "3") & ~table["location_id"].isin(keep)
        table[~drop].to_csv(folder / name, index=False, lineterminator="\n")
    return folder


@pytest.fixture(scope="module")
def survey(tmp_path_factory) -> Path:
    return partial_survey(tmp_path_factory.mktemp("partial") / "survey")


def check_not_assessed(folder: Path, regions: dict) -> None:
    """Every region but ``ASSESSED`` has a short "not assessed" page, no notebook, and is listed so."""
    for r in REGIONS:
        manifest = json.loads((folder / r / "manifest.json").read_text())
        if r == ASSESSED:
            assert manifest["status"] == "ok"
            continue
        assert manifest["status"] == "not assessed" and manifest["error"] == ""
        assert sorted(p.name for p in (folder / r).iterdir()) == ["manifest.json", "report.html"]  # no notebook ran
        page = (folder / r / "report.html").read_text()
        assert f"<title>Mali stability index: {regions[r]} ({r}), round 3</title>" in page
        assert f"{regions[r]} was not assessed in round 3" in page
        assert "round 1 (" in page and "round 2 (" in page  # when it was assessed
        assert "ILLUSTRATIVE DATA" in page
        body = page[page.index("<body"):]
        for code_or_error in ("Traceback", "Error", "nb.setup", "jp-InputArea"):
            assert code_or_error not in body
    assert json.loads((folder / "overview" / "manifest.json").read_text())["status"] == "ok"
    index = pd.read_html(folder / "index.html")[0].set_index("P-code")
    assert index.loc[ASSESSED, "Status"] == "ok" and index.loc[ASSESSED, "Locations"] == KEEP
    for r in REGIONS:
        if r != ASSESSED:
            assert index.loc[r, "Status"] == "not assessed" and index.loc[r, "Locations"] == 0
            assert index.loc[r, "Workbook"] == "–"


def check_thin_round_note(folder: Path, coverage: pd.DataFrame) -> None:
    """The index page, the overview and the regional report say near the top that the round is partial."""
    previous = int(coverage.set_index("round").loc[2, "locations"])
    note = (f"Round 3 assessed {KEEP} locations against {previous:,} in round 2: ranks and comparisons across "
            "regions cover only these locations.")
    for page in (folder / "index.html", folder / "overview" / "report.html", folder / ASSESSED / "report.html"):
        text = page.read_text()
        assert note in text, page
        assert text.index(note) < text.index("<table"), "near the top, before any table"


def test_a_partial_round(survey, tmp_path):
    """``--all --round 3``: exit 0, nine "not assessed" pages, the thin round flagged; ``--resume`` keeps them."""
    from stability.report.context import compute_result, region_names

    code = main(["report", "--all", "--round", "3", "--data", str(survey), "--out", str(tmp_path), "--jobs", "2",
                 "-q"])
    assert code == 0
    folder = tmp_path / "3"
    result, _, _ = compute_result(survey)
    check_not_assessed(folder, region_names(result))
    check_thin_round_note(folder, result.round_coverage())
    again = build_reports(all_regions=True, survey_round=3, data_path=survey, out_root=tmp_path, workers=2,
                          resume=True, progress=False)
    assert {o.status for o in again.outcomes} == {"skipped"}
    assert json.loads((folder / "ML05" / "manifest.json").read_text())["status"] == "not assessed"


def test_a_round_that_is_not_thin_has_no_note(mali_result):
    from stability.report.content import thin_round_note

    assert not mali_result.round_coverage()["thin"].any()
    assert all(thin_round_note(mali_result, r) is None for r in mali_result.rounds)


def test_one_region_not_assessed_needs_no_kernel(survey, tmp_path, monkeypatch, capsys):
    def no_kernel(*args, **kwargs):
        raise AssertionError("a kernel was started")

    monkeypatch.setattr(worker.pm, "execute_notebook", no_kernel)
    code = main(["report", "--region", "ML05", "--round", "3", "--data", str(survey), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 0, err
    manifest = json.loads((tmp_path / "3" / "ML05" / "manifest.json").read_text())
    assert manifest["status"] == "not assessed" and manifest["attempts"] == 0
    assert "Mopti was not assessed in round 3" in (tmp_path / "3" / "ML05" / "report.html").read_text()


def test_the_notebook_of_a_region_not_assessed_says_so(survey):
    from stability.report.context import load_context

    with pytest.raises(ParameterError, match=r"Mopti \(ML05\) was not assessed in round 3.*rounds with data for it: "
                                             r"1, 2"):
        load_context(data_path=survey, region="ML05", survey_round=3)
