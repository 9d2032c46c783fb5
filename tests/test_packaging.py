"""Packaging: declared dependencies agree with environment.yml and the lock file, importing is
cheap, the console script is installed, and a wheel installed outside the repository works."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.markers import Marker
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"
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


# --------------------------------------------------------------------------------------------
# the lock file: exact pins that `make demo` / `make test` install
# --------------------------------------------------------------------------------------------

LOCK_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)\s*(?:;\s*(.*))?$")


def locked() -> dict[str, list[tuple[str, str | None]]]:
    """Normalised name -> [(pinned version, environment marker or None), ...] from the lock file."""
    out: dict[str, list[tuple[str, str | None]]] = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = LOCK_LINE.match(line.strip())
        assert m, f"{LOCK.name}: cannot read {line!r}"
        name = re.sub(r"[-_.]+", "-", m.group(1)).lower()
        out.setdefault(name, []).append((m.group(2), m.group(3)))
    return out


def test_lock_file_pins_every_dependency_at_or_above_its_lower_bound():
    pins = locked()
    missing = sorted(set(pyproject_requirements()) - set(pins))
    assert missing == [], f"not in {LOCK.relative_to(ROOT)}: {missing} (run `make lock`)"
    below = {name: [v for v, _ in pins[name] if Version(v) < Version(lower)]
             for name, lower in pyproject_requirements().items()}
    assert {n: v for n, v in below.items() if v} == {}, "pins below pyproject's lower bounds (run `make lock`)"


def test_lock_file_covers_python_311_on_linux():
    """Every locked package has exactly one pin for the Python and platform of the CI machine."""
    env = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux",
           "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
           "platform_python_implementation": "CPython", "os_name": "posix"}
    for name in pyproject_requirements():
        applies = [v for v, marker in locked()[name] if marker is None or Marker(marker).evaluate(env)]
        assert len(applies) == 1, (name, applies)


def test_lock_file_says_how_to_update_it_and_make_installs_from_it():
    assert "make lock" in LOCK.read_text(encoding="utf-8").split("\n", 3)[1]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^LOCK\s*:=\s*requirements/lock.txt$", makefile, re.M)
    assert re.search(r"^\$\(STAMP\):.*\$\(LOCK\)", makefile, re.M), "the install stamp must depend on the lock"
    assert makefile.count("-c $(LOCK) -e '.[dev]'") == 2, "uv and pip must both install from the lock"
    assert re.search(r"^lock:", makefile, re.M)


def test_every_subpackage_is_packaged():
    """pyproject lists the packages (the embedded data are mapped in), so a new subpackage must be added there."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "stability").rglob("__init__.py")}
    assert sorted(found - listed) == [], "subpackages missing from [tool.setuptools] packages in pyproject.toml"


