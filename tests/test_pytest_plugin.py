"""The pytest plugin (entry point ``pytest11``), run in pytester sandboxes."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import pytest
from conftest import ENGINES, ROOT, fixture_engine, run_grade

pytestmark = pytest.mark.slow  # runs grade or pytest as a subprocess

pytest_plugins = ["pytester"]
#: Hypothesis' plugin costs about a second per in-process pytest run; these runs never need it.
QUICK = ("-p", "no:hypothesispytest", "-p", "no:cacheprovider")

STATUSES = ROOT / "tests" / "cases" / "statuses.yaml"
NOTEBOOK = str(ENGINES / "notebook_verbatim.py")


@pytest.fixture
def statuses(pytester):
    """A sandbox holding the statuses suite as statuses.yaml."""
    shutil.copy(STATUSES, pytester.path / "statuses.yaml")
    return pytester


def test_without_engine_the_plugin_is_inert(statuses):
    statuses.makepyfile(test_plain="def test_ok():\n    assert True\n")
    statuses.makefile(".yml", notes="cases: [not, a, case, file]\n")
    result = statuses.runpytest(*QUICK, "--collect-only", "-q")
    assert result.ret == 0
    assert [line for line in result.outlines if "::" in line] == ["test_plain.py::test_ok"]
    assert "autograd-harness" not in result.stdout.str()
    statuses.runpytest(*QUICK).assert_outcomes(passed=1)


def test_the_plugin_is_registered_as_harness(pytester):
    result = pytester.runpytest(*QUICK, "--trace-config", "--co", "-q")
    assert any("harness" in line and "pytest_plugin" in line for line in result.outlines)
    pytester.runpytest(*QUICK, "-p", "no:harness", f"--engine={NOTEBOOK}").stderr.fnmatch_lines(
        ["*unrecognized arguments: --engine*"])


def test_one_item_per_case_with_case_ids(statuses):
    result = statuses.runpytest(*QUICK, f"--engine={NOTEBOOK}", "statuses.yaml", "--collect-only", "-q")
    ids = [line for line in result.outlines if "::" in line]
    assert ids == [f"statuses.yaml::statuses::{name}" for name in (
        "a_plus_b_times_c", "second_backward_doubles_output_grad", "exp_is_unsupported",
        "deep_chain_recursion", "diamond_paths_timeout", "sub_then_mul")]


def test_verdicts_become_outcomes_with_readable_failures(statuses):
    """As the instructor sees them: the hidden and after_due_date cases in full."""
    result = statuses.runpytest(*QUICK, f"--engine={NOTEBOOK}", "statuses.yaml", "-rs", "--engine-audience=instructor")
    result.assert_outcomes(passed=2, failed=3, skipped=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*_ case statuses::second_backward_doubles_output_grad _*",
        "failed: grad of L: expected 2, got 1",
        "  inputs a=2, b=3; output = L; backward() x2; tolerance abs 1e-09 + rel 1e-06",
        "  case: the notebook resets the output's derivative to 1 on every backward()",
    ])
    result.stdout.fnmatch_lines(["*_ case statuses::diamond_paths_timeout _*", "timeout: timed out: no answer within 1 s"])
    result.stdout.fnmatch_lines(["*_ case statuses::deep_chain_recursion _*",
                                 "error: backward recursed too deeply (RecursionError in backward())*"])
    result.stdout.fnmatch_lines(["SKIPPED ?1? statuses.yaml:27: unsupported op: exp: *"])
    assert "Traceback" not in out and "pytest_plugin.py" not in out and "raise CaseFailed" not in out


def test_k_selects_by_case_name_and_tag_and_x_stops(statuses):
    statuses.runpytest(*QUICK, f"--engine={NOTEBOOK}", "statuses.yaml", "-k", "a_plus_b").assert_outcomes(passed=1)
    statuses.runpytest(*QUICK, f"--engine={NOTEBOOK}", "statuses.yaml", "-k", "backprop").assert_outcomes(passed=1)
    result = statuses.runpytest(*QUICK, f"--engine={NOTEBOOK}", "statuses.yaml", "-x")
    result.assert_outcomes(passed=1, failed=1)


def test_junitxml_works_as_usual(statuses):
    statuses.runpytest(*QUICK, f"--engine={NOTEBOOK}", "statuses.yaml", "--junitxml=out.xml")
    cases = {c.get("name"): [k.tag for k in c] for c in ET.parse(statuses.path / "out.xml").iter("testcase")}
    assert cases["a_plus_b_times_c"] == []
    assert cases["exp_is_unsupported"] == ["skipped"]
    assert cases["diamond_paths_timeout"] == ["failure"]


def test_xdist_runs_cases_in_parallel(statuses):
    pytest.importorskip("xdist")
    result = statuses.runpytest_subprocess(*QUICK, f"--engine={NOTEBOOK}", "statuses.yaml", "-n", "2",
                                           "-k", "not diamond_paths_timeout")
    result.assert_outcomes(passed=2, failed=2, skipped=1)


def test_no_path_collects_the_built_in_suites(pytester):
    listed = run_grade("--list").stdout.splitlines()
    result = pytester.runpytest(*QUICK, "--engine", "reference")
    result.assert_outcomes(passed=len(listed))
    result.stdout.fnmatch_lines(["autograd-harness: grading engine reference", "autograd-harness: sandbox: *"])
    result = pytester.runpytest(*QUICK, "--engine", "reference", "--collect-only", "-q")
    assert any(line.endswith("notebook.yaml::notebook::a_plus_b_times_c") for line in result.outlines)


def test_a_bad_case_file_is_one_clear_collection_error(pytester):
    pytester.makefile(".yaml", bad="cases:\n  - name: x\n    inputs: {a: 1}\n    output: a +\n    expect: {value: 1}\n")
    result = pytester.runpytest(*QUICK, f"--engine={NOTEBOOK}", "bad.yaml")
    assert result.ret == 2
    out = result.stdout.str()
    result.stdout.fnmatch_lines(["*bad.yaml:4: case 'x': *"])
    assert "Traceback" not in out and "CaseFileError" not in out


def test_yaml_files_without_cases_are_ignored(pytester):
    pytester.makefile(".yaml", config="name: not a case file\nsteps: [1, 2]\n")
    shutil.copy(STATUSES, pytester.path / "statuses.yaml")
    result = pytester.runpytest(*QUICK, f"--engine={NOTEBOOK}", ".", "--collect-only", "-q")
    assert sum("::" in line for line in result.outlines) == 6
    assert not any("config.yaml" in line for line in result.outlines)


def test_an_engine_that_fails_to_load_fails_every_case(statuses):
    result = statuses.runpytest(*QUICK, f"--engine={fixture_engine('raises_in_init')}", "statuses.yaml")
    result.assert_outcomes(failed=6)
    result.stdout.fnmatch_lines(["error: the submission failed to load: importing * raised RuntimeError*"])


def test_reference_expectations_are_computed_like_grade_does(pytester):
    pytester.makefile(".yaml", oracle=(
        "cases:\n"
        "  - {name: by_reference, inputs: {a: 2, b: 3}, output: a * b + a, expect: {value: reference, grad: reference}}\n"
        "  - {name: wrong_by_reference, inputs: {a: 2}, steps: [{L: a * a}], output: L, backward: 2,\n"
        "     expect: {value: reference, grad: reference}}\n"))
    result = pytester.runpytest(*QUICK, f"--engine={NOTEBOOK}", "oracle.yaml")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["failed: grad of L: expected 2, got 1"])


def test_failures_carry_the_blame_and_the_summary_says_what_to_fix_first(pytester, engine):
    shutil.copy(ROOT / "cases" / "ops.yaml", pytester.path / "ops.yaml")
    buggy = engine("bug_sub_sign")
    result = pytester.runpytest(*QUICK, f"--engine={buggy}", "ops.yaml", "-k", "sub or add")
    result.assert_outcomes(failed=3, passed=result.parseoutcomes()["passed"])
    result.stdout.fnmatch_lines([
        "*_ case ops::sub_two_leaves _*", "failed: grad of b: expected -1, got 1",
        "  blame (high confidence): sub: d(a - b)/db is 1, expected -1 * [[]bug_sub_sign.py:*[]]",
    ])
    result.stdout.fnmatch_lines(["*= what to fix first =*",
                                 "1. sub: d(a - b)/db is 1, expected -1 * [[]bug_sub_sign.py:*[]] (3 cases, e.g. *)"])
    quiet = pytester.runpytest(*QUICK, f"--engine={buggy}", "ops.yaml", "-k", "sub", "--engine-no-blame")
    assert "blame (" not in quiet.stdout.str() and "what to fix first" not in quiet.stdout.str()


def test_what_to_fix_first_under_xdist(pytester, engine):
    pytest.importorskip("xdist")
    shutil.copy(ROOT / "cases" / "ops.yaml", pytester.path / "ops.yaml")
    result = pytester.runpytest_subprocess(*QUICK, f"--engine={engine('bug_sub_sign')}", "ops.yaml", "-k", "sub",
                                           "-n", "2")
    result.stdout.fnmatch_lines(["*= what to fix first =*", "1. sub: *[[]bug_sub_sign.py:*[]] (3 cases, e.g. *)"])


HIDDEN_FIRST = """
suite: course
cases:
  - name: hidden_first
    visibility: hidden
    description: quietly multiplies the secrets
    inputs: {h1: 5.5, h2: 7.25}
    output: h1 * h2 + h1
    expect: {value: 45.375}
  - name: visible_sum
    inputs: {a: 1.5, b: 2.5}
    output: a + b
    expect: {value: 4}
