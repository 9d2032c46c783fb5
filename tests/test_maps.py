"""Maps people can read: colour-blind-safe classes, cut-offs in the legends, class-shaded cercles, a
scale bar, alternative text on every figure, and the offline interactive map (checked in headless
Chromium with the network disabled; its screenshots are kept in ``test-artifacts/``)."""

from __future__ import annotations

import dataclasses
import html
import inspect
import itertools
import math
import re
import subprocess

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex, to_rgb

from stability.report import content, figures, interactive
from stability.report import notebook as nb
from stability.report.context import context_for, map_layers

REGION = "ML05"

# --------------------------------------------------------------------------- colour-vision simulation
#: Machado, Oliveira & Fernandes (2009), "A physiologically-based model for simulation of color vision
#: deficiency", IEEE TVCG 15(6): matrices for severity 1.0 (dichromacy), applied to linear sRGB.
CVD = {
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}


def _linear(colour: str) -> np.ndarray:
    c = np.array(to_rgb(colour))
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _lab(linear_rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of a linear sRGB colour."""
    rgb = np.clip(linear_rgb, 0, 1)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ rgb
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _seen(colour: str, deficiency: str | None) -> np.ndarray:
    rgb = _linear(colour)
    return _lab(rgb if deficiency is None else CVD[deficiency] @ rgb)


def min_difference(colours) -> float:
    """Smallest CIE76 colour difference between two of ``colours``, for normal vision and each dichromacy."""
    return min(float(np.linalg.norm(_seen(a, d) - _seen(b, d)))
               for d in (None, *CVD) for a, b in itertools.combinations(colours, 2))


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def geo(mali_result):
    return map_layers(mali_result)


@pytest.fixture(scope="module")
def ctx(mali_result, geo):
    return context_for(mali_result, REGION, "latest", geo)


@pytest.fixture(scope="module")
def overview(mali_result, geo):
    return context_for(mali_result, None, "latest", geo)


@pytest.fixture(scope="module")
def quantile_ctx(mali_data, mali_spec, geo):
    from stability.pipeline import compute

    spec = mali_spec.with_changes({"categories.method": "quantile", "categories.cuts": [0.4, 0.6]})
    return context_for(compute(mali_data, spec), REGION, "latest", geo)


def _legend_texts(fig) -> list[str]:
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return [t.get_text() for leg in legends for t in leg.get_texts()]


def _area_collections(ax):
    """The collections of cercle / region fills (drawn at zorder 2; points are above, neighbours below)."""
    from matplotlib.collections import PathCollection

    return [c for c in ax.collections if isinstance(c, PathCollection) and c.get_zorder() == 2]


def _point_collections(ax):
    return [c for c in ax.collections if c.get_zorder() >= 4]


# --------------------------------------------------------------------------- palette
def test_category_palette_is_colour_blind_safe():
    """Categories and "not scored" stay clearly apart (CIE76 difference >= 35) under each simulated dichromacy."""
    colours = [*figures.CATEGORY_COLOURS, figures.NOT_SCORED_COLOUR]
    assert min_difference(colours) >= 35
    assert set(figures.CATEGORY_COLOURS) <= set(figures.SUNSET)  # the documented colour-blind-safe scheme


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_palettes_of_other_category_counts_stay_apart(n):
    colours = figures.palette(n)
    assert len(set(colours)) == n and set(colours) <= set(figures.SUNSET)
    assert colours[0] == "#A50026" and colours[-1] == "#364B9A"  # least stable red, most stable blue
    assert min_difference(colours) >= 20


def test_area_tints_stay_apart_and_are_light():
    tints = [figures.tint(c) for c in figures.CATEGORY_COLOURS]
    assert min_difference(tints) >= 10
    assert all(_seen(t, None)[0] > 75 for t in tints)  # light enough for the points to show on them


def test_every_figure_uses_the_category_colours(ctx):
    colours = figures.category_colours(ctx)
    assert [colours[k] for k in content.category_labels(ctx)] == list(figures.CATEGORY_COLOURS)
    fig = figures.region_map(ctx)
    ax = fig.axes[0]
    drawn = {to_hex(c.get_facecolor()[0]) for c in _point_collections(ax) if len(c.get_facecolor())}
    assert drawn <= {c.lower() for c in colours.values()}
    handles = fig.legends[0].legend_handles
    assert {to_hex(h.get_markerfacecolor()) for h in handles if hasattr(h, "get_markerfacecolor")} == \
        {c.lower() for c in figures.CATEGORY_COLOURS}


# --------------------------------------------------------------------------- legends and cut-offs
def test_legends_state_the_cut_offs(ctx):
    assert figures.category_legend_labels(ctx) == {"low": "low (< 40)", "medium": "medium (40–60)",
                                                   "high": "high (≥ 60)"}
    texts = _legend_texts(figures.region_map(ctx))
    for expected in ("low (< 40)", "medium (40–60)", "high (≥ 60)"):
        assert any(t.startswith(expected) for t in texts), texts
    key = figures.region_map(ctx).axes[1]
    ticks = [t.get_text() for t in key.get_yticklabels()]
    assert ticks == ["low\n< 40", "medium\n40–60", "high\n≥ 60"]
    for name in ("country_map", "region_comparison", "population_bars"):
        fig = getattr(figures, name)(context_for(ctx.result, None, "latest", ctx.geo))
        assert any("(< 40)" in t for t in _legend_texts(fig)), name


def test_quantile_cut_offs_are_given_and_said_to_be_quantiles(quantile_ctx):
    rule, cuts = figures.class_cuts(quantile_ctx)
    values = quantile_ctx.national[quantile_ctx.index_id].dropna()
    assert rule == "quantile" and cuts == pytest.approx(list(np.quantile(values, [0.4, 0.6])))
    labels = figures.category_legend_labels(quantile_ctx)
    assert labels["low"].startswith(f"low (< {content.number(cuts[0])}") and "lowest 40 %" in labels["low"]
    assert "quantiles" in labels["medium"] and "highest 40 %" in labels["high"]
    fig = figures.region_map(quantile_ctx)
    assert any("lowest 40 % of round 3" in t for t in _legend_texts(fig))
    assert "quantiles" in fig.axes[1].get_title(loc="left")
    # a location's category and the class of the same value agree
    cur = quantile_ctx.current.dropna(subset=[quantile_ctx.index_id])
    assert figures.class_of(quantile_ctx, cur[quantile_ctx.index_id]) == list(cur["category"].astype(str))


# --------------------------------------------------------------------------- area shading
@pytest.mark.parametrize("which", ["region", "country"])
def test_area_fills_take_only_the_class_tints(ctx, overview, which):
    fig = figures.region_map(ctx) if which == "region" else figures.country_map(overview)
    fills = {to_hex(f) for c in _area_collections(fig.axes[0]) for f in c.get_facecolor()}
    allowed = set(figures.class_tints(ctx).values()) | {figures.NO_DATA_FILL}
    assert fills and fills <= allowed, fills - allowed
    assert len(fills & set(figures.class_tints(ctx).values())) >= 2  # more than one class shows
    key = fig.axes[1]  # the key is discrete: one block per category, no continuous ramp
    sizes = {c.cmap.N for c in key.collections if getattr(c, "get_array", lambda: None)() is not None}
    assert sizes == {len(content.category_labels(ctx))}


def test_cercles_are_shaded_by_the_class_of_their_median(ctx):
    fig = figures.region_map(ctx)
    tints = figures.class_tints(ctx)
    parents = ctx.geo["admin2_parent"]
    cercles = [p for p, parent in parents.items() if parent == REGION]
    medians = ctx.current.groupby("admin2_pcode")["stability"].median()
    expected = sorted(tints[figures.class_of(ctx, [medians[p]])[0]] for p in cercles if p in medians)
    drawn = sorted(to_hex(f) for c in _area_collections(fig.axes[0]) for f in c.get_facecolor()
                   if to_hex(f) != figures.NO_DATA_FILL)
    assert drawn == expected


def test_cercles_without_assessed_locations_are_hatched(ctx):
    empty = ctx.current[ctx.current["admin2_pcode"] != ctx.current["admin2_pcode"].iloc[0]]
    ctx2 = dataclasses.replace(ctx)
    ctx2.precomputed = {"current": empty}
    fig = figures.region_map(ctx2)
    hatched = [c for c in _area_collections(fig.axes[0]) if c.get_hatch()]
    assert hatched and {to_hex(f) for f in hatched[0].get_facecolor()} == {figures.NO_DATA_FILL}
    assert any("without assessed locations" in t for t in _legend_texts(fig))
    assert "hatched" in figures.alt_text(fig)


# --------------------------------------------------------------------------- scale bar and points
@pytest.mark.parametrize("which", ["region", "country"])
def test_scale_bar_in_km_matches_the_map(ctx, overview, which):
    from matplotlib.patches import Rectangle

    fig = figures.region_map(ctx) if which == "region" else figures.country_map(overview)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts if re.match(r"^\d+ km", t.get_text())]
    assert len(texts) == 1
    km = float(texts[0].split()[0])
    black = [p for p in ax.patches if isinstance(p, Rectangle) and to_hex(p.get_facecolor()) == "#222222"]
    assert len(black) == 1
    lat = sum(ax.get_ylim()) / 2
    assert 2 * black[0].get_width() * 111.32 * math.cos(math.radians(lat)) == pytest.approx(km)
    assert km in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def _densest_region(ctx) -> str:
    """The region whose map is most crowded: each region's map has about the same size on the page, so the
    one with the most locations (ties: the smallest area)."""
    counts = ctx.national.groupby("admin1_pcode").size()
    return max(counts.index, key=lambda p: (counts[p], -ctx.geo["admin1"][p].area))


def test_points_stay_readable_where_they_are_densest(mali_result, geo, tmp_path):
    from stability.paths import PROJECT_ROOT

    dense = context_for(mali_result, _densest_region(context_for(mali_result, None, "latest", geo)), "latest", geo)
    for fig in (figures.region_map(dense), figures.country_map(context_for(mali_result, None, "latest", geo))):
        points = _point_collections(fig.axes[0])
        assert points
        for c in points:
            assert {to_hex(e) for e in c.get_edgecolor()} == {"#ffffff"}  # thin white edges
            assert max(c.get_linewidths()) <= 0.6 and max(c.get_sizes()) <= 30
        # least stable drawn last (on top)
        top = max(points, key=lambda c: c.get_zorder())
        assert to_hex(top.get_facecolor()[0]) == figures.CATEGORY_COLOURS[0].lower()
    artifacts = PROJECT_ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "region_map_densest.png").write_bytes(nb.figure_png(figures.region_map(dense)))


# --------------------------------------------------------------------------- alternative text
def _figure_functions():
    """Every public function of figures.py taking only ``ctx`` (the figures the reports show, and helpers)."""
    return [name for name, f in inspect.getmembers(figures, inspect.isfunction)
            if f.__module__ == figures.__name__ and not name.startswith("_")
            and list(inspect.signature(f).parameters) == ["ctx"]]


@pytest.mark.parametrize("scope", ["region", "overview"])
def test_every_figure_has_alt_text(ctx, overview, scope):
    c = ctx if scope == "region" else overview
    found = 0
    for name in _figure_functions():
        if name == "region_map" and scope == "overview":
            continue
        out = getattr(figures, name)(c)
        if not hasattr(out, "savefig"):
            continue
        found += 1
        alt = nb._figure_alt(out)
        assert alt == figures.alt_text(out) and len(alt) > 80, (name, alt)
        assert f"round {c.round}" in alt and "\n" not in alt
        titles = [ax.get_title() for ax in out.axes]
        assert alt not in titles
    assert found >= (5 if scope == "region" else 4)


def test_map_alt_text_names_categories_cercles_and_scale(ctx):
    alt = figures.alt_text(figures.region_map(ctx))
    assert alt.startswith("Map of Mopti region (ML05), round 3")
    medians = ctx.current.groupby("admin2_name")["stability"].median().sort_values()
    lowest = medians.index[0]
    cls = figures.class_of(ctx, [medians.iloc[0]])[0]
    assert f"{lowest} {cls} (median {content.number(medians.iloc[0])})" in alt
    assert "(< 40)" in alt and "(≥ 60)" in alt and re.search(r"Scale bar of \d+ km", alt)


def test_show_puts_the_alt_text_on_the_image(ctx, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    fig = figures.pillar_profile(ctx)
    alt = figures.alt_text(fig)
    nb.show(fig)
    assert shown and shown[0].alt == alt


def test_the_html_page_keeps_the_alt_text_of_every_figure(ctx):
    import html

    import nbformat
    from IPython.core.formatters import format_display_data
    from IPython.display import Image

    from stability.report.worker import export_html

    fig = figures.pillar_profile(ctx)
    alt = figures.alt_text(fig)
    data, metadata = format_display_data(Image(data=nb.figure_png(fig), format="png", alt=alt))
    cell = nbformat.v4.new_code_cell("nb.show(fig)", outputs=[
        nbformat.v4.new_output("display_data", data=data, metadata=metadata)])
    page = export_html(nbformat.v4.new_notebook(cells=[cell]), "alt text")
    assert f'alt="{html.escape(alt)}"' in page and "No description has been provided" not in page


# --------------------------------------------------------------------------- interactive map
RESOURCE = re.compile(r"""(?:\bsrc\s*=|\bhref\s*=|url\()\s*["']?\s*(?:[a-z][a-z0-9+.-]*:|//)""", re.I)


def _located(c) -> pd.DataFrame:
    return c.current.dropna(subset=["longitude", "latitude"])


@pytest.mark.parametrize("scope", ["region", "overview"])
def test_interactive_map_is_self_contained(ctx, overview, scope):
    c = ctx if scope == "region" else overview
    page = interactive.interactive_map(c)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "http://" not in page and "https://" not in page
    assert not RESOURCE.search(page), RESOURCE.search(page)
    assert "<link" not in page and "@import" not in page and "<img" not in page and "<iframe" not in page
    assert not re.search(r"<script[^>]*\bsrc", page)
    assert page.count('class="pt ') == len(_located(c))
    assert "<title>" in page and 'aria-labelledby="map-title map-desc"' in page
    for text in figures.category_legend_labels(c).values():
        assert html.escape(text) in page  # legend with the cut-offs (escaped like all text)
    assert re.search(r'id="bar-text"[^>]*>\d+ km', page)
    assert len(page.encode("utf-8")) < 2_000_000


def test_interactive_map_tooltips_carry_the_location_details(ctx):
    page = interactive.interactive_map(ctx)
    row = _located(ctx).iloc[0]
    label = re.search(rf'aria-label="({re.escape(str(row["location_name"]))}; [^"]*)"', page)
    assert label, row["location_name"]
    text = label.group(1)
    assert f"Stability index: {content.number(row['stability'])} ({row['category']})" in text
    assert f"IDPs: {row['idps']:,.0f}" in text and "Returnees: " in text and "Population: " in text
    # cercles: median and class
    assert re.search(r'class="area t\d" d="M[^"]+" tabindex="0" aria-label="Cercle [^"]+; median index', page)


def test_interactive_map_escapes_text_from_the_data(ctx):
    bad = "<script>alert(1)</script>"
    cur = ctx.current.copy()
    cur.loc[cur.index[0], "location_name"] = bad
    cur.loc[cur.index[1], "admin2_name"] = 'Cercle "<b>&'
    ctx2 = dataclasses.replace(ctx, geo=dict(ctx.geo, admin2_names={**ctx.geo["admin2_names"],
                                                                   cur["admin2_pcode"].iloc[0]: "<i>x</i>"}))
    ctx2.precomputed = {"current": cur}
    page = interactive.interactive_map(ctx2, pockets={str(cur["location_id"].iloc[0]): "<svg onload=x>"})
    assert bad not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<i>x</i>" not in page and "&lt;i&gt;x&lt;/i&gt;" in page
    assert "<svg onload=x>" not in page and "&lt;svg onload=x&gt;" in page
    assert "<b>&" not in page
    assert "innerHTML" not in page  # the script only sets textContent


def test_pockets_are_drawn_as_rings(ctx):
    ids = list(_located(ctx)["location_id"].astype(str))
    mapping = {ids[0]: "pocket A", ids[1]: "pocket B", ids[2]: "pocket A", "no-such-location": "pocket C"}
    page = interactive.interactive_map(ctx, pockets=mapping)
    assert page.count('class="ring"') == 3
    assert "Pocket: pocket A" in page and ">pocket B: 1</li>" in page and "pocket C" not in page
    table = pd.DataFrame({"location_id": ids[:2], "pocket": ["east", None]})
    assert interactive.pocket_classes(ctx, table) == {ids[0]: "east"}
    assert interactive.pocket_classes(ctx, table.set_index("location_id")) == {ids[0]: "east"}
    assert interactive.interactive_map(ctx, pockets=table).count('class="ring"') == 1
    assert 'class="ring"' not in interactive.interactive_map(ctx)
    # the locations table of stability.pockets: every round, classes that get no ring
    found = pd.DataFrame({"location_id": ids[:4] * 2, "round": [ctx.round] * 4 + [ctx.round - 1] * 4,
                          "class": ["pocket of stability", "not significant", "hotspot of instability",
                                    "not mapped", *["pocket of stability"] * 4]})
    assert interactive.pocket_classes(ctx, found) == {ids[0]: "pocket of stability", ids[2]: "hotspot of instability"}
    page = interactive.interactive_map(ctx, pockets=found)
    assert page.count('class="ring"') == 2 and "not significant" not in page
    assert f'stroke="{interactive.POCKET_COLOURS[0]}"' in page  # pockets of stability take the first colour
    with pytest.raises(ValueError, match="class column"):
        interactive.pocket_classes(ctx, pd.DataFrame({"location_id": ids[:1]}))


def test_interactive_map_without_boundaries_shows_the_points(ctx):
    page = interactive.interactive_map(dataclasses.replace(ctx, geo={}))
    assert page.count('class="pt ') == len(_located(ctx)) and 'class="area ' not in page
    assert "class of the median index" not in page


def test_write_interactive_map(ctx, tmp_path):
    path = interactive.write_interactive_map(ctx, tmp_path / "out")
    assert path == tmp_path / "out" / "map.html"
    assert path.read_text(encoding="utf-8") == interactive.interactive_map(ctx)
    assert not [p for p in path.parent.iterdir() if p != path]  # nothing left over


# --------------------------------------------------------------------------- in a browser, offline
def _browser():
    from test_browser import ARTIFACTS, CHROMIUM, FLAGS, IN_CI, MISSING

    if CHROMIUM is None:
        if IN_CI:
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    return CHROMIUM, FLAGS, ARTIFACTS


#: No name resolves: any request the page made would fail (and the page must still render).
OFFLINE = ["--host-resolver-rules=MAP * ~NOTFOUND"]


def _run(chromium, flags, user_dir, *args) -> str:
    done = subprocess.run([chromium, *flags, *OFFLINE, f"--user-data-dir={user_dir}", *args], capture_output=True,
                          text=True, timeout=120)
    return done.stdout


@pytest.mark.parametrize("scope", ["region", "overview"])
def test_interactive_map_renders_offline_in_chromium(ctx, overview, scope, tmp_path):
    from PIL import Image

    chromium, flags, artifacts = _browser()
    c = ctx if scope == "region" else overview
    page = interactive.interactive_map(c, pockets={str(i): "pocket A" for i in _located(c)["location_id"][:5]})
    # focus the last (least stable) point once the page is ready, so that the screenshot shows a tooltip
    focused = page.replace("</body>", '<script>document.querySelector(".points .pt:last-child").focus();'
                                      "</script></body>")
    file = tmp_path / "map.html"
    file.write_text(focused, encoding="utf-8")
    dom = _run(chromium, flags, tmp_path / "u1", "--dump-dom", file.as_uri())
    assert dom.count('class="pt ') == len(_located(c))
    assert re.search(r'id="viewport" transform="translate\(', dom)  # the script ran
    tip = re.search(r'<div id="tip"[^>]*style="([^"]*)"[^>]*>(.*?)</div></div>', dom, re.S)
    assert tip and "display: block" in tip.group(1) and "Stability index:" in tip.group(2)
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / f"interactive_map_{'ML05' if scope == 'region' else 'overview'}.png"
    if shot.exists():
        shot.unlink()
    _run(chromium, flags, tmp_path / "u2", "--window-size=1200,900", f"--screenshot={shot}", file.as_uri())
    image = Image.open(shot).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # not blank
    present = {to_hex(np.array(rgb) / 255) for _, rgb in colours}
    assert {figures.CATEGORY_COLOURS[0].lower(), figures.CATEGORY_COLOURS[2].lower()} <= present


def test_area_labels_sit_away_from_borders(mali_result):
    """A region's label goes where it is farthest from the borders (Nord and Centre-Nord's labels collided when
    each was at an arbitrary inside point): inside, and at least as far from the edges as that point."""
    from stability.report.context import map_layers
    from stability.report.figures import label_point

    layers = map_layers(mali_result)
    for code, geom in {**layers["admin1"], **layers["admin2"]}.items():
        part = max(getattr(geom, "geoms", [geom]), key=lambda g: g.area)
        p = label_point(geom)
        assert part.contains(p), code
        tolerance = max(part.bounds[2] - part.bounds[0], part.bounds[3] - part.bounds[1]) / 200
        assert part.exterior.distance(p) >= part.exterior.distance(part.representative_point()) - tolerance, code
