"""The fast I/O paths do not change a single number of `xmpspec measure`.

The same files are measured with the fast native FITS reader and the
vectorised ECSV writer, and with both switched off (astropy's Table reader and
astropy's ECSV writer): the ECSV tables are identical byte for byte apart from
the provenance time stamp and command line, the FITS tables value for value.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

import xmpspec.io as io_pkg
import xmpspec.io._write as write_mod
import xmpspec.io.table as table_mod
import xmpspec.tablestream as stream_mod
from xmpspec.cli import main


def _strip(text: str) -> str:
    return re.sub(r"(created_utc|command): .*", "", text)


@pytest.mark.slow  # ~8 s idle, 27 s at load 15 (two measure runs)
def test_measure_outputs_identical_with_and_without_fast_io(tmp_path, monkeypatch):
    sim = tmp_path / "sim"
    assert main(["-q", "simulate", "batch", "-n", "3", "--setup", "sdss", "--setup",
                 "goodman_400", "--seed", "4", "-o", str(sim)]) == 0
    files = sorted(str(p) for p in (sim / "spectra").glob("*.fits"))
    assert table_mod.read_native_fits(Path(files[0])) is not None

    def run(out):
        return main(["-q", "measure", *files, "--targets", str(sim / "targets.ecsv"),
                     "-o", str(out)])

    assert run(tmp_path / "fast") == 0
    monkeypatch.setattr(io_pkg, "read_native_fits", lambda *a, **k: None)
    monkeypatch.setattr(write_mod, "ecsv_fast_supported", lambda t: False)
    monkeypatch.setattr(stream_mod, "ecsv_fast_supported", lambda t: False)
    assert run(tmp_path / "slow") == 0
    for name in ("lines.ecsv", "objects.ecsv"):
        a = (tmp_path / "fast" / name).read_text("utf-8")
        b = (tmp_path / "slow" / name).read_text("utf-8")
        assert _strip(a) == _strip(b)
    for name in ("lines.fits", "objects.fits"):
        a, b = Table.read(tmp_path / "fast" / name), Table.read(tmp_path / "slow" / name)
        assert a.colnames == b.colnames and len(a) == len(b) > 0
        for c in a.colnames:
            assert np.array_equal(np.ma.filled(a[c], a[c].dtype.type(0)),
                                  np.ma.filled(b[c], b[c].dtype.type(0)),
                                  equal_nan=a[c].dtype.kind == "f"), c
