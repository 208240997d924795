"""Blame: failing cases name the op or the habit of backward() at fault, with a confidence."""

from __future__ import annotations

import textwrap

import pytest

from conftest import ROOT, fixture_engine, run_grade

pytestmark = pytest.mark.slow  # runs grade or pytest as a subprocess

SHAPES = ROOT / "tests" / "cases" / "feedback"
BUGGY = ("bug_sub_sign", "bug_tanh", "bug_mul_swapped", "bug_assign_grad", "bug_recursive_topo",
         "notebook_verbatim", "micrograd_like", "bug_reset_grads", "bug_noop_backward")
CORRECT = ("micrograd_full", "notebook_full", "plugin_engine")


@pytest.fixture(scope="module")
def report():
    """One run over every fixture engine: engine file stem -> {case name -> case}."""
    specs = [str(fixture_engine(name)) for name in BUGGY + CORRECT]
    args = [a for s in specs for a in ("--engine", s)]
    result = run_grade(*args, "--cases", SHAPES, "--format", "json")
    assert result.code == 1, result.stderr
    return {e["source"].rsplit("/", 1)[-1][:-3]: {c["name"]: c for c in e["cases"]}
            for e in result.report["engines"]}


def culprits(case: dict) -> dict:
    """culprit -> confidence of each diagnosis of a case."""
    return {d["culprit"]: d["confidence"] for d in case["diagnosis"]}


def test_sub_sign_is_blamed_on_subs_second_operand(report):
    case = report["bug_sub_sign"]["sub_two_leaves"]
    assert culprits(case) == {"sub": "high"}
    assert "blame (high confidence): sub: d(a - b)/db is 1, expected -1 (sub alone at a=5, b=2)" in case["message"]


def test_a_wrong_op_deep_in_the_graph_is_probed_at_its_own_operand_values(report):
    case = report["bug_sub_sign"]["sub_times_c"]
    assert culprits(case) == {"sub": "high"}
    # The node-by-node comparison agrees with the probe and is kept as evidence.
    diagnosis = case["diagnosis"][0]
    assert any("first wrong grad from the output down: b has grad 3, expected -3" in e
               for e in diagnosis["evidence"])


def test_wrong_tanh_derivative_is_blamed_on_tanh(report):
    case = report["bug_tanh"]["tanh_half"]
    assert culprits(case) == {"tanh": "high"}
    assert "tanh: d(tanh(a))/da is 0.5378828427, expected 0.786447733" in case["message"]


def test_swapped_mul_derivatives_are_blamed_on_mul_and_nothing_else(report):
    cases = report["bug_mul_swapped"]
    for name in ("mul_two_leaves", "a_plus_b_times_c", "reuse_through_product", "product_twice"):
        assert cases[name]["status"] == "failed"
        assert culprits(cases[name]) == {"mul": "high"}, name
    assert "mul: d(a * b)/da is 2, expected 3 (mul alone at a=2, b=3)" in cases["mul_two_leaves"]["message"]


def test_overwritten_grads_are_blamed_on_accumulation(report):
    cases = report["bug_assign_grad"]
    for name in ("x_plus_x", "reuse_through_product"):
        assert culprits(cases[name]) == {"accumulation": "high"}, name
        assert "gradient not accumulated on a reused node (= instead of +=)" in cases[name]["message"]
    pattern = next(d for d in cases["x_plus_x"]["diagnosis"] if d["kind"] == "pattern")
    assert any("where every node is used once pass" in e for e in pattern["evidence"])
    assert cases["add_three"]["status"] == "passed"


def test_recursive_topological_sort_is_blamed_on_recursion(report):
    case = report["bug_recursive_topo"]["deep_chain"]
    assert case["status"] == "error"
    assert culprits(case) == {"recursion": "high"}
    assert "backward recursed too deeply" in case["message"]


