""""What to fix first": computed once (``common.fix_first``) on the typed run, shown by every format a
student sees, never with a suspect case, never naming a hidden case in a student's view."""

from __future__ import annotations

import json
import re

from harness.model import (
    CaseResult,
    Confidence,
    Diagnosis,
    DiagnosisKind,
    EngineResult,
    Mismatch,
    MismatchKind,
    ReportContext,
    RunResult,
    Status,
    Where,
)
from harness.reporting import common, gradescope, html, junit, markdown, text
from harness.reporting.audience import Audience, redact

SUB = Diagnosis(DiagnosisKind.OP, "sub", "sub: d(a - b)/db is 1, expected -1", Confidence.HIGH,
                where=Where("engine.py", 78))
ACC = Diagnosis(DiagnosisKind.PATTERN, "accumulation", "gradient not accumulated (= instead of +=)",
                Confidence.HIGH)
MAYBE = Diagnosis(DiagnosisKind.DIVERGENCE, "tanh", "first wrong grad ...", Confidence.MEDIUM)
SUSPECT = Diagnosis(DiagnosisKind.CASE, "case", "suspect case: grad of a is 3 here, the reference says 2",
                    Confidence.HIGH)
GRAD = [Mismatch(MismatchKind.GRAD, -1, 1.0, name="b")]


def case(cid: str, *diagnosis: Diagnosis, visibility: str = "visible", status: Status = Status.FAILED) -> CaseResult:
    return CaseResult(cid, status, 0.0, 1.0, mismatches=list(GRAD), diagnosis=list(diagnosis), visibility=visibility,
                      suite=cid.split("::")[0], name=cid.split("::")[1])


def run_of(*cases: CaseResult) -> RunResult:
    return RunResult([EngineResult("eng", "engine.py", list(cases), submission="eng")])


def test_ranked_by_cases_explained_with_where_and_an_example():
    cases = [case("ops::sub1", SUB), case("ops::sub2", SUB), case("graphs::reuse", ACC), case("ops::tanh", MAYBE)]
    items = common.fix_first(cases)
    assert [(f.culprit, f.cases, f.example, f.where) for f in items] == [
        ("sub", 2, "ops::sub1", Where("engine.py", 78)), ("accumulation", 1, "graphs::reuse", None)]
    assert items[0].text() == "sub: d(a - b)/db is 1, expected -1 [engine.py:78] (2 cases, e.g. ops::sub1)"
    assert items[1].message == "accumulation: gradient not accumulated (= instead of +=)"
    assert common.culprit_lines(cases)[0] == "what to fix first:"
    assert common.fix_first([case("ops::tanh", MAYBE)]) == []
    assert len(common.fix_first([case(f"s::c{k}", Diagnosis(DiagnosisKind.OP, f"op{k}", "m", Confidence.HIGH))
                                 for k in range(5)])) == 3


def test_a_suspect_case_is_never_in_it_and_only_the_instructor_hears_of_it():
    run = run_of(case("ops::sub", SUB), case("ops::odd", SUSPECT))
    assert [f.culprit for f in common.fix_first(run.engines[0].cases)] == ["sub"]
    student = redact(run, Audience.STUDENT)
    for render in (text.render, html.render, markdown.render):
        assert "suspect cases (1)" in render(run, ReportContext())
        assert "suspect cases (1)" not in render(student, ReportContext())
    for shown in (run, student):
        for fmt, render in (("html", html.render), ("markdown", markdown.render), ("gradescope", gradescope.render)):
            section = _fix_section(fmt, render(shown, ReportContext()))
            assert "sub" in section and "odd" not in section and "suspect" not in section, fmt


def _fix_section(fmt: str, out: str) -> str:
    if fmt == "html":
        return re.search(r'<div class="fix-first">.*?</div>', out, re.S).group()  # type: ignore[union-attr]
    if fmt == "gradescope":
        return json.loads(out)["output"].split("\n\n")[0]
    start = out.index("What to fix first")
    return out[start:out.index("| status |")].split("\n\n")[1]  # the numbered list


def test_every_student_format_shows_it_first_with_where():
    run = run_of(case("ops::sub", SUB), case("ops::add", status=Status.PASSED), case("graphs::reuse", ACC))
    for fmt, render in (("html", html.render), ("markdown", markdown.render), ("gradescope", gradescope.render)):
        out = render(run, ReportContext())
        section = _fix_section(fmt, out)
        assert section.index("sub") < section.index("accumulation"), fmt
        assert "engine.py:78" in section, fmt
        assert "d(a - b)/db is 1" in section, fmt
    page = html.render(run, ReportContext())
    assert page.index('class="fix-first"') < page.index("<table>")  # before the case table
    assert 'href="#e0-ops::sub"' in _fix_section("html", page)
    assert json.loads(gradescope.render(run, ReportContext()))["output"].startswith("What to fix first:\n  1. sub:")


def test_no_culprit_no_section():
    run = run_of(case("ops::tanh", MAYBE))
    assert "fix first" not in html.render(run, ReportContext()).lower()
    assert "fix first" not in markdown.render(run, ReportContext()).lower()
    assert "fix first" not in json.loads(gradescope.render(run, ReportContext()))["output"].lower()


def test_a_hidden_case_never_counts_nor_is_named_in_a_student_view():
    run = run_of(case("secret::sub", SUB, visibility="hidden"), case("ops::sub", SUB))
    assert common.fix_first(run.engines[0].cases)[0].cases == 2
    student = redact(run, Audience.STUDENT)
    items = common.fix_first(student.engines[0].cases)
    assert [(f.cases, f.example) for f in items] == [(1, "ops::sub")]
    only_hidden = redact(run_of(case("secret::sub", SUB, visibility="hidden")), Audience.STUDENT)
    for render in (html.render, markdown.render, gradescope.render):
        assert "fix first" not in render(only_hidden, ReportContext()).lower()


def test_where_is_in_every_format_that_shows_blame():
    run = run_of(case("ops::sub", SUB))
    for render in (html.render, markdown.render, gradescope.render, junit.render, text.render):
        out = render(run, ReportContext())
        assert "engine.py:78" in out, render.__module__
