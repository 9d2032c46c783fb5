"""XLSForm + mapping -> spec (stability.xlsform), the KoBo-style export of the illustrative survey
(stability.kobo_export) and `stability spec from-xlsform`."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import yaml

from stability.cli import main
from stability.exceptions import SpecError
from stability.generate import INDICATORS, generate
from stability.io import Dataset
from stability.kobo_export import CHOICE_LISTS, FILES, GROUPS, KOBO_META, kobo_answers, write_kobo_export
from stability.paths import default_spec
from stability.pipeline import compute
from stability.spec import load_spec
from stability.xlsform import convert_xlsform, read_xlsform, spec_from_xlsform

# ============================================================================ fixtures


@pytest.fixture(scope="module")
def survey():
    """A small generated survey (ILLUSTRATIVE)."""
    return generate(n_locations=120, n_rounds=2, seed=7)


@pytest.fixture(scope="module")
def kobo(survey, tmp_path_factory) -> Path:
    """The survey written as a KoBo hand-over (XML values)."""
    folder = tmp_path_factory.mktemp("kobo") / "export"
    write_kobo_export(survey, folder)
    return folder


@pytest.fixture(scope="module")
def mali():
    return load_spec(default_spec())


@pytest.fixture()
def mapping(kobo) -> dict:
    """The export's mapping, fresh for each test (tests break it)."""
    from stability.io import parse_yaml

    return parse_yaml((kobo / "mapping.yaml").read_text(encoding="utf-8"))


