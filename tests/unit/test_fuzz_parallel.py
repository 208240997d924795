"""--fuzz with --jobs N, in process: submissions fuzz and shrink at the same time, with the same results, in
threads and in job processes (harness.running.jobs, forked from the test process).

The engine processes are replaced by in-process sessions that run each program through the worker's own
``run``: the reference engine, and mutants of tests/engines/micrograd_full.py.  Overlap is proven with
readiness signals (a barrier both submissions must reach while shrinking), never with sleeps or clocks.
"""

from __future__ import annotations

import importlib.util
import threading

import pytest
from conftest import fixture_engine

from harness.diagnosis import fuzz
from harness.engine_side.loading import find_engines
from harness.engine_side.worker import run as run_program
from harness.running.observation import Observation
from harness.running.reference import REFERENCE_SPEC
from harness.running.runner import Limits
from harness.running.shared import ReferenceCache

WAIT = 60.0  # seconds a submission waits for the other before the test fails (it never hangs)


def _engine(spec: str):
    if spec == REFERENCE_SPEC:
        from reference_engine.plugin import ReferenceEngine

        return ReferenceEngine()
    module_spec = importlib.util.spec_from_file_location(f"fixture_{abs(hash(spec))}", spec)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return find_engines(module, spec)[0]


class InProcess:
    """A Session that runs programs in this process; ``on_run(session, programs)`` sees every batch."""

    on_run = staticmethod(lambda session, programs: None)
    engines: dict = {}

    def __init__(self, spec: str, limits: Limits, select: str | None = None, worker=None):
        self.spec, self.load_error = spec, ""
        if spec not in InProcess.engines:
            InProcess.engines[spec] = _engine(spec)
        self.engine = InProcess.engines[spec]
        self.batches = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def spawn(self):
        return self

    def run(self, programs: list, timeouts: list) -> list[Observation]:
        InProcess.on_run(self, programs)
        self.batches += 1
        return [Observation.from_wire(run_program(self.engine, p.to_wire()), p) for p in programs]


@pytest.fixture
def in_process(monkeypatch):
    monkeypatch.setattr(fuzz, "Session", InProcess)
    monkeypatch.setattr(InProcess, "on_run", staticmethod(lambda session, programs: None))
    return InProcess


def _fuzz(spec: str, shared: ReferenceCache, count: int = 20) -> fuzz.FuzzRun:
    return fuzz.run(spec, None, count, 7, Limits(), REFERENCE_SPEC, shared)


def _summary(out: fuzz.FuzzRun) -> tuple:
    return ([(o.case.description, o.signature) for o in out.outcomes],
            {sig: o.case.description for sig, o in out.minimal.items()}, out.summary)


