"""Judge observations against expectations (observations -> verdicts).

This runs in the grading process only, so nothing a submission does can
change how it is judged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.cases.dependency import dependent_names
from harness.cases.loader import REFERENCE, Case, Tolerance
from harness.running.runner import Observation

STATUSES = ("passed", "failed", "error", "timeout", "unsupported")
#: Where an engine's exception counts for ``expect.raises``: in its own ops or backward(), not
#: while the harness reads back a result that is not a number.
RAISING_PHASES = ("building the graph", "backward()")
#: Exceptions that stop a program rather than report a domain error: never "raised as expected".
NOT_RAISING = ("SystemExit", "KeyboardInterrupt", "GeneratorExit")


@dataclass(frozen=True)
class Mismatch:
    """One quantity that is not within tolerance."""

    quantity: str          # "value", "grad of b", "args[0]", ...
    expected: float
    got: float | None


@dataclass(frozen=True)
class Verdict:
    """The outcome of one case for one engine."""

    status: str
    message: str = ""
    mismatches: tuple = ()


def close(got: float | None, want: float, tol: Tolerance) -> bool:
    """|got - want| <= abs + rel*|want|; NaN matches only NaN, infinities match exactly."""
    if got is None:
        return False
    if math.isnan(want) or math.isinf(want):
        return (math.isnan(got) and math.isnan(want)) or got == want
    if not math.isfinite(got):
        return False
    return abs(got - want) <= tol.abs + tol.rel * abs(want)


def fmt(x: float | None) -> str:
    """A number as a person reads it."""
    if x is None:
        return "None"
    if isinstance(x, int):  # an input may be an int too large for a float
        text = str(x)
        return text if len(text) <= 20 else f"{text[:6]}...({len(text)} digits)"
    if math.isfinite(x) and x == int(x) and abs(x) < 1e16:
        return str(int(x))
    return f"{x:.10g}"


def judge(case: Case, obs: Observation) -> Verdict:
    """Compare what the engine did with what the case expects."""
    if obs.status == "timeout":
        return Verdict("timeout", _with_context(case, f"timed out: {obs.message}",
                                                "an infinite loop, or a backward pass that follows "
                                                "every path through the graph (exponential)?"))
    if obs.status == "crashed":
        return Verdict("error", obs.message)
    if obs.status == "unsupported":
        return Verdict("unsupported", f"unsupported op: {obs.message}")
    if obs.status == "error":
        if case.expect.raises and obs.error_type not in NOT_RAISING:
            if obs.phase in RAISING_PHASES:
                return Verdict("passed", f"raised {obs.error_type} as expected")
            return Verdict("failed", _with_context(
                case, f"expected the engine to raise an error, but it returned a result that is not a number "
                      f"({obs.error_type} while {obs.phase}: {obs.message})",
                "a negative number to a fractional power is complex in Python; math.pow raises instead"))
        return Verdict("error", _error_message(obs))
    if case.expect.raises:
        return Verdict("failed", _with_context(
            case, f"expected the engine to raise an error, but it returned value {fmt(obs.value)}",
            "Python's math raises here (for example log(0), 1/0 or exp(1000)); so should the engine"))
    mismatches = list(_mismatches(case, obs))
    if not mismatches:
        unchecked = obs.structure is None and (case.expect.args is not None
                                               or case.expect.local_derivatives is not None)
        return Verdict("passed", "args and local_derivatives not checked: the engine does not expose them"
                       if unchecked else "")
    lines = [f"{m.quantity}: expected {fmt(m.expected)}, got "
             f"{'no gradient (None)' if m.got is None and m.quantity.startswith('grad of ') else fmt(m.got)}"
             for m in mismatches]
    hint = _hint(case, mismatches)
    return Verdict("failed", _with_context(case, "\n".join(lines), hint), tuple(mismatches))


def _mismatches(case: Case, obs: Observation):
    expect, tol = case.expect, case.tolerance
    if expect.value is not None and expect.value != REFERENCE and not close(obs.value, expect.value, tol):
        yield Mismatch("value", expect.value, obs.value)
    if isinstance(expect.grad, dict):
        used = dependent_names(case)
        for name, want in expect.grad.items():
            got = obs.grads.get(name)
            if got is None and want == 0 and name not in used:
                continue  # the output does not depend on it: no gradient is 0
            if not close(got, want, tol):
                yield Mismatch(f"grad of {name}", want, got)
    for key in ("args", "local_derivatives"):
        want = getattr(expect, key)
        if want is None or obs.structure is None:
            continue
        got = obs.structure.get(key, [])
        if len(got) != len(want):
            yield Mismatch(f"number of {key}", len(want), len(got))
            continue
        for i, (g, w) in enumerate(zip(got, want)):
            if not close(g, w, tol):
                yield Mismatch(f"{key}[{i}]", w, g)


def _hint(case: Case, mismatches: list) -> str:
    grads = [m for m in mismatches if m.quantity.startswith("grad of ") and m.got is not None and m.expected]
    if not grads:
        if any(m.quantity.startswith("grad of ") and m.got is None for m in mismatches):
            return "no gradient reached a node that the output depends on"
        return ""
    ratios = {round(m.got / m.expected, 6) for m in grads}
    k = case.backward
    if ratios == {-1.0}:
        return "the sign of the gradient is flipped (check the local derivative of sub, neg or div)"
    if k > 1 and ratios == {round(1 / k, 6)}:
        return f"gradients were reset instead of accumulated: {k} backward() calls must add up {k} times"
    if k > 1 and all(abs(m.got) > abs(m.expected) for m in grads):
        return ("a repeated backward() re-propagates stale intermediate grads; each call must add "
                "exactly one more gradient")
    if "reuse" in case.tags and all(abs(m.got) < abs(m.expected) for m in grads):
        return "gradient not accumulated on a reused node (= instead of +=)"
    if all(m.got == 0 for m in grads):
        return "no gradient reached these nodes"
    return ""


def _with_context(case: Case, text: str, hint: str = "") -> str:
    inputs = ", ".join(f"{k}={fmt(v)}" for k, v in case.inputs.items())
    tol = case.tolerance
    lines = [text, f"inputs {inputs or '(none)'}; output = {case.output.source}; "
                   f"backward() x{case.backward}; tolerance abs {tol.abs:g} + rel {tol.rel:g}"]
    if case.description:
        lines.append(f"case: {case.description}")
    if hint:
        lines.append(f"likely: {hint}")
    return "\n".join(lines)


def _error_message(obs: Observation) -> str:
    at = f" (at {obs.where})" if obs.where else ""
    if obs.error_type == "RecursionError":
        return (f"backward recursed too deeply (RecursionError in {obs.phase}){at}: "
                "build the topological order with an explicit stack instead of recursion")
    if obs.error_type == "MemoryError":
        cap = obs.message or "the engine process's memory is capped"
        return f"the engine ran out of memory in {obs.phase}{at}: {cap}"
    return f"the engine raised {obs.error_type} in {obs.phase}{at}: {obs.message}"
