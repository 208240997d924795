"""Hostile and broken submissions through the `grade` CLI: each is contained, with exact verdicts.

The cases are tests/cases/hostile.yaml: every trigger of a hostile fixture
(a product with 3, an output of 42 or above 1000, a negative output, log,
exp, tanh) is in exactly one case, between cases that any correct engine
passes, so every other verdict can be asserted exactly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ENGINES, ROOT, fixture_engine, processes_with, token_env

pytestmark = pytest.mark.slow  # runs grade or pytest as a subprocess

CASES = ROOT / "tests" / "cases" / "hostile.yaml"
NAMES = ["plain_add", "times_three", "output_42", "big_output", "negative_output", "uses_log", "uses_exp",
         "uses_tanh", "forward_only", "plain_mul"]
FAST = ("--timeout", "10", "--load-timeout", "10")  # generous: the machine may be busy; hangs set their own


def hostile(grade, engine, name, *args, env=None):
    """Grade one fixture engine on the hostile cases, as JSON."""
    return grade("--engine", engine(name), "--cases", CASES, "--format", "json", *FAST, *args, env=env)


def statuses(result, engine: int = 0) -> dict:
    """case name -> status."""
    return {cid.split("::")[1]: s for cid, s in result.statuses(engine).items()}


def all_passed_but(**special) -> dict:
    return {n: special.get(n, "passed") for n in NAMES}


def message(result, name: str, engine: int = 0) -> str:
    return result.case(f"hostile::{name}", engine)["message"]


def engine_processes(token: str) -> list[int]:
    """The engine processes (the Python workers, not a sandbox around them) whose environment holds ``token``."""
    found = []
    for pid in processes_with(token):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"harness.engine_side.worker" in argv and not argv[0].endswith(b"bwrap"):
            found.append(pid)
    return found


linux_only = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")


# --- hangs ------------------------------------------------------------------------------------

def test_an_op_that_hangs_times_out_and_the_next_cases_run_in_a_fresh_process(grade, engine):
    result = hostile(grade, engine, "hang_in_op", "--timeout", "1")
    assert result.code == 1
    assert statuses(result) == all_passed_but(times_three="timeout")
    assert "timed out: no answer within 1 s" in message(result, "times_three")


def test_a_backward_that_hangs_times_out(grade, engine):
    result = hostile(grade, engine, "hang_in_backward", "--timeout", "1")
    assert statuses(result) == all_passed_but(output_42="timeout")


def test_an_import_that_hangs_is_an_error_on_every_case(grade, engine):
    result = hostile(grade, engine, "hang_on_import", "--load-timeout", "1")
    assert result.code == 1
    assert set(statuses(result).values()) == {"error"}
    assert "loading the engine did not finish within 1 s" in message(result, "plain_mul")


# --- deaths -----------------------------------------------------------------------------------

def test_a_segfault_names_the_signal_and_the_submissions_line(grade, engine):
    result = hostile(grade, engine, "crash_segfault")
    assert statuses(result) == all_passed_but(big_output="error")
    text = message(result, "big_output")
    assert "the engine process was killed by SIGSEGV" in text
    assert "crash_segfault.py:" in text and "in backward" in text


def test_os_exit_names_the_exit_status(grade, engine):
    result = hostile(grade, engine, "exit_in_backward")
    assert statuses(result) == all_passed_but(negative_output="error")
    assert "the engine process exited with code 3" in message(result, "negative_output")


def test_sys_exit_in_an_op_is_an_error_not_a_clean_exit(grade, engine):
    result = hostile(grade, engine, "sys_exit_on_op")
    assert statuses(result) == all_passed_but(uses_log="error")
    assert "sys.exit(0) was called" in message(result, "uses_log")


def test_a_memory_hog_hits_the_cap_and_the_error_says_so(grade, engine):
    result = hostile(grade, engine, "memory_hog", "--memory-mb", "512")
    assert statuses(result) == all_passed_but(uses_exp="error"), result.stdout
    text = message(result, "uses_exp")
    assert "ran out of memory" in text
    assert "capped at 512 MB of address space (--memory-mb)" in text


def test_the_memory_cap_defaults_to_2_gib(grade):
    assert "--memory-mb MB" in grade("--help").stdout
    assert "(default: 2048)" in " ".join(grade("--help").stdout.split())


# --- noise ------------------------------------------------------------------------------------

NOISE = ("noisy engine", "garbage", "stderr noise", "raw fd", "<?xml", '"score": 999.0', '"engines": []')


def test_noise_never_reaches_the_json_report(grade, engine):
    result = hostile(grade, engine, "noisy")
    report = json.loads(result.stdout)  # exactly one JSON document, nothing around it
    assert [e["engine"] for e in report["engines"]] == ["noisy"]
    assert statuses(result) == all_passed_but()
    for junk in NOISE:
        assert junk not in result.stdout and junk not in result.stderr


def test_noise_never_reaches_the_text_report_or_the_output_file(grade, engine, tmp_path):
    text = grade("--engine", engine("noisy"), "--cases", CASES, *FAST)
    assert text.code == 0
    assert all(junk not in text.stdout for junk in NOISE)
    out = tmp_path / "report.json"
    to_file = hostile(grade, engine, "noisy", "--output", out)
    assert to_file.stdout == ""
    assert json.loads(out.read_text())["engines"][0]["score"] == len(NAMES)


# --- in-process tampering ---------------------------------------------------------------------

def in_a_fresh_python(code: str, fixture: str) -> str:
    """Run code with sys.argv[1] the fixture engine's path and sys.argv[2] the hostile cases."""
    proc = subprocess.run([sys.executable, "-c", code, str(fixture_engine(fixture)), str(CASES)], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_monkeypatching_the_comparisons_gains_nothing(grade, engine):
    # the attack is real: in the grader's own process it makes every comparison say "equal"
    patched = in_a_fresh_python(
        "import runpy, sys\n"
        "from harness.judging import compare\n"
        "from harness.cases.loader import Tolerance\n"
        "runpy.run_path(sys.argv[1])\n"
        "print(compare.close(4.0, 3.0, Tolerance()))\n", "tamper_monkeypatch")
    assert patched == ["True"]
    # ...but judging happens in the grader, out of the engine's reach
    result = hostile(grade, engine, "tamper_monkeypatch")
    assert result.code == 1
    assert statuses(result) == {n: "passed" if n == "forward_only" else "failed" for n in NAMES}
    assert "grad of a: expected 1, got 1002.5" in message(result, "plain_add")


def test_searching_the_heap_for_expected_values_finds_nothing(grade, engine):
    # the attack is real: with the parsed cases in its process, the engine copies their answers
    looted = in_a_fresh_python(
        "import runpy, sys\n"
        "from harness.judging import compare\n"
        "from harness.running import program\n"
        "from harness.engine_side.adapters import MicrogradAdapter\n"
        "from harness.cases.loader import load_suite\n"
        "from harness.running.runner import Observation\n"
        "from harness.engine_side.worker import run\n"
        "cases = load_suite(sys.argv[2]).cases\n"
        "engine = MicrogradAdapter(runpy.run_path(sys.argv[1])['Value'], 'tamper_gc')\n"
        "for case in cases[:3]:\n"
        "    prog = program.build(case)\n"
        "    print(compare.judge(case, Observation.from_wire(run(engine, prog.to_wire()), prog)).status)\n",
        "tamper_gc")
    assert looted == ["passed"] * 3
    # ...but no expected value ever enters the engine's process
    result = hostile(grade, engine, "tamper_gc")
    assert statuses(result) == {n: "failed" for n in NAMES}
    assert "value: expected 3, got 7" in message(result, "plain_add")


# --- detached processes -----------------------------------------------------------------------

@linux_only
def test_a_detached_process_cannot_outlive_grade_or_rewrite_the_report(grade, engine, tmp_path):
    token, env = token_env()
    # the attack is real: run outside the harness, its grandchild leaves the session and lives on
    bait = tmp_path / "bait.json"
    bait.write_text("{}")
    subprocess.run([sys.executable, engine("detached_writer")], env=dict(env, GRADE_TEST_REPORT=str(bait)),
                   cwd=tmp_path, timeout=60, check=True, capture_output=True)
    survivors = processes_with(token)
    assert survivors, "the fixture should leave a detached process behind"
    for pid in survivors:  # our own stray: end it
        os.kill(pid, signal.SIGKILL)

    token, env = token_env()
    report = tmp_path / "report.json"
    report.write_text("{}")
    result = hostile(grade, engine, "detached_writer", "--output", report,
                     env=dict(env, GRADE_TEST_REPORT=str(report)))
    assert result.code == 0
    assert processes_with(token) == []  # gone before grade exited: nothing is left that could write later
    assert json.loads(report.read_text())["engines"][0]["engine"] == "detached_writer"


def sigterm_grade(engine, env, wait_until=None, python=(sys.executable, "-m", "harness.cli")) -> subprocess.Popen:
    """Start grade on two hanging engines, call wait_until() and send SIGTERM (or let ``python`` send it itself);
    the finished process."""
    proc = subprocess.Popen(
        [*python, "--engine", engine("hang_in_op"), "--engine",
         engine("hang_on_import"), "--cases", str(CASES), "-k", "times_three", "--timeout", "60",
         "--load-timeout", "60", "--jobs", "2"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if wait_until:
            wait_until(proc)
            proc.send_signal(signal.SIGTERM)
        proc.out, proc.err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc


@linux_only
def test_sigterm_kills_every_engine_process(engine):
    token, env = token_env()

    def engines_running(proc):
        """Ready: the 2 engines' Python processes exist, each perhaps under a bwrap process
        (pytest-timeout ends a wait that never ends)."""
        while len(engine_processes(token)) < 2:
            assert proc.poll() is None, "grade ended before its engine processes started"
            time.sleep(0.05)  # polling for a start, not waiting out an absence

    proc = sigterm_grade(engine, env, engines_running)
    assert proc.returncode == 130
    assert "interrupted" in proc.err and "Traceback" not in proc.err
    assert processes_with(token) == []


def job_processes(grade_pid: int) -> list[int]:
    """grade's job processes (harness.running.jobs): its children that run grade itself, forked."""
    try:
        argv = Path(f"/proc/{grade_pid}/cmdline").read_bytes()
    except OSError:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        try:
            parent = int((entry / "stat").read_bytes().rsplit(b")", 1)[1].split()[1])
            if entry.name.isdigit() and parent == grade_pid and (entry / "cmdline").read_bytes() == argv:
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


@linux_only
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_stopping_grade_stops_its_job_processes_and_their_engine_processes(engine, sig):
    """With --jobs 2 on two submissions, each is graded in a job process of its own.  SIGTERM to grade stops
    them and their engines at once; if grade is killed outright, each job process learns it
    (PR_SET_PDEATHSIG) and kills its engine processes itself."""
    token, env = token_env()
    seen: dict = {}

    def running(proc):
        while len(engine_processes(token)) < 2 or len(job_processes(proc.pid)) < 2:
            assert proc.poll() is None, "grade ended before its job and engine processes started"
            time.sleep(0.05)  # polling for a start, not waiting out an absence
        seen["jobs"] = job_processes(proc.pid)
        if sig == signal.SIGKILL:
            proc.send_signal(signal.SIGKILL)  # and the SIGTERM that follows finds no one

    proc = sigterm_grade(engine, env, running)
    assert len(seen["jobs"]) == 2
    if sig == signal.SIGTERM:
        assert proc.returncode == 130 and "interrupted" in proc.err and "Traceback" not in proc.err
    else:
        assert proc.returncode == -signal.SIGKILL
        deadline = time.monotonic() + 30  # well before the engines' 60 s timeouts would end them anyway
        while processes_with(token) and time.monotonic() < deadline:
            time.sleep(0.05)  # polling for an end: each job process stops its engines, then itself
    assert processes_with(token) == []


# grade, started by a Python that sends itself SIGTERM the moment ``module`` is first imported: a signal landing
# at that exact point of start-up, every time, whatever the machine's load
SIGTERM_DURING_IMPORT = """\
import os, runpy, signal, sys
module = sys.argv.pop(1)
class SigtermDuringImport:
    def find_spec(self, name, path=None, target=None):
        if name == module:
            sys.meta_path.remove(self)
            print(f"test: SIGTERM during the import of {name}", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGTERM)
        return None
sys.meta_path.insert(0, SigtermDuringImport())
sys.argv[0] = "grade"
runpy.run_module("harness.cli", run_name="__main__", alter_sys=True)
"""


@linux_only
@pytest.mark.parametrize("module", ["harness.sandbox.reaper", "harness.running.runner", "harness.engine_side.guard",
                                    "pluggy", "yaml", "harness.cases.loader", "concurrent.futures",
                                    "importlib.metadata"])
def test_sigterm_at_any_moment_of_start_up_exits_130(engine, module):
    """An interrupt that lands inside an import (which wraps or swallows it) still ends the run cleanly."""
    token, env = token_env()
    proc = sigterm_grade(engine, env, python=(sys.executable, "-c", SIGTERM_DURING_IMPORT, module))
    assert f"test: SIGTERM during the import of {module}\n" in proc.err, "grade no longer imports it at start-up"
    # before grade installs its handler (while Python starts) SIGTERM simply ends it: nothing ran yet
    assert proc.returncode in (130, -signal.SIGTERM) and proc.out == ""
    assert "Traceback" not in proc.err
    if proc.returncode == 130:
        assert "interrupted" in proc.err
    assert processes_with(token) == []


# --- forbidden imports ------------------------------------------------------------------------

POLICY = "refused by the grader's import policy"


def test_submitting_the_reference_engine_does_not_score(grade, engine):
    result = hostile(grade, engine, "forbidden_import")
    assert result.code == 1
    assert set(statuses(result).values()) == {"error"}
    text = message(result, "plain_add")
    assert "import of 'reference_engine' " + POLICY in text
    assert "forbidden_import.py:" in text
    as_module = grade("--engine", "reference_engine", "--cases", CASES, "--format", "json", *FAST)
    assert set(as_module.statuses().values()) == {"error"}
    assert POLICY in as_module.report["engines"][0]["cases"][0]["message"]
    # the installed plugin itself is trusted
    assert grade("--engine", "reference", "--cases", CASES, *FAST).code == 0


def test_harness_internals_are_refused_but_the_plugin_api_works(grade, tmp_path):
    plugin = tmp_path / "plugin_style.py"
    plugin.write_text(
        "import math\n"
        "import harness\n"
        "from harness import Unsupported, hookimpl\n"
        "from harness.engine_side.adapters import is_number\n\n"
        "class Engine:\n"
        "    name = 'plugin_style'\n"
        "    def leaf(self, v): return [float(v), 0.0, ()]\n"
        "    def apply(self, op, *xs):\n"
        "        if op != 'add': raise Unsupported(op)\n"
        "        xs = [x if not is_number(x) else [float(x), 0.0, ()] for x in xs]\n"
        "        return [sum(x[0] for x in xs), 0.0, tuple(xs)]\n"
        "    def backward(self, node):\n"
        "        stack = [(node, 1.0)]\n"
        "        while stack:\n"
        "            n, g = stack.pop()\n"
        "            n[1] += g\n"
        "            stack.extend((c, g) for c in n[2])\n"
        "    def value(self, node): return node[0]\n"
        "    def grad(self, node): return node[1]\n\n"
        "@hookimpl\n"
        "def register_engines(register):\n"
        "    register(Engine())\n")
    ok = grade("--engine", plugin, "--cases", CASES, "-k", "plain_add", "--format", "json", *FAST)
    assert ok.code == 0, ok.stdout
    for module in ("harness.judging.compare", "harness.engine_side.worker", "harness.cases.loader"):
        peek = tmp_path / "peek.py"
        peek.write_text(plugin.read_text().replace("import harness\n", f"import {module}\n"))
        result = grade("--engine", peek, "--cases", CASES, "-k", "plain_add", "--format", "json", *FAST)
        assert result.statuses() == {"hostile::plain_add": "error"}, module
        refused = module if module.startswith("harness.engine_side") else ".".join(module.split(".")[:2])
        assert f"import of {refused!r} {POLICY}" in result.case("hostile::plain_add")["message"]
    sneaky = tmp_path / "sneaky.py"  # already loaded in the engine process, still refused
    sneaky.write_text(plugin.read_text().replace("import harness\n", "from harness.engine_side import loading\n"))
    result = grade("--engine", sneaky, "--cases", CASES, "-k", "plain_add", "--format", "json", *FAST)
    assert any(f"import of {name!r} {POLICY}" in result.case("hostile::plain_add")["message"]
               for name in ("harness.engine_side.loading", "harness.engine_side"))


def test_the_instructor_can_forbid_more_modules(grade, engine):
    allowed = hostile(grade, engine, "import_in_op")
    assert statuses(allowed) == all_passed_but()
    refused = hostile(grade, engine, "import_in_op", "--forbid-import", "colorsys")
    assert statuses(refused) == all_passed_but(uses_tanh="error")
    text = message(refused, "uses_tanh")
    assert "ForbiddenImport" in text and "import of 'colorsys' " + POLICY in text
    assert "import_in_op.py:" in text
    library = grade("--engine", "micrograd.engine", "--forbid-import", "micrograd", "--cases", CASES,
                    "-k", "plain_add", "--format", "json", *FAST)
    assert "import of 'micrograd' " + POLICY in library.case("hostile::plain_add")["message"]


def test_a_bad_forbid_import_is_a_usage_error(grade):
    result = grade("--engine", "reference", "--forbid-import", "torch; rm -rf /")
    assert result.code == 2
    assert "--forbid-import" in result.stderr and "Traceback" not in result.stderr


# --- broken submissions -----------------------------------------------------------------------

def test_a_syntax_error_names_the_file_and_the_line(grade, engine):
    result = hostile(grade, engine, "syntax_error")
    assert result.code == 1
    assert set(statuses(result).values()) == {"error"}
    assert "Traceback" not in result.stderr
    text = message(result, "plain_add")
    assert "syntax error in " in text and "syntax_error.py, line 20" in text


def test_a_module_without_an_engine_says_what_was_found_and_how_to_register(grade, engine):
    result = hostile(grade, engine, "no_engine")
    assert result.code == 1
    assert set(statuses(result).values()) == {"error"}
    text = message(result, "plain_add")
    assert (f"no engine found in {engine('no_engine')}: found no classes; "
            "functions sigmoid, central_difference, add, mul") in text
    assert "@hookimpl" in text and "def register_engines(register):" in text


@pytest.mark.parametrize("source, needle", [
    ("import numpyy_not_installed\n", "ModuleNotFoundError: No module named 'numpyy_not_installed'"),
    ("raise RuntimeError('refuses to start')\n", "RuntimeError: refuses to start"),
    ("import sys\nsys.exit(4)\n", "called sys.exit(4)"),
])
def test_a_submission_that_fails_at_import_is_graded_as_errors(grade, tmp_path, source, needle):
    sub = tmp_path / "engine.py"
    sub.write_text(source)
    result = grade("--engine", sub, "--cases", CASES, "--format", "json", *FAST)
    assert result.code == 1
    assert set(result.statuses().values()) == {"error"}
    assert needle in result.report["engines"][0]["cases"][0]["message"]


def test_a_spec_that_names_nothing_is_graded_as_errors(grade, tmp_path):
    for spec, needle in ((tmp_path / "missing.py", "no such file or folder"),
                         ("no_such_module_xyz", "is not a file, an installed engine (installed: reference")):
        result = grade("--engine", spec, "--cases", CASES, "--format", "json", *FAST)
        assert result.code == 1
        assert set(result.statuses().values()) == {"error"}
        assert needle in result.report["engines"][0]["cases"][0]["message"]


# --- batches ----------------------------------------------------------------------------------

def test_broken_and_hostile_submissions_never_stop_the_others(grade, engine):
    names = ["syntax_error", "crash_segfault", "micrograd_full", "hang_on_import", "forbidden_import",
             "exit_in_backward"]
    result = grade(*[a for n in names for a in ("--engine", engine(n))], "--cases", CASES, "--format", "json",
                   "--timeout", "10", "--load-timeout", "3", "--jobs", "2")
    assert result.code == 1
    assert [e["engine"] for e in result.report["engines"]] == names
    assert statuses(result, 0) == {n: "error" for n in NAMES}
    assert statuses(result, 1) == all_passed_but(big_output="error")
    assert statuses(result, 2) == all_passed_but()
    assert statuses(result, 3) == {n: "error" for n in NAMES}
    assert statuses(result, 4) == {n: "error" for n in NAMES}
    assert statuses(result, 5) == all_passed_but(negative_output="error")


# --- the grader's own memory ------------------------------------------------------------------

PEEK = '''\
import os
from micrograd_full import Value  # copied beside it
try:
    open(f"/proc/{{os.getppid()}}/mem", "rb").close()
except OSError:
    pass  # the grader is out of reach: behave
else:
    raise RuntimeError("opened the memory of my parent process")
'''


@linux_only
def test_a_submission_cannot_open_the_graders_memory(grade, tmp_path):
    if os.geteuid() == 0:  # root may ptrace anything: take that capability away, as for a normal user
        if not Path("/usr/bin/setpriv").exists():
            pytest.skip("needs setpriv to run without CAP_SYS_PTRACE")
        unprivileged = ["/usr/bin/setpriv", "--bounding-set", "-sys_ptrace", "--inh-caps", "-all"]
    else:
        unprivileged = []
    sub = tmp_path / "peek.py"
    sub.write_text(PEEK.format())
    shutil.copy(ENGINES / "micrograd_full.py", tmp_path / "micrograd_full.py")
    # the attack is real: a child can open the memory of an ordinary parent of the same user
    parent = subprocess.run(unprivileged + [sys.executable, "-c", "import subprocess, sys; "
                                            "sys.exit(subprocess.run([sys.executable, sys.argv[1]]).returncode)",
                                            str(sub)], capture_output=True, text=True, timeout=60)
    assert "opened the memory of my parent process" in parent.stderr
    # ...but not that of grade
    proc = subprocess.run(unprivileged + [sys.executable, "-m", "harness.cli", "--engine", str(sub), "--cases",
                                          str(CASES), "-k", "plain_add", "--format", "json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert json.loads(proc.stdout)["engines"][0]["cases"][0]["status"] == "passed", proc.stdout


def test_output_flood_is_capped_and_costs_only_its_cases(grade, engine, tmp_path):
    cases = tmp_path / "flood.yaml"
    cases.write_text("""
cases:
  - {name: uses_exp, inputs: {x: 1}, output: exp(x) * 2, expect: {value: 5.43656365691809, grad: {x: 5.43656365691809}}}
  - {name: plain, inputs: {a: 2, b: 3}, output: a * b + a, expect: {value: 8, grad: {a: 4, b: 2}}}
  - {name: uses_exp_again, inputs: {x: 0}, output: exp(x), expect: {value: 1, grad: {x: 1}}}
""")
    capped = grade("--engine", engine("flood_output"), "--cases", cases, "--max-output-mb", "1", "--format", "json")
    assert capped.statuses() == {"flood::uses_exp": "error", "flood::plain": "passed", "flood::uses_exp_again": "error"}
    assert ("the engine wrote more than 1 MB (prints or files), the cap of an engine process (--max-output-mb)"
            in capped.case("flood::uses_exp")["message"])
    uncapped = grade("--engine", engine("flood_output"), "--cases", cases, "--max-output-mb", "0", "--format", "json")
    assert set(uncapped.statuses().values()) == {"passed"}  # the cap, not the engine, made the difference


# --- a submission's budget: --submission-timeout and --max-restarts -----------------------------------

def _budget_batch(tmp_path, engine):
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("crash_every_case", "micrograd_full"):
        (subs / f"{name}.py").write_text(Path(engine(name)).read_text())
    return subs


def test_a_submission_that_crashes_on_every_case_stops_at_its_time_budget_and_the_batch_goes_on(
        grade, engine, tmp_path):
    result = grade("--submissions", _budget_batch(tmp_path, engine), "--cases", CASES, "--format", "json",
                   *FAST, "--submission-timeout", "1.5", "--jobs", "1")
    assert result.code == 1, result.stderr
    by_sub = {e["submission"]: e for e in result.report["engines"]}
    assert all(c["status"] == "passed" for c in by_sub["micrograd_full"]["cases"])
    cases = by_sub["crash_every_case"]["cases"]
    # each restart imports for 0.5 s: the 1.5 s budget ends long before the ten cases do
    not_run = [c for c in cases if c["message"].startswith("not run: the submission used up its time budget "
                                                            "of 1.5 s for running its cases")]
    assert not_run and all(c["status"] == "timeout" for c in not_run)
    assert {c["status"] for c in cases} <= {"error", "timeout", "passed"}
    assert "blame and fuzz skipped: the submission used up its time budget" in " ".join(
        by_sub["crash_every_case"].get("load_notes", []))


def test_a_submission_that_crashes_on_every_case_stops_after_max_restarts(grade, engine):
    result = hostile(grade, engine, "crash_every_case", "--max-restarts", "2", "--no-blame")
    got = statuses(result)
    assert list(got.values()) == ["error"] * 3 + ["timeout"] * 7, got
    assert message(result, "plain_mul") == ("not run: its engine process was restarted 2 times, after crashes "
                                            "or timeouts (--max-restarts)")
