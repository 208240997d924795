"""Hostile output volume: ``exp()`` prints 4 MB of junk on every call; results are correct.

Otherwise a copy of micrograd_full.py (correct).  An engine that prints
without end would fill the disk through the file that captures its output.
Expected verdict: with ``--max-output-mb 1``, ``error`` saying the engine wrote
more than the cap on every case that uses ``exp``; every other case passes.
"""


import math


def _pow_locals(x, p, out):
    """d(x ** p)/dx and d(x ** p)/dp: an infinite slope is inf, and d/dp is NaN for x <= 0."""
    if p == 0:
        d_base = 0.0
    else:
        try:
            d_base = p * math.pow(x, p - 1)
        except (ValueError, OverflowError):  # x == 0 with 0 < p < 1, or x tiny
            d_base = p * out / x if x else math.inf
    d_exponent = out * math.log(x) if x > 0 else math.nan
    return d_base, d_exponent


def _sigmoid(x):
    """Logistic function that does not overflow for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _topo(root):
    """Nodes reachable from root, children before parents, without recursion."""
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if node in seen:
            continue
        seen.add(node)
        stack.append((node, True))
        stack.extend((child, False) for child in node._prev if child not in seen)
    return order


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
        return Value(out, operands, "**", lambda: _pow_locals(x, p, out)[:len(operands)])

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
        print("#" * (4 << 20))  # 4 MB a call
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
        s = _sigmoid(self.data)
        return Value(s, (self,), "sigmoid", lambda: (s * (1.0 - s),))

    def backward(self):
        """Add d(self)/d(node) to node.grad for every node in self's graph."""
        order = _topo(self)
        fresh = {self: 1.0}
        for node in reversed(order):
            g = fresh[node]
            for child, local in zip(node._prev, node._local()):
                fresh[child] = fresh.get(child, 0.0) + local * g
        for node, g in fresh.items():
            node.grad += g

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"
