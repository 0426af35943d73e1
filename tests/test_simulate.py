"""Tests of the 1D spectrum simulator (xmpspec.simulate)."""

from __future__ import annotations

import math

import astropy.units as u
import numpy as np
import pytest
from scipy.special import ndtr

from xmpspec import FLUX_UNIT, LINE_FLUX_UNIT
from xmpspec.config import default_config
from xmpspec.errors import InputError
from xmpspec.instruments import C_KMS, get_setup, setup_names
from xmpspec.lines.catalog import line_catalog
from xmpspec.simulate import (
    emission_line_model,
    hii_line_fluxes,
    iter_batch,
    pixel_edges,
    simulate_batch,
    simulate_spectrum,
    truth_table,
)
from xmpspec.simulate.hii import calzetti_k

CAT = line_catalog(default_config())
DEV_KEYS = ["oii3727", "oii3730", "neiii3870", "hd", "hg", "oiii4364", "heii4687", "hb",
            "oiii4960", "oiii5008", "hei5877", "oi6302", "nii6550", "ha", "nii6585", "sii6718",
            "sii6733"]

# a redshift per set-up that puts Halpha and its neighbours on the grid
Z_OF = {"int_ids_r632v": 0.02, "goodman_400": 0.03, "goodman_red_400": 0.03, "mage": 0.04,
        "sdss": 0.05}


# ------------------------------------------------------------------ noise-free model
@pytest.mark.parametrize("name", setup_names())
def test_line_flux_equals_truth_for_every_covered_line(name):
    st = get_setup(name)
    wave = st.wavelength_grid()
    width = np.diff(pixel_edges(wave))
    z = Z_OF[name]
    checked = 0
    for i, line in enumerate(CAT):
        c = line.wave * (1 + z)
        if not (wave[0] + 50 < c < wave[-1] - 50):
            continue
        flux = 10.0 + 37.0 * i
        model = emission_line_model(wave * u.AA, z, {line.key: flux}, 40.0, st)
        assert model.unit == FLUX_UNIT
        total = float(np.sum(model.value * width))
        assert total == pytest.approx(flux, rel=1e-3), (name, line.key)
        checked += 1
    assert checked >= 5  # every set-up covers at least Halpha, [NII], [SII]


def test_model_is_pixel_integrated_not_point_sampled():
    st = get_setup("mage")   # narrow lines, few pixels per sigma
    wave = st.wavelength_grid(6700.0, 6900.0)
    z, sig_kms, flux = 0.02, 5.0, 100.0
    model = emission_line_model(wave, z, {"ha": flux}, sig_kms, st).value
    edges = pixel_edges(wave)
    c = CAT["ha"].wave * (1 + z)
    sigma = math.hypot(st.fwhm_at(c) / 2.3548200450309493, c * sig_kms / C_KMS)
    expect = flux * np.diff(ndtr((edges - c) / sigma)) / np.diff(edges)
    assert np.allclose(model, expect, rtol=1e-9, atol=1e-12)
    point = flux / (sigma * math.sqrt(2 * math.pi)) * np.exp(-0.5 * ((wave - c) / sigma) ** 2)
    assert np.max(np.abs(point - model)) > 0.01 * model.max()   # they really differ


@pytest.mark.parametrize("name", setup_names())
def test_line_width_combines_resolution_and_dispersion(name):
    st = get_setup(name)
    z, sig_kms = Z_OF[name], 60.0
    c = CAT["ha"].wave * (1 + z)
    wave = st.wavelength_grid(c - 150, c + 150)
    model = emission_line_model(wave, z, {"ha": 1000.0}, sig_kms, st).value
    width = np.diff(pixel_edges(wave))
    w = model * width
    mean = np.sum(w * wave) / w.sum()
    var = np.sum(w * (wave - mean) ** 2) / w.sum() - np.mean(width) ** 2 / 12.0
    expect = math.hypot(st.fwhm_at(c) / 2.3548200450309493, c * sig_kms / C_KMS)
    assert mean == pytest.approx(c, abs=0.01 * np.mean(width))
    assert math.sqrt(var) == pytest.approx(expect, rel=0.02)


