"""One targets-row -> name/z choice: ``measure_file`` and the engine's ``measure_input`` agree."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from xmpspec.config import load_config
from xmpspec.engine.tasks import BatchContext, measure_input
from xmpspec.io import write_spectrum
from xmpspec.lines.measure import measure_file
from xmpspec.simulate import simulate_spectrum

CFG = load_config()


@pytest.fixture(scope="module")
def spectrum_file(tmp_path_factory):
    spec, _ = simulate_spectrum("goodman_400", z=0.03, n2=-1.8, halpha_flux=300.0, seed=4)
    spec.redshift = None
    spec.meta["ra"], spec.meta["dec"] = 150.25, 2.5
    path = tmp_path_factory.mktemp("spec") / "unrelated_file_name.fits"
    write_spectrum(spec, path)
    return path


def _same_rows(a, b):
    assert a.keys() == b.keys()
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, float) and isinstance(y, float) and np.isnan(x):
            assert np.isnan(y), k
        else:
            assert x == y, k


def test_measure_file_and_measure_input_choose_the_same_name_and_z(spectrum_file):
    targets = Table({"name": ["T1"], "z": [0.0301], "ra": ["10:01:00.0"], "dec": ["+02:30:00"],
                     "n2_cnn": [-2.0]})
    ctx = BatchContext(config=CFG.to_dict(), targets=targets)
    engine = measure_input(spectrum_file, ctx)       # matched by position (name differs)
    row = {k: targets[0][k] for k in targets.colnames}
    direct = measure_file(spectrum_file, target_row=row, config=CFG)
    assert engine.name == direct.name == "T1"
    assert engine.row["z_source"] == direct.row["z_source"] == "targets"
    assert engine.row["n2_cnn"] == direct.row["n2_cnn"] == -2.0
    _same_rows(engine.row, direct.row)
    # a given z overrides the row's, in both
    ctx.options["z"] = 0.03
    a = measure_input(spectrum_file, ctx)
    b = measure_file(spectrum_file, target_row=row, config=CFG, z=0.03)
    assert a.row["z_source"] == b.row["z_source"] == "argument"
    _same_rows(a.row, b.row)


def test_no_targets_row_note(spectrum_file):
    far = Table({"name": ["X"], "z": [0.03], "ra": [10.0], "dec": [-40.0]})
    meas = measure_input(spectrum_file, BatchContext(config=CFG.to_dict(), targets=far))
    assert "no targets row" in meas.row["notes"]
    assert meas.row["z_source"] != "targets"
