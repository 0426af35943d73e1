"""Tasks of the engine: what is done to one input, and the context shipped to workers.

A task is a picklable module-level function ``task(path, context)``; it
returns a ``dict[str, Table]`` for one input, or anything its optional
attribute ``task.assemble(items, context) -> (tables, late_failures)`` turns
into a chunk's tables at once. Built-in tasks: :func:`measure_task` (line
measurement; every command that measures, ``measure``, ``batch``, ``run``
and the demo, goes through :func:`measure_input`) and :func:`inventory_task`
(read each spectrum and summarise it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from ..config import Config
from ..errors import InputError

__all__ = ["BatchContext", "MEASURE_OPTIONS", "TASKS", "inventory_task", "measure_input",
           "measure_task", "with_input_column"]

log = logging.getLogger("xmpspec.engine")


@dataclass
class BatchContext:
    """Everything a task needs besides its input path; shipped once to each worker.

    Parameters
    ----------
    config : dict
        The resolved configuration (``Config.to_dict()``).
    config_sources : list of str
        Where the configuration came from.
    targets : astropy.table.Table, optional
        The targets table (name, z, ra, dec, ...), if given.
    options : dict
        Task options (``derive``, ``format``, ``verbose``, ...).
    """

    config: dict
    config_sources: list = field(default_factory=list)
    targets: Table | None = None
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        self._config_obj: Config | None = None
        self._cache: dict = {}

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_config_obj"] = None
        state["_cache"] = {}
        return state

    @property
    def config_obj(self) -> Config:
        """The configuration as a :class:`~xmpspec.config.Config` (built once per worker)."""
        if self._config_obj is None:
            self._config_obj = Config(self.config, self.config_sources)
        return self._config_obj

    def cached(self, key: str, factory: Callable[[], Any]) -> Any:
        """A per-worker cached value (e.g. an index of the targets table)."""
        if key not in self._cache:
            self._cache[key] = factory()
        return self._cache[key]


# --------------------------------------------------------------------------- tasks
def _read(path: str, context: BatchContext):
    from ..io import read_spectrum
    opts = context.options
    kwargs = {}
    for key in ("format", "obj"):
        if opts.get(key):
            kwargs[key] = opts[key]
    if opts.get("ignore_bad_errors"):
        kwargs["ignore_bad_errors"] = True
    return read_spectrum(path, **kwargs)


def inventory_task(path: str, context: BatchContext) -> dict[str, Table]:
    """Read one spectrum and summarise it (one row: coverage, pixels, S/N).

    Useful to check an archive before measuring it: every unreadable file is
    reported as failed with the reason.

    Parameters
    ----------
    path : str
        The spectrum file.
    context : BatchContext
        Batch context (``options['format']`` selects the reader).

    Returns
    -------
    dict
        ``{"objects": Table}`` with name, instrument, n_pix, n_masked,
        wave_min, wave_max (Angstrom), median_snr and redshift.
    """
    import astropy.units as u
    spec = _read(path, context)
    good = spec.good
    if not good.any():
        raise InputError("all pixels are masked", path)
    wave = spec.wavelength.to_value(u.AA)
    snr = spec.flux.value[good] / np.where(spec.error.value[good] > 0,
                                           spec.error.value[good], np.nan)
    row = Table()
    row["name"] = [spec.name]
    row["instrument"] = [str(spec.meta.get("instrument") or "")]
    row["n_pix"] = [int(wave.size)]
    row["n_masked"] = [int((~good).sum())]
    row["wave_min"] = [float(wave[good].min())] * u.AA
    row["wave_max"] = [float(wave[good].max())] * u.AA
    row["median_snr"] = [float(np.nanmedian(snr)) if np.isfinite(snr).any() else np.nan]
    row["redshift"] = np.ma.masked_array([spec.redshift if spec.redshift is not None else 0.0],
                                         mask=[spec.redshift is None])
    return {"objects": row}

#: Options of :func:`measure_input` (``context.options``) that change the measurement.
MEASURE_OPTIONS = ("z", "format", "obj", "mcmc", "ignore_bad_errors", "setup", "fitter", "seed")


def measure_input(path: str | Path, context: BatchContext):
    """Read one spectrum, find its targets row, and measure it: the one code path.

    ``xmpspec measure``, ``xmpspec batch``, the analysis chain (``xmpspec
    demo``) and the night chain (``xmpspec run``) all measure a file here.
    The targets row is found by :func:`xmpspec.lines.targets.match_target`
    (the spectrum's object name or its file name without extensions, else
    the nearest row within ``measure.target_match_arcsec`` of its position,
    in any coordinate format of the table). The redshift is
    ``options['z']`` if given, else the row's ``z``, else the spectrum's own,
    else found from the lines; the row's other columns are carried into the
    per-object row. A spectrum without a row when a table is given gets the
    note ``no targets row``.

    Parameters
    ----------
    path : path-like
        Spectrum file (any format :func:`xmpspec.io.read_spectrum` reads).
    context : BatchContext
        Configuration, targets table and options: ``z``, ``format``,
        ``obj``, ``ignore_bad_errors``, ``setup``, ``mcmc``, ``seed``,
        ``fitter`` (as the options of ``xmpspec measure``), ``keep_fits``
        (keep the fits for figures) and ``targets_source`` (name of the
        targets table in messages).

    Returns
    -------
    xmpspec.lines.measure.Measurement

    Raises
    ------
    XmpspecError
        The file cannot be read or the spectrum cannot be measured.
    """
    from ..lines.measure import measure_for_target
    from ..lines.targets import match_target

    opts = context.options
    cfg = context.config_obj
    spec = _read(str(path), context)
    z = opts.get("z")
    row = None
    targets = context.targets
    if targets is not None:
        radius = float(cfg["measure"]["target_match_arcsec"])
        row = match_target(spec.name, spec.meta.get("ra"), spec.meta.get("dec"), str(path),
                           targets, radius, source=opts.get("targets_source"))
        if row is None:
            log.warning("%s: no row of %s matches (name '%s' or position); the redshift "
                        "is %s", path, opts.get("targets_source") or "the targets table",
                        spec.name, "the one given" if z is not None
                        else "from the file or the lines")
    return measure_for_target(spec, path, row, z=z, targets_given=targets is not None,
                              config=cfg, setup=opts.get("setup"), mcmc=bool(opts.get("mcmc")),
                              ignore_bad_errors=bool(opts.get("ignore_bad_errors")),
                              fitter=opts.get("fitter") or "fast", seed=opts.get("seed"),
                              keep_fits=bool(opts.get("keep_fits")))


def measure_task(path: str, context: BatchContext):
    """The engine task of ``measure``/``batch``: :func:`measure_input` of one spectrum.

    Parameters
    ----------
    path : str
        The spectrum file.
    context : BatchContext
        Configuration, targets table and options (see :func:`measure_input`;
        ``derive`` is applied by the merge of a batch run).

    Returns
    -------
    xmpspec.lines.measure.Measurement
        The measurement; the chunk's measurements become the ``lines`` and
        ``objects`` tables in one go (``measure_task.assemble``).
    """
    return measure_input(path, context)


def with_input_column(table: Table, paths) -> Table:
    """A copy of ``table`` (data shared) with ``input_file`` as its first column."""
    t = table.copy(copy_data=False)
    if "input_file" in t.colnames:
        t.remove_column("input_file")
    t.add_column(list(paths), name="input_file", index=0)
    return t


def _assemble_measurements(items: list[tuple[str, Any]], context: BatchContext):
    """Per-line and per-object tables of a chunk's measurements.

    Derived properties (``options['derive']``) are computed on the merged
    objects table by :meth:`xmpspec.engine.run.BatchRun.merge`, not per chunk: the parts do not
    depend on ``--derive`` or the derive configuration, so a run can be
    resumed or re-merged with or without it. (The values would not depend on
    the grouping anyway: derive seeds its Monte Carlo per object.)

    Returns
    -------
    (dict, list)
        ``{"lines": Table, "objects": Table}`` and the late failures (a spectrum
        whose line fluxes are in another unit than the chunk's first).
    """
    from ..lines.measure import lines_table, objects_table
    paths = [p for p, _ in items]
    ms = [m for _, m in items]
    unit = next((m.line_flux_unit for m in ms if m.line_flux_unit is not None), None)
    late, keep = [], []
    for p, m in items:   # one line-flux unit per table (the first spectrum's)
        if m.line_flux_unit is not None and unit is not None and m.line_flux_unit != unit:
            late.append((p, "InputError", f"{p}: line fluxes in {m.line_flux_unit}, the "
                                          f"first spectrum's in {unit}: measure them "
                                          "separately"))
        else:
            keep.append((p, m))
    if late:
        paths = [p for p, _ in keep]
        ms = [m for _, m in keep]
    lines_t = with_input_column(lines_table(ms), [p for p, m in keep for _ in m.line_rows])
    objects = with_input_column(objects_table(ms), paths)
    return {"lines": lines_t, "objects": objects}, late


measure_task.assemble = _assemble_measurements
measure_task.config_sections = ("units", "lines", "doublets", "measure")
inventory_task.config_sections = ("units",)


TASKS: dict[str, Callable[[str, BatchContext], Any]] = {
    "measure": measure_task,
    "inventory": inventory_task,
}
