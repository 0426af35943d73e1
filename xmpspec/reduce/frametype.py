"""Frame typing that survives real headers: the lamp state decides arcs and flats.

Real observatories do not fill the frame-type keyword the way their manuals
say. Measured on real frames (``../shared/data``, issue 13):

- Lick/Kast: arcs and dome flats have ``OBSTYPE = 'OBJECT'``, biases
  ``OBSTYPE = 'DARK'``; only the ``LAMPSTA?`` cards say a lamp was on;
- ING (INT/IDS, WHT/ISIS): arcs stored with ``IMAGETYP = 'object'`` (or
  ``OBSTYPE = 'TARGET'``) and only ``CAGLAMPS = 'CuNe+CuAr'`` naming the lamps;
- SOAR/Goodman red camera (2019): arcs with ``OBSTYPE = 'FOCUS'`` and the
  lamps in ``LAMP_HGA``, ``LAMP_NE``, ... (``'TRUE'``/``'FALSE'``).

The rules (one place, used by ``xmpspec setup`` for every instrument and by
the INT/IDS plug-in's own PypeIt typing):

1. a frame with an arc lamp on (and no continuum lamp) is an arc
   (``arc,tilt``), whatever OBSTYPE/IMAGETYP say;
2. a frame with a continuum lamp on (tungsten, quartz, dome lamp) and no arc
   lamp is a flat (``pixelflat,illumflat,trace``);
3. a 0 s exposure with every lamp off is a bias (Kast's ``DARK``);
4. a frame with a lamp on is never science or standard.

When the headers carry no lamp card the declared type stands. Every frame
whose type differs from what its frame-type keyword declares is reported with
the reason (the night log's ``typing`` column).

Examples
--------
>>> from astropy.io import fits
>>> h = fits.Header({"IMAGETYP": "object", "CAGLAMPS": "CuNe+CuAr", "EXPTIME": 30.0})
>>> d = decide_frame_type([h])
>>> d.frametype, d.kind
('arc,tilt', 'arc')
>>> print(d.reason)
IMAGETYP = 'object' but arc lamp(s) CuNe, CuAr on (CAGLAMPS = 'CuNe+CuAr'): typed arc
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LampState", "TypingDecision", "lamp_state", "parse_lamp_list", "declared_kind",
           "decide_frame_type", "read_headers", "apply_lamp_rules", "set_frametypes",
           "FRAMETYPES", "RAW_SUFFIX", "is_raw_name"]

#: PypeIt frame types given to each kind of frame.
FRAMETYPES = {"arc": "arc,tilt", "flat": "pixelflat,illumflat,trace", "bias": "bias"}

#: Raw-file names: ``.fit``, ``.fits``, ``.fts``, plain or ``.gz``/``.fz``/``.bz2``
#: (and fpack's bare ``.fz``).
RAW_SUFFIX = re.compile(r"\.(fits|fit|fts)(\.gz|\.fz|\.bz2)?$|\.fz$", re.I)

#: Frame-type keywords, in the order they are trusted.
TYPE_CARDS = ("IMAGETYP", "OBSTYPE", "EXPTYPE", "OBSTYP", "IMGTYPE", "FRAMETYP")

_CONTINUUM = re.compile(r"^(W|TUNG\w*|QUA\w*|QTH\w*|HAL\w*|FLAT\w*|DOM\w*|BUL\w*|LED\w*|"
                        r"INCAND\w*|CONT\w*)$", re.I)
_ARC_ELEMENTS = ("CU", "AR", "NE", "TH", "HE", "HG", "FE", "XE", "KR", "CD", "ZN", "NA")
_OFF = {"", "OFF", "NONE", "NO", "FALSE", "F", "0", "CLOSED", "N/A", "NA"}
_ON = {"ON", "TRUE", "T", "YES", "1", "OPEN"}


def is_raw_name(name: str) -> bool:
    """True for a raw FITS file name (``.fit/.fits/.fts``, plain or ``.gz/.fz/.bz2``)."""
    return bool(RAW_SUFFIX.search(str(name)))


@dataclass(frozen=True)
class LampState:
    """Which lamps were on, read from the headers.

    Attributes
    ----------
    arc : tuple of str
        Arc lamps on.
    continuum : tuple of str
        Continuum (flat-field) lamps on.
    cards : str
        The cards it was read from (for messages), e.g. ``CAGLAMPS = 'W'``.
    known : bool
        False when no lamp card was found (the lamp state is unknown).
    """

    arc: tuple[str, ...] = ()
    continuum: tuple[str, ...] = ()
    cards: str = ""
    known: bool = False

    @property
    def any_on(self) -> bool:
        """Any lamp on."""
        return bool(self.arc or self.continuum)


def _is_arc_name(name: str) -> bool:
    n = re.sub(r"[^A-Z]", "", name.upper())
    if not n or _CONTINUUM.match(name.strip()):
        return False
    # element symbols glued together (CuNe, HgAr, ThAr, HGA) or spelled out
    if any(w in n for w in ("ARGON", "NEON", "MERCURY", "HELIUM", "XENON", "KRYPTON",
                            "THORIUM", "COPPER", "IRON", "CADMIUM", "ZINC")):
        return True
    return any(n.startswith(e) for e in _ARC_ELEMENTS)


def parse_lamp_list(value) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split a lamp-list card value (ING ``CAGLAMPS``: ``'CuNe+CuAr'``, ``'W'``, ``'Off'``).

    Returns
    -------
    (arc, continuum) : tuple of tuple of str
        Lamp names that are arcs and continuum lamps.
    """
    text = str(value if value is not None else "").strip()
    if text.upper() in _OFF:
        return (), ()
    arc, cont = [], []
    for tok in filter(None, (t.strip() for t in re.split(r"[+,;/&\s]+", text))):
        if tok.upper() in _OFF:
            continue
        if _CONTINUUM.match(tok):
            cont.append(tok)
        elif _is_arc_name(tok):
            arc.append(tok)
    return tuple(arc), tuple(cont)


