"""What-if of the weights: change the weights of a computed index and watch the ranking move.

The logic is apart from the widgets, so that it can be tested without a browser:

==============================  ====================================================================
:class:`WhatIf`                 the base result and a scope (region, round); :meth:`WhatIf.apply` recomputes
                                the index with other pillar / indicator weights (only the aggregation
                                runs again), :meth:`WhatIf.summary` says what moved
:func:`context_for`             a report context (:class:`~stability.report.context.ReportContext`) for a
                                given result, so that the report figures draw a recomputed index
:func:`compare_weightings`      weighting schemes (:mod:`stability.weights`) side by side: their weights
                                and how far each one's ranking is from the written weights'
:func:`widget`                  the JupyterLab user interface (ipywidgets): a slider per pillar (and per
                                indicator), a reset button, the ranking, categories and map redrawn
:class:`WhatIfUI`               the state of that interface (sliders, output, last result)
:func:`static`                  what the interface draws, as plain HTML with the map embedded: readable
                                without a kernel (an exported or papermill-run notebook, where the
                                widget itself is empty: its JavaScript loads from a CDN)
:func:`weights_table`           the weights of a result for readers (labels, with the ids beside them)
==============================  ====================================================================

Weights only matter within their group (the aggregation divides them by their group's sum), so a
pillar at 2 with the others at 1 counts twice as much as each of them.  A group whose weights are
all 0 is refused by the spec (:class:`~stability.exceptions.SpecError`): the interface shows the
message instead of a ranking.

Examples
--------
>>> from stability.report import context                                     # doctest: +SKIP
>>> from stability import whatif
>>> result, _, _ = context.compute_result()
>>> w = whatif.WhatIf(result, region="ML05")
>>> new = w.apply({"safety": 2.0})           # safety counts twice as much as each other pillar
>>> s = w.summary(new)
>>> s["spearman"], s["ranking"], s["categories"], s["movers"]
>>> whatif.widget(result, "ML05")            # in JupyterLab, with a live kernel
"""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .report.context import context_for  # a report context for a given (recomputed) result

__all__ = [
    "LATEST",
    "NOT_SCORED",
    "PEOPLE",
    "SLIDER_MAX",
    "SLIDER_STEP",
    "TOP",
    "WhatIf",
    "WhatIfUI",
    "StaticWhatIf",
    "WeightingComparison",
    "compare_weightings",
    "context_for",
    "static",
    "weights_table",
    "widget",
]

LATEST = "latest"
#: Category of a location without an index.
NOT_SCORED = "not scored"
#: People counted per category when the data have these columns.
PEOPLE = ("idps", "returnees")
#: Rows of the ranking and of the movers in :meth:`WhatIf.summary`.
TOP = 10
#: Range and step of the weight sliders.
SLIDER_MAX = 3.0
SLIDER_STEP = 0.25


