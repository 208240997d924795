"""grade --fuzz: random expressions against the reference engine, shrunk to a minimal failing one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from conftest import ROOT, fixture_engine, processes_with, run_grade, token_env

pytestmark = pytest.mark.slow  # runs grade or pytest as a subprocess


@pytest.fixture(scope="module")
def seeded_bugs():
    """--fuzz 300 --seed 7 over the sub, tanh and mul fixtures: engine stem -> engine report."""
    args = [a for name in ("bug_sub_sign", "bug_tanh", "bug_mul_swapped")
            for a in ("--engine", str(fixture_engine(name)))]
    result = run_grade(*args, "--fuzz", "300", "--seed", "7", "-k", "fuzz", "--format", "json")
    assert result.code == 1, result.stderr
    return {e["source"].rsplit("/", 1)[-1][:-3]: e for e in result.report["engines"]}


@pytest.mark.parametrize("name, op, symbol", [("bug_sub_sign", "sub", " - "), ("bug_tanh", "tanh", "tanh("),
                                              ("bug_mul_swapped", "mul", " * ")])
def test_fuzzing_finds_the_seeded_bug_and_shrinks_it(seeded_bugs, name, op, symbol):
    e = seeded_bugs[name]
    ids = [c["id"] for c in e["cases"]]
    assert ids == [f"fuzz::{k}" for k in range(1, 301)]
    assert e["fuzz"]["seed"] == 7 and e["fuzz"]["generated"] == 300
    failed = [c for c in e["cases"] if c["status"] == "failed"]
    assert failed
    (minimal,) = e["fuzz"]["minimal"]
    assert minimal["ops"] <= 3 and symbol in minimal["expression"]
    for c in failed:
        assert c["shrunk"]["expression"] == minimal["expression"]
        assert f"shrunk to {minimal['ops']} op(s): {minimal['expression']}" in c["message"]
        assert op in {d["culprit"] for d in c["diagnosis"]}, c["message"]


def test_shrunk_sub_bug_is_the_plain_subtraction(seeded_bugs):
    (minimal,) = seeded_bugs["bug_sub_sign"]["fuzz"]["minimal"]
    assert minimal["ops"] == 1 and minimal["expression"].startswith("a - b at ")


def test_fuzz_cases_are_worth_no_points_but_count(seeded_bugs):
    e = seeded_bugs["bug_tanh"]
    assert e["max_score"] == 0 and e["counts"]["failed"] > 0


def test_correct_engine_has_no_fuzz_failures_over_600_expressions(grade, engine):
    # no time budget: the count, not the machine's speed, decides how many expressions run
    env = dict(os.environ, HARNESS_FUZZ_BUDGET="100000")
    result = grade("--engine", engine("micrograd_full"), "--fuzz", "600", "--seed", "1", "-k", "fuzz",
                   "--format", "json", env=env)
    assert result.code == 0, result.stdout[-3000:]
    e = result.report["engines"][0]
    assert e["fuzz"]["generated"] == 600 and e["fuzz"]["minimal"] == []
    assert e["counts"]["passed"] == 600
    ops = {f.split(" ")[0] for f in e["fuzz"]["forms"]}
    assert ops == {"add", "sub", "mul", "div", "pow", "neg", "exp", "log", "tanh", "relu", "sigmoid"}


OTHER_CORRECT = ("notebook_full", "plugin_engine", "reference")


@pytest.fixture(scope="module")
def other_correct_fuzzed(tmp_path_factory):
    """--fuzz 300 --seed 3 over the other correct engines, in one batch (which generates the expressions once)."""
    folder = tmp_path_factory.mktemp("engines")
    specs = [name if name == "reference" else str(fixture_engine(name, folder)) for name in OTHER_CORRECT]
    return run_grade(*[a for spec in specs for a in ("--engine", spec)], "--fuzz", "300", "--seed", "3",
                     "-k", "fuzz", "--format", "json")


@pytest.mark.parametrize("name", OTHER_CORRECT)
def test_other_correct_engines_have_no_fuzz_failures(other_correct_fuzzed, name):
    result = other_correct_fuzzed
    assert result.code == 0, result.stdout[-3000:]
    e = result.report["engines"][OTHER_CORRECT.index(name)]
    assert e["fuzz"]["generated"] == 300 and e["counts"]["passed"] == 300, e["counts"]


def test_same_seed_same_expressions(grade, engine):
    def expressions(seed):
        r = grade("--engine", engine("notebook_full"), "--fuzz", "60", "--seed", seed, "-k", "fuzz",
                  "--format", "json")
        return [(c["id"], c["description"]) for c in r.report["engines"][0]["cases"]]

    first = expressions(11)
    assert len({d for _, d in first}) == 60  # 60 different expressions
    assert first == expressions(11)
    assert first != expressions(12)


def test_fuzz_only_uses_the_ops_the_engine_has(grade, engine):
    result = grade("--engine", engine("notebook_verbatim"), "--fuzz", "100", "--seed", "1", "-k", "fuzz",
                   "--format", "json")
    e = result.report["engines"][0]
    assert {f.split(" ")[0] for f in e["fuzz"]["forms"]} == {"add", "sub", "mul"}
    assert "tanh (tanh(x)): unsupported" in e["fuzz"]["skipped"]
    assert e["counts"]["unsupported"] == 0 and e["counts"]["error"] == 0


def test_fuzz_cases_in_the_text_report_and_no_hypothesis_folder(grade, engine, tmp_path):
    result = grade("--engine", engine("bug_sub_sign"), "--fuzz", "40", "--seed", "7", "-k", "fuzz", cwd=tmp_path)
    assert result.code == 1
    assert "fuzz::1 " in result.stdout and "fuzz::40 " in result.stdout
    assert "fuzz: 40 random expressions (seed 7) over add, div, exp" in result.stdout
    assert "shrunk failure (grad, 1 op(s)): a - b at" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_fuzz_adds_to_the_selected_cases(grade, engine):
    result = grade("--engine", engine("micrograd_full"), "--fuzz", "5", "-k", "ops::add_two_leaves",
                   "--format", "json")
    assert list(result.statuses()) == ["ops::add_two_leaves"] + [f"fuzz::{k}" for k in range(1, 6)]


def test_fuzz_needs_a_whole_number(grade, engine):
    result = grade("--engine", engine("micrograd_full"), "--fuzz", "many")
    assert result.code == 2 and "'many' is not a whole number" in result.stderr


# grade, started by a Python that sends grade SIGTERM as the 50th fuzz expression of a job slot starts (a moment
# that is the same on any machine), and reports every expression run once it was told to stop: grade itself
# once it handled the signal, a job process (harness.running.jobs, a fork of grade) once grade stopped it.
SIGTERM_WHILE_FUZZING = """\
import os, signal, sys, threading
import harness.cli as cli
import harness.diagnosis.fuzz as fuzz
from harness.sandbox import reaper
GRADE = os.getpid()
handled, calls = threading.Event(), [0]
interrupt, outcome = cli._interrupt, fuzz.Fuzzer.outcome

