"""Change across survey rounds: per location, per area, and over time.

Works on a computed :class:`~stability.pipeline.Result` (every round is computed
with the same spec, so scores of different rounds are comparable):

* :func:`location_changes` — each location's index and pillar scores in a round,
  their change since the previous round and since the baseline (the first round
  of the data), its category then and now, whether it dropped or rose a
  category, and the pillars that moved most, in words;
* :func:`transitions` — the category transition matrix between two rounds
  (locations assessed in both);
* :func:`trends` — per area (region, or the whole country) and round: the median
  index and the people and locations in each category.

"Moved" means a change larger than ``threshold`` points (default
:data:`MOVE_THRESHOLD`); it is a fixed size of change, not a test of noise: how
much of a change the key informants' disagreement alone could produce is the
business of the uncertainty analysis (:mod:`stability.uncertainty`); :func:`informant_bootstrap`
is its slow reference, every step recomputed for each resample of the key informants.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: Change (index points) above which a pillar is said to have moved.
MOVE_THRESHOLD = 5.0
#: Area label of the whole country in :func:`trends`.
ALL = "all"


def _round_col(result) -> str | None:
    return result.spec.columns.round


def _resolve(result, survey_round) -> Any:
    rounds = list(result.rounds)
    if survey_round is None or survey_round == "latest":
        return rounds[-1] if rounds else None
    if survey_round not in rounds:
        raise ValueError(f"round {survey_round!r} is not in the data (rounds: {', '.join(map(str, rounds))})")
    return survey_round


def _rank_of(result) -> dict:
    """Category label -> its position, least stable first."""
    return {lab: k for k, lab in enumerate(result.spec.categories.labels)}


def _in_round(result, rnd) -> pd.DataFrame:
    s = result.scores
    col = _round_col(result)
    return s[s[col] == rnd] if col else s


def location_changes(result, survey_round=None, threshold: float = MOVE_THRESHOLD) -> pd.DataFrame:
    """Each location of ``survey_round`` with its change since the previous round and since the baseline.

    Parameters
    ----------
    result : Result
    survey_round : optional
        A round of the result (default: the latest).
    threshold : float
        Change (points) above which a pillar is listed as having moved.

    Returns
    -------
    DataFrame
        One row per location assessed in the round: the location id, the admin
        columns, ``<index>`` and each pillar now; ``previous_<x>`` and
        ``change_<x>`` since the previous round, ``baseline_<x>`` and
        ``change_since_baseline_<x>`` for the index and each pillar (missing when
        the location was not assessed then); ``category``, ``previous_category``,
        ``category_move`` (``dropped``, ``rose``, ``same``, ``new`` when not
        assessed in the previous round, ``not scored`` without an index now); ``pillars_moved`` (e.g. ``"safety -12.3,
        livelihoods +6.0"``, largest first, "" when none moved more than
        ``threshold``).  Locations that dropped a category come first (largest
        fall of the index first), then the others by change.
    """
    spec = result.spec
    c = spec.columns
    rounds = list(result.rounds)
    rnd = _resolve(result, survey_round)
    index = spec.root.id
    pillars = [a.id for a in spec.aggregates_at(2)]
    values = [index, *[p for p in pillars if p != index]]
    now = _in_round(result, rnd)
    keep = [k for k in [c.location, *c.admin, *([c.name] if c.name else [])] if k in now.columns]
    out = now[keep + values + ["category"]].reset_index(drop=True)
    pos = rounds.index(rnd) if rnd in rounds else 0

    def join(other_round, prefix: str, change_prefix: str):
        if other_round is None:
            for v in values:
                out[f"{prefix}{v}"] = np.nan
                out[f"{change_prefix}{v}"] = np.nan
            return None
        then = _in_round(result, other_round).set_index(c.location)
        for v in values:
            before = out[c.location].map(then[v])
            out[f"{prefix}{v}"] = before.astype(float)
            out[f"{change_prefix}{v}"] = (out[v] - before).astype(float)
        return then

    prev = join(rounds[pos - 1] if pos > 0 else None, "previous_", "change_")
    join(rounds[0] if pos > 0 else None, "baseline_", "change_since_baseline_")
    order = _rank_of(result)
    if prev is not None:
        out["previous_category"] = out[c.location].map(prev["category"].astype(object))
    else:
        out["previous_category"] = None
    now_rank = out["category"].astype(object).map(order)
    before_rank = out["previous_category"].map(order)
    move = np.select([now_rank.isna(), before_rank.isna(), now_rank < before_rank, now_rank > before_rank],
                     ["not scored", "new", "dropped", "rose"], "same")
    out["category_move"] = pd.Series(move, index=out.index, dtype=object)
    out["pillars_moved"] = _moved(out, [p for p in pillars if p != index], threshold)
    dropped = out["category_move"] == "dropped"
    out = out.assign(_d=~dropped, _c=out[f"change_{index}"].fillna(np.inf))
    out = out.sort_values(["_d", "_c", c.location], kind="mergesort").drop(columns=["_d", "_c"])
    return out.reset_index(drop=True)


def _moved(frame: pd.DataFrame, pillars: list[str], threshold: float) -> pd.Series:
    """``"safety -12.3, livelihoods +6.0"``: pillars whose change exceeds ``threshold``, largest first."""
    if not pillars:
        return pd.Series("", index=frame.index, dtype=object)
    changes = frame[[f"change_{p}" for p in pillars]].to_numpy(dtype=float)
    texts = []
    for row in changes:
        moved = [(abs(v), p, v) for p, v in zip(pillars, row) if np.isfinite(v) and abs(v) > threshold]
        moved.sort(key=lambda t: (-t[0], t[1]))
        texts.append(", ".join(f"{p} {v:+.1f}" for _, p, v in moved))
    return pd.Series(texts, index=frame.index, dtype=object)


def transitions(result, survey_round=None, region: str | None = None) -> pd.DataFrame:
    """Category transition matrix: locations by category in the previous round (rows) and in ``survey_round``.

    Only locations assessed (with an index) in both rounds are counted, so the
    matrix sums to their number.  Rows and columns list every category, least
    stable first.  Empty (no rows) when ``survey_round`` is the first round.

    Parameters
    ----------
    result : Result
    survey_round : optional
        Default: the latest round.
    region : str, optional
        Admin-1 p-code to restrict to.
    """
    labels = list(result.spec.categories.labels)
    ch = location_changes(result, survey_round)
    if region is not None:
        ch = ch[ch[result.spec.columns.admin[0]] == region]
    both = ch[ch["previous_category"].notna() & ch["category"].notna()]
    table = pd.crosstab(pd.Categorical(both["previous_category"], categories=labels),
                        pd.Categorical(both["category"].astype(object), categories=labels), dropna=False)
    table.index.name, table.columns.name = "previous round", "this round"
    return table.reindex(index=labels, columns=labels, fill_value=0).astype(int)


def trends(result, by: str | None = "region", people: tuple[str, ...] = ("idps", "returnees", "population")
           ) -> pd.DataFrame:
    """Per area and round: the median index, locations and people in each category.

    Parameters
    ----------
    result : Result
    by : str or None
        ``"region"`` (the first admin column), another column of the scores, or
        None for the whole country only.  The country (``area`` = :data:`ALL`) is
        always included.
    people : tuple of str
        Columns of people counts to total per category (those the data lack are skipped).

    Returns
    -------
    DataFrame
        ``area``, ``round``, ``locations``, ``median_index``, then for each
        category ``locations_<category>`` and ``<people>_<category>``.
    """
    spec = result.spec
    c = spec.columns
    s = result.scores
    col = c.admin[0] if by == "region" and c.admin else by
    rcol = c.round
    labels = list(spec.categories.labels)
    index = spec.root.id
    frames = [s.assign(_area=ALL)]
    if col:
        frames.append(s.assign(_area=s[col].astype(str)))
    data = pd.concat(frames, ignore_index=True)
    keys = ["_area", rcol] if rcol else ["_area"]
    g = data.groupby(keys, sort=True, observed=True)
    out = pd.DataFrame({"locations": g[index].count(), "median_index": g[index].median()})
    cat = data["category"].astype(object)
    for lab in labels:
        hit = cat == lab
        out[f"locations_{lab}"] = hit.groupby([data[k] for k in keys]).sum()
        for p in people:
            if p in data.columns:
                out[f"{p}_{lab}"] = data[p].where(hit, 0).fillna(0).groupby([data[k] for k in keys]).sum()
    out = out.reset_index().rename(columns={"_area": "area", **({rcol: "round"} if rcol else {})})
    if not rcol:
        out.insert(1, "round", None)
    order = {ALL: 0}
    out = out.assign(_o=out["area"].map(order).fillna(1)).sort_values(["_o", "area", "round"], kind="mergesort")
    return out.drop(columns="_o").reset_index(drop=True)


# --------------------------------------------------------------------------- informant bootstrap (reference)
#: Replicates of the key-informant bootstrap (about 0.4 s each on the embedded survey).
BOOTSTRAP_REPLICATES = 100


def informant_bootstrap(data, spec, n: int = BOOTSTRAP_REPLICATES, seed: int = 0) -> pd.DataFrame:
    """The index recomputed ``n`` times with each location's key informants resampled.

    Each replicate draws, within every location and round, as many informants as it
    had, with replacement (their answers together), and recomputes the index from
    those answers with the same spec (every step, including the data-driven ones).
    It measures how much a location's index depends on which informants were met.
    It is the slow reference of :mod:`stability.resample` (whose draws are the same for
    the same seed): :mod:`stability.uncertainty` tells changes beyond noise from it
    in a fraction of the time, with the nominal run's fitted steps.

    Parameters
    ----------
    data : Dataset
        The survey (:func:`stability.io.load_dataset`), one row per key informant.
    spec : IndexSpec
    n : int
        Replicates (at least 2).
    seed : int
        Seed: the same data, spec, ``n`` and seed give the same replicates.

    Returns
    -------
    DataFrame
        Indexed like the scores' locations and rounds (``Result.stage("aggregated").index``), one
        column per replicate (``0`` ... ``n - 1``) holding the index.

    Raises
    ------
    ValueError
        When the answers are one row per location (no key-informant column in the spec), or ``n < 2``.
    """
    from .pipeline import prepare, run

    if not spec.columns.key_informant:
        raise ValueError("the answers are one row per location (no columns.key_informant): there are no key "
                         "informants to resample")
    if n < 2:
        raise ValueError(f"the bootstrap needs at least 2 replicates, got {n}")
    draw = informant_sample(data, spec)
    out = {}
    for b in range(n):
        result = run(prepare(draw(seed, b), spec, check=False), spec)
        out[b] = result.stage("aggregated")[spec.root.id]
    return pd.DataFrame(out)


def informant_sample(data, spec):
    """The key-informant resampling of :func:`informant_bootstrap`: ``draw(seed, r)`` is replicate ``r``'s survey.

    Within every location and round, as many informants as it had are drawn with replacement
    (``np.random.default_rng([seed, r])``, one uniform number per answer row, rows grouped by
    location and round in sorted order); their answers come together.  The vectorised
    bootstrap (:class:`stability.resample.InformantResampler`) makes the same draws.
    """
    from dataclasses import replace

    c = spec.columns
    answers = data.answers
    keys = [c.location] + ([c.round] if c.round else [])
    groups = list(answers.groupby(keys, sort=True).indices.values())
    sizes = np.array([len(g) for g in groups])
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    spans = np.repeat(sizes, sizes)
    members = np.concatenate(groups)

    def draw(seed: int, r: int):
        rng = np.random.default_rng([seed, r])
        pick = starts + np.floor(rng.random(len(members)) * spans).astype(np.int64)
        return replace(data, answers=answers.iloc[members[pick]].reset_index(drop=True))

    return draw

