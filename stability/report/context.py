"""What a report needs: the computed index, the round and region, the map layers.

:func:`load_context` is the first call of every report notebook.  It computes
the index (or loads the result that ``stability report`` computed once for the
whole batch, after checking, in a JSON sidecar and before unpickling anything,
that it was made from the same data, spec and toolkit version) and selects the
round and region to report on.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .. import __version__
from ..exceptions import ParameterError

LATEST = "latest"
#: Tables of :meth:`ReportContext.once` that only select rows of the scores: cheap, never stored.
SELECTIONS = ("national", "current")


def overview_name(regions) -> str:
    """The name of the overview report of ``regions`` (admin-1 p-codes): ``Country overview``, or
    ``Overview of Mali, Burkina Faso and Niger`` when they lie in several countries."""
    from ..geo import COUNTRY_NAMES, country_of

    found = {country_of(str(p)) for p in regions}
    names = [name for iso, name in COUNTRY_NAMES.items() if iso in found]
    return f"Overview of {', '.join(names[:-1])} and {names[-1]}" if len(names) > 1 else "Country overview"


@dataclass
class ReportContext:
    """Everything a report shows is derived from this.

    Attributes
    ----------
    result : Result
        The computed index (all rounds, all regions).
    round : int or str
        The round reported on.
    previous_round : int, str or None
        The round before it, for changes.
    region : str or None
        Admin-1 p-code of the region, or None for the country overview.
    region_name : str
    regions : dict[str, str]
        Every region in the data: p-code -> name.
    geo : dict
        Map layers keyed by admin level (``"admin1"``, ``"admin2"``), each a dict
        p-code -> shapely geometry (empty when the data's p-codes have no
        embedded boundaries).
    """

    result: Any
    round: Any
    previous_round: Any
    region: str | None
    region_name: str
    regions: dict[str, str]
    geo: dict = field(default_factory=dict)
    #: The data and spec the report was given (``data_path``, ``spec_path``; "" = the embedded defaults), for
    #: the commands a report tells its reader to run (:func:`load_context` sets them).
    inputs: dict = field(default_factory=dict, repr=False, compare=False)
    #: Tables of this round and region computed beforehand (name -> table), e.g. by ``stability report``
    #: once for the whole batch (:func:`shared_tables`); :meth:`once` returns them instead of computing.
    precomputed: dict = field(default_factory=dict, repr=False, compare=False)
    #: Tables of the whole round (every region), shared by the contexts of one result and round
    #: (see :meth:`once_round`); :func:`context_for` can hand one context's to another.
    round_tables: dict = field(default_factory=dict, repr=False, compare=False)
    #: Tables computed once per result, round and region (see :meth:`once`).
    _computed: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def once(self, name, make) -> pd.DataFrame:
        """The table ``make()``, computed once for the current result, round and region.

        Several cells (and the workbook) start from the same rows and tables; a
        shallow copy is returned, so that changing it (copy-on-write) never
        changes what the next caller gets.  A table in :attr:`precomputed` is returned as it is.
        """
        if name in self.precomputed:
            return _shallow(self.precomputed[name])
        key = (id(self.result.scores), self.round, self.region)
        hit = self._computed.get(name)
        if hit is None or hit[0] != key:
            hit = (key, make())
            self._computed[name] = hit
        return _shallow(hit[1])

    def once_round(self, name, make):
        """Like :meth:`once`, for a table of the whole round (the same for every region's report)."""
        key = (id(self.result.scores), self.round)
        hit = self.round_tables.get(name)
        if hit is None or hit[0] != key:
            hit = (key, make())
            self.round_tables[name] = hit
        return _shallow(hit[1])

    def computed(self) -> dict:
        """The tables :meth:`once` has computed for this context so far (name -> table)."""
        key = (id(self.result.scores), self.round, self.region)
        return {name: hit[1] for name, hit in self._computed.items() if hit[0] == key}

    @property
    def spec(self):
        return self.result.spec

    @property
    def columns(self):
        return self.result.spec.columns

    @property
    def index_id(self) -> str:
        return self.result.spec.root.id

    @property
    def round_value(self):
        """The report's round as the analyses take it: None when the data have no round column."""
        return self.round if self.columns.round else None

    @property
    def pillars(self) -> list[str]:
        return [a.id for a in self.result.spec.aggregates_at(2)]

    @property
    def illustrative(self) -> bool:
        return bool(self.result.illustrative)

    @property
    def scores(self) -> pd.DataFrame:
        """Scores of every location and round."""
        return self.result.scores

    @property
    def national(self) -> pd.DataFrame:
        """Scores of every location in the reported round."""
        def select():
            s = self.result.scores
            rnd = self.columns.round
            return s[s[rnd] == self.round] if rnd else s

        return self.once("national", select)

    @property
    def current(self) -> pd.DataFrame:
        """Scores of the reported round, restricted to the region (if any)."""
        def select():
            s = self.national
            if self.region is None:
                return s
            return s[s[self.columns.admin[0]] == self.region]

        return self.once("current", select)

    @property
    def title(self) -> str:
        where = f"{self.region_name} ({self.region})" if self.region else overview_name(self.regions)
        return f"{self.spec.name}: {where}, round {self.round}"


def _shallow(table):
    """A shallow copy of a DataFrame or Series (copy-on-write); anything else as it is."""
    return table.copy(deep=False) if isinstance(table, (pd.DataFrame, pd.Series)) else table


def cache_key(data_path: str | Path, spec) -> dict:
    """What a cached result must match: data checksum, spec hash, toolkit version."""
    from ..io import dataset_files, files_version

    return {"data": files_version(dataset_files(data_path)), "spec": spec.hash, "version": __version__}


def key_path(path: str | Path) -> Path:
    """The sidecar of a cache file: ``result.pkl`` -> ``result.key.json``."""
    path = Path(path)
    return path.with_name(path.stem + ".key.json")


def save_cache(path: str | Path, result, geo: dict, tables: dict | None = None) -> Path:
    """Store a computed result and the map layers for the report notebooks (atomically).

    ``tables`` (from :func:`shared_tables`) adds the tables the reports of one
    round share, computed once for the batch; each notebook's context starts with
    those of its region (:attr:`ReportContext.precomputed`).

    Two files are written: the pickle at ``path`` and, beside it, a JSON sidecar
    (:func:`key_path`) with what the result was computed from (data checksum,
    spec hash, toolkit version) and the SHA-256 of the pickle.  :func:`load_cache`
    reads the sidecar first and unpickles only a file that matches it.
    """
    from ..io import write_atomic, write_text_atomic

    _ = result.scores  # build the scores table once, here, rather than in every notebook
    payload = pickle.dumps({"result": result.without_answers(), "geo": geo, "tables": tables or {}},
                           protocol=pickle.HIGHEST_PROTOCOL)
    key = {"data": result.data_version, "spec": result.spec_hash, "version": __version__,
           "sha256": hashlib.sha256(payload).hexdigest()}
    write_atomic(path, lambda p: p.write_bytes(payload))
    write_text_atomic(key_path(path), json.dumps(key, indent=2, sort_keys=True) + "\n")
    return Path(path)


def load_cache(path: str | Path, key: dict) -> dict | None:
    """The cached ``{"result", "geo"}`` at ``path`` if it was made for ``key``, else None.

    The sidecar is checked before anything is unpickled: a cache without a
    sidecar, with a sidecar for other data, spec or toolkit version, or whose
    pickle is not byte for byte the one the sidecar describes, is never loaded.
    """
    path = Path(path)
    try:
        stored = json.loads(key_path(path).read_text(encoding="utf-8"))
        payload = path.read_bytes()
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or {k: stored.get(k) for k in key} != key:
        return None
    if stored.get("sha256") != hashlib.sha256(payload).hexdigest():
        return None
    try:
        loaded = pickle.loads(payload)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError, TypeError):
        return None
    return loaded if isinstance(loaded, dict) and {"result", "geo"} <= set(loaded) else None