# --------------------------------------------------------------------------- logic
class WhatIf:
    """The what-if of weights of one computed index, for one region (or the country) and round.

    Parameters
    ----------
    result : stability.pipeline.Result
        The base result: what every change is compared with.
    region : str, optional
        Admin-1 p-code whose ranking is watched; None or "" for the whole country.
    survey_round : int or str, default "latest"
        Round whose ranking is watched.

    Attributes
    ----------
    base : Result
    region : str or None
        The region (checked against the data).
    round : value or None
        The round (resolved: ``"latest"`` becomes the last round); None without rounds.
    pillars : list of str
        Ids of the pillars (level-2 aggregates).
    indicators : dict of str -> list of str
        Indicator ids per pillar.
    pillar_weights, indicator_weights : dict of str -> float
        Starting weights: the spec's written weights, or, for a level whose weights the spec derives
        from the data (``weights:`` section), the derived shares times the group's number of
        children (so that equal weights are 1 in either case).
    last : Result or None
        The result of the last :meth:`apply` (cached: the same weights again return it).
    timings : dict
        Seconds taken by the last :meth:`apply` (``apply``) and :meth:`summary` (``summary``).
    """

    def __init__(self, result, region: str | None = None, survey_round: Any = LATEST):
        from .report.context import check_region, region_names, resolve_round

        self.base = result
        self.round = resolve_round(result.rounds, survey_round)
        self.region = check_region(region_names(result), region)
        spec = result.spec
        self.pillars = [a.id for a in spec.aggregates_at(2)]
        self.indicators = {p: [i.id for i in spec.indicators if i.parent == p] for p in self.pillars}
        used = result.weights
        shares = {(int(r.level), r.child): float(r.weight) for r in used.itertuples()}
        sizes = used.groupby(["level", "parent"]).size().to_dict()
        parent = {(int(r.level), r.child): r.parent for r in used.itertuples()}

        def start(level: int, node) -> float:
            if str(level) not in spec.weights:
                return float(node.weight)
            return shares[(level, node.id)] * sizes[(level, parent[(level, node.id)])]

        self.indicator_weights = {i.id: start(2, i) for i in spec.indicators}
        self.pillar_weights = {a.id: start(3, a) for a in spec.aggregates_at(2)}
        self.last = None
        self._cached: tuple | None = None
        self.timings: dict[str, float] = {}
        self._scope_base: pd.DataFrame | None = None

    # ---- labels
    @property
    def scope_name(self) -> str:
        """The watched ranking in words: ``Mopti (ML05), round 3`` or ``the country, round 3``."""
        from .report.context import region_names

        where = f"{region_names(self.base).get(self.region, self.region)} ({self.region})" if self.region \
            else "the country"
        return where + (f", round {self.round}" if self.round is not None else "")

    def label(self, node_id: str) -> str:
        """The spec's label of a pillar or indicator."""
        return self.base.spec.label(node_id)

    # ---- weights
    def _merged(self, given: Mapping | None, start: dict, what: str) -> dict[str, float]:
        given = dict(given or {})
        unknown = sorted(set(given) - set(start))
        if unknown:
            raise KeyError(f"no {what} {', '.join(map(repr, unknown))} in the spec (its {what}s: "
                           f"{', '.join(start)})")
        return {k: float(given.get(k, v)) for k, v in start.items()}

    def changes(self, pillar_weights: Mapping | None = None,
                indicator_weights: Mapping | None = None) -> dict[str, float]:
        """The spec changes of these weights (``aggregates.<id>.weight``, ``indicators.<id>.weight``).

        Weights not given keep their starting value; a level none of whose weights differs from its
        starting values is left out (so that a level derived from the data stays derived).

        Raises
        ------
        KeyError
            A pillar or indicator id that is not in the spec.
        """
        out: dict[str, float] = {}
        pw = self._merged(pillar_weights, self.pillar_weights, "pillar")
        iw = self._merged(indicator_weights, self.indicator_weights, "indicator")
        if pw != self.pillar_weights:
            out.update({f"aggregates.{k}.weight": v for k, v in pw.items()})
        if iw != self.indicator_weights:
            out.update({f"indicators.{k}.weight": v for k, v in iw.items()})
        return out

    def spec_for(self, changes: Mapping[str, float]):
        """The base spec with ``changes``; a level whose weights are set no longer derives them.

        Raises
        ------
        stability.exceptions.SpecError
            Weights the spec refuses (negative, or every child of an aggregate at 0).
        """
        spec = self.base.spec
        levels = {"3" if k.startswith("aggregates.") else "2" for k in changes}
        derived = levels & set(spec.weights)
        if derived:
            from .spec import spec_from_dict

            data = spec.model_dump(mode="python")
            data["weights"] = {k: v for k, v in data["weights"].items() if k not in derived}
            spec = spec_from_dict(data)
        return spec.with_changes(dict(changes))

    def apply(self, pillar_weights: Mapping | None = None, indicator_weights: Mapping | None = None):
        """The index recomputed with these weights (only the aggregation and the ranks run again).

        Parameters
        ----------
        pillar_weights : mapping, optional
            Pillar id -> weight (>= 0); pillars not given keep their starting weight.
        indicator_weights : mapping, optional
            Indicator id -> weight (>= 0) within its pillar; likewise.

        Returns
        -------
        stability.pipeline.Result
            The base result itself when no weight differs from its starting value; the last result
            when the weights are those of the last call.

        Raises
        ------
        stability.exceptions.SpecError
            Weights the spec refuses, e.g. every pillar at 0 (the message says so).
        KeyError
            An unknown pillar or indicator id.
        """
        t0 = time.perf_counter()
        changes = self.changes(pillar_weights, indicator_weights)
        key = tuple(sorted(changes.items()))
        if not changes:
            out = self.base
        elif self._cached is not None and self._cached[0] == key:
            out = self._cached[1]
        else:
            out = self.base.recompute(self.spec_for(changes))
            self._cached = (key, out)
        self.last = out
        self.timings["apply"] = time.perf_counter() - t0
        return out

    # ---- what moved
    @property
    def rank_column(self) -> str:
        """The rank shown: ``rank_region`` for a region (ranks within it), else ``rank_national``."""
        return "rank_region" if self.region is not None else "rank_national"

    def scope(self, result=None) -> pd.DataFrame:
        """Scores of the watched round and region (all locations of the round without a region).

        The rank column :attr:`rank_column` ranks within the scope: for a region, the result's
        ``rank_region`` when the spec ranks within the first admin column, else computed here.
        """
        result = self.base if result is None else result
        if result is self.base and self._scope_base is not None:
            return self._scope_base
        c = result.spec.columns
        s = result.scores
        if c.round and self.round is not None:
            s = s[s[c.round] == self.round]
        if self.region is not None:
            s = s[s[c.admin[0]] == self.region]
            if result.spec.within() != c.admin[0] or "rank_region" not in s.columns:
                s = s.copy()
                x = s[result.spec.root.id].astype(float).round(9)
                s["rank_region"] = x.rank(method="min", ascending=False).astype("Int64")
        s = s.set_index(c.location)
        if result is self.base:
            self._scope_base = s
        return s

    def summary(self, result=None, top: int = TOP) -> dict:
        """What moved between the base result and ``result`` in the watched ranking.

        Parameters
        ----------
        result : Result, optional
            Default: the last result of :meth:`apply` (else the base).
        top : int
            Rows of ``ranking`` and ``movers``.

        Returns
        -------
        dict
            ``scope`` (the ranking in words), ``region``, ``round``, ``n_locations``;
            ``weights``: pillar id -> share of the index (the weights used, summing to 1);
            ``ranking``: the ``top`` first locations (location id, name, cercle, ``index``,
            ``category``, ``rank``, ``base_index``, ``base_category``, ``base_rank``, ``rank_change``);
            ``categories``: per category (least stable first, ``not scored`` if any) ``locations``,
            ``base_locations``, ``change`` and, per people column of :data:`PEOPLE` in the data,
            ``<col>``, ``base_<col>``, ``<col>_change`` (the columns sum to the scope's locations and
            people);
            ``spearman``: Spearman correlation of the scope's index with the base's
            (``scipy.stats.spearmanr``, locations with both);
            ``mean_abs_rank_shift``, ``max_rank_shift``, ``category_changes`` (locations whose
            category changed);
            ``movers``: the ``top`` locations whose rank changed most (largest absolute change first).

            ``rank_change`` is the base rank minus the new rank: positive = moved up (more stable
            than before relative to the others), negative = moved down.
        """
        from scipy.stats import spearmanr

        t0 = time.perf_counter()
        result = (self.last if self.last is not None else self.base) if result is None else result
        spec = result.spec
        c = spec.columns
        root = spec.root.id
        rank = self.rank_column
        new, old = self.scope(result), self.scope(self.base)
        old = old.reindex(new.index)
        table = pd.DataFrame(index=new.index)
        table.index.name = c.location
        for col in (c.name, *(c.admin_names[1:2] if len(c.admin_names) > 1 else c.admin[1:2])):
            if col and col in new.columns:
                table[col] = new[col]
        table["index"] = new[root].astype(float)
        table["category"] = _categories(new)
        table["rank"] = new[rank].astype("Int64")
        table["base_index"] = old[root].astype(float)
        table["base_category"] = _categories(old)
        table["base_rank"] = old[rank].astype("Int64")
        table["rank_change"] = (table["base_rank"] - table["rank"]).astype("Int64")
        table = table.reset_index()
        ranked = table.sort_values(["rank", c.location], kind="mergesort", na_position="last")
        shift = table["rank_change"].astype("Float64").abs()
        both = table["index"].notna() & table["base_index"].notna()
        rho = (float(spearmanr(table.loc[both, "index"], table.loc[both, "base_index"]).statistic)
               if both.sum() > 1 and table.loc[both, "index"].nunique() > 1
               and table.loc[both, "base_index"].nunique() > 1 else float("nan"))
        movers = table.assign(_shift=shift).dropna(subset=["_shift"])
        movers = movers[movers["_shift"] > 0].sort_values(["_shift", c.location], ascending=[False, True],
                                                          kind="mergesort").drop(columns="_shift")
        weights = result.weights
        pillar_shares = weights[weights["level"] == 3].set_index("child")["weight"].to_dict()
        out = {
            "scope": self.scope_name,
            "region": self.region,
            "round": self.round,
            "n_locations": int(len(table)),
            "weights": {k: float(v) for k, v in pillar_shares.items()},
            "ranking": ranked.head(top).reset_index(drop=True),
            "categories": self._categories_table(new, old, spec),
            "spearman": rho,
            "mean_abs_rank_shift": float(shift.mean()) if shift.notna().any() else float("nan"),
            "max_rank_shift": int(shift.max()) if shift.notna().any() else 0,
            "category_changes": int((table["category"] != table["base_category"]).sum()),
            "movers": movers.head(top).reset_index(drop=True),
        }
        self.timings["summary"] = time.perf_counter() - t0
        return out

    @staticmethod
    def _categories_table(new: pd.DataFrame, old: pd.DataFrame, spec) -> pd.DataFrame:
        cats_new, cats_old = _categories(new), _categories(old)
        order = list(spec.categories.labels)
        if (cats_new == NOT_SCORED).any() or (cats_old == NOT_SCORED).any():
            order.append(NOT_SCORED)
        out = pd.DataFrame(index=pd.Index(order, name="category"))
        out["locations"] = cats_new.value_counts().reindex(order, fill_value=0).astype(int)
        out["base_locations"] = cats_old.value_counts().reindex(order, fill_value=0).astype(int)
        out["change"] = out["locations"] - out["base_locations"]
        for col in PEOPLE:
            if col in new.columns:
                people = pd.to_numeric(new[col], errors="coerce")
                now = people.groupby(cats_new).sum(min_count=0).reindex(order, fill_value=0)
                before = people.groupby(cats_old).sum(min_count=0).reindex(order, fill_value=0)
                out[col] = now.to_numpy(dtype=float)
                out[f"base_{col}"] = before.to_numpy(dtype=float)
                out[f"{col}_change"] = out[col] - out[f"base_{col}"]
        return out.reset_index()


