"""Where the embedded data, the report notebooks and the default outputs live.

The toolkit runs either from a repository checkout (including an editable install)
or as an installed package:

* in a checkout, the embedded survey, the Mali spec and the third-party data are the
  repository's ``data/`` folder, the report notebooks its ``notebooks/`` folder, and
  outputs go to its ``reports/`` folder;
* an installed wheel carries the same ``data/`` and ``notebooks/`` folders as package
  data in ``stability/_embedded/``, and outputs go to ``./reports`` in the current
  directory (never inside the installation).

``STABILITY_DATA_DIR`` points the toolkit at another copy of the ``data/`` folder.
The embedded survey is read, never written.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: The folder holding the package: the repository in a checkout, site-packages when installed.
PROJECT_ROOT = PACKAGE_DIR.parent
#: Package data of an installed wheel (``data/`` and ``notebooks/``); absent in a checkout.
EMBEDDED_DIR = PACKAGE_DIR / "_embedded"


def checkout_root() -> Path | None:
    """The repository the package runs from, or None for an installed package."""
    if EMBEDDED_DIR.is_dir():
        return None
    if (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "data").is_dir():
        return PROJECT_ROOT
    return None


def _embedded(name: str) -> Path:
    root = checkout_root()
    return root / name if root is not None else EMBEDDED_DIR / name


def data_dir() -> Path:
    """The data folder: ``$STABILITY_DATA_DIR``, else the checkout's ``data/``, else the installed copy."""
    env = os.environ.get("STABILITY_DATA_DIR")
    return Path(env) if env else _embedded("data")


def geo_dir() -> Path:
    """Folder of the embedded boundaries, p-codes, localities and population tables."""
    return data_dir() / "external" / "geo"


def asem_dir() -> Path:
    """Folder of COINr's ASEM example (iData/iMeta), the reference test case."""
    return data_dir() / "external" / "asem"


def default_dataset() -> Path:
    """Folder of the embedded illustrative Mali key-informant survey."""
    return data_dir() / "raw" / "mali_illustrative"


def default_spec() -> Path:
    """The Mali stability-index specification."""
    return data_dir() / "specs" / "mali.yaml"


def notebooks_dir() -> Path:
    """Folder of the parameterised report notebooks."""
    return _embedded("notebooks")


def reports_dir() -> Path:
    """Default output folder: ``<checkout>/reports``, or ``./reports`` for an installed package."""
    root = checkout_root()
    return root / "reports" if root is not None else Path.cwd() / "reports"
