"""Where the embedded data lives.

The toolkit ships its default data beside the package, in the project's ``data/``
folder.  ``STABILITY_DATA_DIR`` points the toolkit at another copy of that folder
(for example when the package is installed without the repository).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent


def data_dir() -> Path:
    """Return the data folder (``$STABILITY_DATA_DIR`` or ``<project>/data``)."""
    env = os.environ.get("STABILITY_DATA_DIR")
    return Path(env) if env else PROJECT_ROOT / "data"


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
    return PROJECT_ROOT / "notebooks"


def reports_dir() -> Path:
    """Default output folder for generated tables and reports."""
    return PROJECT_ROOT / "reports"
