"""INT/IDS with the Red+2 detector and the R632V grating (plug-in ``int_ids_redplus2``)."""

from __future__ import annotations

from ..registry import InstrumentPlugin, ReferenceFile, register

__all__ = ["IDSPlugin", "PLUGIN"]


class IDSPlugin(InstrumentPlugin):
    """INT/IDS Red+2, registered in PypeIt in-process."""


PLUGIN = register(IDSPlugin(
    name="int_ids",
    setup_name="int_ids_r632v",
    pypeit_name="int_ids_redplus2",
    reference_files=(
        ReferenceFile("arc_lines/reid_arxiv", "int_ids_red_637V_5500.fits",
                      "R632V full_template wavelength calibration (vacuum)"),
        ReferenceFile("standards/calspec", "g191b2b_stiswfcnic_004.fits.gz",
                      "flux standard G191-B2B"),
    ),
    raw_patterns=("*.fits", "*.fit", "*.fits.gz"),
    simulator="xmpspec.simulate.night_ids:simulate_night",
    aliases=("ids", "int", "int_ids_r632v", "int_ids_redplus2"),
    standard_names=("G191-B2B",),
    instrume_patterns=(r"^IDS",),
))
