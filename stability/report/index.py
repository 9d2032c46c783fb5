"""``reports/<round>/index.html``: one page linking every report of a round.

A summary table per region (locations, median index, shares of low and high
stability, people living in low-stability locations) computed from the result
itself, and each report's status from its manifest (``ok``, ``failed``, ``not
assessed``).  A rankings workbook is linked only for a report built without
error.  A round with far fewer locations than the one before says so at the
top.  Self-contained: inline CSS, no scripts; every value from the data is
HTML-escaped.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

from ..io import write_text_atomic
from ..pipeline import category_summary
from .context import overview_name

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; padding: 0 1.5em; }
h1 { margin-bottom: 0.2em; } p.lead { color: #555; margin-top: 0; }
.warning { background: #fff4ce; border-left: 6px solid #e0a800; padding: 0.6em 1em; margin: 1em 0; }
table { border-collapse: collapse; width: 100%; font-size: 0.92rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.45em 0.6em; text-align: left; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td { background: #fdecea; } .status-ok { color: #1a7f37; } .status-failed { color: #b2182b; font-weight: 600; }
tr.not-assessed td { color: #666; } .status-not-assessed { color: #666; font-style: italic; }
tr.other-index td { color: #666; } .status-other-index { color: #8a5a00; font-weight: 600; }
.footer { color: #777; font-size: 0.85em; margin-top: 2em; }
"""


def _manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


#: Status shown for a report folder built from another index (another spec or other data).
OTHER_INDEX = "other index"


def other_index(manifest: dict, result) -> str | None:
    """Why a report's manifest is of another index than ``result`` (spec hash or data version differ), in
    words; None when it is of this index (or says nothing of its inputs)."""
    inputs = manifest.get("inputs") or {}
    spec_hash, data = inputs.get("spec_hash"), inputs.get("data")
    if (spec_hash in (None, result.spec_hash)) and (data in (None, result.data_version)):
        return None
    return f"built from another index (spec hash {spec_hash}, data version {data})"


