"""Check the cases themselves (``grade --check-cases``): every expectation against the reference
engine and against central finite differences.

Every number is computed by the reference engine in an engine process, never in
the grading process, so an absurd case (``10 ** 10 ** 10``, a 2**50-path graph)
costs at most a timeout.  Two rounds run there: first each case as it is graded,
plus the values of the step names whose gradients are checked; then the case,
forward only, with one input or step moved by +h and by -h.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from harness.cases.loader import REFERENCE, Assign, Case, walk_assigns
from harness.judging.compare import judge
from harness.reporting.common import fmt, summary
from harness.running import program as programs
from harness.running import reference
from harness.running.observation import Observation
from harness.running.program import Program
from harness.running.runner import Limits, timeout_for

#: Relative finite-difference step: h = FD_STEP * max(1, |x|), and also FD_STEP * |x| when 0 < |x| < 1.
FD_STEP = 1e-6
#: A finite difference agrees when |fd - want| <= FD_REL * |want| + noise ...
FD_REL = 1e-4
#: ... where noise = FD_NOISE * max(|f(x-h)|, |f(x)|, |f(x+h)|) / h allows for rounding in f.
FD_NOISE = 1e-12


@dataclass(frozen=True)
class Finding:
    """One quantity of one case that disagrees, or whose finite-difference check was skipped."""

    case: Case
    quantity: str
    message: str


@dataclass
class CheckReport:
    """The outcome of checking a set of cases."""

    cases: list
    disagreements: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    fd_agreed: int = 0       # gradients confirmed by a finite difference
    #: (case id, "grad of NAME") -> the central difference (for all backward() calls) at the first usable step
    central: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.disagreements


@dataclass(frozen=True)
class _Target:
    """What moving ``name`` means: its input value, or the last step that binds it."""

    name: str
    step: bool = False


def check(cases: list, limits: Limits) -> CheckReport:
    """Check every expectation of ``cases``; see the module docstring."""
    report = CheckReport(list(cases))
    first: list[Program] = []
    first_timeouts: list[float] = []
    at_case: list[int] = []
    probes: dict[tuple[str, str], int] = {}
    for case in cases:
        at_case.append(len(first))
        first.append(programs.build(case))
        first_timeouts.append(timeout_for(case.timeout, limits))
        for name in _grad_names(case):
            target = _target(case, name)
            if isinstance(target, _Target) and target.step:
                probes[case.id, name] = len(first)
                first.append(programs.forward(case, f"value:{name}", output=[["name", name]]))
                first_timeouts.append(timeout_for(case.timeout, limits))
    seen = reference.observe(first, first_timeouts, limits)

    second: list[Program] = []
    second_timeouts: list[float] = []
    plans: list[tuple] = []
    for case, at in zip(cases, at_case):
        obs = seen[at]
        if obs.status == "ok" and reference.needs_reference(case):
            case = reference.fill(case, obs)
        if not _against_reference(case, obs, limits, report) or not isinstance(case.expect.grad, dict):
            continue
        for name, want in case.expect.grad.items():
            quantity = f"grad of {name}"
            target = _target(case, name)
            if isinstance(target, str):
                report.skipped.append(Finding(case, quantity, target))
                continue
            if not math.isfinite(want):
                report.skipped.append(Finding(case, quantity, "the expected gradient is not finite"))
                continue
            x = seen[probes[case.id, name]].value if target.step else case.inputs[name]
            if x is None:
                report.skipped.append(Finding(case, quantity, f"the value of {name} could not be read"))
                continue
            moves = _moves(x)
            if not moves:
                why = "is too large to move" if _finite(x) else "is not a finite number"
                report.skipped.append(Finding(case, quantity, f"{name} = {fmt_x(x)} {why}"))
                continue
            start = len(second)
            for i, (lo, hi) in enumerate(moves):
                for sign, value in (("-", lo), ("+", hi)):
                    second.append(_moved(case, target, x, value, f"fd:{name}:{i}{sign}"))
                    second_timeouts.append(timeout_for(case.timeout, limits))
            plans.append((case, name, want, float(x), obs.value, moves, start))
    moved = reference.observe(second, second_timeouts, limits)
    for case, name, want, x, f0, moves, at in plans:
        pairs = [(moves[i], moved[at + 2 * i], moved[at + 2 * i + 1]) for i in range(len(moves))]
        _finite_difference(case, name, want, x, f0, pairs, report)
    return report


def fmt_x(x) -> str:
    """A possibly huge number, briefly."""
    text = repr(x)
    return text if len(text) <= 24 else text[:10] + "..." + f" ({len(text)} digits)"


def _finite(x) -> bool:
    try:
        return math.isfinite(x)
    except OverflowError:  # an int too large for a float
        return True


def _grad_names(case: Case) -> list:
    grad = case.expect.grad
    if grad == REFERENCE:
        return list(case.bound_names) if case.backward else []
    return list(grad or {})


def _target(case: Case, name: str):
    """A _Target for ``name``, or why it cannot be moved (a str)."""
    constant: set = set()  # names bound to a bare number, which the engine never sees as a node
    _constants(case.steps, constant)
    if name in constant:
        return f"{name} is a plain number, not a node"
    return _Target(name, step=_binds(programs.wire_steps(case), name))


def _constants(steps, constant: set) -> None:
    """Update ``constant`` with the names that ``steps`` leave bound to a bare number."""
    for step in steps:
        if isinstance(step, Assign):
            code = step.expr.code
            if len(code) == 1 and (code[0][0] == "const" or (code[0][0] == "name" and code[0][1] in constant)):
                constant.add(step.name)
            else:
                constant.discard(step.name)
        else:
            for _ in range(min(step.count, 1 + len(list(walk_assigns(step.steps))))):  # reaches a fixed point
                _constants(step.steps, constant)


def _moves(x) -> list:
    """[(x - h, x + h), ...] for each step size, or [] when x is too large for floats."""
    try:
        x = float(x)
    except OverflowError:
        return []
    steps = [FD_STEP * max(1.0, abs(x))]
    if 0 < abs(x) < 1:
        steps.append(FD_STEP * abs(x))
    moves = [(x - h, x + h) for h in steps]
    return moves if all(math.isfinite(v) for move in moves for v in move) else []


def _moved(case: Case, target: _Target, x, value: float, tag: str):
    """The case, forward only, with ``target`` at ``value`` instead of ``x``."""
    if not target.step:
        return programs.forward(case, tag, inputs={**case.inputs, target.name: value})
    return programs.forward(case, tag, steps=_shift_last(programs.wire_steps(case), target.name, value - float(x)))


def _shift_last(steps: list, name: str, delta: float) -> list:
    """Wire steps where the last binding of ``name`` is moved by ``delta``.

    A binding inside ``repeat: N`` is reached by unrolling the last round: ``repeat: N-1``, then the
    block once more, with its own last binding moved.
    """
    for i in range(len(steps) - 1, -1, -1):
        step = steps[i]
        if step[0] == "set" and step[1] == name:
            moved = ["set", name, step[2] + [["const", delta], ["op", "add", 2]]]
            return steps[:i] + [moved] + steps[i + 1:]
        if step[0] == "repeat" and step[1] > 0 and _binds(step[2], name):
            last_round = _shift_last(step[2], name, delta)
            return steps[:i] + [["repeat", step[1] - 1, step[2]]] + last_round + steps[i + 1:]
    raise ValueError(f"no step binds {name}")


def _binds(steps: list, name: str) -> bool:
    return any((s[0] == "set" and s[1] == name) or (s[0] == "repeat" and s[1] > 0 and _binds(s[2], name))
               for s in steps)


def _against_reference(case: Case, obs: Observation, limits: Limits, report: CheckReport) -> bool:
    """Record where the reference engine disagrees with ``case``; whether its gradients are worth checking."""
    if obs.status not in ("ok", "error") or (obs.status == "error" and not case.expect.raises):
        report.disagreements.append(Finding(case, "reference engine", reference.failure(obs, case, limits)))
        return False
    verdict = judge(case, obs)
    for m in verdict.mismatches:
        report.disagreements.append(Finding(
            case, m.quantity, f"expected {fmt(m.expected)}, the reference engine computes {fmt(m.got)}"))
    if verdict.status != "passed" and not verdict.mismatches:
        report.disagreements.append(Finding(case, "reference engine", summary(verdict)))
    return obs.status == "ok" and not case.expect.raises


def _finite_difference(case: Case, name: str, want_total: float, x: float, f0: float, pairs,
                       report: CheckReport) -> None:
    """Judge ``want_total`` (for ``case.backward`` calls) against central differences at each step size."""
    k = case.backward
    want = want_total / k
    skips, misses = [], []
    for (lo, hi), minus, plus in pairs:
        fm, fp = minus.value, plus.value
        if minus.status != "ok" or plus.status != "ok":
            bad, where = (minus, lo) if minus.status != "ok" else (plus, hi)
            skips.append(f"a domain edge: the reference engine {_how(bad)} at {name} = {where!r}")
            continue
        if not all(math.isfinite(v) for v in (fm, f0, fp)):
            skips.append(f"a domain edge: the output is not finite within {name} = {x!r} ± {(hi - lo) / 2:.3g}")
            continue
        h = (hi - lo) / 2
        central = (fp - fm) / (hi - lo)
        noise = FD_NOISE * max(abs(fm), abs(f0), abs(fp)) / h
        tol = FD_REL * abs(want) + noise
        if want and noise > abs(want):
            skips.append(f"rounding noise in the output (|f| = {fmt(max(abs(fm), abs(fp)))}) swamps "
                         f"the difference at h = {h:.3g}")
            continue
        report.central.setdefault((case.id, f"grad of {name}"), central * k)
        if abs(central - want) <= tol:
            report.fd_agreed += 1
            return
        right, left = (fp - f0) / (hi - x), (f0 - fm) / (x - lo)
        if abs(right - left) > 2 * tol and min(right, left) - tol <= want <= max(right, left) + tol:
            skips.append(f"a kink: the one-sided slopes are {fmt(left * k)} and {fmt(right * k)}")
            continue
        per_call = f", {fmt(central)} per backward() call" if k > 1 else ""
        misses.append(f"expected {fmt(want_total)}, the central difference gives {fmt(central * k)} "
                      f"(h = {h:.3g}, tolerance {tol * k:.3g}{per_call})")
    if misses:
        report.disagreements.append(Finding(case, f"grad of {name}", misses[0]))
    else:
        report.skipped.append(Finding(case, f"grad of {name}", skips[0]))


def _how(obs: Observation) -> str:
    if obs.status == "error":
        return f"raises {obs.error_type}"
    if obs.status == "timeout":
        return "times out"
    return f"fails ({obs.status})"


def render(report: CheckReport) -> str:
    """The report as text: each disagreeing case with its quantities, the skipped checks, a summary."""
    out = []
    for case in report.cases:
        found = [f for f in report.disagreements if f.case.id == case.id]
        if found:
            out.append(f"DISAGREE {case.id}  ({case.path}:{case.line})")
            out.extend(f"  {f.quantity}: {f.message}" for f in found)
    if report.skipped:
        out.append(f"finite differences skipped ({len(report.skipped)}):")
        out.extend(f"  {f.case.id}: {f.quantity}: {f.message}" for f in report.skipped)
    summary = (f"checked {len(report.cases)} case(s) against the reference engine; "
               f"{report.fd_agreed} gradient(s) confirmed by finite differences")
    if report.ok:
        out.append(f"{summary}: all agree")
    else:
        bad = len({f.case.id for f in report.disagreements})
        out.append(f"{summary}; {len(report.disagreements)} disagreement(s) in {bad} case(s)")
    return "\n".join(out) + "\n"
