"""No machine paths in PypeIt files: relative data paths, read from the file's own folder.

``xmpspec setup`` writes the data block's ``path`` and ``# xmpspec: raw_dir``
relative to the PypeIt file's folder; ``xmpspec reduce`` resolves them against
that folder (not the working folder, as PypeIt would) and hands PypeIt a copy
in the reduction folder. Absolute paths (PypeIt's own ``pypeit_setup``, hand
edits) keep working. PypeIt does not reduce anything here (its class is
replaced by a stand-in that records what it was given); the Goodman night of
``tests/test_reduce_nights.py`` checks a full night.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from astropy.table import Table

from xmpspec.errors import InputError, XmpspecError
from xmpspec.reduce import pypeitfile
from xmpspec.reduce.pypeitfile import (
    read_pypeit_file,
    read_xmpspec_settings,
    relative_path,
    resolve_data_paths,
    write_run_copy,
)

KAST = "data/real_nights/shane_kast_blue_2015-05-20"
FRAMES = ("b1.fits.gz", "b11.fits.gz", "b27.fits.gz")


@pytest.fixture(scope="module", autouse=True)
def pypeit_offline(shared_dir, tmp_path_factory):
    """PypeIt importable offline: astropy's site list in a private cache (from ../shared)."""
    from astropy.utils.data import conf

    from xmpspec.reduce.cache import import_reference_data
    with pytest.MonkeyPatch.context() as mp, conf.set_temp("allow_internet", False):
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        import_reference_data([shared_dir / "astropy-data"])
        import pypeit.inputfiles  # noqa: F401
        import pypeit.pypeit  # noqa: F401
        yield


