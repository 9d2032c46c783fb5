"""Figures of the regional comparison reports (matplotlib, no pyplot, no geopandas).

Every function takes a :class:`~stability.report.context.ReportContext` and
returns a :class:`matplotlib.figure.Figure` built with the object-oriented API
(so nothing is shown twice by the inline backend and it works on any backend,
Agg included).  Maps are drawn from the shapely geometries of ``ctx.geo`` with
matplotlib paths; without geometries they fall back to points.

Styling is fixed here, not taken from the caller's rcParams: category colours
(:func:`category_colours`) are the same in every figure, fonts are readable at
100 dpi, text from the data is never parsed as mathtext, and figures of
illustrative data say so above their title.  Figures are laid out with fixed
margins in inches (no layout engine: that would cost an extra drawing pass per
figure); tick labels from the data are shortened so that they fit.

==========================  ==================================================
:func:`region_map`          cercles shaded by median index, locations by category
:func:`country_map`         regions shaded by median index, locations by category
:func:`pillar_profile`      region vs national distribution of index and pillars
:func:`region_comparison`   index by region (box + points), sorted by median
:func:`population_bars`     IDPs / returnees per region and category (stacked)
==========================  ==================================================
"""

from __future__ import annotations

import contextlib
import math
import textwrap

import numpy as np
import pandas as pd

from . import content

#: Colours of the categories, least stable first (red, amber, green).
CATEGORY_COLOURS = ("#d7301f", "#f5a300", "#1a9850")
NOT_SCORED_COLOUR = "#9e9e9e"
#: The report's region in comparisons, and everything else.
HIGHLIGHT = "#1f5f99"
MUTED = "#c8c8c8"
NATIONAL = "#8c8c8c"
#: Sequential colour map of the median index of an area (0 = least stable).
AREA_CMAP = "Blues"
NO_DATA_FILL = "#f4f4f4"
CONTEXT_FILL = "#ececec"
DPI = 100
ILLUSTRATIVE_FOOTNOTE = "ILLUSTRATIVE DATA (generated, not a real survey): not for programming decisions"

STYLE = {
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "figure.titlesize": 13,
    "figure.titleweight": "bold",
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "text.parse_math": False,
    "svg.fonttype": "none",
}

# Layout, in inches.
_FOOT = 0.28        # illustrative-data line above the title
_TITLE = 0.42       # an axes title
_XAXIS = 0.55       # x tick labels and x label
_LEGEND_ROW = 0.25
_CHAR = 0.62 / 72   # width of a character per point of font size (DejaVu Sans, generous)


# --------------------------------------------------------------------------- shared helpers
@contextlib.contextmanager
def style():
    """The reports' matplotlib style (rcParams) for the figures built inside the block."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        yield


def warm_up() -> None:
    """Draw and save a small figure with the reports' fonts, sizes, halos, legend and colour bar.

    The first figure of a process pays for loading fonts and laying out glyphs; the kernel
    server (:mod:`stability.report.kernels`) calls this once so that every kernel it forks
    inherits the warmed caches.  Draws nothing anyone sees.
    """
    import io

    with style():
        fig = new_figure(4, 3)
        ax = fig.add_axes([0.1, 0.1, 0.7, 0.8])
        for size in (7, 8, 8.5, 9, 9.5, 10, 11, 12, 13):
            for weight in ("normal", "bold"):
                ax.text(0.5, 0.5, "Aa Bb \u00c9\u00e9 0123456789 %,.-()", fontsize=size, fontweight=weight, path_effects=_halo())
        ax.set_title("Title")
        ax.set_xlabel("Index")
        (line,) = ax.plot([0, 1], [0, 1], label="line")
        ax.legend(handles=[line], title="Legend")
        fig.colorbar(ax.scatter([0, 1], [0, 1], c=[0, 1], cmap=AREA_CMAP), ax=ax)
        fig.savefig(io.BytesIO(), format="png", dpi=DPI)


def new_figure(width: float, height: float):
    """A :class:`~matplotlib.figure.Figure` not managed by pyplot (no layout engine)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI)


