"""Helpers for the cells of the report notebooks: set-up, safe HTML, tables and figures.

The report notebooks are exported to HTML without their code, so everything a
reader sees is displayed by these helpers.  Text that comes from the data
(location, cercle and region names, the spec's labels) is always escaped:
tables go through ``DataFrame.to_html(escape=True)`` and headings, sentences
and banners through :func:`html.escape`.  Figures are rendered to PNG here at a
fixed dpi, so they look the same under any matplotlib backend and are never
displayed twice.

Typical cells::

    from stability.report import content, figures, notebook as nb
    ctx = nb.setup(region=region, survey_round=survey_round, spec_path=spec_path,
                   data_path=data_path, cache_path=cache_path)
    nb.show(content.ranked_table(ctx))
    nb.show(figures.region_map(ctx))
"""

from __future__ import annotations

import html
import io
import itertools
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

DPI = 100
#: Tables longer than this scroll inside a box (with a sticky header).
SCROLL_ROWS = 25
BLANK = "–"
#: Float columns whose names start with these are shown with a sign (+1.2 / -3.4).
SIGNED_PREFIXES = ("Change", "Difference")
_TABLE_IDS = itertools.count(1)

CSS = """<style>
.stability-table-wrap {margin: 0.4em 0 1em 0;}
.stability-table-wrap.scroll {max-height: 34em; overflow-y: auto; border: 1px solid #ddd;}
.stability-table-wrap table.stability-table {border-collapse: collapse; font-size: 13px; margin: 0;}
.stability-table-wrap table.stability-table th {background: #f2f4f7; text-align: left; vertical-align: bottom;
  padding: 4px 8px; border-bottom: 2px solid #999; position: sticky; top: 0; z-index: 1;}
.stability-table-wrap table.stability-table td {padding: 3px 8px; text-align: left; border-bottom: 1px solid #e6e6e6;}
.stability-table-wrap table.stability-table tbody tr:nth-child(even) {background: #fafafa;}
.stability-note {color: #555; font-size: 0.92em;}
</style>"""

BANNER_STYLE = ("border: 3px solid #b2182b; background: #fdecea; color: #67000d; padding: 0.7em 1em; "
                "margin: 0.6em 0 1em 0; border-radius: 4px; font-size: 1.05em;")
CAVEAT_STYLE = ("border-left: 6px solid #e0a800; background: #fff4ce; color: #3d2e00; padding: 0.6em 1em; "
                "margin: 0.6em 0 1em 0;")


# --------------------------------------------------------------------------- set-up
def configure(dpi: int = DPI) -> None:
    """Quiet warnings and set matplotlib's inline figure format and resolution.

    Figures are rendered by :func:`show` (PNG at ``dpi``); this also sets the
    defaults of the inline backend for any figure shown another way.
    """
    warnings.filterwarnings("ignore")
    import matplotlib

    matplotlib.rcParams.update({"figure.dpi": dpi, "savefig.dpi": dpi, "savefig.format": "png"})
    inline = sys.modules.get("matplotlib_inline.backend_inline")
    if inline is not None and hasattr(inline, "set_matplotlib_formats"):
        try:
            inline.set_matplotlib_formats("png")
        except Exception:  # not inside IPython: nothing to configure
            pass


def setup(region: str | None = None, survey_round="latest", spec_path: str = "", data_path: str = "",
          cache_path: str = "", *, intro: bool = True, dpi: int = DPI):
    """First call of a report: configure the kernel, load the context, show the title.

    Parameters
    ----------
    region : str, optional
        Admin-1 p-code of the region; None or "" for the country overview.
    survey_round : int or str
        Round to report on, or ``"latest"``.
    spec_path, data_path, cache_path : str
        As for :func:`stability.report.context.load_context` ("" = defaults).
    intro : bool
        Display the title (H1), the illustrative-data banner (when relevant), the
        provenance line and one sentence on what the index measures.
    dpi : int
        Resolution of the figures.

    Returns
    -------
    ReportContext
    """
    from .context import load_context

    configure(dpi)
    ctx = load_context(data_path=data_path, spec_path=spec_path, survey_round=survey_round,
                       region=region or None, cache_path=cache_path)
    if intro:
        _display_html(intro_html(ctx))
    return ctx


def intro_html(ctx) -> str:
    """Style sheet, title, banner, provenance line, thin-round note and what the index measures (HTML)."""
    from . import content

    prev = (f"compared with round {ctx.previous_round}" if ctx.previous_round is not None
            else "first round (no comparison)")
    where = f"region {ctx.region}" if ctx.region is not None else "all regions"
    meta = (f"Survey round {ctx.round}, {prev} · {where} · specification {ctx.spec.name} "
            f"(hash {ctx.spec.hash}) · data version {ctx.result.data_version or 'n/a'}")
    return (CSS + heading_html(ctx.title, 1) + banner_html(ctx)
            + f'<p class="stability-note">{html.escape(meta)}</p>'
            + caveat_html(content.thin_round_note(ctx.result, ctx.round), "Partial round.")
            + f"<p>{html.escape(content.what_it_measures(ctx))}</p>")


