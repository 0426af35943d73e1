"""Direct-method (Te) abundances with PyNeb emissivities tabulated on a Te-ne grid.

Physics (science.md "Abundances"): Te([OIII]) and ne solved together
(PyNeb ``Diagnostics.getCrossTemDen`` logic) from
[OIII]4364/(4960+5008) and [OII]3727/3730 (or [SII]6733/6718); where no
density diagnostic is measured ne is the row's ``ne_fixed`` or
``dust.ne_default``. Te([OII]) = 0.7 Te([OIII]) + 3000 K (Garnett 1992);
O+/H+ from [OII](3727+3730)/Hbeta at Te([OII]), O++/H+ from
[OIII](4960+5008)/Hbeta at Te([OIII]) with PyNeb's ``getIonAbundance``
definition (Hbeta emissivity at the ion's Te);
12 + log(O/H) = 12 + log10(O+/H+ + O++/H+). Errors by Monte Carlo over the
line-flux errors.

Speed: calling PyNeb for every Monte Carlo draw costs tens of seconds per
object, so :class:`EmissivityGrid` tabulates PyNeb's own emissivities
(``Atom.getEmissivity``, ``RecAtom.getEmissivity``) once on a grid uniform in
log Te and log ne (``abundances.te_grid``/``ne_grid``), caches it on disk
(``$XMPSPEC_CACHE_DIR``, else ``$XDG_CACHE_HOME/xmpspec``, else
``~/.cache/xmpspec``; keyed by the PyNeb version, atomic-data files and grid)
and interpolates log emissivities bilinearly. Temperatures and densities are
found by inverting the tabulated ratios, vectorised over draws. The test
suite checks the results against PyNeb called directly (0.005 dex in O/H,
50 K in Te). PyNeb atoms are built once per process.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..config import Config, get_active_config

__all__ = ["pyneb_atoms", "EmissivityGrid", "get_grid", "DirectResult", "solve_direct",
           "direct_abundance_mc", "direct_abundance_pyneb", "cache_dir", "GRID_LINES"]

log = logging.getLogger("xmpspec.physics.direct_te")

# grid key -> (element, spectrum, wavelength (PyNeb, air A) or recombination label)
GRID_LINES = {
    "O3_4363": ("O", 3, 4363), "O3_4959": ("O", 3, 4959), "O3_5007": ("O", 3, 5007),
    "O2_3726": ("O", 2, 3726), "O2_3729": ("O", 2, 3729),
    "S2_6716": ("S", 2, 6716), "S2_6731": ("S", 2, 6731),
    "H1_3_2": ("H", 1, "3_2"), "H1_4_2": ("H", 1, "4_2"),
    "H1_5_2": ("H", 1, "5_2"), "H1_6_2": ("H", 1, "6_2"),
}
# xmpspec Balmer line key -> grid key
BALMER_GRID = {"ha": "H1_3_2", "hb": "H1_4_2", "hg": "H1_5_2", "hd": "H1_6_2"}
# density diagnostic -> (numerator, denominator) grid keys, PyNeb diagnostic label
DENSITY_DIAGS = {"OII": ("O2_3726", "O2_3729", "[OII] 3726/3729"),
                 "SII": ("S2_6731", "S2_6716", "[SII] 6731/6716")}


def _quiet_pyneb():
    import pyneb as pn
    try:
        pn.log_.level = 1  # errors only
    except Exception:  # pragma: no cover - older PyNeb
        pass
    return pn


@lru_cache(maxsize=1)
def pyneb_atoms() -> dict:
    """PyNeb atoms O2, O3, S2 and H1 (recombination), built once per process."""
    pn = _quiet_pyneb()
    return {"O2": pn.Atom("O", 2), "O3": pn.Atom("O", 3), "S2": pn.Atom("S", 2),
            "H1": pn.RecAtom("H", 1)}


def cache_dir() -> Path:
    """Folder of on-disk caches (``XMPSPEC_CACHE_DIR`` > ``XDG_CACHE_HOME/xmpspec`` > ``~/.cache/xmpspec``)."""
    env = os.environ.get("XMPSPEC_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "xmpspec"


def _grid_spec(config: Config) -> dict:
    ab = config["abundances"]
    t0, t1, nt = ab["te_grid"]
    n0, n1, nn = ab["ne_grid"]
    return {"te": [float(t0), float(t1), int(nt)], "ne": [float(n0), float(n1), int(nn)]}


def _grid_key(spec: dict) -> str:
    from importlib import metadata
    pn = _quiet_pyneb()
    files = {}
    for name in ("O2", "O3", "S2", "H1"):
        try:
            files[name] = [str(f) for f in pn.atomicData.getDataFile(name)]
        except Exception:
            files[name] = "?"
    text = json.dumps({"spec": spec, "pyneb": metadata.version("pyneb"), "files": files,
                       "lines": {k: list(map(str, v)) for k, v in GRID_LINES.items()},
                       "version": 1}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


@dataclass
class EmissivityGrid:
    """PyNeb emissivities on a grid uniform in log10 Te and log10 ne.

    Attributes
    ----------
    log_te, log_ne : ndarray
        Grid axes (log10 K, log10 cm^-3).
    log_emis : dict
        ``{grid key: log10 emissivity (n_te, n_ne)}`` for :data:`GRID_LINES`.
    """

    log_te: np.ndarray
    log_ne: np.ndarray
    log_emis: dict = field(default_factory=dict)

    @classmethod
    def build(cls, spec: dict) -> EmissivityGrid:
        """Tabulate PyNeb emissivities (a few seconds)."""
        atoms = pyneb_atoms()
        te = np.geomspace(*spec["te"][:2], spec["te"][2])
        ne = np.geomspace(*spec["ne"][:2], spec["ne"][2])
        out = {}
        all_trans: dict = {}
        for key, (elem, spec_no, line) in GRID_LINES.items():
            atom = atoms[f"{elem}{spec_no}"]
            if isinstance(line, str):
                e = atom.getEmissivity(te, ne, label=line, product=True)
            else:
                # one population solve per atom: PyNeb returns every transition at once
                ak = f"{elem}{spec_no}"
                if ak not in all_trans:
                    all_trans[ak] = atom.getEmissivity(te, ne, product=True)
                lev_i, lev_j = atom.getTransition(line)
                e = all_trans[ak][int(lev_i) - 1, int(lev_j) - 1]
            e = np.asarray(e, float).reshape(len(te), len(ne))
            if not np.all(np.isfinite(e) & (e > 0)):
                raise RuntimeError(f"PyNeb emissivity of {key} not finite on the grid "
                                   f"(Te {spec['te'][:2]} K, ne {spec['ne'][:2]} cm-3)")
            out[key] = np.log10(e)
        return cls(np.log10(te), np.log10(ne), out)

    def save(self, path: Path) -> None:
        """Write the grid (npz, atomic rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, log_te=self.log_te, log_ne=self.log_ne,
                 **{f"e_{k}": v for k, v in self.log_emis.items()})
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> EmissivityGrid:
        """Read a grid written by :meth:`save`."""
        with np.load(path) as d:
            emis = {k[2:]: d[k] for k in d.files if k.startswith("e_")}
            return cls(d["log_te"], d["log_ne"], emis)

    # -- interpolation -------------------------------------------------
    @staticmethod
    def _locate(axis: np.ndarray, x: np.ndarray):
        step = axis[1] - axis[0]
        t = (np.asarray(x, float) - axis[0]) / step
        t = np.where(np.isfinite(t), t, 0.0)  # NaN inputs: any cell; masked by the callers
        i = np.clip(np.floor(t).astype(int), 0, len(axis) - 2)
        f = np.clip(t - i, 0.0, 1.0)
        return i, f

    def log_emissivity(self, key: str, te, ne) -> np.ndarray:
        """log10 emissivity of ``key`` at (te, ne), bilinear in log space (clipped to the grid)."""
        i, fi = self._locate(self.log_te, np.log10(te))
        j, fj = self._locate(self.log_ne, np.log10(ne))
        g = self.log_emis[key]
        val = (g[i, j] * (1 - fi) * (1 - fj) + g[i + 1, j] * fi * (1 - fj)
               + g[i, j + 1] * (1 - fi) * fj + g[i + 1, j + 1] * fi * fj)
        return np.where(np.isfinite(te) & np.isfinite(ne), val, np.nan)

    def emissivity(self, key: str, te, ne) -> np.ndarray:
        """Emissivity of ``key`` (erg cm^3 s^-1, PyNeb units)."""
        return 10 ** self.log_emissivity(key, te, ne)

    def _log_ratio_grid(self, num: tuple[str, ...], den: tuple[str, ...]) -> np.ndarray:
        lin = lambda keys: sum(10 ** self.log_emis[k] for k in keys)  # noqa: E731
        return np.log10(lin(num)) - np.log10(lin(den))

    def solve_te(self, log_ratio: np.ndarray, ne: np.ndarray, num=("O3_4363",),
                 den=("O3_4959", "O3_5007")) -> tuple[np.ndarray, np.ndarray]:
        """Te at given ne from an observed log ratio (increasing with Te).

        Returns
        -------
        (ndarray, ndarray)
            Te (K) and a boolean array, True where the ratio lay outside the
            grid and Te was clipped to its edge.
        """
        g = self._ratio_cache(num, den)
        j, fj = self._locate(self.log_ne, np.log10(ne))
        rows = g[:, j] * (1 - fj) + g[:, j + 1] * fj  # (n_te, n)
        return self._invert(rows, np.asarray(log_ratio, float), self.log_te)

    def solve_ne(self, log_ratio: np.ndarray, te: np.ndarray, diag: str = "OII"
                 ) -> tuple[np.ndarray, np.ndarray]:
        """ne at given Te from a density-diagnostic log ratio (see :data:`DENSITY_DIAGS`)."""
        num, den, _ = DENSITY_DIAGS[diag]
        g = self._ratio_cache((num,), (den,))
        i, fi = self._locate(self.log_te, np.log10(te))
        cols = (g[i, :] * (1 - fi)[:, None] + g[i + 1, :] * fi[:, None]).T  # (n_ne, n)
        return self._invert(cols, np.asarray(log_ratio, float), self.log_ne)

    def _ratio_cache(self, num, den) -> np.ndarray:
        cache = self.__dict__.setdefault("_ratios", {})
        key = (tuple(num), tuple(den))
        if key not in cache:
            cache[key] = self._log_ratio_grid(tuple(num), tuple(den))
        return cache[key]

    @staticmethod
    def _invert(rows: np.ndarray, target: np.ndarray, axis: np.ndarray):
        """Per column c, the axis value where rows[:, c] (monotonic) equals target[c]."""
        if rows[-1].mean() < rows[0].mean():  # decreasing: flip sign
            rows, target = -rows, -target
        n_ax = rows.shape[0]
        below = rows[0] > target
        above = rows[-1] < target
        idx = np.clip((rows < target[None, :]).sum(axis=0) - 1, 0, n_ax - 2)
        cols = np.arange(rows.shape[1])
        r0, r1 = rows[idx, cols], rows[idx + 1, cols]
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.clip((target - r0) / (r1 - r0), 0.0, 1.0)
        x = axis[idx] + f * (axis[1] - axis[0])
        x = np.where(below, axis[0], np.where(above, axis[-1], x))
        bad = ~np.isfinite(target)
        x = np.where(bad, np.nan, x)
        return 10 ** x, (below | above) & ~bad


