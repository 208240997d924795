"""The reference scalar autograd engine: the tutorial notebook's API, made iterative and exact."""

from reference_engine.tensor import (
    Tensor,
    _add,
    _div,
    _exp,
    _log,
    _mul,
    _neg,
    _pow,
    _relu,
    _sigmoid,
    _sub,
    _tanh,
)

__all__ = [
    "Tensor", "_add", "_sub", "_mul", "_div", "_pow", "_neg", "_exp", "_log", "_tanh", "_relu", "_sigmoid",
]
