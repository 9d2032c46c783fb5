"""Figures of the regional comparison reports (matplotlib, no pyplot, no geopandas).

Every function takes a :class:`~stability.report.context.ReportContext` and
returns a :class:`matplotlib.figure.Figure` built with the object-oriented API
(so nothing is shown twice by the inline backend and it works on any backend,
Agg included).  Maps are drawn from the shapely geometries of ``ctx.geo`` with
matplotlib paths; without geometries they fall back to points.

Styling is fixed here, not taken from the caller's rcParams: category colours
(:func:`category_colours`, colour-blind safe: see :data:`CATEGORY_COLOURS`) are
the same in every figure, legends give the categories' cut-offs
(:func:`category_legend_labels`), fonts are readable at 100 dpi, text from the
data is never parsed as mathtext, and figures of illustrative data say so above
their title.  Figures are laid out with fixed margins in inches (no layout
engine: that would cost an extra drawing pass per figure); tick labels from the
data are shortened so that they fit.

Every figure carries its alternative text, a sentence or two saying what it
shows and its main numbers (:func:`set_alt` / :func:`alt_text`, stored as the
figure's label); :func:`stability.report.notebook.show` puts it in the image's
``alt`` attribute.

==========================  ==================================================
:func:`region_map`          cercles by class of their median, locations by category
:func:`country_map`         cercles by class of their median, locations by category
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

#: Paul Tol's diverging colour scheme "sunset" (SRON/EPS/TN/09-002, 2021), most stable end first.  It is
#: designed to stay ordered and distinguishable under deuteranopia, protanopia and tritanopia.
SUNSET = ("#364B9A", "#4A7BB7", "#6EA6CD", "#98CAE1", "#C2E4EF", "#EAECCC", "#FEDA8B", "#FDB366", "#F67E4B",
          "#DD3D2D", "#A50026")
#: Colours of the three categories, least stable first (dark red, orange, dark blue): the two ends and the
#: orange of :data:`SUNSET`.  They stay clearly apart for readers with any common colour-vision deficiency
#: (deuteranopia, protanopia, tritanopia; tests/test_maps.py simulates them and measures the differences),
#: and the middle category is much lighter than the two others.
CATEGORY_COLOURS = ("#A50026", "#FDB366", "#364B9A")
NOT_SCORED_COLOUR = "#9e9e9e"
#: Share of the class colour (the rest is white) in the fill of an area shaded by the class of its median.
TINT = 0.28
#: The report's region in comparisons, and everything else.
HIGHLIGHT = "#1f5f99"
MUTED = "#c8c8c8"
NATIONAL = "#8c8c8c"
NO_DATA_FILL = "#f4f4f4"
CONTEXT_FILL = "#ececec"
#: Edge of the location points: thin and white, so that overlapping points stay apart.
POINT_EDGE = "white"
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
#: Height (inches) of the illustrative-data line that :func:`footnote` draws at the top of a figure.
FOOTNOTE_HEIGHT = _FOOT
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
    """Draw and save a small figure with the reports' fonts, sizes, halos, legend and colour key.

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
        from matplotlib.colors import ListedColormap

        fig.colorbar(ax.scatter([0, 1], [0, 1], c=[0, 1], cmap=ListedColormap(CATEGORY_COLOURS)), ax=ax)
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
    """Category label -> colour, least stable first, plus ``not scored`` in grey.

    Three categories take :data:`CATEGORY_COLOURS`; another number of categories
    takes colours evenly spaced along :data:`SUNSET` (its pale centre left out),
    from its red end (least stable) to its blue end.  Every figure, and the
    interactive map, use these colours.
    """
    labels = content.category_labels(ctx)
    out = dict(zip(labels, palette(len(labels))))
    out[content.NOT_SCORED] = NOT_SCORED_COLOUR
    return out


def palette(n: int) -> list[str]:
    """``n`` ordered colours, least stable first (see :func:`category_colours`)."""
    if n == len(CATEGORY_COLOURS):
        return list(CATEGORY_COLOURS)
    ramp = [c for c in reversed(SUNSET) if c != "#EAECCC"]
    return [ramp[int(round(i))] for i in np.linspace(0, len(ramp) - 1, max(n, 1))][:n]


def tint(colour: str, share: float = TINT) -> str:
    """``colour`` mixed with white (``share`` of the colour), as ``#rrggbb``: the fill of an area of that class."""
    from matplotlib.colors import to_hex, to_rgb

    return to_hex([1 - share * (1 - c) for c in to_rgb(colour)])


def class_tints(ctx) -> dict[str, str]:
    """Category label -> the light tint of its colour that areas of that class are filled with."""
    return {lab: tint(colour) for lab, colour in category_colours(ctx).items() if lab != content.NOT_SCORED}


