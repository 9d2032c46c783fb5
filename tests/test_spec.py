"""The index specification: loading, validation rules, error messages, changes and the hash."""

from __future__ import annotations

import copy
import re

import pytest
import pydantic
import yaml

from stability.exceptions import SpecError
from stability.paths import default_spec
from stability.spec import IndexSpec, load_spec, spec_from_dict


@pytest.fixture(scope="module")
def mali_dict():
    return yaml.safe_load(default_spec().read_text(encoding="utf-8"))


def edited(data: dict, fn) -> dict:
    d = copy.deepcopy(data)
    fn(d)
    return d


def indicator(d: dict, ident: str) -> dict:
    return next(i for i in d["indicators"] if i["id"] == ident)


# ------------------------------------------------------------------------------ the Mali spec


def test_mali_spec_structure(mali_spec):
    assert isinstance(mali_spec, IndexSpec)
    assert len(mali_spec.indicators) == 25
    assert [a.id for a in mali_spec.aggregates_at(2)] == ["safety", "livelihoods", "cohesion"]
    assert mali_spec.root.id == "stability"
    assert [lv.name for lv in mali_spec.levels] == ["Indicator", "Pillar", "Index"]
    assert {len(mali_spec.children(p)) for p in ("safety", "livelihoods", "cohesion")} == {8, 10, 7}
    robbery = mali_spec.indicator("robbery")
    assert (robbery.parent, robbery.direction, robbery.answers) == ("safety", -1, "yes_no")
    assert mali_spec.valid_range(robbery) == (0, 1)
    assert mali_spec.goalposts(mali_spec.indicator("safe_at_night")) == (0, 3)
    assert mali_spec.goalposts(mali_spec.indicator("water_points")) == (0, 3)
    assert mali_spec.within() == "admin1_pcode"
    assert mali_spec.combine_method(robbery) == "median"


def test_goalposts_need_a_finite_range():
    d = {"name": "t", "answers": {"count": {"range": [0, None]}},
         "indicators": [{"id": "n", "parent": "I", "answers": "count"}],
         "aggregates": [{"id": "I", "level": 2}], "levels": [{"name": "i"}, {"name": "x"}]}
    spec = spec_from_dict(d)
    with pytest.raises(SpecError, match="goalposts"):
        spec.goalposts(spec.indicator("n"))


def test_hash_is_stable_and_short(mali_spec, mali_dict):
    again = load_spec(default_spec())
    assert re.fullmatch(r"[0-9a-f]{12}", mali_spec.hash)
    assert again.hash == mali_spec.hash
    assert spec_from_dict(mali_dict).hash == mali_spec.hash


def test_hash_ignores_how_defaults_are_written(mali_dict, mali_spec):
    def spell_out_defaults(d):
        d["treat"]["coded"] = False
        d["combine"]["min_informants"] = 1
        d["rank"] = {"within": None}
        indicator(d, "robbery")["weight"] = 1.0

    assert spec_from_dict(edited(mali_dict, spell_out_defaults)).hash == mali_spec.hash


def test_hash_changes_with_any_option(mali_spec):
    changed = {
        mali_spec.with_changes({"normalise.method": "minmax"}).hash,
        mali_spec.with_changes({"indicators.robbery.weight": 2}).hash,
        mali_spec.with_changes({"levels.2.method": "geometric"}).hash,
        mali_spec.with_changes({"treat.winmax": 3}).hash,
        mali_spec.with_changes({"categories.cuts": [30, 60]}).hash,
    }
    assert len(changed) == 5 and mali_spec.hash not in changed


def test_yaml_round_trip_keeps_the_hash(mali_spec):
    text = mali_spec.to_yaml()
    assert spec_from_dict(yaml.safe_load(text)).hash == mali_spec.hash


# ------------------------------------------------------------------------------ with_changes


def test_with_changes_returns_a_new_validated_spec(mali_spec):
    new = mali_spec.with_changes({"normalise.method": "minmax", "indicators.robbery.weight": 2,
                                  "levels.3.method": "geometric", "levels.2.threshold": 0.25})
    assert new.normalise.method == "minmax"
    assert new.indicator("robbery").weight == 2
    assert new.levels[2].method == "geometric" and new.levels[1].threshold == 0.25
    # the original is untouched (specs are frozen values)
    assert mali_spec.normalise.method == "goalposts"
    assert mali_spec.indicator("robbery").weight == 1
    with pytest.raises(pydantic.ValidationError):
        mali_spec.normalise.method = "zscore"


