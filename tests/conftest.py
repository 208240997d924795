"""Shared fixtures: run the public ``grade`` CLI and read its reports."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
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
    """Run ``grade`` as a user would, in a fresh process."""
    proc = subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=timeout, env=env)
    return Result(proc.returncode, proc.stdout, proc.stderr)


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
