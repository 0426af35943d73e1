"""The N2 gate's bias (issue 12 item 5): packaged table, per-object column, injection check."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from xmpspec.config import load_config
from xmpspec.lines.gatebias import gate_bias_table, n2_gate_bias
from xmpspec.lines.measure import measure_spectrum
from xmpspec.simulate import simulate_spectrum

CFG = load_config(search_cwd=False)
SETUPS = ("sdss", "int_ids_r632v", "goodman_400", "mage")


def test_packaged_table_covers_every_setup_and_shows_the_bias():
    t = gate_bias_table()
    assert set(SETUPS) | {"generic"} <= set(t)
    for setup, (sig, off) in t.items():
        assert np.all(np.diff(sig) > 0) and sig[0] < 2.5 and sig[-1] > 20, setup
        assert abs(off[-1]) < 0.03, setup            # no bias far above the gate
    sig, off = t["generic"]
    assert off[0] > 0.05                              # just above the gate: biased high
    assert off[0] > off[-1] + 0.05


def test_interpolation_and_fallbacks():
    sig, off = gate_bias_table()["generic"]
    assert n2_gate_bias(sig[0], "generic") == pytest.approx(off[0])
    mid = float(np.sqrt(sig[0] * sig[1]))            # halfway in log significance
    assert n2_gate_bias(mid, "no_such_setup") == pytest.approx(0.5 * (off[0] + off[1]))
    assert n2_gate_bias(1000.0, "") == pytest.approx(off[-1])
    assert n2_gate_bias(2.3, "sdss", "upper_limit") is None
    assert n2_gate_bias(None, "sdss") is None and n2_gate_bias(float("nan"), "sdss") is None


def test_measure_writes_the_column():
    spec, truth = simulate_spectrum("goodman_400", z=0.02, n2=-1.5, halpha_flux=400.0, seed=3)
    m = measure_spectrum(spec, config=CFG)
    row = m.row
    assert "n2_gate_bias" in row
    if row["n2_state"] == "detected":
        assert row["n2_gate_bias"] == pytest.approx(
            n2_gate_bias(row["significance"], "goodman_400"))
    else:
        assert row["n2_gate_bias"] is None
    t = m.object_table()
    assert "n2_gate_bias" in t.colnames and t["n2_gate_bias"].dtype.kind == "f"


@pytest.mark.slow
def test_injection_reproduces_the_packaged_bias():
    """Fresh injections (other seed) near the gate: detections sit high by about the table's bias."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_gate import one
    rng = np.random.default_rng(2024)
    rows = []
    for setup in SETUPS:
        for _ in range(150):
            rows.append(one(setup, rng, CFG))
    det = [r for r in rows if r["state"] == "detected" and 2.0 <= r["sig"] < 3.0]
    assert len(det) > 60
    off = np.median([r["n2"] - r["n2_true"] for r in det])
    pred = np.median([n2_gate_bias(r["sig"], r["setup"]) for r in det])
    assert off > 0.03 and abs(off - pred) < 0.06
    # far above the gate: no bias, and the column says so
    hi = [r for r in rows if r["state"] == "detected" and r["sig"] >= 10]
    assert abs(np.median([r["n2"] - r["n2_true"] for r in hi])) < 0.02
    # limits are the unbiased use of the rest: >= 95% at or above the truth
    lim = [r for r in rows if r["state"] == "upper_limit" and r["n2"] is not None]
    assert np.mean([r["n2"] >= r["n2_true"] for r in lim]) >= 0.95
