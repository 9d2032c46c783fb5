"""Pockets of stability and hotspots of instability in the reports (:mod:`stability.pockets`).

Per round the whole country is analysed once (local Moran's I needs every
location's neighbours, also across regional borders); a regional report shows the
locations of its region and the areas that reach into it.  The tables are kept by
the report context (:meth:`~stability.report.context.ReportContext.once`), so
that ``stability report`` computes them once for the batch and the notebooks
never need the spatial libraries.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import pockets as pk
from . import content, figures

#: Ring colours of pocket and hotspot locations on the static maps (as on the interactive map).
RINGS = {pk.POCKET: "#000000", pk.HOTSPOT: "#CC79A7"}


def _found(ctx):
    return ctx.once_round("pockets_found", lambda: pk.find(ctx.result, ctx.round_value))


def _in_scope(ctx) -> set:
    return set(ctx.current[ctx.columns.location])


def _this_round(ctx, table: pd.DataFrame) -> pd.DataFrame:
    rnd = ctx.columns.round
    return table[table[rnd] == ctx.round] if rnd and rnd in table else table


def pocket_locations(ctx) -> pd.DataFrame:
    """The report's locations this round with their class (``class``), area id (``area``) and local Moran's I."""
    def make():
        loc = _this_round(ctx, _found(ctx).locations)
        return loc[loc[ctx.columns.location].isin(_in_scope(ctx))].reset_index(drop=True)

    return ctx.once("pocket_locations", make)


def pocket_areas(ctx) -> pd.DataFrame:
    """Named pocket and hotspot areas of the round with at least one location in the report's scope."""
    def make():
        areas = _this_round(ctx, _found(ctx).areas)
        areas = areas[areas["area"].notna()]
        scope = _in_scope(ctx)
        keep = np.array([bool(scope & set(m)) for m in areas["members"]], dtype=bool)
        return areas.loc[keep].reset_index(drop=True)

    return ctx.once("pocket_areas", make)


def global_moran(ctx) -> pd.DataFrame:
    """Global Moran's I of the round (the whole country)."""
    return ctx.once("global_moran", lambda: _this_round(ctx, _found(ctx).global_moran).reset_index(drop=True))


def _options_text(ctx) -> str:
    o = ctx.spec.pockets
    graph = f"its {o.k} nearest locations" if o.neighbours == "knn" else f"the locations within {o.distance_km:g} km"
    base = "relative to its region's median" if o.relative_to == "region" else "as it is"
    corr = "false-discovery-rate corrected" if o.correction == "fdr" else "uncorrected"
    return (f"Each location's index ({base}) is compared with that of {graph} (local Moran's I, "
            f"{o.permutations} permutations, {corr} p ≤ {o.alpha:g})")


def pocket_text(ctx) -> list[str]:
    """The pockets and hotspots of the report's scope, and the country's spatial clustering, in words."""
    g = global_moran(ctx)
    lines = []
    if len(g) and np.isfinite(g["i"].iloc[0]):
        i, p = float(g["i"].iloc[0]), float(g["p_sim"].iloc[0])
        clustered = "stability is clustered in space" if p <= 0.05 and i > 0 else "no clear spatial clustering"
        lines.append(f"Across the country, Moran's I is {i:.2f} (permutation p = {p:.3f}): {clustered}.")
    loc = pocket_locations(ctx)
    areas = pocket_areas(ctx)
    where = ctx.region_name if ctx.region is not None else "the country"
    counts = loc["class"].value_counts()
    n_p, n_h = int(counts.get(pk.POCKET, 0)), int(counts.get(pk.HOTSPOT, 0))
    lines.append(f"{_options_text(ctx)}. In {where}, {n_p} location{'s' * (n_p != 1)} lie in pockets of "
                 f"stability and {n_h} in hotspots of instability.")
    for kind, words in ((pk.POCKET, "Pockets of stability"), (pk.HOTSPOT, "Hotspots of instability")):
        part = areas[areas["kind"] == kind]
        if len(part):
            named = "; ".join(f"{r['area']} {r['name']} ({int(r['n_locations'])} locations, median "
                              f"{content.number(r['median_index'])}, {content.number(r['idps'], 0)} IDPs, "
                              f"{content.number(r['returnees'], 0)} returnees{_change_words(r)})"
                              for _, r in part.iterrows())
            lines.append(f"{words}: {named}.")
    return lines


def _change_words(row) -> str:
    change = row.get("change")
    if not isinstance(change, str) or not change:
        return ""
    if change == pk.APPEARED:
        return "; new this round"
    return f"; {change} since the previous round (was {row['previous_area']}, {int(row['n_previous'])} locations)"


def areas_table(ctx) -> pd.DataFrame:
    """The named areas in the report's scope: id, kind, name, locations, median index, people, change."""
    a = pocket_areas(ctx).reindex(columns=pk.AREA_COLUMNS)
    change = [("new" if ch == pk.APPEARED else ch) if isinstance(ch, str) else "" for ch in a["change"]]
    return pd.DataFrame({
        "Area": a["area"], "Kind": a["kind"], "Name": a["name"], "Locations": a["n_locations"].astype("Int64"),
        "Median index": a["median_index"].astype(float).round(1), "IDPs": a["idps"].round(0).astype("Int64"),
        "Returnees": a["returnees"].round(0).astype("Int64"), "Change since previous round": change,
    })