def test_with_changes_merges_mappings(mali_spec):
    new = mali_spec.with_changes({"normalise": {"method": "minmax", "l": 1}})
    assert (new.normalise.method, new.normalise.l, new.normalise.u) == ("minmax", 1, 100)
    assert new.normalise.scope == "reference"     # merged, not replaced
    assert mali_spec.with_changes({}).hash == mali_spec.hash


def test_levels_are_numbered_as_aggregate_levels_everywhere(mali_spec):
    # level 1 = indicators, 2 = pillars (aggregates[].level == 2), 3 = the index
    assert {a.level for a in mali_spec.aggregates if a.parent == "stability"} == {2}
    pillar = mali_spec.with_changes({"levels.2.threshold": 0.9})
    assert pillar.levels[1].name == "Pillar" and pillar.levels[1].threshold == 0.9
    by_name = mali_spec.with_changes({"levels.Index.method": "geometric"})
    assert by_name.levels[2].method == "geometric"
    with pytest.raises(SpecError, match="numbered 1 .indicators. to 3") as err:
        mali_spec.with_changes({"levels.0.method": "geometric"})
    assert err.value.column == "levels.0.method"
    with pytest.raises(SpecError) as err:  # errors name levels by the same numbers
        mali_spec.with_changes({"levels.2.threshold": 2})
    assert err.value.column == "levels.2.threshold"


def test_list_items_are_addressed_by_id_not_position(mali_spec):
    new = mali_spec.with_changes({"indicators.armed_groups_present.weight": 3})
    assert new.indicators[0].weight == 3 and new.indicators[0].id == "armed_groups_present"
    with pytest.raises(SpecError, match="no item with id '0'"):
        mali_spec.with_changes({"indicators.0.weight": 3})
    with pytest.raises(SpecError, match="changed whole"):
        mali_spec.with_changes({"categories.cuts.0": 30})
    assert mali_spec.with_changes({"categories.cuts": [30, 70]}).categories.cuts == [30, 70]


def test_with_changes_rejects_unknown_ids_and_invalid_values(mali_spec):
    with pytest.raises(SpecError, match="no item with id 'robery'"):
        mali_spec.with_changes({"indicators.robery.weight": 2})
    with pytest.raises(SpecError) as err:
        mali_spec.with_changes({"indicators.robbery.direction": 0})
    assert err.value.column == "indicators.robbery.direction"
    with pytest.raises(SpecError, match="needs 'group'"):
        mali_spec.with_changes({"impute.group": None})
    with pytest.raises(SpecError) as err:
        mali_spec.with_changes({"normalise.method": "softmax"})
    assert err.value.column == "normalise.method"


# ------------------------------------------------------------------------------ rules


@pytest.mark.parametrize("edit, column, message", [
    (lambda d: indicator(d, "robbery").update(direction=2), "indicators.robbery.direction", "1 or -1"),
    (lambda d: d["combine"].update(colour="blue"), "combine.colour", "Extra inputs"),
    (lambda d: d.update(colour="blue"), "colour", "Extra inputs"),
    (lambda d: indicator(d, "robbery").update(weight=-1), "indicators.robbery.weight", "greater than or equal"),
    (lambda d: indicator(d, "security_incidents_3m").update(goalposts=[10, 0]),
     "indicators.security_incidents_3m.goalposts", "lower < upper"),
    (lambda d: d["levels"][1].update(threshold=1.5), "levels.2.threshold", "less than or equal"),
    (lambda d: d["normalise"].update(method="minmax", l=100, u=0), "normalise", "l < u"),
    (lambda d: d["treat"].update(winmax=-1), "treat.winmax", "greater than or equal"),
])
def test_invalid_fields_are_named(mali_dict, edit, column, message):
    with pytest.raises(SpecError) as err:
        spec_from_dict(edited(mali_dict, edit))
    assert err.value.column == column
    assert message in err.value.message
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("edit, column, hint", [
    (lambda d: d.update(normalize={"method": "minmax"}), "normalize", " (did you mean 'normalise'?)"),
    (lambda d: d["columns"].update(lattitude="latitude"), "columns.lattitude", " (did you mean 'latitude'?)"),
    (lambda d: indicator(d, "robbery").update(directoin=-1), "indicators.robbery.directoin",
     " (did you mean 'direction'?)"),
    (lambda d: d.update(uncertainty={"runs": 10, "normalize": True}), "uncertainty.normalize",
     " (did you mean 'normalise'?)"),
    (lambda d: d.update(colour="blue"), "colour", ""),
])
def test_an_unknown_field_names_the_closest_one(mali_dict, edit, column, hint):
    with pytest.raises(SpecError) as err:
        spec_from_dict(edited(mali_dict, edit))
    assert err.value.column == column
    assert err.value.message == "Extra inputs are not permitted" + hint


