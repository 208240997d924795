"""Blame's probes and divergence, in process: what an op alone or a traced run says, from observations."""

from __future__ import annotations

import json

import pytest

from harness.cases.loader import Tolerance, load_suite
from harness.diagnosis import blame
from harness.diagnosis.blame import Probe
from harness.diagnosis.graph import build
from harness.model import Confidence, Diagnosis, DiagnosisKind, EngineStatus
from harness.running import program
from harness.running.observation import Observation

TOL = Tolerance()
OP, DIVERGENCE = DiagnosisKind.OP, DiagnosisKind.DIVERGENCE


@pytest.fixture
def case(tmp_path):
    """A parsed case from inputs, output, expected grads and backward() count."""
    def make(inputs: dict, output: str, grad: dict | None = None, backward: int = 1):
        path = tmp_path / "c.yaml"
        expect = {"grad": grad} if grad else {"value": 0}
        path.write_text(json.dumps({"cases": [{"name": "c", "inputs": inputs, "output": output,
                                               "backward": backward, "expect": expect}]}))
        return load_suite(path).cases[0]
    return make


def ok(value=None, **grads) -> Observation:
    return Observation("p", EngineStatus.OK, value=value, grads=grads)


def test_a_probe_is_one_op_over_named_inputs_or_constants():
    p = Probe("sub", (("node", 5), ("const", 2)))
    assert (p.names, p.text(), p.at()) == (["a"], "a - 2", "a=5")
    prog = p.program("probe::1")
    assert prog.inputs == [["a", 5]] and prog.steps == [["set", "out", [["name", "a"], ["const", 2], ["op", "sub", 2]]]]
    assert prog.grads == ["a", "out"] and prog.backward == 1 and prog.output == [["name", "out"]]


def test_every_op_of_a_case_is_probed_at_its_operand_values_in_every_form(case):
    c = case({"a": 5, "b": 2}, "tanh(a - b)")
    g = build(program.build(c))
    values = [5.0, 2.0, 3.0, 0.995]
    probes = dict(blame._probes(g, values))
    assert probes == {
        Probe("tanh", (("node", 3),)): True,
        Probe("sub", (("node", 5), ("node", 2))): True,
        Probe("sub", (("node", 5), ("const", 2))): False,
        Probe("sub", (("const", 5), ("node", 2))): False,
    }


def test_pow_is_probed_only_with_a_number_exponent_besides_the_cases_own_form(case):
    g = build(program.build(case({"a": 3}, "a ** 2")))
    assert dict(blame._probes(g, [3.0, 9.0])) == {Probe("pow", (("node", 3), ("const", 2))): True}


def test_an_op_is_probed_at_most_per_form_places(case):
    g = build(program.build(case({"a": 1}, "a + 1 + 1 + 1 + 1")))
    probes = [p for p, used in blame._probes(g, [1.0, 2.0, 3.0, 4.0, 5.0]) if used]
    assert len(probes) == blame.PER_FORM
    assert probes[0].operands == (("node", 4), ("const", 1))  # nearest the output first


@pytest.mark.parametrize("eng, expected", [
    (ok(3.0, a=1.0, b=-1.0, out=1.0), "ok"),
    (ok(3.0, a=1.0, b=1.0, out=1.0),
     (False, Diagnosis(OP, "sub", "sub: d(a - b)/db is 1, expected -1 (sub alone at a=5, b=2)", Confidence.HIGH))),
    (ok(7.0, a=1.0, b=-1.0, out=1.0),
     (False, Diagnosis(OP, "sub", "sub: a - b is 7, expected 3 (sub alone at a=5, b=2)", Confidence.HIGH))),
    (ok(3.0, a=1.0, b=-1.0, out=0.0),
     (False, Diagnosis(OP, "backward", "backward() on a - b alone leaves the output's own grad at 0, expected 1: "
                                       "it must start from 1 (and add 1 on each call)", Confidence.HIGH))),
    (Observation("p", EngineStatus.ERROR, error_type="TypeError", message="no __sub__"),
     (True, Diagnosis(OP, "sub", "sub: a - b raised TypeError (sub alone at a=5, b=2)", Confidence.HIGH,
                      ("no __sub__",)))),
    (Observation("p", EngineStatus.UNSUPPORTED), None),
    (Observation("p", EngineStatus.TIMEOUT), None),
])
def test_a_probe_is_judged_against_the_reference_alone(eng, expected):
    p = Probe("sub", (("node", 5), ("node", 2)))
    assert blame._judge_probe(p, ok(3.0, a=1.0, b=-1.0, out=1.0), eng, TOL) == expected


def test_a_probe_the_reference_could_not_run_says_nothing():
    p = Probe("log", (("node", 0),))
    assert blame._judge_probe(p, Observation("p", EngineStatus.ERROR), ok(0.0, a=1.0, out=1.0), TOL) is None


def test_one_finding_per_culprit_and_unused_forms_count_only_when_they_compute_wrong_numbers():
    used = Probe("sub", (("node", 5), ("node", 2)))
    unused_raises = Probe("sub", (("const", 5), ("node", 2)))
    unused_wrong = Probe("sub", (("node", 5), ("const", 2)))
    wrong = (False, Diagnosis(OP, "sub", "sub: d(a - b)/db is 1, expected -1", Confidence.HIGH))
    also_wrong = (False, Diagnosis(OP, "sub", "sub: a - 2 is 7, expected 3", Confidence.HIGH))
    raised = (True, Diagnosis(OP, "sub", "sub: 5 - b raised TypeError", Confidence.HIGH))
    plan = [(used, True), (unused_raises, False), (unused_wrong, False)]
    found = blame._op_findings(plan, {used: wrong, unused_raises: raised, unused_wrong: also_wrong})
    assert found == [Diagnosis(OP, "sub", "sub: d(a - b)/db is 1, expected -1", Confidence.HIGH,
                               ("sub: a - 2 is 7, expected 3",))]
    assert blame._op_findings([(unused_raises, False)], {unused_raises: raised}) == []


