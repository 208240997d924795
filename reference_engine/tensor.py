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
        # Scratch space for one backward pass, back to zero when it ends.
        self._users = 0  # edges into self from the nodes the pass reaches
        self._pending = 0.0  # the pass's gradient for self, summed over the users done so far

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
        stack = [self]
        while stack:
            for arg in stack.pop().args:
                arg._users += 1
                if arg._users == 1:  # first time reached
                    stack.append(arg)
        # Kahn's algorithm: a node is ready once all its users have passed their share down.
        self._pending = 1.0
        ready = [self]
        while ready:
            node = ready.pop()
            grad, node._pending = node._pending, 0.0
            node._grad = grad if node._grad is None else node._grad + grad
            for arg, local in zip(node.args, node._local):
                arg._pending += local * grad
                arg._users -= 1
                if arg._users == 0:
                    ready.append(arg)

    def __repr__(self) -> str:
        return f"Tensor({self.value})"

    def __add__(self, other): return _add(self, other)
    def __radd__(self, other): return _add(other, self)
    def __sub__(self, other): return _sub(self, other)
    def __rsub__(self, other): return _sub(other, self)
    def __mul__(self, other): return _mul(self, other)
    def __rmul__(self, other): return _mul(other, self)
    def __truediv__(self, other): return _div(self, other)
    def __rtruediv__(self, other): return _div(other, self)
    def __pow__(self, other): return _pow(self, other)
    def __rpow__(self, other): return _pow(other, self)
    def __neg__(self): return _neg(self)

    def exp(self) -> "Tensor":
        """e ** self."""
        return _exp(self)

    def log(self) -> "Tensor":
        """The natural log of self."""
        return _log(self)

    def tanh(self) -> "Tensor":
        """The hyperbolic tangent of self."""
        return _tanh(self)

    def relu(self) -> "Tensor":
        """max(self, 0)."""
        return _relu(self)

    def sigmoid(self) -> "Tensor":
        """1 / (1 + e ** -self)."""
        return _sigmoid(self)


Operand = Tensor | int | float  # what the ops accept: a plain number becomes a constant Tensor


def _tensor(x: Operand) -> Tensor:
    """x itself if it is a Tensor, else a constant Tensor holding x."""
    return x if isinstance(x, Tensor) else Tensor(x)


def _number(x: Operand) -> Number:
    """x's value if it is a Tensor, else x."""
    return x.value if isinstance(x, Tensor) else x


# Each op reads as a pair: the forward value, then d(out)/d(arg) for each arg.

def _add(a: Operand, b: Operand) -> Tensor:
    """a + b."""
    a, b = _tensor(a), _tensor(b)
    return Tensor(a.value + b.value, (a, b), (1.0, 1.0))


def _sub(a: Operand, b: Operand) -> Tensor:
    """a - b."""
    a, b = _tensor(a), _tensor(b)
    return Tensor(a.value - b.value, (a, b), (1.0, -1.0))


def _mul(a: Operand, b: Operand) -> Tensor:
    """a * b."""
    a, b = _tensor(a), _tensor(b)
    return Tensor(a.value * b.value, (a, b), (b.value, a.value))


def _div(a: Operand, b: Operand) -> Tensor:
    """a / b; raises ZeroDivisionError when b == 0."""
    a, b = _tensor(a), _tensor(b)
    out = a.value / b.value
    return Tensor(out, (a, b), (1.0 / b.value, -out / b.value))


def _pow(a: Operand, b: Operand) -> Tensor:
    """a ** b with math.pow's semantics: always a float, ValueError or OverflowError, never complex."""
    a, b = _tensor(a), _tensor(b)
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
    a = _tensor(a)
    return Tensor(-a.value, (a,), (-1.0,))


def _exp(a: Operand) -> Tensor:
    """e ** a; raises OverflowError when that is too large for a float."""
    a = _tensor(a)
    out = math.exp(a.value)
    return Tensor(out, (a,), (out,))


def _log(a: Operand) -> Tensor:
    """The natural log of a; raises ValueError when a <= 0."""
    a = _tensor(a)
    return Tensor(math.log(a.value), (a,), (1.0 / a.value,))


def _tanh(a: Operand) -> Tensor:
    """The hyperbolic tangent of a."""
    a = _tensor(a)
    out = math.tanh(a.value)
    return Tensor(out, (a,), (1.0 - out * out,))


def _relu(a: Operand) -> Tensor:
    """max(a, 0), with derivative 0 at a == 0 (PyTorch's convention)."""
    a = _tensor(a)
    positive = a.value > 0
    return Tensor(a.value if positive else 0.0, (a,), (1.0 if positive else 0.0,))


def _sigmoid(a: Operand) -> Tensor:
    """1 / (1 + e ** -a), computed without overflow for any a."""
    a = _tensor(a)
    if a.value >= 0:
        out = 1.0 / (1.0 + math.exp(-a.value))
    else:
        e = math.exp(a.value)
        out = e / (1.0 + e)
    return Tensor(out, (a,), (out * (1.0 - out),))
