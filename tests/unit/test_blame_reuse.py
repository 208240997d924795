"""Blame runs in the submission's own engine process when that is safe (harness.running.grading._Kept).

Counted, in process: ``runner.Worker`` is replaced by a fake engine process that loads the engine in this
process and runs each program through the worker's own ``run`` (the reference engine, and a mutant of
tests/engines/notebook_full.py), so every ``Session``, restart and hand-over is the real one.  Each fake
process records the programs it was sent and whether it was stopped.
"""

from __future__ import annotations

import importlib.util
from collections import deque
from pathlib import Path

import pytest
from conftest import fixture_engine

from harness.cases.loader import load_suite
from harness.diagnosis import blame as blaming
from harness.engine_side.loading import find_engines
from harness.engine_side.worker import run as run_program
from harness.running import grading, runner
from harness.running.budget import Budget
from harness.running.grading import Feedback
from harness.running.reference import REFERENCE_SPEC
from harness.running.runner import Limits, Session
from harness.running.shared import ReferenceCache
from harness.sandbox import reaper

REAL_WORKER = runner.Worker
BUGGY = str(fixture_engine("bug_sub_sign"))  # d(a - b)/db is +1
CORRECT = str(fixture_engine("notebook_full"))
_ENGINES: dict = {}


def _engine(spec: str):
    if spec not in _ENGINES:
        if spec == REFERENCE_SPEC:
            from reference_engine.plugin import ReferenceEngine

            _ENGINES[spec] = ReferenceEngine()
        else:
            module_spec = importlib.util.spec_from_file_location(f"reuse_{Path(spec).stem}", spec)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
            _ENGINES[spec] = find_engines(module, spec)[0]
    return _ENGINES[spec]


class FakeWorker:
    """An engine process in this process; ``ran`` lists the ids of the programs it was sent, in order."""

    spawned: list[FakeWorker] = []
    clock = None  # a Clock: each answer takes a second
    trouble: dict = {}  # spec -> "die" or "memory": what the next program sent to a process of it does (once)
    full = False  # a fake process's prints reach their cap once it has run a probe

    def __init__(self, spec: str, select: str | None, limits: Limits, greet: bool = True):
        FakeWorker.spawned.append(self)
        self.spec, self.select, self.killed, self.dead = spec, select, False, False
        self.engine = _engine(spec)
        self.ran: list[str] = []
        name = getattr(self.engine, "name", "engine")
        self.replies: deque = deque([{"ready": True, "engines": [name], "engine": name}])

    def send(self, batch: list) -> None:
        for program in batch:
            self.ran.append(program["id"])
            trouble = FakeWorker.trouble.pop(self.spec, "")
            if trouble == "die":
                self.replies.append(EOFError())
            elif trouble == "memory":
                self.replies.append({"id": program["id"], "status": "error", "error_type": "MemoryError",
                                     "message": "", "phase": "building the graph"})
            else:
                self.replies.append(run_program(self.engine, program))

    def receive(self, timeout: float, limit: int | None = None):
        assert not self.killed
        if self.dead:
            raise EOFError
        if FakeWorker.clock is not None:
            FakeWorker.clock.now += 1.0
        reply = self.replies.popleft()
        if isinstance(reply, BaseException):
            self.replies.clear()
            self.dead = True
            raise reply
        return reply

    def death(self) -> str:
        return "the engine process was killed by SIGKILL"

    def alive(self) -> bool:
        return not self.killed and not self.dead

    def output_full(self) -> bool:
        return FakeWorker.full and any(pid.startswith("probe::") for pid in self.ran)

    def kill(self) -> None:
        self.killed = True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def fake_worker(monkeypatch):
    FakeWorker.spawned, FakeWorker.clock, FakeWorker.trouble, FakeWorker.full = [], None, {}, False
    monkeypatch.setattr(runner, "Worker", FakeWorker)
    return FakeWorker


CASES = """
suite: reuse
cases:
  - name: sub_one
    inputs: {a: 5, b: 2}
    output: a - b
    expect: {value: 3, grad: {a: 1, b: -1}}
  - name: mul_add
    inputs: {a: 2, b: 3}
    output: a * b + a
    expect: {value: 8, grad: {a: 4, b: 2}}
  - name: sub_two
    inputs: {a: 1.5, b: 4}
    output: (a - b) * a
    expect: {grad: {a: -1, b: -1.5}}
"""


def _cases(tmp_path, hidden: tuple = ()) -> list:
    path = tmp_path / "reuse.yaml"
    text = CASES
    for name in hidden:
        text = text.replace(f"  - name: {name}\n", f"  - name: {name}\n    visibility: hidden\n")
    path.write_text(text)
    return list(load_suite(path).cases)


