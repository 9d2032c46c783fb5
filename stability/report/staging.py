"""Staging folders: build a report's files aside, then publish them as a whole.

A report is built in a private folder, ``<round folder>/.staging/<name>.<id>``,
and only when everything it holds is final does :func:`publish_folder` put it
in place of ``<round folder>/<name>``, replacing the earlier folder as a whole.
A reader (or the round's ``index.html``) therefore never sees the outputs of
two runs side by side, nor a half-written report.

On Linux the two folders are exchanged in one atomic step (``renameat2`` with
``RENAME_EXCHANGE``); elsewhere, or on a file system without it, the earlier
folder is moved aside and the new one renamed into place right after it.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

from ..io import current_umask

#: Name of the folder, inside a round's folder, that holds reports being built.
STAGING = ".staging"

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def new_staging(dest: str | Path) -> Path:
    """A new, empty staging folder for ``dest`` (on the same file system, so that it can be renamed)."""
    dest = Path(dest)
    root = dest.parent / STAGING
    for attempt in range(5):
        root.mkdir(parents=True, exist_ok=True)
        try:
            return Path(tempfile.mkdtemp(prefix=f"{dest.name}.", dir=root))
        except FileNotFoundError:  # another run removed the empty staging root in between
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def is_staging(folder: str | Path) -> bool:
    """True for a folder made by :func:`new_staging`."""
    return Path(folder).parent.name == STAGING


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically; False when the platform or file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def publish_folder(staging: str | Path, dest: str | Path) -> Path:
    """Put the finished ``staging`` folder in place of ``dest``, replacing whatever ``dest`` held.

    Returns
    -------
    Path
        ``dest``.  The earlier contents of ``dest`` are deleted; ``staging`` no
        longer exists.
    """
    staging, dest = Path(staging), Path(dest)
    os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes folders readable by their owner only
    if not dest.exists():
        try:
            os.rename(staging, dest)
            _tidy(staging.parent)
            return dest
        except OSError:
            if not dest.exists():
                raise
    if _exchange(staging, dest):
        shutil.rmtree(staging, ignore_errors=True)  # now holds the earlier contents
    else:
        old = staging.parent / f"{dest.name}.old.{uuid.uuid4().hex[:12]}"
        os.rename(dest, old)
        try:
            os.rename(staging, dest)
        except OSError:
            os.rename(old, dest)
            raise
        shutil.rmtree(old, ignore_errors=True)
    _tidy(staging.parent)
    return dest


def discard(staging: str | Path) -> None:
    """Delete a staging folder that will not be published."""
    staging = Path(staging)
    shutil.rmtree(staging, ignore_errors=True)
    _tidy(staging.parent)


def _tidy(root: Path) -> None:
    """Remove the staging root when no report is being built in it."""
    try:
        root.rmdir()
    except OSError:
        pass