def _categories(frame: pd.DataFrame) -> pd.Series:
    cat = frame["category"].astype(object)
    return cat.where(cat.notna(), NOT_SCORED)


# --------------------------------------------------------------------------- weighting schemes
@dataclass
class WeightingComparison:
    """Weighting schemes side by side (see :func:`compare_weightings`).

    Attributes
    ----------
    weights : DataFrame
        One row per child of the level (``group``, ``child``, ``label``), one column of weights per
        scheme (shares of the group), the written weights first (``written``).
    agreement : DataFrame
        One row per scheme: ``spearman`` (its ranking against the written weights' in the scope),
        ``mean_abs_rank_shift``, ``max_rank_shift``, ``category_changes``, ``error`` (why the
        scheme failed, else empty).
    notes : dict of str -> list of str
        Per scheme, the derivation's notes and warnings (or its error).
    derivations : dict of str -> Derivation
    results : dict of str -> Result
    scope : str
        The compared ranking in words.
    """

    weights: pd.DataFrame
    agreement: pd.DataFrame
    notes: dict[str, list[str]] = field(default_factory=dict)
    derivations: dict = field(default_factory=dict)
    results: dict = field(default_factory=dict)
    scope: str = ""
    group_labels: dict = field(default_factory=dict)

    def weights_for_readers(self) -> pd.DataFrame:
        """:attr:`weights` with the group's label first (``Pillar``), then ``Indicator`` (label) and ``id``.

        The scheme columns follow unchanged (shares of the group, ``written`` first).
        """
        t = self.weights
        out = pd.DataFrame({"Pillar": [self.group_labels.get(g, g) for g in t["group"]],
                            "Indicator": t["label"].to_numpy(), "id": t["child"].to_numpy()}, index=t.index)
        return pd.concat([out, t.drop(columns=["group", "child", "label"])], axis=1)


