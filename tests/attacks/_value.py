"""The correct engine under every attack fixture in this folder: micrograd style, with four spoilers.

An attack that works sets a spoiler, and the operator it belongs to goes wrong:
``Value.ADD`` is added to every sum, ``Value.MUL`` multiplies every product,
``Value.SUB`` is taken from every difference and ``Value.DIV`` divides every
quotient.  With no spoiler set, every case of tests/test_sandbox.py passes.
"""

import math


class Value:
    """A scalar with its gradient (tests/engines/micrograd_full.py, trimmed to what the attacks need)."""

    ADD, MUL, SUB, DIV = 0.0, 1.0, 0.0, 1.0

    def __init__(self, data, children=(), local=()):
        self.data, self.grad, self._prev, self._local = float(data), 0.0, tuple(children), tuple(local)

    @staticmethod
    def _wrap(other):
        return other if isinstance(other, Value) else Value(other)

    def __add__(self, other):
        other = self._wrap(other)
        return Value(self.data + other.data + Value.ADD, (self, other), (1.0, 1.0))

    def __sub__(self, other):
        other = self._wrap(other)
        return Value(self.data - other.data - Value.SUB, (self, other), (1.0, -1.0))

    def __mul__(self, other):
        other = self._wrap(other)
        return Value(self.data * other.data * Value.MUL, (self, other), (other.data, self.data))

    def __truediv__(self, other):
        other = self._wrap(other)
        a, b = self.data, other.data
        return Value(a / b / Value.DIV, (self, other), (1.0 / b, -a / (b * b)))

    def __neg__(self):
        return Value(-self.data, (self,), (-1.0,))

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
        return Value(e, (self,), (e,))

    def backward(self):
        """Add d(self)/d(node) to node.grad for every node, children after parents."""
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
            elif node not in seen:
                seen.add(node)
                stack.append((node, True))
                stack.extend((c, False) for c in node._prev if c not in seen)
        fresh = {self: 1.0}
        for node in reversed(order):
            for child, local in zip(node._prev, node._local):
                fresh[child] = fresh.get(child, 0.0) + local * fresh[node]
        for node, g in fresh.items():
            node.grad += g
