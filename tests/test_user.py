"""``grade --user USER``: engine processes run as an unprivileged user, through the CLI.

Runs only as root on Linux with a ``nobody`` user.  The engines are copied into
a fresh ``tempfile.mkdtemp()`` folder opened to everyone (pytest's tmp_path
parents are 0700, so ``nobody`` could not read them there).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from conftest import ENGINES, MUTANTS, ROOT, fixture_engine

try:
    import pwd

    NOBODY = pwd.getpwnam("nobody")
except (ImportError, KeyError):
    NOBODY = None

pytestmark = [pytest.mark.slow,  # runs grade as a subprocess
              pytest.mark.skipif(not sys.platform.startswith("linux") or os.geteuid() != 0 or NOBODY is None,
                                 reason="needs Linux, root and a 'nobody' user")]

HOSTILE = ROOT / "tests" / "cases" / "hostile.yaml"
REACH = """\
suite: reach
description: one case per operator that tests/engines/whoami.py spoils when it reaches too far
cases:
  - name: add
    description: spoilt when the engine runs as root
    inputs: {a: 1, b: 2}
    output: a + b
    expect: {value: 3, grad: {a: 1, b: 1}}
  - name: mul
    description: spoilt when it can read the secret file
    inputs: {a: 2, b: 3}
    output: a * b
    expect: {value: 6, grad: {a: 3, b: 2}}
  - name: sub
    description: spoilt when it can signal the grader
    inputs: {a: 5, b: 2}
    output: a - b
    expect: {value: 3, grad: {a: 1, b: -1}}
  - name: div
    description: spoilt when it can open the grader's stdout through /proc
    inputs: {a: 6, b: 2}
    output: a / b
    expect: {value: 3, grad: {a: 0.5, b: -1.5}}
