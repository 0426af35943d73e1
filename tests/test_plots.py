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
