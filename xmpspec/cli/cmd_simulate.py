"""``xmpspec simulate``: synthetic spectra of emission-line dwarf galaxies with truth tables.

Other modules add sub-commands to :data:`simulate_app` (e.g. ``simulate night``).
"""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import InputError
from .app import app
from .common import console, progress_bar, state

simulate_app = typer.Typer(
    help="Simulate 1D spectra and raw nights, with their truth tables.\n\n"
         "For tests, examples and benchmarks.\n\n"
         "Examples:\n\n```\n"
         "xmpspec simulate spectrum --setup goodman_400 --z 0.03 --n2 -1.8 -o out/\n"
         "xmpspec simulate batch -n 100 --setup sdss --seed 1 -o sim/\n"
         "xmpspec simulate night --instrument goodman -o raw/sim_goodman\n```\n",
    no_args_is_help=True)
app.add_typer(simulate_app, name="simulate")

_FORMATS = ("fits", "ecsv")


def _check_format(fmt: str) -> str:
    fmt = fmt.lower().lstrip(".")
    if fmt not in _FORMATS:
        raise InputError(f"unknown spectrum format '{fmt}'; use one of {', '.join(_FORMATS)}")
    return fmt


def _parse_lines(items: list[str] | None) -> dict[str, float] | None:
    if not items:
        return None
    out: dict[str, float] = {}
    for item in items:
        key, sep, val = item.partition("=")
        if not sep:
            raise InputError(f"--line expects KEY=FLUX (e.g. ha=500), got '{item}'")
        try:
            out[key.strip()] = float(val)
        except ValueError:
            raise InputError(f"--line {item}: flux '{val}' is not a number") from None
    return out


