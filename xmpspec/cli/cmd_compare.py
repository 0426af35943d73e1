"""``xmpspec compare``: observed N2 versus the CNN selection stage's prediction."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app
from .common import console, state


def _parse_radius(text: str | None):
    import astropy.units as u

    from ..errors import ConfigError
    if text is None:
        return None
    try:
        q = u.Quantity(text)
    except (TypeError, ValueError):
        raise ConfigError(f"--match-radius '{text}' is not an angle (e.g. 2arcsec, 0.5arcmin)") \
            from None
    if q.unit == u.dimensionless_unscaled:
        q = q.value * u.arcsec
    if q.unit.physical_type != "angle":
        raise ConfigError(f"--match-radius '{text}' is not an angle (e.g. 2arcsec)")
    return q.to(u.arcsec)


@app.command("compare")
def compare(
    observed: Path = typer.Argument(..., help="Per-object table of measure/derive, or a user "
                                    "table with name, n2, n2_err, n2_upper_limit, "
                                    "significance (and ra/dec)."),
    selection: Path = typer.Option(..., "--selection", "-s",
                                   help="Selection catalogue (CSV/ECSV/FITS): name, ra, dec "
                                        "(degrees or sexagesimal), n2_cnn, n2_cnn_err, "
                                        "optional p_mp, p_xmp."),
    outdir: Path = typer.Option(..., "--outdir", "-o", help="Output folder."),
    match_radius: str = typer.Option(None, "--match-radius",
                                     help="Positional matching radius, e.g. 2arcsec "
                                          "(default compare.match_radius_arcsec)."),
    band: float = typer.Option(None, "--band",
                               help="Outlier band half-width in dex (default: the MAE of all "
                                    "matched detections; config compare.band)."),
    background: Path = typer.Option(None, "--background",
                                    help="Table with n2 and n2_cnn columns (e.g. the CNN "
                                         "training set) shown in grey behind the points."),
    exclude_flag: str = typer.Option(None, "--exclude-flag",
                                     help="Boolean catalogue column (e.g. hii_region): flagged "
                                          "objects are listed but left out of the statistics."),
    no_figure: bool = typer.Option(False, "--no-figure", help="Skip the comparison figure."),
):
    """Match to the selection catalogue and compare N2 with the CNN.

    Writes OUTDIR/comparison.ecsv (+ .fits; one row per observed object, with
    match status, N2_obs - N2_CNN and the outcome), OUTDIR/comparison.txt
    (detections-only MAE/median/RMS/bias beside the Kaplan-Meier median and mean
    of N2_obs - N2_CNN over detections and upper limits, with intervals;
    outliers, unmatched/ambiguous report) and the figure OUTDIR/comparison.png/.pdf.

    Examples:

        xmpspec compare derived.ecsv --selection selection.csv -o results/
        xmpspec compare measured.fits -s candidates.fits -o out --match-radius 3arcsec
        xmpspec compare obs.csv -s cnn.csv -o out --background training_set.fits
        xmpspec compare derived.ecsv -s selection.csv -o out --exclude-flag hii_region
    """
    from ..compare import run_comparison, summary_text
    from ..products.figures import background_points, comparison_plot
    from ..provenance import provenance_record
    from ..tableio import read_table
    from ..workflows.leftovers import clean_leftovers
    cfg = state.config
    stem = [Path(outdir) / "comparison"]
    clean_leftovers(stem, "compare")             # temporaries of a killed compare
    radius = _parse_radius(match_radius)
    bg = read_table(background) if background is not None else None
    background_points(bg, background)        # a bad background table: before any output
    result, files = run_comparison(observed, selection, outdir, config=cfg, radius=radius,
                                   band=band, exclude_flag=exclude_flag)
    if not no_figure:
        inputs = [observed, selection] + ([background] if background is not None else [])
        files += comparison_plot(result, Path(outdir) / "comparison", background=bg,
                                 observed=observed, background_source=background,
                                 provenance=provenance_record(inputs, cfg, step="compare"))
    clean_leftovers(stem, "compare")
    if not state.quiet:
        console.print(summary_text(result, observed, selection), highlight=False,
                      markup=False, soft_wrap=True)
        for f in files:
            console.print(f"wrote {f}", highlight=False)
    return 0
