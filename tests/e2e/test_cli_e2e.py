"""The grade command line end to end: a closed stdout pipe, -p by path and by name from the
current folder (as the installed ``grade`` script runs, without the current folder on sys.path),
and --output-dir over a batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "tests" / "plugins" / "softplus_plugin.py"
SOFTPLUS_CASES = ROOT / "tests" / "plugins" / "softplus_cases.yaml"

#: A small micrograd-style engine; BUG swaps the gradients of mul.
ENGINE = '''
class Value:
    def __init__(self, data, children=()):
        self.data, self.grad, self._prev, self._backward = data, 0.0, children, lambda: None

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other))
        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other))
        def _backward():
            self.grad += (other.data if not BUG else self.data) * out.grad
            other.grad += (self.data if not BUG else other.data) * out.grad
        out._backward = _backward
        return out

    __radd__, __rmul__ = __add__, __mul__

    def backward(self):
        order, seen = [], set()
        def visit(v):
            if id(v) not in seen:
                seen.add(id(v))
                for child in v._prev:
                    visit(child)
                order.append(v)
        visit(self)
        self.grad = 1.0
        for v in reversed(order):
            v._backward()
'''


def grade(*args, cwd=ROOT, stdout=subprocess.PIPE, safe_path=False) -> subprocess.CompletedProcess:
    """Run grade in a fresh process; ``safe_path``: like the installed script, without the current
    folder on sys.path (python -P)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("HARNESS_PLUGINS", None)
    return subprocess.run([sys.executable, *(["-P"] if safe_path else []), "-m", "harness.cli", *map(str, args)],
                          cwd=cwd, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=300,
                          check=False)


def test_a_closed_stdout_pipe_is_exit_2_with_one_line():
    read, write = os.pipe()
    os.close(read)  # the reader is gone before grade writes, as with `grade --list | head -1` at its end
    try:
        result = grade("--list", stdout=write)
    finally:
        os.close(write)
    assert result.returncode == 2
    assert result.stderr == "grade: error: stdout was closed before everything was written to it\n"


def test_a_pipe_closed_by_head_is_not_a_traceback():
    result = subprocess.run(f"set -o pipefail; {sys.executable} -m harness.cli list | head -1", shell=True,
                            cwd=ROOT, capture_output=True, text=True, executable="/bin/bash",
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300, check=False)
    assert result.returncode in (0, 2) and result.stdout.count("\n") == 1
    assert "Traceback" not in result.stderr and result.stderr.count("\n") <= 1


def test_p_takes_a_path_to_a_py_file(tmp_path):
    (tmp_path / "course").mkdir()
    plugin = tmp_path / "course" / "course_plugin.py"
    plugin.write_text(PLUGIN.read_text())
    # The engine processes load the plugin too: the reference engine computes softplus from it.
    result = grade("-p", "./course/course_plugin.py", "--engine", "reference", "--cases", SOFTPLUS_CASES,
                   "--format", "count", cwd=tmp_path, safe_path=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, "1 cases\n", "")


def test_p_loads_a_module_of_the_current_folder_by_name(tmp_path):
    (tmp_path / "course_plugin.py").write_text(PLUGIN.read_text())
    result = grade("-p", "course_plugin", "--engine", "reference", "--cases", SOFTPLUS_CASES, "--format", "json",
                   cwd=tmp_path, safe_path=True)
    assert result.returncode == 0, result.stderr
    assert [c["status"] for c in json.loads(result.stdout)["engines"][0]["cases"]] == ["passed"]


def test_p_with_a_broken_plugin_is_one_line(tmp_path):
    (tmp_path / "broken.py").write_text("def register_ops(:\n")
    result = grade("-p", tmp_path / "broken.py", "--engine", "reference")
    assert result.returncode == 2
    assert result.stderr.startswith(f"grade: error: cannot import plugin '{tmp_path / 'broken.py'}': SyntaxError")
    assert result.stderr.count("\n") == 1


def test_output_dir_writes_one_report_per_submission(tmp_path):
    subs = tmp_path / "subs"
    (subs / "bob smith").mkdir(parents=True)
    (subs / "alice.py").write_text("BUG = False\n" + ENGINE)
    (subs / "bob smith" / "engine.py").write_text("BUG = True\n" + ENGINE)
    out = tmp_path / "feedback"
    result = grade("--submissions", subs, "-k", "notebook::a_plus", "--format", "json", "--output-dir", out,
                   "--jobs", "2")
    assert result.returncode == 1, result.stderr
    whole = json.loads(result.stdout)
    assert [e["submission"] for e in whole["engines"]] == ["alice", "bob smith"]
    assert sorted(p.name for p in out.iterdir()) == ["alice.json", "bob_smith.json"]
    for engine in whole["engines"]:
        name = "alice.json" if engine["submission"] == "alice" else "bob_smith.json"
        own = json.loads((out / name).read_text())
        assert [e["submission"] for e in own["engines"]] == [engine["submission"]]
        assert own["engines"][0]["cases"] == engine["cases"]
    assert json.loads((out / "alice.json").read_text())["engines"][0]["percent"] == 100.0
    assert json.loads((out / "bob_smith.json").read_text())["engines"][0]["percent"] < 100.0
