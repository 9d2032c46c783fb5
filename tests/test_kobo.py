"""KoBoToolbox / ODK exports: group paths, labels, select_multiple, metadata, duplicates, form versions,
repeat groups and reading them through dataset.yaml."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

from stability.exceptions import DataError
from stability.io import InputWarning, load_dataset, record_lines
from stability.kobo import META_COLUMNS, is_metadata, looks_like_export, read_export, read_form

HEADER = ["start", "end", "today", "deviceid", "grp_loc/location_id", "grp_loc/round", "grp_safety/robbery",
          "grp_safety/sources", "grp_safety/sources/water", "grp_safety/sources/food", "grp_safety/sources/fuel",
          "grp_safety/count", "meta/instanceID", "_id", "_uuid", "_submission_time", "_validation_status",
          "_notes", "_status", "_submitted_by", "__version__", "_tags", "_index"]
ROWS = [
    ["2021-12-14T09:00", "2021-12-14T09:30", "2021-12-14", "d1", "L1", "1", "Yes", "Water Food", "1", "1", "0", "3",
     "uuid:a", "11", "a", "2021-12-14T12:00", "", "", "submitted_via_web", "", "vA", "", "1"],
    ["2021-12-14T10:00", "2021-12-14T10:30", "2021-12-14", "d1", "L2", "1", "No", "Food", "0", "1", "0", "0",
     "uuid:b", "12", "b", "2021-12-14T12:00", "", "", "submitted_via_web", "", "vA", "", "2"],
    ["2021-12-15T09:00", "2021-12-15T09:30", "2021-12-15", "d2", "L3", "1", "Don't know", "", "", "", "", "5",
     "uuid:c", "13", "c", "2021-12-15T12:00", "", "", "submitted_via_web", "", "vB", "", "3"],
]
CHOICES = pd.DataFrame({
    "list_name": ["yes_no", "yes_no", "yes_no", "sources", "sources", "sources"],
    "name": ["yes", "no", "dont_know", "water", "food", "fuel"],
    "label::English (en)": ["Yes", "No", "Don't know", "Water", "Food", "Fuel wood"],
    "label::Français (fr)": ["Oui", "Non", "Ne sait pas", "Eau", "Nourriture", "Bois"],
})
SURVEY = pd.DataFrame({
    "type": ["begin_group", "text", "integer", "end_group", "begin_group", "select_one yes_no",
             "select_multiple sources", "integer", "end_group"],
    "name": ["grp_loc", "location_id", "round", None, "grp_safety", "robbery", "sources", "count", None],
    "label::English (en)": ["Location", "Location id", "Round", None, "Safety", "Robbery in the last 3 months?",
                            "Water sources", "Incidents", None],
})


def export_csv(folder: Path, rows=ROWS, header=HEADER, name="export.csv", sep=",") -> Path:
    table = pd.DataFrame(rows, columns=header)
    path = folder / name
    table.to_csv(path, index=False, sep=sep)
    return path


def read(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        return read_export(path, **kw)


# ============================================================================ headers and metadata


def test_group_paths_taken_off_and_metadata_left_out(tmp_path):
    df = read(export_csv(tmp_path))
    assert list(df.columns) == ["location_id", "round", "robbery", "sources", "sources/water", "sources/food",
                                "sources/fuel", "count"]
    assert df["location_id"].tolist() == ["L1", "L2", "L3"]
    assert all(dt == object for dt in df.dtypes)
    assert df.loc[2, "sources"] is None and df.loc[2, "sources/water"] is None   # missing stays None
    for name in ("_id", "_uuid", "_submission_time", "_validation_status", "_index", "_parent_index", "_tags",
                 "_notes", "_status", "_submitted_by", "__version__", "_version_", "deviceid", "start", "end",
                 "today", "username", "simserial", "subscriberid", "phonenumber", "audit", "meta/instanceID"):
        assert name in META_COLUMNS
    assert is_metadata("_submission__uuid") and is_metadata("_version__001") and is_metadata("meta/rootUuid")
    assert not is_metadata("robbery")


def test_metadata_the_spec_names_is_kept(tmp_path):
    df = read(export_csv(tmp_path), wanted=["today", "location_id"], keep=["_uuid"])
    assert df["today"].tolist() == ["2021-12-14", "2021-12-14", "2021-12-15"]
    assert df["_uuid"].tolist() == ["a", "b", "c"]


def test_odk_separator_and_names_holding_it(tmp_path):
    header = ["SubmissionDate", "grp_loc-location_id", "grp_loc-round", "grp_safety-robbery", "grp_safety-armed-groups",
              "meta-instanceID", "KEY"]
    rows = [["2021-12-14", "L1", "1", "yes", "no", "uuid:a", "uuid:a"],
            ["2021-12-14", "L2", "1", "no", "yes", "uuid:b", "uuid:b"]]
    path = export_csv(tmp_path, rows, header)
    assert looks_like_export(header) == ["meta-instanceID"]
    df = read(path, group_separator="-")
    assert list(df.columns) == ["location_id", "round", "robbery", "groups"]   # ambiguous without the spec ...
    df = read(path, group_separator="-", wanted=["armed-groups"])
    assert list(df.columns) == ["location_id", "round", "robbery", "armed-groups"]   # ... the spec's name wins


def test_two_questions_with_one_name_keep_their_groups(tmp_path):
    header = ["g1/q", "g2/q", "other/id", "_uuid"]
    path = export_csv(tmp_path, [["1", "2", "x", "u1"]], header)
    with pytest.warns(InputWarning, match=r"columns 'g1/q', 'g2/q' are all question 'q' once group paths are "
                                          r"taken off: kept with their group paths"):
        df = read_export(path)
    assert list(df.columns) == ["g1/q", "g2/q", "id"]


# ============================================================================ labels


def test_labels_back_to_names_with_a_choices_table(tmp_path):
    df = read(export_csv(tmp_path), labels=CHOICES)
    assert df["robbery"].tolist() == ["yes", "no", "dont_know"]
    assert df["sources"].tolist() == ["water food", "food", None]
    assert df["count"].tolist() == ["3", "0", "5"]                       # numbers untouched
    assert df["location_id"].tolist() == ["L1", "L2", "L3"]             # ids untouched


def test_labels_in_another_language_and_labels_with_spaces(tmp_path):
    rows = [r.copy() for r in ROWS]
    rows[0][6], rows[1][6] = "Oui", "Non"
    rows[0][7] = "Fuel wood Water"
    df = read(export_csv(tmp_path, rows), labels=CHOICES, survey=SURVEY)
    assert df["robbery"].tolist() == ["yes", "no", "dont_know"]
    assert df["sources"].tolist()[0] == "fuel water"


def test_labels_with_an_xlsform_file_and_label_headers(tmp_path):
    form = tmp_path / "form.xlsx"
    with pd.ExcelWriter(form) as xw:
        SURVEY.to_excel(xw, sheet_name="survey", index=False)
        CHOICES.to_excel(xw, sheet_name="choices", index=False)
    header = ["Location id", "Round", "Robbery in the last 3 months?", "Water sources", "_uuid"]
    path = export_csv(tmp_path, [["L1", "1", "Yes", "Water", "a"], ["L2", "1", "No", "Water Fuel wood", "b"]], header)
    df = read(path, labels=form)
    assert list(df.columns) == ["location_id", "round", "robbery", "sources"]
    assert df["robbery"].tolist() == ["yes", "no"] and df["sources"].tolist() == ["water", "water fuel"]
    form_info = read_form(form)
    assert form_info.kind("sources") == "select_multiple" and form_info.options["sources"] == ["water", "food", "fuel"]


def test_the_export_reader_and_the_spec_converter_read_an_xlsform_alike(tmp_path):
    """One XLSForm reader: a malformed form is refused by the export reader as by `stability spec`, naming the
    sheet and row; a workbook with only a choices sheet is still a choices table."""
    from stability.exceptions import SpecError

    bad = tmp_path / "bad.xlsx"
    with pd.ExcelWriter(bad) as xw:
        twice = pd.concat([SURVEY.iloc[:8], SURVEY.iloc[[5]], SURVEY.iloc[8:]])  # robbery twice in its group
        twice.to_excel(xw, sheet_name="survey", index=False)
        CHOICES.to_excel(xw, sheet_name="choices", index=False)
    with pytest.raises(SpecError) as err:
        read_form(bad)
    assert str(err.value).startswith(f"{bad}, sheet 'survey', row 10: question 'grp_safety/robbery' is also on row 7")
    only_choices = tmp_path / "choices.xlsx"
    with pd.ExcelWriter(only_choices) as xw:
        CHOICES.to_excel(xw, sheet_name="choices", index=False)
    form_info = read_form(only_choices)
    assert form_info.options["sources"] == ["water", "food", "fuel"] and not form_info.questions


def test_label_maps(tmp_path):
    path = export_csv(tmp_path)
    df = read(path, labels={"Yes": "yes", "No": "no", "Don't know": "dont_know"})
    assert df["robbery"].tolist() == ["yes", "no", "dont_know"]
    df = read(path, labels={"robbery": {"Yes": "1", "No": "0"}})
    assert df["robbery"].tolist() == ["1", "0", "Don't know"]           # not in the map: as written
    assert df["sources"].tolist() == ["Water Food", "Food", None]        # other columns untouched


def test_lists_that_disagree_leave_the_column_alone(tmp_path):
    choices = pd.DataFrame({"list_name": ["a", "a", "b", "b"], "name": ["yes", "no", "1", "0"],
                            "label": ["Yes", "No", "Yes", "No"]})
    with pytest.warns(InputWarning, match=r"column 'robbery': its answers are labels of several choice lists \(a, b\)"):
        df = read_export(export_csv(tmp_path), labels=choices)
    assert df["robbery"].tolist() == ["Yes", "No", "Don't know"]


# ============================================================================ select_multiple


def test_select_multiple_collapsed_to_what_the_spec_names(tmp_path):
    header = [h for h in HEADER if h != "grp_safety/sources"]               # only the 0/1 columns
    rows = [[v for h, v in zip(HEADER, r) if h != "grp_safety/sources"] for r in ROWS]
    df = read(export_csv(tmp_path, rows, header), wanted=["sources"])
    assert df["sources"].tolist() == ["water food", "food", None]
    assert "sources/water" in df.columns                                     # the 0/1 columns stay


def test_select_multiple_expanded_to_what_the_spec_names(tmp_path):
    header = [h for h in HEADER if not h.startswith("grp_safety/sources/")]  # only the one column
    rows = [[v for h, v in zip(HEADER, r) if not h.startswith("grp_safety/sources/")] for r in ROWS]
    df = read(export_csv(tmp_path, rows, header), labels=CHOICES, wanted=["sources/water", "sources.fuel"])
    assert df["sources/water"].tolist() == ["1", "0", None]
    assert df["sources.fuel"].tolist() == ["0", "0", None]


def test_select_multiple_modes(tmp_path):
    path = export_csv(tmp_path)
    df = read(path, select_multiple="collapse")
    assert "sources" in df.columns and not any(c.startswith("sources/") for c in df.columns)
    df = read(path, select_multiple="expand", labels=CHOICES, survey=SURVEY)
    assert "sources" not in df.columns
    assert [c for c in df.columns if c.startswith("sources/")] == ["sources/water", "sources/food", "sources/fuel"]
    df = read(path, select_multiple="keep", wanted=["sources.water"])
    assert "sources.water" not in df.columns
    # dots as option separators
    header = ["grp/q", "grp/q.a", "grp/q.b", "_uuid"]
    df = read(export_csv(tmp_path, [["a b", "1", "1", "u"]], header, name="dots.csv"), select_multiple="collapse")
    assert list(df.columns) == ["q"]


def test_select_multiple_option_column_must_be_0_or_1(tmp_path):
    rows = [r.copy() for r in ROWS]
    rows[1][9] = "yes"
    header = [h for h in HEADER if h != "grp_safety/sources"]
    rows = [[v for h, v in zip(HEADER, r) if h != "grp_safety/sources"] for r in rows]
    path = export_csv(tmp_path, rows, header)
    with pytest.raises(DataError) as exc:
        read(path, wanted=["sources"])
    assert str(exc.value) == (f"{path}, column 'grp_safety/sources/food', row 3: 'yes' in a select_multiple option "
                              "column: expected 1 (chosen) or 0")


# ============================================================================ duplicates and form versions


def test_duplicate_submission_names_both_rows(tmp_path):
    rows = [r.copy() for r in ROWS]
    rows[2][HEADER.index("_uuid")] = "a"
    path = export_csv(tmp_path, rows)
    with pytest.raises(DataError) as exc:
        read(path)
    assert str(exc.value) == f"{path}, column '_uuid', row 4: duplicate submission: same _uuid 'a' as row 2 " \
                             "(exported twice?)"
    with pytest.raises(DataError, match="row 4: duplicate submission"):   # a table already read: same message
        read(pd.read_csv(path, dtype=str, keep_default_na=False), file=path)


def test_changed_form_version_names_the_likely_rename(tmp_path):
    header = [h.replace("grp_safety/robbery", "grp_safety/robbery_3m") for h in HEADER]
    path = export_csv(tmp_path, header=header)
    with pytest.raises(DataError) as exc:
        read(path, required=["location_id", "round", "robbery"])
    assert str(exc.value) == (f"{path}, column 'robbery': column named by the spec is not in the export, but "
                              "'robbery_3m' is: renamed in a new form version? Rename the column back or update the "
                              "spec (the export mixes 2 form versions: vA, vB)")
    # nothing like it: left to validation ("not in the file")
    df = read(path, required=["location_id", "electricity"])
    assert "electricity" not in df.columns


def test_a_question_renamed_in_some_rows_is_not_lost(tmp_path):
    """A form revision renamed a question and the export holds both columns, each blank in the other version's
    rows: the new version's answers would be read as missing (and imputed) without a word. One error instead."""
    header = HEADER[:7] + ["grp_safety/robbery_3m"] + HEADER[7:]
    rows = [r[:7] + [""] + r[7:] for r in ROWS]
    rows[2][6], rows[2][7] = "", "Yes"  # the vB row answered the renamed question
    path = export_csv(tmp_path, rows=rows, header=header)
    with pytest.raises(DataError) as exc:
        read(path, required=["location_id", "round", "robbery"])
    assert str(exc.value) == (f"{path}, column 'robbery', row 4: blank in 1 row where 'robbery_3m' is answered: "
                              "the question renamed in a new form version? Merge the two columns into this one (or "
                              "update the spec) so that no answer is lost (the export mixes 2 form versions: vA, vB)")
    rows[2][6] = "Yes"  # both answered in the same rows: another question, not a rename
    read(export_csv(tmp_path, rows=rows, header=header, name="both.csv"), required=["location_id", "round", "robbery"])


