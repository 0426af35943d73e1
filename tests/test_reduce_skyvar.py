"""The sky model's variance in the boxcar errors (xmpspec.reduce.skyvar).

PypeIt's own sky fit (:func:`pypeit.core.skysub.global_skysub`) is run on
many noise realisations of a synthetic slit; the variance that the sky
subtraction adds to the boxcar sum (the model's variance and its covariance
with the boxcar pixels) must equal what :func:`sky_model_box_variance`
estimates from one fit (by refitting noise drawn about that fit's model). Three geometries: a short echelle-like order (no spatial
polynomial, few sky pixels) with the fit's sky pixels outside and inside the
boxcar, and a long slit with an object gap in the middle (PypeIt's 3-term
Legendre along the slit). ~40 s each on the shared machine.
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def pypeit_offline(shared_dir, tmp_path_factory):
    """PypeIt imported offline (its import needs astropy's sites list in the cache)."""
    from astropy.utils.data import conf

    from xmpspec.reduce.cache import import_reference_data
    with pytest.MonkeyPatch.context() as mp, conf.set_temp("allow_internet", False):
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        import_reference_data([shared_dir / "astropy-data"])
        from pypeit.core import skysub  # noqa: F401


@pytest.fixture()
def hook(pypeit_offline):
    from xmpspec.reduce import skyvar
    skyvar.install_pypeit_hook()
    yield skyvar
    skyvar.uninstall_pypeit_hook()


def _slit(nspec, nspat, edge, tilt):
    spat = np.arange(nspat)[None, :]
    left = np.full(nspec, edge - 0.5)
    right = np.full(nspec, nspat - edge - 0.5)
    thismask = np.broadcast_to((spat > left[:, None]) & (spat < right[:, None]),
                               (nspec, nspat)).copy()
    yy = np.arange(nspec)[:, None] + tilt * (spat - nspat / 2)
    return spat, left, right, thismask, yy


@pytest.mark.slow
@pytest.mark.parametrize("nspec,nspat,edge,gap,radius,nrep", [
    (300, 24, 2, 6.0, 4.0, 40),     # echelle-like order: few sky pixels, outside the boxcar
    (300, 24, 2, 2.5, 4.0, 40),     # some of the fit's sky pixels inside the boxcar (MagE)
    (300, 120, 6, 12.0, 9.0, 30),   # long slit, object gap in the middle (3-term Legendre)
])
def test_box_variance_matches_monte_carlo(hook, nspec, nspat, edge, gap, radius, nrep):
    from pypeit.core import skysub
    skyvar = hook
    rng = np.random.default_rng(3)
    spat, left, right, thismask, yy = _slit(nspec, nspat, edge, 0.04)
    tilts = yy / (nspec - 1)
    sky0 = 40.0 + 60.0 * np.exp(-0.5 * ((yy - nspec / 2) / 1.5) ** 2)   # continuum + a sky line
    sig = np.sqrt(sky0 + 10.0)
    ivar = 1.0 / sig ** 2
    centre = nspat / 2 - 0.5
    inmask = thismask & (np.abs(spat - centre) > gap)
    rows, cols, w = skyvar.boxcar_weights(np.full(nspec, centre), radius, nspat)
    keep = thismask[rows, cols]
    rows, cols, w = rows[keep], cols[keep], w[keep]
    sums, pred = [], None
    for k in range(nrep):
        img = sky0 + sig * rng.normal(size=sky0.shape)
        sky = np.zeros_like(img)
        sky[thismask] = skysub.global_skysub(img, ivar, tilts, thismask, left, right,
                                             inmask=inmask, max_mask_frac=0.95)
        assert np.any(sky)
        sums.append(np.bincount(rows, weights=w * (img - sky)[rows, cols], minlength=nspec))
        if k == 0:
            # the estimate from this one fit (its inputs as the hook kept them)
            rec = skyvar._FITS[skyvar._slit_key(thismask)]
            fit_sky = skyvar.refit_function(rec, skyvar._ORIGINAL[(skysub, "global_skysub")])
            pred = skyvar.sky_model_box_variance(fit_sky, rec[0], rec[1], rec[3], rows, cols,
                                                 w, nspec)
    pix = np.bincount(rows, weights=(w * sig[rows, cols]) ** 2, minlength=nspec)
    # what the sky subtraction adds to the boxcar variance, from nrep data realisations
    emp = np.var(np.array(sums), axis=0, ddof=1) - pix
    inner = slice(30, nspec - 30)
    e, p = np.mean(emp[inner]), np.mean(pred[inner])
    print(f"sky term / pixel variance of the boxcar: Monte Carlo ({nrep} data realisations) "
          f"{e / np.mean(pix[inner]):+.3f}, estimate from one fit {p / np.mean(pix[inner]):+.3f}")
    assert e > 0.3 * np.mean(pix[inner])      # not negligible in these geometries
    # the estimate: 6 realisations smoothed over 41 rows; the Monte Carlo: mean over 240 rows
    # of nrep-1 dof; both of a total that includes the pixel term
    assert abs(p - e) <= 0.1 * np.mean(pix[inner]) + 0.2 * abs(e)


def test_boxcar_weights_sum_to_the_width():
    from xmpspec.reduce.skyvar import boxcar_weights
    trace = np.array([10.0, 10.3, 10.5, 10.77])
    rows, cols, w = boxcar_weights(trace, 2.6, 30)
    np.testing.assert_allclose(np.bincount(rows, weights=w), 5.2)
    # a trace near the detector edge loses the pixels beyond it
    rows, cols, w = boxcar_weights(np.array([0.2]), 2.0, 30)
    assert cols.min() == 0 and w.sum() == pytest.approx(2.7)
