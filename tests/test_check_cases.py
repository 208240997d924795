"""`grade --check-cases`: the reference engine and finite differences against every expectation."""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs grade or pytest as a subprocess

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def disagreements(stdout: str) -> dict:
    """case id -> the quantity lines listed under its DISAGREE header."""
    found, current = {}, None
    for line in stdout.splitlines():
        if line.startswith("DISAGREE "):
            current = line.split()[1]
            found[current] = []
        elif line.startswith("  ") and current and not line.startswith("  " + "finite"):
            found[current].append(line.strip())
        else:
            current = None
    return found


def skipped(stdout: str) -> list:
    lines = stdout.split("finite differences skipped", 1)
    return [l.strip() for l in lines[1].splitlines()[1:] if l.startswith("  ")] if len(lines) > 1 else []


def test_the_builtin_library_checks_out(grade):
    result = grade("--check-cases", timeout=600)
    assert result.code == 0, result.stdout[-3000:] + result.stderr
    assert "DISAGREE" not in result.stdout
    summary = result.stdout.strip().splitlines()[-1]
    checked = re.search(r"checked (\d+) case\(s\).*; (\d+) gradient\(s\) confirmed", summary)
    assert checked and int(checked[1]) >= 60 and int(checked[2]) >= 60, summary
    assert summary.endswith("all agree")
    # every skipped finite difference has a reason a person can act on
    for line in skipped(result.stdout):
        assert re.search(r"a kink|a domain edge|rounding noise|not a node|not finite|is not a finite number", line), line


def test_wrong_expectations_are_listed_by_case_and_quantity(grade, tmp_path):
    path = write(tmp_path, """\
        suite: bad
        cases:
          - name: swapped_mul
            inputs: {a: 2, b: 3}
            output: a * b
            expect: {value: 6, grad: {a: 2, b: 3}}
          - name: right
            inputs: {a: 2, b: 3}
            output: a * b
            expect: {value: 6, grad: {a: 3, b: 2}}
          - name: wrong_value
            inputs: {a: 1}
            output: exp(a)
            expect: {value: 2.718, grad: {a: 2.718281828459045}}
          - name: not_accumulated
            inputs: {a: 2}
            steps:
              - m: a * a
            output: m + a
            backward: 2
            expect: {grad: {a: 5, m: 1}}
    """)
    result = grade("--check-cases", "--cases", path)
    assert result.code == 1
    found = disagreements(result.stdout)
    assert set(found) == {"bad::swapped_mul", "bad::wrong_value", "bad::not_accumulated"}
    assert found["bad::swapped_mul"][:2] == [
        "grad of a: expected 2, the reference engine computes 3",
        "grad of b: expected 3, the reference engine computes 2"]
    # the finite difference catches it on its own, too
    assert found["bad::swapped_mul"][2].startswith("grad of a: expected 2, the central difference gives 3 (h = 2e-06")
    assert found["bad::swapped_mul"][3].startswith("grad of b: expected 3, the central difference gives 2 (h = 3e-06")
    assert found["bad::wrong_value"] == ["value: expected 2.718, the reference engine computes 2.718281828"]
    assert "grad of a: expected 5, the reference engine computes 10" in found["bad::not_accumulated"]
    assert any(l.startswith("grad of m: expected 1, the central difference gives 2 ")
               and l.endswith("1 per backward() call)") for l in found["bad::not_accumulated"])
    assert f"({path}:3)" in result.stdout  # where the case is
    assert result.stdout.strip().endswith("9 disagreement(s) in 3 case(s)")


