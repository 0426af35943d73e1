"""A small simulated follow-up night for ``xmpspec demo``.

:func:`simulate_demo_night` writes what an observer has after a night of
CNN-selected XMP candidates: reduced, flux-calibrated spectra of about eight
targets on one or two set-ups (INT/IDS R632V and SOAR/Goodman 400 by default,
three exposures each, cosmic rays masked), the selection catalogue of the CNN
stage (more candidates than were observed), the targets table of the night,
and the truth catalogue of the simulation.

The CNN catalogue mimics the selection of science.md: observed targets have
P_MP > 0.99, P_XMP > 0.99 and N2_CNN < -1.8; their true N2 scatters around the
prediction by ``cnn_scatter`` dex (the published follow-up finds ~0.2 dex),
while N2_CNN_err is the (smaller) spread of the 9 models. Halpha fluxes span
the published range (1.3e-15 to 4e-15 erg/s/cm2), so the faint, most
metal-poor targets end as [NII] upper limits and the bright ones as detections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.table import Table

from ..config import Config, get_active_config
from ..errors import InputError
from ..provenance import provenance_record
from ..tableio import write_table
from .spectra import _random_position, coordinate_name, simulate_spectrum
from .truth import targets_table, truth_table, write_spectrum_file

__all__ = ["DemoNight", "simulate_demo_night", "DEMO_SETUPS"]

#: (set-up, exposure time per exposure in s, number of exposures)
DEMO_SETUPS = {"int_ids_r632v": (1200.0, 3), "goodman_400": (800.0, 3)}
#: first night of each set-up's run (targets are spread over the following nights)
DEMO_RUN_START = {"int_ids_r632v": "2024-03-03", "goodman_400": "2023-10-06"}


@dataclass
class DemoNight:
    """Products of :func:`simulate_demo_night`.

    Attributes
    ----------
    outdir : Path
        Folder of the night.
    spectra : list of Path
        One reduced spectrum per target (``spectra/<name>.fits``).
    truth : Path
        Truth catalogue (``truth.ecsv``; also ``truth.fits``).
    targets : Path
        Targets table of the night (``targets.ecsv``).
    selection : Path
        CNN selection catalogue (``selection.ecsv``).
    observing_log : Path
        Observing log (``observing_log.ecsv``: name, ra, dec, n2_cnn,
        n2_cnn_err, instrument, obsdate, exptime_s, nexp), the columns of the
        published follow-up log.
    truth_table : Table
        The truth catalogue in memory.
    """

    outdir: Path
    spectra: list[Path] = field(default_factory=list)
    truth: Path | None = None
    targets: Path | None = None
    selection: Path | None = None
    observing_log: Path | None = None
    truth_table: Table | None = None


def _unique_name(ra: float, dec: float, taken: set[str]) -> str:
    name = coordinate_name(ra, dec, "XMP")
    base, k = name, 1
    while name in taken:
        name = f"{base}{chr(ord('a') + k - 1)}"
        k += 1
    taken.add(name)
    return name


def simulate_demo_night(outdir: str | Path, seed: int = 2024, n_targets: int = 8,
                        setups: tuple[str, ...] = ("int_ids_r632v", "goodman_400"),
                        n_catalogue: int | None = None, cnn_scatter: float = 0.2,
                        fmt: str = "fits", progress=None,
                        config: Config | None = None) -> DemoNight:
    """Simulate a small follow-up run of CNN-selected XMP candidates.

    Parameters
    ----------
    outdir : path-like
        Output folder (created).
    seed : int
        Random seed; the same seed gives the same night.
    n_targets : int
        Number of observed targets (split over ``setups`` in turn).
    setups : tuple of str
        Set-ups of the night (keys of :data:`DEMO_SETUPS` or any set-up name,
        which then uses its typical exposure time x 3).
    n_catalogue : int, optional
        Rows of the CNN selection catalogue (default 3 x ``n_targets``).
    cnn_scatter : float
        Scatter (dex) of the true N2 around the CNN prediction.
    fmt : str
        Spectrum format, ``fits`` or ``ecsv``.
    progress : callable, optional
        Called with no argument after each spectrum is written (progress bars).
    config : Config, optional
        Configuration (default: active).

    Returns
    -------
    DemoNight
        Paths of the products and the truth table.

    Raises
    ------
    InputError
        ``n_targets`` < 1 or no set-up.
    """
    cfg = config if config is not None else get_active_config()
    if n_targets < 1:
        raise InputError(f"the demo needs at least one target (got {n_targets})")
    if not setups:
        raise InputError("the demo needs at least one set-up")
    outdir = Path(outdir)
    rng = np.random.default_rng(seed)
    n_cat = max(int(n_catalogue or 3 * n_targets), n_targets)
    gate = float(cfg["measure"]["significance_gate"])

    # ---- the CNN selection catalogue: observed targets first, then the rest
    taken: set[str] = set()
    rows = []
    for i in range(n_cat):
        ra, dec = _random_position(rng, (-30.0, 65.0))
        selected = i < n_targets
        if selected:
            n2_cnn = rng.uniform(-2.4, -1.85)
            p_mp = 1.0 - 10.0 ** rng.uniform(-5.0, -2.05)
            p_xmp = 1.0 - 10.0 ** rng.uniform(-4.0, -2.05)
        else:
            n2_cnn = rng.uniform(-2.4, -1.0)
            p_mp = 1.0 - 10.0 ** rng.uniform(-4.0, -0.5)
            p_xmp = 1.0 - 10.0 ** rng.uniform(-3.0, 0.0) if n2_cnn < -1.5 \
                else 10.0 ** rng.uniform(-3.0, -0.7)
        rows.append({"name": _unique_name(ra, dec, taken), "ra": round(ra, 6),
                     "dec": round(dec, 6), "n2_cnn": round(float(n2_cnn), 3),
                     "n2_cnn_err": round(float(np.exp(rng.normal(math.log(0.07), 0.4))), 3),
                     "p_mp": round(float(p_mp), 5), "p_xmp": round(float(p_xmp), 5),
                     "observed": selected})
    selection = Table(rows=rows)
    selection["ra"].unit = "deg"
    selection["dec"].unit = "deg"
    selection.meta["description"] = ("simulated CNN selection catalogue (median of 9 models); "
                                     "observed = followed up in the demo night")

    # ---- the observed targets: true N2 around the prediction, a realistic mix
    # of detections and limits (redrawn until both occur when n_targets >= 4)
    for _attempt in range(50):
        params = []
        for i in range(n_targets):
            st = setups[i % len(setups)]
            exptime, nexp = DEMO_SETUPS.get(st, (None, 3))
            n2_true = float(np.clip(rows[i]["n2_cnn"] + rng.normal(0.0, cnn_scatter), -2.8, -1.0))
            params.append({
                "setup": st, "exptime": exptime, "nexp": nexp, "n2": n2_true,
                "z": float(rng.uniform(0.008, 0.065)),
                "halpha_flux": float(math.exp(rng.uniform(math.log(130.0), math.log(4000.0)))),
                "ebv": float(rng.uniform(0.0, 0.2)), "ebv_mw": float(rng.uniform(0.01, 0.1)),
                "sigma_kms": float(rng.uniform(15.0, 45.0)),
                "ew_ha": float(math.exp(rng.uniform(math.log(80.0), math.log(1200.0)))),
                "ne": float(math.exp(rng.uniform(math.log(20.0), math.log(300.0)))),
                "cosmic_rays": int(rng.integers(2, 8)), "seed": int(rng.integers(0, 2**31 - 1)),
                "date_obs": _night_date(st, int(rng.integers(0, 4))),
            })
        sims = [simulate_spectrum(p["setup"], p["z"], n2=p["n2"], halpha_flux=p["halpha_flux"],
                                  ebv=p["ebv"], ebv_mw=p["ebv_mw"], sigma_kms=p["sigma_kms"],
                                  ew_ha=p["ew_ha"], ne=p["ne"], exptime=p["exptime"],
                                  nexp=p["nexp"], cosmic_rays=p["cosmic_rays"],
                                  mask_cosmics=True, seed=p["seed"], name=rows[i]["name"],
                                  ra=rows[i]["ra"], dec=rows[i]["dec"],
                                  date_obs=p["date_obs"], config=cfg)
                for i, p in enumerate(params)]
        det = [t["snr_nii6585"] >= gate for _, t in sims]
        if n_targets < 4 or (any(det) and not all(det)):
            break
    for (_, truth), p in zip(sims, params, strict=True):
        truth["seed"] = p["seed"]

    night = DemoNight(outdir=outdir)
    prov = provenance_record(step="demo", config=cfg, extra={"seed": seed,
                                                            "n_targets": n_targets,
                                                            "setups": list(setups)})
    truths = []
    for i, (spec, truth) in enumerate(sims):
        path = write_spectrum_file(spec, outdir / "spectra" / f"{spec.name}.{fmt}",
                                   provenance=prov)
        night.spectra.append(path)
        truth["n2_cnn"] = rows[i]["n2_cnn"]
        truth["n2_cnn_err"] = rows[i]["n2_cnn_err"]
        truth["file"] = str(path.relative_to(outdir))
        truths.append(truth)
        if progress is not None:
            progress()
    table = truth_table(truths, cfg)
    night.truth_table = table
    night.truth = write_table(table, outdir / "truth", provenance=prov,
                              formats=("ecsv", "fits"))[0]
    night.targets = write_table(targets_table(table), outdir / "targets.ecsv",
                                provenance=prov)[0]
    night.selection = write_table(selection, outdir / "selection.ecsv", provenance=prov)[0]
    log = Table()
    for col in ("name", "ra", "dec", "n2_cnn", "n2_cnn_err", "instrument"):
        log[col] = table[col]
    log["obsdate"] = table["date_obs"]
    log["exptime_s"] = table["exptime"]
    log["nexp"] = table["nexp"]
    night.observing_log = write_table(log, outdir / "observing_log.ecsv", provenance=prov)[0]
    return night


def _night_date(setup: str, offset: int) -> str:
    import datetime as dt
    start = dt.date.fromisoformat(DEMO_RUN_START.get(setup, "2024-01-10"))
    return (start + dt.timedelta(days=offset)).isoformat()
