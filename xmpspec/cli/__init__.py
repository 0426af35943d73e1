"""xmpspec command line.

Each subcommand lives in its own module ``xmpspec/cli/cmd_<name>.py`` that
registers itself on :data:`xmpspec.cli.app.app`; modules are discovered here
so that adding a command never touches another one. Heavy libraries
(PypeIt, PyNeb, dask) are imported inside the command functions to keep
``xmpspec --help`` fast.

Exit codes: 0 success, 1 some objects of a batch failed, 2 usage or input error,
3 internal error (a bug: please report it with the ``--verbose`` traceback).

User errors that are not :class:`~xmpspec.errors.XmpspecError` are mapped here too,
so every command reports them the same way (exit 2, one line naming the path):

* an ``OSError`` that names a file (``PermissionError``, ``NotADirectoryError``,
  ``FileExistsError``, ``IsADirectoryError``, ``FileNotFoundError``, a full or
  read-only disk): an output folder that cannot be written, an output path under an
  existing file, a vanished input;
* a missing optional dependency (``ModuleNotFoundError`` of PypeIt or Dask): the
  message names the pip extra to install (:mod:`xmpspec.extras`).
"""

from __future__ import annotations

import errno
import importlib
import pkgutil
import sys

import typer
from rich.markup import escape

from ..config import active_config_scope
from ..errors import XmpspecError
from ..extras import missing_extra
from .app import app
from .common import EXIT_INPUT, EXIT_INTERNAL, err_console, state

# typer >= 0.20 vendors its own copy of click (typer._click) and has its own Exit/Abort:
# catch both families so that usage errors give exit code 2, not "internal error".
# click itself is only present when something else installs it (Dask does; typer >= 0.20
# does not need it), so it is optional here.
_ABORT: tuple[type[BaseException], ...] = (typer.Abort,)
_EXIT: tuple[type[BaseException], ...] = (typer.Exit,)
_CLICK_ERROR: tuple[type[BaseException], ...] = ()
try:
    import click
except ImportError:
    pass
else:
    _ABORT = (*_ABORT, click.exceptions.Abort)
    _EXIT = (*_EXIT, click.exceptions.Exit)
    _CLICK_ERROR = (*_CLICK_ERROR, click.ClickException)
try:  # typer >= 0.20 vendors click as typer._click (its Abort/Exit are typer.Abort/Exit)
    from typer._click import exceptions as _typer_click
except ImportError:  # older typer uses click itself
    pass
else:
    _CLICK_ERROR = (*_CLICK_ERROR, _typer_click.ClickException)
    _ABORT = (*_ABORT, *filter(None, [getattr(_typer_click, "Abort", None)]))
    _EXIT = (*_EXIT, *filter(None, [getattr(_typer_click, "Exit", None)]))

#: OSError numbers that mean "this path cannot be used" (a user error, exit 2)
_PATH_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EEXIST, errno.EISDIR,
                errno.ENOENT, errno.ENOSPC, errno.EROFS, errno.ENAMETOOLONG, errno.ELOOP,
                getattr(errno, "EDQUOT", errno.ENOSPC)}

# Order in which commands are listed by ``xmpspec --help``; others follow alphabetically.
COMMAND_ORDER = ["demo", "simulate", "cache", "setup", "reduce", "run", "measure", "derive",
                 "compare", "tables", "plots", "batch", "config"]


def _load_commands() -> None:
    names = [m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("cmd_")]
    key = {n: i for i, n in enumerate(COMMAND_ORDER)}
    names.sort(key=lambda n: (key.get(n[4:], len(key)), n))
    for name in names:
        importlib.import_module(f"{__name__}.{name}")


_load_commands()