def _text_width(text: str, size: float = 9) -> float:
    """Estimated width (inches) of one line of text at ``size`` points."""
    return max((len(line) for line in str(text).split("\n")), default=0) * size * _CHAR


def _short(text, n: int = 26) -> str:
    """``text`` shortened to ``n`` characters with an ellipsis (tick labels from the data)."""
    text = str(text)
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def _legend_height(n_items: int, ncols: int, title: bool = False) -> float:
    return 0.14 + _LEGEND_ROW * math.ceil(max(n_items, 1) / max(ncols, 1)) + (_LEGEND_ROW if title else 0)


def _top(ctx, base: float = _TITLE) -> float:
    return base + (_FOOT if ctx.illustrative else 0.0)


def _axes_rect(fig, left: float, right: float, bottom: float, top: float) -> list[float]:
    """``[x, y, w, h]`` (figure fractions) of the area inside margins given in inches."""
    w, h = fig.get_size_inches()
    return [left / w, bottom / h, max(w - left - right, 0.5) / w, max(h - top - bottom, 0.5) / h]


def _bottom_legend(fig, handles: list, ncols: int, title: str | None = None) -> None:
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.04 / fig.get_figheight()),
               ncols=ncols, frameon=False, title=title, handletextpad=0.5, columnspacing=1.6)


def category_colours(ctx) -> dict[str, str]:
    """Category label -> colour (red to green), plus ``not scored`` in grey."""
    labels = content.category_labels(ctx)
    if len(labels) == len(CATEGORY_COLOURS):
        colours = list(CATEGORY_COLOURS)
    else:
        import matplotlib
        from matplotlib.colors import to_hex

        cmap = matplotlib.colormaps["RdYlGn"]
        colours = [to_hex(cmap(0.1 + 0.8 * i / max(len(labels) - 1, 1))) for i in range(len(labels))]
    out = dict(zip(labels, colours))
    out[content.NOT_SCORED] = NOT_SCORED_COLOUR
    return out


