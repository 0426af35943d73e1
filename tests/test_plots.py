"""Tests of the figures: files produced, sizes, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import MaskedColumn, Table

from xmpspec.cli import main
from xmpspec.compare import compare_tables
from xmpspec.config import default_config
from xmpspec.errors import InputError
from xmpspec.products.figures import (
    bpt_curve,
    comparison_plot,
    distribution_plot,
    make_all_plots,
)


def _derived(n=12, seed=3):
    rng = np.random.default_rng(seed)
    t = Table()
    t["name"] = [f"G{i:02d}" for i in range(n)]
    lim = np.arange(n) % 4 == 0
    t["n2"] = rng.uniform(-2.5, -1.3, n)
    t["n2_err"] = MaskedColumn(rng.uniform(0.03, 0.3, n), mask=lim)
    t["n2_upper_limit"] = lim
    t["o3"] = rng.uniform(0.1, 0.95, n)
    t["o3_err"] = rng.uniform(0.005, 0.03, n)
    t["o3_upper_limit"] = np.arange(n) == 5
    t["oh_n2"] = 9.263 + 0.836 * t["n2"]
    t["oh_n2_err"] = MaskedColumn(0.836 * np.asarray(t["n2_err"]), mask=lim)
    t["oh_n2_upper_limit"] = lim
    t["sfr"] = MaskedColumn(10 ** rng.uniform(-3, 0, n), unit="solMass / yr")
    t["log_mstar"] = MaskedColumn(rng.uniform(6, 8.5, n), mask=np.arange(n) == 1)
    t["bpt_class"] = ["star-forming"] * (n - 1) + ["composite"]
    t["low_z_agn_candidate"] = np.arange(n) == 2
    return t


def _png_size(path):
    import matplotlib.image as mpimg
    img = mpimg.imread(path)
    return img.shape[1], img.shape[0]


def test_all_figures_written(tmp_path):
    written, skipped = make_all_plots(_derived(), tmp_path, config=default_config())
    assert skipped == []
    assert set(written) == {"oh_distribution", "sfr_distribution", "mstar_distribution", "bpt"}
    for files in written.values():
        assert {f.suffix for f in files} == {".png", ".pdf"}
        for f in files:
            assert f.stat().st_size > 5000, f
    # one journal column (3.4 in at 300 dpi, tight bbox): 0.85-1.15 x 1020 px
    w, h = _png_size(tmp_path / "bpt.png")
    assert 870 < w < 1180 and 600 < h < 1300


def test_missing_columns_are_skipped_not_faked(tmp_path):
    t = _derived()
    t.remove_columns(["o3", "o3_err", "o3_upper_limit", "log_mstar"])
    written, skipped = make_all_plots(t, tmp_path, config=default_config())
    assert "bpt" not in written and "mstar_distribution" not in written
    assert any("bpt" in s for s in skipped)
    assert not (tmp_path / "bpt.png").exists()
    with pytest.raises(InputError, match="no rows"):
        make_all_plots(t[:0], tmp_path / "empty", config=default_config())
    assert not (tmp_path / "empty").exists()
    t["sfr"] = MaskedColumn(np.ones(len(t)), mask=np.ones(len(t), bool))
    with pytest.raises(InputError, match="has no value"):
        distribution_plot(t, "sfr", tmp_path / "sfr", default_config())


def test_bpt_curves_from_config():
    cfg = default_config()
    x = np.array([-1.0, 0.0, 0.1])
    y = bpt_curve(cfg["bpt"]["kauffmann03"], x)
    assert y[0] == pytest.approx(0.61 / (-1.05) + 1.30)
    assert np.isnan(y[2])  # beyond the asymptote


def test_comparison_figure_and_nothing_to_plot(tmp_path):
    obs = Table({"name": ["A", "B", "C"], "n2": [-1.9, -2.2, -1.5], "n2_err": [0.1, 0.2, 0.0],
                 "n2_upper_limit": [False, False, True], "significance": [4.0, 2.5, 1.0]})
    cat = Table({"name": ["A", "B", "C"], "ra": [1.0, 2.0, 3.0], "dec": [0.0, 0.0, 0.0],
                 "n2_cnn": [-2.0, -2.0, -2.0], "n2_cnn_err": [0.05, 0.05, 0.05]})
    r = compare_tables(obs, cat, config=default_config())
    bg = Table({"n2": np.linspace(-2.6, -1.0, 500), "n2_cnn": np.linspace(-2.5, -1.1, 500)})
    files = comparison_plot(r, tmp_path / "cmp", background=bg)
    assert all(f.stat().st_size > 5000 for f in files)
    obs["name"] = ["X", "Y", "Z"]
    obs["ra"] = [50.0, 60.0, 70.0]
    obs["dec"] = [0.0, 0.0, 0.0]
    r = compare_tables(obs, cat, config=default_config())  # nothing matched
    with pytest.raises(InputError, match="no comparison figure"):
        comparison_plot(r, tmp_path / "none")
    assert not (tmp_path / "none.png").exists()


def test_cli_plots(tmp_path):
    _derived().write(tmp_path / "derived.ecsv")
    rc = main(["-q", "plots", str(tmp_path / "derived.ecsv"), "-o", str(tmp_path / "figs"),
               "-f", "png"])
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == [
        "bpt.png", "mstar_distribution.png", "oh_distribution.png", "sfr_distribution.png"]
    _derived()[:0].write(tmp_path / "empty.ecsv")
    rc = main(["-q", "plots", str(tmp_path / "empty.ecsv"), "-o", str(tmp_path / "figs2")])
    assert rc == 2
    assert not (tmp_path / "figs2").exists()


def _capture_figures(monkeypatch):
    import xmpspec.products.figures as figmod
    figs = []

    def fake_save(fig, path_stem, formats=("png", "pdf"), provenance=None):
        figs.append(fig)
        return []

    monkeypatch.setattr(figmod, "save_figure", fake_save)
    return figs


def test_comparison_axes_hold_error_bars_and_legend_arrow(monkeypatch):
    """Error bars stay inside the axes (long ones clipped with an edge arrow); a limit's
    legend symbol is an arrow; labels follow the gate; weaker-than-gate cases framed."""
    obs = Table({"name": ["A", "B", "C", "D"], "n2": [-2.51, -2.2, -1.5, -2.0],
                 "n2_err": [0.33, 2.0, 0.0, 0.1], "n2_upper_limit": [False, False, True, False],
                 "significance": [3.04, 2.5, 1.0, 5.0]})
    cat = Table({"name": ["A", "B", "C", "D"], "ra": [1.0, 2.0, 3.0, 4.0],
                 "dec": [0.0, 0.0, 0.0, 0.0], "n2_cnn": [-2.4, -2.0, -2.0, -2.1],
                 "n2_cnn_err": [0.05, 0.05, 0.05, 1.5]})
    r = compare_tables(obs, cat, config=default_config())
    r.table["n2_flux_weaker_than_gate"] = [False, True, False, False]
    figs = _capture_figures(monkeypatch)
    comparison_plot(r, "unused")
    ax = figs[0].axes[0]
    lo, hi = ax.get_ylim()
    assert lo <= -2.51 - 0.33 and hi >= -2.51 + 0.33      # XMP0231-like bar fully inside
    assert lo > -2.2 - 2.0                                  # a 2-dex bar does not squash it
    edge = [ln for ln in ax.lines if ln.get_marker() == "v"]
    assert any(np.isclose(ln.get_ydata()[0], lo) for ln in edge)  # ... and gets an arrow
    assert any(ln.get_marker() in ("<", ">") for ln in ax.lines)   # long CNN bar of D
    handles, labels = ax.get_legend_handles_labels()
    lim = [h for h, lab in zip(handles, labels, strict=True) if lab.startswith("limit")]
    assert lim and lim[0].get_marker() == r"$\downarrow$"
    assert any(lab.startswith("good, gate") for lab in labels)
    assert any(lab.startswith("fair, 2") for lab in labels)
    assert any("weaker than gate (1)" in lab for lab in labels)
    # the flag read from the observed table (measure/derive output) by name
    r = compare_tables(obs, cat, config=default_config())
    obs["n2_flux_weaker_than_gate"] = [True, True, False, False]
    comparison_plot(r, "unused", observed=obs)
    labels = figs[-1].axes[0].get_legend_handles_labels()[1]
    assert any("weaker than gate (2)" in lab for lab in labels)


def test_measure_figure_public_names_units_no_label_overlap():
    from xmpspec.lines.measure import measure_spectrum
    from xmpspec.lines.plots import measurement_figure
    from xmpspec.simulate.spectra import simulate_spectrum
    spec, _ = simulate_spectrum("sdss", 0.03, n2=-1.6, halpha_flux=800, seed=4, name="G")
    meas = measure_spectrum(spec, z=0.03, keep_fits=True)
    fig = measurement_figure(meas)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")]
    assert any(t == r"[NII]6550 + H$\alpha$ + [NII]6585" for t in titles), titles
    assert any("H$\\gamma$" in t and "[OIII]4364" in t for t in titles), titles
    assert not any("_" in t or "tied" in t for t in titles)
    ylabels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel().startswith("flux")]
    assert ylabels and all("$10^{-17}$ erg s$^{-1}$ cm$^{-2}$" in y and "1e-17" not in y
                           for y in ylabels)
    for ax in fig.axes:
        boxes = [t.get_window_extent(renderer) for t in ax.texts if t.get_text()]
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                overlap_x = min(a.x1, b.x1) - max(a.x0, b.x0)
                overlap_y = min(a.y1, b.y1) - max(a.y0, b.y0)
                assert overlap_x <= 1 or overlap_y <= 1, (ax.get_title(loc="left"), i, j)
        # labels inside the axes (not cut at the top)
        top = ax.get_window_extent(renderer).y1
        assert all(b.y1 <= top + 1 for b in boxes)
    import matplotlib.pyplot as plt
    plt.close(fig)
