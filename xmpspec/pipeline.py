"""The analysis chain after the reduction: measure -> derive -> compare -> tables -> figures.

:func:`run_analysis_chain` runs, on a list of 1D spectra, what the commands
``xmpspec measure``, ``derive``, ``compare``, ``tables`` and ``plots`` do one
by one, with the same library functions and the same output files, so that a
user (or ``xmpspec demo``, or the night chain of ``xmpspec run``) gets every
product of the paper from one call:

``OUTDIR/measure/lines.{ecsv,fits}``, ``OUTDIR/measure/objects.{ecsv,fits}``
(+ ``measure/plots/`` fit figures), ``OUTDIR/derived.{ecsv,fits}``,
``OUTDIR/comparison/comparison.{ecsv,fits,txt,png,pdf}``,
``OUTDIR/tables/<table>.{tex,mrt,txt,ecsv,fits}`` and
``OUTDIR/figures/<figure>.{png,pdf}``.

A spectrum that cannot be read or measured is reported and skipped (like
``xmpspec measure``); a comparison, table or figure stage that fails is
reported in :attr:`ChainResult.problems` and the later stages still run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import Config, get_active_config
from .errors import InputError, XmpspecError

__all__ = ["CHAIN_STAGES", "ChainResult", "MeasureRun", "derive_objects", "load_targets",
           "measure_path", "measure_spectra", "measure_to_tables", "run_analysis_chain"]

log = logging.getLogger("xmpspec.pipeline")

#: Stages of :func:`run_analysis_chain`, in order (names passed to ``on_stage``).
CHAIN_STAGES = ("measure", "derive", "compare", "tables", "figures")


@dataclass
class ChainResult:
    """Products of :func:`run_analysis_chain`.

    Attributes
    ----------
    outdir : Path
        Output folder.
    measurements : list of xmpspec.lines.measure.Measurement
        One per measured spectrum.
    failures : list of (str, str)
        Spectra that could not be read or measured: (file, message).
    lines, objects : Path
        Per-line and per-object measurement tables (ECSV; FITS next to them).
    fit_figures : list of Path
        Fit figures of the measurement (``measure/plots/``), if requested.
    derived : Path
        Derived properties (``derived.ecsv``; also ``.fits``).
    derived_table : astropy.table.Table
        The derived table in memory.
    comparison : xmpspec.compare.ComparisonResult or None
        The comparison with the selection catalogue (None without one).
    comparison_files : list of Path
        ``comparison.{ecsv,fits,txt,png,pdf}``.
    tables : list of xmpspec.products.tables.PaperTable
        The paper tables built.
    table_files : list of Path
        Their files (LaTeX, MRT, text, ECSV, FITS).
    figures : dict
        Figure name -> files (``figures/``).
    notes : list of str
        Informational notes of the stages (e.g. figures skipped for lack of data).
    problems : list of str
        Stages or objects that failed; empty when everything ran.
    timings : dict
        Stage name -> (wall-clock s, CPU s of this process).
    """

    outdir: Path
    measurements: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    lines: Path | None = None
    objects: Path | None = None
    fit_figures: list = field(default_factory=list)
    derived: Path | None = None
    derived_table: object = None
    comparison: object = None
    comparison_files: list = field(default_factory=list)
    tables: list = field(default_factory=list)
    table_files: list = field(default_factory=list)
    figures: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)


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
        Unreadable file, or no ``name`` column.
    """
    from .lines.targets import read_targets
    from .tableio import require_columns
    if targets is None:
        return None, None
    if hasattr(targets, "colnames"):
        require_columns(targets, ["name"], source or "targets table")
        return targets, source or "the targets table"
    return read_targets(targets), source or str(targets)


