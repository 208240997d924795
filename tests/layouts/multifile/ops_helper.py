"""Helpers for multifile/engine.py: imported there as a top-level module (``import ops_helper``)."""

import math


def pow_locals(x, p, out):
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


def sigmoid(x):
    """Logistic function that does not overflow for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def topological_order(root):
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
