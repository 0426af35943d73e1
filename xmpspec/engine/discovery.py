"""Input discovery: folders, globs and file lists expanded into the ordered list of inputs.

One rule for every command (``measure``, ``batch``, ``inspect``...): see
:func:`discover_inputs` and :func:`is_file_list`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from glob import glob, has_magic
from pathlib import Path

from ..errors import InputError

__all__ = ["SPECTRUM_SUFFIXES", "FILE_LIST_SUFFIXES", "is_file_list", "discover_inputs", "as_given",
           "unique_inputs"]

#: File name endings taken as spectra when an input is a folder.
SPECTRUM_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz", ".fits.fz", ".fz")


def _has_suffix(path: Path, suffixes: Sequence[str]) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in suffixes)


FILE_LIST_SUFFIXES = (".txt", ".lst", ".list")
_PATH_LIKE_SUFFIXES = (".fits", ".fit", ".fz", ".gz", ".ecsv", ".csv", ".txt", ".dat", ".ascii",
                       ".tsv", ".pypeit")


def is_file_list(path: str | Path) -> bool:
    """Whether a file is a list of input files rather than an input itself.

    ``.lst``/``.list`` files are lists. A ``.txt`` file may also be an ASCII
    spectrum (possibly with a header line of column names): it is a list only
    if its first non-comment line is an existing file (relative to the list's
    folder) or a file name with a spectrum- or table-like ending. An empty
    ``.txt`` (or one with only comments) is an empty list.

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    bool
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FILE_LIST_SUFFIXES:
        return False
    if suffix != ".txt":
        return True
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                entry = Path(text).expanduser()
                entry = entry if entry.is_absolute() else path.parent / entry
                return entry.is_file() or entry.name.lower().endswith(_PATH_LIKE_SUFFIXES)
    except OSError as exc:
        raise InputError(f"cannot read ({exc})", path) from None
    return True  # empty or only comments: an empty list


def _read_file_list(path: Path) -> list[Path]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            p = Path(text).expanduser()
            out.append(p if p.is_absolute() else path.parent / p)
    return out


def discover_inputs(specs: str | Path | Iterable[str | Path],
                    suffixes: Sequence[str] = SPECTRUM_SUFFIXES,
                    exclude: Iterable[str | Path] = ()) -> list[Path]:
    """Expand folders, globs and file lists into the ordered list of input spectra.

    Parameters
    ----------
    specs : path-like or iterable of path-like
        Each item is a folder (every file ending in one of ``suffixes``,
        searched recursively, hidden files skipped, sorted), a glob pattern
        (``'data/*/spec-*.fits'``; ``**`` recurses), a file list (``.lst`` or
        ``.list``, or a ``.txt`` whose first entry names a file, see
        :func:`is_file_list`; one path per line, relative paths taken from
        the list's folder, ``#`` comments), or one spectrum file (an ASCII
        ``.txt`` spectrum included).
    suffixes : sequence of str
        File name endings taken as spectra inside folders.
    exclude : iterable of path-like
        Folders whose content is never an input (the output folder).

    Returns
    -------
    list of pathlib.Path
        The inputs spelled as given (see :func:`as_given`): a relative
        folder, glob or list gives relative paths, an absolute one absolute
        paths; never resolved, so outputs that name the inputs carry no
        machine path the user did not type. Duplicates (the same file under
        different spellings, symbolic links included: compared by their
        resolved paths) are removed, the first spelling kept, in discovery
        order.

    Raises
    ------
    InputError
        A named file or folder does not exist, a glob matches nothing, or a
        listed file is missing.
    """
    if isinstance(specs, str | Path):
        specs = [specs]
    excluded = [Path(e).resolve() for e in exclude]

    def keep(p: Path) -> bool:
        return not any(p == e or e in p.parents for e in excluded)

    found: list[Path] = []
    for spec in specs:
        text = str(spec)
        path = Path(text).expanduser()
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*")
                if p.is_file() and _has_suffix(p, suffixes)
                and not any(part.startswith(".") for part in p.relative_to(path).parts))
            found.extend(p for p in files if keep(p.resolve()))
        elif path.is_file():
            if is_file_list(path):
                listed = _read_file_list(path)
                missing = [str(p) for p in listed if not p.is_file()]
                if missing:
                    more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
                    raise InputError(f"listed file(s) not found: {', '.join(missing[:5])}{more}",
                                     path)
                found.extend(listed)
            else:
                found.append(path)
        elif has_magic(text):
            matches = sorted(Path(m) for m in glob(str(path), recursive=True))
            matches = [m for m in matches if m.is_file() and keep(m.resolve())]
            if not matches:
                raise InputError("glob pattern matches no file", text)
            found.extend(matches)
        else:
            raise InputError("no such file, folder or glob match", text)
    return unique_inputs(found)


def as_given(path: str | Path) -> Path:
    """An input path as the user gave it: ``~`` expanded, otherwise not resolved.

    Relative paths stay relative (to the working folder), absolute ones
    stay absolute; ``pathlib`` only drops ``.`` components and doubled
    slashes. This is the spelling every output records (``source_file``,
    ``input_file``, provenance, failures).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    pathlib.Path
    """
    return Path(path).expanduser()


def unique_inputs(paths: Iterable[str | Path]) -> list[Path]:
    """Paths as given, each file once (first spelling kept), in order.

    Two spellings are the same input when they resolve to the same file
    (``a.fits``, ``./d/../a.fits``, an absolute path or a symbolic link to
    it).

    Parameters
    ----------
    paths : iterable of path-like

    Returns
    -------
    list of pathlib.Path
    """
    seen: set[str] = set()
    out = []
    for p in paths:
        p = as_given(p)
        key = str(p.resolve())
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out
