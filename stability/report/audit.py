"""The statistical audit as people read it: an HTML page, a workbook, CSV tables and figures.

:func:`write_audit` writes, all or nothing (every file is written in a staging folder first and
renamed into place only when all are ready), as a set: the files an earlier audit left in the folder
and this one does not write (its CSV tables when ``csv=False``) are removed once the new ones are in
place (:func:`stability.io.write_set`):

==================  ===========================================================
``audit.html``      a self-contained page in the look of the reports (no code,
                    figures embedded as PNG): summary, findings, the tables of
                    the audited round and three figures
``audit.xlsx``      a read-me sheet (provenance, thresholds, what each sheet
                    holds), then one sheet per table of every audited round, for
                    readers: headers in words, the spec's labels with the ids
                    beside them (:func:`reader_table`)
``<table>.csv``     each table of :class:`stability.audit.Audit`, every round
                    (the API's columns and ids, to join with other tables)
==================  ===========================================================

Figures (matplotlib, object-oriented API, the reports' style):

==============================  =============================================================
:func:`correlation_heatmap`     correlations between normalised indicators, pillar blocks framed
:func:`importance_bars`         nominal weight against effective importance, per parent
:func:`distribution_strips`     each indicator's values, imputed and winsorised points marked
==============================  =============================================================

The page, each figure, the read-me sheet and every CSV table (a first ``data_note`` column, as in
``stability score``'s tables) say when the data are illustrative.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

from . import figures as fig_style
from . import notebook as nb

HTML_NAME = "audit.html"
WORKBOOK_NAME = "audit.xlsx"
#: Colours: nominal weight, importance, a finding, imputed points.
WEIGHT_COLOUR = "#bdbdbd"
IMPORTANCE_COLOUR = fig_style.HIGHLIGHT
FLAG_COLOUR = "#b2182b"
IMPUTED_COLOUR = "#f5a300"
POINT_COLOUR = "#7f7f7f"
#: Wide tables scroll sideways inside the page instead of widening it.
PAGE_CSS = "<style>.stability-table-wrap {overflow-x: auto; max-width: 100%;}</style>"
ILLUSTRATIVE_NOTE = "ILLUSTRATIVE data (generated, not a real survey): do not use for programming decisions"


# --------------------------------------------------------------------------- helpers
def figure_round(audit):
    """The round the page's tables and figures show: the last audited round (None without rounds)."""
    return audit.rounds[-1]


def in_round(table: pd.DataFrame, rnd) -> pd.DataFrame:
    """Rows of an audit table in round ``rnd`` (the whole table without a ``round`` column)."""
    if rnd is None or "round" not in table.columns:
        return table
    return table[table["round"].astype(str) == str(rnd)]


def _round_words(audit, rnd) -> str:
    if rnd is None:
        return ""
    label = audit.result.round_label(rnd) if audit.result is not None else f"round {rnd}"
    return f" ({label})"


def _footnote(audit, fig) -> None:
    if audit.illustrative:
        fig.text(0.005, 1 - 0.05 / fig.get_figheight(), fig_style.ILLUSTRATIVE_FOOTNOTE, ha="left", va="top",
                 fontsize=8.5, color=FLAG_COLOUR, fontweight="bold")


def _top(audit, base: float = 0.5) -> float:
    return base + (0.28 if audit.illustrative else 0.0)


def _short(text, n: int = 26) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def _ordered_indicators(spec) -> list[tuple[str, list[str]]]:
    """``(pillar, its indicators)`` in the spec's order."""
    out: dict[str, list[str]] = {}
    for p in spec.aggregates_at(2):
        out[p.id] = []
    for ind in spec.indicators:
        out.setdefault(ind.parent, []).append(ind.id)
    return [(p, ids) for p, ids in out.items() if ids]


