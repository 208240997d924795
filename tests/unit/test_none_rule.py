"""The judge's rule for None: a missing gradient is 0 only for names the output does not depend on."""

from __future__ import annotations

import pytest

from harness.cases.dependency import dependent_names
from harness.cases.loader import load_suite, load_suites
from harness.judging.compare import judge
from harness.reporting.common import mismatch_sentence
from harness.running.observation import Observation


def case(tmp_path, body: str):
    path = tmp_path / "s.yaml"
    path.write_text("cases:\n  - name: c\n" + "".join(f"    {line}\n" for line in body.strip().splitlines()))
    return load_suite(path).cases[0]


@pytest.mark.parametrize("body, want", [
    ("inputs: {x: 1, y: 2}\noutput: x * 2\nexpect: {value: 2}", {"x"}),
    ("inputs: {x: 1}\noutput: x - x\nexpect: {value: 0}", {"x"}),
    ("inputs: {x: 1, y: 2}\nsteps: [{h: x * y}, {u: y + 1}]\noutput: h\nexpect: {value: 2}", {"x", "y", "h"}),
    # a name bound to a plain number is not a node, however the output uses it
    ("inputs: {x: 1}\nsteps: [{c: 3}, {d: 2 * 3}]\noutput: c * d * x\nexpect: {value: 18}", {"x"}),
    # only the final binding counts: the input x is rebound, and the first h is dropped
    ("inputs: {x: 1, y: 2}\nsteps: [{h: y}, {x: x + 1}, {h: x * 3}]\noutput: h\nexpect: {value: 6}", {"x", "h"}),
    # a repeat is followed round by round: after 3 rounds, y no longer depends on a
    ("inputs: {a: 1, b: 2}\nsteps: [{y: a}, {z: b}, {repeat: 3, steps: [{y: z}, {z: b * 2}]}]\n"
     "output: y\nexpect: {value: 4}", {"b", "y"}),
    ("inputs: {a: 1, b: 2}\nsteps: [{y: a}, {repeat: 0, steps: [{y: b}]}]\noutput: y\nexpect: {value: 1}",
     {"a", "y"}),
    ("inputs: {x: 0.5}\nsteps: [{y: x}, {repeat: 50, steps: [{y: y + y}]}]\noutput: y\nexpect: {value: 1}",
     {"x", "y"}),
    # a period-2 rotation over 1001 rounds ends with p holding what q held
    ("inputs: {a: 1, b: 2}\nsteps: [{p: a}, {q: b}, {repeat: 1001, steps: [{t: p}, {p: q}, {q: t}]}]\n"
     "output: p * 1\nexpect: {value: 2}", {"b", "p"}),
])
def test_dependency_follows_final_bindings(tmp_path, body, want):
    assert dependent_names(case(tmp_path, body)) == want


def ok(c, grads, value=None) -> Observation:
    return Observation(id=c.id, status="ok", value=value if value is not None else c.expect.value, grads=grads)


def test_none_is_zero_only_for_an_unused_input(tmp_path):
    c = case(tmp_path, "inputs: {x: 3, y: 2}\noutput: x - x\nexpect: {value: 0, grad: {x: 0, y: 0}}")
    assert judge(c, ok(c, {"x": 0.0, "y": None})).status == "passed"
    verdict = judge(c, ok(c, {"x": None, "y": None}))
    assert verdict.status == "failed"
    assert [mismatch_sentence(m) for m in verdict.mismatches] == ["grad of x: expected 0, got no gradient (None)"]
    assert [m.quantity for m in verdict.mismatches] == ["grad of x"]


def test_none_for_a_constant_step_is_zero(tmp_path):
    c = case(tmp_path, "inputs: {x: 3}\nsteps: [{k: 2}]\noutput: k * x\nexpect: {value: 6, grad: {x: 2, k: 0}}")
    assert judge(c, ok(c, {"x": 2.0, "k": None})).status == "passed"


def test_a_backward_that_does_nothing_fails_every_builtin_case_that_expects_zero_gradients():
    zero = [c for s in load_suites() for c in s.cases
            if isinstance(c.expect.grad, dict) and c.expect.grad and not c.expect.raises
            and all(g == 0 for g in c.expect.grad.values())]
    assert len(zero) >= 9
    for c in zero:
        verdict = judge(c, ok(c, dict.fromkeys(c.expect.grad), value=c.expect.value))
        assert verdict.status == "failed", c.id
        assert any(mismatch_sentence(m).endswith("got no gradient (None)") for m in verdict.mismatches), c.id
