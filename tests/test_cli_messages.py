"""Command-line messages name what is at fault: the option typed, the coordinate column, the closest
option, region or spec field; warnings are shown once, on stderr, and counted; help texts say defaults."""

from __future__ import annotations

import re
import warnings

import pytest

from stability.cli import main
from stability.exceptions import ParameterError

LOC = "locations.csv"


def run(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def help_text(capsys, *args) -> str:
    with pytest.raises(SystemExit) as exc:
        main([*args, "--help"])
    assert exc.value.code == 0
    return " ".join(capsys.readouterr().out.split())


# ============================================================================ 1. options merged into the spec
@pytest.mark.parametrize("args, option", [(["--seed", "-1"], "--seed"), (["--set", "seed=-1"], "--set seed")])
def test_a_bad_uncertainty_option_is_blamed_on_the_option_not_the_spec(capsys, tmp_path, args, option):
    rc, out, err = run(capsys, "uncertainty", "--runs", "10", "--sobol", "0", "-q", "--out", tmp_path / "u", *args)
    assert rc == 2
    assert err == f"stability: error: option {option}: seed must be a whole number of 0 or more, got -1\n"
    assert not (tmp_path / "u").exists()


@pytest.mark.parametrize("args, expected", [
    (["--set", "rule=x"], "option --set rule: pca option 'rule' must be 'squared' or 'coinr', not 'x'"),
    (["--round", "9"], "option --round: no row of round 9 (rounds: 1, 2, 3)"),
])
def test_a_bad_weights_option_names_the_option(capsys, args, expected):
    rc, out, err = run(capsys, "weights", "--method", "pca", "-q", *args)
    assert rc == 2
    assert err == f"stability: error: {expected}\n"


# ============================================================================ 2. the coordinate at fault
def test_a_coordinate_message_names_the_column_at_fault(capsys, dataset_copy):
    d = dataset_copy
    d.set_cell(LOC, 4, "longitude", "2.5")  # in Niger: the latitude is right
    d.set_cell(LOC, 6, "latitude", "48.85")  # Paris: both are wrong
    d.set_cell(LOC, 6, "longitude", "2.35")
    rc, out, err = run(capsys, "validate", "--data", d.data, "--spec", d.spec)
    assert rc == 0, out + err
    outside = {int(re.search(r", row (\d+):", x).group(1)): x for x in out.splitlines() if "is outside Mali" in x}
    assert set(outside) == {4, 6}, out
    assert outside[4].startswith(f"warning: {d.data / LOC}, column 'longitude', row 4: ")
    assert outside[6].startswith(f"warning: {d.data / LOC}, columns 'latitude', 'longitude', row 6: ")


def test_swapped_coordinates_name_both_columns_also_as_an_error(capsys, dataset_copy):
    d = dataset_copy
    d.edit_spec("  pcodes: ocha", "  pcodes: ocha\n  coordinates: error")
    lon = d.set_cell(LOC, 5, "longitude", "x")
    lat = d.set_cell(LOC, 5, "latitude", lon)
    d.set_cell(LOC, 5, "longitude", lat)
    rc, out, err = run(capsys, "score", "-q", "--data", d.data, "--spec", d.spec, "--out", d.root / "out")
    assert rc == 2
    assert err.startswith(f"stability: error: {d.data / LOC}, columns 'latitude', 'longitude', row 5: "), err
    assert "look swapped" in err and not (d.root / "out").exists()


# ============================================================================ 3. warnings once, counted
def test_a_warning_about_one_file_named_two_ways_is_shown_once(capsys, tmp_path, monkeypatch):
    from stability import cli
    from stability.io import InputWarning

    monkeypatch.chdir(tmp_path)
    printer = cli._Warnings(warnings.showwarning)
    for name in ("w.csv", tmp_path / "w.csv"):
        message = InputWarning("decimal commas read as points in 2 cells", file=name)
        printer(message, InputWarning, __file__, 1)
    err = capsys.readouterr().err
    assert err == "stability: warning: w.csv: decimal commas read as points in 2 cells\n" and printer.count == 1


# ============================================================================ 4, 7. help texts
def test_uncertainty_help_says_the_sobol_default(capsys):
    text = help_text(capsys, "uncertainty")
    assert "default 64" in text and "whatever --runs says" in text


def test_help_texts_say_every_default(capsys):
    from stability.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():
        for action in p._actions:
            if action.option_strings and action.default not in (None, False, "==SUPPRESS==") and action.help:
                assert "default" in p.formatter_class(name)._get_help_string(action).lower(), (name, action.dest)


def test_report_help_lists_every_output(capsys):
    text = help_text(capsys, "report")
    for name in ("report.html", "report.ipynb", "rankings.xlsx", "map.html", "manifest.json", "index.html"):
        assert name in text, name


# ============================================================================ 5. typos in options
@pytest.mark.parametrize("args, usage, hint", [
    (["score", "--fromat", "csv"], "usage: stability score ", "; did you mean --format?"),
    (["uncertainty", "--sed", "3"], "usage: stability uncertainty ", "; did you mean --seed?"),
    (["audit", "--correlation", "kendall"], "usage: stability audit ", ""),
])
def test_a_typo_in_an_option_shows_the_subcommand_usage_and_the_closest_option(capsys, args, usage, hint):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert err.startswith(usage) and "usage: stability [-h] [--version]" not in err
    command = args[0]
    assert err.splitlines()[-1] == (f"stability {command}: error: unrecognized arguments: {' '.join(args[1:])}"
                                    + hint)


# ============================================================================ 6. rounds, regions, spec fields
def test_the_report_round_message_says_all_is_accepted():
    from stability.report.context import resolve_round

    with pytest.raises(ParameterError) as exc:
        resolve_round([1, 2, 3], "7", option="--round")
    assert str(exc.value) == "option --round: round '7' is not in the data; rounds: 1, 2, 3 (or 'latest', 'all')"


@pytest.mark.parametrize("typed, meant", [("ml05", "ML05 (Mopti)"), ("Mopti", "ML05 (Mopti)"),
                                          ("segou", "ML04 (Ségou)"), ("Tombouctu", "ML06 (Tombouctou)")])
def test_an_unknown_region_suggests_the_p_code(typed, meant):
    from stability.report.context import check_region

    regions = {"ML04": "Ségou", "ML05": "Mopti", "ML06": "Tombouctou"}
    with pytest.raises(ParameterError) as exc:
        check_region(regions, typed, option="--region")
    assert str(exc.value).startswith(f"option --region: unknown region '{typed}'; did you mean {meant}? Valid "
                                     "p-codes: ML04 (Ségou), ")


def test_a_p_code_is_never_guessed_from_a_similar_one():
    from stability.report.context import check_region

    with pytest.raises(ParameterError) as exc:
        check_region({"ML09": "Gao"}, "ML99", option="--region")
    assert str(exc.value) == "option --region: unknown region 'ML99'; valid p-codes: ML09 (Gao)"


def test_score_says_the_data_have_warnings_and_where_to_read_them(capsys, dataset_copy, tmp_path):
    """``stability score`` computes the index all the same, and says in one line on stderr (also with -q) how
    many rows have a validation warning and which command lists them; clean data: not a word."""
    d = dataset_copy
    rc, out, err = run(capsys, "score", "--data", d.data, "--spec", d.spec, "--out", tmp_path / "clean", "-q")
    assert rc == 0 and err == "", err
    d.set_cell(LOC, 4, "longitude", "2.5")
    rc, out, err = run(capsys, "score", "--data", d.data, "--spec", d.spec, "--out", tmp_path / "s", "-q")
    assert rc == 0 and (tmp_path / "s" / "scores.csv").is_file()
    assert err == (f"stability: warning: 1 row of the data has a warning (computed all the same); stability validate "
                   f"--data {d.data} --spec {d.spec} lists them\n"), err


@pytest.mark.parametrize("args, expected", [
    (["--method", "pca", "--set", "min_rows=1"], "option --set min_rows: Input should be greater than or equal to 2"),
    (["--method", "outcome", "--set", "outcome=stays_6_months", "--set", "alpha=2"],
     "option --set alpha: Input should be less than 1"),
])
def test_weights_refuses_the_option_values_a_spec_refuses(capsys, args, expected):
    rc, out, err = run(capsys, "weights", "-q", *args)
    assert rc == 2 and err == f"stability: error: {expected}\n", err


def test_validate_reports_a_reference_round_the_data_do_not_have(mali_data, mali_spec):
    """Rounds given as dates with the generated spec's reference round 1: validate said OK and score then failed.
    Validate lists it, naming the spec option and the data's rounds."""
    from stability.validate import validate

    report = validate(mali_data, mali_spec.with_changes({"normalise.reference_round": 7}))
    errors = [str(p) for p in report.errors]
    assert len(errors) == 1 and errors[0].endswith(
        "column 'round': the spec's normalise.reference_round is 7, a round not in the data (rounds: 1, 2, 3): "
        "set it to one of them"), errors
    assert not validate(mali_data, mali_spec).errors


def test_validate_warns_when_rounds_look_like_submission_dates(mali_data, mali_spec):
    """A KoBo export's submission date taken as the round makes dozens of one-day rounds of a few locations."""
    import dataclasses

    from stability.validate import validate

    answers = mali_data.answers.copy()
    month = {1: "2021-12", 2: "2022-03", 3: "2022-06"}
    answers["round"] = [f"{month[int(r)]}-{1 + i % 12:02d}" for i, r in enumerate(answers["round"])]
    data = dataclasses.replace(mali_data, answers=answers, population=None)
    spec = mali_spec.with_changes({"normalise.reference_round": "2021-12-01"})
    found = [str(p) for p in validate(data, spec).warnings if "each a day" in str(p)]
    assert len(found) == 1 and "36 rounds, each a day (3 months)" in found[0] and "'2021-12'" in found[0], found
    assert not [p for p in validate(mali_data, mali_spec).warnings if "each a day" in str(p)]


def test_validate_warns_of_a_dont_know_code_answered_as_a_number(mali_data, mali_spec):
    """999 for "don't know" in a count question was scored as 999 water points without a word."""
    import dataclasses

    from stability.validate import validate

    answers = mali_data.answers.copy()
    answers.loc[answers.index[:3], "water_points"] = 999
    found = [str(p) for p in validate(dataclasses.replace(mali_data, answers=answers), mali_spec).warnings
             if "don't know" in str(p)]
    assert len(found) == 3 and all("column 'water_points'" in x and "999 is far above the other answers" in x
                                   for x in found), found
    assert not [p for p in validate(mali_data, mali_spec).warnings if "don't know" in str(p)]
