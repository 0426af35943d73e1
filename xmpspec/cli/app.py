"""The typer application; command modules register their commands on :data:`app`."""

from __future__ import annotations

from pathlib import Path

import typer

from .._version import __version__
from ..config import find_user_config
from ..errors import XmpspecError
from .common import setup_logging, state

app = typer.Typer(
    name="xmpspec",
    help="Spectroscopic follow-up of extremely metal-poor galaxy candidates: "
         "reduce (PypeIt), measure lines, derive abundances, compare with the CNN, "
         "write paper tables and figures.\n\n"
         "Examples:\n\n```\n"
         "xmpspec demo demo_out\n"
         "xmpspec run raw/2024-03-15 --instrument goodman --targets targets.csv\n"
         "xmpspec measure spectra/*.fits --targets targets.csv -o meas/\n"
         "xmpspec measure --help\n```\n",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool):
    if value:
        typer.echo(f"xmpspec {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_callback(
    verbose: bool = typer.Option(False, "--verbose", "-v",
                                 help="Debug logging and full tracebacks on errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q",
                               help="Only warnings and errors; no progress bars."),
    config: Path | None = typer.Option(None, "--config", "-c",
                                       help="TOML configuration file (default: ./xmpspec.toml "
                                            "if present)."),
    version: bool = typer.Option(False, "--version", callback=_version_callback,
                                 is_eager=True, help="Print the version and exit."),
):
    """xmpspec: from raw frames of XMP candidates to paper tables."""
    state.verbose = verbose
    state.quiet = quiet and not verbose
    # the configuration is resolved here, once: --config, else ./xmpspec.toml if present,
    # else the packaged defaults; commands pass state.config down explicitly
    state.config_path = config if config is not None else find_user_config()
    state._config = None
    try:   # made active now, so library calls of any command see it
        state.config  # noqa: B018
    except XmpspecError:
        pass  # a bad file: reported by the command that uses the configuration (exit 2)
    setup_logging(state.verbose, state.quiet)
