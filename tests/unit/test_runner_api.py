"""The one runner API, ``Session``, in-process: a fake worker answers with the engine side's own ``run``.

Only the process is faked (spawn, pipes, kill); the programs are run by
``harness.engine_side.worker.run`` on the reference engine, and every reply goes
through the grader's validation, as from a real engine process.
"""

from __future__ import annotations

from collections import deque

import pytest

from harness.cases.loader import load_suite
from harness.engine_side import worker as engine_side
from harness.running import grading, reference, runner
from harness.running.program import Program
from harness.running.runner import Limits, Session
from harness.sandbox import reaper
from reference_engine.plugin import ReferenceEngine


class Renamed(ReferenceEngine):
    name = "renamed"


class FakeWorker:
    """An engine process in-process: ``spec`` picks its behaviour; a program id with 'hang' or 'die' does that."""

    spawned: list[FakeWorker] = []

    def __init__(self, spec: str, select: str | None, limits: Limits, greet: bool = True):
        if spec == "dies-for-good" and any(w.spec == spec for w in FakeWorker.spawned):
            raise reaper.Stopping("grade is stopping")
        FakeWorker.spawned.append(self)
        self.spec, self.select, self.killed, self.received = spec, select, False, 0
        engines = [ReferenceEngine(), Renamed()] if spec == "two-engines" else [ReferenceEngine()]
        names = [e.name for e in engines]
        self.engine = engines[names.index(select)] if select in names else engines[0]
        self.replies: deque = deque([{"ready": False, "error": "no engine found in broken.py"} if "broken" in spec
                                     else {"ready": True, "engines": names, "engine": self.engine.name}])

    def send(self, batch: list) -> None:
        for program in batch:
            if "hang" in program["id"]:
                self.replies.append(TimeoutError())
            elif "die" in program["id"]:
                self.replies.append(EOFError())
            else:
                self.replies.append(engine_side.run(self.engine, program))

    def receive(self, timeout: float, limit: int | None = None):
        assert not self.killed
        reply = self.replies.popleft()
        if isinstance(reply, BaseException):
            self.replies.clear()  # a killed or dead process answers nothing more
            raise reply
        self.received += 1
        return reply

    def death(self) -> str:
        return "the engine process was killed by SIGKILL"

    def alive(self) -> bool:
        return not self.killed

    def output_full(self) -> bool:
        return False

    def kill(self) -> None:
        self.killed = True


@pytest.fixture(autouse=True)
def fake_worker(monkeypatch):
    FakeWorker.spawned = []
    monkeypatch.setattr(runner, "Worker", FakeWorker)
    return FakeWorker


def program(pid: str, a: float = 2.0, b: float = 3.0) -> Program:
    """a * b + a, backpropagated once, reading both gradients."""
    return Program(id=pid, inputs=[["a", a], ["b", b]], steps=[],
                   output=[["name", "a"], ["name", "b"], ["op", "mul", 2], ["name", "a"], ["op", "add", 2]],
                   backward=1, grads=["a", "b"], structure=False)


def test_run_gives_one_observation_per_program_in_order():
    with Session("engine.py", Limits()) as session:
        observations = session.run([program("s::one"), program("s::two", a=1.0)], [5.0, 5.0])
    assert [(o.id, o.status, o.value, o.grads) for o in observations] == [
        ("s::one", "ok", 8.0, {"a": 4.0, "b": 2.0}), ("s::two", "ok", 4.0, {"a": 4.0, "b": 1.0})]
    assert len(FakeWorker.spawned) == 1 and FakeWorker.spawned[0].killed  # closed with the session


def test_a_session_keeps_its_process_between_batches():
    with Session("engine.py", Limits()) as session:
        first = session.run([program("s::one")], [5.0])
        second = session.run([program("s::two")], [5.0])
    assert [o.status for o in first + second] == ["ok", "ok"] and len(FakeWorker.spawned) == 1


def test_a_timeout_costs_only_its_case_and_a_fresh_process_runs_the_rest():
    with Session("engine.py", Limits()) as session:
        observations = session.run([program("s::one"), program("s::hang"), program("s::three")], [5.0, 0.5, 5.0])
    assert [o.status for o in observations] == ["ok", "timeout", "ok"]
    assert observations[1].message == "no answer within 0.5 s"
    assert len(FakeWorker.spawned) == 2 and all(w.killed for w in FakeWorker.spawned)
    assert [w.received for w in FakeWorker.spawned] == [2, 2]  # hello + one, hello + the rest


