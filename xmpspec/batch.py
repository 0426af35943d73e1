"""Survey-scale batch runs: a task mapped over many spectra, resumable and kill-safe.

One code path serves a night's ten targets and an archive of 10^6 spectra:

* **Executors.** By default a local process pool
  (:class:`concurrent.futures.ProcessPoolExecutor`, one worker per core);
  with a scheduler address the same chunks are submitted to an existing Dask
  distributed cluster (``dask.distributed.Client(address)``; clusters from
  ``dask-jobqueue`` on Slurm/PBS are started by the user and passed by
  address). There is no home-made distribution layer.
* **Chunks.** Work is submitted as chunks of ``chunk_size`` inputs (amortises
  the per-task overhead) in a bounded window of chunks in flight, so memory
  stays bounded however many inputs there are; results stream back as chunks
  complete.
* **Parts.** The driver writes each completed chunk's tables as Parquet parts
  (``OUTDIR/parts/<chunk>.<table>.parquet``), atomically (temporary file,
  fsync, rename).
* **Manifest.** ``OUTDIR/manifest.jsonl`` is an append-only JSON-lines log
  (each record written in one ``write`` and fsync'ed): the run settings, the
  list of inputs, and one record per completed chunk naming its parts, its
  done inputs and its failed inputs with the reason. An input is recorded as
  done only after its part is renamed into place, so a kill at any moment
  leaves a consistent state: a part without a manifest record (killed between
  rename and record) is an orphan and is deleted on the next run; a torn last
  line is discarded. Inputs without a record are pending.
* **Resume.** Re-running the same command skips done inputs and, unless
  ``retry_failed``, failed ones. A kill (Ctrl-C, SIGKILL, a dying worker)
  loses at most the chunks in flight. A chunk whose worker died is retried
  alone, then split into single inputs (each run alone), and an input that
  kills its worker again is recorded as failed (``WorkerDied``). On Dask a
  task re-run after its worker died fails at once (it records its start in
  the scheduler's metadata), so the same rule applies instead of Dask's own
  retries; a cluster
  left without workers for ``batch.dask_no_workers_timeout`` seconds stops
  the run (inputs stay pending; re-run to resume).
* **Merge.** At the end the parts of the current inputs are merged, in input
  order, into one table per task output (``lines``, ``objects``), written
  with :func:`xmpspec.tableio.write_table` in ECSV, FITS and Parquet with
  provenance; above ``batch.merge_text_max_rows`` rows only Parquet is written
  (streamed part by part with pyarrow, bounded memory). Failures go to
  ``failed.ecsv`` (input, error type, reason).

Per-input failures (:class:`xmpspec.errors.XmpspecError`: unreadable files,
fits that fail, ...) never stop a batch; they are recorded with the file and
the reason. Unexpected exceptions inside a task are recorded the same way
(``error_type`` names the exception) so that one odd spectrum cannot stop a
survey run.

A task is a picklable module-level function ``task(path, context) ->
dict[str, Table]`` returning named tables for one input; every row gets an
``input_file`` column. Built-in tasks: :func:`measure_task` (line
measurement, optionally followed by derive) and :func:`inventory_task` (read
each spectrum and summarise it).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import logging
import multiprocessing
import os
import resource
import shutil
import socket
import time
import traceback
import uuid
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from glob import glob, has_magic
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from .config import Config, get_active_config, set_active_config
from .errors import InputError, XmpspecError

__all__ = [
    "SPECTRUM_SUFFIXES",
    "BatchContext",
    "BatchSummary",
    "BatchRun",
    "ChunkResult",
    "Manifest",
    "discover_inputs",
    "run_batch",
    "run_chunk",
    "measure_task",
    "inventory_task",
    "table_to_arrow",
    "arrow_to_table",
    "read_parquet",
    "iter_unified_parts",
    "TASKS",
]

log = logging.getLogger("xmpspec.batch")

#: File name endings taken as spectra when an input is a folder.
SPECTRUM_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz", ".fits.fz", ".fz")

MANIFEST_NAME = "manifest.jsonl"
PARTS_DIR = "parts"
LOCK_NAME = ".batch.lock"
FAILED_NAME = "failed"
MANIFEST_VERSION = 1
_INPUTS_PER_RECORD = 10_000
_CRASH_ATTEMPTS = 2
#: Rows derived at once in a Parquet-only merge with derive (bounds the driver's memory;
#: results do not depend on it: derive seeds its Monte Carlo per object).
_DERIVE_BLOCK_ROWS = 20_000
_THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


# --------------------------------------------------------------------------- inputs
def _has_suffix(path: Path, suffixes: Sequence[str]) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in suffixes)


FILE_LIST_SUFFIXES = (".txt", ".lst", ".list")
_PATH_LIKE_SUFFIXES = (".fits", ".fit", ".fz", ".gz", ".ecsv", ".csv", ".txt", ".dat", ".ascii",
                       ".tsv", ".pypeit")


def is_file_list(path: str | Path) -> bool:
    """Whether a file is a list of input files rather than an input itself.

    ``.lst``/``.list`` files are lists. A ``.txt`` file may also be an ASCII
    spectrum (possibly with a header line of column names): it is a list only
    if its first non-comment line is an existing file (relative to the list's
    folder) or a file name with a spectrum- or table-like ending. An empty
    ``.txt`` (or one with only comments) is an empty list.

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    bool
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FILE_LIST_SUFFIXES:
        return False
    if suffix != ".txt":
        return True
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                entry = Path(text).expanduser()
                entry = entry if entry.is_absolute() else path.parent / entry
                return entry.is_file() or entry.name.lower().endswith(_PATH_LIKE_SUFFIXES)
    except OSError as exc:
        raise InputError(f"cannot read ({exc})", path) from None
    return True  # empty or only comments: an empty list


def _read_file_list(path: Path) -> list[Path]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            p = Path(text).expanduser()
            out.append(p if p.is_absolute() else path.parent / p)
    return out


def discover_inputs(specs: str | Path | Iterable[str | Path],
                    suffixes: Sequence[str] = SPECTRUM_SUFFIXES,
                    exclude: Iterable[str | Path] = ()) -> list[Path]:
    """Expand folders, globs and file lists into the ordered list of input spectra.

    Parameters
    ----------
    specs : path-like or iterable of path-like
        Each item is a folder (every file ending in one of ``suffixes``,
        searched recursively, hidden files skipped, sorted), a glob pattern
        (``'data/*/spec-*.fits'``; ``**`` recurses), a file list (``.lst`` or
        ``.list``, or a ``.txt`` whose first entry names a file, see
        :func:`is_file_list`; one path per line, relative paths taken from
        the list's folder, ``#`` comments), or one spectrum file (an ASCII
        ``.txt`` spectrum included).
    suffixes : sequence of str
        File name endings taken as spectra inside folders.
    exclude : iterable of path-like
        Folders whose content is never an input (the output folder).

    Returns
    -------
    list of pathlib.Path
        Absolute paths, duplicates removed, in discovery order.

    Raises
    ------
    InputError
        A named file or folder does not exist, a glob matches nothing, or a
        listed file is missing.
    """
    if isinstance(specs, str | Path):
        specs = [specs]
    excluded = [Path(e).resolve() for e in exclude]

    def keep(p: Path) -> bool:
        return not any(p == e or e in p.parents for e in excluded)

    found: list[Path] = []
    for spec in specs:
        text = str(spec)
        path = Path(text).expanduser()
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*")
                if p.is_file() and _has_suffix(p, suffixes)
                and not any(part.startswith(".") for part in p.relative_to(path).parts))
            found.extend(p for p in files if keep(p.resolve()))
        elif path.is_file():
            if is_file_list(path):
                listed = _read_file_list(path)
                missing = [str(p) for p in listed if not p.is_file()]
                if missing:
                    more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
                    raise InputError(f"listed file(s) not found: {', '.join(missing[:5])}{more}",
                                     path)
                found.extend(listed)
            else:
                found.append(path)
        elif has_magic(text):
            matches = sorted(Path(m) for m in glob(str(path), recursive=True))
            matches = [m for m in matches if m.is_file() and keep(m.resolve())]
            if not matches:
                raise InputError("glob pattern matches no file", text)
            found.extend(matches)
        else:
            raise InputError("no such file, folder or glob match", text)
    seen: set[str] = set()
    out = []
    for p in found:
        key = str(p.resolve())
        if key not in seen:
            seen.add(key)
            out.append(Path(key))
    return out


# --------------------------------------------------------------------------- context
@dataclass
class BatchContext:
    """Everything a task needs besides its input path; shipped once to each worker.

    Parameters
    ----------
    config : dict
        The resolved configuration (``Config.to_dict()``).
    config_sources : list of str
        Where the configuration came from.
    targets : astropy.table.Table, optional
        The targets table (name, z, ra, dec, ...), if given.
    options : dict
        Task options (``derive``, ``format``, ``verbose``, ...).
    """

    config: dict
    config_sources: list = field(default_factory=list)
    targets: Table | None = None
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        self._config_obj: Config | None = None
        self._cache: dict = {}

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_config_obj"] = None
        state["_cache"] = {}
        return state

    @property
    def config_obj(self) -> Config:
        """The configuration as a :class:`~xmpspec.config.Config` (built once per worker)."""
        if self._config_obj is None:
            self._config_obj = Config(self.config, self.config_sources)
        return self._config_obj

    def cached(self, key: str, factory: Callable[[], Any]) -> Any:
        """A per-worker cached value (e.g. an index of the targets table)."""
        if key not in self._cache:
            self._cache[key] = factory()
        return self._cache[key]


