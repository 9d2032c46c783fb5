"""An interactive map of a report that works offline: one self-contained HTML page.

:func:`interactive_map` draws the report's region (or the whole country) as
inline SVG in a single HTML document with its CSS and a little JavaScript
inline: no web font, no script library, no map tiles, no request of any kind,
so the page opens from a USB stick or an e-mail attachment without a network.

What it shows, with the colours of the static figures
(:func:`stability.report.figures.category_colours`):

* cercles (admin-2 areas) filled with the light tint of the class of their
  median index, hatched when no location of theirs was assessed (in the
  overview, a region without admin-2 polygons, such as Niger's, is filled
  whole by its own median, as on the static map, and the legend says so);
* the region's outline (the country overview: every region's outline) and,
  around a region, its neighbours in grey;
* every assessed location with coordinates as a point coloured by stability
  category, the least stable drawn on top;
* in a region without admin-2 polygons (Niger's), the seats of its admin-2
  areas (departments) as black squares labelled with the area's median index,
  as on the static map, with a tooltip;
* optionally, *pockets*: a class per location (see :func:`pocket_classes`)
  drawn as a ring around its point, each class of :mod:`stability.pockets` in
  its fixed colour (:data:`stability.report.pockets.RINGS`, as on the static
  map), any other class in a colour of its own;
* a tooltip on hover or keyboard focus (name, index, category, cercle, IDPs,
  returnees, population: whichever columns exist), pan (drag) and zoom (mouse
  wheel, buttons, ``+``/``-``/``0`` keys), a legend with the cut-offs, a title,
  a scale bar in km and a text description for screen readers.

Coordinates are projected equirectangularly, longitude scaled by the cosine
of the map's middle latitude (distances hold at that latitude); polygons are
simplified to about half a pixel of the initial view, so that the country
overview stays well under 2 MB.  Every text from the data is escaped
(:func:`html.escape`) and the script only ever sets ``textContent``.

Typical use::

    from stability.report import interactive
    path = interactive.write_interactive_map(ctx, "reports/3/ML05")   # .../map.html
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from . import content, figures

#: Width of the map in SVG user units (its height follows the extent's shape).
WIDTH = 1000.0
#: Kilometres in a degree of latitude (and of longitude at the equator).
KM_PER_DEGREE = 111.32
#: Polygons are simplified to this many user units (about half a pixel on a 1000-pixel-wide map).
SIMPLIFY_UNITS = 0.5
#: Ring colours of pocket classes: the classes of :mod:`stability.pockets` take their fixed colour
#: (:data:`stability.report.pockets.RINGS`: Okabe-Ito black, reddish purple, bluish green, sky blue, in
#: the order of :data:`POCKET_ORDER`); any other class one of the others (yellow, vermillion...) by name.
#: All are distinct from the category colours of the points.
POCKET_COLOURS = ("#000000", "#CC79A7", "#009E73", "#56B4E9", "#F0E442", "#D55E00")
#: Columns a pocket table may name its class with, in order of preference.
POCKET_COLUMNS = ("pocket", "pocket_class", "class")
#: Classes of :mod:`stability.pockets`, in the order of the legend (any other class follows, by name),
#: and the classes that get no ring.
POCKET_ORDER = ("pocket of stability", "hotspot of instability", "high-low outlier", "low-high outlier")
UNMARKED_CLASSES = ("not significant", "not mapped")
#: Radius of the location points and width of the pocket rings, in user units at zoom 1.
POINT_RADIUS = 4.2
POINT_RADIUS_DENSE = 3.0
RING_WIDTH = 2.2
FILE_NAME = "map.html"


# --------------------------------------------------------------------------- input
def pocket_classes(ctx, pockets=None) -> dict[str, str]:
    """Location id -> pocket class (text), from the ``pockets`` argument of :func:`interactive_map`.

    Parameters
    ----------
    ctx : ReportContext
    pockets : Mapping, Series, DataFrame, object with a ``locations`` table, or None
        * a mapping (or Series) location id -> class string; or
        * a DataFrame with the location id (``ctx.columns.location``) as a
          column or as its index and the class in a column named ``pocket``,
          ``pocket_class`` or ``class`` (the first present); when it has the
          round column, only rows of the report's round are used (e.g. the
          ``locations`` table of :func:`stability.pockets.find`, or scores
          from :func:`stability.pockets.with_pockets`); or
        * an object whose ``locations`` attribute is such a table.

        Locations without a class (None, NaN, "") or of a class in
        :data:`UNMARKED_CLASSES` are left out.

    Returns
    -------
    dict
        Keys are location ids as text.

    Raises
    ------
    ValueError
        A table without a class column or without the location id.
    """
    if pockets is None:
        return {}
    if not isinstance(pockets, (pd.DataFrame, pd.Series, Mapping)) and isinstance(
            getattr(pockets, "locations", None), pd.DataFrame):
        pockets = pockets.locations
    if isinstance(pockets, pd.DataFrame):
        col = next((c for c in POCKET_COLUMNS if c in pockets.columns), None)
        if col is None:
            raise ValueError(f"the pockets table needs a class column: one of {', '.join(POCKET_COLUMNS)}")
        rnd = ctx.columns.round
        if rnd and rnd in pockets.columns and ctx.round is not None:
            pockets = pockets[pockets[rnd].astype(str) == str(ctx.round)]
        loc = ctx.columns.location
        if loc in pockets.columns:
            pairs = zip(pockets[loc], pockets[col])
        elif pockets.index.name == loc or loc is None:
            pairs = zip(pockets.index, pockets[col])
        else:
            raise ValueError(f"the pockets table needs the location id '{loc}' as a column or as its index")
    elif isinstance(pockets, (pd.Series, Mapping)):
        pairs = pockets.items()
    else:
        raise ValueError("pockets must be a mapping location id -> class, a DataFrame or None")
    out = {}
    for key, value in pairs:
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
            continue
        text = str(value).strip()
        if text and text not in UNMARKED_CLASSES:
            out[str(key)] = text
    return out


def _pocket_colours(names) -> dict[str, str]:
    """Ring colour of each pocket class present, in legend order.

    A class of :mod:`stability.pockets` always takes its own colour (:data:`stability.report.pockets.RINGS`),
    whichever other classes are present, so that a colour means the same class on every map; any other
    class takes, by name, the colours of :data:`POCKET_COLOURS` no such class uses (cycling when there are
    more).
    """
    from .pockets import RINGS

    ordered = [n for n in POCKET_ORDER if n in names] + sorted(n for n in names if n not in POCKET_ORDER)
    spare = [c for c in POCKET_COLOURS if c not in RINGS.values()] or list(POCKET_COLOURS)
    others = [n for n in ordered if n not in RINGS]
    return {name: RINGS[name] if name in RINGS else spare[others.index(name) % len(spare)] for name in ordered}


# --------------------------------------------------------------------------- geometry
class _Projection:
    """Longitude/latitude -> SVG user units: equirectangular, longitude scaled by cos(middle latitude)."""

    def __init__(self, bounds: tuple[float, float, float, float], width: float = WIDTH, margin: float = 0.04):
        x0, y0, x1, y1 = bounds
        dx, dy = max(x1 - x0, 0.02), max(y1 - y0, 0.02)
        x0, x1, y0, y1 = x0 - margin * dx, x1 + margin * dx, y0 - margin * dy, y1 + margin * dy
        self.lat = (y0 + y1) / 2
        self.cos = max(math.cos(math.radians(self.lat)), 0.1)
        self.lon0, self.lat1 = x0, y1
        self.scale = width / ((x1 - x0) * self.cos)  # user units per degree of latitude
        self.width, self.height = width, (y1 - y0) * self.scale
        self.box = (x0, y0, x1, y1)

    @property
    def units_per_km(self) -> float:
        return self.scale / KM_PER_DEGREE

    def xy(self, lon, lat):
        lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        return (lon - self.lon0) * self.cos * self.scale, (self.lat1 - lat) * self.scale


def _simplified(geoms: dict, tolerance: float) -> dict:
    """Geometries simplified by ``tolerance`` degrees (shared edges kept shared when GEOS allows it)."""
    import shapely

    keys = list(geoms)
    values = [geoms[k] for k in keys]
    if not values:
        return {}
    try:
        simple = list(shapely.coverage_simplify(values, tolerance))
    except Exception:  # not a valid coverage, or an old GEOS: simplify each area on its own
        simple = [g.simplify(tolerance, preserve_topology=True) for g in values]
    return {k: (s if s is not None and not s.is_empty else g) for k, s, g in zip(keys, simple, values)}


def _path(geom, proj: _Projection) -> str:
    """SVG path data of a (Multi)Polygon, holes included, at 0.1 user unit."""
    parts = []
    for poly in getattr(geom, "geoms", [geom]):
        if poly.geom_type != "Polygon" or poly.is_empty:
            continue
        for ring in (poly.exterior, *poly.interiors):
            xy = np.asarray(ring.coords)[:, :2]
            if len(xy) < 3:
                continue
            x, y = proj.xy(xy[:, 0], xy[:, 1])
            pts = np.round(np.column_stack([x, y]), 1)
            keep = np.ones(len(pts), dtype=bool)
            keep[1:] = np.any(pts[1:] != pts[:-1], axis=1)
            pts = pts[keep]
            if len(pts) < 3:
                continue
            parts.append("M" + " ".join(f"{a:g},{b:g}" for a, b in pts) + "Z")
    return "".join(parts)


# --------------------------------------------------------------------------- text
def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def _fmt_count(value) -> str | None:
    if value is None or pd.isna(value):
        return None
    return f"{float(value):,.0f}"


class _Row(dict):
    """A location's row as a dict, with the ``index`` (column names) that :func:`_tooltip` asks a Series for."""

    @property
    def index(self):
        return self.keys()


