"""No tracked file carries an absolute path of a machine (issue 14).

Provenance of committed example outputs once recorded the checkout's absolute
path; the outputs are now made on demand (examples/published_sample) and this
test keeps every tracked file (text and binary) free of such paths.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# home-like roots of machines (built from pieces so that this file does not match itself)
_ROOTS = ["home", "root", "Users", "work"]
_GENERIC = re.compile((r"(?<![A-Za-z0-9_.\-~])/(?:" + "|".join(_ROOTS)
                       + r")/[A-Za-z0-9_.\-]").encode())
_WINDOWS = re.compile(rb"[A-Za-z]:\\\\?(?:Users|Documents and Settings)\\\\?")


def _tracked_files() -> list[Path]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.fail("not a git checkout with git on PATH: cannot list the tracked files")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
    files = [REPO / p for p in out.stdout.decode("utf-8", "surrogateescape").split("\0") if p]
    return [f for f in files if f.is_file()]  # deleted in the work tree: not a file any more


def _checkout_paths() -> list[bytes]:
    """The absolute path of this checkout and of its parent's shared folder."""
    paths = {str(REPO), str(REPO.parent / "shared")}
    return [p.encode() for p in paths if len(p) > 4]


def find_machine_paths(files, extra: list[bytes]) -> list[str]:
    """``file:line: excerpt`` for each absolute machine path found in ``files``."""
    hits = []
    for f in files:
        data = f.read_bytes()
        for k, line in enumerate(data.split(b"\n"), 1):
            m = _GENERIC.search(line) or _WINDOWS.search(line)
            if m is None:
                for p in extra:
                    if p in line:
                        m = re.search(re.escape(p), line)
                        break
            if m is not None:
                s = line[max(0, m.start() - 20):m.end() + 40].decode("utf-8", "replace")
                name = f.relative_to(REPO) if f.is_relative_to(REPO) else f.name
                hits.append(f"{name}:{k}: ...{s}...")
    return hits


def test_detector_finds_machine_paths(tmp_path):
    """The scan finds the kinds of paths it is meant to find (and not ordinary text)."""
    bad = tmp_path / "bad.ecsv"
    bad.write_bytes(b"# inputs: [" + b"/" + b"home/alice/data/x.csv]\nok\n"
                    + b"C:\\" + b"Users\\bob\\x.fits\n")
    ck = tmp_path / "ck.txt"
    ck.write_bytes(b"written from " + str(REPO).encode() + b"/out\n")
    good = tmp_path / "good.txt"
    good.write_bytes(b"relative ../shared/data/x.csv and /tmp/cache and a/" + b"home/b\n")
    found = find_machine_paths([bad, ck, good], _checkout_paths())
    assert len(found) == 3 and not any("good.txt" in h for h in found)


def test_no_absolute_machine_path_in_tracked_files():
    hits = find_machine_paths(_tracked_files(), _checkout_paths())
    assert not hits, "absolute machine paths in tracked files:\n" + "\n".join(hits[:30])