# --------------------------------------------------------------------------- tasks
def _read(path: str, context: BatchContext):
    from .io import read_spectrum
    kwargs = {}
    if context.options.get("format"):
        kwargs["format"] = context.options["format"]
    if context.options.get("ignore_bad_errors"):
        kwargs["ignore_bad_errors"] = True
    return read_spectrum(path, **kwargs)


def inventory_task(path: str, context: BatchContext) -> dict[str, Table]:
    """Read one spectrum and summarise it (one row: coverage, pixels, S/N).

    Useful to check an archive before measuring it: every unreadable file is
    reported as failed with the reason.

    Parameters
    ----------
    path : str
        The spectrum file.
    context : BatchContext
        Batch context (``options['format']`` selects the reader).

    Returns
    -------
    dict
        ``{"objects": Table}`` with name, instrument, n_pix, n_masked,
        wave_min, wave_max (Angstrom), median_snr and redshift.
    """
    import astropy.units as u
    spec = _read(path, context)
    good = spec.good
    if not good.any():
        raise InputError("all pixels are masked", path)
    wave = spec.wavelength.to_value(u.AA)
    snr = spec.flux.value[good] / np.where(spec.error.value[good] > 0,
                                           spec.error.value[good], np.nan)
    row = Table()
    row["name"] = [spec.name]
    row["instrument"] = [str(spec.meta.get("instrument") or "")]
    row["n_pix"] = [int(wave.size)]
    row["n_masked"] = [int((~good).sum())]
    row["wave_min"] = [float(wave[good].min())] * u.AA
    row["wave_max"] = [float(wave[good].max())] * u.AA
    row["median_snr"] = [float(np.nanmedian(snr)) if np.isfinite(snr).any() else np.nan]
    row["redshift"] = np.ma.masked_array([spec.redshift if spec.redshift is not None else 0.0],
                                         mask=[spec.redshift is None])
    return {"objects": row}


def _target_row(spec, path: str, context: BatchContext) -> dict | None:
    """The targets-table row of ``spec`` as a dict, or None.

    Same rule as :func:`xmpspec.lines.targets.match_target` (``xmpspec
    measure --targets``): the row whose ``name`` equals the spectrum's object
    name or its file name without extensions (case and spaces ignored), else
    the nearest row within ``measure.target_match_arcsec`` of its position.
    The name index and the sky-coordinate tree are built once per worker, so
    matching stays fast for survey-size targets tables.
    """
    from .lines.targets import _norm, _value
    targets = context.targets
    if targets is None or len(targets) == 0:
        return None

    def name_index():
        index: dict[str, int] = {}
        for i, n in enumerate(targets["name"]):
            index.setdefault(_norm(n), i)
        return index

    index = context.cached("targets_by_name", name_index)
    i = None
    for cand in (spec.name, Path(path).name.split(".")[0]):
        if cand and _norm(cand) in index:
            i = index[_norm(cand)]
            break
    if i is None:
        ra, dec = spec.meta.get("ra"), spec.meta.get("dec")
        if ra is None or dec is None or "ra" not in targets.colnames:
            return None
        import astropy.units as u
        from astropy.coordinates import SkyCoord

        def catalogue():
            tra = np.ma.filled(np.ma.asarray(targets["ra"], float), np.nan)
            tdec = np.ma.filled(np.ma.asarray(targets["dec"], float), np.nan)
            ok = np.flatnonzero(np.isfinite(tra) & np.isfinite(tdec))
            return ok, (SkyCoord(tra[ok] * u.deg, tdec[ok] * u.deg) if ok.size else None)

        ok, cat = context.cached("targets_coords", catalogue)
        if cat is None:
            return None
        radius = float(context.config_obj.get("measure.target_match_arcsec", 2.0))
        j, sep, _ = SkyCoord([float(ra)] * u.deg, [float(dec)] * u.deg).match_to_catalog_sky(cat)
        if not float(np.atleast_1d(sep.to_value(u.arcsec))[0]) <= radius:
            return None
        i = int(ok[int(np.atleast_1d(j)[0])])
    return {k: _value(targets[k][i]) for k in targets.colnames}


#: Options of ``measure_spectrum`` a batch passes through (``context.options``).
MEASURE_OPTIONS = ("mcmc", "ignore_bad_errors", "setup", "fitter", "seed")


def measure_task(path: str, context: BatchContext):
    """Measure the emission lines of one spectrum (and derive properties if asked).

    The redshift and the carried-through columns come from the matching row
    of the targets table, as in ``xmpspec measure --targets``; without a row
    the redshift is found from the lines.

    Parameters
    ----------
    path : str
        The spectrum file.
    context : BatchContext
        Configuration, targets table and options (``derive``, ``format``,
        and ``mcmc``, ``ignore_bad_errors``, ``setup``, ``fitter`` for
        :func:`xmpspec.lines.measure.measure_spectrum`).

    Returns
    -------
    xmpspec.lines.measure.Measurement
        The measurement; the chunk's measurements become the ``lines`` and
        ``objects`` tables in one go (``measure_task.assemble``); with
        ``options['derive']`` the merged objects table gets the derived columns.
    """
    from .lines.measure import measure_spectrum
    spec = _read(path, context)
    if not spec.meta.get("source_file"):
        spec.meta["source_file"] = str(path)
    kwargs = {k: context.options[k] for k in MEASURE_OPTIONS
              if context.options.get(k) not in (None, False)}
    row = _target_row(spec, path, context)
    z = z_source = name = extra = None
    if row is not None:  # the conventions of xmpspec.lines.measure.measure_file
        extra = {k: v for k, v in row.items() if k != "z"}
        name = str(row.get("name") or "") or None
        tz = row.get("z")
        if tz is not None and np.isfinite(float(tz)):
            z, z_source = float(tz), "targets"
    m = measure_spectrum(spec, z=z, config=context.config_obj, name=name, z_source=z_source,
                         extra=extra, **kwargs)
    if context.targets is not None and row is None:
        m.row["notes"] = "; ".join(filter(None, [m.row.get("notes"), "no targets row"]))
    return m


def _assemble_measurements(items: list[tuple[str, Any]], context: BatchContext):
    """Per-line and per-object tables of a chunk's measurements.

    Derived properties (``options['derive']``) are computed on the merged
    objects table by :meth:`BatchRun.merge`, not per chunk: the parts do not
    depend on ``--derive`` or the derive configuration, so a run can be
    resumed or re-merged with or without it. (The values would not depend on
    the grouping anyway: derive seeds its Monte Carlo per object.)

    Returns
    -------
    (dict, list)
        ``{"lines": Table, "objects": Table}`` and no late failures.
    """
    from .lines.measure import lines_table, objects_table
    paths = [p for p, _ in items]
    ms = [m for _, m in items]
    lines_t = _with_input_column(lines_table(ms), [p for p, m in items for _ in m.line_rows])
    objects = _with_input_column(objects_table(ms), paths)
    return {"lines": lines_t, "objects": objects}, []


measure_task.assemble = _assemble_measurements
measure_task.config_sections = ("units", "lines", "doublets", "measure")
inventory_task.config_sections = ("units",)


TASKS: dict[str, Callable[[str, BatchContext], dict[str, Table]]] = {
    "measure": measure_task,
    "inventory": inventory_task,
}


# --------------------------------------------------------------------------- worker side
@dataclass
class ChunkResult:
    """What a worker returns for one chunk."""

    chunk_id: str
    tables: dict  # name -> pyarrow.Table (see table_to_arrow)
    done: list[str]
    failed: list[tuple[str, str, str]]
    pid: int
    host: str
    maxrss_mb: float
    seconds: float


_WORKER_CONTEXT: BatchContext | None = None


def _init_worker(context: BatchContext, quiet_logs: bool = True) -> None:
    """Process-pool initializer: keep the context, ignore Ctrl-C (the driver handles it)."""
    global _WORKER_CONTEXT
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER_CONTEXT = context
    _configure_worker_logging(quiet_logs)
    _exit_with_parent()


def _exit_with_parent(interval: float = 1.0) -> None:
    """Exit this worker soon after the driver dies (e.g. SIGKILL), not after its chunk."""
    import threading
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="xmpspec-parent-watch", daemon=True).start()


def _configure_worker_logging(quiet: bool) -> None:
    logger = logging.getLogger("xmpspec")
    if quiet and not logger.handlers:
        logger.addHandler(logging.NullHandler())
        logger.propagate = False


