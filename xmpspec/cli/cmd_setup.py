"""``xmpspec setup``: PypeIt files with xmpspec's tuned parameters, and the night log."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app
from .common import console, err_console


def print_night_log(result) -> None:
    """Print the night log table and its flags."""
    from .common import print_table
    cols = ("file", "frametype", "object", "exptime", "airmass", "config", "binning", "typing",
            "flag")
    rows, styles = [], []
    for r in result.night_log:
        styles.append("yellow" if r["flag"] else None)
        typing = str(r["typing"]) if "typing" in getattr(r, "colnames", ()) else ""
        rows.append((str(r["file"]), str(r["frametype"]), str(r["object"]),
                     f"{r['exptime']:.1f}", f"{r['airmass']:.3f}", str(r["config"]),
                     str(r["binning"]), typing, str(r["flag"])))
    # file names are never folded over lines (80 columns, pipes: plain text)
    print_table(cols, rows, title="night log", nowrap=("file", "frametype", "object"),
                styles=styles)
    from rich.markup import escape
    for f in result.flags:
        err_console.print(f"[yellow]warning:[/] {escape(str(f))}", highlight=False)


@app.command("setup")
def setup_cmd(
    raw_dir: Path = typer.Argument(..., help="Folder of the night's raw frames."),
    instrument: str = typer.Option(..., "--instrument", "-i",
                                   help="goodman, goodman_red, int_ids, mage (tuned) or "
                                        "any PypeIt spectrograph name (shane_kast_blue, ...)."),
    night: str = typer.Option(None, "--night", help="Night name (default: the folder's name)."),
    root: Path = typer.Option(Path("."), "--root",
                              help="Write pypeit_files/ under this folder."),
    targets: Path = typer.Option(None, "--targets", "-t",
                                 help="Targets table (name, z): protects bright lines at these "
                                      "redshifts from sky over-subtraction."),
    extraction: str = typer.Option(None, "--extraction",
                                   help="boxcar (default) or optimal."),
    boxcar_radius: float = typer.Option(None, "--boxcar-radius",
                                        help="Boxcar radius in arcsec (default: the "
                                             "instrument's tuned value)."),
    no_sky_protect: bool = typer.Option(False, "--no-sky-protect",
                                        help="Do not protect bright lines from the sky model."),
):
    """PypeIt setup of a raw night: write xmpspec-tuned PypeIt files.

    Writes `pypeit_files/<instrument>/<night>/<spectrograph>_<config>.pypeit`
    (one per configuration PypeIt finds) and `night_log.ecsv`, and prints the
    night log with anything suspicious flagged (no arcs/flats/standard, a
    standard far from PypeIt's archived stars, mixed binning, unreadable or
    foreign files, files PypeIt would skip). The PypeIt files are plain text:
    edit them (frame types, targets, parameters, the `# xmpspec:` lines) and
    `xmpspec reduce` honours the edits.

    Examples:

        xmpspec setup raw/2024-03-15 --instrument goodman
        xmpspec setup raw/n1 -i int_ids --night 2023-10-02 --targets targets.csv
        xmpspec setup raw/kast -i shane_kast_blue
    """
    from ..lines.targets import read_targets
    from ..reduce.pipeline import quiet_pypeit
    from ..reduce.pypeitfile import setup_night
    from .common import state

    quiet_pypeit(state.verbose)
    if extraction is not None and extraction not in ("boxcar", "optimal"):
        from ..errors import InputError
        raise InputError(f"--extraction must be boxcar or optimal, not '{extraction}'")
    tt = read_targets(targets) if targets else None    # the rules measure applies
    res = setup_night(raw_dir, instrument, night=night, root=root, targets=tt,
                      extraction=extraction, sky_protect=not no_sky_protect,
                      boxcar_radius=boxcar_radius)
    print_night_log(res)
    for f in res.pypeit_files:
        console.print(f"wrote {f}")
    console.print(f"wrote {res.night_log_path}")
