"""Exception types shared by every stage of xmpspec.

Every error caused by user input names the file (or object) and the problem,
so the command line can print a one-line message without a traceback.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "XmpspecError",
    "InputError",
    "ConfigError",
    "CoverageError",
    "FitError",
    "ReferenceDataError",
    "location",
]


def location(row: int | None = None, column: str | None = None) -> str:
    """Prefix naming a cell of a table in a message: ``"column 'z' row 3: "`` (or ``""``).

    Parameters
    ----------
    row : int, optional
        1-based data row.
    column : str, optional
        Column (or header keyword) name.
    """
    parts = []
    if column:
        parts.append(f"column '{column}'")
    if row is not None:
        parts.append(f"row {row}")
    return (" ".join(parts) + ": ") if parts else ""


class XmpspecError(Exception):
    """Base class of all errors raised deliberately by xmpspec.

    Parameters
    ----------
    problem : str
        What is wrong, in one line.
    source : str or path-like, optional
        The file (or object name) the problem belongs to.
    """

    exit_code = 2

    def __init__(self, problem: str, source: str | Path | None = None):
        self.problem = problem
        self.source = None if source is None else str(source)
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if self.source:
            return f"{self.source}: {self.problem}"
        return self.problem

    def __reduce__(self):  # picklable across process pools / dask workers
        return (self.__class__, (self.problem, self.source))


class InputError(XmpspecError):
    """Unreadable, corrupt or inconsistent input (file, table, column, header key)."""


class ConfigError(XmpspecError):
    """Invalid configuration file or option value."""


class CoverageError(XmpspecError):
    """A requested line or quantity falls outside the data's coverage."""


class FitError(XmpspecError):
    """A fit failed to converge or produced no usable result."""


class ReferenceDataError(XmpspecError):
    """Reference data needed for an offline reduction is missing."""
