"""Shared pieces of the command line: console, logging, progress bars, state.

Command modules (``xmpspec/cli/cmd_*.py``) import :data:`app` from
:mod:`xmpspec.cli.app` and use the helpers here; they stay thin: parse,
call the library, print.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..config import Config, load_config, set_active_config

__all__ = ["console", "err_console", "state", "progress_bar", "track", "setup_logging",
           "expand_inputs", "EXIT_OK", "EXIT_PARTIAL", "EXIT_INPUT", "EXIT_INTERNAL"]

EXIT_OK = 0
EXIT_PARTIAL = 1   # some objects of a batch failed
EXIT_INPUT = 2     # usage or input error
EXIT_INTERNAL = 3  # a bug in xmpspec

console = Console()
err_console = Console(stderr=True)

T = TypeVar("T")


@dataclass
class CLIState:
    """Global options of the running command."""

    verbose: bool = False
    quiet: bool = False
    config_path: Path | None = None
    overrides: dict = field(default_factory=dict)
    _config: Config | None = None

    @property
    def config(self) -> Config:
        """The resolved configuration (file + command-line overrides)."""
        if self._config is None:
            self._config = load_config(self.config_path, self.overrides or None)
            set_active_config(self._config)
        return self._config

    def override(self, **dotted) -> Config:
        """Apply command-line overrides (dotted keys; None values ignored)."""
        vals = {k.replace("__", "."): v for k, v in dotted.items() if v is not None}
        if vals:
            self._config = self.config.updated(vals)
            set_active_config(self._config)
        return self.config


state = CLIState()


def setup_logging(verbose: bool, quiet: bool) -> None:
    """Route xmpspec's logging through rich on stderr at the chosen verbosity."""
    level = logging.DEBUG if verbose else (logging.WARNING if quiet else logging.INFO)
    handler = RichHandler(console=err_console, show_time=False, show_path=verbose,
                          markup=False, rich_tracebacks=verbose)
    root = logging.getLogger("xmpspec")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def progress_bar(transient: bool = False) -> Progress:
    """A rich progress bar with count, rate-based ETA and elapsed time.

    Disabled (no output) with ``--quiet``.
    """
    return Progress(SpinnerColumn(), TextColumn("[progress.description]{task.description}"),
                    BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("eta"), TimeRemainingColumn(),
                    console=err_console, transient=transient, disable=state.quiet)


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar (hidden with ``--quiet``)."""
    items = list(items) if total is None else items
    total = len(items) if total is None else total
    with progress_bar() as prog:
        task = prog.add_task(description, total=total)
        for item in items:
            yield item
            prog.advance(task)


def expand_inputs(specs: Iterable[str | Path], suffixes: Iterable[str] | None = None,
                  exclude: Iterable[str | Path] = (), sort: bool = True) -> list[Path]:
    """Expand the file arguments of a command into a list of files.

    Each item is a file, a folder (its files ending in one of ``suffixes``,
    recursively, hidden ones skipped), a glob pattern (quoted, so that the
    shell leaves it; ``**`` recurses) or a file list (``.lst``/``.list``, or
    a ``.txt`` whose first entry is a file name: one path a line, relative to
    the list's folder, ``#`` comments; any other ``.txt`` is an input itself,
    e.g. an ASCII spectrum). Folders, globs and lists are expanded by
    :func:`xmpspec.engine.discovery.discover_inputs`, as ``xmpspec batch`` does, so
    every command reads its inputs the same way.

    Parameters
    ----------
    specs : iterable of path-like
        The command-line arguments.
    suffixes : iterable of str, optional
        File endings taken from folders (default: FITS files,
        :data:`xmpspec.engine.discovery.SPECTRUM_SUFFIXES`).
    exclude : iterable of path-like
        Folders whose files are never inputs (e.g. the output folder).
    sort : bool
        Sort the files by path (default); otherwise keep the order given.

    Returns
    -------
    list of pathlib.Path
        Absolute paths, each once.

    Raises
    ------
    xmpspec.errors.InputError
        An argument is neither a file nor a folder nor a glob that matches
        ("file not found"), or a file list names a missing file (the message
        names it).
    """
    from glob import has_magic

    from ..engine.discovery import SPECTRUM_SUFFIXES, discover_inputs, is_file_list
    from ..errors import InputError
    suffixes = tuple(suffixes or SPECTRUM_SUFFIXES)
    files: list[Path] = []
    for spec in specs:
        path = Path(spec).expanduser()
        if path.is_file() and not is_file_list(path):
            files.append(path.resolve())
        elif path.exists() or has_magic(str(spec)):
            files.extend(discover_inputs([spec], suffixes=suffixes, exclude=exclude))
        else:
            raise InputError("file not found (no such file, folder or glob match)", spec)
    unique = list(dict.fromkeys(files))
    return sorted(unique) if sort else unique
