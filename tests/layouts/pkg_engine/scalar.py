"""The engine of the pkg_engine package: a correct micrograd-style ``Scalar``.

It has ``value`` (not ``data``) and ``grad``; same behaviour as micrograd_full.py.
"""

import math

from ._ops import pow_locals, sigmoid, topological_order


class Scalar:
    """A scalar with its gradient; each op records its operands and local derivatives."""

    def __init__(self, value, _children=(), _op="", _local=None):
        self.value = float(value)
        self.grad = 0.0
        self._prev = tuple(_children)
        self._op = _op
        # returns d(self)/d(child) for each child in _prev, evaluated lazily at backward time
        self._local = _local or (lambda: ())

    @staticmethod
    def _wrap(other):
        return other if isinstance(other, Scalar) else Scalar(other)

    def __add__(self, other):
        other = self._wrap(other)
        return Scalar(self.value + other.value, (self, other), "+", lambda: (1.0, 1.0))

    def __sub__(self, other):
        other = self._wrap(other)
        return Scalar(self.value - other.value, (self, other), "-", lambda: (1.0, -1.0))

    def __mul__(self, other):
        other = self._wrap(other)
        return Scalar(self.value * other.value, (self, other), "*", lambda: (other.value, self.value))

    def __truediv__(self, other):
        other = self._wrap(other)
        a, b = self.value, other.value
        return Scalar(a / b, (self, other), "/", lambda: (1.0 / b, -a / (b * b)))

    def __pow__(self, other):
        operands = (self, other) if isinstance(other, Scalar) else (self,)
        x, p = self.value, getattr(other, "value", other)
        out = math.pow(x, p)
        return Scalar(out, operands, "**", lambda: pow_locals(x, p, out)[:len(operands)])

    def __neg__(self):
        return Scalar(-self.value, (self,), "neg", lambda: (-1.0,))

    def __radd__(self, other):
        return self._wrap(other) + self

    def __rsub__(self, other):
        return self._wrap(other) - self

    def __rmul__(self, other):
        return self._wrap(other) * self

    def __rtruediv__(self, other):
        return self._wrap(other) / self

    def __rpow__(self, other):
        return self._wrap(other) ** self

    def exp(self):
        e = math.exp(self.value)
        return Scalar(e, (self,), "exp", lambda: (e,))

    def log(self):
        x = self.value
        return Scalar(math.log(x), (self,), "log", lambda: (1.0 / x,))

    def tanh(self):
        t = math.tanh(self.value)
        return Scalar(t, (self,), "tanh", lambda: (1.0 - t * t,))

    def relu(self):
        x = self.value
        return Scalar(x if x > 0 else 0.0, (self,), "relu", lambda: (1.0 if x > 0 else 0.0,))

    def sigmoid(self):
        s = sigmoid(self.value)
        return Scalar(s, (self,), "sigmoid", lambda: (s * (1.0 - s),))

    def backward(self):
        """Add d(self)/d(node) to node.grad for every node in self's graph."""
        order = topological_order(self)
        fresh = {self: 1.0}
        for node in reversed(order):
            g = fresh[node]
            for child, local in zip(node._prev, node._local()):
                fresh[child] = fresh.get(child, 0.0) + local * g
        for node, g in fresh.items():
            node.grad += g

    def __repr__(self):
        return f"Scalar(value={self.value}, grad={self.grad})"