def _in_threads(specs: list, shared: ReferenceCache, count: int = 20) -> list:
    results: list = [None] * len(specs)
    errors: list = []

    def fuzz_one(i: int) -> None:
        try:
            results[i] = _fuzz(specs[i], shared, count)
        except BaseException as e:  # reported by the test, not lost in the thread
            errors.append(e)

    threads = [threading.Thread(target=fuzz_one, args=(i,)) for i in range(len(specs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(2 * WAIT)
    assert not any(t.is_alive() for t in threads) and not errors, errors
    return results


def test_two_submissions_shrink_at_the_same_time(in_process):
    """Each submission, once shrinking runs new expressions in its engine, waits until the other one is
    shrinking too: with a lock around shrinking, the barrier breaks and the test fails."""
    specs = [str(fixture_engine("bug_sub_sign")), str(fixture_engine("bug_tanh"))]
    barrier = threading.Barrier(len(specs), timeout=WAIT)
    met: dict = {}

    def on_run(session, programs):
        # batch 0 and the form probes come before the corpus run; a run after the corpus is shrinking
        if session.spec in specs and session.batches > len(fuzz.ALL_FORMS) and session.spec not in met:
            try:
                barrier.wait()
                met[session.spec] = True
            except threading.BrokenBarrierError:
                met[session.spec] = False

    in_process.on_run = staticmethod(on_run)
    together = _in_threads(specs, ReferenceCache())
    assert met == {s: True for s in specs}
    assert all(out.minimal for out in together)
    alone = [_fuzz(s, ReferenceCache()) for s in specs]
    assert [_summary(o) for o in together] == [_summary(o) for o in alone]


def test_parallel_fuzz_with_sharing_off_gives_the_results_of_one_at_a_time(in_process):
    specs = [str(fixture_engine(n)) for n in ("bug_mul_swapped", "micrograd_full")]
    one_at_a_time = [_summary(_fuzz(s, ReferenceCache())) for s in specs]
    assert [_summary(o) for o in _in_threads(specs, ReferenceCache(enabled=False))] == one_at_a_time
    assert one_at_a_time[0][1] and not one_at_a_time[1][1]  # the mul bug shrank; the correct engine agreed


def test_the_slots_that_wait_for_a_corpus_generate_its_parts_together(in_process, monkeypatch):
    """A corpus comes in parts (here 4 of 10 expressions); two submissions asking for it at once each
    generate parts, at the same time (a barrier both must reach inside generation), and the corpus and
    the results are those of one submission at a time."""
    monkeypatch.setattr(fuzz, "PART_MIN", 10)
    assert fuzz.part_sizes(40) == [10, 10, 10, 10]
    specs = [str(fixture_engine("bug_sub_sign")), str(fixture_engine("micrograd_full"))]
    one = ReferenceCache()
    alone = [_fuzz(s, c, count=40) for s, c in zip(specs, (one, ReferenceCache()))]
    barrier = threading.Barrier(len(specs), timeout=WAIT)
    generating: dict = {}
    corpus = fuzz._corpus

    def part(ref, forms, count, seed, timeout, shared, budget):
        me = threading.current_thread().name
        if me not in generating:
            try:
                barrier.wait()
                generating[me] = True
            except threading.BrokenBarrierError:
                generating[me] = False
        return corpus(ref, forms, count, seed, timeout, shared, budget)

    monkeypatch.setattr(fuzz, "_corpus", part)
    cache = ReferenceCache()
    together = _in_threads(specs, cache, count=40)
    assert list(generating.values()) == [True, True]
    assert cache.computed == one.computed >= 4  # each part once (and a top-up when parts repeat each other)
    assert [_summary(o) for o in together] == [_summary(o) for o in alone]
    ids = [o.case.id for o in together[0].outcomes]
    assert ids == [f"fuzz::{k}" for k in range(1, 41)]
    assert len({o.key for o in together[0].outcomes}) == 40  # no expression twice across parts
    assert together[0].minimal and not together[1].minimal


# --- the same in job processes (harness.running.jobs): forked graders, readiness signals across processes ---

def _in_job_processes(specs: list, shared: ReferenceCache, fuzz_one, count: int = 20) -> list:
    """``fuzz_one(spec, shared, count)`` for each spec, each in a job process of its own (2 at once), with the
    batch's reference work in ``shared`` here, in the parent."""
    from harness.running import jobs

    results: list = [None] * len(specs)
    jobs.grade(lambda i, here: fuzz_one(specs[i], here, count), lambda got: got,
               lambda i, why: pytest.fail(f"the job process of {specs[i]} ended: {why}"), results, 2, None,
               list(range(len(specs))), shared)
    return results


def _barrier():
    import multiprocessing

    return multiprocessing.get_context("fork").Barrier(2, timeout=WAIT)  # made before the fork: shared


def test_two_submissions_shrink_at_the_same_time_in_job_processes(in_process):
    """As in threads: each job process, once its submission shrinks, waits at a barrier for the other one."""
    specs = [str(fixture_engine("bug_sub_sign")), str(fixture_engine("bug_tanh"))]
    alone = [_summary(_fuzz(s, ReferenceCache())) for s in specs]
    barrier = _barrier()
    met: dict = {}  # in each job process: whether it met the other one while shrinking

    def on_run(session, programs):
        if session.spec in specs and session.batches > len(fuzz.ALL_FORMS) and "met" not in met:
            try:
                barrier.wait()
                met["met"] = True
            except threading.BrokenBarrierError:
                met["met"] = False

    in_process.on_run = staticmethod(on_run)

    def fuzz_one(spec, shared, count):
        return _summary(_fuzz(spec, shared, count)), met.get("met")

    together = _in_job_processes(specs, ReferenceCache(), fuzz_one)
    assert [m for _, m in together] == [True, True]
    assert [s for s, _ in together] == alone and all(s[1] for s in alone)


def test_job_processes_waiting_for_a_corpus_generate_its_parts_together(in_process, monkeypatch):
    """As in threads: two job processes asking for a corpus at once each generate parts of it, at the same
    time (a barrier inside generation), and the parent's cache counts each part once."""
    import os

    monkeypatch.setattr(fuzz, "PART_MIN", 10)
    specs = [str(fixture_engine("bug_sub_sign")), str(fixture_engine("micrograd_full"))]
    one = ReferenceCache()
    alone = [_summary(_fuzz(s, c, count=40)) for s, c in zip(specs, (one, ReferenceCache()))]
    barrier = _barrier()
    generating: dict = {}  # in each job process: whether it met the other one inside generation
    corpus = fuzz._corpus

    def part(ref, forms, count, seed, timeout, shared, budget):
        if "met" not in generating:
            try:
                barrier.wait()
                generating["met"] = True
            except threading.BrokenBarrierError:
                generating["met"] = False
        return corpus(ref, forms, count, seed, timeout, shared, budget)

    monkeypatch.setattr(fuzz, "_corpus", part)

    def fuzz_one(spec, shared, count):
        return _summary(_fuzz(spec, shared, count)), generating.get("met"), os.getpid()

    cache = ReferenceCache()
    together = _in_job_processes(specs, cache, fuzz_one, count=40)
    assert [m for _, m, _ in together] == [True, True]
    assert len({pid for _, _, pid in together} | {os.getpid()}) == 3  # two job processes, not this one
    assert cache.computed == one.computed >= 4  # each part once, counted here
    assert [s for s, _, _ in together] == alone