def test_lines_outside_coverage_are_absent():
    st = get_setup("int_ids_r632v")   # 5370-7540 A: no [OIII]/Hbeta at z = 0.02
    spec, truth, model = simulate_spectrum(st, 0.02, n2=-1.5, halpha_flux=500.0, seed=3,
                                           sky_lines=False, return_model=True, ew_ha=1e6)
    for key in ("oii3727", "hb", "oiii5008", "oiii4364"):
        assert truth[f"f_{key}"] > 0
        assert truth[f"{key}_covered"] is False
        assert truth[f"snr_{key}"] == 0.0
    for key in ("nii6550", "ha", "nii6585", "sii6718", "sii6733"):
        assert truth[f"{key}_covered"] is True
    only = emission_line_model(spec.wavelength, 0.02, {"oiii5008": 1e4, "hb": 1e4}, 30.0, st)
    assert np.all(only.value < 1e-8)
    assert spec.wavelength.value.min() >= 5370.0 and spec.wavelength.value.max() <= 7540.0
    # red side: [SII] beyond the Goodman grid at z = 0.07; a line on the edge is cut
    g = get_setup("goodman_400")
    wave = g.wavelength_grid()
    red = emission_line_model(wave, 0.07, {"sii6718": 1e4, "sii6733": 1e4}, 30.0, g)
    assert np.all(red.value < 1e-8)
    z_edge = pixel_edges(wave)[-1] / CAT["ha"].wave - 1.0   # Halpha centred on the last edge
    cut = emission_line_model(wave, z_edge, {"ha": 100.0}, 30.0, g).value
    assert np.sum(cut * np.diff(pixel_edges(wave))) == pytest.approx(50.0, rel=0.02)


def test_unknown_line_and_bad_inputs_raise():
    st = get_setup("sdss")
    wave = st.wavelength_grid()
    with pytest.raises(InputError, match="unknown line"):
        emission_line_model(wave, 0.02, {"halpha": 1.0}, 30.0, st)
    with pytest.raises(InputError, match="exposure time"):
        simulate_spectrum(st, 0.02, exptime=-5, seed=1)
    with pytest.raises(InputError, match="unknown instrument"):
        simulate_spectrum("keck_lris", 0.02, seed=1)
    with pytest.raises(InputError, match="negative line flux"):
        simulate_spectrum(st, 0.02, {"ha": -3.0}, seed=1)
    with pytest.raises(InputError, match="Halpha flux"):
        simulate_spectrum(st, 0.02, halpha_flux=0.0, seed=1)


def test_quantity_fluxes_are_converted():
    st = get_setup("sdss")
    wave = st.wavelength_grid(6600, 7100)
    a = emission_line_model(wave, 0.03, {"ha": 2e-15 * u.erg / u.s / u.cm**2}, 30.0, st)
    b = emission_line_model(wave, 0.03, {"ha": 200.0 * LINE_FLUX_UNIT}, 30.0, st)
    c = emission_line_model(wave, 0.03, {"ha": 200.0}, 30.0, st)
    assert np.allclose(a.value, c.value) and np.allclose(b.value, c.value)


