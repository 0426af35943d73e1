"""Benchmark: direct-Te Monte Carlo with plain PyNeb vs the tabulated PyNeb grid.

For each of a few objects (line fluxes relative to Hbeta = 100, 3% errors),
N Monte Carlo draws are solved

* with PyNeb directly (``Diagnostics.getCrossTemDen`` on the arrays of
  draws, then ``Atom.getIonAbundance``: :func:`direct_abundance_pyneb`), and
* with xmpspec's grid (:func:`direct_abundance_mc`),

and the per-object wall times, the grid build/load times and the largest
differences between the two on the nominal fluxes are reported. With
``--write`` the numbers replace the "Direct Te" section of
``benchmarks/README.md`` (other sections are left alone).

Usage::

    python benchmarks/bench_direct_te.py                  # 1000 draws, 3 objects
    python benchmarks/bench_direct_te.py --draws 1000 --objects 3 --write
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BEGIN = "<!-- BEGIN bench_direct_te -->"
END = "<!-- END bench_direct_te -->"

OBJECTS = [  # oiii4364, oiii4960, oiii5008, hb, oii3727, oii3730 (Hbeta = 100)
    dict(oiii4364=2.0, oiii4960=100.0, oiii5008=298.0, hb=100.0, oii3727=60.0, oii3730=85.0),
    dict(oiii4364=5.0, oiii4960=150.0, oiii5008=450.0, hb=100.0, oii3727=40.0, oii3730=50.0),
    dict(oiii4364=10.0, oiii4960=200.0, oiii5008=600.0, hb=100.0, oii3727=20.0, oii3730=25.0),
    dict(oiii4364=3.0, oiii4960=120.0, oiii5008=357.0, hb=100.0, oii3727=80.0, oii3730=100.0),
]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--objects", type=int, default=3)
    ap.add_argument("--rel-err", type=float, default=0.03)
    ap.add_argument("--write", action="store_true", help="update benchmarks/README.md")
    args = ap.parse_args(argv)

    from xmpspec.config import load_config
    from xmpspec.physics import direct_te

    cfg = load_config(search_cwd=False)
    t0 = time.perf_counter()
    direct_te.pyneb_atoms()
    t_atoms = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:  # cold build, not the user's cache
        old = os.environ.get("XMPSPEC_CACHE_DIR")
        os.environ["XMPSPEC_CACHE_DIR"] = tmp
        try:
            direct_te._GRIDS.clear()
            t0 = time.perf_counter()
            grid = direct_te.get_grid(cfg)
            t_build = time.perf_counter() - t0
            direct_te._GRIDS.clear()
            t0 = time.perf_counter()
            grid = direct_te.get_grid(cfg)
            t_load = time.perf_counter() - t0
        finally:
            if old is None:
                os.environ.pop("XMPSPEC_CACHE_DIR")
            else:
                os.environ["XMPSPEC_CACHE_DIR"] = old

    rng = np.random.default_rng(1)
    objs = OBJECTS[: args.objects]
    t_py, t_grid, d_te, d_oh = [], [], [], []
    for obj in objs:
        errs = {k: args.rel_err * v for k, v in obj.items()}
        draws = {k: v + errs[k] * rng.standard_normal(args.draws) for k, v in obj.items()}
        t0 = time.perf_counter()
        direct_te.direct_abundance_pyneb(draws, density_diag="OII", config=cfg)
        t_py.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        direct_te.direct_abundance_mc(obj, errs, args.draws, rng, density_diag="OII",
                                      config=cfg, grid=grid)
        t_grid.append(time.perf_counter() - t0)
        nominal = {k: np.array([v]) for k, v in obj.items()}
        ref = direct_te.direct_abundance_pyneb(nominal, density_diag="OII", config=cfg)
        res = direct_te.solve_direct(nominal, density_diag="OII", config=cfg, grid=grid)
        d_te.append(abs(float(res.te_oiii[0] - ref["te_oiii"][0])))
        d_oh.append(abs(float(res.oh[0] - ref["oh"][0])))

    spec = cfg["abundances"]
    result = {
        "draws": args.draws, "objects": len(objs),
        "pyneb_s_per_object": float(np.median(t_py)), "pyneb_s_max": float(np.max(t_py)),
        "grid_s_per_object": float(np.median(t_grid)), "grid_s_max": float(np.max(t_grid)),
        "speedup": float(np.median(t_py) / np.median(t_grid)),
        "atoms_s": t_atoms, "grid_build_s": t_build, "grid_load_s": t_load,
        "max_dte_K": float(max(d_te)), "max_doh_dex": float(max(d_oh)),
        "grid": f"{spec['te_grid']} K x {spec['ne_grid']} cm-3",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}",
        "load_avg_1min_at_end": float(os.getloadavg()[0]),
    }
    for k, v in result.items():
        print(f"{k:>20s}: {v:.4g}" if isinstance(v, float) else f"{k:>20s}: {v}")
    if args.write:
        write_readme(result)
    return result


def write_readme(r: dict) -> None:
    """Replace this benchmark's section of benchmarks/README.md (others untouched)."""
    section = f"""{BEGIN}
## Direct Te: PyNeb per object vs the tabulated grid (`bench_direct_te.py`)

`python benchmarks/bench_direct_te.py --draws {r['draws']} --objects {r['objects']} --write`
({r['machine']}; measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; the machine
was shared with other jobs: 1-min load average {r['load_avg_1min_at_end']:.1f} at the end of
the run, so both timings are slower than on an idle machine).

| | per object, {r['draws']} Monte Carlo draws (median / max) |
|---|---|
| plain PyNeb (`getCrossTemDen` + `getIonAbundance` on the arrays of draws) | {r['pyneb_s_per_object']:.2f} s / {r['pyneb_s_max']:.2f} s |
| xmpspec grid (`direct_abundance_mc`) | {r['grid_s_per_object'] * 1e3:.1f} ms / {r['grid_s_max'] * 1e3:.1f} ms |

Speed-up {r['speedup']:.0f}x. One-off costs: PyNeb atoms {r['atoms_s']:.2f} s; grid
({r['grid']}) built from PyNeb emissivities in {r['grid_build_s']:.1f} s, then read
from the disk cache in {r['grid_load_s'] * 1e3:.0f} ms. Largest difference from PyNeb on the
nominal fluxes: {r['max_dte_K']:.1f} K in Te([OIII]), {r['max_doh_dex']:.4f} dex in 12+log(O/H)
(required: < 50 K, < 0.005 dex; checked by tests/test_physics_direct.py).
{END}"""
    path = HERE / "README.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        pre, rest = text.split(BEGIN, 1)
        post = rest.split(END, 1)[1]
        text = pre + section + post
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
    print(f"updated {path}")


if __name__ == "__main__":
    main()
