"""Integrated [NII]6585 at low significance: unbiased, and better than the literal step 4.

xmpspec.lines.integrated deviates from science.md step 4 read literally (a
quartic fitted between Halpha and [NII]6585 and beyond [NII]6585): the
continua are fitted to the data minus the fitted Gaussians and the refit
under [NII]6585 uses both sides. These tests compute both variants on the
same realisations (300 per case, [NII]6585 expected S/N 4) and on the
noise-free spectrum: the deviation is unbiased; at low resolution the literal
step is biased low (3-8% noise-free at Goodman) with twice the error. ``benchmarks/bench_nii_integrated.py``
reports the full significance range 2-10.
"""

from __future__ import annotations

import numpy as np
import pytest

from xmpspec.config import load_config
from xmpspec.lines.integrated import integrate_halpha_nii
from xmpspec.lines.measure import measure_spectrum
from xmpspec.simulate import simulate_spectrum
from xmpspec.spectrum import Spectrum

pytestmark = pytest.mark.slow
CFG = load_config(search_cwd=False)
MCFG = CFG["measure"]


def both_variants(m):
    """(reported integrated [NII]6585, its error, literal step-4 flux, its error)."""
    gf = next(g for g in m.groups if g.group == "halpha")
    model, fit, keys = gf.model, gf.fit, gf.keys
    sig = model.observed_sigma(fit.z, fit.sigma_v)
    args = (model.wave, model.flux, model.error, model.good,
            model.evaluate(fit.z, fit.sigma_v, fit.theta, full=True),
            {k: model.rest[keys.index(k)] * (1 + fit.z) for k in keys},
            {k: sig[keys.index(k)] for k in keys},
            float(MCFG["integration_halfwidth_sigma"]), int(MCFG["integrated_continuum_order"]))
    lit = integrate_halpha_nii(*args)
    r = {x["line"]: x for x in m.line_rows}["nii6585"]
    return r["flux"], r["flux_err"], r["method"], lit.f_nii, lit.f_nii_err


@pytest.mark.parametrize("setup,seed", [("goodman_400", 41), ("int_ids_r632v", 42)])
def test_integrated_nii_unbiased_at_low_significance(setup, seed):
    z = 0.02
    spec, truth, model = simulate_spectrum(setup, z=z, n2=-1.6, halpha_flux=500.0, seed=seed,
                                           return_model=True)
    wave = spec.wavelength.value
    keep = (wave > 6350 * (1 + z)) & (wave < 6850 * (1 + z))
    err = spec.error.value[keep] * truth["snr_nii6585"] / 4.0      # [NII]6585 at S/N 4
    m0 = model.to_value(spec.flux.unit)[keep]
    rng = np.random.default_rng(seed)
    true = truth["f_nii6585"]
    rep, lit, methods = [], [], []
    for _ in range(300):
        s = Spectrum(spec.wavelength[keep], (m0 + err * rng.standard_normal(err.size))
                     * spec.flux.unit, err * spec.flux.unit, redshift=z, meta={"setup": setup})
        f, e, method, fl, el = both_variants(measure_spectrum(s, config=CFG))
        methods.append(method)
        if method == "integrated":
            rep.append(((f - true) / e, e / true))
        lit.append(((fl - true) / el, fl / true, el / true))
    rep, lit = np.array(rep), np.array(lit)
    print(f"{setup}: integrated in {len(rep)}/300; pull mean {rep[:, 0].mean():+.3f} std "
          f"{rep[:, 0].std():.2f}, sigma/F {np.median(rep[:, 1]):.2f}; literal step 4: pull "
          f"mean {lit[:, 0].mean():+.3f}, median F/F_true {np.median(lit[:, 1]):.3f}, "
          f"sigma/F {np.median(lit[:, 2]):.2f}")
    assert len(rep) > 270                     # significance >= 2 nearly always at S/N 4
    # the reported integrated flux: unbiased (selection on the gate is negligible at S/N 4)
    assert abs(rep[:, 0].mean()) < 0.15 and 0.85 < rep[:, 0].std() < 1.15
    # never worse than the literal step: no larger errors
    assert np.median(rep[:, 1]) <= np.median(lit[:, 2]) * 1.05
    # noise-free: the reported flux is exact; at Goodman (lines 7.5 sigma apart) the literal
    # quartic through the Halpha wing overestimates the continuum under [NII]6585
    s = Spectrum(spec.wavelength[keep], m0 * spec.flux.unit, err * spec.flux.unit, redshift=z,
                 meta={"setup": setup})
    f, _, method, fl, _ = both_variants(measure_spectrum(s, config=CFG))
    print(f"{setup} noise-free: reported {f / true:.4f}, literal {fl / true:.4f}")
    assert method == "integrated" and abs(f / true - 1) < 1e-3
    if setup == "goodman_400":
        assert fl / true < 0.97
        assert np.median(lit[:, 2]) > 1.5 * np.median(rep[:, 1])   # and twice the error
