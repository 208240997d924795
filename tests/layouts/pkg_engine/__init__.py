"""Package submission: a correct micrograd-style engine spread over submodules.

``--engine tests/engines/pkg_engine`` (the directory) must load this package;
it exposes ``Scalar`` from ``pkg_engine.scalar``, which imports its helpers
relatively from ``pkg_engine._ops``.  ``Scalar`` keeps its value in
``value`` rather than ``data`` (the contract allows either).
Expected verdict: passes every case.
"""

from .scalar import Scalar

__all__ = ["Scalar"]