# --------------------------------------------------------------------------- figures
def correlation_heatmap(audit, round=None):
    """Pearson correlations between the normalised indicators, grouped in pillar blocks.

    Parameters
    ----------
    audit : Audit
    round : optional
        A round of the audit (default: :func:`figure_round`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib
    import textwrap

    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    spec = audit.result.spec
    rnd = figure_round(audit) if round is None else round
    corr = in_round(audit.correlations, rnd)
    groups = _ordered_indicators(spec)
    order = [i for _, ids in groups for i in ids]
    matrix = corr.pivot(index="var1", columns="var2", values="correlation").reindex(index=order, columns=order)
    p = len(order)
    cell = min(max(8.0 / max(p, 1), 0.17), 0.42)
    labels = [_short(spec.label(i), 40) for i in order]
    left = max(fig_style_text_width(labels, 8), 1.0) + 0.2
    right = 2.5
    top = _top(audit, 0.55)
    bottom = max(fig_style_text_width(labels, 8) + 0.25, 1.0)
    width, height = left + p * cell + right, top + p * cell + bottom
    with fig_style.style():
        fig = fig_style.new_figure(width, height)
        ax = fig.add_axes([left / width, bottom / height, p * cell / width, p * cell / height])
        cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#e0e0e0")
        image = ax.imshow(np.ma.masked_invalid(matrix.to_numpy(dtype=float)), cmap=cmap,
                          norm=Normalize(vmin=-1, vmax=1), aspect="auto", interpolation="nearest")
        ax.set_xticks(range(p), labels, rotation=90, fontsize=8)
        ax.set_yticks(range(p), labels, fontsize=8)
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        if cell >= 0.3:
            values = matrix.to_numpy(dtype=float)
            for i in range(p):
                for j in range(p):
                    v = values[i, j]
                    if i != j and not math.isnan(v):
                        ax.text(j, i, f"{v:.2f}".replace("0.", ".", 1), ha="center", va="center", fontsize=6,
                                color="white" if abs(v) > 0.6 else "#222222")
        start = 0
        for pillar, ids in groups:
            k = len(ids)
            ax.add_patch(Rectangle((start - 0.5, start - 0.5), k, k, fill=False, edgecolor="#111111", lw=1.6))
            ax.text(p - 0.3, start + (k - 1) / 2, textwrap.fill(_short(spec.label(pillar), 48), 18),
                    ha="left", va="center", fontsize=9, fontweight="bold", clip_on=False)
            start += k
        ax.set_xlim(-0.5, p - 0.5)
        ax.set_ylim(p - 0.5, -0.5)
        cax = fig.add_axes([(left + p * cell + 1.6) / width, bottom / height, 0.15 / width,
                            min(p * cell, 3.0) / height])
        bar = fig.colorbar(image, cax=cax, ticks=[-1, -0.5, 0, 0.5, 1])
        bar.set_label("Pearson correlation", fontsize=9)
        title = "Correlations between normalised indicators" + _round_words(audit, rnd)
        fig.text(left / width, 1 - (top - 0.12) / height, title, ha="left", va="bottom", fontsize=12,
                 fontweight="bold")
        _footnote(audit, fig)
    return fig


def fig_style_text_width(labels, size: float = 8) -> float:
    """Width (inches) of the longest of ``labels`` at ``size`` points (generous estimate)."""
    return max((len(str(t)) for t in labels), default=0) * size * 0.62 / 72


def importance_bars(audit, round=None):
    """Nominal weight (grey) against effective importance (blue; red when flagged), per parent.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.patches import Patch

    from ..audit import THRESHOLDS

    spec = audit.result.spec
    rnd = figure_round(audit) if round is None else round
    imp = in_round(audit.importance, rnd)
    parents = list(dict.fromkeys(imp["parent"]))
    # pillars first (in the spec's order), the index last
    level = {a.id: a.level for a in spec.aggregates}
    parents.sort(key=lambda p: level.get(p, 0))
    row_h = 0.26
    labels = [_short(spec.label(i), 44) for i in imp["id"]]
    left = max(fig_style_text_width(labels, 8.5), 1.2) + 0.25
    top = _top(audit, 0.95)
    gap = 0.6
    heights = [max(len(imp[imp["parent"] == p]) * row_h, 0.6) for p in parents]
    width = 10.0
    height = top + sum(heights) + gap * (len(parents) - 1) + 0.3 + 0.3
    low, high = THRESHOLDS["importance_ratio_low"], THRESHOLDS["importance_ratio_high"]
    with fig_style.style():
        fig = fig_style.new_figure(width, height)
        y = height - top
        xmax = float(np.nanmax(np.r_[imp["nominal_weight"].to_numpy(dtype=float),
                                     imp["importance"].to_numpy(dtype=float), 0.1])) * 1.12
        for k, (p, h) in enumerate(zip(parents, heights)):
            rows = imp[imp["parent"] == p]
            y -= gap if k else 0.3
            ax = fig.add_axes([left / width, (y - h) / height, (width - left - 0.4) / width, h / height])
            y -= h
            n = len(rows)
            pos = np.arange(n)
            ax.barh(pos - 0.2, rows["nominal_weight"], height=0.38, color=WEIGHT_COLOUR)
            ratio = rows["ratio"].to_numpy(dtype=float)
            off = ~np.isnan(ratio) & ((ratio < low) | (ratio > high))
            ax.barh(pos + 0.2, rows["importance"].fillna(0), height=0.38,
                    color=[FLAG_COLOUR if o else IMPORTANCE_COLOUR for o in off])
            ax.set_yticks(pos, [_short(spec.label(i), 44) for i in rows["id"]], fontsize=8.5)
            ax.set_ylim(n - 0.5, -0.5)
            ax.set_xlim(0, xmax)
            ax.tick_params(axis="y", length=0)
            ax.grid(axis="x", color="#eeeeee")
            ax.set_axisbelow(True)
            ax.set_title(f"{_short(spec.label(p), 50)}: its {'indicators' if level.get(p) == 2 else 'components'}",
                         loc="left", fontsize=10)
            for j, (imp_v, nom) in enumerate(zip(rows["importance"], rows["nominal_weight"])):
                if not (isinstance(imp_v, float) and math.isnan(imp_v)):
                    ax.text(max(imp_v, nom) + xmax * 0.01, j, f"{imp_v:.2f} vs {nom:.2f}", va="center", fontsize=7,
                            color="#444444")
        fig.legend(handles=[Patch(color=WEIGHT_COLOUR, label="nominal weight (share of the parent)"),
                            Patch(color=IMPORTANCE_COLOUR, label="effective importance (r², normalised)"),
                            Patch(color=FLAG_COLOUR, label=f"importance / weight outside [{low:g}, {high:g}]")],
                   loc="upper left", bbox_to_anchor=(left / width - 0.01, 1 - (top - 0.72) / height), ncols=2,
                   frameon=False, fontsize=8.5)
        fig.text(left / width, 1 - (top - 0.77) / height, "Weight against importance" + _round_words(audit, rnd),
                 ha="left", va="bottom", fontsize=12, fontweight="bold")
        _footnote(audit, fig)
    return fig