def map_layers(result) -> dict:
    """Region and admin-2 boundaries for the p-codes in ``result`` (embedded geodata).

    The countries of the data are those of its region p-codes (:func:`stability.geo.country_of`:
    ``ML`` Mali, ``BF`` Burkina Faso, ``NE`` Niger).  Mali's regions and cercles are the
    geoBoundaries polygons, Burkina Faso's and Niger's regions the Natural Earth admin-1 polygons and
    Burkina Faso's provinces the Natural Earth provinces (:func:`stability.geo.load_admin1`,
    :func:`stability.geo.load_admin2`); Niger's departments have no polygons.

    Returns
    -------
    dict
        Empty without admin columns or without embedded boundaries for the data's regions; else
        ``admin1`` (region p-code -> geometry, the regions in the data), ``admin1_names`` (their
        names, without the country), ``admin1_country`` (their ISO3), ``countries`` (ISO3 -> the
        outline of each country of the data: the union of all its regions), ``country_names``
        (ISO3 -> name) and, with an admin-2 column, ``admin2`` (p-code -> geometry of every
        admin-2 polygon of those countries), ``admin2_names`` and ``admin2_parent`` (p-code ->
        region p-code), and for Niger, whose departments have no polygons, ``admin2_seats``
        (department p-code -> ``(longitude, latitude)`` of its seat,
        :func:`stability.geo.load_niger_department_seats`; the names and parents of those
        departments are in ``admin2_names`` and ``admin2_parent`` too).
    """
    from .. import geo

    c = result.spec.columns
    layers: dict = {}
    if not c.admin:
        return layers
    codes = result.units
    have1 = set(codes[c.admin[0]].dropna().astype(str))
    countries = sorted({geo.country_of(p) for p in have1} - {None})
    if not countries:
        return layers
    try:
        admin1 = geo.load_admin1(countries)
        admin2 = geo.load_admin2(countries) if len(c.admin) > 1 else None
    except Exception:  # no embedded boundaries: maps show points only
        return layers
    import shapely

    inside = admin1["adm1_pcode"].isin(have1).to_numpy()
    layers["admin1"] = dict(zip(admin1["adm1_pcode"][inside], admin1.geometry[inside]))
    if not layers["admin1"]:
        return {}
    layers["admin1_names"] = dict(zip(admin1["adm1_pcode"][inside], admin1["adm1_name"][inside]))
    layers["admin1_country"] = dict(zip(admin1["adm1_pcode"][inside], admin1["adm0_iso3"][inside]))
    present = set(layers["admin1_country"].values())
    layers["countries"] = {iso3: _without_slivers(shapely.union_all(shapely.make_valid(grp.geometry.to_numpy())))
                           for iso3, grp in admin1.groupby("adm0_iso3", sort=True) if iso3 in present}
    layers["country_names"] = {iso3: geo.COUNTRY_NAMES.get(iso3, iso3) for iso3 in layers["countries"]}
    if admin2 is not None:
        layers["admin2"] = dict(zip(admin2["adm2_pcode"], admin2.geometry))
        layers["admin2_names"] = dict(zip(admin2["adm2_pcode"], admin2["adm2_name"]))
        layers["admin2_parent"] = dict(zip(admin2["adm2_pcode"], admin2["adm1_pcode"]))
        if "NER" in countries:
            seats = geo.load_niger_department_seats()
            seats = seats[seats["adm1_pcode"].isin(have1)]
            layers["admin2_seats"] = {p: (float(x), float(y)) for p, x, y in
                                      zip(seats["adm2_pcode"], seats["longitude"], seats["latitude"])}
            layers["admin2_names"].update(zip(seats["adm2_pcode"], seats["adm2_name"]))
            layers["admin2_parent"].update(zip(seats["adm2_pcode"], seats["adm1_pcode"]))
    return layers


