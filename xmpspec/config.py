"""Configuration: the defaults of docs/science.md, TOML loading and overrides.

The defaults live in ``xmpspec/data/defaults.toml``. A user file
(``xmpspec.toml`` in the working directory, or one given with ``--config``)
overrides any key; command-line flags override the file. The resolved
configuration is recorded in the provenance of every output table.

The configuration is resolved **once, by the command line**
(:func:`find_user_config` + :func:`load_config` in :mod:`xmpspec.cli`) and
passed down explicitly (``config=`` of the library functions). Library code
never reads the working directory on its own: :func:`load_config` reads a
file only when given one, and :func:`get_active_config` (the fallback of
functions called without ``config``) returns what the running command set
with :func:`set_active_config`, else the packaged defaults.

Examples
--------
>>> from xmpspec.config import load_config
>>> cfg = load_config()
>>> cfg["measure"]["significance_gate"]
2.0
>>> cfg.get("cosmology.H0")
67.4
"""

from __future__ import annotations

import contextlib
import copy
import json
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["Config", "load_config", "default_config", "find_user_config", "get_active_config",
           "set_active_config"]

USER_CONFIG_NAME = "xmpspec.toml"


def _read_defaults() -> dict:
    text = resources.files("xmpspec").joinpath("data/defaults.toml").read_text()
    return tomllib.loads(text)


def _deep_update(base: dict, update: Mapping, origin: str, path: str = "") -> None:
    for key, value in update.items():
        where = f"{path}{key}"
        if key not in base:
            known = ", ".join(sorted(base)) or "(none)"
            raise ConfigError(f"unknown configuration key '{where}' (known here: {known})", origin)
        if isinstance(base[key], dict):
            if not isinstance(value, Mapping):
                raise ConfigError(f"'{where}' must be a table of keys", origin)
            _deep_update(base[key], value, origin, where + ".")
        else:
            base[key] = value


class Config(Mapping):
    """Resolved configuration: nested sections of keys.

    Parameters
    ----------
    data : dict
        Nested dictionary ``{section: {key: value}}``.
    sources : list of str
        Where the values came from (defaults, files, command line), in order.
    """

    def __init__(self, data: dict, sources: list[str] | None = None):
        self._data = data
        self.sources = list(sources or ["defaults"])

    def __getitem__(self, section: str) -> Any:
        try:
            return self._data[section]
        except KeyError:
            raise ConfigError(f"no configuration section '{section}'") from None

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def get(self, dotted: str, default: Any = None) -> Any:  # type: ignore[override]
        """Value of a dotted key such as ``"cosmology.H0"`` (``default`` if absent)."""
        node: Any = self._data
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node

    def updated(self, overrides: Mapping | None = None, origin: str = "command line") -> Config:
        """A copy with ``overrides`` applied (nested mapping or dotted keys)."""
        if not overrides:
            return self
        data = copy.deepcopy(self._data)
        nested: dict = {}
        for key, value in overrides.items():
            if value is None:
                continue
            if "." in key:
                section, _, rest = key.partition(".")
                nested.setdefault(section, {})
                node = nested[section]
                parts = rest.split(".")
                for part in parts[:-1]:
                    node = node.setdefault(part, {})
                node[parts[-1]] = value
            else:
                nested[key] = value
        _deep_update(data, nested, origin)
        return Config(data, self.sources + [origin])

    def to_dict(self) -> dict:
        """A deep copy of the configuration as plain dictionaries."""
        return copy.deepcopy(self._data)

    def to_json(self) -> str:
        """The configuration as compact JSON (for FITS headers and provenance)."""
        return json.dumps(self._data, sort_keys=True, separators=(",", ":"))

    def __repr__(self) -> str:
        return f"Config(sections={list(self._data)}, sources={self.sources})"


def default_config() -> Config:
    """The defaults of docs/science.md, without any user file."""
    return Config(_read_defaults(), ["defaults"])


def find_user_config(folder: str | Path = ".") -> Path | None:
    """The user configuration file of a folder (``xmpspec.toml``), if it has one.

    Called by the command line only (``--config`` absent): the library never
    looks for it.

    Parameters
    ----------
    folder : path-like
        Folder to look in (default: the working directory).

    Returns
    -------
    Path or None
    """
    path = Path(folder) / USER_CONFIG_NAME
    return path if path.is_file() else None


def load_config(path: str | Path | None = None, overrides: Mapping | None = None,
                search_cwd: bool = False) -> Config:
    """Load the configuration.

    Parameters
    ----------
    path : path-like, optional
        A TOML file. If omitted: the packaged defaults (and ``./xmpspec.toml``
        when ``search_cwd`` is true).
    overrides : mapping, optional
        Values from the command line, as dotted keys (``{"measure.significance_gate": 3}``).
    search_cwd : bool
        Look for ``xmpspec.toml`` in the working directory (default: no; the
        command line resolves it with :func:`find_user_config`).

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        The file is missing, not valid TOML, or names an unknown key.
    """
    cfg = default_config()
    if path is None and search_cwd:
        path = find_user_config()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError("configuration file not found", path)
        try:
            user = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"not valid TOML: {exc}", path) from None
        data = cfg.to_dict()
        _deep_update(data, user, str(path))
        cfg = Config(data, cfg.sources + [str(path)])  # as given: no machine path
    if overrides:
        cfg = cfg.updated(overrides)
    return cfg


_ACTIVE: Config | None = None
_DEFAULTS: Config | None = None


def get_active_config() -> Config:
    """The configuration of the running command (set by the CLI), else the packaged defaults.

    Never reads the working directory: a library call without ``config``
    uses the defaults unless a command set its resolved configuration with
    :func:`set_active_config`.
    """
    global _DEFAULTS
    if _ACTIVE is not None:
        return _ACTIVE
    if _DEFAULTS is None:
        _DEFAULTS = default_config()
    return _DEFAULTS


def set_active_config(cfg: Config | None) -> None:
    """Make ``cfg`` the configuration returned by :func:`get_active_config`."""
    global _ACTIVE
    _ACTIVE = cfg


@contextlib.contextmanager
def active_config_scope():
    """Restore the active configuration on exit.

    A command run in-process (``xmpspec.cli.main([...])`` from Python or a
    notebook) sets the active configuration from its ``--config`` file and
    options; this keeps it from leaking into later calls.
    """
    global _ACTIVE
    saved = _ACTIVE
    try:
        yield
    finally:
        _ACTIVE = saved
