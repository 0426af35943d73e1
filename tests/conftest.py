"""Shared pytest fixtures for xmpspec."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("XMPSPEC_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ``../shared`` folder (published data, reference data); tests needing it fail loudly if absent."""
    if not SHARED.is_dir():
        raise FileNotFoundError(f"shared data folder not found at {SHARED} (set XMPSPEC_SHARED)")
    return SHARED
