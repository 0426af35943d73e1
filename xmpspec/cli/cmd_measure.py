"""``xmpspec measure``: emission-line fluxes, N2/O3/O3N2 with limits, per spectrum."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from .app import app
from .common import EXIT_INPUT, EXIT_OK, EXIT_PARTIAL, console, err_console, state, track

log = logging.getLogger("xmpspec.measure")
CHUNK = 200  # measurements compacted into tables every CHUNK spectra


@app.command("measure")
def measure(
    spectra: list[Path] = typer.Argument(..., help="Spectrum files (PypeIt spec1d/coadd1d, "
                                                   "SDSS, FITS, ECSV/CSV/ASCII, simulator "
                                                   "output).", show_default=False),
    output: Path = typer.Option(..., "--output", "-o",
                                help="Output folder: lines.ecsv/.fits, objects.ecsv/.fits "
                                     "(+ plots/ with --plots)."),
    z: float | None = typer.Option(None, "--z", help="Redshift of every spectrum (default: "
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
    (objects.ecsv/.fits, the columns `xmpspec derive` reads), with provenance.
    A bad spectrum is reported and skipped: exit code 1 if some failed, 2 if
    none could be measured.

    Examples:

        xmpspec measure J0845+1234.fits --z 0.0213 -o meas/
        xmpspec measure reduced/*/coadd1d_*.fits --targets targets.csv --plots \\
            -o meas/
        xmpspec measure spec-1234-56789-0012.fits --mcmc --seed 1 -o meas_mcmc/
        xmpspec measure sim/*.fits --setup goodman_400 -o meas/
    """
    import numpy as np
    from astropy.table import Table

    from ..errors import InputError, XmpspecError
    from ..io import read_spectrum
    from ..lines.measure import Measurement, lines_table, measure_spectrum, objects_table
    from ..lines.targets import match_target, read_targets
    from ..provenance import provenance_record
    from ..tableio import write_table

    if balmer_absorption is not None:
        if balmer_absorption not in ("none", "fixed", "fit"):
            raise InputError(f"--balmer-absorption must be none, fixed or fit, not "
                             f"'{balmer_absorption}'")
        state.override(measure__balmer_absorption=balmer_absorption)
    cfg = state.config
    if output.exists() and not output.is_dir():
        raise InputError("exists and is not a folder", output)
    tab = read_targets(targets) if targets is not None else None
    radius = float(cfg["measure"]["target_match_arcsec"])
    results, failures = [], []
    line_chunks, obj_rows, summary = [], [], []
    n_ok = 0

    def flush():
        # compact the per-line rows of finished measurements into tables (memory stays
        # flat on big runs); the per-object rows stay as small dicts (their columns vary)
        if results:
            line_chunks.append(Table(lines_table(results)))
            for m in results:
                obj_rows.append(Measurement(name=m.name, line_rows=[], row=m.row,
                                            line_flux_unit=m.line_flux_unit))
            results.clear()
    plot_dir = output / "plots"
    for path in track(spectra, "measuring"):
        try:
            spec = read_spectrum(path, format=format, obj=obj,
                                 ignore_bad_errors=ignore_bad_errors)
            spec.meta.setdefault("source_file", str(path))
            row = None
            if tab is not None:
                row = match_target(spec.name, spec.meta.get("ra"), spec.meta.get("dec"),
                                   str(path), tab, radius)
                if row is None:
                    log.warning("%s: no row of %s matches (name '%s' or position); the "
                                "redshift is found from the lines", path, targets, spec.name)
            zz, zsrc, extra, name = z, ("argument" if z is not None else None), None, None
            if row is not None:
                extra = {k: v for k, v in row.items() if k != "z"}
                name = str(row.get("name"))
                tz = row.get("z")
                if zz is None and tz is not None and np.isfinite(float(tz)):
                    zz, zsrc = float(tz), "targets"
            if zz is None and spec.redshift is None:
                log.info("%s: no redshift given: finding it from the lines", path)
            meas = measure_spectrum(spec, z=zz, setup=setup, config=cfg, mcmc=mcmc,
                                    ignore_bad_errors=ignore_bad_errors, name=name,
                                    z_source=zsrc, fitter="lmfit" if lmfit else "fast",
                                    seed=seed, extra=extra)
            if tab is not None and row is None:
                meas.row["notes"] = ("; ".join(filter(None, [meas.row.get("notes"),
                                                             "no targets row"])))
            results.append(meas)
            n_ok += 1
            r = meas.row
            summary.append((meas.name, r["z"], r.get("n2"), r.get("n2_upper_limit"),
                            r["n2_state"], r.get("significance")))
            if len(results) >= CHUNK:
                flush()
            if plots:
                from ..lines.plots import plot_measurement
                safe = "".join(c if c.isalnum() or c in "+-_." else "_" for c in meas.name)
                plot_measurement(meas, plot_dir / f"{safe}.png")
                if mcmc:
                    from ..lines.plots import plot_corner
                    plot_corner(meas, plot_dir / f"{safe}_corner.png")
            meas.groups = []          # fits not needed any more: keep memory flat on big runs
        except XmpspecError as exc:
            if len(spectra) == 1:
                raise
            err_console.print(f"[red]skipped[/] {exc}", highlight=False, soft_wrap=True)
            failures.append((str(path), str(exc)))
    flush()
    if not n_ok:
        err_console.print("[bold red]xmpspec: error:[/] no spectrum could be measured",
                          highlight=False)
        return EXIT_INPUT
    prov = provenance_record(inputs=[str(p) for p in spectra] + ([str(targets)] if targets
                                                                  else []),
                             config=cfg, step="measure",
                             extra={"mcmc": mcmc, "seed": seed, "setup": setup,
                                    "fitter": "lmfit" if lmfit else "fast",
                                    "failed": [f"{p}: {m}" for p, m in failures]})
    output.mkdir(parents=True, exist_ok=True)
    from astropy.table import QTable, vstack
    lines_all = QTable(vstack(line_chunks, metadata_conflicts="silent"))
    objs_all = objects_table(obj_rows)
    written = write_table(lines_all, output / "lines", provenance=prov,
                          formats=("ecsv", "fits"))
    written += write_table(objs_all, output / "objects", provenance=prov,
                           formats=("ecsv", "fits"))
    if not state.quiet:
        for name, zz, n2, ul, n2state, sig in summary[:50]:
            n2s = "-" if n2 is None else f"{'<' if ul else ''}{n2:.2f}"
            sigs = "-" if sig is None else f"{sig:.1f}"
            console.print(f"{name}: z={zz:.5f} N2={n2s} ({n2state}, significance {sigs})",
                          highlight=False)
        if len(summary) > 50:
            console.print(f"... and {len(summary) - 50} more (see objects.ecsv)", highlight=False)
        console.print(f"wrote {', '.join(str(p) for p in written)}", highlight=False)
        if plots:
            console.print(f"figures in {plot_dir}", highlight=False)
    if failures:
        err_console.print(f"{len(failures)} of {len(spectra)} spectra failed", highlight=False)
        return EXIT_PARTIAL
    return EXIT_OK