def _marked_cells(audit, table: pd.DataFrame, rnd) -> dict[str, dict[str, pd.DataFrame]]:
    """Per indicator: the log rows of imputed and winsorised (or clamped) cells in the round."""
    log = audit.result.log
    if log is None or log.empty:
        return {}
    part = log
    if rnd is not None:
        part = log[log["round"].astype(str) == str(rnd)]
    out: dict[str, dict[str, pd.DataFrame]] = {}
    for (col, action), rows in part[part["column"].notna()].groupby(["column", "action"], sort=False):
        out.setdefault(str(col), {})[str(action)] = rows
    return out


def _positions(position: pd.Series, locations: pd.Series) -> np.ndarray:
    """Row positions of ``locations`` in the figure's table (-1 when absent)."""
    return position.reindex(locations.to_numpy()).fillna(-1).to_numpy(dtype=int)


def distribution_strips(audit, round=None, ncols: int = 3):
    """Each indicator's values before outlier treatment, with imputed and winsorised points marked.

    Values are those of the ``imputed`` stage (after denomination and
    imputation, the input of the outlier treatment) in the round; orange rings
    are imputed cells, red crosses the original values of winsorised cells, and
    a red dashed line the value they were winsorised to (from ``result.log``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.lines import Line2D

    result = audit.result
    spec = result.spec
    rnd = figure_round(audit) if round is None else round
    table = result.stage("imputed")
    rcol = spec.columns.round
    if rnd is not None and rcol:
        table = table[np.asarray(table.index.get_level_values(rcol) == rnd)]
    position = pd.Series(np.arange(len(table)), index=np.asarray(table.index.get_level_values(0)))
    position = position[~position.index.duplicated()]
    marks = _marked_cells(audit, table, rnd)
    stats = in_round(audit.indicator_stats, rnd).set_index("indicator")
    inds = [i for _, ids in _ordered_indicators(spec) for i in ids]
    nrows = math.ceil(len(inds) / ncols)
    panel_w, panel_h = 3.3, 1.05
    top = _top(audit, 0.95)
    width = ncols * panel_w + 0.4
    height = top + nrows * panel_h + 0.2
    rng = np.random.default_rng(0)
    with fig_style.style():
        fig = fig_style.new_figure(width, height)
        for k, ind in enumerate(inds):
            r, c = divmod(k, ncols)
            x0 = 0.25 + c * panel_w + 0.1
            y0 = height - top - (r + 1) * panel_h + 0.38
            ax = fig.add_axes([x0 / width, y0 / height, (panel_w - 0.35) / width, (panel_h - 0.62) / height])
            x = table[ind].to_numpy(dtype=float)
            jitter = rng.uniform(-1, 1, size=x.size)
            ok = ~np.isnan(x)
            ax.scatter(x[ok], jitter[ok], s=5, color=POINT_COLOUR, alpha=0.35, linewidths=0, rasterized=True)
            m = marks.get(ind, {})
            status = str(stats["treatment"].get(ind, "")) if ind in stats.index else ""
            if "imputed" in m:
                idx = _positions(position, m["imputed"]["location"])
                idx = idx[idx >= 0]
                ax.scatter(x[idx], jitter[idx], s=16, facecolors="none", edgecolors=IMPUTED_COLOUR, linewidths=0.9)
            n_win = 0
            for action in ("winsorised", "clamped"):
                if action in m:
                    rows = m[action]
                    n_win += len(rows)
                    idx = _positions(position, rows["location"])
                    ax.scatter(rows["before"].to_numpy(dtype=float)[idx >= 0], jitter[idx[idx >= 0]], s=22,
                               marker="x", color=FLAG_COLOUR, linewidths=1.2, zorder=3)
                    for bound in np.unique(rows["after"].to_numpy(dtype=float)):
                        ax.axvline(bound, color=FLAG_COLOUR, lw=0.9, ls="--", zorder=2)
            ax.set_yticks([])
            ax.set_ylim(-1.6, 1.6)
            ax.spines["left"].set_visible(False)
            ax.tick_params(axis="x", labelsize=7, length=2, pad=1)
            note = (f"; {n_win} winsorised" if n_win else "") + ("; log-transformed" if status == "log" else "")
            ax.set_title(_short(spec.label(ind), 40) + note, loc="left", fontsize=7.5, fontweight="normal",
                         color=FLAG_COLOUR if (n_win or status == "log") else "#222222", pad=2)
        fig.legend(handles=[
            Line2D([], [], ls="", marker="o", color=POINT_COLOUR, alpha=0.6, markersize=4, label="location"),
            Line2D([], [], ls="", marker="o", markerfacecolor="none", markeredgecolor=IMPUTED_COLOUR, markersize=6,
                   label="imputed value"),
            Line2D([], [], ls="", marker="x", color=FLAG_COLOUR, markersize=6, label="original value, winsorised"),
            Line2D([], [], ls="--", color=FLAG_COLOUR, label="winsorised to")],
            loc="upper left", bbox_to_anchor=(0.3 / width, 1 - (top - 0.45) / height), ncols=4, frameon=False,
            fontsize=8.5)
        fig.text(0.3 / width, 1 - (top - 0.5) / height,
                 "Distribution of each indicator before outlier treatment" + _round_words(audit, rnd),
                 ha="left", va="bottom", fontsize=12, fontweight="bold")
        _footnote(audit, fig)
    return fig


def figure_html(fig, alt: str) -> str:
    """A figure as an ``<img>`` with the PNG embedded (base64); the figure is closed."""
    data = base64.b64encode(nb.figure_png(fig)).decode("ascii")
    return (f'<p><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" '
            'style="max-width: 100%; height: auto;"></p>')


# --------------------------------------------------------------------------- tables for people
def _labelled(spec, ids: pd.Series) -> pd.Series:
    return ids.map(lambda i: spec.label(i) if isinstance(i, str) and i else "")


def _node_ids(spec) -> set[str]:
    return {n.id for n in (*spec.indicators, *spec.aggregates)}


def where_label(spec, where) -> str:
    """A finding's ``where`` in words: every id of the spec in it replaced by its label.

    ``"robbery"`` -> ``"Robbery in the last 3 months"``; ``"a ~ b, c ~ d and 3 more pairs"``
    keeps its ``~``, commas and words, each id replaced.
    """
    import re

    if not isinstance(where, str) or not where:
        return ""
    ids = _node_ids(spec)
    return re.sub(r"[A-Za-z0-9_.\-]+", lambda m: spec.label(m.group(0)) if m.group(0) in ids else m.group(0),
                  where)


#: Columns of ids in the audit's tables -> the header of their label column in the workbook
#: (the ids stay beside it, headed "<header> id").
ID_HEADERS: dict[str, str] = {
    "indicator": "Indicator", "pillar": "Pillar", "var1": "Indicator 1", "var2": "Indicator 2",
    "group1": "Pillar of indicator 1", "group2": "Pillar of indicator 2", "id": "Indicator or aggregate",
    "parent": "Parent", "group": "Group", "item": "Item", "where": "Where",
}
#: Headers in words of the other columns (per table where a name means different things).
HEADERS: dict[str, str] = {
    "round": "Round", "stage": "Values described", "note": "Note", "level": "Level", "n_items": "Items",
    "n_available": "Raw values available", "availability": "Availability (raw)", "n_values": "Values described (n)",
    "mean": "Mean", "median": "Median", "sd": "SD", "min": "Min", "max": "Max", "skew": "Skew", "kurt": "Kurtosis",
    "outlier": "Outliers", "distinct": "Distinct values", "share_zeros": "Share of zeros",
    "n_imputed": "Imputed cells", "n_treated": "Treated cells", "treatment": "Outlier treatment",
    "disagreement_rate": "Key-informant disagreement", "correlation": "Correlation", "p_value": "p-value",
    "same_group": "Same pillar", "correlation_parent": "Correlation with parent", "n_parent": "Pairs with parent",
    "correlation_index": "Correlation with the index", "n_index": "Pairs with the index",
    "alpha": "Cronbach's alpha", "kmo": "KMO (MSA for an item)", "bartlett_chi2": "Bartlett chi-squared",
    "bartlett_df": "Bartlett df", "bartlett_p": "Bartlett p-value", "vif": "VIF", "component": "Component",
    "eigenvalue": "Eigenvalue", "variance_share": "Share of variance", "cumulative_share": "Cumulative share",
    "nominal_weight": "Nominal weight (share of parent)", "overall_weight": "Overall weight", "r2": "r squared",
    "importance": "Importance", "ratio": "Importance / weight", "importance_coinr": "Importance (COINr)",
    "what": "Finding", "value": "Value", "threshold": "Threshold", "severity": "Severity", "message": "Message",
    "data_note": "data_note",
}
_N_HEADERS = {"indicator_stats": "Locations", "correlations": "Complete pairs", "cronbach": "Rows with a value",
              "kmo_bartlett": "Complete rows", "vif": "Complete rows", "pca_variance": "Complete rows",
              "importance": "Complete pairs"}


def reader_table(spec, name: str, table: pd.DataFrame) -> pd.DataFrame:
    """An audit table for readers (the workbook's sheets): headers in words, labels beside the ids.

    Every column of ids (:data:`ID_HEADERS`: ``indicator``, ``var1``, ``group1``, ``where``, ...)
    becomes the spec's labels under a header in words, followed by the ids under "<header> id"
    (to join with the CSV tables and the scores); the stage of the values is given in words.
    """
    from ..audit import stage_words

    out: dict[str, pd.Series] = {}
    for col in table.columns:
        if col in ID_HEADERS:
            head = ID_HEADERS[col]
            ids = table[col].astype(object).where(table[col].notna(), "")
            words = ids.map(lambda w: where_label(spec, w)) if col == "where" else _labelled(spec, ids)
            out[head] = words.astype(object)
            out[f"{head} id"] = ids
        elif col == "stage":
            rows = table["indicator"] if "indicator" in table.columns else pd.Series(None, index=table.index)
            out[HEADERS[col]] = pd.Series([stage_words(st, spec, i) for st, i in zip(table[col], rows)],
                                          index=table.index, dtype=object)
        elif col == "n":
            out[_N_HEADERS.get(name, "n")] = table[col]
        else:
            out[HEADERS.get(col, col)] = table[col]
    return pd.DataFrame(out, index=table.index)


def display_tables(audit) -> dict[str, tuple[str, pd.DataFrame, int]]:
    """The tables of the page, for the figure round: name -> (caption, table with readable headers, digits)."""
    spec = audit.result.spec
    rnd = figure_round(audit)
    out: dict[str, tuple[str, pd.DataFrame, int]] = {}

    flags = audit.flags.copy()
    if len(flags):
        cols = ["what", "where"] + (["round"] if "round" in flags.columns else []) + ["message"]
        flags = flags[cols].copy()
        flags["where"] = flags["where"].map(lambda w: where_label(spec, w))
        if "round" in flags.columns:
            flags["round"] = flags["round"].map(lambda r: "" if r is None else str(r))
        out["flags"] = ("Every finding of the audit (all audited rounds).", flags.rename(columns=str.capitalize), 2)

    s = in_round(audit.indicator_stats, rnd)
    t = pd.DataFrame({
        "Indicator": _labelled(spec, s["indicator"]), "Available %": 100 * s["availability"], "Mean": s["mean"], "SD": s["sd"], "Min": s["min"], "Max": s["max"],
        "Skew": s["skew"], "Kurtosis": s["kurt"], "Outliers": s["outlier"], "Distinct": s["distinct"],
        "Zeros %": 100 * s["share_zeros"], "Imputed": s["n_imputed"], "Treated": s["n_treated"],
        "Treatment": s["treatment"], "Disagree %": 100 * s["disagreement_rate"], "Note": s["note"]})
    if s["disagreement_rate"].isna().all():
        t = t.drop(columns="Disagree %")
    if not t["Note"].astype(bool).any():
        t = t.drop(columns="Note")
    stage = str(s["stage"].iloc[0]) if len(s) else audit.meta.get("stages", {}).get("indicator_stats", "")
    from ..audit import stage_words

    out["indicator_stats"] = (f"Statistics of the {stage_words(stage)}; availability is of the raw answers. "
                              "Outliers: |skew| > "
                              f"{spec.treat.skew_thresh:g} and kurtosis > {spec.treat.kurt_thresh:g}; imputed and "
                              "treated cells are counted from the audit log; Disagree %: locations whose key informants "
                              "disagree.", t, 2)

    c = in_round(audit.correlations, rnd)
    pairs = c[c["same_group"] & (c["var1"] < c["var2"])].copy()
    pairs = pairs.reindex(pairs["correlation"].abs().sort_values(ascending=False).index).head(15)
    out["high_pairs"] = ("The most correlated pairs of indicators of the same pillar (|r| above "
                         f"{audit.meta['thresholds']['high_correlation']:g} is a finding).",
                         pd.DataFrame({"Pillar": _labelled(spec, pairs["group1"]),
                                       "Indicator": _labelled(spec, pairs["var1"]),
                                       "Indicator ": _labelled(spec, pairs["var2"]),
                                       "Correlation": pairs["correlation"], "Pairs": pairs["n"]}), 3)

    v = in_round(audit.indicator_vs_parent, rnd)
    out["indicator_vs_parent"] = ("Correlation of each indicator (and pillar) with its parent and with the index.",
                                  pd.DataFrame({"Indicator or aggregate": _labelled(spec, v["id"]),
                                                "Level": v["level"], "Parent": _labelled(spec, v["parent"]),
                                                "With parent": v["correlation_parent"],
                                                "With index": v["correlation_index"], "Note": v["note"]}), 3)

    cr = in_round(audit.cronbach, rnd)
    groups = cr[cr["item"] == ""]
    items = cr[cr["item"] != ""]
    worst = items.sort_values("alpha", ascending=False).groupby("group", sort=False).head(1).set_index("group")
    km = in_round(audit.kmo_bartlett, rnd)
    km = km[km["item"] == ""].set_index("group")
    pc = in_round(audit.pca_variance, rnd)
    pc1 = pc[pc["component"] == 1].set_index("group")
    kaiser = pc.groupby("group")["eigenvalue"].apply(
        lambda e: int((e > audit.meta["thresholds"]["kaiser_eigenvalue"]).sum()))
    rel = pd.DataFrame({
        "Group": _labelled(spec, groups["group"]), "Level": groups["level"].to_numpy(),
        "Items": groups["n_items"].to_numpy(), "Cronbach's alpha": groups["alpha"].to_numpy(),
        "Highest alpha if one item deleted": [worst["alpha"].get(g, np.nan) for g in groups["group"]],
        "by deleting": [spec.label(worst["item"].get(g)) if g in worst.index else "" for g in groups["group"]],
        "KMO": [km["kmo"].get(g, np.nan) for g in groups["group"]],
        "Bartlett p": [km["bartlett_p"].get(g, np.nan) for g in groups["group"]],
        "Rows (complete)": [km["n"].get(g, np.nan) for g in groups["group"]],
        "PC1 variance %": [100 * pc1["variance_share"].get(g, np.nan) for g in groups["group"]],
        "Eigenvalues > 1": [kaiser.get(g, np.nan) for g in groups["group"]],
    })
    out["reliability"] = ("Consistency and dimensionality of each pillar (and of the index as a whole): Cronbach's "
                          "alpha (pairwise-complete covariances), the best alpha reachable by deleting one item, "
                          "KMO and Bartlett's test, and the principal components (complete rows).", rel, 3)

    vf = in_round(audit.vif, rnd)
    out["vif"] = ("Variance inflation factor of each indicator among the other indicators of its pillar.",
                  pd.DataFrame({"Indicator": _labelled(spec, vf["indicator"]), "Pillar": _labelled(spec, vf["pillar"]),
                                "VIF": vf["vif"], "Rows (complete)": vf["n"], "Note": vf["note"]}), 2)

    im = in_round(audit.importance, rnd)
    out["importance"] = ("Nominal weight (share of the parent) against effective importance (squared correlation "
                         "with the parent, normalised within the parent).",
                         pd.DataFrame({"Indicator or aggregate": _labelled(spec, im["id"]),
                                       "Parent": _labelled(spec, im["parent"]),
                                       "Nominal weight": im["nominal_weight"], "Correlation": im["correlation"],
                                       "Importance": im["importance"], "Importance / weight": im["ratio"]}), 3)
    for name, (cap, table, digits) in list(out.items()):
        if "Note" in table.columns and not table["Note"].astype(bool).any():
            out[name] = (cap, table.drop(columns="Note"), digits)
    return out


def method_rows(audit) -> pd.DataFrame:
    """The read-me: provenance, what each table holds and the thresholds (``Item``, ``Value``)."""
    from ..audit import MIN_ROWS, TABLES, stage_words

    m = audit.meta
    rows: dict[str, str] = {}
    if audit.illustrative:
        rows["WARNING"] = ILLUSTRATIVE_NOTE
    rows["Report"] = f"Statistical audit: {m['spec']}"
    rows["Dataset"] = m["dataset"]
    rows["Data version"] = m["data_version"]
    rows["Specification"] = m["spec"]
    rows["Spec hash"] = m["spec_hash"]
    rows["Toolkit version"] = m["toolkit_version"]
    rows["Rounds audited"] = ", ".join(m["round_labels"]) if m["rounds"] != [None] else "all data (no rounds)"
    for i, line in enumerate(audit.summary, start=1):
        rows[f"Summary {i}"] = line
    for name, text in TABLES.items():
        rows[f"Sheet {name}"] = text
    for name, stage in m.get("stages", {}).items():
        rows[f"Values of {name}"] = stage_words(stage) + (" and aggregate scores" if name in (
            "indicator_vs_parent", "importance") else "")
    rows["Labels and ids"] = ("each sheet gives the spec's label of an indicator, pillar or group, with its id in "
                              "the next column (\"... id\"), as in the CSV files and the scores, to join tables")
    t = m["thresholds"]
    spec = audit.result.spec
    rules = {
        "availability": f"share of non-missing raw values below {t['availability']:g} (COINr get_stats t_avail)",
        "outliers": f"|skew| > {spec.treat.skew_thresh:g} and kurtosis > {spec.treat.kurt_thresh:g} (the spec's treat "
                    "thresholds; COINr get_stats, type-2 skewness and excess kurtosis)",
        "many zeros": f"share of zeros above {t['share_zeros']:g}, indicators with numeric (not coded) answers",
        "few distinct values": f"distinct values / values below {t['distinct_share']:g}, numeric non-integer answers",
        "constant indicator": "one distinct value",
        "key informants disagree": f"share of locations whose informants disagree above {t['disagreement_rate']:g}",
        "high correlation": f"|r| above {t['high_correlation']:g} between two indicators of the same pillar",
        "negative correlation with parent": "Pearson r below 0 with its own parent",
        "low Cronbach's alpha": f"alpha below {t['cronbach_alpha']:g}",
        "low KMO": f"KMO below {t['kmo']:g}",
        "Bartlett's test not significant": f"p-value above {t['bartlett_p']:g}",
        "high VIF": f"VIF above {t['vif']:g}",
        "more than one dimension": f"two or more principal components with eigenvalue above {t['kaiser_eigenvalue']:g}",
        "importance differs from weight": f"importance / nominal weight outside [{t['importance_ratio_low']:g}, "
                                          f"{t['importance_ratio_high']:g}]",
        "not computed": f"a statistic that is undefined (constant indicator, fewer than {MIN_ROWS} rows, singular "
                        "correlation matrix, one item): NaN, and the row's note says why",
    }
    for k, v in rules.items():
        rows[f"Rule: {k}"] = v
    return pd.DataFrame({"Item": list(rows), "Value": list(rows.values())})


# --------------------------------------------------------------------------- the page
def audit_fragment(audit) -> str:
    """The HTML body of the audit page (style sheet, headings, tables, figures), escaped."""
    m = audit.meta
    rnd = figure_round(audit)
    title = f"Statistical audit: {m['spec']}"
    rounds = ", ".join(m["round_labels"]) if m["rounds"] != [None] else "all data"
    meta = (f"Rounds audited: {rounds} · specification {m['spec']} (hash {m['spec_hash']}) · data version "
            f"{m['data_version'] or 'n/a'} · toolkit {m['toolkit_version']}")
    tables = display_tables(audit)
    parts = [nb.CSS, PAGE_CSS, nb.heading_html(title, 1)]
    if audit.illustrative:
        parts.append(nb.illustrative_banner_html(m["dataset"]))
    parts.append(f'<p class="stability-note">{html.escape(meta)}</p>')
    parts.append("<p>A statistical check of the index, following the JRC/OECD handbook on composite indicators: "
                 "are the data complete and free of outliers, do the indicators of each pillar agree, and does "
                 "each indicator weigh in the index as much as its weight says?</p>")
    parts += [nb.heading_html("Summary", 2), nb.bullets_html(audit.summary)]
    parts.append(nb.heading_html("Findings", 2))
    if "flags" in tables:
        cap, table, digits = tables["flags"]
        parts += [f'<p class="stability-note">{html.escape(cap)}</p>', nb.table_html(table, digits)]
    else:
        parts.append("<p>No finding: every rule of the audit holds.</p>")
    shown = "" if rnd is None else f" The tables and figures below show {_round_words(audit, rnd)[2:-1]}; the " \
                                   "workbook and CSV files have every audited round."

    def section(name, heading, intro=""):
        cap, table, digits = tables[name]
        parts.append(nb.heading_html(heading, 2))
        if intro:
            parts.append(f"<p>{html.escape(intro)}</p>")
        parts.extend([f'<p class="stability-note">{html.escape(cap)}</p>', nb.table_html(table, digits)])

    if shown:
        parts.append(f'<p class="stability-note">{html.escape(shown.strip())}</p>')
    section("indicator_stats", "Indicators")
    parts.append(figure_html(distribution_strips(audit), "Distribution of each indicator before outlier treatment"))
    parts.append(nb.heading_html("Correlations", 2))
    parts.append("<p>Indicators of the same pillar should correlate positively, but not so strongly that they "
                 "count the same thing twice. Framed blocks are pillars.</p>")
    parts.append(figure_html(correlation_heatmap(audit), "Correlations between normalised indicators"))
    cap, table, digits = tables["high_pairs"]
    parts += [f'<p class="stability-note">{html.escape(cap)}</p>', nb.table_html(table, digits)]
    cap, table, digits = tables["indicator_vs_parent"]
    parts += [f'<p class="stability-note">{html.escape(cap)}</p>', nb.table_html(table, digits)]
    section("reliability", "Consistency and dimensions of the pillars")
    section("vif", "Redundancy (variance inflation)")
    parts.append(nb.heading_html("Weights and importance", 2))
    parts.append("<p>A weight says how much an indicator should count; its importance is how much it actually "
                 "drives its pillar (its squared correlation with the pillar, shared out so that a pillar's "
                 "indicators sum to 1). Red bars are indicators whose importance is under half or over twice "
                 "their weight.</p>")
    parts.append(figure_html(importance_bars(audit), "Weight against importance"))
    cap, table, digits = tables["importance"]
    parts += [f'<p class="stability-note">{html.escape(cap)}</p>', nb.table_html(table, digits)]
    parts.append(nb.heading_html("Method and thresholds", 2))
    method = method_rows(audit)
    method = method[~method["Item"].str.startswith(("Summary ", "WARNING"))]
    parts.append(nb.table_html(method))
    parts.append(f'<p>Workbook: <a href="{WORKBOOK_NAME}">{WORKBOOK_NAME}</a> (beside this page), and one CSV '
                 "file per table.</p>")
    return "\n".join(parts)


def audit_html(audit) -> str:
    """The self-contained audit page (the reports' page template, no code, no scripts from the network)."""
    from .worker import export_page

    return export_page(audit_fragment(audit), f"Statistical audit: {audit.meta['spec']}")


# --------------------------------------------------------------------------- workbook and files
def workbook_sheets(audit) -> dict[str, pd.DataFrame]:
    """The sheets of ``audit.xlsx`` in order: read-me, flags, then every table (:func:`reader_table`)."""
    spec = audit.result.spec
    sheets = {"Read me": method_rows(audit), "flags": reader_table(spec, "flags", audit.flags)}
    for name, table in audit.tables().items():
        if name != "flags":
            sheets[name] = reader_table(spec, name, table)
    if audit.illustrative:
        sheets = {k: (v if k == "Read me" else v.assign(data_note="ILLUSTRATIVE data")) for k, v in sheets.items()}
    return sheets


def _cells(col: pd.Series) -> list:
    values = col.astype(object).where(col.notna(), None).tolist()
    out = []
    for v in values:
        v = v.item() if hasattr(v, "item") else v
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        out.append(v)
    return out


def write_workbook(path: str | Path, audit) -> None:
    """Write the audit workbook with xlsxwriter (floats to 3 decimals; fixed creation date: same bytes)."""
    import datetime

    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"strings_to_urls": False, "strings_to_formulas": False,
                                           "strings_to_numbers": False, "nan_inf_to_errors": True})
    try:
        book.set_properties({"title": f"Statistical audit: {audit.meta['spec']}", "author": "stability",
                             "created": datetime.datetime(2000, 1, 1)})
        bold = book.add_format({"bold": True, "text_wrap": True, "valign": "top", "bg_color": "#F2F4F7"})
        decimals = book.add_format({"num_format": "0.000"})
        integer = book.add_format({"num_format": "#,##0"})
        wrap = book.add_format({"text_wrap": True, "valign": "top"})
        for name, df in workbook_sheets(audit).items():
            ws = book.add_worksheet(name[:31])
            ws.freeze_panes(1, 0)
            if len(df.columns) and name != "Read me":
                ws.autofilter(0, 0, max(len(df), 1), len(df.columns) - 1)
            for j, col in enumerate(df.columns):
                s = df[col]
                fmt = (decimals if pd.api.types.is_float_dtype(s.dtype) else
                       integer if pd.api.types.is_integer_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)
                       else None)
                ws.write_string(0, j, str(col), bold)
                values = _cells(s)
                if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
                    values = [None if v is None else str(v) for v in values]
                ws.write_column(1, j, values, fmt)
                width = max([len(str(col)) * 0.9] + [len(str(v)) for v in s.head(200).tolist()])
                ws.set_column(j, j, min(max(width + 2, 8), 100), wrap if name == "Read me" and j == 1 else None)
    finally:
        book.close()


