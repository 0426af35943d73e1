"""One engine (issue 11): measure, batch (1 and 2 workers), run/chain give the same rows.

Also: targets matched by position whatever the coordinate format when names do not
match (sexagesimal with colons or spaces, decimal degrees), in every command.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import Angle
from astropy.table import Table
from test_batch import assert_tables_equal

from xmpspec.cli import main as cli_main
from xmpspec.config import load_config
from xmpspec.tableio import read_table

CFG = load_config(search_cwd=False)
SETUPS = ("sdss", "int_ids_r632v", "goodman_400")


def simulate(folder: Path, n: int, seed: int) -> tuple[list[Path], Path]:
    args = ["-q", "simulate", "batch", "-n", str(n), "--seed", str(seed), "-o", str(folder)]
    for s in SETUPS:
        args += ["-s", s]
    assert cli_main(args) == 0
    spectra = sorted((folder / "spectra").glob("*.fits"))
    assert len(spectra) == n
    return spectra, folder / "targets.ecsv"


@pytest.fixture(scope="module")
def sim40(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("sim40"), 40, seed=5)


@pytest.fixture(scope="module")
def sim4(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("sim4"), 4, seed=8)


def without_input_column(t: Table) -> Table:
    if "input_file" in t.colnames:
        t.remove_column("input_file")
    t.meta.clear()
    return t


@pytest.mark.slow
def test_measure_and_batch_with_1_and_2_workers_give_identical_tables(sim40, tmp_path):
    spectra, targets = sim40
    folder = spectra[0].parent
    m = tmp_path / "measure"
    assert cli_main(["-q", "measure", str(folder), "--targets", str(targets),
                     "-o", str(m)]) == 0
    outs = {}
    for workers, chunk in ((1, 40), (2, 7)):
        outs[workers] = tmp_path / f"batch{workers}"
        code = cli_main(["-q", "batch", str(folder), "--targets", str(targets), "-w",
                         str(workers), "--chunk-size", str(chunk), "-o", str(outs[workers])])
        assert code == 0
    for name in ("objects", "lines"):
        ref = without_input_column(read_table(m / f"{name}.ecsv"))
        assert len(ref) >= (40 if name == "objects" else 40 * 18)
        for out in outs.values():
            got = read_table(out / f"{name}.ecsv")
            assert list(dict.fromkeys(got["input_file"])) == [str(p) for p in spectra]
            assert_tables_equal(ref, without_input_column(got))
        # FITS copies carry the same rows
        assert_tables_equal(without_input_column(read_table(m / f"{name}.fits")),
                            without_input_column(read_table(outs[2] / f"{name}.fits")))


def renamed_targets(targets: Path, out: Path, style: str) -> Path:
    """The targets table with names that match no file and coordinates in ``style``."""
    t = read_table(targets)
    t["name"] = [f"XMP-{i:03d}" for i in range(len(t))]
    ra, dec = Angle(np.asarray(t["ra"], float), "deg"), Angle(np.asarray(t["dec"], float), "deg")
    if style == "colons":
        t["ra"] = ra.to_string(unit="hourangle", sep=":", precision=3, pad=True)
        t["dec"] = dec.to_string(unit="deg", sep=":", precision=2, alwayssign=True, pad=True)
    elif style == "spaces":
        t["ra"] = ra.to_string(unit="hourangle", sep=" ", precision=3, pad=True)
        t["dec"] = dec.to_string(unit="deg", sep=" ", precision=2, alwayssign=True, pad=True)
    else:
        t["ra"], t["dec"] = np.asarray(t["ra"], float), np.asarray(t["dec"], float)
    path = out / f"targets_{style}.csv"
    t.write(path, format="ascii.csv", overwrite=True)
    return path


def assert_matched_by_position(objects: Table, targets_csv: Path, n: int) -> None:
    want = read_table(targets_csv)
    assert len(objects) == n
    assert list(objects["name"]) == list(want["name"][:n])   # the table's (non-matching) names
    np.testing.assert_allclose(np.asarray(objects["z"], float), np.asarray(want["z"][:n], float),
                               atol=2e-3)
    for note in objects["notes"] if "notes" in objects.colnames else []:
        assert "no targets row" not in str(note)


@pytest.mark.parametrize("style", ["colons", "spaces", "decimal"])
def test_targets_matched_by_position_in_measure_and_batch(sim4, tmp_path, style):
    spectra, targets = sim4
    tcsv = renamed_targets(targets, tmp_path, style)
    m = tmp_path / "m"
    assert cli_main(["-q", "measure", *map(str, spectra), "--targets", str(tcsv),
                     "-o", str(m)]) == 0
    assert_matched_by_position(read_table(m / "objects.ecsv"), tcsv, len(spectra))
    b = tmp_path / "b"
    assert cli_main(["-q", "batch", *map(str, spectra), "--targets", str(tcsv), "-w", "1",
                     "-o", str(b)]) == 0
    assert_matched_by_position(read_table(b / "objects.ecsv"), tcsv, len(spectra))
    assert_tables_equal(without_input_column(read_table(m / "objects.ecsv")),
                        without_input_column(read_table(b / "objects.ecsv")))


def test_targets_matched_by_position_in_run_and_chain(sim4, tmp_path):
    from types import SimpleNamespace

    from xmpspec.reduce.pipeline import NightRun
    from xmpspec.workflows.chain import run_analysis_chain
    from xmpspec.workflows.night import measure_and_derive
    spectra, targets = sim4
    tcsv = renamed_targets(targets, tmp_path, "colons")
    # the measure/derive step of `xmpspec run` on the night's coadds
    run = NightRun(setup=None, results=[], failures={})
    plugin = SimpleNamespace(setup_name=None, name="sim")
    measure_and_derive(run, spectra[:2], read_table(tcsv), tmp_path / "night", plugin, "n1",
                       None, config=CFG)
    assert not run.problems
    assert_matched_by_position(read_table(run.measurements), tcsv, 2)
    # the analysis chain (xmpspec demo)
    res = run_analysis_chain(spectra[:2], tcsv, None, tmp_path / "chain", CFG)
    assert_matched_by_position(read_table(res.objects), tcsv, 2)
    assert list(res.derived_table["name"]) == ["XMP-000", "XMP-001"]


# ---------------------------------------------------------------- locks and leftovers
def test_measure_refuses_a_folder_locked_by_another_run_and_takes_over_a_dead_ones_lock(
        sim4, tmp_path, capsys):
    import subprocess
    import sys
    import time
    spectra, _ = sim4
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom xmpspec.engine.manifest import OutputLock\n"
         f"lock = OutputLock({str(out)!r}, 'batch').acquire()\nprint('held', flush=True)\n"
         "time.sleep(60)\n"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert cli_main(["-q", "measure", str(spectra[0]), "-o", str(out)]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "in use by another running batch" in err and f"pid {holder.pid}" in err
        assert cli_main(["-q", "batch", str(spectra[0]), "-o", str(out)]) == 2
        assert "in use by another running batch" in " ".join(capsys.readouterr().err.split())
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    # the holder died without releasing: its lock file is still there, and taken over
    assert (out / ".xmpspec.lock").exists()
    assert cli_main(["-q", "measure", str(spectra[0]), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["lines.ecsv", "lines.fits",
                                                     "objects.ecsv", "objects.fits"]


def test_killed_measure_leftovers_removed_by_the_next_run(sim4, tmp_path):
    import signal
    import subprocess
    import sys
    import time
    spectra, _ = sim4
    out = tmp_path / "out"
    cfg = tmp_path / "small_chunks.toml"
    cfg.write_text("[batch]\nchunk_size = 1\n")
    proc = subprocess.Popen([sys.executable, "-c", "from xmpspec.cli import main; main()", "-q",
                             "-c", str(cfg), "measure", *map(str, spectra), "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:   # kill once parts are being written
            parts = list(out.glob(".lines-parts-*/*.parquet")) if out.is_dir() else []
            if len(parts) >= 2:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert list(out.glob(".lines-parts-*")), "the run was not killed while writing parts"
    # leftovers of an atomic write killed half way (tables of measure and batch)
    (out / ".lines.ecsv.k1x2.part.ecsv").write_text("partial")
    (out / ".objects.parquet.zz9.part").write_bytes(b"")
    assert cli_main(["-q", "measure", *map(str, spectra[:3]), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["lines.ecsv", "lines.fits",
                                                     "objects.ecsv", "objects.fits"]
    assert len(read_table(out / "objects.ecsv")) == 3
    # batch cleans the same leftovers in its folder
    b = tmp_path / "batch"
    b.mkdir()
    (b / ".lines.fits.aa1.part.fits").write_bytes(b"x")
    (b / ".objects.ecsv.bb2.part.ecsv").write_bytes(b"")
    (b / "notes.txt").write_text("mine")
    assert cli_main(["-q", "batch", *map(str, spectra[:2]), "-w", "1", "-o", str(b)]) == 0
    assert not [p.name for p in b.iterdir() if p.name.startswith(".")]
    assert (b / "notes.txt").read_text() == "mine"
    # a batch killed in its merge with derive leaves parts/.derive: the next run removes it
    (b / "parts" / ".derive").mkdir()
    (b / "parts" / ".derive" / "measured.parquet").write_bytes(b"partial")
    assert cli_main(["-q", "batch", *map(str, spectra[:2]), "-w", "1", "-o", str(b)]) == 0
    assert not [p.name for p in (b / "parts").iterdir() if p.name.startswith(".")]
