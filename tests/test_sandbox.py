"""``--sandbox``: the attacks of issue 11 as fixture engines (tests/attacks/), under every sandbox mode.

Each attack engine is correct, except that every attack that works spoils one operator (see
tests/attacks/_value.py), so a case per operator tells which attacks worked.  Under each
mode the machine provides, the test asserts exactly which work: none inside bwrap, the documented
few under ``uid``, and (as root) all of them under ``none`` -- which shows that each attack is real.
The bwrap argument builder is tested in-process at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
from conftest import ROOT, fixture_engine, processes_with, run_grade, token_env

ATTACKS = ROOT / "tests" / "attacks"
ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0
REACH = """\
suite: reach
cases:
  - name: add
    inputs: {a: 1, b: 2}
    output: a + b
    expect: {value: 3, grad: {a: 1, b: 1}}
  - name: mul
    inputs: {a: 2, b: 3}
    output: a * b
    expect: {value: reference, grad: reference}
  - name: sub
    inputs: {a: 5, b: 2}
    output: a - b
    expect: {value: reference, grad: reference}
  - name: div
    inputs: {a: 6, b: 2}
    output: a / b
    expect: {value: 3, grad: {a: 0.5, b: -1.5}}
"""
NAMES = ("add", "mul", "sub", "div")


def _unavailable(mode: str) -> str:
    """Why ``mode`` cannot run here ('' when it can)."""
    if not sys.platform.startswith("linux"):
        return "sandboxes need Linux"
    if mode == "bwrap":
        from harness.sandbox import bwrap

        return bwrap.probe(ROOT_USER)
    if mode == "uid" and not ROOT_USER:
        return "--sandbox uid needs root"
    if mode == "none" and not ROOT_USER:
        return "the attacks are asserted to work under --sandbox none only as root"
    return ""


MODES = [pytest.param(m, marks=pytest.mark.skipif(bool(_unavailable(m)), reason=_unavailable(m) or "-"))
         for m in ("bwrap", "uid", "none")]


@pytest.fixture(scope="module")
def place():
    """A folder everyone can read: the case file, a root-only 'hidden' case file, and a copy of the harness
    whose reference_engine only root can read (as the Gradescope zip keeps it), for --sandbox uid."""
    folder = Path(tempfile.mkdtemp(prefix="grade-sandbox-test-"))
    try:
        folder.chmod(0o755)
        (folder / "reach.yaml").write_text(REACH)
        (folder / "reach.yaml").chmod(0o644)
        (folder / "hidden.yaml").write_text(REACH)
        (folder / "hidden.yaml").chmod(0o600)
        (folder / "target.txt").write_text("results\n")
        (folder / "target.txt").chmod(0o644)
        install = folder / "install"
        install.mkdir(mode=0o755)
        for package in ("harness", "reference_engine"):
            shutil.copytree(ROOT / package, install / package, ignore=shutil.ignore_patterns("__pycache__"))
        for path in [install / "reference_engine", *(install / "reference_engine").rglob("*")]:
            path.chmod(0o700 if path.is_dir() else 0o600)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


ROLES = ("attacker", "classmate")  # the names the attacker and its classmate take (tests/attacks/_peers.py)


class Handshake(threading.Thread):
    """The test's side of tests/attacks/_peers.py's handshake: once the attacker's and the classmate's engine
    processes are seen alive together, tell the attacker (SIGUSR1: its next scan is its last); once the
    attacker's process has ended, tell the classmate (which then goes on).  So the classmate is alive for the
    whole of at least one scan, and nobody waits longer than that takes."""

    def __init__(self, token: str, mode: str):
        super().__init__(daemon=True)
        self.token, self.mode = token, mode
        self.together = False  # whether both were seen alive at once
        self.finished = threading.Event()  # the run is over

    def roles(self) -> dict:
        """name -> pids, of this run's engine processes that have named themselves."""
        found: dict = {}
        token = f"GRADE_TEST_TOKEN={self.token}".encode()
        for entry in Path("/proc").iterdir():
            try:
                if not entry.name.isdigit() or (name := (entry / "comm").read_text().strip()) not in ROLES:
                    continue
                if token in (entry / "environ").read_bytes().split(b"\0") and \
                        b"harness.engine_side.worker" in (entry / "cmdline").read_bytes():
                    found.setdefault(name, []).append(int(entry.name))
            except OSError:
                pass
        return found

    def tell(self, role: str) -> None:
        for pid in self.roles().get(role, []):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGUSR1)

    def run(self) -> None:
        deadline, attacker_since = time.monotonic() + 20, None
        while time.monotonic() < deadline and not self.finished.is_set():
            roles = self.roles()
            if "attacker" in roles and "classmate" in roles:
                self.together = True
                break
            if "attacker" in roles and attacker_since is None:
                attacker_since = time.monotonic()
            # With no sandbox, kill_peers may kill the classmate before it is ever seen: the attack works,
            # nothing absent is to be proved, and the attacker looks for 5 s, as it did before the handshake.
            if self.mode == "none" and attacker_since is not None and time.monotonic() - attacker_since > 5:
                break
            time.sleep(0.02)
        self.tell("attacker")
        while "attacker" in self.roles() and time.monotonic() < deadline and not self.finished.is_set():
            time.sleep(0.02)
        while not self.finished.is_set():  # a classmate restarted after kill_peers killed it is told too
            self.tell("classmate")
            self.finished.wait(0.05)


