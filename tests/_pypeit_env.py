"""Helpers for tests that run PypeIt: a private, offline cache seeded from ../shared."""

from __future__ import annotations

import os
from pathlib import Path


def offline_env(tmp: Path, shared_dir: Path, seed: bool = True) -> dict:
    """Environment with private XDG cache/config dirs, astropy offline, caches seeded.

    Parameters
    ----------
    tmp : Path
        Folder for the private cache/config.
    shared_dir : Path
        ../shared (pypeit-data, astropy-data).
    seed : bool
        Import the reference data into the private caches.
    """
    import subprocess
    env = dict(os.environ)
    env["XDG_CACHE_HOME"] = str(tmp / "cache")
    env["XDG_CONFIG_HOME"] = str(tmp / "config")
    cfg = tmp / "config" / "astropy"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "astropy.cfg").write_text("[utils.data]\nallow_internet = False\n")
    if seed:
        subprocess.run(["xmpspec", "-q", "cache", "import", str(shared_dir / "pypeit-data"),
                        str(shared_dir / "astropy-data")], env=env, check=True,
                       capture_output=True, timeout=600)
    return env