def _pypeit_file(path: Path, data_paths, frames=FRAMES) -> Path:
    """A PypeIt file written by PypeIt's own writer (as ``xmpspec setup`` does)."""
    from pypeit.inputfiles import PypeItFile
    tbl = Table({"filename": list(frames), "frametype": ["arc,tilt", "pixelflat", "science"],
                 "target": ["Arc", "Flat", "J1217p3905"], "exptime": [30.0, 15.0, 1200.0]})
    cfg = ["[rdx]", "    spectrograph = shane_kast_blue", "[reduce]", "    [[extraction]]",
           "        boxcar_radius = 2.0"]
    setup = {"Setup A": {"dispname": "600/4310", "dichroic": "d55"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    PypeItFile(cfg, list(data_paths), tbl, setup).write(str(path))
    path.write_text("# xmpspec: instrument = goodman\n# xmpspec: night = n1\n"
                    + path.read_text())
    return path


@pytest.fixture
def project(tmp_path):
    """proj/raw/n1 with three (empty) frames and a PypeIt file with a relative path."""
    proj = tmp_path / "proj"
    raw = proj / "raw" / "n1"
    raw.mkdir(parents=True)
    for f in FRAMES:
        (raw / f).write_bytes(b"")
    pf = _pypeit_file(proj / "pypeit_files" / "goodman" / "n1" / "kast_A.pypeit",
                      ["../../../raw/n1"])
    return proj, raw, pf


def test_relative_path_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert relative_path("raw/n1", "pypeit_files/goodman/n1") == ("../../../raw/n1", True)
    assert relative_path(tmp_path / "raw", tmp_path / "a") == ("../raw", True)
    # read back against the file's folder, spelled as the file was given
    assert resolve_data_paths(["../../../raw/n1"], "pypeit_files/goodman/n1/x.pypeit") \
        == ["raw/n1"]
    assert resolve_data_paths(["../../../raw/n1"], tmp_path / "p" / "q" / "r" / "x.pypeit") \
        == [str(tmp_path / "raw" / "n1")]
    assert resolve_data_paths(["/data/raw/"], "p/x.pypeit") == ["/data/raw"]   # absolute kept
    assert resolve_data_paths([], "p/x.pypeit") == ["p"]                       # no path lines
    assert resolve_data_paths([], "x.pypeit") == ["."]

    def no_relpath(*_):      # Windows: another drive
        raise ValueError("path is on mount 'D:', start on mount 'C:'")
    monkeypatch.setattr(pypeitfile.os.path, "relpath", no_relpath)
    assert relative_path("raw/n1", "pypeit_files") == (str(tmp_path / "raw" / "n1"), False)


def test_hand_written_file_with_pypeit_convention(project, monkeypatch, caplog):
    """A path relative to the working folder (PypeIt's convention) is still read, with a warning."""
    proj, raw, _ = project
    pf = _pypeit_file(proj / "pypeit_files" / "by_hand" / "kast_A.pypeit", ["raw/n1"])
    monkeypatch.chdir(proj)
    with caplog.at_level("WARNING", logger="xmpspec.reduce"):
        got = read_pypeit_file(pf.relative_to(proj))
    assert [os.path.abspath(f) for f in got.filenames] == [str(raw / f) for f in FRAMES]
    assert "working folder" in caplog.text
    # the file's own folder wins when both exist
    (pf.parent / "raw" / "n1").mkdir(parents=True)
    for f in FRAMES:
        (pf.parent / "raw" / "n1" / f).write_bytes(b"")
    got = read_pypeit_file(pf.relative_to(proj))
    assert [os.path.abspath(f) for f in got.filenames] \
        == [str(pf.parent / "raw" / "n1" / f) for f in FRAMES]


def test_relative_file_found_from_any_working_folder(project, tmp_path, monkeypatch):
    from pypeit.inputfiles import PypeItFile
    proj, raw, pf = project
    text = pf.read_text()
    assert " path ../../../raw/n1\n" in text and str(tmp_path) not in text
    for cwd, given in ((proj, pf.relative_to(proj)), (tmp_path, pf.relative_to(tmp_path)),
                       (raw, pf), (pf.parent, Path(pf.name))):
        monkeypatch.chdir(cwd)
        got = read_pypeit_file(given)
        assert [os.path.abspath(f) for f in got.filenames] == [str(raw / f) for f in FRAMES], cwd
    # PypeIt alone reads the relative path from the working folder: from the project root
    # it does not find the frames; that is why reduce hands it a resolved copy
    monkeypatch.chdir(proj)
    with pytest.raises(Exception, match="does not exist"):
        PypeItFile.from_file(str(pf.relative_to(proj))).filenames  # noqa: B018


@pytest.mark.parametrize("cwd", ["proj", "tmp"])
def test_run_copy_is_the_file_with_resolved_paths(project, tmp_path, monkeypatch, cwd):
    from pypeit.inputfiles import PypeItFile
    proj, raw, pf = project
    here = proj if cwd == "proj" else tmp_path
    monkeypatch.chdir(here)
    given = pf.relative_to(here)
    resolved = read_pypeit_file(given)
    dest = Path("redux") / pf.name
    dest.parent.mkdir()
    write_run_copy(given, dest, resolved.file_paths)
    text = dest.read_text()
    assert str(tmp_path) not in text          # relative to the working folder
    assert f" path {os.path.relpath(raw, here)}\n" in text and text.count(" path ") == 1
    copy = PypeItFile.from_file(str(dest))
    orig = PypeItFile.from_file(str(pf))
    assert [os.path.abspath(f) for f in copy.filenames] == [str(raw / f) for f in FRAMES]
    assert copy.cfg_lines == orig.cfg_lines and copy.setup == orig.setup
    full = {"max_lines": -1, "max_width": -1}
    assert copy.data.pformat(**full) == orig.data.pformat(**full)
    # the xmpspec lines are kept; the first line names the file it copies
    assert read_xmpspec_settings(dest) == read_xmpspec_settings(pf)
    assert text.splitlines()[0].startswith(f"# xmpspec: the copy of {given} ")
    no_block = tmp_path / "nodata.pypeit"
    no_block.write_text("[rdx]\n    spectrograph = shane_kast_blue\n")
    with pytest.raises(InputError, match="data read"):
        write_run_copy(no_block, tmp_path / "c.pypeit", ["raw"])


def test_absolute_hand_written_file_still_accepted(project, tmp_path, monkeypatch):
    """A file of PypeIt's pypeit_setup (absolute path) and one without a path line."""
    proj, raw, _ = project
    absolute = _pypeit_file(tmp_path / "elsewhere" / "hand.pypeit", [str(raw) + "/"])
    monkeypatch.chdir(proj)
    got = read_pypeit_file(absolute)
    assert got.file_paths == [str(raw)]
    assert got.filenames == [str(raw / f) for f in FRAMES]
    write_run_copy(absolute, tmp_path / "copy.pypeit", got.file_paths)
    assert f" path {raw}\n" in (tmp_path / "copy.pypeit").read_text()
    # no path line: the frames sit beside the file
    beside = _pypeit_file(raw / "beside.pypeit", [])
    monkeypatch.chdir(tmp_path)
    assert [os.path.abspath(f) for f in read_pypeit_file(beside.relative_to(tmp_path)).filenames] \
        == [str(raw / f) for f in FRAMES]


def test_reduce_runs_pypeit_on_the_resolved_copy(project, tmp_path, monkeypatch):
    """reduce_pypeit_file from another working folder: PypeIt gets the copy, outputs as given."""
    import pypeit.pypeit
    from pypeit.inputfiles import PypeItFile

    from xmpspec.reduce import cache, runner
    proj, raw, pf = project
    seen = {}

    class StandIn:
        def __init__(self, pypeit_file, **kwargs):
            seen["file"] = pypeit_file
            seen["redux"] = kwargs["redux_path"]
            seen["frames"] = [os.path.abspath(f)
                              for f in PypeItFile.from_file(pypeit_file).filenames]
            raise RuntimeError("stand-in: no reduction")

    monkeypatch.setattr(pypeit.pypeit, "PypeIt", StandIn)
    monkeypatch.setattr(runner, "prepare_pypeit", lambda plugin: None)
    monkeypatch.setattr(cache, "ensure_sites", lambda *a, **k: None)
    monkeypatch.setattr(cache, "ensure_reference_data", lambda *a, **k: [])
    monkeypatch.chdir(tmp_path)
    given = pf.relative_to(tmp_path)
    with pytest.raises(XmpspecError, match="stand-in") as err:
        runner.reduce_pypeit_file(given, root="proj")
    redux = Path("proj") / "reductions" / "goodman" / "n1" / "kast_A"
    assert seen["file"] == str(redux / "kast_A.pypeit")
    assert seen["redux"] == str(redux)
    assert seen["frames"] == [str(raw / f) for f in FRAMES]
    assert str(tmp_path) not in err.value.args[0] and str(tmp_path) not in str(err.value.source)
    assert str(tmp_path) not in (redux / "kast_A.pypeit").read_text()
    # frames missing: named, with the rule
    (raw / FRAMES[0]).unlink()
    with pytest.raises(InputError, match="read from the PypeIt file's folder"):
        runner.reduce_pypeit_file(given, root="proj")


def test_setup_writes_relative_paths(shared_dir, tmp_path, monkeypatch):
    """setup_night on the real Kast night (linked into a project): relative paths only."""
    from xmpspec.reduce.pypeitfile import default_night_name, setup_night
    proj = tmp_path / "proj"
    (proj / "raw").mkdir(parents=True)
    (proj / "raw" / "kast").symlink_to(shared_dir / KAST, target_is_directory=True)
    monkeypatch.chdir(proj)
    assert default_night_name("raw/kast/") == "kast"        # the link's name, as given
    res = setup_night("raw/kast", "shane_kast_blue", night="n1", root=".")
    assert [str(f) for f in res.pypeit_files] == ["pypeit_files/shane_kast_blue/n1/"
                                                  "shane_kast_blue_A.pypeit"]
    pf = res.pypeit_files[0]
    text = pf.read_text()
    assert " path ../../../raw/kast\n" in text
    assert read_xmpspec_settings(pf)["raw_dir"] == "../../../raw/kast"
    for f in (pf, res.night_log_path):
        body = f.read_text()
        assert str(tmp_path) not in body and str(shared_dir) not in body, f
        assert str(shared_dir.resolve()) not in body, f
    monkeypatch.chdir(tmp_path)
    frames = read_pypeit_file(Path("proj") / pf).filenames
    assert len(frames) >= 8 and all(Path(f).is_file() for f in frames)
    assert all(f.startswith("proj/raw/kast/") for f in frames)