# ---------------------------------------------------------------- line ratios
def test_hii_ratios_doublets_dust_and_abundance():
    cfg = default_config()
    import pyneb as pn
    f, p = hii_line_fluxes(500.0, -2.0, ebv=0.0, config=cfg)
    assert f["ha"] == pytest.approx(500.0)
    # case-B Balmer decrement of PyNeb at the nebula's Te and ne (what derive assumes)
    h1 = pn.RecAtom("H", 1)
    for key, label in (("ha", "3_2"), ("hg", "5_2"), ("hd", "6_2")):
        expect = (h1.getEmissivity(p["te"], p["ne"], label=label)
                  / h1.getEmissivity(p["te"], p["ne"], label="4_2"))
        assert f[key] / f["hb"] == pytest.approx(expect, rel=2e-3)
    assert p["halpha_hbeta_intrinsic"] == pytest.approx(f["ha"] / f["hb"])
    assert 2.70 < p["halpha_hbeta_intrinsic"] < 2.86   # hotter than 1e4 K
    fixed = cfg.updated({"simulate.balmer_decrement": "fixed"})
    ff, _ = hii_line_fluxes(500.0, -2.0, ebv=0.0, config=fixed)
    assert ff["ha"] / ff["hb"] == pytest.approx(2.86, rel=1e-6)
    assert f["nii6585"] / f["nii6550"] == pytest.approx(2.96, rel=1e-6)
    assert f["oiii5008"] / f["oiii4960"] == pytest.approx(2.98, rel=1e-6)
    assert math.log10(f["nii6585"] / f["ha"]) == pytest.approx(-2.0, abs=1e-9)
    # direct-method abundance equals the Yin+07 value of N2 (Te inside its bounds)
    assert p["te_solved"] and 6000 < p["te"] < 25000
    assert p["oh_direct"] == pytest.approx(9.263 + 0.836 * -2.0, abs=1e-3)

    fd, pd = hii_line_fluxes(500.0, -2.0, o3=0.8, ebv=0.3, config=cfg)
    k_hb, k_ha = calzetti_k(np.array([CAT["hb"].wave, CAT["ha"].wave]))
    assert fd["ha"] / fd["hb"] == pytest.approx(
        pd["halpha_hbeta_intrinsic"] * 10 ** (0.4 * 0.3 * (k_hb - k_ha)), rel=1e-6)
    assert math.log10(fd["oiii5008"] / fd["hb"]) == pytest.approx(0.8, abs=1e-9)
    assert math.log10(fd["nii6585"] / fd["ha"]) == pytest.approx(-2.0, abs=1e-9)
    assert fd["ha"] == pytest.approx(500.0)
    # Milky Way extinction (the configured curve, CCM89 by default) at the observed
    # wavelengths on top of the internal dust
    from dust_extinction.parameter_averages import CCM89, F99

    from xmpspec.simulate.hii import mw_k
    z = 0.05
    obs = np.array([CAT["hb"].wave, CAT["ha"].wave]) * (1 + z)
    for curve, model in (("CCM89", CCM89), ("F99", F99)):
        cfg_c = cfg.updated({"dust.mw_curve": curve})
        fm, pm = hii_line_fluxes(500.0, -2.0, o3=0.8, ebv=0.3, ebv_mw=0.1, z=z, config=cfg_c)
        km_hb, km_ha = mw_k(obs, config=cfg_c)
        expect = 3.1 * np.asarray(model(Rv=3.1)(obs * u.AA))
        assert [km_hb, km_ha] == pytest.approx(expect, rel=1e-9)
        assert 1.0 < km_hb - km_ha < 1.3
        assert fm["ha"] / fm["hb"] == pytest.approx(
            pm["halpha_hbeta_intrinsic"]
            * 10 ** (0.4 * (0.3 * (k_hb - k_ha) + 0.1 * (km_hb - km_ha))), rel=1e-6)


def test_auroral_line_rises_with_te_and_density_doublets():
    cfg = default_config()
    cold, _ = hii_line_fluxes(300.0, -1.8, o3=0.8, te=10000.0, config=cfg)
    hot, _ = hii_line_fluxes(300.0, -1.8, o3=0.8, te=20000.0, config=cfg)
    r_cold = cold["oiii4364"] / (cold["oiii4960"] + cold["oiii5008"])
    r_hot = hot["oiii4364"] / (hot["oiii4960"] + hot["oiii5008"])
    assert 0.002 < r_cold < 0.006 and 0.012 < r_hot < 0.03   # Osterbrock & Ferland fig. 5.1
    low, _ = hii_line_fluxes(300.0, -1.8, ne=10.0, config=cfg)
    high, _ = hii_line_fluxes(300.0, -1.8, ne=1e4, config=cfg)
    assert low["sii6718"] / low["sii6733"] > 1.35 > 0.6 > high["sii6718"] / high["sii6733"]
    assert low["oii3727"] / low["oii3730"] < 0.8 < 1.6 < high["oii3727"] / high["oii3730"]


