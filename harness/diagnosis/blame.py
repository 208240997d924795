"""Blame: after judging, find the op or the habit of backward() that a failing case points to.

verdicts -> probe programs -> engine processes -> observations -> diagnoses.

- **Per-op probes**: every op of a failing case is run alone, at the operand
  values it had in the case (read from a traced run of the reference engine),
  as ``a - b``, ``a - 2`` and ``2 - b``.  The same probes run in the engine and
  in the reference engine, each in its own process, and the answers are
  compared here.  A probe that disagrees is a fact: "sub: d(a - b)/db is 1,
  expected -1".
- **Divergence**: where the engine exposes intermediate grads, a traced run of
  the case gives every node's grad; going from the output down (reverse
  topological order), the first node whose grad differs from the reference's
  is reported with the op that passed it its gradient.
- **Patterns** across the run (``harness.diagnosis.patterns``).

The grading process never computes a value: every number here comes back from
an engine process.
"""

from __future__ import annotations

import dataclasses
import functools
import string
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from harness.cases.expr import render
from harness.cases.loader import Case, Tolerance
from harness.diagnosis import checking, patterns
from harness.diagnosis import graph as graphs
from harness.judging import suspect
from harness.judging.compare import close
from harness.model import (
    CONFIDENCE_RANK,
    CaseResult,
    Confidence,
    Diagnosis,
    DiagnosisKind,
    GraphPicture,
    MismatchKind,
    Status,
    Where,
)
from harness.reporting.common import fmt
from harness.running.observation import Observation
from harness.running.program import Program
from harness.running.reference import REFERENCE_SPEC
from harness.running.runner import Limits, Session, timeout_for
from harness.running.shared import ReferenceCache

TRACE_CAP = 2000      # cases with more nodes are not traced node by node
DRAW_CAP = 60         # cases with more nodes are not drawn
MAX_CASES = 100       # failing cases probed per engine
MAX_PROBES = 300      # probe programs per engine
PER_FORM = 2          # places at which one op (with the same kinds of operands) is probed in a case
PROBE_TIMEOUT = 5.0
HIGH, MEDIUM = Confidence.HIGH, Confidence.MEDIUM
OP, DIVERGENCE = DiagnosisKind.OP, DiagnosisKind.DIVERGENCE


@dataclass
class Item:
    """One graded case: what was asked, what came back, and its result (annotated in place)."""

    case: Case
    program: Program
    observation: Observation
    result: CaseResult
    probe: bool = True    # run probes for it when it fails (generated cases rely on their shrunk one)


@dataclass(frozen=True)
class Probe:
    """One op alone: ``op`` over operands ("node", value) (an input) or ("const", value) (a plain number)."""

    op: str
    operands: tuple

    @property
    def names(self) -> list[str]:
        return [string.ascii_lowercase[i] for i, (kind, _) in enumerate(self.operands) if kind == "node"]

    def code(self) -> list:
        code = [["name", string.ascii_lowercase[i]] if kind == "node" else ["const", v]
                for i, (kind, v) in enumerate(self.operands)]
        return code + [["op", self.op, len(self.operands)]]

    def text(self) -> str:
        return render(self.code())

    def at(self) -> str:
        return ", ".join(f"{string.ascii_lowercase[i]}={fmt(v)}"
                         for i, (kind, v) in enumerate(self.operands) if kind == "node")

    def program(self, pid: str) -> Program:
        """The op alone; the grads of its inputs and of its own result are read back."""
        inputs = [[string.ascii_lowercase[i], v] for i, (kind, v) in enumerate(self.operands) if kind == "node"]
        return Program(id=pid, inputs=inputs, steps=[["set", "out", self.code()]], output=[["name", "out"]],
                       backward=1, grads=self.names + ["out"], structure=False, locate=self.op)


