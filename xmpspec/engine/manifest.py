"""Run state on disk: the append-only manifest of a batch run, and the output-folder lock.

:class:`Manifest` is ``OUTDIR/manifest.jsonl`` (see :mod:`xmpspec.engine`
for the kill-safety rules); :class:`OutputLock` is the lock every command
that writes an engine output folder (``measure``, ``batch``) holds while it
runs, and :func:`clean_temporaries` removes what a killed run left behind.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

__all__ = ["MANIFEST_NAME", "PARTS_DIR", "LOCK_NAME", "FAILED_NAME", "InputState", "Manifest",
           "OutputLock", "clean_temporaries"]

log = logging.getLogger("xmpspec.engine")

MANIFEST_NAME = "manifest.jsonl"
PARTS_DIR = "parts"
LOCK_NAME = ".xmpspec.lock"
FAILED_NAME = "failed"
MANIFEST_VERSION = 1
_INPUTS_PER_RECORD = 10_000


class OutputLock:
    """An exclusive lock on an output folder (``OUTDIR/.xmpspec.lock``, ``flock``).

    Held by ``xmpspec measure`` and ``xmpspec batch`` while they write a
    folder, so two runs never write into one folder at once. The kernel
    releases the lock when its process dies, so the lock of a killed run is
    simply taken over by the next one; the lock file is removed when the
    run ends.

    Parameters
    ----------
    outdir : path-like
        The output folder (created).
    command : str
        Name of the command, recorded in the lock file for the message of
        another run.
    """

    def __init__(self, outdir: str | Path, command: str = "xmpspec"):
        self.outdir = Path(outdir)
        self.command = command
        self._fh = None
        self._created = False

    def acquire(self) -> OutputLock:
        """Take the lock.

        Raises
        ------
        InputError
            Another running process holds it (the message names its command and pid).
        """
        self._created = not self.outdir.exists()
        self.outdir.mkdir(parents=True, exist_ok=True)
        path = self.outdir / LOCK_NAME
        while True:
            fh = open(path, "a+")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.seek(0)
                holder = fh.read().strip()
                fh.close()
                raise InputError("is in use by another running "
                                 f"{holder or 'xmpspec command'}; wait for it to finish or "
                                 "use another output folder", self.outdir) from None
            # the holder before us may have removed the file between our open and lock:
            # then the lock is on a deleted file, and we take a fresh one
            try:
                same = os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            fh.close()
        fh.seek(0)
        fh.truncate()
        fh.write(f"{self.command} (pid {os.getpid()})\n")
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        """Release the lock and remove the lock file (and the folder if it made it empty)."""
        if self._fh is not None:
            try:
                (self.outdir / LOCK_NAME).unlink(missing_ok=True)
                fcntl.flock(self._fh, fcntl.LOCK_UN)
            finally:
                self._fh.close()
                self._fh = None
            if self._created:
                with contextlib.suppress(OSError):   # only if nothing was written
                    self.outdir.rmdir()

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fh is not None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def clean_temporaries(outdir: str | Path, stems: Iterable[str]) -> int:
    """Remove what killed runs left in an output folder (call with its lock held).

    Temporary files of atomic writes of the tables ``stems``
    (``.<stem>.<ext>.*.part*``, :func:`xmpspec.tableio.atomic_path`) and
    streaming part folders (``.<stem>-parts-*``).

    Parameters
    ----------
    outdir : path-like
        Output folder.
    stems : iterable of str
        Table names written there (``lines``, ``objects``, ...).

    Returns
    -------
    int
        Files and folders removed.
    """
    outdir = Path(outdir)
    if not outdir.is_dir():
        return 0
    stems = tuple(stems)
    n = 0
    for f in outdir.iterdir():
        name = f.name
        if not name.startswith("."):
            continue
        if f.is_dir() and any(name.startswith(f".{s}-parts-") for s in stems):
            shutil.rmtree(f, ignore_errors=True)
            n += 1
        elif f.is_file() and ".part" in name and any(name.startswith(f".{s}.") for s in stems):
            f.unlink(missing_ok=True)
            n += 1
    if n:
        log.info("%s: removed %d temporary file(s) of an interrupted run", outdir, n)
    return n


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
    run, spelled as the user gave them), ``workdir`` (written once when the
    first relative input path is added: a SHA-256 of the resolved working
    folder those paths are relative to, so that no machine path is stored),
    ``chunk`` (parts written, inputs done, inputs failed with reasons).
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
        self.workdir: str | None = None
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
        elif kind == "workdir":
            self.workdir = rec["sha256"]
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

    def set_workdir(self, sha256: str) -> None:
        """Record the identity of the folder the relative input paths are relative to."""
        self._append({"type": "workdir", "sha256": sha256})

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

