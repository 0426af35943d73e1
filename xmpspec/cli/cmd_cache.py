"""``xmpspec cache``: import offline reference data for PypeIt/astropy, show what is there."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app
from .common import EXIT_OK, EXIT_PARTIAL, console, track

cache_app = typer.Typer(help="Offline reference data: PypeIt's and astropy's download caches."
                             "\n\nPypeIt templates, standards, sky models and astropy "
                             "sites, installed from local folders so that nothing is "
                             "downloaded.\n\n"
                             "Examples:\n\n```\n"
                             "xmpspec cache import ../shared/pypeit-data "
                             "../shared/astropy-data\n"
                             "xmpspec cache status --instrument goodman\n"
                             "xmpspec cache status -i shane_kast_blue --raw raw/n1\n```\n",
                        no_args_is_help=True)
app.add_typer(cache_app, name="cache")


@cache_app.command("import")
def import_cmd(folders: list[Path] = typer.Argument(..., help="Folders laid out like PypeIt's "
                                                     "data tree or like astropy-data.")):
    """Copy reference-data folders into PypeIt's and astropy's caches.

    Each folder is recognised by its layout: PypeIt's `pypeit/data` tree
    (`arc_lines/`, `standards/`, `skisim/`, ...) or astropy-data
    (`coordinates/sites.json`). Files are stored under the URLs the packages
    request, so PypeIt runs with no network. `$XDG_CACHE_HOME` is honoured.
    Re-import after upgrading PypeIt (its version is part of the cache key).

    Examples:

        xmpspec cache import ../shared/pypeit-data ../shared/astropy-data
        XDG_CACHE_HOME=/tmp/cache xmpspec cache import ../shared/astropy-data
    """
    from ..reduce.cache import import_reference_data

    done = import_reference_data(folders, progress=track)
    n_p = sum(f.package == "pypeit" for f in done)
    n_a = sum(f.package == "astropy" for f in done)
    console.print(f"imported {len(done)} file(s): {n_p} into PypeIt's cache, "
                  f"{n_a} into astropy's cache")


@cache_app.command("status")
def status_cmd(instrument: str = typer.Option(None, "--instrument", "-i",
                                              help="Only this instrument: goodman, goodman_red, "
                                                   "int_ids, mage, or any PypeIt spectrograph "
                                                   "name (shane_kast_blue, ...)."),
               raw: Path = typer.Option(None, "--raw",
                                        help="A night's raw folder: list exactly the "
                                             "templates and standards that night needs "
                                             "(with --instrument).")):
    """Per instrument: reference files installed, cached or missing.

    Tuned instruments list their fixed files. Any other PypeIt spectrograph
    lists what PypeIt's own parameters name: the wavelength template(s)
    (each grating's template as *optional* until a night is given with
    `--raw`), the flexure sky spectrum and, with `--raw`, the archived
    spectrum of the night's flux standard. Exit code 1 if a required file is
    missing (optional ones are listed but do not count).

    Examples:

        xmpspec cache status
        xmpspec cache status --instrument goodman
        xmpspec cache status -i shane_kast_blue --raw raw/2015-05-20
    """
    from ..errors import InputError
    from ..reduce.cache import reference_status
    from ..reduce.registry import all_instruments, get_instrument
    from .common import print_table

    if raw is not None and not instrument:
        raise InputError("--raw needs --instrument")
    raw_files = None
    if raw is not None:
        from ..reduce.frametype import is_raw_name
        if not raw.is_dir():
            raise InputError("raw-data folder not found", raw)
        raw_files = sorted(p for p in raw.iterdir() if p.is_file() and is_raw_name(p.name))
        if not raw_files:
            raise InputError("no raw FITS frames in this folder", raw)
    plugins = [get_instrument(instrument)] if instrument else all_instruments()
    rows, styles = [], []
    n_missing = 0
    for p in plugins:
        for s in reference_status(p.name, raw_files):
            required = s.ref.required
            n_missing += required and not s.present
            styles.append(None if s.present else ("red" if required else "yellow"))
            state = s.state if required else f"{s.state} (optional)"
            rows.append((p.name, f"{s.ref.package}:{s.ref.relpath}", state, s.ref.purpose,
                         s.where))
    # file names and cache locations never folded over lines (80 columns; plain when piped)
    print_table(("instrument", "file", "state", "purpose", "where"), rows,
                title="reference data for offline reductions", nowrap=("file", "where"),
                styles=styles)
    if n_missing:
        console.print(f"[red]{n_missing} file(s) missing[/]: `xmpspec cache import FOLDER`")
    raise typer.Exit(EXIT_PARTIAL if n_missing else EXIT_OK)
