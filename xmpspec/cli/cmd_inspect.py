"""``xmpspec inspect``: read spectra with xmpspec's readers and show what was read."""

from __future__ import annotations

from pathlib import Path

import typer

from .app import app
from .common import EXIT_OK, EXIT_PARTIAL, console, err_console, state, track


def _summary(spec) -> dict[str, str]:
    import numpy as np

    wv = spec.wavelength.value
    good = spec.good
    meta = spec.meta
    z = "-" if spec.redshift is None else (
        f"{spec.redshift:.5f}" + ("" if spec.redshift_err is None
                                  else f" +- {spec.redshift_err:.5f}"))
    pos = "-"
    if meta.get("ra") is not None and meta.get("dec") is not None:
        pos = f"{float(meta['ra']):.5f} {float(meta['dec']):+.5f}"
    step = np.median(np.diff(wv))
    parts = [str(meta["extraction"])] if meta.get("extraction") else []
    if meta.get("fluxed") is not None:
        parts.append("fluxed" if meta.get("fluxed") else "counts")
    extraction = ", ".join(parts) or "-"
    return {
        "file": Path(str(meta.get("source_file", "?"))).name,
        "format": str(meta.get("format", "?")),
        "name": spec.name,
        "instrument": str(meta.get("instrument") or "-"),
        "coverage": f"{wv[0]:.1f}-{wv[-1]:.1f} A ({spec.medium})",
        "pixels": f"{wv.size} (median step {step:.3g} A)",
        "masked": f"{100.0 * (1.0 - good.mean()):.1f}%",
        "flux unit": spec.flux.unit.to_string(),
        "redshift": z,
        "RA Dec (deg)": pos,
        "extraction": extraction,
        "exptime": "-" if meta.get("exptime") is None else f"{float(meta['exptime']):g} s",
    }


