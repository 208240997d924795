"""Blame's patterns across a run, in process: each rule needs its failing group and, to be sure, a control."""

from __future__ import annotations

import pytest

from harness.diagnosis.graph import PATH_CAP, Shape
from harness.diagnosis.patterns import MIN_CONTROL, Record, find
from harness.model import Confidence, DiagnosisKind, Mismatch, MismatchKind, Status

TREE = Shape(nodes=5, depth=2, paths=3, reuse=False, complete=True)
REUSE = Shape(nodes=5, depth=3, paths=4, reuse=True, complete=True)
DEEP = Shape(nodes=5000, depth=4999, paths=1, reuse=False, complete=True)
DIAMOND = Shape(nodes=61, depth=60, paths=PATH_CAP, reuse=True, complete=True)
BIG = Shape(nodes=5000, depth=20, paths=5000, reuse=True, complete=True)


def grad(expected: float, got: float | None, name: str = "a") -> Mismatch:
    return Mismatch(MismatchKind.GRAD, expected, got, name=name)


def rec(id: str, status: str, shape: Shape = TREE, backward: int = 1, mismatches=(), checks_grads=True,
        error_type="", phase="") -> Record:
    return Record(id, Status(status), backward, checks_grads, lambda: shape, tuple(mismatches), error_type, phase)


def controls(name: str = "tree", n: int = MIN_CONTROL) -> list[Record]:
    """A control group just big enough for high confidence: ``n`` passing single-use cases."""
    return [rec(f"s::{name}{i}", "passed") for i in range(n)]


def culprits(records) -> dict:
    """culprit -> (confidence, explained case ids)."""
    out = {}
    for diagnosis, ids in find(records):
        assert diagnosis.kind is DiagnosisKind.PATTERN and diagnosis.message and diagnosis.evidence
        out[diagnosis.culprit] = (diagnosis.confidence, ids)
    return out


def test_a_clean_run_shows_no_pattern():
    assert find([rec("s::a", "passed"), rec("s::b", "passed", REUSE)]) == []


def test_too_small_grads_on_reused_nodes_while_trees_pass_is_accumulation():
    found = culprits([rec("s::reuse", "failed", REUSE, mismatches=[grad(3, 2)]), *controls()])
    assert found == {"accumulation": (Confidence.HIGH, ["s::reuse"])}
    small = culprits([rec("s::reuse", "failed", REUSE, mismatches=[grad(3, 2)]), *controls(n=MIN_CONTROL - 1)])
    assert small == {"accumulation": (Confidence.MEDIUM, ["s::reuse"])}  # too small a control group


@pytest.mark.parametrize("records", [
    [rec("s::reuse", "failed", REUSE, mismatches=[grad(3, 2)])],                       # no control
    [rec("s::reuse", "failed", REUSE, mismatches=[grad(3, 4)]), rec("s::tree", "passed")],  # too big
    [rec("s::reuse", "failed", REUSE, mismatches=[grad(3, 2)]), rec("s::tree", "passed"),
     rec("s::tree2", "failed", mismatches=[grad(1, 2)])],                              # trees fail too
    [rec("s::reuse", "failed", REUSE, backward=2, mismatches=[grad(3, 2)]), rec("s::tree", "passed")],
])
def test_accumulation_needs_undercounts_on_reuse_and_passing_single_use_controls(records):
    assert "accumulation" not in culprits(records)


def test_recursion_errors_on_deep_graphs_only_is_a_sure_recursion():
    found = culprits([rec("s::deep", "error", DEEP, error_type="RecursionError", phase="backward()"),
                      *controls("small")])
    assert found == {"recursion": (Confidence.HIGH, ["s::deep"])}
    (diagnosis, _), = find([rec("s::deep", "error", DEEP, error_type="RecursionError", phase="backward()")])
    assert diagnosis.confidence is Confidence.MEDIUM  # no shallower case passed to compare with
    assert diagnosis.message.startswith("backward recursed too deeply")


