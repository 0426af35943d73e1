"""Style is checked in CI: ``ruff check`` over the package, the tests and the benchmarks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    """`ruff check xmpspec tests benchmarks` reports nothing (configuration in pyproject.toml)."""
    ruff = shutil.which("ruff")
    cmd = [ruff] if ruff else [sys.executable, "-m", "ruff"]
    res = subprocess.run(cmd + ["check", "xmpspec", "tests", "benchmarks"], cwd=REPO,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
