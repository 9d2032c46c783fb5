"""From an XLSForm (KoBoToolbox / ODK) and a short mapping file to an index spec.

A KoBoToolbox survey is designed as an XLSForm: a workbook whose ``survey`` sheet lists the
questions (``type``, ``name``, ``label`` or ``label::French (fr)``, ...), grouped with
``begin_group`` / ``end_group``, whose ``choices`` sheet lists the answers of each choice list
(``list_name``, ``name`` = the XML value exported, labels) and whose ``settings`` sheet names the
form.  :func:`read_xlsform` reads it with openpyxl (pyxform is not needed).

Everything the spec needs that the form already says (which questions exist, their type, their
labels in each language, the choices of each list) is taken from the form.  What only the analyst
knows goes into a **mapping file** (YAML)::

    # every section of a spec except 'indicators' (columns, levels, aggregates, normalise,
    # categories, ...), exactly as in a spec
    name: Mali stability index
    columns: {location: location_id, round: round, key_informant: ki_id, ...}
    aggregates: [...]
    levels: [...]
    answers:                 # answer types for numeric questions (optional)
      count: {range: [0, null], integer: true}

    choices:                 # per choice list: its numeric scale
      oui_non: {non: 0, oui: 1, nsp: null}
      proportion: [aucun, quelques, la_plupart, tous]     # codes 0, 1, 2, 3 in this order
      frequence: order                                     # the form's order: 0, 1, 2, ...

    questions:               # per question that is an indicator (name or group path)
      armed_groups_present: {pillar: safety, direction: -1}
      security_incidents_3m: {pillar: safety, direction: -1, answers: count, goalposts: [0, 10]}
      water_points: {pillar: livelihoods, answers: count, denominator: population,
                     denominator_scale: 1000, goalposts: [0, 3]}

Rules (see :func:`convert_xlsform`):

* **Indicators** are the questions named under ``questions``, in the form's order.  Each gets
  ``id`` = the question's name (the last part of its group path; ``indicator_ids: path`` keeps the
  whole path; a question's ``id:`` overrides), ``label`` = its label in the chosen language (a
  question's ``label:`` overrides), ``parent`` = its ``pillar`` (an aggregate of level 2), and
  every other key of the question (``direction``, ``weight``, ``goalposts``, ``range``,
  ``target``, ``denominator``, ``denominator_scale``, ``combine``, ``treat``, ``normalise``,
  ``say``) as written.
* **select_one** questions take the answer type named after their choice list, coded by the
  list's scale under ``choices``: a mapping ``{name: number or null}``, a list of names (codes
  0, 1, 2, ... in that order) or ``order`` (the form's order of the choices: 0, 1, 2, ...);
  ``names`` uses the choice names themselves as numbers.  Choices that mean "don't know" or
  "refused" (:data:`MISSING_CHOICES`, plus the names under the mapping's ``missing:``) are
  missing (``null``) unless the scale codes them.  A question's ``codes:`` overrides its list's
  scale (the answer type is then named after the question).  Every choice list used needs a scale:
  the order of a form's choices says nothing about which answer is more stable.
* **select_multiple** questions are indicators through one of their choices: the key
  ``question/choice`` (KoBo's 0/1 column of that choice), or ``choice: name`` in the question's
  entry; the answer type ``selected`` is 0/1.
* **integer**, **decimal**, **range** and **calculate** questions take the answer type named by
  their ``answers:`` (an entry of the mapping's ``answers``), else one made from the form: whole
  numbers for ``integer``, the bounds of a simple ``constraint`` (``. >= 0``, ``. >= 0 and . <=
  100``) or of a ``range`` question's ``parameters`` (``start=0 end=10``).
* ``name`` and ``version`` default to the form's settings (``form_title``, ``version``).

The result is validated with :func:`stability.spec.spec_from_dict`, so a mistake gets the spec's
own one-line message, located in the mapping file (``mapping.yaml, column
'questions.robbery.direction': Input should be 1 or -1``).  A question of the mapping that the
form does not have is an error naming it and the closest name of the form.

Examples
--------
>>> from stability.xlsform import spec_from_xlsform            # doctest: +SKIP
>>> spec = spec_from_xlsform("form.xlsx", "mapping.yaml", language="en")   # doctest: +SKIP
>>> spec.indicator_ids[:2]                                      # doctest: +SKIP
['armed_groups_present', 'security_incidents_3m']
"""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .exceptions import SpecError
from .spec import IndexSpec

if TYPE_CHECKING:  # pragma: no cover - typing only
    import pandas as pd

    from .spec import IndexSpec

__all__ = [
    "MISSING_CHOICES",
    "QUESTION_KINDS",
    "Conversion",
    "convert_xlsform",
    "read_xlsform",
    "spec_dict_from_xlsform",
    "spec_from_xlsform",
]

