"""The native FITS reader's card values equal astropy's (io.table._Cards.value)."""

import numpy as np
import pytest
from astropy.io import fits

from xmpspec.io.table import _Cards

VALUES = [
    '{"name": "SIM00000", "note": "it\'s a \'quoted\' text", "x": 1.5}',
    "a" * 200 + " & " + "b" * 150,                 # long string with an ampersand inside
    "trailing spaces   " + "c" * 90,
    "ends with an ampersand &",
    "x" * 67 + "&" + "y" * 40,                     # '&' where a piece may end
    "short",
    "",
    "naïve".encode("ascii", "replace").decode(),
]


def _cards(header: fits.Header) -> _Cards:
    return _Cards(header.tostring())


@pytest.mark.parametrize("text", VALUES)
def test_long_strings_as_astropy_reads_them(text):
    h = fits.Header()
    h["XMPMETA"] = text
    h["OTHER"] = 1
    back = fits.Header.fromstring(h.tostring())
    assert _cards(h).value("XMPMETA") == back["XMPMETA"]


@pytest.mark.parametrize("value", [0.03523388567183313, -1e-300, 1.0, 12345.0, 6.02e23,
                                   np.float64(0.1) + 0.2, 7, -3, True, False])
def test_numbers_and_logicals_as_astropy_reads_them(value):
    h = fits.Header()
    h["REDSHIFT"] = value
    back = fits.Header.fromstring(h.tostring())
    got = _cards(h).value("REDSHIFT")
    assert got == back["REDSHIFT"] and type(got) is type(back["REDSHIFT"])


def test_fortran_exponent_and_comment():
    card = "REDSHIFT=             1.25D-02 / a comment".ljust(80) + "END".ljust(80)
    h = fits.Header.fromstring(card)
    assert _Cards(card).value("REDSHIFT") == h["REDSHIFT"] == 0.0125


def test_unusual_cards_are_left_to_astropy():
    card = "REDSHIFT= (1.0, 2.0)".ljust(80) + "END".ljust(80)   # complex value
    with pytest.raises(ValueError):
        _Cards(card).value("REDSHIFT")