def _on(value) -> bool | None:
    """Boolean reading of an on/off lamp card (None when it is not an on/off value)."""
    if isinstance(value, bool):
        return value
    v = str(value).strip().upper()
    if v in _ON:
        return True
    if v in _OFF and v not in ("", "0"):
        return False
    return None


# Kast: LAMPSTA1..5 are the dome/halogen lamps, LAMPSTAA..K the arcs (PypeIt's shane_kast)
_KAST = re.compile(r"^LAMPSTA([1-9A-Z])$")
# Goodman: LAMP_HGA, LAMP_NE, LAMP_AR, LAMP_FE, LAMP_CU (arcs), LAMP_QUA, LAMP_BUL, LAMP_DOM
_GOODMAN_ARC = {"LAMP_HGA": "HgAr", "LAMP_NE": "Ne", "LAMP_AR": "Ar", "LAMP_FE": "FeAr",
                "LAMP_CU": "CuHeAr"}
_GOODMAN_CONT = {"LAMP_QUA": "quartz", "LAMP_BUL": "bulb", "LAMP_DOM": "dome"}
_LIST_CARDS = ("CAGLAMPS", "LAMPS", "CALLAMPS", "ARCLAMPS", "LAMP")


def lamp_state(headers) -> LampState:
    """The lamp state of a frame from its headers (all extensions).

    Conventions read: ING ``CAGLAMPS`` (lamp list), Lick/Kast ``LAMPSTA1..5``
    (continuum) and ``LAMPSTAA..K`` (arcs), SOAR/Goodman ``LAMP_*`` (TRUE/FALSE),
    and lamp-list cards ``LAMPS``/``CALLAMPS``/``ARCLAMPS``/``LAMP``.

    Parameters
    ----------
    headers : sequence of astropy.io.fits.Header
        The frame's headers (primary first).

    Returns
    -------
    LampState
    """
    arc: list[str] = []
    cont: list[str] = []
    cards: list[str] = []
    known = False
    seen: set[str] = set()
    for hdr in headers:
        for key in hdr:
            if not key or key in seen:
                continue
            k = key.upper()
            val = hdr[key]
            m = _KAST.match(k)
            if m:
                on = _on(val)
                if on is None:
                    continue
                seen.add(key)
                known = True
                lamp = m.group(1)
                if on:
                    (cont if lamp.isdigit() else arc).append(lamp)
                    cards.append(f"{k} = '{val}'")
            elif k in _GOODMAN_ARC or k in _GOODMAN_CONT:
                on = _on(val)
                if on is None:
                    continue
                seen.add(key)
                known = True
                if on:
                    (arc.append(_GOODMAN_ARC[k]) if k in _GOODMAN_ARC
                     else cont.append(_GOODMAN_CONT[k]))
                    cards.append(f"{k} = '{val}'")
            elif k in _LIST_CARDS and isinstance(val, str):
                seen.add(key)
                known = True
                a, c = parse_lamp_list(val)
                arc += a
                cont += c
                if a or c:
                    cards.append(f"{k} = '{val.strip()}'")
    return LampState(tuple(dict.fromkeys(arc)), tuple(dict.fromkeys(cont)), ", ".join(cards),
                     known)


