"""Start-up: engine processes spawn before the cases are parsed, and never outlive the run."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs grade or pytest as a subprocess


def processes_with(marker: str) -> list[int]:
    """Pids of live processes whose environment holds ``marker`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_early_engine_processes_die_when_the_cases_are_bad(grade, engine, tmp_path, jobs):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cases:\n  - name: a\n    output: [\n")
    marker = f"GRADE_TEST_{uuid.uuid4().hex}"
    env = dict(os.environ, GRADE_TEST_MARKER=marker)
    # with a load timeout of a day, grade ends only if it stops the hanging engines itself
    result = grade("--engine", engine("hang_on_import"), "--engine", engine("hang_on_import"), "--jobs", jobs,
                   "--cases", bad, "--load-timeout", "86400", env=env, timeout=120)
    assert result.code == 2
    assert f"{bad}:4: case 'a': YAML syntax error" in result.stderr
    assert processes_with(marker) == []


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_early_engine_processes_die_when_no_case_matches(grade, engine):
    marker = f"GRADE_TEST_{uuid.uuid4().hex}"
    result = grade("--engine", engine("hang_on_import"), "-k", "no-such-case",
                   env=dict(os.environ, GRADE_TEST_MARKER=marker))
    assert result.code == 2
    assert "no case matches" in result.stderr
    assert processes_with(marker) == []


def test_a_slow_import_overlaps_case_parsing_and_still_counts_against_the_load_timeout(grade, engine):
    result = grade("--engine", engine("hang_on_import"), "-k", "notebook::add_value", "--load-timeout", "1",
                   "--format", "json")
    assert result.code == 1
    case = result.case("notebook::add_value")
    assert case["status"] == "error"
    assert "loading the engine did not finish within 1 s" in case["message"]


ROOT = Path(__file__).resolve().parent.parent
#: What an engine process never imports for a submission that uses none of it (each costs every engine
#: process milliseconds: typing ~9, dataclasses and inspect ~15, pluggy ~25).
HEAVY = ("typing", "dataclasses", "inspect", "pluggy", "difflib", "importlib.metadata", "yaml", "harness.model",
         "harness.plugins", "harness.protocols")


def modules_after_loading(spec: str) -> set[str]:
    """The HEAVY modules a fresh engine process imports to load ``spec`` (as the worker does); not those the
    interpreter's start-up already imported (a site-packages .pth file may import typing)."""
    code = ("import sys\nbefore = set(sys.modules)\nfrom harness.engine_side import worker\n"
            f"from harness.engine_side.loading import load\nengines, _ = load({spec!r})\nassert engines\n"
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules and m not in before))")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_an_engine_process_for_a_plain_submission_imports_nothing_heavy(tmp_path):
    engines = ROOT / "tests" / "engines"
    (tmp_path / "repo").mkdir()  # a folder: the discovery scan runs too
    (tmp_path / "repo" / "engine.py").write_text((engines / "micrograd_full.py").read_text())
    (tmp_path / "repo" / "train.py").write_text("import engine\n")
    for spec in (engines / "micrograd_full.py", engines / "micrograd_closures.py", tmp_path / "repo"):
        assert modules_after_loading(str(spec)) == set(), spec  # (the notebook imports typing itself)


def test_an_engine_process_imports_pluggy_when_the_submission_registers_its_engine_with_a_hook():
    assert "pluggy" in modules_after_loading(str(ROOT / "tests" / "engines" / "plugin_engine.py"))