def _category_legend_handles(ctx, present: pd.Series | None = None, marker: bool = True) -> list:
    """Legend handles of the categories (``label (range)``), with counts when ``present`` is given."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    ranges = content.category_ranges(ctx)
    counts = present.value_counts() if present is not None else None
    handles = []
    for lab, colour in category_colours(ctx).items():
        if lab == content.NOT_SCORED and (counts is None or not counts.get(lab, 0)):
            continue
        text = f"{lab} ({ranges[lab]})" if lab in ranges else lab
        if counts is not None:
            text += f": {counts.get(lab, 0):,}"
        if marker:
            handles.append(Line2D([], [], linestyle="", marker="o", markersize=7, markerfacecolor=colour,
                                  markeredgecolor="#333333", markeredgewidth=0.5, label=text))
        else:
            handles.append(Patch(facecolor=colour, edgecolor="none", label=text))
    return handles


def _footnote(ctx, fig) -> None:
    """Say on the figure itself, above its title, that the data are illustrative (figures get copied)."""
    if ctx.illustrative:
        fig.text(0.005, 1 - 0.05 / fig.get_figheight(), ILLUSTRATIVE_FOOTNOTE, ha="left", va="top",
                 fontsize=8.5, color="#b2182b", fontweight="bold")


def _halo(width: float = 3.0) -> list:
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=width, foreground="white")]


# --------------------------------------------------------------------------- maps
def geometry_path(geom):
    """A matplotlib :class:`~matplotlib.path.Path` of a shapely (Multi)Polygon, holes included."""
    from matplotlib.path import Path

    polys = [g for g in getattr(geom, "geoms", [geom]) if g.geom_type == "Polygon" and not g.is_empty]
    verts, codes = [], []
    for poly in polys:
        for ring in (poly.exterior, *poly.interiors):
            xy = np.asarray(ring.coords)[:, :2]
            if len(xy) < 3:
                continue
            c = np.full(len(xy), Path.LINETO, dtype=Path.code_type)
            c[0], c[-1] = Path.MOVETO, Path.CLOSEPOLY
            verts.append(xy)
            codes.append(c)
    if not verts:
        return None
    return Path(np.concatenate(verts), np.concatenate(codes))


def _add_shapes(ax, geoms, facecolors, zorder: float, **kw) -> None:
    """Draw polygons as one collection (without recomputing the data limits: maps set them)."""
    from matplotlib.collections import PathCollection

    paths, faces = [], []
    for geom, face in zip(geoms, facecolors):
        path = geometry_path(geom)
        if path is not None:
            paths.append(path)
            faces.append(face)
    if paths:
        ax.add_collection(PathCollection(paths, facecolors=faces, zorder=zorder, **kw), autolim=False)


def _extent(bounds: tuple[float, float, float, float], margin: float = 0.06) -> tuple:
    x0, y0, x1, y1 = bounds
    dx, dy = max(x1 - x0, 0.05), max(y1 - y0, 0.05)
    return x0 - margin * dx, x1 + margin * dx, y0 - margin * dy, y1 + margin * dy


def _points_bounds(ctx, frame: pd.DataFrame) -> tuple | None:
    lon, lat = ctx.columns.longitude, ctx.columns.latitude
    if not (lon and lat and lon in frame and lat in frame):
        return None
    xy = frame[[lon, lat]].dropna()
    if xy.empty:
        return None
    return (xy[lon].min(), xy[lat].min(), xy[lon].max(), xy[lat].max())


def _union_bounds(geoms) -> tuple:
    b = np.array([g.bounds for g in geoms])
    return (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())


def _map_axes(ctx, extent: tuple, colourbar: bool, n_legend: int, width: float = 9.0):
    """Figure, map axes and colour-bar axes (or None) sized to the map's extent.

    The height follows the extent's shape (longitude scaled by cos(latitude)),
    within 5 to 8.8 inches; the map keeps equal distances in both directions
    and fills its box (the visible extent grows in one direction if needed).
    Labels of areas are placed from the extent requested, so they stay inside it.
    """
    x0, x1, y0, y1 = extent
    lat = (y0 + y1) / 2
    aspect = 1.0 / max(math.cos(math.radians(lat)), 0.1)
    left, right = 0.8, (1.45 if colourbar else 0.3)
    top, bottom = _top(ctx), _XAXIS + _legend_height(n_legend, 3, title=True)
    map_w = width - left - right
    map_h = map_w * (y1 - y0) * aspect / max(x1 - x0, 1e-9)
    height = min(max(map_h + top + bottom, 5.0), 8.8)
    fig = new_figure(width, height)
    ax = fig.add_axes(_axes_rect(fig, left, right, bottom, top))
    x0, x1, y0, y1 = _fit_extent(extent, aspect, map_w / (height - top - bottom))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect(aspect, adjustable="box")
    ax.set_xlabel("Longitude (°)")
    ax.set_ylabel("Latitude (°)")
    ax.tick_params(labelsize=8, colors="#555555")
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_color("#aaaaaa")
    cax = None
    if colourbar:
        area_h = height - top - bottom
        cax = fig.add_axes([(width - right + 0.25) / width, (bottom + 0.15 * area_h) / height,
                            0.17 / width, 0.7 * area_h / height])
    return fig, ax, cax


def _fit_extent(extent: tuple, aspect: float, box_ratio: float) -> tuple:
    """Grow ``extent`` in one direction (about its centre) so that it fills a box of width/height ``box_ratio``."""
    x0, x1, y0, y1 = extent
    dx, dy = x1 - x0, (y1 - y0) * aspect
    if dx / dy < box_ratio:
        grow = (dy * box_ratio - dx) / 2
        x0, x1 = x0 - grow, x1 + grow
    else:
        grow = (dx / box_ratio - dy) / 2 / aspect
        y0, y1 = y0 - grow, y1 + grow
    return x0, x1, y0, y1


def _plot_points(ctx, ax, frame: pd.DataFrame, size: float) -> pd.Series:
    """Locations as points coloured by category (least stable drawn last, on top)."""
    lon, lat = ctx.columns.longitude, ctx.columns.latitude
    cats = content.categories_of(ctx, frame)
    if not (lon and lat and lon in frame and lat in frame):
        return cats
    colours = category_colours(ctx)
    for lab in reversed(list(colours)):
        sel = (cats == lab).to_numpy()
        if sel.any():
            ax.scatter(frame.loc[sel, lon], frame.loc[sel, lat], s=size, c=colours[lab], edgecolors="#222222",
                       linewidths=0.4, zorder=4)
    return cats


def _area_colours(ctx):
    """(normaliser, colour map) of median index values on the index's fixed scale (0-100 for the Mali spec;
    the round's range of the index when it has no fixed range).

    The colour map stops short of its darkest shades so that the category colours
    of the points stay visible on the most stable areas.
    """
    import matplotlib
    from matplotlib.colors import ListedColormap, Normalize

    base = matplotlib.colormaps[AREA_CMAP]
    rng = content.index_range(ctx)
    if rng is None:
        values = ctx.national[ctx.index_id].dropna()
        rng = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
    return Normalize(*rng), ListedColormap(base(np.linspace(0.04, 0.78, 256)), name=f"{AREA_CMAP}_reports")


def _label_area(ax, geom, text: str, fontsize: float, extent, clip: bool = False, **kw) -> None:
    """Write ``text`` at a point inside ``geom`` (with a white halo), if that point is in view.

    With ``clip`` the point is taken inside the visible part of ``geom``.
    """
    x0, x1, y0, y1 = extent
    if clip:
        from shapely.geometry import box

        geom = geom.intersection(box(x0, y0, x1, y1))
        if geom.is_empty or geom.area < 0.01 * (x1 - x0) * (y1 - y0):
            return
    p = geom.representative_point()
    if x0 <= p.x <= x1 and y0 <= p.y <= y1:
        opts = {"color": "#111111"} | kw
        ax.text(p.x, p.y, text, ha="center", va="center", fontsize=fontsize, zorder=6, path_effects=_halo(),
                linespacing=1.1, **opts)


def _colourbar(ctx, fig, cax, label: str) -> None:
    from matplotlib.cm import ScalarMappable

    norm, cmap = _area_colours(ctx)
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax)
    bar.set_label(label)
    bar.ax.tick_params(labelsize=8)


def _map_legend(ctx, fig, cats: pd.Series, extra: list | None = None) -> None:
    handles = _category_legend_handles(ctx, cats) + (extra or [])
    _bottom_legend(fig, handles, 3, "Locations by stability category (number of locations)")


def region_map(ctx):
    """Map of the report's region: cercles shaded by median index, locations by category.

    Cercles (admin-2 polygons of the region) are shaded by the median index of
    their locations on a fixed 0-100 scale (cercles without an assessed location
    are hatched); neighbouring regions are drawn in grey for orientation and the
    region is outlined.  Without boundaries (empty ``ctx.geo``) only the points are
    drawn.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.patches import Patch

    if ctx.region is None:
        raise ValueError("region_map needs a region; use country_map for the overview")
    cur = ctx.current
    admin2, _ = content.admin_columns(ctx, 2)
    geo = ctx.geo or {}
    region_geom = geo.get("admin1", {}).get(ctx.region)
    if region_geom is not None:
        extent = _extent(region_geom.bounds)
        cercles = {p: g for p, g in geo.get("admin2", {}).items()
                   if geo.get("admin2_parent", {}).get(p) == ctx.region}
    else:
        extent = _extent(_points_bounds(ctx, cur) or (0, 0, 1, 1), 0.1)
        cercles = {}
    medians = cur.groupby(admin2)[ctx.index_id].median() if admin2 else pd.Series(dtype=float)
    values = {p: medians.get(p, np.nan) for p in cercles}
    blank = [p for p in cercles if pd.isna(values[p])]
    extra = ([Patch(facecolor=NO_DATA_FILL, edgecolor="#999999", hatch="///",
                    label="cercle without assessed locations")] if blank else [])
    with style():
        fig, ax, cax = _map_axes(ctx, extent, colourbar=region_geom is not None,
                                 n_legend=len(category_colours(ctx)) - 1 + len(extra))
        if region_geom is not None:
            others = {p: g for p, g in geo.get("admin1", {}).items() if p != ctx.region}
            _add_shapes(ax, others.values(), [CONTEXT_FILL] * len(others), 1, edgecolors="#b5b5b5",
                        linewidths=0.6)
            for p, g in others.items():
                _label_area(ax, g, ctx.regions.get(p, p), 8.5, extent, clip=True, color="#777777",
                            style="italic")
            norm, cmap = _area_colours(ctx)
            scored = [p for p in cercles if pd.notna(values[p])]
            _add_shapes(ax, [cercles[p] for p in scored], [cmap(norm(values[p])) for p in scored], 2,
                        edgecolors="white", linewidths=1.0)
            _add_shapes(ax, [cercles[p] for p in blank], [NO_DATA_FILL] * len(blank), 2, edgecolors="#999999",
                        linewidths=0.6, hatch="///")
            names = geo.get("admin2_names", {})
            for p, g in cercles.items():
                label = f"{names.get(p, p)}\n{content.number(values[p])}" if pd.notna(values[p]) else names.get(p, p)
                _label_area(ax, g, label, 9.5, extent)
            _add_shapes(ax, [region_geom], ["none"], 3, edgecolors="#222222", linewidths=1.8)
            _colourbar(ctx, fig, cax, f"Median stability index of the cercle ({content.scale_text(ctx)})")
        cats = _plot_points(ctx, ax, cur, size=34)
        where = "median index by cercle, " if region_geom is not None else ""
        ax.set_title(f"{_short(ctx.region_name, 30)}: {where}locations by category (round {ctx.round})")
        _map_legend(ctx, fig, cats, extra)
        _footnote(ctx, fig)
    return fig


