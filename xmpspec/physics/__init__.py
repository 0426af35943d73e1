"""Derived physical properties (science.md: Dust, Abundances, Distances..., BPT).

Modules
-------
strong_line
    N2/O3/O3N2 line ratios with censoring (the rules of
    :mod:`xmpspec.lines.ratios`, shared with ``measure``); Yin et al. 2007 and
    Pettini & Pagel 2004 calibrations (limits propagate; the calibration
    scatter is reported separately, see the module docstring); O/H percentiles
    from the N2 posterior.
direct_te
    Te([OIII]), ne, Te([OII]), O+/H+, O++/H+ and 12+log(O/H) with PyNeb
    emissivities tabulated on a Te-ne grid (cached on disk), Monte Carlo errors;
    ``direct_abundance_pyneb`` is the plain-PyNeb reference.
dust
    Galactic CCM89 (dust_extinction) and Calzetti 2000 (extinction package)
    corrections; E(B-V) from Balmer decrements.
distances
    Luminosity distance (astropy FlatLambdaCDM) with errors, L(Halpha), SFR
    (Kennicutt 1998, Chabrier), stellar mass (Bell et al. 2003, Chabrier).
bpt
    BPT classes with censored points; low-metallicity AGN candidates.
derive
    :func:`derive_table`, the table-level chain behind ``xmpspec derive``;
    its inputs (``object_rng``, ``merge_by_name``, ``pivot_line_table``) are in
    ``derive_inputs`` and the direct method with the Balmer decrement in
    ``derive_direct``.

Heavy imports (PyNeb) happen only when a direct-method or Balmer quantity is
computed.
"""

__all__ = ["derive_table", "pivot_line_table", "DERIVED_COLUMNS"]


def __getattr__(name):
    """The public names of :mod:`.derive`, imported on first use: importing a light module
    of the package (``physics._columns``, the column readers compare and products share)
    does not load astropy.cosmology and the rest of derive."""
    if name in __all__:
        from . import derive
        return getattr(derive, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