def write_audit(audit, out_dir: str | Path, *, csv: bool = True) -> list[Path]:
    """Write the audit page, the workbook and (``csv``) one CSV per table into ``out_dir``, all or nothing.

    Parameters
    ----------
    audit : Audit
        From :func:`stability.audit.audit`.
    out_dir : str or Path
        Output folder (created if needed).
    csv : bool
        Also write ``<table>.csv`` for every table (every audited round).

    Returns
    -------
    list of Path
        The files written: ``audit.html``, ``audit.xlsx`` and the CSV files.
    """
    from ..audit import TABLES
    from ..export import ILLUSTRATIVE_NOTE
    from ..io import to_csv, write_set

    out = Path(out_dir)
    page = audit_html(audit)  # figures and page first: nothing is written if they fail
    writers = {HTML_NAME: lambda p: p.write_text(page, encoding="utf-8"),
               WORKBOOK_NAME: lambda p: write_workbook(p, audit)}
    if csv:
        for name, table in audit.tables().items():
            if audit.illustrative and "data_note" not in table.columns:
                table = table.copy()
                table.insert(0, "data_note", ILLUSTRATIVE_NOTE)
            writers[f"{name}.csv"] = lambda p, t=table: to_csv(t, p)
    return write_set(out, writers, known=(HTML_NAME, WORKBOOK_NAME, *(f"{n}.csv" for n in TABLES)))


