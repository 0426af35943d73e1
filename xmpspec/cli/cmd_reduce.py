"""``xmpspec reduce``: PypeIt in-process, sensitivity function, fluxing, coadds per target."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app
from .common import EXIT_OK, EXIT_PARTIAL, console, err_console, state, track


def print_summary(results, failures) -> None:
    """Print the reduction summary."""
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
            err_console.print(f"[yellow]warning:[/] {r.pypeit_file.name}: {p}", highlight=False)
        console.print(f"{r.pypeit_file.name}: " + ", ".join(
            f"{k} {v:.0f} s" for k, v in r.timings.items()))
    console.print(tab)
    for _f, msg in failures.items():
        err_console.print(f"[red]failed:[/] {msg}", highlight=False)


@app.command("reduce")
def reduce_cmd(
    pypeit_files: list[Path] = typer.Argument(..., help="PypeIt file(s) from `xmpspec setup`."),
    workers: int = typer.Option(1, "--workers", "-j",
                                help="PypeIt files reduced in parallel (one process each; "
                                     "1.2-2.2 GB of memory per process)."),
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
    names the missing ones. Exit code 1 if some PypeIt file failed.

    Examples:

        xmpspec reduce pypeit_files/goodman/2024-03-15/soar_goodman_blue_A.pypeit
        xmpspec reduce pypeit_files/int_ids/n1/*.pypeit -j 2 \\
            --reference-data ../shared/pypeit-data
    """
    from ..reduce.pipeline import quiet_pypeit, reduce_files, write_summary

    quiet_pypeit(state.verbose)
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
        raise XmpspecError(next(iter(failures.values())))
    raise typer.Exit(EXIT_PARTIAL if failures else EXIT_OK)
