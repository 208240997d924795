"""End to end: notebooks and their exported scripts graded by ``grade`` with zero glue."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

import notebooks
from conftest import EXAMPLES, run_grade

pytestmark = pytest.mark.slow
ONE_CASE = ("-k", "notebook::a_plus_b_times_c")
# The training loop's marker file proves what did not run only where it could be written: outside a sandbox.
NO_SANDBOX = ("--sandbox", "none")


def _engine(result) -> dict:
    assert result.stderr == "", result.stderr
    (engine,) = result.report["engines"]
    return engine


def test_a_micrograd_style_notebook_grades_without_running_its_training_loop(tmp_path):
    marker = tmp_path / "trained.txt"
    path = notebooks.write(tmp_path / "student.ipynb", notebooks.micrograd_cells(str(marker)))
    engine = _engine(run_grade("--engine", path, "--format", "json", *NO_SANDBOX))
    assert engine["counts"]["passed"] == engine["max_score"]  # graphviz, torch, matplotlib are not installed
    assert engine["origin"] == "student.ipynb, cell 9: class Value"
    assert "student.ipynb, cell 10: `import torch` raised ModuleNotFoundError: No module named 'torch'; " \
           "skipped" in engine["load_notes"]
    assert not marker.exists()


def test_notebook_mode_all_runs_the_training_loop_too(tmp_path):
    marker = tmp_path / "trained.txt"
    path = notebooks.write(tmp_path / "student.ipynb", notebooks.micrograd_cells(str(marker)))
    engine = _engine(run_grade("--engine", path, "--notebook-mode", "all", "--format", "json", *ONE_CASE,
                               *NO_SANDBOX))
    assert engine["counts"]["passed"] == 1 and marker.exists()
    assert any("cell 11: the cell raised AssertionError" in n for n in engine["load_notes"])


@pytest.mark.parametrize("export", ["nbconvert", "colab", "colab-commented"])
def test_exported_scripts_grade_like_the_notebook(tmp_path, export):
    marker = tmp_path / "trained.txt"
    cells = notebooks.micrograd_cells(str(marker))
    text = (notebooks.as_nbconvert_script(cells) if export == "nbconvert"
            else notebooks.as_colab_script(cells, comment_shell=export == "colab-commented"))
    (tmp_path / "student.py").write_text(text)
    engine = _engine(run_grade("--engine", tmp_path / "student.py", "--format", "json", *NO_SANDBOX))
    assert engine["counts"]["passed"] == engine["max_score"]
    assert engine["origin"].startswith("student.py, line ") and engine["origin"].endswith(": class Value")
    assert engine["load_notes"][0] == "student.py is a script exported from a notebook: loaded cell by cell"
    assert not marker.exists()


def test_the_tutorial_style_example_notebook_and_its_report():
    result = run_grade("--engine", EXAMPLES / "student_notebook.ipynb")
    assert result.code == 1 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[:5] == [
        f"== student_notebook ({EXAMPLES / 'student_notebook.ipynb'})",
        "   graded: student_notebook.ipynb, cell 3: class Tensor; _add, _sub, _mul from student_notebook.ipynb, "
        "cell 4",
        "   while loading:",
        "   - student_notebook.ipynb, cell 2: skipped IPython syntax `!pip install graphviz`",
        "   - student_notebook.ipynb, cell 8: `import graphviz  # only for drawing the graph` raised "
        "ModuleNotFoundError: No module named 'graphviz'; skipped"]
    fix = [line for line in lines if line.startswith("  - sub: d(a - b)/db is 1, expected -1")]
    assert len(fix) == 1 and "[student_notebook.ipynb[cell 4]:7]" in fix[0]  # the buggy line, in its cell


def test_corrupt_notebooks_are_errors_and_the_batch_goes_on(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    notebooks.write(subs / "alice.ipynb", notebooks.tutorial_cells())
    (subs / "bob.ipynb").write_text("{ this is not json")
    (subs / "carol.ipynb").write_text('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}')
    result = run_grade("--submissions", subs, "--format", "csv", *ONE_CASE)
    assert result.stderr == ""
    rows = {r["submission"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert rows["alice"]["passed"] == "1"
    assert rows["bob"]["error"] == "1" and rows["bob"]["load_error"] == (
        "bob.ipynb: not a notebook (its text is not JSON); was it saved from Jupyter or Colab as .ipynb?")
    assert rows["carol"]["load_error"] == "carol.ipynb: the notebook holds no code cell"


def test_the_json_report_names_the_cell_in_every_format(tmp_path):
    path = notebooks.write(tmp_path / "hw.ipynb", notebooks.tutorial_cells())
    for fmt, expected in (("markdown", "graded: hw.ipynb, cell 3: class Tensor"),
                          ("gradescope", "graded: hw.ipynb, cell 3: class Tensor")):
        result = run_grade("--engine", path, "--format", fmt, *ONE_CASE)
        assert expected in result.stdout, fmt
    assert Path(path).exists()