def _tooltip(ctx, row, category: str, pocket: str | None, cercle_names: dict) -> str:
    """Lines of a location's tooltip joined by "; " (also its accessible name)."""
    c = ctx.columns
    name_col = c.name if c.name and c.name in row.index else c.location
    lines = [str(row.get(name_col, row.get(c.location, "location")))]
    value = row.get(ctx.index_id)
    lines.append(f"{content.index_label(ctx)}: {content.number(value)} ({category})" if pd.notna(value)
                 else f"{content.index_label(ctx)}: not scored")
    admin2, admin2_name = content.admin_columns(ctx, 2)
    if admin2_name and admin2_name in row.index and pd.notna(row.get(admin2_name)):
        lines.append(f"{content.admin_term(2, ctx).capitalize()}: {row.get(admin2_name)}")
    elif admin2 and admin2 in row.index and pd.notna(row.get(admin2)):
        lines.append(f"{content.admin_term(2, ctx).capitalize()}: {cercle_names.get(row.get(admin2), row.get(admin2))}")
    for col in (*content.population_columns(ctx), "population"):
        if col in row.index and (text := _fmt_count(row.get(col))) is not None:
            label = content.population_label(col)
            if f"{label}: " not in "; ".join(lines):
                lines.append(f"{label}: {text}")
    if pocket is not None:
        lines.append(f"Pocket: {pocket}")
    return "; ".join(" ".join(line.split()) for line in lines)


