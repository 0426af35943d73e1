"""``xmpspec run``: one night from raw frames to measured and derived tables."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app
from .common import EXIT_OK, EXIT_PARTIAL, console, err_console, state, track


def night_outcome(run) -> tuple[int, list[str], list[str]]:
    """Exit code, failures and warnings of a :class:`~xmpspec.reduce.pipeline.NightRun`.

    Failures: PypeIt files that failed, failed steps or targets of a
    reduction (``ReductionResult.errors``) and the night's measure/derive
    problems (``NightRun.problems``); warnings: the other problems of the
    reductions (no QA page, no standard, ...).
    """
    failed = [f"{f}: {m}" if str(f) not in str(m) else str(m) for f, m in run.failures.items()]
    warnings = []
    for r in run.results:
        errors = set(getattr(r, "errors", ()))
        for p in r.problems:
            (failed if p in errors else warnings).append(f"{r.pypeit_file.name}: {p}")
    failed.extend(run.problems)
    return (EXIT_PARTIAL if failed else EXIT_OK), failed, warnings


@app.command("run")
def run_cmd(
    raw_dir: Path = typer.Argument(..., help="Folder of the night's raw frames."),
    instrument: str = typer.Option(..., "--instrument", "-i",
                                   help="goodman, goodman_red, int_ids, mage or any PypeIt "
                                        "spectrograph name (shane_kast_blue, ...)."),
    targets: Path = typer.Option(None, "--targets", "-t",
                                 help="Targets table (name, z, ...; science.md)."),
    night: str = typer.Option(None, "--night", help="Night name (default: the folder's name)."),
    root: Path = typer.Option(Path("."), "--root",
                              help="Write pypeit_files/ and reductions/ under this folder."),
    reference_data: list[Path] = typer.Option(None, "--reference-data",
                                              help="Folder(s) to import missing reference "
                                                   "files from."),
    workers: int = typer.Option(1, "--workers", "-j",
                                help="Set-ups (PypeIt files) of the night reduced in parallel "
                                     "processes; no effect on a night with one set-up."),
):
    """One night: setup -> reduce -> measure -> derive -> HTML report.

    Writes the PypeIt files (`pypeit_files/<instrument>/<night>/`), the
    reductions and coadds (`reductions/<instrument>/<night>/<setup>/`), and
    `summary.ecsv`, `measurements.ecsv`, `derived.ecsv` and the night's
    HTML report `report.html` in `reductions/<instrument>/<night>/`. Exit
    code 0 when the night completed (warnings, e.g. a missing QA page or an
    unfluxed night without standard, are listed at the end), 1 when a
    set-up, a step or a target failed (the rest of the night continues), 2
    for bad input (no raw frames, unknown instrument, missing reference
    files, unreadable targets table).

    Examples:

        xmpspec run raw/2024-03-15 --instrument goodman --targets targets.csv
        xmpspec run raw/n1 -i int_ids -t targets.csv \\
            --reference-data ../shared/pypeit-data
    """
    from ..reduce.pipeline import quiet_pypeit
    from ..workflows.night import run_night
    from .cmd_reduce import note_workers, print_summary
    from .cmd_setup import print_night_log

    quiet_pypeit(state.verbose)
    run = run_night(raw_dir, instrument, night=night, root=root, targets_path=targets,
                    reference_dirs=reference_data or (), workers=workers, progress=track,
                    config=state.config)
    print_night_log(run.setup)
    note_workers(workers, len(getattr(run.setup, "pypeit_files", ())))
    print_summary(run.results, run.failures)
    for p in run.problems:
        err_console.print(f"[red]failed:[/] {p}", highlight=False)
    for label, p in (("summary", run.summary), ("measurements", run.measurements),
                     ("derived", run.derived), ("report", getattr(run, "report", None))):
        if p:
            console.print(f"wrote {label}: {p}")
    console.print("timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in run.timings.items()))
    code, failed, warnings = night_outcome(run)
    if failed:
        err_console.print(f"[red]night completed with {len(failed)} failure(s)[/]"
                          + (f" and {len(warnings)} warning(s)" if warnings else ""),
                          highlight=False)
    elif warnings:
        err_console.print(f"[yellow]night completed with {len(warnings)} warning(s)[/] "
                          "(listed above)", highlight=False)
    else:
        console.print("night completed")
    raise typer.Exit(code)
