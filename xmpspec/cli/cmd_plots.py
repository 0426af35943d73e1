"""``xmpspec plots``: distributions of derived properties and the BPT diagram."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app
from .common import console, err_console, state


@app.command("plots")
def plots(
    derived: Path = typer.Argument(..., help="Output of xmpspec derive (or a table with the "
                                   "same columns)."),
    outdir: Path = typer.Option(..., "--outdir", "-o", help="Output folder."),
    fmt: list[str] = typer.Option(["png", "pdf"], "--format", "-f",
                                  help="Figure format(s); repeat for several."),
):
    """Paper figures: O/H, SFR and M* distributions, BPT diagram.

    Writes OUTDIR/oh_distribution, sfr_distribution, mstar_distribution and
    bpt (PNG at 300 dpi and PDF, one journal column wide). Upper limits are
    shown separately (hatched histograms, arrows on the BPT diagram); figures
    whose columns are absent or empty are skipped with a note. The comparison
    with the CNN is drawn by `xmpspec compare`.

    Examples:

        xmpspec plots derived.ecsv -o figures/
        xmpspec plots derived.fits -o figs -f pdf
    """
    from ..errors import ConfigError
    from ..products.figures import PLOT_NAMES, make_all_plots
    from ..provenance import provenance_record
    from ..tableio import read_table

    for f in fmt:
        if f.lower().lstrip(".") not in ("png", "pdf", "svg", "eps"):
            raise ConfigError(f"--format '{f}' is not one of png, pdf, svg, eps")
    from ..workflows.leftovers import clean_leftovers
    cfg = state.config
    stems = [outdir / name for name in PLOT_NAMES]
    clean_leftovers(stems, "plots")              # temporaries of a killed plots run
    table = read_table(derived)
    written, skipped = make_all_plots(table, outdir, config=cfg,
                                      formats=[f.lower().lstrip(".") for f in fmt],
                                      source=derived,
                                      provenance=provenance_record([derived], cfg,
                                                                   step="plots"))
    clean_leftovers(stems, "plots")
    for s in skipped:
        err_console.print(f"note: skipped {s}", highlight=False, markup=False, soft_wrap=True)
    if not state.quiet:
        for files in written.values():
            for f in files:
                console.print(f"wrote {f}", highlight=False)
    return 0