def test_a_dead_process_is_named_and_replaced():
    with Session("engine.py", Limits()) as session:
        observations = session.run([program("s::die"), program("s::two")], [5.0, 5.0])
    assert [o.status for o in observations] == ["crashed", "ok"]
    assert observations[0].message == "the engine process was killed by SIGKILL"


def test_when_no_fresh_process_can_start_the_rest_are_crashed():
    with Session("dies-for-good", Limits()) as session:
        observations = session.run([program("s::die"), program("s::two"), program("s::three")], [5.0] * 3)
    assert [o.status for o in observations] == ["crashed"] * 3
    assert observations[1].message == "the engine failed to restart: grade is stopping"
    assert session.load_error == "grade is stopping"  # fuzz stops on it; later runs start nothing
    assert {o.message for o in session.run([program("s::four")], [5.0])} == {
        "the submission failed to load: grade is stopping"}
    assert len(FakeWorker.spawned) == 1


def test_a_submission_that_fails_to_load_gets_every_case_crashed_with_the_reason():
    session = Session("subs/broken.py", Limits())
    observations = session.run([program("s::one"), program("s::two")], [5.0, 5.0])
    assert session.load_error == "no engine found in broken.py" and session.name == "broken"
    assert session.engines == ["broken"]
    assert {o.message for o in observations} == {"the submission failed to load: no engine found in broken.py"}
    assert FakeWorker.spawned[0].killed and session.worker is None


def test_engines_lists_every_engine_and_select_picks_one():
    with Session("two-engines", Limits()) as first:
        assert first.engines == ["reference", "renamed"] and first.name == "reference"
    with Session("two-engines", Limits(), select="renamed") as other:
        assert other.name == "renamed" and other.run([program("s::one")], [5.0])[0].status == "ok"
    assert FakeWorker.spawned[-1].engine.name == "renamed"


def test_a_prestarted_worker_is_used_instead_of_a_new_one():
    early = FakeWorker("engine.py", None, Limits(), greet=False)
    with Session("engine.py", Limits(), worker=early) as session:
        assert session.run([program("s::one")], [5.0])[0].status == "ok"
    assert FakeWorker.spawned == [early] and early.killed


def test_a_malformed_reply_is_a_crash_not_a_result(monkeypatch):
    monkeypatch.setattr(engine_side, "run", lambda engine, prog: {"id": prog["id"], "status": "ok", "value": "7"})
    with Session("engine.py", Limits()) as session:
        obs = session.run([program("s::one")], [5.0])[0]
    assert obs.status == "crashed" and "malformed reply" in obs.message


def test_the_reference_answers_come_through_a_session():
    observations = reference.observe([program("s::one")], [5.0], Limits())
    assert observations[0].value == 8.0
    assert FakeWorker.spawned[0].spec == reference.REFERENCE_SPEC and FakeWorker.spawned[0].killed


CASES = """
suite: runner
cases:
  - name: a_times_b_plus_a
    inputs: {a: 2, b: 3}
    output: a * b + a
    expect: {value: 8, grad: {a: 4, b: 2}}
  - name: hang
    inputs: {a: 2, b: 3}
    output: a * b
    expect: {value: 6}
"""


def test_grading_grades_the_first_engine_and_names_the_ones_left_out(tmp_path):
    path = tmp_path / "runner.yaml"
    path.write_text(CASES)
    cases = list(load_suite(path).cases)
    (result,) = grading.grade_engine("two-engines", cases, Limits(), grading.Feedback(blame=False))
    assert (result.engine, [c.status for c in result.cases], result.ignored_engines) == (
        "reference", ["passed", "timeout"], ("renamed",))
    assert all(w.killed for w in FakeWorker.spawned)