def _command_words(argv: list[str] | None) -> str:
    """``'xmpspec <command> [<subcommand>]'`` of a command line, for messages."""
    args = sys.argv[1:] if argv is None else list(argv)
    words = [a for a in args if not a.startswith("-")]
    try:
        from typer.main import get_command
        commands = dict(getattr(get_command(app), "commands", {}))
    except Exception:  # only for a message: never fail here
        commands = {}
    for i, w in enumerate(words):
        if w in commands:
            subs = getattr(commands[w], "commands", None) or {}
            if i + 1 < len(words) and words[i + 1] in subs:
                return f"xmpspec {w} {words[i + 1]}"
            return f"xmpspec {w}"
    return "this command"


def user_os_error(exc: BaseException) -> str | None:
    """One-line message for an OSError caused by a path the user gave, else None.

    An ``OSError`` that names a file and whose errno means "this path cannot be used"
    (permission, not a directory, exists, is a directory, missing, disk full,
    read-only) is a user error: ``"<path>: <reason>"``.
    """
    if not isinstance(exc, OSError) or isinstance(exc, ModuleNotFoundError):
        return None
    path = getattr(exc, "filename", None)
    if path is None or exc.errno not in _PATH_ERRNOS:
        return None
    reason = exc.strerror or type(exc).__name__
    path2 = getattr(exc, "filename2", None)
    what = {errno.ENOTDIR: "a part of the path is a file, not a folder",
            errno.EEXIST: "already exists", errno.EISDIR: "is a folder, not a file",
            errno.ENOENT: "no such file or folder",
            errno.EACCES: "permission denied (cannot write or read here)",
            errno.EPERM: "operation not permitted",
            errno.EROFS: "read-only file system", errno.ENOSPC: "no space left on device",
            }.get(exc.errno, reason)
    if exc.errno == errno.EEXIST:
        from pathlib import Path
        if Path(_fs(path)).is_file():  # mkdir of an output folder where a file is
            what = "is a file, not a folder: an output path cannot go under it"
    text = f"{_fs(path)}: {what}"
    if path2 is not None:
        text += f" (with {_fs(path2)})"
    return text


def _fs(path) -> str:
    return path.decode("utf-8", "replace") if isinstance(path, bytes) else str(path)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the app, turning xmpspec errors into one-line messages."""
    try:
        with active_config_scope():  # an in-process call leaves the caller's config alone
            rv = app(args=argv, standalone_mode=False, prog_name="xmpspec")
    except XmpspecError as exc:
        if state.verbose:
            err_console.print_exception()
        err_console.print(f"[bold red]xmpspec: error:[/] {escape(str(exc))}", highlight=False,
                          soft_wrap=True)  # one line, however long
        code = getattr(exc, "exit_code", EXIT_INPUT)
    except _ABORT:
        err_console.print("[red]aborted[/]")
        code = 130
    except _EXIT as exc:
        code = exc.exit_code
    except _CLICK_ERROR as exc:  # usage errors
        exc.show()
        code = EXIT_INPUT
    except KeyboardInterrupt:
        err_console.print("[red]interrupted[/]")
        code = 130
    except (OSError, ImportError) as exc:
        msg = (missing_extra(exc, _command_words(argv)) if isinstance(exc, ImportError)
               else user_os_error(exc))
        if msg is None:
            code = _internal_error(exc)
        else:
            if state.verbose:
                err_console.print_exception()
            err_console.print(f"[bold red]xmpspec: error:[/] {escape(msg)}", highlight=False,
                              soft_wrap=True)
            code = EXIT_INPUT
    except Exception as exc:  # a bug, not a user error: say so, keep it short
        code = _internal_error(exc)
    else:
        code = rv if isinstance(rv, int) else 0
    if argv is None:
        sys.exit(code)
    return code


def _internal_error(exc: BaseException) -> int:
    """Report a bug on one line (traceback with --verbose); the exit code 3."""
    if state.verbose:
        err_console.print_exception()
    err_console.print(f"[bold red]xmpspec: internal error:[/] {type(exc).__name__}: "
                      f"{escape(str(exc))} "
                      "(run with --verbose for the traceback)", highlight=False,
                      soft_wrap=True)
    return EXIT_INTERNAL