_DECLARED = (
    ("bias", re.compile(r"^(BIAS|ZERO)", re.I)),
    ("dark", re.compile(r"^DARK", re.I)),
    ("flat", re.compile(r"FLAT|^LAMPFLAT|^DOME|^TWI|^SKYFLAT|^QUARTZ|^TUNG", re.I)),
    ("arc", re.compile(r"^(ARC|COMP|LAMP|THAR|WAVE|CAL.*ARC)", re.I)),
    ("object", re.compile(r"^(OBJ|TARGET|SCI|SPECTRUM|SKY$|STD|STANDARD|FLUX)", re.I)),
)


def declared_kind(headers) -> tuple[str, str, str]:
    """What the frame-type keyword says.

    Returns
    -------
    (kind, card, value) : tuple of str
        ``kind`` is ``bias``, ``dark``, ``flat``, ``arc``, ``object`` or
        ``unknown`` (e.g. Goodman's ``FOCUS``); ``card`` and ``value`` the
        keyword read (empty when none).
    """
    for card in TYPE_CARDS:
        for hdr in headers:
            if card in hdr and str(hdr[card]).strip():
                value = str(hdr[card]).strip()
                for kind, rx in _DECLARED:
                    if rx.search(value):
                        return kind, card, value
                return "unknown", card, value
    return "unknown", "", ""


@dataclass(frozen=True)
class TypingDecision:
    """The lamp rules' verdict on one frame.

    Attributes
    ----------
    kind : str or None
        ``arc``, ``flat``, ``bias``, or None when the rules do not decide
        (then the declared/PypeIt type stands).
    frametype : str or None
        PypeIt frame types for ``kind``.
    reason : str
        Why the type differs from the declared one (empty when it does not).
    warning : str
        Something odd the rules could not settle (both kinds of lamps on, an
        arc with every lamp off).
    """

    kind: str | None
    frametype: str | None
    reason: str = ""
    warning: str = ""


def _exptime(headers) -> float | None:
    for card in ("EXPTIME", "EXPOSURE", "ITIME", "EXPTIM"):
        for hdr in headers:
            if card in hdr:
                try:
                    return float(hdr[card])
                except (TypeError, ValueError):
                    return None
    return None


def decide_frame_type(headers, exptime: float | None = None) -> TypingDecision:
    """Apply the lamp rules (module docstring) to one frame's headers.

    Parameters
    ----------
    headers : sequence of astropy.io.fits.Header
        The frame's headers.
    exptime : float, optional
        Exposure time in s (default: EXPTIME of the headers).

    Returns
    -------
    TypingDecision
    """
    lamps = lamp_state(headers)
    kind, card, value = declared_kind(headers)
    exptime = _exptime(headers) if exptime is None else exptime
    said = f"{card} = '{value}'" if card else "no frame-type keyword"
    if lamps.arc and lamps.continuum:
        return TypingDecision(None, None, warning=(
            f"arc lamp(s) {', '.join(lamps.arc)} and continuum lamp(s) "
            f"{', '.join(lamps.continuum)} on together ({lamps.cards}): type it by hand"))
    if lamps.arc:
        reason = "" if kind == "arc" else (
            f"{said} but arc lamp(s) {', '.join(lamps.arc)} on ({lamps.cards}): typed arc")
        return TypingDecision("arc", FRAMETYPES["arc"], reason)
    if lamps.continuum:
        reason = "" if kind == "flat" else (
            f"{said} but continuum lamp(s) {', '.join(lamps.continuum)} on ({lamps.cards}): "
            "typed flat")
        return TypingDecision("flat", FRAMETYPES["flat"], reason)
    if exptime is not None and exptime <= 0.0 and (lamps.known or kind in ("bias", "dark")):
        reason = "" if kind == "bias" else (
            f"{said} with a 0 s exposure and no lamp on: typed bias")
        return TypingDecision("bias", FRAMETYPES["bias"], reason)
    if lamps.known and kind == "arc":
        return TypingDecision(None, None, warning=(
            f"{said} but every lamp is off: an arc without lines (not used as arc)"))
    return TypingDecision(None, None)


