# Quickstart example: a student's notebook-style engine with one bug and two missing ops.
#
#     grade --engine examples/buggy_engine.py
#
# What the grading run shows:
# - passed: cases where every node is used once (a + b * c, tanh, exp, ...);
# - failed: cases where a node is used more than once, e.g. L = a + b * (a + c):
#   Tensor.backward() below ASSIGNS each gradient contribution (`=`) where it
#   must ADD it (`+=`), so `a` keeps only one of its two contributions
#   (dL/da comes out 2 instead of 3);
# - unsupported: every case that needs log or sigmoid, which this file lacks
#   (there is no _log and no _sigmoid).
"""A scalar autograd engine in the tutorial notebook's style (Tensor, _add, _mul, ...)."""

import math
from typing import Optional


class Tensor:
    value: float
    args: tuple = ()  # the Tensors this one was computed from
    local_derivatives: tuple = ()  # d(self)/d(arg) for each arg, as Tensors
    derivative: Optional["Tensor"] = None  # d(loss)/d(self), filled in by backward()

    def __init__(self, value: float) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Tensor({self.value})"

    def backward(self) -> None:
        # Visit the graph output-first, so each node is finished before its args.
        order = topological_order(self)
        grads = {self: 1.0}  # this call's gradients; added to .derivative at the end
        for node in order:
            for arg, local in zip(node.args, node.local_derivatives):
                grads[arg] = local.value * grads[node]  # BUG: should add: grads.get(arg, 0) + ...
        for node, g in grads.items():
            if node.derivative is None:
                node.derivative = Tensor(g)
            else:
                node.derivative = Tensor(node.derivative.value + g)


def topological_order(root: Tensor) -> list:
    # Depth-first with an explicit stack (no recursion, so long chains are fine).
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
        elif node not in seen:
            seen.add(node)
            stack.append((node, True))
            for arg in node.args:
                stack.append((arg, False))
    order.reverse()  # output first
    return order


def _make(value, args, local_derivatives) -> Tensor:
    ret = Tensor(value)
    ret.args = args
    ret.local_derivatives = tuple(Tensor(d) for d in local_derivatives)
    return ret


def _add(a: Tensor, b: Tensor) -> Tensor:
    return _make(a.value + b.value, (a, b), (1, 1))


def _sub(a: Tensor, b: Tensor) -> Tensor:
    return _make(a.value - b.value, (a, b), (1, -1))


def _mul(a: Tensor, b: Tensor) -> Tensor:
    return _make(a.value * b.value, (a, b), (b.value, a.value))


def _div(a: Tensor, b: Tensor) -> Tensor:
    return _make(a.value / b.value, (a, b), (1 / b.value, -a.value / b.value**2))


def _pow(a: Tensor, exponent: float) -> Tensor:
    # math.pow, not **: (-8) ** 0.5 would be a complex number, math.pow raises ValueError
    return _make(math.pow(a.value, exponent), (a,), (exponent * math.pow(a.value, exponent - 1),))


def _neg(a: Tensor) -> Tensor:
    return _make(-a.value, (a,), (-1,))


def _exp(a: Tensor) -> Tensor:
    e = math.exp(a.value)
    return _make(e, (a,), (e,))


def _tanh(a: Tensor) -> Tensor:
    t = math.tanh(a.value)
    return _make(t, (a,), (1 - t**2,))


def _relu(a: Tensor) -> Tensor:
    return _make(max(a.value, 0), (a,), (1 if a.value > 0 else 0,))
