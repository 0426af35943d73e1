"""``xmpspec simulate night``: raw frames of a simulated observing night."""

from __future__ import annotations

from pathlib import Path

import typer

from .cmd_simulate import simulate_app
from .common import console, track


@simulate_app.command("night")
def night_cmd(
    instrument: str = typer.Option(..., "--instrument", "-i", help="goodman, int_ids or mage."),
    outdir: Path = typer.Option(..., "--output", "-o", help="Raw-data folder to write."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
):
    """Simulate a raw night: bias, flats, arcs, a standard, science.

    Frames carry the instrument's real header keywords and layout; the science
    target is a spatially extended emission-line galaxy at a known redshift
    with known line fluxes, with sky lines, noise and cosmic rays. Also writes
    `truth.ecsv` (line fluxes, N2, z), `targets.csv` and the truth wavelength
    solution `wavelength_solution.ecsv`.

    Examples:

        xmpspec simulate night --instrument goodman -o raw/sim_goodman --seed 1
        xmpspec simulate night -i int_ids -o raw/sim_ids
    """
    import importlib
    import inspect

    from ..errors import InputError
    from ..reduce.pipeline import quiet_pypeit
    from ..reduce.registry import get_instrument
    from .common import state

    quiet_pypeit(state.verbose)

    plugin = get_instrument(instrument)
    if not plugin.simulator:
        raise InputError(f"no raw-night simulator for {plugin.name}")
    mod, func = plugin.simulator.split(":")
    fn = getattr(importlib.import_module(mod), func)
    kwargs = {"seed": seed}
    if "progress" in inspect.signature(fn).parameters:
        kwargs["progress"] = track
    truth = fn(outdir, **kwargs)
    frames = getattr(truth, "frames", None)
    console.print(f"wrote {len(frames) if frames is not None else 'the'} raw frames to {outdir}")
    for attr in ("truth_table", "targets_table", "wavelength_table"):
        p = getattr(truth, attr, None)
        if p:
            console.print(f"wrote {p}")