def measure_path(path: str | Path, targets=None, config: Config | None = None, *,
                 z: float | None = None, setup: str | None = None, format: str | None = None,
                 obj: str | None = None, ignore_bad_errors: bool = False, mcmc: bool = False,
                 seed: int | None = None, fitter: str = "fast",
                 targets_source: str | None = None):
    """Read one spectrum file, find its targets row, and measure it.

    The one code path of ``xmpspec measure``, the analysis chain
    (``xmpspec demo``) and the night chain (``xmpspec run``). The targets
    row is the one whose ``name`` is the spectrum's object name or its file
    name without extensions, else the nearest within
    ``measure.target_match_arcsec`` of the spectrum's position
    (:func:`xmpspec.lines.targets.match_target`). The redshift is ``z`` if
    given, else the row's ``z``, else the spectrum's own, else found from the
    lines; the row's other columns are carried into the per-object row. A
    spectrum without a row when a table is given gets the note
    ``no targets row``.

    Parameters
    ----------
    path : path-like
        Spectrum file (any format :func:`xmpspec.io.read_spectrum` reads).
    targets : astropy.table.Table, optional
        Targets table (:func:`load_targets`).
    config : Config, optional
        Configuration (default: active).
    z : float, optional
        Redshift (overrides the targets table and the file).
    setup, format, obj, ignore_bad_errors, mcmc, seed, fitter
        As the options of ``xmpspec measure``.
    targets_source : str, optional
        Name of the targets table for messages.

    Returns
    -------
    xmpspec.lines.measure.Measurement

    Raises
    ------
    XmpspecError
        The file cannot be read or the spectrum cannot be measured.
    """
    from .io import read_spectrum
    from .lines.measure import measure_spectrum
    from .lines.targets import match_target

    cfg = config if config is not None else get_active_config()
    spec = read_spectrum(path, format=format, obj=obj, ignore_bad_errors=ignore_bad_errors)
    if not spec.meta.get("source_file"):
        spec.meta["source_file"] = str(path)
    row = None
    if targets is not None:
        radius = float(cfg["measure"]["target_match_arcsec"])
        row = match_target(spec.name, spec.meta.get("ra"), spec.meta.get("dec"), str(path),
                           targets, radius)
        if row is None:
            log.warning("%s: no row of %s matches (name '%s' or position); the redshift "
                        "is %s", path, targets_source or "the targets table", spec.name,
                        "the one given" if z is not None else "from the file or the lines")
    z_source = "argument" if z is not None else None
    extra = name = None
    if row is not None:
        extra = {k: v for k, v in row.items() if k != "z"}
        name = str(row.get("name") or "") or None
        tz = row.get("z")
        if z is None and tz is not None and np.isfinite(float(tz)):
            z, z_source = float(tz), "targets"
    if z is None and spec.redshift is None:
        log.info("%s: no redshift given: finding it from the lines", path)
    meas = measure_spectrum(spec, z=z, setup=setup, config=cfg, mcmc=mcmc,
                            ignore_bad_errors=ignore_bad_errors, name=name, z_source=z_source,
                            fitter=fitter, seed=seed, extra=extra)
    if targets is not None and row is None:
        meas.row["notes"] = "; ".join(filter(None, [meas.row.get("notes"), "no targets row"]))
    return meas


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
        Configuration (default: active).
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
    cfg = config if config is not None else get_active_config()
    targets, targets_source = load_targets(targets, targets_source)
    progress = progress or _identity
    results, failures, figures = [], [], []
    for path in progress(list(spectra), "measuring", len(spectra)):
        try:
            meas = measure_path(path, targets, cfg, setup=setup, format=format, obj=obj,
                                ignore_bad_errors=ignore_bad_errors, mcmc=mcmc, seed=seed,
                                fitter=fitter, targets_source=targets_source)
            results.append(meas)
            if plot_dir is not None:
                figures += _plot(meas, Path(plot_dir), corner=False)
        except XmpspecError as exc:
            log.warning("skipped %s", exc)
            failures.append((str(path), str(exc)))
    return results, failures, figures


def _plot(meas, plot_dir: Path, corner: bool) -> list[Path]:
    from .lines.plots import plot_measurement
    safe = "".join(c if c.isalnum() or c in "+-_." else "_" for c in meas.name)
    out = [Path(plot_measurement(meas, plot_dir / f"{safe}.png"))]
    if corner:
        from .lines.plots import plot_corner
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


