"""End-to-end grading through the `grade` CLI: engines of every style, seeded bugs, hostile engines."""

from __future__ import annotations

import json
import os
import stat

import pytest
from conftest import LAYOUTS

pytestmark = pytest.mark.slow  # runs grade or pytest as a subprocess

NOTEBOOK_GRADIENTS = ["notebook::a_plus_b_times_c", "notebook::squared_error_two_subtrees"]


def test_reference_passes_every_builtin_case(grade):
    result = grade("--engine", "reference", "--format", "json")
    assert result.code == 0, result.stdout[-2000:]
    engine = result.report["engines"][0]
    assert engine["engine"] == "reference"
    assert engine["source"] == "reference"
    assert len(engine["cases"]) >= 80
    assert set(result.statuses().values()) == {"passed"}
    assert engine["score"] == engine["max_score"]


def test_notebook_engine_as_written_passes_the_notebook_suite(grade, engine):
    result = grade("--engine", engine("notebook_verbatim"), "-k", "notebook::", "--format", "json")
    assert result.code == 0
    statuses = result.statuses()
    assert len(statuses) >= 8
    assert set(statuses.values()) == {"passed"}


def test_karpathy_micrograd_grades_with_no_glue(grade):
    result = grade("--engine", "micrograd.engine", "-k", "notebook::", "-k", "graphs::", "--format", "json")
    assert result.code == 1
    engine = result.report["engines"][0]
    assert (engine["engine"], engine["source"]) == ("micrograd", "micrograd.engine")
    statuses = result.statuses()
    for case in NOTEBOOK_GRADIENTS + ["notebook::add_value", "graphs::x_plus_x", "graphs::doubling_diamond_50"]:
        assert statuses[case] == "passed", case
    # micrograd's Value has no args/local_derivatives (checked only where exposed) and no tanh;
    # its topological sort is recursive
    assert statuses["notebook::add_tensor_structure"] == "passed"
    assert "not checked" in result.case("notebook::add_tensor_structure")["message"]
    assert statuses["graphs::diamond_nonlinear"] == "unsupported"
    assert "tanh" in result.case("graphs::diamond_nonlinear")["message"]
    assert statuses["graphs::deep_add_chain_20000"] == "error"
    assert "recursed too deeply" in result.case("graphs::deep_add_chain_20000")["message"]


@pytest.mark.parametrize("name, engine_name", [
    ("notebook_full", "notebook_full"), ("micrograd_full", "micrograd_full"), ("plugin_engine", "tape"),
])
def test_correct_engines_of_every_style_pass(grade, engine, name, engine_name):
    result = grade("--engine", engine(name), "-k", "notebook::", "-k", "ops::", "-k", "graphs::",
                   "--format", "json")
    report = result.report["engines"][0]
    assert report["engine"] == engine_name
    statuses = result.statuses()
    assert set(statuses.values()) == {"passed"}
    assert result.code == 0
    # micrograd-style engines don't expose args/local_derivatives: those parts go unchecked
    structure = [c for c in report["cases"] if c["id"].endswith("_structure")]
    assert structure
    unchecked = {"not checked" in c["message"] for c in structure}
    assert unchecked == {name == "micrograd_full"}


def test_sub_sign_bug(grade, engine):
    result = grade("--engine", engine("bug_sub_sign"), "-k", "notebook::", "-k", "graphs::x_",
                   "--format", "json")
    assert result.code == 1
    statuses = result.statuses()
    assert statuses["notebook::a_plus_b_times_c"] == "passed"
    assert statuses["graphs::x_plus_x"] == "passed"
    assert statuses["notebook::squared_error_two_subtrees"] == "failed"
    assert statuses["notebook::sub_tensor_structure"] == "failed"
    assert statuses["graphs::x_minus_x"] == "failed"
    message = result.case("notebook::squared_error_two_subtrees")["message"]
    assert "grad of x: expected 36, got -36" in message
    assert "tolerance abs 1e-09 + rel 1e-06" in message
    assert "blame (high confidence): sub: d(a - b)/db is 1, expected -1" in message


