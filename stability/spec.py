"""The index specification: a YAML recipe validated with pydantic.

A spec says everything needed to turn survey answers into an index: which
columns identify a location, a round and a key informant; how answers are coded;
the indicators with their pillar, direction, weight and goalposts; the hierarchy
(indicator -> pillar -> ... -> index) with an aggregation method per level; and
the options of every pipeline step (combine, impute, treat, normalise, rank,
categories).  The spec is the recipe of an index: change one option with
:meth:`IndexSpec.with_changes` and recompute.

Examples
--------
>>> spec = load_spec("data/specs/mali.yaml")            # doctest: +SKIP
>>> spec.hash                                           # doctest: +SKIP
'5f0c1b2a9e3d'
>>> z = spec.with_changes({"normalise.method": "zscore"})  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar, Iterator, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .exceptions import SpecError
from .io import parse_yaml

#: The steps of the pipeline, in order.  Every option of the spec belongs to the
#: first step that reads it (``prepare`` = reading and combining the answers;
#: ``ranked`` = ranks, categories and everything that changes no number, such as
#: labels): changing it re-runs that step and the ones after it.
STEP_ORDER = ("prepare", "denominated", "imputed", "treated", "normalised", "aggregated", "ranked")


class FieldError(ValueError):
    """A rule of the spec broken at a known option (``field``: its dotted path)."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def _registry(option: str):
    from .registry import families

    return families()[option]


