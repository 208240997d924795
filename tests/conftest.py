"""Shared fixtures: run the public ``grade`` CLI and read its reports."""

from __future__ import annotations

import atexit
import contextlib
import json
import locale
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from engines.mutants import MUTANTS, materialise

ROOT = Path(__file__).resolve().parent.parent
# Engine processes get a minimal environment (harness.sandbox.environment), never grade's own: the test
# engines read their instructions (GRADE_TEST_*) and the tests find engine processes by their tokens
# (HOSTILE_TEST_TOKEN...) through the variables this lets through.
os.environ.setdefault("HARNESS_ENGINE_ENV", "GRADE_TEST_*,GRADE_USER_TEST_*,HOSTILE_TEST_*")
ENGINES = ROOT / "tests" / "engines"      # correct engines, their mutants, single-file oddities
LAYOUTS = ROOT / "tests" / "layouts"      # submissions of several files: a multi-file folder, a package
EXAMPLES = ROOT / "examples"
_SHARED: list[Path] = []  # this process's folder of mutants for fixture_engine(name) without a folder


def fixture_engine(name: str, folder: Path | None = None) -> Path:
    """Path of a fixture engine by name: a standalone file in tests/engines, or a mutant written to ``folder``.

    A mutant (tests/engines/mutants.py) is written as ``<name>.py`` once per folder; without a folder, to one
    temporary folder for this test process.
    """
    stem = name[:-3] if name.endswith(".py") else name
    if stem not in MUTANTS:
        return ENGINES / (name if name.endswith(".py") or "/" in name else f"{name}.py")
    if folder is None:
        if not _SHARED:
            _SHARED.append(Path(tempfile.mkdtemp(prefix="fixture-engines-")))
            atexit.register(shutil.rmtree, _SHARED[0], True)
        folder = _SHARED[0]
    path = Path(folder) / f"{stem}.py"
    return path if path.exists() else materialise(stem, Path(folder))


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict:
        return json.loads(self.stdout)

    def statuses(self, engine: int = 0) -> dict:
        """case id -> status, from a JSON report."""
        return {c["id"]: c["status"] for c in self.report["engines"][engine]["cases"]}

    def case(self, case_id: str, engine: int = 0) -> dict:
        return next(c for c in self.report["engines"][engine]["cases"] if c["id"] == case_id)


def run_grade(*args, cwd=None, timeout: float = 300, env=None) -> Result:
    """Run ``grade`` as a user would: ``python -m harness.cli ARGS``, forked from this worker's zygote
    (tests/zygote.py) when it can stand in for a fresh process, otherwise in a fresh process."""
    argv = [str(a) for a in args]
    if not _SLOW_TEST[0]:
        raise AssertionError(f"grade {' '.join(argv[:4])} ...: a test that runs grade must be marked slow")
    forked = _ZYGOTE.run(argv, str(cwd or ROOT), timeout, env)
    if forked is not None:
        return Result(*forked)
    proc = subprocess.run([sys.executable, "-m", "harness.cli", *argv], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=timeout, env=env)
    return Result(proc.returncode, proc.stdout, proc.stderr)