def map_reading(ctx) -> str:
    """How to read the report's map (:func:`pocket_map`), in the admin terms of the data's countries.

    A Mali-only report speaks of cercles, a Burkina Faso region of provinces, a Niger region of the
    region and its department seats (Niger's departments have no polygons), and an overview of
    several countries of each country's admin-2 areas.
    """
    from ..geo import COUNTRY_NAMES, country_of
    from ..locations import ADMIN_LEVEL_NAMES

    countries = [country_of(ctx.region)] if ctx.region is not None else content.countries_of(ctx)
    countries = [iso for iso in countries if iso in ADMIN_LEVEL_NAMES] or ["MLI"]
    niger = "where department boundaries are not available, the region and each department seat"
    ringed = ("The legends give the cut-offs. Locations in pockets of stability are ringed in black, those in "
              "hotspots of instability in pink (see below).")
    if not (ctx.geo or {}).get("admin1"):  # p-codes without embedded boundaries: points only
        return ("Each dot is a location, coloured by its stability category (no boundaries are embedded for "
                f"these regions' p-codes, so no area is shaded). {ringed}")
    if content.admin_columns(ctx, 2)[0] is None:  # no admin-2 column: the regions are shaded
        shaded, its = ("The region is" if ctx.region is not None else "Each region is"), "its"
    elif countries == ["NER"]:
        shaded, its = f"In Niger, {niger} are", "their"
    elif len(countries) == 1:
        shaded, its = f"Each {content.admin_term(2, ctx)} is", "its"
    else:
        kinds = [f"a {ADMIN_LEVEL_NAMES[iso][1]} in {COUNTRY_NAMES[iso]}" for iso in countries if iso != "NER"]
        shaded, its = (f"Each admin-2 area ({content.join_words(kinds)}"
                       + (f"; in Niger, {niger}" if "NER" in countries else "") + ") is"), "its"
    outlined = ", regions are outlined with their median;" if ctx.region is None else ";"
    return (f"{shaded} shaded by the stability category of {its} median index (a lighter tint of the same colours; "
            f"hatched when no location was assessed){outlined} each dot is a location, coloured by its stability "
            f"category. {ringed}")


def pocket_map(ctx):
    """The report's map (region or country: :func:`~stability.report.figures.region_map`,
    :func:`~stability.report.figures.country_map`) with pocket and hotspot locations ringed."""
    from matplotlib.lines import Line2D

    fig = figures.region_map(ctx) if ctx.region is not None else figures.country_map(ctx)
    ax = fig.axes[0]
    loc = pocket_locations(ctx)
    handles = []
    for cls, colour in RINGS.items():
        part = loc[loc["class"] == cls]
        if len(part):
            ax.scatter(part["longitude"], part["latitude"], s=70, facecolors="none", edgecolors=colour,
                       linewidths=1.6, zorder=7)
        handles.append(Line2D([], [], marker="o", linestyle="", markerfacecolor="none", markeredgecolor=colour,
                              markeredgewidth=1.6, markersize=9, label=f"{cls} ({len(part)})"))
    ax.legend(handles=handles, loc="upper left", fontsize=8, framealpha=0.9, title="Ringed", title_fontsize=8)
    where = ctx.region_name if ctx.region is not None else "All regions"
    ax.set_title(f"{where}: locations by category, pockets and hotspots ringed (round {ctx.round})")
    n = loc["class"].value_counts()
    figures.set_alt(fig, f"{figures.alt_text(fig)} Ringed: {int(n.get(pk.POCKET, 0))} locations in pockets of "
                         f"stability (black rings) and {int(n.get(pk.HOTSPOT, 0))} in hotspots of instability "
                         "(pink rings).")
    return fig


def write_map(ctx, output_dir: str | Path = "") -> Path:
    """Write the report's offline interactive map (``map.html``, pockets ringed) beside its workbook."""
    from .interactive import write_interactive_map

    folder = Path(output_dir) if str(output_dir).strip() else content.default_output_dir(ctx)
    return write_interactive_map(ctx, folder, pockets=pocket_locations(ctx))


def workbook_sheets(ctx) -> dict[str, pd.DataFrame]:
    """``Pockets`` (the named areas) and ``Pocket locations`` (every location's class) for the workbook."""
    c = ctx.columns
    loc = pocket_locations(ctx)
    names = ctx.current.set_index(c.location)[c.name] if c.name and c.name in ctx.current else None
    table = pd.DataFrame({"Location id": loc[c.location]})
    if names is not None:
        table["Location"] = loc[c.location].map(names).to_numpy()
    table["Index"] = loc["index_value"].round(1)
    table["Class"] = loc["class"]
    table["Area"] = loc["area"]
    table["Local Moran's I"] = loc["lisa_i"].round(3)
    table["Adjusted p"] = loc["p_adjusted"].round(4)
    table["Note"] = loc["note"]
    return {"Pockets": areas_table(ctx), "Pocket locations": table}
