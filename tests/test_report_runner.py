"""The report runner: a whole round, failures, resume, parameters, Dask, escaping."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from stability.cli import main
from stability.paths import PROJECT_ROOT, default_dataset
from stability.report import runner, worker
from stability.report.runner import build_reports

REGIONS = [f"ML{i:02d}" for i in range(1, 11)]


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` -> (bytes, mtime)."""
    return {p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    result = build_reports(all_regions=True, out_root=out, workers=2, progress=False)
    return result


def test_all_regions_and_overview_are_built(batch):
    assert batch.ok, [(o.name, o.error) for o in batch.failed]
    assert [o.name for o in batch.outcomes] == ["overview", *REGIONS]
    folder = batch.folder
    assert folder.name == "3"  # the latest round of the embedded survey
    for name in ["overview", *REGIONS]:
        for f in ("report.ipynb", "report.html", "rankings.xlsx", "manifest.json"):
            assert (folder / name / f).is_file(), (name, f)
    index = (folder / "index.html").read_text()
    for r in REGIONS:
        assert f'href="{r}/report.html"' in index
    assert 'href="overview/report.html"' in index


def test_html_is_self_contained_and_shows_no_code(batch):
    page = (batch.folder / "ML05" / "report.html").read_text()
    assert "<title>Mali stability index: Mopti (ML05), round 3</title>" in page
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"https?://", page), "loads something from the network"
    assert "data:image/png;base64," in page  # figures embedded
    assert "load_context" not in page and "nb.setup" not in page and "import " not in page.split("</style>")[-1]
    assert "hl-ipython3" not in page  # no highlighted code cell
    assert "ILLUSTRATIVE" in page.upper()
    # printed or saved as PDF: landscape pages, tables whole (no scroll box hiding rows or columns)
    printed = page[page.index("@media print"):]
    assert "@page { size: A4 landscape" in page and "max-height: none !important" in printed
    assert "overflow: visible !important" in printed


def test_index_summary_matches_the_scores(batch):
    from stability.report.context import load_context

    ctx = load_context(survey_round=3)
    s = ctx.national
    tables = pd.read_html(batch.folder / "index.html")
    table = tables[0].set_index("P-code")
    for r in REGIONS:
        part = s[s["admin1_pcode"] == r]
        assert table.loc[r, "Locations"] == len(part)
        assert table.loc[r, "Median index"] == pytest.approx(round(part["stability"].median(), 1), abs=0.051)
        low = part.loc[part["category"] == "low", "idps"].sum()
        assert float(str(table.loc[r, "IDPs in low-stability locations"]).replace(",", "")) == low
        assert table.loc[r, "Status"] == "ok"


def test_resume_skips_up_to_date_reports_and_rebuilds_changed_ones(batch):
    from stability.io import write_workbook
    from stability.report.content import workbook_provenance

    folder = batch.folder
    before = snapshot(folder / "ML01")
    # pretend ML02's notebook changed since it was built
    manifest = folder / "ML02" / "manifest.json"
    m = json.loads(manifest.read_text())
    m["inputs"]["notebook"] = "something-else"
    manifest.write_text(json.dumps(m))
    # and that another run, from another spec, rewrote ML03's workbook (its manifest is unchanged)
    m3 = json.loads((folder / "ML03" / "manifest.json").read_text())
    other = pd.DataFrame({"Item": ["Spec hash", "Data version"], "Value": ["0123456789ab", m3["inputs"]["data"]]})
    write_workbook(folder / "ML03" / "rankings.xlsx", {"Read me": other}, "another run")
    again = build_reports(all_regions=True, out_root=folder.parent, workers=2, resume=True, progress=False)
    status = {o.name: o.status for o in again.outcomes}
    assert status["ML02"] == "ok" and status["ML03"] == "ok"
    assert all(status[n] == "skipped" for n in ["overview", *REGIONS] if n not in ("ML02", "ML03"))
    assert snapshot(folder / "ML01") == before
    assert workbook_provenance(folder / "ML03" / "rankings.xlsx")["spec_hash"] == m3["inputs"]["spec_hash"]


def test_unknown_region_is_refused_before_any_kernel_starts(tmp_path, capsys):
    code = main(["report", "--region", "ML99", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("stability: error: option --region: unknown region 'ML99'; valid p-codes: ML01 (Kayes), ")
    assert "ML05 (Mopti)" in err
    assert len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["--region", "../../etc"], "option --region: unknown region"),
    (["--region", "ML05", "--round", "9"], "option --round: round '9' is not in the data"),
    (["--region", "ML05", "--data", "/nonexistent/survey"], "option --data: dataset not found"),
])
def test_broken_parameters_touch_nothing(batch, args, message, capsys):
    before = snapshot(batch.folder)
    code = main(["report", *args, "--out", str(batch.folder.parent)])
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert snapshot(batch.folder) == before


