"""One documented rule for detection, label and value (issue 12 items 1 and 4; docs/n2.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xmpspec.config import load_config
from xmpspec.errors import ConfigError
from xmpspec.lines import ratios
from xmpspec.lines.measure import measure_spectrum, objects_table
from xmpspec.lines.noise import error_scale, line_free_mask, white_noise_factor
from xmpspec.simulate.spectra import iter_batch, simulate_spectrum

CFG = load_config(search_cwd=False)
GATE = float(CFG["measure"]["significance_gate"])
GOOD = float(CFG["measure"]["good_significance"])


# ----------------------------------------------------------------------------- ratio rules
def test_given_state_decides_over_snr():
    """[NII]6585 detected by the gate keeps its detection at a reported S/N below 2."""
    v, e, st, _ = ratios.ratio_one(1.0, 0.8, 100.0, 2.0, gate=2.0, k=2.0, num_state="detected",
                                   den_state="detected", lower_limits=False)
    assert st == "detected" and v == pytest.approx(-2.0)
    assert e == pytest.approx(math.hypot(0.8, 0.02) / math.log(10))
    # the same fluxes without a state: decided by the S/N gate -> 2-sigma limit
    v, e, st, _ = ratios.ratio_one(1.0, 0.8, 100.0, 2.0, gate=2.0, k=2.0, lower_limits=False)
    assert st == "upper_limit" and v == pytest.approx(math.log10(2.6 / 100)) and math.isnan(e)


@pytest.mark.parametrize("num_state,den_state,lower,expected", [
    ("upper_limit", "detected", False, "upper_limit"),
    ("detected", "upper_limit", True, "lower_limit"),     # O3 with Hbeta undetected
    ("detected", "upper_limit", False, "failed"),         # N2 needs Halpha
    ("upper_limit", "upper_limit", True, "failed"),
    ("not_covered", "detected", True, "not_covered"),
    ("detected", "failed", True, "failed"),
])
def test_ratio_state_table(num_state, den_state, lower, expected):
    _, _, st, _ = ratios.ratio_one(5.0, 1.0, 50.0, 30.0, gate=2.0, k=2.0, num_state=num_state,
                                   den_state=den_state, lower_limits=lower)
    assert st == expected


def test_measured_limit_is_used():
    v, _, st, _ = ratios.ratio_one(0.5, 1.0, 100.0, 1.0, gate=2.0, k=2.0,
                                   num_state="upper_limit", num_limit=3.0)
    assert st == "upper_limit" and v == pytest.approx(math.log10(0.03))


@pytest.mark.parametrize("o3,n2,expected", [
    ("detected", "detected", "detected"), ("detected", "upper_limit", "lower_limit"),
    ("upper_limit", "detected", "upper_limit"), ("upper_limit", "upper_limit", "failed"),
    ("not_covered", "detected", "not_covered"), ("lower_limit", "upper_limit", "lower_limit"),
])
def test_o3n2_states(o3, n2, expected):
    v, _, st, _ = ratios.difference_one(0.5, 0.05, o3, -2.0, 0.1, n2)
    assert st == expected
    if expected in ("detected", "lower_limit", "upper_limit"):
        assert v == pytest.approx(2.5)


def test_labels_follow_the_gate_significance():
    lab = ratios.snr_label([5.0, 3.0, 2.5, 2.0, 1.99, np.nan], GOOD, GATE)
    assert list(lab) == ["good", "good", "fair", "fair", "limit", ""]


# ----------------------------------------------------------------------------- measure columns
def _sample(n=24, seed=5):
    return list(iter_batch(n, ["int_ids_r632v", "goodman_400"], seed=seed,
                           n2_range=[-2.5, -1.4], halpha_flux_range=[30.0, 300.0]))


def test_objects_table_carries_gate_and_reported_snr():
    ms = [measure_spectrum(s, z=t["z"], keep_fits=False, config=CFG) for s, t in _sample()]
    t = objects_table(ms)
    for c in ("significance", "n2_label", "nii6585_snr_reported", "n2_flux_weaker_than_gate",
              "n2_p16", "n2_p50", "n2_p84", "n2_p977", "error_scale", "error_scale_applied"):
        assert c in t.colnames, c
    sig = np.ma.filled(np.asarray(t["significance"], float), np.nan)
    lab = np.asarray(t["n2_label"]).astype(str)
    st = np.asarray(t["n2_state"]).astype(str)
    det = st == "detected"
    assert det.any() and (st == "upper_limit").any()
    assert np.all(lab[sig >= GOOD] == "good") and np.all(lab[(sig >= GATE) & (sig < GOOD)] == "fair")
    assert np.all(lab[sig < GATE] == "limit")
    # detection follows the gate significance, never the reported S/N
    assert np.array_equal(det, sig >= GATE)
    snr = np.ma.filled(np.asarray(t["nii6585_snr_reported"], float), np.nan)
    rep = np.ma.filled(t["f_nii6585"].value, np.nan) / np.ma.filled(t["f_nii6585_err"].value,
                                                                    np.nan)
    assert np.allclose(snr[det], rep[det])
    weaker = np.asarray(t["n2_flux_weaker_than_gate"].filled(False), bool)
    assert np.array_equal(weaker, det & (snr < GATE))


def test_gaussian_flux_switch():
    cfg = load_config(search_cwd=False, overrides={"measure": {"n2_flux": "gaussian"}})
    pairs = _sample(12, seed=8)
    for spec, tr in pairs:
        row = measure_spectrum(spec, z=tr["z"], keep_fits=False, config=cfg).row
        if row["n2_state"] == "detected":
            assert row["n2_method"] == "gaussian"
            assert row["n2"] == pytest.approx(row["n2_gaussian"], abs=1e-12)
    bad = load_config(search_cwd=False, overrides={"measure": {"n2_flux": "lime"}})
    spec, tr = pairs[0]
    with pytest.raises(ConfigError):
        measure_spectrum(spec, z=tr["z"], keep_fits=False, config=bad)


# ----------------------------------------------------------------------------- error scale
def test_error_scale_white_noise_and_lines_masked():
    rng = np.random.default_rng(1)
    wave = np.linspace(4000.0, 7000.0, 4000)
    flux = 3.0 + 1e-3 * (wave - 4000.0) + 1.3 * rng.standard_normal(wave.size)
    flux += 400.0 * np.exp(-0.5 * ((wave - 6563.0) / 2.0) ** 2)     # a strong line
    free = line_free_mask(wave, [6563.0], lambda w: 2.0 + 0 * w)
    assert not free[np.argmin(abs(wave - 6563.0))]
    s, n = error_scale(flux, np.ones(wave.size), np.ones(wave.size, bool), free)
    assert s == pytest.approx(1.3, rel=0.05) and n > 3500
    assert 0.9 < white_noise_factor(21) < 1.0


@pytest.mark.parametrize("factor", [0.7, 1.0])
def test_error_scale_in_measure(factor, caplog):
    spec, truth = simulate_spectrum("int_ids_r632v", 0.02, n2=-1.8, halpha_flux=300.0,
                                    rng=np.random.default_rng(3), name="E")
    ref = measure_spectrum(spec, z=0.02, keep_fits=False, config=CFG).row
    small = spec.copy()
    small.error = small.error * factor
    row = measure_spectrum(small, z=0.02, keep_fits=False, config=CFG).row
    assert row["error_scale"] == pytest.approx(ref["error_scale"] / factor, rel=1e-6)
    assert ref["error_scale_applied"] is True
    assert row["error_scale_applied"] is True
    # applied: the line errors are those of the correct error spectrum
    assert row["f_ha_err"] == pytest.approx(ref["f_ha_err"], rel=1e-6)
    assert row["significance"] == pytest.approx(ref["significance"], rel=1e-6)
    warned = [r for r in caplog.records if "off the continuum scatter" in r.getMessage()]
    assert bool(warned) == (factor != 1.0)
    if factor != 1.0:
        assert "error spectrum x1.4" in row["notes"]
        off = load_config(search_cwd=False, overrides={"measure": {"apply_error_scale": False}})
        raw = measure_spectrum(small, z=0.02, keep_fits=False, config=off).row
        assert raw["error_scale_applied"] is False
        assert raw["f_ha_err"] < 0.8 * ref["f_ha_err"]


def test_error_scale_not_applied_below_the_floor():
    """A scale at or below ``error_scale_min_applied`` (0.5: errors far too large, or a
    noise-free spectrum) leaves the errors as given; lowering the floor applies it."""
    spec, _ = simulate_spectrum("goodman_400", 0.02, n2=-1.8, halpha_flux=300.0,
                                rng=np.random.default_rng(4), name="E2")
    big = spec.copy()
    big.error = big.error * 2.5
    row = measure_spectrum(big, z=0.02, keep_fits=False, config=CFG).row
    assert row["error_scale"] == pytest.approx(0.4, rel=0.1)
    assert row["error_scale_applied"] is False
    both = load_config(search_cwd=False, overrides={"measure": {"error_scale_min_applied": 0.0}})
    shrunk = measure_spectrum(big, z=0.02, keep_fits=False, config=both).row
    assert shrunk["error_scale_applied"] is True
    assert shrunk["f_ha_err"] < row["f_ha_err"]
    assert shrunk["significance"] == pytest.approx(row["significance"] / row["error_scale"],
                                                   rel=0.05)
