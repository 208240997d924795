"""The hooks a harness plugin can implement.  Each takes a ``register`` callback."""

from harness import hookspec


@hookspec
def register_engines(register):
    """Register engines: call ``register(engine)`` for each engine object."""


@hookspec
def register_reporters(register):
    """Register report formats: call ``register(name, render)``, render(run, context) -> str."""


@hookspec
def register_ops(register):
    """Register extra ops for case expressions: call ``register(OpSpec(...))``."""