def _maxrss_mb() -> float:
    """Peak resident memory of this process (MB).

    On Linux ``VmHWM`` of ``/proc/self/status``: ``ru_maxrss`` survives
    ``execve``, so a spawned worker would report its parent's peak.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def _fully_masked(col) -> bool:
    return len(col) > 0 and bool(np.all(np.ma.getmaskarray(col))) if hasattr(col, "mask") \
        else len(col) == 0


def _harmonise(tables: list[Table]) -> list[Table]:
    """Make a column's type agree across tables before stacking.

    A column that is entirely masked in one table (e.g. a targets column
    with no value for any object of a chunk) takes the type of the tables
    where it has values; columns with genuinely different kinds of values
    become strings.
    """
    from astropy.table import MaskedColumn
    kinds: dict[str, set] = {}
    for t in tables:
        for name in t.colnames:
            col = t[name]
            if not isinstance(col, Table.Column):
                continue  # mixin columns (Quantity, Time): left to astropy
            if not _fully_masked(col):
                kinds.setdefault(name, set()).add(col.dtype.kind)
    out = []
    for t in tables:
        t2 = None
        for name in t.colnames:
            col = t[name]
            if name not in kinds or not isinstance(col, Table.Column):
                continue
            want = kinds[name]
            if len(want) == 1 and col.dtype.kind in want:
                continue
            if len(want) > 1 and want <= {"i", "u", "f", "b"}:
                continue  # numbers: vstack promotes them
            t2 = t2 if t2 is not None else t.copy(copy_data=False)
            if _fully_masked(col) and len(want) == 1:
                kind = next(iter(want))
                dtype = {"U": "U1", "S": "U1", "f": float, "i": int, "u": int, "b": bool}.get(
                    kind, object)
                t2[name] = MaskedColumn(np.zeros(len(col), dtype), mask=True, unit=col.unit,
                                        description=col.description)
            else:
                vals = np.ma.getdata(col).astype(str)
                t2[name] = MaskedColumn(vals, mask=np.ma.getmaskarray(col),
                                        description=col.description)
        out.append(t2 if t2 is not None else t)
    return out


def _stack(tables: list[Table]) -> Table:
    """vstack with missing columns masked and per-table type differences resolved."""
    from astropy.table import TableMergeError, vstack
    if len(tables) == 1:
        return tables[0]
    try:
        return vstack(tables, join_type="outer", metadata_conflicts="silent")
    except TableMergeError:
        return vstack(_harmonise(tables), join_type="outer", metadata_conflicts="silent")


def _failure(path: str, exc: BaseException) -> tuple[str, str, str]:
    """(path, error type, reason) of a per-input failure."""
    if isinstance(exc, XmpspecError):
        reason = str(exc)
        if Path(path).name not in reason:
            reason = f"{path}: {reason}"
        return (path, type(exc).__name__, reason)
    if isinstance(exc, MemoryError):
        return (path, "MemoryError", f"{path}: out of memory")
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    return (path, type(exc).__name__,
            f"{path}: unexpected {type(exc).__name__}: {exc}{where}")


def _with_input_column(table: Table, paths: Sequence[str]) -> Table:
    t = table.copy(copy_data=False)
    if "input_file" in t.colnames:
        t.remove_column("input_file")
    t.add_column(list(paths), name="input_file", index=0)
    return t


def _default_assemble(items: list[tuple[str, Any]], context: BatchContext):
    """Stack the per-input ``dict[str, Table]`` results of a chunk."""
    collected: dict[str, list[Table]] = {}
    for path, out in items:
        if not isinstance(out, dict):
            raise TypeError(f"task returned {type(out).__name__}, not a dict of tables")
        for name, table in out.items():
            if table is None:
                continue
            t = table if isinstance(table, Table) else Table(table)
            collected.setdefault(name, []).append(_with_input_column(t, [path] * len(t)))
    return {name: _stack(parts) for name, parts in collected.items()}, []


def run_chunk(task: Callable[[str, BatchContext], Any], chunk_id: str,
              paths: Sequence[str], context: BatchContext | None = None) -> ChunkResult:
    """Run ``task`` on every input of a chunk; never raises for a per-input failure.

    Parameters
    ----------
    task : callable
        ``task(path, context)``, module level (picklable). It returns a
        ``dict[str, Table]`` per input, or anything its optional attribute
        ``task.assemble(items, context) -> (tables, failures)`` turns into the
        chunk's tables at once (``items`` = list of (path, result); building
        tables once per chunk is much cheaper than once per input).
    chunk_id : str
        Identifier of the chunk (names its parts).
    paths : sequence of str
        The inputs.
    context : BatchContext, optional
        Task context; default the one given to the worker at start-up.

    Returns
    -------
    ChunkResult
        Tables as :class:`pyarrow.Table` (:func:`table_to_arrow`; each row
        with ``input_file``), done inputs, failed inputs as (path, error
        type, reason), worker pid, host, peak RSS.
    """
    t0 = time.perf_counter()
    ctx = context if context is not None else _WORKER_CONTEXT
    if ctx is None:
        raise RuntimeError("run_chunk called without a batch context")
    if get_active_config() is not ctx.config_obj:
        set_active_config(ctx.config_obj)
    items: list[tuple[str, Any]] = []
    failed: list[tuple[str, str, str]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # per-object warnings would flood a survey run
        for path in paths:
            try:
                items.append((path, task(path, ctx)))
            except Exception as exc:  # XmpspecError, or a bug / unforeseen input: record it
                failed.append(_failure(path, exc))
        assemble = getattr(task, "assemble", None) or _default_assemble
        tables, late = assemble(items, ctx) if items else ({}, [])
        # converted here, in the worker: the driver only writes the Arrow tables
        # (converting ~100 columns per chunk in the one driver process would bound throughput)
        tables = {name: table_to_arrow(t) for name, t in tables.items()}
    late_paths = {f[0] for f in late}
    failed.extend(late)
    done = [p for p, _ in items if p not in late_paths]
    return ChunkResult(chunk_id=chunk_id, tables=tables, done=done, failed=failed,
                       pid=os.getpid(), host=socket.gethostname(), maxrss_mb=_maxrss_mb(),
                       seconds=time.perf_counter() - t0)


def _identity(x):
    return x


def _run_chunk_dask(task, chunk_id, paths, context, marker=None):
    _configure_worker_logging(True)
    if marker is not None:
        _claim_first_run(marker)
    return run_chunk(task, chunk_id, paths, context)


def _claim_first_run(marker: tuple) -> None:
    """Refuse to run a Dask task again after its worker died while it ran.

    The task records in the scheduler's metadata store that it started; when
    Dask re-runs it because its worker died (it may be what killed it), it
    finds the record and raises :class:`WorkerDiedError` at once, so that the
    batch run, not Dask's retries, decides: retry alone, split, fail the input.
    Without a metadata store (old scheduler) Dask's retries and
    ``KilledWorker`` apply.
    """
    try:
        from distributed import get_client
        client = get_client()
        seen = client.get_metadata(list(marker), default=None)
    except Exception:  # noqa: BLE001 - no metadata store: Dask's own retries apply
        return
    if seen is not None:
        raise WorkerDiedError(f"its worker died while it ran (on {seen})")
    with contextlib.suppress(Exception):
        client.set_metadata(list(marker), socket.gethostname())


# --------------------------------------------------------------------------- manifest
@dataclass
class InputState:
    """State of one input in the manifest."""

    status: str  # "done" | "failed"
    chunk: str | None = None
    error_type: str = ""
    reason: str = ""


class Manifest:
    """Append-only JSON-lines log of a batch run (``OUTDIR/manifest.jsonl``).

    Records: ``run`` (settings, first line), ``inputs`` (paths added to the
    run), ``chunk`` (parts written, inputs done, inputs failed with reasons).
    Each record is one line written with one ``write`` call and fsync'ed. On
    loading, a torn last line (a kill during the write) is discarded.

    Parameters
    ----------
    path : path-like
        The manifest file.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.settings: dict | None = None
        self.inputs: list[str] = []
        self._input_set: set[str] = set()
        self.states: dict[str, InputState] = {}
        self.chunks: dict[str, dict] = {}
        self._fh = None

    # reading ---------------------------------------------------------------
    def load(self) -> Manifest:
        """Read the log (if it exists), repairing a torn last line."""
        if not self.path.exists():
            return self
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        tail = lines.pop()  # text after the last newline: empty unless torn
        if tail:
            log.warning("%s: discarding a partly written last record (interrupted run)",
                        self.path)
            with open(self.path, "r+b") as fh:
                fh.truncate(len(data) - len(tail))
                fh.flush()
                os.fsync(fh.fileno())
        for lineno, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError:
                raise InputError(f"manifest line {lineno} is corrupt; delete the output folder "
                                 "or run with --restart", self.path) from None
            self._apply(rec)
        return self

    def _apply(self, rec: dict) -> None:
        kind = rec.get("type")
        if kind == "run":
            self.settings = rec.get("settings", {})
        elif kind == "inputs":
            for p in rec["paths"]:
                if p not in self._input_set:
                    self._input_set.add(p)
                    self.inputs.append(p)
        elif kind == "chunk":
            cid = rec["id"]
            self.chunks[cid] = rec
            for p in rec.get("done", []):
                self.states[p] = InputState("done", cid)
            for p, etype, reason in rec.get("failed", []):
                self.states[p] = InputState("failed", cid, etype, reason)

    # writing ---------------------------------------------------------------
    def _append(self, rec: dict) -> None:
        line = (json.dumps(rec, separators=(",", ":"), default=str) + "\n").encode()
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "ab", buffering=0)
        self._fh.write(line)
        os.fsync(self._fh.fileno())
        self._apply(rec)

    def start(self, settings: dict) -> None:
        """Write the first record of a new run."""
        self._append({"type": "run", "version": MANIFEST_VERSION, "settings": settings,
                      "created_utc": _utcnow()})

    def add_inputs(self, paths: Sequence[str]) -> int:
        """Record inputs not yet known; returns how many were new."""
        new = [p for p in paths if p not in self._input_set]
        for i in range(0, len(new), _INPUTS_PER_RECORD):
            self._append({"type": "inputs", "paths": new[i:i + _INPUTS_PER_RECORD]})
        return len(new)

    def record_chunk(self, chunk_id: str, parts: dict[str, str], done: Sequence[str],
                     failed: Sequence[tuple[str, str, str]], worker: dict | None = None) -> None:
        """Record a completed chunk (call only after its parts are in place)."""
        self._append({"type": "chunk", "id": chunk_id, "parts": parts, "done": list(done),
                      "failed": [list(f) for f in failed], "worker": worker or {},
                      "time_utc": _utcnow()})

    def close(self) -> None:
        """Close the log file."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    # queries ---------------------------------------------------------------
    def status(self, path: str) -> str:
        """``done``, ``failed`` or ``pending``."""
        st = self.states.get(path)
        return st.status if st else "pending"

    def referenced_parts(self) -> set[str]:
        """File names (relative to the output folder) of every recorded part."""
        return {p for rec in self.chunks.values() for p in rec.get("parts", {}).values()}


def _utcnow() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- parts
_COLUMNS_META = b"xmpspec_columns"


def table_to_arrow(table: Table):
    """An astropy table as a :class:`pyarrow.Table` (masks as nulls, units kept).

    Units, descriptions and numpy dtypes go into the field metadata (``unit``)
    and the schema metadata (``xmpspec_columns``, JSON), so that
    :func:`arrow_to_table` restores the table; any Arrow reader (pandas,
    polars, DuckDB) reads the values and nulls directly.

    Parameters
    ----------
    table : astropy.table.Table or QTable

    Returns
    -------
    pyarrow.Table
    """
    import astropy.units as u
    import pyarrow as pa
    arrays, fields, colmeta = [], [], {}
    for name in table.colnames:
        col = table[name]
        unit = getattr(col, "unit", None)
        if hasattr(col, "unmasked"):  # astropy Masked (e.g. a masked Quantity)
            mask, base = np.asarray(col.mask, bool), col.unmasked
        elif isinstance(col, np.ma.MaskedArray):
            mask, base = np.ma.getmaskarray(col), np.ma.getdata(col)
        else:
            mask, base = None, col
        values = base.value if isinstance(base, u.Quantity) else np.asarray(base)
        if mask is not None and not mask.any():
            mask = None
        if values.dtype.kind == "S":
            values = np.char.decode(values, "utf-8", "replace")
        if values.dtype.kind == "O":
            values = np.array(["" if v is None else str(v) for v in values], dtype=str)
        if values.ndim > 1:
            arr = pa.array([v for v in values.tolist()], mask=mask)
        else:
            arr = pa.array(values, mask=mask)
        meta = {}
        if unit is not None and str(unit) not in ("", "dimensionless"):
            meta[b"unit"] = str(unit).encode()
        arrays.append(arr)
        fields.append(pa.field(name, arr.type, metadata=meta or None))
        colmeta[name] = {"unit": str(unit) if unit is not None else None,
                         "description": getattr(col.info, "description", None),
                         "dtype": values.dtype.str, "masked": mask is not None
                         or isinstance(col, np.ma.MaskedArray) or hasattr(col, "unmasked")}
    schema = pa.schema(fields, metadata={_COLUMNS_META: json.dumps(colmeta).encode()})
    return pa.Table.from_arrays(arrays, schema=schema)


def arrow_to_table(atable) -> Table:
    """An astropy :class:`~astropy.table.Table` from :func:`table_to_arrow` output.

    Nulls become masked entries; units and descriptions are restored from the
    metadata (field metadata ``unit`` also works for other writers).
    """
    import astropy.units as u
    import pyarrow as pa
    from astropy.table import Column, MaskedColumn
    raw = (atable.schema.metadata or {}).get(_COLUMNS_META)
    colmeta = json.loads(raw) if raw else {}
    out = Table()
    n = atable.num_rows
    for field_ in atable.schema:
        name = field_.name
        meta = colmeta.get(name, {})
        chunked = atable.column(name)
        nulls = np.asarray(chunked.is_null().to_numpy(zero_copy_only=False), bool) \
            if chunked.null_count else np.zeros(n, bool)
        typ = field_.type
        want = meta.get("dtype")
        if pa.types.is_null(typ):
            dtype = np.dtype(want) if want else np.dtype(float)
            values = np.zeros(n, dtype if dtype.kind != "U" else "U1")
        elif pa.types.is_string(typ) or pa.types.is_large_string(typ):
            values = np.asarray(chunked.fill_null("").to_numpy(zero_copy_only=False), dtype=str)
        elif pa.types.is_boolean(typ):
            values = np.asarray(chunked.fill_null(False).to_numpy(zero_copy_only=False), bool)
        elif pa.types.is_list(typ) or pa.types.is_large_list(typ):
            values = np.array([np.asarray(v) for v in chunked.to_pylist()], dtype=object)
            try:
                values = np.stack(list(values))
            except ValueError:
                pass
        else:
            values = chunked.fill_null(0).to_numpy(zero_copy_only=False)
        unit = meta.get("unit") or (field_.metadata or {}).get(b"unit", b"").decode() or None
        if unit is not None:
            try:
                unit = u.Unit(unit)
            except ValueError:
                unit = None
        desc = meta.get("description")
        if nulls.any() or meta.get("masked"):
            out[name] = MaskedColumn(values, mask=nulls, unit=unit, description=desc)
        else:
            out[name] = Column(values, unit=unit, description=desc)
    return out


def read_parquet(path: str | Path) -> Table:
    """Read a Parquet table written by the batch engine (parts, large merged tables).

    Units, masks (Arrow nulls) and descriptions are restored; the provenance
    record, if any, is in ``table.meta['provenance']``. (Merged tables small
    enough for ECSV/FITS are written by :func:`xmpspec.tableio.write_table`
    and read with ``Table.read`` as usual; this reader reads those too.)

    Parameters
    ----------
    path : path-like

    Returns
    -------
    astropy.table.Table
    """
    import pyarrow.parquet as pq
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path)
    try:
        schema = pq.read_schema(path)
    except Exception as exc:
        raise InputError(f"cannot read Parquet ({type(exc).__name__}: {exc})", path) from None
    meta = schema.metadata or {}
    if _COLUMNS_META not in meta:  # written by astropy (write_table): let astropy read it
        from .tableio import read_table
        return read_table(path)
    table = arrow_to_table(pq.read_table(path))
    if b"xmpspec_provenance" in meta:
        table.meta["provenance"] = json.loads(meta[b"xmpspec_provenance"])
    return table


def _write_part(table, path: Path) -> None:
    """Write a Parquet part (astropy or Arrow table) atomically and durably (fsync, rename)."""
    import pyarrow.parquet as pq

    from .tableio import atomic_path
    atable = table if not isinstance(table, Table) else table_to_arrow(table)
    with atomic_path(path) as tmp:
        pq.write_table(atable, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
    with contextlib.suppress(OSError):
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


# --------------------------------------------------------------------------- executors
@contextlib.contextmanager
def _sigint_deferred():
    """Hold back Ctrl-C (SIGINT) during a short critical section of the main thread."""
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    except (ValueError, OSError):  # not the main interpreter thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received and callable(previous):
            previous(signal.SIGINT, None)


class WorkerDiedError(RuntimeError):
    """A worker process died (crash, OOM kill) while a chunk was processing on it."""


class ClusterLostError(RuntimeError):
    """The Dask cluster had no worker for longer than ``batch.dask_no_workers_timeout``."""


def _is_worker_crash(exc: BaseException) -> bool:
    if isinstance(exc, cf.process.BrokenProcessPool | WorkerDiedError):
        return True
    name = type(exc).__name__
    return name in ("KilledWorker", "CommClosedError", "FutureCancelledError")


class _LocalExecutor:
    """Bounded submission to a ProcessPoolExecutor, recreated if a worker dies."""

    def __init__(self, workers: int, context: BatchContext):
        self.workers = workers
        self.context = context
        self.pool: cf.ProcessPoolExecutor | None = None
        self.futures: dict[cf.Future, Any] = {}
        self._owner: dict[cf.Future, cf.ProcessPoolExecutor] = {}
        self._start()

    def describe(self) -> str:
        return f"local process pool, {self.workers} worker(s)"

    def _start(self) -> None:
        # one BLAS/OpenMP thread per worker process: N workers on N cores, no oversubscription
        # (spawned workers inherit the environment; a user's explicit setting is kept)
        for var in _THREAD_ENV_VARS:
            os.environ.setdefault(var, "1")
        ctx = multiprocessing.get_context("spawn")
        self.pool = cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                           initializer=_init_worker, initargs=(self.context,))

    def restart_if_broken(self, fut: cf.Future | None = None) -> None:
        """Replace the pool if it broke (a worker died); old futures keep failing."""
        if fut is not None and self._owner.get(fut) is not self.pool:
            return
        log.warning("a worker process died; restarting the process pool")
        self._kill_pool(self.pool)
        self._start()

    def submit(self, task, chunk) -> cf.Future:
        try:
            fut = self.pool.submit(run_chunk, task, chunk.id, chunk.paths)
        except cf.process.BrokenProcessPool:
            self.restart_if_broken()
            fut = self.pool.submit(run_chunk, task, chunk.id, chunk.paths)
        self.futures[fut] = chunk
        self._owner[fut] = self.pool
        return fut

    def next_completed(self):
        done, _ = cf.wait(list(self.futures), return_when=cf.FIRST_COMPLETED)
        fut = next(iter(done))
        chunk = self.futures.pop(fut)
        try:
            result = fut.result()
        except BaseException as exc:  # noqa: BLE001 - classified by the caller
            return chunk, None, exc, fut
        self._owner.pop(fut, None)
        return chunk, result, None, fut

    def handle_crash(self, fut) -> None:
        self.restart_if_broken(fut)
        self._owner.pop(fut, None)

    @staticmethod
    def _kill_pool(pool: cf.ProcessPoolExecutor | None) -> None:
        if pool is None:
            return
        procs = list(getattr(pool, "_processes", {}).values() or [])
        for p in procs:
            with contextlib.suppress(Exception):
                p.terminate()
        with contextlib.suppress(Exception):
            pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            with contextlib.suppress(Exception):
                p.join(timeout=5)

    def shutdown(self, abort: bool = False) -> None:
        if abort:
            self._kill_pool(self.pool)
        else:
            self.pool.shutdown(wait=True)


class _DaskExecutor:
    """Bounded submission to an existing Dask distributed cluster.

    Worker deaths are handled by the run, not left to Dask's retries: each
    task records that it started (:func:`_claim_first_run`); if Dask re-runs
    it because its worker died, it fails at once with
    :class:`WorkerDiedError`, and the run retries the chunk alone, then
    splits it and records the input that kills its worker as failed, as with
    the local pool. (Left to Dask, a chunk that kills its worker runs on
    ``distributed.scheduler.allowed-failures`` + 1 workers before
    ``KilledWorker``, every death also counts against the chunks queued on
    that worker, and a ``LocalCluster`` whose workers die repeatedly stops
    restarting them.) ``KilledWorker`` is still handled by the run.

    If the cluster has had no worker for ``no_workers_timeout`` seconds,
    :class:`ClusterLostError` stops the run; inputs in flight stay pending.
    """

    _POLL_SECONDS = 1.0        # wake-up interval while waiting for chunks
    _WORKER_CHECK_SECONDS = 2.0
    _GATHER_TIMEOUT = 60.0     # a result being re-gathered is waited for in these steps

    def __init__(self, address, context: BatchContext, no_workers_timeout: float = 600.0):
        from dask.distributed import Client
        if isinstance(address, str):
            try:
                self.client = Client(address, timeout="30s")
            except Exception as exc:
                raise InputError(f"cannot connect to the Dask scheduler ({type(exc).__name__}: "
                                 f"{exc})", address) from None
            self._own_client = True
        else:  # an existing Client (library use, tests)
            self.client = address
            self._own_client = False
        self.address = getattr(self.client.scheduler, "address", str(address))
        self.workers = max(len(self.client.scheduler_info().get("workers", {})), 1)
        self.context = context
        self.no_workers_timeout = float(no_workers_timeout)
        self.futures: dict[Any, tuple] = {}   # future -> (chunk, task)
        self._marker_root = f"xmpspec-batch-started-{uuid.uuid4().hex}"
        self._no_workers_since: float | None = None
        self._last_check = time.monotonic()
        self.context_future = self._submit_context()

    def describe(self) -> str:
        return f"Dask cluster {self.address}, {self.workers} worker(s)"

    def _submit_context(self):
        # the context as the result of a task, not scattered data: if the worker holding it
        # dies, the scheduler recomputes it from the task (scattered data would be lost and
        # every later chunk cancelled)
        return self.client.submit(_identity, self.context, pure=False,
                                  key=f"xmpspec-batch-context-{uuid.uuid4().hex}")

    def submit(self, task, chunk):
        # a fresh key per submission: a chunk retried after a crash is a new task
        key = f"xmpspec-batch-{chunk.id}-{uuid.uuid4().hex[:8]}"
        fut = self.client.submit(_run_chunk_dask, task, chunk.id, list(chunk.paths),
                                 self.context_future, (self._marker_root, key), pure=False,
                                 key=key)
        self.futures[fut] = (chunk, task)
        return fut

    def _collect(self, fut):
        """Result of a done future, or None if it must be waited for again."""
        from dask.distributed import TimeoutError as DaskTimeout
        chunk, task = self.futures[fut]
        try:
            result = fut.result(timeout=self._GATHER_TIMEOUT)
        except (DaskTimeout, TimeoutError):
            return None  # its result was lost with a worker and is being recomputed
        except BaseException as exc:  # noqa: BLE001 - classified by the caller
            del self.futures[fut]
            with contextlib.suppress(Exception):
                fut.release()
            if type(exc).__name__ == "KilledWorker" and \
                    getattr(exc, "task", None) == self.context_future.key:
                # the shared context was lost, not this chunk's doing: new context, run again
                log.warning("the batch context was lost with dying workers; resubmitting it")
                with contextlib.suppress(Exception):
                    self.context_future.release()
                self.context_future = self._submit_context()
                self.submit(task, chunk)
                return None
            return chunk, None, exc, fut
        del self.futures[fut]
        fut.release()
        return chunk, result, None, fut

    def _check_workers(self) -> None:
        now = time.monotonic()
        if now - self._last_check < self._WORKER_CHECK_SECONDS:
            return
        self._last_check = now
        try:
            try:
                info = self.client.scheduler_info(n_workers=1)
            except TypeError:  # older distributed
                info = self.client.scheduler_info()
            n = len(info.get("workers", {}))
        except Exception:  # noqa: BLE001 - scheduler busy or reconnecting: check later
            return
        if n:
            self._no_workers_since = None
        elif self._no_workers_since is None:
            self._no_workers_since = now
            log.warning("the Dask cluster %s has no worker; waiting up to %.0f s",
                        self.address, self.no_workers_timeout)
        elif now - self._no_workers_since > self.no_workers_timeout:
            raise ClusterLostError(
                f"the Dask cluster {self.address} has had no worker for "
                f"{now - self._no_workers_since:.0f} s (batch.dask_no_workers_timeout)")

    def next_completed(self):
        from dask.distributed import TimeoutError as DaskTimeout
        from dask.distributed import wait
        while True:
            for fut in list(self.futures):  # oldest first
                if fut.done():
                    out = self._collect(fut)
                    if out is not None:
                        return out
            if not self.futures:
                raise RuntimeError("no chunk in flight")  # a bug of the caller
            try:
                wait(list(self.futures), timeout=self._POLL_SECONDS, return_when="FIRST_COMPLETED")
            except (DaskTimeout, TimeoutError):
                pass
            self._check_workers()

    def handle_crash(self, fut) -> None:
        pass  # the scheduler replaces lost workers itself

    def shutdown(self, abort: bool = False) -> None:
        with contextlib.suppress(Exception):
            if abort and self.futures:
                self.client.cancel(list(self.futures))
        with contextlib.suppress(Exception):
            self.context_future.release()
        with contextlib.suppress(Exception):  # the start records of this run's tasks
            self.client.set_metadata(self._marker_root, None)
        if self._own_client:
            with contextlib.suppress(Exception):
                self.client.close()


# --------------------------------------------------------------------------- the run
@dataclass
class _Chunk:
    id: str
    paths: list[str]
    attempts: int = 0


@dataclass
class BatchSummary:
    """Outcome of a batch run.

    Attributes
    ----------
    n_inputs : int
        Inputs of this run.
    done_now, failed_now : int
        Inputs measured / failed in this invocation.
    skipped_done, skipped_failed : int
        Inputs skipped because already done, or failed earlier and not retried.
    n_done, n_failed, n_pending : int
        Final states over all inputs of the run.
    wall_seconds : float
        Wall time of the processing (without discovery and merge).
    rate : float
        Spectra per second processed in this invocation.
    failures : list of (str, str, str)
        (input, error type, reason) of every failed input of the run.
    worker_peak_rss_mb : dict
        Peak resident memory (MB) per worker (``host:pid``).
    outputs : dict
        Merged files per table name.
    executor : str
        Description of the executor used.
    interrupted : bool
        True if the run was stopped (Ctrl-C, or the cluster lost) before the end.
    stopped : str
        Why the run stopped early other than Ctrl-C (e.g. the Dask cluster had
        no worker for ``batch.dask_no_workers_timeout`` seconds); empty otherwise.
    """

    n_inputs: int = 0
    done_now: int = 0
    failed_now: int = 0
    skipped_done: int = 0
    skipped_failed: int = 0
    n_done: int = 0
    n_failed: int = 0
    n_pending: int = 0
    wall_seconds: float = 0.0
    rate: float = 0.0
    failures: list = field(default_factory=list)
    worker_peak_rss_mb: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    executor: str = ""
    interrupted: bool = False
    stopped: str = ""

    @property
    def exit_code(self) -> int:
        """0 if every input is done, 1 if any failed or is still pending."""
        return 0 if (self.n_failed == 0 and self.n_pending == 0) else 1


def _sha256_text(items: Iterable[str]) -> str:
    h = hashlib.sha256()
    for s in items:
        h.update(s.encode())
        h.update(b"\n")
    return h.hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class BatchRun:
    """A resumable batch run in one output folder.

    Parameters
    ----------
    inputs : sequence of path-like
        Input spectra (see :func:`discover_inputs` to expand folders/globs/lists).
    outdir : path-like
        Output folder (manifest, parts, merged tables).
    task : str or callable
        ``"measure"``, ``"inventory"`` or a module-level function
        ``task(path, context) -> dict[str, Table]``.
    config : Config, optional
        Configuration (default: the active one).
    targets : path-like or Table, optional
        Targets table (name, z, ra, dec, ...).
    options : dict, optional
        Task options (``derive``, ``format``).
    workers : int, optional
        Local pool size (default ``os.cpu_count()``).
    scheduler : str or dask.distributed.Client, optional
        Dask scheduler address (``tcp://host:8786``) or a connected client;
        when given, the local pool is not used.
    chunk_size : int, optional
        Inputs per task (default ``batch.chunk_size`` of the configuration).
    retry_failed : bool
        Process inputs that failed in an earlier run again.
    restart : bool
        Discard the manifest and parts of an earlier run in ``outdir``.
    inputs_spec : sequence of str, optional
        How the inputs were given (recorded in the provenance).

    Raises
    ------
    InputError
        ``outdir`` holds a run with different settings, or is in use by
        another batch process.
    """

    def __init__(self, inputs: Sequence[str | Path], outdir: str | Path, task="measure",
                 config: Config | None = None, targets=None, options: dict | None = None,
                 workers: int | None = None, scheduler=None, chunk_size: int | None = None,
                 retry_failed: bool = False, restart: bool = False,
                 inputs_spec: Sequence[str] | None = None):
        self.outdir = Path(outdir)
        self.config = config if config is not None else get_active_config()
        bcfg = self.config.get("batch", {}) or {}
        self.task_name = task if isinstance(task, str) else f"{task.__module__}.{task.__qualname__}"
        if isinstance(task, str):
            if task not in TASKS:
                raise InputError(f"unknown batch task '{task}' (known: {', '.join(TASKS)})")
            task = TASKS[task]
        self.task = task
        self.options = dict(options or {})
        self.inputs = [str(Path(p).resolve()) for p in inputs]
        if len(set(self.inputs)) != len(self.inputs):
            seen, uniq = set(), []
            for p in self.inputs:
                if p not in seen:
                    seen.add(p)
                    uniq.append(p)
            self.inputs = uniq
        self.inputs_spec = list(inputs_spec) if inputs_spec else None
        self.workers = int(workers) if workers else (os.cpu_count() or 1)
        if self.workers < 1:
            raise InputError(f"--workers must be >= 1, not {self.workers}")
        self.scheduler = scheduler
        self.chunk_size = int(chunk_size or bcfg.get("chunk_size", 200))
        if self.chunk_size < 1:
            raise InputError(f"--chunk-size must be >= 1, not {self.chunk_size}")
        self.window_per_worker = int(bcfg.get("window_per_worker", 2))
        self.merge_text_max_rows = int(bcfg.get("merge_text_max_rows", 500_000))
        self.dask_no_workers_timeout = float(bcfg.get("dask_no_workers_timeout", 600.0))
        self.retry_failed = retry_failed
        self.restart = restart
        self.targets_path = None
        self.targets = None
        if targets is not None:
            if isinstance(targets, Table):
                self.targets = targets
            else:
                from .lines.targets import read_targets
                self.targets_path = Path(targets)
                self.targets = read_targets(self.targets_path)
        self.manifest = Manifest(self.outdir / MANIFEST_NAME)
        self._lock_fh = None
        self.pending: list[str] = []
        self.summary = BatchSummary(n_inputs=len(self.inputs))
        self._worker_rss: dict[str, float] = {}

    # ------------------------------------------------------------------ settings
    def settings(self) -> dict:
        """What must not change between a run and its resumption."""
        targets_id = None
        if self.targets_path is not None:
            targets_id = _file_sha256(self.targets_path)
        elif self.targets is not None:
            targets_id = _sha256_text(",".join(map(str, r)) for r in self.targets)
        # options left at their default (None/False) do not count, so library and CLI agree;
        # derive runs at the merge, so the parts do not depend on it
        options = {k: v for k, v in sorted(self.options.items())
                   if v not in (None, False) and k not in ("verbose", "derive")}
        return {"task": self.task_name, "options": options,
                "config_sha256": self._config_sha256(),
                "targets_sha256": targets_id}

    def _config_sha256(self) -> str:
        """Hash of the configuration sections the task's results depend on.

        A task may name them in ``task.config_sections`` (the measurement
        depends on ``units``, ``lines``, ``doublets`` and ``measure`` only);
        otherwise the whole configuration counts.
        """
        sections = getattr(self.task, "config_sections", None)
        data = self.config.to_dict()
        if sections is not None:
            data = {k: data.get(k) for k in sections}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()

    # ------------------------------------------------------------------ prepare
    def prepare(self) -> list[str]:
        """Lock the folder, load or start the manifest, clean orphans; return pending inputs."""
        self.outdir.mkdir(parents=True, exist_ok=True)
        self._lock()
        if self.restart:
            self._discard_previous()
        self.manifest.load()
        settings = self.settings()
        if self.manifest.settings is None:
            self.manifest.start(settings)
        elif self.manifest.settings != settings:
            diff = [k for k in settings if self.manifest.settings.get(k) != settings[k]]
            self._unlock()
            raise InputError(
                f"holds a batch run with different settings ({', '.join(diff)} changed); "
                "use --restart to discard it, or another output folder", self.outdir)
        self.manifest.add_inputs(self.inputs)
        self._clean_orphans()
        s = self.summary
        self.pending = []
        for p in self.inputs:
            st = self.manifest.status(p)
            if st == "done":
                s.skipped_done += 1
            elif st == "failed" and not self.retry_failed:
                s.skipped_failed += 1
            else:
                self.pending.append(p)
        return self.pending

    def _lock(self) -> None:
        self._lock_fh = open(self.outdir / LOCK_NAME, "w")
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_fh.close()
            self._lock_fh = None
            raise InputError("is in use by another running batch", self.outdir) from None

    def _unlock(self) -> None:
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None
        self.manifest.close()

    def _discard_previous(self) -> None:
        (self.outdir / MANIFEST_NAME).unlink(missing_ok=True)
        parts = self.outdir / PARTS_DIR
        if parts.is_dir():
            for f in parts.iterdir():
                if f.is_file() and (f.name.endswith(".parquet") or f.name.startswith(".")):
                    f.unlink()

    def _clean_orphans(self) -> None:
        """Delete temporary files and parts the manifest does not reference."""
        parts = self.outdir / PARTS_DIR
        if not parts.is_dir():
            return
        referenced = self.manifest.referenced_parts()
        n = 0
        for f in parts.iterdir():
            if not f.is_file():
                continue
            rel = f"{PARTS_DIR}/{f.name}"
            if f.name.startswith(".") or (f.name.endswith(".parquet") and rel not in referenced):
                f.unlink()
                n += 1
        if n:
            log.info("removed %d unrecorded or partly written part file(s) of an interrupted run",
                     n)

    # ------------------------------------------------------------------ execute
    def context(self) -> BatchContext:
        """The context shipped to the workers."""
        return BatchContext(config=self.config.to_dict(), config_sources=list(self.config.sources),
                            targets=self.targets, options=self.options)

    def _make_chunks(self) -> deque:
        chunks = deque()
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S")
        tag = uuid.uuid4().hex[:6]
        for k, i in enumerate(range(0, len(self.pending), self.chunk_size)):
            chunks.append(_Chunk(f"{stamp}-{tag}-{k:06d}", self.pending[i:i + self.chunk_size]))
        return chunks

    def execute(self, progress: Callable[[int, int], None] | None = None,
                on_start: Callable[[str], None] | None = None) -> BatchSummary:
        """Process the pending inputs.

        Parameters
        ----------
        progress : callable, optional
            Called as ``progress(n_done, n_failed)`` after each chunk.
        on_start : callable, optional
            Called with the executor description once it is ready.

        Returns
        -------
        BatchSummary
            Counts of this invocation (merge not yet done).
        """
        s = self.summary
        t0 = time.perf_counter()
        try:
            if self.pending:
                self._execute(progress, on_start)
        except KeyboardInterrupt:
            s.interrupted = True
        except ClusterLostError as exc:
            s.interrupted = True
            s.stopped = str(exc)
            log.error("%s; stopping: re-run the same command to resume", exc)
        finally:
            s.wall_seconds = time.perf_counter() - t0
            s.rate = (s.done_now + s.failed_now) / s.wall_seconds if s.wall_seconds > 0 else 0.0
            self._final_counts()
        return s

    def _execute(self, progress, on_start) -> None:
        s = self.summary
        chunks = self._make_chunks()
        context = self.context()
        if self.scheduler is not None:
            executor = _DaskExecutor(self.scheduler, context, self.dask_no_workers_timeout)
        else:
            executor = _LocalExecutor(min(self.workers, max(len(chunks), 1)), context)
        s.executor = executor.describe()
        if on_start:
            on_start(s.executor)
        window = max(self.window_per_worker * executor.workers, 2)
        in_flight = 0
        isolating = False  # a chunk suspected of killing a worker runs alone: blame is exact
        aborted = True
        try:
            while chunks or in_flight:
                while chunks and in_flight < window and not isolating:
                    if chunks[0].attempts > 0 and in_flight > 0:
                        break  # wait until the suspect can run alone
                    nxt = chunks.popleft()
                    executor.submit(self.task, nxt)
                    in_flight += 1
                    isolating = nxt.attempts > 0
                chunk, result, exc, fut = executor.next_completed()
                in_flight -= 1
                if in_flight == 0:
                    isolating = False
                if exc is None:
                    self._store(result)
                    s.done_now += len(result.done)
                    s.failed_now += len(result.failed)
                    if progress:
                        progress(len(result.done), len(result.failed))
                elif isinstance(exc, KeyboardInterrupt):
                    raise exc
                elif _is_worker_crash(exc):
                    executor.handle_crash(fut)
                    failed = self._requeue_crashed(chunk, chunks, exc)
                    if failed and progress:
                        progress(0, failed)
                else:
                    reason = f"batch task error: {type(exc).__name__}: {exc}"
                    self._record_failures(chunk, [(p, type(exc).__name__, f"{p}: {reason}")
                                                  for p in chunk.paths])
                    s.failed_now += len(chunk.paths)
                    if progress:
                        progress(0, len(chunk.paths))
            aborted = False
        finally:
            executor.shutdown(abort=aborted)

    def _requeue_crashed(self, chunk: _Chunk, chunks: deque, exc: BaseException) -> int:
        """Retry, split or fail a chunk whose worker died; returns inputs marked failed.

        Neither the local pool nor a Dask worker's death tells which of the chunks
        on it killed it, so a chunk is retried once (alone) before it is split into
        single inputs (each run alone). Dask reports ``KilledWorker`` only after the
        task killed ``distributed.scheduler.allowed-failures`` + 1 workers: split (or
        fail) at once.
        """
        chunk.attempts += 1
        if type(exc).__name__ == "KilledWorker":
            chunk.attempts = max(chunk.attempts, _CRASH_ATTEMPTS)
        if chunk.attempts < _CRASH_ATTEMPTS:
            chunks.appendleft(chunk)
            return 0
        if len(chunk.paths) > 1:
            for k, p in enumerate(reversed(chunk.paths)):
                chunks.appendleft(_Chunk(f"{chunk.id}-s{len(chunk.paths) - 1 - k:04d}", [p],
                                         attempts=_CRASH_ATTEMPTS - 1))
            return 0
        p = chunk.paths[0]
        reason = (f"{p}: the worker process died while processing this input "
                  f"({type(exc).__name__}; crash or out of memory)")
        self._record_failures(chunk, [(p, "WorkerDied", reason)])
        self.summary.failed_now += 1
        return 1

    def _record_failures(self, chunk: _Chunk, failed) -> None:
        self.manifest.record_chunk(chunk.id, {}, [], failed, worker={})

    def _store(self, result: ChunkResult) -> None:
        with _sigint_deferred():  # Ctrl-C waits until the chunk is recorded (milliseconds)
            self._store_now(result)

    def _store_now(self, result: ChunkResult) -> None:
        parts = {}
        for name, table in result.tables.items():
            if table.num_rows == 0:
                continue
            rel = f"{PARTS_DIR}/{result.chunk_id}.{name}.parquet"
            _write_part(table, self.outdir / rel)
            parts[name] = rel
        worker = {"pid": result.pid, "host": result.host, "maxrss_mb": round(result.maxrss_mb, 1),
                  "seconds": round(result.seconds, 3)}
        self.manifest.record_chunk(result.chunk_id, parts, result.done, result.failed, worker)
        key = f"{result.host}:{result.pid}"
        self._worker_rss[key] = max(self._worker_rss.get(key, 0.0), result.maxrss_mb)
        self.summary.worker_peak_rss_mb = dict(self._worker_rss)

    def _final_counts(self) -> None:
        s = self.summary
        s.n_done = s.n_failed = s.n_pending = 0
        s.failures = []
        for p in self.inputs:
            st = self.manifest.states.get(p)
            if st is None:
                s.n_pending += 1
            elif st.status == "done":
                s.n_done += 1
            else:
                s.n_failed += 1
                s.failures.append((p, st.error_type, st.reason))

    # ------------------------------------------------------------------ merge
    def merge(self, formats: Sequence[str] = ("ecsv", "fits", "parquet")) -> dict[str, list[Path]]:
        """Merge the parts of the run's done inputs into one table per task output.

        Rows are ordered as the inputs. Tables whose parts are already in
        input order (every run that was not retried or resumed out of order)
        are streamed part by part into ECSV, FITS and Parquet; otherwise they
        are sorted in memory. Tables above ``batch.merge_text_max_rows`` rows
        are written as Parquet only (streamed with bounded memory).

        Returns
        -------
        dict
            Files written per table name (and ``failed``).
        """
        from .provenance import provenance_record
        from .tableio import write_table
        order = {p: i for i, p in enumerate(self.inputs)}
        # the chunk that holds each done input of this run
        holder = {p: st.chunk for p, st in self.manifest.states.items()
                  if st.status == "done" and p in order}
        by_table: dict[str, list[str]] = {}
        for cid in dict.fromkeys(holder.values()):
            for name, rel in self.manifest.chunks[cid].get("parts", {}).items():
                by_table.setdefault(name, []).append(rel)
        prov = provenance_record(config=self.config, step="batch", extra={"batch": self._prov()})
        written: dict[str, list[Path]] = {}
        for name, rels in sorted(by_table.items()):
            files, in_order = self._order_parts([self.outdir / r for r in rels], order)
            import pyarrow.parquet as pq
            nrows = sum(pq.read_metadata(f).num_rows for f in files)
            stem = self.outdir / name
            derive = name == "objects" and bool(self.options.get("derive"))
            if nrows <= self.merge_text_max_rows and in_order and not derive:
                # rows already in input order: written part by part, one part in memory
                written[name] = self._stream_merge_text(files, holder, stem, prov, formats)
            elif nrows <= self.merge_text_max_rows:
                import pyarrow as pa
                merged = pa.concat_tables(list(self._iter_parts(files, holder)))
                table = arrow_to_table(merged)
                idx = np.array([order[str(p)] for p in table["input_file"]])
                table = table[np.argsort(idx, kind="stable")]
                if derive:
                    table = self._derive(table)
                written[name] = write_table(table, stem, provenance=prov, formats=formats)
            else:
                log.info("%s: %d rows, writing Parquet only (batch.merge_text_max_rows = %d)",
                         name, nrows, self.merge_text_max_rows)
                target = stem.with_suffix(".parquet")
                if derive:
                    written[name] = [self._merge_large_derived(files, holder, target, prov)]
                else:
                    written[name] = [self._stream_merge(self._iter_parts(files, holder), target,
                                                        prov)]
                for ext in ("ecsv", "fits"):  # do not leave stale copies of an earlier merge
                    (self.outdir / f"{name}.{ext}").unlink(missing_ok=True)
        failed = Table(names=("input_file", "error_type", "reason"), dtype=(str, str, str))
        for p in self.inputs:
            st = self.manifest.states.get(p)
            if st is not None and st.status == "failed":
                failed.add_row((p, st.error_type, st.reason))
        written[FAILED_NAME] = write_table(failed, self.outdir / f"{FAILED_NAME}.ecsv",
                                           provenance=prov)
        self.summary.outputs = written
        return written

    def _order_parts(self, files: list[Path], order: dict) -> tuple[list[Path], bool]:
        """Parts in the input order of their first row, and whether their rows are then in order.

        Rows inside a part follow the input order; parts of a resumed or retried
        run may interleave (e.g. a retried input between two done ones), in
        which case the merge sorts the rows in memory.
        """
        import pyarrow.parquet as pq

        spans = {}
        for f in files:
            col = pq.read_table(f, columns=["input_file"]).column(0).to_pylist()
            idx = [order.get(str(v), -1) for v in col]
            spans[f] = (idx[0] if idx else 0, idx[-1] if idx else 0,
                        all(a <= b for a, b in zip(idx, idx[1:], strict=False)))
        ordered = sorted(files, key=lambda f: spans[f][0])
        in_order = all(spans[f][2] for f in ordered) and all(
            spans[a][1] <= spans[b][0] for a, b in zip(ordered, ordered[1:], strict=False))
        return ordered, in_order

    def _stream_merge_text(self, files: list[Path], holder: dict, stem: Path, prov: dict,
                           formats: Sequence[str]) -> list[Path]:
        """ECSV/FITS (:mod:`xmpspec.tablestream`) and Parquet, written one part at a time."""
        from .tablestream import write_table_stream
        out: list[Path] = []
        text = [f for f in formats if f in ("ecsv", "fits")]
        if text:
            out += write_table_stream(lambda: self._iter_parts(files, holder), stem,
                                      provenance=prov, formats=text)
        if "parquet" in formats:
            out.append(self._stream_merge(self._iter_parts(files, holder),
                                          stem.with_suffix(".parquet"), prov))
        return out

    def _iter_parts(self, files: list[Path], holder: dict):
        """Each part as Arrow, cast to one schema, keeping only rows of inputs it holds."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
        schemas = [pq.read_schema(f) for f in files]
        schema = _unified_schema(schemas).with_metadata(
            {_COLUMNS_META: json.dumps(_merged_columns_meta(schemas)).encode()})
        by_chunk: dict[str, list[str]] = {}
        for p, c in holder.items():
            by_chunk.setdefault(c, []).append(p)
        for f in files:
            t = pq.read_table(f)
            mine = pa.array(by_chunk.get(f.name.split(".")[0], []), pa.string())
            t = t.filter(pc.is_in(t.column("input_file"), value_set=mine))
            yield _cast_to(t, schema)

    def _stream_merge(self, tables, target: Path, prov: dict) -> Path:
        """Write Arrow tables (one schema) into one Parquet file, atomically."""
        import pyarrow.parquet as pq

        from .tableio import atomic_path
        writer = None
        with atomic_path(target) as tmp:
            try:
                for t in tables:
                    if writer is None:
                        meta = dict(t.schema.metadata or {})
                        meta[b"xmpspec_provenance"] = json.dumps(prov, default=str).encode()
                        writer = pq.ParquetWriter(tmp, t.schema.with_metadata(meta))
                    writer.write_table(t.replace_schema_metadata(writer.schema.metadata))
            finally:
                if writer is not None:
                    writer.close()
        return target

    def _derive(self, table: Table) -> Table:
        """Derived properties of a merged objects table (as ``xmpspec derive`` computes them)."""
        from .physics.derive import derive_table
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return derive_table(table, config=self.config, source=str(self.outdir / "objects"))

    def _merge_large_derived(self, files: list[Path], holder: dict, target: Path,
                             prov: dict) -> Path:
        """Parquet-only merge with derive: measured rows streamed, derived in fixed blocks.

        Blocks of at most ``_DERIVE_BLOCK_ROWS`` rows (and of
        ``batch.merge_text_max_rows`` if smaller) keep the driver's memory
        bounded; the derived values do not depend on the blocks (per-object
        Monte Carlo seeds, :func:`xmpspec.physics.derive.object_rng`).
        """
        import pyarrow.parquet as pq
        block = max(min(int(self.merge_text_max_rows), _DERIVE_BLOCK_ROWS), 1)
        tmpdir = self.outdir / PARTS_DIR / ".derive"
        shutil.rmtree(tmpdir, ignore_errors=True)
        tmpdir.mkdir(parents=True)
        try:
            measured = self._stream_merge(self._iter_parts(files, holder),
                                          tmpdir / "measured.parquet", prov)
            pieces = []
            for k, batch in enumerate(pq.ParquetFile(measured).iter_batches(batch_size=block)):
                import pyarrow as pa
                t = arrow_to_table(pa.Table.from_batches([batch]))
                piece = tmpdir / f"block{k:05d}.parquet"
                _write_part(self._derive(t), piece)
                pieces.append(piece)
            schemas = [pq.read_schema(f) for f in pieces]
            schema = _unified_schema(schemas).with_metadata(
                {_COLUMNS_META: json.dumps(_merged_columns_meta(schemas)).encode()})
            return self._stream_merge((_cast_to(pq.read_table(f), schema) for f in pieces),
                                      target, prov)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def _prov(self) -> dict:
        s = self.summary
        return {
            "task": self.task_name,
            "options": self.options,
            "inputs_spec": self.inputs_spec,
            "n_inputs": len(self.inputs),
            "n_done": s.n_done,
            "n_failed": s.n_failed,
            "n_pending": s.n_pending,
            "inputs_sha256": _sha256_text(self.inputs),
            "first_inputs": self.inputs[:5],
            "targets": str(self.targets_path) if self.targets_path else None,
            "chunk_size": self.chunk_size,
            "executor": s.executor or "none (nothing pending)",
        }

    def close(self) -> None:
        """Release the output-folder lock and close the manifest."""
        self._unlock()

    def __enter__(self) -> BatchRun:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _unified_schema(schemas):
    """One Arrow schema for all parts: missing fields nullable, conflicting types as strings."""
    import pyarrow as pa
    plain = [s.remove_metadata() for s in schemas]
    try:
        return pa.unify_schemas(plain, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, NotImplementedError):
        pass
    fields: dict[str, list] = {}
    for s in plain:
        for fld in s:
            fields.setdefault(fld.name, []).append(fld.type)
    out = []
    for name, types in fields.items():
        try:
            typ = pa.unify_schemas([pa.schema([(name, t)]) for t in types],
                                   promote_options="permissive").field(name).type
        except (pa.ArrowInvalid, pa.ArrowTypeError, NotImplementedError):
            typ = pa.string()
        out.append(pa.field(name, typ))
    return pa.schema(out)


def iter_unified_parts(files: Sequence[str | Path]):
    """Read Parquet parts one at a time, each cast to one schema shared by all.

    A column missing from a part is null there; types that differ between
    parts are promoted (or become strings), as in :meth:`BatchRun.merge`.
    Only the schemas are read up front, so memory holds one part at a time.

    Parameters
    ----------
    files : sequence of path-like
        Parquet parts written with :func:`table_to_arrow` tables.

    Yields
    ------
    pyarrow.Table
        Each part, in the order given, with the unified schema (column
        units and descriptions in its metadata; :func:`arrow_to_table`).
    """
    import pyarrow.parquet as pq
    schemas = [pq.read_schema(f) for f in files]
    if not schemas:
        return
    schema = _unified_schema(schemas).with_metadata(
        {_COLUMNS_META: json.dumps(_merged_columns_meta(schemas)).encode()})
    for f in files:
        yield _cast_to(pq.read_table(f), schema)


def _cast_to(table, schema):
    """An Arrow table with exactly ``schema``'s fields (missing ones null)."""
    import pyarrow as pa
    cols = [table.column(fld.name).cast(fld.type) if fld.name in table.column_names
            else pa.nulls(len(table), fld.type) for fld in schema]
    return pa.Table.from_arrays(cols, schema=schema)


def _merged_columns_meta(schemas) -> dict:
    """Column metadata (unit, description, dtype) over all parts; first value wins."""
    out: dict = {}
    for s in schemas:
        raw = (s.metadata or {}).get(_COLUMNS_META)
        for name, meta in (json.loads(raw) if raw else {}).items():
            have = out.setdefault(name, dict(meta))
            for key, value in meta.items():
                if have.get(key) in (None, "") and value not in (None, ""):
                    have[key] = value
            have["masked"] = bool(have.get("masked")) or bool(meta.get("masked"))
    return out


def run_batch(inputs, outdir, task="measure", *, config: Config | None = None, targets=None,
              options: dict | None = None, workers: int | None = None, scheduler=None,
              chunk_size: int | None = None, retry_failed: bool = False, restart: bool = False,
              merge: bool = True, progress: Callable[[int, int], None] | None = None
              ) -> BatchSummary:
    """Run (or resume) a batch: discover inputs, process pending ones, merge.

    Parameters
    ----------
    inputs : path-like or iterable of path-like
        Folders, globs, file lists or spectrum files (see :func:`discover_inputs`).
    outdir : path-like
        Output folder.
    task : str or callable
        ``"measure"`` (default), ``"inventory"`` or a module-level function.
    config, targets, options, workers, scheduler, chunk_size, retry_failed, restart
        See :class:`BatchRun`.
    merge : bool
        Merge the parts at the end (skipped if the run was interrupted).
    progress : callable, optional
        ``progress(n_done, n_failed)`` after each chunk.

    Returns
    -------
    BatchSummary

    Examples
    --------
    >>> from xmpspec.batch import run_batch
    >>> summary = run_batch("spectra/", "out/", workers=2)      # doctest: +SKIP
    >>> summary.n_done, summary.n_failed, summary.rate          # doctest: +SKIP
    """
    specs = [inputs] if isinstance(inputs, str | Path) else list(inputs)
    paths = discover_inputs(specs, exclude=[outdir])
    with BatchRun(paths, outdir, task=task, config=config, targets=targets, options=options,
                  workers=workers, scheduler=scheduler, chunk_size=chunk_size,
                  retry_failed=retry_failed, restart=restart,
                  inputs_spec=[str(s) for s in specs]) as run:
        run.prepare()
        summary = run.execute(progress=progress)
        if merge and not summary.interrupted:
            run.merge()
    return summary
