"""What a reader sees: the index page and a regional report in headless Chromium.

Chromium is Debian's package (``.ci/run`` installs it); screenshots are kept in
``test-artifacts/`` for a human to look at.  Without Chromium these tests are skipped
locally, and fail under ``CI=true``: CI must not pass without looking at the pages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from stability.paths import PROJECT_ROOT
from stability.report.runner import build_reports

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync",
         "--disable-component-update", "--no-first-run", "--hide-scrollbars"]

IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
MISSING = "chromium is not installed (Debian package `chromium`; .ci/run installs it)"

pytestmark = pytest.mark.skipif(CHROMIUM is None and not IN_CI, reason=MISSING)


def chromium(*args: str, user_dir: Path) -> str:
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={user_dir}", *args], capture_output=True, text=True,
                          timeout=120)
    return done.stdout


def test_chromium_runs():
    """Under CI=true a missing or broken Chromium is a failure, not a skip."""
    assert CHROMIUM is not None, MISSING
    done = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "Chromium" in done.stdout, done.stdout + done.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    assert CHROMIUM is not None, MISSING
    out = tmp_path_factory.mktemp("browser")
    batch = build_reports(region="ML08", out_root=out, progress=False)
    assert batch.ok, batch.failed
    return batch.folder


def test_index_page_renders(built, tmp_path):
    dom = chromium("--dump-dom", (built / "index.html").as_uri(), user_dir=tmp_path / "u1")
    assert "<title>Mali stability index: reports for round 3</title>" in dom
    assert "<table>" in dom and "Kidal" in dom and "Illustrative data" in dom
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "index.png"
    chromium("--window-size=1200,900", f"--screenshot={shot}", (built / "index.html").as_uri(),
             user_dir=tmp_path / "u2")
    assert shot.stat().st_size > 10_000


def test_regional_report_renders_title_table_and_map(built, tmp_path):
    page = built / "ML08" / "report.html"
    dom = chromium("--dump-dom", page.as_uri(), user_dir=tmp_path / "u1")
    assert "<title>Mali stability index: Kidal (ML08), round 3</title>" in dom
    assert "<table" in dom
    images = dom.count('src="data:image/png;base64,')
    assert images >= 3  # the map and the comparison figures are embedded images
    assert "<script>alert" not in dom
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report_ML08.png"
    chromium("--window-size=1200,2400", f"--screenshot={shot}", page.as_uri(), user_dir=tmp_path / "u2")
    assert shot.stat().st_size > 50_000
