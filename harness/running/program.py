"""Turn a parsed case into the program an engine process runs (parsed case -> program).

A program holds what the engine must compute and which results to read back.
It never holds an expectation: expected values stay in the grading process.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, fields, replace

from harness.cases.loader import REFERENCE, Assign, Case


@dataclass(frozen=True)
class Program:
    """What the worker runs for one case, as plain JSON-able data."""

    id: str
    inputs: list          # [[name, number], ...] in order
    steps: list           # ["set", name, code] | ["repeat", count, [steps...]]
    output: list          # postfix code
    backward: int
    grads: list           # names whose grad is read back
    structure: bool       # read the output's args and local derivatives
    trace: int = 0        # if > 0: also read value, grad and local derivatives of the first N nodes
    locate: str = ""      # an op: also say where the engine's source implements it (file and line)

    def to_wire(self) -> dict:
        """The message sent to the worker (shares the lists: it is only encoded, never changed)."""
        return {name: getattr(self, name) for name in _FIELDS}

    @functools.cached_property
    def graph_key(self) -> str:
        """What the program's graph depends on (its steps, output, input names and backward; not its input
        values or id), as text, worked out once: the key of work that depends on the graph alone."""
        return json.dumps([self.steps, self.output, [i[0] for i in self.inputs], self.backward])


def _steps(steps) -> list:
    return [["set", s.name, [list(i) for i in s.expr.code]] if isinstance(s, Assign)
            else ["repeat", s.count, _steps(s.steps)] for s in steps]


def build(case: Case, trace: int = 0) -> Program:
    """The program that computes ``case`` and reads what its expectations need.

    With ``trace``, the engine also reports every node it creates (up to that many).
    """
    expect = case.expect
    if expect.grad == REFERENCE:
        grads = list(case.bound_names)
    else:
        grads = list(expect.grad or {})
    return Program(
        id=case.id,
        inputs=[[k, v] for k, v in case.inputs.items()],
        steps=_steps(case.steps),
        output=[list(i) for i in case.output.code],
        backward=case.backward,
        grads=grads if case.backward else [],
        structure=expect.args is not None or expect.local_derivatives is not None,
        trace=trace,
    )


_FIELDS = tuple(f.name for f in fields(Program))


def forward(case: Case, tag: str, *, inputs: dict | None = None, steps: list | None = None,
            output: list | None = None) -> Program:
    """A forward-only variant of ``case`` (id ``<case id>#<tag>``) that reads only the output's value.

    ``inputs`` replaces input values, ``steps`` the wire steps, ``output`` the output's code:
    this is how finite differences and probes of step values are run.
    """
    base = build(case)
    return replace(base, id=f"{case.id}#{tag}",
                   inputs=[[k, v] for k, v in (inputs if inputs is not None else case.inputs).items()],
                   steps=steps if steps is not None else base.steps,
                   output=output if output is not None else base.output,
                   backward=0, grads=[], structure=False)


def wire_steps(case: Case) -> list:
    """The case's steps as the worker receives them."""
    return _steps(case.steps)
