"""``grade --build-gradescope``: the zip, and its run_autograder in a fake /autograder tree."""

from __future__ import annotations

import importlib.metadata
import json
import re
import os
import shutil
import stat
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from conftest import ENGINES, ROOT, run_grade

from harness.cases.loader import builtin_cases_dir

pytestmark = pytest.mark.slow  # runs grade or pytest as a subprocess

STATUSES = ROOT / "tests" / "cases" / "statuses.yaml"


@pytest.fixture
def course(tmp_path) -> Path:
    """A course's cases: the statuses suite (hidden cases included) and a suite in a subfolder."""
    cases = tmp_path / "course"
    (cases / "extra").mkdir(parents=True)
    shutil.copy(STATUSES, cases / "statuses.yaml")
    (cases / "extra" / "more.yaml").write_text(
        "cases:\n  - {name: x_times_x, visibility: hidden, points: 4, inputs: {x: 3}, output: x * x,\n"
        "     expect: {value: 9, grad: {x: 6}}}\n")
    return cases


def build(tmp_path, *args) -> Path:
    target = tmp_path / "autograder.zip"
    result = run_grade(*args, "--build-gradescope", target)
    assert result.code == 0, result.stderr
    assert result.stdout.startswith(f"wrote {target}: ")
    return target


def unpack(zip_path: Path, root: Path) -> Path:
    """Lay the zip out as Gradescope does: source/ holds it, run_autograder is copied beside it."""
    source = root / "source"
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            zf.extract(info, source)
            mode = info.external_attr >> 16
            if mode:
                os.chmod(source / info.filename, stat.S_IMODE(mode))
    shutil.copy2(source / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    return root


def run_autograder(root: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), HARNESS_PYTHON=sys.executable)
    env.pop("PYTHONPATH", None)
    return subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_zip_holds_the_scripts_the_harness_and_every_case(tmp_path, course):
    target = build(tmp_path, "--cases", course, "--timeout", "5", "-k", "statuses::", "-k", "x_times")
    with zipfile.ZipFile(target) as zf:
        names = zf.namelist()
        modes = {i.filename: stat.S_IMODE(i.external_attr >> 16) for i in zf.infolist()}
        run = zf.read("run_autograder").decode()
        setup = zf.read("setup.sh").decode()
        assert zf.read("cases/1/statuses.yaml") == STATUSES.read_bytes()
    assert names[:2] == ["setup.sh", "run_autograder"]
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755
    assert {"cases/1/statuses.yaml", "cases/1/extra/more.yaml", "lib/harness/cli.py",
            "lib/harness/engine_side/worker.py", "lib/reference_engine/__init__.py"} <= set(names)
    assert not any("__pycache__" in n or n.endswith(".pyc") or "/_cases/" in n for n in names)
    assert "GRADE_OPTIONS=(--timeout 5 --load-timeout 20 --memory-mb 2048 --max-output-mb 64 -k statuses:: -k x_times)" in run
    runtime = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = [re.match(r"[A-Za-z0-9_.-]+", requirement).group() for requirement in runtime]
    assert {"pluggy", "PyYAML", "hypothesis", "nbformat"} <= set(names)
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in names]
    assert f"DEPENDENCIES=({' '.join(pins)})" in setup
    for script in ("setup.sh", "run_autograder"):
        subprocess.run(["bash", "-n", "-c", zipfile.ZipFile(target).read(script).decode()], check=True)


def test_the_import_policy_and_the_submission_budget_travel_in_the_zip(tmp_path, course):
    target = build(tmp_path, "--cases", course, "--forbid-import", "torch", "--forbid-import", "numpy",
                   "--submission-timeout", "90", "--max-restarts", "5")
    run = zipfile.ZipFile(target).read("run_autograder").decode()
    assert "--forbid-import torch --forbid-import numpy --submission-timeout 90 --max-restarts 5" in run


def test_the_same_input_builds_the_same_zip(tmp_path, course):
    first = build(tmp_path, "--cases", course).read_bytes()
    assert build(tmp_path, "--cases", course).read_bytes() == first


def test_run_autograder_grades_a_submission_end_to_end(tmp_path, course):
    root = unpack(build(tmp_path, "--cases", course), tmp_path / "autograder")
    shutil.copy(ENGINES / "notebook_verbatim.py", root / "submission" / "autograd.py")
    (root / "submission" / "notes.md").write_text("students upload other files too")
    proc = run_autograder(root)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"run_autograder: wrote {root}/results/results.json\n"
    results = json.loads((root / "results" / "results.json").read_text())
    tests = {t["name"]: t for t in results["tests"]}
    assert len(tests) == 7
    assert tests["more::x_times_x"] == {
        "name": "more::x_times_x", "score": 4.0, "max_score": 4.0, "status": "passed", "output": "",
        "visibility": "hidden", "tags": [], "extra_data": tests["more::x_times_x"]["extra_data"]}
    assert tests["statuses::exp_is_unsupported"]["visibility"] == "after_due_date"
    assert tests["statuses::diamond_paths_timeout"]["output"].startswith("timeout: timed out")
    assert results["score"] == 2 + 1 + 4


