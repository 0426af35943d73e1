"""Reductions of PypeIt files and the night's summary (``xmpspec reduce``; ``run`` reduces here).

The measure -> derive -> report part of ``xmpspec run`` is
:mod:`xmpspec.workflows.night`, which hands the coadds this module produces
to the engine. Several PypeIt files are reduced in parallel through the
engine's executor (:func:`xmpspec.engine.executors.map_inputs`), not a
process pool of their own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import XmpspecError

__all__ = ["summary_table", "write_summary", "reduce_files", "NightRun", "quiet_pypeit"]

log = logging.getLogger("xmpspec.reduce")


def quiet_pypeit(verbose: bool = False, log_file: str | Path | None = None) -> None:
    """Send PypeIt's console logging to warnings only (unless ``verbose``).

    With ``log_file``, PypeIt's full log (INFO) is written there.
    """
    try:
        from pypeit import log as plog
        level = logging.DEBUG if verbose else logging.WARNING
        plog.init(level=level, log_file=str(log_file) if log_file else None,
                  log_file_level=logging.INFO if log_file else None)
    except Exception:  # noqa: BLE001 - logging must never stop a reduction
        pass


def summary_table(results):
    """Per-night summary: one row per target of every reduced set-up."""
    from astropy.table import Table
    rows = []
    for r in results:
        for t in r.targets:
            rows.append({"target": t.target, "instrument": r.instrument, "night": r.night,
                         "setup": r.setup, "n_exposures": t.n_exposures,
                         "snr_ha": t.snr_ha, "wave_rms_pix": r.wave_rms_pix,
                         "flux_calibration": t.status,
                         "coadd": str(t.coadd) if t.coadd else "",
                         "problems": "; ".join(r.problems)})
        if not r.targets:
            rows.append({"target": "", "instrument": r.instrument, "night": r.night,
                         "setup": r.setup, "n_exposures": 0, "snr_ha": np.nan,
                         "wave_rms_pix": r.wave_rms_pix, "flux_calibration": "",
                         "coadd": "", "problems": "; ".join(r.problems)})
    names = ("target", "instrument", "night", "setup", "n_exposures", "snr_ha", "wave_rms_pix",
             "flux_calibration", "coadd", "problems")
    return Table(rows=rows, names=names) if rows else Table(names=names,
                                                             dtype=[str] * 4 + [int, float, float]
                                                             + [str] * 3)


def write_summary(results, path: str | Path, inputs=()) -> list[Path]:
    """Write the per-night summary table (ECSV, with provenance)."""
    from ..provenance import provenance_record
    from ..tableio import write_table
    tab = summary_table(results)
    extra = {"timings": {str(r.pypeit_file): r.timings for r in results}}
    return write_table(tab, path, provenance=provenance_record(inputs=inputs, step="reduce",
                                                               extra=extra))


def _reduce_one(args):
    pypeit_file, root, reference_dirs, targets_path = args
    from ..tableio import read_table
    from .runner import reduce_pypeit_file
    quiet_pypeit()
    targets = read_table(targets_path) if targets_path else None
    return reduce_pypeit_file(pypeit_file, root=root, reference_dirs=reference_dirs,
                              targets=targets)


def reduce_files(pypeit_files, root=".", reference_dirs=(), targets_path=None, workers: int = 1,
                 progress=None):
    """Reduce several PypeIt files, ``workers`` of them in parallel processes.

    The processes are the engine's local executor
    (:func:`xmpspec.engine.executors.map_inputs`).

    Returns
    -------
    results : list of ReductionResult
        In the order of ``pypeit_files``.
    failures : dict
        PypeIt file -> the exception (an XmpspecError) of files that failed.
    """
    from ..engine.executors import map_inputs
    jobs = [(str(f), str(root), [str(d) for d in reference_dirs],
             str(targets_path) if targets_path else None) for f in pypeit_files]
    parallel = workers > 1 and len(jobs) > 1
    outcomes = map_inputs(_reduce_one, jobs, workers=workers if parallel else 1,
                          progress=progress, description="reducing")
    results, failures = [], {}
    for job, (result, exc) in zip(jobs, outcomes, strict=True):
        if exc is None:
            results.append(result)
        elif isinstance(exc, XmpspecError):
            failures[job[0]] = exc
        elif not parallel:
            raise exc    # a bug: the command reports it (exit code 3)
        else:            # e.g. a worker killed (out of memory)
            failures[job[0]] = XmpspecError(
                f"reduction process failed: {type(exc).__name__}: {exc}", job[0])
    return results, failures


@dataclass
class NightRun:
    """Products of ``xmpspec run`` (filled by :func:`xmpspec.workflows.night.run_night`)."""

    setup: object
    results: list
    failures: dict
    summary: Path | None = None
    measurements: Path | None = None
    derived: Path | None = None
    report: Path | None = None
    timings: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
