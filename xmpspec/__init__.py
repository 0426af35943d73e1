"""xmpspec: spectroscopic follow-up of extremely metal-poor (XMP) galaxy candidates.

Stages follow the data: ``reduce`` (PypeIt) -> :class:`Spectrum` ->
``lines`` (measurements) -> ``physics`` (derived properties) -> ``compare``
and ``products`` (tables, figures, report).

The Python API (``docs/api.md``)::

    spec = xmpspec.read_spectrum("spec.fits")
    objects = xmpspec.measure(spec, z=0.03)      # paths, Spectrum or specutils spectra
    derived = xmpspec.derive(objects)
    comparison = xmpspec.compare(derived, "selection.csv")

Names are imported lazily (module ``__getattr__``): ``import xmpspec`` stays
light and loads the measuring, physics and comparison code on first use.
"""

from __future__ import annotations

import importlib
import sys
import types

from ._version import __version__

#: public name -> defining module
_LAZY = {
    "Spectrum": "xmpspec.spectrum",
    "FLUX_UNIT": "xmpspec.spectrum",
    "LINE_FLUX_UNIT": "xmpspec.spectrum",
    "Config": "xmpspec.config",
    "load_config": "xmpspec.config",
    "XmpspecError": "xmpspec.errors",
    "InputError": "xmpspec.errors",
    "read_spectrum": "xmpspec.api",
    "as_spectrum": "xmpspec.api",
    "measure": "xmpspec.api",
    "derive": "xmpspec.api",
    "compare": "xmpspec.api",
    "write_report": "xmpspec.products.report",
}

__all__ = ["__version__", *_LAZY]


#: API functions named like a submodule (``xmpspec.compare`` the function vs the module
#: ``xmpspec/compare.py``): importing the submodule must not replace the function
_SHADOWED = frozenset({"compare"})


class _Package(types.ModuleType):
    def __setattr__(self, name, value):
        if name in _SHADOWED and isinstance(value, types.ModuleType):
            return  # the submodule stays importable through sys.modules
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'xmpspec' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