#: Choice names that mean "no answer" (matched case-insensitively on the whole name): they are
#: coded missing (``null``) unless a scale codes them.  French and English KoBo habits:
#: don't know / ne sait pas (``nsp``), refused / refus, no answer / pas de réponse, not applicable.
MISSING_CHOICES = re.compile(
    r"(dont_?know|don_?t_?know|do_?not_?know|dk|dnk|nsp|ne_?sai[st]_?pas|ne_?sait_?pas"
    r"|refus|refuse|refused|refusal|prefer_?not_?(to_?)?(say|answer)|no_?answer|no_?response"
    r"|pas_?de_?reponse|sans_?reponse|nr|na|n_a|not_?applicable|non_?applicable|sans_?objet)",
    re.IGNORECASE)

#: Question types that can be indicators, and how they are coded.
QUESTION_KINDS = ("select_one", "select_multiple", "integer", "decimal", "range", "calculate")
_NUMERIC = ("integer", "decimal", "range", "calculate")

#: Sections of a spec the mapping may hold (every section of the spec model but the indicators).
SPEC_SECTIONS = tuple(name for name in IndexSpec.model_fields if name != "indicators")
#: Keys of the mapping that are not spec sections.
MAPPING_KEYS = ("questions", "choices", "missing", "indicator_ids", "language")
# order of the sections in a written spec: the model's, the indicators last (as data/specs/mali.yaml)
_SPEC_ORDER = (*SPEC_SECTIONS, "indicators")
_SELECTED = "selected"  # answer type of select_multiple choices (0/1)


# ============================================================================ reading the form