def test_a_wrong_generated_expectation_is_caught_by_finite_differences_alone(grade, tmp_path):
    # A plugin op whose derivative lies: the reference engine believes it, the finite difference does not.
    plugin = tmp_path / "lying_plugin.py"
    plugin.write_text(textwrap.dedent("""\
        import math
        from harness import hookimpl
        from harness import OpSpec

        @hookimpl
        def register_ops(register):
            register(OpSpec("badsoftplus", 1, forward=lambda x: math.log1p(math.exp(x)),
                            derivatives=lambda x: (2 / (1 + math.exp(-x)),)))
    """))
    path = write(tmp_path, """\
        cases:
          - name: generated
            inputs: {x: 0.5}
            output: 3 * badsoftplus(x)
            expect: {value: reference, grad: reference}
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    result = grade("--check-cases", "-p", "lying_plugin", "--cases", path, env=env)
    assert result.code == 1, result.stdout + result.stderr
    (lines,) = disagreements(result.stdout).values()
    assert len(lines) == 1 and lines[0].startswith("grad of x: expected 3.73")
    assert "the central difference gives 1.86" in lines[0]


def test_kinks_and_domain_edges_are_skipped_not_failed(grade, tmp_path):
    path = write(tmp_path, """\
        cases:
          - name: relu_at_zero
            inputs: {x: 0}
            output: 3 * relu(x)
            expect: {value: 0, grad: {x: 0}}
          - name: sqrt_at_zero
            inputs: {x: 0}
            output: x ** 0.5
            expect: {value: 0, grad: {x: .inf}}
          - name: log_near_zero
            inputs: {x: 1.0000001}
            output: log(x - 1)
            expect: {grad: {x: 10000000}}
          - name: huge_offset
            inputs: {x: 2}
            output: x + 1.0e12
            expect: {grad: {x: 1.5}}
            tolerance: {rel: 0.5}
          - name: log_of_zero
            inputs: {x: 0}
            output: log(x)
            expect: {raises: true}
          - name: constant_step
            inputs: {x: 3}
            steps:
              - k: 2
            output: x * k
            expect: {grad: {x: 2, k: 0}}
    """)
    result = grade("--check-cases", "--cases", path)
    assert result.code == 0, result.stdout
    skips = skipped(result.stdout)
    assert "s::relu_at_zero: grad of x: a kink: the one-sided slopes are 0 and 3" in skips
    assert "s::sqrt_at_zero: grad of x: the expected gradient is not finite" in skips
    assert any(s.startswith("s::log_near_zero: grad of x: a domain edge: the reference engine raises ValueError")
               for s in skips), skips
    assert "s::huge_offset: grad of x: rounding noise in the output (|f| = 1000000000002) swamps " \
           "the difference at h = 2e-06" in skips
    assert "s::constant_step: grad of k: k is a plain number, not a node" in skips


def test_a_subgradient_outside_the_one_sided_slopes_disagrees(grade, tmp_path):
    path = write(tmp_path, """\
        cases:
          - name: relu_at_zero
            inputs: {x: 0}
            output: relu(x)
            expect: {grad: {x: 2}}
    """)
    result = grade("--check-cases", "--cases", path)
    assert result.code == 1
    assert disagreements(result.stdout)["s::relu_at_zero"] == [
        "grad of x: expected 2, the reference engine computes 0",
        "grad of x: expected 2, the central difference gives 0.5 (h = 1e-06, tolerance 0.0002)"]


STEPS_CASE = """\
    cases:
      - name: in_a_repeat
        inputs: {a: 2}
        steps:
          - m: a * a
          - repeat: 3
            steps:
              - m: m * 2
              - n: m + 1
              - repeat: 2
                steps:
                  - p: n * 1.5
        output: p * a
        expect: {grad: {m: 3, n: %s, p: 2, a: 145.5}}
"""


def test_step_names_are_moved_where_they_are_last_bound(grade, tmp_path):
    # out = 1.5 * (8 a**2 + 1) * a: d/dm = 1.5 a, d/dn = 1.5 a, d/dp = a (last bindings), d/da = 36 a**2 + 1.5
    result = grade("--check-cases", "--cases", write(tmp_path, STEPS_CASE % 3))
    assert result.code == 0, result.stdout
    assert "4 gradient(s) confirmed by finite differences: all agree" in result.stdout
    assert not skipped(result.stdout)
    result = grade("--check-cases", "--cases", write(tmp_path, STEPS_CASE % 4))
    assert result.code == 1
    found = disagreements(result.stdout)["s::in_a_repeat"]
    assert found[0] == "grad of n: expected 4, the reference engine computes 3"
    assert found[1].startswith("grad of n: expected 4, the central difference gives 3 (h = 3.3e-05")


def test_runaway_cases_cost_a_timeout_not_the_checker(grade, tmp_path):
    path = write(tmp_path, """\
        cases:
          - name: tower
            inputs: {x: 2}
            output: x * 10 ** 10 ** 10
            expect: {value: 1}
          - name: bigint_squares
            timeout: 1
            inputs: {x: 10}
            steps:
              - repeat: 40
                steps:
                  - x: x * x
            output: x
            expect: {value: 1}
          - name: fine
            inputs: {x: 2}
            output: x * x
            expect: {grad: {x: 4}}
    """)
    result = grade("--check-cases", "--cases", path, timeout=60)  # the runaway case is cut off after its 1 s
    assert result.code == 1
    found = disagreements(result.stdout)
    assert set(found) == {"s::tower", "s::bigint_squares"}
    assert found["s::tower"] == [
        "reference engine: the reference engine raised OverflowError in building the graph: math range error"]
    assert found["s::bigint_squares"] == [
        "reference engine: the reference engine did not finish within 1 s; raise the case's 'timeout'"]


def test_a_deep_chain_is_checked_in_engine_processes(grade, tmp_path):
    path = write(tmp_path, """\
        cases:
          - name: deep
            inputs: {x: 0.5}
            steps:
              - y: x
              - repeat: 20000
                steps:
                  - y: y * 1.0001 - 0.00001
            output: y
            expect: {grad: reference}
    """)
    result = grade("--check-cases", "--cases", path)
    assert result.code == 0, result.stdout
    assert "2 gradient(s) confirmed by finite differences: all agree" in result.stdout


def test_check_cases_takes_no_engine_and_reports_bad_files_with_exit_2(grade, tmp_path):
    result = grade("--check-cases", "--engine", "reference")
    assert result.code == 2
    assert "--check-cases checks the cases with the reference engine; leave out --engine" in result.stderr
    bad = write(tmp_path, "cases: [{name: a, output: x, expect: {value: 1}}]")
    result = grade("--check-cases", "--cases", bad)
    assert result.code == 2
    assert "undefined name 'x'" in result.stderr and "Traceback" not in result.stderr


def test_check_cases_honours_filters(grade):
    result = grade("--check-cases", "-k", "notebook::")
    assert result.code == 0
    assert re.search(r"checked (\d+) case", result.stdout)[1] == str(
        len([l for l in grade("--list", "-k", "notebook::").stdout.splitlines() if l.strip()]))


README_YAML = re.compile(r"```yaml\n(.*?)```", re.S)


def test_every_case_in_the_docs_loads_and_checks_out(grade, tmp_path):
    page = (ROOT / "docs" / "cases.md").read_text()
    guide = page[page.index("## Writing cases"):page.index("## Built-in cases")]
    blocks = [b for b in README_YAML.findall(guide) if "name:" in b]
    assert len(blocks) >= 4
    blocks += [b for b in README_YAML.findall((ROOT / "README.md").read_text()) if "name:" in b]
    for i, block in enumerate(blocks):
        text = block if block.lstrip().startswith(("#", "suite", "cases")) else "cases:\n" + block
        write(tmp_path, text, f"guide{i}.yaml")
    result = grade("--check-cases", "--cases", tmp_path)
    assert result.code == 0, result.stdout + result.stderr
