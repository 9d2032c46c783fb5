"""The report layer uses only public members: of ``Result``, and of each other's modules.

An AST scan of ``stability/report/*.py`` and of the code cells of the report
notebooks: no ``x._private`` (other than ``self``/``cls``/``super()``), no
``.prepared`` (the pipeline's internal input stage), no ``from m import _private``
and no ``getattr(x, "_private")``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

from stability.paths import PACKAGE_DIR, PROJECT_ROOT

#: Private names of the standard library that are the documented way to do something.
ALLOWED = {"os._exit"}
#: The private jupyter_client hook that kernels.py overrides on purpose (it falls back when it changes).
OVERRIDDEN = {"_async_pre_start_kernel"}


def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(source: str, where: str) -> list[str]:
    """``where:line: what`` for every use of a private member of another object or module."""
    found = []
    for node in ast.walk(ast.parse(source)):
        line = f"{where}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Attribute):
            if node.attr == "prepared":
                found.append(f"{line}: .prepared ({_dotted(node)})")
            elif _private(node.attr):
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                    continue
                if isinstance(owner, ast.Call) and _dotted(owner.func) == "super" and node.attr in OVERRIDDEN:
                    continue
                if _dotted(node) in ALLOWED:
                    continue
                found.append(f"{line}: {_dotted(node) or '...' + '.' + node.attr}")
        elif isinstance(node, ast.ImportFrom):
            found += [f"{line}: from {node.module} import {a.name}" for a in node.names if _private(a.name)]
        elif isinstance(node, ast.Call) and _dotted(node.func) in ("getattr", "setattr", "hasattr"):
            args = node.args
            if len(args) > 1 and isinstance(args[1], ast.Constant) and isinstance(args[1].value, str) \
                    and _private(args[1].value):
                found.append(f"{line}: {_dotted(node.func)}(..., {args[1].value!r})")
    return found


def report_sources():
    for path in sorted((PACKAGE_DIR / "report").glob("*.py")):
        yield str(path.relative_to(PROJECT_ROOT)), path.read_text(encoding="utf-8")
    for path in sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb")):
        book = nbformat.read(path, as_version=4)
        code = "\n".join(c.source for c in book.cells if c.cell_type == "code")
        yield str(path.relative_to(PROJECT_ROOT)), code


@pytest.mark.parametrize("snippet", [
    "result._data = None",
    "ctx.result._scores",
    "src = ctx.result.prepared.source",
    "flags = result.prepared.combined.flagged",
    "content._num(x)",
    "from .content import _admin_cols",
    "getattr(result, '_logs')",
])
def test_the_scan_finds_private_uses(snippet):
    assert private_uses(snippet, "snippet")


def test_the_scan_allows_own_members_and_public_api():
    code = "self._x = 1\nresult.without_answers()\nresult.source['name']\ncontent.number(1.0)\nos._exit(0)\n"
    assert private_uses(code, "snippet") == []


def test_report_layer_uses_only_public_members():
    found = [use for where, source in report_sources() for use in private_uses(source, where)]
    assert found == []


def test_report_sources_are_scanned():
    names = {Path(w).name for w, _ in report_sources()}
    assert {"content.py", "figures.py", "context.py", "index.py", "notebook.py", "regional_report.ipynb",
            "country_overview.ipynb"} <= names
