"""What a field team hands over: the illustrative survey as a KoBoToolbox project would give it.

From a generated survey (:func:`stability.generate.generate`, or the embedded one) this writes,
in one folder:

``xlsform.xlsx``
    The XLSForm of the survey (sheets ``survey``, ``choices``, ``settings``): metadata questions
    (``start``, ``end``, ``today``, ``deviceid``), identification (``survey_date``, ``round``,
    ``location_id``, ``gps``, ``ki_id``, ``ki_profile``, ``ki_name``, ``ki_phone``), the 25
    questions in three groups (``securite``, ``moyens_existence``, ``cohesion``) with French and
    English labels, and a free-text ``comments`` question.  Choice lists: ``oui_non`` (``oui`` /
    ``non`` / ``nsp``), ``proportion`` (``aucun`` / ``quelques`` / ``la_plupart`` / ``tous`` /
    ``nsp``), ``profil_ki``.
``kobo_export.csv`` and ``kobo_export.xlsx``
    The answers as KoBoToolbox exports them: one row per submission (key informant), headers
    with group paths (``securite/armed_groups_present``), XML values (``oui``) or labels
    (``Oui``, option ``labels="label"``), the geopoint split into ``_gps_latitude`` ...,
    KoBo's metadata (``_id``, ``_uuid``, ``_submission_time``, ``_validation_status``,
    ``_notes``, ``_status``, ``_submitted_by``, ``__version__``, ``_tags``, ``_index``), rows in
    submission order.  The CSV is what Excel on a French Windows machine saves: ``;``-separated,
    Windows-1252, decimal commas, CRLF line ends.
    **Personal data**: ``ki_name``, ``ki_phone`` and ``comments`` hold *fake* values generated
    here (names prefixed ``FICTIF``, phone numbers ``+223 00 ...`` that no operator issues, comments
    that repeat them), as a real export would hold real ones; they must never reach an output.
``mapping.yaml``
    The mapping that turns the XLSForm into the Mali spec
    (:func:`stability.xlsform.spec_from_xlsform`): every section of ``data/specs/mali.yaml`` but
    the indicators, the scales of the choice lists, and per question its pillar, direction,
    weight, goalposts, ... as in the spec.  The spec it gives scores exactly as the Mali spec.
``locations.csv``, ``displacement.csv``
    The location register and displacement figures, as in the tidy survey (an information
    management team keeps them beside the KoBo project).
``dataset.yaml``
    The folder as a dataset (:func:`stability.io.load_dataset`): the answers are the CSV export,
    read as a KoBo export with the XLSForm (``format: kobo``), plus the register and displacement.
``README.txt``
    What the folder is, and that it is ILLUSTRATIVE.

Everything is deterministic: the same dataset and seed give the same bytes.

Examples
--------
>>> from stability.generate import generate                          # doctest: +SKIP
>>> from stability.kobo_export import write_kobo_export              # doctest: +SKIP
>>> write_kobo_export(generate(120, 2, seed=7), "kobo", labels="xml")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io as _io
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np
    import pandas as pd

__all__ = [
    "CHOICE_LISTS",
    "FILES",
    "GROUPS",
    "QUESTION_LABELS",
    "embedded_survey",
    "kobo_answers",
    "mapping_text",
    "write_kobo_export",
    "xlsform_tables",
]

#: File names written by :func:`write_kobo_export`, by role.
FILES = {
    "xlsform": "xlsform.xlsx",
    "csv": "kobo_export.csv",
    "xlsx": "kobo_export.xlsx",
    "mapping": "mapping.yaml",
    "locations": "locations.csv",
    "population": "displacement.csv",
    "readme": "README.txt",
    "dataset": "dataset.yaml",
}

FR, EN = "French (fr)", "English (en)"
LANGUAGES = {"fr": FR, "en": EN}

FORM_TITLE = "Enquête stabilité Mali (ILLUSTRATIF)"
FORM_ID = "mali_stabilite_illustratif"
SHEET_NAME = "Enquête stabilité Mali"

#: Pillar -> (group name, French label, English label).
GROUPS: dict[str, tuple[str, str, str]] = {
    "safety": ("securite", "Sécurité", "Safety and security"),
    "livelihoods": ("moyens_existence", "Moyens d'existence et services de base", "Livelihoods and basic services"),
    "cohesion": ("cohesion", "Cohésion sociale", "Social cohesion"),
}

#: Answer type of the generator -> (choice list, [(XML name, tidy label, French label, English label)]).
CHOICE_LISTS: dict[str, tuple[str, list[tuple[str, str, str, str]]]] = {
    "yes_no": ("oui_non", [
        ("oui", "yes", "Oui", "Yes"),
        ("non", "no", "Non", "No"),
        ("nsp", "dont_know", "Ne sait pas", "Don't know"),
    ]),
    "share": ("proportion", [
        ("aucun", "none", "Aucun", "None"),
        ("quelques", "some", "Quelques-uns", "Some"),
        ("la_plupart", "most", "La plupart", "Most"),
        ("tous", "all", "Tous", "All"),
        ("nsp", "dont_know", "Ne sait pas", "Don't know"),
    ]),
}

#: Key-informant profile (XML name, as in the tidy survey) -> (French, English).
PROFILE_LABELS: dict[str, tuple[str, str]] = {
    "village_chief": ("Chef de village", "Village chief"),
    "site_manager": ("Gestionnaire de site", "Site manager"),
    "teacher": ("Enseignant(e)", "Teacher"),
    "health_worker": ("Agent(e) de santé", "Health worker"),
    "womens_representative": ("Représentante des femmes", "Women's representative"),
    "idp_representative": ("Représentant(e) des PDI", "IDP representative"),
    "religious_leader": ("Leader religieux", "Religious leader"),
    "youth_representative": ("Représentant(e) des jeunes", "Youth representative"),
}

#: The question of each indicator, in French and English.
QUESTION_LABELS: dict[str, tuple[str, str]] = {
    "armed_groups_present": ("Des groupes armés sont-ils présents dans la localité ou à proximité ?",
                             "Are armed groups present in or near the location?"),
    "security_incidents_3m": ("Combien d'incidents de sécurité ont eu lieu au cours des 3 derniers mois ?",
                              "How many security incidents took place in the last 3 months?"),
    "freedom_of_movement": ("Quelle part des habitants peut se déplacer librement ?",
                            "What share of the residents can move freely?"),
    "cattle_theft": ("Y a-t-il eu des vols de bétail au cours des 3 derniers mois ?",
                     "Was there cattle theft in the last 3 months?"),
    "robbery": ("Y a-t-il eu des braquages au cours des 3 derniers mois ?",
                "Was there robbery in the last 3 months?"),
    "state_officials_present": ("Des représentants de l'État sont-ils présents ?",
                                "Are state officials present?"),
    "safe_at_night": ("Quelle part des habitants se sent en sécurité la nuit ?",
                      "What share of the residents feel safe at night?"),
    "explosive_hazards": ("Des engins explosifs ont-ils été signalés à proximité ?",
                          "Have explosive devices been reported nearby?"),
    "drinking_water": ("Quelle part des habitants a suffisamment d'eau potable ?",
                       "What share of the residents have enough drinking water?"),
    "water_points": ("Combien de points d'eau fonctionnels y a-t-il dans la localité ?",
                     "How many functioning water points are there in the location?"),
    "health_centre_functioning": ("Un centre de santé fonctionne-t-il ?", "Is a health centre functioning?"),
    "delayed_medical_care": ("Quelle part des habitants a dû retarder des soins médicaux ?",
                             "What share of the residents had to delay medical care?"),
    "farmland_access": ("Quelle part des habitants a accès à ses terres agricoles ?",
                        "What share of the residents can reach their farmland?"),
    "market_functioning": ("Un marché fonctionne-t-il ?", "Is a market functioning?"),
    "primary_school_open": ("L'école primaire est-elle ouverte ?", "Is the primary school open?"),
    "electricity": ("Quelle part des habitants a accès à l'électricité ?",
                    "What share of the residents have access to electricity?"),
    "destroyed_housing": ("Quelle part des habitants a un logement détruit ou endommagé ?",
                          "What share of the residents had their housing destroyed or damaged?"),
    "livestock_pasture_access": ("Quelle part des éleveurs a accès aux pâturages ?",
                                 "What share of the herders can reach pasture?"),
    "equal_access_services": ("Quelle part des habitants a un accès égal aux services, quel que soit son groupe ?",
                              "What share of the residents have equal access to services, whatever their group?"),
    "illegal_occupation_hlp": ("Y a-t-il des occupations illégales de logements, de terres ou de biens ?",
                               "Is there illegal occupation of housing, land or property?"),
    "daily_public_life": ("Quelle part des habitants participe à la vie publique quotidienne ?",
                          "What share of the residents take part in daily public life?"),
    "community_tension": ("Quelle part des habitants est touchée par des tensions entre communautés ?",
                          "What share of the residents are affected by tension between communities?"),
    "id_documents": ("Quelle part des habitants possède des pièces d'identité ?",
                     "What share of the residents hold identity documents?"),
    "participation_public_affairs": ("Quelle part des habitants participe aux affaires publiques ?",
                                     "What share of the residents take part in public affairs?"),
    "displaced_host_relations": ("Quelle part des personnes déplacées a de bonnes relations avec les hôtes ?",
                                 "What share of the displaced people have good relations with their hosts?"),
}

# identification questions: name, type, French label, English label, constraint
_IDENTIFICATION = (
    ("survey_date", "date", "Date de l'enquête", "Survey date", None),
    ("round", "integer", "Cycle d'enquête", "Survey round", ". >= 1"),
    ("location_id", "text", "Code de la localité", "Location code", None),
    ("gps", "geopoint", "Position GPS", "GPS position", None),
    ("ki_id", "text", "Identifiant de l'informateur clé", "Key informant id", None),
    ("ki_profile", "select_one profil_ki", "Profil de l'informateur clé", "Key informant profile", None),
    ("ki_name", "text", "Nom de l'informateur clé", "Key informant's name", None),
    ("ki_phone", "text", "Téléphone de l'informateur clé", "Key informant's phone number", None),
)
_COMMENTS = ("comments", "text", "Commentaires de l'enquêteur", "Enumerator's comments", None)
_METADATA_QUESTIONS = ("start", "end", "today", "deviceid")
#: KoBo's columns after the questions, in its order.
KOBO_META = ("_id", "_uuid", "_submission_time", "_validation_status", "_notes", "_status", "_submitted_by",
             "__version__", "_tags", "_index")
#: Columns holding personal data (fake here): never to be carried to an output.
PERSONAL_COLUMNS = ("ki_name", "ki_phone", "comments")
_GPS = ("_gps_latitude", "_gps_longitude", "_gps_altitude", "_gps_precision")
_FLOAT_FORMATS = {"_gps_latitude": "{:.6f}", "_gps_longitude": "{:.6f}", "_gps_altitude": "{:.1f}",
                  "_gps_precision": "{:.1f}"}

_FIRST_NAMES = ("Awa", "Fatoumata", "Aminata", "Mariam", "Oumou", "Kadiatou", "Hawa", "Aïssata", "Djénéba",
                "Moussa", "Mamadou", "Boubacar", "Seydou", "Ibrahim", "Adama", "Salif", "Oumar", "Hamadoun")
_LAST_NAMES = ("Traoré", "Diarra", "Coulibaly", "Keïta", "Maïga", "Touré", "Sangaré", "Cissé", "Diallo",
               "Konaté", "Dembélé", "Sidibé", "Ag Mohamed", "Walet Ahmed", "Guindo", "Dicko")
_COMMENTS_TEXT = (
    "RAS",
    "FICTIF : l'informateur {name} souhaite être rappelé au {phone}.",
    "Entretien interrompu; reprise une heure plus tard.",
    "Le chef a dit \"tout va bien\" mais les voisins disent le contraire.",
    "Réseau faible;\nenvoi différé de la soumission.",
    "FICTIF - ne pas diffuser : {name}, {phone}, rencontré(e) au marché.",
    "Informateur pressé, certaines questions sautées.",
)


def _indicators(dataset) -> tuple:
    """The indicators of a dataset's answer columns (its own, or the catalogue's)."""
    from .generate import indicator_catalogue

    own = getattr(dataset, "indicators", None)
    if own:
        return tuple(own)
    catalogue = indicator_catalogue(26 * 25)
    return tuple(i for i in catalogue if i.id in dataset.answers.columns)


def _question_labels(ind) -> tuple[str, str]:
    """French and English question of an indicator (a repeated indicator ``x_b`` gets `` (b)``)."""
    if ind.id in QUESTION_LABELS:
        return QUESTION_LABELS[ind.id]
    root, _, letter = ind.id.rpartition("_")
    if root in QUESTION_LABELS:
        fr, en = QUESTION_LABELS[root]
        return f"{fr} ({letter})", f"{en} ({letter})"
    return ind.label, ind.label


# ============================================================================ the XLSForm


def xlsform_tables(indicators) -> "tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]":
    """The XLSForm of the survey: ``survey`` and ``choices`` sheets as tables, and the settings.

    Parameters
    ----------
    indicators : sequence of stability.generate.Indicator
        The survey's indicators (``dataset.indicators``).
    """
    import pandas as pd

    lfr, len_ = f"label::{FR}", f"label::{EN}"
    hfr, hen = f"hint::{FR}", f"hint::{EN}"
    rows: list[dict[str, Any]] = []

    def add(type_, name, fr=None, en=None, *, required=None, constraint=None, hint=None):
        rows.append({"type": type_, "name": name, lfr: fr, len_: en, hfr: hint[0] if hint else None,
                     hen: hint[1] if hint else None, "required": required, "constraint": constraint})

    for name in _METADATA_QUESTIONS:
        add(name, name)
    for name, type_, fr, en, constraint in _IDENTIFICATION:
        add(type_, name, fr, en, required="yes" if name not in ("gps", "ki_name", "ki_phone") else None,
            constraint=constraint)
    for pillar, (group, gfr, gen) in GROUPS.items():
        members = [i for i in indicators if i.pillar == pillar]
        if not members:
            continue
        add("begin_group", group, gfr, gen)
        for ind in members:
            fr, en = _question_labels(ind)
            if ind.answer_type == "count":
                add("integer", ind.id, fr, en, constraint=". >= 0",
                    hint=("Nombre ; 0 s'il n'y en a pas.", "A number; 0 if none."))
            else:
                add(f"select_one {CHOICE_LISTS[ind.answer_type][0]}", ind.id, fr, en)
        add("end_group", None)
    name, type_, fr, en, _ = _COMMENTS
    add(type_, name, fr, en)
    survey = pd.DataFrame(rows, dtype=object)

    choices = [{"list_name": list_name, "name": xml, lfr: fr, len_: en}
               for list_name, options in CHOICE_LISTS.values() for xml, _, fr, en in options]
    choices += [{"list_name": "profil_ki", "name": code, lfr: fr, len_: en}
                for code, (fr, en) in PROFILE_LABELS.items()]
    settings = {"form_title": FORM_TITLE, "form_id": FORM_ID, "version": "1", "default_language": FR}
    return survey, pd.DataFrame(choices, dtype=object), settings


def _write_sheets(path: Path, sheets: "Mapping[str, pd.DataFrame]", title: str) -> None:
    """A workbook with xlsxwriter: text as text, numbers as numbers, blanks for missing; fixed dates."""
    import datetime

    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"strings_to_urls": False, "strings_to_formulas": False,
                                           "strings_to_numbers": False})
    try:
        book.set_properties({"title": title, "author": "stability (illustrative)",
                             "created": datetime.datetime(2000, 1, 1)})
        bold = book.add_format({"bold": True})
        for name, df in sheets.items():
            ws = book.add_worksheet(name[:31])
            for j, col in enumerate(df.columns):
                ws.write_string(0, j, str(col), bold)
                for i, value in enumerate(df[col].tolist(), start=1):
                    value = _plain(value)
                    if value is None:
                        continue
                    if isinstance(value, str):
                        ws.write_string(i, j, value)
                    else:
                        ws.write_number(i, j, value)
            ws.freeze_panes(1, 0)
    finally:
        book.close()


def _plain(value: Any) -> Any:
    """A cell as None, str, int or float."""
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if hasattr(value, "item"):
        value = value.item()
    return value


# ============================================================================ the answers


def _random_text(rng: "np.random.Generator", n: int, length: int) -> list[str]:
    import numpy as np

    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"))
    return ["".join(row) for row in alphabet[rng.integers(0, len(alphabet), (n, length))]]


def _seconds_to_text(day: "np.ndarray", seconds: "np.ndarray", fmt: str) -> list[str]:
    import pandas as pd

    stamps = pd.to_datetime(pd.Series(day)) + pd.to_timedelta(seconds, unit="s")
    return stamps.dt.strftime(fmt).tolist()


def kobo_answers(dataset, *, labels: str = "xml", language: str = "fr", seed: int | None = None) -> "pd.DataFrame":
    """The answers of a key-informant survey as a KoBoToolbox export (one row per submission).

    Parameters
    ----------
    dataset : IllustrativeDataset or Dataset
        A generated survey (key-informant answers, locations).
    labels : {"xml", "label"}
        Answers as XML values (``oui``, ``la_plupart``) or as labels in ``language``.
    language : {"fr", "en"}
        Language of the labels (with ``labels="label"``).
    seed : int, optional
        Seed of the metadata and the fake personal data; default the dataset's seed.

    Returns
    -------
    DataFrame
        Columns as in the export (group paths, metadata), values as Python ``str``, ``int``,
        ``float`` or ``None``; rows in submission order (``_id``).
    """
    import numpy as np
    import pandas as pd

    from .generate import DEFAULT_SEED

    if labels not in ("xml", "label"):
        raise ValueError(f"labels must be 'xml' or 'label', not {labels!r}")
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    answers = dataset.answers
    if "ki_id" not in answers.columns:
        raise ValueError("a KoBo export needs key-informant answers (generate with key_informants=(3, 5))")
    if seed is None:
        seed = int((getattr(dataset, "parameters", None) or {}).get("seed", DEFAULT_SEED))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x4B6F426F]))  # "KoBo"
    indicators = _indicators(dataset)
    lang = 0 if language == "fr" else 1
    n = len(answers)
    a = answers.reset_index(drop=True)

    # ---- when, where, on which device
    lr = pd.Series(list(zip(a["round"].astype(str), a["location_id"].astype(str))))
    lr_codes, lr_uniques = pd.factorize(lr)
    lr_offset = rng.integers(0, 120 * 60, len(lr_uniques))  # first interview after 08:00
    duration = rng.integers(15 * 60, 45 * 60, n)
    gap = rng.integers(5 * 60, 30 * 60, n)
    step = pd.Series(duration + gap).groupby(lr_codes).cumsum().to_numpy() - (duration + gap)
    start = 8 * 3600 + lr_offset[lr_codes] + step
    end = start + duration
    submitted = end + rng.integers(10 * 60, 72 * 3600, n)
    day = a["survey_date"].astype(str).to_numpy()
    locations = dataset.locations.set_index(dataset.locations["location_id"].astype(str))
    loc = locations.reindex(a["location_id"].astype(str))
    region = loc["admin1_pcode"].astype(str).to_numpy()
    teams = pd.Series(list(zip(a["round"].astype(str), region)))
    team_codes, team_uniques = pd.factorize(teams)
    devices = np.array(["collect:" + t for t in _random_text(rng, len(team_uniques), 16)], dtype=object)
    rounds = sorted(a["round"].astype(str).unique(), key=lambda r: (len(r), r))
    versions = dict(zip(rounds, ["v" + t for t in _random_text(rng, len(rounds), 21)]))
    lat = np.round(loc["latitude"].astype(float).to_numpy() + rng.normal(0, 0.002, n), 6) + 0.0
    lon = np.round(loc["longitude"].astype(float).to_numpy() + rng.normal(0, 0.002, n), 6) + 0.0
    alt = np.round(rng.uniform(250, 450, n), 1) + 0.0
    precision = np.round(rng.uniform(3, 15, n), 1) + 0.0
    uuids = [str(uuid.UUID(bytes=bytes(b), version=4)) for b in rng.integers(0, 256, (n, 16), dtype=np.uint8)]

    # ---- fake personal data
    first = np.array(_FIRST_NAMES, dtype=object)[rng.integers(0, len(_FIRST_NAMES), n)]
    last = np.array(_LAST_NAMES, dtype=object)[rng.integers(0, len(_LAST_NAMES), n)]
    names = [f"FICTIF {f} {s}" for f, s in zip(first, last)]
    digits = rng.integers(0, 100, (n, 3))
    phones = [f"+223 00 {d[0] % 10:02d} {d[1]:02d} {d[2]:02d}" for d in digits]
    has_comment = rng.random(n) < 0.35
    which = rng.integers(0, len(_COMMENTS_TEXT), n)
    comments = [(_COMMENTS_TEXT[w].format(name=nm, phone=ph) if c else None)
                for c, w, nm, ph in zip(has_comment, which, names, phones)]

    def text(values) -> list:
        return [None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v) for v in values]

    out: dict[str, list] = {
        "start": _seconds_to_text(day, start, "%Y-%m-%dT%H:%M:%S.000+00:00"),
        "end": _seconds_to_text(day, end, "%Y-%m-%dT%H:%M:%S.000+00:00"),
        "today": list(day),
        "deviceid": list(devices[team_codes]),
        "survey_date": list(day),
        "round": [int(r) for r in a["round"].astype(str)],
        "location_id": text(a["location_id"]),
        "gps": [f"{la:.6f} {lo:.6f} {al:.1f} {pr:.1f}" for la, lo, al, pr in zip(lat, lon, alt, precision)],
        "_gps_latitude": lat.tolist(), "_gps_longitude": lon.tolist(),
        "_gps_altitude": alt.tolist(), "_gps_precision": precision.tolist(),
        "ki_id": text(a["ki_id"]),
        "ki_profile": [None if p is None else (PROFILE_LABELS[p][lang] if labels == "label" and p in PROFILE_LABELS
                                               else p) for p in text(a["ki_profile"])],
        "ki_name": names,
        "ki_phone": phones,
    }
    for pillar, (group, _, _) in GROUPS.items():
        for ind in (i for i in indicators if i.pillar == pillar):
            values = a[ind.id]
            if ind.answer_type == "count":
                num = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
                out[f"{group}/{ind.id}"] = [None if pd.isna(v) else int(v) for v in num]
                continue
            options = CHOICE_LISTS[ind.answer_type][1]
            table = {tidy: (xml if labels == "xml" else (fr, en)[lang]) for xml, tidy, fr, en in options}
            column = []
            for v in text(values):
                if v is not None and v not in table:
                    raise ValueError(f"answer '{v}' of {ind.id} has no choice in list "
                                     f"{CHOICE_LISTS[ind.answer_type][0]}")
                column.append(None if v is None else table[v])
            out[f"{group}/{ind.id}"] = column
    out["comments"] = comments
    frame = pd.DataFrame(out, dtype=object)

    # ---- KoBo's metadata, rows in submission order
    submitted_text = _seconds_to_text(day, submitted, "%Y-%m-%dT%H:%M:%S")
    order = np.lexsort((np.arange(n), np.array(submitted_text, dtype=object).astype(str)))
    frame = frame.iloc[order].reset_index(drop=True)
    meta = {
        "_id": [int(187_000_001 + i) for i in range(n)],
        "_uuid": [uuids[i] for i in order],
        "_submission_time": [submitted_text[i] for i in order],
        "_validation_status": [None] * n,
        "_notes": [None] * n,
        "_status": ["submitted_via_web"] * n,
        "_submitted_by": [None] * n,
        "__version__": [versions[str(r)] for r in frame["round"]],
        "_tags": [None] * n,
        "_index": list(range(1, n + 1)),
    }
    return pd.concat([frame, pd.DataFrame(meta, dtype=object)], axis=1)


def _csv_text(frame: "pd.DataFrame") -> str:
    """``;``-separated text with decimal commas and CRLF line ends, as Excel saves it in French."""
    buffer = _io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(list(frame.columns))
    formats = [_FLOAT_FORMATS.get(c) for c in frame.columns]
    for row in frame.itertuples(index=False, name=None):
        cells = []
        for value, fmt in zip(row, formats):
            value = _plain(value)
            if value is None:
                cells.append("")
            elif isinstance(value, float):
                cells.append((fmt or "{:.10g}").format(value).replace(".", ","))
            else:
                cells.append(str(value))
        writer.writerow(cells)
    return buffer.getvalue()


# ============================================================================ the mapping


def _flow(value: Any) -> str:
    """A value in YAML flow style, on one line."""
    import yaml

    text = yaml.safe_dump([value], default_flow_style=True, allow_unicode=True, width=10 ** 6, sort_keys=False)
    return text.strip()[1:-1]


def _block(data: Mapping[str, Any], flow_leaves: bool = True) -> str:
    import yaml

    return yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True, width=100,
                          default_flow_style=None if flow_leaves else False)


def _spec_source(spec) -> "tuple[dict[str, Any], Any]":
    """(the spec as written, the validated spec) from a path, an IndexSpec or None (the Mali spec)."""
    from .io import parse_yaml
    from .paths import default_spec
    from .spec import IndexSpec, load_spec

    if isinstance(spec, IndexSpec):
        return spec.model_dump(mode="json", exclude_defaults=True), spec
    path = Path(default_spec() if spec is None else spec)
    validated = load_spec(path)
    return parse_yaml(path.read_text(encoding="utf-8")), validated


def mapping_text(indicators, spec=None) -> str:
    """The mapping file (YAML) that turns the survey's XLSForm into ``spec`` (default the Mali spec).

    Every section of the spec but its indicators is copied as written; the answer types of the
    select questions become the scales of the choice lists (tidy labels -> XML names); each
    indicator becomes a question entry with its pillar and the rest of its options (labels come
    from the form).

    Raises
    ------
    ValueError
        The spec has an indicator that the survey does not ask, or codes an answer that has no
        choice in the form.
    """
    raw, validated = _spec_source(spec)
    by_id = {i.id: i for i in indicators}
    raw_indicators = {str(i["id"]): i for i in raw.get("indicators", [])}
    absent = [i.id for i in validated.indicators if i.id not in by_id]
    if absent:
        raise ValueError(f"the spec's indicator '{absent[0]}' is not a question of the survey")
    scales: dict[str, dict[str, Any]] = {}
    questions: dict[str, dict[str, Any]] = {}
    select_types: set[str] = set()
    for ind in validated.indicators:
        kind = by_id[ind.id].answer_type
        entry = {k: v for k, v in raw_indicators[ind.id].items() if k not in ("id", "label", "parent")}
        entry = {"pillar": ind.parent, **entry}
        if kind in CHOICE_LISTS:
            list_name, options = CHOICE_LISTS[kind]
            codes = validated.answers[ind.answers].codes if ind.answers else None
            if codes is None:
                raise ValueError(f"indicator '{ind.id}' is a select question but its answer type has no codes")
            xml_of = {tidy: xml for xml, tidy, _, _ in options}
            stray = [label for label in codes if label not in xml_of]
            if stray:
                raise ValueError(f"answer '{stray[0]}' of '{ind.id}' has no choice in list '{list_name}'")
            scale = {}
            for xml, tidy, _, _ in options:
                if tidy in codes:
                    code = codes[tidy]
                    scale[xml] = None if code is None else (int(code) if float(code).is_integer() else code)
            entry.pop("answers", None)
            select_types.add(str(ind.answers))
            if scales.setdefault(list_name, scale) != scale:
                entry["codes"] = scale
        questions[ind.id] = entry

    base = {k: v for k, v in raw.items() if k not in ("indicators", "answers")}
    other_answers = {k: v for k, v in (raw.get("answers") or {}).items() if k not in select_types}
    parts = [
        "# Mapping: the XLSForm of the ILLUSTRATIVE Mali stability survey (xlsform.xlsx) -> the Mali index spec.\n"
        "# Written by stability.kobo_export from data/specs/mali.yaml; turn it into a spec with\n"
        "#   stability spec from-xlsform xlsform.xlsx --mapping mapping.yaml --out spec.yaml\n"
        "# Every section but 'language', 'choices' and 'questions' is a section of the spec, as written there.\n",
    ]
    head = {k: base[k] for k in ("name", "description", "version") if k in base}
    parts.append(_block(head, flow_leaves=False))
    rest = {k: v for k, v in base.items() if k not in head}
    if "columns" in rest:
        parts.append("\n" + _block({"columns": rest.pop("columns")}))
    if other_answers:
        parts.append("\n# answer types of the numeric questions (the choice lists' come from 'choices' below)\n"
                     + _block({"answers": other_answers}))
    for key, value in rest.items():
        parts.append("\n" + _block({key: value}))
    parts.append("\n# labels of the indicators: the form's questions in this language (en, fr)\nlanguage: en\n")
    parts.append("\n# the numeric scale of each choice list: XML name -> code (null = missing)\nchoices:\n")
    for list_name, scale in scales.items():
        parts.append(f"  {_flow(list_name)}: {_flow(scale)}\n")
    parts.append("\n# the questions that are indicators: pillar, direction, weight, goalposts, ... (as in a spec)\n"
                 "questions:\n")
    for qid, entry in questions.items():
        say = entry.pop("say", None)
        line = f"  {_flow(qid)}: {{" + ", ".join(f"{_flow(k)}: {_flow(v)}" for k, v in entry.items())
        if say is not None:
            line += f",\n      say: {_flow(say)}"
        parts.append(line + "}\n")
    return "".join(parts)


# ============================================================================ writing


_README = """ILLUSTRATIVE DATA - GENERATED, NOT REAL SURVEY DATA
====================================================

