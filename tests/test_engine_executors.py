"""The engine's executors run other jobs too: the PypeIt reductions of ``reduce``/``run``."""

from __future__ import annotations

import os

import pytest

from xmpspec.engine.executors import map_inputs
from xmpspec.engine.worker import WorkerDiedError
from xmpspec.errors import InputError, XmpspecError


def square_or_fail(x):
    if x == 3:
        raise InputError("bad input", f"job{x}")
    if x == 5:
        os._exit(9)          # the worker process dies (as on an out-of-memory kill)
    return x * x, os.getpid()


@pytest.mark.parametrize("workers", [1, 2])
def test_map_inputs_in_order_with_failures(workers):
    items = [0, 1, 2, 3, 4] + ([5, 6] if workers > 1 else [])
    seen = []

    def progress(it, description, total):
        assert description == "reducing" and total == len(items)
        for x in it:
            seen.append(x)
            yield x

    out = map_inputs(square_or_fail, items, workers=workers, progress=progress,
                     description="reducing")
    assert len(out) == len(items) == len(seen)
    for x, (result, exc) in zip(items, out, strict=True):
        if x == 3:
            assert isinstance(exc, InputError) and "job3" in str(exc) and result is None
        elif x == 5:
            assert isinstance(exc, WorkerDiedError) and "twice" in str(exc) and result is None
        else:   # jobs lost with the dying worker ran again, alone
            assert exc is None and result[0] == x * x
    pids = {r[1] for r, e in out if e is None}
    assert (pids == {os.getpid()}) == (workers == 1)   # workers > 1: other processes


def test_reduce_files_goes_through_the_engine(monkeypatch, tmp_path):
    from xmpspec.reduce import pipeline
    calls = []

    def fake(job):
        calls.append(job[0])
        if job[0].endswith("B.pypeit"):
            raise XmpspecError("PypeIt failed: boom", job[0])
        return f"result of {job[0]}"

    monkeypatch.setattr(pipeline, "_reduce_one", fake)
    files = [tmp_path / "A.pypeit", tmp_path / "B.pypeit", tmp_path / "C.pypeit"]
    results, failures = pipeline.reduce_files(files, tmp_path, workers=1)
    assert calls == [str(f) for f in files]
    assert results == [f"result of {files[0]}", f"result of {files[2]}"]
    assert list(failures) == [str(files[1])] and "boom" in str(failures[str(files[1])])

    def bug(job):
        raise ZeroDivisionError("a bug")
    monkeypatch.setattr(pipeline, "_reduce_one", bug)
    with pytest.raises(ZeroDivisionError):     # one process: a bug reaches the command (exit 3)
        pipeline.reduce_files(files[:1], tmp_path, workers=1)