def trace(values, grads, locals_):
    return {"created": len(values), "values": values, "grads": grads, "locals": locals_}


def test_divergence_names_the_first_wrong_grad_from_the_output_and_the_op_that_passed_it(case):
    c = case({"a": 5, "b": 2}, "tanh(a - b)", grad={"a": 0.0099, "b": -0.0099})
    g = build(program.build(c))
    ref = trace([5.0, 2.0, 3.0, 0.995], [0.0099, -0.0099, 0.0099, 1.0], [None, None, [1.0, -1.0], [0.0099]])
    eng = trace([5.0, 2.0, 3.0, 0.995], [0.005, -0.005, 0.005, 1.0], [None, None, [1.0, -1.0], [0.005]])
    d = blame._divergence(g, ref, eng, c)
    assert (d.kind, d.culprit, d.confidence) == (DIVERGENCE, "tanh", Confidence.MEDIUM)
    assert d.message.startswith("first wrong grad from the output down: a - b has grad 0.005, expected 0.0099; "
                                "only tanh (tanh(a - b)) passes it a gradient: its local derivative for operand 1 "
                                "comes out 0.005, expected 0.0099")


def test_divergence_finds_a_wrong_value_before_any_grad(case):
    c = case({"a": 5, "b": 2}, "a * b", grad={"a": 2, "b": 5})
    g = build(program.build(c))
    ref = trace([5.0, 2.0, 10.0], [2.0, 5.0, 1.0], [None, None, [2.0, 5.0]])
    eng = trace([5.0, 2.0, 7.0], [2.0, 5.0, 1.0], [None, None, [2.0, 5.0]])
    d = blame._divergence(g, ref, eng, c)
    assert (d.culprit, d.message) == ("mul", "first wrong value: a * b (mul) is 7, expected 10")


def test_divergence_calls_a_grad_that_kept_one_of_its_users_parts_unaccumulated(case):
    c = case({"a": 2, "b": 3}, "a * b + a", grad={"a": 4, "b": 2})
    g = build(program.build(c))  # a, b, a*b, a*b + a
    ref = trace([2.0, 3.0, 6.0, 8.0], [4.0, 2.0, 1.0, 1.0], [None, None, [3.0, 2.0], [1.0, 1.0]])
    eng = trace([2.0, 3.0, 6.0, 8.0], [1.0, 2.0, 1.0, 1.0], [None, None, [3.0, 2.0], [1.0, 1.0]])
    d = blame._divergence(g, ref, eng, c)
    assert (d.culprit, d.confidence) == ("accumulation", Confidence.HIGH)
    assert "it feeds 2 operands, and its grad is only the part that add" in d.message


def test_divergence_blames_the_output_grad_after_repeated_backward(case):
    c = case({"a": 2}, "a * 3", grad={"a": 6}, backward=2)
    g = build(program.build(c))
    ref = trace([2.0, 6.0], [6.0, 2.0], [None, [3.0, 2.0]])
    eng = trace([2.0, 6.0], [6.0, 1.0], [None, [3.0, 2.0]])
    d = blame._divergence(g, ref, eng, c)
    assert (d.culprit, d.confidence) == ("backward", Confidence.HIGH)
    assert d.message.endswith("it is the output, whose grad after backward() x2 must be 2")


def test_no_divergence_without_intermediate_grads_or_a_matching_trace(case):
    c = case({"a": 5, "b": 2}, "tanh(a - b)", grad={"a": 0.0099, "b": -0.0099})
    g = build(program.build(c))
    ref = trace([5.0, 2.0, 3.0, 0.995], [0.0099, -0.0099, 0.0099, 1.0], [None, None, [1.0, -1.0], [0.0099]])
    hidden = trace([5.0, 2.0, 3.0, 0.995], [0.005, -0.005, None, None], [None, None, None, None])
    assert blame._divergence(g, ref, hidden, c) is None
    assert blame._divergence(g, ref, None, c) is None
    assert blame._divergence(g, ref, trace([5.0], [0.0], [None]), c) is None


def test_merge_folds_a_divergence_into_the_probe_it_confirms_and_sorts_by_confidence():
    probe = Diagnosis(OP, "sub", "sub: d(a - b)/db is 1, expected -1", Confidence.HIGH)
    div = Diagnosis(DIVERGENCE, "sub", "first wrong grad ...: only sub passes it a gradient", Confidence.MEDIUM)
    vague = Diagnosis(DIVERGENCE, "backward", "it gets gradients from 2 operand slots", Confidence.MEDIUM)
    pattern = Diagnosis(DiagnosisKind.PATTERN, "accumulation", "= instead of +=", Confidence.MEDIUM)
    merged = blame._merge([pattern, div, probe, vague])
    assert merged == [Diagnosis(OP, "sub", probe.message, Confidence.HIGH, (div.message, vague.message)), pattern]
    assert blame._merge([div]) == [div]  # nothing probed: the divergence stands alone
    assert blame._merge([probe, probe]) == [probe]
