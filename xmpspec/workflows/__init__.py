"""Workflows: the engine and the science layers chained into what the commands run.

* :mod:`~xmpspec.workflows.measure` - ``xmpspec measure`` (the engine in-process,
  one worker) and derive of a written objects table;
* :mod:`~xmpspec.workflows.chain` - measure -> derive -> compare -> tables ->
  figures on 1D spectra (``xmpspec demo``);
* :mod:`~xmpspec.workflows.night` - ``xmpspec run``: reduce (PypeIt, through
  the engine's executor) -> measure -> derive -> report for one night.
"""
