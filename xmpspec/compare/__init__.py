"""Comparison of observed N2 with the CNN selection stage's predictions.

science.md, "Comparison with the CNN selection stage": observed targets are
matched to the selection catalogue by name, else by sky position (astropy
``SkyCoord.match_to_catalog_sky``, 2 arcsec by default). For detections the
statistics of ``N2_obs - N2_CNN`` are reported (mean absolute error, median
absolute error, RMS, bias, N) for all detections, for good (S/N >= 3) and
for fair (2 <= S/N < 3) ones; detections beyond the MAE band are upper or
lower outliers. Upper limits are censored values: a limit is an outlier only
when it lies below the prediction minus the band (the true N2 is then
certainly below the band: a lower outlier); any other limit is consistent.

Nothing is dropped silently: every observed row appears in the output with a
``match_status`` (``matched``, ``unmatched``, ``ambiguous``) and a note, and
duplicate names on either side are reported.

Examples
--------
>>> from xmpspec.compare import compare_tables
>>> result = compare_tables(observed, catalogue)          # doctest: +SKIP
>>> result.statistics["all"]["mae"]                        # doctest: +SKIP
0.17

The package is split by job: :mod:`.columns` (column spellings, flags,
coordinates), :mod:`.matching` (name, else position), :mod:`.statistics`
(detections-only statistics, outcomes), :mod:`.censored` (Kaplan-Meier),
:mod:`.assemble` (:func:`compare_tables`) and :mod:`.outputs` (summary text,
``xmpspec compare`` files). The public names are importable from here.
"""

from __future__ import annotations

from .assemble import STATISTICS_GROUPS, ComparisonResult, compare_tables
from .censored import censored_statistics
from .columns import COLUMN_ALIASES, as_bool, normalise_catalogue, parse_coordinates
from .matching import match_catalogue
from .outputs import run_comparison, summary_text
from .statistics import classify_outcomes, n2_statistics, observed_n2

__all__ = [
    "ComparisonResult",
    "compare_tables",
    "match_catalogue",
    "parse_coordinates",
    "n2_statistics",
    "censored_statistics",
    "classify_outcomes",
    "normalise_catalogue",
    "observed_n2",
    "as_bool",
    "summary_text",
    "run_comparison",
    "COLUMN_ALIASES",
    "STATISTICS_GROUPS",
]
