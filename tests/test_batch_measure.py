"""``xmpspec batch`` with the real measurement: Dask vs local pool, SIGKILL + resume, targets.

The spectra come from the simulator and are written as FITS with the real
writer; every run measures them with xmpspec.lines.measure.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from astropy.table import Table
from test_batch import assert_tables_equal, corrupt_copies, write_simulated

from xmpspec.cli import main as cli_main
from xmpspec.engine import MANIFEST_NAME, run_batch
from xmpspec.lines.measure import LINE_KEYS
from xmpspec.tableio import read_table

N_SPECTRA = 60


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sim")
    write_simulated(folder, N_SPECTRA, seed=5)
    return folder


def _chunk_records(outdir: Path) -> list[dict]:
    path = outdir / MANIFEST_NAME
    if not path.exists():
        return []
    out = []
    for line in path.read_text().split("\n"):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("type") == "chunk":
            out.append(rec)
    return out


@pytest.mark.slow
def test_dask_localcluster_equals_local_pool(sim_dir, tmp_path):
    from dask.distributed import LocalCluster
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = sorted(sim_dir.glob("*.fits"))[:38]
    for f in good:
        (folder / f.name).symlink_to(f)
    bad = corrupt_copies(folder, good)  # 2 of 40 = 5 %
    local = run_batch(folder, tmp_path / "local", workers=2, chunk_size=6,
                      options={"derive": True})
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        dask = run_batch(folder, tmp_path / "dask", scheduler=cluster.scheduler_address,
                         chunk_size=6, options={"derive": True})
    assert "Dask cluster" in dask.executor and "local process pool" in local.executor
    for s in (local, dask):
        assert s.n_done == len(good) and s.exit_code == 1
        assert sorted(p for p, _, _ in s.failures) == sorted(str(p) for p in bad)
    for name in ("lines", "objects"):
        a, b = read_table(tmp_path / "local" / f"{name}.ecsv"), read_table(
            tmp_path / "dask" / f"{name}.ecsv")
        assert_tables_equal(a, b)
    objects = read_table(tmp_path / "local" / "objects.ecsv")
    assert len(objects) == len(good) and len(set(objects["name"])) == len(good)
    assert "oh_n2" in objects.colnames  # --derive
    assert len(read_table(tmp_path / "local" / "lines.ecsv")) == len(LINE_KEYS) * len(good)


@pytest.mark.slow
def test_sigkill_midway_then_resume_equals_uninterrupted(sim_dir, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-c", "from xmpspec.cli import main; main()", "-q", "batch",
           str(sim_dir), "--derive", "--workers", "2", "--chunk-size", "3", "-o", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while len(_chunk_records(out)) < 3:
            assert proc.poll() is None, "the batch ended before it could be killed: " + \
                proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the batch made no progress"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its worker processes
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    n_done_at_kill = sum(len(r["done"]) for r in _chunk_records(out))
    assert 0 < n_done_at_kill < N_SPECTRA
    assert not (out / "objects.ecsv").exists()  # killed before the merge

    code = cli_main(["-q", "batch", str(sim_dir), "--derive", "--workers", "2",
                     "--chunk-size", "3", "-o", str(out)])
    assert code == 0
    done = [p for r in _chunk_records(out) for p in r["done"]]
    assert len(done) == len(set(done)) == N_SPECTRA  # each input measured once after resume

    # an uninterrupted run, chunked differently
    ref = run_batch(sim_dir, tmp_path / "ref", workers=2, chunk_size=7, options={"derive": True})
    assert ref.n_done == N_SPECTRA
    for name in ("lines", "objects"):
        a = read_table(tmp_path / "ref" / f"{name}.ecsv")
        b = read_table(out / f"{name}.ecsv")
        assert_tables_equal(a, b)
    objects = read_table(out / "objects.fits")
    names = [str(n) for n in objects["name"]]
    assert len(names) == len(set(names)) == N_SPECTRA
    assert sorted(Path(str(p)).stem for p in objects["input_file"]) == sorted(
        f.stem for f in sim_dir.glob("*.fits"))


def test_targets_table_gives_redshift_and_carries_columns(sim_dir, tmp_path):
    from xmpspec.io import read_spectrum
    files = sorted(sim_dir.glob("*.fits"))[:4]
    specs = [read_spectrum(f) for f in files]
    targets = Table()
    # row 0 by name, row 1 by position only (another name), spectra 2-3 have no row
    targets["name"] = [specs[0].name, "J_OTHER_NAME"]
    targets["z"] = [specs[0].redshift, specs[1].redshift]
    targets["ra"] = [0.0, specs[1].meta["ra"]]
    targets["dec"] = [-89.0, specs[1].meta["dec"]]
    targets["n2_cnn"] = [-1.7, -2.1]
    tpath = tmp_path / "targets.csv"
    targets.write(tpath, format="ascii.csv")
    out = tmp_path / "out"
    code = cli_main(["-q", "batch", *map(str, files), "--targets", str(tpath), "-w", "1",
                     "-o", str(out)])
    assert code == 0
    objects = read_table(out / "objects.ecsv")
    assert list(objects["z_source"][:2]) == ["targets", "targets"]
    assert all(src != "targets" for src in objects["z_source"][2:])
    assert list(objects["name"][:2]) == [specs[0].name, "J_OTHER_NAME"]
    assert list(objects["n2_cnn"][:2]) == [-1.7, -2.1]
    assert bool(objects["n2_cnn"].mask[2]) and bool(objects["n2_cnn"].mask[3])
    assert all("no targets row" in str(n) for n in objects["notes"][2:])
    assert not any("no targets row" in str(n) for n in objects["notes"][:2])
    for k in range(4):  # the redshift found from the lines agrees with the truth
        assert abs(objects["z"][k] - specs[k].redshift) < 1e-3
