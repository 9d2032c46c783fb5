"""Reading survey files and writing outputs safely.

Input tables (CSV, Excel, Parquet) are read as text so that validation can say
exactly which cell is wrong; nothing here ever writes to an input.  Outputs are
written atomically: to a temporary file in the target folder, then renamed over
the destination, so a failed run never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from .exceptions import DataError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

TABLE_SUFFIXES = (".csv", ".txt", ".xlsx", ".xls", ".parquet")


def read_table(path: str | Path) -> "pd.DataFrame":
    """Read a CSV, Excel or Parquet table with every cell as text.

    Empty cells are missing (``NA``); nothing else is interpreted, so that ids
    keep their leading zeros and a bad answer can be reported as written.

    Raises
    ------
    DataError
        If the file is missing, unreadable, empty or has duplicate column names.
    """
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise DataError("file not found", file=path)
    if path.is_dir():
        raise DataError("expected a table file, found a folder", file=path)
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise DataError("the file is empty", file=path)
    try:
        if suffix in (".csv", ".txt"):
            df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""],
                             encoding="utf-8-sig", skipinitialspace=False)
        elif suffix in (".xlsx", ".xls"):
            df = pd.read_excel(path, dtype=str, keep_default_na=False, na_values=[""])
        elif suffix == ".parquet":
            df = pd.read_parquet(path)
            df = df.astype("string").astype(object).where(df.notna(), None)
        else:
            raise DataError(f"unsupported file type '{suffix}' (use CSV, Excel or Parquet)", file=path)
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError("the file is empty", file=path) from None
    except UnicodeDecodeError:
        raise DataError("the file is not UTF-8 text", file=path) from None
    except Exception as exc:  # parser errors from pandas / openpyxl / pyarrow
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot read the table: {first}", file=path) from None
    names = [str(c) for c in df.columns]
    header = _raw_header(path, suffix) or names
    dupes = [c for c in header if header.count(c) > 1]
    if dupes:
        raise DataError(f"duplicate column name '{dupes[0]}'", file=path)
    df.columns = names
    if len(df) == 0:
        raise DataError("the table has a header but no rows", file=path)
    # Text columns as plain Python objects: stable behaviour across pandas versions.
    return df.astype(object).where(df.notna(), None)


def _raw_header(path: Path, suffix: str) -> list[str]:
    """Column names exactly as written in a CSV header (pandas renames duplicates)."""
    if suffix not in (".csv", ".txt"):
        return []
    import csv

    with open(path, newline="", encoding="utf-8-sig") as fh:
        return next(csv.reader(fh), [])


def first_data_row(path: str | Path) -> int:
    """Line number of the first data row of a table file (the header is line 1)."""
    return 2 if Path(path).suffix.lower() != ".parquet" else 1


def record_lines(path: str | Path) -> list[int] | None:
    """File line number (header = line 1) on which each data row of a CSV file starts.

    Blank lines are skipped (as :func:`read_table` skips them) and a quoted cell
    may span several lines, so data row ``i`` is not always on line ``i + 2``.
    Returns ``None`` for other formats or an unreadable file.
    """
    import csv

    path = Path(path)
    if path.suffix.lower() not in (".csv", ".txt") or not path.is_file():
        return None
    starts: list[int] = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            end = 0
            for record in reader:
                start, end = end + 1, reader.line_num
                if record and not (len(record) == 1 and not record[0].strip()):
                    starts.append(start)
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return starts[1:]  # the first record is the header


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


def dataset_files(path: str | Path) -> dict[str, Path]:
    """Role -> file of a dataset folder (from its ``dataset.yaml``) or of an answers file."""
    import yaml

    path = Path(path)
    if not path.is_dir():
        return {"answers": path}
    manifest = path / "dataset.yaml"
    if not manifest.exists():
        raise DataError("no dataset.yaml in this folder (or pass the answers file itself)", file=path)
    try:
        meta = parse_yaml(manifest.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise DataError(f"invalid YAML: {getattr(exc, 'problem', exc)}", file=manifest) from None
    if not isinstance(meta, dict) or "answers" not in meta:
        raise DataError("dataset.yaml needs an 'answers' entry", file=manifest)
    return {role: path / meta[role] for role in (*DATA_ROLES, "truth") if meta.get(role)}


def load_dataset(path: str | Path, *, locations: str | Path | None = None,
                 population: str | Path | None = None, outcomes: str | Path | None = None) -> Dataset:
    """Load a survey from a dataset folder or from table files.

    Parameters
    ----------
    path : str or Path
        A folder holding ``dataset.yaml`` (keys ``answers``, ``locations``,
        ``population``, optional ``outcomes``, ``truth``, ``name``, ``illustrative``), or the
        answers table itself.
    locations, population, outcomes : str or Path, optional
        Location register, population table and outcome table (override the folder's).

    Returns
    -------
    Dataset
    """
    path = Path(path)
    if not path.exists():
        raise DataError("file or folder not found", file=path)
    files = dataset_files(path)
    meta = parse_yaml((path / "dataset.yaml").read_text(encoding="utf-8")) if path.is_dir() else {}
    if locations is not None:
        files["locations"] = Path(locations)
    if population is not None:
        files["population"] = Path(population)
    if outcomes is not None:
        files["outcomes"] = Path(outcomes)
    tables = {role: read_table(p) for role, p in files.items()}
    return Dataset(
        answers=tables["answers"],
        locations=tables.get("locations"),
        population=tables.get("population"),
        outcomes=tables.get("outcomes"),
        truth=tables.get("truth"),
        files={role: str(p) for role, p in files.items()},
        name=str(meta.get("name", path.stem)),
        illustrative=bool(meta.get("illustrative", False)),
    )


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


def to_csv(df: "pd.DataFrame", path: str | Path) -> None:
    """Write a table as UTF-8 CSV with ``\n`` line ends and 10 significant digits (byte-stable)."""
    df.to_csv(path, index=False, lineterminator="\n", float_format="%.10g")


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
