"""One rule for asymmetric errors from the N2 posterior (lines.ratios.interval_errors)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from xmpspec.lines.ratios import interval_errors


def test_widths_about_the_posterior_median_when_the_value_is_off_centre():
    # a detection whose integrated N2 (-2.118) sits below the Gaussian posterior's 16th percentile
    lo, hi = interval_errors([-2.118], [-2.11], [-2.05], p50=[-2.08])
    assert float(lo[0]) == pytest.approx(0.03) and float(hi[0]) == pytest.approx(0.03)
    # about the value itself the lower error would be negative: masked, never shown
    lo2, _ = interval_errors([-2.118], [-2.11], [-2.05])
    assert np.ma.is_masked(lo2[0])


def test_missing_percentiles_are_masked():
    lo, hi = interval_errors([-1.9, -1.5], [np.nan, -1.7], [np.nan, -1.3])
    assert np.ma.is_masked(lo[0]) and np.ma.is_masked(hi[0])
    assert float(lo[1]) == pytest.approx(0.2) and float(hi[1]) == pytest.approx(0.2)


def test_report_and_compare_use_the_same_errors():
    from xmpspec.products.report import n2_text
    row = Table({"n2": [-2.118], "n2_err": [0.05], "n2_upper_limit": [False],
                 "n2_state": ["detected"], "n2_p16": [-2.11], "n2_p50": [-2.08],
                 "n2_p84": [-2.05]})[0]
    assert n2_text(row).startswith("N2 = -2.12 <sup>+0.03</sup><sub>&minus;0.03</sub>")
