"""Runs of the engine: resumable batch runs (:class:`BatchRun`) and in-process streams.

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

``xmpspec measure`` is the same engine with one in-process worker and no
manifest (:func:`xmpspec.engine.stream.run_stream`): the same task
(:func:`xmpspec.engine.tasks.measure_task`), the same chunk runner, Parquet
parts and merge.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from astropy.table import Table

from ..arrowio import write_part
from ..config import Config, get_active_config
from ..errors import InputError
from .discovery import discover_inputs, unique_inputs
from .executors import (
    Chunk,
    DaskExecutor,
    LocalExecutor,
    is_worker_crash,
    sigint_deferred,
)
from .manifest import (
    FAILED_NAME,
    MANIFEST_NAME,
    PARTS_DIR,
    Manifest,
    OutputLock,
    clean_temporaries,
)
from .merge import merge_parts
from .tasks import TASKS, BatchContext
from .worker import ChunkResult, ClusterLostError

__all__ = ["BatchRun", "BatchSummary", "run_batch"]

log = logging.getLogger("xmpspec.engine")

_CRASH_ATTEMPTS = 2


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


def _workdir_id() -> str:
    """SHA-256 of the resolved working folder (what relative input paths are relative to)."""
    return hashlib.sha256(str(Path.cwd().resolve()).encode()).hexdigest()


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
        Input spectra (see :func:`discover_inputs` to expand folders/globs/lists),
        kept as given: a relative path stays relative (to the working folder)
        in the manifest, ``input_file``/``source_file``, ``failed.ecsv`` and
        the provenance. The same file under two spellings is one input. A
        run with relative inputs resumes from the same working folder only
        (another one stops with a message; absolute inputs resume from
        anywhere). Workers open the paths as given: Dask workers must share
        the working folder of the driver for relative inputs (a
        ``LocalCluster`` does), or be given absolute paths.
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
        # the inputs as given (relative stay relative): what the workers open, what the
        # manifest, the parts and every output name; one file under two spellings is one input
        self.inputs = [str(p) for p in unique_inputs(inputs)]
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
                from ..lines.targets import validate_targets
                self.targets = validate_targets(targets)
            else:
                from ..lines.targets import read_targets
                self.targets_path = Path(targets)
                self.targets = read_targets(self.targets_path)
        self.manifest = Manifest(self.outdir / MANIFEST_NAME)
        self._lock_obj: OutputLock | None = None
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
        self._check_workdir()
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

    def _check_workdir(self) -> None:
        """Refuse to resume relative inputs from another working folder than the run's.

        Relative input paths are the run's identity for its inputs (they are
        what the outputs record), and they mean other files from another
        folder. The manifest keeps a hash of the working folder of the first
        relative inputs (not the folder itself: no machine path in the output
        folder); a rerun with relative inputs from elsewhere stops with a
        message instead of mixing files. Absolute inputs resume from anywhere.
        """
        if all(Path(p).is_absolute() for p in self.inputs):
            return
        here = _workdir_id()
        if self.manifest.workdir is None:
            self.manifest.set_workdir(here)
        elif self.manifest.workdir != here:
            self._unlock()
            raise InputError(
                "holds a batch run whose relative input paths were given from another working "
                "folder; rerun from that folder (or give absolute input paths), or use "
                "--restart to discard it", self.outdir)

    def _lock(self) -> None:
        self._lock_obj = OutputLock(self.outdir, "batch").acquire()
        clean_temporaries(self.outdir, [*self._table_names(), FAILED_NAME])

    def _table_names(self) -> list[str]:
        names = {"lines", "objects"}
        for rec in self.manifest.chunks.values():
            names.update(rec.get("parts", {}))
        return sorted(names)

    def _unlock(self) -> None:
        if self._lock_obj is not None:
            self._lock_obj.release()
            self._lock_obj = None
        self.manifest.close()

    def _discard_previous(self) -> None:
        (self.outdir / MANIFEST_NAME).unlink(missing_ok=True)
        parts = self.outdir / PARTS_DIR
        if parts.is_dir():
            for f in parts.iterdir():
                if f.is_file() and (f.name.endswith(".parquet") or f.name.startswith(".")):
                    f.unlink()

    def _clean_orphans(self) -> None:
        """Delete temporary files and folders and parts the manifest does not reference."""
        parts = self.outdir / PARTS_DIR
        if not parts.is_dir():
            return
        referenced = self.manifest.referenced_parts()
        n = 0
        for f in parts.iterdir():
            if f.is_dir() and f.name.startswith("."):   # e.g. .derive of a killed merge
                shutil.rmtree(f, ignore_errors=True)
                n += 1
                continue
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
            chunks.append(Chunk(f"{stamp}-{tag}-{k:06d}", self.pending[i:i + self.chunk_size]))
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
            executor = DaskExecutor(self.scheduler, context, self.dask_no_workers_timeout)
        else:
            executor = LocalExecutor(min(self.workers, max(len(chunks), 1)), context)
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
                elif is_worker_crash(exc):
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

    def _requeue_crashed(self, chunk: Chunk, chunks: deque, exc: BaseException) -> int:
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
                chunks.appendleft(Chunk(f"{chunk.id}-s{len(chunk.paths) - 1 - k:04d}", [p],
                                         attempts=_CRASH_ATTEMPTS - 1))
            return 0
        p = chunk.paths[0]
        reason = (f"{p}: the worker process died while processing this input "
                  f"({type(exc).__name__}; crash or out of memory)")
        self._record_failures(chunk, [(p, "WorkerDied", reason)])
        self.summary.failed_now += 1
        return 1

    def _record_failures(self, chunk: Chunk, failed) -> None:
        self.manifest.record_chunk(chunk.id, {}, [], failed, worker={})

    def _store(self, result: ChunkResult) -> None:
        with sigint_deferred():  # Ctrl-C waits until the chunk is recorded (milliseconds)
            self._store_now(result)

    def _store_now(self, result: ChunkResult) -> None:
        parts = {}
        for name, table in result.tables.items():
            if table.num_rows == 0:
                continue
            rel = f"{PARTS_DIR}/{result.chunk_id}.{name}.parquet"
            write_part(table, self.outdir / rel)
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

        Rows are ordered as the inputs (:func:`xmpspec.engine.merge.merge_parts`).
        Tables whose parts are already in input order (every run that was not
        retried or resumed out of order) are streamed part by part into ECSV,
        FITS and Parquet; otherwise they are sorted in memory. Tables above
        ``batch.merge_text_max_rows`` rows are written as Parquet only
        (streamed with bounded memory).

        Returns
        -------
        dict
            Files written per table name (and ``failed``).
        """
        from ..provenance import provenance_record
        from ..tableio import write_table
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
            derive = name == "objects" and bool(self.options.get("derive"))
            written[name] = merge_parts([self.outdir / r for r in rels], self.outdir / name, prov,
                                        order=order, holder=holder, formats=formats,
                                        max_text_rows=self.merge_text_max_rows, derive=derive,
                                        config=self.config,
                                        scratch=self.outdir / PARTS_DIR / ".derive")
        failed = Table(names=("input_file", "error_type", "reason"), dtype=(str, str, str))
        for p in self.inputs:
            st = self.manifest.states.get(p)
            if st is not None and st.status == "failed":
                failed.add_row((p, st.error_type, st.reason))
        written[FAILED_NAME] = write_table(failed, self.outdir / f"{FAILED_NAME}.ecsv",
                                           provenance=prov)
        self.summary.outputs = written
        return written

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
    >>> from xmpspec.engine import run_batch
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

