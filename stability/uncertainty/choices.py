"""The options of an uncertainty analysis and the alternatives of each modelling choice it varies.

:func:`options` reads the spec's ``uncertainty`` section with overrides; :func:`_plan` turns them into
the alternatives each replicate draws from (normalisation, aggregation, outlier treatment,
imputation, indicator left out), refusing those whose index would not be on the categories' scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..exceptions import SpecError

#: The sources of uncertainty.
SOURCES = ("choices", "informants")
#: Outlier-treatment alternatives of ``winmax: true``.
ALL_WINMAX = (1, 2, 3, 4, 5, "none")


# --------------------------------------------------------------------------- options
def options(spec, overrides: Mapping[str, Any] | None = None):
    """The ``uncertainty`` options of a spec, with some overridden (validated as the spec's section).

    Raises
    ------
    SpecError
        One line naming the option (``uncertainty.runs``...) when an override breaks a rule.
    """
    from pydantic import ValidationError

    from ..spec import Uncertainty as Section

    overrides = {k: v for k, v in dict(overrides or {}).items() if v is not None}
    if not overrides:
        return spec.uncertainty
    unknown = sorted(set(overrides) - set(Section.model_fields))
    if unknown:
        raise SpecError(f"unknown option '{unknown[0]}' (options: {', '.join(Section.model_fields)})",
                        column=f"uncertainty.{unknown[0]}")
    try:
        return Section.model_validate({**spec.uncertainty.model_dump(), **overrides})
    except ValidationError as exc:
        err = exc.errors()[0]
        cause = (err.get("ctx") or {}).get("error")
        where = ".".join(str(k) for k in err["loc"] if not isinstance(k, int))
        where = getattr(cause, "field", None) or (f"uncertainty.{where}" if where else "uncertainty")
        raise SpecError(err["msg"].removeprefix("Value error, "), column=where) from None


# --------------------------------------------------------------------------- alternatives
@dataclass(frozen=True)
class _Alt:
    """One alternative of a modelling choice: its label and the spec changes (or level methods) it makes."""

    label: str
    changes: dict = field(default_factory=dict)
    methods: tuple | None = None  # aggregation: ((method, p) per level 2..L)


def _label(entry: Mapping) -> str:
    rest = ", ".join(f"{k}={v}" for k, v in entry.items() if k != "method")
    return f"{entry['method']}({rest})" if rest else str(entry["method"])


def _entries(value) -> list[dict]:
    return [dict(v) if isinstance(v, Mapping) else {"method": v} for v in value]


def _with(spec, changes: Mapping, option: str, label: str):
    """``spec.with_changes(changes)``, any refusal re-raised naming the uncertainty option."""
    try:
        return spec.with_changes(changes)
    except SpecError as exc:
        raise SpecError(f"alternative '{label}': {exc.message}", column=f"uncertainty.{option}") from None


@dataclass
class _Plan:
    """The alternatives of every modelling choice, checked against the spec."""

    normalise: list[_Alt]
    aggregate: list[_Alt]
    winmax: list[_Alt]
    impute: list[_Alt]
    leave_out: list[str | None]
    weights: Any  # the UncertaintyWeights section
    sources: tuple[str, ...]

    @property
    def varies(self) -> bool:
        return "choices" in self.sources


def _nominal_methods(spec) -> tuple:
    return tuple((lv.method, lv.p) for lv in spec.levels[1:])


def _methods_label(methods: tuple) -> str:
    labels = [m if p is None else f"{m}(p={p:g})" for m, p in methods]
    return labels[0] if len(set(labels)) == 1 else "/".join(labels)


def _needs_positive(method: str, p) -> bool:
    return method in ("geometric", "harmonic") or (method == "generalised" and p is not None and p <= 0)


def _plan(spec, opts, sources: tuple[str, ...]) -> _Plan:
    """Resolve the alternatives of the options (``true`` lists, the nominal choice, duplicates) and check them."""
    from ..aggregate import AGGREGATIONS
    from ..impute import IMPUTERS
    from ..normalise import NORMALISERS

    nominal_range = spec.index_range()
    choices = "choices" in sources

    def resolve(option: str, given, nominal: _Alt, build, section, check=None) -> list[_Alt]:
        if not choices or given is False:
            return [nominal]
        explicit = given is not True
        entries = _entries(given) if explicit else [{"method": m} for m in build]
        alts = [nominal] if opts.include_nominal else []
        seen = [section(spec)] if opts.include_nominal else []
        for entry in entries:
            label = _label(entry)
            changes = {f"{option}.{k}": v for k, v in entry.items()}
            try:
                changed = _with(spec, changes, option, label)
                if check is not None:
                    check(changed, label)
            except SpecError:
                if explicit:
                    raise
                continue  # 'true': every method that suits the index
            if section(changed) in seen:
                continue
            seen.append(section(changed))
            alts.append(_Alt(label, changes))
        if not alts:
            raise SpecError("no alternative left (include_nominal is false and none of the listed ones suits the "
                            "index)", column=f"uncertainty.{option}")
        return alts

    def same_scale(changed, label):
        rng = changed.index_range()
        if rng != nominal_range:
            shown = "no fixed range" if rng is None else f"range {rng[0]:g}-{rng[1]:g}"
            scale = "no fixed range" if nominal_range is None else f"{nominal_range[0]:g}-{nominal_range[1]:g}"
            raise SpecError(f"alternative '{label}' gives an index with {shown}, not on the scale of the nominal "
                            f"index and its categories ({scale})", column="uncertainty.normalise")

    normalise = resolve("normalise", opts.normalise, _Alt(_label({"method": spec.normalise.method})),
                        NORMALISERS.names(), lambda s: (s.normalise, [i.normalise for i in s.indicators]),
                        same_scale)
    group = spec.impute.group
    impute_all = [m.name for m in IMPUTERS if not m.grouped or group]
    impute = resolve("impute", opts.impute, _Alt(spec.impute.method), impute_all, lambda s: s.impute)

    # outlier treatment: points winsorised at most, or none
    treat_label = "none" if spec.treat.method == "none" else str(spec.treat.winmax)
    winmax = [_Alt(treat_label)]
    if choices and opts.winmax is not False:
        given = ALL_WINMAX if opts.winmax is True else opts.winmax
        winmax = [_Alt(treat_label)] if opts.include_nominal else []
        labels = [a.label for a in winmax]
        for k in given:
            label = str(k)
            if label in labels:
                continue
            labels.append(label)
            changes = ({"treat.method": "none"} if k == "none" else {"treat.method": "winsorise", "treat.winmax": k})
            _with(spec, changes, "winmax", label)
            winmax.append(_Alt(label, changes))

    # aggregation: one method for every level
    levels = range(2, len(spec.levels) + 1)
    nominal_methods = _nominal_methods(spec)
    aggregate = [_Alt(_methods_label(nominal_methods), methods=nominal_methods)]
    if choices and opts.aggregate is not False:
        explicit = opts.aggregate is not True
        entries = (_entries(opts.aggregate) if explicit else
                   [{"method": m.name} for m in AGGREGATIONS if not m.requires and m.on_scale])
        aggregate = aggregate if opts.include_nominal else []
        for entry in entries:
            methods = tuple((entry["method"], entry.get("p")) for _ in levels)
            if any(a.methods == methods for a in aggregate):
                continue
            label = _label(entry)
            changes = {}
            for lv in levels:
                changes[f"levels.{lv}.method"] = entry["method"]
                changes[f"levels.{lv}.p"] = entry.get("p")
            try:
                _with(spec, changes, "aggregate", label)
                if _needs_positive(entry["method"], entry.get("p")):
                    for alt in normalise:
                        rng = _with(spec, alt.changes, "normalise", alt.label).index_range()
                        if rng is None:
                            raise SpecError(f"alternative '{label}' needs positive scores, and the normalisation "
                                            f"'{alt.label}' has no fixed range to map onto [1, 100]: use a bounded "
                                            "normalisation", column="uncertainty.aggregate")
            except SpecError:
                if explicit:
                    raise
                continue
            aggregate.append(_Alt(label, changes, methods))
        if not aggregate:
            raise SpecError("no alternative left (include_nominal is false and none of the listed ones suits the "
                            "index)", column="uncertainty.aggregate")

    leave_out: list[str | None] = [None]
    if choices and opts.leave_one_out:
        leave_out = ([None] if opts.include_nominal else []) + list(spec.indicator_ids)
    return _Plan(normalise, aggregate, winmax, impute, leave_out, opts.weights, sources)


