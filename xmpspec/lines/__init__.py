"""Emission-line measurement (science.md "Line measurement").

Public entry points (imported lazily, so ``xmpspec.lines.catalog`` stays light):

- :func:`measure_spectrum`, :func:`measure_file`, :class:`Measurement`,
  :func:`lines_table`, :func:`objects_table` (:mod:`xmpspec.lines.measure`, which
  re-exports them from :mod:`~xmpspec.lines.results`, :mod:`~xmpspec.lines.measure_rows`
  and :mod:`~xmpspec.lines.measure_tables`);
- :func:`group_lmfit_model`, :func:`fit_group_lmfit` (:mod:`xmpspec.lines.lmfit_model`):
  the same group model as an :class:`lmfit.Model` for custom fits;
- :func:`find_redshift` (:mod:`xmpspec.lines.redshift`);
- :func:`plot_measurement`, :func:`plot_corner` (:mod:`xmpspec.lines.plots`);
- :mod:`xmpspec.lines.ratios` (catalogue layer): the censored-ratio rules of N2, O3,
  O3N2 shared by ``measure`` and ``derive``; :func:`n2_posterior`
  (:mod:`xmpspec.lines.posterior`): the N2 posterior; :func:`error_scale`
  (:mod:`xmpspec.lines.noise`): the per-spectrum error scale (docs/n2.md).

Examples
--------
>>> from xmpspec.lines import measure_spectrum               # doctest: +SKIP
>>> from xmpspec.simulate import simulate_spectrum           # doctest: +SKIP
>>> spec, truth = simulate_spectrum("goodman_400", z=0.02, n2=-1.6, seed=1)  # doctest: +SKIP
>>> m = measure_spectrum(spec)                               # doctest: +SKIP
>>> m.row["n2"], m.row["n2_state"]                           # doctest: +SKIP
"""

from importlib import import_module

_LAZY = {
    "measure_spectrum": "measure", "measure_file": "measure", "Measurement": "measure",
    "lines_table": "measure", "objects_table": "measure", "LINE_KEYS": "measure",
    "group_lmfit_model": "lmfit_model", "fit_group_lmfit": "lmfit_model",
    "find_redshift": "redshift", "plot_measurement": "plots", "plot_corner": "plots",
    "line_catalog": "catalog", "n2_posterior": "posterior", "error_scale": "noise",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