def test_a_recursion_error_while_building_the_graph_says_so():
    (diagnosis, _), = find([rec("s::deep", "error", DEEP, error_type="RecursionError",
                                phase="building the graph"), rec("s::ok", "passed")])
    assert diagnosis.message.startswith("building the graph recursed too deeply")
    assert diagnosis.evidence[0].startswith("RecursionError in building the graph on 1 case(s), graphs up to 4,999")


def test_timeouts_on_graphs_with_exponentially_many_paths_are_exponential():
    found = culprits([rec("s::diamond", "timeout", DIAMOND), rec("s::big", "passed", BIG)])
    assert found == {"exponential": (Confidence.HIGH, ["s::diamond"])}
    (diagnosis, _), = find([rec("s::diamond", "timeout", DIAMOND), rec("s::big", "passed", BIG)])
    assert "61 nodes but 2^64 paths" in diagnosis.evidence[0]
    assert diagnosis.evidence[1] == "s::big has 5,000 nodes and few paths, and it finished (passed)"


def test_a_timeout_on_an_ordinary_graph_is_not_exponential():
    assert culprits([rec("s::slow", "timeout", BIG), rec("s::ok", "passed")]) == {}


def test_grads_growing_past_k_times_after_k_backward_calls_are_stale_grads():
    found = culprits([rec("s::twice", "failed", REUSE, backward=2, mismatches=[grad(2, 3)]),
                      *controls("once")])
    assert found == {"stale_grads": (Confidence.HIGH, ["s::twice"])}


def test_grads_equal_to_one_call_after_k_calls_are_a_reset():
    found = culprits([rec("s::twice", "failed", backward=2, mismatches=[grad(2, 1), grad(-4, -2, "b")]),
                      *controls("once")])
    assert found == {"reset": (Confidence.HIGH, ["s::twice"])}


def test_repeated_backward_patterns_need_single_backward_cases_to_pass():
    records = [rec("s::twice", "failed", backward=2, mismatches=[grad(2, 1)]),
               rec("s::once", "failed", mismatches=[grad(1, 2)])]
    assert culprits(records) == {}
    lonely = culprits([rec("s::twice", "failed", backward=2, mismatches=[grad(2, 1)])])
    assert lonely == {"reset": (Confidence.MEDIUM, ["s::twice"])}


def test_forward_only_cases_never_count_as_gradient_evidence():
    records = [rec("s::reuse", "failed", REUSE, mismatches=[grad(3, 2)]),
               rec("s::fwd", "passed", checks_grads=False)]
    assert "accumulation" not in culprits(records)


def test_shapes_are_worked_out_only_for_the_records_a_rule_looks_at_closely():
    """A deep case's shape takes tens of milliseconds: a run whose failures no shape rule could explain (a
    sign error: ratio -1) needs none, and an undercount needs those of its single-backward() grad cases."""
    asked: list[str] = []

    def lazy(id: str, status: str, shape: Shape = TREE, **kw) -> Record:
        r = rec(id, status, shape, **kw)

        def shape_of() -> Shape:
            asked.append(id)
            return shape
        return Record(r.id, r.status, r.backward, r.checks_grads, shape_of, r.mismatches, r.error_type, r.phase)

    passing = [lazy(f"s::tree{i}", "passed") for i in range(MIN_CONTROL)] + [lazy("s::fwd", "passed",
                                                                                  checks_grads=False)]
    sign = lazy("s::sub", "failed", REUSE, mismatches=[grad(1, -1)])
    assert find([*passing, sign]) == [] and asked == []
    under = lazy("s::reuse", "failed", REUSE, mismatches=[grad(2, 1)])
    (hit, ids), = find([*passing, under])
    assert hit.culprit == "accumulation" and ids == ["s::reuse"]
    assert sorted(set(asked)) == sorted(["s::reuse", *(f"s::tree{i}" for i in range(MIN_CONTROL))])