def test_missing_data_file_in_a_dataset_is_refused(tmp_path, capsys):
    data = tmp_path / "survey"
    shutil.copytree(default_dataset(), data)
    (data / "locations.csv").unlink()
    out = tmp_path / "out"
    code = main(["report", "--region", "ML05", "--data", str(data), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "locations" in err and "not found" in err
    assert not out.exists()


def failing_templates(tmp_path: Path, region: str, code: str | None = None) -> Path:
    """The project's notebooks, with a cell that raises (or runs ``code``) for one region."""
    folder = tmp_path / "templates"
    folder.mkdir()
    for name in ("regional_report.ipynb", "country_overview.ipynb"):
        nb = nbformat.read(PROJECT_ROOT / "notebooks" / name, as_version=4)
        if name.startswith("regional"):
            pos = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])) + 1
            body = code or f'raise RuntimeError("boom in {region}")'
            nb.cells.insert(pos + 1, nbformat.v4.new_code_cell(f'if region == "{region}":\n    {body}'))
        nbformat.write(nb, folder / name)
    return folder


def test_a_failing_notebook_does_not_stop_the_others(batch, tmp_path, capsys):
    templates = failing_templates(tmp_path, "ML08")
    out = tmp_path / "out"
    code = main(["report", "--all", "--out", str(out), "--templates", str(templates), "--jobs", "2", "-q"])
    err = capsys.readouterr().err
    assert code == 1
    # -q still says which report failed and why, one line each, on stderr
    assert [ln for ln in err.splitlines() if ln.startswith("FAILED")] == [
        f"FAILED ML08: RuntimeError: boom in ML08 (cell 4) (see {out / '3' / 'ML08' / 'report.html'})"]
    folder = out / "3"
    failed = folder / "ML08"
    assert (failed / "report.ipynb").is_file()
    page = (failed / "report.html").read_text()
    assert "Report failed" in page and "boom in ML08" in page
    assert json.loads((failed / "manifest.json").read_text())["status"] == "failed"
    for r in REGIONS:
        if r != "ML08":
            assert json.loads((folder / r / "manifest.json").read_text())["status"] == "ok"
            assert (folder / r / "rankings.xlsx").is_file()
    index = (folder / "index.html").read_text()
    assert "failed" in index and "boom in ML08" in index


def test_a_failing_region_leaves_other_reports_untouched(batch, tmp_path):
    templates = failing_templates(tmp_path, "ML08")
    before = {r: snapshot(batch.folder / r) for r in REGIONS if r != "ML08"}
    assert (batch.folder / "ML08" / "rankings.xlsx").is_file()  # from the earlier, successful run
    again = build_reports(region="ML08", out_root=batch.folder.parent, templates=templates, progress=False)
    assert [o.status for o in again.outcomes] == ["failed"]
    for r, snap in before.items():
        assert snapshot(batch.folder / r) == snap
    # the failed report replaced the earlier one as a whole: no earlier workbook beside the failure
    failed = batch.folder / "ML08"
    assert sorted(p.name for p in failed.iterdir()) == ["manifest.json", "report.html", "report.ipynb"]
    assert json.loads((failed / "manifest.json").read_text())["files"] == ["report.ipynb", "report.html"]
    assert not (batch.folder / ".staging").exists()
    index = (batch.folder / "index.html").read_text()
    assert 'href="ML08/rankings.xlsx"' not in index and 'href="ML07/rankings.xlsx"' in index
    # the page says in words which report, what went wrong and where the notebook is; no code, no traceback
    page = (failed / "report.html").read_text()
    assert "Report failed: Mali stability index: Kidal (ML08), round 3" in page
    assert "The notebook stopped at cell 4 with RuntimeError: boom in ML08." in page
    assert str(failed / "report.ipynb") in page
    body = page[page.index("<body"):]
    for code in ("Traceback", "raise RuntimeError", "nb.setup", "jp-InputArea"):
        assert code not in body, code
    # a good rebuild brings it back
    ok = build_reports(region="ML08", out_root=batch.folder.parent, progress=False)
    assert ok.ok
    assert (failed / "rankings.xlsx").is_file()
    assert 'href="ML08/rankings.xlsx"' in (batch.folder / "index.html").read_text()


