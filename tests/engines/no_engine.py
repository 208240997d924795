"""Not an engine: helper functions only.

No class with ``backward()``, no ``Tensor``, no ``_add``/``_sub``/``_mul``
and no ``register_engines`` hook: just the kind of module a student might
pass by mistake.
Expected verdict: every case ``error`` with a message that no engine was
found in the file (micrograd style, notebook style or plugin), and a normal
exit status (1, not 2) from ``grade``.
"""

import math


def sigmoid(x):
    """The logistic function."""
    return 1.0 / (1.0 + math.exp(-x))


def central_difference(f, x, h=1e-6):
    """A numerical estimate of f'(x)."""
    return (f(x + h) - f(x - h)) / (2 * h)


def add(a, b):
    """a + b, for plain numbers."""
    return a + b


def mul(a, b):
    """a * b, for plain numbers."""
    return a * b