def test_per_path_dfs_is_blamed_on_exponential_paths_and_recursion(report):
    cases = report["notebook_verbatim"]
    diamond = cases["doubling_diamond"]
    assert diamond["status"] == "timeout"
    assert culprits(diamond) == {"exponential": "high"}
    assert "backward follows every path (exponential)" in diamond["message"]
    assert "2^40 paths" in diamond["diagnosis"][0]["evidence"][0]
    assert culprits(cases["deep_chain"]) == {"recursion": "high"}


def test_micrograd_second_backward_is_blamed_on_stale_grads(report):
    case = report["micrograd_like"]["product_twice"]
    assert culprits(case) == {"stale_grads": "high", "backward": "high"}
    assert "re-propagates stale intermediate grads" in case["message"]
    assert "it is the output, whose grad after backward() x2 must be 2" in case["message"]


def test_grads_reset_by_backward_are_blamed_on_reset(report):
    case = report["bug_reset_grads"]["product_twice"]
    assert culprits(case)["reset"] == "high"
    assert "grads reset on every backward()" in case["message"]


def test_a_backward_that_does_nothing_is_not_blamed_on_the_ops(report):
    case = report["bug_noop_backward"]["a_plus_b_times_c"]
    assert culprits(case) == {"backward": "high"}
    assert "leaves the output's own grad at 0, expected 1" in case["message"]


def test_no_pattern_is_claimed_without_its_evidence(report):
    # Swapped mul derivatives make a backward: 2 case fail with grads above 2x; that is not micrograd's
    # stale-grad habit, because single-backward cases fail too.
    assert "stale_grads" not in culprits(report["bug_mul_swapped"]["product_twice"])
    # Overwritten grads are never blamed on an op: every op is right alone.
    for case in report["bug_assign_grad"].values():
        assert set(culprits(case)) <= {"accumulation"}


@pytest.mark.parametrize("name", CORRECT)
def test_correct_engines_pass_without_diagnoses(report, name):
    for case in report[name].values():
        assert case["status"] == "passed", case["message"]
        assert case["diagnosis"] == []


def test_failing_cases_carry_their_graph_with_the_divergent_node(report):
    graph = report["bug_sub_sign"]["sub_times_c"]["graph"]
    assert graph["drawn"] and graph["traced"]
    nodes = {n["label"]: n for n in graph["nodes"]}
    assert nodes["b"] == {"id": "n1", "op": "leaf", "label": "b", "value": 2.0, "expected_grad": -3.0,
                          "got_grad": 3.0, "divergent": True}
    assert graph["first_divergent"] == "n1"
    assert graph["culprit"] == nodes["a - b"]["id"]  # the op that handed b its wrong grad is the highlight
    assert not nodes["a - b"]["divergent"] and nodes["a - b"]["op"] == "sub"
    assert ["n3", "n4", 0] in graph["edges"] and graph["output"] == "n4"


def test_untraced_failures_are_drawn_from_the_case_code(report):
    graph = report["notebook_verbatim"]["doubling_diamond"]["graph"]
    assert graph["drawn"] and not graph["traced"]
    assert len(graph["nodes"]) == 41
    assert report["bug_recursive_topo"]["deep_chain"]["graph"] == {"drawn": False, "why": "more than 60 nodes"}


def test_text_report_shows_the_blame(grade, engine):
    result = grade("--engine", engine("bug_sub_sign"), "--cases", SHAPES, "-k", "sub_two_leaves")
    assert result.code == 1
    assert "| blame (high confidence): sub: d(a - b)/db is 1, expected -1" in result.stdout


def test_builtin_suites_blame_sub(grade, engine):
    result = grade("--engine", engine("bug_sub_sign"), "--format", "json", "-k", "ops::sub_two_leaves")
    assert {d["culprit"] for d in result.case("ops::sub_two_leaves")["diagnosis"]} == {"sub"}


def test_no_blame_skips_the_probes(grade, engine):
    result = grade("--engine", engine("bug_sub_sign"), "--cases", SHAPES, "--format", "json", "--no-blame")
    case = result.case("shapes::sub_two_leaves")
    assert case["status"] == "failed" and case["diagnosis"] == [] and "blame" not in case["message"]


