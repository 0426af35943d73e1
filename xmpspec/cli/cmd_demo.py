"""``xmpspec demo``: simulate a small follow-up night and run the whole analysis chain on it."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app
from .common import EXIT_OK, EXIT_PARTIAL, console, err_console, progress_bar, state

#: stages shown by the progress display, in order
_STAGES = ("simulate", "measure", "derive", "compare", "tables", "figures", "recovery")
_STAGE_TEXT = {"simulate": "simulating the night", "measure": "measuring lines",
               "derive": "deriving abundances, SFR, BPT", "compare": "comparing with the CNN",
               "tables": "writing paper tables", "figures": "drawing figures",
               "recovery": "checking against the truth"}


_OUTCOME = {"upper_outlier": "above band", "lower_outlier": "below band"}
_STATE_SHORT = {"detected": "det", "upper_limit": "limit", "not_covered": "n/c",
                "failed": "failed"}


def _fmt_n2(value, err, limit) -> str:
    import numpy as np
    if value is None or np.ma.is_masked(value) or not np.isfinite(value):
        return "-"
    if limit:
        return f"<{value:.2f}"
    if err is None or np.ma.is_masked(err) or not np.isfinite(err):
        return f"{value:.2f}"
    return f"{value:.2f}±{err:.2f}"


@app.command("demo")
def demo(
    outdir: Path = typer.Argument(..., help="Output folder (created)."),
    seed: int = typer.Option(2024, "--seed", help="Random seed of the night."),
    n_targets: int = typer.Option(8, "--n-targets", "-n", min=1, help="Observed targets."),
    setup: list[str] = typer.Option(["int_ids_r632v", "goodman_400"], "--setup", "-s",
                                    help="Set-up(s) of the night; repeat for several."),
    fmt: str = typer.Option("fits", "--format", "-f", help="Spectrum format: fits or ecsv."),
    fit_plots: bool = typer.Option(False, "--fit-plots/--no-fit-plots",
                                   help="Also draw the line-fit figure of every object "
                                        "(OUTDIR/measure/plots/; ~2 s each)."),
):
    """Simulate a small follow-up night and analyse it end to end.

    Simulates reduced, flux-calibrated spectra of a small night of CNN-selected
    XMP candidates (OUTDIR/spectra/,
    with targets.ecsv, the CNN selection catalogue selection.ecsv,
    observing_log.ecsv, r/i photometry photometry.ecsv and the injected truth
    truth.ecsv), then runs the analysis chain on them exactly as the commands
    do: measure
    (OUTDIR/measure/), derive (OUTDIR/derived.ecsv), compare with the CNN
    (OUTDIR/comparison/), paper tables (OUTDIR/tables/) and figures
    (OUTDIR/figures/). Finally it checks the measurements against what was
    injected (OUTDIR/recovery.ecsv, recovery.txt, recovery.png) and prints
    where every product is. Exit code 1 if a stage or an object failed.

    Examples:

        xmpspec demo demo_out
        xmpspec demo demo_out --seed 7 --n-targets 12
        xmpspec demo demo_out --setup goodman_400 --format ecsv --fit-plots
    """
    from ..cli.cmd_simulate import _check_format
    from ..simulate.demo import recovery_text, run_demo

    fmt = _check_format(fmt)
    cfg = state.config
    with progress_bar() as prog:
        main = prog.add_task("demo", total=len(_STAGES))
        current: list[str] = []

        def on_stage(name: str) -> None:
            if current:
                prog.advance(main)
            current.append(name)
            prog.update(main, description=f"[bold]{len(current)}/{len(_STAGES)} "
                                          f"{_STAGE_TEXT.get(name, name)}")

        def sub(items, description, total):
            task = prog.add_task(f"    {description}", total=total)
            for item in items:
                yield item
                prog.advance(task)

        run = run_demo(outdir, seed=seed, n_targets=n_targets, setups=tuple(setup), fmt=fmt,
                       fit_plots=fit_plots, config=cfg, progress=sub, on_stage=on_stage)
        prog.advance(main)
        prog.update(main, description="[bold]demo done")
    chain = run.chain
    for p in chain.problems:
        err_console.print(f"[yellow]problem:[/] {p}", highlight=False, soft_wrap=True)
    code = EXIT_PARTIAL if chain.problems else EXIT_OK
    if state.quiet:
        return code
    _print_summary(run, seed, outdir, recovery_text)
    return code


def _print_summary(run, seed: int, outdir: Path, recovery_text) -> None:
    import numpy as np
    from rich.table import Table as RichTable

    chain = run.chain
    rec = run.recovery_table
    truth = run.night.truth_table
    tidx = {str(n): i for i, n in enumerate(truth["name"])}
    cmp = {}
    if chain.comparison is not None:
        ct = chain.comparison.table
        cmp = {str(n): str(o) for n, o in zip(ct["name"], ct["outcome"], strict=True)}
    tab = RichTable(title=f"simulated night (seed {seed}): measured vs injected",
                    box=None, padding=(0, 1), pad_edge=False, header_style="bold")
    for col in ("name", "z", "N2 true", "N2 meas", "state", "N2 CNN", "vs CNN",
                "O/H N2"):
        tab.add_column(col, no_wrap=True)
    der = chain.derived_table
    didx = {str(n): i for i, n in enumerate(der["name"])}
    for row in rec:
        name = str(row["name"])
        t = truth[tidx[name]]
        d = der[didx[name]]
        state_txt = _STATE_SHORT.get(str(row["n2_state"]), str(row["n2_state"]))
        if str(row["n2_state"]) != str(row["n2_state_expected"]):
            exp = _STATE_SHORT.get(str(row["n2_state_expected"]), "?")
            state_txt = f"[yellow]{state_txt}[/] (expected {exp})"
        n2m = _fmt_n2(row["n2"], row["n2_err"], bool(row["n2_upper_limit"]))
        if not np.ma.is_masked(row["n2_recovered"]):
            n2m = f"[green]{n2m}[/]" if row["n2_recovered"] else f"[red]{n2m}[/]"
        oh = d["oh_n2"]
        oh_txt = "-" if np.ma.is_masked(oh) else (
            f"{'<' if d['oh_n2_upper_limit'] else ''}{oh:.2f}")
        tab.add_row(name, f"{row['z']:.4f}", f"{row['n2_true']:.2f}", n2m, state_txt,
                    f"{t['n2_cnn']:.2f}", _OUTCOME.get(cmp.get(name, "-"), cmp.get(name, "-")),
                    oh_txt)
    console.print(tab)
    console.print(recovery_text(run.recovery_summary), highlight=False, markup=False)
    if chain.comparison is not None:
        st = chain.comparison.statistics.get("all") or {}
        if st.get("n"):
            console.print(f"CNN comparison, {st['n']} N2 detections: MAE {st['mae']:.3f} dex, "
                          f"bias {st['bias']:+.3f} dex (details in comparison.txt)",
                          highlight=False)
    for note in chain.notes:
        console.print(f"[dim]note: {note}[/]", highlight=False, soft_wrap=True)

    night = run.night
    console.print(f"\n[bold]products in {outdir}[/]", highlight=False)
    products = [
        ("spectra", outdir / "spectra", f"{len(night.spectra)} simulated 1D spectra"),
        ("targets", night.targets, "targets of the night (name, z, ra, dec, ebv_mw, ...)"),
        ("selection", night.selection, "CNN selection catalogue"),
        ("observing log", night.observing_log, "instrument, date, exposures"),
        ("photometry", night.photometry, "r, i magnitudes (stellar masses)"),
        ("truth", night.truth, "injected fluxes, N2, Te, expected S/N (+ .fits)"),
        ("lines", chain.lines, "per-line fluxes, EWs, states (+ .fits)"),
        ("objects", chain.objects, "per-object N2, O3, O3N2 (+ .fits)"),
    ]
    if chain.fit_figures:
        products.append(("fit figures", chain.fit_figures[0].parent,
                         f"{len(chain.fit_figures)} line-fit figures"))
    products.append(("derived", chain.derived, "O/H, Te, E(B-V), L(Ha), SFR, BPT (+ .fits)"))
    for f in chain.comparison_files:
        if f.suffix in (".txt", ".png"):
            products.append(("comparison", f, "N2 observed vs CNN, statistics"
                             if f.suffix == ".txt" else "N2 observed vs CNN (+ .pdf)"))
    tex = [f for f in chain.table_files if f.suffix == ".tex"]
    if tex:
        products.append(("paper tables", tex[0].parent, ", ".join(f.stem for f in tex)
                         + " (.tex .mrt .txt .ecsv .fits)"))
    for name, files in chain.figures.items():
        png = [f for f in files if f.suffix == ".png"] or files
        products.append(("figure", png[0], name.replace("_", " ") + " (+ .pdf)"))
    products.append(("recovery", run.recovery, "measured vs injected, per object (+ .fits)"))
    products.append(("recovery", run.recovery_txt, "summary of the check"))
    if run.recovery_figures:
        products.append(("recovery", run.recovery_figures[0], "measured vs injected (+ .pdf)"))
    for label, path, what in products:
        console.print(f"  [cyan]{label:<13}[/] {path}  [dim]{what}[/]", highlight=False,
                      soft_wrap=True)
    wall = sum(t[0] for t in run.timings.values())
    cpu = sum(t[1] for t in run.timings.values())
    console.print("timings (wall / CPU s): " + ", ".join(
        f"{k} {w:.1f}/{c:.1f}" for k, (w, c) in run.timings.items())
        + f"; total {wall:.0f}/{cpu:.0f}", highlight=False, soft_wrap=True)