class _Model(BaseModel):
    """A section of the spec.

    ``step`` is the pipeline step that reads the section's options, and
    ``field_steps`` the options read earlier or later than that (see
    :data:`STEP_ORDER`); :func:`iter_options` uses them to tell which steps a
    change affects.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    step: ClassVar[str] = "ranked"
    field_steps: ClassVar[dict[str, str]] = {}


class Columns(_Model):
    """Columns that identify units and place them.

    Attributes
    ----------
    location : str
        Location identifier (one score per location and round).
    round : str or None
        Survey round; ``None`` for a single cross-section.
    key_informant : str or None
        Key-informant identifier when the answers have one row per informant.
    name : str or None
        Human-readable location name carried to the outputs.
    admin : list of str
        Administrative p-code columns, coarsest first (e.g. region, cercle).
        The first one is the "region" for within-region ranks.
    admin_names : list of str
        Columns with the names of those admin units, in the same order (for reports).
    longitude, latitude : str or None
        Point coordinates (WGS 84) for maps and the GeoPackage output.
    pcodes : str or None
        Reference list the admin p-codes must belong to: ``ocha`` (the embedded
        OCHA list for Mali, Burkina Faso and Niger) or the path of a CSV with
        ``P-Code`` and ``Parent P-Code`` columns; ``None`` skips the check.
    coordinates : {"warning", "error", "off"}
        How ``validate`` reports a point that is not where its admin p-codes say
        (see :mod:`stability.locations`): outside the country, or with latitude
        and longitude swapped, is a warning (default) or an error; a point in
        another cercle of the country and a location without coordinates are
        always warnings; ``off`` (or ``false``) checks only that coordinates are
        numbers in range.
    coordinate_tolerance : float
        Metres a point may lie outside its declared polygon (and the country)
        before it is reported: the embedded boundaries are simplified (default 5000).
    keep : list of str or None
        Further columns of the answers or the location register to carry to the
        outputs even though they look like personal data (informant names,
        phones, GPS, free text: see :mod:`stability.privacy`, which leaves those
        out unless the spec names them).  One name may be given as a string.
    """

    step: ClassVar[str] = "prepare"

    location: str = "location_id"
    round: str | None = "round"
    key_informant: str | None = None
    name: str | None = None
    admin: list[str] = Field(default_factory=list)
    admin_names: list[str] = Field(default_factory=list)
    longitude: str | None = None
    latitude: str | None = None
    pcodes: str | None = None
    coordinates: Literal["warning", "error", "off"] = "warning"
    coordinate_tolerance: float = Field(5000.0, ge=0)

    @field_validator("coordinates", mode="before")
    @classmethod
    def _coordinates_off(cls, value):
        # YAML reads an unquoted ``off`` as false (and ``on`` as true)
        return {False: "off", True: "warning"}.get(value, value) if isinstance(value, bool) else value

    keep: list[str] | None = None

    @field_validator("keep", mode="before")
    @classmethod
    def _one_column(cls, value):
        return [value] if isinstance(value, str) else value


class AnswerType(_Model):
    """How one kind of answer is coded.

    ``codes`` maps answer labels to numbers (``null`` = missing, e.g. "don't
    know"); a column of that type may hold the labels or the numeric codes.
    Without ``codes`` answers are numbers, checked against ``range``.
    """

    step: ClassVar[str] = "prepare"

    codes: dict[str, float | None] | None = None
    range: tuple[float | None, float | None] | None = None
    integer: bool = False

    @model_validator(mode="after")
    def _check(self):
        if self.codes is not None:
            numbers = [v for v in self.codes.values() if v is not None]
            if len(numbers) < 2:
                raise ValueError("'codes' needs at least two non-missing codes")
        if self.range is not None:
            lo, hi = self.range
            if lo is not None and hi is not None and not lo < hi:
                raise ValueError(f"range [{lo}, {hi}] is empty")
        return self

    @property
    def valid_range(self) -> tuple[float | None, float | None]:
        """Smallest and largest valid value (``None`` for unbounded)."""
        if self.codes is not None:
            numbers = [v for v in self.codes.values() if v is not None]
            return (min(numbers), max(numbers))
        return self.range or (None, None)


class Combine(_Model):
    """Combine several key informants' answers into one value per location and round.

    ``method`` is the default (``median`` or ``mode`` or ``mean``); ties of the
    mode take the mean of the tied values.  ``disagreement`` of an indicator at a
    location is the mean absolute deviation of the informants' answers from the
    combined value divided by the span of valid values (0 = all agree, up to 1);
    it is flagged when it reaches ``disagreement_threshold``.
    """

    step: ClassVar[str] = "prepare"

    method: Literal["median", "mode", "mean"] = "median"
    disagreement_threshold: float = Field(0.3, gt=0, le=1)
    min_informants: int = Field(1, ge=1)


class Impute(_Model):
    """Fill missing indicator values (every imputed cell is logged).

    ``group`` names an admin column for ``group_mean``/``group_median``; cells of
    a group with no observed value fall back to ``fallback`` over all units
    (``none`` leaves them missing, as COINr does).
    """

    step: ClassVar[str] = "imputed"

    method: str = "none"
    group: str | None = None
    fallback: str = "none"

    @field_validator("method", "fallback")
    @classmethod
    def _known(cls, v):
        return _registry("impute.method").check(v)

    @model_validator(mode="after")
    def _check(self):
        methods = _registry("impute.method")
        if methods[self.method].grouped and not self.group:
            raise ValueError(f"imputation '{self.method}' needs 'group' (an admin column)")
        if methods[self.fallback].grouped:
            raise ValueError(f"the fallback must be an imputation over all units, not '{self.fallback}'")
        return self

    @property
    def grouped(self) -> bool:
        """True when the method imputes within groups (the ``group`` column)."""
        return bool(_registry("impute.method")[self.method].grouped)


class Treat(_Model):
    """Outlier treatment, COINr ``Treat()`` defaults.

    An indicator fails when ``|skew| >= skew_thresh`` and ``kurt >= kurt_thresh``.
    Failing indicators are winsorised one value at a time (up to ``winmax``
    points); if that is not enough and ``log_fallback`` is on, the original values
    are log-transformed instead.

    Indicators with coded answers (yes/no, shares) are bounded: they can be
    skewed but have no outliers, so they are left alone unless ``coded`` is on.
    """

    step: ClassVar[str] = "treated"

    method: Literal["none", "winsorise"] = "winsorise"
    coded: bool = False
    winmax: int = Field(5, ge=0)
    skew_thresh: float = Field(2.0, gt=0)
    kurt_thresh: float = Field(3.5)
    log_fallback: bool = True


class Normalise(_Model):
    """Bring indicators onto a common scale, after applying their direction.

    Methods: ``minmax`` onto ``[l, u]``; ``zscore`` with mean ``m`` and sd ``s``
    (sample sd); ``rank``; ``percentile`` (percentile rank times ``scale``);
    ``goalposts`` ``clip((x - lower)/(upper - lower), 0, 1) * scale`` using each
    indicator's goalposts (default: its valid range); ``dist2target``
    ``1 - (target - x)/(max - min)`` (``target_basis: range``, the handbook's) or
    COINr's ``(x - min)/(target - min)`` (``target_basis: target``), capped at 1
    when ``cap``, times ``scale``; ``none``.

    ``scope`` says which rows the data-driven statistics (min, max, mean, sd,
    ranks, outlier bounds, imputation values) come from: each round on its own
    (``round``), all rounds together (``pooled``) or one ``reference_round``
    whose parameters are applied to every round.
    """

    step: ClassVar[str] = "normalised"
    # imputation and outlier treatment take their statistics from the same rows
    field_steps: ClassVar[dict[str, str]] = {"scope": "imputed", "reference_round": "treated"}

    method: str = "minmax"
    l: float = 0.0
    u: float = 100.0
    m: float = 0.0
    s: float = 1.0
    scale: float = 100.0
    target_basis: Literal["range", "target"] = "range"
    cap: bool = True
    scope: Literal["round", "pooled", "reference"] = "round"
    reference_round: Any = None

    @field_validator("method")
    @classmethod
    def _known(cls, v):
        return _registry("normalise.method").check(v)

    @model_validator(mode="after")
    def _check(self):
        if self.method == "minmax" and not self.l < self.u:
            raise ValueError(f"minmax needs l < u, got l={self.l}, u={self.u}")
        if self.method == "zscore" and not self.s > 0:
            raise ValueError("zscore needs s > 0")
        if self.scope == "reference" and self.reference_round is None:
            raise ValueError("scope 'reference' needs 'reference_round'")
        return self


class IndicatorNormalise(_Model):
    """Per-indicator override of the normalisation method and its parameters."""

    step: ClassVar[str] = "normalised"

    method: str | None = None
    l: float | None = None
    u: float | None = None
    m: float | None = None
    s: float | None = None
    scale: float | None = None

    @field_validator("method")
    @classmethod
    def _known(cls, v):
        return v if v is None else _registry("normalise.method").check(v)


class Wording(_Model):
    """Plain words for an indicator's answer, used by :mod:`stability.explain` (reports' driver lines).

    Each phrase states the answer a location gave, never a score: ``"no robbery
    reported"``, ``"most residents have enough drinking water"``, ``"3 security
    incidents in the last 3 months"``.  Which fields apply depends on the
    indicator's answer type; a field left out falls back to ``"<label>: <answer>"``
    (see :func:`stability.explain.answer_phrase`).  Placeholders are replaced as
    plain text (no other braces are interpreted).

    Attributes
    ----------
    yes, no : str, optional
        Answer types with two codes (yes/no): the phrases for the answers
        labelled yes and no (with other labels: ``yes`` for the higher code,
        ``no`` for the lower one).
    scale : str, optional
        Answer types with more than two codes (none/some/most/all): a template in
        which ``{answer}`` becomes the answer's label (``"{answer} of the residents
        have enough drinking water"``), or ``"<lower> to <upper>"`` when the
        informants' combined answer falls between two codes.
    count : str, optional
        Numeric answers: a template in which ``{n}`` becomes the number (``"{n}
        security incidents in the last 3 months"``) and, for an indicator with a
        ``denominator``, ``{rate}`` the value per ``denominator_scale``.
    one, zero : str, optional
        Numeric answers: the phrase when the number is exactly 1 or 0 (same
        placeholders as ``count``).
    """

    yes: str | None = None
    no: str | None = None
    scale: str | None = None
    count: str | None = None
    one: str | None = None
    zero: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _yaml_booleans(cls, data):
        # YAML 1.1 reads unquoted ``yes:`` / ``no:`` keys as true / false
        if isinstance(data, dict):
            data = {({True: "yes", False: "no"}[k] if isinstance(k, bool) else k): v for k, v in data.items()}
        return data


#: The eight criteria of the IASC Framework on Durable Solutions for Internally Displaced Persons
#: (2010): short id -> full name.  ``Indicator.iasc`` tags an indicator with one of them.
IASC_CRITERIA = {
    "safety_security": "long-term safety, security and freedom of movement",
    "standard_of_living": "adequate standard of living",
    "livelihoods": "access to livelihoods and employment",
    "hlp": "restoration of housing, land and property",
    "documentation": "access to documentation",
    "family_reunification": "family reunification",
    "participation": "participation in public affairs",
    "remedies_justice": "access to effective remedies and justice",
}


class Indicator(_Model):
    """One indicator (a question of the key-informant survey, or any column).

    Attributes
    ----------
    id : str
        Column name in the data.
    label : str
        Readable name for reports.
    parent : str
        Id of the aggregate (e.g. pillar) it belongs to.
    direction : {1, -1}
        +1 when a higher value means more stable, -1 when less stable.
    weight : float
        Weight within its parent (re-normalised among present siblings).
    answers : str or None
        Name of an answer type of the spec (``None`` = plain numbers).
    range : [low, high], optional
        Valid values (overrides the answer type's).
    goalposts : [lower, upper], optional
        Fixed bounds for ``goalposts`` normalisation (default: valid range).
    target : float, optional
        Target for ``dist2target`` normalisation (in the indicator's units).
    denominator : str, optional
        Column to divide by (e.g. population), times ``denominator_scale``.
    combine : {"median", "mode", "mean"}, optional
        Override of how key-informant answers are combined.
    treat : bool
        ``False`` exempts the indicator from outlier treatment.
    normalise : IndicatorNormalise, optional
        Override of the normalisation method or its parameters.
    say : Wording, optional
        Plain words for the answers (``{yes: "armed groups present", no: "no armed
        groups"}``), for the reports' driver lines; changes no number.
    iasc : str, optional
        The IASC durable-solutions criterion the indicator informs (an id of
        :data:`IASC_CRITERIA`, e.g. ``documentation``), or ``untagged`` when it
        deliberately informs none (say why in ``iasc_note``); read by
        :mod:`stability.priorities`, changes no number.
    iasc_note : str, optional
        Why the indicator has that tag (or none), shown with the criteria tables.
    """

    step: ClassVar[str] = "prepare"
    field_steps: ClassVar[dict[str, str]] = {
        "label": "ranked", "parent": "aggregated", "weight": "aggregated", "direction": "normalised",
        "goalposts": "normalised", "target": "normalised", "denominator_scale": "denominated",
        "treat": "treated", "normalise": "normalised", "say": "ranked", "iasc": "ranked",
        "iasc_note": "ranked"}

    id: str
    label: str = ""
    parent: str
    direction: Literal[1, -1] = 1
    weight: float = Field(1.0, ge=0)
    answers: str | None = None
    range: tuple[float | None, float | None] | None = None
    goalposts: tuple[float, float] | None = None
    target: float | None = None
    denominator: str | None = None
    denominator_scale: float = 1.0
    combine: Literal["median", "mode", "mean"] | None = None
    treat: bool = True
    normalise: IndicatorNormalise | None = None
    say: Wording | None = None
    iasc: Literal["safety_security", "standard_of_living", "livelihoods", "hlp", "documentation",
                  "family_reunification", "participation", "remedies_justice", "untagged"] | None = None
    iasc_note: str | None = None

    @field_validator("goalposts")
    @classmethod
    def _goalposts(cls, v):
        if v is not None and not v[0] < v[1]:
            raise ValueError(f"goalposts [{v[0]}, {v[1]}] need lower < upper")
        return v


class Aggregate(_Model):
    """A node above the indicators (pillar, sub-index, index)."""

    step: ClassVar[str] = "aggregated"
    field_steps: ClassVar[dict[str, str]] = {"label": "ranked"}

    id: str
    label: str = ""
    level: int = Field(ge=2)
    parent: str | None = None
    weight: float = Field(1.0, ge=0)


class Level(_Model):
    """How the scores of one level are made from their children's scores.

    Level 1 is the indicators; level ``k`` aggregates the scores of level ``k-1``.
    ``threshold`` is the data-availability threshold: a score is missing when the
    share of its children with a value is below it.
    """

    step: ClassVar[str] = "aggregated"
    field_steps: ClassVar[dict[str, str]] = {"name": "ranked"}

    name: str
    method: str = "arithmetic"
    p: float | None = None
    threshold: float | None = Field(None, ge=0, le=1)

    @field_validator("method")
    @classmethod
    def _known(cls, v):
        return _registry("levels.method").check(v)

    @model_validator(mode="after")
    def _check(self):
        method = _registry("levels.method")[self.method]
        for option in method.requires:
            if getattr(self, option) is None:
                raise ValueError(f"the {self.method} mean needs '{option}'")
        return self


class Rank(_Model):
    """Ranks: 1 = most stable, ties share the lowest rank, missing stays missing.

    ``within`` is the column for within-group ranks (default: the first admin
    column, i.e. the region).
    """

    within: str | None = None


#: Where the default categories cut the index: at these shares of its range
#: (40 and 60 on a 0-100 index), or at these quantiles when it has no fixed range.
DEFAULT_CATEGORY_SHARES = (0.4, 0.6)


class Categories(_Model):
    """Cut the index into ordered categories (least stable first).

    ``method: fixed``: ``cuts`` are values of the index, and a score ``x``
    falls in ``labels[i]`` when ``cuts[i-1] <= x < cuts[i]``; the index must be
    on a known scale (see :meth:`IndexSpec.index_range`) that contains them.
    ``method: quantile``: ``cuts`` are shares in (0, 1); each round's cut-offs
    are the quantiles of that round's index at those shares (for an index with
    no fixed scale: z-scores, ranks, outranking counts).
    Without ``method`` and ``cuts`` the categories follow the scale: cut-offs
    at 40 % and 60 % of the index's range (40 and 60 on 0-100), or at the 0.4
    and 0.6 quantiles of each round when the index has no fixed range.
    """

    method: Literal["fixed", "quantile"] | None = None
    cuts: list[float] | None = None
    labels: list[str] = Field(default_factory=lambda: ["low", "medium", "high"])

    @model_validator(mode="after")
    def _check(self):
        n_cuts = len(self.cuts) if self.cuts is not None else len(DEFAULT_CATEGORY_SHARES)
        if len(self.labels) != n_cuts + 1:
            raise ValueError(f"{n_cuts} cut-offs need {n_cuts + 1} labels, got {len(self.labels)}"
                             + ("" if self.cuts is not None else " (give 'cuts' for another number of labels)"))
        if self.cuts is not None and any(b <= a for a, b in zip(self.cuts, self.cuts[1:])):
            raise ValueError("category cut-offs must increase")
        if self.method == "quantile" and self.cuts is not None and any(not 0 < c < 1 for c in self.cuts):
            raise ValueError("quantile cut-offs are shares between 0 and 1 (e.g. [0.33, 0.67])")
        return self


class Priorities(_Model):
    """The durable-solutions lens (:mod:`stability.priorities`): IASC criteria met or unmet, and priority classes.

    A criterion (:data:`IASC_CRITERIA`) is *met* at a location when the mean of its
    indicators' normalised scores, as a share of their scale, is at least ``met``;
    *unmet* below ``unmet``; else *partly*; *not measured* without tagged indicators.
    Each location and round with displaced people falls in the first class whose
    rule holds: **urgent conditions for return** (at least ``returnees`` returnees, or
    ``returnee_share`` of the population, in a low-stability location); **local
    integration opportunity** (at least ``idps`` IDPs, or ``idp_share`` of the
    population, in a high-stability location); **candidate area of return** (a
    high-stability location whose ``nearby`` area hosts at least ``nearby_idps`` IDPs
    in low-stability locations: a proxy for "displaced from nearby", origins being
    unknown); **displaced in low stability** (at least ``idps`` IDPs, or ``idp_share``, in a
    low-stability location: assistance and protection, neither return nor local integration
    there yet); **monitor** (any other location with IDPs or returnees); else **no displaced
    people**.  Changes no number of the index.

    Attributes
    ----------
    met, unmet : float, optional
        Shares (0-1) of the scale; default: the categories' highest and lowest
        cut-offs as shares of the index's range (0.6 and 0.4 for cuts 40, 60 on
        0-100), or 0.6 and 0.4 when the index has no fixed range.
    returnees, idps : float
        People counts (defaults 100 each).
    returnee_share, idp_share : float, optional
        Shares (0-1) of ``population`` that also qualify (default: not used).
    nearby_idps : float
        IDPs hosted in low-stability locations of the same ``nearby`` area (default 500).
    nearby : str, optional
        Admin column of the "nearby" area (default: the second admin column, the cercle).
    idp_column, returnee_column, population_column : str
        Columns of the scores holding those counts (``idps``, ``returnees``, ``population``).
    """

    met: float | None = Field(None, gt=0, le=1)
    unmet: float | None = Field(None, ge=0, lt=1)
    returnees: float = Field(100.0, ge=0)
    returnee_share: float | None = Field(None, gt=0, le=1)
    idps: float = Field(100.0, ge=0)
    idp_share: float | None = Field(None, gt=0, le=1)
    nearby_idps: float = Field(500.0, ge=0)
    nearby: str | None = None
    idp_column: str = "idps"
    returnee_column: str = "returnees"
    population_column: str = "population"

    @model_validator(mode="after")
    def _check(self):
        if self.met is not None and self.unmet is not None and self.unmet > self.met:
            raise ValueError(f"'unmet' ({self.unmet:g}) must not be above 'met' ({self.met:g})")
        return self


def _within(value, name: str, rules: dict):
    """``value`` when it passes ``rules[name]`` (a test and what the value must be), else a one-line error."""
    ok, rule = rules[name]
    if not ok(value):
        raise ValueError(f"{name} must be {rule}, got {value:g}")
    return value


class Pockets(_Model):
    """Pockets of stability and hotspots of instability (:mod:`stability.pockets`): local spatial autocorrelation.

    Per round, local Moran's I of the index (by default relative to the median of
    the location's region, ``relative_to``) over a neighbour graph of the located
    locations (coordinates projected to metres), with conditional permutation
    inference: a location is a **pocket of stability** when it and its neighbours
    score significantly high together, a **hotspot of instability** when they
    score significantly low together; significant high-high (or low-low)
    locations linked in the graph form one area, named when it has at least
    ``min_size`` locations.  Changes no number of the index.

    Attributes
    ----------
    relative_to : {"region", "country"}
        ``region`` (default): the index minus the median of the location's region
        (first admin column) in the round, so that a pocket is a cluster more stable
        than its own region, also in an unstable region, and a whole stable region
        is not one pocket; ``country``: the index itself, against the country's mean.
    neighbours : {"knn", "distance"}
        The neighbour graph: the ``k`` nearest locations (default), or every
        location within ``distance_km``.
    k : int
        Nearest neighbours of each location (default 8; at least 1).
    distance_km : float
        Radius of the distance band in kilometres (default 50; read with ``neighbours: distance``).
    permutations : int
        Conditional permutations per location (default 999; at least 99).
    alpha : float
        Significance level, between 0 and 1 (default 0.05).
    correction : {"fdr", "none"}
        ``fdr`` (default): Benjamini-Hochberg over the locations of a round; ``none``: raw pseudo p-values.
    seed : int
        Seed of the permutations (default 12345): the same inputs give the same tables.
    min_size : int
        Least locations of a named area (default 3; at least 1).
    """

    relative_to: Literal["region", "country"] = "region"
    neighbours: Literal["knn", "distance"] = "knn"
    k: int = 8
    distance_km: float = 50.0
    permutations: int = 999
    alpha: float = 0.05
    correction: Literal["fdr", "none"] = "fdr"
    seed: int = 12345
    min_size: int = 3

    @field_validator("k", "distance_km", "permutations", "alpha", "seed", "min_size")
    @classmethod
    def _in_range(cls, v, info):
        return _within(v, info.field_name, _POCKET_RULES)


#: Rules of the ``pockets`` options: (test, what the value must be).
_POCKET_RULES = {
    "k": (lambda v: v >= 1, "at least 1 (nearest neighbours of each location)"),
    "distance_km": (lambda v: v > 0, "a positive number of kilometres"),
    "permutations": (lambda v: v >= 99, "at least 99 (pseudo p-values need them)"),
    "alpha": (lambda v: 0 < v < 1, "between 0 and 1 (e.g. 0.05)"),
    "seed": (lambda v: v >= 0, "a whole number of 0 or more"),
    "min_size": (lambda v: v >= 1, "at least 1 location"),
}


class UncertaintyWeights(_Model):
    """How the weights vary in the uncertainty analysis (``uncertainty.weights``).

    Every weight of the hierarchy varies (indicators within their pillar, pillars
    within the index, every level); a child whose nominal weight is 0 keeps it.
    ``weights: none`` (or ``noise``, ``dirichlet``) is short for ``{method: none}``.

    Attributes
    ----------
    method : {"noise", "dirichlet", "none"}
        ``noise`` (default): each weight is multiplied by ``1 + noise * u``, ``u``
        uniform on [-1, 1], independently (COINr's ``get_noisy_weights``);
        ``dirichlet``: the shares of the children of each aggregate are drawn from a
        Dirichlet distribution centred on their nominal shares, with parameters
        ``concentration * k * share`` for ``k`` children (with equal weights and
        ``concentration: 1``, every split of the weight is equally likely; larger
        values stay closer to the nominal shares); ``none``: the nominal weights.
    noise : float
        Relative noise of ``method: noise``, in [0, 1) (default 0.25: each weight
        within 25 % of its nominal value).  Read with ``method: noise`` only.
    concentration : float
        Concentration of ``method: dirichlet``, above 0 (default 1).  Read with
        ``method: dirichlet`` only.
    """

    method: Literal["noise", "dirichlet", "none"] = "noise"
    noise: float = 0.25
    concentration: float = 1.0

    @field_validator("noise", "concentration")
    @classmethod
    def _in_range(cls, v, info):
        return _within(v, info.field_name, _UNCERTAINTY_RULES)


class Uncertainty(_Model):
    """Uncertainty analysis (:mod:`stability.uncertainty`): how sure is each rank, category and change.

    Monte Carlo: each of ``runs`` replicates draws the modelling choices together
    (weights, and one alternative of every option listed here, uniformly) and/or
    resamples the key informants of every location and round, and recomputes the
    index; each location's ranks, categories and change are then summarised over
    the replicates (intervals from the ``(1 - level) / 2`` and ``(1 + level) / 2``
    quantiles, share of the runs in each category).  Changes no number of the index.

    The alternatives of an option (``normalise``, ``aggregate``, ``winmax``,
    ``impute``) are a list, ``true`` for every registered method that suits the
    index (see each option), or ``false`` (default) for the nominal choice only;
    one name may be written without the list.

    Attributes
    ----------
    runs : int
        Replicates (default 1000; at least 2).
    seed : int
        Seed (default 1; 0 or more).  Replicate ``r`` draws from
        ``numpy.random.default_rng([seed, r])``: the same seed gives the same tables
        however the replicates are chunked or distributed.
    sources : list of {"choices", "informants"}, optional
        What varies: the modelling ``choices`` (weights and the alternatives below),
        the key ``informants`` (within each location and round, as many informants as
        it had are drawn with replacement, their answers combined again, and the
        later steps applied with the nominal run's fitted parameters, so that only the
        informant sample varies; a location with one informant does not vary and is
        flagged), or both, drawn together in each replicate.  Default: both when the
        answers are one row per key informant (``columns.key_informant``), else
        ``choices``.
    weights : UncertaintyWeights
        How the weights vary (default: noise of 25 %).
    normalise : bool or list
        Alternatives of the normalisation: method names (``[goalposts, minmax]``) or
        mappings of ``normalise`` options (``{method: minmax, l: 1, u: 100}``); ``true``:
        every registered method that keeps the index on its nominal scale.  Each
        alternative must give an index on the nominal index's scale, the scale of
        the categories (checked when the analysis runs).
    aggregate : bool or list
        Alternatives of the aggregation, applied to every level together: method
        names or ``{method: generalised, p: 2}``; ``true``: every registered mean that
        needs no option (arithmetic, geometric, harmonic).  A mean that needs positive
        scores (geometric, harmonic, generalised with ``p <= 0``) on a normalisation
        whose range starts at 0 or below gets, in that replicate, the normalised
        scores mapped linearly from that range onto [1, 100], and its scores mapped
        back onto the range (so that the categories keep their meaning); with a
        normalisation that has no fixed range it is refused.
    winmax : bool or list
        Alternatives of the outlier treatment: most points winsorised (``treat.winmax``)
        or ``none`` (no treatment); ``true``: 1 to 5 and ``none``.
    impute : bool or list
        Alternatives of the imputation: method names or mappings of ``impute``
        options; ``true``: every registered method (those by group with the spec's
        ``impute.group``, only when it names one).
    include_nominal : bool
        The nominal choice is one of the alternatives of every option listed above,
        and of ``leave_one_out`` (default true).
    leave_one_out : bool
        Also leave one indicator out per replicate, drawn uniformly (default false):
        its weight is 0 and it does not count for the availability threshold of its
        aggregate.
    level : float
        Level of the intervals, between 0 and 1 (default 0.90: the 5th to the 95th
        percentile of the replicates).
    robust : float
        A location's category is robust when it is the same in at least this share
        of the runs, above 0 and at most 1 (default 0.90).
    chunk_mb : float
        Memory budget of one chunk of replicates, in MB (default 256).
    """

    runs: int = 1000
    seed: int = 1
    sources: list[Literal["choices", "informants"]] | None = None
    weights: UncertaintyWeights = Field(default_factory=UncertaintyWeights)
    normalise: bool | list[str | dict[str, Any]] = False
    aggregate: bool | list[str | dict[str, Any]] = False
    winmax: bool | list[int | Literal["none"]] = False
    impute: bool | list[str | dict[str, Any]] = False
    include_nominal: bool = True
    leave_one_out: bool = False
    level: float = 0.90
    robust: float = 0.90
    chunk_mb: float = 256.0

    @field_validator("sources", "normalise", "aggregate", "winmax", "impute", mode="before")
    @classmethod
    def _one_name(cls, v, info):
        if isinstance(v, (str, Mapping)) or (isinstance(v, int) and not isinstance(v, bool)):
            v = [v]
        if not isinstance(v, (list, tuple)):
            return v
        option = info.field_name
        for item in v:
            if option == "sources" and item not in ("choices", "informants"):
                raise ValueError(f"unknown source {item!r} (choose from: choices, informants)")
            if option == "winmax" and not (item == "none" or (isinstance(item, int) and not isinstance(item, bool))):
                raise ValueError(f"winmax alternatives are whole numbers of points or none, got {item!r}")
            if option in ("normalise", "aggregate", "impute") and not isinstance(item, (str, Mapping)):
                raise ValueError(f"{option} alternatives are method names or mappings of options, got {item!r}")
        return v

    @field_validator("weights", mode="before")
    @classmethod
    def _weights_shorthand(cls, v):
        if v is None or v is False:
            return {"method": "none"}
        return {"method": v} if isinstance(v, str) else v

    @field_validator("runs", "seed", "level", "robust", "chunk_mb")
    @classmethod
    def _in_range(cls, v, info):
        return _within(v, info.field_name, _UNCERTAINTY_RULES)

    @field_validator("sources")
    @classmethod
    def _sources(cls, v):
        if v is not None and not v:
            raise ValueError("sources needs at least one of 'choices', 'informants' (or leave it out)")
        if v is not None and len(set(v)) < len(v):
            raise ValueError(f"sources names a source twice: {', '.join(v)}")
        return v

    @field_validator("normalise", "aggregate", "impute")
    @classmethod
    def _methods(cls, v, info):
        if isinstance(v, bool):
            return v
        option = info.field_name
        if not v:
            raise ValueError(f"{option} needs at least one alternative (or false for the nominal choice only)")
        registry = _registry({"normalise": "normalise.method", "aggregate": "levels.method",
                              "impute": "impute.method"}[option])
        known = {"normalise": set(Normalise.model_fields), "impute": set(Impute.model_fields),
                 "aggregate": {"method", "p"}}[option]
        for item in v:
            entry = dict(item) if isinstance(item, Mapping) else {"method": item}
            stray = sorted(set(entry) - known)
            if stray:
                raise ValueError(f"{option} alternative {dict(item)}: unknown option {stray[0]!r} (options: "
                                 f"{', '.join(sorted(known))})")
            if "method" not in entry:
                raise ValueError(f"{option} alternative {dict(item)} needs 'method'")
            if not isinstance(entry["method"], str):
                raise ValueError(f"{option} alternatives are method names, got {entry['method']!r}")
            try:
                method = registry[entry["method"]]
            except KeyError:
                raise ValueError(f"{option}: {registry.unknown(entry['method'])}") from None
            if option == "aggregate":
                for need in method.requires:
                    if entry.get(need) is None:
                        raise ValueError(f"aggregate: the {method.name} mean needs '{need}': write "
                                         f"{{method: {method.name}, {need}: ...}}")
        return v

    @field_validator("winmax")
    @classmethod
    def _winmax(cls, v):
        if isinstance(v, bool):
            return v
        if not v:
            raise ValueError("winmax needs at least one alternative (or false for the nominal choice only)")
        bad = [k for k in v if k != "none" and k < 0]
        if bad:
            raise ValueError(f"winmax alternatives are 0 or more points, or none; got {bad[0]}")
        return v


#: Rules of the ``uncertainty`` options: (test, what the value must be).
_UNCERTAINTY_RULES = {
    "runs": (lambda v: v >= 2, "at least 2 replicates"),
    "seed": (lambda v: v >= 0, "a whole number of 0 or more"),
    "level": (lambda v: 0 < v < 1, "between 0 and 1 (e.g. 0.90 for the 5th to the 95th percentile)"),
    "robust": (lambda v: 0 < v <= 1, "above 0 and at most 1 (e.g. 0.90)"),
    "chunk_mb": (lambda v: v > 0, "a positive number of megabytes"),
    "noise": (lambda v: 0 <= v < 1, "at least 0 and below 1 (e.g. 0.25 for 25 %)"),
    "concentration": (lambda v: v > 0, "above 0 (e.g. 1)"),
}


class Round(_Model):
    """A survey round declared in the spec: its value in the data and a label for reports."""

    step: ClassVar[str] = "prepare"
    field_steps: ClassVar[dict[str, str]] = {"label": "ranked"}

    id: int | float | str
    label: str = ""


class Weighting(_Model):
    """Weights of one level's children derived from the data (``weights: {2: {method: pca}}``).

    The key is the level whose aggregates are weighted, numbered as ``aggregates[].level``
    (2 = the indicators within each pillar, 3 = the pillars within the next level...) or its
    name.  The derived weights replace the written ones of that level's children; the
    derivation (tables, notes) is kept in the result (:meth:`stability.pipeline.Result.weights`).
    Each method reads only its own options (see :data:`stability.weights.WEIGHTINGS`); an
    option set for a method that does not read it is an error.
    """

    step: ClassVar[str] = "aggregated"

    method: str
    rounds: list[int | float | str] | None = None
    min_rows: int = Field(5, ge=2)
    points: dict[str, float] | None = None
    total: float | None = Field(None, gt=0)
    rule: Literal["squared", "coinr"] = "squared"
    negative: Literal["refuse", "allow"] = "refuse"
    min_eigenvalue: float = Field(1.0, gt=0)
    min_variance: float = Field(0.10, ge=0, lt=1)
    extraction: Literal["pca", "ml"] = "pca"
    kaiser: bool = True
    outcome: str | None = None
    cluster: str | None = None
    model: Literal["auto", "logit", "fractional", "ols"] = "auto"
    alpha: float = Field(0.05, gt=0, lt=1)
    scale: Literal["raw", "sd"] = "raw"
    fallback: Literal["error", "equal"] = "error"
    target: Literal["equal"] | dict[str, float] = "equal"
    importance: Literal["correlation", "r2"] = "correlation"
    against: Literal["parent", "index"] = "parent"
    optimiser: Literal["least_squares", "coinr"] = "least_squares"
    maxiter: int = Field(500, ge=1)
    tol: float | None = Field(None, gt=0)

    #: Options of this section that are not the method's own (taken by the pipeline).
    COMMON: ClassVar[tuple[str, ...]] = ("method", "rounds")

    @field_validator("method")
    @classmethod
    def _known(cls, v):
        return _registry("weights.method").check(v)

    @model_validator(mode="after")
    def _own_options(self):
        scheme = _registry("weights.method")[self.method]
        fields = type(self).model_fields
        stray = sorted(k for k in set(fields) - set(scheme.params) - set(self.COMMON)
                       if getattr(self, k) != fields[k].get_default(call_default_factory=True))
        if stray:
            raise ValueError(f"the {self.method} weighting does not read {', '.join(repr(s) for s in stray)} "
                             f"(its options: {', '.join(scheme.params) or 'none'})")
        if self.method == "outcome" and not self.outcome:
            raise ValueError("the outcome weighting needs 'outcome': the column holding the outcome per location")
        if self.method == "budget" and not self.points:
            raise ValueError("the budget weighting needs 'points': points per child (indicator or aggregate id)")
        return self

    def options(self) -> dict:
        """The method's own options, as :func:`stability.weights.derive` takes them."""
        scheme = _registry("weights.method")[self.method]
        return {k: getattr(self, k) for k in scheme.params if k in type(self).model_fields}


class IndexSpec(_Model):
    """A whole index specification (see the module docstring and the README)."""

    field_steps: ClassVar[dict[str, str]] = {"answers": "prepare", "rounds": "prepare"}

    name: str
    description: str = ""
    version: str | int | None = None
    columns: Columns = Field(default_factory=Columns)
    answers: dict[str, AnswerType] = Field(default_factory=dict)
    indicators: list[Indicator]
    aggregates: list[Aggregate]
    levels: list[Level]
    combine: Combine = Field(default_factory=Combine)
    impute: Impute = Field(default_factory=Impute)
    treat: Treat = Field(default_factory=Treat)
    normalise: Normalise = Field(default_factory=Normalise)
    rank: Rank = Field(default_factory=Rank)
    categories: Categories = Field(default_factory=Categories)
    rounds: list[Round] | None = None
    weights: dict[str, Weighting] = Field(default_factory=dict)
    priorities: Priorities = Field(default_factory=Priorities)
    pockets: Pockets = Field(default_factory=Pockets)
    uncertainty: Uncertainty = Field(default_factory=Uncertainty)

    @field_validator("weights", mode="before")
    @classmethod
    def _weight_keys(cls, v, info):
        """Keys as level numbers (text), in level order; a level may be named."""
        if not isinstance(v, Mapping):
            return v
        levels = info.data.get("levels") or []
        names = {lv.name: str(n) for n, lv in enumerate(levels, start=1)}
        keyed: dict[str, Any] = {}
        for key, item in v.items():
            number = names.get(str(key), str(key))
            if not (number.isdigit() and 2 <= int(number) <= len(levels)):
                raise FieldError(f"no level '{key}' to weigh: levels 2 to {len(levels)} have children "
                                 f"(or name them: {', '.join(lv.name for lv in levels[1:])})", f"weights.{key}")
            if number in keyed:
                raise FieldError(f"level {number} is given twice", f"weights.{key}")
            keyed[number] = item
        return dict(sorted(keyed.items(), key=lambda kv: int(kv[0])))

    @field_validator("rounds")
    @classmethod
    def _rounds(cls, v):
        if v is None:
            return v
        from .rounds import check_declared

        check_declared([r.id for r in v])
        return v

    @model_validator(mode="after")
    def _check_hierarchy(self):
        ids = [i.id for i in self.indicators] + [a.id for a in self.aggregates]
        dupes = sorted({x for x in ids if ids.count(x) > 1})
        if dupes:
            raise ValueError(f"duplicate ids: {', '.join(dupes)}")
        if not self.indicators:
            raise ValueError("the spec has no indicators")
        n_levels = len(self.levels)
        if n_levels < 2:
            raise ValueError("'levels' needs at least two entries (indicators and one aggregate level)")
        by_id = {a.id: a for a in self.aggregates}
        for ind in self.indicators:
            if ind.answers is not None and ind.answers not in self.answers:
                raise ValueError(f"indicator '{ind.id}': unknown answer type '{ind.answers}'")
            parent = by_id.get(ind.parent)
            if parent is None:
                raise ValueError(f"indicator '{ind.id}': parent '{ind.parent}' is not an aggregate")
            if parent.level != 2:
                raise ValueError(f"indicator '{ind.id}': parent '{ind.parent}' is at level {parent.level}, not 2")
        roots = [a for a in self.aggregates if a.parent is None]
        for agg in self.aggregates:
            if agg.level > n_levels:
                raise ValueError(f"aggregate '{agg.id}' is at level {agg.level} but only {n_levels} levels are defined")
            if agg.parent is not None:
                parent = by_id.get(agg.parent)
                if parent is None:
                    raise ValueError(f"aggregate '{agg.id}': unknown parent '{agg.parent}'")
                if parent.level != agg.level + 1:
                    raise ValueError(f"aggregate '{agg.id}' (level {agg.level}): parent '{agg.parent}' "
                                     f"is at level {parent.level}, expected {agg.level + 1}")
            elif agg.level != n_levels:
                raise ValueError(f"aggregate '{agg.id}' has no parent but is not at the top level ({n_levels})")
        if len(roots) != 1:
            raise ValueError(f"the hierarchy needs exactly one top aggregate, found {len(roots)}: "
                             f"{', '.join(a.id for a in roots) or 'none'}")
        children = {a.id: 0 for a in self.aggregates}
        for node in [*self.indicators, *self.aggregates]:
            if node.parent is not None:
                children[node.parent] += 1
        empty = [k for k, v in children.items() if v == 0]
        if empty:
            raise ValueError(f"aggregates without children: {', '.join(empty)}")
        for ind in self.indicators:
            if ind.normalise is None and self.normalise.method == "dist2target" and ind.target is None:
                raise ValueError(f"indicator '{ind.id}': dist2target normalisation needs a 'target'")
        for agg in self.aggregates:
            kids = self.children(agg.id)
            if kids and not any(k.weight > 0 for k in kids):
                raise FieldError(f"aggregate '{agg.id}': every child has weight 0 ({', '.join(k.id for k in kids)}), "
                                 "so its score would be missing everywhere; give at least one a positive weight",
                                 f"aggregates.{agg.id}")
        self._check_weights()
        self.category_rule()  # fixed cut-offs must suit the index's scale
        return self

    def _check_weights(self) -> None:
        """``points`` and ``target`` of a derived level name exactly its children."""
        for number, scheme in self.weights.items():
            kids = {c.id for c in (self.indicators if number == "2" else self.aggregates_at(int(number) - 1))}
            for option in ("points", "target"):
                given = getattr(scheme, option)
                if isinstance(given, dict) and set(given) != kids:
                    extra, missing = sorted(set(given) - kids), sorted(kids - set(given))
                    what = (f"not a child of level {number}: {', '.join(extra)}" if extra
                            else f"missing for children of level {number}: {', '.join(missing)}")
                    raise FieldError(f"'{option}' {what}", f"weights.{number}.{option}")

    def category_rule(self) -> tuple[str, list[float]]:
        """How the index is cut into categories: ``("fixed", cut-offs)`` or ``("quantile", shares)``.

        Raises
        ------
        ValueError
            Fixed cut-offs for an index with no fixed range, or outside its range.
        """
        cat = self.categories
        if cat.method == "quantile":
            return "quantile", list(cat.cuts if cat.cuts is not None else DEFAULT_CATEGORY_SHARES)
        rng = self.index_range(explain=True)
        if isinstance(rng, str):  # no fixed range
            if cat.cuts is None and cat.method is None:
                return "quantile", list(DEFAULT_CATEGORY_SHARES)
            shown = "" if cat.cuts is None else f" ({', '.join(f'{c:g}' for c in cat.cuts)})"
            raise FieldError(f"fixed category cut-offs{shown} need an index on a known scale, but {rng}: use a "
                             "bounded normalisation (minmax, goalposts, percentile) or 'categories.method: "
                             "quantile'", "categories")
        lo, hi = rng
        if cat.cuts is None:
            return "fixed", [lo + share * (hi - lo) for share in DEFAULT_CATEGORY_SHARES]
        outside = [c for c in cat.cuts if not lo < c < hi]
        if outside:
            raise FieldError(f"category cut-off {outside[0]:g} is outside the index's range [{lo:g}, {hi:g}] "
                             "(from the normalisation): set cut-offs inside it or 'categories.method: quantile'",
                             "categories.cuts")
        return "fixed", list(cat.cuts)

    def index_range(self, explain: bool = False):
        """Range ``(low, high)`` of the index, from the normalisation and aggregation methods.

        Weighted means keep the range of their children's scores; normalisations
        without fixed bounds (z-scores, ranks, ``none``, ``dist2target``) and
        outranking aggregation give an index with no range fixed in advance:
        then ``None`` (or, with ``explain``, a phrase saying why).
        """
        from .aggregate import AGGREGATIONS
        from .normalise import score_bounds

        bounds = {}
        for ind in self.indicators:
            b = score_bounds(self, ind)
            if b is None:
                name = (ind.normalise.method if ind.normalise and ind.normalise.method else None)
                why = (f"indicator '{ind.id}' has normalise.method '{name}'" if name else
                       f"normalise.method '{self.normalise.method}' gives unbounded scores")
                return why if explain else None
            bounds[ind.id] = b
        for level in range(2, len(self.levels) + 1):
            method = self.levels[level - 1].method
            if not AGGREGATIONS[method].on_scale:
                why = f"levels.{level}.method '{method}' gives outranking counts, not scores on a fixed scale"
                return why if explain else None
            for agg in self.aggregates_at(level):
                kids = [bounds[k.id] for k in self.children(agg.id) if k.weight > 0]
                bounds[agg.id] = (min(b[0] for b in kids), max(b[1] for b in kids))
        return bounds[self.root.id]

    # ------------------------------------------------------------------ views
    @property
    def hash(self) -> str:
        """Short SHA-256 of the canonical spec (12 hex digits), carried by every output."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    @property
    def indicator_ids(self) -> list[str]:
        return [i.id for i in self.indicators]

    @property
    def root(self) -> Aggregate:
        """The top aggregate (the index)."""
        return next(a for a in self.aggregates if a.parent is None)

    def indicator(self, id: str) -> Indicator:
        return next(i for i in self.indicators if i.id == id)

    def aggregates_at(self, level: int) -> list[Aggregate]:
        return [a for a in self.aggregates if a.level == level]

    def children(self, id: str) -> list[Indicator | Aggregate]:
        return [n for n in (*self.indicators, *self.aggregates) if n.parent == id]

    def label(self, id: str) -> str:
        node = next((n for n in (*self.indicators, *self.aggregates) if n.id == id), None)
        return (node.label or node.id) if node is not None else id

    def valid_range(self, indicator: Indicator) -> tuple[float | None, float | None]:
        """Valid values of an indicator's answers (before denomination)."""
        if indicator.range is not None:
            return indicator.range
        if indicator.answers is not None:
            return self.answers[indicator.answers].valid_range
        return (None, None)

    def goalposts(self, indicator: Indicator) -> tuple[float, float]:
        """Goalposts of an indicator: explicit, else its valid range (must be finite)."""
        if indicator.goalposts is not None:
            return indicator.goalposts
        lo, hi = self.valid_range(indicator)
        if indicator.denominator is None and lo is not None and hi is not None:
            return (lo, hi)
        raise SpecError("goalposts normalisation needs 'goalposts' (no finite valid range)",
                        column=f"indicators.{indicator.id}")

    def combine_method(self, indicator: Indicator) -> str:
        return indicator.combine or self.combine.method

    def within(self) -> str | None:
        """Column for within-group ranks (default: the first admin column)."""
        return self.rank.within or (self.columns.admin[0] if self.columns.admin else None)

    # ---------------------------------------------------------------- changes
    def with_changes(self, changes: Mapping[str, Any]) -> "IndexSpec":
        """Return a new, validated spec with some options changed.

        Parameters
        ----------
        changes : mapping
            Dotted paths to new values: ``{"normalise.method": "zscore",
            "indicators.robbery.weight": 2, "levels.2.method": "geometric"}``.
            Items of ``indicators``, ``aggregates`` and ``rounds`` are addressed by
            their id; ``levels`` by level number as in ``aggregates[].level``
            (1 = indicators, 2 = pillars, ...) or by name.  A list of plain
            values (``categories.cuts``) is replaced whole.  A mapping given
            for a mapping option is merged into it.

        Returns
        -------
        IndexSpec
        """
        data = self.model_dump(mode="python")
        for path, value in changes.items():
            _set_path(data, path, value)
        return _validate(data, source="changes")

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.model_dump(mode="json", exclude_defaults=True), sort_keys=False,
                              allow_unicode=True)


def _list_item(node: list, key: str, parent: str | None, path: str) -> int:
    """Position of the item ``key`` in a list of the spec (see :meth:`IndexSpec.with_changes`)."""
    if parent == "levels":
        if key.isdigit() and 1 <= int(key) <= len(node):
            return int(key) - 1
        named = [i for i, item in enumerate(node) if isinstance(item, dict) and item.get("name") == key]
        if named:
            return named[0]
        raise SpecError(f"no level '{key}': levels are numbered 1 (indicators) to {len(node)}, or named "
                        f"{', '.join(str(item.get('name')) for item in node if isinstance(item, dict))}",
                        column=path)
    for pos, item in enumerate(node):
        if isinstance(item, dict) and str(item.get("id")) == key:
            return pos
    if node and not isinstance(node[0], dict):
        raise SpecError("a list of values is changed whole (e.g. {'categories.cuts': [30, 70]})", column=path)
    raise SpecError(f"no item with id '{key}'", column=path)


def _set_path(data: dict, path: str, value: Any) -> None:
    keys = path.split(".")
    node: Any = data
    parent: str | None = None
    for i, key in enumerate(keys):
        last = i == len(keys) - 1
        if isinstance(node, list):
            found = _list_item(node, key, parent, path)
            if last:
                node[found] = value
                return
            node = node[found]
        elif isinstance(node, dict):
            if last:
                if isinstance(value, Mapping) and isinstance(node.get(key), dict):
                    node[key] = {**node[key], **copy.deepcopy(dict(value))}
                else:
                    node[key] = copy.deepcopy(value)
                return
            if node.get(key) is None:
                node[key] = {}
            node = node[key]
        else:
            raise SpecError(f"cannot set '{key}' inside a {type(node).__name__}", column=path)
        parent = key


def iter_options(spec: "IndexSpec") -> Iterator[tuple[str, Any, str]]:
    """Every option of a spec: ``(path, value, step)``.

    ``path`` addresses the option as :meth:`IndexSpec.with_changes` does
    (list items by id, levels by number); ``step`` is the first pipeline step
    that reads it (:data:`STEP_ORDER`).
    """

    def walk(model: _Model, prefix: str):
        for name in type(model).model_fields:
            value = getattr(model, name)
            path = f"{prefix}{name}"
            step = model.field_steps.get(name, model.step)
            if isinstance(value, _Model):
                yield from walk(value, path + ".")
            elif isinstance(value, list) and value and isinstance(value[0], _Model):
                for pos, item in enumerate(value):
                    key = pos + 1 if name == "levels" else getattr(item, "id", pos)
                    yield from walk(item, f"{path}.{key}.")
            elif isinstance(value, dict) and value and isinstance(next(iter(value.values())), _Model):
                for key, item in value.items():
                    yield from walk(item, f"{path}.{key}.")
            else:
                yield path, value, step

    yield from walk(spec, "")


def step_signatures(spec: "IndexSpec") -> dict[str, str]:
    """Per pipeline step, a fingerprint of the options it is the first to read."""
    parts: dict[str, list] = {s: [] for s in STEP_ORDER}
    for path, value, step in iter_options(spec):
        parts[step].append((path, value))
    for name in ("indicators", "aggregates", "levels", "rounds"):  # which items exist, in which order
        items = getattr(spec, name) or []
        step = "prepare" if name in ("indicators", "rounds") else "aggregated"
        parts[step].append((name, [getattr(item, "id", None) for item in items], len(items)))
    return {s: json.dumps(p, sort_keys=True, default=str) for s, p in parts.items()}


def _format_loc(loc: tuple, data: Any) -> str:
    """Render a pydantic error location, naming list items by their id."""
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int) and isinstance(node, list) and 0 <= key < len(node):
            item = node[key]
            ident = item.get("id") if isinstance(item, dict) else None
            if parts and parts[-1] == "levels":
                parts.append(str(key + 1))  # levels are numbered as aggregates[].level: 1 = indicators
            else:
                parts.append(f"{ident}" if ident is not None else f"[{key}]")
            node = item
        else:
            parts.append(str(key))
            node = node.get(key) if isinstance(node, dict) else None
    return ".".join(parts)


def _models_at(loc: tuple) -> list[type[BaseModel]]:
    """The spec sections (models) that can hold the field at ``loc`` (a pydantic error location)."""
    import typing

    def models(annotation) -> list[type[BaseModel]]:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return [annotation]
        found = []
        for arg in typing.get_args(annotation):  # Optional, Union, list[...], dict[..., ...]
            found += models(arg)
        return found

    current: list[type[BaseModel]] = [IndexSpec]
    for key in loc[:-1]:
        if isinstance(key, int) or not any(key in m.model_fields for m in current):
            continue  # a list index, a dict key (a level number), or a union member's tag: same models
        nxt = []
        for m in current:
            if key in m.model_fields:
                nxt += models(m.model_fields[key].annotation)
        current = list(dict.fromkeys(nxt))
        if not current:
            return []
    return current


def _closest_field(loc: tuple) -> str:
    """`` (did you mean 'normalise'?)`` for an unknown field, naming the closest field of its section; empty
    when none is close."""
    import difflib

    name = str(loc[-1])
    fields = [f for m in _models_at(loc) for f in m.model_fields]
    close = difflib.get_close_matches(name.lower(), list(dict.fromkeys(fields)), n=1, cutoff=0.7)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _validate(data: Any, source: str) -> IndexSpec:
    if not isinstance(data, dict):
        raise SpecError("the spec must be a YAML mapping (name, indicators, aggregates, levels, ...)", file=source)
    try:
        return IndexSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        cause = (err.get("ctx") or {}).get("error")
        field = cause.field if isinstance(cause, FieldError) else _format_loc(err["loc"], data) or None
        if err.get("type") == "extra_forbidden" and err["loc"]:
            msg += _closest_field(err["loc"])  # a typo: name the closest field of the section
        extra = len(exc.errors()) - 1
        if extra:
            msg += f" (and {extra} more problem{'s' * (extra > 1)} in the spec)"
        raise SpecError(msg, file=source, column=field) from None


def load_spec(path: str | Path) -> IndexSpec:
    """Read and validate a YAML index specification.

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Returns
    -------
    IndexSpec

    Raises
    ------
    SpecError
        If the file is missing, is not valid YAML, or breaks a rule of the spec
        (the message names the field, e.g. ``indicators.robbery.direction``).
    """
    path = Path(path)
    return _validate(read_yaml_file(path, "spec"), source=str(path))


def read_yaml_file(path: str | Path, what: str):
    """The content of a YAML file (a spec, a mapping...); one-line :class:`SpecError` naming the file."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{what} file not found", file=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read the {what}: {exc}", file=path) from None
    if not text.strip():
        raise SpecError(f"the {what} file is empty", file=path)
    try:
        return parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        where = "" if mark is None else f" at line {mark.line + 1}"
        raise SpecError(f"invalid YAML{where}: {problem}", file=path) from None


def spec_from_dict(data: Mapping[str, Any]) -> IndexSpec:
    """Validate a spec given as a Python mapping (same rules as :func:`load_spec`)."""
    return _validate(copy.deepcopy(dict(data)), source="spec")
