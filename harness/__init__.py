"""Grading harness for scalar autograd engines.

The public plugin API is what a submission may import: ``hookimpl`` (the
marker for ``register_engines`` and the other hooks) and ``Unsupported``
(raised by an engine for an op it lacks).
"""

__all__ = ["hookimpl", "hookspec", "Unsupported", "OPS"]

#: The built-in ops an engine may be asked to ``apply``.
OPS = ("add", "sub", "mul", "div", "pow", "neg", "exp", "log", "tanh", "relu", "sigmoid")


class Unsupported(Exception):
    """Raised by an engine's ``apply`` for an op it does not implement."""


def __getattr__(name: str):
    # pluggy is imported on first use of a marker, not by every engine process.
    if name in ("hookimpl", "hookspec"):
        import pluggy

        globals().update(hookspec=pluggy.HookspecMarker("harness"), hookimpl=pluggy.HookimplMarker("harness"))
        return globals()[name]
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
