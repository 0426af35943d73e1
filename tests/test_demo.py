"""``xmpspec demo``: a simulated follow-up night with its truth, targets and CNN catalogue."""

from __future__ import annotations

import numpy as np

from xmpspec.cli import main
from xmpspec.io import read_spectrum
from xmpspec.simulate.demo import simulate_demo_night
from xmpspec.tableio import read_table


def test_demo_command_writes_the_night(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", str(out), "--seed", "2024"]) == 0
    printed = capsys.readouterr().out
    for word in ("spectra", "targets.ecsv", "selection.ecsv", "truth.ecsv"):
        assert word in printed

    truth = read_table(out / "truth.ecsv")
    targets = read_table(out / "targets.ecsv")
    selection = read_table(out / "selection.ecsv")
    assert len(truth) == 8 and len(targets) == 8 and len(selection) == 24
    for col in ("name", "ra", "dec", "n2_cnn", "n2_cnn_err", "p_mp", "p_xmp"):
        assert col in selection.colnames
    for col in ("name", "z", "ra", "dec", "ebv_mw", "n2_cnn", "n2_cnn_err"):
        assert col in targets.colnames
    log = read_table(out / "observing_log.ecsv")
    assert list(log["name"]) == list(truth["name"])
    for col in ("instrument", "obsdate", "exptime_s", "nexp"):
        assert col in log.colnames
    assert set(log["exptime_s"]) == {1200.0, 800.0} and set(log["nexp"]) == {3}
    # observed targets passed the selection of science.md
    obs = selection[selection["observed"]]
    assert set(obs["name"]) == set(targets["name"])
    assert np.all(obs["p_mp"] > 0.99) and np.all(obs["p_xmp"] > 0.99)
    assert np.all(obs["n2_cnn"] < -1.8)
    # two set-ups, a mix of expected [NII] detections and upper limits
    assert set(truth["setup"]) == {"int_ids_r632v", "goodman_400"}
    states = set(truth["n2_state_expected"])
    assert {"detected", "upper_limit"} <= states
    # true N2 scatters around the CNN prediction
    d = np.asarray(truth["n2"]) - np.asarray(truth["n2_cnn"])
    assert 0.02 < np.std(d) < 0.6
    for row in truth:
        spec = read_spectrum(out / row["file"])
        assert spec.name == row["name"]
        assert spec.mask.any()   # cosmic rays masked
        assert spec.meta["instrument"] == row["instrument"]
        assert spec.meta["date_obs"] == row["date_obs"]


def test_demo_night_is_deterministic(tmp_path):
    a = simulate_demo_night(tmp_path / "a", seed=5, n_targets=3, setups=("goodman_400",),
                            fmt="ecsv")
    b = simulate_demo_night(tmp_path / "b", seed=5, n_targets=3, setups=("goodman_400",),
                            fmt="ecsv")
    assert list(a.truth_table["name"]) == list(b.truth_table["name"])
    sa = read_spectrum(a.spectra[0])
    sb = read_spectrum(b.spectra[0])
    assert np.array_equal(sa.flux.value, sb.flux.value)
    c = simulate_demo_night(tmp_path / "c", seed=6, n_targets=3, setups=("goodman_400",),
                            fmt="ecsv")
    assert list(c.truth_table["name"]) != list(a.truth_table["name"])
