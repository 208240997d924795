"""Hidden stays hidden (issue 11 attack 10, issue 14): a student's report shows a hidden case only as passed
or failed, and no other case's text names it; the instructor's view keeps everything."""

from __future__ import annotations

import pytest

from harness import plugins
from harness.model import (
    CaseContext,
    CaseResult,
    Confidence,
    Diagnosis,
    DiagnosisKind,
    EngineResult,
    GraphPicture,
    Mismatch,
    MismatchKind,
    PictureNode,
    ReportContext,
    RunResult,
    Status,
)
from harness.reporting.audience import Audience, audience_for, redact
from harness.reporting.common import culprit_lines

# What only the hidden case holds: none of it may reach a student.
SECRETS = ("secret_left * secret_right + 77.125", "31.0625", "-0.8125", "4242.5", "the hidden case's own words",
           "accumulate-in-secret")
LATER = ("later_u ** 3 - later_v", "9.4375", "513.25")


def context(inputs: dict, output: str) -> CaseContext:
    return CaseContext(inputs=inputs, output=output, backward=1, tolerance_abs=1e-9, tolerance_rel=1e-6)


def pattern(evidence: tuple) -> Diagnosis:
    return Diagnosis(DiagnosisKind.PATTERN, "accumulation", "gradient not accumulated on a reused node (= instead "
                     "of +=)", Confidence.HIGH, evidence)


def run_with_hidden_cases() -> RunResult:
    hidden = CaseResult(
        id="course::secret_product", status=Status.FAILED, score=0.0, max_score=2.0, message="",
        suite="course", name="secret_product", description="the hidden case's own words",
        tags=("hidden-only-tag",), visibility="hidden",
        mismatches=[Mismatch(MismatchKind.GRAD, expected=4242.5, got=-0.8125, name="secret_left")],
        hint="accumulate-in-secret", context=context({"secret_left": 31.0625, "secret_right": 2.0},
                                                     "secret_left * secret_right + 77.125"),
        diagnosis=[Diagnosis(DiagnosisKind.OP, "mul", "mul: d(secret_left * secret_right)/dsecret_left is -0.8125",
                             Confidence.HIGH), pattern(("course::secret_product gets 31.0625",))],
        graph=GraphPicture(drawn=True, nodes=(PictureNode("n0", "input", "secret_left", 31.0625),), output="n0"))
    later = CaseResult(
        id="course::late_power", status=Status.ERROR, score=0.0, max_score=1.0, message="ValueError: 513.25",
        suite="course", name="late_power", description="", visibility="after_due_date",
        context=context({"later_u": 9.4375, "later_v": 1.0}, "later_u ** 3 - later_v"),
        diagnosis=[pattern(("course::secret_product is wrong too",))])
    visible = CaseResult(
        id="course::x_times_x", status=Status.FAILED, score=0.0, max_score=1.0, suite="course", name="x_times_x",
        mismatches=[Mismatch(MismatchKind.GRAD, expected=6.0, got=3.0, name="x")],
        context=context({"x": 3.0}, "x * x"),
        diagnosis=[pattern(("course::secret_product and course::late_power get too small a gradient "
                            "(secret_left * secret_right + 77.125)", "2 single-use cases pass"))])
    passed = CaseResult(id="course::plain", status=Status.PASSED, score=1.0, max_score=1.0, suite="course",
                        name="plain")
    engine = EngineResult("student", "student.py", [visible, hidden, later, passed], submission="alice")
    return RunResult([engine], duration_s=1.0)


def render(fmt: str, audience: Audience) -> str:
    from harness.reporting.audience import REVEALS_AFTER_DUE_DATE

    reporter = plugins.reporters(plugins.installed_manager())[fmt]
    shown = redact(run_with_hidden_cases(), audience, reveals_after_due_date=fmt in REVEALS_AFTER_DUE_DATE)
    return reporter(shown, ReportContext())


STUDENT_FORMATS = ("text", "json", "junit", "csv", "markdown", "html", "gradescope")


