"""Patterns across a run claim high confidence only with real groups, no stronger culprit and no veto."""

from __future__ import annotations

from harness.diagnosis import patterns
from harness.diagnosis.graph import Shape
from harness.diagnosis.patterns import MIN_CONTROL, MIN_CONTROL_EXPONENTIAL, MIN_FAILING, VETO_PATHS, Record
from harness.model import Confidence, Mismatch, MismatchKind, Status

TREE = Shape(nodes=5, depth=2, paths=3, reuse=False, complete=True)
REUSE = Shape(nodes=4, depth=2, paths=4, reuse=True, complete=True)


def rec(cid: str, status: Status, shape: Shape = TREE, ratio: float | None = None, backward: int = 1,
        error: str = "") -> Record:
    mismatches = () if ratio is None else (Mismatch(MismatchKind.GRAD, 2.0, 2.0 * ratio, name="x"),)
    return Record(id=cid, status=status, backward=backward, checks_grads=True, shape_of=lambda: shape,
                  mismatches=mismatches, error_type=error)


def under(n: int) -> list[Record]:
    return [rec(f"s::reuse_{i}", Status.FAILED, REUSE, ratio=0.5) for i in range(n)]


def tree_pass(n: int) -> list[Record]:
    return [rec(f"s::tree_{i}", Status.PASSED) for i in range(n)]


def reuse_pass(n: int) -> list[Record]:
    return [rec(f"s::reused_ok_{i}", Status.PASSED, REUSE) for i in range(n)]


def rule(records, culprit: str, explained=frozenset()):
    return next(((d, ids) for d, ids in patterns.find(records, explained) if d.culprit == culprit), None)


def test_the_minimum_sizes():
    assert (MIN_FAILING, MIN_CONTROL, MIN_CONTROL_EXPONENTIAL) == (1, 3, 1)


def test_accumulation_is_high_with_enough_failures_and_controls():
    d, ids = rule(under(2) + tree_pass(MIN_CONTROL), "accumulation")
    assert d.confidence == Confidence.HIGH and ids == ["s::reuse_0", "s::reuse_1"]


def test_one_failing_case_against_one_control_is_not_high_confidence():
    d, _ = rule(under(1) + tree_pass(1), "accumulation")
    assert d.confidence == Confidence.MEDIUM
    d, _ = rule(under(MIN_FAILING) + tree_pass(MIN_CONTROL - 1), "accumulation")
    assert d.confidence == Confidence.MEDIUM


def test_reused_nodes_that_pass_veto_gradient_not_accumulated():
    assert rule(under(2) + tree_pass(5) + reuse_pass(2), "accumulation") is None
    d, _ = rule(under(3) + tree_pass(5) + reuse_pass(2), "accumulation")  # most reused-node cases fail
    assert d.confidence == Confidence.HIGH and "2 case(s) that reuse a node pass" in d.evidence[-1]


def test_a_case_an_op_probe_explains_counts_for_no_pattern():
    # the tanh bug: the reused-node cases that fail all go through tanh, whose probe reproduces them
    records = under(3) + tree_pass(5)
    assert rule(records, "accumulation", {"s::reuse_0", "s::reuse_1", "s::reuse_2"}) is None
    d, ids = rule(records, "accumulation", {"s::reuse_0"})
    assert ids == ["s::reuse_1", "s::reuse_2"] and d.confidence == Confidence.HIGH


def test_a_passing_graph_with_very_many_paths_vetoes_backward_follows_every_path():
    many = Shape(nodes=10500, depth=10000, paths=1 << 62, reuse=True, complete=True)
    doubling = Shape(nodes=51, depth=50, paths=1 << 50, reuse=True, complete=True)
    big_trees = [rec(f"s::chain_{i}", Status.PASSED, Shape(20000, 20000, 1, False, True)) for i in range(4)]
    timed_out = [rec("s::long_mixed_chain", Status.TIMEOUT, many)]
    assert rule(timed_out + big_trees + [rec("s::doubling_50", Status.PASSED, doubling)], "exponential") is None
    assert (1 << 50) >= VETO_PATHS
    d, ids = rule(timed_out + [rec("s::doubling_50", Status.TIMEOUT, doubling)] + big_trees, "exponential")
    assert d.confidence == Confidence.HIGH and ids == ["s::long_mixed_chain", "s::doubling_50"]
    d, _ = rule(timed_out + [rec("s::small", Status.PASSED)], "exponential")
    assert d.confidence == Confidence.MEDIUM  # no graph as big as the timed-out one finished


def test_recursion_needs_a_real_control_group_too():
    deep = Shape(nodes=20000, depth=20000, paths=1, reuse=False, complete=True)
    errors = [rec("s::deep", Status.ERROR, deep, error="RecursionError")]
    d, _ = rule(errors + tree_pass(MIN_CONTROL), "recursion")
    assert d.confidence == Confidence.HIGH
    d, _ = rule(errors + tree_pass(MIN_CONTROL - 1), "recursion")
    assert d.confidence == Confidence.MEDIUM
