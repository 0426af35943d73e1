"""Tests of the batch engine (xmpspec.engine) and ``xmpspec batch``.

Fast tests use the ``inventory`` task (read + summarise every spectrum with
the real readers) on simulated spectra written as FITS; the measurement task
is covered in ``test_batch_measure.py``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from xmpspec.arrowio import read_parquet
from xmpspec.cli import main as cli_main
from xmpspec.config import default_config
from xmpspec.engine import (
    MANIFEST_NAME,
    BatchRun,
    Manifest,
    discover_inputs,
    inventory_task,
    is_file_list,
    run_batch,
)
from xmpspec.tableio import read_table

N_SPECTRA = 40


def write_simulated(folder: Path, n: int, seed: int = 11, start: int = 0) -> list[Path]:
    """``n`` simulated SDSS-like spectra written as FITS with the real writer."""
    from xmpspec.io import write_spectrum
    from xmpspec.simulate.spectra import iter_batch
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for spec, _ in iter_batch(n, "sdss", seed=seed, start=start, sky_lines=False):
        path = folder / f"{spec.name}.fits"
        write_spectrum(spec, path)
        out.append(path)
    return out


def corrupt_copies(folder: Path, good: list[Path]) -> list[Path]:
    """Two corrupt spectra (truncated FITS, text garbage) next to good ones."""
    truncated = folder / "ZZBAD_truncated.fits"
    data = good[0].read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    garbage = folder / "AABAD_garbage.fits"
    garbage.write_bytes(b"this is not a spectrum\n" * 200)
    return [truncated, garbage]


@pytest.fixture(scope="module")
def spectra_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("spectra")
    write_simulated(folder, N_SPECTRA)
    return folder


def assert_tables_equal(a: Table, b: Table) -> None:
    """Same columns, rows, units, masks and values (bit-identical)."""
    assert a.colnames == b.colnames
    assert len(a) == len(b)
    for name in a.colnames:
        ca, cb = a[name], b[name]
        assert getattr(ca, "unit", None) == getattr(cb, "unit", None), name
        ma = np.ma.getmaskarray(ca) if hasattr(ca, "mask") else np.zeros(len(ca), bool)
        mb = np.ma.getmaskarray(cb) if hasattr(cb, "mask") else np.zeros(len(cb), bool)
        np.testing.assert_array_equal(ma, mb, err_msg=name)
        va, vb = np.asarray(ca)[~ma], np.asarray(cb)[~mb]
        if va.dtype.kind == "f":
            np.testing.assert_array_equal(va, vb, err_msg=name)
        else:
            def text(v):
                return v.decode() if isinstance(v, bytes) else v
            assert [text(v) for v in va] == [text(v) for v in vb], name


def manifest_records(outdir: Path) -> list[dict]:
    return [json.loads(line) for line in (outdir / MANIFEST_NAME).read_text().splitlines()
            if line.strip()]


# ------------------------------------------------------------------ inputs
def test_discover_inputs_folder_glob_list(tmp_path):
    a = tmp_path / "a"
    (a / "night2").mkdir(parents=True)
    files = [a / "s1.fits", a / "night2" / "s2.fits.gz", a / "s3.fit"]
    for f in files:
        f.write_bytes(b"x")
    (a / "notes.md").write_text("not a spectrum")
    (a / ".hidden.fits").write_bytes(b"x")
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.fits").write_bytes(b"x")
    lst = tmp_path / "list.txt"
    lst.write_text("# my inputs\na/s1.fits\n\n" + str(files[2]) + "\n")

    found = discover_inputs([a], exclude=[out])
    assert found == sorted(files)  # as given (absolute here)
    # a glob, a list with relative and absolute paths; duplicates removed, order kept
    both = discover_inputs([str(a / "*.fit*"), lst])
    assert both == [files[0], files[2]]
    # a folder that contains the output folder: the outputs are not inputs
    assert (out / "old.fits") not in discover_inputs([tmp_path], exclude=[out])

    with pytest.raises(Exception, match="not found"):
        bad = tmp_path / "bad.txt"
        bad.write_text("a/missing.fits\n")
        discover_inputs([bad])
    with pytest.raises(Exception, match="glob pattern matches no file"):
        discover_inputs([str(tmp_path / "nothing*.fits")])
    with pytest.raises(Exception, match="no such file"):
        discover_inputs([tmp_path / "nope"])


def test_text_spectrum_is_not_a_file_list(tmp_path):
    spec = tmp_path / "spec.txt"
    spec.write_text("# wave flux err\n4000.0 1.0 0.1\n4001.0 1.1 0.1\n")
    assert discover_inputs([spec]) == [spec]
    # with a header line of column names (words, not numbers): still a spectrum
    named = tmp_path / "named.txt"
    named.write_text("wave flux err\n4000.0 1.0 0.1\n4001.0 1.1 0.1\n")
    assert discover_inputs([named]) == [named]
    assert not is_file_list(named) and is_file_list(tmp_path / "x.lst")


# ------------------------------------------------------------------ corrupt inputs, CLI
def test_cli_corrupt_inputs_are_exactly_the_failures(spectra_dir, tmp_path, capsys):
    folder = tmp_path / "mixed"
    shutil.copytree(spectra_dir, folder)
    good = sorted(folder.glob("*.fits"))
    bad = corrupt_copies(folder, good)  # 2 of 42 = 5 %
    out = tmp_path / "out"
    code = cli_main(["-q", "batch", str(folder), "--task", "inventory", "-w", "2",
                     "--chunk-size", "7", "-o", str(out)])
    assert code == 1  # some failed
    text = capsys.readouterr().out
    failed = Table.read(out / "failed.ecsv")
    assert sorted(failed["input_file"]) == sorted(str(p) for p in bad)
    for row in failed:  # the reason names the file
        assert Path(row["input_file"]).name in row["reason"]
        assert row["error_type"] == "InputError"
        assert Path(row["input_file"]).name in text
    objects = Table.read(out / "objects.ecsv")
    assert list(objects["input_file"]) == [str(p) for p in good]
    assert len(set(objects["name"])) == len(good)
    for ext in ("fits", "parquet"):
        assert_tables_equal(objects, read_table(out / f"objects.{ext}"))
    # provenance of the merged table describes the batch
    from xmpspec.tableio import read_provenance
    prov = read_provenance(out / "objects.ecsv")
    assert prov["step"] == "batch"
    assert prov["extra"]["batch"]["n_inputs"] == len(good) + 2
    assert prov["extra"]["batch"]["n_failed"] == 2
    assert prov["versions"]["xmpspec"]


def test_cli_all_good_exit_zero_and_help(spectra_dir, tmp_path, capsys):
    files = sorted(spectra_dir.glob("*.fits"))[:6]
    lst = tmp_path / "files.txt"
    lst.write_text("\n".join(str(f) for f in files) + "\n")
    code = cli_main(["-q", "batch", str(lst), "--task", "inventory", "-w", "1",
                     "-o", str(tmp_path / "o")])
    assert code == 0
    text = capsys.readouterr().out
    assert "spectra/s" in text and "done" in text
    assert cli_main(["batch", "--help"]) == 0
    assert "Examples:" in capsys.readouterr().out


# ------------------------------------------------------------------ resume
def test_resume_skips_done_and_adds_new_inputs(spectra_dir, tmp_path):
    files = sorted(spectra_dir.glob("*.fits"))
    out = tmp_path / "out"
    s1 = run_batch(files[:12], out, task="inventory", workers=1, chunk_size=5)
    assert (s1.done_now, s1.skipped_done, s1.n_done) == (12, 0, 12)
    s2 = run_batch(files[:12], out, task="inventory", workers=1, chunk_size=5)
    assert (s2.done_now, s2.skipped_done, s2.n_done) == (0, 12, 12)
    assert s2.exit_code == 0
    s3 = run_batch(files[:20], out, task="inventory", workers=1, chunk_size=5)
    assert (s3.done_now, s3.skipped_done, s3.n_done) == (8, 12, 20)
    objects = Table.read(out / "objects.ecsv")
    assert list(objects["input_file"]) == [str(f) for f in files[:20]]
    # every input was processed exactly once over the three runs
    done = [p for r in manifest_records(out) if r["type"] == "chunk" for p in r["done"]]
    assert sorted(done) == sorted(str(f) for f in files[:20])


def test_retry_failed_and_settings_guard(spectra_dir, tmp_path):
    files = sorted(spectra_dir.glob("*.fits"))[:5]
    broken = tmp_path / "broken.fits"
    broken.write_bytes(b"SIMPLE  = nonsense")
    out = tmp_path / "out"
    s1 = run_batch(files + [broken], out, task="inventory", workers=1)
    assert (s1.n_done, s1.n_failed, s1.exit_code) == (5, 1, 1)
    s2 = run_batch(files + [broken], out, task="inventory", workers=1)
    assert (s2.done_now, s2.failed_now, s2.skipped_failed, s2.exit_code) == (0, 0, 1, 1)
    # the file gets repaired: --retry-failed measures it
    shutil.copy(files[0], broken)
    s3 = run_batch(files + [broken], out, task="inventory", workers=1, retry_failed=True)
    assert (s3.done_now, s3.n_failed, s3.exit_code) == (1, 0, 0)
    assert len(Table.read(out / "objects.ecsv")) == 6
    assert len(Table.read(out / "failed.ecsv")) == 0
    # another configuration may not silently mix with the results on disk
    out2 = tmp_path / "out2"
    run_batch(files, out2, task=whole_config_task, workers=1)
    cfg = default_config().updated({"measure.significance_gate": 3.0})
    with pytest.raises(Exception, match="different settings"):
        run_batch(files, out2, task=whole_config_task, workers=1, config=cfg)
    s4 = run_batch(files, out2, task=whole_config_task, workers=1, config=cfg, restart=True)
    assert (s4.done_now, s4.skipped_done) == (5, 0)


def test_merge_streams_ordered_parts_and_sorts_interleaved_ones(spectra_dir, tmp_path,
                                                                monkeypatch):
    import xmpspec.tableio as tableio
    files = sorted(spectra_dir.glob("*.fits"))[:9]
    held: list[int] = []
    real = tableio.write_table

    def spy(table, *args, **kwargs):
        held.append(len(table))
        return real(table, *args, **kwargs)

    monkeypatch.setattr(tableio, "write_table", spy)
    # parts in input order: the merged tables never exist in memory as a whole
    ordered = tmp_path / "ordered"
    run_batch(files, ordered, task="inventory", workers=1, chunk_size=3)
    assert max(held) == 0  # only failed.ecsv (empty) went through write_table
    # an input in the middle fails, then is repaired and retried: its part comes
    # last and interleaves with the others; the merge restores the input order
    broken = tmp_path / "in" / "broken.fits"
    broken.parent.mkdir()
    broken.write_bytes(b"SIMPLE  = nonsense")
    inputs = files[:4] + [broken] + files[4:]
    retried = tmp_path / "retried"
    run_batch(inputs, retried, task="inventory", workers=1, chunk_size=3)
    shutil.copy(files[0], broken)
    held.clear()
    s = run_batch(inputs, retried, task="inventory", workers=1, chunk_size=3, retry_failed=True)
    assert s.n_done == 10 and max(held) == 10  # sorted in memory
    for suffix in ("ecsv", "fits", "parquet"):
        objects = read_table(retried / f"objects.{suffix}")
        assert list(objects["input_file"]) == [str(p) for p in inputs], suffix
        streamed = read_table(ordered / f"objects.{suffix}")
        assert list(streamed["input_file"]) == [str(p) for p in files], suffix
        assert streamed["wave_min"].unit == objects["wave_min"].unit == "Angstrom"


def whole_config_task(path, context):
    """A task without ``config_sections``: every configuration key counts for resuming."""
    return inventory_task(path, context)


def test_resume_settings_depend_on_the_task_config_sections(tmp_path):
    base = default_config()

    def sha(task, cfg):
        return BatchRun([], tmp_path / "x", task=task, config=cfg).settings()["config_sha256"]

    other_section = base.updated({"compare.match_radius_arcsec": 5.0})
    measure_key = base.updated({"measure.significance_gate": 3.0})
    assert sha("measure", base) == sha("measure", other_section)
    assert sha("measure", base) != sha("measure", measure_key)
    assert sha(whole_config_task, base) != sha(whole_config_task, other_section)


def test_torn_manifest_and_orphan_parts_are_repaired(spectra_dir, tmp_path):
    """The states a kill can leave (torn record, part without record, temp file)."""
    files = sorted(spectra_dir.glob("*.fits"))[:15]
    ref = tmp_path / "ref"
    run_batch(files, ref, task="inventory", workers=1, chunk_size=4)
    out = tmp_path / "out"
    shutil.copytree(ref, out)
    lines = (out / MANIFEST_NAME).read_text().splitlines(keepends=True)
    last = json.loads(lines[-1])
    assert last["type"] == "chunk" and last["parts"]
    # killed after the part was renamed into place but before its record was complete
    torn = lines[-1][: len(lines[-1]) // 2]
    (out / MANIFEST_NAME).write_text("".join(lines[:-1]) + torn)
    (out / "parts" / ".x.objects.parquet.tmp123.part.parquet").write_bytes(b"half")
    man = Manifest(out / MANIFEST_NAME).load()
    assert all(man.status(p) == "pending" for p in last["done"])
    assert (out / MANIFEST_NAME).read_text().endswith("\n")  # torn line cut off
    s = run_batch(files, out, task="inventory", workers=1, chunk_size=4)
    assert s.done_now == len(last["done"]) and s.n_done == 15
    assert not any(p.name.startswith(".") for p in (out / "parts").iterdir())
    assert not (out / last["parts"]["objects"]).exists()  # orphan removed
    assert_tables_equal(Table.read(ref / "objects.ecsv"), Table.read(out / "objects.ecsv"))


def test_large_merge_streams_parquet(spectra_dir, tmp_path):
    files = sorted(spectra_dir.glob("*.fits"))[:12]
    small = tmp_path / "small"
    run_batch(files, small, task="inventory", workers=1, chunk_size=5)
    cfg = default_config().updated({"batch.merge_text_max_rows": 5})
    large = tmp_path / "large"
    s = run_batch(files, large, task="inventory", workers=1, chunk_size=5, config=cfg)
    assert [p.name for p in s.outputs["objects"]] == ["objects.parquet"]
    assert not (large / "objects.ecsv").exists()
    big = read_parquet(large / "objects.parquet")
    assert_tables_equal(read_table(small / "objects.parquet"), big)
    # xmpspec's table reader (xmpspec derive, compare, ...) keeps its units and masks too
    assert_tables_equal(big, read_table(large / "objects.parquet"))
    assert big.meta["provenance"]["extra"]["batch"]["n_done"] == 12


def test_library_run_and_folder_lock(spectra_dir, tmp_path):
    files = sorted(spectra_dir.glob("*.fits"))[:3]
    out = tmp_path / "out"
    with BatchRun(files, out, task=inventory_task, workers=1) as run:
        assert len(run.prepare()) == 3
        with pytest.raises(Exception, match="in use by another running batch"):
            BatchRun(files, out, task=inventory_task, workers=1).prepare()
        s = run.execute()
        run.merge()
    assert s.n_done == 3 and s.worker_peak_rss_mb
    assert max(s.worker_peak_rss_mb.values()) > 10


# ------------------------------------------------------------------ dying workers
def crashing_task(path, context):
    """Kills its worker process on inputs named like '*CRASH*' (a segfault, an OOM kill)."""
    if "CRASH" in Path(path).name:
        os._exit(13)
    return inventory_task(path, context)


@pytest.mark.slow
def test_dying_worker_fails_only_its_input(spectra_dir, tmp_path):
    files = sorted(spectra_dir.glob("*.fits"))[:9]
    crash = tmp_path / "CRASH_me.fits"
    shutil.copy(files[0], crash)
    inputs = files[:4] + [crash] + files[4:]
    out = tmp_path / "out"
    s = run_batch(inputs, out, task=crashing_task, workers=1, chunk_size=5)
    assert s.n_done == 9 and s.n_failed == 1
    path, etype, reason = s.failures[0]
    assert path == str(crash) and etype == "WorkerDied" and "CRASH_me" in reason
    assert sorted(Table.read(out / "objects.ecsv")["input_file"]) == sorted(str(f) for f in files)