def blame(spec: str, select: str | None, items: list[Item], limits: Limits,
          reference: str = REFERENCE_SPEC, extra: Sequence[Item] = (), shared: ReferenceCache | None = None,
          session: Session | None = None) -> None:
    """Add diagnoses, and a drawable graph, to the results of the failing cases in ``items``.

    ``extra`` cases are probed first but are left out of the patterns across the run.  The reference
    engine's side (traced runs, probe answers) comes from ``shared``, the batch's reference work
    (default: this call's own).  The engine's side runs in ``session``, a loaded process of the engine
    that the caller vouches for (``harness.running.grading._Kept`` says when one may be reused), which
    this call closes; without one, in a fresh process.
    """
    try:
        _blame(spec, select, items, limits, reference, extra, shared, session)
    finally:
        if session is not None:
            session.close()


def _blame(spec: str, select: str | None, items: list[Item], limits: Limits, reference: str,
           extra: Sequence[Item], shared: ReferenceCache | None, session: Session | None) -> None:
    shared = shared if shared is not None else ReferenceCache(enabled=False)
    failing = [it for it in list(extra) + items if it.result.status not in (Status.PASSED, Status.UNSUPPORTED)]
    if not failing:
        return
    found: dict[str, list[Diagnosis]] = {it.case.id: [] for it in failing}
    traces: dict[str, tuple] = {}
    targets = [it for it in failing if it.probe and _worth_probing(it)][:MAX_CASES]
    own = {id(it) for it in items}
    to_check = [it for it in failing if id(it) in own and it.probe
                and it.result.status in ("failed", "error")][:MAX_CASES]
    ref_runs = _reference_runs(targets + to_check, limits, reference, shared)
    suspects = _suspects(to_check, ref_runs, limits, reference, shared)
    for case_id, d in suspects.items():
        found[case_id] = [d]
    targets = [it for it in targets if it.case.id not in suspects]
    if targets:
        _probe(spec, select, targets, limits, reference, found, traces, ref_runs, shared, session)
    records = [_record(it, shared) for it in items if it.case.id not in suspects]
    explained = {cid for cid, ds in found.items() if any(d.kind == OP and d.confidence == HIGH for d in ds)}
    for cid in explained:  # an op that reproduces the failure is the stronger culprit
        found[cid] = [dataclasses.replace(d, confidence=MEDIUM) if d.kind == DIVERGENCE
                      and d.culprit == "accumulation" and d.confidence == HIGH else d for d in found[cid]]
    for diagnosis, ids in patterns.find(records, explained):
        for case_id in ids:
            if case_id in found and case_id not in suspects:
                found[case_id].append(diagnosis)
    for it in failing:
        _annotate(it, _merge(found[it.case.id]), traces.get(it.case.id))


def _reference_runs(items: list[Item], limits: Limits, reference: str,
                    shared: ReferenceCache) -> dict[str, Observation]:
    """Each case traced by the reference engine, in its own process (or known to the batch's
    ``shared`` reference work): case id -> observation."""
    unique = list({it.case.id: it for it in items}.values())
    if not unique:
        return {}
    runs = shared.run(reference, [dataclasses.replace(it.program, trace=TRACE_CAP) for it in unique],
                      [timeout_for(it.case.timeout, limits) for it in unique], limits)
    return {it.case.id: obs for it, obs in zip(unique, runs)}


def _suspects(items: list[Item], ref_runs: dict, limits: Limits, reference: str,
              shared: ReferenceCache) -> dict[str, Diagnosis]:
    """The cases whose own expectations the reference engine fails, with their diagnoses.

    The finite differences come from ``--check-cases``'s machinery, run on those cases only.
    """
    found = {}
    for it in items:
        ref = ref_runs.get(it.case.id)
        wrong = suspect.disagreements(it.case, ref) if ref is not None else None
        if wrong:
            found[it.case.id] = (it.case, wrong)
    if not found:
        return {}
    central: dict = {}
    if reference == REFERENCE_SPEC:  # finite differences of the harness's own reference engine
        cases = [case for case, _ in found.values()]
        central = shared.value(("central", tuple(sorted(c.id for c in cases))),  # type: ignore[assignment]
                               lambda: checking.check(cases, limits).central)
    return {cid: suspect.diagnosis(wrong, {q: v for (c, q), v in central.items() if c == cid})
            for cid, (case, wrong) in found.items()}


