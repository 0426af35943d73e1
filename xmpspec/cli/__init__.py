"""xmpspec command line.

Each subcommand lives in its own module ``xmpspec/cli/cmd_<name>.py`` that
registers itself on :data:`xmpspec.cli.app.app`; modules are discovered here
so that adding a command never touches another one. Heavy libraries
(PypeIt, PyNeb, dask) are imported inside the command functions to keep
``xmpspec --help`` fast.

Exit codes: 0 success, 1 some objects of a batch failed, 2 usage or input error,
3 internal error (a bug: please report it with the ``--verbose`` traceback).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click
import typer
from rich.markup import escape

from ..config import active_config_scope
from ..errors import XmpspecError
from .app import app
from .common import EXIT_INPUT, EXIT_INTERNAL, err_console, state

# typer >= 0.20 vendors its own copy of click (typer._click) and has its own Exit/Abort:
# catch both families so that usage errors give exit code 2, not "internal error".
_ABORT: tuple[type[BaseException], ...] = (click.exceptions.Abort, typer.Abort)
_EXIT: tuple[type[BaseException], ...] = (click.exceptions.Exit, typer.Exit)
_CLICK_ERROR: tuple[type[BaseException], ...] = (click.ClickException,)
try:
    from typer._click.exceptions import ClickException as _TyperClickException
except ImportError:  # older typer uses click itself
    pass
else:
    _CLICK_ERROR = (*_CLICK_ERROR, _TyperClickException)

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
    except Exception as exc:  # a bug, not a user error: say so, keep it short
        if state.verbose:
            err_console.print_exception()
        err_console.print(f"[bold red]xmpspec: internal error:[/] {type(exc).__name__}: "
                          f"{escape(str(exc))} "
                          "(run with --verbose for the traceback)", highlight=False,
                          soft_wrap=True)
        code = EXIT_INTERNAL
    else:
        code = rv if isinstance(rv, int) else 0
    if argv is None:
        sys.exit(code)
    return code
