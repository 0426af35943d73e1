"""Continuum fits of the integrated fluxes: normal equations equal numpy's SVD solution."""

import numpy as np

from xmpspec.lines.integrated import _median, _weighted_polyfit


def test_well_conditioned_matches_lstsq_and_pinv():
    rng = np.random.default_rng(3)
    x = np.linspace(-1, 1, 80)
    A = np.vander(x, 5, increasing=True) / rng.uniform(0.5, 2.0, x.size)[:, None]
    b = rng.normal(size=x.size)
    np.testing.assert_allclose(_weighted_polyfit(A, b), np.linalg.lstsq(A, b, rcond=None)[0],
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_weighted_polyfit(A), np.linalg.pinv(A), rtol=1e-10, atol=1e-12)


def test_ill_conditioned_and_rank_deficient_use_the_svd():
    x = np.linspace(0.999, 1.0, 40)                     # quartic on a tiny interval
    A = np.vander(x, 5, increasing=True)
    b = np.cos(x)
    np.testing.assert_array_equal(_weighted_polyfit(A, b), np.linalg.lstsq(A, b, rcond=None)[0])
    A2 = np.column_stack([np.ones(10), np.ones(10)])    # rank 1
    np.testing.assert_array_equal(_weighted_polyfit(A2), np.linalg.pinv(A2))


def test_median_equals_numpy():
    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 10, 11, 100):
        a = rng.normal(size=n)
        assert _median(a) == np.median(a)
