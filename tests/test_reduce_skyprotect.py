"""Sky protection of bright extended emission lines (issue 6 item 6).

A short long-slit frame (MagE-like, 33 pixels) with a night sky and a galaxy
whose Halpha emission extends beyond the object mask. The sky model is
estimated, as PypeIt's global sky does, from the pixels outside the object
mask at each wavelength (outlier-clipped mean; no spatial structure): the line's
wings enter that estimate, so the boxcar extraction loses line flux. With the
protection the sky inside the line window is the neighbouring background and
the flux is kept.

Note: in the simulated Goodman night (long slit, compact galaxy) PypeIt's
boxcar extraction with its global sky recovered Halpha within 1% with and
without protection; the failure shows up when the emission fills a good part
of the slit, as here.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.stats import sigma_clipped_stats

from xmpspec.reduce.skyprotect import protect_sky_model
from xmpspec.simulate.night import exponential_profile

LINE = 6634.0
WINDOW = (6615.0, 6653.0)


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(3)
    nspec, nspat = 400, 33
    wave = 6500.0 + 1.0 * np.arange(nspec)
    waveimg = np.repeat(wave[:, None], nspat, axis=1)
    y = np.arange(nspat, dtype=float)
    centre = 16.0
    sky1d = 300 + 3000 * np.exp(-0.5 * ((wave - 6604.0) / 1.2) ** 2)
    cont_prof = exponential_profile(y, centre, 1.5, 3.0)      # compact continuum
    line_prof = exponential_profile(y, centre, 5.0, 3.0)      # extended line emission
    line_total = 6.0e4
    line1d = line_total * np.exp(-0.5 * ((wave - LINE) / 1.5) ** 2) / (np.sqrt(2 * np.pi) * 1.5)
    model = sky1d[:, None] + 200 * cont_prof[None, :] + line1d[:, None] * line_prof[None, :]
    img = rng.poisson(model).astype(float) + rng.normal(0, 3.5, model.shape)
    return dict(img=img, waveimg=waveimg, wave=wave, line_prof=line_prof, centre=centre,
                line_total=line_total, sky1d=sky1d, nspat=nspat)


def _sky_model(fr, mask_halfwidth=5):
    """Sky per wavelength from the pixels outside the object mask (3-sigma clipped mean)."""
    c = int(fr["centre"])
    sky_cols = np.r_[0:c - mask_halfwidth, c + mask_halfwidth + 1:fr["nspat"]]
    mean, _, _ = sigma_clipped_stats(fr["img"][:, sky_cols], axis=1, sigma=3.0)
    return np.repeat(np.asarray(mean)[:, None], fr["nspat"], axis=1)


def _boxcar_line_flux(fr, sky, radius=5):
    c = int(fr["centre"])
    resid = (fr["img"] - sky)[:, c - radius:c + radius + 1].sum(axis=1)
    w = fr["wave"]
    line = np.abs(w - LINE) < 10
    cont = (np.abs(w - LINE) > 15) & (np.abs(w - LINE) < 40) & (np.abs(w - 6604.0) > 6)
    return float((resid[line] - np.median(resid[cont])).sum())


def test_extended_line_keeps_its_flux_only_with_protection(frame):
    sky = _sky_model(frame)
    c = int(frame["centre"])
    truth_in_box = frame["line_total"] * frame["line_prof"][c - 5:c + 6].sum()
    unprotected = _boxcar_line_flux(frame, sky)
    protected_sky, n = protect_sky_model(sky, frame["waveimg"], [WINDOW])
    protected = _boxcar_line_flux(frame, protected_sky)
    assert n == (int(WINDOW[1] - WINDOW[0]) + 1) * frame["nspat"]
    # the sky estimate absorbs the extended line's wings: flux lost ...
    assert unprotected < 0.85 * truth_in_box
    # ... and kept with the protection
    assert protected == pytest.approx(truth_in_box, rel=0.04)


def test_protection_is_local_and_flat(frame):
    sky = _sky_model(frame)
    prot, _ = protect_sky_model(sky, frame["waveimg"], [WINDOW])
    w = frame["wave"]
    outside = (w < WINDOW[0] - 1) | (w > WINDOW[1] + 1)
    np.testing.assert_array_equal(prot[outside], sky[outside])
    inside = (w > WINDOW[0]) & (w < WINDOW[1])
    # inside the window: the neighbouring background (no line bump), close to the true sky
    true_sky = frame["sky1d"][inside]
    assert np.all(np.abs(prot[inside, 3] - true_sky) < 0.05 * true_sky + 15)
    assert np.max(sky[inside, 3] - frame["sky1d"][inside]) > 100   # the bump that was removed
    # the sky line 30 A away is still subtracted
    sl = np.abs(w - 6604.0) < 2
    np.testing.assert_array_equal(prot[sl], sky[sl])


def test_protect_handles_axis_and_empty_windows():
    sky = np.arange(50.0)[:, None] * np.ones((1, 4))
    wav = 5000.0 + np.arange(50.0)[:, None] * np.ones((1, 4))
    out, n = protect_sky_model(sky, wav, [])
    assert n == 0 and np.array_equal(out, sky)
    out_t, n_t = protect_sky_model(sky.T, wav.T, [(5010, 5020)], spec_axis=1)
    out_0, n_0 = protect_sky_model(sky, wav, [(5010, 5020)])
    assert n_t == n_0 > 0
    np.testing.assert_allclose(out_t.T, out_0)
    # a linear sky is reproduced by the linear interpolation across the window
    np.testing.assert_allclose(out_0, sky, atol=1e-9)


def test_hook_wraps_pypeit_extraction(shared_dir, tmp_path, monkeypatch):
    """The hook replaces Extract.extract while installed and restores it afterwards."""
    from astropy.utils.data import conf

    from xmpspec.reduce.cache import import_reference_data
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with conf.set_temp("allow_internet", False):
        import_reference_data([shared_dir / "astropy-data"])
        from pypeit import extraction

        from xmpspec.reduce.skyprotect import install_pypeit_hook, uninstall_pypeit_hook
        orig = extraction.Extract.extract
        install_pypeit_hook([(6600.0, 6620.0)])
        try:
            assert extraction.Extract.extract is not orig
        finally:
            uninstall_pypeit_hook()
        assert extraction.Extract.extract is orig