@simulate_app.command("spectrum")
def spectrum(
    setup: str = typer.Option("goodman_400", "--setup", "-s",
                              help="Set-up: int_ids_r632v, goodman_400, mage, sdss."),
    z: float = typer.Option(..., "--z", help="Redshift."),
    n2: float = typer.Option(-1.8, "--n2", help="Observed log10([NII]6585/Halpha)."),
    o3: float | None = typer.Option(None, "--o3", help="Observed log10([OIII]5008/Hbeta) "
                                                       "(default: star-forming sequence at N2)."),
    ha_flux: float = typer.Option(300.0, "--ha-flux",
                                  help="Observed Halpha flux, 1e-17 erg/s/cm2."),
    line: list[str] | None = typer.Option(None, "--line", "-l",
                                          help="Explicit line flux KEY=FLUX (1e-17 erg/s/cm2), "
                                               "repeatable; replaces the HII-region model "
                                               "(lines not given are absent)."),
    ebv: float = typer.Option(0.0, "--ebv", help="Internal E(B-V) (Calzetti 2000)."),
    ebv_mw: float = typer.Option(0.0, "--ebv-mw", help="Milky Way E(B-V) (CCM89)."),
    te: float | None = typer.Option(None, "--te", help="Te([OIII]) in K (default: solved "
                                                       "from the N2 abundance)."),
    ne: float | None = typer.Option(None, "--ne", help="Electron density, cm^-3."),
    sigma_kms: float | None = typer.Option(None, "--sigma-kms",
                                           help="Intrinsic velocity dispersion, km/s."),
    ew_ha: float | None = typer.Option(None, "--ew-ha",
                                       help="Rest-frame EW(Halpha), A (sets the continuum)."),
    balmer_abs_ew: float = typer.Option(0.0, "--balmer-abs-ew",
                                        help="Stellar Balmer absorption EW (rest A)."),
    exptime: float | None = typer.Option(None, "--exptime", "-t",
                                         help="Exposure time per exposure, s."),
    nexp: int = typer.Option(1, "--nexp", min=1, help="Number of exposures."),
    sky_level: float | None = typer.Option(None, "--sky-level",
                                           help="Sky continuum at 5500 A, "
                                                "1e-17 erg/s/cm2/A/arcsec2 (dark ~0.6)."),
    sky_lines: bool = typer.Option(True, "--sky-lines/--no-sky-lines",
                                   help="Noise of the night-sky emission lines."),
    airmass: float | None = typer.Option(None, "--airmass", help="Airmass (default 1.2)."),
    cosmic_rays: int = typer.Option(0, "--cosmic-rays", min=0, help="Number of cosmic-ray hits."),
    mask_cosmics: bool = typer.Option(True, "--mask-cosmics/--keep-cosmics",
                                      help="Mask cosmic-ray pixels or leave them in."),
    name: str | None = typer.Option(None, "--name", help="Object name (default from RA/Dec)."),
    ra: float | None = typer.Option(None, "--ra", help="RA, deg."),
    dec: float | None = typer.Option(None, "--dec", help="Dec, deg."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (reproducible output)."),
    outdir: Path = typer.Option(Path("."), "--output", "-o", help="Output folder."),
    fmt: str = typer.Option("fits", "--format", "-f", help="Spectrum file format: fits or ecsv."),
):
    """Simulate one flux-calibrated spectrum and its truth table.

    Writes OUTDIR/NAME.fits (or .ecsv) and OUTDIR/NAME_truth.ecsv/.fits with the
    injected line fluxes (`f_<key>`), N2, O3, expected S/N of every line and all
    physical and observing parameters.

    Examples:

        xmpspec simulate spectrum --setup goodman_400 --z 0.03 --n2 -1.8 \\
            --ha-flux 500 --exptime 2400 --seed 1 -o out/
        xmpspec simulate spectrum --setup int_ids_r632v --z 0.02 --n2 -2.3 \\
            --ha-flux 150 --nexp 3 --exptime 1200 --cosmic-rays 5 -o out/
        xmpspec simulate spectrum --setup sdss --z 0.05 --line ha=800 \\
            --line nii6585=20 --line hb=280 -o out/ -f ecsv
    """
    from ..provenance import provenance_record
    from ..simulate import simulate_spectrum, truth_table, write_spectrum_file
    from ..tableio import write_table

    fmt = _check_format(fmt)
    cfg = state.config
    fluxes = _parse_lines(line)
    spec, truth = simulate_spectrum(
        setup, z, fluxes, n2=n2, o3=o3, halpha_flux=ha_flux, ebv=ebv, ebv_mw=ebv_mw, te=te, ne=ne,
        sigma_kms=sigma_kms, ew_ha=ew_ha, balmer_abs_ew=balmer_abs_ew, exptime=exptime,
        nexp=nexp, sky_level=sky_level, sky_lines=sky_lines, airmass=airmass,
        cosmic_rays=cosmic_rays,
        mask_cosmics=mask_cosmics, seed=seed, name=name, ra=ra, dec=dec, config=cfg)
    prov = provenance_record(step="simulate spectrum", config=cfg,
                             extra={"seed": seed, "setup": setup})
    path = write_spectrum_file(spec, outdir / f"{spec.name}.{fmt}", provenance=prov)
    truth_files = write_table(truth_table([truth], cfg), outdir / f"{spec.name}_truth",
                              provenance=prov, formats=("ecsv", "fits"))
    if state.quiet:
        return
    console.print(f"spectrum: {path}", soft_wrap=True)
    console.print(f"truth:    {truth_files[0]}", soft_wrap=True)
    console.print(f"  z={truth['z']:.4f}  F(Ha)={truth['f_ha']:.1f}  N2={truth['n2']:.2f}  "
                  f"S/N(Ha)={truth['snr_ha']:.1f}  S/N([NII]6585)={truth['snr_nii6585']:.1f}",
                  highlight=False)


@simulate_app.command("batch")
def batch(
    n: int = typer.Option(..., "-n", "--number", min=1, help="Number of spectra."),
    setup: list[str] = typer.Option(["sdss"], "--setup", "-s",
                                    help="Set-up; repeat to draw from several."),
    seed: int = typer.Option(0, "--seed", help="Master random seed."),
    outdir: Path = typer.Option(..., "--output", "-o", help="Output folder."),
    exptime: float | None = typer.Option(None, "--exptime", "-t",
                                         help="Exposure time per exposure, s "
                                              "(default: the set-up's typical value)."),
    nexp: int = typer.Option(1, "--nexp", min=1, help="Number of exposures."),
    z_range: tuple[float, float] | None = typer.Option(None, "--z-range",
                                                       help="Uniform redshift range."),
    n2_range: tuple[float, float] | None = typer.Option(None, "--n2-range",
                                                        help="Uniform N2 range "
                                                             "(default -2.6 -0.5)."),
    ha_flux_range: tuple[float, float] | None = typer.Option(
        None, "--ha-flux-range", help="Log-uniform Halpha flux range, 1e-17 erg/s/cm2."),
    sky_lines: bool = typer.Option(True, "--sky-lines/--no-sky-lines",
                                   help="Noise of the night-sky emission lines."),
    cosmic_rays: int = typer.Option(0, "--cosmic-rays", min=0,
                                    help="Cosmic-ray hits per spectrum."),
    mask_cosmics: bool = typer.Option(True, "--mask-cosmics/--keep-cosmics",
                                      help="Mask cosmic-ray pixels or leave them in."),
    prefix: str = typer.Option("SIM", "--prefix", help="Object-name prefix."),
    fmt: str = typer.Option("fits", "--format", "-f", help="Spectrum file format: fits or ecsv."),
    truth_only: bool = typer.Option(False, "--truth-only",
                                    help="Write only the truth and targets tables."),
):
    """Simulate N galaxy spectra from a distribution, with their truth.

    Redshift, N2 (uniform, -2.6 to -0.5 by default), Halpha flux (log-uniform),
    dust, width, EW, density and O+ fraction are drawn per object from
    [simulate.batch] of the configuration; many [NII] lines are weak or
    undetected (truth column n2_state_expected). Writes OUTDIR/spectra/NAME.fits,
    OUTDIR/truth.ecsv/.fits and OUTDIR/targets.ecsv (name, z, ra, dec, ebv_mw,
    instrument). Object i depends only on (seed, i): deterministic with --seed.

    Examples:

        xmpspec simulate batch -n 1000 --setup sdss --seed 1 -o out/
        xmpspec simulate batch -n 200 --setup int_ids_r632v --setup goodman_400 \\
            --nexp 3 -o mix/
        xmpspec simulate batch -n 500 --n2-range -2.6 -1.5 --ha-flux-range 50 300 \\
            -o faint/
    """
    from ..provenance import provenance_record
    from ..simulate import iter_batch, targets_table, truth_table, write_spectrum_file
    from ..tableio import write_table

    fmt = _check_format(fmt)
    cfg = state.config
    dist = {"z_range": z_range, "n2_range": n2_range, "halpha_flux_range": ha_flux_range}
    dist = {k: list(v) for k, v in dist.items() if v is not None}
    prov = provenance_record(step="simulate batch", config=cfg,
                             extra={"seed": seed, "setups": list(setup), "n": n, **dist})
    spec_dir = outdir / "spectra"
    truths = []
    with progress_bar() as prog:
        task = prog.add_task("simulating", total=n)
        for spec, truth in iter_batch(n, list(setup), seed, exptime=exptime, nexp=nexp,
                                      sky_lines=sky_lines, cosmic_rays=cosmic_rays,
                                      mask_cosmics=mask_cosmics, name_prefix=prefix,
                                      config=cfg, **dist):
            if not truth_only:
                truth["file"] = str(Path("spectra") / f"{spec.name}.{fmt}")
                write_spectrum_file(spec, spec_dir / f"{spec.name}.{fmt}", provenance=prov)
            truths.append(truth)
            prog.advance(task)
    table = truth_table(truths, cfg)
    truth_files = write_table(table, outdir / "truth", provenance=prov, formats=("ecsv", "fits"))
    targets_file = write_table(targets_table(table), outdir / "targets.ecsv", provenance=prov)[0]
    states = list(table["n2_state_expected"])
    if state.quiet:
        return
    console.print(f"{n} spectra -> {spec_dir if not truth_only else '(not written)'}", soft_wrap=True)
    console.print(f"truth:   {truth_files[0]}  (+ .fits)", soft_wrap=True)
    console.print(f"targets: {targets_file}", soft_wrap=True)
    console.print(f"expected [NII]6585: {states.count('detected')} detected, "
                  f"{states.count('upper_limit')} upper limits, "
                  f"{states.count('not_covered')} not covered", highlight=False)