_GRIDS: dict[str, EmissivityGrid] = {}


def get_grid(config: Config | None = None, use_disk_cache: bool = True) -> EmissivityGrid:
    """The emissivity grid of the configuration (memory, then disk cache, else built)."""
    cfg = config or get_active_config()
    spec = _grid_spec(cfg)
    key = _grid_key(spec)
    if key in _GRIDS:
        return _GRIDS[key]
    path = cache_dir() / f"pyneb_grid_{key}.npz"
    grid = None
    if use_disk_cache and path.is_file():
        try:
            grid = EmissivityGrid.load(path)
        except Exception as exc:  # corrupt cache: rebuild
            log.warning("ignoring unreadable emissivity cache %s (%s)", path, exc)
    if grid is None:
        log.info("tabulating PyNeb emissivities on a %d x %d Te-ne grid", spec["te"][2],
                 spec["ne"][2])
        grid = EmissivityGrid.build(spec)
        if use_disk_cache:
            try:
                grid.save(path)
            except OSError as exc:
                log.warning("cannot cache the emissivity grid in %s (%s)", path, exc)
    _GRIDS[key] = grid
    return grid


@dataclass
class DirectResult:
    """Direct-method results for a set of draws (arrays of equal length).

    Attributes
    ----------
    te_oiii, te_oii, ne : ndarray
        Temperatures (K) and density (cm^-3).
    oplus, oplusplus : ndarray
        Ionic abundances O+/H+ and O++/H+ (NaN where not computable).
    oh : ndarray
        12 + log10(O/H) (NaN without O+).
    te_clipped, ne_clipped : ndarray of bool
        The ratio fell outside the grid and the value sits at a grid edge.
    ne_source : str
        ``OII``, ``SII``, ``fixed`` or ``default``.
    """

    te_oiii: np.ndarray
    te_oii: np.ndarray
    ne: np.ndarray
    oplus: np.ndarray
    oplusplus: np.ndarray
    oh: np.ndarray
    te_clipped: np.ndarray
    ne_clipped: np.ndarray
    ne_source: str


