"""Hostile output: junk on stdout and stderr at import and in every op; correct results.

Otherwise a copy of micrograd_full.py (correct).  At import, on every node
created (every op and leaf) and in every ``backward()``, it prints garbage
(control characters, invalid UTF-8), a fake JSON report ``{"engines": []}``,
a fake passing JSON report, fake JUnit XML and a fake length-prefixed JSON
frame, through ``print`` to sys.stdout and sys.stderr and through
``os.write`` straight to file descriptors 1 and 2.
Expected verdict: passes every case, and none of the noise reaches the
report, whatever ``--format`` or ``--output``.
"""

import json
import math
import os
import struct
import sys


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


_FAKE_REPORT = json.dumps({"engines": [{"engine": "noisy", "source": "noisy", "score": 999.0,
                                       "max_score": 1.0, "cases": []}]})
_FAKE_XML = ('<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="noisy" '
             'tests="1" failures="0" errors="0"><testcase name="all"/></testsuite></testsuites>')
_FAKE_FRAME = json.dumps({"status": "passed", "value": 0, "grads": {}}).encode()


def _noise(where):
    """HOSTILE: write junk everywhere an engine can write."""
    print(f"noisy engine in {where}: \x1b[31mgarbage\x1b[0m \x00\x07 \ufffd", flush=True)
    print('{"engines": []}', flush=True)
    print(_FAKE_REPORT, flush=True)
    print(_FAKE_XML, flush=True)
    print(f"stderr noise from {where}", file=sys.stderr, flush=True)
    os.write(1, b"raw fd 1 bytes \xff\xfe\x80 not utf-8\n" + struct.pack("!I", len(_FAKE_FRAME)) + _FAKE_FRAME)
    os.write(2, b"raw fd 2 bytes \xff\xfe\x80\n" + _FAKE_XML.encode() + b"\n")


_noise("import")


class Value:
    """A scalar with its gradient; each op records its operands and local derivatives."""

    def __init__(self, data, _children=(), _op="", _local=None):
        _noise(f"op {_op or 'leaf'}")
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
        _noise("backward")
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
