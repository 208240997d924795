"""Seeded bug, notebook style: d(a - b)/db is +1 instead of -1.

A copy of notebook_full.py with one change: ``_sub`` records the local
derivatives ``(1, 1)``.  Values are right; every gradient that flows through
the second operand of a subtraction has the wrong sign.
Expected verdict: ``failed`` on cases whose gradients go through ``a - b``'s
``b`` (including ``local_derivatives`` checks on a subtraction); everything
else passes.
"""

import math
from typing import Optional


class Tensor:
    """A scalar node: its value, its operands and d(self)/d(operand) for each."""

    value: float
    args: tuple = ()
    local_derivatives: tuple = ()
    derivative: Optional["Tensor"] = None

    def __init__(self, value: float) -> None:
        self.value = float(value)

    def __repr__(self) -> str:
        return f"Tensor({self.value})"

    def backward(self) -> None:
        """Add d(self)/d(node) to node.derivative for every node in self's graph."""
        order = _topological_order(self)
        fresh = {self: 1.0}
        for node in reversed(order):
            g = fresh[node]
            for arg, local in zip(node.args, node.local_derivatives):
                fresh[arg] = fresh.get(arg, 0.0) + local.value * g
        for node, g in fresh.items():
            old = 0.0 if node.derivative is None else node.derivative.value
            node.derivative = Tensor(old + g)


def _topological_order(root: Tensor) -> list:
    """Nodes reachable from root, operands before results, without recursion."""
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
        stack.extend((arg, False) for arg in node.args if arg not in seen)
    return order


def _node(value: float, args: tuple, local_derivatives: tuple) -> Tensor:
    ret = Tensor(value)
    ret.args = args
    ret.local_derivatives = tuple(Tensor(d) for d in local_derivatives)
    return ret


def _add(a: Tensor, b: Tensor) -> Tensor:
    return _node(a.value + b.value, (a, b), (1, 1))


def _sub(a: Tensor, b: Tensor) -> Tensor:
    return _node(a.value - b.value, (a, b), (1, 1))  # BUG: d(a-b)/db is -1


def _mul(a: Tensor, b: Tensor) -> Tensor:
    return _node(a.value * b.value, (a, b), (b.value, a.value))


def _div(a: Tensor, b: Tensor) -> Tensor:
    return _node(a.value / b.value, (a, b), (1 / b.value, -a.value / (b.value * b.value)))


def _pow(base: Tensor, exponent) -> Tensor:
    if not isinstance(base, Tensor):
        base = Tensor(base)
    if not isinstance(exponent, Tensor):
        exponent = Tensor(exponent)  # a constant, recorded as an arg like any other operand
    out = math.pow(base.value, exponent.value)
    return _node(out, (base, exponent), _pow_locals(base.value, exponent.value, out))


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


def _neg(a: Tensor) -> Tensor:
    return _node(-a.value, (a,), (-1,))


def _exp(a: Tensor) -> Tensor:
    e = math.exp(a.value)
    return _node(e, (a,), (e,))


def _log(a: Tensor) -> Tensor:
    return _node(math.log(a.value), (a,), (1 / a.value,))


def _tanh(a: Tensor) -> Tensor:
    t = math.tanh(a.value)
    return _node(t, (a,), (1 - t * t,))


def _relu(a: Tensor) -> Tensor:
    x = a.value
    return _node(x if x > 0 else 0.0, (a,), (1 if x > 0 else 0,))


def _sigmoid(a: Tensor) -> Tensor:
    x = a.value
    if x >= 0:
        s = 1 / (1 + math.exp(-x))
    else:
        e = math.exp(x)
        s = e / (1 + e)
    return _node(s, (a,), (s * (1 - s),))