def attack(place: Path, mode: str, name: str, *args, extra_env=None, engines=()):
    """Grade the attack engine ``name`` (after ``engines``) under ``mode``: (result, spoiled case names).

    With the classmate (sleepy), the test keeps it alive while the attacker looks (``Handshake``)."""
    token = uuid.uuid4().hex
    env = dict(os.environ, GRADE_TEST_TOKEN=token, GRADE_TEST_SECRET=str(place / "hidden.yaml"),
               **(extra_env or {}))
    cwd = None
    if mode == "uid":  # the copy whose reference_engine only root reads
        env["PYTHONPATH"] = str(place / "install")
        cwd = place / "install"
    handshake = Handshake(token, mode) if "sleepy" in engines else None
    if handshake is not None:
        handshake.start()
    specs = [a for e in (*engines, name) for a in ("--engine", ATTACKS / f"{e}.py")]
    result = run_grade(*specs, "--cases", place / "reach.yaml", "--format", "json", "--no-blame",
                       "--sandbox", mode, "--timeout", "20", "--load-timeout", "30", *args, env=env, cwd=cwd)
    if handshake is not None:
        handshake.finished.set()
        handshake.join()
    assert result.code in (0, 1), result.stderr
    if handshake is not None and mode != "none":
        assert handshake.together, "the attacker and its classmate were never seen alive together"
    report = result.report
    assert report["sandbox"] == mode
    mine = report["engines"][-1]
    spoiled = {c["id"].split("::")[1] for c in mine["cases"] if c["status"] != "passed"}
    return result, spoiled