def write_form(path: Path, survey_rows: list[list], choices_rows: list[list] | None = None,
               settings: dict | None = None) -> Path:
    """An XLSForm workbook from rows (the first row of each sheet is its header)."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "survey"
    for row in survey_rows:
        sheet.append(row)
    if choices_rows is not None:
        sheet = book.create_sheet("choices")
        for row in choices_rows:
            sheet.append(row)
    if settings is not None:
        sheet = book.create_sheet("settings")
        sheet.append(list(settings))
        sheet.append(list(settings.values()))
    book.save(path)
    return path


SMALL_SURVEY = [
    ["Type", "name", "label", "label::French (fr)", "label::English (en)", "constraint", "parameters"],
    ["start", "start", None, None, None, None, None],
    ["text", "location_id", "Location", "Localité", "Location", None, None],
    ["begin group", "safety", "Safety", "Sécurité", "Safety", None, None],
    ["select_one yn", "robbery", "Robbery?", "Braquage ?", "Robbery?", None, None],
    ["begin_group", "inner", None, None, None, None, None],
    ["integer", "incidents", "Incidents", "Incidents", "How many incidents?", ". >= 0", None],
    ["end_group", None, None, None, None, None, None],
    ["end group", None, None, None, None, None, None],
    [None, None, None, None, None, None, None],  # a blank row
    ["begin_group", "services", None, "Services", "Services", None, None],
    ["select one share", "water", None, "Eau", "Water", None, None],
    ["select_multiple svc", "open_services", None, "Services ouverts", "Open services", None, None],
    ["decimal", "distance_km", None, "Distance", "Distance to market (km)", ". >= 0 and . <= 100", None],
    ["range", "trust", None, "Confiance", "Trust", None, "start=1 end=5 step=1"],
    ["text", "notes", None, "Notes", "Notes", None, None],
    ["end_group", None, None, None, None, None, None],
]
SMALL_CHOICES = [
    ["list_name", "name", "label::French (fr)", "label::English (en)"],
    ["yn", "yes", "Oui", "Yes"],
    ["yn", "no", "Non", "No"],
    ["yn", "dont_know", "Ne sait pas", "Don't know"],
    ["share", "none", "Aucun", "None"],
    ["share", "some", "Quelques", "Some"],
    ["share", "all", "Tous", "All"],
    ["share", "refus", "Refus", "Refused"],
    ["svc", "school", "École", "School"],
    ["svc", "clinic", "Centre de santé", "Clinic"],
]
BASE = {
    "columns": {"location": "location_id", "round": None},
    "levels": [{"name": "Indicator"}, {"name": "Pillar"}, {"name": "Index"}],
    "aggregates": [{"id": "safety", "level": 2, "parent": "index"},
                   {"id": "services", "level": 2, "parent": "index"},
                   {"id": "index", "level": 3}],
}


@pytest.fixture()
def small_form(tmp_path) -> Path:
    return write_form(tmp_path / "form.xlsx", SMALL_SURVEY, SMALL_CHOICES,
                      {"form_title": "Small form", "version": 3, "default_language": "English (en)"})


def small_mapping(**questions) -> dict:
    return {**BASE, "choices": {"yn": {"no": 0, "yes": 1}, "share": ["none", "some", "all"]},
            "questions": questions or {"robbery": {"pillar": "safety", "direction": -1},
                                       "water": {"pillar": "services"}}}


def error_of(form, mapping, **kw) -> str:
    with pytest.raises(SpecError) as exc:
        spec_from_xlsform(form, mapping, **kw)
    text = str(exc.value)
    assert "\n" not in text
    return text


# ============================================================================ reading an XLSForm


def test_read_xlsform_groups_types_and_settings(small_form):
    survey, choices, settings = read_xlsform(small_form)
    q = survey.set_index("name", drop=False)
    assert list(survey["row"])[:3] == [2, 3, 4] and 10 not in set(survey["row"])  # the blank row is skipped
    assert q.loc["robbery", "kind"] == "select_one" and q.loc["robbery", "list_name"] == "yn"
    assert q.loc["water", "kind"] == "select_one" and q.loc["water", "list_name"] == "share"  # "select one"
    assert q.loc["open_services", "kind"] == "select_multiple" and q.loc["open_services", "list_name"] == "svc"
    assert q.loc["incidents", "path"] == "safety/inner/incidents" and q.loc["incidents", "group"] == "safety/inner"
    assert q.loc["robbery", "path"] == "safety/robbery" and q.loc["location_id", "path"] == "location_id"
    assert q.loc["distance_km", "kind"] == "decimal" and q.loc["distance_km", "constraint"] == ". >= 0 and . <= 100"
    groups = survey[survey["kind"] == "begin_group"]
    assert list(groups["path"]) == ["safety", "safety/inner", "services"]  # "begin group" too
    assert {"label", "label::French (fr)", "label::English (en)", "type"} <= set(survey.columns)  # "Type" lower-cased
    assert q.loc["robbery", "label::French (fr)"] == "Braquage ?"
    assert list(choices.loc[choices["list_name"] == "share", "name"]) == ["none", "some", "all", "refus"]
    assert settings == {"form_title": "Small form", "version": "3", "default_language": "English (en)"}


@pytest.mark.parametrize("rows, message", [
    ([["type", "name"], ["begin_group", "g"], ["integer", "x"]], "group 'g' (row 2) has no end_group"),
    ([["type", "name"], ["integer", "x"], ["end_group", None]], "row 3: end_group without a matching begin_group"),
    ([["type", "name"], ["integer", "x"], ["decimal", "x"]], "row 3: question 'x' is also on row 2"),
    ([["type", "name"], ["select_one", "x"]], "row 2: 'select_one' names no choice list"),
    ([["type", "label"], ["integer", "x"]], "the survey sheet has no 'name' column"),
])
def test_read_xlsform_errors_name_the_row(tmp_path, rows, message):
    path = write_form(tmp_path / "bad.xlsx", rows)
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")) as exc:
        read_xlsform(path)
    assert str(exc.value).startswith(str(path))
    if "row " in message and "(row" not in message:  # a row of the form: named with its sheet, not as a column
        assert str(exc.value).startswith(f"{path}, sheet 'survey', {message.split(':')[0]}: "), str(exc.value)


def test_read_xlsform_not_a_workbook(tmp_path):
    (tmp_path / "form.xlsx").write_text("not a workbook")
    with pytest.raises(SpecError, match="cannot read the XLSForm"):
        read_xlsform(tmp_path / "form.xlsx")
    with pytest.raises(SpecError, match="XLSForm not found"):
        read_xlsform(tmp_path / "missing.xlsx")
    book = openpyxl.Workbook()
    book.active.title = "questions"
    book.save(tmp_path / "nosurvey.xlsx")
    with pytest.raises(SpecError, match="no 'survey' sheet"):
        read_xlsform(tmp_path / "nosurvey.xlsx")


# ============================================================================ spec from a form


def test_spec_from_small_form(small_form):
    mapping = small_mapping(
        robbery={"pillar": "safety", "direction": -1},
        **{"safety/inner/incidents": {"pillar": "safety", "direction": -1, "goalposts": [0, 10]}},
        water={"pillar": "services", "weight": 2},
        distance_km={"pillar": "services", "direction": -1},
        trust={"pillar": "services"},
        **{"open_services/clinic": {"pillar": "services"}},
    )
    conv = convert_xlsform(small_form, mapping)
    spec = conv.spec
    # in the form's order, whatever the mapping's
    assert spec.indicator_ids == ["robbery", "incidents", "water", "open_services/clinic", "distance_km", "trust"]
    assert spec.name == "Small form" and spec.version == "3"  # from the settings
    assert spec.answers["yn"].codes == {"yes": 1, "no": 0, "dont_know": None}  # dont_know: missing
    assert spec.answers["share"].codes == {"none": 0, "some": 1, "all": 2, "refus": None}
    ind = {i.id: i for i in spec.indicators}
    assert ind["incidents"].answers == "integer_from_0" and spec.answers["integer_from_0"].integer
    assert spec.answers["integer_from_0"].range == (0, None)
    assert ind["distance_km"].answers == "number_0_to_100" and spec.answers["number_0_to_100"].range == (0, 100)
    assert not spec.answers["number_0_to_100"].integer
    assert spec.answers[ind["trust"].answers].range == (1, 5)
    assert ind["open_services/clinic"].answers == "selected" and spec.answers["selected"].range == (0, 1)
    assert ind["open_services/clinic"].label == "Open services: Clinic"
    assert ind["water"].weight == 2 and ind["robbery"].direction == -1 and ind["incidents"].goalposts == (0, 10)
    assert ind["robbery"].label == "Robbery?"  # default_language: English (en)
    assert "location_id" in conv.unmapped and "services/notes" in conv.unmapped and "start" in conv.unmapped
    assert conv.summary().startswith("6 indicators in 2 pillars")
    # the YAML loads back to the same spec
    path = small_form.with_name("spec.yaml")
    path.write_text(conv.to_yaml(), encoding="utf-8")
    assert load_spec(path).hash == spec.hash


@pytest.mark.parametrize("language, label", [
    ("fr", "Braquage ?"), ("French", "Braquage ?"), ("French (fr)", "Braquage ?"), ("en", "Robbery?"),
    ("EN", "Robbery?"), (None, "Robbery?"),
])
def test_labels_in_the_chosen_language(small_form, language, label):
    spec = spec_from_xlsform(small_form, small_mapping(), language=language)
    assert spec.indicator("robbery").label == label


def test_language_from_the_mapping_and_plain_label_column(small_form, tmp_path):
    assert spec_from_xlsform(small_form, {**small_mapping(), "language": "fr"}).indicator("water").label == "Eau"
    # without default_language, the plain label column; an empty label falls back to it, then to the name
    plain = write_form(tmp_path / "plain.xlsx", SMALL_SURVEY, SMALL_CHOICES, {"form_title": "x"})
    spec = spec_from_xlsform(plain, small_mapping())
    assert spec.indicator("robbery").label == "Robbery?" and spec.indicator("water").label == "water"
    message = error_of(small_form, small_mapping(), language="de")
    assert message == f"{small_form}: no labels in language 'de' (the form has: French (fr), English (en))"


def test_choice_scales(small_form):
    def codes(scale, list_name="share", **extra):
        m = small_mapping()
        m["choices"][list_name] = scale
        m.update(extra)
        return spec_from_xlsform(small_form, m).answers[list_name].codes

    assert codes("order") == {"none": 0, "some": 1, "all": 2, "refus": None}
    assert codes(["all", "some", "none"]) == {"none": 2, "some": 1, "all": 0, "refus": None}
    assert codes({"none": 0, "some": 5, "all": 10, "refus": 99}) == {"none": 0, "some": 5, "all": 10, "refus": 99}
    assert codes({"none": 0, "some": 1, "all": None}, missing=["all"]) == {"none": 0, "some": 1, "all": None,
                                                                          "refus": None}
    # unquoted yes/no keys are booleans in YAML 1.1: read back as the list's names
    m = small_mapping()
    m["choices"]["yn"] = yaml.safe_load("{yes: 1, no: 0}")
    assert spec_from_xlsform(small_form, m).answers["yn"].codes == {"yes": 1, "no": 0, "dont_know": None}


def test_a_question_may_override_its_lists_codes(small_form):
    spec = spec_from_xlsform(small_form, small_mapping(robbery={"pillar": "safety", "codes": {"yes": 0, "no": 2}},
                                                       water={"pillar": "services"}))
    assert spec.indicator("robbery").answers == "robbery"
    assert spec.answers["robbery"].codes == {"yes": 0, "no": 2, "dont_know": None}
    assert "yn" not in spec.answers  # no other question uses the list


def test_select_multiple_choice_key_and_entry(small_form):
    by_key = spec_from_xlsform(small_form, small_mapping(**{"open_services/school": {"pillar": "services"},
                                                            "robbery": {"pillar": "safety"}}))
    by_entry = spec_from_xlsform(small_form, small_mapping(**{"open_services": {"pillar": "services",
                                                                                "choice": "school"},
                                                              "robbery": {"pillar": "safety"}}))
    assert by_key.indicator_ids == by_entry.indicator_ids == ["robbery", "open_services/school"]
    message = error_of(small_form, small_mapping(open_services={"pillar": "services"}))
    assert "select_multiple question 'services/open_services' is an indicator through one of its choices" in message
    assert "its choices: school, clinic" in message


# ============================================================================ errors


def test_question_missing_from_the_form_suggests_a_name(kobo, mapping):
    mapping["questions"]["armed_group_present"] = mapping["questions"].pop("armed_groups_present")
    message = error_of(kobo / "xlsform.xlsx", mapping)
    assert message == ("mapping, field 'questions.armed_group_present': no question 'armed_group_present' in the "
                       "form xlsform.xlsx (did you mean 'armed_groups_present'?)")
    # a mapping file is named in the message
    path = kobo.parent / "broken_mapping.yaml"
    path.write_text(yaml.safe_dump(mapping, sort_keys=False), encoding="utf-8")
    assert error_of(kobo / "xlsform.xlsx", path).startswith(f"{path}, field 'questions.armed_group_present': ")


def test_choice_list_without_a_scale(kobo, mapping):
    del mapping["choices"]["oui_non"]
    message = error_of(kobo / "xlsform.xlsx", mapping)
    assert message.startswith("mapping, field 'choices.oui_non': choice list 'oui_non' (question "
                              "'armed_groups_present') has no scale: add it under 'choices'")
    assert "its choices: oui, non, nsp" in message
    # the example scores no answer and gives don't know no score (it once read {oui: 0, non: 1, nsp: 2})
    assert "'oui_non: {oui: ?, non: ?, nsp: null}'" in message and "nsp: 2" not in message


def test_unknown_pillar(kobo, mapping):
    mapping["questions"]["robbery"]["pillar"] = "safty"
    assert error_of(kobo / "xlsform.xlsx", mapping) == (
        "mapping, field 'questions.robbery.pillar': unknown pillar 'safty' (did you mean 'safety'?); the pillars "
        "(aggregates of level 2) are safety, livelihoods, cohesion")


@pytest.mark.parametrize("change, message", [
    (lambda m: m["questions"]["robbery"].update(direction=2),
     "mapping, field 'questions.robbery.direction': Input should be 1 or -1"),
    (lambda m: m["questions"]["robbery"].update(colour="red"),
     "mapping, field 'questions.robbery.colour': Extra inputs are not permitted"),
    (lambda m: m["choices"]["proportion"].update(tout=3),
     "mapping, field 'choices.proportion': no choice 'tout' in list 'proportion' of the form (did you mean 'tous'?)"),
    (lambda m: m["choices"]["proportion"].pop("tous"),
     "mapping, field 'choices.proportion': choice 'tous' of list 'proportion' has no code"),
    (lambda m: m["choices"].update(oui_non={"oui": 1, "non": None}),
     "mapping, field 'choices.oui_non': 'codes' needs at least two non-missing codes"),
    (lambda m: m["choices"].update(proportion="alphabetical"),
     "mapping, field 'choices.proportion': unknown scale 'alphabetical'"),
    (lambda m: m["choices"].update(oui_no={"oui": 1}),
     "mapping, field 'choices.oui_no': no choice list 'oui_no' in the form (did you mean 'oui_non'?)"),
    (lambda m: m["questions"].update(ki_name={"pillar": "safety"}),
     "mapping, field 'questions.ki_name': question 'ki_name' is a text question"),
    (lambda m: m["questions"]["robbery"].pop("pillar"),
     "mapping, field 'questions.robbery': every question needs its 'pillar'"),
    (lambda m: m["questions"]["water_points"].update(answers="counts"),
     "mapping, field 'questions.water_points.answers': unknown answer type 'counts' (did you mean 'count'?)"),
    (lambda m: m["questions"]["robbery"].update(answers="count"),
     "mapping, field 'questions.robbery.answers': a select_one question takes its answers from its choice list"),
    (lambda m: m.update(normalize={"method": "minmax"}),
     "mapping, field 'normalize': unknown section 'normalize' (did you mean 'normalise'?)"),
    (lambda m: m.update(indicators=[]), "mapping, field 'indicators': the mapping lists its indicators under "
                                        "'questions'"),
    (lambda m: m["levels"][1].update(method="median"), "mapping, field 'levels.2.method': "),
    (lambda m: m["questions"].update({"securite/robbery": {"pillar": "safety"}}),
     "mapping, field 'questions.securite/robbery': indicator 'robbery' is also made by 'robbery'"),
])
def test_mapping_errors_are_one_line_in_the_mapping(kobo, mapping, change, message):
    change(mapping)
    assert error_of(kobo / "xlsform.xlsx", mapping).startswith(message)


def test_a_name_in_two_groups_needs_its_path(tmp_path):
    form = write_form(tmp_path / "f.xlsx", [
        ["type", "name"], ["begin_group", "a"], ["integer", "n"], ["end_group"],
        ["begin_group", "b"], ["integer", "n"], ["end_group"]])
    mapping = {**BASE, "questions": {"n": {"pillar": "safety"}}}
    assert "'n' names 2 questions of the form (a/n, b/n): use its group path" in error_of(form, mapping)
    mapping = {**BASE, "questions": {"a/n": {"pillar": "safety"}, "b/n": {"pillar": "services", "id": "n_b"}},
               "name": "x"}
    assert spec_from_xlsform(form, mapping).indicator_ids == ["n", "n_b"]
    with_paths = spec_from_xlsform(form, {**mapping, "indicator_ids": "path",
                                          "questions": {"a/n": {"pillar": "safety"}, "b/n": {"pillar": "services"}}})
    assert with_paths.indicator_ids == ["a/n", "b/n"]


# ============================================================================ the Mali survey as KoBo hands it over


def test_the_spec_from_the_form_is_the_mali_spec(kobo, mali):
    spec = spec_from_xlsform(kobo / "xlsform.xlsx", kobo / "mapping.yaml")
    assert spec.indicator_ids == mali.indicator_ids
    skip = {"label", "answers"}
    for mine, theirs in zip(spec.indicators, mali.indicators):
        assert mine.model_dump(exclude=skip) == theirs.model_dump(exclude=skip), mine.id
        assert spec.valid_range(mine) == mali.valid_range(theirs)
        codes = spec.answers[mine.answers].codes
        if codes is not None:  # the same codes under the XML names
            xml = {tidy: name for name, tidy, _, _ in next(v[1] for v in CHOICE_LISTS.values()
                                                            if v[0] == mine.answers)}
            assert {xml[label]: code for label, code in mali.answers[theirs.answers].codes.items()} == codes
        else:
            assert spec.answers[mine.answers] == mali.answers[theirs.answers]
    dump, ref = spec.model_dump(), mali.model_dump()
    for section in ("columns", "aggregates", "levels", "combine", "impute", "treat", "normalise", "rank",
                    "categories", "rounds", "weights", "name", "version"):
        assert dump[section] == ref[section], section
    # labels are the form's questions (English, the mapping's language; French on request)
    assert spec.indicator("robbery").label == "Was there robbery in the last 3 months?"
    fr = spec_from_xlsform(kobo / "xlsform.xlsx", kobo / "mapping.yaml", language="fr")
    assert fr.indicator("robbery").label == "Y a-t-il eu des braquages au cours des 3 derniers mois ?"


def read_kobo_csv(path: Path) -> pd.DataFrame:
    """The answers of a KoBo CSV export as a tidy table (a minimal reader for these tests)."""
    table = pd.read_csv(path, sep=";", encoding="cp1252", dtype=str, keep_default_na=False, na_values=[""])
    table.columns = [c.rsplit("/", 1)[-1] for c in table.columns]
    return table.astype(object).where(table.notna(), None)


def scores(survey, answers, spec) -> pd.DataFrame:
    result = compute(Dataset(answers=answers, locations=survey.locations, population=survey.population), spec)
    s = result.scores
    keep = [c for c in s.columns if c not in ("spec_hash",) and not c.startswith("_")]
    return s[keep].sort_values(["location_id", "round"]).reset_index(drop=True)


def test_the_kobo_export_scores_exactly_like_the_tidy_survey(survey, kobo, mali):
    spec = spec_from_xlsform(kobo / "xlsform.xlsx", kobo / "mapping.yaml")
    expected = scores(survey, survey.answers, mali)
    from_csv = scores(survey, read_kobo_csv(kobo / "kobo_export.csv"), spec)
    assert len(expected) == 231
    pd.testing.assert_frame_equal(from_csv[expected.columns], expected, check_exact=True, check_dtype=False)


def test_the_export_holds_the_tidy_answers(survey, kobo):
    tidy = survey.answers
    xml = {tidy_label: name for _, options in CHOICE_LISTS.values() for name, tidy_label, _, _ in options}
    exported = read_kobo_csv(kobo / "kobo_export.csv").sort_values(["round", "location_id", "ki_id"], key=lambda c: (
        c.astype(int) if c.name == "round" else c)).reset_index(drop=True)
    ordered = tidy.sort_values(["round", "location_id", "ki_id"]).reset_index(drop=True)
    for ind in INDICATORS:
        want = ordered[ind.id].astype(object).where(ordered[ind.id].notna(), None)
        want = [None if v is None else str(v) if ind.answer_type == "count" else xml[v] for v in want]
        assert exported[ind.id].tolist() == want, ind.id
    for column in ("location_id", "ki_id", "ki_profile", "survey_date"):
        assert exported[column].tolist() == ordered[column].astype(str).tolist()
    assert exported["round"].tolist() == ordered["round"].astype(str).tolist()


def test_export_format(kobo, survey):
    raw = (kobo / "kobo_export.csv").read_bytes()
    text = raw.decode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # accents in Windows-1252
    assert text.count("\r\n") >= len(survey.answers) + 1 and "\n" not in text.replace("\r\n", "")[:2000]
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    header, body = rows[0], rows[1:]
    assert len(body) == len(survey.answers)
    groups = [g for g, _, _ in GROUPS.values()]
    assert header[:4] == ["start", "end", "today", "deviceid"] and header[-len(KOBO_META):] == list(KOBO_META)
    assert {"location_id", "round", "ki_id", "ki_profile", "survey_date", "ki_name", "ki_phone", "comments",
            "_gps_latitude"} <= set(header)
    indicator_headers = [h for h in header if "/" in h]
    assert len(indicator_headers) == 25 and {h.split("/")[0] for h in indicator_headers} == set(groups)
    assert "securite/armed_groups_present" in header and "moyens_existence/water_points" in header
    col = {h: [r[i] for r in body] for i, h in enumerate(header)}
    assert all("," in v and "." not in v for v in col["_gps_latitude"])  # decimal commas
    assert col["_id"] == [str(187_000_001 + i) for i in range(len(body))]
    assert col["_index"] == [str(i) for i in range(1, len(body) + 1)]
    assert col["_submission_time"] == sorted(col["_submission_time"])  # rows in submission order
    assert all(s < e for s, e in zip(col["start"], col["end"]))
    assert all(v.startswith("FICTIF ") for v in col["ki_name"])
    assert all(v.startswith("+223 00 ") for v in col["ki_phone"])
    assert any(";" in v for v in col["comments"]) and any("\n" in v for v in col["comments"])
    assert set(col["securite/armed_groups_present"]) <= {"oui", "non", "nsp", ""}
    assert set(col["cohesion/community_tension"]) <= {"aucun", "quelques", "la_plupart", "tous", "nsp", ""}
    # the workbook holds the same answers, numbers as numbers
    book = pd.read_excel(kobo / "kobo_export.xlsx", dtype=object)
    assert list(book.columns) == header and len(book) == len(body)
    assert book["_id"].tolist() == [int(v) for v in col["_id"]]
    assert [f"{v:.6f}".replace(".", ",") for v in book["_gps_latitude"]] == col["_gps_latitude"]
    assert book["securite/armed_groups_present"].fillna("").tolist() == col["securite/armed_groups_present"]
    # the XLSForm
    form_survey, choices, settings = read_xlsform(kobo / "xlsform.xlsx")
    assert settings["default_language"] == "French (fr)" and "ILLUSTRATIF" in settings["form_title"]
    paths = set(form_survey["path"])
    assert set(indicator_headers) <= paths and {"location_id", "round", "ki_id", "ki_profile", "survey_date"} <= paths
    assert {"label::French (fr)", "label::English (en)"} <= set(form_survey.columns)
    assert list(choices.loc[choices["list_name"] == "oui_non", "name"]) == ["oui", "non", "nsp"]
    assert list(choices.loc[choices["list_name"] == "proportion", "name"]) == [
        "aucun", "quelques", "la_plupart", "tous", "nsp"]
    assert "ILLUSTRATIVE" in (kobo / "README.txt").read_text(encoding="utf-8")


def test_labels_export_is_the_xml_export_in_words(survey, kobo):
    xml = kobo_answers(survey)
    words = kobo_answers(survey, labels="label", language="en")
    _, choices, _ = read_xlsform(kobo / "xlsform.xlsx")
    back = {(r["label::English (en)"]): r["name"] for _, r in choices.iterrows()}
    for column in xml.columns:
        if column.split("/")[0] in ("securite", "moyens_existence", "cohesion") and column not in (
                "securite/security_incidents_3m", "moyens_existence/water_points"):
            assert [None if v is None else back[v] for v in words[column]] == xml[column].tolist(), column
        elif column == "ki_profile":
            assert set(words[column]) <= {"Village chief", "Site manager", "Teacher", "Health worker",
                                          "Women's representative", "IDP representative", "Religious leader",
                                          "Youth representative"}
        else:
            assert words[column].tolist() == xml[column].tolist(), column
    assert "Oui" in set(kobo_answers(survey, labels="label")["securite/robbery"])  # French by default
    with pytest.raises(ValueError, match="labels must be"):
        kobo_answers(survey, labels="names")


def test_the_embedded_survey_reads_as_a_generated_one():
    from types import SimpleNamespace

    from stability.kobo_export import embedded_survey

    embedded = embedded_survey()
    assert len(embedded.answers) == 17366 and embedded.parameters["seed"] == 20211201
    part = SimpleNamespace(**{**vars(embedded), "answers": embedded.answers.head(200)})
    exported = kobo_answers(part)
    assert all(isinstance(v, int) for v in exported["round"])
    assert {type(v) for v in exported["securite/security_incidents_3m"]} <= {int, type(None)}
    assert set(exported["securite/robbery"]) <= {"oui", "non", "nsp", None}


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_export_is_deterministic(survey, kobo, tmp_path):
    again = write_kobo_export(survey, tmp_path / "again")
    assert sorted(p.name for p in again) == sorted(FILES.values())
    assert digests(tmp_path / "again") == digests(kobo)
    write_kobo_export(survey, tmp_path / "other", seed=8)
    other = digests(tmp_path / "other")
    assert other["kobo_export.csv"] != digests(kobo)["kobo_export.csv"]
    for name in ("mapping.yaml", "xlsform.xlsx"):  # the seed only changes the answers' metadata
        assert other[name] == digests(kobo)[name]


# ============================================================================ the command line


def run(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_spec_from_xlsform(capsys, kobo, tmp_path, mali):
    out_file = tmp_path / "spec.yaml"
    rc, out, err = run(capsys, "spec", "from-xlsform", kobo / "xlsform.xlsx", "--mapping", kobo / "mapping.yaml",
                       "--out", out_file)
    assert rc == 0, err
    spec = load_spec(out_file)
    assert out.count("\n") == 1 and out.startswith(f"wrote {out_file} (spec {spec.hash}): 25 indicators in 3 pillars")
    assert spec.indicator_ids == mali.indicator_ids
    rc, out, err = run(capsys, "spec", "from-xlsform", kobo / "xlsform.xlsx", "--mapping", kobo / "mapping.yaml",
                       "--language", "fr")
    assert rc == 0 and yaml.safe_load(out)["indicators"][0]["label"].startswith("Des groupes armés")
    assert err.count("\n") == 1 and err.startswith("spec ")


@pytest.mark.parametrize("args, message", [
    (["--mapping", "{kobo}/missing.yaml"], "{kobo}/missing.yaml: mapping file not found"),
    (["--mapping", "{bad}"], "{bad}, field 'questions.robbery.pillar': unknown pillar 'safty'"),
    (["--mapping", "{kobo}/mapping.yaml", "--language", "de"], "{kobo}/xlsform.xlsx: no labels in language 'de'"),
    (["--mapping", "{kobo}/mapping.yaml", "--out", "{tmp}"], "option --out: '{tmp}' is a folder"),
])
def test_cli_spec_errors_are_one_line_and_write_nothing(capsys, kobo, mapping, tmp_path, args, message):
    mapping["questions"]["robbery"]["pillar"] = "safty"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(mapping), encoding="utf-8")
    fill = {"kobo": kobo, "bad": bad, "tmp": tmp_path}
    out_args = [] if "--out" in args else ["--out", tmp_path / "spec.yaml"]
    rc, out, err = run(capsys, "spec", "from-xlsform", kobo / "xlsform.xlsx",
                       *[a.format(**fill) for a in args], *out_args)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("stability: error: " + message.format(**fill))
    assert not (tmp_path / "spec.yaml").exists()


def test_cli_spec_without_subcommand_prints_help(capsys):
    rc, out, _ = run(capsys, "spec")
    assert rc == 2 and "from-xlsform" in out


def test_cli_generate_kobo(capsys, tmp_path):
    rc, out, err = run(capsys, "generate", "--out", tmp_path, "--locations", 60, "--rounds", 1, "--seed", 3,
                       "--kobo", "--kobo-values", "label", "--kobo-language", "en")
    assert rc == 0, err
    assert (tmp_path / "key_informants.csv").is_file()  # the tidy survey as before
    assert sorted(p.name for p in (tmp_path / "kobo").iterdir()) == sorted(FILES.values())
    assert "Yes" in (tmp_path / "kobo" / "kobo_export.csv").read_text(encoding="cp1252")


# ============================================================================ with the KoBo reader


@pytest.mark.parametrize("labels, language", [
    ("xml", "fr"), ("label", "fr"),
    ("label", "en"),
])
def test_the_kobo_folder_scores_like_the_tidy_survey(survey, kobo, mali, tmp_path, labels, language):
    """The export folder read as a dataset (dataset.yaml: the CSV export read with stability.kobo and the
    XLSForm) and scored with the spec from the form scores exactly like the tidy survey with the Mali spec."""
    pytest.importorskip("stability.kobo")
    from stability.io import load_dataset

    folder = kobo
    if labels != "xml":
        folder = tmp_path / "export"
        write_kobo_export(survey, folder, labels=labels, language=language)
    spec = spec_from_xlsform(folder / "xlsform.xlsx", folder / "mapping.yaml")
    keys = ["location_id", "round"]
    numbers = [spec.root.id, *(a.id for a in spec.aggregates_at(2)), "category", "rank_national", "rank_region",
               "change", "n_informants", "n_missing", "n_imputed", "n_disagreements"]
    expected = scores(survey, survey.answers, mali)[keys + numbers]
    result = compute(load_dataset(folder), spec)
    got = result.scores.assign(round=result.scores["round"].astype(int))
    got = got.sort_values(keys).reset_index(drop=True)[keys + numbers]
    pd.testing.assert_frame_equal(got, expected, check_exact=True, check_dtype=False)
    assert not {"ki_name", "ki_phone", "comments"} & set(result.scores.columns)  # personal data left out
