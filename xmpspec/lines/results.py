"""What a line measurement returns: :class:`Measurement` and :class:`GroupFit`.

Also the measurement states (:data:`STATES`) and the line keys of the
per-object table (:data:`LINE_KEYS`, in column order). Kept apart from the
fitting so the row and table assembly modules share them without a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from astropy.table import QTable

from .fitcore import FitResult
from .model import GroupModel

STATES = ("detected", "upper_limit", "lower_limit", "not_covered", "failed")
LINE_KEYS = ("oii3727", "oii3730", "oii_blend", "neiii3870", "hd", "hg", "feii4360", "oiii4364",
             "heii4687", "hb", "oiii4960", "oiii5008", "hei5877", "oi6302", "nii6550",
             "ha", "nii6585", "sii6718", "sii6733")


# --------------------------------------------------------------------------- results
@dataclass
class GroupFit:
    """One group's fit, kept for figures and MCMC.

    Attributes
    ----------
    group : str
    keys : list of str
        Covered lines of the group (in model order).
    model : GroupModel
    fit : FitResult or None
    kinematics : str
        ``free`` or ``tied:<group>``.
    snr : float
        Highest line S/N of the group.
    message : str
        Failure reason (empty on success).
    """

    group: str
    keys: list[str]
    free_keys: list[str]
    model: GroupModel
    fit: FitResult | None
    kinematics: str
    snr: float = 0.0
    message: str = ""
    mcmc: dict | None = None
    fallback: str = ""
    dropped: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True if the group was fitted successfully."""
        return self.fit is not None and self.fit.success


@dataclass
class Measurement:
    """The measurement of one spectrum.

    Attributes
    ----------
    name : str
        Object name.
    line_rows : list of dict
        One dict per catalogue line; :attr:`lines` is the same as a QTable
        (see :func:`lines_table` for the columns).
    row : dict
        The per-object values (column names of DEVELOPERS.md).
    groups : list of GroupFit
        Fits, for figures.
    notes : list of str
        Warnings about this object (also in ``row['notes']``).
    """

    name: str
    line_rows: list[dict]
    row: dict
    groups: list[GroupFit] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    flux_unit: Any = None
    line_flux_unit: Any = None

    @property
    def lines(self) -> QTable:
        """The per-line table (built on access; see :func:`lines_table`)."""
        from .measure_tables import _lines_qtable
        return _lines_qtable(self.line_rows, self.line_flux_unit)

    def object_table(self) -> QTable:
        """The per-object row as a one-row :class:`~astropy.table.QTable`."""
        from .measure_tables import objects_table
        return objects_table([self])
