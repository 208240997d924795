"""Job slots as grader processes (harness.running.jobs): what a job process that dies costs, and the batch's
shared reference work claimed across processes.

These fork job processes from the test process; no engine process is started (the grading of a submission is
replaced).  Readiness is signalled with multiprocessing events made before the fork, never with sleeps.
"""

from __future__ import annotations

import multiprocessing
import threading
import os
import signal
from types import SimpleNamespace

import pytest

from harness.model import EngineResult
from harness.running import grading
from harness.running import jobs as job_processes
from harness.running.runner import Limits
from harness.running.shared import ReferenceCache

WAIT = 60.0  # seconds a job process waits for a signal before the test fails (it never hangs)
CTX = multiprocessing.get_context("fork")


def _plan(n: int) -> list:
    case = SimpleNamespace(id="s::c", suite="s", name="c", points=1.0, description="", tags=(), visibility="visible")
    return [((f"spec-{k}", f"s{k}"), [case]) for k in range(n)]


@pytest.fixture
def no_cases(monkeypatch):
    """grade_plan without parsed cases: their programs, reference expectations and fingerprint stubbed."""
    monkeypatch.setenv(job_processes.ENV_SWITCH, "1")
    monkeypatch.setattr(grading.reference, "resolve", lambda cases, limits, lost, suspects: list(cases))
    monkeypatch.setattr(grading.programs, "build", lambda case: case)
    monkeypatch.setattr(grading, "fingerprint", lambda cases: "")


def test_a_job_process_killed_mid_item_costs_that_item_only(no_cases, monkeypatch):
    """The batch finishes; each dead job process's item gets the harness-error results; new job processes
    grade the items after them (here both first job processes die, so only new ones can)."""
    def grade_one(spec, submission, cases, *args, **kwargs):
        if submission in ("s0", "s1"):  # the first two items: one in each job process
            os.kill(os.getpid(), signal.SIGKILL)  # as the memory killer would
        return [EngineResult(submission, spec, [], load_notes=[f"graded in {os.getpid()}"], submission=submission)]

    monkeypatch.setattr(grading, "_grade_one", grade_one)
    done: list = []
    run = grading.grade_plan(_plan(6), Limits(), jobs=2, progress=lambda k, n: done.append((k, n)))
    assert done == [(k, 6) for k in range(1, 7)]
    by_id = {e.submission: e for e in run.engines}
    assert list(by_id) == [f"s{k}" for k in range(6)]  # the plan's order
    for dead in (by_id["s0"], by_id["s1"]):
        assert dead.load_error == "the harness could not grade this submission: its job process killed by SIGKILL"
        assert [(c.id, c.status, c.message) for c in dead.cases] == [("s::c", "error", dead.load_error)]
    alive = [by_id[f"s{k}"] for k in range(2, 6)]
    assert not any(e.load_error for e in alive)
    assert os.getpid() not in {int(e.load_notes[0].split()[-1]) for e in alive}


def test_an_error_outside_the_submissions_grading_fails_its_item_and_the_batch_goes_on(no_cases, monkeypatch):
    def grade_one(spec, submission, cases, *args, **kwargs):
        if submission == "s0":
            raise SystemExit(3)  # not an Exception: _grade_one lets it through, the job process ends
        return [EngineResult(submission, spec, [], submission=submission)]

    monkeypatch.setattr(grading, "_grade_one", grade_one)
    run = grading.grade_plan(_plan(3), Limits(), jobs=2)
    errors = [e.load_error for e in run.engines]
    assert errors == ["the harness could not grade this submission: its job process exited with code 1", "", ""]


def test_with_the_switch_off_or_one_job_no_job_process_is_forked(monkeypatch):
    monkeypatch.setenv(job_processes.ENV_SWITCH, "0")
    assert not job_processes.enabled(2, 5)
    monkeypatch.setenv(job_processes.ENV_SWITCH, "1")
    assert job_processes.enabled(2, 5) and not job_processes.enabled(1, 5) and not job_processes.enabled(2, 1)


