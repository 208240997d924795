"""The batch's shared reference work (harness.running.shared): computed once, identical results either way."""

from __future__ import annotations

import json
import threading

import pytest
from conftest import fixture_engine

from harness.model import EngineStatus
from harness.running import shared as sharing
from harness.running.observation import Observation
from harness.running.program import Program
from harness.running.runner import Limits
from harness.running.shared import ReferenceCache


def prog(pid: str, x: float = 1.0) -> Program:
    return Program(id=pid, inputs=[["a", x]], steps=[], output=[["name", "a"]], backward=0, grads=[],
                   structure=False)


@pytest.fixture
def reference_runs(monkeypatch):
    """Replace the reference process with a recorder: the programs each 'process' was asked to run."""
    asked: list[list[str]] = []

    def run_programs(spec, select, programs, timeouts, limits):
        assert spec == "ref" and select is None and limits.trusted  # the reference, in its own sandbox
        asked.append([p.id for p in programs])
        return [Observation(p.id, EngineStatus.OK, value=p.inputs[0][1]) for p in programs]

    monkeypatch.setattr(sharing, "run_programs", run_programs)
    return asked


def test_the_same_program_under_another_id_is_answered_from_the_cache(reference_runs):
    cache = ReferenceCache()
    first = cache.run("ref", [prog("probe::1", 2), prog("probe::2", 3)], [1.0, 1.0], Limits())
    again = cache.run("ref", [prog("probe::7", 3), prog("probe::8", 4)], [1.0, 1.0], Limits())
    assert [(o.id, o.value) for o in first + again] == [("probe::1", 2), ("probe::2", 3), ("probe::7", 3),
                                                          ("probe::8", 4)]
    assert reference_runs == [["probe::1", "probe::2"], ["probe::8"]]
    assert cache.runs == 3


def test_with_sharing_off_every_request_runs(reference_runs):
    cache = ReferenceCache(enabled=False)
    for _ in range(3):
        cache.run("ref", [prog("p", 2)], [1.0], Limits())
    assert cache.runs == 3 and len(reference_runs) == 3


def test_a_crashed_reference_answer_is_not_kept(monkeypatch):
    calls = []

    def run_programs(spec, select, programs, timeouts, limits):
        calls.append(1)
        return [Observation(p.id, EngineStatus.CRASHED, message="killed") for p in programs]

    monkeypatch.setattr(sharing, "run_programs", run_programs)
    cache = ReferenceCache()
    cache.run("ref", [prog("p")], [1.0], Limits())
    cache.run("ref", [prog("p")], [1.0], Limits())
    assert len(calls) == 2


def test_concurrent_requests_for_the_same_program_run_it_once(monkeypatch):
    gate, entered = threading.Event(), threading.Event()
    calls = []

    def run_programs(spec, select, programs, timeouts, limits):
        calls.append([p.id for p in programs])
        entered.set()
        gate.wait(10)
        return [Observation(p.id, EngineStatus.OK, value=1.0) for p in programs]

    monkeypatch.setattr(sharing, "run_programs", run_programs)
    cache = ReferenceCache()
    out: list = []
    first = threading.Thread(target=lambda: out.append(cache.run("ref", [prog("a")], [1.0], Limits())))
    first.start()
    entered.wait(10)
    second = threading.Thread(target=lambda: out.append(cache.run("ref", [prog("b")], [1.0], Limits())))
    second.start()
    gate.set()
    first.join(10)
    second.join(10)
    assert calls == [["a"]] and sorted(o[0].id for o in out) == ["a", "b"]


def test_a_value_is_computed_once_per_key_unless_sharing_is_off():
    cache, off, made = ReferenceCache(), ReferenceCache(enabled=False), []
    for c in (cache, cache, off, off):
        c.value(("fuzz", 7), lambda: made.append(1) or len(made))
    assert len(made) == 3


def test_the_environment_turns_sharing_off(monkeypatch):
    monkeypatch.setenv(sharing.ENV_SWITCH, "0")
    assert not sharing.sharing_enabled(True)
    monkeypatch.setenv(sharing.ENV_SWITCH, "1")
    assert sharing.sharing_enabled(True) and not sharing.sharing_enabled(False)


class FakeSession:
    """A reference process that records being closed."""

    def __init__(self, spec, limits, select=None):
        self.spec, self.load_error, self.closed = spec, "", False

    def run(self, programs, timeouts):
        return [Observation(p.id, EngineStatus.OK, value=p.inputs[0][1]) for p in programs]

    def close(self):
        self.closed = True


@pytest.fixture
def kept(monkeypatch):
    monkeypatch.setattr(sharing, "Session", FakeSession)
    return sharing.KeptSessions()


def test_a_kept_reference_process_serves_one_borrower_at_a_time(kept):
    limits = Limits(trusted=True)
    with kept.borrow("ref", limits) as first:
        with kept.borrow("ref", limits) as second:  # the first is in use: another process
            assert second is not first
    with kept.borrow("ref", limits) as again:
        assert again in (first, second) and not again.closed
    with kept.borrow("other", limits) as other:
        assert other not in (first, second)
    kept.close()
    assert first.closed and second.closed and other.closed
    with kept.borrow("ref", limits) as fresh:  # after close: a new one
        assert fresh not in (first, second)


