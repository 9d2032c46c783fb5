"""Step 0 -- from key-informant answers to one value per location and round.

Answers are first *encoded*: labels of coded questions (``yes``/``no``,
``none``/``some``/``most``/``all``) become their numeric codes as given by the
spec's answer types (``dont_know`` and other codes mapped to ``null`` become
missing); other answers are read as numbers.

Several key informants (KIs) answer for each location and round; their answers
are *combined* per indicator with the median (default), the mode (ties: mean of
the tied values) or the mean, ignoring missing answers.  The *disagreement* of
an indicator at a location is the mean absolute deviation of the informants'
answers from the combined value divided by the span of valid values (0 = all
agree; 0.5 = e.g. two "yes" against two "no").  It is flagged when it reaches
``combine.disagreement_threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def label_map(answer_type) -> dict[str, float]:
    """Lower-cased label -> code (NaN for missing codes), plus the codes written as numbers."""
    mapping: dict[str, float] = {}
    for label, code in (answer_type.codes or {}).items():
        value = np.nan if code is None else float(code)
        mapping[str(label).strip().lower()] = value
        if code is not None:
            mapping[f"{float(code):g}"] = value
    return mapping


def _lookup(value, mapping: dict[str, float]) -> tuple[float, bool]:
    text = str(value).strip().lower()
    if text in mapping:
        return mapping[text], True
    try:
        key = f"{float(text):g}"
    except ValueError:
        return np.nan, False
    return (mapping[key], True) if key in mapping else (np.nan, False)


def encode_column(values: pd.Series, answer_type) -> tuple[np.ndarray, np.ndarray]:
    """Encode one answer column.

    Returns
    -------
    codes : ndarray of float
        NaN where missing or invalid.
    invalid : ndarray of bool
        True where a non-empty answer could not be read (unknown label, not a number, or
        an infinite number).
    """
    if pd.api.types.is_numeric_dtype(values.dtype) and (answer_type is None or answer_type.codes is None):
        codes = values.to_numpy(dtype=float, na_value=np.nan)  # may be a view of the column: never written to
        infinite = np.isinf(codes)
        return (np.where(infinite, np.nan, codes) if infinite.any() else codes), infinite
    present = values.notna().to_numpy()
    if answer_type is not None and answer_type.codes is not None:
        # look up each distinct answer once
        pos, uniques = pd.factorize(values, use_na_sentinel=True)
        mapping = label_map(answer_type)
        found = [_lookup(u, mapping) for u in uniques]
        lut = np.array([f[0] for f in found] + [np.nan], dtype=float)
        ok = np.array([f[1] for f in found] + [True], dtype=bool)
        return lut[pos], ~ok[pos]
    text = values.astype(object).where(values.notna(), None)
    codes = pd.to_numeric(text.map(lambda v: v.strip() if isinstance(v, str) else v, na_action="ignore"),
                          errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    codes = np.where(np.isinf(codes), np.nan, codes)  # 'inf' is not an answer
    return codes, present & np.isnan(codes)


def encode(answers: pd.DataFrame, spec, known: dict | None = None, *, rows: np.ndarray | None = None,
           index: pd.Index | None = None) -> pd.DataFrame:
    """Numeric codes of every indicator column (invalid answers become NaN).

    ``known`` maps indicator ids to codes already computed from these answers
    (by :func:`stability.validate.validate`), which are used as they are.
    ``rows`` (with ``index``) takes those answer rows, in that order, under that index.
    """
    n = len(answers) if rows is None else len(rows)
    # written column by column into one block, which the table then uses as it is
    out = np.empty((n, len(spec.indicators)), order="F")
    known = known or {}
    for j, ind in enumerate(spec.indicators):
        if ind.id in known and len(known[ind.id]) == len(answers):
            codes = known[ind.id]
        else:
            atype = spec.answers.get(ind.answers) if ind.answers else None
            codes = encode_column(answers[ind.id], atype)[0]
        if rows is None:
            out[:, j] = codes
        else:
            np.take(codes, rows, out=out[:, j])
    return pd.DataFrame(out, index=answers.index if index is None else index,
                        columns=[ind.id for ind in spec.indicators], copy=False)


@dataclass
class Combined:
    """Key-informant answers combined per location and round.

    Attributes
    ----------
    values : DataFrame
        Index (location, round); one column per indicator.
    disagreement : DataFrame
        Same shape: disagreement in [0, 1] (NaN with fewer than two answers).
    flagged : DataFrame of bool
        ``disagreement >= threshold``.
    n_informants : Series
        Key informants per location and round.
    """

    values: pd.DataFrame
    disagreement: pd.DataFrame
    flagged: pd.DataFrame
    n_informants: pd.Series


def _mode(coded: pd.DataFrame, keys: list[str], cols: list[str]) -> pd.DataFrame:
    """Per group and column: the most frequent value; ties give the mean of the tied values."""
    long = coded[keys + cols].melt(id_vars=keys, var_name="_col", value_name="_v").dropna(subset=["_v"])
    counts = long.groupby(keys + ["_col", "_v"], sort=True).size().rename("_n").reset_index()
    top = counts.groupby(keys + ["_col"])["_n"].transform("max")
    modal = counts[counts["_n"] == top].groupby(keys + ["_col"])["_v"].mean()
    return modal.unstack("_col")


def spans(spec, coded: pd.DataFrame) -> dict[str, float]:
    """Span of valid answers per indicator (its valid range, else the observed range)."""
    out = {}
    for ind in spec.indicators:
        lo, hi = spec.valid_range(ind)
        if lo is None or hi is None:
            col = coded[ind.id]
            lo, hi = col.min(), col.max()
        span = float(hi - lo) if pd.notna(hi) and pd.notna(lo) else np.nan
        out[ind.id] = span if span > 0 else np.nan
    return out


def combine(coded: pd.DataFrame, spec) -> Combined:
    """Combine key-informant answers (``coded`` has the key columns and encoded indicators)."""
    c = spec.columns
    keys = [c.location] + ([c.round] if c.round else [])
    cols = spec.indicator_ids
    grouped = coded.groupby(keys, sort=True)
    n_ki = grouped.size().rename("n_informants")
    by_method: dict[str, list[str]] = {}
    for ind in spec.indicators:
        by_method.setdefault(spec.combine_method(ind), []).append(ind.id)
    parts = []
    for method, ids in by_method.items():
        if method == "median":
            parts.append(grouped[ids].median())
        elif method == "mean":
            parts.append(grouped[ids].mean())
        else:
            parts.append(_mode(coded, keys, ids).reindex(index=n_ki.index, columns=ids))
    values = pd.concat(parts, axis=1)[cols].astype(float)
    # disagreement: mean |answer - combined| / span
    combined_per_row = values.reindex(pd.MultiIndex.from_frame(coded[keys]) if len(keys) > 1
                                      else pd.Index(coded[keys[0]]))
    dev = (coded[cols].to_numpy(dtype=float) - combined_per_row.to_numpy(dtype=float))
    span_of = spans(spec, coded)
    span = np.array([span_of[k] for k in cols])
    dev = pd.DataFrame(np.abs(dev) / span, columns=cols, index=coded.index)
    for k in keys:
        dev[k] = coded[k].to_numpy()
    g = dev.groupby(keys, sort=True)
    disagreement = g[cols].mean()
    answered = g[cols].count()
    disagreement = disagreement.where(answered >= 2)
    flagged = disagreement >= spec.combine.disagreement_threshold
    return Combined(values=values, disagreement=disagreement, flagged=flagged, n_informants=n_ki)