def test_assignment_instead_of_accumulation(grade, engine):
    result = grade("--engine", engine("bug_assign_grad"), "-k", "graphs::x_", "-k", "notebook::a_plus_b_times_c",
                   "--format", "json")
    statuses = result.statuses()
    assert statuses["notebook::a_plus_b_times_c"] == "passed"
    assert statuses["graphs::x_plus_x"] == "failed"
    message = result.case("graphs::x_plus_x")["message"]
    assert "grad of x: expected 2, got 1" in message
    assert "gradient not accumulated on a reused node (= instead of +=)" in message


def test_recursive_topological_sort_fails_deep_chains_only(grade, engine):
    result = grade("--engine", engine("bug_recursive_topo"), "-k", "graphs::", "--format", "json")
    statuses = result.statuses()
    assert statuses["graphs::deep_add_chain_20000"] == "error"
    assert statuses["graphs::deep_mul_chain_20000"] == "error"
    assert "backward recursed too deeply" in result.case("graphs::deep_mul_chain_20000")["message"]
    assert statuses["graphs::x_plus_x"] == "passed"
    assert statuses["graphs::doubling_diamond_50"] == "passed"


def test_per_path_dfs_times_out_on_the_doubling_diamond(grade, engine):
    result = grade("--engine", engine("notebook_verbatim"), "-k", "graphs::doubling_diamond",
                   "-k", "notebook::a_plus_b_times_c", "--format", "json")
    statuses = result.statuses()
    assert statuses == {"graphs::doubling_diamond_10": "passed", "graphs::doubling_diamond_50": "timeout",
                        "notebook::a_plus_b_times_c": "passed"}
    assert "timed out" in result.case("graphs::doubling_diamond_50")["message"]


def test_a_hanging_case_is_killed_and_grading_goes_on(grade, engine):
    # One hanging case between two others (the notebook's other products of a 3 hang as well: each would only
    # spin for another second)
    result = grade("--engine", engine("hang_in_op"), "-k", "notebook::add_value", "-k", "notebook::a_plus_b_times",
                   "--timeout", "1", "--format", "json")
    statuses = result.statuses()
    # a + b*c with c = 3 hangs in __mul__; the case after it still runs, in a fresh process
    assert statuses == {"notebook::add_value": "passed", "notebook::a_plus_b_times_c": "timeout",
                        "notebook::a_plus_b_times_a_plus_c": "passed"}
    assert list(statuses).index("notebook::a_plus_b_times_c") < len(statuses) - 1


def test_a_crashing_engine_costs_only_its_case(grade, engine):
    result = grade("--engine", engine("exit_in_backward"), "-k", "notebook::", "-k", "ops::sub",
                   "--format", "json")
    statuses = result.statuses()
    negative = [c["id"] for c in result.report["engines"][0]["cases"] if c["status"] == "error"]
    assert negative, "some case has a negative output and calls backward"
    for case in negative:
        assert "exited with code 3" in result.case(case)["message"]
    assert statuses["notebook::a_plus_b_times_c"] == "passed"
    assert statuses["notebook::squared_error_two_subtrees"] == "passed"


def test_segfault_is_reported_by_signal(grade, engine):
    result = grade("--engine", engine("crash_segfault"), "-k", "graphs::doubling_diamond", "-k",
                   "graphs::x_plus_x", "--format", "json")
    statuses = result.statuses()
    # 0.75 * 2**50 > 1000: backward segfaults; the smaller cases pass around it
    assert statuses["graphs::doubling_diamond_50"] == "error"
    assert "killed by SIGSEGV" in result.case("graphs::doubling_diamond_50")["message"]
    assert statuses["graphs::x_plus_x"] == "passed"


def test_a_submission_that_fails_to_load_gets_error_on_every_case(grade, engine):
    result = grade("--engine", engine("syntax_error"), "-k", "notebook::", "--format", "json")
    assert result.code == 1
    assert set(result.statuses().values()) == {"error"}
    message = result.report["engines"][0]["cases"][0]["message"]
    assert "syntax error in" in message and "syntax_error.py" in message


def test_exit_code_and_text_report(grade, engine):
    ok = grade("--engine", "reference", "-k", "notebook::")
    assert ok.code == 0
    assert "reference: " in ok.stdout and "(100.0%)" in ok.stdout
    assert "\033[" not in ok.stdout  # no colour when stdout is not a terminal
    bad = grade("--engine", engine("bug_sub_sign"), "-k", "notebook::")
    assert bad.code == 1
    assert "FAIL" in bad.stdout and "grad of x: expected 36, got -36" in bad.stdout


