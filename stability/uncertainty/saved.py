"""Saved runs: :func:`save_run` writes an analysis to a folder, :func:`load_run` reads it back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..exceptions import ParameterError
from .results import UncertaintyResult
from .sobol import FACTOR_LABELS

# --------------------------------------------------------------------------- saved runs
MANIFEST = "manifest.json"
#: Formats :func:`save_run` writes (Parquet always: :func:`load_run` reads it).
RUN_FORMATS = ("csv", "parquet", "xlsx")
#: Every file :func:`save_run` may write (besides the manifest): what it removes from a folder without a manifest.
RUN_FILES = ("uncertainty.xlsx", "sensitivity.csv", "sensitivity.parquet", "sensitivity.png",
             *(f"uncertainty{part}.{fmt}" for fmt in ("csv", "parquet") for part in ("", ".summary", ".runs", ".notes")))


def save_run(run: UncertaintyResult, folder: str | Path, formats: Sequence[str] = RUN_FORMATS) -> list[Path]:
    """Write an analysis to ``folder``: its tables, the Sobol table and chart, and a manifest.

    ``uncertainty.<format>`` (+ ``.summary``, ``.runs``, ``.notes`` beside it for CSV and
    Parquet; one workbook for ``xlsx``), ``sensitivity.csv`` and ``sensitivity.png`` when there
    are Sobol indices, and ``manifest.json`` (spec hash, data version, runs, seed, sources, the
    files), written last: a folder with a manifest holds a complete run.  Parquet is always
    written (it is what :func:`load_run` reads).

    A saved run is a set (:func:`stability.io.write_set`): the files of the folder's previous run
    (those its manifest lists) that this one does not write, such as its ``sensitivity.*`` when this
    run has no Sobol indices or its workbook when this one writes CSV only, are removed once the new
    files and manifest are in place.

    Returns
    -------
    list of Path
    """
    from ..io import to_csv, write_set

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ParameterError(f"'{folder}' is a file, not an output folder")
    formats = list(dict.fromkeys([*formats, "parquet"]))
    bad = [f for f in formats if f not in RUN_FORMATS]
    if bad:
        raise ParameterError(f"unknown format '{bad[0]}' (choose from {', '.join(RUN_FORMATS)})")

    def write(stage: Path) -> list[Path]:
        files: list[Path] = []
        for fmt in formats:
            files += run.write(stage / f"uncertainty.{fmt}")
        if run.sensitivity is not None:
            to_csv(run.sensitivity, stage / "sensitivity.csv")
            run.sensitivity.to_parquet(stage / "sensitivity.parquet", index=False)
            _save_chart(run, stage / "sensitivity.png")
            files += [stage / f"sensitivity.{ext}" for ext in ("csv", "parquet", "png")]
        return files

    summary = run.summary
    manifest = {"spec_hash": run.spec_hash, "data_version": run.data_version,
                "runs": int(summary["runs"].iloc[0]) if len(summary) else 0,
                "seed": int(summary["seed"].iloc[0]) if len(summary) else None,
                "sources": str(summary["sources"].iloc[0]) if len(summary) else "",
                "rounds": [str(r) for r in summary["round"]] if "round" in summary else [],
                "illustrative": bool(run.illustrative)}
    return write_set(folder, write, known=RUN_FILES, manifest=MANIFEST, meta=manifest)


def _save_chart(run: UncertaintyResult, path: Path) -> None:
    from ..sensitivity import chart

    outputs = list(dict.fromkeys(run.sensitivity["output"]))
    shift = [o for o in outputs if o.startswith("rank_shift:")]
    output = shift[-1] if shift else outputs[0]
    fig = chart(run.sensitivity, output, labels=FACTOR_LABELS,
                output_label=f"the ranking (round {output.split(':', 1)[1]})" if shift else None)
    fig.savefig(path, dpi=110)


def load_run(folder: str | Path) -> UncertaintyResult:
    """An analysis written by :func:`save_run` (tables and Sobol indices; not the replicates).

    Only the files its manifest lists are read: a ``sensitivity.parquet`` beside them that the
    manifest does not list (left by another run) is not this run's.

    Raises
    ------
    DataError
        One line when the folder holds no complete run.
    """
    from ..exceptions import DataError

    folder = Path(folder)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise DataError(f"no uncertainty run in '{folder}' (no {MANIFEST}: write one with stability uncertainty)")
    try:
        meta = json.loads(manifest.read_text(encoding="utf-8"))
        frames = {name: pd.read_parquet(folder / ("uncertainty.parquet" if name == "locations"
                                                  else f"uncertainty.{name}.parquet"))
                  for name in ("locations", "summary", "runs", "notes")}
        listed = meta.get("files") if isinstance(meta, dict) else None
        if not isinstance(listed, list):
            raise ValueError(f"{MANIFEST} lists no files")
        sensitivity = pd.read_parquet(folder / "sensitivity.parquet") if "sensitivity.parquet" in listed else None
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"the uncertainty run in '{folder}' cannot be read: {exc}") from None
    frames = {k: v.drop(columns="data_note") if "data_note" in v.columns else v for k, v in frames.items()}
    return UncertaintyResult(frames["locations"], frames["summary"], frames["runs"], [], {}, meta["spec_hash"],
                             meta["data_version"], None, frames["notes"], bool(meta.get("illustrative")),
                             sensitivity)
