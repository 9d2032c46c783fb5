"""The README's examples work as written.

Every ```python block runs in a Python subprocess, and every ```bash / ```sh block runs
as a bash script (``set -euo pipefail``), each in a fresh temporary copy of the
repository, with ``.venv/bin`` first on ``PATH`` and the copy's package imported
(so default outputs land in the copy's ``reports/``, never in the checkout, and
``data/raw`` is never touched).  The placeholders of the "bring your own survey"
example exist in the copy: ``my_survey/`` is the embedded survey and
``my_spec.yaml`` the Mali spec.

A block that cannot run here is marked on the line before it, visibly in the source:

    <!-- illustrative: why it is not run -->

and is reported as skipped with that reason.  Blocks in other languages (```cron,
```yaml, plain ```) are illustrative by nature and not collected.  An unmarked block
that cannot run here (``make demo`` and ``make test`` set up the environment and run
this very suite; installers change the environment the tests run in) fails.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

LANGUAGES = {"python": "python", "py": "python", "bash": "shell", "sh": "shell", "shell": "shell"}
MARKER = re.compile(r"^\s*<!--\s*illustrative\s*:(.*?)-->\s*$")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^`\s]*)")
#: Commands a README block must not run here, and why.
REFUSED = {
    "make": "make sets up .venv and runs the demo, the tests or the benchmarks",
    "pip": "installing would change the environment the tests run in",
    "pip3": "installing would change the environment the tests run in",
    "uv": "installing would change the environment the tests run in",
    "conda": "installing would change the environment the tests run in",
    "mamba": "installing would change the environment the tests run in",
    "apt-get": "installing would change the machine",
    "apt": "installing would change the machine",
    "sudo": "needs administrator rights",
    "git": "changes the repository",
}
#: Names the README uses for the reader's own files, and what stands in for them.
PLACEHOLDERS = {"my_survey": "data/raw/mali_illustrative", "my_spec.yaml": "data/specs/mali.yaml"}
#: Not copied into the workspace (generated, large, or the environment itself).
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "reports", "test-artifacts", "build", "dist", "*.egg-info",
                                    ".pytest_cache", ".hypothesis", ".ruff_cache", ".ipynb_checkpoints")


@dataclass(frozen=True)
class Block:
    line: int              # README line of the opening fence
    language: str          # "python" or "shell"
    code: str
    section: str
    illustrative: str | None   # the marker's reason, or None when the block runs

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.section.lower()).strip("-") or "top"
        return f"{slug}:{self.language}@L{self.line}"


def parse(text: str) -> tuple[list[Block], list[int]]:
    """The README's Python and shell blocks, and the lines of markers not followed by a block."""
    lines = text.splitlines()
    blocks, orphans = [], []
    section, pending, i = "", None, 0
    while i < len(lines):
        line = lines[i]
        fence = FENCE.match(line)
        if fence:
            indent, ticks, info = fence.groups()
            body, j = [], i + 1
            while j < len(lines) and not lines[j].strip().startswith(ticks):
                body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
                j += 1
            language = LANGUAGES.get(info.lower())
            if language:
                reason = pending[1] if pending else None
                blocks.append(Block(i + 1, language, "\n".join(body) + "\n", section, reason))
            pending, i = None, j + 1
            continue
        marker = MARKER.match(line)
        if marker:
            if pending:
                orphans.append(pending[0])
            pending = (i + 1, marker.group(1).strip())
        elif line.strip():
            if pending:
                orphans.append(pending[0])
                pending = None
            if line.startswith("#"):
                section = line.lstrip("#").strip()
        i += 1
    if pending:
        orphans.append(pending[0])
    return blocks, orphans


BLOCKS, ORPHANS = parse(README.read_text(encoding="utf-8"))


def commands(script: str) -> list[list[str]]:
    """The commands of a shell block, one word list each (comments dropped, continuations joined)."""
    out = []
    for line in script.replace("\\\n", " ").splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line)
        for part in re.split(r"&&|\|\||;|\||&", line):
            try:
                words = shlex.split(part)
            except ValueError:  # a quote spanning separators: good enough to find the program
                words = part.split()
            if words:
                out.append(words)
    return out


