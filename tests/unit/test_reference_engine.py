"""Tests for reference_engine: the notebook's own checks, gradients, accumulation, limits, plugin."""

import gc
import math
import sys

import pluggy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import harness
import harness.hookspecs
from reference_engine import (
    Tensor, _add, _div, _exp, _log, _mul, _neg, _pow, _relu, _sigmoid, _sub, _tanh,
)
from reference_engine import plugin
from reference_engine.plugin import ReferenceEngine

GRADCHECK = settings(max_examples=40, deadline=None)


def floats(low: float, high: float):
    """Finite floats in [low, high]."""
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


def away_from_zero(low: float, high: float):
    """Floats with low <= |x| <= high, either sign: keeps clear of a kink or a pole at 0."""
    return floats(low, high) | floats(-high, -low)


def check_gradients(fn, *xs: float) -> None:
    """fn's backward gradient w.r.t. each leaf matches a central finite difference."""
    leaves = [Tensor(x) for x in xs]
    out = fn(*leaves)
    out.backward()
    for i, (leaf, x) in enumerate(zip(leaves, xs)):
        h = 1e-6 * max(1.0, abs(x))

        def at(v: float) -> float:
            moved = list(xs)
            moved[i] = v
            return fn(*map(Tensor, moved)).value

        numerical = (at(x + h) - at(x - h)) / (2 * h)
        analytical = leaf.derivative.value
        assert math.isclose(analytical, numerical, rel_tol=1e-5, abs_tol=1e-6), (
            f"d(out)/d(arg {i}) at {xs}: analytical {analytical}, numerical {numerical}"
        )


# --- The notebook's test cells, verbatim ------------------------------------


def test_notebook_ops():
    assert _add(Tensor(1), Tensor(2)).value == 3
    assert _sub(Tensor(1), Tensor(2)).value == -1
    assert _mul(Tensor(1), Tensor(2)).value == 2


def test_notebook_unit_test():
    # Unit Test
    add_tensor = _add(Tensor(1), Tensor(2))
    assert add_tensor.value == 3
    assert add_tensor.args[0].value == 1
    assert add_tensor.args[1].value == 2
    assert add_tensor.local_derivatives[0].value == 1
    assert add_tensor.local_derivatives[1].value == 1


def test_notebook_backprop_a_plus_b_times_c():
    # Unit test back prop
    #
    # L = a + b * c
    a = Tensor(1)
    b = Tensor(2)
    c = Tensor(3)

    L = _add(a, _mul(b, c))
    L.backward()

    assert a.derivative.value == 1
    assert b.derivative.value == 3
    assert c.derivative.value == 2


def test_notebook_backprop_reused_leaf():
    # Unit test back prop
    #
    # L = a + b * (a + c)
    a = Tensor(1)
    b = Tensor(2)
    c = Tensor(3)

    L = _add(a, _mul(b, _add(a, c)))
    L.backward()

    assert a.derivative.value == 1 + 2
    assert b.derivative.value == 1 + 3
    assert c.derivative.value == 2


def test_notebook_backprop_shared_intermediates():
    # Unit test back prop
    #
    # L = d * F
    # F = H + G
    # H = a * I
    # I = a + b
    # G = c * H
    #
    # L = d*a**2 + abd + a**2cd + abcd
    # dL/da = 2ad + bd + 2acd + bcd
    # dL/db = ad + acd
    # dL/dc = a**2d + abd
    # dL/dd = a**2 + ab + a**2c+abc

    a = Tensor(1)
    b = Tensor(2)
    c = Tensor(3)
    d = Tensor(4)

    I = _add(a, b)  # noqa: E741 (the notebook's name)
    H = _mul(a, I)
    G = _mul(c, H)
    F = _add(H, G)
    L = _mul(d, F)

    L.backward()

    assert L.value == 4*(1**2) + 1*2*4 + (1**2)*3*4 + 1*2*3*4
    assert a.derivative.value == (2*1*4 + 2*4 + 2*1*3*4 + 2*3*4), f"{a.derivative=}"


