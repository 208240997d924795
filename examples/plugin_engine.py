"""A correct engine written as a harness plugin.

Grade it with:  grade --engine examples/plugin_engine.py

A plugin needs no particular class names or operator overloads.  It
implements the hook ``register_engines`` and hands the harness an engine
object, which the harness drives through a small protocol:

    leaf(value)            a new input node
    apply(op, *operands)   a new node; operands are nodes or plain numbers
    backward(node)         backpropagate from node
    value(node), grad(node)
    args(node), local_derivatives(node)   optional, for the structure checks

``op`` is one of add sub mul div pow neg exp log tanh relu sigmoid.  An
engine that lacks an op raises ``harness.Unsupported`` and that case is
reported as ``unsupported`` instead of crashing.
"""

import math

from harness import Unsupported, hookimpl


class Node:
    """A scalar in the graph: its value, its operands and d(self)/d(operand) for each."""

    __slots__ = ("value", "operands", "local", "grad")

    def __init__(self, value, operands=(), local=()):
        self.value = float(value)
        self.operands = operands
        self.local = local
        self.grad = None  # None until a backward() reaches this node


def _sigmoid(x):
    """1 / (1 + e**-x), written so that exp cannot overflow."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _pow(x, p):
    """x ** p and its local derivatives w.r.t. x and p."""
    out = math.pow(x, p)  # ValueError, not a complex number, for (-8) ** 0.5
    d_x = p * math.pow(x, p - 1) if p != 0 else 0.0
    d_p = out * math.log(x) if x > 0 else math.nan  # ln(x) is undefined for x <= 0
    return out, (d_x, d_p)


# Each op maps the operand values to (value, local derivatives).
OPS = {
    "add": lambda a, b: (a + b, (1.0, 1.0)),
    "sub": lambda a, b: (a - b, (1.0, -1.0)),
    "mul": lambda a, b: (a * b, (b, a)),
    "div": lambda a, b: (a / b, (1.0 / b, -a / (b * b))),
    "pow": _pow,
    "neg": lambda a: (-a, (-1.0,)),
    "exp": lambda a: (math.exp(a), (math.exp(a),)),
    "log": lambda a: (math.log(a), (1.0 / a,)),  # ValueError for log(0)
    "tanh": lambda a: (math.tanh(a), (1.0 - math.tanh(a) ** 2,)),
    "relu": lambda a: (max(a, 0.0), (1.0 if a > 0 else 0.0,)),  # relu'(0) = 0
    "sigmoid": lambda a: (_sigmoid(a), (_sigmoid(a) * (1.0 - _sigmoid(a)),)),
}


class ExampleEngine:
    """The harness's engine protocol over Node."""

    name = "example-plugin"

    def leaf(self, value):
        return Node(value)

    def apply(self, op, *operands):
        if op not in OPS:
            raise Unsupported(f"{self.name} has no op {op!r}")
        nodes = tuple(x if isinstance(x, Node) else Node(x) for x in operands)  # constants
        value, local = OPS[op](*(n.value for n in nodes))
        return Node(value, nodes, local)

    def backward(self, node):
        # This pass's gradients go into a fresh table first and are added at
        # the end, so a second backward() adds the same amounts again.
        order = _topological_order(node)
        fresh = {node: 1.0}
        for n in order:  # every node before its operands
            for operand, local in zip(n.operands, n.local):
                fresh[operand] = fresh.get(operand, 0.0) + local * fresh[n]
        for n, g in fresh.items():
            n.grad = g if n.grad is None else n.grad + g

    def value(self, node):
        return node.value

    def grad(self, node):
        return node.grad

    def args(self, node):
        return [operand.value for operand in node.operands]

    def local_derivatives(self, node):
        return list(node.local)


def _topological_order(root):
    """Every node root depends on, root first and each node before its operands.

    A loop with an explicit stack rather than recursion, so deep graphs work.
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, operands_done = stack.pop()
        if operands_done:
            order.append(node)
        elif node not in visited:
            visited.add(node)
            stack.append((node, True))
            stack.extend((operand, False) for operand in node.operands if operand not in visited)
    order.reverse()
    return order


@hookimpl
def register_engines(register):
    """Hand the harness one engine object."""
    register(ExampleEngine())
