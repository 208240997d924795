"""Expectations beyond numbers: `expect.raises` and `reference` (value and grad from the reference engine)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs grade or pytest as a subprocess


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


RAISES = """\
    suite: edges
    cases:
      - name: log_of_zero
        inputs: {x: 0}
        output: log(x)
        expect: {raises: true}
      - name: one_over_zero
        inputs: {x: 0}
        output: 1 / x
        expect: {raises: true}
      - name: exp_overflow
        inputs: {x: 1000}
        output: exp(x)
        expect: {raises: true}
      - name: sqrt_of_negative
        inputs: {x: -8}
        output: x ** 0.5
        expect: {raises: true}
      - name: log_of_one
        inputs: {x: 1}
        output: log(x)
        expect: {raises: true}
"""

TORCH_LIKE = """\
    '''An engine that answers like PyTorch at domain edges: log(0) = -inf instead of raising.'''
    import math

    from harness import hookimpl
    from reference_engine.plugin import ReferenceEngine
    from reference_engine.tensor import Tensor


    class TorchLike(ReferenceEngine):
        name = "torchlike"

        def apply(self, op, *operands):
            x = operands[0]
            if op == "log" and (x.value if isinstance(x, Tensor) else x) == 0:
                return Tensor(-math.inf, (x,), (math.inf,))
            return super().apply(op, *operands)


    @hookimpl
    def register_engines(register):
        register(TorchLike())
"""


def test_raises_passes_engines_that_raise_and_fails_ones_that_answer(grade, engine, tmp_path):
    cases = write(tmp_path, RAISES)
    write(tmp_path, TORCH_LIKE, "torch_like.py")
    # it builds on the reference engine, which a submission may not import: an instructor's plugin (-p) may
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = grade("-p", "torch_like", "--engine", engine("micrograd_full"), "--engine", engine("notebook_full"),
                   "--engine", "torchlike", "--cases", cases, "--format", "json", env=env)
    assert result.code == 1
    expected = {"edges::log_of_zero": "passed", "edges::one_over_zero": "passed",
                "edges::exp_overflow": "passed", "edges::sqrt_of_negative": "passed",
                "edges::log_of_one": "failed"}
    assert result.statuses(0) == expected
    assert result.statuses(1) == expected
    assert result.case("edges::log_of_zero", 0)["message"] == "raised ValueError as expected"
    assert result.case("edges::one_over_zero", 0)["message"] == "raised ZeroDivisionError as expected"
    assert result.statuses(2) == {**expected, "edges::log_of_zero": "failed"}
    message = result.case("edges::log_of_zero", 2)["message"]
    assert message.startswith("expected the engine to raise an error, but it returned value -inf\n")
    assert "likely: Python's math raises here" in message
    assert result.case("edges::log_of_one", 2)["message"].startswith(
        "expected the engine to raise an error, but it returned value 0\n")


def test_raises_is_not_met_by_a_complex_result_an_exit_a_hang_or_a_missing_op(grade, engine, tmp_path):
    cases = write(tmp_path, RAISES + """\
      - name: times_three
        inputs: {x: 1}
        output: x * 3
        timeout: 1
        expect: {raises: true}
    """)
    result = grade("--engine", "micrograd.engine", "--engine", engine("sys_exit_on_op"),
                   "--engine", engine("hang_in_op"), "--cases", cases, "--format", "json", "--jobs", "1")
    # Karpathy's micrograd: (-8) ** 0.5 is a complex number in Python, not an exception
    assert result.statuses(0) == {
        "edges::log_of_zero": "unsupported", "edges::one_over_zero": "passed", "edges::exp_overflow": "unsupported",
        "edges::sqrt_of_negative": "failed", "edges::log_of_one": "unsupported", "edges::times_three": "failed"}
    assert result.case("edges::sqrt_of_negative", 0)["message"].startswith(
        "expected the engine to raise an error, but it returned a result that is not a number "
        "(TypeError while reading results:")
    # sys.exit() inside log() is not a domain error
    assert result.statuses(1)["edges::log_of_zero"] == "error"
    assert result.statuses(1)["edges::log_of_one"] == "error"
    assert "SystemExit" in result.case("edges::log_of_zero", 1)["message"]
    # a hang is a timeout, never "raised as expected"
    assert result.statuses(2)["edges::times_three"] == "timeout"


REFERENCE_CASES = """\
    suite: generated
    cases:
      - name: tanh_chain
        inputs: {x: 0.5, w: 1.2}
        steps:
          - y: x
          - repeat: 50
            steps:
              - y: tanh(w * y)
        output: y
        expect: {value: reference, grad: reference}
      - name: mlp
        inputs: {x1: 0.5, x2: -1.0, w11: 0.3, w12: -0.2, w21: 0.8, w22: 0.1, v1: 1.5, v2: -0.7}
        steps:
          - h1: tanh(w11 * x1 + w12 * x2)
          - h2: tanh(w21 * x1 + w22 * x2)
        output: v1 * h1 + v2 * h2
        expect: {grad: reference}
      - name: products
        inputs: {a: 2, b: 3, c: -1.5}
        steps:
          - p: a * b
        output: p * c + a
        expect: {value: reference, grad: reference}
      - name: sum_only
        inputs: {a: 2, b: 3}
        output: a + b
        expect: {value: reference}