def country_map(ctx):
    """Map of the whole country: regions shaded by median index, locations by category.

    Returns
    -------
    matplotlib.figure.Figure
    """
    nat = ctx.national
    region = ctx.columns.admin[0] if ctx.columns.admin else None
    regions = (ctx.geo or {}).get("admin1", {})
    bounds = _union_bounds(regions.values()) if regions else (_points_bounds(ctx, nat) or (0, 0, 1, 1))
    extent = _extent(bounds, 0.03 if regions else 0.05)
    with style():
        fig, ax, cax = _map_axes(ctx, extent, colourbar=bool(regions), n_legend=len(category_colours(ctx)) - 1,
                                 width=9.5)
        if regions:
            medians = nat.groupby(region)[ctx.index_id].median() if region else pd.Series(dtype=float)
            norm, cmap = _area_colours(ctx)
            faces = [NO_DATA_FILL if pd.isna(medians.get(p, np.nan)) else cmap(norm(medians.get(p)))
                     for p in regions]
            _add_shapes(ax, regions.values(), faces, 2, edgecolors="white", linewidths=1.2)
            small = 0.002 * (bounds[2] - bounds[0]) * (bounds[3] - bounds[1])
            for p, g in regions.items():
                label = f"{ctx.regions.get(p, p)}\n{content.number(medians.get(p, np.nan))}"
                if g.area < small:  # too small to write in: label beside it, with a leader line
                    q = g.representative_point()
                    ax.annotate(label, (q.x, q.y), xytext=(-55, -38), textcoords="offset points", fontsize=9.5,
                                ha="center", va="center", zorder=6, path_effects=_halo(),
                                arrowprops={"arrowstyle": "-", "color": "#333333", "linewidth": 0.8})
                else:
                    _label_area(ax, g, label, 10, extent)
            _colourbar(ctx, fig, cax, f"Median stability index of the region ({content.scale_text(ctx)})")
        cats = _plot_points(ctx, ax, nat, size=9)
        shaded = "median index by region, " if regions else ""
        ax.set_title(f"{shaded}locations by category (round {ctx.round})".capitalize())
        _map_legend(ctx, fig, cats)
        _footnote(ctx, fig)
    return fig