def read_headers(path: str | Path, max_hdus: int = 2) -> list:
    """Headers of the first ``max_hdus`` HDUs of a raw file (any FITS compression)."""
    from astropy.io import fits
    with fits.open(path) as hdul:
        return [h.header.copy() for h in hdul[:max_hdus]]


def set_frametypes(table, new: list[str]) -> None:
    """Replace PypeIt's ``frametype`` column (and ``framebit``) of a metadata table."""
    table.replace_column("frametype", [str(t) for t in new])
    if "framebit" in table.colnames:
        from pypeit.core.framematch import FrameTypeBitMask
        bm = FrameTypeBitMask()
        zero = table["framebit"].dtype.type(0)
        table["framebit"] = [bm.turn_on(zero, flag=[t for t in ft.split(",") if t])
                             if ft and ft != "None" else zero for ft in new]


#: PypeIt frame types that make a frame count as each kind (PypeIt's own
#: combinations, e.g. ``arc`` without ``tilt``, are kept when they agree).
_KIND_TYPES = {"arc": {"arc"}, "flat": {"pixelflat", "trace", "illumflat"}, "bias": {"bias"}}
_OTHER_USES = {"science", "standard", "sky", "dark", "pinhole", "align", "lampoffflats",
               "slitless_pixflat", "scattlight"}


def _agrees(old: str, kind: str) -> bool:
    """PypeIt's types already make the frame a ``kind`` and nothing the lamps exclude."""
    types = {t for t in old.split(",") if t and t != "None"}
    return bool(types & _KIND_TYPES[kind]) and not (types & _OTHER_USES)


def apply_lamp_rules(table, headers_of=None,
                     kinds=("arc", "flat", "bias")) -> tuple[dict[str, str], list[str]]:
    """Retype the frames of PypeIt's metadata table by the lamp rules, in place.

    Parameters
    ----------
    table : astropy.table.Table
        PypeIt's ``fitstbl.table`` (``filename``, ``directory``, ``frametype``).
    headers_of : callable, optional
        ``headers_of(path) -> list of Header`` (default :func:`read_headers`).
    kinds : tuple of str
        Kinds the rules may retype to (leave out ``bias`` for spectrographs
        whose reduction uses no bias frames, e.g. Goodman: overscan only).

    PypeIt's own typing is kept when it already makes the frame that kind
    (e.g. ``arc`` alone, or ``pixelflat,trace`` without ``illumflat``) and
    gives it no use the lamps exclude (science, standard, sky, ...); otherwise
    the frame gets :data:`FRAMETYPES` of its kind.

    Returns
    -------
    reasons : dict
        File name -> why its type differs from its frame-type keyword (every
        such frame, whether PypeIt had already typed it so or not).
    warnings : list of str
        Frames the rules could not settle, and retypings of PypeIt's own
        typing (``file: PypeIt 'x' -> 'y'``).
    """
    headers_of = headers_of or read_headers
    reasons: dict[str, str] = {}
    warnings: list[str] = []
    new, changed = [], False
    for row in table:
        name = str(row["filename"])
        path = Path(str(row["directory"])) / name if "directory" in table.colnames else Path(name)
        old = str(row["frametype"]) if row["frametype"] is not None else "None"
        try:
            hdrs = headers_of(path)
        except Exception:  # noqa: BLE001 - unreadable files were screened out already
            new.append(old)
            continue
        try:
            exptime = float(row["exptime"]) if row["exptime"] is not None else None
        except (KeyError, TypeError, ValueError):
            exptime = None
        d = decide_frame_type(hdrs, exptime)
        if d.kind is not None and d.kind not in kinds:
            d = TypingDecision(None, None)
        if d.warning:
            warnings.append(f"{name}: {d.warning}")
        if d.reason:
            reasons[name] = d.reason
        ft = old
        if d.frametype is not None and not _agrees(old, d.kind):
            ft = d.frametype
            changed = True
            warnings.append(f"{name}: PypeIt typed it '{old}', the lamp rules '{ft}'"
                            + (f" ({d.reason})" if d.reason else ""))
        new.append(ft)
    if changed:
        set_frametypes(table, new)
    return reasons, warnings
