"""Expected N2 bias of a gated detection at its significance (issue 12 item 5).

Near the N2 gate, the objects called detected are those whose noise scattered
upward, so their reported [NII] flux and N2 are high on average.
``benchmarks/bench_gate.py`` measures this by injection-recovery with the
project's simulator and packages, per set-up and bin of the *measured* gate
significance, the median N2 offset (reported - true) of the simulated gated
detections in ``xmpspec/data/gate_bias.ecsv`` (set-ups pooled as
``generic``, the fallback for other set-ups).

:func:`n2_gate_bias` interpolates that table (linearly in log significance
between bin medians, constant beyond the first and last bin) at an object's
significance: the ``n2_gate_bias`` column of ``measure``. It is a reading aid
(how much a detection at this significance is expected to sit above the
truth), never applied to N2.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

__all__ = ["n2_gate_bias", "gate_bias_table"]


@lru_cache(maxsize=1)
def gate_bias_table() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The packaged table: ``setup -> (median significance, median N2 offset)``, sorted."""
    from astropy.table import Table
    path = resources.files("xmpspec") / "data" / "gate_bias.ecsv"
    if not path.is_file():          # not produced yet (bench_gate.py --table): no values
        return {}
    with resources.as_file(path) as p:
        t = Table.read(p, format="ascii.ecsv")
    out = {}
    for setup in sorted(set(str(s) for s in t["setup"])):
        sel = np.array([str(s) == setup for s in t["setup"]])
        sig = np.asarray(t["sig_median"][sel], float)
        off = np.asarray(t["n2_offset_median"][sel], float)
        order = np.argsort(sig)
        out[setup] = (sig[order], off[order])
    return out


def n2_gate_bias(significance: float | None, setup: str | None = None,
                 state: str = "detected") -> float | None:
    """Expected N2 offset (dex, reported - true) of a gated detection.

    Parameters
    ----------
    significance : float or None
        The object's gate significance.
    setup : str, optional
        Set-up name; unknown or empty: the ``generic`` row set.
    state : str
        ``n2_state``; only ``detected`` objects get a value.

    Returns
    -------
    float or None
        None for non-detections or a missing significance.
    """
    if state != "detected" or significance is None or not np.isfinite(significance) \
            or significance <= 0:
        return None
    table = gate_bias_table()
    sig, off = table.get(str(setup or ""), table.get("generic", (None, None)))
    if sig is None or sig.size == 0:
        return None
    return float(np.interp(np.log(significance), np.log(sig), off))