def class_cuts(ctx) -> tuple[str, list[float]]:
    """``(rule, cut-offs)``: the values of the index where the categories of the reported round change.

    ``rule`` is ``"fixed"`` (the spec's cut-offs) or ``"quantile"``: then the
    cut-offs are the quantiles of the round's index (all regions) at the spec's
    shares, as the pipeline computes them (``numpy.quantile``, linear).
    """
    rule, cuts = ctx.spec.category_rule()
    if rule == "fixed":
        return rule, [float(c) for c in cuts]
    values = ctx.national[ctx.index_id].dropna().to_numpy(dtype=float)
    return rule, [float(q) for q in np.quantile(values, cuts)] if len(values) else []


def class_of(ctx, values) -> list[str | None]:
    """Category of each value of the index by the round's cut-offs (:func:`class_cuts`); None when missing.

    A value ``x`` is in ``labels[i]`` when ``cut[i-1] <= x < cut[i]``, as for locations.
    """
    labels = content.category_labels(ctx)
    _, cuts = class_cuts(ctx)
    out = []
    for v in np.atleast_1d(np.asarray(values, dtype=float)):
        out.append(None if np.isnan(v) or len(cuts) != len(labels) - 1
                   else labels[int(np.searchsorted(cuts, v, side="right"))])
    return out


def _cut(value: float, rule: str) -> str:
    return f"{value:g}" if rule == "fixed" else content.number(value)


def category_legend_labels(ctx) -> dict[str, str]:
    """Category label -> legend text with its cut-offs: ``low (< 40)``, ``medium (40–60)``, ``high (≥ 60)``.

    With quantile categories the cut-offs are the round's quantiles and the text
    says so: ``low (< 41.3: lowest 40 % of round 3)``.
    """
    labels = content.category_labels(ctx)
    rule, cuts = class_cuts(ctx)
    if len(cuts) != len(labels) - 1:
        return {lab: lab for lab in labels}
    shares = [0.0, *ctx.spec.category_rule()[1], 1.0] if rule == "quantile" else []
    out = {}
    for i, lab in enumerate(labels):
        if len(labels) == 1:
            out[lab] = lab
            continue
        if i == 0:
            text = f"< {_cut(cuts[0], rule)}"
        elif i == len(labels) - 1:
            text = f"≥ {_cut(cuts[-1], rule)}"
        else:
            text = f"{_cut(cuts[i - 1], rule)}–{_cut(cuts[i], rule)}"
        if rule == "quantile":
            lo, hi = shares[i], shares[i + 1]
            part = (f"lowest {hi * 100:g} %" if i == 0 else f"highest {(1 - lo) * 100:g} %"
                    if i == len(labels) - 1 else f"{lo * 100:g}–{hi * 100:g} % quantiles")
            text += f": {part} of round {ctx.round}"
        out[lab] = f"{lab} ({text})"
    return out