This folder imitates what a field team hands over from a KoBoToolbox project. Every answer was
generated by a computer program (stability.generate, seed {seed}); no key informant was
interviewed. The names, phone numbers and comments are FAKE (names start with "FICTIF", phone
numbers "+223 00"), but they stand for personal data: they must never reach an output.

  xlsform.xlsx       the form (sheets survey, choices, settings), labels in French and English
  kobo_export.csv    the answers, one row per submission: ';'-separated, Windows-1252, decimal
                     commas; values as {values}
  kobo_export.xlsx   the same answers as a workbook
  mapping.yaml       turns the form into the Mali index spec:
                       stability spec from-xlsform xlsform.xlsx --mapping mapping.yaml --out spec.yaml
  locations.csv      the location register (UTF-8), kept beside the KoBo project
  displacement.csv   IDPs and returnees per location and round (UTF-8)
  dataset.yaml       the folder as a survey: the export read with the form, the register, displacement:
                       stability score --data . --spec spec.yaml
"""


def write_kobo_export(dataset, folder: str | Path, *, labels: str = "xml", language: str = "fr",
                      spec=None, seed: int | None = None) -> list[Path]:
    """Write the survey as a KoBoToolbox project would hand it over (see the module docstring).

    Parameters
    ----------
    dataset : IllustrativeDataset, Dataset or None
        A generated survey with key-informant answers (:func:`stability.generate.generate`), or
        ``None`` for the embedded one (:func:`embedded_survey`).
    folder : str or Path
        Output folder (created if needed).
    labels : {"xml", "label"}
        Answers as XML values (``oui``, ``la_plupart``) or as labels in ``language``.
    language : {"fr", "en"}
        Language of the labels in the answers (with ``labels="label"``).
    spec : str, Path or IndexSpec, optional
        The spec the mapping reproduces; default ``data/specs/mali.yaml``.
    seed : int, optional
        Seed of the metadata and fake personal data; default the dataset's seed.

    Returns
    -------
    list of Path
        The files written (all or none: each is staged, then moved into place).
    """
    import yaml

    from .generate import DEFAULT_SEED, _csv
    from .io import write_outputs

    if dataset is None:
        dataset = embedded_survey()
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"'{folder}' is a file, not a folder")
    indicators = _indicators(dataset)
    frame = kobo_answers(dataset, labels=labels, language=language, seed=seed)
    survey, choices, settings = xlsform_tables(indicators)
    mapping = mapping_text(indicators, spec)
    csv_bytes = _csv_text(frame).encode("cp1252")
    settings_frame = _settings_frame(settings)
    params = getattr(dataset, "parameters", None) or {}
    readme = _README.format(seed=seed if seed is not None else params.get("seed", DEFAULT_SEED),
                            values="XML names (oui, la_plupart, nsp)" if labels == "xml" else
                            f"labels in {LANGUAGES[language]}")
    writers = {
        folder / FILES["xlsform"]: lambda p: _write_sheets(p, {"survey": survey, "choices": choices,
                                                               "settings": settings_frame}, FORM_TITLE),
        folder / FILES["csv"]: lambda p: p.write_bytes(csv_bytes),
        folder / FILES["xlsx"]: lambda p: _write_sheets(p, {SHEET_NAME: frame}, FORM_TITLE),
        folder / FILES["mapping"]: lambda p: p.write_text(mapping, encoding="utf-8", newline="\n"),
        folder / FILES["locations"]: lambda p: p.write_text(_csv(dataset.locations, "%.5f"), encoding="utf-8",
                                                            newline="\n"),
        folder / FILES["readme"]: lambda p: p.write_text(readme, encoding="utf-8", newline="\n"),
    }
    manifest = {
        "name": "Mali stability survey (illustrative), as exported from KoBoToolbox",
        "description": "ILLUSTRATIVE data: generated by a documented statistical model, NOT real survey data. "
                       "The answers as a KoBoToolbox export (see README.txt).",
        "illustrative": True,
        "answers": {"file": FILES["csv"], "format": "kobo", "xlsform": FILES["xlsform"]},
        "locations": FILES["locations"],
    }
    if getattr(dataset, "population", None) is not None:
        manifest["population"] = FILES["population"]
    manifest_text = yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True, width=100)
    writers[folder / FILES["dataset"]] = lambda p: p.write_text(manifest_text, encoding="utf-8", newline="\n")
    if getattr(dataset, "population", None) is not None:
        writers[folder / FILES["population"]] = lambda p: p.write_text(_csv(dataset.population, None),
                                                                        encoding="utf-8", newline="\n")
    return write_outputs(writers)


def embedded_survey():
    """The embedded illustrative survey (``data/raw/mali_illustrative``) as a generated dataset.

    Its tables read as written (ids as text, rounds and counts as numbers), with the generator's
    seed and parameters from its ``dataset.yaml``.
    """
    from types import SimpleNamespace

    import pandas as pd

    from .generate import indicator_catalogue
    from .io import parse_yaml
    from .paths import default_dataset

    folder = default_dataset()
    meta = parse_yaml((folder / "dataset.yaml").read_text(encoding="utf-8"))
    generator = meta.get("generator") or {}
    parameters = {**(generator.get("parameters") or {}), "seed": generator.get("seed")}
    text = {"location_id": str, "ki_id": str, "survey_date": str}
    answers = pd.read_csv(folder / meta["answers"], dtype=text)
    n = int(parameters.get("n_indicators") or 25)
    as_written = {"dtype": str, "keep_default_na": False, "na_values": [""]}  # written back unchanged
    return SimpleNamespace(answers=answers, locations=pd.read_csv(folder / meta["locations"], **as_written),
                           population=pd.read_csv(folder / meta["population"], **as_written),
                           indicators=indicator_catalogue(n), parameters=parameters)


def _settings_frame(settings: Mapping[str, str]) -> "pd.DataFrame":
    import pandas as pd

    return pd.DataFrame([dict(settings)], dtype=object)
