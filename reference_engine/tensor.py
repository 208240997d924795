"""A scalar autograd engine with the tutorial notebook's API: Tensor, _add, _mul, ...

Every op is a row of ``harness.ops``: its forward value and its local
derivatives d(out)/d(arg), as plain numbers.  A node keeps its args and those
local derivatives; ``backward`` multiplies them along every path (the chain rule).
"""

from __future__ import annotations

from collections.abc import Callable

from harness.ops import BUILTIN, OpSpec

Number = int | float


class Tensor:
    """A scalar in a computation graph: its value, its args and d(self)/d(arg) for each."""

    __slots__ = ("value", "args", "_local", "_grad", "_users", "_pending")
    value: Number
    args: tuple[Tensor, ...]
    _local: tuple[Number, ...]
    _grad: float | None
    _users: int
    _pending: float
    # The ops, bound at the end of the module:
    __add__: Callable[[Tensor, Operand], Tensor]
    __sub__: Callable[[Tensor, Operand], Tensor]
    __mul__: Callable[[Tensor, Operand], Tensor]
    __truediv__: Callable[[Tensor, Operand], Tensor]
    __pow__: Callable[[Tensor, Operand], Tensor]
    __neg__: Callable[[Tensor], Tensor]
    exp: Callable[[Tensor], Tensor]
    log: Callable[[Tensor], Tensor]
    tanh: Callable[[Tensor], Tensor]
    relu: Callable[[Tensor], Tensor]
    sigmoid: Callable[[Tensor], Tensor]

    def __init__(self, value: Number, args: tuple = (), local_derivatives: tuple = ()) -> None:
        """A node holding value, made from args with d(self)/d(arg) given as plain numbers."""
        self.value = value
        self.args = args  # the Tensors this one was computed from
        self._local = local_derivatives  # plain numbers, one per arg
        self._grad = None  # accumulated d(output)/d(self), None before any backward
        self._users = 0  # backward_fast's scratch (edges into self from the nodes a pass reaches); 0 between passes
        # self._pending, backward_fast's gradient for self, is set when a pass reaches self.

    @property
    def local_derivatives(self) -> tuple:
        """d(self)/d(arg) for each arg, as Tensors."""
        return tuple(Tensor(d) for d in self._local)

    @local_derivatives.setter
    def local_derivatives(self, derivatives) -> None:
        self._local = tuple(_number(d) for d in derivatives)

    @property
    def derivative(self) -> Tensor | None:
        """The accumulated d(output)/d(self) as a Tensor, or None before any backward reaches it."""
        return None if self._grad is None else Tensor(self._grad)

    @derivative.setter
    def derivative(self, derivative: Tensor | Number | None) -> None:
        self._grad = None if derivative is None else _number(derivative)

    def backward(self) -> None:
        """Add d(self)/d(node) to the derivative of every node self depends on, self included."""
        backward_fast(self)  # the same sums as backward(self), below, in about 2/3 of the time

    def __repr__(self) -> str:
        return f"Tensor({self.value})"

    # x + y, x.exp() and the other operators and methods are the ops themselves, bound at the
    # end of the module (one call per node, not two).  Reflected operators swap the operands.
    def __radd__(self, other: Number) -> Tensor: return _add(other, self)
    def __rsub__(self, other: Number) -> Tensor: return _sub(other, self)
    def __rmul__(self, other: Number) -> Tensor: return _mul(other, self)
    def __rtruediv__(self, other: Number) -> Tensor: return _div(other, self)
    def __rpow__(self, other: Number) -> Tensor: return _pow(other, self)


def topological_order(root: Tensor) -> list[Tensor]:
    """Every node ``root`` depends on, ``root`` first and each node before its args (iterative: any depth)."""
    order, seen = [], {root}
    stack = [(root, iter(root.args))]
    while stack:
        node, args = stack[-1]
        for arg in args:
            if arg not in seen:
                seen.add(arg)
                stack.append((arg, iter(arg.args)))
                break
        else:  # every arg is placed: the node comes after them
            stack.pop()
            order.append(node)
    order.reverse()
    return order


