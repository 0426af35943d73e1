"""``xmpspec measure`` end to end: outputs, targets matching, bad files, plots, help."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from xmpspec.cli import main
from xmpspec.io import write_spectrum
from xmpspec.lines.measure import LINE_KEYS
from xmpspec.simulate import simulate_spectrum
from xmpspec.tableio import read_provenance, read_table


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("meas")
    out = []
    for i, (setup, n2, z) in enumerate((("goodman_400", -1.4, 0.021), ("sdss", -1.0, 0.035))):
        spec, truth = simulate_spectrum(setup, z=z, n2=n2, halpha_flux=500.0, seed=30 + i,
                                        name=f"XMP{i}", ra=150.0 + i, dec=2.0 + i)
        spec.redshift = None            # force the targets table / line finding
        p = d / f"spec{i}.fits"
        write_spectrum(spec, p)
        out.append((p, truth))
    return d, out


def test_measure_two_files_with_targets_and_plots(files, tmp_path):
    d, specs = files
    (p0, t0), (p1, t1) = specs
    targets = Table({"name": ["XMP0", "other"], "z": [0.021, 0.035], "ra": [np.nan, 151.0],
                     "dec": [np.nan, 3.0], "n2_cnn": [-1.9, -1.2]})
    # the second spectrum matches "other" by position only (within 2 arcsec)
    targets["ra"][1] = 151.0 + 0.5 / 3600.0
    tpath = tmp_path / "targets.csv"
    targets.write(tpath)
    out = tmp_path / "out"
    code = main(["measure", str(p0), str(p1), "--targets", str(tpath), "--plots", "-o", str(out)])
    assert code == 0
    objs = read_table(out / "objects.ecsv")
    lines = read_table(out / "lines.fits")
    assert list(objs["name"]) == ["XMP0", "other"]
    assert list(objs["z_source"]) == ["targets", "targets"]
    assert objs["n2_cnn"][0] == pytest.approx(-1.9)      # carried through
    assert len(lines) == 2 * len(LINE_KEYS)
    for i, t in enumerate((t0, t1)):
        assert objs["n2_state"][i] == "detected"
        assert abs(objs["n2"][i] - t["n2"]) < 0.2
    prov = read_provenance(out / "objects.fits")
    assert prov["step"] == "measure" and str(p0) in prov["inputs"]
    assert (out / "plots" / "XMP0.png").stat().st_size > 10000


def test_measure_finds_redshift_and_bad_file_skipped(files, tmp_path, capsys):
    d, specs = files
    bad = tmp_path / "broken.fits"
    bad.write_bytes(b"SIMPLE  = nonsense")
    out = tmp_path / "out2"
    code = main(["measure", str(specs[1][0]), str(bad), "-o", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert "broken.fits" in err
    objs = read_table(out / "objects.ecsv")
    assert len(objs) == 1 and objs["z_source"][0] == "lines"
    assert abs(objs["z"][0] - 0.035) < 1e-4
    assert objs["n2_state"][0] == "detected"


def test_single_bad_file_exit_2_and_no_line_redshift(files, tmp_path, capsys):
    d, specs = files
    code = main(["measure", str(tmp_path / "missing.fits"), "-o", str(tmp_path / "o")])
    assert code == 2
    code = main(["measure", str(specs[0][0]), "--z", "3.0", "-o", str(tmp_path / "o")])
    assert code == 2
    assert "no catalogue line" in capsys.readouterr().err


def test_measure_help_has_examples():
    from typer.testing import CliRunner

    from xmpspec.cli.app import app
    res = CliRunner().invoke(app, ["measure", "--help"])
    assert res.exit_code == 0
    assert "Examples:" in res.output and "--targets" in res.output and "--mcmc" in res.output


def test_measure_sdss_file(tmp_path):
    """An SDSS spec-*.fits file (reader of the io layer): redshift from SPECOBJ."""
    from test_io_sdss import make_sdss
    path, wave, flux, ivar = make_sdss(tmp_path / "spec-0266-51602-0003.fits")
    out = tmp_path / "o"
    assert main(["measure", str(path), "-o", str(out)]) == 0
    objs = read_table(out / "objects.ecsv")
    assert objs["z_source"][0] == "spectrum" and objs["setup"][0] == "sdss"
    # the file has one Gaussian line at Halpha: 30 x 2.5 A x sqrt(2 pi) = 188
    assert abs(objs["f_ha"][0] - 188.0) < 5 * objs["f_ha_err"][0]
    assert objs["n2_state"][0] == "upper_limit" and objs["n2_upper_limit"][0]