# ------------------------------------------------------------------------ noise
def test_pull_distribution_has_unit_width():
    pulls = []
    for seed in range(12):
        spec, truth, model = simulate_spectrum("goodman_400", 0.03, n2=-1.6, halpha_flux=800.0,
                                               exptime=900.0, sky_lines=True, cosmic_rays=3,
                                               seed=seed, return_model=True)
        good = ~spec.mask
        pulls.append(((spec.flux - model) / spec.error).value[good])
    pulls = np.concatenate(pulls)
    assert pulls.size > 20000
    assert np.std(pulls) == pytest.approx(1.0, abs=0.03)
    assert abs(np.mean(pulls)) < 0.03


def test_faint_low_count_regime_pulls():
    # short exposure, faint source: few counts per pixel, read noise matters
    pulls = []
    for seed in range(10):
        spec, _, model = simulate_spectrum("int_ids_r632v", 0.02, halpha_flux=40.0, exptime=60.0,
                                           sky_level=0.1, sky_lines=False, seed=seed,
                                           return_model=True)
        pulls.append(((spec.flux - model) / spec.error).value)
    pulls = np.concatenate(pulls)
    assert np.std(pulls) == pytest.approx(1.0, abs=0.03)


def test_integrated_noisy_line_flux_within_noise():
    spec, truth, model = simulate_spectrum("sdss", 0.04, n2=-1.3, halpha_flux=2000.0,
                                           sky_lines=False, seed=11, return_model=True)
    lines = emission_line_model(spec.wavelength, 0.04, {k: truth[f"f_{k}"] for k in DEV_KEYS},
                                truth["sigma_kms"], "sdss")
    cont = (model - lines).value
    wave = spec.wavelength.value
    width = np.diff(pixel_edges(wave))
    c = CAT["ha"].wave * 1.04
    win = np.abs(wave - c) < 8.0   # Halpha only ([NII] is 20 A away)
    flux = np.sum((spec.flux.value[win] - cont[win]) * width[win])
    err = math.sqrt(np.sum((spec.error.value[win] * width[win]) ** 2))
    assert truth["snr_ha"] > 50
    assert abs(flux - truth["f_ha"]) < 3.5 * err
    assert err < 0.05 * truth["f_ha"]


def test_sky_lines_add_noise_not_signal():
    kw = dict(n2=-2.0, halpha_flux=300.0, exptime=1200.0, return_model=True)
    a, _, m = simulate_spectrum("sdss", 0.05, sky_lines=True, seed=5, **kw)
    b, _, _ = simulate_spectrum("sdss", 0.05, sky_lines=False, seed=5, **kw)
    wave = a.wavelength.value
    i5577 = int(np.argmin(np.abs(wave - 5578.9)))
    i_oh = int(np.argmin(np.abs(wave - 8829.5)))
    assert a.error.value[i5577] > 3 * b.error.value[i5577]
    assert a.error.value[i_oh] > 3 * b.error.value[i_oh]
    # residuals around sky lines are consistent with the (larger) errors
    near = np.abs(wave - 5578.9) < 5
    assert np.all(np.abs((a.flux - m).value[near] / a.error.value[near]) < 6)


