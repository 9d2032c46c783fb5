"""Survey rounds: numbers or ISO dates, one kind per dataset, in a known order.

A round label in the data is either a number (``1``, ``2``, ``3``) or an ISO
date (``2022-12`` or ``2022-12-15``); one dataset uses one kind.  A stray value
(``three``, or ``2022-12`` among ``1, 2, 3``) is an input error naming the file,
column and row, never a round of its own.  The order of the rounds is the one
declared in the spec (``rounds:``, with labels for reports), else the natural
order (numeric or chronological); ``latest`` is the last round in that order.
"""

from __future__ import annotations

import datetime
import math
import re
from typing import Any, Iterable

NUMBER = "number"
DATE = "date"
#: A round with fewer than this share of the previous round's locations is flagged as thin.
THIN_ROUND_SHARE = 0.5
_ISO = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?$")


def kind_of(value: Any) -> str | None:
    """``"number"``, ``"date"`` (ISO ``YYYY-MM`` or ``YYYY-MM-DD``) or None for anything else."""
    if value is None:
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return NUMBER if math.isfinite(value) else None
    text = str(value).strip()
    m = _ISO.match(text)
    if m:
        try:
            datetime.date(int(m.group(1)), int(m.group(2)), int(m.group(3) or 1))
        except ValueError:
            return None
        return DATE
    try:
        x = float(text)
    except ValueError:
        return None
    return NUMBER if math.isfinite(x) else None


def normalise(value: Any, kind: str | None = None):
    """The canonical form of a round label: an int for whole numbers, a float, or the ISO date text."""
    kind = kind or kind_of(value)
    if kind == NUMBER:
        x = float(value) if not isinstance(value, (int, float)) else value
        return int(x) if float(x).is_integer() else float(x)
    if kind == DATE:
        return str(value).strip()
    raise ValueError(f"round {value!r} is not a number or an ISO date (YYYY-MM or YYYY-MM-DD)")


def sort_key(value: Any):
    """Natural order: numbers by value, dates chronologically."""
    if kind_of(value) == DATE:
        m = _ISO.match(str(value).strip())
        return (1, int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
    return (0, float(value), 0, 0)


def check_declared(ids: Iterable[Any]) -> None:
    """Rounds declared in a spec: each a number or an ISO date, one kind, no repeats."""
    ids = list(ids)
    kinds = set()
    seen = set()
    for v in ids:
        k = kind_of(v)
        if k is None:
            raise ValueError(f"round {v!r} is not a number or an ISO date (YYYY-MM or YYYY-MM-DD)")
        kinds.add(k)
        n = normalise(v, k)
        if n in seen:
            raise ValueError(f"round {v!r} is declared twice")
        seen.add(n)
    if len(kinds) > 1:
        raise ValueError("declared rounds mix numbers and dates: use one kind")


def declared(spec) -> list | None:
    """The spec's declared rounds in their order (canonical labels), or None."""
    if not spec.rounds:
        return None
    return [normalise(r.id) for r in spec.rounds]


def order(values: Iterable[Any], spec) -> list:
    """Distinct rounds of ``values`` in the declared order, else the natural order."""
    present = list(dict.fromkeys(values))
    dec = declared(spec)
    if dec is not None:
        rank = {r: i for i, r in enumerate(dec)}
        return sorted(present, key=lambda r: rank.get(r, len(rank)))
    return sorted(present, key=sort_key)


def reference(spec, present: Iterable[Any]) -> tuple[Any, str | None]:
    """The normalisation's reference round (as the data label it) and, when the data do not have it, the
    problem in words (None when they do, or when the scope is not ``reference``)."""
    raw = spec.normalise.reference_round
    if spec.normalise.scope != "reference":
        return None, None
    ref = normalise(raw) if kind_of(raw) else raw
    present = list(present)
    if ref in present:
        return ref, None
    return ref, (f"the spec's normalise.reference_round is {raw!r}, a round not in the data (rounds: "
                 f"{', '.join(map(str, present))}): set it to one of them")


def coverage(counts, ordered: list) -> list[dict]:
    """Locations per round against the round before: one dict per round of ``ordered``.

    ``counts`` maps a round to its number of locations (missing = 0).  Each dict has
    ``round``, ``locations``, ``previous_locations``, ``share_of_previous`` and ``thin``
    (fewer than :data:`THIN_ROUND_SHARE` of the previous round's locations).
    """
    rows, prev = [], None
    for rnd in ordered:
        n = int(counts.get(rnd, 0))
        share = n / prev if prev else float("nan")
        rows.append({"round": rnd, "locations": n, "previous_locations": prev, "share_of_previous": share,
                     "thin": bool(prev) and share < THIN_ROUND_SHARE})
        prev = n
    return rows


def label(spec, value) -> str:
    """How a report names a round: the declared label, else ``round <value>``."""
    for r in spec.rounds or []:
        if normalise(r.id) == value and r.label:
            return r.label
    return f"round {value}"


def problems(values, spec, factorized: tuple | None = None) -> list[tuple[int, str]]:
    """Positions of bad round labels in ``values`` and what is wrong with each.

    Missing labels are not reported here (they are empty identifiers).  ``factorized``
    (``pandas.factorize(values)``, when already computed) saves numbering the values again.
    """
    import numpy as np
    import pandas as pd

    codes, uniq = factorized if factorized is not None else pd.factorize(pd.Series(values))
    given = codes >= 0
    counts_of = np.bincount(codes[given], minlength=len(uniq))
    kinds = [kind_of(u) for u in uniq]
    dec = declared(spec)
    out: list[tuple[int, str]] = []
    if dec is not None:
        allowed = set(dec)
        shown = ", ".join(map(str, dec))
        bad = {i: f"round {_show(normalise(u, k) if k else u)} is not one of the rounds declared in the spec "
                  f"({shown})" for i, (u, k) in enumerate(zip(uniq, kinds)) if k is None or normalise(u, k) not in allowed}
    else:
        counts = {NUMBER: 0, DATE: 0}
        for n, k in zip(counts_of, kinds):
            if k is not None:
                counts[k] += int(n)
        main = NUMBER if counts[NUMBER] >= counts[DATE] else DATE
        other = {NUMBER: "numbers", DATE: "ISO dates"}[main]
        bad = {}
        for i, (u, k) in enumerate(zip(uniq, kinds)):
            if k is None:
                bad[i] = f"round {_show(u)} is not a number or an ISO date (YYYY-MM or YYYY-MM-DD)"
            elif k != main:
                what = "a date" if k == DATE else "a number"
                bad[i] = f"round {_show(u)} is {what} but the other rounds are {other} (one kind per dataset)"
    if not bad:
        return out
    for pos in np.flatnonzero(np.isin(codes, list(bad))):
        out.append((int(pos), bad[int(codes[pos])]))
    return out


def coerce(values):
    """Round labels in canonical form: int64 when every round is a whole number, floats for other
    numbers, else objects (ISO date text)."""
    import pandas as pd

    vals = pd.Series(values).reset_index(drop=True)
    uniq = pd.unique(vals)
    mapping = {u: normalise(u) for u in uniq}
    out = vals.map(mapping)
    if all(isinstance(v, int) for v in mapping.values()):
        return out.astype("int64").to_numpy()
    if all(isinstance(v, (int, float)) for v in mapping.values()):
        return out.astype(float).to_numpy()
    return out.to_numpy(dtype=object)


def _show(v) -> str:
    return f"'{v}'" if isinstance(v, str) else str(v)
