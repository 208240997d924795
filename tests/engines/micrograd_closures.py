"""Correct micrograd-style engine written as Karpathy writes it: each op's backward is its own closure.

Where ``micrograd_full.py`` accumulates every gradient in one loop, here each
op's ``_backward`` closure adds its contributions to its operands itself
(``self._pass += ...``), the way students write micrograd.  That is where the
classic "= instead of +=" bug lives, one op at a time: ``tests/unit/test_mutants_per_op.py``
mutates each accumulating line below (the ones marked ``# d(...)``) and checks
that the built-in cases catch every such mutant.

PyTorch semantics: ``backward()`` computes this pass's gradients in ``_pass``
(reset to 0 for every node of the graph, 1 for the output), then adds them to
``grad``, so a second call doubles every gradient, intermediates included.
The topological sort is iterative, so deep chains work.  Exponents must be
plain numbers (as in Karpathy's micrograd); a node exponent is unsupported.

Domain errors are Python's: ``log(0)`` and ``(-8) ** 0.5`` raise ValueError,
``x / 0`` raises ZeroDivisionError, ``exp(1000)`` raises OverflowError.
relu'(0) is 0.  Expected verdict: passes every case.
"""

import math


def _pow_slope(x, p, out):
    """d(x ** p)/dx; an infinite slope is inf."""
    if p == 0:
        return 0.0
    try:
        return p * math.pow(x, p - 1)
    except (ValueError, OverflowError):  # x == 0 with 0 < p < 1, or x tiny
        return p * out / x if x else math.inf


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
    """A scalar with its gradient; each op sets a closure that passes its gradient to its operands."""

    def __init__(self, data, _children=(), _op=""):
        self.data = float(data)
        self.grad = 0.0
        self._pass = 0.0  # d(output)/d(self) in the current backward() pass
        self._backward = lambda: None
        self._prev = tuple(_children)
        self._op = _op

    @staticmethod
    def _wrap(other):
        return other if isinstance(other, Value) else Value(other)

    def __add__(self, other):
        other = self._wrap(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            self._pass += out._pass  # d(a + b)/da = 1
            other._pass += out._pass  # d(a + b)/db = 1
        out._backward = _backward
        return out

    def __sub__(self, other):
        other = self._wrap(other)
        out = Value(self.data - other.data, (self, other), "-")

        def _backward():
            self._pass += out._pass  # d(a - b)/da = 1
            other._pass += -out._pass  # d(a - b)/db = -1
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = self._wrap(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            self._pass += other.data * out._pass  # d(a * b)/da = b
            other._pass += self.data * out._pass  # d(a * b)/db = a
        out._backward = _backward
        return out

    def __truediv__(self, other):
        other = self._wrap(other)
        a, b = self.data, other.data
        out = Value(a / b, (self, other), "/")

        def _backward():
            self._pass += out._pass / b  # d(a / b)/da = 1/b
            other._pass += -a / (b * b) * out._pass  # d(a / b)/db = -a/b^2
        out._backward = _backward
        return out

    def __pow__(self, other):
        if isinstance(other, Value):
            raise NotImplementedError("pow with a node as the exponent")
        x, p = self.data, other
        out = Value(math.pow(x, p), (self,), "**")

        def _backward():
            self._pass += _pow_slope(x, p, out.data) * out._pass  # d(a ** p)/da = p a^(p-1)
        out._backward = _backward
        return out

    def __neg__(self):
        out = Value(-self.data, (self,), "neg")

        def _backward():
            self._pass += -out._pass  # d(-a)/da = -1
        out._backward = _backward
        return out

    def __radd__(self, other):
        return self._wrap(other) + self

    def __rsub__(self, other):
        return self._wrap(other) - self

    def __rmul__(self, other):
        return self._wrap(other) * self

    def __rtruediv__(self, other):
        return self._wrap(other) / self

    def exp(self):
        e = math.exp(self.data)
        out = Value(e, (self,), "exp")

        def _backward():
            self._pass += e * out._pass  # d exp(a)/da = exp(a)
        out._backward = _backward
        return out

    def log(self):
        x = self.data
        out = Value(math.log(x), (self,), "log")

        def _backward():
            self._pass += out._pass / x  # d log(a)/da = 1/a
        out._backward = _backward
        return out

    def tanh(self):
        t = math.tanh(self.data)
        out = Value(t, (self,), "tanh")

        def _backward():
            self._pass += (1.0 - t * t) * out._pass  # d tanh(a)/da = 1 - tanh(a)^2
        out._backward = _backward
        return out

    def relu(self):
        x = self.data
        out = Value(x if x > 0 else 0.0, (self,), "relu")

        def _backward():
            self._pass += (1.0 if x > 0 else 0.0) * out._pass  # d relu(a)/da = [a > 0]
        out._backward = _backward
        return out

    def sigmoid(self):
        s = _sigmoid(self.data)
        out = Value(s, (self,), "sigmoid")

        def _backward():
            self._pass += s * (1.0 - s) * out._pass  # d sigmoid(a)/da = s(1 - s)
        out._backward = _backward
        return out

    def backward(self):
        """Add d(self)/d(node) to node.grad for every node in self's graph."""
        order = _topo(self)
        for node in order:
            node._pass = 0.0
        self._pass = 1.0
        for node in reversed(order):
            node._backward()
        for node in order:
            node.grad += node._pass

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"