def _text(value: Any) -> str | None:
    """A cell as text (``None`` when empty); whole floats lose their ``.0``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _header(value: Any) -> str | None:
    """A column header: the XLSForm keyword lower-cased (``Label::French (fr)`` -> ``label::French (fr)``)."""
    text = _text(value)
    if text is None:
        return None
    head, sep, tail = text.partition("::")
    head = head.strip().lower().replace(" ", "_")
    return head + (sep + tail.strip() if sep else "")


def _sheet_rows(book, name: str) -> tuple[list[str], list[tuple[int, dict[str, str | None]]]] | None:
    """Header and rows ``(excel row number, {header: text})`` of a sheet (name case-insensitive)."""
    sheet = next((book[s] for s in book.sheetnames if s.strip().lower() == name), None)
    if sheet is None:
        return None
    if hasattr(sheet, "reset_dimensions"):  # read-only sheets trust the file's recorded size, often wrong
        sheet.reset_dimensions()
    rows = sheet.iter_rows(values_only=True)
    header_row = next(rows, None) or ()
    header = [_header(h) for h in header_row]
    records = []
    for number, values in enumerate(rows, start=2):
        record = {h: _text(v) for h, v in zip(header, values) if h is not None}
        if any(v is not None for v in record.values()):
            records.append((number, record))
    return [h for h in header if h is not None], records


def _kind(type_text: str) -> tuple[str, str | None]:
    """``select_one yes_no`` -> (``select_one``, ``yes_no``); ``begin group`` -> (``begin_group``, None)."""
    words = type_text.split()
    if len(words) >= 2 and words[0].lower() in ("select", "begin", "end") and "_" not in words[0]:
        words = [f"{words[0]}_{words[1]}".lower(), *words[2:]]  # "select one x", "begin group"
    kind = words[0].lower()
    if kind in ("select_one", "select_multiple"):
        return kind, (words[1] if len(words) > 1 else None)
    if kind in ("select_one_from_file", "select_multiple_from_file"):
        return kind, (words[1] if len(words) > 1 else None)
    return kind, None


def read_xlsform(path: str | Path) -> "tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]":
    """Read an XLSForm workbook (``.xlsx``): its survey, its choices and its settings.

    Parameters
    ----------
    path : str or Path
        The XLSForm (the workbook uploaded to KoBoToolbox or ODK Central).

    Returns
    -------
    survey : DataFrame
        One row per row of the ``survey`` sheet (blank rows skipped), with the sheet's columns
        (headers lower-cased up to ``::``: ``type``, ``name``, ``label``, ``label::French (fr)``,
        ``required``, ``constraint``, ...) as text, and: ``kind`` (``select_one``, ``integer``,
        ``begin_group``, ...), ``list_name`` (the choice list of a select question), ``group``
        (the path of the enclosing groups, ``""`` at the top), ``path`` (``group/name``: the
        column header of a KoBo export) and ``row`` (the row of the sheet).
    choices : DataFrame
        One row per choice: ``list_name``, ``name`` (the XML value), the label columns, ``row``.
    settings : dict
        The first row of the ``settings`` sheet (``form_title``, ``form_id``, ``version``,
        ``default_language``, ...), as text.

    Raises
    ------
    SpecError
        The file is missing or not a workbook, has no ``survey`` sheet or no ``type``/``name``
        column, or its groups do not match (``end_group`` without ``begin_group``, a group left
        open, two questions with the same path); the message names the file, sheet and row.
    """
    import openpyxl
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise SpecError("XLSForm not found" if not path.exists() else "expected an XLSForm workbook, found a folder",
                        file=path)
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zipfile / openpyxl errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError(f"cannot read the XLSForm (an .xlsx workbook): {first}", file=path) from None
    try:
        survey_sheet = _sheet_rows(book, "survey")
        choices_sheet = _sheet_rows(book, "choices")
        settings_sheet = _sheet_rows(book, "settings")
    finally:
        book.close()
    if survey_sheet is None:
        raise SpecError(f"no 'survey' sheet (sheets: {', '.join(book.sheetnames)})", file=path)
    header, rows = survey_sheet
    for needed in ("type", "name"):
        if needed not in header:
            raise SpecError(f"the survey sheet has no '{needed}' column", file=path)

    groups: list[tuple[str, int]] = []  # (name, row) of the open groups
    seen: dict[str, int] = {}
    records = []
    for number, rec in rows:
        type_text = rec.get("type")
        if type_text is None:
            continue
        kind, list_name = _kind(type_text)
        name = rec.get("name")
        if kind in ("begin_group", "begin_repeat"):
            if name is None:
                raise SpecError(f"{kind} without a name", file=path, sheet="survey", row=number)
            groups.append((name, number))
            group = "/".join(g for g, _ in groups[:-1])
            record_path = "/".join(g for g, _ in groups)
        elif kind in ("end_group", "end_repeat"):
            if not groups:
                raise SpecError(f"{kind} without a matching begin_group", file=path, sheet="survey", row=number)
            record_path = "/".join(g for g, _ in groups)
            groups.pop()
            group = "/".join(g for g, _ in groups)
        else:
            group = "/".join(g for g, _ in groups)
            record_path = f"{group}/{name}" if group and name else (name or "")
            if name is not None:
                if record_path in seen:
                    raise SpecError(f"question '{record_path}' is also on row {seen[record_path]}", file=path,
                                    sheet="survey", row=number)
                seen[record_path] = number
            if kind in ("select_one", "select_multiple") and list_name is None:
                raise SpecError(f"'{type_text}' names no choice list", file=path, sheet="survey", row=number)
        records.append({**{h: rec.get(h) for h in header}, "kind": kind, "list_name": list_name,
                        "group": group, "path": record_path, "row": number})
    if groups:
        name, number = groups[-1]
        raise SpecError(f"group '{name}' (row {number}) has no end_group", file=path, sheet="survey")
    survey = pd.DataFrame(records, columns=[*header, "kind", "list_name", "group", "path", "row"], dtype=object)
    survey["row"] = survey["row"].astype("int64")

    if choices_sheet is None:
        choices = pd.DataFrame(columns=["list_name", "name", "row"], dtype=object)
    else:
        c_header, c_rows = choices_sheet
        c_header = ["list_name" if h in ("list_name", "list") else h for h in c_header]
        c_records = []
        seen_choice: dict[tuple[str, str], int] = {}
        for number, rec in c_rows:
            rec = {("list_name" if k == "list" else k): v for k, v in rec.items()}
            if rec.get("list_name") is None:
                continue
            if rec.get("name") is None:
                raise SpecError(f"a choice of list '{rec['list_name']}' has no name", file=path,
                                sheet="choices", row=number)
            key = (rec["list_name"], rec["name"])
            if key in seen_choice:
                raise SpecError(f"choice '{key[1]}' of list '{key[0]}' is also on row {seen_choice[key]}",
                                file=path, sheet="choices", row=number)
            seen_choice[key] = number
            c_records.append({**{h: rec.get(h) for h in c_header}, "row": number})
        choices = pd.DataFrame(c_records, columns=[*dict.fromkeys([*c_header, "list_name", "name"]), "row"],
                               dtype=object)
        choices["row"] = choices["row"].astype("int64")

    settings: dict[str, str] = {}
    if settings_sheet is not None and settings_sheet[1]:
        settings = {k: v for k, v in settings_sheet[1][0][1].items() if v is not None}
    return survey, choices, settings


# ============================================================================ languages


def _languages(columns) -> list[str]:
    """The languages of the label columns (``label::French (fr)`` -> ``French (fr)``), in order."""
    return [c.split("::", 1)[1] for c in columns if isinstance(c, str) and c.startswith("label::")]


def _label_column(survey: "pd.DataFrame", settings: Mapping[str, str], language: str | None,
                  source: str) -> str | None:
    """The label column of ``language`` (a code such as ``fr``, a name, or ``French (fr)``).

    Without a language: the settings' ``default_language``, else the plain ``label`` column, else
    the first language.  ``None`` when the form has no label column at all.
    """
    languages = _languages(survey.columns)
    plain = "label" in survey.columns

    def match(wanted: str) -> str | None:
        w = wanted.strip().lower()
        for lang in languages:
            code = re.search(r"\(([^)]+)\)\s*$", lang)
            name = re.sub(r"\s*\([^)]*\)\s*$", "", lang).strip().lower()
            if w in (lang.lower(), name) or (code and w == code.group(1).strip().lower()):
                return f"label::{lang}"
        return None

    if language is not None:
        found = match(language)
        if found is None:
            if not languages and plain and language.strip().lower() in ("default", "label"):
                return "label"
            have = ", ".join(languages) if languages else "no language columns (only 'label')" if plain else "no labels"
            raise SpecError(f"no labels in language '{language}' (the form has: {have})", file=source)
        return found
    default = settings.get("default_language")
    if default and match(default):
        return match(default)
    if plain:
        return "label"
    return f"label::{languages[0]}" if languages else None


def _clean_label(text: Any) -> str | None:
    if text is None or (isinstance(text, float) and text != text):
        return None
    text = " ".join(str(text).split())
    return text or None


# ============================================================================ the mapping


def _load_mapping(mapping: str | Path | Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The mapping as a dict, and its name for messages (the file, or ``mapping``)."""
    if isinstance(mapping, Mapping):
        return copy.deepcopy(dict(mapping)), "mapping"
    from .spec import read_yaml_file

    path = Path(mapping)
    data = read_yaml_file(path, "mapping")
    if not isinstance(data, dict):
        raise SpecError("the mapping must be a YAML mapping (spec sections, 'choices' and 'questions')", file=path)
    return data, str(path)