@app.command("inspect")
def inspect(
    spectra: list[Path] = typer.Argument(None, help="Spectrum files (any supported format), "
                                                    "folders (their FITS files), quoted globs "
                                                    "or file lists (.txt/.lst).",
                                         show_default=False),
    format: str = typer.Option(None, "--format", "-f",
                               help="Force the format (see --list-formats); default: "
                                    "detected from the content."),
    obj: str = typer.Option(None, "--object", "-o",
                            help="PypeIt spec1d object: PypeIt name, slit-mask name or "
                                 "target name (default: the brightest)."),
    ra: str = typer.Option(None, "--ra", help="Select the object within --match-arcsec of this "
                                              "RA (deg or hh:mm:ss)."),
    dec: str = typer.Option(None, "--dec", help="... and this Dec (deg or dd:mm:ss)."),
    extraction: str = typer.Option("BOX", "--extraction", "-e",
                                   help="PypeIt extraction: BOX or OPT."),
    counts: bool = typer.Option(False, "--counts",
                                help="PypeIt spec1d: read counts instead of fluxed *_FLAM."),
    medium: str = typer.Option(None, "--medium",
                               help="Declare the wavelength medium (vacuum or air), "
                                    "overriding the file."),
    match_arcsec: float = typer.Option(None, "--match-arcsec",
                                       help="Position-match radius (default: configuration "
                                            "measure.target_match_arcsec, 2 arcsec)."),
    ignore_bad_errors: bool = typer.Option(False, "--ignore-bad-errors",
                                           help="Mask pixels with zero/negative errors "
                                                "instead of failing."),
    objects: bool = typer.Option(False, "--objects",
                                 help="List the objects of PypeIt spec1d files instead."),
    list_formats: bool = typer.Option(False, "--list-formats",
                                      help="List the supported formats and exit."),
):
    """Show what was read from spectra: object, coverage, units, z.

    Shows name, instrument, coverage, pixels, units, masked fraction and redshift.

    With one file an unreadable input is an error (exit code 2); with several,
    each bad file is reported and the others are shown (exit code 1 if any failed).

    Examples:

        xmpspec inspect spec1d_b0012-J0845+1234_GOODMAN_20230214T031214.fits
        xmpspec inspect spec1d_b0012.fits -o SPAT0231-SLIT0250-DET01 -e OPT
        xmpspec inspect spec1d_b0012.fits --ra 131.2125 --dec 12.5703
        xmpspec inspect spec1d_b0012.fits --objects
        xmpspec inspect spec-0266-51602-0003.fits J0845.ecsv coadd1d_J0845.fits
        xmpspec inspect my_spectrum.txt --format ascii --medium air
        xmpspec inspect --list-formats
    """
    from rich.markup import escape

    from ..errors import InputError, XmpspecError
    from ..io import list_formats as _formats
    from ..io import read_spectrum

    if list_formats:
        for name, desc in _formats().items():
            console.print(f"[bold]{name}[/]: {escape(desc)}", highlight=False)
        return EXIT_OK
    if not spectra:
        raise InputError("no spectrum given (see xmpspec inspect --help)")

    _ = state.config  # xmpspec.toml / --config become the active configuration
    from .common import expand_inputs
    spectra = expand_inputs(spectra)  # folders, quoted globs, file lists; missing: exit 2
    if objects:
        return _list_objects(spectra)

    from rich.markup import escape

    rows, failed = [], []
    items = track(spectra, "reading spectra") if len(spectra) > 1 else spectra
    for path in items:
        try:
            spec = read_spectrum(path, format=format, obj=obj, ra=ra, dec=dec,
                                 extraction=extraction, fluxed=not counts, medium=medium,
                                 ignore_bad_errors=ignore_bad_errors,
                                 match_arcsec=match_arcsec)
        except XmpspecError as exc:
            if len(spectra) == 1:
                raise
            failed.append(str(exc))
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False,
                              soft_wrap=True)
            continue
        rows.append(_summary(spec))
    # key/value lines, never folded by rich: a long path stays one piece at any width
    # (the terminal folds it itself; piped output keeps it whole)
    width = max((len(k) for row in rows for k in row), default=0)
    for row in rows:
        if len(rows) > 1:
            console.print(f"[bold]{escape(row['file'])}[/]", highlight=False)
        for k, v in row.items():
            console.print(f" [bold]{escape(k.ljust(width))}[/]  {escape(v)}", highlight=False)
    if failed:
        err_console.print(f"{len(failed)} of {len(spectra)} file(s) could not be read",
                          style="yellow")
        return EXIT_PARTIAL
    return EXIT_OK


def _list_objects(spectra: list[Path]) -> int:
    from rich.markup import escape

    from ..errors import InputError, XmpspecError
    from ..io import detect_format
    from ..io.pypeit import list_spec1d_objects

    failed = 0
    for path in spectra:
        try:
            fmt = detect_format(path)
            if fmt != "pypeit-spec1d":
                raise InputError(f"--objects lists PypeIt spec1d objects; this file is "
                                 f"'{fmt}' (one object)", path)
            objs = list_spec1d_objects(path)
        except XmpspecError as exc:
            if len(spectra) == 1:
                raise
            failed += 1
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False,
                              soft_wrap=True)
            continue
        target = objs[0]["target"] if objs else None
        console.print(f"[bold]{escape(str(path))}[/] (target {escape(str(target or '-'))}; "
                      f"{len(objs)} object(s), brightest first)", highlight=False,
                      soft_wrap=True)
        for o in objs:
            pos = ("-" if o["ra"] is None else
                   f"RA={o['ra']:.5f} Dec={o['dec']:+.5f}")
            s2n = "-" if o["s2n"] is None else f"{o['s2n']:.1f}"
            orders = f"  orders={o['n_orders']}" if o["n_orders"] > 1 else ""
            console.print(f"  {escape(o['name'])}  mask-name={escape(o['maskdef_objname'] or '-')}"
                          f"  {pos}  S/N={s2n}{orders}  extractions: "
                          f"{escape(', '.join(o['extractions']) or '-')}",
                          highlight=False, soft_wrap=True)
    return EXIT_PARTIAL if failed else EXIT_OK
