"""A scalar autograd engine with the tutorial notebook's API: Tensor, _add, _mul, ..."""

import math

Number = int | float


class Tensor:
    """A scalar in a computation graph: its value, its args and d(self)/d(arg) for each."""

    __slots__ = ("value", "args", "_local", "_grad", "_users", "_pending")

    def __init__(self, value: Number, args: tuple = (), local_derivatives: tuple = ()) -> None:
        """A node holding value, made from args with d(self)/d(arg) given as plain numbers."""
        self.value = value
        self.args = args  # the Tensors this one was computed from
        self._local = local_derivatives  # plain numbers, one per arg
        self._grad = None  # accumulated d(output)/d(self) as a float, None before any backward
        self._users = 0  # backward's scratch: edges into self from the nodes a pass reaches; 0 between passes
        # self._pending, the pass's gradient for self, is set when a backward pass reaches self.

    @property
    def local_derivatives(self) -> tuple:
        """d(self)/d(arg) for each arg, as Tensors."""
        return tuple(Tensor(d) for d in self._local)

    @local_derivatives.setter
    def local_derivatives(self, derivatives) -> None:
        self._local = tuple(_number(d) for d in derivatives)

    @property
    def derivative(self) -> "Tensor | None":
        """The accumulated d(output)/d(self) as a Tensor, or None before any backward reaches it."""
        return None if self._grad is None else Tensor(self._grad)

    @derivative.setter
    def derivative(self, derivative: "Tensor | Number | None") -> None:
        self._grad = None if derivative is None else _number(derivative)

    def backward(self) -> None:
        """Add d(self)/d(node) to the derivative of every node self depends on, self included."""
        # Count every reachable node's users, the edges into it from reachable nodes.
        self._pending = 1.0
        stack = [self]
        pop, push = stack.pop, stack.append
        while stack:
            for arg in pop().args:
                users = arg._users + 1
                arg._users = users
                if users == 1:  # reached for the first time
                    arg._pending = 0.0
                    push(arg)
        # Kahn's algorithm: a node is ready once all its users have passed their share down.
        ready = [self]
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

    def __repr__(self) -> str:
        return f"Tensor({self.value})"

    # x + y, x.exp() and the other operators and methods are the ops themselves, bound at the
    # end of the module (one call per node, not two).  Reflected operators swap the operands.
    def __radd__(self, other): return _add(other, self)
    def __rsub__(self, other): return _sub(other, self)
    def __rmul__(self, other): return _mul(other, self)
    def __rtruediv__(self, other): return _div(other, self)
    def __rpow__(self, other): return _pow(other, self)


Operand = Tensor | int | float  # what the ops accept: a plain number becomes a constant Tensor


def _number(x: Operand) -> Number:
    """x's value if it is a Tensor, else x."""
    return x.value if isinstance(x, Tensor) else x


# Each op reads as a pair: the forward value, then d(out)/d(arg) for each arg.  A plain
# number operand becomes a constant Tensor (written out in each op: it is the hot path).

def _add(a: Operand, b: Operand) -> Tensor:
    """a + b."""
    a = a if isinstance(a, Tensor) else Tensor(a)
    b = b if isinstance(b, Tensor) else Tensor(b)
    return Tensor(a.value + b.value, (a, b), (1.0, 1.0))


def _sub(a: Operand, b: Operand) -> Tensor:
    """a - b."""
    a = a if isinstance(a, Tensor) else Tensor(a)
    b = b if isinstance(b, Tensor) else Tensor(b)
    return Tensor(a.value - b.value, (a, b), (1.0, -1.0))


def _mul(a: Operand, b: Operand) -> Tensor:
    """a * b."""
    a = a if isinstance(a, Tensor) else Tensor(a)
    b = b if isinstance(b, Tensor) else Tensor(b)
    return Tensor(a.value * b.value, (a, b), (b.value, a.value))


def _div(a: Operand, b: Operand) -> Tensor:
    """a / b; raises ZeroDivisionError when b == 0."""
    a = a if isinstance(a, Tensor) else Tensor(a)
    b = b if isinstance(b, Tensor) else Tensor(b)
    out = a.value / b.value
    return Tensor(out, (a, b), (1.0 / b.value, -out / b.value))


def _pow(a: Operand, b: Operand) -> Tensor:
    """a ** b with math.pow's semantics: always a float, ValueError or OverflowError, never complex."""
    a = a if isinstance(a, Tensor) else Tensor(a)
    b = b if isinstance(b, Tensor) else Tensor(b)
    x, y = a.value, b.value
    out = math.pow(x, y)
    if y == 0:
        d_base = 0.0
    else:
        try:
            d_base = y * math.pow(x, y - 1)
        except (ValueError, OverflowError):  # the slope is infinite: x == 0 with 0 < y < 1, or x tiny
            d_base = y * out / x if x else math.inf
    d_exponent = out * math.log(x) if x > 0 else math.nan
    return Tensor(out, (a, b), (d_base, d_exponent))


def _neg(a: Operand) -> Tensor:
    """-a."""
    a = a if isinstance(a, Tensor) else Tensor(a)
    return Tensor(-a.value, (a,), (-1.0,))


def _exp(a: Operand) -> Tensor:
    """e ** a; raises OverflowError when that is too large for a float."""
    a = a if isinstance(a, Tensor) else Tensor(a)
    out = math.exp(a.value)
    return Tensor(out, (a,), (out,))


def _log(a: Operand) -> Tensor:
    """The natural log of a; raises ValueError when a <= 0."""
    a = a if isinstance(a, Tensor) else Tensor(a)
    return Tensor(math.log(a.value), (a,), (1.0 / a.value,))


def _tanh(a: Operand) -> Tensor:
    """The hyperbolic tangent of a."""
    a = a if isinstance(a, Tensor) else Tensor(a)
    out = math.tanh(a.value)
    return Tensor(out, (a,), (1.0 - out * out,))


def _relu(a: Operand) -> Tensor:
    """max(a, 0), with derivative 0 at a == 0 (PyTorch's convention)."""
    a = a if isinstance(a, Tensor) else Tensor(a)
    positive = a.value > 0
    return Tensor(a.value if positive else 0.0, (a,), (1.0 if positive else 0.0,))


def _sigmoid(a: Operand) -> Tensor:
    """1 / (1 + e ** -a), computed without overflow for any a."""
    a = a if isinstance(a, Tensor) else Tensor(a)
    if a.value >= 0:
        out = 1.0 / (1.0 + math.exp(-a.value))
    else:
        e = math.exp(a.value)
        out = e / (1.0 + e)
    return Tensor(out, (a,), (out * (1.0 - out),))


Tensor.__add__, Tensor.__sub__, Tensor.__mul__ = _add, _sub, _mul
Tensor.__truediv__, Tensor.__pow__, Tensor.__neg__ = _div, _pow, _neg
Tensor.exp, Tensor.log, Tensor.tanh, Tensor.relu, Tensor.sigmoid = _exp, _log, _tanh, _relu, _sigmoid