def _pos(x):
    x = np.asarray(x, float)
    return np.where(np.isfinite(x) & (x > 0), x, np.nan)


def solve_direct(fluxes: dict[str, np.ndarray], ne_fixed: float | None = None,
                 density_diag: str | None = None, config: Config | None = None,
                 grid: EmissivityGrid | None = None, max_iter: int = 30,
                 tol_k: float = 0.5) -> DirectResult:
    """Solve Te, ne and O/H for arrays of (dereddened) line fluxes.

    Parameters
    ----------
    fluxes : dict
        ``{line key: array}`` on a common scale, keys of the xmpspec line
        catalogue: ``oiii4364``, ``oiii4960`` and/or ``oiii5008``, ``hb``,
        ``oii3727`` + ``oii3730`` or ``oii_blend``, ``sii6718`` + ``sii6733``.
        Missing keys or non-positive values give NaN results where needed.
    ne_fixed : float, optional
        Density used when ``density_diag`` is None.
    density_diag : {'OII', 'SII', None}
        Density diagnostic to solve with Te (cross-converged), or None for ne_fixed.
    config : Config, optional
        ``abundances.te_oii_slope``, ``te_oii_offset``, ``doublets.OIII_5008_over_4960``,
        ``dust.ne_default``.
    grid : EmissivityGrid, optional
        Defaults to :func:`get_grid`.

    Returns
    -------
    DirectResult
    """
    cfg = config or get_active_config()
    grid = grid or get_grid(cfg)
    ab = cfg["abundances"]
    dr = float(cfg["doublets"]["OIII_5008_over_4960"])
    n = len(next(iter(fluxes.values())))
    get = lambda k: _pos(fluxes[k]) if k in fluxes else np.full(n, np.nan)  # noqa: E731
    o4364, o4960, o5008, hb = get("oiii4364"), get("oiii4960"), get("oiii5008"), get("hb")
    oiii = np.where(np.isfinite(o4960) & np.isfinite(o5008), o4960 + o5008,
                    np.where(np.isfinite(o5008), o5008 * (1 + 1 / dr), o4960 * (1 + dr)))
    with np.errstate(invalid="ignore", divide="ignore"):
        lr_t = np.log10(o4364 / oiii)
    if density_diag is not None:
        a, b = {"OII": ("oii3727", "oii3730"), "SII": ("sii6733", "sii6718")}[density_diag]
        with np.errstate(invalid="ignore", divide="ignore"):
            lr_n = np.log10(get(a) / get(b))
        te = np.full(n, float(cfg["dust"]["te_default"]))
        ne_clip = np.zeros(n, bool)
        for _ in range(max_iter):
            ne, ne_clip = grid.solve_ne(lr_n, te, density_diag)
            te_new, te_clip = grid.solve_te(lr_t, ne)
            done = np.nanmax(np.abs(te_new - te), initial=0.0) < tol_k
            te = te_new
            if done:
                break
        ne, ne_clip = grid.solve_ne(lr_n, te, density_diag)
        ne = np.where(np.isfinite(te), ne, np.nan)
        source = density_diag
    else:
        nev = float(ne_fixed) if ne_fixed is not None and np.isfinite(ne_fixed) \
            else float(cfg["dust"]["ne_default"])
        ne = np.full(n, nev)
        ne_clip = np.zeros(n, bool)
        te, te_clip = grid.solve_te(lr_t, ne)
        source = "fixed" if ne_fixed is not None and np.isfinite(ne_fixed) else "default"
    te_oii = float(ab["te_oii_slope"]) * te + float(ab["te_oii_offset"])
    hb_t3 = grid.emissivity("H1_4_2", te, ne)
    o3_e = grid.emissivity("O3_4959", te, ne) + grid.emissivity("O3_5007", te, ne)
    with np.errstate(invalid="ignore", divide="ignore"):
        opp = oiii / hb * hb_t3 / o3_e
        oii = np.where(np.isfinite(get("oii3727")) & np.isfinite(get("oii3730")),
                       get("oii3727") + get("oii3730"), get("oii_blend"))
        hb_t2 = grid.emissivity("H1_4_2", te_oii, ne)
        o2_e = grid.emissivity("O2_3726", te_oii, ne) + grid.emissivity("O2_3729", te_oii, ne)
        op = oii / hb * hb_t2 / o2_e
        oh = 12 + np.log10(op + opp)
    return DirectResult(te, te_oii, ne, op, opp, oh, te_clip, ne_clip, source)