def compare_weightings(result, schemes: Mapping[str, Mapping] | None = None, *, level: int = 2,
                       region: str | None = None, survey_round: Any = LATEST) -> WeightingComparison:
    """Derive weights with several schemes and compare each scheme's ranking with the written weights'.

    Each scheme's weights come from :func:`stability.weights.derive_for` and its index from
    ``result.recompute(d.spec_changes())``.  A scheme the data do not support is reported (its
    ``error``), not raised.

    Parameters
    ----------
    result : stability.pipeline.Result
        Computed with the written weights (the reference).
    schemes : mapping of str -> mapping, optional
        Scheme name (a name of :data:`stability.weights.WEIGHTINGS`) -> its options, e.g.
        ``{"pca": {}, "outcome": {"outcome": "stays_6_months", "cluster": "admin2_pcode"}}``;
        default ``equal``, ``pca``, ``factor`` and ``optimised`` with their default options.
    level : int, default 2
        Level of the groups whose children are weighted (2 = indicators within pillars).
    region, survey_round
        The ranking compared (as for :class:`WhatIf`).

    Returns
    -------
    WeightingComparison
    """
    import warnings

    from .exceptions import InputError
    from .weights import derive_for, level_children

    schemes = dict(schemes if schemes is not None else {"equal": {}, "pca": {}, "factor": {}, "optimised": {}})
    w = WhatIf(result, region=region, survey_round=survey_round)
    children, groups = level_children(result.spec, level)
    used = result.weights
    used = used[used["level"] == level].set_index("child")
    table = pd.DataFrame({"group": groups.to_numpy(), "child": children,
                          "label": [result.spec.label(k) for k in children]})
    table["written"] = used["weight"].reindex(children).to_numpy(dtype=float)
    rows, notes, derivations, results = [], {}, {}, {}
    for name, options in schemes.items():
        row = {"scheme": name, "spearman": np.nan, "mean_abs_rank_shift": np.nan, "max_rank_shift": pd.NA,
               "category_changes": pd.NA, "error": ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the derivation lists its warnings
                d = derive_for(result, name, level, **dict(options or {}))
            new = result.recompute(d.spec_changes())
        except InputError as exc:
            row["error"] = str(exc)
            notes[name] = [f"Not derived: {exc}"]
            table[name] = np.nan
            rows.append(row)
            continue
        derivations[name], results[name] = d, new
        table[name] = d.weights.reindex(children).to_numpy(dtype=float)
        s = w.summary(new)
        row.update(spearman=s["spearman"], mean_abs_rank_shift=s["mean_abs_rank_shift"],
                   max_rank_shift=s["max_rank_shift"], category_changes=s["category_changes"])
        notes[name] = list(d.notes) + [f"Warning: {m}" for m in d.warnings]
        rows.append(row)
    agreement = pd.DataFrame(rows, columns=["scheme", "spearman", "mean_abs_rank_shift", "max_rank_shift",
                                            "category_changes", "error"])
    for col in ("max_rank_shift", "category_changes"):
        agreement[col] = agreement[col].astype("Int64")
    return WeightingComparison(weights=table, agreement=agreement, notes=notes, derivations=derivations,
                               results=results, scope=w.scope_name,
                               group_labels={g: result.spec.label(g) for g in dict.fromkeys(groups)})


# --------------------------------------------------------------------------- widgets
def _fmt(x, digits: int = 1, sign: bool = False) -> str:
    if x is None or x is pd.NA or (isinstance(x, float) and np.isnan(x)):
        return "–"
    return f"{float(x):{'+' if sign else ''},.{digits}f}"


class WhatIfUI:
    """The what-if interface: sliders, a reset button and an output redrawn on every change.

    Build it with :func:`widget` (which returns :attr:`container`); this object is
    ``container.whatif_ui``.  Everything the interface draws comes from :attr:`whatif`, so it can
    be driven without a browser: set a slider's ``value`` and read :attr:`last`, :attr:`summary`,
    :attr:`error` or :attr:`output` (``output.outputs``).

    Attributes
    ----------
    whatif : WhatIf
    pillar_sliders : dict of str -> ipywidgets.FloatSlider
    indicator_sliders : dict of str -> ipywidgets.FloatSlider
        Empty without indicator sliders.
    reset_button : ipywidgets.Button
    output : ipywidgets.Output
        The ranking, category counts, movers and map; or the message of refused weights.
    container : ipywidgets.VBox
    last : Result
        The result drawn last (the base result at first).
    summary : dict
        Its :meth:`WhatIf.summary`.
    error : str or None
        The message of the weights last refused (None when the last weights were drawn).
    timings : dict
        Seconds of the last redraw: ``apply``, ``summary``, ``map``, ``redraw`` (all of it).
    redraws : int
        Number of redraws so far.
    """

    def __init__(self, result, region: str | None = None, survey_round: Any = LATEST, *,
                 indicators: bool = True, draw_map: bool = True, top: int = TOP, geo: dict | None = None):
        import ipywidgets as W

        from .report import notebook as nb
        from .report.context import map_layers

        self.whatif = WhatIf(result, region=region, survey_round=survey_round)
        self.top = top
        self.draw_map = draw_map
        self.geo = (map_layers(result) if geo is None else geo) if draw_map else {}
        self.last = result
        self.summary: dict = {}
        self.error: str | None = None
        self.timings: dict[str, float] = {}
        self.redraws = 0
        self._hold = False
        wide = {"description_width": "16em"}
        slider = dict(min=0.0, max=SLIDER_MAX, step=SLIDER_STEP, continuous_update=False, readout_format=".2f",
                      style=wide, layout=W.Layout(width="34em"))
        w = self.whatif
        self.pillar_sliders = {p: W.FloatSlider(value=w.pillar_weights[p], description=w.label(p), **slider)
                               for p in w.pillars}
        self.indicator_sliders: dict = {}
        if indicators:
            ind = dict(slider, style={"description_width": "24em"}, layout=W.Layout(width="44em"))
            for p in w.pillars:
                for i in w.indicators[p]:
                    self.indicator_sliders[i] = W.FloatSlider(value=w.indicator_weights[i],
                                                              description=_short(w.label(i), 48), **ind)
        self.reset_button = W.Button(description="reset", tooltip="back to the spec's weights", icon="undo")
        self.output = W.Output(layout=W.Layout(min_height="20em"))
        for s in [*self.pillar_sliders.values(), *self.indicator_sliders.values()]:
            s.observe(self._on_change, names="value")
        self.reset_button.on_click(lambda _button: self.reset())
        parts = [W.HTML(nb.CSS + nb.illustrative_banner_html(result.source.get("name", ""))
                        if result.illustrative else nb.CSS),
                 W.HTML(f"<b>What if the weights were different?</b> Ranking of {html.escape(w.scope_name)}. "
                        "Weights count relative to the others of their group (0 leaves one out)."),
                 W.VBox(list(self.pillar_sliders.values()))]
        if indicators:
            acc = W.Accordion(children=[W.VBox([self.indicator_sliders[i] for i in w.indicators[p]])
                                        for p in w.pillars], selected_index=None)
            for k, p in enumerate(w.pillars):
                acc.set_title(k, f"Indicators of {w.label(p)}")
            parts.append(acc)
        parts += [self.reset_button, self.output]
        self.container = W.VBox(parts)
        self.container.whatif_ui = self
        self.redraw()

    # ---- state
    @property
    def pillar_weights(self) -> dict[str, float]:
        return {k: float(s.value) for k, s in self.pillar_sliders.items()}

    @property
    def indicator_weights(self) -> dict[str, float]:
        return {k: float(s.value) for k, s in self.indicator_sliders.items()}

    def _on_change(self, _change) -> None:
        if not self._hold:
            self.redraw()

    def reset(self) -> None:
        """Every slider back to its starting weight, then one redraw."""
        self._hold = True
        try:
            for k, s in self.pillar_sliders.items():
                s.value = self.whatif.pillar_weights[k]
            for k, s in self.indicator_sliders.items():
                s.value = self.whatif.indicator_weights[k]
        finally:
            self._hold = False
        self.redraw()

    # ---- drawing
    def redraw(self) -> None:
        """Recompute with the sliders' weights and draw the ranking, categories and map again."""
        self.redraws += 1
        d = _draw(self.whatif, self.pillar_weights, self.indicator_weights or None, top=self.top,
                  draw_map=self.draw_map, geo=self.geo)
        self.error, self.timings = d.error, d.timings
        if d.error is None:
            self.last, self.summary = d.result, d.summary
        self._show(d.bundles)

    def _show(self, bundles: list[dict]) -> None:
        # replace the output's content in one assignment: no flicker, works with or without a kernel
        self.output.outputs = tuple(bundles)

    def summary_html(self, s: dict) -> str:
        """The summary as escaped HTML tables (ranking, categories, movers)."""
        return _summary_html(self.whatif, s, self.top)


@dataclass
class _Drawing:
    """What the what-if draws for some weights: output bundles, and the result, summary or error."""

    bundles: list
    result: Any = None
    summary: dict = field(default_factory=dict)
    error: str | None = None
    timings: dict = field(default_factory=dict)


def _draw(w: WhatIf, pillar_weights=None, indicator_weights=None, *, top: int = TOP, draw_map: bool = True,
          geo: dict | None = None) -> _Drawing:
    """The ranking, categories, movers and map of ``w`` at these weights (or the message refusing them)."""
    from .exceptions import SpecError

    t0 = time.perf_counter()
    try:
        result = w.apply(pillar_weights, indicator_weights)
    except SpecError as exc:
        error = exc.message if getattr(exc, "message", None) else str(exc)
        return _Drawing([_html_bundle(_error_html(error))], error=error,
                        timings={"apply": w.timings.get("apply", float("nan")), "redraw": time.perf_counter() - t0})
    summary = w.summary(result, top=top)
    bundles = [_html_bundle(_summary_html(w, summary, top))]
    t_map = time.perf_counter()
    if draw_map:
        bundles.append(_map_bundle(w, result, geo))
    timings = {"apply": w.timings["apply"], "summary": w.timings["summary"], "map": time.perf_counter() - t_map,
               "redraw": time.perf_counter() - t0}
    return _Drawing(bundles, result=result, summary=summary, timings=timings)


def _map_bundle(w: WhatIf, result, geo: dict | None) -> dict:
    from .report import figures
    from .report import notebook as nb
    from .report.context import map_layers

    geo = map_layers(result) if geo is None else geo
    ctx = context_for(result, w.region, w.round if w.round is not None else LATEST, geo=geo)
    fig = figures.region_map(ctx) if ctx.region is not None else figures.country_map(ctx)
    png = nb.figure_png(fig)
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(png).decode("ascii"),
                     "text/plain": f"<map of {w.scope_name}>"}}


