"""Multi-file submission: a correct micrograd-style engine whose helpers live in ops_helper.py.

``import ops_helper`` is a plain top-level import of the file beside this
one, so it works only because the harness puts this file's folder first on
``sys.path`` when it loads ``--engine tests/engines/multifile/engine.py``.
Same behaviour as micrograd_full.py.
Expected verdict: passes every case.
"""

import math

import ops_helper


class Value:
    """A scalar with its gradient; each op records its operands and local derivatives."""

    def __init__(self, data, _children=(), _op="", _local=None):
        self.data = float(data)
        self.grad = 0.0
        self._prev = tuple(_children)
        self._op = _op
        # returns d(self)/d(child) for each child in _prev, evaluated lazily at backward time
        self._local = _local or (lambda: ())

    @staticmethod
    def _wrap(other):
        return other if isinstance(other, Value) else Value(other)

    def __add__(self, other):
        other = self._wrap(other)
        return Value(self.data + other.data, (self, other), "+", lambda: (1.0, 1.0))

    def __sub__(self, other):
        other = self._wrap(other)
        return Value(self.data - other.data, (self, other), "-", lambda: (1.0, -1.0))

    def __mul__(self, other):
        other = self._wrap(other)
        return Value(self.data * other.data, (self, other), "*", lambda: (other.data, self.data))

    def __truediv__(self, other):
        other = self._wrap(other)
        a, b = self.data, other.data
        return Value(a / b, (self, other), "/", lambda: (1.0 / b, -a / (b * b)))

    def __pow__(self, other):
        operands = (self, other) if isinstance(other, Value) else (self,)
        x, p = self.data, getattr(other, "data", other)
        out = math.pow(x, p)
        return Value(out, operands, "**", lambda: ops_helper.pow_locals(x, p, out)[:len(operands)])

    def __neg__(self):
        return Value(-self.data, (self,), "neg", lambda: (-1.0,))

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
        e = math.exp(self.data)
        return Value(e, (self,), "exp", lambda: (e,))

    def log(self):
        x = self.data
        return Value(math.log(x), (self,), "log", lambda: (1.0 / x,))

    def tanh(self):
        t = math.tanh(self.data)
        return Value(t, (self,), "tanh", lambda: (1.0 - t * t,))

    def relu(self):
        x = self.data
        return Value(x if x > 0 else 0.0, (self,), "relu", lambda: (1.0 if x > 0 else 0.0,))

    def sigmoid(self):
        s = ops_helper.sigmoid(self.data)
        return Value(s, (self,), "sigmoid", lambda: (s * (1.0 - s),))

    def backward(self):
        """Add d(self)/d(node) to node.grad for every node in self's graph."""
        order = ops_helper.topological_order(self)
        fresh = {self: 1.0}
        for node in reversed(order):
            g = fresh[node]
            for child, local in zip(node._prev, node._local()):
                fresh[child] = fresh.get(child, 0.0) + local * g
        for node, g in fresh.items():
            node.grad += g

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"