def _probe(spec, select, targets: list[Item], limits: Limits, reference: str, found: dict, traces: dict,
           ref_runs: dict, shared: ReferenceCache, session: Session | None = None) -> None:
    """Trace the target cases in both engines, probe their ops, and add what that shows to ``found``.

    ``ref_runs`` holds the reference engine's traced run of every target; the engine's side runs in
    ``session`` (a loaded process of the engine), else in a fresh process.
    """
    built = [(it, graphs.build(it.program, TRACE_CAP)) for it in targets]
    built = [(it, g) for it, g in built if any(n.op != "leaf" for n in g.nodes)]
    if not built:
        return
    # The reference's trace gives the operand values of the probes, even for a graph too big to
    # trace whole (its first TRACE_CAP nodes); the engine's is needed only for whole graphs.
    ref_traces = [ref_runs[it.case.id] for it, _ in built]
    plans = {it.case.id: _probes(g, ref.trace["values"]) for (it, g), ref in zip(built, ref_traces)
             if ref.status == "ok" and ref.trace is not None}
    probes = _budget(plans)
    whole = [(it, g) for it, g in built if g.complete and it.case.id in plans]
    trace_programs = [dataclasses.replace(it.program, trace=TRACE_CAP) for it, _ in whole]
    trace_timeouts = [timeout_for(it.case.timeout, limits) for it, _ in whole]
    probe_programs = [p.program(pid) for p, pid in probes.items()]
    probe_timeouts = [min(limits.timeout, PROBE_TIMEOUT)] * len(probe_programs)
    eng_programs, eng_timeouts = trace_programs + probe_programs, trace_timeouts + probe_timeouts
    with ThreadPoolExecutor(max_workers=2) as pool, session or Session(spec, limits, select) as eng_session:
        ref_job = pool.submit(shared.run, reference, probe_programs, probe_timeouts, limits)
        eng_job = pool.submit(eng_session.run, eng_programs, eng_timeouts)
        ref_probes, eng_all = ref_job.result(), eng_job.result()
        if session is not None and _may_owe_to_reuse(eng_session, eng_all):
            eng_session.close()
            with Session(spec, limits, select) as fresh:  # as without reuse
                eng_all = fresh.run(eng_programs, eng_timeouts)
    eng_traces = {it.case.id: obs for (it, _), obs in zip(whole, eng_all)}
    answers = {p: (r, e) for p, r, e in zip(probes, ref_probes, eng_all[len(whole):])}
    for (it, g), ref in zip(built, ref_traces):
        plan = plans.get(it.case.id)
        if plan is None:
            continue
        verdicts = {p: _judge_probe(p, *answers[p], it.case.tolerance) for p, _used in plan if p in answers}
        found[it.case.id] += _op_findings(plan, verdicts)
        eng = eng_traces.get(it.case.id)
        if eng is not None and ref.trace is not None:  # a plan means the reference traced it
            traces[it.case.id] = (g, ref.trace, eng.trace if eng.status == "ok" else None)
            div = _divergence(g, ref.trace, traces[it.case.id][2], it.case)
            if div:
                found[it.case.id].append(div)
        if not found[it.case.id] and all(verdicts.get(p) == "ok" for p, _used in plan):
            n = len(plan)
            found[it.case.id].append(Diagnosis(
                OP, "backward", "every op of this case matches the reference when run alone "
                f"({n} probe{'s' * (n != 1)}): the fault is in how backward() combines them", MEDIUM))


def _may_owe_to_reuse(session: Session, observations: list[Observation]) -> bool:
    """Whether answers from a reused engine process (the one that ran the cases) may owe to what it ran
    before: it died (killed in between, or by what the cases left in it), ran out of memory, or its prints
    reached their cap.  Then blame's programs all run again in a fresh process, whose answers are used."""
    return session.output_full() or any(o.status == "crashed" or o.error_type == "MemoryError"
                                        for o in observations)


