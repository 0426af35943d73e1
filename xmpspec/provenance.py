"""Provenance records attached to every output table.

A provenance record names the xmpspec version, the versions of the libraries
that shaped the numbers (astropy, numpy, lmfit, emcee, PyNeb, PypeIt, ...),
the resolved configuration, the input files and the command that produced
the table. It goes into ``Table.meta['provenance']`` (ECSV keeps it as YAML)
and, for FITS, into ``XMP*`` header cards plus the whole record as JSON in a
``PROVENANCE`` extension (see :mod:`xmpspec.tableio`).
"""

from __future__ import annotations

import datetime as _dt
import functools
import getpass
import platform
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from ._version import __version__
from .config import Config, get_active_config

__all__ = ["package_versions", "provenance_record", "TRACKED_PACKAGES"]

TRACKED_PACKAGES = (
    "numpy", "scipy", "astropy", "specutils", "lmfit", "emcee", "pyneb",
    "dust_extinction", "pypeit", "matplotlib", "dask",
)


def package_versions(packages: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``packages`` (without importing them; looked up once per process)."""
    return dict(_package_versions(tuple(packages)))


@functools.lru_cache(maxsize=8)
def _package_versions(packages: tuple[str, ...]) -> dict[str, str]:
    out = {"python": platform.python_version(), "xmpspec": __version__}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def provenance_record(inputs: Iterable[str | Path] = (), config: Config | None = None,
                      step: str | None = None, extra: dict | None = None) -> dict:
    """Build the provenance dictionary for an output table.

    Parameters
    ----------
    inputs : iterable of path-like
        Input files the table was computed from.
    config : Config, optional
        The resolved configuration (default: the active one).
    step : str, optional
        The xmpspec step (``"measure"``, ``"derive"``, ...).
    extra : dict, optional
        Anything else worth recording (e.g. PypeIt file, random seed).

    Returns
    -------
    dict
        JSON/YAML-serialisable record.
    """
    cfg = config if config is not None else get_active_config()
    record = {
        "software": "xmpspec",
        "xmpspec_version": __version__,
        "step": step,
        "created_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:]) if sys.argv else "",
        "user": _safe_user(),
        "host": platform.node(),
        "versions": package_versions(),
        "inputs": [str(Path(p)) for p in inputs],
        "config_sources": list(cfg.sources),
        "config": cfg.to_dict(),
    }
    if extra:
        record["extra"] = dict(extra)
    return record


def _safe_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"
