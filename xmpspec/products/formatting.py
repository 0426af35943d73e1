"""Number formatting for paper tables.

Rules (journal conventions):

- a value with an error is rounded to the error's significant digits (two
  by default): ``2921 +- 48``, ``-1.99 +- 0.21``, ``0.828 +- 0.0050``;
  the value gets the same number of decimals as the error;
- an upper limit is written ``<-1.50`` (value with the column's decimals);
- a missing value is ``...`` (``\\nodata`` in AASTeX);
- a quantity whose values are far from unity is shown in scaled units, the
  scale going into the header (``x1e40 erg s^-1``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import astropy.units as u
import numpy as np

__all__ = [
    "error_decimals",
    "format_number",
    "format_value_error",
    "Cell",
    "choose_exponent",
    "unit_latex",
    "unit_text",
    "latex_escape",
    "sexagesimal_ra",
    "sexagesimal_dec",
]


def error_decimals(err: float, sig: int | str = 2) -> int:
    """Decimals that keep ``sig`` significant digits of ``err`` (may be negative).

    ``sig="pdg"`` applies the Particle Data Group rule: two significant
    digits when the error's leading three digits are 100-354, otherwise one.

    >>> error_decimals(0.21), error_decimals(48), error_decimals(0.005), error_decimals(1234)
    (2, 0, 4, -2)
    >>> error_decimals(0.07, "pdg"), error_decimals(0.21, "pdg")
    (2, 2)
    """
    if not np.isfinite(err) or err <= 0:
        raise ValueError(f"error must be a positive finite number, got {err}")
    exp = math.floor(math.log10(err))
    if isinstance(sig, str):
        if sig.lower() != "pdg":
            raise ValueError(f"significant digits must be an integer or 'pdg', got '{sig}'")
        lead = int(round(err / 10 ** (exp - 2)))
        sig = 2 if lead < 355 else 1
        if lead >= 950:
            sig, exp = 2, exp + 1
    else:
        sig = int(sig)
        if sig < 1:
            raise ValueError(f"significant digits must be >= 1, got {sig}")
    d = sig - 1 - exp
    # rounding can carry into a new digit (0.0996 -> 0.10): recompute from the rounded error
    rounded = round(err, d)
    if rounded > 0 and math.floor(math.log10(rounded)) > exp:
        d -= 1
    return d


def format_number(value: float, decimals: int) -> str:
    """``value`` rounded to ``decimals`` (negative: to tens, hundreds ...), no ``-0``."""
    if decimals >= 0:
        s = f"{value:.{decimals}f}"
    else:
        s = f"{round(value, decimals):.0f}"
    if s.lstrip("-").strip("0.") == "" and s.startswith("-"):
        s = s[1:]
    return s


def format_value_error(value: float, err: float, sig: int | str = 2) -> tuple[str, str, int]:
    """Value and error as strings with the error's ``sig`` significant digits.

    Returns
    -------
    value_str, err_str : str
    decimals : int

    Examples
    --------
    >>> format_value_error(-1.9912, 0.2109)
    ('-1.99', '0.21', 2)
    >>> format_value_error(2921.3, 48.2)
    ('2921', '48', 0)
    """
    d = error_decimals(err, sig)
    return format_number(value, d), format_number(err, d), d


@dataclass
class Cell:
    """One table entry: a value with optional error, a limit flag, or missing.

    ``kind`` is ``"text"``, ``"number"`` (value with ``decimals``),
    ``"value_err"``, ``"value_asym"`` (value with upper error ``err`` and lower
    error ``err_lo``), ``"upper"`` (upper limit), ``"lower"`` (lower limit) or
    ``"missing"``.
    """

    kind: str
    text: str = ""
    value: float | None = None
    err: float | None = None
    decimals: int | None = None
    sig: int | str = 2
    err_lo: float | None = None  # ``value_asym``: lower error (``err`` is the upper one)

    def asym_parts(self) -> tuple[str, str, str, int]:
        """Value, upper and lower error of a ``value_asym`` cell, rounded alike."""
        d = error_decimals(min(self.err, self.err_lo), self.sig)
        return (format_number(self.value, d), format_number(self.err, d),
                format_number(self.err_lo, d), d)

    def plain(self) -> str:
        """Plain-text rendering (``-1.99 +- 0.21``, ``<-1.50``, ``...``)."""
        if self.kind == "missing":
            return "..."
        if self.kind == "text":
            return self.text
        if self.kind == "number":
            return format_number(self.value, self.decimals)
        if self.kind == "upper":
            return "<" + format_number(self.value, self.decimals)
        if self.kind == "lower":
            return ">" + format_number(self.value, self.decimals)
        if self.kind == "value_asym":
            v, hi, lo, _ = self.asym_parts()
            return f"{v} +{hi}/-{lo}"
        v, e, _ = format_value_error(self.value, self.err, self.sig)
        return f"{v} +- {e}"

    def latex(self, style: str = "aastex") -> str:
        """LaTeX rendering (math mode for numbers; ``\\nodata`` / ``...`` when missing)."""
        if self.kind == "missing":
            return r"\nodata" if style == "aastex" else "..."
        if self.kind == "text":
            return latex_escape(self.text)
        if self.kind == "number":
            return f"${format_number(self.value, self.decimals)}$"
        if self.kind == "upper":
            return f"$<{format_number(self.value, self.decimals)}$"
        if self.kind == "lower":
            return f"$>{format_number(self.value, self.decimals)}$"
        if self.kind == "value_asym":
            v, hi, lo, _ = self.asym_parts()
            return f"${v}^{{+{hi}}}_{{-{lo}}}$"
        v, e, _ = format_value_error(self.value, self.err, self.sig)
        return f"${v} \\pm {e}$"


def choose_exponent(values, preferred: int | None = None) -> int:
    """Power of ten to divide a column by so that its typical value is 1-1000.

    Parameters
    ----------
    values : array-like
        Positive magnitudes (masked / non-finite ignored).
    preferred : int, optional
        Returned unchanged when given (e.g. -17 for fluxes in 1e-17 units).
    """
    if preferred is not None:
        return preferred
    v = np.abs(np.ma.compressed(np.ma.masked_invalid(np.ma.asarray(values, dtype=float))))
    v = v[v > 0]
    if v.size == 0:
        return 0
    med = float(np.median(v))
    if 1e-2 <= med < 1e4:
        return 0
    return int(math.floor(math.log10(med)))


_LATEX_UNIT_NAMES = {
    "solMass": r"M_\odot", "Msun": r"M_\odot", "Angstrom": r"\AA", "AA": r"\AA",
    "arcsec": "arcsec", "deg": "deg",
}


def _unit_parts(unit: u.UnitBase) -> list[tuple[str, float]]:
    unit = u.Unit(unit)
    if isinstance(unit, u.CompositeUnit):
        return [(b.to_string(), p) for b, p in zip(unit.bases, unit.powers, strict=True)]
    return [(unit.to_string(), 1)]


def unit_text(unit: u.UnitBase | None, exponent: int = 0) -> str:
    """Plain header unit: ``x1e-17 erg s^-1 cm^-2`` (empty for dimensionless)."""
    parts = []
    if exponent:
        parts.append(f"x1e{exponent}")
    if unit is not None and u.Unit(unit) != u.dimensionless_unscaled:
        for name, p in _unit_parts(unit):
            name = {"solMass": "Msun"}.get(name, name)
            parts.append(name if p == 1 else f"{name}^{p:g}")
    return " ".join(parts)


def unit_latex(unit: u.UnitBase | None, exponent: int = 0) -> str:
    """LaTeX header unit: ``$10^{-17}$ erg s$^{-1}$ cm$^{-2}$``."""
    parts = []
    if exponent:
        parts.append(f"$10^{{{exponent}}}$")
    if unit is not None and u.Unit(unit) != u.dimensionless_unscaled:
        for name, p in _unit_parts(unit):
            base = _LATEX_UNIT_NAMES.get(name, name)
            if base.startswith("M_"):
                base = f"${base}$"
            parts.append(base if p == 1 else f"{base}$^{{{p:g}}}$")
    return " ".join(parts)


_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
            "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
            "^": r"\textasciicircum{}", "<": r"$<$", ">": r"$>$"}


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters in free text (names, instruments, dates)."""
    return "".join(_ESCAPES.get(c, c) for c in str(text))


def sexagesimal_ra(ra_deg: float, decimals: int = 2) -> str:
    """RA in degrees as ``hh:mm:ss.ss``."""
    from astropy.coordinates import Angle
    return Angle(ra_deg, u.deg).to_string(unit=u.hourangle, sep=":", precision=decimals,
                                            pad=True)


def sexagesimal_dec(dec_deg: float, decimals: int = 1) -> str:
    """Dec in degrees as ``+dd:mm:ss.s``."""
    from astropy.coordinates import Angle
    return Angle(dec_deg, u.deg).to_string(unit=u.deg, sep=":", precision=decimals,
                                            alwayssign=True, pad=True)