def _without_slivers(geom, area: float = 1e-3):
    """``geom`` without the holes smaller than ``area`` (square degrees) that a union of neighbouring polygons leaves."""
    import shapely

    parts = []
    for poly in shapely.get_parts(geom):
        if poly.geom_type != "Polygon":
            continue
        parts.append(shapely.Polygon(poly.exterior, [r for r in poly.interiors if shapely.Polygon(r).area >= area]))
    return shapely.union_all(parts) if parts else geom


def region_names(result) -> dict[str, str]:
    """Admin-1 p-code -> name for every region in the data (name = p-code if unknown).

    When the regions belong to several countries (by their p-code prefixes, see
    :func:`stability.geo.country_of`), each name says its country: ``Sahel (Burkina Faso)``.
    """
    from .. import geo

    c = result.spec.columns
    if not c.admin:
        return {}
    u = result.units.reset_index()
    col = c.admin[0]
    names = c.admin_names[0] if c.admin_names and c.admin_names[0] in u.columns else None
    pairs = u[[col] + ([names] if names else [])].dropna(subset=[col]).drop_duplicates(col)
    pairs = pairs.sort_values(col)
    out = {str(p): (str(n) if names and pd.notna(n) else str(p))
           for p, n in zip(pairs[col], pairs[names] if names else pairs[col])}
    country = {p: geo.country_of(p) for p in out}
    if len(set(country.values()) - {None}) > 1:
        out = {p: f"{n} ({geo.COUNTRY_NAMES[country[p]]})" if country[p] else n for p, n in out.items()}
    return out


