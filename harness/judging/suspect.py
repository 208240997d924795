"""Suspect cases: a hand-written expectation that the reference engine disagrees with.

Whenever the reference engine runs a case (blame, ``--check-cases``, ``reference``
expectations), its answer is judged against the case like any engine's.  If the
reference engine fails the case, the case is *suspect*: its diagnosis has the
culprit ``case`` and names each quantity with the case's number, the reference
engine's and the central finite difference, and the case is never blamed on the
engine being graded.
"""

from __future__ import annotations

from harness.cases.loader import Case
from harness.judging.compare import judge
from harness.model import Confidence, Diagnosis, DiagnosisKind, EngineStatus, Status
from harness.reporting.common import fmt
from harness.running.observation import Observation

#: The culprit of a suspect case's diagnosis.
CULPRIT = "case"


def disagreements(case: Case, ref: Observation) -> list[tuple[str, float | None, float | None]] | None:
    """(quantity, the case's number, the reference's number) where the reference fails ``case``;
    [] when it passes; None when its answer says nothing (it timed out, crashed, lacks an op)."""
    if ref.status not in (EngineStatus.OK, EngineStatus.ERROR):
        return None
    verdict = judge(case, ref)
    if verdict.status == Status.PASSED:
        return []
    if verdict.mismatches:
        return [(m.quantity, m.expected, m.got) for m in verdict.mismatches]
    first = verdict.message.splitlines()[0] if verdict.message else verdict.status
    return [(f"reference engine: {first}", None, None)]


def diagnosis(found: list[tuple[str, float | None, float | None]], central: dict[str, float]) -> Diagnosis:
    """The diagnosis of a suspect case; ``central`` maps a quantity to its central finite difference."""
    parts = []
    for quantity, expected, got in found:
        if expected is None and got is None:
            parts.append(quantity)
            continue
        fd = central.get(quantity)
        fd_text = (f", the central finite difference {fmt(fd)}" if fd is not None
                   else ", no finite difference" if quantity.startswith("grad of ") else "")
        parts.append(f"{quantity}: the case expects {fmt(expected)}, the reference engine computes "
                     f"{fmt(got)}{fd_text}")
    return Diagnosis(
        DiagnosisKind.CASE, CULPRIT,
        "suspect case: the reference engine disagrees with this case's expected numbers ("
        + "; ".join(parts) + "), so this failure is not blamed on the engine; the instructor should "
        "check the case (grade --check-cases)", Confidence.HIGH)


def is_suspect(d: Diagnosis) -> bool:
    """Whether a diagnosis marks a suspect case."""
    return d.kind == DiagnosisKind.CASE
