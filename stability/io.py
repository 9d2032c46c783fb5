"""Reading survey files and writing outputs safely.

Input tables (CSV, Excel, Parquet) are read as text so that validation can say
exactly which cell is wrong; nothing here ever writes to an input.  Field teams'
files are taken as they come (``;`` or tab separators, Windows-1252 text, decimal
commas, a byte-order mark, Excel sheets, KoBoToolbox exports, an HXL hashtag row):
see :func:`read_table` and :func:`load_dataset` for the rules.  A file that cannot be
read safely is one :class:`~stability.exceptions.DataError` naming the file, column
and row; a fallback (an encoding guessed, cells converted) is an :class:`InputWarning`
naming the file.

Outputs are written atomically: to a temporary file in the target folder, then
renamed over the destination, so a failed run never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import hashlib
import io
import os
import re
import tempfile
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from .exceptions import DataError, StabilityError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np
    import pandas as pd

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")
TABLE_SUFFIXES = (*CSV_SUFFIXES, *EXCEL_SUFFIXES, ".parquet")
#: Column separators a CSV file may use, in the order preferred when the header cannot tell them apart.
SEPARATORS = (",", ";", "\t")
#: What a workbook that cannot be opened is called in messages.
NOT_A_WORKBOOK = "not a readable Excel workbook (truncated or encrypted?)"

_SEP_NAMES = {",": "','", ";": "';'", "\t": "tab"}
_UTF8_BOM = b"\xef\xbb\xbf"
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Office 97-2003 files, and password-protected .xlsx files
_ZIP = b"PK\x03\x04"
_SAMPLE = 1 << 16  # characters of a CSV file looked at to choose its separator
_DECIMAL_COMMA = r"[+-]?\d+,\d+"
#: An HXL hashtag with its attributes (``#adm1+code``, ``#geo +lat``).
HXL_TAG = re.compile(r"\s*#[A-Za-z][A-Za-z0-9_]*(?:\s*\+\s*[A-Za-z][A-Za-z0-9_]*)*\s*")


class InputWarning(UserWarning):
    """A fallback taken while reading an input (an encoding guessed, cells converted, a row padded).

    The text names the file (and column and row when they matter) like an
    :class:`~stability.exceptions.InputError`; ``file``, ``column``, ``row`` and
    ``message`` are kept as attributes.
    """

    def __init__(self, message: str, *, file=None, column=None, row=None):
        self.message, self.file, self.column, self.row = message, None if file is None else str(file), column, row
        super().__init__(str(DataError(message, file=file, column=column, row=row)))


def warn_input(message: str, *, file=None, column=None, row=None) -> None:
    """Emit an :class:`InputWarning` (Python's ``warnings``: shown once per message, filterable), attributed
    to the first caller outside the readers."""
    import sys

    level, frame = 2, sys._getframe(1)
    here = (os.path.abspath(__file__), os.path.join(os.path.dirname(os.path.abspath(__file__)), "kobo.py"))
    while frame is not None and os.path.abspath(frame.f_code.co_filename) in here:
        level, frame = level + 1, frame.f_back
    warnings.warn(InputWarning(message, file=file, column=column, row=row), stacklevel=level)


@dataclass(frozen=True)
class _Layout:
    """How a table file was read: what :func:`record_lines` needs to give each data row its line."""

    encoding: str | None = None        # CSV text encoding
    sep: str | None = None             # CSV separator
    skip: int = 0                      # records between the header and the first data row (1: an HXL row)
    lines: tuple[int, ...] | None = None  # explicit line (sheet row) of each data row (Excel, joined sheets)


_LAYOUTS: dict[str, tuple[tuple[int, int], _Layout]] = {}


def _stat_key(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _remember(path: str | Path, layout: _Layout) -> None:
    """Keep how ``path`` was read (for row numbers in later messages), for as long as the file is unchanged."""
    key = _stat_key(Path(path))
    if key is None:
        return
    _LAYOUTS.pop(os.path.abspath(path), None)
    _LAYOUTS[os.path.abspath(path)] = (key, layout)
    while len(_LAYOUTS) > 64:
        _LAYOUTS.pop(next(iter(_LAYOUTS)))


def _layout(path: Path) -> _Layout | None:
    hit = _LAYOUTS.get(os.path.abspath(path))
    return hit[1] if hit is not None and hit[0] == _stat_key(path) else None


#: Environment variable with the largest input table read, in MB (default :data:`MAX_INPUT_MB`).
MAX_INPUT_ENV = "STABILITY_MAX_INPUT_MB"
#: Default input limit: far above any survey round, below what would exhaust a laptop's memory as text.
MAX_INPUT_MB = 2048


def _megabytes(n: int) -> str:
    mb = n / 2**20
    return f"{mb:,.1f} MB" if mb < 10 else f"{mb:,.0f} MB"


def max_input_bytes() -> int:
    """The largest table file :func:`read_table` reads (``STABILITY_MAX_INPUT_MB``, default 2048 MB)."""
    value = os.environ.get(MAX_INPUT_ENV, "").strip()
    try:
        mb = float(value) if value else MAX_INPUT_MB
    except ValueError:
        raise DataError(f"{MAX_INPUT_ENV}={value!r} is not a number of megabytes") from None
    return int(mb * 2**20)


def read_table(path: str | Path, *, sheet: str | int | None = None,
               date_columns: Iterable[str] = ()) -> "pd.DataFrame":
    """Read a CSV, Excel or Parquet table with every cell as text.

    Empty cells are missing (``None``); nothing else is interpreted, so that ids
    keep their leading zeros and a bad answer can be reported as written.  Every
    column has ``object`` dtype.

    CSV files (``.csv``, ``.tsv``, ``.txt``):

    - **separator**: ``,``, ``;`` or tab, whichever the header line holds most often
      outside quotes; a tie is settled by the first lines of data (the one that gives
      the header's number of cells), else ``,`` with an :class:`InputWarning`;
    - **encoding**: UTF-8 with or without a byte-order mark, UTF-16 with one; anything
      else is read as Windows-1252 (or Latin-1 when not even that) with a warning;
    - **decimal commas**: in a ``;``-separated file, a cell that is a number with a
      decimal comma (``3,5``, ``-12,75``; regex ``[+-]?\\d+,\\d+``) is read as ``3.5``
      (with one warning per file); other cells (text, ``1.234,5``, ``3,5 km``) are
      left as written;
    - **row shape**: a row with more cells than the header, a row separated by another
      separator than the header, wholly or partly (``;`` and ``,`` mixed: the row's cells and its
      other separators make up the header's number of cells), a byte-order mark in the middle
      of the file (two files pasted together) or NUL bytes are errors naming the row;
      a row with fewer cells is read with the missing cells empty, with a warning.

    Excel workbooks (``.xlsx``, ``.xlsm``): the first sheet, or ``sheet`` (a name or a
    0-based position); the first non-empty row is the header; empty rows are skipped
    (row numbers in messages stay the sheet's); date cells read as ISO text
    (``2021-12-14``, or ``2021-12-14T10:30:00`` with a time), whole numbers without a
    decimal point.  A file that is not a workbook (truncated, password-protected,
    renamed) is one error.

    Every format: an `HXL <https://hxlstandard.org>`_ hashtag row right under the
    header (every non-empty cell a hashtag such as ``#adm1+code``) is taken out of the
    data; the hashtags are kept in ``df.attrs["hxl"]`` (column -> hashtag).  A column of
    dates (every non-empty cell a date) written in several formats (``2021-12-14``,
    ``14/12/2021``, ``12/14/2021``; ISO months and days, ``2021-12`` and ``2021-12-14``,
    count as one format, and ``03/04/2021`` fits either day-month order) is an error
    naming the column and the first row in another format when the column is one of
    ``date_columns``, else a warning; dates are never rewritten.

    Parameters
    ----------
    path : str or Path
    sheet : str or int, optional
        Excel sheet to read (default: the first).
    date_columns : iterable of str
        Columns whose dates are used (e.g. the round): mixed date formats there are an error.

    Returns
    -------
    DataFrame

    Raises
    ------
    DataError
        If the file is missing, unreadable, empty, has duplicate column names or one of
        the problems above; never any other exception.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=path)
    if path.is_dir():
        raise DataError("expected a table file, found a folder", file=path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(f"unsupported file type '{suffix}' (use CSV, Excel or Parquet)", file=path)
    size = path.stat().st_size
    if size == 0:
        raise DataError("the file is empty", file=path)
    limit = max_input_bytes()
    if size > limit:
        raise DataError(f"the file is {_megabytes(size)}, over the {_megabytes(limit)} input limit "
                        f"(a survey export is a few MB; set {MAX_INPUT_ENV} to read larger tables)", file=path)
    if suffix in EXCEL_SUFFIXES:
        return read_sheets(path, [sheet], date_columns=date_columns)[sheet]
    if sheet is not None:
        raise DataError(f"a sheet ('{sheet}') is given but the file is not an Excel workbook", file=path)
    try:
        if suffix in CSV_SUFFIXES:
            header, columns, line_of, layout = _read_csv(path)
        else:
            header, columns, line_of, layout = _read_parquet(path)
        return _finish(path, path, header, columns, line_of, layout, date_columns)[0]
    except StabilityError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # anything pandas / pyarrow / csv may raise on a damaged file
        raise DataError(f"cannot read the table: {_first_line(exc)}", file=path) from None


def read_sheets(path: str | Path, sheets: Iterable[str | int | None], *,
                date_columns: Iterable[str] = ()) -> "dict[str | int | None, pd.DataFrame]":
    """Read several sheets of one Excel workbook (opened once) as :func:`read_table` reads one.

    ``None`` stands for the first sheet.  Returns sheet (as asked) -> table.
    """
    return {sheet: df for sheet, (df, _) in _read_book(path, sheets, date_columns)[1].items()}


def _read_book(path: str | Path, sheets: Iterable[str | int | None], date_columns: Iterable[str] = ()):
    """(sheet names, {sheet: (table, sheet row of each data row)}) of an Excel workbook."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", file=path)
    raw = path.read_bytes()
    if not raw:
        raise DataError("the file is empty", file=path)
    try:
        book = _open_workbook(path, raw)
        out = {}
        for sheet in dict.fromkeys(sheets):
            name = _sheet_name(path, book, sheet)
            where = f"{path}, sheet '{name}'" if sheet is not None else path
            header, columns, line_of, layout = _read_sheet(where, book, name)
            df, layout = _finish(where, path, header, columns, line_of, layout, date_columns)
            out[sheet] = (df, layout.lines)
        return list(book.sheet_names), out
    except StabilityError:
        raise
    except MemoryError:
        raise
    except Exception:  # openpyxl, zipfile, zlib, XML parsers: a damaged workbook
        raise DataError(NOT_A_WORKBOOK, file=path) from None


def sheet_names(path: str | Path) -> list[str]:
    """The sheets of an Excel workbook, in order."""
    path = Path(path)
    raw = path.read_bytes() if path.is_file() else b""
    try:
        return list(_open_workbook(path, raw).sheet_names)
    except StabilityError:
        raise
    except Exception:
        raise DataError(NOT_A_WORKBOOK, file=path) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(exc).__name__


# ------------------------------------------------------------------ CSV
def _line_at(raw: bytes | str, pos: int) -> int:
    """1-based line of the character or byte at ``pos``."""
    nl = b"\n" if isinstance(raw, bytes) else "\n"
    if nl not in raw[:pos + 1] and (b"\r" if isinstance(raw, bytes) else "\r") in raw[:pos + 1]:
        nl = b"\r" if isinstance(raw, bytes) else "\r"  # old Mac line ends
    return raw.count(nl, 0, pos) + 1


def _decode(path: Path, raw: bytes, *, warn: bool = True) -> tuple[str, str]:
    """The text of a CSV file and the encoding it was read with; errors for binary content."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = raw.decode("utf-16")
        except UnicodeDecodeError:
            raise DataError("not valid UTF-16 text although it starts with a UTF-16 byte-order mark",
                            file=path) from None
        for ch, what in (("\ufeff", "a byte-order mark (BOM) in the middle of the file: two files pasted together? "
                                    "Remove it (and a repeated header)"),
                         ("\x00", "NUL characters: not a text table")):
            pos = text.find(ch)
            if pos >= 0:
                raise DataError(what, file=path, row=_line_at(text, pos))
        return text, "utf-16"
    if raw.startswith((_ZIP, _OLE2)):
        raise DataError("an Excel workbook (or another binary file), not CSV text: give it the .xlsx extension "
                        "if it is a workbook", file=path)
    pos = raw.find(b"\x00")
    if pos >= 0:
        raise DataError("NUL bytes: a binary file, or UTF-16 text without a byte-order mark (save it as UTF-8 CSV)",
                        file=path, row=_line_at(raw, pos))
    bom = raw.startswith(_UTF8_BOM)
    pos = raw.find(_UTF8_BOM, 3 if bom else 0)
    if pos >= 0:
        raise DataError("a byte-order mark (BOM) in the middle of the file: two files pasted together? "
                        "Remove it (and a repeated header)", file=path, row=_line_at(raw, pos))
    try:
        return raw[3:].decode("utf-8") if bom else raw.decode("utf-8"), "utf-8-sig" if bom else "utf-8"
    except UnicodeDecodeError as exc:
        if bom:
            raise DataError("not UTF-8 text although it starts with a UTF-8 byte-order mark",
                            file=path, row=_line_at(raw, exc.start + 3)) from None
        where = f"first non-UTF-8 byte on line {_line_at(raw, exc.start)}"
    try:
        text, name, encoding = raw.decode("cp1252"), "Windows-1252", "cp1252"
    except UnicodeDecodeError:
        text, name, encoding = raw.decode("latin-1"), "Latin-1", "latin-1"
    if warn:
        warn_input(f"read as {name}: not UTF-8 ({where}); save it as UTF-8 to be sure of its accents", file=path)
    return text, encoding


def _count_outside_quotes(text: str, ch: str) -> int:
    if '"' not in text:
        return text.count(ch)
    n, quoted = 0, False
    for c in text:
        if c == '"':
            quoted = not quoted
        elif c == ch and not quoted:
            n += 1
    return n


def _first_record(text: str) -> str:
    """The header: the text up to the first line end outside quotes."""
    end = len(text)
    for nl in ("\n", "\r"):
        p = text.find(nl)
        if 0 <= p < end:
            end = p
    if '"' not in text[:end] or text[:end].count('"') % 2 == 0:
        return text[:end]
    quoted = False
    for i, c in enumerate(text):
        if c == '"':
            quoted = not quoted
        elif c in "\r\n" and not quoted:
            return text[:i]
    return text


def _sniff(path: Path, text: str, header: str) -> str:
    """The separator: the one the header holds most often outside quotes (see :func:`read_table`)."""
    counts = {s: _count_outside_quotes(header, s) for s in SEPARATORS}
    best = max(counts.values())
    if best == 0:
        return ","  # one column
    tied = [s for s in SEPARATORS if counts[s] == best]
    if len(tied) == 1:
        return tied[0]
    sample = [line for line in text[len(header):_SAMPLE].splitlines()[1:51] if line.strip()]
    score = {s: sum(_count_outside_quotes(line, s) == counts[s] for line in sample) for s in tied}
    top = max(score.values())
    winners = [s for s in tied if score[s] == top]
    if len(winners) > 1:
        warn_input(f"cannot tell the separator from the header ({' and '.join(_SEP_NAMES[s] for s in winners)} "
                   f"as often): read with {_SEP_NAMES[winners[0]]}", file=path)
    return winners[0]


@contextlib.contextmanager
def _long_cells() -> Iterator[None]:
    """Let the csv module read cells of any length (pandas does; csv stops at 128 KiB)."""
    before = csv.field_size_limit()
    csv.field_size_limit(max(before, 2**31 - 1))
    try:
        yield
    finally:
        csv.field_size_limit(before)


def _records(text: str, sep: str) -> Iterator[tuple[int, list[str]]]:
    """(start line, cells) of every non-blank record of CSV text, the header included."""
    with _long_cells():
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, quotechar='"', doublequote=True)
        end = 0
        for record in reader:
            start, end = end + 1, reader.line_num
            if record and not (len(record) == 1 and not record[0].strip()):
                yield start, record


def _check_shape(path: Path, text: str, sep: str, n: int) -> None:
    """Every row has the header's number of cells: mixed separators and extra cells are errors naming the row,
    missing cells a warning."""
    expected = n - 1
    lines = text.split("\n") if "\n" in text else text.split("\r")
    body = 0
    while body < len(lines) and not lines[body].strip():
        body += 1
    body += 1  # the header's line
    if all(line.count(sep) == expected for line in lines[body:] if line.strip()) and text.count('"') % 2 == 0:
        return
    if '"' not in text:
        bad = ((i + 1, line.split(sep), line) for i, line in enumerate(lines) if i >= body and line.strip()
               and line.count(sep) != expected)
    else:
        if text.count('"') % 2:
            _check_quotes(path, text, sep)
        physical = re.split(r"\r\n|\r|\n", text)
        bad = ((start, record, physical[start - 1] if start <= len(physical) else "")
               for k, (start, record) in enumerate(_records(text, sep)) if k and len(record) != n)
    short, first_short = 0, None
    for line_no, record, line in bad:
        for other in SEPARATORS:
            if other == sep or n < 2:
                continue
            k, cells = _count_outside_quotes(line, other), _count_outside_quotes(line, sep) + 1
            if k == expected and cells == 1:
                raise DataError(f"mixed separators: this row is separated by {_SEP_NAMES[other]}, the header by "
                                f"{_SEP_NAMES[sep]}", file=path, row=line_no)
            if k and cells + k == n:  # some of its cells separated by another separator
                raise DataError(f"mixed separators: this row has {cells} cells, the header {n}, and {k} "
                                f"{_SEP_NAMES[other]} that would make up the difference ({_SEP_NAMES[other]} in "
                                f"place of {_SEP_NAMES[sep]}?)", file=path, row=line_no)
        if len(record) > n:
            raise DataError(f"{len(record)} cells on this row but {n} columns in the header (a stray "
                            f"{_SEP_NAMES[sep]}, or an unquoted cell holding one?)", file=path, row=line_no)
        short += 1
        first_short = first_short or line_no
    if short:
        warn_input(f"{short} row{'s' * (short > 1)} with fewer cells than the header (first on row {first_short}): "
                   "the missing cells are read as empty", file=path)


def _check_quotes(path: Path, text: str, sep: str) -> None:
    """A quoted cell still open at the end of the file: an error naming the row where it starts."""
    try:
        with _long_cells():
            for _ in csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True):
                pass
    except csv.Error as exc:
        if "unexpected end of data" not in str(exc):
            return
        starts = [start for start, _ in _records(text, sep)]
        raise DataError("a quoted cell is never closed (an unmatched '\"')", file=path,
                        row=starts[-1] if starts else None) from None


def _read_csv(path: Path):
    import pandas as pd

    raw = path.read_bytes()
    text, encoding = _decode(path, raw)
    if not text.strip():
        raise DataError("the file is empty", file=path)
    lead = re.match(r"(?:[ \t]*(?:\r\n|\r|\n))*", text).end()  # blank lines before the header
    head = _first_record(text[lead:])
    sep = _sniff(path, text[lead:], head)
    header = next(csv.reader(io.StringIO(head, newline=""), delimiter=sep), [])
    _check_shape(path, text, sep, len(header))
    source = io.BytesIO(raw) if encoding.startswith("utf-8") else io.StringIO(text)
    try:
        df = pd.read_csv(source, sep=sep, dtype=object, keep_default_na=False, na_values=[""],
                         encoding=encoding if encoding.startswith("utf-8") else None, skipinitialspace=False,
                         quotechar='"', index_col=False)
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty", file=path) from None
    except pd.errors.ParserError as exc:
        message = _first_line(exc)
        if "EOF inside string" in message:
            starts = [start for start, _ in _records(text, sep)]
            raise DataError("a quoted cell is never closed (an unmatched '\"')", file=path,
                            row=starts[-1] if starts else None) from None
        m = re.search(r"line (\d+)", message)
        raise DataError(f"cannot read the table: {message}", file=path,
                        row=int(m.group(1)) if m else None) from None
    names = [str(c) for c in df.columns]
    columns = [_as_text(df[c].to_numpy(dtype=object)) for c in df.columns]
    if sep == ";":
        _decimal_commas(path, names, columns)
    layout = _Layout(encoding=encoding, sep=sep)
    found: list[list[int]] = []

    def line_of(pos: int, skip: int = 0) -> int:
        if not found:  # parsed again only when a message needs a row number
            found.append([start for start, _ in _records(text, sep)])
        starts = found[0]
        return starts[1 + skip + pos] if 1 + skip + pos < len(starts) else pos + 2 + skip

    return header or names, (names, columns), line_of, layout


def _as_text(values: "np.ndarray") -> "np.ndarray":
    """An object array with ``None`` for missing cells (pandas reads them as NaN)."""
    import pandas as pd

    if not values.flags.writeable:
        values = values.copy()
    missing = pd.isna(values)
    if missing.any():
        values[missing] = None
    return values


def _decimal_commas(path: Path, names: list[str], columns: list) -> None:
    """``3,5`` -> ``3.5`` in the cells that are numbers with a decimal comma (``;``-separated files only)."""
    import numpy as np
    import pandas as pd

    changed: dict[str, int] = {}
    for j, values in enumerate(columns):
        s = pd.Series(values, dtype=object, copy=False)
        has = s.str.contains(",", regex=False, na=False).to_numpy(dtype=bool)
        if not has.any():
            continue
        idx = np.flatnonzero(has)
        number = pd.Series(values[idx], dtype=object).str.fullmatch(_DECIMAL_COMMA, na=False).to_numpy(dtype=bool)
        if number.any():
            hit = idx[number]
            values[hit] = [v.replace(",", ".") for v in values[hit]]
            changed[names[j]] = int(hit.size)
    if changed:
        n = sum(changed.values())
        cols = ", ".join(f"'{c}'" for c in list(changed)[:5]) + (", ..." if len(changed) > 5 else "")
        warn_input(f"decimal commas read as points in {n} cell{'s' * (n > 1)} (column{'s' * (len(changed) > 1)} "
                   f"{cols})", file=path)


# ------------------------------------------------------------------ Parquet
def _read_parquet(path: Path):
    import pandas as pd

    raw = path.read_bytes()
    if not raw.startswith(b"PAR1"):
        raise DataError("not a Parquet file (no 'PAR1' signature)", file=path)
    df = pd.read_parquet(io.BytesIO(raw))
    names = [str(c) for c in df.columns]
    columns = [_as_text(df[c].astype("string").to_numpy(dtype=object, na_value=None)) for c in df.columns]

    def line_of(pos: int, skip: int = 0) -> int:
        return pos + 1 + skip

    return names, (names, columns), line_of, _Layout()


# ------------------------------------------------------------------ Excel
def _open_workbook(path: Path, raw: bytes):
    """A pandas ``ExcelFile`` over the workbook's bytes; one clear error if it is not a readable workbook."""
    import zipfile

    import pandas as pd

    if path.suffix.lower() == ".xls" and raw.startswith(_OLE2):
        try:
            return pd.ExcelFile(io.BytesIO(raw), engine="xlrd")
        except ImportError:
            raise DataError("an Excel 97-2003 (.xls) workbook needs the xlrd package: save it as .xlsx or CSV",
                            file=path) from None
    if not raw.startswith(_ZIP):
        raise DataError(NOT_A_WORKBOOK, file=path)
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            if "xl/workbook.xml" not in z.namelist():
                raise DataError(NOT_A_WORKBOOK, file=path)
    except zipfile.BadZipFile:
        raise DataError(NOT_A_WORKBOOK, file=path) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl's notes on styles and extensions say nothing about the data
        return pd.ExcelFile(io.BytesIO(raw), engine="openpyxl")


def _sheet_name(path: Path, book, sheet: str | int | None) -> str:
    names = list(book.sheet_names)
    if not names:
        raise DataError("the workbook has no sheet", file=path)
    if sheet is None:
        return names[0]
    if isinstance(sheet, int) and not isinstance(sheet, bool):
        if 0 <= sheet < len(names):
            return names[sheet]
        raise DataError(f"no sheet number {sheet} (0-based) in the workbook: it has {len(names)}", file=path)
    if str(sheet) in names:
        return str(sheet)
    raise DataError(f"no sheet '{sheet}' in the workbook (sheets: {', '.join(names)})", file=path)


def _cell_text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v if v != "" else None
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if v != v:
            return None
        return str(int(v)) if v.is_integer() and abs(v) < 1e16 else repr(v)
    if isinstance(v, datetime.datetime):
        if (v.hour, v.minute, v.second, v.microsecond) == (0, 0, 0, 0):
            return v.date().isoformat()
        return v.replace(tzinfo=None).isoformat(timespec="seconds")
    if isinstance(v, (datetime.date, datetime.time)):
        return v.isoformat()
    return str(v)


def _read_sheet(where, book, name: str):
    import numpy as np
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # only empty cells are missing: an answer written "None", "NA" or "null" stays as written
        df = pd.read_excel(book, sheet_name=name, header=None, dtype=object, keep_default_na=False, na_values=[""])
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise DataError("the sheet is empty", file=where)
    grid = df.to_numpy(dtype=object)
    sheet_rows = np.asarray(df.index, dtype=np.int64) + 1  # pandas keeps the sheet's leading empty rows
    texts = np.empty(grid.shape, dtype=object)
    for j in range(grid.shape[1]):
        texts[:, j] = [_cell_text(v) for v in grid[:, j]]
    filled = np.array([any(v is not None for v in row) for row in texts], dtype=bool)
    if not filled.any():
        raise DataError("the sheet is empty", file=where)
    texts, sheet_rows = texts[filled], sheet_rows[filled]
    header_cells = list(texts[0])
    body = texts[1:]
    keep = [j for j, h in enumerate(header_cells) if h is not None or any(v is not None for v in body[:, j])]
    header = [str(header_cells[j]) if header_cells[j] is not None else "" for j in keep]
    names = [h if h else f"Unnamed: {j}" for h, j in zip(header, keep)]
    columns = [np.ascontiguousarray(body[:, j]) for j in keep]
    lines = tuple(int(r) for r in sheet_rows[1:])

    def line_of(pos: int, skip: int = 0) -> int:
        return lines[skip + pos] if skip + pos < len(lines) else pos + 2 + skip

    return header, (names, columns), line_of, _Layout(lines=lines)


# ------------------------------------------------------------------ all formats
def _is_hxl_row(values) -> bool:
    given = [v for v in values if v is not None and str(v).strip()]
    return bool(given) and all(HXL_TAG.fullmatch(str(v)) for v in given)


def _finish(where, path: Path, header: list[str], table, line_of, layout: _Layout,
            date_columns: Iterable[str]) -> "tuple[pd.DataFrame, _Layout]":
    """Checks common to every format, then the DataFrame (object columns, ``None`` for missing) and how
    its rows map to lines."""
    import pandas as pd

    names, columns = table
    seen: set[str] = set()
    for h in header:
        if h in seen and h.strip():
            raise DataError(f"duplicate column name '{h}'", file=where)
        seen.add(h)
    n = len(columns[0]) if columns else 0
    tags = None
    skip = 0
    if n and _is_hxl_row([c[0] for c in columns]):
        tags = {name: " ".join(str(c[0]).split()) for name, c in zip(names, columns) if c[0] is not None}
        columns = [c[1:] for c in columns]
        n, skip = n - 1, 1
    if n == 0:
        raise DataError("the table has a header but no rows", file=where)
    layout = replace(layout, skip=skip, lines=layout.lines[skip:] if layout.lines is not None else None)
    _remember(path, layout)
    wanted = set(date_columns)
    for name, values in zip(names, columns):
        problem = _date_formats(values)
        if problem is None:
            continue
        formats, _, bad = problem
        message = _dates_message(formats, lambda pos: line_of(pos, skip), values)
        if name in wanted:
            raise DataError(message, file=where, column=name, row=line_of(bad, skip))
        warn_input(message, file=where, column=name, row=line_of(bad, skip))
    df = pd.DataFrame(dict(zip(names, columns)), dtype=object, copy=False)
    if len(df.columns) != len(names):  # two names pandas made equal (cannot happen after the check above)
        raise DataError("duplicate column names", file=where)
    if tags:
        df.attrs["hxl"] = tags
    return df, layout


# dates: (label, pattern); day/month order of the D?M?Y families is told from values above 12
_DATE_PATTERNS = [
    ("YYYY-MM-DD", re.compile(r"\d{4}-\d{1,2}(?:-\d{1,2})?")),
    ("YYYY-MM-DDThh:mm", re.compile(r"\d{4}-\d{1,2}-\d{1,2}[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?")),
    ("YYYY/MM/DD", re.compile(r"\d{4}/\d{1,2}/\d{1,2}")),
    ("/", re.compile(r"(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})")),
    (".", re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{2}|\d{4})")),
    ("-", re.compile(r"(\d{1,2})-(\d{1,2})-(\d{4})")),
    ("D Month YYYY", re.compile(r"\d{1,2}[ -][A-Za-z]{3,9}\.?[ -]\d{2,4}")),
    ("Month D, YYYY", re.compile(r"[A-Za-z]{3,9}\.? \d{1,2},? \d{4}")),
]
_DATE_START = re.compile(r"\s*(\d{1,4}[-/.]\d{1,2}|\d{1,2}[ -][A-Za-z]|[A-Za-z]{3,9}\.? \d)")


def _date_format(text: str) -> str | None:
    """The format of a date written as ``text`` (``DD/MM/YYYY``, ``MM/DD/YYYY``, ``D?/M?/YYYY`` if it
    cannot tell), or None if it is not a date."""
    text = text.strip()
    for label, pattern in _DATE_PATTERNS:
        m = pattern.fullmatch(text)
        if not m:
            continue
        if len(label) > 1:
            return label
        a, b = int(m.group(1)), int(m.group(2))
        if not (1 <= a <= 31 and 1 <= b <= 31):
            return None
        year = "YYYY" if len(m.group(3)) == 4 else "YY"
        if a > 12:
            return f"DD{label}MM{label}{year}"
        if b > 12:
            return f"MM{label}DD{label}{year}"
        return f"D?{label}M?{label}{year}"
    return None


def _date_formats(values: "np.ndarray"):
    """For a column of dates in several formats: ([(format, first position)], reference position, first
    position in another format than the first date's); None for anything else."""
    import numpy as np
    import pandas as pd

    first = next((v for v in values[:1000] if v is not None), None)
    if first is None or not isinstance(first, str) or not _DATE_START.match(first) or _date_format(first) is None:
        return None
    codes, uniques = pd.factorize(values)
    fmts = []
    for u in uniques:
        f = _date_format(str(u))
        if f is None:
            return None  # not a column of dates
        fmts.append(f)
    distinct = set(fmts)
    if len(distinct) == 1:
        return None
    # an undecidable D?/M? date fits the one definite order of its family
    merged = {}
    for f in distinct:
        if f.startswith("D?"):
            sep, year = f[2], f[6:]
            definite = [g for g in distinct if g[:2] in ("DD", "MM") and len(g) > 6 and g[2] == sep
                        and g[6:] == year]
            merged[f] = definite[0] if len(definite) == 1 else f
        else:
            merged[f] = f
    kinds = set(merged.values())
    if len(kinds) == 1:
        return None
    per_code = np.array([merged[f] for f in fmts], dtype=object)
    row_fmt = per_code[codes[codes >= 0]]
    rows = np.flatnonzero(codes >= 0)
    firsts: dict[str, int] = {}
    for fmt, pos in zip(row_fmt, rows):
        if fmt not in firsts:
            firsts[fmt] = int(pos)
            if len(firsts) == len(kinds):
                break
    order = sorted(firsts.items(), key=lambda kv: kv[1])
    ref = order[0][1]
    bad = order[1][1]
    return [(_show_format(fmt), pos) for fmt, pos in order], ref, bad


def _dates_message(formats, at, values) -> str:
    shown = ", ".join(f"{fmt} (row {at(pos)}: {values[pos]})" for fmt, pos in formats[:4])
    return f"dates written in {len(formats)} formats: {shown}; write them one way, preferably YYYY-MM-DD"


def _show_format(fmt: str) -> str:
    if not fmt.startswith("D?"):
        return fmt
    sep, year = fmt[2], fmt[6:]
    return f"DD{sep}MM{sep}{year} or MM{sep}DD{sep}{year}"


def first_data_row(path: str | Path) -> int:
    """Line number of the first data row of a table file (the header is line 1; 3 under an HXL row)."""
    path = Path(path)
    layout = _layout(path)
    if layout is not None and layout.lines:
        return layout.lines[0]
    skip = layout.skip if layout is not None else 0
    return (2 if path.suffix.lower() != ".parquet" else 1) + skip


def record_lines(path: str | Path) -> list[int] | None:
    """File line number (header = line 1) on which each data row of a table file starts.

    Blank lines are skipped (as :func:`read_table` skips them), a quoted cell may span
    several lines and an HXL hashtag row is not a data row, so data row ``i`` is not
    always on line ``i + 2``.  Excel sheets (and KoBo repeat sheets joined to their
    submissions) give the sheet's row numbers once :func:`read_table` has read them.
    Returns ``None`` for other formats or an unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        return None
    layout = _layout(path)
    if layout is not None and layout.lines is not None:
        return list(layout.lines)
    if path.suffix.lower() not in CSV_SUFFIXES:
        return None
    try:
        raw = path.read_bytes()
        if layout is not None and layout.encoding:
            text = raw.decode(layout.encoding)
            sep = layout.sep or ","
            skip = layout.skip
        else:
            text, _ = _decode(path, raw, warn=False)
            sep, skip = ",", None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lead = re.match(r"(?:[ \t]*(?:\r\n|\r|\n))*", text).end()
                sep = _sniff(path, text[lead:], _first_record(text[lead:]))
        starts = []
        hxl = False
        for k, (start, record) in enumerate(_records(text, sep)):
            if k == 1 and skip is None:
                hxl = _is_hxl_row(record)
            starts.append(start)
        skip = (1 if hxl else 0) if skip is None else skip
    except (OSError, UnicodeDecodeError, csv.Error, DataError):
        return None
    return starts[1 + skip:]  # the first record is the header


def parse_yaml(text: str):
    """YAML text to Python values, safely (only plain data), with libyaml's parser when PyYAML has it."""
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def file_checksum(path: str | Path) -> str:
    """SHA-256 of a file (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


#: The tables of a dataset that scores are computed from (and checksummed).
DATA_ROLES = ("answers", "locations", "population", "outcomes")


@dataclass
class Dataset:
    """A survey: answers plus, optionally, a location register and population counts.

    Attributes
    ----------
    answers : DataFrame
        Key-informant answers (one row per informant) or location-level values.
    locations : DataFrame or None
        One row per location: names, admin p-codes, coordinates, denominators.
    population : DataFrame or None
        People per location and round (e.g. ``idps``, ``returnees``).
    outcomes : DataFrame or None
        Observed outcomes per location and round (e.g. the share of residents who intend to
        stay), for outcome-based weights (``weights: {2: {method: outcome, outcome: ...}}``).
    files : dict
        Role (``answers``, ``locations``, ``population``, ``outcomes``) -> source path, used in messages.
    name : str
    illustrative : bool
        ``True`` for generated data; every output built from it says so.
    """

    answers: "pd.DataFrame"
    locations: "pd.DataFrame | None" = None
    population: "pd.DataFrame | None" = None
    files: dict[str, str] = field(default_factory=dict)
    name: str = ""
    illustrative: bool = False
    truth: "pd.DataFrame | None" = None
    outcomes: "pd.DataFrame | None" = None

    def file(self, role: str) -> str:
        return self.files.get(role, role)

    @property
    def version(self) -> str:
        """Short checksum of the input files (or of the tables when built in memory)."""
        paths = {r: self.files.get(r) for r in DATA_ROLES if getattr(self, r) is not None}
        if all(p and Path(p).is_file() for p in paths.values()):
            return files_version(paths)
        h = hashlib.sha256()
        for role in DATA_ROLES:
            table = getattr(self, role)
            if table is not None:
                h.update(role.encode())
                table_checksum(table, h)
        return h.hexdigest()[:12]


def table_checksum(table, h) -> None:
    """Feed a table's column names, types and values to the hash ``h``.

    Numbers are hashed as their bytes and text as one UTF-8 string per column
    (with the positions of the missing values), which is several times faster than
    hashing value by value; other columns go through pandas' value hashing.
    """
    import numpy as np
    import pandas as pd

    h.update(str(len(table)).encode())
    for name, col in table.items():
        h.update(f"\x00{name}\x00{col.dtype}\x00".encode("utf-8", "surrogatepass"))
        if col.dtype.kind in "biufcmM":
            h.update(np.ascontiguousarray(col.to_numpy()).view(np.uint8))
            continue
        if _hash_arrow_text(col, h):
            continue
        values = col.to_numpy(dtype=object)
        missing = pd.isna(values)
        present = values[~missing]
        if pd.api.types.infer_dtype(present, skipna=False) == "string":
            h.update(np.packbits(missing).tobytes())
            h.update(np.fromiter(map(len, present), dtype=np.int64, count=len(present)).view(np.uint8))
            h.update("".join(present).encode("utf-8", "surrogatepass"))
        else:
            h.update(pd.util.hash_pandas_object(col, index=False).to_numpy().view(np.uint8))


def _hash_arrow_text(col, h) -> bool:
    """Hash a text column stored by Arrow from its buffers (lengths, then bytes); False if it is not one."""
    import numpy as np

    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - pandas' text then lives in Python objects
        return False
    if getattr(col.dtype, "storage", None) != "pyarrow" and not str(col.dtype).startswith(("string[pyarrow", "large_string")):
        return False
    arr = pa.array(col.array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return False
    import pyarrow.compute as pc

    h.update(pc.binary_length(arr).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64).view(np.uint8))
    _, offsets, data = arr.buffers()
    if data is not None and len(arr):
        width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
        ends = np.frombuffer(offsets, dtype=width)
        h.update(memoryview(data)[int(ends[arr.offset]):int(ends[arr.offset + len(arr)])])
    return True


def files_version(files: dict[str, str | Path]) -> str:
    """Short checksum of a dataset's answers, locations, population and outcome files."""
    h = hashlib.sha256()
    for role in DATA_ROLES:
        path = files.get(role)
        if path:
            h.update(file_checksum(path).encode())
    return h.hexdigest()[:12]


#: What a table of ``dataset.yaml`` may say besides its file (``answers: {file: export.xlsx, sheet: data}``).
SOURCE_OPTIONS = ("file", "sheet", "format", "repeat", "xlsform", "choices", "group_separator", "select_multiple")
_KOBO_OPTIONS = ("repeat", "xlsform", "choices", "group_separator", "select_multiple")


@dataclass(frozen=True)
class TableSource:
    """Where one table of a dataset comes from and how it is read.

    Attributes
    ----------
    path : Path
        The file.
    sheet : str or int, optional
        Excel sheet (name, or 0-based position); default the first.
    format : {None, "kobo", "table"}
        ``kobo``: a KoBoToolbox / ODK export, read by :func:`stability.kobo.read_export`;
        ``table``: a plain table; ``None``: a plain table, unless the answers carry
        KoBo's metadata columns (then read as an export, with a warning).
    repeat : str, optional
        KoBo: the repeat-group sheet that holds the answers (one row per key informant),
        joined to its parent sheet.
    xlsform, choices : Path, optional
        KoBo: the XLSForm (labels -> XML names, which questions are select_multiple), or a
        choices table (``list_name``, ``name``, ``label`` columns) without the form.
    group_separator : str
        KoBo: separator of group paths in headers (``/``; ``-`` for ODK Briefcase / Central).
    select_multiple : {"auto", "expand", "collapse", "keep"}
        KoBo: what to do with select_multiple answers (see :func:`stability.kobo.read_export`).
    """

    path: Path
    sheet: str | int | None = None
    format: str | None = None
    repeat: str | None = None
    xlsform: Path | None = None
    choices: Path | None = None
    group_separator: str = "/"
    select_multiple: str = "auto"


def _manifest(path: Path) -> tuple[Path, dict]:
    import yaml

    manifest = path / "dataset.yaml"
    if not manifest.exists():
        raise DataError("no dataset.yaml in this folder (or pass the answers file itself)", file=path)
    try:
        meta = parse_yaml(manifest.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise DataError(f"invalid YAML: {getattr(exc, 'problem', exc)}", file=manifest) from None
    except UnicodeDecodeError:
        raise DataError("not UTF-8 text", file=manifest) from None
    if not isinstance(meta, dict) or "answers" not in meta:
        raise DataError("dataset.yaml needs an 'answers' entry", file=manifest)
    return manifest, meta


def _source(folder: Path, manifest: Path, role: str, entry) -> TableSource:
    """A table entry of dataset.yaml: a file name, or a mapping with ``file`` and reading options."""
    if isinstance(entry, (str, os.PathLike)):
        return TableSource(folder / entry)
    if not isinstance(entry, dict):
        raise DataError("expected a file name or a mapping with 'file' (e.g. {file: export.xlsx, sheet: data})",
                        file=manifest, column=role)
    unknown = [k for k in entry if k not in SOURCE_OPTIONS]
    if unknown:
        raise DataError(f"unknown option (expected one of: {', '.join(SOURCE_OPTIONS)})", file=manifest,
                        column=f"{role}.{unknown[0]}")
    if not isinstance(entry.get("file"), str) or not entry["file"]:
        raise DataError("a file name is needed", file=manifest, column=f"{role}.file")
    fmt = entry.get("format")
    if fmt not in (None, "kobo", "table"):
        raise DataError(f"'{fmt}' is not a format (kobo or table)", file=manifest, column=f"{role}.format")
    sheet = entry.get("sheet")
    if sheet is not None and (isinstance(sheet, bool) or not isinstance(sheet, (str, int))):
        raise DataError("a sheet name or a 0-based sheet number is needed", file=manifest, column=f"{role}.sheet")
    kobo = [k for k in _KOBO_OPTIONS if entry.get(k) is not None]
    if kobo and fmt == "table":
        raise DataError("a KoBo option: it needs format: kobo", file=manifest, column=f"{role}.{kobo[0]}")
    for key in ("repeat", "xlsform", "choices", "group_separator"):
        value = entry.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise DataError("expected a non-empty text", file=manifest, column=f"{role}.{key}")
    mode = entry.get("select_multiple", "auto")
    if mode not in ("auto", "expand", "collapse", "keep"):
        raise DataError(f"'{mode}' is not one of auto, expand, collapse, keep", file=manifest,
                        column=f"{role}.select_multiple")
    return TableSource(
        path=folder / entry["file"], sheet=sheet, format=fmt or ("kobo" if kobo else None),
        repeat=entry.get("repeat"),
        xlsform=folder / entry["xlsform"] if entry.get("xlsform") else None,
        choices=folder / entry["choices"] if entry.get("choices") else None,
        group_separator=entry.get("group_separator") or "/", select_multiple=mode)


def dataset_sources(path: str | Path) -> dict[str, TableSource]:
    """Role -> :class:`TableSource` of a dataset folder (from its ``dataset.yaml``) or of an answers file.

    A table is given as a file name (``answers: key_informants.csv``) or as a mapping with
    the file and how to read it::

        answers: {file: export.xlsx, sheet: data}
        answers: {file: kobo.xlsx, format: kobo, repeat: informants, xlsform: form.xlsx}
    """
    path = Path(path)
    if not path.is_dir():
        return {"answers": TableSource(path)}
    manifest, meta = _manifest(path)
    return {role: _source(path, manifest, role, meta[role]) for role in (*DATA_ROLES, "truth") if meta.get(role)}


def dataset_files(path: str | Path) -> dict[str, Path]:
    """Role -> file of a dataset folder (from its ``dataset.yaml``) or of an answers file."""
    return {role: source.path for role, source in dataset_sources(path).items()}


@dataclass(frozen=True)
class SpecColumns:
    """The columns an index spec reads: ``required`` in the answers, ``wanted`` anywhere, ``dates`` parsed."""

    required: tuple[str, ...] = ()
    wanted: frozenset = frozenset()
    dates: frozenset = frozenset()


def spec_columns(spec) -> SpecColumns:
    """The columns ``spec`` names (keys and indicators in the answers; descriptive columns anywhere)."""
    c = spec.columns
    keys = [c.location, c.round, c.key_informant]
    indicators = [i.id for i in spec.indicators]
    other = [c.name, *c.admin, *c.admin_names, c.longitude, c.latitude,
             *[getattr(i, "denominator", None) for i in spec.indicators]]
    impute, rank = getattr(spec, "impute", None), getattr(spec, "rank", None)
    other += [getattr(impute, "group", None), getattr(rank, "within", None)]
    for scheme in (getattr(spec, "weights", None) or {}).values():
        other += [getattr(scheme, "outcome", None), getattr(scheme, "cluster", None)]
    required = tuple(dict.fromkeys(x for x in keys + indicators if x))
    wanted = frozenset(x for x in [*required, *other] if isinstance(x, str) and x)
    return SpecColumns(required, wanted, frozenset(x for x in [c.round] if x))


def load_dataset(path: str | Path, *, locations: str | Path | None = None,
                 population: str | Path | None = None, outcomes: str | Path | None = None,
                 spec=None) -> Dataset:
    """Load a survey from a dataset folder or from table files.

    Parameters
    ----------
    path : str or Path
        A folder holding ``dataset.yaml`` (keys ``answers``, ``locations``,
        ``population``, optional ``outcomes``, ``truth``, ``name``, ``illustrative``), or the
        answers table itself.  Each table is a file name or a mapping with the file and
        how to read it (see :func:`dataset_sources`).
    locations, population, outcomes : str or Path, optional
        Location register, population table and outcome table (override the folder's).
    spec : IndexSpec, optional
        The spec the data will be scored with.  With it: a spec column written as an HXL
        hashtag (``latitude: "#geo+lat"``) is the column of any table carrying that
        hashtag in its HXL row (renamed to the hashtag); mixed date formats in the round
        column are an error (else a warning); a KoBo export keeps the metadata columns
        the spec names, expands or collapses select_multiple answers to the columns the
        spec names, and a column the spec needs that has vanished while a similar one
        appeared is an error naming both (a changed form version).

    Returns
    -------
    Dataset

    Notes
    -----
    The answers are read as a KoBoToolbox / ODK export (:mod:`stability.kobo`) when
    ``dataset.yaml`` says ``format: kobo`` (or gives a KoBo option), or, with a warning,
    when no format is given and the table has KoBo's ``_uuid`` / ``_submission_time``
    columns (ODK's ``meta/instanceID``, ``KEY``); ``format: table`` reads it as it is.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("file or folder not found", file=path)
    sources = dataset_sources(path)
    meta = _manifest(path)[1] if path.is_dir() else {}
    for role, override in (("locations", locations), ("population", population), ("outcomes", outcomes)):
        if override is not None:
            sources[role] = TableSource(Path(override))
    names = spec_columns(spec) if spec is not None else None
    tables = {role: _read_source(role, source, names) for role, source in sources.items()}
    if spec is not None:
        resolve_hashtags(tables, names.wanted, files={r: s.path for r, s in sources.items()})
    return Dataset(
        answers=tables["answers"],
        locations=tables.get("locations"),
        population=tables.get("population"),
        outcomes=tables.get("outcomes"),
        truth=tables.get("truth"),
        files={role: str(s.path) for role, s in sources.items()},
        name=str(meta.get("name", path.stem)),
        illustrative=bool(meta.get("illustrative", False)),
    )


def _read_source(role: str, source: TableSource, names: SpecColumns | None) -> "pd.DataFrame":
    dates = names.dates if names is not None else ()
    if source.format == "kobo":
        from .kobo import read_export

        return read_export(source.path, **_kobo_options(source, names))
    table = read_table(source.path, sheet=source.sheet, date_columns=dates)
    if source.format is None and role == "answers":
        from .kobo import looks_like_export, read_export

        found = looks_like_export(table.columns)
        if found:
            warn_input(f"read as a KoBoToolbox/ODK export (it has {', '.join(found)}): group paths taken off the "
                       "headers, metadata columns left out; say format: kobo (or format: table to read it as it "
                       "is) in dataset.yaml", file=source.path)
            options = _kobo_options(source, names)
            options.pop("sheet")
            return read_export(table, file=source.path, **options)
    return table


def _kobo_options(source: TableSource, names: SpecColumns | None) -> dict:
    return dict(sheet=source.sheet, repeat=source.repeat, labels=source.choices or source.xlsform,
                survey=source.xlsform, group_separator=source.group_separator,
                select_multiple=source.select_multiple,
                wanted=names.wanted if names else (), required=names.required if names else (),
                date_columns=names.dates if names else ())


# ------------------------------------------------------------------ HXL hashtags
def parse_hashtag(text: str) -> tuple[str, frozenset[str]] | None:
    """``"#geo +lat"`` -> ``("geo", {"lat"})`` (lower case); None if ``text`` is not a hashtag."""
    if not isinstance(text, str) or not HXL_TAG.fullmatch(text):
        return None
    parts = [p.strip().lower() for p in text.strip()[1:].split("+")]
    return parts[0], frozenset(parts[1:])


def resolve_hashtags(tables: "dict[str, pd.DataFrame]", names: Iterable[str], *,
                     files: dict[str, Path] | None = None) -> None:
    """Rename the columns whose HXL hashtag a spec names (``latitude: "#geo+lat"``); ``tables`` is updated.

    A spec name that is a hashtag pattern matches a column whose hashtag has the same tag
    and at least the pattern's attributes (HXL's rule: ``#geo+lat`` matches ``#geo+lat+wgs84``);
    a column tagged exactly as written wins.  In each table with one such column it is
    renamed to the spec's text; two candidates in one table are an error naming both.
    Tables without an HXL row (``df.attrs["hxl"]``) are left alone.
    """
    files = files or {}
    for name in names:
        pattern = parse_hashtag(name)
        if pattern is None:
            continue
        for role, table in tables.items():
            tags = table.attrs.get("hxl") if table is not None else None
            if not tags or name in table.columns:
                continue
            parsed = {col: parse_hashtag(tag) for col, tag in tags.items() if col in table.columns}
            exact = [col for col, p in parsed.items() if p == pattern]
            hits = exact or [col for col, p in parsed.items()
                             if p is not None and p[0] == pattern[0] and pattern[1] <= p[1]]
            if len(hits) > 1:
                raise DataError(f"the hashtag '{name}' named by the spec matches several columns: "
                                f"{', '.join(repr(h) for h in hits)}", file=files.get(role, role), column=name)
            if hits:
                renamed = table.rename(columns={hits[0]: name})
                renamed.attrs["hxl"] = {(name if c == hits[0] else c): t for c, t in tags.items()}
                tables[role] = renamed


def _hxl_attr(text: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", str(text).lower()).strip("_") or "x"


def hxl_row(columns: Iterable[str], spec, known: dict[str, str] | None = None) -> list[str]:
    """An HXL hashtag for each output column (``""`` when none fits), to write under a CSV header.

    Columns the spec names get their HXL hashtag (location id ``#loc+code``, name
    ``#loc+name``, admin p-codes ``#adm1+code``, ``#adm2+code``..., admin names
    ``#adm1+name``..., ``#geo+lon``, ``#geo+lat``, the round ``#date+round`` when the
    spec declares dated rounds else ``#meta+round``); scores get ``#indicator+num+<id>``
    (ranks ``#indicator+rank+national`` / ``+region``, ``#indicator+category``,
    ``#indicator+num+change``); people ``#affected+idps+ind``, ``#affected+returnees+ind``,
    denominators ``#population``; the toolkit's own columns ``#meta+...``.  ``known``
    (column -> hashtag, e.g. the input's ``df.attrs["hxl"]``) comes first, and a column
    named by a hashtag keeps it.

    Parameters
    ----------
    columns : iterable of str
        The output's column names, in order.
    spec : IndexSpec
    known : dict, optional

    Returns
    -------
    list of str
    """
    c = spec.columns
    tags: dict[str, str] = {}
    rounds = getattr(spec, "rounds", None) or []
    dated = bool(rounds) and all(re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", str(r.id)) for r in rounds)
    for col, tag in ((c.location, "#loc+code"), (c.name, "#loc+name"), (c.longitude, "#geo+lon"),
                     (c.latitude, "#geo+lat"), (c.round, "#date+round" if dated else "#meta+round"),
                     (c.key_informant, "#meta+informant")):
        if col:
            tags[col] = tag
    for k, col in enumerate(c.admin, start=1):
        tags[col] = f"#adm{k}+code"
    for k, col in enumerate(c.admin_names, start=1):
        tags[col] = f"#adm{k}+name"
    for ind in spec.indicators:
        tags.setdefault(ind.id, f"#indicator+num+{_hxl_attr(ind.id)}")
        if getattr(ind, "denominator", None):
            tags.setdefault(ind.denominator, "#population")
    for agg in getattr(spec, "aggregates", []):
        tags.setdefault(agg.id, f"#indicator+num+{_hxl_attr(agg.id)}")
    fixed = {"category": "#indicator+category", "rank_national": "#indicator+rank+national",
             "rank_region": "#indicator+rank+region", "change": "#indicator+num+change",
             "idps": "#affected+idps+ind", "returnees": "#affected+returnees+ind", "population": "#population",
             "n_informants": "#meta+informants+num", "n_missing": "#meta+missing+num",
             "n_imputed": "#meta+imputed+num", "n_disagreements": "#meta+disagreements+num",
             "spec_hash": "#meta+spec_hash", "data_note": "#meta+note", "location_type": "#loc+type",
             "survey_date": "#date+survey"}
    out = []
    for col in columns:
        col = str(col)
        tag = (known or {}).get(col)
        if tag is None and parse_hashtag(col):
            tag = col
        if tag is None:
            tag = tags.get(col) or fixed.get(col)
        if tag is None:
            m = re.fullmatch(r"admin(\d)_(pcode|code|name)", col)
            tag = f"#adm{m.group(1)}+{'name' if m.group(2) == 'name' else 'code'}" if m else ""
        out.append(tag)
    return out


def check_date_columns(table: "pd.DataFrame", columns: Iterable[str], *, file, line_of=None) -> None:
    """Raise :class:`DataError` naming the column and row if one of ``columns`` holds dates in several formats.

    ``line_of(pos)`` gives the file line of data row ``pos`` (default ``pos + 2``).
    """
    for name in columns:
        if name not in table.columns:
            continue
        values = table[name].to_numpy(dtype=object)
        problem = _date_formats(values)
        if problem is None:
            continue
        formats, _, bad = problem
        at = line_of or (lambda pos: pos + 2)
        raise DataError(_dates_message(formats, at, values), file=file, column=name, row=at(bad))


# --------------------------------------------------------------------- writing
def current_umask() -> int:
    """The process's file-creation mask (os.umask can only be read by setting it: it is set back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish(tmp: Path, dest: Path) -> None:
    """Give a finished temporary file the usual permissions and move it over ``dest``."""
    os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp creates files readable by their owner only
    os.replace(tmp, dest)


@contextlib.contextmanager
def atomic_path(dest: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it over ``dest`` on success.

    On any exception the temporary file is removed and ``dest`` is untouched.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp" + dest.suffix, dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        publish(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_atomic(dest: str | Path, writer: Callable[[Path], None]) -> Path:
    """Call ``writer(tmp_path)`` and move the result to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        writer(tmp)
    return Path(dest)


def write_text_atomic(dest: str | Path, text: str) -> Path:
    return write_atomic(dest, lambda p: p.write_text(text, encoding="utf-8"))


def to_csv(df: "pd.DataFrame", path: str | Path, *, hxl: "list[str] | None" = None) -> None:
    """Write a table as UTF-8 CSV with ``\n`` line ends and 10 significant digits (byte-stable).

    Spreadsheet formula injection (OWASP "CSV injection") is neutralised: a text
    cell (or header) starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
    return gets a leading ``'`` so that Excel or LibreOffice show it as text
    instead of running it as a formula (``=HYPERLINK(...)`` -> ``'=HYPERLINK(...)``).
    Only text is touched: numeric columns never are, nor text that is a plain
    number (``-3.5``, ``+2``), which a spreadsheet reads as that number anyway.
    A carriage return inside a text cell is written as a line break (``\n``), so
    that the cell is quoted and cannot end the row.

    ``hxl``: an HXL hashtag row (one tag per column, ``""`` for none) written
    under the header.
    """
    import re

    import pandas as pd

    starts = ("=", "+", "-", "@", "\t", "\r")
    number = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")

    def safe(v):
        if not isinstance(v, str):
            return v
        if v.startswith(starts) and not number.fullmatch(v):
            v = "'" + v
        if "\r" in v:  # a bare carriage return would end the row in a spreadsheet: a quoted line break
            v = v.replace("\r\n", "\n").replace("\r", "\n")
        return v

    def safe_column(col: "pd.Series") -> "pd.Series":
        if isinstance(col.dtype, pd.CategoricalDtype):
            cats = col.cat.categories
            if cats.dtype == object or pd.api.types.is_string_dtype(cats.dtype):
                new = [safe(c) for c in cats]
                if new != list(cats):
                    # two categories may now coincide ('=x' and "'=x"): write the values as text
                    return col.astype(object).map(safe, na_action="ignore")
            return col
        if col.dtype == object or pd.api.types.is_string_dtype(col.dtype):
            text = col.astype(object)
            hits = text.map(lambda v: isinstance(v, str) and (v.startswith(starts) or "\r" in v),
                            na_action="ignore")
            if hits.fillna(False).astype(bool).any():
                return text.map(safe, na_action="ignore")
        return col

    out = df
    cols = [df.iloc[:, j] for j in range(df.shape[1])]
    safe_cols = [safe_column(col) for col in cols]
    header = [safe(c) for c in df.columns]
    if any(new is not col for new, col in zip(safe_cols, cols)) or header != list(df.columns):
        out = pd.DataFrame(dict(enumerate(safe_cols)), index=df.index)
        out.columns = header
    kw = dict(index=False, lineterminator="\n", float_format="%.10g")
    if hxl is None:
        out.to_csv(path, **kw)
        return
    if len(hxl) != len(out.columns):
        raise ValueError(f"the HXL row has {len(hxl)} tags for {len(out.columns)} columns")
    with open(path, "w", encoding="utf-8", newline="") as f:
        out.iloc[:0].to_csv(f, **kw)
        pd.DataFrame([[safe(str(t)) if t else "" for t in hxl]]).to_csv(f, index=False, header=False,
                                                                       lineterminator="\n")
        out.to_csv(f, header=False, **kw)


def write_outputs(writers: dict[Path, Callable[[Path], None]]) -> list[Path]:
    """Write several outputs all-or-nothing.

    Every file is first written to a temporary file beside its destination; only
    when all have been written are they renamed into place.  If a writer fails,
    the temporaries are removed and no destination is touched.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for dest, writer in writers.items():
            dest = Path(dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp" + dest.suffix, dir=dest.parent)
            os.close(fd)
            staged.append((Path(tmp), dest))
            os.unlink(tmp)  # some writers (e.g. GeoPackage) refuse to write over an existing file
            writer(Path(tmp))
        for tmp, dest in staged:
            publish(tmp, dest)
    finally:
        for tmp, _ in staged:
            if tmp.exists():
                tmp.unlink()
    return [dest for _, dest in staged]


def write_set(folder: str | Path, files: "dict[str, Callable[[Path], None]] | Callable[[Path], Iterable[Path]]", *,
              known: Iterable[str] = (), manifest: str | None = None, meta: dict | None = None) -> list[Path]:
    """Write a command's outputs into ``folder`` as a set: all or none, and nothing left of its previous set.

    1. The files are written in a hidden staging folder inside ``folder``: ``files`` maps a file
       name to ``writer(path)``, or is a function ``write(stage)`` that writes into the staging
       folder and returns the paths it wrote.  If anything fails, the staging folder is removed
       and ``folder`` is untouched.
    2. Each file is renamed into ``folder`` (one atomic rename each); then the ``manifest``, if
       given: a JSON file with ``meta`` and ``files`` (the names written, sorted), written last.
    3. The files of the previous set that this run did not write are removed: those listed in
       the previous manifest, or (no manifest, or a set without one) those of ``folder`` named
       in ``known`` (every name the command may write).  No other file is ever touched.

    Returns
    -------
    list of Path
        The files written, in the order written, then the manifest.

    Raises
    ------
    DataError
        ``folder`` is a file.
    """
    import json
    import shutil

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"'{folder}' is a file, not an output folder")
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    before = _previous_set(folder, manifest, known)
    stage = Path(tempfile.mkdtemp(prefix=".stability-", suffix=".tmp", dir=folder))
    try:
        if callable(files):
            written = [Path(p) for p in files(stage)]
        else:
            written = []
            for name, writer in files.items():
                writer(stage / name)
                written.append(stage / name)
        names = list(dict.fromkeys(p.name for p in written))
        for name in names:
            if not (stage / name).is_file():
                raise RuntimeError(f"the output {name} was not written")
        mask = current_umask()
        if manifest and (folder / manifest).exists():
            (folder / manifest).unlink()  # while files are replaced, the folder holds no complete set
        for name in names:
            os.chmod(stage / name, 0o666 & ~mask)
            os.replace(stage / name, folder / name)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if created and not any(folder.iterdir()):
            folder.rmdir()
        raise
    shutil.rmtree(stage, ignore_errors=True)
    out = [folder / name for name in names]
    if manifest:
        record = {**(meta or {}), "files": sorted(names)}
        out.append(write_text_atomic(folder / manifest, json.dumps(record, indent=2) + "\n"))
    for name in sorted(before - set(names) - {manifest}):
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
            if not (folder / name).is_dir():
                (folder / name).unlink()
    return out


def _previous_set(folder: Path, manifest: str | None, known: Iterable[str]) -> set[str]:
    """The names of the files of the set last written to ``folder`` (see :func:`write_set`)."""
    import json

    if manifest and (folder / manifest).is_file():
        try:
            listed = json.loads((folder / manifest).read_text(encoding="utf-8")).get("files")
        except (OSError, ValueError, AttributeError):
            listed = None
        if isinstance(listed, list):
            # plain names only: a manifest never removes anything outside its folder
            return {n for n in listed if isinstance(n, str) and n == Path(n).name and not n.startswith(".")}
    return {n for n in known if (folder / n).is_file()}


# a fixed creation date keeps a workbook byte-identical between runs
_EPOCH = datetime.datetime(2000, 1, 1)


def _cell_values(col: "pd.Series") -> list:
    """A column as plain Python values for xlsxwriter (None for missing)."""
    values = col.astype(object).where(col.notna(), None).tolist()
    return [v.item() if hasattr(v, "item") else v for v in values]


def write_workbook(path: str | Path, sheets: "dict[str, pd.DataFrame]", title: str) -> None:
    """Write ``sheets`` with xlsxwriter: bold wrapped header, frozen first row, filters, widths.

    Columns are written directly (much faster than ``DataFrame.to_excel``); floats
    get a one-decimal number format; the creation date is fixed so that the same
    content gives the same bytes.
    """
    import pandas as pd
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"strings_to_urls": False, "strings_to_formulas": False,
                                           "strings_to_numbers": False, "nan_inf_to_errors": True})
    try:
        book.set_properties({"title": title, "author": "stability", "created": _EPOCH})
        bold = book.add_format({"bold": True, "text_wrap": True, "valign": "top", "bg_color": "#F2F4F7"})
        one_decimal = book.add_format({"num_format": "0.0"})
        integer = book.add_format({"num_format": "#,##0"})
        for name, df in sheets.items():
            ws = book.add_worksheet(name[:31])
            ws.freeze_panes(1, 0)
            if len(df.columns):
                ws.autofilter(0, 0, max(len(df), 1), len(df.columns) - 1)
            for j, col in enumerate(df.columns):
                s = df[col]
                fmt = (one_decimal if pd.api.types.is_float_dtype(s.dtype) else
                       integer if pd.api.types.is_integer_dtype(s.dtype) else None)
                ws.write_string(0, j, str(col), bold)
                ws.write_column(1, j, _cell_values(s), fmt)
                width = max([len(str(col)) * 0.8] + [len(str(v)) for v in s.head(200).tolist()])
                ws.set_column(j, j, min(max(width + 2, 8), 80))
    finally:
        book.close()