def _readable_reference_elsewhere() -> str:
    """A copy of reference_engine that every user can read on the interpreter's own path (an editable
    install of a world-readable checkout), '' if none: --sandbox uid protects it by permissions only."""
    import subprocess

    found = subprocess.run([sys.executable, "-c", "import reference_engine; print(reference_engine.__file__)"],
                           capture_output=True, text=True, cwd="/", env={k: v for k, v in os.environ.items()
                                                                        if k != "PYTHONPATH"})
    path = Path(found.stdout.strip()).parent if found.returncode == 0 else None
    if path is None:
        return ""
    for folder in [path, *path.parents]:
        if not folder.stat().st_mode & 0o001:
            return ""
    return str(path) if path.stat().st_mode & 0o004 else ""


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_attack_2_the_reference_engine_cannot_be_submitted(place, mode):
    if mode == "uid" and _readable_reference_elsewhere():
        pytest.skip(f"every user can read {_readable_reference_elsewhere()} (on the interpreter's path): "
                    "--sandbox uid keeps reference_engine away by file permissions only")
    _, spoiled = attack(place, mode, "steal_reference")
    assert spoiled == ({"add", "mul"} if mode == "none" else set())


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_attacks_3_and_4_other_engine_processes_are_out_of_reach(place, mode):
    """The reference engine's process (reference expectations) and a classmate's (--jobs 2)."""
    _, spoiled = attack(place, mode, "reach_peers", "--jobs", "2", engines=["sleepy"])
    assert spoiled == {"bwrap": set(), "uid": {"sub"}, "none": {"add", "mul", "sub"}}[mode]


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_attack_7_killing_the_reference_engine_is_reported_not_blamed_on_the_cases(place, mode):
    result, spoiled = attack(place, mode, "kill_peers", "--jobs", "2", engines=["sleepy"])
    assert len(result.report["engines"]) == 2  # every submission gets its report
    if mode != "none":
        assert spoiled == set()
        return
    # with no sandbox it works, and the report says what happened: the reference engine died (its expectations
    # could not be computed), or the classmate's own engine process was killed (nothing keeps it out of reach)
    for engine in result.report["engines"]:
        for case in engine["cases"]:
            if case["id"] in ("reach::mul", "reach::sub") and case["status"] == "error":
                assert case["message"].startswith("the reference engine process died: ") or (
                    engine["source"].endswith("sleepy.py") and "killed by SIGKILL" in case["message"]), case
    assert "case file" not in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_attacks_6_and_8_the_graders_files_and_packages_cannot_be_written(place, mode):
    target = place / "target.txt"
    _, spoiled = attack(place, mode, "write_grader", extra_env={"GRADE_TEST_TARGETS": str(target)})
    assert spoiled == ({"add", "mul"} if mode == "none" else set())
    assert target.read_text() == "results\n"


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_attack_12_case_files_and_the_network_are_out_of_reach(place, mode):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        _, spoiled = attack(place, mode, "read_cases", extra_env={"GRADE_TEST_PORT": str(port)})
    if mode == "uid":  # no network namespace: the network stays reachable (docs/security.md says so)
        assert "mul" not in spoiled and spoiled <= {"add"}
    else:
        assert spoiled == {"bwrap": set(), "none": {"add", "mul"}}[mode]


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_attack_9_a_detached_process_is_killed_with_its_engine(mode, tmp_path):
    """detached_writer double-forks a setsid process that rewrites the report after 2 s."""
    if mode == "uid":  # the submission must be readable by the slot's uid: not in pytest's 0700 tmp_path
        pytest.skip("covered by tests/test_user.py's detached-process test (a fixed uid)")
    report = tmp_path / "report.json"
    token, env = token_env()
    env["GRADE_TEST_REPORT"] = str(report)
    result = run_grade("--engine", fixture_engine("detached_writer", tmp_path), "--cases",
                       ROOT / "tests" / "cases" / "hostile.yaml", "--sandbox", mode, "--format", "json",
                       "--output", report, "--no-blame", env=env)
    assert result.code == 0, result.stderr
    assert processes_with(token) == []  # gone before grade exited: nothing is left that could write later
    assert json.loads(report.read_text())["engines"][0]["engine"] == "detached_writer"


# --- the mode choice and the bwrap command line, in-process -----------------------------------

def test_sandbox_bwrap_is_refused_in_one_line_when_bwrap_is_missing(monkeypatch):
    from harness.errors import HarnessError
    from harness.sandbox import bwrap, modes

    monkeypatch.setattr(bwrap.shutil, "which", lambda name: None)
    bwrap.probe.cache_clear()
    try:
        with pytest.raises(HarnessError) as e:
            modes.choose("bwrap")
        assert str(e.value) == ("--sandbox bwrap: bwrap is not installed (Debian/Ubuntu: apt-get install "
                                "bubblewrap); or choose --sandbox auto")
        monkeypatch.setattr(modes, "is_root", lambda: False)
        chosen = modes.choose("auto")
        assert chosen.mode == "none" and "engine processes are not sandboxed" in chosen.warning
        monkeypatch.setattr(modes, "is_root", lambda: True)
        assert modes.choose("auto") == modes.Choice("uid")
    finally:
        bwrap.probe.cache_clear()


def test_sandbox_uid_needs_root(monkeypatch):
    from harness.errors import HarnessError
    from harness.sandbox import modes

    monkeypatch.setattr(modes, "is_root", lambda: False)
    with pytest.raises(HarnessError, match=r"^--sandbox uid needs grade to run as root"):
        modes.choose("uid")
    assert modes.choose("none") == modes.Choice("none")


HOST_ROOT = "/opt/py"


def _host():
    from harness.sandbox.bwrap import Host

    return Host(python_roots=(HOST_ROOT, "/usr"), masked=(f"{HOST_ROOT}/lib/site-packages/reference_engine",
                                                          "/src/harness", "/src/reference_engine"),
                merged_usr=(("/lib", "usr/lib"),))