def test_a_cell_that_runs_too_long_is_stopped(tmp_path):
    templates = failing_templates(tmp_path, "ML08", code="import time; time.sleep(120)")
    batch = build_reports(region="ML08", out_root=tmp_path / "out", templates=templates, timeout=3,
                          progress=False)
    (outcome,) = batch.outcomes
    assert outcome.status == "failed" and "timed out" in outcome.error.lower()
    assert outcome.seconds < 60
    page = (batch.folder / "ML08" / "report.html").read_text()
    assert "ran longer than the 3-second limit per cell (--timeout) and was stopped" in page


def test_kernel_start_failures_are_retried(tmp_path, monkeypatch):
    calls = []
    real = worker.pm.execute_notebook

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("Kernel died before replying to kernel_info")
        return real(*args, **kwargs)

    monkeypatch.setattr(worker.pm, "execute_notebook", flaky)
    jobs, _ = runner.plan_jobs(region="ML08", all_regions=False, out_root=tmp_path)
    outcome = worker.run_job(jobs[0])
    assert outcome.status == "ok" and outcome.attempts == 2


def test_html_in_location_names_is_shown_as_text(tmp_path):
    data = tmp_path / "survey"
    shutil.copytree(default_dataset(), data)
    loc = pd.read_csv(data / "locations.csv", dtype=str, keep_default_na=False)
    evil = "<script>alert('x')</script><b>Bad</b>"
    first = loc.index[loc["admin1_pcode"] == "ML08"][0]
    loc.loc[first, "location_name"] = evil
    loc.to_csv(data / "locations.csv", index=False, lineterminator="\n")
    batch = build_reports(region="ML08", data_path=data, out_root=tmp_path / "out", progress=False)
    assert batch.ok, batch.failed
    page = (batch.folder / "ML08" / "report.html").read_text()
    assert "&lt;script&gt;alert(" in page
    assert "<script>alert(" not in page and "<b>Bad</b>" not in page


def test_reports_run_on_a_dask_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        batch = build_reports(region="ML08", out_root=tmp_path, scheduler=cl.scheduler_address, progress=False)
    assert batch.ok, batch.failed
    assert (batch.folder / "ML08" / "report.html").is_file()


def test_index_links_a_workbook_only_for_reports_built_without_error(mali_result, tmp_path):
    from stability.report.context import region_names
    from stability.report.index import render_index

    for name, status in (("ML01", "ok"), ("ML02", "failed"), ("ML03", "not assessed")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text(json.dumps({"status": status, "error": "x"}))
        (tmp_path / name / "report.html").write_text("<p>page</p>")
        (tmp_path / name / "rankings.xlsx").write_bytes(b"left over")
    page = render_index(tmp_path, mali_result, 3, region_names(mali_result))
    assert 'href="ML01/rankings.xlsx"' in page
    assert 'href="ML02/rankings.xlsx"' not in page and 'href="ML03/rankings.xlsx"' not in page
    assert '<tr class="not-assessed">' in page and '<span class="status-not-assessed">not assessed</span>' in page


def test_reports_of_another_index_are_marked_not_linked(mali_result, tmp_path):
    """A round's folder where another index's reports were built (another spec or other data) does not pass
    them off as this index's: the index page marks them, links none of their files, and the runner says so."""
    from stability.report.context import region_names
    from stability.report.index import foreign_reports, render_index
    from stability.report.runner import _other_index_notes

    mine = {"spec_hash": mali_result.spec_hash, "data": mali_result.data_version}
    theirs = {"spec_hash": "371cde4aad86", "data": "0123456789ab"}
    for name, inputs in (("ML01", mine), ("ML06", theirs), ("BF56", theirs), ("overview", theirs)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text(json.dumps({"status": "ok", "inputs": inputs}))
        for file in ("report.html", "rankings.xlsx", "map.html"):
            (tmp_path / name / file).write_text("x")
    assert foreign_reports(tmp_path, mali_result) == ["BF56", "ML06", "overview"]
    page = render_index(tmp_path, mali_result, 3, region_names(mali_result))
    assert 'href="ML01/rankings.xlsx"' in page and 'href="ML01/report.html"' in page
    assert not any(f'href="{where}' in page for where in ("ML06/", "BF56/", "overview/"))
    assert '<span class="status-other-index">other index</span> – built from another index (spec hash ' \
           '371cde4aad86, data version 0123456789ab); rebuild it with this index' in page
    assert "Country overview <span class=\"status-other-index\">(built from another index" in page

    notes = _other_index_notes(tmp_path, mali_result, region_names(mali_result), {"ML05"})
    assert len(notes) == 2
    assert notes[0].startswith("the reports of ML06 and overview in ") and "stability report --all" in notes[0]
    assert "also holds reports of another index (BF56)" in notes[1] and "its own --out folder" in notes[1]
    assert _other_index_notes(tmp_path, mali_result, region_names(mali_result), {"ML06", "overview", "BF56"}) == []