def test_tag_and_keyword_filters(grade):
    result = grade("--engine", "reference", "--tag", "reuse", "--format", "json")
    assert result.code == 0
    assert "graphs::x_plus_x" in result.statuses()
    assert "notebook::add_value" not in result.statuses()
    listed = grade("--list", "-k", "notebook::a_plus")
    assert listed.code == 0
    assert listed.stdout.splitlines()[0].startswith("notebook::a_plus_b_times_c")


def test_fail_under(grade, engine):
    args = ("--engine", engine("bug_assign_grad"), "-k", "graphs::x_", "-k", "notebook::")
    assert grade(*args).code == 1
    assert grade(*args, "--fail-under", "10").code == 0
    assert grade(*args, "--fail-under", "100").code == 1


def test_output_file_gets_the_report(grade, tmp_path):
    out = tmp_path / "report.json"
    result = grade("--engine", "reference", "-k", "notebook::", "--format", "json", "--output", out)
    assert result.code == 0 and result.stdout == ""
    assert json.loads(out.read_text())["engines"][0]["engine"] == "reference"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask  # readable like any file the user writes


@pytest.mark.parametrize("args, needle", [
    (("--format", "xml", "--engine", "reference"), "unknown --format 'xml'"),
    (("--cases", "does/not/exist.yaml", "--engine", "reference"), "does/not/exist.yaml"),
    (("-k", "notebook::"), "no engine to grade"),
    (("--engine", "reference", "-k", "no-such-case"), "no case matches"),
    (("--engine", "reference", "--timeout", "-1"), "--timeout"),
])
def test_bad_command_lines_exit_2_without_traceback(grade, args, needle):
    result = grade(*args)
    assert result.code == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_multi_file_submission_and_package(grade):
    for spec in (LAYOUTS / "multifile" / "engine.py", f"{LAYOUTS / 'pkg_engine'}/"):
        result = grade("--engine", spec, "-k", "notebook::a_plus", "--format", "json")
        assert set(result.statuses().values()) == {"passed"}, spec


def test_nan_and_infinities_match_only_themselves(grade, tmp_path):
    cases = tmp_path / "nan.yaml"
    cases.write_text("""
cases:
  - {name: nan_is_nan, inputs: {x: 1.0e+200}, steps: [{h: x * x}], output: h - h, expect: {value: .nan}}
  - {name: nan_is_not_zero, inputs: {x: 1.0e+200}, steps: [{h: x * x}], output: h - h, expect: {value: 0}}
  - {name: inf_is_inf, inputs: {x: 1.0e+200}, output: x * x, expect: {value: .inf}}
  - {name: inf_sign_matters, inputs: {x: 1.0e+200}, output: x * x, expect: {value: -.inf}}
  - {name: finite_is_not_inf, inputs: {x: 2}, output: x * x, expect: {value: .inf}}
""")
    result = grade("--engine", "reference", "--cases", cases, "--format", "json")
    assert result.statuses() == {"nan::nan_is_nan": "passed", "nan::nan_is_not_zero": "failed",
                                 "nan::inf_is_inf": "passed", "nan::inf_sign_matters": "failed",
                                 "nan::finite_is_not_inf": "failed"}
    assert "value: expected 0, got nan" in result.case("nan::nan_is_not_zero")["message"]
    # strict JSON: non-finite numbers are strings
    assert result.case("nan::inf_sign_matters")["mismatches"] == [
        {"quantity": "value", "kind": "value", "expected": "-inf", "got": "inf"}]


def test_text_report_ends_with_what_to_fix_first(grade):
    result = grade("--engine", "examples/buggy_engine.py")
    assert result.code == 1
    tail = result.stdout[result.stdout.index("what to fix first:"):].splitlines()
    assert tail[1].startswith("  - accumulation: gradient not accumulated on a reused node (= instead of +=) (")
    assert tail[2].startswith("buggy_engine: ")  # one culprit explains every failure
    clean = grade("--engine", "reference", "-k", "notebook::")
    assert "what to fix first" not in clean.stdout
