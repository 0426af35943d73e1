"""Workflows remove the temporary files that a run killed mid-write left beside their outputs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from xmpspec.simulate.demo import simulate_demo_night
from xmpspec.workflows.chain import run_analysis_chain
from xmpspec.workflows.leftovers import clean_leftovers, output_stem
from xmpspec.workflows.measure import derive_objects, measure_to_tables

# a real kill in the middle of an atomic write: the temporary file stays behind
_KILLED_WRITE = """
import os, sys
from xmpspec.tableio import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    open(tmp, "w").write("half a table")
    os._exit(9)
"""


def _killed_write(target):
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", _KILLED_WRITE, str(target)], check=False)
    left = [p for p in target.parent.iterdir() if p.name.startswith(f".{target.name}.")
            and ".part" in p.name]
    assert left, "the killed write left no temporary file"
    return left[0]


def _hidden(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) \
        if folder.is_dir() else []


def test_output_stem():
    assert output_stem("o/derived") == (output_stem("o/derived.ecsv")[0], "derived")
    assert output_stem("o/derived.ecsv")[1] == "derived"
    assert output_stem("o/objects.derived.fits")[1] == "objects.derived"
    assert output_stem("o/report.html")[1] == "report"


def test_clean_leftovers_removes_only_the_outputs_temporaries(tmp_path):
    mine = _killed_write(tmp_path / "derived.ecsv")
    other = _killed_write(tmp_path / "other.ecsv")
    (tmp_path / ".keep").write_text("not a temporary")
    assert clean_leftovers([tmp_path / "derived", tmp_path / "missing" / "x"]) == 1
    assert not mine.exists() and other.exists() and (tmp_path / ".keep").exists()
    assert not (tmp_path / ".xmpspec.lock").exists()
    assert not (tmp_path / "missing").exists()


def test_clean_leftovers_leaves_a_folder_another_run_holds(tmp_path):
    from xmpspec.engine.manifest import OutputLock
    left = _killed_write(tmp_path / "derived.ecsv")
    code = ("import sys, time; from xmpspec.engine.manifest import OutputLock\n"
            "lock = OutputLock(sys.argv[1], 'batch').acquire(); print('held', flush=True)\n"
            "time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert clean_leftovers([tmp_path / "derived"]) == 0
        assert left.exists()
    finally:
        holder.kill()
        holder.wait()
    with OutputLock(tmp_path, "test"):       # the kernel released the killed holder's lock
        pass
    assert clean_leftovers([tmp_path / "derived"]) == 1 and not left.exists()


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    return simulate_demo_night(tmp_path_factory.mktemp("night"), seed=5, n_targets=2,
                               setups=("goodman_400",), fmt="ecsv")


def test_measure_and_derive_clean_their_leftovers(night, tmp_path):
    out = tmp_path / "m"
    stale = [_killed_write(out / "lines.fits"), _killed_write(out / "objects.ecsv")]
    run = measure_to_tables(night.spectra, out, night.targets)
    assert run.n_measured == 2
    assert not any(p.exists() for p in stale)
    assert _hidden(out) == []
    derived_stale = _killed_write(tmp_path / "d" / "derived.fits")
    path, table = derive_objects(run.objects, tmp_path / "d" / "derived")
    assert path.exists() and len(table) == 2
    assert not derived_stale.exists() and _hidden(tmp_path / "d") == []


@pytest.mark.slow
def test_chain_removes_leftovers_of_a_killed_chain(night, tmp_path):
    out = tmp_path / "chain"
    stale = [_killed_write(out / "derived.ecsv"), _killed_write(out / "measure" / "objects.ecsv"),
             _killed_write(out / "tables" / "line_fluxes.tex")]
    (out / "tables" / "line_fluxes.tex").write_text("an earlier run's table")
    unrelated = _killed_write(out / "notes.txt")      # not an output of the chain: kept
    res = run_analysis_chain(night.spectra, night.targets, night.selection, out,
                             observing_log=night.observing_log, figure_formats=("png",))
    assert len(res.measurements) == 2 and not res.problems
    assert not any(p.exists() for p in stale)
    assert unrelated.exists()
    for sub in ("measure", "comparison", "tables", "figures"):
        assert _hidden(out / sub) == [], sub
