"""Shared fixtures: run the public ``grade`` CLI and read its reports."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ROOT / "tests" / "engines"
EXAMPLES = ROOT / "examples"


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
def engine():
    """Path of a fixture engine by name."""
    return lambda name: str(ENGINES / (name if name.endswith(".py") or "/" in name else f"{name}.py"))
