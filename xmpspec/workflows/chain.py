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

from ..config import Config, get_active_config
from ..errors import InputError, XmpspecError
from ..provenance import provenance_record
from .leftovers import clean_leftovers
from .measure import _identity, derive_objects, measure_to_tables

__all__ = ["CHAIN_STAGES", "ChainResult", "run_analysis_chain"]

log = logging.getLogger("xmpspec.workflows")

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
    clean_leftovers(_chain_outputs(outdir), "demo")   # temporaries of a killed chain

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
        from ..compare import run_comparison
        try:
            res.comparison, res.comparison_files = run_comparison(
                res.derived, selection, outdir / "comparison", config=cfg)
            from ..products.figures import comparison_plot  # compare: numbers only
            res.comparison_files += comparison_plot(
                res.comparison, outdir / "comparison" / "comparison",
                observed=res.derived_table,
                provenance=provenance_record([res.derived, selection], cfg, step="compare"))
        except XmpspecError as exc:
            res.problems.append(f"compare: {exc}")
    done("compare", t)

    # ---- paper tables
    t = stage("tables")
    from ..products.tables import write_tables
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
    from ..products.figures import make_all_plots
    try:
        res.figures, skipped = make_all_plots(derived, outdir / "figures", config=cfg,
                                              formats=list(figure_formats),
                                              source=res.derived,
                                              provenance=provenance_record(
                                                  [res.derived], cfg, step="plots"))
        res.notes += [f"figures: skipped {s}" for s in skipped]
    except XmpspecError as exc:
        res.problems.append(f"figures: {exc}")
    done("figures", t)
    clean_leftovers(_chain_outputs(outdir, res), "demo")
    return res


def _chain_outputs(outdir: Path, res: ChainResult | None = None) -> list[Path]:
    """The chain's outputs: its tables, files there now (earlier runs) and those written.

    The measurement tables are cleaned by :func:`measure_to_tables`; here the
    derived table, and every output of the folders the chain alone writes
    (``comparison/``, ``tables/``, ``figures/``).
    """
    outs: list[Path] = [outdir / "derived"]
    for sub in ("comparison", "tables", "figures"):
        folder = outdir / sub
        if folder.is_dir():
            outs += [f for f in folder.iterdir() if f.is_file() and not f.name.startswith(".")]
    if res is not None:
        outs += [*res.comparison_files, *res.table_files]
        outs += [f for files in res.figures.values() for f in files]
    return outs
