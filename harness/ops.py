"""THE op table: every built-in op once, with its syntax and its reference formula.

The case-expression parser and renderer, fuzz, the engine-side adapters,
``harness.OPS`` and the reference engine all read the ops from here; a plugin's
``register_ops`` hook adds more at run time (an ``OpSpec`` with a call form).
Imported inside every engine process: ``math`` only, so that starting one stays cheap.

An op is written in one of three forms:

- ``infix``: ``x + y``, with ``symbol`` and ``precedence`` (higher binds tighter);
- ``prefix``: ``-x``;
- ``call``: ``exp(x)``, also the form of every plugin op.

Its reference formula is ``forward(*values)``, the value, and
``derivatives(*values)``, one local derivative d(out)/d(operand) per operand.
"""

from __future__ import annotations

import math

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~9 ms in every engine process)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Literal

    Form = Literal["infix", "prefix", "call"]

#: Precedence of what binds tightest: names, numbers and calls.
ATOM = 5


class OpSpec:
    """One op: its name, arity and syntax, and (optionally) its reference formula.

    A plugin op needs only ``name`` and ``arity`` to appear in case files, and
    ``forward`` and ``derivatives`` for the reference engine to compute it.
    Immutable, compared and hashed by its fields; ``replace(**changes)`` makes a
    changed copy.  (A plain class, not a dataclass: every engine process imports
    this table, and ``dataclasses`` would cost each of them ~15 ms.)
    """

    __slots__ = ("name", "arity", "forward", "derivatives", "form", "symbol", "precedence", "right_assoc",
                 "associative", "dunder")
    name: str
    arity: int
    forward: Callable[..., float] | None
    derivatives: Callable[..., tuple[float, ...]] | None
    form: Form
    symbol: str         # infix or prefix: "+", "-", "**"
    precedence: int     # infix or prefix: higher binds tighter (Python's order)
    right_assoc: bool   # a ** b ** c is a ** (b ** c)
    associative: bool   # a + (b + c) may be written a + b + c
    dunder: str         # Python's operator method: "add" for __add__/__radd__ (operator.add)

    def __init__(self, name: str, arity: int, forward: Callable[..., float] | None = None,
                 derivatives: Callable[..., tuple[float, ...]] | None = None, form: Form = "call",
                 symbol: str = "", precedence: int = ATOM, right_assoc: bool = False, associative: bool = False,
                 dunder: str = "") -> None:
        values = (name, arity, forward, derivatives, form, symbol, precedence, right_assoc, associative, dunder)
        for field, value in zip(self.__slots__, values, strict=True):
            object.__setattr__(self, field, value)
        if not self.name.isidentifier():
            raise ValueError(f"op name {self.name!r} is not an identifier")
        if self.form != "call" and not self.symbol:
            raise ValueError(f"op {self.name!r}: an {self.form} op needs its symbol")
        if (self.form, self.arity) in (("infix", 1), ("prefix", 2)) or self.arity < 1:
            raise ValueError(f"op {self.name!r}: a {self.form} op cannot take {self.arity} operand(s)")

    def _fields(self) -> tuple:
        return tuple(getattr(self, field) for field in self.__slots__)

    def replace(self, **changes: Any) -> OpSpec:
        """A copy with ``changes`` (field name -> new value), checked like a new op."""
        unknown = set(changes) - set(self.__slots__)
        if unknown:
            raise TypeError(f"OpSpec has no field {sorted(unknown)[0]!r}")
        return OpSpec(**{**dict(zip(self.__slots__, self._fields())), **changes})

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"OpSpec is immutable: cannot set {name!r} (use .replace({name}=...))")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"OpSpec is immutable: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        return self._fields() == other._fields() if isinstance(other, OpSpec) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        shown = ", ".join(f"{f}={v!r}" for f, v in zip(self.__slots__, self._fields()))
        return f"OpSpec({shown})"

    def write(self, *operands: str) -> str:
        """The op applied to operand texts, without any parentheses around them: ``a + b``, ``-a``, ``exp(a)``."""
        if self.form == "infix":
            return f"{operands[0]} {self.symbol} {operands[1]}"
        if self.form == "prefix":
            return f"{self.symbol}{operands[0]}"
        return f"{self.name}({', '.join(operands)})"


# The reference formulas: each op is its forward value and its local derivatives.

def _div_derivatives(x: float, y: float) -> tuple[float, float]:
    out = x / y
    return 1.0 / y, -out / y  # not -x / y**2, which overflows first


def _pow_derivatives(x: float, y: float) -> tuple[float, float]:
    """d/dx and d/dy of x ** y, math.pow's semantics: an infinite slope is inf, a log of x <= 0 is nan."""
    out = math.pow(x, y)
    if y == 0:
        d_base = 0.0
    else:
        try:
            d_base = y * math.pow(x, y - 1)
        except (ValueError, OverflowError):  # the slope is infinite: x == 0 with 0 < y < 1, or x tiny
            d_base = y * out / x if x else math.inf
    return d_base, out * math.log(x) if x > 0 else math.nan


def _sigmoid(x: float) -> float:
    """1 / (1 + e ** -x), without overflow for any x."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _tanh_derivatives(x: float) -> tuple[float]:
    out = math.tanh(x)
    return (1.0 - out * out,)


def _sigmoid_derivatives(x: float) -> tuple[float]:
    out = _sigmoid(x)
    return (out * (1.0 - out),)


BUILTIN: tuple[OpSpec, ...] = (
    OpSpec("add", 2, lambda x, y: x + y, lambda x, y: (1.0, 1.0),
           form="infix", symbol="+", precedence=1, associative=True, dunder="add"),
    OpSpec("sub", 2, lambda x, y: x - y, lambda x, y: (1.0, -1.0),
           form="infix", symbol="-", precedence=1, dunder="sub"),
    OpSpec("mul", 2, lambda x, y: x * y, lambda x, y: (y, x),
           form="infix", symbol="*", precedence=2, associative=True, dunder="mul"),
    OpSpec("div", 2, lambda x, y: x / y, _div_derivatives,  # ZeroDivisionError when y == 0
           form="infix", symbol="/", precedence=2, dunder="truediv"),
    OpSpec("pow", 2, math.pow, _pow_derivatives,  # always a float; ValueError or OverflowError, never complex
           form="infix", symbol="**", precedence=4, right_assoc=True, dunder="pow"),
    OpSpec("neg", 1, lambda x: -x, lambda x: (-1.0,),
           form="prefix", symbol="-", precedence=3, dunder="neg"),
    OpSpec("exp", 1, math.exp, lambda x: (math.exp(x),)),  # OverflowError when too large for a float
    OpSpec("log", 1, math.log, lambda x: (1.0 / x,)),  # ValueError when x <= 0
    OpSpec("tanh", 1, math.tanh, _tanh_derivatives),
    OpSpec("relu", 1, lambda x: x if x > 0 else 0.0, lambda x: (1.0 if x > 0 else 0.0,)),  # d = 0 at 0 (PyTorch)
    OpSpec("sigmoid", 1, _sigmoid, _sigmoid_derivatives),
)

#: The built-in ops by name, in the order above.
TABLE: dict[str, OpSpec] = {spec.name: spec for spec in BUILTIN}
#: Their names: what an engine's ``apply`` may be asked for (besides plugin ops).
NAMES: tuple[str, ...] = tuple(TABLE)
#: The infix ops by symbol, and the ops written as calls with their arity.
INFIX: dict[str, OpSpec] = {s.symbol: s for s in BUILTIN if s.form == "infix"}
CALLS: dict[str, int] = {s.name: s.arity for s in BUILTIN if s.form == "call"}