def test_notebook_backprop_tutorial_example():
    # Unit test back-prop
    #
    # Example in https://bclarkson-code.com/posts/llm-from-scratch-scalar-autograd/post.html

    y = Tensor(1)
    m = Tensor(2)
    x = Tensor(3)
    c = Tensor(4)

    left = _sub(y, _add(_mul(m, x), c))
    right = _sub(y, _add(_mul(m, x), c))

    L = _mul(left, right)
    L.backward()

    assert x.derivative.value == 36


# --- The notebook's API -----------------------------------------------------


def test_repr_and_int_values_stay_ints():
    assert repr(Tensor(5)) == "Tensor(5)"
    assert repr(_add(Tensor(1), Tensor(2))) == "Tensor(3)"
    assert repr(_mul(Tensor(2), Tensor(3))) == "Tensor(6)"


def test_derivative_is_none_until_backward_reaches_it():
    a, b, unrelated = Tensor(1.0), Tensor(2.0), Tensor(3.0)
    out = a * b
    assert a.derivative is None and out.derivative is None
    out.backward()
    assert isinstance(a.derivative, Tensor) and a.derivative.value == 2.0
    assert unrelated.derivative is None


def test_derivative_setter_takes_a_tensor_a_number_or_none():
    x = Tensor(1.0)
    x.derivative = Tensor(2.0)
    assert x.derivative.value == 2.0
    x.derivative = 3
    assert x.derivative.value == 3
    x.derivative = None
    assert x.derivative is None


def test_args_and_local_derivatives_are_tensors():
    a, b = Tensor(3.0), Tensor(4.0)
    out = _mul(a, b)
    assert out.args == (a, b)
    assert all(isinstance(d, Tensor) for d in out.local_derivatives)
    assert [d.value for d in out.local_derivatives] == [4.0, 3.0]
    assert Tensor(1.0).args == () and Tensor(1.0).local_derivatives == ()


def test_a_node_built_by_hand_as_in_the_notebook_backpropagates():
    a, b = Tensor(1), Tensor(2)
    ret = Tensor(a.value + b.value)
    ret.args = (a, b)
    ret.local_derivatives = (Tensor(1), Tensor(1))
    ret.backward()
    assert a.derivative.value == 1 and b.derivative.value == 1


def test_plain_numbers_become_constant_args():
    x = Tensor(3.0)
    out = _pow(x, 2)
    assert [arg.value for arg in out.args] == [3.0, 2]
    assert out.args[0] is x and isinstance(out.args[1], Tensor)
    assert [arg.value for arg in _sub(1, x).args] == [1, 3.0]


# --- Values and gradients against finite differences -------------------------

UNARY = {
    "neg": (_neg, lambda x: -x, floats(-10, 10)),
    "exp": (_exp, math.exp, floats(-5, 5)),
    "log": (_log, math.log, floats(0.1, 10)),
    "tanh": (_tanh, math.tanh, floats(-3, 3)),
    "relu": (_relu, lambda x: max(x, 0.0), away_from_zero(0.01, 10)),
    "sigmoid": (_sigmoid, lambda x: 1 / (1 + math.exp(-x)), floats(-10, 10)),
}

BINARY = {
    "add": (_add, lambda a, b: a + b, floats(-10, 10), floats(-10, 10)),
    "sub": (_sub, lambda a, b: a - b, floats(-10, 10), floats(-10, 10)),
    "mul": (_mul, lambda a, b: a * b, floats(-10, 10), floats(-10, 10)),
    "div": (_div, lambda a, b: a / b, floats(-10, 10), away_from_zero(0.5, 10)),
    "pow": (_pow, math.pow, floats(0.1, 5), floats(-3, 3)),
}


@pytest.mark.parametrize("name", UNARY)
def test_unary_op_value_and_gradient(name):
    fn, reference, domain = UNARY[name]

    @GRADCHECK
    @given(domain)
    def check(x):
        assert fn(Tensor(x)).value == pytest.approx(reference(x), rel=1e-12, abs=1e-12)
        check_gradients(fn, x)

    check()


