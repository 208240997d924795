"""Parse case expressions into flat postfix code, without ever evaluating them.

An expression is Python syntax restricted to numbers, names, ``+ - * / **``,
unary ``-`` and calls of known ops.  The parser walks ``ast`` iteratively and
rejects everything else.  Code is a list of instructions for a stack machine:
``["const", number]``, ``["name", str]`` or ``["op", opname, arity]``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from harness.errors import ExprError, did_you_mean

#: Ops written as function calls, with their arity.
CALL_OPS = {"exp": 1, "log": 1, "tanh": 1, "relu": 1, "sigmoid": 1}

_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow"}

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
            raise ExprError(f"operator {_op_symbol(node.op)} is not allowed; use + - * / **", col)
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.USub):
            if _is_number(node.operand):
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
        op = "neg"
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
    """Postfix code back to infix text with only the parentheses it needs."""
    symbols = {"add": ("+", 1), "sub": ("-", 1), "mul": ("*", 2), "div": ("/", 2), "pow": ("**", 4)}
    stack: list[tuple[str, int]] = []  # (text, precedence)
    for ins in code:
        if ins[0] == "const":
            stack.append((repr(ins[1]), 3 if ins[1] < 0 else 5))
        elif ins[0] == "name":
            stack.append((ins[1], 5))
        elif ins[1] in symbols and ins[2] == 2:
            (left, lp), (right, rp) = stack.pop(-2), stack.pop()
            sym, prec = symbols[ins[1]]
            left_tight = lp <= prec if sym == "**" else lp < prec
            right_tight = rp < prec or (rp == prec and sym in ("-", "/"))
            left = f"({left})" if left_tight else left
            right = f"({right})" if right_tight else right
            stack.append((f"{left} {sym} {right}", prec))
        elif ins[1] == "neg":
            text, prec = stack.pop()
            stack.append((f"-({text})" if prec < 3 else f"-{text}", 3))
        else:
            args = [stack.pop()[0] for _ in range(ins[2])][::-1]
            stack.append((f"{ins[1]}({', '.join(args)})", 5))
    return stack[-1][0] if stack else ""
