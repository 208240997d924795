"""The harness's version, as installed (reports carry it)."""

from __future__ import annotations

import functools
from importlib import metadata

DISTRIBUTION = "autograd-harness"


@functools.cache
def harness_version() -> str:
    """The installed distribution's version, or ``0+unknown`` when the harness runs from a source tree."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"