def direct_abundance_mc(values: dict[str, float], errors: dict[str, float],
                        n_draws: int, rng: np.random.Generator, ne_fixed: float | None = None,
                        density_diag: str | None = None, dust_factor=None,
                        config: Config | None = None, grid: EmissivityGrid | None = None
                        ) -> tuple[DirectResult, dict]:
    """Direct method for one object: nominal solution plus Monte Carlo errors.

    Parameters
    ----------
    values, errors : dict
        Line fluxes and 1-sigma errors (same keys as :func:`solve_direct`).
    n_draws : int
        Number of Monte Carlo draws (0: no errors).
    rng : numpy.random.Generator
    ne_fixed, density_diag : see :func:`solve_direct`.
    dust_factor : callable, optional
        ``f(n) -> {key: correction factor array (n,)}`` applied to the drawn
        fluxes (for drawing the E(B-V) too); the nominal solution uses
        ``f(0)`` (the nominal factors).

    Returns
    -------
    (DirectResult, dict)
        Nominal solution (length 1) and ``{quantity: (err, frac_valid)}`` where
        err is half the 16-84 percentile range of the valid draws.
    """
    keys = list(values)
    nominal = {k: np.array([values[k]], float) for k in keys}
    if dust_factor is not None:
        fac = dust_factor(0)
        nominal = {k: v * fac.get(k, 1.0) for k, v in nominal.items()}
    res = solve_direct(nominal, ne_fixed, density_diag, config, grid)
    errs: dict = {}
    if n_draws and n_draws > 0:
        draws = {}
        for k in keys:
            e = errors.get(k, np.nan)
            e = e if np.isfinite(e) and e > 0 else 0.0
            draws[k] = values[k] + e * rng.standard_normal(n_draws)
        if dust_factor is not None:
            fac = dust_factor(n_draws)
            draws = {k: v * fac.get(k, 1.0) for k, v in draws.items()}
        mc = solve_direct(draws, ne_fixed, density_diag, config, grid)
        for name in ("te_oiii", "te_oii", "ne", "oplus", "oplusplus", "oh"):
            arr = getattr(mc, name)
            ok = np.isfinite(arr)
            if ok.sum() >= 2:
                p16, p84 = np.percentile(arr[ok], [16, 84])
                errs[name] = (0.5 * (p84 - p16), ok.mean())
            else:
                errs[name] = (np.nan, ok.mean())
    return res, errs


