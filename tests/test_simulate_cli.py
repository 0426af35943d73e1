"""End-to-end tests of ``xmpspec simulate spectrum`` and ``xmpspec simulate batch``."""

from __future__ import annotations

import math

import numpy as np

from xmpspec.cli import main
from xmpspec.io import read_spectrum
from xmpspec.tableio import read_provenance, read_table


def test_simulate_spectrum_writes_readable_files(tmp_path):
    out = tmp_path / "out"
    args = ["simulate", "spectrum", "--setup", "goodman_400", "--z", "0.03", "--n2", "-1.8",
            "--ha-flux", "500", "--exptime", "2400", "--seed", "1", "--name", "G1", "-o", str(out)]
    assert main(["-q", *args]) == 0
    spec = read_spectrum(out / "G1.fits")
    truth = read_table(out / "G1_truth.ecsv")
    assert (out / "G1_truth.fits").exists()
    assert len(truth) == 1 and truth["name"][0] == "G1"
    assert math.isclose(truth["f_ha"][0], 500.0) and math.isclose(truth["n2"][0], -1.8)
    assert spec.name == "G1" and spec.redshift == 0.03
    assert spec.wavelength.value[0] == 3100.0 and spec.meta["setup"] == "goodman_400"
    prov = read_provenance(out / "G1_truth.ecsv")
    assert prov["extra"]["seed"] == 1
    # same seed, same spectrum; ECSV output reads back identically
    assert main(["-q", *args[:-2], "-o", str(tmp_path / "again"), "-f", "ecsv"]) == 0
    again = read_spectrum(tmp_path / "again" / "G1.ecsv")
    assert np.array_equal(again.flux.value, spec.flux.value)


def test_simulate_spectrum_explicit_lines(tmp_path):
    rc = main(["-q", "simulate", "spectrum", "--setup", "sdss", "--z", "0.05", "--line", "ha=800",
               "--line", "nii6585=20", "--name", "L1", "--seed", "2", "-o", str(tmp_path)])
    assert rc == 0
    truth = read_table(tmp_path / "L1_truth.ecsv")
    assert truth["f_hb"][0] == 0.0 and truth["f_ha"][0] == 800.0
    assert math.isclose(truth["n2"][0], math.log10(20 / 800))


def test_simulate_bad_input_exit_code_2(tmp_path, capsys):
    assert main(["simulate", "spectrum", "--z", "0.02", "--line", "halpha=3",
                 "-o", str(tmp_path)]) == 2
    assert "unknown line 'halpha'" in capsys.readouterr().err
    assert main(["simulate", "spectrum", "--z", "0.02", "--setup", "nope",
                 "-o", str(tmp_path)]) == 2
    assert main(["simulate", "spectrum", "--z", "0.02", "-f", "txt", "-o", str(tmp_path)]) == 2


def test_simulate_batch_end_to_end(tmp_path):
    out = tmp_path / "b"
    rc = main(["-q", "simulate", "batch", "-n", "6", "--setup", "sdss", "--seed", "3",
               "-o", str(out)])
    assert rc == 0
    truth = read_table(out / "truth.ecsv")
    targets = read_table(out / "targets.ecsv")
    assert (out / "truth.fits").exists()
    assert len(truth) == 6 and list(targets["name"]) == list(truth["name"])
    for col in ("name", "z", "ra", "dec", "ebv_mw"):
        assert col in targets.colnames
    files = sorted((out / "spectra").glob("*.fits"))
    assert len(files) == 6
    for row in truth:
        spec = read_spectrum(out / row["file"])
        assert spec.name == row["name"]
        assert math.isclose(spec.redshift, row["z"])
    # deterministic with the seed
    rc = main(["-q", "simulate", "batch", "-n", "6", "--setup", "sdss", "--seed", "3",
               "-o", str(tmp_path / "c"), "--truth-only"])
    assert rc == 0
    t2 = read_table(tmp_path / "c" / "truth.ecsv")
    assert np.allclose(t2["f_nii6585"], truth["f_nii6585"])
    assert not (tmp_path / "c" / "spectra").exists()


def test_simulate_help_lists_examples(capsys):
    for sub in ("spectrum", "batch"):
        assert main(["simulate", sub, "--help"]) == 0
        assert "Examples" in capsys.readouterr().out