def _summary_html(w: WhatIf, s: dict, top: int = TOP) -> str:
    """The summary as escaped HTML tables (ranking, categories, movers)."""
    from .report import notebook as nb

    shares = ", ".join(f"{w.label(k)} {v:.0%}" for k, v in s["weights"].items())
    head = (f"<p><b>{html.escape(s['scope'])}</b>: {s['n_locations']:,} locations · pillar shares: "
            f"{html.escape(shares)} · Spearman correlation with the written weights' ranking "
            f"{_fmt(s['spearman'], 3)} · mean rank shift {_fmt(s['mean_abs_rank_shift'], 1)} "
            f"(largest {s['max_rank_shift']}) · {s['category_changes']} changed category</p>")
    return (head + nb.heading_html(f"Top {top}", 4) + nb.table_html(_reader(w, s["ranking"]))
            + nb.heading_html("Locations and people per category", 4)
            + nb.table_html(_reader_categories(s["categories"]), digits=0)
            + nb.heading_html("Largest rank changes", 4)
            + (nb.table_html(_reader(w, s["movers"])) if len(s["movers"])
               else "<p>No location changed rank.</p>"))


def _reader(w: WhatIf, t: pd.DataFrame) -> pd.DataFrame:
    c = w.base.spec.columns
    names = {c.location: "P-code", c.name: "Location", "index": "Index", "category": "Category",
             "rank": "Rank", "base_index": "Index before", "base_category": "Category before",
             "base_rank": "Rank before", "rank_change": "Change in rank"}
    if len(c.admin_names) > 1:
        names[c.admin_names[1]] = "Cercle"
    order = [k for k in ["rank", c.name, c.admin_names[1] if len(c.admin_names) > 1 else None, c.location,
                         "index", "category", "base_rank", "base_index", "base_category", "rank_change"]
             if k and k in t.columns]
    out = t[order].rename(columns=names)
    out["Change in rank"] = out["Change in rank"].map(lambda v: "–" if pd.isna(v) else f"{int(v):+d}")
    return out


