"""The case-expression parser (source -> postfix code) and the renderer (code -> minimal infix)."""

from __future__ import annotations

import pytest

from harness.cases.expr import parse, render
from harness.errors import ExprError, HarnessError


def C(x):
    return ["const", x]


def N(x):
    return ["name", x]


def O(op, arity):  # noqa: E743
    return ["op", op, arity]


@pytest.mark.parametrize("source, code", [
    ("a", [N("a")]),
    ("2", [C(2)]),
    ("2.5", [C(2.5)]),
    ("-3", [C(-3)]),  # a negative literal is one constant
    ("-a", [N("a"), O("neg", 1)]),
    ("+a", [N("a")]),  # unary plus disappears
    ("a + b", [N("a"), N("b"), O("add", 2)]),
    ("a - b", [N("a"), N("b"), O("sub", 2)]),
    ("a * b", [N("a"), N("b"), O("mul", 2)]),
    ("a / b", [N("a"), N("b"), O("div", 2)]),
    ("a ** 2", [N("a"), C(2), O("pow", 2)]),
    ("a + b * c", [N("a"), N("b"), N("c"), O("mul", 2), O("add", 2)]),
    ("(a + b) * c", [N("a"), N("b"), O("add", 2), N("c"), O("mul", 2)]),
    ("a - b - c", [N("a"), N("b"), O("sub", 2), N("c"), O("sub", 2)]),
    ("a ** b ** c", [N("a"), N("b"), N("c"), O("pow", 2), O("pow", 2)]),
    ("exp(a)", [N("a"), O("exp", 1)]),
    ("tanh(a * b + 1)", [N("a"), N("b"), O("mul", 2), C(1), O("add", 2), O("tanh", 1)]),
    ("relu(-a)", [N("a"), O("neg", 1), O("relu", 1)]),
    ("sigmoid(log(a))", [N("a"), O("log", 1), O("sigmoid", 1)]),
    ("  a  ", [N("a")]),
])
def test_parse_gives_postfix_code(source, code):
    assert [list(i) for i in parse(source).code] == code


def test_parse_records_names_ops_and_the_stripped_source():
    expr = parse("  tanh(a * b) + a - exp(c)  ")
    assert expr.source == "tanh(a * b) + a - exp(c)"
    assert expr.names == {"a", "b", "c"}
    assert expr.ops == {"tanh", "mul", "add", "sub", "exp"}


def test_parse_takes_its_call_ops_from_the_caller():
    expr = parse("softplus(a)", {"softplus": 1})
    assert [list(i) for i in expr.code] == [N("a"), O("softplus", 1)]
    with pytest.raises(ExprError, match="unknown function 'exp'"):
        parse("exp(a)", {"softplus": 1})


def test_a_deep_chain_parses_without_recursing_in_the_walk():
    expr = parse(" + ".join(["a"] * 2000))
    assert len(expr.code) == 2000 + 1999