def _category_legend_handles(ctx, present: pd.Series | None = None, marker: bool = True) -> list:
    """Legend handles of the categories (``label (cut-offs)``), with counts when ``present`` is given."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    texts = category_legend_labels(ctx)
    counts = present.value_counts() if present is not None else None
    handles = []
    for lab, colour in category_colours(ctx).items():
        if lab == content.NOT_SCORED and (counts is None or not counts.get(lab, 0)):
            continue
        text = texts.get(lab, lab)
        if counts is not None:
            text += f": {counts.get(lab, 0):,}"
        if marker:
            handles.append(Line2D([], [], linestyle="", marker="o", markersize=7, markerfacecolor=colour,
                                  markeredgecolor="#555555", markeredgewidth=0.5, label=text))
        else:
            handles.append(Patch(facecolor=colour, edgecolor="none", label=text))
    return handles


def footnote(ctx, fig) -> None:
    """Say on the figure itself, above its title, that the data are illustrative (figures get copied).

    Leave :data:`FOOTNOTE_HEIGHT` inches free at the top of a figure for it.
    """
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


def _map_axes(ctx, extent: tuple, key: bool, n_legend: int, width: float = 9.0):
    """Figure, map axes and class-key axes (or None) sized to the map's extent.

    The height follows the extent's shape (longitude scaled by cos(latitude)),
    within 5 to 8.8 inches; the map keeps equal distances in both directions
    and fills its box (the visible extent grows in one direction if needed).
    Labels of areas are placed from the extent requested, so they stay inside it.
    """
    x0, x1, y0, y1 = extent
    lat = (y0 + y1) / 2
    aspect = 1.0 / max(math.cos(math.radians(lat)), 0.1)
    left, right = 0.8, (1.55 if key else 0.3)
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
    if key:
        area_h = height - top - bottom
        cax = fig.add_axes([(width - right + 0.2) / width, (bottom + 0.2 * area_h) / height,
                            0.22 / width, 0.5 * area_h / height])
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


def _plot_points(ctx, ax, frame: pd.DataFrame, size: float, alpha: float = 1.0) -> pd.Series:
    """Locations as points coloured by category, with thin white edges.

    The least stable category is drawn last (on top) and locations without an
    index first, so that where points overlap the least stable ones show.
    """
    lon, lat = ctx.columns.longitude, ctx.columns.latitude
    cats = content.categories_of(ctx, frame)
    if not (lon and lat and lon in frame and lat in frame):
        return cats
    colours = category_colours(ctx)
    order = [content.NOT_SCORED, *reversed([lab for lab in colours if lab != content.NOT_SCORED])]
    for k, lab in enumerate(order):
        sel = (cats == lab).to_numpy()
        if sel.any():
            ax.scatter(frame.loc[sel, lon], frame.loc[sel, lat], s=size, c=colours[lab], edgecolors=POINT_EDGE,
                       linewidths=0.5, alpha=alpha, zorder=4 + 0.1 * k)
    return cats


def label_point(geom):
    """Where a label of ``geom`` goes: the centre of the largest circle inside its largest part (the pole of
    inaccessibility, away from its borders and so from its neighbours' labels), else a point inside it."""
    from shapely.ops import polylabel

    part = max(getattr(geom, "geoms", [geom]), key=lambda g: g.area)
    if part.geom_type != "Polygon" or part.is_empty:
        return geom.representative_point()
    x0, y0, x1, y1 = part.bounds
    try:
        return polylabel(part, tolerance=max(x1 - x0, y1 - y0) / 200)
    except Exception:  # an invalid polygon: any point inside will do
        return geom.representative_point()


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
    p = label_point(geom)
    if x0 <= p.x <= x1 and y0 <= p.y <= y1:
        opts = {"color": "#111111"} | kw
        ax.text(p.x, p.y, text, ha="center", va="center", fontsize=fontsize, zorder=6, path_effects=_halo(),
                linespacing=1.1, **opts)


def _class_key(ctx, fig, cax, area: str) -> None:
    """Key of the area fills: one block per category (its tint), labelled with the category and its cut-offs."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import BoundaryNorm, ListedColormap

    labels = content.category_labels(ctx)
    tints = class_tints(ctx)
    texts = category_legend_labels(ctx)
    n = len(labels)
    norm = BoundaryNorm(np.arange(n + 1), n)
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=ListedColormap([tints[lab] for lab in labels])), cax=cax,
                       ticks=np.arange(n) + 0.5)
    ranges = [texts[lab][len(lab) + 2:-1].split(":")[0] if texts[lab] != lab else "" for lab in labels]
    bar.set_ticklabels([f"{lab}\n{rng}".strip() for lab, rng in zip(labels, ranges)])
    bar.ax.tick_params(labelsize=8.5, length=0)
    bar.outline.set_edgecolor("#888888")
    rule, _ = class_cuts(ctx)
    how = "\n(round's quantiles)" if rule == "quantile" else ""
    cax.set_title(f"{area.capitalize()} fill:\nclass of the\nmedian index{how}", fontsize=8.5, loc="left",
                  fontweight="normal", pad=8)


def nice_length(km: float) -> float:
    """The largest of 1, 2, 5 x 10^k not above ``km`` (the length of a scale bar)."""
    if km <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(km))
    return next(m * e for m in (5, 2, 1) if m * e <= km)


def _scale_bar(ax, land=None) -> float:
    """Draw a scale bar in km in a lower corner of a map (longitude/latitude axes); return its length.

    A degree of longitude is 111.32 km x cos(latitude), taken at the middle
    latitude of the map (which the map's aspect also uses); on a map spanning
    more than 5 degrees of latitude the bar says at which latitude it holds.
    The bar goes in the lower-right corner, or the lower-left one when that
    covers less of ``land`` (a shapely geometry: the areas drawn).
    """
    from matplotlib.patches import Rectangle

    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    lat = (y0 + y1) / 2
    km_per_deg = 111.32 * math.cos(math.radians(lat))
    km = nice_length(0.22 * (x1 - x0) * km_per_deg)
    dx, w, h = km / km_per_deg, x1 - x0, y1 - y0
    text = f"{km:g} km" + (f" (at {abs(lat):.0f}° {'N' if lat >= 0 else 'S'})" if h > 5 else "")
    box_w = max(dx, _text_width(text, 8.5) / ax.get_position().width / ax.figure.get_figwidth() * w) + 0.03 * w
    box_h = 0.075 * h
    corners = [x1 - 0.025 * w - box_w, x0 + 0.025 * w]
    if land is not None and not land.is_empty:
        from shapely.geometry import box

        bx0 = min(corners, key=lambda x: land.intersection(box(x, y0 + 0.017 * h, x + box_w,
                                                                 y0 + 0.017 * h + box_h)).area)
    else:
        bx0 = corners[0]
    xs, ys, bar_h = bx0 + 0.015 * w, y0 + 0.035 * h, 0.011 * h
    ax.add_patch(Rectangle((bx0, ys - 0.018 * h), box_w, box_h, facecolor="white", alpha=0.85,
                           edgecolor="#bbbbbb", linewidth=0.5, zorder=7))
    for k in range(2):
        ax.add_patch(Rectangle((xs + k * dx / 2, ys), dx / 2, bar_h, facecolor="#222222" if k == 0 else "white",
                               edgecolor="#222222", linewidth=0.8, zorder=8))
    ax.text(xs, ys + bar_h + 0.008 * h, text, ha="left", va="bottom", fontsize=8.5, zorder=8, color="#111111")
    return km


def _land(geoms):
    """Union of the (non-missing) geometries drawn on a map, or None."""
    from shapely import union_all

    geoms = [g for g in geoms if g is not None]
    return union_all(geoms) if geoms else None


def _map_legend(ctx, fig, cats: pd.Series, extra: list | None = None) -> None:
    handles = _category_legend_handles(ctx, cats) + (extra or [])
    _bottom_legend(fig, handles, 3, "Locations by stability category (number of locations)")


def _hatched(label: str):
    from matplotlib.patches import Patch

    return Patch(facecolor=NO_DATA_FILL, edgecolor="#999999", hatch="///", label=label)


def _shade_areas(ctx, ax, areas: dict, medians: dict, **kw) -> list[str]:
    """Fill areas with the tint of the class of their median; hatch those without one (returned)."""
    tints = class_tints(ctx)
    classes = dict(zip(areas, class_of(ctx, [medians.get(p, np.nan) for p in areas])))
    scored = [p for p in areas if classes[p] is not None]
    blank = [p for p in areas if classes[p] is None]
    _add_shapes(ax, [areas[p] for p in scored], [tints[classes[p]] for p in scored], 2, **kw)
    _add_shapes(ax, [areas[p] for p in blank], [NO_DATA_FILL] * len(blank), 2, edgecolors="#999999",
                linewidths=0.6, hatch="///")
    return blank


def category_counts_text(ctx, cats: pd.Series) -> str:
    """``73 low (< 40), 64 medium (40–60), 91 high (≥ 60)``: locations per category (``cats`` from
    :func:`stability.report.content.categories_of`), with the cut-offs."""
    counts = cats.value_counts()
    texts = category_legend_labels(ctx)
    parts = [f"{counts.get(lab, 0):,} {texts[lab]}" for lab in content.category_labels(ctx)]
    if counts.get(content.NOT_SCORED, 0):
        parts.append(f"{counts[content.NOT_SCORED]:,} not scored (grey)")
    return ", ".join(parts)


def _areas_text(ctx, names: dict, medians: dict) -> str:
    """``Djenne low (median 29.6); ...``, lowest median first."""
    scored = sorted((v, p) for p, v in medians.items() if pd.notna(v))
    classes = class_of(ctx, [v for v, _ in scored])
    return "; ".join(f"{names.get(p, p)} {c} (median {content.number(v)})" for (v, p), c in zip(scored, classes))


def set_alt(fig, text: str):
    """Attach the alternative text of a figure (a sentence describing it) and return the figure.

    The text is the figure's label (:meth:`matplotlib.figure.Figure.set_label`);
    :func:`alt_text` reads it back and :func:`stability.report.notebook.show`
    puts it in the ``alt`` attribute of the image.
    """
    fig.set_label(" ".join(str(text).split()))
    return fig


def alt_text(fig) -> str:
    """The alternative text attached by :func:`set_alt` ("" when there is none)."""
    label = fig.get_label() if hasattr(fig, "get_label") else ""
    return label if isinstance(label, str) and label and not label.startswith("_") else ""


def _fit_title(ax, text: str) -> None:
    """Set the axes title, in a smaller font (down to 9 points) when it would not fit in the figure's width.

    The title is centred on the axes; its width is measured from the glyphs (no drawing needed).
    """
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    fig = ax.figure
    size = float(STYLE["axes.titlesize"])
    prop = FontProperties(size=size, weight=STYLE["axes.titleweight"])
    width = TextToPath().get_text_width_height_descent(text, prop, ismath=False)[0] / 72.0
    x, _, w, _ = ax.get_position().bounds
    centre = (x + w / 2) * fig.get_figwidth()
    room = 2 * min(centre, fig.get_figwidth() - centre) - 0.15
    if width > room:
        ax.set_title(text, fontsize=max(9.0, size * room / width))
    else:
        ax.set_title(text)


def _countries(ctx) -> dict:
    """ISO3 -> outline of each country of the data, when the data span several countries (else empty)."""
    countries = (ctx.geo or {}).get("countries", {})
    return countries if len(countries) > 1 else {}


def _plain_region(ctx, p) -> str:
    """Name of region ``p`` without the country that :func:`~stability.report.context.region_names` adds."""
    name = str(ctx.regions.get(p, p))
    iso3 = (ctx.geo or {}).get("admin1_country", {}).get(p)
    country = (ctx.geo or {}).get("country_names", {}).get(iso3)
    suffix = f" ({country})"
    return name[: -len(suffix)] if country and name.endswith(suffix) else name


def _admin2_term(ctx, region: str) -> str:
    """What admin-2 areas of ``region`` are called: ``cercle`` (Mali), ``province`` (Burkina Faso), ..."""
    from ..locations import COUNTRIES

    iso3 = (ctx.geo or {}).get("admin1_country", {}).get(region)
    return COUNTRIES[iso3][2][1] if iso3 in COUNTRIES else content.admin_term(2)


def _plural(term: str) -> str:
    return term if term.endswith("s") else f"{term}s"


def _draw_countries(ctx, ax, extent, covered=None) -> list[str]:
    """Fill the countries of the data in light grey, draw their borders and write their names; return the names.

    Only for data spanning several countries (:func:`_countries`).  A country's name goes in
    the part of it that is in view and not ``covered`` (the areas drawn on top), else anywhere in
    view; a country hardly in view is not named.
    """
    from shapely.geometry import box

    countries = _countries(ctx)
    if not countries:
        return []
    names = ctx.geo.get("country_names", {})
    _add_shapes(ax, countries.values(), [CONTEXT_FILL] * len(countries), 0.9, edgecolors="none")
    _add_shapes(ax, countries.values(), ["none"] * len(countries), 5, edgecolors="#111111", linewidths=2.2,
                linestyles="--")
    x0, x1, y0, y1 = extent
    view = box(x0, y0, x1, y1)
    shown = []
    for iso3, g in countries.items():
        visible = g.intersection(view)
        if visible.is_empty or visible.area < 0.005 * view.area:
            continue
        free = visible.difference(covered) if covered is not None else visible
        spot = free if not free.is_empty and free.area > 0.02 * view.area else visible
        if getattr(spot, "geoms", None):  # the largest piece
            spot = max(spot.geoms, key=lambda part: part.area)
        q = spot.representative_point()
        ax.text(q.x, q.y, names.get(iso3, iso3).upper(), ha="center", va="center", fontsize=11.5,
                fontweight="bold", color="#4d4d4d", zorder=6.5, path_effects=_halo(3.5))
        shown.append(names.get(iso3, iso3))
    return shown


def _draw_seats(ctx, ax, medians: pd.Series) -> dict:
    """Mark the seats of the region's admin-2 areas that have no polygons (Niger's departments); return their medians.

    Each seat (``ctx.geo["admin2_seats"]``) is a small black square labelled with the area's name and
    the median index of its assessed locations.
    """
    geo = ctx.geo or {}
    parents, names = geo.get("admin2_parent", {}), geo.get("admin2_names", {})
    seats = {p: xy for p, xy in geo.get("admin2_seats", {}).items() if parents.get(p) == ctx.region}
    if not seats:
        return {}
    xy = np.array(list(seats.values()))
    ax.scatter(xy[:, 0], xy[:, 1], marker="s", s=16, c="#111111", edgecolors="white", linewidths=0.6, zorder=6)
    out = {}
    for p, (x, y) in seats.items():
        value = medians.get(p, np.nan)
        out[p] = value
        text = f"{names.get(p, p)} {content.number(value)}" if pd.notna(value) else names.get(p, p)
        ax.annotate(text, (x, y), xytext=(0, 5), textcoords="offset points", ha="center", va="bottom",
                    fontsize=8, color="#111111", zorder=6, path_effects=_halo(2.5))
    return out


def region_map(ctx):
    """Map of the report's region: locations by category, admin-2 areas by the class of their median index.

    Locations are points coloured by stability category (:func:`category_colours`),
    the least stable drawn on top.  Cercles (admin-2 polygons of the region: cercles
    in Mali, provinces in Burkina Faso) are filled with a light tint of the category
    their median index falls in (the same cut-offs as locations, see
    :func:`class_cuts`) and hatched when no location of theirs was assessed; a
    region without admin-2 polygons (Niger) is filled by the class of its own
    median.  The key on the right and the legend below give the cut-offs.
    Neighbouring regions are drawn in grey for orientation, the region is
    outlined, and a scale bar gives distances.  When the data span several
    countries, country borders are drawn (dashed) and the countries named.
    Without boundaries (empty ``ctx.geo``) only the points are drawn.

    Returns
    -------
    matplotlib.figure.Figure
        With its alternative text (:func:`alt_text`).
    """
    if ctx.region is None:
        raise ValueError("region_map needs a region; use country_map for the overview")
    cur = ctx.current
    admin2, _ = content.admin_columns(ctx, 2)
    geo = ctx.geo or {}
    region_geom = geo.get("admin1", {}).get(ctx.region)
    term = _admin2_term(ctx, ctx.region)
    if region_geom is not None:
        extent = _extent(region_geom.bounds)
        cercles = {p: g for p, g in geo.get("admin2", {}).items()
                   if geo.get("admin2_parent", {}).get(p) == ctx.region}
    else:
        extent = _extent(_points_bounds(ctx, cur) or (0, 0, 1, 1), 0.1)
        cercles = {}
    medians = cur.groupby(admin2)[ctx.index_id].median() if admin2 else pd.Series(dtype=float)
    values = {p: medians.get(p, np.nan) for p in cercles}
    names = geo.get("admin2_names", {})
    whole = region_geom is not None and not cercles  # no admin-2 polygons: the region is shaded
    unit_term = term
    if whole:
        term = "region"
        cercles = {ctx.region: region_geom}
        values = {ctx.region: float(cur[ctx.index_id].median()) if cur[ctx.index_id].notna().any() else np.nan}
        names = {ctx.region: _plain_region(ctx, ctx.region)}
    blank = [p for p in cercles if pd.isna(values[p])]
    extra = [_hatched(f"{term} without assessed locations")] if blank else []
    if whole and any(geo.get("admin2_parent", {}).get(p) == ctx.region for p in geo.get("admin2_seats", {})):
        from matplotlib.lines import Line2D

        extra.append(Line2D([], [], linestyle="", marker="s", markersize=5, markerfacecolor="#111111",
                            markeredgecolor="white", label=f"{unit_term} seat: median index of the {unit_term}"))
    countries, seats = [], {}
    with style():
        fig, ax, cax = _map_axes(ctx, extent, key=region_geom is not None,
                                 n_legend=len(category_colours(ctx)) - 1 + len(extra))
        if region_geom is not None:
            view = ax.get_xlim() + ax.get_ylim()
            countries = _draw_countries(ctx, ax, view, _land([region_geom, *cercles.values()]))
            others = {p: g for p, g in geo.get("admin1", {}).items() if p != ctx.region}
            _add_shapes(ax, others.values(), [CONTEXT_FILL] * len(others), 1, edgecolors="#b5b5b5",
                        linewidths=0.6)
            for p, g in others.items():
                _label_area(ax, g, _plain_region(ctx, p) if countries else ctx.regions.get(p, p), 8.5, extent,
                            clip=True, color="#777777", style="italic")
            _shade_areas(ctx, ax, cercles, values, edgecolors="white", linewidths=1.2)
            for p, g in cercles.items():
                if whole:
                    continue  # the title names the region and its median
                label = f"{names.get(p, p)}\n{content.number(values[p])}" if pd.notna(values[p]) else names.get(p, p)
                _label_area(ax, g, label, 9, extent)
            if whole:
                seats = _draw_seats(ctx, ax, medians)
            _add_shapes(ax, [region_geom], ["none"], 3, edgecolors="#222222", linewidths=1.8)
            _class_key(ctx, fig, cax, term)
        cats = _plot_points(ctx, ax, cur, size=26, alpha=0.95)
        km = _scale_bar(ax, _land([region_geom, *cercles.values()]))
        if whole:
            where = f"region by class of its median index ({content.number(values[ctx.region])}), "
        else:
            where = f"{_plural(term)} by class of their median index, " if region_geom is not None else ""
        _fit_title(ax, f"{_short(ctx.region_name, 40)}: {where}locations by category (round {ctx.round})")
        _map_legend(ctx, fig, cats, extra)
        footnote(ctx, fig)
    alt = (f"Map of {ctx.region_name} region ({ctx.region}), round {ctx.round}: {len(cur):,} assessed locations "
           f"drawn as points coloured by stability category: {category_counts_text(ctx, cats)}; the least stable are "
           "drawn on top.")
    if whole:
        why = (f"No {unit_term} boundaries are available for this region" if admin2 else
               f"The data give no {unit_term} of the locations")
        alt += f" {why}: it is shaded by the class of its median index: {_areas_text(ctx, names, values)}."
        if seats:
            alt += (f" The seats of its {len(seats)} {_plural(unit_term)} are marked with black squares and labelled "
                    f"with the {unit_term}'s median index: {_areas_text(ctx, geo.get('admin2_names', {}), seats)}.")
    elif cercles:
        alt += (f" {_plural(term).capitalize()} are shaded by the class of their median index: "
                f"{_areas_text(ctx, names, values)}.")
        if blank:
            alt += (f" {len(blank)} {term if len(blank) == 1 else _plural(term)} without assessed locations "
                    f"({', '.join(str(names.get(p, p)) for p in blank)}) hatched.")
    if countries:
        alt += f" Country borders are drawn as dashed lines; countries named: {', '.join(countries)}."
    alt += f" Scale bar of {km:g} km."
    return set_alt(fig, alt)


def medians_by(ctx, frame: pd.DataFrame, column) -> tuple[dict, dict]:
    """Median index and number of locations per value of ``column`` of ``frame`` (empty without the column)."""
    if not column or column not in frame:
        return {}, {}
    grouped = frame.groupby(column)[ctx.index_id]
    return grouped.median().to_dict(), grouped.size().to_dict()


def country_areas(ctx) -> tuple[dict, dict, dict, list, int]:
    """The areas the overview's maps shade (:func:`country_map` and the interactive map), with their medians.

    Admin-2 polygons by the median index of their locations, and the regions without admin-2 polygons
    (Niger's departments have none) whole, by their own median; without an admin-2 column or admin-2
    polygons, the regions.

    Returns
    -------
    areas : dict
        P-code -> geometry.
    medians, counts : dict
        P-code -> median index and number of locations of the round (absent when none was assessed).
    whole : list
        Regions shaded whole among admin-2 areas (empty when the regions are the areas).
    level : int
        2 when admin-2 areas are shaded, 1 when the regions are.
    """
    geo = ctx.geo or {}
    regions = geo.get("admin1", {})
    parents = geo.get("admin2_parent", {})
    admin2, _ = content.admin_columns(ctx, 2)
    region = ctx.columns.admin[0] if ctx.columns.admin else None
    cercles = {p: g for p, g in geo.get("admin2", {}).items() if parents.get(p) in regions}
    by_region = medians_by(ctx, ctx.national, region)
    if not (cercles and admin2):
        return dict(regions), *by_region, [], 1
    medians, counts = medians_by(ctx, ctx.national, admin2)
    whole = [p for p in regions if p not in {parents.get(q) for q in cercles}]
    for p in whole:
        for mine, theirs in zip((medians, counts), by_region):
            if p in theirs:
                mine[p] = theirs[p]
    return {**cercles, **{p: regions[p] for p in whole}}, medians, counts, whole, 2


def country_map(ctx):
    """Map of the whole country (or countries): locations by category, admin-2 areas by the class of their median.

    As :func:`region_map` for every region: cercles (admin-2 polygons; regions,
    when the map layers have no admin-2 polygons for them) are filled with the
    tint of the class of their median index and hatched when no location of
    theirs was assessed; regions are outlined and named with their median;
    locations are small points with white edges, the least stable on top.  When
    the data span several countries (e.g. Mali, Burkina Faso and Niger), all are
    on the one map: the countries are filled in light grey (their regions without
    data show so), their borders drawn as thick dashed lines and their names
    written.

    Returns
    -------
    matplotlib.figure.Figure
        With its alternative text (:func:`alt_text`).
    """
    nat = ctx.national
    region = ctx.columns.admin[0] if ctx.columns.admin else None
    admin2, _ = content.admin_columns(ctx, 2)
    geo = ctx.geo or {}
    regions = geo.get("admin1", {})
    parents = geo.get("admin2_parent", {})
    cercles = {p: g for p, g in geo.get("admin2", {}).items() if parents.get(p) in regions}
    multi = bool(_countries(ctx))
    bounds = _union_bounds(regions.values()) if regions else (_points_bounds(ctx, nat) or (0, 0, 1, 1))
    extent = _extent(bounds, 0.03 if regions else 0.05)
    region_medians = nat.groupby(region)[ctx.index_id].median() if region else pd.Series(dtype=float)
    label_of = (lambda p: _plain_region(ctx, p)) if multi else (lambda p: ctx.regions.get(p, p))
    areas, medians, _, whole, level = country_areas(ctx)
    values = {p: medians.get(p, np.nan) for p in areas}
    by_cercle = level == 2
    if by_cercle:
        names = {**geo.get("admin2_names", {}), **{p: label_of(p) for p in whole}}
        terms = sorted({_admin2_term(ctx, parents[p]) for p in cercles})
        area = terms[0] if len(terms) == 1 and not whole else "area"
    else:
        terms, names, area = [], {p: label_of(p) for p in regions}, "region"
    blank = [p for p in areas if pd.isna(values[p])]
    extra = [_hatched(f"{area} without assessed locations")] if blank and regions else []
    countries = []
    with style():
        fig, ax, cax = _map_axes(ctx, extent, key=bool(regions), n_legend=len(category_colours(ctx)) - 1 + len(extra),
                                 width=9.5)
        if regions:
            view = ax.get_xlim() + ax.get_ylim()
            countries = _draw_countries(ctx, ax, view, _land(regions.values()))
            _shade_areas(ctx, ax, areas, values, edgecolors="white", linewidths=0.6)
            _add_shapes(ax, regions.values(), ["none"] * len(regions), 3, edgecolors="#333333", linewidths=1.1)
            small = 0.002 * (bounds[2] - bounds[0]) * (bounds[3] - bounds[1])
            for p, g in regions.items():
                label = f"{label_of(p)}\n{content.number(region_medians.get(p, np.nan))}"
                if g.area < small:  # too small to write in: label beside it, with a leader line
                    q = g.representative_point()
                    ax.annotate(label, (q.x, q.y), xytext=(-55, -38), textcoords="offset points", fontsize=9.5,
                                ha="center", va="center", zorder=6, path_effects=_halo(),
                                arrowprops={"arrowstyle": "-", "color": "#333333", "linewidth": 0.8})
                elif multi and g.area < 0.02 * (bounds[2] - bounds[0]) * (bounds[3] - bounds[1]):
                    _label_area(ax, g, label, 8, extent, fontweight="bold")  # many regions of a few countries
                else:
                    _label_area(ax, g, label, 9.5 if multi else 10, extent, fontweight="bold")
            _class_key(ctx, fig, cax, area)
        cats = _plot_points(ctx, ax, nat, size=12, alpha=0.9)
        km = _scale_bar(ax, _land(regions.values()))
        shaded = f"{area}s by class of their median index, " if regions else ""
        _fit_title(ax, f"{shaded}locations by category (round {ctx.round})".capitalize())
        _map_legend(ctx, fig, cats, extra)
        footnote(ctx, fig)
    where = f"all regions of {', '.join(countries)}" if countries else "all regions"
    alt = (f"Map of {where}, round {ctx.round}: {len(nat):,} assessed locations drawn as points coloured by "
           f"stability category: {category_counts_text(ctx, cats)}; the least stable are drawn on top.")
    if countries:
        alt += " Country borders are drawn as thick dashed lines and the countries named."
    if regions:
        alt += (f" Regions are outlined and labelled with their median index: "
                f"{_areas_text(ctx, ctx.regions, {p: region_medians.get(p, np.nan) for p in regions})}.")
        counts = pd.Series([c for c in class_of(ctx, list(values.values())) if c]).value_counts()
        described = (f"{len(areas) - len(whole)} {' and '.join(_plural(t) for t in terms)}, and {len(whole)} "
                     f"region{'s' if len(whole) != 1 else ''} without {content.admin_term(2, ctx)} boundaries "
                     f"({len(areas)} areas)" if whole and by_cercle else f"{len(areas)} {area}s")
        alt += (f" {described} are shaded by the class of their median index ("
                + ", ".join(f"{counts.get(lab, 0)} {lab}" for lab in content.category_labels(ctx))
                + (f", {len(blank)} without assessed locations, hatched: "
                   f"{', '.join(str(names.get(p, p)) for p in blank)}" if blank else "") + ").")
    alt += f" Scale bar of {km:g} km."
    return set_alt(fig, alt)


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
        footnote(ctx, fig)
    parts = []
    for c in cols:
        meds = [content.number(float(frame[c].median())) for frame, _, _ in groups]
        parts.append(f"{ctx.spec.label(c)} {' vs '.join(meds)}")
    who = (f"{ctx.region_name} ({len(ctx.current):,} locations) against all regions "
           f"({len(ctx.national):,} locations)" if ctx.region is not None
           else f"all regions ({len(ctx.national):,} locations)")
    which = f" ({ctx.region_name} vs all regions)" if ctx.region is not None else ""
    return set_alt(fig, f"Box plots of the index and its {len(ctx.pillars)} pillars, round {ctx.round}, on a "
                        f"{content.scale_text(ctx)} scale (higher = more stable), for {who}. Medians{which}: "
                        f"{'; '.join(parts)}.")


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
        labels.append(f"{_short(ctx.regions.get(p, p), 36)} ({len(values)})")
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
        footnote(ctx, fig)
    listed = "; ".join(f"{ctx.regions.get(p, p)} {content.number(v)}" for p, v in medians.items())
    alt = (f"Box plots of the {content.index_label(ctx).lower()} of every location by region, round {ctx.round}, "
           f"with each location as a dot, regions sorted by median (highest first): {listed}.")
    if ctx.region is not None and ctx.region in medians.index:
        rank = list(medians.index).index(ctx.region) + 1
        alt += f" {ctx.region_name} is highlighted, ranked {rank} of {len(medians)} by median."
    if content.category_cuts(ctx) is not None:
        alt += f" Background bands show the categories: {', '.join(category_legend_labels(ctx).values())}."
    return set_alt(fig, alt)


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
    ranges = category_legend_labels(ctx)
    tables = {col: content.population_by_region(ctx, col) for col in cols}
    present = {lab for t in tables.values() for lab in t.columns if t[lab].sum() > 0}
    handles = [Patch(facecolor=colours[lab], label=ranges.get(lab, lab))
               for lab in colours if lab in present or lab in ranges]
    with style():
        fig = new_figure(10.0, 5.8)
        if not cols:
            ax = fig.add_axes([0.05, 0.2, 0.9, 0.7])
            ax.text(0.5, 0.5, "No population counts in the data", ha="center", va="center")
            ax.set_axis_off()
            ax.legend(handles=[], title="no data")
            return set_alt(fig, "No population counts in the data: nothing to chart.")
        names = [_short(r, 36) for r in next(iter(tables.values())).index]
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
        footnote(ctx, fig)
    parts = []
    for col, table in tables.items():
        total = float(table.to_numpy().sum())
        shares = ", ".join(f"{content.number(100 * float(table[lab].sum()) / total if total else float('nan'), 0)} % "
                           f"in {lab}" for lab in table.columns)
        parts.append(f"{content.population_label(col)}: {total:,.0f} in all ({shares} stability locations)")
    return set_alt(fig, f"Stacked horizontal bars, one panel per population group, of the people living in "
                        f"each stability category of location, by region, round {ctx.round}. {'; '.join(parts)}.")
