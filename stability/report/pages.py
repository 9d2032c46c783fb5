"""Short pages that stand in for a report: a region not assessed in a round, a failed report.

Each function returns an HTML fragment (style sheet, headings, paragraphs) in
the look of the reports; :func:`stability.report.worker.export_page` wraps it in
the same page template as the reports, so that the page is self-contained.
Everything that comes from the data or from an error message is escaped.  The
pages show no code and no traceback: the executed notebook, kept beside a
failure page, has them.

==========================  ==================================================
:func:`not_assessed_html`   a region with no location assessed in the round
:func:`failure_html`        a report whose notebook failed, in words
:func:`failure_sentence`    what went wrong, in one sentence
==========================  ==================================================
"""

from __future__ import annotations

import html
import re
from typing import Any

from .notebook import CSS, heading_html, illustrative_banner_html

PAGE_CSS = """<style>
.stability-failure {border: 2px solid #b2182b; background: #fdecea; padding: 0.8em 1.4em; margin: 1em 0;
  border-radius: 4px;}
.stability-failure h2 {margin-top: 0.3em; color: #67000d;}
.stability-failure table {margin: 0; font-size: 0.95rem;}
.stability-failure th, .stability-failure td {text-align: left !important; vertical-align: top; padding: 0.35em 0.8em;}
.stability-page-note {border-left: 6px solid #8c8c8c; background: #f5f5f5; padding: 0.7em 1em; margin: 1em 0;}
</style>"""


def _provenance(facts: dict) -> str:
    parts = [f"Survey round {facts.get('round')}"]
    if facts.get("region"):
        parts.append(f"region {facts['region']}")
    if facts.get("spec_name"):
        parts.append(f"specification {facts['spec_name']} (hash {facts.get('spec_hash', '')})")
    if facts.get("data_version"):
        parts.append(f"data version {facts['data_version']}")
    return f'<p class="stability-note">{html.escape(" · ".join(parts))}</p>'


def _banner(facts: dict) -> str:
    return illustrative_banner_html(facts.get("dataset", "")) if facts.get("illustrative") else ""


def _rounds_in_words(assessed: dict) -> str:
    items = [f"round {r} ({n:,} location{'s' if n != 1 else ''})" for r, n in assessed.items() if n]
    if not items:
        return ""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def not_assessed_html(facts: dict[str, Any]) -> str:
    """The page of a region with no location assessed in the reported round.

    Parameters
    ----------
    facts : dict
        ``title``, ``region`` (p-code), ``region_name``, ``round``, ``assessed``
        (round -> locations assessed in the region, every round), ``dataset``,
        ``illustrative``, ``spec_name``, ``spec_hash``, ``data_version``.

    Returns
    -------
    str
        An HTML fragment.
    """
    name = facts.get("region_name") or facts.get("region") or "This region"
    rnd = facts.get("round")
    others = _rounds_in_words(facts.get("assessed") or {})
    where = (f"{name} was assessed in {others}; the reports of those rounds describe it."
             if others else f"{name} was not assessed in any round of these data.")
    what = (f"No location of {name} was assessed in survey round {rnd}, so this round has no ranking, map or "
            "comparison for the region.")
    body = (heading_html(f"{name} was not assessed in round {rnd}", 2)
            + f'<div class="stability-page-note"><p>{html.escape(what)}</p><p>{html.escape(where)}</p></div>'
            + _back(facts))
    return CSS + PAGE_CSS + heading_html(facts.get("title", ""), 1) + _banner(facts) + _provenance(facts) + body


def _back(facts: dict) -> str:
    """A link to the round's index page (the pages sit in ``<round>/<name>/``)."""
    text = html.escape(f"All reports of round {facts.get('round')}")
    return f'<p><a href="../index.html">{text}</a></p>'


