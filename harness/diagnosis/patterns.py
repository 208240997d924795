"""Diagnoses read off a whole run's verdicts: which habit of backward() the failures add up to.

Each rule needs a failing group and, for high confidence, a control group
that passes: "reused nodes fail while single-use graphs pass" says more than
"reused nodes fail".  Rules look only at verdicts and at the shape of each
case's graph (worked out from its code), never at values.

A rule claims high confidence only when all of these hold:

- its failing group has at least MIN_FAILING cases and its control group at
  least MIN_CONTROL cases (MIN_CONTROL_EXPONENTIAL for "backward follows every path");
- no stronger culprit already explains the failing cases: a case that an op
  probe reproduces (``explained``) counts in no rule's failing group;
- no passing case contradicts it (a veto): "gradient not accumulated" is
  vetoed when at least as many reused-node cases pass as fail, and "backward
  follows every path" when a case with VETO_PATHS paths or more passes (a walk
  of every path could not have finished it).

A vetoed rule says nothing; one short of the minimum sizes says it with medium confidence.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from harness.diagnosis.graph import Shape
from harness.model import Confidence, Diagnosis, DiagnosisKind, Mismatch, Status
from harness.reporting.common import fmt

HIGH, MEDIUM = Confidence.HIGH, Confidence.MEDIUM
PATTERN = DiagnosisKind.PATTERN

#: High confidence needs at least this many failing cases that the rule alone explains ...
MIN_FAILING = 1
#: ... and at least this many cases in its control group (cases that pass where the rule says they
#: would: single-use graphs, shallow graphs, single backward() calls) ...
MIN_CONTROL = 3
#: ... except "backward follows every path", whose control is a graph at least as big as the one that
#: timed out but with few paths, which finished: one such graph already tells paths from size.
MIN_CONTROL_EXPONENTIAL = 1
#: A passing case with this many paths from the output to its inputs vetoes "backward follows every
#: path": a per-path walk of 2^30 paths takes far longer than any case's timeout.
VETO_PATHS = 1 << 30


@dataclass(frozen=True)
class Record:
    """One case's outcome, as the rules see it."""

    id: str
    status: Status
    backward: int
    checks_grads: bool
    shape_of: Callable[[], Shape]             # the graph's shape, worked out when a rule first asks
    mismatches: tuple[Mismatch, ...] = ()     # of the grads
    error_type: str = ""
    phase: str = ""

    @property
    def shape(self) -> Shape:
        """The case's graph shape.  Rules ask for it only after a record passes their cheaper tests
        (status, ratios): a deep case's shape takes tens of milliseconds, and most runs need few."""
        return self.shape_of()


Hit = tuple[Diagnosis, list[str]]


def find(records: list[Record], explained: frozenset[str] | set[str] = frozenset()) -> list[Hit]:
    """Every pattern the run shows, each with the ids of the cases it explains.

    ``explained``: failing cases that a stronger culprit (an op probe reproducing the failure)
    already explains; they count in no rule's failing group.
    """
    found = []
    rest = [r for r in records if r.id not in explained]
    for rule in (_accumulation, _recursion, _exponential, _stale, _reset):
        hit = rule(rest, records)
        if hit:
            found.append(hit)
    return found


def _sure(failing: int, control: int, min_control: int = MIN_CONTROL) -> Confidence:
    """HIGH when both groups reach their minimum sizes, else MEDIUM."""
    return HIGH if failing >= MIN_FAILING and control >= min_control else MEDIUM


def _ratios(r: Record) -> list[float]:
    return [m.got / m.expected for m in r.mismatches
            if m.got is not None and m.expected and math.isfinite(m.got)]


def _grad_cases(records: list[Record], backward: int | None = None) -> list[Record]:
    return [r for r in records if r.checks_grads and (backward is None or r.backward == backward)]


def _accumulation(records: list[Record], every: list[Record]) -> Hit | None:
    single = _grad_cases(records, backward=1)
    undercount = [r for r in single if r.status == "failed" and r.mismatches and len(_ratios(r)) == len(r.mismatches)
                  and all(0 <= x < 1 - 1e-9 for x in _ratios(r)) and r.shape.reuse]
    if not undercount or any(r.status == "failed" and not r.shape.reuse for r in single):
        return None
    control = [r for r in single if r.status == "passed" and not r.shape.reuse]
    if not control:
        return None
    reused_pass = [r for r in _grad_cases(every, backward=1) if r.shape.reuse and r.status == "passed"]
    if len(reused_pass) >= len(undercount):  # veto: reusing a node is not what fails
        return None
    evidence = [f"{len(undercount)} case(s) that use a node more than once get too small a gradient "
                f"(e.g. {undercount[0].id})",
                f"{len(control)} gradient case(s) where every node is used once pass"]
    if reused_pass:
        evidence.append(f"{len(reused_pass)} case(s) that reuse a node pass (e.g. {reused_pass[0].id})")
    return (Diagnosis(PATTERN, "accumulation", "gradient not accumulated on a reused node (= instead of +=)",
                      _sure(len(undercount), len(control)), tuple(evidence)),
            [r.id for r in undercount])


