"""Fuzz the case-expression parser: any input gives a well-formed Expr or an ExprError, nothing else."""

from __future__ import annotations

import ast

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harness.errors import ExprError, HarnessError
from harness.cases.expr import CALL_OPS, Expr, parse

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BINARY_OPS = {"add", "sub", "mul", "div", "pow"}


def check(source: str) -> None:
    """``parse(source)`` is a well-formed Expr, or raises the harness's own error."""
    try:
        expr = parse(source)
    except ExprError as e:
        assert isinstance(e, HarnessError) and str(e)
        return
    assert isinstance(expr, Expr)
    depth = 0
    for ins in expr.code:
        kind = ins[0]
        if kind == "const":
            assert type(ins[1]) in (int, float)
            depth += 1
        elif kind == "name":
            assert ins[1] in expr.names and ins[1].isidentifier()
            depth += 1
        else:
            assert kind == "op"
            name, arity = ins[1], ins[2]
            assert (name in BINARY_OPS and arity == 2) or (name == "neg" and arity == 1) or \
                   CALL_OPS.get(name) == arity
            assert depth >= arity
            depth -= arity - 1
    assert depth == 1, "the code leaves exactly one value on the stack"
    assert expr.ops <= BINARY_OPS | {"neg"} | set(CALL_OPS)


# --- random strings ---------------------------------------------------------------------------

EXPRESSION_ALPHABET = "abxy0123456789.eE+-*/%@&|^~<>=!()[]{},:;'\"\\ _\t\n#" + "".join(CALL_OPS)


@FUZZ
@given(st.text())
@example("")
@example("\x00")
@example("a" + " + a" * 200_000)
@example("-" * 100_000 + "a")
@example("(" * 300 + "a" + ")" * 300)
@example("1" * 5000)
@example("1e999 * a")
@example("exp(a, b)")
@example("__import__('os').system('true')")
def test_random_strings(source):
    check(source)


@FUZZ
@given(st.text(alphabet=EXPRESSION_ALPHABET, max_size=60))
def test_random_strings_from_expression_characters(source):
    check(source)


# --- random Python syntax trees ---------------------------------------------------------------

names = st.sampled_from(["a", "b", "x", "y_1", "exp", "log", "tanh", "relu", "sigmoid", "print", "open",
                         "__import__", "eval", "sqrt"])
constants = st.one_of(
    st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5),
    st.binary(max_size=5), st.booleans(), st.none(), st.complex_numbers(max_magnitude=10),
    st.just(...))
leaves = st.one_of(names.map(lambda n: ast.Name(id=n, ctx=ast.Load())), constants.map(lambda v: ast.Constant(value=v)))

BINOPS = [ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.FloorDiv, ast.Mod, ast.MatMult, ast.BitAnd,
          ast.BitOr, ast.BitXor, ast.LShift, ast.RShift]
UNARYOPS = [ast.USub, ast.UAdd, ast.Not, ast.Invert]
CMPOPS = [ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot, ast.In, ast.NotIn]