class _Zygote:
    """This worker's zygote (tests/zygote.py): started on first use, replaced when a run goes wrong."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.env: dict = {}
        self.lock = threading.Lock()
        self.broken = False  # it died before forking a run: every run starts a fresh process

    def run(self, argv: list[str], cwd: str, timeout: float, env) -> tuple[int, str, str] | None:
        """(exit code, stdout, stderr), or None when a fresh process must run it instead."""
        env = dict(os.environ if env is None else env)
        if self.broken or os.environ.get("GRADE_TEST_NO_ZYGOTE") or not self.lock.acquire(blocking=False):
            return None
        try:
            if _settled(env) != _settled(dict(os.environ)):  # a test's own variables: never the zygote's
                return None
            if self.proc is None or self.proc.poll() is not None:
                self.env = {k: v for k, v in env.items() if not k.startswith(_ENGINE_ONLY)}
                # Unbuffered: readline then reads the reply byte by byte and never takes the next reply
                # into a buffer that select() cannot see.
                self.proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "zygote.py")], cwd=ROOT,
                                             env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             bufsize=0)
            if _settled(env) != _settled(self.env):
                return None
            return self._fork(argv, cwd, env, timeout)
        except _NotForked:  # it died before forking this run: run it in a fresh process, and from now on
            self.broken = True
            return None
        finally:
            self.lock.release()

    def _fork(self, argv, cwd, env, timeout) -> tuple[int, str, str]:
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        with tempfile.TemporaryDirectory(prefix="grade-run-") as tmp:
            out, err = Path(tmp, "stdout"), Path(tmp, "stderr")
            out.touch()
            err.touch()
            request = {"args": argv, "cwd": cwd, "env": env, "out": str(out), "err": str(err)}
            pid = None
            try:
                self.proc.stdin.write(json.dumps(request).encode() + b"\n")
                self.proc.stdin.flush()
                pid = self._reply(timeout)["pid"]
                status = self._reply(timeout)["status"]
            except BaseException as e:  # a timeout, an interrupt, a dead zygote: start afresh next time
                if pid is not None:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                self.proc.kill()
                self.proc.wait()
                self.proc = None
                if pid is None and isinstance(e, _Died):
                    raise _NotForked from e
                raise
            return (os.waitstatus_to_exitcode(status), _text(out.read_bytes()), _text(err.read_bytes()))

    def _reply(self, timeout: float) -> dict:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else b""
        if not ready:
            raise subprocess.TimeoutExpired("grade", timeout)
        if not line:
            raise _Died("the grade zygote (tests/zygote.py) died")
        return json.loads(line)


class _Died(RuntimeError):
    """The zygote ended (before or during a run)."""


class _NotForked(Exception):
    """The zygote ended before it forked the run: nothing ran."""


#: Variables that only the test engines read (HARNESS_ENGINE_ENV lets them through to engine processes) and the
#: grader never does: a run whose environment differs from the zygote's only in them may be forked from it, its
#: engine processes get them all the same (from the environment at run time).  Not HOSTILE_TEST_*: tests find
#: grade's own processes (its job processes, forks of grade) by that token in /proc/PID/environ, which shows
#: what a process was started with, and a fork of the zygote was started with the zygote's environment.
_ENGINE_ONLY = ("GRADE_TEST_", "GRADE_USER_TEST_")


def _settled(env: dict) -> dict:
    """The environment but pytest's PYTEST_CURRENT_TEST (which names each test) and the variables only test engines
    read: what imports could see."""
    return {k: v for k, v in env.items() if k != "PYTEST_CURRENT_TEST" and not k.startswith(_ENGINE_ONLY)}


def _text(data: bytes) -> str:
    """As subprocess.run(text=True) decodes: the locale's encoding, universal newlines."""
    return data.decode(locale.getpreferredencoding(False)).replace("\r\n", "\n").replace("\r", "\n")


_ZYGOTE = _Zygote()
_SLOW_TEST = [True]  # whether the running test may start grade (see _fast_tier_starts_no_grade)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before any fixture of the test (module-scoped ones included) can start grade."""
    _SLOW_TEST[0] = item.get_closest_marker("slow") is not None


def _loses_xdist_groups() -> bool:
    """Whether this pytest and pytest-xdist cannot apply ``xdist_group`` marks: pytest-xdist up to 3.8 names a
    test's group by rewriting ``item._nodeid``, which pytest 9.2 no longer reads."""
    from importlib.metadata import PackageNotFoundError, version

    def numbers(name: str) -> tuple:
        try:
            return tuple(int(p) for p in version(name).split(".")[:2] if p.isdigit())
        except PackageNotFoundError:
            return ()

    xdist = numbers("pytest-xdist")
    return bool(xdist) and xdist <= (3, 8) and numbers("pytest") >= (9, 2)


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    """Under ``--dist loadgroup``, refuse to run where the groups would be lost: each worker would grade the
    shared runs again, and the suite would only be slower, for no visible reason."""
    if getattr(config.option, "dist", "no") == "loadgroup" and getattr(config.option, "numprocesses", None) \
            and not hasattr(config, "workerinput") and _loses_xdist_groups():
        raise pytest.UsageError(
            "this pytest and pytest-xdist cannot apply the test groups of --dist loadgroup (pytest-xdist <= 3.8 "
            "with pytest >= 9.2): install the test extra's versions (pip install -e '.[test]')")


def pytest_collection_modifyitems(items):
    """The files with end-to-end (slow) tests first, then the files of in-process tests only, each file's
    tests together and in order: spread over xdist's workers, the many small tests come last and fill in
    while the other worker finishes a long one, instead of a long test starting when the small ones are
    done (the same order on every worker, as pytest-xdist requires)."""
    slow_files = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in slow_files)  # stable: files stay in order


