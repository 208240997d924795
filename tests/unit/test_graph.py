"""The graph shape of a program, worked out from its code alone: nodes, labels, depth, paths, reuse."""

from __future__ import annotations

import json

import pytest

from harness.cases.loader import load_suite
from harness.diagnosis.graph import PATH_CAP, Node, build, shape, shape_of
from harness.running import program


@pytest.fixture
def make(tmp_path):
    """A program from inputs, output and steps, through the real case loader."""
    count = [0]

    def make(inputs: dict, output: str, steps=(), backward: int = 1):
        count[0] += 1
        path = tmp_path / f"c{count[0]}.yaml"
        case = {"name": "c", "inputs": inputs, "output": output, "backward": backward, "expect": {"value": 0}}
        if steps:
            case["steps"] = list(steps)
        path.write_text(json.dumps({"cases": [case]}))  # JSON is YAML
        return program.build(load_suite(path).cases[0])

    return make


def test_nodes_come_in_creation_order_inputs_first(make):
    g = build(make({"a": 1, "b": 2, "c": 3}, "a + b * c"))
    assert g.nodes == [Node("leaf", (), "a"), Node("leaf", (), "b"), Node("leaf", (), "c"),
                       Node("mul", (("node", 1), ("node", 2))), Node("add", (("node", 0), ("node", 3)))]
    assert g.output == ("node", 4) and g.complete
    assert g.users() == [[(4, 0)], [(3, 0)], [(3, 1)], [(4, 1)], []]
    assert g.reachable() == {0, 1, 2, 3, 4}


def test_constants_are_operands_not_nodes(make):
    g = build(make({"a": 1}, "2 * a + 1"))
    assert g.nodes[1:] == [Node("mul", (("const", 2), ("node", 0))), Node("add", (("node", 1), ("const", 1)))]


def test_an_unused_input_is_not_reachable(make):
    g = build(make({"a": 1, "b": 2}, "exp(a)"))
    assert g.reachable() == {0, 2}


def test_steps_name_their_nodes_and_the_last_binding_wins(make):
    g = build(make({"x": 1}, "y", steps=[{"y": "x * x"}, {"z": "y + 1"}, {"y": "z"}]))
    assert [n.name for n in g.nodes] == ["x", "y", "y"]  # x*x keeps 'y'; z's node is renamed 'y'
    assert (g.label(1), g.label(2)) == ("y (node 1)", "y (node 2)")
    assert g.output == ("node", 2)


def test_repeat_unrolls(make):
    g = build(make({"x": 1}, "p", steps=[{"p": "x"}, {"repeat": 4, "steps": [{"p": "p * x"}]}]))
    assert len(g.nodes) == 1 + 4 and shape(make({"x": 1}, "p", steps=[{"p": "x"}, {"repeat": 4,
                                                                         "steps": [{"p": "p * x"}]}])).depth == 4


def test_a_constant_output_with_backward_becomes_a_leaf(make):
    assert build(make({"a": 1}, "3")).output == ("node", 1)
    assert build(make({"a": 1}, "3", backward=0)).output == ("const", 3)


def test_labels_are_names_or_short_expressions(make):
    g = build(make({"a": 1, "b": 2}, "tanh(a * b + a) * exp(b)"))
    assert [g.label(i) for i in range(len(g.nodes))] == [
        "a", "b", "a * b", "a * b + a", "tanh(a * b + a)", "exp(b)", "tanh(a * b + a) * exp(b)"]
    assert g.label(6, max_len=10) == "tanh(a ..."


def test_a_name_bound_to_two_nodes_is_told_apart(make):
    g = build(make({"x": 1}, "p", steps=[{"p": "x + 1"}, {"q": "p * 2"}, {"p": "q"}]))
    names = [g.label(i) for i in range(len(g.nodes)) if g.nodes[i].name]
    assert names == ["x", "p (node 1)", "p (node 2)"]