def _budget(plans: dict) -> dict:
    """Probe ids, at most MAX_PROBES: first every case's own forms, then the other forms and values."""
    probes: dict[Probe, str] = {}
    for first in (True, False):
        for plan in plans.values():
            for p, used in plan:
                if (used or not first) and p not in probes and len(probes) < MAX_PROBES:
                    probes[p] = f"probe::{len(probes) + 1}"
    return probes


def _worth_probing(it: Item) -> bool:
    obs = it.observation
    if it.case.expect.raises:
        return False
    if it.result.status == "failed":
        return True
    return obs.status == "error" and obs.error_type not in ("RecursionError", "MemoryError")


def _probes(g: graphs.Graph, values: list) -> list[tuple[Probe, bool]]:
    """The ops of the case at their operand values, alone, with Python-number forms too.

    Each probe comes with whether the case itself uses that form.  An op is probed at
    PER_FORM places at most (the ones nearest the output), which is plenty to tell a
    wrong formula from a right one.
    """
    out: dict[Probe, bool] = {}
    places: dict[tuple, int] = {}
    order = sorted(g.reachable(), reverse=True) if g.complete else reversed(range(len(g.nodes)))
    for i in order:
        node = g.nodes[i]
        if node.op == "leaf" or i >= len(values):
            continue
        operands = tuple(("node", values[x]) if kind == "node" else ("const", x) for kind, x in node.operands)
        if any(v is None for _, v in operands):
            continue
        kinds = (node.op,) + tuple(kind for kind, _ in operands)
        places[kinds] = places.get(kinds, 0) + 1
        if places[kinds] > PER_FORM:
            continue
        operands = tuple((kind, _tidy(v)) for kind, v in operands)
        out[Probe(node.op, operands)] = True
        if len(operands) == 2:
            (_, a), (_, b) = operands
            forms = [(("node", a), ("const", b))]
            if node.op != "pow":  # micrograd-style engines take only numbers as exponents
                forms += [(("node", a), ("node", b)), (("const", a), ("node", b))]
            for form in forms:
                out.setdefault(Probe(node.op, form), False)
    return list(out.items())


def _tidy(x: float):
    """5.0 as 5, so that a probe reads like the case."""
    return int(x) if isinstance(x, float) and x.is_integer() and abs(x) < 1e15 else x


def _judge_probe(p: Probe, ref: Observation, eng: Observation, tol: Tolerance):
    """'ok', None (nothing to compare), or (raised, Diagnosis) for what the op alone got wrong;
    a diagnosis that blames the op says where the engine implements it."""
    verdict = _probe_verdict(p, ref, eng, tol)
    if isinstance(verdict, tuple) and verdict[1].culprit == p.op and eng.located is not None:
        return verdict[0], dataclasses.replace(verdict[1], where=Where(*eng.located))
    return verdict


def _probe_verdict(p: Probe, ref: Observation, eng: Observation, tol: Tolerance):
    if ref.status != "ok" or eng.status in ("unsupported", "timeout", "crashed"):
        return None
    where = f"{p.op} alone at {p.at()}" if p.at() else f"{p.op} alone"
    if eng.status == "error":
        return True, Diagnosis(OP, p.op, f"{p.op}: {p.text()} raised {eng.error_type} ({where})", HIGH,
                               (eng.message[:200],))
    got, want = eng.grads.get("out"), ref.grads.get("out")
    if got is not None and want is not None and not close(got, want, tol):
        return False, Diagnosis(OP, "backward", f"backward() on {p.text()} alone leaves the output's own grad "
                                                  f"at {fmt(got)}, expected {fmt(want)}: it must start from 1 "
                                                  "(and add 1 on each call)", HIGH)
    if ref.value is not None and not close(eng.value, ref.value, tol):
        return False, Diagnosis(OP, p.op, f"{p.op}: {p.text()} is {fmt(eng.value)}, "
                                          f"expected {fmt(ref.value)} ({where})", HIGH)
    for name in p.names:
        got, want = eng.grads.get(name), ref.grads.get(name)
        if want is None or (got is None and want == 0):
            continue
        if not close(got, want, tol):
            return False, Diagnosis(OP, p.op, f"{p.op}: d({p.text()})/d{name} is {fmt(got)}, "
                                              f"expected {fmt(want)} ({where})", HIGH)
    return "ok"