def _binds(args: list) -> list:
    """(op, destination) of every mount in a bwrap command line."""
    width = {"--ro-bind": 2, "--ro-bind-try": 2, "--bind": 2, "--tmpfs": 1, "--dir": 1}
    found, i = [], 0
    while i < len(args) and args[i] != "--":
        if args[i] in width:
            found.append((args[i], args[i + width[args[i]]]))
            i += width[args[i]] + 1
        else:
            i += 1
    return found


def test_a_submissions_sandbox_holds_the_engine_side_harness_and_the_submission_only(tmp_path):
    from harness.sandbox.bwrap import ENGINE_SIDE, View, command

    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("alice.py", "bob.py", "helper.py", "notes.txt"):
        (subs / name).write_text("")
    src = Path("/src")
    view = View(harness_root=str(src), workdir="/tmp/grade-worker-x", spec=str(subs / "alice.py"),
                hide=(str(subs / "alice.py"), str(subs / "bob.py")), as_root=True)
    args = command(view, ["python", "-P", "-m", "harness.engine_side.worker", "3", "4"], host=_host())
    assert args[-6:] == ["python", "-P", "-m", "harness.engine_side.worker", "3", "4"]
    assert args[args.index("--") - 1] == "/tmp"
    for flag in ("--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net", "--die-with-parent",
                 "--new-session"):
        assert flag in args
    assert "--unshare-user" not in args  # as root: a private uid instead, with only these two capabilities
    assert [args[i + 1] for i, a in enumerate(args) if a == "--cap-add"] == ["CAP_SETUID", "CAP_SETGID"]
    mounts = _binds(args)
    bound = [d for op, d in mounts if op in ("--ro-bind", "--ro-bind-try")]
    assert f"{HOST_ROOT}" in bound and "/usr" in bound
    assert ("--tmpfs", f"{HOST_ROOT}/lib/site-packages/reference_engine") in mounts  # masked in the prefix
    assert [d for d in bound if d.startswith("/src")] == (
        [f"/src/harness/{n}" for n in ENGINE_SIDE if (src / "harness" / n).is_file()] + ["/src/harness/engine_side"])
    assert str(subs / "alice.py") in bound and str(subs / "helper.py") in bound
    assert str(subs / "bob.py") not in bound and str(subs / "notes.txt") not in bound  # another submission
    assert not any("reference_engine" in d for d in bound)
    assert ("--tmpfs", "/tmp") in mounts and ("--tmpfs", "/tmp/grade-worker-x") in mounts
    assert all(op != "--bind" for op, _ in mounts)  # nothing of the host is writable
    # every folder above a bound path is made 0755 before it, so the private uid can reach it
    made = [args[i + 1] for i, a in enumerate(args) if a == "--dir"]
    assert "/src" in made and "/src/harness" in made and "/opt" in made
    assert args[args.index("--dir") - 2:args.index("--dir")] == ["--perms", "0755"]


def test_the_reference_engines_sandbox_holds_no_submission(tmp_path):
    from harness.sandbox.bwrap import View, command

    view = View(harness_root=str(ROOT), workdir="/tmp/w", spec="reference_engine.plugin", trusted=True,
                hide=(str(tmp_path / "alice.py"),), python_path=("/course/plugins",), as_root=False)
    args = command(view, ["python"], host=_host())
    bound = [d for op, d in _binds(args) if op in ("--ro-bind", "--ro-bind-try")]
    assert str(ROOT / "harness") in bound and str(ROOT / "reference_engine") in bound
    assert "/course/plugins" in bound
    assert not any(str(tmp_path) in d for d in bound)
    assert "--unshare-user" in args and "--cap-add" not in args  # not root: a user namespace


def test_a_module_name_submission_sees_the_pythonpath_folders():
    from harness.sandbox.bwrap import View, command

    view = View(harness_root="/src", workdir="/tmp/w", spec="micrograd.engine", python_path=("/extra",))
    bound = [d for op, d in _binds(command(view, ["python"], host=_host())) if op == "--ro-bind-try"]
    assert "/extra" in bound


