"""The built-in case library: its shape, and the exact verdicts it gives classic buggy engines.

All engines are graded on every built-in case in one `grade` run (module-scoped), so the
library is exercised the way an instructor uses it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import BUILTIN_GRADED

from harness.cases.loader import Assign, Repeat, load_suites

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ROOT / "tests" / "engines"

SEEDED = ["bug_sub_sign", "bug_assign_grad", "bug_mul_swapped", "bug_recursive_topo", "bug_tanh",
          "bug_reset_grads", "bug_noop_backward", "notebook_verbatim"]
GRADED = SEEDED + ["micrograd_full", "micrograd.engine", "bug_exp_input"]
assert set(GRADED) <= set(BUILTIN_GRADED)

SUITES = load_suites()
CASES = {c.id: c for s in SUITES for c in s.cases}


def nodes(steps) -> int:
    """How many step bindings run (a repeat counts its block N times)."""
    return sum(1 if isinstance(s, Assign) else s.count * nodes(s.steps) for s in steps)


@pytest.fixture(scope="module")
def graded(builtin_graded):
    """engine name -> {case id: (status, message)} for every built-in case (one session-wide run)."""
    return {name: {c["id"]: (c["status"], c["message"]) for c in builtin_graded[name]["cases"]} for name in GRADED}


def statuses(graded, engine: str) -> dict:
    return {case: status for case, (status, _) in graded[engine].items()}


def not_passed(graded, engine: str) -> dict:
    return {case: status for case, status in statuses(graded, engine).items() if status != "passed"}


# --- the library's shape -----------------------------------------------------------


def test_at_least_80_tagged_cases_in_at_least_5_suites():
    assert len(CASES) >= 80
    names = {s.name for s in SUITES}
    assert {"notebook", "ops", "graphs", "semantics", "numerics", "models"} <= names
    for case in CASES.values():
        own = [t for t in case.tags if t != case.suite]
        assert own, f"{case.id} has no tag beyond its suite"
        assert case.description, f"{case.id} has no description"


def test_graphs_has_the_big_shapes_under_a_short_timeout():
    graphs = [c for c in CASES.values() if c.suite == "graphs"]
    assert any(nodes(c.steps) >= 20000 for c in graphs), "no deep chain of 2*10^4 nodes"
    assert any(nodes(c.steps) >= 9999 and "wide" in c.tags for c in graphs), "no 10^4-term fan-in"
    diamond = CASES["graphs::doubling_diamond_50"]
    assert diamond.timeout is not None and diamond.timeout <= 5
    assert diamond.expect.grad == {"x": 2 ** 50}
    assert "every path" in diamond.description


def test_semantics_has_repeated_forward_only_and_partial_backward():
    semantics = [c for c in CASES.values() if c.suite == "semantics"]
    assert any(c.backward == 2 and c.steps for c in semantics)
    assert any(c.backward == 2 and not c.steps for c in semantics)
    assert any(c.backward == 0 for c in semantics)
    assert any("partial" in c.tags or "intermediate" in c.tags for c in semantics)


def test_numerics_uses_raises_and_non_finite_expectations():
    numerics = [c for c in CASES.values() if c.suite == "numerics"]
    assert any(c.expect.raises for c in numerics)
    assert any(isinstance(c.expect.value, float) and c.expect.value != c.expect.value or
               c.expect.value in (float("inf"), float("-inf")) for c in numerics)


def test_models_build_with_steps_and_repeat():
    models = [c for c in CASES.values() if c.suite == "models"]
    assert len(models) >= 4
    assert any(any(isinstance(s, Repeat) for s in c.steps) for c in models)


# --- the "done when" verdicts -----------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("engine", SEEDED)
def test_every_seeded_bug_fails_some_builtin_case(graded, engine):
    assert {"failed", "error", "timeout"} & set(not_passed(graded, engine).values())


@pytest.mark.slow
def test_sub_sign(graded):
    bad = not_passed(graded, "bug_sub_sign")
    assert set(bad.values()) == {"failed"}
    for case in ("ops::sub_two_leaves", "graphs::x_minus_x", "notebook::sub_tensor_structure",
                 "notebook::squared_error_two_subtrees"):
        assert bad.get(case) == "failed", case
    assert graded["bug_sub_sign"]["graphs::x_minus_x"][1].startswith("grad of x: expected 0, got 2")
    assert "ops::add_two_leaves" not in bad and "notebook::a_plus_b_times_c" not in bad


@pytest.mark.slow
def test_assignment_instead_of_accumulation(graded):
    bad = not_passed(graded, "bug_assign_grad")
    assert set(bad.values()) == {"failed"}
    for case in ("graphs::x_times_x", "graphs::x_plus_x", "graphs::reused_nonleaf", "graphs::wide_fan_in_10000",
                 "notebook::a_plus_b_times_a_plus_c"):
        assert bad.get(case) == "failed", case
    message = graded["bug_assign_grad"]["graphs::x_plus_x"][1]
    assert message.startswith("grad of x: expected 2, got 1")
    assert "blame (high confidence): " in message
    assert "gradient not accumulated on a reused node (= instead of +=)" in message
    assert "likely: " not in message  # the blame replaces the judge's quick guess
    # trees where every node is used once pass, repeated backward() included
    assert "notebook::a_plus_b_times_c" not in bad and "semantics::backward_twice_nested" not in bad


@pytest.mark.slow
def test_mul_derivatives_swapped(graded):
    bad = not_passed(graded, "bug_mul_swapped")
    assert set(bad.values()) == {"failed"}
    for case in ("ops::mul_distinct_operands", "notebook::a_plus_b_times_c", "notebook::mul_tensor_structure"):
        assert bad.get(case) == "failed", case
    assert graded["bug_mul_swapped"]["notebook::a_plus_b_times_c"][1].startswith(
        "grad of b: expected 3, got 2\ngrad of c: expected 2, got 3")
    assert "graphs::x_times_x" not in bad  # a product of equal values hides the bug


@pytest.mark.slow
def test_recursive_topological_sort(graded):
    bad = not_passed(graded, "bug_recursive_topo")
    assert set(bad.values()) == {"error"}
    assert {"graphs::deep_add_chain_20000", "graphs::deep_mul_chain_20000", "graphs::wide_fan_in_10000"} <= set(bad)
    assert all(len(CASES[c].steps) and nodes(CASES[c].steps) >= 1000 for c in bad), bad
    assert graded["bug_recursive_topo"]["graphs::deep_add_chain_20000"][1].startswith(
        "backward recursed too deeply (RecursionError in backward())")


@pytest.mark.slow
def test_wrong_tanh_derivative(graded):
    bad = not_passed(graded, "bug_tanh")
    assert set(bad.values()) == {"failed"}
    assert {"ops::tanh_at_half", "ops::tanh_at_2", "ops::tanh_upstream_scaled"} <= set(bad)
    assert "ops::tanh_at_0" not in bad  # tanh(0) = 0: 1 - t and 1 - t**2 agree
    assert all("tanh" in CASES[c].tags or "tanh(" in str(CASES[c]) for c in bad), bad


@pytest.mark.slow
def test_backward_that_resets_grads(graded):
    bad = not_passed(graded, "bug_reset_grads")
    assert set(bad.values()) == {"failed"}
    assert all(CASES[c].backward >= 2 for c in bad), bad
    assert {"semantics::backward_twice_add", "semantics::backward_twice_nested"} <= set(bad)
    assert "grads reset on every backward()" in graded["bug_reset_grads"]["semantics::backward_twice_add"][1]


@pytest.mark.slow
def test_backward_that_does_nothing(graded):
    bad = not_passed(graded, "bug_noop_backward")
    assert set(bad.values()) == {"failed"}
    assert {"notebook::a_plus_b_times_c", "ops::add_two_leaves", "graphs::deep_add_chain_20000"} <= set(bad)
    assert all(CASES[c].backward >= 1 for c in bad)
    assert "notebook::add_value" not in bad


@pytest.mark.slow
def test_the_notebooks_per_path_dfs(graded):
    result = statuses(graded, "notebook_verbatim")
    assert result["graphs::doubling_diamond_50"] == "timeout"
    message = graded["notebook_verbatim"]["graphs::doubling_diamond_50"][1]
    assert "every path" in message and "exponential" in message
    assert result["graphs::deep_add_chain_20000"] == "error"
    assert result["ops::exp_at_2"] == "unsupported"
    assert {s for c, s in result.items() if c.startswith("notebook::")} == {"passed"}
    assert result["graphs::doubling_diamond_10"] == "passed"  # 2^10 paths is still fast


@pytest.mark.slow
def test_a_correct_micrograd_style_engine_passes_everything(graded):
    # micrograd_full has every op, an iterative topological sort and PyTorch accumulation
    assert not_passed(graded, "micrograd_full") == {}


@pytest.mark.slow
def test_karpathys_micrograd_fails_only_semantics_missing_ops_and_deep_graphs(graded):
    result = statuses(graded, "micrograd.engine")
    bad = not_passed(graded, "micrograd.engine")
    for case, status in bad.items():
        message = graded["micrograd.engine"][case][1]
        if status == "unsupported":
            assert message.split(":")[1].strip() in ("exp", "log", "tanh", "sigmoid"), (case, message)
        elif status == "error":
            assert "recursed too deeply" in message and nodes(CASES[case].steps) >= 1000, case
        else:
            assert status == "failed" and case.startswith("semantics::"), (case, message)
    # the stale-intermediate 3x of a second backward()
    assert result["semantics::backward_twice_nested"] == "failed"
    assert graded["micrograd.engine"]["semantics::backward_twice_nested"][1].startswith(
        "grad of a: expected 24, got 36\ngrad of b: expected 16, got 24")
    assert result["semantics::backward_twice_add"] == "passed"  # no intermediate node: 2x is right
    assert result["graphs::doubling_diamond_50"] == "passed"
    assert result["ops::relu_at_zero"] == "passed"
    assert result["ops::exp_at_2"] == "unsupported"
    assert result["graphs::deep_add_chain_20000"] == "error"


def test_the_docs_list_every_builtin_suite_and_its_tags():
    page = (ROOT / "docs" / "cases.md").read_text()
    start = page.index("## Built-in cases")
    end = page.find("\n## ", start + 1)
    section = page[start:end if end >= 0 else None]
    rows = {line.split("|")[1].strip(" `"): line for line in section.splitlines() if line.startswith("| `")}
    assert set(rows) == {s.name for s in SUITES}
    for suite in SUITES:
        tags = {t for c in suite.cases for t in c.tags}
        named = set(re.findall(r"`(\w+)`", rows[suite.name].split("|")[3]))
        assert named <= tags, (suite.name, named - tags)


def test_numerics_raises_exactly_on_the_domain_cases():
    numerics = [c for c in CASES.values() if c.suite == "numerics"]
    assert {c.id for c in numerics if c.expect.raises} == {c.id for c in numerics if "domain" in c.tags}