# --------------------------------------------------------------------------- the page
def _whole_regions_text(whole: dict, geo: dict) -> str:
    """Which regions are shaded whole and why, e.g. "Tahoua and Tillaberi (Niger): no department boundaries,
    each region shaded whole"."""
    from ..geo import COUNTRY_NAMES, country_of
    from ..locations import ADMIN_LEVEL_NAMES

    names = geo.get("admin1_names", {})
    parts = []
    for iso in dict.fromkeys(country_of(p) for p in whole):
        regions = content.join_words(sorted(names.get(p, p) for p in whole if country_of(p) == iso))
        term = ADMIN_LEVEL_NAMES.get(iso, ("", "admin-2 area"))[1]
        parts.append(f"{regions} ({COUNTRY_NAMES.get(iso, iso)}): no {term} boundaries")
    return "; ".join(parts) + (", each region shaded whole" if parts else "")


def _scale_bar_km(units_per_km: float, width: float, share: float = 0.2) -> float:
    return figures.nice_length(share * width / units_per_km)


def interactive_map(ctx, pockets=None, *, title: str | None = None) -> str:
    """The report's map as a complete, self-contained HTML document (works offline).

    Parameters
    ----------
    ctx : ReportContext
        A region's report (its region, cercles and locations, with the
        neighbouring regions in grey) or the country overview (``ctx.region``
        None: every region and cercle).
    pockets : Mapping, DataFrame, Series or None
        Optional class per location, drawn as a coloured ring around its point
        and named in its tooltip and in the legend; see :func:`pocket_classes`.
    title : str, optional
        Heading of the page (default: the report's title and "interactive map").

    Returns
    -------
    str
        An HTML5 document with inline SVG, CSS and JavaScript and no external
        resource (no ``src``/``href`` to another file, no web address).
    """
    from collections import Counter

    from shapely import union_all

    from .pockets import class_count_words

    geo = ctx.geo or {}
    c = ctx.columns
    frame = ctx.current
    regions = geo.get("admin1", {})
    parents = geo.get("admin2_parent", {})
    cercle_names = geo.get("admin2_names", {})
    admin2, _ = content.admin_columns(ctx, 2)
    if ctx.region is not None:
        region_geom = regions.get(ctx.region)
        cercles = {p: g for p, g in geo.get("admin2", {}).items() if parents.get(p) == ctx.region}
        outlines = {ctx.region: region_geom} if region_geom is not None else {}
        bounds = region_geom.bounds if region_geom is not None else None
    else:
        cercles = {p: g for p, g in geo.get("admin2", {}).items() if parents.get(p) in regions}
        outlines = dict(regions)
        bounds = union_all(list(regions.values())).bounds if regions else None
    lon, lat = c.longitude, c.latitude
    has_xy = bool(lon and lat and lon in frame and lat in frame)
    located = frame[frame[lon].notna() & frame[lat].notna()] if has_xy else frame.iloc[0:0]
    if bounds is None:
        bounds = ((located[lon].min(), located[lat].min(), located[lon].max(), located[lat].max())
                  if len(located) else (0.0, 0.0, 1.0, 1.0))
    proj = _Projection(bounds)
    tol = SIMPLIFY_UNITS / proj.scale

    # areas: cercles by class of their median (the regions when there are no cercles); in the overview, as on
    # the static map, regions without admin-2 polygons (Niger's) shaded whole by their own median
    if ctx.region is None:
        areas, medians, counts, whole, level = figures.country_areas(ctx)
    else:
        level, whole = (2 if cercles and admin2 else 1), []
        areas = cercles if level == 2 else {p: g for p, g in regions.items() if p == ctx.region}
        medians, counts = figures.medians_by(ctx, frame, admin2 if level == 2 else c.admin[0] if c.admin else None)
    area_term, area_names = (content.admin_term(2, ctx), cercle_names) if level == 2 else \
        (content.admin_term(1), ctx.regions)
    values = [medians.get(p, np.nan) for p in areas]
    classes = dict(zip(areas, figures.class_of(ctx, values)))
    labels = content.category_labels(ctx)
    colours = figures.category_colours(ctx)
    tints = figures.class_tints(ctx)
    legend_texts = figures.category_legend_labels(ctx)
    klass = {lab: f"c{i}" for i, lab in enumerate(labels)} | {content.NOT_SCORED: "cn"}

    svg = []
    # neighbours (region report), clipped to the view
    if ctx.region is not None and regions:
        from shapely.geometry import box

        view = box(*proj.box)
        others = {p: g.intersection(view) for p, g in regions.items() if p != ctx.region}
        others = {p: g for p, g in _simplified({p: g for p, g in others.items() if not g.is_empty}, tol).items()}
        svg.append('<g class="context">')
        for p, g in others.items():
            svg.append(f'<path d="{_path(g, proj)}"><title>{_esc(ctx.regions.get(p, p))}</title></path>')
        svg.append("</g>")
    svg.append('<g class="areas">')
    for p, g in _simplified(areas, tol).items():
        cls = classes[p]
        term, name = (content.admin_term(1), ctx.regions.get(p, p)) if p in whole else (area_term, area_names.get(p, p))
        if cls is None:
            tip = f"{term.capitalize()} {name}; no location assessed"
            fill = 'class="area nodata"'
        else:
            tip = (f"{term.capitalize()} {name}; median index {content.number(medians.get(p))} ({cls}); "
                   f"{int(counts.get(p, 0)):,} locations")
            fill = f'class="area t{labels.index(cls)}"'
        svg.append(f'<path {fill} d="{_path(g, proj)}" tabindex="0" aria-label="{_esc(tip)}"></path>')
    svg.append("</g>")
    if outlines:
        svg.append('<g class="outline">')
        for g in _simplified(outlines, tol).values():
            svg.append(f'<path d="{_path(g, proj)}"></path>')
        svg.append("</g>")

    # pockets (rings) and points, least stable on top
    pocket_of = pocket_classes(ctx, pockets)
    loc_ids = located[c.location].astype(str) if c.location in located else located.index.astype(str)
    pocket_colour = _pocket_colours({pocket_of[i] for i in loc_ids if i in pocket_of})
    pocket_names = list(pocket_colour)
    cats = content.categories_of(ctx, located) if len(located) else pd.Series(dtype=object)
    x, y = proj.xy(located[lon], located[lat]) if len(located) else (np.array([]), np.array([]))
    rank = {lab: k for k, lab in enumerate([content.NOT_SCORED, *reversed(labels)])}
    order = sorted(range(len(located)), key=lambda i: rank.get(cats.iloc[i], 0))
    radius = POINT_RADIUS if len(located) < 600 else POINT_RADIUS_DENSE
    rings, points = [], []
    records = located.to_dict("records")  # plain rows: much cheaper than a Series per location
    for i in order:
        row = _Row(records[i])
        cat = cats.iloc[i]
        pid = loc_ids.iloc[i]
        pocket = pocket_of.get(pid)
        tip = _tooltip(ctx, row, cat, pocket, cercle_names)
        if pocket is not None:
            rings.append(f'<circle class="ring" cx="{x[i]:.1f}" cy="{y[i]:.1f}" r="{radius + 2.6:g}" '
                         f'stroke="{pocket_colour[pocket]}"></circle>')
        points.append(f'<circle class="pt {klass.get(cat, "cn")}" cx="{x[i]:.1f}" cy="{y[i]:.1f}" r="{radius:g}" '
                      f'tabindex="0" role="img" aria-label="{_esc(tip)}"></circle>')
    svg.append('<g class="rings" aria-hidden="true">' + "".join(rings) + "</g>")
    svg.append('<g class="points">' + "".join(points) + "</g>")

    # seats of the region's admin-2 areas without polygons (Niger's departments), as on the static map
    seats = {}
    if ctx.region is not None and level == 1 and admin2:
        seats = {p: xy for p, xy in geo.get("admin2_seats", {}).items() if parents.get(p) == ctx.region}
    seat_term = content.admin_term(2, ctx)
    seat_medians, seat_counts = figures.medians_by(ctx, frame, admin2) if seats else ({}, {})
    seat_labels = []
    if seats:
        svg.append('<g class="seats">')
        for p, (sx, sy) in sorted(seats.items(), key=lambda kv: str(cercle_names.get(kv[0], kv[0]))):
            x0, y0 = (float(v) for v in proj.xy(sx, sy))
            name, value = cercle_names.get(p, p), seat_medians.get(p, np.nan)
            if pd.notna(value):
                tip = (f"{seat_term.capitalize()} {name} (seat); median index {content.number(value)} "
                       f"({figures.class_of(ctx, [value])[0]}); {int(seat_counts.get(p, 0)):,} locations")
            else:
                tip = f"{seat_term.capitalize()} {name} (seat); no location assessed"
            svg.append(f'<g transform="translate({x0:.1f},{y0:.1f})"><rect class="seat" x="-3.5" y="-3.5" width="7" '
                       f'height="7" tabindex="0" role="img" aria-label="{_esc(tip)}"></rect></g>')
            label = f"{name} {content.number(value)}" if pd.notna(value) else str(name)
            seat_labels.append(f'<text class="seat-label" x="{x0:.1f}" y="{y0:.1f}" dy="-0.9em">{_esc(label)}</text>')
        svg.append("</g>")

    # labels of areas (cercles of the region, regions of the country; neighbours in grey), above the points
    label_areas = areas if ctx.region is not None else outlines
    label_names = area_names if ctx.region is not None else ctx.regions
    svg.append('<g class="labels" aria-hidden="true">')
    if ctx.region is not None and regions:
        for p, g in others.items():
            if g.area * proj.scale ** 2 * proj.cos > 4000:  # enough room in view (square user units)
                q = g.representative_point()
                x0, y0 = proj.xy(q.x, q.y)
                svg.append(f'<text class="other" x="{float(x0):.1f}" y="{float(y0):.1f}">'
                           f"{_esc(ctx.regions.get(p, p))}</text>")
    for p, g in label_areas.items():
        if g.area * proj.scale ** 2 * proj.cos < 600:  # too small to write in at the initial zoom
            continue
        q = g.representative_point()
        x0, y0 = proj.xy(q.x, q.y)
        svg.append(f'<text x="{float(x0):.1f}" y="{float(y0):.1f}">{_esc(label_names.get(p, p))}</text>')
    svg.extend(seat_labels)
    svg.append("</g>")

    # ----- the page around the map
    where = f"{ctx.region_name} region ({ctx.region})" if ctx.region is not None else "all regions"
    whole_text = _whole_regions_text(whole, geo)
    heading = title or f"{ctx.title}: interactive map"
    count_text = figures.category_counts_text(ctx, cats) if len(located) else "none"
    ringed = Counter(pocket_of[i] for i in loc_ids if i in pocket_of)
    seat_text = (f"; the seats of its {len(seats)} {seat_term}s (no {seat_term} boundaries are available) are marked "
                 f"with black squares labelled with the {seat_term}'s median index" if seats else "")
    description = (f"Map of {where}, round {ctx.round}: {len(located):,} assessed locations as points coloured by "
                   f"stability category ({count_text})"
                   + (("; the region shaded by the class of its median index" if ctx.region is not None and level == 1
                       else f"; {area_term}s shaded by the class of their median index") if areas else "")
                   + (f" ({whole_text})" if whole else "")
                   + seat_text
                   + (f"; ringed by class: {content.join_words(class_count_words(ringed))}" if pocket_names else "")
                   + ". Zoom with the mouse wheel, the buttons or the + and - keys; drag to pan; move between "
                     "locations with the Tab key to read their details.")
    km = _scale_bar_km(proj.units_per_km, proj.width)
    bar = km * proj.units_per_km

    css_points = "".join(f".c{i}{{fill:{colours[lab]}}}" for i, lab in enumerate(labels))
    css_tints = "".join(f".t{i}{{fill:{tints[lab]}}}" for i, lab in enumerate(labels))
    legend_items = []
    n_by_cat = cats.value_counts() if len(cats) else pd.Series(dtype=int)
    for i, lab in enumerate(labels):
        legend_items.append(f'<li><svg width="16" height="16" aria-hidden="true"><circle cx="8" cy="8" r="6" '
                            f'class="c{i}" stroke="#fff" stroke-width="1"></circle></svg>'
                            f"{_esc(legend_texts[lab])}: {int(n_by_cat.get(lab, 0)):,}</li>")
    if n_by_cat.get(content.NOT_SCORED, 0):
        legend_items.append('<li><svg width="16" height="16" aria-hidden="true"><circle cx="8" cy="8" r="6" '
                            f'class="cn"></circle></svg>not scored: {int(n_by_cat[content.NOT_SCORED]):,}</li>')
    area_items = [f'<li><svg width="22" height="14" aria-hidden="true"><rect width="22" height="14" class="t{i}" '
                  f'stroke="#999"></rect></svg>{_esc(lab)}</li>' for i, lab in enumerate(labels)]
    if any(v is None for v in classes.values()):
        area_items.append('<li><svg width="22" height="14" aria-hidden="true"><rect width="22" height="14" '
                          'fill="url(#hatch)" stroke="#999"></rect></svg>no location assessed</li>')
    pocket_items = [f'<li><svg width="16" height="16" aria-hidden="true"><circle cx="8" cy="8" r="5.5" fill="none" '
                    f'stroke="{pocket_colour[name]}" stroke-width="2.5"></circle></svg>{_esc(name)}: '
                    f"{ringed[name]:,}</li>" for name in pocket_names]
    if seats:
        area_items.append('<li><svg width="22" height="14" aria-hidden="true"><rect x="7" y="3" width="8" '
                          'height="8" fill="#111" stroke="#fff"></rect></svg>'
                          f"{_esc(seat_term)} seat: median index of the {_esc(seat_term)}</li>")
    rule, _ = figures.class_cuts(ctx)
    rule_note = (" Cut-offs are the quantiles of the round's index (all regions)." if rule == "quantile" else "")
    banner = ""
    if ctx.illustrative:
        banner = ('<p class="banner" role="alert"><strong>ILLUSTRATIVE DATA: generated, not a real survey.</strong> '
                  "Not for programming decisions.</p>")
    legend = (f'<div class="legend"><h2>Locations: stability category (cut-offs)</h2><ul>{"".join(legend_items)}</ul>'
              + (f"<h2>{_esc(area_term.capitalize())}s: class of the median index</h2><ul>{''.join(area_items)}</ul>"
                 if areas else "")
              + (f'<p class="note">{_esc(whole_text)}.</p>' if whole else "")
              + (f"<h2>Ringed locations</h2><ul>{''.join(pocket_items)}</ul>" if pocket_items else "")
              + f'<p class="note">{_esc(rule_note.strip())}</p></div>')
    w, h = proj.width, proj.height
    return _TEMPLATE.format(
        title=_esc(heading), description=_esc(description), banner=banner, legend=legend,
        w=f"{w:.0f}", h=f"{h:.0f}", svg="".join(svg), css_points=css_points, css_tints=css_tints,
        upk=f"{proj.units_per_km:.6g}", bar=f"{bar:.1f}", km=f"{km:g}", by=f"{h - 20:.0f}", ty=f"{h - 46:.0f}",
        lat=_esc(f"{abs(proj.lat):.0f}° {'N' if proj.lat >= 0 else 'S'}"), nx=f"{w - 28:.0f}",
        barbox=f"{max(bar, 140) + 20:.0f}", r=f"{radius:g}", rr=f"{radius + 2.6:g}", ring=f"{RING_WIDTH:g}",
    )


