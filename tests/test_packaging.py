"""Packaging: declared dependencies agree, importing is cheap, the console script is installed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*?)\s*$")


def parse(requirement: str) -> tuple[str, str | None]:
    """(normalised name, lower bound or None) of a requirement such as ``pandas>=2.2,<3``."""
    m = REQUIREMENT.match(requirement)
    assert m, requirement
    name = re.sub(r"[-_.]+", "-", m.group(1)).lower()
    lower = None
    for part in filter(None, (p.strip() for p in m.group(2).split(","))):
        op = re.match(r"(>=|==|~=|>|<=|<|!=|=)\s*(\S+)", part)
        assert op, f"cannot read the version constraint of {requirement!r}"
        if op.group(1) in (">=", "==", "~=", "=", ">"):
            lower = op.group(2)
    return name, lower


def pyproject_requirements() -> dict[str, str | None]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = list(project["dependencies"]) + list(project.get("optional-dependencies", {}).get("dev", []))
    parsed = [parse(r) for r in reqs]
    names = [n for n, _ in parsed]
    assert len(names) == len(set(names)), "a package is listed twice in pyproject.toml"
    return dict(parsed)


def conda_requirements() -> dict[str, str | None]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    out = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):          # the "pip:" section installs the project itself
            continue
        name, lower = parse(dep.replace(" ", ""))
        if name in ("python", "pip"):
            continue
        assert name not in out, f"{name} listed twice in environment.yml"
        out[name] = lower
    return out


def test_environment_and_pyproject_declare_the_same_dependencies():
    pip, conda = pyproject_requirements(), conda_requirements()
    assert sorted(set(pip) - set(conda)) == [], "in pyproject.toml but not in environment.yml"
    assert sorted(set(conda) - set(pip)) == [], "in environment.yml but not in pyproject.toml"
    differ = {n: (pip[n], conda[n]) for n in pip if pip[n] != conda[n]}
    assert differ == {}, "lower bounds differ (pyproject, environment.yml)"


def test_every_dependency_has_a_lower_bound():
    assert [n for n, lower in pyproject_requirements().items() if lower is None] == []


def test_python_version_agrees():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    conda_python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert parse(conda_python)[1] == project["requires-python"].removeprefix(">=")


def test_the_environment_installs_the_project_itself():
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert any(re.fullmatch(r"(-e|--editable)\s+\.(\[dev\])?", p.strip()) for p in pip)


@pytest.mark.parametrize("requirement, expected", [
    ("pandas>=2.2", ("pandas", "2.2")),
    ("scikit_learn >= 1.4, <2", ("scikit-learn", "1.4")),
    ("PyYAML", ("pyyaml", None)),
    ("pytest_xdist[psutil] >=3.5", ("pytest-xdist", "3.5")),
])
def test_requirement_parser(requirement, expected):
    assert parse(requirement) == expected


HEAVY = ["pandas", "geopandas", "matplotlib", "papermill", "scipy", "pyarrow", "sklearn", "statsmodels"]


def imported_modules(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    return set(json.loads(p.stdout.strip().splitlines()[-1]))


def test_importing_the_package_is_cheap():
    mods = imported_modules("import stability\nassert stability.__version__")
    loaded = sorted(m for m in HEAVY if m in mods)
    assert loaded == [], f"'import stability' loads {', '.join(loaded)}"


def test_loading_a_spec_does_not_import_geo_or_plotting_libraries():
    mods = imported_modules("import stability\nstability.load_spec")
    assert "stability.spec" in mods
    assert not {"geopandas", "matplotlib", "papermill"} & mods


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "stability"
    assert script.is_file(), script
    p = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0
    from stability import __version__

    assert p.stdout.strip() == f"stability {__version__}"


def test_console_script_entry_point_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["scripts"] == {"stability": "stability.cli:main"}


def test_python_dash_m_runs_the_command_line():
    p = subprocess.run([sys.executable, "-m", "stability", "--help"], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
    assert p.returncode == 0 and p.stdout.startswith("usage: stability")