def _compound(children):
    load = ast.Load()
    some = st.lists(children, min_size=1, max_size=3)
    target = names.map(lambda n: ast.Name(id=n, ctx=ast.Store()))
    comprehension = st.builds(lambda t, it: ast.comprehension(target=t, iter=it, ifs=[], is_async=0),
                              target, children)
    return st.one_of(
        st.builds(lambda l, op, r: ast.BinOp(left=l, op=op(), right=r), children, st.sampled_from(BINOPS), children),
        st.builds(lambda op, x: ast.UnaryOp(op=op(), operand=x), st.sampled_from(UNARYOPS), children),
        st.builds(lambda f, args: ast.Call(func=ast.Name(id=f, ctx=load), args=args, keywords=[]),
                  names, st.lists(children, max_size=3)),
        st.builds(lambda f, args: ast.Call(func=f, args=args, keywords=[]), children, st.lists(children, max_size=2)),
        st.builds(lambda f, kw: ast.Call(func=ast.Name(id=f, ctx=load), args=[],
                                         keywords=[ast.keyword(arg="x", value=kw)]), names, children),
        st.builds(lambda f, x: ast.Call(func=ast.Name(id=f, ctx=load), args=[ast.Starred(value=x, ctx=load)],
                                        keywords=[]), names, children),
        st.builds(lambda x, attr: ast.Attribute(value=x, attr=attr, ctx=load), children,
                  st.sampled_from(["real", "__class__", "data", "exp"])),
        st.builds(lambda x, i: ast.Subscript(value=x, slice=i, ctx=load), children, children),
        st.builds(lambda body: ast.Lambda(args=ast.arguments(posonlyargs=[], args=[], vararg=None,
                                                             kwonlyargs=[], kw_defaults=[], kwarg=None,
                                                             defaults=[]), body=body), children),
        st.builds(lambda t, b, o: ast.IfExp(test=t, body=b, orelse=o), children, children, children),
        st.builds(lambda op, vs: ast.BoolOp(op=op(), values=vs), st.sampled_from([ast.And, ast.Or]),
                  st.lists(children, min_size=2, max_size=3)),
        st.builds(lambda l, op, r: ast.Compare(left=l, ops=[op()], comparators=[r]), children,
                  st.sampled_from(CMPOPS), children),
        st.builds(lambda xs: ast.List(elts=xs, ctx=load), some),
        st.builds(lambda xs: ast.Tuple(elts=xs, ctx=load), some),
        st.builds(lambda xs: ast.Set(elts=xs), some),
        st.builds(lambda ks, vs: ast.Dict(keys=ks[:len(vs)], values=vs[:len(ks)]), some, some),
        st.builds(lambda e, g: ast.ListComp(elt=e, generators=[g]), children, comprehension),
        st.builds(lambda e, g: ast.GeneratorExp(elt=e, generators=[g]), children, comprehension),
        st.builds(lambda t, v: ast.NamedExpr(target=t, value=v), target, children),
        st.builds(lambda x: ast.JoinedStr(values=[ast.FormattedValue(value=x, conversion=-1, format_spec=None)]),
                  children),
        st.builds(lambda x: ast.Await(value=x), children),
        st.builds(lambda x: ast.Yield(value=x), children),
    )


trees = st.recursive(leaves, _compound, max_leaves=12)


def unparsed(tree: ast.expr):
    try:
        return ast.unparse(ast.fix_missing_locations(ast.Expression(body=tree)))
    except (ValueError, TypeError, AttributeError, RecursionError):
        return None  # a tree that Python itself cannot print


@FUZZ
@given(trees)
def test_random_syntax_trees(tree):
    source = unparsed(tree)
    if source is not None:
        check(source)


case_leaves = st.one_of(
    st.sampled_from(["a", "b", "x", "y_1"]).map(lambda n: ast.Name(id=n, ctx=ast.Load())),
    st.one_of(st.integers(0, 10**6), st.floats(0, 1e6)).map(lambda v: ast.Constant(value=v)))
case_trees = st.recursive(case_leaves, lambda kids: st.one_of(
    st.builds(lambda l, op, r: ast.BinOp(left=l, op=op(), right=r), kids,
              st.sampled_from([ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow]), kids),
    st.builds(lambda x: ast.UnaryOp(op=ast.USub(), operand=x), kids),
    st.builds(lambda f, x: ast.Call(func=ast.Name(id=f, ctx=ast.Load()), args=[x], keywords=[]),
              st.sampled_from(sorted(CALL_OPS)), kids),
), max_leaves=20)


@FUZZ
@given(case_trees)
def test_every_tree_of_the_case_language_parses(tree):
    source = unparsed(tree)
    try:
        expr = parse(source)
    except ExprError as e:
        pytest.fail(f"{source!r} is in the case language but was rejected: {e}")
    check(source)
    assert expr.names == {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - set(CALL_OPS)
