"""The engine in-process with one worker: ``xmpspec measure`` (no manifest, no resume).

:func:`run_stream` runs the task of ``xmpspec batch`` (the same
:func:`~xmpspec.engine.worker.run_chunk`, Parquet parts and
:func:`~xmpspec.engine.merge.merge_parts`) in the calling process, with the
output folder locked and the temporaries of killed runs cleaned.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..arrowio import write_part
from ..errors import InputError
from .executors import Chunk, InlineExecutor
from .manifest import OutputLock, clean_temporaries
from .merge import merge_parts
from .tasks import TASKS, BatchContext

__all__ = ["StreamResult", "run_stream"]


@dataclass
class StreamResult:
    """Outcome of :func:`run_stream`.

    Attributes
    ----------
    n_done : int
        Inputs processed.
    failures : list of (str, str, str)
        (input, error type, reason) of the inputs that failed.
    outputs : dict
        Files written per table name (first file: the first format).
    n_parts : int
        Parquet parts the tables were streamed through.
    """

    n_done: int = 0
    failures: list = field(default_factory=list)
    outputs: dict = field(default_factory=dict)
    n_parts: int = 0


def run_stream(inputs: Sequence[str | Path], outdir: str | Path, task="measure", *,
               context: BatchContext, names: dict[str, str] | None = None,
               chunk_size: int = 200, formats: Sequence[str] = ("ecsv", "fits"),
               provenance: Callable[[StreamResult], dict] | dict | None = None,
               on_result: Callable[[str, object], None] | None = None,
               on_error: Callable[[str, BaseException], None] | None = None,
               progress: Callable[[int, int], None] | None = None,
               command: str = "measure", keep_input_column: bool = False,
               max_text_rows: int | None = None) -> StreamResult:
    """The engine in-process with one worker: chunks -> Parquet parts -> merged tables.

    The output folder is locked while the run writes it (:class:`OutputLock`)
    and what an earlier killed run left there is removed. Each chunk of
    ``chunk_size`` inputs goes through :func:`xmpspec.engine.worker.run_chunk`
    (as in a worker of ``xmpspec batch``), its tables become Parquet parts in
    a temporary folder (``OUTDIR/.<first table>-parts-<id>``), and at the
    end the parts are merged in input order
    (:func:`xmpspec.engine.merge.merge_parts`, streamed: memory does not grow
    with the number of inputs). The temporary folder is removed at the end,
    and by the next run after a kill.

    Parameters
    ----------
    inputs : sequence of path-like
        The inputs, in output order.
    outdir : path-like
        Output folder.
    task : str or callable
        A task of :data:`xmpspec.engine.tasks.TASKS` or a module-level function.
    context : BatchContext
        Configuration, targets and options of the task.
    names : dict, optional
        Task table name -> file stem (default: the table names).
    chunk_size : int
        Inputs per part.
    formats : sequence of str
        Formats of the merged tables.
    provenance : dict or callable, optional
        Provenance record of the merged tables, or ``f(result)`` returning it
        once the inputs are processed (so it can list the failures).
    on_result, on_error : callable, optional
        See :func:`~xmpspec.engine.worker.run_chunk`.
    progress : callable, optional
        ``progress(n_done, n_failed)`` after each chunk.
    command : str
        Name recorded in the lock file.
    keep_input_column : bool
        Keep the ``input_file`` column in the merged tables.
    max_text_rows : int, optional
        Above this many rows a table is written as Parquet only (default: no limit,
        every format in ``formats`` is written).

    Returns
    -------
    StreamResult
        No table is written when no input succeeded.
    """
    task_fn = TASKS[task] if isinstance(task, str) else task
    if chunk_size < 1:
        raise InputError(f"chunk size must be >= 1, not {chunk_size}")
    outdir = Path(outdir)
    inputs = [str(p) for p in inputs]
    names = dict(names or {})
    res = StreamResult()
    parts: dict[str, list[Path]] = {}
    order = {p: i for i, p in enumerate(dict.fromkeys(inputs))}
    with OutputLock(outdir, command):
        stems = sorted({*names.values(), "lines", "objects"})
        clean_temporaries(outdir, stems)
        partdir = outdir / f".{names.get('lines', 'lines')}-parts-{uuid.uuid4().hex[:8]}"
        executor = InlineExecutor(context, on_result=on_result, on_error=on_error)
        try:
            for k in range(0, len(inputs), chunk_size):
                chunk = Chunk(f"{k // chunk_size:06d}", inputs[k:k + chunk_size])
                executor.submit(task_fn, chunk)
                _, result, _, _ = executor.next_completed()
                res.failures.extend(result.failed)
                res.n_done += len(result.done)
                for name, table in result.tables.items():
                    if table.num_rows == 0:
                        continue
                    partdir.mkdir(parents=True, exist_ok=True)
                    f = partdir / f"{chunk.id}.{name}.parquet"
                    write_part(table, f)
                    parts.setdefault(name, []).append(f)
                if progress:
                    progress(len(result.done), len(result.failed))
            res.n_parts = max((len(v) for v in parts.values()), default=0)
            if not res.n_done:
                return res
            prov = provenance(res) if callable(provenance) else (provenance or {})
            for name, files in parts.items():
                res.outputs[name] = merge_parts(
                    files, outdir / names.get(name, name), prov, order=order, formats=formats,
                    max_text_rows=max_text_rows if max_text_rows is not None else 2**62,
                    drop=() if keep_input_column else ("input_file",))
        finally:
            executor.shutdown()
            shutil.rmtree(partdir, ignore_errors=True)
    return res
