"""The engine: one way to read, match, measure and merge, from one spectrum to 10^6.

Modules (imports only go down this list):

* :mod:`~xmpspec.engine.discovery` - folders, globs, file lists -> inputs;
* :mod:`~xmpspec.engine.tasks` - what is done to one input (``measure_input``,
  the one measurement path of every command) and the context shipped to workers;
* :mod:`~xmpspec.engine.worker` - run a task over a chunk (``run_chunk``);
* :mod:`~xmpspec.engine.manifest` - the manifest of a batch run, the
  output-folder lock, cleanup of what killed runs left;
* :mod:`~xmpspec.engine.executors` - in-process, local process pool, Dask;
* :mod:`~xmpspec.engine.merge` - Parquet parts -> merged tables in input order;
* :mod:`~xmpspec.engine.run` - :class:`BatchRun` (resumable, ``xmpspec batch``);
* :mod:`~xmpspec.engine.stream` - :func:`run_stream` (in-process, ``xmpspec measure``).

Arrow/Parquet I/O lives one layer down, in :mod:`xmpspec.arrowio`.
"""

from __future__ import annotations

from .discovery import SPECTRUM_SUFFIXES, discover_inputs, is_file_list
from .manifest import FAILED_NAME, LOCK_NAME, MANIFEST_NAME, PARTS_DIR, Manifest, OutputLock
from .run import BatchRun, BatchSummary, run_batch
from .stream import StreamResult, run_stream
from .tasks import TASKS, BatchContext, inventory_task, measure_input, measure_task
from .worker import ChunkResult, run_chunk

__all__ = ["SPECTRUM_SUFFIXES", "FAILED_NAME", "LOCK_NAME", "MANIFEST_NAME", "PARTS_DIR",
           "TASKS", "BatchContext", "BatchRun", "BatchSummary", "ChunkResult", "Manifest",
           "OutputLock", "StreamResult", "discover_inputs", "inventory_task", "is_file_list",
           "measure_input", "measure_task", "run_batch", "run_chunk", "run_stream"]
