"""``xmpspec run``: one night from raw frames to measured and derived tables."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app
from .common import EXIT_OK, EXIT_PARTIAL, console, err_console, state, track


@app.command("run")
def run_cmd(
    raw_dir: Path = typer.Argument(..., help="Folder of the night's raw frames."),
    instrument: str = typer.Option(..., "--instrument", "-i", help="goodman, int_ids or mage."),
    targets: Path = typer.Option(None, "--targets", "-t",
                                 help="Targets table (name, z, ...; science.md)."),
    night: str = typer.Option(None, "--night", help="Night name (default: the folder's name)."),
    root: Path = typer.Option(Path("."), "--root",
                              help="Write pypeit_files/ and reductions/ under this folder."),
    reference_data: list[Path] = typer.Option(None, "--reference-data",
                                              help="Folder(s) to import missing reference "
                                                   "files from."),
    workers: int = typer.Option(1, "--workers", "-j", help="PypeIt files reduced in parallel."),
):
    """Chain setup -> reduce -> measure -> derive for one night.

    Writes the PypeIt files (`pypeit_files/<instrument>/<night>/`), the
    reductions and coadds (`reductions/<instrument>/<night>/<setup>/`), and
    `summary.ecsv`, `measurements.ecsv` and `derived.ecsv` in
    `reductions/<instrument>/<night>/`. Exit code 1 if some set-up or object
    failed (the rest of the night continues).

    Examples:

        xmpspec run raw/2024-03-15 --instrument goodman --targets targets.csv
        xmpspec run raw/n1 -i int_ids -t targets.csv \\
            --reference-data ../shared/pypeit-data
    """
    from ..reduce.pipeline import quiet_pypeit, run_night
    from .cmd_reduce import print_summary
    from .cmd_setup import print_night_log

    quiet_pypeit(state.verbose)
    run = run_night(raw_dir, instrument, night=night, root=root, targets_path=targets,
                    reference_dirs=reference_data or (), workers=workers, progress=track)
    print_night_log(run.setup)
    print_summary(run.results, run.failures)
    for p in run.problems:
        err_console.print(f"[yellow]warning:[/] {p}", highlight=False)
    for label, p in (("summary", run.summary), ("measurements", run.measurements),
                     ("derived", run.derived)):
        if p:
            console.print(f"wrote {label}: {p}")
    console.print("timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in run.timings.items()))
    bad = bool(run.failures) or bool(run.problems) or any(r.problems for r in run.results)
    raise typer.Exit(EXIT_PARTIAL if bad else EXIT_OK)
