"""Pockets of stability and hotspots of instability in the reports (:mod:`stability.pockets`).

Per round the whole country is analysed once (local Moran's I needs every
location's neighbours, also across regional borders); a regional report shows the
locations of its region and the areas that reach into it, each with the counts,
median and people of its locations in the region (and where its other locations
lie, when it spans regions); the overview shows whole areas.  The tables are kept by
the report context (:meth:`~stability.report.context.ReportContext.once`), so
that ``stability report`` computes them once for the batch and the notebooks
never need the spatial libraries.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import pockets as pk
from ..priorities import plural
from . import content, figures

#: The ring of each class, one fixed colour everywhere (static map, interactive map, legends, text):
#: Okabe-Ito black, reddish purple, bluish green and sky blue, apart from the category colours of the points.
RINGS = {pk.POCKET: "#000000", pk.HOTSPOT: "#CC79A7", pk.HIGH_LOW: "#009E73", pk.LOW_HIGH: "#56B4E9"}
#: The colours of :data:`RINGS` in words.
RING_NAMES = {pk.POCKET: "black", pk.HOTSPOT: "pink", pk.HIGH_LOW: "green", pk.LOW_HIGH: "light blue"}


def class_count_words(counts) -> list[str]:
    """Locations per ringed class in words, singular or plural, in the order of :data:`RINGS`, then any other
    class by name; classes with no location, and the unringed ``not significant`` and ``not mapped``, are left out.

    ``{"pocket of stability": 1, "high-low outlier": 2}`` -> ``["1 location in a pocket of stability",
    "2 high-low outliers"]``.
    """
    counts = {str(k): int(v) for k, v in dict(counts).items()
              if int(v) and str(k) not in (pk.NOT_SIGNIFICANT, pk.NOT_MAPPED)}
    words = {pk.POCKET: ("location in a pocket of stability", "locations in pockets of stability"),
             pk.HOTSPOT: ("location in a hotspot of instability", "locations in hotspots of instability"),
             pk.HIGH_LOW: ("high-low outlier", "high-low outliers"),
             pk.LOW_HIGH: ("low-high outlier", "low-high outliers")}
    order = [c for c in RINGS if c in counts] + sorted(c for c in counts if c not in RINGS)
    return [plural(counts[c], *words.get(c, (f"location: {c}", f"locations: {c}"))) for c in order]


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
    """Named pocket and hotspot areas of the round with at least one location in the report's scope.

    The columns of :data:`stability.pockets.AREA_COLUMNS`; in a regional report ``members``,
    ``n_locations``, ``median_index``, ``idps`` and ``returnees`` are those of the area's locations in
    the region (the overview keeps whole areas).  Two more columns: ``n_area`` (locations of the whole
    area) and ``elsewhere`` (a list of ``(region name, locations)`` of the area's other locations,
    most first; empty when it lies wholly in the scope).
    """
    def make():
        areas = _this_round(ctx, _found(ctx).areas)
        areas = areas[areas["area"].notna()]
        scope = _in_scope(ctx)
        keep = np.array([bool(scope & set(m)) for m in areas["members"]], dtype=bool)
        areas = areas.loc[keep].reset_index(drop=True)
        areas["n_area"] = areas["n_locations"].astype("int64")
        areas["elsewhere"] = [[] for _ in range(len(areas))]
        if ctx.region is None or areas.empty:
            return areas
        c, p = ctx.columns, ctx.spec.priorities
        here = ctx.current.drop_duplicates(c.location).set_index(c.location)
        region_of = ctx.national.drop_duplicates(c.location).set_index(c.location)[c.admin[0]]
        index = pd.to_numeric(here[ctx.index_id], errors="coerce")

        def total(column, ids):
            if not column or column not in here:
                return 0.0
            return float(pd.to_numeric(here.loc[ids, column], errors="coerce").fillna(0).sum())

        rows = []
        for _, row in areas.iterrows():
            mine = [m for m in row["members"] if m in scope]
            others = pd.Series([region_of.get(m) for m in row["members"] if m not in scope], dtype=object)
            counts = others.map(lambda r: ctx.regions.get(r, r) if isinstance(r, str) else "another region")
            counts = counts.value_counts()
            elsewhere = sorted(((str(k), int(v)) for k, v in counts.items()), key=lambda kv: (-kv[1], kv[0]))
            rows.append({**row.to_dict(), "members": mine, "n_locations": len(mine),
                         "median_index": float(index.loc[mine].median()) if mine else np.nan,
                         "idps": total(p.idp_column, mine), "returnees": total(p.returnee_column, mine),
                         "elsewhere": elsewhere})
        return pd.DataFrame(rows, columns=areas.columns)

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
    """The pockets and hotspots of the report's scope, and the country's spatial clustering, in words.

    In a regional report each area's locations, median and people are those in the region, and an area
    that spans regions says where its other locations lie.
    """
    g = global_moran(ctx)
    lines = []
    if len(g) and np.isfinite(g["i"].iloc[0]):
        i, p = float(g["i"].iloc[0]), float(g["p_sim"].iloc[0])
        clustered = "stability is clustered in space" if p <= 0.05 and i > 0 else "no clear spatial clustering"
        lines.append(f"Across {content.whole_name(ctx)}, Moran's I is {i:.2f} (permutation p = {p:.3f}): {clustered}.")
    loc = pocket_locations(ctx)
    areas = pocket_areas(ctx)
    regional = ctx.region is not None
    where = ctx.region_name if regional else content.whole_name(ctx)
    prefix = f"In {where}" if regional or not content.several_countries(ctx) else f"Across {where}"
    counts = loc["class"].value_counts()
    n_p, n_h = int(counts.get(pk.POCKET, 0)), int(counts.get(pk.HOTSPOT, 0))
    n_hl, n_lh = int(counts.get(pk.HIGH_LOW, 0)), int(counts.get(pk.LOW_HIGH, 0))
    places = {pk.POCKET: ("a pocket", "pockets", "of stability"), pk.HOTSPOT: ("a hotspot", "hotspots", "of instability")}
    (first, n1), (second, n2) = sorted(((pk.POCKET, n_p), (pk.HOTSPOT, n_h)), key=lambda kv: kv[1] == 0)
    if n1:
        one, many, of = places[first]
        found = f"{prefix}, {plural(n1, 'location lies', 'locations lie')} in {one if n1 == 1 else many} {of}"
        one, many, of = places[second]
        found += f" and {f'{n2:,}' if n2 else 'none'} in {one if n2 == 1 else many} {of}"
    else:
        found = f"{prefix}, no location lies in a pocket of stability or a hotspot of instability this round"
    outliers = ""
    if n_hl and n_lh:
        outliers = (f"; {n_hl + n_lh:,} locations are outliers: {n_hl:,} high-low (stable among unstable "
                    f"neighbours) and {n_lh:,} low-high (unstable among stable neighbours)")
    elif n_hl or n_lh:
        n, kind, what = (n_hl, "high-low", "stable among unstable") if n_hl else (n_lh, "low-high", "unstable among stable")
        outliers = (f"; {plural(n, f'location is a {kind} outlier', f'locations are {kind} outliers')} "
                    f"({what} neighbours)")
    lines.append(f"{_options_text(ctx)}. {found}{outliers}.")
    unnamed = int(loc["class"].isin([pk.POCKET, pk.HOTSPOT]).sum()) - int(areas["n_locations"].sum())
    if unnamed > 0 and len(areas):
        lines.append(f"{plural(unnamed, 'pocket or hotspot location lies', 'pocket and hotspot locations lie')} "
                     f"in groups of fewer than {ctx.spec.pockets.min_size} locations, not named as areas.")
    if regional and len(areas):
        lines.append(f"The locations, median index and people given for each area are those of its locations in "
                     f"{where}.")
    for kind, words in ((pk.POCKET, "Pockets of stability"), (pk.HOTSPOT, "Hotspots of instability")):
        part = areas[areas["kind"] == kind]
        if len(part):
            named = "; ".join(f"{r['area']} {r['name']} ({plural(int(r['n_locations']), 'location', 'locations')}, "
                              f"median {content.number(r['median_index'])}, {content.number(r['idps'], 0)} IDPs, "
                              f"{content.number(r['returnees'], 0)} returnees{_spans_words(r)}{_change_words(r)})"
                              for _, r in part.iterrows())
            lines.append(f"{words}: {named}.")
    category = median_categories(ctx, areas["median_index"]) if len(areas) else None
    if category is not None:
        labels = content.category_labels(ctx)
        odd = [(k, c) for k, c in zip(areas["kind"], category)
               if c and c != (labels[-1] if k == pk.POCKET else labels[0])]
        if odd:
            lines.append(f"Pockets and hotspots are found relative to each region's median, not on the index's "
                         f"categories: {plural(len(odd), 'area has', 'areas have')} a median outside the "
                         f"'{labels[-1]}' category (pockets) or the '{labels[0]}' one (hotspots) "
                         "(column \u201cCategory of the median\u201d).")
    return lines


def _spans_words(row) -> str:
    """``; 6 of its 9 locations are in this region, the others in Tombouctou`` for an area that spans regions."""
    elsewhere = row.get("elsewhere")
    if not isinstance(elsewhere, list) or not elsewhere:
        return ""
    n, total = int(row["n_locations"]), int(row["n_area"])
    if len(elsewhere) == 1:
        others = elsewhere[0][0]
    else:
        others = content.join_words(f"{name} ({k})" for name, k in elsewhere)
    one = "the other" if total - n == 1 else "the others"
    return f"; {n} of its {total} locations {'is' if n == 1 else 'are'} in this region, {one} in {others}"


def _change_words(row) -> str:
    change = row.get("change")
    if not isinstance(change, str) or not change:
        return ""
    if change == pk.APPEARED:
        return "; new this round"
    whole = "the whole area " if row.get("elsewhere") else ""
    verb = {pk.STABLE: "kept its size"}.get(change, change)
    return (f"; {whole}{verb} since the previous round (was {row['previous_area']}, "
            f"{plural(int(row['n_previous']), 'location', 'locations')})")


def _areas_frame(ctx) -> pd.DataFrame:
    """The table of :func:`areas_table`, empty (with its columns) when there is no area."""
    a = pocket_areas(ctx)
    change = [("new" if ch == pk.APPEARED else ch) if isinstance(ch, str) else "" for ch in a["change"]]
    here = " in region" if ctx.region is not None else ""
    out = pd.DataFrame({
        "Area": a["area"], "Kind": a["kind"], "Name": a["name"],
        f"Locations{here}": a["n_locations"].astype("Int64"),
        f"Median index{here}": a["median_index"].astype(float).round(1),
        f"IDPs{here}": a["idps"].astype(float).round(0).astype("Int64"),
        f"Returnees{here}": a["returnees"].astype(float).round(0).astype("Int64"),
    })
    category = median_categories(ctx, a["median_index"])
    if category is not None:  # pockets are relative to the region: a pocket's median can be medium or low
        out.insert(out.columns.get_loc(f"Median index{here}") + 1, "Category of the median", category)
    if here:
        out["Locations elsewhere"] = [content.join_words(f"{k} in {name}" for name, k in e) for e in a["elsewhere"]]
    out["Change since previous round"] = change
    return out.reset_index(drop=True)


def median_categories(ctx, medians) -> list[str] | None:
    """The stability category of each median index (fixed cut-offs), or None when each round is cut at its
    quantiles (a category of a median is then not defined)."""
    cuts = content.category_cuts(ctx)
    if cuts is None:
        return None
    labels = content.category_labels(ctx)
    values = np.asarray(medians, dtype=float)
    return [labels[int(np.searchsorted(cuts, m, side="right"))] if np.isfinite(m) else "" for m in values]


def areas_table(ctx) -> pd.DataFrame | None:
    """The named areas in the report's scope: id, kind, name, locations, median index, people, change.

    In a regional report the counts, median and people are those of each area's locations in the
    region, and ``Locations elsewhere`` says where its others lie.  None when no area reaches into the
    scope (:func:`stability.report.notebook.show` shows nothing; :func:`pocket_text` says so).
    """
    table = _areas_frame(ctx)
    return table if len(table) else None


def rings_reading(counts=None) -> str:
    """How the rings read: each class and its fixed colour (:data:`RINGS`, :data:`RING_NAMES`).

    With ``counts`` (class -> locations), only the classes that have locations are named.
    """
    shown = [c for c in RINGS if counts is None or int(dict(counts).get(c, 0))]
    if not shown:
        return "No location is in a pocket of stability, a hotspot of instability or an outlier, so none is ringed."
    words = {pk.POCKET: "locations in pockets of stability ({})", pk.HOTSPOT: "in hotspots of instability ({})",
             pk.HIGH_LOW: "high-low outliers ({}: stable among unstable neighbours)",
             pk.LOW_HIGH: "low-high outliers ({}: unstable among stable neighbours)"}
    if shown[0] == pk.HOTSPOT:
        words[pk.HOTSPOT] = "locations in hotspots of instability ({})"
    parts = [words[c].format(RING_NAMES[c]) for c in shown]
    return f"Rings mark {content.join_words(parts)}; each class has the same colour on both maps."


def map_reading(ctx) -> str:
    """How to read the report's maps (:func:`pocket_map` and the interactive ``map.html``), in the admin terms
    of the data's countries.

    A Mali-only report speaks of cercles, a Burkina Faso region of provinces, a Niger region of the
    region (shaded whole: Niger's departments have no polygons) and its department seats (marked, with
    the department's median index), and an overview of several countries of each country's admin-2
    areas (Niger's regions shaded whole).  The rings are named by class, each in its fixed colour.
    """
    from ..geo import COUNTRY_NAMES, country_of
    from ..locations import ADMIN_LEVEL_NAMES

    countries = [country_of(ctx.region)] if ctx.region is not None else content.countries_of(ctx)
    countries = [iso for iso in countries if iso in ADMIN_LEVEL_NAMES] or ["MLI"]
    ringed = f"The legends give the cut-offs. {rings_reading(pocket_locations(ctx)['class'].value_counts())}"
    geo = ctx.geo or {}
    if not geo.get("admin1"):  # p-codes without embedded boundaries: points only
        return ("Each dot is a location, coloured by its stability category (no boundaries are embedded for "
                f"these regions' p-codes, so no area is shaded). {ringed}")
    seats = ""
    if content.admin_columns(ctx, 2)[0] is None:  # no admin-2 column: the regions are shaded
        shaded, its = ("The region is" if ctx.region is not None else "Each region is"), "its"
    elif countries == ["NER"] and ctx.region is not None:
        shaded, its = "In Niger, where department boundaries are not available, the region is", "its"
        parents = geo.get("admin2_parent", {})
        if any(parents.get(p) == ctx.region for p in geo.get("admin2_seats", {})):
            seats = (" each department seat is marked with a black square labelled with the department's median "
                     "index (on the interactive map, hover or focus a seat for its category and locations);")
    elif countries == ["NER"]:
        shaded, its = "In Niger, where department boundaries are not available, each region is", "its"
    elif len(countries) == 1:
        shaded, its = f"Each {content.admin_term(2, ctx)} is", "its"
    else:
        kinds = [f"a {ADMIN_LEVEL_NAMES[iso][1]} in {COUNTRY_NAMES[iso]}" for iso in countries if iso != "NER"]
        niger = "; in Niger, where department boundaries are not available, each region as a whole"
        shaded, its = (f"Each admin-2 area ({content.join_words(kinds)}"
                       + (niger if "NER" in countries else "") + ") is"), "its"
    outlined = ", regions are outlined with their median;" if ctx.region is None else ";"
    return (f"{shaded} shaded by the stability category of {its} median index (a lighter tint of the same colours; "
            f"hatched when no location was assessed){outlined}{seats} each dot is a location, coloured by its "
            f"stability category. {ringed}")


def pocket_map(ctx):
    """The report's map (region or country: :func:`~stability.report.figures.region_map`,
    :func:`~stability.report.figures.country_map`) with pocket, hotspot and outlier locations ringed,
    each class in its fixed colour (:data:`RINGS`)."""
    from matplotlib.lines import Line2D

    fig = figures.region_map(ctx) if ctx.region is not None else figures.country_map(ctx)
    ax = fig.axes[0]
    loc = pocket_locations(ctx)
    n = loc["class"].value_counts()
    handles = []
    for cls, colour in RINGS.items():
        part = loc[loc["class"] == cls]
        if len(part):
            ax.scatter(part["longitude"], part["latitude"], s=70, facecolors="none", edgecolors=colour,
                       linewidths=1.6, zorder=7)
        if len(part) or cls in (pk.POCKET, pk.HOTSPOT):  # pockets and hotspots always in the key
            handles.append(Line2D([], [], marker="o", linestyle="", markerfacecolor="none", markeredgecolor=colour,
                                  markeredgewidth=1.6, markersize=9, label=f"{cls} ({len(part)})"))
    _legend_in_emptiest_corner(ax, handles=handles, fontsize=8, framealpha=0.9, title="Ringed", title_fontsize=8)
    where = ctx.region_name if ctx.region is not None else "All regions"
    ax.set_title(f"{where}: locations by category; pockets, hotspots and outliers ringed (round {ctx.round})")
    ringed = [f"{w} ({RING_NAMES[c]} rings)" for c, w in
              zip([c for c in RINGS if int(n.get(c, 0))], class_count_words({c: n.get(c, 0) for c in RINGS}))]
    figures.set_alt(fig, f"{figures.alt_text(fig)} Ringed: "
                         f"{content.join_words(ringed) if ringed else 'no location (none in a pocket, hotspot or outlier)'}.")
    return fig


def _legend_in_emptiest_corner(ax, **kw):
    """The legend of ``ax`` in the corner (not the lower right one, the scale bar's) where it hides the fewest
    points and labels (ties: upper left, lower left, upper right)."""
    from matplotlib.collections import PathCollection

    xy = [np.asarray(c.get_offsets(), dtype=float).reshape(-1, 2) for c in ax.collections
          if isinstance(c, PathCollection)]
    xy += [np.array([t.xy if hasattr(t, "xy") else t.get_position()], dtype=float) for t in ax.texts]
    pts = np.vstack(xy) if xy else np.empty((0, 2))
    canvas = ax.figure.canvas
    if not hasattr(canvas, "get_renderer"):  # a figure outside pyplot: lay it out with Agg (as savefig does)
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        canvas = FigureCanvasAgg(ax.figure)
    renderer = canvas.get_renderer()
    hidden = {}
    for loc in ("upper left", "lower left", "upper right"):
        box = ax.legend(loc=loc, **kw).get_window_extent(renderer).transformed(ax.transData.inverted())
        dx, dy = 0.03 * abs(box.x1 - box.x0), 0.03 * abs(box.y1 - box.y0) + 0.02 * abs(np.diff(ax.get_ylim())[0])
        hidden[loc] = int(((pts[:, 0] >= box.x0 - dx) & (pts[:, 0] <= box.x1 + dx) & (pts[:, 1] >= box.y0 - dy)
                           & (pts[:, 1] <= box.y1 + dy)).sum())
    legend = ax.legend(loc=min(hidden, key=lambda k: (hidden[k], list(hidden).index(k))), **kw)
    legend.set_zorder(10)  # above the area labels
    return legend


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
    return {"Pockets": _areas_frame(ctx), "Pocket locations": table}