def unrunnable(block: Block) -> str | None:
    """Why an unmarked block cannot run here, or None."""
    if block.language != "shell":
        return None
    for words in commands(block.code):
        program = Path(words[0]).name
        if program in REFUSED:
            return f"`{' '.join(words)}`: {REFUSED[program]}"
    return None


def workspace(tmp_path: Path) -> tuple[Path, dict]:
    """A temporary copy of the repository to run a block in, and the environment to run it with."""
    work = tmp_path / "repo"
    shutil.copytree(ROOT, work, ignore=NOT_COPIED, symlinks=True)
    (work / "reports").mkdir()
    if (ROOT / ".venv").is_dir():
        (work / ".venv").symlink_to(ROOT / ".venv", target_is_directory=True)
    for name, source in PLACEHOLDERS.items():
        src = work / source
        if src.is_dir():
            shutil.copytree(src, work / name)
        else:
            shutil.copy2(src, work / name)
    bins = [str(ROOT / ".venv" / "bin")] if (ROOT / ".venv" / "bin").is_dir() else []
    bins.append(str(Path(sys.executable).parent))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STABILITY_")}
    env.update(PATH=os.pathsep.join([*bins, env.get("PATH", "")]), PYTHONPATH=str(work), MPLBACKEND="Agg")
    return work, env


def numbered(code: str) -> str:
    return "\n".join(f"{n:3d}  {line}" for n, line in enumerate(code.splitlines(), 1))


def test_the_readme_has_examples_to_run():
    running = {b.language for b in BLOCKS if b.illustrative is None}
    assert running == {"python", "shell"}, "no Python or shell example would run: is the parser still right?"


def test_every_illustrative_marker_precedes_a_block_and_gives_a_reason():
    assert ORPHANS == [], f"README.md lines {ORPHANS}: an illustrative marker not followed by a code block"
    assert [b.line for b in BLOCKS if b.illustrative == ""] == [], "an illustrative marker without a reason"


@pytest.mark.parametrize("block", [
    pytest.param(b, id=b.id, marks=[pytest.mark.slow] if b.language == "shell" and not b.illustrative else [])
    for b in BLOCKS])
def test_readme_block(block: Block, tmp_path):
    where = f"README.md line {block.line} ({block.section})"
    if block.illustrative:
        pytest.skip(f"{where}: illustrative: {block.illustrative}")
    why = unrunnable(block)
    assert why is None, (f"{where}: {why}. Make it runnable, or mark it on the line before the block with "
                         f"<!-- illustrative: reason -->")
    work, env = workspace(tmp_path)
    if block.language == "python":
        cmd, stdin = [sys.executable, "-"], block.code
    else:
        cmd, stdin = ["bash", "-euo", "pipefail", "-c", block.code], None
    done = subprocess.run(cmd, input=stdin, cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (f"{where} failed (exit {done.returncode}):\n{numbered(block.code)}\n"
                                  f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-5000:]}")
    assert files(work / "data" / "raw") == files(ROOT / "data" / "raw"), f"{where} changed data/raw"


def files(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------------------------
# the parser itself
# --------------------------------------------------------------------------------------------

SAMPLE = """# Title

## Setup

<!-- illustrative: sets up the environment -->
```bash
make demo
```

```python
print(1)
```

```yaml
a: 1
```

<!-- illustrative: dangling -->
Some text.

## Use

```sh
stability validate   # comment; not a command
stability score --out x \\
  --format csv && ls x
```
"""


def test_parser_finds_blocks_markers_and_sections():
    blocks, orphans = parse(SAMPLE)
    assert [(b.line, b.language, b.section, b.illustrative) for b in blocks] == [
        (6, "shell", "Setup", "sets up the environment"), (10, "python", "Setup", None), (23, "shell", "Use", None)]
    assert orphans == [18]
    assert blocks[1].code == "print(1)\n"
    assert commands(blocks[2].code) == [["stability", "validate"], ["stability", "score", "--out", "x", "--format",
                                                                     "csv"], ["ls", "x"]]
    assert unrunnable(blocks[0]) and unrunnable(blocks[2]) is None
    assert blocks[0].id == "setup:shell@L6"
