"""``xmpspec demo``: simulate a small follow-up night and show where everything is."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app
from .common import console, progress_bar, state


@app.command("demo")
def demo(
    outdir: Path = typer.Argument(..., help="Output folder (created)."),
    seed: int = typer.Option(2024, "--seed", help="Random seed of the night."),
    n_targets: int = typer.Option(8, "--n-targets", "-n", min=1, help="Observed targets."),
    setup: list[str] = typer.Option(["int_ids_r632v", "goodman_400"], "--setup", "-s",
                                    help="Set-up(s) of the night; repeat for several."),
    fmt: str = typer.Option("fits", "--format", "-f", help="Spectrum format: fits or ecsv."),
):
    """Simulate a follow-up night of CNN-selected XMP candidates (spectra + truth).

    Writes OUTDIR/spectra/*.fits (reduced, flux-calibrated 1D spectra, 3
    exposures each, cosmic rays masked), OUTDIR/targets.ecsv (name, z, ra, dec,
    ebv_mw, n2_cnn, ...), OUTDIR/selection.ecsv (the CNN selection catalogue:
    name, ra, dec, n2_cnn, n2_cnn_err, p_mp, p_xmp), OUTDIR/observing_log.ecsv
    (instrument, obsdate, exptime_s, nexp per target) and OUTDIR/truth.ecsv/.fits
    (injected fluxes, N2, O3, Te, expected S/N of each line).

    Examples:

        xmpspec demo demo_out
        xmpspec demo demo_out --seed 7 --n-targets 12
        xmpspec demo demo_out --setup goodman_400 --format ecsv
    """
    from rich.table import Table as RichTable

    from ..cli.cmd_simulate import _check_format
    from ..simulate.demo import simulate_demo_night

    fmt = _check_format(fmt)
    cfg = state.config
    with progress_bar() as prog:
        task = prog.add_task("simulating the night", total=n_targets)
        night = simulate_demo_night(outdir, seed=seed, n_targets=n_targets, setups=tuple(setup),
                                    fmt=fmt, progress=lambda: prog.advance(task), config=cfg)
    if state.quiet:
        return
    t = night.truth_table
    tab = RichTable(title=f"simulated night ({len(t)} targets, seed {seed})")
    for col in ("name", "instrument", "z", "F(Ha)", "N2 true", "N2 CNN", "S/N [NII]", "expected"):
        tab.add_column(col)
    for row in t:
        tab.add_row(row["name"], row["instrument"], f"{row['z']:.4f}", f"{row['f_ha']:.0f}",
                    f"{row['n2']:.2f}", f"{row['n2_cnn']:.2f}", f"{row['snr_nii6585']:.1f}",
                    row["n2_state_expected"])
    console.print(tab)
    console.print(f"spectra:   {outdir / 'spectra'}  ({len(night.spectra)} files)", soft_wrap=True)
    console.print(f"targets:   {night.targets}", soft_wrap=True)
    console.print(f"selection: {night.selection}  (CNN catalogue)", soft_wrap=True)
    console.print(f"log:       {night.observing_log}  (observing log)", soft_wrap=True)
    console.print(f"truth:     {night.truth}  (+ .fits)", soft_wrap=True)