def _suggest(word: str, candidates) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _bool_key(key: Any, names: list[str]) -> Any:
    """YAML 1.1 reads unquoted ``yes``/``no``/``on``/``off`` keys as booleans: back to the list's name."""
    if not isinstance(key, bool):
        return str(key)
    words = ("yes", "true", "on", "y") if key else ("no", "false", "off", "n")
    for name in names:
        if name.lower() in words:
            return name
    return "yes" if key else "no"


@dataclass
class _Form:
    survey: "pd.DataFrame"
    choices: "pd.DataFrame"
    settings: dict[str, str]
    source: str

    def choice_names(self, list_name: str) -> list[str]:
        return [str(n) for n in self.choices.loc[self.choices["list_name"] == list_name, "name"]]


def _as_form(form) -> _Form:
    if isinstance(form, _Form):
        return form
    if isinstance(form, (str, Path)):
        survey, choices, settings = read_xlsform(form)
        return _Form(survey, choices, dict(settings), str(form))
    try:
        survey, choices, settings = form
    except (TypeError, ValueError):
        raise TypeError("form must be an XLSForm path or the (survey, choices, settings) of read_xlsform") from None
    return _Form(survey, choices, dict(settings or {}), "form")


def _scale(form: _Form, list_name: str, scale: Any, missing: set[str], *, where: str, source: str,
           used_by: str) -> dict[str, float | None]:
    """The codes ``{choice name: number or None}`` of a choice list from its scale in the mapping."""
    names = form.choice_names(list_name)
    if not names:
        raise SpecError(f"choice list '{list_name}' (question '{used_by}') has no choices in the form's "
                        "choices sheet", file=source, column=where)

    def is_missing(name: str) -> bool:
        return bool(MISSING_CHOICES.fullmatch(name)) or name in missing

    def unknown(name: str) -> SpecError:
        return SpecError(f"no choice '{name}' in list '{list_name}' of the form{_suggest(name, names)}; "
                         f"its choices: {', '.join(names)}", file=source, column=where)

    if scale is None:
        answers = [n for n in names if not is_missing(n)]
        shown = [f"{n}: ?" for n in answers[:4]] + (["..."] if len(answers) > 4 else [])
        shown += [f"{n}: null" for n in names if is_missing(n)]
        raise SpecError(f"choice list '{list_name}' (question '{used_by}') has no scale: add it under 'choices', "
                        f"a score per choice ('{list_name}: {{{', '.join(shown)}}}', each ? a number, the same "
                        "direction for every question of the list; null for don't know, refused or not "
                        "applicable), a list of its choices from least to most (codes 0, 1, ...), or 'order' (the "
                        f"form's order); its choices: {', '.join(names)}",
                        file=source, column=f"choices.{list_name}")
    if isinstance(scale, str):
        if scale == "order":
            kept = [n for n in names if not is_missing(n)]
            codes = {n: (None if is_missing(n) else float(kept.index(n))) for n in names}
        elif scale == "names":
            codes = {}
            for n in names:
                if is_missing(n):
                    codes[n] = None
                    continue
                try:
                    codes[n] = float(n)
                except ValueError:
                    raise SpecError(f"scale 'names' needs numeric choice names, but list '{list_name}' has "
                                    f"'{n}'", file=source, column=where) from None
        else:
            raise SpecError(f"unknown scale '{scale}': give 'order', 'names', a list of the choices or "
                            "{choice: number}", file=source, column=where)
    elif isinstance(scale, list):
        listed = [str(_bool_key(n, names)) for n in scale]
        for n in listed:
            if n not in names:
                raise unknown(n)
        dupes = sorted({n for n in listed if listed.count(n) > 1})
        if dupes:
            raise SpecError(f"choice '{dupes[0]}' is listed twice", file=source, column=where)
        left = [n for n in names if n not in listed and not is_missing(n)]
        if left:
            raise SpecError(f"choice '{left[0]}' of list '{list_name}' is not in the scale (list it, or code "
                            "the list as {choice: number or null})", file=source, column=where)
        codes = {n: (float(listed.index(n)) if n in listed else None) for n in names}
    elif isinstance(scale, Mapping):
        given: dict[str, Any] = {}
        for key, value in scale.items():
            name = _bool_key(key, names)
            if name not in names:
                raise unknown(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise SpecError(f"the code of choice '{name}' must be a number or null, not {value!r}",
                                file=source, column=f"{where}.{name}")
            given[name] = None if value is None else float(value)
        left = [n for n in names if n not in given and not is_missing(n)]
        if left:
            raise SpecError(f"choice '{left[0]}' of list '{list_name}' has no code (give it a number, or null "
                            "for a missing answer)", file=source, column=where)
        codes = {n: given.get(n) for n in names}
    else:
        raise SpecError("a scale is a mapping {choice: number or null}, a list of choices, 'order' or 'names'",
                        file=source, column=where)
    return {n: (int(v) if v is not None and v.is_integer() else v) for n, v in codes.items()}


_CONSTRAINT = re.compile(r"^\s*\.\s*(>=|<=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")


def _numeric_type(question: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """An answer type (name, definition) for a numeric question, from its type and constraint."""
    kind = question["kind"]
    integer = kind == "integer"
    lo = hi = None
    if kind == "range":
        params = dict(re.findall(r"(\w+)\s*=\s*(-?\d+(?:\.\d+)?)", str(question.get("parameters") or "")))
        start, end, step = (float(params[k]) if k in params else d for k, d in
                            (("start", 1.0), ("end", 10.0), ("step", 1.0)))
        lo, hi = min(start, end), max(start, end)
        integer = all(float(v).is_integer() for v in (start, end, step))
    else:
        constraint = str(question.get("constraint") or "")
        parts = re.split(r"\s+and\s+", constraint.strip()) if constraint.strip() else []
        bounds = [_CONSTRAINT.match(p) for p in parts]
        if parts and all(bounds):
            for m in bounds:
                op, value = m.group(1), float(m.group(2))
                if op in (">", "<") and not (integer and value.is_integer()):
                    continue  # a strict bound on decimals is no closed range
                if op == ">":
                    value += 1
                elif op == "<":
                    value -= 1
                if op.startswith(">"):
                    lo = value if lo is None else max(lo, value)
                else:
                    hi = value if hi is None else min(hi, value)
    base = "integer" if integer else "number"
    definition: dict[str, Any] = {}
    if lo is not None or hi is not None:
        as_num = [None if v is None else (int(v) if v.is_integer() else v) for v in (lo, hi)]
        definition["range"] = as_num
        name = (f"{base}_{as_num[0]}_to_{as_num[1]}" if lo is not None and hi is not None else
                f"{base}_from_{as_num[0]}" if lo is not None else f"{base}_to_{as_num[1]}")
        name = name.replace("-", "minus").replace(".", "_")
    else:
        name = base
    if integer:
        definition["integer"] = True
    return name, definition


# ============================================================================ the conversion


@dataclass
class Conversion:
    """An index spec made from an XLSForm and a mapping (see :func:`convert_xlsform`).

    Attributes
    ----------
    spec : IndexSpec
        The validated spec.
    data : dict
        The spec as plain data, sections in the usual order (what :meth:`to_yaml` writes).
    language : str or None
        The language of the labels (``English (en)``; ``label column`` for the plain ``label``
        column) or ``None`` (the form has no labels).
    unmapped : list of str
        Paths of the form's questions that are not indicators (identification, metadata, ...).
    form, mapping : str
        Where the form and the mapping came from (file names, for messages and the YAML header).
    """

    spec: "IndexSpec"
    data: dict[str, Any]
    language: str | None = None
    unmapped: list[str] = field(default_factory=list)
    form: str = "form"
    mapping: str = "mapping"

    def to_yaml(self) -> str:
        """The spec as YAML, with a header saying where it came from (loads back to :attr:`spec`)."""
        import yaml

        head = (f"# Index spec generated by `stability spec from-xlsform` from the XLSForm {Path(self.form).name}\n"
                f"# and the mapping {Path(self.mapping).name}"
                + (f" (labels: {self.language})" if self.language else "") + ".\n"
                "# Edit the mapping and generate it again rather than editing this file.\n")
        body = yaml.safe_dump(self.data, sort_keys=False, allow_unicode=True, width=110, default_flow_style=None)
        return head + body

    def summary(self) -> str:
        """One line: what the spec holds and what the form had besides."""
        spec = self.spec
        pillars = spec.aggregates_at(2)
        shown = ", ".join(self.unmapped[:6]) + (", ..." if len(self.unmapped) > 6 else "")
        return (f"{len(spec.indicators)} indicators in {len(pillars)} pillars, {len(spec.answers)} answer types"
                + (f", labels in {self.language}" if self.language else "")
                + (f"; {len(self.unmapped)} other questions of the form are not indicators ({shown})"
                   if self.unmapped else ""))


def _pillars(base: Mapping[str, Any]) -> list[str] | None:
    """Ids of the level-2 aggregates of the mapping (``None`` when they cannot be read)."""
    aggregates = base.get("aggregates")
    if not isinstance(aggregates, list):
        return None
    return [str(a["id"]) for a in aggregates if isinstance(a, Mapping) and "id" in a and a.get("level") == 2]


def _translate(exc: SpecError, source: str, indicator_keys: Mapping[str, str],
               answer_keys: Mapping[str, str]) -> SpecError:
    """A spec error located in the mapping: ``indicators.<id>.x`` -> ``questions.<key>.x``, and an answer
    type made from a choice list -> ``choices.<list>`` (or ``questions.<key>.codes``)."""
    column = exc.column
    if isinstance(column, str):
        parts = column.split(".")
        if parts[0] == "indicators" and len(parts) > 1 and parts[1] in indicator_keys:
            column = ".".join(["questions", indicator_keys[parts[1]], *parts[2:]])
        elif parts[0] == "answers" and len(parts) > 1 and parts[1] in answer_keys:
            column = ".".join([answer_keys[parts[1]], *parts[3:]])
    return SpecError(exc.message, file=source, column=column, row=exc.row)


def convert_xlsform(form, mapping, *, language: str | None = None) -> Conversion:
    """Make an index spec from an XLSForm and a mapping file (the rules are in the module docstring).

    Parameters
    ----------
    form : str, Path or tuple
        The XLSForm workbook, or what :func:`read_xlsform` returned.
    mapping : str, Path or mapping
        The mapping file (YAML) or its content.
    language : str, optional
        Language of the labels: a code (``fr``), a name (``French``) or the column's language
        (``French (fr)``).  Default: the mapping's ``language``, else the form's
        ``default_language``, else the plain ``label`` column, else the first language.

    Returns
    -------
    Conversion
        The validated spec, its plain data (for YAML), the label column used and the questions of
        the form that are not indicators.

    Raises
    ------
    SpecError
        One line naming the file (form or mapping) and the field: a question of the mapping not in
        the form (with the closest name), a choice list without a scale, an unknown pillar, a
        question type that cannot be an indicator, or any rule of the spec.
    """
    f = _as_form(form)
    data, source = _load_mapping(mapping)
    survey = f.survey

    unknown = [k for k in data if k not in SPEC_SECTIONS and k not in MAPPING_KEYS]
    if "indicators" in unknown:
        raise SpecError("the mapping lists its indicators under 'questions' (question name: {pillar, direction, "
                        "...}), not 'indicators'", file=source, column="indicators")
    if unknown:
        raise SpecError(f"unknown section '{unknown[0]}'{_suggest(unknown[0], SPEC_SECTIONS + MAPPING_KEYS)}; "
                        f"a mapping holds spec sections ({', '.join(SPEC_SECTIONS)}) and "
                        f"{', '.join(MAPPING_KEYS)}", file=source, column=str(unknown[0]))
    questions = data.get("questions")
    if not isinstance(questions, Mapping) or not questions:
        raise SpecError("'questions' must list the questions that are indicators, e.g. "
                        "'armed_groups_present: {pillar: safety, direction: -1}'", file=source, column="questions")
    choices = data.get("choices") or {}
    if not isinstance(choices, Mapping):
        raise SpecError("'choices' must map each choice list to its scale", file=source, column="choices")
    missing_names = data.get("missing") or []
    if not isinstance(missing_names, list):
        raise SpecError("'missing' lists choice names that mean no answer (e.g. [99, refus])", file=source,
                        column="missing")
    missing = {str(m) for m in missing_names}
    id_rule = data.get("indicator_ids", "name")
    if id_rule not in ("name", "path"):
        raise SpecError(f"'indicator_ids' is 'name' or 'path', not {id_rule!r}", file=source, column="indicator_ids")
    label_col = _label_column(survey, f.settings, language if language is not None else data.get("language"),
                              f.source)
    base = {k: copy.deepcopy(v) for k, v in data.items() if k in SPEC_SECTIONS}
    base_answers = base.pop("answers", None) or {}
    if not isinstance(base_answers, Mapping):
        raise SpecError("'answers' must map answer type names to their definitions", file=source, column="answers")
    for k in choices:
        if str(k) not in set(survey["list_name"].dropna()) and str(k) not in set(f.choices["list_name"].dropna()):
            lists = sorted(set(f.choices["list_name"].dropna()))
            raise SpecError(f"no choice list '{k}' in the form{_suggest(k, lists)}; its lists: {', '.join(lists)}",
                            file=source, column=f"choices.{k}")
    pillars = _pillars(base)

    # ---- the form's questions, by path and by name
    is_question = survey["name"].notna() & ~survey["kind"].isin(
        ["begin_group", "end_group", "begin_repeat", "end_repeat"])
    qs = survey[is_question]
    by_path = {str(r["path"]): r for _, r in qs.iterrows()}
    by_name: dict[str, list[str]] = {}
    for p, r in by_path.items():
        by_name.setdefault(str(r["name"]), []).append(p)

    def find(key: str) -> tuple[Mapping[str, Any], str | None] | None:
        """(question, choice) for a key of the mapping: a name, a path, or either + '/choice'."""
        if key in by_path:
            return by_path[key], None
        if key in by_name:
            paths = by_name[key]
            if len(paths) > 1:
                raise SpecError(f"'{key}' names {len(paths)} questions of the form ({', '.join(paths)}): use its "
                                "group path", file=source, column=f"questions.{key}")
            return by_path[paths[0]], None
        head, sep, tail = key.rpartition("/")
        if sep:
            found = find(head) if (head in by_path or head in by_name) else None
            if found is not None and found[0]["kind"] == "select_multiple":
                return found[0], tail
        return None

    entries = []  # (row, choice position, key, question, choice, entry)
    for key, entry in questions.items():
        key = str(key)
        if entry is None:
            entry = {}
        if not isinstance(entry, Mapping):
            raise SpecError("a question's entry is a mapping, e.g. {pillar: safety, direction: -1}", file=source,
                            column=f"questions.{key}")
        entry = dict(entry)
        found = find(key)
        if found is None:
            names = list(by_name) + list(by_path)
            raise SpecError(f"no question '{key}' in the form {Path(f.source).name}{_suggest(key, names)}",
                            file=source, column=f"questions.{key}")
        question, choice = found
        if "choice" in entry:
            if choice is not None:
                raise SpecError("the choice is given twice (in the key and as 'choice')", file=source,
                                column=f"questions.{key}.choice")
            choice = str(entry.pop("choice"))
        kind = question["kind"]
        if kind not in QUESTION_KINDS or (kind == "select_one" and choice is not None):
            what = "a select_one" if kind == "select_one" else f"a {kind}"
            raise SpecError(f"question '{question['path']}' is {what} question: "
                            + ("'choice' applies to select_multiple questions only" if kind == "select_one" else
                               f"indicators come from {', '.join(QUESTION_KINDS)} questions"),
                            file=source, column=f"questions.{key}")
        position = -1
        if kind == "select_multiple":
            names = f.choice_names(question["list_name"])
            if choice is None:
                raise SpecError(f"select_multiple question '{question['path']}' is an indicator through one of "
                                f"its choices: name it ('{key}/<choice>' or 'choice: <choice>'); its choices: "
                                f"{', '.join(names)}", file=source, column=f"questions.{key}")
            if choice not in names:
                raise SpecError(f"no choice '{choice}' in list '{question['list_name']}'{_suggest(choice, names)}; "
                                f"its choices: {', '.join(names)}", file=source, column=f"questions.{key}")
            position = names.index(choice)
        entry.pop("choice", None)
        entries.append((int(question["row"]), position, key, question, choice, entry))
    entries.sort(key=lambda e: (e[0], e[1]))

    # ---- indicators and answer types
    answers: dict[str, dict[str, Any]] = {}
    list_types: dict[str, str] = {}
    indicators = []
    indicator_keys: dict[str, str] = {}  # indicator id -> its key in the mapping
    answer_keys: dict[str, str] = {}  # answer type made here -> where the mapping defines it
    used_paths = set()
    for _, _, key, question, choice, entry in entries:
        where = f"questions.{key}"
        used_paths.add(str(question["path"]))
        kind = question["kind"]
        name = str(question["name"]) if id_rule == "name" else str(question["path"])
        ind_id = entry.pop("id", None) or (f"{name}/{choice}" if choice is not None else name)
        ind_id = str(ind_id)
        if "pillar" in entry and "parent" in entry:
            raise SpecError("give 'pillar' or 'parent', not both", file=source, column=where)
        pillar = entry.pop("pillar", entry.pop("parent", None))
        if pillar is None:
            raise SpecError("every question needs its 'pillar' (an aggregate of level 2"
                            + (f": {', '.join(pillars)})" if pillars else ")"), file=source, column=where)
        if pillars is not None and str(pillar) not in pillars:
            raise SpecError(f"unknown pillar '{pillar}'{_suggest(pillar, pillars)}; the pillars (aggregates of "
                            f"level 2) are {', '.join(pillars)}", file=source, column=f"{where}.pillar")
        label = entry.pop("label", None)
        if label is None and label_col is not None:
            label = _clean_label(question.get(label_col)) or _clean_label(question.get("label"))
            if choice is not None:
                rows = f.choices[(f.choices["list_name"] == question["list_name"]) & (f.choices["name"] == choice)]
                row = rows.iloc[0] if len(rows) else {}
                choice_label = _clean_label(row.get(label_col)) or _clean_label(row.get("label")) or choice
                label = f"{label or question['name']}: {choice_label}"
        indicator: dict[str, Any] = {"id": ind_id, "label": label or ind_id, "parent": str(pillar)}
        codes = entry.pop("codes", None)
        answer = entry.pop("answers", None)
        if kind == "select_one":
            list_name = str(question["list_name"])
            if answer is not None:
                raise SpecError(f"a select_one question takes its answers from its choice list '{list_name}' "
                                "(its scale is under 'choices'; 'codes' overrides it for this question)",
                                file=source, column=f"{where}.answers")
            if codes is not None:
                type_name = ind_id.replace("/", "_")
                if type_name in answers or type_name in choices:
                    raise SpecError(f"the codes of '{key}' make an answer type named '{type_name}', which is "
                                    "already a choice list's: give the question another 'id'", file=source,
                                    column=f"{where}.codes")
                answers[type_name] = {"codes": _scale(f, list_name, codes, missing, where=f"{where}.codes",
                                                      source=source, used_by=key)}
                answer_keys[type_name] = f"{where}.codes"
            else:
                if list_name not in list_types:
                    scale = choices.get(list_name)
                    answers[list_name] = {"codes": _scale(f, list_name, scale, missing, where=f"choices.{list_name}",
                                                          source=source, used_by=key)}
                    list_types[list_name] = list_name
                    answer_keys[list_name] = f"choices.{list_name}"
                type_name = list_name
        elif kind == "select_multiple":
            if codes is not None or answer is not None:
                raise SpecError("a select_multiple choice is 0/1 (not selected / selected): no 'codes' or "
                                "'answers'", file=source, column=where)
            answers[_SELECTED] = {"range": [0, 1], "integer": True}
            type_name = _SELECTED
        else:
            if codes is not None:
                raise SpecError(f"'codes' applies to select_one questions; '{question['path']}' is {kind}",
                                file=source, column=f"{where}.codes")
            if answer is not None:
                if str(answer) not in base_answers:
                    raise SpecError(f"unknown answer type '{answer}'{_suggest(answer, base_answers)}: "
                                    "define it under 'answers'" + (f" (defined: {', '.join(map(str, base_answers))})"
                                                                    if base_answers else ""),
                                    file=source, column=f"{where}.answers")
                type_name = str(answer)
            else:
                type_name, definition = _numeric_type(question)
                answers.setdefault(type_name, definition)
        indicator["answers"] = type_name
        indicator.update(entry)
        if indicator["id"] in indicator_keys:
            raise SpecError(f"indicator '{indicator['id']}' is also made by '{indicator_keys[indicator['id']]}'",
                            file=source, column=where)
        indicator_keys[indicator["id"]] = key
        indicators.append(indicator)

    clash = sorted(set(base_answers) & set(answers))
    if clash:
        raise SpecError(f"answer type '{clash[0]}' is both under 'answers' and made from the form (a choice list "
                        "or a numeric question): rename one", file=source, column=f"answers.{clash[0]}")
    all_answers = {**base_answers, **answers}

    spec_data: dict[str, Any] = dict(base)
    if "name" not in spec_data:
        spec_data["name"] = f.settings.get("form_title") or f.settings.get("form_id") or Path(f.source).stem
    if "version" not in spec_data and f.settings.get("version") is not None:
        spec_data["version"] = f.settings["version"]
    spec_data["answers"] = all_answers
    spec_data["indicators"] = indicators
    ordered = {k: spec_data[k] for k in _SPEC_ORDER if k in spec_data}

    from .spec import spec_from_dict

    try:
        spec = spec_from_dict(ordered)
    except SpecError as exc:
        raise _translate(exc, source, indicator_keys, answer_keys) from None
    unmapped = [str(r["path"]) for _, r in qs.iterrows() if str(r["path"]) not in used_paths]
    shown = None if label_col is None else label_col.split("::", 1)[1] if "::" in label_col else "label column"
    return Conversion(spec=spec, data=ordered, language=shown, unmapped=unmapped, form=f.source, mapping=source)


def spec_dict_from_xlsform(form, mapping, *, language: str | None = None) -> dict[str, Any]:
    """The spec made from an XLSForm and a mapping, as plain data (validated; see :func:`convert_xlsform`)."""
    return convert_xlsform(form, mapping, language=language).data


def spec_from_xlsform(form, mapping, *, language: str | None = None) -> "IndexSpec":
    """The index spec made from an XLSForm and a mapping file (see :func:`convert_xlsform`).

    Examples
    --------
    >>> spec = spec_from_xlsform("kobo/xlsform.xlsx", "kobo/mapping.yaml")   # doctest: +SKIP
    >>> st.compute(answers, spec)                                           # doctest: +SKIP
    """
    return convert_xlsform(form, mapping, language=language).spec