def _reader_categories(t: pd.DataFrame) -> pd.DataFrame:
    out = t.rename(columns={"category": "Category", "locations": "Locations", "base_locations": "before",
                            "change": "Change"})
    for col in PEOPLE:
        if col in t.columns:
            label = "IDPs" if col == "idps" else col.capitalize()
            out = out.rename(columns={col: label, f"base_{col}": f"{label} before",
                                      f"{col}_change": f"Change in {label}"})
    return out


def _short(text: str, n: int) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"


def _html_bundle(text: str) -> dict:
    return {"output_type": "display_data", "metadata": {}, "data": {"text/html": text, "text/plain": "what-if"}}


def _error_html(message: str) -> str:
    from .report import notebook as nb

    return (f'<div role="alert" style="{nb.CAVEAT_STYLE}"><strong>These weights cannot be used.</strong> '
            f"{html.escape(message)}</div>")


#: What the static copy says about the sliders (also in the notebook's text).
STATIC_NOTE = ("A static copy of what the what-if draws, with the weights below: it does not move. Moving the "
               "sliders needs JupyterLab with a running kernel (ipywidgets); in an exported page or a notebook "
               "opened without a kernel the interactive version is empty.")


class StaticWhatIf:
    """What :func:`widget` draws for some weights, as plain HTML (tables, the map as an embedded PNG).

    Displayed in a notebook it is a ``text/html`` output, so an exported page (nbconvert) or a
    notebook opened without a kernel shows it, where the widget needs a running kernel and
    JavaScript from a CDN.  Build it with :func:`static`.

    Attributes
    ----------
    html : str
        The whole rendering (escaped HTML, no script, no link to the network).
    summary : dict
        :meth:`WhatIf.summary` of the weights drawn (empty when they were refused).
    result : Result or None
    error : str or None
        The message of refused weights.
    pillar_weights, indicator_weights : dict of str -> float
        The slider values drawn.
    """

    def __init__(self, html_text: str, drawing: _Drawing, pillar_weights: dict, indicator_weights: dict):
        self.html = html_text
        self.summary = drawing.summary
        self.result = drawing.result
        self.error = drawing.error
        self.pillar_weights = pillar_weights
        self.indicator_weights = indicator_weights

    def _repr_html_(self) -> str:
        return self.html

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {"text/html": self.html, "text/plain": "what-if of the weights (static copy)"}


