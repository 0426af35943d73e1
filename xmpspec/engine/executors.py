"""Executors of the engine: in-process, a local process pool, or a Dask cluster.

All three take chunks (:class:`Chunk`) of one task and return completed
chunks one at a time (``next_completed``), so :class:`xmpspec.engine.run.BatchRun`
drives them alike: :class:`InlineExecutor` (one worker in the driver,
``xmpspec measure``), :class:`LocalExecutor` (a
:class:`concurrent.futures.ProcessPoolExecutor` restarted when a worker
dies) and :class:`DaskExecutor` (an existing ``dask.distributed`` cluster).
:func:`map_inputs` runs other jobs (the PypeIt reductions of ``xmpspec
reduce``/``run``) on the same local executor.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .tasks import BatchContext
from .worker import (
    ClusterLostError,
    WorkerDiedError,
    _identity,
    _init_worker,
    _run_chunk_dask,
    run_chunk,
)

__all__ = ["Chunk", "InlineExecutor", "LocalExecutor", "DaskExecutor", "map_inputs",
           "is_worker_crash", "sigint_deferred"]

log = logging.getLogger("xmpspec.engine")

_THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass
class Chunk:
    """Inputs submitted together as one task."""

    id: str
    paths: list[str]
    attempts: int = 0


@contextlib.contextmanager
def sigint_deferred():
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



def is_worker_crash(exc: BaseException) -> bool:
    if isinstance(exc, cf.process.BrokenProcessPool | WorkerDiedError):
        return True
    name = type(exc).__name__
    return name in ("KilledWorker", "CommClosedError", "FutureCancelledError")



class InlineExecutor:
    """One worker in the driver process: chunks run at submission (``xmpspec measure``).

    Parameters
    ----------
    context : BatchContext
        The task context.
    on_result, on_error : callable, optional
        Passed to :func:`~xmpspec.engine.worker.run_chunk` (figures and
        summaries of each measurement; stop on the first failure).
    """

    workers = 1

    def __init__(self, context: BatchContext, on_result=None, on_error=None):
        self.context = context
        self.on_result = on_result
        self.on_error = on_error
        self._done: list = []

    def describe(self) -> str:
        return "in-process, 1 worker"

    def submit(self, task, chunk) -> None:
        result = run_chunk(task, chunk.id, chunk.paths, self.context,
                           on_result=self.on_result, on_error=self.on_error)
        self._done.append((chunk, result, None, None))

    def next_completed(self):
        return self._done.pop(0)

    def handle_crash(self, fut) -> None:
        pass

    def shutdown(self, abort: bool = False) -> None:
        self._done.clear()


class LocalExecutor:
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

    def submit_call(self, key, func, *args) -> cf.Future:
        """Submit ``func(*args)``; ``next_completed`` returns ``key`` in place of a chunk."""
        try:
            fut = self.pool.submit(func, *args)
        except cf.process.BrokenProcessPool:
            self.restart_if_broken()
            fut = self.pool.submit(func, *args)
        self.futures[fut] = key
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


class DaskExecutor:
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



def _call(func, item):
    return func(item)


def map_inputs(func: Callable[[Any], Any], items: Sequence[Any], workers: int = 1,
               progress: Callable | None = None, description: str = "running",
               context: BatchContext | None = None) -> list[tuple[Any, BaseException | None]]:
    """``func(item)`` for every item, in the driver or in the engine's local process pool.

    The executor of the PypeIt reductions (``xmpspec reduce``/``run``): with
    ``workers`` > 1 and several items, a :class:`LocalExecutor` (spawned
    processes, one BLAS thread each, restarted if a worker dies); otherwise a
    loop in this process.

    Parameters
    ----------
    func : callable
        Module-level (picklable) function of one item.
    items : sequence
        Picklable items.
    workers : int
        Processes.
    progress : callable, optional
        ``progress(iterable, description, total)`` wrapping the loop over
        completed items.
    description : str
        Description for ``progress``.
    context : BatchContext, optional
        Context for the workers (configuration; default: an empty one).

    Returns
    -------
    list of (result, exception)
        In the order of ``items``: ``(result, None)``, or ``(None, exc)`` for
        an item whose call raised. Jobs lost with a dying worker run again,
        each alone; one that kills its worker again gives
        :class:`WorkerDiedError`.
    """
    items = list(items)
    out: list[tuple[Any, BaseException | None]] = [(None, None)] * len(items)
    if workers <= 1 or len(items) <= 1:
        it = progress(range(len(items)), description, len(items)) if progress else range(
            len(items))
        for i in it:
            try:
                out[i] = (func(items[i]), None)
            except Exception as exc:  # noqa: BLE001 - returned to the caller
                out[i] = (None, exc)
        return out
    from ..config import get_active_config
    if context is None:
        cfg = get_active_config()
        context = BatchContext(config=cfg.to_dict(), config_sources=list(cfg.sources))
    crashed = _map_in_pool(func, items, list(range(len(items))), min(workers, len(items)),
                           context, out, progress, description)
    # a worker's death fails every job on its pool: each of those runs again alone, so only
    # the job that kills its worker again is failed (as the batch run splits a chunk)
    for i in crashed:
        again = _map_in_pool(func, items, [i], 1, context, out, None, description)
        if again:
            out[i] = (None, WorkerDiedError("the worker process died while running this job, "
                                            "twice (crash or out of memory)"))
    return out


def _map_in_pool(func, items, keys, workers, context, out, progress, description) -> list[int]:
    """Run ``items[k]`` for ``k`` in ``keys`` on a pool; returns the keys lost with a worker."""
    ex = LocalExecutor(workers, context)
    crashed: list[int] = []
    aborted = True
    try:
        for k in keys:
            ex.submit_call(k, _call, func, items[k])

        def completed():
            for _ in range(len(keys)):
                yield ex.next_completed()

        it = completed()
        for key, result, exc, fut in (progress(it, description, len(keys)) if progress
                                      else it):
            if exc is not None and is_worker_crash(exc):
                ex.handle_crash(fut)
                crashed.append(key)
                exc = WorkerDiedError(f"the worker process died ({type(exc).__name__}; "
                                      "crash or out of memory)")
            out[key] = (result, exc)
        aborted = False
    finally:
        ex.shutdown(abort=aborted)
    return sorted(crashed)
