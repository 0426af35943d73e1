"""Line-fitting core: model derivatives, fast core vs lmfit, integrated fluxes, redshift."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from xmpspec.lines.fitcore import fit_free, fit_linear
from xmpspec.lines.integrated import integrate_halpha_nii
from xmpspec.lines.model import GroupModel, pixel_edges
from xmpspec.lines.redshift import find_redshift

C = 299792.458
REST_HA = np.array([6549.86, 6564.61, 6585.27])
# free fluxes [Halpha, NII6585]; NII6550 = NII6585 / 2.96
TIE_HA = np.array([[0.0, 1 / 2.96], [1.0, 0.0], [0.0, 1.0]])


def gauss_pix(wave, flux, mu, sigma):
    """Pixel-integrated Gaussian written independently of the package."""
    e = pixel_edges(wave)
    return flux * (ndtr((e[1:] - mu) / sigma) - ndtr((e[:-1] - mu) / sigma)) / np.diff(e)


def halpha_spectrum(z=0.02, f_ha=100.0, f_n2=5.0, sv=40.0, sig_inst=1.2, cont=(2.0, 0.3),
                    noise=0.2, seed=0, step=0.8):
    wave = np.arange(6600.0, 6760.0, step)
    x = (wave - wave.mean()) / (np.ptp(wave) / 2)
    f = cont[0] + cont[1] * x
    for rest, fl in zip(REST_HA, (f_n2 / 2.96, f_ha, f_n2), strict=True):
        mu = rest * (1 + z)
        f = f + gauss_pix(wave, fl, mu, np.hypot(sig_inst, mu * sv / C))
    rng = np.random.default_rng(seed)
    err = np.full(wave.size, noise)
    return wave, f, f + rng.normal(0, noise, wave.size), err


def group(wave, flux, err, sig_inst=1.2, good=None, abs_mode="none", abs_ew=0.0):
    good = np.ones(wave.size, bool) if good is None else good
    return GroupModel(wave, flux, err, good, REST_HA, TIE_HA, 1, sig_inst, 0.0,
                      np.array([1]), abs_mode, abs_ew, 1000.0)


@pytest.mark.parametrize("abs_mode", ["none", "fit", "fixed"])
def test_jacobian_matches_finite_differences(abs_mode):
    wave, _, f, err = halpha_spectrum()
    m = group(wave, f, err, abs_mode=abs_mode, abs_ew=3.0)
    theta = np.array([100.0, 5.0, 2.0, 0.3] + ([-10.0] if abs_mode == "fit" else []))
    for z, sv in ((0.02, 40.0), (0.0203, 90.0)):
        B, dBz, dBt = m.design(z, sv, derivs=True)
        h = 1e-7
        num_z = (m.design(z + h, sv) - m.design(z - h, sv)) / (2 * h)
        t = sv * sv
        num_t = (m.design(z, np.sqrt(t + 1.0)) - m.design(z, np.sqrt(t - 1.0))) / 2.0
        assert np.allclose(num_z, dBz, rtol=1e-5, atol=1e-6 * np.abs(dBz).max())
        assert np.allclose(num_t, dBt, rtol=1e-4, atol=1e-6 * np.abs(dBt).max())
        mdl, jz, jt, B2 = m.model_and_jacobian(z, sv, theta)
        assert np.allclose(mdl, B @ theta)
        assert np.allclose(jz, dBz @ theta) and np.allclose(jt, dBt @ theta)
        # vectorised design (MCMC) equals the single one
        Bm = m.design_many(np.array([z]), np.array([sv]))[0]
        assert np.allclose(Bm, B)
        if abs_mode == "none":
            L = m.line_design_many(np.array([z, z]), np.array([sv, sv]))
            assert np.allclose(L[1], B[:, :2], atol=1e-12)


def test_model_flux_is_the_line_flux():
    wave, truth, _, err = halpha_spectrum(noise=1.0)
    m = group(wave, truth, err)
    prof = m.line_profiles(0.02, 40.0, full=True)
    # a unit-flux pixel-integrated profile sums to 1 over the pixel widths
    assert np.allclose((prof * np.diff(pixel_edges(wave))).sum(axis=1), 1.0, atol=1e-9)


def test_noise_free_fit_recovers_truth_exactly():
    wave, truth, _, err = halpha_spectrum()
    m = group(wave, truth, err)
    r = fit_free(m, 0.02015, 20.0)
    assert r.success, r.message
    assert abs(r.z - 0.02) < 1e-8
    assert abs(r.sigma_v - 40.0) < 1e-3
    assert np.allclose(r.theta[:2], [100.0, 5.0], rtol=1e-6)
    lin = fit_linear(m, 0.02, 40.0)
    assert np.allclose(lin.theta[:2], [100.0, 5.0], rtol=1e-9)


def test_fast_core_matches_lmfit_within_one_percent_of_error():
    from xmpspec.lines.lmfit_model import fit_group_lmfit
    for seed, sv in ((1, 45.0), (2, 80.0), (3, 60.0)):
        wave, _, f, err = halpha_spectrum(seed=seed, sv=sv, f_n2=3.0)
        m = group(wave, f, err)
        fast = fit_free(m, 0.0201, 50.0)
        slow = fit_group_lmfit(m, 0.0201, 50.0, free=True)
        assert fast.success and slow.success
        e_fast = np.sqrt(np.diag(fast.cov))
        e_slow = np.sqrt(np.diag(slow.cov))
        pf = np.concatenate(([fast.z, fast.sigma_v**2], fast.theta))
        ps = np.concatenate(([slow.z, slow.sigma_v**2], slow.theta))
        # values agree to 1% of the error, errors agree to 1%
        assert np.all(np.abs(pf - ps) < 0.01 * e_fast), (pf - ps) / e_fast
        assert np.allclose(e_fast, e_slow, rtol=0.01)
        # fixed kinematics too
        lf = fit_linear(m, 0.0201, 50.0)
        ls = fit_group_lmfit(m, 0.0201, 50.0, free=False)
        assert np.all(np.abs(lf.theta - ls.theta) < 0.01 * np.sqrt(np.diag(lf.cov)))
        assert np.allclose(np.sqrt(np.diag(lf.cov)), np.sqrt(np.diag(ls.cov)), rtol=0.01)


def test_width_never_below_instrument_and_masked_pixels_ignored():
    wave, _, f, err = halpha_spectrum(sv=0.0, seed=5)
    good = np.ones(wave.size, bool)
    good[10:20] = False
    f_bad = f.copy()
    f_bad[10:20] = 1e6          # garbage on masked pixels must not matter
    r1 = fit_free(group(wave, f, err, good=good), 0.02, 30.0)
    r2 = fit_free(group(wave, f_bad, err, good=good), 0.02, 30.0)
    assert r1.success and r2.success
    assert np.allclose(r1.theta, r2.theta)
    assert r1.sigma_v >= 0.0
    m = group(wave, f, err, good=good)
    assert np.all(m.observed_sigma(r1.z, r1.sigma_v) >= 1.2 - 1e-12)


def test_failed_fit_reports_a_reason():
    wave, _, f, err = halpha_spectrum()
    good = np.zeros(wave.size, bool)
    good[:3] = True
    r = fit_linear(group(wave, f, err, good=good), 0.02, 30.0)
    assert not r.success and "pixels" in r.message
    # a start far from any line: the free fit runs away and says so
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 1, wave.size)
    r = fit_free(group(wave, noise, np.ones(wave.size)), 0.02, 30.0, max_shift_kms=200.0,
                 max_sigma_kms=300.0)
    assert r.success or r.message


def test_integrated_fluxes_noise_free_and_error_propagation():
    z, sv, sig_inst = 0.02, 30.0, 1.0
    wave, truth, _, err = halpha_spectrum(z=z, sv=sv, sig_inst=sig_inst, f_n2=4.0, step=1.0)
    mu = {k: r * (1 + z) for k, r in zip(("nii6550", "ha", "nii6585"), REST_HA, strict=True)}
    sg = {k: np.hypot(sig_inst, m * sv / C) for k, m in mu.items()}
    good = np.ones(wave.size, bool)
    res = integrate_halpha_nii(wave, truth, err, good, truth, mu, sg, 3.5, 4)
    assert res.f_ha == pytest.approx(100.0, rel=2e-3)
    assert res.f_nii == pytest.approx(4.0, rel=1e-2)
    # Monte Carlo check of the analytic errors (fluxes are linear in the data)
    rng = np.random.default_rng(0)
    draws = np.array([[r.f_ha, r.f_nii] for r in (
        integrate_halpha_nii(wave, truth + rng.normal(0, err), err, good, truth, mu, sg, 3.5, 4)
        for _ in range(400))])
    assert np.std(draws[:, 0]) == pytest.approx(res.f_ha_err, rel=0.12)
    assert np.std(draws[:, 1]) == pytest.approx(res.f_nii_err, rel=0.12)
    cov = np.cov(draws.T)[0, 1]
    assert cov == pytest.approx(res.cov_ha_nii, abs=0.25 * res.f_ha_err * res.f_nii_err)


@pytest.mark.parametrize("z", [0.003, 0.047, 0.21])
def test_find_redshift_from_line_pattern(z):
    wave = np.arange(3600.0, 9000.0, 1.5)
    rest = {"ha": 6564.61, "nii6585": 6585.27, "oiii5008": 5008.24, "oiii4960": 4960.30,
            "hb": 4862.69, "oii3727": 3727.09, "oii3730": 3729.88, "sii6718": 6718.29,
            "sii6733": 6732.67, "hg": 4341.69, "neiii3870": 3869.86}
    fl = {"ha": 300, "nii6585": 5, "oiii5008": 500, "oiii4960": 168, "hb": 100,
          "oii3727": 60, "oii3730": 80, "sii6718": 10, "sii6733": 8, "hg": 47}
    f = np.full(wave.size, 1.0)
    for k, v in fl.items():
        f += gauss_pix(wave, v, rest[k] * (1 + z), 2.0)
    rng = np.random.default_rng(1)
    err = np.full(wave.size, 0.5)
    zf, step = find_redshift(wave, f + rng.normal(0, 0.5, wave.size), err,
                             np.ones(wave.size, bool), rest, lambda w: 4.7, 0.0, 0.6)
    assert abs(zf - z) < 3 * step


def test_find_redshift_single_bright_line_pair_and_failure():
    from xmpspec.errors import FitError
    wave = np.arange(5000.0, 7000.0, 1.0)
    rest = {"ha": 6564.61, "oiii5008": 5008.24, "oiii4960": 4960.30, "hb": 4862.69}
    z = 0.1
    f = np.ones(wave.size)
    # only the [OIII] doublet in range: it must not be taken for Halpha
    for k, v in (("oiii5008", 300.0), ("oiii4960", 100.0)):
        f += gauss_pix(wave, v, rest[k] * (1 + z), 1.5)
    err = np.full(wave.size, 0.3)
    zf, step = find_redshift(wave, f, err, np.ones(wave.size, bool), rest, lambda w: 3.5)
    assert abs(zf - z) < 3 * step
    with pytest.raises(FitError, match="no emission line"):
        find_redshift(wave, np.ones(wave.size), err, np.ones(wave.size, bool), rest,
                      lambda w: 3.5)
