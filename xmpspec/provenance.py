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
import json
import platform
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from ._version import __version__
from .config import Config, get_active_config

__all__ = ["package_versions", "provenance_record", "provenance_lines", "TRACKED_PACKAGES"]

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
            out[name] = _installed_version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _installed_version(name: str) -> str:
    """``importlib.metadata.version(name)``, read from the ``Version:`` line of the metadata.

    ``metadata.version`` parses the whole metadata file with the e-mail parser
    (a long package description: ~2 ms per package, every run); the header line
    gives the same text. Metadata without that line go through ``metadata.version``.
    """
    dist = metadata.distribution(name)
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    for line in text.splitlines():
        if not line.strip():
            break                               # end of the header
        if line.startswith("Version:"):
            return line[len("Version:"):].strip()
    return dist.version


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


def _config_changes(config: dict, defaults: dict, prefix: str = "") -> list[str]:
    """``section.key=value`` for every value of ``config`` that differs from ``defaults``."""
    out = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        base = defaults.get(key) if isinstance(defaults, dict) else None
        if isinstance(value, dict):
            out += _config_changes(value, base if isinstance(base, dict) else {}, name + ".")
        elif value != base:
            out.append(f"{name}={json.dumps(value, default=str)}")
    return out


def provenance_lines(record: dict) -> list[str]:
    """A provenance record as plain text, for outputs that only take comments or notes.

    LaTeX (``%`` comments), MRT notes, aligned text tables, the comparison summary
    and TOML files carry these lines; the full record (whole configuration) is in the
    ECSV/FITS files written beside them. The configuration is given completely as its
    sources and every value that differs from the packaged defaults of this version.

    Parameters
    ----------
    record : dict
        A record of :func:`provenance_record`.

    Returns
    -------
    list of str
        Lines without a comment prefix (the writer adds its own).
    """
    from .config import default_config
    cfg = record.get("config") or {}
    changes = _config_changes(cfg, default_config().to_dict())
    sources = " + ".join(record.get("config_sources") or ["defaults"])
    lines = [f"written by {record.get('software', 'xmpspec')} "
             f"{record.get('xmpspec_version', __version__)}"
             + (f" ({record['step']})" if record.get("step") else "")
             + (f", {record['created_utc']}" if record.get("created_utc") else ""),
             f"command: {record.get('command', '')}",
             f"inputs: {', '.join(map(str, record.get('inputs') or [])) or '-'}",
             f"configuration: {sources}; differs from the defaults in: "
             + (", ".join(changes) if changes else "nothing"),
             "versions: " + ", ".join(f"{k} {v}"
                                      for k, v in (record.get("versions") or {}).items())]
    if record.get("extra"):
        lines.append("extra: " + json.dumps(record["extra"], default=str, ensure_ascii=False))
    return lines


def _safe_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"