@pytest.mark.parametrize("source, problem, col", [
    ("", "empty expression; write e.g. 'a + b * c'", None),
    ("   ", "empty expression; write e.g. 'a + b * c'", None),
    ("a +", "invalid expression syntax: invalid syntax", ...),  # the column is Python's
    ("a.grad", "attribute access ('.') is not allowed", 0),
    ("a[0]", "subscripts ('[...]') are not allowed", 0),
    ("lambda: a", "lambdas are not allowed", 0),
    ("[x for x in a]", "comprehensions are not allowed", 0),
    ("a < b", "comparisons are not allowed", 0),
    ("a and b", "'and'/'or' are not allowed", 0),
    ("a if b else c", "conditional expressions are not allowed", 0),
    ("(x := a)", "':=' is not allowed; bind names in 'steps' instead", 1),
    ("a // b", "operator '//' is not allowed; use + - * / **", 0),
    ("a % b", "operator '%' is not allowed; use + - * / **", 0),
    ("a @ b", "operator '@' is not allowed; use + - * / **", 0),
    ("~a", "unary operator '~' is not allowed; only '-' is", 0),
    ("not a", "unary operator 'not' is not allowed; only '-' is", 0),
    ("exq(a)", "unknown function 'exq' (did you mean 'exp'?); known ops: exp, log, relu, sigmoid, tanh", 0),
    ("print(a)", "unknown function 'print'; known ops: exp, log, relu, sigmoid, tanh", 0),
    ("f.g(a)", "only calls of ops such as exp(x) are allowed", 0),
    ("exp(a, b)", "exp() takes 1 operand(s), got 2", 0),
    ("exp()", "exp() takes 1 operand(s), got 0", 0),
    ("exp(x=a)", "exp() takes plain positional operands", 0),
    ("exp(*a)", "exp() takes plain positional operands", 0),
    ("'a'", "string constants are not allowed; only numbers and names", 0),
    ("a + 'b'", "string constants are not allowed; only numbers and names", 4),
    ("a + None", "None is not allowed; only numbers and names", 4),
    ("a * True", "True is not allowed; only numbers and names", 4),
    ("1j * a", "1j is not allowed; only numbers and names", 0),
    ("f'{a}'", "string constants are not allowed", 0),
    ("{a: b}", "Dict is not allowed in an expression", 0),
    ("(a, b)", "Tuple is not allowed in an expression", 0),
])
def test_parse_errors_name_the_problem_and_the_column(source, problem, col):
    with pytest.raises(ExprError) as caught:
        parse(source)
    assert caught.value.problem == problem
    assert col is ... or caught.value.col == col
    assert isinstance(caught.value, HarnessError)  # so the CLI reports it without a traceback


def test_a_huge_expression_is_a_clear_error_not_a_crash():
    with pytest.raises(ExprError, match="too large or deeply nested .*build long sums with 'repeat' steps"):
        parse("a" + " + a" * 200_000)


@pytest.mark.parametrize("source, text", [
    ("a + b * c", "a + b * c"),
    ("(a + b) * c", "(a + b) * c"),
    ("a - (b - c)", "a - (b - c)"),
    ("(a - b) - c", "a - b - c"),
    ("a / (b / c)", "a / (b / c)"),
    ("a / (b * c)", "a / (b * c)"),
    ("a * (b * c)", "a * b * c"),
    ("a + (b + c)", "a + b + c"),
    ("a ** b ** c", "a ** b ** c"),
    ("(a ** b) ** c", "(a ** b) ** c"),
    ("(-a) ** 2", "(-a) ** 2"),
    ("-(a ** 2)", "-a ** 2"),
    ("-(a + b)", "-(a + b)"),
    ("-(a * b)", "-(a * b)"),
    ("-a * b", "-a * b"),
    ("a * -2", "a * -2"),
    ("(-2) ** a", "(-2) ** a"),
    ("exp(a + b) * 2", "exp(a + b) * 2"),
    ("tanh(sigmoid(a))", "tanh(sigmoid(a))"),
    ("2.5 * a", "2.5 * a"),
])
def test_render_writes_only_the_parentheses_needed(source, text):
    assert render(parse(source).code) == text


@pytest.mark.parametrize("source", [
    "a - b + c", "a - (b + c)", "a / b * c", "a / (b * c)", "-(-a)", "a ** -b", "(a + b) ** (c - 1)",
    "relu(a) - -b", "a * (b - c) / (d + e) ** 2", "-(a - b) * (c + -d)", "log(a) ** exp(b) ** c",
])
def test_render_then_parse_gives_the_same_code(source):
    code = parse(source).code
    assert parse(render(code)).code == code


def test_render_of_nothing_is_empty():
    assert render(()) == ""


def test_render_of_a_custom_op_is_a_call():
    assert render(parse("softplus(a + 1)", {"softplus": 1}).code) == "softplus(a + 1)"


def test_a_string_with_a_bad_escape_is_refused_without_a_python_warning():
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(ExprError):
            parse("a + '\\i'")
    assert seen == []
