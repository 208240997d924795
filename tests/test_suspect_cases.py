"""Suspect cases end to end: a wrong hand-written number is the case's fault, in grading and in the zip."""

from __future__ import annotations

import pytest
from conftest import ENGINES, run_grade

pytestmark = pytest.mark.slow

WRONG = """\
cases:
  - name: wrong_grad
    description: a hand-written gradient that is wrong (da = b + 1 = 4)
    inputs: {a: 2, b: 3}
    output: a * b + a
    expect: {value: 8, grad: {a: 5, b: 2}}
  - name: partly_generated
    inputs: {a: 2, b: 3}
    output: a * b
    expect: {value: reference, grad: {a: 2, b: 2}}
  - name: right
    inputs: {x: 3}
    output: x * x
    expect: {value: 9, grad: {x: 6}}
"""


@pytest.fixture
def wrong(tmp_path):
    path = tmp_path / "course.yaml"
    path.write_text(WRONG)
    return path


def test_the_reference_engine_is_not_blamed_for_a_wrong_case(wrong):
    result = run_grade("--engine", "reference", "--cases", wrong)
    assert result.code == 1, result.stderr
    out = result.stdout
    assert "how backward() combines them" not in out and "blame (" not in out and "likely: " not in out
    wrong_grad = out[out.index("FAIL        course::wrong_grad"):out.index("course::partly_generated")]
    assert ("suspect case: the reference engine disagrees with this case's expected numbers (grad of a: the case "
            "expects 5, the reference engine computes 4, the central finite difference 4)") in wrong_grad
    assert "grad of a: the case expects 2, the reference engine computes 3" in out  # the generated case
    assert "suspect cases (2): " in out and "course::wrong_grad, course::partly_generated" in out
    assert "what to fix first" not in out


def test_without_blame_the_reference_run_for_generated_expectations_still_checks_the_rest(wrong):
    result = run_grade("--engine", "reference", "--cases", wrong, "--no-blame")
    out = result.stdout
    assert result.code == 1 and "blame (" not in out
    assert "grad of a: the case expects 2, the reference engine computes 3, the central finite difference 3" in out
    assert "suspect cases (1): " in out and out.rstrip().splitlines()[-4].endswith(": course::partly_generated")


def test_an_engine_failing_only_suspect_cases_gets_no_blame(wrong):
    result = run_grade("--engine", ENGINES / "micrograd_full.py", "--cases", wrong, "--format", "json")
    cases = {c["id"]: c for c in result.report["engines"][0]["cases"]}
    assert cases["course::right"]["status"] == "passed"
    for cid in ("course::wrong_grad", "course::partly_generated"):
        assert [d["culprit"] for d in cases[cid]["diagnosis"]] == ["case"], cid


def test_build_gradescope_refuses_wrong_cases_unless_no_check(wrong, tmp_path):
    target = tmp_path / "autograder.zip"
    result = run_grade("--build-gradescope", target, "--cases", wrong)
    assert result.code == 1 and not target.exists()
    assert "DISAGREE course::wrong_grad" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"grade: not building {target}: the expected numbers of 2 case(s) disagree")
    assert "course::wrong_grad, course::partly_generated" in last and "--no-check" in last
    result = run_grade("--build-gradescope", target, "--cases", wrong, "--no-check")
    assert result.code == 0 and target.exists(), result.stderr


def test_no_check_goes_with_build_gradescope_only():
    result = run_grade("--engine", "reference", "--no-check")
    assert result.code == 2 and "--no-check goes with --build-gradescope" in result.stderr