# --------------------------------------------------------------------------- distributions
def _spread(n: int, width: float) -> np.ndarray:
    """Deterministic, evenly spread offsets in [-width/2, width/2] (golden-ratio sequence, no randomness)."""
    return ((np.arange(n) * 0.6180339887498949) % 1.0 - 0.5) * width


def _category_bands(ctx, ax) -> None:
    """Faint vertical background bands of the category ranges of the index."""
    fixed, rng = content.category_cuts(ctx), content.index_range(ctx)
    if fixed is None or rng is None:  # categories at quantiles of each round: no fixed bands
        return
    cuts = [rng[0], *fixed, rng[1]]
    colours = list(category_colours(ctx).values())
    for (lo, hi), colour in zip(zip(cuts, cuts[1:]), colours):
        ax.axvspan(lo, hi, color=colour, alpha=0.09, zorder=0, linewidth=0)


def box_stats(values: np.ndarray) -> dict[str, float]:
    """Quartiles, median and Tukey whiskers (furthest values within 1.5 IQR of the box)."""
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    iqr = q3 - q1
    return {"q1": q1, "median": med, "q3": q3,
            "low": values[values >= q1 - 1.5 * iqr].min(), "high": values[values <= q3 + 1.5 * iqr].max()}


def _boxes(ax, data: list[np.ndarray], positions, colours, width: float, vertical: bool) -> None:
    """Box plots (box = quartiles, whiskers = 1.5 IQR, median as a thick black line), one colour per box.

    Drawn with patches and line collections rather than ``Axes.boxplot``, which
    reads every rcParam (and so resolves the backend, importing pyplot).
    """
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Rectangle

    whiskers, medians = [], []
    for pos, values, colour in zip(positions, data, colours):
        if not len(values):
            continue
        b = box_stats(np.asarray(values, dtype=float))
        half, cap = width / 2, width / 4
        segments = [((b["low"], pos), (b["q1"], pos)), ((b["q3"], pos), (b["high"], pos)),
                    ((b["low"], pos - cap), (b["low"], pos + cap)), ((b["high"], pos - cap), (b["high"], pos + cap))]
        median = ((b["median"], pos - half), (b["median"], pos + half))
        if vertical:
            segments = [tuple(pt[::-1] for pt in seg) for seg in segments]
            median = tuple(pt[::-1] for pt in median)
            box = Rectangle((pos - half, b["q1"]), width, b["q3"] - b["q1"])
        else:
            box = Rectangle((b["q1"], pos - half), b["q3"] - b["q1"], width)
        box.set(facecolor=colour, edgecolor="#333333", alpha=0.55, linewidth=0.9, zorder=2)
        ax.add_patch(box)
        whiskers += segments
        medians.append(median)
    ax.add_collection(LineCollection(whiskers, colors="#555555", linewidths=1.0, zorder=2), autolim=False)
    ax.add_collection(LineCollection(medians, colors="black", linewidths=2.0, zorder=4), autolim=False)


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(str(text), width)) or str(text)