def caveat_html(text: str | None, label: str = "") -> str:
    """A caveat the reader must see before the figures (escaped, in an amber box, after a bold ``label``).

    Returns "" when ``text`` is None or empty.
    """
    if not text:
        return ""
    lead = f"<strong>{html.escape(label)}</strong> " if label else ""
    return f'<div class="stability-caveat" role="note" style="{CAVEAT_STYLE}">{lead}{html.escape(text)}</div>'


# --------------------------------------------------------------------------- text
def heading_html(text: str, level: int = 2) -> str:
    """An escaped HTML heading (``<h1>`` ... ``<h6>``)."""
    level = min(max(int(level), 1), 6)
    return f"<h{level}>{html.escape(str(text))}</h{level}>"


def heading(text: str | None, level: int = 2) -> None:
    """Display a heading built from data (escaped); nothing for None."""
    if text is not None:
        _display_html(heading_html(text, level))


def banner_html(ctx) -> str:
    """The illustrative-data warning box ("" when the data are real)."""
    if not ctx.illustrative:
        return ""
    return illustrative_banner_html(ctx.result.source.get("name", ""))


def illustrative_banner_html(dataset: str = "") -> str:
    """The illustrative-data warning box naming ``dataset`` (escaped)."""
    name = html.escape(str(dataset or "this dataset"))
    return (f'<div class="stability-banner" role="alert" style="{BANNER_STYLE}">'
            f"<strong>&#9888; ILLUSTRATIVE DATA: generated, not a real survey.</strong> "
            f"Every figure in this report is computed from <em>{name}</em>, which a computer program "
            f"generated to demonstrate the method. It does not describe the real situation of any place "
            f"and must not be used, quoted or mapped as evidence, nor to decide where to spend money.</div>")


def banner(ctx) -> None:
    """Display the illustrative-data warning (nothing when the data are real)."""
    text = banner_html(ctx)
    if text:
        _display_html(text)


def bullets_html(lines) -> str:
    """An escaped bullet list."""
    items = "".join(f"<li>{html.escape(str(line))}</li>" for line in lines if str(line).strip())
    return f"<ul>{items}</ul>" if items else ""


def bullets(lines) -> None:
    """Display sentences as a bullet list (escaped)."""
    _display_html(bullets_html(lines))


def note(text: str | None) -> None:
    """Display a short explanatory note (escaped, in grey); nothing for None."""
    if text is None:
        return
    _display_html(f'<p class="stability-note">{html.escape(str(text))}</p>')


def written(path: str | Path, what: str = "Rankings workbook") -> None:
    """Display one line saying where a file was written.

    A file written into a staging folder of ``stability report`` is published
    beside the report's page, so the line links it by name; any other file is
    shown relative to the project (else the current folder, else its folder).
    """
    from ..paths import PROJECT_ROOT
    from .staging import is_staging

    path = Path(path)
    if is_staging(path.parent):
        name = html.escape(path.name)
        _display_html(f'<p>{html.escape(what)}: <a href="{name}">{name}</a> (beside this page)</p>')
        return
    shown = f"{path.parent.name}/{path.name}"
    for base in (PROJECT_ROOT, Path.cwd()):
        try:
            shown = path.resolve().relative_to(base.resolve()).as_posix()
            break
        except ValueError:
            continue
    _display_html(f"<p>{html.escape(what)} written: <code>{html.escape(shown)}</code></p>")


