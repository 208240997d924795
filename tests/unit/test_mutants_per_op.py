"""Every op's "= instead of +=" bug fails some built-in case, so the case library cannot regress.

The mutants are one-line edits of ``tests/engines/micrograd_closures.py``, a correct engine whose ops
each accumulate into their operands' grads in their own closure.  Each edit turns one op's
``x._pass += ...`` (one operand) into ``x._pass = ...``.  The built-in cases run in-process
through the worker's own ``run`` and the grader's ``judge``, cases tagged ``reuse`` first.
"""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

import harness
from harness.cases.loader import load_suites
from harness.engine_side.loading import find_engines
from harness.engine_side.worker import run
from harness.judging.compare import judge
from harness.running.observation import Observation
from harness.running.program import build

ENGINE = Path(__file__).resolve().parent.parent / "engines" / "micrograd_closures.py"
SOURCE = ENGINE.read_text()

#: op -> the lines of its backward closure that accumulate into an operand (one mutant per line).
ACCUMULATING = {
    "add": ["self._pass += out._pass  # d(a + b)/da = 1", "other._pass += out._pass  # d(a + b)/db = 1"],
    "sub": ["self._pass += out._pass  # d(a - b)/da = 1", "other._pass += -out._pass  # d(a - b)/db = -1"],
    "mul": ["self._pass += other.data * out._pass  # d(a * b)/da = b",
            "other._pass += self.data * out._pass  # d(a * b)/db = a"],
    "div": ["self._pass += out._pass / b  # d(a / b)/da = 1/b",
            "other._pass += -a / (b * b) * out._pass  # d(a / b)/db = -a/b^2"],
    "pow": ["self._pass += _pow_slope(x, p, out.data) * out._pass  # d(a ** p)/da = p a^(p-1)"],
    "neg": ["self._pass += -out._pass  # d(-a)/da = -1"],
    "exp": ["self._pass += e * out._pass  # d exp(a)/da = exp(a)"],
    "log": ["self._pass += out._pass / x  # d log(a)/da = 1/a"],
    "tanh": ["self._pass += (1.0 - t * t) * out._pass  # d tanh(a)/da = 1 - tanh(a)^2"],
    "relu": ["self._pass += (1.0 if x > 0 else 0.0) * out._pass  # d relu(a)/da = [a > 0]"],
    "sigmoid": ["self._pass += s * (1.0 - s) * out._pass  # d sigmoid(a)/da = s(1 - s)"],
}
MUTANTS = [(op, i) for op in harness.OPS for i in range(len(ACCUMULATING.get(op, [""])))]

CASES = sorted((c for s in load_suites() for c in s.cases), key=lambda c: "reuse" not in c.tags)


def mutate(source: str, find: str, replace: str) -> str:
    """``source`` with ``find`` replaced by ``replace``; the edit must apply exactly once."""
    assert source.count(find) == 1, f"the edit {find!r} applies {source.count(find)} times, not once"
    return source.replace(find, replace)


def engine_from(source: str):
    module = types.ModuleType("mutant")
    module.__file__ = str(ENGINE)
    exec(compile(source, str(ENGINE), "exec"), module.__dict__)
    return find_engines(module, "mutant")[0]


def first_failure(engine) -> str | None:
    """The id of the first built-in case the engine does not pass (None if it passes every case)."""
    for case in CASES:
        program = build(case)
        obs = Observation.from_wire(run(engine, program.to_wire()), program)
        if judge(case, obs).status != "passed":
            return case.id
    return None


def test_the_edit_table_covers_every_op_and_every_accumulating_line():
    assert set(ACCUMULATING) == set(harness.OPS)
    in_closures = [line.strip() for line in SOURCE.splitlines() if re.search(r"\._pass \+= .*# d", line)]
    assert sorted(in_closures) == sorted(line for lines in ACCUMULATING.values() for line in lines)


def test_the_unmutated_engine_passes_every_builtin_case():
    assert first_failure(engine_from(SOURCE)) is None


@pytest.mark.parametrize("op, operand", MUTANTS, ids=[f"{op}-{i + 1}" for op, i in MUTANTS])
def test_assigning_instead_of_accumulating_in_one_op_fails_a_builtin_case(op, operand):
    line = ACCUMULATING[op][operand]
    source = mutate(SOURCE, line, line.replace(" += ", " = ", 1))
    failed = first_failure(engine_from(source))
    assert failed is not None, f"no built-in case catches {op} setting operand {operand + 1}'s grad with '='"