def static(result, region: str | None = None, survey_round: Any = LATEST, *, pillar_weights: Mapping | None = None,
           indicator_weights: Mapping | None = None, draw_map: bool = True, top: int = TOP,
           geo: dict | None = None) -> StaticWhatIf:
    """What the what-if interface draws, without widgets: readable in an exported page.

    The same ranking, categories, largest rank changes and map as :func:`widget` (the same code
    draws both), at the written weights by default (what the widget first shows), with a table of
    the weights drawn and a note that moving the sliders needs JupyterLab with a running kernel.

    Parameters
    ----------
    result, region, survey_round
        As for :func:`widget`.
    pillar_weights, indicator_weights : mapping, optional
        Slider values (id -> weight); the starting (written) weights when not given.
    draw_map, top, geo
        As for :func:`widget`.

    Returns
    -------
    StaticWhatIf
        Displays as HTML in a notebook; its ``html`` is the rendering.
    """
    from .report import notebook as nb

    w = WhatIf(result, region=region, survey_round=survey_round)
    pw = w._merged(pillar_weights, w.pillar_weights, "pillar")
    iw = w._merged(indicator_weights, w.indicator_weights, "indicator")
    d = _draw(w, pw, iw, top=top, draw_map=draw_map, geo=geo)
    written = not w.changes(pw, iw)
    shares = d.summary.get("weights", {})
    pillars = pd.DataFrame({"Pillar": [w.label(p) for p in w.pillars], "id": w.pillars,
                            "Slider (weight)": [pw[p] for p in w.pillars],
                            "Share of the index": [shares.get(p, np.nan) for p in w.pillars]})
    moved = {i: v for i, v in iw.items() if v != w.indicator_weights[i]}
    parts = [nb.CSS, nb.illustrative_banner_html(result.source.get("name", "")) if result.illustrative else "",
             f"<p><b>What if the weights were different?</b> Ranking of {html.escape(w.scope_name)}, "
             f"{'with the written weights' if written else 'with the weights below'}.</p>",
             f'<p class="stability-note">{html.escape(STATIC_NOTE)}</p>',
             nb.heading_html("Weights drawn", 4), nb.table_html(pillars, digits=2),
             "<p>" + html.escape("Indicators within their pillar: " + (
                 "as written." if not moved else "as written, except "
                 + ", ".join(f"{w.label(i)} {v:g}" for i, v in moved.items()) + ".")) + "</p>"]
    for b in d.bundles:
        data = b["data"]
        if "text/html" in data:
            parts.append(data["text/html"])
        elif "image/png" in data:
            parts.append(f'<p><img src="data:image/png;base64,{data["image/png"]}" '
                         f'alt="{html.escape(data.get("text/plain", "map"))}" style="max-width: 100%; height: auto;">'
                         "</p>")
    return StaticWhatIf("\n".join(p for p in parts if p), d, pw, iw)


