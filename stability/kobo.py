"""KoBoToolbox and ODK exports read as answers tables.

:func:`read_export` turns an export (CSV or Excel, "XML values" or "labels", with or
without group paths in the headers) into a table like any other answers table:

- **group paths** come off the headers: ``safety/robbery`` -> ``robbery`` (ODK Briefcase
  and Central write ``safety-robbery``: ``group_separator="-"``).  A header that ends with
  a name the spec or the XLSForm knows keeps that whole name, so question names holding
  the separator survive.  Two questions that end up with one name keep their group paths
  (with a warning).
- **metadata columns** (:data:`META_COLUMNS`: ``_id``, ``_uuid``, ``_submission_time``,
  ``_index``, ``start``, ``end``, ``deviceid``, ``meta/instanceID``... and ODK Central's
  ``KEY``, ``SubmissionDate``...) are left out, except those the spec names (e.g.
  ``today`` as the survey date).  ``_uuid`` is first used to refuse duplicate
  submissions (an error naming both rows).
- **labels** map back to XML names (``Yes`` -> ``yes``) when an XLSForm or a choices
  table / label map is given (``labels=``): exactly for the select questions of the form;
  without the form, a column is translated when at least half of its distinct answers
  are labels or names of one choice list (every list that fits must agree).  A
  select_multiple answer written as labels (``Water Food``) is split on the labels.
  Headers written as question labels map back to names when the form is given.
- **select_multiple** answers come as one space-separated column (``water food``) or
  as 0/1 columns (``sources/water``, ``sources.water``).  ``select_multiple="auto"``
  gives the spec what it names: a column ``q`` from its 0/1 columns (collapse), or
  ``q/opt`` (or ``q.opt``) from the space-separated ``q`` (expand); ``"expand"`` /
  ``"collapse"`` turn every select_multiple question one way; ``"keep"`` leaves them.
- **repeat groups** (Excel exports): the answers may sit in a repeat sheet (one row per
  key informant), joined to the submission sheet by ``_parent_index`` -> ``_index``
  (following ``_parent_table_name`` through nested repeats), or ``_submission__uuid`` ->
  ``_uuid``.  Every row of the answers is a repeat row carrying its submission's
  columns; rows are numbered as in the repeat sheet.
- **changed form version**: a column the spec needs that is missing while an unknown
  column looks like it (``difflib``) is one error naming both.

The result keeps :func:`stability.io.read_table`'s contract (text cells, ``None`` for
missing, ``object`` columns) and the HXL hashtags of the export (``df.attrs["hxl"]``).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from .exceptions import DataError
from .io import _Layout, _read_book, _remember, check_date_columns, read_table, record_lines, warn_input

#: Columns of KoBoToolbox and ODK exports that are about the submission, not the answers.
META_COLUMNS = frozenset({
    "_id", "_uuid", "_submission_time", "_validation_status", "_index", "_parent_index", "_parent_table_name",
    "_tags", "_notes", "_status", "_submitted_by", "__version__", "_version_", "_xform_id_string",
    "_attachments", "_geolocation", "_media_count", "_total_media", "_media_all_received",
    "deviceid", "start", "end", "today", "username", "simserial", "subscriberid", "phonenumber", "audit",
    "audit_URL", "instanceID", "instanceName", "deprecatedID", "rootUuid",
    "meta/instanceID", "meta/instanceName", "meta/deprecatedID", "meta/rootUuid", "meta/audit", "formhub/uuid",
    # ODK Central / Briefcase
    "KEY", "PARENT_KEY", "SubmissionDate", "SubmitterID", "SubmitterName", "AttachmentsPresent",
    "AttachmentsExpected", "Status", "ReviewState", "DeviceID", "Edits", "FormVersion",
})
_META_PATTERN = re.compile(r"_submission_.*|_+version_.*|(?:meta|formhub)[/-].*")
#: Columns that make a table an export (any one of them).
MARKERS = ("_uuid", "_submission_time", "_submission__uuid", "meta/instanceID", "meta-instanceID")
_ID_COLUMNS = ("_uuid", "meta/instanceID", "meta-instanceID", "KEY")
_VERSION_COLUMNS = ("__version__", "_version_", "_submission___version__", "FormVersion")
_TRUE = frozenset({"1", "1.0", "true"})
_FALSE = frozenset({"0", "0.0", "false"})


def looks_like_export(columns: Iterable[str]) -> list[str]:
    """The KoBo / ODK metadata columns among ``columns`` that mark an export (empty list: not one)."""
    columns = [str(c) for c in columns]
    found = [m for m in MARKERS if m in columns]
    if not found and "KEY" in columns and "SubmissionDate" in columns:
        found = ["KEY", "SubmissionDate"]
    return found


def is_metadata(name: str) -> bool:
    """True for a KoBo / ODK metadata column (:data:`META_COLUMNS`, ``_submission_*``, ``_version_*``, ``meta/*``)."""
    return name in META_COLUMNS or bool(_META_PATTERN.fullmatch(name))


# ------------------------------------------------------------------ the form
@dataclass
class Form:
    """What an XLSForm (or a choices table, or a label map) says about an export's columns.

    Attributes
    ----------
    questions : dict
        Question name -> (kind, list name): kind ``select_one``, ``select_multiple`` or the
        XLSForm type; list name None for other questions.
    question_labels : dict
        Question label (any language) -> name, to read headers written as labels.
    lists : dict
        List name -> {label (any language) or name -> name}.
    options : dict
        List name -> option names, in the form's order.
    """

    questions: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    question_labels: dict[str, str] = field(default_factory=dict)
    lists: dict[str, dict[str, str]] = field(default_factory=dict)
    options: dict[str, list[str]] = field(default_factory=dict)
    per_column: dict[str, dict[str, str]] = field(default_factory=dict)

    def kind(self, name: str) -> str | None:
        return self.questions.get(name, (None, None))[0]

    def list_of(self, name: str) -> str | None:
        return self.questions.get(name, (None, None))[1]


def _label_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if str(c).strip().lower().startswith("label")]


def _text(v) -> str | None:
    if v is None or (isinstance(v, float) and v != v):
        return None
    v = str(v).strip()
    return v or None


def read_form(labels=None, survey=None) -> Form | None:
    """A :class:`Form` from an XLSForm and/or a choices table or label map.

    Parameters
    ----------
    labels : DataFrame, mapping, str or Path, optional
        A choices table (``list_name``, ``name``, ``label`` or ``label::<language>``
        columns), an XLSForm (its ``choices`` sheet), a label map ``{label: name}`` for
        every column, or ``{column: {label: name}}`` per column.
    survey : DataFrame, str or Path, optional
        The XLSForm's survey sheet (``type``, ``name``, ``label...``) or the XLSForm
        itself; with it, select questions are known exactly.
    """
    if labels is None and survey is None:
        return None
    form = Form()
    choices = survey_table = None
    if isinstance(labels, Mapping):
        if labels and all(isinstance(v, Mapping) for v in labels.values()):
            form.per_column = {str(k): {str(a): str(b) for a, b in v.items()} for k, v in labels.items()}
        else:
            mapping = {str(a): str(b) for a, b in labels.items()}
            form.lists[""] = {**{b: b for b in mapping.values()}, **mapping}
            form.options[""] = list(dict.fromkeys(mapping.values()))
    elif labels is not None:
        choices, survey_table = _xlsform_sheets(labels)
    if isinstance(survey, pd.DataFrame):
        survey_table = survey
    elif survey is not None and not (isinstance(labels, (str, Path)) and Path(labels) == Path(survey)):
        if Path(survey).suffix.lower() in (".xlsx", ".xlsm", ".xls"):
            more_choices, survey_table = _xlsform_sheets(survey)
            choices = choices if choices is not None else more_choices
        else:
            survey_table = read_table(survey)
    if choices is not None:
        _read_choices(form, choices, labels)
    if survey_table is not None:
        _read_survey(form, survey_table)
    return form


def _xlsform_sheets(path) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """(choices, survey) of an XLSForm, or (table, None) for a choices table file."""
    if isinstance(path, pd.DataFrame):
        return path, None
    path = Path(path)
    if path.suffix.lower() not in (".xlsx", ".xlsm", ".xls"):
        return read_table(path), None
    from .io import sheet_names

    names = sheet_names(path)
    lower = {n.lower(): n for n in names}
    if "survey" in lower:  # an XLSForm: read as the spec converter reads it (rows checked, groups resolved)
        from .xlsform import read_xlsform

        survey, choices, _ = read_xlsform(path)
        return (choices if "choices" in lower else None), survey
    if "choices" in lower:
        return _read_book(path, [lower["choices"]])[1][lower["choices"]][0], None
    return read_table(path, sheet=0), None


def _read_choices(form: Form, choices: pd.DataFrame, where) -> None:
    cols = {str(c).strip().lower().replace(" ", "_"): c for c in choices.columns}
    list_col, name_col = cols.get("list_name"), cols.get("name")
    if list_col is None or name_col is None:
        raise DataError("a choices table needs 'list_name' and 'name' columns (and 'label' ones)",
                        file=where if not isinstance(where, pd.DataFrame) else "choices")
    label_cols = _label_columns(choices)
    for row in choices.itertuples(index=False):
        values = dict(zip(choices.columns, row))
        lst, name = _text(values[list_col]), _text(values[name_col])
        if lst is None or name is None:
            continue
        mapping = form.lists.setdefault(lst, {})
        form.options.setdefault(lst, []).append(name)
        mapping.setdefault(name, name)
        for lc in label_cols:
            label = _text(values[lc])
            if label is None or label == name:
                continue
            if mapping.get(label, name) != name and label not in form.options[lst]:
                raise DataError(f"label '{label}' stands for two choices of list '{lst}' "
                                f"('{mapping[label]}' and '{name}')",
                                file=where if not isinstance(where, pd.DataFrame) else "choices", column=str(lc))
            mapping[label] = name


def _read_survey(form: Form, survey: pd.DataFrame) -> None:
    cols = {str(c).strip().lower(): c for c in survey.columns}
    type_col, name_col = cols.get("type"), cols.get("name")
    if type_col is None or name_col is None:
        raise DataError("an XLSForm survey sheet needs 'type' and 'name' columns", file="survey")
    label_cols = _label_columns(survey)
    for row in survey.itertuples(index=False):
        values = dict(zip(survey.columns, row))
        kind, name = _text(values[type_col]), _text(values[name_col])
        if kind is None or name is None:
            continue
        parts = kind.split()
        base = parts[0].lower()
        if base in ("select_one", "select_multiple") and len(parts) > 1:
            form.questions[name] = (base, parts[1])
        elif base.startswith(("select_one", "select_multiple")):  # ..._from_file, or_other
            form.questions[name] = (base.split("_from")[0], parts[1] if len(parts) > 1 else None)
        else:
            form.questions[name] = (base, None)
        for lc in label_cols:
            label = _text(values[lc])
            if label is not None:
                form.question_labels.setdefault(label, name)


# ------------------------------------------------------------------ reading an export
def read_export(source, *, labels=None, survey=None, wanted: Iterable[str] = (), required: Iterable[str] = (),
                group_separator: str = "/", select_multiple: str = "auto", sheet: str | int | None = None,
                repeat: str | None = None, keep: Iterable[str] = (), date_columns: Iterable[str] = (),
                file=None) -> pd.DataFrame:
    """Read a KoBoToolbox / ODK export as an answers table (see the module's description).

    Parameters
    ----------
    source : str, Path or DataFrame
        The export file (CSV or Excel) or a table already read (with :func:`stability.io.read_table`).
    labels : DataFrame, mapping, str or Path, optional
        Choices table, XLSForm or label map, to turn labels back into XML names (see :func:`read_form`).
    survey : DataFrame, str or Path, optional
        The XLSForm's survey sheet (or the XLSForm): which questions are select_one /
        select_multiple and their lists, question labels for headers.
    wanted : iterable of str
        Every column the spec names (kept even if they look like metadata; select_multiple
        answers expanded or collapsed to them).
    required : iterable of str
        Columns that must be in the answers (keys, indicators): one that is missing while a
        similar unknown column exists is an error naming both.
    group_separator : str
        Separator of group paths in headers (``/``; ``-`` for ODK Briefcase / Central).
    select_multiple : {"auto", "expand", "collapse", "keep"}
    sheet : str or int, optional
        Excel: the submissions sheet (default the first).
    repeat : str, optional
        Excel: the repeat-group sheet holding the answers, joined to its parent sheet.
    keep : iterable of str
        Metadata columns to keep (e.g. ``["_uuid"]``).
    date_columns : iterable of str
        Columns (after renaming) whose dates must be written one way.
    file : str or Path, optional
        The export's file, for messages, when ``source`` is a DataFrame.

    Returns
    -------
    DataFrame
        One row per submission (or per repeat row), text cells, ``None`` for missing.

    Raises
    ------
    DataError
        Duplicate submissions, a repeat row without its submission, a select_multiple
        0/1 column holding something else, a renamed question, an unreadable file.
    """
    if select_multiple not in ("auto", "expand", "collapse", "keep"):
        raise ValueError(f"select_multiple must be auto, expand, collapse or keep, not {select_multiple!r}")
    wanted = frozenset(wanted) | frozenset(required)
    keep = frozenset(keep)
    form = read_form(labels, survey)
    if isinstance(source, pd.DataFrame):
        where = str(file) if file is not None else "export"
        frame = _object_frame(source)
        line_of = _lines_from_file(where, len(frame))
        _check_duplicates(frame, where, line_of)
        path, lines = None, None
    else:
        path = Path(source)
        where = str(path)
        if repeat is not None:
            frame, lines, where = _joined(path, sheet, repeat)
            line_of = (lambda pos: lines[pos]) if lines is not None else (lambda pos: pos + 2)
        else:
            frame = read_table(path, sheet=sheet)
            if sheet is not None:
                where = f"{path}, sheet '{sheet}'"
            line_of = _lines_from_file(path, len(frame))
            _check_duplicates(frame, where, line_of)
    tags = dict(frame.attrs.get("hxl") or {})
    versions = _versions(frame)
    names, splits = _names(list(frame.columns), group_separator, wanted | keep, form, where)
    drop = [raw for raw, name in names.items() if is_metadata(name) or is_metadata(raw)]
    drop = [raw for raw in drop if names[raw] not in wanted | keep and raw not in wanted | keep]
    out = frame.drop(columns=drop).rename(columns={raw: names[raw] for raw in frame.columns if raw not in drop})
    raw_of = {names[raw]: raw for raw in frame.columns if raw not in drop}
    splits = {names[raw]: qo for raw, qo in splits.items() if raw not in drop}
    if form is not None:
        out = _translate(out, form, splits, where)
    if select_multiple != "keep":
        out = _select_multiple(out, select_multiple, wanted, form, splits, raw_of, where, line_of)
    _check_renames(out, required, wanted, versions, where, line_of)
    check_date_columns(out, date_columns, file=where, line_of=line_of)
    if tags:
        out.attrs["hxl"] = {names[raw]: tag for raw, tag in tags.items() if raw in names and names[raw] in out}
    else:
        out.attrs.pop("hxl", None)
    if path is not None and repeat is not None and lines is not None:
        _remember(path, _Layout(lines=tuple(lines)))  # validation numbers rows as in the repeat sheet
    return out


def _object_frame(table: pd.DataFrame) -> pd.DataFrame:
    if all(dt == object for dt in table.dtypes):
        return table.copy(deep=False)
    return table.astype(object).where(table.notna(), None)


def _lines_from_file(path, n: int):
    """Line of data row ``pos`` of a file read by :func:`read_table` (found only when a message needs it)."""
    found: list = []

    def line_of(pos: int) -> int:
        if not found:
            lines = record_lines(path) if Path(str(path)).is_file() else None
            found.append(lines if lines is not None and len(lines) == n else None)
        lines = found[0]
        return lines[pos] if lines is not None else pos + 2

    return line_of


def _check_duplicates(frame: pd.DataFrame, where, line_of) -> None:
    """Two submissions with the same ``_uuid`` (or ``meta/instanceID``, ``KEY``): an error naming both rows."""
    col = next((c for c in _ID_COLUMNS if c in frame.columns), None)
    if col is None:
        return
    ids = frame[col]
    dup = ids.duplicated(keep="first").to_numpy() & ids.notna().to_numpy()
    if dup.any():
        pos = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero((ids == ids.iloc[pos]).to_numpy())[0])
        raise DataError(f"duplicate submission: same {col} '{ids.iloc[pos]}' as row {line_of(first)} "
                        "(exported twice?)", file=where, column=col, row=line_of(pos))


def _versions(frame: pd.DataFrame) -> list[str]:
    for col in _VERSION_COLUMNS:
        if col in frame.columns:
            return [str(v) for v in pd.unique(frame[col].dropna())]
    return []


def _segments(header: str, sep: str) -> str:
    return header.rsplit(sep, 1)[-1] if sep in header else header


def _names(headers: list[str], sep: str, known: frozenset, form: Form | None, where):
    """Raw header -> column name, and the select_multiple 0/1 columns: name -> (question, option)."""
    present = set(headers)
    form_names = set(form.questions) if form is not None else set()
    names_known = sorted(known | form_names, key=len, reverse=True)
    plain = {_segments(h, sep) for h in headers}
    header_labels = form.question_labels if form is not None else {}
    cache: dict[str, str] = {}
    splits: dict[str, tuple[str, str]] = {}

    def split_of(h: str):
        for s in ("/", "."):
            if s not in h:
                continue
            parent, opt = h.rsplit(s, 1)
            if not opt or not parent:
                continue
            if parent in present:
                return parent, opt
            q = name_of(parent)
            if form is not None and form.kind(q) == "select_multiple" and opt in form.options.get(form.list_of(q), []):
                return parent, opt
            if q in known and q not in plain and q not in present:
                return parent, opt
        return None

    def name_of(h: str) -> str:
        if h in cache:
            return cache[h]
        if h in known:
            name = h
        elif h in header_labels:
            name = header_labels[h]
        else:
            sp = split_of(h)
            if sp is not None:
                name = f"{name_of(sp[0])}/{sp[1]}"
                splits[h] = (name_of(sp[0]), sp[1])
            else:
                name = next((k for k in names_known if h.endswith(sep + k) or h.endswith("/" + k)), None) \
                    or _segments(h, sep)
        cache[h] = name
        return name

    names = {h: name_of(h) for h in headers}
    for h in headers:  # a 0/1 column the spec names as written
        if h not in splits and names[h] == h:
            sp = split_of(h)
            if sp is not None:
                splits[h] = (name_of(sp[0]), sp[1])
    by_name: dict[str, list[str]] = {}
    for h, n in names.items():
        if not (is_metadata(n) and n not in known):
            by_name.setdefault(n, []).append(h)
    clashes = {n: hs for n, hs in by_name.items() if len(hs) > 1}
    for n, hs in clashes.items():
        for h in hs:
            if h != n:
                names[h] = h
        warn_input(f"columns {', '.join(repr(h) for h in hs)} are all question '{n}' once group paths are taken "
                   "off: kept with their group paths", file=where)
    return names, splits


def _translate(frame: pd.DataFrame, form: Form, splits: dict, where) -> pd.DataFrame:
    """Labels -> XML names, column by column (see the module's description)."""
    columns = {}
    for col in frame.columns:
        if col in splits or is_metadata(col):
            continue
        values = frame[col].to_numpy(dtype=object)
        codes, uniques = pd.factorize(values)
        if len(uniques) == 0:
            continue
        uniques = [str(u) for u in uniques]
        kind, lst = form.questions.get(col, (None, None))
        if col in form.per_column:
            mapping = {**{v: v for v in form.per_column[col].values()}, **form.per_column[col]}
            new = [_label_to_name(u, mapping, None) for u in uniques]
        elif kind in ("select_one", "select_multiple") and lst in form.lists:
            new = [_label_to_name(u, form.lists[lst], kind == "select_multiple") for u in uniques]
        elif form.questions and kind is not None and not (kind.startswith("select") and lst not in form.lists):
            continue  # the form says it is not a select question
        else:
            new = _guess(col, uniques, form, where)
            if new is None:
                continue
        if new == uniques:
            continue
        out = np.array(new, dtype=object)[codes]
        out[codes < 0] = None
        columns[col] = out
    if not columns:
        return frame
    frame = frame.copy(deep=False)
    for col, values in columns.items():
        frame[col] = pd.Series(values, index=frame.index, dtype=object)
    return frame


def _guess(col: str, uniques: list[str], form: Form, where) -> list[str] | None:
    """Translation of a column by the one choice list most of its answers belong to (None: no list fits)."""
    results = {}
    for lst, mapping in form.lists.items():
        new = [_label_to_name(u, mapping, None) for u in uniques]
        known = sum(u in mapping or n != u for u, n in zip(uniques, new))
        if known * 2 >= len(uniques) and any(n != u for u, n in zip(uniques, new)):
            results[lst] = new
    if not results:
        return None
    distinct = {tuple(v) for v in results.values()}
    if len(distinct) > 1:
        warn_input(f"its answers are labels of several choice lists ({', '.join(sorted(results))}) that give "
                   "different names: left as written (give the XLSForm to tell them apart)", file=where, column=col)
        return None
    return next(iter(results.values()))


def _label_to_name(value: str, mapping: dict[str, str], multi: bool | None) -> str:
    """A label (or name) -> its name; a select_multiple answer -> its names, space-separated."""
    v = value.strip()
    if v in mapping:
        return mapping[v]
    if multi is False:
        return value
    tokens = v.split()
    if tokens and all(t in mapping for t in tokens):
        return " ".join(mapping[t] for t in tokens)
    labels = sorted(mapping, key=len, reverse=True)
    out, i = [], 0
    while i < len(v):
        for label in labels:
            if v.startswith(label, i) and (i + len(label) == len(v) or v[i + len(label)] == " "):
                out.append(mapping[label])
                i += len(label) + 1
                break
        else:
            return value
    return " ".join(out) if out else value


def _select_multiple(frame: pd.DataFrame, mode: str, wanted: frozenset, form: Form | None, splits: dict,
                     raw_of: dict, where, line_of) -> pd.DataFrame:
    groups: dict[str, list[tuple[str, str]]] = {}
    for col, (q, opt) in splits.items():
        if col in frame.columns:
            groups.setdefault(q, []).append((opt, col))
    new: dict[str, np.ndarray] = {}
    drop: list[str] = []
    present = set(frame.columns)
    if mode == "auto":
        for w in sorted(wanted - present):
            if w in groups:
                new[w] = _collapse(frame, groups[w], raw_of, where, line_of)
                continue
            cut = max(w.rfind("/"), w.rfind("."))
            if cut <= 0:
                continue
            q, opt = w[:cut], w[cut + 1:]
            other = dict(groups.get(q, []))
            if opt in other:
                new[w] = frame[other[opt]].to_numpy(dtype=object)
            elif q in present:
                values = frame[q].to_numpy(dtype=object)
                if _is_select_multiple(q, values, opt, form):
                    new[w] = _expand(values, opt)
    elif mode == "collapse":
        for q, opts in groups.items():
            if q not in present:
                new[q] = _collapse(frame, opts, raw_of, where, line_of)
            drop += [col for _, col in opts if col not in wanted]
    else:  # expand
        multi = [q for q in frame.columns if q in groups or (form is not None and form.kind(q) == "select_multiple")]
        for q in multi:
            values = frame[q].to_numpy(dtype=object)
            options = form.options.get(form.list_of(q), []) if form is not None and form.list_of(q) else []
            seen = [t for v in pd.unique(values[pd.notna(values)]) for t in str(v).split()]
            for opt in dict.fromkeys([*options, *seen]):
                if f"{q}/{opt}" not in present:
                    new[f"{q}/{opt}"] = _expand(values, opt)
            if q not in wanted:
                drop.append(q)
    if not new and not drop:
        return frame
    frame = frame.drop(columns=drop) if drop else frame.copy(deep=False)
    for col, values in new.items():
        frame[col] = pd.Series(values, index=frame.index, dtype=object)
    return frame


def _is_select_multiple(q: str, values: np.ndarray, opt: str, form: Form | None) -> bool:
    """Whether ``q`` may be expanded into ``q/opt``: the form says so, or (a question the form does not know)
    ``opt`` is one of its answers' words, or every word of its answers is an option of a choice list with ``opt``."""
    kind = form.kind(q) if form is not None else None
    if kind is not None:
        return kind == "select_multiple"
    words = {t for v in pd.unique(values[pd.notna(values)]) for t in str(v).split()}
    if opt in words:
        return True
    return form is not None and any(opt in options and words <= set(options) for options in form.options.values())


def _collapse(frame: pd.DataFrame, options: list[tuple[str, str]], raw_of: dict, where, line_of) -> np.ndarray:
    """0/1 columns of one question -> its space-separated answer (None where every cell is empty or 0)."""
    n = len(frame)
    chosen = [[] for _ in range(n)]
    for opt, col in options:
        values = frame[col].to_numpy(dtype=object)
        for pos, v in enumerate(values):
            if v is None:
                continue
            t = str(v).strip().lower()
            if t in _TRUE:
                chosen[pos].append(opt)
            elif t not in _FALSE:
                raise DataError(f"'{v}' in a select_multiple option column: expected 1 (chosen) or 0",
                                file=where, column=raw_of.get(col, col), row=line_of(pos))
    return np.array([" ".join(c) if c else None for c in chosen], dtype=object)


def _expand(values: np.ndarray, opt: str) -> np.ndarray:
    """A space-separated select_multiple answer -> ``"1"``/``"0"`` for one option (None where unanswered)."""
    return np.array([None if v is None else ("1" if opt in str(v).split() else "0") for v in values], dtype=object)


def _check_renames(frame: pd.DataFrame, required: Iterable[str], wanted: frozenset, versions: list[str],
                   where, line_of=None) -> None:
    """A changed form version: a column the spec needs is missing while an unknown one looks like it, or (a
    revision that renamed a question, the export holding both columns) a look-alike unknown column is answered
    in the rows where the spec's column is blank -- those answers would otherwise be lost without a word."""
    candidates = [c for c in frame.columns if c not in wanted and not is_metadata(c)]
    mixed = (f" (the export mixes {len(versions)} form versions: {', '.join(versions[:4])})"
             if len(versions) > 1 else "")
    for name in required:
        match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        if not match:
            continue
        if name not in frame.columns:
            raise DataError(f"column named by the spec is not in the export, but '{match[0]}' is: renamed in a "
                            f"new form version? Rename the column back or update the spec{mixed}",
                            file=where, column=name)
        mine, theirs = _answered(frame[name]), _answered(frame[match[0]])
        instead = theirs & ~mine
        if instead.sum() and (theirs & mine).sum() <= 0.05 * theirs.sum():
            first = int(np.flatnonzero(instead)[0])
            row = line_of(first) if line_of is not None else first + 2
            n = int(instead.sum())
            raise DataError(f"blank in {n:,} row{'s' * (n != 1)} where '{match[0]}' is answered: the question "
                            f"renamed in a new form version? Merge the two columns into this one (or update the "
                            f"spec) so that no answer is lost{mixed}", file=where, column=name, row=row)


def _answered(values: pd.Series) -> np.ndarray:
    """Cells with an answer (not missing, not blank text)."""
    v = values.to_numpy(dtype=object)
    return np.array([x is not None and not (isinstance(x, float) and x != x) and str(x).strip() != "" for x in v])


# ------------------------------------------------------------------ repeat groups
def _joined(path: Path, sheet, repeat: str):
    """The repeat sheet joined to its parent sheet(s): (table, sheet row of each row, where for messages)."""
    names, book = _read_book(path, [sheet, repeat])
    main_name = names[0] if sheet is None else (names[sheet] if isinstance(sheet, int) else str(sheet))
    main, _ = book[sheet]
    child, lines = book[repeat]
    child_where = f"{path}, sheet '{repeat}'"
    main_lines = book[sheet][1]
    _check_duplicates(main, f"{path}, sheet '{main_name}'",
                      (lambda pos: main_lines[pos]) if main_lines is not None else (lambda pos: pos + 2))
    frame = _attach(path, names, main_name, main, repeat, child, lines, depth=0)
    return frame, list(lines) if lines is not None else None, child_where


def _attach(path: Path, names: list[str], main_name: str, main: pd.DataFrame, name: str, child: pd.DataFrame,
            lines, depth: int) -> pd.DataFrame:
    where = f"{path}, sheet '{name}'"
    parent_name = main_name
    if "_parent_table_name" in child.columns:
        parents = [p for p in pd.unique(child["_parent_table_name"].dropna()) if p in names]
        if len(parents) == 1 and parents[0] != main_name and depth < 5:
            parent_name = parents[0]
    if parent_name == main_name:
        parent = main
        parent_lines = None
    else:
        sheets = _read_book(path, [parent_name])[1]
        parent, parent_lines = sheets[parent_name]
        parent = _attach(path, names, main_name, main, parent_name, parent, parent_lines, depth + 1)
    at = (lambda pos: lines[pos]) if lines is not None else (lambda pos: pos + 2)
    if "_parent_index" in child.columns and "_index" in parent.columns:
        ck, pk = "_parent_index", "_index"
    elif "_submission__uuid" in child.columns and "_uuid" in parent.columns:
        ck, pk = "_submission__uuid", "_uuid"
    else:
        raise DataError(f"cannot join this repeat sheet to sheet '{parent_name}': it needs _parent_index "
                        "(and the parent _index) or _submission__uuid (and the parent _uuid)", file=where)
    pkeys = parent[pk].to_numpy(dtype=object)
    pos_of: dict = {}
    for i, k in enumerate(pkeys):
        if k is not None:
            pos_of.setdefault(k, i)
    idx = np.array([pos_of.get(k, -1) for k in child[ck].to_numpy(dtype=object)], dtype=np.int64)
    if (idx < 0).any():
        bad = int(np.flatnonzero(idx < 0)[0])
        raise DataError(f"no row of sheet '{parent_name}' has {pk} '{child[ck].iloc[bad]}': a repeat row without its "
                        "submission", file=where, column=ck, row=at(bad))
    clash = [c for c in parent.columns if c in child.columns and not is_metadata(c)]
    if clash:
        raise DataError(f"column '{clash[0]}' is in this repeat sheet and in sheet '{parent_name}': rename one",
                        file=where, column=clash[0])
    orphans = np.setdiff1d(np.arange(len(parent)), idx)
    if orphans.size:
        first = int(orphans[0])
        row = parent_lines[first] if parent_lines is not None else first + 2
        warn_input(f"{orphans.size} row{'s' * (orphans.size > 1)} of sheet '{parent_name}' (first: row {row}) "
                   f"have no row in the repeat sheet '{name}': they give no answers", file=path)
    taken = parent[[c for c in parent.columns if c not in child.columns]].take(idx).reset_index(drop=True)
    joined = pd.concat([taken, child.reset_index(drop=True)], axis=1)
    tags = {**(parent.attrs.get("hxl") or {}), **(child.attrs.get("hxl") or {})}
    joined.attrs = {"hxl": tags} if tags else {}
    return joined