def foreign_reports(folder: Path, result) -> list[str]:
    """Names of the report folders in ``folder`` (a round's) whose manifest is of another index, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(d.name for d in folder.iterdir()
                  if d.is_dir() and (d / "manifest.json").is_file() and other_index(_manifest(d), result))


def summary_table(result, survey_round, regions: dict[str, str]) -> pd.DataFrame:
    """Per region: locations, median index, % low, % high, IDPs and returnees in low-stability locations."""
    spec = result.spec
    c = spec.columns
    s = result.scores
    if c.round:
        s = s[s[c.round] == survey_round]
    root = spec.root.id
    low = spec.categories.labels[0]
    high = spec.categories.labels[-1]
    rows = []
    for pcode, name in regions.items():
        part = s[s[c.admin[0]] == pcode]
        row = {"pcode": pcode, "region": name, "locations": len(part),
               "median": part[root].median(), "low": (part["category"] == low).mean() * 100,
               "high": (part["category"] == high).mean() * 100}
        for col in ("idps", "returnees"):
            if col in part:
                low_part = pd.to_numeric(part.loc[part["category"] == low, col], errors="coerce")
                row[f"{col}_low"] = low_part.sum() if len(part) else float("nan")  # "–" when not assessed
        rows.append(row)
    return pd.DataFrame(rows)


def _fmt(v, digits=1) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "–"
    if isinstance(v, float) and digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else html.escape(str(v))


def _scale_words(spec) -> str:
    rng = spec.index_range()
    return f"{rng[0]:g} to {rng[1]:g}" if rng else "no fixed range"


def render_index(folder: Path, result, survey_round, regions: dict[str, str]) -> str:
    """The HTML of the round's index page."""
    e = html.escape
    spec = result.spec
    from .content import thin_round_note
    from .jobs import FAILED, OK

    table = summary_table(result, survey_round, regions)
    src = result.source
    has_idps = "idps_low" in table
    has_ret = "returnees_low" in table
    head = ["Region", "P-code", "Locations", "Median index", "% low", "% high"]
    if has_idps:
        head.append("IDPs in low-stability locations")
    if has_ret:
        head.append("Returnees in low-stability locations")
    head += ["Status", "Workbook", "Interactive map"]
    rows = []
    for r in table.itertuples(index=False):
        m = _manifest(folder / r.pcode)
        status = m.get("status", "not built")
        other = other_index(m, result)
        if other:  # its numbers are not this index's: no links to its outputs
            status, m = OTHER_INDEX, {"error": f"{other}; rebuild it with this index"}
        slug = e(status.replace(" ", "-"))
        link = (f'<a href="{e(r.pcode)}/report.html">{e(r.region)}</a>'
                if status != OTHER_INDEX and (folder / r.pcode / "report.html").exists() else e(r.region))
        cells = [(link, ""), (e(r.pcode), ""), (f"{r.locations:,}", "num"), (_fmt(float(r.median)), "num"),
                 (_fmt(float(r.low)), "num"), (_fmt(float(r.high)), "num")]
        if has_idps:
            cells.append((_fmt(float(r.idps_low), 0), "num"))
        if has_ret:
            cells.append((_fmt(float(r.returnees_low), 0), "num"))
        err = f" – {e(m.get('error', ''))}" if status in (FAILED, OTHER_INDEX) else ""
        cells.append((f'<span class="status-{slug}">{e(status)}</span>{err}', ""))
        wb = folder / r.pcode / "rankings.xlsx"
        cells.append((f'<a href="{e(r.pcode)}/rankings.xlsx">rankings.xlsx</a>' if status == OK and wb.exists()
                      else "–", ""))
        cells.append((f'<a href="{e(r.pcode)}/map.html">map.html</a>' if status == OK
                      and (folder / r.pcode / "map.html").exists() else "–", ""))
        tds = "".join(f'<td class="{cls}">{text}</td>' if cls else f"<td>{text}</td>" for text, cls in cells)
        rows.append(f'<tr class="{slug}">{tds}</tr>')
    overview = _manifest(folder / "overview")
    ov_other = other_index(overview, result) if overview else None
    ov_ok = overview.get("status") == OK and not ov_other
    ov_link = (f'<p>{e(overview_name(regions))} <span class="status-other-index">({e(ov_other)}; rebuild it '
               'with this index)</span></p>') if ov_other else (
               f'<p><a href="overview/report.html">{e(overview_name(regions))}</a>'
               + (' · <a href="overview/rankings.xlsx">all locations (Excel)</a>'
                  if ov_ok and (folder / "overview" / "rankings.xlsx").exists() else "")
               + (' · <a href="overview/map.html">interactive map (offline)</a>'
                  if ov_ok and (folder / "overview" / "map.html").exists() else "")
               + (f' <span class="status-failed">(failed: {e(overview.get("error", ""))})</span>'
                  if overview.get("status") == FAILED else "") + "</p>") if overview else ""
    thin = thin_round_note(result, survey_round)
    caveat = f'<div class="warning"><strong>Partial round.</strong> {e(thin)}</div>' if thin else ""
    warning = ('<div class="warning"><strong>Illustrative data.</strong> These reports are built from generated '
               'survey answers laid over real boundaries; they show how the toolkit works and must not guide '
               'programming decisions.</div>') if src.get("illustrative") else ""
    title = f"{spec.name}: reports for round {survey_round}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{e(title)}</h1>
<p class="lead">Stability index per location ({e(_scale_words(spec))}, higher = more stable); categories:
{e(category_summary(spec))}.</p>
{warning}
{caveat}
{ov_link}
<table>
<thead><tr>{''.join(f'<th>{e(h)}</th>' for h in head)}</tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
<p class="footer">Spec {e(spec.name)} ({e(result.spec_hash)}) · data {e(result.data_version)}
 · dataset {e(str(src.get('name', '')))}</p>
</body></html>
"""


def write_index(folder: Path, result, survey_round, regions: dict[str, str]) -> Path:
    """Write ``<folder>/index.html`` atomically."""
    path = Path(folder) / "index.html"
    write_text_atomic(path, render_index(Path(folder), result, survey_round, regions))
    return path