def test_date_columns_after_renaming(tmp_path):
    rows = [r.copy() for r in ROWS]
    rows[1][HEADER.index("grp_loc/round")] = "2021-12-14"
    rows[0][HEADER.index("grp_loc/round")] = "2021-12-14"
    rows[2][HEADER.index("grp_loc/round")] = "15/12/2021"
    path = export_csv(tmp_path, rows)
    with pytest.raises(DataError, match=r"column 'round', row 4: dates written in 2 formats"):
        read(path, date_columns=["round"])


# ============================================================================ repeat groups


def kobo_workbook(path: Path, *, join="index", orphan=False, stray=False) -> Path:
    main = pd.DataFrame({"start": ["t1", "t2", "t3"], "site/location_id": ["L1", "L2", "L3"],
                         "site/round": ["1", "1", "1"], "_id": ["11", "12", "13"], "_uuid": ["a", "b", "c"],
                         "_submission_time": ["s", "s", "s"], "_index": ["1", "2", "3"]})
    rep = pd.DataFrame({"informants/ki_id": ["KI1", "KI2", "KI1", "KI2", "KI1"],
                        "informants/robbery": ["yes", "no", "no", "no", "yes"],
                        "_index": ["1", "2", "3", "4", "5"],
                        "_parent_table_name": ["survey"] * 5,
                        "_parent_index": ["1", "1", "2", "2", "3"],
                        "_submission__uuid": ["a", "a", "b", "b", "c"]})
    if join == "uuid":
        rep = rep.drop(columns=["_parent_index", "_parent_table_name"])
    if orphan:
        rep = rep.iloc[:4]
    if stray:
        rep.loc[3, "_parent_index"] = "7"
    with pd.ExcelWriter(path) as xw:
        main.to_excel(xw, sheet_name="survey", index=False)
        rep.to_excel(xw, sheet_name="informants", index=False)
    return path