def test_build_backend_agrees_with_the_dev_extra():
    """The wheel test builds without isolation, with the setuptools of the dev extra."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    backend = dict(parse(r) for r in config["build-system"]["requires"])
    assert backend["setuptools"] == pyproject_requirements()["setuptools"]


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


# --------------------------------------------------------------------------------------------
# a wheel installed into a fresh virtual environment, run from an empty folder
# --------------------------------------------------------------------------------------------

#: What a wheel must carry from the repository, as package data under stability/_embedded/.
EMBEDDED = ["data/specs/*.yaml", "data/raw/mali_illustrative/*", "data/raw/liptako_gourma_illustrative/*",
            "data/external/geo/*", "data/external/asem/*", "notebooks/*.ipynb"]
#: Not needed to build the wheel (and large or changing while the tests run).
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "reports", "test-artifacts", "build", "dist", "*.egg-info",
                                    "__pycache__", "*.pyc", ".pytest_cache", ".hypothesis", ".ruff_cache",
                                    ".ipynb_checkpoints")


def _run(cmd: list, cwd: Path, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def build_wheel(work: Path) -> Path:
    """Build the wheel from a copy of the checkout (the build writes build/ and *.egg-info beside the sources).

    No build isolation: the dev extra installs the build backend, so nothing is downloaded.
    """
    src, dist = work / "src", work / "dist"
    shutil.copytree(ROOT, src, ignore=NOT_COPIED)
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv:
        _run([uv, "build", "--quiet", "--wheel", "--no-build-isolation", "--python", sys.executable,
              "--out-dir", dist, src], cwd=work)
    else:
        _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", dist,
              src], cwd=work)
    wheels = list(dist.glob("stability-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def install_wheel(wheel: Path, venv: Path) -> Path:
    """A new virtual environment with the wheel and its dependencies at the versions of the lock file.

    uv installs from its cache (filled by `make`), which takes seconds; pip is the fallback.
    """
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv:
        _run([uv, "venv", "--quiet", "--python", sys.executable, venv], cwd=venv.parent)
        _run([uv, "pip", "install", "--quiet", "--python", venv / "bin" / "python", "-c", LOCK, wheel],
             cwd=venv.parent)
    else:
        _run([sys.executable, "-m", "venv", venv], cwd=venv.parent)
        _run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", "-c", LOCK, wheel], cwd=venv.parent)
    return venv / "bin"


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, mtime) of every file under folder, bytecode caches excepted."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.slow
def test_wheel_installed_outside_the_repository_validates_scores_and_reports(tmp_path):
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        shipped = set(zf.namelist())
    wanted = sorted(p.relative_to(ROOT).as_posix() for pattern in EMBEDDED for p in ROOT.glob(pattern)
                    if p.is_file())
    assert wanted and [w for w in wanted if f"stability/_embedded/{w}" not in shipped] == []
    assert "stability/report/templates/stability_report/index.html.j2" in shipped

    bin_dir = install_wheel(wheel, tmp_path / "venv")
    here = tmp_path / "empty"
    here.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STABILITY_", "PYTHON", "VIRTUAL_ENV", "JUPYTER", "UV_"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["MPLBACKEND"] = "Agg"
    # A throwaway environment: let Python cache the bytecode of what is imported rather than
    # compiling every installed package up front (PYTHONDONTWRITEBYTECODE is dropped above).

    probe = _run([bin_dir / "python", "-c", "import json, stability, stability.paths as p; print(json.dumps("
                  "[stability.__file__, str(p.checkout_root()), str(p.data_dir()), str(p.notebooks_dir()), "
                  "str(p.reports_dir())]))"], cwd=here, env=env)
    package, checkout, data, notebooks, reports = json.loads(probe.stdout)
    site = Path(package).parent
    assert not Path(package).is_relative_to(ROOT) and checkout == "None"
    assert Path(data) == site / "_embedded" / "data" and Path(notebooks) == site / "_embedded" / "notebooks"
    assert Path(reports) == here / "reports"
    installed = tree(site)

    done = _run([bin_dir / "stability", "validate"], cwd=here, env=env)
    assert done.stdout.startswith("OK: ") and "[illustrative data]" in done.stdout

    _run([bin_dir / "stability", "score", "--out", "scores", "-q"], cwd=here, env=env)
    for name in ("scores.csv", "scores.parquet", "scores.xlsx", "locations.gpkg", "audit_log.csv"):
        assert (here / "scores" / name).stat().st_size > 0, name
    assert (here / "scores" / "scores.csv").read_text(encoding="utf-8").count("\n") > 1000

    # the uncertainty run goes to ./reports/uncertainty, where the report finds it
    _run([bin_dir / "stability", "uncertainty", "--runs", "10", "--sobol", "4", "-q"], cwd=here, env=env)
    assert (here / "reports" / "uncertainty" / "manifest.json").is_file()
    _run([bin_dir / "stability", "report", "--region", "ML05", "--round", "latest", "--out", "out", "-q"],
         cwd=here, env=env)
    report = here / "out" / "3" / "ML05" / "report.html"
    assert report.stat().st_size > 50_000
    text = report.read_text(encoding="utf-8")
    assert "Mopti" in text and "Rank interval (90" in text
    assert (here / "out" / "3" / "index.html").is_file()

    assert sorted(p.name for p in here.iterdir()) == ["out", "reports", "scores"], "wrote outside the output folders"
    assert tree(site) == installed, "the commands changed the installed package"
