"""Temporary files that a killed workflow left beside its outputs.

Every table, figure and report is written atomically (a hidden temporary
file renamed onto the target, :func:`xmpspec.tableio.atomic_path`); a run
killed mid-write leaves the temporary behind (``.derived.ecsv.<random>.part.ecsv``).
The workflows (measure, chain, night) call :func:`clean_leftovers` with their
outputs at start and at end. The files are recognised and removed by the
engine's :func:`xmpspec.engine.manifest.clean_temporaries` (the one rule, also
used by ``xmpspec measure`` and ``xmpspec batch``), under the output folder's
:class:`~xmpspec.engine.manifest.OutputLock` so that the temporaries of
another running command are never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from ..engine.manifest import OutputLock, clean_temporaries
from ..errors import InputError

__all__ = ["OUTPUT_SUFFIXES", "clean_leftovers", "output_stem"]

log = logging.getLogger("xmpspec.workflows")

#: extensions of the files the workflows write; ``output_stem`` drops them
OUTPUT_SUFFIXES = frozenset({".ecsv", ".fits", ".parquet", ".csv", ".txt", ".tex", ".mrt",
                             ".html", ".png", ".pdf", ".svg", ".jpg", ".jsonl"})


def output_stem(path: str | Path) -> tuple[Path, str]:
    """The folder and stem of an output given as a stem or as one of its files.

    Parameters
    ----------
    path : path-like
        ``OUT/derived``, ``OUT/derived.ecsv`` or ``OUT/objects.derived.fits``.

    Returns
    -------
    (Path, str)
        ``(OUT, "derived")``; ``(OUT, "objects.derived")`` for the last one.

    Examples
    --------
    >>> output_stem("out/objects.derived.fits")
    (PosixPath('out'), 'objects.derived')
    """
    p = Path(path)
    name = p.name
    if p.suffix.lower() in OUTPUT_SUFFIXES:
        name = p.name[:-len(p.suffix)]
    return p.parent, name


def clean_leftovers(outputs: Iterable[str | Path], command: str = "xmpspec") -> int:
    """Remove the temporary files of killed runs for these outputs.

    Parameters
    ----------
    outputs : iterable of path-like
        Outputs as stems or files (see :func:`output_stem`); grouped by folder.
    command : str
        Name recorded in the folder's lock while cleaning.

    Returns
    -------
    int
        Files and folders removed. A folder that does not exist or cannot be
        written is skipped (the command reports the latter when it writes); a
        folder locked by another running command is left alone (that command
        cleans it).
    """
    folders: dict[Path, set[str]] = {}
    for out in outputs:
        if out is None:
            continue
        folder, stem = output_stem(out)
        if stem:
            folders.setdefault(folder, set()).add(stem)
    n = 0
    for folder, stems in folders.items():
        if not folder.is_dir():
            continue
        try:
            with OutputLock(folder, command):
                n += clean_temporaries(folder, sorted(stems))
        except InputError as exc:        # another running command holds the folder
            log.debug("temporaries of %s not cleaned: %s", folder, exc)
        except OSError as exc:           # a folder we cannot write: the command says so
            log.debug("temporaries of %s not cleaned: %s", folder, exc)
    return n