def _null_empty_columns(atable):
    """Columns without any value become Arrow nulls, so parts unify to the typed ones."""
    import pyarrow as pa
    if atable.num_rows == 0:
        return atable
    for i, fld in enumerate(atable.schema):
        if atable.column(i).null_count == atable.num_rows and not pa.types.is_null(fld.type):
            atable = atable.set_column(i, pa.field(fld.name, pa.null(), metadata=fld.metadata),
                                       pa.nulls(atable.num_rows))
    return atable


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

    Each spectrum goes through :func:`measure_path`. Every ``chunk_size``
    spectra the finished measurements become a Parquet part (the batch
    engine's Arrow layout, :func:`xmpspec.batch.table_to_arrow`) in a
    temporary folder of ``outdir``; at the end the parts are merged
    (:func:`xmpspec.batch.iter_unified_parts`) into ``lines_name`` and
    ``objects_name`` tables, ECSV and FITS with provenance, written chunk by
    chunk (:func:`xmpspec.tablestream.write_table_stream`). Memory therefore
    does not grow with the number of spectra (one chunk of measurements at a
    time), and rows keep the order of ``spectra``.

    Parameters
    ----------
    spectra : sequence of path-like
        Spectrum files.
    outdir : path-like
        Output folder (created when the first results are written).
    targets : astropy.table.Table or path-like, optional
        Targets table (:func:`load_targets`).
    config : Config, optional
        Configuration (default: active).
    z, setup, format, obj, ignore_bad_errors, mcmc, seed, fitter
        As :func:`measure_path`.
    plot_dir : path-like, optional
        Write one fit figure per object there (and with ``corner_plots`` the
        MCMC corner plot of the Halpha group).
    lines_name, objects_name : str
        File stems of the two tables in ``outdir``.
    formats : sequence of str
        Table formats (``ecsv``, ``fits``).
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
    """
    import shutil
    import uuid

    import pyarrow.parquet as pq

    from .batch import iter_unified_parts, table_to_arrow
    from .lines.measure import lines_table, objects_table
    from .provenance import provenance_record
    from .tablestream import write_table_stream

    cfg = config if config is not None else get_active_config()
    targets_in = targets
    targets, targets_source = load_targets(targets, targets_source)
    spectra = list(spectra)
    outdir = Path(outdir)
    chunk = int(chunk_size or cfg.get("batch.chunk_size", 200))
    if chunk < 1:
        raise InputError(f"chunk size must be >= 1, not {chunk}")
    progress = progress or _identity
    run = MeasureRun()
    partdir = outdir / f".{lines_name}-parts-{uuid.uuid4().hex[:8]}"
    parts: dict[str, list[Path]] = {"lines": [], "objects": []}
    pending = []
    unit = None

    def flush():
        if not pending:
            return
        partdir.mkdir(parents=True, exist_ok=True)
        k = len(parts["lines"])
        for key, table in (("lines", lines_table(pending)), ("objects", objects_table(pending))):
            f = partdir / f"{k:06d}.{key}.parquet"
            pq.write_table(_null_empty_columns(table_to_arrow(table)), f)
            parts[key].append(f)
        pending.clear()

    try:
        for path in progress(spectra, "measuring", len(spectra)):
            try:
                meas = measure_path(path, targets, cfg, z=z, setup=setup, format=format, obj=obj,
                                    ignore_bad_errors=ignore_bad_errors, mcmc=mcmc, seed=seed,
                                    fitter=fitter, targets_source=targets_source)
                unit = unit if unit is not None else meas.line_flux_unit
                if meas.line_flux_unit is not None and meas.line_flux_unit != unit:
                    raise InputError(f"line fluxes in {meas.line_flux_unit}, the first "
                                     f"spectrum's in {unit}: measure them separately", path)
                if plot_dir is not None:
                    run.figures += _plot(meas, Path(plot_dir), corner=corner_plots and mcmc)
            except XmpspecError as exc:
                if on_failure is not None:
                    on_failure(str(path), exc)
                else:
                    log.warning("skipped %s", exc)
                run.failures.append((str(path), str(exc)))
                continue
            meas.groups = []          # the fits are not needed any more
            run.n_measured += 1
            if len(run.summary) < summary_rows:
                run.summary.append({"name": meas.name,
                                    **{k: meas.row.get(k) for k in _SUMMARY_KEYS}})
            if keep_measurements:
                run.measurements.append(meas)
            pending.append(meas)
            if len(pending) >= chunk:
                flush()
        flush()
        run.n_parts = len(parts["lines"])
        if not run.n_measured:
            return run
        inputs = [str(p) for p in spectra]
        if targets_in is not None and not hasattr(targets_in, "colnames"):
            inputs.append(str(targets_in))
        extra = {"setup": setup, "fitter": fitter, "mcmc": mcmc, "seed": seed,
                 "failed": [f"{p}: {m}" for p, m in run.failures]}
        extra.update(provenance_extra or {})
        prov = provenance_record(inputs=inputs, config=cfg, step="measure", extra=extra)
        for key, name in (("lines", lines_name), ("objects", objects_name)):
            files = parts[key]
            written = write_table_stream(
                lambda files=files: iter_unified_parts(files),
                outdir / name, provenance=prov, formats=formats)
            setattr(run, key, written[0])
            run.files += written
    finally:
        shutil.rmtree(partdir, ignore_errors=True)
    return run


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

    from .physics.derive import derive_table
    from .provenance import provenance_record
    from .tableio import read_table, write_table

    cfg = config if config is not None else get_active_config()
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
    return path, derived


def run_analysis_chain(spectra: Sequence[str | Path], targets=None, selection=None,
                       outdir: str | Path = ".", config: Config | None = None, *,
                       observing_log: str | Path | None = None, setup: str | None = None,
                       format: str | None = None, fit_plots: bool = False,
                       style: str = "aastex", sort: str = "ra",
                       figure_formats: Iterable[str] = ("png", "pdf"),
                       photometry: str | Path | None = None,
                       distances: str | Path | None = None,
                       seed: int | None = None,
                       progress: Callable | None = None,
                       on_stage: Callable[[str], None] | None = None) -> ChainResult:
    """Measure, derive, compare with the CNN, and write the paper tables and figures.

    Parameters
    ----------
    spectra : sequence of path-like
        Reduced 1D spectrum files.
    targets : path-like, optional
        Targets table (name, z, ra, dec, ebv_mw, ... carried through).
    selection : path-like, optional
        CNN selection catalogue (name, ra, dec, n2_cnn, n2_cnn_err...). Without
        it the comparison is skipped (a note says so).
    outdir : path-like
        Output folder (created).
    config : Config, optional
        Configuration (default: active).
    observing_log : path-like, optional
        Observing log (name, instrument, obsdate, exptime_s, nexp...) for the
        paper tables; default: the selection catalogue.
    setup, format : str, optional
        Observing set-up and spectrum format of every file (default: from each file).
    fit_plots : bool
        Write one line-fit figure per object (``measure/plots/``).
    style, sort : str
        Paper-table style (aastex, latex, mrt) and row order (ra, n2_cnn, name, none).
    figure_formats : iterable of str
        Formats of the paper figures.
    photometry, distances : path-like, optional
        Tables for the stellar masses and corrected distances (as ``xmpspec derive``).
    seed : int, optional
        Random seed of the direct-method Monte Carlo (default: configuration).
    progress : callable, optional
        ``progress(iterable, description, total)`` wrapping per-item loops.
    on_stage : callable, optional
        Called with the stage name (:data:`CHAIN_STAGES`) as each stage starts.

    Returns
    -------
    ChainResult

    Raises
    ------
    InputError
        No spectrum given, or none could be measured (the failures are in the message).
    XmpspecError
        The derive stage failed (nothing after it can run).
    """


    cfg = config if config is not None else get_active_config()
    outdir = Path(outdir)
    spectra = [Path(p) for p in spectra]
    if not spectra:
        raise InputError("no spectra to analyse", outdir)
    progress = progress or _identity
    res = ChainResult(outdir=outdir)

    def stage(name):
        if on_stage is not None:
            on_stage(name)
        return time.perf_counter(), time.process_time()

    def done(name, t):
        res.timings[name] = (time.perf_counter() - t[0], time.process_time() - t[1])

    # ---- measure (the code path of `xmpspec measure`)
    t = stage("measure")
    mdir = outdir / "measure"
    mrun = measure_to_tables(spectra, mdir, targets, cfg, setup=setup, format=format,
                             plot_dir=(mdir / "plots") if fit_plots else None,
                             keep_measurements=True, provenance_extra={"chain": True},
                             progress=progress)
    res.measurements, res.failures, res.fit_figures = (mrun.measurements, mrun.failures,
                                                       mrun.figures)
    for f, msg in res.failures:
        res.problems.append(f"measure: {msg}" if f in msg else f"measure: {f}: {msg}")
    if not res.measurements:
        raise InputError("no spectrum could be measured: "
                         + "; ".join(m for _, m in res.failures), outdir)
    res.lines, res.objects = mrun.lines, mrun.objects
    done("measure", t)

    # ---- derive (from the written table, as `xmpspec derive` reads it)
    t = stage("derive")
    res.derived, res.derived_table = derive_objects(
        res.objects, outdir / "derived", cfg, photometry=photometry, distances=distances,
        seed=seed, progress=progress, provenance_extra={"chain": True})
    derived = res.derived_table
    done("derive", t)

    # ---- compare with the CNN selection stage
    t = stage("compare")
    if selection is None:
        res.notes.append("compare: no selection catalogue given, comparison skipped")
    else:
        from .compare import run_comparison
        try:
            res.comparison, res.comparison_files = run_comparison(
                res.derived, selection, outdir / "comparison", config=cfg)
        except XmpspecError as exc:
            res.problems.append(f"compare: {exc}")
    done("compare", t)

    # ---- paper tables
    t = stage("tables")
    from .products.tables import write_tables
    try:
        res.tables, notes, res.table_files = write_tables(
            res.derived, outdir / "tables", observing_log or selection, style=style,
            sort=sort, config=cfg,
            iterate=lambda ts: progress(ts, "writing tables", len(ts)))
        res.notes += [f"tables: {n}" for n in notes]
    except XmpspecError as exc:
        res.problems.append(f"tables: {exc}")
    done("tables", t)

    # ---- figures
    t = stage("figures")
    from .products.figures import make_all_plots
    try:
        res.figures, skipped = make_all_plots(derived, outdir / "figures", config=cfg,
                                              formats=list(figure_formats),
                                              source=res.derived)
        res.notes += [f"figures: skipped {s}" for s in skipped]
    except XmpspecError as exc:
        res.problems.append(f"figures: {exc}")
    done("figures", t)
    return res