def test_cosmic_rays_masked_or_kept():
    kw = dict(halpha_flux=300.0, sky_lines=False, cosmic_rays=6, return_model=True)
    s, t, m = simulate_spectrum("goodman_400", 0.03, mask_cosmics=True, seed=9, **kw)
    assert 6 <= s.mask.sum() <= 12
    assert t["n_cosmic"] == 6 and t["cosmics_masked"]
    k, _, m2 = simulate_spectrum("goodman_400", 0.03, mask_cosmics=False, seed=9, **kw)
    assert not k.mask.any()
    pull = ((k.flux - m2) / k.error).value
    assert np.sum(pull > 8) >= 3   # hits left in the data are strong outliers


# ----------------------------------------------------------------- determinism
def test_seed_determinism():
    a, ta = simulate_spectrum("mage", 0.02, seed=42, cosmic_rays=2)
    b, tb = simulate_spectrum("mage", 0.02, seed=42, cosmic_rays=2)
    c, _ = simulate_spectrum("mage", 0.02, seed=43, cosmic_rays=2)
    assert np.array_equal(a.flux.value, b.flux.value) and np.array_equal(a.mask, b.mask)
    assert ta == tb
    assert not np.array_equal(a.flux.value, c.flux.value)


def test_batch_objects_independent_of_chunking():
    whole = simulate_batch(6, "sdss", seed=7)
    part = list(iter_batch(2, "sdss", seed=7, start=3))
    for (s1, t1), (s2, t2) in zip(whole[3:5], part, strict=True):
        assert t1 == t2
        assert np.array_equal(s1.flux.value, s2.flux.value)
    other = simulate_batch(6, "sdss", seed=8)
    assert other[0][1]["z"] != whole[0][1]["z"]


# ----------------------------------------------------------------------- batch
def test_batch_distribution_and_truth_table():
    pairs = simulate_batch(150, "sdss", seed=1)
    table = truth_table([t for _, t in pairs])
    assert len(table) == 150
    for col in ("name", "z", "ra", "dec", "instrument", "f_ha", "n2", "o3", "o3n2"):
        assert col in table.colnames
    for key in DEV_KEYS:
        assert f"f_{key}" in table.colnames and table[f"f_{key}"].unit == LINE_FLUX_UNIT
    n2 = np.asarray(table["n2"])
    assert n2.min() >= -2.6 and n2.max() <= -0.5 and np.ptp(n2) > 1.5
    states = list(table["n2_state_expected"])
    # weak/undetected [NII] as well as clear detections
    assert 0.1 * 150 < states.count("upper_limit") < 0.6 * 150
    assert states.count("detected") > 0.4 * 150
    z = np.asarray(table["z"])
    assert z.min() >= 0.005 and z.max() <= 0.08
    assert len(set(table["name"])) == 150
    # spectra carry their object's metadata
    spec, truth = pairs[0]
    assert spec.name == truth["name"] and spec.redshift == truth["z"]
    assert spec.meta["setup"] == "sdss"


def test_batch_mixed_setups_and_ranges():
    pairs = simulate_batch(20, ["int_ids_r632v", "goodman_400"], seed=2,
                           n2_range=(-2.0, -1.9), z_range=(0.01, 0.02))
    setups = {t["setup"] for _, t in pairs}
    assert setups == {"int_ids_r632v", "goodman_400"}
    assert all(-2.0 <= t["n2"] <= -1.9 and 0.01 <= t["z"] <= 0.02 for _, t in pairs)
    with pytest.raises(InputError, match="unknown batch distribution"):
        simulate_batch(1, "sdss", seed=1, n3_range=(0, 1))