@pytest.mark.parametrize("join", ["index", "uuid"])
def test_repeat_sheet_joined_to_its_submissions(tmp_path, join):
    path = kobo_workbook(tmp_path / "kobo.xlsx", join=join)
    df = read(path, repeat="informants")
    assert list(df.columns) == ["location_id", "round", "ki_id", "robbery"]
    assert df["location_id"].tolist() == ["L1", "L1", "L2", "L2", "L3"]
    assert df["ki_id"].tolist() == ["KI1", "KI2", "KI1", "KI2", "KI1"]
    assert record_lines(path) == [2, 3, 4, 5, 6]   # rows of the repeat sheet


def test_repeat_problems(tmp_path):
    path = kobo_workbook(tmp_path / "orphan.xlsx", orphan=True)
    with pytest.warns(InputWarning, match=r"1 row of sheet 'survey' \(first: row 4\) have no row in the repeat "
                                          r"sheet 'informants': they give no answers"):
        df = read_export(path, repeat="informants")
    assert len(df) == 4
    path = kobo_workbook(tmp_path / "stray.xlsx", stray=True)
    with pytest.raises(DataError) as exc:
        read(path, repeat="informants")
    assert str(exc.value) == (f"{path}, sheet 'informants', column '_parent_index', row 5: no row of sheet 'survey' "
                              "has _index '7': a repeat row without its submission")
    with pytest.raises(DataError, match="no sheet 'people'"):
        read(path, repeat="people")


