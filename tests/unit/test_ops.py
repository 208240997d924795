"""The op table, and everything that reads it: parser, renderer, adapters, fuzz, the reference engine."""

from __future__ import annotations

import math
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import harness
from harness import ops
from harness.cases.expr import CALL_OPS, parse, render
from harness.diagnosis import fuzz
from harness.engine_side import adapters
from harness.ops import BUILTIN, TABLE, OpSpec
from reference_engine import tensor
from reference_engine.plugin import ReferenceEngine
from reference_engine.tensor import Tensor


def points(spec: OpSpec) -> list[tuple[float, ...]]:
    """Points inside the op's domain, away from kinks and poles."""
    if spec.arity == 2:
        return [(1.5, 0.7), (2.0, -1.25), (0.3, 2.5)]
    return [(0.4,), (2.1,)] + ([] if spec.name == "log" else [(-1.3,)])


def test_each_builtin_op_appears_once():
    names = [spec.name for spec in BUILTIN]
    assert len(names) == len(set(names)) == 11
    assert harness.OPS == ops.NAMES == tuple(names)


@pytest.mark.parametrize("spec", BUILTIN, ids=lambda s: s.name)
def test_the_form_fits_the_arity(spec):
    assert (spec.form, spec.arity) in {("infix", 2), ("prefix", 1), ("call", 1)}
    assert bool(spec.symbol) == (spec.form != "call")
    assert spec.forward is not None and spec.derivatives is not None


@pytest.mark.parametrize("spec", BUILTIN, ids=lambda s: s.name)
def test_the_written_form_is_python_computing_the_forward_formula(spec):
    for values in points(spec):
        names = "xy"[: spec.arity]
        text = spec.write(*names)
        python = eval(text, {"exp": math.exp, "log": math.log, "tanh": math.tanh,  # noqa: S307 (our own text)
                             "relu": lambda v: max(v, 0.0), "sigmoid": lambda v: 1 / (1 + math.exp(-v))},
                      dict(zip(names, values)))
        assert spec.forward(*values) == pytest.approx(python, rel=1e-12)


@pytest.mark.parametrize("spec", BUILTIN, ids=lambda s: s.name)
def test_the_local_derivatives_are_the_slopes_of_the_forward_formula(spec):
    for values in points(spec):
        derivatives = spec.derivatives(*values)
        assert isinstance(derivatives, tuple) and len(derivatives) == spec.arity
        for i, d in enumerate(derivatives):
            h = 1e-6

            def at(v, i=i, values=values):
                moved = list(values)
                moved[i] = v
                return spec.forward(*moved)

            numerical = (at(values[i] + h) - at(values[i] - h)) / (2 * h)
            assert d == pytest.approx(numerical, rel=1e-5, abs=1e-7), (spec.name, values, i)


def test_the_formulas_keep_the_reference_engines_edge_cases():
    assert TABLE["div"].derivatives(1e300, 1e200) == pytest.approx((1e-200, -1e-100))  # not -x / y**2 = -0.0
    d_base, d_exponent = TABLE["pow"].derivatives(0.0, 0.5)
    assert d_base == math.inf and math.isnan(d_exponent)
    assert TABLE["pow"].derivatives(2.0, 0)[0] == 0.0
    assert TABLE["relu"].derivatives(0.0) == (0.0,)
    assert TABLE["sigmoid"].forward(-1000.0) == 0.0 and TABLE["sigmoid"].forward(1000.0) == 1.0
    with pytest.raises(ValueError):
        TABLE["pow"].forward(-8.0, 1 / 3)  # math.pow: never a complex number


def test_an_opspec_that_does_not_fit_the_table_is_refused():
    with pytest.raises(ValueError, match="identifier"):
        OpSpec("soft plus", 1)
    with pytest.raises(ValueError, match="symbol"):
        OpSpec("dot", 2, form="infix")
    with pytest.raises(ValueError, match="cannot take 1"):
        OpSpec("plus", 1, form="infix", symbol="+")
    assert OpSpec("softplus", 1).write("x") == "softplus(x)"


def test_an_opspec_is_immutable_compared_by_its_fields_and_replaced_into_a_checked_copy():
    add = TABLE["add"]
    with pytest.raises(AttributeError, match="immutable"):
        add.symbol = "plus"  # type: ignore[misc]
    same = add.replace(precedence=1)
    assert same == add and hash(same) == hash(add) and same is not add
    assert add.replace(associative=False) != add and add.associative
    assert OpSpec("softplus", 1) == OpSpec("softplus", 1, None, None, "call", "", precedence=5)
    assert "name='add'" in repr(add) and "symbol='+'" in repr(add)
    with pytest.raises(TypeError, match="no field 'colour'"):
        add.replace(colour="red")
    with pytest.raises(ValueError, match="cannot take 1"):
        add.replace(arity=1)


# --- the parser and the renderer read the table -------------------------------


def test_the_parser_knows_every_op_of_the_table():
    assert CALL_OPS == {s.name: s.arity for s in BUILTIN if s.form == "call"}
    for spec in BUILTIN:
        code = parse(spec.write(*"ab"[: spec.arity])).code
        assert code[-1] == ["op", spec.name, spec.arity]


def test_the_parsers_error_lists_the_tables_operators():
    with pytest.raises(harness_errors().ExprError, match=r"use \+ - \* / \*\*"):
        parse("a // b")


def harness_errors():
    from harness import errors

    return errors