"""


def test_reference_expectations_are_filled_before_grading(grade, engine, tmp_path):
    cases = write(tmp_path, REFERENCE_CASES)
    result = grade("--engine", engine("micrograd_full"), "--engine", engine("bug_tanh"),
                   "--engine", engine("bug_mul_swapped"), "--cases", cases, "--format", "json")
    assert result.code == 1
    assert set(result.statuses(0).values()) == {"passed"}
    assert result.statuses(1) == {"generated::tanh_chain": "failed", "generated::mlp": "failed",
                                  "generated::products": "passed", "generated::sum_only": "passed"}
    assert result.statuses(2) == {"generated::tanh_chain": "failed", "generated::mlp": "failed",
                                  "generated::products": "failed", "generated::sum_only": "passed"}
    # the expected numbers are the reference engine's, for every input and step name:
    # out = p*c + a with p = a*b; swapped local derivatives give d/dp = p, d/dc = c, d/da = p*a + 1
    mismatches = {m["quantity"]: (m["expected"], m["got"]) for m in result.case("generated::products", 2)["mismatches"]}
    assert mismatches == {"grad of a": (-3.5, 13.0), "grad of b": (-3.0, 18.0), "grad of c": (6.0, -1.5),
                          "grad of p": (-1.5, 6.0)}


def test_a_case_the_reference_engine_cannot_compute_stops_grading_with_exit_2(grade, engine, tmp_path):
    cases = write(tmp_path, """\
        cases:
          - name: fine
            inputs: {x: 1}
            output: x
            expect: {value: reference}
          - name: log_of_zero
            inputs: {x: 0}
            output: log(x)
            expect: {value: reference}
          - name: runaway
            timeout: 1
            inputs: {x: 10}
            steps:
              - repeat: 40
                steps:
                  - x: x * x
            output: x
            expect: {value: reference}
    """)
    result = grade("--engine", engine("micrograd_full"), "--cases", cases, timeout=60)  # runaway: cut off after 1 s
    assert result.code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[0] == (f"grade: error: {cases}:6: case 'log_of_zero': its 'reference' expectations cannot be "
                        "computed: the reference engine raised ValueError in building the graph: math domain error; "
                        "write the expected numbers instead, or fix the case")
    assert lines[1] == (f"{cases}:10: case 'runaway': its 'reference' expectations cannot be computed: the reference "
                        "engine did not finish within 1 s; raise the case's 'timeout'; write the expected numbers "
                        "instead, or fix the case")
    assert "Traceback" not in result.stderr


def test_reference_is_not_a_number_anywhere_else(grade, tmp_path):
    cases = write(tmp_path, "cases: [{name: a, inputs: {x: 1}, output: x, expect: {grad: {x: reference}}}]")
    result = grade("--list", "--cases", cases)
    assert result.code == 2
    assert "'expect.grad.x' must be a number" in result.stderr


def test_numbers_too_large_for_a_float_never_crash_the_grader(grade, engine, tmp_path):
    huge = "1" + "0" * 400
    expected_huge = write(tmp_path, f"cases: [{{name: a, inputs: {{x: 1}}, output: x, expect: {{value: {huge}}}}}]")
    result = grade("--engine", engine("micrograd_full"), "--cases", expected_huge)
    assert result.code == 2
    assert result.stderr == (f"grade: error: {expected_huge}:1: case 'a': 'expect.value' is a 401-digit number, "
                             "too large for a float; write .inf for infinity\n")
    # an input may be a huge int: the engine computes with it, the grader only shows it
    huge_input = write(tmp_path, f"cases: [{{name: a, inputs: {{x: {huge}}}, output: x * 0, backward: 0, "
                                 "expect: {value: 1}}]", "input.yaml")
    result = grade("--engine", "reference", "--cases", huge_input, "--format", "json")
    assert result.code == 1 and "Traceback" not in result.stderr
    assert result.case("input::a")["message"].startswith("value: expected 1, got 0\ninputs x=100000...(401 digits);")
    result = grade("--check-cases", "--cases", huge_input)
    assert result.code == 1 and "Traceback" not in result.stderr
    assert "value: expected 1, the reference engine computes 0" in result.stdout
