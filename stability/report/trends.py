"""Change across rounds in the reports: who dropped a category and why, and the trend over rounds.

Built on :mod:`stability.change`; tables are plain DataFrames for :func:`stability.report.notebook.show`
and the workbooks, the chart a matplotlib figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import change
from . import content, figures, uncertainty


#: Locations listed in a report's table of those that dropped a category (the largest falls).
DROPPED_SHOWN = 15


def _changes(ctx) -> pd.DataFrame:
    def make():
        table = ctx.once_round("location_changes_all", lambda: change.location_changes(ctx.result, ctx.round))
        return content.in_scope(ctx, table).reset_index(drop=True)

    return ctx.once("location_changes", make)


def dropped_text(ctx) -> list[str]:
    """How many locations dropped or rose a category since the previous round, in words."""
    if ctx.previous_round is None:
        return []
    ch = _changes(ctx)
    moves = ch["category_move"].value_counts()
    dropped, rose = int(moves.get("dropped", 0)), int(moves.get("rose", 0))
    where = ctx.region_name if ctx.region is not None else content.whole_name(ctx)
    text = (f"Since round {ctx.previous_round}, {dropped} location{'s' if dropped != 1 else ''} of {where} dropped "
            f"to a less stable category and {rose} rose to a more stable one")
    if dropped:
        pillars = f"with the pillars that moved by more than {change.MOVE_THRESHOLD:g} points"
        text += (f"; those that dropped are listed below, largest fall first, {pillars}." if dropped <= DROPPED_SHOWN
                 else f"; the {DROPPED_SHOWN} largest falls are listed below, largest first, {pillars} (all "
                 f"{dropped:,} are in the workbook's Change sheet).")
    else:
        text += "."
    lines = [text]
    if uncertainty.available(ctx):
        c = ctx.columns
        both = ch[ch[f"change_{ctx.index_id}"].notna()]
        beyond = uncertainty.change_flags(ctx, both[c.location]).fillna(False).astype(bool)
        real = both[beyond.to_numpy()]
        fell = both[both["category_move"] == "dropped"]
        fell_real = int(real[c.location].isin(fell[c.location]).sum())
        moved = real[f"change_{ctx.index_id}"]
        runs = (uncertainty.about(ctx) or {}).get("runs", 0)
        lines.append(
            f"Of the {len(both):,} locations assessed in both rounds, {len(real):,} changed beyond noise (the "
            f"{uncertainty.level_text(ctx)} interval of the change over the {runs:,} runs of the uncertainty "
            f"analysis excludes 0): {int((moved < 0).sum()):,} worsened and {int((moved > 0).sum()):,} improved; "
            f"{fell_real:,} of the {len(fell):,} that dropped a category did (column \u201cChange beyond noise\u201d).")
    else:
        lines.append(f"A change of more than {change.MOVE_THRESHOLD:g} points is called a change here; whether it "
                     "exceeds what the modelling choices and the key informants met alone produce is not estimated "
                     f"for this report ({uncertainty.how_to(ctx)} does).")
    return lines


def dropped_table(ctx, top: int | None = DROPPED_SHOWN) -> pd.DataFrame | None:
    """Locations that dropped a category since the previous round (largest fall of the index first).

    Columns: location name, cercle, category then and now, index then and now, change,
    the pillars that moved, location id.  None without a previous round; ``top`` rows at most (the
    largest falls; ``top=None`` lists all).
    """
    if ctx.previous_round is None:
        return None
    ch = _changes(ctx)
    ch = ch[ch["category_move"] == "dropped"]
    if top is not None:
        ch = ch.head(top)
    c = ctx.columns
    idx = ctx.index_id
    out = pd.DataFrame({"Location": ch[c.name] if c.name and c.name in ch else ch[c.location]})
    admin2 = c.admin[1] if len(c.admin) > 1 else None
    names = (ctx.geo or {}).get("admin2_names", {})
    if admin2 and admin2 in ch:
        out[content.admin_term(2, ctx).capitalize()] = [names.get(p, p) for p in ch[admin2]]
    out[f"Category in round {ctx.previous_round}"] = ch["previous_category"].to_numpy()
    out[f"Category in round {ctx.round}"] = ch["category"].astype(object).to_numpy()
    out[f"Index in round {ctx.previous_round}"] = ch[f"previous_{idx}"].round(1).to_numpy()
    out[f"Index in round {ctx.round}"] = ch[idx].round(1).to_numpy()
    out["Change"] = ch[f"change_{idx}"].round(1).to_numpy()
    out["Pillars that moved"] = [_pillar_words(ctx, t) for t in ch["pillars_moved"]]
    if uncertainty.available(ctx):
        flags = uncertainty.change_flags(ctx, ch[c.location])
        out["Change beyond noise"] = ["–" if pd.isna(v) else "yes" if bool(v) else "no" for v in flags]
        out[f"Interval of the change ({uncertainty.level_text(ctx)} of the runs)"] = \
            uncertainty.change_intervals(ctx, ch[c.location])
    out["Location id"] = ch[c.location].to_numpy()
    return out.reset_index(drop=True)


def _pillar_words(ctx, text: str) -> str:
    """``"safety -12.3"`` with the pillars' labels (``"Safety and security -12.3"``)."""
    parts = []
    for part in filter(None, str(text).split(", ")):
        pid, value = part.rsplit(" ", 1)
        parts.append(f"{ctx.spec.label(pid)} {value}")
    return ", ".join(parts)


