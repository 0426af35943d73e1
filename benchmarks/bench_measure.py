"""Benchmark of `xmpspec measure`: speed and flux accuracy against plain lmfit and LiMe.

What it measures (one run, one core, the same spectra for every method):

1. spectra per second of the xmpspec fast path (``measure_spectrum``), of the
   same model fitted with plain lmfit (``fitter='lmfit'``), and of LiMe
   (``lime-stable``) fitting the same lines and blends, with its defaults and
   with ``cont_source='adjacent'`` plus [NII] (and [SII], [OIII]4363)
   kinematics tied to Halpha ([SII]6716, Hgamma);
2. flux accuracy of each on lines with expected S/N > 20 and on [NII]6585;
3. MCMC (``--mcmc``) CPU time per object;
4. peak memory of ``xmpspec measure`` streaming many spectra from disk.

The spectra: ``--models`` simulator draws (``simulate_spectrum`` with random
z, N2, Halpha flux, on the Goodman set-up that covers every line) times
noise realisations drawn from the simulator's exact error spectrum, ``--n``
spectra in all.

Usage::

    python benchmarks/bench_measure.py --n 1000 --write
    python benchmarks/bench_measure.py --n 100 --n-lime 50 --stream 500   # quick look
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from xmpspec.config import load_config  # noqa: E402
from xmpspec.lines.measure import measure_spectrum  # noqa: E402
from xmpspec.simulate import simulate_spectrum  # noqa: E402
from xmpspec.spectrum import Spectrum  # noqa: E402

HERE = Path(__file__).resolve().parent
LIME_LABELS = {
    "oii3727": "O2_3726A", "oii3730": "O2_3729A", "neiii3870": "Ne3_3869A", "hd": "H1_4102A",
    "hg": "H1_4340A", "oiii4364": "O3_4363A", "heii4687": "He2_4686A", "hb": "H1_4861A",
    "oiii4960": "O3_4959A", "oiii5008": "O3_5007A", "hei5877": "He1_5876A",
    "oi6302": "O1_6300A", "nii6550": "N2_6548A", "ha": "H1_6563A", "nii6585": "N2_6583A",
    "sii6718": "S2_6716A", "sii6733": "S2_6731A",
}
LIME_BLENDS = {
    "O2_3726A_b": "O2_3726A+O2_3729A",
    "H1_4340A_b": "H1_4340A+O3_4363A",
    "H1_6563A_b": "H1_6563A+N2_6583A+N2_6548A",
    "S2_6716A_b": "S2_6716A+S2_6731A",
    "N2_6548A_amp": {"expr": "N2_6583A_amp/2.96"},
}
LIME_TIED = {"N2_6548A_kinem": "H1_6563A", "N2_6583A_kinem": "H1_6563A",
             "S2_6731A_kinem": "S2_6716A", "O3_4363A_kinem": "H1_4340A"}


def make_spectra(n: int, n_models: int, setup: str, seed: int):
    """``n`` spectra: ``n_models`` simulator draws x noise realisations."""
    rng = np.random.default_rng(seed)
    per = int(np.ceil(n / n_models))
    out = []
    for i in range(n_models):
        z = rng.uniform(0.005, 0.05)
        n2 = rng.uniform(-2.6, -0.8)
        fha = 10 ** rng.uniform(np.log10(150.0), np.log10(3000.0))
        spec, truth, model = simulate_spectrum(setup, z=z, n2=n2, halpha_flux=fha,
                                               seed=seed * 1000 + i, return_model=True,
                                               name=f"B{i:04d}")
        m = model.to_value(spec.flux.unit)
        err = spec.error.value
        for j in range(per):
            if len(out) >= n:
                break
            f = m + err * rng.standard_normal(err.size)
            s = Spectrum(spec.wavelength, f * spec.flux.unit, spec.error, mask=spec.mask.copy(),
                         redshift=z, meta=dict(spec.meta, name=f"B{i:04d}_{j:02d}"))
            out.append((s, truth))
    return out


def run_xmpspec(spectra, fitter: str, cfg):
    res = []
    t0 = time.process_time()
    for spec, _ in spectra:
        m = measure_spectrum(spec, config=cfg, fitter=fitter)
        res.append({r["line"]: (r["gauss_flux"], r["flux"]) for r in m.line_rows})
    return time.process_time() - t0, res


def run_lime(spectra, adjacent: bool):
    import lime
    logging.getLogger("lime").setLevel(logging.CRITICAL)
    cfg = {"default_line_fitting": dict(LIME_BLENDS, **(LIME_TIED if adjacent else {}))}
    res, failures = [], 0
    t0 = time.process_time()
    for spec, truth in spectra:
        out = {}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                s = lime.Spectrum(spec.wavelength.value, spec.flux.value, spec.error.value,
                                  redshift=truth["z"], units_wave="AA", units_flux="FLAM",
                                  norm_flux=1.0, pixel_mask=spec.mask)
                bands = s.retrieve.lines_frame(line_list=list(LIME_LABELS.values()),
                                               vacuum_waves=True, fit_cfg=cfg)
                s.fit.frame(bands, cfg, cont_source="adjacent" if adjacent else "central",
                            progress_output=None)
            fr = s.frame
            for key, lab in LIME_LABELS.items():
                if fr is not None and lab in fr.index:
                    v = float(fr.loc[lab, "profile_flux"])
                    out[key] = (v, v)
        except Exception:  # LiMe raises on some spectra; counted, not hidden
            failures += 1
        res.append(out)
    return time.process_time() - t0, res, failures


def accuracy(spectra, res, which: int):
    """Median bias and median |relative error| of strong lines; [NII]6585 statistics."""
    rel, rel_n2, n2d, missing = [], [], [], 0
    for (_, truth), r in zip(spectra, res, strict=True):
        r = dict(r)
        # [OII]3727,3730 are unresolved at low resolution: compare their sum
        a, b = r.get("oii3727"), r.get("oii3730")
        if a is not None and b is not None and a[which] is not None and b[which] is not None:
            r["oii_sum"] = (a[0] + b[0], a[1] + b[1])
        truth = dict(truth, f_oii_sum=truth["f_oii3727"] + truth["f_oii3730"],
                     snr_oii_sum=float(np.hypot(truth["snr_oii3727"], truth["snr_oii3730"])),
                     snr_oii3727=0.0, snr_oii3730=0.0)
        for key in [*LIME_LABELS, "oii_sum"]:
            if truth.get(f"snr_{key}", 0) > 20:
                v = r.get(key)
                if v is None or v[which] is None or not np.isfinite(v[which]):
                    missing += 1
                    continue
                rel.append(v[which] / truth[f"f_{key}"] - 1)
        if truth.get("snr_nii6585", 0) > 5:
            v, h = r.get("nii6585"), r.get("ha")
            if v is None or h is None or v[which] is None or not (v[which] > 0 and h[which] > 0):
                missing += 1
                continue
            rel_n2.append(v[which] / truth["f_nii6585"] - 1)
            n2d.append(np.log10(v[which] / h[which]) - truth["n2"])
    rel, rel_n2, n2d = map(np.asarray, (rel, rel_n2, n2d))
    return {
        "strong_bias": float(np.median(rel)) if rel.size else np.nan,
        "strong_mad": float(np.median(np.abs(rel))) if rel.size else np.nan,
        "strong_cat": int(np.sum(np.abs(rel) > 0.2)), "n_strong": int(rel.size),
        "nii_bias": float(np.median(rel_n2)) if rel_n2.size else np.nan,
        "n2_mad": float(np.median(np.abs(n2d))) if n2d.size else np.nan,
        "n2_cat": int(np.sum(np.abs(n2d) > 0.3)), "n_nii": int(n2d.size), "missing": missing,
    }


def mcmc_times(spectra, cfg, n):
    times = []
    for i, (spec, _) in enumerate(spectra[:n]):
        t0 = time.process_time()
        measure_spectrum(spec, config=cfg, mcmc=True, seed=i)
        times.append(time.process_time() - t0)
    return np.array(times)


def stream_memory(n: int, setup: str, seed: int, workdir: Path):
    """Write ``n`` spectra to disk, run `xmpspec measure` on all, report peak RSS."""
    from xmpspec.io import write_spectrum
    spectra = make_spectra(min(n, 200), max(min(n, 200) // 20, 1), setup, seed)
    paths = []
    rng = np.random.default_rng(seed)
    for i in range(n):
        spec, _ = spectra[i % len(spectra)]
        s = Spectrum(spec.wavelength, spec.flux + 0.01 * rng.standard_normal(spec.flux.size)
                     * spec.error, spec.error, mask=spec.mask, redshift=spec.redshift,
                     meta=dict(spec.meta, name=f"S{i:05d}"))
        p = workdir / f"S{i:05d}.fits"
        write_spectrum(s, p)
        paths.append(str(p))
    out = workdir / "out"
    cmd = [sys.executable, "-c",
           "import resource,sys; from xmpspec.cli import main; rc = main(sys.argv[1:]); "
           "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); "
           "sys.exit(rc)", "--quiet", "measure", *paths, "-o", str(out)]
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - t0
    m = re.search(r"MAXRSS_KB (\d+)", proc.stdout)
    rss = int(m.group(1)) / 1024.0 if m else float("nan")
    return rss, wall, proc.returncode, proc.stderr[-500:]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="spectra (default 1000)")
    ap.add_argument("--models", type=int, default=100, help="simulator draws (default 100)")
    ap.add_argument("--n-lime", type=int, default=None, help="spectra for LiMe (default --n)")
    ap.add_argument("--n-lmfit", type=int, default=200, help="spectra for plain lmfit")
    ap.add_argument("--mcmc-n", type=int, default=30, help="objects timed with --mcmc")
    ap.add_argument("--stream", type=int, default=10000, help="spectra streamed from disk "
                                                              "(0: skip)")
    ap.add_argument("--setup", default="goodman_400")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--write", action="store_true", help="write the section of README.md")
    a = ap.parse_args(argv)
    cfg = load_config(search_cwd=False)
    t_start = time.time()
    spectra = make_spectra(a.n, min(a.models, a.n), a.setup, a.seed)
    n_lime = a.n if a.n_lime is None else min(a.n_lime, a.n)
    n_lm = min(a.n_lmfit, a.n)
    print(f"{len(spectra)} spectra ({a.setup}); LiMe on {n_lime}, lmfit on {n_lm}", flush=True)
    measure_spectrum(spectra[0][0], config=cfg)            # warm-up (imports)
    measure_spectrum(spectra[0][0], config=cfg, fitter="lmfit")
    t_fast, r_fast = run_xmpspec(spectra, "fast", cfg)
    print(f"xmpspec fast: {len(spectra) / t_fast:.1f} spectra/s", flush=True)
    t_lm, r_lm = run_xmpspec(spectra[:n_lm], "lmfit", cfg)
    print(f"plain lmfit: {n_lm / t_lm:.2f} spectra/s", flush=True)
    run_lime(spectra[:1], False)                           # warm-up
    t_l1, r_l1, f_l1 = run_lime(spectra[:n_lime], False)
    print(f"LiMe default: {n_lime / t_l1:.2f} spectra/s ({f_l1} failed)", flush=True)
    t_l2, r_l2, f_l2 = run_lime(spectra[:n_lime], True)
    print(f"LiMe adjacent+tied: {n_lime / t_l2:.2f} spectra/s ({f_l2} failed)", flush=True)
    sub = spectra[:n_lime]
    acc = {
        "xmpspec fast (Gaussian)": accuracy(sub, r_fast[:n_lime], 0),
        "xmpspec fast (reported: integrated Halpha/[NII] when gated)": accuracy(sub, r_fast[:n_lime], 1),
        "plain lmfit (Gaussian)": accuracy(spectra[:n_lm], r_lm, 0),
        "LiMe default": accuracy(sub, r_l1, 0),
        "LiMe adjacent + tied [NII]": accuracy(sub, r_l2, 0),
    }
    for k, v in acc.items():
        print(k, v, flush=True)
    tm = mcmc_times(spectra, cfg, min(a.mcmc_n, len(spectra)))
    print(f"MCMC per object: median {np.median(tm):.2f} s, max {tm.max():.2f} s", flush=True)
    stream = None
    if a.stream:
        with tempfile.TemporaryDirectory(prefix="xmpspec_bench_") as d:
            stream = stream_memory(a.stream, a.setup, a.seed + 7, Path(d))
        print(f"streaming {a.stream} spectra: peak RSS {stream[0]:.0f} MB, "
              f"{stream[1]:.0f} s wall, exit {stream[2]}", flush=True)
        if stream[2] not in (0,):
            print(stream[3])
    res = dict(n=len(spectra), n_lime=n_lime, n_lm=n_lm, fast=len(spectra) / t_fast,
               lmfit=n_lm / t_lm, lime1=n_lime / t_l1, lime2=n_lime / t_l2, f_l1=f_l1,
               f_l2=f_l2, acc=acc, mcmc=tm, stream=stream, args=a,
               minutes=(time.time() - t_start) / 60)
    text = report(res)
    print(text)
    if a.write:
        write_readme(text)


def report(r) -> str:
    a = r["args"]
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Line measurement: xmpspec vs plain lmfit vs LiMe (`bench_measure.py`)",
        "",
        f"`python benchmarks/bench_measure.py --n {a.n} --models {a.models}"
        + (f" --n-lime {a.n_lime}" if a.n_lime else "") + f" --n-lmfit {a.n_lmfit}"
        f" --mcmc-n {a.mcmc_n} --stream {a.stream} --write` ({platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; one core, CPU time; "
        f"measured {when}; other jobs were running on the machine). Spectra: {a.setup}, "
        f"{a.models} simulator draws (z 0.005-0.05, N2 -2.6 to -0.8, Halpha 150-3000e-17) x "
        "noise realisations; every method fits the same 17 lines (blends: [OII], "
        "Hgamma+[OIII]4363, Halpha+[NII], [SII]; [NII]6548 = 6583/2.96) at the true redshift.",
        "",
        "| method | spectra | spectra/s | xmpspec speed-up |",
        "|---|---|---|---|",
        f"| xmpspec fast path | {r['n']} | {r['fast']:.1f} | 1 |",
        f"| plain lmfit (same model) | {r['n_lm']} | {r['lmfit']:.2f} | "
        f"{r['fast'] / r['lmfit']:.0f}x |",
        f"| LiMe 2.0.5 defaults | {r['n_lime']} | {r['lime1']:.2f} | "
        f"{r['fast'] / r['lime1']:.0f}x |",
        f"| LiMe 2.0.5 `cont_source='adjacent'`, [NII] kinematics tied to Halpha | "
        f"{r['n_lime']} | {r['lime2']:.2f} | {r['fast'] / r['lime2']:.0f}x |",
        "",
        f"LiMe failures (exceptions): {r['f_l1']} (defaults), {r['f_l2']} (adjacent).",
        "",
        "Flux accuracy on the same spectra (lines with expected S/N > 20, [OII] as the "
        "3727+3730 sum; [NII]6585 with "
        "expected S/N > 5; 'catastrophic' = |relative error| > 20% or |N2 error| > 0.3 dex; "
        "'missing' = line not returned):",
        "",
        "| method | strong lines: median bias | median abs. rel. error | catastrophic | "
        "[NII]6585 median bias | N2 median abs. error (dex) | N2 catastrophic | missing |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k, v in r["acc"].items():
        lines.append(f"| {k} | {100 * v['strong_bias']:+.2f}% | {100 * v['strong_mad']:.2f}% | "
                     f"{v['strong_cat']}/{v['n_strong']} | {100 * v['nii_bias']:+.2f}% | "
                     f"{v['n2_mad']:.3f} | {v['n2_cat']}/{v['n_nii']} | {v['missing']} |")
    tm = r["mcmc"]
    lines += ["", f"`--mcmc`: {np.median(tm):.2f} s median, {tm.max():.2f} s max CPU per object "
                  f"({tm.size} objects, all line groups)."]
    if r["stream"] is not None:
        rss, wall, rc, _ = r["stream"]
        lines += ["", f"Streaming: `xmpspec measure` on {a.stream} FITS spectra from disk in one "
                      f"process: peak RSS {rss:.0f} MB, {wall / 60:.1f} min wall (exit code {rc})."]
    lines += ["", f"Total benchmark time {r['minutes']:.1f} min."]
    return "\n".join(lines)


def write_readme(text: str) -> None:
    path = HERE / "README.md"
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"<!-- BEGIN bench_measure -->\n{text}\n<!-- END bench_measure -->"
    if "<!-- BEGIN bench_measure -->" in old:
        new = re.sub(r"<!-- BEGIN bench_measure -->.*?<!-- END bench_measure -->", block, old,
                     flags=re.S)
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(new)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