def test_uids_are_private_per_live_engine_process(monkeypatch, tmp_path):
    import fcntl

    from harness.errors import HarnessError
    from harness.sandbox import uids

    locks = tmp_path / "locks"
    monkeypatch.setattr(uids, "LOCK_DIRS", (str(locks),))
    monkeypatch.setenv(uids.UIDS_ENV, "70000-70003")
    killed: list = []
    monkeypatch.setattr(uids, "kill_uid", killed.append)
    other = os.open(locks.parent / "held", os.O_CREAT | os.O_RDWR)  # another grade process holds 70002
    locks.mkdir(mode=0o700)
    os.close(other)
    held = os.open(locks / "70002", os.O_CREAT | os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        ref = uids.lease(reference=True)
        a, b = uids.lease(), uids.lease()
        assert (ref.uid, a.uid, b.uid) == (70000, 70001, 70003)
        assert killed == [70001, 70003]  # whatever a dead grade process left running as them
        with pytest.raises(HarnessError, match="more engine processes than uids"):
            uids.lease()
        uids.release(a)
        assert killed[-1] == 70001  # killed again before the uid is free
        assert uids.lease().uid == 70001
        uids.release(ref)
        assert killed[-1] == 70001 and len(killed) == 4  # the reference engine's uid is never swept
        for lease in (b, uids.Lease(70001)):
            uids.release(lease)
        assert uids.lease().uid == 70001
    finally:
        os.close(held)
        for fd in uids._leased.values():
            os.close(fd)
        uids._leased.clear()


@pytest.mark.slow
@pytest.mark.parametrize("mode", [m for m in MODES if m.values[0] != "uid"])
def test_attack_9_under_the_pytest_plugin_a_detached_process_cannot_rewrite_the_junit_file(mode, tmp_path):
    """detached_writer's setsid grandchild would rewrite the --junitxml file 2 s after the import."""
    import subprocess

    junit = tmp_path / "out.xml"
    shutil.copy(ROOT / "tests" / "cases" / "hostile.yaml", tmp_path / "hostile.yaml")
    token, env = token_env()
    env["GRADE_TEST_REPORT"] = str(junit)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                           "-q", f"--engine={fixture_engine('detached_writer', tmp_path)}",
                           f"--engine-sandbox={mode}", "hostile.yaml", f"--junitxml={junit}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert processes_with(token) == []  # gone before pytest exited: nothing is left that could write later
    text = junit.read_text()
    assert "hacked" not in text and 'failures="0"' in text


@pytest.mark.slow
def test_attack_6_a_submission_on_gradescope_cannot_touch_run_autograder_or_the_results(place):
    """The default zip (no --user): the engine runs sandboxed, never as root, and the cases are root-only."""
    import subprocess
    import zipfile

    root = Path(tempfile.mkdtemp(prefix="grade-autograder-", dir=place))
    root.chmod(0o755)
    built = run_grade("--cases", place / "reach.yaml", "--no-blame", "--build-gradescope", place / "ag.zip")
    assert built.code == 0, built.stderr
    with zipfile.ZipFile(place / "ag.zip") as zf:
        zf.extractall(root / "source")
    for script in ("run_autograder", "setup.sh"):
        (root / "source" / script).chmod(0o755)
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir(mode=0o700)  # as uploaded
    for name in ("write_grader.py", "_value.py"):
        shutil.copy(ATTACKS / name, root / "submission" / name)
    (root / "results").mkdir()
    (root / "results" / "results.json").write_text("{}")
    before = (root / "run_autograder").read_bytes()
    targets = os.pathsep.join(str(p) for p in (root / "run_autograder", root / "results" / "results.json",
                                                root / "results"))
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), HARNESS_PYTHON=sys.executable, GRADE_TEST_TARGETS=targets)
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    assert {t["name"]: t["status"] for t in results["tests"]} == dict.fromkeys(
        (f"reach::{n}" for n in NAMES), "passed")
    assert results["score"] == 4.0
    assert (root / "run_autograder").read_bytes() == before
    assert (root / "source" / "cases").stat().st_mode & 0o077 == 0


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_grades_environment_variables_do_not_reach_an_engine_process(place, mode):
    """A secret in grade's environment (a CI token) is absent from the engine process, in every mode; a
    variable HARNESS_ENGINE_ENV names is passed on, and HOME is the engine's own working folder."""
    result, _ = attack(place, mode, "attack_hostile_read_env",
                       extra_env={"GRADE_SECRET_TOKEN": "s3cr3t", "GRADE_TEST_VISIBLE": "shown"})
    assert result.report["engines"][-1]["engine"] == "secret=absent visible=shown home=True"
    assert "s3cr3t" not in result.stdout
