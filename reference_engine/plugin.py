"""The harness plugin that registers the reference engine under the name "reference"."""

import functools

from harness import Unsupported, hookimpl
from reference_engine import tensor
from reference_engine.tensor import Tensor


class ReferenceEngine:
    """The harness engine protocol over reference_engine.Tensor."""

    name = "reference"
    ops = {
        "add": tensor._add, "sub": tensor._sub, "mul": tensor._mul, "div": tensor._div,
        "pow": tensor._pow, "neg": tensor._neg, "exp": tensor._exp, "log": tensor._log,
        "tanh": tensor._tanh, "relu": tensor._relu, "sigmoid": tensor._sigmoid,
    }

    def leaf(self, value: float) -> Tensor:
        """A new input node."""
        return Tensor(value)

    def apply(self, op: str, *operands: "Tensor | float") -> Tensor:
        """A new node computing op over operands (Tensors or plain numbers)."""
        if op in self.ops:
            return self.ops[op](*operands)
        spec = _plugin_ops().get(op)
        if spec is None or spec.forward is None or spec.derivatives is None:
            raise Unsupported(op)
        nodes = tuple(x if isinstance(x, Tensor) else Tensor(x) for x in operands)
        values = [n.value for n in nodes]
        return Tensor(spec.forward(*values), nodes, tuple(spec.derivatives(*values)))

    def backward(self, node: Tensor) -> None:
        """Backpropagate from node, adding to every derivative it reaches."""
        node.backward()

    def value(self, node: Tensor) -> float:
        """The node's value."""
        return float(node.value)

    def grad(self, node: Tensor) -> float | None:
        """The node's accumulated derivative, or None before any backward reaches it."""
        derivative = node.derivative
        return None if derivative is None else float(derivative.value)

    def args(self, node: Tensor) -> list[float]:
        """The values of the node's operands."""
        return [float(arg.value) for arg in node.args]

    def local_derivatives(self, node: Tensor) -> list[float]:
        """d(node)/d(operand) for each operand."""
        return [float(d.value) for d in node.local_derivatives]


@functools.cache
def _plugin_ops() -> dict:
    """Ops that installed plugins register, with their forward and derivative functions."""
    from harness.engine_side import collector  # runs in the engine process: nothing grader-side

    return collector.ops(collector.installed_manager())


@hookimpl
def register_engines(register):
    """Register the reference engine."""
    register(ReferenceEngine())
