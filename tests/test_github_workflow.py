"""examples/github-classroom.yml: its grading steps, run here as GitHub Actions would run them."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, fixture_engine

from test_report_formats import validate_junit


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


@pytest.mark.slow  # runs grade or pytest as a subprocess
def test_the_workflow_grades_with_junit_and_markdown_and_publishes_the_summary():
    wf = workflow()
    assert set(wf["env"]) == {"ENGINE", "FAIL_UNDER", "HARNESS"}
    assert "--format junit" in step("Grade")["run"] and "--fail-under" in step("Grade")["run"]
    assert "--report markdown:grade-summary.md" in step("Grade")["run"]  # one grading run, two reports
    assert "grade " not in step("Summary")["run"] and "GITHUB_STEP_SUMMARY" in step("Summary")["run"]
    assert step("Summary")["if"] == "always()"
    assert step("Upload the JUnit report")["with"]["path"] == "grade-junit.xml"


@pytest.mark.slow  # runs grade or pytest as a subprocess
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


@pytest.mark.slow  # runs the workflow's steps in bash
def test_the_summary_step_says_so_when_grading_wrote_no_report(tmp_path):
    summary = tmp_path / "summary.md"
    assert run_step("Summary", tmp_path, summary) == 0
    assert summary.read_text() == "No grading report: see the Grade step's log.\n"


# What pip would fetch from PyPI by name: a bare project name, maybe with extras and a version.
PYPI_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?\s*([<>=!~].*)?$")


def pip_install_targets(script: str, env: dict) -> list[str]:
    """What each ``pip install`` line of a step's script installs, with $VARIABLES from env filled in."""
    targets = []
    for line in script.splitlines():
        words = shlex.split(line, comments=True)
        if "pip" in words and "install" in words[words.index("pip"):]:
            for word in words[words.index("install", words.index("pip")) + 1:]:
                if not word.startswith("-"):
                    targets.append(re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m[1], m[0]), word))
    return targets


def test_no_default_installs_a_package_from_pypi_by_name():
    wf = workflow()
    targets = [t for s in wf["jobs"]["grade"]["steps"] for t in pip_install_targets(s.get("run", ""), wf["env"])]
    assert wf["env"]["HARNESS"] in targets
    for target in targets:
        assert not PYPI_NAME.match(target), f"the workflow installs {target!r} from PyPI by name"
    assert wf["env"]["HARNESS"].startswith("git+https://")
    text = WORKFLOW.read_text()
    assert "PyPI" in text and "anyone could publish" in text  # the workflow says why


def test_the_check_for_pypi_names_catches_them():
    for name in ["autograd-harness", "autograd_harness==0.1.0", "autograd-harness[test]>=0.1", "pip"]:
        assert pip_install_targets(f'python -m pip install --quiet "{name}"', {})[0] == name
        assert PYPI_NAME.match(name)
    assert pip_install_targets('python -m pip install "$HARNESS"', {"HARNESS": "x"}) == ["x"]
    for pinned in ["git+https://github.com/c/autograd-harness.git@" + "a" * 40, "./vendor/h-0.1-py3-none-any.whl"]:
        assert not PYPI_NAME.match(pinned)


def run_install_step(tmp_path: Path, harness: str) -> tuple[int, str, list[str]]:
    """Run the install step with a stand-in ``python`` that records its arguments instead of installing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "calls"
    fake = bin_dir / "python"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {shlex.quote(str(calls))}\n')
    fake.chmod(0o755)
    env = {**os.environ, "HARNESS": harness, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["bash", "-e", "-c", step("Install the harness")["run"]], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout + proc.stderr, calls.read_text().splitlines() if calls.exists() else []


@pytest.mark.slow  # runs grade or pytest as a subprocess
@pytest.mark.slow
@pytest.mark.parametrize("harness", [
    "", "autograd-harness", "autograd-harness==0.1.0",
    "git+https://github.com/YOUR-COURSE/autograd-harness.git@main",
    "git+https://github.com/YOUR-COURSE/autograd-harness.git@" + "a" * 39,
    "./vendor/harness.whl; curl evil", "https://example.com/autograd_harness-0.1.0-py3-none-any.whl"])
def test_the_install_step_refuses_anything_but_a_pinned_copy(tmp_path, harness):
    code, output, calls = run_install_step(tmp_path, harness)
    assert code == 1 and calls == []
    assert output.startswith("::error title=HARNESS is not pinned::") and "commit SHA" in output


@pytest.mark.slow  # runs grade or pytest as a subprocess
@pytest.mark.slow
def test_the_default_harness_fails_loudly_until_the_course_sets_it(tmp_path):
    code, output, calls = run_install_step(tmp_path, workflow()["env"]["HARNESS"])
    assert code == 1 and calls == [] and "HARNESS is not pinned" in output


@pytest.mark.slow  # runs grade or pytest as a subprocess
@pytest.mark.slow
@pytest.mark.parametrize("harness", [
    "git+https://github.com/my-course/autograd-harness.git@0123456789abcdef0123456789abcdef01234567",
    "./vendor/autograd_harness-0.1.0-py3-none-any.whl"])
def test_the_install_step_installs_a_pinned_copy(tmp_path, harness):
    code, output, calls = run_install_step(tmp_path, harness)
    assert code == 0 and calls == [f"-m pip install {harness}"], output
