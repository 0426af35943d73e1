"""`xmpspec setup` / `reduce` on bad or incomplete input (no PypeIt reduction runs here)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from _pypeit_env import offline_env
from astropy.io import fits

from xmpspec.reduce.pypeitfile import parse_windows, pypeit_cfg_lines, read_xmpspec_settings
from xmpspec.reduce.registry import get_instrument

pytestmark = pytest.mark.slow


def _xmp(args, env, timeout=900):
    return subprocess.run(["xmpspec", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def env(shared_dir, tmp_path_factory):
    return offline_env(tmp_path_factory.mktemp("env"), shared_dir)


@pytest.fixture(scope="module")
def night(env, tmp_path_factory):
    """A Goodman night without arc and without standard, plus foreign and broken files."""
    raw = tmp_path_factory.mktemp("raw")
    code = ("from xmpspec.simulate.night_goodman import simulate_night\n"
            "from xmpspec.simulate.night import NightPlan\n"
            f"simulate_night({str(raw)!r}, seed=1, plan=NightPlan(n_arc=0, n_standard=0, "
            "n_bias=0, n_science=1))\n")
    r = subprocess.run(["python", "-c", code], env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    # a frame of another instrument and a truncated file
    h = fits.PrimaryHDU(np.zeros((10, 10), np.int16))
    h.header["INSTRUME"] = "IDS"
    fits.HDUList([h, fits.ImageHDU(np.zeros((10, 10), np.int16))]).writeto(raw / "ids_01.fits.fz")
    (raw / "broken.fits.fz").write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    # an uncompressed copy of a Goodman frame: PypeIt would skip it silently
    sci = sorted(raw.glob("*science*.fits.fz"))[0]
    with fits.open(sci) as hd:
        fits.HDUList([fits.PrimaryHDU(header=hd[0].header),
                      fits.ImageHDU(hd[1].data, hd[1].header)]).writeto(raw / "plain.fits")
    return raw


def test_empty_folder(env, tmp_path):
    r = _xmp(["setup", str(tmp_path), "-i", "goodman", "--root", str(tmp_path)], env)
    assert r.returncode == 2
    assert "no raw FITS frames" in r.stderr and str(tmp_path.name) in r.stderr


def test_missing_folder_and_unknown_instrument(env, tmp_path):
    r = _xmp(["setup", str(tmp_path / "nope"), "-i", "goodman"], env)
    assert r.returncode == 2 and "not found" in r.stderr
    r = _xmp(["setup", str(tmp_path), "-i", "keck"], env)
    assert r.returncode == 2 and "unknown instrument" in r.stderr


def test_setup_flags_problems_and_continues(env, night, tmp_path):
    r = _xmp(["setup", str(night), "-i", "goodman", "--night", "bad", "--root", str(tmp_path),
              "--targets", str(night / "targets.csv")], env)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout + r.stderr
    out1 = " ".join(out.split())
    assert "no arc frames" in out1
    assert "no flux standard" in out1
    assert "broken.fits.fz" in out1 and "unreadable" in out1
    assert "ids_01.fits.fz" in out1 and "INSTRUME = 'IDS'" in out1
    assert "plain.fits" in out1 and ".fz" in out1
    files = list((tmp_path / "pypeit_files" / "goodman" / "bad").glob("*.pypeit"))
    assert len(files) == 1
    log = (tmp_path / "pypeit_files" / "goodman" / "bad" / "night_log.ecsv").read_text()
    assert "broken.fits.fz" in log
    settings = read_xmpspec_settings(files[0])
    assert settings["instrument"] == "goodman" and settings["extraction"] == "boxcar"
    windows = parse_windows(settings["sky_protect"])
    z = 0.0213
    assert any(lo < 6564.61 * (1 + z) < hi for lo, hi in windows)
    text = files[0].read_text()
    assert "boxcar_radius = 4.0" in text and "extr = BOX" in text


def test_reduce_preflight_names_missing_reference_files(env, night, tmp_path):
    r = _xmp(["setup", str(night), "-i", "goodman", "--night", "pre", "--root", str(tmp_path)],
             env)
    assert r.returncode == 0, r.stderr[-2000:]
    pfile = next((tmp_path / "pypeit_files" / "goodman" / "pre").glob("*.pypeit"))
    empty = dict(env)
    empty["XDG_CACHE_HOME"] = str(tmp_path / "empty_cache")
    r = _xmp(["reduce", str(pfile), "--root", str(tmp_path)], empty, timeout=300)
    assert r.returncode == 2
    msg = " ".join(r.stderr.split())
    assert "soar_goodman_blue_400_SYZY.fits" in msg and "fltt3864.dat" in msg
    assert "xmpspec cache import" in msg
    assert not (tmp_path / "reductions").exists() or not any(
        (tmp_path / "reductions").rglob("spec1d*"))


def test_reduce_rejects_bad_pypeit_file(env, tmp_path):
    bad = tmp_path / "x.pypeit"
    bad.write_text("# xmpspec: instrument = goodman\nnot a pypeit file\n")
    r = _xmp(["reduce", str(bad), "--root", str(tmp_path)], env, timeout=300)
    assert r.returncode == 2 and "x.pypeit" in r.stderr


def test_cfg_lines_follow_context():
    g = get_instrument("goodman")
    box = "\n".join(pypeit_cfg_lines(g, {"extraction": "boxcar", "sky_protect": [(1, 2)]}))
    assert "skip_optimal = True" in box and "no_local_sky = True" in box
    opt = "\n".join(pypeit_cfg_lines(g, {"extraction": "optimal", "sky_protect": []}))
    assert "skip_optimal" not in opt and "extr = OPT" in opt and "no_local_sky" not in opt




def test_generic_instrument_protects_with_wide_windows():
    """A PypeIt spectrograph without an xmpspec set-up: windows assume R = 1000."""
    from astropy.table import Table

    from xmpspec.reduce.pypeitfile import protect_windows_for_targets
    from xmpspec.reduce.registry import InstrumentPlugin
    from xmpspec.reduce.spectrographs.generic import GENERIC_RESOLUTION

    plugin = InstrumentPlugin(name="shane_kast_blue", setup_name=None,
                              pypeit_name="shane_kast_blue", generic=True)
    st = plugin.instrument_setup()
    assert st.resolution == GENERIC_RESOLUTION and st.constant == "R"
    z = 0.02
    wins = protect_windows_for_targets(Table({"name": ["g"], "z": [z]}), st)
    ha = 6564.61 * (1 + z)
    lo, hi = next((a, b) for a, b in wins if a < ha < b)
    # 3 FWHM (= 3 lambda / R) + 300 km/s on each side
    assert (hi - lo) / 2 == pytest.approx(3 * ha / GENERIC_RESOLUTION + ha * 300 / 299792.458,
                                          abs=0.02)
    # a tuned set-up keeps its own resolution
    assert get_instrument("goodman").instrument_setup().name == "goodman_400"
