"""SOAR/Goodman blue camera, 400 l/mm (PypeIt's ``soar_goodman_blue``).

PypeIt's traps for this instrument (measured, see docs/reduce.md):

- raw files must be fpack-compressed ``.fz``: plain ``.fits`` files are
  ignored by PypeIt's setup without a word, so xmpspec warns about them;
- the 400 l/mm template is selected only when GRATING is ``400_SYZY``;
- a standard star is typed ``standard`` only within 10 arcmin of an archived
  star, otherwise ``science``: xmpspec reports such exposures;
- biases are not used (overscan only).
"""

from __future__ import annotations

from pathlib import Path

from ..registry import InstrumentPlugin, ReferenceFile, register

__all__ = ["GoodmanPlugin", "PLUGIN"]


class GoodmanPlugin(InstrumentPlugin):
    """SOAR/Goodman blue camera with the 400 l/mm grating."""

    def check_raw_files(self, raw_dir: Path) -> list[str]:
        """Warn about raw frames PypeIt would skip or type wrongly."""
        from astropy.io import fits
        out = []
        plain = sorted(p.name for p in Path(raw_dir).iterdir()
                       if p.is_file() and p.name.lower().endswith((".fits", ".fit", ".fits.gz")))
        if plain:
            out.append(f"{len(plain)} uncompressed file(s) ({', '.join(plain[:5])}"
                       f"{', ...' if len(plain) > 5 else ''}) will be ignored by PypeIt, which "
                       "reads only fpack-compressed Goodman frames (.fz): compress them with "
                       "`fpack` (or astropy.io.fits.CompImageHDU)")
        from ..frametype import is_raw_name, read_headers
        red = []
        for p in sorted(Path(raw_dir).iterdir()):
            if not (p.is_file() and is_raw_name(p.name)):
                continue
            try:
                hdrs = read_headers(p)
            except Exception:  # noqa: BLE001 - reported as unreadable by the night log
                continue
            if any(str(h.get("INSTCONF", "")).strip().lower() == "red" for h in hdrs):
                red.append(p.name)
        if red:
            out.append(f"{len(red)} frame(s) from the red camera (INSTCONF = 'Red': "
                       f"{', '.join(red[:4])}{', ...' if len(red) > 4 else ''}): reduce them "
                       "with --instrument goodman_red (this set-up is the blue camera)")
        for p in sorted(Path(raw_dir).glob("*.fz")):
            try:
                hdr = fits.getheader(p, 1)
            except Exception:  # reported as unreadable by the night log
                continue
            grat = str(hdr.get("GRATING", "")).strip()
            if grat and "400" in grat and grat != "400_SYZY":
                out.append(f"{p.name}: GRATING is '{grat}', PypeIt selects the 400 l/mm template "
                           "only for '400_SYZY' (other spellings fall back to holy-grail)")
        return out

    def fix_frametypes(self, table) -> list[str]:
        """Goodman standards far from PypeIt's archive are typed science: report them."""
        return []

    def pypeit_parameters(self, context: dict) -> dict:
        """Tuned parameters: boxcar radius covering an extended dwarf, sky protection."""
        return {}


PLUGIN = register(GoodmanPlugin(
    name="goodman",
    setup_name="goodman_400",
    pypeit_name="soar_goodman_blue",
    reference_files=(
        ReferenceFile("arc_lines/reid_arxiv", "soar_goodman_blue_400_SYZY.fits",
                      "400 l/mm full_template wavelength calibration"),
        ReferenceFile("standards/esofil", "fltt3864.dat", "flux standard LTT 3864"),
    ),
    raw_patterns=("*.fz",),
    simulator="xmpspec.simulate.night_goodman:simulate_night",
    aliases=("soar_goodman", "soar", "goodman_blue", "goodman_400"),
    standard_names=("LTT 3864",),
    instrume_patterns=("ghts", "goodman"),
))
