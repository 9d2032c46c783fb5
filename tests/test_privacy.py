"""Personal data never reaches an output; CSV exports cannot run formulas; HXL on request.

The end-to-end test adds informant names, phone numbers, e-mail addresses, GPS
readings, comments and device metadata to a generated survey (per key informant
in the answers, per location in the register), runs ``stability score`` (every
format) and a regional ``stability report`` through the command line, and scans
every file written — CSV, Parquet, Excel, GeoPackage, HTML, notebooks, JSON, the
report cache — for those values.  With the columns listed in ``columns.keep``
they do appear: the scan can fail.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from stability import privacy
from stability.cli import main
from stability.paths import default_spec

REGION = "ML05"
#: A location name that is a formula (and a workbook / CSV must not run it).
FORMULA = '=HYPERLINK("http://example.org/x","open me")'


# ============================================================================ the survey
def _answers_personal(answers: pd.DataFrame) -> pd.DataFrame:
    """Personal columns per key informant, and per visit (shared by the informants of a location and round)."""
    a = answers.copy()
    n = len(a)
    visit = (a["location_id"].astype(str) + "/" + a["round"].astype(str))
    visit_no = pd.factorize(visit)[0]
    # per informant: never constant within a visit
    a["ki_name"] = [f"Zorblax Informant{i:05d}" for i in range(n)]
    a["ki_phone"] = [f"+223 9988 {i:05d}" for i in range(n)]
    a["_gps_latitude"] = [f"{14 + i / 100000:.5f}" for i in range(n)]
    a["ki_email_address"] = [f"zorblax{i}@example.org" for i in range(n)]
    # per visit: the same for every informant of a location and round, so it would reach the outputs
    a["enumerator_name"] = [f"Quillfeather Enumerator{v:05d}" for v in visit_no]
    a["deviceid"] = [f"imei:35990{v:07d}" for v in visit_no]
    a["comments"] = [f"Xyloquent remark {v}: the road to the market was closed for weeks" for v in visit_no]
    a["other_specify"] = [f"Frobnicated other answer {v} given by the chief" for v in visit_no]
    # columns whose names say nothing: found by their values
    a["reach"] = [f"+223 9977 {v:05d}" for v in visit_no]                        # phone numbers
    a["summary"] = [f"Plumbago narrative number {v} about the situation in the village" for v in visit_no]
    return a


def _register_personal(reg: pd.DataFrame) -> pd.DataFrame:
    r = reg.copy()
    n = len(r)
    r["focal_point_name"] = [f"Wumpledorf Focal{i:05d}" for i in range(n)]
    r["focal_point_phone"] = [f"+223 9966 {i:05d}" for i in range(n)]
    r["chief_tel"] = [f"+223 9955 {i:05d}" for i in range(n)]
    r["gps_point"] = [f"14.{i:05d}13579 -3.{i:05d}24680 301.5 4.9" for i in range(n)]
    r["_gps_longitude"] = [f"{-3 - i / 100000:.5f}" for i in range(n)]
    r["observations"] = [f"Gribbleflux observation {i}: many families arrived last month" for i in range(n)]
    r["liaison"] = [f"gribble{i}@example.org" for i in range(n)]                   # e-mail addresses
    r["username"] = [f"enum_snorkwacket{i % 3}" for i in range(n)]
    return r


#: Distinctive parts of the personal values, per column (a value or a column name must not be found).
MARKERS = {
    "ki_name": "Zorblax Informant", "ki_phone": "+223 9988", "ki_email_address": "zorblax",
    "enumerator_name": "Quillfeather", "deviceid": "imei:35990", "comments": "Xyloquent",
    "other_specify": "Frobnicated", "reach": "+223 9977", "summary": "Plumbago",
    "focal_point_name": "Wumpledorf", "focal_point_phone": "+223 9966", "chief_tel": "+223 9955",
    "gps_point": "13579 -3.", "observations": "Gribbleflux", "liaison": "gribble0@", "username": "snorkwacket",
    "_gps_latitude": "_gps_latitude", "_gps_longitude": "_gps_longitude",
}


def _write_csv(table: pd.DataFrame, path: Path) -> None:
    table.to_csv(path, index=False, lineterminator="\n")


@pytest.fixture(scope="module")
def survey(tmp_path_factory) -> Path:
    """A generated survey with personal columns, and one location of the region named by a formula."""
    from stability.generate import generate

    folder = tmp_path_factory.mktemp("privacy") / "survey"
    generate(n_locations=80, n_rounds=2, seed=11).write(folder)
    answers = pd.read_csv(folder / "key_informants.csv", dtype=str, keep_default_na=False)
    _write_csv(_answers_personal(answers), folder / "key_informants.csv")
    reg = pd.read_csv(folder / "locations.csv", dtype=str, keep_default_na=False)
    first = reg.index[reg["admin1_pcode"] == REGION][0]
    reg.loc[first, "location_name"] = FORMULA
    reg.loc[first, "location_type"] = "@SUM(1+1)"
    _write_csv(_register_personal(reg), folder / "locations.csv")
    return folder


def _spec_with(tmp_path: Path, keep: list[str]) -> Path:
    text = default_spec().read_text(encoding="utf-8")
    assert "  pcodes: ocha\n" in text
    spec = tmp_path / "spec.yaml"
    spec.write_text(text.replace("  pcodes: ocha\n", f"  pcodes: ocha\n  keep: [{', '.join(keep)}]\n"),
                    encoding="utf-8")
    return spec


# ============================================================================ reading every output
def _xlsx_text(path: Path) -> str:
    import openpyxl

    parts = []
    book = openpyxl.load_workbook(path, read_only=True)
    for ws in book.worksheets:
        parts.append(ws.title)
        for row in ws.iter_rows(values_only=True):
            parts.extend(str(v) for v in row if v is not None)
    book.close()
    with zipfile.ZipFile(path) as z:  # every part of the package, not only the cells
        parts.extend(z.read(name).decode("utf-8", "replace") for name in z.namelist())
    return "\n".join(parts)


def _parquet_text(path: Path) -> str:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    meta = {k.decode(): v.decode("utf-8", "replace") for k, v in (table.schema.metadata or {}).items()}
    return "\n".join([",".join(table.column_names), json.dumps(meta),
                      table.to_pandas().to_csv(index=False, float_format="%.17g")])


def _gpkg_text(path: Path) -> str:
    con = sqlite3.connect(path)
    try:
        parts = []
        for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            cur = con.execute(f'SELECT * FROM "{name}"')
            parts.append(name + ": " + ",".join(d[0] for d in cur.description))
            parts.extend(",".join(str(v) for v in row if not isinstance(v, bytes)) for row in cur)
        return "\n".join(parts)
    finally:
        con.close()


def output_text(path: Path) -> str:
    """Everything a file says: read with the library of its format, plus its raw bytes as text."""
    raw = path.read_bytes()
    parts = [raw.decode("utf-8", "replace")]
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        parts.append(_xlsx_text(path))
    elif suffix == ".parquet":
        parts.append(_parquet_text(path))
    elif suffix == ".gpkg":
        parts.append(_gpkg_text(path))
    elif suffix == ".ipynb":
        nb = json.loads(raw)
        parts.extend("".join(c.get("source", "")) for c in nb["cells"])
        for cell in nb["cells"]:
            for out in cell.get("outputs", []):
                parts.append(json.dumps(out))
    elif suffix == ".pkl":
        parts.append(raw.decode("latin-1"))
    return "\n".join(parts)


def scan(folder: Path) -> dict[str, list[str]]:
    """Per file under ``folder``, the personal columns whose values (or names) it holds."""
    found = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        text = output_text(path)
        hits = [col for col, marker in MARKERS.items() if marker in text]
        if hits:
            found[str(path.relative_to(folder))] = hits
    return found


def _run(capsys, *args) -> str:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


# ============================================================================ end to end
def test_no_output_holds_personal_data(survey, tmp_path, capsys):
    out = tmp_path / "out"
    _run(capsys, "score", "-q", "--data", survey, "--out", out / "scores")
    _run(capsys, "report", "--region", REGION, "--round", "latest", "--data", survey, "--out", out / "reports",
         "--jobs", "1", "-q")
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    kinds = {Path(p).suffix for p in written}
    assert {".csv", ".parquet", ".xlsx", ".gpkg", ".html", ".ipynb", ".json"} <= kinds, written
    assert any(p.endswith(f"{REGION}/report.html") for p in written)
    assert scan(out) == {}
    # the scan reads every kind of file: the inputs themselves are caught
    assert set(scan(survey)) == {"key_informants.csv", "locations.csv"}
    # the non-personal descriptive columns are still there
    scores = pd.read_csv(out / "scores" / "scores.csv")
    for col in ("location_type", "survey_date", "population", "idps", "returnees", "location_name", "n_informants"):
        assert col in scores.columns, col


def test_columns_listed_in_keep_do_reach_the_outputs(survey, tmp_path, capsys):
    keep = ["focal_point_phone", "comments", "summary"]
    spec = _spec_with(tmp_path, keep)
    out = tmp_path / "out"
    _run(capsys, "score", "-q", "--data", survey, "--spec", spec, "--out", out, "--format", "csv,parquet,xlsx,gpkg")
    found = scan(out)
    for name in ("scores.csv", "scores.parquet", "scores.xlsx", "locations.gpkg"):
        assert set(found[name]) == set(keep), name
    assert set(found) == {"scores.csv", "scores.parquet", "scores.xlsx", "locations.gpkg"}


def test_outputs_with_personal_columns_are_byte_identical_across_runs(survey, tmp_path, capsys):
    digests = []
    for name in ("a", "b"):
        _run(capsys, "score", "-q", "--data", survey, "--out", tmp_path / name)
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                        for p in sorted((tmp_path / name).iterdir())})
    assert digests[0] == digests[1] and len(digests[0]) == 7


# ============================================================================ the rule
@pytest.mark.parametrize("column, why", [
    ("ki_name", privacy.NAME), ("informant_name", privacy.NAME), ("nom", privacy.NAME),
    ("respondent", privacy.NAME), ("KI_Name", privacy.NAME), ("contact_name", privacy.NAME),
    ("group_ki/ki_name", privacy.NAME), ("prenom", privacy.NAME),
    ("phone", privacy.PHONE), ("tel", privacy.PHONE), ("telephone", privacy.PHONE), ("phonenumber", privacy.PHONE),
    ("msisdn", privacy.PHONE), ("ki_phone_2", privacy.PHONE), ("PhoneNumber", privacy.PHONE),
    ("email", privacy.EMAIL), ("_gps", privacy.GPS), ("_gps_latitude", privacy.GPS), ("_geolocation", privacy.GPS),
    ("gps_point", privacy.GPS), ("ki_latitude", privacy.GPS), ("interview_longitude", privacy.GPS),
    ("comments", privacy.FREE_TEXT), ("comment_1", privacy.FREE_TEXT), ("remarks", privacy.FREE_TEXT),
    ("notes", privacy.FREE_TEXT), ("deviceid", privacy.DEVICE), ("simserial", privacy.DEVICE),
    ("subscriberid", privacy.DEVICE), ("username", privacy.DEVICE),
    ("location_type", None), ("survey_date", None), ("population", None), ("idps", None), ("latitude", None),
    ("admin1_name", None), ("nom_village", None), ("site_name", None), ("ki_profile", None), ("geonameid", None),
])
def test_personal_data_by_name(column, why):
    assert privacy.by_name(column) == why


def test_other_specify_is_free_text_only_when_it_holds_text():
    assert privacy.reason(pd.Series(["goats and sheep", "a cart"]), "livelihood_other") == privacy.FREE_TEXT
    assert privacy.reason(pd.Series(["other_specify"] * 2, name="other_specify").rename("other_specify")) \
        == privacy.FREE_TEXT
    assert privacy.reason(pd.Series(["3", "12"]), "other_count") is None
    assert privacy.reason(pd.Series([3, 12]), "others") is None


@pytest.mark.parametrize("values, why", [
    ([f"+223 76 12 34 {i:02d}" for i in range(20)], privacy.PHONE),
    ([f"76 12 34 {i:02d}" for i in range(20)], privacy.PHONE),
    ([f"00223761234{i:02d}" for i in range(20)], privacy.PHONE),
    (["call the chief on +223 76 12 34 56"] + ["nothing"] * 19, privacy.PHONE),
    (["nobody"] * 19 + ["write to a.b@example.org"], privacy.EMAIL),
    ([f"The road to the market was closed for {i} days after the flood" for i in range(20)], privacy.FREE_TEXT),
    ([f"14.{i:04d} -3.1234 300 5" for i in range(20)], privacy.GPS),
    ([f"761234{i:02d}" for i in range(20)], None),                   # plain digits: codes, not phones
    ([f"2021-12-{i + 1:02d}" for i in range(20)], None),             # dates
    ([f"14 December 2021 10:{i:02d}:00" for i in range(20)], None),  # long dates are not free text
    (["village", "site", "host community"] * 10, None),              # few distinct values
    ([f"ML01{i:02d}-0001" for i in range(20)], None),                # codes
    ([f"{-3.5 + i / 7:.6f}" for i in range(20)], None),              # numbers as text
])
def test_personal_data_by_value(values, why):
    assert privacy.by_values(pd.Series(values, dtype=object)) == why
    assert privacy.by_values(pd.Series(values, dtype="string")) == why


def test_numbers_are_never_personal_by_value():
    assert privacy.by_values(pd.Series([22376123456, 22376123457] * 10)) is None


def test_columns_named_by_the_spec_are_kept(mali_spec):
    named = privacy.spec_columns(mali_spec)
    for col in ("location_id", "round", "ki_id", "location_name", "admin1_pcode", "admin2_name", "longitude",
                "latitude", "population", "admin2_pcode"):
        assert col in named
    spec = mali_spec.with_changes({"columns.longitude": "ki_longitude", "columns.keep": "notes"})
    table = pd.DataFrame({"ki_longitude": [1.0], "notes": ["x"], "ki_name": ["y"], "location_type": ["village"]})
    assert privacy.personal_columns(table, spec) == {"ki_name": privacy.NAME}
    assert spec.columns.keep == ["notes"]  # one column may be given as a string


def _location_level(n: int = 30) -> tuple[pd.DataFrame, object]:
    """Answers with one row per location and round (every extra column would reach ``units``)."""
    import stability as st

    spec = st.spec_from_dict({
        "name": "tiny", "columns": {"location": "loc", "round": None, "name": "village"},
        "indicators": [{"id": "a", "parent": "p", "range": [0, 10]}, {"id": "b", "parent": "p", "range": [0, 10]}],
        "aggregates": [{"id": "p", "level": 2, "parent": "idx"}, {"id": "idx", "level": 3}],
        "levels": [{"name": "Indicator"}, {"name": "Pillar"}, {"name": "Index"}],
        "normalise": {"method": "minmax"},
    })
    answers = pd.DataFrame({
        "loc": [f"L{i:03d}" for i in range(n)], "village": [f"Village {i}" for i in range(n)],
        "a": [i % 7 for i in range(n)], "b": [(3 * i) % 11 % 10 for i in range(n)],
        "respondent": [f"Person {i}" for i in range(n)], "ki_phone": [f"+223 70 00 00 {i:02d}" for i in range(n)],
        "contact_info": [f"x{i}@example.org" for i in range(n)], "location_type": ["village", "site"] * (n // 2),
        "remark": [f"remark {i}" for i in range(n)],
    })
    return answers, spec


def test_prepare_leaves_personal_columns_out_of_units():
    import stability as st

    answers, spec = _location_level()
    units = st.compute(answers, spec).units
    assert list(units.columns) == ["village", "location_type"]
    kept = st.compute(answers, spec.with_changes({"columns.keep": ["remark", "ki_phone"]})).units
    assert list(kept.columns) == ["village", "ki_phone", "location_type", "remark"]


def test_one_warning_line_per_file(survey):
    import stability as st

    data = st.load_dataset(survey)
    spec = st.load_spec(default_spec()).with_changes({"columns.keep": ["comments", "not_a_column"]})
    lines = [str(p) for p in privacy.problems(data, spec)]
    assert len(lines) == 3, lines
    answers, register, keep = lines
    assert answers.startswith(f"warning: {data.file('answers')}: left out of every output as personal data: ")
    assert ("ki_name (person's name), ki_phone (phone number), _gps_latitude (informant GPS), ki_email_address "
            "(e-mail address), enumerator_name (person's name), deviceid (device metadata), other_specify "
            "(free text), reach (phone number), summary (free text); list a column") in answers
    assert "comments" not in answers  # kept by the spec
    assert register.startswith(f"warning: {data.file('locations')}: left out of every output as personal data: "
                               "focal_point_name (person's name), focal_point_phone (phone number), chief_tel "
                               "(phone number), gps_point (informant GPS), _gps_longitude (informant GPS), "
                               "observations (free text), liaison (e-mail address), username (device metadata);")
    assert keep == "warning: column 'not_a_column': column listed in 'columns.keep' is in none of the survey's tables"


def test_validate_prints_the_columns_left_out(survey, capsys):
    code = main(["validate", "--data", str(survey)])
    out, err = capsys.readouterr()
    assert code == 0
    # like the readers' fallbacks: on stderr, with the prefix, and counted
    assert "as personal data" not in out
    lines = [line for line in err.splitlines() if "as personal data" in line]
    assert len(lines) == 2 and all(line.startswith("stability: warning: ") for line in lines)
    assert "ki_phone (phone number)" in lines[0] and "focal_point_phone (phone number)" in lines[1]
    shown = sum(line.startswith("stability: warning: ") for line in err.splitlines())
    listed = sum(line.startswith("warning: ") for line in out.splitlines())
    assert out.splitlines()[-1].startswith("OK: ") and f"0 error(s), {shown + listed} warning(s)" in out


def test_score_prints_the_columns_left_out_once_per_file(survey, tmp_path, capsys):
    code = main(["score", "-q", "--data", str(survey), "--out", str(tmp_path / "out"), "--format", "csv"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = [line for line in err.splitlines() if "as personal data" in line]
    assert len(lines) == 2 and all(line.startswith("stability: warning: ") for line in lines), err
    assert lines[0].startswith(f"stability: warning: {survey / 'key_informants.csv'}: ")
    assert lines[1].startswith(f"stability: warning: {survey / 'locations.csv'}: ")


def test_embedded_survey_has_no_personal_columns(mali_data, mali_spec):
    assert privacy.left_out(mali_data, mali_spec) == {}


# ============================================================================ formulas
def test_csv_text_cells_cannot_become_formulas(tmp_path):
    from stability.io import to_csv

    table = pd.DataFrame({
        "name": ["=1+2", "+223 70", "-x", "@SUM(A1)", "\tTab", "\rCR", "-3.5", "+2", "plain", None],
        "change": [-3.5, 2.0, -1e-3, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, -10.0],
        "category": pd.Categorical(["=bad", "low", "low", "high", "low", "low", "low", "low", "low", "low"]),
        "code": pd.Series(["-A", "B", "C", "D", "E", "F", "G", "H", "I", None], dtype="string"),
    })
    to_csv(table, tmp_path / "t.csv")
    back = pd.read_csv(tmp_path / "t.csv", dtype={"name": str, "category": str, "code": str}, keep_default_na=False)
    assert back["name"].tolist() == ["'=1+2", "'+223 70", "'-x", "'@SUM(A1)", "'\tTab", "'\nCR", "-3.5", "+2",
                                     "plain", ""]
    assert back["change"].tolist() == table["change"].tolist()    # numbers untouched
    assert back["category"].tolist()[:2] == ["'=bad", "low"]
    assert back["code"].tolist()[:2] == ["'-A", "B"]
    text = (tmp_path / "t.csv").read_text()
    assert "\n-3.5," in text or ",-3.5," in text
    # the table given is not modified
    assert table["name"][0] == "=1+2"


def test_a_carriage_return_cannot_start_a_row(tmp_path):
    from stability.io import to_csv

    to_csv(pd.DataFrame({"name": ["ok\r=2+2", "fine"], "x": [1, 2]}), tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_bytes() == b'name,x\n"ok\n=2+2",1\nfine,2\n'


def test_a_table_without_formulas_is_written_as_before(tmp_path):
    from stability.io import to_csv

    table = pd.DataFrame({"a": ["x", "y"], "b": [-1.5, 2.25]})
    to_csv(table, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text() == "a,b\nx,-1.5\ny,2.25\n"


def test_formulas_in_the_data_stay_text_in_every_export(survey, tmp_path, capsys):
    import openpyxl

    out = tmp_path / "out"
    _run(capsys, "score", "-q", "--data", survey, "--out", out)
    _run(capsys, "report", "--region", REGION, "--round", "latest", "--data", survey, "--out", tmp_path / "rep",
         "--jobs", "1", "-q")
    scores = pd.read_csv(out / "scores.csv", dtype={"location_name": str, "location_type": str})
    assert "'" + FORMULA in scores["location_name"].tolist()
    assert "'@SUM(1+1)" in scores["location_type"].tolist()
    assert (scores["change"].dropna() < 0).any()  # negative numbers stay numbers
    assert pd.api.types.is_float_dtype(scores["change"])
    workbooks = [out / "scores.xlsx", *sorted((tmp_path / "rep").rglob("rankings.xlsx"))]
    assert len(workbooks) == 2
    for path in workbooks:
        book = openpyxl.load_workbook(path)  # not read-only: cell types are known
        cells = [cell for ws in book.worksheets for row in ws.iter_rows() for cell in row if cell.value == FORMULA]
        assert cells, path
        assert all(cell.data_type == "s" for cell in cells), path
        assert not [cell for ws in book.worksheets for row in ws.iter_rows() for cell in row
                    if cell.data_type == "f"], path


# ============================================================================ HXL
def test_hxl_row_under_the_header(mali_result, tmp_path):
    from stability.export import find_pockets, hxl_tags, scores_table, write_result

    files = write_result(mali_result, tmp_path / "hxl", ("csv",), hxl=True)
    lines = (tmp_path / "hxl" / "scores.csv").read_text().splitlines()
    header, tags = lines[0].split(","), lines[1].split(",")
    assert len(header) == len(tags)
    tag = dict(zip(header, tags))
    assert tag["location_id"] == "#loc+code" and tag["location_name"] == "#loc+name"
    assert tag["admin1_pcode"] == "#adm1+code" and tag["admin2_pcode"] == "#adm2+code"
    assert tag["latitude"] == "#geo+lat" and tag["longitude"] == "#geo+lon"
    assert tag["stability"].startswith("#indicator") and "+stability" in tag["stability"]
    assert tag["category"] == "#indicator+category"
    assert tags == hxl_tags(scores_table(mali_result, find_pockets(mali_result)).columns, mali_result.spec)
    assert all(t == "" or t.startswith("#") for t in tags)
    # the rest of the file is the file without the HXL row
    write_result(mali_result, tmp_path / "plain", ("csv",))
    plain = (tmp_path / "plain" / "scores.csv").read_text().splitlines()
    assert lines[:1] + lines[2:] == plain
    assert [f.name for f in files] == ["scores.csv", "audit_log.csv", "weights.csv", "pockets.csv"]


def test_report_prints_the_columns_left_out_once_per_file(survey, tmp_path, capsys):
    """``stability report`` says which columns it left out as personal data, like score (one line per file)."""
    code = main(["report", "-q", "--data", str(survey), "--region", "ML05", "--round", "latest", "--uncertainty", "0",
                 "--out", str(tmp_path / "reports")])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = [line for line in err.splitlines() if "as personal data" in line]
    assert len(lines) == 2 and lines[0].startswith(f"stability: warning: {survey / 'key_informants.csv'}: "), err
