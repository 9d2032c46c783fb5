"""Personal data never reaches the outputs.

Key-informant surveys (KoBo, ODK, paper forms typed in) carry more than answers:
the informant's name and phone number, the GPS point where the interview took
place, free-text comments, the enumerator's device.  Every column of the answers
file and of the location register that is not an indicator or a key used to
reach ``Result.units`` and from there every output (CSV, Parquet, Excel,
GeoPackage, the reports and their notebooks).  This module decides which of those
columns are **personal data**; :func:`stability.pipeline.prepare` leaves them out
before ``units`` is built, and :func:`problems` says which (one warning line per
file, ``stability: warning: ...``, printed by every command that reads the data).

The rule
--------
* Columns **named by the spec** are always kept: ``columns.location``, ``round``,
  ``key_informant``, ``name``, ``admin``, ``admin_names``, ``longitude``,
  ``latitude``, the indicators' ``denominator`` columns, ``impute.group``,
  ``rank.within``, ``weights.<level>.outcome`` and ``cluster``, and every column
  listed in ``columns.keep``.
* Every other column of the answers, location register, population and outcome
  tables is **dropped when it looks like personal data** (below), and **kept
  otherwise**: non-personal descriptive columns (``location_type``,
  ``survey_date``, ``population``, ``idps``, ``returnees``, an outcome named only
  on the command line...) still reach the outputs and the reports without being
  listed.  This is the gentler of the two possible rules (the stricter one drops
  everything not named): personal data are dropped unless the spec lists them,
  and the reports, ad-hoc weights (``stability weights --set outcome=...``) and
  users' own descriptive columns keep working.  A column dropped by mistake is
  brought back with ``columns.keep``.
* With answers per key informant, a column that is not constant within a
  location and round never reaches ``units`` anyway (it describes informants, not
  the location); the rule matters for the location register, for answers with one
  row per location, and for values shared by a location's informants (enumerator,
  device, a comment on the visit).

Personal data by column name (case, accents, ``camelCase``, digits and KoBo group
paths such as ``group_ki/ki_name`` ignored; the name is cut into words at
anything that is not a letter):

=====================  =================================================================
reason                 names
=====================  =================================================================
person's name          ``ki_name``, ``informant_name``, ``respondent``, ``nom``,
                       ``prenom``, ``surname``, ``first_name``/``last_name``/``full_name``,
                       ``enumerator``, ``interviewer``; ``name`` with ``ki``,
                       ``informant``, ``person``, ``contact``, ``chief``, ``head``...
                       (not with a place word: ``nom_village``, ``site_name``)
phone number           ``phone``, ``tel``, ``telephone``, ``phonenumber``, ``msisdn``,
                       ``mobile``, ``whatsapp``, ``contact``
e-mail address         ``email``, ``e_mail``, ``courriel``
informant GPS          ``gps``, ``_gps_latitude``..., ``_geolocation``, ``geopoint``,
                       ``*_latitude``, ``*_longitude``, ``*_lat``, ``*_lon``, ``*_lng``
                       (the spec's coordinates are kept)
free text              ``comment*``, ``remark*``, ``note*``, ``observation*`` (a word of
                       the name), and, for a text column, ``other*``, ``*_other``,
                       ``*_specify``, ``autre*``, ``precisez``
device metadata        KoBo/ODK ``deviceid``, ``simserial``, ``subscriberid``,
                       ``username``, ``imei``, ``_submitted_by``, ``instanceID``,
                       ``_uuid``
=====================  =================================================================

Personal data by value (text columns, on their distinct values):

* **e-mail addresses**: any value containing one;
* **phone numbers**: any value containing an international number (``+`` then
  8 to 15 digits, separators allowed), or at least half the values shaped like a
  phone number (``+``/``00`` prefix, or 8 to 15 digits in groups separated by
  spaces, dots or dashes: ``76 12 34 56``; dates excluded).  Plain digits without
  a prefix (``76123456``) are not recognised: they cannot be told from codes;
* **informant GPS**: at least half the values are GPS points written as text
  (KoBo/ODK geopoints, ``"14.1357 -3.2468 300 5"``);
* **free text**: at least :data:`FREE_TEXT_MIN_DISTINCT` distinct values, making
  up at least :data:`FREE_TEXT_MIN_SHARE` of the values present, whose median is
  at least :data:`FREE_TEXT_MIN_LENGTH` characters and
  :data:`FREE_TEXT_MIN_WORDS` words long, and that are neither numbers nor dates.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .io import Dataset
    from .spec import IndexSpec
    from .validate import Problem

#: Reasons a column is left out (the words of the warning).
NAME, PHONE, EMAIL, GPS, FREE_TEXT, DEVICE = ("person's name", "phone number", "e-mail address", "informant GPS",
                                              "free text", "device metadata")

#: Words of a column name that make it a person's name on their own.
NAME_WORDS = frozenset({"nom", "noms", "prenom", "prenoms", "surname", "firstname", "lastname", "fullname",
                        "respondent", "respondents", "enumerator", "enumerators", "interviewer", "interviewers",
                        "informantname", "kiname"})
#: Words that make ``name`` (or ``names``) a person's name: ``ki_name``, ``contact_name``, ``first_name``...
NAME_OWNERS = frozenset({"ki", "kii", "informant", "informants", "key", "person", "contact", "chief", "head",
                         "first", "last", "full", "given", "family", "father", "mother", "household", "hh",
                         "participant", "focal", "leader", "representative", "surveyor", "staff", "user"})
#: Words of a column name that make it a phone number.
PHONE_WORDS = frozenset({"phone", "phones", "tel", "tels", "telephone", "telephones", "phonenumber", "msisdn",
                         "mobile", "cellphone", "whatsapp", "contact", "contacts"})
EMAIL_WORDS = frozenset({"email", "emails", "mail", "courriel"})
#: Words of a column name that make it a GPS reading (the spec's coordinates are kept).
GPS_WORDS = frozenset({"gps", "geolocation", "geopoint", "geoloc", "geotrace", "geoshape"})
#: Last words that make a ``something_latitude`` column a GPS reading.
GPS_LAST = frozenset({"latitude", "longitude", "lat", "lon", "lng"})
#: Words of a column name that make it free text.
TEXT_WORDS = frozenset({"comment", "comments", "commentaire", "commentaires", "remark", "remarks", "remarque",
                        "remarques", "note", "notes", "observation", "observations"})
#: Words that make a *text* column an "other, specify" answer.
OTHER_WORDS = frozenset({"specify", "specified", "precisez", "preciser", "precise", "autre", "autres"})
#: Column names (words joined) of KoBo / ODK device and account metadata.
DEVICE_NAMES = frozenset({"deviceid", "simserial", "simid", "subscriberid", "username", "imei", "submittedby",
                          "instanceid", "uuid"})
#: Words that make ``nom`` / ``name`` the name of a place, not of a person (``nom_village``).
PLACE_WORDS = frozenset({"village", "site", "localite", "locality", "lieu", "place", "location", "loc", "commune",
                         "cercle", "region", "quartier", "camp", "settlement", "district", "province", "admin",
                         "adm", "departement", "town", "city", "ville", "school", "ecole", "market", "marche"})

#: Free text: fewest distinct values, their least share of the values present, their median length and words.
FREE_TEXT_MIN_DISTINCT = 10
FREE_TEXT_MIN_SHARE = 0.2
FREE_TEXT_MIN_LENGTH = 20
FREE_TEXT_MIN_WORDS = 3
#: Phone numbers: least share of the distinct values shaped like one.
PHONE_MIN_SHARE = 0.5
#: Distinct values looked at per column (the first ones, in the order of the table).
MAX_VALUES = 5000

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_PHONE_IN_TEXT = re.compile(r"(?<![\w+])\+\d(?:[\s().-]?\d){7,14}(?!\d)")
_PHONE_PREFIXED = re.compile(r"(?:\+|00)\s?\d(?:[\s().-]?\d){6,16}")
_PHONE_GROUPED = re.compile(r"\(?\d{2,4}\)?(?:[\s.-]\d{2,4}){2,6}")
_GEOPOINT = re.compile(r"-?\d{1,2}\.\d{3,}[\s,;]+-?\d{1,3}\.\d{3,}(?:\s+-?[\d.]+){0,2}")
_DATE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?")


# --------------------------------------------------------------------------- names
def words(column) -> list[str]:
    """The words of a column name: last part of a group path, ``camelCase`` split, lower case, no accents."""
    last = re.split(r"[/:]", str(column))[-1]
    last = re.sub(r"([a-z])([A-Z])", r"\1_\2", last)
    plain = unicodedata.normalize("NFKD", last).encode("ascii", "ignore").decode().lower()
    return [w for w in re.split(r"[^a-z]+", plain) if w]


def by_name(column, *, text: bool = True) -> str | None:
    """Why a column is personal data judging by its name (``None``: not by its name).

    ``text`` says whether the column holds text: "other, specify" names
    (``other*``, ``*_other``) only make a text column free text.
    """
    w = words(column)
    if not w:
        return None
    joined = "".join(w)
    ws = set(w)
    if joined in DEVICE_NAMES:
        return DEVICE
    if not ws & PLACE_WORDS and (ws & NAME_WORDS or (ws & {"name", "names"} and ws & NAME_OWNERS)
                                 or w in (["informant"], ["ki"])):
        return NAME
    if ws & EMAIL_WORDS or "email" in joined:
        return EMAIL
    if ws & PHONE_WORDS or "phone" in joined or "msisdn" in joined or "telephone" in joined:
        return PHONE
    if ws & GPS_WORDS or (len(w) > 1 and w[-1] in GPS_LAST):
        return GPS
    if ws & TEXT_WORDS:
        return FREE_TEXT
    if text and (w[0].startswith("other") or w[-1] in ("other", "others") or ws & OTHER_WORDS):
        return FREE_TEXT
    return None


# --------------------------------------------------------------------------- values
def _distinct_text(col: "pd.Series") -> tuple[list[str], int] | None:
    """The first :data:`MAX_VALUES` distinct non-missing values as text and the number of values present;
    ``None`` for a column of numbers, booleans or dates."""
    import pandas as pd

    if (pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype)
            or pd.api.types.is_datetime64_any_dtype(col.dtype)):
        return None
    present = col.dropna()
    n = len(present)
    if not n:
        return [], 0
    values = [v for v in pd.unique(present)[:MAX_VALUES] if isinstance(v, str)]
    values = [v.strip() for v in values]
    return [v for v in values if v], n


def _looks_like_phone(v: str) -> bool:
    digits = sum(ch.isdigit() for ch in v)
    if _PHONE_PREFIXED.fullmatch(v):
        return 8 <= digits <= 15 and (v.startswith("+") or digits >= 11)
    return 8 <= digits <= 15 and bool(_PHONE_GROUPED.fullmatch(v)) and not _DATE.fullmatch(v)


def _dates(values: list[str]) -> bool:
    """Most of ``values`` (a sample) read as dates or times."""
    import warnings

    import pandas as pd

    sample = values[:200]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = pd.to_datetime(pd.Series(sample, dtype=object), errors="coerce", format="mixed")
        except (ValueError, TypeError, OverflowError):
            return False
    return bool(parsed.notna().mean() >= 0.9)


def by_values(col: "pd.Series") -> str | None:
    """Why a text column is personal data judging by its values (``None``: not by its values)."""
    got = _distinct_text(col)
    if got is None:
        return None
    values, n = got
    if not values:
        return None
    if any(_EMAIL.search(v) for v in values):
        return EMAIL
    if any(_PHONE_IN_TEXT.search(v) for v in values):
        return PHONE
    if sum(map(_looks_like_phone, values)) >= PHONE_MIN_SHARE * len(values):
        return PHONE
    if sum(bool(_GEOPOINT.fullmatch(v)) for v in values) >= PHONE_MIN_SHARE * len(values):
        return GPS
    k = len(values)
    if k < FREE_TEXT_MIN_DISTINCT or k < FREE_TEXT_MIN_SHARE * n:
        return None
    if float(np.median([len(v) for v in values])) < FREE_TEXT_MIN_LENGTH:
        return None
    if float(np.median([len(v.split()) for v in values])) < FREE_TEXT_MIN_WORDS:
        return None
    if all(_NUMBER.fullmatch(v) for v in values[:200]) or _dates(values):
        return None
    return FREE_TEXT


def _is_text(col: "pd.Series") -> bool:
    """A column holding text (not only numbers written as text)."""
    got = _distinct_text(col)
    if got is None:
        return False
    return any(not _NUMBER.fullmatch(v) for v in got[0][:200])


def reason(col: "pd.Series", name=None) -> str | None:
    """Why a column is personal data (by its name, then its values), ``None`` when it is not."""
    name = col.name if name is None else name
    why = by_name(name, text=False)
    if why is None and by_name(name, text=True) is not None and _is_text(col):
        why = FREE_TEXT
    return why or by_values(col)


# --------------------------------------------------------------------------- tables
def spec_columns(spec: "IndexSpec") -> list[str]:
    """Columns named by the spec (always kept): keys, names, admin, coordinates, denominators,
    grouping and weighting columns, and ``columns.keep``."""
    c = spec.columns
    named = [c.location, c.round, c.key_informant, c.name, *c.admin, *c.admin_names, c.longitude, c.latitude,
             *[i.denominator for i in spec.indicators], *spec.indicator_ids]
    if spec.impute.method.startswith("group_"):
        named.append(spec.impute.group)
    named.append(spec.rank.within)
    for scheme in spec.weights.values():
        named += [getattr(scheme, "outcome", None), getattr(scheme, "cluster", None)]
    named += list(getattr(c, "keep", None) or [])
    return [x for x in dict.fromkeys(named) if isinstance(x, str) and x]


def personal_columns(table: "pd.DataFrame", spec: "IndexSpec", columns=None) -> dict[str, str]:
    """The columns of ``table`` left out as personal data: column -> reason, in the table's order.

    ``columns`` restricts the search (default: every column); columns named by the
    spec (:func:`spec_columns`) are never left out.
    """
    kept = set(spec_columns(spec))
    found = {}
    for col in (table.columns if columns is None else columns):
        if col in kept or col not in table.columns:
            continue
        why = reason(table[col], col)
        if why:
            found[col] = why
    return found


def left_out(data: "Dataset", spec: "IndexSpec") -> dict[str, dict[str, str]]:
    """Per table of the dataset (``answers``, ``locations``, ``population``, ``outcomes``), the columns left
    out as personal data (column -> reason); tables without any are not listed."""
    from .io import DATA_ROLES

    out = {}
    for role in DATA_ROLES:
        table = getattr(data, role, None)
        if table is None:
            continue
        found = personal_columns(table, spec)
        if found:
            out[role] = found
    return out


def problems(data: "Dataset", spec: "IndexSpec", found: dict | None = None) -> list["Problem"]:
    """Warnings for :func:`stability.validate.validate`: one line per file naming the columns left out as
    personal data, and one per column of ``columns.keep`` found in no table."""
    from .validate import Problem

    found = left_out(data, spec) if found is None else found
    out = []
    for role, cols in found.items():
        listed = ", ".join(f"{col} ({why})" for col, why in cols.items())
        out.append(Problem("warning", f"left out of every output as personal data: {listed}; list a column in "
                                      "'columns.keep' of the spec to keep it", data.file(role), notice=True))
    tables = [getattr(data, r) for r in ("answers", "locations", "population", "outcomes")
              if getattr(data, r, None) is not None]
    for col in getattr(spec.columns, "keep", None) or []:
        if not any(col in t.columns for t in tables):
            out.append(Problem("warning", "column listed in 'columns.keep' is in none of the survey's tables",
                               None, col, notice=True))
    return out
