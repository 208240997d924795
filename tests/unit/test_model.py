"""The typed result model: statuses, scores that never pass their maximum, the case-set fingerprint."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harness.cases.expr import parse
from harness.cases.fingerprint import fingerprint
from harness.cases.loader import Assign, Case, Expect, Tolerance
from harness.model import (
    STATUSES,
    CaseResult,
    EngineResult,
    EngineStatus,
    Mismatch,
    MismatchKind,
    RunResult,
    Status,
)

MODEL = Path(__file__).resolve().parents[2] / "harness" / "model.py"


def test_model_imports_only_the_standard_library():
    tree = ast.parse(MODEL.read_text())
    imported = {n.module if isinstance(n, ast.ImportFrom) else a.name
                for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in (n.names if isinstance(n, ast.Import) else [n])}
    assert imported == {"__future__", "dataclasses", "enum"}


def test_the_two_status_vocabularies():
    assert STATUSES == ("passed", "failed", "error", "timeout", "unsupported")
    assert [s.value for s in EngineStatus] == ["ok", "error", "unsupported", "timeout", "crashed"]
    assert Status("failed") is Status.FAILED and Status.FAILED == "failed" and f"{Status.TIMEOUT}" == "timeout"
    with pytest.raises(ValueError):
        Status("ok")  # an engine status is not a verdict


def case(status: Status, points: float, score: float | None = None) -> CaseResult:
    return CaseResult(id=f"s::{status}{points}", status=status, max_score=points,
                      score=points if score is None else score)


def test_score_is_the_passed_points():
    e = EngineResult("e", "e.py", [case(Status.PASSED, 2), case(Status.FAILED, 3, 0), case(Status.PASSED, 1)])
    assert (e.score, e.max_score, round(e.percent, 2)) == (3, 6, 50.0)
    assert e.counts == {"passed": 2, "failed": 1, "error": 0, "timeout": 0, "unsupported": 0}


def test_score_never_exceeds_max_score_nor_falls_below_zero():
    inflated = EngineResult("e", "e.py", [case(Status.PASSED, 1, score=50.0), case(Status.PASSED, 1)])
    assert inflated.score == inflated.max_score == 2 and inflated.percent == 100.0
    negative = EngineResult("e", "e.py", [case(Status.FAILED, 1, score=-5.0)])
    assert negative.score == 0
    assert EngineResult("e", "e.py", []).score == 0 and EngineResult("e", "e.py", []).percent == 100.0


def test_a_submission_registering_one_engine_many_times_scores_one_engines_worth():
    copies = [EngineResult("e", "sub.py", [case(Status.PASSED, 3)], submission="sub") for _ in range(50)]
    other = EngineResult("f", "other.py", [case(Status.PASSED, 2), case(Status.FAILED, 2, 0)], submission="other")
    assert RunResult(copies).score == 3
    assert RunResult([*copies, other]).score == 5


def test_labels_name_the_engine_when_a_submission_has_several():
    run = RunResult([EngineResult("a", "s.py", [], submission="s"), EngineResult("b", "s.py", [], submission="s"),
                     EngineResult("c", "t.py", [], submission="t")])
    assert run.labels() == ["s/a", "s/b", "t"]
    assert run.sandbox == "none" and run.harness_version == "" and run.cases_fingerprint == ""


@pytest.mark.parametrize(("mismatch", "quantity"), [
    (Mismatch(MismatchKind.VALUE, 1.0, 2.0), "value"),
    (Mismatch(MismatchKind.GRAD, 1.0, None, name="x"), "grad of x"),
    (Mismatch(MismatchKind.ARGS, 1.0, 2.0, index=0), "args[0]"),
    (Mismatch(MismatchKind.LOCAL_DERIVATIVES, 2, 1), "number of local_derivatives"),
])
def test_a_mismatch_names_its_quantity(mismatch, quantity):
    assert mismatch.quantity == quantity


def make_case(name="c", output="a * b", inputs=None, **kw) -> Case:
    fields = {"expect": Expect(value=6, grad={"a": 3, "b": 2}), "steps": (), **kw}
    return Case(suite="s", name=name, inputs=inputs or {"a": 2, "b": 3}, output=parse(output), **fields)


def test_fingerprint_is_stable_and_ignores_order_spacing_and_prose():
    a, b = make_case("a"), make_case("b", output="a + b", expect=Expect(value=5))
    fp = fingerprint([a, b])
    assert fp.startswith("sha256:") and len(fp) == len("sha256:") + 64
    assert fingerprint([b, a]) == fp
    respaced = make_case("a", output="a*b", description="prose", tags=("t",), path="x.yaml", line=7)
    assert fingerprint([respaced, b]) == fp
    assert fingerprint([make_case("a", inputs={"a": 2.0, "b": 3.0}), b]) == fp  # 2 and 2.0 are one number


@pytest.mark.parametrize("change", [
    {"inputs": {"a": 2, "b": 4}}, {"output": "b * a"}, {"expect": Expect(value=6, grad={"a": 3, "b": 2.5})},
    {"expect": Expect(value=6)}, {"backward": 2}, {"points": 2}, {"visibility": "hidden"}, {"timeout": 3.0},
    {"tolerance": Tolerance(rel=1e-3)}, {"name": "d"},
    {"steps": (Assign("t", parse("a * a")),)},
])
def test_fingerprint_changes_with_anything_that_decides_a_grade(change):
    assert fingerprint([make_case(**change)]) != fingerprint([make_case()])


def test_fingerprint_of_nothing_is_defined():
    assert fingerprint([]) == fingerprint([]) != fingerprint([make_case()])
