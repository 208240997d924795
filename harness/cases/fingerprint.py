"""A fingerprint of a case set: the sha256 of its canonical form, so a report says what it graded.

The canonical form keeps what decides a grade: each case's id, inputs, steps and output (as
postfix code, so spacing does not count), backward() calls, expectations, tolerance, points,
timeout and visibility.  Descriptions, tags, file paths and line numbers are left out; cases are
sorted by id, so the order of files and of cases in them does not count either.  Numbers are
written as floats where a float holds them exactly, so ``2`` and ``2.0`` are the same.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from harness.cases.loader import Assign, Case


def fingerprint(cases: Iterable[Case]) -> str:
    """``sha256:<hex>`` of the canonical form of ``cases``."""
    canonical = sorted((canonical_case(c) for c in cases), key=lambda c: c["id"])
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_case(case: Case) -> dict[str, Any]:
    """What of ``case`` decides a grade, as plain data."""
    e, tol = case.expect, case.tolerance
    return {
        "id": case.id,
        "inputs": {k: _num(v) for k, v in case.inputs.items()},
        "steps": [_step(s) for s in case.steps],
        "output": _code(case.output.code),
        "backward": case.backward,
        "expect": {"value": _num(e.value), "raises": e.raises,
                   "grad": {k: _num(v) for k, v in e.grad.items()} if isinstance(e.grad, dict) else e.grad,
                   "args": None if e.args is None else [_num(x) for x in e.args],
                   "local_derivatives": None if e.local_derivatives is None
                   else [_num(x) for x in e.local_derivatives]},
        "tolerance": {"abs": _num(tol.abs), "rel": _num(tol.rel)},
        "points": _num(case.points),
        "timeout": _num(case.timeout),
        "visibility": case.visibility,
    }


def _step(step: Any) -> list[Any]:
    if isinstance(step, Assign):
        return ["set", step.name, _code(step.expr.code)]
    return ["repeat", step.count, [_step(s) for s in step.steps]]


def _code(code: tuple) -> list[Any]:
    return [[_num(x) for x in ins] for ins in code]


def _num(x: Any) -> Any:
    """Ints as floats when a float holds them exactly (``2`` as ``2.0``); anything else as it is."""
    if isinstance(x, int) and not isinstance(x, bool) and abs(x) <= 2 ** 53:
        return float(x)
    return x