@pytest.mark.parametrize("edit, message", [
    (lambda d: indicator(d, "robbery").update(parent="safeti"), "indicator 'robbery': parent 'safeti' is not an aggregate"),
    (lambda d: indicator(d, "robbery").update(parent="stability"), "parent 'stability' is at level 3, not 2"),
    (lambda d: d["aggregates"][0].update(parent="nowhere"), "aggregate 'safety': unknown parent 'nowhere'"),
    (lambda d: indicator(d, "robbery").update(id="cattle_theft"), "duplicate ids: cattle_theft"),
    (lambda d: indicator(d, "robbery").update(answers="yes_no_maybe"), "unknown answer type 'yes_no_maybe'"),
    (lambda d: d["aggregates"].append({"id": "empty", "level": 2, "parent": "stability"}),
     "aggregates without children: empty"),
    (lambda d: d["aggregates"].append({"id": "other", "level": 3}), "exactly one top aggregate"),
    (lambda d: d["aggregates"][0].pop("parent"), "has no parent but is not at the top level"),
    (lambda d: d.update(levels=d["levels"][:1]), "at least two entries"),
    (lambda d: d["categories"].update(labels=["low", "high"]), "2 cut-offs need 3 labels"),
    (lambda d: d["categories"].update(cuts=[60, 40]), "must increase"),
    (lambda d: d["levels"][1].update(method="generalised"), "needs 'p'"),
    (lambda d: d["normalise"].update(method="dist2target"), "needs a 'target'"),
    (lambda d: d["answers"]["yes_no"].update(codes={"yes": 1, "dont_know": None}), "at least two non-missing codes"),
    (lambda d: d["normalise"].update(scope="reference", reference_round=None), "needs 'reference_round'"),
])
def test_inconsistent_specs_are_rejected(mali_dict, edit, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        spec_from_dict(edited(mali_dict, edit))


def test_spec_must_be_a_mapping(tmp_path):
    p = tmp_path / "list.yaml"
    p.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(SpecError, match="YAML mapping"):
        load_spec(p)


# ------------------------------------------------------------------------------ files


def test_load_spec_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SpecError, match="spec file not found") as err:
        load_spec(missing)
    assert err.value.file == str(missing)
    empty = tmp_path / "empty.yaml"
    empty.write_text("  \n", encoding="utf-8")
    with pytest.raises(SpecError, match="empty"):
        load_spec(empty)


def test_yaml_syntax_error_gives_the_line(tmp_path):
    text = default_spec().read_text(encoding="utf-8").split("\n")
    line = next(i for i, t in enumerate(text) if t.startswith("  disagreement_threshold"))
    text[line] = "  disagreement_threshold: 0.3: oops"
    bad = tmp_path / "bad.yaml"
    bad.write_text("\n".join(text), encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_spec(bad)
    assert err.value.file == str(bad)
    assert f"invalid YAML at line {line + 1}" in err.value.message
    assert "\n" not in str(err.value)


def test_spec_error_renders_file_and_field_on_one_line(tmp_path, mali_dict):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(edited(mali_dict, lambda d: indicator(d, "robbery").update(direction="up"))),
                   encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_spec(bad)
    assert str(err.value).startswith(f"{bad}, field 'indicators.robbery.direction': ")
    assert err.value.exit_code == 2