def resolve_round(rounds: list, value, option: str | None = None) -> Any:
    """The round label for ``value`` (``"latest"``, a number or a label).

    Rounds are taken in the order of ``rounds`` (the result's order: the last one
    is the latest); labels are compared as text, so ``3`` and ``"3"`` or an ISO
    date both work.  ``option`` names the command-line option in the error.
    """
    if not rounds:
        return None
    if value is None or str(value).strip().lower() == LATEST or str(value).strip() == "":
        return rounds[-1]
    for r in rounds:
        if str(r) == str(value).strip():
            return r
    also = f"'{LATEST}', 'all'" if option else f"'{LATEST}'"  # the command line's --round takes 'all' too
    raise ParameterError(f"round {str(value).strip()!r} is not in the data; rounds: {', '.join(map(str, rounds))} "
                         f"(or {also})", option=option)


def check_region(regions: dict[str, str], region: str | None, option: str | None = None) -> str | None:
    """Validate a region p-code against the data; the error lists the valid ones."""
    if region is None or str(region).strip() == "":
        return None
    region = str(region).strip()
    if region not in regions:
        valid = ", ".join(f"{p} ({n})" for p, n in regions.items())
        guess = _closest_region(regions, region)
        hint = f"; did you mean {guess} ({regions[guess]})? Valid" if guess else "; valid"
        raise ParameterError(f"unknown region '{region}'{hint} p-codes: {valid}", option=option)
    return region


def _closest_region(regions: dict[str, str], text: str) -> str | None:
    """The p-code ``text`` most likely means: the same p-code in another case, a region's name (accents and
    case ignored), else the closest name (:func:`difflib.get_close_matches`); None when none is close.  P-codes
    are identifiers: one is never guessed from a similar one (``ML99`` is not ``ML09``)."""
    import difflib

    from ..locations import fold

    by_code = {p.casefold(): p for p in regions}
    by_name = {fold(n): p for p, n in regions.items()}
    key = fold(text)
    if text.casefold() in by_code:
        return by_code[text.casefold()]
    if key in by_name:
        return by_name[key]
    close = difflib.get_close_matches(key, list(by_name), n=1, cutoff=0.75)
    return by_name[close[0]] if close else None


def region_rounds(result, region: str) -> dict:
    """Locations assessed in ``region`` per round (round -> count), every round of the result, in its order."""
    c = result.spec.columns
    s = result.scores
    part = s[s[c.admin[0]] == region] if c.admin else s.iloc[0:0]
    if not c.round:
        return {None: len(part)}
    counts = part[c.round].value_counts()
    return {r: int(counts.get(r, 0)) for r in result.rounds}


def compute_result(data_path: str | Path = "", spec_path: str | Path = ""):
    """Load the dataset and spec (embedded defaults for empty paths) and compute the index."""
    from ..io import load_dataset
    from ..paths import default_dataset, default_spec
    from ..pipeline import compute
    from ..spec import load_spec

    spec = load_spec(spec_path or default_spec())
    data = load_dataset(data_path or default_dataset(), spec=spec)
    return compute(data, spec), data, spec


def load_context(data_path: str | Path = "", spec_path: str | Path = "", survey_round: Any = LATEST,
                 region: str | None = None, cache_path: str | Path = "") -> ReportContext:
    """Compute (or load) the index and select the round and region of a report.

    Parameters
    ----------
    data_path : str or Path
        Dataset folder or answers file ("" = the embedded illustrative survey).
    spec_path : str or Path
        Index specification ("" = the embedded Mali spec).
    survey_round : int or str
        Round to report on, or ``"latest"``.
    region : str, optional
        Admin-1 p-code; None or "" for the country overview.
    cache_path : str or Path
        A result saved by :func:`save_cache`; used only if its sidecar says it
        was computed from the same data, spec and toolkit version (checked
        before anything is unpickled, see :func:`load_cache`), else the index
        is recomputed.

    Raises
    ------
    ParameterError
        Unknown round or region, or a region with no location assessed in the round.
    """
    from ..paths import default_dataset, default_spec
    from ..spec import load_spec

    payload = None
    inputs = {"data_path": str(data_path or ""), "spec_path": str(spec_path or "")}
    if cache_path and Path(cache_path).is_file():
        spec = load_spec(spec_path or default_spec())
        payload = load_cache(cache_path, cache_key(data_path or default_dataset(), spec))
    if payload is None:
        result, _, _ = compute_result(data_path, spec_path)
        ctx = context_for(result, region, survey_round, map_layers(result))
        ctx.inputs = inputs
        return ctx
    ctx = context_for(payload["result"], region, survey_round, payload["geo"])
    ctx.inputs = inputs
    tables = payload.get("tables") or {}
    if tables.get("round") == ctx.round:
        ctx.precomputed = dict(tables.get("reports", {}).get(ctx.region or "", {}))
        key = (id(ctx.result.scores), ctx.round)  # the key of ReportContext.once_round for this result and round
        ctx.round_tables.update({name: (key, table) for name, table in tables.get("round_tables", {}).items()})
    return ctx


