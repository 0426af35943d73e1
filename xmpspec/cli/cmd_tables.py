"""``xmpspec tables``: the paper tables (LaTeX, machine-readable MRT, ECSV, FITS)."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app
from .common import console, err_console, state


@app.command("tables")
def tables(
    derived: Path = typer.Argument(..., help="Output of xmpspec derive (or measure), or a user "
                                   "table with the same column names."),
    outdir: Path = typer.Option(..., "--outdir", "-o", help="Output folder."),
    selection: Path = typer.Option(None, "--selection", "-s",
                                   help="Selection catalogue / observing log: name, ra, dec, "
                                        "n2_cnn, n2_cnn_err, instrument, obsdate, exptime_s, "
                                        "nexp (any subset)."),
    style: str = typer.Option("aastex", "--style",
                              help="aastex (deluxetable), latex (table+tabular) or mrt "
                                   "(machine-readable only)."),
    sort: str = typer.Option("ra", "--sort", help="Row order: ra, n2_cnn, name or none."),
    error_digits: str = typer.Option(None, "--error-digits",
                                     help="Significant digits of errors (default "
                                          "products.error_digits = 2), or 'pdg'."),
):
    """Paper tables: observing log, line fluxes, derived properties.

    Each table NAME (observing_log, line_measurements, line_fluxes: every
    measured line with its limits, derived_properties) is written as
    OUTDIR/NAME.tex (AASTeX deluxetable or plain LaTeX), NAME.mrt (AAS/CDS
    machine-readable, read back by astropy's `ascii.mrt` reader), NAME.txt
    (aligned text), NAME.ecsv and NAME.fits (full precision, with provenance).
    Values are rounded to the significant digits of their errors, upper
    limits are written <-1.50, missing values ... (\\nodata in AASTeX);
    asymmetric N2 intervals are shown where the table has n2_p16/n2_p84.
    The MRT Title and Authors lines come from the configuration
    (`[tables] title`, `authors`: `--config` or `xmpspec.toml`).

    Examples:

        xmpspec tables derived.ecsv --selection selection.csv -o paper/
        xmpspec tables derived.fits -s cnn_catalogue.fits --style latex \\
            --sort n2_cnn -o tables
        xmpspec tables derived.ecsv -o mrt_only --style mrt --sort name
    """
    from ..errors import ConfigError
    from ..products.tables import TABLE_STYLES, write_tables
    from .common import track

    if style not in TABLE_STYLES:
        raise ConfigError(f"--style must be one of {', '.join(TABLE_STYLES)}, got '{style}'")
    if error_digits is not None:
        val = error_digits if error_digits.strip().lower() == "pdg" else None
        if val is None:
            try:
                val = int(error_digits)
            except ValueError:
                raise ConfigError(f"--error-digits must be an integer or 'pdg', got "
                                  f"'{error_digits}'") from None
        state.override(products__error_digits=val)
    from ..workflows.leftovers import clean_leftovers
    earlier = [f for f in outdir.iterdir() if f.is_file() and not f.name.startswith(".")] \
        if outdir.is_dir() else []
    clean_leftovers(earlier, "tables")           # temporaries of a killed tables run
    built, notes, written = write_tables(derived, outdir, selection, style=style, sort=sort,
                                         config=state.config,
                                         iterate=lambda ts: track(ts, "writing tables"))
    clean_leftovers(written, "tables")
    for note in notes:
        err_console.print(f"note: {note}", highlight=False, markup=False, soft_wrap=True)
    if not state.quiet:
        for t in built:
            console.print(f"{t.name}: {t.nrows} rows, {len(t.columns)} columns", highlight=False)
        for f in written:
            console.print(f"wrote {f}", highlight=False)
    return 0
