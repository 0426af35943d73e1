"""Non-ASCII paths, file names and object names end to end (issue 14).

ECSV outputs keep the original text; FITS header values and character columns
get the documented ASCII form (:func:`xmpspec.tableio.fits_ascii`); the FITS
``PROVENANCE`` extension (UTF-8 JSON) keeps the original.
"""

from __future__ import annotations

import shutil

import numpy as np
from astropy.io import fits
from astropy.table import Table

from xmpspec.cli import main
from xmpspec.io import read_spectrum, write_spectrum
from xmpspec.tableio import read_provenance, read_table

ODD_DIR = "odd dir/ünïcødé spéc"
ODD_FILE = "spec ü 5.fits"


def _simulate(folder, name, fmt="fits", seed=1):
    args = ["-q", "simulate", "spectrum", "--setup", "goodman_400", "--z", "0.02", "--n2", "-1.5",
            "--ha-flux", "800", "--seed", str(seed), "--name", name, "-o", str(folder), "-f", fmt]
    assert main(args) == 0
    return folder / f"{name}.{fmt}"


def test_simulate_spectrum_non_ascii_name_every_format(tmp_path):
    for fmt in ("fits", "ecsv"):
        out = tmp_path / f"sim é {fmt}"
        path = _simulate(out, "Léo-P", fmt)
        assert path.exists()
        spec = read_spectrum(path)
        assert spec.name == "Léo-P"                 # the spectrum keeps the original name
        truth = read_table(out / "Léo-P_truth.ecsv")
        assert truth["name"][0] == "Léo-P"
        ft = Table.read(out / "Léo-P_truth.fits")
        assert ft["name"][0] == "Leo-P"             # FITS character column: ASCII form
        assert read_provenance(out / "Léo-P_truth.fits")["step"]


def test_measure_non_ascii_paths_and_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    good = _simulate(tmp_path / "g", "good", seed=2)
    shutil.copy(good, tmp_path / "good.fits")
    odd_dir = tmp_path / ODD_DIR
    odd_dir.mkdir(parents=True)
    spec = read_spectrum(_simulate(tmp_path / "o", "Łódź-Ærø 天体", seed=3))
    write_spectrum(spec, odd_dir / ODD_FILE)
    rc = main(["-q", "measure", "good.fits", f"{ODD_DIR}/{ODD_FILE}", "-o", "out ü"])
    assert rc == 0
    out = tmp_path / "out ü"
    objs = read_table(out / "objects.ecsv")
    assert list(objs["name"]) == ["good", "Łódź-Ærø 天体"]
    assert any(ODD_FILE in s for s in objs["source_file"])
    lines = read_table(out / "lines.ecsv")
    assert set(lines["object"]) == {"good", "Łódź-Ærø 天体"}
    fobj = Table.read(out / "objects.fits")
    assert list(fobj["name"]) == ["good", "Lodz-AEro \\u5929\\u4f53"]
    assert all(str(s).isascii() for s in fobj["source_file"])
    assert np.allclose(np.asarray(fobj["f_ha"], float), np.asarray(objs["f_ha"], float),
                       equal_nan=True)
    with fits.open(out / "objects.fits") as hdul:   # every header card is ASCII
        assert all(str(c.value).isascii() for h in hdul for c in h.header.cards)
    prov = read_provenance(out / "objects.fits")     # UTF-8 JSON keeps the paths as given
    assert f"{ODD_DIR}/{ODD_FILE}" in "\n".join(prov["inputs"])
    assert read_provenance(out / "objects.ecsv")["inputs"] == prov["inputs"]
    # the batch engine's merge writes the same tables (issue 14: it failed on every rerun)
    rc = main(["-q", "batch", "good.fits", f"{ODD_DIR}/{ODD_FILE}", "-o", "batch é"])
    assert rc == 0
    bobjs = read_table(tmp_path / "batch é" / "objects.ecsv")
    assert sorted(bobjs["name"]) == sorted(["good", "Łódź-Ærø 天体"])
    assert "Lodz-AEro \\u5929\\u4f53" in list(Table.read(tmp_path / "batch é" / "objects.fits")
                                             ["name"])


def test_paper_tables_non_ascii_name(tmp_path):
    """derive and tables keep the name in ECSV/LaTeX/text; the MRT gets the ASCII form."""
    spec = _simulate(tmp_path / "s é", "Léo-P", seed=5)
    assert main(["-q", "measure", str(spec), "-o", str(tmp_path / "m")]) == 0
    assert main(["-q", "derive", str(tmp_path / "m" / "objects.ecsv"),
                 "-o", str(tmp_path / "d.ecsv")]) == 0
    assert main(["-q", "tables", str(tmp_path / "d.ecsv"), "-o", str(tmp_path / "t")]) == 0
    assert read_table(tmp_path / "d.ecsv")["name"][0] == "Léo-P"
    for mrt in (tmp_path / "t").glob("*.mrt"):
        text = mrt.read_bytes()
        assert text.isascii() and b"Leo-P" in text
        assert Table.read(mrt, format="ascii.mrt")[0][0] == "Leo-P"   # first cell: name
    assert "Léo-P" in (tmp_path / "t" / "derived_properties.tex").read_text("utf-8")
    assert read_table(tmp_path / "t" / "derived_properties.ecsv")[0][0] == "Léo-P"
