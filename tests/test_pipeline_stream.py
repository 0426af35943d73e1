"""Streaming measurement (pipeline.measure_to_tables, tablestream) and the shared code paths.

`xmpspec measure`, the analysis chain and the night chain of `xmpspec run`
measure through the same functions; these tests check that streaming through
Parquet parts gives the same tables as measuring in memory, that the
streamed ECSV/FITS writer gives the files write_table gives, that target
matching (name, then position) is the same everywhere, and that memory does
not grow with the number of spectra.
"""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import astropy.units as u
import numpy as np
import pytest
from astropy.table import MaskedColumn, Table, vstack

from xmpspec.config import load_config
from xmpspec.errors import InputError
from xmpspec.io import write_spectrum
from xmpspec.simulate import simulate_spectrum
from xmpspec.tableio import read_provenance, read_table, write_table

CFG = load_config(search_cwd=False)


# --------------------------------------------------------------------------- tablestream
def _chunk(n, k, rng):
    t = Table()
    t["object"] = [f"O{k}-{i}" * (1 + i % 3) for i in range(n)]        # widths differ by chunk
    t["flux"] = MaskedColumn(rng.normal(size=n), mask=rng.random(n) < 0.3,
                             unit=u.erg / u.s / u.cm ** 2, description="line flux")
    t["state"] = MaskedColumn(["detected", "upper_limit", "not_covered"][k % 3:k % 3 + 1] * n,
                              mask=[i % 4 == 0 for i in range(n)])
    t["limit"] = MaskedColumn(rng.random(n) < 0.5,
                              mask=(rng.random(n) < 0.4) if k == 1 else np.zeros(n, bool))
    t["n"] = np.arange(n) + 100 * k
    return t


def _assert_same(a, b):
    assert a.colnames == b.colnames
    for c in a.colnames:
        assert np.array_equal(np.ma.getmaskarray(a[c]), np.ma.getmaskarray(b[c])), c
        fill = "" if a[c].dtype.kind in "US" else 0
        assert np.array_equal(np.ma.filled(a[c], fill), np.ma.filled(b[c], fill)), c
        assert a[c].unit == b[c].unit, c


def test_write_table_stream_equals_write_table(tmp_path):
    from xmpspec.arrowio import arrow_to_table, table_to_arrow
    from xmpspec.tablestream import write_table_stream
    rng = np.random.default_rng(3)
    chunks = [_chunk(5, 0, rng), _chunk(2, 3, rng)[:0], _chunk(7, 1, rng), _chunk(3, 2, rng)]
    prov = {"step": "measure", "inputs": ["a.fits", "b.fits"], "xmpspec_version": "test"}
    write_table(vstack(chunks), tmp_path / "ref", provenance=prov, formats=("ecsv", "fits"))
    files = write_table_stream(lambda: (arrow_to_table(table_to_arrow(c)) for c in chunks),
                               tmp_path / "new", provenance=prov)
    assert [f.name for f in files] == ["new.ecsv", "new.fits"]
    for ext in ("ecsv", "fits"):
        ref, new = read_table(tmp_path / f"ref.{ext}"), read_table(tmp_path / f"new.{ext}")
        assert len(new) == 15
        _assert_same(ref, new)
        assert read_provenance(tmp_path / f"new.{ext}")["inputs"] == prov["inputs"]
    from astropy.io import fits
    with fits.open(tmp_path / "new.fits") as hdul:
        hdul.verify("exception")
        assert hdul[1].header["XMPMBOOL"] == "limit"
        assert [h.name for h in hdul] == ["PRIMARY", "", "PROVENANCE"]
    # no files left behind by the atomic writes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.ecsv", "new.fits", "ref.ecsv",
                                                          "ref.fits"]