# --------------------------------------------------------------------------- notebook cells
def intro_html(audit) -> str:
    """Title, illustrative-data banner and provenance line of the audit (HTML, escaped)."""
    m = audit.meta
    rounds = ", ".join(m["round_labels"]) if m["rounds"] != [None] else "all data"
    meta = (f"Rounds audited: {rounds} · specification {m['spec']} (hash {m['spec_hash']}) · data version "
            f"{m['data_version'] or 'n/a'}")
    return (nb.CSS + PAGE_CSS + nb.heading_html(f"Statistical audit: {m['spec']}", 1)
            + (nb.illustrative_banner_html(m["dataset"]) if audit.illustrative else "")
            + f'<p class="stability-note">{html.escape(meta)}</p>')


def show_intro(audit) -> None:
    """Display :func:`intro_html` and the summary (for ``notebooks/index_audit.ipynb``)."""
    from IPython.display import HTML, display

    nb.configure()
    display(HTML(intro_html(audit) + nb.bullets_html(audit.summary)))


def show_table(audit, name: str) -> None:
    """Display one table of the page (see :func:`display_tables`) with its caption."""
    from IPython.display import HTML, display

    tables = display_tables(audit)
    if name not in tables:
        display(HTML("<p>No finding: every rule of the audit holds.</p>" if name == "flags" else ""))
        return
    cap, table, digits = tables[name]
    display(HTML(f'<p class="stability-note">{html.escape(cap)}</p>' + nb.table_html(table, digits)))
