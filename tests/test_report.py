"""xmpspec report: the self-contained HTML page, rendered in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from astropy.table import Table

from xmpspec.cli import main
from xmpspec.errors import InputError
from xmpspec.products.report import find_report_inputs, write_report

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "the report test needs Chromium (Debian package 'chromium')"
    return exe


def render(html_path, tmp_path, screenshot=None) -> tuple[str, list[dict]]:
    """DOM after rendering and the requests the page made (from Chromium's net log)."""
    netlog = tmp_path / "netlog.json"
    args = [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chrome-profile'}",
            f"--log-net-log={netlog}", "--window-size=1200,2000", "--dump-dom"]
    if screenshot is not None:
        args.append(f"--screenshot={screenshot}")
    args.append(html_path.resolve().as_uri())
    res = subprocess.run(args, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    log = json.loads(netlog.read_text())
    types = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    requests = [e["params"] for e in log["events"]
                if types.get(e["type"], "") == "URL_REQUEST_START_JOB" and "url" in e.get(
                    "params", {})]
    # the browser's own background traffic has no origin; the page's requests have one
    page = [r for r in requests if r.get("initiator") != "not an origin"]
    return res.stdout, page


@pytest.fixture(scope="module")
def night_folder(tmp_path_factory):
    """A run-like folder: night log with flags, reductions summary + QA, measure output."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xmpspec.io import write_spectrum
    from xmpspec.simulate.spectra import simulate_spectrum
    root = tmp_path_factory.mktemp("night")
    raw = root / "spectra"
    raw.mkdir()
    names, zs = [], []
    for i, (setup, z, n2) in enumerate((("sdss", 0.03, -1.8), ("goodman_400", 0.02, -2.3),
                                        ("sdss", 0.045, -1.6))):
        name = f"XMPT{i:02d}+0{i}"
        spec, _ = simulate_spectrum(setup, z, n2=n2, halpha_flux=400, seed=10 + i, name=name)
        write_spectrum(spec, raw / f"s{i}.fits")
        names.append(name)
        zs.append(z)
    Table({"name": names, "z": zs}).write(root / "targets.ecsv")
    assert main(["-q", "measure", str(raw), "--targets", str(root / "targets.ecsv"),
                 "-o", str(root / "measure")]) == 0
    log = Table({"file": ["b1.fits", "arc1.fits", "sci1.fits"],
                 "frametype": ["bias", "arc,tilt", "science"],
                 "flag": ["", "", "saturated?"]})
    log.meta["provenance"] = {"extra": {"flags": ["no standard star: not flux calibrated"]}}
    pf = root / "pypeit_files" / "goodman" / "n1"
    pf.mkdir(parents=True)
    log.write(pf / "night_log.ecsv")
    red = root / "reductions" / "goodman" / "n1"
    (red / "soar_goodman_blue_A" / "QA" / "PNGs").mkdir(parents=True)
    Table({"target": names, "wave_rms_pix": [0.081] * 3, "flux_calibration": ["none"] * 3,
           "problems": ["", "", "no standard"]}).write(red / "summary.ecsv")
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1])
    fig.savefig(red / "soar_goodman_blue_A" / "QA" / "PNGs" / "Arc_1dfit_A_0_DET01_S0100.png")
    plt.close(fig)
    # a sensitivity function in PypeIt's SensFunc layout (WAVE, ZEROPOINT, THROUGHPUT)
    from astropy.io import fits
    w = np.linspace(3500, 7000, 200)[:, None]
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(w, name="WAVE"),
                  fits.ImageHDU(17 + np.sin(w / 900.0), name="ZEROPOINT"),
                  fits.ImageHDU(0.1 + 0 * w, name="THROUGHPUT")]).writeto(
        red / "soar_goodman_blue_A" / "sens_std-LTT3864.fits")
    Table({"input": ["bad.fits"], "error": ["InputError"],
           "reason": ["bad.fits: not a spectrum"]}).write(root / "measure" / "failed.ecsv")
    return root, names


def test_report_finds_night_and_measure_parts(night_folder):
    root, names = night_folder
    inp = find_report_inputs(root)
    assert len(inp.night_logs) == 1 and len(inp.summaries) == 1
    assert inp.objects is not None and inp.lines is not None
    assert len(inp.wave_qa) == 1 and len(inp.failed) == 1 and len(inp.sens_files) == 1
    # a reductions/<instrument>/<night> folder finds its night log in pypeit_files/
    inp = find_report_inputs(root / "reductions" / "goodman" / "n1")
    assert [p.name for p in inp.night_logs] == ["night_log.ecsv"]
    with pytest.raises(InputError, match="nothing to report"):
        find_report_inputs(root / "spectra")
    with pytest.raises(InputError, match="not a folder"):
        find_report_inputs(root / "nope")


def test_report_renders_offline_in_chromium(night_folder, tmp_path):
    root, names = night_folder
    assert main(["-q", "report", str(root), "-o", str(tmp_path / "night.html")]) == 0
    html = (tmp_path / "night.html").read_text()
    # self-contained: every image inline, no URL anywhere in attributes or styles
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:|//|file:)", html)
    assert "url(" not in html
    srcs = re.findall(r"<img[^>]*src=\"([^\"]*)\"", html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    dom, requests = render(tmp_path / "night.html", tmp_path, tmp_path / "night.png")
    assert requests == [], requests
    heads = re.findall(r"<h3[^>]*>(.*?)</h3>", dom)
    for name in names:  # each target has its panel
        assert name in heads
    assert "no standard star: not flux calibrated" in dom       # night-log flag
    assert "wavelength solution RMS: 0.081 pixels" in dom       # calibration QA
    assert "Sensitivity function" in dom and "sens_std-LTT3864.fits" in dom
    assert "bad.fits: not a spectrum" in dom                     # failures
    assert dom.count("data:image/png;base64,") >= len(names) + 1  # spectra + QA
    assert (tmp_path / "night.png").stat().st_size > 10000
    # a measure folder alone
    out = write_report(root / "measure")
    assert out == root / "measure" / "report.html"
    html = out.read_text()
    assert all(f"<h3>{n}</h3>" in html for n in names)
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:|//|file:)", html)


def test_report_of_a_run_night_folder(night_folder, tmp_path):
    """xmpspec run writes measurements.ecsv + derived.ecsv beside summary.ecsv."""
    import shutil as sh
    root, names = night_folder
    night = tmp_path / "reductions" / "goodman" / "n1"
    sh.copytree(root / "reductions" / "goodman" / "n1", night)
    sh.copy(root / "measure" / "objects.ecsv", night / "measurements.ecsv")
    sh.copy(root / "measure" / "lines.ecsv", night / "lines.ecsv")
    inp = find_report_inputs(night)
    assert inp.objects == night / "measurements.ecsv" and inp.lines == night / "lines.ecsv"
    html = write_report(night).read_text()
    assert all(f"<h3>{n}</h3>" in html for n in names)


def test_report_n2_text_states():
    from xmpspec.products.report import n2_text
    t = Table({"n2": np.ma.array([-1.9, -1.5, 0.0], mask=[False, False, True]),
               "n2_err": np.ma.array([0.1, 0.0, 0.0], mask=[False, True, True]),
               "n2_upper_limit": [False, True, False],
               "n2_state": ["detected", "upper_limit", "not_covered"],
               "n2_p16": [-2.05, -2.5, np.nan], "n2_p84": [-1.8, -1.6, np.nan]})
    assert n2_text(t[0]).startswith("N2 = -1.90 <sup>+0.10</sup><sub>&minus;0.15</sub>")
    assert n2_text(t[1]).startswith("N2 &lt; -1.50")
    assert n2_text(t[2]) == "N2 not measured (not_covered)"


@pytest.mark.slow
def test_report_of_the_demo(tmp_path):
    """The demo's folder: every target, the CNN comparison and the BPT diagram."""
    assert main(["-q", "demo", str(tmp_path / "demo")]) == 0
    truth = Table.read(tmp_path / "demo" / "targets.ecsv")
    out = write_report(tmp_path / "demo")
    dom, requests = render(out, tmp_path, tmp_path / "demo.png")
    assert requests == []
    heads = re.findall(r"<h3[^>]*>(.*?)</h3>", dom)
    assert set(map(str, truth["name"])) <= set(heads)
    assert "N2 against the CNN" in dom and "id=\"bpt\"" in dom


def test_report_caps_panels_for_big_runs(night_folder, tmp_path):
    """[report] max_panels (figures) and max_text_panels (panels) keep big batch pages small."""
    from xmpspec.config import default_config
    root, names = night_folder
    cfg = default_config().updated({"report.max_panels": 1, "report.max_text_panels": 2})
    html = write_report(root / "measure", tmp_path / "cap.html", config=cfg).read_text()
    heads = re.findall(r"<h3[^>]*>(.*?)</h3>", html)
    assert sum(h in names for h in heads) == 2
    assert html.count("alt=\"spectrum of ") == 1
    assert "1 more targets in objects.ecsv" in html
