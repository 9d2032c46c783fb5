"""``Result.recompute`` re-runs exactly the steps an option change affects.

Every option of the spec declares the first pipeline step that reads it
(``stability.spec.iter_options``).  The test below walks every option path of the
spec model, changes it to each of a few valid alternatives, and checks that
recomputing gives the same scores as computing from scratch with the changed spec:
an option whose declared step is too late would reuse a stale stage and fail here.
"""

from __future__ import annotations

import typing

import pandas as pd
import pytest

import stability as st
from stability.exceptions import DataError, StabilityError, ValidationFailed
from stability.paths import default_spec
from stability.registry import families
from stability.spec import STEP_ORDER, IndexSpec, _Model, iter_options

#: Indicators whose options are walked: one per answer type, a goalposted count, a denominated count.
WALKED_INDICATORS = ("armed_groups_present", "security_incidents_3m", "freedom_of_movement", "water_points")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small illustrative survey (fast to compute) and the Mali spec with declared rounds."""
    folder = tmp_path_factory.mktemp("recompute")
    from stability.generate import generate  # the function (``stability.generate`` is also its module)

    generate(n_locations=120, n_rounds=2, seed=7).write(folder)
    data = st.load_dataset(folder)
    spec = st.load_spec(default_spec()).with_changes({"rounds": [{"id": 1, "label": "first"}, {"id": 2, "label": "second"}],
                              "levels.2.threshold": 0.5})
    return data, spec, st.compute(data, spec)


def _annotation(path: str):
    """The type annotation of the option at ``path`` (list items by id, levels by number)."""
    cls: type = IndexSpec
    keys = path.split(".")
    i = 0
    while True:
        ann = cls.model_fields[keys[i]].annotation
        if i == len(keys) - 1:
            return ann
        model, skip = _inner_model(ann)
        cls = model
        i += 2 if skip else 1


def _inner_model(ann) -> tuple[type, bool]:
    """The spec section inside ``ann``, and whether a list/dict key comes before its fields."""
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if isinstance(ann, type) and issubclass(ann, _Model):
        return ann, False
    if origin in (list, dict):
        return _inner_model(args[-1])[0], True
    for a in args:
        if a is type(None):
            continue
        try:
            return _inner_model(a)
        except TypeError:
            continue
    raise TypeError(f"no section in {ann}")


def _literals(ann) -> list:
    if typing.get_origin(ann) is typing.Literal:
        return list(typing.get_args(ann))
    return [x for a in typing.get_args(ann) for x in _literals(a)]


def _is(ann, kind) -> bool:
    return ann is kind or kind in typing.get_args(ann)


def alternatives(path: str, value) -> list:
    """A few other values an option can take (some may be refused by the spec; they are skipped)."""
    if path == "weights":
        return [{"3": {"method": "pca"}}, {"2": {"method": "factor"}}]
    if path.startswith("weights.") and path.endswith(".rounds"):
        return [[1], [2]]
    if path.startswith("weights.") and path.endswith((".points", ".target")):
        kids = list(value) if isinstance(value, dict) else WEIGHED_CHILDREN
        return [{k: (3.0 if i == 0 else 1.0) for i, k in enumerate(kids)}]
    ann = _annotation(path)
    option = ".".join(k for k in path.split(".") if not k.isdigit() and k not in _ITEM_KEYS)
    regs = families()
    if path.endswith(".method") and option in regs:
        return [m for m in regs[option].names() if m != value]
    if path == "impute.fallback":
        return [m.name for m in regs["impute.method"] if not m.grouped and m.name != value]
    if path.endswith("normalise.method"):
        return [m for m in regs["normalise.method"].names() if m != value]
    lits = _literals(ann)
    if lits:
        return [v for v in lits if v != value] + ([None] if value is not None and _is(ann, type(None)) else [])
    if isinstance(value, bool) or ann is bool:
        return [not value]
    if path.startswith("uncertainty.") and isinstance(value, list):  # alternatives of a modelling choice
        return [False, value[:1]]
    if path.startswith("indicators.") and path.endswith(".parent"):
        return [p for p in ("livelihoods", "cohesion") if p != value]
    if path.startswith("indicators.") and path.endswith(".normalise"):
        return [{"method": "percentile"}, {"method": "minmax", "l": 10}]
    if path.endswith(".codes") and isinstance(value, dict):
        top = max(v for v in value.values() if v is not None)
        return [{k: (top + 1 if v == top else v) for k, v in value.items()}]
    if path.endswith(("label", "name", "description")):
        return [f"{value or ''} (changed)"]
    if path.endswith(("goalposts", "range")):
        return [[0, 5], [1, 2], None]
    if path.endswith("cuts"):
        return [[30, 70], [0.3, 0.7]]
    if path.endswith("labels"):
        return [["a", "b", "c"]]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        out = [value * 2 if value else 1, value / 2 if value else 0.5, value + 0.3]
        return [int(v) if isinstance(value, int) and float(v).is_integer() else v for v in out if v != value]
    if value is None:
        return [0.5, 2.0, 1, "admin1_pcode"]
    if isinstance(value, str):
        return ["admin1_pcode", "admin2_pcode"] if value != "admin1_pcode" else ["admin2_pcode"]
    return []


#: Level 3 (pillars within the index) is the level whose weights the walk derives.
WEIGHED_CHILDREN = ["safety", "livelihoods", "cohesion"]

#: Per weighting method, the options that make a valid section of it (the walk sets each method in turn).
WEIGHTING_BASES = {
    "equal": {}, "expert": {}, "budget": {"points": {"safety": 2.0, "livelihoods": 1.0, "cohesion": 1.0}},
    "pca": {}, "factor": {}, "outcome": {"outcome": "stays_6_months"}, "optimised": {},
}

_ITEM_KEYS: set[str] = set()
STRUCTURAL = {"id", "level", "parent", "answers", "admin", "admin_names", "codes"}


def option_paths(spec) -> list[tuple[str, object, str]]:
    """Every option path of ``spec`` except other indicators than :data:`WALKED_INDICATORS`."""
    ids = {i.id for i in spec.indicators} | {a.id for a in spec.aggregates} | {str(r.id) for r in spec.rounds or []}
    _ITEM_KEYS.update(ids | {lv.name for lv in spec.levels} | set(spec.answers))
    out = []
    for path, value, step in iter_options(spec):
        parts = path.split(".")
        if parts[0] == "indicators" and parts[1] not in WALKED_INDICATORS:
            continue
        out.append((path, value, step))
    return out


def test_every_option_declares_a_known_step(mali_spec):
    seen = set()
    walked = mali_spec.with_changes({"rounds": [{"id": 1}], "levels.2.p": 1.0, "weights.3.method": "equal"})
    for path, _, step in iter_options(walked):
        assert step in STEP_ORDER, path
        seen.add(path.split(".")[-1])
    # every field of every section is walked (a new kind of section cannot hide its options)
    sections = [IndexSpec]
    fields = set()
    while sections:
        cls = sections.pop()
        for name, f in cls.model_fields.items():
            try:
                inner, _ = _inner_model(f.annotation)
                sections.append(inner)
            except TypeError:
                fields.add(name)
    assert fields - seen == set()


def _scores_equal(got, expected):
    pd.testing.assert_frame_equal(got.scores, expected.scores, check_exact=True)


def _cases():
    spec = st.load_spec(default_spec()).with_changes(
        {"rounds": [{"id": 1, "label": "first"}, {"id": 2, "label": "second"}], "levels.2.threshold": 0.5})
    cases = [(p, v, None) for p, v, _ in option_paths(spec)]
    # each weighting method with the options it reads (the others are refused with it)
    from stability.weights import WEIGHTINGS

    for method, base in WEIGHTING_BASES.items():
        section = {"method": method, **base}
        weighted = spec.with_changes({"weights.3": section})
        own = set(WEIGHTINGS[method].params) | {"method", "rounds"}
        # (a method that needs options of its own cannot be switched alone: the others refuse them)
        cases += [(p, v, section) for p, v, _ in iter_options(weighted)
                  if p.startswith("weights.3.") and p.rsplit(".", 1)[-1] in own - ({"method"} if base else set())]
    return cases


def _case_id(case) -> str:
    path, _, section = case
    return path if section is None else f"{path}[{section['method']}]"


@pytest.mark.parametrize("path, value, section", _cases(), ids=[_case_id(c) for c in _cases()])
def test_recompute_equals_compute_for_every_option(small, path, value, section):
    data, spec, base = small
    if section is not None:  # a spec whose pillar weights come from the data
        spec = spec.with_changes({"weights.3": section})
        base = st.compute(data, spec)
    tried = 0
    for new in alternatives(path, value):
        try:
            changed = spec.with_changes({path: new})
        except StabilityError:
            continue  # not a valid spec: nothing to recompute
        if changed.hash == spec.hash:
            continue
        tried += 1
        try:
            expected = st.compute(data, changed)
        except StabilityError as exc:
            # recompute re-runs steps without validating again: a data problem validation names is a DataError there
            with pytest.raises(DataError if isinstance(exc, ValidationFailed) else type(exc)):
                base.recompute({path: new})
            continue
        got = base.recompute({path: new})
        _scores_equal(got, expected)
        assert got.spec.hash == changed.hash
        if tried >= 2:
            break
    if not tried:
        # structural options (ids, levels, parents of aggregates, answer types, the admin columns) have
        # no alternative that keeps the hierarchy and the data valid; they belong to early steps anyway
        assert path.rsplit(".", 1)[-1] in STRUCTURAL, f"no valid alternative value tried for {path}"


def test_recompute_reuses_the_stages_before_the_change(small):
    data, spec, base = small
    weights = base.recompute({"indicators.robbery.weight": 2})
    assert weights.stage("normalised") is base.stage("normalised")
    scale = base.recompute({"levels.3.method": "generalised", "levels.3.p": 2})
    assert scale.stage("normalised") is base.stage("normalised")
    label = base.recompute({"aggregates.safety.label": "Security"})
    assert label.stage("aggregated") is base.stage("aggregated")
    scope = base.recompute({"normalise.scope": "round"})  # read by imputation first
    assert scope.stage("denominated") is base.stage("denominated")
    assert scope.stage("imputed") is not base.stage("imputed")