def _engine_processes(spec: str = BUGGY) -> list[FakeWorker]:
    return [w for w in FakeWorker.spawned if w.spec == spec]


def _grade(spec: str, cases: list, feedback: Feedback | None = None):
    (result,) = grading.grade_engine(spec, cases, Limits(), feedback or Feedback(),
                                     shared=ReferenceCache(enabled=False))
    return result


def _diagnoses(result) -> dict:
    return {c.id: [d.message for d in c.diagnosis] for c in result.cases if c.status != "passed"}


def test_blame_runs_in_the_process_that_ran_the_cases(tmp_path):
    cases = _cases(tmp_path)
    result = _grade(BUGGY, cases)
    assert [c.status for c in result.cases] == ["failed", "passed", "failed"]
    assert any("sub: d(a - b)/db is 1, expected -1" in m for m in _diagnoses(result)[cases[0].id])
    (only,) = _engine_processes()  # the submission's engine process: blame started none of its own
    ids = [c.id for c in cases]
    assert only.ran[:3] == ids and cases[0].id in only.ran[3:]  # the cases, then blame's traced re-runs
    assert any(pid.startswith("probe::") for pid in only.ran)
    assert _engine_processes(REFERENCE_SPEC)  # the reference side still runs in processes of its own
    assert all(w.killed for w in FakeWorker.spawned)


def test_the_results_are_those_of_a_fresh_process(tmp_path, monkeypatch):
    cases = _cases(tmp_path)
    reused = _diagnoses(_grade(BUGGY, cases))
    monkeypatch.setattr(runner.Session, "hand_over", lambda self: None)  # as before: blame in a fresh process
    FakeWorker.spawned = []
    fresh = _diagnoses(_grade(BUGGY, cases))
    assert len(_engine_processes()) == 2
    assert reused == fresh and all(reused.values())


def test_the_visible_blame_never_reuses_a_process_that_ran_hidden_cases(tmp_path):
    cases = _cases(tmp_path, hidden=("sub_two",))
    visible, hidden = cases[0].id, cases[2].id
    result = _grade(BUGGY, cases)
    assert all(_diagnoses(result).values())
    processes = _engine_processes()
    # the visible cases; the hidden ones after the fence, whose blame reuses it; a fresh one for the visible blame
    assert len(processes) == 3
    first, fenced, fresh = processes
    assert hidden not in first.ran and visible not in fenced.ran and hidden not in fresh.ran
    assert fenced.ran.count(hidden) == 2  # the case, then its traced re-run in the same process
    assert fresh.ran[0] == visible and any(pid.startswith("probe::") for pid in fresh.ran)
    assert all(w.killed for w in FakeWorker.spawned)


def test_with_only_hidden_cases_their_blame_reuses_the_process(tmp_path):
    cases = _cases(tmp_path, hidden=("sub_one", "mul_add", "sub_two"))
    result = _grade(BUGGY, cases)
    assert all(_diagnoses(result).values())
    (only,) = _engine_processes()
    assert only.ran.count(cases[0].id) == 2


def test_a_process_that_died_after_the_cases_is_not_reused(tmp_path, monkeypatch):
    cases = _cases(tmp_path)
    expected = _diagnoses(_grade(BUGGY, cases))
    FakeWorker.spawned = []
    fenced = grading._fenced

    def then_die(session, *args):
        observations = fenced(session, *args)
        session.worker.dead = True  # e.g. the out-of-memory killer, after its last answer
        return observations

    monkeypatch.setattr(grading, "_fenced", then_die)
    assert _diagnoses(_grade(BUGGY, cases)) == expected
    assert len(_engine_processes()) == 2  # a fresh one for blame, as before


@pytest.mark.parametrize("trouble", ["die", "memory", "full"])
def test_answers_that_may_owe_to_the_reused_process_are_asked_again_of_a_fresh_one(trouble, tmp_path, monkeypatch):
    """It died before its first answer to blame, ran out of memory, or its prints reached their cap."""
    cases = _cases(tmp_path)
    expected = _diagnoses(_grade(BUGGY, cases))
    FakeWorker.spawned = []
    probe = blaming._probe

    def troubled(*args, **kwargs):
        if trouble == "full":
            FakeWorker.full = True
        else:
            FakeWorker.trouble[BUGGY] = trouble  # the first program blame sends to the engine
        return probe(*args, **kwargs)

    monkeypatch.setattr(blaming, "_probe", troubled)
    assert _diagnoses(_grade(BUGGY, cases)) == expected
    # the one that ran the cases (after dying: and its restart), and a fresh one for all of blame's programs
    processes = _engine_processes()
    assert len(processes) == (3 if trouble == "die" else 2) and all(w.killed or w.dead for w in processes)
    assert processes[-1].ran == processes[0].ran[3:]


