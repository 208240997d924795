"""The judge, in process: observations in, typed verdicts with typed mismatches out."""

from __future__ import annotations

import math

import pytest

from harness.cases.expr import parse
from harness.cases.loader import Case, Expect, Tolerance
from harness.judging.compare import case_result, close, judge
from harness.model import EngineStatus, Mismatch, MismatchKind, Status
from harness.running.observation import Observation


def make_case(output="a - b", inputs=None, expect=None, **kw) -> Case:
    return Case(suite="s", name="c", inputs=inputs or {"a": 5, "b": 2}, steps=(), output=parse(output),
                expect=expect or Expect(value=3, grad={"a": 1, "b": -1}), **kw)


def ok(value=3.0, grads=None, structure=None) -> Observation:
    return Observation("s::c", EngineStatus.OK, value=value,
                       grads={"a": 1.0, "b": -1.0} if grads is None else grads, structure=structure)


def test_a_right_answer_passes_with_nothing_to_say():
    verdict = judge(make_case(), ok())
    assert verdict.status is Status.PASSED and verdict.mismatches == () and verdict.message == ""


def test_each_wrong_quantity_is_one_typed_mismatch():
    verdict = judge(make_case(), ok(value=7.0, grads={"a": 1.0, "b": 1.0}))
    assert verdict.status is Status.FAILED
    assert verdict.mismatches == (Mismatch(MismatchKind.VALUE, 3, 7.0),
                                  Mismatch(MismatchKind.GRAD, -1, 1.0, name="b"))
    assert verdict.message == "" and verdict.show_case


def test_a_flipped_sign_is_hinted_not_written_into_a_message():
    verdict = judge(make_case(), ok(grads={"a": -1.0, "b": 1.0}))
    assert verdict.hint.startswith("the sign of the gradient is flipped")
    assert "likely" not in verdict.message


def test_reset_instead_of_accumulated_over_two_backward_calls():
    case = make_case(expect=Expect(grad={"a": 2, "b": -2}), backward=2)
    verdict = judge(case, ok(grads={"a": 1.0, "b": -1.0}))
    assert [m.name for m in verdict.mismatches] == ["a", "b"]
    assert verdict.hint.startswith("gradients were reset instead of accumulated: 2 backward() calls")


def test_a_missing_gradient_is_a_mismatch_with_nothing_got():
    verdict = judge(make_case(), ok(grads={"a": 1.0, "b": None}))
    assert verdict.mismatches == (Mismatch(MismatchKind.GRAD, -1, None, name="b"),)
    assert verdict.hint == "no gradient reached a node that the output depends on"


def test_structure_mismatches_carry_their_index_or_count():
    case = make_case(expect=Expect(args=(5, 2), local_derivatives=(1, -1)))
    verdict = judge(case, ok(structure={"args": [5.0, 2.0], "local_derivatives": [1.0, 1.0]}))
    assert verdict.mismatches == (Mismatch(MismatchKind.LOCAL_DERIVATIVES, -1, 1.0, index=1),)
    short = judge(case, ok(structure={"args": [5.0], "local_derivatives": [1.0, -1.0]}))
    assert short.mismatches == (Mismatch(MismatchKind.ARGS, 2, 1),)
    assert short.mismatches[0].quantity == "number of args"


def test_structure_the_engine_does_not_expose_passes_with_a_note():
    case = make_case(expect=Expect(value=3, args=(5, 2)))
    verdict = judge(case, ok(structure=None))
    assert verdict.status is Status.PASSED and "not checked" in verdict.message


@pytest.mark.parametrize(("status", "verdict_status"), [
    (EngineStatus.TIMEOUT, Status.TIMEOUT), (EngineStatus.CRASHED, Status.ERROR),
    (EngineStatus.UNSUPPORTED, Status.UNSUPPORTED), (EngineStatus.ERROR, Status.ERROR),
])
def test_engine_statuses_map_onto_verdicts(status, verdict_status):
    obs = Observation("s::c", status, message="boom", error_type="ValueError", phase="backward()")
    verdict = judge(make_case(), obs)
    assert verdict.status is verdict_status and verdict.mismatches == ()
    assert "boom" in verdict.message


def test_raising_as_expected_passes_only_in_the_engines_own_code():
    case = make_case(output="log(a)", expect=Expect(raises=True))
    raised = Observation("s::c", EngineStatus.ERROR, error_type="ValueError", phase="backward()")
    assert judge(case, raised).status is Status.PASSED
    reading = Observation("s::c", EngineStatus.ERROR, error_type="TypeError", phase="reading the value")
    assert judge(case, reading).status is Status.FAILED
    stopped = Observation("s::c", EngineStatus.ERROR, error_type="SystemExit", phase="backward()")
    assert judge(case, stopped).status is Status.ERROR
    returned = judge(case, ok(value=-math.inf))
    assert returned.status is Status.FAILED and returned.message.endswith("returned value -inf")
    assert returned.hint.startswith("Python's math raises here")


def test_close_follows_the_contract():
    tol = Tolerance(rel=1e-6, abs=1e-9)
    assert close(1.0 + 1e-7, 1.0, tol) and not close(1.001, 1.0, tol) and not close(None, 0.0, tol)
    assert close(math.nan, math.nan, tol) and not close(0.0, math.nan, tol)
    assert close(math.inf, math.inf, tol) and not close(-math.inf, math.inf, tol) and not close(math.inf, 1.0, tol)


def test_case_result_carries_the_verdict_and_what_the_case_asked():
    case = make_case(points=2)
    failed = case_result(case, ok(grads={"a": 1.0, "b": 1.0}), judge(case, ok(grads={"a": 1.0, "b": 1.0})))
    assert failed.status is Status.FAILED and (failed.score, failed.max_score) == (0.0, 2.0)
    assert failed.context is not None and failed.context.output == "a - b" and failed.context.inputs == {"a": 5, "b": 2}
    passed = case_result(case, ok(), judge(case, ok()))
    assert (passed.score, passed.context) == (2.0, None)