def test_write_table_stream_rejects_mismatched_chunks(tmp_path):
    from xmpspec.tablestream import write_table_stream
    rng = np.random.default_rng(4)
    a, b = _chunk(3, 0, rng), _chunk(3, 1, rng)
    b.rename_column("n", "m")
    for fmt in ("ecsv", "fits"):
        with pytest.raises(ValueError, match="differ"):
            write_table_stream(lambda: iter([a, b]), tmp_path / "x", formats=(fmt,))
    with pytest.raises(ValueError, match="no rows"):
        write_table_stream(lambda: iter([a[:0]]), tmp_path / "y")
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- measurement
@pytest.fixture(scope="module")
def night_files(tmp_path_factory):
    """Five spectra; targets: two by name, one by position only, one absent, one n2_cnn masked."""
    d = tmp_path_factory.mktemp("stream")
    paths = []
    for i in range(5):
        spec, _ = simulate_spectrum("goodman_400", z=0.02 + 0.004 * i, n2=-1.2 - 0.2 * i,
                                    halpha_flux=400.0, seed=70 + i, name=f"OBS{i}",
                                    ra=150.0 + i, dec=2.0)
        spec.redshift = None
        p = d / f"spec{i}.fits"
        write_spectrum(spec, p)
        paths.append(p)
    targets = Table({"name": ["OBS0", "OBS1", "FAR2", "OBS4"],
                     "z": [0.020, 0.024, 0.028, 0.036],
                     "ra": [150.0, 151.0, 152.0 + 0.6 / 3600, 154.0], "dec": [2.0] * 4})
    targets["n2_cnn"] = MaskedColumn([-1.3, -1.5, -1.6, -2.0], mask=[False, True, False, False])
    tpath = d / "targets.ecsv"
    targets.write(tpath)
    return paths, tpath


