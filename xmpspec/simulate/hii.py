"""Emission-line fluxes of a metal-poor HII region from a few physical parameters.

:func:`hii_line_fluxes` turns (observed Halpha flux, N2, O3, dust, density,
ionisation) into the fluxes of every line of the catalogue, consistently:

- Balmer lines: case-B ratios from PyNeb at (Te([OIII]), ne) (as the derive
  step assumes; ``[simulate] balmer_decrement = "fixed"`` uses the fixed
  ``balmer_intrinsic`` ratios, Halpha/Hbeta = 2.86, instead),
  reddened by the internal dust (Calzetti et al. 2000, R_V = 4.05, the curve of
  :mod:`xmpspec.physics.dust`) and,
  optionally, the Milky Way (Cardelli et al. 1989, R_V = 3.1, at the observed
  wavelength); the whole set is scaled so that the *observed* Halpha flux is
  the one requested.
- N2 = log10(F6585/F_Halpha) and O3 = log10(F5008/F_Hbeta) are exact in the
  observed (reddened) fluxes; [NII]6550 = 6585/2.96, [OIII]4960 = 5008/2.98.
- O3 defaults to the Kewley et al. (2013) star-forming sequence at N2 plus the
  ``[simulate] o3_offset``.
- Oxygen: the total abundance is the Yin et al. (2007) N2 value; O+/O is
  ``oplus_fraction``. Te([OIII]) is solved (PyNeb emissivities) so that the
  direct-method abundance 12 + log10(O+/H+ + O++/H+) equals that value, then
  [OIII]4364 follows from Te and ne, and [OII]3727,3730 from O+/H+ at
  Te([OII]) = 0.7 Te([OIII]) + 3000 K (Garnett 1992) with the density-sensitive
  doublet ratio. Te is clipped to ``[te_min, te_max]``; the truth then records
  the direct abundance actually implied.
- [SII]6718+6733 from a log-linear relation with N2, split by density;
  [NeIII], HeI, HeII, [OI] from fixed ratios (configuration).

PyNeb emissivities are tabulated once per process on a (Te, ne) grid.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..config import Config, get_active_config
from ..errors import InputError
from ..lines.catalog import line_catalog

__all__ = ["hii_line_fluxes", "calzetti_k", "mw_k", "o3_sequence", "emissivity_grid"]

_TE_GRID = np.arange(5000.0, 30001.0, 250.0)
_DLOGNE = 0.1
_LOGNE_GRID = np.arange(0.0, 5.0001, _DLOGNE)
# PyNeb (atom, ion, wavelength label in air or recombination label)
_EMISSIVITIES = {
    "o3_4363": ("O", 3, 4363), "o3_4959": ("O", 3, 4959), "o3_5007": ("O", 3, 5007),
    "o2_3726": ("O", 2, 3726), "o2_3729": ("O", 2, 3729),
    "s2_6716": ("S", 2, 6716), "s2_6731": ("S", 2, 6731),
    "ha": ("H", 1, "3_2"), "hb": ("H", 1, "4_2"), "hg": ("H", 1, "5_2"), "hd": ("H", 1, "6_2"),
}


@functools.lru_cache(maxsize=1)
def emissivity_grid() -> dict[str, np.ndarray]:
    """PyNeb emissivities on the (Te, log ne) grid (computed once per process).

    Returns
    -------
    dict
        ``{'te': Te grid (K), 'logne': log10 ne grid, name: 2D array}``.
    """
    import pyneb as pn  # heavy import: only when a nebula is simulated
    ne = 10.0 ** _LOGNE_GRID
    atoms: dict = {}
    out = {"te": _TE_GRID, "logne": _LOGNE_GRID}
    for name, (elem, ion, wave) in _EMISSIVITIES.items():
        key = (elem, ion)
        if key not in atoms:
            atoms[key] = pn.RecAtom(elem, ion) if elem == "H" else pn.Atom(elem, ion)
        atom = atoms[key]
        if isinstance(wave, str):
            out[name] = np.asarray(atom.getEmissivity(_TE_GRID, ne, label=wave), float)
        else:
            out[name] = np.asarray(atom.getEmissivity(_TE_GRID, ne, wave=wave), float)
    return out


def _emis(name: str, te: float | np.ndarray, ne: float) -> np.ndarray:
    """Bilinear interpolation of a tabulated emissivity (Te may be an array)."""
    g = emissivity_grid()
    te = np.clip(np.asarray(te, float), _TE_GRID[0], _TE_GRID[-1])
    lne = float(np.clip(math.log10(ne), _LOGNE_GRID[0], _LOGNE_GRID[-1]))
    j = min(int((lne - _LOGNE_GRID[0]) / _DLOGNE), _LOGNE_GRID.size - 2)
    fj = (lne - _LOGNE_GRID[j]) / _DLOGNE
    col = g[name][:, j] * (1 - fj) + g[name][:, j + 1] * fj
    return np.interp(te, _TE_GRID, col)


def calzetti_k(wave_rest: np.ndarray | float, rv: float | None = None,
               config: Config | None = None) -> np.ndarray:
    """Calzetti et al. (2000) attenuation curve k(lambda) = A(lambda)/E(B-V).

    The curve of the derive step, :func:`xmpspec.physics.dust.calzetti_k`
    (``[dust] internal_curve``, ``rv_internal``), so that simulated spectra are
    reddened exactly as derive de-reddens them.

    Parameters
    ----------
    wave_rest : array_like
        Rest-frame wavelength (Angstrom), valid 1200 A - 2.2 micron.
    rv : float, optional
        Total-to-selective ratio; default ``[dust] rv_internal`` (4.05).
    config : Config, optional
        Defaults to the active configuration.
    """
    import astropy.units as u

    from ..physics import dust
    cfg = config if config is not None else get_active_config()
    if rv is not None:
        cfg = cfg.updated({"dust.rv_internal": float(rv)})
    w = np.asarray(wave_rest, float)
    return dust.calzetti_k(w * u.AA, cfg).reshape(w.shape)


def mw_k(wave: np.ndarray | float, config: Config | None = None) -> np.ndarray:
    """Milky Way A(lambda)/E(B-V) of the configured curve (``[dust] mw_curve``, ``rv_mw``).

    The curve ``xmpspec derive`` corrects with (:func:`xmpspec.physics.dust.mw_a_lambda`),
    so simulated and de-reddened fluxes use one extinction law.

    Parameters
    ----------
    wave : array_like
        Observed-frame wavelength (Angstrom).
    config : Config, optional
        Defaults to the active configuration.
    """
    import astropy.units as u

    from ..physics import dust
    cfg = config if config is not None else get_active_config()
    w = np.asarray(wave, float)
    return np.asarray(dust.mw_a_lambda(np.atleast_1d(w) * u.AA, 1.0, cfg)).reshape(w.shape)


def o3_sequence(n2: float, config: Config | None = None) -> float:
    """Default O3 at ``n2``: the Kewley et al. (2013) z~0 star-forming sequence.

    Shifted by ``[simulate] o3_offset`` and, below ``o3_turnover_n2``, lowered by
    ``o3_turnover_slope`` per dex of N2: the most metal-poor galaxies (I Zw 18,
    SBS 0335-052) have lower [OIII]/Hbeta than the sequence's asymptote.
    """
    cfg = config if config is not None else get_active_config()
    a, b, c = cfg["bpt"]["kewley13"]
    if n2 >= b:
        raise InputError(f"N2 = {n2} lies beyond the star-forming sequence asymptote "
                         f"({b}); give O3 explicitly")
    sim = cfg["simulate"]
    turn = float(sim["o3_turnover_n2"])
    drop = float(sim["o3_turnover_slope"]) * max(0.0, turn - n2)
    return a / (n2 - b) + c + float(sim["o3_offset"]) - drop


def hii_line_fluxes(halpha_flux: float, n2: float, o3: float | None = None, *,
                    z: float = 0.0, ebv: float = 0.0, ebv_mw: float = 0.0,
                    ne: float | None = None, te: float | None = None,
                    oplus_fraction: float | None = None, s2: float | None = None,
                    config: Config | None = None) -> tuple[dict[str, float], dict]:
    """Observed fluxes of every catalogue line of a metal-poor HII region.

    Parameters
    ----------
    halpha_flux : float
        Observed (reddened) Halpha flux, 1e-17 erg s^-1 cm^-2.
    n2 : float
        Observed log10([NII]6585/Halpha).
    o3 : float, optional
        Observed log10([OIII]5008/Hbeta); default the star-forming sequence.
    z : float
        Redshift (only used for the Milky Way extinction at observed wavelengths).
    ebv : float
        Internal E(B-V) of the gas (Calzetti 2000 curve).
    ebv_mw : float
        Milky Way E(B-V) (CCM89, R_V from ``[dust] rv_mw``).
    ne : float, optional
        Electron density (cm^-3); default ``[simulate] ne``.
    te : float, optional
        Te([OIII]) in K. Default: solved so that the direct abundance equals
        the Yin et al. (2007) value at ``n2``.
    oplus_fraction : float, optional
        O+/(O+ + O++); default ``[simulate] oplus_fraction``.
    s2 : float, optional
        log10(([SII]6718+6733)/Halpha); default the N2 relation of the configuration.
    config : Config, optional
        Defaults to the active configuration.

    Returns
    -------
    fluxes : dict
        ``{line key: observed flux in 1e-17 erg/s/cm2}`` for every catalogue line.
    params : dict
        The physical parameters used (te, te_oii, ne, oh_n2, oh_direct,
        oplus_fraction, o3, s2, halpha_hbeta_intrinsic, ...).

    Raises
    ------
    InputError
        Non-positive Halpha flux, density or temperature, or an O+ fraction
        outside (0, 1).
    """
    cfg = config if config is not None else get_active_config()
    sim = cfg["simulate"]
    if not halpha_flux > 0:
        raise InputError(f"Halpha flux must be positive (got {halpha_flux})")
    ne = float(sim["ne"] if ne is None else ne)
    if not ne > 0:
        raise InputError(f"electron density must be positive (got {ne})")
    fop = float(sim["oplus_fraction"] if oplus_fraction is None else oplus_fraction)
    if not 0.0 < fop < 1.0:
        raise InputError(f"O+ fraction must lie in (0, 1) (got {fop})")
    if o3 is None:
        o3 = o3_sequence(n2, cfg)
    if s2 is None:
        s2 = float(sim["s2_intercept"]) + float(sim["s2_slope"]) * n2
    cat = line_catalog(cfg)
    keys = cat.keys
    wave = {k: cat[k].wave for k in keys}

    # total attenuation factor (observed / emitted) of each line
    kint = calzetti_k(np.array([wave[k] for k in keys]), config=cfg)
    att = 10.0 ** (-0.4 * ebv * kint)
    if ebv_mw:
        kmw = mw_k(np.array([wave[k] for k in keys]) * (1.0 + z), config=cfg)
        att = att * 10.0 ** (-0.4 * ebv_mw * kmw)
    A = dict(zip(keys, att, strict=True))

    r_nii = float(cfg["doublets"]["NII_6585_over_6550"])
    r_oiii = float(cfg["doublets"]["OIII_5008_over_4960"])
    # oxygen abundance and Te
    ab = cfg["abundances"]
    oh_n2 = float(ab["y07_intercept"]) + float(ab["y07_slope"]) * n2
    te_grid = _TE_GRID
    o3_per_hb = (_emis("o3_4959", te_grid, ne) + _emis("o3_5007", te_grid, ne)) \
        / _emis("hb", te_grid, ne)   # increasing with Te
    te_lo, te_hi = float(sim["te_min"]), float(sim["te_max"])
    if te is not None:
        te = float(te)
        if not te > 0:
            raise InputError(f"Te must be positive (got {te})")

    # O3 (observed) -> intrinsic (4960 + 5008)/Hbeta; Balmer decrement does not enter
    r3 = 10.0 ** o3 * A["hb"] / A["oiii5008"] * (1.0 + 1.0 / r_oiii)
    if te is None:
        target_opp = (1.0 - fop) * 10.0 ** (oh_n2 - 12.0)
        te = float(np.clip(np.interp(r3 / target_opp, o3_per_hb, te_grid), te_lo, te_hi))
        te_solved = True
    else:
        te_solved = False

    # intrinsic Balmer ratios relative to Hbeta = 1
    mode = str(sim["balmer_decrement"]).lower()
    if mode == "pyneb":   # case B at (Te([OIII]), ne), as the derive step assumes
        ehb = float(_emis("hb", te, ne))
        intr: dict[str, float] = {k: float(_emis(k, te, ne)) / ehb for k in ("ha", "hg", "hd")}
        intr["hb"] = 1.0
    elif mode == "fixed":
        bal = [float(v) for v in sim["balmer_intrinsic"]]  # Ha, Hb, Hg, Hd relative to Hb
        intr = {"ha": bal[0] / bal[1], "hb": 1.0, "hg": bal[2] / bal[1], "hd": bal[3] / bal[1]}
    else:
        raise InputError(f"[simulate] balmer_decrement must be 'pyneb' or 'fixed', not {mode!r}")
    # O3 and N2 are observed ratios: convert to intrinsic
    intr["oiii5008"] = 10.0 ** o3 * A["hb"] / A["oiii5008"]
    intr["oiii4960"] = intr["oiii5008"] / r_oiii
    intr["nii6585"] = 10.0 ** n2 * intr["ha"] * A["ha"] / A["nii6585"]
    intr["nii6550"] = intr["nii6585"] / r_nii

    opp = r3 / float(np.interp(te, te_grid, o3_per_hb))
    op = opp * fop / (1.0 - fop)
    oh_direct = 12.0 + math.log10(op + opp)
    te_oii = float(ab["te_oii_slope"]) * te + float(ab["te_oii_offset"])

    e4363 = float(_emis("o3_4363", te, ne))
    e4959 = float(_emis("o3_4959", te, ne))
    e5007 = float(_emis("o3_5007", te, ne))
    intr["oiii4364"] = r3 * e4363 / (e4959 + e5007)
    e3726 = float(_emis("o2_3726", te_oii, ne))
    e3729 = float(_emis("o2_3729", te_oii, ne))
    ehb_oii = float(_emis("hb", te_oii, ne))
    intr["oii3727"] = op * e3726 / ehb_oii
    intr["oii3730"] = op * e3729 / ehb_oii
    e6716 = float(_emis("s2_6716", te_oii, ne))
    e6731 = float(_emis("s2_6731", te_oii, ne))
    s2_intr = 10.0 ** s2 * intr["ha"] * A["ha"]  # observed ratio -> (S6718+S6733) x A
    # split so that observed sum / observed Ha = 10**s2
    fs = e6716 / (e6716 + e6731)
    denom = fs / A["sii6718"] + (1 - fs) / A["sii6733"]
    s2_sum_intr = s2_intr * denom
    intr["sii6718"] = s2_sum_intr * fs
    intr["sii6733"] = s2_sum_intr * (1 - fs)
    intr["neiii3870"] = float(sim["neiii_over_oiii5008"]) * intr["oiii5008"]
    intr["hei5877"] = float(sim["hei5877_over_hb"])
    intr["heii4687"] = float(sim["heii4687_over_hb"])
    intr["oi6302"] = float(sim["oi6302_over_ha"]) * intr["ha"]

    missing = [k for k in keys if k not in intr]
    if missing:  # a catalogue line without a physical model is a bug here
        raise InputError(f"no HII-region model for line(s) {', '.join(missing)}")
    obs = {k: intr[k] * A[k] for k in keys}
    scale = halpha_flux / obs["ha"]
    fluxes = {k: float(obs[k] * scale) for k in keys}
    fluxes["ha"] = float(halpha_flux)   # exact (no rounding from the scaling)
    params = {
        "n2": float(n2), "o3": float(o3), "s2": float(s2), "ebv": float(ebv),
        "ebv_mw": float(ebv_mw), "ne": ne, "te": te, "te_oii": te_oii,
        "te_solved": te_solved, "oplus_fraction": fop, "oh_n2": oh_n2,
        "oh_direct": oh_direct, "halpha_hbeta_intrinsic": intr["ha"],
        "hb_intrinsic_flux": float(scale),  # dust-free Hbeta flux, 1e-17 erg/s/cm2
    }
    return fluxes, params
