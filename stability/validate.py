"""Check a survey against a spec before anything is computed.

:func:`validate` returns a :class:`Report` listing every problem found, one line
each, naming the file, column and row (line number in the file, header = line
1).  Errors stop ``stability score``; warnings are shown but do not.

Checks, in order: files not empty; the spec's columns present (including the
imputation group, the ``rank.within`` column and the outcome and cluster
columns of derived weights); location ids and rounds not empty; no duplicate
rows (per key informant, or per location and round); rounds of one kind (and
declared ones, when the spec lists them); answers readable (known labels,
numbers) and within the valid range; no indicator all missing (overall or in
a round) or constant; the location register has unique ids and covers every
answered location; coordinates inside the country and the declared cercle,
swapped latitude and longitude named with the corrected place
(:mod:`stability.locations`); denominators valid; admin p-codes known, at the
column's level and consistent with their parents, with a suggestion for an
unknown one; population and outcome tables numeric and unique per location
and round; a round far thinner than the one before it; columns left out of
every output as personal data (:mod:`stability.privacy`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .combine import encode_column
from .exceptions import ValidationFailed
from .io import Dataset, first_data_row, record_lines


@dataclass(frozen=True)
class Problem:
    """One problem found in the input."""

    severity: str
    message: str
    file: str | None = None
    column: str | None = None
    row: int | None = None
    more: int = 0  # further rows with the same problem, not listed one by one
    #: A warning about a whole file (columns left out as personal data): every command shows it, on stderr as
    #: ``stability: warning: ...`` like the readers' fallbacks, rather than in ``stability validate``'s list.
    notice: bool = field(default=False, compare=False)

    def __str__(self) -> str:
        where = [x for x in (self.file, None if self.column is None else _columns(self.column),
                             None if self.row is None else f"row {self.row}") if x]
        tail = f" (and {self.more:,} more row{'s' * (self.more > 1)} like this)" if self.more else ""
        return f"{self.severity}: " + (", ".join(where) + ": " if where else "") + self.message + tail


def _columns(column) -> str:
    """``column 'x'``, or ``columns 'x', 'y'`` for a problem of several columns (a tuple)."""
    if isinstance(column, tuple):
        return "columns " + ", ".join(f"'{c}'" for c in column)
    return f"column '{column}'"


@dataclass
class Report:
    """All problems of a validation run."""

    problems: list[Problem] = field(default_factory=list)
    #: Numeric codes of each indicator column, as read while checking (reused by the pipeline).
    codes: dict = field(default_factory=dict, repr=False)
    #: Key columns numbered while checking for duplicates: column -> (codes, distinct values), codes -1
    #: where the key is empty (reused by the pipeline to index the answers).
    keys: dict = field(default_factory=dict, repr=False)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def n_errors(self) -> int:
        """Rows or items in error, including those not listed one by one."""
        return sum(1 + p.more for p in self.errors)

    @property
    def n_warnings(self) -> int:
        return sum(1 + p.more for p in self.warnings)

    def raise_for_errors(self) -> None:
        """Raise :class:`ValidationFailed` (naming the first error) if there are errors."""
        if self.errors:
            raise ValidationFailed(self.problems)

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class _Checker:
    def __init__(self, data: Dataset, spec):
        self.data, self.spec = data, spec
        self.report = Report()
        self._lines: dict[str, list[int] | None] = {}

    def add(self, severity, message, role=None, column=None, row=None):
        file = self.data.file(role) if role else None
        self.report.problems.append(Problem(severity, message, file, column, row))

    def line(self, role: str, pos: int) -> int:
        """File line number of the row at position ``pos`` (found in the file only when needed)."""
        if role not in self._lines:
            lines = record_lines(self.data.file(role))
            table = getattr(self.data, role, None)
            self._lines[role] = lines if table is not None and lines is not None and len(lines) == len(table) \
                else None
        lines = self._lines[role]
        return lines[int(pos)] if lines is not None else int(pos) + first_data_row(self.data.file(role))

    def first(self, role, column, mask: np.ndarray, message, severity="error", values=None) -> bool:
        """Report the rows where ``mask`` is true, one line each (the first :data:`ROWS_LISTED`,
        then how many more); True if any."""
        hits = np.flatnonzero(mask)
        if hits.size == 0:
            return False
        shown = hits[:ROWS_LISTED]
        for i, pos in enumerate(shown):
            text = message(values[pos]) if callable(message) else message
            more = int(hits.size - shown.size) if i == shown.size - 1 else 0
            file = self.data.file(role) if role else None
            self.report.problems.append(Problem(severity, text, file, column, self.line(role, pos), more))
        return True


#: Rows listed one by one per problem and column; further rows are counted on the last line.
ROWS_LISTED = 10


def _fmt(v) -> str:
    return f"'{v}'" if isinstance(v, str) else f"{v:g}" if isinstance(v, float) else str(v)


def validate(data: Dataset, spec) -> Report:
    """Check ``data`` against ``spec``; see the module docstring for the checks.

    Parameters
    ----------
    data : Dataset
    spec : IndexSpec

    Returns
    -------
    Report
    """
    ck = _Checker(data, spec)
    c = spec.columns
    ans = data.answers
    keys = [c.location] + ([c.round] if c.round else [])
    ki = [c.key_informant] if c.key_informant else []
    # ---- columns named by the spec
    missing = [k for k in keys + ki + spec.indicator_ids if k not in ans.columns]
    for col in missing:
        ck.add("error", "column named by the spec is not in the file", "answers", col)
    reg = data.locations
    if reg is not None and c.location not in reg.columns:
        ck.add("error", "the location register has no location id column", "locations", c.location)
        reg = None
    descriptive = [x for x in [c.name, *c.admin, *c.admin_names, c.longitude, c.latitude,
                               *[i.denominator for i in spec.indicators if i.denominator]] if x]
    for col in dict.fromkeys(descriptive):
        if col not in ans.columns and (reg is None or col not in reg.columns):
            where = "answers" if reg is None else "locations"
            ck.add("error", "column named by the spec is in neither the answers nor the location register",
                   where, col)
    pop = data.population
    grouping = [(spec.impute.group if spec.impute.method.startswith("group_") else None, "impute.group"),
                (spec.rank.within, "rank.within")]
    for col, option in grouping:
        if col and col not in descriptive and col not in ans.columns and (reg is None or col not in reg.columns) \
                and (pop is None or col not in pop.columns):
            ck.add("error", f"column named by the spec ({option}) is in neither the answers nor the location "
                   "register", "answers" if reg is None else "locations", col)
    tables = [t for t in (ans, reg, pop, data.outcomes) if t is not None]
    for level, scheme in spec.weights.items():
        for option in ("outcome", "cluster"):
            col = getattr(scheme, option)
            if col and not any(col in t.columns for t in tables):
                ck.add("error", f"column named by the spec (weights.{level}.{option}) is in none of the survey's "
                       "tables (answers, locations, population, outcomes)",
                       "outcomes" if data.outcomes is not None else "answers", col)
    if any(k in missing for k in keys + ki):
        return ck.report
    # ---- keys
    for k in keys + ki:
        ck.first("answers", k, ans[k].isna().to_numpy(), "empty identifier")
    # each key column numbered once; a row's key is the tuple of its numbers
    row_key = np.zeros(len(ans), dtype=np.int64)
    complete = np.ones(len(ans), dtype=bool)
    for k in keys + ki:
        codes, uniques = pd.factorize(ans[k])
        ck.report.keys[k] = (codes, uniques)
        complete &= codes >= 0
        row_key = row_key * (len(uniques) + 1) + (codes + 1)
        if len(keys + ki) > 1:
            row_key = pd.factorize(row_key)[0].astype(np.int64)  # renumber: the product never overflows
    dup = pd.Series(row_key).duplicated(keep=False).to_numpy() & complete
    if dup.any():
        dup_keys = row_key[dup]
        first = pd.Series(dup_keys).duplicated(keep="first").to_numpy()
        pos = np.flatnonzero(dup)[np.flatnonzero(first)[0]]
        twin = np.flatnonzero(dup & (row_key == row_key[pos]))[0]
        what = "key informant" if ki else "location and round" if c.round else "location"
        ck.add("error", f"duplicate {what}: same {', '.join(keys + ki)} as row {ck.line('answers', twin)}",
               "answers", keys[0], ck.line("answers", pos))
    rounds = ans[c.round] if c.round else None
    bad_round = np.zeros(len(ans), dtype=bool)
    if rounds is not None:
        bad_round = _check_rounds(ck, "answers", rounds)
        # rounds of the rows with a valid round, numbered once for every indicator's check
        ok_rows = ~bad_round & rounds.notna().to_numpy()
        all_ok = bool(ok_rows.all())
        round_codes, round_labels = pd.factorize(rounds.to_numpy() if all_ok else rounds.to_numpy()[ok_rows],
                                                 sort=True)
        round_labels = pd.Index(round_labels)
    # ---- answers
    present_ids = [i for i in spec.indicators if i.id in ans.columns]
    for ind in present_ids:
        atype = spec.answers.get(ind.answers) if ind.answers else None
        raw = ans[ind.id]
        codes, invalid = encode_column(raw, atype)
        ck.report.codes[ind.id] = codes
        if invalid.any():
            if atype is not None and atype.codes is not None:
                allowed = ", ".join(str(k) for k in atype.codes)
                ck.first("answers", ind.id, invalid, lambda v, allowed=allowed: f"{_fmt(v)} is not a valid answer "
                         f"(expected one of: {allowed})", values=raw.to_numpy())
            else:
                ck.first("answers", ind.id, invalid, lambda v: f"{_fmt(v)} is not a number", values=raw.to_numpy())
        lo, hi = spec.valid_range(ind)
        low, high = np.fmin.reduce(codes, initial=np.inf), np.fmax.reduce(codes, initial=-np.inf)  # NaN skipped
        if (lo is not None and low < lo) or (hi is not None and high > hi):
            bad = np.zeros(len(codes), dtype=bool)
            with np.errstate(invalid="ignore"):
                if lo is not None:
                    bad |= codes < lo
                if hi is not None:
                    bad |= codes > hi
            rng = f"[{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}]"
            ck.first("answers", ind.id, bad, lambda v, rng=rng: f"{_fmt(v)} is outside the valid range {rng}",
                     values=codes)
        if atype is None or atype.codes is None:  # a number answered: a "don't know" code read as a count?
            _check_sentinels(ck, ind.id, codes)
        if atype is not None and atype.integer:
            frac = ~np.isnan(codes) & (codes != np.round(codes))
            ck.first("answers", ind.id, frac, lambda v: f"{_fmt(v)} is not a whole number", values=codes)
        if low > high:  # nothing but missing values
            ck.add("error", "no valid answer at all: the indicator cannot be scored", "answers", ind.id)
            continue
        if low == high:
            ck.add("error", f"constant indicator: every answer is {low:g}, it cannot tell locations apart",
                   "answers", ind.id)
        if rounds is not None and len(round_labels) > 1:
            has = np.zeros(len(round_labels), dtype=bool)
            has[round_codes[~np.isnan(codes[ok_rows] if not all_ok else codes)]] = True
            for r in round_labels[~has]:
                ck.add("error", f"no valid answer in round {r}", "answers", ind.id)
    # ---- location register
    if reg is not None:
        ids = reg[c.location]
        ck.first("locations", c.location, ids.isna().to_numpy(), "empty location id")
        dupe = ids.duplicated(keep="first").to_numpy() & ids.notna().to_numpy()
        if dupe.any():
            pos = np.flatnonzero(dupe)[0]
            twin = np.flatnonzero((ids == ids.iloc[pos]).to_numpy())[0]
            ck.add("error", f"duplicate location id {_fmt(ids.iloc[pos])} (also on row {ck.line('locations', twin)})",
                   "locations", c.location, ck.line("locations", pos))
        unknown = ~ans[c.location].isin(set(ids.dropna())).to_numpy() & ans[c.location].notna().to_numpy()
        ck.first("answers", c.location, unknown,
                 lambda v: f"location {_fmt(v)} is not in the location register ({data.file('locations')})",
                 values=ans[c.location].to_numpy())
    _check_descriptive(ck, reg)
    _check_pcodes(ck, reg)
    _check_population(ck, keys)
    if rounds is not None and not bad_round.any():
        _check_round_coverage(ck, rounds)
    from .privacy import problems as personal_data

    ck.report.problems.extend(personal_data(data, spec))  # columns left out of every output
    return ck.report


#: Codes that forms use for "don't know", "refused" or "not applicable" in a number question.
SENTINELS = (99.0, 999.0, 9999.0, 99999.0, 98.0, 998.0, 888.0, 8888.0)


def _check_sentinels(ck: _Checker, column: str, codes: np.ndarray) -> None:
    """Warn when a number answer is a usual "don't know" code (99, 999, ...) far above the column's other
    answers (more than ten times their 95th percentile): it would be scored as a count."""
    finite = codes[np.isfinite(codes)]
    hit = np.isin(codes, SENTINELS)
    if not hit.any() or hit.sum() * 20 > len(finite):  # frequent: a genuine value of the scale
        return
    rest = finite[~np.isin(finite, SENTINELS)]
    if not len(rest):
        return
    top = float(np.percentile(rest, 95))
    far = hit & (codes > 10 * max(top, 1.0))
    ck.first("answers", column, far, lambda v: f"{_fmt(v)} is far above the other answers (95 % are at most "
             f"{top:g}): a \"don't know\" code scored as a number? Leave such answers blank, or remove the code",
             values=codes, severity="warning")


def _check_rounds(ck: _Checker, role: str, rounds: pd.Series) -> np.ndarray:
    """Round labels: numbers or ISO dates, one kind, declared ones if the spec lists them.

    Returns the rows whose round is bad (one error line per bad label).
    """
    from .rounds import problems

    column = ck.spec.columns.round
    bad = np.zeros(len(rounds), dtype=bool)
    numbered = ck.report.keys.get(column) if role == "answers" else None  # the answers' rounds are numbered
    found = problems(rounds.to_numpy(), ck.spec, numbered)
    by_message: dict[str, list[int]] = {}
    for pos, message in found:
        by_message.setdefault(message, []).append(pos)
        bad[pos] = True
    for message, rows in by_message.items():
        mask = np.zeros(len(rounds), dtype=bool)
        mask[rows] = True
        ck.first(role, column, mask, message)
    return bad


def _check_round_coverage(ck: _Checker, rounds: pd.Series) -> None:
    """Warn about a round with far fewer locations than the round before it."""
    from .rounds import coerce, coverage, order

    c = ck.spec.columns
    ok = rounds.notna().to_numpy() & ck.data.answers[c.location].notna().to_numpy()
    if not ok.any():
        return
    # distinct (round, location) pairs, counted per round: the labels are coerced once per distinct round
    known = ck.report.keys
    if c.location in known and c.round in known:
        loc_codes, r_codes, r_values = known[c.location][0], known[c.round][0], known[c.round][1]
        pair = pd.Series(r_codes[ok].astype(np.int64) * (len(known[c.location][1]) + 1) + loc_codes[ok])
        first = ~pair.duplicated().to_numpy()
        counts = pd.Series(np.bincount(r_codes[ok][first], minlength=len(r_values)), index=r_values)
        counts = counts[counts > 0]
    else:
        pairs = pd.DataFrame({"r": rounds.to_numpy()[ok], "l": ck.data.answers[c.location].to_numpy()[ok]})
        counts = pairs.drop_duplicates()["r"].value_counts()
    per_round = pd.Series(counts.to_numpy(), index=coerce(pd.Series(counts.index)))
    per_round = per_round.groupby(level=0).sum()
    rows = coverage(per_round, order(per_round.index, ck.spec))
    if rows:  # the statistics of a reference round the data do not have
        from .rounds import reference

        problem = reference(ck.spec, [row["round"] for row in rows])[1]
        if problem:
            ck.add("error", problem, "answers", c.round)
    days = [str(x) for x in per_round.index if len(str(x)) == 10 and str(x)[4] == "-" and str(x)[7] == "-"]
    months = {d[:7] for d in days}
    if len(days) == len(per_round) > 6 and len(months) <= len(days) / 2:  # many one-day rounds: submission dates?
        ck.add("warning", f"{len(days)} rounds, each a day ({len(months)} months), of {int(per_round.median()):,} "
               "locations at the median: the date of each submission rather than the survey round? A round is one "
               "round of the survey: give all its answers the same label (e.g. '2021-12')", "answers", c.round)
    for before, row in zip(rows, rows[1:]):
        if row["thin"]:
            n = row["locations"]
            ck.add("warning", f"round {row['round']} has {n:,} location{'s' * (n != 1)} against "
                   f"{before['locations']:,} in round {before['round']}: a partial round (its national ranks "
                   "and comparisons cover only these locations)", "answers", c.round)


def _table_for(ck: _Checker, col: str, reg) -> tuple[str, pd.DataFrame] | None:
    if reg is not None and col in reg.columns:
        return "locations", reg
    if col in ck.data.answers.columns:
        return "answers", ck.data.answers
    return None


def _check_descriptive(ck: _Checker, reg) -> None:
    c, spec = ck.spec.columns, ck.spec
    for col, lo, hi in ((c.longitude, -180, 180), (c.latitude, -90, 90)):
        found = col and _table_for(ck, col, reg)
        if not found:
            continue
        role, table = found
        vals = pd.to_numeric(table[col], errors="coerce").to_numpy(dtype=float)
        bad = table[col].notna().to_numpy() & (np.isnan(vals) | (vals < lo) | (vals > hi))
        ck.first(role, col, bad, lambda v, lo=lo, hi=hi: f"{_fmt(v)} is not a coordinate in [{lo}, {hi}]",
                 values=table[col].to_numpy())
    _check_coordinates(ck, reg)
    for col in dict.fromkeys(i.denominator for i in spec.indicators if i.denominator):
        found = _table_for(ck, col, reg)
        if not found:
            continue
        role, table = found
        vals = pd.to_numeric(table[col], errors="coerce").to_numpy(dtype=float)
        given = table[col].notna().to_numpy()
        bad = given & (np.isnan(vals) | (vals <= 0))
        ck.first(role, col, bad, lambda v: f"denominator {_fmt(v)} is not a positive number",
                 values=table[col].to_numpy())
        ck.first(role, col, ~given, "missing denominator: the indicators divided by it will be missing here",
                 severity="warning")


def _check_coordinates(ck: _Checker, reg) -> None:
    """Each location's point where its admin p-codes say (:func:`stability.locations.place`).

    Reported on the coordinate column(s) at fault (:func:`_coordinate_at_fault`: ``column 'longitude'``,
    ``columns 'latitude', 'longitude'``), one line per location (the first row of each distinct location and
    point when the answers repeat them), prefixed ``location '<id>': ``:

    - latitude and longitude swapped (``latitude and longitude look swapped: (14.49, -4.19) would be in
      Mopti/ML0506``) and points outside the country: errors with ``columns.coordinates: error``,
      warnings by default;
    - a point in another cercle (or region) of the country, beyond ``columns.coordinate_tolerance`` metres
      from its own, naming the one it falls in; a location without coordinates ("it cannot be mapped"):
      warnings.

    ``columns.coordinates: off`` skips this check (the coordinates are still checked to be numbers in range).
    """
    from .locations import ELSEWHERE, MISSING, OUTSIDE, SWAPPED, describe, place

    c = ck.spec.columns
    if c.coordinates == "off" or not (c.longitude and c.latitude):
        return
    found, other = _table_for(ck, c.latitude, reg), _table_for(ck, c.longitude, reg)
    if not found or not other or other[0] != found[0]:
        return
    role, table = found
    ids = table[c.location] if c.location in table.columns else None
    admin = []
    for col in c.admin:
        where = _table_for(ck, col, reg)
        if where is None:
            continue
        if where[0] == role:
            admin.append(table[col])
        elif ids is not None and c.location in where[1].columns:
            codes = where[1].drop_duplicates(c.location).set_index(c.location)[col]
            admin.append(ids.map(codes))
    # one check per distinct location, point and p-codes (answers may repeat them on every informant's row)
    key = pd.DataFrame({"lon": table[c.longitude].array, "lat": table[c.latitude].array,
                        **({"id": ids.array} if ids is not None else {}),
                        **{f"admin{i}": a.array for i, a in enumerate(admin)}})
    pos = np.flatnonzero(~key.duplicated().to_numpy()) if len(key) > 1 else np.arange(len(key))
    lon, lat = table[c.longitude].to_numpy(), table[c.latitude].to_numpy()
    placed = place(lon[pos], lat[pos], [a.to_numpy()[pos] for a in admin], tolerance=c.coordinate_tolerance)
    status = np.full(len(table), "", dtype=object)
    status[pos] = placed["status"].to_numpy()
    at = np.full(len(table), -1, dtype=np.int64)
    at[pos] = np.arange(len(pos))

    def text(p):
        what = describe(placed.iloc[at[p]], lon[p], lat[p])
        return what if ids is None or pd.isna(ids.iat[p]) else f"location {_fmt(ids.iat[p])}: {what}"

    rows = np.arange(len(table))
    fault = _coordinate_at_fault(status, placed, at, lon, lat, c.coordinate_tolerance)
    both = (c.latitude, c.longitude)
    for wanted, severity in ((SWAPPED, c.coordinates), (OUTSIDE, c.coordinates), (ELSEWHERE, "warning"),
                             (MISSING, "warning")):
        for code, column in (("lat", c.latitude), ("lon", c.longitude), ("both", both)):
            ck.first(role, column, (status == wanted) & (fault == code), text, severity=severity, values=rows)


def _coordinate_at_fault(status: np.ndarray, placed: pd.DataFrame, at: np.ndarray, lon, lat,
                         tolerance: float) -> np.ndarray:
    """Which coordinate of each misplaced point is wrong: ``lat``, ``lon`` or ``both``.

    Both for swapped points; for a missing point, the empty one(s); for a point outside its area (or the
    country), the coordinate outside the area's extent (its bounding box widened by the tolerance) when the
    other one is within it, else both.
    """
    from .locations import ELSEWHERE, MISSING, OUTSIDE, boundaries

    fault = np.full(len(status), "both", dtype=object)
    no_lat, no_lon = pd.isna(lat), pd.isna(lon)
    missing = status == MISSING
    fault[missing & no_lat & ~no_lon] = "lat"
    fault[missing & no_lon & ~no_lat] = "lon"
    away = np.flatnonzero((status == OUTSIDE) | (status == ELSEWHERE))
    if away.size:
        b = boundaries()
        margin = tolerance / 111_000  # metres as degrees, about (wider east-west away from the equator: fine)
        x = pd.to_numeric(pd.Series(lon[away]), errors="coerce").to_numpy(dtype=float)
        y = pd.to_numeric(pd.Series(lat[away]), errors="coerce").to_numpy(dtype=float)
        for i, p in enumerate(away):
            area = b.position.get(placed["declared"].iat[at[p]])
            if area is None:
                continue
            x0, y0, x1, y1 = b.geometry[area].bounds
            lat_in = y0 - margin <= y[i] <= y1 + margin
            lon_in = x0 - margin <= x[i] <= x1 + margin
            if lat_in and not lon_in:
                fault[p] = "lon"
            elif lon_in and not lat_in:
                fault[p] = "lat"
    return fault


def reference_table(source: str | None) -> pd.DataFrame | None:
    """Known p-codes from the embedded OCHA table (``"ocha"``) or a CSV path; None without a source.

    Returns
    -------
    DataFrame or None
        ``pcode``, ``parent`` (the parent's p-code; the country for admin-1), ``name`` (empty when the
        CSV has no ``Name`` column) and ``level`` (the CSV's ``Admin Level``, else the depth of the code in
        the table's parent chain: 1 for a code whose parent is not in the table).  Read once per file
        version.

    Raises
    ------
    SpecError
        The file is missing, unreadable, or has no ``P-Code`` / ``Parent P-Code`` column.
    """
    if not source:
        return None
    from pathlib import Path

    from .exceptions import SpecError
    from .paths import geo_dir

    path = geo_dir() / "pcodes_mli_bfa_ner_adm1_adm2.csv" if source == "ocha" else Path(source)
    if not path.is_file():
        raise SpecError("p-code list not found (give 'ocha' or the path of a CSV with 'P-Code' and "
                        "'Parent P-Code' columns)", file=path, column="columns.pcodes")
    stat = path.stat()
    return _read_reference(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _read_reference(path: str, mtime_ns: int, size: int) -> pd.DataFrame:
    from .exceptions import SpecError

    where = {"file": path, "column": "columns.pcodes"}
    try:
        table = pd.read_csv(path, dtype=str)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise SpecError(f"cannot read the p-code list: {' '.join(str(exc).split())}", **where) from None
    missing = [col for col in ("P-Code", "Parent P-Code") if col not in table.columns]
    if missing:
        raise SpecError(f"the p-code list has no '{missing[0]}' column (it needs 'P-Code' and 'Parent P-Code')",
                        **where)
    parents = dict(zip(table["P-Code"], table["Parent P-Code"]))
    levels = pd.to_numeric(table["Admin Level"], errors="coerce") if "Admin Level" in table.columns else None
    if levels is None or levels.isna().any():
        depth: dict = {}
        for code in parents:
            chain, p = [], code
            while p in parents and p not in depth and p not in chain:
                chain.append(p)
                p = parents[p]
            base = depth.get(p, 0)
            for k, q in enumerate(reversed(chain)):
                depth[q] = base + k + 1
        levels = table["P-Code"].map(depth)
    return pd.DataFrame({"pcode": table["P-Code"], "parent": table["Parent P-Code"],
                         "name": table["Name"].fillna("") if "Name" in table.columns else "",
                         "level": levels.astype("int64")})


def reference_pcodes(source: str | None):
    """Known p-codes and their parents (p-code -> parent), from the embedded OCHA table or a CSV path
    (see :func:`reference_table`)."""
    table = reference_table(source)
    return None if table is None else dict(zip(table["pcode"], table["parent"]))


def _check_pcodes(ck: _Checker, reg) -> None:
    """Admin p-codes against the reference list (``columns.pcodes``).

    Per admin column: unknown codes (errors); codes of another admin level than the column's (the level of
    most of its known codes; errors); codes whose parent is not the p-code of the coarser admin column on
    the same row (errors); missing codes (warnings).  Unknown and missing codes get a suggestion from
    :class:`stability.locations.PcodeMatcher` when one is close enough: by the code (edit distance) and by
    the name given in the matching ``admin_names`` column (or by the value itself when it is a name),
    among the codes of the column's level under the declared parent (the coarser p-code of the row, else
    the known code that prefixes the value)::

        unknown p-code 'ML507' -> ML0507 Tenenkou?
        unknown p-code 'Tenenkou' -> ML0507 Tenenkou?
        missing p-code for 'Tombouctu' -> ML0605 Tombouctou?
    """
    from .locations import PcodeMatcher, looks_like_code

    c = ck.spec.columns
    ref = reference_table(c.pcodes)
    if ref is None:
        return
    known = dict(zip(ref["pcode"], ref["parent"]))
    level_of = dict(zip(ref["pcode"], ref["level"]))
    name_of = dict(zip(ref["pcode"], ref["name"]))
    matcher: list = []  # built on first use

    for i, col in enumerate(c.admin):
        found = _table_for(ck, col, reg)
        if not found:
            continue
        role, table = found
        vals = table[col]
        given = vals.notna().to_numpy()
        unknown = given & ~vals.isin(set(known)).to_numpy()
        levels = vals.map(level_of)
        mode = levels.mode()
        expected = int(mode.iat[0]) if len(mode) else None
        names = table[c.admin_names[i]] if i < len(c.admin_names) and c.admin_names[i] in table.columns else None
        up = c.admin[i - 1] if i > 0 and c.admin[i - 1] in table.columns else None
        countries = vals[~unknown & given].map(known).mode() if expected == 1 else pd.Series(dtype=object)
        rows = np.arange(len(vals))

        def parent_of(pos, value, up=up, expected=expected, countries=countries, table=table):
            if up is not None:
                p = table[up].iat[pos]
                if isinstance(p, str) and p in known:
                    return p
            if isinstance(value, str) and looks_like_code(value) and expected is not None:
                heads = [value[:k] for k in range(len(value) - 1, 1, -1)]
                head = next((h for h in heads if level_of.get(h) == expected - 1), None)
                if head is not None:
                    return head
            return countries.iat[0] if len(countries) else None

        def hint(pos, vals=vals, given=given, names=names, expected=expected, parent_of=parent_of):
            if not matcher:
                matcher.append(PcodeMatcher(ref))
            value = vals.iat[pos] if given[pos] else None
            name = names.iat[pos] if names is not None and pd.notna(names.iat[pos]) else None
            return matcher[0].hint(value, name, expected, parent_of(pos, value))

        ck.first(role, col, unknown, lambda p, vals=vals, hint=hint: f"unknown p-code {_fmt(vals.iat[p])}{hint(p)}",
                 values=rows)
        wrong_level = np.zeros(len(vals), dtype=bool)
        if expected is not None:
            wrong_level = given & ~unknown & (levels != expected).to_numpy()
            ck.first(role, col, wrong_level, lambda v, expected=expected: f"p-code {_fmt(v)} is an admin-"
                     f"{level_of[v]} code ({name_of.get(v) or v}), not an admin-{expected} code like the others "
                     "of the column", values=vals.to_numpy())
        if up is not None:
            parent = table[up]
            wrong = (given & ~unknown & ~wrong_level & parent.notna().to_numpy()
                     & (vals.map(known) != parent).to_numpy())
            ck.first(role, col, wrong, lambda v, up=up: f"p-code {_fmt(v)} does not belong to "
                     f"{up} given on the same row (it belongs to {known.get(v)})",
                     values=vals.to_numpy())

        def missing(p, names=names, hint=hint):
            name = names.iat[p] if names is not None else None
            return "missing p-code" + ("" if name is None or pd.isna(name) else f" for {_fmt(name)}{hint(p)}")

        ck.first(role, col, ~given, missing, severity="warning", values=rows)


def _check_population(ck: _Checker, keys: list[str]) -> None:
    """The population table (counts of people) and the outcome table (numbers), per location and round."""
    for role, what, ok, wrong in (
            ("population", "population table", lambda v: v >= 0, "is not a count of people (a number >= 0)"),
            ("outcomes", "outcome table", np.isfinite, "is not a number")):
        table = getattr(ck.data, role)
        if table is not None:
            _check_round_table(ck, keys, role, what, table, ok, wrong)


def _check_round_table(ck: _Checker, keys: list[str], role: str, what: str, table, ok, wrong: str) -> None:
    missing = [k for k in keys if k not in table.columns]
    for k in missing:
        ck.add("error", f"column is not in the {what}", role, k)
    if missing:
        return
    if ck.spec.columns.round:
        _check_rounds(ck, role, table[ck.spec.columns.round])
    dup = table.duplicated(keys, keep="first").to_numpy()
    ck.first(role, keys[0], dup, f"duplicate location and round in the {what}")
    for col in (x for x in table.columns if x not in keys):
        vals = pd.to_numeric(table[col], errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            bad = table[col].notna().to_numpy() & ~ok(vals)
        ck.first(role, col, bad, lambda v: f"{_fmt(v)} {wrong}", values=table[col].to_numpy())
    loc = ck.spec.columns.location
    known = set(ck.data.answers[loc].dropna())
    if ck.data.locations is not None and loc in ck.data.locations.columns:
        known |= set(ck.data.locations[loc].dropna())
    unknown = ~table[loc].isin(known).to_numpy()
    ck.first(role, loc, unknown, lambda v: f"location {_fmt(v)} is not in the survey",
             values=table[loc].to_numpy())