def direct_abundance_pyneb(values: dict[str, np.ndarray], ne_fixed: float | None = None,
                           density_diag: str | None = None, config: Config | None = None
                           ) -> dict[str, np.ndarray]:
    """Reference implementation calling PyNeb directly (slow; for tests and benchmarks).

    Te and ne with ``Diagnostics.getCrossTemDen`` (or ``Atom.getTemDen`` at a
    fixed density), ionic abundances with ``Atom.getIonAbundance``.

    Parameters
    ----------
    values : dict
        Arrays of fluxes (``oiii4364``, ``oiii4960``, ``oiii5008``, ``hb``,
        ``oii3727``, ``oii3730``, ``sii6718``, ``sii6733``).
    ne_fixed, density_diag : see :func:`solve_direct`.

    Returns
    -------
    dict
        ``te_oiii``, ``ne``, ``te_oii``, ``oplus``, ``oplusplus``, ``oh`` arrays.
    """
    cfg = config or get_active_config()
    pn = _quiet_pyneb()
    atoms = pyneb_atoms()
    ab = cfg["abundances"]
    v = {k: np.atleast_1d(np.asarray(x, float)) for k, x in values.items()}
    oiii = v["oiii4960"] + v["oiii5008"]
    r_t = v["oiii4364"] / oiii
    if density_diag is not None:
        diags = pn.Diagnostics()
        a, b = {"OII": ("oii3727", "oii3730"), "SII": ("sii6733", "sii6718")}[density_diag]
        label = DENSITY_DIAGS[density_diag][2]
        te, ne = diags.getCrossTemDen("[OIII] 4363/5007+", label, r_t, v[a] / v[b])
        te, ne = np.atleast_1d(te), np.atleast_1d(ne)
    else:
        ne = np.full(r_t.shape, float(ne_fixed if ne_fixed is not None
                                      else cfg["dust"]["ne_default"]))
        te = np.atleast_1d(atoms["O3"].getTemDen(r_t, den=ne,
                                                 to_eval="L(4363)/(L(5007)+L(4959))"))
    te_oii = float(ab["te_oii_slope"]) * te + float(ab["te_oii_offset"])
    opp = atoms["O3"].getIonAbundance(100 * oiii / v["hb"], te, ne,
                                      to_eval="L(4959)+L(5007)", Hbeta=100.0)
    op = atoms["O2"].getIonAbundance(100 * (v["oii3727"] + v["oii3730"]) / v["hb"], te_oii, ne,
                                     to_eval="L(3726)+L(3729)", Hbeta=100.0)
    return {"te_oiii": te, "ne": ne, "te_oii": te_oii, "oplus": np.atleast_1d(op),
            "oplusplus": np.atleast_1d(opp), "oh": 12 + np.log10(op + opp)}
