"""Grading harness for scalar autograd engines: the public API, and nothing else.

What a plugin or a submission may import from here:

- ``hookimpl`` (and ``hookspec``): the pluggy markers of the hooks in ``harness.hookspecs``;
- ``Engine`` (and ``StructuredEngine``): what an engine object offers the grader;
- ``Reporter``: what a report format registered through ``register_reporters`` is;
- ``Unsupported``: raised by an engine's ``apply`` for an op it lacks;
- ``OpSpec``: an extra op, registered through ``register_ops``;
- ``OPS``: the names of the built-in ops (the table is ``harness.ops``).

Importing ``harness`` stays cheap: it runs in every engine process, and pluggy
(the markers) and ``typing`` (the protocols, ``harness.protocols``) are imported
only when first used.
"""

from __future__ import annotations

from harness.ops import NAMES as OPS
from harness.ops import OpSpec

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~9 ms in every engine process)
if TYPE_CHECKING:
    from typing import Any

    import pluggy

    from harness.protocols import Engine, Reporter, StructuredEngine

    hookimpl: pluggy.HookimplMarker
    hookspec: pluggy.HookspecMarker

__all__ = ["hookimpl", "hookspec", "Engine", "StructuredEngine", "Reporter", "Unsupported", "OpSpec", "OPS"]


class Unsupported(Exception):
    """Raised by an engine's ``apply`` for an op it does not implement: the case is ``unsupported``."""


_PROTOCOLS = ("Engine", "StructuredEngine", "Reporter")


def __getattr__(name: str) -> Any:
    # pluggy and typing are imported on first use of a marker or a protocol, not by every engine process.
    if name in _PROTOCOLS:
        from harness import protocols

        globals().update({n: getattr(protocols, n) for n in _PROTOCOLS})
        return globals()[name]
    if name in ("hookimpl", "hookspec"):
        import pluggy

        globals().update(hookspec=pluggy.HookspecMarker("harness"), hookimpl=pluggy.HookimplMarker("harness"))
        return globals()[name]
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