def pillar_profile(ctx):
    """The region's distribution of the index and each pillar against the national one.

    Side-by-side box plots (the region coloured, all regions in grey) with the
    region's locations as points and the medians marked and written above.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.patches import Patch

    cols = [ctx.index_id, *ctx.pillars]
    groups = [(ctx.current, HIGHLIGHT, f"{_short(ctx.region_name, 40)} ({len(ctx.current)} locations)")] \
        if ctx.region is not None else []
    groups.append((ctx.national, NATIONAL, f"All regions ({len(ctx.national)} locations)"))
    n = len(groups)
    width = 0.34 if n == 2 else 0.5
    ticks = [_wrap(_short(ctx.spec.label(c), 48), 16) for c in cols]
    tick_lines = max(t.count("\n") + 1 for t in ticks)
    with style():
        fig = new_figure(9.5, 5.4)
        bottom = 0.35 + 0.17 * tick_lines + _legend_height(n, n)
        ax = fig.add_axes(_axes_rect(fig, 0.8, 0.2, bottom, _top(ctx)))
        for j, (frame, colour, _label) in enumerate(groups):
            offset = (j - (n - 1) / 2) * (width + 0.06)
            data = [frame[c].dropna().to_numpy() for c in cols]
            pos = np.arange(len(cols)) + offset
            _boxes(ax, data, pos, [colour] * len(cols), width, vertical=True)
            for x, values in zip(pos, data):
                if len(values) and len(values) <= 400:
                    ax.scatter(x + _spread(len(values), width * 0.7), values, s=7, color=colour, alpha=0.55,
                               linewidths=0, zorder=3)
                if len(values):
                    med = float(np.median(values))
                    ax.text(x, 101.5, content.number(med), ha="center", va="bottom", fontsize=9, fontweight="bold",
                            color=colour if colour != NATIONAL else "#444444")
        ax.set_xlim(-0.6, len(cols) - 0.4)
        ax.set_xticks(np.arange(len(cols)), ticks)
        ax.set_ylim(0, 109)
        ax.set_yticks(np.arange(0, 101, 20))
        ax.set_ylabel(f"Score ({content.scale_text(ctx)}, higher = more stable)")
        ax.axvline(0.5, color="#dddddd", linewidth=1)
        ax.grid(axis="y", color="#eeeeee", linewidth=0.8)
        ax.set_axisbelow(True)
        where = _short(ctx.region_name, 40) if ctx.region is not None else "All regions"
        ax.set_title(f"{where}: index and pillar scores, round {ctx.round} (medians written above)")
        handles = [Patch(facecolor=c, alpha=0.55, edgecolor="#333333", label=lab) for _, c, lab in groups]
        _bottom_legend(fig, handles, n)
        _footnote(ctx, fig)
    return fig


def region_comparison(ctx):
    """The index by region (box plots with every location as a point), sorted by median.

    The report's region is highlighted; the category ranges of the index are shaded
    in the background; each region's median is written on the right.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    nat = ctx.national
    region = ctx.columns.admin[0]
    medians = content.region_medians(ctx)
    order = list(medians.index)[::-1]  # lowest median at the bottom, highest at the top
    top_scale = content.scale(ctx)
    data, colours, labels = [], [], []
    for p in order:
        values = nat.loc[nat[region] == p, ctx.index_id].dropna().to_numpy()
        data.append(values)
        colours.append(HIGHLIGHT if p == ctx.region else MUTED)
        labels.append(f"{_short(ctx.regions.get(p, p))} ({len(values)})")
    handles = []
    if ctx.region is not None:
        handles.append(Patch(facecolor=HIGHLIGHT, alpha=0.55, edgecolor="#333333", label=_short(ctx.region_name, 40)))
        handles.append(Patch(facecolor=MUTED, alpha=0.55, edgecolor="#333333", label="other regions"))
    handles.append(Line2D([], [], color="black", linewidth=2, label="median"))
    handles += _category_legend_handles(ctx, marker=False)
    with style():
        fig = new_figure(9.5, max(4.2, 0.48 * len(order) + 1.8))
        left = max(_text_width(t) for t in labels) + 0.3 if labels else 1.0
        bottom = _XAXIS + 0.1 + _legend_height(len(handles), 4)
        ax = fig.add_axes(_axes_rect(fig, left, 0.25, bottom, _top(ctx)))
        _category_bands(ctx, ax)
        pos = np.arange(len(order))
        _boxes(ax, data, pos, colours, 0.6, vertical=False)
        for y, values, colour in zip(pos, data, colours):
            if len(values):
                ax.scatter(values, y + _spread(len(values), 0.42), s=6,
                           color=HIGHLIGHT if colour == HIGHLIGHT else "#777777", alpha=0.45, linewidths=0, zorder=3)
                ax.text(top_scale + 1.5, y, content.number(float(np.median(values))), va="center",
                        fontsize=9, fontweight="bold" if colour == HIGHLIGHT else "normal")
        ax.set_yticks(pos, labels)
        ax.set_ylim(-0.6, len(order) - 0.4)
        for tick, p in zip(ax.get_yticklabels(), order):
            if p == ctx.region:
                tick.set_fontweight("bold")
                tick.set_color(HIGHLIGHT)
        ax.set_xlim(0, top_scale + 9)
        ax.set_xticks(np.arange(0, top_scale + 1, 20))
        ax.set_xlabel(f"{content.index_label(ctx)} ({content.scale_text(ctx)}, higher = more stable); median "
                      "written on the right")
        ax.set_title(f"{content.index_label(ctx)} by region, round {ctx.round} (number of locations)")
        _bottom_legend(fig, handles, 4)
        _footnote(ctx, fig)
    return fig


