"""The command line: help, exit codes, one-line errors and nothing written on failure."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stability import __version__
from stability.cli import main


OUTPUT_NAMES = ("scores.csv", "scores.parquet", "audit_log.csv", "weights.csv", "scores.xlsx", "locations.gpkg")


def run(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def file_digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (relative path -> digest)."""
    return {str(p.relative_to(folder)): digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}


# ============================================================================ help and basics


@pytest.mark.parametrize("args", [[], ["validate"], ["score"], ["generate"]])
def test_help_works_for_every_subcommand(capsys, args):
    with pytest.raises(SystemExit) as exc:
        main([*args, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: stability")
    for flag in {"validate": ["--data", "--spec"], "score": ["--out", "--format", "--quiet"],
                 "generate": ["--out", "--seed", "--locations"]}.get(args[0] if args else "", []):
        assert flag in out


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"stability {__version__}"


def test_no_command_prints_help_and_fails(capsys):
    rc, out, _ = run(capsys)
    assert rc == 2 and "validate" in out and "score" in out


def test_validate_the_default_data(capsys):
    rc, out, err = run(capsys, "validate")
    assert rc == 0, out + err
    last = out.strip().splitlines()[-1]
    assert last.startswith("OK: 17366 answer rows, 25 indicators: 0 error(s)")
    assert "[illustrative data]" in last


def test_score_the_default_data(capsys, tmp_path, mali_spec):
    rc, out, err = run(capsys, "score", "--out", tmp_path, "--format", "csv,parquet")
    assert rc == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit_log.csv", "pockets.csv", "scores.csv",
                                                          "scores.parquet", "weights.csv"]
    assert f"spec {mali_spec.hash}" in out and "[ILLUSTRATIVE data]" in out
    assert "4357 location-rounds scored" in out
    # progress goes to stderr, one line per step
    assert "normalising" in err and "stability: error" not in err


def test_score_twice_gives_byte_identical_outputs(capsys, tmp_path):
    for name in ("a", "b"):
        rc, _, err = run(capsys, "score", "-q", "--out", tmp_path / name, "--format", "csv,parquet")
        assert rc == 0, err
    for name in ("scores.csv", "scores.parquet", "audit_log.csv", "weights.csv"):
        assert digest(tmp_path / "a" / name) == digest(tmp_path / "b" / name), name


def test_unknown_format_is_refused(capsys, tmp_path):
    rc, _, err = run(capsys, "score", "-q", "--out", tmp_path / "o", "--format", "csv,pdf")
    assert rc == 2
    assert err.strip() == "stability: error: option --format: unknown format 'pdf' " \
                          "(choose from csv, parquet, xlsx, gpkg)"
    assert not (tmp_path / "o").exists()


def test_output_folder_that_is_a_file(capsys, tmp_path):
    target = tmp_path / "scores.csv"
    target.write_text("not a folder\n")
    rc, out, err = run(capsys, "score", "-q", "--out", target, "--format", "csv")
    assert rc == 2
    assert err.strip() == f"stability: error: option --out: '{target}' is a file, not an output folder"
    assert target.read_text() == "not a folder\n"


def test_missing_data_path(capsys, tmp_path):
    rc, _, err = run(capsys, "validate", "--data", tmp_path / "nowhere.csv")
    assert rc == 2
    assert err.strip() == f"stability: error: {tmp_path / 'nowhere.csv'}: file or folder not found"


def test_generate_writes_a_small_survey(capsys, tmp_path):
    rc, out, err = run(capsys, "generate", "--out", tmp_path, "--locations", "60", "--rounds", "1", "--seed", "3")
    assert rc == 0, err
    assert (tmp_path / "dataset.yaml").exists() and (tmp_path / "key_informants.csv").exists()
    rc, out, err = run(capsys, "validate", "--data", tmp_path)
    assert rc == 0, out + err


# ============================================================================ bad inputs


def dup_ki_row(d):
    lines = d.lines("key_informants.csv")
    lines.insert(300, lines[199])            # a copy of line 200 becomes line 301
    d.write_lines("key_informants.csv", lines)


def dup_location(d):
    lines = d.lines("locations.csv")
    lines.insert(40, lines[9])               # a copy of line 10 becomes line 41
    d.write_lines("locations.csv", lines)


def blank_line_before(d):
    lines = d.lines("key_informants.csv")
    d.set_cell("key_informants.csv", 57, "robbery", "maybe")
    lines = d.lines("key_informants.csv")
    lines.insert(10, "")                     # line 11 is blank: 'maybe' is now on line 58
    d.write_lines("key_informants.csv", lines)


def multiline_cell_before(d):
    d.set_cell("key_informants.csv", 57, "robbery", "maybe")
    d.set_cell("key_informants.csv", 10, "ki_profile", '"teacher\nand imam"')   # 'maybe' now on line 58


def missing_in_round_2(d):
    lines = d.lines(KI)
    header = lines[0].split(",")
    r, j = header.index("round"), header.index("electricity")
    for i in range(1, len(lines)):
        cells = lines[i].split(",")
        if len(cells) > j and cells[r] == "2":
            cells[j] = ""
            lines[i] = ",".join(cells)
    d.write_lines(KI, lines)


def header_only(d):
    p = d.data / "displacement.csv"
    p.write_text(p.read_text(encoding="utf-8").split("\n")[0] + "\n", encoding="utf-8")


def duplicate_header(d):
    lines = d.lines("locations.csv")
    lines[0] = lines[0].replace("admin1_name", "location_name")
    d.write_lines("locations.csv", lines)


KI, LOC, POP = "key_informants.csv", "locations.csv", "displacement.csv"

# name, how to break the copy, (file, column, row) expected in the message, a fragment of the message
CASES = [
    ("missing indicator column", lambda d: d.drop_column(KI, "robbery"), (KI, "robbery", None),
     "column named by the spec is not in the file"),
    ("missing key column", lambda d: d.drop_column(KI, "ki_id"), (KI, "ki_id", None), "not in the file"),
    ("unknown column in the spec", lambda d: d.edit_spec("name: location_name", "name: loc_name"),
     (LOC, "loc_name", None), "in neither the answers nor the location register"),
    ("unknown imputation group", lambda d: d.edit_spec("  group: admin2_pcode", "  group: cercle"),
     (LOC, "cercle", None), "column named by the spec (impute.group) is in neither"),
    ("unknown rank.within column", lambda d: d.edit_spec("categories:", "rank:\n  within: province\ncategories:"),
     (LOC, "province", None), "column named by the spec (rank.within) is in neither"),
    ("non-numeric count", lambda d: d.set_cell(KI, 101, "security_incidents_3m", "many"),
     (KI, "security_incidents_3m", 101), "'many' is not a number"),
    ("fractional count", lambda d: d.set_cell(KI, 1234, "security_incidents_3m", "2.5"),
     (KI, "security_incidents_3m", 1234), "2.5 is not a whole number"),
    ("infinite count", lambda d: d.set_cell(KI, 4321, "water_points", "inf"),
     (KI, "water_points", 4321), "'inf' is not a number"),
    ("unknown answer label", lambda d: d.set_cell(KI, 57, "robbery", "maybe"), (KI, "robbery", 57),
     "'maybe' is not a valid answer (expected one of: no, yes, dont_know)"),
    ("out-of-range code", lambda d: d.set_cell(KI, 999, "safe_at_night", "7"), (KI, "safe_at_night", 999),
     "'7' is not a valid answer"),
    ("negative count", lambda d: d.set_cell(KI, 17000, "security_incidents_3m", "-3"),
     (KI, "security_incidents_3m", 17000), "-3 is outside the valid range [0, inf]"),
    ("duplicate key-informant row", dup_ki_row, (KI, "location_id", 301),
     "duplicate key informant: same location_id, round, ki_id as row 200"),
    ("duplicate location id", dup_location, (LOC, "location_id", 41), "duplicate location id 'ML0101-0009'"),
    ("location not in the register", lambda d: d.set_cell(KI, 77, "location_id", "ML9999-0001"),
     (KI, "location_id", 77), "location 'ML9999-0001' is not in the location register"),
    ("unknown p-code", lambda d: d.set_cell(LOC, 33, "admin2_pcode", "ML0199"), (LOC, "admin2_pcode", 33),
     "unknown p-code 'ML0199'"),
    ("admin2 inconsistent with admin1", lambda d: d.set_cell(LOC, 33, "admin1_pcode", "ML02"),
     (LOC, "admin2_pcode", 33), "does not belong to admin1_pcode given on the same row (it belongs to ML01)"),
    ("bad coordinate", lambda d: d.set_cell(LOC, 120, "latitude", "132.5"), (LOC, "latitude", 120),
     "is not a coordinate"),
    ("negative population", lambda d: d.set_cell(POP, 88, "idps", "-5"), (POP, "idps", 88),
     "is not a count of people"),
    ("empty round", lambda d: d.set_cell(KI, 2500, "round", ""), (KI, "round", 2500), "empty identifier"),
    ("duplicate population row", lambda d: d.set_cell(POP, 3, "location_id", "ML0101-0001"),
     (POP, "location_id", 3), "duplicate location and round in the population table"),
    ("population of an unknown location", lambda d: d.set_cell(POP, 4000, "location_id", "ML0101-9999"),
     (POP, "location_id", 4000), "location 'ML0101-9999' is not in the survey"),
    ("non-positive denominator", lambda d: d.set_cell(LOC, 700, "population", "0"), (LOC, "population", 700),
     "denominator '0' is not a positive number"),
    ("all-missing indicator", lambda d: d.set_column(KI, "electricity", ""), (KI, "electricity", None),
     "no valid answer at all"),
    ("indicator missing in a round", missing_in_round_2, (KI, "electricity", None), "no valid answer in round 2"),
    ("constant indicator", lambda d: d.set_column(KI, "electricity", "some"), (KI, "electricity", None),
     "constant indicator: every answer is 1"),
    ("blank line before the bad row", blank_line_before, (KI, "robbery", 58), "'maybe' is not a valid answer"),
    ("multi-line cell before the bad row", multiline_cell_before, (KI, "robbery", 58),
     "'maybe' is not a valid answer"),
    ("empty file", lambda d: (d.data / LOC).write_bytes(b""), (LOC, None, None), "the file is empty"),
    ("header-only file", header_only, (POP, None, None), "the table has a header but no rows"),
    ("duplicate column name", duplicate_header, (LOC, None, None), "duplicate column name 'location_name'"),
    ("YAML syntax error", lambda d: d.edit_spec("  disagreement_threshold: 0.3", "  disagreement_threshold: 0.3: x"),
     ("spec.yaml", None, None), "invalid YAML at line "),
    ("unknown spec field", lambda d: d.edit_spec("  disagreement_threshold: 0.3", "  disagreement_threshold: 0.3\n  colour: blue"),
     ("spec.yaml", "combine.colour", None), "Extra inputs are not permitted"),
    ("invalid direction", lambda d: d.edit_spec("answers: yes_no, direction: -1,", "answers: yes_no, direction: 2,"),
     ("spec.yaml", "indicators.armed_groups_present.direction", None), "Input should be 1 or -1"),
    ("parent that does not exist", lambda d: d.edit_spec("id: armed_groups_present, label: \"Armed groups present in or near the location\", parent: safety,",
                                                         "id: armed_groups_present, label: \"Armed groups present in or near the location\", parent: safty,"),
     ("spec.yaml", None, None), "indicator 'armed_groups_present': parent 'safty' is not an aggregate"),
]


def expected_prefix(d, where):
    name, column, row = where
    path = d.spec if name == "spec.yaml" else d.data / name
    word = "field" if name == "spec.yaml" else "column"  # a spec has fields, a data file columns
    parts = [str(path)] + ([f"{word} '{column}'"] if column else []) + ([f"row {row}"] if row else [])
    return ", ".join(parts) + ": "


@pytest.fixture
def prior_outputs(tmp_path):
    """An output folder holding the outputs of an earlier run."""
    out = tmp_path / "out"
    out.mkdir()
    for name in OUTPUT_NAMES:
        (out / name).write_bytes(f"earlier {name}\n".encode())
    return out


@pytest.mark.parametrize("name, breaker, where, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_with_one_line(capsys, dataset_copy, prior_outputs, name, breaker, where, message):
    d = dataset_copy
    breaker(d)
    inputs = file_digests(d.root)
    outputs = file_digests(prior_outputs)
    prefix = expected_prefix(d, where)
    spec_or_file_error = where[0] == "spec.yaml" or message.startswith(("the file", "the table", "duplicate column"))

    # score: exit 2, exactly one line on stderr, nothing written
    rc, out, err = run(capsys, "score", "-q", "--data", d.data, "--spec", d.spec, "--out", prior_outputs)
    assert rc == 2
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("stability: error: " + prefix), lines[0]
    assert message in lines[0]
    assert out == ""
    assert file_digests(prior_outputs) == outputs          # earlier outputs byte-identical, no new file
    assert file_digests(d.root) == inputs                  # inputs untouched

    # validate: exit 2; data problems are listed on stdout, one line each
    rc, out, err = run(capsys, "validate", "--data", d.data, "--spec", d.spec)
    assert rc == 2
    if spec_or_file_error:
        assert err.splitlines() == lines and out == ""
    else:
        problems = [line for line in out.splitlines() if line.startswith("error: ")]
        assert problems == ["error: " + lines[0].removeprefix("stability: error: ").split(" (and ")[0]], out
        assert out.splitlines()[-1].startswith("FAILED: ")
    assert file_digests(d.root) == inputs


def test_warnings_do_not_stop_scoring(capsys, dataset_copy):
    d = dataset_copy
    d.set_cell(LOC, 250, "population", "")
    rc, out, err = run(capsys, "validate", "--data", d.data, "--spec", d.spec)
    assert rc == 0, out + err
    warnings = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert warnings == [f"warning: {d.data / LOC}, column 'population', row 250: missing denominator: the "
                        "indicators divided by it will be missing here"]
    assert out.splitlines()[-1].startswith("OK: ") and "1 warning(s)" in out
    rc, out, err = run(capsys, "score", "-q", "--data", d.data, "--spec", d.spec, "--out", d.root / "out",
                       "--format", "csv")
    assert rc == 0, err
    assert (d.root / "out" / "scores.csv").exists()


def test_progress_lines_do_not_hide_the_error(capsys, dataset_copy, prior_outputs):
    dataset_copy.set_cell(KI, 57, "robbery", "maybe")
    rc, out, err = run(capsys, "score", "--data", dataset_copy.data, "--spec", dataset_copy.spec,
                       "--out", prior_outputs)
    assert rc == 2
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and err.splitlines()[-1] == errors[0]
    assert "row 57" in errors[0]


def test_method_error_writes_nothing(capsys, dataset_copy, prior_outputs):
    # goalposts give 0 for the worst answers: a geometric index is undefined
    dataset_copy.edit_spec("  - name: Index\n    method: arithmetic", "  - name: Index\n    method: geometric")
    dataset_copy.edit_spec("  - name: Pillar\n    method: arithmetic", "  - name: Pillar\n    method: geometric")
    before = file_digests(prior_outputs)
    rc, out, err = run(capsys, "score", "-q", "--data", dataset_copy.data, "--spec", dataset_copy.spec,
                       "--out", prior_outputs)
    assert rc == 2
    assert len(err.splitlines()) == 1 and "geometric mean needs positive scores" in err
    assert "(e.g. 0)" in err and "-0" not in err, err  # a score of -0.0 is written 0
    assert file_digests(prior_outputs) == before


def test_several_problems_are_all_listed_by_validate(capsys, dataset_copy):
    d = dataset_copy
    d.set_cell(KI, 57, "robbery", "maybe")
    d.set_cell(KI, 60, "robbery", "perhaps")
    d.set_cell(LOC, 33, "admin2_pcode", "ML0199")
    rc, out, err = run(capsys, "validate", "--data", d.data, "--spec", d.spec)
    assert rc == 2
    problems = [line for line in out.splitlines() if line.startswith("error: ")]
    assert len(problems) == 3
    assert "row 57" in problems[0] and "'maybe'" in problems[0]
    assert "row 60" in problems[1] and "'perhaps'" in problems[1]
    assert "ML0199" in problems[2]
    assert "3 error(s)" in out.splitlines()[-1]
    rc, out, err = run(capsys, "score", "-q", "--data", d.data, "--spec", d.spec, "--out", d.root / "out")
    assert rc == 2 and len(err.splitlines()) == 1
    assert "and 2 more problems: run 'stability validate' to list them" in err
    assert not (d.root / "out").exists()


# ============================================================================ as a program


def program(*args, cwd=None):
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "stability", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)


def test_exit_codes_as_a_program(dataset_copy):
    dataset_copy.set_cell(LOC, 33, "admin1_pcode", "ML02")
    p = program("score", "-q", "--data", dataset_copy.data, "--spec", dataset_copy.spec, "--out",
                dataset_copy.root / "out")
    assert p.returncode == 2
    assert p.stdout == ""
    assert p.stderr.count("\n") == 1 and "row 33" in p.stderr
    assert not (dataset_copy.root / "out").exists()


def test_console_script_exit_code_on_a_bad_spec(dataset_copy):
    dataset_copy.edit_spec("answers: yes_no, direction: -1,", "answers: yes_no, direction: 0,")
    script = Path(sys.executable).parent / "stability"
    p = subprocess.run([str(script), "validate", "--spec", str(dataset_copy.spec)], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 2
    assert p.stderr.strip().startswith(f"stability: error: {dataset_copy.spec}, field 'indicators.")
    assert len(p.stderr.strip().splitlines()) == 1


def test_score_writes_the_pockets_unless_told_not_to(capsys, tmp_path):
    import pandas as pd
    import pyogrio

    rc, out, err = run(capsys, "score", "--out", tmp_path / "with", "--format", "csv,gpkg")
    assert rc == 0, err
    scores = pd.read_csv(tmp_path / "with" / "scores.csv")
    assert {"pocket", "pocket_area"} <= set(scores.columns)
    assert (scores["pocket"] == "pocket of stability").any() and (scores["pocket"] == "hotspot of instability").any()
    areas = pd.read_csv(tmp_path / "with" / "pockets.csv")
    assert set(areas.dropna(subset=["area"])["area"]) <= set(scores["pocket_area"].dropna())
    layers = dict(pyogrio.list_layers(tmp_path / "with" / "locations.gpkg"))
    assert layers == {"scores": "Point", "pockets": "Polygon"}
    rc, out, err = run(capsys, "score", "--out", tmp_path / "without", "--format", "csv", "--no-pockets")
    assert rc == 0, err
    assert "pocket" not in pd.read_csv(tmp_path / "without" / "scores.csv").columns
    assert not (tmp_path / "without" / "pockets.csv").exists()
