"""Field teams' files: separators, encodings, decimal commas, Excel sheets, HXL rows, damaged files,
dataset.yaml table options, and what the command line says about each bad one."""

from __future__ import annotations

import datetime
import importlib.util
import io
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stability.exceptions import DataError, StabilityError
from stability.io import (NOT_A_WORKBOOK, InputWarning, dataset_files, dataset_sources, first_data_row, hxl_row,
                          load_dataset, read_table, record_lines)

TIDY = ("location_id,name,share,count,note\n"
        "001,Ségou,3.5,4,ok\n"
        "002,Mopti,,12,\n"
        "003,Tombouctou,-0.25,0,à revoir\n")


def write(folder: Path, name: str, data) -> Path:
    path = folder / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def read_quietly(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        return read_table(path, **kw)


def assert_text_frame(df: pd.DataFrame) -> None:
    """read_table's contract: object columns, str or None cells."""
    assert all(dt == object for dt in df.dtypes)
    for col in df.columns:
        assert all(v is None or isinstance(v, str) for v in df[col]), col


# ============================================================================ CSV


def test_semicolon_windows1252_decimal_comma_reads_like_tidy_utf8(tmp_path):
    tidy = read_table(write(tmp_path, "tidy.csv", TIDY))
    messy = TIDY.replace(",", ";").replace("3.5", "3,5").replace("-0.25", "-0,25").replace("\n", "\r\n")
    path = write(tmp_path, "messy.csv", messy.encode("cp1252"))
    with pytest.warns(InputWarning) as record:
        df = read_table(path)
    pd.testing.assert_frame_equal(df, tidy)
    assert_text_frame(df)
    assert df["location_id"].tolist() == ["001", "002", "003"]  # leading zeros kept
    texts = [str(w.message) for w in record]
    assert any(t.startswith(f"{path}: read as Windows-1252: not UTF-8") for t in texts), texts
    assert any("decimal commas read as points in 2 cells (column 'share')" in t for t in texts), texts
    assert record_lines(path) == [2, 3, 4]


def test_utf8_bom_tab_and_utf16_read_like_tidy(tmp_path):
    tidy = read_table(write(tmp_path, "tidy.csv", TIDY))
    for name, data in [("bom.csv", b"\xef\xbb\xbf" + TIDY.encode()),
                       ("tab.tsv", TIDY.replace(",", "\t").encode()),
                       ("tab.txt", TIDY.replace(",", "\t").encode()),
                       ("utf16.csv", TIDY.replace(",", "\t").encode("utf-16"))]:
        with warnings.catch_warnings():
            warnings.simplefilter("error", InputWarning)  # none of these is a fallback
            df = read_table(write(tmp_path, name, data))
        pd.testing.assert_frame_equal(df, tidy, obj=name)


def test_decimal_commas_only_in_numbers_of_semicolon_files(tmp_path):
    text = "id;a;b;c;d\n01;3,5;1.234,5;3,5 km;x,y\n02;10;+2,0;,5;\n"
    with pytest.warns(InputWarning, match="decimal commas read as points in 2 cells"):
        df = read_table(write(tmp_path, "semi.csv", text))
    assert df.iloc[0].tolist() == ["01", "3.5", "1.234,5", "3,5 km", "x,y"]
    assert df.iloc[1].tolist() == ["02", "10", "+2.0", ",5", None]
    # a comma-separated file never has decimal commas: a quoted "3,5" stays as written
    df = read_table(write(tmp_path, "comma.csv", 'id,a\n01,"3,5"\n'))
    assert df["a"].tolist() == ["3,5"]


def test_latin1_when_not_even_windows1252(tmp_path):
    path = write(tmp_path, "latin.csv", b"id,name\n1,S\xe9gou\x81\n")
    with pytest.warns(InputWarning, match=r"read as Latin-1: not UTF-8 \(first non-UTF-8 byte on line 2\)"):
        df = read_table(path)
    assert df["name"].tolist() == ["S\xe9gou\x81"]


def test_separator_from_the_header_outside_quotes(tmp_path):
    # the header's commas are inside quotes: ';' separates
    df = read_table(write(tmp_path, "q.csv", '"name, first";"age, years"\n"Diallo, A";40\n'))
    assert list(df.columns) == ["name, first", "age, years"] and df.iloc[0].tolist() == ["Diallo, A", "40"]
    # as many ',' as ';' in the header: the data lines decide
    df = read_table(write(tmp_path, "tie.csv", "name,first;age\nDiallo;3\nTraore;4\n"))
    assert list(df.columns) == ["name,first", "age"]
    with pytest.warns(InputWarning) as record:
        df = read_table(write(tmp_path, "tie2.csv", "a,b;c\n1\n"))
    assert "cannot tell the separator from the header (',' and ';' as often): read with ','" in str(record[0].message)
    assert list(df.columns) == ["a", "b;c"]


def test_quoted_separators_and_line_breaks(tmp_path):
    path = write(tmp_path, "quoted.csv", 'id,text\n1,"a, b"\n2,"two\nlines"\n\n3,"say ""hi"""\n')
    df = read_table(path)
    assert df["text"].tolist() == ["a, b", "two\nlines", 'say "hi"']
    assert record_lines(path) == [2, 3, 6]


@pytest.mark.parametrize("name, data, row, message", [
    ("mixed.csv", "a;b;c\n1;2;3\n4;5;6\n7,8,9\n1;2;3\n", 4, "mixed separators: this row is separated by ',', "
                                                            "the header by ';'"),
    ("mixed_tab.csv", "a\tb\tc\n1\t2\t3\n4;5;6\n", 3, "mixed separators: this row is separated by ';', the header by tab"),
    ("partly.csv", "a,b,c,d\n1,2,3,4\n5;6,7,8\n", 3, "mixed separators: this row has 3 cells, the header 4, "
                                                     "and 1 ';' that would make up the difference (';' in place of "
                                                     "','?)"),
    ("partly_quoted.csv", 'a,b,c,d\n1,"x; y",3,4\n5;"x, y";7,8\n', 3, "this row has 2 cells, the header 4, and 2 ';'"),
    ("bom_middle.csv", b"a,b\n1,2\n\xef\xbb\xbfa,b\n3,4\n", 3, "a byte-order mark (BOM) in the middle of the file"),
    ("bom_middle_cp.csv", b"a,b\n1,\xe9\n2,3\n\xef\xbb\xbf4,5\n", 4, "a byte-order mark (BOM) in the middle"),
    ("extra.csv", "a,b,c\n1,2,3\n1,2,3,4\n", 3, "4 cells on this row but 3 columns in the header"),
    ("unclosed.csv", 'a,b,c\n1,2,3\n4,"five,6\n7,8,9\n', 3, "a quoted cell is never closed"),
    ("nul.csv", b"a,b\n1,2\n3,\x004\n", 3, "NUL bytes"),
])
def test_malformed_csv_is_one_error_naming_the_row(tmp_path, name, data, row, message):
    path = write(tmp_path, name, data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)  # the error comes first, not after a warning
        with pytest.raises(DataError) as exc:
            read_table(path)
    assert str(exc.value).startswith(f"{path}, row {row}: "), str(exc.value)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_short_rows_are_padded_with_a_warning(tmp_path):
    path = write(tmp_path, "short.csv", "a,b,c\n1,2,3\n4,5\n6\n")
    with pytest.warns(InputWarning, match=r"2 rows with fewer cells than the header \(first on row 3\)"):
        df = read_table(path)
    assert df.to_dict("list") == {"a": ["1", "4", "6"], "b": ["2", "5", None], "c": ["3", None, None]}


def test_a_short_row_with_a_semicolon_in_its_text_is_only_padded(tmp_path):
    # one ';' in a cell of a row two cells short: not a separator that would give the header's cells
    path = write(tmp_path, "short_text.csv", "a,b,c,d\n1,2,3,4\n5,note; see\n")
    with pytest.warns(InputWarning, match=r"1 row with fewer cells than the header \(first on row 3\)"):
        df = read_table(path)
    assert df["b"].tolist() == ["2", "note; see"]


def test_a_workbook_or_binary_file_named_csv(tmp_path):
    with pytest.raises(DataError, match="an Excel workbook .*not CSV text"):
        read_table(write(tmp_path, "book.csv", b"PK\x03\x04" + b"\x00" * 40))
    with pytest.raises(DataError, match="a sheet .* is given but the file is not an Excel workbook"):
        read_table(write(tmp_path, "plain.csv", "a\n1\n"), sheet="data")


def test_dates_in_three_formats(tmp_path):
    text = "id,survey_date\n1,2021-12-14\n2,2021-12-15\n3,14/12/2021\n4,12/14/2021\n"
    path = write(tmp_path, "dates.csv", text)
    with pytest.warns(InputWarning) as record:  # a column nothing parses: a warning
        df = read_table(path)
    assert df["survey_date"].tolist()[2] == "14/12/2021"  # never rewritten
    (warning,) = [w for w in record if "dates" in str(w.message)]
    assert str(warning.message).startswith(f"{path}, column 'survey_date', row 4: dates written in 3 formats: "
                                           "YYYY-MM-DD (row 2: 2021-12-14), DD/MM/YYYY (row 4: 14/12/2021), "
                                           "MM/DD/YYYY (row 5: 12/14/2021)")
    with pytest.raises(DataError) as exc:  # a column that is parsed (the round): an error
        read_table(path, date_columns=["survey_date"])
    assert str(exc.value).startswith(f"{path}, column 'survey_date', row 4: dates written in 3 formats")


def test_consistent_dates_are_quiet(tmp_path):
    text = ("id,iso,month,dmy,ambiguous,text\n"
            "1,2021-12-14,2021-12,14/12/2021,03/04/2021,2021-12-14\n"
            "2,2022-01-02,2022-01-05,01/02/2022,01/02/2021,soon\n")   # D?/M? dates fit DD/MM; month and day ISO
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        read_table(write(tmp_path, "ok.csv", text), date_columns=["iso", "month", "dmy", "ambiguous", "text"])


def test_hxl_row_is_taken_out_of_the_data(tmp_path):
    path = write(tmp_path, "hxl.csv", "location_id,lat,lon,note\n#loc+code,#geo+lat,#geo +lon,\n"
                                      "001,12.5,-8.1,a\n\n002,13,-7,b\n")
    df = read_table(path)
    assert df["location_id"].tolist() == ["001", "002"]
    assert df.attrs["hxl"] == {"location_id": "#loc+code", "lat": "#geo+lat", "lon": "#geo +lon"}
    assert record_lines(path) == [3, 5]
    assert first_data_row(path) == 3
    # a first row that merely starts with '#' is data
    df = read_table(write(tmp_path, "notags.csv", "id,comment\n1,#1 priority\n"))
    assert len(df) == 1 and "hxl" not in df.attrs


def test_embedded_survey_reads_as_before_and_fast():
    """The 17k-row answers read exactly as the plain UTF-8 reader did (cells, dtypes, columns)."""
    from stability.paths import default_dataset

    path = default_dataset() / "key_informants.csv"
    df = read_table(path)
    plain = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig")
    plain = plain.astype(object).where(plain.notna(), None)
    pd.testing.assert_frame_equal(df, plain)
    assert record_lines(path) == list(range(2, len(df) + 2))


# ============================================================================ Excel


def workbook(path: Path, sheets: dict[str, list[list]]) -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    wb.save(path)
    return path


def test_excel_first_or_named_sheet(tmp_path):
    path = workbook(tmp_path / "export.xlsx", {
        "read me": [["about"], ["an export"]],
        "data": [["location_id", "share"], ["001", 3.5], ["002", 4]],
    })
    assert read_table(path).to_dict("list") == {"about": ["an export"]}
    for sheet in ("data", 1):
        df = read_table(path, sheet=sheet)
        assert df.to_dict("list") == {"location_id": ["001", "002"], "share": ["3.5", "4"]}
        assert_text_frame(df)
    with pytest.raises(DataError, match=r"no sheet 'answers' in the workbook \(sheets: read me, data\)"):
        read_table(path, sheet="answers")
    with pytest.raises(DataError, match="no sheet number 5"):
        read_table(path, sheet=5)


def test_excel_cells_as_text_with_sheet_row_numbers(tmp_path):
    path = workbook(tmp_path / "cells.xlsx", {"data": [
        [None],                                                    # row 1 empty: the header is on row 2
        ["location_id", "date", "count", "flag", None],
        ["#loc+code", "#date", None, None],                        # HXL row
        ["007", datetime.datetime(2021, 12, 14), 3.0, True],
        [None, None, None, None],                                  # empty row: skipped
        ["008", datetime.datetime(2021, 12, 15), 12.25, False],
    ]})
    df = read_table(path)
    assert df.to_dict("list") == {"location_id": ["007", "008"], "date": ["2021-12-14", "2021-12-15"],
                                  "count": ["3", "12.25"], "flag": ["True", "False"]}
    assert df.attrs["hxl"] == {"location_id": "#loc+code", "date": "#date"}
    assert record_lines(path) == [4, 6]
    assert first_data_row(path) == 4


def test_excel_duplicate_header_and_empty_sheet(tmp_path):
    path = workbook(tmp_path / "dup.xlsx", {"a": [["id", "id"], [1, 2]], "b": [[None]], "c": [["id"]]})
    with pytest.raises(DataError, match="duplicate column name 'id'"):
        read_table(path)
    with pytest.raises(DataError, match="the sheet is empty"):
        read_table(path, sheet="b")
    with pytest.raises(DataError, match="the table has a header but no rows"):
        read_table(path, sheet="c")


def zip_without_workbook() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("docProps/app.xml", "<Properties/>")
    return buf.getvalue()


def encrypted_workbook(tmp_path: Path, plain: Path) -> bytes:
    """A password-protected .xlsx: with msoffcrypto-tool when installed, else the OLE2 container such files are."""
    if importlib.util.find_spec("msoffcrypto") is not None:  # pragma: no cover - not installed in the lock
        import msoffcrypto

        out = io.BytesIO()
        with open(plain, "rb") as fh:
            msoffcrypto.format.ooxml.OOXMLFile(fh).encrypt("secret", out)
        return out.getvalue()
    header = bytearray(512)
    header[:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"   # compound file signature
    header[0x18:0x1A] = (0x3E).to_bytes(2, "little")    # minor version
    header[0x1A:0x1C] = (3).to_bytes(2, "little")       # major version 3
    header[0x1C:0x1E] = b"\xfe\xff"                     # byte order
    header[0x1E:0x20] = (9).to_bytes(2, "little")       # 512-byte sectors
    directory = "EncryptedPackage".encode("utf-16-le") + "EncryptionInfo".encode("utf-16-le")
    return bytes(header) + directory.ljust(1536, b"\x00")


def test_unreadable_workbooks_are_one_line(tmp_path):
    plain = workbook(tmp_path / "plain.xlsx", {"data": [["id"], ["1"]]})
    raw = plain.read_bytes()
    cases = {
        "truncated.xlsx": raw[: len(raw) // 2],
        "cut_short.xlsx": raw[:-30],
        "garbage.xlsx": b"this is not a workbook\n" * 20,
        "no_workbook.xlsx": zip_without_workbook(),
        "encrypted.xlsx": encrypted_workbook(tmp_path, plain),
    }
    for name, data in cases.items():
        path = write(tmp_path, name, data)
        with pytest.raises(DataError) as exc:
            read_table(path)
        assert str(exc.value) == f"{path}: {NOT_A_WORKBOOK}", name


def test_legacy_xls_without_xlrd(tmp_path):
    if importlib.util.find_spec("xlrd") is not None:  # pragma: no cover
        pytest.skip("xlrd is installed")
    path = write(tmp_path, "old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 1000)
    with pytest.raises(DataError, match=r"\.xls\) workbook needs the xlrd package: save it as \.xlsx or CSV"):
        read_table(path)


def test_parquet_still_reads_as_text(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"id": ["001", "002"], "x": [1.5, None]}).to_parquet(path)
    df = read_table(path)
    assert df.to_dict("list") == {"id": ["001", "002"], "x": ["1.5", None]}
    assert_text_frame(df)
    with pytest.raises(DataError, match="not a Parquet file"):
        read_table(write(tmp_path, "bad.parquet", b"nope"))


# ============================================================================ dataset.yaml and load_dataset


def test_dataset_yaml_table_as_a_mapping(tmp_path):
    workbook(tmp_path / "export.xlsx", {"about": [["x"], ["y"]],
                                        "data": [["location_id", "a"], ["L1", "1"], ["L2", "2"]]})
    write(tmp_path, "locations.csv", "location_id,name\nL1,One\nL2,Two\n")
    write(tmp_path, "dataset.yaml", "name: t\nanswers: {file: export.xlsx, sheet: data}\nlocations: locations.csv\n")
    assert dataset_files(tmp_path) == {"answers": tmp_path / "export.xlsx", "locations": tmp_path / "locations.csv"}
    assert dataset_sources(tmp_path)["answers"].sheet == "data"
    data = load_dataset(tmp_path)
    assert data.answers["a"].tolist() == ["1", "2"] and data.files["answers"] == str(tmp_path / "export.xlsx")
    assert data.locations["name"].tolist() == ["One", "Two"]


@pytest.mark.parametrize("entry, column, message", [
    ("{file: a.csv, colour: blue}", "answers.colour", "unknown option"),
    ("{sheet: data}", "answers.file", "a file name is needed"),
    ("{file: a.csv, format: odk}", "answers.format", "'odk' is not a format"),
    ("{file: a.csv, format: table, repeat: informants}", "answers.repeat", "a KoBo option: it needs format: kobo"),
    ("{file: a.csv, select_multiple: split}", "answers.select_multiple", "'split' is not one of"),
    ("[a.csv]", "answers", "expected a file name or a mapping"),
])
def test_dataset_yaml_bad_table_entry(tmp_path, entry, column, message):
    write(tmp_path, "a.csv", "id\n1\n")
    manifest = write(tmp_path, "dataset.yaml", f"answers: {entry}\n")
    with pytest.raises(DataError) as exc:
        dataset_files(tmp_path)
    assert str(exc.value).startswith(f"{manifest}, column '{column}': {message}"), str(exc.value)


def hxl_dataset(folder: Path, locations_tags: str) -> Path:
    write(folder, "answers.csv", "loc,a,b\n#loc+code,#indicator+a,\nL1,1,5\nL2,2,3\nL3,3,1\nL4,4,4\n")
    write(folder, "locations.csv", f"loc,lat,lon,latitude_old\n{locations_tags}\nL1,12.5,-8,1\nL2,13,-7,1\n"
                                   "L3,14,-6,1\nL4,15,-5,1\n")
    write(folder, "dataset.yaml", "answers: answers.csv\nlocations: locations.csv\n")
    return folder


def test_spec_columns_by_hashtag(tmp_path, make_spec):
    import stability as st

    hxl_dataset(tmp_path, "#loc+code,#geo+lat+wgs84,#geo+lon,#meta")
    spec = make_spec(indicators=("a", "b"), columns={"location": "#loc+code", "round": None,
                                                     "latitude": "#geo+lat", "longitude": "#geo+lon"})
    data = load_dataset(tmp_path, spec=spec)
    assert "#loc+code" in data.answers.columns and "a" in data.answers.columns
    assert list(data.locations.columns) == ["#loc+code", "#geo+lat", "#geo+lon", "latitude_old"]
    result = st.compute(data, spec)
    assert len(result.scores) == 4 and result.scores["#geo+lat"].notna().all()
    # without the spec nothing is renamed
    assert "lat" in load_dataset(tmp_path).locations.columns


def test_hashtag_matching_two_columns_is_an_error(tmp_path, make_spec):
    hxl_dataset(tmp_path, "#loc+code,#geo+lat,#geo+lon,#geo+lat+old")
    spec = make_spec(indicators=("a", "b"), columns={"location": "loc", "round": None, "latitude": "#geo+lat"})
    assert "#geo+lat" in load_dataset(tmp_path, spec=spec).locations.columns  # the exact tag wins
    hxl_dataset(tmp_path, "#loc+code,#geo+lat+a,#geo+lon,#geo+lat+b")
    with pytest.raises(DataError) as exc:
        load_dataset(tmp_path, spec=spec)
    assert str(exc.value) == (f"{tmp_path / 'locations.csv'}, column '#geo+lat': the hashtag '#geo+lat' named by "
                              "the spec matches several columns: 'lat', 'latitude_old'")


def test_round_dates_in_several_formats_are_an_error_with_the_spec(tmp_path, make_spec):
    write(tmp_path, "answers.csv", "loc,round,a,b\nL1,2021-12-14,1,2\nL2,2021-12-14,2,3\nL1,15/06/2022,3,1\n")
    spec = make_spec(indicators=("a", "b"), round="round")
    with pytest.raises(DataError, match=r"answers.csv, column 'round', row 4: dates written in 2 formats"):
        load_dataset(tmp_path / "answers.csv", spec=spec)


def test_hxl_row_for_exports(mali_spec):
    columns = ["data_note", "location_id", "round", "location_name", "admin1_pcode", "admin1_name",
               "admin2_pcode", "admin2_name", "longitude", "latitude", "population", "idps", "n_informants",
               "stability", "safety", "robbery", "category", "rank_national", "rank_region", "change",
               "spec_hash", "something_else", "#geo+elevation"]
    tags = hxl_row(columns, mali_spec)
    assert len(tags) == len(columns)
    assert dict(zip(columns, tags)) == {
        "data_note": "#meta+note", "location_id": "#loc+code", "round": "#meta+round",
        "location_name": "#loc+name", "admin1_pcode": "#adm1+code", "admin1_name": "#adm1+name",
        "admin2_pcode": "#adm2+code", "admin2_name": "#adm2+name", "longitude": "#geo+lon",
        "latitude": "#geo+lat", "population": "#population", "idps": "#affected+idps+ind",
        "n_informants": "#meta+informants+num", "stability": "#indicator+num+stability",
        "safety": "#indicator+num+safety", "robbery": "#indicator+num+robbery", "category": "#indicator+category",
        "rank_national": "#indicator+rank+national", "rank_region": "#indicator+rank+region",
        "change": "#indicator+num+change", "spec_hash": "#meta+spec_hash", "something_else": "",
        "#geo+elevation": "#geo+elevation"}
    assert hxl_row(["latitude"], mali_spec, known={"latitude": "#geo+lat+wgs84"}) == ["#geo+lat+wgs84"]
    # a CSV written with the row reads back to the same table
    from stability.io import parse_hashtag

    assert all(t == "" or parse_hashtag(t) for t in tags)


# ============================================================================ fuzzing: only the toolkit's errors


def _base_files() -> dict[str, bytes]:
    csv_text = ('location_id;name;share;date\r\n001;"Ségou; centre";3,5;2021-12-14\r\n'
                '002;Mopti;;14/12/2021\r\n#x;"a ""quoted"" cell";-1,25;\r\n')
    folder = Path(tempfile.mkdtemp())
    book = workbook(folder / "b.xlsx", {"data": [["id", "x", "d"], ["001", 1.5, datetime.datetime(2021, 1, 2)],
                                                 ["002", None, "text"]]})
    return {".csv": csv_text.encode("cp1252"), ".xlsx": book.read_bytes(), ".tsv": TIDY.replace(",", "\t").encode()}


BASES = _base_files()


def _read_or_refuse(suffix: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzz{suffix}"
        path.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                df = read_table(path)
            except StabilityError as exc:
                assert "\n" not in str(exc).strip(), str(exc)
                return
        assert_text_frame(df)
        assert len(df) > 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(suffix=st.sampled_from([".csv", ".tsv", ".xlsx", ".parquet"]), data=st.binary(max_size=600))
def test_fuzz_random_bytes(suffix, data):
    _read_or_refuse(suffix, data)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(suffix=st.sampled_from(sorted(BASES)), cut=st.integers(0, 1 << 16),
       edits=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255), st.sampled_from(["set", "insert",
                                                                                                  "delete"])),
                      max_size=6))
def test_fuzz_mutated_valid_files(suffix, cut, edits):
    data = bytearray(BASES[suffix])
    for pos, byte, how in edits:
        pos %= max(len(data), 1)
        if how == "set" and data:
            data[pos] = byte
        elif how == "insert":
            data.insert(pos, byte)
        elif data:
            del data[pos]
    if cut % 3 == 0 and data:  # a third of the files are also cut short
        data = data[: cut % len(data)]
    _read_or_refuse(suffix, bytes(data))


# ============================================================================ the command line


KI, LOC = "key_informants.csv", "locations.csv"


def raw_lines(d, name=KI) -> list[bytes]:
    return (d.data / name).read_bytes().split(b"\n")


def write_raw(d, lines: list[bytes], name=KI) -> None:
    (d.data / name).write_bytes(b"\n".join(lines))


def semicolons_with_a_comma_line(d):
    lines = [line.replace(b",", b";") for line in raw_lines(d)]
    lines[119] = lines[119].replace(b";", b",")                       # line 120
    write_raw(d, lines)


def semicolons_in_place_of_three_commas(d):
    lines = raw_lines(d)
    lines[40] = lines[40].replace(b",", b";", 3)                       # line 41
    write_raw(d, lines)


def bom_in_the_middle(d):
    lines = raw_lines(d)
    lines[299] = b"\xef\xbb\xbf" + lines[299]                          # line 300
    write_raw(d, lines)


def extra_cell(d):
    lines = raw_lines(d)
    lines[76] += b",surplus"                                           # line 77
    write_raw(d, lines)


def unclosed_quote(d):
    lines = raw_lines(d)
    lines[499] = lines[499].replace(b",", b',"', 1)                    # line 500
    write_raw(d, lines)


def nul_byte(d):
    lines = raw_lines(d)
    lines[41] = lines[41][:10] + b"\x00" + lines[41][11:]              # line 42
    write_raw(d, lines)


def round_dates(d):
    lines = raw_lines(d)
    dates = {b"1": b"2021-12-14", b"2": b"14/06/2022", b"3": b"12/14/2022"}
    for i in range(1, len(lines)):
        if lines[i]:
            head, _, tail = lines[i].partition(b",")
            lines[i] = dates[head] + b"," + tail
    write_raw(d, lines)


def first_line_of_round(d, value: str) -> int:
    lines = raw_lines(d)
    return next(i + 1 for i, line in enumerate(lines) if line.startswith(value.encode() + b","))


def small_workbook(d, name="answers.xlsx", sheet="data"):
    answers = pd.read_csv(d.data / KI, dtype=str, nrows=50)
    path = d.data / name
    with pd.ExcelWriter(path) as xw:
        answers.to_excel(xw, sheet_name=sheet, index=False)
    yaml = (d.data / "dataset.yaml").read_text(encoding="utf-8")
    (d.data / "dataset.yaml").write_text(yaml.replace("answers: key_informants.csv",
                                                      f"answers: {{file: {name}, sheet: data}}"), encoding="utf-8")
    return path


def truncated_workbook(d):
    path = small_workbook(d)
    path.write_bytes(path.read_bytes()[:3000])


def encrypted(d):
    path = small_workbook(d)
    path.write_bytes(encrypted_workbook(d.root, path))


def missing_sheet(d):
    small_workbook(d, sheet="answers")


def bad_manifest_option(d):
    yaml = (d.data / "dataset.yaml").read_text(encoding="utf-8")
    (d.data / "dataset.yaml").write_text(yaml.replace("answers: key_informants.csv",
                                                      "answers: {file: key_informants.csv, colour: blue}"),
                                         encoding="utf-8")


def kobo_export(d, edit=None):
    """key_informants.csv as a KoBo export: group paths, labels, metadata; dataset.yaml says format: kobo."""
    answers = pd.read_csv(d.data / KI, dtype=str, keep_default_na=False)
    groups = {c: ("grp_id/" if c in ("round", "survey_date", "location_id", "ki_id", "ki_profile") else "grp_q/") + c
              for c in answers.columns}
    export = answers.rename(columns=groups)
    export.insert(0, "start", "2021-12-14T09:00:00")
    export["_id"] = [str(100000 + i) for i in range(len(export))]
    export["_uuid"] = [f"uuid-{i:06d}" for i in range(len(export))]
    export["_submission_time"] = "2021-12-14T12:00:00"
    export["__version__"] = "vA"
    if edit:
        export = edit(export)
    export.to_csv(d.data / "export.csv", index=False)
    (d.data / KI).unlink()
    yaml = (d.data / "dataset.yaml").read_text(encoding="utf-8")
    (d.data / "dataset.yaml").write_text(yaml.replace("answers: key_informants.csv",
                                                      "answers: {file: export.csv, format: kobo}"), encoding="utf-8")


def duplicate_submission(d):
    def edit(export):
        export.loc[398, "_uuid"] = export.loc[8, "_uuid"]             # line 400 repeats line 10
        return export

    kobo_export(d, edit)


def renamed_question(d):
    def edit(export):
        export = export.rename(columns={"grp_q/robbery": "grp_q/robbery_3m"})
        export.loc[5000:, "__version__"] = "vB"
        return export

    kobo_export(d, edit)


def repeat_without_submission(d):
    path = d.data / "export.xlsx"
    answers = pd.read_csv(d.data / KI, dtype=str, nrows=6)
    main = answers[["round", "location_id"]].drop_duplicates().reset_index(drop=True)
    main["_index"] = [str(i + 1) for i in range(len(main))]
    main["_uuid"] = [f"u{i}" for i in range(len(main))]
    rep = answers.drop(columns=["round", "location_id"])
    rep["_parent_index"] = ["1"] * 3 + ["9"] + ["1"] * (len(rep) - 4)    # sheet row 5 points nowhere
    with pd.ExcelWriter(path) as xw:
        main.to_excel(xw, sheet_name="submissions", index=False)
        rep.to_excel(xw, sheet_name="informants", index=False)
    yaml = (d.data / "dataset.yaml").read_text(encoding="utf-8")
    (d.data / "dataset.yaml").write_text(yaml.replace(
        "answers: key_informants.csv", "answers: {file: export.xlsx, format: kobo, repeat: informants}"),
        encoding="utf-8")


def two_latitude_columns(d):
    lines = raw_lines(d, LOC)
    header = lines[0].split(b",")
    tags = [b"#geo+lat+a" if h in (b"latitude", b"population") else b"" for h in header]
    lines.insert(1, b",".join(tags))
    write_raw(d, lines, LOC)
    d.edit_spec("  latitude: latitude", '  latitude: "#geo+lat"')


# name, breaker, (file, column, row) expected at the start of the message (file may be a callable of the
# copy; row may be a callable), a fragment of the message
CASES = [
    ("mixed separators", semicolons_with_a_comma_line, (KI, None, 120),
     "mixed separators: this row is separated by ',', the header by ';'"),
    ("semicolons in place of some commas", semicolons_in_place_of_three_commas, (KI, None, 41),
     "mixed separators: this row has 27 cells, the header 30, and 3 ';' that would make up the difference"),
    ("byte-order mark in the middle", bom_in_the_middle, (KI, None, 300), "byte-order mark (BOM) in the middle"),
    ("a row with an extra cell", extra_cell, (KI, None, 77), "31 cells on this row but 30 columns in the header"),
    ("a quote never closed", unclosed_quote, (KI, None, 500), "a quoted cell is never closed"),
    ("a NUL byte", nul_byte, (KI, None, 42), "NUL bytes"),
    ("round dates in three formats", round_dates, (KI, "round", lambda d: first_line_of_round(d, "14/06/2022")),
     "dates written in 3 formats: YYYY-MM-DD (row 2: 2021-12-14), DD/MM/YYYY"),
    ("truncated workbook", truncated_workbook, ("answers.xlsx", None, None), NOT_A_WORKBOOK),
    ("password-protected workbook", encrypted, ("answers.xlsx", None, None), NOT_A_WORKBOOK),
    ("missing sheet", missing_sheet, ("answers.xlsx", None, None), "no sheet 'data' in the workbook (sheets: answers)"),
    ("unknown dataset.yaml option", bad_manifest_option, ("dataset.yaml", "answers.colour", None), "unknown option"),
    ("duplicate KoBo submission", duplicate_submission, ("export.csv", "_uuid", 400),
     "duplicate submission: same _uuid 'uuid-000008' as row 10"),
    ("question renamed in a new form version", renamed_question, ("export.csv", "robbery", None),
     "column named by the spec is not in the export, but 'robbery_3m' is: renamed in a new form version? Rename "
     "the column back or update the spec (the export mixes 2 form versions: vA, vB)"),
    ("repeat row without its submission", repeat_without_submission,
     ("export.xlsx, sheet 'informants'", "_parent_index", 5), "no row of sheet 'submissions' has _index '9'"),
    ("hashtag matching two columns", two_latitude_columns, (LOC, "#geo+lat", None),
     "the hashtag '#geo+lat' named by the spec matches several columns: 'latitude', 'population'"),
]


@pytest.fixture
def prior_outputs(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("scores.csv", "scores.parquet", "audit_log.csv"):
        (out / name).write_bytes(f"earlier {name}\n".encode())
    return out


def digests(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name, breaker, where, message", CASES, ids=[c[0] for c in CASES])
def test_cli_refuses_bad_files_with_one_line(capsys, dataset_copy, prior_outputs,
                                             name, breaker, where, message):
    from stability.cli import main

    d = dataset_copy
    breaker(d)
    file, column, row = where
    row = row(d) if callable(row) else row
    path = d.spec if file == "spec.yaml" else f"{d.data}/{file}"
    prefix = ", ".join([str(path)] + ([f"column '{column}'"] if column else []) + ([f"row {row}"] if row else []))
    inputs, outputs = digests(d.data), digests(prior_outputs)
    for command in (["score", "-q", "--out", str(prior_outputs)], ["validate"]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InputWarning)
            rc = main([*command, "--data", str(d.data), "--spec", str(d.spec)])
        out, err = capsys.readouterr()
        assert rc == 2, (command, out, err)
        lines = err.splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith(f"stability: error: {prefix}: "), lines[0]
        assert message in lines[0], lines[0]
        assert out == ""
        assert digests(prior_outputs) == outputs      # earlier outputs byte-identical, nothing new
        assert digests(d.data) == inputs              # inputs untouched


def test_cli_reads_a_semicolon_windows1252_survey(capsys, dataset_copy):
    from stability.cli import main

    d = dataset_copy
    lines = [line.replace(b",", b";") for line in raw_lines(d)]
    lines = [line.replace(b"\n", b"") + b"\r" if line else line for line in lines]
    lines[1] = lines[1].replace(b"village_chief", "chef_de_village_é".encode("cp1252"))
    write_raw(d, lines)
    rc = main(["validate", "--data", str(d.data), "--spec", str(d.spec)])
    out, err = capsys.readouterr()
    assert rc == 0, out + err
    assert out.splitlines()[-1].startswith("OK: 17366 answer rows")
    # the fallback is one line on stderr naming the file
    (warning,) = [line for line in err.splitlines() if "Windows-1252" in line]
    assert warning.startswith(f"stability: warning: {d.data / KI}") and "read as Windows-1252" in warning


def test_cli_reads_hashtag_columns(capsys, dataset_copy):
    from stability.cli import main

    d = dataset_copy
    lines = raw_lines(d, LOC)
    header = lines[0].decode().split(",")
    tags = {"location_id": "#loc+code", "latitude": "#geo+lat", "longitude": "#geo+lon", "admin1_pcode": "#adm1+code"}
    lines.insert(1, ",".join(tags.get(h, "") for h in header).encode())
    write_raw(d, lines, LOC)
    d.edit_spec("  latitude: latitude", '  latitude: "#geo+lat"')
    d.edit_spec("  longitude: longitude", '  longitude: "#geo+lon"')
    rc = main(["validate", "--data", str(d.data), "--spec", str(d.spec)])
    out, err = capsys.readouterr()
    assert rc == 0, out + err
    # a bad coordinate is reported on its line in the file (the hashtag row counted)
    d.set_cell(LOC, 121, "latitude", "132.5")
    rc = main(["validate", "--data", str(d.data), "--spec", str(d.spec)])
    out, err = capsys.readouterr()
    assert rc == 2
    assert f"error: {d.data / LOC}, column '#geo+lat', row 121: '132.5' is not a coordinate" in out, out


def test_cli_reads_a_kobo_export(capsys, dataset_copy):
    from stability.cli import main

    d = dataset_copy
    kobo_export(d)
    rc = main(["validate", "--data", str(d.data), "--spec", str(d.spec)])
    out, err = capsys.readouterr()
    assert rc == 0, out + err
    assert out.splitlines()[-1].startswith("OK: 17366 answer rows")


def test_warnings_name_the_file(dataset_copy):
    """InputWarnings carry file, column, row and message as attributes (for a one-line CLI display)."""
    path = write(dataset_copy.root, "w.csv", b"a;b\n1;2,5\n")
    with pytest.warns(InputWarning) as record:
        read_table(path)
    (w,) = record
    assert w.message.file == str(path) and w.message.column is None
    assert w.message.message.startswith("decimal commas read as points")
    assert np.array_equal(read_quietly(path)["b"].to_numpy(), np.array(["2.5"], dtype=object))


def test_a_table_over_the_input_limit_is_one_line_and_exit_2(capsys, dataset_copy, monkeypatch):
    """A huge file is refused before it is read, naming its size and the limit (and how to raise it)."""
    from stability.cli import main

    d = dataset_copy
    out_dir = d.root / "out"
    out_dir.mkdir()
    (out_dir / "scores.csv").write_text("earlier\n", encoding="utf-8")
    monkeypatch.setenv("STABILITY_MAX_INPUT_MB", "0.5")   # the embedded answers are ~1.3 MB
    rc = main(["score", "-q", "--data", str(d.data), "--spec", str(d.spec), "--out", str(out_dir)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"stability: error: {d.data / KI}: the file is 2.4 MB, over the 0.5 MB input limit")
    assert "STABILITY_MAX_INPUT_MB" in err
    assert (out_dir / "scores.csv").read_text(encoding="utf-8") == "earlier\n"