def test_integrated_flux_pulls_over_many_realisations():
    # direct sums over a window around Halpha: pull distribution of the flux
    pulls = []
    z = 0.03
    c = CAT["ha"].wave * (1 + z)
    n = 1000   # std of the pull std ~ 1/sqrt(2n) = 0.022
    for seed in range(n):
        spec, truth, model = simulate_spectrum("goodman_400", z, {"ha": 60.0}, ew_ha=200.0,
                                               halpha_flux=60.0, exptime=600.0, seed=seed,
                                               wave_range=(c - 80.0, c + 80.0),
                                               return_model=True)
        wave = spec.wavelength.value
        width = np.diff(pixel_edges(wave))
        lines = emission_line_model(wave, z, {"ha": 60.0}, truth["sigma_kms"], "goodman_400")
        cont = (model - lines).value
        win = np.abs(wave - c) < 15.0
        flux = np.sum((spec.flux.value[win] - cont[win]) * width[win])
        err = math.sqrt(np.sum((spec.error.value[win] * width[win]) ** 2))
        pulls.append((flux - 60.0 * 0.9995) / err)
    pulls = np.asarray(pulls)
    assert 3 < 60.0 / err < 30   # a moderate-S/N line
    assert abs(np.mean(pulls)) < 4.0 / math.sqrt(n)
    assert np.std(pulls) == pytest.approx(1.0, abs=4.0 / math.sqrt(2 * n))


def test_expected_snr_matches_matched_filter_scatter():
    # the truth's snr_<key> is the S/N of the best (known-profile) flux estimator
    z, flux = 0.03, 25.0
    c = CAT["nii6585"].wave * (1 + z)
    est, snr = [], []
    for seed in range(400):
        spec, truth, model = simulate_spectrum("int_ids_r632v", z, {"ha": 400.0, "nii6585": flux},
                                               halpha_flux=400.0, exptime=900.0, seed=seed,
                                               wave_range=(c - 60.0, c + 60.0), return_model=True)
        wave = spec.wavelength.value
        prof = emission_line_model(wave, z, {"nii6585": 1.0}, truth["sigma_kms"],
                                   "int_ids_r632v").value
        other = model.value - flux * prof
        w = prof / spec.error.value ** 2
        est.append(np.sum(w * (spec.flux.value - other)) / np.sum(w * prof))
        snr.append(truth["snr_nii6585"])
    est = np.asarray(est)
    assert np.ptp(snr) < 0.05 * np.mean(snr)
    assert np.mean(est) == pytest.approx(flux, abs=4 * np.std(est) / math.sqrt(est.size))
    assert flux / np.std(est) == pytest.approx(np.mean(snr), rel=0.12)


def test_balmer_absorption_has_the_requested_equivalent_width():
    from xmpspec.simulate import continuum_model
    st = get_setup("goodman_400")
    wave = st.wavelength_grid()
    width = np.diff(pixel_edges(wave))
    z, ew = 0.02, 3.0
    plain = continuum_model(wave, z, 2.0, balmer_abs_ew=0.0).value
    absorbed = continuum_model(wave, z, 2.0, balmer_abs_ew=ew, balmer_abs_sigma=10.0,
                               balmer_abs_waves=(CAT["hb"].wave,)).value
    near = np.abs(wave - CAT["hb"].wave * (1 + z)) < 100
    assert np.sum((1 - absorbed / plain)[near] * width[near]) == pytest.approx(ew * (1 + z),
                                                                               rel=0.01)
    assert np.allclose(absorbed[~near], plain[~near])
    # the continuum falls to the red (beta < 0) and drops blueward of the Balmer limit
    assert plain[0] > plain[-1]
    rest = wave / (1 + z)
    assert np.all(np.diff(plain[rest > 3700]) < 0)
    power = 2.0 * (rest / CAT["ha"].wave) ** -1.5
    assert np.allclose((plain / power)[rest < 3500], 0.9, rtol=1e-3)
    assert np.allclose((plain / power)[rest > 3800], 1.0, rtol=1e-3)


def test_batch_is_fast():
    import time
    simulate_batch(2, "sdss", seed=0)        # PyNeb grid and caches warm
    t0 = time.process_time()
    pairs = simulate_batch(200, "sdss", seed=0)
    cpu = time.process_time() - t0
    assert len(pairs) == 200
    assert cpu < 5.0   # ~1 s measured (5 ms per SDSS spectrum): benchmarks simulate 10^4