# --------------------------------------------------------------------------- population
def population_bars(ctx):
    """IDPs and returnees living in each stability category, per region (stacked bars).

    Regions are in league-table order (highest median index at the top); the
    total is written at the end of each bar.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    cols = content.population_columns(ctx)
    colours = category_colours(ctx)
    ranges = content.category_ranges(ctx)
    tables = {col: content.population_by_region(ctx, col) for col in cols}
    present = {lab for t in tables.values() for lab in t.columns if t[lab].sum() > 0}
    handles = [Patch(facecolor=colours[lab], label=f"{lab} ({ranges[lab]})" if lab in ranges else lab)
               for lab in colours if lab in present or lab in ranges]
    with style():
        fig = new_figure(10.0, 5.8)
        if not cols:
            ax = fig.add_axes([0.05, 0.2, 0.9, 0.7])
            ax.text(0.5, 0.5, "No population counts in the data", ha="center", va="center")
            ax.set_axis_off()
            ax.legend(handles=[], title="no data")
            return fig
        names = [_short(r) for r in next(iter(tables.values())).index]
        left = max(_text_width(t) for t in names) + 0.25
        top = _top(ctx, 0.45 + 0.3)
        bottom = _XAXIS + 0.1 + _legend_height(len(handles), len(handles), title=True)
        x, y, w, h = _axes_rect(fig, left, 0.25, bottom, top)
        gap = 0.35 / fig.get_figwidth()
        panel = (w - gap * (len(cols) - 1)) / len(cols)
        axes = []
        for k, col in enumerate(cols):
            ax = fig.add_axes([x + k * (panel + gap), y, panel, h], sharey=axes[0] if axes else None)
            axes.append(ax)
            table = tables[col]
            yy = np.arange(len(table))[::-1]
            left_edge = np.zeros(len(table))
            for lab in table.columns:
                values = table[lab].to_numpy(dtype=float)
                ax.barh(yy, values, left=left_edge, color=colours.get(lab, NOT_SCORED_COLOUR), edgecolor="white",
                        linewidth=0.5, height=0.72)
                left_edge += values
            for y0, total in zip(yy, left_edge):
                ax.text(total, y0, f" {total:,.0f}", va="center", fontsize=8, color="#333333")
            if k == 0:
                ax.set_yticks(yy, names)
            else:
                ax.tick_params(axis="y", labelleft=False)
            ax.set_xlim(0, left_edge.max() * 1.25 if left_edge.max() > 0 else 1)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
            ax.tick_params(axis="x", labelsize=8)
            ax.set_title(content.population_label(col))
            ax.set_xlabel("people")
            ax.grid(axis="x", color="#eeeeee", linewidth=0.8)
            ax.set_axisbelow(True)
        _bottom_legend(fig, handles, len(handles), "Stability category of the location where they live")
        fig.suptitle(f"People by stability category of their location and region, round {ctx.round}",
                     y=1 - (_FOOT if ctx.illustrative else 0.05) / fig.get_figheight(), va="top")
        _footnote(ctx, fig)
    return fig
