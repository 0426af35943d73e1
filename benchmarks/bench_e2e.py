"""End-to-end benchmark of `xmpspec measure` (files in, tables written) against LiMe.

What it measures, in one run, on one core (CPU time, each side in its own
process pinned to one CPU, BLAS on one thread), on the same FITS files:

1. ``xmpspec measure FILES --targets T -o OUT``: the real command
   (``xmpspec.cli.main``), CPU time per spectrum from the first argument parsed
   to the last table written (lines and objects, ECSV + FITS, with
   provenance), with a breakdown: **read** (``read_spectrum``), **match**
   (reading the targets table, ``match_target``), **fit**
   (``measure_spectrum``: the fit-only figure), **write** (the final tables,
   ``write_table_stream``) and **other** (the rest: per-chunk tables, Parquet
   parts, merge, provenance, progress). Interpreter start-up and imports are
   reported separately.
2. LiMe 2.0.5 tuned (``cont_source='adjacent'``, [NII] (and [SII],
   [OIII]4363) kinematics tied to Halpha ([SII]6716, Hgamma), the same 17
   lines and blends as ``bench_measure.py``) on the same files: read (astropy),
   fit (``fit.frame``) and write (``save_frame``, one table per spectrum).
3. Peak RSS of ``xmpspec measure`` on N and on 4N spectra (memory flat in the
   number of spectra).

1 and 2 run back to back ``--rounds`` times (default 3): the CPU speed of a
shared virtual machine drifts by 15-25% within minutes, so the ratio is taken
within each round and the median round is reported, with every round's ratio.

The spectra come from ``xmpspec simulate batch`` (``--spectra DIR`` reuses
such a folder: ``DIR/spectra/*.fits`` and ``DIR/targets.ecsv``).

Usage::

    python benchmarks/bench_e2e.py --n 200 --write
    python benchmarks/bench_e2e.py --n 50 --n-lime 20 --memory-factor 0   # quick look
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
PARTS = ("read", "match", "fit", "tables", "parts", "write")


def _pin_one_core() -> None:
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    except (AttributeError, OSError):  # not Linux: CPU time is per process anyway
        pass


def _cpu() -> float:
    return time.process_time()


# ----------------------------------------------------------------------------- children
def child_xmpspec(files: list[str], targets: str, out: str) -> dict:
    """Run `xmpspec measure` in this process with timers on its stages."""
    import importlib
    import resource
    t0 = _cpu()
    import xmpspec.io
    import xmpspec.lines.measure
    import xmpspec.lines.targets
    import xmpspec.tablestream
    from xmpspec.cli import main
    # modules the command imports on first use: one-off costs, counted with the imports
    for name in ("xmpspec.workflows.measure", "xmpspec.engine.run", "xmpspec.engine.merge",
                 "xmpspec.lines.measure", "xmpspec.lines.targets", "xmpspec.arrowio", "xmpspec.provenance", "pyarrow.parquet",
                 "astropy.io.misc.yaml", "astropy.io.ascii", "astropy.io.fits",
                 # imported by the first broad-component fit (lines/broad.py; 1 of the 200
                 # goodman spectra of the README run triggers one): 0.2 s, once per process
                 "scipy.optimize"):
        try:
            importlib.import_module(name)
        except ImportError:  # layout of another version: imported during the run instead
            pass
    # (no pyarrow.array warm-up: xmpspec.arrowio builds its Arrow arrays from buffers, so
    # the command never imports pandas; importing it here would hide a regression)
    t_import = _cpu() - t0
    acc = dict.fromkeys(PARTS, 0.0)

    def timed(module, name, part):
        if isinstance(module, str):
            try:
                module = importlib.import_module(module)
            except ImportError:
                return
        fn = getattr(module, name, None)
        if fn is None:  # another engine layout: counted in 'other'
            return

        def wrapper(*a, **k):
            s = _cpu()
            try:
                return fn(*a, **k)
            finally:
                acc[part] += _cpu() - s
        setattr(module, name, wrapper)

    timed(xmpspec.io, "read_spectrum", "read")
    timed(xmpspec.lines.targets, "match_target", "match")
    timed(xmpspec.lines.targets, "read_targets", "match")
    timed(xmpspec.lines.measure, "measure_spectrum", "fit")
    timed(xmpspec.tablestream, "write_table_stream", "write")
    timed(xmpspec.lines.measure, "lines_table", "tables")
    timed(xmpspec.lines.measure, "objects_table", "tables")
    timed("xmpspec.engine.worker", "table_to_arrow", "parts")
    timed("xmpspec.engine.stream", "write_part", "parts")
    t1 = _cpu()
    rc = main(["--quiet", "measure", *files, "--targets", targets, "-o", out])
    total = _cpu() - t1
    return {"rc": rc, "n": len(files), "import": t_import, "total": total, **acc,
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def child_lime(files: list[str], targets: str, out: str) -> dict:
    """LiMe tuned on the same files: read with astropy, fit, save each line frame."""
    import logging
    import warnings

    import numpy as np
    from astropy.table import Table
    t0 = _cpu()
    import lime
    t_import = _cpu() - t0
    sys.path.insert(0, str(HERE))
    from bench_measure import LIME_BLENDS, LIME_LABELS, LIME_TIED
    logging.getLogger("lime").setLevel(logging.CRITICAL)
    cfg = {"default_line_fitting": dict(LIME_BLENDS, **LIME_TIED)}
    tg = Table.read(targets)
    zs = {str(n): float(z) for n, z in zip(tg["name"], tg["z"], strict=True)}
    acc = dict.fromkeys(PARTS, 0.0)
    failures = 0
    Path(out).mkdir(parents=True, exist_ok=True)
    for f in files:
        s0 = _cpu()
        t = Table.read(f, hdu=1)
        name = Path(f).name.split(".")[0]
        wave = np.asarray(t["wavelength"], float)
        flux = np.asarray(t["flux"], float)
        err = np.asarray(t["error"], float)
        mask = np.asarray(t["mask"], bool)
        s1 = _cpu()
        acc["read"] += s1 - s0
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                s = lime.Spectrum(wave, flux, err, redshift=zs[name], units_wave="AA",
                                  units_flux="FLAM", norm_flux=1.0, pixel_mask=mask)
                bands = s.retrieve.lines_frame(line_list=list(LIME_LABELS.values()),
                                               vacuum_waves=True, fit_cfg=cfg)
                s.fit.frame(bands, cfg, cont_source="adjacent", progress_output=None)
                s2 = _cpu()
                acc["fit"] += s2 - s1
                s.save_frame(str(Path(out) / f"{name}_lines.txt"))
                acc["write"] += _cpu() - s2
        except Exception:  # noqa: BLE001 - LiMe raises on some spectra: counted
            failures += 1
            acc["fit"] += _cpu() - s1
    total = sum(acc.values())
    return {"n": len(files), "import": t_import, "total": total, "failures": failures, **acc}


def _run_child(kind: str, files: list[str], targets: str, out: str) -> dict:
    listing = Path(out + ".files.txt")
    listing.parent.mkdir(parents=True, exist_ok=True)
    listing.write_text("\n".join(files), encoding="utf-8")
    cmd = [sys.executable, str(Path(__file__).resolve()), f"--child-{kind}", str(listing),
           targets, out]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    m = re.search(r"^RESULT (.*)$", proc.stdout, flags=re.M)
    if proc.returncode or not m:
        raise RuntimeError(f"{kind} child failed (exit {proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return json.loads(m.group(1))


# ----------------------------------------------------------------------------- main
def _simulate(n: int, setups: list[str], seed: int, folder: Path) -> None:
    cmd = [sys.executable, "-c", "import sys; from xmpspec.cli import main; "
           "sys.exit(main(sys.argv[1:]))", "--quiet", "simulate", "batch", "-n", str(n),
           "--seed", str(seed), "-o", str(folder)]
    for s in setups:
        cmd += ["--setup", s]
    if subprocess.run(cmd).returncode:
        raise RuntimeError("xmpspec simulate batch failed")


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="spectra (default 200)")
    ap.add_argument("--n-lime", type=int, default=None, help="spectra for LiMe (default --n)")
    ap.add_argument("--setup", action="append", default=None,
                    help="simulator set-up; repeat for several (default goodman_400)")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--spectra", type=Path, default=None,
                    help="existing `xmpspec simulate batch` folder to use")
    ap.add_argument("--memory-factor", type=int, default=4,
                    help="also run on this many times the spectra for peak RSS (0: skip)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds of (xmpspec, LiMe); the median round is reported (default 3)")
    ap.add_argument("--write", action="store_true", help="write the section of README.md")
    a = ap.parse_args(argv)
    setups = a.setup or ["goodman_400"]
    t_start = time.time()
    with tempfile.TemporaryDirectory(prefix="xmpspec_e2e_") as tmp:
        tmp = Path(tmp)
        sim = a.spectra
        if sim is None:
            sim = tmp / "sim"
            _simulate(a.n, setups, a.seed, sim)
        files = sorted(str(p) for p in (sim / "spectra").glob("*.fits"))[:a.n]
        targets = str(sim / "targets.ecsv")
        n_lime = min(a.n_lime or len(files), len(files))
        from astropy.io import fits
        with fits.open(files[0]) as h:
            npix = int(h[1].header["NAXIS2"])
        load0 = _load()
        # rounds of (xmpspec, LiMe) back to back: this machine's speed drifts by 15-25%
        # within minutes, so the ratio is taken within each round and the median round
        # is reported (every round's ratio is listed)
        rounds = []
        for k in range(a.rounds):
            xmp = _run_child("xmpspec", files, targets, str(tmp / f"out_xmpspec{k}"))
            print("xmpspec", xmp, flush=True)
            lime = _run_child("lime", files[:n_lime], targets, str(tmp / f"out_lime{k}"))
            print("lime", lime, flush=True)
            ratio = (lime["total"] / lime["n"]) / (xmp["total"] / xmp["n"])
            rounds.append((ratio, xmp, lime))
        rounds.sort(key=lambda t: t[0])
        _, xmp, lime = rounds[(len(rounds) - 1) // 2]
        load1 = _load()
        big = None
        if a.memory_factor and a.memory_factor > 1:
            many = tmp / "many"
            many.mkdir()
            paths = []
            for k in range(a.memory_factor):
                for f in files:
                    p = many / f"c{k}_{Path(f).name}"
                    os.link(f, p)
                    paths.append(str(p))
            big = _run_child("xmpspec", paths, targets, str(tmp / "out_big"))
            print("xmpspec x", a.memory_factor, big, flush=True)
    res = dict(args=a, setups=setups, n=len(files), npix=npix, xmp=xmp, lime=lime, big=big,
               load=(load0, load1), minutes=(time.time() - t_start) / 60,
               ratios=[t[0] for t in rounds])
    text = report(res)
    print(text)
    if a.write:
        write_readme(text)


def report(r) -> str:
    a, x, lm = r["args"], r["xmp"], r["lime"]
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    per = {k: 1e3 * x[k] / x["n"] for k in (*PARTS, "total")}
    per["other"] = per["total"] - sum(per[k] for k in PARTS)
    lper = {k: 1e3 * lm[k] / lm["n"] for k in (*PARTS, "total")}
    ratio = lper["total"] / per["total"]
    fit_ratio = lper["fit"] / per["fit"]
    setups = " ".join(f"--setup {s}" for s in r["setups"])
    lines = [
        "## End to end: `xmpspec measure` files -> tables vs LiMe (`bench_e2e.py`)",
        "",
        f"`python benchmarks/bench_e2e.py --n {a.n}"
        + (f" --n-lime {a.n_lime}" if a.n_lime else "") + f" {setups} --seed {a.seed}"
        f" --memory-factor {a.memory_factor} --rounds {a.rounds} --write` ({platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; each side in its own "
        f"process pinned to one core, CPU time; measured {when}; 1/5/15-min load average "
        f"{r['load'][0]} before and {r['load'][1]} after the timed runs). Spectra: "
        f"{r['n']} `xmpspec simulate batch` FITS files ({', '.join(r['setups'])}, "
        f"{r['npix']} pixels in the first), targets table with z; xmpspec: the real "
        "command `xmpspec measure FILES --targets targets.ecsv -o OUT` (17 lines + blends, "
        "lines and objects tables in ECSV and FITS with provenance); LiMe 2.0.5 "
        "`cont_source='adjacent'`, [NII] kinematics tied to Halpha, same lines and blends "
        "as bench_measure.py, reading the same files with astropy and saving each line "
        "frame (`save_frame`).",
        "",
        "| ms per spectrum (CPU) | read | match | fit | tables | parts | write | other | "
        "total | LiMe / xmpspec |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| xmpspec measure ({x['n']} spectra, exit {x['rc']}) | {per['read']:.2f} | "
        f"{per['match']:.2f} | {per['fit']:.2f} | {per['tables']:.2f} | {per['parts']:.2f} | "
        f"{per['write']:.2f} | {per['other']:.2f} | **{per['total']:.2f}** | "
        f"**{ratio:.1f}x** end to end, {fit_ratio:.1f}x fit only |",
        f"| LiMe tuned ({lm['n']} spectra, {lm['failures']} failed) | {lper['read']:.2f} | - | "
        f"{lper['fit']:.1f} | - | - | {lper['write']:.2f} | - | **{lper['total']:.1f}** | |",
        "",
        "xmpspec: 'tables' = per-chunk lines/objects tables from the measurements "
        "(`lines_table`, `objects_table`), 'parts' = their Arrow conversion and Parquet "
        "parts, 'write' = the final lines/objects tables (merge of the parts, ECSV + FITS "
        "with provenance), 'other' = the rest (CLI, input expansion, lock, provenance, "
        "progress). LiMe: 'write' = `save_frame` per spectrum. One-off costs not in the "
        "table (imports): xmpspec "
        f"imports {x['import']:.2f} s CPU, LiMe imports {lm['import']:.2f} s. Including its "
        f"imports, xmpspec takes {1e3 * (x['total'] + x['import']) / x['n']:.1f} ms per "
        f"spectrum on {x['n']} spectra ({(lper['total'] + 1e3 * lm['import'] / lm['n']) / (1e3 * (x['total'] + x['import']) / x['n']):.1f}x LiMe with its imports).",
    ]
    if r["big"] is not None:
        b = r["big"]
        lines += ["", f"Memory: peak RSS of `xmpspec measure` {x['maxrss_mb']:.0f} MB on "
                      f"{x['n']} spectra, {b['maxrss_mb']:.0f} MB on {b['n']} "
                      f"({1e3 * b['total'] / b['n']:.2f} ms per spectrum, exit {b['rc']})."]
    if len(r["ratios"]) > 1:
        lines += ["", f"Rounds: {len(r['ratios'])} (xmpspec then LiMe, back to back); the table "
                      "is the median round; end-to-end ratio of every round: "
                      + ", ".join(f"{v:.1f}x" for v in r["ratios"]) + "."]
    lines += ["", f"Total benchmark time {r['minutes']:.1f} min."]
    return "\n".join(lines)


def write_readme(text: str) -> None:
    path = HERE / "README.md"
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"<!-- BEGIN bench_e2e -->\n{text}\n<!-- END bench_e2e -->"
    if "<!-- BEGIN bench_e2e -->" in old:
        new = re.sub(r"<!-- BEGIN bench_e2e -->.*?<!-- END bench_e2e -->", lambda m: block,
                     old, flags=re.S)
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(new)
    print(f"wrote {path}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] in ("--child-xmpspec", "--child-lime"):
        _pin_one_core()
        kind = sys.argv[1][len("--child-"):]
        names = Path(sys.argv[2]).read_text(encoding="utf-8").splitlines()
        fn = child_xmpspec if kind == "xmpspec" else child_lime
        print("RESULT " + json.dumps(fn(names, sys.argv[3], sys.argv[4])), flush=True)
    else:
        main()
