"""Upper limits are drawn as arrows, the same way in the paper figures and the demo's recovery plot."""

from __future__ import annotations

import numpy as np
from astropy.table import MaskedColumn, Table

import xmpspec.products.figures as figures
from xmpspec.simulate.demo import recovery_figure


def _legend_markers(ax):
    return {t.get_text(): h.get_marker() for t, h in
            zip(ax.get_legend().get_texts(), ax.get_legend().legend_handles, strict=True)
            if hasattr(h, "get_marker")}


def test_recovery_figure_draws_limits_as_arrows(monkeypatch, tmp_path):
    shown = {}

    def capture(fig, path_stem, formats=("png",)):
        shown["fig"] = fig
        return []

    monkeypatch.setattr(figures, "save_figure", capture)
    rec = Table({
        "n2_state": ["detected", "upper_limit", "detected"],
        "n2_upper_limit": [False, True, False],
        "n2": MaskedColumn([-2.0, -2.3, -1.8]),
        "n2_err": MaskedColumn([0.05, 0.0, 0.04], mask=[False, True, False]),
        "n2_true": [-2.02, -2.6, -1.85],
    })
    for key in ("ha", "hb", "oiii5008", "nii6585"):
        rec[f"f_{key}"] = [10.0, 5.0, 8.0]
        rec[f"f_{key}_err"] = [1.0, 1.0, 1.0]
        rec[f"f_{key}_true"] = [10.0, 5.0, 8.0]
        rec[f"f_{key}_ratio"] = MaskedColumn([1.0, 1.0, 1.0])
    recovery_figure(rec, tmp_path / "rec")
    ax = shown["fig"].axes[0]
    markers = _legend_markers(ax)
    assert markers["upper limits"] == r"$\downarrow$"
    limits = [c for c in ax.containers if getattr(c, "has_yerr", False)
              and len(c.lines[0].get_xdata()) == 1 and c.lines[0].get_marker() == "_"]
    assert limits, "no upper-limit arrow drawn"
    line = limits[0].lines[0]
    assert np.allclose(line.get_xdata(), [-2.6]) and np.allclose(line.get_ydata(), [-2.3])
    # the arrow head: a caret marker below the limit
    heads = [cl for cl in limits[0].lines[1] if cl.get_marker() in (3, "v", 11)]
    assert heads and heads[0].get_ydata()[0] < -2.3