def _claims(cache: ReferenceCache, grade_item, n: int = 2) -> list:
    results: list = [None] * n
    job_processes.grade(grade_item, lambda got: got, lambda i, why: f"ended: {why}", results, 2, None,
                        list(range(n)), cache)
    return results


def _second_claim_waits(cache: ReferenceCache, monkeypatch):
    """An event set (in this process, the parent) once a second job process waits for a claimed key."""
    waiting = CTX.Event()
    claim = cache._claim

    def counted(key):
        fut, owner = claim(key)
        if not owner:
            waiting.set()
        return fut, owner

    monkeypatch.setattr(cache, "_claim", counted)
    return waiting


def _owner_fails(cache: ReferenceCache, monkeypatch, fail) -> list:
    """Two job processes ask for one key: the first computes it and ``fail()``s once the second waits for
    it; what each one got (its value, or its error as text)."""
    owning = CTX.Event()
    waiting = _second_claim_waits(cache, monkeypatch)

    def grade_item(i, shared):
        if i == 0:
            def compute():
                owning.set()
                assert waiting.wait(WAIT)
                return fail()
        else:
            assert owning.wait(WAIT)

            def compute():
                return "computed by the waiter"
        try:
            return shared.value("corpus", compute)
        except Exception as e:
            return f"{type(e).__name__}: {e}"

    return _claims(cache, grade_item)


def test_when_the_job_process_computing_a_value_dies_its_waiters_get_an_error_not_a_hang(monkeypatch):
    cache = ReferenceCache()
    assert _owner_fails(cache, monkeypatch, lambda: os.kill(os.getpid(), signal.SIGKILL)) == [
        "ended: its job process killed by SIGKILL",
        "RuntimeError: the job process computing this reference work ended before it finished"]
    assert cache.value("corpus", lambda: "again") == "again"  # the failed key is computed anew


def test_a_failure_computing_a_value_reaches_its_waiters_and_the_key_is_computed_again(monkeypatch):
    """As within one process (ReferenceCache._compute): the owner raises, each waiter sees the same error."""
    cache = ReferenceCache()

    def fail():
        raise ValueError("no corpus today")

    assert _owner_fails(cache, monkeypatch, fail) == ["ValueError: no corpus today"] * 2
    assert cache.computed == 1
    assert cache.value("corpus", lambda: "again") == "again" and cache.computed == 2


def test_values_runs_and_counts_reach_the_parents_cache(monkeypatch):
    from harness.model import EngineStatus
    from harness.running import shared as sharing
    from harness.running.observation import Observation
    from harness.running.program import Program

    asked: list = []

    def run_programs(spec, select, programs, timeouts, limits):  # here, in the parent
        asked.append([p.id for p in programs])
        return [Observation(p.id, EngineStatus.OK, value=p.inputs[0][1]) for p in programs]

    monkeypatch.setattr(sharing, "run_programs", run_programs)
    cache = ReferenceCache()
    prog = Program(id="p", inputs=[["a", 2.0]], steps=[], output=[["name", "a"]], backward=0, grads=[],
                   structure=False)

    def grade_item(i, shared):
        got = shared.values([("part", 0), ("part", 1)], lambda key: key[1] * 10)
        obs = shared.run("ref", [prog], [1.0], Limits())
        shared.count(5)
        return got, obs[0].value, os.getpid()

    results = _claims(cache, grade_item)
    assert [r[:2] for r in results] == [([0, 10], 2.0)] * 2 and results[0][2] != results[1][2]
    assert asked == [["p"]]  # the reference program ran once, in this process
    assert cache.computed == 2 and cache.runs == 1 + 2 * 5


