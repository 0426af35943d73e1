"""Exit codes of `xmpspec run` / `xmpspec reduce` (issue 6): 0 with warnings, 1 failures, 2 input.

PypeIt does not run here: the night's library call is replaced by a stand-in
returning what a real night returns (ReductionResult with warnings/errors).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from xmpspec.cli import main
from xmpspec.errors import InputError, XmpspecError
from xmpspec.reduce import pipeline
from xmpspec.reduce.runner import ReductionResult, TargetResult
from xmpspec.workflows import night as night_workflow


def _result(tmp_path, warnings=(), errors=()):
    r = ReductionResult(tmp_path / "soar_goodman_blue_A.pypeit", tmp_path, "goodman", "n1",
                        "soar_goodman_blue_A")
    r.targets.append(TargetResult("J1120-2000", [tmp_path / "spec1d.fits"],
                                  tmp_path / "J1120-2000.fits", 2, True, "fluxed", 12.0))
    for w in warnings:
        r.warn(w)
    for e in errors:
        r.fail(e)
    r.timings = {"pypeit_s": 1.0}
    return r


def _night(tmp_path, results, failures=None, problems=()):
    setup = SimpleNamespace(night_log=[], flags=[])
    run = pipeline.NightRun(setup, results, failures or {})
    run.problems = list(problems)
    run.timings = {"setup_s": 0.0}
    return run


@pytest.fixture
def fake_night(monkeypatch, tmp_path):
    """Make `xmpspec run` return a prepared NightRun (or raise) instead of running PypeIt."""
    box = {}

    def run_night(*args, **kwargs):
        if isinstance(box["run"], Exception):
            raise box["run"]
        return box["run"]

    monkeypatch.setattr(night_workflow, "run_night", run_night)
    monkeypatch.setattr(pipeline, "quiet_pypeit", lambda *a, **k: None)
    raw = tmp_path / "raw"
    raw.mkdir()
    return box, ["run", str(raw), "-i", "goodman", "--root", str(tmp_path)]


def test_run_exits_0_with_warnings_only(fake_night, tmp_path, capsys):
    box, args = fake_night
    box["run"] = _night(tmp_path, [_result(tmp_path, warnings=[
        "PypeIt QA page not built: no html", "no standard-star spectrum: spectra are not "
        "flux calibrated"])])
    assert main(args) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "QA page not built" in err and "warning" in err
    assert "night completed with 2 warning(s)" in err


def test_run_exits_0_when_clean(fake_night, tmp_path, capsys):
    box, args = fake_night
    box["run"] = _night(tmp_path, [_result(tmp_path)])
    assert main(args) == 0
    assert "night completed" in capsys.readouterr().out


@pytest.mark.parametrize("where", ["target", "pypeit_file", "measure"])
def test_run_exits_1_when_a_target_or_step_failed(fake_night, tmp_path, capsys, where):
    box, args = fake_night
    if where == "target":
        run = _night(tmp_path, [_result(tmp_path, warnings=["PypeIt QA page not built: x"],
                                        errors=["J1120-2000: coadd failed (ValueError: x)"])])
    elif where == "pypeit_file":
        run = _night(tmp_path, [_result(tmp_path)],
                     failures={"B.pypeit": XmpspecError("PypeIt failed: boom", "B.pypeit")})
    else:
        run = _night(tmp_path, [_result(tmp_path)],
                     problems=["J1120-2000.fits: measure failed: no lines"])
    box["run"] = run
    assert main(args) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "night completed with 1 failure(s)" in err
    assert "failed:" in err


def test_run_exits_2_on_bad_input(fake_night, tmp_path, capsys):
    box, args = fake_night
    box["run"] = InputError("no raw FITS frames", tmp_path / "raw")
    assert main(args) == 2
    assert "no raw FITS frames" in capsys.readouterr().err


def test_reduce_exit_codes(monkeypatch, tmp_path, capsys):
    """`xmpspec reduce`: 0 with warnings, 1 with a failed target or file, 2 for input errors."""
    box = {}
    monkeypatch.setattr(pipeline, "reduce_files", lambda *a, **k: box["out"])
    monkeypatch.setattr(pipeline, "quiet_pypeit", lambda *a, **k: None)
    pf = tmp_path / "soar_goodman_blue_A.pypeit"
    args = ["reduce", str(pf), "--root", str(tmp_path)]
    box["out"] = ([_result(tmp_path, warnings=["PypeIt QA page not built: x"])], {})
    assert main(args) == 0
    assert (tmp_path / "reductions" / "goodman" / "n1" / "summary.ecsv").is_file()
    box["out"] = ([_result(tmp_path, errors=["sensitivity function failed (x)"])], {})
    assert main(args) == 1
    box["out"] = ([], {str(pf): XmpspecError("PypeIt failed: boom", pf)})
    assert main(args) == 1
    box["out"] = ([], {str(pf): InputError("3 raw file(s) listed do not exist", pf)})
    assert main(args) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "raw file(s) listed do not exist" in err and "PypeIt failed: boom" in err


def test_result_keeps_failures_among_problems(tmp_path):
    r = _result(tmp_path, warnings=["w"], errors=["e"])
    assert r.problems == ["w", "e"] and r.errors == ["e"]
    assert Path(r.pypeit_file).name == "soar_goodman_blue_A.pypeit"


def test_protection_settings_from_the_pypeit_file(tmp_path):
    """`# xmpspec: sky_protect_method/radius` lines; defaults per instrument; bad values named."""
    from xmpspec.reduce.registry import get_instrument
    from xmpspec.reduce.runner import _protection_settings
    src = tmp_path / "a.pypeit"
    goodman, mage = get_instrument("goodman"), get_instrument("mage")
    assert _protection_settings({}, goodman, src) == ("refit", None)
    assert _protection_settings({}, mage, src) == ("interpolate", None)
    assert _protection_settings({"sky_protect_method": "Interpolate",
                                 "sky_protect_radius": '12"'}, goodman, src) == (
        "interpolate", 12.0)
    assert _protection_settings({"sky_protect_radius": "15 arcsec"}, goodman, src)[1] == 15.0
    for bad in ({"sky_protect_method": "flat"}, {"sky_protect_radius": "wide"},
                {"sky_protect_radius": "-3"}):
        with pytest.raises(InputError, match="a.pypeit"):
            _protection_settings(bad, goodman, src)
