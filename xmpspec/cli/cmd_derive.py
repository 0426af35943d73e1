"""``xmpspec derive``: physical properties from per-object line measurements."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app
from .common import console, state, track


@app.command("derive")
def derive(
    table: Path = typer.Argument(..., help="Per-object table of `xmpspec measure` or a user "
                                           "table (CSV/ECSV/FITS); needs `name` and `z`. A "
                                           "per-line table (name, line, flux, flux_err, state) "
                                           "is pivoted to one row per object."),
    output: Path = typer.Option(..., "--output", "-o", help="Output stem or file: writes "
                                                            "STEM.ecsv and STEM.fits."),
    photometry: Path | None = typer.Option(None, "--photometry",
                                           help="Table with name, r, r_err, i, i_err (AB)."),
    distances: Path | None = typer.Option(None, "--distances",
                                          help="Table with name, dl_corr_mpc, dl_corr_mpc_err."),
    ebv_column: str | None = typer.Option(None, "--ebv-column",
                                          help="Column with the Galactic E(B-V) "
                                               "(default: ebv_mw when present)."),
    mc_draws: int | None = typer.Option(None, "--mc-draws", min=0,
                                        help="Monte Carlo draws of the direct method "
                                             "(default abundances.mc_draws = 500)."),
    n2_calibration: str | None = typer.Option(None, "--n2-calibration",
                                              help="N2 calibration for oh_n2: Y07 (default) "
                                                   "or PP04."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed of the Monte Carlo."),
):
    """Derive D_L, L(Halpha), SFR, O/H (N2, O3N2, Te), dust, M*, BPT.

    Every quantity is computed where its inputs are present and masked
    otherwise, with a `*_flag` column saying what was missing; upper limits
    on N2 propagate to O/H and the BPT class. Output: ECSV + FITS with units
    and provenance.

    Examples:

        xmpspec derive meas/objects.ecsv -o derived
        xmpspec derive meas/lines.ecsv -o derived --mc-draws 1000
        xmpspec derive published_line_measurements.csv -o out/derived \\
            --n2-calibration PP04
        xmpspec derive lines.fits --photometry phot.csv --distances cf3.csv \\
            --ebv-column EBV_SF11 -o derived
    """
    from ..physics.derive import derive_table, pivot_line_table
    from ..physics.strong_line import check_n2_calibration
    from ..provenance import provenance_record
    from ..tableio import read_table, write_table
    from ..workflows.leftovers import clean_leftovers

    cfg = state.config
    clean_leftovers([output], "derive")     # temporaries of a derive killed mid-write
    if n2_calibration is not None:
        n2_calibration = check_n2_calibration(n2_calibration)
    tab = read_table(table)
    if ("line" in tab.colnames or "key" in tab.colnames) and "flux" in tab.colnames:
        tab = pivot_line_table(tab, table)  # per-line table -> one row per object
    phot = read_table(photometry) if photometry is not None else None
    dist = read_table(distances) if distances is not None else None

    def progress(items, description, total):
        return track(items, description, total=total)

    out = derive_table(tab, cfg, photometry=phot, distances_table=dist, ebv_column=ebv_column,
                       mc_draws=mc_draws, n2_calibration=n2_calibration, seed=seed,
                       source=str(table), progress=progress,
                       photometry_source=str(photometry), distances_source=str(distances))
    inputs = [table] + [p for p in (photometry, distances) if p is not None]
    prov = provenance_record(inputs, cfg, step="derive",
                             extra={"n2_calibration": out.meta.get("oh_n2_calibration"),
                                    "mc_draws": mc_draws if mc_draws is not None
                                    else cfg["abundances"]["mc_draws"],
                                    "seed": seed if seed is not None
                                    else cfg["abundances"]["mc_seed"],
                                    "ebv_column": ebv_column})
    written = write_table(out, output, provenance=prov, formats=("ecsv", "fits"))
    clean_leftovers([output], "derive")
    n = len(out)
    n_oh = int((~out["oh_n2"].mask).sum())
    n_lim = int((out["oh_n2_upper_limit"].filled(False)).sum())
    n_te = int((~out["oh_direct"].mask).sum())
    n_sfr = int((~out["sfr"].mask).sum())
    console.print(f"{n} objects: N2 O/H for {n_oh} ({n_lim} upper limits), direct O/H for "
                  f"{n_te}, SFR for {n_sfr}")
    for p in written:
        console.print(f"wrote {p}")
    return 0
