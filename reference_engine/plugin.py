"""The harness plugin that registers the reference engine under the name "reference"."""

import functools

from harness import OPS, Unsupported, hookimpl
from reference_engine import tensor
from reference_engine.tensor import Tensor


class ReferenceEngine:
    """The harness engine protocol over reference_engine.Tensor."""

    name = "reference"
    ops = {name: getattr(tensor, f"_{name}") for name in OPS}  # the notebook's functions

    def leaf(self, value: float) -> Tensor:
        """A new input node."""
        return Tensor(value)

    def apply(self, op: str, *operands: "Tensor | float") -> Tensor:
        """A new node computing op over operands (Tensors or plain numbers)."""
        function = self.ops.get(op) or _plugin_ops().get(op)
        if function is None:
            raise Unsupported(op)
        return function(*operands)

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
    """The functions of the ops that installed plugins register with a reference formula."""
    from harness.engine_side import collector  # runs in the engine process: nothing grader-side

    functions = {}
    for spec in collector.ops(collector.installed_manager()).values():
        if spec.forward is not None and spec.derivatives is not None:
            derivatives = spec.derivatives  # a plugin's may return any iterable: the node keeps a tuple
            exact = spec.replace(derivatives=lambda *values, d=derivatives: tuple(d(*values)))
            functions[spec.name] = tensor.op_function(exact)
    return functions


@hookimpl
def register_engines(register):
    """Register the reference engine."""
    register(ReferenceEngine())
