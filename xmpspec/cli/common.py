"""Shared pieces of the command line: console, logging, progress bars, state.

Command modules (``xmpspec/cli/cmd_*.py``) import :data:`app` from
:mod:`xmpspec.cli.app` and use the helpers here; they stay thin: parse,
call the library, print.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
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
           "expand_inputs", "print_table", "flag", "strip_ansi", "EXIT_OK", "EXIT_PARTIAL",
           "EXIT_INPUT", "EXIT_INTERNAL"]

EXIT_OK = 0
EXIT_PARTIAL = 1   # some objects of a batch failed
EXIT_INPUT = 2     # usage or input error
EXIT_INTERNAL = 3  # a bug in xmpspec

# soft_wrap: printed text is never broken by rich (a path in "wrote PATH" stays one
# word whatever the width; the terminal folds long lines itself, copy-paste keeps them whole)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences (colours, cursor moves)."""
    return _ANSI.sub("", text)


class _AnsiStripped:
    """A text stream that drops ANSI escape codes and forwards everything else.

    Not a subclass of :class:`io.TextIOBase` on purpose: every attribute but
    ``write``/``writelines`` (``fileno``, ``buffer``, ``encoding``...) is the
    wrapped stream's own.
    """

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        return self._stream.write(strip_ansi(text))

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _strip_ansi_when_not_a_terminal() -> None:
    """Libraries that colour their own output (PypeIt's log) write plain text to pipes/files.

    Installed before PypeIt is imported, so its log handler takes the wrapped stream.
    """
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, _AnsiStripped) or stream is None:
            continue
        try:
            tty = stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        if not tty:
            setattr(sys, name, _AnsiStripped(stream))


def flag(value) -> str:
    """A boolean as a table flag: ``"yes"`` or ``""`` (masked/None: ``""``)."""
    try:
        import numpy as np
        if value is None or np.ma.is_masked(value):
            return ""
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, str):
        return "yes" if value.strip().lower() in ("true", "yes", "1", "y", "t") else ""
    return "yes" if bool(value) else ""


def print_table(columns: Sequence[str], rows: Iterable[Sequence], *, title: str | None = None,
                nowrap: Iterable[str] = (), styles: Sequence[str | None] | None = None,
                to_stderr: bool = False) -> None:
    """Print a table readable at any width, in a terminal and when piped.

    In a terminal: a rich table whose ``nowrap`` columns (file names, paths)
    are never folded over several lines, other columns wrapping at spaces;
    when the table would not fit the terminal, one block per row (first
    column as heading, then ``column  value`` lines) instead, so that nothing
    is folded or cut. Not a terminal (pipe, file): plain aligned text, full
    values, no colour codes.

    Parameters
    ----------
    columns : sequence of str
        Column titles.
    rows : iterable of sequences
        Cell values (``bool`` shown as :func:`flag`, None as empty).
    title : str, optional
    nowrap : iterable of str
        Columns never wrapped.
    styles : sequence of str or None, optional
        rich style of each row (terminal only).
    to_stderr : bool
        Print on standard error.
    """
    out = err_console if to_stderr else console
    body = [["" if v is None else (flag(v) if isinstance(v, bool) else str(v)) for v in r]
            for r in rows]
    nowrap = set(nowrap)
    widths = [max([len(c)] + [len(r[k]) for r in body]) for k, c in enumerate(columns)]
    if out.is_terminal and sum(widths) + 3 * len(columns) + 1 > out.width:
        # too wide for this terminal: one block per row (first column as its heading,
        # then "column: value" lines), so that nothing is folded or cut
        from rich.markup import escape
        if title:
            out.print(f"[italic]{escape(title)}[/]", highlight=False)
        key_w = max(len(c) for c in columns[1:]) if len(columns) > 1 else 0
        for i, r in enumerate(body):
            style = styles[i] if styles and styles[i] else None
            head = escape(r[0])
            out.print(f"[bold]{head}[/]" if not style else f"[bold {style}]{head}[/]",
                      highlight=False)
            for c, v in zip(columns[1:], r[1:], strict=True):
                if v:
                    out.print(f"  {escape(c.ljust(key_w))}  {escape(v)}", highlight=False)
        return
    if out.is_terminal:
        from rich.table import Table
        tab = Table(title=title)
        for c in columns:
            if c in nowrap:
                tab.add_column(c, no_wrap=True, overflow="ellipsis")
            else:
                tab.add_column(c, overflow="fold")
        for i, r in enumerate(body):
            tab.add_row(*r, style=styles[i] if styles else None)
        out.print(tab)
        return
    lines = [title] if title else []
    lines.append("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
              for r in body]
    out.print("\n".join(lines), markup=False, highlight=False, soft_wrap=True)