def write_interactive_map(ctx, folder, pockets=None, name: str = FILE_NAME) -> Path:
    """Write :func:`interactive_map` to ``folder/map.html`` atomically and return its path."""
    from ..io import write_text_atomic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(folder / name, interactive_map(ctx, pockets))


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{font-family: "DejaVu Sans", Arial, sans-serif; margin: 12px 16px; color: #1a1a1a; background: #fff;}}
h1 {{font-size: 20px; margin: 4px 0 8px 0;}}
h2 {{font-size: 13px; margin: 10px 0 4px 0;}}
.banner {{border: 2px solid #b2182b; background: #fdecea; color: #67000d; padding: 6px 10px; margin: 6px 0;}}
.wrap {{display: flex; gap: 16px; align-items: flex-start; flex-wrap: wrap;}}
.mapbox {{position: relative; flex: 1 1 640px; min-width: 320px; border: 1px solid #bbb; background: #f7f9fb;}}
#map {{display: block; width: 100%; height: auto; max-height: 82vh; cursor: grab; touch-action: none;}}
#map.dragging {{cursor: grabbing;}}
.legend {{flex: 0 0 250px; font-size: 13px;}}
.legend ul {{list-style: none; padding: 0; margin: 0;}}
.legend li {{display: flex; align-items: center; gap: 6px; margin: 3px 0;}}
.note {{color: #555; font-size: 12px;}}
.controls {{position: absolute; top: 8px; left: 8px; display: flex; flex-direction: column; gap: 4px;}}
.controls button {{width: 32px; height: 32px; font-size: 18px; line-height: 1; border: 1px solid #888;
  background: #fff; border-radius: 4px; cursor: pointer;}}
.controls button:focus-visible, #map :focus-visible {{outline: 3px solid #1f5f99; outline-offset: 1px;}}
#tip {{position: absolute; pointer-events: none; background: #fff; border: 1px solid #555; border-radius: 4px;
  padding: 5px 8px; font-size: 12.5px; white-space: pre-line; box-shadow: 0 2px 6px rgba(0,0,0,.25);
  max-width: 280px; display: none; z-index: 2;}}
#tip .first {{font-weight: bold;}}
.context path {{fill: #ececec; stroke: #b5b5b5; stroke-width: 0.8; vector-effect: non-scaling-stroke;}}
.area {{stroke: #fff; stroke-width: 1; vector-effect: non-scaling-stroke;}}
.area:hover, .area:focus {{stroke: #333; stroke-width: 2;}}
.area.nodata {{fill: url(#hatch);}}
.outline path {{fill: none; stroke: #222; stroke-width: 1.8; vector-effect: non-scaling-stroke; pointer-events: none;}}
.labels text {{font-size: calc(13px / var(--k)); text-anchor: middle; dominant-baseline: middle; fill: #111;
  paint-order: stroke; stroke: #fff; stroke-width: calc(3px / var(--k)); stroke-linejoin: round;
  pointer-events: none; font-weight: bold;}}
.labels text.other {{fill: #777; font-style: italic; font-weight: normal;}}
.pt {{r: calc(var(--r) / var(--k)); stroke: #fff; stroke-width: 0.8; vector-effect: non-scaling-stroke;}}
.pt:hover, .pt:focus {{stroke: #000; stroke-width: 2;}}
.ring {{r: calc(var(--rr) / var(--k)); fill: none; stroke-width: {ring}; vector-effect: non-scaling-stroke;
  pointer-events: none;}}
.seat {{transform: scale(calc(1 / var(--k))); fill: #111; stroke: #fff; stroke-width: 0.8;
  vector-effect: non-scaling-stroke;}}
.seat:hover, .seat:focus {{stroke: #000; stroke-width: 2;}}
.labels text.seat-label {{font-size: calc(11px / var(--k)); font-weight: normal;}}
.cn {{fill: #9e9e9e;}}
{css_points}
{css_tints}
.overlay text {{font-size: 13px; fill: #111;}}
</style>
</head>
<body>
<h1 id="heading">{title}</h1>
{banner}
<p class="note">{description}</p>
<div class="wrap">
<div class="mapbox">
<svg id="map" viewBox="0 0 {w} {h}" role="group" aria-labelledby="map-title map-desc" tabindex="0"
 style="--k: 1; --r: {r}px; --rr: {rr}px" data-upk="{upk}">
<title id="map-title">{title}</title>
<desc id="map-desc">{description}</desc>
<defs><pattern id="hatch" patternUnits="userSpaceOnUse" width="7" height="7" patternTransform="rotate(45)">
<rect width="7" height="7" fill="#f4f4f4"></rect><line x1="0" y1="0" x2="0" y2="7" stroke="#999"
 stroke-width="1.6"></line></pattern></defs>
<rect width="{w}" height="{h}" fill="#f7f9fb"></rect>
<g id="viewport">{svg}</g>
<g class="overlay" aria-hidden="true">
<rect id="bar-box" x="10" y="{ty}" width="{barbox}" height="36" fill="#fff" fill-opacity="0.85" stroke="#bbb"></rect>
<rect id="bar" x="20" y="{by}" width="{bar}" height="6" fill="#222"></rect>
<text id="bar-text" x="20" y="{by}" dy="-6">{km} km (at {lat})</text>
<g transform="translate({nx},20)"><path d="M0,26 L0,4" stroke="#333" stroke-width="2"></path>
<path d="M-5,9 L0,0 L5,9 Z" fill="#333"></path><text x="0" y="40" text-anchor="middle"
 font-weight="bold">N</text></g>
</g>
</svg>
<div class="controls">
<button type="button" id="zoom-in" aria-label="Zoom in" title="Zoom in">+</button>
<button type="button" id="zoom-out" aria-label="Zoom out" title="Zoom out">&#8722;</button>
<button type="button" id="zoom-reset" aria-label="Reset the view" title="Reset the view">&#8634;</button>
</div>
<div id="tip" role="status" aria-live="polite"></div>
</div>
{legend}
</div>
<script>
(function () {{
  "use strict";
  var svg = document.getElementById("map"), vp = document.getElementById("viewport");
  var tip = document.getElementById("tip"), box = svg.parentNode;
  var W = {w}, H = {h}, upk = parseFloat(svg.getAttribute("data-upk"));
  var k = 1, tx = 0, ty = 0, drag = null;
  function nice(x) {{
    var e = Math.pow(10, Math.floor(Math.log10(x))), m = [5, 2, 1];
    for (var i = 0; i < m.length; i++) {{ if (m[i] * e <= x) return m[i] * e; }}
    return e;
  }}
  function apply() {{
    tx = Math.min(0, Math.max(W - W * k, tx)); ty = Math.min(0, Math.max(H - H * k, ty));
    vp.setAttribute("transform", "translate(" + tx.toFixed(2) + "," + ty.toFixed(2) + ") scale(" + k.toFixed(4) + ")");
    svg.style.setProperty("--k", k.toFixed(4));
    var km = nice(0.2 * W / (upk * k));
    document.getElementById("bar").setAttribute("width", (km * upk * k).toFixed(1));
    document.getElementById("bar-box").setAttribute("width", (Math.max(km * upk * k, 140) + 20).toFixed(1));
    document.getElementById("bar-text").textContent = km + " km (at {lat})";
  }}
  function point(evt) {{
    var p = svg.createSVGPoint(); p.x = evt.clientX; p.y = evt.clientY;
    return p.matrixTransform(svg.getScreenCTM().inverse());
  }}
  function zoom(f, cx, cy) {{
    var k2 = Math.min(60, Math.max(1, k * f));
    tx = cx - (cx - tx) * k2 / k; ty = cy - (cy - ty) * k2 / k; k = k2; apply();
  }}
  svg.addEventListener("wheel", function (evt) {{
    evt.preventDefault(); var p = point(evt); zoom(evt.deltaY < 0 ? 1.25 : 0.8, p.x, p.y);
  }}, {{passive: false}});
  svg.addEventListener("pointerdown", function (evt) {{
    if (evt.button !== 0) return;
    drag = {{p: point(evt), tx: tx, ty: ty}}; svg.classList.add("dragging");
  }});
  window.addEventListener("pointermove", function (evt) {{
    if (!drag) return; var p = point(evt);
    tx = drag.tx + p.x - drag.p.x; ty = drag.ty + p.y - drag.p.y; apply();
  }});
  window.addEventListener("pointerup", function () {{ drag = null; svg.classList.remove("dragging"); }});
  document.getElementById("zoom-in").addEventListener("click", function () {{ zoom(1.5, W / 2, H / 2); }});
  document.getElementById("zoom-out").addEventListener("click", function () {{ zoom(1 / 1.5, W / 2, H / 2); }});
  document.getElementById("zoom-reset").addEventListener("click", function () {{ k = 1; tx = 0; ty = 0; apply(); }});
  svg.addEventListener("keydown", function (evt) {{
    var step = 40;
    if (evt.key === "+" || evt.key === "=") zoom(1.5, W / 2, H / 2);
    else if (evt.key === "-") zoom(1 / 1.5, W / 2, H / 2);
    else if (evt.key === "0") {{ k = 1; tx = 0; ty = 0; apply(); }}
    else if (evt.target === svg && evt.key.indexOf("Arrow") === 0) {{
      tx += evt.key === "ArrowLeft" ? step : evt.key === "ArrowRight" ? -step : 0;
      ty += evt.key === "ArrowUp" ? step : evt.key === "ArrowDown" ? -step : 0; apply();
    }} else return;
    evt.preventDefault();
  }});
  function show(el) {{
    var text = el.getAttribute("aria-label");
    if (!text) return;
    var lines = text.split("; ");
    tip.textContent = "";
    var first = document.createElement("div"); first.className = "first"; first.textContent = lines[0];
    tip.appendChild(first);
    if (lines.length > 1) {{
      var rest = document.createElement("div"); rest.textContent = lines.slice(1).join("\\n"); tip.appendChild(rest);
    }}
    var r = el.getBoundingClientRect(), b = box.getBoundingClientRect();
    tip.style.display = "block";
    var x = r.right - b.left + 10, y = r.top - b.top - 6;
    if (x + tip.offsetWidth > b.width) x = r.left - b.left - tip.offsetWidth - 10;
    if (y + tip.offsetHeight > b.height) y = b.height - tip.offsetHeight - 4;
    tip.style.left = Math.max(2, x) + "px"; tip.style.top = Math.max(2, y) + "px";
  }}
  function hide() {{ tip.style.display = "none"; }}
  function target(evt) {{
    var el = evt.target;
    return el && el.classList && (el.classList.contains("pt") || el.classList.contains("area") ||
      el.classList.contains("seat")) ? el : null;
  }}
  svg.addEventListener("pointerover", function (evt) {{ var el = target(evt); if (el && !drag) show(el); }});
  svg.addEventListener("pointerout", function (evt) {{ if (target(evt)) hide(); }});
  svg.addEventListener("focusin", function (evt) {{ var el = target(evt); if (el) show(el); else hide(); }});
  svg.addEventListener("focusout", hide);
  apply();
}})();
</script>
</body>
</html>
"""
