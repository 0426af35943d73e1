"""``xmpspec measure``: emission-line fluxes, N2/O3/O3N2 with limits, per spectrum."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app
from .common import EXIT_INPUT, EXIT_OK, EXIT_PARTIAL, console, err_console, state, track


@app.command("measure")
def measure(
    spectra: list[Path] = typer.Argument(..., help="Spectrum files (PypeIt spec1d/coadd1d, "
                                                   "SDSS, FITS, ECSV/CSV/ASCII, simulator "
                                                   "output), folders (their FITS files, "
                                                   "recursively), quoted globs or file lists "
                                                   "(.txt/.lst, one path a line).",
                                         show_default=False),
    output: Path = typer.Option(..., "--output", "-o",
                                help="Output folder: lines.ecsv/.fits, objects.ecsv/.fits "
                                     "(+ plots/ with --plots)."),
    z: float | None = typer.Option(None, "--z", min=0.0,
                                   help="Redshift of every spectrum (default: "
                                                      "targets table, file, or found from "
                                                      "the lines)."),
    targets: Path | None = typer.Option(None, "--targets", "-t",
                                        help="Targets table (name, z, optional ra/dec and "
                                             "other columns carried through)."),
    format: str | None = typer.Option(None, "--format", "-f",
                                      help="Force the spectrum format (see `xmpspec inspect "
                                           "--list-formats`)."),
    obj: str | None = typer.Option(None, "--object",
                                   help="PypeIt spec1d: object to read (default: brightest)."),
    setup: str | None = typer.Option(None, "--setup", "-s",
                                     help="Observing set-up (int_ids_r632v, goodman_400, mage, "
                                          "sdss): instrumental resolution = width floor. "
                                          "Default: from the file."),
    mcmc: bool = typer.Option(False, "--mcmc", help="emcee posteriors: median and 16/84 "
                                                    "percentiles, limits at the 97.7 "
                                                    "percentile."),
    plots: bool = typer.Option(False, "--plots", help="One fit figure per object in "
                                                      "OUTDIR/plots/ (with --mcmc also a "
                                                      "corner plot of the Halpha group)."),
    ignore_bad_errors: bool = typer.Option(False, "--ignore-bad-errors",
                                           help="Mask zero/negative-error pixels instead of "
                                                "failing."),
    balmer_absorption: str | None = typer.Option(None, "--balmer-absorption",
                                                 help="Underlying Balmer absorption: none, "
                                                      "fixed (EW from measure."
                                                      "balmer_absorption_ew) or fit."),
    lmfit: bool = typer.Option(False, "--lmfit", help="Fit with lmfit instead of the fast "
                                                      "core (same model; slower)."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed of the MCMC."),
):
    """Measure emission lines: fluxes, EWs, N2/O3/O3N2 with limits.

    Gaussian fits per line group, integrated Halpha and [NII]6585 when the N2
    significance is >= 2, 2-sigma upper limits below it, N2/O3/O3N2 with
    errors and censoring flags, EWs and FWHMs.

    Writes a per-line table (lines.ecsv/.fits) and a per-object table
    (objects.ecsv/.fits, the columns `xmpspec derive` reads), with provenance,
    rows in the (sorted) order of the inputs. Results are streamed to disk
    every `batch.chunk_size` spectra and merged chunk by chunk, so memory does
    not grow with the number of spectra. A bad spectrum is reported and
    skipped: exit code 1 if some failed, 2 if none could be measured or an
    input does not exist.

    Examples:

        xmpspec measure J0845+1234.fits --z 0.0213 -o meas/
        xmpspec measure reduced/*/coadd1d_*.fits --targets targets.csv --plots \\
            -o meas/
        xmpspec measure spec-1234-56789-0012.fits --mcmc --seed 1 -o meas_mcmc/
        xmpspec measure sim/*.fits --setup goodman_400 -o meas/
        xmpspec measure archive/ --setup sdss -o meas_archive/
        xmpspec measure "data/**/spec-*.fits" spectra.lst -o meas/
    """
    from ..errors import InputError
    from ..workflows.measure import measure_to_tables
    from .common import expand_inputs

    if balmer_absorption is not None:
        if balmer_absorption not in ("none", "fixed", "fit"):
            raise InputError(f"--balmer-absorption must be none, fixed or fit, not "
                             f"'{balmer_absorption}'")
        state.override(measure__balmer_absorption=balmer_absorption)
    cfg = state.config
    if output.exists() and not output.is_dir():
        raise InputError("exists and is not a folder", output)
    files = expand_inputs(spectra, exclude=[output])
    if not files:
        raise InputError("no spectrum file found", ", ".join(str(s) for s in spectra))

    def on_failure(path, exc):
        if len(files) == 1:
            raise exc
        err_console.print(f"[red]skipped[/] {exc}", highlight=False, soft_wrap=True)

    plot_dir = output / "plots"
    run = measure_to_tables(files, output, targets, cfg, z=z, setup=setup, format=format,
                            obj=obj, ignore_bad_errors=ignore_bad_errors, mcmc=mcmc, seed=seed,
                            fitter="lmfit" if lmfit else "fast",
                            plot_dir=plot_dir if plots else None, corner_plots=plots and mcmc,
                            progress=track, on_failure=on_failure)
    if not run.n_measured:
        err_console.print("[bold red]xmpspec: error:[/] no spectrum could be measured",
                          highlight=False)
        return EXIT_INPUT
    if not state.quiet:
        for r in run.summary:
            n2, sig = r.get("n2"), r.get("significance")
            n2s = "-" if n2 is None else f"{'<' if r.get('n2_upper_limit') else ''}{n2:.2f}"
            sigs = "-" if sig is None else f"{sig:.1f}"
            console.print(f"{r['name']}: z={r['z']:.5f} N2={n2s} ({r['n2_state']}, "
                          f"significance {sigs})", highlight=False)
        if run.n_measured > len(run.summary):
            console.print(f"... and {run.n_measured - len(run.summary)} more (see "
                          f"objects.ecsv)", highlight=False)
        console.print(f"wrote {', '.join(str(p) for p in run.files)}", highlight=False)
        if plots:
            console.print(f"figures in {plot_dir}", highlight=False)
    if run.failures:
        err_console.print(f"{len(run.failures)} of {len(files)} spectra failed",
                          highlight=False)
        return EXIT_PARTIAL
    return EXIT_OK