@pytest.mark.parametrize("text", [
    "a + b * c", "(a + b) * c", "a - (b - c)", "a - b - c", "a / (b * c)", "a ** b ** c", "(a ** b) ** c",
    "-a ** 2", "(-a) ** 2", "-(a + b)", "a ** -1", "exp(a * b) / log(2)", "a * -2", "-a", "2 ** (-b)",
])
def test_render_writes_back_the_same_tree(text):
    code = parse(text).code
    assert parse(render(code)).code == code


def test_render_uses_only_the_parentheses_it_needs():
    assert render(parse("(a * b) + (c ** d)").code) == "a * b + c ** d"
    assert render(parse("((a - b)) - (c - d)").code) == "a - b - (c - d)"
    assert render(parse("(a ** b) ** c").code) == "(a ** b) ** c"
    assert render(parse("-(a * b)").code) == "-(a * b)"


@st.composite
def trees(draw, depth=3):
    """Random postfix code over a and b, every op of the table."""
    if depth == 0 or draw(st.booleans()):
        return [["name", draw(st.sampled_from("ab"))]] if draw(st.booleans()) else [
            ["const", draw(st.sampled_from([2, 0.5, 3]))]]
    spec = draw(st.sampled_from(BUILTIN))
    code = []
    for _ in range(spec.arity):
        code += draw(trees(depth - 1))
    return code + [["op", spec.name, spec.arity]]


@settings(max_examples=100, deadline=None)
@given(trees())
def test_rendered_text_parses_back_to_text_that_renders_the_same(code):
    text = render(code)  # -2 comes back a constant, a + (b + c) as a + b + c: the same value
    assert render(parse(text).code) == text


# --- the adapters and fuzz read the table -------------------------------------


def test_the_adapters_map_each_operator_op_to_pythons_methods():
    assert set(adapters.BINARY) == {s.name for s in BUILTIN if s.form == "infix"}
    assert adapters.BINARY["div"][:2] == ("__truediv__", "__rtruediv__")
    assert adapters.PREFIX == {"neg": ("__neg__", adapters.operator.neg)}
    for name, (method, reflected, fn) in adapters.BINARY.items():
        assert fn(7.0, 2.0) == TABLE[name].forward(7.0, 2.0)
        assert hasattr(float, method) and hasattr(float, reflected)


def test_the_micrograd_adapter_applies_every_op_of_the_table():
    engine = adapters.MicrogradAdapter(Tensor, "reference-as-micrograd")
    for spec in BUILTIN:
        for values in points(spec):
            node = engine.apply(spec.name, *map(Tensor, values))
            assert engine.value(node) == pytest.approx(spec.forward(*values))


def test_fuzz_draws_every_op_of_the_table():
    assert set(fuzz.UNARY) | set(fuzz.BINARY) == set(ops.NAMES)
    assert {form.op for form in fuzz.ALL_FORMS} == set(ops.NAMES)


# --- the reference engine reads the table -------------------------------------


def test_the_reference_engine_computes_each_op_by_its_formula():
    engine = ReferenceEngine()
    for spec in BUILTIN:
        for values in points(spec):
            node = engine.apply(spec.name, *map(engine.leaf, values))
            assert engine.value(node) == spec.forward(*values)
            assert tuple(engine.local_derivatives(node)) == spec.derivatives(*values)


def test_a_plugin_op_becomes_a_notebook_function():
    softplus = OpSpec("softplus", 1, lambda x: math.log1p(math.exp(x)), lambda x: (1 / (1 + math.exp(-x)),))
    function = tensor.op_function(softplus)
    x = Tensor(0.0)
    out = function(x)
    out.backward()
    assert function.__name__ == "_softplus"
    assert (out.value, x.derivative.value) == (math.log(2), 0.5)
    with pytest.raises(ValueError, match="no reference formula"):
        tensor.op_function(OpSpec("bare", 1))


@st.composite
def dags(draw):
    """A random graph over three leaves where nodes feed several users: (leaves, output)."""
    nodes = [Tensor(draw(st.sampled_from([0.5, -1.5, 2.0]))) for _ in range(3)]
    for _ in range(draw(st.integers(1, 25))):
        spec = draw(st.sampled_from([s for s in BUILTIN if s.name in ("add", "sub", "mul", "neg", "tanh",
                                                                      "sigmoid")]))
        args = [draw(st.sampled_from(nodes)) for _ in range(spec.arity)]
        nodes.append(getattr(tensor, f"_{spec.name}")(*args))
    return nodes, nodes[-1]


@settings(max_examples=50, deadline=None)
@given(dags(), st.integers(1, 3))
def test_backward_fast_adds_exactly_what_the_plain_backward_adds(graph, times):
    nodes, out = graph
    for _ in range(times):
        tensor.backward(out)
    plain = [n._grad for n in nodes]
    for n in nodes:
        n._grad = None
    for _ in range(times):
        tensor.backward_fast(out)
    fast = [n._grad for n in nodes]
    assert [g is None for g in fast] == [g is None for g in plain]  # nodes the output does not use
    assert [g for g in fast if g is not None] == pytest.approx([g for g in plain if g is not None], rel=1e-12,
                                                               abs=0)
    assert all(n._users == 0 for n in nodes)  # the fast path leaves its scratch clean


def test_topological_order_is_iterative_and_visits_each_node_once():
    x = Tensor(1.0)
    y = x
    for _ in range(50):  # 2**50 paths, 51 nodes
        y = y + y
    order = tensor.topological_order(y)
    assert len(order) == 51 and order[0] is y and order[-1] is x
    deep = x
    for _ in range(5 * sys.getrecursionlimit()):
        deep = deep * 1.0
    order = tensor.topological_order(deep)
    assert order[0] is deep and x in order[-2:]
