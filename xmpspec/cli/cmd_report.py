"""``xmpspec report``: one self-contained HTML page of a night or a measure/batch folder."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app
from .common import console, state


@app.command("report")
def report(
    folder: Path = typer.Argument(..., help="Output folder of xmpspec run, reduce "
                                  "(reductions/<instrument>/<night>), measure, batch or demo."),
    out: Path = typer.Option(None, "--out", "-o",
                             help="HTML file to write (default FOLDER/report.html)."),
    title: str = typer.Option(None, "--title", help="Page title (default: the folder name)."),
):
    """One HTML page with everything an observer looks at after a night.

    Night log with its flags, calibration QA (wavelength RMS, PypeIt's
    wavelength-fit and sensitivity-function plots), one panel per target
    (spectrum and fitted lines, N2 with its interval or limit, notes and
    flags), N2 against the CNN, the BPT diagram, failures and warnings.
    The page is self-contained: figures are embedded, nothing is fetched
    from the network, so it opens offline at the telescope.

    Examples:

        xmpspec report run_out/
        xmpspec report reductions/goodman/2024-03-15 -o night.html
        xmpspec report meas/ --title "IDS 2024-03-05"
    """
    from ..products.report import write_report
    from ..workflows.leftovers import clean_leftovers

    path = write_report(folder, out, title=title, config=state.config)
    clean_leftovers([path], "report")            # temporaries of a killed report
    if not state.quiet:
        console.print(f"wrote {path}", highlight=False, soft_wrap=True)
    return 0