def on_sigterm(signum, frame):
    handled.set()
    interrupt(signum, frame)

def stopped():
    return handled.is_set() if os.getpid() == GRADE else reaper._state["stopping"]

def counted_outcome(self, *args, **kwargs):
    calls[0] += 1
    if stopped():
        print("test: an expression ran after SIGTERM", file=sys.stderr, flush=True)
    elif calls[0] == 50:
        print("test: SIGTERM at the 50th expression", file=sys.stderr, flush=True)
        os.kill(GRADE, signal.SIGTERM)
        if os.getpid() != GRADE:
            threading.Event().wait(60)  # until grade stops this job process (its SIGTERM interrupts the wait)
        elif threading.current_thread() is not threading.main_thread():
            handled.wait(60)
    return outcome(self, *args, **kwargs)

cli._interrupt, fuzz.Fuzzer.outcome = on_sigterm, counted_outcome
sys.argv[0] = "grade"
sys.exit(cli.main())
"""


@pytest.mark.parametrize("engines, most, processes", [
    (["micrograd_full"], 0, "1"), (["micrograd_full", "notebook_full"], 49, "0"),
    (["micrograd_full", "notebook_full"], 49, "1")],
    ids=["one engine", "two engines fuzzed in threads", "two engines fuzzed in job processes"])
def test_sigterm_stops_fuzzing_at_once(engine, engines, most, processes):
    specs = [a for name in engines for a in ("--engine", engine(name))]
    token, env = token_env()
    proc = subprocess.run([sys.executable, "-c", SIGTERM_WHILE_FUZZING, *specs, "--jobs", "2", "--fuzz", "100000",
                           "-k", "fuzz"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(env, GRADE_JOB_PROCESSES=processes))
    assert "test: SIGTERM at the 50th expression" in proc.stderr  # fuzzing, with the engine loaded
    assert processes_with(token) == []  # no engine or job process is left
    if processes == "1" and len(engines) > 1:  # a job process stops quietly: grade says it was interrupted
        assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode == 130 and "interrupted" in proc.stderr and proc.stdout == ""
    # No shrinking of the failures that the interruption itself caused: in the main thread not one more
    # expression runs; other threads (or a job process once grade stopped it) may finish the few they started
    # before the engines are killed, fewer than ran before the signal (going on to fuzz and shrink runs
    # thousands).
    assert proc.stderr.count("test: an expression ran after SIGTERM") <= most


def test_a_gradescope_autograder_keeps_the_fuzz_and_blame_options(grade, tmp_path):
    import zipfile

    out = tmp_path / "autograder.zip"
    result = grade("--build-gradescope", out, "--fuzz", "10", "--seed", "3", "--no-blame", "-k", "ops::")
    assert result.code == 0, result.stderr
    script = zipfile.ZipFile(out).read("run_autograder").decode()
    assert "-k ops:: --fuzz 10 --seed 3 --no-blame)" in script
