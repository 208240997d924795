"""The reference engine as an oracle: fill expectations written as ``reference`` (parsed case -> filled case).

The reference engine runs in an engine process through the runner, like any
submission, so a case that makes it hang or crash costs a timeout or an error
message, never the grading process.
"""

from __future__ import annotations

from dataclasses import replace

from harness.cases.loader import REFERENCE, Case
from harness.errors import CaseFileError, HarnessError
from harness.running.program import build
from harness.running.runner import Limits, Observation, Session, timeout_for

#: The module that registers the reference engine; loading it by module name works with or
#: without the package's entry points installed.
REFERENCE_SPEC = "reference_engine.plugin"


def trusted(limits: Limits) -> Limits:
    """``limits`` without the import policy, in the reference engine's own sandbox: the harness's oracle is
    not a submission."""
    return replace(limits, forbidden_imports=(), trusted=True)


def observe(programs: list, timeouts: list, limits: Limits) -> list[Observation]:
    """Run ``programs`` on the reference engine, in its own process."""
    if not programs:
        return []
    with Session(REFERENCE_SPEC, trusted(limits)) as session:
        return session.run(programs, timeouts)


def needs_reference(case: Case) -> bool:
    """Whether some expectation of ``case`` is ``reference``."""
    return REFERENCE in (case.expect.value, case.expect.grad)


def fill(case: Case, obs: Observation) -> Case:
    """``case`` with its ``reference`` expectations replaced by what the reference engine computed.

    ``obs`` must be an ``ok`` observation of ``build(case)``.  A name whose gradient is None
    (never reached by backward, or a constant) is expected to have gradient 0.
    """
    expect = case.expect
    value = obs.value if expect.value == REFERENCE else expect.value
    grad = expect.grad
    if grad == REFERENCE:
        grad = {n: 0.0 if obs.grads.get(n) is None else obs.grads[n] for n in case.bound_names}
    return replace(case, expect=replace(expect, value=value, grad=grad))


def failure(obs: Observation, case: Case, limits: Limits) -> str:
    """Why the reference engine gave no numbers for ``case``, in words."""
    if obs.status == "error":
        at = f" in {obs.phase}" if obs.phase else ""
        return f"the reference engine raised {obs.error_type}{at}: {obs.message}"
    if obs.status == "timeout":
        return (f"the reference engine did not finish within {timeout_for(case.timeout, limits):g} s; "
                "raise the case's 'timeout'")
    if obs.status == "unsupported":
        return f"the reference engine does not support the op {obs.message}"
    return died(obs)


def died(obs: Observation) -> str:
    """The reference engine's process ended (killed, crashed): not a problem of the case, in words."""
    return f"the reference engine process died: {obs.message}"


def resolve(cases: list, limits: Limits, lost: dict | None = None, suspects: dict | None = None) -> list:
    """``cases`` with every ``reference`` expectation computed by the reference engine.

    Raises HarnessError (exit 2) naming each case the reference engine cannot compute.  When the
    reference engine's process dies instead (something killed it), a case that it could not answer
    is left as it is and, given ``lost``, recorded there (case id -> why) rather than raised.
    The reference engine's answer is also judged against the case's hand-written expectations:
    where it fails them, ``suspects`` (if given) gets case id -> the disagreements
    (``harness.judging.suspect``).
    """
    from harness.judging import suspect

    todo = [c for c in cases if needs_reference(c)]
    if not todo:
        return list(cases)
    observations = observe([build(c) for c in todo], [timeout_for(c.timeout, limits) for c in todo], limits)
    filled, problems, dead = {}, [], []
    for case, obs in zip(todo, observations):
        if obs.status == "ok":
            filled[case.id] = fill(case, obs)
            wrong = suspect.disagreements(filled[case.id], obs)
            if wrong and suspects is not None:
                suspects[case.id] = wrong
        elif obs.status == "crashed":
            dead.append(died(obs))
            if lost is not None:
                lost[case.id] = died(obs)
        else:
            problems.append(str(CaseFileError(
                case.path, f"its 'reference' expectations cannot be computed: {failure(obs, case, limits)}; "
                           "write the expected numbers instead, or fix the case", line=case.line, case=case.name)))
    if problems:
        raise HarnessError("\n".join(problems))
    if dead and lost is None:
        raise HarnessError(f"{dead[0]} ({len(dead)} case(s) left without expectations; "
                           "the case files are not at fault)")
    return [filled.get(c.id, c) for c in cases]
