"""Parse case expressions into flat postfix code, without ever evaluating them.

An expression is Python syntax restricted to numbers, names, ``+ - * / **``,
unary ``-`` and calls of known ops.  The parser walks ``ast`` iteratively and
rejects everything else.  Code is a list of instructions for a stack machine:
``["const", number]``, ``["name", str]`` or ``["op", opname, arity]``.
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass

from harness import ops as optable
from harness.errors import ExprError, did_you_mean

#: Ops written as function calls, with their arity (the built-in ones; plugins add more).
CALL_OPS = dict(optable.CALLS)

# Python's operators by their symbol in the op table.
_AST_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.USub: "-"}
_BINOPS = {cls: optable.INFIX[sym].name for cls, sym in _AST_SYMBOLS.items() if sym in optable.INFIX
           and issubclass(cls, ast.operator)}
_PREFIX = {cls: spec.name for cls, sym in _AST_SYMBOLS.items() if issubclass(cls, ast.unaryop)
           for spec in optable.BUILTIN if spec.form == "prefix" and spec.symbol == sym}
_INFIX_TEXT = " ".join(optable.INFIX)

_FORBIDDEN = {
    ast.Attribute: "attribute access ('.') is not allowed",
    ast.Subscript: "subscripts ('[...]') are not allowed",
    ast.Lambda: "lambdas are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.Compare: "comparisons are not allowed",
    ast.BoolOp: "'and'/'or' are not allowed",
    ast.IfExp: "conditional expressions are not allowed",
    ast.NamedExpr: "':=' is not allowed; bind names in 'steps' instead",
    ast.Starred: "'*' unpacking is not allowed",
    ast.JoinedStr: "string constants are not allowed",
}


@dataclass(frozen=True)
class Expr:
    """A parsed expression: its source text, postfix code, and what it uses."""

    source: str
    code: tuple
    names: frozenset[str]
    ops: frozenset[str]


def parse(source: str, call_ops: dict[str, int] | None = None) -> Expr:
    """Parse ``source`` or raise ExprError naming the problem and the fix."""
    call_ops = CALL_OPS if call_ops is None else call_ops
    if not isinstance(source, str) or not source.strip():
        raise ExprError("empty expression; write e.g. 'a + b * c'")
    try:
        with warnings.catch_warnings():  # e.g. "invalid escape sequence" in a string, refused below anyway
            warnings.simplefilter("ignore")
            tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as e:
        raise ExprError(f"invalid expression syntax: {e.msg}", (e.offset or 1) - 1) from None
    except (ValueError, RecursionError, MemoryError) as e:
        raise ExprError(
            f"expression too large or deeply nested ({type(e).__name__}); build long sums with 'repeat' steps"
        ) from None

    code: list = []
    names: set[str] = set()
    ops: set[str] = set()
    # Iterative post-order walk: (node, visited) pairs, so deep trees cannot recurse.
    stack = [(tree.body, False)]
    while stack:
        node, visited = stack.pop()
        if visited:
            _emit(node, code, ops)
            continue
        children = _children(node, call_ops)
        if children is None:  # a leaf emitted directly
            _emit_leaf(node, code, names)
            continue
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(children))
    return Expr(source.strip(), tuple(code), frozenset(names), frozenset(ops))


def _children(node: ast.AST, call_ops: dict[str, int]):
    """Operand nodes of an allowed node, None for a leaf; raise for the rest."""
    col = getattr(node, "col_offset", None)
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            raise ExprError(f"operator {_op_symbol(node.op)} is not allowed; use {_INFIX_TEXT}", col)
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp):
        if type(node.op) in _PREFIX:
            if isinstance(node.op, ast.USub) and _is_number(node.operand):
                return None  # a negative literal is a constant
            return [node.operand]
        if isinstance(node.op, ast.UAdd):
            return [node.operand]
        raise ExprError(f"unary operator {_op_symbol(node.op)} is not allowed; only '-' is", col)
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise ExprError("only calls of ops such as exp(x) are allowed", col)
        fname = node.func.id
        if fname not in call_ops:
            known = ", ".join(sorted(call_ops))
            raise ExprError(
                f"unknown function {fname!r}{did_you_mean(fname, call_ops)}; known ops: {known}", col
            )
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise ExprError(f"{fname}() takes plain positional operands", col)
        if len(node.args) != call_ops[fname]:
            raise ExprError(f"{fname}() takes {call_ops[fname]} operand(s), got {len(node.args)}", col)
        return list(node.args)
    if isinstance(node, (ast.Constant, ast.Name)):
        return None
    for kind, why in _FORBIDDEN.items():
        if isinstance(node, kind):
            raise ExprError(why, col)
    raise ExprError(f"{type(node).__name__} is not allowed in an expression", col)


def _emit(node: ast.AST, code: list, ops: set[str]) -> None:
    if isinstance(node, ast.BinOp):
        op = _BINOPS[type(node.op)]
        code.append(["op", op, 2])
    elif isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.UAdd):
            return
        op = _PREFIX[type(node.op)]
        code.append(["op", op, 1])
    else:
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)  # the walk admits no other node
        op = node.func.id
        code.append(["op", op, len(node.args)])
    ops.add(op)


def _emit_leaf(node: ast.AST, code: list, names: set[str]) -> None:
    col = getattr(node, "col_offset", None)
    if isinstance(node, ast.Name):
        names.add(node.id)
        code.append(["name", node.id])
        return
    if isinstance(node, ast.UnaryOp):  # negative literal
        code.append(["const", -_number(node.operand)])
        return
    code.append(["const", _number(node, col)])


def _is_number(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def _number(node: ast.AST, col=None):
    if not _is_number(node):
        value = getattr(node, "value", None)
        kind = "string constants are" if isinstance(value, (str, bytes)) else f"{value!r} is"
        raise ExprError(f"{kind} not allowed; only numbers and names", col)
    assert isinstance(node, ast.Constant)
    return node.value


def _op_symbol(op: ast.AST) -> str:
    symbols = {ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|",
               ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>", ast.Not: "not", ast.Invert: "~"}
    return repr(symbols.get(type(op), type(op).__name__))


def render(code) -> str:
    """Postfix code back to infix text with only the parentheses it needs (the op table's precedences)."""
    negative = optable.TABLE["neg"].precedence  # a negative number binds like unary minus
    stack: list[tuple[str, int]] = []  # (text, precedence)
    for ins in code:
        if ins[0] == "const":
            stack.append((repr(ins[1]), negative if ins[1] < 0 else optable.ATOM))
            continue
        if ins[0] == "name":
            stack.append((ins[1], optable.ATOM))
            continue
        spec = optable.TABLE.get(ins[1])
        if spec is not None and spec.form == "infix" and ins[2] == 2:
            (left, lp), (right, rp) = stack.pop(-2), stack.pop()
            p = spec.precedence
            left_tight = lp <= p if spec.right_assoc else lp < p
            right_tight = rp < p or (rp == p and not (spec.right_assoc or spec.associative))
            stack.append((spec.write(f"({left})" if left_tight else left, f"({right})" if right_tight else right), p))
        elif spec is not None and spec.form == "prefix" and ins[2] == 1:
            text, prec = stack.pop()
            stack.append((spec.write(f"({text})" if prec < spec.precedence else text), spec.precedence))
        else:  # a call, built-in or a plugin's
            args = [stack.pop()[0] for _ in range(ins[2])][::-1]
            stack.append((f"{ins[1]}({', '.join(args)})", optable.ATOM))
    return stack[-1][0] if stack else ""