def failure_html(facts: dict[str, Any]) -> str:
    """The page of a report that failed, in words: which report, what went wrong, where to look.

    Parameters
    ----------
    facts : dict
        ``title``, ``name`` (region p-code or ``overview``), ``round``,
        ``sentence`` (what went wrong, see :func:`failure_sentence`), ``notebook``
        (path of the executed notebook kept beside the page), ``rebuild`` (the
        command that rebuilds the report), and optionally the provenance fields
        of :func:`not_assessed_html`.

    Returns
    -------
    str
        An HTML fragment.
    """
    e = html.escape
    notebook = str(facts.get("notebook", "report.ipynb"))
    rows = [
        ("Report", facts.get("title", "")),
        ("What went wrong", facts.get("sentence", "")),
        ("Executed notebook", f"{notebook}: kept beside this page; open it in JupyterLab to see the code and the "
                              "full error message"),
        ("Published outputs", "none for this round: the report's earlier page and rankings workbook were removed, "
                              "so that they cannot be read as current"),
    ]
    if facts.get("rebuild"):
        rows.append(("Rebuild", facts["rebuild"]))
    items = "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in rows)
    return (CSS + PAGE_CSS + heading_html(f"Report failed: {facts.get('title', '')}", 1) + _banner(facts)
            + _provenance(facts)
            + f'<div class="stability-failure"><h2>This report could not be built</h2><table>{items}</table></div>'
            + _back(facts))


# --------------------------------------------------------------------------- the failure in words
def failed_cell(nb) -> tuple[int, Any] | None:
    """Position and cell of the cell that failed (or was running when stopped) in an executed notebook."""
    cells = list(nb.get("cells", []))
    for status in ("failed", "running"):
        for i, cell in enumerate(cells):
            meta = cell.get("metadata", {}).get("papermill", {})
            if meta.get("status") == status or (status == "failed" and meta.get("exception") is True):
                return i, cell
    return None


def section_of(nb, position: int) -> str:
    """The heading of the notebook section that holds the cell at ``position`` ("" if none)."""
    cells = list(nb.get("cells", []))
    for cell in reversed(cells[:position]):
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.get("cell_type") != "markdown" or "papermill-error-cell-tag" in tags:
            continue
        for line in str(cell.get("source", "")).splitlines():
            if line.lstrip().startswith("#"):
                return line.lstrip("# ").strip()
    return ""


def _clip(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def failure_sentence(kind: str, *, nb=None, ename: str = "", evalue: str = "", timeout: int | None = None,
                     attempts: int = 1, detail: str = "") -> str:
    """What went wrong, in one sentence, without code or traceback.

    Parameters
    ----------
    kind : {"error", "timeout", "kernel", "export"}
        A cell raised an error; a cell ran past the time limit; the kernel did
        not start or died; the notebook ran but its page could not be made.
    nb : NotebookNode, optional
        The executed notebook, to name the section where it stopped.
    ename, evalue : str
        Error name and message (for ``"error"``).
    timeout : int, optional
        The per-cell limit in seconds (for ``"timeout"``).
    attempts : int
        Kernel start attempts (for ``"kernel"``).
    detail : str
        The underlying error in one line (for ``"kernel"`` and ``"export"``).
    """
    where = ""
    if nb is not None:
        found = failed_cell(nb)
        if found is not None:
            pos, cell = found
            section = section_of(nb, pos)
            count = cell.get("execution_count")
            place = f"cell {count}" if count else "a cell"
            where = f" in section “{section}” ({place})" if section else f" at {place}"
    if kind == "error":
        message = f"{ename}: {evalue}" if evalue else ename or "an error"
        message = re.sub(r"\x1b\[[0-9;]*m", "", message)  # colour codes of the kernel's error text
        return _clip(f"The notebook stopped{where} with {message}.")
    if kind == "timeout":
        limit = f"the {timeout}-second limit per cell (--timeout)" if timeout else "its time limit"
        return _clip(f"A cell{where} ran longer than {limit} and was stopped.")
    if kind == "kernel":
        tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
        return _clip(f"The notebook's kernel did not start or stopped unexpectedly{tries}: {detail}.")
    return _clip(f"The notebook ran, but its page could not be made: {detail}.")