def test_engines_hiding_intermediate_grads_still_get_probes(grade, tmp_path):
    engine = tmp_path / "opaque.py"
    engine.write_text(textwrap.dedent('''
        from harness import hookimpl, Unsupported

        class Opaque:
            """Leaves only: grad() of an intermediate node is None.  Seeded bug: d(a-b)/db = +1."""
            name = "opaque"
            LOCAL = {"add": lambda a, b: (1, 1), "sub": lambda a, b: (1, 1), "mul": lambda a, b: (b, a)}
            FORWARD = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b}

            def leaf(self, value):
                return {"value": value, "args": (), "local": (), "grad": 0.0, "leaf": True}

            def apply(self, op, *xs):
                if op not in self.FORWARD:
                    raise Unsupported(op)
                xs = [x if isinstance(x, dict) else self.leaf(x) for x in xs]
                values = [x["value"] for x in xs]
                return {"value": self.FORWARD[op](*values), "args": xs, "local": self.LOCAL[op](*values),
                        "grad": 0.0, "leaf": False}

            def backward(self, out):
                order, seen, stack = [], set(), [(out, False)]
                while stack:
                    node, done = stack.pop()
                    if done:
                        order.append(node)
                    elif id(node) not in seen:
                        seen.add(id(node))
                        stack.append((node, True))
                        stack.extend((a, False) for a in node["args"])
                fresh = {id(out): 1.0}
                for node in reversed(order):
                    g = fresh.get(id(node), 0.0)
                    node["grad"] += g
                    for a, d in zip(node["args"], node["local"]):
                        fresh[id(a)] = fresh.get(id(a), 0.0) + d * g

            def value(self, node):
                return node["value"]

            def grad(self, node):
                return node["grad"] if node["leaf"] else None

        @hookimpl
        def register_engines(register):
            register(Opaque())
    '''))
    result = grade("--engine", engine, "--cases", SHAPES, "-k", "sub_times_c", "--format", "json")
    case = result.case("shapes::sub_times_c")
    assert case["status"] == "failed"
    assert [d["kind"] for d in case["diagnosis"]] == ["op"]  # no node-by-node comparison without the grads
    assert case["diagnosis"][0]["message"] == "sub: d(a - b)/db is 1, expected -1 (sub alone at a=5, b=2)"
    assert case["diagnosis"][0]["evidence"] == ["sub: d(5 - b)/db is 1, expected -1 (sub alone at b=2)"]


@pytest.fixture(scope="module")
def builtin_report(builtin_graded):
    """The built-in suites over the seeded bugs (one session-wide run): fixture name -> engine report."""
    return builtin_graded


@pytest.mark.parametrize("name, culprit", [("bug_sub_sign", "sub"), ("bug_tanh", "tanh"), ("bug_mul_swapped", "mul"),
                                           ("bug_assign_grad", "accumulation")])
def test_every_builtin_failure_of_a_seeded_bug_names_it(builtin_report, name, culprit):
    failed = [c for c in builtin_report[name]["cases"] if c["status"] == "failed"]
    assert failed
    for case in failed:
        assert culprits(case).get(culprit) == "high", (case["id"], case["message"])
        assert "blame (high confidence): " in case["message"]


@pytest.mark.parametrize("name, culprits_seen", [
    ("bug_recursive_topo", {"recursion"}), ("notebook_verbatim", {"recursion", "exponential"}),
    ("micrograd_like", {"recursion", "stale_grads", "backward"}), ("bug_reset_grads", {"reset", "backward"})])
def test_builtin_habits_of_backward_are_named(builtin_report, name, culprits_seen):
    bad = [c for c in builtin_report[name]["cases"] if c["status"] in ("failed", "error", "timeout")]
    assert bad
    assert {d["culprit"] for c in bad for d in c["diagnosis"]} == culprits_seen
    assert all(c["diagnosis"] for c in bad)
