"""examples/github-classroom.yml: its grading steps, run here as GitHub Actions would run them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, fixture_engine

from test_report_formats import validate_junit

pytestmark = pytest.mark.slow  # runs grade or pytest as a subprocess

WORKFLOW = ROOT / "examples" / "github-classroom.yml"


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def step(name: str) -> dict:
    (found,) = [s for s in workflow()["jobs"]["grade"]["steps"] if s.get("name") == name]
    return found


def run_step(name: str, workdir: Path, summary: Path, **env) -> int:
    """Run a step's script with ``bash -e``, as a Linux runner does, with ``grade`` on PATH."""
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "grade").exists():
        pytest.skip("the grade command is not installed next to this Python")
    full_env = {**os.environ, **workflow()["env"], **env, "GITHUB_STEP_SUMMARY": str(summary),
                "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", "-e", "-c", step(name)["run"]], cwd=workdir, env=full_env,
                          capture_output=True, text=True, timeout=300).returncode


def test_the_workflow_grades_with_junit_and_markdown_and_publishes_the_summary():
    wf = workflow()
    assert set(wf["env"]) == {"ENGINE", "FAIL_UNDER", "HARNESS"}
    assert "--format junit" in step("Grade")["run"] and "--fail-under" in step("Grade")["run"]
    assert "--format markdown" in step("Summary")["run"] and "GITHUB_STEP_SUMMARY" in step("Summary")["run"]
    assert step("Summary")["if"] == "always()"
    assert step("Upload the JUnit report")["with"]["path"] == "grade-junit.xml"


@pytest.mark.parametrize("fixture, fail_under, grade_exit", [
    ("bug_mul_swapped", "100", 1), ("bug_mul_swapped", "50", 0), ("micrograd_full", "90", 0)])
def test_the_grading_steps_work_on_a_student_repository(tmp_path, fixture, fail_under, grade_exit):
    shutil.copy(fixture_engine(fixture), tmp_path / "engine.py")
    summary = tmp_path / "summary.md"
    summary.write_text("earlier steps' summary\n")
    assert run_step("Grade", tmp_path, summary, FAIL_UNDER=fail_under) == grade_exit
    validate_junit((tmp_path / "grade-junit.xml").read_text())
    assert run_step("Summary", tmp_path, summary) == 0
    text = summary.read_text()
    assert text.startswith("earlier steps' summary\n## Grading report\n")  # appended, not replaced
    assert "| status | case | points | details |" in text