def test_a_job_process_asks_the_parent_for_a_settled_value_once(monkeypatch):
    """A graph's shape is asked for by every case of every failing submission: after the first answer, a
    job process answers from what it knows, without a round trip to the parent."""
    cache = ReferenceCache()
    claims: list = []
    claim = cache._claim
    monkeypatch.setattr(cache, "_claim", lambda key: claims.append(key) or claim(key))

    def grade_item(i, shared):
        return {shared.value(("shape", "x"), lambda: "the shape") for _ in range(50)}

    assert _claims(cache, grade_item) == [{"the shape"}] * 2
    assert claims == [("shape", "x")] * 2  # once per job process, not 50 times
    assert cache.computed == 1


def test_when_no_job_process_can_be_forked_the_batch_is_graded_in_threads(no_cases, monkeypatch):
    from harness.sandbox import reaper

    def no_fork(hold=()):
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(reaper, "fork_helper", no_fork)
    monkeypatch.setattr(grading, "_grade_one", lambda spec, submission, cases, *args, **kwargs: [
        EngineResult(submission, spec, [], load_notes=[str(os.getpid())], submission=submission)])
    run = grading.grade_plan(_plan(3), Limits(), jobs=2)
    assert [(e.submission, e.load_error, e.load_notes) for e in run.engines] == [
        (f"s{k}", "", [str(os.getpid())]) for k in range(3)]


def test_a_thread_waiting_for_a_value_another_thread_of_its_job_process_computes_does_not_block_it(monkeypatch):
    """The waiting thread does not hold the pipe to the parent: the computing thread needs it to answer."""
    import threading

    cache = ReferenceCache()
    waiting = _second_claim_waits(cache, monkeypatch)

    def grade_item(i, shared):
        if i == 1:
            return None
        owning, got = threading.Event(), []

        def compute():
            owning.set()
            assert waiting.wait(WAIT)  # the main thread asked for it meanwhile
            return "computed by the second thread"

        other = threading.Thread(target=lambda: got.append(shared.value("shape", compute)))
        other.start()
        assert owning.wait(WAIT)
        mine = shared.value("shape", lambda: "computed twice")
        other.join(WAIT)
        return mine, got

    assert _claims(cache, grade_item)[0] == ("computed by the second thread", ["computed by the second thread"])
    assert cache.computed == 1


def test_a_job_process_forked_while_a_dead_ones_pipe_is_being_closed_is_not_hurt(no_cases, monkeypatch):
    """The race behind a healthy submission's 'its job process exited with code 1 (ConnectionResetError)':
    the thread serving a job process that died closes its pipe (``os.close``, then the connection forgets its
    handle) while the main thread makes the next job process's pipes, which reuse the freed descriptor, and
    forks. A child forked between the two steps closed that stale handle: its own pipe. Here the close is held
    between its two steps until the new pipes exist; the fork must wait for it to finish."""
    from multiprocessing import connection

    closed_fd, resume = threading.Event(), threading.Event()
    real_close, real_pipe = connection.Connection.close, connection.Pipe

    def slow_close(conn):
        if threading.current_thread().name.startswith("job-process-") and conn._handle is not None:
            os.close(conn._handle)  # the first step: the descriptor is free
            closed_fd.set()
            resume.wait(WAIT)
            conn._handle = None  # the second step
            return
        real_close(conn)

    pipes = []

    def pipe(*args, **kwargs):
        pipes.append(1)
        if len(pipes) == 3:  # the second job process's first pipe: once the first one's is half closed
            assert closed_fd.wait(WAIT)
        made = real_pipe(*args, **kwargs)
        if len(pipes) == 4:
            resume.set()
        return made

    monkeypatch.setattr(connection.Connection, "close", slow_close)
    monkeypatch.setattr(connection, "Pipe", pipe)

    def grade_one(spec, submission, cases, *args, **kwargs):
        if submission == "s0":
            raise SystemExit(3)  # the first job process ends at once
        return [EngineResult(submission, spec, [], submission=submission)]

    monkeypatch.setattr(grading, "_grade_one", grade_one)
    run = grading.grade_plan(_plan(3), Limits(), jobs=2)
    errors = [e.load_error for e in run.engines]
    assert errors == ["the harness could not grade this submission: its job process exited with code 1", "", ""]