def _recursion(records: list[Record], every: list[Record]) -> Hit | None:
    hits = [r for r in records if r.status == "error" and r.error_type == "RecursionError"]
    if not hits:
        return None
    deep = [r for r in hits if r.shape.deep]
    control = [r for r in every if r.status == "passed" and r.backward and not r.shape.deep]
    phases = sorted({r.phase for r in hits if r.phase})
    depth = max(r.shape.depth for r in hits)
    evidence = [f"RecursionError in {' and '.join(phases) or 'the engine'} on {len(hits)} case(s), "
                f"graphs up to {depth:,} ops deep (e.g. {hits[0].id})"]
    if control:
        evidence.append(f"{len(control)} shallower case(s) pass")
    sure = _sure(len(hits), len(control)) if len(deep) == len(hits) else MEDIUM
    where = "backward" if "backward()" in phases or not phases else "building the graph"
    message = (f"{where} recursed too deeply: walk the graph with an explicit stack "
               "(an iterative topological sort) instead of recursion")
    return Diagnosis(PATTERN, "recursion", message, sure, tuple(evidence)), [r.id for r in hits]


def _exponential(records: list[Record], every: list[Record]) -> Hit | None:
    hits = [r for r in records if r.status == "timeout" and r.shape.exponential]
    if not hits or any(r.status == "passed" and r.shape.paths >= VETO_PATHS for r in every):
        return None  # veto: a graph with that many paths finished, so backward does not walk every path
    smallest = min(r.shape.nodes for r in hits)
    control = [r for r in every if r.status in ("passed", "failed", "error") and not r.shape.exponential
               and r.shape.nodes >= smallest]
    r = min(hits, key=lambda h: h.shape.nodes)
    paths = f"2^{math.log2(r.shape.paths):.0f}" if r.shape.paths > 1 << 20 else f"{r.shape.paths:,}"
    evidence = [f"timed out on {r.id}: {r.shape.nodes:,} nodes but {paths} paths from the output to the inputs"]
    if control:
        big = max(control, key=lambda c: c.shape.nodes)
        evidence.append(f"{big.id} has {big.shape.nodes:,} nodes and few paths, and it finished ({big.status})")
    message = ("backward follows every path (exponential): visit each node once, after all the nodes "
               "that use it (a topological order), instead of recursing into every path")
    return Diagnosis(PATTERN, "exponential", message, _sure(len(hits), len(control), MIN_CONTROL_EXPONENTIAL),
                     tuple(evidence)), [h.id for h in hits]


def _multi(records: list[Record]) -> list[Record]:
    return [r for r in _grad_cases(records) if r.backward >= 2 and r.status == "failed" and r.mismatches]


def _single_control(records: list[Record]) -> list[Record] | None:
    """Single-backward() gradient cases that pass, or None when one fails (then other bugs muddy the ratios)."""
    single = _grad_cases(records, backward=1)
    if any(r.status == "failed" for r in single):
        return None
    return [r for r in single if r.status == "passed"]


def _stale(records: list[Record], every: list[Record]) -> Hit | None:
    over = [r for r in _multi(records) if any(x > 1 + 1e-9 for x in _ratios(r))]
    control = _single_control(records)
    if not over or control is None:
        return None
    r = over[0]
    worst = max(_ratios(r))
    evidence = [f"{r.id}: after backward() x{r.backward} a grad is {fmt(worst * r.backward)}x the single-pass "
                f"value instead of {r.backward}x"]
    if control:
        evidence.append(f"{len(control)} single-backward() case(s) pass")
    message = ("a second backward() re-propagates stale intermediate grads: each call must add exactly one "
               "more gradient (compute this pass's grads separately, then add them)")
    return Diagnosis(PATTERN, "stale_grads", message, _sure(len(over), len(control)),
                     tuple(evidence)), [x.id for x in over]


def _reset(records: list[Record], every: list[Record]) -> Hit | None:
    reset = [r for r in _multi(records) if _ratios(r) and len(_ratios(r)) == len(r.mismatches)
             and all(abs(x - 1 / r.backward) < 1e-6 for x in _ratios(r))]
    control = _single_control(records)
    if not reset or control is None:
        return None
    r = reset[0]
    evidence = [f"{r.id}: after backward() x{r.backward} every grad equals a single call's"]
    if control:
        evidence.append(f"{len(control)} single-backward() case(s) pass")
    message = "grads reset on every backward(): a second call must add to the grads, not start again from 0"
    return Diagnosis(PATTERN, "reset", message, _sure(len(reset), len(control)),
                     tuple(evidence)), [x.id for x in reset]
