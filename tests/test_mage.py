"""Magellan/MagE: raw-frame writer, geometry against PypeIt's ``magellan_mage``, frame typing.

Fast tests (seconds). PypeIt reads the frames offline from a private cache
seeded from ``../shared`` (the end-to-end night is in test_mage_night.py).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from astropy.io import fits

from xmpspec.errors import InputError
from xmpspec.simulate import night_mage as nm


@pytest.fixture(scope="module")
def offline_cache(tmp_path_factory, shared_dir):
    """Private astropy/PypeIt caches holding the shared reference data (no network)."""
    from astropy.utils.data import conf

    root = tmp_path_factory.mktemp("xdg-cache")
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(root)
    old_net = conf.allow_internet
    conf.allow_internet = False
    try:
        from xmpspec.reduce.cache import import_reference_data
        import_reference_data([shared_dir / "pypeit-data", shared_dir / "astropy-data"])
        yield root
    finally:
        conf.allow_internet = old_net
        if old is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = old


@pytest.fixture(scope="module")
def template(shared_dir):
    return nm.load_arc_template(shared_dir / "pypeit-data")


@pytest.fixture(scope="module")
def orders(template):
    return nm.build_order_models(nm.MageDetector(binning_spatial=2), template,
                                 np.random.default_rng(3))


def _write(path, exptype, obj, exptime, ra="00:00:00.00", dec="+00:00:00.0", binning=2,
           data=None):
    det = nm.MageDetector(binning_spatial=binning)
    hdr = nm.mage_header(det, exptype, obj, exptime, "2026-03-16", "01:00:00.000", ra=ra,
                         dec=dec, airmass=1.2)
    if data is None:
        data = np.full(det.raw_shape, 1000, np.float32)
    return nm.write_raw_frame(path, data, hdr)


def test_geometry_matches_pypeit(offline_cache):
    from pypeit.spectrographs.util import load_spectrograph

    spec = load_spectrograph("magellan_mage")
    assert np.array_equal(spec.orders, nm.MAGE_ORDERS)
    assert np.allclose(spec.order_spat_pos, nm.MAGE_ORDER_SPAT_POS)
    det = spec.get_detector_par(1)
    assert det.specaxis == 1 and det.specflip and not det.spatflip
    assert det.datasec[0] == "[1:1024, 1:2048]" and det.oscansec[0] == "[1:1024, 2049:2176]"
    d = nm.MageDetector(binning_spatial=2)
    assert d.raw_shape == (512, 2048 + 128) and d.binning_card == "2x1"
    assert nm.MageDetector(binning_spatial=1).raw_shape == (1024, 2176)
    with pytest.raises(InputError, match="binning"):
        nm.MageDetector(binning_spatial=3)


def test_truth_wavelengths_follow_template(template, orders):
    """The truth is a smooth echelle relation close to the template's per-order solutions."""
    assert [om.order for om in orders] == list(range(17, 5, -1))
    s = np.arange(2048)
    mlam = []
    for om in orders:
        wave, _ = template[om.order]
        disp = np.abs(np.gradient(wave))
        dev = (om.wavelength(s) - wave) / disp
        assert np.sqrt(np.mean(dev ** 2)) < 0.6, om.order
        assert np.all(np.diff(om.wavelength(s)) > 0)
        lo, hi = om.wave_range
        assert lo < hi
        mlam.append(om.order * om.wavelength(s))
    # m * lambda is a smooth (degree-4) function of the order at every pixel: its
    # fifth differences across the 12 orders vanish
    fifth = np.diff(np.array(mlam), n=5, axis=0)
    assert np.max(np.abs(fifth)) < 1e-4