def _flags_without_type_in_help() -> None:
    """Boolean flags (--plots, --mcmc, --help) show no ``<bool>`` type in ``--help``."""
    try:
        from typer.core import TyperOption
    except ImportError:  # pragma: no cover
        return
    if getattr(TyperOption.display_type_rich, "_xmpspec", False):
        return
    original = TyperOption.display_type_rich

    def display_type_rich(self, ctx):
        if getattr(self, "is_flag", False) and not getattr(self, "count", False):
            return None
        return original(self, ctx)

    display_type_rich._xmpspec = True
    TyperOption.display_type_rich = display_type_rich


_flags_without_type_in_help()

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


class _PlainFormatter(logging.Formatter):
    """``warning: message`` (``--verbose``: with the logger name)."""

    def __init__(self, verbose: bool):
        super().__init__()
        self.verbose = verbose

    def format(self, record):
        text = f"{record.levelname.lower()}: {record.getMessage()}"
        if self.verbose:
            text = f"{record.name}: {text}"
            if record.exc_info:
                text += "\n" + self.formatException(record.exc_info)
        return text


def setup_logging(verbose: bool, quiet: bool) -> None:
    """Route xmpspec's logging to stderr at the chosen verbosity.

    In a terminal through rich; otherwise (pipe, file, CI log) one plain line
    per message, ``warning: <message>``, never wrapped.
    """
    _strip_ansi_when_not_a_terminal()
    level = logging.DEBUG if verbose else (logging.WARNING if quiet else logging.INFO)
    if err_console.is_terminal:
        handler = RichHandler(console=err_console, show_time=False, show_path=verbose,
                              markup=False, rich_tracebacks=verbose)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_PlainFormatter(verbose))
    root = logging.getLogger("xmpspec")
    root.handlers[:] = [handler]
    root.setLevel(level)
    # records still reach the root logger's handlers when someone installed any (pytest's
    # caplog, an application embedding the CLI); the root logger has none by default, so
    # nothing is printed twice
    root.propagate = True


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
        The paths as given (relative stay relative, see
        :func:`xmpspec.engine.discovery.as_given`), each file once (spellings
        of one file compared by their resolved paths).

    Raises
    ------
    xmpspec.errors.InputError
        An argument is neither a file nor a folder nor a glob that matches
        ("file not found"), or a file list names a missing file (the message
        names it).
    """
    from glob import has_magic

    from ..engine.discovery import (
        SPECTRUM_SUFFIXES,
        as_given,
        discover_inputs,
        is_file_list,
        unique_inputs,
    )
    from ..errors import InputError
    suffixes = tuple(suffixes or SPECTRUM_SUFFIXES)
    files: list[Path] = []
    for spec in specs:
        path = as_given(spec)
        if path.is_file() and not is_file_list(path):
            files.append(path)
        elif path.exists() or has_magic(str(spec)):
            files.extend(discover_inputs([spec], suffixes=suffixes, exclude=exclude))
        else:
            raise InputError("file not found (no such file, folder or glob match)", spec)
    unique = unique_inputs(files)
    return sorted(unique) if sort else unique