@pytest.mark.parametrize("name", BINARY)
def test_binary_op_value_and_gradient(name):
    fn, reference, domain_a, domain_b = BINARY[name]

    @GRADCHECK
    @given(domain_a, domain_b)
    def check(a, b):
        assert fn(Tensor(a), Tensor(b)).value == pytest.approx(reference(a, b), rel=1e-12, abs=1e-12)
        check_gradients(fn, a, b)

    check()


# Each form is checked at x, y in [0.5, 3], where every one of them is smooth.
BINARY_FORMS = {
    "x + y": lambda x, y: x + y,
    "x - y": lambda x, y: x - y,
    "x * y": lambda x, y: x * y,
    "x / y": lambda x, y: x / y,
    "x ** y": lambda x, y: x ** y,
    "x * (x + y) / y - x": lambda x, y: x * (x + y) / y - x,
}

UNARY_FORMS = {
    "x + 2": lambda x: x + 2,
    "2 + x": lambda x: 2 + x,
    "x - 1": lambda x: x - 1,
    "1 - x": lambda x: 1 - x,
    "x * 2": lambda x: x * 2,
    "2 * x": lambda x: 2 * x,
    "x / 4": lambda x: x / 4,
    "6 / x": lambda x: 6 / x,
    "x ** 3": lambda x: x ** 3,
    "x ** 0.5": lambda x: x ** 0.5,
    "2 ** x": lambda x: 2 ** x,
    "-x": lambda x: -x,
    "x.exp()": lambda x: x.exp(),
    "x.log()": lambda x: x.log(),
    "x.tanh()": lambda x: x.tanh(),
    "x.relu()": lambda x: x.relu(),
    "x.sigmoid()": lambda x: x.sigmoid(),
    "x * x * x": lambda x: x * x * x,
    "_add(2, x)": lambda x: _add(2, x),
    "_sub(x, 1)": lambda x: _sub(x, 1),
    "_mul(3, x)": lambda x: _mul(3, x),
    "_div(6, x)": lambda x: _div(6, x),
    "_pow(x, 2)": lambda x: _pow(x, 2),
    "_pow(2, x)": lambda x: _pow(2, x),
    "_neg(x)": lambda x: _neg(x),
    "_exp(1.5) * x": lambda x: _exp(1.5) * x,
}

FORM_CHECK = settings(max_examples=15, deadline=None)


@pytest.mark.parametrize("form", BINARY_FORMS)
def test_binary_operator_form_gradient(form):
    fn = BINARY_FORMS[form]

    @FORM_CHECK
    @given(floats(0.5, 3), floats(0.5, 3))
    def check(x, y):
        check_gradients(fn, x, y)

    check()


@pytest.mark.parametrize("form", UNARY_FORMS)
def test_unary_operator_form_gradient(form):
    fn = UNARY_FORMS[form]

    @FORM_CHECK
    @given(floats(0.5, 3))
    def check(x):
        check_gradients(fn, x)

    check()


def test_pow_derivative_wrt_exponent_is_nan_for_a_non_positive_base():
    for base in (0.0, -2.0):
        out = _pow(Tensor(base), Tensor(2.0))
        assert out.local_derivatives[0].value == 2 * base
        assert math.isnan(out.local_derivatives[1].value)


def test_pow_at_zero_base():
    assert _pow(Tensor(0.0), 0.5).local_derivatives[0].value == math.inf
    assert _pow(Tensor(0.0), 0).local_derivatives[0].value == 0.0
    assert _pow(Tensor(0.0), 1).local_derivatives[0].value == 1.0
    assert _pow(Tensor(0.0), 2).local_derivatives[0].value == 0.0


def test_pow_gives_floats_like_math_pow():
    assert (Tensor(2) ** 3).value == 8.0 and isinstance((Tensor(2) ** 3).value, float)
    assert (Tensor(-2) ** 3).value == -8.0


# --- Numerics: Python's exceptions, stable edges -----------------------------