def test_a_kept_process_that_failed_to_load_or_served_long_is_not_kept(kept, monkeypatch):
    limits = Limits(trusted=True)
    with kept.borrow("ref", limits) as broken:
        broken.load_error = "no such engine"
    assert broken.closed
    monkeypatch.setattr(sharing.KeptSessions, "MAX_BORROWS", 3)
    seen = []
    for _ in range(4):
        with kept.borrow("ref", limits) as session:
            seen.append(session)
    assert seen[0] is seen[1] is seen[2] and seen[0].closed and seen[3] is not seen[0]


def test_a_keeping_cache_asks_one_kept_process(kept):
    cache = ReferenceCache(keep=True)
    for n in range(3):
        assert cache.run("ref", [prog(f"p{n}", n)], [1.0], Limits())[0].value == n
    assert cache.kept is not None and len(cache.kept._live) == 1
    cache.close()
    assert not cache.kept._live


# --- whole batches: these start engine processes (the grading itself runs in this process) ---

def _cases():
    from harness.cases.loader import load_suites

    suites = {s.name: s for s in load_suites()}
    return suites["ops"].cases[:7] + suites["graphs"].cases[:3]  # add and sub cases; x*x, x+x, x-x


def _report(run) -> str:
    from harness.reporting.json import as_dict

    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k != "duration_s"}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x

    return json.dumps(strip(as_dict(run)), indent=1, sort_keys=True)


@pytest.mark.slow
def test_verdicts_and_reports_are_identical_with_sharing_on_and_off_one_or_two_jobs_in_processes_or_threads(
        monkeypatch):
    from harness.running import jobs as job_processes
    from harness.running.grading import Feedback, grade

    specs = [str(fixture_engine(n)) for n in ("bug_sub_sign", "micrograd_full", "bug_tanh", "bug_sub_sign",
                                              "bug_assign_grad")]
    cases = _cases()
    reports = {}
    # Sharing on and off, in job processes and in threads (sharing off in threads adds nothing: the cache a
    # thread asks is the one a job process's proxy asks), and one at a time.
    for share, jobs, processes in ((True, 2, "1"), (True, 2, "0"), (False, 2, "1"), (True, 1, "1")):
        monkeypatch.setenv(job_processes.ENV_SWITCH, processes)
        run = grade(specs, cases, Limits(), jobs=jobs, ids=[f"s{i}" for i in range(len(specs))],
                    feedback=Feedback(fuzz=12, seed=7, share=share))
        reports[share, jobs, processes] = _report(run)
    first = reports[True, 2, "1"]
    assert '"culprit": "sub"' in first  # blame ran and found something to compare
    assert '"minimal": [' in first and '"shrunk": {' in first  # fuzz shrank a failure
    assert "could not grade" not in first
    assert all(report == first for report in reports.values())


@pytest.mark.slow
@pytest.mark.parametrize("processes", ["1", "0"], ids=["job processes", "threads"])
def test_n_identical_failing_submissions_run_the_reference_work_once(processes, monkeypatch):
    """With job processes, the counts are the parent's: every job process asks its cache."""
    from harness.running import jobs as job_processes
    from harness.running.grading import Feedback, grade_plan

    monkeypatch.setenv(job_processes.ENV_SWITCH, processes)
    cases = _cases()
    spec = str(fixture_engine("bug_sub_sign"))
    counted = {}
    for n, share in ((1, True), (3, True), (3, False)):
        cache = ReferenceCache(enabled=share)
        run = grade_plan([((spec, f"s{i}"), cases) for i in range(n)], Limits(), jobs=2,
                         feedback=Feedback(fuzz=6, seed=7), shared=cache)
        assert all(c.diagnosis for e in run.engines for c in e.cases if c.status == "failed")
        counted[n, share] = (cache.runs, cache.computed)
    once = counted[1, True]
    assert once[0] > 0 and once[1] >= 1  # the fuzz corpus (a sign error needs no graph shape: test below)
    assert counted[3, True] == once
    assert counted[3, False] == (3 * once[0], 3 * once[1])


def test_long_submissions_start_first():
    from harness.running.grading import longest_first

    assert longest_first([3, 30, 3, 330, 30]) == [3, 1, 4, 0, 2]


def test_a_graphs_shape_is_worked_out_once_per_program_in_a_batch(monkeypatch):
    """Blame's patterns need the shape of every case of a failing submission; in a batch it is the same."""
    from types import SimpleNamespace

    from harness.diagnosis import blame
    from harness.diagnosis import graph as graphs
    from harness.model import CaseResult, Status

    real, calls = graphs.shape, []
    monkeypatch.setattr(graphs, "shape", lambda program: calls.append(program.id) or real(program))

    def item(pid: str, out: str) -> SimpleNamespace:
        program = Program(id=pid, inputs=[["a", 2.0], ["b", 3.0]], steps=[["set", "c", [["name", "a"], ["name", out],
                          ["op", "mul", 2]]]], output=[["name", "c"]], backward=1, grads=["a"], structure=False)
        return SimpleNamespace(case=SimpleNamespace(id=pid, backward=1), program=program,
                               observation=Observation(pid, EngineStatus.OK),
                               result=CaseResult(id=pid, name=pid, suite="s", status=Status.FAILED, score=0,
                                                 max_score=1))

    cache, off = ReferenceCache(), ReferenceCache(enabled=False)
    shapes = [blame._record(item(pid, out), c).shape for c in (cache, cache, off)
              for pid, out in (("x", "b"), ("y", "a"))]
    assert calls == ["x", "y", "x", "y"]  # a*b and a*a once each in the batch (twice over); again without
    assert shapes[0] == shapes[2] == shapes[4] and shapes[1] == shapes[3] == shapes[5]
    assert shapes[0].reuse is False and shapes[1].reuse is True