def test_the_cap_stops_the_walk_and_says_so(make):
    prog = make({"x": 1}, "p", steps=[{"p": "x"}, {"repeat": 1000, "steps": [{"p": "p + x"}]}])
    g = build(prog, cap=10)
    assert len(g.nodes) == 10 and not g.complete and g.output is None
    s = shape(prog, cap=10)
    assert (s.nodes, s.complete) == (10, False)


@pytest.mark.parametrize("inputs, output, steps, nodes, depth, paths, reuse", [
    ({"a": 1}, "a", [], 1, 0, 1, False),
    ({"a": 1, "b": 2}, "a + b", [], 3, 1, 2, False),
    ({"a": 1}, "a * a", [], 2, 1, 2, True),
    ({"a": 1, "b": 2, "c": 3}, "a + b * (a + c)", [], 6, 3, 4, True),
    ({"a": 1}, "-exp(a)", [], 3, 2, 1, False),
    ({"a": 1}, "2 * 3", [], 2, 1, 1, False),  # an op over constants is still a node
])
def test_shape_counts(make, inputs, output, steps, nodes, depth, paths, reuse):
    s = shape(make(inputs, output, steps))
    assert (s.nodes, s.depth, s.paths, s.reuse, s.complete) == (nodes, depth, paths, reuse, True)


def test_a_doubling_chain_has_exponentially_many_paths(make):
    s = shape(make({"x": 1}, "y", steps=[{"y": "x"}, {"repeat": 30, "steps": [{"y": "y + y"}]}]))
    assert (s.nodes, s.depth, s.paths) == (31, 30, 1 << 30)
    assert s.exponential and s.reuse and not s.deep


def test_paths_are_capped(make):
    s = shape(make({"x": 1}, "y", steps=[{"y": "x"}, {"repeat": 100, "steps": [{"y": "y + y"}]}]))
    assert s.paths == PATH_CAP and s.exponential


def test_a_long_chain_is_deep_but_not_exponential(make):
    s = shape(make({"x": 1}, "y", steps=[{"y": "x"}, {"repeat": 1000, "steps": [{"y": "y + 1"}]}]))
    assert (s.depth, s.paths) == (1000, 1)
    assert s.deep and not s.exponential and not s.reuse


def test_reuse_only_counts_nodes_the_output_depends_on(make):
    s = shape(make({"a": 1, "b": 2}, "b", steps=[{"u": "a * a"}]))
    assert not s.reuse


def _agree(prog, cap: int = 50_000) -> None:
    assert shape(prog, cap) == shape_of(build(prog, cap)), prog.id


def test_the_one_pass_shape_agrees_with_the_built_graphs_on_every_builtin_case():
    """shape() keeps numbers, not nodes; shape_of(build()) is its plain statement, and so is each cap."""
    from harness.cases.loader import load_suites

    programs = [program.build(case) for suite in load_suites() for case in suite.cases]
    assert len(programs) > 100
    for prog in programs:
        _agree(prog)
    deep = min((p for p in programs if shape(p).nodes > 500), key=lambda p: shape(p).nodes)
    for cap in (1, 2, 499, shape(deep).nodes, shape(deep).nodes + 1):
        _agree(deep, cap)


@pytest.mark.parametrize("inputs, output, steps, backward", [
    ({"a": 1}, "3", [], 1),            # a constant output is wrapped in a leaf
    ({"a": 1}, "3", [], 0),
    ({"a": 1, "b": 2}, "b", [{"u": "a * a"}], 1),   # reuse off the output's path
    ({"a": 1}, "2 * 3 + a", [], 1),    # an op over constants only
    ({"x": 1}, "y", [{"y": "x"}, {"repeat": 70, "steps": [{"y": "y * y"}]}], 1),  # paths capped
])
def test_the_one_pass_shape_agrees_on_corner_cases(make, inputs, output, steps, backward):
    prog = make(inputs, output, steps, backward)
    for cap in (1, 2, 3, 50_000):
        _agree(prog, cap)