@pytest.mark.parametrize("make, error", [
    (lambda: _log(Tensor(0)), ValueError),
    (lambda: _log(Tensor(-1)), ValueError),
    (lambda: Tensor(0.0).log(), ValueError),
    (lambda: _div(Tensor(1), Tensor(0)), ZeroDivisionError),
    (lambda: Tensor(1.0) / 0.0, ZeroDivisionError),
    (lambda: 1 / Tensor(0), ZeroDivisionError),
    (lambda: _exp(Tensor(1000)), OverflowError),
    (lambda: _pow(Tensor(-8.0), 1 / 3), ValueError),
    (lambda: _pow(Tensor(0), Tensor(-1)), ValueError),
    (lambda: Tensor(10) ** 10**10, OverflowError),
    (lambda: 10 ** Tensor(10**10), OverflowError),
], ids=["log0", "log-1", "log0-method", "div0", "div0.0", "rdiv0", "exp1000", "pow-complex",
        "pow-0-neg", "pow-huge-exponent", "rpow-huge-exponent"])
def test_domain_errors_are_pythons(make, error):
    with pytest.raises(error):
        make()


def test_relu_at_zero_has_derivative_zero():
    x = Tensor(0.0)
    out = _relu(x)
    out.backward()
    assert out.value == 0.0 and x.derivative.value == 0.0


@pytest.mark.parametrize("x, value, slope", [(-1000.0, 0.0, 0.0), (1000.0, 1.0, 0.0), (0.0, 0.5, 0.25)])
def test_sigmoid_is_stable_for_large_inputs(x, value, slope):
    leaf = Tensor(x)
    out = _sigmoid(leaf)
    out.backward()
    assert out.value == value and leaf.derivative.value == slope


def test_tanh_derivative_is_one_minus_t_squared():
    t = _tanh(Tensor(0.7))
    assert t.local_derivatives[0].value == 1 - t.value ** 2


# --- Backward: depth, linear time, accumulation ------------------------------


@pytest.mark.parametrize("n", [10**5, pytest.param(10**6, marks=pytest.mark.slow)])  # a million: seconds
def test_million_node_chain_under_the_default_recursion_limit(n):
    limit = sys.getrecursionlimit()
    gc.disable()  # a million new objects would trigger many slow full collections
    try:
        x, one = Tensor(2.0), Tensor(1.0)
        y = x
        for _ in range(n):
            y = y * one
        y.backward()
    finally:
        gc.enable()
    assert sys.getrecursionlimit() == limit
    assert y.value == 2.0 and x.derivative.value == 1.0
    assert one.derivative.value == 2.0 * n


class _OverBudget(Exception):
    pass


