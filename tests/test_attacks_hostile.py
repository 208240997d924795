"""Attacks 1, 5 and 11 of issue 11 through the ``grade`` CLI, with the attack_hostile_ engines of
tests/attacks/ on tests/cases/attacks.yaml (add and mul only)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ENGINES, ROOT, fixture_engine, run_grade

pytestmark = pytest.mark.slow

ATTACKS = ROOT / "tests" / "attacks"
CASES = ROOT / "tests" / "cases" / "attacks.yaml"
FAST = ("--timeout", "20", "--load-timeout", "20", "--no-blame")
MB = 1 << 20

# Runs grade in this process and reports its own peak resident memory (VmHWM): that of the grader alone,
# not of the engine processes (which getrusage(RUSAGE_CHILDREN) would mix in).
_PEAK = """
import sys
from harness import cli
code = cli.main(sys.argv[2:])
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
open(sys.argv[1], "w").write(str(int(hwm.split()[1]) * 1024))
sys.exit(code)
"""


def attack(name: str) -> str:
    return str(ATTACKS / f"attack_hostile_{name}.py")


def grade_with_peak(tmp_path: Path, *args) -> tuple[int, dict, int]:
    """(exit code, JSON report, the grader's peak RSS in bytes) of one grade run."""
    peak, report = tmp_path / "peak", tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-c", _PEAK, str(peak), *map(str, args), "--format", "json",
                           "--output", str(report)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(report.read_text()), int(peak.read_text())


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc for VmHWM")
def test_a_40_mb_import_error_costs_the_grader_under_50_mb_and_every_case_a_capped_message(tmp_path):
    _, base, baseline = grade_with_peak(tmp_path, "--engine", ENGINES / "syntax_error.py", "--cases", CASES,
                                        *FAST)
    assert base["engines"][0]["load_error"]
    _, report, peak = grade_with_peak(tmp_path, "--engine", attack("huge_import_error"), "--cases", CASES, *FAST)
    assert peak - baseline < 50 * MB, f"the grader grew by {(peak - baseline) / MB:.0f} MB"
    engine = report["engines"][0]
    assert "raised RuntimeError: xxxx" in engine["load_error"] and len(engine["load_error"]) <= 4000
    assert "[cut: 41,943,040 characters in all]" in engine["load_error"]
    assert [c["status"] for c in engine["cases"]] == ["error"] * 4
    assert all(len(c["message"]) <= 4100 for c in engine["cases"])


def test_a_40_mb_import_error_costs_the_other_submissions_nothing(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("huge_import_error", "escape_name"):
        (subs / f"{name}.py").write_text(Path(attack(name)).read_text())
    (subs / "_attack_hostile_engine.py").write_text((ATTACKS / "_attack_hostile_engine.py").read_text())
    code, report, _ = grade_with_peak(tmp_path, "--submissions", subs, "--cases", CASES, "--jobs", "2", *FAST)
    by_sub = {e["submission"]: e for e in report["engines"]}
    assert code == 1 and set(by_sub) == {"huge_import_error", "escape_name"}
    assert [c["status"] for c in by_sub["escape_name"]["cases"]] == ["passed", "error", "passed", "passed"]
    assert by_sub["huge_import_error"]["score"] == 0


def test_huge_names_types_and_messages_at_run_time_are_capped(tmp_path):
    _, report, _ = grade_with_peak(tmp_path, "--engine", attack("big_replies"), "--cases", CASES, *FAST)
    engines = report["engines"]
    assert all(len(e["engine"]) <= 80 for e in engines)
    first = engines[0]
    assert [c["status"] for c in first["cases"]] == ["passed", "error", "error", "error"]
    assert all(len(c["message"]) <= 3000 for c in first["cases"])


def test_an_engine_registered_50_times_is_graded_once_and_the_report_says_so(grade):
    """Attack 1: the same engine registered 50 times scores once."""
    result = grade("--engine", attack("many_engines"), "--cases", CASES, *FAST, "--format", "json")
    engines = result.report["engines"]
    assert result.code == 0 and [e["engine"] for e in engines] == ["copy0"]
    assert (engines[0]["score"], engines[0]["max_score"]) == (4, 4)
    assert engines[0]["ignored_engines"] == [f"copy{i}" for i in range(1, 32)]  # 32 names are read
    text = grade("--engine", attack("many_engines"), "--cases", CASES, *FAST).stdout
    assert ("graded engine copy0; the submission registers 31 more engine(s), not graded (copy1, copy2, copy3, "
            "copy4, copy5, ...): grade another with --engine-name NAME") in text


def test_the_gradescope_score_of_a_submission_never_exceeds_its_maximum(grade):
    result = grade("--engine", attack("many_engines"), "--cases", CASES, *FAST, "--format", "gradescope")
    report = json.loads(result.stdout)
    assert report["score"] == 4 and len(report["tests"]) == 4
    assert "graded engine copy0" in report["output"]


def test_engine_name_picks_the_engines_to_grade_and_the_total_stays_capped(grade):
    result = grade("--engine", attack("many_engines"), "--cases", CASES, *FAST, "--format", "gradescope",
                   "--engine-name", "copy7", "--engine-name", "copy0", "--engine-name", "absent")
    report = json.loads(result.stdout)
    names = [t["name"].split(":")[0] for t in report["tests"]]
    assert names == ["attack_hostile_many_engines/copy7"] * 4 + ["attack_hostile_many_engines/copy0"] * 4 + [
        "attack_hostile_many_engines/absent"] * 4
    assert report["score"] == 4  # 4 + 4 + 0 points, capped at one engine's 4
    absent = report["tests"][-1]
    assert absent["output"].startswith("error: the submission registers no engine named 'absent' "
                                       "(--engine-name); it registers 'copy0', 'copy1'")
    csv_rows = grade("--engine", attack("many_engines"), "--cases", CASES, *FAST, "--format", "csv",
                     "--engine-name", "copy7").stdout.splitlines()
    assert len(csv_rows) == 2 and csv_rows[1].startswith("copy7,copy7,")


ESCAPES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
FORMATS = ("text", "json", "junit", "gradescope", "markdown", "csv", "html")


@pytest.fixture(scope="module")
def escape_name_reports(tmp_path_factory) -> tuple:
    """Attack 11's run: (result, format -> the report file's text), every format written by one run (--output
    for text, --report for the others: each as ``--format F --output FILE`` writes it)."""
    folder = tmp_path_factory.mktemp("escape-name")
    reports = [a for fmt in FORMATS[1:] for a in ("--report", f"{fmt}:{folder / f'report.{fmt}'}")]
    result = run_grade("--engine", attack("escape_name"), "--cases", CASES, *FAST, "--format", FORMATS[0],
                       "--output", folder / f"report.{FORMATS[0]}", *reports)
    texts = {}
    for fmt in FORMATS:
        with open(folder / f"report.{fmt}", newline="", encoding="utf-8") as f:
            texts[fmt] = f.read()
    return result, texts


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_engine_named_with_terminal_escapes_reaches_no_report_raw(escape_name_reports, fmt):
    """Attack 11: no control character of the engine's name or its messages reaches any format raw."""
    result, texts = escape_name_reports
    assert result.code == 1, result.stderr
    text = texts[fmt]
    if fmt == "csv":
        text = text.replace("\r\n", "\n")  # RFC 4180's line ends
    assert "pwned" in text  # the name is shown, escaped
    assert not ESCAPES.search(text), ESCAPES.search(text)
    assert not ESCAPES.search(result.stdout + result.stderr)


HIDDEN_CASES = """
suite: course
cases:
  - name: x_times_x
    inputs: {x: 3}
    output: x * x
    expect: {value: 9, grad: {x: 6}}
  - name: single_use
    inputs: {a: 2, b: 5}
    output: a * b
    expect: {value: 10, grad: {a: 5, b: 2}}
  - name: secret_square
    visibility: hidden
    description: quietly squares the secret
    inputs: {secret_a: 1.375, secret_b: 0.0625}
    output: secret_a * secret_a + secret_b
    expect: {value: 1.953125, grad: {secret_a: 2.75, secret_b: 1}}
"""


#: Attack 10's runs: audience (None: each format's own) -> (--format, the formats written with --report).
HIDDEN_RUNS = {None: ("html", ("markdown", "gradescope")), "student": ("text", ("json",)),
               "instructor": ("text", ("json", "html", "markdown", "gradescope"))}


@pytest.fixture(scope="module")
def hidden_case_reports(tmp_path_factory) -> dict:
    """(format, audience) -> report, of a failing hidden case: three runs (HIDDEN_RUNS), each writing several
    formats (--report writes each as --format would, for its format's audience unless --audience is given)."""
    folder = tmp_path_factory.mktemp("hidden")
    cases = folder / "course.yaml"
    cases.write_text(HIDDEN_CASES)
    args = ["--engine", fixture_engine("bug_assign_grad", folder), "--cases", cases, "--timeout", "20"]
    out = {}
    for audience, (fmt, others) in HIDDEN_RUNS.items():
        files = {o: folder / f"{audience}.{o}" for o in others}
        result = run_grade(*args, "--format", fmt, *[a for o, f in files.items() for a in ("--report", f"{o}:{f}")],
                           *(["--audience", audience] if audience else []))
        assert result.code == 1, result.stderr
        out[fmt, audience] = result.stdout
        out.update({(o, audience): f.read_text() for o, f in files.items()})
    return out


@pytest.mark.parametrize("fmt, audience", [("html", None), ("markdown", None), ("gradescope", None),
                                           ("text", "student"), ("json", "student")])
def test_no_student_facing_report_quotes_a_hidden_case(hidden_case_reports, fmt, audience):
    """Attack 10: a failing hidden case (blamed, with a pattern across cases) is only 'hidden case: failed'."""
    report = hidden_case_reports[fmt, audience]
    for secret in ("1.375", "0.0625", "2.75", "1.953125", "secret_a", "quietly squares"):
        assert secret not in report, secret
    assert "hidden case: failed" in report
    assert "1.375" in hidden_case_reports[fmt, "instructor"]  # the instructor sees the hidden case in full


EXFILTRATION_CASES = """
suite: course
cases:
  - name: hidden_first
    visibility: hidden
    inputs: {h1: 5.5, h2: 7.25}
    output: h1 * h2 + h1
    expect: {value: 45.375}
  - name: later_too
    visibility: after_due_date
    inputs: {l1: 9.125}
    output: l1 + l1
    expect: {value: 18.25}
  - name: visible_sum
    inputs: {a: 1.5, b: 2.5}
    output: a + b
    expect: {value: 4}
"""


def test_a_submission_cannot_carry_hidden_inputs_into_a_visible_cases_output(grade, tmp_path):
    """Attack 10 from inside the engine: what a visible case shows comes from a process that never saw a
    hidden program (hidden cases run after the visible ones, in a fresh process)."""
    cases = tmp_path / "course.yaml"
    cases.write_text(EXFILTRATION_CASES)
    result = grade("--engine", attack("exfiltrate"), "--cases", cases, *FAST, "--format", "json")
    visible = result.case("course::visible_sum")
    assert visible["status"] == "error"
    assert "seen [1.5, 2.5] sent [1.5, 2.5]" in visible["message"]
    hidden = result.case("course::later_too")  # it did run, in its own process, and saw the hidden programs
    assert "9.125" in hidden["message"] and "5.5" in hidden["message"]
