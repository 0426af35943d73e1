"""xmpspec: spectroscopic follow-up of extremely metal-poor (XMP) galaxy candidates.

Stages follow the data: ``reduce`` (PypeIt) -> :class:`Spectrum` ->
``lines`` (measurements) -> ``physics`` (derived properties) -> ``compare``
and ``products`` (tables, figures).
"""

from ._version import __version__
from .config import Config, load_config
from .errors import InputError, XmpspecError
from .spectrum import FLUX_UNIT, LINE_FLUX_UNIT, Spectrum

__all__ = ["__version__", "Spectrum", "FLUX_UNIT", "LINE_FLUX_UNIT", "Config", "load_config",
           "XmpspecError", "InputError"]