def lines_run(fn, budget: int) -> int:
    """How many lines of Python ``fn()`` runs (a count of work, unlike a clock); raise past ``budget``."""
    count = 0

    def trace(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
            if count > budget:
                raise _OverBudget(f"more than {budget} lines run")
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        fn()
    finally:
        sys.settrace(previous)
    return count


def doubling_diamond(n: int):
    """y = x doubled n times by y = y + y: n + 1 nodes, 2n edges, 2**n paths from y to x."""
    x = Tensor(1.0)
    y = x
    for _ in range(n):
        y = y + y
    return x, y


def test_doubling_diamond_is_linear_time():
    x, y = doubling_diamond(50)
    small = lines_run(doubling_diamond(25)[1].backward, budget=200 * 26)  # a per-path walk would run 2**25
    big = lines_run(y.backward, budget=200 * 51)
    assert big <= 2.2 * small  # twice the nodes, about twice the work: linear, not exponential
    assert y.value == 2.0**50 and x.derivative.value == 2.0**50


def graph_with_reuse():
    """L = (a*b) * a + tanh(a*b) + b: the names, each bound to its node."""
    a, b = Tensor(0.5), Tensor(-1.5)
    h = a * b
    t = h.tanh()
    left = h * a
    L = left + t + b
    return {"a": a, "b": b, "h": h, "t": t, "left": left, "L": L}


def test_backward_twice_doubles_every_gradient():
    nodes = graph_with_reuse()
    nodes["L"].backward()
    once = {name: node.derivative.value for name, node in nodes.items()}
    nodes["L"].backward()
    twice = {name: node.derivative.value for name, node in nodes.items()}
    assert twice == {name: 2 * g for name, g in once.items()}
    assert once["L"] == 1.0
    h = nodes["h"].value
    assert once["h"] == pytest.approx(0.5 + (1 - math.tanh(h) ** 2))


def test_backward_from_an_intermediate_node():
    nodes = graph_with_reuse()
    a, b, h, L = nodes["a"], nodes["b"], nodes["h"], nodes["L"]
    h.backward()
    assert (a.derivative.value, b.derivative.value, h.derivative.value) == (b.value, a.value, 1.0)
    assert L.derivative is None and nodes["t"].derivative is None
    da_from_h = a.derivative.value
    L.backward()
    fresh = graph_with_reuse()
    fresh["L"].backward()
    assert a.derivative.value == da_from_h + fresh["a"].derivative.value
    assert h.derivative.value == 1.0 + fresh["h"].derivative.value


def test_nodes_backward_does_not_reach_keep_their_derivative():
    a, b = Tensor(1.0), Tensor(2.0)
    other = b * 3.0
    b.derivative = 7.0
    out = a * 2.0
    out.backward()
    assert b.derivative.value == 7.0 and other.derivative is None


def test_x_times_x_counts_both_edges():
    x = Tensor(3.0)
    out = x * x
    out.backward()
    out.backward()
    assert x.derivative.value == 12.0


# --- The plugin --------------------------------------------------------------


def test_plugin_protocol():
    engine = ReferenceEngine()
    assert engine.name == "reference"
    x = engine.leaf(3)
    out = engine.apply("mul", 2, engine.apply("sub", x, 1))
    assert engine.grad(x) is None
    engine.backward(out)
    assert (engine.value(out), engine.grad(x), engine.grad(out)) == (4.0, 2.0, 1.0)
    assert engine.args(out) == [2.0, 2.0]
    assert engine.local_derivatives(out) == [2.0, 2.0]
    assert all(type(v) is float for v in engine.args(out) + engine.local_derivatives(out))
    engine.backward(out)
    assert engine.grad(x) == 4.0


@pytest.mark.parametrize("op, operands, value", [
    ("add", (1, "x"), 4.0), ("sub", (1, "x"), -2.0), ("mul", ("x", 2), 6.0),
    ("div", (6, "x"), 2.0), ("pow", ("x", 2), 9.0), ("pow", (2, "x"), 8.0),
    ("neg", ("x",), -3.0), ("exp", ("x",), math.exp(3)), ("log", ("x",), math.log(3)),
    ("tanh", ("x",), math.tanh(3)), ("relu", ("x",), 3.0), ("sigmoid", ("x",), 1 / (1 + math.exp(-3))),
])
def test_plugin_applies_every_op_with_numbers_on_either_side(op, operands, value):
    engine = ReferenceEngine()
    x = engine.leaf(3.0)
    out = engine.apply(op, *(x if o == "x" else o for o in operands))
    assert engine.value(out) == pytest.approx(value)
    check_gradients(lambda leaf: engine.apply(op, *(leaf if o == "x" else o for o in operands)), 3.0)


def test_plugin_covers_the_harness_ops():
    assert set(ReferenceEngine.ops) == set(harness.OPS)


def test_plugin_raises_unsupported_for_an_unknown_op():
    with pytest.raises(harness.Unsupported):
        ReferenceEngine().apply("cos", 1.0)


def test_hook_register_engines():
    manager = pluggy.PluginManager("harness")
    manager.add_hookspecs(harness.hookspecs)
    manager.register(plugin)
    engines = []
    manager.hook.register_engines(register=engines.append)
    assert [engine.name for engine in engines] == ["reference"]
    assert isinstance(engines[0], ReferenceEngine)
