"""``xmpspec batch --scheduler`` when an input kills its Dask worker process.

A worker process that dies (segfault, OOM kill) is restarted by its nanny and
the scheduler retries the task elsewhere, ``allowed-failures`` times, then
reports ``KilledWorker``. The batch must finish in bounded time with exactly
that input failed (with a reason) and every other one done, exit code 1, and
a re-run must resume. If the cluster loses all its workers, the batch must
stop in bounded time (``batch.dask_no_workers_timeout``) and resume later.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from test_batch import crashing_task

from xmpspec.cli import main as cli_main
from xmpspec.engine import MANIFEST_NAME, TASKS


def _flat_spectra(folder: Path, n: int) -> list[Path]:
    """``n`` small flat spectra written with the real writer (fast; for the inventory task)."""
    import astropy.units as u

    from xmpspec import FLUX_UNIT, Spectrum
    from xmpspec.io import write_spectrum
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    wave = np.linspace(4000.0, 7000.0, 500) * u.AA
    out = []
    for k in range(n):
        flux = (1.0 + 0.1 * rng.standard_normal(wave.size)) * FLUX_UNIT
        spec = Spectrum(wave, flux, np.full(wave.size, 0.1) * FLUX_UNIT, redshift=0.01,
                        meta={"name": f"FLAT{k:03d}"})
        out.append(folder / f"FLAT{k:03d}.fits")
        write_spectrum(spec, out[-1])
    return out


def _records(outdir: Path) -> list[dict]:
    return [json.loads(x) for x in (outdir / MANIFEST_NAME).read_text().splitlines() if x.strip()]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_dask_input_killing_its_worker_fails_alone(tmp_path, monkeypatch):
    import dask
    from dask.distributed import LocalCluster
    folder = tmp_path / "in"
    good = _flat_spectra(folder, 14)
    crash = folder / "FLAT_CRASH_me.fits"
    shutil.copy(good[0], crash)
    monkeypatch.setitem(TASKS, "crashing", crashing_task)
    out = tmp_path / "out"
    # A LocalCluster closes for good a worker that is still restarting 15 s after an earlier
    # death (SpecCluster, distributed.deploy.lost-worker-timeout): with repeated deaths on a
    # loaded machine it can lose every worker (what made the batch hang before it stopped
    # waiting for an empty cluster: test below). Here the cluster keeps its workers.
    with dask.config.set({"distributed.deploy.lost-worker-timeout": "1h"}), \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                         dashboard_address=None) as cluster:
        cmd = ["-q", "batch", str(folder), "--task", "crashing", "--scheduler",
               cluster.scheduler_address, "--chunk-size", "4", "-o", str(out)]
        assert cli_main(cmd) == 1
        failed = Table.read(out / "failed.ecsv")
        assert list(failed["input_file"]) == [str(crash)]
        assert failed["error_type"][0] == "WorkerDied"
        assert "FLAT_CRASH_me.fits" in failed["reason"][0] and "died" in failed["reason"][0]
        objects = Table.read(out / "objects.ecsv")
        assert sorted(objects["input_file"]) == sorted(str(p) for p in good)
        # a re-run resumes: nothing is processed again, the failure is still reported
        n_records = len(_records(out))
        assert cli_main(cmd) == 1
        assert len(_records(out)) == n_records
        assert len(Table.read(out / "objects.ecsv")) == len(good)
        # --retry-failed runs only the killer again, which fails again
        assert cli_main(cmd + ["--retry-failed"]) == 1
        new = [r for r in _records(out)[n_records:] if r["type"] == "chunk"]
        assert sorted({p for r in new for p in r["done"]}) == []
        assert {tuple(f[:2]) for r in new for f in r["failed"]} == {
            (str(crash), "WorkerDied")}
        assert len(Table.read(out / "objects.ecsv")) == len(good)


@pytest.mark.timeout(120)
def test_dask_cluster_without_workers_stops_then_resumes(tmp_path, monkeypatch):
    from dask.distributed import LocalCluster
    folder = tmp_path / "in"
    files = _flat_spectra(folder, 6)
    cfg = tmp_path / "xmpspec.toml"
    cfg.write_text("[batch]\ndask_no_workers_timeout = 1.0\n")
    out = tmp_path / "out"
    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster:
        cmd = ["-q", "-c", str(cfg), "batch", str(folder), "--task", "inventory",
               "--scheduler", cluster.scheduler_address, "--chunk-size", "2", "-o", str(out)]
        t0 = time.monotonic()
        assert cli_main(cmd) == 1  # stopped: nothing done, nothing failed, all pending
        assert time.monotonic() - t0 < 60
        assert not (out / "objects.ecsv").exists()
        assert not [r for r in _records(out) if r["type"] == "chunk"]
        cluster.scale(1)
        cluster.wait_for_workers(1, timeout=60)
        assert cli_main(cmd) == 0
    objects = Table.read(out / "objects.ecsv")
    assert list(objects["input_file"]) == [str(p) for p in files]
