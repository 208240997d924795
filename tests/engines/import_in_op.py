"""Imports a library in the middle of an op: ``tanh()`` does ``import colorsys``.

Reuses micrograd_full.py (correct) from the same folder; ``Value.tanh``
first imports the standard-library module ``colorsys`` (harmless, and not
imported by anything else), then computes tanh correctly.  It stands for a
submission that calls a library an instructor has forbidden (torch, jax,
autograd) only inside one op.
Expected verdict: passes every case by default; with
``--forbid-import colorsys``, ``error`` naming colorsys and the import policy
on every case that uses tanh, and every other case passes.
"""

from micrograd_full import Value

_tanh = Value.tanh


def _tanh_with_a_library(self):
    import colorsys  # noqa: F401  (forbidden when the instructor says so)

    return _tanh(self)


Value.tanh = _tanh_with_a_library