@pytest.mark.parametrize("fmt", STUDENT_FORMATS)
def test_a_students_report_never_quotes_a_hidden_case(fmt):
    text = render(fmt, Audience.STUDENT)
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, f"{fmt} leaks {leaked}"


@pytest.mark.parametrize("fmt", [f for f in STUDENT_FORMATS if f != "gradescope"])
def test_after_due_date_cases_are_hidden_where_the_format_cannot_reveal_them_later(fmt):
    text = render(fmt, Audience.STUDENT)
    assert not [s for s in LATER if s in text]


def test_gradescope_keeps_an_after_due_date_cases_own_details_for_after_the_deadline_but_no_other_test_names_it():
    import json

    report = json.loads(render("gradescope", Audience.STUDENT))
    tests = {t["name"]: t for t in report["tests"]}
    late = tests["course::late_power"]
    assert late["visibility"] == "after_due_date" and "later_u ** 3 - later_v" in late["output"]
    assert "secret" not in late["output"]  # it names no hidden case either
    shown_now = [t["output"] for t in report["tests"] if t["visibility"] == "visible"] + [report["output"]]
    assert not [s for s in LATER + SECRETS + ("late_power",) for o in shown_now if s in o]
    assert tests["course::secret_product"]["output"] == "failed: hidden case: failed"


@pytest.mark.parametrize("fmt", ["text", "markdown", "html", "gradescope"])
def test_a_hidden_case_shows_only_whether_it_passed(fmt):
    assert "hidden case: failed" in render(fmt, Audience.STUDENT)


def test_a_hidden_case_is_reduced_to_its_id_tags_points_and_verdict():
    run = redact(run_with_hidden_cases(), Audience.STUDENT)
    hidden = run.engines[0].cases[1]
    assert hidden == CaseResult(id="course::secret_product", status=Status.FAILED, score=0.0, max_score=2.0,
                                message="hidden case: failed", suite="course", name="secret_product",
                                tags=("hidden-only-tag",), visibility="hidden")
    late = run.engines[0].cases[2]
    assert late.status == Status.ERROR and late.context is None and late.message == "hidden case: failed"


def test_other_cases_blame_says_a_hidden_case_instead_of_naming_it():
    visible = redact(run_with_hidden_cases(), Audience.STUDENT).engines[0].cases[0]
    assert visible.diagnosis[0].evidence == ("a hidden case and a hidden case get too small a gradient "
                                             "(a hidden case)", "2 single-use cases pass")
    assert visible.context == context({"x": 3.0}, "x * x")  # its own details stay


def test_what_to_fix_first_cites_only_cases_the_student_sees():
    run = redact(run_with_hidden_cases(), Audience.STUDENT)
    lines = culprit_lines(run.engines[0].cases)
    assert lines == ["what to fix first:", "  - accumulation: gradient not accumulated on a reused node (= instead "
                                           "of +=) (1 case, e.g. course::x_times_x)"]


def test_the_instructors_view_keeps_everything():
    run = run_with_hidden_cases()
    assert redact(run, Audience.INSTRUCTOR) is run
    text = render("json", Audience.INSTRUCTOR)
    assert all(s in text for s in SECRETS + LATER)


def test_redaction_leaves_scores_and_the_exit_code_alone():
    run = run_with_hidden_cases()
    shown = redact(run, Audience.STUDENT)
    assert [(e.score, e.max_score) for e in shown.engines] == [(e.score, e.max_score) for e in run.engines]
    assert shown.all_passed == run.all_passed and shown.score == run.score


def test_each_format_has_a_documented_default_audience():
    assert {f: audience_for(f) for f in ("text", "json", "junit", "csv", "html", "markdown", "gradescope")} == {
        "text": "instructor", "json": "instructor", "junit": "instructor", "csv": "instructor",
        "html": "student", "markdown": "student", "gradescope": "student"}
    assert audience_for("a_plugin_format") == Audience.STUDENT  # unknown formats: the safe side
    assert audience_for("html", "instructor") == Audience.INSTRUCTOR