def pytest_itemcollected(item):
    """xdist groups (``--dist loadgroup``, in pyproject's options), so that an expensive shared fixture is
    computed once, by one test worker:

    - the tests of the session-wide built-in run form one group: the other worker never waits for that run;
    - the tests of a module that use one of its module-scoped fixtures (a graded batch, the reports of a
      run) form a group of their own; without it each worker would grade that batch again.

    Set as each test is collected, before any ``pytest_collection_modifyitems`` (pytest-xdist's reads the
    groups into the node ids there, and the order of that hook's implementations is not ours to choose).
    """
    names = getattr(item, "fixturenames", ())
    if "builtin_graded" in names:
        item.add_marker(pytest.mark.xdist_group("builtin_graded"))
        return
    info = getattr(item, "_fixtureinfo", None)  # pytest's, not public: without it, no grouping
    defs = getattr(info, "name2fixturedefs", {})
    if any(defs.get(n) and defs[n][-1].scope in ("module", "package") for n in names):
        item.add_marker(pytest.mark.xdist_group(f"{item.module.__name__}:module-fixtures"))


#: The engines graded on every built-in case, blame on, by the case library's and blame's tests: every seeded
#: bug, the notebook's engine, and correct engines (micrograd itself among them).
BUILTIN_GRADED = ("bug_sub_sign", "bug_assign_grad", "bug_mul_swapped", "bug_recursive_topo", "bug_tanh",
                  "bug_reset_grads", "bug_noop_backward", "notebook_verbatim", "micrograd_like", "bug_exp_input",
                  "micrograd_full", "micrograd.engine")


@pytest.fixture(scope="session")
def builtin_graded(tmp_path_factory) -> dict:
    """Every engine of BUILTIN_GRADED on every built-in case, with blame: fixture name -> its engine report.

    One ``grade`` run for the whole session: its tests are one xdist group (``pytest_collection_modifyitems``),
    and without ``--dist loadgroup`` the first worker to ask runs it while the others wait for its report."""
    import fcntl

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the session's, not the worker's
    report_file = shared / "builtin-graded.json"
    with open(shared / "builtin-graded.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not report_file.exists():
            specs = [s if "." in s else str(fixture_engine(s)) for s in BUILTIN_GRADED]
            result = run_grade(*[a for s in specs for a in ("--engine", s)], "--format", "json", "--jobs", "2",
                               timeout=900)
            assert result.code == 1, result.stderr
            report_file.write_text(result.stdout)
    engines = json.loads(report_file.read_text())["engines"]
    assert len(engines) == len(BUILTIN_GRADED)
    return dict(zip(BUILTIN_GRADED, engines))


@pytest.fixture
def grade():
    return run_grade


@pytest.fixture
def engine(tmp_path_factory):
    """Path (str) of a fixture engine by name; mutants are written to a fresh folder of this test's."""
    folder: list[Path] = []

    def path(name: str) -> str:
        if not folder:
            folder.append(tmp_path_factory.mktemp("engines"))
        return str(fixture_engine(name, folder[0]))

    return path


@pytest.fixture(autouse=True)
def _fast_tier_starts_no_grade(request, monkeypatch):
    """The fast tier runs in process: a test that starts grade or pytest as a subprocess must be marked slow."""
    if request.node.get_closest_marker("slow"):
        return
    start = subprocess.Popen.__init__

    def refuse_grade(self, args, *rest, **kwargs):
        argv = [os.fspath(a) for a in ([args] if isinstance(args, (str, bytes, os.PathLike)) else args)]
        names = [os.path.basename(a) for a in argv[:4]]
        if {"harness.cli", "grade", "pytest"} & set(names):
            raise AssertionError(f"{request.node.nodeid} runs {' '.join(argv[:4])} ...: mark it @pytest.mark.slow")
        start(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse_grade)


def token_env() -> tuple[str, dict]:
    """A unique environment variable: every process the grader starts inherits it."""
    token = f"HOSTILE_TEST_TOKEN={uuid.uuid4().hex}"
    key, value = token.split("=")
    return token, dict(os.environ, **{key: value})


def processes_with(token: str) -> list[int]:
    """Live processes whose environment holds ``token``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if token.encode() in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def pytest_collection_finish(session):
    """The modules and the collected tests live as long as the session: the garbage collector stops walking
    them (Hypothesis, nbformat and the harness make that hundreds of thousands of objects)."""
    import gc

    gc.freeze()
