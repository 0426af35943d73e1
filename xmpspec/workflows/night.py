"""``xmpspec run``: one night from raw frames to reductions, measurements, derived table, report.

setup (PypeIt files) -> reduce (:func:`xmpspec.reduce.pipeline.reduce_files`,
PypeIt files in parallel through the engine's executor) -> measure the
coadds (:func:`xmpspec.workflows.measure.measure_to_tables`, the engine's
one measurement path: the night's objects are matched to the targets table
by name, then by position, exactly as by ``xmpspec measure``) -> derive
(:func:`xmpspec.workflows.measure.derive_objects`) -> the night's HTML report
(:func:`xmpspec.products.report.write_report`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..config import Config, get_active_config
from ..errors import XmpspecError
from ..reduce.pipeline import NightRun, reduce_files, write_summary
from .leftovers import clean_leftovers
from .measure import derive_objects, measure_to_tables

__all__ = ["NightRun", "measure_and_derive", "run_night", "write_night_report"]

#: stems of the tables :func:`run_night` writes in the night's folder
SUMMARY_NAME, LINES_NAME, OBJECTS_NAME, DERIVED_NAME = "summary", "lines", "measurements", "derived"

log = logging.getLogger("xmpspec.workflows")


def run_night(raw_dir, instrument: str, night: str | None = None, root=".", targets_path=None,
              reference_dirs=(), workers: int = 1, progress=None,
              config: Config | None = None) -> NightRun:
    """setup -> reduce -> measure -> derive -> report for one night.

    Writes ``summary.ecsv``, the measurements of every coadd
    (``measurements.{ecsv,fits}`` per object, ``lines.{ecsv,fits}`` per line,
    as ``xmpspec measure`` writes them), ``derived.{ecsv,fits}`` and
    ``report.html`` in ``ROOT/reductions/<instrument>/<night>/``.

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
    progress : callable, optional
        ``progress(iterable, description, total)``.
    config : Config, optional
        Configuration of measure and derive (default: the packaged defaults,
        or what the CLI set).

    Returns
    -------
    xmpspec.reduce.pipeline.NightRun
    """
    from ..lines.targets import read_targets
    from ..reduce.cache import ensure_reference_data
    from ..reduce.pypeitfile import default_night_name, setup_night
    from ..reduce.registry import get_instrument

    cfg = config if config is not None else get_active_config()
    plugin = get_instrument(instrument)
    night = night or default_night_name(raw_dir)
    # checked before hours of reduction (lines.targets, the rules measure applies)
    targets = read_targets(targets_path) if targets_path else None
    nightdir = Path(root) / "reductions" / plugin.name / night
    clean_leftovers(_night_outputs(nightdir), "run")   # temporaries of a killed night
    t0 = time.time()
    ensure_reference_data(plugin.name, reference_dirs, raw_dir)
    st = setup_night(raw_dir, plugin.name, night=night, root=root, targets=targets)
    t1 = time.time()
    results, failures = reduce_files(st.pypeit_files, root, reference_dirs, targets_path,
                                     workers, progress)
    t2 = time.time()
    nightdir.mkdir(parents=True, exist_ok=True)
    run = NightRun(st, results, failures)
    run.summary = write_summary(results, nightdir / f"{SUMMARY_NAME}.ecsv",
                                inputs=[str(f) for f in st.pypeit_files])[0]
    coadds = [t.coadd for r in results for t in r.targets if t.coadd]
    t3 = measure_and_derive(run, coadds, targets, nightdir, plugin, night, progress,
                            config=cfg) if coadds else time.time()
    t4 = time.time()
    write_night_report(run, nightdir, cfg)
    clean_leftovers(_night_outputs(nightdir), "run")
    run.timings = {"setup_s": t1 - t0, "reduce_s": t2 - t1, "measure_s": t3 - t2,
                   "derive_s": t4 - t3, "report_s": time.time() - t4}
    return run


def measure_and_derive(run: NightRun, coadds, targets, nightdir: Path, plugin, night: str,
                       progress, config: Config | None = None) -> float:
    """Measure the coadds and derive (``measurements``, ``lines``, ``derived`` in ``nightdir``).

    Uses :func:`xmpspec.workflows.measure.measure_to_tables` and
    :func:`xmpspec.workflows.measure.derive_objects`, so a night's objects
    are matched to the targets table (name, then position), measured and
    derived exactly as by ``xmpspec measure`` and ``xmpspec derive``.
    Problems go to ``run.problems``. Returns the time the measurement ended.
    """
    def failed(path, exc):
        run.problems.append(f"{path}: measure failed: {exc}")

    try:
        mrun = measure_to_tables(coadds, nightdir, targets, config,
                                 setup=plugin.setup_name, lines_name=LINES_NAME,
                                 objects_name=OBJECTS_NAME,
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
        run.derived = derive_objects(mrun.objects, nightdir / DERIVED_NAME, config,
                                     progress=progress,
                                     provenance_extra={"night": night})[0]
    except XmpspecError as exc:
        run.problems.append(f"derive failed: {exc}")
    return t3


def write_night_report(run: NightRun, nightdir: Path, config: Config | None = None) -> None:
    """The night's HTML report (:func:`xmpspec.products.report.write_report`) -> ``run.report``.

    A report that cannot be written is one of the night's problems.
    """
    from ..products.report import write_report
    try:
        run.report = write_report(nightdir, config=config)
    except XmpspecError as exc:
        run.problems.append(f"report failed: {exc}")


def _night_outputs(nightdir: Path) -> list[Path]:
    """The tables and report :func:`run_night` writes in the night's folder."""
    from ..products.report import REPORT_NAME
    return [nightdir / n for n in (SUMMARY_NAME, LINES_NAME, OBJECTS_NAME, DERIVED_NAME,
                                   REPORT_NAME)]