def weights_table(result) -> pd.DataFrame:
    """The weights of a result for readers: labels where people look, the ids beside them.

    Returns
    -------
    DataFrame
        One row per child of every aggregate (``result.weights``' order): ``Component`` (the
        child's label), ``id``, ``Within`` (the parent's label), ``parent id``, ``Written`` (share
        of the parent as written), ``Used`` (share in use: the same unless the spec derives the
        level from the data), ``Method``, ``Weighs`` (what is weighted: "indicator within its
        pillar", ...).
    """
    spec = result.spec
    t = result.weights
    names = {k: str(lv.name) for k, lv in enumerate(spec.levels, start=1)}
    top = len(spec.levels)

    def what(level: int) -> str:
        child, parent = names.get(level - 1, f"level {level - 1}"), names.get(level, f"level {level}")
        return f"{child} within {'the' if level == top else 'its'} {parent}".lower()

    return pd.DataFrame({"Component": [spec.label(c) for c in t["child"]], "id": t["child"].to_numpy(),
                         "Within": [spec.label(p) for p in t["parent"]], "parent id": t["parent"].to_numpy(),
                         "Written": t["written"].to_numpy(dtype=float), "Used": t["weight"].to_numpy(dtype=float),
                         "Method": t["method"].to_numpy(), "Weighs": [what(int(lv)) for lv in t["level"]]})


def widget(result, region: str | None = None, survey_round: Any = LATEST, *, indicators: bool = True,
           draw_map: bool = True, top: int = TOP, geo: dict | None = None):
    """The what-if interface of the weights, for JupyterLab (ipywidgets).

    One slider per pillar (0 to :data:`SLIDER_MAX` by :data:`SLIDER_STEP`, starting at the spec's
    weights), an accordion of indicator sliders per pillar, a reset button and an output that is
    redrawn when a slider is released (``continuous_update=False``): the region's top ranking with
    each location's change in rank, locations and people per category against the spec's weights,
    the largest rank changes and the region's map (:func:`stability.report.figures.region_map`;
    the country map without a region).  Weights the spec refuses (every pillar at 0) show the
    message in the output instead.  Needs a live kernel to react; without one it is only built.

    Parameters
    ----------
    result : stability.pipeline.Result
    region : str, optional
        Admin-1 p-code; None or "" for the whole country.
    survey_round : int or str, default "latest"
    indicators : bool, default True
        Add the indicator sliders.
    draw_map : bool, default True
        Draw the map (about 0.2 s per redraw).
    top : int
        Rows of the ranking and of the movers.
    geo : dict, optional
        Map layers (:func:`stability.report.context.map_layers`), computed when None.

    Returns
    -------
    ipywidgets.VBox
        The interface; its state (:class:`WhatIfUI`) is ``.whatif_ui``.
    """
    return WhatIfUI(result, region, survey_round, indicators=indicators, draw_map=draw_map, top=top,
                    geo=geo).container
