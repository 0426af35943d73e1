"""Worker side of the engine: run a task over a chunk of inputs, never failing on one input.

:func:`run_chunk` runs in a worker process (local pool, Dask) or in the
driver itself (``xmpspec measure``, one in-process worker); it returns a
:class:`ChunkResult` with the chunk's tables as Arrow tables, the done
inputs and the failed ones with their reason.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import socket
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

from ..arrowio import null_empty_columns, table_to_arrow
from ..config import get_active_config, set_active_config
from ..errors import XmpspecError
from .tasks import BatchContext, with_input_column

__all__ = ["ChunkResult", "ClusterLostError", "WorkerDiedError", "run_chunk"]

log = logging.getLogger("xmpspec.engine")


class WorkerDiedError(RuntimeError):
    """A worker process died (crash, OOM kill) while a chunk was processing on it."""


class ClusterLostError(RuntimeError):
    """The Dask cluster had no worker for longer than ``batch.dask_no_workers_timeout``."""


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
            collected.setdefault(name, []).append(with_input_column(t, [path] * len(t)))
    return {name: _stack(parts) for name, parts in collected.items()}, []


def run_chunk(task: Callable[[str, BatchContext], Any], chunk_id: str,
              paths: Sequence[str], context: BatchContext | None = None, *,
              on_result: Callable[[str, Any], None] | None = None,
              on_error: Callable[[str, BaseException], None] | None = None) -> ChunkResult:
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
    on_result : callable, optional
        In-process runs only: ``on_result(path, result)`` after each input
        (figures, summaries); an exception it raises fails that input.
    on_error : callable, optional
        In-process runs only: ``on_error(path, exc)`` for a failed input; it
        may re-raise to stop the run.

    Returns
    -------
    ChunkResult
        Tables as :class:`pyarrow.Table` (:func:`xmpspec.arrowio.table_to_arrow`,
        columns without any value as Arrow nulls; each row with
        ``input_file``), done inputs, failed inputs as (path, error type,
        reason), worker pid, host, peak RSS.
    """
    t0 = time.perf_counter()
    ctx = context if context is not None else _WORKER_CONTEXT
    if ctx is None:
        raise RuntimeError("run_chunk called without a batch context")
    previous = get_active_config()
    if previous is not ctx.config_obj:
        set_active_config(ctx.config_obj)
    items: list[tuple[str, Any]] = []
    failed: list[tuple[str, str, str]] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # per-object warnings would flood a survey run
            for path in paths:
                try:
                    result = task(path, ctx)
                    if on_result is not None:
                        on_result(path, result)
                    items.append((path, result))
                except Exception as exc:  # XmpspecError, or a bug / unforeseen input: record it
                    if on_error is not None:
                        on_error(path, exc)
                    failed.append(_failure(path, exc))
            assemble = getattr(task, "assemble", None) or _default_assemble
            tables, late = assemble(items, ctx) if items else ({}, [])
            # converted here, in the worker: the driver only writes the Arrow tables
            # (converting ~100 columns per chunk in the one driver process would bound
            # throughput)
            tables = {name: null_empty_columns(table_to_arrow(t)) for name, t in tables.items()}
    finally:
        if previous is not ctx.config_obj and context is not None:
            set_active_config(previous)  # in-process: leave the caller's configuration
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