"""


@pytest.mark.parametrize("audience", ["student", "instructor"])
def test_no_visible_tests_output_quotes_a_hidden_case(pytester, audience):
    """Attack 10 under the plugin: the attack engine puts every number its process was sent into each sum's
    error.  The visible case's output holds only its own numbers (hidden cases run after it, in a fresh
    process), and for a student the hidden case shows only that it failed."""
    (pytester.path / "course.yaml").write_text(HIDDEN_FIRST)
    for name in ("attack_hostile_exfiltrate.py", "_attack_hostile_engine.py"):
        shutil.copy(ROOT / "tests" / "attacks" / name, pytester.path / name)
    args = [*QUICK, "--engine=attack_hostile_exfiltrate.py", "--engine-no-blame", "course.yaml", "-rA"]
    result = pytester.runpytest_subprocess(*args, *([f"--engine-audience={audience}"] if audience != "student"
                                                   else []))
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert "seen [1.5, 2.5] sent [1.5, 2.5]" in out  # the visible case's process saw only the visible case
    if audience == "student":
        for secret in ("5.5", "7.25", "45.375", "h1 * h2", "quietly multiplies"):
            assert secret not in out, secret
        assert "hidden case: failed" in out
    else:
        assert "seen [5.5, 7.25] sent [5.5, 7.25]" in out  # the instructor sees the hidden case in full
