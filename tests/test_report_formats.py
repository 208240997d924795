"""The CI formats (junit, gradescope, csv, markdown) and the pytest plugin agree with the JSON report.

JUnit output is validated with lxml against tests/fixtures/junit.xsd, a schema
of the common JUnit XML layout (Jenkins xunit / Surefire) written for these tests.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import ENGINES, ROOT, fixture_engine, run_grade


etree = pytest.importorskip("lxml.etree")

SCHEMA = ROOT / "tests" / "fixtures" / "junit.xsd"
STATUSES_CASES = ROOT / "tests" / "cases" / "statuses.yaml"
PYTEST_OUTCOME = {"passed": "passed", "failed": "failed", "error": "failed", "timeout": "failed",
                  "unsupported": "skipped"}

#: fixture engine -> case files: every status for the notebook's engine; the built-in suites for a bug.
AGREEMENT = {"notebook_verbatim": [STATUSES_CASES], "bug_mul_swapped": []}
NOTEBOOK_STATUSES = {
    "statuses::a_plus_b_times_c": "passed",
    "statuses::second_backward_doubles_output_grad": "failed",
    "statuses::exp_is_unsupported": "unsupported",
    "statuses::deep_chain_recursion": "error",
    "statuses::diamond_paths_timeout": "timeout",
    "statuses::sub_then_mul": "passed",
}


def validate_junit(text: str) -> ET.Element:
    schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
    doc = etree.fromstring(text.encode("utf-8"))
    assert schema.validate(doc), schema.error_log
    return ET.fromstring(text.encode("utf-8"))


def junit_statuses(root: ET.Element) -> dict:
    """case id -> harness status, from our JUnit report."""
    out = {}
    for case in root.iter("testcase"):
        children = [c for c in case if c.tag in ("failure", "error", "skipped")]
        if not children:
            out[case.get("name")] = "passed"
        else:
            (child,) = children
            out[case.get("name")] = {"failure": "failed", "skipped": "unsupported"}.get(child.tag, child.get("type"))
    return out


def markdown_statuses(text: str) -> dict:
    rows = re.findall(r"^\| \S+ (\w+) \| `([^`]+)` \|", text, re.M)
    return {case_id: status for status, case_id in rows}


def pytest_outcomes(engine: Path, cases: list, tmp: Path) -> dict:
    """case id -> pytest outcome, from pytest's own --junitxml of a plugin run (without blame, as the grade run
    it is compared with: blame changes messages, never outcomes, and was most of the run's work)."""
    xml = tmp / "pytest-junit.xml"
    proc = subprocess.run([sys.executable, "-m", "pytest", "--engine", str(engine), "--engine-no-blame",
                           *map(str, cases),
                           "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-q", f"--junitxml={xml}"],
                          capture_output=True, text=True, cwd=tmp, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        suite = case.get("classname").rsplit(".", 1)[-1]
        kinds = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
        out[f"{suite}::{case.get('name')}"] = {"failure": "failed", "skipped": "skipped"}.get(
            kinds[0], kinds[0]) if kinds else "passed"
    return out


@pytest.fixture(scope="module", params=list(AGREEMENT))
def reports(request, tmp_path_factory):
    """Every format's report, and the pytest plugin's outcomes, for one engine."""
    engine = fixture_engine(request.param)
    # Blame's messages are covered elsewhere; here the verdicts, counts and scores must agree.
    args = ["--engine", engine, "--no-blame", *[a for c in AGREEMENT[request.param] for a in ("--cases", c)]]
    # One run writes every format (--report: each as --format would write it, tests/unit/test_cli.py).
    folder = tmp_path_factory.mktemp("reports")
    others = ("junit", "gradescope", "csv", "markdown")
    result = run_grade(*args, "--format", "json", *[a for f in others for a in ("--report", f"{f}:{folder / f}")])
    assert result.code == 1, result.stderr
    assert result.stderr == ""
    out = {"json": result.stdout, **{f: (folder / f).read_bytes().decode() for f in others}}
    out["pytest"] = pytest_outcomes(engine, AGREEMENT[request.param], tmp_path_factory.mktemp("pytest"))
    return out


@pytest.mark.slow  # runs grade or pytest as a subprocess
def test_every_format_and_the_pytest_plugin_agree_on_every_case(reports):
    report = json.loads(reports["json"])["engines"][0]
    want = {c["id"]: c["status"] for c in report["cases"]}
    assert len(set(want.values())) >= 2  # a mix of verdicts, or agreement proves little
    if report["engine"] == "notebook_verbatim":
        assert want == NOTEBOOK_STATUSES

    assert junit_statuses(validate_junit(reports["junit"])) == want

    gradescope = json.loads(reports["gradescope"])
    assert {t["name"]: t["extra_data"]["harness_status"] for t in gradescope["tests"]} == want
    assert {t["name"]: t["status"] for t in gradescope["tests"]} == {
        i: "passed" if s == "passed" else "failed" for i, s in want.items()}
    assert gradescope["score"] == report["score"]

    (row,) = list(csv.DictReader(io.StringIO(reports["csv"])))
    assert {i: row[i] for i in want} == want
    assert float(row["score"]) == report["score"] and float(row["max_score"]) == report["max_score"]
    assert {s: int(row[s]) for s in report["counts"]} == report["counts"]

    assert markdown_statuses(reports["markdown"]) == want
    assert reports["pytest"] == {i: PYTEST_OUTCOME[s] for i, s in want.items()}


@pytest.mark.slow  # runs grade or pytest as a subprocess
def test_junit_carries_messages_counts_and_seconds(reports):
    report = json.loads(reports["json"])["engines"][0]
    root = validate_junit(reports["junit"])
    suites = root.findall("testsuite")
    assert sorted(s.get("name") for s in suites) == sorted(
        f"{report['submission']}::{suite}" for suite in {c["suite"] for c in report["cases"]})
    assert int(root.get("tests")) == len(report["cases"])
    assert int(root.get("failures")) == report["counts"]["failed"]
    assert int(root.get("errors")) == report["counts"]["error"] + report["counts"]["timeout"]
    assert int(root.get("skipped")) == report["counts"]["unsupported"]
    by_id = {c["id"]: c for c in report["cases"]}
    for case in root.iter("testcase"):
        want = by_id[case.get("name")]
        assert re.fullmatch(r"\d+\.\d{3}", case.get("time"))
        for child in case:
            assert child.text == want["message"]
            assert child.get("message") == want["message"].splitlines()[0]
    for suite in suites:  # a suite's time is its cases' times, in seconds
        assert float(suite.get("time")) == pytest.approx(
            sum(float(c.get("time")) for c in suite.iter("testcase")), abs=0.002 * len(suite))
    timeouts = [c for c in root.iter("testcase") if c.find("error[@type='timeout']") is not None]
    assert all(1.0 <= float(c.get("time")) < 1000 for c in timeouts)  # 1 s in seconds, not ms


@pytest.mark.slow  # runs grade or pytest as a subprocess
def test_gradescope_results_follow_the_autograder_spec(reports):
    report = json.loads(reports["json"])["engines"][0]
    doc = json.loads(reports["gradescope"])
    assert set(doc) >= {"score", "execution_time", "output", "tests"}
    assert isinstance(doc["execution_time"], int) and doc["execution_time"] >= 0
    assert doc["score"] == sum(t["score"] for t in doc["tests"])
    by_id = {c["id"]: c for c in report["cases"]}
    for test in doc["tests"]:
        case = by_id[test["name"]]
        assert set(test) >= {"name", "score", "max_score", "status", "output", "visibility", "tags"}
        assert test["max_score"] == case["max_score"]
        assert test["score"] == (case["max_score"] if case["status"] == "passed" else 0)
        assert test["visibility"] == case["visibility"]
        assert test["tags"] == case["tags"]
        # Gradescope's report is for students: a hidden case's output is only whether it passed (issue 14).
        message = "hidden case: failed" if case["visibility"] == "hidden" else case["message"]
        assert test["output"] == ("" if case["status"] == "passed" else f"{case['status']}: {message}")


@pytest.mark.slow  # runs grade or pytest as a subprocess
def test_gradescope_maps_points_and_visibility_per_case():
    result = run_grade("--engine", ENGINES / "notebook_verbatim.py", "--cases", STATUSES_CASES,
                       "--format", "gradescope")
    doc = json.loads(result.stdout)
    tests = {t["name"]: t for t in doc["tests"]}
    assert doc["score"] == 3.0  # a_plus_b_times_c (2 points) + sub_then_mul (1 point)
    assert tests["statuses::a_plus_b_times_c"]["max_score"] == 2.0
    assert tests["statuses::second_backward_doubles_output_grad"]["visibility"] == "hidden"
    assert tests["statuses::second_backward_doubles_output_grad"]["max_score"] == 3.0
    assert tests["statuses::exp_is_unsupported"]["visibility"] == "after_due_date"
    assert tests["statuses::sub_then_mul"]["tags"] == ["ci", "backprop"]
    # The top-level output is shown to students: what to fix first (if anything), then visible tests only,
    # then which class was graded.
    *fixes, counts, graded = doc["output"].split("\n\n")
    assert counts == "2 of 4 visible tests passed; 2 more tests are hidden or shown after the due date"
    assert graded == "graded: notebook_verbatim.py: class Tensor"
    assert all(f.startswith("What to fix first:\n  1. ") for f in fixes)


@pytest.mark.slow  # runs grade or pytest as a subprocess
def test_gradescope_output_explains_a_submission_that_does_not_load():
    result = run_grade("--engine", fixture_engine("raises_in_init"), "--cases", STATUSES_CASES,
                       "--format", "gradescope")
    assert result.code == 1
    doc = json.loads(result.stdout)
    assert doc["score"] == 0
    assert doc["output"].startswith("your submission could not be loaded")
    assert "RuntimeError" in doc["output"]
    assert {t["extra_data"]["harness_status"] for t in doc["tests"]} == {"error"}


@pytest.mark.slow  # runs grade or pytest as a subprocess
def test_json_names_the_submission():
    report = run_grade("--engine", fixture_engine("bug_mul_swapped"), "-k", "a_plus_b_times_c",
                       "--format", "json").report
    engine = report["engines"][0]
    assert (engine["engine"], engine["source"], engine["submission"]) == (
        "bug_mul_swapped", str(fixture_engine("bug_mul_swapped")), "bug_mul_swapped")


def test_junit_schema_is_not_vacuous():
    """The schema rejects documents that dashboards would not read."""
    schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
    good = ('<testsuites><testsuite name="s" tests="1" failures="0" errors="0">'
            '<testcase name="c" time="0.5"/></testsuite></testsuites>')
    assert schema.validate(etree.fromstring(good))
    for bad in (good.replace(' name="c"', ""), good.replace('failures="0"', 'failures="none"'),
                good.replace('time="0.5"', 'time="5 ms"'), good.replace("<testcase", "<test")):
        assert not schema.validate(etree.fromstring(bad)), bad


HOSTILE_MESSAGE_ENGINE = '''
class Value:
    def __init__(self, data):
        self.data, self.grad = data, 0.0
    def __add__(self, other):
        return Value(self.data + getattr(other, "data", other))
    def backward(self):
        raise ValueError("bad \\x00\\x07\\x1b[31m | <script>alert(1)</script> & ]]> **bold** =1+1")
'''


@pytest.mark.slow  # runs grade or pytest as a subprocess
def test_reports_survive_messages_with_markup_and_control_characters(tmp_path):
    engine = tmp_path / "hostile_message.py"
    engine.write_text(HOSTILE_MESSAGE_ENGINE)
    cases = tmp_path / "one.yaml"
    cases.write_text("cases:\n  - {name: add, inputs: {a: 1, b: 2}, output: a + b, expect: {value: 3}}\n")
    # One run: junit on stdout, the others written by --report (each as --format writes it).
    files = {fmt: tmp_path / f"report.{fmt}" for fmt in ("markdown", "csv", "gradescope")}
    result = run_grade("--engine", engine, "--cases", cases, "--format", "junit",
                       *[a for fmt, f in files.items() for a in ("--report", f"{fmt}:{f}")])
    assert result.code == 1, result.stderr
    report = {fmt: f.read_bytes().decode() for fmt, f in files.items()}

    root = validate_junit(result.stdout)
    error = root.find("testsuite/testcase/error")
    assert "<script>alert(1)</script> & ]]>" in error.text
    assert "\\x00\\x07\\x1b[31m" in error.text  # escaped, since XML 1.0 cannot hold them

    markdown = report["markdown"]
    (row,) = [line for line in markdown.splitlines() if "`one::add`" in line and line.startswith("|")]
    assert "<script>" not in markdown and "&lt;script&gt;" in row
    assert len(re.findall(r"(?<!\\)\|", row)) == 5  # still four cells: the message's | is escaped
    assert r"\*\*bold\*\*" in row

    gradebook = report["csv"]
    (data,) = list(csv.DictReader(io.StringIO(gradebook)))
    assert data["one::add"] == "error"

    gradescope = json.loads(report["gradescope"])
    assert "<script>alert(1)</script>" in gradescope["tests"][0]["output"]


@pytest.mark.slow  # runs grade or pytest as a subprocess
@pytest.mark.parametrize("fmt", ["junit", "gradescope", "csv", "markdown"])
def test_output_is_written_atomically_and_nothing_reaches_stdout(tmp_path, fmt):
    target = tmp_path / f"report.{fmt}"
    result = run_grade("--engine", fixture_engine("noisy"), "-k", "a_plus_b", "--format", fmt,
                       "--output", target)
    assert result.code == 0, result.stderr
    assert result.stdout == ""
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary file left behind
    text = target.read_text()
    assert "garbage" not in text and "raw fd" not in text and '"engines"' not in text  # no noise
    if fmt == "junit":
        validate_junit(text)


@pytest.mark.slow  # runs grade or pytest as a subprocess
def test_output_into_a_missing_folder_is_a_clear_error(tmp_path):
    result = run_grade("--engine", fixture_engine("bug_mul_swapped"), "--format", "junit",
                       "--output", tmp_path / "nope" / "report.xml")
    assert result.code == 2
    assert result.stderr.strip() == f"grade: error: --output {tmp_path / 'nope' / 'report.xml'}: " \
                                    f"the folder {tmp_path / 'nope'} does not exist"


@pytest.mark.slow  # runs grade or pytest as a subprocess
def test_unknown_format_lists_the_new_ones():
    result = run_grade("--engine", "reference", "--format", "junitxml")
    assert result.code == 2
    assert "did you mean 'junit'?" in result.stderr
    assert "csv, dot, gradescope, html, json, junit, markdown, text" in result.stderr


RED_NAME_ENGINE = '''
from harness import hookimpl
from plugin_engine import TapeEngine


class Red(TapeEngine):
    name = "\\x1b[31mred\\x1b[0m\\u202e"


@hookimpl
def register_engines(register):
    register(Red())
'''


RED_FORMATS = ("text", "markdown", "html", "junit", "csv", "gradescope", "json")


@pytest.fixture(scope="module")
def red_name_reports(tmp_path_factory) -> tuple:
    """(exit code, format -> report) of one run: text on stdout, every other format written by --report (each
    as --format writes it)."""
    folder = tmp_path_factory.mktemp("red")
    engine = folder / "red_engine.py"
    engine.write_text(RED_NAME_ENGINE)
    shutil.copy(ENGINES / "plugin_engine.py", folder)  # beside it: a sandbox shows the submission's folder only
    files = {fmt: folder / f"report.{fmt}" for fmt in RED_FORMATS[1:]}
    result = run_grade("--engine", engine, "-k", "notebook::a_plus_b_times_c", "-k", "ops::sub_two_leaves",
                       "--format", RED_FORMATS[0], *[a for fmt, f in files.items() for a in ("--report", f"{fmt}:{f}")])
    assert result.code == 0, result.stderr
    return result.code, {RED_FORMATS[0]: result.stdout, **{fmt: f.read_bytes().decode() for fmt, f in files.items()}}


@pytest.mark.slow  # runs grade or pytest as a subprocess
@pytest.mark.parametrize("fmt", RED_FORMATS)
def test_terminal_escapes_in_an_engine_name_reach_no_report(red_name_reports, fmt):
    code, reports = red_name_reports
    report = reports[fmt]
    assert code == 0
    assert "\x1b" not in report and "\u202e" not in report
    if fmt == "json":  # JSON escapes them itself; the name stays as the engine gave it
        assert json.loads(report)["engines"][0]["engine"] == "\x1b[31mred\x1b[0m\u202e"
    elif fmt != "gradescope":  # which names the engine only when a run grades several
        assert "x1b" in report and "u202e" in report
