"""``xmpspec measure`` as a library call: the engine in-process with one worker.

:func:`measure_to_tables` measures spectrum files with the engine's one
measurement path (:func:`xmpspec.engine.tasks.measure_input`: read, match the
targets row, measure) and its one streaming engine
(:func:`xmpspec.engine.stream.run_stream`: chunks -> Parquet parts -> merged
tables), so ``xmpspec measure``, ``xmpspec batch`` (the same task on a
local pool or Dask, with a manifest), the analysis chain and ``xmpspec
run`` give the same rows for the same files. :func:`derive_objects` is
``xmpspec derive`` on a written objects table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..config import Config, get_active_config
from ..engine.tasks import BatchContext, measure_input
from ..errors import InputError, XmpspecError
from .leftovers import clean_leftovers

__all__ = ["MeasureRun", "derive_objects", "load_targets", "measure_context", "measure_path",
           "measure_spectra", "measure_to_tables"]

log = logging.getLogger("xmpspec.workflows")


def _identity(items, description, total):  # default "progress": no display
    return items


def load_targets(targets, source: str | None = None):
    """The targets table and its name for messages (None, None without one).

    Parameters
    ----------
    targets : astropy.table.Table or path-like or None
        A table already read, or a file (CSV/ECSV/FITS; ``name`` required).
    source : str, optional
        Name of the table for messages (default: the file name).

    Returns
    -------
    (Table or None, str or None)

    Raises
    ------
    InputError
        Unreadable file, or a table that fails
        :func:`xmpspec.lines.targets.validate_targets` (no ``name`` column,
        bad ``z``, duplicate names with different ``z``, unreadable coordinates).
    """
    from ..lines.targets import read_targets, validate_targets
    if targets is None:
        return None, None
    if hasattr(targets, "colnames"):
        validate_targets(targets, source or "targets table")
        return targets, source or "the targets table"
    return read_targets(targets), source or str(targets)


def measure_context(targets=None, config: Config | None = None, *, z: float | None = None,
                    setup: str | None = None, format: str | None = None,
                    obj: str | None = None, ignore_bad_errors: bool = False,
                    mcmc: bool = False, seed: int | None = None, fitter: str = "fast",
                    keep_fits: bool = False, targets_source: str | None = None
                    ) -> BatchContext:
    """The engine context of a measurement (what ``xmpspec measure``'s options set).

    Parameters
    ----------
    targets : astropy.table.Table or path-like, optional
        Targets table (:func:`load_targets`).
    config : Config, optional
        Configuration (default: the packaged defaults, or what the CLI set).
    z, setup, format, obj, ignore_bad_errors, mcmc, seed, fitter
        As the options of ``xmpspec measure``.
    keep_fits : bool
        Keep the fits in the measurements (for figures).
    targets_source : str, optional
        Name of the targets table for messages.

    Returns
    -------
    xmpspec.engine.tasks.BatchContext
    """
    cfg = config if config is not None else get_active_config()
    table, source = load_targets(targets, targets_source)
    options = {"z": z, "setup": setup, "format": format, "obj": obj,
               "ignore_bad_errors": ignore_bad_errors, "mcmc": mcmc, "seed": seed,
               "fitter": fitter, "keep_fits": keep_fits, "targets_source": source}
    return BatchContext(config=cfg.to_dict(), config_sources=list(cfg.sources), targets=table,
                        options=options)


def measure_path(path: str | Path, targets=None, config: Config | None = None, *,
                 z: float | None = None, setup: str | None = None, format: str | None = None,
                 obj: str | None = None, ignore_bad_errors: bool = False, mcmc: bool = False,
                 seed: int | None = None, fitter: str = "fast",
                 targets_source: str | None = None):
    """Read one spectrum file, find its targets row, and measure it.

    :func:`xmpspec.engine.tasks.measure_input`, the one measurement path of
    every command, with the options as arguments.

    Parameters
    ----------
    path : path-like
        Spectrum file (any format :func:`xmpspec.io.read_spectrum` reads).
    targets : astropy.table.Table or path-like, optional
        Targets table (:func:`load_targets`).
    config : Config, optional
        Configuration (default: the packaged defaults, or what the CLI set).
    z : float, optional
        Redshift (overrides the targets table and the file).
    setup, format, obj, ignore_bad_errors, mcmc, seed, fitter
        As the options of ``xmpspec measure``.
    targets_source : str, optional
        Name of the targets table for messages.

    Returns
    -------
    xmpspec.lines.measure.Measurement
        As :func:`~xmpspec.engine.tasks.measure_input` returns it (which
        raises :class:`~xmpspec.errors.XmpspecError` for a file that cannot
        be read or measured).
    """
    ctx = measure_context(targets, config, z=z, setup=setup, format=format, obj=obj,
                          ignore_bad_errors=ignore_bad_errors, mcmc=mcmc, seed=seed,
                          fitter=fitter, keep_fits=True, targets_source=targets_source)
    return measure_input(path, ctx)


def measure_spectra(spectra: Sequence[str | Path], targets=None, config: Config | None = None,
                    *, setup: str | None = None, format: str | None = None,
                    obj: str | None = None, ignore_bad_errors: bool = False,
                    mcmc: bool = False, seed: int | None = None, fitter: str = "fast",
                    plot_dir: str | Path | None = None, targets_source=None,
                    progress: Callable | None = None):
    """Read and measure spectrum files in memory (:func:`measure_path` on each).

    For many spectra use :func:`measure_to_tables`, which writes the tables
    as it goes instead of keeping the measurements.

    Parameters
    ----------
    spectra : sequence of path-like
        Spectrum files (any format :func:`xmpspec.io.read_spectrum` reads).
    targets : astropy.table.Table or path-like, optional
        Targets table (``name``, ``z``, optional ``ra``/``dec``...).
    config : Config, optional
        Configuration (default: the packaged defaults, or what the CLI set).
    setup, format, obj, ignore_bad_errors, mcmc, seed, fitter
        As the options of ``xmpspec measure``.
    plot_dir : path-like, optional
        Write one fit figure per object there.
    targets_source : str, optional
        Name of the targets table for messages.
    progress : callable, optional
        ``progress(iterable, description, total)`` wrapping the loop (progress bar).

    Returns
    -------
    measurements : list of Measurement
    failures : list of (str, str)
        Files that could not be read or measured, with the message.
    figures : list of Path
        Fit figures written.
    """
    ctx = measure_context(targets, config, setup=setup, format=format, obj=obj,
                          ignore_bad_errors=ignore_bad_errors, mcmc=mcmc, seed=seed,
                          fitter=fitter, keep_fits=True, targets_source=targets_source)
    progress = progress or _identity
    results, failures, figures = [], [], []
    for path in progress(list(spectra), "measuring", len(spectra)):
        try:
            meas = measure_input(path, ctx)
            results.append(meas)
            if plot_dir is not None:
                figures += _plot(meas, Path(plot_dir), corner=False)
        except XmpspecError as exc:
            log.warning("skipped %s", exc)
            failures.append((str(path), str(exc)))
    return results, failures, figures


def _plot(meas, plot_dir: Path, corner: bool) -> list[Path]:
    from ..lines.plots import plot_measurement
    safe = "".join(c if c.isalnum() or c in "+-_." else "_" for c in meas.name)
    out = [Path(plot_measurement(meas, plot_dir / f"{safe}.png"))]
    if corner:
        from ..lines.plots import plot_corner
        fig = plot_corner(meas, plot_dir / f"{safe}_corner.png")
        if fig:
            out.append(Path(fig))
    return out


@dataclass
class MeasureRun:
    """Outcome of :func:`measure_to_tables`.

    Attributes
    ----------
    n_measured : int
        Spectra measured.
    failures : list of (str, str)
        Spectra that could not be read or measured: (file, message).
    lines, objects : Path or None
        Per-line and per-object tables (first format, ECSV by default);
        None when nothing was measured.
    files : list of Path
        Every table file written.
    figures : list of Path
        Fit figures (``plot_dir``).
    summary : list of dict
        ``name, z, n2, n2_upper_limit, n2_state, significance`` of the first
        ``summary_rows`` objects (for a printed summary).
    measurements : list of Measurement
        Every measurement (without its fits), only with ``keep_measurements``.
    n_parts : int
        Parquet parts the measurement was streamed through.
    """

    n_measured: int = 0
    failures: list = field(default_factory=list)
    lines: Path | None = None
    objects: Path | None = None
    files: list = field(default_factory=list)
    figures: list = field(default_factory=list)
    summary: list = field(default_factory=list)
    measurements: list = field(default_factory=list)
    n_parts: int = 0


_SUMMARY_KEYS = ("z", "n2", "n2_upper_limit", "n2_state", "significance")


def measure_to_tables(spectra: Sequence[str | Path], outdir: str | Path, targets=None,
                      config: Config | None = None, *, z: float | None = None,
                      setup: str | None = None, format: str | None = None,
                      obj: str | None = None, ignore_bad_errors: bool = False,
                      mcmc: bool = False, seed: int | None = None, fitter: str = "fast",
                      plot_dir: str | Path | None = None, corner_plots: bool = False,
                      lines_name: str = "lines", objects_name: str = "objects",
                      formats: Sequence[str] = ("ecsv", "fits"),
                      provenance_extra: dict | None = None,
                      targets_source: str | None = None, chunk_size: int | None = None,
                      keep_measurements: bool = False, summary_rows: int = 50,
                      progress: Callable | None = None,
                      on_failure: Callable[[str, Exception], None] | None = None) -> MeasureRun:
    """Measure spectrum files and write the per-line and per-object tables, streaming.

    The engine in-process with one worker (:func:`xmpspec.engine.stream.run_stream`):
    each spectrum goes through :func:`xmpspec.engine.tasks.measure_input`
    (as in ``xmpspec batch``); every ``chunk_size`` spectra the results become
    Parquet parts in a temporary folder of ``outdir``, merged at the end into
    ``lines_name`` and ``objects_name`` tables (ECSV and FITS with
    provenance, written part by part). Memory does not grow with the number
    of spectra, and rows keep the order of ``spectra``. The output folder is
    locked while the run writes it (another ``measure`` or ``batch`` into it
    is refused with a clear message), and temporary files of an earlier
    killed run are removed.

    Parameters
    ----------
    spectra : sequence of path-like
        Spectrum files.
    outdir : path-like
        Output folder (created).
    targets : astropy.table.Table or path-like, optional
        Targets table (:func:`load_targets`).
    config : Config, optional
        Configuration (default: the packaged defaults, or what the CLI set).
    z, setup, format, obj, ignore_bad_errors, mcmc, seed, fitter
        As :func:`measure_path`.
    plot_dir : path-like, optional
        Write one fit figure per object there (and with ``corner_plots`` the
        MCMC corner plot of the Halpha group).
    lines_name, objects_name : str
        File stems of the two tables in ``outdir``.
    formats : sequence of str
        Table formats (``ecsv``, ``fits``, ``parquet``).
    provenance_extra : dict, optional
        Added to the provenance record (``step`` is ``measure``).
    targets_source : str, optional
        Name of the targets table for messages.
    chunk_size : int, optional
        Spectra per part (default ``batch.chunk_size`` of the configuration).
    keep_measurements : bool
        Also return every :class:`~xmpspec.lines.measure.Measurement` (for
        small runs; memory then grows with the number of spectra).
    summary_rows : int
        Objects whose summary values are kept in :attr:`MeasureRun.summary`.
    progress : callable, optional
        ``progress(iterable, description, total)`` wrapping the loop.
    on_failure : callable, optional
        ``on_failure(path, exc)`` for a spectrum that cannot be read or
        measured (default: a logged warning); it may re-raise to stop.

    Returns
    -------
    MeasureRun
        With ``lines``/``objects`` None if no spectrum could be measured (no
        table is written then).

    Raises
    ------
    InputError
        The output folder is in use by another run, or a bad chunk size.
    """
    from ..engine.stream import run_stream
    from ..provenance import provenance_record

    cfg = config if config is not None else get_active_config()
    targets_in = targets
    ctx = measure_context(targets, cfg, z=z, setup=setup, format=format, obj=obj,
                          ignore_bad_errors=ignore_bad_errors, mcmc=mcmc, seed=seed,
                          fitter=fitter, keep_fits=plot_dir is not None,
                          targets_source=targets_source)
    spectra = [str(p) for p in spectra]
    chunk = int(chunk_size or cfg.get("batch.chunk_size", 200))
    if chunk < 1:
        raise InputError(f"chunk size must be >= 1, not {chunk}")
    run = MeasureRun()
    first_unit = []
    # the progress wrapper of the commands, advanced as each spectrum is done
    bar = _Progress(progress, len(spectra)) if progress is not None else None

    def on_result(path, meas):
        if meas.line_flux_unit is not None:
            if not first_unit:
                first_unit.append(meas.line_flux_unit)
            elif meas.line_flux_unit is not first_unit[0] \
                    and meas.line_flux_unit != first_unit[0]:   # (astropy's == is slow)
                raise InputError(f"line fluxes in {meas.line_flux_unit}, the first "
                                 f"spectrum's in {first_unit[0]}: measure them separately",
                                 path)
        if plot_dir is not None:
            run.figures += _plot(meas, Path(plot_dir), corner=corner_plots and mcmc)
        meas.groups = []          # the fits are not needed any more
        if len(run.summary) < summary_rows:
            run.summary.append({"name": meas.name,
                                **{k: meas.row.get(k) for k in _SUMMARY_KEYS}})
        if keep_measurements:
            run.measurements.append(meas)
        if bar is not None:
            bar.advance(1)

    def on_error(path, exc):
        if bar is not None:
            bar.advance(1)
        if on_failure is not None:
            on_failure(str(path), exc)
        else:
            log.warning("skipped %s", exc)

    def provenance(res):
        inputs = list(spectra)
        if targets_in is not None and not hasattr(targets_in, "colnames"):
            inputs.append(str(targets_in))
        extra = {"setup": setup, "fitter": fitter, "mcmc": mcmc, "seed": seed,
                 "failed": [reason for _, _, reason in res.failures]}
        extra.update(provenance_extra or {})
        return provenance_record(inputs=inputs, config=cfg, step="measure", extra=extra)

    try:
        res = run_stream(spectra, outdir, "measure", context=ctx,
                         names={"lines": lines_name, "objects": objects_name},
                         chunk_size=chunk, formats=formats, provenance=provenance,
                         on_result=on_result, on_error=on_error, command="measure")
    finally:
        if bar is not None:
            bar.close()
        # the engine cleaned at start; temporaries of a run killed meanwhile go now
        clean_leftovers([Path(outdir) / lines_name, Path(outdir) / objects_name], "measure")
    run.n_measured = res.n_done
    run.n_parts = res.n_parts
    run.failures = [(p, reason) for p, _, reason in res.failures]
    if res.n_done:
        for key in ("lines", "objects"):
            written = res.outputs.get(key, [])
            setattr(run, key, written[0] if written else None)
            run.files += written
    return run


class _Progress:
    """Drives a ``progress(iterable, description, total)`` wrapper from the engine's callbacks."""

    def __init__(self, progress: Callable, total: int):
        self._it = iter(progress(range(total), "measuring", total))
        self._left = total
        next(self._it, None)   # a generator wrapper advances its bar when resumed

    def advance(self, n: int) -> None:
        for _ in range(min(n, self._left)):
            next(self._it, None)
            self._left -= 1

    def close(self) -> None:
        for _ in self._it:
            pass


def derive_objects(objects: str | Path, out: str | Path, config: Config | None = None, *,
                   photometry: str | Path | None = None, distances: str | Path | None = None,
                   seed: int | None = None, progress: Callable | None = None,
                   formats: Sequence[str] = ("ecsv", "fits"),
                   provenance_extra: dict | None = None):
    """Derive the physical properties of a per-object table and write them.

    As ``xmpspec derive`` does: the table is read from its file (so measured
    and user tables are treated alike), :func:`xmpspec.physics.derive.derive_table`
    adds the derived columns, and the result is written with provenance.

    Parameters
    ----------
    objects : path-like
        Per-object table (``measure`` output).
    out : path-like
        Output stem (``out.ecsv``, ``out.fits``).
    config : Config, optional
        Configuration (default: active).
    photometry, distances : path-like, optional
        Tables for stellar masses and corrected distances.
    seed : int, optional
        Random seed of the direct-method Monte Carlo (default: configuration).
    progress : callable, optional
        ``progress(iterable, description, total)``.
    formats : sequence of str
        Output formats.
    provenance_extra : dict, optional
        Added to the provenance record.

    Returns
    -------
    (Path, astropy.table.Table)
        The first file written and the derived table.
    """
    from astropy.table import Table

    from ..physics.derive import derive_table
    from ..provenance import provenance_record
    from ..tableio import read_table, write_table

    cfg = config if config is not None else get_active_config()
    clean_leftovers([out], "derive")     # temporaries of a derive killed mid-write
    table = read_table(objects)
    phot = read_table(photometry) if photometry is not None else None
    dist = read_table(distances) if distances is not None else None
    for aux in (phot, dist):   # their provenance is recorded as an input of derive;
        if aux is not None:    # merged into the objects' meta it only raises conflicts
            aux.meta.clear()
    derived = derive_table(Table(table), cfg, photometry=phot, distances_table=dist,
                           seed=seed, source=str(objects), progress=progress,
                           photometry_source=str(photometry),
                           distances_source=str(distances))
    inputs = [str(objects)] + [str(p) for p in (photometry, distances) if p is not None]
    extra = {"n2_calibration": derived.meta.get("oh_n2_calibration"),
             "seed": seed if seed is not None else cfg["abundances"]["mc_seed"]}
    extra.update(provenance_extra or {})
    prov = provenance_record(inputs, cfg, step="derive", extra=extra)
    path = write_table(derived, out, provenance=prov, formats=formats)[0]
    clean_leftovers([out], "derive")
    return path, derived
