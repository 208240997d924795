"""Grade engines against cases: the whole flow from parsed cases to results.

parsed cases -> programs -> engine processes -> observations -> verdicts -> results,
then, for the failing cases, blame (``harness.diagnosis.blame``), and with ``--fuzz``
generated cases (``harness.diagnosis.fuzz``) that go through the same flow.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.cases.fingerprint import fingerprint
from harness.diagnosis import blame as blaming
from harness.diagnosis import fuzz as fuzzing
from harness.judging.compare import case_result, judge
from harness.model import CaseResult, EngineResult, EngineStatus, RunResult, Shrunk, Status
from harness.running import program as programs
from harness.running import reference
from harness.running.budget import Budget
from harness.running.observation import Observation
from harness.running.reference import REFERENCE_SPEC
from harness.running.runner import Limits, Session, Worker, budget_for, timeout_for, with_hidden
from harness.running.shared import ReferenceCache, sharing_enabled
from harness.running.spool import Graded, Spool, Spooled
from harness.sandbox import reaper
from harness.version import harness_version


@dataclass(frozen=True)
class Feedback:
    """What to do beyond grading the cases: blame failing cases, fuzz."""

    blame: bool = True
    fuzz: int = 0           # number of random expressions (0: no fuzzing)
    seed: int = 0
    reference: str = REFERENCE_SPEC   # the engine whose answers are expected (blame, fuzz)
    share: bool = True      # reference work computed once per batch (off: per submission, same results)


def grade_engine(spec: str, cases: list, limits: Limits, feedback: Feedback = Feedback(),
                 worker: Worker | None = None, progs: list | None = None,
                 engines: tuple = (), shared: ReferenceCache | None = None) -> list[EngineResult]:
    """The first engine ``spec`` registers (or each one named in ``engines``), graded on ``cases``
    (``worker``: one spawned early for ``spec``; ``progs``: the cases' programs, when already built;
    ``shared``: the batch's reference work)."""
    shared = shared if shared is not None else ReferenceCache(enabled=sharing_enabled(feedback.share))
    progs = progs or [programs.build(c) for c in cases]
    # Visible cases first; hidden and after_due_date ones after them, in a fresh engine process, so that
    # nothing a student sees (a visible case's numbers or messages) comes from a process that saw them.
    order = sorted(range(len(cases)), key=lambda i: cases[i].visibility != "visible")
    fence = sum(c.visibility == "visible" for c in cases)
    timeouts = [timeout_for(cases[i].timeout, limits) for i in order]
    budget = budget_for(limits, timeouts, len(set(engines)))  # the time and restarts of the whole submission
    results = []
    runs = _observe(spec, [progs[i] for i in order], timeouts, limits, worker, engines, fence, budget)
    spent = budget.exhausted()  # once every engine's cases ran, before blame and fuzz take time of their own
    try:
        for run in runs:
            began = time.perf_counter()
            by_index = dict(zip(order, run.observations, strict=True))
            observations = [by_index[i] for i in range(len(cases))]
            items = [blaming.Item(case, prog, obs, case_result(case, obs, judge(case, obs)))
                     for case, prog, obs in zip(cases, progs, observations)]
            engine = EngineResult(run.name, spec, [it.result for it in items], run.load_error,
                                  ignored_engines=run.ignored, origin=run.origin, load_notes=list(run.notes))
            if spent:  # blame and fuzz would run the engine again: not past its budget
                engine.load_notes.append(f"blame and fuzz skipped: {spent}")
            elif not run.load_error:
                _feedback(spec, run.name, engine, items, limits, feedback, shared, run.kept)
            run.kept.close()  # blame did not need it, or is done with it
            engine.duration_s = round(run.seconds + time.perf_counter() - began, 3)
            results.append(engine)
    finally:  # whatever happened, no engine process kept for blame outlives grading the submission
        for run in runs:
            run.kept.close()
    return results


@dataclass
class _Kept:
    """The engine process that ran an engine's cases, still loaded, offered to its blame (``_feedback``).

    Blame's engine side (the traced re-runs and the op probes) runs in the process that ran the cases
    instead of in a fresh one, which would cost a start-up and a load of the submission, but only where
    that is as safe as a fresh one:

    - only the process of the first engine ``_observe`` graded (the one the submission was loaded in),
      and only while it is alive and may still print: a case that timed out or killed it left none
      (``Session.hand_over``), and when a crash, a MemoryError or the output cap during blame may owe
      to what it ran before, blame asks a fresh process again (``blame._may_owe_to_reuse``);
    - only for the blame on the same side of the fence as every program that process ran.  The hidden
      and after_due_date cases run after the visible ones in a fresh process (``_fenced``), so the
      process left over ran only hidden programs when there are any: then the visible blame (which a
      student sees) opens a fresh process as before and the hidden blame reuses it; with no hidden cases
      the visible blame reuses it.  Nothing a student sees ever comes from a process that saw a hidden
      program;
    - it is taken once; whoever took it closes it, and ``grade_engine`` closes it in any case, right after
      the engine's feedback (or when blame is skipped, or raises), so none outlives its submission.
    """

    session: Session | None = None
    hidden: bool = False  # every program it ran was a hidden or after_due_date case (else: a visible one)

    def take(self, hidden: bool) -> Session | None:
        """The process for the blame of the hidden (or the visible) cases, if it may serve it; once."""
        if self.hidden != hidden:
            return None
        session, self.session = self.session, None
        return session

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None


@dataclass
class _Run:
    """The observations of one graded engine of a submission."""

    name: str
    observations: list[Observation]
    load_error: str = ""
    ignored: tuple[str, ...] = ()  # engines the submission registers that were not graded
    origin: str = ""               # where the graded engine was defined, e.g. "student.ipynb, cell 7: class Value"
    notes: list[str] = field(default_factory=list)  # what loading skipped or chose
    seconds: float = 0.0   # spent loading and running it (the first engine: also the submission's loading)
    kept: _Kept = field(default_factory=lambda: _Kept())  # the first engine's process, for its blame


def _fenced(session: Session, progs: list, timeouts: list, fence: int) -> list[Observation]:
    """Observations of ``progs``: those from ``fence`` on in a fresh process of the session's engine, after
    the ones before it are answered."""
    if not 0 < fence < len(progs):
        return session.run(progs, timeouts)
    observations = session.run(progs[:fence], timeouts[:fence])
    session.close()  # the next run starts a process that never saw a program before the fence
    return observations + session.run(progs[fence:], timeouts[fence:])


def _observe(spec: str, progs: list, timeouts: list, limits: Limits, worker: Worker | None,
             engines: tuple, fence: int = 0, budget: Budget | None = None) -> list[_Run]:
    """Run the programs on the first engine ``spec`` registers, or on each engine named in ``engines``,
    each in a session of its own; each run lists the registered engines left ungraded.  Programs from
    ``fence`` on run in a fresh process (see ``_fenced``)."""
    began = time.perf_counter()
    runs: list[_Run] = []
    with Session(spec, limits, worker=worker, budget=budget) as first:
        if first.start().load_error:
            return [_Run(first.name, first.run(progs, timeouts), first.load_error,
                         seconds=time.perf_counter() - began)]
        names = first.engines
        wanted = list(dict.fromkeys(engines)) or [first.name]
        ignored = list(names)  # every registration but the first one of each graded name
        for name in wanted:
            if name in ignored:
                ignored.remove(name)
        try:
            for name in wanted:
                if name not in names:
                    known = list(dict.fromkeys(names))
                    why = (f"the submission registers no engine named {name!r} (--engine-name); it registers "
                           f"{', '.join(repr(n) for n in known[:10])}{', ...' if len(known) > 10 else ''}")
                    runs.append(_Run(name, [Observation(p.id, EngineStatus.CRASHED, message=why) for p in progs],
                                     why))
                elif name == first.name and first.worker is not None:  # the engine the first process loaded
                    runs.append(_Run(name, _fenced(first, progs, timeouts, fence), ignored=tuple(ignored),
                                     origin=first.origin, notes=first.notes))
                    # kept for its blame: it ran only hidden programs if there were any (``_fenced``)
                    runs[-1].kept = _Kept(first.hand_over(), hidden=fence < len(progs))
                    first.close()
                else:
                    with Session(spec, limits, select=name, budget=budget) as other:
                        observations = _fenced(other, progs, timeouts, fence)
                        runs.append(_Run(name, observations, ignored=tuple(ignored), origin=other.origin,
                                         notes=other.notes))
                runs[-1].seconds, began = time.perf_counter() - began, time.perf_counter()
        except BaseException:
            for run in runs:
                run.kept.close()
            raise
    return runs


def _feedback(spec: str, name: str, engine: EngineResult, items: list[blaming.Item], limits: Limits,
              feedback: Feedback, shared: ReferenceCache, kept: _Kept | None = None) -> None:
    """Fuzz, then blame the failing cases; ``kept``: the process that ran the cases, offered to the blame
    on its side of the fence (``_Kept``)."""
    kept = kept if kept is not None else _Kept()
    if not feedback.blame:
        kept.close()  # nothing will run in it
    fuzz_items: list[blaming.Item] = []
    minimal: dict[str, blaming.Item] = {}
    signatures: dict[str, str | None] = {}
    if feedback.fuzz:
        fz = fuzzing.run(spec, name, feedback.fuzz, feedback.seed, limits, feedback.reference, shared)
        engine.fuzz = fz.summary
        for o in fz.outcomes:
            fuzz_items.append(blaming.Item(o.case, o.program, o.observation,
                                           case_result(o.case, o.observation, o.verdict), probe=False))
            signatures[o.case.id] = o.signature
        for n, (sig, o) in enumerate(fz.minimal.items(), 1):
            case = replace(o.case, name=f"minimal-{n}")
            minimal[sig] = blaming.Item(case, replace(o.program, id=case.id), o.observation,
                                        case_result(case, o.observation, o.verdict))
    if feedback.blame:  # hidden cases are probed apart, so that no visible case's blame comes from them
        shown = [it for it in items if it.case.visibility == "visible"]
        hidden = [it for it in items if it.case.visibility != "visible"]
        blaming.blame(spec, name, shown + fuzz_items, limits, feedback.reference, extra=list(minimal.values()),
                      shared=shared, session=kept.take(hidden=False))
        if hidden:
            blaming.blame(spec, name, hidden, limits, feedback.reference, shared=shared,
                          session=kept.take(hidden=True))
    for it in fuzz_items:
        sig = signatures.get(it.case.id)
        if sig in minimal:
            _attach_shrunk(it.result, minimal[sig])
    engine.cases += [it.result for it in fuzz_items]


def _attach_shrunk(res: CaseResult, small: blaming.Item) -> None:
    """Tell a failing fuzz case the minimal expression that fails the same way, and its blame."""
    found = small.result
    res.shrunk = Shrunk(small.case.description, fuzzing.op_count(small.case), found.status, found.message,
                        tuple(found.mismatches), tuple(found.diagnosis))
    known = {d.message for d in res.diagnosis}
    res.diagnosis += [replace(d, from_shrunk=True) for d in found.diagnosis if d.message not in known]


def grade(specs: list[str], cases: list, limits: Limits, jobs: int = 1,
          ids: list[str | None] | None = None,
          progress: Callable[[int, int], None] | None = None, feedback: Feedback = Feedback(),
          started: dict | None = None) -> RunResult:
    """Grade each spec (in parallel up to ``jobs``), keeping the order of ``specs``.

    ``ids`` gives each spec's submission id (None: the engine's name); ``progress(done, total)``
    is called from this thread after each spec.
    """
    ids = list(ids) if ids is not None else [None] * len(specs)
    return grade_plan([((spec, sub), cases) for spec, sub in zip(specs, ids)], limits, jobs, progress,
                      feedback, started)


def grade_plan(plan: list, limits: Limits, jobs: int = 1, progress: Callable[[int, int], None] | None = None,
               feedback: Feedback = Feedback(), started: dict | None = None,
               fuzz_here: Callable[[int], bool] | None = None, engines: tuple = (),
               shared: ReferenceCache | None = None, per_case: list[float] | None = None,
               spool: Spool | None = None) -> RunResult:
    """Grade each ((spec, submission id), cases) item of ``plan`` (in parallel up to ``jobs``), in its order.

    Expectations written as ``reference`` are computed first, by the reference engine in its own process.
    ``started`` maps a spec to a worker that ``prestart`` spawned for it; each is used once.
    ``fuzz_here(i)`` says whether item i fuzzes (default: all), so a sharded submission is fuzzed once.
    ``engines`` names the engines to grade in each submission (default: the first it registers).
    ``shared`` holds the batch's reference work (blame's traced runs and probes, fuzz corpora); by
    default a new one, shared unless ``feedback.share`` or $GRADE_SHARE_REFERENCE turns it off, that
    keeps its reference processes for the batch.
    ``per_case`` gives each item's seconds per case (an earlier run's, ``--timings``); the items whose
    cases and fuzz expressions take longest start first.
    ``spool``: each submission's results are stored there as soon as they are graded, and the run's
    engines are read back from it one at a time (``harness.running.spool``); without it, a list.  The
    spool's report pieces are made where each submission is graded (``Spool.ready``).
    """
    shared = shared if shared is not None else ReferenceCache(enabled=sharing_enabled(feedback.share), keep=True)
    start = time.perf_counter()
    limits = with_hidden(limits, [spec for (spec, _), _ in plan])
    started = dict(started or {})
    early = list(started.values())
    distinct = list({id(c): c for _, cases in plan for c in cases}.values())
    lost: dict = {}  # cases whose reference expectations died with the reference engine's process
    suspects: dict = {}  # cases whose hand-written expectations the reference engine fails
    filled = dict(zip(map(id, distinct), reference.resolve(distinct, limits, lost, suspects)))
    whole = plan
    plan = [(item, [filled[id(c)] for c in cases if c.id not in lost]) for item, cases in plan]
    built = {id(c): programs.build(c) for _, cases in plan for c in cases}  # once per case, not per spec
    per_item: list = [None] * len(plan)

    def grade_item(i: int, here: ReferenceCache) -> list | Graded:  # in a job slot: this thread, or a job process
        (spec, sub), cases = plan[i]
        extra = feedback if fuzz_here is None or fuzz_here(i) else replace(feedback, fuzz=0)
        results = _grade_one(spec, sub, cases, limits, extra, started.pop(spec, None),
                             [built[id(c)] for c in cases], engines, here)
        results = _with_lost(results, whole[i][1], lost) if lost else results
        return spool.ready(results) if spool is not None else results  # its report pieces made here

    def keep(results: list | Graded) -> list:  # only a summary stays in memory
        if spool is not None:
            return spool.put(results)
        assert isinstance(results, list)  # (what ``ready`` makes goes to a spool)
        return results

    def failed(i: int, why: str) -> list:  # the job process grading item i died
        (spec, sub), cases = plan[i]
        results = _could_not_grade(spec, sub, cases, why)
        return _with_lost(results, whole[i][1], lost) if lost else results

    try:
        if jobs <= 1 or len(plan) <= 1:  # one at a time: no thread pool to start (or import)
            for i in range(len(plan)):
                per_item[i] = keep(grade_item(i, shared))
                if progress is not None:
                    progress(i + 1, len(plan))
        else:
            fuzzed = [feedback.fuzz if fuzz_here is None or fuzz_here(i) else 0 for i in range(len(plan))]
            rates = per_case or [1.0] * len(plan)
            sizes = [(len(cases) + n) * r for (_, cases), n, r in zip(plan, fuzzed, rates, strict=True)]
            from harness.running import jobs as job_processes  # only a batch needs it

            if job_processes.enabled(jobs, len(plan)):
                for worker in early:  # a job process starts its own engine processes; none of ours is forked
                    worker.kill()
                started.clear()
                if any(fuzzed):
                    fuzzing.preload()
                try:
                    job_processes.grade(grade_item, keep, failed, per_item, jobs, progress, longest_first(sizes),
                                        shared)
                except job_processes.NotForked:  # e.g. at the process limit: the threads still work
                    _in_parallel(lambda i: keep(grade_item(i, shared)), per_item, jobs, progress, sizes)
            else:
                _in_parallel(lambda i: keep(grade_item(i, shared)), per_item, jobs, progress, sizes)
    except BaseException:  # interrupted: kill the engine processes so that nothing outlives grading
        reaper.stop_all()
        raise
    finally:
        shared.close()  # the reference processes kept for the batch
        reaper.resume()
        for worker in early:  # one spawned early but never used (killing twice does nothing)
            worker.kill()
    done = [e for batch in per_item for e in batch]
    results = spool.engines(done) if spool is not None else done
    if suspects:
        _mark_suspects(results, suspects, [c for c in filled.values() if c.id in suspects], limits)
    return RunResult(results, round(time.perf_counter() - start, 3), harness_version=harness_version(),
                     cases_fingerprint=fingerprint(distinct), sandbox=limits.sandbox,
                     sandbox_warning=limits.sandbox_warning, cgroup=cgroup_limits(limits))


def cgroup_limits(limits: Limits) -> str:
    """The cgroup limits this run's engine processes got, for the report (harness.sandbox.cgroups)."""
    from harness.sandbox import cgroups

    cgroups.sweep_leftovers()
    return cgroups.applied(cgroups.Caps(limits.processes, limits.memory_mb))


def _with_lost(results: list, cases: list, lost: dict) -> list:
    """Each engine's results with an error for every case the dead reference engine left ungradable,
    in the order of ``cases``."""
    for r in results:
        graded = {c.id: c for c in r.cases}
        r.cases = [graded[c.id] if c.id in graded else CaseResult(
            id=c.id, status=Status.ERROR, score=0.0, max_score=float(c.points),
            message=f"{lost[c.id]}; this case could not be graded, through no fault of the submission",
            suite=c.suite, name=c.name, description=c.description, tags=c.tags, visibility=c.visibility)
            for c in cases if c.id in graded or c.id in lost] + [
            c for c in r.cases if c.id not in {k.id for k in cases}]  # fuzz cases, after the others
    return results


def _mark_suspects(engines: list | Spooled, suspects: dict, cases: list, limits: Limits) -> None:
    """Give the failures of cases found suspect while computing ``reference`` expectations their
    suspect diagnosis (blame, when it ran, found most of them already); a changed spooled result is
    stored again."""
    from harness.diagnosis import checking
    from harness.judging import suspect

    central = checking.check(cases, limits).central
    for k, e in enumerate(engines):
        marked = False
        for res in e.cases:
            if res.id in suspects and res.status != Status.PASSED and not any(map(suspect.is_suspect, res.diagnosis)):
                d = suspect.diagnosis(suspects[res.id], {q: v for (c, q), v in central.items() if c == res.id})
                blaming.mark_suspect(res, d)
                marked = True
        if marked and isinstance(engines, Spooled):
            engines[k] = e


def _in_parallel(job: Callable[[int], list], results: list, jobs: int,
                 progress: Callable[[int, int], None] | None, sizes: list | None = None) -> None:
    """results[i] = job(i) for every i, ``jobs`` at a time, each in its own thread.

    The longest jobs by ``sizes`` (an estimate: cases and fuzz expressions, times seconds per case) start
    first, so that a long one does not start last and leave the other slots idle; a slot takes the next
    job as soon as it is free.
    """
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    order = longest_first(sizes) if sizes is not None else list(range(len(results)))
    pool = ThreadPoolExecutor(max_workers=jobs)
    waiting = iter(order)
    try:
        # A job is handed to the pool when a slot frees (one waits ready per slot), so that a batch of any
        # size holds a few futures at a time, not one per submission.
        running = {pool.submit(job, i): i for i in itertools.islice(waiting, 2 * jobs)}
        done = 0
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                results[running.pop(future)] = future.result()
                running.update((pool.submit(job, i), i) for i in itertools.islice(waiting, 1))
                done += 1
                if progress is not None:
                    progress(done, len(results))
    except BaseException:  # interrupted: kill the engine processes so that the threads end now
        reaper.stop_all()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def longest_first(sizes: list) -> list[int]:
    """Indices of ``sizes``, largest first (ties keep their order)."""
    return sorted(range(len(sizes)), key=lambda i: -sizes[i])


def _grade_one(spec: str, submission: str | None, cases: list, limits: Limits,
               feedback: Feedback = Feedback(), worker: Worker | None = None,
               progs: list | None = None, engines: tuple = (),
               shared: ReferenceCache | None = None) -> list[EngineResult]:
    """One submission's results; a failure of the harness itself costs only this submission."""
    try:
        results = grade_engine(spec, cases, limits, feedback, worker, progs, engines, shared)
    except Exception as e:  # e.g. no more processes or file descriptors: grade the rest anyway
        return _could_not_grade(spec, submission, cases, f"{type(e).__name__}: {e}")
    return _with_submission(results, spec, submission)


def _could_not_grade(spec: str, submission: str | None, cases: list, why: str) -> list[EngineResult]:
    """The results of a submission the harness failed to grade (``why``), through no fault of its own."""
    why = f"the harness could not grade this submission: {why}"
    return _with_submission([EngineResult(submission or spec, spec, [
        CaseResult(id=c.id, status=Status.ERROR, score=0.0, max_score=float(c.points), message=why,
                   suite=c.suite, name=c.name, description=c.description, tags=c.tags,
                   visibility=c.visibility) for c in cases], load_error=why)], spec, submission)


def _with_submission(results: list[EngineResult], spec: str, submission: str | None) -> list[EngineResult]:
    several = submission or (Path(spec).stem if os.sep in spec or spec.endswith(".py") else spec)
    for r in results:  # one submission's engines share its id, so that its total is capped once
        r.submission = submission or (several if len(results) > 1 else r.engine)
    return results