def trend_table(ctx) -> pd.DataFrame:
    """Median index and locations (and people, when known) per category, per round, for the report's scope."""
    t = ctx.once_round("trends", lambda: change.trends(ctx.result))
    area = ctx.region if ctx.region is not None else change.ALL
    t = t[t["area"] == area]
    labels = content.category_labels(ctx)
    out = pd.DataFrame({"Round": t["round"].to_numpy(), "Locations": t["locations"].to_numpy(),
                        "Median index": t["median_index"].round(1).to_numpy()})
    for lab in labels:
        out[f"Locations {lab}"] = t[f"locations_{lab}"].to_numpy()
    for col in ("idps", "returnees"):
        for lab in labels:
            key = f"{col}_{lab}"
            if key in t:
                out[f"{content.population_label(col)} in {lab}"] = t[key].round(0).astype(int).to_numpy()
    return out


def trend_figure(ctx):
    """The median index across rounds (the region against the country), and the locations, IDPs and returnees
    living in each category, per round.

    Returns
    -------
    matplotlib.figure.Figure or None
        None with a single round.
    """
    from matplotlib.patches import Patch

    rounds = list(ctx.result.rounds)
    if len(rounds) < 2:
        return None
    t = ctx.once_round("trends", lambda: change.trends(ctx.result))
    labels = content.category_labels(ctx)
    colours = figures.category_colours(ctx)
    country = t[t["area"] == change.ALL].set_index("round").reindex(rounds)
    mine = t[t["area"] == ctx.region].set_index("round").reindex(rounds) if ctx.region is not None else None
    where = ctx.region_name if ctx.region is not None else "All regions"
    x = np.arange(len(rounds))
    with figures.style():
        n_people = sum(1 for col in ("idps", "returnees") if f"{col}_{labels[0]}" in t.columns)
        height = 4.2 + (figures.FOOTNOTE_HEIGHT if ctx.illustrative else 0.0)
        fig = figures.new_figure(10.5, height)
        width = 0.86 / (2 + n_people) - 0.06
        axes = [fig.add_axes([0.07 + k * (width + 0.075), 0.84 / height, width, 2.6 / height])
                for k in range(2 + n_people)]
        ax1 = axes[0]
        if mine is not None:
            ax1.plot(x, mine["median_index"], marker="o", color=figures.HIGHLIGHT, linewidth=2, label=where)
            for xi, v, w in zip(x, mine["median_index"], country["median_index"]):
                if np.isfinite(v):  # written on the side away from the country's line
                    ax1.annotate(content.number(v), (xi, v), textcoords="offset points",
                                 xytext=(0, -13 if np.isfinite(w) and w > v else 7), ha="center", fontsize=8.5)
        ax1.plot(x, country["median_index"], marker="s", color="#777777", linewidth=1.5, linestyle="--",
                 label="All regions")
        rng = content.index_range(ctx)
        if rng is not None:
            ax1.set_ylim(*rng)
        cuts = content.category_cuts(ctx)
        for cut in cuts or []:
            ax1.axhline(cut, color="#cccccc", linewidth=0.8, zorder=0)
        ax1.set_xticks(x, [str(r) for r in rounds])
        ax1.set_xlabel("Round")
        ax1.set_ylabel("Median index")
        ax1.legend(loc="lower left", fontsize=8, frameon=False)
        ax1.set_title("Median index by round", fontsize=10)
        part = mine if mine is not None else country
        people = [col for col in ("idps", "returnees") if f"{col}_{labels[0]}" in t.columns]
        panels = [("locations", "Locations")] + [(col, content.population_label(col)) for col in people]
        for ax, (key, name) in zip(axes[1:], panels):
            bottom = np.zeros(len(rounds))
            for lab in labels:
                vals = part[f"{key}_{lab}"].fillna(0).to_numpy(dtype=float)
                ax.bar(x, vals, bottom=bottom, color=colours[lab], edgecolor="white", width=0.6)
                bottom += vals
            ax.set_xticks(x, [str(r) for r in rounds])
            ax.set_xlabel("Round")
            ax.set_title(f"{name} by category", fontsize=10)
            ax.yaxis.set_major_formatter(_thousands())
        fig.legend(handles=[Patch(facecolor=colours[lab], label=lab) for lab in labels], loc="lower center",
                   ncols=len(labels), frameon=False, bbox_to_anchor=(0.6, 0.0), fontsize=8.5)
        foot = figures.FOOTNOTE_HEIGHT if ctx.illustrative else 0.0
        fig.suptitle(f"{where}: the index across rounds", fontsize=11.5, x=0.07, ha="left", va="top",
                     y=1 - (foot + 0.08) / height)
        figures.footnote(ctx, fig)
        fig.set_label(f"{where}: median index by round against all regions, and locations"
                      + (", IDPs and returnees" if n_people == 2 else "")
                      + " in each stability category by round.")
    return fig


