"""Synthetic data: 1D spectra of emission-line dwarf galaxies with truth tables.

Public API
----------
- :func:`emission_line_model` -- noise-free, pixel-integrated lines at a set-up's resolution
- :func:`simulate_spectrum` -- one noisy, flux-calibrated spectrum + truth dict
- :func:`simulate_batch` / :func:`iter_batch` -- many spectra from a distribution
- :func:`truth_table`, :func:`targets_table` -- catalogues of simulated objects
- :func:`hii_line_fluxes` -- consistent line fluxes of a metal-poor HII region
"""

from .hii import hii_line_fluxes
from .spectra import (
    continuum_model,
    coordinate_name,
    effective_area,
    emission_line_model,
    iter_batch,
    line_snr,
    pixel_edges,
    simulate_batch,
    simulate_spectrum,
    sky_spectrum,
)
from .truth import targets_table, truth_table, write_spectrum_file

__all__ = ["emission_line_model", "continuum_model", "effective_area", "sky_spectrum",
           "pixel_edges", "line_snr", "simulate_spectrum", "simulate_batch", "iter_batch",
           "coordinate_name", "truth_table", "targets_table", "write_spectrum_file",
           "hii_line_fluxes"]