def _op_findings(probes: list[tuple[Probe, bool]], verdicts: dict) -> list[Diagnosis]:
    """One diagnosis per culprit: the first failing probe, the others as evidence.

    A form the case does not use only counts when it computes a wrong number: an
    engine may well refuse ``2 - b`` (no ``__rsub__``) without that being this case's fault.
    """
    by_op: dict[str, list[Diagnosis]] = {}
    for p, used in probes:
        v = verdicts.get(p)
        if isinstance(v, tuple) and (used or not v[0]):
            by_op.setdefault(v[1].culprit, []).append(v[1])
    out = []
    for ds in by_op.values():
        others = tuple(d.message for d in ds[1:4])
        out.append(dataclasses.replace(ds[0], evidence=ds[0].evidence + others))
    return out


def _divergence(g: graphs.Graph, ref: dict, eng: dict | None, case: Case):
    """The first node, from the output down, whose value or grad differs from the reference's."""
    if eng is None or len(eng["values"]) != len(ref["values"]) or len(ref["values"]) != len(g.nodes):
        return None
    tol = case.tolerance
    reach = g.reachable()
    for i in sorted(reach):  # values: the first wrong one, in creation order
        if not close(eng["values"][i], ref["values"][i], tol) and ref["values"][i] is not None:
            node = g.nodes[i]
            what = "input" if node.op == "leaf" else node.op
            return Diagnosis(DIVERGENCE, node.op if node.op != "leaf" else "forward",
                             f"first wrong value: {g.label(i)} ({what}) is {fmt(eng['values'][i])}, "
                             f"expected {fmt(ref['values'][i])}", HIGH)
    if not case.backward:
        return None
    ops = [i for i in reach if g.nodes[i].op != "leaf"]
    if ops and all(eng["grads"][i] is None for i in ops):
        return None  # the engine does not expose intermediate grads
    users = g.users()
    assert g.output is not None  # a complete graph with reachable nodes has a node as its output
    out = g.output[1]
    for i in sorted(reach, reverse=True):
        want, got = ref["grads"][i], eng["grads"][i]
        if (want or 0.0) == 0.0 and got is None:
            continue
        if close(got, want if want is not None else 0.0, tol):
            continue
        return _explain(g, i, out, got, want, ref, eng, users, reach, case)
    return None


def _explain(g, i, out, got, want, ref, eng, users, reach, case) -> Diagnosis:
    head = f"first wrong grad from the output down: {g.label(i)} has grad {fmt(got)}, expected {fmt(want)}"
    if i == out:
        return Diagnosis(DIVERGENCE, "backward",
                         f"{head}: it is the output, whose grad after backward() x{case.backward} must be "
                         f"{fmt(want)}", HIGH)
    into = [(u, pos) for u, pos in users[i] if u in reach]
    if len(into) == 1:
        u, pos = into[0]
        op = g.nodes[u].op
        g_user = eng["grads"][u]
        local = ref["locals"][u][pos] if ref["locals"][u] and pos < len(ref["locals"][u]) else None
        detail = f"; only {op} ({g.label(u)}) passes it a gradient"
        if g_user and local is not None and got is not None:
            detail += (f": its local derivative for operand {pos + 1} comes out {fmt(got / g_user)}, "
                       f"expected {fmt(local)}")
        return Diagnosis(DIVERGENCE, op, head + detail, MEDIUM)
    contributions: list[tuple[int, float]] = []
    for u, pos in into:
        local = ref["locals"][u][pos] if ref["locals"][u] and pos < len(ref["locals"][u]) else None
        if local is None or ref["grads"][u] is None:
            contributions = []
            break
        contributions.append((u, ref["grads"][u] * local))
    kept = [u for u, c in contributions if got is not None and close(got, c, case.tolerance)]
    if contributions and kept and not close(sum(c for _, c in contributions), got, case.tolerance):
        u = kept[0]
        return Diagnosis(DIVERGENCE, "accumulation",
                         f"{head}: it feeds {len(into)} operands, and its grad is only the part that "
                         f"{g.nodes[u].op} ({g.label(u)}) passed down: gradient not accumulated "
                         "(= instead of +=)", HIGH)
    ops = sorted({g.nodes[u].op for u, _ in into})
    return Diagnosis(DIVERGENCE, "backward",
                     f"{head}; it gets gradients from {len(into)} operand slots ({', '.join(ops)})", MEDIUM)


