"""``xmpspec batch``: measure (and derive) thousands to millions of spectra, resumably."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app
from .common import EXIT_OK, EXIT_PARTIAL, console, err_console, state

_MAX_LISTED_FAILURES = 20


@app.command("batch")
def batch(
    inputs: list[str] = typer.Argument(
        ..., help="Spectra: folders (searched recursively for FITS files), quoted glob "
                  "patterns, file lists (.txt/.lst, one path per line) or files."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder (manifest, parts, "
                                                          "merged tables)."),
    targets: Path | None = typer.Option(None, "--targets", "-t",
                                        help="Targets table (name, z, optional ra/dec, ...)."),
    workers: int | None = typer.Option(None, "--workers", "-w", min=1,
                                       help="Local worker processes (default: all cores)."),
    scheduler: str | None = typer.Option(None, "--scheduler",
                                         help="Address of a running Dask scheduler "
                                              "(tcp://HOST:PORT); replaces the local pool."),
    chunk_size: int | None = typer.Option(None, "--chunk-size", "-k", min=1,
                                          help="Spectra per task (default: batch.chunk_size "
                                               "of the configuration)."),
    derive: bool = typer.Option(False, "--derive",
                                help="Also derive dust, abundances, L, SFR, BPT per object."),
    retry_failed: bool = typer.Option(False, "--retry-failed",
                                      help="Process inputs that failed in an earlier run again."),
    restart: bool = typer.Option(False, "--restart",
                                 help="Discard an earlier run in the output folder and start "
                                      "from scratch."),
    fmt: str | None = typer.Option(None, "--format", "-f",
                                   help="Spectrum format for every input (default: detected "
                                        "per file)."),
    setup: str | None = typer.Option(None, "--setup",
                                     help="Observing set-up of every spectrum (instrumental "
                                          "resolution), e.g. sdss, goodman_400."),
    mcmc: bool = typer.Option(False, "--mcmc", help="emcee posteriors for every object "
                                                    "(about 1-2 s per object and core)."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed of the MCMC (--mcmc), "
                                                         "the same for every object."),
    ignore_bad_errors: bool = typer.Option(False, "--ignore-bad-errors",
                                           help="Mask pixels with zero/negative errors instead "
                                                "of failing the object."),
    task: str = typer.Option("measure", "--task",
                             help="'measure' (lines; + derive with --derive) or 'inventory' "
                                  "(read and summarise each spectrum, to vet an archive)."),
):
    """Run measure (+ derive) over many spectra: local pool or Dask.

    Work goes out in chunks; each finished chunk is written at once as Parquet
    parts and recorded in OUTDIR/manifest.jsonl, so re-running the same command
    resumes where a run stopped (Ctrl-C, kill, crash): done inputs are skipped,
    failed ones are retried with --retry-failed. The end merges everything into
    OUTDIR/lines and OUTDIR/objects (ECSV, FITS, Parquet; Parquet only for very
    large tables) and lists failures with their reason in OUTDIR/failed.ecsv.
    Inputs are named in every output as given (relative paths stay relative);
    a run with relative inputs resumes from the same working folder only.
    Exit code 0 if every input was measured, 1 if any failed.

    Examples:

        xmpspec batch spectra/ -o batch_out
        xmpspec batch "sdss/*/spec-*.fits" --targets targets.csv --derive -o dr17
        xmpspec batch files.txt --workers 8 --chunk-size 500 -o run1
        xmpspec batch files.txt -o run1 --retry-failed        # resume, retry failures
        xmpspec batch archive/ --scheduler tcp://10.0.0.5:8786 -o archive_out
        xmpspec batch archive/ --task inventory -o vet        # which files read?
    """
    import time

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    from ..engine import TASKS, BatchRun, discover_inputs
    from ..errors import InputError

    if task not in TASKS:
        raise InputError(f"unknown --task '{task}' (choose from {', '.join(TASKS)})")
    if scheduler and workers:
        raise InputError("--workers and --scheduler exclude each other (the cluster's workers "
                         "do the work)")
    if derive and task != "measure":
        raise InputError("--derive applies to --task measure only")
    cfg = state.config
    t_start = time.perf_counter()
    paths = discover_inputs(inputs, exclude=[output])
    if not paths:
        raise InputError("no input spectra found (folders are searched for .fits/.fit/.fits.gz)",
                         " ".join(inputs))
    if task != "measure" and (setup or mcmc or seed is not None):
        raise InputError("--setup, --mcmc and --seed apply to --task measure only")
    options = {"derive": derive, "format": fmt}
    if task == "measure":
        options.update(setup=setup, mcmc=mcmc, seed=seed)
    options["ignore_bad_errors"] = ignore_bad_errors

    class RateColumn(ProgressColumn):
        def render(self, task):
            speed = task.finished_speed or task.speed
            return Text(f"{speed:.1f} spec/s" if speed else "- spec/s", style="progress.data.speed")

    with BatchRun(paths, output, task=task, config=cfg, targets=targets, options=options,
                  workers=workers, scheduler=scheduler, chunk_size=chunk_size,
                  retry_failed=retry_failed, restart=restart, inputs_spec=inputs) as run:
        pending = run.prepare()
        s = run.summary
        if s.skipped_done or s.skipped_failed:
            err_console.print(f"resuming {output}: {s.skipped_done} done, {s.skipped_failed} "
                              f"failed earlier{' (not retried)' if s.skipped_failed else ''}, "
                              f"{len(pending)} to process", highlight=False)
        failed_box = [0]
        with Progress(SpinnerColumn(), TextColumn("[progress.description]{task.description}"),
                      BarColumn(), MofNCompleteColumn(), RateColumn(), TimeElapsedColumn(),
                      TextColumn("eta"), TimeRemainingColumn(),
                      TextColumn("{task.fields[failed]}", style="red"),
                      console=err_console, disable=state.quiet) as prog:
            bar = prog.add_task(task, total=len(pending), failed="")

            def on_start(description: str) -> None:
                prog.update(bar, description=f"{task} ({description})")

            def advance(n_done: int, n_failed: int) -> None:
                failed_box[0] += n_failed
                prog.update(bar, advance=n_done + n_failed,
                            failed=f"{failed_box[0]} failed" if failed_box[0] else "")

            summary = run.execute(progress=advance, on_start=on_start)
        if summary.interrupted:
            what = f"stopped ({summary.stopped})" if summary.stopped else "interrupted"
            err_console.print(f"[red]{what}[/]: {summary.n_done} of {summary.n_inputs} "
                              f"inputs are done and kept, {summary.n_failed} failed, "
                              f"{summary.n_pending} pending; re-run the same command to resume.",
                              highlight=False)
            raise typer.Exit(EXIT_PARTIAL if summary.stopped else 130)
        outputs = run.merge()
    _print_summary(summary, outputs, time.perf_counter() - t_start)
    raise typer.Exit(EXIT_OK if summary.exit_code == 0 else EXIT_PARTIAL)


def _print_summary(summary, outputs, total_seconds: float) -> None:
    from rich.table import Table as RichTable
    s = summary
    grid = RichTable.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("inputs", str(s.n_inputs))
    grid.add_row("done", f"{s.n_done}  ({s.done_now} in this run)")
    grid.add_row("failed", f"{s.n_failed}  ({s.failed_now} in this run"
                           + (f", {s.skipped_failed} earlier failures not retried: "
                              "use --retry-failed" if s.skipped_failed else "") + ")")
    grid.add_row("skipped", f"{s.skipped_done + s.skipped_failed}  (done or failed in an "
                            "earlier run)")
    processed = s.done_now + s.failed_now
    grid.add_row("time", f"{s.wall_seconds:.1f} s processing, {total_seconds:.1f} s in total")
    grid.add_row("rate", f"{s.rate:.2f} spectra/s ({processed} spectra)" if processed else "-")
    if s.executor:
        grid.add_row("executor", s.executor)
    if s.worker_peak_rss_mb:
        grid.add_row("worker memory", f"peak {max(s.worker_peak_rss_mb.values()):.0f} MB "
                                      f"({len(s.worker_peak_rss_mb)} worker process(es))")
    for name, files in outputs.items():
        grid.add_row(name, ", ".join(str(f) for f in files))
    console.print(grid)
    if s.failures:
        console.print(f"[red]{len(s.failures)} input(s) failed[/]"
                      + (f" (first {_MAX_LISTED_FAILURES} listed; all in failed.ecsv)"
                         if len(s.failures) > _MAX_LISTED_FAILURES else "") + ":")
        for path, etype, reason in s.failures[:_MAX_LISTED_FAILURES]:
            msg = reason if Path(path).name in reason else f"{path}: {reason}"
            console.print(f"  [red]{etype}[/] {msg}", highlight=False, soft_wrap=True)
