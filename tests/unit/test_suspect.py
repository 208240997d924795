"""Suspect cases: a hand-written expectation the reference engine fails is the case's fault, not the engine's."""

from __future__ import annotations

from harness.cases.loader import load_suite
from harness.diagnosis.blame import mark_suspect
from harness.judging import suspect
from harness.judging.compare import case_result, judge
from harness.model import (
    Confidence,
    Diagnosis,
    DiagnosisKind,
    EngineResult,
    EngineStatus,
    ReportContext,
    RunResult,
)
from harness.reporting import text
from harness.reporting.common import case_lines
from harness.running.observation import Observation


def case(tmp_path, body: str):
    path = tmp_path / "s.yaml"
    path.write_text("cases:\n  - name: c\n" + "".join(f"    {line}\n" for line in body.strip().splitlines()))
    return load_suite(path).cases[0]


def test_a_reference_answer_that_fails_the_case_names_each_quantity(tmp_path):
    c = case(tmp_path, "inputs: {a: 2, b: 3}\noutput: a * b + a\nexpect: {value: 8, grad: {a: 5, b: 3}}")
    ref = Observation(id=c.id, status=EngineStatus.OK, value=8.0, grads={"a": 4.0, "b": 2.0})
    found = suspect.disagreements(c, ref)
    assert found == [("grad of a", 5, 4.0), ("grad of b", 3, 2.0)]
    d = suspect.diagnosis(found, {"grad of a": 4.0000000001})
    assert d.culprit == suspect.CULPRIT == "case" and d.kind == DiagnosisKind.CASE and suspect.is_suspect(d)
    assert ("grad of a: the case expects 5, the reference engine computes 4, the central finite difference 4"
            in d.message)
    assert "grad of b: the case expects 3, the reference engine computes 2, no finite difference" in d.message
    assert "not blamed on the engine" in d.message and "grade --check-cases" in d.message


def test_agreement_and_silence_are_not_suspect(tmp_path):
    c = case(tmp_path, "inputs: {a: 2}\noutput: a * a\nexpect: {value: 4, grad: {a: 4}}")
    assert suspect.disagreements(c, Observation(id=c.id, status=EngineStatus.OK, value=4.0, grads={"a": 4.0})) == []
    for status in (EngineStatus.TIMEOUT, EngineStatus.CRASHED, EngineStatus.UNSUPPORTED):
        assert suspect.disagreements(c, Observation(id=c.id, status=status)) is None


def test_a_case_the_reference_engine_raises_on_is_suspect(tmp_path):
    c = case(tmp_path, "inputs: {a: 0}\noutput: log(a)\nexpect: {value: 0}")
    ref = Observation(id=c.id, status=EngineStatus.ERROR, error_type="ValueError", phase="building the graph",
                      message="math domain error")
    (quantity, want, got), = suspect.disagreements(c, ref)
    assert quantity.startswith("reference engine: the engine raised ValueError") and want is got is None
    assert quantity in suspect.diagnosis([(quantity, want, got)], {}).message


def failed(tmp_path):
    c = case(tmp_path, "inputs: {x: 3}\noutput: x + x\nexpect: {value: 6, grad: {x: 2}}")
    obs = Observation(id=c.id, status=EngineStatus.OK, value=6.0, grads={"x": 1.0})
    return case_result(c, obs, judge(c, obs))


def test_a_suspect_diagnosis_replaces_the_blame_and_the_guess(tmp_path):
    res = failed(tmp_path)
    res.diagnosis = [Diagnosis(DiagnosisKind.PATTERN, "accumulation", "gradient not accumulated", Confidence.HIGH)]
    assert any(line.startswith("blame (high confidence)") for line in case_lines(res))
    d = suspect.diagnosis([("grad of x", 2, 1.0)], {"grad of x": 1.0})
    mark_suspect(res, d)
    lines = case_lines(res)
    assert res.diagnosis == [d] and lines[-1] == d.message
    assert not any(line.startswith(("blame (", "likely: ")) for line in lines)


def test_the_text_report_tells_the_instructor_and_keeps_suspects_out_of_what_to_fix_first(tmp_path):
    s = suspect.diagnosis([("grad of x", 2, 1.0)], {})
    acc = Diagnosis(DiagnosisKind.PATTERN, "accumulation", "gradient not accumulated", Confidence.HIGH)
    cases = [failed(tmp_path) for _ in range(3)]
    for c, cid, d in zip(cases, ("s::a", "s::b", "s::c"), (s, acc, acc)):
        c.id, c.diagnosis = cid, [d]
    report = text.render(RunResult([EngineResult("e", "e.py", cases)]), ReportContext())
    fix_first = report[report.index("what to fix first:"):].splitlines()
    assert fix_first[1] == "  - accumulation: gradient not accumulated (2 cases, e.g. s::b)"
    assert not fix_first[2].startswith("  - ")
    assert ("suspect cases (1): the reference engine disagrees with their expected numbers, so they are not "
            "blamed on the engine; check them with grade --check-cases: s::a") in report