def shared_tables(result, survey_round: Any, regions, geo: dict | None = None, compute=None) -> dict:
    """Tables the reports of one round would each compute, computed once (for :func:`save_cache`).

    By default only the tables of the whole round are computed here (the national priority
    classes, the pockets of stability, the changes since the previous round, ...:
    :func:`stability.report.content.prepare_round`); each report derives its region's tables from
    them in its own kernel, so that the kernels of a batch start as soon as the index and these
    tables exist and share the rest of the work.

    Parameters
    ----------
    result : Result
    survey_round : optional
        The round of the reports (a round of ``result``, or ``"latest"``).
    regions : iterable of str or None
        Regions of the reports (None = the country overview); regions not
        assessed in the round are left out.
    geo : dict, optional
        Map layers.
    compute : callable, optional
        ``compute(ctx)`` asks, through ``ctx``, for tables of each report to keep as they are
        (e.g. :func:`stability.report.content.prepare`); by default none, only the round's tables.

    Returns
    -------
    dict
        ``round``, ``round_tables`` (name -> table of the whole round, see
        :meth:`ReportContext.once_round`) and ``reports``: region p-code ("" for the overview) ->
        name -> table (empty without ``compute``).
    """
    from .content import prepare_round

    reports, rnd, shared, kinds = {}, None, {}, set()
    for region in regions:
        try:
            ctx = context_for(result, region, survey_round, geo, round_tables=shared)
        except ParameterError:  # not assessed in the round: a short page, no notebook
            continue
        rnd = ctx.round
        if (region is None) not in kinds:  # the overview and the regions ask for some round tables of their own
            kinds.add(region is None)
            prepare_round(ctx)
        if compute is not None:
            compute(ctx)
        reports[region or ""] = {k: v for k, v in ctx.computed().items() if k not in SELECTIONS} if compute else {}
    key = (id(result.scores), rnd)
    return {"round": rnd, "round_tables": {name: hit[1] for name, hit in shared.items() if hit[0] == key},
            "reports": reports}


def context_for(result, region: str | None = None, survey_round: Any = LATEST, geo: dict | None = None,
                round_tables: dict | None = None):
    """The context of a report on a given :class:`~stability.pipeline.Result` (e.g. a recomputed one).

    Parameters
    ----------
    result : Result
    region : str, optional
        Region p-code (None = the country).
    survey_round : optional
        A round of the result, or ``"latest"``.
    geo : dict, optional
        Map layers (:func:`map_layers`); computed when not given.
    round_tables : dict, optional
        :attr:`ReportContext.round_tables` of another context of the same result (shared, not copied).

    Raises
    ------
    ParameterError
        Unknown round or region, or a region with no location assessed in the round.
    """
    rounds = result.rounds
    rnd = resolve_round(rounds, survey_round)
    pos = rounds.index(rnd) if rounds else 0
    previous = rounds[pos - 1] if pos > 0 else None
    regions = region_names(result)
    region = check_region(regions, region)
    if region is not None and rnd is not None and not region_rounds(result, region).get(rnd):
        assessed = [str(r) for r, n in region_rounds(result, region).items() if n]
        raise ParameterError(f"{regions[region]} ({region}) was not assessed in round {rnd}: no location of the "
                             f"region in that round (rounds with data for it: {', '.join(assessed) or 'none'})")
    return ReportContext(result=result, round=rnd, previous_round=previous, region=region,
                         region_name=regions.get(region, "") if region else "", regions=regions,
                         geo=map_layers(result) if geo is None else geo,
                         round_tables={} if round_tables is None else round_tables)