def _merge(found: list[Diagnosis]) -> list[Diagnosis]:
    """Fold a divergence into the probe finding it agrees with (or cannot add to); strongest first."""
    probed = {d.culprit for d in found if d.kind == OP}

    def folded(d: Diagnosis) -> bool:
        vague = d.culprit == "backward" and d.confidence != HIGH and bool(probed)
        return d.kind == DIVERGENCE and (d.culprit in probed or vague)

    kept = [d for d in found if not folded(d)]
    confirmed = [d for d in found if folded(d)]
    out = []
    first_op = next((d for d in kept if d.kind == OP), None)
    for d in kept:
        extra = tuple(c.message for c in confirmed if d.kind == OP and (
            c.culprit == d.culprit or (c.culprit not in probed and d is first_op)))
        out.append(dataclasses.replace(d, evidence=d.evidence + extra) if extra else d)
    seen, unique = set(), []
    for d in sorted(out, key=lambda d: CONFIDENCE_RANK[d.confidence]):
        if d.message not in seen:
            seen.add(d.message)
            unique.append(d)
    return unique


def _record(it: Item, shared: ReferenceCache) -> patterns.Record:
    grads = tuple(m for m in it.result.mismatches if m.kind == MismatchKind.GRAD)

    @functools.cache
    def shape() -> graphs.Shape:
        # A graph's shape depends on the case alone: a batch works it out once per program (a deep case's
        # takes tens of milliseconds), and only for the records a rule looks at that closely.
        found = shared.value(("shape", it.program.graph_key), lambda: graphs.shape(it.program))
        assert isinstance(found, graphs.Shape)
        return found

    return patterns.Record(
        id=it.case.id, status=it.result.status, backward=it.case.backward,
        checks_grads=bool(it.program.grads), shape_of=shape, mismatches=grads,
        error_type=it.observation.error_type, phase=it.observation.phase)


def _annotate(it: Item, found: list[Diagnosis], traced: tuple | None) -> None:
    """Give a failing case its diagnoses (they replace the judge's quick guess) and its picture."""
    it.result.diagnosis = list(found)
    it.result.graph = picture(it, traced, {d.culprit for d in found})


def mark_suspect(res: CaseResult, d: Diagnosis) -> None:
    """Make ``d`` (a suspect case's diagnosis) the only diagnosis of ``res``."""
    res.diagnosis = [d]


def picture(it: Item, traced: tuple | None = None, culprits: frozenset[str] | set[str] = frozenset()) -> GraphPicture:
    """A failing case's graph for drawing: from the traced runs when there are any, else from the
    case's own expectations and the engine's grads of the named nodes."""
    g, ref, eng = traced if traced else (graphs.build(it.program, DRAW_CAP + 1), None, None)
    expected = it.case.expect.grad if isinstance(it.case.expect.grad, dict) else {}
    return graphs.picture(g, ref, eng, expected, it.observation.grads or {},
                          lambda got, want: close(got, want, it.case.tolerance), DRAW_CAP, culprits)
