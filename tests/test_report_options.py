"""Command-line options of the report runner: errors name the option, bad numbers are refused.

Every case here is refused before the index is computed or a kernel starts:
exit status 2, one line on stderr, nothing written.
"""

from __future__ import annotations

import re
import shlex

import pytest

from stability.cli import build_parser, main
from stability.exceptions import ParameterError
from stability.paths import PROJECT_ROOT


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_parameter_errors_name_the_option():
    assert str(ParameterError("bad value", option="--jobs")) == "option --jobs: bad value"
    assert str(ParameterError("bad value")) == "bad value"
    assert str(ParameterError("bad value", column="x")) == "column 'x': bad value"


@pytest.mark.parametrize("args, option", [
    (["--jobs", "0"], "--jobs"),
    (["--jobs", "-1"], "--jobs"),
    (["--jobs", "two"], "--jobs"),
    (["--timeout", "0"], "--timeout"),
    (["--timeout", "-1"], "--timeout"),
    (["--retries", "-1"], "--retries"),
    (["--round", "9"], "--round"),
    (["--region", "ML99"], "--region"),
    (["--templates", "/nonexistent/notebooks"], "--templates"),
    (["--uncertainty", "1"], "--uncertainty"),
    (["--uncertainty", "-5"], "--uncertainty"),
    (["--uncertainty", "/nonexistent/run"], "--uncertainty"),
])
def test_bad_report_options_are_refused_in_one_line(tmp_path, capsys, args, option):
    out = tmp_path / "out"
    which = [] if "--region" in args else ["--region", "ML05"]
    code, stdout, err = run(capsys, "report", *which, *args, "--out", out)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"stability: error: option {option}: "), err
    assert stdout == ""
    assert not out.exists()


def test_an_output_folder_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "reports"
    target.write_text("a file")
    code, _, err = run(capsys, "report", "--region", "ML05", "--out", target)
    assert code == 2
    assert err.strip() == f"stability: error: option --out: '{target}' is a file, not an output folder"
    assert target.read_text() == "a file"


def test_score_options_are_named_too(tmp_path, capsys):
    code, _, err = run(capsys, "score", "-q", "--out", tmp_path / "o", "--format", "csv,pdf")
    assert code == 2 and err.startswith("stability: error: option --format: unknown format 'pdf'")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("kwargs, option", [
    ({"workers": 0}, "--jobs"), ({"timeout": 0}, "--timeout"), ({"retries": -1}, "--retries"),
])
def test_the_python_api_refuses_the_same_numbers(tmp_path, kwargs, option):
    from stability.report.runner import build_reports

    with pytest.raises(ParameterError, match=f"^option {option}: "):
        build_reports(region="ML05", out_root=tmp_path / "out", progress=False, **kwargs)
    assert not (tmp_path / "out").exists()


def test_the_readme_cron_line_uses_options_that_exist():
    """The scheduled rebuild in the README resumes, keeps failures in the log, and parses."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```cron\n(.+?)\n```", readme, re.S).group(1)
    (line,) = [ln for ln in block.splitlines() if ln.strip() and not ln.startswith("#")]
    assert re.search(r">> \S+ 2>&1\s*$", line), "stdout and stderr of the whole run go to the log"
    commands = [c.strip() for c in re.split(r"&&|;|\{|\}", line.split(">>")[0])]
    stability = [shlex.split(c) for c in commands if ".venv/bin/stability" in c]
    assert any(words[1] == "report" and "--resume" in words for words in stability)
    parser = build_parser()
    for words in stability:
        assert words[0] == ".venv/bin/stability"
        args = parser.parse_args(words[1:])  # argparse exits (SystemExit) on an unknown option
        assert args.func is not None
    assert "make -s compile" in line  # a Makefile target: creates or refreshes .venv
    assert re.search(r"^compile:", (PROJECT_ROOT / "Makefile").read_text(), re.M)