def test_streamed_tables_equal_in_memory_tables(night_files, tmp_path):
    from xmpspec.lines.measure import lines_table, objects_table
    from xmpspec.workflows.measure import measure_spectra, measure_to_tables
    paths, tpath = night_files
    ms, failures, _ = measure_spectra(paths, tpath, CFG)
    assert not failures
    ref_lines, ref_objs = Table(lines_table(ms)), Table(objects_table(ms))
    for chunk in (1, 100):
        out = tmp_path / f"c{chunk}"
        run = measure_to_tables(paths, out, tpath, CFG, chunk_size=chunk)
        assert run.n_measured == 5 and not run.failures
        assert run.n_parts == -(-5 // chunk)
        assert sorted(p.name for p in out.iterdir()) == ["lines.ecsv", "lines.fits",
                                                         "objects.ecsv", "objects.fits"]
        for ext in ("ecsv", "fits"):
            objs, lines = read_table(out / f"objects.{ext}"), read_table(out / f"lines.{ext}")
            assert list(objs["name"]) == ["OBS0", "OBS1", "FAR2", "OBS3", "OBS4"]
            assert len(lines) == len(ref_lines) >= 5 * 18
            assert np.allclose(np.ma.filled(lines["flux"], np.nan),
                               np.ma.filled(ref_lines["flux"].value, np.nan), equal_nan=True)
            assert list(lines["state"]) == list(ref_lines["state"])
            for col in ("z", "n2", "n2_err", "f_ha"):
                assert np.allclose(objs[col], ref_objs[col]), col
            # carried-through column: float everywhere, masked where the row has no value
            # (OBS1: masked in the table; OBS3: no targets row), whatever the chunking
            assert objs["n2_cnn"].dtype.kind == "f", (chunk, ext)
            assert list(np.ma.getmaskarray(objs["n2_cnn"])) == [False, True, False, True, False]
            assert objs["n2_cnn"][2] == pytest.approx(-1.6)
        prov = read_provenance(out / "objects.fits")
        assert prov["step"] == "measure" and str(tpath) in prov["inputs"]


def test_target_matching_one_code_path(night_files):
    """Name (object or file stem) first, then position; z from the table; note otherwise."""
    from xmpspec.workflows.measure import measure_path
    paths, tpath = night_files
    from xmpspec.lines.targets import read_targets
    targets = read_targets(tpath)
    m = measure_path(paths[2], targets, CFG)          # by position (0.6 arcsec)
    assert m.name == "FAR2" and m.row["z_source"] == "targets"
    m = measure_path(paths[3], targets, CFG)          # no row
    assert m.name == "OBS3" and "no targets row" in m.row["notes"]
    assert m.row["z_source"] == "lines"
    m = measure_path(paths[0], targets, CFG, z=0.02)  # the argument wins over the table
    assert m.row["z_source"] == "argument" and m.row["n2_cnn"] == pytest.approx(-1.3)


def test_failures_reported_and_on_failure_can_stop(night_files, tmp_path):
    from xmpspec.workflows.measure import measure_to_tables
    paths, _ = night_files
    bad = tmp_path / "broken.fits"
    bad.write_bytes(b"SIMPLE  = nonsense")
    seen = []
    run = measure_to_tables([paths[0], bad], tmp_path / "o", config=CFG,
                            on_failure=lambda p, e: seen.append(p))
    assert run.n_measured == 1 and seen == [str(bad)] and "broken.fits" in run.failures[0][1]
    assert len(read_table(run.objects)) == 1

    def stop(p, e):
        raise e
    with pytest.raises(InputError, match="broken.fits"):
        measure_to_tables([bad], tmp_path / "o2", config=CFG, on_failure=stop)
    assert not (tmp_path / "o2").exists()                 # nothing written, no parts left
    run = measure_to_tables([bad], tmp_path / "o3", config=CFG)
    assert run.n_measured == 0 and run.objects is None


def test_night_measure_and_derive_step(night_files, tmp_path):
    """`xmpspec run`'s measure/derive step: the same path, ECSV+FITS, position matching."""
    from xmpspec.reduce.pipeline import NightRun
    from xmpspec.workflows.night import measure_and_derive
    paths, tpath = night_files
    run = NightRun(setup=None, results=[], failures={})
    plugin = SimpleNamespace(name="goodman", setup_name="goodman_400")
    bad = tmp_path / "broken.fits"
    bad.write_bytes(b"SIMPLE  = nonsense")
    measure_and_derive(run, [paths[2], paths[3], bad], read_table(tpath), tmp_path, plugin,
                        "n1", None)
    assert run.measurements == tmp_path / "measurements.ecsv"
    assert run.derived == tmp_path / "derived.ecsv"
    for stem in ("measurements", "lines", "derived"):
        for ext in ("ecsv", "fits"):
            assert (tmp_path / f"{stem}.{ext}").is_file(), (stem, ext)
    meas = read_table(tmp_path / "measurements.fits")
    assert list(meas["name"]) == ["FAR2", "OBS3"]        # FAR2 matched by position
    assert list(meas["setup"]) == ["goodman_400"] * 2
    assert read_provenance(tmp_path / "measurements.ecsv")["extra"]["night"] == "n1"
    derived = read_table(tmp_path / "derived.ecsv")
    assert "oh_n2" in derived.colnames and len(derived) == 2
    assert len(run.problems) == 1 and "broken.fits" in run.problems[0]
    # the night's report (xmpspec run's last step) from what the night wrote
    from xmpspec.workflows.night import write_night_report
    write_night_report(run, tmp_path, CFG)
    assert run.report == tmp_path / "report.html" and len(run.problems) == 1
    page = run.report.read_text(encoding="utf-8")
    assert "FAR2" in page and "OBS3" in page
    empty = NightRun(setup=None, results=[], failures={})
    (tmp_path / "empty").mkdir()
    write_night_report(empty, tmp_path / "empty", CFG)   # nothing to report: a problem
    assert empty.report is None and "report failed" in empty.problems[0]
    # a targets table without names is a reported problem, not a crash
    run2 = NightRun(setup=None, results=[], failures={})
    measure_and_derive(run2, [paths[0]], Table({"z": [0.02]}), tmp_path / "n2", plugin,
                        "n2", None)
    assert run2.measurements is None and "name" in run2.problems[0]


# --------------------------------------------------------------------------- inputs
def test_expand_inputs(tmp_path):
    from xmpspec.cli.common import expand_inputs
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("d/b.fits", "d/sub/a.fits", "d/notes.txt", "c.fits", "x.ecsv"):
        (tmp_path / name).write_text("x")
    lst = tmp_path / "list.txt"
    lst.write_text("# spectra\nc.fits\nx.ecsv\n")
    got = expand_inputs([tmp_path / "d", str(tmp_path / "*.fits"), lst, tmp_path / "c.fits"])
    assert got == sorted({tmp_path / "d" / "b.fits", tmp_path / "d" / "sub" / "a.fits",
                          tmp_path / "c.fits", tmp_path / "x.ecsv"})
    assert expand_inputs([tmp_path / "x.ecsv", tmp_path / "c.fits"], sort=False) == \
        [tmp_path / "x.ecsv", tmp_path / "c.fits"]
    with pytest.raises(InputError, match="missing.fits: file not found"):
        expand_inputs([tmp_path / "c.fits", tmp_path / "missing.fits"])
    lst.write_text("c.fits\ngone.fits\n")
    with pytest.raises(InputError, match="gone.fits"):
        expand_inputs([lst])
    with pytest.raises(InputError, match="matches no file"):
        expand_inputs([str(tmp_path / "*.nothing")])
    # a .txt that is not a list (an ASCII spectrum with a header line) is an input itself
    ascii_spec = tmp_path / "spec.txt"
    ascii_spec.write_text("wave flux err\n6500 1.0 0.1\n")
    assert expand_inputs([ascii_spec]) == [ascii_spec]


def test_measure_cli_folder_input_and_missing_input(night_files, tmp_path, capsys):
    from xmpspec.cli import main
    paths, tpath = night_files
    out = tmp_path / "out"
    # the folder holds the five spectra (FITS) and the targets table (not a spectrum)
    assert main(["-q", "measure", str(paths[0].parent), "-t", str(tpath), "-o", str(out)]) == 0
    assert len(read_table(out / "objects.ecsv")) == 5
    code = main(["measure", str(paths[0]), str(tmp_path / "nope.fits"), "-o", str(out)])
    assert code == 2 and "nope.fits" in capsys.readouterr().err


# --------------------------------------------------------------------------- memory
def _peak_memory_mb(files, out, cfg_path):
    """(peak of tracemalloc-traced memory, peak RSS) of `xmpspec measure` in a fresh process.

    tracemalloc counts every Python object and numpy buffer allocated after
    the start (imports included, the same for every run), without the slack
    of freed memory that hides growth in the RSS of small runs.
    """
    code = ("import resource, sys, tracemalloc\ntracemalloc.start()\n"
            "from xmpspec.cli import main\nrc = main(sys.argv[1:])\n"
            "print('PEAK', tracemalloc.get_traced_memory()[1], "
            "'MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
            "sys.exit(rc)\n")
    r = subprocess.run([sys.executable, "-c", code, "-q", "--config", str(cfg_path), "measure",
                        *map(str, files), "-o", str(out)], capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    words = r.stdout.split()
    return (int(words[words.index("PEAK") + 1]) / 2 ** 20,
            int(words[words.index("MAXRSS_KB") + 1]) / 1024.0)


@pytest.mark.slow
def test_measure_memory_does_not_grow_with_spectra(tmp_path):
    """Peak memory of `xmpspec measure` on N and 4N spectra (chunks of 10): no growth.

    Measured when written (20 -> 80 spectra): streaming +0.3 MB traced (+3 MB
    RSS); the previous implementation, which kept every result for a final
    in-memory table (1.7 GB peak on 10,000 spectra), +7.3 MB traced (+26 MB RSS),
    so both assertions fail on it.
    """
    n = 20
    files = []
    for i in range(4 * n):
        # around Halpha only (cheap to simulate and fit); every catalogue line still
        # gives a row of the per-line table (not covered), which is what could grow
        spec, _ = simulate_spectrum("sdss", z=0.01 + 0.0002 * i, n2=-1.6, halpha_flux=300.0,
                                    seed=1000 + i, name=f"M{i:04d}", wave_range=(6400, 6900))
        files.append(tmp_path / f"M{i:04d}.fits")
        write_spectrum(spec, files[-1])
    cfg = tmp_path / "xmpspec.toml"
    cfg.write_text("[batch]\nchunk_size = 10\n")
    traced1, rss1 = _peak_memory_mb(files[:n], tmp_path / "o1", cfg)
    traced4, rss4 = _peak_memory_mb(files, tmp_path / "o4", cfg)
    print(f"{n} spectra: traced peak {traced1:.1f} MB, RSS {rss1:.0f} MB; {4 * n}: "
          f"{traced4:.1f} MB, {rss4:.0f} MB")
    assert len(read_table(tmp_path / "o4" / "objects.fits")) == 4 * n
    assert len(read_table(tmp_path / "o4" / "lines.fits")) >= 4 * n * 18
    assert traced4 - traced1 < 5.0
    assert rss4 - rss1 < 20.0