"""


@pytest.fixture
def shared():
    """A folder everyone can read, holding copies of the fixture engines, a case file and a 0600 secret."""
    folder = Path(tempfile.mkdtemp(prefix="grade-user-test-"))
    try:
        folder.chmod(0o755)
        for f in [*ENGINES.glob("*.py"), *(fixture_engine(name) for name in MUTANTS)]:
            if f.name != "mutants.py":
                shutil.copy(f, folder / f.name)
                (folder / f.name).chmod(0o644)
        (folder / "reach.yaml").write_text(REACH)
        (folder / "reach.yaml").chmod(0o644)
        secret = folder / "hidden.yaml"
        secret.write_text("the hidden cases\n")
        secret.chmod(0o600)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def reach(grade, folder: Path, *args) -> tuple:
    result = grade("--engine", folder / "whoami.py", "--cases", folder / "reach.yaml", "--format", "json",
                   "--no-blame", *args, env=dict(os.environ, GRADE_TEST_SECRET=str(folder / "hidden.yaml")))
    return result, {cid.split("::")[1]: s for cid, s in result.statuses().items()}


def test_as_nobody_the_engine_cannot_reach_root_the_secret_or_the_grader(grade, shared):
    result, statuses = reach(grade, shared, "--user", "nobody")
    assert statuses == {"add": "passed", "mul": "passed", "sub": "passed", "div": "passed"}, result.stdout
    assert result.code == 0


def test_with_sandbox_none_the_same_engine_runs_as_root_and_reaches_everything(grade, shared):
    result, statuses = reach(grade, shared, "--sandbox", "none")
    assert statuses == {"add": "failed", "mul": "failed", "sub": "failed", "div": "failed"}
    assert result.code == 1


def test_a_secret_readable_by_everyone_is_read_even_as_nobody(grade, shared):
    (shared / "hidden.yaml").chmod(0o644)
    # without namespaces (--sandbox uid), a uid works as well as a name
    _, statuses = reach(grade, shared, "--user", str(NOBODY.pw_uid), "--sandbox", "uid")
    assert statuses == {"add": "passed", "mul": "failed", "sub": "passed", "div": "passed"}


def test_an_unknown_user_is_a_clear_error(grade, shared):
    result = grade("--engine", shared / "micrograd_full.py", "--user", "no_such_user_here")
    assert result.code == 2
    assert result.stderr == ("grade: error: --user no_such_user_here: no such user on this machine "
                             "(see /etc/passwd; e.g. --user nobody)\n")


@pytest.mark.parametrize("closed, fix", [("folder", "chmod a+rx"), ("file", "chmod -R a+rX")])
def test_a_submission_nobody_cannot_read_fails_to_load_and_says_how_to_fix_it(grade, shared, closed, fix):
    private = shared / "private"
    private.mkdir()
    engine = private / "engine.py"
    shutil.copy(ENGINES / "micrograd_full.py", engine)
    (private if closed == "folder" else engine).chmod(0o700 if closed == "folder" else 0o600)
    if closed == "file":
        private.chmod(0o755)
    result = grade("--engine", engine, "--format", "json", "--user", "nobody", "--sandbox", "uid", "-k", "add")
    assert result.code == 1
    assert set(result.statuses().values()) == {"error"}
    unreadable = private if closed == "folder" else engine
    target = private if closed == "folder" else engine
    assert result.report["engines"][0]["load_error"] == (
        f"the submission is not readable by user nobody (grade --user nobody): {unreadable} is not "
        f"readable; fix it with: {fix} {target}")


def test_a_folder_of_submissions_with_jobs_runs_as_nobody(grade, shared):
    subs = shared / "subs"
    subs.mkdir(mode=0o755)
    for name in ("whoami", "micrograd_full", "bug_sub_sign"):
        shutil.copy(shared / f"{name}.py", subs / f"{name}.py")
    result = grade("--submissions", subs, "--cases", shared / "reach.yaml", "--format", "json", "--no-blame",
                   "--jobs", "2", "--user", "nobody",
                   env=dict(os.environ, GRADE_TEST_SECRET=str(shared / "hidden.yaml")))
    by_engine = {e["engine"]: {c["id"].split("::")[1]: c["status"] for c in e["cases"]}
                 for e in result.report["engines"]}
    assert by_engine == {
        "bug_sub_sign": {"add": "passed", "mul": "passed", "sub": "failed", "div": "passed"},
        "micrograd_full": {"add": "passed", "mul": "passed", "sub": "passed", "div": "passed"},
        "whoami": {"add": "passed", "mul": "passed", "sub": "passed", "div": "passed"},
    }


def test_the_trusted_reference_engine_runs_as_nobody_too(grade):
    result = grade("--engine", "reference", "--format", "json", "--user", "nobody", "-k", "add")
    assert result.code == 0 and set(result.statuses().values()) == {"passed"}


# --- the hostile fixtures are still contained as nobody ---------------------------------------

def hostile(grade, folder: Path, name: str, *args, env=None):
    result = grade("--engine", folder / f"{name}.py", "--cases", HOSTILE, "--format", "json", "--user", "nobody",
                   "--timeout", "10", "--load-timeout", "10", *args, env=env)
    return result, {cid.split("::")[1]: s for cid, s in result.statuses().items() if s != "passed"}


def test_a_hang_as_nobody_times_out_and_is_killed(grade, shared):
    _, failing = hostile(grade, shared, "hang_in_op", "--timeout", "1")
    assert failing == {"times_three": "timeout"}


def test_a_segfault_as_nobody_is_an_error_naming_the_line(grade, shared):
    result, failing = hostile(grade, shared, "crash_segfault")
    assert failing == {"big_output": "error"}
    message = result.case("hostile::big_output")["message"]
    assert "killed by SIGSEGV" in message and "crash_segfault.py:" in message


def test_a_detached_process_of_nobody_is_killed_and_cannot_touch_the_report(grade, shared, tmp_path):
    report = tmp_path / "report.json"
    report.write_text("{}")
    token = f"GRADE_USER_TEST_TOKEN={uuid.uuid4().hex}"
    env = dict(os.environ, GRADE_TEST_REPORT=str(report), GRADE_USER_TEST_TOKEN=token.split("=")[1])
    result = grade("--engine", shared / "detached_writer.py", "--cases", HOSTILE, "--user", "nobody",
                   "--output", report, "--format", "json", env=env)
    assert result.code == 0, result.stderr
    assert _processes_with(token) == []  # gone before grade exited: nothing is left that could write later
    assert json.loads(report.read_text())["engines"][0]["engine"] == "detached_writer"


def _processes_with(token: str) -> list:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if token.encode() in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


# --- the Gradescope autograder ----------------------------------------------------------------

def test_an_autograder_built_with_user_grades_as_that_user_and_hides_the_cases(shared):
    import subprocess
    import zipfile

    from conftest import run_grade

    root = shared / "autograder"
    root.mkdir(mode=0o755)
    target = shared / "autograder.zip"
    built = run_grade("--cases", shared / "reach.yaml", "--no-blame", "--user", "nobody",
                      "--build-gradescope", target)
    assert built.code == 0, built.stderr
    with zipfile.ZipFile(target) as zf:
        zf.extractall(root / "source")
        assert "--user nobody" in zf.read("run_autograder").decode()
    for script in ("run_autograder", "setup.sh"):
        (root / "source" / script).chmod(0o755)
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir(mode=0o700)  # as uploaded: nobody could not read it
    shutil.copy(shared / "whoami.py", root / "submission" / "engine.py")
    case_file = next((root / "source" / "cases").rglob("reach.yaml"))
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), HARNESS_PYTHON=sys.executable,
               GRADE_TEST_SECRET=str(case_file))  # the engine tries to read the (hidden) case file
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    tests = json.loads((root / "results" / "results.json").read_text())["tests"]
    assert {t["name"]: t["status"] for t in tests} == {
        "reach::add": "passed", "reach::mul": "passed", "reach::sub": "passed", "reach::div": "passed"}


def test_user_needs_grade_to_run_as_root(monkeypatch):
    from harness.errors import HarnessError
    from harness.sandbox.privileges import resolve

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(HarnessError, match=r"^--user needs grade to run as root \(it runs as uid 1000\)"):
        resolve("nobody")