# ============================================================================ through dataset.yaml


def write_dataset(folder: Path, answers_entry: str) -> Path:
    (folder / "locations.csv").write_text("location_id,name\nL1,One\nL2,Two\nL3,Three\n", encoding="utf-8")
    (folder / "dataset.yaml").write_text(f"name: kobo\nanswers: {answers_entry}\nlocations: locations.csv\n",
                                         encoding="utf-8")
    return folder


def test_dataset_yaml_format_kobo_with_choices_and_repeat(tmp_path):
    kobo_workbook(tmp_path / "kobo.xlsx")
    CHOICES.to_csv(tmp_path / "choices.csv", index=False)
    write_dataset(tmp_path, "{file: kobo.xlsx, format: kobo, repeat: informants, choices: choices.csv}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        data = load_dataset(tmp_path)
    assert data.answers["ki_id"].tolist() == ["KI1", "KI2", "KI1", "KI2", "KI1"]
    assert data.files["answers"] == str(tmp_path / "kobo.xlsx")


def test_export_detected_without_a_format_with_a_warning(tmp_path):
    export_csv(tmp_path)
    write_dataset(tmp_path, "export.csv")
    with pytest.warns(InputWarning, match=r"export.csv: read as a KoBoToolbox/ODK export \(it has _uuid, "
                                          r"_submission_time, meta/instanceID\)"):
        data = load_dataset(tmp_path)
    assert "location_id" in data.answers.columns and "_uuid" not in data.answers.columns
    write_dataset(tmp_path, "{file: export.csv, format: table}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        data = load_dataset(tmp_path)
    assert "grp_loc/location_id" in data.answers.columns and "_uuid" in data.answers.columns


def test_a_kobo_export_scores_end_to_end(tmp_path, make_spec):
    import stability as st

    header = ["grp/loc", "grp/a", "grp/b", "grp/sources/water", "grp/sources/food", "_uuid", "_submission_time"]
    rows = [[f"L{i}", str(i % 4), ["Yes", "No"][i % 2], str(i % 2), "1", f"u{i}", "t"] for i in range(8)]
    export_csv(tmp_path, rows, header)
    write_dataset(tmp_path, "{file: export.csv, format: kobo}")
    (tmp_path / "dataset.yaml").write_text("answers: {file: export.csv, format: kobo, choices: choices.csv}\n",
                                           encoding="utf-8")
    pd.DataFrame({"list_name": ["yn", "yn"], "name": ["1", "0"], "label": ["Yes", "No"]}).to_csv(
        tmp_path / "choices.csv", index=False)
    spec = make_spec(indicators=("a", "b", "sources/water"))
    data = load_dataset(tmp_path, spec=spec)
    assert data.answers["b"].tolist() == ["1", "0"] * 4
    result = st.compute(data, spec)
    assert len(result.scores) == 8


def test_the_illustrative_survey_as_kobo_hands_it_over(tmp_path):
    """The colleague-built KoBo project of the generated survey (stability.kobo_export: ';'-separated
    Windows-1252 CSV with decimal commas, group paths, French labels, XLSForm) reads and scores."""
    kobo_export = pytest.importorskip("stability.kobo_export")
    xlsform = pytest.importorskip("stability.xlsform")
    if not hasattr(kobo_export, "write_kobo_export") or not hasattr(xlsform, "convert_xlsform"):
        pytest.skip("the KoBo project writer or the XLSForm converter is not there yet")
    import stability as st
    from stability.generate import generate

    folder = tmp_path / "kobo"
    kobo_export.write_kobo_export(generate(80, 2, seed=7), folder, labels="label")
    spec = xlsform.convert_xlsform(folder / "xlsform.xlsx", folder / "mapping.yaml").spec
    with pytest.warns(InputWarning) as record:
        data = load_dataset(folder, spec=spec)
    assert any("read as Windows-1252" in str(w.message) for w in record)
    assert "armed_groups_present" in data.answers.columns and "_uuid" not in data.answers.columns
    assert set(data.answers["armed_groups_present"].dropna()) <= {"oui", "non", "nsp"}   # labels -> XML names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        result = st.compute(data, spec)
    assert len(result.scores) > 0