def test_grading_grades_each_engine_named_in_its_own_session(tmp_path):
    path = tmp_path / "runner.yaml"
    path.write_text(CASES)
    cases = list(load_suite(path).cases)
    results = grading.grade_engine("two-engines", cases, Limits(), grading.Feedback(blame=False),
                                   engines=("renamed", "reference", "nope"))
    assert [(r.engine, [c.status for c in r.cases]) for r in results] == [
        ("renamed", ["passed", "timeout"]), ("reference", ["passed", "timeout"]), ("nope", ["error", "error"])]
    assert results[2].load_error.startswith("the submission registers no engine named 'nope' (--engine-name)")
    assert results[0].ignored_engines == ()
    assert [w.select for w in FakeWorker.spawned] == [None, "renamed"]  # the first process serves reference
    assert all(w.killed for w in FakeWorker.spawned)


# --- a submission's budget: time and restarts (harness.running.budget), on a fake clock ---------------------

class Clock:
    """A clock that moves only when told: each answer of the fake worker takes ``step`` seconds."""

    def __init__(self, step: float = 0.0):
        self.now, self.step, self.timeouts = 100.0, step, []

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    receive = FakeWorker.receive

    def timed(self, timeout, limit=None):
        clock.timeouts.append(timeout)
        clock.now += min(clock.step, timeout)
        if clock.step > timeout:  # the answer would come too late
            self.replies.clear()
            raise TimeoutError
        return receive(self, timeout, limit)

    monkeypatch.setattr(FakeWorker, "receive", timed)
    return clock


def test_a_budget_counts_time_and_restarts_and_says_which_ran_out():
    from harness.running.budget import Budget, default_seconds

    clock = Clock()
    budget = Budget(10.0, restarts=1, clock=clock)
    assert (budget.remaining(), budget.cap(4.0), budget.exhausted()) == (10.0, 4.0, "")
    clock.now += 7
    assert budget.cap(4.0) == 3.0
    budget.restart()
    assert budget.exhausted() == ""  # one restart is allowed
    budget.restart()
    assert budget.exhausted().startswith("its engine process was restarted 1 times")
    clock.now += 5
    assert budget.remaining() == 0 and budget.exhausted().startswith(
        "the submission used up its time budget of 10 s for running its cases (--submission-timeout)")
    assert Budget(None, None, clock=clock).cap(4.0) == 4.0
    assert default_seconds(20, [10] * 4) == 60 and default_seconds(20, [10] * 400) == 600
    assert default_seconds(20, [10] * 4, engines=2) == 120


def test_past_its_time_budget_a_submissions_remaining_cases_are_not_run(clock):
    from harness.running.budget import Budget

    clock.step = 3.0  # the hello and every answer take 3 s
    budget = Budget(10.0, restarts=None, clock=clock)
    with Session("engine.py", Limits(), budget=budget) as session:
        observations = session.run([program(f"s::p{i}") for i in range(5)], [5.0] * 5)
    assert [o.status for o in observations] == ["ok", "ok", "timeout", "timeout", "timeout"]
    assert clock.timeouts == [10.0, 5.0, 4.0, 1.0]  # every wait ends with the budget: the import's too
    assert observations[2].message.startswith("cut short after 1 s: the submission used up its time budget")
    assert observations[3].message == ("not run: the submission used up its time budget of 10 s for running "
                                       "its cases (--submission-timeout)")


def test_past_its_restarts_a_submissions_remaining_cases_are_not_run(clock):
    from harness.running.budget import Budget

    budget = Budget(None, restarts=2, clock=clock)
    with Session("engine.py", Limits(), budget=budget) as session:
        observations = session.run([program(f"s::die{i}") for i in range(5)] + [program("s::ok")], [5.0] * 6)
    assert [o.status for o in observations] == ["crashed"] * 3 + ["timeout"] * 3
    assert observations[-1].message == ("not run: its engine process was restarted 2 times, after crashes or "
                                        "timeouts (--max-restarts)")
    assert len(FakeWorker.spawned) == 3  # the first process and two restarts


def test_a_session_started_after_the_budget_ran_out_loads_nothing(clock):
    from harness.running.budget import Budget

    budget = Budget(1.0, clock=clock)
    clock.now += 2
    with Session("engine.py", Limits(), budget=budget) as session:
        observations = session.run([program("s::one")], [5.0])
    assert session.load_error.startswith("not loaded: the submission used up its time budget of 1 s")
    assert observations[0].status == "crashed" and not FakeWorker.spawned
