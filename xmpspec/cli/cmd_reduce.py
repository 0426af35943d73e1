"""``xmpspec reduce``: PypeIt in-process, sensitivity function, fluxing, coadds per target."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app
from .common import EXIT_OK, EXIT_PARTIAL, console, err_console, state, track


def print_summary(results, failures) -> None:
    """Print the reduction summary: targets, then warnings and failures."""
    from rich.table import Table
    tab = Table(title="reductions")
    for c in ("target", "setup", "exposures", "S/N(Ha)", "wave RMS (pix)", "flux calibration",
              "coadd"):
        tab.add_column(c, overflow="fold")
    for r in results:
        for t in r.targets:
            tab.add_row(t.target, r.setup, str(t.n_exposures), f"{t.snr_ha:.1f}",
                        f"{r.wave_rms_pix:.3f}", t.status, str(t.coadd or "-"))
        for p in r.problems:
            kind = "[red]failed:[/]" if p in r.errors else "[yellow]warning:[/]"
            err_console.print(f"{kind} {r.pypeit_file.name}: {p}", highlight=False)
        console.print(f"{r.pypeit_file.name}: " + ", ".join(
            f"{k} {v:.0f} s" for k, v in r.timings.items()))
    console.print(tab)
    for _f, msg in failures.items():
        err_console.print(f"[red]failed:[/] {msg}", highlight=False)


def note_workers(workers: int, n_files: int) -> None:
    """Say when ``--workers`` cannot help: PypeIt reduces one PypeIt file in one process."""
    if workers > 1 and n_files < 2:
        err_console.print(f"note: --workers {workers} has no effect with {n_files} PypeIt file "
                          "(set-ups and nights are reduced in parallel, the frames of one "
                          "set-up are not)", highlight=False)


def reduce_exit_code(results, failures) -> int:
    """0 when every PypeIt file and target was reduced (warnings allowed), else 1."""
    failed = bool(failures) or any(getattr(r, "errors", ()) for r in results)
    return EXIT_PARTIAL if failed else EXIT_OK


@app.command("reduce")
def reduce_cmd(
    pypeit_files: list[Path] = typer.Argument(..., help="PypeIt file(s) from `xmpspec setup`."),
    workers: int = typer.Option(1, "--workers", "-j",
                                help="PypeIt files (set-ups, nights) reduced in parallel, one "
                                     "process each (1.2-2.2 GB of memory per process); the "
                                     "frames of one PypeIt file are reduced in one process."),
    reference_data: list[Path] = typer.Option(None, "--reference-data",
                                              help="Folder(s) to import missing reference "
                                                   "files from (layout of PypeIt's data tree "
                                                   "or astropy-data)."),
    root: Path = typer.Option(Path("."), "--root", help="Write reductions/ under this folder."),
    targets: Path = typer.Option(None, "--targets", "-t",
                                 help="Targets table (redshifts for the S/N near Halpha)."),
):
    """Reduce PypeIt files: calibrations, science, fluxing, coadds.

    Runs PypeIt in this process (so the INT/IDS plug-in is known) with
    calibrations reused, then the sensitivity function from the night's
    standard, flux calibration, and one coadded fluxed spectrum per target
    (`<target>.fits`) in `reductions/<instrument>/<night>/<setup>/`, plus
    `reductions/<instrument>/<night>/summary.ecsv` and QA plots. Before
    starting, checks that every reference file is available offline and
    names the missing ones. Exit code 0 when everything was reduced (warnings,
    e.g. no standard in the night or no QA page, are printed), 1 when a PypeIt
    file, a step (sensitivity function, fluxing, coadd) or a target failed,
    2 for bad input (unreadable PypeIt file, missing raw or reference files).

    Examples:

        xmpspec reduce pypeit_files/goodman/2024-03-15/soar_goodman_blue_A.pypeit
        xmpspec reduce pypeit_files/int_ids/n1/*.pypeit -j 2 \\
            --reference-data ../shared/pypeit-data
    """
    from ..reduce.pipeline import quiet_pypeit, reduce_files, write_summary

    quiet_pypeit(state.verbose)
    note_workers(workers, len(pypeit_files))
    results, failures = reduce_files(pypeit_files, root, reference_data or (), targets,
                                     workers, track)
    nights = {}
    for r in results:
        nights.setdefault((r.instrument, r.night), []).append(r)
    for (inst, night), rs in nights.items():
        path = Path(root) / "reductions" / inst / night / "summary.ecsv"
        write_summary(rs, path, inputs=[str(r.pypeit_file) for r in rs])
        console.print(f"wrote {path}")
    print_summary(results, failures)
    if failures and not results and len(failures) == 1:
        from ..errors import XmpspecError
        exc = next(iter(failures.values()))
        if isinstance(exc, XmpspecError) and not _is_input_error(exc):
            raise typer.Exit(EXIT_PARTIAL)    # a step failed (already printed)
        raise exc if isinstance(exc, XmpspecError) else XmpspecError(str(exc))
    raise typer.Exit(reduce_exit_code(results, failures))


def _is_input_error(exc) -> bool:
    from ..errors import ConfigError, InputError, ReferenceDataError
    return isinstance(exc, (InputError, ReferenceDataError, ConfigError))