def backward(root: Tensor) -> None:
    """The chain rule, plainly: each node passes d(root)/d(node) * d(node)/d(arg) to each of its args."""
    pending = {root: 1.0}  # d(root)/d(node) gathered so far in this pass
    for node in topological_order(root):  # a node's users are all done before it
        grad = pending.pop(node)
        node._grad = grad if node._grad is None else node._grad + grad  # a second backward adds
        for arg, d in zip(node.args, node._local):
            pending[arg] = pending.get(arg, 0.0) + d * grad


def backward_fast(root: Tensor) -> None:
    """``backward(root)`` with the order found by counting users in the nodes' own slots (no dict, no sort).

    Kahn's algorithm: a node is ready once all its users have passed their share down.
    tests/test_reference_engine.py checks that it adds exactly what ``backward`` adds.
    """
    root._pending = 1.0
    stack = [root]
    pop, push = stack.pop, stack.append
    while stack:  # count every reachable node's users, the edges into it from reachable nodes
        for arg in pop().args:
            users = arg._users + 1
            arg._users = users
            if users == 1:  # reached for the first time
                arg._pending = 0.0
                push(arg)
    ready = [root]
    pop, push = ready.pop, ready.append
    while ready:
        node = pop()
        grad = node._pending
        node._grad = grad if node._grad is None else node._grad + grad
        args, local = node.args, node._local
        if len(args) == 2 == len(local):  # most nodes: written out, as zip() costs more than the math
            a, b = args
            a._pending += local[0] * grad
            users = a._users - 1
            a._users = users
            if not users:  # all its users are done
                push(a)
            b._pending += local[1] * grad
            users = b._users - 1
            b._users = users
            if not users:
                push(b)
            continue
        for arg, d in zip(args, local):
            arg._pending += d * grad
            users = arg._users - 1
            arg._users = users
            if not users:
                push(arg)


Operand = Tensor | int | float  # what the ops accept: a plain number becomes a constant Tensor


def _number(x: Operand) -> Number:
    """x's value if it is a Tensor, else x."""
    return x.value if isinstance(x, Tensor) else x


def op_function(spec: OpSpec) -> Callable[..., Tensor]:
    """The notebook-style function of an op: ``Tensor(forward(values), args, derivatives(values))``."""
    forward, derivatives = spec.forward, spec.derivatives
    if forward is None or derivatives is None:
        raise ValueError(f"op {spec.name!r} has no reference formula")

    function: Callable[..., Tensor]
    if spec.arity == 1:
        def unary(a: Operand) -> Tensor:
            a = a if isinstance(a, Tensor) else Tensor(a)
            x = a.value
            return Tensor(forward(x), (a,), derivatives(x))
        function = unary
    elif spec.arity == 2:
        def binary(a: Operand, b: Operand) -> Tensor:
            a = a if isinstance(a, Tensor) else Tensor(a)
            b = b if isinstance(b, Tensor) else Tensor(b)
            x, y = a.value, b.value
            return Tensor(forward(x, y), (a, b), derivatives(x, y))
        function = binary
    else:
        def nary(*operands: Operand) -> Tensor:
            args = tuple(a if isinstance(a, Tensor) else Tensor(a) for a in operands)
            values = [a.value for a in args]
            return Tensor(forward(*values), args, tuple(derivatives(*values)))
        function = nary
    function.__name__ = function.__qualname__ = f"_{spec.name}"
    function.__doc__ = f"The {spec.name} op over Tensors or plain numbers (harness.ops)."
    return function


# The notebook's functions, one per op of the table (in its order: a new op needs its name here).
_add, _sub, _mul, _div, _pow, _neg, _exp, _log, _tanh, _relu, _sigmoid = map(op_function, BUILTIN)

Tensor.__add__, Tensor.__sub__, Tensor.__mul__ = _add, _sub, _mul
Tensor.__truediv__, Tensor.__pow__, Tensor.__neg__ = _div, _pow, _neg
Tensor.exp, Tensor.log, Tensor.tanh, Tensor.relu, Tensor.sigmoid = _exp, _log, _tanh, _relu, _sigmoid
