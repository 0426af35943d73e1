"""`xmpspec cache import/status`: offline PypeIt and astropy reference data."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from xmpspec.errors import InputError
from xmpspec.reduce.cache import detect_kind

OFFLINE_CHECK = textwrap.dedent("""
    from astropy.utils.data import conf
    conf.allow_internet = False
    import pypeit.spectrographs
    from pypeit.spectrographs.util import load_spectrograph
    spec = load_spectrograph('soar_goodman_blue')
    from pypeit.pypeitdata import PypeItDataPaths
    from pypeit import dataPaths
    p = dataPaths.reid_arxiv.get_file_path('soar_goodman_blue_400_SYZY.fits')
    s = dataPaths.standards.get_file_path('esofil/fltt3864.dat')
    print('OK', spec.name, p.is_file(), s.is_file())
""")


def _env(tmp_path):
    env = dict(os.environ)
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env["HOME"] = str(tmp_path / "home")   # no fallback to a user's cache
    (tmp_path / "home").mkdir()
    return env


def _run(args, env):
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)


def test_detect_kind(shared_dir, tmp_path):
    assert detect_kind(shared_dir / "pypeit-data") == "pypeit"
    assert detect_kind(shared_dir / "astropy-data") == "astropy"
    with pytest.raises(InputError, match="layout not recognised"):
        detect_kind(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        detect_kind(tmp_path / "nope")


def test_import_makes_pypeit_work_offline(shared_dir, tmp_path):
    env = _env(tmp_path)
    # before the import: PypeIt cannot even be imported offline, status reports missing files
    before = _run([sys.executable, "-c", OFFLINE_CHECK], env)
    assert before.returncode != 0
    st = _run(["xmpspec", "cache", "status", "-i", "goodman"], env)
    assert st.returncode == 1 and "missing" in st.stdout

    imp = _run(["xmpspec", "cache", "import",
                str(shared_dir / "pypeit-data"), str(shared_dir / "astropy-data")], env)
    assert imp.returncode == 0, imp.stderr
    n_files = sum(1 for folder in ("pypeit-data", "astropy-data")
                  for f in (shared_dir / folder).rglob("*")
                  if f.is_file() and f.parent != shared_dir / folder
                  and not f.name.startswith(("README", "."))
                  and f.name not in ("PROVENANCE.txt", "LICENSE"))
    assert n_files >= 10
    assert f"imported {n_files} file(s)" in imp.stdout
    # the caches are the private ones under XDG_CACHE_HOME
    assert (tmp_path / "cache" / "pypeit" / "download").is_dir()
    assert (tmp_path / "cache" / "astropy" / "download").is_dir()

    after = _run([sys.executable, "-c", OFFLINE_CHECK], env)
    assert after.returncode == 0, after.stderr[-2000:]
    assert "OK soar_goodman_blue True True" in after.stdout

    st = _run(["xmpspec", "cache", "status"], env)
    assert st.returncode == 0, st.stdout
    assert "missing" not in st.stdout.replace("missing)", "")


def test_import_rejects_unknown_layout(tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "a.txt").write_text("x")
    from xmpspec.cli import main
    assert main(["cache", "import", str(tmp_path)]) == 2


def test_status_of_any_pypeit_spectrograph(shared_dir, tmp_path):
    """`cache status -i shane_kast_blue`: the files PypeIt's own parameters name."""
    env = _env(tmp_path)
    env["COLUMNS"] = "400"      # no wrapped file names in the table
    _run(["xmpspec", "cache", "import", str(shared_dir / "astropy-data")], env)
    st = _run(["xmpspec", "cache", "status", "-i", "shane_kast_blue"], env)
    out = " ".join(st.stdout.split())
    # the 600/4310 template is one grating's: optional until a night is named
    assert "shane_kast_blue_600.fits" in out and "shane_kast_blue_452.fits" in out
    assert "sky_kastb_600.fits" in out and "installed" in out
    assert st.returncode == 0, st.stdout
    night = shared_dir / "data" / "real_nights" / "shane_kast_blue_2015-05-20"
    st = _run(["xmpspec", "cache", "status", "-i", "shane_kast_blue", "--raw", str(night)], env)
    out = " ".join(st.stdout.split())
    assert st.returncode == 1
    assert "feige66_002.fits.gz" in out and "missing" in out
    _run(["xmpspec", "cache", "import", str(shared_dir / "pypeit-data")], env)
    st = _run(["xmpspec", "cache", "status", "-i", "shane_kast_blue", "--raw", str(night)], env)
    assert st.returncode == 0, st.stdout
    assert "feige66_002.fits.gz" in st.stdout.replace("\n", "")
    bad = _run(["xmpspec", "cache", "status", "-i", "keck_nope"], env)
    assert bad.returncode == 2 and "unknown instrument" in bad.stderr
