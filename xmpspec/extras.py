"""Optional dependencies (pip extras) and the message when one is missing.

The core install (``pip install xmpspec``) reads spectra, measures, derives,
compares and writes tables and figures. Two groups of work need an extra:

* ``reduce``: PypeIt (``xmpspec cache``, ``setup``, ``reduce``, ``run``,
  ``simulate night``, reading PypeIt spec1d/coadd1d files);
* ``dask``: Dask distributed (``xmpspec batch --scheduler``).

``all`` installs both. Code that imports one of these packages lazily calls
:func:`require` (or lets the ``ModuleNotFoundError`` reach the command line,
which turns it into the same one-line message via :func:`missing_extra`):
``xmpspec setup needs PypeIt: pip install 'xmpspec[reduce]'`` (exit code 2).

Core layer: standard library and :mod:`xmpspec.errors` only.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from .errors import InputError

__all__ = ["EXTRAS", "MissingExtraError", "require", "available", "missing_extra"]

#: top-level module -> (pip extra, what it is called in messages)
EXTRAS: dict[str, tuple[str, str]] = {
    "pypeit": ("reduce", "PypeIt"),
    "dask": ("dask", "Dask"),
    "distributed": ("dask", "Dask distributed"),
}


class MissingExtraError(InputError):
    """An optional dependency (pip extra) is not installed."""


def _message(module: str, purpose: str | None) -> str:
    top = module.split(".")[0]
    extra, label = EXTRAS[top]
    who = purpose or "this"
    return f"{who} needs {label}: pip install 'xmpspec[{extra}]'"


def available(module: str) -> bool:
    """Whether ``module`` (e.g. ``'pypeit'``) can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, purpose: str | None = None) -> ModuleType:
    """Import an optional dependency, or raise :class:`MissingExtraError`.

    Parameters
    ----------
    module : str
        Module to import, e.g. ``'pypeit.specobjs'`` or ``'dask.distributed'``;
        its top-level package must be one of :data:`EXTRAS`.
    purpose : str, optional
        What needs it, for the message (e.g. ``'xmpspec setup'``).

    Returns
    -------
    module
        The imported module.

    Raises
    ------
    MissingExtraError
        The package (or one it needs from the same extra) is not installed.
    """
    if module.split(".")[0] not in EXTRAS:
        raise ValueError(f"{module!r} is not an optional dependency of xmpspec")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        msg = missing_extra(exc, purpose)
        if msg is None:
            raise
        raise MissingExtraError(msg) from None


def missing_extra(exc: BaseException, purpose: str | None = None) -> str | None:
    """The one-line install hint for a ``ModuleNotFoundError`` of an extra, else None.

    Parameters
    ----------
    exc : BaseException
        The exception raised by an import.
    purpose : str, optional
        What needed it (e.g. ``'xmpspec setup'``).
    """
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    top = exc.name.split(".")[0]
    if top not in EXTRAS:
        return None
    return _message(top, purpose)
