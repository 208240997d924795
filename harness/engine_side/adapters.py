"""Zero-glue adapters: grade micrograd-style and notebook-style engines as they are.

Runs inside the engine process.  An adapter turns the engine protocol
(``leaf``, ``apply``, ``backward``, ``value``, ``grad``) into whatever the
student's classes and functions offer, and raises Unsupported for what they lack.
"""

from __future__ import annotations

import numbers
import operator
import reprlib

from harness import Unsupported
from harness.ops import BUILTIN

#: Infix op -> (method, reflected method, operator): "add" -> ("__add__", "__radd__", operator.add).
BINARY = {spec.name: (f"__{spec.dunder}__", f"__r{spec.dunder}__", getattr(operator, spec.dunder))
          for spec in BUILTIN if spec.form == "infix"}
#: Prefix op -> (method, operator): "neg" -> ("__neg__", operator.neg).
PREFIX = {spec.name: (f"__{spec.dunder}__", getattr(operator, spec.dunder))
          for spec in BUILTIN if spec.form == "prefix"}


def is_number(x) -> bool:
    """A plain number (int, float, numpy scalar), not a node."""
    return isinstance(x, numbers.Number) and not isinstance(x, bool)


def to_float(x, _depth: int = 0) -> float:
    """A float from a number in disguise: int, numpy scalar, or a node holding one."""
    if isinstance(x, numbers.Number):
        return float(x)  # type: ignore[arg-type]  # a complex raises TypeError, as it should
    if _depth < 8:
        for attr in ("value", "data"):
            inner = getattr(x, attr, None)
            if inner is not None and not isinstance(inner, memoryview):
                return to_float(inner, _depth + 1)
    if hasattr(type(x), "__float__"):
        return float(x)
    raise TypeError(f"expected a number, got {reprlib.repr(x)} ({type(x).__name__})")


def optional_float(x):
    """to_float, keeping None as None."""
    return None if x is None else to_float(x)


class MicrogradAdapter:
    """A class with Python operators, methods such as ``.exp()``, ``backward()`` and ``grad``."""

    def __init__(self, cls: type, name: str):
        self.cls, self.name = cls, name

    def leaf(self, value):
        return self.cls(value)

    def apply(self, op, *operands):
        if op in BINARY:
            return self._binary(op, *operands)
        node = operands[0] if not is_number(operands[0]) else self.cls(operands[0])
        if op in PREFIX:
            dunder, fn = PREFIX[op]
            if not hasattr(type(node), dunder):
                raise Unsupported(f"{op}: {type(node).__name__} has no {dunder} (unary minus)")
            return fn(node)
        method = getattr(node, op, None)
        if not callable(method):
            raise Unsupported(f"{op}: {type(node).__name__} has no .{op}() method")
        return method(*operands[1:])

    def _binary(self, op, a, b):
        method, reflected, fn = BINARY[op]
        if is_number(a):
            if not is_number(b) and hasattr(type(b), reflected):
                return fn(a, b)
            a = self.cls(a)  # no reflected form: lift the number into a node
        if not hasattr(type(a), method):
            raise Unsupported(f"{op}: {type(a).__name__} has no {method}")
        return fn(a, b)

    def backward(self, node):
        node.backward()

    def value(self, node):
        return node.data if hasattr(node, "data") else node.value

    def grad(self, node):
        return getattr(node, "grad", None)


class NotebookAdapter(MicrogradAdapter):
    """A ``Tensor`` class with ``value``/``derivative`` and module functions ``_add``, ``_mul``, ..."""

    def __init__(self, module, cls: type, name: str):
        super().__init__(cls, name)
        self.module = module

    def apply(self, op, *operands):
        fn = getattr(self.module, "_" + op, None)
        if not callable(fn):
            try:
                return super().apply(op, *operands)  # operators or methods, if the Tensor has them
            except Unsupported as e:
                raise Unsupported(f"{op}: no function _{op}, and {str(e).split(': ', 1)[-1]}") from None
        if op == "pow":  # the exponent stays a plain number, as in x ** 2
            return fn(self._lift(operands[0]), operands[1])
        return fn(*map(self._lift, operands))

    def _lift(self, x):
        return self.cls(x) if is_number(x) else x

    def value(self, node):
        return node.value

    def grad(self, node):
        return getattr(node, "derivative", None)

    def args(self, node):
        return [self.value(a) if not is_number(a) else a for a in node.args]

    def local_derivatives(self, node):
        return list(node.local_derivatives)
