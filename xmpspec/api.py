"""The Python API: read a spectrum, measure, derive, compare (``xmpspec.<name>``).

Each function takes paths or objects in memory and returns astropy tables,
through the same library functions as the commands:

===========================  ==================================================
:func:`read_spectrum`        ``xmpspec inspect``'s reader (:func:`xmpspec.io.read_spectrum`)
:func:`measure`              ``xmpspec measure``: files go through the engine's one
                             measurement path (targets matching included); spectra
                             in memory (xmpspec ``Spectrum`` or specutils
                             ``Spectrum``/``Spectrum1D``) through
                             :func:`xmpspec.lines.measure.measure_spectrum`, which
                             that path calls
:func:`derive`               ``xmpspec derive`` (:func:`xmpspec.physics.derive.derive_table`)
:func:`compare`              ``xmpspec compare`` (:func:`xmpspec.compare.compare_tables`)
===========================  ==================================================

This module sits at the workflows layer; ``import xmpspec`` loads it only
when one of these names is first used. Examples: ``docs/api.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from astropy.table import Table

from .config import Config, get_active_config
from .errors import InputError
from .spectrum import Spectrum

__all__ = ["read_spectrum", "as_spectrum", "measure", "derive", "compare"]


def read_spectrum(path: str | Path, format: str | None = None, **options) -> Spectrum:
    """Read a 1D spectrum from any supported file (format detected from the content).

    Parameters
    ----------
    path : path-like
        PypeIt spec1d/coadd1d, SDSS/BOSS ``spec-*.fits``, 1D FITS image with a
        WCS, FITS table, ECSV, CSV or ASCII.
    format : str, optional
        Force a reader (``xmpspec.io.list_formats()``).
    **options
        Passed to :func:`xmpspec.io.read_spectrum` (``obj``, ``ra``, ``dec``,
        ``extraction``, ``fluxed``, ``medium``, ``ignore_bad_errors``).

    Returns
    -------
    xmpspec.spectrum.Spectrum
        Wavelengths (vacuum Angstrom), flux and error as Quantities.
    """
    from .io import read_spectrum as _read
    return _read(path, format=format, **options)


def _is_specutils(obj) -> bool:
    return type(obj).__module__.split(".")[0] == "specutils" and hasattr(obj, "spectral_axis")


def as_spectrum(obj) -> Spectrum:
    """An xmpspec :class:`~xmpspec.spectrum.Spectrum` from a Spectrum, specutils spectrum or file.

    Parameters
    ----------
    obj : Spectrum, specutils.Spectrum (or Spectrum1D), or path-like

    Returns
    -------
    Spectrum

    Raises
    ------
    InputError
        ``obj`` is none of these (or a specutils spectrum without uncertainty).
    """
    from .spectrum import as_spectrum as _as_spectrum
    if isinstance(obj, (str, Path)):
        return read_spectrum(obj)
    if isinstance(obj, Spectrum) or _is_specutils(obj):
        return _as_spectrum(obj)
    raise InputError(f"cannot make a spectrum from a {type(obj).__name__}: give a file, an "
                     "xmpspec Spectrum or a specutils spectrum")


def _items(spectra) -> list:
    if isinstance(spectra, (str, Path, Spectrum)) or _is_specutils(spectra):
        return [spectra]
    if isinstance(spectra, Iterable):
        return list(spectra)
    return [spectra]


def measure(spectra, z: float | None = None, *, targets=None, setup: str | None = None,
            config: Config | None = None, mcmc: bool = False, name: str | None = None,
            lines: bool = False, seed: int | None = None):
    """Measure the emission lines of one or more spectra.

    Parameters
    ----------
    spectra : path-like, Spectrum, specutils spectrum, or a list of them
        Files are read and matched to ``targets`` as ``xmpspec measure`` does;
        spectra in memory are measured directly.
    z : float, optional
        Redshift of every spectrum (default: the targets row, else the
        spectrum's own, else found from the lines).
    targets : astropy.table.Table or path-like, optional
        Targets table (``name``, ``z``, optional ``ra``/``dec``) for files.
    setup : str, optional
        Observing set-up (``sdss``, ``int_ids_r632v``, ``goodman_400``, ``mage``).
    config : Config, optional
        Configuration (default: the packaged defaults).
    mcmc : bool
        emcee posteriors for the errors and N2.
    name : str, optional
        Object name (one spectrum only).
    lines : bool
        Also return the per-line table.
    seed : int, optional
        Random seed of the MCMC.

    Returns
    -------
    objects : astropy.table.QTable
        One row per spectrum (columns of ``xmpspec measure``'s objects table:
        ``name, z, f_ha, significance, n2, n2_err, n2_upper_limit, n2_state, ...``).
    lines : astropy.table.QTable
        Only with ``lines=True``: one row per line and spectrum.

    Raises
    ------
    InputError
        A file cannot be read, or an object is not a spectrum.
    XmpspecError
        A spectrum cannot be measured.
    """
    from .engine.tasks import measure_input
    from .lines.measure import lines_table, measure_spectrum, objects_table
    from .workflows.measure import measure_context

    cfg = config if config is not None else get_active_config()
    items = _items(spectra)
    if not items:
        raise InputError("no spectrum to measure")
    if name is not None and len(items) > 1:
        raise InputError("name= applies to one spectrum; the spectra carry their own names")
    results = []
    context = None   # the targets table is read, validated and indexed once for all files
    for item in items:
        if isinstance(item, (str, Path)):
            if context is None:
                context = measure_context(targets, cfg, z=z, setup=setup, mcmc=mcmc, seed=seed,
                                          keep_fits=True)
            meas = measure_input(item, context)
            if name is not None:
                meas.row["name"] = name
        else:
            if targets is not None:
                raise InputError("a targets table is matched to spectrum files; for a "
                                 "spectrum in memory give z= (and name=)")
            meas = measure_spectrum(as_spectrum(item), z=z, setup=setup, config=cfg,
                                    mcmc=mcmc, name=name, seed=seed,
                                    z_source="argument" if z is not None else None,
                                    keep_fits=False)
        results.append(meas)
    objects = objects_table(results)
    return (objects, lines_table(results)) if lines else objects


def _table(obj, what: str) -> tuple[Table, str]:
    from .tableio import read_table
    if isinstance(obj, Table):
        return Table(obj, copy=False), f"the {what} table"
    if isinstance(obj, (str, Path)):
        return read_table(obj), str(obj)
    raise InputError(f"the {what} must be an astropy Table or a file, not "
                     f"{type(obj).__name__}")


def derive(table, *, photometry=None, distances=None, config: Config | None = None,
           n2_calibration: str | None = None, seed: int | None = None) -> Table:
    """Derived properties (D_L, L(Halpha), SFR, O/H, Te, dust, M*, BPT) of measured objects.

    Parameters
    ----------
    table : astropy.table.Table or path-like
        An objects table (:func:`measure`, ``xmpspec measure``), a per-line
        table (one row per line, pivoted to objects as ``xmpspec derive``
        does) or a user table with the same column names.
    photometry, distances : astropy.table.Table or path-like, optional
        ``name, r, r_err, i, i_err`` (stellar masses); ``name, dl_corr_mpc,
        dl_corr_mpc_err`` (corrected distances).
    config : Config, optional
        Configuration (default: the packaged defaults).
    n2_calibration : {"Y07", "PP04"}, optional
        Calibration of ``oh_n2``.
    seed : int, optional
        Seed of the direct-method Monte Carlo.

    Returns
    -------
    astropy.table.Table
        The input columns plus the derived ones (DEVELOPERS.md), with units.
    """
    from .physics.derive import derive_table, pivot_line_table
    cfg = config if config is not None else get_active_config()
    tab, source = _table(table, "objects")
    if ("line" in tab.colnames or "key" in tab.colnames) and "flux" in tab.colnames:
        tab = pivot_line_table(tab, source)
    phot = _table(photometry, "photometry")[0] if photometry is not None else None
    dist = _table(distances, "distances")[0] if distances is not None else None
    return derive_table(Table(tab), cfg, photometry=phot, distances_table=dist,
                        n2_calibration=n2_calibration, seed=seed, source=source)


def compare(observed, selection, *, config: Config | None = None) -> Table:
    """Observed N2 against the selection catalogue's prediction (CNN).

    Parameters
    ----------
    observed : astropy.table.Table or path-like
        Output of :func:`measure` / :func:`derive` (``name``, ``n2``, ``n2_err``,
        ``n2_upper_limit``, ``significance``, optional ``ra``/``dec``).
    selection : astropy.table.Table or path-like
        Selection catalogue: ``name``, ``ra``, ``dec``, ``n2_cnn``, ``n2_cnn_err``.
    config : Config, optional
        Configuration (default: the packaged defaults).

    Returns
    -------
    astropy.table.Table
        One row per observed object (match, observed and predicted N2, their
        difference, grade, outcome); ``meta`` holds ``statistics`` (MAE, bias,
        RMS of all/good/fair detections), ``band``, ``classes`` and ``report``.
    """
    from .compare import compare_tables
    cfg = config if config is not None else get_active_config()
    obs, obs_src = _table(observed, "observed")
    cat, cat_src = _table(selection, "selection")
    result = compare_tables(obs, cat, config=cfg, observed_source=obs_src,
                            catalogue_source=cat_src)
    out = result.table
    out.meta["statistics"] = result.statistics
    out.meta["band"] = result.band
    out.meta["classes"] = result.classes
    out.meta["report"] = list(result.report)
    return out