def test_a_process_whose_prints_reached_their_cap_is_not_reused(tmp_path, monkeypatch):
    FakeWorker.full = True  # for a fake process that ran a probe
    cases = _cases(tmp_path)
    fenced = grading._fenced

    def filled(session, *args):
        observations = fenced(session, *args)
        session.worker.ran.append("probe::printed")  # as if the cases' prints had reached the cap
        return observations

    monkeypatch.setattr(grading, "_fenced", filled)
    _grade(BUGGY, cases)
    first, fresh = _engine_processes()
    assert first.ran == [c.id for c in cases] + ["probe::printed"] and cases[0].id in fresh.ran


def _over_budget(monkeypatch):
    """A submission whose budget is used up by its cases: each answer takes a second of a 4 s budget."""
    clock = Clock()
    FakeWorker.clock = clock
    monkeypatch.setattr(grading, "budget_for", lambda limits, timeouts, engines=1: Budget(4.0, None, clock=clock))


def _boom(*args, **kwargs):
    raise RuntimeError("a bug in the harness")


@pytest.mark.parametrize("why", ["no blame", "no failing case", "budget spent", "blame raises", "fuzz raises"])
def test_no_engine_process_is_left_when_blame_is_skipped_or_fails(why, tmp_path, monkeypatch):
    cases = _cases(tmp_path)
    spec = CORRECT if why == "no failing case" else BUGGY
    feedback = Feedback(blame=why != "no blame", fuzz=3 if why == "fuzz raises" else 0)
    if why == "budget spent":
        _over_budget(monkeypatch)
    if why == "blame raises":
        monkeypatch.setattr(blaming, "_probe", _boom)
    if why == "fuzz raises":  # before blame: the kept process has not been offered to it yet
        monkeypatch.setattr(grading.fuzzing, "run", _boom)
    (result,) = grading._grade_one(spec, "s1", cases, Limits(), feedback, shared=ReferenceCache(enabled=False))
    assert ("RuntimeError: a bug in the harness" in result.load_error) == why.endswith("raises")
    assert (why == "budget spent") == any(n.startswith("blame and fuzz skipped") for n in result.load_notes)
    (engine_process,) = _engine_processes(spec)
    assert engine_process.alive() is False and all(w.killed for w in FakeWorker.spawned)


def test_hand_over_moves_a_live_process_and_keeps_none_after_a_timeout_or_a_crash():
    with Session(BUGGY, Limits()) as session:
        session.start()
        worker = session.worker
        heir = session.hand_over()
        assert heir is not None and heir.worker is worker and session.worker is None
        assert heir.budget is None and heir.name == session.name and heir.select == session.name
        session.close()
        assert not worker.killed  # the heir owns it now
        heir.close()
        assert worker.killed
    with Session(BUGGY, Limits()) as dying:
        dying.start()
        dying.worker.dead = True
        assert dying.hand_over() is None
    assert Session(BUGGY, Limits()).hand_over() is None  # never loaded


def test_without_blame_the_process_is_stopped_before_fuzz_starts(tmp_path, monkeypatch):
    seen = []

    def fuzz_run(*args, **kwargs):
        seen.append([w.killed for w in _engine_processes()])
        raise RuntimeError("enough")

    monkeypatch.setattr(grading.fuzzing, "run", fuzz_run)
    with pytest.raises(RuntimeError, match="enough"):
        _grade(BUGGY, _cases(tmp_path), Feedback(blame=False, fuzz=3))
    assert seen == [[True]]


@pytest.mark.slow
@pytest.mark.parametrize("hidden", [(), ("sub_two",)], ids=["visible", "with a hidden case"])
def test_real_engine_processes_one_fewer_and_none_left(hidden, tmp_path, monkeypatch):
    """Real engine processes, counted where they start (``reaper.spawn``): reuse saves exactly one per
    submission, the results are the same, and no engine process is left when grading returns."""
    monkeypatch.setattr(runner, "Worker", REAL_WORKER)
    spawn, spawned = reaper.spawn, []
    monkeypatch.setattr(reaper, "spawn", lambda start: spawned.append(1) or spawn(start))
    cases = _cases(tmp_path, hidden)
    counts, diagnoses = [], []
    for reuse in (True, False):
        if not reuse:
            monkeypatch.setattr(runner.Session, "hand_over", lambda self: None)
        spawned.clear()
        diagnoses.append(_diagnoses(_grade(BUGGY, cases)))
        counts.append(len(spawned))
        assert not reaper._workers
    assert counts[0] == counts[1] - 1 and diagnoses[0] == diagnoses[1] and all(diagnoses[0].values())
