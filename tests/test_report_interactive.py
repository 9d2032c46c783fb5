"""A report notebook run by hand never writes over the published reports.

Executed with papermill and its default parameters (what a researcher gets in
JupyterLab), the regional notebook writes its workbook to
``reports/interactive/<round>/<region>/``; ``reports/<round>/<region>/`` belongs
to ``stability report``.
"""

from __future__ import annotations

import nbformat
import papermill

from stability.paths import PROJECT_ROOT, reports_dir

NOTEBOOK = PROJECT_ROOT / "notebooks" / "regional_report.ipynb"


def _created_dirs(path):
    """The folders above ``path`` (inside reports/) that do not exist yet, outermost first."""
    missing = []
    for parent in reversed(path.parents):
        if reports_dir() in parent.parents and not parent.exists():
            missing.append(parent)
    return missing


def test_default_parameters_leave_the_published_workbook_alone(tmp_path):
    defaults = papermill.inspect_notebook(str(NOTEBOOK))
    region = defaults["region"]["default"].strip("\"'")
    published = reports_dir() / "3" / region / "rankings.xlsx"
    interactive = reports_dir() / "interactive" / "3" / region / "rankings.xlsx"
    new_dirs = _created_dirs(published) + _created_dirs(interactive)
    sentinel = not published.exists()
    had_interactive = interactive.exists()
    page = interactive.with_name("map.html")
    had_page = page.exists()
    published_page = published.with_name("map.html")
    page_before = published_page.read_bytes() if published_page.exists() else None
    try:
        if sentinel:  # stands for the workbook programme teams use
            published.parent.mkdir(parents=True, exist_ok=True)
            published.write_bytes(b"published workbook")
        before = (published.read_bytes(), published.stat().st_mtime_ns)
        out = tmp_path / "executed.ipynb"
        papermill.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False,
                                   cwd=str(tmp_path))
        assert (published.read_bytes(), published.stat().st_mtime_ns) == before
        assert interactive.is_file() and page.is_file()  # the workbook and the interactive map, both aside
        assert (published_page.read_bytes() if published_page.exists() else None) == page_before
        book = nbformat.read(out, as_version=4)
        shown = "".join(o.get("data", {}).get("text/html", "") for c in book.cells if c.cell_type == "code"
                        for o in c.get("outputs", []))
        assert f"reports/interactive/3/{region}/rankings.xlsx" in shown
        note = [c for c in book.cells if "exploring-only" in c.metadata.get("tags", [])]
        assert len(note) == 1 and "reports/interactive/" in note[0].source
    finally:
        if sentinel and published.exists():
            published.unlink()
        if not had_interactive and interactive.exists():
            interactive.unlink()
        if not had_page and page.exists():
            page.unlink()
        for folder in sorted(new_dirs, key=lambda p: len(p.parts), reverse=True):
            if folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
    assert not [d for d in new_dirs if d.exists()]
