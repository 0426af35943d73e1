"""One night end to end: setup -> reduce -> measure -> derive (``xmpspec run``)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import XmpspecError

__all__ = ["summary_table", "write_summary", "reduce_files", "run_night", "NightRun",
           "quiet_pypeit"]

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

    Returns
    -------
    results : list of ReductionResult
    failures : dict
        PypeIt file -> the exception (an XmpspecError) of files that failed.
    """
    jobs = [(str(f), str(root), [str(d) for d in reference_dirs],
             str(targets_path) if targets_path else None) for f in pypeit_files]
    results, failures = [], {}
    if workers <= 1 or len(jobs) <= 1:
        it = progress(jobs, "reducing") if progress else jobs
        for j in it:
            try:
                results.append(_reduce_one(j))
            except XmpspecError as exc:
                failures[j[0]] = exc
        return results, failures
    from concurrent.futures import ProcessPoolExecutor, as_completed
    with ProcessPoolExecutor(max_workers=workers) as ex:
        futs = {ex.submit(_reduce_one, j): j[0] for j in jobs}
        it = as_completed(futs)
        for fut in (progress(it, "reducing", total=len(futs)) if progress else it):
            try:
                results.append(fut.result())
            except XmpspecError as exc:
                failures[futs[fut]] = exc
            except Exception as exc:  # noqa: BLE001 - e.g. a worker killed (out of memory)
                failures[futs[fut]] = XmpspecError(
                    f"reduction process failed: {type(exc).__name__}: {exc}", futs[fut])
    order = {str(Path(j[0]).resolve()): i for i, j in enumerate(jobs)}
    results.sort(key=lambda r: order.get(str(r.pypeit_file), len(order)))
    return results, failures


@dataclass
class NightRun:
    """Products of ``xmpspec run``."""

    setup: object
    results: list
    failures: dict
    summary: Path | None = None
    measurements: Path | None = None
    derived: Path | None = None
    timings: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def run_night(raw_dir, instrument: str, night: str | None = None, root=".", targets_path=None,
              reference_dirs=(), workers: int = 1, progress=None) -> NightRun:
    """setup -> reduce -> measure -> derive for one night.

    Writes ``summary.ecsv``, the measurements of every coadd
    (``measurements.{ecsv,fits}`` per object, ``lines.{ecsv,fits}`` per line,
    as ``xmpspec measure`` writes them) and ``derived.{ecsv,fits}`` in
    ``ROOT/reductions/<instrument>/<night>/``.

    Parameters
    ----------
    raw_dir : path-like
        Raw frames of the night.
    instrument : str
        ``goodman``, ``int_ids``, ``mage``.
    night : str, optional
        Night name (default: the raw folder's name).
    root : path-like
        ``pypeit_files/`` and ``reductions/`` are written under it.
    targets_path : path-like, optional
        Targets table (name, z, ...): protects bright lines from the sky
        model, gives ``measure`` its redshifts, carries columns through.
    reference_dirs : iterable of path-like
        Reference-data folders to import missing files from.
    workers : int
        PypeIt files reduced in parallel.

    Returns
    -------
    NightRun
    """
    from ..tableio import read_table
    from .pypeitfile import default_night_name, setup_night
    from .registry import get_instrument

    plugin = get_instrument(instrument)
    night = night or default_night_name(raw_dir)
    targets = read_table(targets_path) if targets_path else None
    t0 = time.time()
    from .cache import ensure_reference_data
    ensure_reference_data(plugin.name, reference_dirs, raw_dir)
    st = setup_night(raw_dir, plugin.name, night=night, root=root, targets=targets)
    t1 = time.time()
    results, failures = reduce_files(st.pypeit_files, root, reference_dirs, targets_path,
                                     workers, progress)
    t2 = time.time()
    nightdir = Path(root) / "reductions" / plugin.name / night
    nightdir.mkdir(parents=True, exist_ok=True)
    run = NightRun(st, results, failures)
    run.summary = write_summary(results, nightdir / "summary.ecsv",
                                inputs=[str(f) for f in st.pypeit_files])[0]
    # measure every coadd and derive: the code path of `xmpspec measure` / `derive`
    coadds = [t.coadd for r in results for t in r.targets if t.coadd]
    t3 = _measure_and_derive(run, coadds, targets, nightdir, plugin, night, progress) \
        if coadds else time.time()
    run.timings = {"setup_s": t1 - t0, "reduce_s": t2 - t1, "measure_s": t3 - t2,
                   "derive_s": time.time() - t3}
    return run


def _measure_and_derive(run: NightRun, coadds, targets, nightdir: Path, plugin, night: str,
                        progress) -> float:
    """Measure the coadds and derive (``measurements``, ``lines``, ``derived`` in ``nightdir``).

    Uses :func:`xmpspec.pipeline.measure_to_tables` and
    :func:`xmpspec.pipeline.derive_objects`, so a night's objects are
    matched to the targets table (name, then position), measured and derived
    exactly as by ``xmpspec measure`` and ``xmpspec derive``. Problems go to
    ``run.problems``. Returns the time the measurement ended.
    """
    from ..pipeline import derive_objects, measure_to_tables

    def failed(path, exc):
        run.problems.append(f"{path}: measure failed: {exc}")

    try:
        mrun = measure_to_tables(coadds, nightdir, targets, setup=plugin.setup_name,
                                 objects_name="measurements",
                                 provenance_extra={"night": night, "instrument": plugin.name},
                                 progress=progress, on_failure=failed)
    except XmpspecError as exc:          # e.g. a targets table without names
        run.problems.append(f"measure step failed: {exc}")
        return time.time()
    t3 = time.time()
    if mrun.objects is None:
        return t3
    run.measurements = mrun.objects
    try:
        run.derived = derive_objects(mrun.objects, nightdir / "derived", progress=progress,
                                     provenance_extra={"night": night})[0]
    except XmpspecError as exc:
        run.problems.append(f"derive failed: {exc}")
    return t3
