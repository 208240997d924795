"""Grade engines against cases: the whole flow from parsed cases to results."""

from __future__ import annotations

import time

from harness import program as programs
from harness import reference
from harness.compare import judge
from harness.results import CaseResult, EngineResult, RunResult
from harness.runner import Limits, Worker, run_engine, timeout_for


def grade_engine(spec: str, cases: list, limits: Limits, worker: Worker | None = None,
                 progs: list | None = None) -> list[EngineResult]:
    """Every engine behind ``spec``, graded on ``cases`` (``worker``: one spawned early for ``spec``;
    ``progs``: the cases' programs, when already built)."""
    progs = progs or [programs.build(c) for c in cases]
    timeouts = [timeout_for(c.timeout, limits) for c in cases]
    results = []
    for run in run_engine(spec, progs, timeouts, limits, worker):
        graded = []
        for case, obs in zip(cases, run.observations):
            verdict = judge(case, obs)
            graded.append(CaseResult(
                id=case.id, status=verdict.status,
                score=float(case.points) if verdict.status == "passed" else 0.0,
                max_score=float(case.points), message=verdict.message,
                duration_s=round(obs.duration_s, 6), suite=case.suite, name=case.name,
                description=case.description, tags=case.tags, visibility=case.visibility,
                mismatches=[{"quantity": m.quantity, "expected": m.expected, "got": m.got}
                            for m in verdict.mismatches]))
        results.append(EngineResult(run.name, run.source, graded, run.load_error))
    return results


def prestart(specs: list[str], limits: Limits, jobs: int = 1) -> dict:
    """Spawn the engine processes of the first ``jobs`` specs now, so they load while cases are parsed."""
    return {spec: Worker(spec, None, limits) for spec in dict.fromkeys(specs[:max(1, jobs)])}


def grade(specs: list[str], cases: list, limits: Limits, jobs: int = 1, started: dict | None = None) -> RunResult:
    """Grade each spec on every case (in parallel up to ``jobs``), keeping the order of ``specs``."""
    return grade_plan([(spec, cases) for spec in specs], limits, jobs, started)


def grade_plan(plan: list[tuple[str, list]], limits: Limits, jobs: int = 1,
               started: dict | None = None) -> RunResult:
    """Grade each (spec, cases) pair of ``plan``, in parallel up to ``jobs``, keeping its order.

    Expectations written as ``reference`` are computed first, by the reference engine in its own process.
    ``started`` maps a spec to a worker spawned for it by ``prestart``; each is used once.
    """
    start = time.perf_counter()
    started = dict(started or {})
    distinct = list({id(c): c for _, cases in plan for c in cases}.values())
    filled = dict(zip(map(id, distinct), reference.resolve(distinct, limits)))
    plan = [(spec, [filled[id(c)] for c in cases]) for spec, cases in plan]
    built = {id(c): programs.build(c) for _, cases in plan for c in cases}  # once per case, not per spec

    def one(item):
        spec, cases = item
        return grade_engine(spec, cases, limits, started.pop(spec, None), [built[id(c)] for c in cases])

    try:
        if jobs > 1 and len(plan) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=jobs) as pool:
                per_spec = list(pool.map(one, plan))
        else:
            per_spec = [one(item) for item in plan]
    finally:
        for worker in started.values():  # spawned for a spec with nothing left to grade
            worker.kill()
    engines = [e for batch in per_spec for e in batch]
    return RunResult(engines, round(time.perf_counter() - start, 3))