def test_run_autograder_with_an_empty_submission_still_writes_results(tmp_path, course):
    root = unpack(build(tmp_path, "--cases", course), tmp_path / "autograder")
    proc = run_autograder(root)
    assert proc.returncode == 0, proc.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 0
    assert results["output"].startswith("your submission could not be loaded")
    assert "holds no .py file" in results["output"]


def test_the_built_in_suites_are_used_without_cases(tmp_path):
    target = build(tmp_path)
    with zipfile.ZipFile(target) as zf:
        cases = sorted(n for n in zf.namelist() if n.startswith("cases/"))
    builtin = builtin_cases_dir()
    assert cases == sorted(f"cases/1/{p.relative_to(builtin).as_posix()}" for p in builtin.rglob("*.yaml"))
    assert "cases/1/notebook.yaml" in cases


@pytest.mark.parametrize("args, message", [
    (["--build-gradescope", "autograder.tar"], "the file name must end in .zip"),
    (["--build-gradescope", "missing/autograder.zip"], "no such folder missing"),
    (["--engine", "reference", "--build-gradescope", "a.zip"],
     "--build-gradescope builds an autograder and grades nothing: leave out --engine and --submissions"),
])
def test_bad_build_requests_are_clear_errors(tmp_path, args, message):
    result = run_grade(*args, cwd=tmp_path)
    assert result.code == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_bad_case_file_stops_the_build(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cases:\n  - name: x\n    output: a +\n    expect: {value: 1}\n")
    result = run_grade("--cases", bad, "--build-gradescope", tmp_path / "a.zip")
    assert result.code == 2
    assert result.stderr.startswith(f"grade: error: {bad}:3: case 'x':")
    assert not (tmp_path / "a.zip").exists()


def test_course_plugins_travel_in_the_zip(tmp_path):
    plugin_dir = ROOT / "tests" / "plugins"
    env = dict(os.environ, PYTHONPATH=str(plugin_dir))
    target = tmp_path / "autograder.zip"
    result = run_grade("--cases", plugin_dir / "softplus_cases.yaml", "-p", "softplus_plugin",
                       "--build-gradescope", target, env=env)
    assert result.code == 0, result.stderr
    with zipfile.ZipFile(target) as zf:
        assert zf.read("lib/softplus_plugin.py") == (plugin_dir / "softplus_plugin.py").read_bytes()
        assert "-p softplus_plugin" in zf.read("run_autograder").decode()
    root = unpack(target, tmp_path / "autograder")
    (root / "submission" / "engine.py").write_text(
        "import math\n\n"
        "class Value:\n"
        "    def __init__(self, data, parents=()):\n"
        "        self.data, self.grad, self.parents = data, 0.0, parents\n"
        "    def __mul__(self, k):  # by a number only: enough for 2 * softplus(x)\n"
        "        return Value(k * self.data, ((self, k),))\n"
        "    __rmul__ = __mul__\n"
        "    def softplus(self):\n"
        "        return Value(math.log1p(math.exp(self.data)), ((self, 1 / (1 + math.exp(-self.data))),))\n"
        "    def backward(self, g=1.0):\n"
        "        self.grad += g\n"
        "        for node, local in self.parents:\n"
        "            node.backward(g * local)\n")
    proc = run_autograder(root)  # without PYTHONPATH: the plugin comes from the zip's lib/
    assert proc.returncode == 0, proc.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    assert [(t["name"], t["status"]) for t in results["tests"]] == [("plugin_ops::softplus_at_0", "passed")]


def test_a_plugin_without_source_is_a_clear_error(tmp_path):
    result = run_grade("-p", "math", "--build-gradescope", tmp_path / "a.zip")
    assert result.code == 2
    assert "plugin 'math': no Python source file to put in the zip" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_reference_expectations_are_checked_when_the_zip_is_built(tmp_path):
    bad = tmp_path / "oracle.yaml"
    bad.write_text("cases:\n  - {name: overflow, inputs: {x: 1000}, output: exp(x), expect: {value: reference}}\n")
    result = run_grade("--cases", bad, "--build-gradescope", tmp_path / "a.zip")
    assert result.code == 2
    assert f"{bad}:2: case 'overflow': its 'reference' expectations cannot be computed" in result.stderr
    assert not (tmp_path / "a.zip").exists()