def _thousands():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:,.0f}")


def spec_sentence(ctx) -> str:
    """Which spec every round of this report was computed with (all rounds at once, with one spec)."""
    hashes = ctx.scores["spec_hash"].dropna().astype(str).unique() if "spec_hash" in ctx.scores else []
    h = hashes[0] if len(hashes) == 1 else ctx.result.spec_hash
    rounds = ", ".join(str(r) for r in ctx.result.rounds)
    command = " ".join(["stability report --all --round all", uncertainty.data_options(ctx)]).strip()
    return (f"Every round shown ({rounds}) was computed together with the same specification "
            f"(\u201c{ctx.spec.name}\u201d, spec hash {str(h)[:12]}), so changes between rounds are not "
            f"changes of method. After a change of method, the command {command} rebuilds the reports of every round.")


def changes_sheet(ctx) -> pd.DataFrame | None:
    """Every location of the report with its change since the previous round and the baseline (workbook)."""
    if ctx.previous_round is None:
        return None
    ch = _changes(ctx)
    c = ctx.columns
    idx = ctx.index_id
    first = ctx.result.rounds[0]
    cols = {c.location: "Location id"}
    if c.name and c.name in ch:
        cols[c.name] = "Location"
    cols.update({"category": f"Category in round {ctx.round}", "previous_category":
                 f"Category in round {ctx.previous_round}", "category_move": "Category move",
                 f"change_{idx}": f"Change of the index since round {ctx.previous_round}"})
    if first != ctx.previous_round:  # the baseline is an earlier round than the previous one
        cols[f"change_since_baseline_{idx}"] = f"Change of the index since round {first}"
    for p in ctx.pillars:
        cols[f"change_{p}"] = f"Change of {ctx.spec.label(p)} since round {ctx.previous_round}"
    out = ch[list(cols)].rename(columns=cols)
    out["Category in round " + str(ctx.round)] = out["Category in round " + str(ctx.round)].astype(object)
    out["Pillars that moved"] = [_pillar_words(ctx, t) for t in ch["pillars_moved"]]
    num = [k for k in out.columns if k.startswith("Change of")]
    out[num] = out[num].astype(float).round(1)
    return out.reset_index(drop=True)


def workbook_sheets(ctx) -> dict[str, pd.DataFrame]:
    """Sheets for the rankings workbook: ``Change`` (every location) and ``Trend`` (by round)."""
    sheets = {}
    sheet = changes_sheet(ctx)
    if sheet is not None:
        sheets["Change"] = sheet
    sheets["Trend"] = trend_table(ctx)
    return sheets
