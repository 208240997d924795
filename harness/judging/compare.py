"""Judge observations against expectations (observations -> verdicts).

This runs in the grading process only, so nothing a submission does can
change how it is judged.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from harness.cases.dependency import dependent_names
from harness.cases.loader import Case, Tolerance
from harness.model import CaseContext, CaseResult, EngineStatus, Mismatch, MismatchKind, Status, Verdict
from harness.reporting.common import fmt
from harness.running.observation import Observation

#: Where an engine's exception counts for ``expect.raises``: in its own ops or backward(), not
#: while the harness reads back a result that is not a number.
RAISING_PHASES = ("building the graph", "backward()")
#: Exceptions that stop a program rather than report a domain error: never "raised as expected".
NOT_RAISING = ("SystemExit", "KeyboardInterrupt", "GeneratorExit")


def close(got: float | None, want: float, tol: Tolerance) -> bool:
    """|got - want| <= abs + rel*|want|; NaN matches only NaN, infinities match exactly."""
    if got is None:
        return False
    if math.isnan(want) or math.isinf(want):
        return (math.isnan(got) and math.isnan(want)) or got == want
    if not math.isfinite(got):
        return False
    return abs(got - want) <= tol.abs + tol.rel * abs(want)


def judge(case: Case, obs: Observation) -> Verdict:
    """Compare what the engine did with what the case expects."""
    if obs.status == EngineStatus.TIMEOUT and obs.not_run:  # its submission's budget ran out first
        return Verdict(Status.TIMEOUT, obs.message)
    if obs.status == EngineStatus.TIMEOUT:
        return Verdict(Status.TIMEOUT, f"timed out: {obs.message}",
                       hint="an infinite loop, or a backward pass that follows every path through the graph "
                            "(exponential)?", show_case=True)
    if obs.status == EngineStatus.CRASHED:
        return Verdict(Status.ERROR, obs.message)
    if obs.status == EngineStatus.UNSUPPORTED:
        return Verdict(Status.UNSUPPORTED, f"unsupported op: {obs.message}")
    if obs.status == EngineStatus.ERROR:
        if case.expect.raises and obs.error_type not in NOT_RAISING:
            if obs.phase in RAISING_PHASES:
                return Verdict(Status.PASSED, f"raised {obs.error_type} as expected")
            return Verdict(Status.FAILED, "expected the engine to raise an error, but it returned a result that "
                                          f"is not a number ({obs.error_type} while {obs.phase}: {obs.message})",
                           hint="a negative number to a fractional power is complex in Python; math.pow raises "
                                "instead", show_case=True)
        return Verdict(Status.ERROR, _error_message(obs))
    if case.expect.raises:
        return Verdict(Status.FAILED, "expected the engine to raise an error, but it returned value "
                                      f"{fmt(obs.value)}",
                       hint="Python's math raises here (for example log(0), 1/0 or exp(1000)); so should the "
                            "engine", show_case=True)
    mismatches = tuple(_mismatches(case, obs))
    if not mismatches:
        unchecked = obs.structure is None and (case.expect.args is not None
                                               or case.expect.local_derivatives is not None)
        return Verdict(Status.PASSED, "args and local_derivatives not checked: the engine does not expose them"
                       if unchecked else "")
    return Verdict(Status.FAILED, mismatches=mismatches, hint=_hint(case, mismatches), show_case=True)


def _mismatches(case: Case, obs: Observation) -> Iterator[Mismatch]:
    expect, tol = case.expect, case.tolerance
    if isinstance(expect.value, (int, float)) and not close(obs.value, expect.value, tol):
        yield Mismatch(MismatchKind.VALUE, expect.value, obs.value)
    if isinstance(expect.grad, dict):
        used = dependent_names(case)
        for name, want in expect.grad.items():
            got = obs.grads.get(name)
            if got is None and want == 0 and name not in used:
                continue  # the output does not depend on it: no gradient is 0
            if not close(got, want, tol):
                yield Mismatch(MismatchKind.GRAD, want, got, name=name)
    for kind in (MismatchKind.ARGS, MismatchKind.LOCAL_DERIVATIVES):
        wants: tuple[float, ...] | None = getattr(expect, kind.value)
        if wants is None or obs.structure is None:
            continue
        gots = obs.structure.get(kind.value, [])
        if len(gots) != len(wants):
            yield Mismatch(kind, len(wants), len(gots))
            continue
        for i, (g, w) in enumerate(zip(gots, wants, strict=True)):
            if not close(g, w, tol):
                yield Mismatch(kind, w, g, index=i)


def _hint(case: Case, mismatches: tuple[Mismatch, ...]) -> str:
    """The judge's quick guess at the cause, from the ratios of the wrong gradients."""
    grads = [(m.got, m.expected) for m in mismatches if m.kind == MismatchKind.GRAD and m.got is not None
             and m.expected]
    if not grads:
        if any(m.kind == MismatchKind.GRAD and m.got is None for m in mismatches):
            return "no gradient reached a node that the output depends on"
        return ""
    ratios = {round(got / want, 6) for got, want in grads}
    k = case.backward
    if ratios == {-1.0}:
        return "the sign of the gradient is flipped (check the local derivative of sub, neg or div)"
    if k > 1 and ratios == {round(1 / k, 6)}:
        return f"gradients were reset instead of accumulated: {k} backward() calls must add up {k} times"
    if k > 1 and all(abs(got) > abs(want) for got, want in grads):
        return ("a repeated backward() re-propagates stale intermediate grads; each call must add "
                "exactly one more gradient")
    if "reuse" in case.tags and all(abs(got) < abs(want) for got, want in grads):
        return "gradient not accumulated on a reused node (= instead of +=)"
    if all(got == 0 for got, _ in grads):
        return "no gradient reached these nodes"
    return ""


def _error_message(obs: Observation) -> str:
    at = f" (at {obs.where})" if obs.where else ""
    if obs.error_type == "RecursionError":
        return (f"backward recursed too deeply (RecursionError in {obs.phase}){at}: "
                "build the topological order with an explicit stack instead of recursion")
    if obs.error_type == "MemoryError":
        cap = obs.message or "the engine process's memory is capped"
        return f"the engine ran out of memory in {obs.phase}{at}: {cap}"
    return f"the engine raised {obs.error_type} in {obs.phase}{at}: {obs.message}"


def case_result(case: Case, obs: Observation, verdict: Verdict) -> CaseResult:
    """The result record of one judged case."""
    tol = case.tolerance
    context = CaseContext(dict(case.inputs), case.output.source, case.backward, tol.abs, tol.rel)
    return CaseResult(
        id=case.id, status=verdict.status,
        score=float(case.points) if verdict.status == Status.PASSED else 0.0,
        max_score=float(case.points), message=verdict.message,
        duration_s=round(obs.duration_s, 6), suite=case.suite, name=case.name,
        description=case.description, tags=case.tags, visibility=case.visibility,
        mismatches=list(verdict.mismatches), hint=verdict.hint,
        context=context if verdict.show_case else None)
