"""Input paths are recorded as the user gave them (issue 14: no machine paths in outputs).

``xmpspec measure`` and ``xmpspec batch`` run from a temporary working folder
with relative inputs (a file, a folder, a glob, a file list); no output file
(ECSV, FITS, Parquet, manifest, anything in the output folder) may contain
the absolute path of that folder, in its bytes or in any decoded text (FITS
headers with CONTINUE cards, compressed Parquet columns). Also: spellings of
one file are one input, resuming needs the same working folder for relative
inputs, and in-memory targets tables are validated once like files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from test_batch import corrupt_copies, write_simulated

from xmpspec.cli import main as cli_main
from xmpspec.engine import MANIFEST_NAME, BatchRun, discover_inputs
from xmpspec.errors import InputError
from xmpspec.tableio import read_provenance, read_table

MARK = "WDMARKabs"  # in the absolute path of the working folder only


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """``<tmp>/WDMARKabs/data``: 4 spectra (one in a sub-folder) and a corrupt one."""
    root = tmp_path_factory.mktemp("paths") / MARK
    data = root / "data"
    good = write_simulated(data, 3, seed=21)
    good += write_simulated(data / "sub", 1, seed=22, start=3)
    corrupt_copies(data, good)
    (root / "list.lst").write_text("# relative to the list\ndata/sub/" + good[-1].name + "\n")
    return root


def _texts(path: Path) -> list[str]:
    """Every text an output file holds: raw bytes, and decoded tables/headers."""
    raw = path.read_bytes()
    out = [raw.decode("latin-1")]
    name = path.name
    if name.endswith((".fits", ".fits.gz")):
        from astropy.io import fits
        with fits.open(path) as hdul:
            for hdu in hdul:
                out.extend(str(v) for v in hdu.header.values())
                if isinstance(hdu, fits.BinTableHDU):
                    for col in hdu.columns.names:
                        out.extend(str(v) for v in np.asarray(hdu.data[col]).ravel()[:10000])
    elif name.endswith(".parquet"):
        import pyarrow.parquet as pq
        t = pq.read_table(path)
        meta = t.schema.metadata or {}
        out.extend(v.decode("utf-8", "replace") for v in meta.values())
        for col in t.column_names:
            out.extend(str(v) for v in t.column(col).to_pylist())
    return out


def _assert_no_machine_path(outdir: Path, root: Path) -> int:
    """No file under ``outdir`` names ``root`` (resolved or not); returns files checked."""
    bad = {str(root), str(root.resolve()), MARK}
    n = 0
    for f in sorted(p for p in outdir.rglob("*") if p.is_file()):
        n += 1
        for text in _texts(f):
            for b in bad:
                assert b not in text, f"{f.relative_to(outdir)} holds the machine path {b}"
    return n


def test_discovery_keeps_spellings_and_deduplicates(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    data = Path("data")
    a = sorted(data.glob("SIM*.fits"))[0]
    (workdir / "link.fits").unlink(missing_ok=True)
    (workdir / "link.fits").symlink_to(workdir / a)
    found = discover_inputs([str(a), f"./{a}", str(workdir / a), f"data/sub/../{a.name}",
                             "link.fits", "data", "data/sub/*.fits", "list.lst"])
    assert all(not p.is_absolute() for p in found)
    assert found[0] == a  # first spelling kept, the others dropped
    assert len({p.resolve() for p in found}) == len(found)
    assert Path("link.fits") not in found
    sub = sorted(Path("data/sub").glob("*.fits"))
    assert sub[0] in found and sum(p.resolve() == sub[0].resolve() for p in found) == 1
    # an absolute folder gives absolute paths, as given
    assert all(p.is_absolute() for p in discover_inputs([workdir / "data"]))
    from xmpspec.cli.common import expand_inputs
    got = expand_inputs(["data", str(a), str(workdir / a)], sort=False)
    assert all(not p.is_absolute() for p in got)
    assert len(got) == len({p.resolve() for p in got}) == len(found)


def test_measure_relative_inputs_no_machine_path(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    user_config = workdir / "xmpspec.toml"   # ./xmpspec.toml: named as found, not resolved
    user_config.write_text("[batch]\nchunk_size = 200\n")
    try:
        code = cli_main(["-q", "measure", "data", "-o", "out_measure"])
    finally:
        user_config.unlink()
    assert code == 1  # the two corrupt files failed, the others were measured
    out = workdir / "out_measure"
    objects = read_table(out / "objects.ecsv")
    assert len(objects) == 4
    assert sorted(objects["source_file"]) == sorted(
        str(p.relative_to(workdir)) for p in (workdir / "data").rglob("SIM*.fits"))
    prov = read_provenance(out / "objects.ecsv")
    assert prov["inputs"] and all(not Path(p).is_absolute() for p in prov["inputs"])
    assert prov["config_sources"][-1] == "xmpspec.toml"
    assert _assert_no_machine_path(out, workdir) >= 4


def test_batch_relative_inputs_no_machine_path_and_resume(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    args = ["-q", "batch", "data/*.fits", "list.lst", "data/sub", "-w", "1",
            "--chunk-size", "2", "-o", "out_batch"]
    assert cli_main(args) == 1  # the corrupt ones failed
    out = workdir / "out_batch"
    objects = read_table(out / "objects.ecsv")
    rel = sorted(str(p.relative_to(workdir)) for p in (workdir / "data").rglob("SIM*.fits"))
    assert sorted(objects["input_file"]) == rel  # the list's entry and data/sub: one input
    assert sorted(objects["source_file"]) == rel
    failed = read_table(out / "failed.ecsv")
    assert sorted(failed["input_file"]) == ["data/AABAD_garbage.fits",
                                            "data/ZZBAD_truncated.fits"]
    assert all(r["input_file"] in r["reason"] for r in failed)
    records = [json.loads(x) for x in (out / MANIFEST_NAME).read_text().splitlines()]
    assert [r for r in records if r["type"] == "workdir"]
    _assert_no_machine_path(out, workdir)
    import pyarrow.parquet as pq
    data_before = pq.read_table(out / "objects.parquet")

    # rerun from the same folder: everything skipped, same rows
    assert cli_main(args) == 1
    assert pq.read_table(out / "objects.parquet").equals(data_before)
    chunks = [json.loads(x) for x in (out / MANIFEST_NAME).read_text().splitlines()
              if json.loads(x)["type"] == "chunk"]
    assert sum(len(c["done"]) for c in chunks) == 4  # measured once over both runs
    _assert_no_machine_path(out, workdir)

    # from another folder the relative paths mean other files: refused, exit 2
    other = workdir / "data" / "sub"
    monkeypatch.chdir(other)
    assert cli_main(["-q", "batch", "*.fits", "-w", "1", "-o", str(out)]) == 2
    assert "another working folder" in capsys.readouterr().err
    # absolute inputs may be given from anywhere
    assert cli_main(["-q", "batch", str(workdir / "data" / "sub"), "--task", "measure", "-w", "1",
                     "-o", str(workdir / "out_abs")]) == 0
    abs_objects = read_table(workdir / "out_abs" / "objects.ecsv")
    assert all(Path(p).is_absolute() for p in abs_objects["input_file"])


def test_batchrun_library_keeps_relative_keys(workdir, monkeypatch, tmp_path):
    monkeypatch.chdir(workdir)
    files = ["data/sub/../" + p.name for p in sorted(Path("data").glob("SIM*.fits"))]
    with BatchRun(files + [str(workdir / f) for f in files], tmp_path / "o",
                  task="inventory", workers=1) as run:
        assert run.inputs == [str(Path(f)) for f in files]
        run.prepare()
        run.execute()
        run.merge(formats=("ecsv",))
    t = Table.read(tmp_path / "o" / "objects.ecsv")
    assert list(t["input_file"]) == [str(Path(f)) for f in files]
    assert os.path.isfile(t["input_file"][0])


# ------------------------------------------------------------------ in-memory targets
def _bad_targets() -> list[tuple[Table, str]]:
    return [
        (Table({"name": ["a", "a"], "z": [0.01, 0.02]}), "appears 2 times with different z"),
        (Table({"name": ["a", "b"], "z": ["0.01", "abc"]}), "column 'z' row 2: 'abc' is not a number"),
        (Table({"name": ["a", "b"], "z": [0.01, -0.5]}), "row 2: negative redshift"),
        (Table({"z": [0.01]}), "missing required column.*'name'"),
        (Table({"name": ["a"], "z": [0.01], "ra": ["nonsense"], "dec": ["+1:00:00"]}),
         "column 'ra' row 1: cannot read"),
    ]


@pytest.mark.parametrize("case", range(5))
def test_in_memory_targets_are_validated_like_files(case, workdir, monkeypatch, tmp_path):
    import xmpspec
    from xmpspec.workflows.measure import load_targets, measure_to_tables
    table, word = _bad_targets()[case]
    with pytest.raises(InputError, match=word):
        load_targets(table)
    # the same check as for a file
    path = tmp_path / "targets.ecsv"
    table.write(path)
    with pytest.raises(InputError, match=word):
        load_targets(path)
    monkeypatch.chdir(workdir)
    spectra = [str(p) for p in sorted(Path("data").glob("SIM*.fits"))]
    # one error before any spectrum is read (a missing spectrum would be a failure of its own)
    for call in (lambda: xmpspec.measure(["missing.fits", *spectra], targets=table),
                 lambda: measure_to_tables(["missing.fits", *spectra], tmp_path / "m", table),
                 lambda: BatchRun(spectra, tmp_path / "b", targets=table)):
        with pytest.raises(InputError, match=word) as err:
            call()
        assert "missing.fits" not in str(err.value)
    assert not (tmp_path / "m" / "objects.ecsv").exists()