def test_arc_frame_layout_orientation_and_order_positions(tmp_path, orders, offline_cache):
    """Raw layout: spectral axis along columns and flipped, ThAr lines at the truth wavelengths."""
    from xmpspec.instruments import get_setup

    det = nm.MageDetector(binning_spatial=2)
    lines = nm.load_arc_lines()
    arc = nm.render_orders(det, orders, [(nm._arc_component(det, get_setup("mage"), lines),
                                          None)])
    assert arc.shape == (2048, 512)
    raw = nm.to_raw(det, arc + 1000.0)
    assert raw.shape == (512, 2176)
    path = _write(tmp_path / "arc.fits", "ThAr-Lamp", "ThAr", 30.0, data=raw)
    with fits.open(path) as hdul:
        assert len(hdul) == 1
        h, data = hdul[0].header, hdul[0].data
    for key in ("BINNING", "UT-DATE", "UT-TIME", "EXPTYPE", "OBJECT", "RA", "DEC", "SLITNAME",
                "EXPTIME", "AIRMASS", "INSTRUME"):
        assert key in h, key
    assert h["BINNING"] == "2x1" and h["EXPTYPE"] == "ThAr-Lamp" and h["INSTRUME"] == "MagE"
    lw, amp = lines
    s_grid = np.arange(2048.0)
    for om in orders:
        wgrid = om.wavelength(s_grid)
        inside = (lw > wgrid[40]) & (lw < wgrid[-40])
        # a bright line of this order with no other line above 2% of it within 10 pixels
        disp = float(np.median(np.gradient(wgrid)))
        cand = [i for i in np.where(inside)[0]
                if np.sum((np.abs(lw - lw[i]) < 10 * disp) & (amp > 0.02 * amp[i])) == 1]
        i = max(cand, key=lambda k: amp[k])
        s_line = float(np.interp(lw[i], wgrid, s_grid))
        row = int(om.centre(s_line) // 2)            # binned row holding the slit centre
        y_mean = 2 * row + 1.0 - om.centre(s_line)   # mean offset of its two unbinned pixels
        expect = 2047 - (s_line + om.tilt_at(s_line) * y_mean)
        cols = np.arange(int(expect) - 5, int(expect) + 7)
        vals = data[row, cols] - 1000.0
        c_cen = np.sum(cols * vals) / vals.sum()
        assert c_cen == pytest.approx(expect, abs=0.1), om.order
        # the order is centred at PypeIt's fraction of the detector width
        k = list(nm.MAGE_ORDERS).index(om.order)
        assert om.x0 / 1024 == pytest.approx(nm.MAGE_ORDER_SPAT_POS[k], abs=1e-12)
    # overscan columns are empty of light
    assert np.allclose(data[:, 2048:], 0.0)


def test_flat_fills_slit_and_line_tilt(orders):
    det = nm.MageDetector(binning_spatial=1)
    om = orders[6]                                  # order 11
    flat = nm.render_orders(det, [om], [(nm._flat_component(), None)])
    prof = flat[1024]
    lit = np.where(prof > 0.5 * prof.max())[0]
    assert abs(lit.size - det.slit_length / det.plate_scale) <= 2     # 10" slit = 33 pixels
    assert abs(lit.mean() - om.centre(1024)) < 1.0
    # a single narrow line shifts along the slit by the tilt: s = s0 + tilt * y
    s0 = 1000.3

    def line(o):
        p = np.arange(-40, 2088, 0.125)
        return p, 1000.0 * np.exp(-0.5 * ((p - s0) / 1.2) ** 2)
    img = nm.render_orders(det, [om], [(line, None)])
    xs = np.arange(980, 1021)
    c = om.centre(s0)
    for dy in (-12, 0, 12):
        j = int(np.floor(c + dy))
        y = j + 0.5 - c
        prof = img[xs, j]
        cen = np.sum(xs * prof) / prof.sum()
        assert cen == pytest.approx(s0 + om.tilt_at(s0) * y, abs=0.02)


def test_header_rejects_unknown_exptype():
    with pytest.raises(InputError, match="EXPTYPE"):
        nm.mage_header(nm.MageDetector(), "Dark", "x", 1.0, "2026-03-16", "01:00:00")


def test_photon_rate_scales_with_flux_airmass_and_blaze(orders):
    from xmpspec.instruments import get_setup

    om = orders[6]
    lo, hi = om.wave_range
    w = np.array([0.5 * (lo + hi), lo + 20.0])
    no_ext = lambda x: np.zeros_like(x)  # noqa: E731
    r1 = nm.photon_rate(w, np.ones(2), om, 1.0, get_setup("mage"), no_ext)
    r2 = nm.photon_rate(w, 2 * np.ones(2), om, 1.0, get_setup("mage"), no_ext)
    assert np.allclose(r2, 2 * r1)
    assert r1[0] > r1[1]                          # blaze peak at the order centre
    ext = lambda x: np.full_like(x, 0.2)  # noqa: E731
    r3 = nm.photon_rate(w, np.ones(2), om, 1.5, get_setup("mage"), ext)
    assert np.allclose(r3, r1 * 10 ** (-0.4 * 0.3))


def test_pypeit_types_frames_and_plugin_fixes_them(tmp_path, offline_cache):
    from pypeit.pypeitsetup import PypeItSetup

    from xmpspec.reduce.registry import get_instrument

    raw = tmp_path / "raw"
    raw.mkdir()
    _write(raw / "b1.fits", "Bias", "Bias", 0.0)
    _write(raw / "f1.fits", "Flat", "Flat", 10.0)
    _write(raw / "a1.fits", "ThAr-Lamp", "ThAr", 30.0)
    _write(raw / "std.fits", "Object", "Feige56", 15.0, ra="12:06:47.25", dec="11:40:12.7")
    _write(raw / "std20.fits", "Object", "CD-32d9927", 20.0, ra="14:11:46.37",
           dec="-33:03:14.3")
    _write(raw / "sci20.fits", "Object", "J1044+0353", 20.0, ra="10:44:57.79",
           dec="+03:53:12.8")
    _write(raw / "sci.fits", "Object", "J1044+0353", 600.0, ra="10:44:57.79",
           dec="+03:53:12.8")
    ps = PypeItSetup.from_file_root(str(raw), "magellan_mage", extension=".fits")
    ps.run(setup_only=False)
    tab = ps.fitstbl.table
    types = {str(r["filename"]): str(r["frametype"]) for r in tab}
    # PypeIt's own typing: the traps the plug-in must correct
    assert types["a1.fits"] == "arc"
    assert types["f1.fits"] == "pixelflat,trace"
    assert "standard" in types["std.fits"] and "tilt" in types["std.fits"]
    assert "science" in types["sci.fits"] and "illumflat" in types["sci.fits"]
    assert set(tab["binning"]) == {"1,2"}

    plugin = get_instrument("mage")
    assert plugin.pypeit_name == "magellan_mage" and plugin.echelle
    changes = plugin.fix_frametypes(tab)
    fixed = {str(r["filename"]): str(r["frametype"]) for r in tab}
    assert fixed == {"b1.fits": "bias", "f1.fits": "pixelflat,illumflat,trace",
                     "a1.fits": "arc,tilt", "std.fits": "standard", "std20.fits": "standard",
                     "sci20.fits": "science", "sci.fits": "science"}
    assert any("a1.fits" in c for c in changes)
    # framebit agrees with the new types
    from pypeit.core.framematch import FrameTypeBitMask
    bm = FrameTypeBitMask()
    for r in tab:
        assert sorted(bm.flagged_bits(int(r["framebit"]))) == sorted(str(r["frametype"]).split(","))
    # the fix is idempotent
    assert plugin.fix_frametypes(tab) == []


def test_plugin_warns_about_untypable_frames(tmp_path):
    from xmpspec.reduce.registry import get_instrument

    _write(tmp_path / "ok.fits", "Object", "x", 600.0)
    det = nm.MageDetector(binning_spatial=2)
    hdr = nm.mage_header(det, "Object", "x", 600.0, "2026-03-16", "01:00:00")
    hdr["EXPTYPE"] = "Dark"
    nm.write_raw_frame(tmp_path / "dark.fits", np.zeros(det.raw_shape, np.float32), hdr)
    hdr = nm.mage_header(det, "Object", "x", 600.0, "2026-03-16", "01:00:00")
    hdr["BINNING"] = "1x2"
    nm.write_raw_frame(tmp_path / "specbin.fits", np.zeros(det.raw_shape, np.float32), hdr)
    warnings = get_instrument("mage").check_raw_files(tmp_path)
    assert len(warnings) == 2
    assert "dark.fits (Dark)" in warnings[0]
    assert "specbin.fits" in warnings[1] and "spectral" in warnings[1]


def test_plugin_parameters_are_valid_pypeit_parameters(offline_cache):
    from pypeit.par.pypeitpar import PypeItPar
    from pypeit.spectrographs.util import load_spectrograph

    from xmpspec.reduce.pypeitfile import pypeit_cfg_lines
    from xmpspec.reduce.registry import get_instrument

    plugin = get_instrument("mage")
    lines = pypeit_cfg_lines(plugin, {"extraction": "boxcar", "sky_protect": [(6640, 6660)]})
    spec = load_spectrograph("magellan_mage")
    par = PypeItPar.from_cfg_lines(cfg_lines=spec.default_pypeit_par().to_config(),
                                   merge_with=(lines,))
    wv = par["calibrations"]["wavelengths"]
    assert wv["method"] == "reidentify" and wv["reid_arxiv"] == "magellan_mage.fits"
    assert list(wv["lamps"]) == ["ThAr_MagE"]
    assert par["reduce"]["skysub"]["no_local_sky"] is True
    assert par["reduce"]["findobj"]["ech_find_max_snr"] == pytest.approx(0.5)
    assert par["reduce"]["skysub"]["max_mask_frac"] == pytest.approx(0.9)
    assert par["reduce"]["findobj"]["ech_find_min_snr"] == pytest.approx(0.2)
    assert par["reduce"]["findobj"]["skip_second_find"] is True
    assert par["reduce"]["extraction"]["boxcar_radius"] == pytest.approx(plugin.boxcar_radius)


def test_simulate_rejects_standard_longer_than_20s(tmp_path):
    plan = nm.default_plan()
    plan.standard_exptime = 30.0
    with pytest.raises(InputError, match="20 s"):
        nm.simulate_night(tmp_path, plan=plan)


def test_standard_names():
    assert nm.standard_archive_name("Feige 56") == "Feige56"
    assert nm.standard_archive_name("CD-32 9927") == "CD-32d9927"
    with pytest.raises(InputError, match="Feige 56, CD-32 9927"):
        nm.standard_archive_name("Vega")


def test_cosmic_ray_mask_uses_the_protected_sky(monkeypatch, offline_cache):
    """Echelle ('interpolate') sky protection: PypeIt's CR mask is built from the protected sky.

    On MagE orders PypeIt's global sky model diverged at the bright lines (+-1e4 e-) and
    the CR mask, built inside ``FindObjects.global_skysub`` from image - sky, flagged the
    line cores (issue 6). The hook must ask PypeIt not to build it, then build it from
    the sky with the line windows interpolated.
    """
    from types import SimpleNamespace

    from pypeit import find_objects

    from xmpspec.reduce import skyprotect

    nspec, nspat = 200, 20
    wave = np.tile(np.linspace(6600.0, 6700.0, nspec)[:, None], (1, nspat))
    window = (6645.0, 6655.0)
    inwin = (wave >= window[0]) & (wave <= window[1])
    seen = {}

    def fake_global_skysub(self, skymask=None, bkg_redux_sciimg=None, update_crmask=True,
                           **kwargs):
        seen["pypeit_update_crmask"] = update_crmask
        return np.where(inwin, 1e4, 12.0)          # a sky model diverging in the window

    def build_crmask(par, subtract_img=None):
        seen["subtract_img"] = subtract_img

    monkeypatch.setattr(find_objects.FindObjects, "global_skysub", fake_global_skysub)
    fo = SimpleNamespace(waveimg=wave, std_redux=False, bkg_redux=False,
                         par={"scienceframe": {"process": {"mask_cr": True}}},
                         sciImg=SimpleNamespace(build_crmask=build_crmask))
    skyprotect.install_pypeit_hook([window], method="interpolate")
    try:
        sky = find_objects.FindObjects.global_skysub(fo, skymask=np.ones((nspec, nspat), bool))
    finally:
        skyprotect.uninstall_pypeit_hook()
    assert seen["pypeit_update_crmask"] is False
    assert np.allclose(seen["subtract_img"], 12.0)
    assert np.allclose(sky, 12.0)
    assert find_objects.FindObjects.global_skysub is fake_global_skysub   # restored
    # standards and the first pass (no sky mask) are left to PypeIt
    seen.clear()
    skyprotect.install_pypeit_hook([window], method="interpolate")
    try:
        sky = find_objects.FindObjects.global_skysub(fo, skymask=None)
    finally:
        skyprotect.uninstall_pypeit_hook()
    assert seen["pypeit_update_crmask"] is True and "subtract_img" not in seen
    assert sky.max() == 1e4


def test_echelle_protects_every_catalogue_line():
    """Echelle set-ups protect every line of the catalogue (issue 6); long slits the bright ones."""
    from astropy.table import Table

    from xmpspec.lines.catalog import line_catalog
    from xmpspec.reduce.pypeitfile import (
        PROTECTED_LINES,
        merge_windows,
        protect_windows_for_targets,
        protected_lines,
    )

    assert protected_lines(False) == PROTECTED_LINES
    cat = line_catalog()
    assert set(protected_lines(True)) == {ln.key for ln in cat}
    assert merge_windows([(5, 7), (1, 3), (2, 4), (7, 8)]) == [(1.0, 4.0), (5.0, 8.0)]
    z = 0.02
    wins = protect_windows_for_targets(Table({"name": ["g"], "z": [z]}), "mage",
                                       lines=protected_lines(True))
    for ln in cat:
        assert sum(lo < ln.wave * (1 + z) < hi for lo, hi in wins) == 1, ln.key
    assert all(b[0] > a[1] for a, b in zip(wins, wins[1:], strict=False))   # merged, disjoint


def test_window_line_snr():
    from xmpspec.reduce.forcefind import window_line_snr

    rng = np.random.default_rng(5)
    wave = np.linspace(6600, 6800, 1000)
    sig = 0.5
    cont = 1.0 + rng.normal(0, sig, wave.size)
    line = 40.0 * np.exp(-0.5 * ((wave - 6700) / 0.8) ** 2)
    var = np.full(wave.size, sig ** 2)
    snr, win = window_line_snr(wave, cont + line, var, [(6640, 6650), (6690, 6710)])
    n = np.sum(np.abs(wave - 6700) <= 10)
    nside = np.sum((np.abs(wave - 6700) > 10) & (np.abs(wave - 6700) <= 30))
    # error of the sum and of the continuum (median of the side bands) under it
    expected = line.sum() / np.sqrt(n * sig ** 2 + n ** 2 * 1.25 ** 2 * sig ** 2 / nside)
    assert win == (6690.0, 6710.0)
    assert snr == pytest.approx(expected, rel=0.25)
    snr0, _ = window_line_snr(wave, cont, var, [(6690, 6710)])
    assert abs(snr0) < 4
    # a meaningless (tiny) variance cannot fake a line: the side-band scatter bounds the error
    snr_tiny, _ = window_line_snr(wave, cont, np.full(wave.size, 1e-12), [(6690, 6710)])
    assert abs(snr_tiny) < 4
    assert window_line_snr(wave, cont, var, [(7000, 7010)]) == (-np.inf, ())


def test_forced_find_keeps_a_listed_target_with_lines_only(monkeypatch, offline_cache):
    """The echelle S/N-cut hook: re-run without the cut, keep the candidate if its lines show."""
    from types import SimpleNamespace

    from pypeit import find_objects

    from xmpspec.reduce import forcefind

    calls = []

    def fake_find(self, image, ivar, *args, **kwargs):
        fp = self.par["reduce"]["findobj"]
        calls.append((fp["ech_find_max_snr"], fp["maxnumber_sci"]))
        if fp["ech_find_max_snr"] > 0:
            return [], 0                           # PypeIt's cut purges everything
        return ["candidate"], 1

    monkeypatch.setattr(find_objects.EchelleFindObjects, "find_objects_pypeline", fake_find)
    line_snr = {"value": 30.0}
    monkeypatch.setattr(forcefind, "_candidate_line_snr",
                        lambda self, image, ivar, sobjs: (line_snr["value"], (6690.0, 6710.0)))
    par = {"reduce": {"findobj": {"ech_find_max_snr": 0.5, "ech_find_min_snr": 0.2,
                                  "maxnumber_sci": 2}}}

    def fo(name):
        return SimpleNamespace(par=par, std_redux=False,
                               sciImg=SimpleNamespace(files=[f"/raw/{name}"]))

    forcefind.install_forced_find_hook(["sci2.fits"], [(6690.0, 6710.0)])
    try:
        meth = find_objects.EchelleFindObjects.find_objects_pypeline
        assert meth(fo("sci2.fits"), None, None, neg=False) == (["candidate"], 1)
        assert calls == [(0.5, 2), (-1e30, 1)]
        assert par["reduce"]["findobj"] == {"ech_find_max_snr": 0.5, "ech_find_min_snr": 0.2,
                                            "maxnumber_sci": 2}      # restored
        line_snr["value"] = 2.0                     # no line: the frame stays empty
        assert meth(fo("sci2.fits"), None, None, neg=False) == ([], 0)
        calls.clear()
        assert meth(fo("other.fits"), None, None) == ([], 0)   # not a listed target
        assert len(calls) == 1
        recs = forcefind.forced_records()
    finally:
        forcefind.uninstall_forced_find_hook()
    assert find_objects.EchelleFindObjects.find_objects_pypeline is fake_find
    assert [r["kept"] for r in recs] == [True, False]
    assert recs[0]["line_snr"] == 30.0 and recs[0]["frame"] == "sci2.fits"


def test_frames_without_spec1d_are_reported():
    from pathlib import Path

    from astropy.table import Table

    from xmpspec.reduce.runner import _frames_without_spec1d, _listed_science_frames

    tbl = Table({"filename": ["mage_0005.fits", "mage_0006.fits", "mage_0004.fits"],
                 "frametype": ["science", "science", "standard"],
                 "target": ["XMP-1", "XMP-1", "Feige 56"]})
    spec1d = {Path("spec1d_mage_0005-XMP-1_MagE_20260101T000000.fits"): "science"}
    assert _frames_without_spec1d(tbl, spec1d) == [("mage_0006.fits", "XMP-1")]
    assert _listed_science_frames(tbl, Table({"name": ["XMP-1"]})) == ["mage_0005.fits",
                                                                         "mage_0006.fits"]
    assert _listed_science_frames(tbl, Table({"name": ["other"]})) == []
    assert _listed_science_frames(tbl, None) == ["mage_0005.fits", "mage_0006.fits"]