# --------------------------------------------------------------------------- tables
def format_value(value, digits: int = 1, signed: bool = False) -> str:
    """One table cell as text: thousands separators, ``digits`` decimals, ``–`` when missing."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return BLANK
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu"):
        return f"{int(value):,}"
    if isinstance(value, float) or (hasattr(value, "dtype") and getattr(value.dtype, "kind", "") == "f"):
        text = f"{float(value) + 0.0:{'+' if signed else ''},.{digits}f}"
        return text[1:] if text[:1] in "+-" and float(text.replace(",", "")) == 0 else text
    return str(value)


def format_table(df: pd.DataFrame, digits: int = 1) -> pd.DataFrame:
    """Every cell as text (see :func:`format_value`); text columns keep blanks as blanks.

    Float columns named ``Change ...`` or ``Difference ...`` get a sign.
    """
    out = {}
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_bool_dtype(s.dtype):
            out[col] = s.map(lambda v: BLANK if pd.isna(v) else ("yes" if v else "no"))
        elif pd.api.types.is_integer_dtype(s.dtype):
            out[col] = s.map(lambda v: BLANK if pd.isna(v) else f"{int(v):,}")
        elif pd.api.types.is_float_dtype(s.dtype):
            signed = str(col).startswith(SIGNED_PREFIXES)
            out[col] = s.map(lambda v, signed=signed: format_value(v, digits, signed))
        else:
            out[col] = s.map(lambda v: "" if v is None or (isinstance(v, float) and v != v) or v is pd.NA
                             else format_value(v, digits))
    return pd.DataFrame(out, columns=df.columns).astype(object)


def _numeric_columns(df: pd.DataFrame) -> list[int]:
    return [j for j, col in enumerate(df.columns)
            if pd.api.types.is_numeric_dtype(df[col].dtype) and not pd.api.types.is_bool_dtype(df[col].dtype)]


def table_html(df: pd.DataFrame, digits: int = 1, scroll_rows: int = SCROLL_ROWS) -> str:
    """A DataFrame as an escaped HTML table: no index, formatted numbers right-aligned.

    Parameters
    ----------
    df : DataFrame
    digits : int
        Decimals of float columns.
    scroll_rows : int
        Tables with more rows scroll inside a box with a sticky header.
    """
    if df is None:
        return ""
    if isinstance(df, pd.Series):
        df = df.reset_index()
    df = df.copy()
    df.columns = [str(c) for c in df.columns]
    body = format_table(df, digits).to_html(escape=True, index=False, border=0, na_rep=BLANK,
                                            classes="stability-table")
    tid = f"stability-table-{next(_TABLE_IDS)}"
    right = ", ".join(f"#{tid} td:nth-child({j + 1})" for j in _numeric_columns(df))
    style = (f"<style>{right} {{text-align: right !important; font-variant-numeric: tabular-nums;}}</style>"
             if right else "")
    scroll = " scroll" if len(df) > scroll_rows else ""
    return f'{style}<div class="stability-table-wrap{scroll}" id="{tid}">{body}</div>'


def mapping_table(mapping: Mapping, key: str = "Item", value: str = "Value") -> pd.DataFrame:
    """A two-column table of a mapping."""
    return pd.DataFrame({key: [str(k) for k in mapping], value: [str(v) for v in mapping.values()]})


# --------------------------------------------------------------------------- figures
def figure_png(fig, dpi: int = DPI) -> bytes:
    """A matplotlib figure as PNG bytes (then closed if pyplot manages it)."""
    buf = io.BytesIO()
    # fast compression: report pages embed a few figures, encoding time matters more than bytes
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white", pil_kwargs={"compress_level": 1})
    close(fig)
    return buf.getvalue()


def close(fig) -> None:
    """Close a figure so that the inline backend does not show it a second time."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close(fig)


def _figure_alt(fig) -> str:
    """The alternative text of a figure: the sentence its function attached (see
    :func:`stability.report.figures.set_alt`), else its titles, else ``"figure"``."""
    from .figures import alt_text

    text = alt_text(fig)
    if text:
        return text
    titles = [fig.get_suptitle()] if hasattr(fig, "get_suptitle") and fig.get_suptitle() else []
    titles += [ax.get_title() for ax in fig.axes if ax.get_title()]
    return "; ".join(titles) or "figure"


# --------------------------------------------------------------------------- display
def _display_html(text: str) -> None:
    from IPython.display import HTML, display

    if text:
        display(HTML(text))


def show(obj, digits: int = 1) -> None:
    """Display a table, figure, mapping or text in the report, safely.

    Parameters
    ----------
    obj : DataFrame, Series, matplotlib Figure, Mapping, str, list of str or None
        A DataFrame/Series becomes an escaped HTML table without index (numbers
        formatted); a Figure a PNG image (closed afterwards); a mapping a
        two-column table; a string an escaped paragraph; a list of strings an
        escaped bullet list; None nothing.
    digits : int
        Decimals of float columns.
    """
    from IPython.display import Image, display

    if obj is None:
        return
    if isinstance(obj, (pd.DataFrame, pd.Series)):
        _display_html(table_html(obj, digits))
    elif hasattr(obj, "savefig"):
        alt = _figure_alt(obj)
        display(Image(data=figure_png(obj), format="png", alt=alt))
    elif isinstance(obj, Mapping):
        _display_html(table_html(mapping_table(obj), digits))
    elif isinstance(obj, str):
        _display_html(f"<p>{html.escape(obj)}</p>")
    elif isinstance(obj, (list, tuple)) and all(isinstance(x, str) for x in obj):
        bullets(obj)
    else:
        display(obj)
